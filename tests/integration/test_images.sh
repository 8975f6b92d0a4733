#!/bin/bash
# Integration tests of berth's image pipeline: pull (every registry fixture),
# unpacked layer trees, platforms, registry faults, crash and concurrency
# safety, load, rmi, references, hostile layers and registry mirrors.
#
#   BERTH_MODE=root|rootless tests/integration/test_images.sh
#
# Needs scripts/fixtures.sh to have run (tests/integration/run.sh does that),
# and for rootless mode the test user from scripts/setup-test-user.sh.
# Both modes may run at the same time (every name it uses is per mode and run):
# berth-suite: parallel-modes
. "$(dirname "$0")/lib.sh"

PLAIN=$BERTH_TEST_REGISTRY_PLAIN
TLS=$BERTH_TEST_REGISTRY_TLS
AUTH=$BERTH_TEST_REGISTRY_AUTH
HUB=$BERTH_TEST_REGISTRY_HUB
FAULT=$BERTH_TEST_REGISTRY_FAULT
CREDS=$BERTH_TEST_REGISTRY_USER:$BERTH_TEST_REGISTRY_PASS
SMALL_IMAGES=(busybox multilayer multiplatform zstd nomediatype)

case $(uname -m) in
  x86_64) HOST_ARCH=amd64 ;;
  aarch64) HOST_ARCH=arm64 ;;
  *) HOST_ARCH=unknown-$(uname -m) ;;
esac

# ====================================================================== helpers

# check_content NAME IMAGE [ARCH]: files that tell the fixture images apart
check_content() {
  local name=$1 img=$2 arch=${3:-$HOST_ARCH} f
  case $img in
    busybox)
      assert_rootfs "$name" bin/busybox
      f=$(cat "$T_DIR/last_rootfs_file")
      [ -f "$f" ] && [ -x "$f" ] || fail "bin/busybox of $name is not an executable file"
      assert_eq "$(owner_of "$f")" "$ROOT_UID:$ROOT_GID" "owner of bin/busybox (container root)"
      assert_rootfs "$name" bin/sh
      assert_eq "$(readlink "$(cat "$T_DIR/last_rootfs_file")")" busybox "bin/sh symlink target"
      assert_rootfs "$name" etc/passwd
      grep -q '^root:x:0:0:' "$(cat "$T_DIR/last_rootfs_file")" || fail "etc/passwd of $name has no root entry"
      assert_eq "$(mode_of "$(dirname "$f")/../tmp")" 1777 "mode of /tmp"
      ;;
    multilayer)
      assert_rootfs "$name" data/keep.txt $'keep\n'
      assert_rootfs "$name" data/layer2.txt $'layer2\n'
      assert_rootfs "$name" data/layer3.txt $'layer3\n'
      assert_not_rootfs "$name" data/gone.txt
      ;;
    multiplatform) assert_rootfs "$name" platform "$arch"$'\n' ;;
    zstd) assert_rootfs "$name" zstd.txt $'zstd-ok\n' ;;
    nomediatype) assert_rootfs "$name" nomediatype.txt $'nomediatype-ok\n' ;;
    debian)
      assert_rootfs "$name" usr/bin/dpkg
      f=$(cat "$T_DIR/last_rootfs_file")
      [ -f "$f" ] && [ -x "$f" ] && [ -s "$f" ] || fail "usr/bin/dpkg of $name is not a non-empty executable"
      assert_rootfs "$name" etc/debian_version
      assert_rootfs "$name" bin
      assert_eq "$(readlink "$(cat "$T_DIR/last_rootfs_file")")" usr/bin "bin symlink target"
      assert_rootfs "$name" usr/bin/mount
      assert_eq "$(mode_of "$(cat "$T_DIR/last_rootfs_file")")" 4755 "mode of setuid usr/bin/mount"
      assert_rootfs "$name" var/mail
      f=$(cat "$T_DIR/last_rootfs_file")
      assert_eq "$(mode_of "$f")" 2775 "mode of var/mail"
      assert_eq "$(owner_of "$f")" "$ROOT_UID:$(host_gid 8)" "owner of var/mail (0:8 = root:mail)"
      ;;
    *) fail "check_content: unknown image $img" ;;
  esac
}

# verify_pulled NAME IMAGE [ARCH]: listed with the fixture's digests, right files, sane store
verify_pulled() {
  local name=$1 img=$2 arch=${3:-$HOST_ARCH}
  assert_image "$name" "$(fixture_digest "$img" "$arch")"
  assert_eq "$(image_field "$name" config)" "$(fixture_config "$img" "$arch")" "config digest of $name"
  assert_eq "$(image_layer_digests "$name")" "$(fixture_layers "$img" "$arch")" "layer digests of $name"
  check_content "$name" "$img" "$arch"
  assert_store_consistent
}

cdn_mark() {
  need_file "$BERTH_TEST_REGISTRY_CDN_VIOLATIONS" "the CDN violations log, created by scripts/registry.sh start"
  CDN_MARK=$(stat -c %s "$BERTH_TEST_REGISTRY_CDN_VIOLATIONS")
}
assert_no_cdn_violation() {
  local now
  now=$(stat -c %s "$BERTH_TEST_REGISTRY_CDN_VIOLATIONS")
  [ "$now" = "$CDN_MARK" ] ||
    fail "the CDN got requests with an Authorization header: $(tail -c +$((CDN_MARK + 1)) "$BERTH_TEST_REGISTRY_CDN_VIOLATIONS" | head -c 2000)"
}

tls_config() { write_config "{\"certs_dirs\": [\"$BERTH_TEST_REGISTRY_CERTS_D\"]}"; }

# ====================================================================== pulls

# test_pull KIND IMAGE: pull a fixture through one registry fixture
test_pull() {
  local kind=$1 img=$2 ref
  need_image "$img"
  case $kind in
    plain) need_registry "$PLAIN"; ref=$PLAIN/test/$img ;;
    tls) need_registry "$TLS" https; tls_config; ref=$TLS/test/$img ;;
    auth) need_registry "$AUTH" https; tls_config; write_auth "$AUTH" "$CREDS"; ref=$AUTH/test/$img ;;
    hub) need_registry "$HUB"; need_repo "$PLAIN" "test/$img" "$(layout_digest "$img")"
         ref=$HUB/test/$img; cdn_mark ;;
    fault) need_registry "$FAULT"; ref=$FAULT/ok/$img ;;
  esac
  b_ok pull "$ref"
  verify_pulled "$ref:latest" "$img"
  [ "$kind" != hub ] || assert_no_cdn_violation
}

test_tls_without_ca() {
  need_registry "$TLS" https
  for d in /etc/containers/certs.d /etc/docker/certs.d "$BERTH_HOME/.config/containers/certs.d"; do
    [ ! -e "$d/$TLS" ] || fail "precondition: $d/$TLS exists, so berth would trust the test CA anyway"
  done
  b_fails pull "$TLS/test/busybox"
  assert_contains "$B_MSG" "certs.d" "error message"
  assert_icontains "$B_MSG" "certificate" "error message"
  assert_store_empty
}

test_tls_localhost_name() {
  # the certificate has SAN DNS:localhost too, and certs.d has localhost:5001
  need_registry "$TLS" https
  tls_config
  b_ok pull "$BERTH_TEST_REGISTRY_TLS_LOCALHOST/test/busybox"
  verify_pulled "$BERTH_TEST_REGISTRY_TLS_LOCALHOST/test/busybox:latest" busybox
}

test_auth_bad_password() {
  need_registry "$AUTH" https
  tls_config
  write_auth "$AUTH" "$BERTH_TEST_REGISTRY_USER:wrong-password"
  b_fails pull "$AUTH/test/busybox"
  assert_contains "$B_MSG" "$AUTH" "error message"
  assert_icontains "$B_MSG" "credentials" "error message"
  assert_store_empty
}

test_auth_missing_creds() {
  need_registry "$AUTH" https
  tls_config
  b_fails pull "$AUTH/test/busybox"
  assert_contains "$B_MSG" "$AUTH" "error message"
  assert_icontains "$B_MSG" "login" "error message"
  assert_store_empty
}

test_auth_creds_other_host_only() {
  # credentials for another registry must not be used (nor help)
  need_registry "$AUTH" https
  tls_config
  write_auth "$TLS" "$CREDS"
  b_fails pull "$AUTH/test/busybox"
  assert_icontains "$B_MSG" "login" "error message"
}

# test_hub_pull REPO IMAGE [creds]: token auth + 307 to the CDN
test_hub_pull() {
  local repo=$1 img=$2 creds=${3:-} layer before after
  need_registry "$HUB"
  need_image "$img"
  need_repo "$PLAIN" "$repo" "$(layout_digest "$img")"
  [ -z "$creds" ] || write_auth "$HUB" "$CREDS"
  cdn_mark
  layer=$(fixture_layers "$img" | tail -n 1)
  hub_stats
  before=$(hp stat-count "$T_DIR/hub-stats.json" "cdn:/blobs/$layer")
  b_ok pull "$HUB/$repo"
  verify_pulled "$HUB/$repo:latest" "$img"
  assert_no_cdn_violation
  hub_stats
  after=$(hp stat-count "$T_DIR/hub-stats.json" "cdn:/blobs/$layer")
  [ "$after" -gt "$before" ] || fail "the CDN served no request for $layer: the 307 redirect was not followed to 127.0.0.1:5005"
}

test_hub_private_without_creds() {
  need_registry "$HUB"
  need_repo "$PLAIN" private/multilayer "$(fixture_digest multilayer)"
  cdn_mark
  b_fails pull "$HUB/private/multilayer"
  assert_contains "$B_MSG" "private/multilayer" "error message"
  assert_icontains "$B_MSG" "credentials" "error message"
  assert_no_cdn_violation
  assert_store_empty
}

test_hub_private_bad_creds() {
  need_registry "$HUB"
  need_repo "$PLAIN" private/multilayer "$(fixture_digest multilayer)"
  write_auth "$HUB" "$BERTH_TEST_REGISTRY_USER:nope"
  cdn_mark
  b_fails pull "$HUB/private/multilayer"
  assert_icontains "$B_MSG" "credentials" "error message"
  assert_no_cdn_violation
  assert_store_empty
}

test_cdn_log_empty() {
  need_file "$BERTH_TEST_REGISTRY_CDN_VIOLATIONS" "created by scripts/registry.sh start"
  [ ! -s "$BERTH_TEST_REGISTRY_CDN_VIOLATIONS" ] ||
    fail "the CDN (5005) logged requests that carried an Authorization header: $(head -c 2000 "$BERTH_TEST_REGISTRY_CDN_VIOLATIONS")"
}

test_debian() {
  need_image debian
  need_registry "$PLAIN"
  b_ok pull -q "$PLAIN/test/debian"
  verify_pulled "$PLAIN/test/debian:latest" debian
}

# ====================================================================== unpacked multilayer tree

ML=$PLAIN/test/multilayer:latest
pull_multilayer() {
  need_image multilayer
  need_registry "$PLAIN"
  b_ok pull -q "$PLAIN/test/multilayer"
  image_layers "$ML" >"$T_DIR/layers"
  [ "$(wc -l <"$T_DIR/layers")" = 3 ] || fail "multilayer should have 3 layers: $(cat "$T_DIR/layers")"
  L1=$(sed -n 1p "$T_DIR/layers")
  L2=$(sed -n 2p "$T_DIR/layers")
  L3=$(sed -n 3p "$T_DIR/layers")
}

assert_whiteout() {
  [ -c "$1" ] || fail "$1 is not a character device (whiteout): $(ls -ld "$1" 2>&1)"
  assert_eq "$(stat -c '%t:%T' "$1")" "0:0" "device number of whiteout $1"
}

test_ml_whiteouts() {
  pull_multilayer
  assert_whiteout "$L2/data/gone.txt"
  assert_whiteout "$L2/data/gonedir"
  # the deleted files are still in layer 1 (layers are never modified)
  assert_exists "$L1/data/gone.txt" "layer 1's data/gone.txt"
  assert_exists "$L1/data/gonedir/sub/b.txt"
  # no .wh. files left anywhere
  local wh
  wh=$(find "$L1" "$L2" "$L3" -name '.wh.*')
  [ -z "$wh" ] || fail ".wh. entries left in the layer dirs: $wh"
  assert_not_rootfs "$ML" data/gone.txt
  assert_not_rootfs "$ML" data/gonedir/a.txt
  assert_not_rootfs "$ML" data/gonedir
}

test_ml_opaque() {
  pull_multilayer
  local want other
  if [ "$BERTH_MODE" = root ]; then want=trusted.overlay.opaque other=user.overlay.opaque
  else want=user.overlay.opaque other=trusted.overlay.opaque; fi
  [ -d "$L2/data/opaque" ] || fail "layer 2 has no data/opaque dir"
  assert_eq "$(xattr_of "$L2/data/opaque" "$want")" y "$want on layer 2's data/opaque"
  assert_eq "$(xattr_of "$L2/data/opaque" "$other")" "" "$other on layer 2's data/opaque"
  assert_file_content "$L2/data/opaque/new.txt" $'new\n'
  assert_not_exists "$L2/data/opaque/.wh..wh..opq"
  assert_eq "$(xattr_of "$L1/data/opaque" "$want")" "" "$want on layer 1's data/opaque"
  assert_rootfs "$ML" data/opaque/new.txt $'new\n'
  assert_not_rootfs "$ML" data/opaque/old.txt
}

test_ml_hardlinks() {
  pull_multilayer
  assert_file_content "$L1/data/hard1" $'hardlink-content\n'
  assert_file_content "$L1/data/hard2" $'hardlink-content\n'
  assert_eq "$(stat -c %i "$L1/data/hard2")" "$(stat -c %i "$L1/data/hard1")" "inode of hard2 vs hard1"
  assert_eq "$(stat -c %h "$L1/data/hard1")" 2 "link count of hard1"
}

test_ml_symlinks() {
  pull_multilayer
  [ -L "$L1/data/rel-link" ] || fail "data/rel-link is not a symlink"
  [ -L "$L1/data/abs-link" ] || fail "data/abs-link is not a symlink"
  assert_eq "$(readlink "$L1/data/rel-link")" keep.txt "rel-link target"
  assert_eq "$(readlink "$L1/data/abs-link")" /data/keep.txt "abs-link target"
  assert_eq "$(stat -c %u "$L1/data/abs-link")" "$ROOT_UID" "owner of abs-link"
}

test_ml_setuid() {
  pull_multilayer
  assert_eq "$(mode_of "$L1/data/setuid-bin")" 4755 "mode of data/setuid-bin"
  [ -u "$L1/data/setuid-bin" ] || fail "setuid bit lost on data/setuid-bin"
}

test_ml_owner() {
  pull_multilayer
  assert_eq "$(owner_of "$L1/data/owned.txt")" "$(host_uid 1000):$(host_gid 1000)" "owner of data/owned.txt (1000:1000 in the image)"
  assert_eq "$(mode_of "$L1/data/owned.txt")" 640 "mode of data/owned.txt"
  assert_eq "$(owner_of "$L1/data/keep.txt")" "$ROOT_UID:$ROOT_GID" "owner of data/keep.txt (container root)"
  assert_eq "$(owner_of "$L2/data/layer2.txt")" "$ROOT_UID:$ROOT_GID" "owner of data/layer2.txt (container root)"
}

test_ml_xattr() {
  pull_multilayer
  assert_eq "$(xattr_of "$L1/data/xattr.txt" user.berth)" yes "user.berth xattr of data/xattr.txt"
}

test_ml_merged_view() {
  pull_multilayer
  assert_rootfs "$ML" data/keep.txt $'keep\n'
  assert_rootfs "$ML" data/hard1 $'hardlink-content\n'
  assert_rootfs "$ML" data/layer2.txt $'layer2\n'
  assert_rootfs "$ML" data/layer3.txt $'layer3\n'
  assert_not_rootfs "$ML" data/gone.txt
  assert_not_rootfs "$ML" data/gonedir/sub/b.txt
  assert_not_rootfs "$ML" data/opaque/old.txt
  assert_rootfs "$ML" data/opaque/new.txt $'new\n'
  # layer 3 is the uncompressed one
  assert_eq "$(image_field "$ML" layers | "$PY" -S -c 'import json,sys; print(json.load(sys.stdin)[2]["media_type"])')" \
    application/vnd.oci.image.layer.v1.tar "media type of layer 3"
  # every unpacked entry's mtime is the fixture's 2020-01-01 (dirs too: set after their children)
  assert_eq "$(stat -c %Y "$L1/data/keep.txt")" 1577836800 "mtime of data/keep.txt"
  assert_eq "$(stat -c %Y "$L1/data")" 1577836800 "mtime of data/ in layer 1"
}

# ====================================================================== platforms

test_platform_default() {
  need_registry "$PLAIN"
  need_image multiplatform
  b_ok pull "$PLAIN/test/multiplatform"
  [[ $HOST_ARCH == amd64 || $HOST_ARCH == arm64 ]] || fail "host architecture $(uname -m) has no image in the multiplatform fixture"
  verify_pulled "$PLAIN/test/multiplatform:latest" multiplatform "$HOST_ARCH"
  local want=linux/amd64
  [ "$HOST_ARCH" = arm64 ] && want=linux/arm64/v8
  assert_eq "$(image_field "$PLAIN/test/multiplatform" platform)" "$want" "platform of the image"
}

test_platform_arm64() {
  need_registry "$PLAIN"
  need_image multiplatform
  b_ok pull --platform linux/arm64 "$PLAIN/test/multiplatform"
  verify_pulled "$PLAIN/test/multiplatform:latest" multiplatform arm64
  assert_eq "$(image_field "$PLAIN/test/multiplatform" platform)" linux/arm64/v8 "platform of the image"
}

test_platform_missing() {
  need_registry "$PLAIN"
  b_fails pull --platform linux/ppc64le "$PLAIN/test/multiplatform"
  assert_contains "$B_MSG" "linux/ppc64le" "error message"
  assert_contains "$B_MSG" "linux/amd64" "error message (available platforms)"
  assert_contains "$B_MSG" "linux/arm64" "error message (available platforms)"
  assert_store_empty
}

test_platform_invalid() {
  need_registry "$PLAIN"
  b_fails pull --platform amd64 "$PLAIN/test/multiplatform"
  assert_contains "$B_MSG" "amd64" "error message"
  assert_icontains "$B_MSG" "platform" "error message"
  assert_store_empty
}

# ====================================================================== faults (5006)

test_fault_baddigest() {
  need_registry "$FAULT"
  need_image busybox
  local layer
  layer=$(fixture_layers busybox)
  b_fails pull "$FAULT/baddigest/busybox"
  assert_contains "$B_MSG" "$layer" "error message (the corrupt blob)"
  assert_icontains "$B_MSG" "digest" "error message"
  assert_store_empty
  assert_not_exists "$STORE/blobs/sha256/${layer#sha256:}" "corrupt blob"
}

test_fault_badmanifest() {
  need_registry "$FAULT"
  b_fails pull "$FAULT/badmanifest/busybox"
  assert_icontains "$B_MSG" "digest" "error message"
  assert_store_empty
}

test_fault_badmanifest_by_digest() {
  need_registry "$FAULT"
  need_image busybox
  local d
  d=$(fixture_digest busybox)
  b_fails pull "$FAULT/badmanifest/busybox@$d"
  assert_contains "$B_MSG" "$d" "error message"
  assert_store_empty
}

test_pull_by_digest() {
  need_registry "$FAULT"
  need_image multilayer
  local d
  d=$(fixture_digest multilayer)
  b_ok pull "$FAULT/ok/multilayer@$d"
  verify_pulled "$FAULT/ok/multilayer@$d" multilayer
}

test_fault_truncate() {
  need_registry "$FAULT"
  need_image busybox
  local pfx layer
  pfx=truncate-$(uniq_tag)
  layer=$(fixture_layers busybox)
  b_ok pull "$FAULT/$pfx/busybox"
  verify_pulled "$FAULT/$pfx/busybox:latest" busybox
  fault_stats
  hp ranges "$T_DIR/fault-stats.json" "/v2/$pfx/" >"$T_DIR/ranges"
  log "range requests: $(cat "$T_DIR/ranges")"
  grep -q "^/v2/$pfx/busybox/blobs/$layer bytes=[1-9][0-9]*-" "$T_DIR/ranges" ||
    fail "berth did not resume the truncated layer with a Range request (faultreg saw: $(cat "$T_DIR/ranges"))"
}

test_fault_flaky500() {
  need_registry "$FAULT"
  need_image multilayer
  local pfx n
  pfx=flaky500-$(uniq_tag)
  b_ok pull "$FAULT/$pfx/multilayer"
  verify_pulled "$FAULT/$pfx/multilayer:latest" multilayer
  fault_stats
  n=$(hp stat-count "$T_DIR/fault-stats.json" "/v2/$pfx/multilayer/manifests/latest")
  assert_ge "$n" 2 "requests for the manifest (first one got a 500)"
}

test_fault_ratelimit() {
  need_registry "$FAULT"
  need_image busybox
  local pfx
  pfx=ratelimit-$(uniq_tag)
  b_ok pull "$FAULT/$pfx/busybox"
  assert_ge "$B_SECS" 1.0 "seconds the pull took (Retry-After: 1 must be honoured)"
  verify_pulled "$FAULT/$pfx/busybox:latest" busybox
}

test_fault_stall() {
  need_registry "$FAULT"
  write_config '{"stall_timeout_seconds": 2, "retries": 1}'
  BERTH_TEST_TIMEOUT=60 b_fails pull "$FAULT/stall/busybox"
  assert_le "$B_SECS" 20 "seconds until the stalled pull gave up (stall 2 s, 1 retry)"
  assert_icontains "$B_MSG" "stall" "error message"
  assert_store_empty
}

test_fault_schema1() {
  need_registry "$FAULT"
  b_fails pull "$FAULT/schema1/busybox"
  assert_icontains "$B_MSG" "schema 1" "error message"
  assert_store_empty
}

test_fault_notfound() {
  need_registry "$FAULT"
  b_fails pull "$FAULT/notfound/busybox"
  [[ ${B_MSG,,} == *"not found"* || $B_MSG == *404* || $B_MSG == *MANIFEST_UNKNOWN* ]] ||
    fail "error message does not say the image was not found: $B_MSG"
  assert_contains "$B_MSG" "notfound/busybox" "error message"
  assert_store_empty
}

test_fault_unknown_repo() {
  need_registry "$PLAIN"
  b_fails pull "$PLAIN/test/no-such-image"
  assert_contains "$B_MSG" "test/no-such-image" "error message"
  assert_store_empty
}

test_fault_wrongtype() {
  need_registry "$FAULT"
  need_image multilayer
  b_ok pull "$FAULT/wrongtype/multilayer"
  verify_pulled "$FAULT/wrongtype/multilayer:latest" multilayer
}

test_fault_wrongtype_index() {
  need_registry "$FAULT"
  need_image multiplatform
  b_ok pull "$FAULT/wrongtype/multiplatform"
  verify_pulled "$FAULT/wrongtype/multiplatform:latest" multiplatform "$HOST_ARCH"
}

test_connection_refused() {
  # nothing listens on 127.0.0.1:1
  write_config '{"retries": 0}'
  b_fails pull 127.0.0.1:1/test/busybox
  assert_contains "$B_MSG" "127.0.0.1:1" "error message"
  assert_store_empty
}

# ====================================================================== crash and concurrency

test_kill_mid_pull() {
  need_registry "$FAULT"
  need_image busybox
  berth_cmd pull -q "$FAULT/slow/busybox"
  setsid "${B_CMD[@]}" >"$T_DIR/killed.out" 2>"$T_DIR/killed.err" </dev/null &
  local pid=$!
  sleep 1
  kill -0 "$pid" 2>/dev/null || fail "the slow pull ended within 1 s, so it could not be killed mid-way: $(cat "$T_DIR/killed.err")"
  log "store tmp/ at the kill: $(ls -A "$STORE/tmp" 2>/dev/null | tr '\n' ' ')"
  kill_session "$pid"
  wait "$pid" || true
  log "after kill -9: tmp/ $(ls -A "$STORE/tmp" | tr '\n' ' '); layers/ $(ls -A "$STORE/layers" | tr '\n' ' ')"
  assert_eq "$(image_count)" 0 "images after the killed pull"
  b_ok pull "$FAULT/ok/busybox"
  verify_pulled "$FAULT/ok/busybox:latest" busybox
  # the complete file, not a resumed half
  assert_rootfs "$FAULT/ok/busybox:latest" bin/busybox
  assert_eq "$(stat -c %s "$(cat "$T_DIR/last_rootfs_file")")" "$(stat -c %s /bin/busybox)" "size of bin/busybox (/bin/busybox is the fixture's source)"
}

test_kill_then_same_ref() {
  # kill, then pull the very same (slow) reference again
  need_registry "$FAULT"
  need_image multilayer
  local ref=$FAULT/slow/multilayer
  berth_cmd pull -q "$ref"
  setsid "${B_CMD[@]}" >"$T_DIR/killed.out" 2>"$T_DIR/killed.err" </dev/null &
  local pid=$!
  sleep 1
  kill -0 "$pid" 2>/dev/null || fail "the slow pull ended within 1 s: $(cat "$T_DIR/killed.err")"
  kill_session "$pid"
  wait "$pid" || true
  b_ok pull -q "$ref"
  verify_pulled "$ref:latest" multilayer
}

test_concurrent_pulls() {
  need_registry "$PLAIN"
  need_image debian
  local ref=$PLAIN/test/debian rc1=0 rc2=0
  berth_cmd pull -q "$ref"
  "${B_CMD[@]}" >"$T_DIR/p1.out" 2>"$T_DIR/p1.err" </dev/null &
  local p1=$!
  "${B_CMD[@]}" >"$T_DIR/p2.out" 2>"$T_DIR/p2.err" </dev/null &
  local p2=$!
  wait "$p1" || rc1=$?
  wait "$p2" || rc2=$?
  log "pull 1: exit $rc1: $(cat "$T_DIR/p1.err")"
  log "pull 2: exit $rc2: $(cat "$T_DIR/p2.err")"
  assert_eq "$rc1" 0 "exit code of the first concurrent pull"
  assert_eq "$rc2" 0 "exit code of the second concurrent pull"
  assert_eq "$(image_count)" 1 "number of images"
  verify_pulled "$ref:latest" debian
}

test_concurrent_shared_layer() {
  # two different images that share the busybox layer, at the same time
  need_registry "$PLAIN"
  local rc1=0 rc2=0
  berth_cmd pull -q "$PLAIN/test/busybox"
  "${B_CMD[@]}" >"$T_DIR/p1.out" 2>"$T_DIR/p1.err" </dev/null &
  local p1=$!
  berth_cmd pull -q "$PLAIN/test/zstd"
  "${B_CMD[@]}" >"$T_DIR/p2.out" 2>"$T_DIR/p2.err" </dev/null &
  local p2=$!
  wait "$p1" || rc1=$?
  wait "$p2" || rc2=$?
  assert_eq "$rc1" 0 "exit code of the busybox pull: $(cat "$T_DIR/p1.err")"
  assert_eq "$rc2" 0 "exit code of the zstd pull: $(cat "$T_DIR/p2.err")"
  verify_pulled "$PLAIN/test/busybox:latest" busybox
  verify_pulled "$PLAIN/test/zstd:latest" zstd
}

test_repull_is_noop() {
  need_registry "$PLAIN"
  b_ok pull "$PLAIN/test/multilayer"
  local ino1 ino2
  ino1=$(stat -c %i "$(layer_path_of "$ML" data/keep.txt)/data/keep.txt")
  b_ok pull "$PLAIN/test/multilayer"
  ino2=$(stat -c %i "$(layer_path_of "$ML" data/keep.txt)/data/keep.txt")
  assert_eq "$ino2" "$ino1" "inode of an unpacked file after a second pull (layers must be reused)"
  verify_pulled "$ML" multilayer
}

# ====================================================================== load

test_load_oci_dir() {
  need_image busybox
  b_ok load "$IMAGES/busybox"
  local names
  names=$(image_names)
  assert_eq "$(echo "$names" | wc -l)" 1 "number of names after load"
  assert_contains "$names" "localhost/busybox" "name given to the loaded layout"
  verify_pulled "$names" busybox
}

test_load_oci_tar() {
  need_file "$IMAGES/busybox-oci.tar" "run scripts/fixtures.sh"
  b_ok load "$IMAGES/busybox-oci.tar"
  local names
  names=$(image_names)
  [ -n "$names" ] || fail "the loaded image has no name"
  verify_pulled "$(echo "$names" | head -n 1)" busybox
}

test_load_docker_save() {
  need_file "$IMAGES/busybox-docker-save.tar" "run scripts/fixtures.sh"
  b_ok load "$IMAGES/busybox-docker-save.tar"
  local name=docker.io/library/busybox:latest d
  d=$(image_field "$name" digest) || fail "docker save's RepoTags busybox:latest should give $name; have: $(image_names)"
  assert_eq "$(image_field "$name" config)" "$(fixture_config busybox)" "config digest"
  check_content "$name" busybox
  assert_store_consistent
}

test_load_name() {
  need_image multilayer
  b_ok load --name localhost/renamed/multi:v1 "$IMAGES/multilayer"
  assert_eq "$(image_names)" localhost/renamed/multi:v1 "names after load --name"
  verify_pulled localhost/renamed/multi:v1 multilayer
}

test_load_name_docker_save() {
  need_file "$IMAGES/busybox-docker-save.tar"
  b_ok load --name example.com/saved:1 "$IMAGES/busybox-docker-save.tar"
  assert_eq "$(image_names)" example.com/saved:1 "names after load --name"
  check_content example.com/saved:1 busybox
}

test_load_multiplatform() {
  need_image multiplatform
  b_ok load --name localhost/mp:1 "$IMAGES/multiplatform"
  verify_pulled localhost/mp:1 multiplatform "$HOST_ARCH"
}

test_load_neither() {
  mkdir -m 755 "$T_DIR/notimage"
  echo hello >"$T_DIR/notimage/file.txt"
  chmod 644 "$T_DIR/notimage/file.txt"
  b_fails load "$T_DIR/notimage"
  assert_contains "$B_MSG" "notimage" "error message"
  assert_icontains "$B_MSG" "neither" "error message"
  assert_store_empty
}

test_load_missing_path() {
  b_fails load "$T_DIR/does-not-exist"
  assert_contains "$B_MSG" "does-not-exist" "error message"
}

test_load_corrupt_blob() {
  # a layout whose layer blob does not match its digest must be refused
  need_image busybox
  cp -a "$IMAGES/busybox" "$T_DIR/corrupt"
  chmod -R a+rX "$T_DIR/corrupt"
  local layer f
  layer=$(fixture_layers busybox)
  f=$T_DIR/corrupt/blobs/sha256/${layer#sha256:}
  printf '\xff' | dd of="$f" bs=1 seek=$(( $(stat -c %s "$f") / 2 )) conv=notrunc status=none
  b_fails load "$T_DIR/corrupt"
  assert_contains "$B_MSG" "$layer" "error message"
  assert_store_empty
}

# hidelib_run LIB ARGS: berth ARGS (B_RC, B_OUT, B_ERR as b_run) in a mount
# namespace where the shared library LIB is an empty file
hidelib_run() {
  local lib=$1; shift
  local B_WRAP=(unshare -m sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$lib")
  b_run "$@"
}

# libcrypto is loaded on first use (src/util/lazylib.c): without it, what
# hashes (load) fails naming the library and its package; what does not
# (version, images, run) works, so no create touches libcrypto
test_without_libcrypto() {
  need_image busybox
  need_image multilayer
  need_cmd unshare
  local lib
  lib=$(ldconfig -p | awk '$1 == "libcrypto.so.3" && /x86-64|aarch64/ {print $NF; exit}')
  [ -n "$lib" ] || fail "precondition: no libcrypto.so.3 in ldconfig -p"
  lib=$(readlink -f "$lib")
  b_ok load -q "$IMAGES/busybox"
  hidelib_run "$lib" --version
  assert_eq "$B_RC" 0 "exit of berth --version without libcrypto"
  hidelib_run "$lib" images
  assert_eq "$B_RC" 0 "exit of berth images without libcrypto"
  assert_contains "$B_OUT" localhost/busybox "berth images"
  hidelib_run "$lib" run --rm --no-mount-cwd --network none localhost/busybox echo no-libcrypto-needed
  assert_eq "$B_RC" 0 "exit of berth run without libcrypto: $B_ERR"
  assert_contains "$B_OUT" no-libcrypto-needed "berth run's output"
  hidelib_run "$lib" load -q "$IMAGES/multilayer"
  assert_eq "$B_RC" 125 "exit of berth load without libcrypto"
  assert_contains "$B_ERR" "berth: error: cannot load libcrypto.so.3" "error message"
  assert_contains "$B_ERR" "apt-get install libssl3" "error message"
  assert_eq "$(image_count)" 1 "images after the failed load"
}

# ====================================================================== rmi

test_rmi_shared_layers() {
  need_registry "$PLAIN"
  b_ok pull -q "$PLAIN/test/busybox"
  b_ok pull -q "$PLAIN/test/zstd"
  images_json
  local bb zs shared only
  bb=$(image_layer_digests "$PLAIN/test/busybox")
  zs=$(image_layer_digests "$PLAIN/test/zstd")
  shared=$(comm -12 <(echo "$bb" | sort) <(echo "$zs" | sort))
  only=$(comm -13 <(echo "$bb" | sort) <(echo "$zs" | sort))
  [ -n "$shared" ] && [ -n "$only" ] || fail "precondition: zstd should share a layer with busybox and have one of its own"
  b_ok rmi "$PLAIN/test/zstd"
  assert_contains "$B_OUT" "Untagged: $PLAIN/test/zstd:latest" "rmi output"
  assert_contains "$B_OUT" "$only" "rmi output (deleted layer)"
  assert_not_contains "$B_OUT" "$shared" "rmi output (the shared layer must stay)"
  assert_not_exists "$STORE/layers/${only#sha256:}" "zstd's own layer"
  assert_dir_nonempty "$STORE/layers/${shared#sha256:}/diff" "shared layer"
  assert_eq "$(image_names)" "$PLAIN/test/busybox:latest" "images left"
  verify_pulled "$PLAIN/test/busybox:latest" busybox
  b_ok rmi "$PLAIN/test/busybox"
  assert_not_exists "$STORE/layers/${shared#sha256:}" "the last user's layer"
  assert_store_empty
  assert_dir_empty "$STORE/blobs/sha256" "blobs after removing every image"
}

test_rmi_name_only() {
  need_registry "$PLAIN"
  need_repo "$PLAIN" library/busybox "$(fixture_digest busybox)"
  b_ok pull -q "$PLAIN/test/busybox"
  b_ok pull -q "$PLAIN/library/busybox"
  assert_eq "$(image_count)" 1 "images (two names, one image)"
  b_ok rmi "$PLAIN/test/busybox"
  assert_not_contains "$B_OUT" "Deleted layer" "rmi output"
  assert_eq "$(image_names)" "$PLAIN/library/busybox:latest" "names left"
  verify_pulled "$PLAIN/library/busybox:latest" busybox
}

test_rmi_unknown() {
  b_fails rmi localhost/no-such-image:latest
  assert_contains "$B_MSG" "localhost/no-such-image" "error message"
}

test_rmi_unknown_json() {
  b_run rmi --json localhost/no-such-image:latest
  assert_eq "$B_RC" 125 "exit code"
  "$PY" -m json.tool "$B_OUTF" >/dev/null || fail "rmi --json output is not JSON: $B_OUT"
  assert_contains "$B_OUT" "no-such-image" "rmi --json output"
}

test_rmi_keeps_other_store_users() {
  # layers used by a loaded image stay when a pulled image sharing them goes
  need_registry "$PLAIN"
  b_ok load --name localhost/bb:1 "$IMAGES/busybox"
  b_ok pull -q "$PLAIN/test/multiplatform"
  b_ok rmi "$PLAIN/test/multiplatform"
  verify_pulled localhost/bb:1 busybox
}

# ====================================================================== references and JSON

test_ref_invalid() { # REF NEEDLE
  b_fails pull "$1"
  assert_contains "$B_MSG" "$2" "error message for reference '$1'"
  assert_store_empty
}

test_ref_invalid_json() {
  b_run pull --json "$PLAIN/Test/busybox"
  assert_eq "$B_RC" 125 "exit code"
  "$PY" -m json.tool "$B_OUTF" >/dev/null || fail "pull --json error output is not JSON: $B_OUT"
  hp json-check "$B_OUTF" error code || fail "pull --json error output lacks error/code"
}

test_pull_json() {
  need_registry "$PLAIN"
  b_ok pull --json "$PLAIN/test/multilayer"
  "$PY" -m json.tool "$B_OUTF" >/dev/null || fail "pull --json output is not valid JSON: $B_OUT"
  hp json-check "$B_OUTF" name digest config platform layers notes || fail "pull --json output lacks keys"
  assert_eq "$("$PY" -S -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["name"], j["digest"], len(j["layers"]))' "$B_OUTF")" \
    "$PLAIN/test/multilayer:latest $(fixture_digest multilayer) 3" "name, digest and layer count in pull --json"
  b_ok images --json
  "$PY" -m json.tool "$B_OUTF" >/dev/null || fail "images --json output is not valid JSON"
  b_ok load --json --name localhost/x:1 "$IMAGES/busybox"
  "$PY" -m json.tool "$B_OUTF" >/dev/null || fail "load --json output is not valid JSON: $B_OUT"
}

test_images_empty() {
  b_ok images --json
  assert_eq "$("$PY" -S -c 'import json,sys; print(json.load(open(sys.argv[1])))' "$B_OUTF")" "[]" "images --json of an empty store"
  b_ok images
  assert_contains "$B_OUT" "NAME" "images header"
}

# ====================================================================== mirrors

test_mirror() {
  need_registry "$PLAIN"
  need_image busybox
  need_repo "$PLAIN" library/busybox "$(fixture_digest busybox)"
  write_config "{\"registry_mirrors\": {\"docker.io\": [\"$PLAIN\"]}}"
  BERTH_LOG=debug b_ok pull busybox
  assert_not_contains "$B_ERR" "registry-1.docker.io" "berth's debug output (must not reach Docker Hub)"
  assert_not_contains "$B_ERR" "trying the next source" "berth's output"
  verify_pulled docker.io/library/busybox:latest busybox
}

test_mirror_first_fails() {
  # an unreachable first mirror, then the working one: still no Docker Hub
  need_registry "$PLAIN"
  need_repo "$PLAIN" library/busybox "$(fixture_digest busybox)"
  write_config "{\"retries\": 0, \"registry_mirrors\": {\"docker.io\": [\"127.0.0.1:1\", \"$PLAIN\"]}}"
  BERTH_LOG=debug b_ok pull docker.io/library/busybox
  assert_contains "$B_ERR" "127.0.0.1:1" "warning about the dead mirror"
  assert_not_contains "$B_ERR" "registry-1.docker.io" "berth's debug output (must not reach Docker Hub)"
  verify_pulled docker.io/library/busybox:latest busybox
}

# ====================================================================== hostile layers

HOSTILE_T=/tmp/berth-hostile-target-$BERTH_MODE-$$
HOSTILE_DIR=$SUITE_TMP/hostile
trap 't_cleanup_suite; rm -rf "$HOSTILE_T"' EXIT

hostile_generate() {
  HOSTILE_GEN_LOG=$SUITE_TMP/hostile.log
  mkdir -p "$HOSTILE_DIR"
  HOSTILE_TARGET=$HOSTILE_T "$PY" "$REPO/tests/fixtures/hostile.py" "$HOSTILE_DIR" >"$HOSTILE_GEN_LOG" 2>&1 &&
    chmod -R a+rX "$HOSTILE_DIR"
}

snapshot_tree() { (cd "$1" && find . -printf '%p|%y|%s|%m|%U|%G|%l\n' | sort && find . -type f -exec md5sum {} + | sort); }
snapshot_host() {
  stat -c '%n %h %i %s %Y %a %u' /etc/passwd /etc/hostname /etc/shadow /etc/group 2>&1
  sha256sum /etc/passwd /etc/hostname /etc/group 2>&1
  ls -A /
}
# berth-pwned files anywhere an escape could put them, except inside the store's layer dirs
find_pwned() {
  find / /etc /root /home /tmp /var/tmp -xdev -maxdepth 2 -name 'berth-pwned*' 2>/dev/null || true
  find "$HOSTILE_T" "$SUITE_TMP" \( -path "$STORE/layers/*/diff" -prune \) -o -name 'berth-pwned*' -print 2>/dev/null || true
}

test_hostile() {
  local case=$1 T=$HOSTILE_T name=localhost/hostile/$1:latest
  [ -f "$HOSTILE_DIR/cases.json" ] || fail "precondition: hostile.py did not write its layouts: $(cat "$HOSTILE_GEN_LOG")"
  need_file "$HOSTILE_DIR/$case/index.json"
  need_file /etc/hostname
  local acceptable desc
  acceptable=$(hp hostile-case "$HOSTILE_DIR/cases.json" "$case" acceptable)
  desc=$(hp hostile-case "$HOSTILE_DIR/cases.json" "$case" description)
  rm -rf "$T"
  mkdir -p "$T"
  echo keep >"$T/keepme"
  # rootless: berth runs as the test user, who must be able to do damage for the test to mean anything
  [ "$BERTH_MODE" = root ] || chown -R "$TEST_USER:" "$T"
  local before_t before_h pwned
  before_t=$(snapshot_tree "$T")
  before_h=$(snapshot_host)
  [ -z "$(find_pwned)" ] || fail "precondition: berth-pwned files exist before the test: $(find_pwned)"
  B_GUARD_TRIPPED=0
  B_GUARD_KB=$((256 * 1024)) b_run load --name "$name" "$HOSTILE_DIR/$case"
  [ "$B_GUARD_TRIPPED" = 0 ] || fail "berth wrote more than 256 MiB for the $case layer (sparse holes written as data?)"
  # --- nothing outside the store changed
  assert_eq "$(snapshot_tree "$T")" "$before_t" "contents of HOSTILE_TARGET $T"
  assert_eq "$(snapshot_host)" "$before_h" "/etc/passwd, /etc/hostname and / (stat and checksums)"
  pwned=$(find_pwned)
  [ -z "$pwned" ] || fail "berth-pwned files outside the image's layer dirs: $pwned"
  # --- the outcome is one cases.json accepts
  if [ "$B_RC" = 0 ]; then
    [[ " $acceptable " == *" neutralize "* ]] || fail "berth accepted the $case layer, which must be refused ($desc)"
    assert_rootfs "$name" hostile-done "$case"$'\n'
    local l
    for l in $(image_layers "$name"); do
      [ -d "$l" ] && [ ! -L "$l" ] || fail "layer dir $l is no longer a plain directory"
    done
    if declare -F "hostile_check_${case//-/_}" >/dev/null; then "hostile_check_${case//-/_}"; fi
    assert_dir_empty "$STORE/tmp" "store tmp dir"
  else
    [[ " $acceptable " == *" fail "* ]] || fail "berth refused the $case layer, which should be unpacked safely ($desc): $B_ERR"
    assert_eq "$B_RC" 125 "exit code"
    grep -q '^berth: error: .' "$B_ERRF" || fail "no 'berth: error: <message>' line: $B_ERR"
    # a clear message says that (and which) layer of the image was refused
    assert_icontains "$(grep '^berth: error: ' "$B_ERRF")" "layer" "error message"
    images_json
    ! image_field "$name" digest >/dev/null 2>&1 || fail "the refused image $name is in the store"
    assert_dir_empty "$STORE/tmp" "store tmp dir after the refused load"
  fi
}

hostile_check_abspath() {
  assert_rootfs "$name" "${HOSTILE_T#/}/berth-pwned" $'pwned\n'
}
hostile_check_symlink_dot() { assert_rootfs "$name" berth-pwned $'pwned\n'; }
hostile_check_symlink_slash() { assert_rootfs "$name" berth-pwned $'pwned\n'; }
hostile_check_devices() {
  assert_rootfs "$name" dev/fifo
  [ -p "$(cat "$T_DIR/last_rootfs_file")" ] || fail "dev/fifo is not a fifo"
  local f
  for f in dev/evil-mem dev/evil-sda; do
    if f=$(rootfs_file "$name" "$f"); then
      log "$f was created inside the layer: $(ls -l "$f")"
    fi
  done
}
check_sparse() { # FILE
  assert_rootfs "$name" "$1"
  local f
  f=$(cat "$T_DIR/last_rootfs_file")
  assert_eq "$(stat -c %s "$f")" 68719476736 "apparent size of $1 (64 GiB)"
  local kb=$(( $(stat -c '%b * %B' "$f") / 1024 ))
  log "$1 uses $kb KiB on disk ($(du -k "$f" | cut -f1) KiB by du)"
  assert_le "$(du -k "$f" | cut -f1)" 1024 "KiB that $1 uses on disk"
  assert_eq "$(dd if="$f" bs=4096 skip=256 count=1 status=none | head -c 18)" "berth-sparse-data" "data at 1 MiB in $1"
  assert_eq "$(dd if="$f" bs=4096 count=1 status=none | tr -d '\0' | wc -c)" 0 "non-zero bytes in the hole at 0 of $1"
  assert_rootfs "$name" after.txt $'after-sparse\n'
}
hostile_check_sparse() { check_sparse huge.img; }
hostile_check_sparse_pax() {
  check_sparse huge-pax.img
  local junk
  junk=$(for l in $(image_layers "$name"); do find "$l" -name 'GNUSparseFile*'; done)
  [ -z "$junk" ] || fail "the PAX sparse map was unpacked as a file: $junk"
}

test_hostile_sweep() {
  # one last look over the whole root filesystem
  local now base i
  for i in $(seq 600); do kill -0 "$PWNED_BASELINE_PID" 2>/dev/null || break; sleep 0.2; done
  ! kill -0 "$PWNED_BASELINE_PID" 2>/dev/null || fail "the baseline search for berth-pwned files did not finish"
  # (files inside layer dirs of any suite's store are the legitimate, confined ones)
  local confined='^/tmp/berth-it\.[^/]+/t[0-9]+/root/storage/(layers/[0-9a-f]{64}|tmp/layer-[0-9a-f]{64})/diff/'
  base=$(grep -Ev "$confined" "$SUITE_TMP/pwned-baseline" | sort)
  now=$(find / -xdev -name 'berth-pwned*' 2>/dev/null | grep -Ev "$confined" | sort)
  [ "$now" = "$base" ] || fail "berth-pwned files appeared during the suite: $(comm -13 <(echo "$base") <(echo "$now"))"
  [ ! -e "$HOSTILE_T" ] || [ "$(cat "$HOSTILE_T/keepme" 2>/dev/null)" = keep ] || fail "$HOSTILE_T/keepme was changed"
}

# ====================================================================== the suite

echo "# berth image suite, mode $BERTH_MODE, binary $BERTH_BIN_SRC"
t_prereq() {
  [ -x "$BERTH_BIN" ] || fail "$BERTH_BIN_SRC is missing: run make"
  if [ "$BERTH_MODE" = rootless ]; then
    [ -n "$TEST_UID" ] || fail "test user $TEST_USER does not exist: run scripts/setup-test-user.sh"
    [ -n "$SUBUID_START" ] && [ -n "$SUBGID_START" ] || fail "$TEST_USER has no /etc/subuid or /etc/subgid range: run scripts/setup-test-user.sh"
    runuser -u "$TEST_USER" -- test -x "$BERTH_BIN" || fail "$TEST_USER cannot run $BERTH_BIN (directory permissions?)"
    runuser -u "$TEST_USER" -- test -r "$IMAGES/busybox/index.json" || fail "$TEST_USER cannot read $IMAGES"
  fi
  [ -x "$PY" ] || fail "python3 is missing"
  need_cmd curl
  for i in "${SMALL_IMAGES[@]}" debian; do need_image "$i"; done
  need_registry "$PLAIN"
  need_registry "$TLS" https
  need_registry "$AUTH" https
  need_registry "$HUB"
  need_registry "$FAULT"
  b_ok version
}
# progress on a real terminal: every line fits the width, and redraws land
# in place (a wrapped line once left garbage rows on an 80-column terminal)
test_progress_fits_terminal() {
  command -v tmux >/dev/null || fail "tmux is not installed (scripts/install-deps.sh installs it)"
  local cols sess cmd i screen
  for cols in 80 60; do
    berth_cmd pull "$FAULT/slow/multilayer"
    sess=berth-$$-$RANDOM
    for i in "${!B_CMD[@]}"; do [ "${B_CMD[$i]}" = timeout ] && B_CMD[$i]="timeout --foreground"; done
    printf -v cmd '%s ' "${B_CMD[@]}"
    tmux new-session -d -s "$sess" -x "$cols" -y 30 "$cmd; echo EXITED-\$?; sleep 30"
    # mid-pull: a bar (80) or figures (60), each within the width
    sleep 2.5
    screen=$(tmux capture-pane -p -t "$sess")
    echo "$screen"
    assert_contains "$screen" "kB/s" "progress figures while pulling"
    for i in $(seq 1 40); do
      screen=$(tmux capture-pane -p -t "$sess")
      [[ $screen == *EXITED-* ]] && break
      sleep 0.5
    done
    tmux kill-session -t "$sess" 2>/dev/null || true
    echo "$screen"
    assert_contains "$screen" "EXITED-0"
    assert_eq "$(grep -c '^sha256:[0-9a-f]\{12\} ' <<<"$screen")" 3 "one line per layer, drawn in place ($cols columns)"
    assert_eq "$(grep -c 'done' <<<"$screen")" 3 "every layer's last line says done"
    assert_eq "$(grep -c 'ETA\|/s$' <<<"$screen")" 0 "no line of an earlier draw is left"
    b_ok rmi "$FAULT/slow/multilayer"
  done
}

t_run "preconditions: berth, test user, fixture images, registries" t_prereq

# the whole-disk baseline for the last hostile test, taken in the background
find / -xdev -name 'berth-pwned*' >"$SUITE_TMP/pwned-baseline" 2>/dev/null &
PWNED_BASELINE_PID=$!
trap 'kill "$PWNED_BASELINE_PID" 2>/dev/null; t_cleanup_suite; rm -rf "$HOSTILE_T"' EXIT
hostile_generate || true

for img in "${SMALL_IMAGES[@]}"; do
  t_run "pull $img: plain http (5000)" test_pull plain "$img"
  t_run "pull $img: https with CA from certs_dirs (5001)" test_pull tls "$img"
  t_run "pull $img: https + basic auth (5002)" test_pull auth "$img"
  t_run "pull $img: token hub + CDN redirect (5003)" test_pull hub "$img"
  t_run "pull $img: faultreg ok/ (5006)" test_pull fault "$img"
done
t_run "pull debian (5000): /usr/bin/dpkg etc." test_debian
t_run "https without the CA fails naming certs.d" test_tls_without_ca
t_run "https via localhost:5001 name" test_tls_localhost_name
t_run "basic auth: wrong password fails clearly" test_auth_bad_password
t_run "basic auth: missing credentials fail clearly" test_auth_missing_creds
t_run "basic auth: credentials of another host are not used" test_auth_creds_other_host_only
t_run "hub: library/busybox (token)" test_hub_pull library/busybox busybox
t_run "hub: library/zstd (token)" test_hub_pull library/zstd zstd
t_run "hub: library/multiplatform (token, index)" test_hub_pull library/multiplatform multiplatform
t_run "hub: accesstest/busybox (access_token)" test_hub_pull accesstest/busybox busybox
t_run "hub: private/multilayer with credentials" test_hub_pull private/multilayer multilayer creds
t_run "hub: private/access-busybox with credentials (access_token)" test_hub_pull private/access-busybox busybox creds
t_run "hub: private/multilayer without credentials fails" test_hub_private_without_creds
t_run "hub: private/multilayer with a wrong password fails" test_hub_private_bad_creds
t_run "hub: the CDN violations log is empty" test_cdn_log_empty

t_run "multilayer: whiteouts are char 0/0 in layer 2" test_ml_whiteouts
t_run "multilayer: opaque dir xattr" test_ml_opaque
t_run "multilayer: hardlinks share an inode" test_ml_hardlinks
t_run "multilayer: symlink targets intact" test_ml_symlinks
t_run "multilayer: setuid bit kept" test_ml_setuid
t_run "multilayer: owner 1000 mapped" test_ml_owner
t_run "multilayer: user.* xattr kept" test_ml_xattr
t_run "multilayer: merged view and mtimes" test_ml_merged_view

t_run "platform: default is the host's" test_platform_default
t_run "platform: --platform linux/arm64" test_platform_arm64
t_run "platform: linux/ppc64le fails naming the available ones" test_platform_missing
t_run "platform: malformed --platform fails" test_platform_invalid

t_run "fault: baddigest fails naming the blob, leaves nothing" test_fault_baddigest
t_run "fault: badmanifest (by tag) fails" test_fault_badmanifest
t_run "fault: badmanifest (by digest) fails" test_fault_badmanifest_by_digest
t_run "pull by digest" test_pull_by_digest
t_run "fault: truncate resumes with Range" test_fault_truncate
t_run "fault: flaky500 retried" test_fault_flaky500
t_run "fault: ratelimit honours Retry-After" test_fault_ratelimit
t_run "fault: stall gives up within the bound" test_fault_stall
t_run "fault: schema1 refused" test_fault_schema1
t_run "fault: notfound fails" test_fault_notfound
t_run "fault: unknown repository fails" test_fault_unknown_repo
t_run "fault: wrongtype Content-Type still pulls" test_fault_wrongtype
t_run "fault: wrongtype on an index still pulls" test_fault_wrongtype_index
t_run "fault: connection refused fails" test_connection_refused

t_run "kill -9 mid-pull, then pull again" test_kill_mid_pull
t_run "kill -9 mid-pull, then the same slow ref again" test_kill_then_same_ref
t_run "two concurrent pulls of one image" test_concurrent_pulls
t_run "concurrent pulls of images sharing a layer" test_concurrent_shared_layer
t_run "pulling again reuses the layers" test_repull_is_noop

t_run "load: OCI layout dir" test_load_oci_dir
t_run "load: OCI layout tar" test_load_oci_tar
t_run "load: docker save tar" test_load_docker_save
t_run "load: --name" test_load_name
t_run "load: --name on a docker save tar" test_load_name_docker_save
t_run "load: multi-platform layout" test_load_multiplatform
t_run "load: a dir that is neither fails" test_load_neither
t_run "load: missing path fails" test_load_missing_path
t_run "load: corrupt layer blob fails" test_load_corrupt_blob
t_run "without libcrypto: load fails naming it, run works" test_without_libcrypto

t_run "rmi: shared layers stay, unshared go" test_rmi_shared_layers
t_run "rmi: removing one of two names keeps the image" test_rmi_name_only
t_run "rmi: unknown name fails" test_rmi_unknown
t_run "rmi --json: unknown name" test_rmi_unknown_json
t_run "rmi: a loaded image keeps its shared layer" test_rmi_keeps_other_store_users

t_run "ref: uppercase repository" test_ref_invalid "$PLAIN/Test/busybox" '`Test`'
t_run "ref: bad tag" test_ref_invalid "$PLAIN/test/busybox:-bad" '`-bad`'
t_run "ref: bad digest" test_ref_invalid "$PLAIN/test/busybox@sha256:123" 'sha256:123'
t_run "ref: empty" test_ref_invalid "" "empty"
t_run "ref: bad registry host" test_ref_invalid "127.0.0.1:port/test/busybox" '127.0.0.1:port'
t_run "ref: trailing slash" test_ref_invalid "$PLAIN/test/" '`/`'
t_run "ref: --json error output" test_ref_invalid_json
t_run "pull/images/load --json output is valid JSON" test_pull_json
t_run "images: empty store" test_images_empty

t_run "mirror: docker.io busybox from 127.0.0.1:5000" test_mirror
t_run "mirror: dead first mirror, working second" test_mirror_first_fails

if [ -f "$HOSTILE_DIR/cases.json" ]; then
  for c in $("$PY" -S -c 'import json,sys; print(" ".join(c["case"] for c in json.load(open(sys.argv[1]))))' "$HOSTILE_DIR/cases.json"); do
    t_run "hostile: $c" test_hostile "$c"
  done
else
  t_run "hostile: generate the layouts" test_hostile none
fi
t_run "hostile: no berth-pwned anywhere on the root filesystem" test_hostile_sweep
t_run "progress fits an 80- and a 60-column terminal and redraws in place (tmux)" test_progress_fits_terminal

t_summary
