"""Faces: a procedural 3D face generator with exact pose, light and identity.

The paper rendered its faces from the Basel Face Model, which cannot be
redistributed. This module carries its own: a 3D morphable head (a mean head
plus 36 linear shape modes and 13 albedo modes; a person is a coefficient
vector drawn from N(0, I)) rendered by a small numpy engine — a point-splatting
z-buffer with ambient + Lambert (wrapped a little past the terminator, as
skin scatters light) + Blinn-Phong shading and soft shadow-mapped cast
shadows, on a black background, orthographic. Every picture comes with its
ground truth.

Conventions (degrees):

- azimuth: the head's yaw before the camera (it turns about its neck);
  positive turns the face to the viewer's right.
- elevation: the camera's pitch; positive shows the face from above.
- light: the light's azimuth in the camera frame; positive lights the face
  from the viewer's right. Its elevation is fixed (`LIGHT_ELEVATION`).

People are ids `0 .. N_IDENTITIES - 1`; the last `N_TEST_IDENTITIES` ids are
the test split and never appear in training streams. A person's shape and
texture (albedo) are separate coefficient vectors, so one person's shape can
wear another's texture (`combine`), and two batch kinds vary only one of them
(SHAPE_ONLY, TEXTURE_ONLY; see `batches`).

Example:

>>> from keras_dcign.datasets import faces
>>> image = faces.render(7, azimuth=30.0, light=-45.0, image_size=64)
>>> image.shape, image.dtype
((64, 64), dtype('float32'))
>>> images, group, factors = next(faces.batches("AZ", image_size=32))
>>> images.shape, group, sorted(factors)
((20, 32, 32, 1), 'azimuth', ['azimuth', 'elevation', 'identity', 'light'])
"""

import itertools

import numpy as np

from keras_dcign.datasets import _face_model, _render, _streams
from keras_dcign.datasets._cache import cached_batches, generate, load
from keras_dcign.datasets._gallery import gallery
from keras_dcign.datasets.reference_layout import (
    export_reference_layout,
    load_reference_layout,
    read_batch,
)

N_IDENTITIES = _face_model.N_IDENTITIES
N_TEST_IDENTITIES = _face_model.N_TEST_IDENTITIES
N_SHAPE_MODES = _face_model.N_SHAPE
N_ALBEDO_MODES = _face_model.N_ALBEDO
N_COEFFICIENTS = _face_model.N_COEFFICIENTS
# What each coefficient changes: shape modes first, then albedo modes.
COEFFICIENT_NAMES = _face_model.shape.SHAPE_NAMES + _face_model.texture.ALBEDO_NAMES
KINDS = _streams.KINDS
GROUPS = _streams.GROUPS
GROUP_IDS = _streams.GROUP_IDS
AZIMUTH_RANGE = _streams.AZIMUTH_RANGE
ELEVATION_RANGE = _streams.ELEVATION_RANGE
LIGHT_RANGE = _streams.LIGHT_RANGE
LIGHT_ELEVATION = _render.LIGHT_ELEVATION
SHAPE_BIAS = _streams.SHAPE_BIAS
MONOVARIANT_KINDS = _streams.MONOVARIANT_KINDS
SHAPE_TEXTURE_KINDS = _streams.SHAPE_TEXTURE_KINDS
LANDMARKS = tuple(_render.LANDMARKS)

__all__ = [  # noqa: F822 (FacesSequence is loaded on first use, see __getattr__)
    "FacesSequence",
    "batches",
    "cached_batches",
    "coefficients",
    "combine",
    "dataset",
    "export_reference_layout",
    "gallery",
    "generate",
    "identities",
    "landmarks",
    "load",
    "load_reference_layout",
    "mirror",
    "read_batch",
    "render",
    "render_buffers",
    "stack_batches",
    "symmetric",
    "test_set",
    "training_batches",
    "training_kinds",
]


def identities(split="train"):
    """The person ids of a split.

    Args:
        split: `"train"` (ids `0 .. 8999`) or `"test"` (ids `9000 .. 9999`).

    Returns:
        An int64 array of ids.
    """
    return _streams.identities(split)


def coefficients(identity):
    """A person's morphable-model coefficients: shape modes, then albedo modes.

    Args:
        identity: a person id.

    Returns:
        A float32 vector of length `N_COEFFICIENTS`, drawn from N(0, I)
        (clipped to +-3) by a generator seeded with the id.
    """
    people, is_vector = _render.check_identity(identity)
    if is_vector or people.ndim:
        raise ValueError(f"identity must be one int id, got {identity!r:.80}.")
    return _face_model.coefficients(int(people))


def combine(shape_identity, texture_identity):
    """One person's shape with another's texture, as coefficient vectors for `render`.

    Args:
        shape_identity: person ids whose shape modes the vectors take.
        texture_identity: person ids whose albedo (texture) modes they take;
            ints or 1-D arrays that broadcast with `shape_identity`.

    Returns:
        float32 `(N_COEFFICIENTS,)` for two ids, `(N, N_COEFFICIENTS)` for arrays.

    Example:

    >>> from keras_dcign.datasets import faces
    >>> vector = faces.combine(7, 9000)  # person 7's head, person 9000's skin
    >>> faces.render(vector, image_size=32).shape
    (32, 32)
    """
    return _streams.combine(shape_identity, texture_identity)


def training_kinds(code=None):
    """The monovariant batch kinds that train a graphics code's groups.

    Args:
        code: a `GraphicsCode`, a layout name (`"paper"`, `"shape_texture"`)
            or None (the paper's).

    Returns:
        A tuple of kinds: `("AZ", "EL", "LIGHT", "SHAPE")` for the paper's
        code, `("AZ", "EL", "LIGHT", "SHAPE_ONLY", "TEXTURE_ONLY")` for the
        shape/texture code.
    """
    return _streams.training_kinds(code)


def mirror(coeffs):
    """The coefficients of a person's mirror image (left and right swapped).

    Every mode is either mirror-symmetric or mirror-antisymmetric, so the
    mirror image is the same vector with the antisymmetric entries negated.
    """
    coeffs, _ = _render.check_identity(np.asarray(coeffs, np.float32))
    return coeffs * _face_model.PARITY


def symmetric(coeffs):
    """The mirror-symmetric part of a person: asymmetric entries set to zero."""
    coeffs, _ = _render.check_identity(np.asarray(coeffs, np.float32))
    return np.where(_face_model.PARITY > 0, coeffs, 0.0).astype(np.float32)


def render(
    identity,
    azimuth=0.0,
    elevation=0.0,
    light=0.0,
    image_size=150,
    light_elevation=LIGHT_ELEVATION,
    color_mode="grayscale",
):
    """Renders a face; arrays of people or angles render a batch.

    Args:
        identity: a person id, a coefficient vector (`N_COEFFICIENTS` floats),
            or a 1-D array of ids / a 2-D array of vectors for a batch.
        azimuth: camera azimuth in degrees, in [-180, 180]; a scalar or 1-D array.
        elevation: camera elevation in degrees, in [-30, 30].
        light: light azimuth in degrees, in [-180, 180].
        image_size: picture side in pixels, 8 to 256 (150 is the paper's, 64 the CPU
            default).
        light_elevation: light elevation in degrees, in [-90, 90].
        color_mode: `"grayscale"` or `"rgb"`.

    Returns:
        float32 pictures in [0, 1]: (H, W) for scalars, (N, H, W) for arrays;
        `"rgb"` adds a trailing axis of 3. Grayscale is the luminance
        0.21 R + 0.72 G + 0.07 B of the RGB picture (the weights the paper's
        data used).

    Example:

    >>> from keras_dcign.datasets import faces
    >>> faces.render([1, 2, 3], azimuth=[-60.0, 0.0, 60.0], image_size=64).shape
    (3, 64, 64)
    """
    return _render.render_batch(
        identity, azimuth, elevation, light, image_size, light_elevation, color_mode
    )


def render_buffers(
    identity, azimuth=0.0, elevation=0.0, light=0.0, image_size=150, light_elevation=LIGHT_ELEVATION
):
    """Renders one face with its per-pixel ground truth.

    Args:
        identity, azimuth, elevation, light, image_size, light_elevation: as
            for `render`, one picture only.

    Returns:
        A dict: `image` (H, W), `albedo` (H, W) (the unlit skin),
        `depth` (H, W) (distance from the picture plane in head units, inf on
        the background), `normals` (H, W, 3) (camera frame) and `mask` (H, W)
        (bool, where the head is).
    """
    image, maps = _render.render_batch(
        identity,
        azimuth,
        elevation,
        light,
        image_size,
        light_elevation,
        "grayscale",
        buffers=True,
    )
    if image.ndim != 2:
        raise ValueError("render_buffers draws one picture: pass scalars, not arrays.")
    return {"image": image, **maps[0]}


def landmarks(identity, azimuth=0.0, elevation=0.0, image_size=150):
    """Where named face points land in a picture.

    Args:
        identity, azimuth, elevation, image_size: as for `render`.

    Returns:
        A dict from each name in `LANDMARKS` (nose tip, eyes, mouth corners,
        chin) to (x, y) pixel coordinates: x counts columns from the left
        edge, y rows from the top edge (pixel (r, c) spans [c, c + 1) x [r, r + 1)).
        Arrays of people or angles give (N, 2) per name.
    """
    return _render.landmarks(identity, azimuth, elevation, image_size)


def batches(kind, batch_size=20, image_size=64, split="train", seed=0, **ranges):
    """An endless stream of DC-IGN batches of one kind.

    Args:
        kind: `"AZ"` (one person, fixed elevation and light, azimuth varies),
            `"EL"` (elevation varies), `"LIGHT"` (light azimuth varies),
            `"SHAPE"` (different people, fixed pose and light), `"MIXED"`
            (everything varies), `"SHAPE_ONLY"` (different people's shape
            with one person's texture, fixed pose and light) or
            `"TEXTURE_ONLY"` (one person's shape with different people's
            texture, fixed pose and light).
        batch_size: pictures per batch (20 in the paper).
        image_size: picture side in pixels.
        split: `"train"` or `"test"` people.
        seed: the same seed gives the same batches.
        **ranges: `azimuth_range`, `elevation_range`, `light_range` ((low,
            high) degrees; defaults `AZIMUTH_RANGE`, `ELEVATION_RANGE`,
            `LIGHT_RANGE`) and `light_elevation`.

    Yields:
        `(images, group, factors)`: images float32 (N, H, W, 1) in [0, 1];
        group the active `GraphicsCode` group (`"azimuth"`, `"elevation"`,
        `"light"`, `"intrinsic"`, `"shape"`, `"texture"`, or None for MIXED);
        factors a dict of (N,) arrays `identity` (int64), `azimuth`,
        `elevation`, `light` (degrees). SHAPE_ONLY and TEXTURE_ONLY batches
        add `texture_identity` (int64): `identity` is then whose shape each
        picture has, `texture_identity` whose texture.
    """
    spec = _streams.StreamSpec(batch_size, image_size, split, seed, **ranges)
    _streams.check_kind(kind)
    return (spec.batch(kind, index) for index in itertools.count())


def training_batches(
    batch_size=20, image_size=64, split="train", seed=0, shape_bias=False, kinds=None, **ranges
):
    """An endless stream mixing batch kinds, as the paper trained.

    Args:
        batch_size, image_size, split, seed, **ranges: as for `batches`.
        shape_bias: False draws AZ:EL:LIGHT:SHAPE as 1:1:1:1, True as 1:1:1:16
            (the reference code's shape bias); a number sets SHAPE's weight
            (and that of SHAPE_ONLY and TEXTURE_ONLY each).
        kinds: the kinds to mix (default the paper's four monovariant kinds;
            `training_kinds("shape_texture")` for the shape/texture code); add
            `"MIXED"` for an entangled baseline.

    Yields:
        `(images, group, factors)` as `batches` does.
    """
    spec = _streams.StreamSpec(batch_size, image_size, split, seed, **ranges)
    kinds, probabilities = _streams.kind_weights(shape_bias, kinds)
    return (
        spec.batch(spec.mixed_kind(index, kinds, probabilities), index)
        for index in itertools.count()
    )


def test_set(kind, n_batches, batch_size=20, image_size=64, seed=0, **ranges):
    """A finite, reproducible set of batches of held-out (test) people.

    Args:
        kind: a batch kind, as for `batches`.
        n_batches: how many batches.
        batch_size, image_size, seed, **ranges: as for `batches`.

    Returns:
        `(images, group, factors)` with a leading batch axis: images
        (n_batches, N, H, W, 1), factors arrays (n_batches, N).
    """
    n_batches = _streams.check_count("n_batches", n_batches)
    stream = batches(kind, batch_size, image_size, "test", seed, **ranges)
    parts = list(itertools.islice(stream, n_batches))
    factors = {name: np.stack([p[2][name] for p in parts]) for name in parts[0][2]}
    return np.stack([p[0] for p in parts]), parts[0][1], factors


def stack_batches(batches, code=None):
    """Batches as training arrays, the way `faces.dataset` items hold them.

    Args:
        batches: an iterable of `(images, group, factors)`, as `batches`,
            `cached_batches` and `load_reference_layout` give them.
        code: the `GraphicsCode` (or layout name) the ids are of; None is the
            paper's.

    Returns:
        `(images, group_ids)`: images float32 (n, N, H, W, 1) and group_ids
        int32 (n, N), each picture's active group id in `code` (the paper's:
        0 azimuth, 1 elevation, 2 light, 3 intrinsic; -1 MIXED).

    Example:

    >>> import itertools
    >>> from keras_dcign.datasets import faces
    >>> light = itertools.islice(faces.batches("LIGHT", batch_size=4, image_size=32), 3)
    >>> images, group_ids = faces.stack_batches(light)
    >>> images.shape
    (3, 4, 32, 32, 1)
    >>> group_ids[:, 0]  # 2: light
    array([2, 2, 2], dtype=int32)
    """
    images, group_ids = [], []
    for batch, group, _ in batches:
        batch = np.asarray(batch, np.float32)
        if batch.ndim == 3:
            batch = batch[..., None]
        if images and batch.shape != images[0].shape:
            raise ValueError(
                f"batch {len(images)} has shape {batch.shape}; the first has "
                f"{images[0].shape}. Batches must share one shape to stack."
            )
        images.append(batch)
        group_ids.append(np.full(len(batch), _streams.group_id(group, code), np.int32))
    if not images:
        raise ValueError("batches is empty; expected at least one batch to stack.")
    return np.stack(images), np.stack(group_ids)


def dataset(
    steps_per_epoch=100,
    batch_size=20,
    image_size=64,
    split="train",
    seed=0,
    shape_bias=False,
    kinds=None,
    fresh_each_epoch=True,
    code=None,
    **kwargs,
):
    """A `keras.utils.PyDataset` of DC-IGN batches for `model.fit`.

    Args:
        steps_per_epoch: batches per epoch (`len` of the dataset).
        batch_size, image_size, split, seed, shape_bias, kinds: as for
            `training_batches`; batch `i` of an epoch is the same on every
            call and in every worker.
        fresh_each_epoch: new batches every epoch (training) or the same
            ones (validation).
        code: the `GraphicsCode` (or layout name) trained: it sets the group
            ids, and the default kinds (`training_kinds(code)`). None is the
            paper's.
        **kwargs: ranges (as for `batches`), and `workers`,
            `use_multiprocessing`, `max_queue_size` for `PyDataset`.

    Returns:
        A `FacesSequence` whose items are `(images, group_ids)`: images
        float32 (N, H, W, 1), group_ids int32 (N,) holding each picture's
        active group id in `code` (the paper's: 0 azimuth, 1 elevation, 2
        light, 3 intrinsic; -1 MIXED).
    """
    from keras_dcign.datasets._pydataset import FacesSequence

    return FacesSequence(
        steps_per_epoch,
        batch_size,
        image_size,
        split,
        seed,
        shape_bias,
        kinds,
        fresh_each_epoch,
        code=code,
        **kwargs,
    )


def __getattr__(name):
    # The PyDataset class needs Keras; import it only when asked for.
    if name == "FacesSequence":
        from keras_dcign.datasets._pydataset import FacesSequence

        return FacesSequence
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
