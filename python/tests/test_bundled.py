"""The bundled model: extract from Python equals `circuit extract` on a real
circuit (about a minute; ctest runs it as python_bundled, labels python and slow)."""
import pytest

import circuit
from conftest import run_cli
from test_circuit import QUICK, assert_same_circuit

pytestmark = pytest.mark.bundled


def test_bundled_extract_equals_the_cli(tmp_path):
    circuit.set_threads(1)
    model = circuit.load_model()
    run_cli("extract", *QUICK, "--model", model.path, "--out", tmp_path)
    task = circuit.build_task("single_double_quote", model, seed=0, pairs=16)
    c = circuit.extract(model, task, epochs=1, importance=False)
    assert 0 < len(c) < c.total_nodes  # a real circuit, not the whole model
    assert_same_circuit(c, circuit.Circuit.read(str(tmp_path / "circuit.h5")))
