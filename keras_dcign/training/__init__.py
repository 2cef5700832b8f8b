"""Training a DC-IGN by recipe: `recipes` (the named settings), `data` (the batches),
`loop` (`train`: model, checkpoints, calibration, preset), `checkpoint` (atomic, resumable
checkpoints), `callbacks` and `card` (the preset's model card)."""

from keras_dcign.training.card import describe_machine, model_card
from keras_dcign.training.loop import TrainResult, heldout_reconstruction_mse, train
from keras_dcign.training.recipes import LEGACY_SETTINGS, PRETRAIN_DATA, RECIPES, recipe

__all__ = [
    "LEGACY_SETTINGS",
    "PRETRAIN_DATA",
    "RECIPES",
    "TrainResult",
    "describe_machine",
    "heldout_reconstruction_mse",
    "model_card",
    "recipe",
    "train",
]
