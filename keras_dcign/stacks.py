"""The conv stacks around the graphics code: the paper's, and a strided one.

Each stack is two lists of Keras layers, the encoder's (up to the flatten) and the
decoder's (from the code's dense layer to the picture's logits); `DCIGN` builds one of
them around its code, clamp and likelihood.
"""

import itertools
import math

from keras import layers

ARCHITECTURES = ("paper", "strided")
ENCODER_KERNEL = 5
DECODER_KERNEL = 7
# The strided stack: 4x4 stride-2 convolutions (and their transposes), at least three per
# side, one more while the code grid is wider than STRIDED_GRID pixels.
STRIDED_KERNEL = 4
STRIDED_STAGES = 3
STRIDED_GRID = 12


def strided_stages_for(image_size):
    """Stride-2 stages the strided stack uses by default at `image_size`.

    Three (64 px: a grid of 8), plus one more while the grid would be wider
    than 12 px (150 px: four stages, a grid of 10).

    >>> from keras_dcign.stacks import strided_stages_for
    >>> strided_stages_for(64), strided_stages_for(150)
    (3, 4)
    """
    stages = STRIDED_STAGES
    while math.ceil(image_size / 2**stages) > STRIDED_GRID:
        stages += 1
    return stages


def plan_padding(image_size):
    """Per-layer zero-padding that makes the decoder's output `image_size` square.

    Every encoder stage is a 5x5 convolution and a 2x2 max-pool (floor),
    every decoder stage a x2 nearest upsampling and a 7x7 convolution. At
    150 px all convolutions are "valid", exactly as the reference network
    (150 -> 15 -> 150). For other sizes the encoder padding (0-2 px per side)
    is chosen so that the code grid keeps the reference's proportion (a
    tenth of the image side; 6 at 64 px), then the decoder padding (0-3 px
    per side, 3 being "same") so that the output equals the input; ties go
    to the least padding.

    Returns:
        `(encoder_padding, decoder_padding, code_grid)`: tuples of pixels per
        side for the 3 encoder and 4 decoder convolutions, and the side of
        the grid between them.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 16:
        raise ValueError(f"image_size={image_size!r} is not supported; expected an integer >= 16.")
    decoder_options = sorted(itertools.product(range(4), repeat=4), key=lambda p: (sum(p), p))
    plans = []
    for encoder in itertools.product(range(3), repeat=3):
        grid = image_size
        for pad in encoder:
            grid = (grid + 2 * pad - ENCODER_KERNEL + 1) // 2
        if grid < 2:
            continue
        for decoder in decoder_options:
            size = grid
            for pad in decoder:
                size = 2 * size + 2 * pad - DECODER_KERNEL + 1
            if size == image_size:
                score = (abs(grid - image_size / 10), sum(encoder) + sum(decoder), encoder)
                plans.append((score, (encoder, decoder, grid)))
                break
    if not plans:
        raise ValueError(f"image_size={image_size} is not supported: no padding reproduces it.")
    return min(plans)[1]


def paper_stack(image_size, channels, feature_maps, dtype):
    """The reference network's encoder (up to the flatten) and decoder layers."""
    encoder_padding, decoder_padding, grid = plan_padding(image_size)
    maps = (feature_maps, feature_maps // 2, feature_maps // 4)
    encoder = []
    for i, (filters, pad) in enumerate(zip(maps, encoder_padding), start=1):
        if pad:
            encoder.append(layers.ZeroPadding2D(pad, name=f"encoder_pad_{i}", dtype=dtype))
        encoder += [
            layers.Conv2D(filters, ENCODER_KERNEL, name=f"encoder_conv_{i}", dtype=dtype),
            layers.MaxPooling2D(2, name=f"encoder_pool_{i}", dtype=dtype),
            layers.ReLU(name=f"encoder_relu_{i}", dtype=dtype),
        ]
    encoder.append(layers.Flatten(name="encoder_flatten", dtype=dtype))

    decoder = [
        layers.Dense(grid * grid * maps[2], activation="relu", name="decoder_dense", dtype=dtype),
        layers.Reshape((grid, grid, maps[2]), name="decoder_reshape", dtype=dtype),
    ]
    decoder_maps = (feature_maps // 2, feature_maps, feature_maps, channels)
    for i, (filters, pad) in enumerate(zip(decoder_maps, decoder_padding), start=1):
        decoder.append(layers.UpSampling2D(2, name=f"decoder_upsample_{i}", dtype=dtype))
        if pad:
            decoder.append(layers.ZeroPadding2D(pad, name=f"decoder_pad_{i}", dtype=dtype))
        decoder.append(
            layers.Conv2D(
                filters,
                DECODER_KERNEL,
                activation="relu" if i < 4 else None,
                name=f"decoder_conv_{i}",
                dtype=dtype,
            )
        )
    return encoder, decoder


def strided_stack(image_size, channels, feature_maps, stages, dtype):
    """A standard strided conv encoder and transposed-conv decoder around the same code."""
    maps = [feature_maps * 2**i for i in range(stages)]
    grid = math.ceil(image_size / 2**stages)
    encoder = [
        layers.Conv2D(
            filters,
            STRIDED_KERNEL,
            strides=2,
            padding="same",
            activation="relu",
            name=f"encoder_conv_{i}",
            dtype=dtype,
        )
        for i, filters in enumerate(maps, start=1)
    ]
    encoder.append(layers.Flatten(name="encoder_flatten", dtype=dtype))
    decoder = [
        layers.Dense(grid * grid * maps[-1], activation="relu", name="decoder_dense", dtype=dtype),
        layers.Reshape((grid, grid, maps[-1]), name="decoder_reshape", dtype=dtype),
    ]
    decoder_maps = maps[-2::-1] + [channels]
    for i, filters in enumerate(decoder_maps, start=1):
        decoder.append(
            layers.Conv2DTranspose(
                filters,
                STRIDED_KERNEL,
                strides=2,
                padding="same",
                activation="relu" if i < len(decoder_maps) else None,
                name=f"decoder_conv_{i}",
                dtype=dtype,
            )
        )
    excess = grid * 2**stages - image_size
    if excess:
        crop = (excess // 2, excess - excess // 2)
        decoder.append(layers.Cropping2D((crop, crop), name="decoder_crop", dtype=dtype))
    return encoder, decoder
