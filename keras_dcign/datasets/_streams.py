"""DC-IGN batches: which factor a batch varies, and the random draws behind it.

Every batch is a pure function of (seed, split, kind, index): its own random
generator is seeded with those numbers, so any batch of any stream can be
rebuilt on its own — in another process, in another order.
"""

import numbers

import numpy as np

from keras_dcign.datasets import _face_model as model
from keras_dcign.datasets import _render

KINDS = ("AZ", "EL", "LIGHT", "SHAPE", "MIXED")
# The graphics-code group each batch kind trains (MIXED trains none: everything varies).
GROUPS = {"AZ": "azimuth", "EL": "elevation", "LIGHT": "light", "SHAPE": "intrinsic", "MIXED": None}
GROUP_IDS = {"azimuth": 0, "elevation": 1, "light": 2, "intrinsic": 3, None: -1}
MONOVARIANT_KINDS = ("AZ", "EL", "LIGHT", "SHAPE")
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


def kind_weights(shape_bias=False, kinds=None):
    """(kinds, probabilities) of a mixed stream: 1:1:1:1, or 1:1:1:16 with shape bias."""
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
    weights = np.array([shape_weight if k == "SHAPE" else 1.0 for k in kinds])
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

    def __init__(self, batch_size=20, image_size=64, split="train", seed=0,
                 azimuth_range=AZIMUTH_RANGE, elevation_range=ELEVATION_RANGE,
                 light_range=LIGHT_RANGE, light_elevation=_render.LIGHT_ELEVATION):
        self.batch_size = check_count("batch_size", batch_size)
        self.image_size = _render.check_image_size(image_size)
        self.people = identities(split)
        self.split = split
        self.seed = check_count("seed", seed, minimum=0)
        self.azimuth_range = _render.angle_range(
            "azimuth_range", azimuth_range, _render.AZIMUTH_LIMITS)
        self.elevation_range = _render.angle_range(
            "elevation_range", elevation_range, _render.ELEVATION_LIMITS)
        self.light_range = _render.angle_range("light_range", light_range, _render.LIGHT_LIMITS)
        self.light_elevation = float(_render.check_angles(
            "light_elevation", light_elevation, _render.LIGHT_ELEVATION_LIMITS))

    def rng(self, *keys):
        return np.random.default_rng([self.seed, SPLITS.index(self.split), *keys])

    def factors(self, kind, index):
        """Ground-truth factors of batch `index` of a kind: a dict of (N,) arrays."""
        rng = self.rng(KINDS.index(kind), index)
        n = self.batch_size
        if kind in ("SHAPE", "MIXED"):
            if n > len(self.people):
                raise ValueError(
                    f"batch_size {n} exceeds the {len(self.people)} people of split "
                    f"{self.split!r}."
                )
            identity = rng.choice(self.people, n, replace=False)
        else:
            identity = np.full(n, rng.choice(self.people))
        varied = {"AZ": "azimuth", "EL": "elevation", "LIGHT": "light"}.get(kind)
        out = {"identity": identity.astype(np.int64)}
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
        images = _render.render_batch(
            factors["identity"], factors["azimuth"], factors["elevation"], factors["light"],
            self.image_size, self.light_elevation, "grayscale",
        )
        return images[..., None], GROUPS[kind], factors

    def mixed_kind(self, index, kinds, probabilities):
        """The kind of batch `index` of a mixed stream."""
        return kinds[self.rng(len(KINDS), index).choice(len(kinds), p=probabilities)]
