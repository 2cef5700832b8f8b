"""The DC-IGN model: encoder, graphics code, clamp and decoder."""

import math

import keras
import numpy as np
from keras import layers, ops

from keras_dcign import jax_cpu
from keras_dcign.calibration import Calibration
from keras_dcign.graphics_code import GraphicsCode, check_parts
from keras_dcign.layers import GraphicsCodeClamp
from keras_dcign.objective import (
    GAUSSIAN_SCALES,
    RECONSTRUCTIONS,
    dcign_objective,
    soft_clip_log_scale,
)
from keras_dcign.posterior import DiagonalGaussian
from keras_dcign.stacks import (
    ARCHITECTURES,
    STRIDED_STAGES,
    paper_stack,
    strided_stack,
    strided_stages_for,
)
from keras_dcign.trainers import backend_trainer


@keras.saving.register_keras_serializable(package="keras_dcign")
class DCIGN(backend_trainer(), keras.Model):
    """The Deep Convolutional Inverse Graphics Network (Kulkarni et al., 2015).

    A variational auto-encoder whose latent "graphics code" is split into
    named groups (azimuth, elevation, light, intrinsic). With the defaults it
    is exactly the reference network: 3 x [5x5 conv, 2x2 max-pool, ReLU] with
    96/48/24 maps, two linear heads to a 200-unit code, then a linear layer
    back to 24x15x15 and 4 x [x2 nearest upsampling, 7x7 conv] with 48/96/96/1
    maps and a sigmoid: 4,131,137 parameters. Other image sizes choose
    per-layer zero padding so the output size equals the input size (see
    `plan_padding`).

    Training follows the paper: a batch is `(images, group_ids)` where the
    group id names the one group that varies in the batch (-1: everything
    varies). Latents outside that group are clamped for the whole batch by
    `GraphicsCodeClamp`, which also filters their gradients.

    `architecture="strided"` keeps the graphics code, the clamp and the
    objective but swaps the conv stack for a standard one that learns much
    faster per image and per second: S x [4x4 stride-2 "same" conv, ReLU]
    with F, 2F, 4F... maps down to a grid of the image side / 2^S (rounded
    up), and S x [4x4 stride-2 transposed conv] back up (... 2F, F,
    channels), cropped to the image side where it is not a multiple of 2^S.
    S is `strided_stages`: by default 3, plus one while the grid would be
    wider than 12 px (`strided_stages_for`; 4 at 150 px).

    Args:
        image_size: side of the square input images (150 in the paper).
        channels: 1 for grayscale, 3 for RGB.
        feature_maps: maps of the first encoder convolution (F); the paper
            network uses F, F/2, F/4 maps in the encoder and F/2, F, F in
            the decoder, the strided one F, 2F, 4F and 2F, F.
        architecture: `"paper"` (the reference conv stack) or `"strided"`.
        strided_stages: stride-2 stages of the strided stack (None: chosen by
            image size, see above); ignored by the paper stack.
        code: a `GraphicsCode`, its config dict, or a layout name:
            `"paper"` (the default: azimuth, elevation, light, intrinsic) or
            `"shape_texture"` (azimuth, elevation, light, shape, texture; see
            `GraphicsCode.shape_texture`). The saved config holds the code's
            config dict.
        monovariant: True for DC-IGN training; False trains every batch as a
            plain VAE (the paper's entangled baseline, same architecture).
        clamp: `"mean"` (paper) or `"first"` (reference code).
        invariance_strength: gradient strength pulling clamped latents
            towards their batch mean (0 = zero gradient).
        monovariant_batch_size: images per monovariant batch, when a
            training batch holds several side by side (each clamped on its
            own; see `GraphicsCodeClamp`). None: a training batch is one.
        reconstruction: `"bernoulli"` (summed binary cross-entropy) or
            `"gaussian"`.
        gaussian_scale: standard deviation of the Gaussian likelihood: a
            positive number, `"learned"` (one shared trainable log sigma,
            soft-clipped at e^-6, a calibrated decoder) or `"analytic"` (the
            batch's own error, the optimal shared sigma).
        kl_weight: weight of the KL term (beta).
        seed: seed of the sampling noise.
        calibration: an optional `Calibration` (or its config) from degrees
            to latent values; with it `rerender` takes degrees and names.

    Example:

    Two training steps on small rendered faces (a real run takes thousands;
    see `dcign train`):

    >>> from keras_dcign.datasets import faces
    >>> model = keras_dcign.DCIGN(image_size=32, feature_maps=8, architecture="strided")
    >>> model.compile()
    >>> data = faces.dataset(steps_per_epoch=2, batch_size=4, image_size=32)
    >>> history = model.fit(data, epochs=1, verbose=0)
    >>> sorted(history.history)  # doctest: +NORMALIZE_WHITESPACE
    ['kl', 'kl_azimuth', 'kl_elevation', 'kl_intrinsic', 'kl_light', 'loss',
     'reconstruction']
    >>> images = faces.render([1, 2], azimuth=[0.0, 30.0], image_size=32)[..., None]
    >>> relit = model.rerender(images, light=1.5)  # uncalibrated: a latent value
    >>> tuple(relit.shape)
    (2, 32, 32, 1)
    """

    def __init__(
        self,
        image_size=150,
        channels=1,
        feature_maps=96,
        architecture="paper",
        strided_stages=None,
        code=None,
        monovariant=True,
        clamp="mean",
        invariance_strength=0.0,
        monovariant_batch_size=None,
        reconstruction="bernoulli",
        gaussian_scale=0.1,
        kl_weight=1.0,
        seed=None,
        calibration=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        code = GraphicsCode.of(code)
        if channels not in (1, 3):
            raise ValueError(f"channels={channels!r} is not supported; expected 1 or 3.")
        if (
            isinstance(feature_maps, bool)
            or not isinstance(feature_maps, int)
            or (feature_maps < 4 or feature_maps % 4)
        ):
            raise ValueError(
                f"feature_maps={feature_maps!r} is invalid; expected a positive multiple of 4."
            )
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(
                f"reconstruction={reconstruction!r} is not supported; expected one of "
                f"{RECONSTRUCTIONS}."
            )
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture={architecture!r} is not supported; expected one of {ARCHITECTURES}."
            )
        if architecture == "strided":
            if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 16:
                raise ValueError(
                    f"image_size={image_size!r} is not supported by architecture='strided'; "
                    "expected an integer >= 16."
                )
            if strided_stages is None:
                strided_stages = strided_stages_for(image_size)
            if (
                isinstance(strided_stages, bool)
                or not isinstance(strided_stages, int)
                or not 1 <= strided_stages <= math.log2(image_size / 2)
            ):
                raise ValueError(
                    f"strided_stages={strided_stages!r} is invalid for image_size={image_size}; "
                    "expected a positive integer that leaves a code grid of at least 2 px."
                )
        else:
            strided_stages = None
        gaussian_scale = _check_gaussian_scale(gaussian_scale)
        if not float(kl_weight) >= 0:
            raise ValueError(f"kl_weight={kl_weight!r} is invalid; expected a number >= 0.")
        self.image_size = image_size
        self.channels = channels
        self.feature_maps = feature_maps
        self.architecture = architecture
        self.strided_stages = strided_stages
        self.code = code
        self.monovariant = bool(monovariant)
        self.reconstruction = reconstruction
        self.gaussian_scale = gaussian_scale
        self.kl_weight = float(kl_weight)
        self.seed = seed
        if isinstance(calibration, dict):
            calibration = Calibration.from_config(calibration)
        self.calibration = calibration
        # Sub-layers follow the model's dtype policy (mixed precision included).
        dtype = self.dtype_policy
        self.clamp = clamp
        self.invariance_strength = float(invariance_strength)
        self.monovariant_batch_size = monovariant_batch_size
        self.clamp_layer = GraphicsCodeClamp(
            code, clamp, invariance_strength, monovariant_batch_size, name="clamp", dtype=dtype
        )
        self.seed_generator = keras.random.SeedGenerator(seed, name="sampling_seed")
        if architecture == "strided":
            encoder, decoder = strided_stack(
                image_size, channels, feature_maps, strided_stages, dtype
            )
        else:
            encoder, decoder = paper_stack(image_size, channels, feature_maps, dtype)
        # Tracked in the reference's module order: encoder, heads, decoder.
        self.encoder_layers = encoder
        self.z_mean = layers.Dense(code.size, name="z_mean", dtype=dtype)
        self.z_log_var = layers.Dense(code.size, name="z_log_var", dtype=dtype)
        self.decoder_layers = decoder
        if reconstruction == "gaussian" and gaussian_scale == "learned":
            # One shared sigma of the pixel likelihood, learned with the rest (sigma-VAE).
            self.log_scale = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(np.log(0.1)),
                dtype="float32",
                name="log_scale",
            )
        self._trackers = [
            keras.metrics.Mean(name=name)
            for name in ["loss", "reconstruction", "kl"] + [f"kl_{g}" for g in code.names]
        ]
        self.build((None, image_size, image_size, channels))

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.encoder_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.z_mean.build(shape)
        self.z_log_var.build(shape)
        shape = (shape[0], self.code.size)
        for layer in self.decoder_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        # On JAX/CPU some stock layers have a faster formulation (same weights, same values).
        # (Kept out of Keras' tracking: it holds functions, not state.)
        formulations = {
            id(layer): fast
            for layer in self.encoder_layers + self.decoder_layers
            if (fast := jax_cpu.formulation(layer)) is not None
        }
        object.__setattr__(self, "_formulations", formulations)
        self.built = True

    @property
    def metrics(self):
        return self._trackers

    def _check_images(self, images):
        expected = (self.image_size, self.image_size, self.channels)
        shape = tuple(ops.shape(images))
        if len(shape) != 4 or tuple(shape[1:]) != expected:
            raise ValueError(
                f"images have shape {shape}; expected (batch, {expected[0]}, {expected[1]}, "
                f"{expected[2]})."
            )
        dtype = keras.backend.standardize_dtype(getattr(images, "dtype", None) or "float32")
        if "float" not in dtype:
            raise ValueError(
                f"images have dtype {dtype}; expected floating-point values in [0, 1] "
                "(divide uint8 images by 255)."
            )
        return ops.convert_to_tensor(images, dtype=self.compute_dtype)

    def encode(self, images, training=False):
        """The posterior q(z | images), a `DiagonalGaussian`."""
        x = self._check_images(images)
        for layer in self.encoder_layers:
            x = self._apply(layer, x, training)
        return DiagonalGaussian(self.z_mean(x), self.z_log_var(x))

    def decode_logits(self, z, training=False):
        """Decoder outputs before the final sigmoid."""
        x = ops.convert_to_tensor(z, dtype=self.compute_dtype)
        for layer in self.decoder_layers:
            x = self._apply(layer, x, training)
        return x

    def _apply(self, layer, x, training):
        fast = self._formulations.get(id(layer))
        return fast(x) if fast is not None else layer(x, training=training)

    def decode(self, z, training=False):
        """Images in [0, 1] rendered from graphics codes `z` of shape `(batch, code.size)`."""
        return ops.sigmoid(self.decode_logits(z, training=training))

    def call(self, images, training=False):
        posterior = self.encode(images, training=training)
        z = posterior.sample(seed=self.seed_generator) if training else posterior.mean
        return self.decode(z, training=training)

    def group_ids(self, group, batch_size):
        """The `y` of a training batch: one group id per image (-1 for "none")."""
        if group is None or (isinstance(group, str) and group == "none"):
            gid = -1
        else:
            gid = self.code.index(group)
        return np.full((int(batch_size),), gid, dtype="int32")

    def objective(self, images, groups=None, training=True):
        """The loss and its logged terms for one batch.

        Args:
            images: float images, `(batch, H, W, C)`.
            groups: the active group ids (see `group_ids`); None trains the
                batch as a plain VAE.
            training: whether layers run in training mode.
        """
        images = self._check_images(images)
        posterior = self.encode(images, training=training)
        z = posterior.sample(seed=self.seed_generator)
        if self.monovariant and groups is not None:
            z = self.clamp_layer(z, groups)
        logits = self.decode_logits(z, training=training)
        loss, terms = dcign_objective(
            images,
            logits,
            posterior,
            self.code,
            self.reconstruction,
            self.likelihood_scale(),
            self.kl_weight,
        )
        if self.losses:
            loss = loss + ops.sum(ops.stack([ops.cast(x, "float32") for x in self.losses]))
        return loss, terms

    def likelihood_scale(self):
        """The Gaussian's sigma as the objective takes it: a number, `"analytic"`, or the
        soft-clipped learned log sigma (a tensor)."""
        if self.reconstruction == "gaussian" and self.gaussian_scale == "learned":
            return soft_clip_log_scale(self.log_scale)
        return self.gaussian_scale

    def update_trackers(self, loss, terms):
        """Feeds the loss and its terms to the metric trackers and returns their results."""
        values = dict(terms, loss=loss)
        for tracker in self._trackers:
            tracker.update_state(values[tracker.name])
        return {tracker.name: tracker.result() for tracker in self._trackers}

    def identity_units(self):
        """Indices of the code's identity units: every unit but the pose and light ones.

        With a calibration, every unit but the calibrated factors' units (for
        an entangled model, the units that vary most with each factor);
        without one, the units outside the azimuth, elevation and light groups.
        """
        if self.calibration is not None and len(self.calibration.factors):
            pose = [
                self.code.slice(entry.get("group", factor)).start + int(entry["unit"])
                for factor, entry in self.calibration.factors.items()
            ]
        else:
            pose = [
                unit
                for name in ("azimuth", "elevation", "light")
                if name in self.code.names
                for unit in range(self.code.slice(name).start, self.code.slice(name).stop)
            ]
        return np.setdiff1d(np.arange(self.code.size), pose)

    def rerender(self, images, identity_from=None, shape_from=None, texture_from=None, **values):
        """Encodes images, sets named groups of the graphics code, and decodes.

        Args:
            images: float images `(batch, H, W, C)` in [0, 1].
            identity_from: optional images of the same size (one, or one per
                image): the output keeps the pose and light of `images` and
                takes the identity code (`identity_units`) of these.
            shape_from, texture_from: optional images of the same size (one,
                or one per image), for a model whose code has `shape` and
                `texture` groups (`GraphicsCode.shape_texture`): the output
                takes that group's code from these and keeps everything else
                of `images` (pose, light and the other group). Applied after
                `identity_from`.
            **values: group name -> value. For a factor the model is
                calibrated for (see `Calibration`), the value is in degrees
                or a direction name (`light="left"`, `azimuth=30`,
                `elevation="up"`); otherwise it is a latent value: a
                scalar, an array of the group's size, or one row per image.

        Returns:
            The re-rendered images.

        Example:

        >>> from keras_dcign.datasets import faces
        >>> model = keras_dcign.from_preset("faces_64")
        >>> images = faces.render([3, 4], image_size=64)[..., None]  # two frontal faces
        >>> relit = model.rerender(images, light="left", azimuth=30)
        >>> tuple(relit.shape)
        (2, 64, 64, 1)
        """
        check_parts(self.code, shape_from=shape_from, texture_from=texture_from)
        donors = dict(identity_from=identity_from, shape_from=shape_from, texture_from=texture_from)
        images = _check_pixel_values(images)
        z = ops.convert_to_numpy(self.encode(images).mean).astype("float32")
        for option, others in donors.items():
            if others is None:
                continue
            others = _check_pixel_values(others)
            if tuple(others.shape[1:]) != tuple(images.shape[1:]) or len(others) not in (
                1,
                len(images),
            ):
                raise ValueError(
                    f"{option} has shape {tuple(others.shape)}; expected one image or "
                    f"{len(images)} images of shape {tuple(images.shape[1:])}, like images."
                )
            if option == "identity_from":
                units = self.identity_units()
            else:
                units = np.arange(self.code.size)[self.code.slice(option.removesuffix("_from"))]
            theirs = ops.convert_to_numpy(self.encode(others).mean).astype("float32")
            z[:, units] = theirs[:, units]
        for name, value in values.items():
            group = self.code.index(name)
            if self.calibration is not None and name in self.calibration:
                entry = self.calibration.factors[name]
                unit = self.code.slice(entry.get("group", name)).start + entry["unit"]
                latent = np.asarray(self.calibration.to_latent(name, value), dtype="float32")
                z[:, unit] = _group_values(name, latent, len(z), 1)[:, 0]
            elif isinstance(value, str):
                raise ValueError(
                    f"{name}={value!r} is a direction, but this model has no calibration for "
                    f"{name}, so it takes a latent value (a number); a preset trained by "
                    "dcign train is calibrated."
                )
            else:
                z[:, self.code.slice(group)] = _group_values(
                    name, value, len(z), self.code.sizes[group]
                )
        return self.decode(z)

    def save_to_preset(self, preset_dir, **kwargs):
        """Writes this model as a preset folder (see `keras_dcign.save_to_preset`)."""
        from keras_dcign.presets import save_to_preset

        return save_to_preset(self, preset_dir, **kwargs)

    def compile(self, optimizer=None, jit_compile="auto", **kwargs):
        """Compiles with Adam at the reference learning rate 5e-4 unless told otherwise.

        `jit_compile="auto"` on TensorFlow chooses by the machine
        (`keras_dcign.compute.choose_jit_compile`): XLA on a GPU and on CPUs
        without AVX-512, where it trains this network 1.3x (150²) to 1.9x
        (64²) faster than a plain graph, and oneDNN's plain graph on CPUs with
        AVX-512 and in bfloat16, where it is the faster one (docs/benchmarks.md).
        """
        if optimizer is None:
            optimizer = keras.optimizers.Adam(learning_rate=5e-4)
        if jit_compile == "auto" and keras.backend.backend() == "tensorflow":
            from keras_dcign import compute

            precision = "bfloat16" if self.compute_dtype == "bfloat16" else "float32"
            jit_compile, _ = compute.choose_jit_compile(
                "auto", "tensorflow", precision, compute.cpu_flags(), compute.has_gpu("tensorflow")
            )
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "channels": self.channels,
                "feature_maps": self.feature_maps,
                "architecture": self.architecture,
                "strided_stages": self.strided_stages,
                "code": self.code.get_config(),
                "monovariant": self.monovariant,
                "clamp": self.clamp_layer.clamp,
                "invariance_strength": self.clamp_layer.invariance_strength,
                "monovariant_batch_size": self.clamp_layer.batch_size,
                "reconstruction": self.reconstruction,
                "gaussian_scale": self.gaussian_scale,
                "kl_weight": self.kl_weight,
                "seed": self.seed,
                "calibration": None if self.calibration is None else self.calibration.get_config(),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("architecture") == "strided" and "strided_stages" not in config:
            # Saved before the setting existed, when the strided stack always had three.
            config["strided_stages"] = STRIDED_STAGES
        return super().from_config(config)


def _check_pixel_values(images):
    """Images as float32 numpy in [0, 1], or a one-line error naming what is wrong."""
    array = np.asarray(ops.convert_to_numpy(images))
    if array.ndim != 4 or array.shape[0] == 0:
        raise ValueError(
            f"images have shape {array.shape}; expected a non-empty batch (batch, H, W, C)."
        )
    if "float" not in array.dtype.name:
        raise ValueError(
            f"images have dtype {array.dtype.name}; expected floating-point values in [0, 1] "
            "(divide uint8 images by 255)."
        )
    if not np.isfinite(array).all():
        raise ValueError("images hold NaN or infinite values; expected values in [0, 1].")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 1:
        raise ValueError(
            f"images hold values from {low:g} to {high:g}; expected values in [0, 1] "
            "(divide 8-bit images by 255)."
        )
    return array.astype("float32")


def _check_gaussian_scale(value):
    if isinstance(value, str):
        if value not in GAUSSIAN_SCALES:
            raise ValueError(
                f"gaussian_scale={value!r} is not supported; expected a positive number or one "
                f"of {GAUSSIAN_SCALES}."
            )
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < np.inf:
        raise ValueError(
            f"gaussian_scale={value!r} is invalid; expected a positive number or one of "
            f"{GAUSSIAN_SCALES}."
        )
    return float(value)


def _group_values(name, value, batch, size):
    """Broadcasts a user's value for one group to `(batch, size)`."""
    value = np.asarray(value, dtype="float32")
    if value.ndim == 0 or value.shape == (size,):
        return np.broadcast_to(value, (batch, size))
    if value.shape == (batch,):
        return np.broadcast_to(value[:, None], (batch, size))
    if value.shape == (batch, size):
        return value
    raise ValueError(
        f"Value for group {name!r} has shape {value.shape}; expected a scalar, ({size},), "
        f"({batch},) or ({batch}, {size})."
    )
