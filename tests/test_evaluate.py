"""`keras_dcign.evaluate` and `dcign evaluate`: the numbers, their files, the model card."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import RANGES, tiny_calibrated_model, tiny_model
from keras import ops
from keras_dcign_cli.main import cli
from PIL import Image

import keras_dcign
from keras_dcign import Calibration, GraphicsCode
from keras_dcign.calibration import fit_calibration
from keras_dcign.evaluation import QUICK, report

pytest.importorskip("sklearn")
pytest.importorskip("skimage")

SMALL = dict(QUICK, factorvae_votes=(12, 6), betavae_points=(12, 6), score_samples=150)
TINY = dict(
    SMALL,
    sweep_identities=2,
    sweep_angles=5,
    identity_people=10,
    identity_pairs=50,
    score_samples=60,
    factorvae_votes=(4, 2),
    betavae_points=(4, 2),
    dci_estimators=5,
)


def _check_schema(metrics):
    for factor in ("azimuth", "elevation", "light"):
        stats = metrics["factors"][factor]
        assert set(stats) == {"pearson", "spearman", "r2"}
        assert -1 <= stats["pearson"] <= 1 and -1 <= stats["spearman"] <= 1
        assert math.isfinite(stats["r2"])
        errors = metrics["rerender"][factor]
        assert {"mse", "ssim", "reconstruction_mse", "reconstruction_ssim"} <= set(errors)
        assert -1 <= errors["reconstruction_ssim"] <= 1 and errors["input_baseline_mse"] >= 0
        assert all(math.isfinite(v) and v >= -1 for v in errors.values())
        assert errors["input_baseline_mse"] > 0  # source and target pictures differ
    assert 0 <= metrics["identity_auc"] <= 1
    assert set(metrics["turn_check"]) == {
        "azimuth +40",
        "azimuth -40",
        "elevation +20",
        "light -60",
    }
    for check in metrics["turn_check"].values():
        assert check["people"] == metrics["settings"]["turn_people"]
        assert 0 <= check["identified"] <= check["people"] == len(check["nearest"])
    spread = metrics["intrinsic_spread"]
    assert spread["ratio"] == pytest.approx(spread["within"] / spread["between"])
    swap = metrics["identity_swap"]
    assert swap["people"] == metrics["settings"]["turn_people"]
    assert 0 <= swap["identified"] <= swap["people"] and swap["mse"] > 0
    assert -1 <= swap["ssim"] <= 1 and swap["reconstruction_mse"] > 0
    verification = metrics["verification"]
    assert 0 <= verification["equal_error_rate"] <= 1 and -1 <= verification["threshold"] <= 1
    assert 0 <= metrics["mig"] <= 1
    assert 0 <= metrics["factorvae"] <= 1 and 0 <= metrics["betavae"] <= 1
    assert 0 <= metrics["dci"] <= 1


@pytest.fixture(scope="module")
def metrics():
    return keras_dcign.evaluate(tiny_calibrated_model(), progress=False, **SMALL)


def test_evaluate_returns_the_documented_numbers(metrics):
    _check_schema(metrics)
    assert metrics["details"]["units"] == {"azimuth": 0, "elevation": 1, "light": 2}
    assert metrics["details"]["calibration_fitted_here"] is False
    assert "shape_texture_swap" not in metrics  # the paper's code has no shape and texture
    json.dumps(metrics)  # plain numbers only


def test_evaluate_is_reproducible():
    model = tiny_calibrated_model()
    first = keras_dcign.evaluate(model, progress=False, **TINY)
    again = keras_dcign.evaluate(model, progress=False, **TINY)
    assert again["factors"] == first["factors"]
    assert again["rerender"] == first["rerender"]
    assert (again["mig"], again["factorvae"], again["betavae"]) == (
        first["mig"],
        first["factorvae"],
        first["betavae"],
    )


def test_evaluate_rejects_bad_arguments():
    model = tiny_calibrated_model()
    with pytest.raises(ValueError, match="Unknown dataset 'mnist'"):
        keras_dcign.evaluate(model, dataset="mnist")
    with pytest.raises(ValueError, match=r"Unknown evaluation settings \['votes'\]"):
        keras_dcign.evaluate(model, votes=3)


def test_variance_unit_selection_picks_the_unit_that_moves():
    """The entangled baseline's units: the one that varies most within each sweep."""
    code = GraphicsCode.paper(intrinsic=5)
    rng = np.random.default_rng(0)
    degrees = np.tile(np.linspace(-80, 80, 9), 3)
    sweeps = np.repeat(np.arange(3), 9)
    latents = {}
    for factor, unit in (("azimuth", 6), ("elevation", 1), ("light", 4)):
        z = 0.01 * rng.standard_normal((27, code.size))
        z[:, unit] += 0.02 * degrees + sweeps  # an offset per person must not count
        latents[factor] = z
    calibration = fit_calibration(
        latents,
        {f: degrees for f in latents},
        code,
        RANGES,
        unit_selection="variance",
        sweeps={f: sweeps for f in latents},
    )
    chosen = {f: code.slice(e["group"]).start + e["unit"] for f, e in calibration.factors.items()}
    assert chosen == {"azimuth": 6, "elevation": 1, "light": 4}
    assert calibration.factors["azimuth"]["group"] == "intrinsic"
    assert calibration.factors["azimuth"]["slope"] == pytest.approx(0.02, abs=1e-3)
    with pytest.raises(ValueError, match="unit_selection='best'"):
        fit_calibration(latents, {f: degrees for f in latents}, code, RANGES, "best")


def test_rerender_sets_the_calibrated_unit_outside_the_factor_group():
    model = tiny_model()
    model.calibration = Calibration(
        {
            "light": {
                "group": "intrinsic",
                "unit": 2,
                "slope": 0.05,
                "intercept": 0.5,
                "range": [-80, 80],
                "r2": 1.0,
            }
        }
    )
    images = np.random.default_rng(0).random((2, 32, 32, 1), dtype="float32")
    z = ops.convert_to_numpy(model.encode(images).mean)
    z[:, 3 + 2] = 0.05 * -80 + 0.5
    expected = ops.convert_to_numpy(model.decode(z))
    relit = ops.convert_to_numpy(model.rerender(images, light="left"))
    np.testing.assert_allclose(relit, expected, atol=1e-6)


def test_card_section_is_replaced_not_repeated(tmp_path, metrics):
    folder = tiny_calibrated_model().save_to_preset(tmp_path, card="# tiny\n\nSome card.\n")
    report.update_card(folder, metrics, "dcign evaluate tiny")
    report.update_card(folder, metrics, "dcign evaluate tiny --seed 0")
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("# tiny\n\nSome card.\n")
    assert card.count(report.CARD_BEGIN) == 1 and "--seed 0" in card
    assert "| identity verification AUC |" in card
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["mig"] == metrics["mig"]


def test_dcign_evaluate_writes_metrics_figures_and_card(tmp_path):
    preset = tiny_calibrated_model().save_to_preset(tmp_path / "tiny", card="# Tiny card\n")
    out = tmp_path / "report"
    result = CliRunner().invoke(
        cli, ["evaluate", str(preset), "--quick", "--json", "--out", str(out), "--update-card"]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    saved = json.loads((out / "metrics.json").read_text())
    assert printed["identity_auc"] == saved["identity_auc"]
    for name in ("scatter.png", "traversal_azimuth.png", "traversal_light.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.size[0] > 64
    assert (preset / "metrics.json").exists()
    stored = json.loads((preset / "verification.json").read_text())
    assert stored["threshold"] == saved["verification"]["threshold"]
    info = CliRunner().invoke(cli, ["zoo", "info", str(preset)])
    assert info.exit_code == 0 and "identity verification AUC" in info.output


@pytest.mark.backend_independent
def test_dcign_evaluate_unknown_preset_is_one_line():
    result = CliRunner().invoke(cli, ["evaluate", "no_such_preset"])
    assert result.exit_code == 1
    assert "Unknown preset 'no_such_preset'" in result.output
    assert "Traceback" not in result.output
