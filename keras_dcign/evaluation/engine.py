"""`keras_dcign.evaluate`: measure a learned graphics engine against the renderer's ground truth.

The paper could only show its re-renderings; the generated faces come with
exact pose, light and identity, so every number here compares with truth.
All data are rendered from the chosen split's people (the test split by
default, never seen in training) with a fixed seed, so a run is
reproducible.
"""

import contextlib

import numpy as np

from keras_dcign.evaluation import probes, scores
from keras_dcign.evaluation.probes import factor_sweep, mse, ssim
from keras_dcign.verification import fit_threshold

FACTORS = ("azimuth", "elevation", "light")
# Ground-truth factors of the disentanglement scores: the three angles on a grid of
# LEVELS values each, and the person.
SCORE_FACTORS = FACTORS + ("identity",)
LEVELS = 10

DEFAULTS = {
    "sweep_identities": 16,
    "sweep_angles": 13,
    "rerender_identities": 8,
    "rerender_values": 5,
    "identity_people": 200,
    "identity_images": 4,
    "identity_pairs": 2000,
    "score_samples": 1500,
    "vote_batch": 32,
    "factorvae_votes": (150, 75),
    "betavae_points": (150, 75),
    "dci_estimators": 30,
    "turn_people": probes.TURN_PEOPLE,
}


# Sample sizes of `dcign evaluate --quick`: about a tenth of the images, for fast checks.
QUICK = {
    "sweep_identities": 4,
    "sweep_angles": 7,
    "rerender_identities": 2,
    "rerender_values": 3,
    "identity_people": 30,
    "identity_images": 3,
    "identity_pairs": 200,
    "score_samples": 300,
    "vote_batch": 16,
    "factorvae_votes": (30, 15),
    "betavae_points": (30, 15),
    "dci_estimators": 10,
    "turn_people": probes.TURN_PEOPLE,
}


def evaluate(model, dataset="faces", split="test", seed=0, progress=True, **settings):
    """Measures how well a model inverts and re-renders the generated faces.

    Args:
        model: a `DCIGN` (or any model with `encode`, `decode`, `rerender`,
            `code`, `image_size`, `channels`), ideally calibrated (a preset);
            an uncalibrated model is calibrated on the generated faces first.
        dataset: `"faces"`, the package's generated faces.
        split: `"test"` (people never seen in training) or `"train"`.
        seed: seed of every random choice.
        progress: show a rich progress bar (stderr).
        **settings: sample sizes, see `DEFAULTS`.

    Returns:
        A plain dict (as written to `metrics.json`):
        `{"factors": {factor: {"pearson", "spearman", "r2"}},
        "rerender": {factor: {"mse", "ssim", "reconstruction_mse",
        "reconstruction_ssim", "input_baseline_mse", "input_baseline_ssim"}}, "identity_auc", "mig",
        "factorvae", "betavae", "dci", "details": {...}, "settings": {...}}`.

        - factors: correlation of each factor with its latent unit's
          posterior mean over sweeps of test people (the other factors at
          0), and R² of the calibrated angle against the true angle.
        - rerender: an image at one value of a factor is re-rendered at
          another through the calibration and compared with the renderer's
          image of the same person at that value (the other factors drawn
          once per person and kept); beside it the plain reconstruction
          error of the source images and the error of returning the input
          unchanged.
        - turn_check: for each case of `probes.TURN_CASES` (azimuth +-40,
          elevation +20, light -60), how many of the first `turn_people`
          held-out people, re-rendered from a frontal picture, are nearest
          their own true picture among all of them (chance: one).
        - intrinsic_spread: how far one person's identity code moves when
          they turn 40 degrees, against the distance between two people
          (`probes.intrinsic_spread`).
        - verification: the equal-error threshold of those pairs' cosine
          similarity, its equal error rate and the pairs' counts (what
          `dcign verify` uses once stored in a preset).
        - identity_swap: one person's pose and light with another's identity
          (`rerender(identity_from=)`) against the renderer's picture of that,
          beside the reconstruction of the truth, and how many swaps are
          nearest their own truth among the held-out people
          (`probes.identity_swap`).
        - shape_texture_swap: only for a model whose code has `shape` and
          `texture` groups (`GraphicsCode.shape_texture`): one person
          re-rendered with another's texture (`rerender(texture_from=)`) and
          with another's shape (`shape_from=`) against the renderer's
          picture of that, beside the person's plain reconstruction, and how
          many swaps are nearest their own truth among the held-out people's
          textures (shapes) (`probes.shape_texture_swap`).
        - identity_auc: verification ROC AUC of same-person pairs against
          different-person pairs, by cosine similarity of the code without
          its pose and light units, across random pose and light.
        - mig (over azimuth, elevation, light), factorvae, betavae (over
          those and identity), dci (disentanglement over the three angles):
          see `keras_dcign.evaluation.scores`.
        - details: the scores' other parts (per-factor MIG, completeness,
          informativeness, train accuracies) and the units used.

    Example:

    With tiny sample sizes (the defaults take minutes; `QUICK` about a tenth):

    >>> model = keras_dcign.from_preset("faces_64")
    >>> tiny = dict(sweep_identities=2, sweep_angles=5, rerender_identities=1,
    ...             rerender_values=2, identity_people=4, identity_images=2,
    ...             identity_pairs=10, score_samples=20, vote_batch=2,
    ...             factorvae_votes=(4, 2), betavae_points=(4, 2), dci_estimators=2)
    >>> metrics = keras_dcign.evaluate(model, progress=False, **tiny)
    >>> sorted(metrics["factors"]["light"])
    ['pearson', 'r2', 'spearman']
    >>> abs(metrics["factors"]["light"]["spearman"]) > 0.9  # its light unit follows the light
    True
    """
    from keras_dcign.calibration import Calibration
    from keras_dcign.datasets import faces
    from keras_dcign.evaluation.probes import calibrate_on_faces, factor_ranges

    if dataset != "faces":
        raise ValueError(f"Unknown dataset {dataset!r}; expected 'faces'.")
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise ValueError(
            f"Unknown evaluation settings {unknown}; expected some of {list(DEFAULTS)}."
        )
    options = dict(DEFAULTS, **settings)
    people = np.asarray(faces.identities(split))
    ranges = factor_ranges()

    calibration = getattr(model, "calibration", None)
    fitted = calibration is None or any(f not in calibration for f in FACTORS)
    if fitted:
        calibration = calibrate_on_faces(model)
        model.calibration = calibration
    if not isinstance(calibration, Calibration):
        raise ValueError(f"model.calibration is {calibration!r}; expected a Calibration.")
    units = {f: _unit(model.code, calibration.factors[f]) for f in FACTORS}
    rest = np.setdiff1d(np.arange(model.code.size), list(units.values()))

    renderer = _Renderer(model, faces)
    stages = [
        ("factor sweeps", len(FACTORS)),
        ("re-rendering", len(FACTORS)),
        ("identity pairs", 1),
        ("turn check", 1),
        ("MIG and DCI", 2),
        ("FactorVAE votes", sum(options["factorvae_votes"])),
        ("β-VAE points", sum(options["betavae_points"])),
    ]
    with _progress(progress, stages) as advance:
        sweeps = _factor_sweeps(
            model, renderer, calibration, units, people, ranges, options, seed, advance
        )
        rerender = _rerender_errors(model, renderer, people, ranges, options, seed, advance)
        identity_auc, verification = _identity_auc(
            model, renderer, people, ranges, rest, options, seed
        )
        advance()
        turn = probes.turn_check(model, people=options["turn_people"], split=split)
        spread = probes.intrinsic_spread(model, people=options["turn_people"], split=split)
        swap = probes.identity_swap(model, people=options["turn_people"], split=split, seed=seed)
        parts = None
        if {"shape", "texture"} <= set(model.code.names):
            parts = probes.shape_texture_swap(
                model, people=options["turn_people"], split=split, seed=seed
            )
        advance()
        disentanglement = _disentanglement(model, renderer, people, ranges, options, seed, advance)

    factors = {f: {k: sweeps[f][k] for k in ("pearson", "spearman", "r2")} for f in FACTORS}
    return {
        "factors": factors,
        "rerender": rerender,
        "identity_auc": identity_auc,
        "verification": verification,
        "turn_check": turn,
        "intrinsic_spread": spread,
        "identity_swap": swap,
        **({"shape_texture_swap": parts} if parts else {}),
        "mig": disentanglement["mig"]["mig"],
        "factorvae": disentanglement["factorvae"]["eval_accuracy"],
        "betavae": disentanglement["betavae"]["eval_accuracy"],
        "dci": disentanglement["dci"]["disentanglement"],
        "details": {
            "mig_per_factor": dict(
                zip(FACTORS, (float(v) for v in disentanglement["mig"]["per_factor"]))
            ),
            "factorvae": disentanglement["factorvae"],
            "betavae": disentanglement["betavae"],
            "dci": disentanglement["dci"],
            "units": {f: int(u) for f, u in units.items()},
            "calibration_fitted_here": fitted,
            "monovariant": bool(getattr(model, "monovariant", True)),
        },
        "settings": {
            "dataset": dataset,
            "split": split,
            "seed": seed,
            "image_size": int(model.image_size),
            **{k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
        },
        "scatter": {f: sweeps[f]["scatter"] for f in FACTORS},
    }


def _unit(code, entry):
    return code.slice(entry.get("group")).start + int(entry["unit"])


class _Renderer:
    """Renders ground-truth faces the way the model sees them, and encodes them."""

    def __init__(self, model, faces):
        self.model = model
        self.faces = faces
        self.color_mode = "rgb" if getattr(model, "channels", 1) == 3 else "grayscale"

    def images(self, identity, azimuth, elevation, light):
        n = len(identity)
        images = self.faces.render(
            np.asarray(identity),
            azimuth=np.broadcast_to(np.asarray(azimuth, dtype="float64"), (n,)),
            elevation=np.broadcast_to(np.asarray(elevation, dtype="float64"), (n,)),
            light=np.broadcast_to(np.asarray(light, dtype="float64"), (n,)),
            image_size=self.model.image_size,
            color_mode=self.color_mode,
        )
        return images[..., None] if images.ndim == 3 else images

    def codes(self, *factors):
        from keras_dcign.calibration import encode_means

        return encode_means(self.model, self.images(*factors))


def _factor_sweeps(model, renderer, calibration, units, people, ranges, options, seed, advance):
    rng = np.random.default_rng([seed, 1])
    who = rng.choice(people, size=min(options["sweep_identities"], len(people)), replace=False)
    results = {}
    for factor in FACTORS:
        identity, values = factor_sweep(who, factor, options["sweep_angles"], ranges)
        degrees = values[factor]
        latent = renderer.codes(identity, values["azimuth"], values["elevation"], values["light"])[
            :, units[factor]
        ]
        predicted = calibration.to_degrees(factor, latent)
        total = np.sum((degrees - degrees.mean()) ** 2)
        r2 = 1.0 - np.sum((predicted - degrees) ** 2) / total
        results[factor] = dict(
            scores.correlations(degrees, latent),
            r2=float(r2),
            scatter={
                "true": degrees.tolist(),
                "latent": latent.astype("float64").tolist(),
                "predicted": predicted.tolist(),
                "identity": identity.tolist(),
            },
        )
        advance()
    return results


def _rerender_errors(model, renderer, people, ranges, options, seed, advance):
    from keras import ops

    rng = np.random.default_rng([seed, 2])
    who = rng.choice(people, size=min(options["rerender_identities"], len(people)), replace=False)
    n_values = options["rerender_values"]
    if n_values < 2:
        raise ValueError(f"rerender_values={n_values!r} is invalid; expected at least 2.")
    results = {}
    for factor in FACTORS:
        low, high = ranges[factor]
        grid = np.linspace(low, high, n_values)
        # Every other factor drawn once per person from the middle half of its range.
        nuisance = {
            f: rng.uniform(
                0.75 * ranges[f][0] + 0.25 * ranges[f][1],
                0.25 * ranges[f][0] + 0.75 * ranges[f][1],
                len(who),
            )
            for f in FACTORS
        }
        identity = np.repeat(who, n_values)
        values = {f: np.repeat(nuisance[f], n_values) for f in FACTORS}
        values[factor] = np.tile(grid, len(who))
        truth = renderer.images(identity, values["azimuth"], values["elevation"], values["light"])
        pairs = [
            (p * n_values + i, p * n_values + j)
            for p in range(len(who))
            for i in range(n_values)
            for j in range(n_values)
            if i != j
        ]
        source, target = (np.array(index) for index in zip(*pairs))
        rerendered = np.concatenate(
            [
                ops.convert_to_numpy(
                    model.rerender(
                        truth[source[k : k + 64]], **{factor: grid[target[k : k + 64] % n_values]}
                    )
                )
                for k in range(0, len(source), 64)
            ]
        )
        reconstruction = np.concatenate(
            [ops.convert_to_numpy(model(truth[k : k + 64])) for k in range(0, len(truth), 64)]
        )
        results[factor] = {
            "mse": mse(rerendered, truth[target]),
            "ssim": ssim(rerendered, truth[target]),
            "reconstruction_mse": mse(reconstruction, truth),
            "reconstruction_ssim": ssim(reconstruction, truth),
            "input_baseline_mse": mse(truth[source], truth[target]),
            "input_baseline_ssim": ssim(truth[source], truth[target]),
        }
        advance()
    return results


def _identity_auc(model, renderer, people, ranges, rest, options, seed):
    rng = np.random.default_rng([seed, 3])
    count = min(options["identity_people"], len(people))
    who = np.repeat(rng.choice(people, size=count, replace=False), options["identity_images"])
    angles = {f: rng.uniform(*ranges[f], len(who)) for f in FACTORS}
    codes = renderer.codes(who, angles["azimuth"], angles["elevation"], angles["light"])
    pairs = dict(num_pairs=options["identity_pairs"], seed=seed)
    auc = scores.verification_auc(codes[:, rest], who, **pairs)
    similarities, same = scores.verification_pairs(codes[:, rest], who, **pairs)
    return auc, dict(fit_threshold(similarities, same), people=int(count))


def _disentanglement(model, renderer, people, ranges, options, seed, advance):
    rng = np.random.default_rng([seed, 4])
    grids = {f: np.linspace(*ranges[f], LEVELS) for f in FACTORS}

    def sample(n, rng):
        levels = rng.integers(0, LEVELS, size=(n, len(FACTORS)))
        identity = rng.choice(people, size=n)
        return levels, identity

    def codes_of(levels, identity):
        angles = [grids[f][levels[:, i]] for i, f in enumerate(FACTORS)]
        return renderer.codes(identity, *angles)

    n = options["score_samples"]
    levels, identity = sample(n, rng)
    codes = codes_of(levels, identity)
    mig = scores.mig(codes, levels)
    advance()
    split = (2 * n) // 3
    dci = scores.dci(
        codes[:split],
        levels[:split],
        codes[split:],
        levels[split:],
        n_estimators=options["dci_estimators"],
    )
    advance()

    def fix(levels, identity, k, source_levels=None, source_identity=None, row=None):
        if k < len(FACTORS):
            levels[:, k] = source_levels[:, k] if row is None else source_levels[row, k]
        else:
            identity[:] = source_identity if row is None else source_identity[row]
        return levels, identity

    def sample_fixed(k, batch, rng):
        levels, identity = sample(batch, rng)
        levels, identity = fix(levels, identity, k, levels, identity, row=0)
        advance()
        return codes_of(levels, identity)

    def sample_pair(k, batch, rng):
        first_levels, first_identity = sample(batch, rng)
        levels, identity = sample(batch, rng)
        levels, identity = fix(levels, identity, k, first_levels, first_identity)
        advance()
        return codes_of(first_levels, first_identity), codes_of(levels, identity)

    train, test = options["factorvae_votes"]
    factorvae = scores.factorvae_score(
        sample_fixed,
        len(SCORE_FACTORS),
        global_codes=codes,
        batch_size=options["vote_batch"],
        num_train=train,
        num_eval=test,
        seed=seed,
    )
    train, test = options["betavae_points"]
    betavae = scores.betavae_score(
        sample_pair,
        len(SCORE_FACTORS),
        batch_size=options["vote_batch"],
        num_train=train,
        num_eval=test,
        seed=seed,
    )
    return {"mig": mig, "dci": dci, "factorvae": factorvae, "betavae": betavae}


@contextlib.contextmanager
def _progress(enabled, stages):
    """Yields `advance()`, which moves a rich progress bar over the stages' steps."""
    if not enabled:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    total = sum(count for _, count in stages)
    bounds = np.cumsum([count for _, count in stages])
    names = [name for name, _ in stages]
    with Progress(
        TextColumn("[bold]evaluate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stage]}"),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("evaluate", total=total, stage=names[0])
        done = [0]

        def advance():
            done[0] += 1
            stage = names[min(int(np.searchsorted(bounds, done[0], side="right")), len(names) - 1)]
            bar.update(task, advance=1, stage=stage)

        yield advance
