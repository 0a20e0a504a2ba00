"""Writes a small BDH checkpoint as pathwaycom/bdh's train.py would save it, as
the import test's fixture:

  OUT/bdh.pt           torch.save(state_dict) with the reference's keys (and the
                       RoPE buffer attn.freqs); --compiled prefixes every key
                       with "_orig_mod." as torch.compile's wrapper does
  OUT/reference.json   n_layer, tokens (B, T) and the reference logits (B, T, V)

Usage: make_bdh_model.py --out DIR [--compiled] [--vocab 2048]
Exits 77 when torch is not installed (the C++ test then skips, or fails in CI).
"""
import argparse
import collections
import json
import os
import sys

try:
    import torch
except ImportError:
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import bdh_reference  # noqa: E402

N_LAYER, D, HEADS, N = 3, 16, 2, 32  # N = mlp_internal_dim_multiplier (4) * D / HEADS


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--compiled", action="store_true")
    p.add_argument("--vocab", type=int, default=2048)
    args = p.parse_args()
    gen = torch.Generator().manual_seed(11)

    def w(*shape, std):
        return torch.randn(*shape, generator=gen) * std

    # The reference's parameter and buffer order; weights larger than its
    # N(0, 0.02) init so that the logits are far from zero.
    sd = collections.OrderedDict()
    sd["decoder"] = w(HEADS * N, D, std=0.2)
    sd["encoder"] = w(HEADS, D, N, std=0.3)
    sd["encoder_v"] = w(HEADS, D, N, std=0.3)
    sd["lm_head"] = w(D, args.vocab, std=0.3)
    sd["attn.freqs"] = bdh_reference.rope_frequencies(N).view(1, 1, 1, N)
    sd["embed.weight"] = w(args.vocab, D, std=1.0)
    tokens = torch.randint(0, args.vocab, (2, 13), generator=gen)
    with torch.no_grad():
        logits = bdh_reference.forward(sd, tokens, N_LAYER)
    saved = collections.OrderedDict(
        (("_orig_mod." + k) if args.compiled else k, v) for k, v in sd.items())
    os.makedirs(args.out, exist_ok=True)
    torch.save(saved, os.path.join(args.out, "bdh.pt"))
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump({"n_layer": N_LAYER, "tokens": tokens.tolist(), "shape": list(logits.shape),
                   "logits": logits.reshape(-1).tolist()}, f)


if __name__ == "__main__":
    main()
