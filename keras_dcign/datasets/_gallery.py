"""A contact sheet of the face generator: one row per factor sweep, one of people."""

import numpy as np

from keras_dcign.datasets import _face_model, _render, _streams


def gallery(path=None, image_size=150, identity=None, people=None, columns=8):
    """Pictures of every factor: azimuth, elevation and light sweeps, then people.

    Args:
        path: where to save the sheet as PNG (None: do not save); an existing
            file is replaced only when this package wrote it.
        image_size: side of each picture in pixels.
        identity: the person of the sweeps (default: of the first 100 test
            people, the one closest to the mean face).
        people: the people of the last row (default: the first `columns` test people).
        columns: pictures per row.

    Returns:
        The sheet, uint8 (4 * image_size, columns * image_size).
    """
    if path is not None:
        from keras_dcign.files import check_output_file

        check_output_file(path)
    test = _streams.identities("test")
    if identity is None:
        norms = [np.linalg.norm(_face_model.coefficients(i)) for i in test[:100]]
        identity = int(test[int(np.argmin(norms))])
    people = test[:columns] if people is None else np.asarray(people)
    rows = [
        _render.render_batch(
            identity,
            np.linspace(*_streams.AZIMUTH_RANGE, columns),
            0.0,
            0.0,
            image_size,
            _render.LIGHT_ELEVATION,
            "grayscale",
        ),
        _render.render_batch(
            identity,
            0.0,
            np.linspace(*_streams.ELEVATION_RANGE, columns),
            0.0,
            image_size,
            _render.LIGHT_ELEVATION,
            "grayscale",
        ),
        _render.render_batch(
            identity,
            0.0,
            0.0,
            np.linspace(*_streams.LIGHT_RANGE, columns),
            image_size,
            _render.LIGHT_ELEVATION,
            "grayscale",
        ),
        _render.render_batch(
            people, 0.0, 0.0, 0.0, image_size, _render.LIGHT_ELEVATION, "grayscale"
        ),
    ]
    sheet = np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)
    sheet = np.round(sheet * 255.0).astype(np.uint8)
    if path is not None:
        from PIL import Image

        from keras_dcign.files import atomic_write, image_mark

        picture = Image.fromarray(sheet)
        atomic_write(path, lambda handle: picture.save(handle, "PNG", **image_mark("PNG")))
    return sheet
