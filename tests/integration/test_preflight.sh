#!/bin/bash
# preflight: the pass path of every check on this host, and each fail path
# that can be staged here without breaking the host (private mount
# namespaces, a child user namespace, small tmpfs stores, a user without
# subordinate ids). Kernels that are too old and hosts without seccomp are
# staged in the VM matrix (issue #7), not here.
. "$(dirname "$0")/lib.sh"

# check NAME: fields of one check from $B_OUTF, as "passed|required|guidance"
check() { "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
c = [x for x in d["checks"] if x["name"] == sys.argv[2]]
if not c: print("MISSING"); sys.exit()
c = c[0]
print("\x1f".join([str(c["passed"]), str(c.get("required")), c.get("guidance", ""), c["detail"], c.get("fix", "")]))' "$B_OUTF" "$1"; }
passed() { check "$1" | cut -d$'\x1f' -f1; }
guidance() { check "$1" | cut -d$'\x1f' -f3; }
detail() { check "$1" | cut -d$'\x1f' -f4; }
fixcmd() { check "$1" | cut -d$'\x1f' -f5; }
# preflight with a fresh run dir (the overlay probe is cached there)
pf() { B_EXTRA_ENV="BERTH_RUNROOT=$T_DIR/run-$RANDOM" b_run preflight --json; }
# run preflight as this mode's user inside a wrapper command (e.g. unshare -m sh -c '...; exec "$@"')
pf_in() {
  local setup=$1
  berth_cmd preflight --json
  local -a cmd=("${B_CMD[@]}")
  unshare -m sh -c "$setup"' && exec "$@"' sh "${cmd[@]}" >"$T_DIR/pf.json" 2>"$T_DIR/pf.err" || true
  B_OUTF=$T_DIR/pf.json
}

test_all_pass_here() {
  pf
  assert_eq "$B_RC" 0 "ready host: exit 0"
  for c in kernel user_namespaces subordinate_ids newuidmap overlay seccomp disk_space; do
    assert_eq "$(passed $c)" True "$c passes here"
  done
  assert_contains "$(cat "$B_OUTF")" '"ready": true'
  assert_contains "$(cat "$B_OUTF")" '"runtime": "berth"'
  b_ok preflight
  assert_contains "$B_OUT" "ready:" "human output has a summary"
}

test_cgroup_check_by_mode() {
  pf
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    assert_contains "$(detail cgroups)" "cgroup v2"
  else
    assert_contains "$(detail cgroups)" "cgroup v1"
    if [ "$BERTH_MODE" = rootless ]; then
      assert_eq "$(passed cgroups)" False "rootless on cgroup v1: no limits"
      assert_contains "$(guidance cgroups)" "systemd.unified_cgroup_hierarchy=1" "the fix boots cgroup v2"
      assert_contains "$(cat "$B_OUTF")" '"ready": true' "missing limits do not make the host unready"
    else
      assert_eq "$(passed cgroups)" True
    fi
  fi
}

test_disk_space_low_and_full() {
  mkdir -p "$T_DIR/small" "$T_DIR/low"
  mount -t tmpfs -o size=512m tmpfs "$T_DIR/small"
  mount -t tmpfs -o size=3g tmpfs "$T_DIR/low"
  chmod 777 "$T_DIR/small" "$T_DIR/low"
  BERTH_ROOT=$T_DIR/small/root pf
  local s=$B_OUTF
  BERTH_ROOT=$T_DIR/low/root pf
  local l=$B_OUTF
  umount "$T_DIR/small" "$T_DIR/low"
  B_OUTF=$s
  assert_eq "$(passed disk_space)" False "under 1 GB free fails"
  assert_contains "$(guidance disk_space)" "berth rmi"
  assert_contains "$(guidance disk_space)" "data_dir"
  assert_eq "$(fixcmd disk_space)" "" "no container to remove: no fix command"
  assert_contains "$(cat "$s")" '"ready": false'
  B_OUTF=$l
  assert_eq "$(passed disk_space)" True "under 5 GB passes"
  assert_contains "$(detail disk_space)" "(low, consider pruning)"
}

test_newuidmap_without_setuid() {
  [ "$BERTH_MODE" = rootless ] || { pf; assert_eq "$(passed newuidmap)" True; return 0; }
  cp /usr/bin/newuidmap "$T_DIR/newuidmap"; chmod 0755 "$T_DIR/newuidmap"
  pf_in "mount --bind $T_DIR/newuidmap /usr/bin/newuidmap"
  assert_eq "$(passed newuidmap)" False "newuidmap without setuid"
  assert_contains "$(guidance newuidmap)" "sudo chmod u+s /usr/bin/newuidmap"
  assert_eq "$(fixcmd newuidmap)" "sudo chmod u+s /usr/bin/newuidmap /usr/bin/newgidmap" "the exact fix"
  assert_contains "$(cat "$B_OUTF")" '"ready": false'
}

test_no_subordinate_ids() {
  [ "$BERTH_MODE" = rootless ] || { pf; assert_contains "$(detail subordinate_ids)" "not needed"; return 0; }
  # this user's entries hidden: a private /etc/subuid and /etc/subgid without them
  grep -v "^$TEST_USER:" /etc/subuid >"$T_DIR/subuid" || true
  grep -v "^$TEST_USER:" /etc/subgid >"$T_DIR/subgid" || true
  chmod 644 "$T_DIR/subuid" "$T_DIR/subgid"
  pf_in "mount --bind $T_DIR/subuid /etc/subuid && mount --bind $T_DIR/subgid /etc/subgid"
  assert_eq "$(passed subordinate_ids)" False
  # the exact command, with 65536 ids that no other user's range touches
  local fx re='^sudo usermod --add-subuids ([0-9]+)-([0-9]+) --add-subgids ([0-9]+)-([0-9]+) '"$TEST_USER"'$'
  fx=$(fixcmd subordinate_ids)
  [[ $fx =~ $re ]] || fail "fix is not one usermod command: $fx"
  local a=${BASH_REMATCH[1]} b=${BASH_REMATCH[2]}
  assert_eq "$((b - a + 1))" 65536 "ids in the range"
  assert_eq "${BASH_REMATCH[3]}-${BASH_REMATCH[4]}" "$a-$b" "the same range for gids"
  cat "$T_DIR/subuid" "$T_DIR/subgid" | awk -F: -v a="$a" -v b="$b" 'NF>=3 && $2<=b && a<$2+$3 {print "overlaps " $0; bad=1} END{exit bad}' ||
    fail "the proposed range $a-$b overlaps another user's"
  assert_contains "$(guidance subordinate_ids)" "$(fixcmd subordinate_ids)"
  assert_contains "$(cat "$B_OUTF")" '"ready": false'
}

test_tun_and_helper_missing() {
  pf_in "mount -t tmpfs tmpfs /dev/net && mount -t tmpfs tmpfs /usr/bin/slirp4netns 2>/dev/null; true"
  assert_eq "$(passed network_helper)" False
  assert_contains "$(guidance network_helper)" "sudo modprobe tun && sudo chmod 0666 /dev/net/tun"
  assert_eq "$(fixcmd network_helper)" "sudo modprobe tun && sudo chmod 0666 /dev/net/tun" "the exact fix"
  assert_contains "$(cat "$B_OUTF")" '"ready": true' "the network helper is not required (none and host work)"
}

test_user_namespaces_off() {
  # a child user namespace where no further user namespaces may be made
  berth_cmd preflight --json
  local -a cmd=("${B_CMD[@]}") pre=()
  if [ "$BERTH_MODE" = rootless ]; then
    cmd=("${cmd[@]:4}") # drop "runuser -u USER --": the namespace is made as that user
    pre=(runuser -u "$TEST_USER" --)
  fi
  "${pre[@]}" unshare --user --map-root-user --mount sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"' sh "${cmd[@]}" >"$T_DIR/pf.json" 2>"$T_DIR/pf.err" || true
  B_OUTF=$T_DIR/pf.json
  [ -s "$B_OUTF" ] || fail "preflight did not run in the child namespace: $(cat "$T_DIR/pf.err")"
  assert_eq "$(passed user_namespaces)" False
  assert_contains "$(guidance user_namespaces)" "sudo sysctl -w user.max_user_namespaces="
  assert_contains "$(detail user_namespaces)" "user.max_user_namespaces=0"
}

test_overlay_unusable() {
  # a store on overlayfs: overlay cannot use another overlay as its upper layer
  mkdir -p "$T_DIR/o/l" "$T_DIR/o/u" "$T_DIR/o/w" "$T_DIR/o/m"
  mount -t overlay overlay -o lowerdir="$T_DIR/o/l",upperdir="$T_DIR/o/u",workdir="$T_DIR/o/w" "$T_DIR/o/m" || fail "cannot stage an overlay store"
  chmod 777 "$T_DIR/o/m"
  BERTH_ROOT=$T_DIR/o/m/root pf
  umount "$T_DIR/o/m"
  assert_eq "$(passed overlay)" False "overlay on an overlay store"
  assert_contains "$(guidance overlay)" "data_dir"
  assert_contains "$(detail overlay)" "copied root filesystem"
  assert_contains "$(cat "$B_OUTF")" '"ready": true' "containers still work there (copied root)"
}

test_first_create_refuses_when_not_ready() {
  b_ok load -q "$IMAGES/busybox"
  mkdir -p "$T_DIR/small"; mount -t tmpfs -o size=256m tmpfs "$T_DIR/small"; chmod 777 "$T_DIR/small"
  cp -a "$BERTH_ROOT/." "$T_DIR/small/" 2>/dev/null || true
  BERTH_ROOT=$T_DIR/small b_run tool --request '{"operation":"create","image":"localhost/busybox","mount_cwd":false}'
  local out; out=$(cat "$B_OUTF")
  umount -l "$T_DIR/small"
  assert_contains "$out" '"error": "Container runtime not ready. See preflight results."'
  assert_contains "$out" '"preflight"'
}

t_run "every check passes on this host" test_all_pass_here
t_run "cgroups: reported by mode, never silently" test_cgroup_check_by_mode
t_run "disk: fail under 1 GB, low under 5 GB" test_disk_space_low_and_full
t_run "newuidmap without setuid: fails with the fix" test_newuidmap_without_setuid
t_run "no subordinate ids: fails with the usermod fix" test_no_subordinate_ids
t_run "tun and network helper missing: optional, with the fix" test_tun_and_helper_missing
t_run "user namespaces off: fails with the sysctl fix" test_user_namespaces_off
t_run "overlay unusable for the store: reported, with the copy fallback" test_overlay_unusable
t_run "the first create refuses on a host that is not ready" test_first_create_refuses_when_not_ready
t_summary
