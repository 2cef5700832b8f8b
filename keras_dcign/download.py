"""Fetching presets and datasets into the cache: mirrors, resume, checksums, safe extraction.

The package's one fetch layer; it imports nothing of the model, the presets or the
Torch7 converter:

- `download`, `extract_archive`, `cache_dir`, `sha256_of`: one file over HTTP(S) or
  `file://`, checked; an archive unpacked safely; the cache folders.
- `fetch_archive` (a preset archive URL), `fetch_hub` (`hf://`), `fetch_kaggle`
  (`kaggle://`), `fetch_file` (a plain file): the sources `dcign download` accepts.
The authors' Torch7 release (its network and its dataset in the original layout) is
fetched by `keras_dcign.torch7` on top of this layer.

Only the standard library talks to the network. A file is written under a temporary
`.part` name, resumed from where it stopped on the next call, and renamed into place only
once its size and sha256 check out, so the cache never holds a half or a wrong file.

Example:

A `file://` URL stands in for the `https://` mirrors of a real download.

>>> import tarfile, tempfile
>>> from pathlib import Path
>>> from keras_dcign.download import download, extract_archive, sha256_of
>>> work = Path(tempfile.mkdtemp())
>>> _ = (work / "notes.txt").write_text("rendered faces")
>>> with tarfile.open(work / "faces.tar.gz", "w:gz") as tar:
...     tar.add(work / "notes.txt", arcname="faces/notes.txt")
>>> archive = download(
...     [(work / "faces.tar.gz").as_uri()],  # mirrors, tried in order
...     work / "cache" / "faces.tar.gz",
...     sha256=sha256_of(work / "faces.tar.gz"),
...     progress=False,
... )
>>> faces = extract_archive(archive, work / "cache" / "faces")
>>> sorted(p.relative_to(faces).as_posix() for p in faces.rglob("*"))  # .dcign: the marker
['.dcign', 'faces', 'faces/notes.txt']
"""

import contextlib
import hashlib
import http.client
import ipaddress
import os
import posixpath
import re
import shutil
import socket
import ssl
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from keras_dcign.extras import require
from keras_dcign.files import (
    atomic_folder,
    check_not_installed,
    removed_on_failure,
)
from keras_dcign.version import __version__

# Connecting is quick when a host is up; a dead one should fail in seconds, while a slow
# transfer from a live one gets the caller's longer read timeout.
_CONNECT_TIMEOUT = 10.0
_CHUNK = 1 << 20
_LOOPBACK_NAMES = ("localhost",)
# Python's tar "data" filter exists from 3.10.12 / 3.11.4; older ones get stricter link rules.
_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")
_FILTER_ERRORS = getattr(tarfile, "FilterError", ())


class DownloadError(OSError):
    """A file could not be fetched, verified or unpacked.

    Args:
        message: one line saying what failed and why.
        failures: `(url, reason)` pairs, one per source tried.
    """

    def __init__(self, message, failures=()):
        super().__init__(message)
        self.failures = list(failures)


class ArchiveError(DownloadError):
    """An archive is unreadable or holds a member that would land outside its target."""


class _Failure(Exception):
    """One source failed; the reason becomes part of the `DownloadError` message."""


def cache_dir(*parts):
    """The cache folder `$KERAS_HOME/keras_dcign/<parts>`, created if missing.

    `KERAS_HOME` defaults to `~/.keras` (or `/tmp/.keras` where home is not writable),
    the same place Keras itself caches files.

    Args:
        *parts: relative folder names below `keras_dcign`, e.g. `"presets", "faces_basel"`.

    Example:

    >>> from keras_dcign.download import cache_dir
    >>> cache_dir("downloads").parts[-2:]  # e.g. ~/.keras/keras_dcign/downloads
    ('keras_dcign', 'downloads')
    """
    for part in parts:
        pieces = re.split(r"[\\/]", str(part))
        if not str(part) or os.path.isabs(part) or ".." in pieces:
            raise ValueError(f"cache folder name {part!r} must be a relative path without '..'")
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    path = Path(home, "keras_dcign", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path):
    """The sha256 of a file as 64 lowercase hex digits, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(urls, dest, sha256=None, size=None, progress=True, timeout=30):
    """Fetches a file into `dest`, trying each source in turn, and verifies it.

    The bytes go to `dest + ".part"`; a `.part` left by an interrupted call is resumed
    with an HTTP Range request (or restarted when the server ignores Range). Only a file
    whose size and sha256 match is renamed to `dest`, so an existing `dest` is never
    replaced by a wrong one. When `dest` already exists and matches `sha256` (or, without
    a `sha256`, simply exists with the right `size`), no request is made at all.

    Args:
        urls: one URL or a list of mirror URLs tried in order. `https://` and `file://`
            are accepted; plain `http://` only for 127.0.0.1, localhost and ::1.
        dest: path of the file to produce.
        sha256: expected sha256 as 64 hex digits, or None to skip the check.
        size: expected size in bytes, or None to skip the check.
        progress: whether to show a progress bar on stderr.
        timeout: seconds to wait for the server's next bytes (connecting waits at most
            10 s).

    Returns:
        `dest` as a `pathlib.Path`.

    Raises:
        DownloadError: a URL is refused, or no source delivered a verified file; the
            one-line message names each URL and what went wrong with it.

    Example:

    A `file://` URL stands in for an `https://` one:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from keras_dcign.download import download, sha256_of
    >>> folder = Path(tempfile.mkdtemp())
    >>> source = folder / "model.weights.h5"
    >>> _ = source.write_bytes(b"weights")
    >>> path = download(source.as_uri(), folder / "cache" / "model.weights.h5",
    ...                 sha256=sha256_of(source), progress=False)
    >>> path.read_bytes()
    b'weights'
    >>> download(source.as_uri(), folder / "other.h5", sha256="0" * 64, progress=False)
    Traceback (most recent call last):
    ...
    keras_dcign.download.DownloadError: Could not download file://...: sha256 mismatch: ...
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise ValueError("download() needs at least one URL, got an empty list")
    for url in urls:
        problem = _url_problem(url)
        if problem:
            raise DownloadError(f"Refusing {url}: {problem}", [(url, problem)])
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError(f"sha256 {sha256!r} must be 64 hexadecimal digits")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and _verify(dest, sha256, size) is None:
        return dest

    part = dest.with_name(dest.name + ".part")
    failures = []
    for url in urls:
        try:
            _fetch_verified(url, part, sha256, size, progress, timeout)
        except _Failure as exc:
            failures.append((url, str(exc)))
            continue
        os.replace(part, dest)
        return dest
    if len(failures) == 1:
        message = f"Could not download {failures[0][0]}: {failures[0][1]}"
    else:
        tried = "; ".join(f"{url}: {reason}" for url, reason in failures)
        message = f"Could not download {dest.name} from any of {len(failures)} sources: {tried}"
    raise DownloadError(message, failures)


def extract_archive(archive, target):
    """Unpacks a zip or tar (plain, .gz, .bz2, .xz) archive into the folder `target`.

    Every member is checked before anything is written: absolute paths, `..` components,
    links leading outside `target` and device files are refused. The members are unpacked
    into a temporary sibling folder that is renamed to `target` at the end, so a
    half-extracted `target` never appears. An existing `target` is replaced only
    when it is an archive this package unpacked there, with nothing else in it
    (`keras_dcign.files.check_output_folder`); it is marked as one.

    Args:
        archive: path of the archive.
        target: folder to create.

    Returns:
        `target` as a `pathlib.Path`.

    Raises:
        ArchiveError: the archive is not a zip or tar file, or a member is unsafe (the
            message names it).

    Example:

    >>> import tempfile, zipfile
    >>> from pathlib import Path
    >>> from keras_dcign.download import extract_archive
    >>> work = Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(work / "preset.zip", "w") as archive:
    ...     archive.writestr("preset/config.json", "{}")
    >>> target = extract_archive(work / "preset.zip", work / "unpacked")
    >>> sorted(p.relative_to(target).as_posix() for p in target.rglob("*"))
    ['.dcign', 'preset', 'preset/config.json']
    >>> with zipfile.ZipFile(work / "unsafe.zip", "w") as archive:
    ...     archive.writestr("../outside.txt", "")
    >>> extract_archive(work / "unsafe.zip", work / "unsafe")
    Traceback (most recent call last):
    ...
    keras_dcign.download.ArchiveError: ...unsafe.zip: refusing member '../outside.txt' ...
    """
    archive, target = Path(archive), Path(target)
    with atomic_folder(target, "archive") as staging:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, staging)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, staging)
        else:
            raise ArchiveError(f"{archive} is not a zip or tar archive")
    return target


def check_folder(path, required_files, what="a preset folder"):
    """`path` as a `Path`, once it holds every one of `required_files`.

    Raises:
        ValueError: naming `path` and the first file it lacks.
    """
    path = Path(path)
    for required in required_files:
        if not (path / required).is_file():
            raise ValueError(f"{path} is not {what}: it has no {required}.")
    return path


def fetch_archive(urls, sha256, name, progress=True, required_files=()):
    """Downloads an archive once and unpacks it in the cache: the folder it holds.

    The archive goes to `$KERAS_HOME/keras_dcign/presets/<name>/preset.archive` and is
    unpacked beside it into `preset/`; an archive holding one top folder gives that folder.
    A later call finds the unpacked folder and makes no request. An archive that is
    refused (unsafe, damaged, or without `required_files`) is removed from the cache.

    Args:
        urls: mirror URLs tried in order.
        sha256: the archive's expected sha256, or None.
        name: the cache folder's name.
        progress: show a progress bar while downloading.
        required_files: files the unpacked folder must hold (a preset's config and weights).

    Returns:
        The unpacked folder's `Path`.

    Raises:
        DownloadError: no mirror delivered a verified archive.
        ValueError: the archive holds no folder with `required_files`.
    """
    folder = cache_dir("presets", name)
    unpacked = folder / "preset"
    if unpacked.is_dir():
        cached = _archive_root(unpacked, required_files)
        if all((cached / required).is_file() for required in required_files):
            return cached
    with dropped_if_empty(folder):
        archive = download(urls, folder / "preset.archive", sha256=sha256, progress=progress)
    shutil.rmtree(unpacked, ignore_errors=True)  # an incomplete one, in the package's cache
    try:
        extract_archive(archive, unpacked)
        return check_folder(_archive_root(unpacked, required_files), required_files)
    except (ValueError, OSError):
        # A rejected archive must not stay in the cache, where it would be taken next time.
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _archive_root(unpacked, required_files):
    """The unpacked folder, or the one folder inside it when the files are not at its top."""
    inner = [p for p in unpacked.iterdir() if p.is_dir()]
    if not all((unpacked / f).exists() for f in required_files) and len(inner) == 1:
        return inner[0]
    return unpacked


def fetch_hub(source):
    """The local snapshot of an `hf://owner/repo` source, through `huggingface_hub`."""
    huggingface_hub = require("huggingface_hub", repr(source))
    return Path(huggingface_hub.snapshot_download(repo_id=source[len("hf://") :]))


def fetch_kaggle(source):
    """The local copy of a `kaggle://owner/model/framework/variant` source, through `kagglehub`."""
    kagglehub = require("kagglehub", repr(source))
    return Path(kagglehub.model_download(source[len("kaggle://") :]))


def fetch_file(url, sha256, dest=None, progress=True, overwrite=False):
    """Downloads one plain file, checked against `sha256`, into the folder `dest`.

    The file keeps the URL's last path segment as its name. A file of that name already
    in `dest` is refused unless it is the very file (same sha256) or `overwrite` is
    set, so nothing foreign is replaced. A `dest` made for a download that fails is
    removed again.

    Args:
        url: the file's `https://` (or `file://`, loopback `http://`) URL.
        sha256: its expected sha256.
        dest: the folder to save it in; default `$KERAS_HOME/keras_dcign/files`.
        progress: show a progress bar while downloading.
        overwrite: replace a file of that name once the download is verified.

    Returns:
        The file's `Path`.
    """
    name = url.rsplit("/", 1)[-1].split("?")[0] or "download"
    folder = Path(dest) if dest else cache_dir("files")
    check_not_installed(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"Output {folder} is a file; expected a folder to save {name} in.")
    _check_not_foreign_file(folder / name, sha256, overwrite)
    with removed_on_failure(folder):
        folder.mkdir(parents=True, exist_ok=True)
        return download([url], folder / name, sha256=sha256, progress=progress)


def _check_not_foreign_file(path, sha256, overwrite):
    """Refuses to replace a file of the same name that is not the one being downloaded."""
    if not (path.exists() or path.is_symlink()) or (overwrite and path.is_file()):
        return
    if not (path.is_file() and sha256_of(path) == sha256.strip().lower()):
        raise ValueError(
            f"{path} already exists and is not the file being downloaded, so nothing was "
            "changed; pass --overwrite to replace it, or choose another --dest."
        )


@contextlib.contextmanager
def dropped_if_empty(folder):
    """Removes a cache folder again when the download into it fails and left nothing there (a
    `.part` to resume from is kept)."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            Path(folder).rmdir()  # only an empty folder goes
        raise


def _url_problem(url):
    """Why `url` may not be used, or None."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("https", "file") or (scheme == "http" and _is_loopback(parts.hostname)):
        return None
    if scheme == "http":
        return "plain http:// is insecure, use https:// (http:// is allowed only for loopback)"
    return f"unsupported scheme {scheme!r}, expected https://, file:// or loopback http://"


def _is_loopback(host):
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _verify(path, sha256, size):
    """What is wrong with the file at `path`, or None when it matches."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"size mismatch: expected {size} bytes, got {actual_size}"
    if sha256 is not None:
        actual = sha256_of(path)
        if actual != sha256:
            return (
                f"sha256 mismatch: expected {sha256}, got {actual} "
                "(the source changed or the transfer was corrupted)"
            )
    return None


def _fetch_verified(url, part, sha256, size, progress, timeout):
    resumed = _fetch(url, part, size, progress, timeout)
    problem = _verify(part, sha256, size)
    if problem and resumed:
        # The kept `.part` may come from an older version of the file: start over once.
        part.unlink()
        _fetch(url, part, size, progress, timeout)
        problem = _verify(part, sha256, size)
    if problem:
        part.unlink(missing_ok=True)
        raise _Failure(problem)


def _fetch(url, part, size, progress, timeout):
    """Completes `part` from `url`; returns whether it carried on from earlier bytes."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        offset = 0
    stream, start, total = _open(url, offset, timeout)
    if stream is None:
        return True  # the server says `part` already holds every byte
    if size is not None and total is not None and total != size:
        stream.close()
        raise _Failure(f"the source has {total} bytes, expected {size} (the source changed)")
    received = start
    with (
        stream,
        open(part, "ab" if start else "wb") as out,
        _progress_bar(progress, part.stem, total, start) as advance,
    ):
        while True:
            try:
                chunk = stream.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise _Failure(
                    f"transfer cut off after {received} bytes ({_describe(exc)}); "
                    "run again to resume"
                ) from None
            if not chunk:
                break
            out.write(chunk)
            received += len(chunk)
            advance(len(chunk))
    if total is not None and received < total:
        raise _Failure(f"transfer cut off after {received} of {total} bytes; run again to resume")
    return start > 0


def _open(url, offset, timeout):
    """Opens `url` at byte `offset`: `(stream, start, total)`; stream None when complete."""
    if urllib.parse.urlsplit(url).scheme.lower() == "file":
        return _open_file(url, offset)
    headers = {"User-Agent": f"keras-dcign/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    handlers = [_HTTPHandler, _HTTPSHandler, _CheckedRedirects]
    if _is_loopback(urllib.parse.urlsplit(url).hostname):
        handlers.append(urllib.request.ProxyHandler({}))  # no proxy can reach our loopback
    opener = urllib.request.build_opener(*handlers)
    try:
        response = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            return None, offset, offset
        raise _Failure(f"HTTP {exc.code} {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Failure(_describe(exc)) from None
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if response.status != 206:
        return response, 0, length
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
    if not match or int(match[1]) != offset:
        response.close()
        raise _Failure(f"the server answered a request for bytes {offset}- with another range")
    total = int(match[2]) if match[2] != "*" else None
    if total is None and length is not None:
        total = offset + length
    return response, offset, total


def _open_file(url, offset):
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise _Failure(f"file:// URLs must name a local path, got host {parts.netloc!r}")
    path = Path(urllib.request.url2pathname(parts.path))
    try:
        stream = open(path, "rb")
    except OSError as exc:
        raise _Failure(exc.strerror or str(exc)) from None
    total = os.fstat(stream.fileno()).st_size
    start = offset if offset <= total else 0
    stream.seek(start)
    return stream, start, total


def _describe(exc):
    """A short reason for a network failure, without the exception's noise."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timed out waiting for the server"
    if isinstance(reason, socket.gaierror):
        return "host name not found"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({reason.verify_message})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


class _QuickConnect:
    """Connects with a short timeout, then reads with the caller's longer one."""

    def connect(self):
        read_timeout = self.timeout
        self.timeout = min(read_timeout, _CONNECT_TIMEOUT)
        try:
            super().connect()
        finally:
            self.timeout = read_timeout
        self.sock.settimeout(read_timeout)


class _HTTPConnection(_QuickConnect, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_QuickConnect, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_HTTPConnection, req, **kwargs)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_HTTPSConnection, req, **kwargs)


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to URLs `download` would accept (no https -> http)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        problem = _url_problem(newurl)
        if problem:
            raise _Failure(f"redirected ({code}) to {newurl}, refused: {problem}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@contextlib.contextmanager
def _progress_bar(enabled, name, total, completed):
    """Yields `advance(n)`; a rich progress bar on stderr when `enabled`."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    # Off a terminal rich draws only the final state once, which keeps logs readable.
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(name, total=total, completed=completed)
        yield lambda n: bar.advance(task, n)


def _extract_zip(archive, staging):
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member_name(archive, info.filename)
            # zipfile writes symlink entries as small plain files, so they cannot escape.
            zf.extractall(staging)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ArchiveError(f"{archive} is a damaged zip archive ({exc})") from None


def _extract_tar(archive, staging):
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            for member in members:
                _check_tar_member(archive, member)
            if _HAS_DATA_FILTER:
                # The data filter also resolves links already on disk, catching link chains.
                tf.extractall(staging, members, filter="data")
            else:
                tf.extractall(staging, members)
    except _FILTER_ERRORS as exc:
        raise ArchiveError(f"{archive}: refusing member {exc.tarinfo.name!r} ({exc})") from None
    except (tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"{archive} is a damaged tar archive ({exc})") from None


def _check_member_name(archive, name):
    pieces = re.split(r"[\\/]", name)
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise ArchiveError(f"{archive}: refusing member {name!r} with an absolute path")
    if ".." in pieces:
        raise ArchiveError(f"{archive}: refusing member {name!r} that climbs out with '..'")


def _check_tar_member(archive, member):
    _check_member_name(archive, member.name)
    if member.ischr() or member.isblk() or member.isfifo():
        raise ArchiveError(f"{archive}: refusing member {member.name!r}, a device or pipe")
    if not (member.issym() or member.islnk()):
        return
    link = member.linkname
    # A symlink is relative to its own folder, a hard link to the archive root.
    base = posixpath.dirname(member.name) if member.issym() else ""
    resolved = posixpath.normpath(posixpath.join(base, link))
    escapes = posixpath.isabs(link) or resolved == ".." or resolved.startswith("../")
    if not _HAS_DATA_FILTER and member.issym():
        escapes = escapes or ".." in link.split("/")  # without the filter, links stay downward
    if escapes:
        kind = "symlink" if member.issym() else "hard link"
        raise ArchiveError(
            f"{archive}: refusing member {member.name!r}, a {kind} to {link!r} outside the target"
        )
