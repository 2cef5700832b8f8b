"""keras-dcign: the Deep Convolutional Inverse Graphics Network for Keras 3.

Names are imported lazily so that `import keras_dcign` (and the `dcign`
command's `--help`) stays fast; Keras is loaded on first use of a model.
"""

import importlib

from keras_dcign.version import __version__

_LAZY = {
    "GraphicsCode": "keras_dcign.graphics_code",
    "GraphicsCodeClamp": "keras_dcign.layers",
    "DiagonalGaussian": "keras_dcign.posterior",
    "DCIGN": "keras_dcign.model",
    "plan_padding": "keras_dcign.model",
    "Calibration": "keras_dcign.calibration",
    "from_preset": "keras_dcign.presets",
    "save_to_preset": "keras_dcign.presets",
    "list_presets": "keras_dcign.presets",
    "import_torch7": "keras_dcign.torch7",
    "evaluate": "keras_dcign.evaluation",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_dcign' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
