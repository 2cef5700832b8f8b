"""Loading the library from the command line: after the Keras backend is chosen, and with
the backend's import-time native log lines left out of the command's stderr."""

import os
import re
import sys
import tempfile

# TensorFlow's C++ start-up lines (absl/glog INFO lines and their notice), which
# TF_CPP_MIN_LOG_LEVEL no longer reaches: they would bury a command's one-line error.
_NATIVE_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+ +\d+ \S+:\d+\] "
    r"|To enable the following instructions: )"
)


def import_library():
    """Imports `keras_dcign` (hence Keras and the backend in `$KERAS_BACKEND`) once.

    Whatever the import writes to the stderr file descriptor is passed on,
    except `_NATIVE_NOISE` lines.
    """
    if "keras_dcign" in sys.modules:
        return sys.modules["keras_dcign"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras_dcign
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
