"""The morphable face model: mean head + linear shape and albedo modes, and its people.

The shape generator (`_face_shape`) and the texture (`_face_texture`) are
nonlinear in their named parameters; this module linearises both around the
mean face (central differences at one standard deviation, one small region
of the head at a time), so that a person is the mean plus
`modes @ coefficients` with coefficients drawn from N(0, I), as in the Basel
Face Model. Surfaces are sampled on a longitude-latitude grid (the head) and
a cylinder (the neck), as densely as the picture size needs; a person's
samples are kept in a small LRU cache because a DC-IGN batch shows one person
many times.
"""

import collections
import functools
import threading

import numpy as np

from keras_dcign.datasets import _face_shape as shape
from keras_dcign.datasets import _face_texture as texture
from keras_dcign.datasets import _sampling
from keras_dcign.datasets._rasterizer import EXTENT

N_SHAPE = len(shape.SHAPE_PARAMETERS)
N_ALBEDO = len(texture.ALBEDO_PARAMETERS)
N_COEFFICIENTS = N_SHAPE + N_ALBEDO
PARITY = np.concatenate([shape.SHAPE_PARITY, texture.ALBEDO_PARITY])
# Changes whenever the same person, pose and light would render differently,
# so that caches of older pictures are recognised as such.
GENERATOR_VERSION = 1
N_IDENTITIES = 10_000
N_TEST_IDENTITIES = 1_000
# Seeds the population; 1503 after the paper's arXiv number (1503.03167).
POPULATION_SEED = 1503
LUMA = np.array([0.21, 0.72, 0.07], dtype=np.float32)

# Surface samples per pixel along the skin: enough that pinholes stay isolated.
DENSITY = 1.1
NECK = {"center_z": -0.06, "width": 0.5, "depth": 0.5, "top": -0.2, "bottom": -2.1}

# Where each albedo weight parameter can change the paint.
_ALBEDO_REGIONS = {
    "brow_darkness": shape.REGIONS["eyes"],
    "brow_thickness": shape.REGIONS["eyes"],
    "brow_asymmetry": shape.REGIONS["eyes"],
    "lash_darkness": shape.REGIONS["eyes"],
    "under_eye": shape.REGIONS["eyes"],
    "blush": shape.REGIONS["front"],
    "blush_asymmetry": shape.REGIONS["front"],
    "beard_shadow": shape.REGIONS["mouth"],
}


@functools.lru_cache(maxsize=4096)
def _coefficients(identity):
    rng = np.random.default_rng([POPULATION_SEED, identity])
    coeffs = np.clip(rng.standard_normal(N_COEFFICIENTS), -3.0, 3.0).astype(np.float32)
    coeffs.flags.writeable = False
    return coeffs


def coefficients(identity):
    """The coefficient vector of person `identity` (an int in [0, N_IDENTITIES))."""
    return _coefficients(int(identity)).copy()


def _plus_minus(name, sigma=1.0):
    p0 = shape.default_parameters()
    plus, minus = dict(p0), dict(p0)
    plus[name] += sigma
    minus[name] -= sigma
    return plus, minus


def _head_shape_modes(c, grid_shape):
    """Mean points (N, 3) and shape modes (N_SHAPE, N, 3) of the head grid."""
    p0 = shape.default_parameters()
    d = c["d"]
    skull = shape.skull_radius(d, p0)
    radius = skull + shape.heights(c, p0)
    mean = radius[:, None] * d
    # Moving a point's direction drags the skull under it, not its features.
    n_phi, n_theta = grid_shape
    grid = skull.reshape(grid_shape)
    dskull_dtheta = (np.roll(grid, -1, 1) - np.roll(grid, 1, 1)) * n_theta / (4 * np.pi)
    dskull_dphi = np.gradient(grid, np.pi / n_phi, axis=0)
    cos_t, sin_t = np.cos(c["theta"]), np.sin(c["theta"])
    cos_p, sin_p = np.cos(c["phi"]), np.sin(c["phi"])
    dd_dtheta = np.stack([cos_p * cos_t, 0 * cos_p, -cos_p * sin_t], -1)
    dd_dphi = np.stack([-sin_p * sin_t, cos_p, -sin_p * cos_t], -1)
    g_theta = dskull_dtheta.reshape(-1, 1) * d + radius[:, None] * dd_dtheta
    g_phi = dskull_dphi.reshape(-1, 1) * d + radius[:, None] * dd_dphi

    modes = np.zeros((N_SHAPE,) + mean.shape, np.float32)
    for k, (name, _, sigma, _) in enumerate(shape.SHAPE_PARAMETERS):
        plus, minus = _plus_minus(name, sigma)
        if name in shape.SKULL_PARAMETERS:
            change = shape.skull_radius(d, plus) - shape.skull_radius(d, minus)
            modes[k] += 0.5 * change[:, None] * d
        if name in shape.WARP_REGIONS:
            index = np.flatnonzero(shape.WARP_REGIONS[name](c))
            part = shape.subset(c, index)
            t_plus, p_plus = shape.warp(part, plus)
            t_minus, p_minus = shape.warp(part, minus)
            modes[k, index] += 0.5 * (
                g_theta[index] * (t_plus - t_minus)[:, None]
                + g_phi[index] * (p_plus - p_minus)[:, None]
            )
        for fn, names, region in shape.FEATURES:
            if name in names:
                index = np.flatnonzero(region(c))
                part = shape.subset(c, index)
                change = fn(part, plus) - fn(part, minus)
                modes[k, index] += 0.5 * change[:, None] * d[index]
    return mean, modes


def _neck_points(alpha, y, p):
    flare = 1.0 + 0.25 * shape.smoothstep(-1.1, -2.0, y)
    width = p["head_width"] / 0.72 * NECK["width"] * flare
    depth = NECK["depth"] * flare
    # The neck leans forward a little on its way down to the shoulders.
    center = NECK["center_z"] + 0.12 * (NECK["top"] - y)
    return np.stack([width * np.sin(alpha), y, center + depth * np.cos(alpha)], -1)


def _neck_shape_modes(c):
    mean = _neck_points(c["alpha"], c["y"], shape.default_parameters())
    modes = np.zeros((N_SHAPE,) + mean.shape, np.float32)
    for k, (name, _, sigma, _) in enumerate(shape.SHAPE_PARAMETERS):
        plus, minus = _plus_minus(name, sigma)
        modes[k] = 0.5 * (
            _neck_points(c["alpha"], c["y"], plus) - _neck_points(c["alpha"], c["y"], minus)
        )
    return mean, modes


def _albedo_modes(layers_fn, c, regions):
    """Mean albedo (N, 3) and albedo modes (N_ALBEDO, N, 3) of painted points."""
    q0 = {name: 0.0 for name in texture.ALBEDO_NAMES}
    cover = texture.coverage(layers_fn(c, q0))
    colours = texture.palette(q0)
    mean = sum(share * colours[name] for name, share in cover.items())
    modes = np.zeros((N_ALBEDO,) + mean.shape, np.float32)
    for k, (name, _, kind) in enumerate(texture.ALBEDO_PARAMETERS):
        plus, minus = dict(q0), dict(q0)
        plus[name], minus[name] = 1.0, -1.0
        if kind == "colour":
            up, down = texture.palette(plus), texture.palette(minus)
            modes[k] = sum(0.5 * share * (up[n] - down[n]) for n, share in cover.items())
        elif name in regions:
            index = np.flatnonzero(regions[name](c))
            part = {key: value[index] for key, value in c.items()}
            change = texture.albedo(layers_fn(part, plus), q0) - texture.albedo(
                layers_fn(part, minus), q0
            )
            modes[k, index] = 0.5 * change
    return mean, modes


class _Patch:
    """One sampled surface: mean and modes on its grid, the nodes it keeps, extra samples.

    Arrays are stored coordinate-major ((3, N) rather than (N, 3)), the layout
    numpy gathers fastest, and shape modes as blocks over the part of the grid
    they move. Samples are the kept grid nodes followed by the refinement's
    extra samples.
    """

    def __init__(self, mean, modes, grid_shape, keep, extra, albedo, albedo_modes, specular):
        self.grid_shape = grid_shape
        self.mean = np.ascontiguousarray(mean.T, np.float32).reshape((3,) + grid_shape)
        self.blocks = _sampling.mode_blocks(
            np.moveaxis(modes, 2, 1).reshape((N_SHAPE, 3) + grid_shape)
        )
        self.keep = keep
        self.corners, self.weights = extra[0], extra[1].astype(np.float32)
        self.albedo = np.ascontiguousarray(albedo.T, np.float32)
        self.albedo_modes = np.ascontiguousarray(
            np.moveaxis(albedo_modes, 2, 1), np.float32
        ).reshape(N_ALBEDO, -1)
        # Grayscale pictures skip the colour channels: luminance is linear in albedo.
        self.luma = LUMA @ self.albedo
        self.luma_modes = np.ascontiguousarray(albedo_modes @ LUMA, np.float32)
        self.specular = specular[0].astype(np.float32)
        self.shininess = specular[1].astype(np.float32)

    def surface(self, shape_coeffs, albedo_coeffs, colour):
        grid = _sampling.apply_modes(self.mean, self.blocks, shape_coeffs)
        normals = _sampling.grid_normals(grid).reshape(3, -1)
        grid = grid.reshape(3, -1)
        points = np.take(grid, self.keep, axis=1)
        normals_kept = np.take(normals, self.keep, axis=1)
        if self.corners.shape[1]:
            extra = _sampling.interpolate(normals, self.corners, self.weights)
            extra /= np.maximum(np.sqrt(np.sum(extra * extra, axis=0)), 1e-9)
            points = np.concatenate(
                [points, _sampling.interpolate(grid, self.corners, self.weights)], axis=1
            )
            normals_kept = np.concatenate([normals_kept, extra], axis=1)
        if colour:
            albedo = self.albedo + (albedo_coeffs @ self.albedo_modes).reshape(3, -1)
        else:
            albedo = self.luma + albedo_coeffs @ self.luma_modes
        return points, normals_kept, np.clip(albedo, 0.01, 1.0)


def _grid(n_rows, n_cols, row_range):
    """Grid node coordinates: columns wrap around [-pi, pi), rows span row_range."""
    cols = -np.pi + (np.arange(n_cols) + 0.5) * 2 * np.pi / n_cols
    rows = np.linspace(*row_range, n_rows)
    return np.meshgrid(rows, cols, indexing="ij")


def _extra_samples(mean, grid_shape, keep, spacing, row_range):
    """Refinement samples for stretched cells whose corners are all kept."""
    corners, weights, rows, cols = _sampling.refine(mean.reshape(grid_shape + (3,)), spacing)
    kept = np.zeros(mean.shape[0], bool)
    kept[keep] = True
    valid = kept[corners].all(axis=0)
    n_rows, n_cols = grid_shape
    col_coord = -np.pi + (cols[valid] + 0.5) * 2 * np.pi / n_cols
    col_coord = (col_coord + np.pi) % (2 * np.pi) - np.pi
    row_coord = row_range[0] + rows[valid] * (row_range[1] - row_range[0]) / (n_rows - 1)
    return (corners[:, valid], weights[:, valid]), row_coord, col_coord


class FaceModel:
    """The face model sampled for pictures of one size (a level of detail).

    Args:
        size: picture side in pixels the samples are dense enough for.
    """

    def __init__(self, size):
        pixel = 2.0 * EXTENT / size
        spacing = pixel / DENSITY
        n_theta = int(np.ceil(2 * np.pi * 1.1 / spacing / 8)) * 8
        n_phi = n_theta // 2
        half = np.pi / (2 * n_phi)
        rows = (-np.pi / 2 + half, np.pi / 2 - half)
        phi, theta = _grid(n_phi, n_theta, rows)
        mean, modes = _head_shape_modes(
            shape.coordinates(theta.reshape(-1), phi.reshape(-1)), (n_phi, n_theta)
        )
        keep = self._head_keep(mean, phi, n_theta)
        extra, extra_phi, extra_theta = _extra_samples(mean, (n_phi, n_theta), keep, pixel, rows)
        samples = shape.coordinates(
            np.concatenate([theta.reshape(-1)[keep], extra_theta]),
            np.concatenate([phi.reshape(-1)[keep], extra_phi]),
        )
        samples["pores"] = texture.ripples(samples["theta"], samples["phi"], 1, 24, 90, 60.0)
        samples["strands"] = texture.ripples(samples["theta"], samples["phi"], 2, 40, 220, 30.0)
        albedo, albedo_modes = _albedo_modes(texture.head_layers, samples, _ALBEDO_REGIONS)
        self.head = _Patch(
            mean,
            modes,
            (n_phi, n_theta),
            keep,
            extra,
            albedo,
            albedo_modes,
            texture.head_specular(samples),
        )
        cavity = _sampling.occlusion(
            mean.reshape(n_phi, n_theta, 3), max(1, round(0.08 / spacing)), 0.05
        ).reshape(1, -1)
        head_occlusion = np.concatenate([cavity[0, keep], _sampling.interpolate(cavity, *extra)[0]])

        n_alpha = int(np.ceil(2 * np.pi * NECK["width"] * 1.15 / spacing / 8)) * 8
        n_y = int(np.ceil((NECK["top"] - NECK["bottom"]) / spacing))
        rows = (NECK["bottom"], NECK["top"])
        y, alpha = _grid(n_y, n_alpha, rows)
        mean, modes = _neck_shape_modes({"alpha": alpha.reshape(-1), "y": y.reshape(-1)})
        keep = self._neck_keep(mean)
        extra, extra_y, extra_alpha = _extra_samples(mean, (n_y, n_alpha), keep, pixel, rows)
        samples = {
            "alpha": np.concatenate([alpha.reshape(-1)[keep], extra_alpha]),
            "y": np.concatenate([y.reshape(-1)[keep], extra_y]),
        }
        albedo, albedo_modes = _albedo_modes(texture.neck_layers, samples, {})
        specular = (np.full(len(samples["y"]), 0.07), np.full(len(samples["y"]), 10.0))
        self.neck = _Patch(mean, modes, (n_y, n_alpha), keep, extra, albedo, albedo_modes, specular)
        self.specular = np.concatenate([self.head.specular, self.neck.specular])
        self.shininess = np.concatenate([self.head.shininess, self.neck.shininess])
        # Under the jaw the neck sees little of the sky.
        neck_occlusion = 1.0 - 0.35 * shape.smoothstep(-1.0, -0.45, samples["y"])
        self.occlusion = np.concatenate([head_occlusion, neck_occlusion]).astype(np.float32)

    @staticmethod
    def _head_keep(points, phi, n_theta):
        """Thin the grid towards the poles and drop what the neck always hides."""
        column = np.floor(np.abs(np.arange(n_theta) + 0.5 - n_theta / 2))
        step = np.maximum(1, (0.95 / np.cos(phi[:, :1])).astype(int))
        keep = (column[None, :] % step == 0).reshape(-1)
        inside = (points[:, 0] / (NECK["width"] - 0.12)) ** 2 + (
            (points[:, 2] - NECK["center_z"] - 0.12 * (NECK["top"] - points[:, 1]))
            / (NECK["depth"] - 0.12)
        ) ** 2 < 1.0
        keep &= ~(inside & (points[:, 1] < NECK["top"] - 0.1))
        return np.flatnonzero(keep)

    @staticmethod
    def _neck_keep(points):
        """Drop neck samples buried inside the head."""
        radius = np.linalg.norm(points, axis=-1)
        theta = np.arctan2(points[:, 0], points[:, 2])
        phi = np.arcsin(points[:, 1] / radius)
        head = np.linalg.norm(shape.head_points(theta, phi, shape.default_parameters()), axis=-1)
        # With room to spare: a person with a smaller jaw than the mean uncovers more neck.
        return np.flatnonzero(radius > head - 0.2)

    def landmark_index(self, landmarks):
        """Sample indices of named face points given as canonical face-plane (u, v)."""
        n_phi, n_theta = self.head.grid_shape
        u, v = np.array(list(landmarks.values()), np.float64).T
        theta = np.arctan(u / shape.FACE_DEPTH)
        phi = np.arctan(v * np.cos(theta) / shape.FACE_DEPTH)
        col = np.round((theta + np.pi) / (2 * np.pi) * n_theta - 0.5).astype(int)
        row = np.round((phi + np.pi / 2) / np.pi * n_phi - 0.5).astype(int)
        flat = row * n_theta + col
        # The face is never thinned, so its grid nodes are all kept.
        return np.searchsorted(self.head.keep, flat)

    def surface(self, coeffs, colour):
        """Surface samples of one person: points, normals, albedo, specular maps."""
        coeffs = np.asarray(coeffs, np.float32)
        shape_c, albedo_c = coeffs[:N_SHAPE], coeffs[N_SHAPE:]
        parts = [patch.surface(shape_c, albedo_c, colour) for patch in (self.head, self.neck)]
        return {
            "points": np.concatenate([p[0] for p in parts], axis=1),
            "normals": np.concatenate([p[1] for p in parts], axis=1).astype(np.float32),
            "albedo": np.concatenate([p[2] for p in parts], axis=-1).astype(np.float32),
            "specular": self.specular,
            "shininess": self.shininess,
            "occlusion": self.occlusion,
        }


_MODELS = {}
_SURFACES = collections.OrderedDict()
_CACHE_SIZE = 24
_LOCK = threading.Lock()


def level_of_detail(size):
    """The sampling level used for pictures `size` pixels wide."""
    return int(np.ceil(size / 16.0)) * 16


def model_for(size):
    """The face model for pictures `size` pixels wide (built once per level of detail)."""
    level = level_of_detail(size)
    with _LOCK:
        if level not in _MODELS:
            _MODELS[level] = FaceModel(level)
        return _MODELS[level]


def surface(coeffs, size, colour=False):
    """Cached surface samples of a person (a coefficient vector) for a picture size."""
    coeffs = np.asarray(coeffs, np.float32)
    key = (level_of_detail(size), bool(colour), coeffs.tobytes())
    with _LOCK:
        if key in _SURFACES:
            _SURFACES.move_to_end(key)
            return _SURFACES[key]
    result = model_for(size).surface(coeffs, colour)
    with _LOCK:
        _SURFACES[key] = result
        while len(_SURFACES) > _CACHE_SIZE:
            _SURFACES.popitem(last=False)
    return result
