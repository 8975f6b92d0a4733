#!/bin/bash
# The containers tool contract through `berth tool`, malformed requests,
# the MCP server with the official SDK client, and the embedding example.
. "$(dirname "$0")/lib.sh"

# tool JSON: run one request, reply in $B_OUTF; RC 0 when no error
store_fingerprint() { (cd "$BERTH_ROOT" 2>/dev/null && find . -path ./storage/locks -prune -o -print | sort | md5sum) || echo none; }

test_contract_lifecycle() {
  setup_ctr
  tool '{"operation":"preflight"}'
  has_fields ready runtime checks summary
  assert_eq "$(field '["runtime"]')" berth
  "$PY" - "$B_OUTF" <<'PY' || fail "every failed check needs guidance"
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["checks"]:
    assert {"name", "passed", "detail"} <= set(c), c
    assert c["passed"] or c.get("guidance"), c
PY
  tool '{"operation":"create","name":"ct1","image":"localhost/busybox","mount_cwd":false,"env":{"A":"1"},"env_passthrough":"none","setup_commands":["echo one","true"]}'
  assert_eq "$B_RC" 0 "create"
  has_fields success container container_id image purpose connect_command workdir env_vars_injected persistent provisioning_report
  assert_eq "$(field '["container"]')" ct1
  assert_eq "$(field '["env_vars_injected"]')" '["A"]'
  assert_eq "$(field '["status"]')" ready
  "$PY" - "$B_OUTF" <<'PY' || fail "provisioning_report entries"
import json, sys
d = json.load(open(sys.argv[1]))
names = [s["name"] for s in d["provisioning_report"]]
assert names[:6] == ["environment", "git", "gh", "ssh", "dotfiles", "purpose_profile"], names
for s in d["provisioning_report"]:
    assert s["status"] in ("success", "skipped", "failed", "partial"), s
    assert "detail" in s and "duration_ms" in s, s
assert [s["status"] for s in d["provisioning_report"][6:]] == ["success", "success"]
PY
  tool '{"operation":"exec","container":"ct1","command":"echo out; echo err >&2; exit 4"}'
  assert_eq "$B_RC" 0 "an exec reply is not an error even when the command fails"
  has_fields returncode stdout stderr timed_out
  assert_eq "$(field '["returncode"]')" 4
  assert_eq "$(field '["stdout"]')" out
  assert_eq "$(field '["stderr"]')" err
  tool '{"operation":"exec","container":"ct1","command":"sleep 20","timeout":1}'
  assert_eq "$(field '["timed_out"]')" true
  tool '{"operation":"exec_interactive_hint","container":"ct1"}'
  has_fields command shell container
  assert_eq "$(field '["shell"]')" /bin/sh "busybox has no bash or zsh"
  assert_eq "$(field '["command"]')" "berth exec -it ct1 /bin/sh"
  tool '{"operation":"list"}'
  has_fields containers count
  "$PY" - "$B_OUTF" <<'PY' || fail "list entries"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["count"] == 1 and len(d["containers"]) == 1
c = d["containers"][0]
assert {"name", "status", "image", "ports", "purpose", "persistent"} <= set(c), c
assert c["name"] == "ct1" and c["status"] == "running"
PY
  tool '{"operation":"status","container":"ct1"}'
  has_fields container running status started_at image metadata
  assert_eq "$(field '["running"]')" true
  echo data > "$T_DIR/f.txt"; chmod 644 "$T_DIR/f.txt"
  tool "{\"operation\":\"copy_in\",\"container\":\"ct1\",\"host_path\":\"$T_DIR/f.txt\",\"container_path\":\"/tmp/f.txt\"}"
  has_fields success detail
  mkdir -p "$T_DIR/o"; [ "$BERTH_MODE" = rootless ] && chown "$TEST_USER:" "$T_DIR/o"
  tool "{\"operation\":\"copy_out\",\"container\":\"ct1\",\"container_path\":\"/tmp/f.txt\",\"host_path\":\"$T_DIR/o/g.txt\"}"
  assert_file_content "$T_DIR/o/g.txt" $'data\n'
  tool '{"operation":"destroy","container":"ct1"}'
  has_fields success container detail
  assert_eq "$(field '["success"]')" true
}

test_contract_error_paths() {
  setup_ctr
  tool '{"operation":"status","container":"ghost"}'
  assert_eq "$B_RC" 1
  assert_eq "$(field '["error"]')" "Container not found: ghost"
  tool '{"operation":"destroy_all"}'
  assert_eq "$(field '["error"]')" "Set confirm=true to destroy all managed containers"
  tool '{"operation":"destroy_all","confirm":true}'
  has_fields destroyed results
  tool '{"operation":"create","image":"localhost/nosuch:1","mount_cwd":false}'
  [[ "$(field '["error"]')" == "Failed to create container: "* ]] || fail "create error prefix: $(cat "$B_OUTF")"
  tool '{"operation":"exec","container":"ghost","command":"true"}'
  assert_eq "$(field '["error"]')" "Container not found: ghost"
  tool '{"operation":"destroy_network","name":"ghost-net"}'
  assert_eq "$(field '["code"]')" not_found "destroy_network of a network that does not exist"
  tool '{"operation":"create","image":"localhost/busybox","mount_cwd":false,"network":"ghost-net"}'
  assert_eq "$B_RC" 1
  assert_contains "$(field '["error"]')" "berth network create ghost-net" "create on a missing network says how to make it"
  tool '{"operation":"snapshot","container":"ghost"}'
  assert_eq "$(field '["error"]')" "Container not found: ghost"
  tool '{"operation":"restore","snapshot":"ghost"}'
  assert_eq "$(field '["error"]')" "Snapshot not found: ghost"
  tool '{"operation":"delete_snapshot","snapshot":"ghost"}'
  assert_eq "$(field '["error"]')" "Snapshot not found: ghost"
  tool '{"operation":"create","image":"localhost/busybox","network":"my-stack"}'
  assert_eq "$(field '["code"]')" not_found "a network that was never created is refused, never ignored"
  tool '{"operation":"create","image":"localhost/busybox","network":"none","ports":[{"host":8080,"container":80}]}'
  assert_eq "$(field '["code"]')" invalid_value "ports without the bridge network are refused, never ignored"
  b_ok ls --json
  assert_contains "$B_OUT" '"count": 0' "no container was left by the failed creates"
}

test_malformed_requests() {
  setup_ctr
  local before; before=$(store_fingerprint)
  local big; big=$(head -c 300000 /dev/zero | tr '\0' a)
  local -a bad=(
    '' '{' '{"operation":' '[]' '"create"' 'null' '{"operation":null}' '{"operation":5}'
    '{"operation":"nope"}' '{"operation":"create","bogus":1}' '{"operation":"create","name":"../x","image":"i"}'
    '{"operation":"create","name":"a/b","image":"i"}' '{"operation":"create","name":"","image":"i"}'
    '{"operation":"create","memory_limit":"4x","image":"i"}' '{"operation":"create","memory_limit":4,"image":"i"}'
    '{"operation":"create","cpu_limit":-1,"image":"i"}' '{"operation":"create","cpu_limit":"2","image":"i"}'
    '{"operation":"create","env":{"A":1},"image":"i"}' '{"operation":"create","env":["A=1"],"image":"i"}'
    '{"operation":"create","mounts":[{"host":"../etc","container":"/x"}],"image":"i"}'
    '{"operation":"create","mounts":[{"host":"/etc","container":"/x","mode":"rwx"}],"image":"i"}'
    '{"operation":"create","mounts":[{"host":"/etc","container":"/a/../../x"}],"image":"i"}'
    '{"operation":"create","env_passthrough":"some","image":"i"}' '{"operation":"create","setup_commands":"ls","image":"i"}'
    '{"operation":"exec","container":"c"}' '{"operation":"exec","command":"ls"}' '{"operation":"exec","container":"c","command":"ls","timeout":0}'
    '{"operation":"exec","container":"c","command":"ls","timeout":"5"}' '{"operation":"status"}'
    '{"operation":"create","name":"x","name":"y","image":"i"}' '{"operation":"create","pids_limit":1,"image":"i"}'
    '{"operation":"copy_in","container":"c","host_path":"/etc/passwd"}'
    "{\"operation\":\"create\",\"image\":\"$big\"}"
    '{"operation":"create","image":"i\u0000x"}'
  )
  local req i=0
  for req in "${bad[@]}"; do
    i=$((i + 1))
    printf '%s' "$req" >"$T_DIR/req$i.json"
    chmod 644 "$T_DIR/req$i.json"
    berth_cmd tool
    B_RC=0
    "${B_CMD[@]}" <"$T_DIR/req$i.json" >"$T_DIR/rep$i.json" 2>"$T_DIR/err$i" || B_RC=$?
    [ "$B_RC" = 1 ] || fail "request $i (${req:0:80}) exited $B_RC, want 1"
    "$PY" -S "$HELPERS" json-check "$T_DIR/rep$i.json" error code || fail "request $i (${req:0:80}): reply is not {error, code}: $(head -c 300 "$T_DIR/rep$i.json")"
  done
  assert_eq "$(store_fingerprint)" "$before" "bad requests change nothing on disk"
  # NUL bytes in the middle of the stream
  printf '{"operation":"li\0st"}' >"$T_DIR/nul.json"; chmod 644 "$T_DIR/nul.json"
  berth_cmd tool; B_RC=0; "${B_CMD[@]}" <"$T_DIR/nul.json" >"$T_DIR/nul.out" || B_RC=$?
  assert_eq "$B_RC" 1 "NUL byte"
}

test_mcp_sdk_client() {
  setup_ctr
  [ -d "$IT_DIR/mcp/node_modules/@modelcontextprotocol/sdk" ] || fail "the MCP SDK is not installed (scripts/fixtures.sh runs npm ci in tests/integration/mcp)"
  command -v node >/dev/null || fail "node is not installed"
  berth_cmd mcp
  # the SDK spawns berth itself: hand it the same user and environment
  local wrapper=$T_DIR/berth-mcp.sh
  printf '#!/bin/sh\nexec %s\n' "$(printf '%q ' "${B_CMD[@]}")" >"$wrapper"
  chmod 755 "$wrapper"
  node "$IT_DIR/mcp/client.mjs" "$wrapper" localhost/busybox:latest >"$T_DIR/mcp.log" 2>&1 || { cat "$T_DIR/mcp.log"; fail "MCP client test failed"; }
  cat "$T_DIR/mcp.log"
  assert_contains "$(tail -n 1 "$T_DIR/mcp.log")" ", 0 failed"
}

test_embedding_example() {
  setup_ctr
  cc -o "$T_DIR/embed" "$REPO/docs/examples/embed.c" -I"$REPO/include" "$REPO/build/libberth.a" \
     $(pkg-config --libs jansson) -pthread -ldl || fail "the embedding example does not build"
  chmod 755 "$T_DIR/embed"
  berth_cmd version
  local i
  for i in "${!B_CMD[@]}"; do [ "${B_CMD[$i]}" = "$BERTH_BIN" ] && B_CMD[$i]=$T_DIR/embed; done
  B_CMD[-1]=localhost/busybox:latest
  "${B_CMD[@]}" >"$T_DIR/embed.out" 2>&1 || { cat "$T_DIR/embed.out"; fail "the embedding example failed"; }
  cat "$T_DIR/embed.out"
  assert_contains "$(cat "$T_DIR/embed.out")" '"stdout":"hello from embed-demo\n"'
}

test_secrets_stay_off_disk() {
  setup_ctr
  local secret=tok-$RANDOM$RANDOM$RANDOM
  B_EXTRA_ENV="MY_SERVICE_TOKEN=$secret" tool '{"operation":"create","name":"sec","image":"localhost/busybox","mount_cwd":false,"env":{"EXPLICIT_SECRET":"'"$secret"'-x"},"setup_commands":["test -n \"$MY_SERVICE_TOKEN\""]}'
  assert_eq "$B_RC" 0 "create"
  assert_not_contains "$(cat "$B_OUTF")" "$secret" "the create reply"
  assert_contains "$(cat "$B_OUTF")" MY_SERVICE_TOKEN "auto passthrough picked *_TOKEN"
  tool '{"operation":"exec","container":"sec","command":"echo $MY_SERVICE_TOKEN $EXPLICIT_SECRET"}'
  assert_eq "$(field '["stdout"]')" "$secret $secret-x" "every exec sees the variables"
  b_run exec sec sh -c 'cat /proc/1/environ /proc/1/cmdline 2>/dev/null; cat /proc/1/fd/3 2>/dev/null; true'
  assert_not_contains "$B_OUT" "$secret" "what the container's PID 1 exposes"
  # the host's own (passed through) never reaches a file; the caller's
  # explicit value only env.json, 0600, for a later start (security.md)
  local files
  files=$(grep -rls -- "$secret" "$BERTH_ROOT" /tmp/berth-run-* /run/berth 2>/dev/null || true)
  assert_eq "$files" "$BERTH_ROOT/containers/sec/env.json" "the only file with a secret is the kept env"
  assert_not_contains "$(cat "$BERTH_ROOT/containers/sec/env.json")" MY_SERVICE_TOKEN "passed-through values stay in memory"
  assert_eq "$(mode_of "$BERTH_ROOT/containers/sec/env.json")" 600
  assert_eq "$(mode_of "$BERTH_ROOT/containers/sec")" 700
  tool '{"operation":"status","container":"sec"}'
  assert_not_contains "$(cat "$B_OUTF")" "$secret" "status"
}

test_snapshot_restore_delete() {
  setup_ctr
  tool '{"operation":"create","name":"s1","image":"localhost/busybox","mount_cwd":false,"network":"none"}'
  b_ok exec s1 sh -c 'echo state > /root/work.txt; rm /etc/group; mkdir -p /root/.ssh /root/d; echo KEY > /root/.ssh/id_ed25519; echo pub > /root/.ssh/id_ed25519.pub; ln /root/work.txt /root/hard.txt; ln -s work.txt /root/sym'
  tool '{"operation":"snapshot","container":"s1","name":"after-setup"}'
  assert_eq "$B_RC" 0 "$(cat "$B_OUTF")"
  has_fields success snapshot image detail
  assert_eq "$(field '["image"]')" "berth.local/snapshot/after-setup:latest"
  assert_contains "$(field '["detail"]')" "private ssh keys left out"
  tool '{"operation":"restore","snapshot":"after-setup","name":"s2"}'
  assert_eq "$B_RC" 0 "$(cat "$B_OUTF")"
  assert_eq "$(field '["container"]')" s2 "restore creates a new container with the given name"
  b_ok exec s2 sh -c 'cat /root/work.txt; test -e /etc/group && echo group || echo no-group; ls /root/.ssh; readlink /root/sym; stat -c %h /root/hard.txt'
  assert_eq "$B_OUT" $'state\nno-group\nid_ed25519.pub\nwork.txt\n2' "files, deletions (whiteouts), links; no private key"
  tool '{"operation":"delete_snapshot","snapshot":"after-setup"}'
  has_fields success snapshot detail
  b_ok exec s2 cat /root/work.txt
  assert_eq "$B_OUT" state "a container restored from a deleted snapshot keeps running on its layers"
  tool '{"operation":"restore","snapshot":"after-setup"}'
  assert_eq "$(field '["code"]')" not_found
}

# the CLI: unknown flags refused (125) with a hint, help per command
test_cli_strict_and_help() {
  local c
  for c in "ls --bogus" "ps --bogus" "rm --bogus x" "status --bogus x" "hint --bogus x" "preflight --bogus" "network ls --bogus" \
           "mcp --bogus" "images --bogus" "exec --bogus x true" "create --bogus img" "run --bogus img" "cp --bogus a b:/c" "pull --bogus x"; do
    b_run $c
    assert_eq "$B_RC" 125 "berth $c"
    assert_contains "$B_ERR" "--help" "berth $c names the help"
  done
  for c in create run exec ls rm cp status network pull; do
    b_ok help "$c"
    assert_contains "$B_OUT" "Usage: berth" "berth help $c"
    b_ok "$c" --help
  done
  b_ok help exec
  assert_contains "$B_OUT" "--setup-caps"
  assert_contains "$B_OUT" "--timeout"
  b_run help nosuch
  assert_eq "$B_RC" 125
  b_ok help
  assert_contains "$B_OUT" "ps"
  assert_contains "$B_OUT" "network"
  # bash completion: commands, flags, and the names of containers, images and networks
  setup_ctr
  b_ok create -q --no-mount-cwd --network none --name compl-one localhost/busybox
  b_ok network create compnet
  b_ok completion bash
  cp "$B_OUTF" "$T_DIR/completion.bash"
  # a `berth` on PATH that runs this mode's berth, as a person's shell would find it
  berth_cmd version
  mkdir -p "$T_DIR/pathbin"
  { echo '#!/bin/bash'; printf 'exec '; printf '%q ' "${B_CMD[@]:0:${#B_CMD[@]}-1}"; echo '"$@"'; } >"$T_DIR/pathbin/berth"
  chmod 755 "$T_DIR/pathbin/berth"
  comp() { # WORDS...: what completing the last word offers
    PATH="$T_DIR/pathbin:$PATH" bash -c 'source "$1"; shift; COMP_WORDS=(berth "$@"); COMP_CWORD=$#; _berth; printf "%s\n" "${COMPREPLY[@]}"' \
      _ "$T_DIR/completion.bash" "$@"
  }
  assert_contains "$(comp exec compl)" compl-one "container names for exec"
  assert_contains "$(comp run local)" localhost/busybox "image names for run"
  assert_contains "$(comp create --network comp)" compnet "network names"
  assert_contains "$(comp exec --time)" --timeout "exec's flags"
  assert_contains "$(comp ne)" network "commands"
  b_ok network rm compnet
}

# one truth for the shell; run does not bind the current directory unless
# asked; an explicit mount at the workdir replaces the current directory's;
# exec on an exited container answers not_running
test_cli_shell_cwd_not_running() {
  setup_ctr
  b_ok load -q --name local/debian:12 "$IMAGES/debian"
  tool '{"operation":"create","name":"d","image":"local/debian:12","mount_cwd":false,"forward_git":false}'
  local cc
  cc=$(field '["connect_command"]')
  tool '{"operation":"exec_interactive_hint","container":"d"}'
  assert_eq "$(field '["command"]')" "$cc" "connect_command and exec_interactive_hint"
  assert_eq "$cc" "berth exec -it d /bin/bash"
  b_ok hint d
  assert_eq "$B_OUT" "$cc" "berth hint"
  # run: no current directory unless --mount-cwd
  mkdir -p "$T_DIR/cwd"; echo marker >"$T_DIR/cwd/here.txt"; chmod -R a+rwX "$T_DIR/cwd"
  berth_cmd run --rm --network none localhost/busybox ls /workspace
  (cd "$T_DIR/cwd" && "${B_CMD[@]}") >"$T_DIR/run.out" 2>&1 || true
  assert_not_contains "$(cat "$T_DIR/run.out")" here.txt "run bound the current directory"
  berth_cmd run --rm --network none --mount-cwd localhost/busybox ls /workspace
  (cd "$T_DIR/cwd" && "${B_CMD[@]}") >"$T_DIR/run.out" 2>&1 || true
  assert_contains "$(cat "$T_DIR/run.out")" here.txt "run --mount-cwd"
  # an explicit mount at the workdir replaces the current directory's
  mkdir -p "$T_DIR/other"; echo other >"$T_DIR/other/o.txt"; chmod -R a+rwX "$T_DIR/other"
  berth_cmd create -q --name w -v "$T_DIR/other:/workspace" localhost/busybox
  (cd "$T_DIR/cwd" && "${B_CMD[@]}") >"$T_DIR/c.out" 2>&1 || fail "create: $(cat "$T_DIR/c.out")"
  b_ok exec w ls /workspace
  assert_eq "$B_OUT" o.txt "the explicit mount at the workdir"
  b_ok status --json w
  assert_eq "$(grep -c '"destination": "/workspace"' "$B_OUTF")" 1 "mounts listed at /workspace"
  # not_running
  b_ok create -q --no-mount-cwd --network none --name gone localhost/busybox
  b_run exec gone sh -c 'kill -TERM 1; sleep 5' # init ends every process, this exec's too
  local i
  for i in $(seq 1 50); do
    b_ok status --json gone
    grep -q '"running": false' "$B_OUTF" && break
    sleep 0.1
  done
  tool '{"operation":"exec","container":"gone","command":"true"}'
  assert_eq "$(field '["code"]')" not_running "exec on an exited container"
}

# a snapshot name taken again replaces its image and leaves no orphan; rmi
# takes a digest and a unique prefix; the parameter check and the operation
# agree on names
test_snapshot_reuse_rmi_digest() {
  setup_ctr
  b_ok create -q --no-mount-cwd --network none --name c localhost/busybox
  local i
  for i in 1 2 3; do
    b_ok exec c sh -c "echo $i >/f$i"
    tool '{"operation":"snapshot","container":"c","name":"snapa"}'
    assert_eq "$(field '["success"]')" true "snapshot $i"
  done
  b_ok images
  assert_not_contains "$B_OUT" "<none>" "an earlier image of a reused snapshot name"
  assert_eq "$(image_count)" 2 "images: busybox and snapa"
  tool '{"operation":"restore","snapshot":"snapa","name":"r"}'
  b_ok exec r cat /f3
  assert_eq "$B_OUT" 3
  tool '{"operation":"snapshot","container":"c","name":"snapA"}'
  assert_eq "$(field '["code"]')" invalid_value "an upper-case snapshot name, refused by the parameter check"
  # rmi by digest: sha256:<prefix>, a bare prefix; an unknown or malformed one is a clear error
  b_ok load -q --name other/copy:1 "$IMAGES/busybox"
  local d
  d=$(image_field docker.io/other/copy:1 digest)
  b_run rmi "sha256:zzzz"
  assert_eq "$B_RC" 125
  assert_contains "$B_ERR" "neither an image name nor a digest"
  # container c runs on that image: refused, naming it; --force takes the names only
  b_fails rmi "sha256:${d:7:12}"
  assert_contains "$B_MSG" "container \`c\`" "rmi of an image in use"
  b_ok rmi --force "sha256:${d:7:12}"
  assert_contains "$B_OUT" "$d"
  b_ok images --json
  assert_not_contains "$B_OUT" "other/copy" "every name of the image went with it"
  assert_not_contains "$B_OUT" "localhost/busybox" "busybox shared the digest, so it went too"
  assert_eq "$(image_count)" 2 "images: snapa and the unnamed one c uses"
}

# messages that say what to do, in the caller's terms
test_messages_name_the_fix() {
  setup_ctr
  need_registry 127.0.0.1:5000
  b_run pull 127.0.0.1:5000/no/such-image:1
  assert_eq "$B_RC" 125
  assert_contains "$B_ERR" "HTTP 404"
  assert_not_contains "$B_ERR" "No such file or directory" "a 404's message"
  write_config '{"default_image": "127.0.0.1:5000/no/such-image:1"}'
  tool '{"operation":"create","name":"d","mount_cwd":false}'
  assert_contains "$(field '["error"]')" "pass \`image\`"
  assert_contains "$(field '["error"]')" "default_image"
  assert_contains "$(field '["error"]')" "$BERTH_CONFIG" "the config file's path"
  assert_contains "$(field '["error"]')" "HTTP 404" "what the registry said"
  write_config '{}'
  b_ok create -q --no-mount-cwd --network none --name taken localhost/busybox
  tool '{"operation":"create","name":"taken","image":"localhost/busybox","mount_cwd":false}'
  assert_contains "$(field '["error"]')" "destroy operation" "the tool's reply names the tool's operation"
  assert_not_contains "$(field '["error"]')" "berth rm" "the tool's reply names no CLI command"
  b_run create -q --no-mount-cwd --network none --name taken localhost/busybox
  assert_contains "$B_ERR" "berth rm -f taken" "the CLI names the CLI command"
  b_run cp "$T_DIR/nonexistent" taken:/x
  assert_contains "$B_ERR" "(on the host)"
  b_run cp taken:/nonexistent "$T_DIR/x"
  assert_contains "$B_ERR" "(in the container)"
}

t_run "contract: lifecycle through berth tool" test_contract_lifecycle
t_run "snapshot, restore, delete_snapshot" test_snapshot_restore_delete
t_run "secrets stay off disk, out of replies and out of PID 1" test_secrets_stay_off_disk
t_run "contract: error paths" test_contract_error_paths
t_run "malformed requests get structured errors and change nothing" test_malformed_requests
t_run "MCP: the official SDK client drives berth mcp" test_mcp_sdk_client
t_run "embedding example (docs/examples/embed.c)" test_embedding_example
t_run "snapshot name reuse leaves no orphan; rmi by digest and prefix; names agree" test_snapshot_reuse_rmi_digest
t_run "messages name the fix: 404, default image, a name in use (tool and CLI), cp sides" test_messages_name_the_fix
t_run "CLI: unknown flags exit 125 with a hint; help per command" test_cli_strict_and_help
t_run "one shell for connect_command, hint and the tool; run binds no cwd; a mount at the workdir replaces it; not_running" test_cli_shell_cwd_not_running
t_summary
