#!/bin/bash
# Prepare everything the integration tests pull from: build the fixture
# images (rootfs-cache/images), start the local registries
# (scripts/registry.sh) and push the images the tests use.
#
#   scripts/fixtures.sh            # idempotent; ~1 s when everything is there
#   BERTH_BIG=1 scripts/fixtures.sh   # also build the ~200 MB `big` image
#   BERTH_FIXTURES_FORCE_PUSH=1 ...   # push even when the registry already has it
#
# Everything listens on 127.0.0.1; the only outside traffic is debootstrap's,
# the first time the debian image is built without a cached tarball, and
# apt-get's, the first time postgres and redis are (rootfs-cache/debian-*-layer.tar).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
IMAGES=$REPO/rootfs-cache/images

say() { echo "fixtures: $*" >&2; }
die() { echo "fixtures: error: $*" >&2; exit 1; }

for c in python3 curl docker-registry openssl htpasswd; do
  command -v "$c" >/dev/null || die "$c is missing (see docs/fixtures-registries.md for the packages)"
done

# ---- 1. images -------------------------------------------------------------
# postgres and redis are Debian packages on the debian layer: like debian,
# they need root and the Debian mirror the first time (then rootfs-cache/)
want=(busybox multilayer multiplatform zstd nomediatype httpd debian postgres redis)
[ "${BERTH_BIG:-0}" = 1 ] && want+=(big)
missing=()
for i in "${want[@]}"; do [ -f "$IMAGES/$i/index.json" ] || missing+=("$i"); done
for f in busybox-docker-save.tar busybox-oci.tar; do [ -f "$IMAGES/$f" ] || missing+=(busybox); done
if [ ${#missing[@]} -gt 0 ]; then
  only=$(printf '%s\n' "${missing[@]}" | sort -u | paste -sd, -)
  say "building images: $only"
  # busybox is rebuilt with --force when only its side products are missing
  force=()
  if [[ ",$only," == *,busybox,* ]] && [ -f "$IMAGES/busybox/index.json" ]; then force=(--force); fi
  python3 tests/fixtures/mkimages.py --only "$only" "${force[@]}" >&2 || die "mkimages.py failed"
fi
for i in "${want[@]}"; do [ -f "$IMAGES/$i/index.json" ] || die "image $i was not built"; done

# ---- 2. registries ---------------------------------------------------------
scripts/registry.sh start >&2 || die "scripts/registry.sh start failed"
eval "$(scripts/registry.sh env)"
# the tests check that the hub's CDN never sees an Authorization header: start
# each run from an empty violations log (registry.sh start never truncates it)
if [ -s "$BERTH_TEST_REGISTRY_CDN_VIOLATIONS" ]; then
  say "clearing old CDN violations: $(wc -l <"$BERTH_TEST_REGISTRY_CDN_VIOLATIONS") line(s) in $BERTH_TEST_REGISTRY_CDN_VIOLATIONS"
fi
: >"$BERTH_TEST_REGISTRY_CDN_VIOLATIONS"
CA=$BERTH_TEST_REGISTRY_CA
CREDS=$BERTH_TEST_REGISTRY_USER:$BERTH_TEST_REGISTRY_PASS

# ---- 3. pushes -------------------------------------------------------------
ACCEPT='Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'

# the first manifest descriptor's digest in index.json (no python: it starts slowly)
layout_digest() {
  local idx
  idx=$(<"$1/index.json")
  [[ $idx =~ \"digest\"[[:space:]]*:[[:space:]]*\"(sha256:[0-9a-f]{64})\" ]] || die "$1/index.json: no digest"
  echo "${BASH_REMATCH[1]}"
}

# registry_has REGISTRY REPO TAG DIGEST [curl args]: does REPO:TAG already resolve to DIGEST?
registry_has() {
  local reg=$1 repo=$2 tag=$3 digest=$4; shift 4
  local scheme=http
  [ $# -gt 0 ] && scheme=https
  local got
  got=$(curl -fsS -I -H "$ACCEPT" "$@" "$scheme://$reg/v2/$repo/manifests/$tag" 2>/dev/null |
        tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}') || true
  [ "$got" = "$digest" ]
}

# push IMAGE REGISTRY REPO[:TAG] [push.py args] (TAG: latest unless given)
PIDS=()
LOGDIR=$(mktemp -d)
trap 'rm -rf "$LOGDIR"' EXIT
push() {
  local img=$1 reg=$2 repo=${3%%:*} tag=latest
  [[ $3 == *:* ]] && tag=${3#*:}
  shift 3
  local layout=$IMAGES/$img digest curlargs=()
  digest=$(layout_digest "$layout")
  local a=("$@") i
  for ((i = 0; i < ${#a[@]}; i++)); do
    case ${a[i]} in
      --cacert) curlargs+=(--cacert "${a[i+1]}") ;;
      --user) curlargs+=(-u "${a[i+1]}") ;;
    esac
  done
  if [ "${BERTH_FIXTURES_FORCE_PUSH:-0}" != 1 ] && registry_has "$reg" "$repo" "$tag" "$digest" "${curlargs[@]}"; then
    return 0
  fi
  local log=$LOGDIR/$(echo "$reg-$repo-$tag" | tr '/:' '__').log
  say "pushing $img to $reg/$repo:$tag"
  ( python3 tests/fixtures/push.py "$layout" "$reg" "$repo:$tag" -q "$@" >"$log" 2>&1 ||
      { echo "push of $img to $reg/$repo:$tag failed:"; cat "$log"; exit 1; } ) &
  PIDS+=($!)
}

P=$BERTH_TEST_REGISTRY_PLAIN
T=$BERTH_TEST_REGISTRY_TLS
A=$BERTH_TEST_REGISTRY_AUTH
small=(busybox multilayer multiplatform zstd nomediatype)

# 5000: plain, also the hub's (5003) backend
for i in "${small[@]}" debian; do push "$i" "$P" "test/$i"; done
push busybox "$P" library/busybox           # docker.io mirror + hub `token` variant
push zstd "$P" library/zstd
push multiplatform "$P" library/multiplatform
push busybox "$P" accesstest/busybox        # hub `access_token` variant
push multilayer "$P" private/multilayer     # hub: needs credentials
push busybox "$P" private/access-busybox    # hub: private + access_token
push httpd "$P" test/httpd
# the guide's postgres:16 and redis:7 through the docker.io mirror (tests/integration/test_stack.sh)
push postgres "$P" library/postgres:16
push postgres "$P" library/postgres:latest
push redis "$P" library/redis:7
push redis "$P" library/redis:latest
# 5001: TLS, 5002: TLS + basic auth
for i in "${small[@]}"; do
  push "$i" "$T" "test/$i" --cacert "$CA"
  push "$i" "$A" "test/$i" --cacert "$CA" --user "$CREDS"
done

# the MCP test's client: the official TypeScript SDK, pinned by package-lock.json
if [ ! -d tests/integration/mcp/node_modules/@modelcontextprotocol/sdk ]; then
  (cd tests/integration/mcp && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in tests/integration/mcp failed"
fi

rc=0
for p in "${PIDS[@]}"; do wait "$p" || rc=1; done
[ $rc = 0 ] || die "some pushes failed (see above)"
say "ready (${#PIDS[@]} pushes done, the rest already present)"
