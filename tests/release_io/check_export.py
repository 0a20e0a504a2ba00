"""Checks a directory written by `circuit export-torch` / ExportReleaseModel from
the Python side, as the release would load it:

  * beeg_config.json passes the release's current load_model(path, flash=True):
    only GPTConfig fields (not even bigram_table_rank, which load_model no
    longer pops), so GPTConfig(**config) accepts it;
  * final_model.pt loads with torch.load(weights_only=True) into float32 tensors
    equal to the original release-format state dict (after the import's
    conversions: mask buffers dropped, zero final_logits_bias, untied lm_head,
    zero biases);
  * the release forward pass on the exported files reproduces the reference logits.

Usage: check_export.py --exported DIR --reference DIR   (exit 0: ok; 77: no torch)
"""
import argparse
import json
import os
import re
import sys

try:
    import torch
except ImportError:
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import release_reference  # noqa: E402


def fail(msg):
    print("check_export: " + msg)
    sys.exit(1)


def expected_state_dict(ref_dir):
    cfg, _ = release_reference.load_config(os.path.join(ref_dir, "beeg_config.json"), legacy=True)
    sd = torch.load(os.path.join(ref_dir, "final_model.pt"), weights_only=True)
    out = {k: v for k, v in sd.items() if not re.fullmatch(r"transformer\.h\.\d+\.attn\.bias", k)}
    out.setdefault("final_logits_bias", torch.zeros(cfg["vocab_size"]))
    if cfg["tied_unembed"]:
        out["lm_head.weight"] = out["transformer.wte.weight"]
    if not cfg["bias"]:
        A = cfg["n_head"] * cfg["d_head"]
        for l in range(cfg["n_layer"]):
            p = "transformer.h.%d." % l
            out[p + "attn.c_attn.bias"] = torch.zeros(3 * A)
            out[p + "attn.c_proj.bias"] = torch.zeros(cfg["d_model"])
            out[p + "mlp.c_fc.bias"] = torch.zeros(cfg["d_mlp"])
            out[p + "mlp.c_proj.bias"] = torch.zeros(cfg["d_model"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exported", required=True)
    ap.add_argument("--reference", required=True)
    args = ap.parse_args()

    try:
        cfg, raw = release_reference.load_config(os.path.join(args.exported, "beeg_config.json"))
    except (TypeError, AssertionError) as e:
        fail("the release's load_model would reject beeg_config.json: %s" % e)
    missing = release_reference.GPTCONFIG_FIELDS - set(raw)
    if missing:
        fail("beeg_config.json lacks GPTConfig fields %s" % sorted(missing))

    sd = torch.load(os.path.join(args.exported, "final_model.pt"), weights_only=True)
    want = expected_state_dict(args.reference)
    if set(sd) != set(want):
        fail("keys differ: extra %s, missing %s" % (sorted(set(sd) - set(want)),
                                                     sorted(set(want) - set(sd))))
    for k, v in sd.items():
        if v.dtype != torch.float32:
            fail("%s is %s, not float32" % (k, v.dtype))
        if not torch.equal(v, want[k].float()):
            fail("%s differs from the original" % k)

    with open(os.path.join(args.reference, "reference.json")) as f:
        ref = json.load(f)
    tokens = torch.tensor(ref["tokens"])
    with torch.no_grad():
        logits = release_reference.forward(cfg, sd, tokens)
    want_logits = torch.tensor(ref["logits"]).view(ref["shape"])
    err = (logits - want_logits).abs().max().item()
    if err > 1e-4:
        fail("logits of the exported model differ by %g" % err)
    for name in ("encoder.json", "vocab.bpe"):
        if not os.path.exists(os.path.join(args.exported, name)):
            fail("%s missing" % name)
    print("check_export: ok (%d tensors, max logit error %.3g)" % (len(sd), err))


if __name__ == "__main__":
    main()
