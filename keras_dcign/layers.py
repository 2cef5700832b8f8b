"""The clamp / gradient-filter layer of monovariant DC-IGN training.

The rest of the network is stock Keras layers; on JAX/CPU two of them are computed by the
formulations in `keras_dcign.jax_cpu` (see `jax_cpu.formulation`)."""

import keras
import numpy as np
from keras import ops

from keras_dcign.graphics_code import GraphicsCode

CLAMP_MODES = ("mean", "first")


@keras.saving.register_keras_serializable(package="keras_dcign")
class GraphicsCodeClamp(keras.layers.Layer):
    """Clamps every latent outside the batch's active group, and filters gradients.

    In a DC-IGN minibatch only one transformation varies (say, light). The
    latents of every other group are clamped to one value for the whole
    batch, so the decoder can only explain the variation through the active
    group. On the way back the active group gets its normal gradient, while
    each clamped latent gets `invariance_strength * (z - batch mean)` instead
    of what the decoder asks for: a pull of the encoder towards producing
    the same value for every image of the batch ("invariance targeting";
    0 gives a zero gradient, the reference code's default).

    Args:
        code: the `GraphicsCode` (or its config) that names the groups.
        clamp: `"mean"` clamps to the batch mean (as in the paper) or
            `"first"` to the first sample's values (as the reference code).
        invariance_strength: non-negative float, the strength of the
            gradient that pulls clamped latents towards their batch mean.
        batch_size: images per monovariant batch. A call's batch of
            `k * batch_size` images is then `k` monovariant batches side by
            side, each with its own active group, clamped to its own mean
            (more work per training step, the same method). None (default):
            the call's whole batch is one monovariant batch.

    Call arguments:
        z: latent tensor of shape `(batch, code.size)`.
        group: integer tensor, either a scalar or one id per sample (the
            first sample's id is the monovariant batch's), the active group
            id; a negative id means nothing is clamped (a plain VAE batch).

    Example:

    >>> import keras
    >>> from keras_dcign import GraphicsCode, GraphicsCodeClamp
    >>> clamp = GraphicsCodeClamp(GraphicsCode.paper())
    >>> z = np.random.default_rng(0).normal(size=(4, 200)).astype("float32")
    >>> z_clamped = keras.ops.convert_to_numpy(clamp(z, group=2))  # only "light" varies
    >>> bool(np.allclose(z_clamped[:, 2], z[:, 2]))  # the active group keeps its values
    True
    >>> bool(np.allclose(z_clamped[:, 3:], z[:, 3:].mean(axis=0)))  # the rest: the batch mean
    True
    """

    def __init__(self, code, clamp="mean", invariance_strength=0.0, batch_size=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(code, dict):
            code = GraphicsCode.from_config(code)
        if not isinstance(code, GraphicsCode):
            raise ValueError(f"code must be a GraphicsCode, got {code!r}.")
        if clamp not in CLAMP_MODES:
            raise ValueError(f"clamp={clamp!r} is not supported; expected one of {CLAMP_MODES}.")
        strength = float(invariance_strength)
        if not np.isfinite(strength) or strength < 0:
            raise ValueError(
                f"invariance_strength={invariance_strength!r} is invalid; expected a "
                "non-negative number."
            )
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2
        ):
            raise ValueError(f"batch_size={batch_size!r} is invalid; expected None or an int >= 2.")
        self.code = code
        self.clamp = clamp
        self.invariance_strength = strength
        self.batch_size = batch_size
        self._unit_groups = np.asarray(code.group_of_unit(), dtype="int32")

    def active_mask(self, group, dtype, batch_size=None):
        """A `(code.size,)` mask, 1 for the active group's units (all units if its id is < 0);
        with `batch_size`, a `(batches, 1, code.size)` one, per monovariant batch of that size."""
        group = ops.reshape(ops.convert_to_tensor(group), (-1,))
        group = ops.cast(
            ops.reshape(group, (-1, batch_size or ops.shape(group)[0]))[:, :1], "int32"
        )
        unit_groups = ops.convert_to_tensor(self._unit_groups)[None, :]
        active = ops.logical_or(ops.equal(unit_groups, group), ops.less(group, 0))
        mask = ops.cast(active, dtype)
        return mask[0] if batch_size is None else mask[:, None, :]

    def call(self, z, group):
        strength = ops.cast(self.invariance_strength, z.dtype)
        first = self.clamp == "first"
        size = ops.shape(z)[0]
        if self.batch_size is None or (isinstance(size, int) and size == self.batch_size):
            mask = self.active_mask(group, z.dtype)
            return _clamp_with_invariance_gradient(z, mask, strength, first)
        if isinstance(size, int) and size % self.batch_size:
            raise ValueError(
                f"A batch of {size} latents is not a whole number of monovariant batches of "
                f"{self.batch_size}; expected a multiple of {self.batch_size}."
            )
        group = ops.convert_to_tensor(group)
        if len(ops.shape(group)) == 0:
            group = ops.broadcast_to(group, ops.shape(z)[:1])
        mask = self.active_mask(group, z.dtype, self.batch_size)
        parts = ops.reshape(z, (-1, self.batch_size, ops.shape(z)[-1]))
        clamped = _clamp_with_invariance_gradient(parts, mask, strength, first)
        return ops.reshape(clamped, ops.shape(z))

    def compute_output_shape(self, z_shape, group_shape=None):
        return z_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "code": self.code.get_config(),
                "clamp": self.clamp,
                "invariance_strength": self.invariance_strength,
                "batch_size": self.batch_size,
            }
        )
        return config


def _clamp_with_invariance_gradient(z, mask, strength, use_first):
    # `z` is `(batch, units)` or `(batches, batch, units)`: the batch axis is the one before
    # the units. `first` is a Python bool, so each mode traces its own graph.
    @ops.custom_gradient
    def clamp(z, mask, strength):
        batch_mean = ops.mean(z, axis=-2, keepdims=True)
        anchor = z[..., :1, :] if use_first else batch_mean
        out = mask * z + (1.0 - mask) * anchor

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            invariance = strength * (z - batch_mean)
            dz = mask * upstream + (1.0 - mask) * invariance
            return dz, ops.zeros_like(mask), ops.zeros_like(strength)

        return out, grad

    return clamp(z, mask, strength)
