"""Python's cost on a forward pass: Model.__call__ against the same C++ forward
in a C++ loop, in one process, alternating (docs/performance.md, "Python").

    PYTHONPATH=build/python OMP_WAIT_POLICY=passive python3 bench/python_forward.py [--threads N]
"""
import argparse
import statistics
import time

import torch

import circuit

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--rounds", type=int, default=7)
args = parser.parse_args()
circuit.set_threads(args.threads)
model = circuit.load_model()
print(f"{model}, {args.threads} threads, {args.rounds} rounds, each timing C++ and Python in turn "
      "(which goes first alternates); per call, the fastest round and the median round")
print(f"{'tokens (B, T)':>14} {'calls':>6} {'C++ min':>9} {'Py min':>9} {'overhead':>9} "
      f"{'C++ med':>9} {'Py med':>9} {'overhead':>9}")
for batch, length, calls in [(1, 16, 200), (1, 256, 40), (32, 64, 20), (32, 256, 5)]:
    tokens = torch.randint(0, model.config["vocab_size"] - 1, (batch, length))
    model(tokens), circuit._cpp_forward_seconds(model, tokens, 1)  # warm up
    cpp, py = [], []
    def time_python():
        start = time.perf_counter()
        for _ in range(calls):
            model(tokens)
        py.append((time.perf_counter() - start) / calls)

    for round in range(args.rounds):
        if round % 2:
            time_python()
        cpp.append(circuit._cpp_forward_seconds(model, tokens, calls))
        if not round % 2:
            time_python()
    row = f"{str((batch, length)):>14} {calls:>6}"
    for c, p in [(min(cpp), min(py)), (statistics.median(cpp), statistics.median(py))]:
        row += f" {1e3 * c:9.3f} {1e3 * p:9.3f} {100 * (p - c) / c:+8.1f}%"
    print(row)
