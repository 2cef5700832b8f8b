"""Datasets for DC-IGN training: `faces`, rendered faces with exact ground truth.

`from keras_dcign.datasets import faces` needs only numpy; Keras is imported
only by `faces.dataset` (a `keras.utils.PyDataset`).
"""

from keras_dcign.datasets import faces

__all__ = ["faces"]
