#!/usr/bin/env python3
"""A plain PyTorch-eager reference of `circuit extract --method masks` (no refinement).

Written from PAPER.md, docs/pruning.md and docs/formats.md for bench/vs_reference.sh:
the same model (exported with `circuit export-torch`), prompts (`circuit tasks
--dump`), means (the model's *.means.h5) and seed, and the same algorithm stage by
stage: attribution scores that break tau ties, mask training, discretization
(sweep then bisection on the validation split), verification on the test split.
No refinement and no minimality sweep. It prints one JSON object: per-stage
seconds and the circuit's nodes.

  extract_reference.py --export DIR --means M.h5 --prompts P.jsonl [--threads 2]
"""
import argparse, json, math, time

import h5py
import torch
import torch.nn.functional as F

LOCS = ["attn.act_in", "attn.q", "attn.k", "attn.v", "attn.resid_delta",
        "mlp.act_in", "mlp.post_act", "mlp.resid_delta"]


class Model:
    """The weight-sparse GPT of PAPER.md §1 with a gate hook at every node location."""

    def __init__(self, export_dir):
        self.cfg = json.load(open(f"{export_dir}/beeg_config.json"))
        self.w = {k: v.float() for k, v in torch.load(f"{export_dir}/final_model.pt").items()}
        c = self.cfg
        self.L, self.H, self.dh = c["n_layer"], c["n_head"], c["d_head"]
        self.k = {loc: int(c["afrac"] * self.width(loc)) for loc in LOCS}  # AbsTopK k

    def width(self, loc):
        return self.cfg["d_mlp"] if loc == "mlp.post_act" else self.cfg["d_model"]

    def sites(self):  # (layer, location) in the engine's flat order
        return [(l, loc) for l in range(self.L) for loc in LOCS] + [(self.L, "final_resid")]

    def forward(self, tokens, last, hook):
        """Logits (B, V) at positions `last`; hook(site_no, x) may replace activations."""
        w, B, T = self.w, tokens.shape[0], tokens.shape[1]
        rms = lambda x, g: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1.1920929e-07) * g
        site = lambda l, i, x: hook(l * 8 + i, x)

        def topk(x, loc):  # keep the k entries of largest |x| per row
            thr = x.abs().topk(self.k[loc], dim=-1).values[..., -1:]
            return x * (x.abs() >= thr)

        x = w["transformer.wte.weight"][tokens] + w["transformer.wpe.weight"][:T]
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)
        for l in range(self.L):
            p = f"transformer.h.{l}."
            h = site(l, 0, topk(rms(x, w[p + "ln_1.weight"]), "attn.act_in"))
            q, k, v = F.linear(h, w[p + "attn.c_attn.weight"], w[p + "attn.c_attn.bias"]).chunk(3, -1)
            q, k, v = (site(l, i, topk(t, LOCS[i])) for i, t in ((1, q), (2, k), (3, v)))
            q, k, v = (t.view(B, T, self.H, self.dh).transpose(1, 2) for t in (q, k, v))
            att = (q @ k.transpose(-2, -1)) / math.sqrt(self.dh)
            att = att.masked_fill(causal, float("-inf"))
            sink = w[p + "attn.attn_imp.sink_logit"].view(1, self.H, 1, 1).expand(B, self.H, T, 1)
            att = torch.softmax(torch.cat([sink, att], -1), -1)[..., 1:]
            y = (att @ v).transpose(1, 2).reshape(B, T, -1)
            d = F.linear(y, w[p + "attn.c_proj.weight"], w[p + "attn.c_proj.bias"])
            x = x + site(l, 4, topk(d, "attn.resid_delta"))
            h = site(l, 5, topk(rms(x, w[p + "ln_2.weight"]), "mlp.act_in"))
            a = F.gelu(F.linear(h, w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"]))
            a = site(l, 6, topk(a, "mlp.post_act"))
            d = F.linear(a, w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"])
            x = x + site(l, 7, topk(d, "mlp.resid_delta"))
        x = hook(self.L * 8, x)
        x = rms(x, w["transformer.ln_f.weight"])[torch.arange(B), last]
        logits = F.linear(x, w["lm_head.weight"]) + w["final_logits_bias"]
        return logits + w["bigram_table"][tokens[torch.arange(B), last]]


def gate_hook(gates, means):
    """Mean ablation: g * x + (1 - g) * mean per channel; gates[s] None = untouched."""
    def hook(s, x):
        return x if gates[s] is None else torch.lerp(means[s].expand_as(x), x, gates[s])
    return hook


def batch(examples):
    T = max(len(e["tokens"]) for e in examples)
    tokens = torch.zeros(len(examples), T, dtype=torch.long)
    for i, e in enumerate(examples):
        tokens[i, :len(e["tokens"])] = torch.tensor(e["tokens"])
    last = torch.tensor([len(e["tokens"]) - 1 for e in examples])
    right = torch.tensor([e["correct"] for e in examples])
    wrong = torch.tensor([e["alternative"] for e in examples])
    return tokens, last, right, wrong


def diffs_of(model, b, hook):
    logits = model.forward(b[0], b[1], hook)
    return logits.gather(1, b[2][:, None])[:, 0] - logits.gather(1, b[3][:, None])[:, 0]


class Evaluator:
    """Scores a kept-node vector on a split: pairs sorted by length, 32 prompts a pass."""

    def __init__(self, model, means, offsets, examples, per_batch=32):
        self.model, self.means, self.offsets = model, means, offsets
        pairs = sorted(range(len(examples) // 2),
                       key=lambda p: max(len(examples[2 * p]["tokens"]), len(examples[2 * p + 1]["tokens"])))
        self.order = [i for p in pairs for i in (2 * p, 2 * p + 1)]
        self.batches = [batch([examples[i] for i in self.order[s:s + per_batch]])
                        for s in range(0, len(self.order), per_batch)]

    @torch.no_grad()
    def diffs(self, keep):  # keep: (N) or None -> (n) l_correct - l_alternative
        gates = [None] * (len(self.offsets) - 1)
        if keep is not None:
            for s in range(len(gates)):
                g = keep[self.offsets[s]:self.offsets[s + 1]]
                gates[s] = g if g.min() < 1 else None
        d = torch.cat([diffs_of(self.model, b, gate_hook(gates, self.means)) for b in self.batches])
        return torch.empty_like(d).index_copy_(0, torch.tensor(self.order), d)

    def score(self, keep):  # (loss, standard error over twin pairs)
        d = self.diffs(keep)
        losses = F.softplus(-d).double()  # -log p(correct | {correct, alternative})
        return losses.mean().item(), losses.view(-1, 2).mean(1).std().item() / math.sqrt(len(d) // 2)


class Heaviside(torch.autograd.Function):
    """Step forward, sigmoid(tau / T) derivative backward."""

    @staticmethod
    def forward(ctx, tau, temp):
        ctx.save_for_backward(tau)
        ctx.temp = temp
        return (tau >= 0).float()

    @staticmethod
    def backward(ctx, g):
        (tau,) = ctx.saved_tensors
        s = torch.sigmoid(tau / ctx.temp)
        return g * s * (1 - s) / ctx.temp, None


def attribution(model, means, offsets, train):
    """-dL/dg at g = 1, summed over batches of 32 prompts in order (tau tie-breaks)."""
    gates = torch.ones(offsets[-1], requires_grad=True)
    split = [gates[offsets[s]:offsets[s + 1]] for s in range(len(offsets) - 1)]
    for s in range(0, len(train), 32):
        chunk = train[s:s + 32]
        b = batch(chunk)
        loss = F.softplus(-diffs_of(model, b, gate_hook(split, means))).mean()
        (loss * len(chunk) / len(train)).backward()
    return (-gates.grad).abs()


def train_masks(model, means, offsets, train, a, seed):
    n_pairs = len(train) // 2
    g = torch.Generator().manual_seed(seed)
    tau = torch.empty(offsets[-1]).normal_(0.072, 0.0125, generator=g).clamp_(-1, 1).requires_grad_()
    opt = torch.optim.AdamW([tau], lr=a.lr, betas=(0.9, 0.75), weight_decay=6.5e-4)
    order_gen = torch.Generator().manual_seed(seed ^ 0x9E3779B97F4A7C15)
    per_epoch = (n_pairs + a.batch - 1) // a.batch
    steps, step = per_epoch * a.epochs, 0
    length = lambda p: max(len(train[2 * p]["tokens"]), len(train[2 * p + 1]["tokens"]))
    for _ in range(a.epochs):
        pairs = torch.randperm(n_pairs, generator=order_gen).tolist()
        pool = 8 * a.batch
        for s in range(0, n_pairs, pool):  # similar lengths within pools of 8 batches
            pairs[s:s + pool] = sorted(pairs[s:s + pool], key=length)
        for bi in torch.randperm(per_epoch, generator=order_gen).tolist():
            chunk = [train[i] for p in pairs[bi * a.batch:(bi + 1) * a.batch] for i in (2 * p, 2 * p + 1)]
            opt.param_groups[0]["lr"] = a.lr * (1 - step / steps)
            gates = Heaviside.apply(tau, 0.234)
            split = [gates[offsets[s]:offsets[s + 1]] for s in range(len(offsets) - 1)]
            task = F.softplus(-diffs_of(model, batch(chunk), gate_hook(split, means))).mean()
            loss = task + a.penalty_coef * gates.sum()
            opt.zero_grad()
            loss.backward()
            rms = tau.grad.norm().item() / math.sqrt(tau.numel())
            if rms > 1.0:
                tau.grad.mul_(1.0 / rms)
            opt.step()
            with torch.no_grad():
                tau.clamp_(-1, 1)
            step += 1
    return tau.detach()


def rank(tau, second):
    """Descending tau; near-ties (1e-3 of tau's range) ordered by the second score."""
    v, w = tau.double().tolist(), second.double().tolist()
    order = sorted(range(len(v)), key=lambda i: -v[i])
    tol = max(1e-9, 1e-3 * (max(v) - min(v)))
    out, begin = [], 0
    for i in range(1, len(order) + 1):
        if i == len(order) or v[order[begin]] - v[order[i]] > tol:
            out += sorted(order[begin:i], key=lambda u: (-w[u], u))
            begin = i
    return out


def discretize(val, order, hint, target, z, sweep_points=8):
    n = len(order)
    rank_of = torch.empty(n, dtype=torch.long)
    rank_of[torch.tensor(order)] = torch.arange(n)
    seen = {}

    def meets(k):
        if k not in seen:
            seen[k] = val.score((rank_of < k).float())
        loss, se = seen[k]
        return loss + z * se <= target

    hi = min(max(hint, min(1, n)), n)
    if not meets(hi) and hi < n:
        hi = n
    if not meets(hi):
        return n, seen
    lo = 0
    sweep = sorted({0} | ({math.floor(hi ** (i / (sweep_points - 1)) + 0.5)
                           for i in range(sweep_points)} if hi > 1 else set()))
    for k in sweep:
        if k >= hi:
            break
        if meets(k):
            hi = k
            break
        lo = k
    if lo >= hi:
        lo = -1
    while hi - lo > 1:
        mid = lo + (hi - lo) // 2
        if meets(mid):
            hi = mid
        else:
            lo = mid
    return min([k for k, (l, s) in seen.items() if l + z * s <= target] + [hi]), seen


def verify(model, test_eval, offsets, nodes, seed, draws=4):
    keep = torch.zeros(offsets[-1])
    keep[torch.tensor(nodes, dtype=torch.long)] = 1
    out = {"full": test_eval.score(None)[0], "circuit": test_eval.score(keep)[0],
           "necessity": test_eval.score(1 - keep)[0]}
    by_site = {}
    for i in nodes:
        by_site.setdefault(max(s for s in range(len(offsets) - 1) if offsets[s] <= i), []).append(i)
    g = torch.Generator().manual_seed(seed ^ 0x5EED5EED)
    rand = 0.0
    for _ in range(draws):
        r = torch.zeros(offsets[-1])
        for s, ns in sorted(by_site.items()):
            r[torch.randperm(offsets[s + 1] - offsets[s], generator=g)[:len(ns)] + offsets[s]] = 1
        rand += test_eval.score(r)[0] / draws
    out["random"] = rand
    out["node_importance"] = []
    for i in nodes:
        k = keep.clone()
        k[i] = 0
        out["node_importance"].append(test_eval.score(k)[0])
    for s, ns in sorted(by_site.items()):
        k = keep.clone()
        k[torch.tensor(ns)] = 0
        test_eval.score(k)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", required=True)
    ap.add_argument("--means", required=True)
    ap.add_argument("--prompts", required=True, help="circuit tasks --dump output (all splits)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=0.02)          # the small-model preset
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--penalty-coef", type=float, default=1e-3)  # linear penalty
    ap.add_argument("--target-loss", type=float, default=0.15)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = Model(a.export)
    sites = model.sites()
    offsets = [0]
    for l, loc in sites:
        offsets.append(offsets[-1] + (model.cfg["d_model"] if loc == "final_resid" else model.width(loc)))
    with h5py.File(a.means) as f:
        means = [torch.tensor(f[f"means/{l}/{loc}"][()]) for l, loc in sites]
    split = {"train": [], "validation": [], "test": []}
    for line in open(a.prompts):
        e = json.loads(line)
        split[e["split"]].append(e)
    times, t = {}, time.time()
    second = attribution(model, means, offsets, split["train"])
    times["attribution"] = time.time() - t
    t = time.time()
    tau = train_masks(model, means, offsets, split["train"], a, a.seed)
    times["masks"] = time.time() - t
    t = time.time()
    val = Evaluator(model, means, offsets, split["validation"])
    z = 1.2815515655446004  # one-sided 90 %
    order = rank(tau, second)
    k, seen = discretize(val, order, int((tau >= 0).sum()), a.target_loss, z)
    nodes = sorted(order[:k])
    times["discretize"] = time.time() - t
    t = time.time()
    ver = verify(model, Evaluator(model, means, offsets, split["test"]), offsets, nodes, a.seed)
    times["verify"] = time.time() - t
    named = []
    for i in nodes:
        s = max(s for s in range(len(sites)) if offsets[s] <= i)
        named.append(f"{sites[s][0]} {sites[s][1]} {i - offsets[s]}")
    print(json.dumps({"seconds": times, "nodes": named, "evaluations": len(seen),
                      "validation_loss": seen[k][0], "test": {k: v for k, v in ver.items()
                                                              if k != "node_importance"}}))


if __name__ == "__main__":
    main()
