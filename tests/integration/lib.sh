# Tiny test harness for berth's integration suites. Source it from a test
# script, define test functions, then call them with t_run and finish with
# t_summary:
#
#   . "$(dirname "$0")/lib.sh"
#   test_x() { b_ok pull 127.0.0.1:5000/test/busybox; assert_eq "$(...)" "..."; }
#   t_run "pull busybox" test_x
#   t_summary
#
# Each test runs in a subshell with `set -eE`, its own directory $T_DIR and a
# fresh, empty BERTH_ROOT. Its output is captured and shown only when it
# fails. A test never skips: a missing precondition is a failure with a
# message that says what is missing.
#
# Environment:
#   BERTH_MODE=root|rootless   run berth as root or as $BERTH_TEST_USER (default berthtest)
#   BERTH_TEST_FILTER=REGEX    run only tests whose name matches (grep -E)
#   BERTH_KEEP=1               keep the directories of failed tests
#   BERTH_BIN=PATH             berth binary (default build/berth)
#   BERTH_TEST_TIMEOUT=SECS    limit for one berth command (default 120)

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$IT_DIR/../.." && pwd)
BERTH_BIN_SRC=${BERTH_BIN:-$REPO/build/berth}
BERTH_MODE=${BERTH_MODE:-root}
TEST_USER=${BERTH_TEST_USER:-berthtest}
IMAGES=$REPO/rootfs-cache/images
HELPERS=$IT_DIR/helpers.py
# the system python (a version-manager shim in PATH can cost 0.1 s per call)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3 || echo python3)

case $BERTH_MODE in
  root | rootless) ;;
  *) echo "lib.sh: BERTH_MODE must be root or rootless, not '$BERTH_MODE'" >&2; exit 2 ;;
esac
if [ "$(id -u)" != 0 ]; then
  echo "lib.sh: the integration suites run as root (they switch to $TEST_USER for rootless mode)" >&2
  exit 2
fi

# registry endpoints (the variables are fixed; whether they answer is each test's business)
if [ -x "$REPO/scripts/registry.sh" ]; then
  eval "$("$REPO/scripts/registry.sh" env)"
fi

T_PASS=0
T_FAIL=0
T_FILTERED=0
T_NUM=0
T_FAILED_NAMES=()
SUITE_TMP=$(mktemp -d /tmp/berth-it.XXXXXX)
chmod 755 "$SUITE_TMP"
# run a private copy, so that a rebuild during the run cannot pull the binary
# from under the tests
BERTH_BIN=$SUITE_TMP/bin/berth
mkdir -p "$SUITE_TMP/bin"
chmod 755 "$SUITE_TMP/bin"
if [ -f "$BERTH_BIN_SRC" ]; then
  cp "$BERTH_BIN_SRC" "$BERTH_BIN" && chmod 755 "$BERTH_BIN"
fi
trap 't_cleanup_suite' EXIT
t_cleanup_suite() { [ -n "${SUITE_TMP:-}" ] && rm -rf "$SUITE_TMP"; }

# uid that files of the image's container root, and of image uid N, get on the host
if [ "$BERTH_MODE" = rootless ]; then
  TEST_UID=$(id -u "$TEST_USER" 2>/dev/null || echo "")
  TEST_GID=$(id -g "$TEST_USER" 2>/dev/null || echo "")
  SUBUID_START=$(awk -F: -v u="$TEST_USER" '$1==u{print $2; exit}' /etc/subuid 2>/dev/null)
  SUBGID_START=$(awk -F: -v u="$TEST_USER" '$1==u{print $2; exit}' /etc/subgid 2>/dev/null)
  ROOT_UID=$TEST_UID
  ROOT_GID=$TEST_GID
else
  ROOT_UID=0
  ROOT_GID=0
fi
# host_uid N: the host uid of a file the image says is owned by uid N
host_uid() {
  if [ "$BERTH_MODE" = root ]; then echo "$1"
  elif [ "$1" = 0 ]; then echo "$ROOT_UID"
  else echo $((SUBUID_START + $1 - 1)); fi
}
host_gid() {
  if [ "$BERTH_MODE" = root ]; then echo "$1"
  elif [ "$1" = 0 ]; then echo "$ROOT_GID"
  else echo $((SUBGID_START + $1 - 1)); fi
}

# ---------------------------------------------------------------- running tests

# t_run NAME FUNC [ARGS...]
t_run() {
  local name=$1; shift
  if [ -n "${BERTH_TEST_FILTER:-}" ] && ! grep -qE -- "$BERTH_TEST_FILTER" <<<"$name"; then
    T_FILTERED=$((T_FILTERED + 1))
    return 0
  fi
  T_NUM=$((T_NUM + 1))
  local dir=$SUITE_TMP/t$T_NUM
  mkdir -p "$dir/root" "$dir/home"
  chmod 755 "$dir"
  echo '{}' >"$dir/config.json"
  echo '{"auths": {}}' >"$dir/auth.json"
  chmod 644 "$dir/config.json" "$dir/auth.json"
  if [ "$BERTH_MODE" = rootless ]; then
    chown "$TEST_USER:" "$dir/root" "$dir/home" "$dir/config.json" "$dir/auth.json" 2>/dev/null || true
  fi
  local t0=$EPOCHREALTIME rc
  (
    T_DIR=$dir
    T_NAME=$name
    BERTH_ROOT=$dir/root
    STORE=$dir/root/storage
    BERTH_CONFIG=$dir/config.json
    REGISTRY_AUTH_FILE=$dir/auth.json
    BERTH_HOME=$dir/home
    IMAGES_JSON=$dir/images.json
    B_N=0
    cd "$dir" || exit 1
    set -eE
    trap 'echo "# command failed (exit $?) at ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND" >&2' ERR
    "$@"
  ) >"$dir/log" 2>&1 </dev/null
  rc=$?
  local secs
  secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
  echo "$secs $name" >>"$SUITE_TMP/times"
  if [ $rc = 0 ]; then
    T_PASS=$((T_PASS + 1))
    echo "ok - $name"
    rm -rf "$dir"
  else
    T_FAIL=$((T_FAIL + 1))
    T_FAILED_NAMES+=("$name")
    echo "not ok - $name"
    local n
    n=$(wc -l <"$dir/log")
    if [ "$n" -gt 120 ]; then
      sed -n '1,40p' "$dir/log" | sed 's/^/    # /'
      echo "    # ... ($((n - 100)) lines left out) ..."
      tail -n 60 "$dir/log" | sed 's/^/    # /'
    else
      sed 's/^/    # /' "$dir/log"
    fi
    if [ "${BERTH_KEEP:-0}" = 1 ]; then
      local keep
      keep=$(mktemp -d /tmp/berth-it-failed.XXXXXX)
      cp -a "$dir" "$keep/" 2>/dev/null
      echo "    # kept in $keep"
    fi
    rm -rf "$dir"
  fi
}

# t_summary: print "N passed, N failed" alone on its line; non-zero if any failed
t_summary() {
  if [ "${BERTH_SHOW_TIMES:-0}" = 1 ] && [ -f "$SUITE_TMP/times" ]; then
    echo "# slowest tests:"
    sort -rn "$SUITE_TMP/times" | head -n 10 | sed 's/^/#   /'
  fi
  [ "$T_FILTERED" -gt 0 ] && echo "# $T_FILTERED test(s) not selected by BERTH_TEST_FILTER=$BERTH_TEST_FILTER"
  if [ "$T_FAIL" -gt 0 ]; then
    echo "# failed ($BERTH_MODE):"
    printf '#   %s\n' "${T_FAILED_NAMES[@]}"
  fi
  echo "$T_PASS passed, $T_FAIL failed"
  [ "$T_FAIL" = 0 ]
}

# ---------------------------------------------------------------- assertions

log() { echo "# $*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
assert_eq() { # ACTUAL EXPECTED [WHAT]
  [ "$1" == "$2" ] || fail "${3:-value}: expected '$2', got '$1'"
}
assert_ne() {
  [ "$1" != "$2" ] || fail "${3:-value}: expected something other than '$2'"
}
assert_contains() { # HAYSTACK NEEDLE [WHAT]
  [[ $1 == *"$2"* ]] || fail "${3:-text} does not contain '$2': $1"
}
assert_icontains() {
  [[ ${1,,} == *"${2,,}"* ]] || fail "${3:-text} does not contain '$2' (any case): $1"
}
assert_not_contains() {
  [[ $1 != *"$2"* ]] || fail "${3:-text} contains '$2': $1"
}
assert_ge() { # A B [WHAT] (numbers, decimals allowed)
  awk -v a="$1" -v b="$2" 'BEGIN{exit !(a >= b)}' || fail "${3:-value}: expected >= $2, got $1"
}
assert_le() {
  awk -v a="$1" -v b="$2" 'BEGIN{exit !(a <= b)}' || fail "${3:-value}: expected <= $2, got $1"
}
assert_exists() { [ -e "$1" ] || [ -L "$1" ] || fail "${2:-path} $1 does not exist"; }
assert_not_exists() { ! [ -e "$1" ] && ! [ -L "$1" ] || fail "${2:-path} $1 exists but should not"; }
assert_file_content() { # FILE EXPECTED (exact bytes, $'..' for newlines)
  [ -f "$1" ] || fail "$1 is not a regular file"
  local got
  got=$(cat "$1"; echo x)
  got=${got%x}
  [ "$got" == "$2" ] || fail "content of $1: expected $(printf %q "$2"), got $(printf %q "$got")"
}
assert_dir_empty() { # DIR [WHAT]
  [ -d "$1" ] || fail "${2:-directory} $1 does not exist"
  local left
  left=$(ls -A "$1")
  [ -z "$left" ] || fail "${2:-directory} $1 is not empty: $(echo $left | head -c 500)"
}
assert_dir_nonempty() {
  [ -d "$1" ] || fail "${2:-directory} $1 does not exist"
  [ -n "$(ls -A "$1")" ] || fail "${2:-directory} $1 is empty"
}
# stat fields
owner_of() { stat -c '%u:%g' "$1"; }
mode_of() { stat -c '%a' "$1"; }
xattr_of() { # PATH NAME
  if command -v getfattr >/dev/null; then
    getfattr -h --absolute-names --only-values -n "$2" "$1" 2>/dev/null
  else
    "$PY" -S "$HELPERS" xattr "$1" "$2" 2>/dev/null
  fi
}

# ---------------------------------------------------------------- running berth

# the command line that runs berth as this mode's user, with a clean environment
# (every berth command may change the store: forget the cached images --json)
berth_cmd() {
  rm -f "$T_DIR/images.valid"
  B_CMD=()
  local envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 NO_COLOR=1
              HOME="$BERTH_HOME" BERTH_ROOT="$BERTH_ROOT" BERTH_CONFIG="$BERTH_CONFIG"
              REGISTRY_AUTH_FILE="$REGISTRY_AUTH_FILE")
  [ -n "${BERTH_LOG:-}" ] && envs+=(BERTH_LOG="$BERTH_LOG")
  [ -n "${B_EXTRA_ENV:-}" ] && envs+=($B_EXTRA_ENV)
  if [ "$BERTH_MODE" = rootless ]; then
    B_CMD=(runuser -u "$TEST_USER" --)
  fi
  B_CMD+=(env -i "${envs[@]}" timeout -k 5 "${BERTH_TEST_TIMEOUT:-120}" "$BERTH_BIN" "$@")
}

# berth ARGS: run berth; output goes where the caller sends it
berth() {
  berth_cmd "$@"
  "${B_CMD[@]}"
}

# b_run ARGS: run berth and keep its exit code in B_RC, stdout in B_OUT,
# stderr in B_ERR (and the files $B_OUTF/$B_ERRF); never fails itself.
# A caller may set a local array B_WRAP: the command line berth runs under.
b_run() {
  B_N=$((B_N + 1))
  B_OUTF=$T_DIR/b$B_N.out
  B_ERRF=$T_DIR/b$B_N.err
  berth_cmd "$@"
  echo "\$ berth $*${B_WRAP:+ (under ${B_WRAP[*]})}"
  local t0=$EPOCHREALTIME
  if [ -n "${B_GUARD_KB:-}" ]; then
    b_run_guarded
  else
    B_RC=0
    "${B_WRAP[@]}" "${B_CMD[@]}" >"$B_OUTF" 2>"$B_ERRF" || B_RC=$?
  fi
  B_SECS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}')
  B_OUT=$(cat "$B_OUTF")
  B_ERR=$(cat "$B_ERRF")
  echo "# exit $B_RC after ${B_SECS}s"
  [ -s "$B_OUTF" ] && head -c 3000 "$B_OUTF" | sed 's/^/# stdout: /'
  [ -s "$B_ERRF" ] && head -c 3000 "$B_ERRF" | sed 's/^/# stderr: /'
  return 0
}

# kill every process of the session(s) started for PID (setsid)
kill_session() {
  local pid=$1 sids sid
  sids=$( (ps -o sid= -p "$pid"; ps -o sid= --ppid "$pid") 2>/dev/null | sort -u)
  local mine
  mine=$(ps -o sid= -p $$ | tr -d ' ')
  for sid in $sids; do
    [ "$sid" = "$mine" ] && continue
    [ "$sid" -gt 1 ] || continue
    ps -eo pid=,sid= | awk -v s="$sid" '$2==s{print $1}' | xargs -r kill -9 2>/dev/null || true
  done
}

# berth in the background, killed if BERTH_ROOT grows past B_GUARD_KB KiB
# (a layer that makes berth write gigabytes must not fill the disk)
b_run_guarded() {
  setsid "${B_CMD[@]}" >"$B_OUTF" 2>"$B_ERRF" </dev/null &
  local pid=$! used
  B_GUARD_TRIPPED=0
  while kill -0 "$pid" 2>/dev/null; do
    used=$(du -sk "$BERTH_ROOT" 2>/dev/null | cut -f1)
    if [ "${used:-0}" -gt "$B_GUARD_KB" ]; then
      kill_session "$pid"
      B_GUARD_TRIPPED=1
      echo "# GUARD: the store grew to ${used} KiB (limit $B_GUARD_KB); berth killed"
      break
    fi
    sleep 0.2
  done
  B_RC=0
  wait "$pid" || B_RC=$?
}

# b_ok ARGS: berth must succeed
b_ok() {
  b_run "$@"
  [ "$B_RC" = 0 ] || fail "berth $* exited $B_RC: $B_ERR"
}
# b_fails ARGS: berth must fail with exit 125 and a "berth: error: <message>" line
b_fails() {
  b_run "$@"
  [ "$B_RC" != 0 ] || fail "berth $* succeeded but should have failed"
  [ "$B_RC" = 125 ] || fail "berth $* exited $B_RC, expected 125 (124/137 mean it hung and was killed): $B_ERR"
  if [[ " $* " == *" --json "* ]]; then
    "$PY" -S "$HELPERS" json-check "$B_OUTF" error code || fail "berth $* --json: stdout is not {error, code}"
    B_MSG=$("$PY" -S -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"])' "$B_OUTF")
  else
    grep -q '^berth: error: .' "$B_ERRF" || fail "berth $* failed without a 'berth: error: <message>' line: $B_ERR"
    B_MSG=$(grep '^berth: error: ' "$B_ERRF" | head -n 1)
    B_MSG=${B_MSG#berth: error: }
  fi
  assert_not_contains "$B_MSG" "unknown error" "error message"
}

# berth's config for this test (JSON text)
write_config() { printf '%s\n' "$1" >"$BERTH_CONFIG"; }

# fuse-overlayfs installed, and /dev/fuse open to the mode's user
fuse_usable() {
  [ -x /usr/bin/fuse-overlayfs ] || return 1
  if [ "$BERTH_MODE" = rootless ]; then runuser -u "$TEST_USER" -- sh -c 'test -r /dev/fuse && test -w /dev/fuse'
  else test -r /dev/fuse && test -w /dev/fuse; fi
}
# credentials file: write_auth HOST:PORT USER:PASS [HOST:PORT USER:PASS...]
write_auth() {
  local j='{"auths": {' sep=''
  while [ $# -ge 2 ]; do
    j+="$sep\"$1\": {\"auth\": \"$(printf %s "$2" | base64 -w0)\"}"
    sep=', '
    shift 2
  done
  printf '%s}}\n' "$j" >"$REGISTRY_AUTH_FILE"
}

# ---------------------------------------------------------------- store queries

# images_json: refresh $T_DIR/images.json from `berth images --json`
# (cached in a file until the next berth command, so $(...) callers share it)
images_json() {
  [ -f "$T_DIR/images.valid" ] && return 0
  berth images --json >"$IMAGES_JSON" 2>"$T_DIR/images.err" ||
    fail "berth images --json failed: $(cat "$T_DIR/images.err")"
  touch "$T_DIR/images.valid"
}
hp() { "$PY" -S "$HELPERS" "$@"; }
# image_field NAME FIELD (from a fresh images --json)
image_field() { images_json && hp image "$IMAGES_JSON" "$1" "$2"; }
# image_layers NAME: layer dirs, bottom first
image_layers() { images_json && hp layers "$IMAGES_JSON" "$1"; }
image_layer_digests() { images_json && hp layer-digests "$IMAGES_JSON" "$1"; }
# layer_path_of IMAGE FILE: the topmost layer dir of IMAGE that holds FILE
layer_path_of() { images_json && hp layer-of "$IMAGES_JSON" "$1" "$2"; }
# rootfs_file IMAGE PATH: the file that PATH is in the image's merged rootfs
# (overlay rules); nothing and exit 3 if PATH is not there
rootfs_file() { images_json && hp merged "$IMAGES_JSON" "$1" "$2"; }
image_count() { images_json && hp count "$IMAGES_JSON"; }
image_names() { images_json && hp names "$IMAGES_JSON"; }

# assert_rootfs IMAGE PATH [CONTENT]: PATH is in the merged rootfs (with CONTENT)
assert_rootfs() {
  local f rc=0
  f=$(rootfs_file "$1" "$2") || rc=$?
  [ $rc = 0 ] || fail "$2 is not in the rootfs of $1"
  [ $# -lt 3 ] || assert_file_content "$f" "$3"
  echo "$f" >"$T_DIR/last_rootfs_file"
}
assert_not_rootfs() {
  local f rc=0
  f=$(rootfs_file "$1" "$2") || rc=$?
  [ $rc = 3 ] || fail "$2 should not be in the rootfs of $1 (found $f)"
}

# assert_image NAME DIGEST: NAME is listed and points at manifest DIGEST
assert_image() {
  local d
  d=$(image_field "$1" digest) || fail "image $1 is not listed by berth images --json"
  assert_eq "$d" "$2" "digest of $1"
}

# the store holds no image, no layer, no tmp leftovers
assert_store_empty() {
  images_json
  assert_eq "$(hp count "$IMAGES_JSON")" 0 "number of images"
  assert_dir_empty "$STORE/layers" "layers dir"
  assert_dir_empty "$STORE/tmp" "store tmp dir"
}

# every image's layers exist and hold content, every manifest and config blob
# is there, every layer dir belongs to an image, tmp/ is empty
assert_store_consistent() {
  images_json
  hp store-check "$IMAGES_JSON" "$STORE" >"$T_DIR/store-check" ||
    fail "the store is inconsistent: $(cat "$T_DIR/store-check")"
}

# ---------------------------------------------------------------- fixtures

need_cmd() { command -v "$1" >/dev/null || fail "precondition: command $1 is missing${2:+ ($2)}"; }
need_image() { # NAME: a fixture layout under rootfs-cache/images
  [ -f "$IMAGES/$1/index.json" ] || fail "precondition: fixture image $1 is missing: run scripts/fixtures.sh"
}
need_file() { [ -e "$1" ] || fail "precondition: $1 is missing${2:+ ($2)}"; }
# need_registry HOST:PORT [https]
need_registry() {
  local code
  if [ "${2:-}" = https ]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$BERTH_TEST_REGISTRY_CA" "https://$1/v2/") || true
  else
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$1/v2/") || true
  fi
  [ "$code" = 200 ] || [ "$code" = 401 ] ||
    fail "precondition: registry $1 does not answer (HTTP '$code'): run scripts/fixtures.sh"
}
# need_repo HOST:PORT REPO DIGEST: the plain registry has REPO:latest = DIGEST
need_repo() {
  local got
  got=$(curl -fsS -I --max-time 5 -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$1/v2/$2/manifests/latest" 2>/dev/null | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}') || true
  [ "$got" = "$3" ] || fail "precondition: $1/$2:latest is '${got:-missing}', expected $3: run scripts/fixtures.sh"
}
# manifest digest (amd64 unless ARCH) / config / layer digests of a fixture layout
layout_digest() { hp layout-digest "$IMAGES/$1"; }
fixture_digest() { hp fixture-digest "$IMAGES/$1" "${2:-amd64}"; }
fixture_config() { hp fixture-config "$IMAGES/$1" "${2:-amd64}"; }
fixture_layers() { hp fixture-layers "$IMAGES/$1" "${2:-amd64}"; }

# faultreg counters
fault_stats() { curl -fsS --max-time 5 "http://$BERTH_TEST_REGISTRY_FAULT/_stats" >"$T_DIR/fault-stats.json" || fail "faultreg /_stats failed"; }
hub_stats() { curl -fsS --max-time 5 "http://$BERTH_TEST_REGISTRY_HUB/_stats" >"$T_DIR/hub-stats.json" || fail "hub /_stats failed"; }

# a name unique to this run, for faultreg's per-prefix fault state
uniq_tag() { echo "$BERTH_MODE-$$-$T_NUM-$RANDOM"; }

# ---------------------------------------------------------------- container suites
# setup_ctr: load the busybox fixture; remove every container when the test ends
setup_ctr() {
  trap 'b_run rm --all --confirm -f >/dev/null 2>&1 || true; rm_networks' EXIT
  b_ok load -q "$IMAGES/busybox"
}
# remove every named network of this test's BERTH_ROOT (their holder processes)
rm_networks() {
  local n
  for n in $(ls "$BERTH_ROOT/networks" 2>/dev/null); do b_run network rm "$n" >/dev/null 2>&1 || true; done
}
# tool JSON: one request through `berth tool`; the reply is in $B_OUTF
tool() { b_run tool --request "$1"; }
# field '["key"]': a value of the last reply (strings raw, the rest as JSON)
field() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval("d"+sys.argv[2]); print(json.dumps(v) if not isinstance(v,str) else v)' "$B_OUTF" "$1"; }
has_fields() { "$PY" -S "$HELPERS" json-check "$B_OUTF" "$@" || fail "reply lacks one of: $* -- $(cat "$B_OUTF")"; }
