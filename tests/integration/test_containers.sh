#!/bin/bash
# Launcher and lifecycle: isolation, limits, exec, cleanup. Run as root and
# rootless (BERTH_MODE). Each test loads the busybox fixture offline.
. "$(dirname "$0")/lib.sh"

PROBE=$SUITE_TMP/probe
gcc -static -O2 -o "$PROBE" "$IT_DIR/probe.c" 2>"$SUITE_TMP/probe.log" && chmod 755 "$PROBE"
CG_V2=0; [ -f /sys/fs/cgroup/cgroup.controllers ] && CG_V2=1

create() { b_ok create -q --no-mount-cwd "$@" localhost/busybox; }
x() { b_run exec "$@"; } # exec, any exit code
limits_expected() { [ "$BERTH_MODE" = root ] || [ "$CG_V2" = 1 ]; }

test_confinement_status() {
  setup_ctr; create --name c
  b_ok exec c cat /proc/self/status
  for f in CapEff CapPrm CapBnd CapInh CapAmb; do
    assert_eq "$(grep "^$f:" "$B_OUTF" | awk '{print $2}')" 0000000000000000 "$f"
  done
  assert_eq "$(grep '^NoNewPrivs:' "$B_OUTF" | awk '{print $2}')" 1 NoNewPrivs
  assert_eq "$(grep '^Seccomp:' "$B_OUTF" | awk '{print $2}')" 2 Seccomp
  b_ok exec -u 65534 c cat /proc/self/status
  assert_eq "$(grep '^CapBnd:' "$B_OUTF" | awk '{print $2}')" 0000000000000000 "CapBnd as nobody"
  assert_contains "$(grep '^Uid:' "$B_OUTF")" 65534
}

test_dangerous_syscalls_fail() {
  [ -x "$PROBE" ] || fail "could not build the static probe: $(cat "$SUITE_TMP/probe.log")"
  setup_ctr; create --name c
  cp "$PROBE" "$T_DIR/probe"; chmod 755 "$T_DIR/probe"
  b_ok cp "$T_DIR/probe" c:/probe
  b_ok exec c /probe
  for s in unshare_user unshare_mount mount keyctl bpf ptrace clone_newuser reboot kexec_load init_module finit_module \
    delete_module perf_event_open userfaultfd open_by_handle_at pivot_root umount2 move_mount fsopen open_tree setns \
    swapon swapoff acct clock_settime iopl ioperm add_key request_key io_uring_setup personality_other; do
    assert_contains "$B_OUT" "$s errno=EPERM" "$s must fail with EPERM"
  done
  assert_contains "$B_OUT" "personality_query ok" "personality(0xffffffff) queries"
  assert_contains "$B_OUT" "personality_default ok" "personality(PER_LINUX) stays allowed"
  assert_contains "$B_OUT" "unlisted errno=ENOSYS" "an unlisted syscall gets ENOSYS"
  assert_contains "$B_OUT" "clone3 errno=ENOSYS" "clone3 gets ENOSYS (libc falls back to clone)"
  b_run exec c unshare -U true
  assert_ne "$B_RC" 0 "busybox unshare -U"
  b_run exec c mount -t tmpfs x /mnt
  assert_ne "$B_RC" 0 "mount"
}

test_own_seccomp_profile() {
  setup_ctr
  # Docker's shape: default allow, mkdir refused with EACCES; a rule for a
  # capability workloads never hold is left out (chmod stays allowed)
  cat >"$T_DIR/prof.json" <<'JSON'
{"defaultAction": "SCMP_ACT_ALLOW",
 "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
              {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}
JSON
  chmod 644 "$T_DIR/prof.json"
  b_ok create -q --no-mount-cwd --network none --name c --seccomp-profile "$T_DIR/prof.json" localhost/busybox
  b_run exec c sh -c 'mkdir /tmp/d; echo rc=$?; touch /tmp/f && chmod 600 /tmp/f && echo chmod-ok; grep ^Seccomp: /proc/self/status'
  assert_contains "$B_OUT$B_ERR" "Permission denied" "mkdir gets the profile's EACCES"
  assert_contains "$B_OUT" "rc=1"
  assert_contains "$B_OUT" "chmod-ok" "a rule for a capability does not apply"
  assert_contains "$B_OUT" "Seccomp:	2"
  # init keeps berth's own filter; the spec carries the profile (OCI linux.seccomp)
  b_ok exec c cat /proc/1/status
  assert_contains "$B_OUT" "Seccomp_filters:	1"
  assert_eq "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["linux"]["seccomp"]["syscalls"][0]["errnoRet"])' "$BERTH_ROOT/containers/c/config.json")" 13
  # a one-shot's command gets it too, and berth's profile is back without it
  b_run run --rm --no-mount-cwd --network none --seccomp-profile "$T_DIR/prof.json" localhost/busybox sh -c 'grep ^Seccomp_filters: /proc/self/status; mkdir /tmp/e && echo made'
  assert_not_contains "$B_OUT" "made"
  # the profile alone: berth's own (init's) is not stacked under it
  assert_contains "$B_OUT" "Seccomp_filters:	1" "the one-shot's command has only the profile's filter"
  b_ok run --rm --no-mount-cwd --network none localhost/busybox sh -c 'mkdir /tmp/e && echo made'
  assert_contains "$B_OUT" "made"
  # the config's default applies when the create names none
  write_config "{\"seccomp_profile\": \"$T_DIR/prof.json\"}"
  b_run run --rm --no-mount-cwd --network none localhost/busybox sh -c 'mkdir /tmp/e && echo made'
  assert_not_contains "$B_OUT" "made" "config seccomp_profile"
  write_config '{}'
  # a bad profile fails the create before anything starts, and leaves nothing
  echo '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOPE"}]}' >"$T_DIR/bad.json"
  chmod 644 "$T_DIR/bad.json"
  b_run create -q --no-mount-cwd --network none --name bad --seccomp-profile "$T_DIR/bad.json" localhost/busybox
  assert_ne "$B_RC" 0
  assert_contains "$B_ERR" "syscalls[0]: unknown action"
  assert_not_exists "$BERTH_ROOT/containers/bad"
  printf '{"defaultAction": ' >"$T_DIR/trunc.json"
  chmod 644 "$T_DIR/trunc.json"
  b_run run --rm --no-mount-cwd --network none --seccomp-profile "$T_DIR/trunc.json" localhost/busybox true
  assert_ne "$B_RC" 0
  assert_contains "$B_ERR" "trunc.json"
  b_ok ls --json
  assert_contains "$B_OUT" '"count": 1' "only c is left"
}

test_pid_namespace_hides_host() {
  setup_ctr; create --name c
  b_ok exec c ps -o pid,comm
  assert_contains "$B_OUT" "berth-init" "PID 1 is berth's init"
  assert_eq "$(awk '$1==1{print $2}' <<<"$B_OUT")" berth-init
  n=$(grep -c . <<<"$B_OUT")
  assert_le "$n" 5 "processes visible inside (header + init + exec helper + ps)"
  assert_not_contains "$B_OUT" "sshd"
  b_ok exec c cat /proc/1/cmdline
  assert_not_contains "$B_OUT" "berth create" "PID 1 must not show the host command line"
  b_run exec c cat /proc/1/environ
  assert_not_contains "$B_OUT" "BERTH_ROOT" "PID 1 must not show the host environment"
  b_ok exec c hostname
  assert_eq "$B_OUT" c hostname
}

test_proc_masked_and_readonly() {
  setup_ctr; create --name c
  local seen=0
  for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/latency_stats /proc/interrupts; do
    b_ok exec c sh -c "if test -e $p; then wc -c < $p; else echo absent; fi"
    [ "$B_OUT" = absent ] && continue
    seen=$((seen + 1))
    assert_eq "$B_OUT" 0 "$p must read as empty (masked)"
  done
  assert_ge "$seen" 2 "masked /proc files present on this kernel"
  b_ok exec c sh -c 'ls -A /proc/acpi 2>/dev/null | wc -l; ls -A /sys/firmware 2>/dev/null | wc -l'
  assert_eq "$B_OUT" $'0\n0' "masked directories are empty"
  b_run exec c sh -c 'echo 1 > /proc/sys/kernel/hostname'
  assert_ne "$B_RC" 0 "/proc/sys must be read-only"
  b_run exec c sh -c 'echo c > /proc/sysrq-trigger'
  assert_ne "$B_RC" 0 "/proc/sysrq-trigger must be read-only"
  b_run exec c touch /sys/x
  assert_ne "$B_RC" 0 "/sys must be read-only"
  b_ok exec c sh -c 'ls /dev | sort | tr "\n" " "'
  for d in null zero full random urandom tty pts shm ptmx fd stdin stdout stderr; do assert_contains "$B_OUT" "$d" "/dev/$d"; done
  b_ok exec c sh -c 'echo ok > /dev/null && head -c 4 /dev/zero | wc -c'
  assert_eq "$B_OUT" 4
}

test_fork_bomb_stops_at_pids_limit() {
  setup_ctr
  b_ok create -q --no-mount-cwd --json --pids 40 --name c localhost/busybox
  if ! limits_expected; then
    # this host has cgroup v1 and no delegation for the user: berth must say so
    assert_contains "$B_OUT" '"limits_applied": false'
    assert_contains "$B_OUT" "running without"
    return 0
  fi
  assert_contains "$B_OUT" '"limits_applied": true'
  # the shell forks until a fork fails, which ends it (so nothing can be counted
  # from inside afterwards); the sleeps stay and fill the limit
  # (the shell's output goes elsewhere first, so no sleep ever holds the
  # exec's: what does is ended with the exec)
  b_run exec --timeout 30 c sh -c 'exec >/dev/null 2>&1; while :; do sleep 30 & done'
  assert_ne "$B_RC" 124 "the bomb ends by itself, not by the timeout"
  assert_ne "$B_RC" 0 "the bomb ends with the failed fork"
  b_ok status --json c
  local cgp; cgp=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(d["metadata"]["cgroup"]["paths"]))' "$B_OUTF")
  local found=0 d
  for d in $cgp; do
    [ -f "$d/pids.current" ] || continue
    found=1
    assert_le "$(cat "$d/pids.current")" 40 "pids.current of the container's cgroup"
    assert_ge "$(cat "$d/pids.current")" 30 "pids.current: the bomb did fill the limit"
    assert_eq "$(cat "$d/pids.max")" 40 "pids.max"
  done
  assert_eq "$found" 1 "the container has a pids cgroup"
  # the host is fine: we can still fork here
  assert_eq "$(sh -c 'echo host-ok')" host-ok
}

test_memory_hog_oom_killed_inside_only() {
  setup_ctr
  b_ok create -q --no-mount-cwd --json --memory 48m --name c localhost/busybox
  if ! limits_expected; then
    assert_contains "$B_OUT" '"limits_applied": false'
    return 0
  fi
  b_run exec --timeout 60 c sh -c 'x=aaaaaaaa; while true; do x=$x$x; done'
  assert_eq "$B_RC" 137 "the hog is SIGKILLed by the OOM killer"
  b_ok exec c echo alive
  assert_eq "$B_OUT" alive "the container survives"
  b_ok status --json c
  assert_contains "$B_OUT" '"running": true'
}

test_exec_timeout_kills_everything() {
  setup_ctr; create --name c
  b_run exec --timeout 2 c sh -c 'sleep 100 & (sleep 101 &); setsid sleep 102 >/dev/null 2>&1 & sleep 103'
  assert_eq "$B_RC" 124 "exit code on timeout"
  assert_le "$B_SECS" 10 "returns promptly"
  assert_contains "$B_ERR" "timed out"
  b_ok exec c ps
  assert_contains "$B_OUT" berth-init "ps works"
  assert_not_contains "$B_OUT" sleep "no process of the timed-out command survives"
  b_run exec --json --timeout 1 c sleep 30
  assert_eq "$B_RC" 124
  assert_contains "$B_OUT" '"timed_out": true'
  assert_contains "$B_OUT" '"returncode": 124'
}

test_background_survives_normal_exec() {
  setup_ctr; create --name c
  b_ok exec c sh -c 'sleep 300 >/dev/null 2>&1 &'
  b_ok exec c ps
  assert_contains "$B_OUT" sleep "a server started with & keeps running after exec returns"
}

test_orphans_reaped() {
  setup_ctr; create --name c
  b_ok exec c sh -c 'i=0; while [ $i -lt 60 ]; do (true &) ; sh -c "sleep 0.1 &"; i=$((i+1)); done'
  sleep 1
  b_ok exec c sh -c 'cat /proc/[0-9]*/stat 2>/dev/null | awk "{print \$3}" | grep -c Z || true'
  assert_eq "$B_OUT" 0 "zombies inside"
}

test_exec_exit_codes_env_user_workdir() {
  setup_ctr; create --name c -e FOO=bar -w /srv
  b_run exec c sh -c 'exit 42'; assert_eq "$B_RC" 42
  b_run exec c no-such-command; assert_eq "$B_RC" 127; assert_contains "$B_ERR" "not found"
  b_run exec c /etc/passwd; assert_eq "$B_RC" 126
  b_ok exec c sh -c 'echo $FOO $HOME; pwd'
  assert_eq "$B_OUT" $'bar /root\n/srv'
  b_ok exec -e FOO=override -w /tmp c sh -c 'echo $FOO; pwd'
  assert_eq "$B_OUT" $'override\n/tmp'
  b_ok exec -u nobody c id -u
  assert_eq "$B_OUT" 65534
  b_run exec -u nosuchuser c true
  assert_eq "$B_RC" 125; assert_contains "$B_ERR" "not found"
}

# tty_in_tmux ROWS COLS EXIT BERTH_ARGS...: drive berth in a real terminal
# (tmux), type a few commands into the shell it starts, check what came back
tty_in_tmux() {
  command -v tmux >/dev/null || fail "tmux is not installed (scripts/install-deps.sh installs it)"
  local rows=$1 cols=$2 code=$3; shift 3
  berth_cmd "$@"
  # tmux owns the terminal: run berth in the foreground process group
  local sess=berth-$$-$RANDOM cmd i
  for i in "${!B_CMD[@]}"; do [ "${B_CMD[$i]}" = timeout ] && B_CMD[$i]="timeout --foreground"; done
  printf -v cmd '%s ' "${B_CMD[@]}"
  tmux new-session -d -s "$sess" -x "$cols" -y "$rows" "$cmd; echo EXITED-\$?; sleep 30"
  sleep 1.5
  tmux send-keys -t "$sess" 'tty; stty size; echo MARK-$((6*7))' Enter
  sleep 1
  tmux send-keys -t "$sess" "exit $code" Enter
  sleep 1
  local screen; screen=$(tmux capture-pane -p -t "$sess")
  tmux kill-session -t "$sess" 2>/dev/null || true
  echo "$screen"
  assert_contains "$screen" "/dev/pts/" "a terminal inside"
  assert_contains "$screen" "$rows $cols" "the window size is forwarded"
  assert_contains "$screen" "MARK-42" "the shell ran our input"
  assert_contains "$screen" "EXITED-$code" "the exit code comes back"
}

test_exec_tty_through_tmux() {
  setup_ctr; create --name c
  tty_in_tmux 40 120 5 exec -it c sh
}

test_failed_creates_leave_nothing() {
  setup_ctr
  b_fails create --no-mount-cwd --name bad1 localhost/nosuchimage:1
  b_fails create --no-mount-cwd --name bad2 -v /nonexistent-berth:/x localhost/busybox
  assert_contains "$B_MSG" "/nonexistent-berth"
  b_fails create --no-mount-cwd --name 'bad name' localhost/busybox
  b_fails create --no-mount-cwd --name ../x localhost/busybox
  create --name taken
  b_ok status --json taken
  local cgp; cgp=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(d["metadata"]["cgroup"]["paths"]))' "$B_OUTF")
  b_fails create --no-mount-cwd --name taken localhost/busybox
  assert_contains "$B_MSG" "already in use"
  b_ok exec taken true
  b_ok ls --json
  assert_eq "$("$PY" -c 'import json,sys; print(" ".join(c["name"] for c in json.load(open(sys.argv[1]))["containers"]))' "$B_OUTF")" taken
  assert_eq "$(ls "$BERTH_ROOT/containers")" taken "container directories"
  b_ok rm -f taken
  assert_dir_empty "$BERTH_ROOT/containers"
  if [ "$BERTH_MODE" = root ]; then
    local d
    for d in $cgp; do assert_not_exists "$d" "cgroup after rm"; done
    # failed creates made no cgroup of their own (names are <name>-<id>)
    assert_eq "$(find /sys/fs/cgroup -maxdepth 6 -path "*/berth/bad[12]-*" 2>/dev/null | wc -l)" 0 "cgroups of failed creates"
  fi
}

test_rm_graceful_and_force() {
  setup_ctr; create --name soft; create --name hung
  b_ok exec hung sh -c 'trap "" TERM; setsid sh -c "trap \"\" TERM; while true; do sleep 1; done" >/dev/null 2>&1 &'
  b_ok rm soft
  assert_le "$B_SECS" 5 "rm of an idle container"
  b_ok rm -f hung
  assert_le "$B_SECS" 5 "rm -f of a container whose processes ignore SIGTERM"
  b_ok ls --json
  assert_contains "$B_OUT" '"count": 0'
}

test_monitor_killed_then_recover() {
  setup_ctr; create --name c
  mon=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["monitor"]["pid"])' "$BERTH_ROOT/containers/c/state.json")
  init=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["init"]["pid"])' "$BERTH_ROOT/containers/c/state.json")
  # init was kept off the monitor's CPU while it mounted; it has the whole mask back
  assert_eq "$(grep '^Cpus_allowed_list:' "/proc/$init/status" | awk '{print $2}')" "$(grep '^Cpus_allowed_list:' /proc/self/status | awk '{print $2}')" "init has berth's CPU mask"
  kill -9 "$mon"
  sleep 0.3
  b_ok ls --json
  assert_contains "$B_OUT" '"status": "running"'
  b_ok exec c echo still
  kill -9 "$init"; sleep 0.3
  b_ok ls -a --json
  assert_contains "$B_OUT" '"status": "exited"' "init gone: ls notices"
  b_ok rm c
  assert_dir_empty "$BERTH_ROOT/containers"
}

test_symlinked_dev_and_workdir_do_not_escape() {
  setup_ctr
  "$PY" "$IT_DIR/make_evil_image.py" "$T_DIR/evil" "$IMAGES/busybox" dev
  "$PY" "$IT_DIR/make_evil_image.py" "$T_DIR/evilwd" "$IMAGES/busybox" workspace
  [ "$BERTH_MODE" = rootless ] && chmod -R a+rX "$T_DIR/evil" "$T_DIR/evilwd"
  b_ok load -q --name local/evildev:1 "$T_DIR/evil"
  b_fails create --no-mount-cwd --name e1 local/evildev:1
  assert_contains "$B_MSG" "/dev" "the error names /dev"
  assert_contains "$B_MSG" "symlink"
  assert_dir_empty "$BERTH_ROOT/containers"
  b_ok load -q --name local/evilwd:1 "$T_DIR/evilwd"
  b_ok create -q --no-mount-cwd --name e2 local/evilwd:1
  b_ok exec e2 sh -c 'pwd; touch marker-from-container; ls -d /marker-from-container'
  assert_contains "$B_OUT" "/marker-from-container" "the symlinked workdir resolves inside the container"
  assert_not_exists /marker-from-container "host root"
}

test_mounts_rw_ro() {
  setup_ctr
  mkdir -p "$T_DIR/rw" "$T_DIR/ro"; echo host > "$T_DIR/ro/f"
  [ "$BERTH_MODE" = rootless ] && chown "$TEST_USER:" "$T_DIR/rw" "$T_DIR/ro" "$T_DIR/ro/f"
  b_ok create -q --no-mount-cwd --name c -v "$T_DIR/rw:/data" -v "$T_DIR/ro:/cfg:ro" localhost/busybox
  b_ok exec c sh -c 'echo hello > /data/out; cat /cfg/f'
  assert_eq "$B_OUT" host
  assert_file_content "$T_DIR/rw/out" $'hello\n'
  assert_eq "$(stat -c %u "$T_DIR/rw/out")" "$ROOT_UID" "files written by container root belong to $ROOT_UID on the host"
  b_run exec c sh -c 'echo x > /cfg/f'
  assert_ne "$B_RC" 0 "a read-only mount refuses writes"
  assert_file_content "$T_DIR/ro/f" $'host\n'
}

test_mount_cwd_default() {
  setup_ctr
  mkdir -p "$T_DIR/proj"; echo src > "$T_DIR/proj/main.c"
  [ "$BERTH_MODE" = rootless ] && chown -R "$TEST_USER:" "$T_DIR/proj"
  berth_cmd create -q --name c localhost/busybox
  (cd "$T_DIR/proj" && "${B_CMD[@]}") >/dev/null || fail "create in a project dir"
  b_ok exec c sh -c 'pwd; cat main.c'
  assert_eq "$B_OUT" $'/workspace\nsrc'
}

test_copy_in_out_confined() {
  setup_ctr; create --name c
  mkdir -p "$T_DIR/in/sub"; echo a > "$T_DIR/in/a"; echo b > "$T_DIR/in/sub/b"
  mkdir -p "$T_DIR/out"
  [ "$BERTH_MODE" = rootless ] && chown -R "$TEST_USER:" "$T_DIR/in" "$T_DIR/out"
  b_ok cp "$T_DIR/in" c:/root/
  b_ok exec c sh -c 'cat /root/in/a /root/in/sub/b'
  assert_eq "$B_OUT" $'a\nb'
  # a symlink planted in the container resolves inside it, never on the host
  b_ok exec c sh -c 'ln -s /etc /root/evil; ln -s / /root/top; echo container > /etc/berth-marker'
  b_ok cp c:/root/evil/hostname "$T_DIR/out/hn"
  assert_file_content "$T_DIR/out/hn" $'c\n' "copy_out through a symlink reads the container's /etc"
  b_ok cp "$T_DIR/in/a" c:/root/top/etc/berth-in
  assert_not_exists /etc/berth-in "host /etc"
  b_ok exec c cat /etc/berth-in
  assert_eq "$B_OUT" a
  b_ok cp c:/root "$T_DIR/out/"
  assert_file_content "$T_DIR/out/root/in/sub/b" $'b\n'
  assert_eq "$(readlink "$T_DIR/out/root/evil")" /etc "symlinks are copied as symlinks"
}

test_names_and_listing() {
  setup_ctr
  b_ok create --no-mount-cwd localhost/busybox
  [[ "$B_OUT" =~ ^env-[0-9a-f]{6}$ ]] || fail "generated name '$B_OUT' is not env-<6 hex>"
  # (busybox has no package manager: the profile's step fails, create exits 1 and keeps it)
  b_run create --no-mount-cwd --purpose python localhost/busybox
  assert_eq "$B_RC" 1 "create whose profile step failed"
  [[ "$B_OUT" =~ ^python-[0-9a-f]{6}$ ]] || fail "generated name '$B_OUT' is not python-<6 hex>"
  b_ok create -q --no-mount-cwd --name p1 --persistent localhost/busybox
  b_ok ls
  assert_contains "$B_OUT" NAME
  b_ok status --json p1
  for k in container running status started_at image metadata; do assert_contains "$B_OUT" "\"$k\""; done
  assert_contains "$B_OUT" '"persistent": true'
  b_ok status --health --json p1
  assert_contains "$B_OUT" '"healthy": true'
  b_fails status nope
  assert_eq "$B_MSG" "Container not found: nope"
  b_fails rm --all
  b_ok rm --all --confirm -f --json
  assert_contains "$B_OUT" '"destroyed": 3'
}

test_run_rm() {
  setup_ctr
  b_run run --rm --no-mount-cwd localhost/busybox sh -c 'echo inside; exit 3'
  assert_eq "$B_RC" 3
  assert_eq "$B_OUT" inside
  b_ok ls --json
  assert_contains "$B_OUT" '"count": 0' "--rm removed it"
}

# the state file's PID of ROLE (monitor, init) for container NAME, once it is running
state_pid() { # NAME ROLE
  local i
  for i in $(seq 100); do
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["status"]=="running"; print(d[sys.argv[2]]["pid"])' \
      "$BERTH_ROOT/containers/$1/state.json" "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

test_run_is_the_main_process() {
  setup_ctr
  # confined like exec, with only stdio open, as PID 2 under berth's init;
  # berth itself started with SIGPIPE ignored: the command must not inherit that
  trap '' PIPE
  b_ok run --rm --no-mount-cwd --network none localhost/busybox sh -c 'cat /proc/self/status; ls /proc/self/fd | tr "\n" " "; echo; echo ppid=$PPID; cat /proc/1/comm; grep "^Seccomp" /proc/1/status | sed "s/^/init-/"'
  trap - PIPE
  # the command inherits init's filter (berth's): one filter each, none stacked
  assert_eq "$(grep '^Seccomp_filters:' "$B_OUTF" | awk '{print $2}')" 1 "the command's filters"
  assert_eq "$(grep '^init-Seccomp:' "$B_OUTF" | awk '{print $2}')" 2 "init's seccomp mode"
  assert_eq "$(grep '^init-Seccomp_filters:' "$B_OUTF" | awk '{print $2}')" 1 "init's filters"
  for f in CapEff CapPrm CapBnd CapInh CapAmb; do
    assert_eq "$(grep "^$f:" "$B_OUTF" | awk '{print $2}')" 0000000000000000 "$f"
  done
  assert_eq "$(grep '^NoNewPrivs:' "$B_OUTF" | awk '{print $2}')" 1 NoNewPrivs
  assert_eq "$(grep '^Seccomp:' "$B_OUTF" | awk '{print $2}')" 2 Seccomp
  # every signal as a fresh process has it (berth ignores SIGPIPE while it launches)
  assert_eq "$(grep '^SigIgn:' "$B_OUTF" | awk '{print $2}')" 0000000000000000 "no signal ignored"
  assert_eq "$(grep '^SigBlk:' "$B_OUTF" | awk '{print $2}')" 0000000000000000 "no signal blocked"
  assert_contains "$B_OUT" "ppid=1" "the command is init's child"
  # init starts off the launcher's CPU (cpu_aside); its command has berth's whole mask
  assert_eq "$(grep '^Cpus_allowed_list:' "$B_OUTF" | awk '{print $2}')" "$(grep '^Cpus_allowed_list:' /proc/self/status | awk '{print $2}')" "the command has berth's CPU mask"
  assert_contains "$B_OUT" "berth-init" "PID 1 is berth's init"
  assert_eq "$(grep -E '^[0-9 ]+$' "$B_OUTF" | tr -s ' ' | sed 's/ $//')" "0 1 2 3" "no fd of berth's reaches the command (3 is ls's own)"
  # stdin passes through, -e reaches it, the exit code comes back
  b_run_stdin() { local in=$1; shift; berth_cmd "$@"; B_RC=0; B_OUT=$(printf '%s' "$in" | "${B_CMD[@]}" 2>"$T_DIR/stdin.err") || B_RC=$?; }
  b_run_stdin "piped-in" run --rm -i --no-mount-cwd --network none -e K=vee localhost/busybox sh -c 'read l; echo "$l $K"; exit 9'
  assert_eq "$B_RC" 9
  assert_eq "$B_OUT" "piped-in vee"
  b_run run --rm --no-mount-cwd --network none localhost/busybox /no/such/program
  assert_eq "$B_RC" 127 "a missing command"
  assert_contains "$B_ERR" "/no/such/program"
  # --json captures
  b_run run --rm --json --no-mount-cwd --network none localhost/busybox sh -c 'echo out; echo err >&2; exit 4'
  assert_eq "$B_RC" 4
  "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["stdout"]=="out\n" and d["stderr"]=="err\n" and d["returncode"]==4, d' "$B_OUTF" \
    || fail "run --json: $B_OUT"
  b_ok ls --json
  assert_contains "$B_OUT" '"count": 0'
  assert_dir_empty "$BERTH_ROOT/containers"
}

test_run_without_rm_leaves_it_exited() {
  setup_ctr
  b_run run --no-mount-cwd --network none --name kept localhost/busybox sh -c 'echo data > /keep; exit 3'
  assert_eq "$B_RC" 3
  assert_contains "$B_ERR" "berth rm kept"
  b_ok status --json kept
  assert_contains "$B_OUT" '"status": "exited"'
  assert_contains "$B_OUT" '"exit_code": 3'
  b_fails exec kept true
  assert_contains "$B_MSG" "not running"
  b_ok rm kept
  b_ok ls --json
  assert_contains "$B_OUT" '"count": 0'
}

test_run_forwards_signals() {
  setup_ctr
  berth_cmd run --rm --no-mount-cwd --network none --name sig localhost/busybox sh -c 'trap "exit 7" TERM; echo ready; while :; do sleep 0.1; done'
  "${B_CMD[@]}" >"$T_DIR/sig.out" 2>"$T_DIR/sig.err" &
  local job=$! mon
  mon=$(state_pid sig monitor) || fail "run never got going: $(cat "$T_DIR/sig.err")"
  for _ in $(seq 50); do grep -q ready "$T_DIR/sig.out" && break; sleep 0.1; done
  kill -TERM "$mon"
  local rc=0
  wait "$job" || rc=$?
  assert_eq "$rc" 7 "SIGTERM reached the command's trap"
  b_ok ls --json
  assert_contains "$B_OUT" '"count": 0'
}

test_run_launcher_killed_then_collected() {
  setup_ctr
  berth_cmd run --rm --no-mount-cwd --network none --name orphan localhost/busybox sleep 100
  "${B_CMD[@]}" >/dev/null 2>&1 &
  local job=$! mon init
  mon=$(state_pid orphan monitor) || fail "run never got going"
  init=$(state_pid orphan init)
  kill -9 "$mon"
  wait "$job" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$init" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$init" 2>/dev/null || fail "the container outlived its killed launcher"
  b_ok ls --json
  assert_contains "$B_OUT" '"count": 0' "ls finishes the --rm"
  assert_dir_empty "$BERTH_ROOT/containers"
  # a run --rm's files go through the trash, emptied in the background
  b_ok run --rm --no-mount-cwd --network none localhost/busybox true
  for _ in $(seq 50); do [ -z "$(ls -A "$BERTH_ROOT/trash" 2>/dev/null)" ] && break; sleep 0.1; done
  assert_dir_empty "$BERTH_ROOT/trash" "removed containers' files"
}

# a run's cgroup: the command is in it while it runs, and it is gone soon
# after (the trash child removes it)
test_run_cgroup_made_and_removed() {
  setup_ctr
  berth_cmd run --rm --no-mount-cwd --network none --name cgr localhost/busybox sleep 2
  "${B_CMD[@]}" >/dev/null 2>"$T_DIR/cgr.err" &
  local job=$! dirs="" d
  state_pid cgr init >/dev/null || fail "run never got going: $(cat "$T_DIR/cgr.err")"
  for _ in $(seq 50); do
    dirs=$(find /sys/fs/cgroup -maxdepth 7 -type d -name 'cgr-*' 2>/dev/null)
    [ -n "$dirs" ] && break
    sleep 0.1
  done
  [ -n "$dirs" ] || fail "no cgroup for the container"
  for d in $dirs; do
    [ -n "$(cat "$d/cgroup.procs")" ] || fail "nothing in $d while the command runs"
  done
  wait "$job" || fail "run failed: $(cat "$T_DIR/cgr.err")"
  for _ in $(seq 50); do
    [ -z "$(find /sys/fs/cgroup -maxdepth 7 -type d -name 'cgr-*' 2>/dev/null)" ] && break
    sleep 0.1
  done
  assert_eq "$(find /sys/fs/cgroup -maxdepth 7 -type d -name 'cgr-*' 2>/dev/null)" "" "the cgroup is gone"
}

# rootless: containers are made in the keeper's user namespace; a killed
# keeper is replaced by the next start
test_rootless_userns_keeper() {
  setup_ctr
  # a run dir of its own: its own keeper, found through its record
  local run=$T_DIR/run
  mkdir -p "$run" && chown "$TEST_USER:" "$run"
  B_EXTRA_ENV="BERTH_RUNROOT=$run"
  b_ok run --rm --no-mount-cwd --network none localhost/busybox cat /proc/self/uid_map
  # relative to its parent, the keeper's: 0 -> 0 (not the host's $TEST_UID)
  assert_eq "$(head -n 1 "$B_OUTF" | tr -s ' ' | sed 's/^ //')" "0 0 1" "the container's map, seen from inside"
  local k
  k=$(awk '{print $1}' "$run/userns-keeper")
  assert_eq "$(cat "/proc/$k/comm")" berth-userns "the recorded keeper"
  assert_contains "$(tr -s ' ' <"/proc/$k/uid_map")" " 0 $TEST_UID 1" "the keeper maps the user"
  assert_contains "$(tr -s ' ' <"/proc/$k/uid_map")" " 1 $SUBUID_START " "and the subordinate range"
  # an exec joins the nested user namespace
  b_ok create --no-mount-cwd --network none --name kc localhost/busybox
  b_ok exec kc id -u
  assert_eq "$B_OUT" 0
  b_ok rm -f kc
  kill -9 "$k"
  b_ok run --rm --no-mount-cwd --network none localhost/busybox echo again
  assert_eq "$B_OUT" again
  local k2
  k2=$(awk '{print $1}' "$run/userns-keeper")
  [ -n "$k2" ] && [ "$k2" != "$k" ] && [ "$(cat "/proc/$k2/comm")" = berth-userns ] \
    || fail "no new keeper after the old one was killed: '$k2'"
  kill "$k2"
  unset B_EXTRA_ENV
}

test_run_tty_through_tmux() {
  setup_ctr
  tty_in_tmux 30 100 6 run --rm -it --no-mount-cwd --network none localhost/busybox sh
}

test_run_with_setup_goes_the_long_way() {
  setup_ctr
  b_run run --rm --no-mount-cwd --network none --setup 'echo provisioned > /tmp/p' localhost/busybox cat /tmp/p
  assert_eq "$B_RC" 0 "$B_ERR"
  assert_eq "$B_OUT" provisioned
  b_ok ls --json
  assert_contains "$B_OUT" '"count": 0'
}

test_copied_rootfs_fallback() {
  b_ok load -q "$IMAGES/multilayer"
  trap 'b_run rm --all --confirm -f >/dev/null 2>&1 || true' EXIT
  # asked for: config rootfs = copy
  write_config '{"rootfs":"copy"}'
  b_ok create --no-mount-cwd --network none --name c localhost/multilayer
  assert_contains "$B_ERR" "copied from the layers" "create says so"
  b_ok exec c sh -c 'ls /data | tr "\n" " "; ls /data/opaque; stat -c "%a %u" /data/setuid-bin /data/owned.txt'
  assert_not_contains "$B_OUT" "gone.txt" "a whiteout deletes"
  assert_not_contains "$B_OUT" "gonedir"
  assert_contains "$B_OUT" "layer3.txt"
  assert_not_contains "$B_OUT" "old.txt" "an opaque directory hides the lower layers"
  assert_contains "$B_OUT" "new.txt"
  assert_contains "$B_OUT" "4755 0" "setuid kept"
  assert_contains "$B_OUT" "640 1000" "owners kept"
  b_ok rm -f c
  # automatic: a store on overlayfs cannot be an overlay upper layer
  write_config '{}'
  mkdir -p "$T_DIR/o/l" "$T_DIR/o/u" "$T_DIR/o/w" "$T_DIR/o/m"
  mount -t overlay overlay -o lowerdir="$T_DIR/o/l",upperdir="$T_DIR/o/u",workdir="$T_DIR/o/w" "$T_DIR/o/m"
  chmod 777 "$T_DIR/o/m"
  BERTH_ROOT=$T_DIR/o/m/root b_ok load -q "$IMAGES/busybox"
  BERTH_ROOT=$T_DIR/o/m/root b_ok create --no-mount-cwd --network none --name auto localhost/busybox
  assert_contains "$B_ERR" "overlayfs could not be mounted here"
  # next in line: fuse-overlayfs where it can run, else the copy
  if fuse_usable; then assert_contains "$B_ERR" "fuse-overlayfs serves the root filesystem"
  else assert_contains "$B_ERR" "copied from the layers"; fi
  BERTH_ROOT=$T_DIR/o/m/root b_ok exec auto cat /etc/passwd
  assert_contains "$B_OUT" "root:x:0:0"
  BERTH_ROOT=$T_DIR/o/m/root b_ok rm -f auto
  umount -l "$T_DIR/o/m"
}

test_fuse_overlayfs_root() {
  setup_ctr
  write_config '{"rootfs":"fuse"}'
  if ! fuse_usable; then
    # it cannot run here (rootless on this VM: /dev/fuse is 0600): the
    # create says so and leaves nothing (overlayfs itself is used unless asked)
    b_run create -q --no-mount-cwd --network none --name c localhost/busybox
    assert_ne "$B_RC" 0
    assert_contains "$B_ERR" "fuse-overlayfs could not serve the root filesystem"
    assert_not_exists "$BERTH_ROOT/containers/c"
    write_config '{}'
    return 0
  fi
  b_ok create --no-mount-cwd --network none --name c localhost/busybox
  assert_contains "$B_ERR" "served by fuse-overlayfs" "create says so"
  b_ok exec c sh -c 'grep " / " /proc/self/mountinfo; echo data >/root/f; cat /root/f; ps -o comm | grep -c fuse; true'
  assert_contains "$B_OUT" "fuse.fuse-overlayfs" "the root is the FUSE mount"
  assert_contains "$B_OUT" "data"
  assert_eq "$(tail -n1 <<<"$B_OUT")" 0 "the daemon is not among the container's processes"
  assert_exists "$BERTH_ROOT/containers/c/upper/root/f"
  # the daemon runs in our pid and mount namespaces, not the container's
  local d init
  d=$(pgrep -f "fuse-overlayfs .*upperdir=$BERTH_ROOT/containers/c/upper" | head -n1)
  [ -n "$d" ] || fail "no fuse-overlayfs daemon for c"
  init=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["init"]["pid"])' "$BERTH_ROOT/containers/c/state.json")
  assert_eq "$(readlink /proc/$d/ns/pid)" "$(readlink /proc/self/ns/pid)" "daemon in the host's pid namespace"
  assert_ne "$(readlink /proc/$d/ns/mnt)" "$(readlink /proc/$init/ns/mnt)" "daemon outside the container's mount namespace"
  b_ok rm -f c
  sleep 0.5
  assert_eq "$(pgrep -fc "fuse-overlayfs .*upperdir=$BERTH_ROOT/containers/c/upper" || true)" 0 "the daemon ends with the container"
  # a one-shot too
  b_ok run --rm --no-mount-cwd --network none localhost/busybox sh -c 'grep -c "fuse.fuse-overlayfs" /proc/self/mountinfo'
  assert_ge "$B_OUT" 1
  write_config '{}'
}

test_idle_memory() {
  setup_ctr; create --name c
  [ "$(uname -m)" = x86_64 ] || fail "berth-tiny is built for x86_64 only"
  local mon init total=0 p
  read -r mon init < <("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["monitor"]["pid"], d["init"]["pid"])' "$BERTH_ROOT/containers/c/state.json")
  for p in $mon $init; do
    total=$((total + $(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup)))
  done
  assert_eq "$(cat /proc/$mon/comm) $(cat /proc/$init/comm)" "berth-monitor berth-init"
  assert_le "$total" 200 "idle PSS of monitor + init in KiB"
  # and the container still ends properly: status recorded by the monitor
  kill -9 "$init"; sleep 0.5
  b_ok status --json c
  assert_contains "$B_OUT" '"exit_code": 137'
}

# rootless without subordinate ids (hidden in a private mount namespace):
# containers get a single-id mapping, with a note that says so
test_single_id_mapping() {
  grep -v "^$TEST_USER:" /etc/subuid >"$T_DIR/subuid" || true
  grep -v "^$TEST_USER:" /etc/subgid >"$T_DIR/subgid" || true
  chmod 644 "$T_DIR/subuid" "$T_DIR/subgid"
  local B_WRAP=(unshare -m sh -c 'mount --bind "$0" /etc/subuid && mount --bind "$1" /etc/subgid && shift && exec "$@"'
                "$T_DIR/subuid" "$T_DIR/subgid")
  trap 'b_run rm --all --confirm -f >/dev/null 2>&1 || true' EXIT
  b_ok load -q "$IMAGES/multilayer"
  b_ok create --no-mount-cwd --network none --name s localhost/multilayer
  assert_contains "$B_ERR" "note: a single-id mapping: only root (you) exists in this container" "create says so"
  b_ok exec s sh -c 'id -u; stat -c "%u:%g" /data/owned.txt; cat /proc/self/uid_map'
  assert_eq "$(sed -n 1p "$B_OUTF")" 0 "root inside"
  assert_eq "$(sed -n 2p "$B_OUTF")" 0:0 "a file of uid 1000 in the image is root's"
  assert_eq "$(sed -n 3p "$B_OUTF" | awk '{print $1, $2, $3}')" "0 $TEST_UID 1" "only the user is mapped"
  b_run exec -u 1000 s true
  assert_eq "$B_RC" 126 "no user 1000 to become"
  assert_contains "$B_ERR" "only root exists in this container" "and berth says why"
  b_ok run --rm --no-mount-cwd --network none localhost/multilayer id -u
  assert_eq "$B_OUT" 0
  assert_contains "$B_ERR" "single-id mapping" "run says so too"
  b_ok rm -f s
  b_ok ls --json
  assert_contains "$B_OUT" '"count": 0'
  assert_dir_empty "$BERTH_ROOT/containers"
}

# launch reads the container's namespaces from its bundle, as berth-oci
# does: a config.json that lists others than berth made it with is refused
# at start, before anything runs, and the same config put back starts
test_launch_reads_the_bundles_namespaces() {
  setup_ctr
  b_ok create -q --no-mount-cwd --name c localhost/busybox
  b_ok stop c
  local cfg=$BERTH_ROOT/containers/c/config.json
  cp "$cfg" "$T_DIR/config.keep"
  "$PY" - "$cfg" <<'EOF2'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
with open(p, "w") as f:  # in place: the file keeps its owner
    json.dump(c, f)
EOF2
  b_run start c
  assert_ne "$B_RC" 0 "start with a config.json that lost the pid namespace"
  assert_contains "$B_OUT$B_ERR" "lists other namespaces than berth makes" "says why"
  cat "$T_DIR/config.keep" >"$cfg"
  b_ok start c
  b_ok exec c readlink /proc/self/ns/pid
  assert_ne "$B_OUT" "$(readlink /proc/self/ns/pid)" "started again, in a pid namespace of its own"
}

t_run "confinement: caps 0, no_new_privs, seccomp" test_confinement_status
t_run "idle container: monitor + init under 200 KiB PSS" test_idle_memory
t_run "overlay unavailable: fuse-overlayfs or a copied root filesystem, and berth says so" test_copied_rootfs_fallback
t_run "fuse-overlayfs serves the root (config rootfs fuse), its daemon outside the container" test_fuse_overlayfs_root
t_run "dangerous syscalls fail with EPERM, unlisted ones with ENOSYS, personality only the default" test_dangerous_syscalls_fail
t_run "a seccomp profile of the user's own (Docker JSON): workloads get it, init keeps berth's, a bad one leaves nothing" test_own_seccomp_profile
t_run "pid namespace hides the host" test_pid_namespace_hides_host
t_run "/proc masked and read-only paths, /dev" test_proc_masked_and_readonly
t_run "fork bomb stops at the pids limit" test_fork_bomb_stops_at_pids_limit
t_run "memory hog is OOM-killed inside only" test_memory_hog_oom_killed_inside_only
t_run "exec timeout kills the whole tree" test_exec_timeout_kills_everything
t_run "background processes survive a normal exec" test_background_survives_normal_exec
t_run "orphans are reaped" test_orphans_reaped
t_run "exec exit codes, env, user, workdir" test_exec_exit_codes_env_user_workdir
t_run "exec -it through a real terminal (tmux)" test_exec_tty_through_tmux
t_run "failed creates leave nothing" test_failed_creates_leave_nothing
t_run "rm: graceful and forced" test_rm_graceful_and_force
test_killed_create_is_cleaned() {
  setup_ctr
  # what a create killed after claiming its name leaves: a directory whose
  # state says "creating" and whose lock nobody holds
  mkdir -p "$BERTH_ROOT/containers/zombie"
  echo '{"status":"creating","name":"zombie"}' >"$BERTH_ROOT/containers/zombie/state.json"
  : >"$BERTH_ROOT/containers/zombie/lock"
  [ "$BERTH_MODE" = rootless ] && chown -R "$TEST_USER:" "$BERTH_ROOT/containers"
  b_ok create -q --no-mount-cwd --network none --name zombie localhost/busybox
  b_ok exec zombie true
  mkdir -p "$BERTH_ROOT/containers/ghost2"
  echo '{"status":"creating","name":"ghost2"}' >"$BERTH_ROOT/containers/ghost2/state.json"
  : >"$BERTH_ROOT/containers/ghost2/lock"
  [ "$BERTH_MODE" = rootless ] && chown -R "$TEST_USER:" "$BERTH_ROOT/containers"
  b_ok ls --json
  assert_not_contains "$B_OUT" ghost2 "ls reaps a dead create"
  assert_not_exists "$BERTH_ROOT/containers/ghost2"
}

t_run "monitor killed: ls and rm recover" test_monitor_killed_then_recover
t_run "a create that died is cleaned up by the next command" test_killed_create_is_cleaned
t_run "symlinked /dev and workdir do not escape" test_symlinked_dev_and_workdir_do_not_escape
t_run "mounts: rw and ro" test_mounts_rw_ro
t_run "mount_cwd binds the current directory" test_mount_cwd_default
t_run "copy in/out confined to the container" test_copy_in_out_confined
t_run "names, ls, status" test_names_and_listing
t_run "run --rm" test_run_rm
t_run "run: the command is the container's main process, confined, stdio straight through" test_run_is_the_main_process
t_run "run without --rm leaves the container exited" test_run_without_rm_leaves_it_exited
t_run "run passes signals on to the command" test_run_forwards_signals
t_run "run: a killed launcher takes its container along; ls collects it" test_run_launcher_killed_then_collected
# rootless on this host's cgroup v1 has no cgroup to look for (see cgroups in architecture.md)
if [ "$BERTH_MODE" = root ]; then
  t_run "run: the command runs in the container's cgroup, removed after" test_run_cgroup_made_and_removed
else
  t_run "rootless: containers are made in the user namespace keeper's; a killed keeper is replaced" test_rootless_userns_keeper
  t_run "rootless without subordinate ids: a single-id mapping, and berth says so" test_single_id_mapping
fi
t_run "launch reads its namespaces from the bundle; a config.json with others is refused at start" test_launch_reads_the_bundles_namespaces
t_run "run -it through a real terminal (tmux)" test_run_tty_through_tmux
t_run "run with --setup provisions first (create + exec)" test_run_with_setup_goes_the_long_way
t_summary
