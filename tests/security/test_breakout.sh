#!/bin/bash
# berth-suite: parallel-modes
# The standing breakout suite: one test per attack class, each written so
# that it fails on the code that had the hole. Run as root and rootless
# (BERTH_MODE) by tests/integration/run.sh. docs/security.md names each
# class, its defence and its test here.
. "$(dirname "$0")/../integration/lib.sh"

SEC_DIR=$REPO/tests/security
ATTACK=$SUITE_TMP/exe_attack
gcc -static -O2 -o "$ATTACK" "$SEC_DIR/exe_attack.c" 2>"$SUITE_TMP/attack.log" && chmod 755 "$ATTACK"

create() { b_ok create -q --no-mount-cwd "$@" localhost/busybox; }

# a berth binary of this test's own that the container's root could write if
# it ever reached it: as root a root-owned file (container root is host root
# without capabilities, and owns it), rootless one owned by the test user (a
# per-user install); every berth command of the test runs it
own_berth() {
  mkdir -p "$T_DIR/bin"
  cp "$BERTH_BIN" "$T_DIR/bin/berth"
  chmod 755 "$T_DIR/bin" "$T_DIR/bin/berth"
  [ "$BERTH_MODE" = rootless ] && chown "$TEST_USER:" "$T_DIR/bin" "$T_DIR/bin/berth"
  BERTH_BIN=$T_DIR/bin/berth
  BIN_HASH=$(sha256sum "$BERTH_BIN" | cut -d' ' -f1)
}
assert_bin_intact() {
  assert_eq "$(sha256sum "$BERTH_BIN" | cut -d' ' -f1)" "$BIN_HASH" "sha256 of the host's berth binary"
  ! grep -q PWNED-BY-CONTAINER "$BERTH_BIN" || fail "the container wrote into the host's berth binary"
}
# start the attacker in container $1 for $2 seconds (output in the container's /tmp/attack.log)
start_attacker() {
  [ -x "$ATTACK" ] || fail "could not build the attacker: $(cat "$SUITE_TMP/attack.log")"
  cp "$ATTACK" "$T_DIR/exe_attack"
  chmod 755 "$T_DIR/exe_attack"
  b_ok cp "$T_DIR/exe_attack" "$1:/exe_attack"
  b_ok exec "$1" sh -c "(/exe_attack $2 >/tmp/attack.log 2>&1 &); sleep 0.2; head -n1 /tmp/attack.log"
  assert_contains "$B_OUT" "attacker ready"
}
# wait for the attacker in $1 to finish; its summary must show no write
# (busybox by its own name: the tests turn /bin/sh into a trap)
attacker_result() {
  local i
  for i in $(seq 1 100); do
    b_ok exec "$1" /bin/busybox cat /tmp/attack.log
    [[ $B_OUT == *summary* ]] && break
    sleep 0.2
  done
  assert_contains "$B_OUT" "summary" "the attacker's summary"
  assert_contains "$B_OUT" "wrote=0" "the attacker wrote nothing into a foreign executable"
  ATTACK_LOG=$B_OUT
}

# CVE-2019-5736, trigger 1: the command is /proc/self/exe itself
test_exe_direct() {
  own_berth; setup_ctr; create --name c
  start_attacker c 4
  local i
  for i in $(seq 1 25); do
    b_run exec c /proc/self/exe exec c true
    # berth would answer its own usage or errors; what runs is berth-tiny, which knows no such mode
    assert_not_contains "$B_OUT$B_ERR" "Usage: berth" "the host's berth ran inside the container"
    assert_not_contains "$B_OUT$B_ERR" "berth: error" "the host's berth ran inside the container"
  done
  attacker_result c
  assert_bin_intact
  # the one-shot path: run's command
  b_run run --rm --no-mount-cwd --network none localhost/busybox /proc/self/exe ls
  assert_not_contains "$B_OUT$B_ERR" "Usage: berth"
  assert_bin_intact
}

# trigger 2: the image's /bin/sh is a symlink to /proc/self/exe, and the
# tool's exec goes through /bin/sh -c
test_exe_symlinked_sh() {
  own_berth; setup_ctr; create --name c
  start_attacker c 4
  b_ok exec c sh -c 'ln -sf /proc/self/exe /bin/evil && ln -sf /proc/self/exe /bin/sh'
  local i
  for i in $(seq 1 15); do
    tool '{"operation":"exec","container":"c","command":"ls /"}'
    assert_not_contains "$B_OUT" "Usage: berth"
    b_run exec c evil
    assert_not_contains "$B_OUT$B_ERR" "Usage: berth"
  done
  attacker_result c
  assert_bin_intact
  # an image made of it: run's command path meets the same link
  b_ok exec c /bin/busybox rm /exe_attack /tmp/attack.log
  tool '{"operation":"snapshot","container":"c","name":"evil"}'
  assert_eq "$(field '["success"]')" true "snapshot"
  b_run run --rm --no-mount-cwd --network none berth.local/snapshot/evil sh -c 'echo hi'
  assert_not_contains "$B_OUT$B_ERR" "Usage: berth"
  assert_ne "$B_RC" 0 "/bin/sh -> /proc/self/exe runs nothing useful"
  assert_bin_intact
}

# trigger 3: a script whose interpreter is /proc/self/exe
test_exe_shebang() {
  own_berth; setup_ctr; create --name c
  start_attacker c 4
  b_ok exec c sh -c 'printf "#!/proc/self/exe\n" >/bin/evil && chmod 755 /bin/evil && printf "#!/proc/self/exe exec\n" >/bin/evil2 && chmod 755 /bin/evil2'
  local i
  for i in $(seq 1 25); do
    b_run exec c /bin/evil exec c true
    assert_not_contains "$B_OUT$B_ERR" "Usage: berth"
  done
  # the interpreter names berth-tiny's own mode: it execs the script again,
  # in a loop inside the container that the timeout ends
  b_run exec --timeout 1 c /bin/evil2
  assert_eq "$B_RC" 124 "a self-exec loop ends at the timeout"
  attacker_result c
  assert_bin_intact
}

# the helpers berth runs inside a container's pid namespace keep their
# exe, maps, environ, memory and fds closed to it. Two defences hold that:
# they are not dumpable, and they hold capabilities no workload has; this
# asserts the outcome, so it fails only if both are lost (the build before
# the non-dumpable change passed it on the capabilities alone)
test_helper_proc_closed() {
  setup_ctr; create --name c
  b_ok exec c sh -c 'p=$PPID; grep -q berth /proc/$p/comm && echo helper=$(cat /proc/$p/comm);
    for f in exe cwd root; do readlink /proc/$p/$f >/dev/null 2>&1 && echo open:$f; done;
    for f in maps environ mem auxv; do cat /proc/$p/$f >/dev/null 2>&1 && echo open:$f; done;
    for f in /proc/$p/fd/*; do readlink $f >/dev/null 2>&1 && echo open:fd; done; echo end'
  assert_contains "$B_OUT" "helper=berth-exec" "the command's parent is berth's exec supervisor"
  assert_not_contains "$B_OUT" "open:" "a part of the supervisor's /proc entry was readable"
  assert_contains "$B_OUT" "end"
  # ptrace is refused (seccomp and, behind it, the dumpable flag)
  b_run exec c sh -c 'cat /proc/$PPID/status | grep -i ^TracerPid'
  assert_eq "$B_RC" 0
}

# /etc/group with hundreds of memberships: the lookup had a fixed array of
# 64 and wrote past it (chosen values at chosen stack offsets)
test_hostile_group() {
  setup_ctr; create --name c
  b_ok exec c sh -c 'i=0; while [ $i -lt 400 ]; do echo "g$i:x:$((2000 + i)):root,nobody"; i=$((i + 1)); done >>/etc/group; wc -l /etc/group'
  b_ok exec c id
  assert_contains "$B_OUT" "uid=0(root)"
  b_ok exec c cat /proc/self/status
  local groups
  groups=$(grep '^Groups:' "$B_OUTF" | wc -w)
  assert_ge "$groups" 300 "supplementary groups set from /etc/group (words on the Groups: line)"
  b_ok exec -u nobody c id -u
  # the one-shot path: init looks the user up while it holds every capability
  tool '{"operation":"snapshot","container":"c","name":"groups"}'
  assert_eq "$(field '["success"]')" true "snapshot"
  b_ok run --rm --no-mount-cwd --network none berth.local/snapshot/groups id -u
  assert_eq "$B_OUT" 0
}

# /etc/passwd replaced by a FIFO (or a device, or a link into /proc): a clear
# error at once, never a hang past the timeout
test_hostile_passwd() {
  setup_ctr; create --name c
  b_ok exec c sh -c 'rm /etc/passwd && mkfifo /etc/passwd'
  b_run exec --timeout 5 c true
  assert_eq "$B_RC" 125 "exec with a FIFO /etc/passwd"
  assert_contains "$B_ERR" "/etc/passwd cannot be used: it is not a regular file"
  assert_le "$B_SECS" 3 "seconds the exec took"
  tool '{"operation":"exec","container":"c","command":"true","timeout":5}'
  assert_contains "$(cat "$B_OUTF")" "not a regular file"
  # an image with it: run fails at once with the same words
  tool '{"operation":"snapshot","container":"c","name":"fifo"}'
  assert_eq "$(field '["success"]')" true "snapshot of a container with a FIFO"
  b_run run --rm --no-mount-cwd --network none berth.local/snapshot/fifo true
  assert_ne "$B_RC" 0
  assert_contains "$B_ERR" "not a regular file"
  assert_le "$B_SECS" 5 "seconds the run took"
  # a link into /proc would show berth its own environment
  create --name d
  b_ok exec d sh -c 'rm /etc/passwd && ln -s /proc/self/environ /etc/passwd'
  b_run exec d true
  assert_eq "$B_RC" 125
  # refused as /proc (rootless, the open itself is refused: we are not dumpable)
  assert_contains "$B_ERR" "/etc/passwd cannot be used"
  [ "$BERTH_MODE" = rootless ] || assert_contains "$B_ERR" "leads into /proc or /sys"
  create --name e
  b_ok exec e sh -c 'mv /etc/group /etc/group.old && mkfifo /etc/group'
  b_run exec e true
  assert_eq "$B_RC" 125
  assert_contains "$B_ERR" "/etc/group cannot be used"
}

# mount targets that would cover the container's own /proc, /sys, /dev or
# root: refused as written, and when the image's symlinks lead there
test_mount_targets() {
  setup_ctr
  mkdir -p "$T_DIR/src"; chmod 755 "$T_DIR/src"
  local t
  for t in / /proc /proc/sys /proc/self/fd //proc/ /sys /sys/fs/cgroup /dev /./sys; do
    b_fails create -q --no-mount-cwd -v "$T_DIR/src:$t" --name m localhost/busybox
    assert_contains "$B_MSG" "cannot be a mount target"
    assert_not_exists "$BERTH_ROOT/containers/m" "a refused create's directory"
  done
  b_fails create -q --no-mount-cwd -v "$T_DIR/src:/:ro" --name m localhost/busybox
  assert_contains "$B_MSG" "cannot be a mount target"
  tool "{\"operation\":\"create\",\"name\":\"m\",\"image\":\"localhost/busybox\",\"mount_cwd\":false,\"mounts\":[{\"host\":\"$T_DIR/src\",\"container\":\"/proc\"}]}"
  assert_contains "$(cat "$B_OUTF")" "cannot be a mount target"
  assert_not_exists "$BERTH_ROOT/containers/m"
  # a workdir that takes the current directory's mount
  b_fails create -q -w /proc --name m localhost/busybox
  assert_contains "$B_MSG" "workdir"
  # through the image's symlinks
  create --name c
  b_ok exec c sh -c 'ln -s /proc /data && ln -s / /top && ln -s /dev /d && ln -s /sys/fs /s'
  tool '{"operation":"snapshot","container":"c","name":"links"}'
  assert_eq "$(field '["success"]')" true "snapshot"
  for t in /data /data/sys /top /d /s; do
    b_fails create -q --no-mount-cwd -v "$T_DIR/src:$t" --name m berth.local/snapshot/links
    assert_contains "$B_MSG" "leads (through the image's symlinks)"
    assert_not_exists "$BERTH_ROOT/containers/m" "a refused create's directory"
  done
  # the generated /etc files: an image whose /etc leads into /proc/sys
  # (the layer changed behind the running container's back, then saved)
  create --name s1
  rm -rf "$BERTH_ROOT/containers/s1/upper/etc"
  ln -s /proc/sys/kernel "$BERTH_ROOT/containers/s1/upper/etc"
  tool '{"operation":"snapshot","container":"s1","name":"etclink"}'
  assert_eq "$(field '["success"]')" true "snapshot"
  b_fails create -q --no-mount-cwd --name m berth.local/snapshot/etclink
  assert_contains "$B_MSG" "/etc/hostname\` leads (through the image's symlinks)"
  assert_not_exists "$BERTH_ROOT/containers/m"
  # an ordinary target still mounts
  echo hello >"$T_DIR/src/f"; chmod 644 "$T_DIR/src/f"
  b_ok create -q --no-mount-cwd -v "$T_DIR/src:/mnt/src:ro" --name ok localhost/busybox
  b_ok exec ok cat /mnt/src/f
  assert_eq "$B_OUT" hello
}

# cp out: a set-user-ID file made in the container is no set-user-ID file on
# the host (unless --archive); links are copied as links, -L follows them
# inside the container; a FIFO swapped in never hangs the copy
test_cp_out() {
  setup_ctr; create --name c
  b_ok exec c sh -c 'cp /bin/busybox /suid && chmod 6755 /suid && ln -s /etc/shadow-of-host /lnk && ln -s ../../../etc/hostname /rel'
  mkdir -p "$T_DIR/out"; chmod 777 "$T_DIR/out"
  b_ok cp c:/suid "$T_DIR/out/suid"
  assert_eq "$(mode_of "$T_DIR/out/suid")" 755 "mode of a set-user-ID file copied out"
  tool "{\"operation\":\"copy_out\",\"container\":\"c\",\"container_path\":\"/suid\",\"host_path\":\"$T_DIR/out/t\"}"
  assert_eq "$(mode_of "$T_DIR/out/t")" 755 "mode through the tool"
  b_ok cp -a c:/suid "$T_DIR/out/kept"
  assert_eq "$(mode_of "$T_DIR/out/kept")" 6755 "--archive keeps the bits"
  b_ok cp c:/lnk "$T_DIR/out/lnk"
  assert_eq "$(readlink "$T_DIR/out/lnk")" /etc/shadow-of-host "a link is copied as a link"
  b_ok cp -L c:/rel "$T_DIR/out/rel"
  [ -f "$T_DIR/out/rel" ] && [ ! -L "$T_DIR/out/rel" ] || fail "-L gives the file"
  assert_eq "$(cat "$T_DIR/out/rel")" c "-L resolves ../ inside the container's root (its /etc/hostname)"
  # a regular file swapped for a FIFO while copies run: each copy ends at once
  b_ok exec c sh -c 'dd if=/dev/zero of=/big bs=1M count=8 2>/dev/null; (i=0; while [ $i -lt 400 ]; do rm -f /big; mkfifo /big; rm -f /big; dd if=/dev/zero of=/big bs=64k count=1 2>/dev/null; i=$((i+1)); done) >/dev/null 2>&1 &'
  local i
  for i in $(seq 1 20); do
    b_run cp c:/big "$T_DIR/out/big"
    assert_le "$B_SECS" 5 "seconds a copy of a racing file took"
  done
  b_run cp c:/nonexist "$T_DIR/out/x"
  assert_contains "$B_ERR" "(in the container)"
  b_run cp "$T_DIR/nonexist" c:/x
  assert_contains "$B_ERR" "(on the host)"
}

# exec without -t: the caller's terminal is never the command's; what the
# command leaves in the background reads nothing typed at the host later,
# and the exec returns when the command ends
test_exec_no_terminal() {
  setup_ctr; create --name c
  # (fd 3: a shell gives a background list /dev/null as its stdin)
  berth_cmd exec c sh -c 'exec 3<&0; (sleep 0.5; cat <&3 >/tmp/stolen 2>/dev/null; echo done >/tmp/ended) >/dev/null 2>&1 &
    (sleep 30 &); echo started'
  # berth runs on a pseudo-terminal of ours; after it returns, a "password"
  # is typed at that terminal
  "$PY" - "${B_CMD[@]}" >"$T_DIR/pty.log" 2>&1 <<'PY'
import os, pty, subprocess, sys, time
m, s = pty.openpty()
t0 = time.time()
p = subprocess.Popen(sys.argv[1:], stdin=s, stdout=s, stderr=s, start_new_session=True)
rc = p.wait()
took = time.time() - t0
os.close(s)
out = b""
try:
    while True:
        d = os.read(m, 4096)
        if not d: break
        out += d
        if b"started" in out: break
except OSError:
    pass
os.write(m, b"hunter2-typed-at-the-host\n\x04")
time.sleep(1.5)
print("rc=%d took=%.2f out=%r" % (rc, took, out))
PY
  cat "$T_DIR/pty.log"
  assert_contains "$(cat "$T_DIR/pty.log")" "rc=0"
  local took
  took=$(sed -n 's/.*took=\([0-9.]*\).*/\1/p' "$T_DIR/pty.log")
  assert_le "$took" 5 "seconds exec took with a background child holding its output"
  b_run exec c sh -c 'cat /tmp/ended; cat /tmp/stolen'
  assert_contains "$B_OUT" "done" "the background command ran to its end"
  assert_not_contains "$B_OUT" "hunter2" "what the background command read from the host's terminal"
  # the tool and --json return at once too
  tool '{"operation":"exec","container":"c","command":"(sleep 20 &); echo hi","timeout":2}'
  assert_le "$B_SECS" 3 "seconds the tool's exec took"
  assert_eq "$(field '["stdout"]')" "hi"
  assert_eq "$(field '["timed_out"]')" false
  b_run exec --json c sh -c '(sleep 21 &); echo hi'
  assert_le "$B_SECS" 3 "seconds exec --json took"
  # what held the output was killed; what was started to stay (its own output) lives on
  b_ok exec c sh -c 'sleep 22 >/dev/null 2>&1 </dev/null & echo started'
  b_ok exec c ps -o args
  assert_not_contains "$B_OUT" "sleep 20" "a background child holding the tool exec's output"
  assert_not_contains "$B_OUT" "sleep 21" "a background child holding exec --json's output"
  assert_not_contains "$B_OUT" "sleep 30" "a background child holding exec's output"
  assert_contains "$B_OUT" "sleep 22" "a background child with its own output"
}

# a run dir another user owns, or may write (the /tmp fallback's name can be
# taken first): berth keeps nothing of its own there
test_run_dir_not_ours() {
  setup_ctr
  local rd=$T_DIR/run-open
  mkdir -p "$rd"; chmod 1777 "$rd"
  if [ "$BERTH_MODE" = root ]; then chown "$TEST_USER:" "$rd"; chmod 0700 "$rd"; fi
  B_EXTRA_ENV="BERTH_RUNROOT=$rd" b_run run --rm --no-mount-cwd --network none localhost/busybox echo fine
  assert_eq "$B_RC" 0 "a run with an unsafe run dir still works"
  assert_eq "$B_OUT" fine
  assert_contains "$B_ERR" "another user could plant berth's records there"
  assert_dir_empty "$rd" "the unsafe run dir"
  B_EXTRA_ENV="BERTH_RUNROOT=$rd" b_run preflight --json
  assert_contains "$B_OUT" '"name": "run_dir"'
  "$PY" -c 'import json,sys; c=[c for c in json.load(open(sys.argv[1]))["checks"] if c["name"]=="run_dir"][0]; sys.exit(0 if not c["passed"] and "fix" in c else 1)' "$B_OUTF" ||
    fail "preflight's run_dir check does not fail with a fix"
  assert_dir_empty "$rd" "the unsafe run dir after preflight"
}

# setup steps (a package's maintainer scripts, a repo's build) run with the
# setup capabilities, never CAP_MKNOD; a device node that exists anyway (in
# the root, in a bound host directory) cannot be opened: nodev
test_no_devices() {
  setup_ctr
  tool '{"operation":"create","name":"d","image":"localhost/busybox","mount_cwd":false,"network":"none","setup_commands":["mknod /tmp/kmsg c 1 11 && mknod /tmp/ttyS c 4 64"]}'
  assert_contains "$(cat "$B_OUTF")" "Operation not permitted" "mknod in a setup step"
  b_run exec d sh -c 'ls /tmp/kmsg /tmp/ttyS'
  assert_ne "$B_RC" 0 "no node was made"
  # a node put into the writable layer behind berth's back, and one in a bound host
  # directory (1,5: /dev/zero, which needs no privilege to open)
  mknod "$BERTH_ROOT/containers/d/upper/kmsg" c 1 5
  mkdir -p "$T_DIR/src"; chmod 755 "$T_DIR/src"; mknod "$T_DIR/src/kmsg" c 1 5; chmod 666 "$T_DIR/src/kmsg"
  b_ok create -q --no-mount-cwd --network none -v "$T_DIR/src:/mnt/src" --name e localhost/busybox
  b_run exec d sh -c 'head -c 1 /kmsg >/dev/null && echo opened'
  assert_not_contains "$B_OUT" "opened" "a device node in the root opened"
  assert_contains "$B_ERR" "Permission denied"
  b_run exec e sh -c 'head -c 1 /mnt/src/kmsg >/dev/null && echo opened'
  assert_not_contains "$B_OUT" "opened" "a device node in a bound host directory opened"
  # /dev's own nodes still work
  b_ok exec e sh -c 'head -c 4 /dev/zero | wc -c; echo x >/dev/null'
  assert_contains "$B_OUT" 4
  # the third layer, the devices allow-list (cgroup v1 devices, v2 BPF;
  # root: rootless, the container's /dev is its user namespace's, where no
  # node can be made or opened at all): a node put into the container's
  # /dev (a tmpfs, not nodev) from the host: 10:237, loop-control, opens
  # for any root without it
  [ "$BERTH_MODE" = root ] || return 0
  b_ok status --json e
  local pid
  pid=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["pid"])' "$B_OUTF")
  mknod "/proc/$pid/root/dev/lc" c 10 237
  chmod 666 "/proc/$pid/root/dev/lc"
  b_run exec e sh -c 'exec 3</dev/lc && echo opened'
  assert_not_contains "$B_OUT" "opened" "a node off the allow-list in the container's /dev opened"
  assert_contains "$B_ERR" "Operation not permitted" "the allow-list's refusal (EPERM; nodev would say EACCES)"
}

# berth0 (root): nothing opens a connection into a container but through a
# published port: not the host's processes (root, another user), not
# another container on berth0
test_berth0_inbound() {
  setup_ctr
  local hp
  hp=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  b_ok create -q --no-mount-cwd -p "127.0.0.1:$hp:8080" --name a localhost/busybox
  b_ok create -q --no-mount-cwd --name b localhost/busybox
  b_ok exec a sh -c '(while true; do echo hello-from-a | nc -l -p 8080 >/dev/null 2>&1; done &); sleep 0.3'
  b_ok exec a sh -c "ip -4 -o addr show eth0"
  local ip
  ip=$(awk '{print $4}' <<<"$B_OUT" | cut -d/ -f1)
  [[ $ip == 10.88.* ]] || fail "container a has no berth0 address: $B_OUT"
  local got
  got=$(timeout 5 bash -c "exec 3<>/dev/tcp/$ip/8080 && head -1 <&3" 2>&1) || true
  assert_not_contains "$got" hello-from-a "a host root process connected into the container"
  got=$(runuser -u "$TEST_USER" -- timeout 5 bash -c "exec 3<>/dev/tcp/$ip/8080 && head -1 <&3" 2>&1) || true
  assert_not_contains "$got" hello-from-a "another user's process connected into the container"
  b_run exec b sh -c "timeout 4 nc $ip 8080 </dev/null"
  assert_not_contains "$B_OUT" hello-from-a "another berth0 container connected"
  # around the IPv4 table: the container's IPv6 link-local address on berth0
  # (its listener is on [::] too), once duplicate address detection is done
  sleep 2
  b_ok exec a sh -c "ip -6 addr show eth0"
  local ll
  ll=$(grep -o 'fe80::[0-9a-f:]*' <<<"$B_OUT" | head -1)
  if [ -n "$ll" ]; then # (none where the host has IPv6 off: nothing to get around then)
    got=$("$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET6); s.settimeout(4)
try:
    s.connect((sys.argv[1], 8080, 0, socket.if_nametoindex("berth0"))); print(s.recv(64).decode())
except Exception as e:
    print("refused:", e)' "$ll" 2>&1) || true
    assert_not_contains "$got" hello-from-a "a host process connected over IPv6 link-local ($ll%berth0)"
  fi
  # the published port still works
  got=$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$hp && head -1 <&3" 2>&1) || true
  assert_eq "$got" hello-from-a "the published port"
}

# CVE-2024-21626: a descriptor the caller had open (here fd 9 on the host's
# /etc) must not reach the container, not even as the workdir
# /proc/self/fd/N; the command holds only its stdio
test_leaked_fds_cwd() {
  setup_ctr; create --name c
  local n
  for n in 3 4 5 6 7 8 9 10 11 12; do
    berth_cmd exec -w "/proc/self/fd/$n" c sh -c 'pwd; ls; cat ../etc/hostname'
    B_RC=0
    "${B_CMD[@]}" >"$T_DIR/fd.out" 2>"$T_DIR/fd.err" 9</etc || B_RC=$?
    assert_ne "$B_RC" 0 "exec -w /proc/self/fd/$n (the caller holds fd 9 on the host's /etc): $(cat "$T_DIR/fd.out")"
    assert_not_contains "$(cat "$T_DIR/fd.out")" "passwd" "the host's /etc listed through fd $n"
  done
  berth_cmd exec c sh -c 'ls /proc/self/fd'
  "${B_CMD[@]}" >"$T_DIR/fd.out" 2>&1 9</etc 8</ 7</proc
  assert_eq "$(tr '\n' ' ' <"$T_DIR/fd.out")" "0 1 2 3 " "the command's descriptors (3: ls's own directory)"
  # run: the same for a one-shot's command
  berth_cmd run --rm --no-mount-cwd --network none localhost/busybox sh -c 'ls /proc/self/fd'
  "${B_CMD[@]}" >"$T_DIR/fd.out" 2>&1 9</etc 8</
  assert_eq "$(tr '\n' ' ' <"$T_DIR/fd.out")" "0 1 2 3 " "a one-shot's descriptors"
  b_run run --rm --no-mount-cwd --network none -w /proc/self/fd/9 localhost/busybox pwd
  assert_ne "$B_RC" 0 "run -w /proc/self/fd/9"
}

# snapshots: a file swapped for a FIFO while the writable layer is packed
# never hangs it; what a killed snapshot left in the store is collected
test_snapshot_fifo_and_leftovers() {
  setup_ctr; create --name c
  local left=$STORE/tmp/snap-999999-12345-deadbeef0000
  mkdir -p "$left/blobs"; echo partial >"$left/blobs/x"
  [ "$BERTH_MODE" = rootless ] && chown -R "$TEST_UID:$TEST_GID" "$left"
  b_ok exec c sh -c 'dd if=/dev/zero of=/big bs=1M count=4 2>/dev/null; (i=0; while [ $i -lt 600 ]; do rm -f /big; mkfifo /big; rm -f /big; dd if=/dev/zero of=/big bs=64k count=1 2>/dev/null; i=$((i+1)); done) >/dev/null 2>&1 &'
  local i
  for i in 1 2 3 4 5 6; do
    tool "{\"operation\":\"snapshot\",\"container\":\"c\",\"name\":\"race$i\"}"
    assert_le "$B_SECS" 10 "seconds a snapshot of a racing layer took"
  done
  assert_not_exists "$left" "a killed snapshot's leftovers after the next snapshot"
  local n
  n=$(ls "$STORE/tmp" | grep -c '^snap-' || true)
  assert_eq "$n" 0 "snapshot work directories left in the store"
}

t_run "snapshot: a FIFO swapped in never hangs it; a killed snapshot's leftovers are collected" test_snapshot_fifo_and_leftovers
# a request's maps and lists have a budget: 100k variables cost a minute of
# CPU before; now a clear refusal at once
test_request_budget() {
  setup_ctr
  "$PY" -c 'import json; print(json.dumps({"operation":"create","name":"big","image":"localhost/busybox","mount_cwd":False,"env":{"V%d" % i: "x" for i in range(100000)}}))' >"$T_DIR/req.json"
  chmod 644 "$T_DIR/req.json"
  berth_cmd tool
  local t0=$EPOCHREALTIME
  "${B_CMD[@]}" <"$T_DIR/req.json" >"$T_DIR/reply.json" 2>&1 || true
  local secs
  secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}')
  assert_contains "$(cat "$T_DIR/reply.json")" "at most 4096" "the reply to 100k variables"
  assert_le "$secs" 3 "seconds to refuse 100k variables"
  assert_not_exists "$BERTH_ROOT/containers/big"
  "$PY" -c 'import json; print(json.dumps({"operation":"create","name":"big","image":"localhost/busybox","mount_cwd":False,"setup_commands":["true"]*5000}))' >"$T_DIR/req.json"
  "${B_CMD[@]}" <"$T_DIR/req.json" >"$T_DIR/reply.json" 2>&1 || true
  assert_contains "$(cat "$T_DIR/reply.json")" "at most 1024"
}

t_run "a request's env and lists have a budget (100k variables refused at once)" test_request_budget
# filling the disk: a container with a disk limit gets ENOSPC inside and
# the host's filesystem holds at most the limit; rootless says it cannot
# enforce one
test_disk_limit() {
  setup_ctr
  tool '{"operation":"create","name":"d","image":"localhost/busybox","mount_cwd":false,"network":"none","disk_limit":"32m"}'
  assert_eq "$B_RC" 0 "create with disk_limit: $(cat "$B_OUTF")"
  if [ "$BERTH_MODE" = rootless ]; then
    assert_eq "$(field '["disk"]["enforced"]')" false
    assert_contains "$(field '["notes"]')" "disk limit not enforced"
    b_ok status --json d
    assert_contains "$B_OUT" '"enforced": false'
    b_ok exec d sh -c 'echo works >/f && cat /f'
    return 0
  fi
  assert_eq "$(field '["disk"]["enforced"]')" true
  local before
  before=$(df -k --output=used "$BERTH_ROOT" | tail -1)
  b_run exec d sh -c 'dd if=/dev/zero of=/big bs=1M count=200; echo rc=$?'
  assert_contains "$B_OUT$B_ERR" "No space left on device" "writing past the limit inside"
  assert_contains "$B_OUT" "rc=1"
  local after
  after=$(df -k --output=used "$BERTH_ROOT" | tail -1)
  assert_le "$((after - before))" $((40 * 1024)) "KiB the host's filesystem grew by (limit 32 MiB)"
  b_ok status --json d
  "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1]))["metadata"]["disk"]; assert d["enforced"] and d["mounted"] and d["limit"]==32<<20 and 20<<20 < d["used"] <= 32<<20, d' "$B_OUTF" ||
    fail "status's disk: $(cat "$B_OUTF")"
  # the container still works once the space is freed, and rm leaves no mount or loop device
  b_ok exec d sh -c 'rm /big && echo ok >/f && cat /f'
  local img=$BERTH_ROOT/containers/d/disk.img
  b_ok rm -f d
  sleep 0.5
  assert_not_contains "$(cat /proc/self/mountinfo)" "$BERTH_ROOT/containers/d/disk" "the layer's mount after rm"
  assert_not_contains "$(losetup -a 2>/dev/null)" "$img" "a loop device on the image after rm"
  # the CLI's --disk, the config's default, and a run --rm
  write_config '{"disk_limit": "24m"}'
  b_ok run --rm --no-mount-cwd --network none localhost/busybox sh -c 'df -k / | tail -1'
  local total
  total=$(awk '{print $2}' <<<"$B_OUT")
  assert_le "$total" $((24 * 1024)) "the root's size in a run with the config's disk_limit"
  b_fails create -q --no-mount-cwd --disk 8m --name tiny localhost/busybox
  assert_contains "$B_MSG" "16m"
  write_config '{}'
}

t_run "a disk limit: ENOSPC inside, the host holds at most the limit, nothing left after rm (rootless: said not enforced)" test_disk_limit
# The runc 2025 mount-race class (CVE-2025-31133 a masked path's /dev/null,
# CVE-2025-52565 /dev/console, CVE-2025-52881 procfs writes redirected):
# berth's masks, binds and writes must never land on a host path through a
# symlink of the image. berth sets a container up before any of its
# processes exists (nothing can race it); /proc, /sys and /dev are made
# fresh and may not be symlinks; the generated /etc files are bound only
# onto plain files inside the root; masks bind the host's /dev/null opened
# before the root is entered. Each image here has one of those paths as a
# symlink to /: the create fails and names it, and the host is untouched.
test_mount_race_class_image_symlinks() {
  setup_ctr
  local before p
  before=$(sha256sum /etc/hostname /etc/hosts /etc/resolv.conf 2>/dev/null | sha256sum)
  for p in proc sys dev etc/hostname etc/hosts etc/resolv.conf; do
    "$PY" "$IT_DIR/make_evil_image.py" "$T_DIR/evil-${p//\//-}" "$IMAGES/busybox" "$p"
    [ "$BERTH_MODE" = rootless ] && chmod -R a+rX "$T_DIR/evil-${p//\//-}"
    b_ok load -q --name "local/evil-${p//\//-}:1" "$T_DIR/evil-${p//\//-}"
    b_fails create --no-mount-cwd --network none --name m "local/evil-${p//\//-}:1"
    assert_contains "$B_MSG" "symlink" "an image whose /$p is a symlink to /"
    assert_not_exists "$BERTH_ROOT/containers/m" "a refused create's directory"
  done
  assert_eq "$(sha256sum /etc/hostname /etc/hosts /etc/resolv.conf 2>/dev/null | sha256sum)" "$before" "the host's /etc files"
  # a masked path in a running container is the real null device, and
  # /dev/console is not there to be redirected
  create --name c
  b_ok exec c sh -c 'stat -c "%t:%T" /proc/keys; ls /dev/console 2>&1 || true'
  assert_contains "$B_OUT" "1:3" "a masked /proc file is /dev/null (1:3)"
  assert_contains "$B_OUT" "No such file" "/dev/console"
}

t_run "runc 2025 mount-race class: /proc, /sys, /dev and the /etc binds as image symlinks are refused; masks are /dev/null" test_mount_race_class_image_symlinks
t_run "CVE-2024-21626: no caller descriptor reaches the command, not even as its workdir" test_leaked_fds_cwd
t_run "CVE-2019-5736: exec of /proc/self/exe never runs or exposes the host binary" test_exe_direct
t_run "CVE-2019-5736: /bin/sh symlinked to /proc/self/exe (tool exec, run of an image)" test_exe_symlinked_sh
t_run "CVE-2019-5736: #!/proc/self/exe scripts" test_exe_shebang
t_run "berth's helpers in the container are not dumpable (exe, maps, environ, fds)" test_helper_proc_closed
t_run "a hostile /etc/group with 400 memberships (exec, run)" test_hostile_group
t_run "a hostile /etc/passwd or /etc/group (FIFO, /proc link) fails at once (exec, tool, run)" test_hostile_passwd
t_run "mount targets /, /proc, /sys, /dev (as written and through image symlinks) are refused, nothing left" test_mount_targets
t_run "cp out strips set-id bits (-a keeps), copies links as links (-L follows inside), never hangs on a FIFO" test_cp_out
t_run "exec without -t never hands the container the caller's terminal; returns when the command ends" test_exec_no_terminal
t_run "a run dir another user owns or may write is not used" test_run_dir_not_ours
t_run "setup steps cannot make device nodes; nodes in the root or a bound directory cannot be opened (nodev); a devices allow-list" test_no_devices
# berth0 is root's network (rootless containers sit behind slirp4netns, with no address on the host)
if [ "$BERTH_MODE" = root ]; then
  t_run "berth0: no new connection into a container from the host, another user or another container" test_berth0_inbound
fi
t_summary
