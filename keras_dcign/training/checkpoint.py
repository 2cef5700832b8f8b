"""Atomic training checkpoints: weights, optimizer state and step, resumable after a kill.

Each checkpoint is written into a temporary folder that is renamed into
place (`files.atomic_folder`), then the `latest` pointer is replaced atomically; a run killed at any
moment leaves the previous checkpoint intact. Resuming takes the newest
intact checkpoint, whatever `latest` says, and removes what a killed save
left half-written.
"""

import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np

from keras_dcign.files import atomic_folder, atomic_write, read_json_object

LATEST = "latest"
STATE_FILE = "state.json"
WEIGHTS_FILE = "model.weights.h5"
OPTIMIZER_FILE = "optimizer.npz"


def save_checkpoint(model, run_dir, step, keep=2):
    """Writes `run_dir/checkpoints/step-<step>` and points `latest` at it."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    remove_partial_checkpoints(run_dir)
    # Written beside its final name and renamed into place (a re-saved step is replaced,
    # also one saved before checkpoints were marked: the run folder is ours).
    with atomic_folder(final, "checkpoint", True, legacy=lambda f: True) as staging:
        model.save_weights(staging / WEIGHTS_FILE)
        store = {}
        model.optimizer.save_own_variables(store)
        arrays = {str(k): np.asarray(v) for k, v in store.items()}
        atomic_write(staging / OPTIMIZER_FILE, lambda handle: np.savez(handle, **arrays))
        atomic_write(staging / STATE_FILE, f'{{"step": {int(step)}}}')
    atomic_write(root / LATEST, final.name)
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def remove_partial_checkpoints(run_dir):
    """Deletes the half-written `.step-N...` folders and files a killed save left in a run."""
    for partial in (Path(run_dir) / "checkpoints").glob(".step-*"):
        shutil.rmtree(partial, ignore_errors=True)
    for partial in (Path(run_dir) / "checkpoints").glob(f".{LATEST}.*"):
        partial.unlink(missing_ok=True)


def latest_checkpoint(run_dir):
    """The newest intact checkpoint folder of a run, or None.

    `latest` names the last one written, but a folder it names may have been
    deleted or damaged since; then the newest intact earlier one is taken.
    """
    root = Path(run_dir) / "checkpoints"
    candidates = sorted(root.glob("step-*"), reverse=True)
    return next((folder for folder in candidates if checkpoint_problem(folder) is None), None)


def resume_point(run_dir):
    """The checkpoint a resumed run continues from: the newest intact one.

    Raises:
        ValueError: the run folder has no checkpoint, or none is intact (the
            message names the newest and what is wrong with it).
    """
    remove_partial_checkpoints(run_dir)
    found = latest_checkpoint(run_dir)
    if found is not None:
        return found
    damaged = sorted((Path(run_dir) / "checkpoints").glob("step-*"), reverse=True)
    if not damaged:
        raise ValueError(
            f"Cannot resume: {run_dir} holds no checkpoint; leave out --resume to start a new run."
        )
    raise ValueError(
        f"Cannot resume: no intact checkpoint in {run_dir}; the newest, {damaged[0].name}, "
        f"is damaged ({checkpoint_problem(damaged[0])})."
    )


def checkpoint_problem(folder):
    """What makes a checkpoint folder unusable, or None when it is intact."""
    import h5py

    weights = Path(folder) / WEIGHTS_FILE
    if not (weights.is_file() and h5py.is_hdf5(weights)):
        return f"{WEIGHTS_FILE} is missing or not an HDF5 file"
    if not zipfile.is_zipfile(Path(folder) / OPTIMIZER_FILE):
        return f"{OPTIMIZER_FILE} is missing or not a NumPy .npz archive"
    try:
        checkpoint_step(folder)
    except ValueError as error:
        return str(error)
    return None


def checkpoint_step(folder):
    """The step a checkpoint folder was written at (from its validated `state.json`)."""
    path = Path(folder) / STATE_FILE
    step = read_json_object(path, required=("step",), what="checkpoint state")["step"]
    if not isinstance(step, int) or step < 0:
        raise ValueError(f"Checkpoint state {path} has step {step!r}; expected an integer >= 0.")
    return step


def restore_checkpoint(model, folder):
    """Loads weights and optimizer state into a compiled model; returns the step."""
    folder = Path(folder)
    problem = checkpoint_problem(folder)
    if problem:
        raise ValueError(f"Checkpoint {folder} cannot be restored: {problem}.")
    try:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(folder / WEIGHTS_FILE)
        with np.load(folder / OPTIMIZER_FILE, allow_pickle=False) as data:
            store = {key: data[key] for key in data.files}
        model.optimizer.load_own_variables(store)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"Checkpoint {folder} cannot be restored: {reason}") from None
    return checkpoint_step(folder)


class CheckpointEvery(keras.callbacks.Callback):
    """Saves a checkpoint every `every` optimizer steps and at the end of training.

    It looks at the step count at epoch ends (`dcign train`'s epochs divide `every`), so
    the training steps run without a per-step hook.

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

    def on_epoch_end(self, epoch, logs=None):
        self.step = (epoch + 1) * self.params["steps"]
        if self.step % self.every == 0:
            save_checkpoint(self.model, self.run_dir, self.step)

    def on_train_end(self, logs=None):
        if self.step % self.every:
            save_checkpoint(self.model, self.run_dir, self.step)
