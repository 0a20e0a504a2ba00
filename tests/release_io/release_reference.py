"""The release's model loading and forward pass (circuit_sparsity/inference/gpt.py,
load_model and GPT.forward as of the release's commit 8a029a3, 2025-11-22),
restated for the tests: the reference our C++ import and export are held to.

Only torch (1.13, Debian's python3-torch) is needed. The release itself cannot
build its model under that torch: its Block and GPT construct nn.RMSNorm, which
torch 1.13 lacks, and CausalSelfAttention takes its flash path (the only one
that applies the attention sink) only when F.scaled_dot_product_attention
exists, so under torch 1.13 a sink model silently loses its sink. Both are
written out here as the release computes them under torch >= 2.0 with
load_model(path, flash=True).
"""
import json
import math

import torch
import torch.nn.functional as F

# GPTConfig's dataclass fields: GPTConfig(**config) raises TypeError for any
# other key, and the current load_model() hands it the file's keys unfiltered.
GPTCONFIG_FIELDS = {
    "block_size", "vocab_size", "n_layer", "n_head", "d_head", "d_model", "dropout", "bias",
    "ln_bias", "rms_norm", "residual_activation_type", "activation_type", "afrac",
    "afrac_loctypes", "debug_nans", "tied_unembed", "tokenizer_name", "grad_checkpointing",
    "d_mlp", "enable_bigram_table", "learnable_bigram_table", "d_pos_emb",
    "dropout_cat_pos_emb", "sinusoidal_cat_pos_emb", "enable_sparse_kernels", "flash", "sink",
}

# GPTConfig's defaults for the fields the forward pass reads.
DEFAULTS = dict(block_size=1024, vocab_size=50304, n_layer=12, n_head=12, d_head=None,
                d_model=768, bias=True, ln_bias=True, rms_norm=False,
                residual_activation_type="identity", activation_type="gelu", afrac=None,
                afrac_loctypes="attn_in,attn_out,mlp_in,mlp_out", tied_unembed=True,
                d_mlp=None, enable_bigram_table=False, d_pos_emb=None, flash=True, sink=False)

# Training-run keys that configs of older releases carry. load_model() popped
# them until 2025-11-22 ("remove shim"); now GPTConfig rejects them.
LEGACY_KEYS = {
    "bigram_table_rank", "pfrac", "expansion_factor", "expansion_factor_mlp", "afrac_approx",
    "ignore_dw_grad", "rtopk", "debug_exact_topk", "sparse_matmul_impl", "n_embd",
}

# Where the release's attention applies the sink at all.
RELEASE_HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def load_config(path, flash=True, legacy=False):
    """beeg_config.json as load_model(path, flash=flash) turns it into a GPTConfig.

    load_model renames n_mlp to d_mlp, sets flash from its argument (its own
    default is False), gives sink a default of False and asserts that a sink
    model is loaded with flash=True, sets grad_checkpointing, and drops
    use_tied_aux_matrix, which must be false. Every other key goes to GPTConfig,
    so one it lacks is a TypeError, as there. legacy=True first drops
    LEGACY_KEYS, to read fixtures written like an older release's directory.
    Returns (cfg with defaults filled, the file's raw dict).
    """
    with open(path) as f:
        raw = json.load(f)
    cfg_in = dict(raw)
    if legacy:
        for key in LEGACY_KEYS:
            cfg_in.pop(key, None)
    if "n_mlp" in cfg_in:
        cfg_in["d_mlp"] = cfg_in.pop("n_mlp")
    cfg_in["flash"] = flash
    cfg_in.setdefault("sink", False)
    if cfg_in["sink"] and not flash:
        raise AssertionError("the release asserts: a sink model needs flash=True")
    cfg_in["grad_checkpointing"] = False
    if "use_tied_aux_matrix" in cfg_in and cfg_in.pop("use_tied_aux_matrix"):
        raise AssertionError("the release asserts use_tied_aux_matrix is false")
    unknown = sorted(set(cfg_in) - GPTCONFIG_FIELDS)
    if unknown:
        raise TypeError("GPTConfig.__init__() got an unexpected keyword argument '%s'" % unknown[0])
    cfg = dict(DEFAULTS)
    cfg.update({k: v for k, v in cfg_in.items() if k in DEFAULTS})
    # GPTConfig.__post_init__
    if cfg["d_model"] % cfg["n_head"] != 0:
        raise AssertionError("GPTConfig asserts d_model % n_head == 0")
    if cfg["d_mlp"] is None:
        cfg["d_mlp"] = 4 * cfg["d_model"]
    if cfg["d_head"] is None:
        cfg["d_head"] = cfg["d_model"] // cfg["n_head"]
    return cfg, raw


def release_drops_sink(cfg):
    """True when the release, run under this torch, would compute without the sink."""
    return bool(cfg["sink"]) and not (cfg["flash"] and RELEASE_HAS_SDPA)


def norm(cfg, sd, name, x):
    """nn.RMSNorm(n) (eps None: the dtype's machine epsilon) when rms_norm, else the
    release's LayerNorm (eps 1e-5, bias when ln_bias)."""
    w = sd[name + ".weight"]
    if cfg["rms_norm"]:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + torch.finfo(x.dtype).eps) * w
    b = sd.get(name + ".bias") if cfg["ln_bias"] else None
    return F.layer_norm(x, w.shape, w, b, 1e-5)


def sparsify(cfg, x, loctype):
    """GPTConfig.maybe_activation_sparsity: keep the int(afrac * width) entries of
    largest magnitude at the listed locations, zero the rest."""
    if cfg["afrac"] is None or loctype not in cfg["afrac_loctypes"].split(","):
        return x
    k = int(cfg["afrac"] * x.shape[-1])
    _, keep = x.abs().topk(k, dim=-1, sorted=False)
    return torch.zeros_like(x).scatter(-1, keep, x.gather(-1, keep))


def linear(sd, name, x):
    return F.linear(x, sd[name + ".weight"], sd.get(name + ".bias"))


def attention(cfg, sd, prefix, q, k, v, has_sdpa=True):
    """Causal attention of (B, H, T, dh) q, k, v. With a sink (flash path,
    SDPAWithSink) one extra key of zeros with a zero value is visible from every
    query, its logit being the head's sink_logit."""
    B, H, T, dh = q.shape
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(dh)  # (B, H, T, T)
    lowest = torch.finfo(q.dtype).min
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    scores = scores.masked_fill(future, lowest)
    if cfg["sink"] and cfg["flash"] and has_sdpa:
        sink = sd[prefix + "attn.attn_imp.sink_logit"].view(1, H, 1, 1).expand(B, H, T, 1)
        weights = F.softmax(torch.cat([sink, scores], dim=-1), dim=-1)[..., 1:]
    else:
        weights = F.softmax(scores, dim=-1)
    return weights @ v


def forward(cfg, sd, idx, has_sdpa=True):
    """Logits (B, T, V) of GPT.forward for tokens idx (B, T). has_sdpa=False gives
    what the release computes under torch < 2.0 (no sink)."""
    B, T = idx.shape
    H, dh = cfg["n_head"], cfg["d_head"]
    cat_pos = cfg["d_pos_emb"] is not None
    # Tied: wte and lm_head are one parameter, and load_state_dict copies
    # lm_head.weight last, so its value wins when the file has both.
    wte = sd["transformer.wte.weight"]
    if cfg["tied_unembed"]:
        wte = sd.get("lm_head.weight", wte)
    pos = sd["transformer.wpe.weight"][:T].unsqueeze(0)  # (1, T, d_pos or d_model)
    x = F.embedding(idx, wte)
    if not cat_pos:
        x = x + pos
    act = {"gelu": F.gelu, "relu": F.relu}[cfg["activation_type"]]

    def block_input(name_ln, name_lnp, x):
        h = norm(cfg, sd, name_ln, x)
        if cat_pos:
            h = torch.cat([h, norm(cfg, sd, name_lnp, pos).expand(B, -1, -1)], dim=-1)
        return h

    def residual(x, loctype):
        if cfg["residual_activation_type"] == "relu":
            x = F.relu(x)
        return sparsify(cfg, x, loctype)

    for layer in range(cfg["n_layer"]):
        p = "transformer.h.%d." % layer
        h = sparsify(cfg, block_input(p + "ln_1", p + "ln_p1", x), "attn_in")
        q, k, v = linear(sd, p + "attn.c_attn", h).split(H * dh, dim=-1)
        k, q, v = (sparsify(cfg, k, "attn_k"), sparsify(cfg, q, "attn_q"),
                   sparsify(cfg, v, "attn_v"))
        q, k, v = (t.view(B, T, H, dh).transpose(1, 2) for t in (q, k, v))
        y = attention(cfg, sd, p, q, k, v, has_sdpa).transpose(1, 2).reshape(B, T, H * dh)
        x = residual(x + sparsify(cfg, linear(sd, p + "attn.c_proj", y), "attn_out"),
                     "resid_post_attn")
        h = sparsify(cfg, block_input(p + "ln_2", p + "ln_p2", x), "mlp_in")
        a = sparsify(cfg, act(linear(sd, p + "mlp.c_fc", h)), "mlp_neuron")
        x = residual(x + sparsify(cfg, linear(sd, p + "mlp.c_proj", a), "mlp_out"),
                     "resid_post_mlp")
    x = norm(cfg, sd, "transformer.ln_f", x)
    logits = F.linear(x, wte if cfg["tied_unembed"] else sd["lm_head.weight"])
    if "final_logits_bias" in sd:  # a zero buffer when the file has none
        logits = logits + sd["final_logits_bias"]
    if cfg["enable_bigram_table"]:
        logits = logits + F.embedding(idx, sd["bigram_table"])
    return logits
