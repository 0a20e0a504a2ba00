#!/usr/bin/env bash
# Time to the first circuit on a fresh Debian 12 machine (docs/performance.md,
# "First ten minutes"): debootstraps a minimal bookworm root into WORKDIR, clones
# this checkout's HEAD into it and runs README command 1 (scripts/quickstart)
# inside it, timing its phases: packages (scripts/bootstrap), build (only the
# `circuit` program) and the run (eval, corpus, extract, draw, view). The root is
# as bare as Debian's minbase variant: no compiler, no libraries, no ccache.
#
#   sudo bench/fresh_root.sh [WORKDIR]   # default: a fresh temp dir, removed afterwards
# Needs root, debootstrap and Debian's mirror (deb.debian.org or $MIRROR).
# Measure on an otherwise idle machine: the build is most of the time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/workdir.sh"
bench_workdir ${1:+"$1"}
mirror=${MIRROR:-http://deb.debian.org/debian}
target="$work/root"
command -v debootstrap >/dev/null || { echo "fresh_root: needs debootstrap (apt-get install debootstrap)" >&2; exit 2; }

mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap 'cleanup; [ $# -ge 1 ] || rm -rf "$work"' EXIT

if [ ! -x "$target/usr/bin/apt-get" ]; then
  echo "== debootstrap bookworm (minbase) into $target (not timed: this is the fresh machine)"
  debootstrap --variant=minbase bookworm "$target" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -5 "$work/debootstrap.log" >&2; exit 1; }
fi
for m in proc sys dev dev/pts; do
  mount --bind "/$m" "$target/$m"
  mounted+=("$target/$m")
done
cp /etc/resolv.conf "$target/etc/resolv.conf"
rm -rf "$target/src"
git -C "$root" archive --format=tar --prefix=src/ HEAD | tar -x -C "$target"

# Each line of quickstart's output with the seconds since the start; the phase
# boundaries are the first lines of the build and of the run.
echo "== scripts/quickstart in the fresh root ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
start=$(date +%s.%N)
chroot "$target" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  /bin/bash -c 'cd /src && scripts/quickstart' 2>&1 |
  while IFS= read -r line; do
    printf '%8.1f  %s\n' "$(awk "BEGIN {print $(date +%s.%N) - $start}")" "$line"
  done | tee "$work/quickstart.log"
status=${PIPESTATUS[0]}
end=$(date +%s.%N)
awk -v total="$(awk "BEGIN {print $end - $start}")" '
  /Building|Linking|\[[0-9]+\/[0-9]+\]/ && !b { b = $1 }
  /== the bundled model/ && !r { r = $1 }
  /== extracting/ { x = $1 } /== its core/ { y = $1 }
  END {
    printf "\npackages %6.1f s\nbuild    %6.1f s\nrun      %6.1f s (extraction %.1f s)\ntotal    %6.1f s (%.1f min)\n",
           b, r - b, total - r, y - x, total, total / 60
  }' "$work/quickstart.log"
exit "$status"
