"""keras-dcign: the Deep Convolutional Inverse Graphics Network for Keras 3.

Importing the package registers its serializable classes with Keras, so a
model saved with `model.save("m.keras")` loads with
`keras.saving.load_model("m.keras")` after `import keras_dcign`.

The names below load on first use (PEP 562), so the parts that need no Keras
(`keras_dcign.training.recipes`, `keras_dcign.graphics_code`) import without
it. The registration happens as soon as Keras is loaded: at once when it
already is, otherwise when Keras finishes importing.
(The `dcign` command is a separate package, `keras_dcign_cli`, that imports
this one only when a command needs a model.)
"""

import importlib
import importlib.abc
import importlib.util
import sys

from keras_dcign.version import __version__ as __version__

# Each public name and the module that defines it.
_EXPORTS = {
    "Calibration": "keras_dcign.calibration",
    "DCIGN": "keras_dcign.model",
    "DecayOverLast": "keras_dcign.training.schedule",
    "DiagonalGaussian": "keras_dcign.posterior",
    "GraphicsCode": "keras_dcign.graphics_code",
    "GraphicsCodeClamp": "keras_dcign.layers",
    "evaluate": "keras_dcign.evaluation",
    "from_preset": "keras_dcign.presets",
    "identity_embedding": "keras_dcign.verification",
    "import_torch7": "keras_dcign.torch7",
    "list_presets": "keras_dcign.presets",
    "plan_padding": "keras_dcign.stacks",
    "save_to_preset": "keras_dcign.presets",
}
# The modules whose classes Keras deserializes by their registered names.
_SERIALIZABLE = ("keras_dcign.layers", "keras_dcign.training.schedule", "keras_dcign.model")

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'keras_dcign' has no attribute {name!r}")
    register()
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


def register():
    """Registers the package's serializable classes with Keras (imports Keras)."""
    _RegisterWhenKerasLoads.remove()
    for module in _SERIALIZABLE:
        importlib.import_module(module)


class _RegisterWhenKerasLoads(importlib.abc.MetaPathFinder):
    """Registers the package's classes right after a later `import keras` completes."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        self.remove()
        spec = importlib.util.find_spec("keras")
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            # A package module that is importing Keras itself finishes first: it loads
            # what it needs, and the registration then waits for its first use.
            if not any(
                getattr(getattr(m, "__spec__", None), "_initializing", False)
                for key, m in list(sys.modules.items())
                if key.startswith("keras_dcign.")
            ):
                register()

        loader.exec_module = exec_then_register
        return spec

    @classmethod
    def remove(cls):
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, cls)]


if "keras" in sys.modules:
    register()
else:
    sys.meta_path.insert(0, _RegisterWhenKerasLoads())
