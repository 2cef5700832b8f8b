"""`dcign import-torch7`: the authors' Torch7 network as a keras_dcign preset."""

import click
from keras_dcign_cli.library import import_library


@click.command("import-torch7")
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Preset folder to write (default: the cache under $KERAS_HOME).",
)
@click.option(
    "--latents",
    type=click.IntRange(min=4),
    default=None,
    help="Code size, only if the vector fits several layouts (release: 200).",
)
@click.option(
    "--feature-maps",
    type=click.IntRange(min=4),
    default=None,
    help="First convolution's maps, likewise (release: 96).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an --out folder that dcign wrote even when it holds other files.",
)
def import_torch7(path, out, latents, feature_maps, overwrite):
    """Convert a Torch7 DC-IGN network (release zip, its folder or parameters.t7) to a preset."""
    from keras_dcign.torch7 import check_out
    from keras_dcign.torch7 import import_torch7 as convert

    if out is not None:
        check_out(path, out, overwrite)  # before Keras loads
    import_library()

    folder = convert(path, out, latents, feature_maps, overwrite)
    click.echo(str(folder))
