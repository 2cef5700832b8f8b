"""Makes docs/images/rerender_example.png: input, light left/right and an azimuth sweep.

Run: python tools/figures.py [--preset faces_64]
"""

import argparse
from pathlib import Path

import keras
import numpy as np

import keras_dcign
from keras_dcign.datasets import faces
from keras_dcign.image_files import save_image


def rerender_example(preset, out, people=3):
    model = keras_dcign.from_preset(preset)
    size = model.image_size
    who = np.asarray(faces.identities("test"))[:people]
    images = faces.render(who, image_size=size)[..., None].astype("float32")
    columns = [images, keras.ops.convert_to_numpy(model(images))]
    for light in ("left", "right"):
        columns.append(keras.ops.convert_to_numpy(model.rerender(images, light=light)))
    for azimuth in (-60.0, -30.0, 30.0, 60.0):
        columns.append(keras.ops.convert_to_numpy(model.rerender(images, azimuth=azimuth)))
    rows = [np.concatenate([c[i] for c in columns], axis=1) for i in range(people)]
    return save_image(np.concatenate(rows, axis=0), out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="faces_64")
    parser.add_argument(
        "--out",
        default=str(
            Path(__file__).resolve().parent.parent / "docs" / "images" / "rerender_example.png"
        ),
    )
    args = parser.parse_args()
    print(rerender_example(args.preset, args.out))
