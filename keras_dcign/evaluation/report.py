"""Writing an evaluation down: `metrics.json`, a table, and the model card's section."""

import json
import re
from pathlib import Path

from keras_dcign.evaluation.engine import FACTORS, QUICK
from keras_dcign.files import (
    atomic_write,
    folder_marker,
    installed_folder_of,
    is_preset_folder,
    record_written,
)

METRICS_FILE = "metrics.json"
CARD_BEGIN = "<!-- dcign evaluate: begin -->"
CARD_END = "<!-- dcign evaluate: end -->"


def save_metrics(metrics, path):
    """Writes the metrics as JSON, atomically (a temporary name, then a rename)."""
    path = Path(path)
    text = json.dumps(metrics, indent=1, sort_keys=False)
    atomic_write(path, text)
    return path


def load_metrics(path):
    with open(path) as handle:
        return json.load(handle)


def summary_rows(metrics):
    """(metric, value) pairs: the numbers of the issue's targets, in a fixed order."""
    rows = []
    for factor in FACTORS:
        stats = metrics["factors"][factor]
        rows.append(
            (f"{factor}: Spearman / Pearson", f"{stats['spearman']:+.3f} / {stats['pearson']:+.3f}")
        )
        rows.append((f"{factor}: calibration R²", f"{stats['r2']:.3f}"))
    for factor in FACTORS:
        err = metrics["rerender"][factor]
        rows.append(
            (
                f"{factor} re-render MSE (SSIM)",
                f"{err['mse']:.4f} ({err['ssim']:.3f}); reconstruction "
                f"{err['reconstruction_mse']:.4f}{_ssim_of(err)}; unchanged input "
                f"{err['input_baseline_mse']:.4f}",
            )
        )
    rows += [
        ("identity verification AUC", f"{metrics['identity_auc']:.3f}"),
        *(
            [
                (
                    "verification: equal error rate (threshold)",
                    f"{verification['equal_error_rate']:.3f} ({verification['threshold']:.3f})",
                )
            ]
            if (verification := metrics.get("verification"))
            else []
        ),
        *(
            (f"re-rendered from frontal, {case}: people identified", _identified(check))
            for case, check in metrics.get("turn_check", {}).items()
        ),
        *(
            [
                (
                    "identity swap (A's pose and light, B's person) MSE (SSIM)",
                    f"{swap['mse']:.4f} ({swap['ssim']:.3f}); reconstruction "
                    f"{swap['reconstruction_mse']:.4f} ({swap['reconstruction_ssim']:.3f}); "
                    f"{_identified(swap)} identified",
                )
            ]
            if (swap := metrics.get("identity_swap"))
            else []
        ),
        *(
            (
                f"{group} swap (A's pose, light and {other}, B's {group}) MSE (SSIM)",
                f"{err['mse']:.4f} ({err['ssim']:.3f}); reconstruction "
                f"{err['reconstruction_mse']:.4f} ({err['reconstruction_ssim']:.3f}); "
                f"unchanged input {err['input_baseline_mse']:.4f}; {_identified(err)} identified",
            )
            for group, other in (("texture", "shape"), ("shape", "texture"))
            if (err := metrics.get("shape_texture_swap", {}).get(group))
        ),
        *(
            [
                (
                    "identity code spread, one person turning 40° ÷ between people",
                    f"{spread['ratio']:.2f} ({spread['within']:.2f} / {spread['between']:.2f})",
                )
            ]
            if (spread := metrics.get("intrinsic_spread"))
            else []
        ),
        ("MIG (azimuth, elevation, light)", f"{metrics['mig']:.3f}"),
        ("FactorVAE score", f"{metrics['factorvae']:.3f}"),
        ("β-VAE score", f"{metrics['betavae']:.3f}"),
        ("DCI disentanglement", f"{metrics['dci']:.3f}"),
    ]
    return rows


def _identified(check):
    return f"{check['identified']} of {check['people']} (chance: 1)"


def _ssim_of(err):
    # metrics.json written before reconstruction SSIM was measured lacks it.
    value = err.get("reconstruction_ssim")
    return "" if value is None else f" ({value:.3f})"


def rich_table(metrics, title="evaluation"):
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in summary_rows(metrics):
        table.add_row(name, value)
    return table


def card_section(metrics, command):
    """The model card's "Evaluation" section (markdown) for these metrics."""
    settings = metrics.get("settings", {})
    lines = [
        CARD_BEGIN,
        "## Evaluation",
        "",
        f"Measured by `{command}` on the generated faces' {settings.get('split', 'test')} split "
        f"(people never seen in training), seed {settings.get('seed', 0)}; "
        "definitions in `keras_dcign.evaluate`.",
        "",
        "| metric | value |",
        "|:--|--:|",
        *(f"| {name} | {value} |" for name, value in summary_rows(metrics)),
        CARD_END,
    ]
    return "\n".join(lines) + "\n"


def check_card_update(preset_dir, quick=False, name=None):
    """Refuses an `update_card` this package may not make, before anything is measured.

    The preset must be one this package wrote (its marker, or the metadata of a
    preset written before markers), outside the installed package, and a quick
    evaluation does not replace a full one.

    Args:
        preset_dir: the preset folder.
        quick: the evaluation uses the `QUICK` sample sizes.
        name: how the user named the preset, for messages.

    Raises:
        ValueError: one line naming the preset and what to do instead.
    """
    preset_dir = Path(preset_dir)
    name = name or str(preset_dir)
    if installed_folder_of(preset_dir) is not None:
        raise ValueError(
            f"Preset {name} is part of the installed keras-dcign package, which dcign never "
            f"writes; copy it with `dcign download {name} --dest DIR` and pass DIR with "
            "--update-card."
        )
    marker = folder_marker(preset_dir)
    if not ((marker and marker["kind"] == "preset") or is_preset_folder(preset_dir)):
        raise ValueError(
            f"--update-card writes into {preset_dir}, which is not a preset folder dcign wrote; "
            "nothing was changed."
        )
    if quick and _is_full_evaluation(preset_dir / METRICS_FILE):
        raise ValueError(
            f"Preset {name} holds a full evaluation in {METRICS_FILE}, which a --quick one "
            "would replace; leave out --quick to update its card."
        )


def _is_full_evaluation(path):
    try:
        settings = json.loads(Path(path).read_text()).get("settings", {})
    except (OSError, ValueError, AttributeError):
        return False
    return settings.get("score_samples", 0) > QUICK["score_samples"]


def update_card(preset_dir, metrics, command):
    """Writes `metrics.json` into a preset folder and puts the evaluation into its card.

    The card's evaluation section (between `CARD_BEGIN` and `CARD_END`) is
    replaced, or appended when there is none. The folder must pass
    `check_card_update`.
    """
    from keras_dcign.presets import CARD_FILE

    preset_dir = Path(preset_dir)
    check_card_update(preset_dir)
    card_path = preset_dir / CARD_FILE
    card = card_path.read_text() if card_path.exists() else ""
    section = card_section(metrics, command)
    pattern = re.compile(re.escape(CARD_BEGIN) + ".*?" + re.escape(CARD_END) + "\n?", re.DOTALL)
    if pattern.search(card):
        card = pattern.sub(lambda _: section, card)
    else:
        card = card.rstrip("\n") + "\n\n" + section
    save_metrics(metrics, preset_dir / METRICS_FILE)
    if metrics.get("verification"):
        from keras_dcign.verification import save_verification

        save_verification(preset_dir, metrics["verification"])
    atomic_write(card_path, card)
    record_written(preset_dir, METRICS_FILE, CARD_FILE)
    return card_path
