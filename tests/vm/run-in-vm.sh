#!/bin/bash
# Runs inside the test VM (scripts/vmtest/stage2.sh starts it as root):
# the cgroup v2 container suite and berth-oci's suite (tests/integration/
# test_oci.sh) as root and as the test user, then the preflight-guided setup
# suite as the test user. Ends with
# "total: N passed, N failed".
cd "$(dirname "$0")"
CG=/sys/fs/cgroup
pass=0
fail=0
count() { # LOG RC
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n1)
  if [ -z "$line" ]; then
    echo "not ok - a suite ended without a summary line (exit $2)"
    fail=$((fail + 1))
    return
  fi
  pass=$((pass + $(echo "$line" | awk '{print $1}')))
  fail=$((fail + $(echo "$line" | awk '{print $3}')))
  if [ "$2" != 0 ] && [ "$(echo "$line" | awk '{print $3}')" = 0 ]; then
    echo "not ok - a suite exited $2 with no failed test"
    fail=$((fail + 1))
  fi
}
t0=$(cut -d' ' -f1 /proc/uptime)
# root works from a login session's cgroup, shared with its shell (as on a systemd host)
echo "# === test_cgroup_v2.sh as root (from user-0.slice/session-2.scope)"
(echo $BASHPID >$CG/user.slice/user-0.slice/session-2.scope/cgroup.procs && BERTH_MODE=root exec bash test_cgroup_v2.sh) 2>&1 | tee /tmp/root.log
count /tmp/root.log "${PIPESTATUS[0]}"
# the test user's commands start in its login session and reach berth through systemd-run (see scripts/vmtest/runuser)
echo "# === test_cgroup_v2.sh as berthtest"
BERTH_MODE=rootless bash test_cgroup_v2.sh 2>&1 | tee /tmp/rootless.log
count /tmp/rootless.log "${PIPESTATUS[0]}"
# berth-oci on pure v2: root from its session (runc's rule: a relative cgroup
# path goes below the parent of the session scope, which holds the shell);
# the test user from its session (refused) and from a delegated scope
echo "# === test_oci.sh as root (from user-0.slice/session-2.scope)"
(echo $BASHPID >$CG/user.slice/user-0.slice/session-2.scope/cgroup.procs && BERTH_MODE=root exec bash ../integration/test_oci.sh) 2>&1 | tee /tmp/oci-root.log
count /tmp/oci-root.log "${PIPESTATUS[0]}"
echo "# === test_oci.sh as berthtest"
BERTH_MODE=rootless bash ../integration/test_oci.sh 2>&1 | tee /tmp/oci-rootless.log
count /tmp/oci-rootless.log "${PIPESTATUS[0]}"
echo "# === test_preflight_fix.sh as berthtest"
BERTH_MODE=rootless bash test_preflight_fix.sh 2>&1 | tee /tmp/preflight.log
count /tmp/preflight.log "${PIPESTATUS[0]}"
echo "# in-VM suites took $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.0f", b-a}') s"
echo "total: $pass passed, $fail failed"
[ "$fail" = 0 ]
