"""The face's texture: skin, hair, brows, eyes and lips painted in canonical coordinates.

Albedo is RGB in [0, 1], built like paint: layers (skin, lips, eye whites,
irises, brows, hair, ...) each cover part of the head with a weight, and each
has a colour from a small palette. Colour parameters (skin tone, hair colour,
lip colour, ...) change the palette; the others (brow darkness, hairline,
blush, ...) change where a layer lies. Both are N(0, 1) coefficients that the
morphable model linearises into albedo modes. Specular strength and
shininess are fixed maps: skin is matte, lips glossier, eyes wet.
"""

import numpy as np

from keras_dcign.datasets._face_shape import concha, gauss, hair_line, hair_mask, smoothstep

# (name, parity, kind): parity +1 mirror-symmetric, -1 an asymmetry; kind says
# whether it changes the palette ("colour") or where layers lie ("weight").
ALBEDO_PARAMETERS = (
    ("skin_tone", 1, "colour"),
    ("skin_warmth", 1, "colour"),
    ("hair_colour", 1, "colour"),
    ("lip_colour", 1, "colour"),
    ("iris_darkness", 1, "colour"),
    ("brow_darkness", 1, "weight"),
    ("brow_thickness", 1, "weight"),
    ("blush", 1, "weight"),
    ("beard_shadow", 1, "weight"),
    ("under_eye", 1, "weight"),
    ("lash_darkness", 1, "weight"),
    ("brow_asymmetry", -1, "weight"),
    ("blush_asymmetry", -1, "weight"),
)
ALBEDO_NAMES = tuple(p[0] for p in ALBEDO_PARAMETERS)
ALBEDO_PARITY = np.array([p[1] for p in ALBEDO_PARAMETERS], dtype=np.float32)

SKIN = np.array([0.72, 0.55, 0.46])
HAIR = np.array([0.3, 0.23, 0.17])
LIPS = np.array([0.6, 0.36, 0.34])
SCLERA = np.array([0.64, 0.62, 0.6])
IRIS = np.array([0.32, 0.25, 0.18])
DARK = np.array([0.1, 0.065, 0.055])
PUPIL = np.array([0.03, 0.03, 0.03])


def palette(q):
    """The colour of every layer for albedo parameters q (a dict); linear in q."""
    skin = SKIN * (1.0 + 0.15 * q["skin_tone"]) + np.array([0.04, 0.0, -0.04]) * q["skin_warmth"]
    hair = HAIR * (1.0 - 0.35 * q["hair_colour"])
    return {
        "skin": skin,
        "lips": LIPS * (1.0 - 0.12 * q["lip_colour"]),
        "dark": DARK,
        "sclera": SCLERA,
        "iris": IRIS * (1.0 - 0.2 * q["iris_darkness"]),
        "pupil": PUPIL,
        "brow": 0.8 * hair,
        "hair": hair,
    }


def ripples(theta, phi, seed, count, max_theta, max_phi):
    """A fixed, mirror-symmetric pattern of waves: skin pores, hair strands."""
    rng = np.random.default_rng(seed)
    m = rng.integers(1, max_theta, count)
    n = rng.uniform(0.5, max_phi, count)
    shift = rng.uniform(0, 2 * np.pi, count)
    total = np.zeros_like(theta)
    for mi, ni, si in zip(m, n, shift):
        total += np.cos(mi * theta) * np.cos(ni * phi + si)
    return total / np.sqrt(count / 2.0)


def head_layers(c, q):
    """Layers of the head, bottom first: (name, weight (N,), per-channel factor or None)."""
    u, v, d, front = c["u"], c["v"], c["d"], c["front"]
    au = np.abs(u)
    side = np.sign(u)
    # Skin: pores, warm cheeks, nose and ears, beard shadow, darker under the eyes.
    blush = (
        (0.08 + 0.04 * q["blush"] + 0.03 * side * q["blush_asymmetry"])
        * front
        * (gauss(au - 0.3, 0.1) * gauss(v + 0.2, 0.1) + gauss(u, 0.07) * gauss(v + 0.25, 0.06))
    )
    ears = 0.06 * gauss(c["s"] + 0.1, 0.15) * gauss(c["t"] + 0.05, 0.28) * c["side"]
    beard = (
        np.clip(0.03 + 0.05 * q["beard_shadow"], 0.0, 0.25)
        * front
        * (smoothstep(-0.38, -0.5, v) * (1.0 - 0.8 * gauss(u, 0.2) * gauss(v + 0.52, 0.08)))
    )
    ue, ve = au - 0.29, v - 0.06
    under_eye = (0.08 + 0.05 * q["under_eye"]) * gauss(ue, 0.07) * gauss(ve + 0.09, 0.03)
    crease = 0.15 * gauss(ve - 0.06, 0.01) * gauss(ue + 0.01, 0.08)
    # The ear's hollow is darker than the skin around it: little light gets in.
    hollow = 0.3 * concha(c)
    shade = (1.0 + 0.025 * c["pores"]) * (1.0 - beard - front * (under_eye + crease) - hollow)
    factor = shade[:, None] * (1.0 - (blush + ears)[:, None] * np.array([0.0, 0.5, 0.5]))
    layers = [("skin", np.ones_like(u), factor)]

    # Lips, mouth line and nostrils.
    lips = gauss(v + 0.465, 0.024) * np.exp(-((u / 0.17) ** 4))
    lips += gauss(v + 0.565, 0.028) * np.exp(-((u / 0.15) ** 4))
    layers.append(("lips", 0.9 * lips * front, None))
    mouth = gauss(v + 0.515, 0.007) * np.exp(-((u / 0.2) ** 4))
    nostrils = gauss(au - 0.045, 0.016) * gauss(v + 0.338, 0.01)
    layers.append(("dark", np.clip(0.9 * mouth + nostrils, 0.0, 1.0) * front, None))

    # Eyes: an almond of white, an iris and a pupil, a dark lash line above.
    opening = 0.045 * np.sqrt(np.clip(1.0 - (ue / 0.12) ** 2, 0.0, 1.0))
    white = smoothstep(0.006, -0.004, np.abs(ve + 0.004) - opening) * (np.abs(ue) < 0.12)
    layers.append(("sclera", white * front, None))
    iris_r = np.hypot(ue, ve)
    layers.append(("iris", smoothstep(0.057, 0.05, iris_r) * white * front, None))
    layers.append(("pupil", smoothstep(0.024, 0.019, iris_r) * white * front, None))
    lash = gauss(ve - opening - 0.004, 0.009) * (np.abs(ue) < 0.13) * (1 - white)
    layers.append(("dark", np.clip(0.75 + 0.1 * q["lash_darkness"], 0, 1) * lash * front, None))

    # Brows: an arch over each eye, thick near the nose, thinning outwards.
    arch = 0.2 + 0.025 * np.sin(np.pi * np.clip((au - 0.1) / 0.38, 0.0, 1.0))
    thickness = (0.036 + 0.006 * q["brow_thickness"]) * (1.0 - 0.45 * smoothstep(0.2, 0.46, au))
    brow = gauss(v - arch, thickness) * smoothstep(0.06, 0.12, au) * smoothstep(0.5, 0.42, au)
    strength = np.clip(0.8 + 0.1 * q["brow_darkness"] + 0.1 * side * q["brow_asymmetry"], 0, 1)
    layers.append(("brow", strength * brow * front, None))

    # Hair: a cap with strands running from the crown down.
    cap = hair_mask(d)
    layers.append(("hair", cap, (1.0 + 0.1 * c["strands"])[:, None]))
    return layers


def neck_layers(c, q):
    """Layers of the neck: skin, a little darker under the jaw, hair at the nape."""
    alpha, y = c["alpha"], c["y"]
    shade = (1.0 - 0.08 * smoothstep(-0.9, -0.5, y)) * (
        1.0 + 0.02 * np.cos(37 * alpha) * np.cos(23 * y)
    )
    nape_line = hair_line(alpha) - 0.1
    nape = smoothstep(nape_line - 0.05, nape_line + 0.05, y + 0.0 * alpha)
    return [
        ("skin", np.ones_like(y), np.repeat(shade[:, None], 3, axis=1)),
        ("hair", nape * smoothstep(-0.75, -0.45, y), None),
    ]


def coverage(layers):
    """How much of each palette colour shows at each point, (N, 3) per colour name."""
    result = {}
    remaining = np.ones_like(layers[0][1])
    for name, weight, factor in reversed(layers):
        share = (weight * remaining)[:, None]
        if factor is not None:
            share = share * factor
        result[name] = result.get(name, 0.0) + np.broadcast_to(share, share.shape[:1] + (3,))
        remaining = remaining * (1.0 - weight)
    return result


def albedo(layers, q):
    """RGB albedo (N, 3) of layers painted with the palette of q."""
    colours = palette(q)
    return sum(share * colours[name] for name, share in coverage(layers).items())


def head_specular(c):
    """(strength, shininess) of head points: the same for every person."""
    u, v, d, front = c["u"], c["v"], c["d"], c["front"]
    oily = front * (gauss(u, 0.1) * gauss(v + 0.1, 0.2) + gauss(u, 0.3) * gauss(v - 0.45, 0.15))
    lips = front * gauss(v + 0.515, 0.06) * np.exp(-((u / 0.18) ** 4))
    eye = front * gauss(np.abs(u) - 0.29, 0.06) * gauss(v - 0.056, 0.03)
    cap = hair_mask(d)
    strength = 0.05 + 0.03 * oily + 0.08 * lips + 0.5 * eye + 0.04 * cap
    shininess = 14.0 + 50.0 * eye + 10.0 * lips - 8.0 * cap
    return strength, shininess
