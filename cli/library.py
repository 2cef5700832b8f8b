"""Loading the library from the command line: after the Keras backend is chosen, and with
the backend's import-time native log lines left out of the command's stderr."""

import os
import re
import sys
import tempfile

import click

# TensorFlow's C++ start-up lines (absl/glog lines and their notice, such as a CPU machine's
# failed CUDA probe), which TF_CPP_MIN_LOG_LEVEL no longer reaches: they would bury a
# command's one-line error.
_NATIVE_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\] "
    r"|To enable the following instructions: )"
)


def import_library(tensorflow=False):
    """Imports `keras_dcign` with Keras and the backend in `$KERAS_BACKEND`, once.

    Whatever the import (and TensorFlow's look for devices, which logs too)
    writes to the stderr file descriptor is passed on, except `_NATIVE_NOISE`
    lines (all of it with `dcign --debug`).

    Args:
        tensorflow: also load TensorFlow, where installed, whatever the backend:
            `keras.utils.set_random_seed` (training) seeds it when it can.
    """
    import keras_dcign  # its own modules load without Keras; Keras registers them

    if "keras" in sys.modules:
        return keras_dcign
    context = click.get_current_context(silent=True)
    if context is not None and context.find_root().params.get("debug"):
        import keras  # noqa: F401

        return keras_dcign
    if not os.environ.get("TF_CPP_MIN_LOG_LEVEL"):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # TensorFlow's later INFO lines too
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras

            if tensorflow or keras.backend.backend() == "tensorflow":
                _load_tensorflow()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not _NATIVE_NOISE.match(line):
                    sys.stderr.write(line)
            sys.stderr.flush()
    return keras_dcign


def _load_tensorflow():
    try:
        import tensorflow as tf
    except ImportError:
        return
    tf.config.list_physical_devices()
