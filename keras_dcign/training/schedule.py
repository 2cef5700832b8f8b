"""The learning rate over a run: constant, then a cosine decay over the run's last part."""

import math

import keras
from keras import ops

# Where the decay ends, as a fraction of the recipe's learning rate.
FINAL_FRACTION = 0.05


@keras.saving.register_keras_serializable(package="keras_dcign")
class DecayOverLast(keras.optimizers.schedules.LearningRateSchedule):
    """`learning_rate` until the last `fraction` of `total_steps`, then a cosine decay to
    `FINAL_FRACTION` of it at `total_steps` (and held there after).

    The step is the optimizer's own iteration count, which checkpoints keep, so a resumed run
    continues on the same curve.

    Args:
        learning_rate: the constant rate of the run's first part.
        total_steps: the run's length in optimizer steps.
        fraction: the part of the run that decays, in [0, 1] (0: constant throughout).

    Example:

    >>> from keras_dcign import DecayOverLast
    >>> schedule = DecayOverLast(1e-3, total_steps=100, fraction=0.5)
    >>> [round(float(schedule(step)), 6) for step in (0, 50, 75, 100, 200)]
    [0.001, 0.001, 0.000525, 5e-05, 5e-05]
    """

    def __init__(self, learning_rate, total_steps, fraction):
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.fraction = float(fraction)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        length = max(self.total_steps * self.fraction, 1.0)
        start = self.total_steps - length
        progress = ops.clip((step - start) / length, 0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        return self.learning_rate * (FINAL_FRACTION + (1.0 - FINAL_FRACTION) * cosine)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "fraction": self.fraction,
        }
