"""The original DC-IGN layout: export, read back, Torch7 batches, PNG folders, bad files."""

import itertools
import os

import numpy as np
import pytest
import torchfile
from PIL import Image
from torch7_writer import write_float_tensor, write_t7

from keras_dcign.datasets import faces

pytestmark = pytest.mark.backend_independent


def _batches(kind, n, split="train", size=24):
    stream = faces.batches(kind, batch_size=3, image_size=size, split=split, seed=9)
    return list(itertools.islice(stream, n))


def test_torch7_writer_matches_torchfile(tmp_path):
    array = np.random.default_rng(0).random((2, 1, 5, 4)).astype(np.float32)
    path = str(tmp_path / "batch1")
    write_float_tensor(path, array)
    loaded = torchfile.load(path)
    assert loaded.dtype == np.float32 and loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)
    # Header: type TORCH (4), reference 1, "V 1", class name; then 4 dims.
    with open(path, "rb") as f:
        head = f.read(42)
    assert head[:8] == b"\x04\x00\x00\x00\x01\x00\x00\x00"
    assert head[8:15] == b"\x03\x00\x00\x00V 1" and head[19:36] == b"torch.FloatTensor"
    table = str(tmp_path / "config.t7")
    write_t7(table, {"name": "dcign", "sizes": [96, 48], "lr": 5e-4, "flat": array.ravel()})
    config = torchfile.load(table)
    assert config[b"name"] == b"dcign" and config[b"sizes"] == [96, 48]
    assert config[b"lr"] == 5e-4
    np.testing.assert_array_equal(config[b"flat"], array.ravel())


def _folders(root):
    return sorted(
        os.path.relpath(os.path.join(parent, name), root)
        for parent, names, _ in os.walk(root)
        for name in names
        if name.startswith("batch")
    )


def test_export_and_read_back(tmp_path):
    root = str(tmp_path / "ref")
    train = _batches("AZ", 2) + _batches("SHAPE", 1)
    test = _batches("LIGHT", 1, split="test")
    assert faces.export_reference_layout(root, train, progress=False) == root
    faces.export_reference_layout(root, test, split="test", progress=False)
    assert _folders(root) == [
        os.path.join("th_AZ_VARIED", "FT_training", "batch1"),
        os.path.join("th_AZ_VARIED", "FT_training", "batch2"),
        os.path.join("th_LIGHT_AZ_VARIED", "FT_test", "batch1"),
        os.path.join("th_SHAPE_VARIED", "FT_training", "batch1"),
    ]
    first = os.path.join(root, "th_AZ_VARIED", "FT_training", "batch1")
    assert sorted(os.listdir(first)) == ["1.png", "2.png", "3.png"]

    loaded = faces.load_reference_layout(root, image_size=None)
    assert [group for _, group, _ in loaded] == ["azimuth", "azimuth", "intrinsic"]
    for (images, _, factors), (original, _, truth) in zip(loaded, train):
        assert images.shape == original.shape and images.dtype == np.float32
        assert np.abs(images - original).max() <= 0.5 / 255 + 1e-6
        np.testing.assert_array_equal(factors["identity"], truth["identity"])
        np.testing.assert_allclose(factors["azimuth"], truth["azimuth"], atol=1e-4)
    ((images, group, factors),) = faces.load_reference_layout(root, image_size=12, split="test")
    assert images.shape == (3, 12, 12, 1) and group == "light"
    np.testing.assert_allclose(factors["light"], test[0][2]["light"], atol=1e-4)
    # A second export numbers its batches after the first.
    faces.export_reference_layout(root, _batches("AZ", 1), progress=False)
    assert os.path.isdir(os.path.join(root, "th_AZ_VARIED", "FT_training", "batch3"))


def test_export_renders_a_whole_layout(tmp_path):
    root = str(tmp_path / "ref")
    faces.export_reference_layout(
        root, n_batches=1, batch_size=2, image_size=16, seed=3, progress=False
    )
    assert len(_folders(root)) == 8  # 4 kinds x 2 splits
    train = faces.load_reference_layout(root, image_size=None)
    images, group_ids = faces.stack_batches(train)
    assert images.shape == (4, 2, 16, 16, 1) and images.dtype == np.float32
    np.testing.assert_array_equal(group_ids, [[0, 0], [1, 1], [2, 2], [3, 3]])
    test_people = set(faces.identities("test").tolist())
    assert not {int(i) for _, _, f in train for i in f["identity"]} & test_people
    test = faces.load_reference_layout(root, split="test")
    assert {int(i) for _, _, f in test for i in f["identity"]} <= test_people


def test_stack_batches():
    stream = faces.training_batches(batch_size=3, image_size=8, kinds=("EL", "MIXED"), seed=2)
    batches = [next(stream) for _ in range(4)]
    images, group_ids = faces.stack_batches(batches)
    assert images.shape == (4, 3, 8, 8, 1) and group_ids.dtype == np.int32
    for (original, group, _), stacked, ids in zip(batches, images, group_ids):
        np.testing.assert_array_equal(stacked, original)
        assert (ids == (1 if group == "elevation" else -1)).all()
    with pytest.raises(ValueError, match="empty"):
        faces.stack_batches([])
    with pytest.raises(ValueError, match="share one shape"):
        faces.stack_batches(batches[:1] + _batches("AZ", 1, size=16))


def test_mixed_batches_have_no_place_in_the_layout(tmp_path):
    with pytest.raises(ValueError, match="MIXED"):
        faces.export_reference_layout(str(tmp_path), _batches("MIXED", 1), progress=False)


def test_reads_torch7_batches(tmp_path):
    folder = tmp_path / "th_EL_VARIED" / "FT_training"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    tensors = [rng.random((4, 1, 30, 30)).astype(np.float32) for _ in range(2)]
    for i, tensor in enumerate(tensors, start=1):
        write_float_tensor(str(folder / f"batch{i}"), tensor)
    loaded = faces.load_reference_layout(str(tmp_path), image_size=None)
    assert [group for _, group, _ in loaded] == ["elevation", "elevation"]
    np.testing.assert_array_equal(loaded[1][0][..., 0], tensors[1][:, 0])
    assert loaded[0][2] is None  # no factors.csv
    resized = faces.read_batch(str(folder / "batch1"), image_size=15)
    assert resized.shape == (4, 15, 15, 1)
    # Box-like downsampling keeps the mean brightness.
    assert abs(resized.mean() - tensors[0].mean()) < 0.02
    rgb = str(tmp_path / "rgb")
    write_float_tensor(
        rgb, np.ones((2, 3, 8, 8), np.float32) * np.array([1.0, 0.0, 0.0])[None, :, None, None]
    )
    np.testing.assert_allclose(faces.read_batch(rgb), 0.21, atol=1e-6)


def test_reads_rgb_png_folders_with_the_reference_weights(tmp_path):
    folder = tmp_path / "th_SHAPE_VARIED" / "FT_test" / "batch7"
    folder.mkdir(parents=True)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (100, 150, 200)]
    for i, colour in enumerate(colours, start=1):
        Image.new("RGB", (20, 20), colour).save(folder / f"{i}.png")
    Image.new("RGB", (20, 20), (255, 255, 255)).save(folder / "10.png")  # natural order
    ((images, group, _),) = faces.load_reference_layout(str(tmp_path), image_size=10, split="test")
    assert group == "intrinsic" and images.shape == (5, 10, 10, 1)
    expected = [0.21, 0.72, 0.07, (0.21 * 100 + 0.72 * 150 + 0.07 * 200) / 255, 1.0]
    np.testing.assert_allclose(images[:, 0, 0, 0], expected, atol=1e-5)


def test_bad_files_are_named(tmp_path):
    folder = tmp_path / "th_AZ_VARIED" / "FT_training"
    folder.mkdir(parents=True)
    batch = folder / "batch1"
    write_float_tensor(str(batch), np.zeros((20, 1, 16, 16), np.float32))
    with open(batch, "r+b") as f:
        f.truncate(os.path.getsize(batch) - 100)
    with pytest.raises(ValueError, match="batch1 is truncated"):
        faces.load_reference_layout(str(tmp_path))
    with open(batch, "wb") as f:
        f.write(b"\x04\x00\x00\x00garbage")
    with pytest.raises(ValueError, match="batch1 is not a readable Torch7 file"):
        faces.read_batch(str(batch))
    write_float_tensor(str(batch), np.zeros((16, 16), np.float32))
    with pytest.raises(ValueError, match=r"batch1 holds a tensor of shape \(16, 16\)"):
        faces.read_batch(str(batch))
    write_float_tensor(str(batch), np.full((2, 1, 4, 4), 255.0, np.float32))
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        faces.read_batch(str(batch))

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty holds no PNG"):
        faces.read_batch(str(empty))
    (empty / "1.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match="1.png is not a readable PNG"):
        faces.read_batch(str(empty))
    with pytest.raises(ValueError, match="has no batches in th_"):
        faces.load_reference_layout(str(empty))
    with pytest.raises(ValueError, match="does not exist"):
        faces.read_batch(str(tmp_path / "nothing"))
