"""The quote circuit of the bundled model, from Python: extract it, list its
nodes, patch one node and watch the loss (docs/python.md).

    PYTHONPATH=build/python python3 examples/quote_circuit.py [OUT_DIR]

Takes what `circuit extract --task single_double_quote` takes (about 5 minutes on
two cores, refinement included); writes OUT_DIR/circuit.h5 (default out/python).
"""
import os
import sys
import time

import torch

import circuit

out_dir = sys.argv[1] if len(sys.argv) > 1 else "out/python"
circuit.set_threads(0)  # all cores, as the CLI's default --threads (torch may start with one)
model = circuit.load_model()  # data/models/default.h5
task = circuit.build_task("single_double_quote", model, seed=0)  # extract's splits
print(model)
print(task)
full = circuit.evaluate(model, task)
print(f"full model: test loss {full['loss']:.4f}, accuracy {full['accuracy']:.3f}")

# Extraction, with a line per stage; Ctrl-C stops it.
start, last = time.monotonic(), [None]


def progress(stage, fraction):
    if stage != last[0]:
        last[0] = stage
        print(f"  [{time.monotonic() - start:6.1f} s] {stage}", flush=True)


c = circuit.extract(model, task, progress=progress)
os.makedirs(out_dir, exist_ok=True)
c.write(os.path.join(out_dir, "circuit.h5"))
print(c)
print(f"circuit loss {c.circuit_loss:.4f} (target {c.target_loss}), without the circuit "
      f"{c.necessity_loss:.4f}, minimality {c.minimality:.2f}")

# The nodes, most important first (importance: the test loss when the node is ablated too).
nodes = c.nodes
order = sorted(range(len(c)), key=lambda i: -nodes["importance"][i])
print("nodes, most important first:")
for i in order:
    print(f"  {nodes['label'][i]:<24} importance {nodes['importance'][i]:.4f}")

# Patching with hooks: every channel outside `keep` replaced by its mean (what
# mean ablation does), then the most important node too.
means = circuit.means(model, task)


def keep_only(keep):
    hooks = {}
    for name in model.tap_names:
        mask = torch.zeros_like(means[name])
        mask[keep.get(name, [])] = 1
        hooks[name] = lambda x, m=mask, mu=means[name]: x * m + (1 - m) * mu
    return hooks


keep = c.tap_nodes  # {"0.attn.q": [36], ...}
top = nodes["label"][order[0]]
layer, location, index = top[1:].split(" ")
name = location if location == "final_resid" else f"{layer}.{location}"
without_top = dict(keep, **{name: [i for i in keep[name] if i != int(index)]})
alone = circuit.evaluate(model, task, hooks=keep_only(keep))
patched = circuit.evaluate(model, task, hooks=keep_only(without_top))
print(f"circuit alone:           loss {alone['loss']:.4f}, accuracy {alone['accuracy']:.3f}")
print(f"circuit without {top}: loss {patched['loss']:.4f}, accuracy {patched['accuracy']:.3f}")

# The same node in the whole model, on one prompt and its twin.
test = task.split(model, "test")
for prompt in test["prompts"][:2]:
    _, cache = model.run_with_cache(prompt, names=[name])
    print(f"  {top} at the last token of {prompt[-30:]!r}: {cache[name][-1, int(index)]:+.3f}")
