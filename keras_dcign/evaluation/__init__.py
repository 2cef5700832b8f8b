"""Measure a trained graphics engine: disentanglement scores and re-render error.

`evaluate(model)` returns the numbers (see `keras_dcign.evaluation.engine`);
`scores` holds the metric definitions, `figures` the paper's plots, and
`report` writes `metrics.json` and the model card's section. The command is
`dcign evaluate PRESET`.
"""

from keras_dcign.evaluation import scores  # noqa: F401
from keras_dcign.evaluation.engine import DEFAULTS, FACTORS, evaluate  # noqa: F401

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
}
