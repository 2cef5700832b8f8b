"""Fits the intrinsic directions of preset folders written before `dcign train` stored them.

Usage:

    python tools/fit_directions.py zoo/faces_64 zoo/faces_64_entangled zoo/faces_basel

Writes `intrinsic_directions.json` into each folder (what `dcign train` writes into every
preset it trains), for `dcign traverse --factor intrinsic`.
"""

import argparse

import keras_dcign
from keras_dcign.directions import fit_intrinsic_directions, save_intrinsic_directions


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="+", help="preset folders")
    for folder in parser.parse_args().presets:
        model = keras_dcign.from_preset(folder)
        print(save_intrinsic_directions(folder, fit_intrinsic_directions(model)), flush=True)


if __name__ == "__main__":
    main()
