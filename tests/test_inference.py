"""`keras_dcign.inference.fit_scene` and `dcign fit-scene`: the generator's scene fitted to an
image by ABC with the DC-IGN code as the summary statistic."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import tiny_model
from keras_dcign_cli.main import cli
from PIL import Image

import keras_dcign
from keras_dcign.datasets import faces
from keras_dcign.inference import fit_scene


@pytest.fixture(scope="module")
def faces_64():
    return keras_dcign.from_preset("faces_64")


def test_fit_scene_finds_the_pose_of_a_held_out_face(faces_64):
    person = int(faces.identities("test")[5])
    image = faces.render(person, azimuth=40.0, light=-30.0, image_size=64)[..., None]
    fit = fit_scene(faces_64, image, simulations=800, rounds=4, seed=1)
    estimate = fit.estimate()
    assert fit.simulations == 800 and fit.statistic == "code"
    assert abs(estimate["azimuth"] - 40.0) < 20.0, estimate["azimuth"]
    assert abs(estimate["light"] + 30.0) < 30.0, estimate["light"]
    assert 0 < estimate["azimuth_std"] < 60 and len(estimate["coefficients"]) == 49
    assert fit.weights.sum() == pytest.approx(1.0) and (fit.weights >= 0).all()
    # The kept scenes are the nearest: distances grow along the population.
    assert (np.diff(fit.distances) >= 0).all()
    picture = fit.render(image_size=32, azimuth=0.0)
    assert picture.shape == (32, 32) and 0 <= picture.min() <= picture.max() <= 1


def test_fit_scene_is_reproducible_and_takes_every_statistic(faces_64):
    image = faces.render(int(faces.identities("test")[0]), image_size=64)[..., None]
    for statistic in ("code", "pixels", "readout"):
        first = fit_scene(faces_64, image, simulations=120, rounds=2, statistic=statistic)
        again = fit_scene(faces_64, image, simulations=120, rounds=2, statistic=statistic)
        assert first.estimate() == again.estimate()


def test_fit_scene_refuses_bad_arguments(faces_64):
    image = np.zeros((64, 64, 1), "float32")
    with pytest.raises(ValueError, match="statistic='edges' is invalid; expected one of"):
        fit_scene(faces_64, image, statistic="edges")
    with pytest.raises(ValueError, match=r"keep 1 scenes a round; expected at least 2"):
        fit_scene(faces_64, image, simulations=40, rounds=4)
    with pytest.raises(ValueError, match=r"image has shape \(32, 32, 1\); expected \(64, 64, 1\)"):
        fit_scene(faces_64, np.zeros((32, 32, 1), "float32"))
    with pytest.raises(ValueError, match="needs a calibrated model"):
        fit_scene(tiny_model(), np.zeros((32, 32, 1), "float32"), statistic="readout")


def test_dcign_fit_scene_prints_the_angles_and_writes_the_generators_picture(tmp_path):
    person = int(faces.identities("test")[3])
    pixels = faces.render(person, azimuth=-30.0, image_size=64)
    Image.fromarray(np.round(pixels * 255).astype("uint8")).save(tmp_path / "face.png")
    args = ["fit-scene", str(tmp_path / "face.png"), "--simulations", "200", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    fit = json.loads(result.output)
    assert fit["statistic"] == "code" and fit["simulations"] == 200
    assert {"azimuth", "azimuth_std", "elevation", "light"} <= set(fit)
    with Image.open(tmp_path / "face_scene.png") as picture:
        assert picture.size == (64, 64)
    # The default picture replaces one dcign wrote, never a file of the user's.
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    Image.fromarray(np.zeros((8, 8), "uint8")).save(tmp_path / "face_scene.png")
    mine = (tmp_path / "face_scene.png").read_bytes()
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 1 and "face_scene.png" in refused.output
    assert "already exists" in refused.output
    assert (tmp_path / "face_scene.png").read_bytes() == mine
    text = CliRunner().invoke(
        cli,
        [
            "fit-scene",
            str(tmp_path / "face.png"),
            "--simulations",
            "80",
            "--out",
            str(tmp_path / "fit.png"),
        ],
    )
    assert text.exit_code == 0, text.output
    assert text.output.splitlines()[0].startswith("azimuth: ")
    assert text.output.splitlines()[-1] == str(tmp_path / "fit.png")
