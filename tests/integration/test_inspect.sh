#!/bin/bash
# inspect, stats and top: what they show of real containers and images.
# Run as root and rootless (BERTH_MODE). Containers use --network none (or a
# named network, in its own namespace): nothing on berth0.
. "$(dirname "$0")/lib.sh"

CG_V2=0; [ -f /sys/fs/cgroup/cgroup.controllers ] && CG_V2=1
# limits and the cgroup figures: root, or cgroup v2 with delegation (rootless
# on cgroup v1 has no cgroup: stats shows -- and null there)
limits_expected() { [ "$BERTH_MODE" = root ] || [ "$CG_V2" = 1 ]; }
create() { b_ok create -q --no-mount-cwd --network none "$@" localhost/busybox; }
# jq NAME EXPR: a value of $B_OUTF (strings raw, the rest as JSON)
jq_() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(json.dumps(v) if not isinstance(v,str) else v)' "$B_OUTF" "$1"; }
# the stats --json entry of NAME, as one field
stat_of() { # NAME FIELD
  "$PY" -c 'import json,sys; d=[c for c in json.load(open(sys.argv[1])) if c["name"]==sys.argv[2]]; print(json.dumps(d[0][sys.argv[3]]) if d else "missing")' \
    "$B_OUTF" "$1" "$2"
}

test_limits_in_stats_and_inspect() {
  setup_ctr
  create --memory 64m --pids 50 --name c
  b_ok stats --no-stream --json c
  assert_eq "$(jq_ 'len(d)')" 1 "one entry for the one NAME"
  assert_eq "$(stat_of c status)" '"running"'
  if limits_expected; then
    assert_eq "$(stat_of c memory_limit)" 67108864 "memory limit"
    assert_eq "$(stat_of c pids_max)" 50 "pids max"
    assert_ge "$(stat_of c pids)" 1 "pids: init at least"
  else
    assert_eq "$(stat_of c memory_limit)" null "no cgroup, no limit to show"
    assert_eq "$(stat_of c pids)" null
  fi
  b_ok stats --no-stream c
  assert_contains "$(head -n 1 "$B_OUTF")" "MEM USAGE / LIMIT"
  if limits_expected; then assert_contains "$(grep '^c ' "$B_OUTF")" "/ 64MiB"; fi
  b_ok inspect c
  assert_eq "$(jq_ 'd[0]["type"]')" container
  assert_eq "$(jq_ 'd[0]["limits"]["memory"]')" 67108864 "inspect: limits.memory"
  assert_eq "$(jq_ 'd[0]["limits"]["pids"]')" 50 "inspect: limits.pids"
  assert_eq "$(jq_ 'd[0]["config"]["resources"]["memory"]["limit"]')" 67108864 "inspect: the spec's memory limit"
  assert_eq "$(jq_ 'd[0]["config"]["resources"]["pids"]["limit"]')" 50 "inspect: the spec's pids limit"
  if limits_expected; then assert_eq "$(jq_ 'd[0]["limits"]["applied"]')" true
  else assert_eq "$(jq_ 'd[0]["limits"]["applied"]')" false; fi
}

test_usage_from_an_exec() {
  setup_ctr
  create --memory 64m --name c
  # 20 MiB in the container's own tmpfs (charged to its cgroup, kept), and a
  # busy loop left running in the background
  b_ok exec c dd if=/dev/zero of=/dev/shm/fill bs=1M count=20
  b_ok exec c sh -c 'exec >/dev/null 2>&1 </dev/null; while :; do :; done &'
  b_ok stats --no-stream --json c
  if limits_expected; then
    assert_ge "$(stat_of c memory_usage)" $((16 << 20)) "memory use with 20 MiB in /dev/shm"
    assert_le "$(stat_of c memory_usage)" $((64 << 20)) "memory use within the limit"
    assert_ge "$(stat_of c memory_percent)" 25 "memory % of the 64 MiB limit"
    assert_ge "$(stat_of c cpu_percent)" 1 "CPU % with a busy loop (one CPU: 100)"
    assert_ge "$(stat_of c pids)" 2 "pids: init and the loop"
  else
    assert_eq "$(stat_of c memory_usage)" null
    assert_eq "$(stat_of c cpu_percent)" null
  fi
  # only loopback with --network none: nothing counted, but known
  assert_eq "$(stat_of c net_rx)" 0 "net rx"
  assert_eq "$(stat_of c net_tx)" 0 "net tx"
  b_ok stats --no-stream c
  if limits_expected; then
    local row; row=$(grep '^c ' "$B_OUTF")
    [[ $row =~ ^c\ +([0-9.]+)%\ +([0-9.]+)MiB\ /\ 64MiB ]] || fail "stats row: $row"
    assert_ge "${BASH_REMATCH[1]}" 1 "CPU % column"
    assert_ge "${BASH_REMATCH[2]}" 16 "MEM USAGE column"
  else
    assert_contains "$(grep '^c ' "$B_OUTF")" "-- / --" "unknown figures"
  fi
}

test_net_io_on_a_named_network() {
  setup_ctr
  b_ok network create st
  b_ok create -q --no-mount-cwd --network st --name a localhost/busybox
  b_ok create -q --no-mount-cwd --network st --name b localhost/busybox
  b_ok stats --no-stream --json a b
  local tx0 rx0 rxa0 txb0
  tx0=$(stat_of a net_tx)
  rx0=$(stat_of b net_rx)
  rxa0=$(stat_of a net_rx)
  txb0=$(stat_of b net_tx)
  # 200 kB from b's httpd to a's wget
  b_ok exec b sh -c 'dd if=/dev/zero of=/tmp/blob bs=1k count=200 2>/dev/null && exec httpd -p 8080 -h /tmp </dev/null >/dev/null 2>&1'
  b_ok exec a wget -q -O /dev/null http://b:8080/blob
  b_ok stats --no-stream --json a b
  assert_ge "$(stat_of a net_rx)" $((rxa0 + 200000)) "a received the 200 kB"
  assert_ge "$(stat_of b net_tx)" $((txb0 + 200000)) "b sent them"
  assert_ge "$(stat_of a net_tx)" $((tx0 + 50)) "a sent its request"
  assert_ge "$(stat_of b net_rx)" $((rx0 + 50)) "b received it"
  b_ok rm -f a b
}

test_stats_lists_running_ones_and_streams() {
  setup_ctr
  create --name c1
  create --name c2
  b_ok run --no-mount-cwd --network none --name gone localhost/busybox true
  b_ok stats --no-stream --json
  assert_eq "$(jq_ '" ".join(c["name"] for c in d)')" "c1 c2" "running containers, by name"
  b_ok stats --no-stream --json gone
  assert_eq "$(stat_of gone status)" '"exited"' "a NAME that is not running: shown, with no figures"
  assert_eq "$(stat_of gone memory_usage)" null
  # without --no-stream: a frame a second until stopped (not a terminal: no clearing)
  berth_cmd stats c1
  timeout -s INT 2.6 "${B_CMD[@]}" >"$T_DIR/stream.out" 2>&1 || true
  assert_ge "$(grep -c '^NAME' "$T_DIR/stream.out")" 3 "frames in 2.6 s"
  assert_not_contains "$(cat "$T_DIR/stream.out")" $'\033[2J' "no screen clearing into a file"
  berth_cmd stats --json c1
  timeout -s INT 1.6 "${B_CMD[@]}" >"$T_DIR/stream.json" 2>&1 || true
  assert_ge "$(wc -l <"$T_DIR/stream.json")" 2 "JSON lines"
  "$PY" -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$T_DIR/stream.json" || fail "a line is not JSON: $(cat "$T_DIR/stream.json")"
}

test_top_lists_processes() {
  setup_ctr
  create --name c
  b_ok exec c sh -c 'exec >/dev/null 2>&1 </dev/null; sleep 1234 &'
  b_ok exec -u 65534 c sh -c 'exec >/dev/null 2>&1 </dev/null; sleep 1235 &'
  b_ok top --json c
  local row
  row=$(jq_ '[p for p in d["processes"] if p["cmd"]=="sleep 1234"]')
  assert_ne "$row" "[]" "top lists the sleep: $(cat "$B_OUTF")"
  local pid cpid
  pid=$(jq_ '[p for p in d["processes"] if p["cmd"]=="sleep 1234"][0]["pid"]')
  cpid=$(jq_ '[p for p in d["processes"] if p["cmd"]=="sleep 1234"][0]["container_pid"]')
  assert_eq "$(tr '\0' ' ' <"/proc/$pid/cmdline")" "sleep 1234 " "the host pid is that process"
  assert_ge "$cpid" 2 "a pid inside the container's namespace"
  assert_ne "$cpid" "$pid" "the container's pid is not the host's"
  assert_eq "$(jq_ '[p for p in d["processes"] if p["cmd"]=="sleep 1234"][0]["user"]')" root
  assert_eq "$(jq_ '[p for p in d["processes"] if p["cmd"]=="sleep 1235"][0]["user"]')" nobody "a name from the container's /etc/passwd"
  assert_eq "$(jq_ '[p for p in d["processes"] if p["container_pid"]==1][0]["uid"]')" 0 "init is container pid 1"
  # only the container's processes: nothing of the host (this shell is not there)
  assert_eq "$(jq_ '[p for p in d["processes"] if p["pid"]=='$$']')" "[]"
  b_ok top c
  assert_contains "$(head -n 1 "$B_OUTF")" "CMD"
  assert_contains "$B_OUT" "sleep 1234"
  b_ok rm -f c
  b_run top c
  assert_eq "$B_RC" 1 "top of a removed container"
}

test_inspect_container_and_image() {
  setup_ctr
  b_ok create -q --no-mount-cwd --network none -e SECRET_TOKEN=hunter2-sekrit -e PATH=/secret/path --name c localhost/busybox
  b_ok inspect c
  assert_not_contains "$B_OUT" "hunter2-sekrit" "a value given with -e"
  assert_not_contains "$B_OUT" "/secret/path" "a value given with -e for an image variable"
  assert_eq "$(jq_ 'd[0]["name"]')" c
  assert_eq "$(jq_ 'd[0]["status"]')" running
  assert_eq "$(jq_ 'd[0]["running"]')" true
  assert_eq "$(jq_ 'sorted(d[0]["config"]["env_names"])')" '["PATH", "SECRET_TOKEN"]' "the caller's variables by name"
  assert_eq "$(jq_ 'd[0]["config"]["hostname"]')" c
  assert_eq "$(jq_ 'd[0]["network"]["name"]')" none
  assert_eq "$(jq_ 'd[0]["image"]["config"]["Cmd"]')" '["/bin/sh"]' "the image's Cmd"
  assert_eq "$(jq_ 'd[0]["image"]["name"]')" localhost/busybox:latest
  assert_eq "$(jq_ 'd[0]["state"]["name"]')" c "the record itself"
  local pid; pid=$(jq_ 'd[0]["pid"]')
  [ -d "/proc/$pid" ] || fail "inspect's pid $pid is not a process"
  # an image: by name, by digest and by the start of it; --type
  b_ok inspect localhost/busybox
  assert_eq "$(jq_ 'd[0]["type"]')" image
  assert_eq "$(jq_ 'd[0]["config"]["Cmd"]')" '["/bin/sh"]' "the image's Cmd"
  assert_eq "$(jq_ 'd[0]["names"]')" '["localhost/busybox:latest"]'
  local dg; dg=$(jq_ 'd[0]["digest"]')
  b_ok inspect "$dg"
  assert_eq "$(jq_ 'd[0]["digest"]')" "$dg" "by digest"
  b_ok inspect "${dg:7:12}"
  assert_eq "$(jq_ 'd[0]["digest"]')" "$dg" "by 12 hex digits"
  b_ok inspect c localhost/busybox
  assert_eq "$(jq_ '[e["type"] for e in d]')" '["container", "image"]' "two names, two entries"
  b_run inspect --type container localhost/busybox
  assert_eq "$B_RC" 1 "--type container for an image name"
  b_run inspect --type image c
  assert_eq "$B_RC" 1 "--type image for a container name"
  # stopped and removed
  b_ok rm -f c
  b_run inspect c
  assert_eq "$B_RC" 1 "inspect of a removed container"
}

test_unknown_names_exit_1() {
  setup_ctr
  b_run inspect nosuch
  assert_eq "$B_RC" 1 "inspect of an unknown name"
  assert_eq "$B_OUT" "" "nothing on stdout"
  assert_contains "$B_ERR" "No such container or image: nosuch"
  b_run inspect --json nosuch
  assert_eq "$B_RC" 1
  assert_eq "$(jq_ 'd["code"]')" not_found
  create --name c
  b_run inspect c nosuch
  assert_eq "$B_RC" 1 "one unknown name among known ones"
  assert_eq "$B_OUT" "" "all or nothing"
  b_run stats --no-stream nosuch
  assert_eq "$B_RC" 1 "stats of an unknown name"
  b_run top nosuch
  assert_eq "$B_RC" 1 "top of an unknown name"
  b_run inspect --type nonsense c
  assert_eq "$B_RC" 125 "a bad --type is a usage error"
  local c
  for c in inspect stats top; do
    b_ok help $c
    assert_contains "$B_OUT" "Usage: berth $c"
  done
}

t_run "stats and inspect show the memory and pids limits" test_limits_in_stats_and_inspect
t_run "stats: memory and CPU used by exec'd processes" test_usage_from_an_exec
t_run "stats: network bytes between two containers on a named network" test_net_io_on_a_named_network
t_run "stats: running containers by default; streaming frames, JSON lines" test_stats_lists_running_ones_and_streams
t_run "top: a process started with exec, its pids, users from the container" test_top_lists_processes
t_run "inspect: a container (env by name only) and an image (name, digest, prefix)" test_inspect_container_and_image
t_run "unknown names: inspect, stats and top exit 1" test_unknown_names_exit_1
t_summary
