"""The `dcign` command: a thin Click shell around the library.

Keras is imported only inside commands that need it, so `dcign --help` and
`dcign --version` answer at once.
"""

import os
import re
import sys
from pathlib import Path

import click
from keras_dcign_cli.library import import_library

from keras_dcign.training.recipes import RECIPES, Recipe

BACKENDS = ("tensorflow", "jax", "torch")


class _Group(click.Group):
    """Turns library errors into one line on stderr and exit status 1 (tracebacks with --debug)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            # Click's normal exit (after --help, for one) is a RuntimeError too.
            raise
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(_one_line(error)) from None


def _one_line(error):
    """An error as one line: the library's own message, or what the system said, in words."""
    text = str(error).strip()
    if isinstance(error, OSError) and error.strerror:
        # "[Errno 28] No space left on device: 'x'" -> "x: No space left on device."
        where = "" if error.filename is None else f"{error.filename}: "
        return f"{where}{error.strerror}."
    found = re.search(r"name = '([^']*)', errno = (\d+)", text)  # h5py's OSError
    if isinstance(error, OSError) and found:
        return f"{found.group(1)}: {os.strerror(int(found.group(2)))}."
    message = text.splitlines()[0] if text else type(error).__name__
    if not isinstance(error, (ValueError, OSError, RuntimeError)):
        # Not one of the library's own errors: say what kind it is.
        message = f"{type(error).__name__}: {message}"
    return message


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
# The version comes from the installed distribution: importing keras_dcign would load Keras.
@click.version_option(package_name="keras-dcign", prog_name="dcign")
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
    _set_backend(backend)
    ctx.obj = {"debug": debug}


def _set_backend(backend):
    if backend:
        os.environ["KERAS_BACKEND"] = backend


def _compared_with_bundled(preset_dir):
    """One line: the run's held-out reconstruction error beside the bundled preset's."""
    import json

    from keras_dcign.presets import resolve_preset

    mine = json.loads((Path(preset_dir) / "metadata.json").read_text())
    bundled = json.loads((resolve_preset("faces_64", progress=False) / "metadata.json").read_text())
    line = f"Held-out reconstruction MSE {mine['heldout_reconstruction_mse']:.5f}"
    theirs = bundled.get("heldout_reconstruction_mse")
    if theirs is None or mine.get("image_size") != bundled.get("image_size"):
        return line + " (dcign evaluate PRESET measures the rest)."
    images = bundled.get("images_seen_in_all") or bundled["steps"] * bundled["recipe"]["batch_size"]
    return (
        f"{line}; the bundled faces_64, trained on {images:,} images, reaches {theirs:.5f} "
        "(dcign zoo info faces_64)."
    )


class _CheckedBySchema(click.ParamType):
    """A recipe setting that its schema checks (a number or a name, for instance)."""

    def __init__(self, name, setting, metavar):
        self._setting = (name, setting)
        self.name = metavar

    def convert(self, value, param, ctx):
        name, setting = self._setting
        try:
            return setting.check(name, value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


def _recipe_options(command):
    """One `dcign train` option per recipe setting, from `Recipe`'s schema (default None: the
    recipe's own value)."""
    for name, setting in reversed(Recipe.settings().items()):
        if setting.kind is bool:
            option = click.option(
                setting.flag,
                name,
                flag_value=not getattr(Recipe(), name),
                default=None,
                help=setting.help,
            )
        else:
            option = click.option(
                "--" + name.replace("_", "-"),
                name,
                type=_option_type(name, setting),
                default=None,
                metavar="PRESET" if setting.kind == "preset" else None,
                help=setting.help,
            )
        command = option(command)
    return command


def _option_type(name, setting):
    """The Click type that checks a recipe setting on the command line."""
    if setting.kind == "scale":
        return _CheckedBySchema(name, setting, "SIGMA|LEARNED|ANALYTIC")
    if setting.choices:
        return click.Choice(setting.choices)
    if setting.kind in (int, float):
        kind = click.IntRange if setting.kind is int else click.FloatRange
        extra = {"min_open": setting.min_open} if setting.kind is float else {}
        return kind(min=setting.minimum, max=setting.maximum, **extra)
    return click.STRING


OVERWRITE_HELP = (
    "Replace existing outputs that dcign did not write, or that hold other files "
    "(never the installed package's)."
)


def _console():
    from rich.console import Console

    return Console(stderr=True)


@cli.command()
@click.option("--dataset", type=click.Choice(["faces"]), default="faces", show_default=True)
@click.option(
    "--recipe",
    "config",
    type=click.Choice(list(RECIPES)),
    default=None,
    help="Training recipe (see docs/recipes.md).  [default: faces_64]",
)
@click.option("--config", "config_alias", type=click.Choice(list(RECIPES)), hidden=True)
@_recipe_options
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Run folder (default: runs/<recipe>).",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option(
    "--data-dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Train on a dataset in the reference layout instead.",
)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Render batches on the fly with this many processes (no cache).",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop after this many minutes, then calibrate and write the preset.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--backend",
    "command_backend",
    type=click.Choice(BACKENDS),
    default=None,
    is_eager=True,
    expose_value=False,
    callback=lambda ctx, param, value: _set_backend(value),
    help="Keras backend for this run.",
)
def train(config, config_alias, out, **options):
    """Train a DC-IGN on generated faces and write a calibrated preset."""
    if config and config_alias and config != config_alias:
        raise click.UsageError(
            f"--recipe {config} and --config {config_alias} disagree; pass --recipe alone."
        )
    config = config or config_alias or "faces_64"
    from keras_dcign.files import check_output_folder, removed_on_failure

    out = out or os.path.join("runs", config)
    # Before Keras loads: what is surely not a run folder (train() checks the rest).
    check_output_folder(out, "run", reuse=True, legacy=lambda f: (f / "checkpoints").is_dir())
    import_library(tensorflow=True)
    from keras_dcign.training import train as run

    command = "dcign " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("dcign") else None
    # A failed run leaves no folder it made, unless it has a checkpoint to resume.
    with removed_on_failure(out, keep=lambda f: any((f / "checkpoints").glob("step-*"))):
        result = run(out=out, config=config, command=command, **options)
    resumed = (
        f"Resumed from step {result.resumed_from}; trained {result.steps} more steps "
        f"(to step {result.resumed_from + result.steps})"
        if result.resumed_from
        else f"Trained {result.steps} steps"
    )
    click.echo(f"{resumed} in {result.seconds:.0f} s; preset written to {result.preset_dir}")
    click.echo(_compared_with_bundled(result.preset_dir))


@cli.command()
@click.argument("source")
@click.option(
    "--dest",
    type=click.Path(file_okay=False),
    default=None,
    help="Copy the preset (or save the file) here.",
)
@click.option("--sha256", default=None, help="Expected checksum of a plain URL.")
@click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)
def download(source, dest, sha256, overwrite):
    """Fetch a preset (zoo name or archive URL) or a registry dataset, with resume and checks."""
    from keras_dcign.presets import fetch, list_presets

    if list_presets().get(source, {}).get("source") == "torch7":
        import_library()  # a Torch7 release is converted into a Keras model
    path = fetch(source, dest=dest, sha256=sha256, overwrite=overwrite)
    click.echo(str(path))


FACTOR_HELP = "degrees or {names}"


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--light", default=None, help=FACTOR_HELP.format(names="left|front|right"))
@click.option("--azimuth", default=None, help=FACTOR_HELP.format(names="left|front|right"))
@click.option("--elevation", default=None, help=FACTOR_HELP.format(names="up|level|down"))
@click.option("--preset", default="faces_64", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None)
@click.option(
    "--identity-from",
    type=click.Path(dir_okay=False),
    default=None,
    help="Take the person (identity code) from this image; pose and light stay INPUT's.",
)
@click.option(
    "--shape-from",
    type=click.Path(dir_okay=False),
    default=None,
    help="Take the face's shape from this image (a preset with the shape_texture code).",
)
@click.option(
    "--texture-from",
    type=click.Path(dir_okay=False),
    default=None,
    help="Take the face's texture from this image (a preset with the shape_texture code).",
)
@click.option("--compare", is_flag=True, help="Also write input | reconstruction | re-render.")
@click.option(
    "--crop",
    type=click.Choice(["center", "auto", "none"]),
    default="center",
    show_default=True,
    help="auto finds the face (needs opencv-python-headless<5).",
)
@click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)
def render(
    input_path,
    light,
    azimuth,
    elevation,
    preset,
    out,
    identity_from,
    shape_from,
    texture_from,
    compare,
    crop,
    overwrite,
):
    """Re-render INPUT with a new light, azimuth, elevation, person, shape or texture."""
    from keras_dcign.graphics_code import check_parts
    from keras_dcign.image_files import (
        check_factors,
        parse_factor,
        read_image,
        rerender_file,
        rerender_outputs,
    )
    from keras_dcign.presets import from_preset, load_calibration, read_config, resolve_preset

    values = {"light": light, "azimuth": azimuth, "elevation": elevation}
    changes = {k: parse_factor(v) for k, v in values.items() if v is not None}
    # Every argument is checked before Keras and the model load (seconds), and the input
    # read once.
    outputs = rerender_outputs(
        input_path, changes, out, compare, identity_from, overwrite, shape_from, texture_from
    )
    image = read_image(input_path)
    other = read_image(identity_from) if identity_from else None
    shape_image = read_image(shape_from) if shape_from else None
    texture_image = read_image(texture_from) if texture_from else None
    folder = resolve_preset(preset)
    check_factors(load_calibration(folder), changes)
    check_parts(read_config(folder).get("code"), shape_from=shape_from, texture_from=texture_from)
    import_library()
    written = rerender_file(
        from_preset(folder),
        input_path,
        outputs[0],
        compare,
        crop,
        image=image,
        identity_from=identity_from,
        identity_image=other,
        shape_from=shape_from,
        shape_image=shape_image,
        texture_from=texture_from,
        texture_image=texture_image,
        overwrite=overwrite,
        **changes,
    )
    for path in written:
        click.echo(str(path))


@cli.command()
@click.argument("first", type=click.Path(dir_okay=False))
@click.argument("second", type=click.Path(dir_okay=False))
@click.option("--preset", default="faces_64", show_default=True)
@click.option("--crop", type=click.Choice(["center", "auto", "none"]), default="center")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(first, second, preset, crop, as_json):
    """Say whether FIRST and SECOND show the same person (exit 0 same, 1 different, 2 error).

    The identity codes' cosine similarity is compared with the preset's threshold, fitted on
    held-out people at their equal-error point by `dcign evaluate --update-card`.
    """
    try:
        same, record, value = _verify(first, second, preset, crop)
    except Exception as error:
        if click.get_current_context().find_root().params.get("debug"):
            raise
        click.echo(f"Error: {_one_line(error)}", err=True)
        sys.exit(2)
    if as_json:
        import json

        result = {"same": same, "similarity": value, **record}
        click.echo(json.dumps(result))
    else:
        click.echo(
            f"{'same person' if same else 'different people'}: similarity {value:.3f}, "
            f"threshold {record['threshold']:.3f} (equal error rate "
            f"{record['equal_error_rate']:.1%} on held-out people)"
        )
    sys.exit(0 if same else 1)


def _verify(first, second, preset, crop):
    from keras_dcign.image_files import read_image, to_model_input
    from keras_dcign.presets import from_preset, resolve_preset
    from keras_dcign.verification import load_verification, verify

    images = [read_image(first), read_image(second)]
    folder = resolve_preset(preset)
    record = load_verification(folder)
    import_library()
    model = from_preset(folder)
    a, b = (to_model_input(image, model.image_size, model.channels, crop) for image in images)
    same, values = verify(model, a, b, record["threshold"])
    record = {k: record[k] for k in ("threshold", "equal_error_rate")}
    return bool(same[0]), record, float(values[0])


@cli.command("fit-scene")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--preset", default="faces_64", show_default=True)
@click.option(
    "--statistic",
    type=click.Choice(["code", "pixels", "readout"]),
    default="code",
    show_default=True,
    help="Summary statistic compared between INPUT and each simulated scene.",
)
@click.option("--simulations", type=click.IntRange(min=80), default=2000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="The generator's picture of the fitted scene (default: INPUT_scene.png, new).",
)
@click.option("--crop", type=click.Choice(["center", "auto", "none"]), default="center")
@click.option("--json", "as_json", is_flag=True, help="Print the fit as JSON.")
@click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)
def fit_scene(input_path, preset, statistic, simulations, seed, out, crop, as_json, overwrite):
    """Fit the face generator's scene (pose, light, person) to INPUT by ABC on the DC-IGN code.

    Prints the inferred azimuth, elevation and light in degrees with their posterior
    standard deviation, and writes the generator's own picture of the fitted scene.
    """
    from keras_dcign.files import check_distinct, check_output_file, check_writable
    from keras_dcign.image_files import image_format, read_image, save_image, to_model_input
    from keras_dcign.presets import from_preset, resolve_preset

    path = Path(out) if out else Path(input_path).with_name(f"{Path(input_path).stem}_scene.png")
    image_format(path)
    check_distinct([path], [Path(input_path)])
    check_output_file(path, overwrite, named=out is not None)
    check_writable([path])
    image = read_image(input_path)
    folder = resolve_preset(preset)
    import_library()
    from keras_dcign.inference import fit_scene as fit

    model = from_preset(folder)
    pixels = to_model_input(image, model.image_size, model.channels, crop)
    result = fit(model, pixels, simulations=simulations, statistic=statistic, seed=seed)
    estimate = result.estimate()
    save_image(result.render(image_size=model.image_size), path)
    if as_json:
        import json

        extra = dict(statistic=statistic, simulations=result.simulations, picture=str(path))
        click.echo(json.dumps(dict(estimate, **extra)))
        return
    for angle in ("azimuth", "elevation", "light"):
        click.echo(f"{angle}: {estimate[angle]:+.1f}° ± {estimate[angle + '_std']:.1f}°")
    click.echo(str(path))


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option(
    "--factor",
    type=click.Choice(["light", "azimuth", "elevation", "intrinsic"]),
    required=True,
    help="A calibrated factor, or intrinsic: one of the preset's main directions of identity.",
)
@click.option(
    "--direction",
    type=click.IntRange(min=0),
    default=None,
    help="With --factor intrinsic: which direction (0, the default, is the main one).",
)
@click.option("--frames", type=click.IntRange(min=2), default=24, show_default=True)
@click.option("--preset", default="faces_64", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="The GIF to write.")
@click.option("--crop", type=click.Choice(["center", "auto", "none"]), default="center")
@click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)
def traverse(input_path, factor, direction, frames, preset, out, crop, overwrite):
    """Sweep one factor over its calibrated range, or walk along an intrinsic direction: an
    animated GIF and a PNG grid."""
    if direction is not None and factor != "intrinsic":
        raise click.UsageError(f"--direction goes with --factor intrinsic, not {factor}.")
    intrinsic = factor == "intrinsic"
    direction = direction or 0
    from keras_dcign.directions import load_intrinsic_directions
    from keras_dcign.image_files import check_traversal, read_image, traverse_file, traverse_outputs
    from keras_dcign.presets import from_preset, load_calibration, resolve_preset

    gif, _ = traverse_outputs(input_path, factor, out, direction if intrinsic else None, overwrite)
    image = read_image(input_path)
    folder = resolve_preset(preset)
    directions = load_intrinsic_directions(folder) if intrinsic else None
    if intrinsic and direction >= len(directions["directions"]):
        raise ValueError(
            f"--direction {direction} is invalid; preset {preset} has directions 0 to "
            f"{len(directions['directions']) - 1}."
        )
    if not intrinsic:
        check_traversal(load_calibration(folder), factor, frames)
    import_library()
    model = from_preset(folder)
    gif, grid = traverse_file(
        model,
        input_path,
        factor,
        frames,
        gif,
        crop,
        image=image,
        directions=directions,
        direction=direction,
        overwrite=overwrite,
    )
    click.echo(f"{gif}\n{grid}")


@cli.command()
@click.argument("preset")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for metrics.json and the figures (default: evaluation/<preset name>).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON, not a table.")
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--quick",
    is_flag=True,
    help="Small samples (about a tenth): a fast check, with noisier numbers.",
)
@click.option(
    "--update-card",
    is_flag=True,
    help="Also write metrics.json and an Evaluation section into the preset folder's card "
    "(not a preset installed with the package: copy it with `dcign download NAME --dest DIR`).",
)
@click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)
def evaluate(preset, out, as_json, split, seed, quick, update_card, overwrite):
    """Measure a preset against the generated faces' ground truth (metrics.json, figures)."""
    import json

    from keras_dcign.evaluation import evaluate_preset, report
    from keras_dcign.evaluation.preset import evaluation_outputs

    evaluation_outputs(preset, out, quick, update_card, overwrite)  # before Keras loads
    import_library()
    command = "dcign " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("dcign") else None
    result = evaluate_preset(
        preset,
        out=out,
        split=split,
        seed=seed,
        quick=quick,
        update_card=update_card,
        command=command,
        overwrite=overwrite,
    )
    metrics, out = result.metrics, result.out
    if as_json:
        click.echo(json.dumps({k: v for k, v in metrics.items() if k != "scatter"}, indent=1))
    else:
        from rich.console import Console

        Console().print(report.rich_table(metrics, title=f"dcign evaluate {preset}"))
        click.echo(f"Metrics and figures written to {out}")


@cli.group()
def zoo():
    """List and describe the bundled presets."""


@zoo.command("list")
def zoo_list():
    """A table of the presets in the zoo (tab-separated lines when stdout is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    from keras_dcign.presets import list_presets

    columns = ("name", "image size", "parameters", "source", "description")
    rows = [
        (
            name,
            str(entry["image_size"]),
            f"{entry['parameters']:,}",
            "bundled" if entry["source"] == "bundled" else "download",
            entry["description"],
        )
        for name, entry in list_presets().items()
    ]
    if not sys.stdout.isatty():  # a pipe or a file: whole names, one preset a line
        for row in (columns, *rows):
            click.echo("\t".join(row))
        return
    table = Table(title="keras-dcign zoo")
    for column in columns:
        table.add_column(column, no_wrap=column == "name")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@zoo.command("info")
@click.argument("name")
def zoo_info(name):
    """Show a preset's model card."""
    from rich.console import Console
    from rich.markdown import Markdown

    from keras_dcign.presets import model_card

    Console().print(Markdown(model_card(name)))


@cli.group()
def data():
    """Generate and export datasets."""


@data.command("generate")
@click.argument("dataset", type=click.Choice(["faces"]))
@click.option("--size", type=click.IntRange(min=16), default=64, show_default=True)
@click.option("--batches", type=click.IntRange(min=1), default=1200, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=20, show_default=True)
@click.option("--split", type=click.Choice(["train", "test"]), default="train")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True)
def data_generate(dataset, size, batches, batch_size, split, seed, out):
    """Render a dataset once and cache it as compressed shards."""
    from keras_dcign.datasets import faces

    path = faces.generate(
        out, image_size=size, n_batches=batches, batch_size=batch_size, split=split, seed=seed
    )
    click.echo(str(path))


@data.command("export")
@click.option("--out", type=click.Path(file_okay=False), required=True)
@click.option("--size", type=click.IntRange(min=16), default=150, show_default=True)
@click.option(
    "--batches",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Batches per kind and split.",
)
@click.option("--seed", type=int, default=0, show_default=True)
def data_export(out, size, batches, seed):
    """Write generated faces in the original DC-IGN dataset layout (PNG batch folders)."""
    from keras_dcign.datasets import faces

    path = faces.export_reference_layout(out, image_size=size, n_batches=batches, seed=seed)
    click.echo(str(path))


def _register_extra_commands():
    from keras_dcign_cli.torch7 import import_torch7 as import_torch7_command

    cli.add_command(import_torch7_command)


_register_extra_commands()


def main(argv=None):
    """Entry point of the `dcign` console script."""
    return cli.main(args=argv, prog_name="dcign")


if __name__ == "__main__":
    main()
