"""`dcign evaluate`: a preset measured, its metrics and figures written."""

import dataclasses
from pathlib import Path

from keras_dcign.evaluation import figures, report
from keras_dcign.evaluation.engine import FACTORS, QUICK, evaluate
from keras_dcign.files import atomic_folder, check_distinct, check_output_folder
from keras_dcign.presets import from_preset, resolve_preset


@dataclasses.dataclass
class EvaluationResult:
    """What `evaluate_preset` measured and wrote: the metrics, the preset's name and the
    folder holding `metrics.json` and the figures."""

    metrics: dict
    name: str
    out: Path


def evaluate_preset(
    preset,
    out=None,
    split="test",
    seed=0,
    quick=False,
    update_card=False,
    command=None,
    overwrite=False,
):
    """Measures a preset and writes `metrics.json`, a scatter plot and traversal grids.

    Args:
        preset: a zoo name, preset folder (or a training run's `preset/`), URL, ...
        out: the folder to write: new, empty, or this preset's evaluation as
            this package wrote it (replaced whole); default `evaluation/<preset name>`.
        split: `"test"` (held-out people) or `"train"`.
        seed: seed of the sampled faces.
        quick: use the `QUICK` sample sizes (about a tenth of the images).
        update_card: also write `metrics.json` and an Evaluation section into
            the preset folder's model card.
        command: the command line to quote in the card.
        overwrite: replace an `out` this package wrote even when it holds other
            files or another preset's evaluation.

    Returns:
        An `EvaluationResult`.
    """
    folder, name, out = evaluation_outputs(preset, out, quick, update_card, overwrite)
    rule = dict(kind="evaluation", overwrite=overwrite, origin=str(folder.resolve()))
    model = from_preset(folder)
    metrics = evaluate(model, split=split, seed=seed, **(QUICK if quick else {}))
    with atomic_folder(out, **rule) as staging:
        report.save_metrics(metrics, staging / report.METRICS_FILE)
        figures.scatter_plot(metrics, staging / "scatter.png", title=name)
        for factor in FACTORS:
            grid = staging / f"traversal_{factor}.png"
            figures.traversal_grid(model, grid, factor, split=split)
    if update_card:
        report.update_card(folder, metrics, command or f"dcign evaluate {preset} --update-card")
    return EvaluationResult(metrics, name, out)


def evaluation_outputs(preset, out=None, quick=False, update_card=False, overwrite=False):
    """What `evaluate_preset` reads and writes, checked before anything is measured.

    Returns:
        `(preset folder, name, output folder)`.

    Raises:
        ValueError: the output folder may not be written (`keras_dcign.files`'
            write rule), would hold the preset, or the card may not be updated
            (`report.check_card_update`).
    """
    folder = resolve_preset(preset)
    # A run's folder holds its preset in `preset/`: name it after the run.
    name = folder.name if folder.name != "preset" else folder.parent.name
    out = Path(out) if out else Path("evaluation") / name
    check_distinct([out], [folder], replaced=True)
    origin = str(folder.resolve())
    check_output_folder(out, "evaluation", overwrite, origin=origin)
    if update_card:
        report.check_card_update(folder, quick, name=preset)
    return folder, name, out
