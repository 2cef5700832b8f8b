"""Analysis by synthesis: fit the face generator's scene to an image, the DC-IGN code serving
as the summary statistic of approximate Bayesian computation.

The paper's second use of the learned code: a summary statistic for fitting a generative model
to an image. The scene is the generator's own parameters (camera azimuth and elevation, light
azimuth, and the person's shape and albedo coefficients); the likelihood of an image under
them is not available, but the generator can draw it. `fit_scene` runs ABC population Monte
Carlo (Beaumont et al., 2009): draw scenes from the prior, render each, keep those whose
statistic lies nearest the observed image's, then propose from a Gaussian kernel around the
kept scenes, weighted by prior over proposal, for a few rounds. The statistic is the encoder's
posterior-mean code (`"code"`), the raw pixels (`"pixels"`), or the calibrated pose and light
readout alone (`"readout"`, which says nothing of the person).

The fitted scene is the generator's, so its picture can be drawn exactly at any pose
(`SceneFit.render`), which no decoder does.
"""

import dataclasses

import numpy as np

STATISTICS = ("code", "pixels", "readout")
ANGLES = ("azimuth", "elevation", "light")


@dataclasses.dataclass
class SceneFit:
    """Weighted posterior samples of a scene and their summaries.

    Attributes:
        samples: `{"azimuth", "elevation", "light"}` arrays `(n,)` in degrees,
            and `"coefficients"` `(n, N_COEFFICIENTS)`.
        weights: importance weights of the samples, summing to 1.
        statistic: the summary statistic used.
        simulations: scenes rendered in all.
        distances: each sample's distance to the observed statistic.
    """

    samples: dict
    weights: np.ndarray
    statistic: str
    simulations: int
    distances: np.ndarray

    def mean(self, name):
        """The posterior mean of an angle (degrees) or of the coefficients."""
        return np.tensordot(self.weights, self.samples[name], axes=1)

    def std(self, name):
        """The posterior standard deviation of an angle, in degrees."""
        values = self.samples[name]
        return float(np.sqrt(np.sum(self.weights * (values - self.mean(name)) ** 2)))

    def estimate(self):
        """Point estimates: `{"azimuth", "elevation", "light"}` in degrees, with `"<angle>_std"`,
        and `"coefficients"` (a list)."""
        result = {}
        for angle in ANGLES:
            result[angle] = float(self.mean(angle))
            result[f"{angle}_std"] = self.std(angle)
        result["coefficients"] = self.mean("coefficients").astype("float32").tolist()
        return result

    def render(self, image_size=64, **angles):
        """The generator's picture of the fitted person, at the fitted angles unless given."""
        from keras_dcign.datasets import faces

        scene = {angle: float(self.mean(angle)) for angle in ANGLES}
        scene.update({k: float(v) for k, v in angles.items()})
        coefficients = self.mean("coefficients").astype("float32")
        return faces.render(coefficients, image_size=image_size, **scene)


def fit_scene(
    model,
    image,
    simulations=2000,
    statistic="code",
    rounds=4,
    keep=0.1,
    seed=0,
):
    """Fits the face generator's scene to one image by ABC population Monte Carlo.

    Args:
        model: a calibrated `DCIGN` (a preset); its encoder gives the
            `"code"` and `"readout"` statistics, its image size the
            renders' size.
        image: one float image `(H, W, C)` in [0, 1] at the model's size.
        simulations: scenes rendered in all, split evenly over the rounds.
        statistic: `"code"`, `"pixels"` or `"readout"`.
        rounds: population rounds (the first draws from the prior).
        keep: fraction of each round's simulations kept as its population.
        seed: seed of every draw.

    Returns:
        A `SceneFit`.

    Example:

    >>> from keras_dcign.datasets import faces
    >>> from keras_dcign.inference import fit_scene
    >>> model = keras_dcign.from_preset("faces_64")
    >>> image = faces.render(9001, azimuth=30.0, image_size=64)[..., None]
    >>> fit = fit_scene(model, image, simulations=400, rounds=2)
    >>> sorted(fit.estimate())[:3], fit.simulations
    (['azimuth', 'azimuth_std', 'coefficients'], 400)
    """
    from keras_dcign.datasets import faces

    if statistic not in STATISTICS:
        raise ValueError(f"statistic={statistic!r} is invalid; expected one of {STATISTICS}.")
    if statistic == "readout" and getattr(model, "calibration", None) is None:
        raise ValueError("statistic='readout' needs a calibrated model; expected a preset.")
    rounds = int(rounds)
    per_round = int(simulations) // max(rounds, 1)
    kept = int(round(per_round * float(keep)))
    if rounds < 1 or kept < 2:
        raise ValueError(
            f"simulations={simulations!r}, rounds={rounds!r}, keep={keep!r} keep {kept} scenes "
            "a round; expected at least 2 (more simulations, fewer rounds or a larger keep)."
        )
    image = _check_image(model, image)
    prior = _Prior(faces)
    measure = _Statistic(model, statistic, image, prior)
    rng = np.random.default_rng(seed)

    # Two stages, half the rounds each: the pose and light first, the person held at the
    # mean face; then the person, each scene keeping a pose and light of the first stage's
    # population. Searching all 52 parameters at once, the 49 coefficients' mismatch
    # drowned the angles' signal and the fits did not improve with more simulations.
    first = max(rounds // 2, 1)
    angles = np.arange(prior.size) < 3
    theta = prior.sample(per_round, rng)
    theta[:, 3:] = 0.0
    population, weights, distance = _abc_pmc(theta, angles, first, measure, prior, kept, rng)
    if rounds > first:
        theta = prior.sample(per_round, rng)
        theta[:, :3] = population[rng.choice(len(population), size=per_round, p=weights), :3]
        population, weights, distance = _abc_pmc(
            theta, ~angles, rounds - first, measure, prior, kept, rng
        )
    samples = prior.split(population)
    return SceneFit(samples, weights, statistic, per_round * rounds, distance)


def _abc_pmc(theta, free, rounds, measure, prior, kept, rng):
    """ABC population Monte Carlo from the scenes `theta` (drawn from the prior over the `free`
    parameters): `rounds` rounds, each keeping the `kept` nearest, proposing the next from a
    Gaussian kernel around them over the free parameters, weighted by prior over proposal."""
    per_round = len(theta)
    distance = measure.distance(theta)
    weights = np.full(per_round, 1.0 / per_round)
    population, weights, distance = _nearest(theta, weights, distance, kept)
    for _ in range(rounds - 1):
        # A kernel of twice the population's weighted variance (Beaumont et al.).
        mean = weights @ population
        scale = np.sqrt(2.0 * (weights @ (population - mean) ** 2))[free] + 1e-6
        parents = rng.choice(len(population), size=per_round, p=weights)
        proposal = population[parents].copy()
        proposal[:, free] += rng.normal(size=(per_round, int(free.sum()))) * scale
        proposal = prior.clip(proposal)
        offsets = (proposal[:, None, free] - population[None, :, free]) / scale
        kernel = np.exp(-0.5 * np.sum(offsets**2, axis=-1))
        prior_density = np.exp(prior.log_density(proposal)) if not free[0] else 1.0
        new_weights = prior_density / np.maximum(kernel @ weights, 1e-300)
        new_distance = measure.distance(proposal)
        population, weights, distance = _nearest(proposal, new_weights, new_distance, kept)
    return population, weights, distance


def _nearest(theta, weights, distance, kept):
    order = np.argsort(distance)[:kept]
    chosen = weights[order]
    return theta[order], chosen / chosen.sum(), distance[order]


def _check_image(model, image):
    array = np.asarray(image, dtype="float32")
    if array.ndim == 2:
        array = array[..., None]
    want = (model.image_size, model.image_size, model.channels)
    if array.shape != want:
        raise ValueError(f"image has shape {array.shape}; expected {want}, the model's input.")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise ValueError("image holds values outside [0, 1]; expected a float image in [0, 1].")
    return array


class _Prior:
    """The generator's prior: uniform angles over its ranges, N(0, I) coefficients clipped to
    +-3 (as the generator draws people). A scene is one row: three angles, then coefficients."""

    def __init__(self, faces):
        ranges = (faces.AZIMUTH_RANGE, faces.ELEVATION_RANGE, faces.LIGHT_RANGE)
        self.low = np.array([low for low, _ in ranges], dtype="float64")
        self.high = np.array([high for _, high in ranges], dtype="float64")
        self.size = 3 + faces.N_COEFFICIENTS

    def sample(self, n, rng):
        angles = rng.uniform(self.low, self.high, size=(n, 3))
        coefficients = np.clip(rng.normal(size=(n, self.size - 3)), -3.0, 3.0)
        return np.concatenate([angles, coefficients], axis=1)

    def clip(self, theta):
        theta = theta.copy()
        theta[:, :3] = np.clip(theta[:, :3], self.low, self.high)
        theta[:, 3:] = np.clip(theta[:, 3:], -3.0, 3.0)
        return theta

    def log_density(self, theta):
        """Up to a constant: the angles are uniform, the coefficients standard normal."""
        return -0.5 * np.sum(theta[:, 3:] ** 2, axis=1)

    def split(self, theta):
        samples = {angle: theta[:, k] for k, angle in enumerate(ANGLES)}
        samples["coefficients"] = theta[:, 3:].astype("float32")
        return samples


class _Statistic:
    """Renders scenes and measures each one's distance to the observed image's statistic.

    The code is compared as it is: its units are in the prior's units, and the units the
    encoder leaves unused stay near 0 for every image. Pixels are compared as they are, and
    the readout's angles in units of each angle's range.
    """

    def __init__(self, model, statistic, image, prior):
        self.model, self.statistic, self.prior = model, statistic, prior
        self.observed = self.values(image[None])[0]

    def values(self, images):
        from keras_dcign.calibration import encode_means

        if self.statistic == "pixels":
            return images.reshape(len(images), -1)
        codes = encode_means(self.model, images)
        if self.statistic == "code":
            return codes
        calibration, code = self.model.calibration, self.model.code
        columns = []
        for angle in ANGLES:
            entry = calibration.factors[angle]
            unit = code.slice(entry.get("group", angle)).start + int(entry["unit"])
            columns.append(calibration.to_degrees(angle, codes[:, unit]))
        return np.stack(columns, axis=1) / (self.prior.high - self.prior.low)

    def distance(self, theta):
        from keras_dcign.evaluation.probes import render_for

        scene = dict(zip(ANGLES, theta[:, :3].T))
        values = self.values(render_for(self.model, theta[:, 3:].astype("float32"), **scene))
        return np.sqrt(np.sum((values - self.observed) ** 2, axis=1))
