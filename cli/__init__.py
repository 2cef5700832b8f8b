"""The `dcign` command line (installed as `keras_dcign.cli`)."""
