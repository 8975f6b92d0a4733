#!/bin/bash
# An OCI runtime (runc's command line) under real engines: podman (root and
# rootless, as $BERTH_TEST_USER) and containerd (root, a private instance that
# the suite starts and stops). Written for build/berth-oci; any runtime with
# runc's command line can be tested:
#
#   BERTH_MODE=root     tests/integration/test_oci_engines.sh
#   BERTH_MODE=rootless tests/integration/test_oci_engines.sh
#   OCI_RUNTIME=/usr/bin/crun BERTH_MODE=root tests/integration/test_oci_engines.sh
#
# Environment (besides lib.sh's):
#   OCI_RUNTIME=PATH       the runtime under test (default build/berth-oci).
#                          A private copy in the suite's directory (mode 755,
#                          under a 755 path) is what the engines run, so the
#                          rootless user can execute it and a rebuild cannot
#                          pull it from under the tests.
#   OCI_HIDE_CGROUP2=auto|1|0
#                          crun refuses hybrid cgroup hosts ("cgroups in hybrid
#                          mode not supported"): on a hybrid host (tmpfs
#                          /sys/fs/cgroup + cgroup2 at /sys/fs/cgroup/unified)
#                          the suite then hides the cgroup2 mount under a tmpfs
#                          in its private mount namespace. auto (default): only
#                          when the runtime says it is crun; berth-oci is tested
#                          on the host's real cgroup layout.
#
# Engine state lives in the suite's temporary directory only: podman gets
# --root/--runroot/--tmpdir there and generated containers.conf, storage.conf
# (overlay) and registries.conf (127.0.0.1:5000 insecure) through
# CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and CONTAINERS_REGISTRIES_CONF;
# containerd runs with its own root, state, sockets and config there. The
# whole suite runs in a private mount namespace (made here), so the engines'
# mounts vanish with it. Root podman runs with --network none except in the
# port test, which runs podman (netavark, its bridge and firewall rules) in a
# network namespace of its own: the host's network and nftables are never
# touched.
#
# Images: 127.0.0.1:5000/test/busybox, test/debian and test/httpd (busybox +
# httpd -p 8080), pushed by scripts/fixtures.sh.
#
# Tests that cannot run on this host are reported as "skip - NAME (reason)",
# counted on a "# N skipped" line and never as passed: the containerd tests
# when containerd is not installed (apt-get install containerd). The
# containerd and the limits tests are root-mode tests (rootless containerd
# needs rootlesskit; rootless limits need cgroup v2 delegation) and are not
# part of the rootless run.

# ---- a private mount namespace for the whole suite (before lib.sh makes its
# temporary directory, so the directory and the engines' mounts agree)
if [ -z "${OCI_ENGINES_NS:-}" ] && [ "$(id -u)" = 0 ]; then
  _src=${OCI_RUNTIME:-$(cd "$(dirname "$0")/../.." && pwd)/build/berth-oci}
  _hide=0
  if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] &&
    [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
    case ${OCI_HIDE_CGROUP2:-auto} in
      1) _hide=1 ;;
      0) _hide=0 ;;
      *) [ -x "$_src" ] && "$_src" --version 2>/dev/null | head -n 1 | grep -q '^crun' && _hide=1 ;;
    esac
  fi
  # shellcheck disable=SC2016
  exec unshare -m --propagation private sh -c '
    if [ "$0" = 1 ]; then mount -t tmpfs -o mode=755 none /sys/fs/cgroup/unified || exit 1; fi
    mount --make-rshared / && exec "$@"' "$_hide" env OCI_ENGINES_NS="hide=$_hide" bash "$0" "$@"
fi

. "$(dirname "$0")/lib.sh"

RT_SRC=${OCI_RUNTIME:-$REPO/build/berth-oci}
RT=$SUITE_TMP/bin/$(basename "$RT_SRC")
[ -f "$RT_SRC" ] && cp "$RT_SRC" "$RT" && chmod 755 "$RT"
REG=${BERTH_TEST_REGISTRY_PLAIN:-127.0.0.1:5000}
BUSYBOX=$REG/test/busybox:latest
DEBIAN=$REG/test/debian:latest
HTTPD=$REG/test/httpd:latest
HTTPD_INDEX="hello from berth httpd"
SYS_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
T_SKIP=0

log_header() {
  echo "# runtime under test: $RT_SRC ($("$RT" --version 2>/dev/null | head -n 1)); mount namespace: ${OCI_ENGINES_NS:-host}"
}

# ---------------------------------------------------------------- the engines' state
PD=$SUITE_TMP/podman
mkdir -p "$PD/home" "$PD/xdg" "$PD/tmp" "$PD/run" "$PD/root"
chmod 700 "$PD/xdg"
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$PD/root" "$PD/run" >"$PD/storage.conf"
# engine settings this host needs (no systemd, no journald)
PODMAN_ENGINE_CONF='[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"'
printf '%s\n' "$PODMAN_ENGINE_CONF" >"$PD/containers.conf"
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$REG" >"$PD/registries.conf"
chmod 644 "$PD"/*.conf
[ "$BERTH_MODE" = rootless ] && chown -R "$TEST_USER:" "$PD"

# podman's run flags for this mode: root may lack CAP_SYS_RESOURCE (podman's
# default nofile/nproc hard limits are above root's), and root podman stays off
# the host network except in the port test
PRUN=()
[ "$BERTH_MODE" = root ] && PRUN=(--network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)

LIBPOD_CG_BEFORE=$(ls -d /sys/fs/cgroup/*/libpod_parent 2>/dev/null)
CTRD=$SUITE_TMP/containerd
CTRD_NS=berth-oci-it-$$
CTRD_SOCK=$CTRD/containerd.sock

# pm ARGS: podman as the mode's user with the suite's private configuration
# (PM_CONF: another containers.conf; PM_NETNS: a network namespace file)
pm() {
  local pfx=()
  [ -n "${PM_NETNS:-}" ] && pfx=(nsenter "--net=$PM_NETNS")
  [ "$BERTH_MODE" = rootless ] && pfx+=(runuser -u "$TEST_USER" --)
  "${pfx[@]}" env -i PATH="$SYS_PATH" LANG=C.UTF-8 HOME="$PD/home" XDG_RUNTIME_DIR="$PD/xdg" \
    XDG_CONFIG_HOME="$PD/home/.config" XDG_DATA_HOME="$PD/home/.local/share" \
    CONTAINERS_CONF="${PM_CONF:-$PD/containers.conf}" CONTAINERS_STORAGE_CONF="$PD/storage.conf" \
    CONTAINERS_REGISTRIES_CONF="$PD/registries.conf" \
    timeout -k 5 "${BERTH_TEST_TIMEOUT:-120}" podman --root "$PD/root" --runroot "$PD/run" --tmpdir "$PD/tmp" "$@"
}
# p_run ARGS: podman; exit code in P_RC, stdout in P_OUT, stderr in P_ERR
p_run() {
  B_N=$((B_N + 1))
  local o=$T_DIR/p$B_N.out e=$T_DIR/p$B_N.err t0=$EPOCHREALTIME
  echo "\$ podman $*${PM_NETNS:+ (in $PM_NETNS)}"
  P_RC=0
  pm "$@" >"$o" 2>"$e" </dev/null || P_RC=$?
  P_OUT=$(cat "$o")
  P_ERR=$(cat "$e")
  echo "# exit $P_RC after $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}')s"
  [ -s "$o" ] && head -c 3000 "$o" | sed 's/^/# stdout: /'
  [ -s "$e" ] && head -c 3000 "$e" | sed 's/^/# stderr: /'
  return 0
}
p_ok() {
  p_run "$@"
  [ "$P_RC" = 0 ] || fail "podman $* exited $P_RC: $P_ERR"
}

need_runtime() {
  [ -x "$RT" ] || fail "precondition: the OCI runtime $RT_SRC is missing (make build/berth-oci, or OCI_RUNTIME=PATH)"
}
# need_podman_image REF: in the suite's podman store (pulled from the local registry)
need_podman_image() {
  need_cmd podman
  need_runtime
  pm image exists "$1" 2>/dev/null && return 0
  need_registry "$REG"
  p_ok pull -q "$1"
}
# a container name unique to this test, removed when the test ends
ctr_name() { echo "oci-it-$T_NUM-$1"; }
cleanup_podman_test() { pm rm -f -t 0 --ignore "$@" >/dev/null 2>&1 || true; }

# the host cgroup file FILE (v1 controller CTL) of process PID
cgroup_file() { # PID CTL FILE
  local line path
  line=$(grep -E "^[0-9]+:([^:]*,)?$2(,[^:]*)?:" "/proc/$1/cgroup" | head -n 1)
  if [ -n "$line" ]; then
    path=${line#*:*:}
    echo "/sys/fs/cgroup/$2$path/$3"
  else # cgroup v2: 0::/path
    path=$(awk -F: '$1 == "0" {print $3}' "/proc/$1/cgroup")
    if [ -d /sys/fs/cgroup/unified ]; then echo "/sys/fs/cgroup/unified$path/$4"; else echo "/sys/fs/cgroup$path/$4"; fi
  fi
}

# ---------------------------------------------------------------- podman tests

test_podman_run_busybox() {
  need_podman_image "$BUSYBOX"
  p_ok --runtime "$RT" run --rm "${PRUN[@]}" "$BUSYBOX" sh -c 'echo hello-from-busybox; echo pid=$$; id -u; cat /proc/1/cmdline | tr "\0" " "'
  assert_eq "$(sed -n 1p <<<"$P_OUT")" hello-from-busybox "first line"
  assert_eq "$(sed -n 2p <<<"$P_OUT")" pid=1 "the command is PID 1 of a new PID namespace"
  assert_eq "$(sed -n 3p <<<"$P_OUT")" 0 "uid in the container"
  assert_contains "$(sed -n 4p <<<"$P_OUT")" "sh -c echo hello-from-busybox" "PID 1's command line"
  # the exit code travels back through the runtime and conmon
  p_run --runtime "$RT" run --rm "${PRUN[@]}" "$BUSYBOX" sh -c 'exit 42'
  assert_eq "$P_RC" 42 "exit code of 'exit 42'"
  p_ok ps -a --format '{{.Names}}'
  assert_eq "$P_OUT" "" "containers left after run --rm"
}

test_podman_run_debian() {
  need_podman_image "$DEBIAN"
  p_ok --runtime "$RT" run --rm "${PRUN[@]}" "$DEBIAN" bash -c '. /etc/os-release; echo "$ID $VERSION_CODENAME"; cat /etc/debian_version; dpkg-query -W -f="\${Package}\n" coreutils; ls -ld /tmp | cut -c1-10'
  assert_eq "$(sed -n 1p <<<"$P_OUT")" "debian bookworm" "os-release"
  [[ $(sed -n 2p <<<"$P_OUT") =~ ^12\.[0-9]+$ ]] || fail "/etc/debian_version: $(sed -n 2p <<<"$P_OUT")"
  assert_eq "$(sed -n 3p <<<"$P_OUT")" coreutils "dpkg database readable"
  assert_eq "$(sed -n 4p <<<"$P_OUT")" drwxrwxrwt "mode of /tmp"
}

test_podman_detached_lifecycle() {
  need_podman_image "$BUSYBOX"
  local n
  n=$(ctr_name d)
  trap 'cleanup_podman_test '"$n" EXIT
  # a service that says when it starts and when SIGTERM reaches it
  p_ok --runtime "$RT" run -d --name "$n" "${PRUN[@]}" "$BUSYBOX" \
    sh -c 'trap "echo got-sigterm; exit 0" TERM; echo service-started; while :; do sleep 0.2; done'
  p_ok inspect --format '{{.State.Status}} {{.OCIRuntime}}' "$n"
  assert_eq "${P_OUT%% *}" running "state after run -d"
  assert_contains "$P_OUT" "$(basename "$RT")" "the container's OCI runtime"
  p_ok exec "$n" sh -c 'echo exec-ok; echo pid=$$; cat /proc/1/cmdline | tr "\0" " "'
  assert_eq "$(sed -n 1p <<<"$P_OUT")" exec-ok "exec output"
  assert_ne "$(sed -n 2p <<<"$P_OUT")" pid=1 "the exec'd process is not PID 1"
  assert_contains "$(sed -n 3p <<<"$P_OUT")" "sh -c trap" "exec sees the container's PID 1"
  p_run exec "$n" sh -c 'exit 7'
  assert_eq "$P_RC" 7 "exit code through exec"
  p_ok exec -e FOO=bar -w /tmp "$n" sh -c 'echo $FOO $(pwd)'
  assert_eq "$P_OUT" "bar /tmp" "exec -e/-w"
  local w=0
  until pm logs "$n" 2>/dev/null | grep -q service-started || [ $w -ge 50 ]; do sleep 0.1; w=$((w + 1)); done
  p_ok logs "$n"
  assert_contains "$P_OUT" service-started "logs"
  p_ok stop -t 20 "$n"
  p_ok inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$n"
  assert_eq "$P_OUT" "exited 0" "state after stop (SIGTERM handled: exit 0)"
  p_ok logs "$n"
  assert_contains "$P_OUT" got-sigterm "logs after stop (the service saw SIGTERM)"
  # a stopped container starts again
  p_ok start "$n"
  p_ok inspect --format '{{.State.Status}}' "$n"
  assert_eq "$P_OUT" running "state after start"
  p_ok rm -f -t 20 "$n"
  p_run container exists "$n"
  assert_eq "$P_RC" 1 "container exists after rm"
}

# tmux on the mode's user's behalf, with a socket of this test's own
tm() {
  if [ "$BERTH_MODE" = rootless ]; then runuser -u "$TEST_USER" -- tmux -S "$T_DIR/home/tmux.sock" "$@"
  else tmux -S "$T_DIR/home/tmux.sock" "$@"; fi
}
# wait_pane TEXT [SECS]: the pane shows TEXT
wait_pane() {
  local w=0 lim=$(( ${2:-20} * 10 ))
  while [ $w -lt $lim ]; do
    tm capture-pane -p -J -S -200 -t it >"$T_DIR/pane" 2>/dev/null || true
    grep -qF -- "$1" "$T_DIR/pane" && return 0
    sleep 0.1
    w=$((w + 1))
  done
  echo "# pane:"; sed 's/^/#   /' "$T_DIR/pane"
  fail "the terminal never showed '$1'"
}

test_podman_run_it_terminal() {
  need_cmd tmux
  need_podman_image "$BUSYBOX"
  local n q
  n=$(ctr_name it)
  trap 'tm kill-server >/dev/null 2>&1 || true; cleanup_podman_test '"$n" EXIT
  # the command tmux runs: podman run -it in a real terminal (tmux's pty)
  {
    echo '#!/bin/bash'
    printf '%q ' env -i PATH="$SYS_PATH" LANG=C.UTF-8 TERM=xterm HOME="$PD/home" XDG_RUNTIME_DIR="$PD/xdg" \
      XDG_CONFIG_HOME="$PD/home/.config" XDG_DATA_HOME="$PD/home/.local/share" \
      CONTAINERS_CONF="$PD/containers.conf" CONTAINERS_STORAGE_CONF="$PD/storage.conf" \
      CONTAINERS_REGISTRIES_CONF="$PD/registries.conf" \
      podman --root "$PD/root" --runroot "$PD/run" --tmpdir "$PD/tmp" --runtime "$RT" \
      run -it --rm --name "$n" "${PRUN[@]}" "$BUSYBOX" sh
    echo
    echo 'echo "PODMAN-EXITED-$?"; sleep 600'
  } >"$T_DIR/it.sh"
  chmod 755 "$T_DIR/it.sh"
  touch "$T_DIR/pane"; chmod 666 "$T_DIR/pane"
  tm new-session -d -s it -x 100 -y 30 "$T_DIR/it.sh"
  q='echo READY-$((40+2))'
  tm send-keys -t it "$q" Enter
  wait_pane READY-42 60
  # markers are computed, so the typed command line's own echo never matches
  tm send-keys -t it 'echo TTY=$(tty); echo SIZE-$((2+3))=$(stty size)' Enter
  wait_pane SIZE-5=
  grep -qE '^TTY=/dev/pts/[0-9]+$' "$T_DIR/pane" || { cat "$T_DIR/pane"; fail "tty is not /dev/pts/N"; }
  grep -qx 'SIZE-5=30 100' "$T_DIR/pane" || { cat "$T_DIR/pane"; fail "stty size is not the terminal's 30 100"; }
  # a resize of the outer terminal reaches the container's (SIGWINCH path;
  # asked again until it arrives, at most 10 s)
  tm resize-window -t it -x 90 -y 25
  local i
  for i in $(seq 20); do
    tm send-keys -t it "echo SIZE$i-\$((1+1))=\$(stty size)" Enter
    wait_pane "SIZE$i-2=" 10
    grep -qx "SIZE$i-2=25 90" "$T_DIR/pane" && break
    sleep 0.5
  done
  grep -qx "SIZE$i-2=25 90" "$T_DIR/pane" || { cat "$T_DIR/pane"; fail "stty size after the resize is not 25 90"; }
  # the line discipline: with echo off typed text does not show, with echo on
  # it does (typed only once read(1) waits: the markers are computed, so the
  # command line's own echo does not match them)
  tm send-keys -t it 'stty -echo; echo NOECHO-$((1+1)); read a; stty echo; echo GOT1=$a' Enter
  wait_pane NOECHO-2
  sleep 0.2
  tm send-keys -t it 'hidden7391' Enter
  wait_pane GOT1=hidden7391
  if grep -qx 'hidden7391' "$T_DIR/pane"; then cat "$T_DIR/pane"; fail "typed text was echoed under stty -echo"; fi
  tm send-keys -t it 'echo READING-$((3+4)); read b; echo GOT2=$b' Enter
  wait_pane READING-7
  sleep 0.2
  tm send-keys -t it 'shown5824' Enter
  wait_pane GOT2=shown5824
  grep -qx 'shown5824' "$T_DIR/pane" || { cat "$T_DIR/pane"; fail "typed text was not echoed with echo on"; }
  # ^C reaches the foreground process through the terminal (it dies of
  # SIGINT: $? 130), and the shell and podman stay
  tm send-keys -t it 'echo SLEEPING-$((2+3)); sleep 100' Enter
  wait_pane SLEEPING-5
  sleep 0.5
  tm send-keys -t it C-c
  sleep 0.3
  tm send-keys -t it 'echo AFTER-SLEEP=$?' Enter
  wait_pane AFTER-SLEEP=130 10
  tm send-keys -t it 'exit 3' Enter
  wait_pane PODMAN-EXITED-3 30
}

test_podman_limits() {
  need_podman_image "$BUSYBOX"
  local n pid f
  n=$(ctr_name mem)
  trap 'cleanup_podman_test '"$n-hog $n-ok $n-pids" EXIT
  # the limit is set on the container's cgroup (read on the host) ...
  p_ok --runtime "$RT" run -d --name "$n-hog" "${PRUN[@]}" --memory 32m --memory-swap 32m "$BUSYBOX" \
    sh -c 'sleep 3; exec dd if=/dev/zero of=/dev/null bs=64M count=1'
  p_ok inspect --format '{{.State.Pid}}' "$n-hog"
  pid=$P_OUT
  f=$(cgroup_file "$pid" memory memory.limit_in_bytes memory.max)
  log "memory limit file: $f"
  assert_eq "$(cat "$f")" 33554432 "memory limit of the container's cgroup"
  # ... and enforced: a 64 MiB buffer (bounded) is killed at 32 MiB ...
  p_run wait "$n-hog"
  assert_eq "$P_OUT" 137 "exit code of the 64 MiB dd under --memory 32m"
  p_ok inspect --format '{{.State.ExitCode}} oomkilled={{.State.OOMKilled}}' "$n-hog"
  log "podman's view: $P_OUT (conmon's OOM report is informational here)"
  # ... and passes with room for it
  p_ok --runtime "$RT" run --name "$n-ok" "${PRUN[@]}" --memory 256m --memory-swap 256m "$BUSYBOX" \
    sh -c 'exec dd if=/dev/zero of=/dev/null bs=64M count=1'
  # pids: a fork loop of 40 sleeps (bounded) stops at the limit
  p_run --runtime "$RT" run --name "$n-pids" "${PRUN[@]}" --pids-limit 20 "$BUSYBOX" \
    sh -c 'i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); echo forked $i; done; echo ALL-FORKED'
  assert_contains "$P_ERR" "can't fork" "stderr of the fork loop under --pids-limit 20"
  assert_not_contains "$P_OUT" ALL-FORKED "fork loop under --pids-limit 20"
  local last
  last=$(tail -n 1 <<<"$P_OUT" | awk '{print $2}')
  assert_le "$last" 19 "processes forked under --pids-limit 20"
  assert_ge "$last" 5 "processes forked under --pids-limit 20"
  pm rm -f -t 0 "$n-pids" >/dev/null 2>&1
  p_ok --runtime "$RT" run --rm "${PRUN[@]}" --pids-limit 100 "$BUSYBOX" \
    sh -c 'i=0; while [ $i -lt 40 ]; do sleep 1 & i=$((i+1)); done; echo ALL-FORKED; wait'
  assert_eq "$P_OUT" ALL-FORKED "fork loop of 40 under --pids-limit 100"
}

free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    ss -ltnH "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return 0; }
  done
  fail "no free port found"
}

test_podman_published_port() {
  need_cmd curl
  need_podman_image "$HTTPD"
  local n port body
  n=$(ctr_name web)
  port=$(free_port)
  local flags=()
  if [ "$BERTH_MODE" = root ]; then
    # root podman's network (netavark: a bridge, veths, firewall rules) in a
    # network namespace of this test's own, its loopback up
    touch "$T_DIR/netns"
    unshare --net="$T_DIR/netns" ip link set lo up || fail "cannot make a network namespace"
    PM_NETNS=$T_DIR/netns
    flags=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
  fi
  trap 'cleanup_podman_test '"$n"'; [ -n "${PM_NETNS:-}" ] && umount "$PM_NETNS" 2>/dev/null; true' EXIT
  hostcmd() { if [ -n "${PM_NETNS:-}" ]; then nsenter --net="$PM_NETNS" "$@"; else "$@"; fi; }
  p_ok --runtime "$RT" run -d --name "$n" "${flags[@]}" -p "127.0.0.1:$port:8080" "$HTTPD"
  local w=0
  body=""
  while [ $w -lt 100 ]; do
    body=$(hostcmd curl -sS --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null) && [ -n "$body" ] && break
    sleep 0.1
    w=$((w + 1))
  done
  assert_eq "$body" "$HTTPD_INDEX" "body of http://127.0.0.1:$port/ (curl from the host side)"
  # and with bash's /dev/tcp
  local reply
  reply=$(hostcmd bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; printf 'GET / HTTP/1.0\r\n\r\n' >&3; cat <&3")
  assert_contains "$reply" "200 OK" "/dev/tcp reply"
  assert_contains "$reply" "$HTTPD_INDEX" "/dev/tcp reply"
  p_ok logs "$n"
  assert_contains "$P_OUT$P_ERR" "response:200" "httpd's log of the requests (httpd -v)"
  p_ok rm -f -t 0 "$n"
  if hostcmd curl -sS --max-time 2 "http://127.0.0.1:$port/" >/dev/null 2>&1; then
    fail "port $port still answers after rm"
  fi
}

test_podman_containers_conf_runtime() {
  need_podman_image "$BUSYBOX"
  local conf=$T_DIR/containers.conf n
  n=$(ctr_name conf)
  # the documented recipe (docs/oci-runtime.md): a runtime named berth
  printf '%s\n\n[engine.runtimes]\nberth = [\n  "%s",\n]\n' "$PODMAN_ENGINE_CONF" "$RT" >"$conf"
  chmod 644 "$conf"
  cat "$conf"
  PM_CONF=$conf
  trap 'cleanup_podman_test '"$n" EXIT
  p_ok --runtime berth run --name "$n" "${PRUN[@]}" "$BUSYBOX" echo via-containers-conf
  assert_eq "$P_OUT" via-containers-conf "output"
  p_ok inspect --format '{{.OCIRuntime}}' "$n"
  assert_eq "$P_OUT" berth "the container's runtime name"
  p_ok rm "$n"
  # a runtime name that is not configured is refused: the name is what selects
  p_run --runtime berth-nonexistent run --rm "${PRUN[@]}" "$BUSYBOX" true
  assert_ne "$P_RC" 0 "podman --runtime with an unknown name"
  # engine.runtime = "berth" makes it the default
  printf '%s\nruntime = "berth"\n\n[engine.runtimes]\nberth = ["%s"]\n' "$PODMAN_ENGINE_CONF" "$RT" >"$conf"
  p_ok run --name "$n" "${PRUN[@]}" "$BUSYBOX" true
  p_ok inspect --format '{{.OCIRuntime}}' "$n"
  assert_eq "$P_OUT" berth "the default runtime from engine.runtime"
}

# make_logging_runtime: $RT_LOGGED, a wrapper that logs each call's arguments
# to $CALLS, then runs the runtime. It lives in the suite's bin directory, not
# in the test's: the engines still call it when the suite cleans up.
make_logging_runtime() {
  RT_LOGGED=$SUITE_TMP/bin/rt-logged-$T_NUM
  CALLS=$SUITE_TMP/bin/rt-calls-$T_NUM
  : >"$CALLS"
  chmod 666 "$CALLS"
  printf '#!/bin/sh\necho "$*" >>%q\nexec %q "$@"\n' "$CALLS" "$RT" >"$RT_LOGGED"
  chmod 755 "$RT_LOGGED"
}
# assert_called VERB: the log has a call whose verb (first word after the
# global options) is VERB
assert_called() {
  awk '{for (i = 1; i <= NF; i++) { if ($i ~ /^--(root|log|log-format|cgroup-manager|rootless|systemd-cgroup)$/) { i++; continue }
        if ($i ~ /^-/) continue; print $i; break }}' "$CALLS" | grep -qx "$1" ||
    { cat "$CALLS"; fail "the engine never ran '$1' through the runtime"; }
}

test_podman_calls_runtime() {
  need_podman_image "$BUSYBOX"
  local n
  n=$(ctr_name calls)
  make_logging_runtime
  trap 'cleanup_podman_test '"$n" EXIT
  p_ok --runtime "$RT_LOGGED" run -d --name "$n" "${PRUN[@]}" "$BUSYBOX" sleep 1000
  p_ok exec "$n" true
  p_ok stop -t 0 "$n"
  p_ok rm "$n"
  log "runtime calls:"; sed 's/^/#   /' "$CALLS"
  for v in create start exec kill delete; do assert_called "$v"; done
  # what podman passes (informational: podman 4.3 passes no --root as root,
  # so the runtime's default state directory is used)
  grep -q -- "--root" "$CALLS" && log "podman passes --root" || log "podman passes no --root"
  grep -q -- "--rootless" "$CALLS" && log "podman passes --rootless" || true
  grep -q -- "--systemd-cgroup" "$CALLS" && log "podman passes --systemd-cgroup" || true
}

# ---------------------------------------------------------------- containerd tests

containerd_missing() { ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; }
# start the suite's containerd (once; stopped at the end of the suite)
need_containerd() {
  need_runtime
  [ -S "$CTRD_SOCK" ] && kill -0 "$(cat "$CTRD/pid" 2>/dev/null)" 2>/dev/null && return 0
  mkdir -p "$CTRD"
  cat >"$CTRD/config.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = "$CTRD/debug.sock"
[metrics]
  address = ""
EOF
  # containerd 1.6 and its shims keep fifos, shim sockets and the runtime's
  # state under /run/containerd whatever the config says: a tmpfs of the
  # suite's own there (in its private mount namespace; the directory is made
  # on the host only when missing, and removed again)
  if [ ! -e "$CTRD/run-mounted" ]; then
    if [ ! -d /run/containerd ]; then mkdir -m 700 /run/containerd && touch "$SUITE_TMP/run-containerd-made"; fi
    mount -t tmpfs -o mode=700 berth-oci-it /run/containerd || fail "cannot mount a tmpfs on /run/containerd"
    touch "$CTRD/run-mounted"
  fi
  setsid containerd --config "$CTRD/config.toml" >"$CTRD/containerd.log" 2>&1 </dev/null &
  echo $! >"$CTRD/pid"
  local w=0
  until ctr -a "$CTRD_SOCK" version >/dev/null 2>&1 || [ $w -ge 100 ]; do sleep 0.1; w=$((w + 1)); done
  ctr -a "$CTRD_SOCK" version >/dev/null 2>&1 || { tail -n 20 "$CTRD/containerd.log"; fail "the suite's containerd did not start"; }
}
stop_containerd() {
  [ -f "$CTRD/pid" ] || return 0
  local pid c
  pid=$(cat "$CTRD/pid")
  if [ -S "$CTRD_SOCK" ]; then
    for c in $(ctr -a "$CTRD_SOCK" -n "$CTRD_NS" task ls -q 2>/dev/null); do
      ctr -a "$CTRD_SOCK" -n "$CTRD_NS" task kill -s SIGKILL "$c" >/dev/null 2>&1
      sleep 0.2
      ctr -a "$CTRD_SOCK" -n "$CTRD_NS" task delete -f "$c" >/dev/null 2>&1
    done
    for c in $(ctr -a "$CTRD_SOCK" -n "$CTRD_NS" container ls -q 2>/dev/null); do
      ctr -a "$CTRD_SOCK" -n "$CTRD_NS" container delete "$c" >/dev/null 2>&1
    done
  fi
  # whatever the runtime could not kill: the processes of the namespace's cgroups
  cat /sys/fs/cgroup/pids/"$CTRD_NS"/*/cgroup.procs 2>/dev/null | xargs -r kill -9 2>/dev/null
  kill "$pid" 2>/dev/null
  local w=0
  while kill -0 "$pid" 2>/dev/null && [ $w -lt 50 ]; do sleep 0.1; w=$((w + 1)); done
  kill -9 "$pid" 2>/dev/null
  # shims left over (their sockets are under our state dir)
  pgrep -f "containerd-shim.*-namespace $CTRD_NS " | xargs -r kill -9 2>/dev/null
  rm -f "$CTRD/pid"
  if [ -e "$CTRD/run-mounted" ]; then
    umount -l /run/containerd 2>/dev/null
    rm -f "$CTRD/run-mounted"
    [ -e "$SUITE_TMP/run-containerd-made" ] && rmdir /run/containerd 2>/dev/null
  fi
  # the v1 cgroups ctr made for the namespace (rmdir takes only empty ones)
  find /sys/fs/cgroup/*/"$CTRD_NS" -depth -type d -exec rmdir {} + 2>/dev/null
  true
}
# c_run ARGS: ctr against the suite's containerd, in the suite's namespace
c_run() {
  B_N=$((B_N + 1))
  local o=$T_DIR/c$B_N.out e=$T_DIR/c$B_N.err
  echo "\$ ctr $*"
  C_RC=0
  timeout -k 5 "${BERTH_TEST_TIMEOUT:-120}" ctr -a "$CTRD_SOCK" -n "$CTRD_NS" "$@" >"$o" 2>"$e" </dev/null || C_RC=$?
  C_OUT=$(cat "$o")
  C_ERR=$(cat "$e")
  echo "# exit $C_RC"
  [ -s "$o" ] && head -c 3000 "$o" | sed 's/^/# stdout: /'
  [ -s "$e" ] && head -c 3000 "$e" | sed 's/^/# stderr: /'
  return 0
}
c_ok() {
  c_run "$@"
  [ "$C_RC" = 0 ] || fail "ctr $* exited $C_RC: $C_ERR"
}
need_ctr_image() {
  need_containerd
  c_run images check "name==$1"
  grep -q complete <<<"$C_OUT" && return 0
  need_registry "$REG"
  c_ok images pull --plain-http "$1"
}

test_ctrd_pull() {
  need_containerd
  need_registry "$REG"
  c_ok images pull --plain-http "$BUSYBOX"
  c_ok images ls -q
  assert_contains "$C_OUT" "$BUSYBOX" "ctr images ls"
  c_ok images check "name==$BUSYBOX"
  assert_contains "$C_OUT" complete "ctr images check"
}

test_ctrd_run_rm() {
  need_ctr_image "$BUSYBOX"
  local id=oci-it-$T_NUM-rm
  c_ok run --runc-binary "$RT" --rm "$BUSYBOX" "$id" sh -c 'echo hello-from-ctr; echo pid=$$; id -u'
  assert_eq "$C_OUT" $'hello-from-ctr\npid=1\n0' "ctr run --rm output"
  c_run run --runc-binary "$RT" --rm "$BUSYBOX" "$id-x" sh -c 'exit 5'
  assert_eq "$C_RC" 5 "exit code of ctr run 'exit 5'"
  c_ok container ls -q
  assert_not_contains "$C_OUT" "$id" "containers left after ctr run --rm"
}

test_ctrd_detached_lifecycle() {
  need_ctr_image "$BUSYBOX"
  local id=oci-it-$T_NUM-d
  make_logging_runtime
  c_ok run -d --runc-binary "$RT_LOGGED" "$BUSYBOX" "$id" sh -c 'echo started >/tmp/started; exec sleep 1000'
  # the runtime options containerd keeps (runc.v1.Options, BinaryName inside)
  local opts
  opts=$(ctr -a "$CTRD_SOCK" -n "$CTRD_NS" container info "$id" |
    "$PY" -c 'import base64, json, sys; r = json.load(sys.stdin)["Runtime"]; print(r["Name"], base64.b64decode(r["Options"]["value"]).decode("latin-1"))') ||
    fail "ctr container info $id: no runtime options"
  log "runtime: $opts"
  assert_contains "$opts" "io.containerd.runc.v2" "the container's runtime"
  assert_contains "$opts" "$RT_LOGGED" "the container's runtime options (BinaryName)"
  c_ok task ls
  assert_contains "$(grep -w "$id" <<<"$C_OUT")" RUNNING "task state after run -d"
  c_ok task exec --exec-id x1 "$id" sh -c 'cat /tmp/started; echo pid=$$; cat /proc/1/cmdline | tr "\0" " "'
  assert_eq "$(sed -n 1p <<<"$C_OUT")" started "exec sees the container's files"
  assert_ne "$(sed -n 2p <<<"$C_OUT")" pid=1 "the exec'd process is not PID 1"
  assert_contains "$(sed -n 3p <<<"$C_OUT")" "sleep 1000" "exec sees PID 1"
  c_run task exec --exec-id x2 "$id" sh -c 'exit 9'
  assert_eq "$C_RC" 9 "exit code through task exec"
  c_ok task ps "$id"
  c_ok task kill -s SIGKILL "$id"
  local w=0
  while [ $w -lt 100 ]; do
    c_run task ls
    grep -w "$id" <<<"$C_OUT" | grep -q STOPPED && break
    sleep 0.1
    w=$((w + 1))
  done
  assert_contains "$(grep -w "$id" <<<"$C_OUT")" STOPPED "task state after kill"
  c_ok task delete "$id"
  c_ok task ls -q
  assert_not_contains "$C_OUT" "$id" "tasks after task delete"
  c_ok container delete "$id"
  c_ok container ls -q
  assert_not_contains "$C_OUT" "$id" "containers after container delete"
  log "runtime calls:"; sed 's/^/#   /' "$CALLS"
  for v in create start exec kill delete; do assert_called "$v"; done
}

# docs/kubernetes.md's containerd configuration (the toml block after its
# containerd-cri-config marker), the runtime path made the one under test, in
# a second private containerd with its CRI plugin on: the plugin loads and
# knows the runtime
test_ctrd_cri_config() {
  need_containerd
  local doc=$REPO/docs/kubernetes.md d=$SUITE_TMP/containerd-cri
  need_file "$doc"
  awk '/containerd-cri-config/ {m = 1; next} m && /^```toml/ {p = 1; next} p && /^```/ {exit} p' "$doc" >"$T_DIR/snippet.toml"
  grep -q 'runtimes.berth' "$T_DIR/snippet.toml" || fail "no containerd-cri-config toml block in $doc"
  mkdir -p "$d"
  {
    echo 'version = 2'
    echo "root = \"$d/root\""
    echo "state = \"$d/state\""
    printf '[grpc]\n  address = "%s"\n[ttrpc]\n  address = "%s"\n[debug]\n  address = "%s"\n[metrics]\n  address = ""\n' \
      "$d/c.sock" "$d/c.sock.ttrpc" "$d/debug.sock"
    grep -v '^version' "$T_DIR/snippet.toml" | sed "s|/usr/local/bin/berth-oci|$RT|"
  } >"$d/config.toml"
  cat "$d/config.toml"
  containerd --config "$d/config.toml" config dump >"$T_DIR/dump" 2>&1 || { cat "$T_DIR/dump"; fail "containerd config dump failed"; }
  grep -A14 'runtimes.berth\]' "$T_DIR/dump" | grep -q 'runtime_type = "io.containerd.runc.v2"' ||
    fail "config dump: runtime berth is not io.containerd.runc.v2"
  grep -q "BinaryName = \"$RT\"" "$T_DIR/dump" || fail "config dump: no BinaryName = $RT"
  setsid containerd --config "$d/config.toml" >"$d/log" 2>&1 </dev/null &
  local pid=$!
  trap 'kill '"$pid"' 2>/dev/null || true; sleep 0.5; kill -9 '"$pid"' 2>/dev/null || true' EXIT
  local w=0
  until ctr -a "$d/c.sock" version >/dev/null 2>&1 || [ $w -ge 100 ]; do sleep 0.1; w=$((w + 1)); done
  ctr -a "$d/c.sock" plugins ls >"$T_DIR/plugins" 2>&1 || { tail -n 20 "$d/log"; fail "the CRI containerd did not start"; }
  awk '$1 == "io.containerd.grpc.v1" && $2 == "cri"' "$T_DIR/plugins"
  [ "$(awk '$1 == "io.containerd.grpc.v1" && $2 == "cri" {print $4}' "$T_DIR/plugins")" = ok ] ||
    { grep -i cri "$d/log" | tail -n 5; fail "the CRI plugin did not load with docs/kubernetes.md's configuration"; }
}

# ---------------------------------------------------------------- the run

oci_cleanup() {
  stop_containerd
  if [ -d "$PD/root" ] && command -v podman >/dev/null; then
    pm rm -af -t 0 >/dev/null 2>&1
    pm rmi -af >/dev/null 2>&1
    pm system reset -f >/dev/null 2>&1
  fi
  # the rootless pause process (catatonit) that keeps podman's user namespace
  local f pid d
  while read -r f; do
    pid=$(cat "$f" 2>/dev/null)
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = catatonit ] && kill "$pid" 2>/dev/null
  done < <(find "$PD" -name pause.pid 2>/dev/null)
  # podman (cgroupfs, root) leaves an empty libpod_parent in each v1 hierarchy:
  # remove those this run made
  for d in /sys/fs/cgroup/*/libpod_parent; do
    [ -d "$d" ] || continue
    grep -qxF "$d" <<<"$LIBPOD_CG_BEFORE" && continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  # mounts left under the suite's directory
  awk -v w="$SUITE_TMP/" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  t_cleanup_suite
}
trap oci_cleanup EXIT

# t_skip NAME REASON: a test that cannot run on this host: said, never passed
t_skip() {
  if [ -n "${BERTH_TEST_FILTER:-}" ] && ! grep -qE -- "$BERTH_TEST_FILTER" <<<"$1"; then return 0; fi
  T_SKIP=$((T_SKIP + 1))
  echo "skip - $1 ($2)"
}

log_header
if [ ! -f "$RT_SRC" ]; then
  # one failure, not one per test, until berth-oci is built
  T_NUM=$((T_NUM + 1))
  T_FAIL=$((T_FAIL + 1))
  T_FAILED_NAMES+=("OCI runtime present")
  echo "not ok - OCI runtime present"
  echo "    # $RT_SRC does not exist: make build/berth-oci, or OCI_RUNTIME=/path/to/runtime"
  t_summary
  exit $?
fi

t_run "podman run --rm busybox" test_podman_run_busybox
t_run "podman run --rm debian" test_podman_run_debian
t_run "podman run -d, exec, logs, stop, start, rm" test_podman_detached_lifecycle
t_run "podman run -it in a terminal: tty, size, resize, echo, ^C, exit code" test_podman_run_it_terminal
t_run "podman -p 127.0.0.1:PORT:8080 with httpd" test_podman_published_port
t_run "containers.conf [engine.runtimes] berth = PATH" test_podman_containers_conf_runtime
t_run "podman drives create/start/exec/kill/delete through the runtime" test_podman_calls_runtime
if [ "$BERTH_MODE" = root ]; then
  t_run "podman --memory (OOM kill) and --pids-limit enforced" test_podman_limits
  ctrd_tests=("containerd: ctr images pull --plain-http:test_ctrd_pull"
    "containerd: ctr run --runc-binary --rm:test_ctrd_run_rm"
    "containerd: run -d, task exec, kill, delete, container delete:test_ctrd_detached_lifecycle"
    "containerd: the CRI config of docs/kubernetes.md loads:test_ctrd_cri_config")
  for t in "${ctrd_tests[@]}"; do
    if containerd_missing; then
      t_skip "${t%:*}" "containerd is not installed: apt-get install containerd"
    else
      t_run "${t%:*}" "${t##*:}"
    fi
  done
else
  echo "# root-mode only, not run rootless: the limits test (rootless limits need cgroup v2 delegation), the containerd tests (rootless containerd needs rootlesskit)"
fi
[ "$T_SKIP" -gt 0 ] && echo "# $T_SKIP skipped (not passed: they could not run on this host)"
t_summary
