"""DC-IGN batches from the face generator: kinds, ratios, splits, PyDataset, cache."""

import itertools
import os

import numpy as np
import pytest

from keras_dcign.datasets import faces

SIZE = 32


def _constant(values):
    return np.all(values == values[0])


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "kind, group, varied",
    [
        ("AZ", "azimuth", "azimuth"),
        ("EL", "elevation", "elevation"),
        ("LIGHT", "light", "light"),
        ("SHAPE", "intrinsic", "identity"),
    ],
)
def test_monovariant_batches_vary_one_factor(kind, group, varied):
    images, batch_group, factors = next(faces.batches(kind, batch_size=6, image_size=SIZE))
    assert images.shape == (6, SIZE, SIZE, 1) and images.dtype == np.float32
    assert batch_group == group
    assert sorted(factors) == ["azimuth", "elevation", "identity", "light"]
    for name, values in factors.items():
        assert values.shape == (6,)
        assert _constant(values) != (name == varied), name
    assert factors["identity"].dtype == np.int64
    if kind == "SHAPE":
        assert len(set(factors["identity"].tolist())) == 6
    # The pictures differ, because the one varied factor does.
    assert np.abs(images[0] - images[1]).mean() > 1e-3


@pytest.mark.backend_independent
def test_mixed_batches_vary_everything_and_train_no_group():
    _, group, factors = next(faces.batches("MIXED", batch_size=5, image_size=SIZE, seed=3))
    assert group is None
    assert not any(_constant(values) for values in factors.values())


@pytest.mark.backend_independent
def test_factors_stay_in_their_ranges():
    ranges = {
        "azimuth_range": (-30.0, 10.0),
        "elevation_range": (0.0, 5.0),
        "light_range": (20.0, 21.0),
    }
    stream = faces.batches("MIXED", batch_size=8, image_size=16, **ranges)
    for _, _, factors in itertools.islice(stream, 3):
        for name, (low, high) in zip(("azimuth", "elevation", "light"), ranges.values()):
            assert np.all((factors[name] >= low) & (factors[name] <= high)), name
    _, _, factors = next(faces.batches("AZ", batch_size=50, image_size=16))
    assert factors["azimuth"].min() < -45.0 and factors["azimuth"].max() > 45.0


@pytest.mark.backend_independent
def test_splits_never_mix_people():
    test_people = set(faces.identities("test").tolist())
    for kind in ("AZ", "SHAPE"):
        stream = faces.batches(kind, batch_size=4, image_size=16, split="train")
        for _, _, factors in itertools.islice(stream, 3):
            assert not set(factors["identity"].tolist()) & test_people
    images, group, factors = faces.test_set("SHAPE", n_batches=2, batch_size=4, image_size=16)
    assert images.shape == (2, 4, 16, 16, 1) and group == "intrinsic"
    assert factors["identity"].shape == (2, 4)
    assert set(factors["identity"].ravel().tolist()) <= test_people
    again = faces.test_set("SHAPE", n_batches=2, batch_size=4, image_size=16)
    np.testing.assert_array_equal(images, again[0])


@pytest.mark.backend_independent
def test_training_stream_mixes_kinds_in_the_requested_ratio():
    stream = faces.training_batches(batch_size=1, image_size=8, seed=1)
    groups = {group for _, group, _ in itertools.islice(stream, 40)}
    assert groups == {"azimuth", "elevation", "light", "intrinsic"}

    pytest.importorskip("keras")

    def share_of_shape(**kwargs):
        data = faces.dataset(steps_per_epoch=2000, **kwargs)
        kinds = [data.kind(i) for i in range(len(data))]
        return kinds.count("SHAPE") / len(kinds), set(kinds)

    even, _ = share_of_shape()
    assert 0.22 < even < 0.28  # 1:1:1:1
    biased, _ = share_of_shape(shape_bias=True)
    assert 0.81 < biased < 0.87  # 1:1:1:16
    assert 0.45 < share_of_shape(shape_bias=3.0)[0] < 0.55  # 1:1:1:3
    _, only = share_of_shape(kinds=("LIGHT", "MIXED"))
    assert only == {"LIGHT", "MIXED"}


def test_pydataset_items_and_fit(tmp_path):
    keras = pytest.importorskip("keras")
    data = faces.dataset(steps_per_epoch=3, batch_size=4, image_size=16, seed=2)
    assert isinstance(data, keras.utils.PyDataset) and isinstance(data, faces.FacesSequence)
    assert len(data) == 3
    images, group_ids = data[1]
    assert images.shape == (4, 16, 16, 1) and images.dtype == np.float32
    assert group_ids.shape == (4,) and group_ids.dtype == np.int32
    assert _constant(group_ids) and group_ids[0] == faces.GROUP_IDS[faces.GROUPS[data.kind(1)]]
    twin = faces.dataset(steps_per_epoch=3, batch_size=4, image_size=16, seed=2)
    np.testing.assert_array_equal(twin[1][0], images)
    data.on_epoch_end()
    assert not np.array_equal(data[1][0], images)  # a new epoch draws new batches
    with pytest.raises(IndexError):
        data[3]

    model = keras.Sequential(
        [keras.Input((16, 16, 1)), keras.layers.Flatten(), keras.layers.Dense(4)]
    )
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    train = faces.dataset(
        steps_per_epoch=2, batch_size=4, image_size=16, kinds=("AZ", "EL"), workers=2
    )
    history = model.fit(train, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.backend_independent
def test_generate_and_load_cache(tmp_path):
    folder = str(tmp_path / "cache")
    options = dict(n_batches=5, batch_size=3, image_size=16, seed=4, shard_size=2)
    assert faces.generate(folder, progress=False, **options) == folder
    assert sorted(f for f in os.listdir(folder) if f.startswith("shard")) == [
        "shard-00000.npz",
        "shard-00001.npz",
        "shard-00002.npz",
    ]
    data = faces.load(folder, progress=False)
    assert data["images"].shape == (5, 3, 16, 16) and data["images"].dtype == np.uint8
    stream = faces.training_batches(batch_size=3, image_size=16, seed=4)
    for i, (images, group, factors) in enumerate(itertools.islice(stream, 5)):
        assert np.abs(data["images"][i] / 255.0 - images[..., 0]).max() <= 0.5 / 255 + 1e-6
        assert data["group"][i] == group
        np.testing.assert_array_equal(data["identity"][i], factors["identity"])

    # A lost shard is rendered again, identically; a different request is refused.
    before = data["images"].copy()
    os.remove(os.path.join(folder, "shard-00001.npz"))
    faces.generate(folder, progress=False, **options)
    np.testing.assert_array_equal(faces.load(folder, progress=False)["images"], before)
    with pytest.raises(ValueError, match="different dataset"):
        faces.generate(folder, progress=False, **dict(options, seed=5))

    batches = list(faces.cached_batches(folder, shuffle=False, repeat=False, progress=False))
    assert len(batches) == 5 and batches[0][0].shape == (3, 16, 16, 1)
    assert batches[0][0].dtype == np.float32 and batches[0][0].max() <= 1.0


@pytest.mark.backend_independent
def test_corrupt_cache_names_the_file(tmp_path):
    folder = str(tmp_path / "cache")
    faces.generate(folder, n_batches=2, batch_size=2, image_size=16, shard_size=1, progress=False)
    shard = os.path.join(folder, "shard-00001.npz")
    with open(shard, "r+b") as f:
        f.truncate(100)
    with pytest.raises(ValueError, match="shard-00001.npz"):
        faces.load(folder, progress=False)
    os.remove(shard)
    with pytest.raises(ValueError, match="shard-00001.npz is missing"):
        faces.load(folder, progress=False)
    with pytest.raises(ValueError, match="not a faces cache"):
        faces.load(str(tmp_path), progress=False)
