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
- XLA's gradient of a 4x4, stride-2 transposed convolution (the strided
  decoder's layers) runs 5x to 10x slower than the convolution itself. The
  same layer as one stride-1 2x2 convolution to the four output phases,
  interleaved (`subpixel_conv_transpose`), has ordinary convolution
  gradients.

The network keeps Keras' own `Conv2D`, `Conv2DTranspose` and `MaxPooling2D`
layers (so saved weights are Keras' too); `formulation(layer)` says which of
these functions computes a given layer on JAX/CPU, and `DCIGN` calls it there.

The flag is left alone where the user's `XLA_FLAGS` already sets it, where
`KERAS_DCIGN_XLA_FLAGS=0`, and for jaxlib versions it was not measured on
(an unknown flag makes XLA abort). `KERAS_DCIGN_JAX_CPU_LAYERS=0` turns the
layer formulations off. Neither changes the weights or the results
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


# Output phase r of a 4x4, stride-2, "same" transposed convolution reads two neighbouring
# inputs (those at m - 1 + r and m + r of the input padded by one) with these kernel taps.
_PHASE_TAPS = ((3, 1), (2, 0))


def subpixel_conv_transpose(x, kernel):
    """4x4, stride-2, "same" NHWC transposed convolution as one 2x2 convolution.

    `kernel` is laid out as Keras' `Conv2DTranspose` keeps it, `(4, 4, out,
    in)`. Every output pixel `(2m + r, 2n + c)` sums four input pixels, each
    times one kernel tap; the four phases `(r, c)` differ only in which taps
    and an offset of one, so one valid stride-1 2x2 convolution of the
    input padded by one, to `4 * out` maps, computes all of them, and a
    reshape interleaves them. Same values as `keras.ops.conv_transpose(x,
    kernel, 2, "same")`; its gradients are those of a plain convolution.
    Any backend (`keras.ops`).
    """
    from keras import ops

    height, width = ops.shape(x)[1], ops.shape(x)[2]
    out = ops.shape(kernel)[2]
    kernel = ops.transpose(kernel, (0, 1, 3, 2))  # (4, 4, in, out)
    phases = []
    for row_taps in _PHASE_TAPS:
        rows = ops.stack([kernel[tap] for tap in row_taps], axis=0)
        for col_taps in _PHASE_TAPS:
            phases.append(ops.stack([rows[:, tap] for tap in col_taps], axis=1))
    y = ops.conv(ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), ops.concatenate(phases, -1))
    rows = []
    for r in (0, 1):
        cols = []
        for c in (0, 1):
            group = 2 * r + c
            cols.append(y[:, r : r + height, c : c + width, group * out : (group + 1) * out])
        rows.append(ops.stack(cols, axis=3))  # (batch, h, w, 2 [c], out)
    y = ops.stack(rows, axis=2)  # (batch, h, 2 [r], w, 2 [c], out)
    return ops.reshape(y, (-1, 2 * height, 2 * width, out))


def formulation(layer):
    """The faster JAX/CPU computation of a stock Keras layer, or None.

    Returns a function `x -> y` giving the same values as `layer(x)` (at the
    layer's compute dtype, activation and bias included) for a 2x2 stride-2
    valid NHWC `MaxPooling2D` (`max_pool_2x2`), a valid stride-1 NHWC
    `Conv2D` to at most `TAP_SUM_MAX_FILTERS` maps (`tap_sum_conv`) and a
    4x4 stride-2 "same" NHWC `Conv2DTranspose` (`subpixel_conv_transpose`);
    None for any other layer, or off JAX/CPU (`on_jax_cpu`). Call it once the
    layer is built.
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
        return _with_bias_and_activation(layer, tap_sum_conv)
    if type(layer) is keras.layers.Conv2DTranspose and (
        tuple(layer.kernel_size) == (4, 4)
        and tuple(layer.strides) == (2, 2)
        and layer.padding == "same"
        and layer.data_format == "channels_last"
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.output_padding is None
    ):
        return _with_bias_and_activation(layer, subpixel_conv_transpose)
    return None


def _with_bias_and_activation(layer, convolution):
    """`layer(x)` for a Keras convolution layer, with `convolution(x, kernel)` at its core."""
    from keras import ops

    def call(x):
        dtype = layer.compute_dtype
        y = convolution(ops.cast(x, dtype), ops.cast(layer.kernel, dtype))
        if layer.use_bias:
            y = y + ops.cast(layer.bias, dtype)
        return layer.activation(y) if layer.activation is not None else y

    return call
