#!/bin/bash
# `make test-vm`: berth's suites on pure cgroup v2, in a throwaway VM per
# kernel (qemu, TCG: no KVM needed). For each kernel package:
#   - apt-get download the Debian kernel, dpkg-deb -x it into
#     rootfs-cache/vm/ (nothing is installed into /boot), pull the
#     uncompressed vmlinux out of the bzImage (qemu boots it directly, PVH);
#   - a small initramfs (busybox-static, the modules for virtio disks, ext4,
#     overlay and tun) that mounts an ext4 root disk built here with
#     `mkfs.ext4 -d` (berth's build, its libraries, bash, jq, uidmap's
#     newuidmap/newgidmap, slirp4netns, usermod, the test suites, fixture
#     images) and switch_roots onto it (pivot_root cannot leave an initramfs);
#   - scripts/vmtest/stage2.sh there mounts pure cgroup v2, lays out users
#     and cgroups the way a systemd host does, and runs tests/vm/run-in-vm.sh;
#   - python3's standard library goes in too (tests/integration/test_oci.sh);
#   - the VM's serial console comes back here; its summary lines are counted.
#
#   scripts/vmtest/vmtest.sh                 # both kernels
#   BERTH_VM_KERNELS="linux-image-6.12-amd64" scripts/vmtest/vmtest.sh
#   BERTH_VM_FILTER=REGEX  run only tests whose name matches (in the VM)
#   BERTH_VM_KEEP=1        keep rootfs-cache/vm/run-* (disks, console logs)
#   BERTH_VM_SCRIPT='cmd'  run cmd in the VM (as root, after the setup) instead of the suites
#
# Ends with "N passed, N failed" alone on its line; non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
CACHE=$REPO/rootfs-cache/vm
VMT=$REPO/scripts/vmtest
# meta packages: resolved to the current ABI package at run time, so the
# matrix follows Debian's security updates (bookworm: 6.1; bookworm-security
# and bookworm-updates also carry the 6.12 series)
KERNELS=(${BERTH_VM_KERNELS:-linux-image-amd64 linux-image-6.12-amd64})
MODULES=(virtio_pci virtio_blk ext4 crc32c_generic overlay tun)
VM_MEM=${BERTH_VM_MEM:-2048}
VM_TIMEOUT=${BERTH_VM_TIMEOUT:-900}

say() { echo "# vmtest: $*"; }
t0=$EPOCHREALTIME
total_pass=0
total_fail=0
fail_setup() { echo "not ok - $*"; total_fail=$((total_fail + 1)); }
finish() {
  say "took $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.0f", b-a}') s"
  echo "$total_pass passed, $total_fail failed"
  [ "$total_fail" = 0 ]
  exit $?
}

for c in qemu-system-x86_64 busybox jq mkfs.ext4 xz zstd python3 gcc dpkg-deb apt-get depmod; do
  command -v "$c" >/dev/null || { fail_setup "vmtest: $c is missing (scripts/install-deps.sh installs it)"; finish; }
done
busybox_bin=$(command -v busybox)
file -L "$busybox_bin" 2>/dev/null | grep -q 'statically linked' || [ -x /bin/busybox ] || {
  fail_setup "vmtest: busybox-static is needed"; finish; }
busybox_bin=/bin/busybox
[ -x build/berth ] || make -s all || { fail_setup "vmtest: build failed"; finish; }

mkdir -p "$CACHE/debs"
chmod 700 "$CACHE"

# ---- fixture images (built offline; no registry is started) ---------------
for i in busybox multilayer; do
  [ -f rootfs-cache/images/$i/index.json ] || python3 tests/fixtures/mkimages.py --only busybox,multilayer >&2 ||
    { fail_setup "vmtest: mkimages.py failed"; finish; }
done

# ---- kernels ----------------------------------------------------------------
# kernel_pkg META: the linux-image-<abi> package META depends on
kernel_pkg() {
  local p
  p=$(apt-cache depends "$1" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  if [ -z "$p" ]; then
    # no apt lists: the newest one already downloaded
    case $1 in
      linux-image-amd64) p=$(ls "$CACHE/debs" 2>/dev/null | grep -E '^linux-image-6\.1\.0-[0-9]+-amd64_' | sort -V | tail -n1 | cut -d_ -f1) ;;
      linux-image-6.12-amd64) p=$(ls "$CACHE/debs" 2>/dev/null | grep -E '^linux-image-6\.12\.[0-9.]+\+deb12-amd64_' | sort -V | tail -n1 | cut -d_ -f1) ;;
      *) p=$1 ;;
    esac
  fi
  echo "$p"
}

# prepare_kernel PKG: $CACHE/k-VER/{vmlinux,mods/,modlist}; prints VER
prepare_kernel() {
  local pkg=$1 ver=${1#linux-image-} kd deb
  kd=$CACHE/k-$ver
  if [ -f "$kd/ready" ]; then echo "$ver"; return 0; fi
  deb=$(ls "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | head -n1)
  if [ -z "$deb" ]; then
    (cd "$CACHE/debs" && apt-get download -o APT::Sandbox::User=root "$pkg" >&2) || return 1
    deb=$(ls "$CACHE/debs/${pkg}_"*.deb | head -n1)
  fi
  rm -rf "$kd" && mkdir -p "$kd/x"
  dpkg-deb -x "$deb" "$kd/x" || return 1
  python3 "$VMT/extract-vmlinux.py" "$kd/x/boot/vmlinuz-$ver" "$kd/vmlinux" >&2 || return 1
  # the modules we load and what they need, uncompressed, in load order
  local md=$kd/x/lib/modules/$ver
  # the package ships no modules.dep (its postinst runs depmod)
  depmod -b "$kd/x" "$ver" || return 1
  python3 - "$md" "$kd/mods" "${MODULES[@]}" >&2 <<'EOF' || return 1
import os, subprocess, sys
md, out, want = sys.argv[1], sys.argv[2], sys.argv[3:]
deps = {}
for line in open(os.path.join(md, "modules.dep")):
    k, _, v = line.partition(":")
    deps[k.strip()] = v.split()
byname = {os.path.basename(k).split(".ko")[0].replace("-", "_"): k for k in deps}
order, seen = [], set()
def visit(path):
    if path in seen: return
    seen.add(path)
    for d in deps[path]: visit(d)
    order.append(path)
for w in want:
    if w not in byname:
        continue  # built in
    visit(byname[w])
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "load-order"), "w") as lo:
    for p in order:
        src = os.path.join(md, p)
        name = os.path.basename(p).split(".ko")[0] + ".ko"
        data = open(src, "rb").read()
        if p.endswith(".xz"): data = subprocess.run(["xz", "-dc"], input=data, stdout=subprocess.PIPE, check=True).stdout
        elif p.endswith(".zst"): data = subprocess.run(["zstd", "-dcq"], input=data, stdout=subprocess.PIPE, check=True).stdout
        open(os.path.join(out, name), "wb").write(data)
        lo.write(name + "\n")
# modules.dep for busybox modprobe inside the VM (flat dir, uncompressed names)
with open(os.path.join(out, "modules.dep"), "w") as f:
    flat = lambda p: os.path.basename(p).split(".ko")[0] + ".ko"
    for p in order:
        f.write("%s: %s\n" % (flat(p), " ".join(flat(d) for d in deps[p] if d in seen)))
EOF
  cp "$kd/x/boot/config-$ver" "$kd/config"
  rm -rf "$kd/x"
  touch "$kd/ready"
  echo "$ver"
}

# ---- the root filesystem (shared by every kernel) ----------------------------
ST=$CACHE/stage
copy_bin() { # FILE [DEST]: a binary and every library it loads
  local f=$1 dest=${2:-$1} l
  mkdir -p "$ST$(dirname "$dest")"
  cp -L "$f" "$ST$dest"
  for l in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*'); do
    [ -e "$ST$l" ] && continue
    mkdir -p "$ST$(dirname "$l")"
    cp -L "$l" "$ST$l"
  done
}
build_stage() {
  rm -rf "$ST" && mkdir -p "$ST"
  chmod 755 "$ST"
  mkdir -p "$ST"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev,run,home,var/tmp,mnt} "$ST/etc/sysctl.d" "$ST/etc/modules-load.d"
  chmod 1777 "$ST/tmp" "$ST/var/tmp"
  cp "$busybox_bin" "$ST/bin/busybox"
  local a
  for a in $("$busybox_bin" --list); do
    [ -e "$ST/bin/$a" ] || ln -s busybox "$ST/bin/$a"
  done
  copy_bin /bin/bash /bin/bash
  copy_bin "$(command -v jq)" /usr/bin/jq
  copy_bin /usr/bin/newuidmap && copy_bin /usr/bin/newgidmap
  copy_bin /usr/sbin/usermod
  copy_bin /usr/bin/slirp4netns
  # python3 and its standard library (no site-packages): test_oci.sh edits
  # bundles' config.json and receives the console socket's fd with it
  local py pylib so
  py=$(readlink -f /usr/bin/python3)
  pylib=$(/usr/bin/python3 -S -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
  copy_bin "$py" /usr/bin/python3
  mkdir -p "$ST$pylib"
  tar -C "$pylib" --exclude=./test --exclude=./site-packages --exclude=./dist-packages --exclude='__pycache__' -cf - . | tar -C "$ST$pylib" -xf -
  for so in "$pylib"/lib-dynload/*.so; do copy_bin "$so"; done
  # berth and the libraries it dlopen()s
  copy_bin "$REPO/build/berth" /usr/local/bin/berth
  copy_bin "$(ldconfig -p | awk '/libcurl.so.4 .*x86-64/{print $NF; exit}')"
  copy_bin "$(ldconfig -p | awk '/libarchive.so.13 .*x86-64/{print $NF; exit}')"
  # the stand-ins for sudo, systemd-run and runuser (setuid bits are set in the VM only)
  gcc -O2 -Wall -Wextra -Werror -o "$CACHE/vmsu" "$VMT/vmsu.c" || return 1
  copy_bin "$CACHE/vmsu" /usr/sbin/vmsu
  cp "$CACHE/vmsu" "$ST/usr/bin/sudo"
  cp "$CACHE/vmsu" "$ST/usr/bin/systemd-run"
  install -m 755 "$VMT/runuser" "$ST/usr/sbin/runuser"
  install -m 755 "$VMT/systemctl" "$ST/usr/bin/systemctl"
  install -m 755 "$VMT/stage2.sh" "$ST/sbin/vm-stage2"
  # the repository parts the suites use
  mkdir -p "$ST/repo/tests/integration" "$ST/repo/tests/vm" "$ST/repo/rootfs-cache/images" "$ST/repo/build"
  cp tests/integration/lib.sh tests/integration/test_oci.sh "$ST/repo/tests/integration/"
  cp tests/vm/*.sh "$ST/repo/tests/vm/"
  cp -a rootfs-cache/images/busybox rootfs-cache/images/multilayer "$ST/repo/rootfs-cache/images/"
  cp "$REPO/build/berth" "$ST/repo/build/berth"
  cat >"$ST/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/bash
berthtest:x:1001:1001::/home/berthtest:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$ST/etc/group" <<'EOF'
root:x:0:
berthtest:x:1001:
nogroup:x:65534:
EOF
  printf 'root:*:19000:0:99999:7:::\nberthtest:!:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' >"$ST/etc/shadow"
  chmod 640 "$ST/etc/shadow"
  printf 'berthtest:200000:65536\n' >"$ST/etc/subuid"
  printf 'berthtest:200000:65536\n' >"$ST/etc/subgid"
  printf 'passwd: files\ngroup: files\nshadow: files\n' >"$ST/etc/nsswitch.conf"
  echo berth-vm >"$ST/etc/hostname"
  mkdir -p "$ST/home/berthtest" && chown 1001:1001 "$ST/home/berthtest"
}

# build the stage when anything that goes into it is newer than it
stage_inputs=(build/berth "$VMT"/* tests/vm/*.sh tests/integration/lib.sh tests/integration/test_oci.sh rootfs-cache/images/busybox/index.json)
need_stage=0
[ -f "$CACHE/stage.ready" ] || need_stage=1
for f in "${stage_inputs[@]}"; do [ "$f" -nt "$CACHE/stage.ready" ] && need_stage=1; done
if [ $need_stage = 1 ]; then
  say "building the root filesystem in $ST"
  rm -f "$CACHE/stage.ready"
  build_stage || { fail_setup "vmtest: building the root filesystem failed"; finish; }
  touch "$CACHE/stage.ready"
fi

# initramfs: busybox, the modules, the first-stage init
build_initrd() { # VER OUT
  local ver=$1 out=$2 d
  d=$(mktemp -d "$CACHE/initrd.XXXXXX")
  mkdir -p "$d/bin" "$d/lib/modules/$ver" "$d/proc" "$d/sys" "$d/dev" "$d/newroot"
  cp "$busybox_bin" "$d/bin/busybox"
  cp "$CACHE/k-$ver/mods/"* "$d/lib/modules/$ver/"
  install -m 755 "$VMT/init" "$d/init"
  (cd "$d" && find . | "$busybox_bin" cpio -o -H newc 2>/dev/null) >"$out"
  rm -rf "$d"
}

# ---- run ----------------------------------------------------------------------
run_kernel() { # META
  local meta=$1 pkg ver run rc
  pkg=$(kernel_pkg "$meta")
  [ -n "$pkg" ] || { fail_setup "vmtest: cannot resolve $meta (apt-get update first)"; return; }
  say "kernel $meta -> $pkg"
  ver=$(prepare_kernel "$pkg") || { fail_setup "vmtest: preparing $pkg failed"; return; }
  run=$CACHE/run-$ver
  rm -rf "$run" && mkdir -p "$run"
  build_initrd "$ver" "$run/initrd.cpio"
  # the root disk: the stage as ext4 (user.* xattrs, unlike tmpfs before 6.6)
  local tb=$EPOCHREALTIME
  mkfs.ext4 -q -F -L berthroot -d "$ST" "$run/root.img" 3G >"$run/mkfs.log" 2>&1 ||
    { fail_setup "vmtest: mkfs.ext4 -d failed: $(cat "$run/mkfs.log")"; return; }
  # a small empty disk for the nearly-full-store case
  mkfs.ext4 -q -F -L berthsmall "$run/small.img" 1400M >>"$run/mkfs.log" 2>&1 ||
    { fail_setup "vmtest: mkfs.ext4 of the small disk failed"; return; }
  say "disks ready in $(awk -v a="$tb" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s; booting $ver under TCG"
  local append="console=ttyS0 cryptomgr.notests quiet loglevel=3 panic=-1 rw"
  append+=" berth.filter=$(printf %s "${BERTH_VM_FILTER:-}" | base64 -w0)"
  [ -n "${BERTH_VM_SCRIPT:-}" ] && append+=" berth.script=$(printf %s "$BERTH_VM_SCRIPT" | base64 -w0)"
  local tq=$EPOCHREALTIME
  timeout -k 10 "$VM_TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -m "$VM_MEM" -smp 2 \
    -kernel "$CACHE/k-$ver/vmlinux" -initrd "$run/initrd.cpio" -append "$append" \
    -drive file="$run/root.img",if=virtio,format=raw -drive file="$run/small.img",if=virtio,format=raw \
    -nic none -display none -serial "file:$run/console.log" -monitor none -no-reboot </dev/null >"$run/qemu.log" 2>&1
  rc=$?
  local secs
  secs=$(awk -v a="$tq" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.0f", b-a}')
  tr -d '\r' <"$run/console.log" >"$run/console.txt"
  local boot
  boot=$(grep -m1 '^BERTH-VM-BOOTED ' "$run/console.txt" | awk '{print $2}')
  # the suites' own output (TAP-like lines, comments, summaries)
  sed -n '/^BERTH-VM-BEGIN$/,/^BERTH-VM-END /p' "$run/console.txt" | sed '1d;$d' | sed "s/^/[$ver] /"
  local end
  end=$(grep -m1 '^BERTH-VM-END ' "$run/console.txt")
  if [ -z "$end" ]; then
    fail_setup "vmtest: $ver: the VM ended without a result (qemu exit $rc after ${secs}s); console tail:"
    tail -n 40 "$run/console.txt" | sed 's/^/    # /'
    cat "$run/qemu.log" | sed 's/^/    # qemu: /'
    return
  fi
  local re='^BERTH-VM-END rc=([0-9]+) pass=([0-9]+) fail=([0-9]+)$'
  [[ $end =~ $re ]] || { fail_setup "vmtest: $ver: bad end line: $end"; return; }
  total_pass=$((total_pass + BASH_REMATCH[2]))
  total_fail=$((total_fail + BASH_REMATCH[3]))
  if [ "${BASH_REMATCH[1]}" != 0 ] && [ "${BASH_REMATCH[3]}" = 0 ]; then
    fail_setup "vmtest: $ver: the in-VM run exited ${BASH_REMATCH[1]} with no failed test"
  fi
  say "$ver: booted to the test shell in ${boot:-?} s (guest uptime); VM ran ${secs}s: ${BASH_REMATCH[2]} passed, ${BASH_REMATCH[3]} failed"
  [ "${BERTH_VM_KEEP:-0}" = 1 ] || rm -f "$run/root.img" "$run/small.img" "$run/initrd.cpio"
}

for k in "${KERNELS[@]}"; do run_kernel "$k"; done
finish
