"""Measure a trained graphics engine: disentanglement scores and re-render error.

`evaluate(model)` returns the numbers (see `keras_dcign.evaluation.engine`, which also
holds the sample sizes, `DEFAULTS` and `QUICK`); `evaluate_preset` is `dcign evaluate`:
a preset measured, its metrics and figures written;
`scores` holds the metric definitions, `figures` the paper's plots, and
`report` writes `metrics.json` and the model card's section. The command is
`dcign evaluate PRESET`.
"""

from keras_dcign.evaluation import scores
from keras_dcign.evaluation.engine import DEFAULTS, FACTORS, QUICK, evaluate
from keras_dcign.evaluation.preset import EvaluationResult, evaluate_preset

__all__ = [
    "DEFAULTS",
    "FACTORS",
    "QUICK",
    "EvaluationResult",
    "evaluate",
    "evaluate_preset",
    "scores",
]
