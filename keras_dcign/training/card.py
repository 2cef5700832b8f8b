"""The model card of a trained preset, and the machine it was trained on."""

import os
import platform

import keras

from keras_dcign.training.recipes import Recipe


def model_card(config, metadata):
    """The markdown model card of a preset trained by `train`."""
    recipe_ = Recipe.from_saved(metadata["recipe"])
    seed = metadata["recipe"].get("seed", 0)
    command = metadata.get("command") or f"dcign train --dataset faces --recipe {config}"
    r2 = metadata["calibration_r2"]
    logs = metadata.get("final_logs", {})
    check = metadata.get("relight_check", {})
    entangled = not recipe_.monovariant
    lines = [
        f"# {config}"
        + ("_entangled" if entangled else "")
        + ("" if recipe_.code == "paper" else f"_{recipe_.code}"),
        "",
        f"DC-IGN at {recipe_.image_size}x{recipe_.image_size} px, "
        f"{_stack_words(recipe_, metadata)}, {recipe_.feature_maps} feature maps, a "
        f"{_code_words(recipe_.code)}; "
        f"{_likelihood_words(recipe_)}.",
        "",
        *(
            [
                "Its intrinsic units are two groups, the face's shape and its texture (albedo), "
                "trained on batches that vary only the one (SHAPE_ONLY, TEXTURE_ONLY): "
                "`model.rerender(images, shape_from=..., texture_from=...)` and `dcign render "
                "--shape-from/--texture-from` swap them.",
                "",
            ]
            if recipe_.code == "shape_texture"
            else []
        ),
        *(
            [
                "This is the paper's entangled baseline: the same network trained as a plain VAE "
                "on batches in which every factor varies. Its azimuth/elevation/light units are "
                "the units that vary most over each factor's sweeps.",
                "",
            ]
            if entangled
            else []
        ),
        "## Data",
        "",
        "Trained on the package's own procedurally generated faces "
        "(`keras_dcign.datasets.faces`), not on Basel Face Model renders: the Basel Face Model "
        "is licence-restricted and the paper's rendered dataset cannot be fetched here. The "
        "generator gives exact ground truth for pose, light and identity. Test identities are "
        "never seen in training.",
        "",
        "## Recipe",
        "",
        f"- command: `{command}`",
        f"- steps: {metadata['steps']} of {_per_step(recipe_)}; seed {seed}",
        f"- clamp {recipe_.clamp}, invariance strength {recipe_.invariance_strength}, "
        f"shape bias {recipe_.shape_bias}, KL weight {recipe_.kl_weight}, "
        f"Adam learning rate {recipe_.learning_rate}"
        + (
            f" (cosine decay to 5% over the last {recipe_.lr_decay:.0%} of the steps)"
            if recipe_.lr_decay
            else ""
        )
        + (
            f", {recipe_.plain_fraction:.0%} of the monovariant phase's batches plain-VAE "
            "MIXED batches"
            if recipe_.plain_fraction
            else ""
        )
        + (f", started from the weights of `{recipe_.init_from}`" if recipe_.init_from else "")
        + (
            f", the first {recipe_.pretrain_steps} steps as a plain VAE on "
            + ("MIXED batches" if recipe_.pretrain_data == "mixed" else "the monovariant batches")
            if recipe_.pretrain_steps
            else ""
        ),
        f"- images seen: {metadata['steps'] * recipe_.images_per_step:,}",
        *_lineage_lines(metadata),
        (
            f"- training time: {metadata['train_seconds_this_run']} s "
            f"({metadata.get('images_per_second_this_run')} images/s) on {metadata['machine']}"
            if metadata.get("images_per_second_this_run")
            else f"- resumed from its final checkpoint on {metadata['machine']}: no training "
            "time was measured in the run that wrote this preset"
        ),
        *_compute_lines(metadata),
        "",
        "## Measured",
        "",
        *(
            [
                f"- final training loss {logs['loss']:.1f} (reconstruction "
                f"{logs['reconstruction']:.1f}, KL {logs['kl']:.1f}), mean of the last epoch"
            ]
            if logs
            else []
        ),
        *(
            [f"- learned likelihood sigma: {metadata['learned_sigma']}"]
            if metadata.get("learned_sigma")
            else []
        ),
        *(
            [
                "- reconstruction MSE of 64 held-out people at random pose and light: "
                f"{metadata['heldout_reconstruction_mse']:.5f}"
            ]
            if "heldout_reconstruction_mse" in metadata
            else []
        ),
        "- calibration R² on held-out sweeps: "
        + ", ".join(f"{factor} {value:.3f}" for factor, value in r2.items()),
        f"- relight check (left-minus-right brightness of 8 frontal test faces): light=left "
        f"{check.get('left', float('nan')):+.4f}, "
        f"light=right {check.get('right', float('nan')):+.4f}",
        "",
        "## Limits",
        "",
        "Grayscale generated faces on a black background: photos differ in lighting, hair, "
        "background and identity statistics, so re-rendering real photos is approximate. "
        "Angles outside the calibrated range are refused.",
        "",
    ]
    return "\n".join(lines)


def _compute_lines(metadata):
    """How the run computed on its machine, and why (its recipe may have said "auto")."""
    compute = metadata.get("compute")
    if not compute:
        return []
    jit = {True: "on", False: "off"}.get(compute["jit_compile"], "the backend's own")
    return [
        f"- computed in {compute['precision']} ({compute['precision_why']}); XLA {jit} "
        f"({compute['jit_compile_why']})"
    ]


def _lineage_lines(metadata):
    """The segments a preset was trained in, when it continued another preset's weights."""
    lineage = metadata.get("lineage", [])
    if len(lineage) < 2:
        return []
    lines = [
        f"- images seen in all, over {len(lineage)} segments: {metadata['images_seen_in_all']:,}"
    ]
    for number, segment in enumerate(lineage, 1):
        made = f", which made `{segment['preset']}`" if segment.get("preset") else ""
        command = f"`{segment['command']}`" if segment.get("command") else "no command recorded"
        lines.append(f"  {number}. {segment['images']:,} images: {command}{made}")
    return lines


def _code_words(layout):
    """The graphics code in words: "200-unit graphics code (azimuth, ..., 197 intrinsic)"."""
    from keras_dcign.graphics_code import GraphicsCode

    code = GraphicsCode.named(layout)
    groups = ", ".join(name if size == 1 else f"{size} {name}" for name, size in code)
    return f"{code.size}-unit graphics code ({groups})"


def _stack_words(recipe_, metadata):
    if recipe_.architecture == "strided":
        stages = metadata.get("strided_stages")
        stages = f"{stages} " if stages else ""
        return f"a strided conv stack ({stages}stride-2 4x4 convolutions and transposes)"
    return "the paper's conv stack"


def _likelihood_words(recipe_):
    if recipe_.reconstruction == "bernoulli":
        return "Bernoulli pixel likelihood, as the paper"
    scale = recipe_.gaussian_scale
    if scale == "learned":
        return "Gaussian pixel likelihood with one learned shared sigma (a calibrated decoder)"
    if scale == "analytic":
        return "Gaussian pixel likelihood with the batch-optimal shared sigma"
    return f"Gaussian pixel likelihood, sigma {scale}"


def describe_machine():
    """CPU cores and model, accelerator and Keras backend, for model cards."""
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    backend = keras.backend.backend()
    accelerator = "no GPU"
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            accelerator = device.device_kind
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            accelerator = torch.cuda.get_device_name(0)
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            accelerator = gpus[0].name
    return f"{os.cpu_count()} CPU cores ({cpu}), {accelerator}, Keras backend {backend}"


def _per_step(recipe_):
    """What one step trains on: a batch, or several monovariant batches side by side."""
    if recipe_.batches_per_step == 1:
        return f"batch {recipe_.batch_size}"
    return f"{recipe_.batches_per_step} batches of {recipe_.batch_size} side by side"
