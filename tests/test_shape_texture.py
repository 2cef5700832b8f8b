"""The shape/texture graphics code: SHAPE_ONLY and TEXTURE_ONLY batches, the code layout,
`rerender(shape_from=, texture_from=)`, `dcign render --shape-from/--texture-from`, the swap
probe, and `dcign train --code shape_texture`."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import RANGES
from keras import ops
from keras_dcign_cli.main import cli
from PIL import Image

from keras_dcign import DCIGN, Calibration, GraphicsCode, from_preset
from keras_dcign.calibration import encode_means
from keras_dcign.datasets import _streams, faces
from keras_dcign.evaluation.probes import shape_texture_swap
from keras_dcign.evaluation.report import summary_rows
from keras_dcign.training.loop import build_model, init_from_preset
from keras_dcign.training.recipes import recipe

TINY = dict(image_size=32, feature_maps=8, architecture="strided", seed=1)


def _spec(split="train"):
    return _streams.StreamSpec(batch_size=4, image_size=32, split=split, seed=3)


@pytest.mark.backend_independent
def test_texture_only_batches_keep_the_geometry_and_change_only_the_albedo():
    images, group, factors = _spec().batch("TEXTURE_ONLY", 2)
    assert group == "texture"
    assert len(set(factors["identity"])) == 1  # one person's shape
    assert len(set(factors["texture_identity"])) == 4  # four people's textures
    for name in ("azimuth", "elevation", "light"):
        assert len(set(factors[name])) == 1, name
    scene = {name: float(factors[name][0]) for name in ("azimuth", "elevation", "light")}
    buffers = [
        faces.render_buffers(faces.combine(s, t), image_size=32, **scene)
        for s, t in zip(factors["identity"], factors["texture_identity"])
    ]
    for other in buffers[1:]:
        np.testing.assert_array_equal(other["mask"], buffers[0]["mask"])
        np.testing.assert_array_equal(other["depth"], buffers[0]["depth"])
        np.testing.assert_array_equal(other["normals"], buffers[0]["normals"])
        assert not np.array_equal(other["albedo"], buffers[0]["albedo"])
    # The batch is those pictures.
    np.testing.assert_array_equal(images[..., 0], np.stack([b["image"] for b in buffers]))


@pytest.mark.backend_independent
def test_shape_only_batches_change_the_geometry_under_one_texture():
    images, group, factors = _spec().batch("SHAPE_ONLY", 2)
    assert group == "shape"
    assert len(set(factors["identity"])) == 4 and len(set(factors["texture_identity"])) == 1
    for name in ("azimuth", "elevation", "light"):
        assert len(set(factors[name])) == 1, name
    scene = {name: factors[name] for name in ("azimuth", "elevation", "light")}
    mixed = faces.combine(factors["identity"], factors["texture_identity"])
    np.testing.assert_array_equal(images[..., 0], faces.render(mixed, image_size=32, **scene))
    # Not the shape people's own faces: the texture is the kept person's.
    own = faces.render(factors["identity"], image_size=32, **scene)
    assert np.all(np.abs(images[..., 0] - own).max(axis=(1, 2)) > 0.01)
    depth = [
        faces.render_buffers(mixed[i], image_size=32, **{k: float(v[0]) for k, v in scene.items()})[
            "depth"
        ]
        for i in range(2)
    ]
    assert not np.array_equal(depth[0], depth[1])


@pytest.mark.backend_independent
def test_combine_takes_the_shape_modes_of_one_person_and_the_albedo_of_another():
    vector = faces.combine(7, 9001)
    np.testing.assert_array_equal(
        vector[: faces.N_SHAPE_MODES], faces.coefficients(7)[: faces.N_SHAPE_MODES]
    )
    np.testing.assert_array_equal(
        vector[faces.N_SHAPE_MODES :], faces.coefficients(9001)[faces.N_SHAPE_MODES :]
    )
    np.testing.assert_array_equal(faces.combine(7, 7), faces.coefficients(7))
    assert faces.combine([1, 2, 3], 4).shape == (3, faces.N_COEFFICIENTS)
    with pytest.raises(ValueError, match="must be person ids"):
        faces.combine(faces.coefficients(1), 2)


@pytest.mark.backend_independent
def test_shape_texture_batches_are_pure_and_keep_test_people_in_the_test_split():
    test_people = set(faces.identities("test").tolist())
    for kind in _streams.SHAPE_TEXTURE_KINDS:
        for index in range(5):
            _, _, factors = _spec("test").batch(kind, index)
            people = set(factors["identity"].tolist()) | set(factors["texture_identity"].tolist())
            assert people <= test_people, (kind, index)
        first = _spec().batch(kind, 9)
        _spec().batch(kind, 3)  # another batch in between changes nothing
        again = _spec().batch(kind, 9)
        np.testing.assert_array_equal(first[0], again[0])
        for name in first[2]:
            np.testing.assert_array_equal(first[2][name], again[2][name])


@pytest.mark.backend_independent
def test_the_existing_kinds_draw_the_same_batches_as_before_the_new_kinds():
    spec = _streams.StreamSpec(batch_size=4, image_size=16, split="train", seed=3)
    expected = {
        "AZ": ([6587] * 4, -50.6845, 2.2832),
        "EL": ([667] * 4, 83.3276, 24.9948),
        "LIGHT": ([844] * 4, 23.3078, 32.43),
        "SHAPE": ([2839, 8827, 5688, 4879], 57.4838, -76.0642),
        "MIXED": ([1993, 7633, 2145, 6854], -85.8513, 71.6683),
    }
    for kind, (identity, azimuth, light) in expected.items():
        factors = spec.factors(kind, 5)
        assert factors["identity"].tolist() == identity, kind
        assert factors["azimuth"][0] == pytest.approx(azimuth, abs=1e-4), kind
        assert factors["light"][0] == pytest.approx(light, abs=1e-4), kind
        assert "texture_identity" not in factors
    kinds, probabilities = _streams.kind_weights(16.0)
    assert [spec.mixed_kind(i, kinds, probabilities) for i in range(8)] == [
        "SHAPE",
        "SHAPE",
        "SHAPE",
        "SHAPE",
        "LIGHT",
        "LIGHT",
        "SHAPE",
        "EL",
    ]


@pytest.mark.backend_independent
def test_the_shape_texture_layout_and_the_kinds_and_ids_it_trains():
    code = GraphicsCode.shape_texture()
    assert code.names == ("azimuth", "elevation", "light", "shape", "texture")
    assert code.size == GraphicsCode.paper().size == 200
    assert code.slice("shape") == slice(3, 101) and code.slice("texture") == slice(101, 200)
    assert GraphicsCode.named("shape_texture") == code and code.layout == "shape_texture"
    assert GraphicsCode.of(code.get_config()) == code and GraphicsCode.of(None).layout == "paper"
    with pytest.raises(ValueError, match=r"Unknown graphics-code layout 'shapes'; expected one"):
        GraphicsCode.named("shapes")
    assert faces.training_kinds() == ("AZ", "EL", "LIGHT", "SHAPE")
    assert faces.training_kinds(code) == ("AZ", "EL", "LIGHT", "SHAPE_ONLY", "TEXTURE_ONLY")
    assert [_streams.group_id(faces.GROUPS[k], code) for k in faces.training_kinds(code)] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert _streams.group_id(None, code) == -1
    with pytest.raises(ValueError, match=r"group 'intrinsic' do not fit this graphics code"):
        _streams.group_id("intrinsic", code)


def test_a_shape_texture_dataset_carries_the_codes_group_ids():
    data = faces.dataset(steps_per_epoch=8, batch_size=4, image_size=16, code="shape_texture")
    assert set(data.kinds) == {"AZ", "EL", "LIGHT", "SHAPE_ONLY", "TEXTURE_ONLY"}
    ids = {"AZ": 0, "EL": 1, "LIGHT": 2, "SHAPE_ONLY": 3, "TEXTURE_ONLY": 4}
    for index in range(8):
        _, group_ids = data[index]
        assert set(group_ids.tolist()) == {ids[data.kind(index)]}
    batches = [_spec().batch(kind, 0) for kind in ("TEXTURE_ONLY", "SHAPE_ONLY", "MIXED")]
    _, group_ids = faces.stack_batches(batches, code="shape_texture")
    assert group_ids[:, 0].tolist() == [4, 3, -1]
    with pytest.raises(ValueError, match="do not fit this graphics code"):
        faces.stack_batches(batches)  # the paper's code has no shape group


@pytest.mark.backend_independent
def test_a_cache_of_shape_texture_batches_keeps_whose_texture_each_picture_has(tmp_path):
    kinds = ("AZ", "SHAPE_ONLY", "TEXTURE_ONLY")
    faces.generate(
        tmp_path / "c", n_batches=6, batch_size=4, image_size=16, kinds=kinds, progress=False
    )
    data = faces.load(tmp_path / "c", progress=False)
    spec = _streams.StreamSpec(batch_size=4, image_size=16)
    for index, kind in enumerate(data["kind"]):
        factors = spec.factors(kind, index)
        np.testing.assert_array_equal(data["identity"][index], factors["identity"])
        # AZ batches wear their own person's texture.
        own = factors.get("texture_identity", factors["identity"])
        np.testing.assert_array_equal(data["texture_identity"][index], own)
    streamed = next(faces.cached_batches(data, shuffle=False))
    assert "texture_identity" in streamed[2]


def _model(code="shape_texture", **kwargs):
    return DCIGN(**TINY, code=code, **kwargs)


def test_dcign_takes_the_layout_by_name_and_saves_the_codes_config(tmp_path):
    model = _model()
    assert model.code == GraphicsCode.shape_texture()
    config = model.get_config()
    assert config["code"] == GraphicsCode.shape_texture().get_config()
    twin = DCIGN.from_config(config)
    assert twin.code == model.code
    assert {"kl_shape", "kl_texture"} <= {m.name for m in model.metrics}
    loaded = from_preset(model.save_to_preset(tmp_path / "p", card="# p\n"))
    assert loaded.code == model.code
    for mine, theirs in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(mine, theirs, atol=1e-3)
    with pytest.raises(ValueError, match=r"Unknown graphics-code layout 'colour'"):
        _model(code="colour")
    # The identity units are the shape and texture units together.
    np.testing.assert_array_equal(model.identity_units(), np.arange(3, 200))


def test_rerender_shape_from_and_texture_from_swap_exactly_those_units():
    model = _model()
    rng = np.random.default_rng(0)
    images = rng.random((2, 32, 32, 1), dtype="float32")
    others = rng.random((2, 32, 32, 1), dtype="float32")
    mine, theirs = encode_means(model, images), encode_means(model, others)
    code = model.code
    for option, group in (("shape_from", "shape"), ("texture_from", "texture")):
        out = ops.convert_to_numpy(model.rerender(images, **{option: others}))
        z = mine.copy()
        z[:, code.slice(group)] = theirs[:, code.slice(group)]
        np.testing.assert_allclose(out, ops.convert_to_numpy(model.decode(z)), atol=1e-5)
        plain = ops.convert_to_numpy(model.decode(mine))
        assert np.abs(out - plain).max() > 1e-4, option
    both = ops.convert_to_numpy(model.rerender(images, shape_from=others, texture_from=others))
    z = mine.copy()
    z[:, 3:] = theirs[:, 3:]
    np.testing.assert_allclose(both, ops.convert_to_numpy(model.decode(z)), atol=1e-5)
    with pytest.raises(ValueError, match=r"texture_from has shape \(3, 32, 32, 1\); expected"):
        model.rerender(images, texture_from=np.zeros((3, 32, 32, 1), "float32"))


def test_rerender_refuses_shape_from_on_the_papers_code_in_one_line():
    model = _model(code="paper")
    images = np.zeros((1, 32, 32, 1), "float32")
    with pytest.raises(ValueError) as error:
        model.rerender(images, shape_from=images)
    message = str(error.value)
    assert message.startswith("shape_from needs a graphics code with a 'shape' group")
    assert "azimuth, elevation, light, intrinsic" in message and "\n" not in message


def test_the_swap_probe_measures_shape_and_texture_swaps_against_the_truth():
    model = _model()
    swap = shape_texture_swap(model, people=3)
    for group in ("texture", "shape"):
        entry = swap[group]
        assert entry["people"] == 3 and 0 <= entry["identified"] <= 3
        assert entry["input_baseline_mse"] > 0 and 0 <= entry["mse"] < 1
        assert -1 <= entry["ssim"] <= 1 and entry["reconstruction_mse"] > 0
    with pytest.raises(ValueError, match="needs a graphics code with shape and texture groups"):
        shape_texture_swap(_model(code="paper"), people=2)


def test_dcign_evaluate_reports_the_swaps_of_a_shape_texture_model():
    pytest.importorskip("sklearn")
    from keras_dcign import evaluate
    from keras_dcign.evaluation import QUICK

    tiny = dict(
        QUICK,
        sweep_identities=2,
        sweep_angles=5,
        identity_people=10,
        identity_pairs=50,
        score_samples=60,
        factorvae_votes=(4, 2),
        betavae_points=(4, 2),
        dci_estimators=5,
        turn_people=4,
    )
    metrics = evaluate(_calibrated("shape_texture"), progress=False, **tiny)
    assert set(metrics["shape_texture_swap"]) == {"texture", "shape"}
    assert metrics["shape_texture_swap"]["shape"]["people"] == 4
    rows = dict(summary_rows(metrics))
    texture = rows["texture swap (A's pose, light and shape, B's texture) MSE (SSIM)"]
    assert texture.endswith("of 4 (chance: 1) identified")
    assert "shape swap (A's pose, light and texture, B's shape) MSE (SSIM)" in rows


def _calibrated(code):
    model = _model(code=code)
    model.calibration = Calibration(
        {
            f: {"group": f, "unit": 0, "slope": 0.03, "intercept": 0.0, "range": list(r), "r2": 1.0}
            for f, r in RANGES.items()
        }
    )
    return model


def _png(path, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, size=(40, 40), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_dcign_render_shape_from_and_texture_from(tmp_path):
    preset = _calibrated("shape_texture").save_to_preset(tmp_path / "st", card="# st\n")
    a, b, c = (_png(tmp_path / f"{name}.png", seed) for seed, name in enumerate("abc"))
    result = CliRunner().invoke(
        cli,
        [
            "render",
            str(a),
            "--shape-from",
            str(b),
            "--texture-from",
            str(c),
            "--preset",
            str(preset),
        ],
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "a_shape-b_texture-c.png"
    assert result.output.strip() == str(out)
    with Image.open(out) as image:
        assert image.size == (32, 32)
    paper = _calibrated("paper").save_to_preset(tmp_path / "paper", card="# paper\n")
    before = sorted(tmp_path.iterdir())
    refused = CliRunner().invoke(
        cli, ["render", str(a), "--texture-from", str(c), "--preset", str(paper)]
    )
    assert refused.exit_code != 0
    assert len(refused.output.strip().splitlines()) == 1, refused.output
    assert "texture_from needs a graphics code with a 'texture' group" in refused.output
    assert sorted(tmp_path.iterdir()) == before  # nothing written


def test_a_shape_texture_run_starts_from_a_paper_code_preset_of_the_same_size(tmp_path):
    tiny = dict(image_size=32, feature_maps=8)
    paper = build_model(recipe("faces_64", **tiny))
    folder = paper.save_to_preset(tmp_path / "paper", card="# paper\n")
    model = build_model(recipe("faces_64", code="shape_texture", **tiny))
    assert model.code == GraphicsCode.shape_texture()
    init_from_preset(model, str(folder))
    for mine, theirs in zip(model.get_weights(), from_preset(folder).get_weights()):
        np.testing.assert_allclose(mine, theirs, atol=1e-3)
    small = DCIGN(**dict(TINY, seed=None), code=GraphicsCode.paper(intrinsic=5))
    small_folder = small.save_to_preset(tmp_path / "small", card="# small\n")
    with pytest.raises(ValueError, match=r"its code size is 8, but this run's is 200"):
        init_from_preset(model, str(small_folder))


@pytest.mark.slow
def test_dcign_train_code_shape_texture_trains_on_shape_and_texture_batches(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    run = tmp_path / "run"
    args = [
        "train",
        "--code",
        "shape_texture",
        "--image-size",
        "32",
        "--feature-maps",
        "8",
        "--cache-batches",
        "6",
        "--batch-size",
        "6",
        "--steps",
        "3",
        "--pretrain-steps",
        "0",
        "--checkpoint-every",
        "3",
        "--out",
        str(run),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    model = from_preset(run / "preset")
    assert model.code == GraphicsCode.shape_texture()
    assert json.loads((run / "recipe.json").read_text())["code"] == "shape_texture"
    card = (run / "preset" / "README.md").read_text()
    assert card.startswith("# faces_64_shape_texture") and "98 shape, 99 texture" in card
    caches = [p.name for p in (tmp_path / "home" / "keras_dcign" / "datasets").iterdir()]
    assert any(name.endswith("-shape_only-texture_only") for name in caches), caches
    data = faces.load(tmp_path / "home" / "keras_dcign" / "datasets" / caches[0], progress=False)
    assert set(data["kind"]) <= {"AZ", "EL", "LIGHT", "SHAPE_ONLY", "TEXTURE_ONLY"}
    assert "texture_identity" in data
