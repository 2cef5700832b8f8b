"""Weights written on one backend load on the others and give the same outputs."""

import json

import keras
import numpy as np
import pytest
from helpers import ALL_BACKENDS, BACKEND, blob_images, run_python, tiny_model

READER = """
import json, sys, numpy as np, keras
from keras_dcign import DCIGN
folder = sys.argv[1] if len(sys.argv) > 1 else %r
model = DCIGN.from_config(json.load(open(folder + "/config.json")))
model.load_weights(folder + "/model.weights.h5")
data = np.load(folder + "/io.npz")
out = keras.ops.convert_to_numpy(model(data["images"]))
mean = keras.ops.convert_to_numpy(model.encode(data["images"]).mean)
print(float(np.abs(out - data["out"]).max()), float(np.abs(mean - data["mean"]).max()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("other", [b for b in ALL_BACKENDS if b != BACKEND])
def test_weights_load_on_another_backend(other, tmp_path):
    keras.utils.set_random_seed(5)
    model = tiny_model()
    model.compile()
    images = blob_images(6, seed=2)
    model.fit(images, model.group_ids("light", 6), epochs=2, verbose=0)
    (tmp_path / "config.json").write_text(json.dumps(model.get_config()))
    model.save_weights(tmp_path / "model.weights.h5")
    out = keras.ops.convert_to_numpy(model(images))
    mean = keras.ops.convert_to_numpy(model.encode(images).mean)
    np.savez(tmp_path / "io.npz", images=images, out=out, mean=mean)

    image_diff, mean_diff = map(float, run_python(READER % str(tmp_path), other).split())
    assert image_diff <= 1e-5
    assert mean_diff <= 1e-5
