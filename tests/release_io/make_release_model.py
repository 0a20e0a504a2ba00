"""Writes a small model directory in the release's format, as the tests' fixture:

  OUT/beeg_config.json   GPTConfig fields + an older release's training-only keys + n_mlp
  OUT/final_model.pt     torch.save(state_dict) with the release's key names
  OUT/encoder.json, OUT/vocab.bpe   a GPT-2-format byte-level BPE tokenizer
  OUT/reference.json     tokens (B, T) and the reference logits (B, T, V)

Usage: make_release_model.py --out DIR --variant added|catpos|tied_nobias
       make_release_model.py --out DIR --malformed   (odd torch.save files)
Exits 77 when torch is not installed (the C++ test then skips).
"""
import argparse
import collections
import json
import os
import sys
import zipfile

try:
    import torch
except ImportError:
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import release_reference  # noqa: E402

VOCAB = 260  # 256 bytes + 3 merges + <|endoftext|>

VARIANTS = {
    # csp_yolo1-like: added positions, no AbsTopK, non-flash (causal-mask buffers
    # in the state dict), no final_logits_bias in the file.
    "added": dict(d_pos_emb=None, afrac=None, sink=False, flash=False, bias=True,
                  tied_unembed=False, activation_type="gelu"),
    # csp_yolo2-like: concatenated positions, sink, AbsTopK at all eight locations.
    "catpos": dict(d_pos_emb=8, afrac=0.25, sink=True, flash=True, bias=True, tied_unembed=False,
                   activation_type="gelu",
                   afrac_loctypes="attn_in,attn_out,mlp_in,mlp_out,mlp_neuron,attn_v,attn_k,attn_q"),
    # What we support by conversion: tied unembedding, no biases; relu MLP.
    "tied_nobias": dict(d_pos_emb=None, afrac=None, sink=False, flash=True, bias=False,
                        tied_unembed=True, activation_type="relu"),
}


def write_tokenizer(out):
    """GPT-2's byte-to-unicode table, 3 merges, <|endoftext|> last."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_char = {b: chr(c) for b, c in zip(bs, cs)}
    encoder = {byte_char[b]: i for i, b in enumerate(bs)}
    merges = [("p", "r"), ("i", "n"), ("pr", "in")]
    for a, b in merges:
        encoder[a + b] = len(encoder)
    encoder["<|endoftext|>"] = len(encoder)
    assert len(encoder) == VOCAB
    with open(os.path.join(out, "encoder.json"), "w") as f:
        json.dump(encoder, f)
    with open(os.path.join(out, "vocab.bpe"), "w") as f:
        f.write("#version: 0.2\n" + "".join("%s %s\n" % m for m in merges))


def make_state_dict(v, cfg, gen):
    D, H, dh, M, L = cfg["d_model"], cfg["n_head"], cfg["d_head"], cfg["d_mlp"], cfg["n_layer"]
    P = v["d_pos_emb"]
    d_in = D + (P or 0)
    A = H * dh

    def w(*shape, std=0.3, density=0.5):  # weight-sparse-ish random weights
        t = torch.randn(*shape, generator=gen) * std
        return t * (torch.rand(*shape, generator=gen) < density)

    sd = collections.OrderedDict()
    sd["transformer.wte.weight"] = w(VOCAB, D, std=1.0, density=1.0)
    sd["transformer.wpe.weight"] = w(cfg["block_size"], P or D, std=0.5, density=1.0)
    for l in range(L):
        p = "transformer.h.%d." % l
        sd[p + "ln_1.weight"] = 1.0 + 0.1 * torch.randn(D, generator=gen)
        sd[p + "attn.c_attn.weight"] = w(3 * A, d_in)
        if v["bias"]:
            sd[p + "attn.c_attn.bias"] = w(3 * A, std=0.1)
        sd[p + "attn.c_proj.weight"] = w(D, A)
        if v["bias"]:
            sd[p + "attn.c_proj.bias"] = w(D, std=0.1)
        if v["sink"]:
            sd[p + "attn.attn_imp.sink_logit"] = torch.randn(H, generator=gen)
        if not v["flash"]:
            sd[p + "attn.bias"] = torch.tril(torch.ones(cfg["block_size"], cfg["block_size"])).view(
                1, 1, cfg["block_size"], cfg["block_size"])
        sd[p + "ln_2.weight"] = 1.0 + 0.1 * torch.randn(D, generator=gen)
        sd[p + "mlp.c_fc.weight"] = w(M, d_in)
        if v["bias"]:
            sd[p + "mlp.c_fc.bias"] = w(M, std=0.1)
        sd[p + "mlp.c_proj.weight"] = w(D, M)
        if v["bias"]:
            sd[p + "mlp.c_proj.bias"] = w(D, std=0.1)
        if P:
            sd[p + "ln_p1.weight"] = 1.0 + 0.1 * torch.randn(P, generator=gen)
            sd[p + "ln_p2.weight"] = 1.0 + 0.1 * torch.randn(P, generator=gen)
    sd["transformer.ln_f.weight"] = 1.0 + 0.1 * torch.randn(D, generator=gen)
    # Tied: the same tensor under both names, as GPT.state_dict() gives it.
    sd["lm_head.weight"] = sd["transformer.wte.weight"] if v["tied_unembed"] else w(VOCAB, D)
    if v["flash"]:  # the "added" variant leaves it out: zero if absent
        sd["final_logits_bias"] = w(VOCAB, std=0.1, density=1.0)
    sd["bigram_table"] = w(VOCAB, VOCAB, std=0.5, density=0.2)
    sd._metadata = collections.OrderedDict({"": {"version": 1}})
    return sd


def make_model(out, variant, seed):
    v = VARIANTS[variant]
    raw = dict(block_size=16, vocab_size=VOCAB, n_layer=2, n_head=4, d_head=None, d_model=32,
               dropout=0.0, bias=v["bias"], ln_bias=True, rms_norm=True,
               residual_activation_type="identity", activation_type=v["activation_type"],
               afrac=v["afrac"], afrac_loctypes=v.get("afrac_loctypes", "attn_in,attn_out,mlp_in,mlp_out"),
               debug_nans=False, tied_unembed=v["tied_unembed"], tokenizer_name="tinypython_2k",
               grad_checkpointing=True, n_mlp=96, enable_bigram_table=True,
               learnable_bigram_table=True, d_pos_emb=v["d_pos_emb"], dropout_cat_pos_emb=False,
               sinusoidal_cat_pos_emb=False, enable_sparse_kernels=False, flash=v["flash"],
               sink=v["sink"],
               # training-only keys of older releases' configs (release_reference.LEGACY_KEYS)
               bigram_table_rank=None, pfrac=0.0625, expansion_factor=8, afrac_approx=False,
               rtopk=False, debug_exact_topk=False, sparse_matmul_impl="dense")
    with open(os.path.join(out, "beeg_config.json"), "w") as f:
        json.dump(raw, f, indent=1)
    cfg, _ = release_reference.load_config(os.path.join(out, "beeg_config.json"), legacy=True)
    gen = torch.Generator().manual_seed(seed)
    sd = make_state_dict(v, cfg, gen)
    torch.save(sd, os.path.join(out, "final_model.pt"))
    write_tokenizer(out)
    tokens = torch.randint(0, VOCAB, (2, 12), generator=gen)
    with torch.no_grad():
        logits = release_reference.forward(cfg, dict(sd), tokens)
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"tokens": tokens.tolist(), "shape": list(logits.shape),
                   "logits": logits.flatten().tolist()}, f)


def make_malformed(out):
    """Files that are torch.save() archives but not state dicts of float tensors."""
    t = torch.ones(2, 3)
    torch.save({"a": t, "step": 7}, os.path.join(out, "not_tensor.pt"))
    torch.save([t, t], os.path.join(out, "list.pt"))
    torch.save({"layer": torch.nn.Linear(2, 2)}, os.path.join(out, "module.pt"))
    torch.save({"a": torch.arange(6).view(2, 3)}, os.path.join(out, "int64.pt"))
    # Views sharing one storage, non-contiguous, half and bfloat16: all must load.
    base = torch.arange(24, dtype=torch.float32).view(4, 6)
    sd = collections.OrderedDict(
        [("full", base), ("rows", base[1:3]), ("cols", base[:, 2:5]), ("t", base.t()),
         ("half", base.half()), ("bf16", base.bfloat16()), ("double", base.double())])
    torch.save(sd, os.path.join(out, "views.pt"))
    # Protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL) must load too.
    torch.save(sd, os.path.join(out, "views_protocol4.pt"), pickle_protocol=4)
    # Newer PyTorch adds records (byteorder, .data/serialization_id) and names the
    # folder after the file; a big-endian byteorder must be refused.
    for name, order in (("views_torch2.pt", b"little"), ("big_endian.pt", b"big")):
        with zipfile.ZipFile(os.path.join(out, "views.pt")) as src, \
                zipfile.ZipFile(os.path.join(out, name), "w", zipfile.ZIP_STORED) as dst:
            folder = name[:-3]
            for item in src.namelist():
                dst.writestr(folder + item[item.index("/"):], src.read(item))
            dst.writestr(folder + "/byteorder", order)
            dst.writestr(folder + "/.data/serialization_id", b"1234567890")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--variant", choices=sorted(VARIANTS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--malformed", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.malformed:
        make_malformed(args.out)
    else:
        make_model(args.out, args.variant, args.seed)


if __name__ == "__main__":
    main()
