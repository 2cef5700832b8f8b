import keras
import numpy as np
import pytest
from helpers import blob_images, tiny_model

from keras_dcign import DCIGN, DiagonalGaussian, plan_padding


def test_default_model_is_the_reference_network():
    model = DCIGN()
    assert model.count_params() == 4_131_137
    assert model.code.size == 200
    shapes = {w.path.split("/", 1)[1]: tuple(w.shape) for w in model.weights}
    assert shapes["encoder_conv_1/kernel"] == (5, 5, 1, 96)
    assert shapes["z_mean/kernel"] == (5400, 200)
    assert shapes["decoder_dense/kernel"] == (200, 5400)
    assert shapes["decoder_conv_4/kernel"] == (7, 7, 96, 1)


@pytest.mark.backend_independent
def test_reference_padding_is_all_valid():
    assert plan_padding(150) == ((0, 0, 0), (0, 0, 0, 0), 15)


@pytest.mark.parametrize("size", [32, 64, 96, 128])
def test_output_size_equals_input_size(size):
    model = DCIGN(image_size=size, feature_maps=8)
    images = np.random.default_rng(0).random((2, size, size, 1), dtype="float32")
    out = keras.ops.convert_to_numpy(model(images))
    assert out.shape == (2, size, size, 1)
    assert out.min() >= 0 and out.max() <= 1


def test_rgb_model():
    model = tiny_model(channels=3)
    assert model(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 32, 32, 3)


def test_encode_decode_and_posterior(model):
    images = blob_images(4)
    posterior = model.encode(images)
    assert isinstance(posterior, DiagonalGaussian)
    assert posterior.mean.shape == (4, model.code.size)
    z = posterior.sample(seed=3)
    assert z.shape == (4, model.code.size)
    kl = keras.ops.convert_to_numpy(posterior.kl_to_standard_normal())
    assert kl.shape == (4,) and (kl >= 0).all()
    decoded = keras.ops.convert_to_numpy(model.decode(posterior.mean))
    np.testing.assert_allclose(decoded, keras.ops.convert_to_numpy(model(images)), atol=1e-6)


def test_rerender_replaces_only_the_named_group(model):
    images = blob_images(3)
    mean = keras.ops.convert_to_numpy(model.encode(images).mean)
    z = mean.copy()
    z[:, model.code.slice("light")] = 2.5
    expected = keras.ops.convert_to_numpy(model.decode(z))
    got = keras.ops.convert_to_numpy(model.rerender(images, light=2.5))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    per_image = keras.ops.convert_to_numpy(model.rerender(images, light=[0.0, 1.0, 2.0]))
    z[:, model.code.slice("light")] = np.array([[0.0], [1.0], [2.0]])
    np.testing.assert_allclose(per_image, keras.ops.convert_to_numpy(model.decode(z)), atol=1e-6)
    assert not np.allclose(per_image[0], per_image[2])


def test_config_round_trip(model):
    config = model.get_config()
    again = DCIGN.from_config(config)
    assert again.get_config() == config
    assert again.count_params() == model.count_params()


def test_keras_file_round_trip(model, tmp_path):
    path = tmp_path / "model.keras"
    images = blob_images(2)
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, DCIGN)
    assert restored.get_config() == model.get_config()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(images)),
        keras.ops.convert_to_numpy(model(images)),
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "images, match",
    [
        (np.zeros((2, 64, 64, 1), "float32"), r"\(2, 64, 64, 1\); expected \(batch, 32, 32, 1\)"),
        (np.zeros((2, 32, 32, 3), "float32"), r"expected \(batch, 32, 32, 1\)"),
        (np.zeros((32, 32, 1), "float32"), r"\(32, 32, 1\); expected"),
        (np.zeros((2, 32, 32, 1), "uint8"), "dtype uint8; expected floating-point"),
    ],
)
def test_bad_images(model, images, match):
    with pytest.raises(ValueError, match=match):
        model(images)
    with pytest.raises(ValueError, match=match):
        model.encode(images)


def test_bad_group_and_arguments(model):
    with pytest.raises(ValueError, match="'hair'"):
        model.group_ids("hair", 4)
    with pytest.raises(ValueError, match="'hair'"):
        model.rerender(blob_images(1), hair=1.0)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        model.rerender(blob_images(3), light=[1.0, 2.0])
    with pytest.raises(ValueError, match="invariance_strength=-1"):
        tiny_model(invariance_strength=-1)
    with pytest.raises(ValueError, match="image_size=8"):
        DCIGN(image_size=8)
    with pytest.raises(ValueError, match="feature_maps=10"):
        DCIGN(feature_maps=10)
    with pytest.raises(ValueError, match="reconstruction='laplace'"):
        tiny_model(reconstruction="laplace")
