"""`FacesSequence`: DC-IGN batches as a `keras.utils.PyDataset` for `model.fit`.

Kept apart from `faces` because it imports Keras; `faces` itself needs only numpy.
"""

import keras
import numpy as np

from keras_dcign.datasets import _streams
from keras_dcign.graphics_code import GraphicsCode


class FacesSequence(keras.utils.PyDataset):
    """Rendered DC-IGN batches, the same for a given index in every worker.

    Batch `i` picks its kind (AZ, EL, LIGHT, SHAPE in the chosen ratio) and
    its factors from generators seeded with `(seed, epoch, i)`, so workers
    and processes agree. Each item is `(images, group_ids)`.

    Args:
        steps_per_epoch: batches per epoch.
        batch_size: pictures per batch.
        image_size: picture side in pixels.
        split: `"train"` or `"test"` people.
        seed: an integer >= 0.
        shape_bias: False (1:1:1:1), True (1:1:1:16) or SHAPE's weight.
        kinds: batch kinds to mix (default the kinds that train `code`: AZ,
            EL, LIGHT, SHAPE for the paper's).
        fresh_each_epoch: draw new batches every epoch (for training); False
            repeats the same ones (for validation).
        code: the `GraphicsCode` (or layout name) whose group ids the items
            carry; None is the paper's.
        **kwargs: `azimuth_range`, `elevation_range`, `light_range`,
            `light_elevation` (see `faces.batches`), and `workers`,
            `use_multiprocessing`, `max_queue_size` for `PyDataset`.

    Example:

    >>> from keras_dcign.datasets.faces import FacesSequence
    >>> data = FacesSequence(steps_per_epoch=10, image_size=32)
    >>> images, group_ids = data[0]
    >>> images.shape, group_ids.dtype
    ((20, 32, 32, 1), dtype('int32'))
    """

    _RANGES = ("azimuth_range", "elevation_range", "light_range", "light_elevation")

    def __init__(
        self,
        steps_per_epoch=100,
        batch_size=20,
        image_size=64,
        split="train",
        seed=0,
        shape_bias=False,
        kinds=None,
        fresh_each_epoch=True,
        code=None,
        **kwargs,
    ):
        ranges = {k: kwargs.pop(k) for k in self._RANGES if k in kwargs}
        super().__init__(**kwargs)
        self.steps_per_epoch = _streams.check_count("steps_per_epoch", steps_per_epoch)
        self.spec = _streams.StreamSpec(batch_size, image_size, split, seed, **ranges)
        self.code = GraphicsCode.of(code)
        if kinds is None:
            kinds = _streams.training_kinds(self.code)
        self.kinds, self.probabilities = _streams.kind_weights(shape_bias, kinds)
        self.fresh_each_epoch = bool(fresh_each_epoch)
        self.epoch = 0

    def __len__(self):
        return self.steps_per_epoch

    def on_epoch_end(self):
        if self.fresh_each_epoch:
            self.epoch += 1

    def _stream_index(self, index):
        return self.epoch * self.steps_per_epoch + index

    def kind(self, index):
        """The batch kind of item `index` in the current epoch."""
        index = self._stream_index(index)
        return self.spec.mixed_kind(index, self.kinds, self.probabilities)

    def __getitem__(self, index):
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(f"batch index {index} is outside [0, {self.steps_per_epoch}).")
        images, group, _ = self.spec.batch(self.kind(index), self._stream_index(index))
        group_ids = np.full(len(images), _streams.group_id(group, self.code), np.int32)
        return images, group_ids
