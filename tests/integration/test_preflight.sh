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
required() { check "$1" | cut -d$'\x1f' -f2; }
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
  # containers still run, with a single-id mapping (test_containers.sh), and preflight says what that means
  assert_eq "$(required newuidmap)" False "newuidmap is not required"
  assert_contains "$(detail newuidmap)" "single-id mapping"
  assert_contains "$(cat "$B_OUTF")" '"ready": true'
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
  assert_eq "$(required subordinate_ids)" False "subordinate ids are not required"
  assert_contains "$(detail subordinate_ids)" "single-id mapping: only root (you) exists inside"
  assert_contains "$(cat "$B_OUTF")" '"ready": true'
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
  # what containers get instead: fuse-overlayfs where it can run, else a copy
  if fuse_usable; then assert_contains "$(detail overlay)" "fuse-overlayfs instead"
  else assert_contains "$(detail overlay)" "copied root filesystem"; fi
  assert_contains "$(cat "$B_OUTF")" '"ready": true' "containers still work there"
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

# ---------------------------------------------------------------- the kept verdict
# A create keeps a passing verdict in the run dir and later creates reuse it
# while its key holds (preflight.c). These run `berth run --rm` with a run
# dir of the test's own and BERTH_LOG=debug, which says what preflight did.

# vrun [SETUP]: berth run --rm ... true, inside `unshare -m` after the shell
# commands SETUP when given; prints kept|reused|refused|failed
vrun() {
  local setup=${1:-}
  B_EXTRA_ENV="BERTH_RUNROOT=$VRUN BERTH_LOG=debug" berth_cmd run --rm --no-mount-cwd --network none localhost/busybox true
  local -a cmd=("${B_CMD[@]}")
  local rc=0
  if [ -n "$setup" ]; then
    unshare -m sh -c "$setup"' && exec "$@"' sh "${cmd[@]}" >"$T_DIR/vrun.out" 2>"$T_DIR/vrun.err" || rc=$?
  else
    "${cmd[@]}" >"$T_DIR/vrun.out" 2>"$T_DIR/vrun.err" || rc=$?
  fi
  sed 's/^/# vrun: /' "$T_DIR/vrun.err" >&2
  if grep -q "Container runtime not ready" "$T_DIR/vrun.err" "$T_DIR/vrun.out"; then echo refused
  elif [ "$rc" != 0 ]; then echo "failed($rc)"
  elif grep -q "preflight: the checks passed before" "$T_DIR/vrun.err"; then echo reused
  elif grep -q "preflight: the checks passed; verdict kept" "$T_DIR/vrun.err"; then echo kept
  else echo "failed(no preflight line)"; fi
}
vrun_setup() {
  b_ok load -q "$IMAGES/busybox"
  VRUN=$T_DIR/run
  mkdir -p "$VRUN"
  [ "$BERTH_MODE" = rootless ] && chown "$TEST_USER:" "$VRUN"
  VERDICT=$VRUN/preflight-verdict
}

test_verdict_kept_and_reused() {
  vrun_setup
  assert_eq "$(vrun)" kept "first create: checks run, verdict kept"
  assert_exists "$VERDICT" "kept verdict"
  assert_contains "$(cat "$VERDICT")" "boot $(cat /proc/sys/kernel/random/boot_id)" "the verdict's key"
  assert_eq "$(stat -c %a "$VERDICT")" 600 "mode of the verdict"
  assert_eq "$(vrun)" reused "second create: verdict reused"
  assert_eq "$(vrun)" reused "third create: verdict reused"
  # the overlay probe's success is kept with the store it was made for, not
  # in the run dir (one file per data dir there, which test suites piled up)
  assert_eq "$(ls "$VRUN" | grep -c overlay)" 0 "overlay probe files in the run dir"
  assert_file_content "$BERTH_ROOT/tmp/overlay-ok-$(uname -r)" "1 $(cat /proc/sys/kernel/random/boot_id)"
}

test_verdict_subuid_mtime() {
  vrun_setup
  # a copy of /etc/subuid in place of the real one (same content), then only its mtime changes
  cp -p /etc/subuid "$T_DIR/subuid"
  chmod 644 "$T_DIR/subuid"
  local bind="mount --bind $T_DIR/subuid /etc/subuid"
  assert_eq "$(vrun "$bind")" kept "first create"
  assert_eq "$(vrun "$bind")" reused "same /etc/subuid"
  touch -m -d '@1000000000' "$T_DIR/subuid"
  assert_eq "$(vrun "$bind")" kept "after /etc/subuid's mtime changed: checks run again"
  assert_eq "$(vrun "$bind")" reused "and kept again"
}

test_verdict_boot_id() {
  vrun_setup
  # a verdict kept in another boot
  assert_eq "$(vrun)" kept "first create"
  sed -i "s/^boot .*/boot 00000000-0000-4000-8000-00000000000c/" "$VERDICT"
  assert_eq "$(vrun)" kept "the kept verdict is of another boot: checks run again"
  assert_eq "$(vrun)" reused "and kept for this boot"
  # the boot id itself changed (root only: with a file bound over a /proc
  # file, no user namespace may mount a proc of its own, rootless containers fail)
  [ "$BERTH_MODE" = root ] || return 0
  echo 00000000-0000-4000-8000-00000000000a >"$T_DIR/boot-a"
  echo 00000000-0000-4000-8000-00000000000b >"$T_DIR/boot-b"
  chmod 644 "$T_DIR/boot-a" "$T_DIR/boot-b"
  assert_eq "$(vrun "mount --bind $T_DIR/boot-a /proc/sys/kernel/random/boot_id")" kept "boot a: first create"
  assert_eq "$(vrun "mount --bind $T_DIR/boot-a /proc/sys/kernel/random/boot_id")" reused "boot a again"
  assert_eq "$(vrun "mount --bind $T_DIR/boot-b /proc/sys/kernel/random/boot_id")" kept "another boot: checks run again"
  assert_eq "$(vrun)" kept "the real boot: checks run again"
}

test_verdict_failing_not_kept() {
  vrun_setup
  # a store with 1.5 GB free passes; filled below 1 GB it must be refused at once,
  # though a passing verdict is kept (free space is looked at every time)
  mkdir -p "$T_DIR/small"
  mount -t tmpfs -o size=1500m tmpfs "$T_DIR/small"
  chmod 777 "$T_DIR/small"
  cp -a "$BERTH_ROOT/." "$T_DIR/small/" 2>/dev/null || true
  local r1 r2 r3 r4 kept_after_fail=no
  r1=$(BERTH_ROOT=$T_DIR/small vrun)
  fallocate -l 700m "$T_DIR/small/fill"
  r2=$(BERTH_ROOT=$T_DIR/small vrun)
  [ -e "$VERDICT" ] && kept_after_fail=yes
  r3=$(BERTH_ROOT=$T_DIR/small vrun)
  rm -f "$T_DIR/small/fill"
  r4=$(BERTH_ROOT=$T_DIR/small vrun)
  umount -l "$T_DIR/small"
  assert_eq "$r1" kept "1.5 GB free: checks pass, verdict kept"
  assert_eq "$r2" refused "filled under 1 GB: refused despite the kept verdict"
  assert_eq "$kept_after_fail" no "a failing verdict drops the kept one"
  assert_eq "$r3" refused "still full: refused again (nothing kept)"
  assert_eq "$r4" kept "space freed: checks run again, verdict kept"
}

test_preflight_command_always_checks() {
  vrun_setup
  assert_eq "$(vrun)" kept "a create keeps a verdict"
  B_EXTRA_ENV="BERTH_RUNROOT=$VRUN BERTH_LOG=debug" b_run preflight --json
  assert_eq "$B_RC" 0 "berth preflight"
  assert_not_contains "$B_ERR" "checks passed before" "berth preflight never reuses a kept verdict"
  for c in kernel user_namespaces subordinate_ids newuidmap overlay seccomp disk_space; do
    assert_eq "$(passed $c)" True "$c checked and passed"
  done
  # a kept verdict that says ready on a host that is not: preflight still reports the truth
  mkdir -p "$T_DIR/tiny"
  mount -t tmpfs -o size=64m tmpfs "$T_DIR/tiny"
  chmod 777 "$T_DIR/tiny"
  BERTH_ROOT=$T_DIR/tiny B_EXTRA_ENV="BERTH_RUNROOT=$VRUN" b_run preflight --json
  umount -l "$T_DIR/tiny"
  assert_eq "$(passed disk_space)" False "preflight checks the disk afresh"
  assert_contains "$(cat "$B_OUTF")" '"ready": false'
}

t_run "every check passes on this host" test_all_pass_here
t_run "cgroups: reported by mode, never silently" test_cgroup_check_by_mode
t_run "disk: fail under 1 GB, low under 5 GB" test_disk_space_low_and_full
t_run "newuidmap without setuid: not met, with the fix; the host stays ready (single-id mapping)" test_newuidmap_without_setuid
t_run "no subordinate ids: not met, with the usermod fix; the host stays ready (single-id mapping)" test_no_subordinate_ids
t_run "tun and network helper missing: optional, with the fix" test_tun_and_helper_missing
t_run "user namespaces off: fails with the sysctl fix" test_user_namespaces_off
t_run "overlay unusable for the store: reported, with the fallback containers get" test_overlay_unusable
t_run "the first create refuses on a host that is not ready" test_first_create_refuses_when_not_ready
t_run "verdict: a create keeps a passing verdict, later creates reuse it" test_verdict_kept_and_reused
t_run "verdict: /etc/subuid's mtime changed: checks run again" test_verdict_subuid_mtime
t_run "verdict: another boot id: checks run again" test_verdict_boot_id
t_run "verdict: a failing verdict is never kept (disk full)" test_verdict_failing_not_kept
t_run "verdict: berth preflight always runs every check" test_preflight_command_always_checks
t_summary
