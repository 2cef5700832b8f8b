"""The training recipes behind `dcign train`: named settings, their checks, and resuming.

Plain data and Python only (no Keras), so the command line reads the recipe names at once.
"""

from keras_dcign.files import read_json_object

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
        "batches_per_step": 1,
        "precision": "auto",
        "jit_compile": "auto",
        "learning_rate": 1e-3,
        "clamp": "mean",
        "invariance_strength": 0.01,
        "shape_bias": 1.0,
        "kl_weight": 1.0,
        "pretrain_steps": 4500,
        "pretrain_data": "mixed",
        "cache_batches": 3000,
        "monovariant": True,
        "init_from": None,
        "lr_decay": 0.0,
        "plain_fraction": 0.0,
    },
    # The paper's image size, graphics code and training procedure (plain-VAE pre-training,
    # then monovariant batches with the clamp) on the strided stack, which a CPU can train:
    # the paper's stack trains at about 6 images/s at 150² there (tools/faces_basel_gpu.py
    # trains that one on a GPU). The invariance pull, plain batches and decay are what turned
    # the head at 64² (docs/recipes.md).
    "faces_basel": {
        "image_size": 150,
        "feature_maps": 32,
        "architecture": "strided",
        "reconstruction": "gaussian",
        "gaussian_scale": "learned",
        "steps": 50000,
        "batch_size": 20,
        "batches_per_step": 1,
        "precision": "auto",
        "jit_compile": "auto",
        "learning_rate": 1e-3,
        "clamp": "mean",
        "invariance_strength": 20.0,
        "shape_bias": 1.0,
        "kl_weight": 1.0,
        "pretrain_steps": 15000,
        "pretrain_data": "mixed",
        "cache_batches": 4000,
        "monovariant": True,
        "init_from": None,
        "lr_decay": 0.3,
        "plain_fraction": 0.25,
    },
}
# What a run whose recipe.json predates a setting was trained with.
LEGACY_SETTINGS = {
    "architecture": "paper",
    "reconstruction": "bernoulli",
    "gaussian_scale": 0.1,
    "pretrain_steps": 0,
    "pretrain_data": "monovariant",
    "batches_per_step": 1,
    "precision": "float32",
    "jit_compile": "auto",
    "init_from": None,
    "lr_decay": 0.0,
    "plain_fraction": 0.0,
}
# What the plain-VAE pre-training steps train on: batches in which every factor varies (each
# image another person), or the monovariant batches with nothing clamped.
PRETRAIN_DATA = ("mixed", "monovariant")
# Training precisions and the Keras dtype policy of each: bfloat16 computes in bfloat16 and
# keeps float32 weights (the preset is written in float32 either way). A recipe may also say
# "auto": bfloat16 where the CPU's bfloat16 units pay (`keras_dcign.compute`).
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
# Whether the training step is XLA-compiled: "auto" chooses per backend and CPU
# (`keras_dcign.compute`), "on" and "off" force it.
JIT_COMPILE = ("auto", "on", "off")


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
    if int(settings["batches_per_step"]) < 1:
        raise ValueError(
            f"batches_per_step={settings['batches_per_step']!r} is invalid; expected a positive "
            "integer."
        )
    if int(settings["pretrain_steps"]) < 0:
        raise ValueError(
            f"pretrain_steps={settings['pretrain_steps']!r} is invalid; expected an integer >= 0."
        )
    if settings["pretrain_data"] not in PRETRAIN_DATA:
        raise ValueError(
            f"pretrain_data={settings['pretrain_data']!r} is invalid; expected one of "
            f"{PRETRAIN_DATA}."
        )
    if settings["precision"] not in ("auto", *PRECISIONS):
        raise ValueError(
            f"precision={settings['precision']!r} is invalid; expected one of "
            f"{['auto', *PRECISIONS]}."
        )
    if settings["jit_compile"] not in JIT_COMPILE:
        raise ValueError(
            f"jit_compile={settings['jit_compile']!r} is invalid; expected one of "
            f"{list(JIT_COMPILE)}."
        )
    for key in ("lr_decay", "plain_fraction"):
        value = float(settings[key])
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{key}={settings[key]!r} is invalid; expected a number in [0, 1].")
    if float(settings["shape_bias"]) <= 0:
        raise ValueError(f"shape_bias={settings['shape_bias']!r} is invalid; expected > 0.")
    return settings


def images_per_step(settings):
    """Images one optimizer step trains on: `batches_per_step` batches of `batch_size`."""
    return int(settings["batch_size"]) * int(settings.get("batches_per_step", 1))


def resumed_recipe(run_dir, config, seed, overrides, settings):
    """The settings a resumed run continues with: its own recipe, where only `steps` may change.

    The defaults of a newer recipe must not slip into an older run, and a flag that
    contradicts the run is refused rather than silently mixed into it.
    """
    path = run_dir / "recipe.json"
    if not path.exists():
        return settings
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
