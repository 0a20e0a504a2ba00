# Sourced by the bench scripts: `bench_workdir [DIR]` sets $work to DIR (created)
# or to a fresh temporary folder that is removed when the script exits.
bench_workdir() {
  if [[ $# -ge 1 ]]; then
    work=$1
    mkdir -p "$work"
  else
    work=$(mktemp -d "/tmp/circuit-$(basename "$0" .sh).XXXXXX")
    trap 'rm -rf "$work"' EXIT
  fi
}
