"""The wheel installs `cli` and `zoo` inside the keras_dcign namespace, and `dcign` is light."""

import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.backend_independent
@pytest.mark.slow
def test_wheel_installs_cli_and_zoo_inside_the_package(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", str(ROOT)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    installed = sorted(p.name for p in Path(purelib).iterdir())
    assert "keras_dcign" in installed and "keras_dcign_cli" in installed
    assert "cli" not in installed and "zoo" not in installed
    # Dependencies (click, rich, ...) come from this environment, after the fresh one.
    Path(purelib, "outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    out = subprocess.run(
        [
            python,
            "-c",
            "import keras_dcign_cli.main as c, keras_dcign.zoo as z, keras_dcign.presets as p; "
            "import keras_dcign.evaluation as e; from keras_dcign.zoo import ZOO_DIR; "
            "assert isinstance(p.list_presets(), dict); "
            "assert all((ZOO_DIR / n / 'metrics.json').exists() "
            "for n, v in p.list_presets().items() if v['source'] == 'bundled'); "
            "print(c.__file__); print(z.__file__); print(e.__file__)",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout.split()
    assert all(path.startswith(purelib) for path in out), out
    version = subprocess.run(
        [env_dir / "bin" / "dcign", "--version"], check=True, capture_output=True, text=True
    )
    assert "dcign, version" in version.stdout


@pytest.mark.backend_independent
def test_cli_help_and_version_do_not_import_keras(tmp_path):
    code = (
        "import sys\nfrom keras_dcign_cli.main import main\n"
        "for args in (['--help'], ['--version']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as done:\n"
        "        assert done.code == 0\n"
        "assert not {'keras', 'tensorflow', 'jax', 'torch'} & set(sys.modules)\n"
        "print('light')"
    )
    # Run outside the source tree so the installed package (with keras_dcign_cli) is imported.
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: dcign" in result.stdout and "light" in result.stdout


@pytest.mark.backend_independent
def test_installed_dcign_command_runs():
    result = subprocess.run(["dcign", "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--backend" in result.stdout
