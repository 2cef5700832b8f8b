"""Writes docs/recipes.md: the paper's training settings against one change at a time.

Usage:

    python tools/recipes.py                     # train and evaluate every variant not yet run
    python tools/recipes.py --reuse             # only rewrite the page from metrics.json
    python tools/recipes.py --variants kl_1,clamp_first

Each variant is the real command, `dcign train --dataset faces --out runs/recipes/NAME FLAGS`
(about 11 minutes each at 2,400 steps on 2 CPU cores), then `dcign evaluate
runs/recipes/NAME/preset --out docs/evaluation/recipes/NAME`. A variant whose metrics.json
exists is not run again. The flags restate the former `faces_64` recipe (the paper's conv stack
and likelihood, KL weight 0.5, which this comparison chose; a later flag wins over an earlier
one); `kl_1` is the paper's setting and every other variant changes one thing from it.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "evaluation" / "recipes"
RUNS = ROOT / "runs" / "recipes"

# The former faces_64 recipe these variants were measured against: the paper's conv stack
# and Bernoulli likelihood, monovariant from the first step, KL weight 0.5, 2,400 steps.
FORMER = [
    "--architecture",
    "paper",
    "--reconstruction",
    "bernoulli",
    "--pretrain-steps",
    "0",
    "--cache-batches",
    "1200",
    "--steps",
    "2400",
    "--kl-weight",
    "0.5",
]
PAPER = [*FORMER, "--kl-weight", "1"]

# The paper's settings (KL weight 1), then one change at a time: what the paper and the
# reference code vary.
VARIANTS = {
    "kl_1": PAPER,
    "clamp_first": [*PAPER, "--clamp", "first"],
    "invariance_0.1": [*PAPER, "--invariance-strength", "0.1"],
    "shape_bias_16": [*PAPER, "--shape-bias", "16"],
    "steps_6000": [*PAPER, "--steps", "6000"],
    "kl_0.5": FORMER,
    "kl_0.25": [*FORMER, "--kl-weight", "0.25"],
}


def metrics_path(name):
    return OUT / name / "metrics.json"


def run(name):
    dcign = str(Path(sys.executable).parent / "dcign")
    run_dir = RUNS / name
    train = ["train", "--dataset", "faces", "--out", str(run_dir), *VARIANTS[name]]
    if (run_dir / "checkpoints").exists():
        train.append("--resume")
    print("$ dcign", *train, flush=True)
    start = time.perf_counter()
    subprocess.run([dcign, *train], check=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    evaluate = ["evaluate", str(run_dir / "preset"), "--out", str(OUT / name)]
    print("$ dcign", *evaluate, flush=True)
    subprocess.run([dcign, *evaluate], check=True, cwd=ROOT)
    (OUT / name / "train.json").write_text(
        json.dumps(
            {
                "command": ["dcign", *train[:3], f"runs/recipes/{name}", *VARIANTS[name]],
                "wall_seconds": round(seconds, 1),
            },
            indent=2,
        )
        + "\n"
    )


COLUMNS = (
    ("az \\|S\\|", lambda m: abs(m["factors"]["azimuth"]["spearman"]), "{:.3f}"),
    ("el \\|S\\|", lambda m: abs(m["factors"]["elevation"]["spearman"]), "{:.3f}"),
    ("light \\|S\\|", lambda m: abs(m["factors"]["light"]["spearman"]), "{:.3f}"),
    ("az R²", lambda m: m["factors"]["azimuth"]["r2"], "{:.3f}"),
    ("el R²", lambda m: m["factors"]["elevation"]["r2"], "{:.2f}"),
    ("light R²", lambda m: m["factors"]["light"]["r2"], "{:.3f}"),
    ("az re-render MSE", lambda m: m["rerender"]["azimuth"]["mse"], "{:.4f}"),
    ("light re-render MSE", lambda m: m["rerender"]["light"]["mse"], "{:.4f}"),
    (
        "az / recon.",
        lambda m: m["rerender"]["azimuth"]["mse"] / m["rerender"]["azimuth"]["reconstruction_mse"],
        "{:.2f}",
    ),
    (
        "light / recon.",
        lambda m: m["rerender"]["light"]["mse"] / m["rerender"]["light"]["reconstruction_mse"],
        "{:.2f}",
    ),
    ("identity AUC", lambda m: m["identity_auc"], "{:.3f}"),
    ("MIG", lambda m: m["mig"], "{:.3f}"),
    ("FactorVAE", lambda m: m["factorvae"], "{:.3f}"),
    ("β-VAE", lambda m: m["betavae"], "{:.3f}"),
    ("DCI", lambda m: m["dci"], "{:.3f}"),
)

MARKER = "<!-- The rest of this page is written by tools/recipes.py -->"


def write_page(names):
    """Rewrites docs/recipes.md below MARKER; the text above it is kept."""
    page = ROOT / "docs" / "recipes.md"
    text = page.read_text() if page.exists() else "# Recipe comparison\n"
    intro = text.split(MARKER)[0].rstrip("\n") + "\n\n" + MARKER
    present = [n for n in names if metrics_path(n).exists()]
    header = ["variant", "flags", *(c[0] for c in COLUMNS)]
    lines = [
        intro,
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join([":--", ":--", *(["--:"] * len(COLUMNS))]) + " |",
    ]
    for name in present:
        metrics = json.loads(metrics_path(name).read_text())
        # Shown relative to the former recipe, which every variant restates first.
        flags = " ".join(VARIANTS.get(name, [])[len(FORMER) :]) or "(none)"
        cells = [fmt.format(get(metrics)) for _, get, fmt in COLUMNS]
        lines.append("| " + " | ".join([f"`{name}`", f"`{flags}`", *cells]) + " |")
    lines += [
        "",
        "Training wall time on the same machine (from the command's start, cache already "
        "rendered unless the variant needs its own):",
        "",
    ]
    for name in present:
        info = OUT / name / "train.json"
        if info.exists():
            record = json.loads(info.read_text())
            note = f"; {record['note']}" if record.get("note") else ""
            lines.append(f"- `{name}`: {record['wall_seconds'] / 60:.1f} min{note}")
    page.write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--reuse", action="store_true", help="do not train or evaluate")
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; expected one of {list(VARIANTS)}")
    if not args.reuse:
        for name in names:
            if not metrics_path(name).exists():
                run(name)
    write_page(names)


if __name__ == "__main__":
    main()
