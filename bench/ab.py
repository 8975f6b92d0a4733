#!/usr/bin/env python3
"""A/B of two berth builds: run the same berth command with each, alternately
(A B, then B A, ...), so that a slow minute of the machine lands on both,
and print each build's median and quartiles in ms.

    bench/ab.py RUNS BERTH_A BERTH_B [BERTH ARGS...]

The default command is `run --rm --no-mount-cwd --network none
localhost/busybox /bin/true` (load the image first: `berth load
rootfs-cache/images/busybox`). BERTH_ROOT and the user are the caller's.
Each build gets its own run directory (BERTH_RUNROOT/ab-a and ab-b; set
BERTH_RUNROOT): the preflight verdict kept there is keyed by the binary, so
a shared one would be rewritten, with an fsync, by every run. A failed run
stops the comparison (exit 1)."""
import os
import statistics
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 4 or not sys.argv[1].isdigit():
        sys.exit(__doc__)
    runs, bins = int(sys.argv[1]), sys.argv[2:4]
    args = sys.argv[4:] or ["run", "--rm", "--no-mount-cwd", "--network", "none", "localhost/busybox", "/bin/true"]
    res = {b: [] for b in bins}
    base = os.environ.get("BERTH_RUNROOT")
    if not base:
        sys.exit("ab.py: set BERTH_RUNROOT (each build gets a directory below it)")
    envs = {b: dict(os.environ, BERTH_RUNROOT=os.path.join(base, "ab-" + "ab"[k])) for k, b in enumerate(bins)}
    for i in range(runs):
        for b in bins if i % 2 == 0 else bins[::-1]:
            t0 = time.perf_counter()
            p = subprocess.run([b] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=envs[b])
            dt = (time.perf_counter() - t0) * 1e3
            if p.returncode != 0:
                sys.stderr.write(p.stderr.decode(errors="replace"))
                sys.exit("%s exited %d" % (b, p.returncode))
            res[b].append(dt)
    for b in bins:
        v = sorted(res[b])
        print("%-40s median %.2f ms  p25 %.2f  p75 %.2f  (%d runs)" % (b, statistics.median(v), v[len(v) // 4], v[3 * len(v) // 4], len(v)))


if __name__ == "__main__":
    main()
