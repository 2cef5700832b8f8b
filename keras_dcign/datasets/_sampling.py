"""Where the renderer samples a surface: grids, their normals, and refinement.

A surface is sampled on a regular grid whose columns wrap around (longitude
for the head, angle for the neck). Where a shape stretches the grid wider
than a pixel — the rim of an ear, the underside of the nose or a lip — cells
get extra samples, placed by bilinear interpolation between the cell's
corners, so that no pinholes open there. The extra samples are placed
mirror-symmetrically, so a symmetric face renders exactly symmetric.
"""

import numpy as np

_MAX_SPLIT = 4


def grid_normals(points):
    """Outward unit normals (3, rows, columns) of a grid surface (rows go up, columns wrap)."""
    along = np.roll(points, -1, axis=2) - np.roll(points, 1, axis=2)
    up = np.empty_like(points)
    up[:, 1:-1] = points[:, 2:] - points[:, :-2]
    up[:, 0] = points[:, 1] - points[:, 0]
    up[:, -1] = points[:, -1] - points[:, -2]
    normals = np.stack(
        [
            along[1] * up[2] - along[2] * up[1],
            along[2] * up[0] - along[0] * up[2],
            along[0] * up[1] - along[1] * up[0],
        ]
    )
    length = np.sqrt(np.sum(normals * normals, axis=0))
    # At the poles the grid collapses to a point: fall back to the radial direction.
    radial = points / np.maximum(np.sqrt(np.sum(points * points, axis=0)), 1e-6)
    return np.where(length > 1e-9, normals / np.maximum(length, 1e-12), radial)


def refine(points, spacing, margin=1.0):
    """Extra samples for grid cells wider than `spacing` (with a margin for other people).

    Args:
        points: (rows, columns, 3) grid points of the mean surface.
        spacing: the largest gap wanted between samples.
        margin: how much more than the mean shape a person may stretch a cell.

    Returns:
        `(corners, weights, rows, columns)`: the 4 corner node indices (flat)
        and bilinear weights (4, M) of each extra sample, and its fractional
        grid position (M,) each.
    """
    n_rows, n_cols = points.shape[:2]
    right = np.roll(points, -1, axis=1)
    along = np.linalg.norm(right - points, axis=-1)
    across = np.linalg.norm(points[1:] - points[:-1], axis=-1)
    width = np.maximum(along[:-1], along[1:])
    height = np.maximum(across, np.roll(across, -1, axis=1))
    # Cell j spans columns j, j + 1; its mirror image spans n - 2 - j, n - 1 - j.
    mirror = (n_cols - 2 - np.arange(n_cols)) % n_cols
    width = np.maximum(width, width[:, mirror])
    height = np.maximum(height, height[:, mirror])
    split_cols = np.clip(np.ceil(margin * width / spacing), 1, _MAX_SPLIT).astype(int)
    split_rows = np.clip(np.ceil(margin * height / spacing), 1, _MAX_SPLIT).astype(int)
    needed = (split_cols > 1) | (split_rows > 1)
    parts = []
    for k_rows in range(1, _MAX_SPLIT + 1):
        for k_cols in range(1, _MAX_SPLIT + 1):
            cells = np.flatnonzero(needed & (split_rows == k_rows) & (split_cols == k_cols))
            if not len(cells):
                continue
            # Columns at (b + 0.5) / k: a set that maps onto itself in the mirror.
            fr, fc = np.meshgrid(
                np.arange(k_rows) / k_rows, (np.arange(k_cols) + 0.5) / k_cols, indexing="ij"
            )
            row = cells[:, None] // n_cols + fr.reshape(1, -1)
            col = cells[:, None] % n_cols + fc.reshape(1, -1)
            parts.append((row.reshape(-1), col.reshape(-1)))
    if not parts:
        empty = np.zeros((4, 0))
        return empty.astype(int), empty, np.zeros(0), np.zeros(0)
    rows = np.concatenate([p[0] for p in parts])
    cols = np.concatenate([p[1] for p in parts])
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    fr, fc = rows - r0, cols - c0
    c1 = (c0 + 1) % n_cols
    corners = np.stack(
        [r0 * n_cols + c0, r0 * n_cols + c1, (r0 + 1) * n_cols + c0, (r0 + 1) * n_cols + c1]
    )
    weights = np.stack([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc])
    return corners, weights, rows, cols


def interpolate(values, corners, weights):
    """Values (C, N) at the extra samples: bilinear mixes of their corner nodes."""
    return sum(np.take(values, corners[i], axis=1) * weights[i] for i in range(4))


def mode_blocks(modes, tolerance=2e-5, gap=8, slack=1.25):
    """Modes (K, 3, rows, columns) as blocks over the part of the grid they move.

    Most modes are local (a nose, the lips), so a person costs the sum of
    their areas rather than `K` times the grid. Modes over about the same
    area share a block, applied with one matrix product.

    Returns:
        A list of `(mode indices, row slice, column slice, values (k, 3 * r * c))`.
    """
    boxes = []
    for k, mode in enumerate(modes):
        support = np.abs(mode).max(axis=0) > tolerance
        if not support.any():
            continue
        rows = np.flatnonzero(support.any(axis=1))
        for start, stop in _column_runs(support.any(axis=0), gap):
            boxes.append(([k], rows[0], rows[-1] + 1, start, stop))
    # Join a box to a group when the group's matrix grows by little more than the box.
    boxes.sort(key=lambda b: -(b[2] - b[1]) * (b[4] - b[3]))
    groups = []
    for ks, r0, r1, c0, c1 in boxes:
        for i, (gks, g0, g1, h0, h1) in enumerate(groups):
            u0, u1, v0, v1 = min(r0, g0), max(r1, g1), min(c0, h0), max(c1, h1)
            grown = (len(gks) + 1) * (u1 - u0) * (v1 - v0) - len(gks) * (g1 - g0) * (h1 - h0)
            if grown <= slack * (r1 - r0) * (c1 - c0):
                groups[i] = (gks + ks, u0, u1, v0, v1)
                break
        else:
            groups.append((ks, r0, r1, c0, c1))
    blocks = []
    for ks, r0, r1, c0, c1 in groups:
        values = modes[ks][:, :, r0:r1, c0:c1].reshape(len(ks), -1)
        blocks.append(
            (np.array(ks), slice(r0, r1), slice(c0, c1), np.ascontiguousarray(values, np.float32))
        )
    return blocks


def _column_runs(mask, gap):
    """[start, stop) runs of True columns, merged across gaps; a run over the seam takes all."""
    if mask[0] and mask[-1]:
        return [(0, len(mask))]
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    runs = list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))
    merged = [runs[0]]
    for start, stop in runs[1:]:
        if start - merged[-1][1] <= gap:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


def apply_modes(mean, blocks, coeffs):
    """mean (3, rows, columns) plus the blocks' modes weighted by coeffs."""
    grid = mean.copy()
    for ks, rows, cols, values in blocks:
        view = grid[:, rows, cols]
        view += (coeffs[ks] @ values).reshape(view.shape)
    return grid


def occlusion(points, reach, depth, floor=0.4):
    """How open each grid node is: 1 on open skin, down to `floor` deep in a crease.

    A cavity map: a node that lies below the blurred surface around it (an eye
    socket, a nostril, the hollow of an ear) sees less of the sky, so it gets
    less of the ambient light.

    Args:
        points: (rows, columns, 3) grid points of the mean surface.
        reach: the blur's half-width in grid cells.
        depth: how far below its surroundings a node is fully occluded.
    """
    radius = np.linalg.norm(points, axis=-1)
    blurred = _box_blur(_box_blur(radius, reach), reach)
    sunk = np.clip((blurred - radius) / depth, 0.0, 1.0)
    return 1.0 - (1.0 - floor) * sunk


def _box_blur(x, k):
    """Mean over a (2k + 1)-square window: columns wrap around, rows stop at the edges."""
    cols = np.concatenate([x[:, -k:], x, x[:, :k]], axis=1)
    sums = np.cumsum(np.pad(cols, ((0, 0), (1, 0))), axis=1)
    x = (sums[:, 2 * k + 1 :] - sums[:, : -2 * k - 1]) / (2 * k + 1)
    rows = np.concatenate([np.repeat(x[:1], k, 0), x, np.repeat(x[-1:], k, 0)], axis=0)
    sums = np.cumsum(np.pad(rows, ((1, 0), (0, 0))), axis=0)
    return (sums[2 * k + 1 :] - sums[: -2 * k - 1]) / (2 * k + 1)
