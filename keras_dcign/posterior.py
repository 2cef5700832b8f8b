"""The encoder's posterior: a diagonal Gaussian written in `keras.ops`."""

import math

import keras
from keras import ops

from keras_dcign.extras import require


class DiagonalGaussian:
    """A diagonal Gaussian q(z | x) = N(mean, diag(exp(log_var))).

    Works on every Keras backend. Where TensorFlow Probability is installed
    it hands itself over as a TFP distribution with `to_tfp()`.

    Args:
        mean: tensor of shape `(batch, latent)`.
        log_var: tensor of the same shape, the log-variance.

    Example:

    `DCIGN.encode(images)` returns one; here a standard normal for 2 images
    with a 4-unit code:

    >>> import keras
    >>> from keras_dcign import DiagonalGaussian
    >>> q = DiagonalGaussian(keras.ops.zeros((2, 4)), keras.ops.zeros((2, 4)))
    >>> q
    DiagonalGaussian(shape=(2, 4))
    >>> tuple(q.sample(seed=0).shape)
    (2, 4)
    >>> keras.ops.convert_to_numpy(q.kl_to_standard_normal())  # one value per image
    array([0., 0.], dtype=float32)
    """

    def __init__(self, mean, log_var):
        self.mean = mean
        self.log_var = log_var

    @property
    def stddev(self):
        return ops.exp(0.5 * self.log_var)

    @property
    def variance(self):
        return ops.exp(self.log_var)

    def sample(self, seed=None):
        """A reparameterised sample `mean + stddev * eps`.

        Args:
            seed: an int, a `keras.random.SeedGenerator` or None.
        """
        eps = keras.random.normal(ops.shape(self.mean), dtype=self.mean.dtype, seed=seed)
        return self.mean + self.stddev * eps

    def kl_per_unit(self):
        """KL(q || N(0, I)) for every latent unit, shape `(batch, latent)`."""
        return 0.5 * (ops.square(self.mean) + ops.exp(self.log_var) - 1.0 - self.log_var)

    def kl_to_standard_normal(self):
        """KL(q || N(0, I)) summed over latent units, shape `(batch,)`."""
        return ops.sum(self.kl_per_unit(), axis=-1)

    def log_prob(self, z):
        """log q(z), summed over latent units, shape `(batch,)`."""
        z = ops.convert_to_tensor(z, dtype=self.mean.dtype)
        per_unit = -0.5 * (
            math.log(2.0 * math.pi) + self.log_var + ops.square(z - self.mean) / self.variance
        )
        return ops.sum(per_unit, axis=-1)

    def to_tfp(self):
        """The same distribution as a `tfp.distributions.MultivariateNormalDiag`.

        Needs the `tfp` extra (`pip install keras-dcign[tfp]`) and the
        TensorFlow backend.
        """
        tfp = require("tensorflow_probability", "to_tfp()")
        mean = ops.convert_to_numpy(self.mean)
        stddev = ops.convert_to_numpy(self.stddev)
        return tfp.distributions.MultivariateNormalDiag(loc=mean, scale_diag=stddev)

    def __repr__(self):
        return f"DiagonalGaussian(shape={tuple(ops.shape(self.mean))})"
