"""circuit.audit and circuit.explain against `circuit audit --json` and `circuit explain`."""
import json
import os
import shutil
import signal
import threading
import time

import pytest

import circuit
from conftest import run_cli
from test_circuit import QUICK

TIMES = ("time_seconds", "time_parts", "time_extractions")  # wall time: the one thing two runs do not share


@pytest.fixture(scope="module")
def quick_circuit(tiny_path, tmp_path_factory):
    """The CLI test's quick circuit: the random model misses the target, so it keeps every node
    (608), which the audit and explanations handle in seconds."""
    out = tmp_path_factory.mktemp("quick")
    run_cli("extract", *QUICK, "--model", tiny_path, "--out", out)
    return out / "circuit.h5"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A corpus of 40 tiny Python files, half of them the validation split (as the CLI test's)."""
    root = tmp_path_factory.mktemp("esrc")
    for i in range(40):
        (root / f"m{i}.py").write_text(f'def f{i}(x):\n    print("v{i}", x)\n    return \'w{i}\' + x\n')
    out = tmp_path_factory.mktemp("ecorpus") / "corpus"
    run_cli("corpus", "build", "--root", root, "--val-per-mille", 500, "--out", out)
    return out


def without_times(audit):
    return {k: v for k, v in audit.items() if k not in TIMES}


def test_audit_equals_the_cli(tiny, tiny_path, quick_circuit, tmp_path):
    path = tmp_path / "circuit.h5"
    shutil.copy(quick_circuit, path)
    printed = json.loads(run_cli("audit", "--json", "--seeds", 0, "--threads", 1, "--model", tiny_path,
                                 "--circuit", path).stdout)
    written = json.loads((tmp_path / "audit.json").read_text())
    assert printed == written
    stages = []
    a = circuit.audit(str(path), seeds=0, threads=1, model=tiny_path, out=str(tmp_path / "py.json"),
                      progress=lambda stage, fraction: stages.append(stage))
    assert without_times(a) == without_times(written)
    assert set(a["time_parts"]) == set(written["time_parts"])
    assert json.loads((tmp_path / "py.json").read_text()) == a
    assert stages  # the callback saw the audit advance
    assert a["n_nodes"] == len(circuit.Circuit.read(str(path))) and a["stability"] is None
    assert a["verdict"] and a["faithfulness"]["by_ranking"].keys() == {"masks", "attribution", "random"}
    # A Circuit object names its file; a Model gives the model.
    b = circuit.audit(circuit.Circuit.read(str(path)), seeds=0, threads=1, model=tiny)
    assert without_times(b) == without_times(written)


def test_audit_with_seeds_and_another_task_equals_the_cli(tiny_path, quick_circuit, tmp_path):
    path = tmp_path / "circuit.h5"
    shutil.copy(quick_circuit, path)
    run_cli("audit", "--seeds", 2, "--separate-stability", "--task", "single_double_quote@print",
            "--threads", 1, "--model", tiny_path, "--circuit", path)
    written = json.loads((tmp_path / "audit.json").read_text())
    a = circuit.audit(str(path), seeds=2, separate_stability=True, task="single_double_quote@print",
                      threads=1, model=str(tiny_path))
    assert without_times(a) == without_times(written)
    assert a["stability"]["joint"] is False and a["other_task"]["task"] == "single_double_quote@print"


def test_audit_errors_are_the_cli_lines(tiny_path, quick_circuit, tmp_path):
    missing = tmp_path / "none.h5"
    cli = run_cli("audit", "--circuit", missing, check=False)
    assert cli.returncode == 2
    line = cli.stderr.strip().removeprefix("circuit audit: ")
    with pytest.raises(ValueError) as e:
        circuit.audit(str(missing))
    assert str(e.value) == line
    cli = run_cli("audit", "--seeds", 0, "--task", "bracket_brace", "--model", tiny_path, "--circuit",
                  quick_circuit, check=False)
    with pytest.raises(ValueError) as e:
        circuit.audit(str(quick_circuit), seeds=0, task="bracket_brace", model=str(tiny_path))
    assert str(e.value) == cli.stderr.strip().removeprefix("circuit audit: ")
    with pytest.raises(ValueError, match="digest"):
        circuit.audit(str(quick_circuit), seeds=0)  # the bundled model is not the circuit's
    with pytest.raises(ValueError, match=r"seeds must be in \[0, 100\], got 101"):
        circuit.audit(str(quick_circuit), seeds=101, model=str(tiny_path))
    with pytest.raises(TypeError, match="unexpected keyword argument 'seed'"):
        circuit.audit(str(quick_circuit), seed=1, model=str(tiny_path))


def test_explain_equals_the_cli(tiny, tiny_path, quick_circuit, corpus, tmp_path):
    path = tmp_path / "circuit.h5"
    shutil.copy(quick_circuit, path)
    printed = run_cli("explain", "--top", 3, "--windows", 4, "--threads", 1, "--model", tiny_path,
                      "--corpus", corpus, "--circuit", path).stdout
    by_cli = circuit.Circuit.read(str(path))
    c = circuit.Circuit.read(str(quick_circuit))
    assert c.explanations is None and c.describe_explanations() == ""
    e = circuit.explain(c, top=3, windows=4, threads=1, model=tiny, corpus=str(corpus))
    assert e == by_cli.explanations
    assert c.explanations == e  # stored in the Circuit, so that write keeps it
    lines = printed.splitlines(keepends=True)
    assert "".join(lines[:-1]) == c.describe_explanations()
    assert lines[-1].startswith(f"explained {len(c)} nodes in ")
    assert len(e["nodes"]) == len(c) and e["top"] == 3
    assert [n["label"] for n in e["nodes"]] == list(c.nodes["label"])
    assert max(len(n["top_contexts"]) for n in e["nodes"]) == 3  # top=3 (fewer where a node is mostly zero)
    # A path: returned, and written back only when asked.
    other = tmp_path / "other.h5"
    shutil.copy(quick_circuit, other)
    assert circuit.explain(str(other), top=3, windows=4, threads=1, model=tiny, corpus=str(corpus)) == e
    assert circuit.Circuit.read(str(other)).explanations is None
    circuit.explain(str(other), top=3, windows=4, threads=1, model=tiny, corpus=str(corpus), write=True)
    assert circuit.Circuit.read(str(other)).explanations == e


def test_explain_errors_are_the_cli_lines(tiny, tiny_path, quick_circuit, tmp_path):
    nowhere = tmp_path / "nowhere"
    cli = run_cli("explain", "--model", tiny_path, "--corpus", nowhere, "--circuit", quick_circuit, check=False)
    assert cli.returncode == 2
    with pytest.raises(ValueError) as e:
        circuit.explain(str(quick_circuit), model=tiny, corpus=str(nowhere))
    assert str(e.value) == cli.stderr.strip().removeprefix("circuit explain: ")
    assert "circuit corpus build" in str(e.value)
    with pytest.raises(ValueError, match="no such file"):
        circuit.explain(str(tmp_path / "none.h5"))
    with pytest.raises(ValueError, match="top must be >= 1, got 0"):
        circuit.explain(str(quick_circuit), top=0)
    fresh = circuit.extract(tiny, circuit.build_task("single_double_quote", tiny, seed=0, pairs=16), epochs=1,
                            importance=False)
    with pytest.raises(ValueError, match="write=True needs a circuit read from or written to a file"):
        circuit.explain(fresh, write=True)


def test_progress_errors_and_ctrl_c_stop_an_audit(tiny_path, quick_circuit):
    class Stop(Exception):
        pass

    def stop(stage, fraction):
        raise Stop(stage)

    with pytest.raises(Stop):
        circuit.audit(str(quick_circuit), seeds=0, threads=1, model=str(tiny_path), progress=stop)
    # SIGINT while the audit runs without the GIL: KeyboardInterrupt at its next progress report.
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        circuit.audit(str(quick_circuit), seeds=20, threads=1, model=str(tiny_path))
    assert time.monotonic() - start < 5
