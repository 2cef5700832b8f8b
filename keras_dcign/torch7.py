"""The authors' Torch7 release of DC-IGN: fetched, and its network converted into a preset.

The reference code saved a trained network as a folder holding `parameters.t7`:
the flat vector `model:getParameters()` returns, every module's weight then bias
in module order (encoder convolutions 1-3, mean head, log-variance head, decoder
linear layer, decoder convolutions 1-4). `import_torch7` reads that vector with
the `torchfile` package, lays it onto a `DCIGN` and writes a preset. Torch and
Keras disagree in three places, all handled here:

- convolution kernels are (out, in, kh, kw) in Torch, (kh, kw, in, out) in Keras;
- linear weights are (out, in) in Torch, (in, out) in Keras;
- Torch flattens the last feature maps channels-first (24, 15, 15), Keras
  channels-last (15, 15, 24), so the linear layers next to the flatten and the
  reshape have their 5400-long side permuted.

`fetch_release` and `fetch_dataset` download the release the zoo registry
names (`faces_basel_original`, `faces-original`; its links were last known to
work in 2017) through `keras_dcign.download`, and `convert_release` turns the
network into the cached preset. This
module builds the model by its registered Keras name and writes the preset with
the model's own `save_to_preset`, so it imports neither `keras_dcign.model` nor
`keras_dcign.presets`.

Example:

The release itself is a download (`dcign download faces_basel_original`; its
links were last known to work in 2017), so the lines that read it are not run
here.

>>> from keras_dcign.torch7 import infer_layout, parameter_count
>>> parameter_count()  # the release's flat vector: 4,131,137 floats
4131137
>>> infer_layout(4131137)  # (latents, feature_maps)
(200, 96)
>>> preset = keras_dcign.import_torch7("dcign_sample_trained.zip")  # doctest: +SKIP
>>> model = keras_dcign.from_preset(preset)  # doctest: +SKIP
"""

import datetime
import hashlib
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from keras_dcign.datasets.reference_layout import within_storage
from keras_dcign.download import (
    DownloadError,
    cache_dir,
    download,
    dropped_if_empty,
    extract_archive,
    sha256_of,
)
from keras_dcign.extras import require
from keras_dcign.files import (
    atomic_folder,
    atomic_write,
    check_distinct,
    check_output_folder,
    is_preset_folder,
)
from keras_dcign.graphics_code import GraphicsCode

IMAGE_SIZE = 150
GRID = 15  # side of the last encoder maps at 150 px: 150 -> 73 -> 34 -> 15
REFERENCE_LATENTS = 200
REFERENCE_FEATURE_MAPS = 96
PARAMETERS_FILE = "parameters.t7"

# The authors' Torch7 release (network and dataset), whose links last worked in 2017.
LAST_WORKING = "2017"
NETWORK_HINT = (
    "if you have a copy of dcign_sample_trained.zip or its parameters.t7, convert it with "
    "`dcign import-torch7 PATH --out DIR` and load DIR with keras_dcign.from_preset(DIR)."
)
DATASET_HINT = (
    "if you have a copy of dcign_facedataset_monovariant.zip, unzip it and pass the folder "
    "holding its th_* folders to `dcign train --data-dir` or faces.load_reference_layout."
)
SOURCE_FILE = "source.json"


def reference_layout(latents=REFERENCE_LATENTS, feature_maps=REFERENCE_FEATURE_MAPS):
    """The reference network's weights in Torch7 module order.

    Each weight is followed by its bias (of its first dimension's length) in
    the flat vector.

    Args:
        latents: size of the graphics code (200 in the release).
        feature_maps: maps of the first convolution (96 in the release).

    Returns:
        A tuple of `(keras layer name, torch weight shape)`.

    Example:

    >>> from keras_dcign.torch7 import reference_layout
    >>> reference_layout()[3]
    ('z_mean', (200, 5400))
    """
    f = feature_maps
    flat = f // 4 * GRID * GRID
    return (
        ("encoder_conv_1", (f, 1, 5, 5)),
        ("encoder_conv_2", (f // 2, f, 5, 5)),
        ("encoder_conv_3", (f // 4, f // 2, 5, 5)),
        ("z_mean", (latents, flat)),
        ("z_log_var", (latents, flat)),
        ("decoder_dense", (flat, latents)),
        ("decoder_conv_1", (f // 2, f // 4, 7, 7)),
        ("decoder_conv_2", (f, f // 2, 7, 7)),
        ("decoder_conv_3", (f, f, 7, 7)),
        ("decoder_conv_4", (1, f, 7, 7)),
    )


def parameter_count(latents=REFERENCE_LATENTS, feature_maps=REFERENCE_FEATURE_MAPS):
    """Length of the flat vector of a reference-layout network (4,131,137 for the release)."""
    return sum(
        int(np.prod(shape)) + shape[0] for _, shape in reference_layout(latents, feature_maps)
    )


def infer_layout(count, latents=None, feature_maps=None, source="the vector"):
    """The `(latents, feature_maps)` whose reference layout has `count` parameters.

    The release's own layout (200, 96) is tried first; otherwise every
    feature-map count (a multiple of 4 up to 1024) and latent size (at least
    4: three pose/light units and one intrinsic) that fits, unless pinned.

    Args:
        count: length of the flat parameter vector.
        latents: the code size, if known.
        feature_maps: the first convolution's maps, if known.
        source: how error messages name the vector.

    Raises:
        ValueError: no layout, or several, fit `count`.
    """
    pinned = latents is not None or feature_maps is not None
    if not pinned and count == parameter_count():
        return REFERENCE_LATENTS, REFERENCE_FEATURE_MAPS
    maps_options = [feature_maps] if feature_maps is not None else range(4, 1025, 4)
    fits = []
    for maps in maps_options:
        base = parameter_count(0, maps)
        per_latent = parameter_count(1, maps) - base
        size, remainder = divmod(count - base, per_latent)
        if remainder == 0 and size >= 4 and latents in (None, size):
            fits.append((size, maps))
    if len(fits) == 1:
        return fits[0]
    released = (
        f"the released network has {parameter_count():,}: {REFERENCE_LATENTS} latents, "
        f"{REFERENCE_FEATURE_MAPS} feature maps"
    )
    if not fits and pinned:
        wanted = " and ".join(
            f"{value} {label}"
            for value, label in ((latents, "latents"), (feature_maps, "feature maps"))
            if value is not None
        )
        raise ValueError(
            f"{source} holds {count:,} parameters, which no 150x150 DC-IGN with {wanted} "
            f"has ({released})."
        )
    if not fits:
        raise ValueError(
            f"{source} holds {count:,} parameters, which fits no 150x150 DC-IGN layout "
            f"({released}); expected the parameters.t7 of a DC-IGN network."
        )
    choices = ", ".join(f"{size} latents/{maps} maps" for size, maps in fits)
    raise ValueError(
        f"{source} holds {count:,} parameters, which fits several layouts ({choices}); "
        "pass latents= and feature_maps= (--latents/--feature-maps) to choose one."
    )


def read_parameters(path):
    """The flat parameter vector of a Torch7 release, as float32.

    Args:
        path: the release zip, its unzipped folder, or `parameters.t7` itself.

    Returns:
        `(vector, info)`: the 1-D float32 vector, and a dict with the file it
        came from (`"file"`) and that file's sha256 (`"sha256"`).

    Raises:
        ValueError: no `parameters.t7` is found, or it is not a readable
            Torch7 tensor of finite numbers.
    """
    path = Path(path)
    if path.is_dir():
        found = [str(p.relative_to(path)) for p in path.rglob(PARAMETERS_FILE)]
        if not found:
            raise ValueError(f"{path} holds no {PARAMETERS_FILE}; expected a Torch7 DC-IGN folder.")
        path = path / _shallowest(path, found)
    elif not path.is_file():
        raise ValueError(f"{path} does not exist; expected a zip, a folder or {PARAMETERS_FILE}.")
    elif zipfile.is_zipfile(path):
        return _read_zipped_parameters(path)
    elif _looks_like_zip(path):
        raise ValueError(
            f"{path} is a damaged zip archive (it has no readable table of contents); "
            "expected the complete release zip."
        )
    return _read_t7_vector(path), {"file": str(path), "sha256": sha256_of(path)}


def _looks_like_zip(path):
    """Whether a file that `zipfile` cannot open was meant to be a zip (by name or header)."""
    with open(path, "rb") as handle:
        return path.suffix.lower() == ".zip" or handle.read(4) == b"PK\x03\x04"


def _read_zipped_parameters(archive):
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [
                n
                for n in zf.namelist()
                if n.rsplit("/", 1)[-1] == PARAMETERS_FILE and not n.startswith("__MACOSX/")
            ]
            if not names:
                raise ValueError(
                    f"{archive} holds no {PARAMETERS_FILE}; expected the Torch7 DC-IGN release."
                )
            name = _shallowest(archive, names)
            data = zf.read(name)
    except (zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{archive} is a damaged zip archive ({error}).") from None
    # torchfile reads storages with numpy.fromfile, which needs a real file.
    with tempfile.TemporaryDirectory() as scratch:
        member = Path(scratch, PARAMETERS_FILE)
        member.write_bytes(data)
        vector = _read_t7_vector(member, label=f"{archive}:{name}")
    return vector, {"file": f"{archive.name}:{name}", "sha256": hashlib.sha256(data).hexdigest()}


def _shallowest(container, names):
    """The one `parameters.t7` nearest the top of a folder or zip (several there: an error)."""
    depth = min(n.replace("\\", "/").count("/") for n in names)
    top = sorted(n for n in names if n.replace("\\", "/").count("/") == depth)
    if len(top) > 1:
        raise ValueError(
            f"{container} holds several networks ({', '.join(top)}); pass the one to import."
        )
    return top[0]


def _read_t7_vector(path, label=None):
    torchfile = require("torchfile", "Reading the Torch7 network")

    label = label or str(path)
    try:
        tensor = torchfile.load(str(path))
    except Exception as error:  # torchfile raises whatever struct/numpy raise on bad bytes
        raise ValueError(f"{label} is not a readable Torch7 file ({error}).") from None
    if not isinstance(tensor, np.ndarray) or tensor.dtype.kind != "f":
        if isinstance(tensor, np.ndarray):
            kind = f"{tensor.dtype} tensor"
        else:
            kind = "Lua table" if isinstance(tensor, (dict, list)) else type(tensor).__name__
        raise ValueError(f"{label} holds a {kind}; expected a Torch7 FloatTensor of parameters.")
    if tensor.size == 0:
        raise ValueError(f"{label} holds an empty tensor; expected the flat parameter vector.")
    # torchfile does not notice a short file and would read past the storage it got.
    if not within_storage(tensor):
        raise ValueError(f"{label} is truncated: it cannot hold {tensor.size:,} parameters.")
    vector = np.array(tensor, dtype=np.float32).reshape(-1)
    if not np.isfinite(vector).all():
        raise ValueError(f"{label} holds NaN or infinite parameters.")
    return vector


def torch7_to_keras(vector, latents=REFERENCE_LATENTS, feature_maps=REFERENCE_FEATURE_MAPS):
    """Slices a flat Torch7 vector into Keras weights, layer by layer.

    Args:
        vector: the flat parameters in Torch7 module order.
        latents: size of the graphics code.
        feature_maps: maps of the first convolution.

    Returns:
        `{layer name: [kernel, bias]}` in Keras' shapes and channels-last order.
    """
    vector = np.asarray(vector, dtype=np.float32)
    expected = parameter_count(latents, feature_maps)
    if vector.shape != (expected,):
        raise ValueError(
            f"vector has shape {vector.shape}; expected ({expected},) for {latents} latents "
            f"and {feature_maps} feature maps."
        )
    maps = feature_maps // 4
    weights = {}
    offset = 0
    for name, shape in reference_layout(latents, feature_maps):
        size = int(np.prod(shape))
        weight = vector[offset : offset + size].reshape(shape)
        bias = vector[offset + size : offset + size + shape[0]]
        offset += size + shape[0]
        if len(shape) == 4:
            kernel = weight.transpose(2, 3, 1, 0)
        elif name == "decoder_dense":
            # Output unit c*225 + h*15 + w in Torch is unit h*360 + w*24 + c in Keras.
            kernel = weight.reshape(maps, GRID, GRID, latents).transpose(3, 1, 2, 0)
            kernel = kernel.reshape(latents, -1)
            bias = bias.reshape(maps, GRID, GRID).transpose(1, 2, 0).reshape(-1)
        else:
            # The heads read the flatten: the same permutation on their input side.
            kernel = weight.reshape(latents, maps, GRID, GRID).transpose(2, 3, 1, 0)
            kernel = kernel.reshape(-1, latents)
        weights[name] = [np.ascontiguousarray(kernel), np.ascontiguousarray(bias)]
    return weights


def import_torch7(path, out=None, latents=None, feature_maps=None, overwrite=False):
    """Converts the authors' Torch7 DC-IGN network into a keras_dcign preset.

    Args:
        path: the release zip (`dcign_sample_trained.zip`), its unzipped
            folder, or its `parameters.t7`.
        out: the preset folder to write: new, empty, or a preset this package
            imported from the same `path` with nothing else in it (replaced);
            any other folder is refused before reading. Default
            `$KERAS_HOME/keras_dcign/presets/torch7-<sha256 prefix>`.
        latents: the code size, only needed when the vector's length fits
            several layouts (the release: 200).
        feature_maps: the first convolution's maps, likewise (the release: 96).
        overwrite: replace an `out` this package wrote even when it holds other
            files or another preset (`keras_dcign.files.check_output_folder`).

    Returns:
        The preset folder's `Path`, ready for `keras_dcign.from_preset`.

    Example:

    The release (an unzipped `dcign_sample_trained.zip`) is a download, so
    this example is not run:

    >>> preset = keras_dcign.import_torch7("dcign_sample_trained/")  # doctest: +SKIP
    >>> model = keras_dcign.from_preset(preset)  # doctest: +SKIP
    >>> tuple(model.decode(np.zeros((1, 200), "float32")).shape)  # doctest: +SKIP
    (1, 150, 150, 1)
    """
    path = Path(path)
    rule = dict(overwrite=overwrite, origin=f"import-torch7 {path.resolve()}")
    if out is not None:
        # Checked before the (slow) read, and again when the preset is written.
        check_out(path, out, overwrite)
    vector, info = read_parameters(path)
    layout = infer_layout(len(vector), latents, feature_maps, source=info["file"])
    provenance = {
        "source": str(path.resolve()),
        "source_sha256": sha256_of(path) if path.is_file() else info["sha256"],
        "parameters_file": info["file"],
        "parameters_sha256": info["sha256"],
    }
    if out is None:
        out = cache_dir("presets", f"torch7-{info['sha256'][:16]}")
        rule["overwrite"] = True  # the package's own cache
    return _write_preset(vector, layout, Path(out), provenance, **rule)


def check_out(path, out, overwrite=False):
    """Refuses an `out` folder that `import_torch7(path, out)` may not write.

    Raises:
        ValueError: `out` holds `path`, or the write rule
            (`keras_dcign.files.check_output_folder`) refuses it.
    """
    check_distinct([out], [path], replaced=True)
    origin = f"import-torch7 {Path(path).resolve()}"
    check_output_folder(out, "preset", overwrite, legacy=is_preset_folder, origin=origin)


def _dcign_class():
    """The `DCIGN` class, by the name it registers with Keras when `keras_dcign` is imported."""
    import keras

    model_class = keras.saving.get_registered_object("keras_dcign>DCIGN")
    if model_class is None:
        raise RuntimeError(
            "keras_dcign>DCIGN is not registered with Keras; expected `import keras_dcign` "
            "to have registered it."
        )
    return model_class


def _write_preset(vector, layout, out, provenance, name=None, overwrite=False, origin=None):
    latents, feature_maps = layout
    model = _dcign_class()(
        image_size=IMAGE_SIZE,
        feature_maps=feature_maps,
        code=GraphicsCode.paper(intrinsic=latents - 3),
    )
    for layer_name, values in torch7_to_keras(vector, latents, feature_maps).items():
        model.get_layer(layer_name).set_weights(values)
    provenance = dict(
        provenance,
        parameter_count=len(vector),
        latents=latents,
        feature_maps=feature_maps,
        converted_with="keras_dcign.import_torch7",
    )
    card = _model_card(name, provenance)
    return model.save_to_preset(
        out, metadata={"torch7": provenance}, card=card, overwrite=overwrite, origin=origin
    )


def _model_card(name, info):
    latents = info["latents"]
    paper = "The Deep Convolutional Inverse Graphics Network (Kulkarni et al., NIPS 2015)"
    if name is None:
        title = "DC-IGN network imported from Torch7"
        origin = (
            f"{paper}, with weights trained by the authors' Torch7 code and saved as its flat "
            "parameter vector (`parameters.t7`), the format of the authors' released network."
        )
    else:
        title = name
        origin = (
            f"{paper}, with the weights the authors trained on faces rendered from the Basel "
            "Face Model and released in Torch7 format (`parameters.t7`)."
        )
    return f"""# {title}

{origin} Nothing was retrained: the flat parameter vector was converted as it is.

- Source: {info["source"]}
- sha256 of the source: `{info["source_sha256"]}`
- Parameter file: {info["parameters_file"]} (sha256 `{info["parameters_sha256"]}`)
- {info["parameter_count"]:,} parameters: {latents} latents, {info["feature_maps"]} feature maps,
  150x150 grayscale input in [0, 1].
- Graphics code: z1 azimuth, z2 elevation, z3 light azimuth, z4-z{latents} intrinsic.

## Conversion

Convolution kernels go from Torch's (out, in, kh, kw) to Keras' (kh, kw, in, out),
linear weights from (out, in) to (in, out), and the linear layers next to the
flatten and the reshape are permuted from Torch's channels-first (maps, 15, 15)
order to channels-last. The conversion is tested against an independent numpy
forward pass in Torch's conventions (largest difference allowed: 1e-4).
The reference code used `nn.Threshold(0, 1e-6)` where this model uses ReLU:
inactive units give 0 instead of 1e-6, a change far below that tolerance.

## Limits

- No calibration: `rerender` takes latent values, not degrees or direction names.
- Faces rendered from the Basel Face Model, which is licence-restricted, trained
  the released network; check the authors' terms before redistributing its weights.
"""


def convert_release(archive, url, out, name, parameters):
    """Converts a downloaded Torch7 release into the preset folder `out`, once.

    `fetch_release` downloads the file; this reads its
    `parameters.t7`, writes the preset (its metadata records `url` and the
    file's sha256) and deletes the download, which the preset replaces.

    Args:
        archive: the downloaded release (zip, folder or `parameters.t7`).
        url: the URL that served it, for the preset's provenance.
        out: the preset folder to write.
        name: the zoo name, the model card's title.
        parameters: how many parameters the release holds (its registry entry's).

    Returns:
        `out` as a `Path`.

    Raises:
        ValueError: the file is not the release it names; it is deleted, and the
            message says how to convert a copy instead.
    """
    archive = Path(archive)
    try:
        vector, info = read_parameters(archive)
        if len(vector) != parameters:
            raise ValueError(
                f"its {PARAMETERS_FILE} holds {len(vector):,} parameters, expected {parameters:,}"
            )
        layout = infer_layout(len(vector), source=info["file"])
    except ValueError as error:
        archive.unlink(missing_ok=True)
        raise ValueError(
            f"{url} no longer serves the DC-IGN release ({str(error).rstrip('.')}); " + NETWORK_HINT
        ) from None
    provenance = {
        "source": url,
        "source_sha256": sha256_of(archive),
        "parameters_file": info["file"],
        "parameters_sha256": info["sha256"],
    }
    # `out` is in the package's cache.
    out = _write_preset(vector, layout, Path(out), provenance, name=name, overwrite=True)
    archive.unlink()  # the preset is what is kept; the zip's sha256 is in its metadata
    return out


def fetch_release(name, entry, progress=True):
    """Downloads the authors' Torch7 network a registry entry names, into the cache.

    Args:
        name: the zoo name (e.g. `"faces_basel_original"`).
        entry: its registry entry: `urls` (mirrors, tried in order), and optional
            `sha256` and `size` of the download.
        progress: show a progress bar while downloading.

    Returns:
        `(path, url)`: the downloaded file, in `$KERAS_HOME/keras_dcign/presets/<name>`,
        and the URL that served it.

    Raises:
        DownloadError: no mirror delivered the file; the message says how to use a copy.
    """
    folder = cache_dir("presets", name)
    with dropped_if_empty(folder):
        return download_release(entry, folder, f"the {name} network", NETWORK_HINT, progress)


def fetch_dataset(name, entry, holding, dest=None, progress=True, overwrite=False):
    """Downloads a registry dataset zip and unpacks it in the original layout.

    The archive is extracted safely (no member may land outside the target)
    and the folder holding its set folders (`holding`, the `th_*_VARIED`
    folders) becomes `dest`, which `faces.load_reference_layout` reads. A
    `source.json` records the URL and the zip's sha256; the zip itself is
    deleted once unpacked. `dest` appears whole or not at all.

    Args:
        name: the dataset's registry name (e.g. `"faces-original"`).
        entry: its registry entry: `urls` (mirrors, tried in order) and
            optional `sha256` and `size`.
        holding: names of the folders the dataset's top folder holds.
        dest: the folder to create (absent, empty, or this dataset as this
            package wrote it); default `$KERAS_HOME/keras_dcign/datasets/<name>`.
        progress: show a progress bar while downloading.
        overwrite: replace a folder this package wrote even when it holds
            other files (`keras_dcign.files.check_output_folder`).

    Returns:
        The dataset folder's `Path`.

    Example:

    The registry's dataset is what `dcign download faces-original` fetches
    (a download, not run here); a local zip of the same layout shows the rest:

    >>> from keras_dcign.presets import fetch
    >>> root = fetch("faces-original")  # doctest: +SKIP
    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> from keras_dcign.datasets import faces
    >>> from keras_dcign.torch7 import fetch_dataset
    >>> work = Path(tempfile.mkdtemp())
    >>> _ = faces.export_reference_layout(work / "zip" / "faces", n_batches=1, batch_size=2,
    ...                                   image_size=32, progress=False)
    >>> archive = Path(shutil.make_archive(str(work / "faces"), "zip", work / "zip"))
    >>> root = fetch_dataset("my-faces", {"urls": [archive.as_uri()]}, holding={"th_AZ_VARIED"},
    ...                      dest=work / "my-faces", progress=False)
    >>> sorted(p.name for p in root.iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['.dcign', 'factors.csv', 'source.json', 'th_AZ_VARIED', 'th_EL_VARIED',
     'th_LIGHT_AZ_VARIED', 'th_SHAPE_VARIED']
    >>> batches = faces.load_reference_layout(root, image_size=32, split="test")
    >>> len(batches)  # one batch of each kind
    4
    """
    target = Path(dest) if dest is not None else cache_dir("datasets", name)
    if (target / SOURCE_FILE).is_file():
        return target  # already downloaded: nothing to write
    rule = dict(kind="dataset", overwrite=overwrite, legacy=_is_dataset_folder, origin=name)
    check_output_folder(target, **rule)
    downloads = cache_dir("downloads")
    archive, url = download_release(entry, downloads, f"the {name} dataset", DATASET_HINT, progress)
    digest = sha256_of(archive)
    shutil.rmtree(downloads / f"{name}.unpacked", ignore_errors=True)  # a killed run's, ours
    unpacked = extract_archive(archive, downloads / f"{name}.unpacked")
    try:
        root = find_folder_holding(unpacked, holding)
        if root is None:
            raise ValueError(
                f"{url} no longer serves the DC-IGN dataset (its zip holds no th_*_VARIED "
                f"folders); {DATASET_HINT}"
            )
        # An empty `dest` (perhaps the current folder) is filled, never removed.
        with atomic_folder(target, **rule) as staging:
            for child in root.iterdir():
                shutil.move(str(child), str(staging / child.name))
            record = {
                "name": name,
                "source": url,
                "sha256": digest,
                "date_downloaded": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            }
            atomic_write(staging / SOURCE_FILE, json.dumps(record, indent=2))
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
        archive.unlink(missing_ok=True)
    return target


def _is_dataset_folder(folder):
    """Whether `folder` is a dataset `fetch_dataset` wrote before it marked its folders: it
    has the `source.json` it writes."""
    return (Path(folder) / SOURCE_FILE).is_file()


def find_folder_holding(folder, names, depth=3):
    """The shallowest folder under `folder` with a child named in `names`, or None."""
    level = [Path(folder)]
    for _ in range(depth + 1):
        for candidate in level:
            if any((candidate / n).is_dir() for n in names):
                return candidate
        level = [p for f in level for p in sorted(f.iterdir()) if p.is_dir()]
    return None


def download_release(entry, folder, what, hint, progress):
    """Fetches `entry["urls"]` (mirrors in order) into `folder`: `(path, url that served it)`.

    Raises:
        DownloadError: every mirror failed; the message names each, says when the
            release links last worked, and ends with `hint`.
    """
    urls = entry["urls"]
    dest = Path(folder) / urls[0].rsplit("/", 1)[-1].split("?")[0]
    failures = []
    for url in urls:
        try:
            path = download(
                [url], dest, sha256=entry.get("sha256"), size=entry.get("size"), progress=progress
            )
        except DownloadError as error:
            failures.extend(error.failures)
            continue
        return path, url
    tried = "; ".join(f"{url}: {reason}" for url, reason in failures)
    raise DownloadError(
        f"Could not download {what} ({tried}); the release links were last known to work in "
        f"{LAST_WORKING}; {hint}",
        failures,
    )
