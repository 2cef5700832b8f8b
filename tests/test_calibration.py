import keras
import numpy as np
import pytest
from helpers import blob_images, tiny_model

from keras_dcign import Calibration, GraphicsCode
from keras_dcign.calibration import fit_calibration

CODE = GraphicsCode({"azimuth": 1, "elevation": 1, "light": 2, "intrinsic": 3})
RANGES = {"azimuth": (-90, 90), "elevation": (-25, 25), "light": (-80, 80)}


def _sweeps(noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    latents, degrees = {}, {}
    for factor, (low, high) in RANGES.items():
        angle = np.linspace(low, high, 40)
        z = rng.normal(size=(40, CODE.size))
        signal = 0.02 * angle - 0.5
        unit = CODE.slice(factor).start + (1 if factor == "light" else 0)
        z[:, unit] = signal + noise * rng.normal(size=40)
        latents[factor], degrees[factor] = z, angle
    return latents, degrees


@pytest.mark.backend_independent
def test_fit_recovers_a_linear_code():
    calibration = fit_calibration(*_sweeps(), CODE, RANGES)
    for factor in RANGES:
        entry = calibration.factors[factor]
        assert entry["slope"] == pytest.approx(0.02, rel=0.02)
        assert entry["intercept"] == pytest.approx(-0.5, abs=0.01)
        assert entry["r2"] > 0.99
    assert calibration.factors["light"]["unit"] == 1  # the informative unit of a 2-unit group
    assert calibration.to_latent("light", 40) == pytest.approx(0.3, abs=0.02)
    assert calibration.to_degrees("light", 0.3) == pytest.approx(40, abs=1)


@pytest.mark.backend_independent
def test_noise_gives_a_low_r2():
    latents, degrees = _sweeps()
    rng = np.random.default_rng(1)
    noisy = {f: rng.normal(size=z.shape) for f, z in latents.items()}
    calibration = fit_calibration(noisy, degrees, CODE, RANGES)
    assert all(entry["r2"] < 0.3 for entry in calibration.factors.values())


@pytest.mark.backend_independent
def test_named_directions_and_range():
    calibration = fit_calibration(*_sweeps(), CODE, RANGES)
    assert calibration.degrees("light", "left") == -80
    assert calibration.degrees("light", "right") == 80
    assert calibration.degrees("light", "front") == 0
    assert calibration.degrees("elevation", "up") == 25
    assert calibration.degrees("azimuth", "left") == -90
    with pytest.raises(
        ValueError, match=r"light=120.0 is outside the calibrated range \[-80, 80\]"
    ):
        calibration.to_latent("light", 120.0)
    with pytest.raises(ValueError, match="'sideways' is not a known direction"):
        calibration.to_latent("light", "sideways")
    with pytest.raises(ValueError, match="'hair' is not calibrated"):
        calibration.to_latent("hair", 1.0)


@pytest.mark.backend_independent
def test_round_trip(tmp_path):
    calibration = fit_calibration(*_sweeps(), CODE, RANGES)
    calibration.save(tmp_path / "calibration.json")
    again = Calibration.load(tmp_path / "calibration.json")
    assert again.factors == calibration.factors


def test_rerender_takes_degrees_through_the_calibration():
    model = tiny_model()
    factors = {
        f: {
            "group": f,
            "unit": 0,
            "slope": 0.05,
            "intercept": 0.2,
            "range": list(RANGES[f]),
            "r2": 1.0,
        }
        for f in RANGES
    }
    model.calibration = Calibration(factors)
    images = blob_images(2)
    z = keras.ops.convert_to_numpy(model.encode(images).mean)
    z[:, model.code.slice("light")] = 0.05 * -80 + 0.2
    z[:, model.code.slice("azimuth")] = 0.05 * 30 + 0.2
    expected = keras.ops.convert_to_numpy(model.decode(z))
    got = keras.ops.convert_to_numpy(model.rerender(images, light="left", azimuth=30))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    with pytest.raises(ValueError, match="outside the calibrated range"):
        model.rerender(images, elevation=60)
    config = model.get_config()
    assert type(model).from_config(config).calibration.factors == factors


def test_uncalibrated_model_rejects_direction_names():
    with pytest.raises(ValueError, match="has no calibration for light"):
        tiny_model().rerender(blob_images(1), light="left")
