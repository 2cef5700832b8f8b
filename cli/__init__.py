"""The `dcign` command line (installed as `keras_dcign_cli`).

A package of its own, beside `keras_dcign`: importing `keras_dcign` loads Keras and registers
the model classes, which `dcign --help` does not need.
"""
