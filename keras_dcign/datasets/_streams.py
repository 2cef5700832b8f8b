"""DC-IGN batches: which factor a batch varies, and the random draws behind it.

Every batch is a pure function of (seed, split, kind, index): its own random
generator is seeded with those numbers, so any batch of any stream can be
rebuilt on its own — in another process, in another order.

SHAPE batches show different people (their shape and texture both change).
SHAPE_ONLY and TEXTURE_ONLY batches split a person in two: the first varies
the shape coefficients of the morphable model with one person's texture
(albedo) kept, the second the albedo coefficients with one person's shape
kept. Their factors say whose shape (`identity`) and whose texture
(`texture_identity`) each picture has.
"""

import numbers

import numpy as np

from keras_dcign.datasets import _face_model as model
from keras_dcign.datasets import _render
from keras_dcign.graphics_code import GraphicsCode

KINDS = ("AZ", "EL", "LIGHT", "SHAPE", "MIXED", "SHAPE_ONLY", "TEXTURE_ONLY")
# The graphics-code group each batch kind trains (MIXED trains none: everything varies).
GROUPS = {
    "AZ": "azimuth",
    "EL": "elevation",
    "LIGHT": "light",
    "SHAPE": "intrinsic",
    "MIXED": None,
    "SHAPE_ONLY": "shape",
    "TEXTURE_ONLY": "texture",
}
# The group ids of the paper's code (`group_ids` gives them for any code).
GROUP_IDS = {"azimuth": 0, "elevation": 1, "light": 2, "intrinsic": 3, None: -1}
MONOVARIANT_KINDS = ("AZ", "EL", "LIGHT", "SHAPE")
# The kinds whose batches keep one person's texture or shape and vary the other.
SHAPE_TEXTURE_KINDS = ("SHAPE_ONLY", "TEXTURE_ONLY")
# Each kind's key in the seeds of its batches, and the key of a mixed stream's draw of kinds:
# fixed for good, so that batches cached or tested once are the same batches ever after.
KIND_KEYS = {
    "AZ": 0,
    "EL": 1,
    "LIGHT": 2,
    "SHAPE": 3,
    "MIXED": 4,
    "SHAPE_ONLY": 6,
    "TEXTURE_ONLY": 7,
}
MIXED_KIND_KEY = 5
# Whose shape and whose texture a picture has (the kinds that separate them give both).
FACTOR_NAMES = ("identity", "azimuth", "elevation", "light")
TEXTURE_FACTOR = "texture_identity"
SPLITS = ("train", "test")
AZIMUTH_RANGE = (-90.0, 90.0)
ELEVATION_RANGE = (-25.0, 25.0)
LIGHT_RANGE = (-80.0, 80.0)
# The paper's "shape bias": SHAPE batches drawn 16 times as often as each of the others.
SHAPE_BIAS = 16.0


def identities(split):
    """Person ids of a split: the last N_TEST_IDENTITIES ids are the test people."""
    if split == "train":
        return np.arange(model.N_IDENTITIES - model.N_TEST_IDENTITIES, dtype=np.int64)
    if split == "test":
        return np.arange(
            model.N_IDENTITIES - model.N_TEST_IDENTITIES, model.N_IDENTITIES, dtype=np.int64
        )
    raise ValueError(f"split must be 'train' or 'test', got {split!r}.")


def check_kind(kind):
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    return kind


def check_count(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def training_kinds(code=None):
    """The monovariant kinds that train a code's groups, in `KINDS` order.

    The paper's code trains on AZ, EL, LIGHT and SHAPE; the shape/texture code
    (`GraphicsCode.shape_texture`) on AZ, EL, LIGHT, SHAPE_ONLY and TEXTURE_ONLY.
    """
    code = GraphicsCode.of(code)
    kinds = tuple(k for k in KINDS if GROUPS[k] is not None and GROUPS[k] in code.names)
    if not kinds:
        raise ValueError(
            f"The graphics code's groups {list(code.names)} include none that a batch kind "
            f"trains; expected some of {sorted({g for g in GROUPS.values() if g})}."
        )
    return kinds


def group_id(group, code=None):
    """The id in `code` (default: the paper's) of the group a batch trains (-1 for None)."""
    if group is None:
        return -1
    code = GraphicsCode.of(code)
    if group not in code.names:
        raise ValueError(
            f"Batches that train group {group!r} do not fit this graphics code; expected a "
            f"group of {list(code.names)} (or None for MIXED)."
        )
    return code.index(group)


def kind_weights(shape_bias=False, kinds=None):
    """(kinds, probabilities) of a mixed stream: 1:1:1:1, or 1:1:1:16 with shape bias.

    The shape bias weighs every kind that trains the intrinsic code: SHAPE, and
    SHAPE_ONLY and TEXTURE_ONLY each.
    """
    kinds = MONOVARIANT_KINDS if kinds is None else tuple(kinds)
    if not kinds:
        raise ValueError("kinds must name at least one batch kind, got none.")
    for kind in kinds:
        check_kind(kind)
    if shape_bias is True:
        shape_weight = SHAPE_BIAS
    elif shape_bias is False or shape_bias is None:
        shape_weight = 1.0
    elif isinstance(shape_bias, numbers.Real) and shape_bias > 0:
        shape_weight = float(shape_bias)
    else:
        raise ValueError(
            f"shape_bias must be True, False or a positive number, got {shape_bias!r}."
        )
    intrinsic = ("SHAPE",) + SHAPE_TEXTURE_KINDS
    weights = np.array([shape_weight if k in intrinsic else 1.0 for k in kinds])
    return kinds, weights / weights.sum()


class StreamSpec:
    """Everything that fixes a stream of batches, checked once.

    Args:
        batch_size: pictures per batch.
        image_size: picture side in pixels.
        split: `"train"` or `"test"` people.
        seed: an integer >= 0; the same seed gives the same batches.
        azimuth_range, elevation_range, light_range: (low, high) degrees.
        light_elevation: the light's fixed elevation in degrees.
    """

    def __init__(
        self,
        batch_size=20,
        image_size=64,
        split="train",
        seed=0,
        azimuth_range=AZIMUTH_RANGE,
        elevation_range=ELEVATION_RANGE,
        light_range=LIGHT_RANGE,
        light_elevation=_render.LIGHT_ELEVATION,
    ):
        self.batch_size = check_count("batch_size", batch_size)
        self.image_size = _render.check_image_size(image_size)
        self.people = identities(split)
        self.split = split
        self.seed = check_count("seed", seed, minimum=0)
        self.azimuth_range = _render.angle_range(
            "azimuth_range", azimuth_range, _render.AZIMUTH_LIMITS
        )
        self.elevation_range = _render.angle_range(
            "elevation_range", elevation_range, _render.ELEVATION_LIMITS
        )
        self.light_range = _render.angle_range("light_range", light_range, _render.LIGHT_LIMITS)
        self.light_elevation = float(
            _render.check_angles("light_elevation", light_elevation, _render.LIGHT_ELEVATION_LIMITS)
        )

    def rng(self, *keys):
        return np.random.default_rng([self.seed, SPLITS.index(self.split), *keys])

    def factors(self, kind, index):
        """Ground-truth factors of batch `index` of a kind: a dict of (N,) arrays.

        SHAPE_ONLY and TEXTURE_ONLY batches add `texture_identity`: whose albedo
        each picture has (`identity` is whose shape).
        """
        rng = self.rng(KIND_KEYS[kind], index)
        n = self.batch_size
        if kind in ("SHAPE", "MIXED") + SHAPE_TEXTURE_KINDS:
            if n > len(self.people):
                raise ValueError(
                    f"batch_size {n} exceeds the {len(self.people)} people of split {self.split!r}."
                )
            identity = rng.choice(self.people, n, replace=False)
        else:
            identity = np.full(n, rng.choice(self.people))
        varied = {"AZ": "azimuth", "EL": "elevation", "LIGHT": "light"}.get(kind)
        out = {"identity": identity.astype(np.int64)}
        if kind in SHAPE_TEXTURE_KINDS:
            # One person lends the part that stays; `identity` varies the other part.
            kept = np.full(n, rng.choice(self.people), np.int64)
            if kind == "SHAPE_ONLY":
                out[TEXTURE_FACTOR] = kept
            else:
                out = {"identity": kept, TEXTURE_FACTOR: out["identity"]}
        for name, (low, high) in (
            ("azimuth", self.azimuth_range),
            ("elevation", self.elevation_range),
            ("light", self.light_range),
        ):
            size = n if kind == "MIXED" or name == varied else 1
            out[name] = np.broadcast_to(rng.uniform(low, high, size), (n,)).astype(np.float32)
        return out

    def batch(self, kind, index):
        """Batch `index` of a kind: (images (N, H, W, 1), group name, factors)."""
        factors = self.factors(check_kind(kind), index)
        people = factors["identity"]
        if TEXTURE_FACTOR in factors:
            people = combine(people, factors[TEXTURE_FACTOR])
        images = _render.render_batch(
            people,
            factors["azimuth"],
            factors["elevation"],
            factors["light"],
            self.image_size,
            self.light_elevation,
            "grayscale",
        )
        return images[..., None], GROUPS[kind], factors

    def mixed_kind(self, index, kinds, probabilities):
        """The kind of batch `index` of a mixed stream."""
        return kinds[self.rng(MIXED_KIND_KEY, index).choice(len(kinds), p=probabilities)]


def combine(shape_identity, texture_identity):
    """Coefficient vectors with the shape modes of some people and the albedo modes of others.

    Args:
        shape_identity, texture_identity: person ids (ints or 1-D arrays that
            broadcast together).

    Returns:
        float32 `(N_COEFFICIENTS,)` for two ids, `(N, N_COEFFICIENTS)` for arrays.
    """
    shape_ids, shape_vector = _render.check_identity(shape_identity)
    texture_ids, texture_vector = _render.check_identity(texture_identity)
    if shape_vector or texture_vector or shape_ids.ndim > 1 or texture_ids.ndim > 1:
        raise ValueError(
            f"shape_identity and texture_identity must be person ids (ints or 1-D arrays), got "
            f"{shape_identity!r:.40} and {texture_identity!r:.40}."
        )
    shape_ids, texture_ids = np.broadcast_arrays(shape_ids, texture_ids)
    vectors = np.array(
        [
            np.concatenate(
                [
                    model.coefficients(int(s))[: model.N_SHAPE],
                    model.coefficients(int(t))[model.N_SHAPE :],
                ]
            )
            for s, t in zip(shape_ids.reshape(-1), texture_ids.reshape(-1))
        ],
        np.float32,
    ).reshape(shape_ids.shape + (model.N_COEFFICIENTS,))
    return vectors
