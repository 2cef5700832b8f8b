"""How a run computes on this machine: its precision and whether its step is XLA-compiled.

`precision="auto"` and `jit_compile="auto"` are settled here from the CPU's features, by rules
that follow what was measured (docs/benchmarks.md), not habit:

- bfloat16 pays where the CPU has AMX bfloat16 units and the backend's kernels reach them
  (TensorFlow's oneDNN without XLA, PyTorch): 17.8 against 5.6 images/s at 150² on an Intel
  Xeon with AMX. With AVX-512 BF16 alone (an AMD EPYC with `avx512_bf16`, no AMX) the 64²
  recipe trained at the same speed in bfloat16 as in float32 on TensorFlow and slower on
  JAX, so float32 stays.
- TensorFlow's XLA on CPU wins only without AVX-512: on CPUs with it, oneDNN's kernels
  outrun XLA's (64² recipe: 292 against 146 images/s on an AMD EPYC with AVX-512; 316
  against 277 on the Intel Xeon), and XLA does not reach the bfloat16 units at all. On an
  AVX2-only AMD EPYC, XLA trained 1.3x (150²) to 1.9x (64²) faster.
- On a GPU every backend keeps XLA where it has it.
"""

CPUINFO = "/proc/cpuinfo"


def cpu_flags(cpuinfo=None):
    """The CPU's feature flags from `/proc/cpuinfo`, or from the `cpuinfo` file given (an
    empty set where it cannot be read)."""
    try:
        with open(cpuinfo or CPUINFO) as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def has_gpu(backend):
    """Whether the backend computes on a GPU here."""
    if backend == "jax":
        import jax

        return jax.devices()[0].platform != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return False


def choose_precision(setting, backend, flags, gpu=False):
    """`(precision, reason)` for a recipe's `precision` setting."""
    if setting != "auto":
        return setting, "set by the recipe or --precision"
    if gpu:
        return "float32", "auto: float32 on a GPU"
    if "amx_bf16" in flags and backend in ("tensorflow", "torch"):
        return "bfloat16", f"auto: the CPU has AMX bfloat16 units, which {backend} reaches"
    if "amx_bf16" in flags:
        return "float32", f"auto: {backend} does not reach the CPU's AMX bfloat16 units"
    if "avx512_bf16" in flags:
        return "float32", "auto: AVX-512 BF16 without AMX trains no faster in bfloat16"
    return "float32", "auto: the CPU has no bfloat16 units"


def choose_jit_compile(setting, backend, precision, flags, gpu=False):
    """`(jit_compile, reason)` for a recipe's `jit_compile` setting (`"auto"`, `"on"`, `"off"`).

    Returns `True`/`False` for TensorFlow and PyTorch, and `"auto"` (Keras' own choice) for
    JAX, whose step is always compiled.
    """
    if setting in ("on", "off"):
        return setting == "on", "set by the recipe or --jit-compile"
    if backend == "jax":
        return "auto", "auto: JAX always compiles its step"
    if backend == "torch":
        return False, "auto: PyTorch runs eagerly (Keras' default)"
    if gpu:
        return True, "auto: XLA on a GPU"
    if precision == "bfloat16":
        return False, "auto: XLA on CPU does not reach the bfloat16 units"
    if "avx512f" in flags:
        return False, "auto: oneDNN's AVX-512 kernels outrun XLA on this CPU"
    return True, "auto: XLA outruns oneDNN on a CPU without AVX-512"


def describe(settings, backend):
    """What a run computes with and why: `{"precision", "precision_why", "jit_compile",
    "jit_compile_why", "cpu_flags"}` (the CPU flags that decided it)."""
    flags = cpu_flags()
    gpu = has_gpu(backend)
    precision, precision_why = choose_precision(settings["precision"], backend, flags, gpu)
    jit, jit_why = choose_jit_compile(settings["jit_compile"], backend, precision, flags, gpu)
    return {
        "precision": precision,
        "precision_why": precision_why,
        "jit_compile": jit,
        "jit_compile_why": jit_why,
        "cpu_flags": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}),
    }
