"""keras-dcign: the Deep Convolutional Inverse Graphics Network for Keras 3.

Importing the package registers its serializable classes with Keras, so a
model saved with `model.save("m.keras")` loads with
`keras.saving.load_model("m.keras")` after `import keras_dcign`.
(The `dcign` command is a separate package, `keras_dcign_cli`, that imports
this one only when a command needs a model.)
"""

from keras_dcign.version import __version__  # noqa: I001  (first: no Keras needed)
from keras_dcign.calibration import Calibration
from keras_dcign.evaluation import evaluate
from keras_dcign.graphics_code import GraphicsCode
from keras_dcign.layers import GraphicsCodeClamp
from keras_dcign.model import DCIGN, plan_padding
from keras_dcign.posterior import DiagonalGaussian
from keras_dcign.presets import from_preset, list_presets, save_to_preset
from keras_dcign.torch7 import import_torch7
from keras_dcign.training.schedule import DecayOverLast
from keras_dcign.verification import identity_embedding

__all__ = [
    "Calibration",
    "DCIGN",
    "DecayOverLast",
    "DiagonalGaussian",
    "GraphicsCode",
    "GraphicsCodeClamp",
    "__version__",
    "evaluate",
    "from_preset",
    "identity_embedding",
    "import_torch7",
    "list_presets",
    "plan_padding",
    "save_to_preset",
]
