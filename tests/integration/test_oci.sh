#!/bin/bash
# berth-oci, runc's command line (docs/oci-runtime.md), on bundles the
# suite writes itself (busybox-static as the root filesystem): the
# create/start split, state, exec, kill, delete, pause/resume, update and
# enforced limits, ps and list, the console socket, fds that must not leak
# into the container, a symlink planted in the bundle, and bad input that
# must fail clearly and leave nothing. Root and rootless (BERTH_MODE).
. "$(dirname "$0")/lib.sh"

OCI_BIN=$SUITE_TMP/bin/berth-oci
ln -f "$BERTH_BIN" "$OCI_BIN"
BUSYBOX=$(command -v busybox || echo /bin/busybox)

# oci ARGS: berth-oci as root or as the test user, with this test's state root;
# with OCI_SCOPE=1 the test user's berth-oci runs in a delegated scope
# (`systemd-run --user --scope -p Delegate=yes`, what the refusal advises)
oci() {
  local pre=()
  [ "$BERTH_MODE" = rootless ] && pre=(runuser -u "$TEST_USER" --)
  [ "$BERTH_MODE" = rootless ] && [ "${OCI_SCOPE:-0}" = 1 ] && pre+=(systemd-run --user --scope -p Delegate=yes)
  "${pre[@]}" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$BERTH_HOME" XDG_RUNTIME_DIR="$T_DIR/xdg" \
    timeout -k 5 60 "$OCI_BIN" --root "$T_DIR/state" "$@"
}
o_run() { # keep the exit code in O_RC, stdout in O_OUT, stderr in O_ERR
  O_RC=0
  echo "\$ berth-oci $*"
  oci "$@" >"$T_DIR/o.out" 2>"$T_DIR/o.err" || O_RC=$?
  O_OUT=$(cat "$T_DIR/o.out"); O_ERR=$(cat "$T_DIR/o.err")
  echo "# exit $O_RC"; [ -n "$O_OUT" ] && echo "$O_OUT" | head -c 2000 | sed 's/^/# stdout: /'
  [ -n "$O_ERR" ] && echo "$O_ERR" | head -c 2000 | sed 's/^/# stderr: /'
  return 0
}
o_ok() { o_run "$@"; [ "$O_RC" = 0 ] || fail "berth-oci $* exited $O_RC: $O_ERR"; }
o_fails() { # the command fails with a message on stderr (and, with --log, in the log)
  o_run "$@"
  [ "$O_RC" != 0 ] || fail "berth-oci $* succeeded but should have failed"
  assert_contains "$O_ERR" "berth-oci: " "error line"
}
status_of() { oci state "$1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }
pid_of() { oci state "$1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])'; }

# a bundle at $T_DIR/b: busybox and its applets, and a config (berth-oci spec,
# rootless variant as the test user) edited by the python expression $1 on c
bundle() {
  # whatever a failing test leaves (processes, cgroups) goes with it
  trap 'for id in $(oci list -q 2>/dev/null); do oci delete --force "$id" >/dev/null 2>&1; done' EXIT
  local r=$T_DIR/b/rootfs
  mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/etc" "$r/tmp" "$T_DIR/state" "$T_DIR/xdg"
  cp "$BUSYBOX" "$r/bin/busybox"
  for a in sh echo cat ls id sleep true false touch mkdir stat tty readlink grep seq kill mount hostname; do ln -sf busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$r/etc/passwd"
  chmod 1777 "$r/tmp"
  rm -f "$T_DIR/b/config.json"
  [ "$BERTH_MODE" = rootless ] && chown -R "$TEST_USER:" "$T_DIR/b" "$T_DIR/state" "$T_DIR/xdg"
  if [ "$BERTH_MODE" = rootless ]; then (cd "$T_DIR/b" && oci spec --rootless); else (cd "$T_DIR/b" && oci spec); fi
  "$PY" - "$T_DIR/b/config.json" "${1:-}" <<'EOF'
import json, sys
p, expr = sys.argv[1], sys.argv[2]
c = json.load(open(p))
c["process"]["terminal"] = False
c["root"]["readonly"] = False
if expr:
    exec(expr)
json.dump(c, open(p, "w"), indent=1)
EOF
}
args() { printf 'c["process"]["args"] = %s\n' "$("$PY" -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@")"; }
# the process is gone (a zombie waiting for its reaper counts as gone)
gone() { ! [ -d "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
# pure cgroup v2 (no v1 hierarchy, no hybrid)
CG_V2=0
[ -f /sys/fs/cgroup/cgroup.controllers ] && CG_V2=1
# the test user's user@UID.service is delegated to it, as systemd's
# Delegate= in user@.service does (pure v2 only): then rootless limits must work
USER_DELEGATED=0
if [ "$CG_V2" = 1 ] && [ "$BERTH_MODE" = rootless ]; then
  _u=$(id -u "$TEST_USER")
  [ "$(stat -c %u "/sys/fs/cgroup/user.slice/user-$_u.slice/user@$_u.service/cgroup.subtree_control" 2>/dev/null)" = "$_u" ] && USER_DELEGATED=1
fi
# cgroup v1/v2 directory of PID for CONTROLLER (empty when none of its own)
cg_dir() {
  local pid=$1 ctl=$2 line
  line=$(grep -E "^[0-9]+:([^:]*,)?$ctl(,[^:]*)?:" "/proc/$pid/cgroup" || grep -E '^0::' "/proc/$pid/cgroup")
  local path=${line#*:*:}
  if [ -d "/sys/fs/cgroup/$ctl" ]; then echo "/sys/fs/cgroup/$ctl$path"; else echo "/sys/fs/cgroup$path"; fi
}

test_create_start_state_delete() {
  bundle "$(args sh -c 'echo started >/tmp/out; echo to-stdout')"
  o_ok create --bundle "$T_DIR/b" --pid-file "$T_DIR/xdg/pidfile" c1
  assert_eq "$(status_of c1)" created "after create"
  local pid; pid=$(pid_of c1)
  assert_eq "$(cat "$T_DIR/xdg/pidfile")" "$pid" "pid file"
  assert_not_exists "$T_DIR/b/rootfs/tmp/out" "the program's output before start"
  o_ok list --format json
  assert_contains "$O_OUT" '"id": "c1"'
  o_ok start c1
  for _ in $(seq 50); do [ "$(status_of c1)" = stopped ] && break; sleep 0.1; done
  assert_eq "$(status_of c1)" stopped "after the program ended"
  assert_file_content "$T_DIR/b/rootfs/tmp/out" $'started\n'
  o_fails start c1
  assert_contains "$O_ERR" "only a created container can be started"
  o_ok delete c1
  o_fails state c1
  assert_contains "$O_ERR" "does not exist"
  assert_dir_empty "$T_DIR/state" "state root after delete"
}

test_run_exit_code_and_stdio() {
  bundle "$(args sh -c 'echo out; echo err >&2; exit 7')"
  o_run run --bundle "$T_DIR/b" r1
  assert_eq "$O_RC" 7 "run returns the program's exit code"
  assert_eq "$O_OUT" out
  assert_eq "$O_ERR" err
  assert_dir_empty "$T_DIR/state" "run removes the container"
}

test_exec() {
  bundle "$(args sleep 60)"
  o_ok run -d --bundle "$T_DIR/b" e1
  assert_eq "$(status_of e1)" running
  o_ok exec e1 sh -c 'echo "$$ $FOO $(pwd)"'
  assert_ne "${O_OUT%% *}" 1 "exec is not the container's PID 1"
  o_ok exec --env FOO=bar --cwd /tmp e1 sh -c 'echo "$FOO $(pwd)"'
  assert_eq "$O_OUT" "bar /tmp"
  if [ "$BERTH_MODE" = rootless ]; then
    o_fails exec --user 65534:65534 e1 id -u
    assert_contains "$O_ERR" "not mapped in the container's user namespace" "--user outside the one-id map"
  else
    o_ok exec --user 65534:65534 e1 id -u
    assert_eq "$O_OUT" 65534 "--user"
  fi
  o_run exec e1 sh -c 'exit 3'
  assert_eq "$O_RC" 3 "exec returns the command's exit code"
  o_fails exec e1 /no/such/program
  assert_contains "$O_ERR" "no such executable"
  echo '{"args":["sh","-c","sleep 30"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}' >"$T_DIR/xdg/proc.json"
  chmod 644 "$T_DIR/xdg/proc.json"
  o_ok exec --process "$T_DIR/xdg/proc.json" --detach --pid-file "$T_DIR/xdg/epid" e1
  local epid; epid=$(cat "$T_DIR/xdg/epid")
  [ -d "/proc/$epid" ] || fail "the detached exec's pid $epid is not running"
  o_ok ps --format json e1
  assert_contains "$O_OUT" "$epid" "ps lists the exec'd process"
  o_ok kill --all e1 KILL
  for _ in $(seq 50); do [ "$(status_of e1)" = stopped ] && break; sleep 0.1; done
  assert_eq "$(status_of e1)" stopped "kill --all KILL"
  gone "$epid" || fail "kill --all left the exec'd process $epid"
  o_ok delete e1
}

test_no_mount_namespace_exec_stays_in_root() {
  # no mount namespace: the runtime mounts nothing (it would be the host's
  # namespace); the container is a chroot, and an exec enters the same root
  bundle "c['linux']['namespaces'] = [n for n in c['linux']['namespaces'] if n['type'] != 'mount']; c['mounts'] = []; $(args sleep 60)"
  touch "$T_DIR/b/rootfs/marker-of-the-bundle"
  o_ok run -d --bundle "$T_DIR/b" n1
  o_ok exec n1 ls /
  assert_contains "$O_OUT" "marker-of-the-bundle" "exec sees the container's root"
  assert_not_contains "$O_OUT" "proc-is-not-mounted-here" ""
  grep -q " $T_DIR/b/rootfs/proc " /proc/self/mountinfo && fail "a mount was made in the caller's namespace"
  o_ok delete --force n1
}

test_cwd_escape_and_foreign_root() {
  # fd 3 is a directory of the host's, passed on with --preserve-fds 1; a
  # cwd through it would start the program outside the container's root
  bundle "c['process']['cwd'] = '/proc/self/fd/3'; $(args sh -c 'pwd; ls')"
  mkdir -p "$T_DIR/hostdir"; touch "$T_DIR/hostdir/host-secret"; chmod 755 "$T_DIR/hostdir"
  o_run run --preserve-fds 1 --bundle "$T_DIR/b" w1 3<"$T_DIR/hostdir"
  [ "$O_RC" != 0 ] || fail "a cwd through a leaked fd ran"
  assert_not_contains "$O_OUT" "host-secret" "the program listed a host directory"
  assert_contains "$O_ERR" "outside the container's root filesystem"
  if [ "$BERTH_MODE" = rootless ]; then
    # the rootless spec maps one id: uid 1000 cannot be the process's
    bundle "c['process']['user'] = {'uid': 1000, 'gid': 1000}; $(args id)"
    o_fails create --bundle "$T_DIR/b" w2
    assert_contains "$O_ERR" "not mapped in the container's user namespace"
  fi
  assert_dir_empty "$T_DIR/state"
  # a state root made by someone else (here: another owner, group-writable)
  mkdir -p "$T_DIR/foreign"; chmod 777 "$T_DIR/foreign"; chown 4242 "$T_DIR/foreign"
  bundle "$(args true)"
  local pre=(); [ "$BERTH_MODE" = rootless ] && pre=(runuser -u "$TEST_USER" --)
  local rc=0 out
  out=$("${pre[@]}" "$OCI_BIN" --root "$T_DIR/foreign" run --bundle "$T_DIR/b" w3 2>&1) || rc=$?
  [ "$rc" != 0 ] || fail "a state root of another owner was used"
  assert_contains "$out" "not a directory of yours alone"
}

test_kill_and_force_delete() {
  bundle "$(args sh -c 'trap "echo got-usr1 >/tmp/sig; exit 0" USR1; while :; do sleep 0.1; done')"
  o_ok run -d --bundle "$T_DIR/b" k1
  sleep 0.3
  o_ok kill k1 SIGUSR1
  for _ in $(seq 50); do [ "$(status_of k1)" = stopped ] && break; sleep 0.1; done
  assert_file_content "$T_DIR/b/rootfs/tmp/sig" $'got-usr1\n'
  o_fails kill k1 TERM
  assert_contains "$O_ERR" "is not running"
  o_ok delete k1
  bundle "$(args sleep 60)"
  o_ok run -d --bundle "$T_DIR/b" k2
  local pid; pid=$(pid_of k2)
  o_fails delete k2
  assert_contains "$O_ERR" "delete --force"
  [ -d "/proc/$pid" ] || fail "a refused delete killed the container"
  o_ok delete --force k2
  gone "$pid" || fail "delete --force left process $pid"
  assert_dir_empty "$T_DIR/state"
}

test_limits_pause_update() {
  if [ "$BERTH_MODE" = rootless ]; then
    # straight from the login session (a cgroup not delegated to the user): limits are refused, clearly
    bundle "c['linux'].setdefault('resources', {})['pids'] = {'limit': 10}; $(args true)"
    o_fails run --bundle "$T_DIR/b" l1
    assert_contains "$O_ERR" "delegat"
    assert_dir_empty "$T_DIR/state" "a refused create leaves no state"
    # no delegated cgroup v2 subtree for the test user on this host: that is all
    [ "$USER_DELEGATED" = 1 ] || return 0
    # from a delegated scope: limits enforced as for root (below)
    OCI_SCOPE=1
  fi
  bundle "c['linux'].setdefault('resources', {}); c['linux']['resources']['pids'] = {'limit': 12}; c['linux']['resources']['memory'] = {'limit': 64*1024*1024}; $(args sleep 60)"
  o_ok run -d --bundle "$T_DIR/b" l1
  local pid; pid=$(pid_of l1)
  assert_eq "$(cat "$(cg_dir "$pid" pids)/pids.max")" 12 "pids.max"
  local mem; mem=$(cg_dir "$pid" memory)
  if [ -f "$mem/memory.limit_in_bytes" ]; then assert_eq "$(cat "$mem/memory.limit_in_bytes")" 67108864 "memory limit"
  else assert_eq "$(cat "$mem/memory.max")" 67108864 "memory.max"; fi
  # the limit is enforced: 20 sleeps in a cgroup of 12 pids
  o_run exec l1 sh -c 'n=0; for i in $(seq 20); do sleep 5 & n=$((n+1)); done 2>/dev/null; echo started'
  assert_ne "$O_RC" 0 "forks beyond pids.max must fail"
  o_ok update --pids-limit 40 --memory 128M l1
  assert_eq "$(cat "$(cg_dir "$pid" pids)/pids.max")" 40 "pids.max after update"
  echo '{"pids":{"limit":50}}' >"$T_DIR/xdg/res.json"
  o_ok update --resources "$T_DIR/xdg/res.json" l1
  assert_eq "$(cat "$(cg_dir "$pid" pids)/pids.max")" 50 "pids.max after update --resources"
  o_ok pause l1
  assert_eq "$(status_of l1)" paused
  grep -q '^State:.*(stopped)\|^State:.*D\|^State:.*S' "/proc/$pid/status"
  if [ "$CG_V2" = 1 ]; then
    # pure v2: the cgroup's own freezer
    assert_eq "$(cat "$(cg_dir "$pid" pids)/cgroup.freeze")" 1 "cgroup.freeze while paused"
    grep -qx 'frozen 1' "$(cg_dir "$pid" pids)/cgroup.events" || fail "cgroup.events does not say frozen: $(cat "$(cg_dir "$pid" pids)/cgroup.events")"
  fi
  o_ok resume l1
  assert_eq "$(status_of l1)" running
  if [ "$CG_V2" = 1 ]; then assert_eq "$(cat "$(cg_dir "$pid" pids)/cgroup.freeze")" 0 "cgroup.freeze after resume"; fi
  local pdir; pdir=$(cg_dir "$pid" pids)
  o_ok delete --force l1
  assert_not_exists "$pdir" "the container's cgroup after delete"
}

# pure cgroup v2 only (root, or the test user with a delegated subtree)
test_cgroup_v2_own_view() {
  [ "$BERTH_MODE" = rootless ] && OCI_SCOPE=1
  # a cgroup namespace and a `cgroup` mount; root: /dev/kmsg made but not in
  # the devices allow-list (the defaults, /dev/zero among them, stay allowed)
  bundle "$(args sleep 300)
L = c['linux']
if not any(n['type'] == 'cgroup' for n in L['namespaces']):
    L['namespaces'].append({'type': 'cgroup'})
if not any(m['type'] == 'cgroup' for m in c['mounts']):
    c['mounts'].append({'destination': '/sys/fs/cgroup', 'type': 'cgroup', 'source': 'cgroup', 'options': ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']})
r = L.setdefault('resources', {})
r['memory'] = {'limit': 64*1024*1024}
r['pids'] = {'limit': 30}
if '$BERTH_MODE' == 'root':
    r['devices'] = [{'allow': False, 'access': 'rwm'}]
    L.setdefault('devices', []).append({'path': '/dev/kmsg', 'type': 'c', 'major': 1, 'minor': 11, 'fileMode': 0o644, 'uid': 0, 'gid': 0})"
  o_ok run -d --bundle "$T_DIR/b" v2
  local pid cg; pid=$(pid_of v2)
  cg=$(cg_dir "$pid" pids)
  [ -f "$cg/cgroup.controllers" ] && [ "$cg" != /sys/fs/cgroup/ ] || fail "no cgroup of its own: $cg"
  echo "# the container's cgroup: $cg"
  # inside: its own cgroup is the namespace's root, and is what /sys/fs/cgroup shows
  o_ok exec v2 cat /proc/self/cgroup
  assert_eq "$O_OUT" "0::/" "/proc/self/cgroup in the cgroup namespace"
  o_ok exec v2 cat /sys/fs/cgroup/cgroup.controllers
  assert_contains "$O_OUT" memory "controllers seen inside"
  assert_contains "$O_OUT" pids "controllers seen inside"
  assert_eq "$O_OUT" "$(cat "$cg/cgroup.controllers")" "cgroup.controllers inside and on the host"
  o_ok exec v2 cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max
  assert_eq "$O_OUT" $'67108864\n30' "the limits seen inside"
  o_run exec v2 ls /sys/fs/cgroup/user.slice
  assert_ne "$O_RC" 0 "the host's cgroup tree is visible inside"
  # update --memory: memory.max, on the host and inside
  o_ok update --memory 96M v2
  assert_eq "$(cat "$cg/memory.max")" 100663296 "memory.max after update --memory"
  o_ok exec v2 cat /sys/fs/cgroup/memory.max
  assert_eq "$O_OUT" 100663296 "memory.max inside after update"
  # --memory-swap alone: memory plus swap, over the limit in force (v2's memory.swap.max is swap alone)
  o_ok update --memory-swap 160M v2
  assert_eq "$(cat "$cg/memory.swap.max")" 67108864 "memory.swap.max after update --memory-swap"
  # pause/resume: cgroup.freeze
  o_ok pause v2
  assert_eq "$(cat "$cg/cgroup.freeze")" 1 "cgroup.freeze while paused"
  grep -qx 'frozen 1' "$cg/cgroup.events" || fail "cgroup.events while paused: $(cat "$cg/cgroup.events")"
  o_ok resume v2
  assert_eq "$(cat "$cg/cgroup.freeze")" 0 "cgroup.freeze after resume"
  grep -qx 'frozen 0' "$cg/cgroup.events" || fail "cgroup.events after resume: $(cat "$cg/cgroup.events")"
  if [ "$BERTH_MODE" = root ]; then
    # the devices allow-list (a BPF program): a node made but not listed cannot be opened
    o_ok exec v2 sh -c '(: </dev/kmsg) 2>/dev/null && echo opened || echo denied'
    assert_eq "$O_OUT" denied "/dev/kmsg, not in the allow-list"
    o_ok exec v2 sh -c ': </dev/zero && : </dev/null && echo opened'
    assert_eq "$O_OUT" opened "/dev/zero and /dev/null, allowed by default"
  fi
  # kill --all KILL: through cgroup.kill, the exec'd process included
  o_ok exec --detach --pid-file "$T_DIR/xdg/epid" v2 sleep 200
  local epid; epid=$(cat "$T_DIR/xdg/epid")
  o_ok --debug kill --all v2 KILL
  assert_contains "$O_ERR" "$cg/cgroup.kill" "kill --all used cgroup.kill"
  for _ in $(seq 50); do [ "$(status_of v2)" = stopped ] && break; sleep 0.1; done
  assert_eq "$(status_of v2)" stopped "kill --all KILL"
  gone "$epid" || fail "kill --all left the exec'd process $epid"
  assert_eq "$(cat "$cg/cgroup.procs")" "" "cgroup.procs after kill --all"
  o_ok delete v2
  assert_not_exists "$cg" "the container's cgroup after delete"
}

test_console_socket() {
  bundle "c['process']['terminal'] = True; $(args sh -c 'tty; stty size')"
  c_sock=$T_DIR/console.sock
  # a receiver as podman's conmon is one: takes the pty master, reads it to the end
  "$PY" - "$c_sock" "$T_DIR/console.out" <<'EOF' &
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777); s.listen(1)
c, _ = s.accept()
msg, fds, _, _ = socket.recv_fds(c, 1024, 1)
out = b""
while True:
    try:
        d = os.read(fds[0], 4096)
    except OSError:
        break
    if not d:
        break
    out += d
open(sys.argv[2], "wb").write(msg + b"\n" + out)
EOF
  local rpid=$!
  for _ in $(seq 50); do [ -S "$c_sock" ] && break; sleep 0.05; done
  o_ok create --bundle "$T_DIR/b" --console-socket "$c_sock" t1
  o_ok start t1
  wait "$rpid"
  local out; out=$(tr -d '\r' <"$T_DIR/console.out")
  assert_contains "$out" "/dev/pts/0" "the program's stdio is the pty (and its name travelled with the fd)"
  o_ok delete --force t1
  o_fails create --bundle "$T_DIR/b" t2
  assert_contains "$O_ERR" "--console-socket"
}

test_fds_do_not_leak() {
  bundle "$(args sh -c 'ls /proc/self/fd | tr "\n" " "')"
  # fds 3 and 4 open in the caller: only --preserve-fds passes any on
  o_run run --bundle "$T_DIR/b" f1 3</etc/hostname 4</etc/passwd
  assert_eq "$O_OUT" "0 1 2 3 " "fds in the container (3 is ls's own directory)"
  o_run run --preserve-fds 1 --bundle "$T_DIR/b" f2 3</etc/hostname 4</etc/passwd
  assert_eq "$O_OUT" "0 1 2 3 4 " "--preserve-fds 1 passes fd 3 on"
}

test_symlink_in_bundle_stays_inside() {
  local target=$SUITE_TMP/host-target-$T_NUM
  rm -rf "$target"
  bundle "c['mounts'].append({'destination': '/evil/sub', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['size=1m']}); $(args sh -c 'touch /evil/sub/planted; echo done')"
  ln -s "$target" "$T_DIR/b/rootfs/evil"
  o_run run --bundle "$T_DIR/b" s1
  assert_not_exists "$target" "a host path reached through the bundle's symlink"
  grep -q " $target" /proc/self/mountinfo && fail "a mount landed on the host at $target"
  assert_dir_empty "$T_DIR/state"
}

test_bad_input_leaves_nothing() {
  bundle "$(args sleep 30)"
  local cgs_before; cgs_before=$(find /sys/fs/cgroup -name 'bad*' -path '*berth-oci*' 2>/dev/null | sort)
  mv "$T_DIR/b/rootfs" "$T_DIR/b/rootfs.away"
  o_fails create --bundle "$T_DIR/b" bad1
  assert_contains "$O_ERR" "root.path"
  mv "$T_DIR/b/rootfs.away" "$T_DIR/b/rootfs"
  cp "$T_DIR/b/config.json" "$T_DIR/good.json"
  printf '{"ociVersion": "1.0.2", "process": ' >"$T_DIR/b/config.json"
  o_fails create --bundle "$T_DIR/b" bad2
  assert_contains "$O_ERR" "config.json: line"
  "$PY" -c 'import json,sys; c=json.load(open(sys.argv[1])); c["linux"]["namespaces"].append({"type":"bogus"}); json.dump(c,open(sys.argv[2],"w"))' \
    "$T_DIR/good.json" "$T_DIR/b/config.json"
  o_fails create --bundle "$T_DIR/b" bad3
  assert_contains "$O_ERR" "unknown type \`bogus\`"
  "$PY" -c 'import json,sys; c=json.load(open(sys.argv[1])); c["process"]["capabilities"]["bounding"].append("CAP_NOPE"); json.dump(c,open(sys.argv[2],"w"))' \
    "$T_DIR/good.json" "$T_DIR/b/config.json"
  o_fails create --bundle "$T_DIR/b" bad4
  assert_contains "$O_ERR" "CAP_NOPE"
  cp "$T_DIR/good.json" "$T_DIR/b/config.json"
  o_fails create --bundle "$T_DIR/b" "bad/../5"
  assert_contains "$O_ERR" "is invalid"
  o_ok create --bundle "$T_DIR/b" dup
  o_fails create --bundle "$T_DIR/b" dup
  assert_contains "$O_ERR" "already exists"
  o_ok delete --force dup
  o_fails kill nosuch KILL
  assert_contains "$O_ERR" "does not exist"
  o_fails delete nosuch
  assert_dir_empty "$T_DIR/state" "state root after refused creates"
  assert_eq "$(find /sys/fs/cgroup -name 'bad*' -path '*berth-oci*' 2>/dev/null | sort)" "$cgs_before" "cgroups left by refused creates"
  # (berth-oci itself: busybox timeout's watcher, `timeout ... berth-oci ...`, outlives it by up to 1 s)
  ps -eo pid,args | grep -E "^ *[0-9]+ [^ ]*berth-oci .*bad" && fail "a process of a refused create is still running (above)"
  # the --log file gets the error as JSON, as containerd's shim reads it
  o_fails --log "$T_DIR/xdg/log.json" --log-format json kill nosuch KILL
  "$PY" -c 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1])]; assert l[-1]["level"]=="error" and "does not exist" in l[-1]["msg"], l' "$T_DIR/xdg/log.json"
}

# the container's id maps as the config gives them: a range beyond one id
# (rootless: the test user's subordinate ids, written by newuidmap and
# newgidmap, which berth starts together), and a range outside them refused
# with the helper and the file named, leaving nothing
test_id_maps_with_ranges() {
  local uid=0 gid=0 us=200000 gs=200000 ns=""
  if [ "$BERTH_MODE" = rootless ]; then
    uid=$(id -u "$TEST_USER") gid=$(id -g "$TEST_USER")
    us=$(awk -F: -v u="$TEST_USER" '$1==u {print $2; exit}' /etc/subuid)
    gs=$(awk -F: -v u="$TEST_USER" '$1==u {print $2; exit}' /etc/subgid)
    [ -n "$us" ] && [ -n "$gs" ] || fail "the test user has no subordinate ids (scripts/setup-test-user.sh)"
  else
    ns='c["linux"]["namespaces"].append({"type": "user"}); '
  fi
  local maps="c[\"linux\"][\"uidMappings\"] = [{\"containerID\": 0, \"hostID\": $uid, \"size\": 1}, {\"containerID\": 1, \"hostID\": $us, \"size\": 65536}]; c[\"linux\"][\"gidMappings\"] = [{\"containerID\": 0, \"hostID\": $gid, \"size\": 1}, {\"containerID\": 1, \"hostID\": $gs, \"size\": 65536}]"
  local chown='[c["process"]["capabilities"][k].append("CAP_CHOWN") for k in c["process"]["capabilities"]]'
  bundle "$ns$maps; $chown
$(args sh -c 'cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/owned && chown 1000:1000 /tmp/owned')"
  o_ok run --bundle "$T_DIR/b" m1
  assert_eq "$(echo $O_OUT)" "0 $uid 1 1 $us 65536 0 $gid 1 1 $gs 65536" "uid_map and gid_map inside"
  assert_eq "$(stat -c %u:%g "$T_DIR/b/rootfs/tmp/owned")" "$((us + 999)):$((gs + 999))" "container id 1000 is the range's"
  assert_dir_empty "$T_DIR/state" "run removes the container"
  [ "$BERTH_MODE" = rootless ] || return 0
  bundle "${maps/$us, \"size\": 65536/$((us + 1000000)), \"size\": 1000}
$(args true)"
  o_fails run --bundle "$T_DIR/b" m2
  assert_contains "$O_ERR" "newuidmap could not write the uid map" "names the helper"
  assert_contains "$O_ERR" "/etc/subuid" "names the file"
  assert_dir_empty "$T_DIR/state" "a refused map leaves nothing"
}

test_features_spec_version() {
  o_ok --version
  assert_contains "$O_OUT" "berth-oci version"
  o_ok features
  "$PY" -c 'import json,sys; f=json.loads(sys.argv[1]); assert "user" in f["linux"]["namespaces"] and f["linux"]["cgroup"]["v1"] and f["linux"]["seccomp"]["enabled"], f' "$O_OUT"
  mkdir -p "$T_DIR/s"; [ "$BERTH_MODE" = rootless ] && chown "$TEST_USER:" "$T_DIR/s"
  (cd "$T_DIR/s" && oci spec) || fail "spec"
  "$PY" -c 'import json,sys; c=json.load(open(sys.argv[1])); assert c["ociVersion"].startswith("1.") and c["process"]["args"]==["sh"]' "$T_DIR/s/config.json"
  (cd "$T_DIR/s" && oci spec) && fail "spec overwrote an existing config.json"
  return 0
}

t_run "create leaves the program waiting; start runs it; state, pid file, list, delete" test_create_start_state_delete
t_run "run: the program's exit code and stdio; the container is removed" test_run_exit_code_and_stdio
t_run "exec: env, cwd, user, exit code, --process --detach, ps, kill --all" test_exec
t_run "no mount namespace: nothing mounted on the host, exec enters the container's root" test_no_mount_namespace_exec_stays_in_root
t_run "leaked directory fd as the cwd (CVE-2024-21626), unmapped user, a state root not ours" test_cwd_escape_and_foreign_root
t_run "kill with a signal; delete refuses a running container, --force removes it" test_kill_and_force_delete
t_run "pids and memory limits enforced, update, pause and resume (rootless: refused clearly)" test_limits_pause_update
# registered on pure cgroup v2 only (detected, not configured): where it cannot run it is not counted
if [ "$CG_V2" = 1 ] && { [ "$BERTH_MODE" = root ] || [ "$USER_DELEGATED" = 1 ]; }; then
  t_run "cgroup v2: own cgroup at /sys/fs/cgroup in a cgroup namespace, update --memory, cgroup.freeze, cgroup.kill, devices allow-list" test_cgroup_v2_own_view
fi
t_run "terminal: the pty master goes to --console-socket" test_console_socket
t_run "no fd of the caller's reaches the container unless --preserve-fds" test_fds_do_not_leak
t_run "a symlink in the bundle cannot send a mount onto the host" test_symlink_in_bundle_stays_inside
t_run "bad input: missing rootfs, broken config, unknown namespace and capability, bad and duplicate IDs, unknown IDs" test_bad_input_leaves_nothing
t_run "id maps with ranges (rootless: the subordinate ids, through newuidmap and newgidmap); a range outside them refused" test_id_maps_with_ranges
t_run "--version, features, spec" test_features_spec_version
t_summary
