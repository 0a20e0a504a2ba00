#!/usr/bin/env bash
# Paper-size model end to end (docs/performance.md, "Paper-size models"):
# Model::Create + SaveModel, LoadModel + a (1, 64) forward pass, export to the
# release format (final_model.pt) and import back. One process per stage, each
# reporting its own time and peak RSS. Needs ~4 GB of disk under WORKDIR.
#
#   bench/paper_size.sh [WORKDIR]        # default: a fresh temp dir, removed afterwards
#   DENSE=1 bench/paper_size.sh          # dense random weights instead of the paper's density
#   PRUNE=1 bench/paper_size.sh          # also extract a circuit (masks, 16 pairs): the pruning
#                                        # engine at 182,784 nodes; ~3 min, 4.4 GB on 2 cores
#   PRUNE=1 METHOD=attribution ...       # the same with attribution scores
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BUILD_DIR:-$root/build}/bin/bench_paper_size
source "$root/bench/workdir.sh"
bench_workdir "$@"
dense=()
[[ ${DENSE:-0} == 1 ]] && dense=(--dense)
"$bin" create "$work/paper.h5" --tokenizer "$root/data/tokenizer" "${dense[@]}"
"$bin" load "$work/paper.h5"
"$bin" export "$work/paper.h5" "$work/release"
"$bin" import "$work/release"
if [[ ${PRUNE:-0} == 1 ]]; then
  # Random weights solve no task: the target is the point, not whether it is met.
  # Masks: 64 steps of 4 pairs, scoring passes of 4 prompts (the peak memory).
  /usr/bin/time -f "prune   peak RSS %M kB, wall %e s" "${BUILD_DIR:-$root/build}/bin/circuit" extract \
    --model "$work/paper.h5" --task single_double_quote --method "${METHOD:-masks}" --pairs 16 \
    --batch 4 --eval-batch 4 --target-loss 0.6 --no-importance --no-explain --out "$work/prune"
fi
