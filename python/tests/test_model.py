"""The model, tokenizer and tasks from Python against the C++ tools."""
import gc
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import circuit
from conftest import run_cli


def test_forward_equals_cpp(tiny, tiny_path, tmp_path):
    # circuit eval --logits: the C++ logits at each test prompt's last token.
    npy = tmp_path / "logits.npy"
    run_cli("eval", "--task", "single_double_quote", "--model", tiny_path, "--threads", 1,
            "--seed", 3, "--logits", npy)
    reference = torch.from_numpy(np.load(npy))
    task = circuit.build_task("single_double_quote", tiny, seed=3)  # eval's test split: 128 pairs
    assert reference.shape == (2 * 128, tiny.config["vocab_size"])
    at, full = [], []
    for start in range(0, reference.shape[0], 64):  # eval's batches of 64 prompts
        b = task.batch("test", start, start + 64)
        at.append(tiny.forward_at(b["tokens"], b["last"]))
        logits = tiny(b["tokens"])  # (B, T, vocab)
        full.append(logits[torch.arange(len(b["last"])), b["last"]])
    # Equal on the Intel machines this was written on; an AMD EPYC's BLAS
    # rounds the last bit differently for eval's batch shapes (at most 1.5e-7).
    torch.testing.assert_close(torch.cat(at), reference, rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.cat(full), reference, rtol=0, atol=1e-6)
    # One prompt alone, unbatched, is the same forward pass.
    one = task.split(tiny, "test")["tokens"][0]
    assert torch.equal(tiny(one), tiny(one.unsqueeze(0))[0])


def test_run_with_cache_taps(tiny):
    tokens = torch.tensor([tiny.tokenizer.encode("x = 'a'\nprint(x)\n")])
    plain = tiny(tokens)
    logits, cache = tiny.run_with_cache(tokens)
    assert torch.equal(logits, plain)
    c = tiny.config
    assert list(cache) == tiny.tap_names
    assert len(cache) == c["n_layer"] * 8 + 1
    widths = {"attn.act_in": c["d_model"], "attn.q": c["n_head"] * c["d_head"], "attn.k": c["n_head"] * c["d_head"],
              "attn.v": c["n_head"] * c["d_head"], "attn.resid_delta": c["d_model"], "mlp.act_in": c["d_model"],
              "mlp.post_act": c["d_mlp"], "mlp.resid_delta": c["d_model"]}
    for layer in range(c["n_layer"]):
        for loc, width in widths.items():
            assert cache[f"{layer}.{loc}"].shape == (1, tokens.shape[1], width)
    # AbsTopK keeps floor(afrac * width) channels at the sparse locations.
    k = int(c["afrac"] * c["d_mlp"])
    assert int((cache["0.mlp.post_act"][0, -1] != 0).sum()) <= k
    # final_resid is what the unembedding reads: the logits follow from it and the weights.
    w = tiny.state_dict()
    x = cache["final_resid"]
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + torch.finfo(torch.float32).eps) * w["transformer.ln_f.weight"]
    expect = x @ w["lm_head.weight"].T + w["final_logits_bias"] + w["bigram_table"][tokens[0]]
    torch.testing.assert_close(expect, logits, rtol=1e-5, atol=1e-5)
    # Some names only; writing the cached value back changes nothing.
    _, some = tiny.run_with_cache(tokens, names=["1.attn.q", "final_resid"])
    assert list(some) == ["1.attn.q", "final_resid"]
    assert torch.equal(some["1.attn.q"], cache["1.attn.q"])
    same = tiny.run_with_hooks(tokens, {"1.attn.q": lambda a: cache["1.attn.q"]})
    assert torch.equal(same, logits)


def test_run_with_hooks_replaces_the_activation(tiny):
    tokens = torch.tensor(tiny.tokenizer.encode("def f(a):\n    return a\n"))
    seen = []
    kept = tiny.run_with_hooks(tokens, {"0.mlp.post_act": lambda a: seen.append(a.shape)})
    assert torch.equal(kept, tiny(tokens)) and seen == [(1, tokens.shape[0], tiny.config["d_mlp"])]
    zeroed = tiny.run_with_hooks(tokens, [("0.mlp.post_act", torch.zeros_like), ("1.mlp.post_act", torch.zeros_like)])
    assert not torch.equal(zeroed, kept)
    with pytest.raises(ValueError, match="hook 0.attn.v returned shape"):
        tiny.run_with_hooks(tokens, {"0.attn.v": lambda a: a[..., :3]})
    with pytest.raises(ValueError, match="unknown tap name '9.attn.q'"):
        tiny.run_with_hooks(tokens, {"9.attn.q": lambda a: a})
    with pytest.raises(ZeroDivisionError):  # the hook's own error comes through
        tiny.run_with_hooks(tokens, {"0.attn.v": lambda a: 1 / 0})


def test_tokenizer_and_tasks(tiny):
    tok = tiny.tokenizer
    text = "for i in range(3):\n    print('é')\n"
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(torch.tensor(tok.encode(text))) == text
    assert tok.vocab_size == tiny.config["vocab_size"] and tok.eot_id == tok.vocab_size - 1
    with pytest.raises(ValueError, match="token id 99999 is not in"):
        tok.decode([99999])
    names = [t["name"] for t in circuit.tasks()]
    assert "single_double_quote" in names and names == sorted(names)
    task = circuit.build_task("single_double_quote", tiny, seed=1, pairs=16)
    test = task.split(tiny, "test")
    assert len(test["prompts"]) == 16 and test["correct"].shape == (16,)
    assert tok.decode(test["tokens"][0]) == test["prompts"][0]
    m = circuit.evaluate(tiny, task, split="test")
    assert m["n"] == 16 and 0 <= m["accuracy"] <= 1 and m["loss"] > 0
    user = circuit.build_task([{"prompt": "x = 'a", "twin": 'x = "a', "correct": "'", "alternative": '"'}] * 1 +
                              [{"prompt": "y = 'b", "twin": 'y = "b', "correct": "'", "alternative": '"'}],
                              tiny, name="mine", pairs=1)
    assert user.name == "mine" and user.paired
    with pytest.raises(ValueError, match="mine:1"):
        circuit.build_task([{"prompt": "x", "correct": "'"}], tiny, name="mine")


def test_errors_are_the_cli_messages(tiny, tiny_path, tmp_path):
    missing = tmp_path / "missing.h5"
    with pytest.raises(ValueError) as e:
        circuit.load_model(str(missing))
    cli = run_cli("eval", "--task", "single_double_quote", "--model", missing, check=False)
    assert cli.returncode == 2 and cli.stderr == f"circuit eval: {e.value}\n"
    with pytest.raises(ValueError) as e:
        circuit.build_task("no_such_task", tiny)
    cli = run_cli("eval", "--task", "no_such_task", "--model", tiny_path, check=False)
    assert cli.stderr == f"circuit eval: {e.value}\n"
    with pytest.raises(ValueError, match="no such file"):
        circuit.Circuit.read(str(missing))
    with pytest.raises(ValueError):
        circuit.load_model(str(tiny_path), device="tpu")
    with pytest.raises(ValueError, match="tokens: ids must be in"):
        tiny(torch.tensor([0, 5, 99999]))
    with pytest.raises(ValueError, match="tokens: length 65, expected 1..64"):
        tiny(torch.zeros(65, dtype=torch.long))
    with pytest.raises(ValueError, match="expected an integer tensor"):
        tiny(torch.zeros(3))


def test_no_leak_over_1000_forward_calls(tiny):
    tokens = torch.tensor([tiny.tokenizer.encode("print('hello')\n")])

    def rss_pages():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1])

    for _ in range(100):  # warm up allocator caches
        tiny(tokens)
    gc.collect()
    refs, objects, rss = sys.getrefcount(tokens), len(gc.get_objects()), rss_pages()
    for _ in range(1000):
        out = tiny(tokens)
    del out
    gc.collect()
    assert sys.getrefcount(tokens) == refs
    assert len(gc.get_objects()) <= objects + 10
    # 1,000 leaked logits of (1, 5, 2048) float32 would be 40 MB; allow 4 MB of noise.
    assert (rss_pages() - rss) * 4096 < 4 << 20


def test_files_that_crash_or_hang_libhdf5_are_errors(tiny, tmp_path, monkeypatch):
    # Corrupted global heaps on which Debian's libhdf5 1.10.8 segfaults or loops
    # (docs/reliability.md): the module, which has torch's threads running by
    # now, gets the same one-line error as the CLI, in bounded time.
    monkeypatch.setenv("CIRCUIT_HDF5_CHECK_SECONDS", "3")
    corpus = Path(__file__).resolve().parents[2] / "tests" / "fuzz" / "corpus" / "circuit_file"
    for name, how in (("regress_hdf5_segv_global_heap.h5", "crashed"),
                      ("regress_hdf5_segv_past_walk.h5", "crashed"),
                      ("regress_hdf5_hang_global_heap.h5", "hung")):
        start = time.monotonic()
        with pytest.raises(ValueError, match=f"{name}: corrupt HDF5 file \\(libhdf5 {how} reading it"):
            circuit.Circuit.read(str(corpus / name))
        # Read as a model, they are refused as well: by the first of the model
        # reader's own calls that fails (for the segfaulting ones, the format
        # check, before the attribute on which libhdf5 crashes).
        with pytest.raises(ValueError, match=f"{name}: "):
            circuit.load_model(str(corpus / name))
        assert time.monotonic() - start < 30
