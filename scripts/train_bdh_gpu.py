#!/usr/bin/env python3
"""Trains a BDH-GPU model on a circuit corpus with PyTorch, for a GPU.

The C++ trainer (`circuit train --arch bdh`) runs at ~3,000 tokens/s on two CPU
cores; a BDH model needs tens of millions of tokens before it closes strings.
This script runs the same recipe (the reference's: AdamW, lr 1e-3, weight
decay 0.1, dropout 0.1 on the gates, N(0, 0.02) init, windows of n_ctx + 1
tokens drawn at random from train.bin) with the forward pass of
scripts/bdh_reference.py, under bf16 autocast on CUDA, and writes a
pathwaycom/bdh-style state dict that `circuit import --arch bdh` reads:

  scripts/train_bdh_gpu.py --corpus corpus --out bdh.pt --minutes 7 --device cuda
  circuit import --arch bdh --weights bdh.pt --layers 4 --training-log bdh.json --out bdh.h5

It reads the corpus's train.bin and val.bin (uint16 token ids, docs/formats.md),
or train.bin.xz / val.bin.xz beside them. With --minutes the step count is set
from the speed of the first steps (printed, and stored in the log, so that
--steps reproduces the schedule); the last --cooldown fraction of the steps
decays the learning rate linearly to 0, as `circuit train --cooldown` does.
The log (--log, JSON) records the steps, tokens, seconds, device and losses.
It runs on a CPU too (--device cpu), slowly.
"""
import argparse
import json
import lzma
import math
import os
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print(f"train_bdh_gpu: {e} (install python3-torch, or use a CUDA PyTorch)", file=sys.stderr)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bdh_reference  # noqa: E402


def read_tokens(corpus, name):
    path = os.path.join(corpus, name)
    if os.path.exists(path):
        data = open(path, "rb").read()
    elif os.path.exists(path + ".xz"):
        data = lzma.open(path + ".xz").read()
    else:
        sys.exit(f"train_bdh_gpu: {path} (or {path}.xz) not found; run `circuit corpus build`")
    return torch.from_numpy(np.frombuffer(data, dtype="<u2").astype(np.int64))


def fixed_windows(tokens, count, window):
    """The C++ trainer's validation windows: evenly spaced over the split."""
    last = tokens.numel() - window
    offsets = [0] if count == 1 else [last * i // (count - 1) for i in range(count)]
    return torch.stack([tokens[o:o + window] for o in offsets])


def loss_of(sd, windows, n_layer, dropout=0.0):
    logits = bdh_reference.forward(sd, windows[:, :-1], n_layer, dropout)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), windows[:, 1:].reshape(-1))


def validation_loss(sd, val, n_layer, batch):
    with torch.no_grad():
        total = sum(loss_of(sd, val[i:i + batch], n_layer).item() * val[i:i + batch].shape[0]
                    for i in range(0, val.shape[0], batch))
    return total / val.shape[0]


def lr_at(args, step, steps):
    decay = args.cooldown * steps
    left = steps - step
    return args.lr * left / decay if decay > 0 and left < decay else args.lr


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", required=True, help="corpus folder (circuit corpus build)")
    p.add_argument("--out", required=True, help="state dict to write (torch.save)")
    p.add_argument("--log", help="JSON log to write (default OUT with .json)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--neurons", type=int, default=256, help="neurons per head")
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--n-ctx", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--cooldown", type=float, default=0.0)
    steps_or_time = p.add_mutually_exclusive_group(required=True)
    steps_or_time.add_argument("--steps", type=int)
    steps_or_time.add_argument("--minutes", type=float,
                               help="train for about this long: steps from the first steps' speed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--val-windows", type=int, default=64)
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--save-every-minutes", type=float, default=1.0)
    args = p.parse_args()
    if not 0 <= args.cooldown <= 1:
        sys.exit(f"train_bdh_gpu: --cooldown {args.cooldown} must be in [0, 1]")
    log_path = args.log or os.path.splitext(args.out)[0] + ".json"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    window = args.n_ctx + 1
    train = read_tokens(args.corpus, "train.bin").to(device)
    val = fixed_windows(read_tokens(args.corpus, "val.bin"), args.val_windows, window).to(device)
    if int(train.max()) >= args.vocab:
        sys.exit(f"train_bdh_gpu: token id {int(train.max())} >= --vocab {args.vocab}")

    gen = torch.Generator().manual_seed(args.seed)
    D, H, N, V = args.d_model, args.heads, args.neurons, args.vocab
    shapes = {"decoder": (H * N, D), "encoder": (H, D, N), "encoder_v": (H, D, N),
              "lm_head": (D, V), "embed.weight": (V, D)}
    sd = {k: (torch.randn(*s, generator=gen) * 0.02).to(device).requires_grad_(True)
          for k, s in shapes.items()}
    sd["attn.freqs"] = bdh_reference.rope_frequencies(N).view(1, 1, 1, N).to(device)
    params = [sd[k] for k in shapes]
    cuda = device.type == "cuda"
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay,
                            **({"fused": True} if cuda else {}))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda)
    sample = torch.Generator(device=device).manual_seed(args.seed + 1)

    manifest = os.path.join(args.corpus, "manifest.json")
    log = {"args": vars(args), "command": " ".join(["scripts/train_bdh_gpu.py"] + sys.argv[1:]),
           "corpus_digest": json.load(open(manifest))["digest"] if os.path.exists(manifest) else "",
           "device": torch.cuda.get_device_name(device) if cuda else "cpu",
           "torch": torch.__version__, "train_tokens": train.numel(), "curve": [], "val": []}

    def save(step, steps):
        log.update(steps=step, tokens=step * args.batch * args.n_ctx, seconds=time.time() - start)
        out = {k: v.detach().float().cpu().contiguous() for k, v in sd.items()}
        for path, write in ((args.out, lambda f: torch.save(out, f)),
                            (log_path, lambda f: f.write(json.dumps(log, indent=1).encode()))):
            with open(path + ".tmp", "wb") as f:
                write(f)
            os.replace(path + ".tmp", path)
        print(f"saved step {step}/{steps} after {log['seconds']:.0f} s", flush=True)

    log["val"].append([0, validation_loss(sd, val, args.layers, args.batch)])
    print(f"step 0: val {log['val'][-1][1]:.4f}", flush=True)
    steps = args.steps or 10**9
    start = time.time()
    last_save = start
    step = 0
    while step < steps:
        offsets = torch.randint(0, train.numel() - window + 1, (args.batch,), device=device,
                                generator=sample)
        batch = train[offsets.unsqueeze(1) + torch.arange(window, device=device)]
        for g in opt.param_groups:
            g["lr"] = lr_at(args, step, steps)
        with autocast:
            loss = loss_of(sd, batch, args.layers, args.dropout)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            value = loss.item()
            if not math.isfinite(value):
                sys.exit(f"train_bdh_gpu: step {step}: training loss is {value} (diverged)")
            log["curve"].append([step, value])
        if args.minutes and step == 200:  # speed measured over steps 50..200
            if cuda:
                torch.cuda.synchronize()
            per_step = (time.time() - t50) / 150
            steps = max(step + 1, int(args.minutes * 60 / per_step))
            log["steps_from_minutes"] = steps
            print(f"{per_step * 1000:.1f} ms/step: {steps} steps for {args.minutes} min", flush=True)
        if step == 50:
            if cuda:
                torch.cuda.synchronize()
            t50 = time.time()
        if step % args.eval_every == 0:
            log["val"].append([step, validation_loss(sd, val, args.layers, args.batch)])
            print(f"step {step}: loss {loss.item():.4f} val {log['val'][-1][1]:.4f} "
                  f"lr {opt.param_groups[0]['lr']:.2e} {time.time() - start:.0f} s", flush=True)
        if time.time() - last_save > 60 * args.save_every_minutes:
            save(step, steps)
            last_save = time.time()
    log["val"].append([step, validation_loss(sd, val, args.layers, args.batch)])
    save(step, steps)
    print(f"done: {step} steps, {log['tokens']} tokens, {log['seconds']:.0f} s, "
          f"val {log['val'][-1][1]:.4f}", flush=True)


if __name__ == "__main__":
    main()
