import hashlib
import tarfile

import keras
import numpy as np
import pytest
from helpers import blob_images, tiny_model

import keras_dcign
from keras_dcign import Calibration, from_preset

CALIBRATION = Calibration(
    {
        "light": {
            "group": "light",
            "unit": 0,
            "slope": 0.02,
            "intercept": 0.1,
            "range": [-80, 80],
            "r2": 0.97,
        }
    }
)


def _preset(tmp_path, **kwargs):
    model = tiny_model()
    model.calibration = CALIBRATION
    folder = model.save_to_preset(
        tmp_path / "preset", metadata={"steps": 7}, card="# Tiny\n", **kwargs
    )
    return model, folder


@pytest.mark.parametrize("float16", [False, True])
def test_round_trip(tmp_path, float16):
    model, folder = _preset(tmp_path, float16=float16)
    assert sorted(p.name for p in folder.iterdir()) == [
        ".dcign",
        "README.md",
        "calibration.json",
        "config.json",
        "metadata.json",
        "model.weights.h5",
    ]
    restored = from_preset(folder)
    assert restored.calibration.factors == CALIBRATION.factors
    images = blob_images(3)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(images)),
        keras.ops.convert_to_numpy(model(images)),
        atol=2e-3 if float16 else 1e-6,
    )
    assert not list(tmp_path.glob(".preset.*")), "staging folder left behind"


def test_overrides_and_metadata(tmp_path):
    _, folder = _preset(tmp_path)
    restored = from_preset(folder, invariance_strength=0.5)
    assert restored.invariance_strength == 0.5
    import json

    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["steps"] == 7 and metadata["parameter_count"] == restored.count_params()


def test_corrupt_weights(tmp_path):
    _, folder = _preset(tmp_path)
    (folder / "model.weights.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError, match="Corrupt weights file .*model.weights.h5"):
        from_preset(folder)


@pytest.mark.backend_independent
def test_unknown_and_incomplete_presets(tmp_path):
    with pytest.raises(ValueError, match="Unknown preset 'nope'; expected one of"):
        from_preset("nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is not a preset folder: it has no config.json"):
        from_preset(tmp_path / "empty")
    with pytest.raises(ValueError, match="has no checksum"):
        from_preset("https://example.com/preset.tar.gz")


@pytest.mark.backend_independent
def test_hub_sources_need_their_clients():
    for scheme, module in (("hf://", "huggingface_hub"), ("kaggle://", "kagglehub")):
        try:
            __import__(module)
        except ImportError:
            expected = rf"needs {module}: pip install 'keras-dcign\[hub\]'"
            with pytest.raises(ImportError, match=expected):
                from_preset(f"{scheme}owner/model")


def test_preset_archive_over_http(tmp_path, served, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    model, folder = _preset(tmp_path)
    root, base = served
    with tarfile.open(root / "tiny.tar.gz", "w:gz") as archive:
        archive.add(folder, arcname="tiny")
    digest = hashlib.sha256((root / "tiny.tar.gz").read_bytes()).hexdigest()

    bad = f"{base}/tiny.tar.gz#sha256={'0' * 64}"
    with pytest.raises(OSError, match="sha256 mismatch"):
        from_preset(bad, progress=False)
    assert not list((tmp_path / "keras_home").rglob("config.json"))

    restored = from_preset(f"{base}/tiny.tar.gz#sha256={digest}", progress=False)
    images = blob_images(2)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(images)),
        keras.ops.convert_to_numpy(model(images)),
        atol=1e-6,
    )
    cached = list((tmp_path / "keras_home" / "keras_dcign").rglob("config.json"))
    assert len(cached) == 1
    (root / "tiny.tar.gz").unlink()  # a second load is served from the cache
    assert from_preset(f"{base}/tiny.tar.gz#sha256={digest}", progress=False).count_params()


@pytest.mark.backend_independent
def test_registry_lists_presets_with_their_facts():
    for name, entry in keras_dcign.list_presets().items():
        assert {"description", "image_size", "parameters", "source"} <= set(entry), name


@pytest.mark.slow
def test_preset_of_a_trained_model_holds_no_optimizer_state(tmp_path):
    import h5py

    model = tiny_model()
    model.compile()
    model.fit(blob_images(4), model.group_ids("light", 4), epochs=1, verbose=0)
    folder = model.save_to_preset(tmp_path / "p", float16=True)
    with h5py.File(folder / "model.weights.h5") as handle:
        assert "optimizer" not in handle
        dtypes = set()
        handle.visititems(lambda n, o: dtypes.add(str(o.dtype)) if hasattr(o, "dtype") else None)
    assert "float32" not in dtypes
    restored = from_preset(folder)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(blob_images(2))),
        keras.ops.convert_to_numpy(model(blob_images(2))),
        atol=2e-3,
    )
