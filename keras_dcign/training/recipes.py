"""The training recipes behind `dcign train`: one schema of settings, the named recipes, and
resuming.

Every setting of a recipe is declared once, in `Recipe`: its default, its check, its help, the
`DCIGN` keyword it sets and the value a run from before the setting existed was trained with.
The command line's options, the model's keyword arguments, the model card and a resumed run's
settings all come from it.

Plain data and Python only (no Keras), so the command line reads the recipes at once.
"""

import dataclasses
import math
from collections.abc import Mapping

from keras_dcign.files import read_json_object
from keras_dcign.graphics_code import LAYOUTS

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
ARCHITECTURES = ("paper", "strided")
RECONSTRUCTIONS = ("bernoulli", "gaussian")
CLAMPS = ("mean", "first")
# The Gaussian likelihood's sigma: a positive number or one of these.
GAUSSIAN_SCALES = ("learned", "analytic")
# A setting that every run's recipe.json has carried.
_ALWAYS = object()


@dataclasses.dataclass(frozen=True)
class Setting:
    """One recipe setting: its type and check, its help, and where it goes.

    `kind` is `int`, `float`, `str`, `bool`, `"scale"` (a positive number or one of
    `GAUSSIAN_SCALES`) or `"preset"` (a preset name, folder or URL, or None). `model` names
    the `DCIGN` keyword it sets; `legacy` is the value a run whose recipe.json predates the
    setting was trained with; `flag` is the command-line flag that turns a `bool` setting
    away from its default.
    """

    kind: object
    help: str = ""
    choices: tuple = ()
    minimum: float = None
    maximum: float = None
    min_open: bool = False
    model: str = None
    legacy: object = _ALWAYS
    flag: str = None

    def check(self, name, value):
        """The value, normalised to the setting's type; ValueError in one line otherwise."""
        if self.kind == "preset":
            if value is None or (isinstance(value, str) and value):
                return value
            return self._refuse(name, value, "a preset name, folder or URL")
        if self.kind == "scale":
            if value in GAUSSIAN_SCALES:
                return value
            number = _number(value)
            if number is None or not 0 < number < math.inf:
                return self._refuse(name, value, f"a positive number or one of {GAUSSIAN_SCALES}")
            return number
        if self.choices:
            if value not in self.choices:
                return self._refuse(name, value, f"one of {list(self.choices)}")
            return value
        if self.kind is bool:
            if not isinstance(value, bool):
                return self._refuse(name, value, "True or False")
            return value
        number = _number(value)
        if self.kind is int and (number is None or number != int(number)):
            return self._refuse(name, value, f"{self._range_words('an integer')}")
        if number is None or not (
            (
                self.minimum is None
                or number > self.minimum
                or (number == self.minimum and not self.min_open)
            )
            and (self.maximum is None or number <= self.maximum)
        ):
            what = "an integer" if self.kind is int else "a number"
            return self._refuse(name, value, self._range_words(what))
        return int(number) if self.kind is int else float(number)

    def _range_words(self, what):
        if self.minimum is not None and self.maximum is not None:
            return f"{what} in [{self.minimum:g}, {self.maximum:g}]"
        if self.minimum is not None:
            return f"{what} {'>' if self.min_open else '>='} {self.minimum:g}"
        return what

    @staticmethod
    def _refuse(name, value, expected):
        raise ValueError(f"{name}={value!r} is invalid; expected {expected}.")


def _number(value):
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _setting(default, kind, help="", **spec):
    return dataclasses.field(default=default, metadata={"setting": Setting(kind, help, **spec)})


@dataclasses.dataclass(frozen=True)
class Recipe(Mapping):
    """The settings of one training run; the defaults are the `faces_64` recipe.

    A recipe reads like its `recipe.json` (`recipe["steps"]`, `dict(recipe)`) as well as by
    attribute, and checks every value when it is made:

    >>> from keras_dcign.training.recipes import Recipe
    >>> Recipe().steps, Recipe(steps=100)["steps"]
    (7500, 100)
    >>> Recipe(lr_decay=2.0)
    Traceback (most recent call last):
    ...
    ValueError: lr_decay=2.0 is invalid; expected a number in [0, 1].
    """

    image_size: int = _setting(
        64, int, "Side of the square training images.", minimum=16, model="image_size"
    )
    feature_maps: int = _setting(
        32, int, "Maps of the first encoder convolution.", minimum=4, model="feature_maps"
    )
    architecture: str = _setting(
        "strided",
        str,
        "Conv stack around the graphics code: the paper's, or strided convolutions.",
        choices=ARCHITECTURES,
        model="architecture",
        legacy="paper",
    )
    code: str = _setting(
        "paper",
        str,
        "Graphics-code layout: the paper's (azimuth, elevation, light, 197 intrinsic), or "
        "shape_texture (the intrinsic units split into shape 98 and texture 99, trained on "
        "SHAPE_ONLY and TEXTURE_ONLY batches).",
        choices=tuple(LAYOUTS),
        model="code",
        legacy="paper",
    )
    reconstruction: str = _setting(
        "gaussian",
        str,
        "Pixel likelihood.",
        choices=RECONSTRUCTIONS,
        model="reconstruction",
        legacy="bernoulli",
    )
    gaussian_scale: object = _setting(
        "learned",
        "scale",
        "Sigma of the Gaussian likelihood: a number, 'learned' or 'analytic'.",
        model="gaussian_scale",
        legacy=0.1,
    )
    steps: int = _setting(7500, int, "Optimizer steps.", minimum=1)
    batch_size: int = _setting(20, int, "Images per monovariant batch.", minimum=2)
    batches_per_step: int = _setting(
        1,
        int,
        "Monovariant batches side by side in one step, each clamped on its own.",
        minimum=1,
        legacy=1,
    )
    precision: str = _setting(
        "auto",
        str,
        "Compute precision of training (bfloat16: float32 weights, bfloat16 "
        "arithmetic; auto: bfloat16 where the CPU's bfloat16 units pay).",
        choices=("auto", *PRECISIONS),
        legacy="float32",
    )
    jit_compile: str = _setting(
        "auto",
        str,
        "XLA-compile the training step (auto: whichever is faster on this backend and CPU).",
        choices=JIT_COMPILE,
        legacy="auto",
    )
    learning_rate: float = _setting(1e-3, float, "Adam's learning rate.", minimum=0, min_open=True)
    clamp: str = _setting(
        "mean",
        str,
        "Value the clamped latents take in a monovariant "
        "batch: the batch mean (paper) or the first image's.",
        choices=CLAMPS,
        model="clamp",
    )
    invariance_strength: float = _setting(
        0.01,
        float,
        "Gradient pulling the clamped latents towards their batch mean.",
        minimum=0,
        model="invariance_strength",
    )
    shape_bias: float = _setting(
        1.0,
        float,
        "Weight of SHAPE batches (1 = 1:1:1:1, 16 = the reference code); with the "
        "shape_texture code, of SHAPE_ONLY and TEXTURE_ONLY batches each.",
        minimum=0,
        min_open=True,
    )
    kl_weight: float = _setting(
        1.0, float, "Weight of the KL term (beta).", minimum=0, model="kl_weight"
    )
    pretrain_steps: int = _setting(
        4500, int, "Train the first N steps as a plain VAE, then monovariant.", minimum=0, legacy=0
    )
    pretrain_data: str = _setting(
        "mixed",
        str,
        "Batches of the plain-VAE steps: every factor varying, or the monovariant ones.",
        choices=PRETRAIN_DATA,
        legacy="monovariant",
    )
    cache_batches: int = _setting(
        3000, int, "Batches of generated faces to cache and cycle through.", minimum=1
    )
    monovariant: bool = _setting(
        True,
        bool,
        "Train the paper's entangled baseline instead: a plain VAE on batches where every "
        "factor varies (monovariant=False).",
        model="monovariant",
        flag="--entangled",
    )
    init_from: object = _setting(
        None,
        "preset",
        "Start from a preset's weights (zoo name, folder or URL) with a fresh optimizer.",
        legacy=None,
    )
    lr_decay: float = _setting(
        0.0,
        float,
        "Cosine-decay the learning rate over this last fraction of the run (0: constant).",
        minimum=0,
        maximum=1,
        legacy=0.0,
    )
    plain_fraction: float = _setting(
        0.0,
        float,
        "Fraction of the monovariant phase's steps trained as a plain VAE on MIXED batches.",
        minimum=0,
        maximum=1,
        legacy=0.0,
    )

    def __post_init__(self):
        for name, setting in self.settings().items():
            object.__setattr__(self, name, setting.check(name, getattr(self, name)))

    @classmethod
    def settings(cls):
        """Each setting's name and `Setting`, in order."""
        return {f.name: f.metadata["setting"] for f in dataclasses.fields(cls)}

    @classmethod
    def legacy_settings(cls):
        """What a run whose recipe.json predates a setting was trained with."""
        return {
            name: setting.legacy
            for name, setting in cls.settings().items()
            if setting.legacy is not _ALWAYS
        }

    @classmethod
    def from_saved(cls, saved, base=None):
        """The recipe a saved `recipe.json` (or a preset's metadata) describes: settings it
        predates take their legacy values, settings that every run saves and it lacks those of
        `base` (default: `Recipe()`), and keys that are not settings (`config`, `seed`) are
        left out."""
        names = cls.settings()
        values = dict(base or cls())
        values.update(cls.legacy_settings())
        values.update({key: value for key, value in saved.items() if key in names})
        return cls(**values)

    def replace(self, **overrides):
        """A copy with `overrides` applied (None values are ignored, unknown names refused)."""
        names = self.settings()
        for key in overrides:
            if key not in names:
                raise ValueError(f"Unknown training option {key!r}; expected one of {list(names)}.")
        changed = {key: value for key, value in overrides.items() if value is not None}
        return dataclasses.replace(self, **changed)

    def model_kwargs(self):
        """The `DCIGN(...)` keyword arguments of the network this recipe trains."""
        kwargs = {
            setting.model: getattr(self, name)
            for name, setting in self.settings().items()
            if setting.model
        }
        # Several monovariant batches side by side in one step are clamped one by one.
        kwargs["monovariant_batch_size"] = self.batch_size if self.batches_per_step > 1 else None
        return kwargs

    @property
    def images_per_step(self):
        """Images one optimizer step trains on: `batches_per_step` batches of `batch_size`."""
        return self.batch_size * self.batches_per_step

    def __getitem__(self, key):
        if key not in self.settings():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(self.settings())

    def __len__(self):
        return len(self.settings())


RECIPES = {
    # The CPU default: generated 64x64 faces, minutes on 2 cores. A standard strided conv
    # stack around the paper's graphics code, a calibrated Gaussian likelihood (a learned
    # shared sigma, KL weight 1), and plain-VAE pre-training before the monovariant batches
    # (the reference code's advice): monovariant from the first step, the encoder learns the
    # person from SHAPE batches alone and draws featureless heads (docs/recipes.md).
    "faces_64": Recipe(),
    # The paper's image size, graphics code and training procedure (plain-VAE pre-training,
    # then monovariant batches with the clamp) on the strided stack (four stages at 150²),
    # which a CPU can train: the paper's stack trains at about 6 images/s at 150² there
    # (tools/faces_basel_gpu.py trains that one on a GPU). The invariance pull, plain batches
    # and decay are what turned the head at 64² (docs/recipes.md).
    "faces_basel": Recipe(
        image_size=150,
        steps=50000,
        invariance_strength=20.0,
        pretrain_steps=15000,
        cache_batches=4000,
        lr_decay=0.3,
        plain_fraction=0.25,
    ),
    # The paper's own network and objective at 150²: its conv stack with 96 maps, the summed
    # Bernoulli likelihood and monovariant batches from the first step. About 6 images/s on a
    # 2-core CPU: a GPU recipe (tools/faces_basel_gpu.py).
    "faces_basel_paper": Recipe(
        image_size=150,
        feature_maps=96,
        architecture="paper",
        reconstruction="bernoulli",
        gaussian_scale=0.1,
        learning_rate=5e-4,
        steps=30000,
        pretrain_steps=0,
        cache_batches=4000,
    ),
}
# What a run whose recipe.json predates a setting was trained with.
LEGACY_SETTINGS = Recipe.legacy_settings()


def recipe(config="faces_64", **overrides):
    """A named recipe with overrides applied (None values are ignored), as a `Recipe`."""
    if config not in RECIPES:
        raise ValueError(f"Unknown training config {config!r}; expected one of {list(RECIPES)}.")
    return RECIPES[config].replace(**overrides)


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
    own = Recipe.from_saved(saved, base=RECIPES[config])
    for key, value in overrides.items():
        if value is not None and key != "steps" and key in own and value != own[key]:
            raise ValueError(
                f"{key}={value!r} does not match the run in {run_dir}, which was trained with "
                f"{key}={own[key]!r}; only steps may change when resuming."
            )
    return own.replace(steps=overrides.get("steps"))
