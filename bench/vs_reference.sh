#!/usr/bin/env bash
# circuit extract against the PyTorch-eager reference (bench/reference/), same
# model, prompts, means, seed and settings, alternating in one run, stage by stage.
#
#   bench/vs_reference.sh [ROUNDS] [WORKDIR]      (default 1 round, /tmp/vs_reference)
#
# Both sides: quote task, default pairs (512/128/128), small-model preset,
# mask method, no refinement and no minimality sweep (the reference implements
# neither: --no-refine --refine-limit 1), no explanations, 2 threads,
# OMP_WAIT_POLICY=passive. Prints per-stage seconds, C++/reference ratios, and
# whether the two circuits have the same nodes. Env CIRCUIT (default
# build/bin/circuit), PYTHON (default /usr/bin/python3: needs torch and h5py),
# BEFORE (optional: an older circuit binary, run in the same alternation and
# compared stage by stage with CIRCUIT: a before/after of an engine change).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-1}
work=${2:-/tmp/vs_reference}
circuit=${CIRCUIT:-build/bin/circuit}
python=${PYTHON:-/usr/bin/python3}
model=data/models/default.h5
means=data/models/default.means.h5
task=single_double_quote
export OMP_WAIT_POLICY=passive CIRCUIT_THREADS=2
mkdir -p "$work"
"$circuit" export-torch --model "$model" --out "$work/export" >/dev/null
"$circuit" tasks --dump "$task" --model "$model" --pairs 512 --seed 0 > "$work/prompts.jsonl"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
run_cpp() {  # binary, name
  rm -rf "$work/$2"
  /usr/bin/time -f "%e" -o "$work/$2.wall" "$1" extract --model "$model" --task "$task" \
    --seed 0 --no-refine --refine-limit 1 --no-explain --out "$work/$2" > "$work/$2.log" 2>&1
}
for r in $(seq 1 "$rounds"); do
  if [ -n "${BEFORE:-}" ]; then run_cpp "$BEFORE" "before$r"; fi
  rm -rf "$work/cpp$r"
  /usr/bin/time -f "%e" -o "$work/cpp$r.wall" "$circuit" extract --model "$model" --task "$task" \
    --seed 0 --no-refine --refine-limit 1 --no-explain --out "$work/cpp$r" > "$work/cpp$r.log" 2>&1
  /usr/bin/time -f "%e" -o "$work/ref$r.wall" "$python" bench/reference/extract_reference.py \
    --export "$work/export" --means "$means" --prompts "$work/prompts.jsonl" --threads 2 \
    > "$work/ref$r.json"
  echo "round $r done, load $(cut -d' ' -f1-3 /proc/loadavg)"
done
"$python" - "$work" "$rounds" "${BEFORE:+1}" <<'EOF'
import json, os, sys
work, rounds, before = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
stages = [("attribution (tau tie-break)", "tie_break", "attribution"), ("masks", "scores", "masks"),
          ("discretize", "discretize", "discretize"), ("verify", "verify", "verify")]
print(f"{'round':>5} {'stage':<28} {'C++ s':>8} {'ref s':>8} {'ref/C++':>8}")
for r in range(1, rounds + 1):
    cpp = json.load(open(f"{work}/cpp{r}/summary.json"))
    ref = json.load(open(f"{work}/ref{r}.json"))
    t = cpp["extract"]["time_seconds"]
    tc = tr = 0.0
    for name, ck, rk in stages:
        tc += t[ck]
        tr += ref["seconds"][rk]
        print(f"{r:>5} {name:<28} {t[ck]:8.1f} {ref['seconds'][rk]:8.1f} {ref['seconds'][rk] / t[ck]:8.2f}")
    print(f"{r:>5} {'extraction (these stages)':<28} {tc:8.1f} {tr:8.1f} {tr / tc:8.2f}")
    wc = float(open(f"{work}/cpp{r}.wall").read().split()[-1])
    wr = float(open(f"{work}/ref{r}.wall").read().split()[-1])
    print(f"{r:>5} {'process wall':<28} {wc:8.1f} {wr:8.1f} {wr / wc:8.2f}")
    a = sorted(n["label"] for n in cpp["nodes"])
    b = sorted("L" + n for n in ref["nodes"])
    same = "identical" if a == b else f"DIFFERENT (C++ only {sorted(set(a) - set(b))}, reference only {sorted(set(b) - set(a))})"
    print(f"      nodes: C++ {len(a)}, reference {len(b)}: {same}")
    print(f"      validation loss at k: C++ {cpp['extract']['validation_loss']['at_k']:.6f}, "
          f"reference {ref['validation_loss']:.6f}; test circuit loss: C++ "
          f"{cpp['figures']['circuit_loss']:.6f}, reference {ref['test']['circuit']:.6f}")
    if before:
        old = json.load(open(f"{work}/before{r}/summary.json"))
        o = old["extract"]["time_seconds"]
        for name, ck, _ in stages + [("extraction (total)", "total", None)]:
            print(f"{r:>5} before/after {name:<28} {o[ck]:8.1f} {t[ck]:8.1f} {o[ck] / t[ck]:8.2f}")
        same = sorted(n["label"] for n in old["nodes"]) == a
        print(f"      before/after nodes: {'identical' if same else 'DIFFERENT'}; test circuit loss "
              f"{old['figures']['circuit_loss']:.9f} -> {cpp['figures']['circuit_loss']:.9f}, "
              f"validation {old['extract']['validation_loss']['at_k']:.9f} -> "
              f"{cpp['extract']['validation_loss']['at_k']:.9f}")
EOF
