"""Image files: read any image Pillow opens, re-render it with new pose, light or identity,
and write the result.

Every command reads its input image once (`read_image`, so a pipe such as `/dev/stdin` works)
and checks its arguments and output paths before the model is loaded.
"""

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from keras_dcign.extras import require
from keras_dcign.files import atomic_write, image_mark

FACTORS = ("azimuth", "elevation", "light")
# The gray weights of the reference data (gray = 0.21 R + 0.72 G + 0.07 B).
GRAY_WEIGHTS = np.array([0.21, 0.72, 0.07], dtype="float32")
# An input smaller than the smallest model is noise once upscaled: refuse it rather than guess.
MIN_SIDE = 16
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def read_image(path):
    """Reads an image file once as float32 `(H, W, C)` in [0, 1], C = 1 (gray) or 3 (colour).

    Every mode Pillow opens is mapped by its own range: 1- and 8-bit modes
    over 255, 16-bit gray (`I;16*`, and `I` within 0..65535) over 65535,
    float (`F`) only when it already lies in [0, 1]. The picture is read as a
    viewer shows it: turned upright by its EXIF orientation, and a transparent
    picture composited over black, the generated faces' background.

    Args:
        path: an image file (PNG, JPEG, TIFF, ...) or a pipe such as `/dev/stdin`.

    Raises:
        ValueError: the file is missing or unreadable, too large for Pillow's
            decompression-bomb limit, in a mode that cannot be mapped to
            [0, 1], holds NaN, or is smaller than `MIN_SIDE` pixels.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"Input image {path} does not exist.") from None
    except OSError as error:
        raise ValueError(f"Cannot read image {path}: {error.strerror or error}.") from None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            pixels = _to_unit_range(path, ImageOps.exif_transpose(image))
    except Image.DecompressionBombError:
        raise ValueError(
            f"Image {path} is too large: more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels "
            "(Pillow's decompression-bomb limit); expected a photograph-sized image."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise ValueError(
            f"Cannot read image {path}: expected an image file such as PNG or JPEG."
        ) from None
    height, width = pixels.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ValueError(
            f"Image {path} is {width}×{height} pixels; expected at least {MIN_SIDE}×{MIN_SIDE}."
        )
    return pixels


def _to_unit_range(path, image):
    """The pixels of an opened image as float32 `(H, W, 1|3)` in [0, 1], by its mode's range."""
    mode = image.mode
    if mode in _SIXTEEN_BIT:
        return (np.asarray(image, dtype="float32") / 65535.0)[..., None]
    if mode in ("I", "F"):
        values = np.asarray(image, dtype="float64")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"Image {path} holds NaN or infinite pixels; expected finite values.")
        low, high = (0.0, 1.0) if mode == "F" else (0.0, 65535.0)
        if values.min() < low or values.max() > high:
            raise ValueError(
                f"Image {path} (Pillow mode {mode}) holds values from {values.min():g} to "
                f"{values.max():g}; expected {low:g} to {high:g}."
            )
        return (values / high).astype("float32")[..., None]
    gray = mode in ("1", "L", "LA", "La") or (mode in ("P", "PA") and _gray_palette(image))
    if "A" in image.getbands() or "transparency" in image.info:
        # Over black: colour times alpha.
        layers = np.asarray(image.convert("LA" if gray else "RGBA"), dtype="float32") / 255.0
        pixels = layers[..., :-1] * layers[..., -1:]
        return pixels
    try:
        converted = image.convert("L" if gray else "RGB")
    except ValueError:
        raise ValueError(
            f"Image {path} has Pillow mode {mode!r}, which cannot be mapped to gray or RGB."
        ) from None
    pixels = np.asarray(converted, dtype="float32") / 255.0
    return pixels[..., None] if gray else pixels


def _gray_palette(image):
    colours = np.asarray(image.getpalette() or [], dtype="int32").reshape(-1, 3)
    return bool(np.all(colours == colours[:, :1]))


def load_image(path, image_size, channels=1, crop="center"):
    """Reads an image file as float32 `(image_size, image_size, channels)` in [0, 1].

    Args:
        path: an image file (see `read_image`; RGB is converted to gray
            with 0.21 R + 0.72 G + 0.07 B, the weights of the reference data).
        image_size: the model's input side.
        channels: 1 or 3.
        crop: as for `to_model_input`.
    """
    return to_model_input(read_image(path), image_size, channels, crop)


def to_model_input(pixels, image_size, channels=1, crop="center"):
    """Crops and resizes pixels from `read_image` to a model's input.

    Args:
        pixels: float32 `(H, W, 1|3)` in [0, 1].
        image_size: the model's input side.
        channels: 1 or 3.
        crop: `"center"` (largest centred square), `"auto"` (find the face
            with OpenCV's frontal-face detector, falling back to the centre
            with a warning) or `"none"` (resize the whole image).
    """
    if crop not in ("center", "auto", "none"):
        raise ValueError(f"crop={crop!r} is not supported; expected 'center', 'auto' or 'none'.")
    planes = [
        Image.fromarray(np.ascontiguousarray(plane, dtype="float32"))
        for plane in np.moveaxis(pixels, -1, 0)
    ]
    if crop != "none":
        box = None
        if crop == "auto":
            box = _face_box(Image.fromarray(np.round(_gray(pixels)[..., 0] * 255).astype("uint8")))
        box = box or _centre_box(planes[0])
        planes = [plane.crop(box) for plane in planes]
    size = (image_size, image_size)
    resized = np.stack(
        [np.asarray(p.resize(size, Image.Resampling.LANCZOS)) for p in planes], axis=-1
    )
    if channels == 1:
        resized = _gray(resized)
    elif resized.shape[-1] == 1:
        resized = np.repeat(resized, channels, axis=-1)
    return np.clip(resized, 0.0, 1.0).astype("float32")


def _gray(pixels):
    """`(H, W, 1)` gray from gray or RGB pixels."""
    return pixels if pixels.shape[-1] == 1 else (pixels @ GRAY_WEIGHTS)[..., None]


def _centre_box(image):
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return (left, top, left + side, top + side)


def _face_box(image, margin=0.35):
    import warnings

    try:
        cv2 = require("cv2", "--crop auto")
    except ImportError as error:
        warnings.warn(f"{error}; using a centre crop.", stacklevel=3)
        return None
    gray = np.asarray(image.convert("L"))
    detector = cv2.CascadeClassifier(
        os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
    )
    faces = detector.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5)
    if len(faces) == 0:
        warnings.warn("No face found; using a centre crop.", stacklevel=3)
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    side = int(max(w, h) * (1 + 2 * margin))
    cx, cy = x + w // 2, y + h // 2
    width, height = image.size
    side = min(side, width, height)
    left = int(np.clip(cx - side // 2, 0, width - side))
    top = int(np.clip(cy - side // 2, 0, height - side))
    return (left, top, left + side, top + side)


def save_image(pixels, path):
    """Writes a float image in [0, 1] (H, W[, C]) atomically; the format follows the suffix.

    The image carries the package's mark (`keras_dcign.files.image_mark`), so a
    later command may replace it.
    """
    path = Path(path)
    pixels = np.asarray(pixels, dtype="float32")
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    image = Image.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype("uint8"))
    kind = image_format(path)
    atomic_write(path, lambda handle: image.save(handle, kind, **image_mark(kind)))
    return path


def image_format(path):
    """Pillow's format for an output image path, by its suffix (a one-line error otherwise)."""
    path = Path(path)
    suffix = path.suffix.lower()
    formats = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF"}
    if suffix not in formats:
        raise ValueError(f"Output {path} has suffix {suffix!r}; expected .png, .jpg or .gif.")
    return formats[suffix]


def parse_factor(value):
    """A CLI value: a number of degrees or a direction name."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


def rerender_outputs(
    input_path,
    changes,
    out=None,
    compare=False,
    identity_from=None,
    overwrite=False,
    shape_from=None,
    texture_from=None,
):
    """The paths a re-render writes, checked before any work is done.

    Args:
        input_path: the image read.
        changes: `{factor: value}`, at least one unless an image lends a part.
        out: the output path (default: `<input>_<changes>.png` beside it).
        compare: also `<out>_compare.png`.
        identity_from: the image whose identity the re-render takes, if any.
        overwrite: replace existing files this package did not write.
        shape_from, texture_from: the images whose shape or texture code the
            re-render takes, if any.

    Returns:
        The list of paths to write.

    Raises:
        ValueError: nothing to change, an unknown suffix, an output that is an
            input, or one that would replace a file this package did not write
            (`keras_dcign.files.check_output_file`).
    """
    from keras_dcign.files import check_distinct, check_output_file, check_writable

    donors = {"identity": identity_from, "shape": shape_from, "texture": texture_from}
    donors = {part: Path(path) for part, path in donors.items() if path is not None}
    if not changes and not donors:
        raise ValueError(
            "Nothing to change; expected at least one of --light, --azimuth, --elevation, "
            "--identity-from, --shape-from, --texture-from."
        )
    input_path = Path(input_path)
    out_named = out is not None
    if out is None:
        tags = [f"{k}-{v:g}" if isinstance(v, float) else f"{k}-{v}" for k, v in changes.items()]
        tags += [f"{part}-{path.stem}" for part, path in donors.items()]
        out = input_path.with_name(f"{input_path.stem}_{'_'.join(tags)}.png")
    out = Path(out)
    image_format(out)
    paths = [out] + ([out.with_name(f"{out.stem}_compare.png")] if compare else [])
    check_distinct(paths, [input_path, *donors.values()])
    for index, path in enumerate(paths):
        check_output_file(path, overwrite, named=index == 0 and out_named)
    check_writable(paths)
    return paths


def traverse_outputs(input_path, factor, out=None, direction=None, overwrite=False):
    """The GIF and PNG grid a traversal writes, checked like `rerender_outputs`."""
    from keras_dcign.files import check_distinct, check_output_file, check_writable

    input_path = Path(input_path)
    tag = factor if direction is None else f"{factor}-{direction}"
    gif = Path(out) if out else input_path.with_name(f"{input_path.stem}_{tag}_sweep.gif")
    if gif.suffix.lower() != ".gif":
        raise ValueError(f"Output {gif} has suffix {gif.suffix!r}; expected .gif.")
    paths = [gif, gif.with_suffix(".png")]
    check_distinct(paths, [input_path])
    check_output_file(gif, overwrite, named=out is not None)
    check_output_file(paths[1], overwrite, named=False)
    check_writable(paths)
    return paths


def check_factors(calibration, changes):
    """Checks factor values against a calibration (or its absence) before rendering.

    Args:
        calibration: a `Calibration`, or None for a model that takes latent values.
        changes: `{factor: value}`: degrees, a direction name, or a latent value.

    Raises:
        ValueError: an unknown factor, a name or `None` for an uncalibrated
            factor, a factor the calibration cannot read (low R²), or a value
            outside the calibrated range.
    """
    for name, value in changes.items():
        if name not in FACTORS:
            raise ValueError(f"Unknown factor {name!r}; expected one of {FACTORS}.")
        if calibration is None or name not in calibration:
            if not isinstance(value, (int, float)):
                raise ValueError(
                    f"{name}={value!r}: this model has no calibration for {name}, so it takes a "
                    "latent value (a number), not a direction name or degrees."
                )
            continue
        calibration.check_readable(name)
        calibration.degrees(name, value)


def rerender_file(
    model,
    input_path,
    out=None,
    compare=False,
    crop="center",
    image=None,
    identity_from=None,
    identity_image=None,
    overwrite=False,
    shape_from=None,
    shape_image=None,
    texture_from=None,
    texture_image=None,
    **factors,
):
    """Re-renders one image file with new factors and writes the result.

    Args:
        model: a calibrated `DCIGN` (from a preset).
        input_path: the image to read.
        out: the output path (default: `<input>_<changes>.png` beside it,
            never the input itself).
        compare: also write `<out>_compare.png`: input, reconstruction and
            re-render side by side.
        crop: as for `to_model_input`.
        image: the pixels of `input_path` already read by `read_image`, so
            a pipe is read once.
        identity_from: an image file whose identity code the re-render
            takes (pose and light stay those of `input_path`).
        identity_image: its pixels already read by `read_image`.
        overwrite: replace existing files this package did not write.
        shape_from, texture_from: image files whose shape or texture code
            the re-render takes (a preset with the shape/texture code;
            everything else stays that of `input_path`).
        shape_image, texture_image: their pixels already read by `read_image`.
        **factors: `azimuth`, `elevation`, `light` in degrees or names.

    Returns:
        The list of written paths.
    """
    from keras import ops

    changes = {k: v for k, v in factors.items() if v is not None}
    donors = {
        "identity_from": (identity_from, identity_image),
        "shape_from": (shape_from, shape_image),
        "texture_from": (texture_from, texture_image),
    }
    paths = rerender_outputs(
        input_path, changes, out, compare, identity_from, overwrite, shape_from, texture_from
    )
    check_factors(model.calibration, changes)
    pixels = read_image(input_path) if image is None else image
    batch = to_model_input(pixels, model.image_size, model.channels, crop)[None]
    for option, (path, given) in donors.items():
        if path is not None:
            other = read_image(path) if given is None else given
            changes[option] = to_model_input(other, model.image_size, model.channels, crop)[None]
    rendered = ops.convert_to_numpy(model.rerender(batch, **changes))[0]
    written = [save_image(rendered, paths[0])]
    if compare:
        reconstruction = ops.convert_to_numpy(model(batch))[0]
        strip = np.concatenate([batch[0], reconstruction, rendered], axis=1)
        written.append(save_image(strip, paths[1]))
    return written


def traverse_file(
    model,
    input_path,
    factor,
    frames=24,
    out=None,
    crop="center",
    image=None,
    directions=None,
    direction=0,
    overwrite=False,
):
    """Sweeps one factor over its calibrated range: an animated GIF and a PNG grid.

    Args:
        model: a calibrated `DCIGN`.
        input_path: the image to read.
        factor: `"azimuth"`, `"elevation"`, `"light"`, or `"intrinsic"` (a
            walk along one of the preset's intrinsic directions, +-2.5
            standard deviations of the people along it).
        frames: frames of the sweep (at least 2).
        out: the GIF to write (default: `<input>_<factor>_sweep.gif`); the
            grid goes beside it as `.png`.
        crop: as for `to_model_input`.
        image: the pixels of `input_path` already read by `read_image`.
        directions: for `"intrinsic"`, the preset's record
            (`keras_dcign.directions.load_intrinsic_directions`).
        direction: for `"intrinsic"`, which direction (0 is the main one).
        overwrite: replace existing files this package did not write.

    Returns:
        `(gif_path, grid_path)`.
    """
    from keras import ops

    intrinsic = factor == "intrinsic"
    gif, grid_path = traverse_outputs(
        input_path, factor, out, direction if intrinsic else None, overwrite
    )
    pixels = read_image(input_path) if image is None else image
    if intrinsic:
        from keras_dcign.directions import walk

        if directions is None:
            raise ValueError("factor='intrinsic' needs the preset's directions; got none.")
        if frames < 2:
            raise ValueError(f"frames={frames} is invalid; expected at least 2.")
        image = to_model_input(pixels, model.image_size, model.channels, crop)
        sweep = walk(model, image, directions, direction, frames)
    else:
        check_traversal(model.calibration, factor, frames)
        low, high = model.calibration.factors[factor]["range"]
        degrees = np.linspace(low, high, frames)
        image = to_model_input(pixels, model.image_size, model.channels, crop)
        batch = np.repeat(image[None], frames, axis=0)
        sweep = ops.convert_to_numpy(model.rerender(batch, **{factor: degrees}))
    pictures = [
        Image.fromarray(
            np.round(np.clip(f[..., 0] if f.shape[-1] == 1 else f, 0, 1) * 255).astype("uint8")
        )
        for f in sweep
    ]
    atomic_write(
        gif,
        lambda handle: pictures[0].save(
            handle,
            format="GIF",
            save_all=True,
            append_images=pictures[1:],
            duration=80,
            loop=0,
            **image_mark("GIF"),
        ),
    )
    columns = min(frames, 8)
    rows = -(-frames // columns)
    pad = np.zeros((rows * columns - frames,) + sweep.shape[1:], dtype=sweep.dtype)
    tiles = np.concatenate([sweep, pad]).reshape((rows, columns) + sweep.shape[1:])
    grid = np.concatenate([np.concatenate(list(row), axis=1) for row in tiles], axis=0)
    save_image(grid, grid_path)
    return gif, grid_path


def check_traversal(calibration, factor, frames):
    """Checks a traversal's factor and frame count against a calibration before rendering."""
    if factor not in FACTORS:
        raise ValueError(f"factor={factor!r} is not supported; expected one of {FACTORS}.")
    if frames < 2:
        raise ValueError(f"frames={frames} is invalid; expected at least 2.")
    if calibration is None or factor not in calibration:
        raise ValueError(f"The model has no calibration for {factor!r}; use a trained preset.")
    calibration.check_readable(factor)
