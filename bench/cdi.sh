#!/usr/bin/env bash
# What a CDI device costs a create (docs/performance.md, "Devices (CDI)").
#
#   bench/cdi.sh        (as root; BENCH_ROUNDS, BENCH_RUNS, BENCH_PAIRS)
#
# A fake vendor's spec in a directory of its own (config cdi_spec_dirs):
# example.com/gpu=0 is a character node (mknod, /dev/null's numbers), a
# variable and a read-only library mount; =hooked adds a createContainer
# hook (a shell script that reads its stdin). Two measurements:
#   1. hyperfine, the three creates in one run per round (BENCH_ROUNDS
#      rounds of BENCH_RUNS runs; the rm in the untimed --prepare):
#      the median of each round's median, the fastest run, the CLI's CPU;
#   2. the three creates taken in turns BENCH_PAIRS times (what the
#      machine is doing hits all alike): medians, and the median of the
#      paired differences to the plain create.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/cdi.sh: run as root" >&2; exit 2; }
make -s
B=$PWD/build/berth
W=$(mktemp -d /tmp/berth-bench-cdi.XXXXXX)
chmod 755 "$W"
trap 'BERTH_ROOT=$W/root BERTH_CONFIG=$W/config.json "$B" rm -f b >/dev/null 2>&1; rm -rf "$W"' EXIT
mkdir -p "$W/cdi" "$W/lib" "$W/devs"
echo x >"$W/lib/libfakegpu.so.1"
mknod "$W/devs/gpu0" c 1 3 && chmod 666 "$W/devs/gpu0"
printf '#!/bin/sh\ncat >/dev/null\n' >"$W/hook.sh" && chmod 755 "$W/hook.sh"
cat >"$W/cdi/example.yaml" <<EOF
cdiVersion: "0.6.0"
kind: example.com/gpu
devices:
  - name: "0"
    containerEdits:
      deviceNodes: [{path: /dev/fakegpu0, hostPath: $W/devs/gpu0, permissions: rw}]
      env: [FAKE_GPU=0]
  - name: hooked
    containerEdits:
      deviceNodes: [{path: /dev/fakegpu0, hostPath: $W/devs/gpu0, permissions: rw}]
      hooks: [{hookName: createContainer, path: $W/hook.sh}]
containerEdits:
  env: [FAKE_VENDOR=example]
  mounts: [{hostPath: $W/lib, containerPath: /opt/fake/lib, options: [ro, nosuid, nodev, bind]}]
EOF
echo "{\"cdi_spec_dirs\": [\"$W/cdi\"]}" >"$W/config.json"
export BERTH_ROOT=$W/root BERTH_CONFIG=$W/config.json
"$B" load -q rootfs-cache/images/busybox >/dev/null
create() { echo "$B create -q --no-mount-cwd --network none --name b $* localhost/busybox"; }
clean="sh -c '$B rm -f b >/dev/null 2>&1; rm -rf $W/root/containers/b'"
uptime
for r in $(seq 1 "${BENCH_ROUNDS:-5}"); do
  hyperfine -N -w 5 -r "${BENCH_RUNS:-60}" --export-json "$W/h$r.json" --prepare "$clean" \
    -n plain "$(create)" -n device "$(create --device example.com/gpu=0)" -n device+hook "$(create --device example.com/gpu=hooked)" >/dev/null
done
python3 - "$W" "${BENCH_ROUNDS:-5}" <<'PY'
import json, sys, statistics as st
w, n = sys.argv[1], int(sys.argv[2])
res = {}
for r in range(1, n + 1):
    for b in json.load(open(f"{w}/h{r}.json"))["results"]:
        res.setdefault(b["command"], []).append((st.median(b["times"]) * 1e3, min(b["times"]) * 1e3, (b["user"] + b["system"]) * 1e3))
print("hyperfine, one run per round:")
for k, v in res.items():
    print(f"  {k:12s} round medians {' '.join('%.1f' % x[0] for x in v)} ms; median {st.median([x[0] for x in v]):.2f} ms, "
          f"fastest {min(x[1] for x in v):.2f} ms, CLI cpu {st.median([x[2] for x in v]):.2f} ms")
PY
one() { sh -c "$clean"; local t0=$EPOCHREALTIME; $(create "$@") >/dev/null; echo "$t0 $EPOCHREALTIME"; }
for i in $(seq 1 "${BENCH_PAIRS:-150}"); do
  echo "plain $(one)"; echo "device $(one --device example.com/gpu=0)"; echo "device+hook $(one --device example.com/gpu=hooked)"
done | python3 -c '
import sys, statistics as st
d = {}
for k, a, b in (l.split() for l in sys.stdin): d.setdefault(k, []).append((float(b) - float(a)) * 1e3)
print("in turns:")
for k, v in d.items(): print(f"  {k:12s} n={len(v)} median {st.median(v):.2f} ms (p25 {st.quantiles(v, n=4)[0]:.2f}, p75 {st.quantiles(v, n=4)[2]:.2f}), fastest {min(v):.2f}")
base = d["plain"]
for k in ("device", "device+hook"):
    print(f"  {k} - plain, paired: median {st.median([x - y for x, y in zip(d[k], base)]):.2f} ms")
'
uptime
