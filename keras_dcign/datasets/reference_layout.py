"""The original DC-IGN dataset layout: write ours in it, read it back, read the original.

The reference code kept one folder per batch kind and split,
`th_{AZ_VARIED,EL_VARIED,LIGHT_AZ_VARIED,SHAPE_VARIED}/{FT_training,FT_test}/batch<N>`,
where `batch<N>` is a Torch7-serialised FloatTensor [20, 1, 150, 150] in
[0, 1]. It built them from folders of RGB PNGs, converted with
gray = 0.21 R + 0.72 G + 0.07 B. Here `batch<N>` may be either: a Torch7
file (read with the `torchfile` package) or a folder of PNGs. Exports write
PNG batch folders (`1.png` ... `20.png`) and one `factors.csv` with every
picture's ground truth.
"""

import csv
import os
import re

import numpy as np

SET_NAMES = {
    "AZ": "AZ_VARIED",
    "EL": "EL_VARIED",
    "LIGHT": "LIGHT_AZ_VARIED",
    "SHAPE": "SHAPE_VARIED",
}
SPLIT_NAMES = {"train": "FT_training", "test": "FT_test"}
GROUP_KINDS = {"azimuth": "AZ", "elevation": "EL", "light": "LIGHT", "intrinsic": "SHAPE"}
KIND_GROUPS = {kind: group for group, kind in GROUP_KINDS.items()}
LUMA = np.array([0.21, 0.72, 0.07])
FACTORS_CSV = "factors.csv"
FACTOR_COLUMNS = ("set", "split", "batch", "image", "identity", "azimuth", "elevation", "light")
_BATCH_NAME = re.compile(r"^batch(\d+)(\.t7)?$")


def _check_split(split):
    if split not in SPLIT_NAMES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    return SPLIT_NAMES[split]


def _next_number(folder):
    numbers = [int(m.group(1)) for m in map(_BATCH_NAME.match, os.listdir(folder)) if m]
    return max(numbers, default=0) + 1


def export_reference_layout(
    out_dir,
    batches=None,
    split="train",
    n_batches=10,
    batch_size=20,
    image_size=150,
    seed=0,
    progress=True,
):
    """Writes faces in the reference layout, as PNG batch folders plus `factors.csv`.

    Either writes the given batches (any generated set: a stream, a test
    set, a cache) under one split, or, with `batches=None`, renders a fresh
    set: `n_batches` batches of every kind for both splits, training people
    in `FT_training` and test people in `FT_test`.

    Args:
        out_dir: the dataset root: new, empty, or an export this package
            wrote (`keras_dcign.files.check_output_folder`), whose batches are
            kept and new ones numbered after them. A new one is removed again
            when the export fails.
        batches: None, or an iterable of `(images, group, factors)` as
            `faces.batches` yields (images (N, H, W, 1) or (N, H, W) in
            [0, 1]); MIXED batches have no place in the layout.
        split: where given batches go: `"train"` (`FT_training`) or `"test"`
            (`FT_test`).
        n_batches, batch_size, image_size, seed: what to render when
            `batches` is None (per kind and split).
        progress: show a progress bar.

    Returns:
        `out_dir`.

    Example:

    >>> import os, tempfile
    >>> from keras_dcign.datasets import faces
    >>> root = tempfile.mkdtemp()
    >>> root == faces.export_reference_layout(root, n_batches=2, batch_size=4, image_size=32,
    ...                                       progress=False)
    True
    >>> sorted(os.listdir(os.path.join(root, "th_LIGHT_AZ_VARIED", "FT_test")))
    ['batch1', 'batch2']
    """
    from keras_dcign.datasets import _cache, _streams
    from keras_dcign.files import check_output_folder, removed_on_failure

    check_output_folder(out_dir, "export", reuse=True)
    if batches is not None:
        parts = [(split, batches, None)]
    else:
        n_batches = _streams.check_count("n_batches", n_batches)
        parts = []
        for part_split in ("train", "test"):
            spec = _streams.StreamSpec(batch_size, image_size, part_split, seed)
            for kind in _streams.MONOVARIANT_KINDS:
                parts.append((part_split, _rendered(spec, kind, n_batches), n_batches))
    total = None if batches is not None else sum(p[2] for p in parts)
    with removed_on_failure(out_dir):
        _mark(out_dir)
        with _cache.progress_bar(progress, "Exporting faces", total) as bar:
            for part_split, stream, _ in parts:
                _write_batches(out_dir, stream, part_split, lambda: bar.advance(bar.task, 1))
    return out_dir


def _mark(out_dir):
    """Makes `out_dir` and marks it as an export (once)."""
    from keras_dcign.files import folder_marker, mark_folder

    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(f"Output folder {out_dir} cannot be written: {error.strerror}.") from None
    if folder_marker(out_dir) is None:
        names = [FACTORS_CSV] + ["th_" + name for name in SET_NAMES.values()]
        mark_folder(out_dir, "export", names)


def _rendered(spec, kind, n_batches):
    return (spec.batch(kind, index) for index in range(n_batches))


def _write_batches(out_dir, batches, split, done):
    from PIL import Image

    split_name = _check_split(split)
    csv_path = os.path.join(out_dir, FACTORS_CSV)
    os.makedirs(out_dir, exist_ok=True)
    new_csv = not os.path.exists(csv_path)
    with open(csv_path, "a", newline="") as f:
        writer = csv.writer(f)
        if new_csv:
            writer.writerow(FACTOR_COLUMNS)
        for images, group, factors in batches:
            if group not in GROUP_KINDS:
                raise ValueError(
                    f"group {group!r} has no folder in the reference layout; expected one "
                    f"of {tuple(GROUP_KINDS)} (MIXED batches cannot be exported)."
                )
            set_name = "th_" + SET_NAMES[GROUP_KINDS[group]]
            parent = os.path.join(out_dir, set_name, split_name)
            os.makedirs(parent, exist_ok=True)
            number = _next_number(parent)
            folder = os.path.join(parent, f"batch{number}")
            os.makedirs(folder)
            images = np.asarray(images)
            images = images[..., 0] if images.ndim == 4 else images
            pixels = np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
            for i, picture in enumerate(pixels):
                Image.fromarray(picture).save(os.path.join(folder, f"{i + 1}.png"))
                writer.writerow(
                    [set_name, split_name, number, i + 1]
                    + [
                        f"{factors[k][i]:.6g}"
                        for k in ("identity", "azimuth", "elevation", "light")
                    ]
                )
            done()


def _resize(images, image_size):
    """(N, H, W) float pictures resized to (N, S, S, 1)."""
    from PIL import Image

    if image_size is None or images.shape[1:] == (image_size, image_size):
        return images.astype(np.float32)[..., None]
    out = np.empty((len(images), image_size, image_size), np.float32)
    for i, picture in enumerate(images.astype(np.float32)):
        resized = Image.fromarray(picture).resize((image_size, image_size), Image.BILINEAR)
        out[i] = np.asarray(resized)
    return np.clip(out, 0.0, 1.0)[..., None]


def _read_t7(path):
    from keras_dcign.extras import require

    torchfile = require("torchfile", "Reading a Torch7 batch")

    try:
        tensor = torchfile.load(path)
    except Exception as error:  # torchfile raises whatever struct/numpy raise on bad bytes
        raise ValueError(f"{path} is not a readable Torch7 file ({error}).") from None
    if not isinstance(tensor, np.ndarray) or tensor.dtype.kind not in "fiu":
        raise ValueError(f"{path} holds a {type(tensor).__name__}, not a Torch7 tensor.")
    # torchfile does not notice a short file: check the bytes are there before reading them.
    if tensor.size and not within_storage(tensor):
        raise ValueError(f"{path} is truncated: it cannot hold a tensor of shape {tensor.shape}.")
    tensor = np.array(tensor, dtype=np.float32)
    if tensor.ndim == 4 and tensor.shape[1] == 3:
        tensor = np.einsum("nchw,c->nhw", tensor, LUMA.astype(np.float32))
    elif tensor.ndim == 4 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    elif tensor.ndim != 3:
        raise ValueError(
            f"{path} holds a tensor of shape {tensor.shape}; expected [N, 1, H, W], "
            "[N, 3, H, W] or [N, H, W]."
        )
    if tensor.size == 0 or tensor.min() < -1e-3 or tensor.max() > 1.0 + 1e-3:
        raise ValueError(f"{path} holds values outside [0, 1] or no pictures at all.")
    return tensor


def within_storage(tensor):
    """Whether a tensor view lies inside the storage torchfile actually read."""
    owner = tensor
    while getattr(owner, "base", None) is not None:
        owner = owner.base
    if not isinstance(owner, np.ndarray):
        return False
    start = tensor.__array_interface__["data"][0] - owner.__array_interface__["data"][0]
    last = sum((n - 1) * abs(s) for n, s in zip(tensor.shape, tensor.strides))
    return start >= 0 and start + last + tensor.itemsize <= owner.nbytes


def _natural_key(name):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _read_png_folder(folder):
    from PIL import Image

    names = sorted((n for n in os.listdir(folder) if n.lower().endswith(".png")), key=_natural_key)
    if not names:
        raise ValueError(f"{folder} holds no PNG pictures.")
    pictures = []
    for name in names:
        path = os.path.join(folder, name)
        try:
            with Image.open(path) as image:
                image.load()
                picture = _to_gray(image)
        except (OSError, ValueError, SyntaxError) as error:
            raise ValueError(f"{path} is not a readable PNG ({error}).") from None
        if pictures and picture.shape != pictures[0].shape:
            raise ValueError(
                f"{path} is {picture.shape[1]}x{picture.shape[0]} pixels; the batch's other "
                f"pictures are {pictures[0].shape[1]}x{pictures[0].shape[0]}."
            )
        pictures.append(picture)
    return np.stack(pictures)


def _to_gray(image):
    """A PIL picture as float gray in [0, 1], RGB weighted as the reference code did."""
    if image.mode in ("I;16", "I;16B", "I"):
        return np.asarray(image, np.float64) / 65535.0
    if image.mode != "L":
        image = image.convert("RGB")
    array = np.asarray(image, np.float64) / 255.0
    return array @ LUMA if array.ndim == 3 else array


def read_batch(path, image_size=None):
    """Reads one reference batch: a Torch7 tensor file or a folder of PNGs.

    Args:
        path: a `batch<N>` file (FloatTensor [N, 1, H, W], [N, 3, H, W] or
            [N, H, W] in [0, 1]) or a folder of PNG pictures.
        image_size: resize pictures to this side (None keeps them).

    Returns:
        float32 pictures (N, S, S, 1) in [0, 1].
    """
    if os.path.isdir(path):
        return _resize(_read_png_folder(path), image_size)
    if not os.path.isfile(path):
        raise ValueError(f"{path} does not exist.")
    return _resize(_read_t7(path), image_size)


def _read_factors(root):
    path = os.path.join(root, FACTORS_CSV)
    if not os.path.exists(path):
        return {}
    table = {}
    with open(path, newline="") as f:
        rows = csv.DictReader(f)
        if rows.fieldnames is None or tuple(rows.fieldnames) != FACTOR_COLUMNS:
            raise ValueError(f"{path} has columns {rows.fieldnames}; expected {FACTOR_COLUMNS}.")
        for line, row in enumerate(rows, start=2):
            try:
                key = (row["set"], row["split"], int(row["batch"]))
                values = [int(row["identity"])] + [
                    float(row[k]) for k in ("azimuth", "elevation", "light")
                ]
            except (TypeError, ValueError):
                raise ValueError(f"{path} line {line} is not a valid factors row.") from None
            table.setdefault(key, []).append((int(row["image"]), values))
    return table


def load_reference_layout(root, image_size=64, split="train", kinds=None):
    """Reads a dataset in the reference layout (Torch7 batches or PNG batch folders).

    Args:
        root: the folder holding the `th_*` folders.
        image_size: resize every picture to this side (None keeps them).
        split: `"train"` (`FT_training`) or `"test"` (`FT_test`).
        kinds: batch kinds to read (default AZ, EL, LIGHT, SHAPE, those present).

    Returns:
        A list of `(images, group, factors)` as `faces.batches` yields them,
        kinds in that order and batches by number: images float32 (N, S, S,
        1) in [0, 1], group the active group's name, factors a dict of (N,)
        arrays when `factors.csv` describes the batch, else None.
        `faces.stack_batches` turns the list into training arrays.

    Example:

    >>> import tempfile
    >>> from keras_dcign.datasets import faces
    >>> root = faces.export_reference_layout(tempfile.mkdtemp(), n_batches=1, batch_size=4,
    ...                                      image_size=32, progress=False)
    >>> batches = faces.load_reference_layout(root, image_size=64, split="test")  # resized
    >>> [group for _, group, _ in batches]
    ['azimuth', 'elevation', 'light', 'intrinsic']
    >>> images, group, factors = batches[0]
    >>> images.shape, sorted(factors)
    ((4, 64, 64, 1), ['azimuth', 'elevation', 'identity', 'light'])
    """
    split_name = _check_split(split)
    kinds = tuple(SET_NAMES) if kinds is None else tuple(kinds)
    for kind in kinds:
        if kind not in SET_NAMES:
            raise ValueError(f"kind must be one of {tuple(SET_NAMES)}, got {kind!r}.")
    table = _read_factors(root)
    out = []
    for kind in kinds:
        set_name = "th_" + SET_NAMES[kind]
        folder = os.path.join(root, set_name, split_name)
        if not os.path.isdir(folder):
            continue
        names = [m for m in map(_BATCH_NAME.match, os.listdir(folder)) if m]
        for match in sorted(names, key=lambda m: int(m.group(1))):
            path = os.path.join(folder, match.group(0))
            images = read_batch(path, image_size)
            rows = table.get((set_name, split_name, int(match.group(1))))
            out.append((images, KIND_GROUPS[kind], _batch_factors(rows, len(images), path)))
    if not out:
        raise ValueError(
            f"{root} has no batches in th_*/{split_name}; expected the reference layout "
            "th_{AZ_VARIED,EL_VARIED,LIGHT_AZ_VARIED,SHAPE_VARIED}/{FT_training,FT_test}/batch<N>."
        )
    return out


def _batch_factors(rows, n, path):
    """Factor arrays of one batch from its factors.csv rows, or None without any."""
    if rows is None:
        return None
    if len(rows) != n:
        raise ValueError(f"{FACTORS_CSV} lists {len(rows)} pictures for {path}, which holds {n}.")
    values = np.array([v for _, v in sorted(rows)], dtype=np.float64)
    factors = {"identity": values[:, 0].astype(np.int64)}
    for j, k in enumerate(("azimuth", "elevation", "light"), start=1):
        factors[k] = values[:, j].astype(np.float32)
    return factors
