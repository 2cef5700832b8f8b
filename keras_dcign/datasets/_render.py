"""Argument checking and batching for the renderer: what `faces.render` does.

Angles are degrees. A person is an integer id or a coefficient vector; arrays
of either, and of angles, broadcast together into a batch.
"""

import math

import numpy as np

from keras_dcign.datasets import _face_model as model
from keras_dcign.datasets import _rasterizer as raster

# What the renderer can draw at all (the streams use narrower, configurable ranges).
AZIMUTH_LIMITS = (-180.0, 180.0)
# Steeper views would show where the neck ends.
ELEVATION_LIMITS = (-30.0, 30.0)
LIGHT_LIMITS = (-180.0, 180.0)
LIGHT_ELEVATION_LIMITS = (-90.0, 90.0)
LIGHT_ELEVATION = 5.0
LOOK = {"ambient": 0.28, "diffuse": 0.8, "wrap": 0.4}
COLOR_MODES = ("grayscale", "rgb")
MAX_IMAGE_SIZE = 256

# Canonical (u, v) face-plane positions of named points, for `landmarks`.
LANDMARKS = {
    "nose_tip": (0.0, -0.25),
    "left_eye": (0.29, 0.06),
    "right_eye": (-0.29, 0.06),
    "mouth_left": (0.2, -0.515),
    "mouth_right": (-0.2, -0.515),
    "chin": (0.0, -0.86),
}


def check_angles(name, values, limits):
    """Angles as a float array; ValueError naming the value if one is off its range."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of degrees, got {values!r}.") from None
    bad = ~np.isfinite(array) | (array < limits[0]) | (array > limits[1])
    if bad.any():
        value = array.reshape(-1)[np.flatnonzero(bad.reshape(-1))[0]]
        raise ValueError(f"{name} {value:g} is outside [{limits[0]:g}, {limits[1]:g}] degrees.")
    return array


def check_image_size(image_size):
    # Past 256 pixels the sampled model would take gigabytes to build.
    if (
        isinstance(image_size, bool)
        or not isinstance(image_size, (int, np.integer))
        or not (8 <= image_size <= MAX_IMAGE_SIZE)
    ):
        raise ValueError(
            f"image_size must be an integer in [8, {MAX_IMAGE_SIZE}], got {image_size!r}."
        )
    return int(image_size)


def check_identity(identity):
    """A person as an array of coefficient vectors (N, C) or (C,), or of ids (N,) or ()."""
    array = np.asarray(identity)
    if array.dtype.kind in "iu":
        bad = (array < 0) | (array >= model.N_IDENTITIES)
        if bad.any():
            value = array.reshape(-1)[np.flatnonzero(bad.reshape(-1))[0]]
            raise ValueError(f"identity {value} is not a person id in [0, {model.N_IDENTITIES}).")
        return array, False
    if (
        array.dtype.kind != "f"
        or array.ndim not in (1, 2)
        or (array.shape[-1] != model.N_COEFFICIENTS)
    ):
        raise ValueError(
            f"identity must be an int id, or a float coefficient vector of length "
            f"{model.N_COEFFICIENTS}, got {identity!r:.80}."
        )
    if not np.isfinite(array).all():
        raise ValueError("identity coefficients must be finite, got NaN or inf.")
    return array.astype(np.float32), True


def broadcast(identity, *angles):
    """People and angles broadcast to a common batch shape; also says if it is one picture."""
    people, is_vector = check_identity(identity)
    id_shape = people.shape[:-1] if is_vector else people.shape
    shape = np.broadcast_shapes(id_shape, *(a.shape for a in angles))
    if len(shape) > 1:
        raise ValueError(f"identity and angles must be scalars or 1-D, got shape {shape}.")
    single = shape == ()
    n = 1 if single else shape[0]
    if is_vector:
        people = np.broadcast_to(people, (n, model.N_COEFFICIENTS))
        people = [people[i] for i in range(n)]
    else:
        people = [model.coefficients(int(p)) for p in np.broadcast_to(people, (n,))]
    angles = [np.broadcast_to(a, (n,)) for a in angles]
    return people, angles, single


def render_batch(
    identity, azimuth, elevation, light, image_size, light_elevation, color_mode, buffers=False
):
    """Pictures (N, H, W[, 3]) or one (H, W[, 3]); with buffers, a list of dicts too."""
    image_size = check_image_size(image_size)
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {COLOR_MODES}, got {color_mode!r}.")
    angles = (
        check_angles("azimuth", azimuth, AZIMUTH_LIMITS),
        check_angles("elevation", elevation, ELEVATION_LIMITS),
        check_angles("light", light, LIGHT_LIMITS),
        check_angles("light_elevation", light_elevation, LIGHT_ELEVATION_LIMITS),
    )
    people, angles, single = broadcast(identity, *angles)
    color = color_mode == "rgb"
    shape = (image_size, image_size, 3) if color else (image_size, image_size)
    images = np.empty((len(people),) + shape, np.float32)
    extra = []
    for i, coeffs in enumerate(people):
        surface = model.surface(coeffs, image_size, color)
        out = raster.render_frame(
            surface, image_size, *(float(a[i]) for a in angles), LOOK, buffers=buffers
        )
        if buffers:
            out, maps = out
            extra.append(maps)
        images[i] = out
    if single:
        images = images[0]
    if buffers:
        return images, extra
    return images


def landmarks(identity, azimuth, elevation, image_size):
    """Pixel positions (x = column, y = row, continuous) of named face points."""
    image_size = check_image_size(image_size)
    angles = (
        check_angles("azimuth", azimuth, AZIMUTH_LIMITS),
        check_angles("elevation", elevation, ELEVATION_LIMITS),
    )
    people, angles, single = broadcast(identity, *angles)
    face = model.model_for(image_size)
    index = face.landmark_index(LANDMARKS)
    scale = image_size / (2.0 * raster.EXTENT)
    out = {name: np.empty((len(people), 2), np.float32) for name in LANDMARKS}
    for i, coeffs in enumerate(people):
        points = model.surface(coeffs, image_size)["points"][:, index]
        rot, shift = raster.pose(float(angles[0][i]), float(angles[1][i]))
        cam = rot @ points + shift[:, None]
        x = (cam[0] + raster.EXTENT) * scale
        y = (raster.EXTENT + raster.CENTER_Y - cam[1]) * scale
        for j, name in enumerate(LANDMARKS):
            out[name][i] = (x[j], y[j])
    if single:
        out = {name: value[0] for name, value in out.items()}
    return out


def angle_range(name, value, limits):
    """A (low, high) range of degrees inside limits; ValueError otherwise."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of degrees, got {value!r}.") from None
    if (
        not (math.isfinite(low) and math.isfinite(high))
        or low > high
        or (low < limits[0] or high > limits[1])
    ):
        raise ValueError(
            f"{name} {value!r} must be a (low, high) pair with low <= high inside "
            f"[{limits[0]:g}, {limits[1]:g}] degrees."
        )
    return low, high
