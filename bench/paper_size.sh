#!/usr/bin/env bash
# Paper-size model end to end (docs/performance.md, "Paper-size models"):
# Model::Create + SaveModel, LoadModel + a (1, 64) forward pass, export to the
# release format (final_model.pt) and import back. One process per stage, each
# reporting its own time and peak RSS. Needs ~4 GB of disk under WORKDIR.
#
#   bench/paper_size.sh [WORKDIR]        # default: a fresh temp dir, removed afterwards
#   DENSE=1 bench/paper_size.sh          # dense random weights instead of the paper's density
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BUILD_DIR:-$root/build}/bin/bench_paper_size
if [[ $# -ge 1 ]]; then
  work=$1
  mkdir -p "$work"
else
  work=$(mktemp -d /tmp/circuit-paper-size.XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi
dense=()
[[ ${DENSE:-0} == 1 ]] && dense=(--dense)
"$bin" create "$work/paper.h5" --tokenizer "$root/data/tokenizer" "${dense[@]}"
"$bin" load "$work/paper.h5"
"$bin" export "$work/paper.h5" "$work/release"
"$bin" import "$work/release"
