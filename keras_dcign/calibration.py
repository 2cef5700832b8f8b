"""Calibration: from physical units (degrees) to graphics-code values and back.

After training, each physical factor (azimuth, elevation, light) is swept on
held-out faces; the posterior mean of the factor's latent unit is regressed
on the true angle. The fit lets `model.rerender(images, light=-60)` take
degrees, and names such as `light="left"` resolve to the end of the range.
This module fits and applies a calibration on any sweeps; the generator's sweeps
and `calibrate_on_faces` live in `keras_dcign.evaluation.probes`.
"""

import json
import numbers

import numpy as np

# Below this R² on held-out sweeps a factor's latent does not carry the angle: setting it would
# return the reconstruction unchanged, so the command line refuses such a factor.
MIN_R2 = 0.25
ENTRY_KEYS = ("unit", "slope", "intercept", "range")

# Named directions, in the renderer's sign convention: positive azimuth turns the face to the
# viewer's right, positive light azimuth lights it from the viewer's right, positive elevation
# looks from above.
DIRECTIONS = {
    "azimuth": {"left": "min", "front": 0.0, "right": "max"},
    "elevation": {"down": "min", "level": 0.0, "up": "max"},
    "light": {"left": "min", "front": 0.0, "right": "max"},
}


class Calibration:
    """Linear maps degrees -> latent for the factors of a trained model.

    Args:
        factors: `{factor: {"group", "unit", "slope", "intercept", "range",
            "r2"}}`: the latent is `slope * degrees + intercept` on unit
            `unit` of `group`, valid over `range` (degrees), with the fit's
            coefficient of determination `r2` on held-out sweeps.

    Example:

    A trained preset carries one (`keras_dcign.from_preset(...).calibration`);
    here the light unit is `-0.25 * degrees + 0.5` over [-80, 80] degrees:

    >>> from keras_dcign import Calibration
    >>> calibration = Calibration({"light": {
    ...     "group": "light", "unit": 0, "slope": -0.25, "intercept": 0.5,
    ...     "range": [-80.0, 80.0], "r2": 0.99}})
    >>> float(calibration.to_latent("light", "left"))  # "left" is -80 degrees, the range's end
    20.5
    >>> calibration.to_degrees("light", [20.5, 10.5, -19.5])
    array([-80., -40.,  80.])
    """

    def __init__(self, factors):
        self.factors = {name: dict(entry) for name, entry in factors.items()}

    def __contains__(self, factor):
        return factor in self.factors

    def degrees(self, factor, value):
        """Degrees for a number or a named direction, checked against the range."""
        entry = self._entry(factor)
        low, high = entry["range"]
        if value is None:
            raise ValueError(
                f"{factor}=None is not a value; expected a number of degrees or one of "
                f"{list(DIRECTIONS.get(factor, {}))}."
            )
        if isinstance(value, str):
            names = DIRECTIONS.get(factor, {})
            if value not in names:
                raise ValueError(
                    f"{factor}={value!r} is not a known direction; expected a number of "
                    f"degrees or one of {list(names)}."
                )
            target = names[value]
            return {"min": low, "max": high}.get(target, target)
        degrees = np.asarray(value, dtype="float64")
        if (
            not np.all(np.isfinite(degrees))
            or degrees.min() < low - 1e-6
            or (degrees.max() > high + 1e-6)
        ):
            raise ValueError(
                f"{factor}={value!r} is outside the calibrated range [{low:g}, {high:g}] degrees."
            )
        return degrees

    def to_latent(self, factor, value):
        """The latent value for degrees (or a direction name) of a factor."""
        entry = self._entry(factor)
        return entry["slope"] * self.degrees(factor, value) + entry["intercept"]

    def to_degrees(self, factor, latent):
        """The inverse map: degrees for latent values of a factor's unit."""
        entry = self._entry(factor)
        return (np.asarray(latent, dtype="float64") - entry["intercept"]) / entry["slope"]

    def _entry(self, factor):
        if factor not in self.factors:
            raise ValueError(
                f"Factor {factor!r} is not calibrated; expected one of {list(self.factors)}."
            )
        return self.factors[factor]

    def get_config(self):
        return {"factors": self.factors}

    @classmethod
    def from_config(cls, config):
        return cls(config["factors"])

    def save(self, path, overwrite=False):
        """Writes the calibration as JSON; an existing file only with `overwrite`."""
        from keras_dcign.files import atomic_write, check_output_file

        check_output_file(path, overwrite)
        atomic_write(path, json.dumps(self.get_config(), indent=2))

    def check_readable(self, factor):
        """Refuses a factor whose latent does not carry the angle (R² below `MIN_R2`)."""
        r2 = self._entry(factor).get("r2")
        if r2 is not None and r2 < MIN_R2:
            raise ValueError(
                f"This preset cannot set {factor}: its calibration reads {factor} with "
                f"R² {r2:.2f} (expected at least {MIN_R2}), so the re-render would not change it."
            )

    @classmethod
    def load(cls, path):
        """Reads and validates a `calibration.json`; errors name the file and the bad entry."""
        from keras_dcign.files import read_json_object

        config = read_json_object(path, required=("factors",), what="calibration")
        factors = config["factors"]
        if not isinstance(factors, dict):
            raise ValueError(f"Calibration {path}: 'factors' is not a JSON object.")
        for factor, entry in factors.items():
            problem = _entry_problem(factor, entry)
            if problem:
                raise ValueError(f"Calibration {path}: {problem}.")
        return cls.from_config(config)


def _entry_problem(factor, entry):
    """What is wrong with one factor's calibration entry, or None."""
    if factor not in DIRECTIONS:
        return f"unknown factor {factor!r}; expected some of {list(DIRECTIONS)}"
    if not isinstance(entry, dict):
        return f"{factor!r} is not a JSON object"
    for key in ENTRY_KEYS:
        if key not in entry:
            return f"{factor!r} has no {key!r} entry"
    numbers_ = [entry["slope"], entry["intercept"], *np.ravel(entry["range"])]
    if not all(isinstance(v, numbers.Real) and np.isfinite(v) for v in numbers_):
        return f"{factor!r} has a slope, intercept or range that is not a finite number"
    if entry["slope"] == 0 or len(entry["range"]) != 2 or entry["range"][0] >= entry["range"][1]:
        return f"{factor!r} needs a non-zero slope and a range [low, high] with low < high"
    if not isinstance(entry["unit"], int) or entry["unit"] < 0:
        return f"{factor!r} has unit {entry['unit']!r}; expected an integer >= 0"
    return None


UNIT_SELECTIONS = ("group", "variance")


def fit_calibration(latents, degrees, code, factor_ranges, unit_selection="group", sweeps=None):
    """Fits the linear maps from sweeps.

    Args:
        latents: `{factor: array (n, code.size)}` posterior means of each
            factor's sweep images.
        degrees: `{factor: array (n,)}` the true angles of those images.
        code: the model's `GraphicsCode`.
        factor_ranges: `{factor: (low, high)}` the valid range in degrees.
        unit_selection: `"group"` (DC-IGN: factor `f` lives in group `f`;
            within a group of several units, the unit most correlated with
            the angle is used) or `"variance"` (an entangled model, as the
            paper chose its units: across the whole code, the unit whose
            value varies most within the factor's sweeps).
        sweeps: with `"variance"`, `{factor: array (n,)}` labelling which
            sweep (person) each row belongs to; the variance is taken
            within each sweep and averaged. Default: one sweep.

    Returns:
        A `Calibration`; each entry names the group and the unit within it.
    """
    if unit_selection not in UNIT_SELECTIONS:
        raise ValueError(
            f"unit_selection={unit_selection!r} is not supported; expected one of "
            f"{UNIT_SELECTIONS}."
        )
    factors = {}
    for factor, z in latents.items():
        angle = np.asarray(degrees[factor], dtype="float64")
        z = np.asarray(z, dtype="float64")
        if unit_selection == "group":
            group = factor
            units = z[:, code.slice(factor)]
            correlations = [_correlation(units[:, i], angle) for i in range(units.shape[1])]
            best = int(np.nanargmax(np.abs(correlations)))
        else:
            labels = np.zeros(len(z)) if sweeps is None else np.asarray(sweeps[factor])
            spread = np.mean([z[labels == v].var(axis=0) for v in np.unique(labels)], axis=0)
            unit = int(np.argmax(spread))
            group = code.names[code.group_of_unit()[unit]]
            best = unit - code.slice(group).start
        values = z[:, code.slice(group)][:, best]
        slope, intercept = np.polyfit(angle, values, 1)
        residual = values - (slope * angle + intercept)
        total = np.sum((values - values.mean()) ** 2)
        r2 = 1.0 - np.sum(residual**2) / total if total > 0 else 0.0
        factors[factor] = {
            "group": group,
            "unit": best,
            "slope": float(slope),
            "intercept": float(intercept),
            "range": [float(v) for v in factor_ranges[factor]],
            "r2": float(r2),
        }
    return Calibration(factors)


def _correlation(a, b):
    if np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def encode_means(model, images, batch_size=64):
    """Posterior means of `images` as one float numpy array, in batches."""
    from keras import ops

    means = [
        ops.convert_to_numpy(model.encode(images[i : i + batch_size]).mean)
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(means).astype("float32")
