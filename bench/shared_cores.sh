#!/usr/bin/env bash
# What one competing process costs an extraction (docs/performance.md, "Shared
# cores"): the quickstart extraction (bundled model, single_double_quote, the
# default preset, 2 threads) alone and beside one busy process, with libgomp's
# default (active, spinning) waiting and with the passive waiting `circuit` sets
# for itself. Runs are interleaved so that drift of the machine hits every
# setting alike. Prints each run's wall time and the slowdown ratios.
#
#   bench/shared_cores.sh [WORKDIR] [REPEATS]   # default: a fresh temp dir, 1 repeat
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
circuit=${BUILD_DIR:-$root/build}/bin/circuit
source "$root/bench/workdir.sh"
bench_workdir "${1:-}"
repeats=${2:-1}
declare -A total
extract() {  # label, competitor (0/1), policy ("" = circuit's own: passive)
  local label=$1 competitor=$2 policy=$3 burner="" start end
  if [ "$competitor" = 1 ]; then
    (while :; do :; done) &
    burner=$!
  fi
  start=$(date +%s.%N)
  if [ -n "$policy" ]; then
    OMP_WAIT_POLICY=$policy "$circuit" extract --task single_double_quote --threads 2 \
      --out "$work/$label" >/dev/null 2>&1
  else
    env -u OMP_WAIT_POLICY "$circuit" extract --task single_double_quote --threads 2 \
      --out "$work/$label" >/dev/null 2>&1
  fi
  end=$(date +%s.%N)
  [ -n "$burner" ] && kill "$burner" && wait "$burner" 2>/dev/null || true
  local s
  s=$(awk "BEGIN {print $end - $start}")
  total[$label]=$(awk "BEGIN {print ${total[$label]:-0} + $s}")
  printf '%-22s %8.1f s\n' "$label" "$s"
}
for ((i = 0; i < repeats; i++)); do
  extract passive_alone 0 ""
  extract passive_competing 1 ""
  extract active_alone 0 active
  extract active_competing 1 active
done
ratio() { awk "BEGIN {printf \"%.2f\", ${total[$1]} / ${total[$2]}}"; }
echo "slowdown beside one busy process: passive (circuit's default) $(ratio passive_competing passive_alone)x," \
  "active (libgomp's default) $(ratio active_competing active_alone)x"
echo "passive vs active alone: $(ratio passive_alone active_alone)x"
