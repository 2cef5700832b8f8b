"""Face verification and identity swaps: `identity_embedding`, `rerender(identity_from=)`,
the equal-error threshold, `dcign verify` and `dcign render --identity-from`."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import tiny_calibrated_model
from keras import ops
from keras_dcign_cli.main import cli
from PIL import Image

import keras_dcign
from keras_dcign.datasets import faces
from keras_dcign.evaluation.scores import equal_error_threshold
from keras_dcign.image_files import load_image
from keras_dcign.verification import (
    VERIFICATION_FILE,
    identity_embedding,
    load_verification,
    save_verification,
    similarity,
)


@pytest.fixture(scope="module")
def faces_64():
    return keras_dcign.from_preset("faces_64")


def test_identity_embedding_leaves_out_the_pose_and_light_units():
    model = tiny_calibrated_model()
    images = np.random.default_rng(0).random((3, 32, 32, 1), dtype="float32")
    codes = keras_dcign.calibration.encode_means(model, images)
    embedding = identity_embedding(model, images)
    # The tiny code is azimuth, elevation, light (one unit each) and 5 intrinsic units.
    np.testing.assert_allclose(embedding, codes[:, 3:], atol=1e-6)
    np.testing.assert_array_equal(model.identity_units(), np.arange(3, 8))


def test_one_persons_identity_embedding_is_nearer_itself_than_other_people(faces_64):
    people = np.asarray(faces.identities("test"))[:10]
    a = faces.render(people, image_size=64, light=-30.0)[..., None]
    b = faces.render(people, image_size=64, light=30.0)[..., None]
    ea, eb = identity_embedding(faces_64, a), identity_embedding(faces_64, b)
    ea /= np.linalg.norm(ea, axis=1, keepdims=True)
    eb /= np.linalg.norm(eb, axis=1, keepdims=True)
    nearest = np.argmax(ea @ eb.T, axis=1)
    assert np.sum(nearest == np.arange(10)) >= 7, nearest


def test_rerender_identity_from_keeps_the_light_and_takes_the_person(faces_64):
    people = np.asarray(faces.identities("test"))[:8]
    others = np.roll(people, 1)
    lit = faces.render(people, image_size=64, light=-40.0)[..., None]
    frontal_others = faces.render(others, image_size=64)[..., None]
    out = ops.convert_to_numpy(faces_64.rerender(lit, identity_from=frontal_others))[..., 0]
    theirs = faces.render(others, image_size=64, light=-40.0)
    mine = faces.render(people, image_size=64, light=-40.0)
    nearer_theirs = np.mean((out - theirs) ** 2, axis=(1, 2)) < np.mean(
        (out - mine) ** 2, axis=(1, 2)
    )
    assert np.sum(nearer_theirs) >= 6, nearer_theirs
    # One image lends its identity to every image of the batch.
    one = ops.convert_to_numpy(faces_64.rerender(lit, identity_from=frontal_others[:1]))
    assert one.shape == lit.shape


def test_rerender_identity_from_refuses_other_sizes():
    model = tiny_calibrated_model()
    images = np.zeros((2, 32, 32, 1), "float32")
    with pytest.raises(ValueError, match=r"identity_from has shape \(3, 32, 32, 1\); expected"):
        model.rerender(images, identity_from=np.zeros((3, 32, 32, 1), "float32"))
    with pytest.raises(ValueError, match=r"identity_from has shape \(2, 16, 16, 1\)"):
        model.rerender(images, identity_from=np.zeros((2, 16, 16, 1), "float32"))


@pytest.mark.backend_independent
def test_equal_error_threshold_balances_false_accepts_and_rejects():
    rng = np.random.default_rng(0)
    same = np.r_[np.ones(2000), np.zeros(2000)]
    scores = np.r_[rng.normal(1.0, 1.0, 2000), rng.normal(-1.0, 1.0, 2000)]
    threshold, rate = equal_error_threshold(scores, same)
    # Two unit Gaussians 2 apart cross at 0, with an error of Phi(-1) = 0.159 on each side.
    assert threshold == pytest.approx(0.0, abs=0.08) and rate == pytest.approx(0.159, abs=0.015)
    assert equal_error_threshold([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0])[1] == 0.0
    with pytest.raises(ValueError, match="one kind of pair only"):
        equal_error_threshold([0.1, 0.2], [1, 1])


@pytest.fixture
def verified_preset(tmp_path):
    preset = tiny_calibrated_model().save_to_preset(tmp_path / "tiny", card="# Tiny\n")
    save_verification(preset, {"threshold": 0.999, "equal_error_rate": 0.25})
    return preset


def _png(path, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_dcign_verify_says_same_or_different_with_its_exit_status(tmp_path, verified_preset):
    a, b = _png(tmp_path / "a.png", 0), _png(tmp_path / "b.png", 1)
    # The tiny untrained model finds any two pictures alike: the threshold is set between
    # the two pictures' similarity, read the way the command reads them, and 1.
    model = keras_dcign.from_preset(verified_preset)
    pictures = [load_image(path, model.image_size) for path in (a, b)]
    apart = float(similarity(model, pictures[0][None], pictures[1][None])[0])
    assert apart < 1.0 - 1e-6
    threshold = round((apart + 1.0) / 2, 9)
    save_verification(verified_preset, {"threshold": threshold, "equal_error_rate": 0.25})
    same = CliRunner().invoke(cli, ["verify", str(a), str(a), "--preset", str(verified_preset)])
    assert same.exit_code == 0, same.output
    assert same.output.startswith("same person: similarity 1.000, threshold")
    different = CliRunner().invoke(
        cli, ["verify", str(a), str(b), "--preset", str(verified_preset), "--json"]
    )
    assert different.exit_code == 1, different.output
    result = json.loads(different.output)
    assert result["same"] is False and abs(result["similarity"] - apart) < 1e-5
    assert result["threshold"] == threshold and result["equal_error_rate"] == 0.25


def test_dcign_verify_errors_are_one_line_with_exit_status_2(tmp_path):
    a = _png(tmp_path / "a.png", 0)
    bare = tiny_calibrated_model().save_to_preset(tmp_path / "bare", card="# Tiny\n")
    result = CliRunner().invoke(cli, ["verify", str(a), str(a), "--preset", str(bare)])
    assert result.exit_code == 2
    assert "has no fitted verification threshold" in result.output
    assert len(result.output.strip().splitlines()) == 1
    missing = CliRunner().invoke(cli, ["verify", str(a), str(tmp_path / "no.png")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (bare / VERIFICATION_FILE).write_text('{"threshold": "high", "equal_error_rate": 0.1}')
    with pytest.raises(ValueError, match="threshold is 'high'; expected a number in"):
        load_verification(bare)


def test_dcign_render_identity_from_writes_a_named_output(tmp_path, verified_preset):
    a, b = _png(tmp_path / "a.png", 0), _png(tmp_path / "b.png", 1)
    result = CliRunner().invoke(
        cli, ["render", str(a), "--identity-from", str(b), "--preset", str(verified_preset)]
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "a_identity-b.png"
    assert result.output.strip() == str(out)
    with Image.open(out) as image:
        assert image.size == (32, 32)
    refused = CliRunner().invoke(
        cli, ["render", str(a), "--identity-from", str(b), "--out", str(b)]
    )
    assert refused.exit_code == 1 and "b.png" in refused.output


def test_intrinsic_directions_are_fitted_stored_and_walked(tmp_path, faces_64):
    from keras_dcign.directions import (
        fit_intrinsic_directions,
        load_intrinsic_directions,
        save_intrinsic_directions,
        walk,
    )

    record = fit_intrinsic_directions(faces_64, people=60, directions=4)
    directions = np.asarray(record["directions"])
    np.testing.assert_allclose(directions @ directions.T, np.eye(4), atol=1e-6)
    assert record["std"] == sorted(record["std"], reverse=True) and record["std"][0] > 0
    preset = tmp_path / "preset"
    preset.mkdir()
    save_intrinsic_directions(preset, record)
    assert load_intrinsic_directions(preset, faces_64)["units"] == record["units"]
    image = faces.render(int(faces.identities("test")[2]), image_size=64)[..., None]
    frames = walk(faces_64, image, record, direction=0, frames=5)
    assert frames.shape == (5, 64, 64, 1)
    # The walk changes the face, most at its ends, and least in the middle (the face itself).
    change = np.mean((frames - frames[2]) ** 2, axis=(1, 2, 3))
    assert change[0] > 1e-4 and change[-1] > 1e-4 and change[2] == 0
    with pytest.raises(ValueError, match="direction=4 is invalid; expected an integer from 0 to 3"):
        walk(faces_64, image, record, direction=4)
    with pytest.raises(ValueError, match="has no intrinsic directions"):
        load_intrinsic_directions(tmp_path)


def test_dcign_traverse_intrinsic_walks_a_presets_direction(tmp_path, verified_preset):
    from keras_dcign.directions import fit_intrinsic_directions, save_intrinsic_directions

    a = _png(tmp_path / "a.png", 0)
    args = ["traverse", str(a), "--factor", "intrinsic", "--frames", "4"]
    missing = CliRunner().invoke(cli, [*args, "--preset", str(verified_preset)])
    assert missing.exit_code == 1 and "has no intrinsic directions" in missing.output
    model = keras_dcign.from_preset(str(verified_preset))
    save_intrinsic_directions(verified_preset, fit_intrinsic_directions(model, 20, 2))
    result = CliRunner().invoke(cli, [*args, "--direction", "1", "--preset", str(verified_preset)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a_intrinsic-1_sweep.gif").exists()
    assert (tmp_path / "a_intrinsic-1_sweep.png").exists()
    beyond = CliRunner().invoke(cli, [*args, "--direction", "2", "--preset", str(verified_preset)])
    assert beyond.exit_code == 1 and "has directions 0 to 1" in beyond.output
    wrong = CliRunner().invoke(cli, ["traverse", str(a), "--factor", "light", "--direction", "1"])
    assert wrong.exit_code == 2 and "--direction goes with --factor intrinsic" in wrong.output
