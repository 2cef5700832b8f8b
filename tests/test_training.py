"""`dcign train` end to end: generated faces, checkpoints, a kill, a resume, a preset."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from keras_dcign.training import recipe

TINY = ["--image-size", "32", "--feature-maps", "8", "--cache-batches", "4", "--batch-size", "8"]


def _dcign(*args, env_home):
    env = dict(os.environ, KERAS_HOME=str(env_home), TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "keras_dcign_cli.main", *map(str, args)]
    # Run outside the source tree so the installed package (with keras_dcign_cli) is imported.
    return subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=env_home.parent,
    )


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_step_count(tmp_path):
    run = tmp_path / "run"
    args = [
        "train",
        "--dataset",
        "faces",
        *TINY,
        "--steps",
        "60",
        "--checkpoint-every",
        "5",
        "--out",
        run,
    ]
    first = _dcign(*args, env_home=tmp_path / "home")
    latest = run / "checkpoints" / "latest"
    deadline = time.time() + 240
    while time.time() < deadline and first.poll() is None:
        if latest.exists() and int(latest.read_text().split("-")[1]) >= 10:
            break
        time.sleep(0.05)
    assert first.poll() is None, first.communicate()[1][-2000:]
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = int(latest.read_text().split("-")[1])
    assert 10 <= killed_at < 60
    assert not (run / "preset").exists()

    again = _dcign(*args, env_home=tmp_path / "home")
    _, err = again.communicate(timeout=600)
    assert again.returncode == 1 and "--resume" in err

    resumed = _dcign(*args, "--resume", env_home=tmp_path / "home")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert "preset written to" in out and "Held-out reconstruction MSE" in out
    # stdout carries the results only; the progress bars go to stderr.
    assert [line.split()[0] for line in out.splitlines()] == ["Resumed", "Held-out"], out
    assert latest.read_text() == "step-00000060"
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == ["latest", "step-00000055", "step-00000060"], checkpoints
    metadata = json.loads((run / "preset" / "metadata.json").read_text())
    assert metadata["steps"] == 60
    assert set(metadata["calibration_r2"]) == {"azimuth", "elevation", "light"}
    assert 0 < metadata["heldout_reconstruction_mse"] < 0.25
    card = (run / "preset" / "README.md").read_text()
    assert "steps: 60 of batch 8" in card and "not on Basel Face Model renders" in card


@pytest.mark.backend_independent
def test_recipe_checks_its_options():
    assert recipe("faces_64", steps=7)["steps"] == 7
    with pytest.raises(ValueError, match="Unknown training config 'faces_128'"):
        recipe("faces_128")
    with pytest.raises(ValueError, match="steps=0 is invalid"):
        recipe("faces_64", steps=0)
    with pytest.raises(ValueError, match="Unknown training option 'colour'"):
        recipe("faces_64", colour=True)


def test_entangled_baseline_is_a_plain_vae_on_mixed_batches(tmp_path, monkeypatch):
    from keras_dcign import from_preset
    from keras_dcign.training import train

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    result = train(
        tmp_path / "run",
        steps=4,
        image_size=32,
        feature_maps=8,
        cache_batches=3,
        batch_size=6,
        checkpoint_every=2,
        progress=False,
        monovariant=False,
    )
    model = from_preset(result.preset_dir)
    assert model.monovariant is False
    metadata = json.loads((result.preset_dir / "metadata.json").read_text())
    assert metadata["recipe"]["monovariant"] is False and metadata["steps"] == 4
    assert "entangled baseline" in (result.preset_dir / "README.md").read_text()
    caches = [p.name for p in (tmp_path / "home" / "keras_dcign" / "datasets").iterdir()]
    assert caches == ["faces-32px-3x6-bias1-seed0-mixed"], caches
    # Every cached batch is MIXED (group None): all factors vary within it.
    from keras_dcign.datasets import faces

    data = faces.load(tmp_path / "home" / "keras_dcign" / "datasets" / caches[0], progress=False)
    assert all(g is None for g in data["group"])


@pytest.mark.slow
def test_resume_keeps_the_runs_own_recipe(tmp_path, monkeypatch):
    from keras_dcign.training import RECIPES, train

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    tiny = dict(image_size=32, feature_maps=8, cache_batches=3, batch_size=6, progress=False)
    run = tmp_path / "run"
    assert RECIPES["faces_64"]["kl_weight"] != 0.75
    train(run, steps=2, checkpoint_every=2, kl_weight=0.75, **tiny)

    with pytest.raises(ValueError, match=r"kl_weight=0\.25 does not match .*kl_weight=0\.75"):
        train(run, resume=True, steps=4, kl_weight=0.25, **tiny)
    with pytest.raises(ValueError, match=r"seed=1 does not match .*seed=0"):
        train(run, resume=True, steps=4, seed=1, **tiny)
    # Without the flag, the run continues with its own KL weight, not the recipe's default.
    result = train(run, resume=True, steps=4, checkpoint_every=2, **tiny)
    metadata = json.loads((result.preset_dir / "metadata.json").read_text())
    assert metadata["steps"] == 4 and metadata["recipe"]["kl_weight"] == 0.75
    assert json.loads((run / "recipe.json").read_text())["steps"] == 4


@pytest.mark.slow
def test_a_run_from_before_the_architecture_setting_resumes_as_the_paper_network(
    tmp_path, monkeypatch
):
    from keras_dcign import from_preset
    from keras_dcign.training import LEGACY_SETTINGS, RECIPES, train

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    tiny = dict(image_size=32, feature_maps=8, cache_batches=3, batch_size=6, progress=False)
    run = tmp_path / "run"
    train(
        run,
        steps=2,
        checkpoint_every=2,
        architecture="paper",
        reconstruction="bernoulli",
        gaussian_scale=0.1,
        **tiny,
    )
    saved = json.loads((run / "recipe.json").read_text())
    for key in LEGACY_SETTINGS:
        del saved[key]
    (run / "recipe.json").write_text(json.dumps(saved))
    assert RECIPES["faces_64"]["architecture"] != "paper"
    result = train(run, resume=True, steps=4, checkpoint_every=2, **tiny)
    model = from_preset(result.preset_dir)
    assert model.architecture == "paper" and model.reconstruction == "bernoulli"


@pytest.mark.backend_independent
def test_pretrain_steps_train_the_first_batches_as_a_plain_vae():
    import numpy as np

    from keras_dcign.training.data import _cycle

    images = np.zeros((5, 2, 4, 4, 1), "uint8")
    groups = np.repeat(np.arange(5, dtype="int32")[:, None] % 3, 2, axis=1)
    first = [g for _, g in (next(s) for s in [_cycle(images, groups, 0, 3)(k) for k in range(6)])]
    assert [int(g[0]) for g in first[:3]] == [-1, -1, -1]
    assert all(int(g[0]) >= 0 for g in first[3:])
    plain = [int(next(_cycle(images, groups, 0)(k))[1][0]) for k in range(6)]
    assert [int(g[0]) for g in first[3:]] == plain[3:]


def _tagged(tag):
    """A batch source whose step k yields `(tag, k)`."""

    def generate(start):
        step = start
        while True:
            yield tag, step
            step += 1

    return generate


@pytest.mark.backend_independent
def test_mixed_pretraining_switches_sources_at_the_pretrain_step():
    from keras_dcign.training.data import _switch_at

    switched = _switch_at(3, _tagged("mixed"), _tagged("mono"))
    got = [b for b, _ in zip(switched(1), range(5))]
    assert got == [("mixed", 1), ("mixed", 2), ("mono", 3), ("mono", 4), ("mono", 5)]
    # A resumed run past the switch reads the monovariant source at its own step.
    assert next(switched(7)) == ("mono", 7)


@pytest.mark.backend_independent
def test_recipe_refuses_unknown_pretrain_data():
    with pytest.raises(ValueError, match="pretrain_data='shapes' is invalid"):
        recipe("faces_64", pretrain_data="shapes")


@pytest.mark.backend_independent
def test_batches_per_step_puts_consecutive_batches_side_by_side(tmp_path, monkeypatch):
    import numpy as np

    from keras_dcign.training.data import batch_source

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    tiny = dict(image_size=32, cache_batches=5, batch_size=4, pretrain_data="monovariant")
    one = batch_source(recipe("faces_64", **tiny, pretrain_steps=2), None, 0, 0, False, 1)
    three = recipe("faces_64", **tiny, pretrain_steps=1, batches_per_step=3)
    side_by_side = batch_source(three, None, 0, 0, False, 1)
    batches = [next(one(k)) for k in range(9)]
    for step in (0, 1, 2):
        images, groups = next(side_by_side(step))
        assert images.shape == (12, 32, 32, 1) and groups.shape == (12,)
        want = batches[3 * step : 3 * step + 3]
        np.testing.assert_array_equal(images, np.concatenate([b[0] for b in want]))
        # The plain-VAE phase counts steps: one step of three batches here.
        if step == 0:
            assert (groups == -1).all()
        else:
            np.testing.assert_array_equal(groups, np.concatenate([b[1] for b in want]))
            assert (groups >= 0).all()


def test_a_run_with_batches_side_by_side_clamps_each_and_counts_its_images(tmp_path, monkeypatch):
    from keras_dcign import from_preset
    from keras_dcign.training import train

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    tiny = dict(image_size=32, feature_maps=8, cache_batches=3, batch_size=6, progress=False)
    result = train(tmp_path / "run", steps=2, checkpoint_every=2, batches_per_step=2, **tiny)
    metadata = json.loads((result.preset_dir / "metadata.json").read_text())
    assert metadata["recipe"]["batches_per_step"] == 2 and metadata["steps"] == 2
    card = (result.preset_dir / "README.md").read_text()
    assert "2 batches of 6 side by side" in card and "images seen: 24" in card
    assert from_preset(result.preset_dir).monovariant_batch_size == 6


@pytest.mark.backend_independent
def test_recipe_refuses_unknown_precision_and_batches_per_step():
    with pytest.raises(ValueError, match="precision='float16' is invalid"):
        recipe("faces_64", precision="float16")
    with pytest.raises(ValueError, match="batches_per_step=0 is invalid"):
        recipe("faces_64", batches_per_step=0)


def test_a_bfloat16_run_trains_in_bfloat16_and_writes_a_float32_preset(tmp_path, monkeypatch):
    from keras_dcign import from_preset
    from keras_dcign.training import train
    from keras_dcign.training.loop import build_model

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    tiny = dict(image_size=32, feature_maps=8, cache_batches=3, batch_size=6)
    trained = build_model(recipe("faces_64", precision="bfloat16", **tiny))
    assert trained.dtype_policy.name == "mixed_bfloat16" and trained.compute_dtype == "bfloat16"
    result = train(
        tmp_path / "run", steps=2, checkpoint_every=2, precision="bfloat16", progress=False, **tiny
    )
    metadata = json.loads((result.preset_dir / "metadata.json").read_text())
    assert metadata["recipe"]["precision"] == "bfloat16"
    model = from_preset(result.preset_dir)
    assert model.dtype_policy.name == "float32" and model.compute_dtype == "float32"


@pytest.mark.backend_independent
def test_plain_fraction_interleaves_plain_batches_the_same_way_after_a_resume():
    from keras_dcign.training.data import _interleave

    mixed = _interleave(0.25, 0, _tagged("plain"), _tagged("mono"))
    run = [b for b, _ in zip(mixed(0), range(6000))]
    plain = [b for b in run if b[0] == "plain"]
    assert 0.2 < len(plain) / len(run) < 0.3
    # Each source goes through its own batches in order, none skipped or repeated.
    assert [step for _, step in plain] == list(range(len(plain)))
    mono = [step for tag, step in run if tag == "mono"]
    assert mono == list(range(len(mono)))
    # A run resumed at any step (across the draw blocks too) continues the same stream.
    for start in (1, 777, 4096, 5000):
        assert [b for b, _ in zip(mixed(start), range(6000 - start))] == run[start:]
    assert [b for b, _ in zip(_interleave(0.0, 0, _tagged("p"), _tagged("m"))(0), range(50))] == [
        ("m", k) for k in range(50)
    ]


@pytest.mark.backend_independent
def test_plain_fraction_and_lr_decay_are_checked():
    with pytest.raises(ValueError, match=r"plain_fraction=1\.5 is invalid; expected a number"):
        recipe("faces_64", plain_fraction=1.5)
    with pytest.raises(ValueError, match=r"lr_decay=-0\.1 is invalid"):
        recipe("faces_64", lr_decay=-0.1)


def test_lr_decay_decays_the_learning_rate_over_the_last_part_of_the_run():
    from keras_dcign.training.loop import build_model

    tiny = dict(image_size=32, feature_maps=8, batch_size=6, learning_rate=1e-3)

    def rates(optimizer, steps):
        optimizer.build([])
        values = []
        for step in steps:
            optimizer.iterations.assign(step)
            values.append(float(optimizer.learning_rate))
        return values

    decayed = build_model(recipe("faces_64", steps=100, lr_decay=0.2, **tiny)).optimizer
    assert rates(decayed, (0, 80, 90, 100, 150)) == pytest.approx(
        [1e-3, 1e-3, 0.525e-3, 5e-5, 5e-5], rel=1e-4
    )
    constant = build_model(recipe("faces_64", steps=100, **tiny)).optimizer
    assert rates(constant, (0, 100)) == pytest.approx([1e-3, 1e-3])


def test_init_from_starts_from_a_presets_weights_and_keeps_its_lineage(tmp_path, monkeypatch):
    import numpy as np

    from keras_dcign import from_preset
    from keras_dcign.training import train

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    tiny = dict(image_size=32, feature_maps=8, cache_batches=3, batch_size=6, progress=False)
    first = train(tmp_path / "a", steps=3, checkpoint_every=3, seed=1, **tiny)
    # A learning rate too small to move a weight: the second run's preset is the first's.
    second = train(
        tmp_path / "b",
        steps=2,
        checkpoint_every=2,
        init_from=str(first.preset_dir),
        learning_rate=1e-30,
        pretrain_steps=0,
        command="dcign train --init-from a",
        **tiny,
    )
    for mine, theirs in zip(
        from_preset(second.preset_dir).get_weights(), from_preset(first.preset_dir).get_weights()
    ):
        np.testing.assert_array_equal(mine, theirs)
    metadata = json.loads((second.preset_dir / "metadata.json").read_text())
    assert [s["images"] for s in metadata["lineage"]] == [18, 12]
    assert metadata["images_seen_in_all"] == 30
    # Every trained preset carries its intrinsic directions for `dcign traverse`.
    directions = json.loads((second.preset_dir / "intrinsic_directions.json").read_text())
    assert len(directions["directions"]) == 8 and directions["split"] == "train"
    assert metadata["recipe"]["init_from"] == str(first.preset_dir)
    card = (second.preset_dir / "README.md").read_text()
    assert "images seen in all, over 2 segments: 30" in card
    assert "2. 12 images: `dcign train --init-from a`" in card
    # The run keeps the lineage it started from: a resume does not re-read the preset, which
    # may have changed since (here: retrained to 99 steps).
    source_metadata = first.preset_dir / "metadata.json"
    source_metadata.write_text(json.dumps(dict(json.loads(source_metadata.read_text()), steps=99)))
    resumed = train(
        tmp_path / "b",
        resume=True,
        steps=3,
        checkpoint_every=1,
        init_from=str(first.preset_dir),
        learning_rate=1e-30,
        pretrain_steps=0,
        **tiny,
    )
    lineage = json.loads((resumed.preset_dir / "metadata.json").read_text())["lineage"]
    assert [s["images"] for s in lineage] == [18, 18]
    # A third run continues the lineage: every segment, in order.
    third = train(
        tmp_path / "c", steps=1, checkpoint_every=1, init_from=str(second.preset_dir), **tiny
    )
    lineage = json.loads((third.preset_dir / "metadata.json").read_text())["lineage"]
    assert [s["images"] for s in lineage] == [18, 18, 6]
    with pytest.raises(ValueError, match=r"its feature_maps is 8, but this run's is 16"):
        wider = dict(tiny, feature_maps=16)
        train(tmp_path / "d", steps=1, init_from=str(first.preset_dir), **wider)
    assert not (tmp_path / "d").exists()


AMX_CPU = (
    "processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16\n"
)
ZEN4_CPU = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"
AVX2_CPU = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma\n"


@pytest.mark.backend_independent
def test_auto_precision_and_compile_mode_follow_the_cpu(tmp_path):
    from keras_dcign.compute import choose_jit_compile, choose_precision, cpu_flags

    (tmp_path / "amx").write_text(AMX_CPU)
    (tmp_path / "zen4").write_text(ZEN4_CPU)
    (tmp_path / "avx2").write_text(AVX2_CPU)
    amx, zen4, avx2 = (cpu_flags(tmp_path / name) for name in ("amx", "zen4", "avx2"))
    assert {"amx_bf16", "avx512f"} <= amx and "amx_bf16" not in zen4 and "avx512f" not in avx2
    assert cpu_flags(tmp_path / "missing") == set()

    def precision(backend, flags, gpu=False):
        return choose_precision("auto", backend, flags, gpu)[0]

    assert precision("tensorflow", amx) == precision("torch", amx) == "bfloat16"
    assert precision("jax", amx) == "float32"  # measured slower in bfloat16 there
    assert precision("tensorflow", zen4) == precision("tensorflow", avx2) == "float32"
    assert precision("tensorflow", amx, gpu=True) == "float32"
    chosen = choose_precision("bfloat16", "jax", avx2)
    assert chosen == ("bfloat16", "set by the recipe or --precision")

    def jit(backend, precision, flags, gpu=False):
        return choose_jit_compile("auto", backend, precision, flags, gpu)[0]

    assert jit("tensorflow", "bfloat16", amx) is False
    assert jit("tensorflow", "float32", zen4) is False
    assert jit("tensorflow", "float32", avx2) is True
    assert jit("tensorflow", "float32", zen4, gpu=True) is True
    assert jit("jax", "float32", avx2) == "auto" and jit("torch", "float32", avx2) is False
    assert choose_jit_compile("on", "torch", "float32", avx2)[0] is True
    with pytest.raises(ValueError, match="jit_compile='xla' is invalid; expected one of"):
        recipe("faces_64", jit_compile="xla")


def test_a_run_on_a_cpu_with_amx_trains_in_bfloat16_and_says_why(tmp_path, monkeypatch):
    import keras

    from keras_dcign import compute
    from keras_dcign.training import train

    (tmp_path / "cpuinfo").write_text(AMX_CPU)
    monkeypatch.setattr(compute, "CPUINFO", str(tmp_path / "cpuinfo"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    tiny = dict(image_size=32, feature_maps=8, cache_batches=3, batch_size=6, progress=False)
    result = train(tmp_path / "run", steps=2, checkpoint_every=2, **tiny)
    metadata = json.loads((result.preset_dir / "metadata.json").read_text())
    backend = keras.backend.backend()
    want = "float32" if backend == "jax" else "bfloat16"
    assert metadata["recipe"]["precision"] == "auto"
    assert metadata["compute"]["precision"] == want
    assert metadata["compute"]["jit_compile"] == ("auto" if backend == "jax" else False)
    card = (result.preset_dir / "README.md").read_text()
    assert f"- computed in {want} (auto: " in card


@pytest.mark.skipif(
    __import__("keras").backend.backend() != "tensorflow", reason="XLA is TensorFlow's choice"
)
@pytest.mark.parametrize("cpu, xla", [(AVX2_CPU, True), (ZEN4_CPU, False), (AMX_CPU, False)])
def test_dcign_compile_auto_chooses_xla_on_tensorflow_by_the_cpu(tmp_path, monkeypatch, cpu, xla):
    from helpers import tiny_model

    from keras_dcign import compute

    (tmp_path / "cpuinfo").write_text(cpu)
    monkeypatch.setattr(compute, "CPUINFO", str(tmp_path / "cpuinfo"))
    model = tiny_model()
    model.compile()
    assert model.jit_compile is xla


@pytest.mark.backend_independent
def test_the_recipe_module_imports_without_keras():
    code = (
        "import sys; import keras_dcign.training.recipes as r; "
        "print(r.RECIPES['faces_basel'].image_size, 'keras' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["150", "False"]


@pytest.mark.backend_independent
def test_every_recipe_setting_is_a_train_option_and_a_checked_field():
    from click.testing import CliRunner
    from keras_dcign_cli.main import cli

    from keras_dcign.training.recipes import Recipe

    usage = CliRunner().invoke(cli, ["train", "--help"], terminal_width=200).output
    for name, setting in Recipe.settings().items():
        assert (setting.flag or "--" + name.replace("_", "-")) in usage, name
    # A value outside a setting's range is refused by the command, before any training.
    result = CliRunner().invoke(cli, ["train", "--lr-decay", "1.5"])
    assert result.exit_code == 2 and "1.5" in result.output
    result = CliRunner().invoke(cli, ["train", "--gaussian-scale", "wide"])
    assert result.exit_code == 2 and "gaussian_scale='wide' is invalid" in result.output


@pytest.mark.backend_independent
def test_model_kwargs_come_from_the_schema_and_saved_recipes_fill_in_legacy_values():
    from keras_dcign.training.recipes import LEGACY_SETTINGS, RECIPES, Recipe

    kwargs = RECIPES["faces_basel"].replace(batches_per_step=2).model_kwargs()
    assert kwargs["image_size"] == 150 and kwargs["invariance_strength"] == 20.0
    assert kwargs["monovariant_batch_size"] == 20 and "steps" not in kwargs
    old = {"image_size": 32, "steps": 10, "config": "faces_64", "seed": 0}
    saved = Recipe.from_saved(old)
    assert saved.architecture == LEGACY_SETTINGS["architecture"] == "paper"
    assert saved.steps == 10 and saved.cache_batches == RECIPES["faces_64"].cache_batches
    with pytest.raises(ValueError, match="gaussian_scale=-1 is invalid"):
        Recipe(gaussian_scale=-1)
