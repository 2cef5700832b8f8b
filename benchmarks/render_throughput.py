"""Face renderer throughput on one CPU core, and the time to cache a training set.

Usage:

    python benchmarks/render_throughput.py            # renderer and streams
    python benchmarks/render_throughput.py --cache    # also generate the default set

Prints a markdown table. Rendering is pinned to one core with one BLAS
thread. Each rate is the best of `--repeats` runs (other processes only ever
slow a run down), counted two ways: per second of wall-clock time, and per
second of CPU time this process got — the rate of one core of its own,
which is what a busy shared machine still lets us measure. `--cache` uses
every core, as `generate(workers=...)` would.
"""

import argparse
import os
import sys
import tempfile
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from keras_dcign.datasets import faces  # noqa: E402


def _rate(fn, images, repeats):
    """(images per wall-clock second, images per CPU second), best of `repeats` runs."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return images / wall, images / cpu


def _stream_rate(make_stream, n_batches, batch_size, repeats):
    def run():
        stream = make_stream()
        for _ in range(n_batches):
            next(stream)

    return _rate(run, n_batches * batch_size, repeats)


def measure(size, repeats, n_batches):
    """Images per second at one picture size, for each way of asking for pictures."""
    faces.render(0, image_size=size)  # builds the model for this size
    azimuths = np.linspace(-90.0, 90.0, 100)
    rows = {
        "one person, pose sweep (`render`)": _rate(
            lambda: faces.render(3, azimuths, 10.0, 30.0, image_size=size), 100, repeats
        ),
        "AZ batches": _stream_rate(
            lambda: faces.batches("AZ", image_size=size, seed=1), n_batches, 20, repeats
        ),
        "SHAPE batches (20 people each)": _stream_rate(
            lambda: faces.batches("SHAPE", image_size=size, seed=1), n_batches, 20, repeats
        ),
        "training mix 1:1:1:1 (`training_batches`)": _stream_rate(
            lambda: faces.training_batches(image_size=size, seed=1), 4 * n_batches, 20, repeats
        ),
    }
    return rows


def cache_time(workers):
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        faces.generate(folder, image_size=64, workers=workers, progress=False)
        elapsed = time.perf_counter() - start
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        start = time.perf_counter()
        data = faces.load(folder, progress=False)
        load = time.perf_counter() - start
    return elapsed, size, load, data["images"].shape


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=5, help="batches per stream run")
    parser.add_argument("--cache", action="store_true", help="time generate() of the default set")
    args = parser.parse_args(argv)
    cores = os.cpu_count()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"numpy {np.__version__}, Python {sys.version.split()[0]}, {cores} cores, "
        f"load average {load:.1f} before the run\n"
    )
    results = {size: measure(size, args.repeats, args.batches) for size in (64, 150)}
    print("| images/s on one core (wall clock / CPU time) | 64² | 150² |")
    print("|---|---:|---:|")
    for name in results[64]:
        cells = [f"{wall:.0f} / {cpu:.0f}" for wall, cpu in (results[64][name], results[150][name])]
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    if args.cache:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(range(cores)))
        elapsed, size, load, shape = cache_time(cores)
        images = shape[0] * shape[1]
        print(
            f"\n`generate()` default 64² training set: {shape[0]} batches ({images} images) "
            f"in {elapsed:.0f} s on {cores} cores ({images / elapsed:.0f} images/s), "
            f"{size / 2**20:.0f} MiB on disk; `load()` reads it back in {load:.1f} s."
        )


if __name__ == "__main__":
    main()
