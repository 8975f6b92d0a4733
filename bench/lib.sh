# shellcheck shell=bash
# Shared helpers for berth's benchmark scripts (sourced, not run).
#
#   bench_log MSG...            progress line on stderr
#   bench_die MSG...            error on stderr, exit 1
#   bench_is_root               true when running as uid 0
#   bench_need_pkgs PKG:CMD...  make sure each CMD exists; as root, apt-get
#                               install the missing PKGs, else fail clearly
#   bench_drop_caches           sync + drop the page cache; sets BENCH_CACHE
#                               to "cold" or "warm" (when not permitted)
#   bench_time OUT ERRLOG CMD...
#                               run CMD, write "real user sys" seconds (of CMD
#                               and all its children) to OUT; CMD's stdout and
#                               stderr go to ERRLOG; returns CMD's status
#   bench_median FILE COLUMN    median of a numeric column (1-based)
#   bench_ratio A B             A/B with 2 decimals ("n/a" if B is 0/empty)
#   bench_le A B                true when A <= B (floats)

BENCH_CACHE=${BENCH_CACHE:-cold}

bench_log() { echo "bench: $*" >&2; }
bench_die() { echo "bench: error: $*" >&2; exit 1; }
bench_is_root() { [ "$(id -u)" = 0 ]; }

bench_need_pkgs() {
    local spec pkg cmd missing_pkgs=() missing_cmds=()
    for spec in "$@"; do
        pkg=${spec%%:*}
        cmd=${spec#*:}
        command -v "$cmd" >/dev/null 2>&1 && continue
        missing_pkgs+=("$pkg")
        missing_cmds+=("$cmd")
    done
    [ ${#missing_pkgs[@]} -eq 0 ] && return 0
    if ! bench_is_root; then
        bench_die "missing ${missing_cmds[*]}; as root run: apt-get update && apt-get install -y ${missing_pkgs[*]}"
    fi
    bench_log "installing ${missing_pkgs[*]} (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 \
        || bench_die "apt-get update failed; cannot install ${missing_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing_pkgs[@]}" >&2 \
        || bench_die "apt-get install ${missing_pkgs[*]} failed"
    for cmd in "${missing_cmds[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || bench_die "'$cmd' still missing after apt-get install"
    done
}

# Drop the page cache so every timed run starts cold: the registry has to read
# its blobs from disk and nothing of the previous run's output is cached.
# Falls back to warm runs (and says so once) when not permitted.
bench_drop_caches() {
    sync
    if [ "$BENCH_CACHE" = cold ]; then
        if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
            BENCH_CACHE=warm
            bench_log "cannot write /proc/sys/vm/drop_caches (not root or read-only /proc):" \
                "continuing with WARM page cache; results are labelled 'warm'"
        fi
    fi
}

bench_time() {
    local out=$1 errlog=$2 rc
    shift 2
    local TIMEFORMAT='%3R %3U %3S'
    { time "$@" >>"$errlog" 2>&1; } 2>"$out.tmp"
    rc=$?
    # keep only the last line: time's own
    tail -n 1 "$out.tmp" >"$out"
    rm -f "$out.tmp"
    return $rc
}

bench_median() {
    awk -v c="$2" '{print $c}' "$1" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "n/a"; exit }
            if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]
            else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
}

bench_ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

bench_le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "n/a" && a + 0 <= b + 0) }'; }

# ---- shared by start.sh and net.sh (they set RUNS, WARMUP, MODE, RES, BUID,
# BGID, BHOME, BUSER, LIBPOD_CG_BEFORE)

# measure NAME PREPARE CMD...   (run inside a section: $RES is the result dir)
# Writes the median wall time in ms to $RES/NAME ("n/a" when CMD failed).
measure() {
    local name=$1 prep=$2 rc
    shift 2
    bench_log "[$MODE] $name: $*"
    if command -v hyperfine >/dev/null 2>&1; then
        local popt=()
        [ -n "$prep" ] && popt=(--prepare "$prep")
        hyperfine -N --style basic --runs "$RUNS" --warmup "$WARMUP" "${popt[@]}" \
            --export-json "$RES/$name.json" --command-name "$name" -- "$(quote_cmd "$@")" \
            >"$RES/$name.log" 2>&1
        rc=$?
        if [ $rc = 0 ]; then
            python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]
print("%.2f" % (r["median"]*1000)); open(sys.argv[2], "w").write("%.2f\n" % (r["min"]*1000))' \
                "$RES/$name.json" "$RES/$name.min" >"$RES/$name"
        fi
    else
        loop_measure "$name" "$prep" "$@"
        rc=$?
    fi
    if [ $rc != 0 ] || [ ! -s "$RES/$name" ]; then
        echo n/a >"$RES/$name"
        bench_log "[$MODE] $name FAILED (see below)"
        tail -n 15 "$RES/$name.log" >&2
    fi
}

# shell-words quoting for hyperfine -N (which splits its command string)
quote_cmd() {
    local a out=()
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./=:,+@%-]+$ ]]; then out+=("$a"); else out+=("'${a//\'/\'\\\'\'}'"); fi
    done
    echo "${out[*]}"
}

# Fallback without hyperfine: warm-ups, then RUNS timed runs with date +%s%N.
loop_measure() {
    local name=$1 prep=$2 i t0 t1
    shift 2
    : >"$RES/$name.raw"
    : >"$RES/$name.log"
    for ((i = 0; i < WARMUP + RUNS; i++)); do
        [ -n "$prep" ] && sh -c "$prep" >>"$RES/$name.log" 2>&1
        t0=$(date +%s%N)
        "$@" >>"$RES/$name.log" 2>&1 || return 1
        t1=$(date +%s%N)
        [ "$i" -ge "$WARMUP" ] && echo $(((t1 - t0) / 1000)) >>"$RES/$name.raw"
    done
    sort -n "$RES/$name.raw" | awk 'NR == 1 {printf "%.2f\n", $1 / 1000}' >"$RES/$name.min"
    sort -n "$RES/$name.raw" | awk '{v[NR]=$1} END {
        if (NR % 2) m = v[(NR+1)/2]; else m = (v[NR/2] + v[NR/2+1]) / 2
        printf "%.2f\n", m / 1000 }' >"$RES/$name"
}


# command prefix that runs as the mode's user
user_pfx() {
    if [ "$1" = rootless ] && bench_is_root; then
        echo setpriv --reuid="$BUID" --regid="$BGID" --init-groups env HOME="$BHOME" USER="$BUSER" LOGNAME="$BUSER"
    fi
}

# shellcheck disable=SC2317  # run from the EXIT trap
remove_new_libpod_cgroups() {
    local d
    for d in /sys/fs/cgroup/*/libpod_parent; do
        [ -d "$d" ] || continue
        grep -qxF "$d" <<<"$LIBPOD_CG_BEFORE" && continue
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
}


# The EXIT trap of start.sh and net.sh (once): each mode's berth-cleanup
# and foreign-cleanup sections, the script's bench_extra_cleanup when it
# defines one, podman's new libpod cgroups, mounts under $WORK, then $WORK.
BENCH_CLEANED=0
bench_cleanup() {
    [ "$BENCH_CLEANED" = 1 ] && return
    BENCH_CLEANED=1
    local m mode
    for mode in $MODES; do
        [ -d "$WORK/$mode" ] || continue
        run_section berth-cleanup "$mode" 2>/dev/null
        [ "${BENCH_NO_FOREIGN:-0}" = 1 ] || run_section foreign-cleanup "$mode" 2>/dev/null
    done
    declare -F bench_extra_cleanup >/dev/null && bench_extra_cleanup
    bench_is_root && remove_new_libpod_cgroups
    while read -r m; do umount -l "$m" 2>/dev/null; done \
        < <(awk -v w="$WORK/" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r)
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        bench_log "scratch kept in $WORK"
    else
        rm -rf "$WORK" 2>/dev/null || bench_log "could not remove all of $WORK"
    fi
}

# a snapshot of the binary (the tree may be rebuilt while we measure) and
# an empty config, in $WORK
bench_snapshot_berth() {
    mkdir -p "$WORK/bin"
    { cp build/berth "$WORK/bin/berth" && chmod 755 "$WORK/bin/berth"; } || bench_die "cannot copy build/berth"
    echo '{}' >"$WORK/berth-config.json"
    chmod 644 "$WORK/berth-config.json"
}
