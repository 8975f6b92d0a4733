#!/bin/bash
# `make demo`: the newcomer's tour. Installs dependencies, builds berth,
# builds a busybox image offline, serves it from a local registry, pulls it,
# creates a container, runs commands in it (CLI and JSON), and cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "dependencies"
scripts/install-deps.sh
step "build"
make -s all
demo_root=$(mktemp -d /tmp/berth-demo.XXXXXX)
export BERTH_ROOT=$demo_root
cleanup() {
  build/berth rm -f demo demo-web demo-client >/dev/null 2>&1 || true
  build/berth network rm demo-net >/dev/null 2>&1 || true
  build/berth rmi -q 127.0.0.1:5000/demo/busybox:latest >/dev/null 2>&1 || true
  [ -n "${started_registry:-}" ] && scripts/registry.sh stop >/dev/null 2>&1
  rm -rf "$demo_root"
}
trap cleanup EXIT

step "build a busybox image offline (from Debian's busybox-static)"
python3 tests/fixtures/mkimages.py --only busybox
step "serve it from a local registry on 127.0.0.1:5000"
# leave a registry that was already running (e.g. for tests) alone
scripts/registry.sh status >/dev/null 2>&1 || started_registry=1
scripts/registry.sh start >/dev/null
python3 tests/fixtures/push.py -q rootfs-cache/images/busybox 127.0.0.1:5000 demo/busybox:latest
step "berth pull 127.0.0.1:5000/demo/busybox"
build/berth pull 127.0.0.1:5000/demo/busybox
step "berth images"
build/berth images
step "the unpacked layer (shared by every image and container that uses it)"
layer=$(build/berth images --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["layers"][0]["path"])')
echo "$layer"
ls "$layer"
echo "--- etc/passwd in the image:"
cat "$layer/etc/passwd"
step "berth load: the same image with no registry at all"
build/berth load --name demo/offline:1 rootfs-cache/images/busybox-oci.tar
build/berth images
step "berth create: a container with berth's own init, no daemon"
build/berth preflight
build/berth create --name demo --no-mount-cwd -e GREETING=hello 127.0.0.1:5000/demo/busybox
build/berth ls
step "berth exec: a command inside it"
build/berth exec demo sh -c 'echo "$GREETING from $(hostname)"; id; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; ps'
step "networking: a published port and a named network (names between members)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
build/berth network create demo-net
build/berth create -q --name demo-web --network demo-net --no-mount-cwd -p "$port:80" 127.0.0.1:5000/demo/busybox
build/berth exec demo-web sh -c 'mkdir -p /www && echo "hello from demo-web" >/www/index.html && httpd -p 80 -h /www'
build/berth create -q --name demo-client --network demo-net --no-mount-cwd 127.0.0.1:5000/demo/busybox
echo "--- demo-client -> http://demo-web/ (by name, on demo-net):"
build/berth exec demo-client sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc demo-web 80 | tail -n 1'
echo "--- host -> http://127.0.0.1:$port/ (published on loopback only):"
curl -s "http://127.0.0.1:$port/"
build/berth network ls
build/berth rm -f demo-web demo-client
build/berth network rm demo-net
step "the agent interface: one JSON request, one JSON reply"
build/berth tool --request '{"operation":"exec","container":"demo","command":"uname -sr; ls /"}'
build/berth hint demo
step "clean up"
build/berth rm demo
build/berth rmi 127.0.0.1:5000/demo/busybox:latest demo/offline:1
echo "demo done (store was $demo_root, now removed)"
