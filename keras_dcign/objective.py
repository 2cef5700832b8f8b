"""The DC-IGN training objective: reconstruction + weighted KL, shared by every trainer."""

from keras import ops

RECONSTRUCTIONS = ("bernoulli", "gaussian")


def reconstruction_loss(images, logits, kind="bernoulli", gaussian_scale=0.1):
    """Per-image reconstruction loss summed over pixels, shape `(batch,)`.

    Args:
        images: targets in [0, 1], shape `(batch, H, W, C)`.
        logits: decoder outputs before the sigmoid, same shape.
        kind: `"bernoulli"` (binary cross-entropy, as the reference) or
            `"gaussian"` (squared error over `2 * gaussian_scale**2`).
        gaussian_scale: the standard deviation of the Gaussian likelihood.
    """
    images = ops.cast(images, "float32")
    logits = ops.cast(logits, "float32")
    if kind == "bernoulli":
        # Stable form of -[x log s(l) + (1 - x) log(1 - s(l))].
        per_pixel = ops.relu(logits) - logits * images + ops.log1p(ops.exp(-ops.abs(logits)))
    elif kind == "gaussian":
        per_pixel = 0.5 * ops.square(images - ops.sigmoid(logits)) / (gaussian_scale**2)
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
