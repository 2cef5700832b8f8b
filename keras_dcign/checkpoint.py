"""Atomic training checkpoints: weights, optimizer state and step, resumable after a kill.

Each checkpoint is written into a temporary folder that is renamed into
place, then the `latest` pointer is replaced atomically; a run killed at any
moment leaves the previous checkpoint intact.
"""

import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np

LATEST = "latest"


def save_checkpoint(model, run_dir, step, keep=2):
    """Writes `run_dir/checkpoints/step-<step>` and points `latest` at it."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    staging = root / f".step-{step:08d}.tmp"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    model.save_weights(staging / "model.weights.h5")
    store = {}
    model.optimizer.save_own_variables(store)
    np.savez(staging / "optimizer.npz", **{str(k): np.asarray(v) for k, v in store.items()})
    (staging / "state.json").write_text(json.dumps({"step": int(step)}))
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(final.name)
    os.replace(pointer, root / LATEST)
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir):
    """The newest complete checkpoint folder of a run, or None."""
    pointer = Path(run_dir) / "checkpoints" / LATEST
    if not pointer.exists():
        return None
    folder = pointer.parent / pointer.read_text().strip()
    return folder if (folder / "state.json").exists() else None


def checkpoint_step(folder):
    """The step a checkpoint folder was written at."""
    return int(json.loads((Path(folder) / "state.json").read_text())["step"])


def restore_checkpoint(model, folder):
    """Loads weights and optimizer state into a compiled model; returns the step."""
    folder = Path(folder)
    try:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(folder / "model.weights.h5")
        with np.load(folder / "optimizer.npz") as data:
            store = {key: data[key] for key in data.files}
        model.optimizer.load_own_variables(store)
        return int(json.loads((folder / "state.json").read_text())["step"])
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"Checkpoint {folder} cannot be restored: {error}") from error


class CheckpointEvery(keras.callbacks.Callback):
    """Saves a checkpoint every `every` optimizer steps and at the end of training.

    Args:
        run_dir: the run folder (checkpoints go to `run_dir/checkpoints`).
        every: steps between checkpoints.
        start_step: the step training (re)starts from.
    """

    def __init__(self, run_dir, every, start_step=0):
        super().__init__()
        self.run_dir = run_dir
        self.every = int(every)
        self.step = int(start_step)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every == 0:
            save_checkpoint(self.model, self.run_dir, self.step)

    def on_train_end(self, logs=None):
        if self.step % self.every:
            save_checkpoint(self.model, self.run_dir, self.step)
