#!/usr/bin/env bash
# Network benchmark: berth's container networking vs host loopback vs podman.
#
#   bench/net.sh [--root | --rootless | --both]      (default --both)
#
# Run as root. For each mode (root, and rootless as the test user `berthtest`)
# it measures:
#   create time    median wall ms (hyperfine, BENCH_RUNS runs) of
#                  berth create -q --no-mount-cwd --name X localhost/busybox
#                  with the default network (bridge) and with --network none;
#                  the rm happens in hyperfine's untimed --prepare; and the
#                  default network without and with an egress policy
#                  (--egress allow:NAMES,CIDR:PORT: the helper, its nftables
#                  table and resolver) in turns, one of each per round, the
#                  order alternating, BENCH_RUNS rounds: what the policy adds
#                  is the median of the rounds' differences (the load of a
#                  shared machine drifts between two hyperfine series)
#   throughput     bulk TCP, Gbit/s, median of BENCH_NET_RUNS transfers of
#                  BENCH_NET_MB MiB each with bench/netpipe.c (built static;
#                  one fresh sink per transfer, the sender times it):
#     loopback       host netpipe sink + host netpipe send 127.0.0.1
#     berth -p       berth create -p HOSTPORT:5000, sink in the container
#                    (berth exec), host send 127.0.0.1 HOSTPORT
#     berth network  berth network create; containers x, y --network NET;
#                    sink in x, berth exec y /netpipe send x 5000
#     ... egress     the same from a container z on NET with an egress policy
#                    (its network's members stay allowed), in turns with y
#     berth out      out of a container to a sink on the host's loopback
#                    (host.berth.internal), without and with a policy that
#                    allows that port, in turns (BENCH_NET_RUNS each)
#     podman -p      podman run -d -p 127.0.0.1:HOSTPORT:5000 (root: the
#                    default bridge network, netavark; rootless: --network
#                    slirp4netns, default port handler), sink via podman exec,
#                    host send
#     podman network podman network create --disable-dns; x, y on it; sink in
#                    x, podman exec y /netpipe send X_IP 5000 (podman puts
#                    other containers' names in DNS, not /etc/hosts, and
#                    netpipe is static: so the address from podman inspect)
# then ratio lines with their targets, MISSED for each target missed, and a
# markdown table. Exits 0 whether targets are met or not (it is a benchmark);
# 1 only when it cannot run at all.
#
# Host notes handled here:
#  * podman (crun) refuses hybrid cgroup hosts; when /sys/fs/cgroup/unified is
#    a cgroup2 mount under a tmpfs /sys/fs/cgroup, podman runs inside a private
#    mount namespace in which a tmpfs hides it.
#  * root podman's bridge network (netavark) would change the host: iptables
#    chains, net.ipv4.ip_forward, /run/containers/networks, /run/netns. So as
#    root the podman part runs in a private network namespace (lo up; the
#    "host" sender of the podman -p case runs there too, over that
#    namespace's loopback) with a scratch directory bound over /run; all of it
#    goes away with the run. Network configs go to a scratch
#    network_config_dir.
#  * root may lack CAP_SYS_RESOURCE: podman gets --ulimit nofile/nproc.
#  * podman: --cgroup-manager cgroupfs --events-backend file, overlay storage
#    (a storage.conf), throwaway --root/--runroot/--tmpdir.
#  * netpipe sink binds 0.0.0.0:PORT (all addresses) for the host loopback
#    case; ports are picked free (not listening) at the time of use.
#
# Environment:
#   BENCH_RUNS      timed runs per create measurement (default 20)
#   BENCH_WARMUP    untimed warm-up runs per create measurement (default 2)
#   BENCH_NET_RUNS  transfers per throughput measurement (default 3)
#   BENCH_NET_MB    MiB per transfer (default 1000)
#   BENCH_USER      rootless user (default berthtest)
#   BENCH_DIR       scratch directory (default: mktemp -d /tmp/berth-net.XXXXXX)
#   BENCH_KEEP=1    keep the scratch directory
#   BENCH_RESULTS   also write "mode<TAB>name<TAB>value" lines to this file
#   BENCH_NO_FOREIGN=1  skip podman
set -uo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SELF")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

RUNS=${BENCH_RUNS:-20}
WARMUP=${BENCH_WARMUP:-2}
NRUNS=${BENCH_NET_RUNS:-3}
NMB=${BENCH_NET_MB:-1000}
BUSER=${BENCH_USER:-berthtest}
IMG=localhost/busybox
# a sandbox's policy: names (with their sets), a wildcard, a CIDR with a port
EGRESS_POLICY=allow:deb.debian.org:80/tcp,pypi.org:443/tcp,*.pythonhosted.org:443/tcp,10.1.2.0/24:5432
IMAGES_DIR=$ROOT/rootfs-cache/images
XFER_TIMEOUT=180

# --------------------------------------------------------------- measuring
# measure, quote_cmd, loop_measure: bench/lib.sh
# TCP ports listening in the caller's network namespace (decimal, one a line)
listening_ports() {
    awk 'FNR > 1 && $4 == "0A" { split($2, a, ":"); print strtonum("0x" a[2]) }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# free_port BASE: the first port >= BASE nobody listens on (here)
free_port() {
    local p=$1 used
    used=$(listening_ports)
    while grep -qx "$p" <<<"$used"; do p=$((p + 1)); done
    echo "$p"
}

# wait_listen PORT [CMD...]: until /proc/net/tcp (read through CMD, e.g. an
# exec into a container) shows a listener on PORT; 10 s at most
wait_listen() {
    local port=$1 hex i
    shift
    hex=$(printf ':%04X' "$port")
    for ((i = 0; i < 100; i++)); do
        "$@" cat /proc/net/tcp 2>/dev/null | awk -v h="$hex" '
            FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' \
            && return 0
        sleep 0.1
    done
    return 1
}

# Background processes of this section (timeout wrappers of sinks): ended at
# exit, by pid.
BG_PIDS=()
# shellcheck disable=SC2317  # run from a trap
kill_bg() {
    local p
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    BG_PIDS=()
}

# xfer NAME PORT  with the arrays SINK (sink command), SEND (sender command),
# LISTEN (prefix that reads /proc/net/tcp where the sink listens; empty =
# here). NRUNS transfers of NMB MiB; writes the median Gbit/s to $RES/NAME
# ("n/a" when none succeeded).
xfer() {
    local name=$1 port=$2 i out rc spid bytes want ok=0
    want=$((NMB * 1048576))
    # XFER_KEEP=1: add to the transfers of earlier calls (measurements in turns)
    [ "${XFER_KEEP:-0}" = 1 ] || { : >"$RES/$name.raw"; : >"$RES/$name.log"; }
    bench_log "[$MODE] $name: ${SINK[*]}  <-  ${SEND[*]}"
    for ((i = 1; i <= NRUNS; i++)); do
        timeout "$XFER_TIMEOUT" "${SINK[@]}" >"$RES/$name.sink$i" 2>>"$RES/$name.log" </dev/null &
        spid=$!
        BG_PIDS+=("$spid")
        if ! wait_listen "$port" "${LISTEN[@]}"; then
            echo "run $i: the sink never listened on port $port" >>"$RES/$name.log"
            kill "$spid" 2>/dev/null
            wait "$spid" 2>/dev/null
            continue
        fi
        out=$(timeout "$XFER_TIMEOUT" "${SEND[@]}" 2>>"$RES/$name.log" </dev/null)
        rc=$?
        wait "$spid" 2>/dev/null
        bytes=$(awk 'NR == 1 {print $1}' "$RES/$name.sink$i" 2>/dev/null)
        if [ $rc = 0 ] && [[ $out =~ ^[0-9]+(\.[0-9]+)?$ ]] && [ "${bytes:-0}" = "$want" ]; then
            echo "$out" >>"$RES/$name.raw"
            ok=$((ok + 1))
        else
            echo "run $i: send rc=$rc out='$out', sink got '${bytes:-nothing}' of $want bytes" >>"$RES/$name.log"
        fi
    done
    BG_PIDS=()
    ok=$(grep -c . "$RES/$name.raw")
    if [ $ok = 0 ]; then
        echo n/a >"$RES/$name"
        bench_log "[$MODE] $name FAILED (see below)"
        tail -n 15 "$RES/$name.log" >&2
    else
        bench_median "$RES/$name.raw" 1 | awk '{printf "%.2f\n", $1}' >"$RES/$name"
        tr '\n' ' ' <"$RES/$name.raw" | sed 's/ $//' >"$RES/$name.all"
        [ "$ok" -lt "$NRUNS" ] && bench_log "[$MODE] $name: only $ok of $NRUNS transfers succeeded (see $RES/$name.log)"
    fi
    return 0
}

na() { # NAME REASON...: record n/a and why
    local name=$1
    shift
    echo n/a >"$RES/$name"
    echo "$*" >"$RES/$name.why"
    bench_log "[$MODE] $name: n/a: $*"
}

# -------------------------------------------------------------- sections
# Each section runs as the mode's user (and podman in its own namespaces when
# needed); results go to $MW/res.

berth_env() {
    export BERTH_ROOT=$MW/berth BERTH_RUNROOT=$MW/berth-run BERTH_CONFIG=$WORK/berth-config.json
    unset XDG_RUNTIME_DIR XDG_DATA_HOME XDG_CONFIG_HOME
    B=$WORK/bin/berth
}

section_berth() {
    berth_env
    mkdir -p "$BERTH_ROOT" "$BERTH_RUNROOT"
    cd "$MW" || return 1
    "$B" load -q "$IMAGES_DIR/busybox" >"$RES/load.log" 2>&1 \
        || { bench_log "[$MODE] berth load failed"; cat "$RES/load.log" >&2; }

    # ---- create time
    measure create_bridge "sh -c '$B rm -f bnc-bridge >/dev/null 2>&1; exit 0'" \
        "$B" create -q --no-mount-cwd --name bnc-bridge "$IMG"
    "$B" rm -f bnc-bridge >/dev/null 2>&1
    measure create_none "sh -c '$B rm -f bnc-none >/dev/null 2>&1; exit 0'" \
        "$B" create -q --no-mount-cwd --network none --name bnc-none "$IMG"
    "$B" rm -f bnc-none >/dev/null 2>&1
    create_in_turns

    local NP=$WORK/netpipe port
    # ---- host loopback
    port=$(free_port 24000)
    SINK=("$NP" sink "$port") SEND=("$NP" send 127.0.0.1 "$port" "$NMB") LISTEN=()
    xfer loopback "$port"

    # ---- berth published port
    port=$(free_port 25000)
    if "$B" create -q --no-mount-cwd -p "$port:5000" --name bnp-pp "$IMG" >"$RES/pp.log" 2>&1 \
        && "$B" cp "$NP" bnp-pp:/netpipe >>"$RES/pp.log" 2>&1; then
        SINK=("$B" exec bnp-pp /netpipe sink 5000) SEND=("$NP" send 127.0.0.1 "$port" "$NMB")
        LISTEN=("$B" exec bnp-pp)
        xfer berth_pub 5000
    else
        na berth_pub "berth create -p / cp failed: $(tail -n 3 "$RES/pp.log" | tr '\n' ' ')"
    fi
    "$B" rm -f bnp-pp >/dev/null 2>&1

    # ---- berth named network, container to container
    if "$B" network create bnp-net >"$RES/bnet.log" 2>&1 \
        && "$B" create -q --no-mount-cwd --network bnp-net --name bnp-x "$IMG" >>"$RES/bnet.log" 2>&1 \
        && "$B" create -q --no-mount-cwd --network bnp-net --name bnp-y "$IMG" >>"$RES/bnet.log" 2>&1 \
        && "$B" cp "$NP" bnp-x:/netpipe >>"$RES/bnet.log" 2>&1 \
        && "$B" cp "$NP" bnp-y:/netpipe >>"$RES/bnet.log" 2>&1; then
        SINK=("$B" exec bnp-x /netpipe sink 5000) LISTEN=("$B" exec bnp-x)
        if "$B" create -q --no-mount-cwd --network bnp-net --egress deny --name bnp-z "$IMG" >>"$RES/bnet.log" 2>&1 \
            && "$B" cp "$NP" bnp-z:/netpipe >>"$RES/bnet.log" 2>&1; then
            in_turns berth_net "$B exec bnp-y /netpipe send bnp-x 5000 $NMB" \
                berth_net_egress "$B exec bnp-z /netpipe send bnp-x 5000 $NMB" 5000
        else
            SEND=("$B" exec bnp-y /netpipe send bnp-x 5000 "$NMB")
            xfer berth_net 5000
            na berth_net_egress "berth create --egress failed: $(tail -n 3 "$RES/bnet.log" | tr '\n' ' ')"
        fi
    else
        na berth_net "berth network/create/cp failed: $(tail -n 3 "$RES/bnet.log" | tr '\n' ' ')"
        na berth_net_egress "berth network/create/cp failed"
    fi

    # ---- out of a container to the host's loopback, without and with a policy
    port=$(free_port 28000)
    if "$B" create -q --no-mount-cwd --name bno-plain "$IMG" >"$RES/out.log" 2>&1 \
        && "$B" create -q --no-mount-cwd --egress "allow:host.berth.internal:$port/tcp" --name bno-eg "$IMG" >>"$RES/out.log" 2>&1 \
        && "$B" cp "$NP" bno-plain:/netpipe >>"$RES/out.log" 2>&1 && "$B" cp "$NP" bno-eg:/netpipe >>"$RES/out.log" 2>&1; then
        SINK=("$NP" sink "$port") LISTEN=()
        in_turns berth_out "$B exec bno-plain /netpipe send host.berth.internal $port $NMB" \
            berth_out_egress "$B exec bno-eg /netpipe send host.berth.internal $port $NMB" "$port"
    else
        na berth_out "berth create/cp failed: $(tail -n 3 "$RES/out.log" | tr '\n' ' ')"
        na berth_out_egress "berth create/cp failed"
    fi
    berth_cleanup
    return 0
}

# create_in_turns: RUNS rounds (after WARMUP) of a create on the default
# network without and with EGRESS_POLICY, the order alternating; writes
# create_plain and create_egress (medians, .min) and egress_added (the
# median of the rounds' differences, ms)
create_in_turns() {
    local i k first t0 t1 a b args
    bench_log "[$MODE] create in turns, without and with --egress $EGRESS_POLICY"
    : >"$RES/pair.raw"
    : >"$RES/pair.log"
    for ((i = 0; i < WARMUP + RUNS; i++)); do
        first=$((i % 2))
        for k in 0 1; do
            args=()
            [ $((first ^ k)) = 1 ] && args=(--egress "$EGRESS_POLICY")
            "$B" rm -f bnc-pair >/dev/null 2>&1
            t0=$EPOCHREALTIME
            "$B" create -q --no-mount-cwd "${args[@]}" --name bnc-pair "$IMG" >>"$RES/pair.log" 2>&1 || { na create_egress "create failed: $(tail -n 2 "$RES/pair.log" | tr '\n' ' ')"; return 0; }
            t1=$EPOCHREALTIME
            if [ ${#args[@]} = 0 ]; then a=$(awk -v x="$t0" -v y="$t1" 'BEGIN{printf "%.3f", (y-x)*1000}')
            else b=$(awk -v x="$t0" -v y="$t1" 'BEGIN{printf "%.3f", (y-x)*1000}'); fi
        done
        [ "$i" -ge "$WARMUP" ] && echo "$a $b" >>"$RES/pair.raw"
    done
    "$B" rm -f bnc-pair >/dev/null 2>&1
    python3 - "$RES" <<'PY'
import statistics, sys
res = sys.argv[1]
rows = [tuple(map(float, l.split())) for l in open(res + "/pair.raw") if l.strip()]
a = [r[0] for r in rows]; b = [r[1] for r in rows]
for name, v in (("create_plain", a), ("create_egress", b)):
    open(f"{res}/{name}", "w").write("%.2f\n" % statistics.median(v))
    open(f"{res}/{name}.min", "w").write("%.2f\n" % min(v))
open(f"{res}/egress_added", "w").write("%.2f\n" % statistics.median([y - x for x, y in rows]))
PY
}

# in_turns NAME_A "SEND_A" NAME_B "SEND_B" PORT (with SINK, LISTEN set): one
# transfer of each in turn, NRUNS times, so that both see the same machine
in_turns() {
    local a=$1 sa=$2 b=$3 sb=$4 port=$5 i nr=$NRUNS keep=0
    NRUNS=1
    for ((i = 1; i <= nr; i++)); do
        read -ra SEND <<<"$sa"
        XFER_KEEP=$keep xfer "$a" "$port"
        read -ra SEND <<<"$sb"
        XFER_KEEP=$keep xfer "$b" "$port"
        keep=1
    done
    NRUNS=$nr
}

berth_cleanup() {
    berth_env
    [ -d "$BERTH_ROOT" ] || return 0
    local c
    for c in bnc-bridge bnc-none bnc-pair bnp-pp bnp-x bnp-y bnp-z bno-plain bno-eg; do "$B" rm -f "$c" >/dev/null 2>&1; done
    "$B" network rm bnp-net >/dev/null 2>&1
    return 0
}

podman_setup_env() {
    local P=$MW/podman
    # podman's --tmpdir holds slirp4netns's API socket: its path must stay
    # under 108 bytes, so a short directory of its own (a link from $P/tmp)
    PT=/tmp/bnp-$MODE-$(id -u)
    mkdir -p "$P/home" "$PT" "$P/xdg" "$P/networks"
    [ -e "$P/tmp" ] || ln -s "$PT" "$P/tmp"
    chmod 700 "$P/xdg"
    printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$P/root" "$P/run" >"$P/storage.conf"
    printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n[network]\nnetwork_config_dir = "%s"\n' \
        "$P/networks" >"$P/containers.conf"
    export CONTAINERS_STORAGE_CONF=$P/storage.conf CONTAINERS_CONF=$P/containers.conf
    export HOME=$P/home XDG_RUNTIME_DIR=$P/xdg XDG_CONFIG_HOME=$P/home/.config XDG_DATA_HOME=$P/home/.local/share
    PG=(podman --root "$P/root" --runroot "$P/run" --tmpdir "$PT" --storage-driver overlay
        --cgroup-manager cgroupfs --events-backend file)
    PRUN=()
    [ "$MODE" = root ] && PRUN+=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
}

# podman_pub_xfer KEY NAME PORTBASE [NETWORK ARGS...]: bulk TCP through a
# port podman publishes on 127.0.0.1
podman_pub_xfer() {
    local key=$1 name=$2 port
    port=$(free_port "$3")
    shift 3
    if "${PG[@]}" run -d --name "$name" "${PRUN[@]}" "$@" -p "127.0.0.1:$port:5000" \
        -v "$WORK/netpipe:/netpipe:ro" "$IMG" sleep 100000 >"$RES/$name.log" 2>&1; then
        SINK=("${PG[@]}" exec "$name" /netpipe sink 5000) SEND=("$WORK/netpipe" send 127.0.0.1 "$port" "$NMB")
        LISTEN=("${PG[@]}" exec "$name")
        xfer "$key" 5000
    else
        na "$key" "podman run -p $* failed: $(tail -n 3 "$RES/$name.log" | tr '\n' ' ')"
    fi
    "${PG[@]}" rm -f -t 0 "$name" >/dev/null 2>&1
}

section_foreign() {
    cd "$MW" || return 1
    podman_setup_env
    local NP=$WORK/netpipe port net ip
    if ! "${PG[@]}" load -q -i "$IMAGES_DIR/busybox-docker-save.tar" >"$RES/podman-load.log" 2>&1; then
        bench_log "[$MODE] podman load failed"; cat "$RES/podman-load.log" >&2
        na podman_pub "podman load failed: $(tail -n 2 "$RES/podman-load.log" | tr '\n' ' ')"
        na podman_pub_slirp "podman load failed"
        na podman_net "podman load failed"
        foreign_cleanup_podman
        return 0
    fi

    # ---- podman published port; rootless also with slirp4netns's own port
    # handler (bulk traffic through slirp's user-space stack, as berth's
    # ports went before)
    local net=(); [ "$MODE" = rootless ] && net=(--network slirp4netns)
    podman_pub_xfer podman_pub bnp-pp 26000 "${net[@]}"
    if [ "$MODE" = rootless ]; then
        podman_pub_xfer podman_pub_slirp bnp-ps 27000 --network slirp4netns:port_handler=slirp4netns
    else
        na podman_pub_slirp "rootless only"
    fi

    # ---- podman network, container to container
    if "${PG[@]}" network create --disable-dns bnp-net >"$RES/podman-net.log" 2>&1 \
        && "${PG[@]}" run -d --name bnp-x "${PRUN[@]}" --network bnp-net -v "$NP:/netpipe:ro" \
            "$IMG" sleep 100000 >>"$RES/podman-net.log" 2>&1 \
        && "${PG[@]}" run -d --name bnp-y "${PRUN[@]}" --network bnp-net -v "$NP:/netpipe:ro" \
            "$IMG" sleep 100000 >>"$RES/podman-net.log" 2>&1 \
        && ip=$("${PG[@]}" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' bnp-x 2>>"$RES/podman-net.log") \
        && [ -n "$ip" ]; then
        SINK=("${PG[@]}" exec bnp-x /netpipe sink 5000) SEND=("${PG[@]}" exec bnp-y /netpipe send "$ip" 5000 "$NMB")
        LISTEN=("${PG[@]}" exec bnp-x)
        xfer podman_net 5000
    else
        na podman_net "podman network create/run failed: $(tail -n 3 "$RES/podman-net.log" | tr '\n' ' ')"
    fi
    foreign_cleanup_podman
    return 0
}

foreign_cleanup_podman() {
    [ -d "$MW/podman" ] && [ ! -e "$MW/podman/cleaned" ] || return 0
    podman_setup_env
    "${PG[@]}" rm -af -t 0 >/dev/null 2>&1
    "${PG[@]}" network rm -f bnp-net >/dev/null 2>&1
    "${PG[@]}" rmi -af >/dev/null 2>&1
    # storage owned by subordinate ids: when nobody outside can remove it
    # (not run as root), only from inside podman's user namespace
    [ "$OUTER_UID" != 0 ] && [ "$MODE" = rootless ] && "${PG[@]}" unshare rm -rf "$MW/podman/root" >/dev/null 2>&1
    # the rootless pause process (catatonit) that keeps podman's user namespace
    local f pid
    while read -r f; do
        pid=$(cat "$f" 2>/dev/null)
        [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = catatonit ] && kill "$pid" 2>/dev/null
    done < <(find "$MW/podman" -name pause.pid 2>/dev/null)
    rm -rf "$PT" 2>/dev/null
    : >"$MW/podman/cleaned"
    return 0
}

section_main() { # NAME MODE
    MODE=$2
    MW=$WORK/$MODE
    RES=$MW/res
    mkdir -p "$RES"
    case $1 in
        berth) section_berth ;;
        foreign) section_foreign ;;
        foreign-cleanup) foreign_cleanup_podman ;;
        berth-cleanup) berth_cleanup ;;
    esac
}

if [ "${1:-}" = __section ]; then
    shift
    trap kill_bg EXIT
    trap 'exit 130' INT TERM
    section_main "$@"
    exit $?
fi

# ------------------------------------------------------------------ setup
MODES="root rootless"
case ${1:-} in
    "" | --both) ;;
    --root) MODES=root ;;
    --rootless) MODES=rootless ;;
    -h | --help) sed -n '2,57p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) bench_die "unknown option '$1' (use --root, --rootless or --both)" ;;
esac
for v in RUNS:"$RUNS" NRUNS:"$NRUNS" NMB:"$NMB"; do
    case ${v#*:} in '' | *[!0-9]* | 0) bench_die "${v%%:*} (BENCH_RUNS/BENCH_NET_RUNS/BENCH_NET_MB) must be a positive integer (got '${v#*:}')" ;; esac
done
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
bench_need_pkgs python3:python3 gcc:gcc
if [ "${BENCH_NO_FOREIGN:-0}" != 1 ]; then
    bench_need_pkgs podman:podman
    bench_is_root && bench_need_pkgs iproute2:ip
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
    WORK=$(mktemp -d /tmp/berth-net.XXXXXX) || bench_die "mktemp failed"
fi
chmod 755 "$WORK"
OUTER_UID=$(id -u)
export WORK RUNS WARMUP NRUNS NMB IMAGES_DIR IMG OUTER_UID EGRESS_POLICY

# does podman need cgroup2 hidden (hybrid: tmpfs /sys/fs/cgroup + cgroup2 at unified)?
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
            if bench_is_root; then
                # root podman: private network namespace (lo up) and /run;
                # both: cgroup2 hidden on hybrid hosts
                local nsopt=() hyb=$HYBRID priv=0
                [ "$2" = root ] && { nsopt=(-n); priv=1; mkdir -p "$WORK/root/run"; }
                # shellcheck disable=SC2016
                unshare -m "${nsopt[@]}" --propagation private sh -c '
                    set -e
                    if [ "$1" = 1 ]; then mount -t tmpfs -o mode=755 none /sys/fs/cgroup/unified; fi
                    if [ "$2" = 1 ]; then ip link set lo up; mount --bind "$3" /run; fi
                    mount --make-rshared /
                    shift 3
                    exec "$@"' \
                    sh "$hyb" "$priv" "$WORK/root/run" "${pfx[@]}" bash "$SELF" __section "$1" "$2"
            else
                "${pfx[@]}" bash "$SELF" __section "$1" "$2"
            fi ;;
        *) "${pfx[@]}" bash "$SELF" __section "$1" "$2" ;;
    esac
}

# podman (cgroupfs manager, root) leaves an empty libpod_parent/conmon in each
# v1 hierarchy: remove those this run created (rmdir only takes empty ones)
LIBPOD_CG_BEFORE=$(ls -d /sys/fs/cgroup/*/libpod_parent 2>/dev/null)

# netpipe processes of this run (host ones: exe under $WORK; in containers:
# root under $WORK), by pid
# shellcheck disable=SC2317  # run from the EXIT trap
kill_stray_netpipes() {
    local p exe rt pids=()
    for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = netpipe ] || continue
        exe=$(readlink "$p/exe" 2>/dev/null)
        rt=$(readlink "$p/root" 2>/dev/null)
        case "$exe|$rt" in "$WORK"/* | *"|$WORK"/*) pids+=("${p#/proc/}") ;; esac
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    bench_log "ending leftover netpipe processes: ${pids[*]}"
    kill -9 "${pids[@]}" 2>/dev/null
}

# shellcheck disable=SC2317  # called by bench_cleanup
bench_extra_cleanup() { kill_stray_netpipes; }
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

bench_snapshot_berth
gcc -static -O2 -o "$WORK/netpipe" bench/netpipe.c || bench_die "cannot build bench/netpipe.c (static)"
chmod 755 "$WORK/netpipe"

for mode in $MODES; do
    MW=$WORK/$mode
    mkdir -p "$MW/res"
    [ "$mode" = rootless ] && bench_is_root && chown -R "$BUID:$BGID" "$MW"
    bench_log "=== $mode (create: ${RUNS} runs, ${WARMUP} warm-up; throughput: ${NRUNS} x ${NMB} MiB)"
    run_section berth "$mode"
    if [ "${BENCH_NO_FOREIGN:-0}" != 1 ]; then
        run_section foreign "$mode"
    else
        for k in podman_pub podman_pub_slirp podman_net; do echo n/a >"$MW/res/$k"; echo "BENCH_NO_FOREIGN=1" >"$MW/res/$k.why"; done
    fi
done

# ------------------------------------------------------------------ report
val() { local f=$WORK/$1/res/$2; if [ -s "$f" ]; then cat "$f"; else echo n/a; fi; }

echo
echo "berth network benchmark ($(command -v hyperfine >/dev/null && hyperfine --version || echo 'date loop'); $(nproc) CPUs; $(uname -r))"
echo "create: wall ms, median (min) over $RUNS runs; throughput: Gbit/s, median of $NRUNS x $NMB MiB (all runs)"
echo "podman -p: root = default bridge (in a private netns), rootless = --network slirp4netns (default port handler: rootlessport);"
echo "  the slirp4netns-port-handler row: rootless --network slirp4netns:port_handler=slirp4netns"
printf '%-42s' "measurement"
for mode in $MODES; do printf '%30s' "$mode"; done
echo
ROWS=("create_bridge:berth create, default network (ms)" "create_none:berth create, --network none (ms)"
    "create_plain:berth create, default network, in turns with the next (ms)"
    "create_egress:berth create, default network + egress policy, in turns (ms)"
    "loopback:host loopback (Gbit/s)" "berth_pub:berth published port (Gbit/s)"
    "berth_net:berth named network, c2c (Gbit/s)" "berth_net_egress:berth named network, c2c, sender with a policy (Gbit/s)"
    "berth_out:berth container -> host loopback (Gbit/s)" "berth_out_egress:... with a policy allowing it (Gbit/s)"
    "podman_pub:podman published port (Gbit/s)"
    "podman_pub_slirp:podman published port, slirp4netns port handler (Gbit/s)"
    "podman_net:podman network, c2c (Gbit/s)")
for row in "${ROWS[@]}"; do
    key=${row%%:*}
    printf '%-42s' "${row#*:}"
    for mode in $MODES; do
        v=$(val "$mode" "$key")
        if [ "$v" != n/a ]; then
            case $key in create_*) v="$v ($(val "$mode" "$key.min"))" ;; *) v="$v ($(val "$mode" "$key.all"))" ;; esac
        fi
        printf '%30s' "$v"
    done
    echo
done
echo

MISSED_ANY=0
RATIO_ROWS=()
ratio_line() { # MODE LABEL A B OP TARGET (TARGET "-": informational)
    local r st="" tgt=""
    r=$(bench_ratio "$3" "$4")
    if [ "$6" != - ]; then
        if [ "$r" = n/a ]; then
            st=" MISSED (no data)"
        elif [ "$5" = le ]; then
            bench_le "$r" "$6" || st=" MISSED"
        else
            bench_le "$6" "$r" || st=" MISSED"
        fi
        local op='<='; [ "$5" = ge ] && op='>='
        tgt=" (target $op $6)"
    fi
    [ -n "$st" ] && MISSED_ANY=1
    echo "[$1] ratio $2 = $r$tgt$st"
    RATIO_ROWS+=("$1|$2|$r${st:+ **MISSED**}")
    [ -n "${BENCH_RESULTS:-}" ] && printf '%s\tratio %s\t%s\n' "$1" "$2" "$r" >>"$BENCH_RESULTS"
}
for mode in $MODES; do
    g() { val "$mode" "$1"; }
    if [ -n "${BENCH_RESULTS:-}" ]; then
        for row in "${ROWS[@]}"; do
            k=${row%%:*}
            printf '%s\t%s\t%s\n' "$mode" "$k" "$(g "$k")" >>"$BENCH_RESULTS"
        done
    fi
    ratio_line "$mode" "create default/none" "$(g create_bridge)" "$(g create_none)" le 2.0
    added=$(g egress_added)
    st=""; bench_le "$added" 2.0 || { st=" MISSED"; MISSED_ANY=1; }
    echo "[$mode] an egress policy adds $added ms to create (median of the rounds' differences; target <= 2.0)$st"
    RATIO_ROWS+=("$mode|egress policy: ms added to create|$added${st:+ **MISSED**}")
    [ -n "${BENCH_RESULTS:-}" ] && printf '%s\tegress ms added to create\t%s\n' "$mode" "$added" >>"$BENCH_RESULTS"
    ratio_line "$mode" "egress/no policy, container -> host" "$(g berth_out_egress)" "$(g berth_out)" ge 0.95
    ratio_line "$mode" "egress/no policy, named network c2c" "$(g berth_net_egress)" "$(g berth_net)" ge 0.95
    ratio_line "$mode" "berth published port/loopback" "$(g berth_pub)" "$(g loopback)" ge 0.5
    if [ "$mode" = rootless ]; then
        ratio_line "$mode" "berth/podman published port" "$(g berth_pub)" "$(g podman_pub)" ge 2.0
        ratio_line "$mode" "berth/podman published port (slirp4netns handler)" "$(g berth_pub)" "$(g podman_pub_slirp)" ge 2.0
    else
        ratio_line "$mode" "berth/podman published port" "$(g berth_pub)" "$(g podman_pub)" ge -
    fi
    ratio_line "$mode" "berth named network/loopback" "$(g berth_net)" "$(g loopback)" ge -
    ratio_line "$mode" "berth/podman network c2c" "$(g berth_net)" "$(g podman_net)" ge -
done
for mode in $MODES; do
    for k in create_bridge create_none create_plain create_egress loopback berth_pub berth_net berth_net_egress berth_out berth_out_egress \
        podman_pub podman_pub_slirp podman_net; do
        [ -s "$WORK/$mode/res/$k.why" ] && echo "[$mode] $k n/a: $(cat "$WORK/$mode/res/$k.why")"
    done
done

# markdown table
echo
printf '| measurement |'
for mode in $MODES; do printf ' %s |' "$mode"; done
echo
printf '|---|'
for mode in $MODES; do printf -- '---:|'; done
echo
for row in "${ROWS[@]}"; do
    key=${row%%:*}
    printf '| %s |' "${row#*:}"
    for mode in $MODES; do printf ' %s |' "$(val "$mode" "$key")"; done
    echo
done
tgt_of() {
    case $1 in
        "create default/none") echo " (target <= 2.0)" ;;
        "berth published port/loopback") echo " (target >= 0.5)" ;;
        "berth/podman published port"*) echo " (target >= 2.0 rootless)" ;;
        "egress/no policy"*) echo " (target >= 0.95)" ;;
        "egress policy: ms added to create") echo " (target <= 2.0)" ;;
    esac
}
for label in "create default/none" "egress policy: ms added to create" "egress/no policy, container -> host" \
    "egress/no policy, named network c2c" "berth published port/loopback" "berth/podman published port" \
    "berth/podman published port (slirp4netns handler)" \
    "berth named network/loopback" "berth/podman network c2c"; do
    printf '| ratio %s%s |' "$label" "$(tgt_of "$label")"
    for mode in $MODES; do
        v=n/a
        for rr in "${RATIO_ROWS[@]}"; do
            IFS='|' read -r m l r <<<"$rr"
            [ "$m" = "$mode" ] && [ "$l" = "$label" ] && v=$r
        done
        printf ' %s |' "$v"
    done
    echo
done
[ $MISSED_ANY = 1 ] && bench_log "some targets MISSED (benchmark: exit 0 regardless)"
exit 0
