"""The DC-IGN training objective: reconstruction + weighted KL, shared by every trainer."""

import math

from keras import ops

RECONSTRUCTIONS = ("bernoulli", "gaussian")
# `gaussian_scale` values other than a fixed positive number.
GAUSSIAN_SCALES = ("learned", "analytic")
# Lower bound of a learned log sigma (sigma >= e^-6 ~ 0.0025): keeps the likelihood finite.
MIN_LOG_SCALE = -6.0
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def soft_clip_log_scale(raw):
    """`raw` softly bounded below by `MIN_LOG_SCALE` (smooth, so its gradient never dies)."""
    return MIN_LOG_SCALE + ops.softplus(ops.cast(raw, "float32") - MIN_LOG_SCALE)


def reconstruction_loss(images, logits, kind="bernoulli", gaussian_scale=0.1):
    """Per-image reconstruction loss summed over pixels, shape `(batch,)`.

    Args:
        images: targets in [0, 1], shape `(batch, H, W, C)`.
        logits: decoder outputs before the sigmoid, same shape.
        kind: `"bernoulli"` (binary cross-entropy, as the reference) or
            `"gaussian"` (the negative log-likelihood of a Gaussian around the
            decoder's image).
        gaussian_scale: the Gaussian's standard deviation: a positive number
            (squared error over `2 * scale**2`, constants dropped, as a fixed
            weight), a log-sigma tensor (a learned shared scale; the full
            negative log-likelihood, so the scale is calibrated by it), or
            `"analytic"` (the batch's own mean squared error as sigma², the
            optimal shared scale of the batch: sigma-VAE, Rybkin et al. 2021).
    """
    images = ops.cast(images, "float32")
    logits = ops.cast(logits, "float32")
    if kind == "bernoulli":
        # Stable form of -[x log s(l) + (1 - x) log(1 - s(l))].
        per_pixel = ops.relu(logits) - logits * images + ops.log1p(ops.exp(-ops.abs(logits)))
    elif kind == "gaussian":
        squared = ops.square(images - ops.sigmoid(logits))
        if isinstance(gaussian_scale, str):
            if gaussian_scale != "analytic":
                raise ValueError(
                    f"gaussian_scale={gaussian_scale!r} is not supported here; expected a "
                    "positive number, a log-sigma tensor or 'analytic'."
                )
            floor = math.exp(2 * MIN_LOG_SCALE)
            variance = ops.stop_gradient(ops.maximum(ops.mean(squared), floor))
            per_pixel = 0.5 * squared / variance + 0.5 * ops.log(variance) + _HALF_LOG_2PI
        elif isinstance(gaussian_scale, (int, float)):
            per_pixel = 0.5 * squared / (gaussian_scale**2)
        else:
            log_scale = ops.cast(gaussian_scale, "float32")
            per_pixel = 0.5 * squared * ops.exp(-2.0 * log_scale) + log_scale + _HALF_LOG_2PI
    else:
        raise ValueError(
            f"reconstruction={kind!r} is not supported; expected one of {RECONSTRUCTIONS}."
        )
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)


def kl_by_group(posterior, code):
    """KL(q || N(0, I)) of each graphics-code group, `{name: (batch,)}`."""
    kl_units = ops.cast(posterior.kl_per_unit(), "float32")
    return {name: ops.sum(kl_units[:, code.slice(name)], axis=-1) for name in code.names}


def dcign_objective(images, logits, posterior, code, kind, gaussian_scale, kl_weight):
    """The loss to minimise and the terms to log.

    Returns:
        `(loss, terms)`: the batch-mean of reconstruction + `kl_weight` * KL,
        and a dict of scalars `reconstruction`, `kl` and `kl_<group>`.
    """
    reconstruction = ops.mean(reconstruction_loss(images, logits, kind, gaussian_scale))
    kl_groups = {name: ops.mean(value) for name, value in kl_by_group(posterior, code).items()}
    kl = sum(kl_groups.values())
    loss = reconstruction + kl_weight * kl
    terms = {"reconstruction": reconstruction, "kl": kl}
    terms.update({f"kl_{name}": value for name, value in kl_groups.items()})
    return loss, terms
