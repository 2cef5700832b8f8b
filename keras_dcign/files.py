"""The package's rules for the user's files: what it reads, and what it may replace.

Three rules, one place each:

- `read_json_object`: preset and checkpoint JSON is read by one validating reader whose
  errors name the file and the missing key.
- `check_output_folder` / `install_folder`: a folder is replaced only when it is new, empty,
  or one this package wrote (recognised by its own metadata); a non-empty foreign folder is
  refused, never emptied.
- `check_distinct`: no output path may be an input path (nor hold one, when it is a
  folder to be replaced).

And one way to write: `atomic_write` (a file) and `atomic_folder` (a folder) write under a
temporary name beside the target and rename it into place, so a killed process leaves either
the old file or the new one, never half of one. Every writer in the package goes through them.
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path


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
    """Whether `folder` is a preset this package wrote: its `metadata.json` says so."""
    try:
        metadata = json.loads((Path(folder) / _PRESET_METADATA_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(metadata, dict)
        and metadata.get("class_name") == "DCIGN"
        and "keras_dcign_version" in metadata
    )


def check_output_folder(folder, ours=is_preset_folder, what="a preset folder"):
    """Refuses an output folder this package may not replace.

    Args:
        folder: the folder about to be written.
        ours: `folder -> bool`, whether an existing folder was written by
            this package and may be replaced.
        what: what `ours` recognises, for the message.

    Raises:
        ValueError: `folder` is a file, or a non-empty folder that `ours`
            does not recognise.
    """
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ValueError(f"Output {folder} is a file; expected a new or empty folder.")
    if any(folder.iterdir()) and not ours(folder):
        raise ValueError(
            f"Output folder {folder} is not empty and is not {what}; nothing was changed. "
            "Expected a new or empty folder."
        )


def install_folder(staging, target, ours=is_preset_folder, what="a preset folder"):
    """Moves a finished `staging` folder to `target` under the output-folder rule.

    A new `target` is a rename; an empty one receives the staged entries (it
    may be the current folder, which cannot be renamed over); one of ours is
    swapped out in one rename and then deleted.

    Returns:
        `target` as a `Path`.
    """
    staging, target = Path(staging), Path(target).absolute()
    check_output_folder(target, ours, what)
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
def atomic_folder(target, ours=is_preset_folder, what="a preset folder"):
    """Yields a new temporary folder beside `target`; on success it replaces `target`.

    The folder is installed by `install_folder` under the output-folder rule
    (`ours`, `what`); on an error (or Ctrl-C) it is removed and `target` is
    left as it was.
    """
    target = Path(target)
    check_output_folder(target, ours, what)
    target.absolute().parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.absolute().parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; outputs are meant to be shared
    try:
        yield staging
        install_folder(staging, target, ours, what)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
