#!/usr/bin/env bash
# What one competing process costs an extraction (docs/performance.md, "Shared
# cores"): the quickstart extraction (bundled model, single_double_quote, the
# default preset) alone and beside one busy process, in three settings:
#   default   circuit's own: passive OpenMP waiting, auto threads (--threads 0)
#   passive2  passive waiting, 2 threads fixed (what auto threads adds)
#   one       passive waiting, 1 thread fixed (what auto threads chose beside a
#             busy process before prompt batches went to every core)
#   active2   libgomp's default (active, spinning waits), 2 threads fixed
# Runs are interleaved so that drift of the machine hits every setting alike.
# Prints each run's wall time and the slowdown ratios. Extra extract options
# (e.g. a shorter run: EXTRACT_ARGS="--pairs 128 --no-refine") apply to every run;
# SETTINGS picks the settings (default: "default passive2 active2").
#
#   bench/shared_cores.sh [WORKDIR] [REPEATS]   # default: a fresh temp dir, 1 repeat
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
circuit=${BUILD_DIR:-$root/build}/bin/circuit
source "$root/bench/workdir.sh"
bench_workdir ${1:+"$1"}
repeats=${2:-1}
read -r -a extra <<<"${EXTRACT_ARGS:-}"
settings=${SETTINGS:-default passive2 active2}
declare -A what=([default]="default (passive, auto threads)" [passive2]="passive with 2 threads"
  [active2]="active with 2 threads (libgomp's default)" [one]="passive with 1 thread")
for setting in $settings; do
  [ -n "${what[$setting]:-}" ] || { echo "shared_cores.sh: unknown setting '$setting' in SETTINGS" >&2; exit 2; }
done
declare -A total
extract() {  # setting (default / passive2 / active2), competitor (0/1)
  local setting=$1 competitor=$2 label burner="" start end s
  label="${setting}_$([ "$competitor" = 1 ] && echo competing || echo alone)"
  local -a env_args=(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u OMP_NUM_THREADS -u CIRCUIT_THREADS)
  local -a threads=(--threads 0)
  case "$setting" in
    passive2) env_args+=(OMP_WAIT_POLICY=passive); threads=(--threads 2) ;;
    active2) env_args+=(OMP_WAIT_POLICY=active); threads=(--threads 2) ;;
    one) env_args+=(OMP_WAIT_POLICY=passive); threads=(--threads 1) ;;
  esac
  if [ "$competitor" = 1 ]; then
    (while :; do :; done) &
    burner=$!
    sleep 1  # let the burner show in /proc/stat before auto threads look
  fi
  start=$(date +%s.%N)
  "${env_args[@]}" "$circuit" extract --task single_double_quote "${threads[@]}" "${extra[@]}" \
    --out "$work/$label" >/dev/null 2>"$work/$label.log"
  end=$(date +%s.%N)
  if [ -n "$burner" ]; then kill "$burner"; wait "$burner" 2>/dev/null || true; fi
  s=$(awk "BEGIN {print $end - $start}")
  total[$label]=$(awk "BEGIN {print ${total[$label]:-0} + $s}")
  local stages
  stages=$(grep -o '([0-9]* threads\?[^)]*)' "$work/$label.log" | sort | uniq -c | tr -s ' \n' ' ' || true)
  printf '%-20s %8.1f s   stages on: %s\n' "$label" "$s" "${stages:-${threads[1]} threads (fixed)}"
}
echo "extract --task single_double_quote ${extra[*]}; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 0; i < repeats; i++)); do
  for setting in $settings; do
    extract "$setting" 0
    extract "$setting" 1
  done
done
ratio() { awk "BEGIN {printf \"%.2f\", ${total[$1]} / ${total[$2]}}"; }
for setting in $settings; do
  echo "slowdown beside one busy process, ${what[$setting]}: $(ratio "${setting}_competing" "${setting}_alone")x"
done
if [[ " $settings " == *" default "* && " $settings " == *" one "* ]]; then
  echo "beside one busy process, 1 thread vs the default: $(ratio one_competing default_competing)x;" \
    "1 thread beside it vs the default alone: $(ratio one_competing default_alone)x"
fi
if [[ " $settings " == *" default "* && " $settings " == *" active2 "* ]]; then
  echo "alone, default vs libgomp's default: $(ratio default_alone active2_alone)x"
fi
