"""Fetching presets and datasets into the cache: mirrors, resume, checksums, safe extraction.

Only the standard library talks to the network. A file is written under a temporary
`.part` name, resumed from where it stopped on the next call, and renamed into place only
once its size and sha256 check out, so the cache never holds a half or a wrong file.

Example:

>>> from keras_dcign.download import cache_dir, download, extract_archive
>>> archive = download(
...     ["https://example.org/faces.tar.gz", "https://mirror.example.org/faces.tar.gz"],
...     cache_dir("datasets") / "faces.tar.gz",
...     sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
... )
>>> faces = extract_archive(archive, cache_dir("datasets") / "faces")
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
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

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

    >>> cache_dir("presets", "faces_basel")
    PosixPath('/home/me/.keras/keras_dcign/presets/faces_basel')
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

    >>> path = download(
    ...     "https://example.org/model.weights.h5",
    ...     cache_dir("presets", "faces_basel") / "model.weights.h5",
    ...     sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ... )
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
    half-extracted `target` never appears; an existing `target` is replaced.

    Args:
        archive: path of the archive.
        target: folder to create.

    Returns:
        `target` as a `pathlib.Path`.

    Raises:
        ArchiveError: the archive is not a zip or tar file, or a member is unsafe (the
            message names it).

    Example:

    >>> extract_archive("faces.tar.gz", cache_dir("datasets") / "faces")
    """
    archive, target = Path(archive), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _temp_sibling(target, ".partial")
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, staging)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, staging)
        else:
            raise ArchiveError(f"{archive} is not a zip or tar archive")
        if target.exists():
            # Swap the old copy out in one rename rather than deleting it file by file.
            old = _temp_sibling(target, ".old")
            os.replace(target, old / target.name)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


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


def _temp_sibling(target, suffix):
    """A new hidden folder beside `target`, on the same file system so renames are atomic."""
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent))


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
