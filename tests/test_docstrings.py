"""The docstring examples of every keras_dcign module run, on the backend KERAS_BACKEND names.

One test per docstring that holds examples. Their globals are `np` and `keras_dcign`; an
example imports anything else it uses. Each runs in its own temporary folder, which is also
`tempfile`'s folder and `KERAS_HOME` (the download cache), so examples leave nothing behind.
"""

import copy
import doctest
import importlib
import pkgutil
import tempfile

import keras
import numpy as np
import pytest

import keras_dcign

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# What the docstrings held when these numbers were set: a collector that finds fewer is broken.
MIN_DOCSTRINGS = 23
MIN_EXAMPLES = 133
# Docstrings whose examples build, train or evaluate a network: over ~3 s on some backend
# (JAX compiles while it builds a model, TensorFlow while it trains one).
SLOW = {
    "keras_dcign.evaluation.engine.evaluate",
    "keras_dcign.evaluation.probes.shape_texture_swap",
    "keras_dcign.inference.fit_scene",
    "keras_dcign.model.DCIGN",
    "keras_dcign.model.DCIGN.rerender",
    "keras_dcign.presets.from_preset",
}
# Each trainer imports its backend's framework; it is collected under that backend only.
BACKEND_MODULES = {
    "keras_dcign.trainers.jax_trainer": "jax",
    "keras_dcign.trainers.tensorflow_trainer": "tensorflow",
    "keras_dcign.trainers.torch_trainer": "torch",
}


def _raise(name):
    raise ImportError(f"cannot import {name} to collect its docstring examples")


def module_names():
    """keras_dcign, every module below it, and the zoo (installed as keras_dcign.zoo)."""
    names = {"keras_dcign", "keras_dcign.zoo"}
    names.update(
        info.name
        for info in pkgutil.walk_packages(keras_dcign.__path__, "keras_dcign.", onerror=_raise)
    )
    backend = keras.backend.backend()
    return sorted(name for name in names if BACKEND_MODULES.get(name, backend) == backend)


def collect():
    """`{name: doctest.DocTest}` for every docstring with examples."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = {}
    for module_name in module_names():
        module = importlib.import_module(module_name)
        for test in finder.find(module, module_name, globs={}):
            if test.examples:
                tests[test.name] = test
    return tests


DOCTESTS = collect()


def test_collector_finds_every_example():
    assert len(DOCTESTS) >= MIN_DOCSTRINGS, sorted(DOCTESTS)
    assert sum(len(test.examples) for test in DOCTESTS.values()) >= MIN_EXAMPLES
    assert SLOW <= set(DOCTESTS), f"SLOW names docstrings without examples: {SLOW - set(DOCTESTS)}"


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in DOCTESTS],
)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    test = copy.copy(DOCTESTS[name])
    test.globs = {"np": np, "keras_dcign": keras_dcign}
    report = []
    result = doctest.DocTestRunner(optionflags=OPTIONS).run(test, out=report.append)
    assert result.failed == 0, "".join(report)
