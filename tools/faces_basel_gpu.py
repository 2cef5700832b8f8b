"""Train `faces_basel` (the paper's network and recipe, 150²) on one GPU in one 10-minute job.

Usage, on a GPU machine that has JAX but no network (wheels carried in `.whl/`):

    python tools/faces_basel_gpu.py --out OUT_DIR
    python tools/faces_basel_gpu.py --tiny --out /tmp/smoke      # a CPU smoke test, ~1 minute

Prepare the wheels on a machine with the registries: `pip download -d .whl keras click rich
h5py pillow namex optree ml-dtypes` (what the GPU machine lacks); the script installs the
package from the working tree with `--no-index --find-links .whl` when `.whl/` exists.

Steps: render the 150² training cache with every core (`dcign train` does it before JAX
starts), train the paper recipe with JAX until `--train-minutes` runs out or the recipe's
30,000 steps are done (checkpoints every 500 steps, so `--resume` continues in a later job),
calibrate and write the preset, run `dcign evaluate --quick`, and pack the preset with its
metrics as `OUT_DIR/faces_basel.tar.gz`. Everything the job prints goes to `OUT_DIR/log.txt`.
"""

import argparse
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--image-size", "32", "--feature-maps", "8", "--cache-batches", "8", "--steps", "20"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for the results")
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "faces_basel_gpu")
    parser.add_argument("--train-minutes", type=float, default=6.5)
    parser.add_argument("--cache-batches", type=int, default=4000)
    parser.add_argument("--tiny", action="store_true", help="a tiny CPU smoke test")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    log = open(args.out / "log.txt", "a")

    def step(*command, **env):
        print("$", *command, file=log, flush=True)
        began = time.time()
        subprocess.run(
            [str(c) for c in command],
            check=True,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, KERAS_BACKEND="jax", **env),
        )
        print(f"# {time.time() - began:.0f} s", file=log, flush=True)

    wheels = ROOT / ".whl"
    if wheels.is_dir():
        step(sys.executable, "-m", "pip", "install", "--no-index", "--find-links", wheels, ".")
    dcign = [sys.executable, "-m", "keras_dcign_cli.main"]
    # The paper's own stack and objective; the faces_basel recipe is the CPU-feasible strided one.
    train = [*dcign, "train", "--recipe", "faces_basel_paper", "--out", args.run]
    if args.tiny:
        train += TINY
    else:
        train += ["--cache-batches", args.cache_batches, "--checkpoint-every", "500"]
    if (args.run / "checkpoints").exists():
        train.append("--resume")
    step(*train, "--time-limit", args.train_minutes)
    step(*dcign, "evaluate", args.run / "preset", "--quick", "--out", args.run / "preset" / "eval")
    with tarfile.open(args.out / "faces_basel.tar.gz", "w:gz") as archive:
        archive.add(args.run / "preset", arcname="faces_basel")
    print(f"Wrote {args.out / 'faces_basel.tar.gz'}")


if __name__ == "__main__":
    main()
