"""The intrinsic code's main directions: how people differ, as seen by a model's identity code.

A DC-IGN's intrinsic group (197 units in the paper's code) has no names; its main directions of
variation over many people are principal components of the identity code of training faces,
seen frontally under frontal light so that pose and light do not take part. A preset stores
them in `intrinsic_directions.json`, and `dcign traverse --factor intrinsic --direction K`
walks a face along the K-th (shape and texture changing together, as the people differ).
"""

import json
from pathlib import Path

import numpy as np

DIRECTIONS_FILE = "intrinsic_directions.json"


def fit_intrinsic_directions(model, people=400, directions=8, split="train", seed=0):
    """Principal directions of the identity code over `people` frontal faces of a split.

    Returns:
        A record: `{"units": [...], "mean": [...], "directions": K x len(units),
        "std": [K], "explained": [K], "people": n}`; `directions` are unit vectors over
        `units` (the model's `identity_units()`), `std` the spread of people along each.

    Example:

    >>> from keras_dcign.directions import fit_intrinsic_directions
    >>> model = keras_dcign.from_preset("faces_64")
    >>> record = fit_intrinsic_directions(model, people=40, directions=3)
    >>> len(record["directions"]), len(record["directions"][0]) == len(record["units"])
    (3, True)
    """
    from keras_dcign.calibration import encode_means
    from keras_dcign.datasets import faces
    from keras_dcign.evaluation.probes import render_for

    rng = np.random.default_rng([seed, 23])
    who = rng.choice(np.asarray(faces.identities(split)), size=int(people), replace=False)
    images = render_for(model, who)
    units = model.identity_units()
    codes = encode_means(model, images)[:, units].astype("float64")
    mean = codes.mean(axis=0)
    _, singular, rows = np.linalg.svd(codes - mean, full_matrices=False)
    k = min(int(directions), len(singular))
    variance = singular**2 / max(len(codes) - 1, 1)
    return {
        "units": units.tolist(),
        "mean": mean.tolist(),
        "directions": rows[:k].tolist(),
        "std": np.sqrt(variance[:k]).tolist(),
        "explained": (variance[:k] / variance.sum()).tolist(),
        "people": int(len(who)),
        "split": split,
    }


def load_intrinsic_directions(preset_dir, model=None):
    """A preset folder's intrinsic directions, checked against its model (one-line errors)."""
    from keras_dcign.files import read_json_object

    path = Path(preset_dir) / DIRECTIONS_FILE
    if not path.is_file():
        raise ValueError(
            f"Preset {preset_dir} has no intrinsic directions ({DIRECTIONS_FILE}); expected a "
            "preset written by dcign train, or fitted with "
            "keras_dcign.directions.fit_intrinsic_directions."
        )
    record = read_json_object(path, required=("units", "directions", "std"), what="directions")
    directions = np.asarray(record["directions"], dtype="float64")
    if directions.ndim != 2 or directions.shape[1] != len(record["units"]):
        raise ValueError(
            f"{path}: directions has shape {directions.shape}; expected (K, {len(record['units'])})"
            ", one value per unit in units."
        )
    if len(record["std"]) != len(directions):
        raise ValueError(
            f"{path}: std has {len(record['std'])} values; expected {len(directions)}."
        )
    if model is not None and list(record["units"]) != model.identity_units().tolist():
        raise ValueError(
            f"{path}: units do not match the model's identity units; expected the preset's own "
            "directions."
        )
    return record


def save_intrinsic_directions(preset_dir, record):
    """Writes a directions record into a preset folder."""
    from keras_dcign.files import atomic_write, record_written

    path = Path(preset_dir) / DIRECTIONS_FILE
    atomic_write(path, json.dumps(record) + "\n")
    record_written(preset_dir, DIRECTIONS_FILE)
    return path


def walk(model, image, record, direction, frames=9, extent=2.5):
    """Decodes `image` moved along one direction from `-extent` to `+extent` standard deviations
    of the people (the rest of its code, pose and light included, kept).

    Returns:
        `(frames, H, W, C)` float pictures.
    """
    from keras import ops

    from keras_dcign.calibration import encode_means

    count = len(record["directions"])
    if not isinstance(direction, int) or not 0 <= direction < count:
        raise ValueError(
            f"direction={direction!r} is invalid; expected an integer from 0 to {count - 1}."
        )
    z = np.repeat(encode_means(model, np.asarray(image, "float32")[None]), frames, axis=0)
    steps = np.linspace(-extent, extent, frames) * record["std"][direction]
    units = np.asarray(record["units"])
    z[:, units] += steps[:, None] * np.asarray(record["directions"][direction])[None]
    return ops.convert_to_numpy(model.decode(z.astype("float32")))
