#!/bin/bash
# Create the unprivileged test user with subordinate id ranges, so the
# suites can run rootless for real. Idempotent. Needs root.
set -euo pipefail
user=${BERTH_TEST_USER:-berthtest}
if ! id "$user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$user"
fi
# a range that does not overlap other users' ranges in a fresh install
grep -q "^$user:" /etc/subuid 2>/dev/null || echo "$user:200000:65536" >> /etc/subuid
grep -q "^$user:" /etc/subgid 2>/dev/null || echo "$user:200000:65536" >> /etc/subgid
# newuidmap/newgidmap must be setuid root (Debian's uidmap package is)
for b in newuidmap newgidmap; do
  p=$(command -v $b) || { echo "setup-test-user: $b missing: apt-get install uidmap" >&2; exit 1; }
  [ -u "$p" ] || getcap "$p" | grep -q cap_set || { echo "setup-test-user: $p lacks setuid" >&2; exit 1; }
done
# the rootless bridge network opens /dev/net/tun: apply preflight's fix
# where the host left it root-only (most distributions ship it 0666)
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
  echo "setup-test-user: chmod 0666 /dev/net/tun (berth preflight's fix for the rootless bridge network)"
  chmod 0666 /dev/net/tun
fi
echo "test user: $user ($(id -u "$user")), subuid $(grep "^$user:" /etc/subuid)"
