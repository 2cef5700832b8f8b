"""Training callbacks: a rich progress bar, and a wall-clock budget."""

import time

import keras
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class TrainingProgress(keras.callbacks.Callback):
    """Shows training progress with rich (to stderr).

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
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        logs = logs or {}
        rate = self._steps * self.batch_size / max(time.time() - self._began, 1e-9)
        stats = (
            f"loss {float(logs.get('loss', float('nan'))):.1f}  "
            f"kl {float(logs.get('kl', float('nan'))):.1f}  {rate:.0f} img/s"
        )
        self._progress.update(self._task, advance=1, stats=stats)

    def on_train_end(self, logs=None):
        self._progress.stop()


class StopAfter(keras.callbacks.Callback):
    """Asks `fit` to stop once a wall-clock budget (seconds) is spent."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.deadline = time.time() + self.seconds

    def on_train_batch_end(self, batch, logs=None):
        if time.time() > self.deadline:
            self.model.stop_training = True
