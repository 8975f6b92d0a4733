#!/bin/bash
# Service containers and the lifecycle around them: the image's command as
# the main process, logs, stop/start/restart/kill, restart policies, a
# persistent container after a simulated reboot, MCP sessions and ttl.
# Root and rootless (BERTH_MODE).
. "$(dirname "$0")/lib.sh"

st_field() { # NAME KEY: a top-level field of the container's state record
  "$PY" -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print(json.dumps(v) if not isinstance(v,str) else v)' \
    "$BERTH_ROOT/containers/$1/state.json" "$2"
}
# wait_for SECONDS CMD...: until CMD succeeds
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $end ] || return 1; sleep 0.1; done
}
status_is() { [ "$(b_run status --json "$1" >/dev/null; field '["status"]')" = "$2" ]; }
# every process the container has on the host: monitor, init and helpers
ctr_pids() {
  "$PY" -c 'import json,sys
s=json.load(open(sys.argv[1]))
print(" ".join(str(s[k]["pid"]) for k in ("monitor","init","network_helper","port_forwarder") if isinstance(s.get(k),dict)))' \
    "$BERTH_ROOT/containers/$1/state.json"
}
load_httpd() {
  need_image httpd
  b_ok load -q "$IMAGES/httpd"
}
http_get() { # NAME: GET / from inside the container (busybox nc)
  b_run exec "$1" sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc 127.0.0.1 8080'
}

test_service_image_runs_its_command() {
  setup_ctr; load_httpd
  tool '{"operation":"create","name":"web","image":"localhost/httpd","network":"none"}'
  assert_eq "$(field '["mode"]')" service "an image whose Cmd is a server makes a service container"
  assert_eq "$(field '["command"][0]')" httpd
  assert_eq "$(field '["status"]')" ready
  wait_for 5 http_get web || fail "httpd does not answer: $B_OUT $B_ERR"
  http_get web
  assert_contains "$B_OUT" "hello from berth httpd" "the image's own command serves"
  b_ok logs web
  assert_contains "$B_ERR" "response:200" "httpd -v logs each request to stderr, and the log has it"
  b_ok ls
  assert_contains "$B_OUT" "service" "ls shows the mode"
  b_ok status --json web
  assert_eq "$(field '["metadata"]["workdir"]')" /www "the image's WorkingDir"
}

test_shell_image_is_a_dev_container() {
  setup_ctr
  tool '{"operation":"create","name":"dev","image":"localhost/busybox","network":"none","mount_cwd":false}'
  assert_eq "$(field '["mode"]')" dev "busybox's Cmd [\"/bin/sh\"] is a bare shell: a dev container"
  b_ok exec dev echo alive
  assert_eq "$B_OUT" alive
  tool '{"operation":"logs","container":"dev"}'
  assert_contains "$(field '["note"]')" "dev container"
}

test_command_entrypoint_keep_alive() {
  setup_ctr; load_httpd
  # a command given always runs, even a shell
  b_ok create -q --name c1 --network none localhost/busybox sh -c 'echo from-c1; sleep 300'
  b_ok status --json c1
  assert_eq "$(field '["metadata"]["mode"]')" service
  wait_for 5 sh -c "grep -q from-c1 '$BERTH_ROOT/containers/c1/ctr.log'" || fail "c1's output is not in its log"
  # --entrypoint replaces the image's and drops its Cmd
  b_ok create -q --name c2 --network none --entrypoint /bin/echo localhost/httpd only-this
  wait_for 5 sh -c "grep -q only-this '$BERTH_ROOT/containers/c2/ctr.log'" || fail "entrypoint output missing"
  b_ok logs c2
  assert_eq "$B_OUT" only-this "entrypoint + command, without the image's Cmd"
  # keep_alive: a dev container whatever the image says
  tool '{"operation":"create","name":"c3","image":"localhost/httpd","network":"none","keep_alive":true}'
  assert_eq "$(field '["mode"]')" dev
  http_get c3
  assert_not_contains "$B_OUT" "hello from berth httpd" "keep_alive: the image's server is not started"
  tool '{"operation":"create","name":"c4","image":"localhost/httpd","network":"none","keep_alive":true,"command":["true"]}'
  assert_eq "$(field '["code"]')" invalid_value "keep_alive and a command together are refused"
  assert_not_exists "$BERTH_ROOT/containers/c4" "the refused create left nothing"
  # a purpose makes a dev container of any image
  tool '{"operation":"create","name":"c5","image":"localhost/httpd","network":"none","purpose":"clean"}'
  assert_eq "$(field '["mode"]')" dev
}

test_logs_tail_follow_since() {
  setup_ctr
  b_ok create -q --name w --network none localhost/busybox sh -c 'i=0; while [ $i -lt 40 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.05; done; sleep 300'
  wait_for 10 sh -c "grep -q 'out 39' '$BERTH_ROOT/containers/w/ctr.log'" || fail "the writer did not finish"
  b_ok logs --tail 4 w
  assert_eq "$B_OUT" $'out 38\nout 39' "--tail 4: the last four records, stdout's to stdout"
  assert_eq "$B_ERR" $'err 38\nerr 39' "stderr's to stderr"
  b_ok logs -t --tail 1 w
  [[ "$B_ERR" =~ ^20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9:.]+Z\ err\ 39$ ]] || fail "-t prefixes an RFC 3339 time: $B_ERR"
  b_ok logs --since 1h w
  assert_contains "$B_OUT" "out 0"
  b_ok logs --since "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" w
  assert_eq "$B_OUT" "" "--since in the future: nothing"
  tool '{"operation":"logs","container":"w","tail":2}'
  assert_contains "$(field '["logs"]')" "out 39"
  assert_contains "$(field '["logs"]')" "err 39"
  assert_not_contains "$(field '["logs"]')" "38" "two lines only"
  # -f follows new output and ends by itself when the container stops
  b_ok create -q --name f --network none localhost/busybox sh -c 'i=0; while :; do echo "tick $i"; i=$((i+1)); sleep 0.1; done'
  berth_cmd logs -f f
  "${B_CMD[@]}" >"$T_DIR/follow.out" 2>&1 &
  local fp=$!
  sleep 1.5
  b_ok stop -t 1 f
  local waited=0
  while kill -0 $fp 2>/dev/null && [ $waited -lt 50 ]; do sleep 0.1; waited=$((waited + 1)); done
  kill -0 $fp 2>/dev/null && { kill $fp; fail "logs -f did not end when the container stopped"; }
  wait $fp || true
  local n
  n=$(grep -c '^tick' "$T_DIR/follow.out")
  assert_ge "$n" 8 "logs -f printed what came while it followed"
}

test_log_cap_holds() {
  setup_ctr
  write_config '{"log_max_size": "4m", "log_max_files": 2}'
  b_ok create -q --name big --network none localhost/busybox sh -c \
    'yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01234567 | head -c 200000000; echo; echo the-end; sleep 300'
  wait_for 60 sh -c "grep -q the-end '$BERTH_ROOT/containers/big/ctr.log'" || fail "200 MB were not written within 60 s"
  local kb
  kb=$(du -sk "$BERTH_ROOT/containers/big" | cut -f1)
  log "container dir: ${kb} KiB after 200 MB of output"
  assert_le "$kb" 10240 "the log keeps at most 2 x 4 MiB (+ the container's own files)"
  assert_exists "$BERTH_ROOT/containers/big/ctr.log.1" "rotated"
  assert_not_exists "$BERTH_ROOT/containers/big/ctr.log.2" "log_max_files 2: no third file"
  b_ok logs --tail 1 big
  assert_eq "$B_OUT" the-end
}

test_stop_start_keeps_the_container() {
  setup_ctr
  b_ok create -q --name s --network none -e KEEP=me --no-mount-cwd localhost/busybox
  b_ok exec s sh -c 'echo written > /root/file'
  b_ok stop s
  assert_eq "$(st_field s status)" exited
  assert_eq "$(st_field s stopped)" true
  b_run exec s true
  assert_ne "$B_RC" 0 "no exec into a stopped container"
  assert_contains "$B_ERR" "berth start" "the error says how to start it"
  tool '{"operation":"exec","container":"s","command":"true"}'
  assert_eq "$(field '["code"]')" not_running
  b_ok start --json s
  assert_contains "$(field '["env_restored"]')" KEEP "the caller's variables come back"
  b_ok exec s sh -c 'cat /root/file; echo $KEEP; hostname'
  assert_eq "$B_OUT" $'written\nme\ns' "same files, variables and name"
  b_ok restart -t 2 s
  b_ok exec s cat /root/file
  assert_eq "$B_OUT" written
  tool '{"operation":"stop","container":"s","timeout":1}'
  assert_eq "$(field '["status"]')" exited
  tool '{"operation":"start","container":"s"}'
  assert_eq "$(field '["status"]')" running
  b_ok start s
  b_ok status --json s
  assert_eq "$(field '["status"]')" running "start of a running container is a no-op"
}

test_stop_start_on_a_named_network() {
  setup_ctr
  b_ok network create sn
  b_ok create -q --name a --network sn --no-mount-cwd localhost/busybox
  b_ok create -q --name b --network sn --no-mount-cwd localhost/busybox
  b_ok stop b
  b_ok exec a cat /etc/hosts
  assert_not_contains "$B_OUT" "	b" "a stopped member leaves the others' hosts"
  b_ok start b
  b_ok status --json b
  assert_eq "$(field '["metadata"]["network"]')" sn "same network after start"
  local ip
  ip=$(field '["metadata"]["ip"]')
  b_ok exec a cat /etc/hosts
  assert_contains "$B_OUT" "$ip	b" "a knows b again by name"
  b_ok exec b cat /etc/hosts
  assert_contains "$B_OUT" "	a" "b knows a by name"
}

test_kill_and_stop_signal() {
  setup_ctr
  b_ok create -q --name k --network none localhost/busybox sh -c 'trap "echo got-usr1" USR1; trap "echo got-term; exit 7" TERM; while :; do sleep 0.1; done'
  sleep 0.3
  b_ok kill -s USR1 k
  wait_for 5 sh -c "grep -q got-usr1 '$BERTH_ROOT/containers/k/ctr.log'" || fail "USR1 did not reach the main process"
  b_ok stop k
  b_ok logs k
  assert_contains "$B_OUT" got-term "stop sends SIGTERM to the main process"
  assert_eq "$(st_field k exit_code)" 7 "its exit code is recorded"
  b_run kill k
  assert_ne "$B_RC" 0 "kill of a stopped container fails"
  b_run kill -s NOPE k
  assert_eq "$B_RC" 125 "an unknown signal is a usage error"
}

test_restart_on_failure_with_backoff() {
  setup_ctr
  b_ok create -q --name r --network none --restart on-failure:3 localhost/busybox sh -c 'echo run; exit 3'
  wait_for 15 sh -c "[ \"\$(grep -c run '$BERTH_ROOT/containers/r/ctr.log')\" = 4 ] && grep -q '\"status\": \"exited\"' '$BERTH_ROOT/containers/r/state.json'" ||
    fail "not 1 run + 3 restarts: $(cat "$BERTH_ROOT/containers/r/ctr.log")"
  sleep 1
  assert_eq "$(grep -c run "$BERTH_ROOT/containers/r/ctr.log")" 4 "stops after 3 restarts"
  assert_eq "$(st_field r restart_count)" 3
  assert_eq "$(st_field r exit_code)" 3
  # the back-off doubles: the gaps between runs grow
  b_ok logs -t r
  "$PY" - "$B_OUTF" <<'PY' || fail "the restarts are not backed off"
import sys, datetime
ts = [datetime.datetime.strptime(l.split()[0][:26], "%Y-%m-%dT%H:%M:%S.%f") for l in open(sys.argv[1]) if l.strip()]
gaps = [(b - a).total_seconds() for a, b in zip(ts, ts[1:])]
print("gaps", gaps)
assert gaps[0] >= 0.09 and gaps[2] >= 1.5 * gaps[0], gaps
PY
  # a success is not a failure: no restart
  b_ok create -q --name ok --network none --restart on-failure localhost/busybox true
  sleep 1.5
  assert_eq "$(st_field ok restart_count)" 0
}

test_restart_always_until_stopped() {
  setup_ctr
  b_ok create -q --name a --network none --restart always localhost/busybox sh -c 'echo up; sleep 0.3'
  wait_for 10 sh -c "[ \$(grep -c up '$BERTH_ROOT/containers/a/ctr.log') -ge 3 ]" || fail "always did not restart"
  b_ok stop -t 1 a
  local n
  n=$(grep -c up "$BERTH_ROOT/containers/a/ctr.log")
  sleep 1.5
  assert_eq "$(grep -c up "$BERTH_ROOT/containers/a/ctr.log")" "$n" "a stopped container is not restarted"
  assert_eq "$(st_field a status)" exited
}

test_persistent_after_simulated_reboot() {
  setup_ctr
  b_ok create -q --name p --persistent --network none --no-mount-cwd localhost/busybox
  b_ok exec p sh -c 'echo survived > /root/f'
  b_ok create -q --name svc --persistent --network none localhost/busybox sh -c 'echo svc-up; sleep 300'
  b_ok create -q --name n --network none --no-mount-cwd localhost/busybox
  b_ok create -q --name ps --persistent --network none --no-mount-cwd localhost/busybox
  b_ok stop ps
  # the reboot: every process of theirs killed at once, nothing recorded
  local pids
  pids="$(ctr_pids p) $(ctr_pids svc) $(ctr_pids n)"
  kill -9 $pids
  sleep 0.5
  b_ok ls -a --json
  b_ok start --all-persistent --json
  assert_contains "$(field '["started"]')" '"p"'
  assert_contains "$(field '["started"]')" '"svc"'
  assert_not_contains "$(field '["started"]')" '"n"' "not persistent: stays down"
  assert_not_contains "$(field '["started"]')" '"ps"' "stopped by a person: stays stopped"
  b_ok exec p cat /root/f
  assert_eq "$B_OUT" survived
  if [ "$BERTH_MODE" = root ]; then
    # a writable layer on its own filesystem (--disk): after a reboot its
    # mount is gone too, and start mounts it again
    b_ok create -q --name pd --persistent --disk 32m --network none --no-mount-cwd localhost/busybox
    b_ok exec pd sh -c 'echo on-disk > /root/f'
    kill -9 $(ctr_pids pd)
    sleep 0.3
    umount -l "$BERTH_ROOT/containers/pd/disk"
    b_ok start --all-persistent --json
    assert_contains "$(field '["started"]')" '"pd"'
    b_ok exec pd cat /root/f
    assert_eq "$B_OUT" on-disk "the layer's filesystem was mounted again"
  fi
  wait_for 5 sh -c "[ \$(grep -c svc-up '$BERTH_ROOT/containers/svc/ctr.log') = 2 ]" || fail "the service did not run again"
  assert_eq "$(st_field n status)" running "n is recorded running but its init is dead"
  b_ok status --json n
  assert_eq "$(field '["status"]')" exited
}

test_autostart_unit() {
  setup_ctr
  B_EXTRA_ENV="BERTH_SYSTEMD_UNIT_DIR=$BERTH_HOME/units" b_ok autostart enable
  assert_exists "$BERTH_HOME/units/berth-autostart.service"
  assert_contains "$(cat "$BERTH_HOME/units/berth-autostart.service")" "start --all-persistent"
  assert_contains "$(cat "$BERTH_HOME/units/berth-autostart.service")" "BERTH_ROOT=$BERTH_ROOT"
  if [ ! -d /run/systemd/system ]; then
    assert_contains "$B_OUT" "systemd is not running" "no systemd: said, with the command to run at boot"
  fi
  B_EXTRA_ENV="BERTH_SYSTEMD_UNIT_DIR=$BERTH_HOME/units" b_ok autostart status
  assert_contains "$B_OUT" installed
  B_EXTRA_ENV="BERTH_SYSTEMD_UNIT_DIR=$BERTH_HOME/units" b_ok autostart disable
  assert_not_exists "$BERTH_HOME/units/berth-autostart.service"
}

mcp_lines() { # NAME...: initialize, create each (the last persistent), list
  local id=1 n
  printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}'
  for n in "$@"; do
    id=$((id + 1))
    local p=false; [ "$n" = "${!#}" ] && p=true
    printf '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"containers","arguments":{"operation":"create","name":"%s","image":"localhost/busybox","network":"none","mount_cwd":false,"persistent":%s}}}\n' "$id" "$n" "$p"
  done
}

test_mcp_session_removes_its_containers() {
  setup_ctr
  berth_cmd mcp
  mcp_lines m1 m2 keep | "${B_CMD[@]}" >"$T_DIR/mcp.out"
  assert_eq "$(grep -c -F '\"success\": true' "$T_DIR/mcp.out")" 3 "three creates in the session"
  assert_not_exists "$BERTH_ROOT/containers/m1" "the session's containers went with it"
  assert_not_exists "$BERTH_ROOT/containers/m2"
  assert_exists "$BERTH_ROOT/containers/keep" "a persistent one stays"
  # --keep-containers keeps them
  berth_cmd mcp --keep-containers
  mcp_lines k1 k2 | "${B_CMD[@]}" >"$T_DIR/mcp2.out"
  assert_exists "$BERTH_ROOT/containers/k1"
  # a server killed outright: the next berth command collects its containers
  mkfifo "$T_DIR/in"; chmod 666 "$T_DIR/in"
  berth_cmd mcp
  "${B_CMD[@]}" <"$T_DIR/in" >"$T_DIR/mcp3.out" 2>&1 &
  local sp=$!
  exec 7>"$T_DIR/in"
  mcp_lines z1 zkeep >&7
  wait_for 20 test -f "$BERTH_ROOT/containers/zkeep/state.json" || fail "the session did not create"
  wait_for 10 grep -q '"id":3' "$T_DIR/mcp3.out" || fail "no reply"
  pkill -9 -f -- "$BERTH_BIN mcp$" || true
  pkill -9 -P $sp || true
  kill -9 $sp 2>/dev/null || true
  exec 7>&-
  sleep 0.3
  b_ok ls -a -q
  assert_not_contains "$B_OUT" z1 "a killed session's container is collected"
  assert_contains "$B_OUT" zkeep
}

test_ttl_expires() {
  setup_ctr
  tool '{"operation":"create","name":"t","image":"localhost/busybox","network":"none","mount_cwd":false,"ttl":2}'
  assert_eq "$(field '["success"]')" true
  [ -n "$(field '["expires_at"]')" ] || fail "the reply says when it expires"
  wait_for 8 test ! -e "$BERTH_ROOT/containers/t" || fail "the container outlived its ttl"
  tool '{"operation":"create","name":"t2","image":"localhost/busybox","network":"none","ttl":0}'
  assert_eq "$(field '["code"]')" invalid_value
}

test_run_detach_and_user() {
  setup_ctr
  b_ok run -d --name d --network none localhost/busybox sh -c 'echo detached-hello; sleep 300'
  assert_eq "$B_OUT" d "run -d prints the name"
  wait_for 5 sh -c "grep -q detached-hello '$BERTH_ROOT/containers/d/ctr.log'" || fail "no output in the log"
  b_ok run --rm -u nobody --network none localhost/busybox id -u
  assert_eq "$B_OUT" 65534 "run -u"
  b_run run -d --rm --network none localhost/busybox true
  assert_eq "$B_RC" 125 "-d with --rm is refused"
}

test_oom_is_recorded() {
  setup_ctr
  local limits_ok=0
  { [ "$BERTH_MODE" = root ] || [ -f /sys/fs/cgroup/cgroup.controllers ]; } && limits_ok=1
  if [ "$limits_ok" = 0 ]; then
    # rootless on cgroup v1: no memory limit can be applied, so no hog is
    # run (it would eat the host's memory); the create must say so
    b_ok create --json --name o --memory 32m --network none localhost/busybox sleep 300
    assert_eq "$(field '["limits_applied"]')" false "rootless on cgroup v1: the create says the limit is not applied"
    [ -n "$(field '["limits_note"]')" ] || fail "no note says why the limit is not applied"
    return 0
  fi
  b_ok create -q --name o --memory 32m --network none localhost/busybox sh -c 'x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done'
  wait_for 20 sh -c "grep -q '\"status\": \"exited\"' '$BERTH_ROOT/containers/o/state.json'" || fail "the memory hog was not ended"
  assert_eq "$(st_field o oom_killed)" true "the OOM kill is recorded"
  b_ok status o
  assert_contains "$B_OUT" "killed for want of memory"
}

t_run "a service image runs its own command; its output is in the log" test_service_image_runs_its_command
t_run "an image whose command is a bare shell is a dev container" test_shell_image_is_a_dev_container
t_run "command, entrypoint and keep_alive decide the main process" test_command_entrypoint_keep_alive
t_run "logs: --tail, -t, --since, the tool's logs, -f until the stop" test_logs_tail_follow_since
t_run "the log cap holds under a 200 MB writer" test_log_cap_holds
t_run "stop keeps files and variables; start brings them back under the same name" test_stop_start_keeps_the_container
t_run "stop and start on a named network: the others forget and relearn the name" test_stop_start_on_a_named_network
t_run "kill sends a signal to the main process; stop sends SIGTERM and records the exit" test_kill_and_stop_signal
t_run "restart=on-failure:3 restarts a crashing service with back-off, then stops" test_restart_on_failure_with_backoff
t_run "restart=always restarts until a person stops it" test_restart_always_until_stopped
t_run "a persistent container comes back after a simulated reboot; others stay down" test_persistent_after_simulated_reboot
t_run "autostart writes, shows and removes the boot unit" test_autostart_unit
t_run "an MCP session's containers go when it ends (or is killed); persistent ones stay" test_mcp_session_removes_its_containers
t_run "a ttl removes the container when it expires" test_ttl_expires
t_run "run -d and run -u" test_run_detach_and_user
t_run "an OOM kill of the main process is recorded" test_oom_is_recorded
t_summary
