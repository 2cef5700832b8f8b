"""The package as Keras sees it: classes registered on import, presets in Keras' serialized
form (and the earlier layout), and an import graph without cycles."""

import ast
import json
import shutil
from pathlib import Path

import keras
import keras_dcign.zoo
import numpy as np
import pytest
from helpers import ALL_BACKENDS, BACKEND, blob_images, run_python, tiny_model

import keras_dcign
from keras_dcign.presets import read_model_config

PACKAGE = Path(keras_dcign.__file__).parent
LEGACY = Path(__file__).parent / "data" / "legacy_configs"

# Only what a user types: no model class is touched before `load_model`.
LOAD_KERAS_FILE = """
import sys, numpy as np, keras, keras_dcign
model = keras.saving.load_model(sys.argv[1] if len(sys.argv) > 1 else %r)
data = np.load(%r)
print(type(model).__name__, float(np.abs(keras.ops.convert_to_numpy(model(data["images"]))
                                        - data["out"]).max()))
"""

# A preset folder read with Keras' own functions.
LOAD_PRESET_WITH_KERAS = """
import json, numpy as np, keras, keras_dcign
folder = %r
model = keras.saving.deserialize_keras_object(json.load(open(folder + "/config.json")))
model.load_weights(folder + "/model.weights.h5")
data = np.load(%r)
print(type(model).__name__, float(np.abs(keras.ops.convert_to_numpy(model(data["images"]))
                                        - data["out"]).max()))
"""


def _trained_tiny(images):
    keras.utils.set_random_seed(4)
    model = tiny_model()
    model.compile()
    model.fit(images, model.group_ids("light", len(images)), epochs=1, verbose=0)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("other", [b for b in ALL_BACKENDS if b != BACKEND])
def test_a_saved_model_loads_after_importing_the_package_alone(other, tmp_path):
    images = blob_images(4, seed=1)
    model = _trained_tiny(images)
    model.save(tmp_path / "m.keras")
    out = keras.ops.convert_to_numpy(model(images))
    np.savez(tmp_path / "io.npz", images=images, out=out)
    name, diff = run_python(
        LOAD_KERAS_FILE % (str(tmp_path / "m.keras"), str(tmp_path / "io.npz")), other
    ).split()
    assert name == "DCIGN"
    assert float(diff) <= 1e-5


def test_importing_the_package_registers_its_classes():
    registered = {
        keras.saving.get_registered_name(cls)
        for cls in (keras_dcign.DCIGN, keras_dcign.GraphicsCodeClamp)
    }
    assert registered == {"keras_dcign>DCIGN", "keras_dcign>GraphicsCodeClamp"}
    # In a fresh interpreter, `import keras_dcign` alone is enough.
    code = (
        "import keras, keras_dcign\n"
        "print(keras.saving.get_registered_object('keras_dcign>DCIGN').__name__,"
        " keras.saving.get_registered_object('keras_dcign>GraphicsCodeClamp').__name__)"
    )
    assert run_python(code, BACKEND).split() == ["DCIGN", "GraphicsCodeClamp"]


def test_a_preset_loads_with_plain_keras(tmp_path):
    images = blob_images(4, seed=2)
    model = _trained_tiny(images)
    folder = model.save_to_preset(tmp_path / "preset")
    saved = json.loads((folder / "config.json").read_text())
    assert saved["registered_name"] == "keras_dcign>DCIGN"
    assert saved["class_name"] == "DCIGN"
    assert saved["config"]["image_size"] == model.image_size
    np.savez(tmp_path / "io.npz", images=images, out=keras.ops.convert_to_numpy(model(images)))
    name, diff = run_python(
        LOAD_PRESET_WITH_KERAS % (str(folder), str(tmp_path / "io.npz")), BACKEND
    ).split()
    assert name == "DCIGN"
    assert float(diff) <= 1e-6


@pytest.mark.parametrize("name", ["faces_64", "faces_64_entangled"])
def test_bundled_presets_load_from_their_earlier_config_layout(name, tmp_path):
    """The bundled presets in the layout used before configs were serialized (bare
    constructor arguments): the same model. `faces_64`'s file has the retrained preset's
    invariance strength."""
    from keras_dcign.zoo import ZOO_DIR

    bundled = Path(ZOO_DIR) / name
    legacy = tmp_path / name
    shutil.copytree(bundled, legacy)
    shutil.copy(LEGACY / f"{name}.json", legacy / "config.json")
    old_layout = json.loads((legacy / "config.json").read_text())
    assert "class_name" not in old_layout and "image_size" in old_layout
    serialized = read_model_config(legacy)
    assert serialized["registered_name"] == "keras_dcign>DCIGN"
    assert read_model_config(bundled)["config"] == {
        **read_model_config(bundled)["config"],
        **old_layout,
    }
    now, before = keras_dcign.from_preset(name), keras_dcign.from_preset(legacy)
    rng = np.random.default_rng(0)
    images = rng.random((2, now.image_size, now.image_size, 1), dtype="float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(now(images)), keras.ops.convert_to_numpy(before(images))
    )
    assert before.calibration.factors == now.calibration.factors


def test_a_config_naming_an_unknown_class_is_refused(tmp_path):
    folder = tiny_model().save_to_preset(tmp_path / "preset")
    saved = json.loads((folder / "config.json").read_text())
    saved["registered_name"] = "someone>Else"
    saved["class_name"] = "Else"
    (folder / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="names the class 'someone>Else', which is not registered"):
        keras_dcign.from_preset(folder)


def _imports(path, module, modules):
    """Every keras_dcign module `module` imports, at any level of the file.

    `from package import name` is an import of the module `package.name` where there is
    one (running `package/__init__` on the way, as every submodule import does), and of
    `package` itself where `name` is defined there.
    """
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
    return {name for name in found if name.split(".")[0] == "keras_dcign"}


def _module_graph():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    # Installed from the repository's zoo/ folder (see pyproject.toml's package-dir).
    modules["keras_dcign.zoo"] = Path(keras_dcign.zoo.__file__)
    return {
        name: {
            target
            for target in _imports(path, name, modules)
            if target in modules and target != name
        }
        for name, path in modules.items()
    }


def _cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    graph = _module_graph()
    assert "keras_dcign.model" in graph and "keras_dcign.presets" in graph["keras_dcign.model"]
    # Only the package's front door imports the package: every module below it imports
    # modules, never `keras_dcign` itself (which would import everything back).
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
