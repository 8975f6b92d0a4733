#!/bin/bash
# Networking: the default bridge network (own namespace, outbound through
# slirp4netns, host.berth.internal), published ports on 127.0.0.1 (TCP and
# UDP), conflicts, none and host, named networks (by name, isolation,
# destroy_network), cleanup. Traffic stays on loopback, apart
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
  if [ "$BERTH_MODE" = root ]; then
    # root: a veth on the host bridge berth0, the host's resolvers
    assert_contains "$B_OUT" "eth0 lo" "own namespace with loopback and a veth"
    assert_contains "$B_OUT" "10.88.0.1	host.berth.internal"
    local ns; ns=$(awk '/^nameserver/{print $2; exit}' /etc/resolv.conf)
    case $ns in 127.*) ns=10.88.0.1 ;; esac
    assert_contains "$B_OUT" "nameserver $ns"
    ip -o link show master berth0 | grep -q "vh$(field '["container_id"]' | cut -c1-12)" \
      || fail "the container's veth is not on berth0: $(ip -o link show master berth0)"
    # a ruleset flush (an nftables or firewalld reload) heals with the next container
    nft delete table ip berth
    tool '{"operation":"create","name":"n2","image":"localhost/busybox","mount_cwd":false}'
    assert_eq "$B_RC" 0 "$(cat "$B_OUTF")"
    nft list table ip berth >/dev/null 2>&1 || fail "berth's table was not written again"
  else
    # rootless: slirp4netns
    assert_contains "$B_OUT" "lo tap0" "own namespace with loopback and the tap device"
    assert_contains "$B_OUT" "nameserver 10.0.2.3"
    assert_contains "$B_OUT" "10.0.2.2	host.berth.internal"
  fi
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
  b_ok ls --json
  assert_contains "$B_OUT" "\"host\": $tp" "ls shows the published ports"
  # and not on the host's other addresses (connecting to one's own address stays on this host)
  local other; other=$(ip -4 -o addr show scope global | awk '{sub("/.*","",$4); print $4; exit}')
  [ -n "$other" ] || fail "precondition: this host has no global IPv4 address to try the port on"
  b_ok exec n sh -c '(echo again | nc -l -p 80 >/dev/null 2>&1 &); sleep 0.3'
  "$PY" -c 'import socket,sys; socket.create_connection((sys.argv[1],int(sys.argv[2])),3)' "$other" "$tp" 2>/dev/null \
    && fail "the port answered on $other"
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
  HOST_UNPRIV_PORT=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)
  b_ok create -q --no-mount-cwd --network none --name a localhost/busybox
  b_ok exec a sh -c 'cat /proc/net/dev | awk -F: "/:/{print \$1}" | tr -d " " | tr "\n" " "'
  assert_eq "$B_OUT" "lo " "none: loopback only"
  # up (root: brought up by the launcher from outside, rootless: by init),
  # with the container's own sysctls set and the host's left alone
  b_ok exec a sh -c 'echo $(( $(cat /sys/class/net/lo/flags) & 1 )) $(cat /proc/sys/net/ipv4/ip_unprivileged_port_start) $(cat /proc/sys/net/ipv4/ping_group_range)'
  # every group the container has may ping: rootless, the mapped ones (ids outside the map are refused)
  local gmax=2147483647
  [ "$BERTH_MODE" = rootless ] && gmax=$(( $(grep "^$TEST_USER:" /etc/subgid | cut -d: -f3 | head -1) ))
  assert_eq "$(echo $B_OUT | tr -s ' \t' '  ')" "1 0 0 $gmax" "none: loopback up, low ports and ping for all"
  assert_eq "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)" "$HOST_UNPRIV_PORT" "the host's sysctl is untouched"
  b_ok create -q --no-mount-cwd --network host --name h localhost/busybox
  b_ok exec h sh -c 'cat /proc/net/dev | awk -F: "/:/{print \$1}" | tr -d " " | sort | tr "\n" " "'
  assert_eq "$B_OUT" "$(awk -F: '/:/{print $1}' /proc/net/dev | tr -d ' ' | sort | tr '\n' ' ')" "host: the host's interfaces"
  b_ok status --json h
  assert_contains "$B_OUT" '"network": "host"'
}

# st_pid CONTAINER FIELD: a pid recorded in the container's state ("" if none)
st_pid() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], {}).get("pid", ""))' "$BERTH_ROOT/containers/$1/state.json" "$2"; }

# root's default network leaves nothing on the host once its last container is gone
assert_no_host_bridge() {
  [ "$BERTH_MODE" = root ] || return 0
  # the teardown runs detached after a 1.5 s linger: give it 5 s
  local i
  for i in $(seq 50); do
    ip link show berth0 >/dev/null 2>&1 || ip -o link | grep -q ': vh' || nft list table ip berth >/dev/null 2>&1 || break
    sleep 0.1
  done
  ip link show berth0 >/dev/null 2>&1 && fail "berth0 left behind: $(ip -br link)"
  assert_eq "$(ip -o link | grep -c ': vh')" 0 "no veth left"
  nft list table ip berth >/dev/null 2>&1 && fail "nft table berth left behind"
  assert_dir_empty /run/berth-net/leases "no lease left"
}

test_cleanup_after_destroy() {
  setup_ctr
  local p; p=$(free_port)
  tool '{"operation":"create","name":"n","image":"localhost/busybox","mount_cwd":false,"ports":[{"host":'"$p"',"container":80}]}'
  assert_eq "$B_RC" 0
  local helper fwd; helper=$(st_pid n network_helper); fwd=$(st_pid n port_forwarder)
  if [ "$BERTH_MODE" = root ]; then
    assert_eq "$helper" "" "root uses berth0, not slirp4netns"
    ip link show berth0 >/dev/null || fail "berth0 is up while a container uses it"
  else
    kill -0 "$helper" || fail "the network helper runs"
  fi
  kill -0 "$fwd" || fail "the port forwarder runs"
  b_ok rm n
  sleep 0.3
  [ -n "$helper" ] && kill -0 "$helper" 2>/dev/null && fail "the network helper $helper survived the container"
  assert_eq "$(live_procs berth-ports | grep -cx "$fwd")" 0 "the port forwarder ended with the container"
  assert_not_contains "$(ss -Hltn | awk '{print $4}')" "127.0.0.1:$p" "the published port is closed"
  assert_no_host_bridge
  # a crash: the monitor killed, then init; the next command cleans up
  local p2; p2=$(free_port)
  tool '{"operation":"create","name":"m","image":"localhost/busybox","mount_cwd":false,"ports":[{"host":'"$p2"',"container":80}]}'
  assert_eq "$B_RC" 0
  helper=$(st_pid m network_helper); fwd=$(st_pid m port_forwarder)
  kill -9 "$(st_pid m monitor)"
  kill -9 "$(st_pid m init)"
  sleep 0.5
  # (its parent, the monitor, is gone: a zombie until PID 1 reaps it does not count)
  [ -n "$helper" ] && assert_eq "$(live_procs slirp4netns | grep -cx "$helper")" 0 "the network helper outlived a killed container"
  assert_eq "$(live_procs berth-ports | grep -cx "$fwd")" 0 "the port forwarder ended with the killed container"
  assert_not_contains "$(ss -Hltn | awk '{print $4}')" "127.0.0.1:$p2" "the killed container's port is closed"
  b_ok ls
  assert_no_host_bridge
  b_ok rm m
}

# ---- named networks
# the pid of a network's holder process (its namespace lives as long as it does)
net_holder() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["holder"]["pid"])' "$BERTH_ROOT/networks/$1/network.json"; }
# running (not zombie) processes of the test's user whose command line matches
live_procs() {
  local u; u=$([ "$BERTH_MODE" = root ] && echo 0 || id -u "$TEST_USER")
  ps -u "$u" -o stat=,pid=,args= | awk -v pat="$1" '$1 !~ /^Z/ && $0 ~ pat {print $2}'
}
# serve WORD once on port 80 of container $1 (busybox nc)
serve() { b_ok exec "$1" sh -c "(echo $2 | nc -l -p 80 >/dev/null 2>&1 &); sleep 0.2"; }

test_named_network_by_name_both_ways() {
  setup_ctr
  local links_before; links_before=$(ip -o link | awk -F': ' '{print $2}' | sort | tr '\n' ' ')
  tool '{"operation":"create_network","name":"stack"}'
  assert_eq "$B_RC" 0 "$(cat "$B_OUTF")"
  has_fields success network detail
  assert_eq "$(field '["network"]')" stack
  tool '{"operation":"create","name":"first","image":"localhost/busybox","mount_cwd":false,"network":"stack"}'
  assert_eq "$B_RC" 0 "$(cat "$B_OUTF")"
  tool '{"operation":"create","name":"second","image":"localhost/busybox","mount_cwd":false,"network":"stack"}'
  assert_eq "$B_RC" 0 "$(cat "$B_OUTF")"
  # the later container reaches the earlier one by name, and the other way round
  serve first from-first
  b_ok exec second sh -c 'nc -w 3 first 80 </dev/null'
  assert_eq "$B_OUT" from-first "second -> first by name"
  serve second from-second
  b_ok exec first sh -c 'nc -w 3 second 80 </dev/null'
  assert_eq "$B_OUT" from-second "first -> second by name (it joined after first was created)"
  b_ok status --json first
  assert_contains "$B_OUT" '"network": "stack"'
  assert_contains "$B_OUT" '"ip": "10.89.'
  # the network's containers are also on the outside: a server on the
  # host's loopback, by host.berth.internal
  local port; port=$(free_port)
  mkdir -p "$T_DIR/www"; echo "hello-named" >"$T_DIR/www/index.html"
  (cd "$T_DIR/www" && exec "$PY" -m http.server --bind 127.0.0.1 "$port") >/dev/null 2>&1 &
  local srv=$!
  sleep 0.5
  b_run exec first sh -c "printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 5 host.berth.internal $port"
  kill $srv 2>/dev/null || true
  assert_contains "$B_OUT" hello-named "outbound from a named network: $B_ERR"
  # a member publishes a port like any container
  local pp; pp=$(free_port)
  tool '{"operation":"create","name":"third","image":"localhost/busybox","mount_cwd":false,"network":"stack","ports":[{"host":'"$pp"',"container":80}]}'
  assert_eq "$B_RC" 0 "$(cat "$B_OUTF")"
  serve third from-third
  local got; got=$("$PY" -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),5); print(s.recv(100).decode().strip())' "$pp")
  assert_eq "$got" from-third "published port of a named network's member"
  # nothing was added to the host's own interfaces
  assert_eq "$(ip -o link | awk -F': ' '{print $2}' | sort | tr '\n' ' ')" "$links_before" "no host interface added"
}

test_named_networks_are_isolated() {
  setup_ctr
  b_ok network create left
  b_ok network create right
  b_ok create -q --no-mount-cwd --network left --name l1 localhost/busybox
  b_ok create -q --no-mount-cwd --network right --name r1 localhost/busybox
  serve l1 secret
  local ip; ip=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["ip"])' "$BERTH_ROOT/containers/l1/state.json")
  b_run exec r1 sh -c 'nc -w 3 l1 80 </dev/null'
  assert_eq "$B_RC" 1 "the name of a container on another network does not resolve"
  assert_contains "$B_ERR" "bad address"
  b_run exec r1 sh -c "nc -w 3 $ip 80 </dev/null"
  assert_ne "$B_OUT" secret "another network's address is not reachable"
  assert_contains "$B_ERR" "No route to host" "refused inside the container, not sent anywhere"
  b_ok network ls --json
  assert_contains "$B_OUT" '"l1"'
  assert_contains "$B_OUT" '"r1"'
}

test_name_removed_after_destroy() {
  setup_ctr
  b_ok network create stack
  b_ok create -q --no-mount-cwd --network stack --name a localhost/busybox
  b_ok create -q --no-mount-cwd --network stack --name b localhost/busybox
  b_ok exec b grep -c "	a$" /etc/hosts
  b_ok rm -f a
  b_run exec b grep -c "	a$" /etc/hosts
  assert_eq "$B_OUT" 0 "a's name left b's /etc/hosts"
  b_run exec b sh -c 'nc -w 2 a 80 </dev/null'
  assert_contains "$B_ERR" "bad address"
  # a container that stops (its init killed) loses its name too
  b_ok create -q --no-mount-cwd --network stack --name c localhost/busybox
  b_ok exec b grep -c "	c$" /etc/hosts
  local init; init=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["init"]["pid"])' "$BERTH_ROOT/containers/c/state.json")
  kill -9 "$init"
  local i; for i in $(seq 50); do grep -q "	c$" "$BERTH_ROOT/containers/b/etc/hosts" || break; sleep 0.1; done
  b_run exec b grep -c "	c$" /etc/hosts
  assert_eq "$B_OUT" 0 "a stopped container's name is gone"
  # its address is free for the next one
  b_ok create -q --no-mount-cwd --network stack --name d localhost/busybox
  b_ok exec d sh -c 'grep "	d$" /etc/hosts'
  # a crash (monitor, then init, killed): the next command takes the name out
  b_ok exec b grep -c "	d$" /etc/hosts
  kill -9 "$(st_pid d monitor)"
  kill -9 "$(st_pid d init)"
  sleep 0.3
  b_ok ls
  b_run exec b grep -c "	d$" /etc/hosts
  assert_eq "$B_OUT" 0 "a crashed container's name is gone after the next command"
}

test_destroy_network_refuses_while_attached_then_cleans_up() {
  setup_ctr
  tool '{"operation":"create_network","name":"stack"}'
  assert_eq "$B_RC" 0
  tool '{"operation":"create_network","name":"stack"}'
  assert_eq "$B_RC" 1 "a second network of the same name"
  assert_eq "$(field '["code"]')" conflict
  tool '{"operation":"create_network","name":"../x"}'
  assert_eq "$B_RC" 1
  assert_eq "$(field '["code"]')" invalid_value
  tool '{"operation":"create","name":"web","image":"localhost/busybox","mount_cwd":false,"network":"stack"}'
  assert_eq "$B_RC" 0 "$(cat "$B_OUTF")"
  local holder; holder=$(net_holder stack)
  local helper; helper=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["network_helper"]["pid"])' "$BERTH_ROOT/containers/web/state.json")
  tool '{"operation":"destroy_network","name":"stack"}'
  assert_eq "$B_RC" 1 "refused while web is attached"
  assert_eq "$(field '["code"]')" conflict
  assert_contains "$(field '["error"]')" web "the error names the attached container"
  kill -0 "$holder" || fail "the network still works after the refusal"
  tool '{"operation":"destroy","container":"web"}'
  assert_eq "$B_RC" 0
  tool '{"operation":"destroy_network","name":"stack"}'
  assert_eq "$B_RC" 0 "$(cat "$B_OUTF")"
  has_fields success network detail
  sleep 0.3
  assert_eq "$(live_procs "^berth-net stack" | grep -cx "$holder")" 0 "the holder (and with it the namespace, bridge and veths) is gone"
  assert_eq "$(live_procs "slirp4netns" | grep -cx "$helper")" 0 "the container's slirp4netns is gone"
  [ ! -e "$BERTH_ROOT/networks/stack" ] || fail "network state left behind"
  tool '{"operation":"destroy_network","name":"stack"}'
  assert_eq "$(field '["code"]')" not_found
  tool '{"operation":"create","name":"x","image":"localhost/busybox","mount_cwd":false,"network":"stack"}'
  assert_eq "$B_RC" 1 "create on a network that does not exist"
  assert_contains "$(field '["error"]')" "berth network create stack"
  assert_dir_empty "$BERTH_ROOT/containers"
}

t_run "bridge is the default: own namespace, DNS, host name" test_bridge_default_outbound_and_hosts
t_run "a container reaches the host's loopback as host.berth.internal" test_reach_host_loopback_by_name
t_run "outbound: apt-get update in a Debian container" test_apt_update_on_default_network
t_run "published ports: TCP and UDP, on 127.0.0.1 only" test_published_ports_tcp_udp_loopback_only
t_run "port conflict fails clearly and leaves nothing" test_port_conflict_leaves_nothing
t_run "network none and host" test_none_and_host
t_run "everything is cleaned up after destroy and after a crash" test_cleanup_after_destroy
t_run "named network: containers reach each other by name, both ways, and the outside" test_named_network_by_name_both_ways
t_run "named networks are isolated from each other" test_named_networks_are_isolated
t_run "a destroyed or stopped container loses its name" test_name_removed_after_destroy
t_run "destroy_network refuses while attached, then leaves nothing" test_destroy_network_refuses_while_attached_then_cleans_up
t_summary
