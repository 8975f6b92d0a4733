#!/bin/bash
# `make test`: unit tests (Criterion), then the integration suites as root
# and as the unprivileged test user. Each suite prints its own summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -s all || exit 1
status=0
make -s unit || status=1
if [ "$(id -u)" -eq 0 ]; then
  scripts/setup-test-user.sh || status=1
else
  echo "test: not root: the rootless half needs the test user; run make test as root" >&2
fi
tests/integration/run.sh || status=1
# the request parser under libFuzzer (ASan/UBSan) for a bounded time
FUZZ_SECONDS=${FUZZ_SECONDS:-60} scripts/fuzz.sh || status=1
exit $status
