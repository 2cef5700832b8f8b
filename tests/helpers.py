"""Plain test helpers (importable from every test folder: `from helpers import ...`)."""

import os
import subprocess
import sys

import keras
import numpy as np

from keras_dcign import DCIGN, GraphicsCode

BACKEND = keras.backend.backend()
ALL_BACKENDS = ("tensorflow", "jax", "torch")


def tiny_code():
    return GraphicsCode.paper(intrinsic=5)


def tiny_model(**kwargs):
    """A DC-IGN small enough to train in a second on a CPU."""
    options = dict(image_size=32, feature_maps=8, code=tiny_code(), seed=1)
    options.update(kwargs)
    return DCIGN(**options)


RANGES = {"azimuth": (-90, 90), "elevation": (-25, 25), "light": (-80, 80)}


def tiny_calibrated_model(**kwargs):
    """`tiny_model` with a calibration: each factor's unit is 0.03 per degree."""
    from keras_dcign import Calibration

    model = tiny_model(**kwargs)
    model.calibration = Calibration(
        {
            f: {"group": f, "unit": 0, "slope": 0.03, "intercept": 0.0, "range": list(r), "r2": 1.0}
            for f, r in RANGES.items()
        }
    )
    return model


def blob_images(n=20, size=32, seed=0, vary="all"):
    """Images of a soft blob: position, size and brightness play pose, shape and light."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    images = []
    base = rng.uniform(0.3, 0.7, size=4)
    for _ in range(n):
        cx, cy, radius, light = base
        if vary in ("all", "azimuth"):
            cx = rng.uniform(0.25, 0.75)
        if vary in ("all", "elevation"):
            cy = rng.uniform(0.25, 0.75)
        if vary in ("all", "intrinsic"):
            radius = rng.uniform(0.3, 0.7)
        if vary in ("all", "light"):
            light = rng.uniform(0.3, 1.0)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.1 + 0.15 * radius) ** 2))
        images.append(light * blob)
    return np.clip(np.stack(images)[..., None], 0, 1).astype("float32")


def value_and_grad(fn, x):
    """(fn(x), d fn / d x) on the active backend, for a scalar-valued fn."""
    x = np.asarray(x, dtype="float32")
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        return np.asarray(y), np.asarray(tape.gradient(y, x))
    if BACKEND == "jax":
        import jax

        y, g = jax.value_and_grad(fn)(x)
        return np.asarray(y), np.asarray(g)
    import torch

    x = torch.tensor(x, requires_grad=True)
    y = fn(x)
    y.backward()
    return y.detach().cpu().numpy(), x.grad.cpu().numpy()


def run_python(code, backend, env=None, timeout=300):
    """Runs a Python snippet in a fresh interpreter with another Keras backend."""
    environ = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    environ.update(env or {})
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=os.path.dirname(os.path.abspath(__file__)),
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
