import numpy as np
import pytest
from helpers import tiny_calibrated_model
from PIL import Image

from keras_dcign.image_files import load_image, rerender_file, traverse_file


@pytest.fixture
def calibrated():
    return tiny_calibrated_model()


def _write(path, mode="RGB", size=(80, 50), fmt=None):
    rng = np.random.default_rng(0)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode=mode)
    image.save(path, format=fmt)
    return pixels


@pytest.mark.backend_independent
def test_rgb_to_gray_uses_the_reference_weights(tmp_path):
    pixels = _write(tmp_path / "a.png", size=(32, 32))
    gray = load_image(tmp_path / "a.png", 32)
    expected = (pixels / 255.0) @ np.array([0.21, 0.72, 0.07])
    np.testing.assert_allclose(gray[..., 0], expected, atol=1e-5)


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "mode, fmt, name", [("RGBA", "PNG", "a.png"), ("L", "JPEG", "b.jpg"), ("RGB", "JPEG", "c.jpeg")]
)
def test_any_mode_and_size(tmp_path, mode, fmt, name):
    _write(tmp_path / name, mode=mode, size=(120, 70), fmt=fmt)
    image = load_image(tmp_path / name, 32)
    assert image.shape == (32, 32, 1) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 1
    assert load_image(tmp_path / name, 32, channels=3).shape == (32, 32, 3)


@pytest.mark.backend_independent
def test_unreadable_inputs(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_image(tmp_path / "missing.png", 32)
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ValueError, match="Cannot read image .*text.png"):
        load_image(tmp_path / "text.png", 32)


def test_rerender_file_writes_beside_the_input(tmp_path, calibrated):
    _write(tmp_path / "face.png")
    before = (tmp_path / "face.png").read_bytes()
    written = rerender_file(calibrated, tmp_path / "face.png", light="left", compare=True)
    assert [p.name for p in written] == ["face_light-left.png", "face_light-left_compare.png"]
    assert Image.open(written[0]).size == (32, 32)
    assert Image.open(written[1]).size == (96, 32)
    assert (tmp_path / "face.png").read_bytes() == before
    with pytest.raises(ValueError, match="would overwrite the input"):
        rerender_file(calibrated, tmp_path / "face.png", out=tmp_path / "face.png", light=10.0)
    with pytest.raises(ValueError, match="Nothing to change"):
        rerender_file(calibrated, tmp_path / "face.png")
    with pytest.raises(ValueError, match="outside the calibrated range"):
        rerender_file(calibrated, tmp_path / "face.png", light=200.0)


def test_unwritable_output_folder(tmp_path, calibrated):
    _write(tmp_path / "face.png")
    (tmp_path / "plain-file").write_text("")
    with pytest.raises(ValueError, match="does not exist or is not writable"):
        rerender_file(
            calibrated, tmp_path / "face.png", out=tmp_path / "plain-file" / "x.png", light=10.0
        )


def test_missing_output_folder(tmp_path, calibrated):
    _write(tmp_path / "face.png")
    with pytest.raises(ValueError, match="does not exist or is not writable"):
        rerender_file(calibrated, tmp_path / "face.png", out=tmp_path / "no" / "x.png", light=1.0)


def test_traverse_writes_a_gif_and_a_grid(tmp_path, calibrated):
    _write(tmp_path / "face.png")
    gif, grid = traverse_file(calibrated, tmp_path / "face.png", "light", frames=10)
    with Image.open(gif) as animation:
        assert animation.n_frames == 10
    assert Image.open(grid).size == (8 * 32, 2 * 32)
    with pytest.raises(ValueError, match="factor='hair'"):
        traverse_file(calibrated, tmp_path / "face.png", "hair")


# A photograph shipped with scikit-image (NASA's portrait of Eileen Collins, public domain):
# her face lies within this box of the 512x512 picture.
FACE_IN_ASTRONAUT = (150, 40, 300, 190)


def _photograph(tmp_path, mode, fmt):
    skimage_data = pytest.importorskip("skimage.data")
    pixels = skimage_data.astronaut()
    image = Image.fromarray(pixels)
    if mode == "RGBA":
        image.putalpha(255)
    elif mode in ("L", "LA"):
        image = image.convert(mode)
    path = tmp_path / f"photo.{fmt}"
    image.save(path)
    return path


@pytest.mark.parametrize(
    "mode, fmt", [("RGB", "png"), ("RGB", "jpg"), ("L", "png"), ("L", "jpg"), ("RGBA", "png")]
)
def test_crop_auto_finds_the_face_in_a_photograph(tmp_path, mode, fmt):
    pytest.importorskip("cv2")
    from keras_dcign.image_files import _face_box, read_image

    path = _photograph(tmp_path, mode, fmt)
    pixels = read_image(path)
    box = _face_box(Image.fromarray(np.round(pixels[..., 0] * 255).astype("uint8")))
    left, top, right, bottom = box
    face_left, face_top, face_right, face_bottom = FACE_IN_ASTRONAUT
    assert left <= face_left and top <= face_top and right >= face_right and bottom >= face_bottom
    assert right - left < 512 * 0.6  # the face, not the whole picture
    auto = load_image(path, 64, crop="auto")
    centre = load_image(path, 64, crop="center")
    assert auto.shape == centre.shape == (64, 64, 1)
    assert np.mean((auto - centre) ** 2) > 1e-3


@pytest.mark.parametrize(
    "mode, fmt, crop",
    [
        ("RGB", "png", "auto"),
        ("RGB", "jpg", "auto"),
        ("L", "jpg", "auto"),
        ("RGBA", "png", "auto"),
        ("LA", "png", "auto"),
        ("L", "png", "center"),
        ("RGBA", "png", "center"),
    ],
)
def test_dcign_render_crops_a_photograph(tmp_path, calibrated, mode, fmt, crop):
    if crop == "auto":
        pytest.importorskip("cv2")
    from click.testing import CliRunner
    from keras_dcign_cli.main import cli

    preset = calibrated.save_to_preset(tmp_path / "tiny", card="# Tiny\n")
    path = _photograph(tmp_path, mode, fmt)
    result = CliRunner().invoke(
        cli, ["render", str(path), "--crop", crop, "--light", "left", "--preset", str(preset)]
    )
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "photo_light-left.png") as out:
        assert out.size == (32, 32)


@pytest.mark.backend_independent
def test_images_are_read_as_a_viewer_shows_them(tmp_path):
    """Upright by the EXIF orientation, and transparency composited over black."""
    from PIL import Image

    from keras_dcign.image_files import read_image

    pixels = np.zeros((20, 40), "uint8")
    pixels[:, :10] = 255  # a bright band on the left of a landscape picture
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # stored sideways: a viewer turns it 90 degrees clockwise
    image.save(tmp_path / "sideways.jpg", exif=exif, quality=95)
    upright = read_image(tmp_path / "sideways.jpg")
    assert upright.shape == (40, 20, 1)
    assert upright[:10].mean() > 0.9 and upright[10:].mean() < 0.1  # the band is now on top

    rgba = np.zeros((20, 20, 4), "uint8")
    rgba[..., :3] = 255
    rgba[:, :10, 3] = 255  # white, opaque on the left, transparent on the right
    Image.fromarray(rgba, "RGBA").save(tmp_path / "half.png")
    read = read_image(tmp_path / "half.png")
    assert read.shape == (20, 20, 3)
    assert read[:, :10].min() == 1.0 and read[:, 10:].max() == 0.0
