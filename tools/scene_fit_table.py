"""Scene fitting against simulations spent, per summary statistic: docs/scene_fit.md and
docs/images/scene_fit.png.

Usage:

    python tools/scene_fit_table.py                       # faces_64, 8 people, 3 budgets
    python tools/scene_fit_table.py --preset PRESET --people 12 --budgets 300,1000,3000

Each held-out person (the test split) is rendered once at a random azimuth, elevation and light
(fixed seed), and `keras_dcign.inference.fit_scene` fits the generator's scene to that picture
with each statistic and budget. Measured: the absolute error of each fitted angle (degrees,
posterior mean), the correlation of the fitted shape and albedo coefficients with the person's
own, and identification (the fitted person drawn frontally by the generator is nearest, in
pixels, the true frontal picture of the same person among all of them).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STATISTICS = ("code", "pixels", "readout")
BEGIN, END = "<!-- scene fit: written by tools/scene_fit_table.py -->", "<!-- end of scene fit -->"


def measure(preset, people, budgets, seed=0):
    import keras_dcign
    from keras_dcign.datasets import faces
    from keras_dcign.inference import fit_scene

    model = keras_dcign.from_preset(preset)
    size = model.image_size
    who = np.asarray(faces.identities("test"))[:people]
    rng = np.random.default_rng(seed)
    truth = {
        "azimuth": rng.uniform(-60, 60, people),
        "elevation": rng.uniform(-20, 20, people),
        "light": rng.uniform(-60, 60, people),
    }
    images = faces.render(who, image_size=size, **truth)[..., None].astype("float32")
    frontal = faces.render(who, image_size=size)
    rows = []
    for budget in budgets:
        for statistic in STATISTICS:
            began = time.perf_counter()
            errors, correlations, drawn = [], [], []
            for k, person in enumerate(who):
                fit = fit_scene(model, images[k], simulations=budget, statistic=statistic)
                estimate = fit.estimate()
                errors.append([abs(estimate[a] - truth[a][k]) for a in truth])
                own = faces.coefficients(int(person))
                correlations.append(float(np.corrcoef(estimate["coefficients"], own)[0, 1]))
                drawn.append(fit.render(image_size=size, azimuth=0.0, elevation=0.0, light=0.0))
            distance = np.mean((np.asarray(drawn)[:, None] - frontal[None]) ** 2, axis=(2, 3))
            identified = int(np.sum(np.argmin(distance, axis=1) == np.arange(people)))
            median = np.median(np.asarray(errors), axis=0)
            rows.append(
                {
                    "statistic": statistic,
                    "simulations": budget,
                    "azimuth_error": float(median[0]),
                    "elevation_error": float(median[1]),
                    "light_error": float(median[2]),
                    "coefficient_correlation": float(np.mean(correlations)),
                    "identified": identified,
                    "people": int(people),
                    "seconds_per_fit": (time.perf_counter() - began) / people,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def write(rows, preset, people):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 4, figsize=(15, 3.3))
    columns = [
        ("azimuth_error", "azimuth error (°, median)"),
        ("elevation_error", "elevation error (°, median)"),
        ("light_error", "light error (°, median)"),
        ("coefficient_correlation", "identity coefficients: correlation"),
    ]
    for axis, (key, title) in zip(axes, columns):
        for statistic in STATISTICS:
            mine = [r for r in rows if r["statistic"] == statistic]
            axis.plot(
                [r["simulations"] for r in mine], [r[key] for r in mine], "o-", label=statistic
            )
        axis.set_xscale("log")
        axis.set_xlabel("simulations")
        axis.set_title(title, fontsize=9)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(ROOT / "docs" / "images" / "scene_fit.png", dpi=90)
    table = [
        "| statistic | simulations | azimuth error ° | elevation error ° | light error ° | "
        "coefficient correlation | identified | s per fit |",
        "|:--|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in sorted(rows, key=lambda r: (r["simulations"], STATISTICS.index(r["statistic"]))):
        table.append(
            f"| {r['statistic']} | {r['simulations']:,} | {r['azimuth_error']:.1f} | "
            f"{r['elevation_error']:.1f} | {r['light_error']:.1f} | "
            f"{r['coefficient_correlation']:.2f} | {r['identified']} of {r['people']} | "
            f"{r['seconds_per_fit']:.1f} |"
        )
    block = (
        f"{BEGIN}\nPreset `{preset}`, {people} held-out people, one random scene each "
        "(`python tools/scene_fit_table.py`).\n\n" + "\n".join(table) + f"\n\n{END}\n"
    )
    page = ROOT / "docs" / "scene_fit.md"
    text = page.read_text()
    before, rest = text.split(BEGIN, 1)
    page.write_text(before + block + rest.split(END + "\n", 1)[1])
    (ROOT / "docs" / "evaluation" / "scene_fit.json").write_text(json.dumps(rows, indent=1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="faces_64")
    parser.add_argument("--people", type=int, default=8)
    parser.add_argument("--budgets", default="300,1000,3000")
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    rows = measure(args.preset, args.people, budgets)
    write(rows, args.preset, args.people)


if __name__ == "__main__":
    main()
