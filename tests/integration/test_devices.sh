#!/bin/bash
# Devices through CDI (docs/gpu.md): a fake vendor's spec written to a
# directory of the test's, named by config `cdi_spec_dirs`; its device
# node, library mount, environment and createContainer hook in a
# container; devices not named stay out of reach; `--gpus` on this
# GPU-less host fails with preflight's message. Root and rootless
# (BERTH_MODE).
. "$(dirname "$0")/lib.sh"

create() { b_ok create -q --no-mount-cwd --network none "$@" localhost/busybox; }
x() { b_run exec "$@"; }
spec_json() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps(eval("d"+sys.argv[2])))' "$1" "$2"; }

# the fake vendor example.com/gpu: gpu=0 a character device with /dev/null's
# numbers (as root a node made with mknod in the test's directory; rootless
# /dev/null itself, a node the test user can open), gpu=1 /dev/net/tun
# (a tun node, 10:200: no capability needed to open it) read-only, shared edits: a library directory bound read-only, variables, a
# createContainer hook that records its arguments, environment and stdin
write_specs() {
  mkdir -p "$T_DIR/cdi" "$T_DIR/lib" "$T_DIR/out" "$T_DIR/devs"
  echo "fake driver 1.0" >"$T_DIR/lib/libfakegpu.so.1"
  if [ "$BERTH_MODE" = root ]; then
    mknod "$T_DIR/devs/gpu0" c 1 3
    chmod 666 "$T_DIR/devs/gpu0"
    GPU0_HOST=$T_DIR/devs/gpu0
  else
    GPU0_HOST=/dev/null
    chown "$TEST_USER" "$T_DIR/out"
  fi
  cat >"$T_DIR/hook.sh" <<'EOF'
#!/bin/sh
out=$(dirname "$0")/out
echo "$*" >"$out/hook.args"
env >"$out/hook.env"
cat >"$out/hook.state"
EOF
  chmod 755 "$T_DIR/hook.sh"
  cat >"$T_DIR/cdi/example.yaml" <<EOF
---
cdiVersion: "0.6.0"
kind: example.com/gpu
devices:
  - name: "0"
    containerEdits:
      deviceNodes:
        - path: /dev/fakegpu0
          hostPath: $GPU0_HOST
          permissions: rw
      env: [FAKE_GPU=0]
  - name: "1"
    containerEdits:
      deviceNodes:
        - {path: /dev/fakegpu1, hostPath: /dev/net/tun, permissions: r}
  - name: clash
    containerEdits:
      deviceNodes:
        - {path: /dev/fakegpu0, hostPath: /dev/zero}
containerEdits:
  env: [FAKE_VENDOR=example, FAKE_LIB_DIR=/opt/fake/lib]
  mounts:
    - hostPath: $T_DIR/lib
      containerPath: /opt/fake/lib
      options: [ro, nosuid, nodev, bind]
  hooks:
    - hookName: createContainer
      path: $T_DIR/hook.sh
      args: [fake-hook, create, --gpu]
      env: [HOOK_ENV=1]
EOF
  write_config "{\"cdi_spec_dirs\": [\"$T_DIR/cdi\"]}"
}

test_cdi_device_node_mount_env_hook() {
  setup_ctr; write_specs
  create --name c --device example.com/gpu=0 -e SECRET=s3cret -e LD_PRELOAD=/tmp/evil.so
  assert_contains "$B_OUT" "c"
  # the node: there, with its numbers, and it works
  x c sh -c 'stat -c "%F %t:%T %a" /dev/fakegpu0; echo data >/dev/fakegpu0 && echo write-ok; head -c 4 /dev/fakegpu0 | wc -c'
  assert_eq "$B_RC" 0 "exec"
  assert_contains "$B_OUT" "character special file 1:3 666" "the node and its numbers"
  assert_contains "$B_OUT" "write-ok" "a write to the node succeeds"
  # the mount (read-only), the variables
  x c sh -c 'cat /opt/fake/lib/libfakegpu.so.1; touch /opt/fake/lib/x 2>&1; echo "gpu=$FAKE_GPU vendor=$FAKE_VENDOR dir=$FAKE_LIB_DIR"'
  assert_contains "$B_OUT" "fake driver 1.0" "the library mount"
  assert_contains "$B_OUT" "Read-only file system" "the mount is read-only"
  assert_contains "$B_OUT" "gpu=0 vendor=example dir=/opt/fake/lib" "the spec's variables"
  # the createContainer hook ran on the host, with the OCI state on stdin
  assert_exists "$T_DIR/out/hook.args" "the hook's record"
  assert_eq "$(cat "$T_DIR/out/hook.args")" "create --gpu" "hook arguments (argv[0] is fake-hook)"
  local state=$T_DIR/out/hook.state
  assert_eq "$(spec_json "$state" '["status"]')" '"creating"' "state status"
  assert_eq "$(spec_json "$state" '["id"]')" '"c"' "state id"
  assert_eq "$(spec_json "$state" '["bundle"]')" "\"$BERTH_ROOT/containers/c\"" "state bundle"
  local init
  init=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["init"]["pid"])' "$BERTH_ROOT/containers/c/state.json")
  assert_eq "$(spec_json "$state" '["pid"]')" "$init" "state pid: the container's init as the host sees it"
  # only its own environment: nothing of the container's (SECRET, LD_PRELOAD)
  assert_contains "$(cat "$T_DIR/out/hook.env")" "HOOK_ENV=1"
  assert_not_contains "$(cat "$T_DIR/out/hook.env")" "SECRET" "the hook's environment"
  assert_not_contains "$(cat "$T_DIR/out/hook.env")" "LD_PRELOAD" "the hook's environment"
  # everything went through config.json
  local cfg=$BERTH_ROOT/containers/c/config.json
  assert_eq "$(spec_json "$cfg" '["linux"]["devices"][0]["path"]')" '"/dev/fakegpu0"' "config.json linux.devices"
  assert_eq "$(spec_json "$cfg" '["hooks"]["createContainer"][0]["path"]')" "\"$T_DIR/hook.sh\"" "config.json hooks"
  assert_contains "$(spec_json "$cfg" '["process"]["env"]')" "FAKE_GPU=0" "config.json process.env"
  # the reply and the record name the device
  b_ok status --json c
  assert_contains "$B_OUT" "example.com/gpu=0"
}

test_devices_not_named_stay_out() {
  setup_ctr; write_specs
  create --name c --device example.com/gpu=0
  # gpu=1 exists on the host (/dev/net/tun) and in the spec, but was not asked for
  x c sh -c 'ls /dev/fakegpu1 2>&1; ls /dev'
  assert_contains "$B_OUT" "No such file" "/dev/fakegpu1 is not in the container"
  assert_not_contains "$B_OUT" "tun"
  x c sh -c 'mknod /tmp/k c 10 200 2>&1 || echo mknod-refused'
  assert_contains "$B_OUT" "mknod-refused" "no node can be made inside"
  if [ "$BERTH_MODE" = root ]; then
    # a node of gpu=1's numbers put into the container's /dev from the
    # host: the devices allow-list refuses it
    local init
    init=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["init"]["pid"])' "$BERTH_ROOT/containers/c/state.json")
    nsenter -t "$init" -m mknod /dev/sneaky c 10 200
    x c sh -c 'head -c 1 /dev/sneaky >/dev/null && echo opened'
    assert_contains "$B_ERR" "Operation not permitted" "an unnamed device is refused by the allow-list"
    assert_not_contains "$B_OUT" "opened"
  fi
  # asked for, read-only: it opens for reading, not for writing
  create --name c1 --device example.com/gpu=1
  x c1 sh -c 'stat -c "%t:%T" /dev/fakegpu1; exec 3</dev/fakegpu1 && echo read-open'
  assert_contains "$B_OUT" "a:c8" "the tun node's numbers"
  assert_contains "$B_OUT" "read-open" "the read-only device opens for reading"
  if [ "$BERTH_MODE" = root ]; then
    x c1 sh -c 'exec 3>/dev/fakegpu1 && echo write-open'
    assert_not_contains "$B_OUT" "write-open" "permissions r: no write"
    assert_contains "$B_ERR" "Operation not permitted"
  fi
}

test_gpus_on_a_host_without_gpu() {
  setup_ctr; write_specs
  [ ! -e /dev/nvidia0 ] && [ ! -e /dev/kfd ] && [ ! -e /dev/dri ] || fail "precondition: this host has a GPU; the test expects none"
  b_fails create -q --no-mount-cwd --network none --name g --gpus all localhost/busybox
  assert_contains "$B_MSG" "gpu: no GPU on this host" "the create says what preflight says"
  assert_contains "$B_MSG" "nvidia.com/gpu=all"
  assert_not_exists "$BERTH_ROOT/containers/g" "the container's directory"
  b_ok ls -a -q
  assert_eq "$B_OUT" "" "no container is left"
  b_ok preflight --json
  local detail
  detail=$("$PY" -c 'import json,sys; c=[c for c in json.load(open(sys.argv[1]))["checks"] if c["name"]=="gpu"][0]; print(c["passed"], c["required"], c["detail"])' "$B_OUTF")
  assert_contains "$detail" "False False no GPU on this host" "preflight's optional gpu check"
  tool '{"operation": "create", "image": "localhost/busybox", "gpu": true, "network": "none", "mount_cwd": false}'
  assert_contains "$(field '["error"]')" "no GPU on this host"
  tool '{"operation": "create", "image": "localhost/busybox", "gpu": ["0", 1], "network": "none", "mount_cwd": false}'
  assert_contains "$(field '["error"]')" "nvidia.com/gpu=0"
  tool '{"operation": "create", "image": "localhost/busybox", "gpu": ["a b"]}'
  assert_eq "$(field '["code"]')" invalid_value
  assert_eq "$(field '["field"]')" gpu
  b_ok ls -a -q
  assert_eq "$B_OUT" "" "no container is left"
}

test_host_device_paths_and_run() {
  setup_ctr; write_specs
  create --name c --device /dev/null:/dev/mynull:rw
  x c sh -c 'stat -c "%t:%T" /dev/mynull; echo x >/dev/mynull && echo ok'
  assert_contains "$B_OUT" "1:3"
  assert_contains "$B_OUT" "ok"
  # a one-shot gets the same edits, hook included
  rm -f "$T_DIR/out/hook.args"
  b_ok run --rm --network none --device example.com/gpu=0 localhost/busybox sh -c 'echo w >/dev/fakegpu0 && echo $FAKE_GPU'
  assert_eq "$B_OUT" "0"
  assert_exists "$T_DIR/out/hook.args" "the one-shot's createContainer hook ran"
  b_fails create -q --no-mount-cwd --network none --device /dev/definitely-not-here localhost/busybox
  assert_contains "$B_MSG" "/dev/definitely-not-here"
  b_fails create -q --no-mount-cwd --network none --device /etc/hostname localhost/busybox
  assert_contains "$B_MSG" "not a device node"
}

test_bad_requests_and_specs_leave_nothing() {
  setup_ctr; write_specs
  b_fails create -q --no-mount-cwd --network none --name n --device example.com/gpu=7 localhost/busybox
  assert_contains "$B_MSG" "kind example.com/gpu has 0, 1, clash" "an unknown device: what the kind has"
  b_fails create -q --no-mount-cwd --network none --name n --device example.com/gpu=0 --device example.com/gpu=clash localhost/busybox
  assert_contains "$B_MSG" "conflicting edits: device node /dev/fakegpu0"
  b_run create -q --no-mount-cwd --network none --name n --device 'example.com/gpu' localhost/busybox
  assert_eq "$B_RC" 125
  assert_contains "$B_ERR" "not a CDI name"
  # a broken spec in the directory: named, with its line, when a device is not found
  printf 'cdiVersion: 0.6.0\nkind: example.com/other\ndevices:\n  - name: x\n    containerEdits:\n      deviceNodes: [{path: /dev/x, major: "7"}]\n' \
    >"$T_DIR/cdi/broken.yaml"
  b_fails create -q --no-mount-cwd --network none --name n --device example.com/other=x localhost/busybox
  assert_contains "$B_MSG" "broken.yaml\`, line 6: devices[0].containerEdits.deviceNodes[0].major"
  # a hook that fails: the create fails with its output, and leaves nothing
  printf 'cdiVersion: 0.6.0\nkind: example.com/failing\ndevices:\n  - name: x\n    containerEdits:\n      hooks: [{hookName: createRuntime, path: /bin/sh, args: [sh, -c, "echo vendor says no >&2; exit 3"]}]\n' \
    >"$T_DIR/cdi/failing.yaml"
  b_fails create -q --no-mount-cwd --network none --name n --device example.com/failing=x localhost/busybox
  assert_contains "$B_MSG" "createRuntime hook \`/bin/sh\` failed (exit 3): vendor says no"
  # a hook past its timeout: killed, and the create fails at once
  printf 'cdiVersion: 0.6.0\nkind: example.com/slow\ndevices:\n  - name: x\n    containerEdits:\n      hooks: [{hookName: createContainer, path: /bin/sleep, args: [sleep, "30"], timeout: 1}]\n' \
    >"$T_DIR/cdi/slow.yaml"
  b_fails create -q --no-mount-cwd --network none --name n --device example.com/slow=x localhost/busybox
  assert_contains "$B_MSG" "createContainer hook \`/bin/sleep\` did not finish within 1 s"
  assert_le "$B_SECS" 10 "seconds the create took"
  # a spec others may write is not read
  printf 'cdiVersion: 0.6.0\nkind: example.com/open\ndevices:\n  - name: x\n    containerEdits: {env: [A=1]}\n' >"$T_DIR/cdi/open.yaml"
  chmod 666 "$T_DIR/cdi/open.yaml"
  b_fails create -q --no-mount-cwd --network none --name n --device example.com/open=x localhost/busybox
  assert_contains "$B_MSG" "writable by group or others"
  assert_not_exists "$BERTH_ROOT/containers/n"
  b_ok ls -a -q
  assert_eq "$B_OUT" "" "no container is left"
}

test_hook_lifecycle() {
  setup_ctr; write_specs
  cat >"$T_DIR/cdi/life.yaml" <<EOF
cdiVersion: 0.6.0
kind: example.com/life
devices:
  - name: all
    containerEdits:
      hooks:
        - {hookName: createRuntime, path: /bin/sh, args: [sh, -c, 'echo createRuntime >>$T_DIR/out/life']}
        - {hookName: startContainer, path: /bin/sh, args: [sh, -c, 'grep CapEff /proc/self/status >/tmp/start-hook']}
        - {hookName: poststart, path: /bin/sh, args: [sh, -c, 'echo poststart >>$T_DIR/out/life']}
        - {hookName: poststop, path: /bin/sh, args: [sh, -c, 'echo poststop >>$T_DIR/out/life']}
EOF
  create --name c --device example.com/life=all
  x c cat /tmp/start-hook
  assert_contains "$B_OUT" "CapEff:	0000000000000000" "startContainer ran in the container, without capabilities"
  b_ok rm -f c
  assert_eq "$(cat "$T_DIR/out/life" | tr '\n' ' ')" "createRuntime poststart poststop " "hooks in order, poststop once"
}

test_device_closed_to_the_user() {
  setup_ctr; write_specs
  # a node only root may open (/dev/loop-control, 0600 root)
  printf 'cdiVersion: 0.6.0\nkind: example.com/closed\ndevices:\n  - name: x\n    containerEdits:\n      deviceNodes: [{path: /dev/loopctl, hostPath: /dev/loop-control}]\n' \
    >"$T_DIR/cdi/closed.yaml"
  need_file /dev/loop-control
  if [ "$BERTH_MODE" = rootless ]; then
    b_fails create -q --no-mount-cwd --network none --name c --device example.com/closed=x localhost/busybox
    assert_contains "$B_MSG" "/dev/loop-control (owner uid 0, group root, mode 600) is not open to your user"
    assert_contains "$B_MSG" "run berth as root"
    assert_not_exists "$BERTH_ROOT/containers/c"
  else
    create --name c --device example.com/closed=x
    x c sh -c 'stat -c "%t:%T" /dev/loopctl'
    assert_contains "$B_OUT" "a:ed" "root gets the node"
  fi
}

t_run "CDI device: node, library mount, env, createContainer hook" test_cdi_device_node_mount_env_hook
t_run "devices not named stay out of reach; read-only devices" test_devices_not_named_stay_out
t_run "--gpus all on a host without a GPU: preflight's message, nothing left" test_gpus_on_a_host_without_gpu
t_run "host device paths; run --rm with a CDI device" test_host_device_paths_and_run
t_run "unknown devices, conflicts, broken specs and failing hooks leave nothing" test_bad_requests_and_specs_leave_nothing
t_run "hooks: createRuntime, startContainer, poststart, poststop" test_hook_lifecycle
t_run "a device the user cannot open (rootless: refused with the reason)" test_device_closed_to_the_user
t_summary
