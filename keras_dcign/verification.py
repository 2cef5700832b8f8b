"""Face verification with the graphics code: the identity embedding and a fitted threshold.

The paper's first use of the learned code is invariant face recognition: the code without its
pose and light units should be the same for one person under any pose and light. Two images
are called the same person when the cosine similarity of their identity embeddings reaches a
threshold fitted on held-out people (the equal-error point of `dcign evaluate`'s pairs), stored
in the preset as `verification.json`.
"""

import json
from pathlib import Path

import numpy as np

VERIFICATION_FILE = "verification.json"


def identity_embedding(model, images, batch_size=64):
    """The posterior-mean code of `images` without its pose and light units.

    Args:
        model: a `DCIGN` (calibrated: its calibrated units are left out).
        images: float images `(batch, H, W, C)` in [0, 1].
        batch_size: images encoded at once.

    Returns:
        A float32 numpy array `(batch, len(model.identity_units()))`.

    Example:

    >>> from keras_dcign.datasets import faces
    >>> model = keras_dcign.from_preset("faces_64")
    >>> images = faces.render([3, 3, 4], azimuth=[0, 30, 0], image_size=64)[..., None]
    >>> keras_dcign.identity_embedding(model, images).shape
    (3, 197)
    """
    from keras_dcign.calibration import encode_means
    from keras_dcign.model import _check_pixel_values

    return encode_means(model, _check_pixel_values(images), batch_size)[:, model.identity_units()]


def similarity(model, first, second):
    """Cosine similarity of the identity embeddings of two equal-length batches of images."""
    a, b = identity_embedding(model, first), identity_embedding(model, second)
    if len(a) != len(b):
        raise ValueError(
            f"first has {len(a)} images and second {len(b)}; expected the same number."
        )
    tiny = np.finfo("float32").tiny
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), tiny)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), tiny)
    return np.sum(a * b, axis=1)


def fit_threshold(similarities, same):
    """The verification record of pairs: equal-error threshold, its error rate, the pairs."""
    from keras_dcign.evaluation.scores import equal_error_threshold

    threshold, rate = equal_error_threshold(similarities, same)
    same = np.asarray(same).astype(bool)
    return {
        "threshold": threshold,
        "equal_error_rate": rate,
        "same_pairs": int(same.sum()),
        "different_pairs": int((~same).sum()),
    }


def save_verification(preset_dir, record):
    """Writes a verification record into a preset folder."""
    from keras_dcign.files import atomic_write, record_written

    path = Path(preset_dir) / VERIFICATION_FILE
    atomic_write(path, json.dumps(record, indent=2) + "\n")
    record_written(preset_dir, VERIFICATION_FILE)
    return path


def load_verification(preset_dir):
    """A preset folder's verification record, or a one-line error when it has none."""
    from keras_dcign.files import read_json_object

    path = Path(preset_dir) / VERIFICATION_FILE
    if not path.is_file():
        raise ValueError(
            f"Preset {preset_dir} has no fitted verification threshold ({VERIFICATION_FILE}); "
            "expected a preset measured by `dcign evaluate PRESET --update-card`, which fits "
            "it on held-out people."
        )
    record = read_json_object(path, required=("threshold", "equal_error_rate"), what="verification")
    for key in ("threshold", "equal_error_rate"):
        value = record[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (np.isfinite(value) and -1.0 <= value <= 1.0)
        ):
            raise ValueError(f"{path}: {key} is {value!r}; expected a number in [-1, 1].")
    return record


def verify(model, first, second, threshold):
    """Whether two images show the same person.

    Args:
        model: a `DCIGN`.
        first, second: one float image `(H, W, C)` each, or equal batches.
        threshold: the cosine similarity at or above which they are the same
            (a preset's `load_verification(folder)["threshold"]`).

    Returns:
        `(same, similarity)`: booleans and similarities, one per pair.
    """
    first, second = np.asarray(first), np.asarray(second)
    if first.ndim == 3:
        first, second = first[None], second[None]
    if first.shape != second.shape:
        raise ValueError(
            f"The images have shapes {first.shape[1:]} and {second.shape[1:]}; expected the "
            "same size."
        )
    values = similarity(model, first, second)
    return values >= float(threshold), values
