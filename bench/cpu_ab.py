#!/usr/bin/env python3
"""CPU A/B of berth builds: blocks of back-to-back runs of the same berth
command, the builds taking turns block by block (A B, then B A, ...), and
for each block the CPU time of the whole process tree (`perf stat -e
task-clock` around a shell loop) and the wall time, per run. Prints each
build's median and minimum in ms.

    bench/cpu_ab.py BLOCKS RUNS_PER_BLOCK BERTH_A BERTH_B [BERTH_C ...]

A build may carry one environment variable for its runs: PATH@NAME=VALUE.
The command is `run --rm --no-mount-cwd --network none localhost/busybox
/bin/true` (load the image first). BERTH_ROOT and the user are the
caller's; each build gets its own run directory below BERTH_RUNROOT (set
it), for the reason bench/ab.py gives. A back-to-back loop is bound by
CPU on a small machine (docs/performance.md, session 6), so CPU per run
shows a change that wall time alone hides. Needs perf (linux-perf)."""
import os
import statistics
import subprocess
import sys
import time

ARGS = "run --rm --no-mount-cwd --network none localhost/busybox /bin/true"


def main():
    if len(sys.argv) < 5 or not sys.argv[1].isdigit() or not sys.argv[2].isdigit():
        sys.exit(__doc__)
    blocks, n, bins = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    base = os.environ.get("BERTH_RUNROOT")
    if not base:
        sys.exit("cpu_ab.py: set BERTH_RUNROOT (each build gets a directory below it)")
    cpu = {b: [] for b in bins}
    wall = {b: [] for b in bins}
    for i in range(blocks):
        for b in bins if i % 2 == 0 else bins[::-1]:
            env = dict(os.environ, BERTH_RUNROOT=os.path.join(base, "cpu-ab-%d" % bins.index(b)))
            exe = b
            if "@" in b:
                exe, kv = b.split("@", 1)
                env[kv.split("=", 1)[0]] = kv.split("=", 1)[1]
            loop = "for i in $(seq %d); do %s %s >/dev/null || exit 1; done" % (n, exe, ARGS)
            t0 = time.perf_counter()
            p = subprocess.run(["perf", "stat", "-x,", "-e", "task-clock", "--", "bash", "-c", loop],
                               env=env, stderr=subprocess.PIPE, text=True)
            dt = (time.perf_counter() - t0) * 1e3 / n
            if p.returncode != 0:
                sys.exit("%s failed:\n%s" % (b, p.stderr))
            line = [l for l in p.stderr.splitlines() if "task-clock" in l]
            if not line:
                sys.exit("perf printed no task-clock:\n" + p.stderr)
            cpu[b].append(float(line[0].split(",")[0]) / n)
            wall[b].append(dt)
    for b in bins:
        print("%-40s cpu/run median %.2f ms (min %.2f)  wall/run median %.2f ms (min %.2f)  (%d blocks of %d)"
              % (b[-40:], statistics.median(cpu[b]), min(cpu[b]), statistics.median(wall[b]), min(wall[b]), blocks, n))


if __name__ == "__main__":
    main()
