#!/bin/bash
# Run berth's integration suites (tests/integration/test_*.sh, the image
# suite first) as root and as the unprivileged test user.
#
#   tests/integration/run.sh
#
# Environment:
#   BERTH_SUITES="test_images.sh ..."  which suites (default: all)
#   BERTH_SKIP_FIXTURES=1   do not run scripts/fixtures.sh first
#   BERTH_KEEP_FIXTURES=1   leave running the registry fixtures this run started
#                           (by default they are stopped at the end; those that
#                           ran before it are always left alone)
#   BERTH_MODES="root rootless"  which modes to run (default both)
#   BERTH_SERIAL=1          run every suite one mode after the other (default:
#                           suites marked parallel-modes run both modes at once)
#   BERTH_TEST_FILTER=REGEX, BERTH_KEEP=1, BERTH_SHOW_TIMES=1: see lib.sh
#
# Prints each suite's TAP-like lines, one "MODE: N passed, N failed" line per
# mode and a final "N passed, N failed" line; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
IT=$REPO/tests/integration
# every suite in this directory, the image suite first (others build on its fixtures)
if [ -n "${BERTH_SUITES:-}" ]; then
  SUITES=($BERTH_SUITES)
else
  SUITES=(test_images.sh)
  for f in "$IT"/test_*.sh; do
    [ "${f##*/}" = test_images.sh ] || SUITES+=("${f##*/}")
  done
  # the standing breakout suite (tests/security), by its path from here
  for f in "$REPO"/tests/security/test_*.sh; do
    SUITES+=("../security/${f##*/}")
  done
fi
MODES=(${BERTH_MODES:-root rootless})

if [ "$(id -u)" != 0 ]; then
  echo "run.sh: run as root (the rootless mode switches to the test user itself)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

total_pass=0
total_fail=0
setup_fail=0
t0=$EPOCHREALTIME

# the registry fixtures (scripts/registry.sh) this run starts are stopped when
# it ends, unless BERTH_KEEP_FIXTURES=1
regs_before=$(scripts/registry.sh running 2>/dev/null)
regs_done=0
stop_started_registries() {
  [ "$regs_done" = 0 ] || return 0
  regs_done=1
  local n started=()
  for n in $(scripts/registry.sh running 2>/dev/null); do
    grep -qxF "$n" <<<"$regs_before" || started+=("$n")
  done
  [ ${#started[@]} -gt 0 ] || return 0
  if [ "${BERTH_KEEP_FIXTURES:-0}" = 1 ]; then
    echo "# BERTH_KEEP_FIXTURES=1: the registry fixtures this run started keep running (${started[*]}); scripts/registry.sh stop stops them"
  else
    echo "# stopping the registry fixtures this run started (${started[*]}; BERTH_KEEP_FIXTURES=1 keeps them)"
    scripts/registry.sh stop "${started[@]}" >/dev/null 2>&1 ||
      echo "# scripts/registry.sh stop ${started[*]} failed"
  fi
}
trap 'stop_started_registries >&2' EXIT

if [ "${BERTH_SKIP_FIXTURES:-0}" != 1 ]; then
  echo "# scripts/fixtures.sh"
  if ! scripts/fixtures.sh; then
    echo "not ok - scripts/fixtures.sh (images, registries, pushes)"
    setup_fail=$((setup_fail + 1))
  fi
fi

for m in "${MODES[@]}"; do
  if [ "$m" = rootless ]; then
    echo "# scripts/setup-test-user.sh"
    if ! scripts/setup-test-user.sh; then
      echo "not ok - scripts/setup-test-user.sh (the rootless suite will fail its preconditions)"
      setup_fail=$((setup_fail + 1))
    fi
  fi
done

LOGS=$(mktemp -d /tmp/berth-it-logs.XXXXXX)
trap 'stop_started_registries >&2; rm -rf "$LOGS"' EXIT

# A suite whose header has the line "# berth-suite: parallel-modes" runs as
# root and rootless at the same time; the others run one mode after the other
# (the container suite's rootless cgroups trip over the root run's).
# a suite's log name: its path with / as _
logname() { echo "$1-${2//\//_}"; }
run_suite_mode() { # MODE SUITE
  local l
  l=$(logname "$1" "$2")
  BERTH_MODE=$1 bash "$IT/$2" >"$LOGS/$l.log" 2>&1 </dev/null
  echo $? >"$LOGS/$l.rc"
}
for s in "${SUITES[@]}"; do
  if [ "${BERTH_SERIAL:-0}" != 1 ] && grep -q '^# berth-suite: parallel-modes' "$IT/$s"; then
    pids=()
    for m in "${MODES[@]}"; do
      run_suite_mode "$m" "$s" &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    for m in "${MODES[@]}"; do
      echo "# === $s as $m"
      cat "$LOGS/$(logname "$m" "$s").log"
    done
  else
    for m in "${MODES[@]}"; do
      echo "# === $s as $m"
      l=$(logname "$m" "$s")
      BERTH_MODE=$m bash "$IT/$s" 2>&1 </dev/null | tee "$LOGS/$l.log"
      echo "${PIPESTATUS[0]}" >"$LOGS/$l.rc"
    done
  fi
done

summary_re='^([0-9]+) passed, ([0-9]+) failed$'
for m in "${MODES[@]}"; do
  mp=0
  mf=0
  for s in "${SUITES[@]}"; do
    l=$(logname "$m" "$s")
    log=$LOGS/$l.log
    line=$(grep -E "$summary_re" "$log" | tail -n 1)
    if [[ $line =~ $summary_re ]]; then
      mp=$((mp + BASH_REMATCH[1]))
      mf=$((mf + BASH_REMATCH[2]))
      # a suite that died after its summary, or failed without counting it
      if [ "$(cat "$LOGS/$l.rc")" != 0 ] && [ "${BASH_REMATCH[2]}" = 0 ]; then
        echo "not ok - $s ($m) exited $(cat "$LOGS/$l.rc") with no failed test"
        mf=$((mf + 1))
      fi
    else
      echo "not ok - $s ($m) ended without a summary line (exit $(cat "$LOGS/$l.rc" 2>/dev/null))"
      mf=$((mf + 1))
    fi
  done
  echo "$m: $mp passed, $mf failed"
  total_pass=$((total_pass + mp))
  total_fail=$((total_fail + mf))
done

total_fail=$((total_fail + setup_fail))
stop_started_registries
echo "# integration suites took $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.0f", b-a}') s"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
