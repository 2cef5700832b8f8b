"""The face generator renders physics, not noise: pose, light and identity behave."""

import numpy as np
import pytest

from keras_dcign.datasets import faces

pytestmark = pytest.mark.backend_independent

SIZE = 64


def test_render_shapes_range_and_background():
    image = faces.render(3, azimuth=20.0, elevation=-10.0, light=30.0, image_size=SIZE)
    assert image.shape == (SIZE, SIZE) and image.dtype == np.float32
    assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0
    assert image.max() > 0.5  # a lit face, not a dark smudge
    assert (image[:2] == 0).all() and (image[:, :2] == 0).all()  # black background
    batch = faces.render([1, 2, 3], azimuth=[-60.0, 0.0, 60.0], image_size=SIZE)
    assert batch.shape == (3, SIZE, SIZE)
    np.testing.assert_array_equal(batch[2], faces.render(3, 60.0, image_size=SIZE))
    rgb = faces.render(3, color_mode="rgb", image_size=SIZE)
    assert rgb.shape == (SIZE, SIZE, 3)
    # Grayscale is the luminance of the colour picture.
    luma = rgb @ np.array([0.21, 0.72, 0.07], np.float32)
    assert np.abs(luma - faces.render(3, image_size=SIZE)).mean() < 2e-3
    # Skin is warm: more red than blue where the face is.
    face = rgb.sum(-1) > 0.3
    assert rgb[face, 0].mean() > rgb[face, 2].mean() + 0.05


def _enclosed_background(head):
    """Background pixels the border cannot reach: holes in the head."""
    outside = np.zeros_like(head)
    border = np.zeros_like(head)
    border[[0, -1]] = border[:, [0, -1]] = True
    outside[border] = ~head[border]
    while True:
        grown = outside.copy()
        grown[1:] |= outside[:-1]
        grown[:-1] |= outside[1:]
        grown[:, 1:] |= outside[:, :-1]
        grown[:, :-1] |= outside[:, 1:]
        grown &= ~head
        if (grown == outside).all():
            return ~head & ~outside
        outside = grown


@pytest.mark.parametrize("size", [32, 64])
def test_heads_have_no_holes(size):
    rng = np.random.default_rng(size)
    people = rng.choice(faces.identities("train"), 6)
    images = faces.render(
        people,
        rng.uniform(-90, 90, 6),
        rng.uniform(-25, 25, 6),
        rng.uniform(-80, 80, 6),
        image_size=size,
    )
    for image in images:
        assert not _enclosed_background(image > 0).any()


def test_render_is_deterministic():
    a = faces.render(42, 33.0, 12.0, -40.0, image_size=SIZE)
    b = faces.render(42, 33.0, 12.0, -40.0, image_size=SIZE)
    np.testing.assert_array_equal(a, b)
    first = next(faces.batches("MIXED", batch_size=4, image_size=32, seed=5))
    again = next(faces.batches("MIXED", batch_size=4, image_size=32, seed=5))
    other = next(faces.batches("MIXED", batch_size=4, image_size=32, seed=6))
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("azimuth, light", [(30.0, -50.0), (-70.0, 20.0), (0.0, 60.0)])
def test_mirror_symmetry(azimuth, light):
    person = faces.symmetric(faces.coefficients(11))
    image = faces.render(person, azimuth, 5.0, light, image_size=SIZE)
    mirrored = faces.render(person, -azimuth, 5.0, -light, image_size=SIZE)[:, ::-1]
    assert np.abs(image - mirrored).mean() < 1e-4
    assert np.abs(image - mirrored).max() < 0.05


def test_mirror_image_of_an_asymmetric_person():
    person = faces.coefficients(12)
    assert not np.allclose(person, faces.mirror(person))
    image = faces.render(faces.mirror(person), 40.0, 0.0, 30.0, image_size=SIZE)
    mirrored = faces.render(person, -40.0, 0.0, -30.0, image_size=SIZE)[:, ::-1]
    assert np.abs(image - mirrored).mean() < 1e-4
    np.testing.assert_array_equal(faces.mirror(faces.mirror(person)), person)
    assert faces.symmetric(person)[faces.N_SHAPE_MODES - 1] == 0.0  # mouth tilt is asymmetric


def test_light_from_the_right_brightens_the_right_half():
    lights = np.linspace(-80.0, 80.0, 9)
    images = faces.render(3, 0.0, 0.0, lights, image_size=SIZE)
    half = SIZE // 2
    left_minus_right = images[:, :, :half].mean((1, 2)) - images[:, :, half:].mean((1, 2))
    assert np.all(np.diff(left_minus_right) < 0), left_minus_right
    assert left_minus_right[0] > 0.05 and left_minus_right[-1] < -0.05


def test_light_sweep_keeps_the_silhouette():
    images = faces.render(8, 25.0, -10.0, np.linspace(-80.0, 80.0, 5), image_size=SIZE)
    masks = images > 0
    for mask in masks[1:]:
        np.testing.assert_array_equal(mask, masks[0])
    assert not np.allclose(images[0], images[-1])


def test_pose_moves_nose_tip_and_silhouette_monotonically():
    azimuths = np.linspace(-90.0, 90.0, 13)
    nose = faces.landmarks(3, azimuths, 0.0, image_size=SIZE)["nose_tip"]
    assert np.all(np.diff(nose[:, 0]) > 0)
    images = faces.render(3, azimuths, 0.0, 0.0, image_size=SIZE)
    centroid = [np.nonzero(image > 0)[1].mean() for image in images]
    assert np.all(np.diff(centroid) > 0), centroid
    # In profile the nose tip is the face's outermost point on its row.
    row = int(nose[-1, 1])
    assert abs(np.nonzero(images[-1][row] > 0)[0].max() + 1 - nose[-1, 0]) < 1.5
    row = int(nose[0, 1])
    assert abs(np.nonzero(images[0][row] > 0)[0].min() - nose[0, 0]) < 1.5


def test_elevation_moves_the_face_down_the_picture():
    mouth = faces.landmarks(3, 0.0, np.linspace(-25.0, 25.0, 6), image_size=SIZE)["mouth_left"]
    assert np.all(np.diff(mouth[:, 1]) > 0)


def test_landmarks_are_where_a_face_has_them():
    points = faces.landmarks(5, 0.0, 0.0, image_size=SIZE)
    left, right, nose = points["left_eye"], points["right_eye"], points["nose_tip"]
    assert left[0] > nose[0] > right[0]  # the person's left eye is on the viewer's right
    assert abs(left[1] - right[1]) < 1.0
    assert left[1] < nose[1] < points["mouth_left"][1] < points["chin"][1]


def test_different_people_differ_and_the_same_person_does_not():
    people = [0, 1, 2, 3, 4, 5]
    images = faces.render(people, 0.0, 0.0, 0.0, image_size=SIZE)
    for i in range(len(people)):
        for j in range(i + 1, len(people)):
            assert np.abs(images[i] - images[j]).mean() > 0.01, (i, j)
    again = faces.render(people, 0.0, 0.0, 0.0, image_size=SIZE)
    np.testing.assert_array_equal(images, again)


def test_elevation_sweep_keeps_albedo_statistics():
    def skin(person, elevation):
        maps = faces.render_buffers(person, 0.0, elevation, 30.0, image_size=SIZE)
        face = maps["mask"]
        return np.median(maps["albedo"][face])

    pale, dark = np.argmax, np.argmin
    tones = [faces.coefficients(i)[faces.N_SHAPE_MODES] for i in range(20)]
    light_person, dark_person = int(pale(tones)), int(dark(tones))
    for person in (light_person, dark_person):
        values = [skin(person, e) for e in np.linspace(-25.0, 25.0, 5)]
        assert max(values) - min(values) < 0.02, values
    assert skin(light_person, 0.0) - skin(dark_person, 0.0) > 0.1


def _shadowed_beside_nose(light_azimuth, size=96):
    """Pixels that face the lamp yet get ambient light only: left of the nose, on the face."""
    maps = faces.render_buffers(4, 0.0, 0.0, light_azimuth, image_size=size)
    a, e = np.radians(light_azimuth), np.radians(faces.LIGHT_ELEVATION)
    light = np.array([np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])
    facing_light = (maps["normals"] @ light) > 0.2
    shadowed = maps["mask"] & facing_light & (maps["image"] < maps["albedo"] * 0.45)
    nose = faces.landmarks(4, 0.0, 0.0, image_size=size)["nose_tip"]
    rows, cols = np.nonzero(shadowed)
    face = (np.abs(cols - nose[0]) < 20) & (np.abs(rows - nose[1]) < 25)
    return ((cols < nose[0]) & (np.abs(rows - nose[1]) < 12)).sum(), face.sum()


def test_side_light_casts_the_nose_shadow_on_the_cheek():
    beside_nose, _ = _shadowed_beside_nose(45.0)
    assert beside_nose >= 5
    # Lit from the front, nothing on the face that faces the lamp is dark: no shadow acne.
    assert _shadowed_beside_nose(0.0)[1] == 0


def test_render_buffers():
    maps = faces.render_buffers(6, 10.0, 5.0, -20.0, image_size=SIZE)
    assert set(maps) == {"image", "albedo", "depth", "normals", "mask"}
    mask = maps["mask"]
    assert mask.dtype == bool and 0.2 < mask.mean() < 0.8
    assert np.isinf(maps["depth"][~mask]).all() and np.isfinite(maps["depth"][mask]).all()
    lengths = np.linalg.norm(maps["normals"][mask], axis=-1)
    assert np.median(lengths) > 0.95
    assert np.median(maps["normals"][mask][:, 2]) > 0.5  # surfaces face the camera
    with pytest.raises(ValueError, match="one picture"):
        faces.render_buffers([1, 2], image_size=SIZE)


def test_identities_split_deterministically():
    train, test = faces.identities("train"), faces.identities("test")
    assert len(train) + len(test) == faces.N_IDENTITIES
    assert len(test) == faces.N_TEST_IDENTITIES
    assert not set(train.tolist()) & set(test.tolist())
    np.testing.assert_array_equal(train, faces.identities("train"))


def test_coefficients_are_standard_normal_draws():
    draws = np.stack([faces.coefficients(i) for i in range(400)])
    assert draws.shape == (400, faces.N_COEFFICIENTS) and draws.dtype == np.float32
    assert faces.N_SHAPE_MODES >= 30 and faces.N_COEFFICIENTS - faces.N_SHAPE_MODES >= 10
    assert abs(draws.mean()) < 0.05 and 0.9 < draws.std() < 1.1
    assert np.abs(draws).max() <= 3.0
    np.testing.assert_array_equal(faces.coefficients(7), faces.coefficients(7))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: faces.render(-1, image_size=16), "identity -1"),
        (lambda: faces.render(10_000, image_size=16), "identity 10000"),
        (lambda: faces.render(1, azimuth=200.0, image_size=16), "azimuth 200"),
        (lambda: faces.render(1, elevation=float("nan"), image_size=16), "elevation nan"),
        (lambda: faces.render(1, light="left", image_size=16), "light must be"),
        (lambda: faces.render(1, image_size=0), "image_size"),
        (lambda: faces.render(np.zeros(5), image_size=16), "coefficient vector of length"),
        (lambda: faces.render(1, color_mode="bgr", image_size=16), "color_mode"),
        (lambda: next(faces.batches("POSE")), "kind must be one of"),
        (lambda: next(faces.batches("AZ", split="val")), "split must be"),
        (lambda: next(faces.batches("AZ", batch_size=0)), "batch_size"),
        (lambda: next(faces.batches("AZ", azimuth_range=(10, -10))), "azimuth_range"),
        (lambda: next(faces.training_batches(shape_bias=-1)), "shape_bias"),
        (lambda: faces.coefficients(1.5), "int id"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_gallery(tmp_path):
    path = tmp_path / "gallery.png"
    sheet = faces.gallery(path, image_size=32, columns=3)
    assert sheet.shape == (4 * 32, 3 * 32) and sheet.dtype == np.uint8
    assert path.exists()
