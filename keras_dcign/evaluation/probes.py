"""Faces drawn for a model and what it makes of them: the one place that renders the
generator's faces the way a model sees them (`render_for`, grey or RGB), the factor sweeps
that calibration and evaluation share, the held-out reconstruction error and the relight
check of every trained preset, and the probes of what a model keeps of a person: re-render
identification, intrinsic spread, and identity, shape and texture swaps.

Averages such as SSIM reward a blurred head that is near every person at once. These probes
ask the question a viewer asks: re-rendered at a new pose or light, is the output nearer the
true picture of the same person than of any other held-out person? And does the code without
its pose and light units stay put when one person turns, compared with how far apart two
people are?
"""

import numpy as np

from keras_dcign.extras import require

# The turn check's cases: (factor, value in degrees). Azimuth at +-40 is the paper's headline.
TURN_CASES = (("azimuth", 40.0), ("azimuth", -40.0), ("elevation", 20.0), ("light", -60.0))
# Held-out people of the turn check: the first this many of the test split, seen frontally.
TURN_PEOPLE = 20


def render_for(model, identity, **scene):
    """Faces drawn the way `model` sees them: float32 `(n, H, W, C)` at its size and channels.

    `identity` is ids or coefficient vectors, `scene` the angles, as for `faces.render`.
    """
    from keras_dcign.datasets import faces

    color_mode = "rgb" if getattr(model, "channels", 1) == 3 else "grayscale"
    images = faces.render(identity, image_size=model.image_size, color_mode=color_mode, **scene)
    return (images[..., None] if images.ndim == 3 else images).astype("float32")


def factor_ranges():
    """The generated faces' ranges of each factor, in degrees."""
    from keras_dcign.datasets import faces

    return {
        "azimuth": tuple(faces.AZIMUTH_RANGE),
        "elevation": tuple(faces.ELEVATION_RANGE),
        "light": tuple(faces.LIGHT_RANGE),
    }


def factor_sweep(people, factor, angles, ranges=None):
    """One factor swept over its range for each person, the others at 0 (frontal, level, lit
    from the front): `(identity, scene)`, `scene` the angles of each picture by factor."""
    ranges = ranges or factor_ranges()
    low, high = ranges[factor]
    degrees = np.tile(np.linspace(low, high, angles), len(people))
    scene = {name: np.zeros_like(degrees) for name in ranges}
    scene[factor] = degrees
    return np.repeat(people, angles), scene


def factor_sweeps(model, identities=8, angles=13, seed=0):
    """Held-out sweeps of the generated faces, drawn for `model`: `{factor: (images, degrees)}`.

    Each factor is swept over its full range for `identities` test people,
    with the other factors at 0 (frontal, level, lit from the front).
    """
    from keras_dcign.datasets import faces

    people = np.asarray(faces.identities("test"))
    people = np.random.default_rng(seed).choice(people, size=identities, replace=False)
    sweeps = {}
    for factor in factor_ranges():
        who, scene = factor_sweep(people, factor, angles)
        sweeps[factor] = (render_for(model, who, **scene), scene[factor])
    return sweeps


def calibrate_on_faces(model, identities=8, angles=13, seed=0):
    """Fits a `Calibration` for `model` on held-out sweeps of the generated faces.

    A DC-IGN (`model.monovariant`) is calibrated on its factor groups; an
    entangled model on the unit that varies most in each factor's sweeps.
    """
    from keras_dcign.calibration import encode_means, fit_calibration

    sweeps = factor_sweeps(model, identities, angles, seed)
    latents = {factor: encode_means(model, images) for factor, (images, _) in sweeps.items()}
    degrees = {factor: sweep[1] for factor, sweep in sweeps.items()}
    labels = {factor: np.repeat(np.arange(identities), angles) for factor in sweeps}
    selection = "group" if getattr(model, "monovariant", True) else "variance"
    return fit_calibration(latents, degrees, model.code, factor_ranges(), selection, labels)


def middle_angles(n, rng):
    """`n` random scenes from the middle half of each factor's range, where every model was
    trained densely: `{factor: (n,) degrees}`."""
    return {
        f: rng.uniform(0.75 * low + 0.25 * high, 0.25 * low + 0.75 * high, n)
        for f, (low, high) in factor_ranges().items()
    }


def heldout_reconstruction_mse(model, people=64, seed=0):
    """Mean squared reconstruction error of held-out people at random pose and light.

    A quick number every run reports (numpy only); `dcign evaluate` measures the rest.
    """
    from keras import ops

    from keras_dcign.datasets import faces

    rng = np.random.default_rng([seed, 11])
    who = rng.choice(np.asarray(faces.identities("test")), size=people, replace=False)
    angles = {f: rng.uniform(*r, people) for f, r in factor_ranges().items()}
    images = render_for(model, who, **angles)
    out = np.concatenate(
        [ops.convert_to_numpy(model(images[k : k + 32])) for k in range(0, people, 32)]
    )
    return float(np.mean((out - images) ** 2))


def relight_check(model, people=8):
    """Left-minus-right brightness of frontal test faces re-rendered with light left and right.

    A model that learned light has a positive difference for "left" and a
    negative one for "right" (light azimuth is measured from the viewer's side).
    """
    from keras import ops

    images = frontal_people(model, people)
    half = model.image_size // 2
    result = {}
    for side in ("left", "right"):
        out = ops.convert_to_numpy(model.rerender(images, light=side))
        result[side] = float(np.mean(out[:, :, :half]) - np.mean(out[:, :, half:]))
    return result


def frontal_people(model, people=TURN_PEOPLE, split="test", **angles):
    """The first `people` of a split rendered for `model` (frontal unless `angles` say)."""
    from keras_dcign.datasets import faces

    return render_for(model, np.asarray(faces.identities(split))[:people], **angles)


def rerender_identification(model, factor, value, people=TURN_PEOPLE, split="test"):
    """How many held-out people, re-rendered from a frontal picture with `factor=value`, are
    nearest (pixel MSE) to their own true picture at that value among all of them.

    Args:
        model: a calibrated `DCIGN` (a preset).
        factor: `"azimuth"`, `"elevation"` or `"light"`.
        value: the new value in degrees.
        people: how many held-out people (chance is one of them).
        split: whose faces, `"test"` (never trained on) or `"train"`.

    Returns:
        `{"identified": k, "people": n, "rate": k / n, "nearest": [index per person]}`.

    Example:

    >>> from keras_dcign.evaluation.probes import rerender_identification
    >>> model = keras_dcign.from_preset("faces_64")
    >>> check = rerender_identification(model, "light", -60.0, people=4)
    >>> check["people"], 0 <= check["identified"] <= 4
    (4, True)
    """
    from keras import ops

    sources = frontal_people(model, people, split)
    truth = frontal_people(model, people, split, **{factor: float(value)})
    out = np.concatenate(
        [
            ops.convert_to_numpy(model.rerender(sources[k : k + 32], **{factor: float(value)}))
            for k in range(0, len(sources), 32)
        ]
    )
    distance = np.mean((out[:, None] - truth[None]) ** 2, axis=(2, 3, 4))
    nearest = np.argmin(distance, axis=1)
    identified = int(np.sum(nearest == np.arange(len(sources))))
    return {
        "identified": identified,
        "people": len(sources),
        "rate": identified / len(sources),
        "nearest": nearest.tolist(),
    }


def turn_check(model, people=TURN_PEOPLE, split="test", cases=TURN_CASES):
    """`rerender_identification` for every case, keyed `"<factor> <value:+g>"`."""
    return {
        f"{factor} {value:+g}": rerender_identification(model, factor, value, people, split)
        for factor, value in cases
    }


def intrinsic_spread(model, azimuth=40.0, people=TURN_PEOPLE, split="test"):
    """How far one person's identity code moves when they turn, against how far apart people are.

    Returns:
        `{"within": mean distance between each person's frontal code and their codes at
        +-azimuth, "between": mean distance between two people's frontal codes,
        "ratio": within / between}`; a pose-invariant identity code has a small ratio.
    """
    from keras_dcign.calibration import encode_means

    rest = model.identity_units()
    frontal = encode_means(model, frontal_people(model, people, split))[:, rest]
    within = [
        np.linalg.norm(
            encode_means(model, frontal_people(model, people, split, azimuth=sign * azimuth))[
                :, rest
            ]
            - frontal,
            axis=1,
        )
        for sign in (1.0, -1.0)
    ]
    pairs = np.linalg.norm(frontal[:, None] - frontal[None], axis=-1)
    between = pairs[np.triu_indices(len(frontal), k=1)]
    result = {"within": float(np.mean(within)), "between": float(np.mean(between))}
    result["ratio"] = result["within"] / result["between"]
    return result


def identity_swap(model, people=TURN_PEOPLE, split="test", seed=0):
    """A's pose and light with B's identity (`rerender(identity_from=)`), against the truth.

    Person i is drawn at a random pose and light and given the identity of person i + 1
    (seen frontally under frontal light); the truth is person i + 1 drawn at person i's
    pose and light.

    Returns:
        `{"mse", "ssim"}` of the swaps against the truth, `{"reconstruction_mse",
        "reconstruction_ssim"}` of the truth pictures themselves, and `"identified"`: how
        many swaps are nearest (MSE) their own truth among all `people` people drawn at that
        pose and light (chance: one), with `"people"`.
    """
    from keras import ops

    from keras_dcign.datasets import faces

    who = np.asarray(faces.identities(split))[:people]
    angles = middle_angles(len(who), np.random.default_rng([seed, 29]))
    sources = render_for(model, who, **angles)
    donors = np.roll(who, -1)
    swapped = ops.convert_to_numpy(model.rerender(sources, identity_from=render_for(model, donors)))
    truth = render_for(model, donors, **angles)
    reconstruction = ops.convert_to_numpy(model(truth))
    # Every person at every source's pose and light: candidates[k, i] is person k at scene i.
    candidates = np.stack(
        [render_for(model, np.full(len(who), person), **angles) for person in who]
    )
    distance = np.mean((swapped[None] - candidates) ** 2, axis=(2, 3, 4))  # (person, scene)
    nearest = np.argmin(distance, axis=0)
    return {
        "mse": mse(swapped, truth),
        "ssim": ssim(swapped, truth),
        "reconstruction_mse": mse(reconstruction, truth),
        "reconstruction_ssim": ssim(reconstruction, truth),
        "identified": int(np.sum(nearest == (np.arange(len(who)) + 1) % len(who))),
        "people": int(len(who)),
    }


def shape_texture_swap(model, people=TURN_PEOPLE, split="test", seed=0):
    """A's shape with B's texture, and B's shape with A's texture, against the renderer's truth.

    For a model whose code has `shape` and `texture` groups. Person i (A) is drawn at a random
    pose and light and re-rendered with `rerender(texture_from=)` (or `shape_from=`) a
    frontal picture of person i + 1 (B) under frontal light; the truth is the renderer's
    picture of A's shape with B's texture (or B's shape with A's texture) at A's pose and
    light (`faces.combine`).

    Returns:
        `{"texture": {...}, "shape": {...}}`, each with `"mse"` and `"ssim"` of the swaps
        against the truth, `"reconstruction_mse"` and `"reconstruction_ssim"` of A's plain
        reconstruction against A, `"input_baseline_mse"` (A unchanged against the truth),
        and `"identified"`: how many swaps are nearest (MSE) their own truth among the
        candidates that give A every held-out person's texture (or shape) at that pose and
        light (chance: one), with `"people"`.

    Example:

    >>> from keras_dcign import DCIGN
    >>> from keras_dcign.evaluation.probes import shape_texture_swap
    >>> model = DCIGN(image_size=32, feature_maps=8, architecture="strided",
    ...               code="shape_texture")
    >>> swap = shape_texture_swap(model, people=3)
    >>> sorted(swap), swap["texture"]["people"]
    (['shape', 'texture'], 3)
    """
    from keras import ops

    from keras_dcign.datasets import faces

    for group in ("shape", "texture"):
        if group not in model.code.names:
            raise ValueError(
                f"shape_texture_swap needs a graphics code with shape and texture groups; this "
                f"model's groups are {list(model.code.names)}."
            )
    who = np.asarray(faces.identities(split))[:people]
    angles = middle_angles(len(who), np.random.default_rng([seed, 31]))
    sources = render_for(model, who, **angles)
    donors = np.roll(who, -1)
    frontal_donors = render_for(model, donors)
    reconstruction = np.concatenate(
        [ops.convert_to_numpy(model(sources[k : k + 32])) for k in range(0, len(who), 32)]
    )
    result = {}
    for group in ("texture", "shape"):
        swapped = np.concatenate(
            [
                ops.convert_to_numpy(
                    model.rerender(
                        sources[k : k + 32], **{f"{group}_from": frontal_donors[k : k + 32]}
                    )
                )
                for k in range(0, len(who), 32)
            ]
        )
        truth = render_for(model, _with_part(faces, group, who, donors), **angles)
        # candidates[k, i]: A_i with held-out person k's texture (or shape) at scene i.
        candidates = np.stack(
            [
                render_for(model, _with_part(faces, group, who, np.full(len(who), k)), **angles)
                for k in who
            ]
        )
        distance = np.mean((swapped[None] - candidates) ** 2, axis=(2, 3, 4))  # (person, scene)
        nearest = np.argmin(distance, axis=0)
        result[group] = {
            "mse": mse(swapped, truth),
            "ssim": ssim(swapped, truth),
            "reconstruction_mse": mse(reconstruction, sources),
            "reconstruction_ssim": ssim(reconstruction, sources),
            "input_baseline_mse": mse(sources, truth),
            "identified": int(np.sum(nearest == (np.arange(len(who)) + 1) % len(who))),
            "people": int(len(who)),
        }
    return result


def _with_part(faces, group, people, others):
    """Coefficients of `people` with the texture (or the shape) of `others`, the rest theirs."""
    if group == "texture":
        return faces.combine(people, others)
    return faces.combine(others, people)


def mse(a, b):
    """Mean squared error of two batches of images."""
    return float(np.mean((np.asarray(a, "float64") - np.asarray(b, "float64")) ** 2))


def ssim(a, b):
    """Mean SSIM (scikit-image, data range 1) over a batch of (H, W, C) images."""
    structural_similarity = require("skimage.metrics", "SSIM").structural_similarity
    values = [
        structural_similarity(x, y, data_range=1.0, channel_axis=-1)
        for x, y in zip(np.asarray(a, "float64"), np.asarray(b, "float64"))
    ]
    return float(np.mean(values))
