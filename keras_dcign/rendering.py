"""Re-rendering image files: read any PNG/JPEG, change pose or light, write the result."""

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

FACTORS = ("azimuth", "elevation", "light")


def load_image(path, image_size, channels=1, crop="center"):
    """Reads an image file as float32 `(image_size, image_size, channels)` in [0, 1].

    Args:
        path: a PNG or JPEG (any size and mode; RGB is converted to gray
            with 0.21 R + 0.72 G + 0.07 B, the weights of the reference data).
        image_size: the model's input side.
        channels: 1 or 3.
        crop: `"center"` (largest centred square), `"auto"` (find the face
            with OpenCV's frontal-face detector, falling back to the centre
            with a warning) or `"none"` (resize the whole image).
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            rgb = image.convert("RGB")
    except FileNotFoundError as error:
        raise ValueError(f"Input image {path} does not exist.") from error
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"Cannot read image {path}: expected a PNG or JPEG file.") from error
    if crop == "auto":
        rgb = rgb.crop(_face_box(rgb) or _centre_box(rgb))
    elif crop == "center":
        rgb = rgb.crop(_centre_box(rgb))
    elif crop != "none":
        raise ValueError(f"crop={crop!r} is not supported; expected 'center', 'auto' or 'none'.")
    rgb = rgb.resize((image_size, image_size), Image.Resampling.LANCZOS)
    pixels = np.asarray(rgb, dtype="float32") / 255.0
    if channels == 1:
        pixels = pixels @ np.array([0.21, 0.72, 0.07], dtype="float32")
        pixels = pixels[..., None]
    return np.clip(pixels, 0.0, 1.0)


def check_readable(path):
    """Fails early, with a one-line message, when an input image is missing or unreadable."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.verify()
    except FileNotFoundError as error:
        raise ValueError(f"Input image {path} does not exist.") from error
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"Cannot read image {path}: expected a PNG or JPEG file.") from error


def _centre_box(image):
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return (left, top, left + side, top + side)


def _face_box(image, margin=0.35):
    import warnings

    try:
        import cv2
    except ImportError:
        warnings.warn(
            "--crop auto needs opencv-python-headless<5; using a centre crop.", stacklevel=3
        )
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
    """Writes a float image in [0, 1] (H, W[, C]) atomically; the format follows the suffix."""
    path = Path(path)
    pixels = np.asarray(pixels, dtype="float32")
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    image = Image.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype("uint8"))
    _atomic_write(path, lambda handle: image.save(handle, format=_format(path)))
    return path


def _format(path):
    suffix = path.suffix.lower()
    formats = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF"}
    if suffix not in formats:
        raise ValueError(f"Output {path} has suffix {suffix!r}; expected .png, .jpg or .gif.")
    return formats[suffix]


def _atomic_write(path, write):
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise ValueError(f"Output folder {folder} does not exist or is not writable.")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def parse_factor(value):
    """A CLI value: a number of degrees or a direction name."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


def rerender_file(model, input_path, out=None, compare=False, crop="center", **factors):
    """Re-renders one image file with new factors and writes the result.

    Args:
        model: a calibrated `DCIGN` (from a preset).
        input_path: the image to read.
        out: the output path (default: `<input>_<changes>.png` beside it,
            never the input itself).
        compare: also write `<out>_compare.png`: input, reconstruction and
            re-render side by side.
        crop: as for `load_image`.
        **factors: `azimuth`, `elevation`, `light` in degrees or names.

    Returns:
        The list of written paths.
    """
    from keras import ops

    input_path = Path(input_path)
    changes = {k: v for k, v in factors.items() if v is not None}
    if not changes:
        raise ValueError(
            "Nothing to change; expected at least one of --light, --azimuth, --elevation."
        )
    image = load_image(input_path, model.image_size, model.channels, crop)[None]
    rendered = ops.convert_to_numpy(model.rerender(image, **changes))[0]
    if out is None:
        tag = "_".join(
            f"{k}-{v:g}" if isinstance(v, float) else f"{k}-{v}" for k, v in changes.items()
        )
        out = input_path.with_name(f"{input_path.stem}_{tag}.png")
    out = Path(out)
    if out.resolve() == input_path.resolve():
        raise ValueError(f"Output {out} is the input image; choose another --out.")
    written = [save_image(rendered, out)]
    if compare:
        reconstruction = ops.convert_to_numpy(model(image))[0]
        strip = np.concatenate([image[0], reconstruction, rendered], axis=1)
        written.append(save_image(strip, out.with_name(f"{out.stem}_compare.png")))
    return written


def traverse_file(model, input_path, factor, frames=24, out=None, crop="center"):
    """Sweeps one factor over its calibrated range: an animated GIF and a PNG grid.

    Returns:
        `(gif_path, grid_path)`.
    """
    from keras import ops

    if factor not in FACTORS:
        raise ValueError(f"factor={factor!r} is not supported; expected one of {FACTORS}.")
    if frames < 2:
        raise ValueError(f"frames={frames} is invalid; expected at least 2.")
    if model.calibration is None or factor not in model.calibration:
        raise ValueError(f"The model has no calibration for {factor!r}; use a trained preset.")
    input_path = Path(input_path)
    low, high = model.calibration.factors[factor]["range"]
    degrees = np.linspace(low, high, frames)
    image = load_image(input_path, model.image_size, model.channels, crop)[None]
    batch = np.repeat(image, frames, axis=0)
    sweep = ops.convert_to_numpy(model.rerender(batch, **{factor: degrees}))
    gif = Path(out) if out else input_path.with_name(f"{input_path.stem}_{factor}_sweep.gif")
    if gif.suffix.lower() != ".gif":
        raise ValueError(f"Output {gif} has suffix {gif.suffix!r}; expected .gif.")
    pictures = [
        Image.fromarray(
            np.round(np.clip(f[..., 0] if f.shape[-1] == 1 else f, 0, 1) * 255).astype("uint8")
        )
        for f in sweep
    ]
    _atomic_write(
        gif,
        lambda handle: pictures[0].save(
            handle, format="GIF", save_all=True, append_images=pictures[1:], duration=80, loop=0
        ),
    )
    columns = min(frames, 8)
    rows = -(-frames // columns)
    pad = np.zeros((rows * columns - frames,) + sweep.shape[1:], dtype=sweep.dtype)
    tiles = np.concatenate([sweep, pad]).reshape((rows, columns) + sweep.shape[1:])
    grid = np.concatenate([np.concatenate(list(row), axis=1) for row in tiles], axis=0)
    grid_path = save_image(grid, gif.with_suffix(".png"))
    return gif, grid_path
