import keras
import numpy as np
import pytest
from helpers import BACKEND, value_and_grad

from keras_dcign import DiagonalGaussian

RNG = np.random.default_rng(0)
MEAN = RNG.normal(size=(5, 7)).astype("float32")
LOG_VAR = RNG.normal(scale=0.5, size=(5, 7)).astype("float32")


def _numpy_kl(mean, log_var):
    return 0.5 * np.sum(mean**2 + np.exp(log_var) - 1 - log_var, axis=-1)


def test_kl_and_log_prob_against_closed_forms():
    q = DiagonalGaussian(keras.ops.convert_to_tensor(MEAN), keras.ops.convert_to_tensor(LOG_VAR))
    kl = keras.ops.convert_to_numpy(q.kl_to_standard_normal())
    np.testing.assert_allclose(kl, _numpy_kl(MEAN, LOG_VAR), rtol=1e-5)
    z = RNG.normal(size=MEAN.shape).astype("float32")
    var = np.exp(LOG_VAR)
    expected = np.sum(-0.5 * (np.log(2 * np.pi * var) + (z - MEAN) ** 2 / var), axis=-1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(q.log_prob(z)), expected, rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(q.stddev), np.exp(LOG_VAR / 2), 1e-6)


def test_sample_statistics_and_reparameterisation():
    mean = np.tile(MEAN[:1], (4000, 1))
    log_var = np.tile(LOG_VAR[:1], (4000, 1))
    q = DiagonalGaussian(keras.ops.convert_to_tensor(mean), keras.ops.convert_to_tensor(log_var))
    z = keras.ops.convert_to_numpy(q.sample(seed=0))
    np.testing.assert_allclose(z.mean(0), MEAN[0], atol=0.1)
    np.testing.assert_allclose(z.std(0), np.exp(LOG_VAR[0] / 2), rtol=0.1)
    _, grad = value_and_grad(
        lambda m: keras.ops.sum(DiagonalGaussian(m, log_var[:5]).sample(seed=1)), mean[:5]
    )
    np.testing.assert_allclose(grad, 1.0)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow Probability needs TensorFlow")
def test_matches_tensorflow_probability():
    tfp = pytest.importorskip("tensorflow_probability")
    q = DiagonalGaussian(keras.ops.convert_to_tensor(MEAN), keras.ops.convert_to_tensor(LOG_VAR))
    reference = tfp.distributions.MultivariateNormalDiag(loc=MEAN, scale_diag=np.exp(LOG_VAR / 2))
    prior = tfp.distributions.MultivariateNormalDiag(loc=np.zeros(7, "float32"))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(q.kl_to_standard_normal()),
        reference.kl_divergence(prior).numpy(),
        rtol=1e-5,
    )
    z = RNG.normal(size=MEAN.shape).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(q.log_prob(z)), reference.log_prob(z).numpy(), rtol=1e-5
    )
    handed_over = q.to_tfp()
    np.testing.assert_allclose(handed_over.log_prob(z).numpy(), reference.log_prob(z).numpy(), 1e-5)
