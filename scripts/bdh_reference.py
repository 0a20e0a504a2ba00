"""BDH-GPU's forward pass restated from the paper's definition and the
pathwaycom/bdh reference (bdh.py), written here as plain functions over a state
dict: the import test's reference logits (tests/release_io/make_bdh_model.py)
and the GPU trainer (scripts/train_bdh_gpu.py). Float32, as the reference runs
it, unless the caller autocasts.

State dict keys (the reference's): decoder (H*N, D), encoder (H, D, N),
encoder_v (H, D, N), lm_head (D, V), embed.weight (V, D), and the buffer
attn.freqs (1, 1, 1, N).
"""
import math

import torch
import torch.nn.functional as F


def rope_frequencies(n):
    """Turns per position for each neuron; pairs (2i, 2i+1) share one."""
    i = torch.arange(0, n, dtype=torch.float32)
    even = torch.div(i, 2, rounding_mode="floor") * 2
    return 1.0 / (65536.0 ** (even / n)) / (2 * math.pi)


def rotate(v, freqs):
    """v (B, H, T, N): each neuron pair turned by its position's angle."""
    t = v.shape[2]
    pos = torch.arange(0, t, dtype=torch.float32, device=v.device).view(1, 1, t, 1)
    angle = torch.remainder(pos * freqs.view(1, 1, 1, -1), 1.0) * (2 * math.pi)
    swapped = torch.stack((-v[..., 1::2], v[..., 0::2]), dim=-1).reshape(v.shape)
    return v * torch.cos(angle) + swapped * torch.sin(angle)


def norm(x):
    return F.layer_norm(x, (x.shape[-1],), eps=1e-5)


def forward(sd, tokens, n_layer, dropout=0.0):
    """tokens (B, T) int64 -> logits (B, T, V). `dropout` > 0 drops gates as the
    reference does in training (circuit's BdhModel does the same)."""
    enc, enc_v, dec = sd["encoder"], sd["encoder_v"], sd["decoder"]
    heads, _, n = enc.shape
    freqs = sd["attn.freqs"].reshape(-1)
    b, t = tokens.shape
    x = norm(sd["embed.weight"][tokens]).unsqueeze(1)  # (B, 1, T, D)
    for _ in range(n_layer):
        a = F.relu(torch.matmul(x, enc))  # x-neurons (B, H, T, N)
        q = rotate(a, freqs)
        scores = torch.tril(torch.matmul(q, q.transpose(-1, -2)), diagonal=-1)  # (B, H, T, T)
        read = norm(torch.matmul(scores, x))  # (B, H, T, D)
        y = F.relu(torch.matmul(read, enc_v))  # y-neurons (B, H, T, N)
        gated = (a * y).permute(0, 2, 1, 3).reshape(b, 1, t, heads * n)
        if dropout > 0:
            gated = F.dropout(gated, dropout, training=True)
        x = norm(x + norm(torch.matmul(gated, dec)))
    return torch.matmul(x.squeeze(1), sd["lm_head"])
