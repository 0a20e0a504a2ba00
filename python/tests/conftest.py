"""Fixtures of the circuit module's tests: the CLI beside the module, and a tiny
random model written by `circuit init` (as the CLI tests use)."""
import os
import subprocess
from pathlib import Path

import pytest

BINARY_DIR = Path(os.environ.get("CIRCUIT_BINARY_DIR", Path(__file__).resolve().parents[2] / "build"))
CLI = BINARY_DIR / "bin" / "circuit"


def run_cli(*args, check=True):
    """Runs build/bin/circuit with one thread; returns the CompletedProcess."""
    r = subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"circuit {' '.join(map(str, args))}: exit {r.returncode}\n{r.stderr}")
    return r


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny.h5"
    run_cli("init", "--layers", 2, "--d-model", 32, "--heads", 2, "--d-head", 16, "--d-mlp", 64,
            "--n-ctx", 64, "--seed", 0, "--out", path)
    return path


@pytest.fixture(scope="session")
def tiny(tiny_path):
    import circuit
    circuit.set_threads(1)
    return circuit.load_model(str(tiny_path))


def pytest_configure(config):
    config.addinivalue_line("markers", "bundled: uses the bundled model (slow; CTest's python_bundled)")
