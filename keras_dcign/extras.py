"""Optional dependencies: one `require` that imports one, or says which extra installs it.

Each optional package belongs to one extra of `pyproject.toml`:

>>> from keras_dcign.extras import EXTRAS
>>> EXTRAS["cv2"]
('opencv-python-headless', 'crop')
"""

import importlib

# Importable module -> (distribution on PyPI, the keras-dcign extra that installs it).
EXTRAS = {
    "sklearn": ("scikit-learn", "eval"),
    "scipy": ("scipy", "eval"),
    "skimage": ("scikit-image", "eval"),
    "matplotlib": ("matplotlib", "eval"),
    "tensorflow_probability": ("tensorflow-probability", "tfp"),
    "cv2": ("opencv-python-headless", "crop"),
    "torchfile": ("torchfile", "torch7"),
    "huggingface_hub": ("huggingface_hub", "hub"),
    "kagglehub": ("kagglehub", "hub"),
}


def require(module, what):
    """Imports `module` (a dotted name is fine), or raises an ImportError in one line that
    names `what` needs it and the extra that installs it.

    >>> from keras_dcign.extras import require
    >>> require("numpy.linalg", "this example").__name__
    'numpy.linalg'
    >>> require("cv2_not_installed", "--crop auto")
    Traceback (most recent call last):
    ...
    ImportError: --crop auto needs cv2_not_installed: pip install cv2_not_installed
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        root = module.split(".")[0]
        if root not in EXTRAS:
            raise ImportError(f"{what} needs {root}: pip install {root}") from error
        package, extra = EXTRAS[root]
        raise ImportError(f"{what} needs {package}: pip install 'keras-dcign[{extra}]'") from error
