#!/bin/bash
# The guide's "Service Stack" (container-guide.md) through `berth tool`: a
# named network, postgres:16 and redis:7 run as services (the image's
# ENTRYPOINT and CMD as the main process, `env` going to it), and an app
# container on the same network that reaches both by name with psql and
# redis-cli. The images are the fixtures' postgres and redis
# (tests/fixtures/mkimages.py: Debian's postgresql 15 and redis 7, with
# postgresql-client and redis-tools in the postgres image), pulled as
# docker.io/library/... through the plain registry as the Docker Hub mirror.
. "$(dirname "$0")/lib.sh"

# need_tag REPO TAG IMAGE: the plain registry has REPO:TAG = the fixture image's manifest
need_tag() {
  local got want
  want=$(layout_digest "$3")
  got=$(curl -fsS -I --max-time 5 -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$BERTH_TEST_REGISTRY_PLAIN/v2/$1/manifests/$2" 2>/dev/null | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}') || true
  [ "$got" = "$want" ] ||
    fail "precondition: $BERTH_TEST_REGISTRY_PLAIN/$1:$2 is '${got:-missing}', expected $want: run scripts/fixtures.sh"
}

# take the stack down: the containers, then the network (each step may have
# been done already, or never)
stack_down() {
  local c
  for c in my-app my-cache my-db; do
    tool '{"operation":"destroy","container":"'$c'","force":true}' >/dev/null 2>&1 || true
  done
  tool '{"operation":"destroy_network","name":"my-stack"}' >/dev/null 2>&1 || true
}

# texec CONTAINER COMMAND: the tool's exec (COMMAND is run by /bin/sh -c in
# the container, so "$DATABASE_URL" is the container's); reply in $B_OUTF
texec() {
  tool "$("$PY" -c 'import json,sys; print(json.dumps({"operation": "exec", "container": sys.argv[1], "command": sys.argv[2], "timeout": 60}))' "$1" "$2")"
  [ "$B_RC" = 0 ] || fail "exec in $1 failed: $(cat "$B_OUTF")"
}

# wait_for CONTAINER COMMAND WHAT: exec COMMAND until it succeeds, at most 30 s
wait_for() {
  local deadline=$((SECONDS + 30))
  while :; do
    texec "$1" "$2"
    [ "$(field '["returncode"]')" = 0 ] && return 0
    if [ $SECONDS -ge $deadline ]; then
      b_run logs my-db
      b_run logs my-cache
      fail "$3 not ready after 30 s (the services' logs are above)"
    fi
    sleep 0.5
  done
}

test_service_stack() {
  need_registry "$BERTH_TEST_REGISTRY_PLAIN"
  need_tag library/postgres 16 postgres
  need_tag library/redis 7 redis
  write_config "{\"registry_mirrors\": {\"docker.io\": [\"$BERTH_TEST_REGISTRY_PLAIN\"]}}"
  trap 'stack_down; b_run rm --all --confirm -f >/dev/null 2>&1 || true; rm_networks' EXIT

  tool '{"operation":"create_network","name":"my-stack"}'
  assert_eq "$B_RC" 0 "create_network: $(cat "$B_OUTF")"

  tool '{"operation":"create","name":"my-db","image":"postgres:16","mount_cwd":false,"network":"my-stack",
         "env":{"POSTGRES_PASSWORD":"dev","POSTGRES_DB":"app"}}'
  assert_eq "$B_RC" 0 "create my-db: $(cat "$B_OUTF")"
  assert_eq "$(field '["mode"]')" service "my-db runs postgres:16's entrypoint and command"

  tool '{"operation":"create","name":"my-cache","image":"redis:7","mount_cwd":false,"network":"my-stack"}'
  assert_eq "$B_RC" 0 "create my-cache: $(cat "$B_OUTF")"
  assert_eq "$(field '["mode"]')" service "my-cache runs redis:7's command"

  # the app: the postgres image has psql and redis-cli; keep_alive keeps it a
  # container to exec in rather than a second database
  tool '{"operation":"create","name":"my-app","image":"postgres:16","keep_alive":true,"mount_cwd":false,"network":"my-stack",
         "env":{"DATABASE_URL":"postgresql://postgres:dev@my-db:5432/app","REDIS_URL":"redis://my-cache:6379"}}'
  assert_eq "$B_RC" 0 "create my-app: $(cat "$B_OUTF")"

  tool '{"operation":"list"}'
  for c in my-db my-cache my-app; do
    assert_contains "$(cat "$B_OUTF")" "\"$c\"" "list"
  done

  # the database initialises (initdb, the app database) and then listens on the network
  wait_for my-app "pg_isready -h my-db" "postgres on my-db:5432"
  texec my-app 'psql -At "$DATABASE_URL" -c "create table t(x int); insert into t values (42); select x from t"'
  assert_eq "$(field '["returncode"]')" 0 "psql with the password over TCP: $(cat "$B_OUTF")"
  grep -qx 42 <<<"$(field '["stdout"]')" || fail "psql did not print 42: $(cat "$B_OUTF")"

  wait_for my-app 'redis-cli -u "$REDIS_URL" ping' "redis on my-cache:6379"
  texec my-app 'redis-cli -u "$REDIS_URL" set k v'
  assert_eq "$(field '["returncode"]')" 0 "redis-cli set: $(cat "$B_OUTF")"
  assert_eq "$(field '["stdout"]')" OK "redis-cli set"
  texec my-app 'redis-cli -u "$REDIS_URL" get k'
  assert_eq "$(field '["stdout"]')" v "redis-cli get"

  # the services' output is kept
  b_ok logs my-db
  assert_contains "$B_OUT$B_ERR" "database system is ready to accept connections" "berth logs my-db"
  assert_contains "$B_OUT$B_ERR" "PostgreSQL init process complete" "berth logs my-db (the entrypoint's own lines)"
  b_ok logs my-cache
  assert_contains "$B_OUT$B_ERR" "Ready to accept connections" "berth logs my-cache"

  # down: containers first (the network refuses while they are attached), then the network
  for c in my-app my-cache my-db; do
    tool '{"operation":"destroy","container":"'$c'"}'
    assert_eq "$B_RC" 0 "destroy $c: $(cat "$B_OUTF")"
  done
  tool '{"operation":"destroy_network","name":"my-stack"}'
  assert_eq "$B_RC" 0 "destroy_network: $(cat "$B_OUTF")"
  tool '{"operation":"list"}'
  assert_eq "$(field '["count"]')" 0 "containers left"
  [ ! -e "$BERTH_ROOT/networks/my-stack" ] || fail "network state left behind"
}

t_run "the guide's service stack: postgres:16 and redis:7 as services, an app reaching both by name" test_service_stack
t_summary
