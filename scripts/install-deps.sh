#!/bin/bash
# Install everything berth needs to build, test and demo on Debian 12.
# Quick when all is present; needs root (or sudo) otherwise.
set -euo pipefail
pkgs=(
  build-essential pkg-config ca-certificates
  libcurl4-openssl-dev libarchive-dev libjansson-dev libseccomp-dev libcap-dev libssl-dev libyaml-dev
  libcriterion-dev
  uidmap attr curl openssl python3 zstd
  # networking: berth0 (root) and slirp4netns (rootless, named networks); ip for tests
  nftables iproute2
  # the root filesystem where overlayfs cannot be mounted (else a copy)
  fuse-overlayfs
  busybox-static debootstrap
  docker-registry apache2-utils
  tmux clang libclang-rt-14-dev
  # make check-format (the style in .clang-format)
  clang-format
  # make test-vm: qemu boots Debian kernels fetched with apt-get download
  qemu-system-x86 kmod jq e2fsprogs xz-utils slirp4netns passwd
  # tests/integration/test_oci_engines.sh: berth-oci under real engines. podman
  # with its network stack named (--no-install-recommends leaves netavark out,
  # and podman then falls back to CNI plugins that are not installed), crun
  # (podman's default runtime, the suite's and bench/start.sh's reference),
  # containerd (ctr, and runc by dependency); bench/start.sh times with hyperfine
  podman crun conmon netavark aardvark-dns catatonit iptables containerd hyperfine
)
# the MCP test drives berth with the official TypeScript SDK (Node >= 18)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
