#!/usr/bin/env bash
# `berth stats --no-stream` over many containers; target: 50 running
# containers in 100 ms or less, the whole command.
#
#   bench/stats.sh [N]      (default 50; run as root)
#
# Creates N busybox containers (--network none, so nothing on berth0) in a
# scratch BERTH_ROOT, times `berth stats --no-stream` and `berth stats
# --no-stream --json` with hyperfine (a date +%s%N loop when it is
# missing), prints the medians, the ratio to the target (MISSED when over)
# and removes the containers. The figure includes the 50 ms CPU window
# every --no-stream waits (one for all containers).
#
# Environment:
#   BENCH_RUNS     timed runs (default 20)
#   BENCH_WARMUP   untimed warm-up runs (default 3)
#   BERTH_BIN      berth binary (default build/berth)
#   BENCH_KEEP=1   keep the scratch directory (and its containers)
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh

N=${1:-50}
RUNS=${BENCH_RUNS:-20}
WARMUP=${BENCH_WARMUP:-3}
TARGET_MS=100
BERTH=$(realpath "${BERTH_BIN:-build/berth}")
[ -x "$BERTH" ] || bench_die "no berth binary at $BERTH: run make"
bench_is_root || bench_die "run as root"
[ -f rootfs-cache/images/busybox/index.json ] || bench_die "the busybox fixture is missing: run scripts/fixtures.sh"

DIR=$(mktemp -d /tmp/berth-stats.XXXXXX)
export BERTH_ROOT=$DIR/root BERTH_CONFIG=$DIR/config.json BERTH_RUNROOT=$DIR/run
echo '{}' >"$BERTH_CONFIG"
cleanup() {
    [ "${BENCH_KEEP:-0}" = 1 ] && { bench_log "kept $DIR"; return; }
    "$BERTH" rm --all --confirm -f >/dev/null 2>&1
    rm -rf "$DIR"
}
trap cleanup EXIT

"$BERTH" load -q rootfs-cache/images/busybox || bench_die "berth load failed"
bench_log "creating $N containers"
for i in $(seq "$N"); do
    "$BERTH" create -q --no-mount-cwd --network none --name "s$i" localhost/busybox >/dev/null \
        || bench_die "berth create s$i failed"
done
got=$("$BERTH" stats --no-stream | tail -n +2 | wc -l)
[ "$got" = "$N" ] || bench_die "berth stats shows $got containers, expected $N"

time_ms() { # NAME ARGS...: median wall ms of berth ARGS
    local name=$1
    shift
    if command -v hyperfine >/dev/null 2>&1; then
        hyperfine -N --style none --runs "$RUNS" --warmup "$WARMUP" --export-json "$DIR/$name.json" \
            -- "$BERTH $*" >/dev/null 2>"$DIR/$name.err" || bench_die "berth $* failed: $(cat "$DIR/$name.err")"
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.1f %.1f" % (r["median"]*1000, r["min"]*1000))' "$DIR/$name.json"
    else
        local i t0 t1
        : >"$DIR/$name.raw"
        for ((i = 0; i < WARMUP + RUNS; i++)); do
            t0=$(date +%s%N)
            "$BERTH" "$@" >/dev/null || bench_die "berth $* failed"
            t1=$(date +%s%N)
            [ "$i" -ge "$WARMUP" ] && echo "$(((t1 - t0) / 1000)) " >>"$DIR/$name.raw"
        done
        echo "$(awk '{printf "%.1f\n", $1/1000}' "$DIR/$name.raw" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}') $(sort -g "$DIR/$name.raw" | head -n 1 | awk '{printf "%.1f", $1/1000}')"
    fi
}

read -r table tmin < <(time_ms table stats --no-stream)
read -r json jmin < <(time_ms json stats --no-stream --json)
echo "berth stats --no-stream, $N running containers ($RUNS runs; $(nproc) CPUs; $(uname -r); cgroup $([ -f /sys/fs/cgroup/cgroup.controllers ] && echo v2 || echo v1))"
printf '  table   median %6.1f ms  (min %.1f)\n' "$table" "$tmin"
printf '  --json  median %6.1f ms  (min %.1f)\n' "$json" "$jmin"
ratio=$(bench_ratio "$table" "$TARGET_MS")
if bench_le "$table" "$TARGET_MS"; then
    echo "ratio to the ${TARGET_MS} ms target: $ratio"
else
    echo "ratio to the ${TARGET_MS} ms target: $ratio MISSED"
fi
