"""A hand-written PyTorch (eager, NCHW) DC-IGN: the baseline of `train_throughput.py`.

The same network, loss and optimiser as `keras_dcign.DCIGN` with its
defaults, written directly against `torch.nn`: 3 x [5x5 conv, 2x2 max-pool,
ReLU], two linear heads to the graphics code, a linear layer back to the
code grid and 4 x [x2 nearest upsampling, 7x7 conv] (ReLU between). The loss
is the summed Bernoulli cross-entropy plus the KL to N(0, I), averaged over
the batch; latents outside the batch's active group are clamped to the batch
mean and get no gradient (invariance strength 0). Trained with
`torch.optim.Adam` at 5e-4 (epsilon 1e-7, as Keras).

Padding follows `keras_dcign.plan_padding`, so at 150 px every convolution
is "valid" and the network has exactly the reference's 4,131,137 parameters.
"""

import torch
from torch import nn
from torch.nn import functional as F

ENCODER_KERNEL = 5
DECODER_KERNEL = 7


class TorchDCIGN(nn.Module):
    """The DC-IGN network in plain PyTorch.

    Args:
        image_size: side of the square input images.
        channels: image channels.
        feature_maps: maps of the first encoder convolution.
        code_size: units of the graphics code.
        encoder_padding: pixels of zero padding per side of each encoder conv.
        decoder_padding: the same for the four decoder convs.
        grid: side of the grid between encoder and decoder.
    """

    def __init__(
        self,
        image_size=150,
        channels=1,
        feature_maps=96,
        code_size=200,
        encoder_padding=(0, 0, 0),
        decoder_padding=(0, 0, 0, 0),
        grid=15,
    ):
        super().__init__()
        maps = (feature_maps, feature_maps // 2, feature_maps // 4)
        self.grid = grid
        self.code_maps = maps[2]
        self.encoder = nn.ModuleList()
        in_maps = channels
        for filters, pad in zip(maps, encoder_padding):
            self.encoder.append(nn.Conv2d(in_maps, filters, ENCODER_KERNEL, padding=pad))
            in_maps = filters
        self.z_mean = nn.Linear(grid * grid * maps[2], code_size)
        self.z_log_var = nn.Linear(grid * grid * maps[2], code_size)
        self.decoder_dense = nn.Linear(code_size, grid * grid * maps[2])
        self.decoder = nn.ModuleList()
        in_maps = maps[2]
        for filters, pad in zip((maps[1], maps[0], maps[0], channels), decoder_padding):
            self.decoder.append(nn.Conv2d(in_maps, filters, DECODER_KERNEL, padding=pad))
            in_maps = filters

    def encode(self, images):
        x = images
        for conv in self.encoder:
            x = F.relu(F.max_pool2d(conv(x), 2))
        x = torch.flatten(x, 1)
        return self.z_mean(x), self.z_log_var(x)

    def decode_logits(self, z):
        x = F.relu(self.decoder_dense(z)).view(-1, self.code_maps, self.grid, self.grid)
        for i, conv in enumerate(self.decoder):
            x = conv(F.interpolate(x, scale_factor=2, mode="nearest"))
            if i < len(self.decoder) - 1:
                x = F.relu(x)
        return x

    def loss(self, images, active_mask=None):
        """Batch mean of the summed Bernoulli cross-entropy plus the KL to N(0, I).

        Args:
            images: `(batch, channels, H, W)` in [0, 1].
            active_mask: `(code_size,)` with 1 on the batch's active group;
                the other latents are clamped to their batch mean. None
                trains a plain VAE batch.
        """
        mean, log_var = self.encode(images)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        if active_mask is not None:
            anchor = z.mean(dim=0, keepdim=True).detach()
            z = active_mask * z + (1.0 - active_mask) * anchor
        logits = self.decode_logits(z).float()
        reconstruction = F.binary_cross_entropy_with_logits(logits, images, reduction="sum")
        mean, log_var = mean.float(), log_var.float()
        kl = 0.5 * torch.sum(mean.square() + log_var.exp() - 1.0 - log_var)
        return (reconstruction + kl) / images.shape[0]


def build(image_size, feature_maps, channels=1, code_size=200):
    """A `TorchDCIGN` padded like `keras_dcign.DCIGN` at this image size."""
    from keras_dcign.stacks import plan_padding

    encoder_padding, decoder_padding, grid = plan_padding(image_size)
    return TorchDCIGN(
        image_size, channels, feature_maps, code_size, encoder_padding, decoder_padding, grid
    )


def make_train_step(model, learning_rate=5e-4, precision="float32", memory_format="nchw"):
    """A function `step(images, active_mask) -> loss` doing one Adam update.

    Args:
        model: a `TorchDCIGN`.
        learning_rate: Adam's learning rate.
        precision: `"float32"`, or `"bfloat16"` for `torch.autocast("cpu",
            torch.bfloat16)` around the forward pass (weights and optimizer
            stay float32).
        memory_format: `"nchw"` (contiguous) or `"channels_last"` for the
            weights and the images (oneDNN's preferred layout on CPU).
    """
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision={precision!r} is invalid; expected 'float32' or 'bfloat16'.")
    if memory_format not in ("nchw", "channels_last"):
        raise ValueError(
            f"memory_format={memory_format!r} is invalid; expected 'nchw' or 'channels_last'."
        )
    layout = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    model.to(memory_format=layout)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, eps=1e-7)

    def step(images, active_mask=None):
        images = images.contiguous(memory_format=layout)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            loss = model.loss(images, active_mask)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step
