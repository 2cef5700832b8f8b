"""Disentanglement scores on synthetic codes whose answers are known.

Three factors with ten values each are encoded three ways: "factorised" (one code dimension
per factor, plus two near-constant dimensions), "rotated" (the same code turned so that every
factor spreads over all three dimensions) and "noise" (Gaussian noise unrelated to the
factors). Each score must rank them as its definition says; the bounds leave a wide margin
around the values measured on this data.
"""

import sys
import warnings

import numpy as np
import pytest

from keras_dcign.evaluation import scores

pytestmark = pytest.mark.backend_independent

NUM_FACTORS = 3
NUM_VALUES = 10
CHANCE = 1 / NUM_FACTORS

# A 180-degree turn about the diagonal (1, 1, 1): orthogonal with determinant +1, and every
# factor lands on all three dimensions (weights -1/3, 2/3, 2/3), so no dimension owns a factor.
ROTATION = 2 / 3 * np.ones((3, 3)) - np.eye(3)


def sample_factors(n, rng):
    return rng.integers(0, NUM_VALUES, size=(n, NUM_FACTORS))


def factorised(factors, rng):
    signal = factors / (NUM_VALUES - 1) + 0.01 * rng.standard_normal(factors.shape)
    collapsed = 0.01 * rng.standard_normal((len(factors), 2))
    return np.concatenate([signal, collapsed], axis=1)


def rotated(factors, rng):
    codes = factorised(factors, rng)
    codes[:, :3] = codes[:, :3] @ ROTATION.T
    return codes


def noise(factors, rng):
    return rng.standard_normal((len(factors), 5))


ENCODERS = {"factorised": factorised, "rotated": rotated, "noise": noise}


def sample_fixed_for(encode):
    """Codes of a batch sharing one value of factor k, the other factors random."""

    def sample_fixed(k, batch_size, rng):
        factors = sample_factors(batch_size, rng)
        factors[:, k] = rng.integers(NUM_VALUES)
        return encode(factors, rng)

    return sample_fixed


def sample_pair_for(encode):
    """Two batches of codes whose paired rows agree on factor k."""

    def sample_pair(k, batch_size, rng):
        first, second = sample_factors(batch_size, rng), sample_factors(batch_size, rng)
        second[:, k] = first[:, k]
        return encode(first, rng), encode(second, rng)

    return sample_pair


@pytest.fixture(scope="module")
def dataset():
    """Train and test factors and their codes under each encoder."""
    rng = np.random.default_rng(0)
    factors_train, factors_test = sample_factors(1000, rng), sample_factors(500, rng)
    codes = {
        name: (encode(factors_train, rng), encode(factors_test, rng))
        for name, encode in ENCODERS.items()
    }
    return factors_train, factors_test, codes


@pytest.fixture(scope="module")
def dci_scores(dataset):
    factors_train, factors_test, codes = dataset
    return {
        name: scores.dci(train, factors_train, test, factors_test, n_estimators=20)
        for name, (train, test) in codes.items()
    }


def test_rotation_mixes_every_factor():
    np.testing.assert_allclose(ROTATION @ ROTATION.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(ROTATION) == pytest.approx(1.0)
    assert np.all(np.abs(ROTATION) > 0.3)


def test_discretize_gives_equal_width_bins():
    column = np.linspace(0.0, 1.0, 100)
    codes = np.stack([column, 10 * column[::-1] - 3], axis=1)
    discrete = scores.discretize(codes, num_bins=4)
    assert discrete.shape == codes.shape
    assert np.issubdtype(discrete.dtype, np.integer)
    assert discrete.min() == 1 and discrete.max() == 4
    for j in range(2):
        assert np.bincount(discrete[:, j], minlength=5)[1:].tolist() == [25, 25, 25, 25]
    assert discrete[-1, 0] == 4 and discrete[0, 1] == 4
    np.testing.assert_array_equal(scores.discretize(column, num_bins=4), discrete[:, 0])


def test_mutual_info_matrix_of_a_copy_is_the_entropy(dataset):
    factors = dataset[0]
    info = scores.mutual_info_matrix(factors, factors)
    assert info.shape == (NUM_FACTORS, NUM_FACTORS)
    entropy = np.log(NUM_VALUES)  # nats, for uniform factors
    np.testing.assert_allclose(np.diag(info), entropy, rtol=0.02)
    assert np.all(info[~np.eye(NUM_FACTORS, dtype=bool)] < 0.05 * entropy)


@pytest.mark.parametrize(
    "name, low, high",
    [("factorised", 0.8, 1.0), ("rotated", 0.0, 0.15), ("noise", 0.0, 0.05)],
)
def test_mig(dataset, name, low, high):
    factors, codes = dataset[0], dataset[2][name][0]
    result = scores.mig(codes, factors)
    assert type(result["mig"]) is float
    assert result["per_factor"].shape == (NUM_FACTORS,)
    assert low <= result["mig"] <= high
    assert result["mig"] == pytest.approx(result["per_factor"].mean())


def test_mig_is_zero_for_a_factor_held_by_two_dimensions(dataset):
    factors = dataset[0].astype(float)
    codes = np.concatenate([factors[:, :1], factors], axis=1)  # factor 0 twice
    per_factor = scores.mig(codes, factors)["per_factor"]
    assert per_factor[0] == pytest.approx(0.0, abs=1e-9)
    assert np.all(per_factor[1:] > 0.9)


def test_mig_discretises_continuous_factors():
    rng = np.random.default_rng(1)
    factors = rng.uniform(-1.0, 1.0, size=(1000, 2))
    codes = np.concatenate([3.0 * factors + 1.0, rng.normal(size=(1000, 1))], axis=1)
    assert scores.mig(codes, factors)["mig"] > 0.9
    assert scores.mig(codes[:, ::-1], factors[:, ::-1])["mig"] > 0.9


@pytest.mark.parametrize(
    "name, low, high, active",
    [("factorised", 0.95, 1.0, 3), ("noise", 0.0, CHANCE + 0.2, 5)],
)
def test_factorvae_score(dataset, name, low, high, active):
    result = scores.factorvae_score(
        sample_fixed_for(ENCODERS[name]),
        NUM_FACTORS,
        global_codes=dataset[2][name][0],
        num_train=300,
        num_eval=200,
    )
    assert low <= result["eval_accuracy"] <= high
    assert type(result["eval_accuracy"]) is float and type(result["train_accuracy"]) is float
    assert result["num_active_dims"] == active  # the two collapsed dimensions are pruned


def test_factorvae_score_is_zero_when_every_dimension_collapsed(dataset):
    collapsed = 1e-3 * dataset[2]["noise"][0]
    result = scores.factorvae_score(
        sample_fixed_for(noise), NUM_FACTORS, global_codes=collapsed, num_train=5, num_eval=5
    )
    assert result == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}


def test_factorvae_score_checks_the_sampler_shape(dataset):
    with pytest.raises(ValueError, match=r"sample_fixed returned shape \(64, 4\)"):
        scores.factorvae_score(
            lambda k, batch_size, rng: np.zeros((batch_size, 4)),
            NUM_FACTORS,
            global_codes=dataset[2]["noise"][0],
        )


@pytest.mark.parametrize(
    "name, low, high", [("factorised", 0.95, 1.0), ("noise", 0.0, CHANCE + 0.2)]
)
def test_betavae_score(name, low, high):
    result = scores.betavae_score(
        sample_pair_for(ENCODERS[name]), NUM_FACTORS, num_train=300, num_eval=200
    )
    assert low <= result["eval_accuracy"] <= high
    assert type(result["train_accuracy"]) is float


def test_dci_factorised(dci_scores):
    result = dci_scores["factorised"]
    assert result["disentanglement"] >= 0.8
    assert result["completeness"] >= 0.8
    assert result["informativeness_test"] >= 0.9
    assert all(type(value) is float for value in result.values())


def test_dci_rotated_is_entangled(dci_scores):
    assert dci_scores["rotated"]["disentanglement"] <= 0.3
    assert (
        dci_scores["rotated"]["disentanglement"] < dci_scores["factorised"]["disentanglement"] - 0.5
    )


def test_dci_noise(dci_scores):
    assert dci_scores["noise"]["disentanglement"] <= 0.2
    assert dci_scores["noise"]["informativeness_test"] <= 1 / NUM_VALUES + 0.1


def test_dci_lasso(dataset):
    factors_train, factors_test, codes = dataset
    results = {
        name: scores.dci(train[:500], factors_train[:500], test, factors_test, model="lasso")
        for name, (train, test) in codes.items()
        if name != "noise"
    }
    assert results["factorised"]["disentanglement"] >= 0.8
    assert results["factorised"]["informativeness_test"] >= 0.9
    assert results["rotated"]["disentanglement"] <= 0.3


def test_verification_auc_separates_identities():
    rng = np.random.default_rng(2)
    identities = np.repeat(np.arange(20), 5)
    embeddings = np.eye(20)[identities] + 0.05 * rng.standard_normal((100, 20))
    assert scores.verification_auc(embeddings, identities) >= 0.99


def test_verification_auc_is_chance_for_random_embeddings():
    # Two rows per identity and no structure: a row paired with itself (cosine 1) would push
    # the AUC well above 0.5.
    rng = np.random.default_rng(3)
    identities = np.concatenate([np.repeat(np.arange(40), 2), np.arange(40, 60)])
    embeddings = rng.standard_normal((len(identities), 8))
    auc = scores.verification_auc(rng.permutation(embeddings), rng.permutation(identities))
    assert type(auc) is float
    assert abs(auc - 0.5) <= 0.05


def test_verification_auc_needs_a_repeated_identity():
    with pytest.raises(ValueError, match="identities has 10 identities"):
        scores.verification_auc(np.ones((10, 3)), np.arange(10))


def test_correlations_of_linear_and_monotone_relations():
    values = np.linspace(-60.0, 60.0, 41)
    linear = scores.correlations(values, 0.02 * values - 0.5)
    assert linear["pearson"] == pytest.approx(1.0)
    assert linear["spearman"] == pytest.approx(1.0)
    assert scores.correlations(values, -values)["pearson"] == pytest.approx(-1.0)
    monotone = scores.correlations(values, np.exp(values / 10.0))
    assert monotone["spearman"] == pytest.approx(1.0)
    assert monotone["pearson"] < 0.9


def test_correlations_of_constant_input_are_zero():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = scores.correlations(np.arange(5.0), np.full(5, 2.0))
    assert result == {"pearson": 0.0, "spearman": 0.0}
    assert all(type(value) is float for value in result.values())


def test_errors_name_the_bad_value(dataset):
    factors, codes = dataset[0], dataset[2]["factorised"][0]
    with pytest.raises(ValueError, match="codes has 999 rows but factors has 1000"):
        scores.mig(codes[:-1], factors)
    with pytest.raises(ValueError, match="num_bins=1"):
        scores.mig(codes, factors, num_bins=1)
    with pytest.raises(ValueError, match="num_bins=1"):
        scores.discretize(codes, num_bins=1)
    with pytest.raises(ValueError, match=r"codes has shape \(1000,\)"):
        scores.mig(codes[:, 0], factors)
    with pytest.raises(ValueError, match="model='forest'"):
        scores.dci(codes, factors, codes, factors, model="forest")
    with pytest.raises(ValueError, match="codes_test has 500 rows but factors_test has 1000"):
        scores.dci(codes, factors, codes[:500], factors)
    with pytest.raises(ValueError, match="values has 3 entries but latents has 4"):
        scores.correlations(np.arange(3.0), np.arange(4.0))


def test_missing_scikit_learn_says_how_to_install(monkeypatch, dataset):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(
        ImportError, match=r"mig needs scikit-learn: pip install 'keras-dcign\[eval\]'"
    ):
        scores.mig(dataset[2]["factorised"][0], dataset[0])
