#!/bin/bash
# Networking: the default bridge network (own namespace, outbound through
# slirp4netns, host.berth.internal), published ports on 127.0.0.1 (TCP and
# UDP), conflicts, none and host, cleanup. Traffic stays on loopback, apart
# from apt reaching the Debian mirror.
. "$(dirname "$0")/lib.sh"

PROBE=$SUITE_TMP/probe
gcc -static -O2 -o "$PROBE" "$IT_DIR/probe.c" 2>"$SUITE_TMP/probe.log" && chmod 755 "$PROBE"

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

test_bridge_default_outbound_and_hosts() {
  setup_ctr
  tool '{"operation":"create","name":"n","image":"localhost/busybox","mount_cwd":false}'
  assert_eq "$B_RC" 0 "$(cat "$B_OUTF")"
  b_ok status --json n
  assert_contains "$B_OUT" '"network": "bridge"' "bridge is the default network"
  b_ok exec n sh -c 'cat /proc/net/dev | awk -F: "/:/{print \$1}" | tr -d " " | sort | tr "\n" " "; echo; cat /etc/resolv.conf; grep host.berth.internal /etc/hosts'
  assert_contains "$B_OUT" "lo tap0" "own namespace with loopback and the tap device"
  assert_contains "$B_OUT" "nameserver 10.0.2.3"
  assert_contains "$B_OUT" "10.0.2.2	host.berth.internal"
}

test_reach_host_loopback_by_name() {
  setup_ctr
  b_ok load -q --name local/debian:12 "$IMAGES/debian"
  local port; port=$(free_port)
  mkdir -p "$T_DIR/www"; echo "hello from the host" >"$T_DIR/www/index.html"
  (cd "$T_DIR/www" && exec "$PY" -m http.server --bind 127.0.0.1 "$port") >/dev/null 2>&1 &
  local srv=$!
  sleep 0.5
  tool '{"operation":"create","name":"n","image":"local/debian:12","mount_cwd":false,"network":"bridge"}'
  b_run exec n bash -c "exec 3<>/dev/tcp/host.berth.internal/$port && printf 'GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n' >&3 && cat <&3"
  kill $srv 2>/dev/null || true
  assert_contains "$B_OUT" "hello from the host" "a server on the host's 127.0.0.1 answers at host.berth.internal"
}

test_apt_update_on_default_network() {
  setup_ctr
  b_ok load -q --name local/debian:12 "$IMAGES/debian"
  tool '{"operation":"create","name":"n","image":"local/debian:12","mount_cwd":false}'
  # apt drops to its _apt user, which needs capabilities a workload does not
  # hold; as a workload, run it without that sandbox
  BERTH_TEST_TIMEOUT=300 b_run exec --timeout 240 n apt-get -o APT::Sandbox::User=root update
  assert_eq "$B_RC" 0 "apt-get update through the bridge network: $B_ERR"
  assert_contains "$B_OUT" "Reading package lists"
}

test_published_ports_tcp_udp_loopback_only() {
  setup_ctr
  local tp up; tp=$(free_port); up=$(free_port)
  tool '{"operation":"create","name":"n","image":"localhost/busybox","mount_cwd":false,"ports":[{"host":'"$tp"',"container":80},{"host":'"$up"',"container":81,"protocol":"udp"}]}'
  assert_eq "$B_RC" 0 "$(cat "$B_OUTF")"
  b_ok exec n sh -c '(echo hello-over-tcp | nc -l -p 80 >/dev/null 2>&1 &); sleep 0.3'
  local got; got=$("$PY" -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),5); s.sendall(b"x\n"); print(s.recv(100).decode().strip())' "$tp")
  assert_eq "$got" hello-over-tcp "TCP port published on 127.0.0.1"
  # bound to loopback only, never 0.0.0.0
  local binds; binds=$(ss -Hltnu 2>/dev/null | awk '{print $5}' | grep -E ":($tp|$up)\$" | sort -u | tr '\n' ' ')
  assert_eq "$binds" "$(printf '127.0.0.1:%s\n' "$tp" "$up" | sort -u | tr '\n' ' ')" "listening addresses"
  # UDP: a datagram sent to the host port arrives in the container (the
  # static probe listens there: this busybox's nc has no UDP mode)
  [ -x "$PROBE" ] || fail "probe not built: $(cat "$SUITE_TMP/probe.log")"
  cp "$PROBE" "$T_DIR/probe"; chmod 755 "$T_DIR/probe"
  b_ok cp "$T_DIR/probe" n:/probe
  "$PY" - "$up" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(40):
    s.sendto(b"udp-hello\n", ("127.0.0.1", int(sys.argv[1])))
    time.sleep(0.1)
PY
  local sender=$!
  b_run exec --timeout 10 n /probe udprecv 81
  wait $sender 2>/dev/null || true
  assert_eq "$B_OUT" "udprecv udp-hello" "a UDP datagram sent to 127.0.0.1:$up arrives on port 81 inside"
}

test_port_conflict_leaves_nothing() {
  setup_ctr
  local p; p=$(free_port)
  "$PY" -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(30)' "$p" &
  local holder=$!
  sleep 0.3
  tool '{"operation":"create","name":"clash","image":"localhost/busybox","mount_cwd":false,"ports":[{"host":'"$p"',"container":80}]}'
  kill $holder 2>/dev/null || true
  assert_eq "$B_RC" 1
  assert_contains "$(field '["error"]')" "$p" "the error names the port"
  b_ok ls --json
  assert_contains "$B_OUT" '"count": 0' "the failed create left no container"
  assert_dir_empty "$BERTH_ROOT/containers"
  sleep 0.3
  assert_eq "$(pgrep -u "$([ "$BERTH_MODE" = root ] && echo 0 || id -u "$TEST_USER")" -f "slirp4netns.*$BERTH_ROOT" | wc -l)" 0 "no helper left"
}

test_none_and_host() {
  setup_ctr
  b_ok create -q --no-mount-cwd --network none --name a localhost/busybox
  b_ok exec a sh -c 'cat /proc/net/dev | awk -F: "/:/{print \$1}" | tr -d " " | tr "\n" " "'
  assert_eq "$B_OUT" "lo " "none: loopback only"
  b_ok create -q --no-mount-cwd --network host --name h localhost/busybox
  b_ok exec h sh -c 'cat /proc/net/dev | awk -F: "/:/{print \$1}" | tr -d " " | sort | tr "\n" " "'
  assert_eq "$B_OUT" "$(awk -F: '/:/{print $1}' /proc/net/dev | tr -d ' ' | sort | tr '\n' ' ')" "host: the host's interfaces"
  b_ok status --json h
  assert_contains "$B_OUT" '"network": "host"'
}

test_cleanup_after_destroy() {
  setup_ctr
  local p; p=$(free_port)
  tool '{"operation":"create","name":"n","image":"localhost/busybox","mount_cwd":false,"ports":[{"host":'"$p"',"container":80}]}'
  assert_eq "$B_RC" 0
  local helper; helper=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["network_helper"]["pid"])' "$BERTH_ROOT/containers/n/state.json")
  kill -0 "$helper" || fail "the network helper runs"
  b_ok rm n
  sleep 0.3
  kill -0 "$helper" 2>/dev/null && fail "the network helper $helper survived the container"
  assert_not_contains "$(ss -Hltn | awk '{print $4}')" "127.0.0.1:$p" "the published port is closed"
  # a crashed container: init killed from outside takes the helper with it
  tool '{"operation":"create","name":"m","image":"localhost/busybox","mount_cwd":false}'
  helper=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["network_helper"]["pid"])' "$BERTH_ROOT/containers/m/state.json")
  local init; init=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["init"]["pid"])' "$BERTH_ROOT/containers/m/state.json")
  kill -9 "$init"
  sleep 0.5
  kill -0 "$helper" 2>/dev/null && fail "the network helper outlived a killed container"
  b_ok rm m
  true
}

t_run "bridge is the default: own namespace, DNS, host name" test_bridge_default_outbound_and_hosts
t_run "a container reaches the host's loopback as host.berth.internal" test_reach_host_loopback_by_name
t_run "outbound: apt-get update in a Debian container" test_apt_update_on_default_network
t_run "published ports: TCP and UDP, on 127.0.0.1 only" test_published_ports_tcp_udp_loopback_only
t_run "port conflict fails clearly and leaves nothing" test_port_conflict_leaves_nothing
t_run "network none and host" test_none_and_host
t_run "everything is cleaned up after destroy and after a crash" test_cleanup_after_destroy
t_summary
