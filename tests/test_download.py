"""Downloads against a real HTTP server on 127.0.0.1, and safe archive extraction."""

import hashlib
import io
import os
import re
import socket
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from keras_dcign import download as download_module
from keras_dcign.download import (
    ArchiveError,
    DownloadError,
    cache_dir,
    download,
    extract_archive,
    sha256_of,
)

pytestmark = pytest.mark.backend_independent

PAYLOAD = os.urandom(300_000)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class FileServer(ThreadingHTTPServer):
    """Serves `files` by path; can ignore Range, cut one transfer short and count requests."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RangeHandler)
        self.files = {"/data.bin": PAYLOAD}
        self.ignore_range = False
        self.cut_after = None  # bytes of body sent before the next transfer is dropped
        self.requests = []  # (path, Range header or None, body bytes sent)

    def url(self, path="/data.bin"):
        return f"http://127.0.0.1:{self.server_port}{path}"

    def handle_error(self, request, client_address):
        # A client that hangs up early is part of several tests, not a server fault.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RangeHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        record = [self.path, self.headers.get("Range"), 0]
        server.requests.append(record)
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and not server.ignore_range:
            start = int(match[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            start = 0
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_after is not None:
            body, server.cut_after = body[: server.cut_after], None
            self.close_connection = True
        record[2] = len(body)
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = FileServer()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


def test_cache_dir_lives_under_keras_home(tmp_path, monkeypatch):
    path = cache_dir("presets", "faces")
    assert path == tmp_path / "keras_home" / "keras_dcign" / "presets" / "faces"
    assert path.is_dir()
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    assert cache_dir() == tmp_path / "home" / ".keras" / "keras_dcign"
    with pytest.raises(ValueError, match=r"'\.\./x'"):
        cache_dir("../x")


def test_good_download(server, tmp_path):
    dest = tmp_path / "data.bin"
    assert download(server.url(), dest, sha256=PAYLOAD_SHA, size=len(PAYLOAD)) == dest
    assert dest.read_bytes() == PAYLOAD
    assert sha256_of(dest) == PAYLOAD_SHA
    assert not (tmp_path / "data.bin.part").exists()
    assert len(server.requests) == 1


def test_verified_dest_makes_no_request(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(PAYLOAD)
    download(server.url(), dest, sha256=PAYLOAD_SHA.upper())
    assert server.requests == []


@pytest.mark.parametrize("older_copy", [False, True])
def test_checksum_mismatch_leaves_cache_untouched(server, tmp_path, older_copy):
    dest = tmp_path / "data.bin"
    if older_copy:
        dest.write_bytes(b"an older release")
    wrong = "0" * 64
    with pytest.raises(DownloadError) as info:
        download(server.url(), dest, sha256=wrong, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert server.url() in message
    assert f"expected {wrong}" in message and f"got {PAYLOAD_SHA}" in message
    assert not (tmp_path / "data.bin.part").exists()
    if older_copy:
        assert dest.read_bytes() == b"an older release"
    else:
        assert not dest.exists()


def test_truncated_transfer_resumes(server, tmp_path):
    dest, part = tmp_path / "data.bin", tmp_path / "data.bin.part"
    server.cut_after = 100_000
    with pytest.raises(DownloadError, match="cut off after 100000 of 300000 bytes"):
        download(server.url(), dest, sha256=PAYLOAD_SHA, progress=False)
    assert part.stat().st_size == 100_000
    assert not dest.exists()

    download(server.url(), dest, sha256=PAYLOAD_SHA, progress=False)
    _, range_header, sent = server.requests[-1]
    assert range_header == "bytes=100000-"
    assert sent == len(PAYLOAD) - 100_000
    assert dest.read_bytes() == PAYLOAD
    assert not part.exists()


def test_server_ignoring_range_restarts(server, tmp_path):
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:5000])
    server.ignore_range = True
    download(server.url(), dest, sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[0][1] == "bytes=5000-" and server.requests[0][2] == len(PAYLOAD)


def test_complete_part_is_verified_without_a_body(server, tmp_path):
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    download(server.url(), dest, sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert [sent for _, _, sent in server.requests] == [0]  # a 416 answer


def test_stale_part_from_another_version_starts_over(server, tmp_path):
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(b"x" * 1000)
    download(server.url(), dest, sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert [header for _, header, _ in server.requests] == ["bytes=1000-", None]


def test_size_mismatch_is_reported_before_the_transfer(server, tmp_path):
    with pytest.raises(DownloadError, match="source has 300000 bytes, expected 12"):
        download(server.url(), tmp_path / "data.bin", size=12, progress=False)
    assert not (tmp_path / "data.bin").exists()


def test_404_names_url_and_status(server, tmp_path):
    url = server.url("/missing.bin")
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path / "missing.bin", progress=False)
    assert str(info.value) == f"Could not download {url}: HTTP 404 Not Found"
    assert info.value.failures == [(url, "HTTP 404 Not Found")]


def test_unreachable_port_fails_fast(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/data.bin"
    begin = time.monotonic()
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path / "data.bin", progress=False)
    assert time.monotonic() - begin < 5
    assert str(info.value) == f"Could not download {url}: connection refused"


def test_silent_server_times_out(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)  # the connection is queued but never answered
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/data.bin"
        begin = time.monotonic()
        with pytest.raises(DownloadError, match="timed out"):
            download(url, tmp_path / "data.bin", progress=False, timeout=0.5)
    assert time.monotonic() - begin < 3


def test_mirrors_are_tried_in_order(server, tmp_path):
    dest = tmp_path / "data.bin"
    urls = [server.url("/gone.bin"), server.url()]
    download(urls, dest, sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert [path for path, _, _ in server.requests] == ["/gone.bin", "/data.bin"]


def test_all_mirrors_failing_lists_each(server, tmp_path):
    urls = [server.url("/a.bin"), server.url("/b.bin")]
    with pytest.raises(DownloadError) as info:
        download(urls, tmp_path / "data.bin", progress=False)
    assert str(info.value) == (
        f"Could not download data.bin from any of 2 sources: "
        f"{urls[0]}: HTTP 404 Not Found; {urls[1]}: HTTP 404 Not Found"
    )


@pytest.mark.parametrize("url", ["http://example.com/data.bin", "ftp://example.com/data.bin"])
def test_insecure_or_unknown_urls_are_refused(tmp_path, url):
    with pytest.raises(DownloadError, match="https://") as info:
        download(["https://example.com/data.bin", url], tmp_path / "data.bin")
    assert str(info.value).startswith(f"Refusing {url}: ")
    assert not (tmp_path / "data.bin.part").exists()


def test_file_url(tmp_path):
    source = tmp_path / "mirror" / "data.bin"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:777])
    download(source.as_uri(), dest, sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    with pytest.raises(DownloadError, match="No such file"):
        download((tmp_path / "nothing").as_uri(), tmp_path / "nothing", progress=False)


def test_progress_bar_off_a_terminal(server, tmp_path, capsys):
    download(server.url(), tmp_path / "data.bin", sha256=PAYLOAD_SHA, progress=True)
    err = capsys.readouterr().err
    assert "data.bin" in err and "\x1b[" not in err


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path, entries):
    """A tar.gz of `(name, bytes)` files and `(name, link target, link type)` links, in order."""
    with tarfile.open(path, "w:gz") as tf:
        for name, *rest in entries:
            info = tarfile.TarInfo(name)
            if len(rest) == 2:
                info.linkname, info.type = rest
                tf.addfile(info)
            else:
                info.size = len(rest[0])
                tf.addfile(info, io.BytesIO(rest[0]))
    return path


def test_extract_zip_and_tar(tmp_path):
    members = {"faces/a.txt": b"a", "faces/sub/b.txt": b"b"}
    for archive in (
        _zip(tmp_path / "faces.zip", members),
        _tar(
            tmp_path / "faces.tar.gz",
            [*members.items(), ("faces/c.txt", "a.txt", tarfile.SYMTYPE)],
        ),
    ):
        target = tmp_path / "out" / archive.name
        assert extract_archive(archive, target) == target
        assert (target / "faces" / "a.txt").read_bytes() == b"a"
        assert (target / "faces" / "sub" / "b.txt").read_bytes() == b"b"
        assert not [name for name in os.listdir(target.parent) if name.startswith(".")]
    assert (tmp_path / "out" / "faces.tar.gz" / "faces" / "c.txt").read_bytes() == b"a"


def test_extract_replaces_an_older_target(tmp_path):
    target = tmp_path / "out"
    extract_archive(_zip(tmp_path / "v1.zip", {"old.txt": b"1"}), target)
    extract_archive(_zip(tmp_path / "v2.zip", {"new.txt": b"2"}), target)
    assert sorted(os.listdir(target)) == [".dcign", "new.txt"]  # the marker: ours to replace
    assert sorted(os.listdir(tmp_path)) == ["out", "v1.zip", "v2.zip"]


@pytest.mark.parametrize(
    "make, member",
    [
        (lambda p: _zip(p / "evil.zip", {"ok.txt": b"ok", "../evil.txt": b"x"}), "../evil.txt"),
        (lambda p: _tar(p / "evil.tar.gz", [("ok.txt", b"ok"), ("/tmp/evil.txt", b"x")]), "/tmp/"),
        (
            lambda p: _tar(p / "evil.tar.gz", [("link", "../..", tarfile.SYMTYPE)]),
            "'link', a symlink to '../..'",
        ),
        (
            lambda p: _tar(p / "evil.tar.gz", [("abs", "/etc/passwd", tarfile.SYMTYPE)]),
            "'abs', a symlink",
        ),
        (
            lambda p: _tar(p / "evil.tar.gz", [("hard", "../evil.txt", tarfile.LNKTYPE)]),
            "'hard', a hard link",
        ),
    ],
)
def test_unsafe_archives_are_refused(tmp_path, make, member):
    workspace = tmp_path / "work"
    workspace.mkdir()
    archive = make(workspace)
    before = sorted(os.listdir(workspace))
    with pytest.raises(ArchiveError, match=re.escape(member)):
        extract_archive(archive, workspace / "out" / "target")
    assert sorted(os.listdir(workspace)) == before  # not even the parent folder it made
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("data_filter", [True, False])
def test_link_chain_out_of_the_target_is_refused(tmp_path, monkeypatch, data_filter):
    # Pythons before 3.10.12 / 3.11.4 lack tarfile's data filter and take the stricter path.
    monkeypatch.setattr(download_module, "_HAS_DATA_FILTER", data_filter)
    # Each link looks harmless alone; together "up/.." is the folder above the target.
    archive = _tar(
        tmp_path / "chain.tar.gz",
        [
            ("here", ".", tarfile.SYMTYPE),
            ("up", "here/..", tarfile.SYMTYPE),
            ("up/escape.txt", b"x"),
        ],
    )
    with pytest.raises(ArchiveError):
        extract_archive(archive, tmp_path / "out" / "target")
    assert not (tmp_path / "out" / "escape.txt").exists()
    assert not (tmp_path / "out" / "target").exists()


def test_not_an_archive(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("hello")
    with pytest.raises(ArchiveError, match="not a zip or tar archive"):
        extract_archive(path, tmp_path / "out")
    assert os.listdir(tmp_path) == ["plain.txt"]
