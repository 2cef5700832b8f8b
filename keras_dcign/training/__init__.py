"""Training a DC-IGN by recipe: `recipes` (the settings' schema and the named recipes), `data`
(the batches), `loop` (`train`: model, checkpoints, calibration, preset), `checkpoint` (atomic,
resumable checkpoints), `callbacks`, `schedule` and `card` (the preset's model card).

The names load on first use: `recipes` needs no Keras, the rest does.
"""

import importlib

_EXPORTS = {
    "LEGACY_SETTINGS": "keras_dcign.training.recipes",
    "PRETRAIN_DATA": "keras_dcign.training.recipes",
    "RECIPES": "keras_dcign.training.recipes",
    "Recipe": "keras_dcign.training.recipes",
    "TrainResult": "keras_dcign.training.loop",
    "describe_machine": "keras_dcign.training.card",
    "heldout_reconstruction_mse": "keras_dcign.evaluation.probes",
    "model_card": "keras_dcign.training.card",
    "recipe": "keras_dcign.training.recipes",
    "train": "keras_dcign.training.loop",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'keras_dcign.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
