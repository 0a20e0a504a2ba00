#!/usr/bin/env bash
# The example study (data/sweeps/example.json): the circuits of four tasks in the
# bundled sparse model and its dense baseline, at target losses 0.15 and 0.3, then
# the report (circuit sizes, and dense/sparse size ratio at matched loss).
#
#   examples/sweep_study.sh [OUT_DIR]      # default out/sweep_example
#
# Runs under `mpirun -np 2` when OpenMPI is installed (rank 0 hands out units, rank
# 1 runs them), else in one process. Killed? Run it again: finished units are skipped.
# Environment: CIRCUIT (the binary, default build/bin/circuit), CIRCUIT_RANKS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

circuit=${CIRCUIT:-build/bin/circuit}
spec=data/sweeps/example.json
out=${1:-out/sweep_example}
ranks=${CIRCUIT_RANKS:-2}

for model in data/models/default.h5 data/models/dense.h5; do
  [[ -f $model ]] || echo "note: $model is missing: its units will fail (rows with ok = 0)" >&2
done

if command -v mpirun >/dev/null 2>&1 && (( ranks > 1 )); then
  mpi_args=(-np "$ranks")
  # OpenMPI refuses root and more ranks than cores unless told otherwise.
  if [[ $(id -u) == 0 ]]; then mpi_args+=(--allow-run-as-root); fi
  mpi_args+=(--oversubscribe)
  mpirun "${mpi_args[@]}" "$circuit" sweep "$spec" --out "$out"
else
  "$circuit" sweep "$spec" --out "$out"
fi

"$circuit" report "$out"
