"""The Keras/JAX CPU settings: when the XLA flag is set, and the layer
formulations compute what the standard ops compute."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_dcign import jax_cpu

jax = pytest.importorskip("jax")
jnp = jax.numpy


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "environ, version, expected",
    [
        ({}, (0, 10), True),
        ({}, (0, 11), True),
        ({}, (0, 9), False),  # not measured there: an unknown flag makes XLA abort
        ({}, (0, 12), False),
        ({"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type="}, (0, 10), False),
        ({"XLA_FLAGS": "--xla_dump_to=/tmp/x"}, (0, 10), True),
        ({"KERAS_DCIGN_XLA_FLAGS": "0"}, (0, 10), False),
        ({"KERAS_DCIGN_XLA_FLAGS": "off"}, (0, 11), False),
    ],
)
def test_wants_xla_flag(environ, version, expected):
    assert jax_cpu.wants_xla_flag(environ, jaxlib_version=version) is expected


def _xla_flags_after_import(extra_env):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(KERAS_BACKEND="jax", **extra_env)
    code = "import os, keras_dcign.model; print(os.environ.get('XLA_FLAGS', ''))"
    # From a folder without the source tree, so that the installed package is imported.
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


@pytest.mark.backend_independent
def test_jax_trainer_sets_the_flag_and_keeps_the_users():
    expected = jax_cpu.wants_xla_flag({}, jaxlib_version=None)
    flags = _xla_flags_after_import({"XLA_FLAGS": "--xla_dump_hlo_as_text"})
    assert flags.startswith("--xla_dump_hlo_as_text")
    assert (jax_cpu.YNN_SETTING in flags) is expected
    user = "--xla_cpu_experimental_ynn_fusion_type="
    assert _xla_flags_after_import({"XLA_FLAGS": user}) == user
    assert jax_cpu.YNN_SETTING not in _xla_flags_after_import({"KERAS_DCIGN_XLA_FLAGS": "0"})


def _lax_conv(x, kernel):
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


@pytest.mark.backend_independent
@pytest.mark.parametrize("filters", [1, 3])
def test_tap_sum_conv_matches_the_convolution_and_its_gradients(filters):
    rng = np.random.default_rng(filters)
    x = rng.standard_normal((2, 13, 11, 5)).astype("float32")
    kernel = rng.standard_normal((7, 5, 5, filters)).astype("float32")
    upstream = rng.standard_normal((2, 7, 7, filters)).astype("float32")
    expected = _lax_conv(x, kernel)
    assert expected.shape == (2, 7, 7, filters)
    np.testing.assert_allclose(jax_cpu.tap_sum_conv(x, kernel), expected, atol=2e-5, rtol=1e-5)

    def loss(conv):
        return lambda x, k: jnp.sum(conv(x, k) * upstream)

    got = jax.grad(loss(jax_cpu.tap_sum_conv), argnums=(0, 1))(x, kernel)
    want = jax.grad(loss(_lax_conv), argnums=(0, 1))(x, kernel)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=5e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (1, 9, 11, 2)])
def test_reshape_max_pool_matches_max_pool(shape):
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    got = keras.ops.convert_to_numpy(jax_cpu.max_pool_2x2(x))
    want = keras.ops.convert_to_numpy(keras.ops.max_pool(x, 2, 2))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("out_maps, side", [(3, 4), (1, 5)])
def test_subpixel_conv_transpose_matches_the_transposed_convolution(out_maps, side):
    # On the session's backend: values and, on JAX, both gradients.
    rng = np.random.default_rng(out_maps)
    x = rng.standard_normal((2, side, side + 2, 5)).astype("float32")
    kernel = rng.standard_normal((4, 4, out_maps, 5)).astype("float32")
    want = keras.ops.convert_to_numpy(keras.ops.conv_transpose(x, kernel, 2, "same"))
    got = keras.ops.convert_to_numpy(jax_cpu.subpixel_conv_transpose(x, kernel))
    assert got.shape == want.shape == (2, 2 * side, 2 * side + 4, out_maps)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)
    if keras.backend.backend() != "jax":
        return
    upstream = rng.standard_normal(want.shape).astype("float32")

    def loss(conv):
        return lambda x, k: jnp.sum(conv(x, k) * upstream)

    stock = lambda x, k: keras.ops.conv_transpose(x, k, 2, "same")  # noqa: E731
    got = jax.grad(loss(jax_cpu.subpixel_conv_transpose), argnums=(0, 1))(x, kernel)
    want = jax.grad(loss(stock), argnums=(0, 1))(x, kernel)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=5e-5, rtol=1e-5)


# Which of each stack's layers the formulations compute, with 8 feature maps.
FORMULATED = {
    # The three pools and the convolutions to at most 4 maps (encoder convs to 8, 4 and 2
    # maps, decoder convs to 4, 8, 8 and 1).
    "paper": [
        ("MaxPooling2D", None),
        ("Conv2D", 4),
        ("MaxPooling2D", None),
        ("Conv2D", 2),
        ("MaxPooling2D", None),
        ("Conv2D", 4),
        ("Conv2D", 1),
    ],
    # The three 4x4 stride-2 transposed convolutions of the decoder.
    "strided": [("Conv2DTranspose", 16), ("Conv2DTranspose", 8), ("Conv2DTranspose", 1)],
}


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the formulations run on JAX only")
@pytest.mark.parametrize("architecture", sorted(FORMULATED))
def test_dcign_gives_the_same_outputs_and_gradients_with_and_without_them(
    monkeypatch, architecture
):
    from keras_dcign import DCIGN

    assert jax_cpu.on_jax_cpu()
    options = dict(image_size=32, feature_maps=8, architecture=architecture, seed=3)
    fast_model = DCIGN(**options)
    # The layers themselves are Keras' own.
    every = fast_model.encoder_layers + fast_model.decoder_layers
    fast_layers = [layer for layer in every if id(layer) in fast_model._formulations]
    described = [(type(layer).__name__, getattr(layer, "filters", None)) for layer in fast_layers]
    assert described == FORMULATED[architecture]
    assert all(type(layer).__module__.startswith("keras.") for layer in fast_layers)
    monkeypatch.setenv("KERAS_DCIGN_JAX_CPU_LAYERS", "0")
    assert not jax_cpu.on_jax_cpu()
    plain_model = DCIGN(**options)
    assert plain_model._formulations == {}
    plain_model.set_weights(fast_model.get_weights())
    images = np.random.default_rng(1).random((4, 32, 32, 1), dtype="float32")
    groups = fast_model.group_ids("light", 4)

    def run(model):
        values = [v.value for v in model.trainable_variables]

        def loss(values):
            mapping = list(zip(model.trainable_variables, values))
            with keras.StatelessScope(state_mapping=mapping):
                loss, _ = model.objective(images, groups, training=False)
            return loss

        return jax.value_and_grad(loss)(values)

    fast_loss, fast_grads = run(fast_model)
    plain_loss, plain_grads = run(plain_model)
    np.testing.assert_allclose(fast_loss, plain_loss, rtol=1e-5)
    for fast, plain in zip(fast_grads, plain_grads):
        scale = float(jnp.abs(plain).max()) + 1e-12
        np.testing.assert_allclose(fast / scale, plain / scale, atol=1e-4)
