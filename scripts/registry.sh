#!/usr/bin/env bash
# Registry fixtures for berth's tests.  Usage: scripts/registry.sh start|stop|status|env|restart
# (`stop NAME...` stops only those; `running` prints the names of those that run)
#
# Everything listens on 127.0.0.1 only; all state (storage, certs, configs,
# pidfiles, logs) lives under <repo>/rootfs-cache/registry/.  See
# docs/fixtures-registries.md for what each port is for.
#
#   PORT_BASE+0  5000  plain HTTP docker-registry (delete enabled)
#   PORT_BASE+1  5001  HTTPS docker-registry (test CA)
#   PORT_BASE+2  5002  HTTPS docker-registry + htpasswd basic auth (berth/berthpass)
#   PORT_BASE+3  5003  authproxy.py hub: Bearer-token front of 5000
#   PORT_BASE+4  5004  authproxy.py token server
#   PORT_BASE+5  5005  authproxy.py "CDN" (blob redirects land here)
#   PORT_BASE+6  5006  faultreg.py fault-injection registry
#
# Environment knobs:
#   BERTH_REGISTRY_PORT_BASE   first port (default 5000)
#   BERTH_REGISTRY_STATE       state dir (default <repo>/rootfs-cache/registry)
#   BERTH_FAULTREG_IMAGES      extra "NAME=LAYOUT_DIR ..." for faultreg
#   BERTH_REGISTRY_WAIT        seconds to wait for each endpoint (default 20)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${BERTH_REGISTRY_STATE:-$ROOT/rootfs-cache/registry}
BASE=${BERTH_REGISTRY_PORT_BASE:-5000}
WAIT=${BERTH_REGISTRY_WAIT:-20}
HOST=127.0.0.1
USER_NAME=berth
USER_PASS=berthpass
REGISTRY_BIN=${BERTH_REGISTRY_BIN:-docker-registry}
PYTHON=${PYTHON:-python3}

P_PLAIN=$BASE
P_TLS=$((BASE + 1))
P_AUTH=$((BASE + 2))
P_HUB=$((BASE + 3))
P_TOKEN=$((BASE + 4))
P_CDN=$((BASE + 5))
P_FAULT=$((BASE + 6))

CERTS=$STATE/certs
CERTSD=$STATE/certs.d
RUN=$STATE/run
LOGS=$STATE/logs
CONF=$STATE/conf
DATA=$STATE/data
VIOLATIONS=$STATE/cdn-auth-violations.log

# name:port:kind  (kind = binary used to start it)
FIXTURES="plain:$P_PLAIN tls:$P_TLS auth:$P_AUTH authproxy:$P_HUB faultreg:$P_FAULT"

die() { echo "registry.sh: $*" >&2; exit 1; }
say() { echo "registry.sh: $*" >&2; }

need_tools() {
    local t
    for t in "$REGISTRY_BIN" openssl htpasswd curl "$PYTHON"; do
        command -v "$t" >/dev/null 2>&1 || die "missing tool '$t' (apt-get install docker-registry openssl apache2-utils curl python3)"
    done
    # resolve version-manager shims to the real interpreter, so the pid we
    # record is the python process itself
    local py
    if ! py=$("$PYTHON" -c 'import sys; print(sys.executable)' 2>/dev/null) || [ -z "$py" ]; then
        die "cannot run '$PYTHON'"
    fi
    PYTHON=$py
}

# ---------------------------------------------------------------- certificates
gen_certs() {
    mkdir -p "$CERTS"
    if [ ! -s "$CERTS/ca.crt" ] || [ ! -s "$CERTS/ca.key" ]; then
        say "generating test CA in $CERTS"
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
            -keyout "$CERTS/ca.key" -out "$CERTS/ca.crt" \
            -subj "/O=berth tests/CN=berth test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1 \
            || die "openssl: cannot create CA"
        rm -f "$CERTS/server.crt"
    fi
    if [ ! -s "$CERTS/server.crt" ] || [ ! -s "$CERTS/server.key" ] \
        || ! openssl verify -CAfile "$CERTS/ca.crt" "$CERTS/server.crt" >/dev/null 2>&1 \
        || ! openssl x509 -checkend 86400 -noout -in "$CERTS/server.crt" >/dev/null 2>&1; then
        say "generating server certificate (SAN IP:127.0.0.1, DNS:localhost)"
        cat >"$CERTS/server.ext" <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EOF
        openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$CERTS/server.key" \
            -out "$CERTS/server.csr" -subj "/O=berth tests/CN=localhost" >/dev/null 2>&1 \
            || die "openssl: cannot create server key/CSR"
        openssl x509 -req -sha256 -days 825 -in "$CERTS/server.csr" \
            -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" -CAcreateserial \
            -extfile "$CERTS/server.ext" -out "$CERTS/server.crt" >/dev/null 2>&1 \
            || die "openssl: cannot sign server certificate"
        rm -f "$CERTS/server.csr"
    fi
    chmod 600 "$CERTS/ca.key" "$CERTS/server.key"
    # berth's lookup convention: <certs.d>/<host:port>/ca.crt
    local p h
    for p in "$P_TLS" "$P_AUTH"; do
        for h in 127.0.0.1 localhost; do
            mkdir -p "$CERTSD/$h:$p"
            cp -f "$CERTS/ca.crt" "$CERTSD/$h:$p/ca.crt"
        done
    done
}

gen_htpasswd() {
    mkdir -p "$STATE/auth"
    if [ ! -s "$STATE/auth/htpasswd" ] \
        || ! htpasswd -vb "$STATE/auth/htpasswd" "$USER_NAME" "$USER_PASS" >/dev/null 2>&1; then
        htpasswd -Bbn "$USER_NAME" "$USER_PASS" >"$STATE/auth/htpasswd" \
            || die "htpasswd failed"
    fi
}

# name port tls(0/1) auth(0/1)
gen_registry_config() {
    local name=$1 port=$2 tls=$3 auth=$4 f
    f=$CONF/$name.yml
    mkdir -p "$CONF" "$DATA/$name"
    {
        echo "version: 0.1"
        echo "log:"
        echo "  level: info"
        echo "  formatter: text"
        echo "  accesslog:"
        echo "    disabled: true"
        echo "storage:"
        echo "  filesystem:"
        echo "    rootdirectory: $DATA/$name"
        echo "  delete:"
        echo "    enabled: true"
        echo "  cache:"
        echo "    blobdescriptor: inmemory"
        echo "  maintenance:"
        echo "    uploadpurging:"
        echo "      enabled: false"
        echo "http:"
        echo "  addr: $HOST:$port"
        echo "  secret: berth-test-$name-secret"
        echo "  headers:"
        echo "    X-Content-Type-Options: [nosniff]"
        if [ "$tls" = 1 ]; then
            echo "  tls:"
            echo "    certificate: $CERTS/server.crt"
            echo "    key: $CERTS/server.key"
        fi
        if [ "$auth" = 1 ]; then
            echo "auth:"
            echo "  htpasswd:"
            echo "    realm: berth-test-registry"
            echo "    path: $STATE/auth/htpasswd"
        fi
    } >"$f.tmp"
    mv -f "$f.tmp" "$f"
}

# ---------------------------------------------------------------- processes
pidfile() { echo "$RUN/$1.pid"; }

# Print the pid if the fixture is running (pidfile + live process that is ours).
running_pid() {
    local pf pid
    pf=$(pidfile "$1")
    [ -s "$pf" ] || return 1
    pid=$(cat "$pf")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    # guard against pid reuse: the command line must mention our state/config
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$(marker "$1")" || return 1
    echo "$pid"
}

marker() {
    case $1 in
        plain|tls|auth) echo "$CONF/$1.yml" ;;
        authproxy) echo "--violations-log $VIOLATIONS" ;;
        faultreg) echo "faultreg.py --bind $HOST --port $P_FAULT" ;;
    esac
}

url_of() {
    case $1 in
        plain) echo "http://$HOST:$P_PLAIN/v2/" ;;
        tls) echo "https://$HOST:$P_TLS/v2/" ;;
        auth) echo "https://$HOST:$P_AUTH/v2/" ;;
        hub) echo "http://$HOST:$P_HUB/v2/" ;;
        token) echo "http://$HOST:$P_TOKEN/token?service=berth-test-registry" ;;
        cdn) echo "http://$HOST:$P_CDN/" ;;
        faultreg) echo "http://$HOST:$P_FAULT/v2/" ;;
    esac
}

# HTTP status code of an endpoint, "000" when nothing answers.
probe() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 3 --connect-timeout 2 \
        --cacert "$CERTS/ca.crt" "$(url_of "$1")" 2>/dev/null || true
}

answers() {
    local code
    code=$(probe "$1")
    case $1 in
        plain|tls|faultreg) [ "$code" = 200 ] ;;
        auth|hub) [ "$code" = 401 ] ;;
        token) [ "$code" = 200 ] ;;
        cdn) [ "$code" = 400 ] ;;   # bare / is a bad CDN request
        *) return 1 ;;
    esac
}

endpoints_of() {
    case $1 in
        authproxy) echo "hub token cdn" ;;
        *) echo "$1" ;;
    esac
}

launch() {
    local name=$1 pf log pid
    pf=$(pidfile "$name")
    log=$LOGS/$name.log
    mkdir -p "$RUN" "$LOGS"
    local -a cmd
    case $name in
        plain|tls|auth)
            # clean environment: docker-registry treats any REGISTRY_* variable
            # as a config override
            cmd=(env -i "PATH=$PATH" "HOME=${HOME:-/root}" "$REGISTRY_BIN" serve "$CONF/$name.yml") ;;
        authproxy)
            cmd=("$PYTHON" -u -B "$ROOT/tests/fixtures/authproxy.py" --bind "$HOST" --port "$P_HUB"
                 --token-port "$P_TOKEN" --cdn-port "$P_CDN" --backend "$HOST:$P_PLAIN"
                 --user "$USER_NAME" --password "$USER_PASS" --violations-log "$VIOLATIONS") ;;
        faultreg)
            cmd=("$PYTHON" -u -B "$ROOT/tests/fixtures/faultreg.py" --bind "$HOST" --port "$P_FAULT"
                 --images-dir "$ROOT/rootfs-cache/images")
            local img spec
            for img in busybox multilayer; do
                if [ -f "$ROOT/rootfs-cache/images/$img/index.json" ]; then
                    cmd+=(--image "$img=$ROOT/rootfs-cache/images/$img")
                fi
            done
            for spec in ${BERTH_FAULTREG_IMAGES:-}; do
                cmd+=(--image "$spec")
            done ;;
    esac
    # keep logs bounded across many sessions
    if [ -f "$log" ] && [ "$(stat -c %s "$log")" -gt 5000000 ]; then
        mv -f "$log" "$log.old"
    fi
    echo "=== $(date '+%F %T') starting: ${cmd[*]}" >>"$log"
    # setsid: own session, so the daemon survives the calling shell/job
    setsid "${cmd[@]}" >>"$log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pf"
}

wait_ready() {
    local name=$1 ep deadline
    deadline=$((SECONDS + WAIT))
    for ep in $(endpoints_of "$name"); do
        until answers "$ep"; do
            if ! running_pid "$name" >/dev/null; then
                say "$name exited during startup; log tail ($LOGS/$name.log):"
                tail -n 15 "$LOGS/$name.log" >&2 || true
                rm -f "$(pidfile "$name")"
                return 1
            fi
            if [ $SECONDS -ge $deadline ]; then
                say "$name: $(url_of "$ep") not answering as expected after ${WAIT}s (last code $(probe "$ep")); log tail ($LOGS/$name.log):"
                tail -n 15 "$LOGS/$name.log" >&2 || true
                return 1
            fi
            sleep 0.2
        done
    done
}

port_busy() {
    # something (not ours) already listening?
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

ports_of() {
    case $1 in
        plain) echo "$P_PLAIN" ;; tls) echo "$P_TLS" ;; auth) echo "$P_AUTH" ;;
        authproxy) echo "$P_HUB $P_TOKEN $P_CDN" ;; faultreg) echo "$P_FAULT" ;;
    esac
}

start_one() {
    local name=$1 port
    if running_pid "$name" >/dev/null; then
        wait_ready "$name" || die "$name is running (pid $(running_pid "$name")) but not answering"
        return 0
    fi
    rm -f "$(pidfile "$name")"
    for port in $(ports_of "$name"); do
        if port_busy "$port"; then
            die "port $HOST:$port is already in use by a process registry.sh did not start (ss -ltnp 'sport = :$port')"
        fi
    done
    launch "$name"
}

cmd_start() {
    need_tools
    mkdir -p "$STATE" "$RUN" "$LOGS" "$DATA"
    gen_certs
    gen_htpasswd
    gen_registry_config plain "$P_PLAIN" 0 0
    gen_registry_config tls "$P_TLS" 1 0
    gen_registry_config auth "$P_AUTH" 1 1
    : >>"$VIOLATIONS"
    local f name port rc=0
    # refuse before starting anything if a port is taken by a stranger
    for f in $FIXTURES; do
        name=${f%%:*}
        running_pid "$name" >/dev/null && continue
        for port in $(ports_of "$name"); do
            if port_busy "$port"; then
                die "port $HOST:$port (for $name) is already in use by a process registry.sh did not start (see: ss -ltnp 'sport = :$port')"
            fi
        done
    done
    for f in $FIXTURES; do
        start_one "${f%%:*}"
    done
    for f in $FIXTURES; do
        name=${f%%:*}
        wait_ready "$name" || rc=1
    done
    if [ $rc -ne 0 ]; then
        say "some fixtures failed to start (state in $STATE)"
        return 1
    fi
    say "all registry fixtures up (state: $STATE)"
}

stop_one() {
    local name=$1 pid
    pid=$(running_pid "$name") || { rm -f "$(pidfile "$name")"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        [ -d "/proc/$pid" ] || break
        # a zombie child of nobody we know: treat as gone
        grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && break
        sleep 0.1
    done
    if [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
        say "$name (pid $pid) ignored SIGTERM for 10s; killing"
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    fi
    rm -f "$(pidfile "$name")"
    say "stopped $name (pid $pid)"
}

# cmd_stop [NAME...]: every fixture, or the named ones
cmd_stop() {
    local f n
    for n in "$@"; do
        [[ " $FIXTURES " == *" $n:"* ]] || die "no fixture named '$n' (known: $(fixture_names))"
    done
    for f in $FIXTURES; do
        if [ $# -gt 0 ] && [[ " $* " != *" ${f%%:*} "* ]]; then continue; fi
        stop_one "${f%%:*}"
    done
}

fixture_names() { local f out=; for f in $FIXTURES; do out+=" ${f%%:*}"; done; echo "${out# }"; }

# the names of the fixtures that run (started by this script, alive), one a line
cmd_running() {
    local f
    for f in $FIXTURES; do
        if running_pid "${f%%:*}" >/dev/null; then echo "${f%%:*}"; fi
    done
}

cmd_status() {
    local f name pid ep rc=0 st
    for f in $FIXTURES; do
        name=${f%%:*}
        if pid=$(running_pid "$name"); then
            st="running pid $pid"
        else
            st="stopped"
            rc=1
        fi
        for ep in $(endpoints_of "$name"); do
            if answers "$ep"; then
                printf '%-10s %-9s %-45s %s\n' "$name" "$ep" "$(url_of "$ep")" "$st, answering"
            else
                printf '%-10s %-9s %-45s %s\n' "$name" "$ep" "$(url_of "$ep")" "$st, NOT answering (code $(probe "$ep"))"
                rc=1
            fi
        done
    done
    return $rc
}

cmd_env() {
    local -a vars=(
        "BERTH_TEST_REGISTRY_STATE=$STATE"
        "BERTH_TEST_REGISTRY_PLAIN=$HOST:$P_PLAIN"
        "BERTH_TEST_REGISTRY_TLS=$HOST:$P_TLS"
        "BERTH_TEST_REGISTRY_TLS_LOCALHOST=localhost:$P_TLS"
        "BERTH_TEST_REGISTRY_AUTH=$HOST:$P_AUTH"
        "BERTH_TEST_REGISTRY_USER=$USER_NAME"
        "BERTH_TEST_REGISTRY_PASS=$USER_PASS"
        "BERTH_TEST_REGISTRY_CA=$CERTS/ca.crt"
        "BERTH_TEST_REGISTRY_CERTS_D=$CERTSD"
        "BERTH_TEST_REGISTRY_HUB=$HOST:$P_HUB"
        "BERTH_TEST_REGISTRY_TOKEN_URL=http://$HOST:$P_TOKEN/token"
        "BERTH_TEST_REGISTRY_TOKEN_SERVICE=berth-test-registry"
        "BERTH_TEST_REGISTRY_CDN=$HOST:$P_CDN"
        "BERTH_TEST_REGISTRY_CDN_VIOLATIONS=$VIOLATIONS"
        "BERTH_TEST_REGISTRY_FAULT=$HOST:$P_FAULT"
    )
    local v
    for v in "${vars[@]}"; do
        printf 'export %s=%q\n' "${v%%=*}" "${v#*=}"
    done
}

case ${1:-} in
    start) cmd_start ;;
    stop) shift; cmd_stop "$@" ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    running) cmd_running ;;
    env) cmd_env ;;
    *) echo "usage: $0 start|stop [NAME...]|restart|status|running|env" >&2; exit 2 ;;
esac
