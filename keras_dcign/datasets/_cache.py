"""Rendered batches cached on disk: written once as compressed shards, read at memory speed.

A cache folder holds `manifest.json` (what was rendered, and by which
version of the generator, so a second `generate` resumes or refuses a
different request) and shards
`shard-00000.npz`, ... each with up to `shard_size` batches: images as uint8
(batches, N, H, W), the batch kinds and every picture's factors. Shards are
written under a temporary name and renamed, so a crash never leaves half a shard.
"""

import concurrent.futures
import json
import multiprocessing
import os
import zipfile

import numpy as np

from keras_dcign.datasets import _face_model, _streams
from keras_dcign.files import atomic_write, check_output_folder, folder_marker, mark_folder

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DEFAULT_BATCHES = 3000


def progress_bar(enabled, description, total):
    """A rich progress bar (or a stand-in that does nothing)."""
    if not enabled:
        return _Silent()
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    # On stderr: stdout carries only the command's results.
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    bar.task = bar.add_task(description, total=total)
    return bar


class _Silent:
    task = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def advance(self, task, amount):
        pass


def _shard_path(out_dir, shard):
    return os.path.join(out_dir, f"shard-{shard:05d}.npz")


def _render_shard(manifest, out_dir, shard):
    """Renders one shard and writes it atomically; returns how many batches it holds."""
    spec = _streams.StreamSpec(
        manifest["batch_size"],
        manifest["image_size"],
        manifest["split"],
        manifest["seed"],
        **{
            k: manifest[k]
            for k in ("azimuth_range", "elevation_range", "light_range", "light_elevation")
        },
    )
    kinds = tuple(manifest["kinds"])
    probabilities = np.array(manifest["probabilities"])
    start = shard * manifest["shard_size"]
    stop = min(start + manifest["shard_size"], manifest["n_batches"])
    names = _streams.FACTOR_NAMES
    if set(kinds) & set(_streams.SHAPE_TEXTURE_KINDS):
        names += (_streams.TEXTURE_FACTOR,)
    images, kind_ids, factors = [], [], {name: [] for name in names}
    for index in range(start, stop):
        kind = spec.mixed_kind(index, kinds, probabilities)
        batch, _, batch_factors = spec.batch(kind, index)
        images.append(np.round(batch[..., 0] * 255.0).astype(np.uint8))
        kind_ids.append(_streams.KINDS.index(kind))
        for name in names:
            # A batch that does not split people wears its own people's texture.
            factors[name].append(batch_factors.get(name, batch_factors["identity"]))
    path = _shard_path(out_dir, shard)
    arrays = dict(
        images=np.stack(images),
        kind=np.array(kind_ids, np.int8),
        **{name: np.stack(values) for name, values in factors.items()},
    )
    atomic_write(path, lambda handle: np.savez_compressed(handle, **arrays))
    return stop - start


def generate(
    out_dir,
    n_batches=DEFAULT_BATCHES,
    batch_size=20,
    image_size=64,
    split="train",
    seed=0,
    shape_bias=False,
    kinds=None,
    shard_size=100,
    workers=1,
    progress=True,
    **ranges,
):
    """Renders a DC-IGN training set once and caches it on disk.

    Batches are those of `faces.training_batches` with the same arguments.
    Running it again on the same folder finishes what is missing.

    Args:
        out_dir: the cache folder (created if needed).
        n_batches: how many batches (kinds mixed in the requested ratio).
        batch_size, image_size, split, seed, shape_bias, kinds, **ranges: as
            for `faces.training_batches`.
        shard_size: batches per shard file.
        workers: rendering processes.
        progress: show a progress bar.

    Returns:
        `out_dir`.

    Example:

    >>> import tempfile
    >>> from keras_dcign.datasets import faces
    >>> folder = tempfile.mkdtemp()
    >>> folder == faces.generate(folder, n_batches=4, batch_size=4, image_size=32,
    ...                          progress=False)
    True
    >>> data = faces.load(folder, progress=False)
    >>> data["images"].shape, data["images"].dtype
    ((4, 4, 32, 32), dtype('uint8'))
    """
    spec = _streams.StreamSpec(batch_size, image_size, split, seed, **ranges)
    kinds, probabilities = _streams.kind_weights(shape_bias, kinds)
    manifest = {
        "format_version": FORMAT_VERSION,
        "generator_version": _face_model.GENERATOR_VERSION,
        "n_batches": _streams.check_count("n_batches", n_batches),
        "batch_size": spec.batch_size,
        "image_size": spec.image_size,
        "split": spec.split,
        "seed": spec.seed,
        "kinds": list(kinds),
        "probabilities": [float(p) for p in probabilities],
        "shard_size": _streams.check_count("shard_size", shard_size),
        "azimuth_range": list(spec.azimuth_range),
        "elevation_range": list(spec.elevation_range),
        "light_range": list(spec.light_range),
        "light_elevation": spec.light_elevation,
    }
    workers = _streams.check_count("workers", workers)
    manifest_path = os.path.join(out_dir, MANIFEST)
    # A folder that is not one of our caches is the user's: never write into it.
    check_output_folder(out_dir, "faces-cache", reuse=True, legacy=_is_cache)
    os.makedirs(out_dir, exist_ok=True)
    if folder_marker(out_dir) is None:
        mark_folder(out_dir, "faces-cache")
    if os.path.exists(manifest_path):
        existing = _read_manifest(out_dir)
        if existing != manifest:
            raise ValueError(f"{out_dir!r} already caches a different dataset; use another folder.")
    else:
        atomic_write(manifest_path, json.dumps(manifest, indent=2))

    n_shards = -(-manifest["n_batches"] // manifest["shard_size"])
    todo = [s for s in range(n_shards) if not os.path.exists(_shard_path(out_dir, s))]
    done = manifest["n_batches"] - sum(
        min(manifest["shard_size"], manifest["n_batches"] - s * manifest["shard_size"])
        for s in todo
    )
    with progress_bar(progress, f"Rendering faces {image_size}²", manifest["n_batches"]) as bar:
        bar.advance(bar.task, done)
        if workers == 1:
            for shard in todo:
                bar.advance(bar.task, _render_shard(manifest, out_dir, shard))
        else:
            # Fresh interpreters: forking a process that runs Keras is not safe.
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
                jobs = [pool.submit(_render_shard, manifest, out_dir, s) for s in todo]
                for job in concurrent.futures.as_completed(jobs):
                    bar.advance(bar.task, job.result())
    return out_dir


def _is_cache(folder):
    """Whether `folder` is a cache written before caches were marked: its manifest reads."""
    try:
        _read_manifest(folder)
    except ValueError:
        return False
    return True


def _read_manifest(out_dir):
    path = os.path.join(out_dir, MANIFEST)
    try:
        with open(path) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path} not found: {out_dir!r} is not a faces cache.") from None
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable faces manifest ({error}).") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has an unknown format; expected version {FORMAT_VERSION}.")
    return manifest


def _read_shard(path, expected, manifest):
    try:
        with np.load(path) as shard:
            data = {name: shard[name] for name in shard.files}
    except FileNotFoundError:
        raise ValueError(f"{path} is missing; run generate() again to finish the cache.") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is corrupt or truncated ({error}).") from None
    size = manifest["image_size"]
    shape = (expected, manifest["batch_size"], size, size)
    if data.get("images") is None or data["images"].shape != shape:
        found = None if data.get("images") is None else data["images"].shape
        raise ValueError(f"{path} holds images of shape {found}; expected {shape}.")
    return data


def load(out_dir, progress=True):
    """Reads a cache written by `generate` into memory.

    Args:
        out_dir: the cache folder.
        progress: show a progress bar.

    Returns:
        A dict: `images` uint8 (batches, N, H, W) (divide by 255 for [0, 1]),
        `kind` (batches,) batch kind names, `group` (batches,) active group
        names (None for MIXED), `identity`, `azimuth`, `elevation`, `light`
        (batches, N), `texture_identity` (batches, N) where the cache holds
        SHAPE_ONLY or TEXTURE_ONLY batches, and `manifest`.
    """
    manifest = _read_manifest(out_dir)
    n, per = manifest["n_batches"], manifest["shard_size"]
    parts = []
    with progress_bar(progress, "Loading faces", n) as bar:
        for shard in range(-(-n // per)):
            expected = min(per, n - shard * per)
            parts.append(_read_shard(_shard_path(out_dir, shard), expected, manifest))
            bar.advance(bar.task, expected)
    data = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    data["kind"] = np.array([_streams.KINDS[k] for k in data["kind"]])
    data["group"] = np.array([_streams.GROUPS[k] for k in data["kind"]], dtype=object)
    data["manifest"] = manifest
    return data


def cached_batches(out_dir, shuffle=True, seed=0, repeat=True, progress=True):
    """Streams the batches of a cache from memory, as `faces.batches` yields them.

    Args:
        out_dir: the cache folder, or a dict returned by `load`.
        shuffle: visit batches in a new random order every pass.
        seed: seeds the order.
        repeat: start again after the last batch (endless), or stop.
        progress: show a progress bar while loading.

    Yields:
        `(images, group, factors)`: images float32 (N, H, W, 1) in [0, 1].
    """
    data = out_dir if isinstance(out_dir, dict) else load(out_dir, progress=progress)
    rng = np.random.default_rng(seed)
    n = len(data["images"])
    while True:
        order = rng.permutation(n) if shuffle else np.arange(n)
        for i in order:
            images = data["images"][i].astype(np.float32)[..., None] / 255.0
            names = _streams.FACTOR_NAMES + (_streams.TEXTURE_FACTOR,)
            factors = {k: data[k][i] for k in names if k in data}
            yield images, data["group"][i], factors
        if not repeat:
            return
