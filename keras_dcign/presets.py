"""Presets: a model's config, weights, calibration and card in one folder.

The layout follows KerasHub: `config.json`, `model.weights.h5`,
`metadata.json`, plus `calibration.json` and a model card `README.md`.
A preset is found by zoo name, local folder, `https://` archive URL
(sha256-checked, cached under `$KERAS_HOME/keras_dcign`), `hf://` or
`kaggle://`.
"""

import datetime
import json
import shutil
from pathlib import Path

import numpy as np

from keras_dcign import download, torch7, zoo
from keras_dcign.datasets.reference_layout import SET_NAMES
from keras_dcign.files import (
    atomic_folder,
    atomic_write,
    check_distinct,
    check_output_folder,
    is_preset_folder,
)
from keras_dcign.version import __version__

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
CALIBRATION_FILE = "calibration.json"
CARD_FILE = "README.md"


def list_presets():
    """The zoo's registry: `{name: entry}` with description, image size, parameters, source."""
    return zoo.registry()["presets"]


def resolve_preset(source, progress=True):
    """The local folder of a preset given by name, folder, URL, `hf://` or `kaggle://`."""
    source = str(source)
    registry = list_presets()
    if source in registry:
        entry = registry[source]
        if entry["source"] == "bundled":
            return _check_folder(zoo.ZOO_DIR / source)
        if entry["source"] == "torch7":
            return _torch7_release(source, entry, progress)
        return _fetch_archive(entry["urls"], entry.get("sha256"), source, progress)
    if source.startswith("https://") or source.startswith("http://"):
        url, _, fragment = source.partition("#")
        sha256 = fragment[len("sha256=") :] if fragment.startswith("sha256=") else None
        if sha256 is None:
            raise ValueError(
                f"Preset URL {source!r} has no checksum; expected '<url>#sha256=<hex digest>'."
            )
        return _fetch_archive([url], sha256, sha256[:16], progress)
    if source.startswith("hf://"):
        return _check_folder(download.fetch_hub(source))
    if source.startswith("kaggle://"):
        return _check_folder(download.fetch_kaggle(source))
    path = Path(source).expanduser()
    if path.exists():
        return _check_folder(path)
    raise ValueError(
        f"Unknown preset {source!r}; expected one of {sorted(registry)}, a preset folder, "
        "an https:// URL, hf:// or kaggle://."
    )


def model_card(name):
    """The model card (markdown) of a preset given by name or folder."""
    folder = resolve_preset(name)
    card = folder / CARD_FILE
    if not card.exists():
        raise ValueError(f"Preset {name!r} has no model card ({card} is missing).")
    return card.read_text()


def fetch(source, dest=None, sha256=None, progress=True, overwrite=False):
    """Downloads a preset (zoo name or archive URL) or a plain file, for `dcign download`.

    Args:
        source: a zoo name, a registry dataset (e.g. `"faces-original"`), an
            `https://...#sha256=...` preset archive, or a plain `https://` file
            URL with `sha256` given.
        dest: a folder to copy the preset into, unpack the dataset into (or
            to save the file in); default: the cache under `$KERAS_HOME/keras_dcign`.
        sha256: the expected checksum of a plain file URL.
        overwrite: replace a `dest` this package wrote even when it holds other
            files or another preset (`keras_dcign.files.check_output_folder`).

    Returns:
        The local path.
    """
    if sha256 is not None and "://" in source:
        return download.fetch_file(source, sha256, dest, progress, overwrite)
    datasets = zoo.registry_datasets()
    if source in datasets:
        return torch7.fetch_dataset(
            source, datasets[source], _REFERENCE_SETS, dest, progress, overwrite
        )
    rule = dict(kind="preset", overwrite=overwrite, legacy=is_preset_folder, origin=source)
    if dest is not None:  # checked before a download; a local source is an input too
        check_distinct([dest], [source] if Path(source).exists() else [], replaced=True)
        check_output_folder(dest, **rule)
    folder = resolve_preset(source, progress=progress)
    if dest is None:
        return folder
    target = Path(dest)
    check_distinct([target], [folder], replaced=True)
    with atomic_folder(target, **rule) as staging:
        shutil.copytree(folder, staging, dirs_exist_ok=True)
    return target.absolute()


def from_preset(preset, progress=True, **overrides):
    """Builds a `DCIGN` from a preset and loads its weights and calibration.

    Args:
        preset: a zoo name (see `list_presets()`), a local preset folder, an
            `https://...#sha256=...` archive URL, `hf://owner/repo` or
            `kaggle://owner/model/keras/variant`.
        progress: show a progress bar while downloading.
        **overrides: config values to change (e.g. `invariance_strength`).

    Example:

    >>> model = keras_dcign.from_preset("faces_basel")  # bundled: nothing to download
    >>> model.image_size, sorted(model.calibration.factors)
    (150, ['azimuth', 'elevation', 'light'])
    >>> images = np.random.default_rng(0).random((2, 150, 150, 1), dtype="float32")
    >>> relit = model.rerender(images, light="left")
    >>> tuple(relit.shape)
    (2, 150, 150, 1)
    """
    import keras

    folder = resolve_preset(preset, progress=progress)
    serialized = read_model_config(folder)
    calibration = load_calibration(folder)
    check_agreement(folder, serialized, calibration)  # the files as written, before overrides
    config = serialized["config"]
    changed = {k: v for k, v in overrides.items() if config.get(k, v) != v}
    config.update(overrides)
    if calibration is not None:
        config["calibration"] = calibration.get_config()
    # Rebuilt by its registered class name: this module never imports the model classes.
    try:
        model = keras.saving.deserialize_keras_object(serialized)
    except TypeError as error:
        if "locate class" not in str(error):
            raise
        raise ValueError(
            f"Preset config {folder / CONFIG_FILE} names the class "
            f"{serialized.get('registered_name') or serialized['class_name']!r}, which is not "
            "registered with Keras; expected a keras_dcign model (keras_dcign>DCIGN)."
        ) from None
    try:
        model.load_weights(folder / WEIGHTS_FILE)
    except Exception as error:  # h5py and Keras raise many types for a damaged file
        if changed:
            key = next(iter(changed))
            raise ValueError(
                f"from_preset({key}={changed[key]!r}) does not fit the weights of {folder}, "
                f"which has {key}={read_config(folder)[key]!r}; expected only settings that "
                "leave the weights' shapes alone."
            ) from error
        raise ValueError(
            f"Corrupt weights file {folder / WEIGHTS_FILE}: {str(error).splitlines()[0]}"
        ) from error
    return model


def check_agreement(folder, serialized=None, calibration=None):
    """Refuses a preset whose files disagree: its metadata's image size with its config's,
    its calibration with its graphics code.

    Args:
        folder: the preset folder.
        serialized: its `read_model_config` (read when not given).
        calibration: its `load_calibration` (read when not given).

    Raises:
        ValueError: one line naming the file, the field and what was expected.
    """
    from keras_dcign.graphics_code import GraphicsCode

    folder = Path(folder)
    serialized = serialized or read_model_config(folder)
    config = serialized["config"]
    metadata_path = folder / METADATA_FILE
    if metadata_path.exists():
        from keras_dcign.files import read_json_object

        metadata = read_json_object(metadata_path, what="preset metadata")
        size = config["image_size"]
        if metadata.get("image_size", size) != size:
            raise ValueError(
                f"Preset metadata {metadata_path} has image_size {metadata['image_size']!r}, "
                f"but {folder / CONFIG_FILE} has {size!r}; expected the same value."
            )
    calibration = calibration if calibration is not None else load_calibration(folder)
    if calibration is None:
        return
    code = GraphicsCode.of(config.get("code"))
    for factor, entry in calibration.factors.items():
        group = entry.get("group", factor)
        if group not in code:
            raise ValueError(
                f"Calibration {folder / CALIBRATION_FILE}: {factor!r} has group {group!r}, "
                f"which the code of {folder / CONFIG_FILE} lacks; expected one of "
                f"{list(code.names)}."
            )
        size = code.sizes[code.names.index(group)]
        if entry["unit"] >= size:
            raise ValueError(
                f"Calibration {folder / CALIBRATION_FILE}: {factor!r} has unit {entry['unit']}, "
                f"but group {group!r} of {folder / CONFIG_FILE} has {size} unit(s); expected "
                f"a unit below {size}."
            )


def load_calibration(folder):
    """A preset folder's validated `Calibration`, or None when it has none (a Torch7 import)."""
    from keras_dcign.calibration import Calibration

    path = Path(folder) / CALIBRATION_FILE
    return Calibration.load(path) if path.exists() else None


def read_model_config(folder):
    """A preset folder's `config.json` as Keras' serialized form of the model.

    `config.json` is `keras.saving.serialize_keras_object(model)` output:
    `module`, `class_name`, `registered_name` and the constructor's `config`,
    so `keras.saving.deserialize_keras_object` rebuilds the model by its
    registered name. Presets written before that hold only the constructor's
    arguments, with the class named in `metadata.json`; they are read into
    the same form.

    Raises:
        ValueError: the file is missing or not a JSON object, or the model's
            config has no `image_size` (the one-line message names the file).
    """
    from keras_dcign.files import read_json_object

    path = Path(folder) / CONFIG_FILE
    value = read_json_object(path, what="preset config")
    if "class_name" in value:
        inner = value.get("config")
        if not isinstance(inner, dict):
            raise ValueError(
                f"Preset config {path} has no 'config' object; expected Keras' serialized "
                "form of a model."
            )
        serialized = dict(value)
    else:  # the earlier layout: the constructor's arguments alone
        metadata_path = Path(folder) / METADATA_FILE
        metadata = (
            read_json_object(metadata_path, what="preset metadata")
            if metadata_path.exists()
            else {}
        )
        class_name = metadata.get("class_name", "DCIGN")
        serialized = {
            "module": "keras_dcign.model",
            "class_name": class_name,
            "config": value,
            "registered_name": f"keras_dcign>{class_name}",
        }
        inner = value
    if "image_size" not in inner:
        raise ValueError(f"Preset config {path} has no 'image_size' entry.")
    serialized["config"] = dict(inner)
    return serialized


def read_config(folder):
    """A preset folder's model constructor arguments (`config` of `read_model_config`)."""
    return read_model_config(folder)["config"]


def save_to_preset(
    model, preset_dir, metadata=None, card=None, float16=False, overwrite=False, origin=None
):
    """Writes `model` as a preset folder, atomically (a temporary folder renamed into place).

    Args:
        model: a `DCIGN`.
        preset_dir: the folder to write: new, empty, or a preset this package
            wrote from the same `origin` with nothing else in it (which is
            replaced whole); any other folder is refused.
        metadata: extra entries for `metadata.json` (training recipe, metrics).
        card: the model card's markdown text (`README.md`).
        float16: store weights as float16 (half the size; loads as float32).
        overwrite: replace a preset folder this package wrote even when it holds
            other files or was made from another source; any other folder is
            still refused.
        origin: what the preset is made from, for its marker (see
            `keras_dcign.files.mark_folder`).

    Returns:
        The preset folder's `Path`.
    """
    import keras

    from keras_dcign.files import atomic_folder

    preset_dir = Path(preset_dir)
    rule = dict(overwrite=overwrite, legacy=is_preset_folder, origin=origin)
    with atomic_folder(preset_dir, "preset", **rule) as staging:
        serialized = keras.saving.serialize_keras_object(model)
        # The calibration has its own file; the build is the constructor's own business.
        for key in ("build_config", "compile_config"):
            serialized.pop(key, None)
        config = serialized["config"]
        calibration = config.pop("calibration", None)
        config.pop("name", None)
        config.pop("trainable", None)
        atomic_write(staging / CONFIG_FILE, json.dumps(serialized, indent=2))
        # An uncompiled copy: a preset holds the model's weights, not the optimizer's state.
        bare = type(model).from_config(model.get_config())
        bare.set_weights(model.get_weights())
        bare.save_weights(staging / WEIGHTS_FILE)
        if float16:
            _weights_to_float16(staging / WEIGHTS_FILE)
        if calibration is not None:
            atomic_write(staging / CALIBRATION_FILE, json.dumps(calibration, indent=2))
        info = {
            "keras_version": keras.__version__,
            "keras_dcign_version": __version__,
            "class_name": type(model).__name__,
            "parameter_count": int(model.count_params()),
            "image_size": model.image_size,
            "date_saved": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        info.update(metadata or {})
        atomic_write(staging / METADATA_FILE, json.dumps(info, indent=2, default=_jsonable))
        if card is not None:
            atomic_write(staging / CARD_FILE, card)
    return preset_dir


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _weights_to_float16(path):
    """Rewrites a weights file with float16 datasets (a new file: HDF5 never shrinks in place)."""
    import h5py

    with h5py.File(path, "r") as source:
        atomic_write(path, lambda handle: _copy_as_float16(source, handle))


def _copy_as_float16(source, handle):
    import h5py

    def copy(source, target):
        target.attrs.update(dict(source.attrs))
        for name, item in source.items():
            if isinstance(item, h5py.Group):
                copy(item, target.create_group(name))
            else:
                data = item[()]
                if getattr(data, "dtype", None) == np.float32:
                    data = data.astype("float16")
                target.create_dataset(name, data=data)
                target[name].attrs.update(dict(item.attrs))

    with h5py.File(handle, "w") as target:
        copy(source, target)


_PRESET_FILES = (CONFIG_FILE, WEIGHTS_FILE)
# The folders the authors' dataset holds, one per kind of batch (th_AZ_VARIED, ...).
_REFERENCE_SETS = frozenset("th_" + name for name in SET_NAMES.values())


def _check_folder(path):
    return download.check_folder(path, _PRESET_FILES)


def _fetch_archive(urls, sha256, name, progress):
    return download.fetch_archive(urls, sha256, name, progress, required_files=_PRESET_FILES)


def _torch7_release(name, entry, progress):
    """The authors' Torch7 network: downloaded and converted once, then the cached preset."""
    preset = download.cache_dir("presets", name) / "preset"
    if all((preset / required).is_file() for required in _PRESET_FILES):
        return preset
    archive, url = torch7.fetch_release(name, entry, progress=progress)
    return torch7.convert_release(archive, url, preset, name=name, parameters=entry["parameters"])
