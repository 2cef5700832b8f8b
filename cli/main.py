"""The `dcign` command: a thin Click shell around the library.

Keras is imported only inside commands that need it, so `dcign --help` and
`dcign --version` answer at once.
"""

import os
import sys

import click

from keras_dcign.version import __version__

BACKENDS = ("tensorflow", "jax", "torch")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dcign")
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    help="Keras backend (default: $KERAS_BACKEND or tensorflow).",
)
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx, backend, debug):
    """DC-IGN: learn a graphics code of faces and re-render them with new pose or light."""
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    ctx.obj = {"debug": debug}


def main(argv=None):
    """Entry point of the `dcign` console script."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=argv, prog_name="dcign", standalone_mode=False)
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except (ValueError, OSError, RuntimeError) as error:
        if debug:
            raise
        click.echo(f"Error: {error}", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
