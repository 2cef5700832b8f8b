"""The dcign command through Click's runner and as a real installed subprocess."""

import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import tiny_calibrated_model
from keras_dcign_cli.main import cli
from PIL import Image


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    return tiny_calibrated_model().save_to_preset(
        tmp_path_factory.mktemp("zoo") / "tiny", card="# Tiny card\n"
    )


@pytest.fixture
def face(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "face.png")
    return tmp_path / "face.png"


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_render_and_traverse(preset, face):
    result = _run("render", face, "--light", "left", "--preset", preset, "--compare")
    assert result.exit_code == 0, result.output
    assert (face.parent / "face_light-left.png").exists()
    assert (face.parent / "face_light-left_compare.png").exists()
    out = face.parent / "sweep.gif"
    result = _run(
        "traverse", face, "--factor", "azimuth", "--frames", "5", "--preset", preset, "--out", out
    )
    assert result.exit_code == 0, result.output
    assert out.exists() and out.with_suffix(".png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["render", "missing.png", "--light", "left"], "does not exist"),
        (["render", "{face}", "--light", "left", "--preset", "nope"], "Unknown preset 'nope'"),
        (
            ["render", "{face}", "--light", "200", "--preset", "{preset}"],
            "outside the calibrated range",
        ),
        (
            ["render", "{face}", "--light", "sideways", "--preset", "{preset}"],
            "not a known direction",
        ),
        (
            [
                "render",
                "{face}",
                "--light",
                "left",
                "--preset",
                "{preset}",
                "--out",
                "{face}/x.png",
            ],
            "not writable",
        ),
    ],
)
def test_runtime_errors_are_one_line(args, message, preset, face):
    result = _run(*[a.format(face=face, preset=preset) for a in args])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines


def test_corrupt_weights(preset, tmp_path, face):
    broken = tmp_path / "broken"
    shutil.copytree(preset, broken)
    (broken / "model.weights.h5").write_bytes(b"\x00" * 64)
    result = _run("render", face, "--light", "left", "--preset", broken)
    assert result.exit_code == 1 and "Corrupt weights file" in result.output


@pytest.mark.backend_independent
def test_debug_shows_the_traceback(face):
    result = _run("--debug", "render", face, "--light", "left", "--preset", "nope")
    assert isinstance(result.exception, ValueError)


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "args",
    [
        ["render"],
        ["traverse", "x.png"],
        ["train", "--steps", "0"],
        ["train", "--clamp", "median"],
        ["render", "x.png", "--crop", "magic"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(args):
    assert _run(*args).exit_code == 2


@pytest.mark.backend_independent
@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_help_exits_0(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: cli {command}")
    assert "Error" not in result.output


def test_zoo_commands(preset):
    result = _run("zoo", "list")
    assert result.exit_code == 0, result.output
    # Not a terminal: one preset a line, tab-separated, names whole.
    lines = result.output.splitlines()
    assert lines[0].split("\t")[0] == "name"
    assert {"faces_64", "faces_64_entangled", "faces_basel_original"} <= {
        line.split("\t")[0] for line in lines[1:]
    }
    result = _run("zoo", "info", preset)
    assert result.exit_code == 0 and "Tiny card" in result.output


@pytest.mark.backend_independent
def test_download_checksum_mismatch_over_loopback(tmp_path, served):
    root, base = served
    (root / "blob.bin").write_bytes(b"abc" * 1000)
    url = f"{base}/blob.bin"
    bad = _run("download", url, "--sha256", "0" * 64, "--dest", tmp_path / "got")
    assert bad.exit_code == 1 and "sha256 mismatch" in bad.output
    assert not (tmp_path / "got" / "blob.bin").exists()
    good = hashlib.sha256(b"abc" * 1000).hexdigest()
    ok = _run("download", url, "--sha256", good, "--dest", tmp_path / "got")
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "got" / "blob.bin").read_bytes() == b"abc" * 1000


@pytest.mark.slow
def test_installed_dcign_renders_in_a_subprocess(preset, face):
    dcign = shutil.which("dcign") or os.path.join(os.path.dirname(sys.executable), "dcign")
    result = subprocess.run(
        [
            dcign,
            "render",
            str(face),
            "--azimuth",
            "30",
            "--preset",
            str(preset),
            "--out",
            str(face.parent / "turned.png"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(face.parent / "turned.png").size == (32, 32)
    missing = subprocess.run(
        [dcign, "render", "nowhere.png", "--light", "left"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == ["Error: Input image nowhere.png does not exist."]
