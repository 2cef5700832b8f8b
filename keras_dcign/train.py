"""The training recipes behind `dcign train`: data, model, checkpoints, calibration, preset."""

import dataclasses
import json
import math
import os
import platform
import shutil
import time
from pathlib import Path

import keras
import numpy as np

RECIPES = {
    # The CPU default: generated 64x64 faces, minutes on 2 cores. A standard strided conv
    # stack around the paper's graphics code, a calibrated Gaussian likelihood (a learned
    # shared sigma, KL weight 1), and plain-VAE pre-training before the monovariant batches
    # (the reference code's advice): monovariant from the first step, the encoder learns the
    # person from SHAPE batches alone and draws featureless heads (docs/recipes.md).
    "faces_64": {
        "image_size": 64,
        "feature_maps": 32,
        "architecture": "strided",
        "reconstruction": "gaussian",
        "gaussian_scale": "learned",
        "steps": 7500,
        "batch_size": 20,
        "learning_rate": 1e-3,
        "clamp": "mean",
        "invariance_strength": 0.01,
        "shape_bias": 1.0,
        "kl_weight": 1.0,
        "pretrain_steps": 4500,
        "pretrain_data": "mixed",
        "cache_batches": 3000,
        "monovariant": True,
    },
    # The paper's configuration: 150x150, 96 maps, 200-unit code (a GPU job).
    "faces_basel": {
        "image_size": 150,
        "feature_maps": 96,
        "architecture": "paper",
        "reconstruction": "bernoulli",
        "gaussian_scale": 0.1,
        "steps": 30000,
        "batch_size": 20,
        "learning_rate": 5e-4,
        "clamp": "mean",
        "invariance_strength": 0.01,
        "shape_bias": 1.0,
        "kl_weight": 1.0,
        "pretrain_steps": 0,
        "pretrain_data": "mixed",
        "cache_batches": 4000,
        "monovariant": True,
    },
}
# What a run whose recipe.json predates a setting was trained with.
LEGACY_SETTINGS = {
    "architecture": "paper",
    "reconstruction": "bernoulli",
    "gaussian_scale": 0.1,
    "pretrain_steps": 0,
    "pretrain_data": "monovariant",
}
# What the plain-VAE pre-training steps train on: batches in which every factor varies (each
# image another person), or the monovariant batches with nothing clamped.
PRETRAIN_DATA = ("mixed", "monovariant")


@dataclasses.dataclass
class TrainResult:
    """What `train` produced: the preset folder, steps run this time, wall time, and the
    checkpoint step a resumed run continued from (0 for a new run)."""

    preset_dir: Path
    run_dir: Path
    steps: int
    seconds: float
    history: dict
    resumed_from: int = 0


def recipe(config="faces_64", **overrides):
    """A recipe's settings with overrides applied (None values are ignored)."""
    if config not in RECIPES:
        raise ValueError(f"Unknown training config {config!r}; expected one of {list(RECIPES)}.")
    settings = dict(RECIPES[config])
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in settings:
            raise ValueError(f"Unknown training option {key!r}; expected one of {list(settings)}.")
        settings[key] = value
    if int(settings["steps"]) < 1:
        raise ValueError(f"steps={settings['steps']!r} is invalid; expected a positive integer.")
    if int(settings["batch_size"]) < 2:
        raise ValueError(f"batch_size={settings['batch_size']!r} is invalid; expected >= 2.")
    if int(settings["pretrain_steps"]) < 0:
        raise ValueError(
            f"pretrain_steps={settings['pretrain_steps']!r} is invalid; expected an integer >= 0."
        )
    if settings["pretrain_data"] not in PRETRAIN_DATA:
        raise ValueError(
            f"pretrain_data={settings['pretrain_data']!r} is invalid; expected one of "
            f"{PRETRAIN_DATA}."
        )
    if float(settings["shape_bias"]) <= 0:
        raise ValueError(f"shape_bias={settings['shape_bias']!r} is invalid; expected > 0.")
    return settings


def train(
    out,
    dataset="faces",
    config="faces_64",
    resume=False,
    data_dir=None,
    seed=0,
    checkpoint_every=100,
    progress=True,
    workers=0,
    time_limit=None,
    command=None,
    **overrides,
):
    """Trains a DC-IGN by a recipe and writes a calibrated preset.

    Args:
        out: the run folder; checkpoints go to `out/checkpoints`, the preset
            to `out/preset`.
        dataset: `"faces"` (the package's generated faces).
        config: a recipe name from `RECIPES`.
        resume: continue from the run folder's newest intact checkpoint
            (refused when it has none).
        data_dir: train on a dataset in the reference layout instead of
            generated faces.
        seed: seed of data order, initialisation and sampling.
        checkpoint_every: steps between checkpoints.
        progress: show a rich progress bar.
        workers: render batches on the fly with this many processes instead
            of caching a fixed set (for long GPU runs).
        time_limit: stop training cleanly after this many minutes (then
            checkpoint, calibrate and write the preset as usual).
        command: the command line that started the run, for the model card.
        **overrides: recipe settings (`steps`, `batch_size`, `clamp`,
            `invariance_strength`, `shape_bias`, `kl_weight`, `learning_rate`,
            `architecture`, `feature_maps`, `reconstruction`,
            `gaussian_scale`, `pretrain_steps`, `monovariant`, ...).
            `monovariant=False` trains the paper's entangled baseline: the
            same network as a plain VAE on batches in which every factor
            varies (MIXED). `pretrain_steps=N` trains the first N steps as a
            plain VAE (nothing clamped), then monovariant, as the reference
            code's README recommends; `pretrain_data="mixed"` pre-trains on
            MIXED batches, `"monovariant"` on the monovariant batches.

    Returns:
        A `TrainResult`.
    """
    from keras_dcign.checkpoint import (
        CheckpointEvery,
        checkpoint_step,
        latest_checkpoint,
        restore_checkpoint,
        resume_point,
    )
    from keras_dcign.files import check_distinct, check_output_folder
    from keras_dcign.model import DCIGN
    from keras_dcign.rendering import _atomic_write

    if dataset != "faces":
        raise ValueError(f"Unknown dataset {dataset!r}; expected 'faces'.")
    settings = recipe(config, **overrides)
    run_dir = Path(out)
    _check_writable(run_dir)
    check_output_folder(run_dir, ours=_is_run_folder, what="a training run")
    check_distinct([run_dir], [data_dir] if data_dir else [], replaced=True)
    existing = resume_point(run_dir) if resume else latest_checkpoint(run_dir)
    if existing is not None and not resume:
        raise ValueError(
            f"{run_dir} already holds a training run; pass --resume to continue it or choose "
            "another --out."
        )
    if existing is not None:
        settings = _resumed_recipe(run_dir, config, seed, overrides, settings)
    total = int(settings["steps"])
    # Epochs are chunks that divide both the run and the checkpoint interval, so a resumed
    # run (which starts at a checkpoint) lines up with them and stops at exactly `total`.
    chunk = math.gcd(total, checkpoint_every)
    # Data first: rendering processes are forked before the backend starts its threads.
    finished = resume and existing is not None and checkpoint_step(existing) >= total
    source = None if finished else _batch_source(settings, data_dir, seed, workers, progress, chunk)
    keras.utils.set_random_seed(seed)
    model = DCIGN(
        image_size=settings["image_size"],
        feature_maps=settings["feature_maps"],
        architecture=settings["architecture"],
        reconstruction=settings["reconstruction"],
        gaussian_scale=settings["gaussian_scale"],
        clamp=settings["clamp"],
        invariance_strength=settings["invariance_strength"],
        kl_weight=settings["kl_weight"],
        monovariant=settings["monovariant"],
        seed=seed,
    )
    model.compile(optimizer=keras.optimizers.Adam(settings["learning_rate"]))
    start = restore_checkpoint(model, existing) if (resume and existing is not None) else 0
    run_dir.mkdir(parents=True, exist_ok=True)
    # Written whole or not at all: a resumed run reads it back.
    recipe_json = json.dumps(dict(settings, config=config, seed=seed)).encode()
    _atomic_write(run_dir / "recipe.json", lambda handle: handle.write(recipe_json))

    history = {}
    began = time.time()
    if start < total:
        checkpoints = CheckpointEvery(run_dir, checkpoint_every, start)
        callbacks = [checkpoints]
        if time_limit is not None:
            callbacks.append(StopAfter(float(time_limit) * 60.0))
        if progress:
            from keras_dcign.progress import TrainingProgress

            callbacks.append(TrainingProgress(total, start, settings["batch_size"]))
        fit = model.fit(
            source(start) if callable(source) else source,
            steps_per_epoch=chunk,
            epochs=total // chunk,
            initial_epoch=start // chunk,
            callbacks=callbacks,
            shuffle=False,
            verbose=0,
        )
        history = fit.history
        done = checkpoints.step
    else:
        done = start
    seconds = time.time() - began

    from keras_dcign.calibration import calibrate_on_faces

    model.calibration = calibrate_on_faces(model, seed=seed)
    metadata = {
        "recipe": dict(settings, config=config, seed=seed),
        "steps": done,
        "train_seconds_this_run": round(seconds, 1),
        "images_per_second_this_run": round((done - start) * settings["batch_size"] / seconds, 1)
        if seconds > 0 and done > start
        else None,
        "machine": describe_machine(),
        "command": command,
        "final_logs": {k: float(v[-1]) for k, v in history.items()},
        "calibration_r2": {f: e["r2"] for f, e in model.calibration.factors.items()},
    }
    metadata["relight_check"] = relight_check(model)
    metadata["heldout_reconstruction_mse"] = round(heldout_reconstruction_mse(model), 5)
    if model.reconstruction == "gaussian" and model.gaussian_scale == "learned":
        log_scale = keras.ops.convert_to_numpy(model.likelihood_scale())
        metadata["learned_sigma"] = round(float(np.exp(log_scale)), 5)
    preset_dir = model.save_to_preset(
        run_dir / "preset", metadata=metadata, card=model_card(config, metadata), float16=True
    )
    return TrainResult(preset_dir, run_dir, done - start, seconds, history, start)


def _resumed_recipe(run_dir, config, seed, overrides, settings):
    """The settings a resumed run continues with: its own recipe, where only `steps` may change.

    The defaults of a newer recipe must not slip into an older run, and a flag that
    contradicts the run is refused rather than silently mixed into it.
    """
    path = run_dir / "recipe.json"
    if not path.exists():
        return settings
    from keras_dcign.files import read_json_object

    saved = read_json_object(path, what="run recipe")
    for key, value in (("config", config), ("seed", seed)):
        if key in saved and saved[key] != value:
            raise ValueError(
                f"{key}={value!r} does not match the run in {run_dir}, which was trained with "
                f"{key}={saved[key]!r}; pass the same value to --resume it."
            )
    own = {key: saved[key] for key in RECIPES[config] if key in saved}
    own.update({key: value for key, value in LEGACY_SETTINGS.items() if key not in saved})
    for key, value in overrides.items():
        if value is not None and key != "steps" and key in own and value != own[key]:
            raise ValueError(
                f"{key}={value!r} does not match the run in {run_dir}, which was trained with "
                f"{key}={own[key]!r}; only steps may change when resuming."
            )
    steps = overrides.get("steps") or own.get("steps")
    return recipe(config, **dict(own, steps=steps))


def heldout_reconstruction_mse(model, people=64, seed=0):
    """Mean squared reconstruction error of held-out people at random pose and light.

    A quick number every run reports (numpy only); `dcign evaluate` measures the rest.
    """
    from keras import ops

    from keras_dcign.calibration import factor_ranges
    from keras_dcign.datasets import faces

    rng = np.random.default_rng([seed, 11])
    who = rng.choice(np.asarray(faces.identities("test")), size=people, replace=False)
    angles = {f: rng.uniform(*r, people) for f, r in factor_ranges().items()}
    images = faces.render(who, image_size=model.image_size, **angles)[..., None]
    images = images.astype("float32")
    out = np.concatenate(
        [ops.convert_to_numpy(model(images[k : k + 32])) for k in range(0, people, 32)]
    )
    return float(np.mean((out - images) ** 2))


def relight_check(model, people=8):
    """Left-minus-right brightness of frontal test faces re-rendered with light left and right.

    A model that learned light has a positive difference for "left" and a
    negative one for "right" (light azimuth is measured from the viewer's side).
    """
    from keras import ops

    from keras_dcign.datasets import faces

    who = np.asarray(faces.identities("test"))[:people]
    images = faces.render(who, image_size=model.image_size)[..., None].astype("float32")
    half = model.image_size // 2
    result = {}
    for side in ("left", "right"):
        out = ops.convert_to_numpy(model.rerender(images, light=side))
        result[side] = float(np.mean(out[:, :, :half]) - np.mean(out[:, :, half:]))
    return result


def model_card(config, metadata):
    """The markdown model card of a preset trained by `train`."""
    recipe_ = metadata["recipe"]
    command = metadata.get("command") or f"dcign train --dataset faces --config {config}"
    r2 = metadata["calibration_r2"]
    logs = metadata.get("final_logs", {})
    check = metadata.get("relight_check", {})
    entangled = not recipe_.get("monovariant", True)
    lines = [
        f"# {config}_entangled" if entangled else f"# {config}",
        "",
        f"DC-IGN at {recipe_['image_size']}x{recipe_['image_size']} px, "
        f"{_stack_words(recipe_)}, {recipe_['feature_maps']} feature maps, a 200-unit graphics "
        "code (azimuth, elevation, light, 197 intrinsic); "
        f"{_likelihood_words(recipe_)}.",
        "",
        *(
            [
                "This is the paper's entangled baseline: the same network trained as a plain VAE "
                "on batches in which every factor varies. Its azimuth/elevation/light units are "
                "the units that vary most over each factor's sweeps.",
                "",
            ]
            if entangled
            else []
        ),
        "## Data",
        "",
        "Trained on the package's own procedurally generated faces "
        "(`keras_dcign.datasets.faces`), not on Basel Face Model renders: the Basel Face Model "
        "is licence-restricted and the paper's rendered dataset cannot be fetched here. The "
        "generator gives exact ground truth for pose, light and identity. Test identities are "
        "never seen in training.",
        "",
        "## Recipe",
        "",
        f"- command: `{command}`",
        f"- steps: {metadata['steps']} of batch {recipe_['batch_size']}; seed {recipe_['seed']}",
        f"- clamp {recipe_['clamp']}, invariance strength {recipe_['invariance_strength']}, "
        f"shape bias {recipe_['shape_bias']}, KL weight {recipe_['kl_weight']}, "
        f"Adam learning rate {recipe_['learning_rate']}"
        + (
            f", the first {recipe_['pretrain_steps']} steps as a plain VAE on "
            + (
                "MIXED batches"
                if recipe_.get("pretrain_data", "monovariant") == "mixed"
                else "the monovariant batches"
            )
            if recipe_.get("pretrain_steps")
            else ""
        ),
        f"- images seen: {metadata['steps'] * recipe_['batch_size']:,}",
        (
            f"- training time: {metadata['train_seconds_this_run']} s "
            f"({metadata.get('images_per_second_this_run')} images/s) on {metadata['machine']}"
            if metadata.get("images_per_second_this_run")
            else f"- resumed from its final checkpoint on {metadata['machine']}: no training "
            "time was measured in the run that wrote this preset"
        ),
        "",
        "## Measured",
        "",
        *(
            [
                f"- final training loss {logs['loss']:.1f} (reconstruction "
                f"{logs['reconstruction']:.1f}, KL {logs['kl']:.1f}), mean of the last epoch"
            ]
            if logs
            else []
        ),
        *(
            [f"- learned likelihood sigma: {metadata['learned_sigma']}"]
            if metadata.get("learned_sigma")
            else []
        ),
        *(
            [
                "- reconstruction MSE of 64 held-out people at random pose and light: "
                f"{metadata['heldout_reconstruction_mse']:.5f}"
            ]
            if "heldout_reconstruction_mse" in metadata
            else []
        ),
        "- calibration R² on held-out sweeps: "
        + ", ".join(f"{factor} {value:.3f}" for factor, value in r2.items()),
        f"- relight check (left-minus-right brightness of 8 frontal test faces): light=left "
        f"{check.get('left', float('nan')):+.4f}, "
        f"light=right {check.get('right', float('nan')):+.4f}",
        "",
        "## Limits",
        "",
        "Grayscale generated faces on a black background: photos differ in lighting, hair, "
        "background and identity statistics, so re-rendering real photos is approximate. "
        "Angles outside the calibrated range are refused.",
        "",
    ]
    return "\n".join(lines)


def _stack_words(recipe_):
    if recipe_.get("architecture", "paper") == "strided":
        return "a strided conv stack (4x4 stride-2 convolutions and transposes)"
    return "the paper's conv stack"


def _likelihood_words(recipe_):
    if recipe_.get("reconstruction", "bernoulli") == "bernoulli":
        return "Bernoulli pixel likelihood, as the paper"
    scale = recipe_.get("gaussian_scale")
    if scale == "learned":
        return "Gaussian pixel likelihood with one learned shared sigma (a calibrated decoder)"
    if scale == "analytic":
        return "Gaussian pixel likelihood with the batch-optimal shared sigma"
    return f"Gaussian pixel likelihood, sigma {scale}"


def describe_machine():
    """CPU cores and model, accelerator and Keras backend, for model cards."""
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    backend = keras.backend.backend()
    accelerator = "no GPU"
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            accelerator = device.device_kind
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            accelerator = torch.cuda.get_device_name(0)
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            accelerator = gpus[0].name
    return f"{os.cpu_count()} CPU cores ({cpu}), {accelerator}, Keras backend {backend}"


def _check_writable(run_dir):
    """Checks the run folder can be made, without making it: a failed run leaves no folder."""
    nearest = run_dir.absolute()
    while not nearest.exists():
        nearest = nearest.parent
    if not nearest.is_dir() or not os.access(nearest, os.W_OK | os.X_OK):
        raise ValueError(
            f"Output folder {run_dir} is not writable: {nearest} is not a writable folder."
        )


def _is_run_folder(folder):
    """Whether `folder` holds a training run (its checkpoints or its recipe)."""
    return (folder / "checkpoints").is_dir() or (folder / "recipe.json").is_file()


def _batch_source(settings, data_dir, seed, workers, progress, chunk):
    """A function `start_step -> generator of (images, group_ids)` (deterministic per step),
    or, with `workers`, a `PyDataset` of `chunk` batches rendered on the fly."""
    from keras_dcign.datasets import faces

    size, batch = settings["image_size"], settings["batch_size"]
    kinds = None if settings["monovariant"] else ("MIXED",)
    pretrain = int(settings["pretrain_steps"])
    if data_dir is not None:
        images, groups = faces.stack_batches(
            faces.load_reference_layout(data_dir, image_size=size, split="train")
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
    )
    images, groups = cached_training_set(**cache, kinds=kinds)
    if pretrain and settings["monovariant"] and settings["pretrain_data"] == "mixed":
        # Pre-training sees a new person in every image, 20 times the people of monovariant
        # batches: it draws faces several times sooner (docs/recipes.md).
        mixed = cached_training_set(**cache, kinds=("MIXED",))
        return _switch_at(pretrain, _cycle(*mixed, seed), _cycle(images, groups, seed))
    return _cycle(images, groups, seed, pretrain)


def _switch_at(step, before, after):
    """A batch source that is `before` for steps < `step` and `after` from then on."""

    def generate(start):
        if start < step:
            source = before(start)
            for _ in range(step - start):
                yield next(source)
        yield from after(max(start, step))

    return generate


def cached_training_set(
    image_size, n_batches, batch_size, shape_bias, seed, progress=True, kinds=None
):
    """Generated faces rendered once into `$KERAS_HOME/keras_dcign/datasets` and loaded.

    `kinds` as for `faces.training_batches` (default: the four monovariant kinds).

    Returns:
        `(images, group_ids)`: uint8 `(batches, N, H, W, 1)` and int32 `(batches, N)`.
    """
    from keras_dcign.datasets import faces
    from keras_dcign.download import cache_dir
    from keras_dcign.graphics_code import GraphicsCode

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
    code = GraphicsCode.paper()
    ids = np.array([-1 if g is None else code.index(g) for g in data["group"]], dtype="int32")
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


class StopAfter(keras.callbacks.Callback):
    """Asks `fit` to stop once a wall-clock budget (seconds) is spent."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.deadline = time.time() + self.seconds

    def on_train_batch_end(self, batch, logs=None):
        if time.time() > self.deadline:
            self.model.stop_training = True
