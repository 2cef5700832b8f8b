"""The training loop: data, model, checkpoints, calibration, preset."""

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import keras
import numpy as np

from keras_dcign.compute import describe as describe_compute
from keras_dcign.directions import fit_intrinsic_directions, save_intrinsic_directions
from keras_dcign.files import (
    atomic_write,
    check_distinct,
    check_output_folder,
    folder_marker,
    mark_folder,
)
from keras_dcign.training.callbacks import StopAfter, TrainingProgress
from keras_dcign.training.card import describe_machine, model_card
from keras_dcign.training.checkpoint import (
    CheckpointEvery,
    checkpoint_step,
    latest_checkpoint,
    restore_checkpoint,
    resume_point,
)
from keras_dcign.training.data import batch_source
from keras_dcign.training.recipes import (
    PRECISIONS,
    Recipe,
    recipe,
    resumed_recipe,
)

# The longest epoch of a run, in steps: how often the progress bar moves, and how far past
# its budget a run with a time limit may go.
EPOCH_STEPS = 20
# A run folder's record of the training segments behind its starting weights.
LINEAGE_FILE = "lineage.json"
# What a run writes into its folder (its marker lists them).
RUN_FILES = ("checkpoints", "preset", "recipe.json", LINEAGE_FILE)


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
        **overrides: recipe settings (`steps`, `batch_size`,
            `batches_per_step`, `clamp`,
            `invariance_strength`, `shape_bias`, `kl_weight`, `learning_rate`,
            `architecture`, `feature_maps`, `reconstruction`,
            `gaussian_scale`, `pretrain_steps`, `monovariant`, ...).
            `monovariant=False` trains the paper's entangled baseline: the
            same network as a plain VAE on batches in which every factor
            varies (MIXED). `pretrain_steps=N` trains the first N steps as a
            plain VAE (nothing clamped), then monovariant, as the reference
            code's README recommends; `pretrain_data="mixed"` pre-trains on
            MIXED batches, `"monovariant"` on the monovariant batches.
            `code="shape_texture"` trains the graphics code with separate
            shape and texture groups (`GraphicsCode.shape_texture`) on AZ,
            EL, LIGHT, SHAPE_ONLY and TEXTURE_ONLY batches.

    Returns:
        A `TrainResult`.
    """
    if dataset != "faces":
        raise ValueError(f"Unknown dataset {dataset!r}; expected 'faces'.")
    settings = recipe(config, **overrides)
    run_dir = Path(out)
    _check_writable(run_dir)
    if not resume and latest_checkpoint(run_dir) is not None:
        raise ValueError(
            f"{run_dir} already holds a training run; pass --resume to continue it or choose "
            "another --out."
        )
    # A run folder is known by its marker; one from before markers by its checkpoints, and
    # then only to resume it (resume_point validates them before anything is written).
    legacy = (lambda folder: any((folder / "checkpoints").glob("step-*"))) if resume else None
    check_output_folder(run_dir, "run", reuse=True, legacy=legacy)
    check_distinct([run_dir], [data_dir] if data_dir else [], replaced=True)
    existing = resume_point(run_dir) if resume else None
    if existing is not None:
        settings = resumed_recipe(run_dir, config, seed, overrides, settings)
    total = settings.steps
    per_step = settings.images_per_step
    # Epochs are chunks that divide both the run and the checkpoint interval, so a resumed
    # run (which starts at a checkpoint) lines up with them and stops at exactly `total`.
    # Short ones (at most EPOCH_STEPS): the callbacks act at epoch ends only.
    chunk = epoch_steps(total, checkpoint_every)
    # Data first: rendering processes are forked before the backend starts its threads.
    finished = resume and existing is not None and checkpoint_step(existing) >= total
    source = None if finished else batch_source(settings, data_dir, seed, workers, progress, chunk)
    compute = describe_compute(settings, keras.backend.backend())
    model = build_model(settings, seed, compute)
    start = restore_checkpoint(model, existing) if (resume and existing is not None) else 0
    # The segments behind the starting weights, read when the run starts and kept in the run
    # folder: a resumed run must not re-read a preset that may have changed since.
    lineage_path = run_dir / LINEAGE_FILE
    if start and lineage_path.is_file():
        lineage = json.loads(lineage_path.read_text())
    else:
        lineage = initial_lineage(settings.init_from)
    if settings.init_from and not start:
        init_from_preset(model, settings.init_from)
    run_dir.mkdir(parents=True, exist_ok=True)
    if folder_marker(run_dir) is None:
        mark_folder(run_dir, "run", RUN_FILES)
    if not lineage_path.is_file():
        atomic_write(lineage_path, json.dumps(lineage))
    # Written whole or not at all: a resumed run reads it back.
    recipe_json = json.dumps(dict(settings, config=config, seed=seed)).encode()
    atomic_write(run_dir / "recipe.json", recipe_json)

    history = {}
    began = time.time()
    if start < total:
        checkpoints = CheckpointEvery(run_dir, checkpoint_every, start)
        callbacks = [checkpoints]
        if time_limit is not None:
            callbacks.append(StopAfter(float(time_limit) * 60.0))
        if progress:
            callbacks.append(TrainingProgress(total, start, per_step))
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

    from keras_dcign.evaluation.probes import (
        calibrate_on_faces,
        heldout_reconstruction_mse,
        relight_check,
    )

    model = _in_float32(model)
    model.calibration = calibrate_on_faces(model, seed=seed)
    metadata = {
        "recipe": dict(settings, config=config, seed=seed),
        "steps": done,
        "train_seconds_this_run": round(seconds, 1),
        "images_per_second_this_run": round((done - start) * per_step / seconds, 1)
        if seconds > 0 and done > start
        else None,
        "machine": describe_machine(),
        "compute": compute,
        "strided_stages": model.strided_stages,
        "command": command,
        "final_logs": {k: float(v[-1]) for k, v in history.items()},
        "calibration_r2": {f: e["r2"] for f, e in model.calibration.factors.items()},
    }
    images = done * per_step
    metadata["lineage"] = lineage + [_segment(settings, config, seed, command, images)]
    metadata["images_seen_in_all"] = sum(segment["images"] for segment in metadata["lineage"])
    metadata["relight_check"] = relight_check(model)
    metadata["heldout_reconstruction_mse"] = round(heldout_reconstruction_mse(model), 5)
    if model.reconstruction == "gaussian" and model.gaussian_scale == "learned":
        log_scale = keras.ops.convert_to_numpy(model.likelihood_scale())
        metadata["learned_sigma"] = round(float(np.exp(log_scale)), 5)
    # The run's own preset is replaced, also one written before presets were marked.
    preset_dir = model.save_to_preset(
        run_dir / "preset",
        metadata=metadata,
        card=model_card(config, metadata),
        float16=True,
        overwrite=True,
        origin="dcign train",
    )
    save_intrinsic_directions(preset_dir, fit_intrinsic_directions(model, seed=seed))
    return TrainResult(preset_dir, run_dir, done - start, seconds, history, start)


def epoch_steps(total, checkpoint_every):
    """Steps per epoch: the largest divisor of both the run and the checkpoint interval that is
    at most `EPOCH_STEPS`, so a resumed run lines up with the epochs and the checkpoints.

    >>> from keras_dcign.training.loop import epoch_steps
    >>> epoch_steps(7500, 100), epoch_steps(30, 10), epoch_steps(7, 100)
    (20, 10, 1)
    """
    common = math.gcd(total, checkpoint_every)
    return max(d for d in range(1, min(common, EPOCH_STEPS) + 1) if common % d == 0)


def build_model(settings, seed=0, compute=None):
    """The compiled `DCIGN` a recipe's settings train (seeded: the same initial weights).

    `compute` is `keras_dcign.compute.describe(settings, backend)`, which settles the recipe's
    "auto" precision and compile mode for this machine (found here when not given).
    """
    from keras_dcign.model import DCIGN

    if not isinstance(settings, Recipe):
        settings = Recipe.from_saved(settings)
    compute = compute or describe_compute(settings, keras.backend.backend())
    keras.utils.set_random_seed(seed)
    model = DCIGN(**settings.model_kwargs(), seed=seed, dtype=PRECISIONS[compute["precision"]])
    learning_rate = settings.learning_rate
    if settings.lr_decay:
        from keras_dcign.training.schedule import DecayOverLast

        learning_rate = DecayOverLast(learning_rate, settings.steps, settings.lr_decay)
    optimizer = keras.optimizers.Adam(learning_rate)
    model.compile(optimizer=optimizer, jit_compile=compute["jit_compile"])
    return model


# Settings of a preset that fix its weights' shapes: a run starts from it only where they match.
_SHAPE_SETTINGS = (
    "image_size",
    "channels",
    "feature_maps",
    "architecture",
    "strided_stages",
    "code size",
)


def init_from_preset(model, preset):
    """Loads a preset's weights into a freshly built model (the optimizer stays fresh).

    The graphics code may be laid out differently when it has as many units: a run with the
    shape/texture code (`--code shape_texture`) starts from a paper-code preset such as
    `faces_64`, its shape and texture groups from the preset's intrinsic units (the weights
    have the same shapes, and the preset's lineage records where they came from).

    Raises:
        ValueError: the preset's network differs from the run's (one line naming the setting).
    """
    from keras_dcign.graphics_code import GraphicsCode
    from keras_dcign.presets import from_preset

    source = from_preset(preset, progress=False)
    ours, theirs = model.get_config(), source.get_config()
    # Only the code's size fixes the weights' shapes; its groups may be named otherwise.
    for config in (ours, theirs):
        config["code size"] = GraphicsCode.from_config(config["code"]).size
    for key in _SHAPE_SETTINGS:
        if ours.get(key) != theirs.get(key):
            raise ValueError(
                f"--init-from {preset}: its {key} is {theirs.get(key)!r}, but this run's is "
                f"{ours.get(key)!r}; expected a preset of the same network."
            )
    model.set_weights(source.get_weights())


def initial_lineage(preset):
    """The training segments behind a preset a run starts from ([] for a fresh start).

    A preset written before lineages were kept counts as one segment, from its metadata.
    """
    if not preset:
        return []
    from keras_dcign.presets import resolve_preset

    metadata = json.loads((resolve_preset(preset, progress=False) / "metadata.json").read_text())
    if "lineage" in metadata:
        return [dict(segment) for segment in metadata["lineage"]]
    recipe_ = metadata.get("recipe", {})
    images = (
        int(metadata.get("steps", 0)) * Recipe.from_saved(recipe_).images_per_step if recipe_ else 0
    )
    return [
        {
            "preset": str(preset),
            "command": metadata.get("command"),
            "recipe": recipe_,
            "images": images,
        }
    ]


def _segment(settings, config, seed, command, images):
    """This run's entry in a preset's lineage."""
    return {
        "command": command,
        "recipe": dict(settings, config=config, seed=seed),
        "images": int(images),
    }


def _in_float32(model):
    """The trained model with a float32 dtype policy and the same weights (for the preset)."""
    if model.dtype_policy.name == "float32":
        return model
    from keras_dcign.model import DCIGN

    copy = DCIGN.from_config(dict(model.get_config(), dtype="float32"))
    copy.set_weights(model.get_weights())
    return copy


def _check_writable(run_dir):
    """Checks the run folder can be made, without making it: a failed run leaves no folder."""
    nearest = run_dir.absolute()
    while not nearest.exists():
        nearest = nearest.parent
    if not nearest.is_dir() or not os.access(nearest, os.W_OK | os.X_OK):
        raise ValueError(
            f"Output folder {run_dir} is not writable: {nearest} is not a writable folder."
        )
