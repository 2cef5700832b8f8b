"""Writes docs/evaluation.md: `dcign evaluate` on presets, DC-IGN against the entangled baseline.

Usage:

    python tools/evaluation.py                       # faces_64, faces_64_entangled, faces_basel
    python tools/evaluation.py --reuse               # only rewrite the page from metrics.json
    python tools/evaluation.py --presets faces_64,faces_64_entangled

Each preset is measured by the real command, `dcign evaluate zoo/NAME --update-card --out
docs/evaluation/NAME` (so the bundled model cards get the same numbers), then the page is
written from the `metrics.json` files.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "evaluation"
FACTORS = ("azimuth", "elevation", "light")
DEFAULT_PRESETS = ("faces_64", "faces_64_entangled", "faces_64_shape_texture", "faces_basel")
BASELINES = {"faces_64": "faces_64_entangled"}


def run(preset):
    # The installed console script, run from the repository root so paths stay relative.
    dcign = Path(sys.executable).parent / "dcign"
    arguments = ["evaluate", f"zoo/{preset}", "--update-card", "--out", f"docs/evaluation/{preset}"]
    print("$ dcign", *arguments, flush=True)
    subprocess.run([str(dcign), *arguments], check=True, cwd=ROOT)


def rows(metrics, names):
    def cell(name, get, fmt):
        try:
            return fmt.format(get(metrics[name]))
        except (KeyError, TypeError):
            return ""

    table = []
    for f in FACTORS:
        table.append(
            [f"{f}: \\|Spearman\\| (Pearson)", "≥ 0.95"]
            + [
                cell(n, lambda m, f=f: abs(m["factors"][f]["spearman"]), "{:.3f}")
                + cell(n, lambda m, f=f: m["factors"][f]["pearson"], " ({:+.3f})")
                for n in names
            ]
        )
    for f in FACTORS:
        table.append(
            [f"{f}: calibration R²", "≥ 0.9"]
            + [cell(n, lambda m, f=f: m["factors"][f]["r2"], "{:.3f}") for n in names]
        )
    for f in FACTORS:
        target = "≤ ½ entangled, ≤ 1.5× recon." if f != "elevation" else ""
        table.append(
            [f"{f}: re-render MSE", target]
            + [cell(n, lambda m, f=f: m["rerender"][f]["mse"], "{:.4f}") for n in names]
        )
        table.append(
            [f"{f}: re-render SSIM", ""]
            + [cell(n, lambda m, f=f: m["rerender"][f]["ssim"], "{:.3f}") for n in names]
        )
        table.append(
            [f"{f}: reconstruction MSE", ""]
            + [
                cell(n, lambda m, f=f: m["rerender"][f]["reconstruction_mse"], "{:.4f}")
                for n in names
            ]
        )
        table.append(
            [f"{f}: unchanged-input MSE", ""]
            + [
                cell(n, lambda m, f=f: m["rerender"][f]["input_baseline_mse"], "{:.4f}")
                for n in names
            ]
        )
    for key, label, target in (
        ("identity_auc", "identity verification AUC", "≥ 0.95"),
        ("mig", "MIG (azimuth, elevation, light)", "≥ 0.5"),
        ("factorvae", "FactorVAE score", ""),
        ("betavae", "β-VAE score", ""),
        ("dci", "DCI disentanglement", ""),
    ):
        table.append([label, target] + [cell(n, lambda m, k=key: m[k], "{:.3f}") for n in names])
    table.append(
        ["verification equal error rate (threshold)", ""]
        + [
            cell(n, lambda m: m["verification"]["equal_error_rate"], "{:.3f}")
            + cell(n, lambda m: m["verification"]["threshold"], " ({:.3f})")
            for n in names
        ]
    )
    for case, target in (
        ("azimuth +40", "≥ 16 of 20"),
        ("azimuth -40", "≥ 16 of 20"),
        ("elevation +20", ""),
        ("light -60", "≥ 19 of 20"),
    ):
        table.append(
            [f"re-rendered from frontal, {case}: people identified", target]
            + [
                cell(n, lambda m, c=case: m["turn_check"][c]["identified"], "{} of 20")
                for n in names
            ]
        )
    table.append(
        ["identity code spread: one person turning 40° ÷ between people", ""]
        + [cell(n, lambda m: m["intrinsic_spread"]["ratio"], "{:.2f}") for n in names]
    )
    return table


def target_lines(metrics):
    lines = []
    for preset, baseline in BASELINES.items():
        if preset not in metrics or baseline not in metrics:
            continue
        for f in ("light", "azimuth"):
            ours = metrics[preset]["rerender"][f]
            theirs = metrics[baseline]["rerender"][f]
            lines.append(
                f"- {preset} {f} re-render MSE is {ours['mse'] / theirs['mse']:.2f}x the "
                f"entangled baseline's (target ≤ 0.5) and "
                f"{ours['mse'] / ours['reconstruction_mse']:.2f}x its own reconstruction MSE "
                "(target ≤ 1.5)."
            )
    return lines


MARKER = "<!-- The rest of this page is written by tools/evaluation.py -->"


def write_page(names):
    """Rewrites docs/evaluation.md below MARKER; the text above it is kept."""
    page = ROOT / "docs" / "evaluation.md"
    text = page.read_text() if page.exists() else "# Evaluation\n"
    intro = text.split(MARKER)[0].rstrip("\n") + "\n\n" + MARKER
    metrics = {n: json.loads((OUT / n / "metrics.json").read_text()) for n in names}
    header = ["metric", "target", *(f"`{n}`" for n in names)]
    table = [header, [":--", ":--", *(["--:"] * len(names))], *rows(metrics, names)]
    lines = [intro, "", *("| " + " | ".join(r) + " |" for r in table), ""]
    lines += target_lines(metrics)
    lines += ["", "## Figures", ""]
    for n in names:
        lines += [
            f"### `{n}`",
            "",
            f"![{n}: true against inferred angle](evaluation/{n}/scatter.png)",
            "",
            *(f"![{n}: {f} traversal](evaluation/{n}/traversal_{f}.png)" for f in FACTORS),
            "",
        ]
    page.write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default=",".join(DEFAULT_PRESETS))
    parser.add_argument("--reuse", action="store_true", help="do not re-run dcign evaluate")
    args = parser.parse_args(argv)
    names = args.presets.split(",")
    if not args.reuse:
        for name in names:
            run(name)
    write_page(names)


if __name__ == "__main__":
    main()
