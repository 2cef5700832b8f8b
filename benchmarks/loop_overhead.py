"""What `dcign train`'s loop costs over the bare training step, per Keras backend.

Usage:

    python benchmarks/loop_overhead.py
    python benchmarks/loop_overhead.py --backends jax --steps 200 --rounds 5

Each backend runs in its own process (the Keras backend is fixed at import). The process
builds the faces_64 recipe's model exactly as `dcign train` does (`build_model`, with the
recipe's "auto" precision and compile mode for this machine), takes `--steps` batches of
the recipe's cached generated faces from the monovariant phase, and times, in `--rounds`
interleaved rounds on the same batches:

- `train_on_batch`: the bare step, one call per batch;
- `fit (no callbacks)`: `model.fit` over the same batches in `dcign train`'s epochs;
- `fit as dcign train`: the same with the run's callbacks, a checkpoint every
  `--checkpoint-every` steps (into a temporary folder) and the rich progress bar.

The table gives each row's images/s (the median round) and its cost over the bare step.
The target is a loop that costs under 10% over the bare step.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

BACKENDS = ("tensorflow", "jax", "torch")
RECIPE = "faces_64"
ROWS = ("train_on_batch", "fit (no callbacks)", "fit as dcign train")
BASELINE = "train_on_batch"
MAX_OVERHEAD = 0.10


def worker(backend, steps, rounds, checkpoint_every):
    os.environ["KERAS_BACKEND"] = backend
    from keras_dcign.training.callbacks import TrainingProgress
    from keras_dcign.training.checkpoint import CheckpointEvery
    from keras_dcign.training.data import batch_source
    from keras_dcign.training.loop import build_model, epoch_steps
    from keras_dcign.training.recipes import recipe

    settings = recipe(RECIPE)
    chunk = epoch_steps(steps, checkpoint_every)
    source = batch_source(settings, None, 0, 0, False, chunk)
    stream = source(settings.pretrain_steps)
    batches = [next(stream) for _ in range(steps)]
    model = build_model(settings, seed=0)
    per_step = settings.images_per_step

    def cycle():
        while True:
            yield from batches

    def bare():
        for images, groups in batches:
            model.train_on_batch(images, groups)

    def fit(callbacks):
        def run():
            model.fit(
                cycle(),
                steps_per_epoch=chunk,
                epochs=steps // chunk,
                callbacks=callbacks(),
                shuffle=False,
                verbose=0,
            )

        return run

    folder = tempfile.mkdtemp(prefix="dcign-loop-")

    def train_callbacks():
        return [
            CheckpointEvery(folder, checkpoint_every),
            TrainingProgress(steps, 0, per_step),
        ]

    runs = {
        "train_on_batch": bare,
        "fit (no callbacks)": fit(lambda: []),
        "fit as dcign train": fit(train_callbacks),
    }
    for run in runs.values():  # warm-up: tracing and compilation are not timed
        run()
    seconds = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            began = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - began)
    return {name: per_step * steps / statistics.median(times) for name, times in seconds.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--steps", type=int, default=100, help="timed steps per row and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = worker(args.worker, args.steps, args.rounds, args.checkpoint_every)
        print(json.dumps(result))
        return
    backends = [b for b in args.backends.split(",") if b]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        raise SystemExit(f"--backends has {unknown}; expected some of {list(BACKENDS)}.")
    print(f"| backend | row | images/s | cost over {BASELINE} |\n|:--|:--|--:|--:|", flush=True)
    failed = []
    for backend in backends:
        command = [
            sys.executable, __file__, "--worker", backend, "--steps", str(args.steps),
            "--rounds", str(args.rounds), "--checkpoint-every", str(args.checkpoint_every),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            print(f"| {backend} | failed: {tail[0]} | | |")
            failed.append(backend)
            continue
        rates = json.loads(done.stdout.strip().splitlines()[-1])
        for row in ROWS:
            cost = rates[BASELINE] / rates[row] - 1.0
            print(f"| {backend} | {row} | {rates[row]:.0f} | {cost:+.1%} |")
        loop = rates[BASELINE] / rates["fit as dcign train"] - 1.0
        verdict = "met" if loop < MAX_OVERHEAD else "missed"
        print(f"|  | loop cost target < {MAX_OVERHEAD:.0%} | | {verdict} |", flush=True)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
