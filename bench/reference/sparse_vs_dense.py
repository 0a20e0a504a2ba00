#!/usr/bin/env python3
"""y = x W^T with each weight matrix dense, as CSR and as COO (torch CPU).

  sparse_vs_dense.py EXPORT_DIR [ROWS] [THREADS]    (default 2304 rows, 2 threads)

EXPORT_DIR: `circuit export-torch --out DIR`. Prints milliseconds per product
for layer 0's matrices: where a sparse kernel would pay at the model's density.
"""
import sys, time
import torch

export, rows = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2304
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
weights = torch.load(f"{export}/final_model.pt")


def ms(f, n=20):
    f()
    start = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - start) / n * 1e3


for name in ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]:
    w = weights[f"transformer.h.0.{name}.weight"].float()
    x = torch.randn(rows, w.shape[1])
    csr, coo = w.to_sparse_csr(), w.to_sparse()
    print(f"{name} {tuple(w.shape)} density {(w != 0).float().mean():.4f}: "
          f"dense {ms(lambda: torch.nn.functional.linear(x, w)):.2f} ms, "
          f"CSR {ms(lambda: (csr @ x.t()).t()):.2f} ms, "
          f"COO {ms(lambda: torch.sparse.mm(coo, x.t()).t()):.2f} ms")
