"""A point-splatting renderer in numpy: z-buffer, Blinn-Phong shading, shadow map.

The head is a dense cloud of surface samples (positions, normals, albedo). A
frame turns the cloud into the camera, keeps the nearest samples of every
pixel (a z-buffer built with `np.minimum.at`), shades them and averages them
per pixel: ambient light (less in creases: ambient occlusion), Lambert light
wrapped a little past the terminator (skin scatters light under its
surface) and Blinn-Phong highlights. Cast shadows come from a second
z-buffer seen from the light (a shadow map, read with 5 taps for soft
edges). The projection is orthographic, so one pixel covers the same patch
of skin in every pose.

Camera frame: x to the viewer's right, y up, z towards the viewer.
"""

import math

import numpy as np

# Half the width of the picture in head units, and the height of its centre.
EXTENT = 1.3
CENTER_Y = -0.05
# The head turns (azimuth) about a vertical axis through the neck, this far
# behind the middle of the head, as a person turns their head.
PIVOT_Z = -0.15


def rotation(azimuth, elevation):
    """Head-to-camera rotation (3, 3) for a pose in degrees.

    Positive azimuth turns the face to the viewer's right; positive elevation
    shows it from above (the camera rises, so the face looks down the image).
    """
    a, e = math.radians(azimuth), math.radians(elevation)
    ca, sa, ce, se = math.cos(a), math.sin(a), math.cos(e), math.sin(e)
    # pitch(e) @ yaw(a), written out: this runs once per picture.
    return np.array([[ca, 0.0, sa], [se * sa, ce, -se * ca], [-ce * sa, se, ce * ca]])


def pose(azimuth, elevation):
    """Head-to-camera transform for a pose in degrees: `camera = rot @ head + shift`."""
    rot = rotation(azimuth, elevation)
    a, e = math.radians(azimuth), math.radians(elevation)
    # Turning about the pivot moves the head by pivot - yaw @ pivot; then the camera pitches.
    x, z = -math.sin(a) * PIVOT_Z, PIVOT_Z * (1.0 - math.cos(a))
    return rot, np.array([x, -math.sin(e) * z, math.cos(e) * z])


def light_frame(azimuth, elevation):
    """Rows: the light's right, up and direction (towards the light), camera frame.

    Positive light azimuth puts the lamp on the viewer's right, positive
    elevation above the head.
    """
    a, e = math.radians(azimuth), math.radians(elevation)
    towards = (math.sin(a) * math.cos(e), math.sin(e), math.cos(a) * math.cos(e))
    norm = math.hypot(towards[2], towards[0])
    # A lamp straight above or below has no azimuth: any horizontal "right" will do.
    right = (towards[2] / norm, 0.0, -towards[0] / norm) if norm > 1e-9 else (1.0, 0.0, 0.0)
    up = (
        towards[1] * right[2] - towards[2] * right[1],
        towards[2] * right[0] - towards[0] * right[2],
        towards[0] * right[1] - towards[1] * right[0],
    )
    return np.array([right, up, towards])


def _pixels(x, y, size):
    """Flat pixel index of camera-plane points; points off the picture go to bin size**2."""
    scale = size / (2.0 * EXTENT)
    # x * scale + size / 2 (not (x + EXTENT) * scale): mirrored points land in
    # mirrored pixels exactly, since negating x only negates x * scale.
    col = np.floor(x * scale + size / 2).astype(np.int32)
    row = np.floor((CENTER_Y - y) * scale + size / 2).astype(np.int32)
    # Negative indices become huge unsigned ones, so one comparison per axis suffices.
    inside = (col.view(np.uint32) < size) & (row.view(np.uint32) < size)
    return np.where(inside, row * size + col, size * size)


def _box3(x):
    """Sum over each pixel's 3x3 neighbourhood (zero outside), for (H, W, ...) arrays."""
    rows = x.copy()
    rows[1:] += x[:-1]
    rows[:-1] += x[1:]
    out = rows.copy()
    out[:, 1:] += rows[:, :-1]
    out[:, :-1] += rows[:, 1:]
    return out


def _fill_pinholes(values, count, size):
    """Pixels no sample landed on, but surrounded by skin, take their neighbours' mean."""
    covered = (count > 0).reshape(size, size)
    neighbours = _box3(covered.astype(np.float32))
    hole = ~covered & (neighbours >= 6)
    if not hole.any():
        return values, covered
    channels = values.reshape(size, size, -1)
    total = _box3(channels)
    channels[hole] = total[hole] / neighbours[hole, None]
    return channels.reshape(values.shape), covered | hole


def _zbuffer(xyz, size):
    """Nearest depth per pixel (+ the off-picture bin) and each sample's pixel and depth."""
    pix = _pixels(xyz[0], xyz[1], size)
    depth = -xyz[2]
    zbuf = np.full(size * size + 1, np.inf, np.float32)
    np.minimum.at(zbuf, pix, depth)
    return zbuf, pix, depth


def _shadow_test(casters, receivers, normals, size):
    """How lit (0..1) each receiver is: the share of 5 shadow-map taps it is not behind.

    Each tap compares the shadow map with the receiver's own tangent plane
    extended to that tap, so a slope facing the light at an angle does not
    shadow itself (shadow acne), while a nose in front of a cheek still does.

    Args:
        casters, receivers: light-frame points (3, N), z towards the light.
        normals: the receivers' normals, light frame.
        size: shadow map side in cells.
    """
    scale = size / (2.0 * EXTENT)
    cell = 1.0 / scale
    # A two-cell border of "no caster" lets points off the map, and their taps, read inf.
    side = size + 4

    def cells(xyz):
        col = np.clip(np.floor(xyz[0] * scale + size / 2).astype(np.int32), -1, size) + 2
        row = (
            np.clip(np.floor((CENTER_Y - xyz[1]) * scale + size / 2).astype(np.int32), -1, size) + 2
        )
        return row, col

    row, col = cells(casters)
    inside = (row > 1) & (row <= size + 1) & (col > 1) & (col <= size + 1)
    smap = np.full(side * side, np.inf, np.float32)
    np.minimum.at(smap, (row * side + col)[inside], -casters[2][inside])
    row, col = cells(receivers)
    flat = row * side + col
    # Depth (away from the light) grows along the tangent plane by n_x / n_z per unit x.
    facing = np.maximum(normals[2], 0.3)
    along_x = np.clip(normals[0] / facing, -3.0, 3.0) * cell
    along_y = np.clip(normals[1] / facing, -3.0, 3.0) * cell
    depth = -receivers[2] - 0.75 * cell - np.abs(along_x) - np.abs(along_y)
    lit = (depth <= smap[flat]).astype(np.float32)
    # A tap one column right lies at x + cell; one row down at y - cell.
    for step, change in ((1, along_x), (-1, -along_x), (side, -along_y), (-side, along_y)):
        lit += depth + change <= smap[flat + step]
    return lit / 5.0


def render_frame(surface, size, azimuth, elevation, light, light_elevation, look, buffers=False):
    """One picture of a surface sample cloud.

    Args:
        surface: dict with `points` (3, N), `normals` (3, N), `albedo` (N,) or
            (C, N), `specular` (N,), `shininess` (N,) and `occlusion` (N,)
            (ambient occlusion, 1 for open skin) in head coordinates.
        size: picture side in pixels.
        azimuth, elevation: camera pose in degrees.
        light, light_elevation: light direction in degrees, camera frame.
        look: dict with `ambient` and `diffuse` strengths and `wrap`, how far
            light reaches past the terminator (0 is plain Lambert).
        buffers: also return depth, albedo, normals and mask per pixel.

    Returns:
        The picture, (size, size) or (size, size, C), float32 in [0, 1], and a
        dict of per-pixel buffers when `buffers` is true.
    """
    rot, shift = pose(azimuth, elevation)
    frame = light_frame(light, light_elevation)
    to_light = (frame @ rot).astype(np.float32)
    light_shift = (frame @ shift).astype(np.float32)[:, None]
    rot, shift = rot.astype(np.float32), shift.astype(np.float32)[:, None]
    points, normals = surface["points"], surface["normals"]
    pixel_size = 2.0 * EXTENT / size

    # Camera z-buffer over the samples that face the camera.
    facing = np.flatnonzero(rot[2] @ normals > -0.1)
    facing_points = np.take(points, facing, axis=1)
    zbuf, pix, depth = _zbuffer(rot @ facing_points + shift, size)
    near = (depth <= zbuf[pix] + 1.5 * pixel_size) & (pix < size * size)
    visible = facing[near]
    pix = pix[near]

    # Shadow map: a z-buffer seen from the light, over samples facing the light.
    wrap = look["wrap"]
    lit_side = to_light[2] @ normals
    map_size = min(size, max(64, size // 2))
    # A coarser shadow map needs fewer casters: every `step`-th sample still fills it.
    step = size // map_size
    casters = np.flatnonzero(lit_side[::step] > -wrap - 0.05) * step
    ndl = lit_side[visible]
    visible_normals = np.take(normals, visible, axis=1)
    unshadowed = _shadow_test(
        to_light @ np.take(points, casters, axis=1) + light_shift,
        to_light @ facing_points[:, near] + light_shift,
        to_light @ visible_normals,
        map_size,
    )
    # Near the terminator a shadow map only sees the surface shadowing itself
    # (and skin scatters light there anyway): cast shadows fade in with n.l.
    grazing = np.clip((0.45 - ndl) / 0.45, 0.0, 1.0)
    lit = np.maximum(unshadowed, grazing)

    # Blinn-Phong: the viewer is at +z in the camera frame.
    half = to_light[2] + rot[2]
    half /= np.linalg.norm(half)
    ndh = np.maximum(half @ visible_normals, 1e-6)
    spec = (
        lit
        * (ndl > 0)
        * np.take(surface["specular"], visible)
        * np.exp(np.take(surface["shininess"], visible) * np.log(ndh))
    )
    # Wrapped Lambert: skin scatters light a little past the terminator.
    diffuse = np.maximum(ndl + wrap, 0.0) / (1.0 + wrap)
    # Creases see less of the room (ambient) and a little less of the lamp.
    occlusion = np.take(surface["occlusion"], visible)
    shade = occlusion * look["ambient"] + look["diffuse"] * lit * diffuse * (0.6 + 0.4 * occlusion)
    albedo = np.take(surface["albedo"], visible, axis=-1)
    colour = (albedo * shade + spec).reshape(-1, len(visible))

    n = size * size
    count = np.bincount(pix, minlength=n).astype(np.float32)
    image = np.stack([np.bincount(pix, weights=ch, minlength=n) for ch in colour], -1)
    image = image.astype(np.float32) / np.maximum(count, 1.0)[:, None]
    image, _ = _fill_pinholes(image, count, size)
    image = np.clip(image, 0.0, 1.0).reshape(size, size, -1)
    if albedo.ndim == 1:
        image = image[..., 0]
    if not buffers:
        return image
    return image, _buffers(surface, visible, pix, count, zbuf[:n], rot, size)


def _buffers(surface, visible, pix, count, zbuf, rot, size):
    """Per-pixel depth, albedo, camera-frame normals and coverage, pinholes filled."""
    n = size * size
    inv = 1.0 / np.maximum(count, 1.0)

    def average(values):
        values = values.reshape(-1, len(visible))
        sums = np.stack([np.bincount(pix, weights=v, minlength=n) for v in values], -1)
        return _fill_pinholes((sums * inv[:, None]).astype(np.float32), count, size)

    albedo, mask = average(np.take(surface["albedo"], visible, axis=-1))
    normals, _ = average(rot @ np.take(surface["normals"], visible, axis=1))
    depth, _ = _fill_pinholes(np.where(count > 0, zbuf, 0.0)[:, None], count, size)
    normals = normals.reshape(size, size, 3)
    normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-6)
    return {
        "depth": np.where(mask, depth[:, 0].reshape(size, size), np.inf).astype(np.float32),
        "albedo": albedo.reshape(size, size, -1)[..., 0]
        if surface["albedo"].ndim == 1
        else albedo.reshape(size, size, -1),
        "normals": normals,
        "mask": mask.reshape(size, size),
    }
