"""A re-statement of the release's forward pass (circuit_sparsity/inference/gpt.py),
written for the tests: the reference our C++ import is compared against.

Only torch (1.13, Debian's python3-torch) is needed: nn.RMSNorm and
F.scaled_dot_product_attention do not exist there, so both are spelled out
exactly as gpt.py's modules compute them.
"""
import json
import math

import torch
import torch.nn.functional as F

# Fields of the release's GPTConfig (a config with other keys makes GPTConfig(**cfg) fail).
GPTCONFIG_FIELDS = {
    "block_size", "vocab_size", "n_layer", "n_head", "d_head", "d_model", "dropout", "bias",
    "ln_bias", "rms_norm", "residual_activation_type", "activation_type", "afrac",
    "afrac_loctypes", "debug_nans", "tied_unembed", "tokenizer_name", "grad_checkpointing",
    "d_mlp", "enable_bigram_table", "learnable_bigram_table", "d_pos_emb",
    "dropout_cat_pos_emb", "sinusoidal_cat_pos_emb", "enable_sparse_kernels", "flash", "sink",
}

DEFAULTS = dict(block_size=1024, vocab_size=50304, n_layer=12, n_head=12, d_head=None,
                d_model=768, bias=True, rms_norm=False, activation_type="gelu", afrac=None,
                afrac_loctypes="attn_in,attn_out,mlp_in,mlp_out", tied_unembed=True,
                d_mlp=None, enable_bigram_table=False, d_pos_emb=None, flash=True, sink=False)


def load_config(path):
    """beeg_config.json as the release's load_model() reads it."""
    with open(path) as f:
        raw = json.load(f)
    raw.pop("bigram_table_rank")  # load_model() pops it unconditionally
    if "n_mlp" in raw:
        raw["d_mlp"] = raw.pop("n_mlp")
    cfg = dict(DEFAULTS)
    cfg.update({k: v for k, v in raw.items() if k in DEFAULTS})
    if cfg["d_mlp"] is None:
        cfg["d_mlp"] = 4 * cfg["d_model"]
    if cfg["d_head"] is None:
        cfg["d_head"] = cfg["d_model"] // cfg["n_head"]
    return cfg, raw


def rms_norm(x, w):
    eps = torch.finfo(x.dtype).eps  # nn.RMSNorm(eps=None)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def abs_topk(cfg, x, loctype):
    if cfg["afrac"] is None or loctype not in cfg["afrac_loctypes"].split(","):
        return x
    k = int(cfg["afrac"] * x.shape[-1])
    ret = torch.zeros_like(x)
    _, inds = torch.topk(x.abs(), k, dim=-1, sorted=False)
    ret.scatter_(-1, inds, x.gather(-1, inds))
    return ret


def linear(sd, prefix, x):
    return F.linear(x, sd[prefix + ".weight"], sd.get(prefix + ".bias"))


def attention(cfg, sd, p, q, k, v):
    """(B, H, T, dh) each -> (B, H, T, dh); SDPAWithSink when sink and flash."""
    B, H, T, dh = q.shape
    scale = 1.0 / math.sqrt(dh)
    neg = torch.finfo(q.dtype).min
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    if cfg["sink"] and cfg["flash"]:
        # A prepended key/value slot of zeros, always visible, logit = sink_logit[h].
        k = torch.cat([torch.zeros(B, H, 1, dh), k], dim=2)
        v = torch.cat([torch.zeros(B, H, 1, dh), v], dim=2)
        allow = torch.cat([torch.ones(T, 1, dtype=torch.bool), causal], dim=1)
        mask = torch.where(allow, torch.tensor(0.0), torch.tensor(neg))
        sink_col = torch.zeros(1, 1, 1, T + 1)
        sink_col[..., 0] = 1.0
        mask = mask.view(1, 1, T, T + 1) + sink_col * sd[p + "attn.attn_imp.sink_logit"].view(1, H, 1, 1)
        att = (q @ k.transpose(-2, -1)) * scale + mask
    else:
        att = ((q @ k.transpose(-2, -1)) * scale).masked_fill(~causal, neg)
    return F.softmax(att, dim=-1) @ v


def forward(cfg, sd, idx):
    """Logits (B, T, V) for tokens idx (B, T)."""
    B, T = idx.shape
    H, dh = cfg["n_head"], cfg["d_head"]
    cat_pos = cfg["d_pos_emb"] is not None
    x = F.embedding(idx, sd["transformer.wte.weight"])
    pos = sd["transformer.wpe.weight"][:T].unsqueeze(0)
    if not cat_pos:
        x = x + pos
    act = {"gelu": F.gelu, "relu": F.relu}[cfg["activation_type"]]
    for l in range(cfg["n_layer"]):
        p = "transformer.h.%d." % l
        h = rms_norm(x, sd[p + "ln_1.weight"])
        if cat_pos:
            h = torch.cat([h, rms_norm(pos, sd[p + "ln_p1.weight"]).expand(B, -1, -1)], dim=-1)
        h = abs_topk(cfg, h, "attn_in")
        q, k, v = linear(sd, p + "attn.c_attn", h).split(H * dh, dim=2)
        k = abs_topk(cfg, k, "attn_k")
        q = abs_topk(cfg, q, "attn_q")
        v = abs_topk(cfg, v, "attn_v")
        q, k, v = (t.view(B, T, H, dh).transpose(1, 2) for t in (q, k, v))
        y = attention(cfg, sd, p, q, k, v).transpose(1, 2).contiguous().view(B, T, H * dh)
        x = x + abs_topk(cfg, linear(sd, p + "attn.c_proj", y), "attn_out")
        h = rms_norm(x, sd[p + "ln_2.weight"])
        if cat_pos:
            h = torch.cat([h, rms_norm(pos, sd[p + "ln_p2.weight"]).expand(B, -1, -1)], dim=-1)
        h = abs_topk(cfg, h, "mlp_in")
        a = abs_topk(cfg, act(linear(sd, p + "mlp.c_fc", h)), "mlp_neuron")
        x = x + abs_topk(cfg, linear(sd, p + "mlp.c_proj", a), "mlp_out")
    x = rms_norm(x, sd["transformer.ln_f.weight"])
    lm_head = sd["transformer.wte.weight"] if cfg["tied_unembed"] else sd["lm_head.weight"]
    logits = F.linear(x, lm_head) + sd.get("final_logits_bias", torch.zeros(cfg["vocab_size"]))
    if cfg["enable_bigram_table"]:
        logits = logits + F.embedding(idx, sd["bigram_table"])
    return logits
