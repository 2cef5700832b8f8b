"""The face's geometry: a mean head and its named shape parameters.

A point of the head is named by canonical coordinates `(theta, phi)` on a
sphere: longitude from the front (+z) towards +x, latitude up (+y). Its
position is `(skull + heights) * direction(W(theta, phi))`: the skull is a
smooth union of ellipsoids seen from the origin, the heights are facial
features (nose, eyes, lips, ears, ...) painted in canonical coordinates, and
`W` is a small warp that moves features about (eye spacing, nose length).
Texture is painted in the same coordinates, so it moves with the warp: a
point keeps its meaning (say, the left corner of the mouth) for every person,
as in a morphable model.

Every parameter acts through one or more of three parts — the skull, the
warp, a feature group — and each part says where on the head it can act, so
the model can be linearised one small region at a time.

Head units: about 2 units from chin to crown (1 unit ~ 11 cm); the origin is
the middle of the head, level with the eyes; +z is where the nose points.
"""

import numpy as np

# The plane the frontal feature coordinates (u, v) are projected onto, and the
# side planes for the ears (s, t): roughly where the face and the ears are.
FACE_DEPTH = 0.85
SIDE_DEPTH = 0.70

# (name, default, standard deviation, parity): parity +1 for a mirror-symmetric
# parameter, -1 for one whose mirror image is its negative (an asymmetry).
SHAPE_PARAMETERS = (
    ("head_width", 0.72, 0.035, 1),
    ("head_length", 0.94, 0.035, 1),
    ("head_height", 0.90, 0.03, 1),
    ("face_width", 0.6, 0.03, 1),
    ("face_length", 0.0, 0.035, 1),
    ("jaw_width", 0.5, 0.04, 1),
    ("jaw_angle", 0.02, 0.02, 1),
    ("chin_protrusion", 0.0, 0.025, 1),
    ("chin_width", 0.26, 0.03, 1),
    ("chin_height", 0.04, 0.015, 1),
    ("forehead", 0.03, 0.02, 1),
    ("cheekbones", 0.035, 0.02, 1),
    ("cheeks", 0.02, 0.015, 1),
    ("nose_length", 0.0, 0.035, 1),
    ("nose_width", 1.0, 0.12, 1),
    ("nose_bridge", 0.16, 0.025, 1),
    ("nose_tip", 0.08, 0.02, 1),
    ("nostril_wings", 0.055, 0.012, 1),
    ("brow_ridge", 0.05, 0.018, 1),
    ("eye_spacing", 0.0, 0.02, 1),
    ("eye_size", 0.0, 0.12, 1),
    ("eye_depth", 0.09, 0.02, 1),
    ("eye_height", 0.0, 0.02, 1),
    ("upper_lip", 0.025, 0.01, 1),
    ("lower_lip", 0.03, 0.01, 1),
    ("mouth_width", 0.0, 0.1, 1),
    ("mouth_height", 0.0, 0.025, 1),
    ("muzzle", 0.07, 0.02, 1),
    ("ear_size", 0.0, 0.1, 1),
    ("ear_protrusion", 1.0, 0.2, 1),
    ("hair_volume", 0.07, 0.025, 1),
    ("hairline", 0.0, 0.035, 1),
    ("jaw_shift", 0.0, 0.012, -1),
    ("nose_deviation", 0.0, 0.012, -1),
    ("eye_tilt", 0.0, 0.01, -1),
    ("mouth_tilt", 0.0, 0.012, -1),
)
SHAPE_NAMES = tuple(p[0] for p in SHAPE_PARAMETERS)
SHAPE_PARITY = np.array([p[3] for p in SHAPE_PARAMETERS], dtype=np.float32)

SKULL_PARAMETERS = (
    "head_width",
    "head_length",
    "head_height",
    "face_width",
    "face_length",
    "jaw_width",
    "chin_protrusion",
    "chin_width",
    "jaw_shift",
)


def default_parameters():
    """The mean head's parameters, as a dict name -> value."""
    return {name: default for name, default, _, _ in SHAPE_PARAMETERS}


def gauss(x, sigma):
    return np.exp(-0.5 * (x / sigma) ** 2)


def smoothstep(edge0, edge1, x):
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def direction(theta, phi):
    """Unit vectors for canonical coordinates, shape (..., 3)."""
    cos_phi = np.cos(phi)
    return np.stack([cos_phi * np.sin(theta), np.sin(phi), cos_phi * np.cos(theta)], axis=-1)


def coordinates(theta, phi):
    """Everything features are painted with, for canonical coordinates (flat arrays).

    `u, v`: the direction projected onto the face plane, about the face's (x, y);
    `s, t`: projected onto the side planes, about the ear's (z, y); `front` and
    `side`: soft masks of the face and of the sides of the head.
    """
    d = direction(theta, phi)
    depth = np.maximum(d[..., 2], 0.1)
    side = np.maximum(np.abs(d[..., 0]), 0.1)
    return {
        "theta": theta,
        "phi": phi,
        "d": d,
        "u": FACE_DEPTH * d[..., 0] / depth,
        "v": FACE_DEPTH * d[..., 1] / depth,
        "s": SIDE_DEPTH * d[..., 2] / side,
        "t": SIDE_DEPTH * d[..., 1] / side,
        "front": smoothstep(0.25, 0.55, d[..., 2]),
        "side": smoothstep(0.45, 0.7, np.abs(d[..., 0])),
    }


def subset(c, index):
    return {key: value[index] for key, value in c.items()}


def _ellipsoid_distance(d, center, axes, pitch=0.0):
    """Distance along unit rays d from the origin to where they leave an ellipsoid.

    The ellipsoid is tipped forward by `pitch` radians about its centre.
    """
    if pitch:
        cos, sin = np.cos(pitch), np.sin(pitch)
        d = np.stack(
            [d[..., 0], cos * d[..., 1] - sin * d[..., 2], sin * d[..., 1] + cos * d[..., 2]],
            axis=-1,
        )
        center = (center[0], cos * center[1] - sin * center[2], sin * center[1] + cos * center[2])
    d = d / axes
    c = np.asarray(center) / axes
    a = np.sum(d * d, axis=-1)
    b = d @ c
    cc = np.sum(c * c) - 1.0
    # A ray that misses an ellipsoid not around the origin contributes nothing.
    disc = b * b - a * cc
    return np.where(disc > 0.0, (b + np.sqrt(np.maximum(disc, 0.0))) / a, 0.0)


def _smooth_max(a, b, k):
    h = np.clip(0.5 + 0.5 * (a - b) / k, 0.0, 1.0)
    return b + (a - b) * h + k * h * (1.0 - h)


def skull_radius(d, p):
    """The head without features: cranium, face, jaw and chin as ellipsoids."""
    fl = p["face_length"]
    shift = p["jaw_shift"]
    cranium = _ellipsoid_distance(
        d, (0.0, 0.14, -0.1), np.array([p["head_width"], p["head_height"], p["head_length"]])
    )
    face = _ellipsoid_distance(d, (0.0, -0.1, 0.1), np.array([p["face_width"], 0.66, 0.74]))
    # The jaw is tipped so that its line rises from the chin back to the ears.
    jaw = _ellipsoid_distance(
        d,
        (shift, -0.38 - 0.5 * fl, 0.1),
        np.array([p["jaw_width"], 0.46 + 0.5 * fl, 0.6]),
        pitch=0.2,
    )
    chin = _ellipsoid_distance(
        d,
        (shift, -0.64 - fl, 0.35 + p["chin_protrusion"]),
        np.array([p["chin_width"], 0.33, 0.36]),
        pitch=0.25,
    )
    r = _smooth_max(cranium, face, 0.12)
    r = _smooth_max(r, jaw, 0.15)
    return _smooth_max(r, chin, 0.15)


def warp(c, p):
    """How far each canonical point moves, (dtheta, dphi): features move, skin follows."""
    u, v = c["u"], c["v"]
    du = np.zeros_like(u)
    dv = np.zeros_like(v)
    # Eyes: spacing and height move them, size scales them about their centre.
    ue = np.abs(u) - 0.29
    ve = v - 0.06
    eye = gauss(ue, 0.12) * gauss(ve, 0.1)
    du += np.sign(u) * (p["eye_spacing"] + p["eye_size"] * ue) * eye
    dv += (p["eye_height"] + p["eye_size"] * ve + np.sign(u) * p["eye_tilt"]) * eye
    # Lower nose: length drags the tip and wings down, deviation pushes them aside.
    nose = gauss(u, 0.16) * gauss(v + 0.27, 0.12)
    dv -= p["nose_length"] * nose * smoothstep(0.15, -0.1, v)
    du += p["nose_deviation"] * nose
    # Mouth: height and tilt move it, width stretches it sideways; a longer
    # face takes the mouth and the chin down with it.
    mouth = gauss(u, 0.3) * gauss(v + 0.52, 0.1)
    du += p["mouth_width"] * u * mouth
    dv += (p["mouth_height"] - 0.5 * p["face_length"] + p["mouth_tilt"] * u / 0.2) * mouth
    dv -= p["face_length"] * gauss(u, 0.35) * smoothstep(-0.5, -0.75, v)
    dtheta = c["front"] * du / FACE_DEPTH
    dphi = c["front"] * dv / FACE_DEPTH
    # Ears: size scales them about their centre on the side of the head.
    se, te = c["s"] + 0.1, c["t"] - 0.02
    ear = gauss(se, 0.22) * gauss(te, 0.35) * c["side"]
    dtheta -= np.sign(c["d"][..., 0]) * p["ear_size"] * se * ear / SIDE_DEPTH
    dphi += p["ear_size"] * te * ear / SIDE_DEPTH
    # Hairline: the skin and the hair's edge slide up or down the forehead together.
    line = hair_line(c["theta"])
    dphi += p["hairline"] * gauss(c["d"][..., 1] - line, 0.12) * smoothstep(-0.1, 0.3, line)
    return dtheta, dphi


# Where each warp parameter can move points (a predicate on coordinates).
def _eyes_region(c):
    return (c["d"][..., 2] > 0.3) & (np.abs(c["u"]) < 0.8) & (np.abs(c["v"] - 0.06) < 0.45)


def _nose_region(c):
    return (c["d"][..., 2] > 0.3) & (np.abs(c["u"]) < 0.5) & (np.abs(c["v"] + 0.15) < 0.55)


def _mouth_region(c):
    return (c["d"][..., 2] > 0.25) & (np.abs(c["u"]) < 1.0) & (c["v"] < 0.0)


def _ears_region(c):
    return (np.abs(c["d"][..., 0]) > 0.4) & (np.abs(c["s"] + 0.1) < 0.8) & (np.abs(c["t"]) < 1.2)


def _front_region(c):
    return c["d"][..., 2] > 0.24


def _hairline_region(c):
    return np.abs(c["d"][..., 1] - hair_line(c["theta"])) < 0.6


REGIONS = {
    "eyes": _eyes_region,
    "nose": _nose_region,
    "mouth": _mouth_region,
    "ears": _ears_region,
    "front": _front_region,
    "hairline": _hairline_region,
}

WARP_REGIONS = {
    "eye_spacing": _eyes_region,
    "eye_size": _eyes_region,
    "eye_height": _eyes_region,
    "eye_tilt": _eyes_region,
    "nose_length": _nose_region,
    "nose_deviation": _nose_region,
    "mouth_width": _mouth_region,
    "mouth_height": _mouth_region,
    "mouth_tilt": _mouth_region,
    "face_length": _mouth_region,
    "ear_size": _ears_region,
    "hairline": _hairline_region,
}


def _nose(c, p):
    u, v = c["u"] / p["nose_width"], c["v"]
    tip_v = -0.25
    width = 0.05 + 0.04 * smoothstep(0.05, tip_v, v)
    rise = smoothstep(0.17, tip_v + 0.02, v)
    drop = smoothstep(tip_v - 0.03, -0.35, v)
    ridge = p["nose_bridge"] * rise * (1.0 - drop) * np.exp(-0.5 * (u / width) ** 2)
    below = np.where(v < tip_v, 0.045, 0.07)
    tip = p["nose_tip"] * gauss(u, 0.065) * gauss(v - tip_v, below)
    wings = p["nostril_wings"] * gauss(np.abs(u) - 0.095, 0.055) * gauss(v + 0.28, 0.05)
    nostrils = -0.015 * gauss(np.abs(u) - 0.045, 0.016) * gauss(v + 0.335, 0.012)
    base = np.maximum(ridge, tip)
    return c["front"] * (base + np.maximum(wings - base * 0.6, 0.0) + nostrils)


def _eyes(c, p):
    u, v = c["u"], c["v"]
    ue = np.abs(u) - 0.29
    ve = v - 0.06
    socket = -p["eye_depth"] * gauss(ue, 0.15) * gauss(ve, 0.11)
    ball = 0.065 * gauss(ue, 0.085) * gauss(ve, 0.055)
    brow = p["brow_ridge"] * np.exp(-((u / 0.48) ** 4)) * gauss(v - 0.2, 0.06)
    return c["front"] * (socket + ball + brow)


def _mouth(c, p):
    u, v = c["u"], c["v"]
    flat = np.exp(-((u / 0.2) ** 4))
    bow = 0.006 * gauss(np.abs(u) - 0.05, 0.03)
    upper = (p["upper_lip"] + bow) * flat * gauss(v + 0.47, 0.04)
    lower = p["lower_lip"] * np.exp(-((u / 0.18) ** 4)) * gauss(v + 0.565, 0.042)
    line = -0.02 * np.exp(-((u / 0.21) ** 4)) * gauss(v + 0.515, 0.012)
    muzzle = p["muzzle"] * gauss(u, 0.26) * gauss(v + 0.48, 0.16)
    sulcus = -0.015 * gauss(u, 0.13) * gauss(v + 0.66, 0.03)
    philtrum = -0.008 * gauss(u, 0.02) * gauss(v + 0.41, 0.04)
    return c["front"] * (upper + lower + line + muzzle + sulcus + philtrum)


def _face(c, p):
    u, v = c["u"], c["v"]
    au = np.abs(u)
    bones = p["cheekbones"] * gauss(au - 0.45, 0.12) * gauss(v + 0.04, 0.09)
    cheeks = p["cheeks"] * gauss(au - 0.3, 0.14) * gauss(v + 0.3, 0.13)
    chin = p["chin_height"] * gauss(u, 0.13) * gauss(v + 0.82, 0.08)
    forehead = p["forehead"] * gauss(u, 0.35) * gauss(v - 0.5, 0.18)
    fold = -0.012 * gauss(au - 0.14 - 0.45 * (-0.3 - v), 0.02) * gauss(v + 0.42, 0.09)
    return c["front"] * (bones + cheeks + chin + forehead + fold)


def ear_frame(c):
    """Where a point lies on its ear: (across, along, radius), 1 at the ear's outline.

    `across` runs from the back of the ear (-1) to its front (+1), `along`
    from the lobe (-1) to the top (+1); the ear is tilted back 15 degrees
    and wider at the top than at the lobe.
    """
    tilt = np.deg2rad(15.0)
    se, te = c["s"] + 0.1, c["t"] - 0.02
    across = (np.cos(tilt) * se - np.sin(tilt) * te) / 0.16
    along = (np.sin(tilt) * se + np.cos(tilt) * te) / 0.29
    across = across / (1.0 + 0.15 * np.clip(along, -1.0, 1.0))
    return across, along, np.sqrt(across * across + along * along)


def concha(c):
    """The hollow of the ear, in front of its middle (0..1)."""
    across, along, _ = ear_frame(c)
    return c["side"] * gauss(across - 0.2, 0.3) * gauss(along + 0.1, 0.3)


def _ears(c, p):
    """Ear flaps on the side planes: a rim (helix), a hollow (concha), a lobe."""
    a, b, rho = ear_frame(c)
    flap = smoothstep(1.08, 0.75, rho)
    # The back of the ear stands further off the head than its front.
    stand = 0.05 + 0.05 * smoothstep(0.6, -0.9, a)
    rim = 0.03 * gauss(rho - 0.78, 0.11) * smoothstep(0.9, -0.2, a + 0.6 * b)
    antihelix = 0.015 * gauss(rho - 0.45, 0.08) * smoothstep(0.3, -0.3, a)
    hollow = -0.06 * gauss(a - 0.2, 0.3) * gauss(b + 0.1, 0.3)
    lobe = 0.015 * gauss(a, 0.4) * gauss(b + 0.8, 0.15)
    jaw = p["jaw_angle"] * gauss(c["s"], 0.15) * gauss(c["t"] + 0.75, 0.15)
    ear = flap * (stand + rim + antihelix + hollow + lobe)
    return c["side"] * (p["ear_protrusion"] * ear + jaw)


def hair_line(theta):
    """Height (as the y of a direction) of the hairline around the head."""
    return np.interp(
        np.abs(theta),
        np.deg2rad([0, 20, 40, 55, 65, 74, 81, 88, 100, 108, 118, 135, 180]),
        [0.66, 0.64, 0.57, 0.46, 0.37, 0.22, 0.16, 0.33, 0.37, 0.33, 0.12, -0.2, -0.3],
    )


def hair_mask(d):
    """Where the hair grows, from directions: a soft cap down to the nape, a ragged edge."""
    theta = np.arctan2(d[..., 0], d[..., 2])
    # Even in theta, so the edge is the same on both sides of the face.
    ragged = 0.012 * np.cos(23 * theta) + 0.008 * np.cos(41 * theta) * np.cos(7 * theta)
    line = hair_line(theta) + ragged
    return smoothstep(line - 0.04, line + 0.05, d[..., 1])


def _hair(c, p):
    # Hair thickens gradually from the hairline, so it leaves no step on the skin.
    line = hair_line(c["theta"])
    return p["hair_volume"] * smoothstep(line - 0.02, line + 0.25, c["d"][..., 1])


def _hair_region(c):
    return c["d"][..., 1] > -0.5


# Feature groups: (heights function, its parameters, where it can be nonzero).
FEATURES = (
    (_nose, ("nose_width", "nose_bridge", "nose_tip", "nostril_wings"), _nose_region),
    (_eyes, ("eye_depth", "brow_ridge"), _eyes_region),
    (_mouth, ("upper_lip", "lower_lip", "muzzle"), _mouth_region),
    (_face, ("cheekbones", "cheeks", "chin_height", "forehead"), _front_region),
    (_ears, ("ear_protrusion", "jaw_angle"), _ears_region),
    (_hair, ("hair_volume",), _hair_region),
)


def heights(c, p):
    """All feature heights of points with coordinates c."""
    total = np.zeros_like(c["u"])
    for fn, _, region in FEATURES:
        index = np.flatnonzero(region(c))
        total[index] += fn(subset(c, index), p)
    return total


def head_points(theta, phi, p):
    """3D points of the head for canonical coordinates and parameters p (nonlinear)."""
    c = coordinates(theta, phi)
    dtheta, dphi = warp(c, p)
    d = direction(theta + dtheta, phi + dphi)
    return (skull_radius(d, p) + heights(c, p))[..., None] * d
