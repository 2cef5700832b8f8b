"""Training callbacks: a rich progress bar, and a wall-clock budget."""

import time

import keras
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class TrainingProgress(keras.callbacks.Callback):
    """Shows training progress with rich (to stderr), at the end of each epoch.

    `dcign train`'s epochs are short chunks of steps (`EPOCH_STEPS` at most). The run's
    callbacks have no per-step hooks: with one, Keras turns every step's logs into Python
    numbers, which waits for the step to finish and keeps the backend from dispatching the
    next one (about a third of the images/s on TensorFlow, `benchmarks/loop_overhead.py`).

    Args:
        total_steps: the run's last step.
        start_step: the step training (re)starts from.
        batch_size: images per step, for the images/s column.
    """

    def __init__(self, total_steps, start_step=0, batch_size=20):
        super().__init__()
        self.total_steps = total_steps
        self.start_step = start_step
        self.batch_size = batch_size
        self._progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
            transient=False,
            console=Console(stderr=True),  # stdout carries only the command's results
        )

    def on_train_begin(self, logs=None):
        self._progress.start()
        self._task = self._progress.add_task(
            "train", total=self.total_steps, completed=self.start_step, stats=""
        )
        self._began = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        step = (epoch + 1) * self.params["steps"]
        rate = (step - self.start_step) * self.batch_size / max(time.time() - self._began, 1e-9)
        stats = (
            f"loss {float(logs.get('loss', float('nan'))):.1f}  "
            f"kl {float(logs.get('kl', float('nan'))):.1f}  {rate:.0f} img/s"
        )
        self._progress.update(self._task, completed=step, stats=stats)

    def on_train_end(self, logs=None):
        self._progress.stop()


class StopAfter(keras.callbacks.Callback):
    """Asks `fit` to stop at the first epoch end after a wall-clock budget (seconds) is spent."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.deadline = time.time() + self.seconds

    def on_epoch_end(self, epoch, logs=None):
        if time.time() > self.deadline:
            self.model.stop_training = True
