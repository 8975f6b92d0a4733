#!/bin/bash
# Egress policies (create --egress): a container reaches only the names,
# addresses and ports its policy allows. The servers are this suite's own:
# a network namespace it makes (a veth pair from the host, 10.123.K.0/24)
# holds a DNS server for the names *.test (berth's config `egress_dns`
# makes it the upstream of berth's resolver) and TCP servers that greet;
# the host's loopback holds one more. Only the apt test reaches outside:
# the Debian mirror, through the host's own resolvers.
. "$(dirname "$0")/lib.sh"

PROBE=$SUITE_TMP/probe
gcc -static -O2 -o "$PROBE" "$IT_DIR/probe.c" 2>"$SUITE_TMP/probe.log" && chmod 755 "$PROBE"

# ---------------------------------------------------------------- the servers' namespace
NS=berth-egt$$
HV=egh$$ # host end of the pair (the other end is egn$$ inside)
K=
for k in $(seq $((20 + $$ % 180)) 219) $(seq 20 219); do
  [ -z "$(ip -4 route show "10.123.$k.0/24" 2>/dev/null)" ] && { K=$k; break; }
done
NET=10.123.$K
SRV_PID=
egress_fixture_down() {
  [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  ip link del "$HV" 2>/dev/null
  return 0
}
trap 'egress_fixture_down; t_cleanup_suite' EXIT
egress_fixture_up() {
  [ -n "$K" ] || { echo "no free 10.123.K.0/24 for the servers" >&2; return 1; }
  ip netns add "$NS" || return 1
  ip link add "$HV" type veth peer name "egn$$" || return 1
  ip link set "egn$$" netns "$NS"
  ip addr add "$NET.1/24" dev "$HV"
  ip link set "$HV" up
  ip netns exec "$NS" sh -c "ip link set lo up; ip link set egn$$ name eth0; ip link set eth0 up;
    ip addr add $NET.2/24 dev eth0; ip addr add $NET.3/24 dev eth0; ip addr add $NET.4/24 dev eth0;
    ip route add default via $NET.1" || return 1
  cat >"$SUITE_TMP/zone.json" <<EOF
{"allowed.test": {"a": ["$NET.2"], "ttl": 300},
 "other.test": {"a": ["$NET.3"], "ttl": 300},
 "db.test": {"a": ["$NET.4"], "ttl": 120},
 "a.wild.test": {"a": ["$NET.2"], "ttl": 300},
 "big.test": {"a": [$(seq -s, -f "\"$NET.%g\"" 100 139)], "ttl": 300}}
EOF
  : >"$SUITE_TMP/queries.log"
  chmod 644 "$SUITE_TMP/queries.log" "$SUITE_TMP/zone.json"
  ip netns exec "$NS" "$PY" "$REPO/tests/fixtures/netns_servers.py" --dns "$NET.2:53" --zone "$SUITE_TMP/zone.json" \
    --log "$SUITE_TMP/queries.log" --banner "$NET.2:80" --banner "$NET.3:80" --banner "$NET.4:5432" --banner "$NET.4:5433" \
    >"$SUITE_TMP/servers.out" 2>&1 &
  SRV_PID=$!
  local i
  for i in $(seq 50); do grep -q ready "$SUITE_TMP/servers.out" 2>/dev/null && return 0; sleep 0.1; done
  echo "the servers did not start: $(cat "$SUITE_TMP/servers.out")" >&2
  return 1
}
FIXTURE_ERR=
egress_fixture_up 2>"$SUITE_TMP/fixture.err" || FIXTURE_ERR=$(cat "$SUITE_TMP/fixture.err")

# ---------------------------------------------------------------- helpers
need_fixture() { [ -z "$FIXTURE_ERR" ] || fail "precondition: the servers' namespace: $FIXTURE_ERR"; }
need_probe() { [ -x "$PROBE" ] || fail "probe not built: $(cat "$SUITE_TMP/probe.log")"; }
# berth's config: the suite's DNS server is the upstream of berth's resolver
egress_config() { write_config "{\"egress_dns\": [\"$NET.2\"]}"; }
# ctr NAME ARGS...: a busybox container with the probe in it
ctr() {
  local n=$1
  shift
  b_ok create -q --no-mount-cwd --name "$n" "$@" localhost/busybox
  need_probe
  cp "$PROBE" "$T_DIR/probe" && chmod 755 "$T_DIR/probe"
  b_ok cp "$T_DIR/probe" "$n:/probe"
}
st_field() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d.get(sys.argv[2], {}); print(v.get("pid","") if isinstance(v, dict) else v)' "$BERTH_ROOT/containers/$1/state.json" "$2"; }
init_pid() { st_field "$1" init; }
# the container's table, read from the host (root enters any namespace)
ctr_table() { nsenter -t "$(init_pid "$1")" -n nft list table inet berth_egress 2>&1; }
live() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
queries() { cat "$SUITE_TMP/queries.log"; }

# ---------------------------------------------------------------- tests
test_allowed_name_resolves_and_connects_denied_gets_nxdomain() {
  need_fixture
  setup_ctr
  egress_config
  ctr e --egress allow:allowed.test:80,*.wild.test:80
  b_ok exec e cat /etc/resolv.conf
  assert_contains "$B_OUT" "nameserver 127.0.0.11" "resolv.conf points at berth's resolver"
  b_ok exec e nslookup allowed.test
  assert_contains "$B_OUT" "$NET.2" "the allowed name resolves"
  # the first connect after the answer works: the address went into the set before the reply
  b_ok exec e sh -c 'nc -w 3 allowed.test 80 </dev/null'
  assert_eq "$B_OUT" "hello from $NET.2:80" "connect to the allowed name"
  b_ok exec e sh -c 'nc -w 3 a.wild.test 80 </dev/null'
  assert_eq "$B_OUT" "hello from $NET.2:80" "a name below a wildcard"
  b_run exec e nslookup other.test
  assert_ne "$B_RC" 0 "other.test must not resolve"
  assert_contains "$B_OUT$B_ERR" "NXDOMAIN" "a denied name gets NXDOMAIN"
  b_run exec e nslookup wild.test
  assert_contains "$B_OUT$B_ERR" "NXDOMAIN" "a wildcard does not cover the name itself"
  # the denied name never left the container; the allowed one went upstream
  assert_contains "$(queries)" "allowed.test 1"
  assert_not_contains "$(queries)" "other.test" "a refused name reached the upstream"
  # an allowed name on another port: resolved, the connection refused
  b_run exec e /probe connect "$NET.2" 22
  assert_contains "$B_OUT" "errno=ECONNREFUSED" "another port of an allowed name"
  # the set holds the answer with its TTL (300 s)
  local t; t=$(ctr_table e)
  assert_contains "$t" "$NET.2 timeout 5m" "the answer's address in the name's set, with the record's TTL: $t"
}

test_direct_ip_refused_fast() {
  need_fixture
  setup_ctr
  egress_config
  ctr e --egress allow:allowed.test:80
  # an address of an allowed name, not resolved through berth's resolver yet: not in its set
  b_run exec e /probe connect "$NET.2" 80
  assert_contains "$B_OUT" "connect errno=ECONNREFUSED" "an allowed name's address before any answer"
  b_run exec e /probe connect "$NET.3" 80
  assert_contains "$B_OUT" "connect errno=ECONNREFUSED" "a direct address not allowed is refused (TCP reset)"
  local ms; ms=$(sed -n 's/.*ms=//p' <<<"$B_OUT")
  assert_le "$ms" 100 "milliseconds until the refusal"
  log "refused in $ms ms"
  # UDP too, at once (ICMP admin-prohibited: the send fails)
  b_run exec e /probe udpsend "$NET.3" 9999
  assert_contains "$B_OUT" "errno=EPERM" "a UDP datagram to an address not allowed"
  # the same server without a policy answers: it is the policy that refuses
  ctr free
  b_ok exec free /probe connect "$NET.3" 80
  assert_contains "$B_OUT" "connect ok" "without a policy the server is reachable"
}

test_cidr_port() {
  need_fixture
  setup_ctr
  egress_config
  ctr e --egress "allow:$NET.0/28:5432/tcp"
  b_ok exec e /probe connect "$NET.4" 5432
  assert_contains "$B_OUT" "connect ok" "the allowed CIDR:port"
  b_run exec e /probe connect "$NET.4" 5433
  assert_contains "$B_OUT" "errno=ECONNREFUSED" "another port of the allowed CIDR"
  b_run exec e /probe udpsend "$NET.4" 5432
  assert_contains "$B_OUT" "errno=EPERM" "the rule is TCP's only"
  b_run exec e nslookup db.test
  assert_contains "$B_OUT$B_ERR" "NXDOMAIN" "no name is allowed"
}

test_rules_out_of_reach() {
  need_fixture
  setup_ctr
  egress_config
  ctr e --egress allow:allowed.test:80
  # no capability that could change them, not even for setup steps
  b_ok exec e sh -c 'grep -E "^Cap(Eff|Prm|Bnd)" /proc/self/status'
  assert_contains "$B_OUT" "CapEff:	0000000000000000"
  assert_contains "$B_OUT" "CapBnd:	0000000000000000"
  b_ok exec --setup-caps e sh -c 'grep ^CapEff /proc/self/status'
  local eff; eff=$(awk '{print $2}' <<<"$B_OUT")
  (( (16#$eff >> 12) & 1 )) && fail "setup steps hold CAP_NET_ADMIN ($eff)"
  (( (16#$eff >> 13) & 1 )) && fail "setup steps hold CAP_NET_RAW under a policy ($eff): it can set SO_MARK"
  # and tried: what `nft delete table` and `nft flush ruleset` send, and the resolver's mark
  local who
  for who in "" --setup-caps; do
    b_run exec $who e /probe nft
    assert_contains "$B_OUT" "nft_delete_table errno=EPERM" "delete the table ($who)"
    assert_contains "$B_OUT" "nft_flush_ruleset errno=EPERM" "flush the ruleset ($who)"
    assert_contains "$B_OUT" "so_mark errno=EPERM" "pass for berth's resolver ($who)"
  done
  # DNS goes through berth's resolver only: the upstream itself is refused
  b_run exec e /probe udpsend "$NET.2" 53
  assert_contains "$B_OUT" "errno=EPERM" "the upstream resolver, directly"
  b_run exec e /probe udpsend 8.8.8.8 53
  assert_contains "$B_OUT" "errno=EPERM" "another resolver"
  # still in force
  b_run exec e /probe connect "$NET.3" 80
  assert_contains "$B_OUT" "errno=ECONNREFUSED" "the rules still hold"
  assert_contains "$(ctr_table e)" "jump deny" "the table is still there"
  # the helper, seen from the host: not in the container's pid namespace, no privileges but CAP_NET_ADMIN
  local h; h=$(st_field e egress_helper)
  live "$h" || fail "the egress helper $h runs"
  assert_contains "$(grep ^CapEff "/proc/$h/status")" "0000000000001000" "the helper keeps CAP_NET_ADMIN alone"
  assert_eq "$(awk '/^Seccomp:/{print $2}' "/proc/$h/status")" 2 "the helper is under seccomp"
  # and holds nothing of the monitor's: not the environment memfd (secrets), not the container's lock
  local fds; fds=$(ls -l "/proc/$h/fd" | awk 'NR>1 {print $NF}' | tr '\n' ' ')
  assert_not_contains "$fds" "memfd" "the helper's descriptors"
  assert_not_contains "$fds" "/lock" "the helper's descriptors"
  assert_not_contains "$fds" "pipe:" "the helper's descriptors"
  b_ok exec e sh -c 'ls /proc | grep -c "^[0-9]"'
  b_ok exec e sh -c "ps -o comm 2>/dev/null | grep -c berth-egress || true"
  assert_eq "$B_OUT" 0 "the helper is not among the container's processes"
}

test_records_of_refusals() {
  need_fixture
  setup_ctr
  egress_config
  ctr e --egress allow:allowed.test:80
  b_ok exec e nslookup allowed.test
  b_run exec e nslookup other.test
  b_run exec e /probe connect "$NET.3" 80
  b_run exec e /probe connect "$NET.2" 443 # an allowed name's address: the record names it
  sleep 0.3
  b_ok logs --network e
  assert_contains "$B_OUT" "refused name other.test (A): NXDOMAIN"
  assert_contains "$B_OUT" "refused tcp to $NET.3:80"
  assert_contains "$B_OUT" "refused tcp to $NET.2:443 (allowed.test)"
  assert_not_contains "$B_OUT" "allowed.test (A)" "an allowed name is not a refusal"
  b_ok logs --network -n 1 --json e
  assert_contains "$B_OUT" '"destination": "'"$NET.2"'"'
  assert_eq "$(grep -c '"time"' "$B_OUTF")" 1 "-n 1: one record"
  tool '{"operation":"status","container":"e"}'
  assert_eq "$B_RC" 0 "$(cat "$B_OUTF")"
  local count; count=$(field '["egress_denied"]["count"]')
  assert_ge "$count" 3 "egress_denied.count"
  assert_contains "$(field '["egress_denied"]["recent"]')" "$NET.3"
  assert_contains "$(field '["metadata"]["egress"]["allow"]')" "allowed.test:80"
  b_ok status e
  assert_contains "$B_OUT" "Egress:"
  assert_contains "$B_OUT" "refused tcp to $NET.3:80"
  # a flood is recorded at a bounded rate: 500 attempts, at most 40 (the burst) + 20 a second
  tool '{"operation":"status","container":"e"}'
  local before; before=$(field '["egress_denied"]["count"]')
  b_run exec e sh -c "i=0; while [ \$i -lt 500 ]; do /probe connect $NET.3 81 >/dev/null; i=\$((i+1)); done"
  tool '{"operation":"status","container":"e"}'
  local after; after=$(field '["egress_denied"]["count"]')
  log "recorded $((after - before)) of 500 refusals (took ${B_SECS}s)"
  assert_le "$((after - before))" "$(awk -v s="$B_SECS" 'BEGIN{printf "%d", 40 + 20 * (s + 1)}')" "records of a flood"
  assert_ge "$((after - before))" 20 "records of a flood"
  assert_le "$(stat -c %s "$BERTH_ROOT/containers/e/egress.log")" $((256 * 1024)) "the record file's cap"
  # the dry run
  b_ok egress test e allowed.test:80
  assert_contains "$B_OUT" "allowed by \`allowed.test:80\`"
  b_run egress test e other.test
  assert_eq "$B_RC" 1 "a refused destination exits 1"
  assert_contains "$B_OUT" "NXDOMAIN"
  b_run egress test e "$NET.2:443"
  assert_eq "$B_RC" 1
  tool '{"operation":"egress_test","container":"e","destination":"allowed.test:80/tcp"}'
  assert_eq "$(field '["allowed"]')" true
}

test_default_unchanged() {
  need_fixture
  setup_ctr
  egress_config
  ctr plain
  b_ok exec plain cat /etc/resolv.conf
  assert_not_contains "$B_OUT" "127.0.0.11" "no policy: the usual resolvers"
  assert_eq "$(st_field plain egress_helper)" "" "no policy: no helper"
  b_run status --json plain
  assert_not_contains "$B_OUT" "egress"
  b_ok exec plain /probe connect "$NET.3" 80
  assert_contains "$B_OUT" "connect ok" "no policy: everything is reachable, as before"
  b_run egress test plain x.org
  assert_contains "$B_ERR" "no egress policy"
  [ "$BERTH_MODE" = root ] && { nsenter -t "$(init_pid plain)" -n nft list tables | grep -q berth_egress && fail "a table without a policy"; }
  return 0
}

test_host_loopback() {
  need_fixture
  setup_ctr
  egress_config
  local port; port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$PY" -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
while True:
    c, _ = s.accept(); c.sendall(b"hello from the host\n"); c.close()' "$port" &
  local srv=$!
  sleep 0.3
  ctr closed --egress allow:allowed.test:80
  ctr open --egress "allow:host.berth.internal:$port"
  b_run exec closed sh -c "nc -w 3 host.berth.internal $port </dev/null"
  assert_not_contains "$B_OUT" "hello" "deny_host: the host's loopback is out of reach"
  assert_contains "$B_ERR" "refused"
  b_run exec open sh -c "nc -w 3 host.berth.internal $port </dev/null"
  assert_eq "$B_OUT" "hello from the host" "host.berth.internal:$port allowed"
  b_run exec open sh -c "nc -w 3 host.berth.internal 22 </dev/null"
  assert_contains "$B_ERR" "refused" "another port of the host"
  # the host's own addresses are the host too
  local other; other=$(ip -4 -o addr show scope global | awk '{sub("/.*","",$4); print $4; exit}')
  b_run exec closed /probe connect "$other" 22
  assert_contains "$B_OUT" "errno=ECONNREFUSED" "the host's address $other"
  kill $srv 2>/dev/null
  b_run egress test closed "host.berth.internal:$port"
  assert_contains "$B_OUT" "deny_host"
}

test_helper_lifetime_stop_start() {
  need_fixture
  setup_ctr
  egress_config
  ctr e --egress allow:allowed.test:80
  local h1; h1=$(st_field e egress_helper)
  live "$h1" || fail "the helper runs"
  b_ok stop -t 1 e
  sleep 0.3
  live "$h1" && fail "the helper $h1 outlived the stopped container"
  b_ok start e
  local h2; h2=$(st_field e egress_helper)
  live "$h2" || fail "a new helper runs after start"
  b_run exec e /probe connect "$NET.3" 80
  assert_contains "$B_OUT" "errno=ECONNREFUSED" "the policy holds after a start"
  b_ok exec e sh -c 'nc -w 3 allowed.test 80 </dev/null'
  assert_eq "$B_OUT" "hello from $NET.2:80"
  b_ok rm -f e
  sleep 0.3
  live "$h2" && fail "the helper $h2 outlived the removed container"
  # a failed create leaves no helper: a policy on network none is refused before anything starts
  b_run create -q --no-mount-cwd --network none --egress allow:x.org --name bad localhost/busybox
  assert_eq "$B_RC" 125
  assert_contains "$B_ERR" "bridge network or a named network"
  b_run create -q --no-mount-cwd --egress allow:x.org:0 --name bad localhost/busybox
  assert_contains "$B_ERR" "egress entry \`x.org:0\`"
  assert_dir_empty "$BERTH_ROOT/containers"
}

test_named_network_members() {
  need_fixture
  setup_ctr
  egress_config
  b_ok network create stack
  b_ok create -q --no-mount-cwd --network stack --name db localhost/busybox
  ctr app --network stack --egress allow:allowed.test:80
  b_ok exec db sh -c '(echo from-db | nc -l -p 5432 >/dev/null 2>&1 &); sleep 0.2'
  b_ok exec app sh -c 'nc -w 3 db 5432 </dev/null'
  assert_eq "$B_OUT" from-db "a member of the same network by name"
  b_ok exec app sh -c 'nc -w 3 allowed.test 80 </dev/null'
  assert_eq "$B_OUT" "hello from $NET.2:80" "an allowed name, through slirp4netns"
  b_run exec app /probe connect "$NET.3" 80
  assert_contains "$B_OUT" "errno=ECONNREFUSED" "another address"
  b_run exec app nslookup other.test
  assert_contains "$B_OUT$B_ERR" "NXDOMAIN"
}

test_apt_with_the_mirror_allowed() {
  need_fixture
  setup_ctr
  b_ok load -q --name local/debian:12 "$IMAGES/debian"
  # the host's own resolvers: deb.debian.org is the real one
  b_ok create -q --no-mount-cwd --name deb --egress allow:deb.debian.org local/debian:12
  BERTH_TEST_TIMEOUT=400 b_run exec --setup-caps --timeout 360 deb sh -c \
    'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends hello && hello'
  assert_eq "$B_RC" 0 "apt-get update and install through the policy: $B_ERR"
  assert_contains "$B_OUT" "Hello, world!"
  # any other host fails: a server that exists, names that exist
  need_probe
  cp "$PROBE" "$T_DIR/probe" && chmod 755 "$T_DIR/probe"
  b_ok cp "$T_DIR/probe" deb:/probe
  b_run exec deb /probe connect "$NET.3" 80
  assert_contains "$B_OUT" "errno=ECONNREFUSED" "another host"
  b_run exec deb getent hosts security.debian.org
  assert_ne "$B_RC" 0 "another name of the mirror's own domain"
  b_run exec deb getent hosts "$(hostname -f 2>/dev/null || hostname)"
  assert_ne "$B_RC" 0 "the host's name"
  b_ok logs --network deb
  assert_contains "$B_OUT" "refused tcp to $NET.3:80"
}

test_truncated_answer_over_tcp() {
  need_fixture
  setup_ctr
  egress_config
  b_ok load -q --name local/debian:12 "$IMAGES/debian"
  b_ok create -q --no-mount-cwd --name deb --egress allow:big.test:80 local/debian:12
  # 40 addresses: over 512 bytes, so the upstream truncates its UDP answer;
  # glibc asks berth's resolver again over TCP, which asks the upstream over TCP
  b_ok exec deb getent ahostsv4 big.test
  assert_eq "$(awk '/STREAM/{print $1}' <<<"$B_OUT" | sort -u | wc -l)" 40 "every address of the whole answer"
  local t; t=$(ctr_table deb)
  assert_contains "$t" "$NET.100 timeout" "the first address in the set"
  assert_contains "$t" "$NET.139 timeout" "the last address in the set (from the answer over TCP)"
}

t_run "an allowed name resolves and connects; a denied one gets NXDOMAIN" test_allowed_name_resolves_and_connects_denied_gets_nxdomain
t_run "a truncated answer comes whole over TCP, all its addresses allowed" test_truncated_answer_over_tcp
t_run "a direct address not allowed is refused at once" test_direct_ip_refused_fast
t_run "an allowed CIDR:port works, another port does not" test_cidr_port
t_run "the workload cannot change the rules (no capability, and tried)" test_rules_out_of_reach
t_run "refusals are recorded, rate-limited, shown; the dry run" test_records_of_refusals
t_run "without a policy nothing changes" test_default_unchanged
t_run "the host's loopback: denied, or one port allowed" test_host_loopback
t_run "the helper lives and dies with the container, across stop and start" test_helper_lifetime_stop_start
t_run "named network: members reach each other, the rest is filtered" test_named_network_members
t_run "apt-get install with the Debian mirror allowed, nothing else" test_apt_with_the_mirror_allowed
t_summary
