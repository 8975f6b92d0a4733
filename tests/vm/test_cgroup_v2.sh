#!/bin/bash
# Containers on pure cgroup v2 (run in the test VM, scripts/vmtest/): the
# lifecycle, memory/pids/cpu limits enforced, confinement, overlay, and the
# cgroups gone after destroy. BERTH_MODE=root|rootless, as the integration
# suites. Root runs from a login session shared with its shell; the test
# user reaches berth through `systemd-run --user --scope -p Delegate=yes`.
. "$(dirname "$0")/../integration/lib.sh"
CG=/sys/fs/cgroup
U=$(id -u berthtest)
[ -f $CG/cgroup.controllers ] || { echo "not ok - not a pure cgroup v2 host"; echo "0 passed, 1 failed"; exit 1; }

create() { b_ok create -q --no-mount-cwd --network none "$@" localhost/busybox; }
# cgroup_of NAME: the container's cgroup directory (from status --json)
cgroup_of() {
  b_ok status --json "$1"
  CGDIR=$(jq -r '.metadata.cgroup.paths[0] // empty' "$B_OUTF")
  [ -n "$CGDIR" ] || fail "status of $1 names no cgroup: $(cat "$B_OUTF")"
  echo "# cgroup of $1: $CGDIR"
}
# where this mode's containers must land
expect_parent() {
  if [ "$BERTH_MODE" = root ]; then
    # the session scope also holds the test shell: root uses the root cgroup's berth/
    [[ $1 == $CG/berth/* ]] || fail "root container cgroup $1 is not under $CG/berth"
  else
    [[ $1 =~ ^$CG/user.slice/user-$U.slice/user@$U.service/app.slice/run-r[0-9]+.scope/berth/[^/]+$ ]] ||
      fail "rootless container cgroup $1 is not in a delegated scope's berth/"
  fi
}

test_lifecycle_and_placement() {
  setup_ctr
  b_ok create --json --no-mount-cwd --network none --name c localhost/busybox
  assert_eq "$(jq -r .limits_applied "$B_OUTF")" true "limits_applied"
  cgroup_of c
  expect_parent "$CGDIR"
  for ctl in memory pids cpu; do
    grep -qw $ctl "$CGDIR/cgroup.controllers" || fail "controller $ctl missing in $CGDIR: $(cat "$CGDIR/cgroup.controllers")"
  done
  local init
  init=$(jq -r .init.pid "$BERTH_ROOT/containers/c/state.json")
  grep -qx "$init" "$CGDIR/cgroup.procs" || fail "init $init is not in $CGDIR/cgroup.procs"
  if [ "$BERTH_MODE" = rootless ]; then
    # berth stepped out of its scope into a leaf so the scope could hand controllers down
    local mon
    mon=$(jq -r .monitor.pid "$BERTH_ROOT/containers/c/state.json")
    assert_contains "$(cat /proc/$mon/cgroup)" "/berth/monitor" "the monitor's cgroup"
    assert_eq "$(stat -c %u "$CGDIR")" "$U" "owner of the container cgroup"
  fi
  b_ok exec c sh -c 'echo hi; cat /proc/self/cgroup'
  assert_eq "$B_OUT" $'hi\n0::/' "exec output and the cgroup namespace"
  b_ok rm c
  assert_not_exists "$CGDIR" "container cgroup after rm"
  assert_dir_empty "$BERTH_ROOT/containers"
}

test_confinement() {
  setup_ctr; create --name c
  b_ok exec c cat /proc/self/status
  assert_eq "$(awk '/^CapEff:/{print $2}' "$B_OUTF")" 0000000000000000 CapEff
  assert_eq "$(awk '/^CapBnd:/{print $2}' "$B_OUTF")" 0000000000000000 CapBnd
  assert_eq "$(awk '/^NoNewPrivs:/{print $2}' "$B_OUTF")" 1 NoNewPrivs
  assert_eq "$(awk '/^Seccomp:/{print $2}' "$B_OUTF")" 2 Seccomp
  b_run exec c unshare -U true
  assert_ne "$B_RC" 0 "unshare -U inside"
  b_run exec c mount -t tmpfs x /mnt
  assert_ne "$B_RC" 0 "mount inside"
}

test_memory_oom_inside_only() {
  setup_ctr; create --name c --memory 48m
  cgroup_of c
  assert_eq "$(cat "$CGDIR/memory.max")" 50331648 memory.max
  b_run exec --timeout 120 c sh -c 'x=aaaaaaaa; while true; do x=$x$x; done'
  assert_eq "$B_RC" 137 "the hog is SIGKILLed by the OOM killer"
  local kills
  kills=$(awk '$1=="oom_kill"{print $2}' "$CGDIR/memory.events")
  assert_ge "$kills" 1 "oom_kill in $CGDIR/memory.events"
  b_ok exec c echo alive
  assert_eq "$B_OUT" alive "the container survives"
}

test_pids_fork_bomb_stopped() {
  setup_ctr; create --name c --pids 40
  cgroup_of c
  assert_eq "$(cat "$CGDIR/pids.max")" 40 pids.max
  # the shell forks until a fork fails (which ends it); the sleeps stay
  # (the shell's output goes elsewhere first, so no sleep ever holds the
  # exec's: what does is ended with the exec)
  b_run exec --timeout 60 c sh -c 'exec >/dev/null 2>&1; while :; do sleep 60 & done'
  assert_ne "$B_RC" 124 "the bomb ends by itself (its fork fails), not by the timeout"
  assert_ne "$B_RC" 0 "the bomb ends with an error"
  local n
  n=$(cat "$CGDIR/pids.current")
  assert_le "$n" 40 "pids.current after the bomb"
  assert_ge "$n" 30 "pids.current after the bomb (the sleeps fill the limit)"
  assert_ge "$(awk '$1=="max"{print $2}' "$CGDIR/pids.events")" 1 "pids.events max (forks refused)"
  assert_eq "$(sh -c 'echo host-ok')" host-ok "the host can still fork"
}

test_cpu_throttled() {
  setup_ctr; create --name c --cpus 0.25
  cgroup_of c
  assert_eq "$(cat "$CGDIR/cpu.max")" "25000 100000" cpu.max
  local u0 u1
  u0=$(awk '$1=="usage_usec"{print $2}' "$CGDIR/cpu.stat")
  b_run exec --timeout 4 c sh -c 'while :; do :; done'
  assert_eq "$B_RC" 124 "the loop runs until the timeout"
  u1=$(awk '$1=="usage_usec"{print $2}' "$CGDIR/cpu.stat")
  echo "# cpu.stat: $(tr '\n' ' ' <"$CGDIR/cpu.stat")"
  assert_ge "$(awk '$1=="nr_throttled"{print $2}' "$CGDIR/cpu.stat")" 1 nr_throttled
  # 4 s of wall time at 0.25 CPU: about 1 s of CPU; unthrottled it would be 4 s
  assert_le "$((u1 - u0))" 1800000 "CPU time used in 4 s at --cpus 0.25 (usec)"
}

test_overlay_layers() {
  b_ok load -q "$IMAGES/multilayer"
  trap 'b_run rm --all --confirm -f >/dev/null 2>&1 || true' EXIT
  b_ok create --no-mount-cwd --network none --name c localhost/multilayer
  assert_not_contains "$B_ERR" "copied from the layers" "overlay, not a copied root"
  b_ok exec c sh -c 'grep " / " /proc/mounts; ls /data | tr "\n" " "; echo; ls /data/opaque | tr "\n" " "'
  assert_eq "$(awk '$2=="/"{print $3}' <<<"$B_OUT" | tail -n 1)" overlay "the root's filesystem type"
  if [ "$BERTH_MODE" = rootless ]; then assert_contains "$B_OUT" "userxattr" "rootless overlay uses userxattr"; fi
  assert_not_contains "$B_OUT" "gone.txt" "a whiteout deletes"
  assert_contains "$B_OUT" "layer3.txt"
  assert_not_contains "$B_OUT" "old.txt" "an opaque directory hides the lower layers"
  assert_contains "$B_OUT" "new.txt"
  # a directory made opaque in the container (rm -rf, then mkdir) hides the image's content too
  b_ok exec c sh -c 'rm -rf /data/opaque && mkdir /data/opaque && touch /data/opaque/fresh && ls /data/opaque'
  assert_eq "$B_OUT" fresh "recreated directory"
}

test_failed_create_leaves_no_cgroup() {
  setup_ctr
  b_fails create --no-mount-cwd --network none --name bad -v /nonexistent-berth:/x localhost/busybox
  assert_eq "$(find $CG -type d -name 'bad-*' 2>/dev/null | wc -l)" 0 "cgroups of the failed create"
}

test_rm_force_kills_and_cleans() {
  setup_ctr; create --name hung
  cgroup_of hung
  b_ok exec hung sh -c 'trap "" TERM; setsid sh -c "trap \"\" TERM; while true; do sleep 1; done" >/dev/null 2>&1 &'
  b_ok rm -f hung
  assert_le "$B_SECS" 15 "rm -f of a container ignoring SIGTERM"
  assert_not_exists "$CGDIR" "cgroup after rm -f"
}

test_outside_delegation() {
  setup_ctr
  if [ "$BERTH_MODE" = rootless ]; then
    # straight from the login session (root-owned, not delegated): no limits, and berth says why and what to do
    export VM_NO_SCOPE=1
    b_ok create --json --no-mount-cwd --network none --name c localhost/busybox
    assert_eq "$(jq -r .limits_applied "$B_OUTF")" false limits_applied
    assert_contains "$(jq -r .limits_note "$B_OUTF")" "systemd-run --user --scope -p Delegate=yes" "limits_note"
    b_ok exec c echo works
    assert_eq "$B_OUT" works
    b_ok preflight --json
    assert_eq "$(jq -r '.checks[]|select(.name=="cgroups")|.passed' "$B_OUTF")" false "cgroups check from the session"
    assert_eq "$(jq -r '.checks[]|select(.name=="cgroups")|.run_with' "$B_OUTF")" "systemd-run --user --scope -p Delegate=yes" run_with
  else
    # root alone in a cgroup of its own (a service): berth steps into <scope>/berth/monitor and nests there
    local sc=$CG/system.slice/berth-t$$.scope
    mkdir -p $CG/system.slice
    echo +memory +pids +cpu >$CG/system.slice/cgroup.subtree_control 2>/dev/null
    vmsu --scope "$sc" root env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root BERTH_ROOT="$BERTH_ROOT" BERTH_CONFIG="$BERTH_CONFIG" \
      berth create --json --no-mount-cwd --network none --pids 30 --name c localhost/busybox >"$T_DIR/svc.json" 2>"$T_DIR/svc.err" ||
      fail "create from a service cgroup: $(cat "$T_DIR/svc.err")"
    assert_eq "$(jq -r .limits_applied "$T_DIR/svc.json")" true limits_applied
    cgroup_of c
    assert_eq "$CGDIR" "$sc/berth/$(basename "$CGDIR")" "nested under the service's own cgroup"
    assert_eq "$(cat "$CGDIR/pids.max")" 30 pids.max
  fi
}

test_two_creates_one_process() {
  # one long-lived berth (an MCP server): the second create must find the same parent
  # although the first moved berth into <scope>/berth/monitor
  setup_ctr
  local req='{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"containers","arguments":{"operation":"create","name":"%s","image":"localhost/busybox","mount_cwd":false,"network":"none","pids_limit":25}}}\n'
  {
    printf '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}\n'
    printf '{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
    printf "$req" 2 m1
    printf "$req" 3 m2
    printf '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"containers","arguments":{"operation":"preflight"}}}\n'
  } >"$T_DIR/mcp.in"
  berth_cmd mcp --keep-containers # the containers are looked at after the session
  "${B_CMD[@]}" <"$T_DIR/mcp.in" >"$T_DIR/mcp.out" 2>"$T_DIR/mcp.err" || fail "berth mcp: $(cat "$T_DIR/mcp.err")"
  cat "$T_DIR/mcp.out"
  local c p1 p2
  for c in m1 m2; do
    cgroup_of $c
    assert_eq "$(jq -r .metadata.cgroup.limits_applied "$B_OUTF")" true "limits of $c"
    assert_eq "$(cat "$CGDIR/pids.max")" 25 "pids.max of $c"
    expect_parent "$CGDIR"
    [ $c = m1 ] && p1=$(dirname "$CGDIR") || p2=$(dirname "$CGDIR")
  done
  assert_eq "$p2" "$p1" "both containers under the same parent"
  # preflight from the same process still sees the delegated scope
  grep -q '"id": *4' "$T_DIR/mcp.out" || fail "no reply to the preflight call"
  grep '"id": *4' "$T_DIR/mcp.out" | jq -r '.result.content[0].text' | jq -r '.checks[] | select(.name=="cgroups") | .passed' >"$T_DIR/pf"
  assert_eq "$(cat "$T_DIR/pf")" true "preflight's cgroups check after two creates"
}

# the devices allow-list on cgroup v2 is a BPF program on the container's
# cgroup (root): a node off the list put into the container's /dev (a
# tmpfs, not nodev) is refused with EPERM; the list's own nodes work
test_devices_bpf() {
  setup_ctr; create --name c
  b_ok status --json c
  local pid
  pid=$(jq -r '.metadata.pid' "$B_OUTF")
  mknod "/proc/$pid/root/dev/lc" c 10 237
  chmod 666 "/proc/$pid/root/dev/lc"
  b_run exec c sh -c 'exec 3</dev/lc && echo opened'
  assert_not_contains "$B_OUT" opened "loop-control (10:237) in the container's /dev"
  assert_contains "$B_ERR" "Operation not permitted" "refused by the devices program (EPERM)"
  b_ok exec c sh -c 'head -c 4 /dev/zero | wc -c; echo x >/dev/null'
  assert_contains "$B_OUT" 4 "the allow-list's /dev/zero"
}

test_service_oom_stop_start_stats() {
  setup_ctr
  # a service killed by the OOM killer: recorded from memory.events
  b_ok create -q --name hog --memory 32m --network none localhost/busybox sh -c 'x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done'
  local i=0
  until grep -q '"status": "exited"' "$BERTH_ROOT/containers/hog/state.json" || [ $i -ge 200 ]; do sleep 0.1; i=$((i + 1)); done
  assert_eq "$(jq -r .oom_killed "$BERTH_ROOT/containers/hog/state.json")" true "oom_killed from memory.events"
  # stop and start: a new cgroup, placed as create places it, limits again
  b_ok create -q --name s --memory 64m --pids 40 --network none localhost/busybox sleep 100000
  cgroup_of s
  local old=$CGDIR
  b_ok stop -t 1 s
  assert_not_exists "$old" "the cgroup goes with the stop"
  b_ok start s
  cgroup_of s
  expect_parent "$CGDIR"
  assert_eq "$(cat "$CGDIR/memory.max")" $((64 << 20)) "memory limit after start"
  assert_eq "$(cat "$CGDIR/pids.max")" 40 "pids limit after start"
  # stats reads v2's files
  b_ok stats --no-stream --json s
  assert_eq "$(jq -r '.[0].memory_limit' "$B_OUTF")" $((64 << 20)) "stats shows the v2 memory limit"
  b_ok rm -f s hog
  assert_not_exists "$CGDIR"
}

t_run "lifecycle: create, exec, rm; cgroup placed and removed" test_lifecycle_and_placement
t_run "services: OOM recorded, stop and start re-make the cgroup with its limits, stats" test_service_oom_stop_start_stats
t_run "one berth process, two creates: both limited, same parent" test_two_creates_one_process
t_run "confinement: CapEff 0, NoNewPrivs 1, Seccomp 2" test_confinement
t_run "memory limit: OOM kill inside, container survives" test_memory_oom_inside_only
t_run "pids limit: a fork bomb is stopped" test_pids_fork_bomb_stopped
t_run "cpu limit: a busy loop is throttled" test_cpu_throttled
t_run "overlay: whiteouts and opaque directories (userxattr when rootless)" test_overlay_layers
t_run "a failed create leaves no cgroup" test_failed_create_leaves_no_cgroup
t_run "rm -f kills what ignores SIGTERM and removes the cgroup" test_rm_force_kills_and_cleans
t_run "outside a delegated scope: said so (rootless) / nested in a service cgroup (root)" test_outside_delegation
# bpf needs root: rootless containers' /dev is their user namespace's, where no node opens
if [ "$BERTH_MODE" = root ]; then
  t_run "devices: the BPF allow-list refuses a node off the list (EPERM)" test_devices_bpf
fi
t_summary
