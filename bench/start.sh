#!/usr/bin/env bash
# Start-up benchmark: berth vs a bare unshare+chroot floor vs crun vs podman.
#
#   bench/start.sh [--root | --rootless | --both]      (default --both)
#
# Run as root. For each mode (root, and rootless as the test user `berthtest`)
# it measures, with hyperfine (a date +%s%N loop when hyperfine is missing),
# BENCH_RUNS timed runs each, and prints the medians:
#   floor          unshare --mount --pid --fork --uts --ipc --net [--user
#                  --map-root-user] chroot ROOTFS /bin/true  (ROOTFS = the
#                  busybox image's layer, unpacked)
#   berth run      berth run --rm --no-mount-cwd --network none localhost/busybox /bin/true
#                  (--network none everywhere: podman runs with it, crun and the
#                  floor set up no network either; bench/net.sh measures networks)
#   berth exec     berth exec NAME /bin/true              (running container)
#   berth create   berth create --no-mount-cwd --network none localhost/busybox  (detached;
#                  the rm happens in hyperfine's untimed --prepare)
#   berth start    berth start NAME of a stopped service container (sleep);
#                  the stop (berth stop -t 0) in the untimed --prepare
#   podman start   the same with podman (podman stop -t 0 in --prepare)
#   berth logs     berth logs --tail 100 NAME of a service that wrote 100 MB
#                  (config log_max_size 200m: one file)
#   crun run       crun run of an OCI bundle (crun spec [--rootless], rootfs =
#                  ROOTFS, args /bin/true, no terminal, no rlimits)
#   crun exec      crun exec NAME /bin/true               (bundle running sleep)
#   OCI run        berth-oci run and crun run of the same bundle (crun spec
#                  [--rootless], rootfs = ROOTFS, /bin/true), a new container
#                  id each run (sh -c 'exec RUNTIME run --bundle B ID-$$': the
#                  same sh on both sides), in turns, BENCH_ROUNDS batches each
#   podman --runtime  podman --runtime berth-oci run --rm ... localhost/busybox
#                  /bin/true and the same with --runtime crun (same flags, same
#                  store and image), in turns
#                  (these four only when build/berth-oci, or the runtime that
#                  BENCH_OCI_RUNTIME names, exists; a note says so otherwise)
#   podman run     podman run --rm --network none localhost/busybox /bin/true
#   podman exec    podman exec NAME /bin/true
#   idle PSS       PSS (smaps_rollup) of an idle container's berth monitor +
#                  berth init (state.json monitor.pid / init.pid)
#   CPU per run    of the floor and of berth run (perf stat task-clock over
#                  the whole process tree, 3 alternating loops of BENCH_RUNS),
#                  when perf works: informational, without a target
#   ladder         bench/micro/ladder.c: the isolation berth run sets up, done
#                  with bare system calls and no runtime, one part at a time
#                  (namespaces, overlay, mounts, pivot_root, init, seccomp
#                  and capabilities, cgroup), in turns with the floor and
#                  berth run: what any runtime pays over the floor, and how
#                  much berth adds to that. Informational, without a target
# then ratio lines with their targets, MISSED for each target missed.
# Exits 0 whether targets are met or not (it is a benchmark); 1 only when it
# cannot run at all.
#
# Host notes handled here:
#  * crun (and podman, which runs crun) refuse hybrid cgroup hosts; when
#    /sys/fs/cgroup/unified is a cgroup2 mount under a tmpfs /sys/fs/cgroup,
#    the crun and podman measurements run inside a private mount namespace in
#    which a tmpfs hides it (the whole hyperfine runs there, so nothing of the
#    unshare is timed).
#  * root may lack CAP_SYS_RESOURCE: the generated config.json has no rlimits,
#    podman gets --ulimit nofile=20000:20000 --ulimit nproc=32768:32768.
#  * podman: --cgroup-manager cgroupfs --events-backend file, overlay storage
#    (a storage.conf when rootless), throwaway --root/--runroot/--tmpdir.
#
# Environment:
#   BENCH_RUNS      timed runs per command (default 20)
#   BENCH_WARMUP    untimed warm-up runs per command (default 2)
#   BENCH_ROUNDS    the floor and berth run are measured in turns, this many
#                   batches each, and their runs pooled (default 5)
#   BENCH_USER      rootless user (default berthtest)
#   BENCH_DIR       scratch directory (default: mktemp -d /tmp/berth-start.XXXXXX)
#   BENCH_KEEP=1    keep the scratch directory
#   BENCH_RESULTS   also write "mode<TAB>name<TAB>median_ms" lines to this file
#   BENCH_NO_FOREIGN=1  skip crun and podman (and the berth-oci rows)
#   BENCH_OCI_RUNTIME   the runtime of the "OCI run" and "podman --runtime"
#                   rows (default: OCI_RUNTIME, else build/berth-oci);
#                   BENCH_OCI_RUNTIME=/usr/bin/crun checks the rows themselves
#                   (ratios ~1.0)
#   BENCH_LADDER=0  skip the ladder
#   BENCH_FS        where every tool's files go: "host" (default: BENCH_DIR's
#                   filesystem) or "loop" (root only: a fresh journaled ext4
#                   image, loop-mounted; this VM's own ext4 has no journal,
#                   which makes a loop that deletes files slow its own creates,
#                   see docs/performance.md)
set -uo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SELF")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

RUNS=${BENCH_RUNS:-20}
ROUNDS=${BENCH_ROUNDS:-5}
WARMUP=${BENCH_WARMUP:-2}
BUSER=${BENCH_USER:-berthtest}
IMG=localhost/busybox
IMAGES_DIR=$ROOT/rootfs-cache/images

# --------------------------------------------------------------- measuring
# measure, quote_cmd, loop_measure: bench/lib.sh
# unpack the busybox image's (single) layer from its OCI layout into $1
unpack_rootfs() {
    local dest=$1 blob
    blob=$(python3 - "$IMAGES_DIR/busybox" <<'EOF'
import json, os, sys
lay = sys.argv[1]
b = lambda d: os.path.join(lay, "blobs", *d.split(":", 1))
doc = json.load(open(b(json.load(open(os.path.join(lay, "index.json")))["manifests"][0]["digest"])))
if "manifests" in doc:
    doc = json.load(open(b(doc["manifests"][0]["digest"])))
print(b(doc["layers"][0]["digest"]))
EOF
    ) || return 1
    mkdir -p "$dest" && tar -xf "$blob" -C "$dest"
}

# pool_rounds NAME: the runs of rounds NAME.r1 ... NAME.rROUNDS, pooled:
# their median into $RES/NAME, their minimum into $RES/NAME.min ("n/a" when
# a round failed)
pool_rounds() {
    local name=$1 r
    for r in $(seq "$ROUNDS"); do
        if [ "$(cat "$RES/$name.r$r")" = n/a ]; then echo n/a >"$RES/$name"; return 0; fi
    done
    if [ -f "$RES/$name.r1.json" ]; then
        python3 -c 'import json, statistics, sys
res, name, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = []
for r in range(1, rounds + 1):
    t += json.load(open("%s/%s.r%d.json" % (res, name, r)))["results"][0]["times"]
open("%s/%s" % (res, name), "w").write("%.2f\n" % (statistics.median(t) * 1000))
open("%s/%s.min" % (res, name), "w").write("%.2f\n" % (min(t) * 1000))' "$RES" "$name" "$ROUNDS" || echo n/a >"$RES/$name"
    else # the date loop: its raw times (microseconds), pooled the same way
        for r in $(seq "$ROUNDS"); do cat "$RES/$name.r$r.raw"; done >"$RES/$name.raw"
        awk '{print $1 / 1000}' "$RES/$name.raw" >"$RES/$name.ms"
        bench_median "$RES/$name.ms" 1 | awk '{printf "%.2f\n", $1}' >"$RES/$name"
        sort -g "$RES/$name.ms" | awk 'NR == 1 {printf "%.2f\n", $1}' >"$RES/$name.min"
    fi
}

# -------------------------------------------------------------- sections
# Each section runs as the mode's user (and the foreign one in the hidden-
# cgroup2 mount namespace when needed); results go to $MW/res.

section_berth() {
    export BERTH_ROOT=$MW/berth BERTH_RUNROOT=$MW/berth-run BERTH_CONFIG=$WORK/berth-config.json
    unset XDG_RUNTIME_DIR XDG_DATA_HOME XDG_CONFIG_HOME
    local B=$WORK/bin/berth uflags=()
    mkdir -p "$BERTH_ROOT" "$BERTH_RUNROOT"
    cd "$MW" || return 1
    "$B" load -q "$IMAGES_DIR/busybox" >"$RES/load.log" 2>&1 \
        || { bench_log "[$MODE] berth load failed"; cat "$RES/load.log" >&2; }

    [ "$MODE" = rootless ] && uflags=(--user --map-root-user)
    # the floor and berth run take turns, ROUNDS batches each: a slow
    # minute of the machine lands on both, not on one side of the ratio
    local r total=$RUNS
    RUNS=$(( (total + ROUNDS - 1) / ROUNDS ))
    for r in $(seq "$ROUNDS"); do
        measure "floor.r$r" "" unshare --mount --pid --fork --uts --ipc --net "${uflags[@]}" chroot "$MW/rootfs" /bin/true
        measure "berth_run.r$r" "" "$B" run --rm --no-mount-cwd --network none "$IMG" /bin/true
    done
    RUNS=$total
    pool_rounds floor
    pool_rounds berth_run

    # CPU per run of the two (perf's task-clock over the whole process tree,
    # 3 alternating loops of RUNS each, median), where perf works: a loop
    # of runs is bound by CPU here (docs/performance.md), and CPU time moves
    # less with the machine than wall time. Informational, no target.
    echo n/a >"$RES/floor_cpu"; echo n/a >"$RES/berth_run_cpu"
    if command -v perf >/dev/null 2>&1 && perf stat -x, -e task-clock true >/dev/null 2>&1; then
        local fq bq
        fq=$(quote_cmd unshare --mount --pid --fork --uts --ipc --net "${uflags[@]}" chroot "$MW/rootfs" /bin/true)
        bq=$(quote_cmd "$B" run --rm --no-mount-cwd --network none "$IMG" /bin/true)
        rm -f "$RES/floor.cpu" "$RES/berth_run.cpu"
        for r in 1 2 3; do
            for k in floor:"$fq" berth_run:"$bq"; do
                perf stat -x, -e task-clock -- bash -c "for i in \$(seq $RUNS); do ${k#*:} >/dev/null 2>&1 || exit 1; done" 2>&1 >/dev/null \
                    | awk -F, -v n="$RUNS" '/task-clock/ {printf "%.3f\n", $1 / n}' >>"$RES/${k%%:*}.cpu"
            done
        done
        bench_median "$RES/floor.cpu" 1 | awk '{printf "%.2f\n", $1}' >"$RES/floor_cpu"
        bench_median "$RES/berth_run.cpu" 1 | awk '{printf "%.2f\n", $1}' >"$RES/berth_run_cpu"
    fi

    if [ "${BENCH_LADDER:-1}" != 0 ]; then
        mkdir -p "$MW/ladder"
        "$WORK/bin/ladder" bench "$MW/rootfs" "$MW/ladder" "$WORK/bin/seccomp.bpf" "$RUNS" "$ROUNDS" \
            -- "$(command -v unshare)" --mount --pid --fork --uts --ipc --net "${uflags[@]}" chroot "$MW/rootfs" /bin/true \
            -- "$B" run --rm --no-mount-cwd --network none "$IMG" /bin/true >"$RES/ladder" 2>"$RES/ladder.log" \
            || { bench_log "[$MODE] ladder failed"; cat "$RES/ladder.log" >&2; rm -f "$RES/ladder"; }
    fi

    if "$B" create -q --name bexec --no-mount-cwd --network none "$IMG" >"$RES/bexec.log" 2>&1; then
        measure berth_exec "" "$B" exec bexec /bin/true
    else
        echo n/a >"$RES/berth_exec"; cat "$RES/bexec.log" >&2
    fi
    "$B" rm -f bexec >/dev/null 2>&1

    # start of a stopped service container (the stop in the untimed prepare)
    if "$B" create -q --name bstart --no-mount-cwd --network none "$IMG" sleep 100000 >"$RES/bstart.log" 2>&1; then
        measure berth_start "$B stop -t 0 bstart" "$B" start bstart
    else
        echo n/a >"$RES/berth_start"; cat "$RES/bstart.log" >&2
    fi
    "$B" rm -f bstart >/dev/null 2>&1

    # logs --tail 100 of a 100 MB log (a config with room for it)
    echo n/a >"$RES/berth_logs_tail"
    printf '{"log_max_size": "200m"}\n' >"$MW/logs-config.json"
    if BERTH_CONFIG=$MW/logs-config.json "$B" create -q --name blogs --no-mount-cwd --network none "$IMG" \
        sh -c 'yes "a line of a service log, about sixty bytes long, with text" | head -c 100000000; echo end; sleep 100000' \
        >"$RES/blogs.log" 2>&1; then
        local w=0
        until grep -q '^[^ ]* stdout F end$' "$BERTH_ROOT/containers/blogs/ctr.log" 2>/dev/null || [ $w -ge 600 ]; do sleep 0.1; w=$((w + 1)); done
        measure berth_logs_tail "" "$B" logs --tail 100 blogs
        du -b "$BERTH_ROOT/containers/blogs/ctr.log" | cut -f1 >"$RES/berth_logs_bytes"
    fi
    "$B" rm -f blogs >/dev/null 2>&1

    measure berth_create "sh -c '$B rm -f bcreate >/dev/null 2>&1; exit 0'" \
        "$B" create -q --name bcreate --no-mount-cwd --network none "$IMG"
    "$B" rm -f bcreate >/dev/null 2>&1

    # idle memory: a fresh container left alone for a second
    echo n/a >"$RES/pss"
    if "$B" create -q --name bidle --no-mount-cwd --network none "$IMG" >"$RES/bidle.log" 2>&1; then
        sleep 1
        python3 - "$BERTH_ROOT/containers/bidle/state.json" "$RES" <<'EOF' || bench_log "[$MODE] idle PSS failed"
import json, sys
st = json.load(open(sys.argv[1]))
out = {}
for role in ("monitor", "init"):
    pid = st[role]["pid"]
    kv = {}
    for line in open("/proc/%d/smaps_rollup" % pid):
        p = line.split()
        if len(p) >= 3 and p[-1] == "kB":
            kv[p[0].rstrip(":")] = int(p[1])
    out[role] = kv
    with open("%s/pss_%s" % (sys.argv[2], role), "w") as f:
        f.write("%d %d %d %d\n" % (kv["Pss"], kv["Rss"], kv.get("Pss_Anon", 0), kv.get("Pss_File", 0)))
with open(sys.argv[2] + "/pss", "w") as f:
    f.write("%d\n" % (out["monitor"]["Pss"] + out["init"]["Pss"]))
EOF
    else
        cat "$RES/bidle.log" >&2
    fi
    "$B" rm -f bidle >/dev/null 2>&1
    return 0
}

crun_bundle() { # DIR ARGS_JSON
    local dir=$1 args=$2 sflags=()
    [ "$MODE" = rootless ] && sflags=(--rootless)
    mkdir -p "$dir" && (cd "$dir" && rm -f config.json && crun spec "${sflags[@]}") || return 1
    python3 - "$dir/config.json" "$MW/rootfs" "$args" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["root"] = {"path": sys.argv[2], "readonly": True}
c["process"]["args"] = json.loads(sys.argv[3])
c["process"]["terminal"] = False
c["process"].pop("rlimits", None)   # root here cannot raise hard limits
json.dump(c, open(p, "w"), indent=1)
EOF
}

podman_setup_env() { # [DIR]  (default $MW/podman)
    local P=${1:-$MW/podman}
    mkdir -p "$P/home" "$P/tmp" "$P/xdg"
    chmod 700 "$P/xdg"
    printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$P/root" "$P/run" >"$P/storage.conf"
    printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$P/containers.conf"
    export CONTAINERS_STORAGE_CONF=$P/storage.conf CONTAINERS_CONF=$P/containers.conf
    export HOME=$P/home XDG_RUNTIME_DIR=$P/xdg XDG_CONFIG_HOME=$P/home/.config XDG_DATA_HOME=$P/home/.local/share
    PG=(podman --root "$P/root" --runroot "$P/run" --tmpdir "$P/tmp" --storage-driver overlay
        --cgroup-manager cgroupfs --events-backend file)
    PRUN=(--network none)
    [ "$MODE" = root ] && PRUN+=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
}

section_foreign() {
    cd "$MW" || return 1
    # ---- crun
    local CG=(crun --root "$MW/crun-state")
    [ "$MODE" = rootless ] && CG=(crun --cgroup-manager=disabled --root "$MW/crun-state")
    if crun_bundle "$MW/crun-true" '["/bin/true"]' && crun_bundle "$MW/crun-sleep" '["/bin/sleep","1000"]'; then
        measure crun_run "" "${CG[@]}" run --bundle "$MW/crun-true" bench-crun-true
        if "${CG[@]}" run -d --bundle "$MW/crun-sleep" bench-crun-sleep </dev/null >"$RES/crun-sleep.log" 2>&1; then
            measure crun_exec "" "${CG[@]}" exec bench-crun-sleep /bin/true
        else
            echo n/a >"$RES/crun_exec"; cat "$RES/crun-sleep.log" >&2
        fi
    else
        bench_log "[$MODE] crun spec failed"; echo n/a >"$RES/crun_run"; echo n/a >"$RES/crun_exec"
    fi
    foreign_cleanup_crun

    # ---- podman
    podman_setup_env
    if "${PG[@]}" load -q -i "$IMAGES_DIR/busybox-docker-save.tar" >"$RES/podman-load.log" 2>&1; then
        measure podman_run "" "${PG[@]}" run --rm "${PRUN[@]}" "$IMG" /bin/true
        if "${PG[@]}" run -d --name bench-podman-exec "${PRUN[@]}" "$IMG" sleep 1000 >"$RES/podman-d.log" 2>&1; then
            measure podman_exec "" "${PG[@]}" exec bench-podman-exec /bin/true
            measure podman_start "$(quote_cmd "${PG[@]}" stop -t 0 bench-podman-exec)" "${PG[@]}" start bench-podman-exec
        else
            echo n/a >"$RES/podman_exec"; echo n/a >"$RES/podman_start"; cat "$RES/podman-d.log" >&2
        fi
    else
        bench_log "[$MODE] podman load failed"; cat "$RES/podman-load.log" >&2
        echo n/a >"$RES/podman_run"; echo n/a >"$RES/podman_exec"; echo n/a >"$RES/podman_start"
    fi
    foreign_cleanup_podman
    return 0
}

foreign_cleanup_crun() {
    local CG=(crun --root "$MW/crun-state") c
    [ "$MODE" = rootless ] && CG=(crun --cgroup-manager=disabled --root "$MW/crun-state")
    [ -d "$MW/crun-state" ] || return 0
    for c in bench-crun-sleep bench-crun-true; do
        "${CG[@]}" kill "$c" KILL >/dev/null 2>&1
        "${CG[@]}" delete -f "$c" >/dev/null 2>&1
    done
    rm -rf "$MW/crun-state"
}

foreign_cleanup_podman() { # [DIR]  (default $MW/podman)
    local P=${1:-$MW/podman}
    [ -d "$P" ] && [ ! -e "$P/cleaned" ] || return 0
    podman_setup_env "$P"
    "${PG[@]}" rm -af -t 0 >/dev/null 2>&1
    "${PG[@]}" rmi -af >/dev/null 2>&1
    # storage owned by subordinate ids: when nobody outside can remove it
    # (not run as root), only from inside podman's user namespace
    [ "$OUTER_UID" != 0 ] && [ "$MODE" = rootless ] && "${PG[@]}" unshare rm -rf "$P/root" >/dev/null 2>&1
    # the rootless pause process (catatonit) that keeps podman's user namespace
    local f pid
    while read -r f; do
        pid=$(cat "$f" 2>/dev/null)
        [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = catatonit ] && kill "$pid" 2>/dev/null
    done < <(find "$P" -name pause.pid 2>/dev/null)
    : >"$P/cleaned"
    return 0
}

# ---- the OCI runtime under test (berth-oci) against crun: the same bundle,
# the same podman. Both run the same way: in the hidden-cgroup2 namespace
# when the host needs it for crun, with --root in the section's directory;
# rootless, crun (on either side) gets --cgroup-manager=disabled as above.
is_crun() { "$1" --version 2>/dev/null | head -n 1 | grep -q '^crun'; }
oci_cmds() { # sets OCI_RG (runtime under test) and OCI_CG (crun), global options included
    local rt=$WORK/bin/$OCI_NAME crt
    crt=$(command -v crun)
    OCI_RG=("$rt" --root "$MW/oci-state")
    OCI_CG=("$crt" --root "$MW/oci-crun-state")
    if [ "$MODE" = rootless ]; then
        OCI_CG=("$crt" --cgroup-manager=disabled --root "$MW/oci-crun-state")
        is_crun "$rt" && OCI_RG=("$rt" --cgroup-manager=disabled --root "$MW/oci-state")
    fi
}

section_oci() {
    cd "$MW" || return 1
    local k
    for k in oci_run oci_crun_run podman_oci podman_crun; do echo n/a >"$RES/$k"; done
    oci_cmds
    local rt=$WORK/bin/$OCI_NAME crt r total=$RUNS
    crt=$(command -v crun)
    RUNS=$(( (total + ROUNDS - 1) / ROUNDS ))
    if crun_bundle "$MW/oci-true" '["/bin/true"]'; then
        # a new id per run (the pid of the sh that execs the runtime); the
        # two go first in turns
        for r in $(seq "$ROUNDS"); do
            for k in $( ((r % 2)) && echo oci crun || echo crun oci); do
                if [ "$k" = oci ]; then
                    measure "oci_run.r$r" "" sh -c "exec $(quote_cmd "${OCI_RG[@]}") run --bundle $(quote_cmd "$MW/oci-true") bench-oci-\$\$"
                else
                    measure "oci_crun_run.r$r" "" sh -c "exec $(quote_cmd "${OCI_CG[@]}") run --bundle $(quote_cmd "$MW/oci-true") bench-crun-\$\$"
                fi
            done
        done
        pool_rounds oci_run
        pool_rounds oci_crun_run
    else
        bench_log "[$MODE] crun spec failed: no OCI run rows"
    fi
    podman_setup_env "$MW/podman-oci"
    if "${PG[@]}" load -q -i "$IMAGES_DIR/busybox-docker-save.tar" >"$RES/podman-oci-load.log" 2>&1; then
        for r in $(seq "$ROUNDS"); do
            for k in $( ((r % 2)) && echo oci crun || echo crun oci); do
                if [ "$k" = oci ]; then
                    measure "podman_oci.r$r" "" "${PG[@]}" --runtime "$rt" run --rm "${PRUN[@]}" "$IMG" /bin/true
                else
                    measure "podman_crun.r$r" "" "${PG[@]}" --runtime "$crt" run --rm "${PRUN[@]}" "$IMG" /bin/true
                fi
            done
        done
        pool_rounds podman_oci
        pool_rounds podman_crun
    else
        bench_log "[$MODE] podman load failed"; cat "$RES/podman-oci-load.log" >&2
    fi
    RUNS=$total
    foreign_cleanup_oci
    return 0
}

foreign_cleanup_oci() {
    [ -n "${OCI_NAME:-}" ] || return 0
    oci_cmds
    local c
    # containers a failed run left (runc's `list -q`: their ids)
    [ -d "$MW/oci-state" ] && for c in $("${OCI_RG[@]}" list -q 2>/dev/null); do "${OCI_RG[@]}" delete -f "$c" >/dev/null 2>&1; done
    [ -d "$MW/oci-crun-state" ] && for c in $("${OCI_CG[@]}" list -q 2>/dev/null); do "${OCI_CG[@]}" delete -f "$c" >/dev/null 2>&1; done
    rm -rf "$MW/oci-state" "$MW/oci-crun-state"
    foreign_cleanup_podman "$MW/podman-oci"
}

section_main() { # NAME MODE
    MODE=$2
    MW=$WORK/$MODE
    RES=$MW/res
    mkdir -p "$RES"
    case $1 in
        berth) section_berth ;;
        foreign) section_foreign ;;
        foreign-oci) section_oci ;;
        foreign-cleanup) foreign_cleanup_crun; foreign_cleanup_podman; foreign_cleanup_oci ;;
        berth-cleanup)
            export BERTH_ROOT=$MW/berth BERTH_RUNROOT=$MW/berth-run BERTH_CONFIG=$WORK/berth-config.json
            local c
            for c in bexec bcreate bidle; do "$WORK/bin/berth" rm -f "$c" >/dev/null 2>&1; done ;;
    esac
}

if [ "${1:-}" = __section ]; then
    shift
    section_main "$@"
    exit $?
fi

# ------------------------------------------------------------------ setup
MODES="root rootless"
case ${1:-} in
    "" | --both) ;;
    --root) MODES=root ;;
    --rootless) MODES=rootless ;;
    -h | --help) sed -n '2,/^set -uo pipefail/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) bench_die "unknown option '$1' (use --root, --rootless or --both)" ;;
esac
case $RUNS in '' | *[!0-9]* | 0) bench_die "BENCH_RUNS must be a positive integer (got '$RUNS')" ;; esac
case $WARMUP in '' | *[!0-9]*) bench_die "BENCH_WARMUP must be a non-negative integer (got '$WARMUP')" ;; esac

if ! bench_is_root; then
    bench_log "not root: measuring rootless only, as $(id -un)"
    MODES=rootless
    BUSER=$(id -un)
fi
id "$BUSER" >/dev/null 2>&1 || bench_die "rootless user '$BUSER' does not exist"
BUID=$(id -u "$BUSER")
BGID=$(id -g "$BUSER")
BHOME=$(getent passwd "$BUSER" | cut -d: -f6)

if bench_is_root; then
    command -v hyperfine >/dev/null 2>&1 || bench_need_pkgs hyperfine:hyperfine \
        || bench_log "no hyperfine: falling back to a date +%s%N loop"
fi
if [ "${BENCH_NO_FOREIGN:-0}" != 1 ]; then
    bench_need_pkgs crun:crun podman:podman python3:python3
else
    bench_need_pkgs python3:python3
fi
command -v hyperfine >/dev/null 2>&1 || bench_log "hyperfine missing: using a date +%s%N loop (medians)"

cd "$ROOT" || exit 1
if [ ! -x build/berth ]; then
    bench_log "building berth (make)"
    make -s build/berth >&2 || bench_die "make build/berth failed"
fi
if [ ! -f "$IMAGES_DIR/busybox/index.json" ] || [ ! -f "$IMAGES_DIR/busybox-docker-save.tar" ]; then
    bench_log "building the busybox image (tests/fixtures/mkimages.py --only busybox)"
    python3 tests/fixtures/mkimages.py --only busybox >&2 || bench_die "mkimages.py --only busybox failed"
fi

if [ -n "${BENCH_DIR:-}" ]; then
    WORK=$BENCH_DIR
    mkdir -p "$WORK" || bench_die "cannot create $WORK"
else
    WORK=$(mktemp -d /tmp/berth-start.XXXXXX) || bench_die "mktemp failed"
fi
chmod 755 "$WORK"
if [ "${BENCH_FS:-host}" = loop ]; then
    bench_is_root || bench_die "BENCH_FS=loop needs root (mount)"
    command -v mkfs.ext4 >/dev/null 2>&1 || bench_die "BENCH_FS=loop needs mkfs.ext4 (e2fsprogs)"
    { truncate -s "${BENCH_FS_SIZE:-4G}" "$WORK/fs.img" && mkfs.ext4 -q -F "$WORK/fs.img" && mkdir -p "$WORK/fs" \
        && mount -o loop "$WORK/fs.img" "$WORK/fs" && chmod 755 "$WORK/fs"; } \
        || bench_die "cannot create and mount an ext4 image in $WORK"
    # each mode's directory is on it (bench_cleanup unmounts whatever is below $WORK)
    for m in root rootless; do
        mkdir -p "$WORK/fs/$m" "$WORK/$m" && mount --bind "$WORK/fs/$m" "$WORK/$m" || bench_die "cannot bind $WORK/$m"
    done
elif [ "${BENCH_FS:-host}" != host ]; then
    bench_die "BENCH_FS must be host or loop (got '$BENCH_FS')"
fi
OUTER_UID=$(id -u)
export WORK RUNS ROUNDS WARMUP IMAGES_DIR IMG OUTER_UID

# the OCI runtime of the berth-oci rows: a snapshot in $WORK/bin (755, so the
# rootless user runs it too), named as the original (podman keys on the name)
OCI_SRC=${BENCH_OCI_RUNTIME:-${OCI_RUNTIME:-$ROOT/build/berth-oci}}
OCI_NAME=""
OCI_NOTE=""
if [ "${BENCH_NO_FOREIGN:-0}" = 1 ]; then
    OCI_NOTE="berth-oci rows skipped (BENCH_NO_FOREIGN=1)"
elif [ ! -f "$OCI_SRC" ]; then
    OCI_NOTE="berth-oci rows skipped: $OCI_SRC does not exist (make build/berth-oci, or BENCH_OCI_RUNTIME=PATH)"
else
    mkdir -p "$WORK/bin"
    if cp "$OCI_SRC" "$WORK/bin/$(basename "$OCI_SRC")" && chmod 755 "$WORK/bin/$(basename "$OCI_SRC")"; then
        OCI_NAME=$(basename "$OCI_SRC")
    else
        OCI_NOTE="berth-oci rows skipped: cannot copy $OCI_SRC"
    fi
fi
[ -n "$OCI_NOTE" ] && bench_log "$OCI_NOTE"
export OCI_NAME

# does crun need cgroup2 hidden (hybrid: tmpfs /sys/fs/cgroup + cgroup2 at unified)?
HYBRID=0
if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] \
    && [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
    HYBRID=1
fi

run_section() { # NAME MODE
    local pfx
    read -ra pfx <<<"$(user_pfx "$2")"
    case $1 in
        foreign*)
            if [ $HYBRID = 1 ] && bench_is_root; then
                # shellcheck disable=SC2016
                unshare -m --propagation private sh -c \
                    'mount -t tmpfs -o mode=755 none /sys/fs/cgroup/unified && mount --make-rshared / && exec "$@"' \
                    sh "${pfx[@]}" bash "$SELF" __section "$1" "$2"
            else
                "${pfx[@]}" bash "$SELF" __section "$1" "$2"
            fi ;;
        *) "${pfx[@]}" bash "$SELF" __section "$1" "$2" ;;
    esac
}

# podman (cgroupfs manager, root) leaves an empty libpod_parent/conmon in each
# v1 hierarchy: remove those this run created (rmdir only takes empty ones)
LIBPOD_CG_BEFORE=$(ls -d /sys/fs/cgroup/*/libpod_parent 2>/dev/null)

trap bench_cleanup EXIT
trap 'exit 130' INT TERM

bench_snapshot_berth
if [ "${BENCH_LADDER:-1}" != 0 ]; then
    { make -s build/seccomp.bpf && cp build/seccomp.bpf "$WORK/bin/seccomp.bpf" \
        && cc -O2 -Wall -Wno-format-truncation -o "$WORK/bin/ladder" bench/micro/ladder.c \
        && chmod 755 "$WORK/bin/ladder" && chmod 644 "$WORK/bin/seccomp.bpf"; } || bench_die "cannot build bench/micro/ladder.c"
fi

for mode in $MODES; do
    MW=$WORK/$mode
    mkdir -p "$MW/res"
    unpack_rootfs "$MW/rootfs" || bench_die "cannot unpack the busybox layer"
    [ "$mode" = rootless ] && bench_is_root && chown -R "$BUID:$BGID" "$MW"
    bench_log "=== $mode (${RUNS} runs, ${WARMUP} warm-up; $(command -v hyperfine >/dev/null && echo hyperfine || echo loop))"
    run_section berth "$mode"
    if [ "${BENCH_NO_FOREIGN:-0}" != 1 ]; then
        run_section foreign "$mode"
    fi
    [ -n "$OCI_NAME" ] && run_section foreign-oci "$mode"
done

# ------------------------------------------------------------------ report
val() { local f=$WORK/$1/res/$2; if [ -s "$f" ]; then cat "$f"; else echo n/a; fi; }

echo
echo "berth start-up benchmark: wall ms, median (min) over $RUNS runs ($(command -v hyperfine >/dev/null && hyperfine --version || echo 'date loop'); $(nproc) CPUs; $(uname -r); files on ${BENCH_FS:-host})"
printf '%-34s' "command"
for mode in $MODES; do printf '%20s' "$mode"; done
echo
for row in "floor:floor (unshare+chroot /bin/true)" "berth_run:berth run --rm" "berth_exec:berth exec" \
    "berth_create:berth create (detached)" "crun_run:crun run" "crun_exec:crun exec" \
    "podman_run:podman run --rm" "podman_exec:podman exec" "berth_start:berth start (stopped)" \
    "podman_start:podman start (stopped)" "berth_logs_tail:berth logs --tail 100, 100 MB"; do
    key=${row%%:*}
    printf '%-34s' "${row#*:}"
    for mode in $MODES; do
        printf '%20s' "$(val "$mode" "$key") ($(val "$mode" "$key.min"))"
    done
    echo
done
# the runtime under test, marked when it is crun itself (a check of the rows)
OCI_LABEL=$OCI_NAME
[ "$OCI_NAME" = crun ] && OCI_LABEL="crun*"
if [ -n "$OCI_NAME" ]; then
    for row in "oci_run:$OCI_LABEL run (bundle)" "oci_crun_run:crun run (same bundle)" \
        "podman_oci:podman --runtime $OCI_LABEL run" "podman_crun:podman --runtime crun run"; do
        key=${row%%:*}
        printf '%-34s' "${row#*:}"
        for mode in $MODES; do
            printf '%20s' "$(val "$mode" "$key") ($(val "$mode" "$key.min"))"
        done
        echo
    done
    [ "$OCI_NAME" = crun ] && echo "  (crun*: $OCI_SRC as the runtime under test, BENCH_OCI_RUNTIME)"
fi
for row in "floor_cpu:floor, CPU ms per run" "berth_run_cpu:berth run --rm, CPU ms per run"; do
    printf '%-34s' "${row#*:}"
    for mode in $MODES; do printf '%20s' "$(val "$mode" "${row%%:*}")"; done
    echo
done
printf '%-34s' "idle PSS monitor+init (KiB)"
for mode in $MODES; do printf '%20s' "$(val "$mode" pss)"; done
echo
for r in monitor init; do
    printf '%-34s' "  $r Pss/Rss/Anon/File (KiB)"
    for mode in $MODES; do
        v=$(val "$mode" "pss_$r")
        [ "$v" = n/a ] || v=$(echo "$v" | tr ' ' /)
        printf '%20s' "$v"
    done
    echo
done
echo

MISSED_ANY=0
ratio_line() { # MODE LABEL A B OP TARGET
    local r st=""
    r=$(bench_ratio "$3" "$4")
    if [ "$r" = n/a ]; then
        st=" MISSED (no data)"
    elif [ "$5" = le ]; then
        bench_le "$r" "$6" || st=" MISSED"
    else
        bench_le "$6" "$r" || st=" MISSED"
    fi
    [ -n "$st" ] && MISSED_ANY=1
    local op='<='; [ "$5" = ge ] && op='>='
    echo "[$1] ratio $2 = $r (target $op $6)$st"
    [ -n "${BENCH_RESULTS:-}" ] && printf '%s\tratio %s\t%s\n' "$1" "$2" "$r" >>"$BENCH_RESULTS"
}
for mode in $MODES; do
    g() { val "$mode" "$1"; }
    if [ -n "${BENCH_RESULTS:-}" ]; then
        for k in floor berth_run berth_exec berth_create crun_run crun_exec podman_run podman_exec berth_start podman_start \
            berth_logs_tail pss ${OCI_NAME:+oci_run oci_crun_run podman_oci podman_crun}; do
            printf '%s\t%s\t%s\n' "$mode" "$k" "$(g $k)" >>"$BENCH_RESULTS"
        done
    fi
    ratio_line "$mode" "run berth/floor" "$(g berth_run)" "$(g floor)" le 1.5
    echo "[$mode] ratio CPU per run berth/floor = $(bench_ratio "$(g berth_run_cpu)" "$(g floor_cpu)") (no target; see performance.md)"
    ratio_line "$mode" "run berth/crun" "$(g berth_run)" "$(g crun_run)" le 0.6
    ratio_line "$mode" "exec berth/crun" "$(g berth_exec)" "$(g crun_exec)" le 1.0
    ratio_line "$mode" "run podman/berth" "$(g podman_run)" "$(g berth_run)" ge 20
    ratio_line "$mode" "exec podman/berth" "$(g podman_exec)" "$(g berth_exec)" ge 20
    ratio_line "$mode" "start podman/berth" "$(g podman_start)" "$(g berth_start)" ge 10
    ratio_line "$mode" "start berth/run berth" "$(g berth_start)" "$(g berth_run)" le 1.2
    lt=$(g berth_logs_tail); st=""
    if [ "$lt" = n/a ] || ! bench_le "$lt" 50; then st=" MISSED"; MISSED_ANY=1; fi
    echo "[$mode] logs --tail 100 of a $(g berth_logs_bytes)-byte log = $lt ms (target <= 50)$st"
    if [ -n "$OCI_NAME" ]; then
        # issue #20's targets: berth-oci <= 0.8x crun on the same bundle,
        # podman over berth-oci <= 1.0x podman over crun
        ratio_line "$mode" "run $OCI_LABEL/crun (same bundle)" "$(g oci_run)" "$(g oci_crun_run)" le 0.8
        ratio_line "$mode" "podman run --runtime $OCI_LABEL/crun" "$(g podman_oci)" "$(g podman_crun)" le 1.0
    fi
    pss=$(g pss)
    st=""
    if [ "$pss" = n/a ] || ! bench_le "$pss" 200; then st=" MISSED"; MISSED_ANY=1; fi
    echo "[$mode] idle PSS berth = $pss KiB (target <= 200)$st"
done
if [ "${BENCH_LADDER:-1}" != 0 ]; then
    echo
    echo "ladder: the isolation of berth run, with bare system calls (bench/micro/ladder.c; medians, $RUNS x $ROUNDS starts each, in turns)"
    for mode in $MODES; do
        if [ -s "$WORK/$mode/res/ladder" ]; then sed "s/^/[$mode] /" "$WORK/$mode/res/ladder"; else echo "[$mode] ladder: n/a"; fi
    done
fi
[ -n "$OCI_NOTE" ] && echo "note: $OCI_NOTE"
[ $MISSED_ANY = 1 ] && bench_log "some targets MISSED (benchmark: exit 0 regardless)"
exit 0
