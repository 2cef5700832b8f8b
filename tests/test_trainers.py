import os

import keras
import numpy as np
import pytest
from helpers import BACKEND, blob_images, run_python, tiny_model

KINDS = ["azimuth", "elevation", "light", "intrinsic", "none"]


def _fit_losses(model, images, groups, epochs=15):
    history = model.fit(images, groups, batch_size=len(images), epochs=epochs, verbose=0)
    return history.history


# One batch kind in the default run, all five with the slow tests.
@pytest.mark.parametrize(
    "group", [k if k == "light" else pytest.param(k, marks=pytest.mark.slow) for k in KINDS]
)
def test_training_lowers_the_loss_for_each_batch_kind(group):
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    images = blob_images(20, vary=group if group != "none" else "all", seed=4)
    history = _fit_losses(model, images, model.group_ids(group, 20))
    loss = history["loss"]
    assert np.mean(loss[-3:]) < 0.97 * np.mean(loss[:3]), loss
    for key in ["reconstruction", "kl", "kl_azimuth", "kl_elevation", "kl_light", "kl_intrinsic"]:
        assert np.isfinite(history[key]).all(), key
    terms = sum(history[f"kl_{g}"][-1] for g in model.code.names)
    assert terms == pytest.approx(history["kl"][-1], rel=1e-4)


def _objective_value(group, **kwargs):
    keras.utils.set_random_seed(0)
    model = tiny_model(**kwargs)
    images = blob_images(8, seed=1)
    groups = None if group is None else model.group_ids(group, 8)
    return float(keras.ops.convert_to_numpy(model.objective(images, groups)[0]))


def test_entangled_baseline_ignores_groups():
    plain = _objective_value(None, monovariant=False)
    assert _objective_value("light", monovariant=False) == pytest.approx(plain, rel=1e-6)
    assert _objective_value("none", monovariant=True) == pytest.approx(plain, rel=1e-6)


def test_monovariant_clamp_changes_the_objective():
    assert _objective_value("light") != pytest.approx(_objective_value(None), rel=1e-6)


@pytest.mark.slow
def test_train_on_batch_and_evaluate_and_callbacks(tmp_path):
    model = tiny_model(kl_weight=0.5, reconstruction="gaussian")
    model.compile()
    images = blob_images(10)
    logs = model.train_on_batch(images, model.group_ids("azimuth", 10), return_dict=True)
    assert set(logs) >= {"loss", "reconstruction", "kl", "kl_light"}
    backup = tmp_path / "backup"
    model.fit(
        images,
        model.group_ids("light", 10),
        epochs=2,
        verbose=0,
        validation_data=(images, model.group_ids("light", 10)),
        callbacks=[
            keras.callbacks.BackupAndRestore(str(backup)),
            keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        ],
    )
    header = (tmp_path / "log.csv").read_text().splitlines()[0]
    assert "val_kl_light" in header and "reconstruction" in header


@pytest.mark.slow
@pytest.mark.skipif(BACKEND == "torch", reason="Keras' torch jit_compile is torch.compile: slow")
def test_jit_compile():
    model = tiny_model()
    model.compile(jit_compile=True)
    images = blob_images(20, vary="light")
    history = _fit_losses(model, images, model.group_ids("light", 20), epochs=8)
    assert history["loss"][-1] < history["loss"][0]


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(policy):
    if BACKEND == "torch" and not _torch_cuda():
        pytest.skip("torch's CPU convolutions fail in reduced precision (slow_conv2d backward)")
    model = tiny_model(dtype=policy)
    assert model.encoder_layers[0].compute_dtype == policy.split("_")[1]
    assert model.encoder_layers[0].variable_dtype == "float32"
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    images = blob_images(20, vary="elevation")
    # float16 loss scaling skips the first steps while it finds a scale that does not overflow.
    history = _fit_losses(model, images, model.group_ids("elevation", 20), epochs=20)
    assert np.isfinite(history["loss"]).all()
    assert np.mean(history["loss"][-3:]) < history["loss"][0]


def _torch_cuda():
    import torch

    return torch.cuda.is_available()


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution data parallelism is JAX-only")
def test_jax_data_parallel_training():
    out = run_python(
        """
import sys; sys.path.insert(0, %r)
import jax, keras, numpy as np
from helpers import blob_images, tiny_model
assert len(jax.devices()) == 2
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
model = tiny_model()
model.compile()
images = blob_images(20, vary="light")
h = model.fit(images, model.group_ids("light", 20), batch_size=20, epochs=3, verbose=0)
print(h.history["loss"])
print(model.trainable_variables[0].value.sharding)
"""
        % os.path.dirname(__file__),
        "jax",
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )
    losses = eval(out.splitlines()[0])
    assert len(losses) == 3 and np.isfinite(losses).all()
