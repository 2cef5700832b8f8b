"""Presets: a model's config, weights, calibration and card in one folder.

The layout follows KerasHub: `config.json`, `model.weights.h5`,
`metadata.json`, plus `calibration.json` and a model card `README.md`.
A preset is found by zoo name, local folder, `https://` archive URL
(sha256-checked, cached under `$KERAS_HOME/keras_dcign`), `hf://` or
`kaggle://`.
"""

import datetime
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from keras_dcign.version import __version__

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
CALIBRATION_FILE = "calibration.json"
CARD_FILE = "README.md"


def _zoo_dir():
    from keras_dcign.zoo import ZOO_DIR

    return ZOO_DIR


def list_presets():
    """The zoo's registry: `{name: entry}` with description, image size, parameters, source."""
    with open(_zoo_dir() / "registry.json") as handle:
        return json.load(handle)["presets"]


def resolve_preset(source, progress=True):
    """The local folder of a preset given by name, folder, URL, `hf://` or `kaggle://`."""
    source = str(source)
    registry = list_presets()
    if source in registry:
        entry = registry[source]
        if entry["source"] == "bundled":
            return _check_folder(_zoo_dir() / source)
        if entry["source"] == "torch7":
            # The authors' Torch7 release: downloaded and converted once, see keras_dcign.torch7.
            from keras_dcign.torch7 import fetch_preset

            return fetch_preset(source, entry, progress=progress)
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
        return _from_hub(source)
    if source.startswith("kaggle://"):
        return _from_kaggle(source)
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


def fetch(source, dest=None, sha256=None, progress=True):
    """Downloads a preset (zoo name or archive URL) or a plain file, for `dcign download`.

    Args:
        source: a zoo name, a registry dataset (e.g. `"faces-original"`), an
            `https://...#sha256=...` preset archive, or a plain `https://` file
            URL with `sha256` given.
        dest: a folder to copy the preset into, unpack the dataset into (or
            to save the file in); default: the cache under `$KERAS_HOME/keras_dcign`.
        sha256: the expected checksum of a plain file URL.

    Returns:
        The local path.
    """
    from keras_dcign.download import cache_dir, download

    if sha256 is not None and "://" in source:
        name = source.rsplit("/", 1)[-1].split("?")[0] or "download"
        folder = Path(dest) if dest else cache_dir("files")
        folder.mkdir(parents=True, exist_ok=True)
        _check_not_foreign_file(folder / name, sha256)
        return download([source], folder / name, sha256=sha256, progress=progress)
    from keras_dcign.torch7 import fetch_dataset, registry_datasets

    datasets = registry_datasets()
    if source in datasets:
        return fetch_dataset(source, datasets[source], dest=dest, progress=progress)
    folder = resolve_preset(source, progress=progress)
    if dest is None:
        return folder
    from keras_dcign.files import check_distinct, check_output_folder, install_folder

    target = Path(dest)
    check_distinct([target], [folder], replaced=True)
    check_output_folder(target)
    target.absolute().parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.absolute().parent))
    try:
        shutil.copytree(folder, staging, dirs_exist_ok=True)
        return install_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_not_foreign_file(path, sha256):
    """Refuses to replace a file of the same name that is not the one being downloaded."""
    from keras_dcign.download import sha256_of

    if path.exists() and not (path.is_file() and sha256_of(path) == sha256.strip().lower()):
        raise ValueError(
            f"{path} already exists and is not the file being downloaded; nothing was changed. "
            "Expected a folder without a file of that name."
        )


def from_preset(preset, progress=True, **overrides):
    """Builds a `DCIGN` from a preset and loads its weights and calibration.

    Args:
        preset: a zoo name (see `list_presets()`), a local preset folder, an
            `https://...#sha256=...` archive URL, `hf://owner/repo` or
            `kaggle://owner/model/keras/variant`.
        progress: show a progress bar while downloading.
        **overrides: config values to change (e.g. `invariance_strength`).

    Example:

    >>> model = keras_dcign.from_preset("faces_basel")
    >>> relit = model.rerender(images, light="left")
    """
    folder = resolve_preset(preset, progress=progress)
    config = read_config(folder)
    changed = {k: v for k, v in overrides.items() if config.get(k, v) != v}
    config.update(overrides)
    calibration = load_calibration(folder)
    if calibration is not None:
        config["calibration"] = calibration.get_config()
    # Imported only now, so a broken preset is reported without waiting for Keras.
    from keras_dcign.model import DCIGN

    model = DCIGN.from_config(config)
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


def load_calibration(folder):
    """A preset folder's validated `Calibration`, or None when it has none (a Torch7 import)."""
    from keras_dcign.calibration import Calibration

    path = Path(folder) / CALIBRATION_FILE
    return Calibration.load(path) if path.exists() else None


def read_config(folder):
    """A preset folder's `config.json`, validated: a JSON object naming the model's size."""
    from keras_dcign.files import read_json_object

    return read_json_object(
        Path(folder) / CONFIG_FILE, required=("image_size",), what="preset config"
    )


def save_to_preset(model, preset_dir, metadata=None, card=None, float16=False):
    """Writes `model` as a preset folder, atomically (a temporary folder renamed into place).

    Args:
        model: a `DCIGN`.
        preset_dir: the folder to write: new, empty, or a preset this package
            wrote (which is replaced); any other folder is refused.
        metadata: extra entries for `metadata.json` (training recipe, metrics).
        card: the model card's markdown text (`README.md`).
        float16: store weights as float16 (half the size; loads as float32).

    Returns:
        The preset folder's `Path`.
    """
    from keras_dcign.files import check_output_folder, install_folder

    preset_dir = Path(preset_dir)
    check_output_folder(preset_dir)
    preset_dir.absolute().parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{preset_dir.name}.", dir=preset_dir.absolute().parent)
    )
    staging.chmod(0o755)  # mkdtemp makes it private; a preset is meant to be shared
    try:
        config = model.get_config()
        calibration = config.pop("calibration", None)
        config.pop("name", None)
        config.pop("trainable", None)
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        # An uncompiled copy: a preset holds the model's weights, not the optimizer's state.
        from keras_dcign.model import DCIGN

        bare = DCIGN.from_config(model.get_config())
        bare.set_weights(model.get_weights())
        bare.save_weights(staging / WEIGHTS_FILE)
        if float16:
            _weights_to_float16(staging / WEIGHTS_FILE)
        if calibration is not None:
            (staging / CALIBRATION_FILE).write_text(json.dumps(calibration, indent=2))
        import keras

        info = {
            "keras_version": keras.__version__,
            "keras_dcign_version": __version__,
            "class_name": "DCIGN",
            "parameter_count": int(model.count_params()),
            "image_size": model.image_size,
            "date_saved": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        info.update(metadata or {})
        (staging / METADATA_FILE).write_text(json.dumps(info, indent=2, default=_jsonable))
        if card is not None:
            (staging / CARD_FILE).write_text(card)
        install_folder(staging, preset_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return preset_dir


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _weights_to_float16(path):
    """Rewrites a weights file with float16 datasets (a new file: HDF5 never shrinks in place)."""
    import h5py

    path = Path(path)
    smaller = path.with_name(".float16." + path.name)

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

    with h5py.File(path, "r") as source, h5py.File(smaller, "w") as target:
        copy(source, target)
    os.replace(smaller, path)


def _check_folder(path):
    path = Path(path)
    for required in (CONFIG_FILE, WEIGHTS_FILE):
        if not (path / required).is_file():
            raise ValueError(f"{path} is not a preset folder: it has no {required}.")
    return path


def _fetch_archive(urls, sha256, name, progress):
    from keras_dcign.download import cache_dir, download, extract_archive

    folder = cache_dir("presets", name)
    if (folder / "preset" / CONFIG_FILE).exists():
        return _check_folder(folder / "preset")
    archive = download(urls, folder / "preset.archive", sha256=sha256, progress=progress)
    try:
        extracted = extract_archive(archive, folder / "preset")
        inner = [p for p in extracted.iterdir() if p.is_dir()]
        if not (extracted / CONFIG_FILE).exists() and len(inner) == 1:
            return _check_folder(inner[0])
        return _check_folder(extracted)
    except (ValueError, OSError):
        # A rejected archive must not stay in the cache, where it would be taken next time.
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _from_hub(source):
    try:
        import huggingface_hub
    except ImportError as error:
        raise ValueError(
            f"{source!r} needs huggingface_hub; install it with `pip install huggingface_hub`."
        ) from error
    return _check_folder(huggingface_hub.snapshot_download(repo_id=source[len("hf://") :]))


def _from_kaggle(source):
    try:
        import kagglehub
    except ImportError as error:
        raise ValueError(
            f"{source!r} needs kagglehub; install it with `pip install kagglehub`."
        ) from error
    return _check_folder(kagglehub.model_download(source[len("kaggle://") :]))
