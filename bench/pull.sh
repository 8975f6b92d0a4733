#!/usr/bin/env bash
# Pull benchmark: berth vs skopeo+umoci vs podman, from the loopback registry.
#
#   bench/pull.sh
#
# For each image (big, debian) and each iteration, runs every tool once
# (interleaved, so drift hits all tools alike), each from an empty store and a
# dropped page cache:
#   berth         build/berth pull -q 127.0.0.1:5000/bench/IMG:latest   (fresh BERTH_ROOT)
#   skopeo+umoci  skopeo copy docker://... oci:DIR:latest  +  umoci unpack --image DIR:latest BUNDLE
#   podman        podman --root R --runroot RR --storage-driver overlay ... pull (fresh R/RR)
# Each result is checked (a known file of every layer, with its size, and the
# number of regular files) so a failed or partial pull is never timed.
# Prints medians and ratio lines; exits 0 when targets are missed (MISSED is
# printed), 1 when setup fails or a tool fails / produces no rootfs.
#
# Environment:
#   BENCH_ITERS      iterations per tool per image (default 3)
#   BENCH_IMAGES     images to pull (default "big debian")
#   BENCH_DIR        scratch directory (default: mktemp -d under /var/tmp);
#                    removed at the end unless BENCH_KEEP=1
#   BENCH_REGISTRY   registry host:port (default 127.0.0.1:5000)
#   BERTH_CONFIG     berth config for the berth runs (default: an empty {} so
#                    /etc/berth and ~/.config do not leak into the numbers)
#   BENCH_FS         where the tools write: "host" (default: BENCH_DIR's own
#                    filesystem) or "loop" (root only: a fresh journaled ext4
#                    image, loop-mounted, so results do not depend on what the
#                    host filesystem deleted in the last minutes; see
#                    docs/performance.md)
#   BENCH_RESULTS    also write the raw per-run numbers (TSV) to this file
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
cd "$ROOT" || exit 1

ITERS=${BENCH_ITERS:-3}
FSMODE=${BENCH_FS:-host}
IMAGES=${BENCH_IMAGES:-big debian}
REG=${BENCH_REGISTRY:-127.0.0.1:5000}
TOOLS="berth skopeo+umoci podman"
TARGET_SKOPEO=0.5
TARGET_PODMAN=0.7
case $ITERS in '' | *[!0-9]* | 0) bench_die "BENCH_ITERS must be a positive integer (got '$ITERS')" ;; esac
case $FSMODE in host | loop) ;; *) bench_die "BENCH_FS must be host or loop (got '$FSMODE')" ;; esac

# ------------------------------------------------------------------ setup
bench_need_pkgs skopeo:skopeo umoci:umoci podman:podman python3:python3 curl:curl

ROOTLESS=0
bench_is_root || ROOTLESS=1
UMOCI_FLAGS=()
[ $ROOTLESS = 1 ] && UMOCI_FLAGS=(--rootless)

if [ -n "${BENCH_DIR:-}" ]; then
    WORK=$BENCH_DIR
    mkdir -p "$WORK" || bench_die "cannot create $WORK"
else
    WORK=$(mktemp -d /var/tmp/berth-bench.XXXXXX) || bench_die "mktemp failed"
fi
REG_STARTED=0
FAILED=0
# shellcheck disable=SC2317  # run from the EXIT trap
cleanup() {
    # podman's overlay driver may leave mounts below its root
    local m
    if [ -d "$WORK" ]; then
        while read -r m; do umount -l "$m" 2>/dev/null; done < <(awk -v w="$WORK/" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r)
    fi
    if [ "${BENCH_KEEP:-0}" != 1 ] && [ "$FAILED" = 0 ]; then
        rm -rf "$WORK"
    else
        bench_log "scratch (logs) kept in $WORK"
    fi
    if [ "$REG_STARTED" = 1 ] && [ "${BENCH_KEEP_REGISTRY:-0}" != 1 ]; then
        scripts/registry.sh stop >/dev/null 2>&1
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RUNBASE=$WORK
if [ "$FSMODE" = loop ]; then
    bench_is_root || bench_die "BENCH_FS=loop needs root (mount)"
    command -v mkfs.ext4 >/dev/null 2>&1 || bench_die "BENCH_FS=loop needs mkfs.ext4 (e2fsprogs)"
    if ! { truncate -s "${BENCH_FS_SIZE:-6G}" "$WORK/fs.img" && mkfs.ext4 -q -F "$WORK/fs.img" \
        && mkdir -p "$WORK/mnt" && mount -o loop "$WORK/fs.img" "$WORK/mnt"; }; then
        bench_die "cannot create and mount an ext4 image in $WORK"
    fi
    RUNBASE=$WORK/mnt
fi

bench_log "building berth (make build/berth)"
make -s build/berth >&2 || bench_die "make build/berth failed"
BERTH=$ROOT/build/berth

if [ -z "${BERTH_CONFIG:-}" ]; then
    echo '{}' >"$WORK/berth-config.json"
    export BERTH_CONFIG=$WORK/berth-config.json
fi

missing=()
for img in $IMAGES; do
    [ -f "rootfs-cache/images/$img/index.json" ] || missing+=("$img")
done
if [ ${#missing[@]} -gt 0 ]; then
    only=$(IFS=,; echo "${missing[*]}")
    bench_log "building images: $only (tests/fixtures/mkimages.py --big --only $only)"
    python3 tests/fixtures/mkimages.py --big --only "$only" >&2 || bench_die "mkimages.py failed for $only"
fi

if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$REG/v2/")" != 200 ]; then
    [ "$REG" = 127.0.0.1:5000 ] || bench_die "registry $REG is not answering (only 127.0.0.1:5000 is started by this script)"
    bench_log "starting the registry fixtures (scripts/registry.sh start)"
    scripts/registry.sh start >&2 || bench_die "scripts/registry.sh start failed"
    REG_STARTED=1
fi

layout_digest() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
        "rootfs-cache/images/$1/index.json"
}
for img in $IMAGES; do
    want=$(layout_digest "$img") || bench_die "cannot read rootfs-cache/images/$img/index.json"
    have=$(curl -s -I --max-time 10 \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
        "http://$REG/v2/bench/$img/manifests/latest" | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" {print $2}')
    if [ "$have" != "$want" ]; then
        bench_log "pushing rootfs-cache/images/$img -> $REG/bench/$img:latest"
        python3 tests/fixtures/push.py -q "rootfs-cache/images/$img" "$REG" "bench/$img:latest" >&2 \
            || bench_die "push.py failed for $img"
    fi
done

# What every unpacked result must contain, from the layout itself: per layer
# the last regular file with data (path + size; being last, it proves the
# whole layer stream was unpacked), and the number of regular files (hardlinks
# included) in the merged tree.
expect_of() {
    local img=$1 f
    f=$WORK/expect-$img.tsv
    [ -s "$f" ] && { echo "$f"; return 0; }
    python3 - "rootfs-cache/images/$img" >"$f" <<'EOF' || return 1
import json, os, sys, tarfile
lay = sys.argv[1]
def blob(d):
    return os.path.join(lay, "blobs", *d.split(":", 1))
desc = json.load(open(os.path.join(lay, "index.json")))["manifests"][0]
doc = json.load(open(blob(desc["digest"])))
if "manifests" in doc:  # an index: take the first manifest
    doc = json.load(open(blob(doc["manifests"][0]["digest"])))
files = set()
for layer in doc["layers"]:
    last = None
    with tarfile.open(blob(layer["digest"]), "r|*") as t:
        for e in t:
            name = os.path.normpath("/" + e.name).lstrip("/")
            base = os.path.basename(name)
            if not name or base.startswith(".wh."):
                if base.startswith(".wh.") and not base.startswith(".wh..wh."):
                    files.discard(os.path.join(os.path.dirname(name), base[4:]))
                continue
            if e.isreg() or e.islnk():
                files.add(name)
            else:
                files.discard(name)
            if e.isreg() and e.size > 0 and "\t" not in name and "\n" not in name:
                last = (name, e.size)
    if last:
        print("marker\t%d\t%s" % (last[1], last[0]))
print("files\t%d\t-" % len(files))
print("layers\t%d\t-" % len(doc["layers"]))
EOF
    echo "$f"
}

# verify EXPECT_FILE DIR... : each marker exists (as a regular file of the
# right size) in one of the DIRs, and the DIRs hold at least as many regular
# files as the image. Prints the reason on failure.
verify_rootfs() {
    local exp=$1 kind n path d ok count want
    shift
    [ $# -gt 0 ] || { echo "no unpacked layer directory found"; return 1; }
    while IFS=$'\t' read -r kind n path; do
        case $kind in
            marker)
                ok=0
                for d in "$@"; do
                    if [ -f "$d/$path" ] && [ ! -L "$d/$path" ] && [ "$(stat -c %s "$d/$path")" = "$n" ]; then ok=1; break; fi
                done
                [ $ok = 1 ] || { echo "missing or wrong size: /$path ($n bytes)"; return 1; } ;;
            files)
                want=$n
                count=$(find "$@" -type f 2>/dev/null | wc -l)
                [ "$count" -ge "$want" ] || { echo "only $count regular files, the image has $want"; return 1; } ;;
        esac
    done <"$exp"
    return 0
}

# ------------------------------------------------------------------ one run
# run_tool TOOL IMG ITER: prepare, drop caches, time, verify, clean up.
# Appends "img tool iter real user sys sync" to $RAW, or reports a failure.
RAW=$WORK/raw.tsv
: >"$RAW"
run_tool() {
    local tool=$1 img=$2 iter=$3 ref="$REG/bench/$2:latest" d=$RUNBASE/run log rc=0 why r1 u1 s1 r2 u2 s2
    local -a roots=()
    rm -rf "$d"
    mkdir -p "$d"
    log=$WORK/$tool-$img-$iter.log
    : >"$log"
    bench_drop_caches
    case $tool in
        berth)
            bench_time "$d/t1" "$log" env BERTH_ROOT="$d/berth" BERTH_RUNROOT="$d/berth-run" "$BERTH" pull -q "$ref" || rc=$?
            echo "0 0 0" >"$d/t2" ;;
        skopeo+umoci)
            bench_time "$d/t1" "$log" skopeo copy --src-tls-verify=false "docker://$ref" "oci:$d/oci:latest" || rc=$?
            if [ $rc = 0 ]; then
                bench_time "$d/t2" "$log" umoci unpack "${UMOCI_FLAGS[@]}" --image "$d/oci:latest" "$d/bundle" || rc=$?
            fi ;;
        podman)
            bench_time "$d/t1" "$log" podman --root "$d/proot" --runroot "$d/prun" --storage-driver overlay \
                --cgroup-manager cgroupfs --events-backend file pull --tls-verify=false "$ref" || rc=$?
            echo "0 0 0" >"$d/t2" ;;
    esac
    # time to make the result durable (berth already syncfs()es each layer)
    local TIMEFORMAT='%3R' ts
    ts=$({ time sync; } 2>&1)
    if [ $rc = 0 ]; then
        case $tool in
            berth) roots=("$d"/berth/storage/layers/*/diff) ;;
            skopeo+umoci) roots=("$d/bundle/rootfs") ;;
            podman) roots=("$d"/proot/overlay/*/diff) ;;
        esac
        [ -e "${roots[0]}" ] || roots=()
        if ! why=$(verify_rootfs "$EXPECT" "${roots[@]}"); then
            rc=99
            echo "verification failed: $why" >>"$log"
        fi
    fi
    if [ $rc != 0 ]; then
        FAILED=1
        printf '  %-6s %-13s #%d  FAILED (exit %s); log %s:\n' "$img" "$tool" "$iter" "$rc" "$log"
        tail -n 5 "$log" | sed 's/^/      /'
    else
        read -r r1 u1 s1 <"$d/t1"
        read -r r2 u2 s2 <"$d/t2"
        awk -v i="$img" -v t="$tool" -v n="$iter" -v r1="$r1" -v u1="$u1" -v s1="$s1" -v r2="$r2" -v u2="$u2" -v s2="$s2" -v ts="$ts" \
            'BEGIN { printf "%s\t%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\n", i, t, n, r1 + r2, u1 + u2, s1 + s2, ts, r1 }' >>"$RAW"
        tail -n 1 "$RAW" | awk -F'\t' '{ printf "  %-6s %-13s #%d  %6.2fs wall  %6.2fs user  %6.2fs sys  (+sync %.2fs)\n", $1, $2, $3, $4, $5, $6, $7 }'
    fi
    if [ "$tool" = podman ] && [ -d "$d/proot" ]; then
        podman --root "$d/proot" --runroot "$d/prun" --storage-driver overlay --cgroup-manager cgroupfs \
            --events-backend file rmi -af >/dev/null 2>&1
        local m
        while read -r m; do umount -l "$m" 2>/dev/null; done < <(awk -v w="$d/" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r)
    fi
    rm -rf "$d"
}

# ------------------------------------------------------------------ main
echo "== berth pull benchmark"
echo "host: $(nproc) CPUs, kernel $(uname -r), $(id -un)$([ $ROOTLESS = 1 ] && echo ' (rootless)')"
echo "tools: $("$BERTH" --version 2>/dev/null | head -1 || echo berth), $(skopeo --version), umoci $(umoci --version | awk '{print $3}'), $(podman --version)"
echo "registry: http://$REG  iterations: $ITERS  scratch: $WORK"
echo "output filesystem: $(findmnt -n -o FSTYPE,SOURCE -T "$RUNBASE" | tr -s ' ') ($FSMODE)"
bench_drop_caches
if [ "$BENCH_CACHE" = cold ]; then
    echo "page cache: cold (sync + drop_caches before every timed run)"
else
    echo "page cache: WARM (drop_caches not permitted; all results are warm)"
fi

for img in $IMAGES; do
    EXPECT=$(expect_of "$img") || bench_die "cannot read the layers of rootfs-cache/images/$img"
    echo "-- $img: $(awk -F'\t' '$1=="layers"{l=$2} $1=="files"{f=$2} END{print l " layers, " f " regular files"}' "$EXPECT"), $(du -sh "rootfs-cache/images/$img/blobs" | cut -f1) of blobs"
    for iter in $(seq 1 "$ITERS"); do
        for tool in $TOOLS; do
            run_tool "$tool" "$img" "$iter"
        done
    done
done

[ -n "${BENCH_RESULTS:-}" ] && cp "$RAW" "$BENCH_RESULTS"

med() { awk -F'\t' -v i="$1" -v t="$2" -v c="$3" '$1 == i && $2 == t {print $c}' "$RAW" | bench_median /dev/stdin 1; }
runs() { awk -F'\t' -v i="$1" -v t="$2" '$1 == i && $2 == t' "$RAW" | wc -l; }

LABEL=$BENCH_CACHE
echo
echo "== results: median of $ITERS, seconds, $LABEL page cache"
printf '%-7s %-13s %8s %8s %8s %8s %10s %5s\n' image tool wall user sys +sync wall+sync runs
for img in $IMAGES; do
    for tool in $TOOLS; do
        w=$(med "$img" "$tool" 4)
        ws=$(awk -F'\t' -v i="$img" -v t="$tool" '$1 == i && $2 == t {printf "%.3f\n", $4 + $7}' "$RAW" | bench_median /dev/stdin 1)
        printf '%-7s %-13s %8s %8s %8s %8s %10s %5s\n' "$img" "$tool" "$w" "$(med "$img" "$tool" 5)" \
            "$(med "$img" "$tool" 6)" "$(med "$img" "$tool" 7)" "$ws" "$(runs "$img" "$tool")/$ITERS"
    done
done
for img in $IMAGES; do
    c=$(med "$img" skopeo+umoci 8)
    t=$(med "$img" skopeo+umoci 4)
    [ "$c" = n/a ] || echo "($img skopeo+umoci = skopeo copy $c + umoci unpack $(awk -v a="$t" -v b="$c" 'BEGIN{printf "%.3f", a - b}') s, medians)"
done
echo
missed=0
warm=""
[ "$LABEL" = warm ] && warm=" [warm]"
for img in $IMAGES; do
    b=$(med "$img" berth 4)
    for pair in "skopeo+umoci:$TARGET_SKOPEO" "podman:$TARGET_PODMAN"; do
        other=${pair%%:*}
        target=${pair#*:}
        r=$(bench_ratio "$b" "$(med "$img" "$other" 4)")
        if bench_le "$r" "$target"; then verdict=ok; else verdict=MISSED; missed=1; fi
        echo "ratio $img berth/$other = $r (target <= $target) $verdict$warm"
    done
done
echo
if [ $FAILED = 1 ]; then
    echo "FAILED: some runs failed or produced no rootfs (see above); their times are not counted"
    exit 1
fi
if [ $missed = 1 ]; then
    echo "MISSED: berth missed at least one target (this is a benchmark: exit status stays 0)"
else
    echo "all targets met"
fi
exit 0
