#!/usr/bin/env bash
# Sweep throughput with 1 and 2 worker processes (docs/performance.md, "Sweeps"):
# 4 units (2 tasks x 2 seeds, attribution, 64 train pairs) on the bundled model,
# run by one process (1 and 2 threads) and by mpirun -np 2 and -np 3 (rank 0 only
# dispatches, so -np 3 has two workers), 1 thread per rank. Prints wall time,
# units per minute and the per-unit time outside the pruning itself.
#
#   bench/sweep_scaling.sh [WORKDIR]      # default: a fresh temp dir, removed afterwards
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
circuit=${BUILD_DIR:-$root/build}/bin/circuit
source "$root/bench/workdir.sh"
bench_workdir "$@"
cat > "$work/spec.json" <<JSON
{"name": "scaling", "models": ["$root/data/models/default.h5"],
 "tasks": ["single_double_quote", "bracket_counting"], "methods": ["attribution"],
 "seeds": [0, 1], "target_losses": [0.3], "n_train": 64}
JSON
mpirun=(mpirun --allow-run-as-root --oversubscribe -x CIRCUIT_THREADS)
run() {  # label, threads, launcher...
  local label=$1 threads=$2 out
  out=$(mktemp -d "$work/run.XXXXXX")
  shift 2
  local start end
  start=$(date +%s.%N)
  CIRCUIT_THREADS=$threads "$@" "$circuit" sweep "$work/spec.json" --out "$out" >/dev/null 2>&1
  end=$(date +%s.%N)
  /usr/bin/python3 - "$out/results.h5" "$label" "$start" "$end" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")["units"]
wall = float(sys.argv[4]) - float(sys.argv[3])
n = len(f["seconds"])
overhead = (f["seconds"][()] - f["prune_seconds"][()]).mean()
print(f"{sys.argv[2]:<26} {wall:6.1f} s  {60 * n / wall:5.2f} units/min  "
      f"unit {f['seconds'][()].mean():5.1f} s, of which outside pruning {overhead:4.2f} s")
PY
}
run "1 process, 1 thread" 1
run "1 process, 2 threads" 2
run "mpirun -np 2 (1 worker)" 1 "${mpirun[@]}" -np 2
run "mpirun -np 3 (2 workers)" 1 "${mpirun[@]}" -np 3
