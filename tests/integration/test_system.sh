#!/bin/bash
# Disk use and garbage: `berth system df`, `berth system prune`, rmi of an
# image in use, `berth commit`, `berth snapshot ls|rm`. Run as root and
# rootless (BERTH_MODE). Sizes are checked against du of the data dir.
. "$(dirname "$0")/lib.sh"

PLAIN=$BERTH_TEST_REGISTRY_PLAIN
create() { b_ok create -q --no-mount-cwd --network none "$@" localhost/busybox; }
# run a one-shot that stays exited (no --rm)
run_exited() { b_ok run --no-mount-cwd --network none "$@"; }
# disk use of paths as du counts it (each inode once, one filesystem)
du_b() { du -sxB1 -c "$@" | tail -n 1 | cut -f1; }
# a Python expression over the last reply (d), e.g. jx 'd["containers"]["size"]'; strings raw, the rest as JSON
jx() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(v if isinstance(v,str) else json.dumps(v))' "$B_OUTF" "$1"; }
# |A - B| <= TOL
assert_near() { # A B TOL WHAT
  awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN{d=a-b; if (d<0) d=-d; exit !(d<=t)}' ||
    fail "$4: $1 and $2 differ by more than $3"
}
# a file the mode's user owns (rootless: the user namespace's root)
own() { [ "$BERTH_MODE" = rootless ] && chown -R "$TEST_USER:" "$@"; return 0; }
# berth under a terminal (script), typing $1 at its prompt; output in $B_OUT, exit in $B_RC
b_tty() {
  local answer=$1; shift
  berth_cmd "$@"
  local a cmd=""
  # the terminal's foreground group must be berth's own
  for a in "${B_CMD[@]}"; do
    if [ "$a" = timeout ]; then cmd+="timeout --foreground "; else printf -v a '%q ' "$a"; cmd+=$a; fi
  done
  echo "\$ berth $* (on a terminal, answering '$answer')"
  B_RC=0
  B_OUT=$(printf '%s\n' "$answer" | script -qec "$cmd" /dev/null 2>&1) || B_RC=$?
  echo "$B_OUT" | sed 's/^/# tty: /'
}

test_prune_containers_bytes_match_du() {
  setup_ctr
  create --name up
  run_exited --persistent --name keep localhost/busybox true
  run_exited --name gone localhost/busybox sh -c 'dd if=/dev/zero of=/big bs=1M count=3 2>/dev/null; echo x >/small'
  # not on a terminal and no -f: refused, nothing removed
  b_fails system prune
  assert_contains "$B_MSG" "-f" "the refusal names the flag"
  b_ok ls -aq
  assert_contains "$B_OUT" gone "a refused prune removes nothing"
  b_ok system prune --dry-run --json
  assert_eq "$(jx '[c["name"] for c in d["containers"]]')" '["gone"]' "the dry run lists only the exited, non-persistent one"
  local before after freed
  before=$(du_b "$BERTH_ROOT")
  b_ok system prune -f --json
  after=$(du_b "$BERTH_ROOT")
  freed=$(jx 'd["bytes_freed"]')
  log "du shrank by $((before - after)), prune says $freed"
  assert_eq "$(jx '[c["name"] for c in d["containers"]]')" '["gone"]' "containers removed"
  assert_ge "$freed" $((3 << 20)) "bytes freed (3 MiB were written)"
  assert_near "$freed" $((before - after)) 65536 "bytes freed vs the data dir's measured shrink"
  assert_not_exists "$BERTH_ROOT/containers/gone"
  b_ok ls -a --json
  assert_contains "$B_OUT" '"up"' "the running container stays"
  assert_contains "$B_OUT" '"keep"' "the persistent exited container stays"
  b_ok exec up true
  b_ok images
  assert_contains "$B_OUT" "localhost/busybox" "an image in use stays"
  # nothing left: a second prune frees nothing
  b_ok system prune -f --volumes-if-any
  assert_contains "$B_OUT" "no volumes" "--volumes-if-any is accepted and says there are none"
}

test_prune_asks_on_a_terminal() {
  need_cmd script "util-linux"
  setup_ctr
  run_exited --name gone localhost/busybox true
  b_tty n system prune
  assert_contains "$B_OUT" "WARNING! This will remove" "the prompt"
  assert_contains "$B_OUT" "gone" "the prompt lists what goes"
  assert_contains "$B_OUT" "Nothing removed" "answered no"
  assert_exists "$BERTH_ROOT/containers/gone" "a container kept after 'n'"
  b_tty y system prune
  assert_eq "$B_RC" 0 "prune after 'y'"
  assert_contains "$B_OUT" "Total reclaimed space" "the report"
  assert_not_exists "$BERTH_ROOT/containers/gone" "the container after 'y'"
}

test_prune_dangling_then_all() {
  need_registry "$PLAIN"
  need_repo "$PLAIN" test/multilayer "$(fixture_digest multilayer)"
  setup_ctr
  create --name u
  b_ok pull -q "$PLAIN/test/multilayer"
  local ml; ml=$(fixture_layers multilayer)
  # a name loaded again onto another image: the image it had is dangling
  b_ok load -q --name localhost/tmpimg "$IMAGES/zstd"
  local z; z=$(image_field localhost/tmpimg:latest digest)
  b_ok load -q --name localhost/tmpimg "$IMAGES/nomediatype"
  local zonly shared
  shared=$(fixture_layers busybox)
  zonly=$(fixture_layers zstd | grep -v "$shared")
  [ -n "$zonly" ] || fail "precondition: the zstd fixture has a layer of its own"
  b_ok images
  assert_contains "$B_OUT" "<none>" "the dangling image"
  b_ok system prune -f --json
  assert_eq "$(jx '[i["digest"] for i in d["images"]]')" "[\"$z\"]" "without --all only the dangling image goes"
  assert_not_exists "$STORE/layers/${zonly#sha256:}" "its own layer"
  assert_dir_nonempty "$STORE/layers/${shared#sha256:}/diff" "the layer busybox shares"
  b_ok images
  assert_contains "$B_OUT" "$PLAIN/test/multilayer" "a named image stays without --all"
  local before after
  before=$(du_b "$BERTH_ROOT")
  b_ok system prune --all -f --json
  after=$(du_b "$BERTH_ROOT")
  log "du shrank by $((before - after)), prune says $(jx 'd["bytes_freed"]')"
  assert_near "$(jx 'd["bytes_freed"]')" $((before - after)) 65536 "bytes freed vs the measured shrink"
  assert_contains "$B_OUT" "$(fixture_digest multilayer)" "--all removes the unused pulled image"
  local l
  for l in $ml; do assert_not_exists "$STORE/layers/${l#sha256:}" "multilayer's layer $l"; done
  b_ok images --json
  assert_not_contains "$B_OUT" "test/multilayer"
  assert_not_contains "$B_OUT" "localhost/tmpimg" "the other unused image"
  assert_contains "$B_OUT" "localhost/busybox" "the image a container uses"
  b_ok exec u true
  assert_store_consistent
}

test_rmi_in_use_names_the_container() {
  setup_ctr
  create --name user1
  run_exited --name stopped1 localhost/busybox true
  local d; d=$(image_field localhost/busybox:latest digest)
  b_fails rmi localhost/busybox
  assert_contains "$B_MSG" "\`user1\`" "rmi names the running container"
  assert_contains "$B_MSG" "\`stopped1\`" "and the exited one, which keeps it too"
  assert_contains "$B_MSG" "--force" "and says what to do"
  b_fails rmi "${d:7:12}"
  assert_contains "$B_MSG" "user1" "rmi by digest prefix too"
  b_ok images
  assert_contains "$B_OUT" "localhost/busybox" "a refused rmi keeps the name"
  # --force: the name goes, the image and its layer stay for the containers
  b_ok rmi --force localhost/busybox
  assert_contains "$B_OUT" "Kept image" "rmi --force of an image in use"
  b_ok images
  assert_contains "$B_OUT" "<none>" "the image stays, unnamed"
  b_ok exec user1 true
  b_ok system prune --dry-run --json
  assert_eq "$(jx '[i["digest"] for i in d["images"]]')" '[]' "an unnamed image a kept container uses is no garbage"
  b_ok rm -f user1
  b_ok system prune -f --json
  assert_eq "$(jx '[c["name"] for c in d["containers"]]')" '["stopped1"]'
  assert_eq "$(jx '[i["digest"] for i in d["images"]]')" "[\"$d\"]" "once its containers are gone, it goes"
  assert_store_empty
}

test_commit_runs_in_a_new_container() {
  setup_ctr
  create --name src
  b_ok exec src sh -c 'echo written-in-src >/root/hello; rm /etc/group'
  b_ok commit src localhost/committed:1
  local d=$B_OUT
  assert_contains "$d" "sha256:" "commit prints the digest"
  assert_eq "$(image_field localhost/committed:1 digest)" "$d" "the image has that digest"
  b_ok run --rm --no-mount-cwd --network none localhost/committed:1 sh -c 'cat /root/hello; test -e /etc/group && echo group || echo no-group'
  assert_eq "$B_OUT" $'written-in-src\nno-group' "a new container sees the file, and the deletion"
  b_ok commit --json src
  assert_eq "$(jx 'd["image"]')" "localhost/src:latest" "the default name"
  b_fails commit nosuch
  assert_contains "$B_MSG" "nosuch"
  b_fails commit src 'Bad Ref'
  # the committed image is in use by nobody: prune --all takes it, the source's stays
  b_ok system prune --all -f --json
  b_ok images
  assert_not_contains "$B_OUT" "committed" "an unused commit goes with --all"
  assert_contains "$B_OUT" "localhost/busybox"
}

test_snapshot_ls_rm() {
  setup_ctr
  create --name c
  b_ok exec c sh -c 'echo s >/root/s'
  tool '{"operation":"snapshot","container":"c","name":"s1"}'
  assert_eq "$(jx 'd["success"]')" true
  b_ok snapshot ls
  assert_contains "$B_OUT" "s1"
  b_ok snapshot ls --json
  assert_eq "$(jx '[s["name"] for s in d]')" '["s1"]'
  assert_eq "$(jx '[s["containers"] for s in d]')" '[[]]'
  tool '{"operation":"restore","snapshot":"s1","name":"r1"}'
  b_ok snapshot ls --json
  assert_eq "$(jx '[s["containers"] for s in d]')" '[["r1"]]' "USED BY the restored container"
  b_fails snapshot rm s1
  assert_contains "$B_MSG" "r1" "snapshot rm names the container made from it"
  assert_contains "$B_MSG" "snapshot rm -f s1" "in this command's terms"
  b_ok rm -f r1
  b_ok snapshot rm s1
  assert_contains "$B_OUT" "Deleted snapshot s1"
  b_ok snapshot ls --json
  assert_eq "$(jx 'd')" '[]'
  b_fails snapshot rm s1
  assert_contains "$B_MSG" "no snapshot"
  b_fails snapshot rm 'Bad/Name'
}

test_df_matches_du() {
  setup_ctr
  create --name running1
  b_ok exec running1 sh -c 'dd if=/dev/zero of=/data bs=1M count=2 2>/dev/null'
  run_exited --name exited1 localhost/busybox sh -c 'dd if=/dev/zero of=/data bs=1M count=1 2>/dev/null'
  run_exited --persistent --name kept1 localhost/busybox true
  # what a snapshot killed midway leaves: its process (a dead pid) is gone
  mkdir -p "$STORE/tmp/snap-999999-1-dead"
  head -c 200000 /dev/urandom >"$STORE/tmp/snap-999999-1-dead/layer.tar"
  own "$STORE/tmp/snap-999999-1-dead"
  b_ok system df --json
  assert_eq "$(jx 'd["data_dir"]')" "$BERTH_ROOT"
  assert_eq "$(jx 'd["containers"]["count"]')" 3
  assert_eq "$(jx 'd["containers"]["active"]')" 1 "running containers"
  local c_run c_ex c_kept
  c_run=$(du_b "$BERTH_ROOT/containers/running1")
  c_ex=$(du_b "$BERTH_ROOT/containers/exited1")
  c_kept=$(du_b "$BERTH_ROOT/containers/kept1")
  assert_near "$(jx 'd["containers"]["size"]')" $((c_run + c_ex + c_kept)) 16384 "containers' size vs du"
  assert_eq "$(jx 'd["containers"]["reclaimable"]')" "$(jx '[c["size"] for c in d["containers"]["items"] if c["name"]=="exited1"][0]')" \
    "reclaimable: the exited, non-persistent one"
  assert_near "$(jx '[c["size"] for c in d["containers"]["items"] if c["name"]=="exited1"][0]')" "$c_ex" 8192 "exited1 vs du"
  assert_ge "$(jx '[c["size"] for c in d["containers"]["items"] if c["name"]=="running1"][0]')" $((2 << 20)) "running1 holds its 2 MiB"
  local layers
  layers=$(cd "$STORE/layers" && du_b ./*)
  assert_eq "$(jx 'd["layers"]["size"]')" "$layers" "layers' size vs du"
  assert_eq "$(jx 'd["images"]["count"]')" 1
  assert_eq "$(jx 'd["images"]["active"]')" 1
  assert_eq "$(jx 'd["images"]["reclaimable"]')" 0 "an image in use is not reclaimable"
  assert_eq "$(jx 'd["leftovers"]["reclaimable"]')" "$(du_b "$STORE/tmp/snap-999999-1-dead")" "the dead snapshot's leftovers vs du"
  assert_near "$(jx 'd["total_size"]')" "$(du_b "$BERTH_ROOT")" 131072 "the data dir in all vs du"
  b_ok system df
  assert_contains "$B_OUT" "Containers" "the table"
  # prune takes the exited container and the leftover, nothing else
  local before after
  before=$(du_b "$BERTH_ROOT")
  b_ok system prune -f --json
  after=$(du_b "$BERTH_ROOT")
  assert_eq "$(jx '[l["path"] for l in d["leftovers"]]')" '["storage/tmp/snap-999999-1-dead"]'
  assert_near "$(jx 'd["bytes_freed"]')" $((before - after)) 65536 "bytes freed vs the measured shrink"
  assert_not_exists "$STORE/tmp/snap-999999-1-dead"
  b_ok system df --json
  assert_eq "$(jx 'd["containers"]["reclaimable"]')" 0
  assert_eq "$(jx 'd["leftovers"]["reclaimable"]')" 0
}

# what prune cannot be sure of, it leaves: images while a create is under
# way (it may be about to use any), unused layers while a record is unreadable
test_prune_holds_back_when_unsure() {
  setup_ctr
  local fake=$STORE/layers/$(printf 'b%.0s' {1..64})
  mkdir -p "$fake/diff"
  head -c 50000 /dev/urandom >"$fake/diff/f"
  own "$fake"
  # a create that has made its directory and not yet its record
  mkdir -p "$BERTH_ROOT/containers/inprog"
  own "$BERTH_ROOT/containers"
  b_ok system prune --all -f --json
  assert_eq "$(jx '[i["digest"] for i in d["images"]]')" '[]' "no image goes while a create is under way"
  assert_contains "$(jx 'd["notes"]')" "being created"
  assert_eq "$(jx '[l["digest"] for l in d["layers"]]')" "[\"sha256:${fake##*/}\"]" "an unused layer still goes"
  rmdir "$BERTH_ROOT/containers/inprog"
  mkdir -p "$fake/diff"
  own "$fake"
  local junk=$STORE/images/$(printf 'e%.0s' {1..64}).json
  echo 'not json' >"$junk"
  own "$junk"
  b_ok system prune -f --json
  assert_eq "$(jx 'd["layers"]')" '[]' "no layer goes while an image record cannot be read"
  assert_contains "$(jx 'd["notes"]')" "cannot be read"
  assert_exists "$fake"
  rm -f "$junk"
  b_ok system prune --all -f --json
  assert_not_exists "$fake"
  assert_contains "$(jx '[i["names"] for i in d["images"]]')" "localhost/busybox" "with nothing in doubt, --all takes the unused image"
}

# root: a disk limit's writable layer is an image file; df counts its blocks
test_df_disk_limit() {
  setup_ctr
  b_ok create -q --no-mount-cwd --network none --disk 32m --name d localhost/busybox
  b_ok exec d sh -c 'dd if=/dev/urandom of=/data bs=1M count=4 2>/dev/null; sync'
  b_ok system df --json
  local sz
  sz=$(jx '[c["size"] for c in d["containers"]["items"] if c["name"]=="d"][0]')
  assert_ge "$sz" $((4 << 20)) "the container's size holds its 4 MiB"
  assert_le "$sz" $((16 << 20)) "the 32 MiB image counts only what it holds"
  assert_near "$sz" "$(du_b "$BERTH_ROOT/containers/d")" 16384 "disk-limited container vs du -x"
}

t_run "prune: exited containers go, running, persistent and images in use stay; bytes freed match du" test_prune_containers_bytes_match_du
t_run "prune: asks on a terminal, and does what the answer says" test_prune_asks_on_a_terminal
t_run "prune: dangling images first, --all every unused image and its layers" test_prune_dangling_then_all
t_run "rmi of an image in use names the container; --force leaves it unnamed for prune" test_rmi_in_use_names_the_container
t_run "commit: a new container runs the image and sees the first one's file" test_commit_runs_in_a_new_container
t_run "snapshot ls and rm" test_snapshot_ls_rm
t_run "df: figures agree with du" test_df_matches_du
t_run "prune leaves what it cannot be sure of" test_prune_holds_back_when_unsure
if [ "$BERTH_MODE" = root ]; then
  t_run "df: a disk-limited container counts its image's blocks" test_df_disk_limit
fi
t_summary
