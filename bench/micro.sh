#!/bin/bash
# Micro-benchmarks behind start-path choices (docs/performance.md,
# sessions 4 and 5), each the alternatives side by side:
#   seccomp_load  the built-in filter as libseccomp's binary tree (what berth
#                 loads) and as a plain list of comparisons
#   cgmove        a fresh process into a cgroup, 20 ms after the last move:
#                 moved by its parent (cgroup.procs) or, on v1, moving itself
#                 (tasks "0"); on v2, born inside (clone3 CLONE_INTO_CGROUP)
#   childwake     a just-forked child told to go while its parent works on
#                 for 1 ms: left on the parent's CPU, or moved off it first
# cgmove needs root; it makes and removes groups below the cgroups this
# shell is in. Exits 1 only when something cannot be built or run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${BENCH_BUILD:-$ROOT/build/micro}
mkdir -p "$B"
make -s -C "$ROOT" build/gen-seccomp build/seccomp.bpf
cc -O2 -Wall -o "$B/seccomp_load" "$ROOT/bench/micro/seccomp_load.c"
cc -O2 -Wall -o "$B/cgmove" "$ROOT/bench/micro/cgmove.c"
cc -O2 -Wall -o "$B/childwake" "$ROOT/bench/micro/childwake.c"
"$ROOT/build/gen-seccomp" --linear "$B/seccomp-list.bpf"

echo "== seccomp filter load (a fresh process each time)"
"$B/seccomp_load" "$ROOT/build/seccomp.bpf"
"$B/seccomp_load" "$B/seccomp-list.bpf"

echo "== a new child's first run while its parent is busy ($(nproc) CPUs)"
"$B/childwake" same 40 1
"$B/childwake" aside 40 1

echo "== moving a process into a cgroup"
if [ "$(id -u)" != 0 ]; then
  echo "cgmove: run as root to measure it"
  exit 0
fi
run_pair() { # DIR VERSION
  local d=$1/berth-micro
  mkdir -p "$d"
  "$B/cgmove" "$d" "$2" procs 30 20
  "$B/cgmove" "$d" "$2" self 30 20
  rmdir "$d"
}
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
  run_pair "/sys/fs/cgroup$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup | sed 's|/$||')" v2
else
  for ctrl in memory pids; do
    [ -d "/sys/fs/cgroup/$ctrl" ] || continue
    echo "-- v1 $ctrl"
    run_pair "/sys/fs/cgroup/$ctrl$(awk -F: -v c="$ctrl" '$2 == c {print $3}' /proc/self/cgroup | sed 's|/$||')" v1
  done
fi
