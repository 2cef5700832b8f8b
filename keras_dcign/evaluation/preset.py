"""`dcign evaluate`: a preset measured, its metrics and figures written."""

import dataclasses
from pathlib import Path

from keras_dcign.evaluation import figures, report
from keras_dcign.evaluation.engine import FACTORS, QUICK, evaluate
from keras_dcign.files import check_distinct
from keras_dcign.presets import from_preset, resolve_preset


@dataclasses.dataclass
class EvaluationResult:
    """What `evaluate_preset` measured and wrote: the metrics, the preset's name and the
    folder holding `metrics.json` and the figures."""

    metrics: dict
    name: str
    out: Path


def evaluate_preset(
    preset, out=None, split="test", seed=0, quick=False, update_card=False, command=None
):
    """Measures a preset and writes `metrics.json`, a scatter plot and traversal grids.

    Args:
        preset: a zoo name, preset folder (or a training run's `preset/`), URL, ...
        out: the folder to write; default `evaluation/<preset name>`.
        split: `"test"` (held-out people) or `"train"`.
        seed: seed of the sampled faces.
        quick: use the `QUICK` sample sizes (about a tenth of the images).
        update_card: also write `metrics.json` and an Evaluation section into
            the preset folder's model card.
        command: the command line to quote in the card.

    Returns:
        An `EvaluationResult`.
    """
    folder = resolve_preset(preset)
    # A run's folder holds its preset in `preset/`: name it after the run.
    name = folder.name if folder.name != "preset" else folder.parent.name
    out = Path(out) if out else Path("evaluation") / name
    check_distinct([out], [folder])
    model = from_preset(folder)
    out.mkdir(parents=True, exist_ok=True)
    metrics = evaluate(model, split=split, seed=seed, **(QUICK if quick else {}))
    report.save_metrics(metrics, out / report.METRICS_FILE)
    figures.scatter_plot(metrics, out / "scatter.png", title=name)
    for factor in FACTORS:
        figures.traversal_grid(model, out / f"traversal_{factor}.png", factor, split=split)
    if update_card:
        report.update_card(folder, metrics, command or f"dcign evaluate {preset} --update-card")
    return EvaluationResult(metrics, name, out)
