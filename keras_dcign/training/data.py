"""What a training run trains on: cached or streamed generated faces, in a fixed order per step."""

import os
import shutil

import numpy as np


def batch_source(settings, data_dir, seed, workers, progress, chunk):
    """A function `start_step -> generator of (images, group_ids)` (deterministic per step),
    or, with `workers`, a `PyDataset` of `chunk` batches rendered on the fly.

    With `batches_per_step` k > 1 a step's batch is k monovariant batches side by side
    (steps count optimizer updates; the plain-VAE phase is `pretrain_steps` of them)."""
    per_step = int(settings.get("batches_per_step", 1))
    settings = dict(settings, pretrain_steps=int(settings["pretrain_steps"]) * per_step)
    source = _batch_source(settings, data_dir, seed, workers, progress, chunk)
    if per_step == 1:
        return source
    if workers:
        raise ValueError(
            f"batches_per_step={per_step} is not supported with workers={workers}; "
            "train from the cache (workers=0)."
        )
    return _side_by_side(source, per_step)


def _side_by_side(source, per_step):
    """A batch source whose step k is batches `k * per_step ...` of `source`, concatenated."""

    def generate(start):
        batches = source(start * per_step)
        while True:
            images, groups = zip(*(next(batches) for _ in range(per_step)))
            yield np.concatenate(images), np.concatenate(groups)

    return generate


def _batch_source(settings, data_dir, seed, workers, progress, chunk):
    from keras_dcign.datasets import faces

    size, batch = settings["image_size"], settings["batch_size"]
    code = settings.get("code", "paper")
    kinds = training_kinds(code) if settings["monovariant"] else ("MIXED",)
    pretrain = int(settings["pretrain_steps"])
    if data_dir is not None:
        images, groups = faces.stack_batches(
            faces.load_reference_layout(data_dir, image_size=size, split="train"), code
        )
        return _cycle(images, groups, seed, pretrain)
    if workers:
        if pretrain:
            raise ValueError(
                f"pretrain_steps={pretrain} is not supported with workers={workers}; "
                "train from the cache (workers=0) to pre-train."
            )
        return faces.dataset(
            steps_per_epoch=chunk,
            batch_size=batch,
            image_size=size,
            seed=seed,
            shape_bias=settings["shape_bias"],
            kinds=kinds,
            code=code,
            workers=workers,
            use_multiprocessing=True,
        )
    cache = dict(
        image_size=size,
        n_batches=settings["cache_batches"],
        batch_size=batch,
        shape_bias=settings["shape_bias"],
        seed=seed,
        progress=progress,
        code=code,
    )
    images, groups = cached_training_set(**cache, kinds=kinds)
    fraction = float(settings.get("plain_fraction", 0.0))
    mixed_pretrain = pretrain and settings["pretrain_data"] == "mixed"
    if not settings["monovariant"] or not (mixed_pretrain or fraction):
        return _cycle(images, groups, seed, pretrain)
    # Pre-training sees a new person in every image, 20 times the people of monovariant
    # batches: it draws faces several times sooner (docs/recipes.md). Plain batches kept in
    # the monovariant phase give the intrinsic units a reconstruction gradient there too.
    mixed = _cycle(*cached_training_set(**cache, kinds=("MIXED",)), seed)
    monovariant = _cycle(images, groups, seed)
    if fraction:
        monovariant = _interleave(fraction, seed, mixed, monovariant)
    if mixed_pretrain:
        return _switch_at(pretrain, mixed, monovariant)
    return _switch_at(pretrain, _cycle(images, groups, seed, pretrain), monovariant)


def _interleave(fraction, seed, plain, monovariant):
    """A batch source whose step k comes from `plain` with probability `fraction` (drawn
    per step, so the same on every run and after a resume) and from `monovariant` otherwise.

    Each source keeps its own step count: the plain batches go through their set in order,
    and so do the monovariant ones.
    """

    def generate(start):
        draws = _PlainSteps(fraction, seed)
        before = int(np.sum(draws(start)))
        plain_batches, mono_batches = plain(before), monovariant(start - before)
        step = start
        while True:
            batches = plain_batches if draws.at(step) else mono_batches
            yield next(batches)
            step += 1

    return generate


class _PlainSteps:
    """Which steps are plain: step k is when a per-step uniform draw is below `fraction`."""

    BLOCK = 4096

    def __init__(self, fraction, seed):
        self.fraction, self.seed, self._blocks = fraction, seed, {}

    def _block(self, index):
        if index not in self._blocks:
            rng = np.random.default_rng([self.seed, 17, index])
            self._blocks = {index: rng.random(self.BLOCK) < self.fraction}
        return self._blocks[index]

    def at(self, step):
        return bool(self._block(step // self.BLOCK)[step % self.BLOCK])

    def __call__(self, stop):
        """The draws of steps `0 .. stop - 1`."""
        full, rest = divmod(stop, self.BLOCK)
        parts = [self._block(k) for k in range(full)] + [self._block(full)[:rest]]
        return np.concatenate(parts)


def _switch_at(step, before, after):
    """A batch source that is `before` for steps < `step` and `after` from then on."""

    def generate(start):
        if start < step:
            source = before(start)
            for _ in range(step - start):
                yield next(source)
        yield from after(max(start, step))

    return generate


def training_kinds(code):
    """The batch kinds a monovariant run of a graphics code trains on; None for the paper's
    four (AZ, EL, LIGHT, SHAPE), whose caches are named without their kinds."""
    from keras_dcign.datasets import faces

    kinds = faces.training_kinds(code)
    return None if kinds == faces.MONOVARIANT_KINDS else kinds


def cached_training_set(
    image_size, n_batches, batch_size, shape_bias, seed, progress=True, kinds=None, code="paper"
):
    """Generated faces rendered once into `$KERAS_HOME/keras_dcign/datasets` and loaded.

    `kinds` as for `faces.training_batches` (default: the four monovariant kinds); `code` the
    `GraphicsCode` or layout name whose group ids the batches carry.

    Returns:
        `(images, group_ids)`: uint8 `(batches, N, H, W, 1)` and int32 `(batches, N)`.
    """
    from keras_dcign.datasets import faces
    from keras_dcign.datasets._streams import group_id
    from keras_dcign.download import cache_dir

    name = f"faces-{image_size}px-{n_batches}x{batch_size}-bias{shape_bias:g}-seed{seed}"
    if kinds is not None:
        name += "-" + "-".join(k.lower() for k in kinds)
    folder = cache_dir("datasets", name)
    options = dict(
        n_batches=n_batches,
        batch_size=batch_size,
        image_size=image_size,
        seed=seed,
        shape_bias=shape_bias,
        kinds=kinds,
        workers=os.cpu_count() or 1,
        progress=progress,
    )
    try:
        faces.generate(folder, **options)
    except ValueError:
        # A cache written by another version of the generator: it is ours to replace.
        shutil.rmtree(folder)
        faces.generate(folder, **options)
    data = faces.load(folder, progress=progress)
    ids = np.array([group_id(g, code) for g in data["group"]], dtype="int32")
    return data["images"][..., None], np.repeat(ids[:, None], batch_size, axis=1)


def _cycle(images, groups, seed, pretrain_steps=0):
    """Batches of a fixed set, reshuffled every pass; step k is the same batch on every run.

    The first `pretrain_steps` batches carry group id -1: trained as a plain VAE.
    """
    plain = np.full(groups.shape[1:], -1, dtype=groups.dtype)

    def generate(start):
        step = start
        while True:
            epoch, position = divmod(step, len(images))
            order = np.random.default_rng([seed, epoch]).permutation(len(images))
            index = order[position]
            yield _as_float(images[index]), plain if step < pretrain_steps else groups[index]
            step += 1

    return generate


def _as_float(images):
    if images.dtype == np.uint8:
        return images.astype("float32") / 255.0
    return images.astype("float32")
