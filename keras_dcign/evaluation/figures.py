"""Figures of an evaluation: the paper's scatter plots and traversal grids."""

from pathlib import Path

import numpy as np

from keras_dcign.evaluation.engine import FACTORS
from keras_dcign.extras import require
from keras_dcign.files import atomic_write


def scatter_plot(metrics, path, title=None):
    """True against inferred angle for each factor (the paper's figure), as a PNG.

    The inferred angle is the calibrated reading of the factor's latent
    unit; each person's sweep has its own colour.
    """
    require("matplotlib", "Evaluation figures").use("Agg")
    plt = require("matplotlib.pyplot", "Evaluation figures")
    figure, axes = plt.subplots(1, len(FACTORS), figsize=(4 * len(FACTORS), 4), dpi=100)
    for axis, factor in zip(axes, FACTORS):
        points = metrics["scatter"][factor]
        true = np.asarray(points["true"])
        predicted = np.asarray(points["predicted"])
        identity = np.asarray(points["identity"])
        _, colour = np.unique(identity, return_inverse=True)
        axis.scatter(true, predicted, c=colour, cmap="tab20", s=10)
        low, high = true.min(), true.max()
        axis.plot([low, high], [low, high], color="black", linewidth=0.8)
        stats = metrics["factors"][factor]
        axis.set_title(f"{factor}: Spearman {stats['spearman']:.2f}, R² {stats['r2']:.2f}")
        axis.set_xlabel("true angle (degrees)")
        axis.set_ylabel("inferred angle (degrees)")
        axis.set_ylim(low - 0.5 * (high - low), high + 0.5 * (high - low))
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    atomic_write(path, lambda handle: figure.savefig(handle, format="png"))
    plt.close(figure)
    return path


def traversal_grid(model, path, factor, people=4, steps=7, split="test", seed=0):
    """Re-renders frontal people across a factor's calibrated range, as a PNG grid.

    Rows are people; the first column is the input (frontal, level, lit from
    the front), the next `steps` columns the re-renderings from the low to
    the high end of the range, and the last `steps` columns the renderer's
    ground truth at the same angles, after a blank gap.
    """
    from keras import ops

    from keras_dcign.datasets import faces
    from keras_dcign.image_files import save_image

    if factor not in FACTORS:
        raise ValueError(f"factor={factor!r} is not supported; expected one of {FACTORS}.")
    low, high = model.calibration.factors[factor]["range"]
    angles = np.linspace(low, high, steps)
    who = np.random.default_rng([seed, 5]).choice(faces.identities(split), people, replace=False)
    size = model.image_size
    rows = []
    for person in who:
        source = faces.render(person, image_size=size)[None, ..., None]
        sweep = ops.convert_to_numpy(
            model.rerender(np.repeat(source, steps, axis=0), **{factor: angles})
        )[..., 0]
        values = {f: np.zeros(steps) for f in FACTORS}
        values[factor] = angles
        truth = faces.render(np.full(steps, person), image_size=size, **values)
        gap = np.zeros((size, size // 4), dtype="float32")
        rows.append(np.concatenate([source[0, ..., 0], gap, *sweep, gap, *truth], axis=1))
    return save_image(np.concatenate(rows, axis=0), Path(path))
