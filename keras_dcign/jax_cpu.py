"""Keras/JAX on CPU: the XLA setting and two layer formulations that make it fast.

Measured in `docs/benchmarks.md` ("Keras/JAX on CPU"):

- jaxlib 0.10 and 0.11 hand every plain convolution to YNNPACK, which is 2x
  to 20x slower than XLA's own (Eigen) convolutions on this network's shapes.
  `configure_xla_flags` adds `--xla_cpu_experimental_ynn_fusion_type=
  -individual_convolution` to `XLA_FLAGS`, which takes convolutions off
  YNNPACK's list and leaves the rest alone. It runs when the JAX trainer is
  loaded (importing `keras_dcign.model` with the JAX backend), and works only
  if JAX has not run a computation yet; otherwise it warns once.
- XLA's gradient of a 2x2 max-pool builds index tensors and a scatter; the
  same pool written as a reshape and a max has an elementwise gradient
  (`max_pool_2x2`).
- A convolution to one or a few maps (the decoder's last layer, 96 maps to
  1) makes XLA build the full patch matrix; one matrix product to the
  kernel's taps followed by a sum of shifted taps does the same in half the
  time (`tap_sum_conv`).

The network keeps Keras' own `Conv2D` and `MaxPooling2D` layers (so saved
weights are Keras' too); `formulation(layer)` says which of these two
functions computes a given layer on JAX/CPU, and `DCIGN` calls it there.

The flag is left alone where the user's `XLA_FLAGS` already sets it, where
`KERAS_DCIGN_XLA_FLAGS=0`, and for jaxlib versions it was not measured on
(an unknown flag makes XLA abort). `KERAS_DCIGN_JAX_CPU_LAYERS=0` turns the
two layer formulations off. Neither changes the weights or the results
beyond float rounding.
"""

import importlib.metadata
import os
import warnings

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
YNN_SETTING = f"{YNN_FLAG}=-individual_convolution"
# jaxlib versions whose CPU compiler knows the flag and sends convolutions to YNNPACK.
JAXLIB_VERSIONS = ((0, 10), (0, 12))

# `tap_sum_conv` pays for convolutions to at most this many maps (the decoder's last layer).
TAP_SUM_MAX_FILTERS = 4

_OFF = ("0", "false", "no", "off")
_warned = False


def _jaxlib_version():
    try:
        version = importlib.metadata.version("jaxlib")
    except importlib.metadata.PackageNotFoundError:
        return None
    parts = []
    for part in version.split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def wants_xla_flag(environ=None, jaxlib_version=None):
    """Whether `configure_xla_flags` would add the YNNPACK setting to `XLA_FLAGS`."""
    environ = os.environ if environ is None else environ
    if environ.get("KERAS_DCIGN_XLA_FLAGS", "1").strip().lower() in _OFF:
        return False
    if YNN_FLAG in environ.get("XLA_FLAGS", ""):
        return False  # the user chose a setting; keep it
    version = _jaxlib_version() if jaxlib_version is None else jaxlib_version
    if version is None:
        return False
    low, high = JAXLIB_VERSIONS
    return low <= tuple(version) < high


def configure_xla_flags(environ=None):
    """Add the YNNPACK setting to `XLA_FLAGS` when it applies (see the module docstring).

    Returns:
        True if the setting was added.
    """
    global _warned
    environ = os.environ if environ is None else environ
    if not wants_xla_flag(environ):
        return False
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        if not _warned:
            _warned = True
            warnings.warn(
                "JAX ran a computation before keras_dcign was loaded, so its CPU "
                f"convolutions stay on YNNPACK (several times slower here); set XLA_FLAGS="
                f"{YNN_SETTING} before the first JAX computation.",
                stacklevel=3,
            )
        return False
    environ["XLA_FLAGS"] = f"{environ.get('XLA_FLAGS', '')} {YNN_SETTING}".strip()
    return True


def on_jax_cpu():
    """True when Keras runs on JAX, JAX computes on the CPU, and the layer
    formulations are not turned off with `KERAS_DCIGN_JAX_CPU_LAYERS=0`."""
    import keras

    if os.environ.get("KERAS_DCIGN_JAX_CPU_LAYERS", "1").strip().lower() in _OFF:
        return False

    if keras.backend.backend() != "jax":
        return False
    import jax

    return jax.default_backend() == "cpu"


def max_pool_2x2(x):
    """2x2, stride-2, floor ("valid") max-pool of NHWC `x`, as a reshape and a max.

    Same values as `keras.ops.max_pool(x, 2, 2)`; its gradient is elementwise
    (exact ties share it instead of one element taking it all).
    """
    from keras import ops

    _, height, width, channels = ops.shape(x)
    height, width = height // 2, width // 2
    x = x[:, : 2 * height, : 2 * width, :]
    return ops.max(ops.reshape(x, (-1, height, 2, width, 2, channels)), axis=(2, 4))


def tap_sum_conv(x, kernel):
    """Valid, stride-1 NHWC convolution as one matrix product to taps plus a shifted sum.

    `taps[b, h, w, i, j, f] = sum_c x[b, h, w, c] * kernel[i, j, c, f]`, and
    `out[b, y, x, f] = sum_ij taps[b, y + i, x + j, i, j, f]`. The gradient
    builds the upstream gradient's shifted copies once and uses two more
    matrix products. Memory: `kh * kw * filters` floats per input pixel, so
    use it for convolutions to few maps. JAX only.
    """
    import jax
    import jax.numpy as jnp

    x, kernel = jnp.asarray(x), jnp.asarray(kernel)
    kh, kw = kernel.shape[0], kernel.shape[1]

    def shifted_sum(taps):
        height = taps.shape[1] - kh + 1
        width = taps.shape[2] - kw + 1
        out = 0
        for i in range(kh):
            for j in range(kw):
                out = out + taps[:, i : i + height, j : j + width, i, j, :]
        return out

    def forward(x, kernel):
        taps = jnp.einsum("bhwc,ijcf->bhwijf", x, kernel)
        return shifted_sum(taps)

    @jax.custom_vjp
    def conv(x, kernel):
        return forward(x, kernel)

    def conv_fwd(x, kernel):
        return forward(x, kernel), (x, kernel)

    def conv_bwd(residuals, upstream):
        x, kernel = residuals
        height, width = x.shape[1], x.shape[2]
        padded = jnp.pad(upstream, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
        # d taps[b, h, w, i, j, f] = upstream[b, h - i, w - j, f] (zero outside).
        shifted = jnp.stack(
            [
                jnp.stack(
                    [
                        padded[:, kh - 1 - i : kh - 1 - i + height, kw - 1 - j : kw - 1 - j + width]
                        for j in range(kw)
                    ],
                    axis=3,
                )
                for i in range(kh)
            ],
            axis=3,
        )
        dx = jnp.einsum("bhwijf,ijcf->bhwc", shifted, kernel)
        dkernel = jnp.einsum("bhwc,bhwijf->ijcf", x, shifted)
        return dx.astype(x.dtype), dkernel.astype(kernel.dtype)

    conv.defvjp(conv_fwd, conv_bwd)
    return conv(x, kernel)


def formulation(layer):
    """The faster JAX/CPU computation of a stock Keras layer, or None.

    Returns a function `x -> y` giving the same values as `layer(x)` (at the
    layer's compute dtype, activation and bias included) for a 2x2 stride-2
    valid NHWC `MaxPooling2D` (`max_pool_2x2`) and for a valid stride-1 NHWC
    `Conv2D` to at most `TAP_SUM_MAX_FILTERS` maps (`tap_sum_conv`); None for
    any other layer, or off JAX/CPU (`on_jax_cpu`). Call it once the layer is built.
    """
    import keras
    from keras import ops

    if not on_jax_cpu():
        return None
    if type(layer) is keras.layers.MaxPooling2D:
        if (
            tuple(layer.pool_size) == (2, 2)
            and tuple(layer.strides) == (2, 2)
            and layer.padding == "valid"
            and layer.data_format == "channels_last"
        ):
            return lambda x: max_pool_2x2(ops.cast(x, layer.compute_dtype))
        return None
    if type(layer) is keras.layers.Conv2D and (
        layer.filters <= TAP_SUM_MAX_FILTERS
        and layer.groups == 1
        and layer.padding == "valid"
        and layer.data_format == "channels_last"
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
    ):

        def conv(x):
            dtype = layer.compute_dtype
            y = tap_sum_conv(ops.cast(x, dtype), ops.cast(layer.kernel, dtype))
            if layer.use_bias:
                y = y + ops.cast(layer.bias, dtype)
            return layer.activation(y) if layer.activation is not None else y

        return conv
    return None
