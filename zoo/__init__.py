"""The preset registry (installed as `keras_dcign.zoo`): one folder per preset."""

from pathlib import Path

ZOO_DIR = Path(__file__).resolve().parent
