"""The package's rules for the user's files: what it reads, and what it may write.

One write rule, used by every command and API function that writes:

- A command writes only paths the user named, or new paths it names on stdout.
- It never replaces a file or folder this package did not write. What it wrote is proven by
  its own mark, never by the shape of a folder: a `.dcign` marker file (`MARKER`) in every
  folder it makes, listing what it put there, and a "keras-dcign" text in every image it
  writes (`image_mark`).
- A folder it wrote is replaced only whole, and only when nothing else is in it and it holds
  the same kind of thing, or when the user passes `--overwrite`.
- The installed package's files (its library, zoo and command line) are never written.

One place each:

- `check_output_folder` / `atomic_folder`, `check_output_file`: the write rule, for a folder
  and for a file; `check_not_installed`: the installed package.
- `mark_folder` / `record_written`: the marker; `removed_on_failure`: a failed command
  leaves no folder it made.
- `read_json_object`: preset and checkpoint JSON is read by one validating reader whose
  errors name the file and the missing key.
- `check_distinct`: no output path may be an input path (nor hold one, when it is a
  folder to be replaced).

And one way to write: `atomic_write` (a file) and `atomic_folder` (a folder) write under a
temporary name beside the target and rename it into place, so a killed process leaves either
the old file or the new one, never half of one. Every writer in the package goes through them.

This module needs no Keras: commands check their outputs with it before Keras loads.
"""

import contextlib
import functools
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from keras_dcign.version import __version__

# The marker file in every folder the package writes, and who it says wrote it.
MARKER = ".dcign"
WRITER = "keras-dcign"
# The kinds of folder the package writes, as messages name them.
KINDS = {
    "preset": "a preset folder",
    "run": "a training run",
    "evaluation": "an evaluation folder",
    "dataset": "a downloaded dataset",
    "export": "a dataset export",
    "faces-cache": "a faces cache",
    "archive": "an unpacked archive",
    "checkpoint": "a checkpoint",
}


def read_json_object(path, required=(), what="file"):
    """Reads a JSON file that must hold an object with the `required` keys.

    Args:
        path: the file.
        required: keys the object must have.
        what: what the file is, for messages (e.g. `"preset config"`).

    Returns:
        The parsed `dict`.

    Raises:
        ValueError: the file is missing or unreadable, is not JSON, is not an
            object, or misses a key; the one-line message names the file.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"{what.capitalize()} {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise ValueError(f"Cannot read {what} {path}: {reason}.") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{what.capitalize()} {path} is not valid JSON ({error.msg} at line {error.lineno} "
            f"column {error.colno})."
        ) from None
    if not isinstance(value, dict):
        raise ValueError(
            f"{what.capitalize()} {path} holds a JSON {type(value).__name__}; "
            "expected a JSON object."
        )
    missing = [key for key in required if key not in value]
    if missing:
        raise ValueError(f"{what.capitalize()} {path} has no {missing[0]!r} entry.")
    return value


# A preset's metadata file (`keras_dcign.presets.METADATA_FILE`), named here so that this
# module, which every writer imports, imports none of them.
_PRESET_METADATA_FILE = "metadata.json"


def is_preset_folder(folder):
    """Whether `folder` is a preset this package wrote before it marked its folders: its
    `metadata.json` names the package's version and model class."""
    try:
        metadata = json.loads((Path(folder) / _PRESET_METADATA_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(metadata, dict)
        and metadata.get("class_name") == "DCIGN"
        and "keras_dcign_version" in metadata
    )


@functools.cache
def installed_folders():
    """The folders of the installed package: its library, its zoo and its command line."""
    folders = list(sys.modules["keras_dcign"].__path__)
    for name in ("keras_dcign.zoo", "keras_dcign_cli"):
        spec = importlib.util.find_spec(name)  # finds the folder without importing it
        if spec is not None and spec.submodule_search_locations:
            folders.extend(spec.submodule_search_locations)
    return tuple(dict.fromkeys(Path(folder).resolve() for folder in folders))


def installed_folder_of(path):
    """The installed package folder that holds `path` (or is it), or None."""
    resolved = Path(path).resolve()
    for folder in installed_folders():
        if resolved == folder or folder in resolved.parents:
            return folder
    return None


def check_not_installed(path):
    """Refuses a path inside the installed package, whose files are never written.

    Raises:
        ValueError: naming `path` and the package folder that holds it.
    """
    folder = installed_folder_of(path)
    if folder is not None:
        raise ValueError(
            f"Output {path} is inside the installed keras-dcign package ({folder}), which "
            "dcign never writes; choose a path outside it."
        )


def folder_marker(folder):
    """The marker this package wrote into `folder` (a dict: kind, files, origin), or None."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    valid = (
        isinstance(marker, dict)
        and marker.get("written_by") == WRITER
        and marker.get("kind") in KINDS
        and isinstance(marker.get("files"), list)
    )
    return marker if valid else None


def mark_folder(folder, kind, names=None, origin=None):
    """Writes the marker that proves this package wrote `folder`.

    Args:
        folder: the folder.
        kind: what it is, a key of `KINDS`.
        names: the entries the package writes there (default: what the folder holds now).
        origin: what it was made from (a preset's name, a source path), so that a folder
            is replaced without `--overwrite` only by one made from the same thing.
    """
    folder = Path(folder)
    if names is None:
        names = [entry.name for entry in folder.iterdir()]
    record = {
        "written_by": WRITER,
        "version": __version__,
        "kind": kind,
        "origin": origin,
        "files": sorted(set(names) - {MARKER}),
    }
    atomic_write(folder / MARKER, json.dumps(record, indent=1) + "\n")


def record_written(folder, *names):
    """Adds `names` to the marker of a folder this package wrote (nothing when unmarked)."""
    marker = folder_marker(folder)
    if marker is not None:
        mark_folder(folder, marker["kind"], marker["files"] + list(names), marker.get("origin"))


def check_output_folder(
    folder, kind="preset", overwrite=None, reuse=False, legacy=None, origin=None
):
    """Refuses an output folder this package may not write.

    A new or empty folder is always accepted. A non-empty one is accepted only
    when its marker says this package wrote it as `kind`, from `origin`, with
    nothing else in it; with `reuse` (a run resumed, a cache completed) other
    entries and origins do not matter, and `overwrite` accepts any folder this
    package wrote.

    Args:
        folder: the folder about to be written.
        kind: what will be written there, a key of `KINDS`.
        overwrite: the user passed `--overwrite`; None where the command has no
            such option (its messages then do not offer it).
        reuse: the folder is written into, not replaced.
        legacy: `folder -> bool`, whether an unmarked folder is one this package
            wrote before it marked its folders; such a folder is accepted with
            `overwrite` or `reuse`.
        origin: what the new contents are made from, as `mark_folder` records it.

    Raises:
        ValueError: one line naming the folder and what was expected.
    """
    folder = Path(folder)
    what = KINDS[kind]
    check_not_installed(folder)
    if not folder.exists():
        if folder.is_symlink():
            raise ValueError(f"Output {folder} is a broken link; expected a new or empty folder.")
        return
    if not folder.is_dir():
        raise ValueError(f"Output {folder} is a file; expected a new or empty folder.")
    entries = {entry.name for entry in folder.iterdir()}
    if not entries:
        return
    offer = "; pass --overwrite to replace it, or choose" if overwrite is not None else "; choose"
    marker = folder_marker(folder)
    if marker is None:
        if legacy is not None and legacy(folder):
            if overwrite or reuse:
                return
            raise ValueError(
                f"Output folder {folder} is {what} written before dcign marked its folders "
                f"(it has no {MARKER} file), so nothing was changed{offer} a new folder."
            )
        raise ValueError(
            f"Output folder {folder} is not empty and is not {what} dcign wrote, so nothing "
            "was changed; choose a new or empty folder."
        )
    if overwrite:
        return
    if marker["kind"] != kind:
        raise ValueError(
            f"Output folder {folder} is {KINDS[marker['kind']]} dcign wrote, not {what}, so "
            f"nothing was changed{offer} a new or empty folder."
        )
    if reuse:
        return
    foreign = sorted(entries - set(marker["files"]) - {MARKER})
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise ValueError(
            f"Output folder {folder} holds {foreign[0]}{more}, which dcign did not write there, "
            f"so nothing was changed{offer.replace('replace it', 'replace the whole folder')} "
            "a new folder."
        )
    if marker.get("origin") != origin:
        made_from = marker.get("origin") or "another source"
        raise ValueError(
            f"Output folder {folder} is {what} dcign made from {made_from}, so nothing was "
            f"changed{offer} a new folder."
        )


def install_folder(staging, target, kind="preset", overwrite=None, legacy=None, origin=None):
    """Moves a finished `staging` folder to `target` under the write rule.

    A new `target` is a rename; an empty one receives the staged entries (it
    may be the current folder, which cannot be renamed over); one that
    `check_output_folder` accepts is swapped out in one rename and then deleted.

    Returns:
        `target` as a `Path`.
    """
    staging, target = Path(staging), Path(target).absolute()
    check_output_folder(target, kind, overwrite, legacy=legacy, origin=origin)
    if not target.exists():
        os.replace(staging, target)
    elif not any(target.iterdir()):
        for entry in staging.iterdir():
            os.replace(entry, target / entry.name)
        staging.rmdir()
    else:
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.replace(target, old / target.name)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    return target


def check_output_file(path, overwrite=None, named=True):
    """Refuses to replace a file this package did not write.

    An existing file is replaced only when it carries the package's mark
    (`image_mark`) or the user passed `--overwrite`.

    Args:
        path: the file about to be written.
        overwrite: the user passed `--overwrite` (None: the command has no such option).
        named: the user named `path`; False for a name the command chose (a
            default beside the input, a grid beside a GIF, a comparison beside a
            picture).

    Raises:
        ValueError: one line naming the file and what was expected.
    """
    path = Path(path)
    check_not_installed(path)
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_dir():
        raise ValueError(f"Output {path} is a folder; expected a file name.")
    if overwrite or is_own_file(path):
        return
    whose = "" if named else " (a name dcign chose)"
    offer = "; pass --overwrite to replace it, or choose" if overwrite is not None else "; choose"
    raise ValueError(
        f"Output {path}{whose} already exists and was not written by dcign, so nothing was "
        f"changed{offer} another name."
    )


def image_mark(image_format):
    """Keyword arguments for Pillow's `Image.save` that mark an image as this package's."""
    text = f"{WRITER} {__version__}"
    if image_format == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Software", text)
        return {"pnginfo": info}
    return {"comment": text}  # GIF and JPEG comments


def is_own_file(path):
    """Whether `path` is an image this package wrote (it carries `image_mark`'s text)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            text = image.info.get("Software") or image.info.get("comment")
    except Exception:  # anything Pillow cannot open is not one of ours
        return False
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return isinstance(text, str) and text.startswith(WRITER + " ")


@contextlib.contextmanager
def removed_on_failure(folder, keep=None):
    """Removes `folder`, and the parents made for it, when the block fails and it is new.

    Args:
        folder: a folder the block may create.
        keep: `folder -> bool`, whether what a failed block left is worth keeping
            (a run with a checkpoint to resume).
    """
    new = _missing_folders(folder)
    try:
        yield
    except BaseException:
        if new and not (keep is not None and Path(folder).is_dir() and keep(Path(folder))):
            shutil.rmtree(new[-1], ignore_errors=True)
        raise


def _missing_folders(folder):
    """`folder` and its parents that do not exist yet, innermost first."""
    missing = []
    folder = Path(folder).absolute()
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def check_distinct(outputs, inputs, replaced=False):
    """Refuses outputs that would overwrite an input.

    Args:
        outputs: paths about to be written.
        inputs: paths the command reads.
        replaced: the outputs are folders that will be replaced as a whole,
            so an input inside one collides too.

    Raises:
        ValueError: naming the first output that collides with an input.
    """
    for output in outputs:
        for source in inputs:
            above = replaced and Path(output).resolve() in Path(source).resolve().parents
            if above or _same(output, source):
                raise ValueError(
                    f"Output {output} would overwrite the input {source}; choose another output."
                )


def check_writable(paths):
    """Fails early, naming the path, when a file cannot be created beside each of `paths`."""
    for path in paths:
        folder = Path(path).parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise ValueError(f"Output folder {folder} does not exist or is not writable.")
        try:
            handle, probe = tempfile.mkstemp(prefix=".dcign-probe.", dir=folder)
        except OSError as error:
            raise ValueError(f"Output {path} is not writable: {error.strerror or error}.") from None
        os.close(handle)
        os.unlink(probe)


def _same(a, b):
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links and bind mounts
    except OSError:
        return False


def atomic_write(path, data):
    """Writes a file whole or not at all: a temporary file beside it, renamed into place.

    Args:
        path: the file to write (its folder must exist).
        data: `bytes`, `str` (written as UTF-8), or a function that writes to
            the binary handle it is given (opened for reading too, as HDF5 needs).

    Returns:
        `path` as a `Path`.

    Raises:
        ValueError: the folder is missing or not writable (naming `path`).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise ValueError(f"Output folder {folder} does not exist or is not writable.")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as error:
        raise ValueError(f"Output {path} is not writable: {error.strerror or error}.") from None
    try:
        with os.fdopen(handle, "w+b") as stream:
            if callable(data):
                data(stream)
            else:
                stream.write(data.encode() if isinstance(data, str) else data)
        os.chmod(temporary, 0o644 & ~_umask())
        os.replace(temporary, path)
    except OSError as error:
        # Name the file the user asked for, not the temporary one beside it.
        raise ValueError(f"Output {path} is not writable: {error.strerror or error}.") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


@contextlib.contextmanager
def atomic_folder(target, kind="preset", overwrite=None, legacy=None, origin=None):
    """Yields a new temporary folder beside `target`; on success it replaces `target`.

    The finished folder is marked (`mark_folder`) and installed by
    `install_folder` under the write rule (`check_output_folder`'s arguments);
    on an error (or Ctrl-C) it is removed, with any parent folder made for it,
    and `target` is left as it was.
    """
    target = Path(target)
    check_output_folder(target, kind, overwrite, legacy=legacy, origin=origin)
    parent = target.absolute().parent
    with removed_on_failure(parent):
        try:
            parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
        except OSError as error:
            raise ValueError(
                f"Output folder {target} cannot be written: {error.strerror or error}."
            ) from None
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; outputs are shared
        try:
            yield staging
            mark_folder(staging, kind, origin=origin)
            install_folder(staging, target, kind, overwrite, legacy, origin)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
