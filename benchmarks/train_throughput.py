"""Training throughput of DC-IGN on every installed Keras backend, against PyTorch eager.

Usage:

    python benchmarks/train_throughput.py
    python benchmarks/train_throughput.py --sizes 150 --steps 5 --warmup 2
    python benchmarks/train_throughput.py --steps 150=5,64=30 --markdown docs/benchmarks_train.md
    python benchmarks/train_throughput.py --layers --sizes 150 --repeats 2
    python benchmarks/train_throughput.py --recipe --steps 60 --rounds 3 --batches-per-step 1,2

For each image size the script trains, each in its own process (the Keras
backend is fixed at import): the hand-written PyTorch eager network of
`torch_reference.py` (the baseline), then `keras_dcign.DCIGN` on each
backend with `train_on_batch` on one fixed random batch of monovariant
("light") training data. 150 px is the paper's network (96 maps, 4,131,137
parameters); other sizes use the CPU default of 32 maps. Warm-up steps
(tracing, compilation) are not timed. A 2048^2 float32 matrix product,
measured in the same run, gives the machine's practical ceiling.

GFLOP/s counts the multiply-adds of the convolutions and dense layers for
a training step: forward, weight gradient, and input gradient (except of
the first convolution, whose input needs none), two FLOPs each. Pooling,
activations, the loss and the optimiser are left out.

Keras/JAX runs with the package's CPU settings (`keras_dcign.jax_cpu`:
convolutions kept off YNNPACK, to which the CPU compiler of jaxlib 0.10 and
0.11 hands them and which is many times slower for these shapes, plus the
reshape max-pool and the tap-sum last convolution). Unless `--no-jax-ablation`,
two more rows show what each part brings: `keras/jax (flag only)` without the
layer formulations, and `keras/jax (stock)` with neither (docs/benchmarks.md).
The targets are checked on the three backends' default rows only.

Rows per precision and memory format: `--precisions float32,bfloat16` (default
`auto`: bfloat16 too where `/proc/cpuinfo` reports `avx512_bf16` or `amx_bf16`)
adds Keras rows with the `mixed_bfloat16` policy and PyTorch eager rows with
`torch.autocast("cpu", torch.bfloat16)`; PyTorch eager also runs in
`channels_last`. Every row reports its process's peak RSS.

`--recipe` times the CPU recipe (`faces_64`: 64 px, the strided stack, a
learned Gaussian sigma) as `dcign train` runs it, `model.fit` on its cached
generated faces, per backend, precision and `--batches-per-step` (K
monovariant batches side by side in a step), in `--rounds` interleaved
rounds, against `keras/tensorflow` with one batch a step: `dcign train` on
Keras' default backend before these options existed.

`--layers` times each layer instead: every convolution's forward pass,
input gradient and weight gradient, and every max-pool's forward and
backward pass, in PyTorch eager and in Keras/JAX (with and without the
variant's flags).
"""

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time

PAPER_SIZE = 150
BATCH_SIZE = 20
BACKENDS = ("tensorflow", "jax", "torch")
# Extra Keras/JAX rows: the package's CPU settings turned off one by one.
JAX_ABLATION = (
    ("keras/jax (flag only)", {"KERAS_DCIGN_JAX_CPU_LAYERS": "0"}),
    ("keras/jax (stock)", {"KERAS_DCIGN_JAX_CPU_LAYERS": "0", "KERAS_DCIGN_XLA_FLAGS": "0"}),
)
BASELINE = "torch-eager"
# The recipe `--recipe` times, and the row that is `dcign train` as it ran before
# `batches_per_step` and the Keras/JAX formulation of the strided decoder: Keras' default
# backend (TensorFlow), one monovariant batch per step, float32.
RECIPE = "faces_64"
RECIPE_BASELINE = "keras/tensorflow (XLA)"
# `--recipe` rows of TensorFlow: name suffix -> `jit_compile`.
TF_COMPILE_MODES = {" (XLA)": "on", " (no XLA)": "off"}
MIN_RECIPE_SPEEDUP = 2.0
# The targets of this benchmark on a 2-core CPU.
MIN_SPEEDUP_AT_PAPER_SIZE = 1.3
MAX_SPREAD = 2.0


def feature_maps_for(size):
    """The paper recipe's maps at 150 px (96), the faces_64 recipe's at other sizes (32)."""
    from keras_dcign.training.recipes import RECIPES

    return RECIPES["faces_basel_paper" if size == PAPER_SIZE else "faces_64"].feature_maps


def conv_layers(image_size, feature_maps, channels=1):
    """Every convolution of the network, in order, as a dict of its shapes.

    Keys: `name`, `side` (input side, after upsampling and padding), `in_maps`,
    `out_maps`, `kernel`, `out_side` and `pooled` (whether a 2x2 max-pool
    follows).
    """
    from keras_dcign.stacks import DECODER_KERNEL, ENCODER_KERNEL, plan_padding

    encoder_padding, decoder_padding, grid = plan_padding(image_size)
    maps = (feature_maps, feature_maps // 2, feature_maps // 4)
    layers = []

    def add(name, side, in_maps, out_maps, kernel, pooled):
        out_side = side - kernel + 1
        layers.append(
            dict(
                name=name,
                side=side,
                in_maps=in_maps,
                out_maps=out_maps,
                kernel=kernel,
                out_side=out_side,
                pooled=pooled,
            )
        )
        return out_side

    side, in_maps = image_size, channels
    for i, (filters, pad) in enumerate(zip(maps, encoder_padding), start=1):
        side = add(f"encoder_conv_{i}", side + 2 * pad, in_maps, filters, ENCODER_KERNEL, True)
        side, in_maps = side // 2, filters
    side, in_maps = grid, maps[2]
    decoder_maps = (maps[1], maps[0], maps[0], channels)
    for i, (filters, pad) in enumerate(zip(decoder_maps, decoder_padding), start=1):
        side = add(f"decoder_conv_{i}", 2 * side + 2 * pad, in_maps, filters, DECODER_KERNEL, False)
        in_maps = filters
    return layers


def training_flops(image_size, feature_maps, channels=1, code_size=200):
    """FLOPs of one image's training step in the convolutions and dense layers."""
    forward = input_grad = 0
    for i, layer in enumerate(conv_layers(image_size, feature_maps, channels)):
        macs = layer["out_side"] ** 2 * layer["out_maps"] * layer["kernel"] ** 2
        macs *= layer["in_maps"]
        forward += macs
        input_grad += macs if i else 0  # the images need no gradient
    from keras_dcign.stacks import plan_padding

    grid = plan_padding(image_size)[2]
    dense = 3 * grid * grid * (feature_maps // 4) * code_size  # two heads, decoder input
    forward += dense
    input_grad += dense
    return 2 * (2 * forward + input_grad)


def _time_steps(step, warmup, steps):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def _result(times, size, maps, **extra):
    median = statistics.median(times)
    return {
        "size": size,
        "maps": maps,
        "batch": BATCH_SIZE,
        "steps": len(times),
        "step_s": median,
        "best_step_s": min(times),
        "images_per_s": BATCH_SIZE / median,
        "best_images_per_s": BATCH_SIZE / min(times),
        "flops_per_image": training_flops(size, maps),
        **extra,
    }


def peak_rss_gb():
    """This process's peak resident memory so far, in GB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def worker_keras(backend, size, warmup, steps, precision="float32"):
    os.environ["KERAS_BACKEND"] = backend
    import keras
    import numpy as np

    from keras_dcign import DCIGN
    from keras_dcign.training.recipes import PRECISIONS

    keras.utils.set_random_seed(0)
    maps = feature_maps_for(size)
    model = DCIGN(image_size=size, feature_maps=maps, seed=0, dtype=PRECISIONS[precision])
    model.compile()
    images = np.random.default_rng(0).random((BATCH_SIZE, size, size, 1), dtype="float32")
    groups = model.group_ids("light", BATCH_SIZE)
    times = _time_steps(lambda: model.train_on_batch(images, groups), warmup, steps)
    return _result(
        times,
        size,
        maps,
        params=model.count_params(),
        jit_compile=bool(model.jit_compile),
        xla_flags=os.environ.get("XLA_FLAGS", ""),
        peak_rss_gb=peak_rss_gb(),
    )


def worker_recipe(backend, warmup, steps, per_step, precision="float32", jit_compile="auto"):
    """The faces_64 recipe's training as `dcign train` runs it: `model.fit` on the cached
    generated faces (rendered first if missing), `per_step` monovariant batches a step,
    XLA as `jit_compile` says (auto: `keras_dcign.compute`'s choice for this CPU)."""
    os.environ["KERAS_BACKEND"] = backend
    from keras_dcign.training.data import batch_source
    from keras_dcign.training.loop import build_model
    from keras_dcign.training.recipes import recipe

    settings = recipe(
        RECIPE, batches_per_step=per_step, precision=precision, jit_compile=jit_compile
    )
    source = batch_source(settings, None, 0, 0, False, 1)
    model = build_model(settings, seed=0)
    # Start in the monovariant phase: clamped batches are what most of a run trains on.
    start = int(settings["pretrain_steps"])
    model.fit(source(start), steps_per_epoch=warmup, epochs=1, verbose=0)
    began = time.perf_counter()
    model.fit(source(start + warmup), steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - began
    images = settings.images_per_step
    return {
        "size": settings["image_size"],
        "maps": settings["feature_maps"],
        "batch": images,
        "steps": steps,
        "step_s": seconds / steps,
        "images_per_s": images * steps / seconds,
        "params": model.count_params(),
        "peak_rss_gb": peak_rss_gb(),
    }


def worker_torch_eager(size, warmup, steps, precision="float32", memory_format="nchw"):
    os.environ.setdefault("KERAS_BACKEND", "torch")  # plan_padding imports Keras
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch
    from torch_reference import build, make_train_step

    from keras_dcign import GraphicsCode

    torch.manual_seed(0)
    maps = feature_maps_for(size)
    model = build(size, maps)
    step = make_train_step(model, precision=precision, memory_format=memory_format)
    images = torch.rand(BATCH_SIZE, 1, size, size)
    code = GraphicsCode.paper()
    mask = torch.tensor(
        [float(g == code.index("light")) for g in code.group_of_unit()], dtype=torch.float32
    )
    times = _time_steps(lambda: step(images, mask), warmup, steps)
    params = sum(p.numel() for p in model.parameters())
    return _result(
        times, size, maps, params=params, threads=torch.get_num_threads(), peak_rss_gb=peak_rss_gb()
    )


def worker_matmul(repeats=10, n=2048):
    """GFLOP/s of an n x n float32 matrix product, best of `repeats`, numpy and torch."""
    import numpy as np

    rates = {}
    a = np.random.default_rng(0).random((n, n), dtype="float32")
    b = np.random.default_rng(1).random((n, n), dtype="float32")
    products = {"numpy": lambda: a @ b}
    if importlib.util.find_spec("torch"):
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        products["torch"] = lambda: ta @ tb
    for name, product in products.items():
        best = min(_time_steps(product, 2, repeats))
        rates[name] = 2 * n**3 / best / 1e9
    return {"gflops": rates}


def _best_ms(fn, repeats):
    return 1e3 * min(_time_steps(fn, 1, repeats))


def worker_layers_jax(size, repeats):
    """Per-layer milliseconds as the Keras JAX backend runs them (NHWC, `keras.ops`).

    Each convolution's forward pass, input gradient and weight gradient, and
    each max-pool's forward and backward pass together.
    """
    os.environ["KERAS_BACKEND"] = "jax"
    from keras_dcign import jax_cpu

    jax_cpu.configure_xla_flags()
    import jax
    import jax.numpy as jnp
    import numpy as np
    from keras import ops

    def ms(fn, *args):
        return _best_ms(lambda: jax.block_until_ready(fn(*args)), repeats)

    def conv(x, w):
        if w.shape[-1] <= jax_cpu.TAP_SUM_MAX_FILTERS and jax_cpu.on_jax_cpu():
            return jax_cpu.tap_sum_conv(x, w)
        return ops.conv(x, w)

    def max_pool(y):
        return jax_cpu.max_pool_2x2(y) if jax_cpu.on_jax_cpu() else ops.max_pool(y, 2, 2)

    forward = jax.jit(conv)
    input_grad = jax.jit(lambda x, w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0])
    weight_grad = jax.jit(lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0])
    pool = jax.jit(jax.grad(lambda y: jnp.sum(max_pool(y) ** 2)))
    rng = np.random.default_rng(0)
    rows = []
    for layer in conv_layers(size, feature_maps_for(size)):
        side, k, out = layer["side"], layer["kernel"], layer["out_side"]
        x = jnp.asarray(rng.random((BATCH_SIZE, side, side, layer["in_maps"]), dtype="float32"))
        w = rng.standard_normal((k, k, layer["in_maps"], layer["out_maps"]), dtype="float32")
        w = jnp.asarray(0.05 * w)
        g = jnp.ones((BATCH_SIZE, out, out, layer["out_maps"]), "float32")
        row = {"name": layer["name"], "forward": ms(forward, x, w)}
        if layer["in_maps"] != 1:
            row["input_grad"] = ms(input_grad, x, w, g)
        row["weight_grad"] = ms(weight_grad, x, w, g)
        if layer["pooled"]:
            row["pool"] = ms(pool, forward(x, w))
        rows.append(row)
    return {"layers": rows}


def worker_layers_torch(size, repeats):
    """The same per-layer milliseconds in PyTorch eager (NCHW)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")  # plan_padding imports Keras
    import torch
    from torch.nn import functional as F

    def ms(fn, *args):
        return _best_ms(lambda: fn(*args), repeats)

    def backward(x, w, g, mask):
        stride, padding, dilation, output_padding = [1, 1], [0, 0], [1, 1], [0, 0]
        torch.ops.aten.convolution_backward(
            g, x, w, None, stride, padding, dilation, False, output_padding, 1, mask
        )

    def pool(y):
        torch.autograd.grad((F.max_pool2d(y, 2) ** 2).sum(), y)

    torch.manual_seed(0)
    rows = []
    for layer in conv_layers(size, feature_maps_for(size)):
        side, k, out = layer["side"], layer["kernel"], layer["out_side"]
        x = torch.rand(BATCH_SIZE, layer["in_maps"], side, side)
        w = 0.05 * torch.randn(layer["out_maps"], layer["in_maps"], k, k)
        g = torch.ones(BATCH_SIZE, layer["out_maps"], out, out)
        with torch.no_grad():
            row = {"name": layer["name"], "forward": ms(F.conv2d, x, w)}
            if layer["in_maps"] != 1:
                row["input_grad"] = ms(backward, x, w, g, [True, False, False])
            row["weight_grad"] = ms(backward, x, w, g, [False, True, False])
            y = F.conv2d(x, w)
        if layer["pooled"]:
            row["pool"] = ms(pool, y.requires_grad_(True))
        rows.append(row)
    return {"layers": rows}


def _run_worker(args, extra_env=None, timeout=None):
    """Runs this file as a worker process and returns its JSON line."""
    env = dict(os.environ, **(extra_env or {}))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = [sys.executable, os.path.abspath(__file__), *args]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"error": f"exit {done.returncode}: {tail[0]}"}


def _steps_for(spec, size):
    """`--steps 5` applies to every size; `--steps 150=5,64=30` sets each."""
    if "=" not in spec:
        return int(spec)
    table = dict(item.split("=") for item in spec.split(","))
    if str(size) not in table:
        raise SystemExit(f"--steps {spec!r} has no entry for size {size}.")
    return int(table[str(size)])


def _installed_backends():
    return [b for b in BACKENDS if importlib.util.find_spec(b)]


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


# CPU features that decide which kernels the backends can use (bf16 and AMX matrix units).
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def machine_info():
    cpu = platform.processor() or "unknown"
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu in ("unknown", platform.processor()):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = None
    try:
        with open("/proc/meminfo") as f:
            memory = int(f.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    packages = ["keras", "tensorflow", "jax", "jaxlib", "torch", "numpy"]
    return {
        "cpu": cpu,
        "cpu_flags": {flag: flag in flags for flag in CPU_FLAGS},
        "cores": cores,
        "memory_gib": round(memory, 1) if memory else None,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {p: v for p in packages if (v := _version(p))},
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def has_bf16_units(machine=None):
    """Whether the CPU reports bfloat16 matrix or vector units (AVX-512 BF16 or AMX)."""
    flags = (machine or machine_info())["cpu_flags"]
    return bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))


def precisions(args):
    """`--precisions auto`: float32, plus bfloat16 on a CPU with bf16 units."""
    if args.precisions == "auto":
        return ["float32", "bfloat16"] if has_bf16_units() else ["float32"]
    chosen = args.precisions.split(",")
    from keras_dcign.training.recipes import PRECISIONS

    unknown = sorted(set(chosen) - set(PRECISIONS))
    if unknown:
        raise SystemExit(f"--precisions has {unknown}; expected some of {list(PRECISIONS)}.")
    return chosen


def _suffix(precision, memory_format=None):
    parts = [] if precision == "float32" else ["bf16"]
    parts += [memory_format] if memory_format not in (None, "nchw") else []
    return f" ({', '.join(parts)})" if parts else ""


def _implementations(args, backends):
    """(row name, worker arguments, extra environment) of each implementation to run."""
    runs = []
    for precision in precisions(args):
        for memory_format in ("nchw", "channels_last"):
            runs.append(
                (
                    BASELINE + _suffix(precision, memory_format),
                    ["--worker", "torch-eager", "--precision", precision],
                    {"DCIGN_BENCH_MEMORY_FORMAT": memory_format},
                )
            )
    for precision in precisions(args):
        for backend in backends:
            worker = ["--worker", "keras", "--backend", backend, "--precision", precision]
            runs.append((f"keras/{backend}" + _suffix(precision), worker, {}))
            if backend == "jax" and args.jax_ablation and precision == "float32":
                for name, env in JAX_ABLATION:
                    runs.append((name, worker, env))
    return runs


def _recipe_runs(args, backends):
    """The `--recipe` rows: each backend, batches per step and precision."""
    runs = []
    for precision in precisions(args):
        for per_step in [int(k) for k in args.batches_per_step.split(",")]:
            for backend in backends:
                name = f"keras/{backend}" + (f" x{per_step}" if per_step > 1 else "")
                worker = ["--worker", "recipe", "--backend", backend, "--precision", precision]
                worker += ["--per-step", str(per_step)]
                # TensorFlow's step both ways: XLA (dcign train before) and oneDNN's graph.
                modes = TF_COMPILE_MODES if backend == "tensorflow" else {"": "auto"}
                for label, mode in modes.items():
                    runs.append(
                        (name + label + _suffix(precision), worker + ["--jit-compile", mode], {})
                    )
                if (
                    backend == "jax"
                    and args.jax_ablation
                    and (per_step, precision)
                    == (
                        1,
                        "float32",
                    )
                ):
                    runs += [(ablation, worker, env) for ablation, env in JAX_ABLATION]
    return runs


def _backends(args):
    backends = args.backends.split(",") if args.backends else _installed_backends()
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        raise SystemExit(f"--backends has {unknown}; expected some of {list(BACKENDS)}.")
    return backends


def run_benchmark(args):
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = _implementations(args, _backends(args))
    load_before = machine_info()["load_average"]
    matmul = _run_worker(["--worker", "matmul"], timeout=args.timeout)
    ceiling = max(matmul.get("gflops", {}).values(), default=None)
    rows = []
    for size in sizes:
        steps = _steps_for(args.steps, size)
        common = ["--size", str(size), "--steps", str(steps), "--warmup", str(args.warmup)]
        for name, worker_args, env in runs:
            print(f"[{name} {size}px: {steps} steps after {args.warmup} warm-up]", flush=True)
            result = _run_worker(worker_args + common, env, timeout=args.timeout)
            rows.append(dict(result, name=name, size=size))
    _add_ratios(rows, ceiling)
    machine = dict(machine_info(), load_before=load_before)
    return {"machine": machine, "matmul": matmul, "ceiling": ceiling, "rows": rows}


def run_recipe(args, rounds=None):
    """`--recipe`: the faces_64 recipe's training rate per backend, batches per step and
    precision, in interleaved rounds (the median round counts), against `RECIPE_BASELINE`."""
    runs = _recipe_runs(args, _backends(args))
    load_before = machine_info()["load_average"]
    results = {name: [] for name, _, _ in runs}
    steps = int(args.steps) if "=" not in args.steps else 60
    for round_ in range(rounds or args.rounds):
        for name, worker_args, env in runs:
            per_step = int(worker_args[worker_args.index("--per-step") + 1])
            count = max(1, steps // per_step)
            print(f"[round {round_ + 1}: {name}, {count} steps after {args.warmup}]", flush=True)
            common = ["--steps", str(count), "--warmup", str(args.warmup)]
            results[name].append(_run_worker(worker_args + common, env, timeout=args.timeout))
    rows = []
    for name, tries in results.items():
        good = [t for t in tries if "error" not in t]
        if not good:
            rows.append(dict(tries[-1], name=name, size=64))
            continue
        rates = sorted(t["images_per_s"] for t in good)
        median = dict(good[0], images_per_s=statistics.median(rates))
        median.update(
            name=name,
            rounds=rates,
            best_images_per_s=rates[-1],
            step_s=median["batch"] / median["images_per_s"],
            peak_rss_gb=max(t["peak_rss_gb"] for t in good),
        )
        rows.append(median)
    baseline = next((r for r in rows if r["name"] == RECIPE_BASELINE and "error" not in r), None)
    for row in rows:
        if baseline and "error" not in row:
            row["vs_baseline"] = row["images_per_s"] / baseline["images_per_s"]
    machine = dict(machine_info(), load_before=load_before)
    return {"machine": machine, "recipe": RECIPE, "rows": rows}


def run_layers(args):
    """Per-layer milliseconds: PyTorch eager against Keras/JAX (and its ablations)."""
    runs = []
    for name, _, env in _implementations(args, ["jax"]):
        if name != BASELINE and not (name.startswith("keras/jax") and "bf16" not in name):
            continue
        backend = "torch" if name == BASELINE else "jax"
        runs.append((name, ["--worker", "layers", "--backend", backend], env))
    results = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        for name, worker_args, env in runs:
            print(f"[{name} {size}px: per-layer times, best of {args.repeats}]", flush=True)
            common = ["--size", str(size), "--steps", str(args.repeats)]
            results[(size, name)] = _run_worker(worker_args + common, env, timeout=args.timeout)
    names = [name for name, _, _ in runs]
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        ops = [
            (layer["name"], op)
            for layer in results[(size, BASELINE)].get("layers", [])
            for op in ("forward", "input_grad", "weight_grad", "pool")
            if op in layer
        ]
        totals = dict.fromkeys(names, 0.0)
        for layer_name, op in ops:
            cells = [str(size), layer_name, op]
            for name in names:
                layers = {r["name"]: r for r in results[(size, name)].get("layers", [])}
                value = layers.get(layer_name, {}).get(op)
                totals[name] += value or 0.0
                cells.append(f"{value:.1f}" if value is not None else "")
            rows.append(cells)
        rows.append([str(size), "all layers", "sum"] + [f"{totals[n]:.1f}" for n in names])
    errors = {f"{n} {s}px": r["error"] for (s, n), r in results.items() if "error" in r}
    return {
        "machine": machine_info(),
        "columns": ["size", "layer", "op", *(f"{n} ms" for n in names)],
        "rows": rows,
        "errors": errors,
    }


def _add_ratios(rows, ceiling):
    for row in rows:
        if "error" in row:
            continue
        baseline = next(
            (r for r in rows if r["name"] == BASELINE and r["size"] == row["size"]), None
        )
        if baseline and "error" not in baseline:
            row["vs_baseline"] = row["images_per_s"] / baseline["images_per_s"]
        row["gflops"] = row["images_per_s"] * row["flops_per_image"] / 1e9
        if ceiling:
            row["ceiling_fraction"] = row["gflops"] / ceiling


MIN_BF16_SPEEDUP = 5.0
MAX_PAPER_RSS_GB = 3.0


def check_targets(report):
    """One line per target: the best Keras backend's speed-up, the spread, and memory."""
    if "recipe" in report:
        return check_recipe_targets(report)
    lines = []
    rows = [r for r in report["rows"] if "error" not in r]
    for size in sorted({r["size"] for r in rows}, reverse=True):
        at_size = [r for r in rows if r["size"] == size]
        keras_rows = [r for r in at_size if r["name"] in {f"keras/{b}" for b in BACKENDS}]
        if not keras_rows:
            continue
        best = max(keras_rows, key=lambda r: r["images_per_s"])
        if size == PAPER_SIZE and "vs_baseline" in best:
            ok = best["vs_baseline"] >= MIN_SPEEDUP_AT_PAPER_SIZE
            lines.append(
                f"{size} px, float32: best Keras backend {best['name']} is "
                f"{best['vs_baseline']:.2f}x PyTorch eager (target >= "
                f"{MIN_SPEEDUP_AT_PAPER_SIZE}x): {'met' if ok else 'NOT met'}"
            )
        bf16 = [r for r in at_size if r["name"].startswith("keras/") and "bf16" in r["name"]]
        if size == PAPER_SIZE and bf16 and all("vs_baseline" in r for r in bf16):
            fastest = max(bf16, key=lambda r: r["images_per_s"])
            ok = fastest["vs_baseline"] >= MIN_BF16_SPEEDUP
            units = "with" if has_bf16_units(report["machine"]) else "WITHOUT"
            lines.append(
                f"{size} px, bf16 on a CPU {units} bf16 units: best Keras row {fastest['name']} "
                f"is {fastest['vs_baseline']:.2f}x PyTorch eager float32 (target >= "
                f"{MIN_BF16_SPEEDUP}x on a CPU with them): {'met' if ok else 'NOT met'}"
            )
        slowest = min(keras_rows, key=lambda r: r["images_per_s"])
        spread = best["images_per_s"] / slowest["images_per_s"]
        verdict = "met" if spread <= MAX_SPREAD else "NOT met"
        lines.append(
            f"{size} px: slowest Keras backend {slowest['name']} is {spread:.2f}x slower than "
            f"{best['name']} (target <= {MAX_SPREAD}x): {verdict}"
        )
        if size == PAPER_SIZE:
            rss = [r for r in at_size if r["name"].startswith("keras/") and "peak_rss_gb" in r]
            if rss:
                worst = max(rss, key=lambda r: r["peak_rss_gb"])
                ok = worst["peak_rss_gb"] <= MAX_PAPER_RSS_GB
                lines.append(
                    f"{size} px: largest peak RSS of a Keras row, {worst['name']}: "
                    f"{worst['peak_rss_gb']:.2f} GB (target <= {MAX_PAPER_RSS_GB} GB): "
                    f"{'met' if ok else 'NOT met'}"
                )
    return lines


def check_recipe_targets(report):
    rows = [r for r in report["rows"] if "error" not in r]
    lines = []
    if rows and all("vs_baseline" in r for r in rows):
        best = max(rows, key=lambda r: r["images_per_s"])
        ok = best["vs_baseline"] >= MIN_RECIPE_SPEEDUP
        lines.append(
            f"{report['recipe']}: fastest row {best['name']} trains "
            f"{best['vs_baseline']:.2f}x as many images/s as {RECIPE_BASELINE} (dcign train "
            f"before; target >= {MIN_RECIPE_SPEEDUP}x): {'met' if ok else 'NOT met'}"
        )
    one_batch = {f"keras/{b}" for b in BACKENDS} | {
        f"keras/tensorflow{label}" for label in TF_COMPILE_MODES
    }
    plain = [r for r in rows if r["name"] in one_batch]
    if len(plain) > 1:
        best = max(plain, key=lambda r: r["images_per_s"])
        slowest = min(plain, key=lambda r: r["images_per_s"])
        spread = best["images_per_s"] / slowest["images_per_s"]
        lines.append(
            f"{report['recipe']}, one batch a step: slowest backend {slowest['name']} is "
            f"{spread:.2f}x slower than {best['name']} (target <= {MAX_SPREAD}x): "
            f"{'met' if spread <= MAX_SPREAD else 'NOT met'}"
        )
    return lines


COLUMNS = (
    "implementation",
    "size",
    "maps",
    "img/s",
    "best img/s",
    "ms/step",
    "x torch eager",
    "GFLOP/s",
    "% of matmul",
    "peak RSS GB",
)
RECIPE_COLUMNS = (
    "implementation",
    "images/step",
    "img/s (median)",
    "each round",
    "ms/step",
    "x dcign train before",
    "peak RSS GB",
)


def recipe_cells(row):
    if "error" in row:
        return [row["name"], "", row["error"], "", "", "", ""]
    return [
        row["name"],
        str(row["batch"]),
        f"{row['images_per_s']:.1f}",
        " ".join(f"{rate:.0f}" for rate in row["rounds"]),
        f"{1e3 * row['step_s']:.0f}",
        f"{row['vs_baseline']:.2f}" if "vs_baseline" in row else "",
        f"{row['peak_rss_gb']:.2f}",
    ]


def table_cells(row):
    if "error" in row:
        return [row["name"], str(row["size"]), "", row["error"], "", "", "", "", "", ""]
    return [
        row["name"],
        str(row["size"]),
        str(row["maps"]),
        f"{row['images_per_s']:.2f}",
        f"{row['best_images_per_s']:.2f}",
        f"{1e3 * row['step_s']:.0f}",
        f"{row['vs_baseline']:.2f}" if "vs_baseline" in row else "",
        f"{row['gflops']:.1f}",
        f"{100 * row['ceiling_fraction']:.0f}" if "ceiling_fraction" in row else "",
        f"{row['peak_rss_gb']:.2f}" if "peak_rss_gb" in row else "",
    ]


def notes(report, args):
    if "recipe" in report:
        return [
            f"Each row trains the {report['recipe']} recipe's network with model.fit on its "
            "cached generated faces, as dcign train does (monovariant batches of 20, "
            f"{args.warmup} warm-up steps untimed), in its own process; rounds are "
            "interleaved and the median counts.",
            "xK: K monovariant batches side by side in each step (--batches-per-step K).",
            *(
                [
                    "keras/jax (flag only): without the package's Keras/JAX CPU layer formulations "
                    "(KERAS_DCIGN_JAX_CPU_LAYERS=0); (stock): also KERAS_DCIGN_XLA_FLAGS=0."
                ]
                if any("flag only" in r["name"] for r in report["rows"])
                else []
            ),
            *check_targets(report),
        ]
    lines = []
    if report.get("ceiling"):
        rates = ", ".join(f"{k} {v:.0f}" for k, v in report["matmul"]["gflops"].items())
        lines.append(f"Matmul ceiling (2048^2 float32, best of 10): {rates} GFLOP/s.")
    flops = {r["size"]: r["flops_per_image"] for r in report["rows"] if "flops_per_image" in r}
    for size, value in sorted(flops.items(), reverse=True):
        lines.append(f"Training FLOPs per image at {size} px: {value / 1e9:.2f} GFLOP.")
    if args.jax_ablation:
        lines.append(
            "keras/jax (flag only): KERAS_DCIGN_JAX_CPU_LAYERS=0; keras/jax (stock): "
            "also KERAS_DCIGN_XLA_FLAGS=0."
        )
    jit = {r["name"]: r["jit_compile"] for r in report["rows"] if "jit_compile" in r}
    if jit:
        lines.append(
            "Keras jit_compile (the default, 'auto'): "
            + ", ".join(f"{k} {v}" for k, v in sorted(jit.items()))
        )
    return lines + check_targets(report)


def layer_notes(report, args):
    lines = [
        "forward: the convolution; input_grad and weight_grad: its two gradients; "
        "pool: the 2x2 max-pool after it, forward and backward together.",
    ]
    if args.jax_ablation:
        lines.append("keras/jax (stock): KERAS_DCIGN_XLA_FLAGS=0 KERAS_DCIGN_JAX_CPU_LAYERS=0.")
    return lines + [f"{name}: {error}" for name, error in report["errors"].items()]


def _table(report, args):
    """Title, column names, rows of cells and notes of a benchmark or per-layer report."""
    if "columns" in report:
        title = f"DC-IGN per-layer times (batch {BATCH_SIZE}, best of {args.repeats})"
        return title, report["columns"], report["rows"], layer_notes(report, args)
    if "recipe" in report:
        title = f"dcign train --recipe {report['recipe']}: training throughput"
        return (
            title,
            list(RECIPE_COLUMNS),
            [recipe_cells(r) for r in report["rows"]],
            notes(report, args),
        )
    title = f"DC-IGN training throughput (batch {BATCH_SIZE})"
    cells = [table_cells(row) for row in report["rows"]]
    return title, list(COLUMNS), cells, notes(report, args)


def cpu_line(machine):
    """The CPU and which of `CPU_FLAGS` it has, in one line."""
    flags = machine.get("cpu_flags", {})
    have = ", ".join(f"{flag} {'yes' if on else 'no'}" for flag, on in flags.items())
    return f"CPU: {machine['cpu']}, {machine['cores']} cores; {have}."


def print_table(report, args):
    from rich.console import Console
    from rich.table import Table

    title, columns, rows, lines = _table(report, args)
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="right" if _alignment(i, rows) == "--:" else "left")
    for row in rows:
        table.add_row(*row)
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    console.print(cpu_line(report["machine"]), highlight=False)
    for line in lines:
        console.print(line, highlight=False)


def _alignment(column, rows):
    """Markdown alignment: numbers to the right, words to the left."""

    def number(cell):
        try:
            float(cell)
        except ValueError:
            return not cell
        return True

    return "--:" if all(number(row[column]) for row in rows) else ":--"


def write_markdown(report, args, path):
    title, columns, rows, lines = _table(report, args)
    machine = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    text = [
        f"## {title}",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"{machine['system']}, Python {machine['python']}; {versions}.",
        cpu_line(machine),
    ]
    if machine.get("load_before") is not None:
        text.append(
            f"1-minute load average {machine['load_before']} before the run and "
            f"{machine['load_average']} after it (other processes slow a run down)."
        )
    if machine["xla_flags"]:
        text.append(f"XLA_FLAGS: `{machine['xla_flags']}`.")
    text += [
        "",
        "```",
        "python benchmarks/train_throughput.py " + " ".join(args.argv),
        "```",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join(_alignment(column, rows) for column in range(len(columns))) + "|",
    ]
    text += ["| " + " | ".join(row) + " |" for row in rows]
    text += ["", *(f"- {line}" for line in lines), ""]
    with open(path, "w") as f:
        f.write("\n".join(text))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="150,64", help="image sizes, comma-separated")
    parser.add_argument("--steps", default="150=5,64=30", help="timed steps: N, or SIZE=N,SIZE=N")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--backends", default=None, help="Keras backends (default: installed)")
    parser.add_argument(
        "--no-jax-ablation",
        dest="jax_ablation",
        action="store_false",
        help="leave out the Keras/JAX rows with the package's CPU settings turned off",
    )
    parser.add_argument(
        "--layers",
        action="store_true",
        help="time each layer's forward and backward in PyTorch eager and Keras/JAX instead",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per op (--layers)")
    parser.add_argument(
        "--precisions",
        default="auto",
        help="float32,bfloat16 (default auto: bfloat16 too where the CPU has bf16 units)",
    )
    parser.add_argument(
        "--recipe",
        action="store_true",
        help=f"time the {RECIPE} recipe as dcign train runs it, per backend and "
        "--batches-per-step, against dcign train before",
    )
    parser.add_argument(
        "--batches-per-step", default="1,2", help="monovariant batches per step (--recipe)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (--recipe)")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument("--json", default=None, help="also write the raw results to this file")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per worker")
    parser.add_argument(
        "--worker",
        choices=["keras", "torch-eager", "layers", "matmul", "recipe"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--per-step", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--jit-compile", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = argv
    return args


def run_worker(args):
    if args.worker == "matmul":
        return worker_matmul()
    steps = int(args.steps)
    if args.worker == "keras":
        return worker_keras(args.backend, args.size, args.warmup, steps, args.precision)
    if args.worker == "recipe":
        return worker_recipe(
            args.backend, args.warmup, steps, args.per_step, args.precision, args.jit_compile
        )
    if args.worker == "torch-eager":
        memory_format = os.environ.get("DCIGN_BENCH_MEMORY_FORMAT", "nchw")
        return worker_torch_eager(args.size, args.warmup, steps, args.precision, memory_format)
    if args.backend == "jax":
        return worker_layers_jax(args.size, steps)
    return worker_layers_torch(args.size, steps)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args)), flush=True)
        return
    if args.layers:
        report = run_layers(args)
    elif args.recipe:
        report = run_recipe(args)
    else:
        report = run_benchmark(args)
    print_table(report, args)
    if args.markdown:
        write_markdown(report, args, args.markdown)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)


if __name__ == "__main__":
    main()
