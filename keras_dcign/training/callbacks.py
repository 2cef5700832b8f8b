"""Training callbacks: a rich progress bar, and a wall-clock budget."""

import time

import keras
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class TrainingProgress(keras.callbacks.Callback):
    """Shows training progress with rich (to stderr).

    The bar and its numbers are updated at most every `every` seconds: reading the loss
    waits for the step to finish, and doing that after every step would stop the backend
    from dispatching the next step while this one runs.

    Args:
        total_steps: the run's last step.
        start_step: the step training (re)starts from.
        batch_size: images per step, for the images/s column.
        every: seconds between updates.
    """

    def __init__(self, total_steps, start_step=0, batch_size=20, every=0.5):
        super().__init__()
        self.total_steps = total_steps
        self.start_step = start_step
        self.batch_size = batch_size
        self.every = every
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
        self._began = self._shown = time.time()
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        now = time.time()
        if now - self._shown >= self.every:
            self._show(logs, now)

    def on_train_end(self, logs=None):
        self._show(logs, time.time())
        self._progress.stop()

    def _show(self, logs, now):
        self._shown = now
        logs = logs or {}
        rate = self._steps * self.batch_size / max(now - self._began, 1e-9)
        stats = (
            f"loss {float(logs.get('loss', float('nan'))):.1f}  "
            f"kl {float(logs.get('kl', float('nan'))):.1f}  {rate:.0f} img/s"
        )
        self._progress.update(self._task, completed=self.start_step + self._steps, stats=stats)


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
