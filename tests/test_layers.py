"""Gradient semantics of monovariant training, checked numerically on every backend."""

import keras
import numpy as np
import pytest
from helpers import blob_images, tiny_model, value_and_grad
from keras import ops

from keras_dcign import GraphicsCode, GraphicsCodeClamp
from keras_dcign.objective import reconstruction_loss

CODE = GraphicsCode({"azimuth": 1, "elevation": 2, "light": 1, "intrinsic": 4})


def _latents(seed=0):
    return np.random.default_rng(seed).normal(size=(6, CODE.size)).astype("float32")


@pytest.mark.parametrize("clamp", ["mean", "first"])
@pytest.mark.parametrize("strength", [0.0, 0.01, 0.5])
@pytest.mark.parametrize("group", ["azimuth", "elevation", "intrinsic"])
def test_clamped_gradient_is_the_invariance_term(clamp, strength, group):
    layer = GraphicsCodeClamp(CODE, clamp=clamp, invariance_strength=strength)
    z = _latents()
    upstream = np.random.default_rng(1).normal(size=z.shape).astype("float32")
    gid = np.full((len(z),), CODE.index(group), "int32")

    weights = ops.convert_to_tensor(upstream)
    _, grad = value_and_grad(lambda v: ops.sum(layer(v, gid) * weights), z)
    active = np.zeros(CODE.size, bool)
    active[CODE.slice(group)] = True
    np.testing.assert_allclose(grad[:, active], upstream[:, active], rtol=1e-6)
    invariance = strength * (z - z.mean(axis=0, keepdims=True))
    np.testing.assert_allclose(grad[:, ~active], invariance[:, ~active], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("clamp", ["mean", "first"])
def test_clamped_forward_values_are_identical_across_the_batch(clamp):
    layer = GraphicsCodeClamp(CODE, clamp=clamp)
    z = _latents()
    out = ops.convert_to_numpy(layer(z, np.int32(CODE.index("light"))))
    light = CODE.slice("light")
    np.testing.assert_array_equal(out[:, light], z[:, light])
    passive = np.ones(CODE.size, bool)
    passive[light] = False
    anchor = z.mean(axis=0) if clamp == "mean" else z[0]
    np.testing.assert_allclose(out[:, passive], np.broadcast_to(anchor[passive], (6, 7)), 1e-6)
    assert np.ptp(out[:, passive], axis=0).max() < 1e-6


def test_group_none_passes_everything_through():
    layer = GraphicsCodeClamp(CODE, invariance_strength=0.3)
    z = _latents()
    upstream = np.random.default_rng(2).normal(size=z.shape).astype("float32")
    weights = ops.convert_to_tensor(upstream)
    out, grad = value_and_grad(lambda v: ops.sum(layer(v, np.int32(-1)) * weights), z)
    np.testing.assert_allclose(grad, upstream, rtol=1e-6)
    np.testing.assert_allclose(out, np.sum(z * upstream), rtol=1e-5)


def test_active_group_gradient_equals_an_unclamped_models():
    """Through the real decoder and loss: the active group sees an ordinary VAE gradient."""
    model = tiny_model(invariance_strength=0.01)
    code = model.code
    images = blob_images(6, vary="light")
    z = _latents_for(code)
    gid = model.group_ids("light", 6)

    def clamped_loss(v):
        return ops.sum(reconstruction_loss(images, model.decode_logits(model.clamp_layer(v, gid))))

    clamped_values = ops.convert_to_numpy(model.clamp_layer(z, gid))

    def plain_loss(v):
        return ops.sum(reconstruction_loss(images, model.decode_logits(v)))

    loss_a, grad_clamped = value_and_grad(clamped_loss, z)
    loss_b, grad_plain = value_and_grad(plain_loss, clamped_values)
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-5)
    light = code.slice("light")
    np.testing.assert_allclose(grad_clamped[:, light], grad_plain[:, light], rtol=1e-4, atol=1e-5)
    assert np.abs(grad_plain[:, light]).max() > 0
    others = np.ones(code.size, bool)
    others[light] = False
    np.testing.assert_allclose(
        grad_clamped[:, others], 0.01 * (z - z.mean(0))[:, others], rtol=1e-5, atol=1e-7
    )


def _latents_for(code):
    return np.random.default_rng(3).normal(size=(6, code.size)).astype("float32")


@pytest.mark.parametrize("clamp", ["mean", "first"])
def test_side_by_side_batches_are_each_clamped_on_their_own(clamp):
    # Three monovariant batches of 4 in one call: the same values and gradients as three
    # calls, each with its own active group (one of them a plain-VAE batch).
    z = np.random.default_rng(5).normal(size=(12, CODE.size)).astype("float32")
    upstream = np.random.default_rng(6).normal(size=z.shape).astype("float32")
    groups = [CODE.index("light"), -1, CODE.index("intrinsic")]
    gid = np.repeat(np.asarray(groups, "int32"), 4)
    weights = ops.convert_to_tensor(upstream)
    together = GraphicsCodeClamp(CODE, clamp, invariance_strength=0.1, batch_size=4)
    out, grad = value_and_grad(lambda v: ops.sum(together(v, gid) * weights), z)
    one = GraphicsCodeClamp(CODE, clamp, invariance_strength=0.1)
    want_out, want_grad = 0.0, []
    for k, group in enumerate(groups):
        part = slice(4 * k, 4 * k + 4)
        w = ops.convert_to_tensor(upstream[part])
        value, g = value_and_grad(
            lambda v, group=group, w=w: ops.sum(one(v, np.int32(group)) * w), z[part]
        )
        want_out += float(value)
        want_grad.append(g)
    np.testing.assert_allclose(out, want_out, rtol=1e-5)
    np.testing.assert_allclose(grad, np.concatenate(want_grad), rtol=1e-5, atol=1e-7)
    # ... and not what one clamp over all twelve gives.
    _, whole = value_and_grad(lambda v: ops.sum(one(v, gid) * weights), z)
    assert np.abs(whole - grad).max() > 1e-3


def test_side_by_side_batches_must_fill_the_call():
    layer = GraphicsCodeClamp(CODE, batch_size=4)
    with pytest.raises(ValueError, match="batch of 6 latents .* multiple of 4"):
        layer(_latents(), np.int32(1))


def test_config_round_trip():
    layer = GraphicsCodeClamp(
        CODE, clamp="first", invariance_strength=0.01, batch_size=20, name="c"
    )
    again = GraphicsCodeClamp.from_config(layer.get_config())
    assert again.code == CODE and again.clamp == "first" and again.invariance_strength == 0.01
    assert again.batch_size == 20
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert restored.get_config() == layer.get_config()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"invariance_strength": -0.1}, "invariance_strength=-0.1"),
        ({"clamp": "median"}, "clamp='median'"),
        ({"batch_size": 1}, "batch_size=1"),
        ({"batch_size": 2.5}, "batch_size=2.5"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GraphicsCodeClamp(CODE, **kwargs)
