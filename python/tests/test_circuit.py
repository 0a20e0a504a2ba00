"""circuit.extract and circuit.Circuit against `circuit extract` and `circuit ablate`."""
import json
import math
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

import circuit
from conftest import run_cli

# The CLI test's quick extraction: 16 pairs, one mask step, one thread.
QUICK = ["--task", "single_double_quote", "--pairs", 16, "--epochs", 1, "--no-importance",
         "--threads", 1, "--no-explain"]


@pytest.fixture(scope="module")
def cli_circuit(tiny_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("extract")
    run_cli("extract", *QUICK, "--model", tiny_path, "--out", out)
    return out / "circuit.h5"


def assert_same_circuit(a, b):
    for key in ("layer", "location", "index", "mask_logit"):
        np.testing.assert_array_equal(a.nodes[key], b.nodes[key], err_msg=key)
    for key in ("src", "dst", "weight"):
        np.testing.assert_array_equal(a.edges[key], b.edges[key], err_msg=key)
    for key in ("circuit_loss", "full_model_loss", "necessity_loss", "random_baseline_loss", "accuracy",
                "total_nodes", "task", "model_digest", "seed"):
        assert getattr(a, key) == getattr(b, key), key
    np.testing.assert_array_equal(a.loss_vs_k["k"], b.loss_vs_k["k"])
    np.testing.assert_array_equal(a.loss_vs_k["loss"], b.loss_vs_k["loss"])


def test_extract_equals_the_cli(tiny, cli_circuit, tmp_path):
    task = circuit.build_task("single_double_quote", tiny, seed=0, pairs=16)
    stages = []
    c = circuit.extract(tiny, task, epochs=1, importance=False, progress=lambda s, f: stages.append(s))
    assert {"means", "masks", "discretize", "verify"} <= set(stages)
    assert_same_circuit(c, circuit.Circuit.read(str(cli_circuit)))
    assert c.stats["mask_steps"] == 1
    # write / read keep it, field for field.
    c.write(str(tmp_path / "c.h5"))
    assert_same_circuit(c, circuit.Circuit.read(str(tmp_path / "c.h5")))
    assert "single_double_quote" in c.summary()


def test_extract_options_and_errors(tiny):
    task = circuit.build_task("single_double_quote", tiny, seed=0, pairs=16)
    with pytest.raises(ValueError, match=r"confidence must be in \[0.5, 1\)"):
        circuit.extract(tiny, task, confidence=0.3)
    with pytest.raises(ValueError, match="huge"):
        circuit.extract(tiny, task, preset="huge")
    with pytest.raises(ValueError, match="sideways"):
        circuit.extract(tiny, task, ablation="sideways")
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        circuit.extract(tiny, task, epoch=1)
    with pytest.raises(ValueError, match="refine_limit must be >= 0"):
        circuit.extract(tiny, task, refine_limit=-1)


def test_progress_errors_and_ctrl_c_stop_extraction(tiny):
    task = circuit.build_task("single_double_quote", tiny, seed=0, pairs=64)

    class Stop(Exception):
        pass

    def stop_at_masks(stage, fraction):
        if stage == "masks":
            raise Stop(stage)

    with pytest.raises(Stop):
        circuit.extract(tiny, task, epochs=400, progress=stop_at_masks)
    # SIGINT while the engine runs without the GIL: KeyboardInterrupt at the next progress report.
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        circuit.extract(tiny, task, epochs=400)
    assert time.monotonic() - start < 5


def mean_ablation_hooks(model, means, keep):
    """Hooks that replace every channel not in keep ({tap name: [channel]}) by its mean."""
    hooks = {}
    for name in model.tap_names:
        mask = torch.zeros_like(means[name])
        mask[keep.get(name, [])] = 1
        hooks[name] = lambda x, m=mask, mu=means[name]: x * m + (1 - m) * mu
    return hooks


def test_mean_hooks_change_the_loss_as_ablate_says(tiny, tiny_path, cli_circuit, tmp_path):
    c = circuit.Circuit.read(str(cli_circuit))
    report = json.loads(run_cli("ablate", "--circuit", cli_circuit, "--model", tiny_path, "--json",
                                "--top", 0, "--random-draws", 0, "--threads", 1).stdout)
    task = circuit.build_task(c.task, tiny, seed=c.seed, pairs=16)  # the circuit's splits
    means = circuit.means(tiny, task)
    assert set(means) == set(tiny.tap_names)
    full = circuit.evaluate(tiny, task, split="test")["loss"]
    assert full == pytest.approx(report["loss"]["full_model"], abs=1e-6)
    keep = c.tap_nodes
    kept = circuit.evaluate(tiny, task, hooks=mean_ablation_hooks(tiny, means, keep))["loss"]
    assert kept == pytest.approx(report["loss"]["circuit"], abs=1e-6)
    # Each of the three most important nodes replaced by its mean on top of that.
    for row in report["nodes"][:3]:
        layer, location, index = row["node"][1:].split(" ")
        name = location if location == "final_resid" else f"{layer}.{location}"
        fewer = dict(keep)
        fewer[name] = [i for i in keep[name] if i != int(index)]
        loss = circuit.evaluate(tiny, task, hooks=mean_ablation_hooks(tiny, means, fewer))["loss"]
        assert loss == pytest.approx(row["importance"], abs=1e-6), row["node"]
        assert loss != kept


def test_circuit_views(tiny, tmp_path):
    # A small target-meeting circuit: the random model's loss is ~ln 2 everywhere.
    task = circuit.build_task("single_double_quote", tiny, seed=0, pairs=16)
    c = circuit.extract(tiny, task, epochs=1, target_loss=0.7, confidence=0.5, importance=False)
    assert len(c) == len(c.nodes["layer"]) < c.total_nodes
    assert c.stats["met_target"]
    svg = c._repr_svg_()
    assert svg.startswith("<?xml") and "<svg" in svg
    nx = pytest.importorskip("networkx")
    full = circuit.extract(tiny, task, epochs=1, importance=False)
    g = full.to_networkx()
    assert isinstance(g, nx.DiGraph)
    assert g.number_of_nodes() == len(full) and g.number_of_edges() == len(full.edges["src"])
    assert full._repr_svg_() is None  # 608 nodes: too many to lay out; the notebook shows the repr
    assert math.isfinite(full.circuit_loss)
