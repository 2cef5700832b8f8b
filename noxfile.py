"""Test and lint sessions: `nox` runs the suite once per Keras backend, then ruff."""

import os

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

BACKENDS = ["tensorflow", "jax", "torch"]
# A CPU build of PyTorch; an unpinned `torch` pulls a multi-GB CUDA build.
TORCH = os.environ.get("DCIGN_TORCH", "torch==2.13.0")


@nox.session
@nox.parametrize("backend", BACKENDS)
def tests(session, backend):
    """The pytest suite on one backend (every backend is installed for cross-backend tests)."""
    session.install(TORCH)
    session.install(".[jax,torch,tfp,dev,eval]")
    session.run(
        "pytest",
        *session.posargs,
        env={"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@nox.session
def lint(session):
    """ruff over the whole tree."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
