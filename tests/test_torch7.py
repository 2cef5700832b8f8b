"""Importing the authors' Torch7 network, checked against a numpy forward pass in Torch's
conventions, and the release downloads over a real HTTP server on 127.0.0.1."""

import hashlib
import http.server
import io
import json
import socket
import threading
import zipfile

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from keras_dcign_cli.main import cli
from keras_dcign_cli.torch7 import import_torch7 as import_command
from torch7_writer import write_float_tensor, write_t7

from keras_dcign import from_preset, presets, torch7, zoo
from keras_dcign.datasets import faces
from keras_dcign.download import ArchiveError, DownloadError

RELEASE_PARAMETERS = 4_131_137
THRESHOLD = 1e-6  # the reference code's nn.Threshold(0, 1e-6) outputs this for x <= 0


# A numpy forward pass of the reference network (init_network2_150_mv) as Torch computes it:
# NCHW tensors, valid cross-correlation, 2x2 max-pool (floor), nearest upsampling, and the
# flat vector read in module order, each weight followed by its bias.


def torch_modules(latents=200, maps=96):
    """The weight shape of each parametrised module, in the order getParameters() lays them."""
    flat = maps // 4 * 15 * 15
    return [
        (maps, 1, 5, 5),
        (maps // 2, maps, 5, 5),
        (maps // 4, maps // 2, 5, 5),
        (latents, flat),  # ConcatTable branch 1: the mean
        (latents, flat),  # ConcatTable branch 2: the log-variance
        (flat, latents),
        (maps // 2, maps // 4, 7, 7),
        (maps, maps // 2, 7, 7),
        (maps, maps, 7, 7),
        (1, maps, 7, 7),
    ]


def torch_parameters(vector, latents=200, maps=96):
    modules, offset = [], 0
    for shape in torch_modules(latents, maps):
        size = int(np.prod(shape))
        weight = vector[offset : offset + size].reshape(shape)
        bias = vector[offset + size : offset + size + shape[0]]
        modules.append((weight, bias))
        offset += size + shape[0]
    assert offset == len(vector)
    return modules


def conv(x, weight, bias):
    """nn.SpatialConvolution: (N, C, H, W) -> (N, O, H-kh+1, W-kw+1), no kernel flip."""
    n, _, h, w = x.shape
    out_maps, _, kh, kw = weight.shape
    ho, wo = h - kh + 1, w - kw + 1
    out = np.zeros((out_maps, n, ho, wo), np.float32)
    for i in range(kh):
        for j in range(kw):
            out += np.tensordot(weight[:, :, i, j], x[:, :, i : i + ho, j : j + wo], axes=(1, 1))
    return out.transpose(1, 0, 2, 3) + bias[None, :, None, None]


def max_pool(x):
    n, c, h, w = x.shape
    x = x[:, :, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def threshold(x):
    return np.where(x > 0, x, np.float32(THRESHOLD))


def upsample(x):
    return x.repeat(2, axis=2).repeat(2, axis=3)


def torch_encode(modules, images):
    x = images
    for weight, bias in modules[:3]:
        x = threshold(max_pool(conv(x, weight, bias)))
    x = x.reshape(len(x), -1)  # nn.Reshape(24*15*15) of (N, 24, 15, 15): channels first
    (w_mean, b_mean), (w_log_var, b_log_var) = modules[3:5]
    return x @ w_mean.T + b_mean, x @ w_log_var.T + b_log_var


def torch_decode_logits(modules, z):
    weight, bias = modules[5]
    maps = modules[6][0].shape[1]
    x = threshold(z @ weight.T + bias).reshape(len(z), maps, 15, 15)
    for k, (weight, bias) in enumerate(modules[6:]):
        x = conv(upsample(x), weight, bias)
        if k < 3:
            x = threshold(x)
    return x


def random_vector(latents=200, maps=96, seed=0):
    """He-scaled weights, so activations neither vanish nor explode through ten modules."""
    rng = np.random.default_rng(seed)
    parts = []
    for shape in torch_modules(latents, maps):
        fan_in = int(np.prod(shape[1:]))
        parts.append(rng.normal(0, np.sqrt(2 / fan_in), size=int(np.prod(shape))))
        parts.append(rng.normal(0, 0.05, size=shape[0]))
    return np.concatenate(parts).astype(np.float32)


# Fixtures: a release folder as the reference code saved it, and its zip.


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    folder = root / "dcign_sample_trained"
    folder.mkdir()
    vector = random_vector()
    write_float_tensor(folder / "parameters.t7", vector)
    write_float_tensor(folder / "lowerbound.t7", np.array([[-9000.0], [-8000.0]]))
    write_t7(folder / "config.t7", {"learningRate": -0.0005, "momentumDecay": 0.1})
    write_t7(folder / "state.t7", {"m": np.zeros(8, np.float32), "tmp": np.ones(8, np.float32)})
    archive = root / "dcign_sample_trained.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"dcign_sample_trained/{path.name}")
    return {"folder": folder, "zip": archive, "vector": vector}


@pytest.fixture(scope="module")
def imported(release, tmp_path_factory):
    out = tmp_path_factory.mktemp("imported") / "original"
    result = CliRunner().invoke(import_command, [str(release["folder"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    return out, from_preset(out)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path / "keras_home" / "keras_dcign"


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files = {}
        self.requests = []

    def url(self, path):
        return f"http://127.0.0.1:{self.server_port}{path}"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(self.path)
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    server = Server()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """The real registry with its release links pointed at `urls` (a loopback server)."""
    folder = tmp_path / "zoo"
    folder.mkdir()
    real = zoo.registry()
    monkeypatch.setattr(zoo, "ZOO_DIR", folder)

    def point(network=None, dataset=None):
        if network is not None:
            real["presets"]["faces_basel_original"]["urls"] = network
        if dataset is not None:
            real["datasets"]["faces-original"]["urls"] = dataset
        (folder / "registry.json").write_text(json.dumps(real))

    return point


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


# The conversion.


def test_converted_model_matches_torch_reference(release, imported):
    _, model = imported
    assert model.count_params() == RELEASE_PARAMETERS == torch7.parameter_count()
    modules = torch_parameters(release["vector"])
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, size=(2, 150, 150, 1)).astype(np.float32)
    posterior = model.encode(images)
    mean, log_var = torch_encode(modules, images.transpose(0, 3, 1, 2))
    assert np.std(mean) > 0.1, "a degenerate fixture would compare nothing"
    np.testing.assert_allclose(_numpy(posterior.mean), mean, rtol=0, atol=1e-4)
    np.testing.assert_allclose(_numpy(posterior.log_var), log_var, rtol=0, atol=1e-4)

    z = rng.normal(size=(2, 200)).astype(np.float32)
    logits = torch_decode_logits(modules, z).transpose(0, 2, 3, 1)
    assert np.std(logits) > 0.1
    np.testing.assert_allclose(_numpy(model.decode_logits(z)), logits, rtol=0, atol=1e-4)


def test_preset_records_where_the_weights_came_from(release, imported):
    folder, _ = imported
    info = json.loads((folder / "metadata.json").read_text())["torch7"]
    parameters = release["folder"] / "parameters.t7"
    assert info["source"] == str(release["folder"].resolve())
    assert info["parameters_sha256"] == hashlib.sha256(parameters.read_bytes()).hexdigest()
    assert (info["parameter_count"], info["latents"], info["feature_maps"]) == (
        RELEASE_PARAMETERS,
        200,
        96,
    )
    card = (folder / "README.md").read_text()
    assert str(release["folder"].resolve()) in card and info["parameters_sha256"] in card
    assert "Torch7" in card


@pytest.mark.backend_independent
def test_zip_folder_and_file_read_the_same_vector(release):
    from_zip, zip_info = torch7.read_parameters(release["zip"])
    from_folder, folder_info = torch7.read_parameters(release["folder"])
    from_file, _ = torch7.read_parameters(release["folder"] / "parameters.t7")
    np.testing.assert_array_equal(from_zip, release["vector"])
    np.testing.assert_array_equal(from_folder, release["vector"])
    np.testing.assert_array_equal(from_file, release["vector"])
    assert zip_info["file"] == "dcign_sample_trained.zip:dcign_sample_trained/parameters.t7"
    assert zip_info["sha256"] == folder_info["sha256"]


@pytest.mark.backend_independent
def test_wrong_length_says_what_it_found(tmp_path):
    write_float_tensor(tmp_path / "parameters.t7", np.zeros(1000))
    with pytest.raises(ValueError, match=r"holds 1,000 parameters.*4,131,137: 200 latents, 96"):
        torch7.import_torch7(tmp_path)


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", "truncated"),
        ("garbage", "not a readable Torch7 file"),
        ("table", "holds a Lua table; expected a Torch7 FloatTensor"),
        ("nan", "NaN or infinite"),
    ],
)
def test_damaged_parameter_files_are_named(tmp_path, damage, message):
    path = tmp_path / "parameters.t7"
    if damage == "garbage":
        path.write_bytes(b"not a torch file at all")
    elif damage == "table":
        write_t7(path, {"weights": np.zeros(3, np.float32)})
    else:
        values = np.ones(5000, np.float32)
        values[7] = np.nan if damage == "nan" else 1.0
        write_float_tensor(path, values)
        if damage == "truncate":
            path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueError, match=message):
        torch7.read_parameters(path)


@pytest.mark.backend_independent
def test_zip_or_folder_without_parameters_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("dcign_sample_trained/state.t7", b"")
    with pytest.raises(ValueError, match="holds no parameters.t7"):
        torch7.read_parameters(tmp_path / "other.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no parameters.t7"):
        torch7.import_torch7(tmp_path / "empty")


@pytest.mark.backend_independent
def test_ambiguous_sources_and_foreign_out_folders_are_refused(release, tmp_path):
    for run in ("a", "b"):
        (tmp_path / "networks" / run).mkdir(parents=True)
        write_float_tensor(tmp_path / "networks" / run / "parameters.t7", np.zeros(10))
    with pytest.raises(ValueError, match=r"several networks \(a/parameters.t7, b/parameters.t7\)"):
        torch7.read_parameters(tmp_path / "networks")
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="is not empty and is not a preset folder"):
        torch7.import_torch7(release["folder"], out=tmp_path / "documents")
    assert (tmp_path / "documents" / "notes.txt").read_text() == "keep me"


@pytest.mark.backend_independent
def test_other_layouts_are_inferred_from_the_length():
    assert torch7.infer_layout(RELEASE_PARAMETERS) == (200, 96)
    for layout in [(120, 96), (10, 8)]:
        assert torch7.infer_layout(sum(int(np.prod(s)) + s[0] for s in torch_modules(*layout))) == (
            layout
        )
    with pytest.raises(ValueError, match="no 150x150 DC-IGN with 120 latents has"):
        torch7.infer_layout(RELEASE_PARAMETERS, latents=120)
    count = torch7.parameter_count(104, 4)
    assert count == torch7.parameter_count(17, 16)  # two layouts, one length
    with pytest.raises(ValueError, match="fits several layouts"):
        torch7.infer_layout(count)
    assert torch7.infer_layout(count, latents=17) == (17, 16)


@pytest.mark.backend_independent
def test_keras_weights_follow_the_torch_layout():
    vector = random_vector(latents=4, maps=8)
    weights = torch7.torch7_to_keras(vector, latents=4, feature_maps=8)
    modules = torch_parameters(vector, latents=4, maps=8)
    # A kernel entry (kh, kw, in, out) is Torch's (out, in, kh, kw).
    kernel = weights["encoder_conv_2"][0]
    assert kernel[1, 3, 0, 2] == modules[1][0][2, 0, 1, 3]
    # Two maps of 15x15: Keras flattens (h, w, c), Torch (c, h, w).
    h, w, c = 2, 5, 1
    keras_unit, torch_unit = (h * 15 + w) * 2 + c, c * 225 + h * 15 + w
    assert weights["z_mean"][0][keras_unit, 3] == modules[3][0][3, torch_unit]
    assert weights["z_log_var"][0][keras_unit, 0] == modules[4][0][0, torch_unit]
    assert weights["decoder_dense"][0][3, keras_unit] == modules[5][0][torch_unit, 3]
    assert weights["decoder_dense"][1][keras_unit] == modules[5][1][torch_unit]


# The release downloads, served over loopback.


def test_original_preset_downloads_and_converts_once(
    release, imported, server, registry, keras_home
):
    server.files["/dc-ign/dcign_sample_trained.zip"] = release["zip"].read_bytes()
    mirror = server.url("/dc-ign/dcign_sample_trained.zip")
    registry(network=[server.url("/gone/dcign_sample_trained.zip"), mirror])

    model = from_preset("faces_basel_original", progress=False)
    z = np.random.default_rng(2).normal(size=(1, 200)).astype(np.float32)
    np.testing.assert_allclose(
        _numpy(model.decode_logits(z)), _numpy(imported[1].decode_logits(z)), atol=1e-6
    )
    cached = keras_home / "presets" / "faces_basel_original"
    info = json.loads((cached / "preset" / "metadata.json").read_text())["torch7"]
    assert info["source"] == mirror
    assert info["source_sha256"] == hashlib.sha256(release["zip"].read_bytes()).hexdigest()
    assert sorted(p.name for p in cached.iterdir()) == ["preset"], "zip or .part left behind"
    assert "# faces_basel_original" in (cached / "preset" / "README.md").read_text()

    served = len(server.requests)
    dest = keras_home.parent / "copy"
    result = CliRunner().invoke(cli, ["download", "faces_basel_original", "--dest", str(dest)])
    assert result.exit_code == 0, result.output
    assert (dest / "model.weights.h5").is_file()
    assert len(server.requests) == served, "the converted preset is served from the cache"


@pytest.mark.backend_independent
def test_unreachable_release_says_how_to_import_a_copy(registry, keras_home):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/dcign_sample_trained.zip"
    registry(network=[closed])
    with pytest.raises(DownloadError, match=r"connection refused.*2017.*dcign import-torch7"):
        from_preset("faces_basel_original", progress=False)
    result = CliRunner().invoke(cli, ["download", "faces_basel_original"])
    assert result.exit_code == 1
    assert "dcign import-torch7 PATH" in result.output
    assert "Traceback" not in result.output


@pytest.mark.backend_independent
def test_changed_release_says_how_to_import_a_copy(server, registry, keras_home):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("dcign_sample_trained/README.txt", "moved")
    server.files["/dcign_sample_trained.zip"] = buffer.getvalue()
    registry(network=[server.url("/dcign_sample_trained.zip")])
    with pytest.raises(ValueError, match=r"no longer serves the DC-IGN release.*import-torch7"):
        from_preset("faces_basel_original", progress=False)
    assert not list(keras_home.rglob("config.json"))
    assert not list(keras_home.rglob("*.zip"))


def _dataset_zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _t7_bytes(tmp_path, array):
    path = tmp_path / "tensor.t7"
    write_float_tensor(path, array)
    return path.read_bytes()


@pytest.mark.backend_independent
@pytest.mark.parametrize("top", ["DATASET/", ""])
def test_original_dataset_download_unpacks_the_reference_layout(
    top, tmp_path, server, registry, keras_home
):
    rng = np.random.default_rng(3)
    batches = rng.uniform(0, 1, size=(3, 4, 1, 32, 32)).astype(np.float32)
    data = _dataset_zip(
        {
            f"{top}th_AZ_VARIED/FT_training/batch1": _t7_bytes(tmp_path, batches[0]),
            f"{top}th_AZ_VARIED/FT_training/batch2": _t7_bytes(tmp_path, batches[1]),
            f"{top}th_LIGHT_AZ_VARIED/FT_test/batch1": _t7_bytes(tmp_path, batches[2]),
        }
    )
    server.files["/dc-ign/dcign_facedataset_monovariant.zip"] = data
    registry(dataset=[server.url("/dc-ign/dcign_facedataset_monovariant.zip")])
    dest = tmp_path / "faces-original"

    result = CliRunner().invoke(cli, ["download", "faces-original", "--dest", str(dest)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(dest)
    train = faces.load_reference_layout(dest, image_size=None, split="train")
    assert [group for _, group, _ in train] == ["azimuth", "azimuth"]
    np.testing.assert_array_equal(train[1][0][..., 0], batches[1][:, 0])
    test = faces.load_reference_layout(dest, image_size=None, split="test")
    assert [group for _, group, _ in test] == ["light"]
    source = json.loads((dest / "source.json").read_text())
    assert source["sha256"] == hashlib.sha256(data).hexdigest()
    assert not list((keras_home / "downloads").iterdir()), "zip or unpacked files left behind"

    served = len(server.requests)
    assert (
        CliRunner().invoke(cli, ["download", "faces-original", "--dest", str(dest)]).exit_code == 0
    )
    assert len(server.requests) == served


@pytest.mark.backend_independent
def test_dataset_zip_reaching_outside_its_target_is_refused(tmp_path, server, registry, keras_home):
    data = _dataset_zip({"../escaped/th_AZ_VARIED/FT_training/batch1": b"x"})
    server.files["/dcign_facedataset_monovariant.zip"] = data
    registry(dataset=[server.url("/dcign_facedataset_monovariant.zip")])
    with pytest.raises(ArchiveError, match="climbs out"):
        presets.fetch("faces-original", dest=tmp_path / "data", progress=False)
    assert not (tmp_path / "escaped").exists() and not (keras_home / "escaped").exists()
    assert not (tmp_path / "data").exists()
