#!/bin/bash
# Preflight-guided setup, end to end (run in the test VM as the test user,
# BERTH_MODE=rootless): break the host one way at a time; `berth preflight`
# must name the problem and print a fix command; running that command
# literally, as the user (with sudo where it says so), must make the check
# pass, and then a container must start. Each test restores the host.
. "$(dirname "$0")/../integration/lib.sh"
CG=/sys/fs/cgroup
U=$(id -u "$TEST_USER")
[ "$BERTH_MODE" = rootless ] || { echo "not ok - run as BERTH_MODE=rootless"; echo "0 passed, 1 failed"; exit 1; }

pf() { b_run preflight --json; [ -s "$B_OUTF" ] || fail "preflight printed nothing: $B_ERR"; }
chk() { jq -r --arg n "$1" ".checks[] | select(.name == \$n) | .$2 | if . == null then empty else tostring end" "$B_OUTF"; }
ready() { jq -r .ready "$B_OUTF"; }
# broken CHECK READY: preflight says CHECK fails, and whether the host is still ready
# (without subordinate ids or newuidmap it is: containers get a single-id mapping)
broken() {
  pf
  assert_eq "$(chk "$1" passed)" false "$1 check on the broken host"
  assert_eq "$(ready)" "$2" "ready on the broken host"
  echo "# detail: $(chk "$1" detail)"
}
# apply_fix CHECK: run the printed fix, literally, as the test user
apply_fix() {
  local fx
  fx=$(chk "$1" fix)
  [ -n "$fx" ] || fail "preflight printed no fix command for $1: $(cat "$B_OUTF")"
  local json=$B_OUTF
  b_run preflight
  grep -qxF "     run: $fx" "$B_OUTF" || fail "the human output does not show the fix for $1 on its own line"
  B_OUTF=$json
  echo "# applying, as $TEST_USER: $fx"
  runuser -u "$TEST_USER" -- env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$BERTH_HOME" BERTH_ROOT="$BERTH_ROOT" \
    BERTH_CONFIG="$BERTH_CONFIG" sh -c "$fx" >"$T_DIR/fix.out" 2>&1 || fail "the fix failed: $(cat "$T_DIR/fix.out")"
}
# fixed CHECK: the check passes and the host is ready; a container starts
fixed() {
  pf
  assert_eq "$(chk "$1" passed)" true "$1 check after the fix"
  assert_eq "$(ready)" true "ready after the fix"
  b_ok create --json --no-mount-cwd --name "after-$1" ${2:-} localhost/busybox
  CREATED=$T_DIR/created.json
  cp "$B_OUTF" "$CREATED"
  b_ok exec "after-$1" echo up
  assert_eq "$B_OUT" up "a container after the fix"
}
cleanup_ctrs() { b_run rm --all --confirm -f >/dev/null 2>&1 || true; }

test_userns_max_zero() {
  local orig; orig=$(cat /proc/sys/user/max_user_namespaces)
  trap 'sysctl -qw user.max_user_namespaces='"$orig"'; rm -f /etc/sysctl.d/90-berth-userns.conf; cleanup_ctrs' EXIT
  b_ok load -q "$IMAGES/busybox"
  sysctl -qw user.max_user_namespaces=0
  broken user_namespaces false
  assert_contains "$(chk user_namespaces detail)" "user.max_user_namespaces=0"
  apply_fix user_namespaces
  assert_file_content /etc/sysctl.d/90-berth-userns.conf $'user.max_user_namespaces=28633\n'
  fixed user_namespaces --network=none
}

test_userns_clone_zero() {
  trap 'sysctl -qw kernel.unprivileged_userns_clone=1; rm -f /etc/sysctl.d/90-berth-userns-clone.conf; cleanup_ctrs' EXIT
  b_ok load -q "$IMAGES/busybox"
  sysctl -qw kernel.unprivileged_userns_clone=0
  broken user_namespaces false
  assert_contains "$(chk user_namespaces detail)" "unprivileged_userns_clone=0"
  apply_fix user_namespaces
  fixed user_namespaces --network=none
}

test_no_subids() {
  cp /etc/subuid "$T_DIR/subuid.orig"; cp /etc/subgid "$T_DIR/subgid.orig"
  trap 'cp "$T_DIR/subuid.orig" /etc/subuid; cp "$T_DIR/subgid.orig" /etc/subgid; cleanup_ctrs' EXIT
  # another user holds 100000-165535: the fix must pick a free range
  printf 'other:100000:65536\n' >/etc/subuid
  printf 'other:100000:65536\n' >/etc/subgid
  broken subordinate_ids true
  apply_fix subordinate_ids
  assert_eq "$(grep "^$TEST_USER:" /etc/subuid)" "$TEST_USER:165536:65536" "the new subuid range"
  assert_eq "$(grep "^$TEST_USER:" /etc/subgid)" "$TEST_USER:165536:65536" "the new subgid range"
  b_ok load -q "$IMAGES/busybox"
  fixed subordinate_ids --network=none
  # read from the host: inside, the map is shown relative to the parent
  # user namespace (rootless containers are made in berth's keeper's)
  local ipid; ipid=$(jq -r .init.pid "$BERTH_ROOT/containers/after-subordinate_ids/state.json")
  assert_contains "$(echo $(cat "/proc/$ipid/uid_map"))" "1 165536 65536" "the container maps the new range"
}

test_newuidmap_not_setuid() {
  trap 'chmod u+s /usr/bin/newuidmap /usr/bin/newgidmap; cleanup_ctrs' EXIT
  chmod u-s /usr/bin/newuidmap /usr/bin/newgidmap
  broken newuidmap true
  apply_fix newuidmap
  assert_eq "$(stat -c %A /usr/bin/newuidmap | cut -c4)" s "newuidmap setuid again"
  b_ok load -q "$IMAGES/busybox"
  fixed newuidmap --network=none
}

test_cgroups_not_delegated() {
  trap 'printf "[Service]\nDelegate=cpu cpuset io memory pids\n" >/etc/systemd/system/user@.service.d/delegate.conf; systemctl daemon-reload; cleanup_ctrs' EXIT
  rm -f /etc/systemd/system/user@.service.d/delegate.conf
  systemctl daemon-reload
  assert_eq "$(stat -c %u $CG/user.slice/user-$U.slice/user@$U.service)" 0 "user@$U.service taken back"
  export VM_NO_SCOPE=1
  b_ok load -q "$IMAGES/busybox"
  # without a delegated user manager, systemd-run --user cannot help
  runuser -u "$TEST_USER" -- systemd-run --user --scope -p Delegate=yes true 2>"$T_DIR/sr.err" && fail "systemd-run --user worked without delegation"
  broken cgroups true
  assert_contains "$(chk cgroups detail)" "not delegated to this user"
  assert_eq "$(chk cgroups after_fix)" "log in again"
  assert_eq "$(chk cgroups run_with)" "systemd-run --user --scope -p Delegate=yes"
  apply_fix cgroups
  grep -q '^Delegate=cpu cpuset io memory pids$' /etc/systemd/system/user@.service.d/delegate.conf || fail "the drop-in was not written"
  # "log in again" has nothing to do here; then berth runs the way preflight says (run_with)
  unset VM_NO_SCOPE
  fixed cgroups "--network=none --memory 64m"
  assert_eq "$(jq -r .limits_applied "$CREATED")" true "limits applied after the fix"
}

test_tun_unusable() {
  trap 'modprobe tun 2>/dev/null; chmod 0666 /dev/net/tun 2>/dev/null; cleanup_ctrs' EXIT
  rmmod tun 2>/dev/null || chmod 0600 /dev/net/tun
  b_ok load -q "$IMAGES/busybox"
  broken network_helper true
  assert_contains "$(chk network_helper detail)" "/dev/net/tun not usable"
  apply_fix network_helper
  fixed network_helper
  b_ok status --json after-network_helper
  assert_eq "$(jq -r .metadata.network "$B_OUTF")" bridge "the default bridge network is used"
}

test_overlay_unavailable() {
  cleanup_ctrs
  trap 'sysctl -qw kernel.modprobe=/sbin/modprobe; modprobe overlay; rm -f /etc/modules-load.d/berth-overlay.conf; cleanup_ctrs' EXIT
  rmmod overlay || fail "cannot unload overlay (still in use?)"
  sysctl -qw kernel.modprobe=/bin/false # no loading on demand
  b_ok load -q "$IMAGES/busybox"
  broken overlay true
  assert_contains "$(chk overlay detail)" "not available"
  b_ok create --no-mount-cwd --network none --name before localhost/busybox
  assert_contains "$B_ERR" "copied from the layers" "without overlay create falls back to a copied root"
  broken overlay true
  apply_fix overlay
  fixed overlay --network=none
  assert_not_contains "$B_ERR" "copied from the layers" "overlay is used after the fix"
  assert_file_content /etc/modules-load.d/berth-overlay.conf $'overlay\n'
}

test_store_nearly_full() {
  mkdir -p /mnt/small
  mount /dev/vdb /mnt/small || fail "cannot mount the small disk"
  mkdir -p /mnt/small/store && chown "$TEST_USER:" /mnt/small/store
  BERTH_ROOT=/mnt/small/store
  trap 'cleanup_ctrs; umount /mnt/small' EXIT
  b_ok load -q "$IMAGES/busybox"
  b_ok create -q --no-mount-cwd --network none --name filler localhost/busybox
  local free mb
  free=$(df -B1 /mnt/small | awk 'NR==2{print $4}')
  mb=$(( (free - 700000000) / 1048576 ))
  b_ok exec filler dd if=/dev/zero of=/fill bs=1M count=$mb
  # the filler stops: its space is berth's to give back
  kill -9 "$(jq -r .init.pid "$BERTH_ROOT/containers/filler/state.json")"
  sleep 1
  broken disk_space false
  assert_eq "$(chk disk_space fix)" "berth rm filler" "the fix names the stopped container"
  apply_fix disk_space
  fixed disk_space --network=none
}

test_store_without_user_xattrs() {
  # tmpfs takes user.* xattrs from Linux 6.6 on: before that a rootless store there cannot hold opaque directories
  mkdir -p /mnt/tmpfs && mount -t tmpfs -o size=2g tmpfs /mnt/tmpfs && mkdir /mnt/tmpfs/store && chown "$TEST_USER:" /mnt/tmpfs/store
  trap 'umount /mnt/tmpfs' EXIT
  BERTH_ROOT=/mnt/tmpfs/store
  pf
  local maj min
  IFS=. read -r maj min _ <<<"$(uname -r)"
  if [ "$maj" -lt 6 ] || { [ "$maj" = 6 ] && [ "$min" -lt 6 ]; }; then
    assert_eq "$(chk overlay passed)" false "overlay on a tmpfs store before 6.6"
    assert_contains "$(chk overlay detail)" "takes no user.* extended attributes"
    assert_contains "$(chk overlay guidance)" "data_dir"
    # and the store refuses such images with the reason, instead of losing the opaque directory
    cp -a "$IMAGES/multilayer" "$T_DIR/multilayer" && chmod -R a+rX "$T_DIR/multilayer"
    b_fails load -q "$T_DIR/multilayer"
    assert_contains "$B_MSG" "xattr support"
  else
    assert_eq "$(chk overlay passed)" true "overlay on a tmpfs store from 6.6 on"
    cp -a "$IMAGES/multilayer" "$T_DIR/multilayer" && chmod -R a+rX "$T_DIR/multilayer"
    b_ok load -q "$T_DIR/multilayer"
    b_ok create --no-mount-cwd --network none --name c localhost/multilayer
    b_ok exec c ls /data/opaque
    assert_eq "$B_OUT" new.txt "an opaque directory on a tmpfs store"
    b_ok rm -f c
  fi
}

t_run "user namespaces off (max_user_namespaces=0): fixed by the printed command" test_userns_max_zero
if [ -f /proc/sys/kernel/unprivileged_userns_clone ]; then
  t_run "user namespaces off (unprivileged_userns_clone=0): fixed by the printed command" test_userns_clone_zero
else
  echo "# this kernel has no kernel.unprivileged_userns_clone (a Debian patch): that case is not run"
fi
t_run "no /etc/subuid, /etc/subgid range: fixed by the printed usermod (a free range)" test_no_subids
t_run "newuidmap without setuid: fixed by the printed chmod" test_newuidmap_not_setuid
t_run "cgroup controllers not delegated: fixed by the printed drop-in, then systemd-run" test_cgroups_not_delegated
t_run "/dev/net/tun not usable: fixed by the printed modprobe + chmod" test_tun_unusable
t_run "overlay not available: fixed by the printed modprobe" test_overlay_unavailable
t_run "store nearly full: fixed by the printed berth rm" test_store_nearly_full
t_run "store on tmpfs: no user xattrs before 6.6 (reported), overlay from 6.6 on" test_store_without_user_xattrs
t_summary
