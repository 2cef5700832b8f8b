"""The preset registry (installed as `keras_dcign.zoo`): one folder per preset.

`registry.json` lists the presets (bundled here or downloaded on first use) and the
datasets `dcign download` fetches; `registry()` reads it.
"""

import json
from pathlib import Path

ZOO_DIR = Path(__file__).resolve().parent
REGISTRY_FILE = "registry.json"


def registry():
    """The parsed `registry.json`: `{"presets": {name: entry}, "datasets": {name: entry}}`."""
    with open(ZOO_DIR / REGISTRY_FILE) as handle:
        return json.load(handle)


def registry_datasets():
    """The registry's datasets: `{name: entry}` (e.g. `"faces-original"`)."""
    return registry().get("datasets", {})
