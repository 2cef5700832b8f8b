"""Datasets for DC-IGN training: `faces`, rendered faces with exact ground truth.

The generator itself computes with numpy alone (Keras is loaded with the package, which
registers its model classes); `faces.dataset` wraps it in a `keras.utils.PyDataset`.
"""

from keras_dcign.datasets import faces

__all__ = ["faces"]
