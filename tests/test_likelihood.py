"""The calibrated Gaussian likelihood and the strided conv stack, on every backend."""

import math

import keras
import numpy as np
import pytest
from helpers import blob_images, tiny_model, value_and_grad
from keras import ops

from keras_dcign import DCIGN
from keras_dcign.objective import MIN_LOG_SCALE, reconstruction_loss, soft_clip_log_scale


def _images_and_logits(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((3, 8, 8, 1)).astype("float32")
    logits = rng.normal(size=images.shape).astype("float32")
    return images, logits


def _gaussian_nll(images, logits, log_scale):
    """Independent numpy reference: -log N(x | sigmoid(l), sigma^2) summed per image."""
    mean = 1 / (1 + np.exp(-logits.astype("float64")))
    sigma = math.exp(log_scale)
    nll = 0.5 * ((images - mean) / sigma) ** 2 + log_scale + 0.5 * math.log(2 * math.pi)
    return nll.reshape(len(images), -1).sum(axis=1)


def test_learned_scale_loss_is_the_gaussian_negative_log_likelihood():
    images, logits = _images_and_logits()
    got = ops.convert_to_numpy(reconstruction_loss(images, logits, "gaussian", np.float32(-1.5)))
    np.testing.assert_allclose(got, _gaussian_nll(images, logits, -1.5), rtol=1e-5)


def test_analytic_scale_is_the_batch_error():
    images, logits = _images_and_logits(1)
    mean = 1 / (1 + np.exp(-logits.astype("float64")))
    log_scale = 0.5 * math.log(np.mean((images - mean) ** 2))
    got = ops.convert_to_numpy(reconstruction_loss(images, logits, "gaussian", "analytic"))
    np.testing.assert_allclose(got, _gaussian_nll(images, logits, log_scale), rtol=1e-5)


def test_log_scale_gradient_matches_the_analytic_one():
    images, logits = _images_and_logits(2)

    def loss(raw):
        return ops.sum(reconstruction_loss(images, logits, "gaussian", soft_clip_log_scale(raw)))

    raw = np.float32(-1.0)
    _, grad = value_and_grad(loss, raw)
    mean = 1 / (1 + np.exp(-logits.astype("float64")))
    log_scale = MIN_LOG_SCALE + math.log1p(math.exp(raw - MIN_LOG_SCALE))
    squared = np.sum((images - mean) ** 2)
    # d/ds [0.5 S e^{-2s} + N s] = N - S e^{-2s}; ds/draw = sigmoid(raw - MIN_LOG_SCALE).
    expected = (images.size - squared * math.exp(-2 * log_scale)) / (
        1 + math.exp(-(raw - MIN_LOG_SCALE))
    )
    np.testing.assert_allclose(grad, expected, rtol=1e-4)


def test_soft_clip_bounds_the_scale_below_and_keeps_large_values():
    values = ops.convert_to_numpy(soft_clip_log_scale(np.array([-50.0, -2.0], "float32")))
    assert values[0] == pytest.approx(MIN_LOG_SCALE, abs=1e-6)
    assert values[1] == pytest.approx(-2.0, abs=0.02)


@pytest.mark.slow
def test_learned_scale_is_a_trainable_weight_that_follows_the_error():
    keras.utils.set_random_seed(0)
    model = tiny_model(reconstruction="gaussian", gaussian_scale="learned")
    assert "log_scale" in [w.name for w in model.trainable_weights]
    before = float(ops.convert_to_numpy(model.likelihood_scale()))
    model.compile(optimizer=keras.optimizers.Adam(2e-2))
    images = blob_images(20, seed=3)
    history = model.fit(images, model.group_ids("none", 20), batch_size=20, epochs=40, verbose=0)
    after = float(ops.convert_to_numpy(model.likelihood_scale()))
    rmse = float(np.sqrt(np.mean((ops.convert_to_numpy(model(images)) - images) ** 2)))
    # Calibration: the learned sigma moves to the model's own reconstruction error.
    assert abs(after - math.log(rmse)) < 0.5 * abs(before - math.log(rmse)), (before, after, rmse)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_learned_scale_survives_config_and_weights(tmp_path):
    model = tiny_model(reconstruction="gaussian", gaussian_scale="learned")
    model.log_scale.assign(-3.25)
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.get_config()["gaussian_scale"] == "learned"
    assert float(ops.convert_to_numpy(restored.log_scale)) == pytest.approx(-3.25)


@pytest.mark.parametrize(
    "value, match",
    [("sometimes", "gaussian_scale='sometimes'"), (0.0, "gaussian_scale=0.0"), (-1, "-1")],
)
def test_bad_gaussian_scale_is_named(value, match):
    with pytest.raises(ValueError, match=match):
        tiny_model(reconstruction="gaussian", gaussian_scale=value)


@pytest.mark.parametrize("size", [32, 64])
def test_strided_stack_keeps_the_image_size_and_the_code(size):
    model = DCIGN(image_size=size, feature_maps=8, architecture="strided", seed=0)
    images = np.random.default_rng(0).random((2, size, size, 1), dtype="float32")
    out = ops.convert_to_numpy(model(images))
    assert out.shape == (2, size, size, 1) and 0 <= out.min() and out.max() <= 1
    assert model.encode(images).mean.shape == (2, 200)
    shapes = {w.path.split("/", 1)[1]: tuple(w.shape) for w in model.weights}
    grid = size // 8
    assert shapes["encoder_conv_1/kernel"] == (4, 4, 1, 8)
    assert shapes["z_mean/kernel"] == (grid * grid * 32, 200)
    assert shapes["decoder_conv_3/kernel"] == (4, 4, 1, 8)


def test_strided_config_round_trip_and_training():
    model = tiny_model(architecture="strided", reconstruction="gaussian", gaussian_scale="learned")
    config = model.get_config()
    again = DCIGN.from_config(config)
    assert again.get_config() == config and again.count_params() == model.count_params()
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    images = blob_images(20, vary="light", seed=5)
    history = model.fit(images, model.group_ids("light", 20), batch_size=20, epochs=10, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 8}, "image_size=8"),
        ({"image_size": 32, "strided_stages": 5}, "strided_stages=5 is invalid"),
    ],
)
def test_strided_stack_refuses_sizes_it_cannot_rebuild(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DCIGN(feature_maps=8, architecture="strided", **kwargs)


@pytest.mark.parametrize("size, stages", [(36, 3), (64, 3), (150, 4)])
def test_strided_stack_rebuilds_any_size_and_adds_stages_for_large_images(size, stages):
    model = DCIGN(image_size=size, feature_maps=4, architecture="strided")
    assert model.strided_stages == stages
    out = model(np.zeros((1, size, size, 1), "float32"))
    assert tuple(out.shape) == (1, size, size, 1)
    # A config saved before the setting existed rebuilds the three-stage stack.
    config = model.get_config()
    del config["strided_stages"]
    assert DCIGN.from_config(config).strided_stages == 3


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="architecture='resnet'"):
        tiny_model(architecture="resnet")


def test_bernoulli_model_has_no_scale_weight_whatever_gaussian_scale_says():
    model = tiny_model(reconstruction="bernoulli", gaussian_scale="learned")
    assert "log_scale" not in [w.name for w in model.weights]
    assert model.count_params() == tiny_model().count_params()
