"""Test and lint sessions: `nox` runs ruff, then the whole suite once per Keras backend.

The three backends share one environment (every backend is installed anyway, for the
cross-backend tests), so TensorFlow, JAX and PyTorch are installed once, not three times.
"""

import os

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

BACKENDS = ("tensorflow", "jax", "torch")
# A CPU build of PyTorch; an unpinned `torch` pulls a multi-GB CUDA build.
TORCH = os.environ.get("DCIGN_TORCH", "torch==2.13.0")
# Tests marked backend_independent run with one backend: JAX, whose `dcign` subprocesses
# start fastest. A later `-m` wins over the `-m 'not slow'` in pyproject.toml's addopts.
EVERY_TEST = "slow or not slow"
BACKEND_TESTS = "not backend_independent"
# pytest-xdist: one worker per CPU core (DCIGN_TEST_WORKERS=0: no workers).
WORKERS = ("-n", os.environ.get("DCIGN_TEST_WORKERS", "auto"))


@nox.session
def tests(session):
    """pytest, slow tests included, once per backend (DCIGN_BACKENDS=jax,torch picks some).

    Arguments after `--` go to each pytest run.
    """
    backends = os.environ.get("DCIGN_BACKENDS", ",".join(BACKENDS)).split(",")
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        session.error(f"DCIGN_BACKENDS: unknown {unknown}; expected some of {list(BACKENDS)}")
    independent = "jax" if "jax" in backends else backends[0]
    session.install(TORCH)
    session.install(".[jax,torch,tfp,dev,eval,crop,torch7]", "pytest-xdist")
    failed = []
    for backend in backends:
        session.log(f"KERAS_BACKEND={backend}")
        try:
            session.run(
                "pytest",
                "-m",
                EVERY_TEST if backend == independent else BACKEND_TESTS,
                *WORKERS,
                *session.posargs,
                env={"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"},
            )
        except nox.command.CommandFailed:
            failed.append(backend)  # the other backends still run
    if failed:
        session.error(f"pytest failed with KERAS_BACKEND={', '.join(failed)}")


# One ruff for every checkout: another version may format a line differently.
RUFF = "ruff==0.17.6"


@nox.session
def lint(session):
    """ruff's checks and its formatter over the whole tree (as .pre-commit-config.yaml)."""
    session.install(RUFF)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
