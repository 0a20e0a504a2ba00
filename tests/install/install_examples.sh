#!/usr/bin/env bash
# The library as another project uses it: install the build into a fresh
# prefix, configure examples/ there with find_package(circuit CONFIG), build
# the programs, and run them: extract a circuit from a tiny random model (made
# by the installed `circuit`), list it, and run a one-unit sweep over it.
#   tests/install/install_examples.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$1
work=$(mktemp -d /tmp/circuit-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/lib/cmake/circuit/circuit-config.cmake"
test -f "$work/prefix/include/circuit/prune/pruner.h"
cmake -S "$root/examples" -B "$work/examples" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/examples" -j "${CIRCUIT_JOBS:-2}" >/dev/null
"$work/prefix/bin/circuit" init --layers 1 --d-model 16 --heads 2 --d-head 8 --d-mlp 32 --n-ctx 64 \
  --seed 1 --out "$work/tiny.h5" >/dev/null
"$work/examples/extract_circuit" "$work/tiny.h5" single_double_quote "$work/circuit.h5"
"$work/examples/list_circuit" "$work/circuit.h5" > "$work/list.txt"
head -1 "$work/list.txt"
grep -q "^node L" "$work/list.txt"
cat > "$work/spec.json" <<EOF
{"name": "install", "models": ["$work/tiny.h5"], "tasks": ["single_double_quote"],
 "target_losses": [0.3], "seeds": [0], "epochs": 1, "n_train": 16}
EOF
"$work/examples/run_sweep" "$work/spec.json" "$work/sweep" | tee "$work/sweep.txt"
grep -q "^1 units ran (0 failed)" "$work/sweep.txt"
"$work/prefix/bin/circuit" report "$work/sweep" | grep -q "^tiny "
echo "install_examples: ok"
