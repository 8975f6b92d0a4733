#!/bin/bash
# `make test`: unit tests (Criterion), then the integration suites as root
# and as the unprivileged test user, then the same on pure cgroup v2 in a VM
# (make test-vm). Each suite prints its own summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -s all || exit 1
status=0
# the layering of the modules, and the C style of .clang-format
make -s check-deps || status=1
make -s check-format || status=1
make -s unit || status=1
if [ "$(id -u)" -eq 0 ]; then
  scripts/setup-test-user.sh || status=1
else
  echo "test: not root: the rootless half needs the test user; run make test as root" >&2
fi
tests/integration/run.sh || status=1
# berth-oci against the OCI runtime conformance suite (runtime-tools validation)
if [ "$(id -u)" -eq 0 ]; then
  tests/oci/conformance.sh || status=1
fi
# pure cgroup v2 (this host may be hybrid): the suites in a VM per kernel, root and rootless
if [ "$(id -u)" -eq 0 ]; then
  scripts/vmtest/vmtest.sh || status=1
else
  echo "test: not root: skipping the cgroup v2 VM suites (scripts/vmtest/vmtest.sh needs root)" >&2
  status=1
fi
# the request parser under libFuzzer (ASan/UBSan) for a bounded time
FUZZ_SECONDS=${FUZZ_SECONDS:-60} scripts/fuzz.sh || status=1
exit $status
