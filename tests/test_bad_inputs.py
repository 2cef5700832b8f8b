"""A catalogue of bad and awkward inputs: one line, the right exit status, nothing lost.

Each command-line case runs the installed `dcign` in a fresh process inside its own folder,
and checks the exit status, that stderr is exactly one line without a traceback, and that
every file in the folder is byte-identical afterwards (nothing added, nothing removed).
The API cases check the same through the library's exceptions.
"""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import blob_images, tiny_calibrated_model, tiny_model
from keras_dcign.zoo import ZOO_DIR
from PIL import Image

DCIGN = shutil.which("dcign") or os.path.join(os.path.dirname(sys.executable), "dcign")
# Command-line cases do not depend on the backend: nox runs them with one backend only.
cli_only_once = pytest.mark.backend_independent


def snapshot(folder):
    """`{relative path: sha256 or 'folder'}` of everything under `folder`."""
    folder = Path(folder)
    state = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        state[key] = "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def png(path, size=(40, 40), mode="L", value=None):
    rng = np.random.default_rng(0)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8) if value is None else value
    Image.fromarray(pixels).save(path)
    return path


def bomb_png(path, side=20000):
    """A PNG whose header claims side × side pixels: over Pillow's decompression-bomb limit."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))
    Path(path).write_bytes(data + chunk(b"IEND", b""))
    return path


def preset(folder, calibrated=True, **changes):
    """A tiny preset; `changes` rewrite its files (name -> text, or None to delete)."""
    model = tiny_calibrated_model() if calibrated else tiny_model()
    path = model.save_to_preset(folder)
    for name, text in changes.items():
        target = path / name
        if text is None:
            target.unlink()
        else:
            target.write_text(text)
    return path


def low_r2_calibration(factor):
    return changed_calibration(factor, r2=0.05)


def changed_calibration(factor, **entry):
    model = tiny_calibrated_model()
    config = model.calibration.get_config()
    config["factors"][factor].update(entry)
    return json.dumps(config)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    """Presets shared by the command-line cases (outside each case's hashed folder)."""
    root = tmp_path_factory.mktemp("presets")
    calibration = json.loads((preset(root / "good") / "calibration.json").read_text())
    del calibration["factors"]["light"]["slope"]
    return {
        "good": root / "good",
        "uncalibrated": preset(root / "uncalibrated", calibrated=False),
        "config_list": preset(root / "config_list", **{"config.json": "[1, 2]"}),
        "config_bad_json": preset(root / "config_bad_json", **{"config.json": '{"image_size":\n'}),
        "config_no_size": preset(root / "config_no_size", **{"config.json": "{}"}),
        "calibration_empty": preset(root / "calibration_empty", **{"calibration.json": "{}"}),
        "calibration_no_slope": preset(
            root / "calibration_no_slope", **{"calibration.json": json.dumps(calibration)}
        ),
        "calibration_bad_json": preset(root / "calibration_bad", **{"calibration.json": "{,"}),
        "low_r2": preset(root / "low_r2", **{"calibration.json": low_r2_calibration("azimuth")}),
        "calibration_unit_outside": preset(
            root / "calibration_unit_outside",
            **{"calibration.json": changed_calibration("light", unit=3)},
        ),
        "no_weights": preset(root / "no_weights", **{"model.weights.h5": None}),
        "broken_weights": preset(
            root / "broken_weights", **{"model.weights.h5": "not an HDF5 file"}
        ),
    }


def _float_tiff(path, values):
    Image.fromarray(np.asarray(values, dtype="float32")).save(path, format="TIFF")


def _user_folder(path, **files):
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def _copy(preset_folder, path, **files):
    """A copy of a preset; `files` add or rewrite files in it (name -> text, None deletes)."""
    shutil.copytree(preset_folder, path)
    for name, text in files.items():
        if text is None:
            (path / name).unlink()
        else:
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_text(text)
    return path


# A metrics.json as a full (not --quick) evaluation writes it.
FULL_METRICS = json.dumps({"settings": {"score_samples": 1500}})


# Each case: (id, setup(work, presets) -> argv, exit status, words the one line must hold).
CLI_CASES = [
    # Data loss: a folder of the user's is never emptied or replaced.
    (
        "download-dest-foreign",
        lambda w, p: (
            _user_folder(w / "mine", **{"notes.txt": "keep"}),
            ["download", "faces_64", "--dest", "mine"],
        )[1],
        1,
        "mine is not empty and is not a preset folder",
    ),
    (
        "download-dest-dot",
        lambda w, p: (
            _user_folder(w, **{"notes.txt": "keep"}),
            ["download", "faces_64", "--dest", "."],
        )[1],
        1,
        "is not empty and is not a preset folder",
    ),
    (
        "data-generate-out-foreign",
        lambda w, p: (
            _user_folder(w / "mine", **{"notes.txt": "keep"}),
            ["data", "generate", "faces", "--size", "32", "--batches", "1", "--out", "mine"],
        )[1],
        1,
        "mine is not empty and is not a faces cache",
    ),
    (
        "download-dest-is-its-source",
        lambda w, p: (
            shutil.copytree(p["good"], w / "p"),
            ["download", "p", "--dest", "p"],
        )[1],
        1,
        "would overwrite the input p",
    ),
    (
        "import-torch7-out-with-config-json",
        lambda w, p: (
            _user_folder(w / "project", **{"config.json": "{}", "main.py": "print(1)"}),
            _user_folder(w, **{"parameters.t7": "x"}),
            ["import-torch7", "parameters.t7", "--out", "project"],
        )[2],
        1,
        "project is not empty and is not a preset folder",
    ),
    (
        "import-torch7-out-dot",
        lambda w, p: (
            _user_folder(w, **{"notes.txt": "keep"}),
            (w.parent / "parameters.t7").write_text("x"),
            ["import-torch7", "../parameters.t7", "--out", "."],
        )[2],
        1,
        "is not empty and is not a preset folder",
    ),
    (
        "import-torch7-damaged-zip",
        lambda w, p: (
            (w / "release.zip").write_bytes(b"PK\x03\x04" + b"\0" * 100),
            ["import-torch7", "release.zip", "--out", "new"],
        )[1],
        1,
        "release.zip is a damaged zip archive",
    ),
    (
        "traverse-grid-over-input-png",
        lambda w, p: (
            png(w / "x.png"),
            ["traverse", "x.png", "--factor", "light", "--out", "x.gif", "--preset", p["good"]],
        )[1],
        1,
        "would overwrite the input x.png",
    ),
    (
        "traverse-out-is-input-gif",
        lambda w, p: (
            png(w / "x.gif"),
            ["traverse", "x.gif", "--factor", "light", "--out", "x.gif", "--preset", p["good"]],
        )[1],
        1,
        "would overwrite the input x.gif",
    ),
    (
        "render-compare-over-input",
        lambda w, p: (
            png(w / "y_compare.png"),
            [
                "render",
                "y_compare.png",
                "--light",
                "left",
                "--out",
                "y.png",
                "--compare",
                "--preset",
                p["good"],
            ],
        )[1],
        1,
        "would overwrite the input y_compare.png",
    ),
    (
        "render-out-is-input",
        lambda w, p: (
            png(w / "x.png"),
            ["render", "x.png", "--light", "left", "--out", "x.png", "--preset", p["good"]],
        )[1],
        1,
        "would overwrite the input x.png",
    ),
    (
        "download-file-over-foreign-file",
        lambda w, p: (
            _user_folder(w / "got", **{"blob.bin": "mine"}),
            ["download", "https://127.0.0.1:9/blob.bin", "--sha256", "0" * 64, "--dest", "got"],
        )[1],
        1,
        "blob.bin already exists and is not the file being downloaded",
    ),
    # Silent wrong results: images that cannot be mapped to [0, 1] are refused.
    (
        "float-image-0-255",
        lambda w, p: (
            _float_tiff(w / "f.tif", np.full((32, 32), 200.0)),
            ["render", "f.tif", "--light", "left", "--out", "o.png", "--preset", p["good"]],
        )[1],
        1,
        "holds values from 200 to 200; expected 0 to 1",
    ),
    (
        "nan-image",
        lambda w, p: (
            _float_tiff(w / "n.tif", np.full((32, 32), np.nan)),
            ["render", "n.tif", "--light", "left", "--out", "o.png", "--preset", p["good"]],
        )[1],
        1,
        "NaN",
    ),
    (
        "one-pixel-image",
        lambda w, p: (
            png(w / "dot.png", size=(1, 1)),
            ["render", "dot.png", "--light", "left", "--out", "o.png", "--preset", p["good"]],
        )[1],
        1,
        "is 1×1 pixels; expected at least 16×16",
    ),
    (
        "factor-with-low-r2",
        lambda w, p: (
            png(w / "x.png"),
            ["render", "x.png", "--azimuth", "60", "--out", "o.png", "--preset", p["low_r2"]],
        )[1],
        1,
        "cannot set azimuth",
    ),
    (
        "traverse-factor-with-low-r2",
        lambda w, p: (
            png(w / "x.png"),
            ["traverse", "x.png", "--factor", "azimuth", "--out", "o.gif", "--preset", p["low_r2"]],
        )[1],
        1,
        "cannot set azimuth",
    ),
    # Tracebacks before: now one line each.
    (
        "decompression-bomb",
        lambda w, p: (
            bomb_png(w / "bomb.png"),
            ["render", "bomb.png", "--light", "left", "--out", "o.png", "--preset", p["good"]],
        )[1],
        1,
        "decompression-bomb limit",
    ),
    (
        "config-json-not-an-object",
        lambda w, p: (
            png(w / "x.png"),
            ["render", "x.png", "--light", "left", "--out", "o.png", "--preset", p["config_list"]],
        )[1],
        1,
        "config.json holds a JSON list; expected a JSON object",
    ),
    (
        "calibration-json-empty-object",
        lambda w, p: (
            png(w / "x.png"),
            [
                "render",
                "x.png",
                "--light",
                "left",
                "--out",
                "o.png",
                "--preset",
                p["calibration_empty"],
            ],
        )[1],
        1,
        "calibration.json has no 'factors' entry",
    ),
    (
        "calibration-json-missing-slope",
        lambda w, p: (
            png(w / "x.png"),
            [
                "render",
                "x.png",
                "--light",
                "left",
                "--out",
                "o.png",
                "--preset",
                p["calibration_no_slope"],
            ],
        )[1],
        1,
        "'light' has no 'slope' entry",
    ),
    # Messages that name the file and the bad value.
    (
        "config-json-invalid",
        lambda w, p: (
            png(w / "x.png"),
            [
                "render",
                "x.png",
                "--light",
                "left",
                "--out",
                "o.png",
                "--preset",
                p["config_bad_json"],
            ],
        )[1],
        1,
        "config.json is not valid JSON",
    ),
    (
        "config-json-without-image-size",
        lambda w, p: (
            png(w / "x.png"),
            [
                "render",
                "x.png",
                "--light",
                "left",
                "--out",
                "o.png",
                "--preset",
                p["config_no_size"],
            ],
        )[1],
        1,
        "has no 'image_size' entry",
    ),
    (
        "calibration-json-invalid",
        lambda w, p: (
            png(w / "x.png"),
            [
                "render",
                "x.png",
                "--light",
                "left",
                "--out",
                "o.png",
                "--preset",
                p["calibration_bad_json"],
            ],
        )[1],
        1,
        "calibration.json is not valid JSON",
    ),
    (
        "direction-name-on-uncalibrated-preset",
        lambda w, p: (
            png(w / "x.png"),
            ["render", "x.png", "--light", "left", "--out", "o.png", "--preset", p["uncalibrated"]],
        )[1],
        1,
        "has no calibration for light, so it takes a latent value",
    ),
    (
        "traverse-uncalibrated-preset",
        lambda w, p: (
            png(w / "x.png"),
            [
                "traverse",
                "x.png",
                "--factor",
                "light",
                "--out",
                "o.gif",
                "--preset",
                p["uncalibrated"],
            ],
        )[1],
        1,
        "no calibration for 'light'",
    ),
    # Arguments are checked before the model loads: these presets have broken weights.
    (
        "bad-suffix-before-loading",
        lambda w, p: (
            png(w / "x.png"),
            [
                "render",
                "x.png",
                "--light",
                "left",
                "--out",
                "o.bmp",
                "--preset",
                p["broken_weights"],
            ],
        )[1],
        1,
        "suffix '.bmp'",
    ),
    (
        "angle-out-of-range-before-loading",
        lambda w, p: (
            png(w / "x.png"),
            [
                "render",
                "x.png",
                "--light",
                "200",
                "--out",
                "o.png",
                "--preset",
                p["broken_weights"],
            ],
        )[1],
        1,
        "outside the calibrated range",
    ),
    (
        "unknown-direction-before-loading",
        lambda w, p: (
            png(w / "x.png"),
            [
                "render",
                "x.png",
                "--light",
                "sideways",
                "--out",
                "o.png",
                "--preset",
                p["broken_weights"],
            ],
        )[1],
        1,
        "not a known direction",
    ),
    (
        "nothing-to-change-before-loading",
        lambda w, p: (
            png(w / "x.png"),
            ["render", "x.png", "--out", "o.png", "--preset", p["broken_weights"]],
        )[1],
        1,
        "Nothing to change",
    ),
    (
        "traverse-suffix-before-loading",
        lambda w, p: (
            png(w / "x.png"),
            [
                "traverse",
                "x.png",
                "--factor",
                "light",
                "--out",
                "o.png",
                "--preset",
                p["broken_weights"],
            ],
        )[1],
        1,
        "expected .gif",
    ),
    # Inputs that were already handled, kept in the catalogue.
    (
        "missing-image",
        lambda w, p: ["render", "gone.png", "--light", "left", "--out", "o.png"],
        1,
        "does not exist",
    ),
    (
        "text-file-as-image",
        lambda w, p: (
            _user_folder(w, **{"t.png": "hello"}),
            ["render", "t.png", "--light", "left", "--out", "o.png"],
        )[1],
        1,
        "Cannot read image t.png",
    ),
    (
        "unknown-preset",
        lambda w, p: (png(w / "x.png"), ["render", "x.png", "--light", "left", "--preset", "nope"])[
            1
        ],
        1,
        "Unknown preset 'nope'",
    ),
    (
        "preset-without-weights",
        lambda w, p: (
            png(w / "x.png"),
            ["render", "x.png", "--light", "left", "--out", "o.png", "--preset", p["no_weights"]],
        )[1],
        1,
        "it has no model.weights.h5",
    ),
    (
        "url-without-checksum",
        lambda w, p: ["download", "https://127.0.0.1:9/p.zip"],
        1,
        "has no checksum",
    ),
    (
        "bad-sha256",
        lambda w, p: ["download", "https://127.0.0.1:9/f.bin", "--sha256", "xyz"],
        1,
        "must be 64 hexadecimal digits",
    ),
    (
        "insecure-url",
        lambda w, p: ["download", "http://example.org/f.bin", "--sha256", "0" * 64],
        1,
        "plain http:// is insecure",
    ),
    ("zoo-info-unknown", lambda w, p: ["zoo", "info", "nope"], 1, "Unknown preset 'nope'"),
    # A preset's files that disagree with each other.
    (
        "calibration-unit-outside-its-group",
        lambda w, p: (
            png(w / "x.png"),
            [
                "render",
                "x.png",
                "--light",
                "left",
                "--out",
                "o.png",
                "--preset",
                p["calibration_unit_outside"],
            ],
        )[1],
        1,
        "'light' has unit 3, but group 'light' of",
    ),
    # The write rule: a folder of the user's own files that shares the names a command would
    # write is refused before anything is written, and so is the installed package.
    (
        "train-out-folder-with-recipe-json",
        lambda w, p: (
            _user_folder(w / "mine", **{"recipe.json": "{}", "notes.txt": "keep"}),
            ["train", "--out", "mine"],
        )[1],
        1,
        "mine is not empty and is not a training run dcign wrote",
    ),
    (
        "train-out-folder-with-checkpoints-subfolder",
        lambda w, p: (
            _user_folder(w / "mine" / "checkpoints", **{"notes.txt": "keep"}),
            _user_folder(w / "mine", **{"recipe.json": "{}"}),
            ["train", "--out", "mine", "--resume"],
        )[2],
        1,
        "mine is not empty and is not a training run dcign wrote",
    ),
    (
        "evaluate-out-with-metrics-and-scatter",
        lambda w, p: (
            _user_folder(w / "ev", **{"metrics.json": "{}", "scatter.png": "mine"}),
            ["evaluate", p["good"], "--quick", "--out", "ev"],
        )[1],
        1,
        "ev is not empty and is not an evaluation folder dcign wrote",
    ),
    (
        "evaluate-update-card-on-a-bundled-preset",
        lambda w, p: ["evaluate", "faces_64", "--update-card"],
        1,
        "faces_64 is part of the installed keras-dcign package",
    ),
    (
        "evaluate-quick-update-card-on-a-bundled-preset",
        lambda w, p: ["evaluate", "faces_64", "--quick", "--update-card", "--out", "ev"],
        1,
        "copy it with `dcign download faces_64 --dest DIR`",
    ),
    (
        "evaluate-quick-update-card-over-a-full-evaluation",
        lambda w, p: (
            _copy(p["good"], w / "p", **{"metrics.json": FULL_METRICS}),
            ["evaluate", "p", "--quick", "--update-card", "--out", "ev"],
        )[1],
        1,
        "holds a full evaluation in metrics.json, which a --quick one would replace",
    ),
    (
        "evaluate-update-card-on-an-unmarked-folder",
        lambda w, p: (
            _copy(p["good"], w / "p", **{".dcign": None, "metadata.json": None}),
            ["evaluate", "p", "--quick", "--update-card", "--out", "ev"],
        )[1],
        1,
        "--update-card writes into p, which is not a preset folder dcign wrote",
    ),
    (
        "data-export-out-with-factors-csv",
        lambda w, p: (
            _user_folder(w / "mine", **{"factors.csv": "set,split\n"}),
            ["data", "export", "--out", "mine", "--size", "16", "--batches", "1"],
        )[1],
        1,
        "mine is not empty and is not a dataset export dcign wrote",
    ),
    (
        "data-export-out-cannot-be-made",
        lambda w, p: ["data", "export", "--out", "/proc/dcign-export", "--size", "16"],
        1,
        "Output folder /proc/dcign-export cannot be written",
    ),
    (
        "data-generate-out-is-a-preset",
        lambda w, p: (
            _copy(p["good"], w / "p"),
            ["data", "generate", "faces", "--size", "32", "--batches", "1", "--out", "p"],
        )[1],
        1,
        "p is a preset folder dcign wrote, not a faces cache",
    ),
    (
        "download-dest-preset-with-notes-and-eval",
        lambda w, p: (
            _copy(p["good"], w / "p", **{"notes.txt": "keep", "eval/metrics.json": "{}"}),
            ["download", "faces_64", "--dest", "p"],
        )[1],
        1,
        "p holds eval and 1 more, which dcign did not write there",
    ),
    (
        "download-dest-another-preset",
        lambda w, p: (_copy(p["good"], w / "p"), ["download", "faces_64", "--dest", "p"])[1],
        1,
        "p is a preset folder dcign made from another source",
    ),
    (
        "download-dest-in-the-installed-package",
        lambda w, p: ["download", "faces_64", "--dest", ZOO_DIR / "faces_64"],
        1,
        "is inside the installed keras-dcign package",
    ),
    (
        "download-failure-leaves-no-folder",
        lambda w, p: (
            ["download", "https://127.0.0.1:9/b.bin", "--sha256", "0" * 64] + ["--dest", "a/b"]
        ),
        1,
        "Could not download https://127.0.0.1:9/b.bin",
    ),
    (
        "import-torch7-out-preset-with-notes",
        lambda w, p: (
            _copy(p["good"], w / "p", **{"notes.txt": "keep"}),
            _user_folder(w, **{"parameters.t7": "x"}),
            ["import-torch7", "parameters.t7", "--out", "p"],
        )[2],
        1,
        "p holds notes.txt, which dcign did not write there",
    ),
    (
        "import-torch7-out-in-the-installed-package",
        lambda w, p: (
            _user_folder(w, **{"parameters.t7": "x"}),
            ["import-torch7", "parameters.t7", "--out", ZOO_DIR / "faces_64"],
        )[1],
        1,
        "is inside the installed keras-dcign package",
    ),
    (
        "render-out-over-a-user-file",
        lambda w, p: (
            png(w / "x.png"),
            png(w / "o.png", value=np.zeros((40, 40), np.uint8)),
            ["render", "x.png", "--light", "left", "--out", "o.png", "--preset", p["good"]],
        )[2],
        1,
        "Output o.png already exists and was not written by dcign",
    ),
    (
        "render-compare-over-a-user-file",
        lambda w, p: (
            png(w / "x.png"),
            png(w / "r_compare.png"),
            ["render", "x.png", "--light", "left", "--out", "r.png", "--compare"]
            + ["--preset", p["good"]],
        )[2],
        1,
        "Output r_compare.png (a name dcign chose) already exists",
    ),
    (
        "render-default-name-over-a-user-file",
        lambda w, p: (
            png(w / "x.png"),
            png(w / "x_light-left.png"),
            ["render", "x.png", "--light", "left", "--preset", p["good"]],
        )[2],
        1,
        "Output x_light-left.png (a name dcign chose) already exists",
    ),
    (
        "traverse-grid-over-a-user-png",
        lambda w, p: (
            png(w / "x.png"),
            png(w / "anim.png"),
            ["traverse", "x.png", "--factor", "light", "--out", "anim.gif", "--preset", p["good"]],
        )[2],
        1,
        "Output anim.png (a name dcign chose) already exists",
    ),
    (
        "traverse-gif-over-a-user-gif",
        lambda w, p: (
            png(w / "x.png"),
            _user_folder(w, **{"anim.gif": "mine"}),
            ["traverse", "x.png", "--factor", "light", "--out", "anim.gif", "--preset", p["good"]],
        )[2],
        1,
        "Output anim.gif already exists and was not written by dcign",
    ),
    (
        "fit-scene-out-over-a-user-file",
        lambda w, p: (
            png(w / "x.png"),
            png(w / "s.png"),
            ["fit-scene", "x.png", "--out", "s.png", "--preset", p["good"]],
        )[2],
        1,
        "Output s.png already exists and was not written by dcign",
    ),
    (
        "fit-scene-default-name-over-a-user-file",
        lambda w, p: (
            png(w / "x.png"),
            png(w / "x_scene.png"),
            ["fit-scene", "x.png", "--preset", p["good"]],
        )[2],
        1,
        "Output x_scene.png (a name dcign chose) already exists",
    ),
]


def run_dcign(args, cwd, stdin=None, **environ):
    env = dict(os.environ, KERAS_HOME=str(cwd.parent / "home"), TF_CPP_MIN_LOG_LEVEL="3")
    env.update(environ)
    env = {name: value for name, value in env.items() if value is not None}
    return subprocess.run(
        [DCIGN, *map(str, args)], cwd=cwd, env=env, capture_output=True, timeout=300, stdin=stdin
    )


def assert_one_line(stderr, words):
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    assert words in lines[0], lines[0]


# Each case starts the installed `dcign`, which imports Keras and its backend: seconds a
# case. One case of each kind runs by default; all of them run with the slow tests.
QUICK_CLI_CASES = {
    "missing-image",
    "unknown-preset",
    "download-dest-foreign",
    "import-torch7-damaged-zip",
    "config-json-invalid",
    "angle-out-of-range-before-loading",
}
QUICK_CLI_CASES |= {
    "train-out-folder-with-recipe-json",
    "evaluate-update-card-on-a-bundled-preset",
    "data-export-out-with-factors-csv",
    "download-dest-preset-with-notes-and-eval",
    "traverse-grid-over-a-user-png",
}
assert QUICK_CLI_CASES <= {c[0] for c in CLI_CASES}
# Answered before Keras loads: these run with a Keras backend that does not exist, which
# fails any command that imports Keras.
BEFORE_KERAS = {
    "download-dest-foreign",
    "import-torch7-out-with-config-json",
    "traverse-grid-over-input-png",
    "render-out-is-input",
    "bad-suffix-before-loading",
    "angle-out-of-range-before-loading",
    "missing-image",
}
_IDS = [c[0] for c in CLI_CASES]
BEFORE_KERAS |= set(_IDS[_IDS.index("train-out-folder-with-recipe-json") :])  # the write rule
BEFORE_KERAS -= {"train-out-folder-with-checkpoints-subfolder"}  # could be a run: train() decides


@cli_only_once
@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=c[0], marks=() if c[0] in QUICK_CLI_CASES else pytest.mark.slow)
        for c in CLI_CASES
    ],
)
def test_command_line_case(case, fixtures, tmp_path):
    _, setup, status, words = case
    work = tmp_path / "work"
    work.mkdir()
    args = setup(work, fixtures)
    before = snapshot(work)
    no_keras = {"KERAS_BACKEND": "no-such-backend"} if case[0] in BEFORE_KERAS else {}
    result = run_dcign(args, work, **no_keras)
    assert result.returncode == status, result.stderr.decode()[-2000:]
    assert_one_line(result.stderr, words)
    assert snapshot(work) == before


@cli_only_once
def test_zoo_list_in_a_pipe_keeps_whole_names(tmp_path):
    from keras_dcign.zoo import registry

    result = run_dcign(["zoo", "list"], tmp_path)
    assert result.returncode == 0 and not result.stderr, result.stderr
    names = [line.split("\t")[0] for line in result.stdout.decode().splitlines()[1:]]
    assert names == list(registry()["presets"])


# TensorFlow's native log lines (absl and glog), as they start.
NATIVE_LOG = ("absl::InitializeLog", "I0000 ", "E0000 ", "W0000 ", "oneDNN", "cuInit")


@cli_only_once
def test_stdout_holds_only_results_and_stderr_no_native_logs(tmp_path):
    args = ["data", "export", "--out", "faces", "--size", "16", "--batches", "1"]
    result = run_dcign(args, tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == "faces\n"
    assert "Exporting faces" in result.stderr.decode()
    assert not [w for w in NATIVE_LOG if w in result.stderr.decode()], result.stderr.decode()
    assert json.loads((tmp_path / "faces" / ".dcign").read_text())["kind"] == "export"


@pytest.mark.backend_independent
def test_rendering_workers_write_no_native_logs(tmp_path):
    """The face-rendering processes start without Keras or TensorFlow: nothing of theirs on
    stderr, whatever the backend."""
    code = (
        "import sys; from keras_dcign.datasets import faces; "
        "faces.generate(sys.argv[1], n_batches=2, batch_size=2, image_size=16, workers=2, "
        "shard_size=1, progress=False)"
    )
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "cache")],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stderr.decode() == ""


@pytest.mark.slow
@cli_only_once
def test_train_prints_results_on_stdout_and_no_native_logs(tmp_path):
    """A tiny run on TensorFlow: progress on stderr, no TensorFlow log lines, two result lines."""
    args = ["train", "--out", "run", "--steps", "2", "--image-size", "32", "--feature-maps", "8"]
    args += ["--cache-batches", "2", "--batch-size", "4"]
    result = run_dcign(args, tmp_path, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL=None)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Trained 2 steps"), lines
    assert not [w for w in NATIVE_LOG if w in result.stderr.decode()], result.stderr.decode()
    marker = json.loads((tmp_path / "run" / ".dcign").read_text())
    assert marker["kind"] == "run" and "recipe.json" in marker["files"]


@cli_only_once
def test_failed_download_leaves_no_folder_in_the_cache(tmp_path):
    url = f"https://127.0.0.1:9/p.zip#sha256={'0' * 64}"
    result = run_dcign(["download", url], tmp_path, KERAS_HOME=str(tmp_path / "home"))
    assert result.returncode == 1
    assert_one_line(result.stderr, "Could not download https://127.0.0.1:9/p.zip")
    assert not list((tmp_path / "home" / "keras_dcign" / "presets").iterdir())


@pytest.mark.slow
@cli_only_once
def test_failed_train_leaves_no_folder(tmp_path):
    (tmp_path / "data").mkdir()
    args = ["train", "--out", "runs/new", "--data-dir", "data", "--steps", "1"]
    result = run_dcign(args, tmp_path)
    assert result.returncode == 1
    assert_one_line(result.stderr, "data has no batches")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


@pytest.mark.slow
@cli_only_once
def test_stdin_image_is_read_once_and_proc_output_is_named(fixtures, tmp_path):
    """Two cases that load the model: a PNG piped through /dev/stdin; --out under /proc."""
    face = png(tmp_path / "face.png", size=(48, 40), mode="RGB")
    with open(face, "rb") as stream:
        result = run_dcign(
            [
                "render",
                "/dev/stdin",
                "--light",
                "left",
                "--out",
                tmp_path / "relit.png",
                "--preset",
                fixtures["good"],
            ],
            tmp_path,
            stdin=stream,
        )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert Image.open(tmp_path / "relit.png").size == (32, 32)
    before = snapshot(tmp_path)
    result = run_dcign(
        ["render", face, "--light", "left", "--out", "/proc/x.png", "--preset", fixtures["good"]],
        tmp_path,
    )
    assert result.returncode == 1
    assert_one_line(result.stderr, "Output /proc/x.png is not writable")  # before Keras starts
    assert ".x.png." not in result.stderr.decode()
    assert snapshot(tmp_path) == before


# ---- API cases: every backend ------------------------------------------------------------


def _raises_one_line(call, words):
    with pytest.raises(ValueError) as caught:
        call()
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and words in message, message


@pytest.mark.backend_independent
def test_sixteen_bit_gray_is_read_by_its_range(tmp_path):
    from keras_dcign.image_files import read_image

    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    pixels = read_image(tmp_path / "deep.png")
    assert pixels.shape == (32, 32, 1)
    np.testing.assert_allclose(pixels[..., 0], ramp / 65535.0, atol=1e-6)
    gray = np.full((20, 20), 128, np.uint8)
    Image.fromarray(gray).convert("P").save(tmp_path / "palette.png")
    np.testing.assert_allclose(read_image(tmp_path / "palette.png"), 128 / 255, atol=1e-6)


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: _float_tiff(p, np.full((20, 20), 255.0)), "expected 0 to 1"),
        (lambda p: _float_tiff(p, np.full((20, 20), np.nan)), "NaN"),
        (lambda p: png(p, size=(1, 1)), "1×1 pixels"),
        (lambda p: png(p, size=(300, 8)), "300×8 pixels"),
        (bomb_png, "decompression-bomb limit"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n garbage"), "Cannot read image"),
    ],
    ids=["float-0-255", "nan", "1x1", "thin", "bomb", "truncated-png"],
)
def test_images_that_cannot_be_mapped_are_refused(tmp_path, make, words):
    from keras_dcign.image_files import load_image

    make(tmp_path / "bad.tif")
    before = snapshot(tmp_path)
    _raises_one_line(lambda: load_image(tmp_path / "bad.tif", 32), words)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "files, words",
    [
        ({"config.json": "[]"}, "holds a JSON list"),
        ({"config.json": "{"}, "config.json is not valid JSON"),
        ({"calibration.json": "{}"}, "has no 'factors' entry"),
        ({"calibration.json": '{"factors": {"light": {"unit": 0}}}'}, "'light' has no 'slope'"),
        ({"calibration.json": '{"factors": []}'}, "'factors' is not a JSON object"),
    ],
    ids=["config-list", "config-invalid", "calibration-empty", "calibration-key", "factors-list"],
)
def test_broken_preset_json_names_the_file(tmp_path, files, words):
    from keras_dcign import from_preset

    folder = preset(tmp_path / "p", **files)
    before = snapshot(tmp_path)
    _raises_one_line(lambda: from_preset(folder), words)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "files, words",
    [
        ({"calibration.json": changed_calibration("light", unit=1)}, "'light' has unit 1"),
        ({"calibration.json": changed_calibration("light", group="pose")}, "group 'pose'"),
        ({"metadata.json": json.dumps({"image_size": 64})}, "has image_size 64, but"),
    ],
    ids=["unit", "group", "image-size"],
)
def test_preset_files_that_disagree_are_named(tmp_path, files, words):
    from keras_dcign import from_preset

    folder = preset(tmp_path / "p", **files)
    before = snapshot(tmp_path)
    _raises_one_line(lambda: from_preset(folder), words)
    assert snapshot(tmp_path) == before


def test_incompatible_override_is_not_called_corrupt(tmp_path):
    from keras_dcign import from_preset

    folder = preset(tmp_path / "p")
    _raises_one_line(lambda: from_preset(folder, image_size=48), "does not fit the weights")


def test_light_none_is_not_called_out_of_range():
    model = tiny_calibrated_model()
    _raises_one_line(
        lambda: model.rerender(blob_images(2), light=None), "light=None is not a value"
    )


@pytest.mark.parametrize(
    "images, words",
    [
        (np.zeros((0, 32, 32, 1), "float32"), "expected a non-empty batch"),
        (np.full((2, 32, 32, 1), 200.0, "float32"), "values from 200 to 200"),
        (np.full((2, 32, 32, 1), np.nan, "float32"), "NaN or infinite"),
        (np.zeros((2, 32, 32, 1), "uint8"), "dtype uint8"),
    ],
    ids=["empty-batch", "float-0-255", "nan", "uint8"],
)
def test_rerender_refuses_pixels_it_cannot_read(images, words):
    model = tiny_calibrated_model()
    _raises_one_line(lambda: model.rerender(images, light=10), words)


def test_direction_on_a_model_without_calibration_says_what_it_takes():
    _raises_one_line(
        lambda: tiny_model().rerender(blob_images(1), light="left"),
        "has no calibration for light, so it takes a latent value",
    )


def test_save_to_preset_refuses_a_foreign_folder_and_replaces_its_own(tmp_path):
    from keras_dcign import from_preset

    mine = _user_folder(tmp_path / "mine", **{"config.json": "{}", "notes.txt": "keep"})
    before = snapshot(tmp_path)
    _raises_one_line(lambda: tiny_model().save_to_preset(mine), "is not a preset folder")
    assert snapshot(tmp_path) == before
    folder = preset(tmp_path / "p")
    tiny_model().save_to_preset(folder)  # ours, nothing else in it: replaced whole
    assert from_preset(folder).calibration is None
    (folder / "notes.txt").write_text("the user's")
    before = snapshot(tmp_path)
    _raises_one_line(lambda: tiny_model().save_to_preset(folder), "holds notes.txt")
    assert snapshot(tmp_path) == before
    tiny_model().save_to_preset(folder, overwrite=True)
    assert not (folder / "notes.txt").exists()


def test_a_preset_from_before_markers_is_replaced_only_with_overwrite(tmp_path):
    folder = preset(tmp_path / "p")
    (folder / ".dcign").unlink()
    before = snapshot(tmp_path)
    _raises_one_line(lambda: tiny_model().save_to_preset(folder), "written before dcign marked")
    assert snapshot(tmp_path) == before
    tiny_model().save_to_preset(folder, overwrite=True)
    assert json.loads((folder / ".dcign").read_text())["kind"] == "preset"


@pytest.mark.backend_independent
def test_api_writers_refuse_the_users_files(tmp_path):
    from keras_dcign import Calibration
    from keras_dcign.datasets import faces
    from keras_dcign.download import extract_archive

    mine = _user_folder(tmp_path / "mine", **{"factors.csv": "mine", "notes.txt": "keep"})
    png(tmp_path / "gallery.png")
    (tmp_path / "calibration.json").write_text("{}")
    (tmp_path / "a.zip").write_bytes(b"PK\x03\x04")
    before = snapshot(tmp_path)
    calibration = Calibration({})
    for call, words in [
        (lambda: faces.export_reference_layout(mine, n_batches=1), "not a dataset export"),
        (lambda: faces.generate(mine, n_batches=1), "not a faces cache"),
        (lambda: extract_archive(tmp_path / "a.zip", mine), "not an unpacked archive"),
        (lambda: faces.gallery(tmp_path / "gallery.png"), "gallery.png already exists"),
        (lambda: calibration.save(tmp_path / "calibration.json"), "already exists"),
        (lambda: calibration.save(ZOO_DIR / "calibration.json"), "installed keras-dcign"),
    ]:
        _raises_one_line(call, words)
    assert snapshot(tmp_path) == before


@pytest.mark.backend_independent
def test_import_torch7_refuses_a_foreign_folder(tmp_path):
    from keras_dcign.torch7 import import_torch7

    project = _user_folder(tmp_path / "project", **{"config.json": "{}", "main.py": ""})
    (tmp_path / "parameters.t7").write_bytes(b"x")
    before = snapshot(tmp_path)
    call = lambda: import_torch7(tmp_path / "parameters.t7", out=project)  # noqa: E731
    _raises_one_line(call, "is not a preset folder")
    assert snapshot(tmp_path) == before


def test_rerender_file_never_writes_over_its_input(tmp_path):
    from keras_dcign.image_files import rerender_file

    png(tmp_path / "a_compare.png")
    before = snapshot(tmp_path)
    model = tiny_calibrated_model()
    call = lambda: rerender_file(  # noqa: E731
        model, tmp_path / "a_compare.png", out=tmp_path / "a.png", compare=True, light=10.0
    )
    _raises_one_line(call, "would overwrite the input")
    assert snapshot(tmp_path) == before


TINY = dict(image_size=32, feature_maps=8, cache_batches=2, batch_size=4, progress=False)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_resume_without_a_run_is_refused_and_creates_nothing(tmp_path, home):
    from keras_dcign.training import train

    _raises_one_line(
        lambda: train(tmp_path / "new", resume=True, steps=2, **TINY), "holds no checkpoint"
    )
    assert not (tmp_path / "new").exists()
    empty = _user_folder(tmp_path / "empty")
    _raises_one_line(lambda: train(empty, resume=True, steps=2, **TINY), "holds no checkpoint")
    assert snapshot(empty) == {}


def test_train_refuses_a_foreign_folder(tmp_path, home):
    from keras_dcign.training import train

    mine = _user_folder(tmp_path / "mine", **{"recipe.txt": "keep", "data.csv": "1,2"})
    before = snapshot(tmp_path)
    _raises_one_line(lambda: train(mine, steps=2, **TINY), "is not a training run")
    assert snapshot(tmp_path) == before


def test_failed_train_leaves_no_run_folder(tmp_path, home):
    from keras_dcign.training import train

    data = _user_folder(tmp_path / "data")
    with pytest.raises(ValueError):
        train(tmp_path / "run", data_dir=data, steps=2, **TINY)
    assert not (tmp_path / "run").exists()


def _fake_checkpoint(run, step, state='{"step": 5}', optimizer=None):
    import h5py

    folder = run / "checkpoints" / f"step-{step:08d}"
    folder.mkdir(parents=True)
    h5py.File(folder / "model.weights.h5", "w").close()
    if optimizer is None:
        np.savez(folder / "optimizer.npz", a=np.zeros(1))
    else:
        (folder / "optimizer.npz").write_bytes(optimizer)
    (folder / "state.json").write_text(state)
    (run / "checkpoints" / "latest").write_text(folder.name)
    return folder


@pytest.mark.parametrize(
    "state, optimizer, words",
    [
        ('{"step": ', None, "state.json is not valid JSON"),
        ("[5]", None, "state.json holds a JSON list"),
        ('{"steps": 5}', None, "has no 'step' entry"),
        ('{"step": 5}', b"garbage", "optimizer.npz is missing or not a NumPy .npz archive"),
    ],
    ids=["state-invalid", "state-list", "state-key", "optimizer-garbage"],
)
def test_damaged_checkpoint_is_named(tmp_path, home, state, optimizer, words):
    from keras_dcign.training import train
    from keras_dcign.training.checkpoint import restore_checkpoint

    run = tmp_path / "run"
    folder = _fake_checkpoint(run, 5, state, optimizer)
    before = snapshot(tmp_path)
    _raises_one_line(lambda: train(run, resume=True, steps=8, **TINY), words)
    model = tiny_model()
    model.compile()
    _raises_one_line(lambda: restore_checkpoint(model, folder), words)
    assert "allow_pickle" not in words
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_resume_takes_the_newest_intact_checkpoint(tmp_path, home):
    from keras_dcign.training import train

    run = tmp_path / "run"
    train(run, steps=2, checkpoint_every=1, **TINY)
    checkpoints = run / "checkpoints"
    shutil.rmtree(checkpoints / "step-00000002")  # `latest` still names it
    (checkpoints / ".step-00000003.tmp").mkdir()  # what a Ctrl-C in a save leaves
    (run / ".dcign").unlink()  # a run from before markers resumes too
    result = train(run, resume=True, steps=3, checkpoint_every=1, **TINY)
    assert (result.resumed_from, result.steps) == (1, 2)
    assert (checkpoints / "latest").read_text() == "step-00000003"
    assert not list(checkpoints.glob(".step-*"))


@pytest.mark.backend_independent
def test_rejected_archive_does_not_stay_in_the_cache(served, home):
    from keras_dcign.presets import fetch

    root, base = served
    (root / "p.zip").write_bytes(b"not an archive")
    digest = hashlib.sha256(b"not an archive").hexdigest()
    with pytest.raises(OSError, match="is not a zip or tar archive"):
        fetch(f"{base}/p.zip#sha256={digest}", progress=False)
    assert not list((home / "keras_dcign" / "presets").rglob("*"))
