"""Learning curves of the 64² recipes: quality against images seen, for docs/recipes.md.

Usage:

    python tools/curves.py --candidates strided_gaussian      # train and measure its points
    python tools/curves.py --report                           # figure, table and face strips

Each candidate is the real command, `dcign train --dataset faces --out runs/curves/NAME FLAGS
--steps N`, run to its first point, then resumed (`--resume --steps N`) to each later point.
At every point the run's preset is measured by `dcign evaluate PRESET --quick` (a tenth of the
full evaluation's images; the bundled presets' cards use the full one) and by reconstructing
the same four held-out test faces. Results go to `docs/evaluation/curves/NAME/IMAGES/`; a
point whose metrics.json exists is not run again. `--time-limit MIN` caps the last point's
training (the point is then recorded at the images actually seen).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "evaluation" / "curves"
RUNS = ROOT / "runs" / "curves"
BATCH = 20
PAPER_STACK = ["--architecture", "paper", "--reconstruction", "bernoulli", "--kl-weight", "0.5"]
CURRENT = ["--cache-batches", "3000"]
FINETUNE = [
    "--init-from",
    "faces_64",
    "--pretrain-steps",
    "0",
    "--cache-batches",
    "10000",
    "--learning-rate",
    "5e-4",
    "--backend",
    "jax",
]

# name: (description, flags relative to the faces_64 recipe, images seen at each point)
CANDIDATES = {
    "paper_bernoulli": (
        "the former faces_64 recipe: the paper's stack, Bernoulli, KL 0.5, monovariant from the "
        "first step (its 48,000-image point is the former bundled preset, measured as it was)",
        [*PAPER_STACK, "--pretrain-steps", "0", "--cache-batches", "1200"],
        [],
    ),
    "strided_gaussian": (
        "strided stack, calibrated Gaussian (learned sigma), KL 1, monovariant from the first step",
        ["--pretrain-steps", "0", "--cache-batches", "10000"],
        [50_000],
    ),
    "strided_kl0": (
        "strided stack, monovariant from the first step, KL weight 0 (an autoencoder in effect)",
        ["--pretrain-steps", "0", "--kl-weight", "0", *CURRENT],
        [30_000],
    ),
    "strided_plain": (
        "strided stack, calibrated Gaussian, KL 1, a plain VAE throughout (nothing clamped)",
        ["--pretrain-steps", "1500", *CURRENT],
        [30_000],
    ),
    "pretrain_monovariant": (
        "7,500 steps, the first 4,500 as a plain VAE on the monovariant batches (nothing "
        "clamped), 3,000 cached batches",
        ["--pretrain-data", "monovariant"],
        [50_000, 150_000],
    ),
    "default": (
        "the faces_64 recipe exactly as `dcign train --dataset faces` runs it: 7,500 steps, the "
        "first 4,500 as a plain VAE on MIXED batches (a new person in every image), 3,000 "
        "cached batches of each",
        [],
        [150_000],
    ),
    "long": (
        "the recipe trained longer, the first 12,500 steps as a plain VAE on the monovariant "
        "batches, 10,000 cached batches",
        ["--pretrain-steps", "12500", "--pretrain-data", "monovariant", "--cache-batches", "10000"],
        [50_000, 150_000, 250_000, 400_000, 1_000_000],
    ),
    "side_by_side_2": (
        "the default recipe with two monovariant batches side by side in each step (each clamped "
        "on its own), so half the steps for the same images: 3,750 steps of 40 images, the first "
        "2,250 as a plain VAE on MIXED batches; Keras/JAX",
        ["--batches-per-step", "2", "--pretrain-steps", "2250", "--backend", "jax"],
        [150_000],
    ),
    "short_float32": (
        "a short run for the precision comparison: 1,500 steps, the first 900 as a plain VAE on "
        "MIXED batches, float32; Keras/JAX",
        ["--pretrain-steps", "900", "--backend", "jax"],
        [30_000],
    ),
    "short_bfloat16": (
        "the same short run computed in bfloat16 (`--precision bfloat16`: float32 weights, "
        "bfloat16 arithmetic); Keras/JAX",
        ["--pretrain-steps", "900", "--precision", "bfloat16", "--backend", "jax"],
        [30_000],
    ),
    # Fine-tuning the bundled faces_64 (606,020 images) on its own monovariant batches with a
    # fresh optimizer: what makes the identity code carry over when the head turns.
    "finetune_none": (
        "the bundled faces_64 before fine-tuning (the `long` run at 606,020 images), measured "
        "as the fine-tunes are",
        [],
        [],
    ),
    "finetune_long": (
        "the long run that became the bundled faces_64: the bundled preset fine-tuned for "
        "1,000,000 images with invariance strength 20, a quarter plain-VAE MIXED batches and "
        "the learning rate decayed over the last 30% (measured from its run folder)",
        [],
        [],
    ),
    "finetune_s10": (
        "the bundled faces_64 fine-tuned on the monovariant batches with invariance strength 10 "
        "(the pull of each clamped latent to its batch mean; the recipe's is 0.01), learning "
        "rate 5e-4; Keras/JAX",
        [*FINETUNE, "--invariance-strength", "10"],
        [30_000],
    ),
    "finetune_s10_plain": (
        "as finetune_s10, with a quarter of the steps plain-VAE MIXED batches",
        [*FINETUNE, "--invariance-strength", "10", "--plain-fraction", "0.25"],
        [30_000],
    ),
    "finetune_s30_plain": (
        "as finetune_s10_plain with invariance strength 30",
        [*FINETUNE, "--invariance-strength", "30", "--plain-fraction", "0.25"],
        [30_000],
    ),
}
# Points measured on a bundled preset instead of a run: name -> (preset folder, images seen).
BUNDLED_POINTS = {
    "paper_bernoulli": ("zoo/faces_64", 48_000),
    "finetune_none": ("zoo/faces_64", 0),
    "finetune_long": ("runs/faces_64_long/preset", 1_000_000),
}
TEST_FACES = 4


def dcign(*args):
    command = [str(Path(sys.executable).parent / "dcign"), *map(str, args)]
    print("$ dcign", *map(str, args), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def run_point(name, images, last, time_limit):
    run_dir = RUNS / name
    flags = CANDIDATES[name][1]
    per_step = BATCH * _batches_per_step(flags)
    steps = images // per_step
    args = ["train", "--dataset", "faces", "--out", run_dir, "--steps", steps, *flags]
    if (run_dir / "checkpoints").exists():
        args.append("--resume")
    if last and time_limit:
        args += ["--time-limit", time_limit]
    start = time.perf_counter()
    dcign(*args)
    seconds = time.perf_counter() - start
    preset = run_dir / "preset"
    seen = json.loads((preset / "metadata.json").read_text())["steps"] * per_step
    out = OUT / name / f"{seen}"
    dcign("evaluate", preset, "--quick", "--out", out)
    save_strip(preset, out / "faces.png")
    (out / "train.json").write_text(
        json.dumps({"command": "dcign " + " ".join(map(str, args)), "seconds": round(seconds)})
    )


def _batches_per_step(flags):
    flags = list(map(str, flags))
    return int(flags[flags.index("--batches-per-step") + 1]) if "--batches-per-step" in flags else 1


def measure_bundled(name):
    """A curve point from a bundled preset, with its own card's training time."""
    folder, seen = BUNDLED_POINTS[name]
    preset = ROOT / folder
    metadata = json.loads((preset / "metadata.json").read_text())
    out = OUT / name / f"{seen}"
    dcign("evaluate", preset, "--quick", "--out", out)
    save_strip(preset, out / "faces.png")
    (out / "train.json").write_text(
        json.dumps(
            {"command": metadata["command"], "seconds": round(metadata["train_seconds_this_run"])}
        )
    )


def test_faces(image_size=64):
    """Four held-out people at fixed random pose and light (the same for every point)."""
    import numpy as np

    from keras_dcign.datasets import faces
    from keras_dcign.evaluation.probes import factor_ranges

    rng = np.random.default_rng(7)
    who = np.asarray(faces.identities("test"))[:TEST_FACES]
    ranges = factor_ranges()
    angles = {f: rng.uniform(*ranges[f], TEST_FACES) * 0.6 for f in ranges}
    return faces.render(who, image_size=image_size, **angles)[..., None].astype("float32")


def save_strip(preset, path):
    """Top row: the four test faces; bottom row: the preset's reconstructions."""
    import numpy as np
    from keras import ops
    from PIL import Image

    import keras_dcign

    model = keras_dcign.from_preset(str(preset))
    images = test_faces(model.image_size)
    recon = ops.convert_to_numpy(model(images))
    grid = np.concatenate(
        [np.concatenate(list(images[..., 0]), 1), np.concatenate(list(recon[..., 0]), 1)], 0
    )
    Image.fromarray((np.clip(grid, 0, 1) * 255).round().astype("uint8")).save(path)


def points(name):
    found = []
    for folder in sorted((OUT / name).glob("*"), key=lambda p: int(p.name)):
        if (folder / "metrics.json").exists():
            metrics = json.loads((folder / "metrics.json").read_text())
            train = json.loads((folder / "train.json").read_text())
            found.append((int(folder.name), metrics, train, folder))
    return found


def report():
    """docs/images/curves.png and the curves section of docs/recipes.md."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = {
        "reconstruction SSIM": lambda m: m["rerender"]["light"]["reconstruction_ssim"],
        "light re-render SSIM": lambda m: m["rerender"]["light"]["ssim"],
        "azimuth re-render SSIM": lambda m: m["rerender"]["azimuth"]["ssim"],
        "identity AUC": lambda m: m["identity_auc"],
    }
    # Columns of the table only: how well the pose and light units read their factor.
    readings = {
        f"{f} \\|S\\|": (lambda m, f=f: abs(m["factors"][f]["spearman"]))
        for f in ("azimuth", "elevation", "light")
    }
    # Columns of the table only: re-render identification from frontal among 20 held-out
    # people (measured since the turn check exists; "–" for older points).
    readings.update(
        {
            "turn +40° / −40° (of 20)": lambda m: _identified(m, "azimuth +40", "azimuth -40"),
            "relit −60° (of 20)": lambda m: _identified(m, "light -60"),
        }
    )
    fig, axes = plt.subplots(1, len(measures), figsize=(4 * len(measures), 3.4))
    rows = []
    for name in CANDIDATES:
        found = points(name)
        if not found:
            continue
        plotted = [p for p in found if p[0] > 0]  # a bundled starting point has no x on a log axis
        for ax, (label, value) in zip(axes, measures.items()):
            ax.plot([p[0] for p in plotted], [value(p[1]) for p in plotted], "o-", label=name)
            ax.set_xscale("log")
            ax.set_title(label)
            ax.set_xlabel("images seen")
        for seen, metrics, train, folder in found:
            rows.append(
                f"| {name} | {seen:,} | {train['seconds']} | "
                + " | ".join(f"{value(metrics):.3f}" for value in measures.values())
                + " | "
                + " | ".join(_cell(value(metrics)) for value in readings.values())
                + f" | ![]({folder.relative_to(ROOT / 'docs').as_posix()}/faces.png) |"
            )
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "images" / "curves.png", dpi=90)
    header = (
        "| candidate | images seen | train s (this segment) | "
        + " | ".join([*measures, *readings])
        + " | test faces (top) and reconstructions |\n"
        + "|:--|--:|--:|"
        + "--:|" * (len(measures) + len(readings))
        + ":--|"
    )
    legend = "\n".join(
        f"- `{name}`: {description}; flags `{' '.join(flags) or '(none)'}`"
        for name, (description, flags, _) in CANDIDATES.items()
    )
    section = f"{CURVES_BEGIN}\n{legend}\n\n{header}\n" + "\n".join(rows) + f"\n{CURVES_END}\n"
    page = ROOT / "docs" / "recipes.md"
    text = page.read_text()
    if CURVES_BEGIN not in text or CURVES_END not in text:
        raise SystemExit(f"{page} has no {CURVES_BEGIN} ... {CURVES_END} block to rewrite.")
    before, rest = text.split(CURVES_BEGIN, 1)
    page.write_text(before + section + rest.split(CURVES_END + "\n", 1)[1])


def _identified(metrics, *cases):
    checks = metrics.get("turn_check")
    if not checks:
        return None
    return " / ".join(str(checks[case]["identified"]) for case in cases)


def _cell(value):
    if value is None:
        return "–"
    return value if isinstance(value, str) else f"{value:.2f}"


CURVES_BEGIN = "<!-- curves: written by tools/curves.py -->"
CURVES_END = "<!-- end of curves -->"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", default="", help="comma-separated names to run")
    parser.add_argument("--report", action="store_true", help="write the figure and table")
    parser.add_argument("--time-limit", default=None, help="minutes for the last point")
    args = parser.parse_args()
    for name in filter(None, args.candidates.split(",")):
        if name not in CANDIDATES:
            parser.error(f"unknown candidate {name!r}; expected some of {list(CANDIDATES)}")
        targets = CANDIDATES[name][2]
        done = {p[0] for p in points(name)}
        if name in BUNDLED_POINTS and BUNDLED_POINTS[name][1] not in done:
            measure_bundled(name)
        for i, images in enumerate(targets):
            if images not in done:
                run_point(name, images, i == len(targets) - 1, args.time_limit)
    if args.report:
        report()


if __name__ == "__main__":
    main()
