#!/bin/bash
# Second stage, PID 1 on the ext4 root: a pure cgroup v2 host laid out the
# way systemd does it, then the suites. Results go to the serial console
# between BERTH-VM-BEGIN and BERTH-VM-END lines.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t mqueue mqueue /dev/mqueue
mount -t tmpfs -o mode=755 run /run
mount --make-rshared /
hostname berth-vm
ulimit -n 65536
echo "BERTH-VM-BOOTED $(cut -d' ' -f1 /proc/uptime)"

# pure cgroup v2 with memory, pids and cpu
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
echo "+memory +pids +cpu" >/sys/fs/cgroup/cgroup.subtree_control
CG=/sys/fs/cgroup
U=1001
mkdir -p $CG/user.slice/user-0.slice/session-2.scope $CG/user.slice/user-$U.slice/session-1.scope \
  $CG/user.slice/user-$U.slice/user@$U.service $CG/system.slice
# systemd's user@.service delegation, as installed by docs/host-setup.md
mkdir -p /etc/systemd/system/user@.service.d /run/systemd/system
printf '[Service]\nDelegate=cpu cpuset io memory pids\n' >/etc/systemd/system/user@.service.d/delegate.conf
systemctl daemon-reload
chmod u+s /usr/bin/newuidmap /usr/bin/newgidmap /usr/bin/sudo /usr/bin/systemd-run
modprobe tun 2>/dev/null
chmod 0666 /dev/net/tun 2>/dev/null

filter=$(sed -n 's/.*berth\.filter=\([^ ]*\).*/\1/p' /proc/cmdline | base64 -d 2>/dev/null)
script=$(sed -n 's/.*berth\.script=\([^ ]*\).*/\1/p' /proc/cmdline | base64 -d 2>/dev/null)
if [ -n "$script" ]; then
  # BERTH_VM_SCRIPT on the host: a command to run here instead of the suites (debugging)
  echo "BERTH-VM-BEGIN"
  bash -c "$script" 2>&1
  echo "total: 0 passed, 0 failed"
  echo "BERTH-VM-END rc=0 pass=0 fail=0"
  sync
  poweroff -f
fi
echo "BERTH-VM-BEGIN"
echo "# kernel $(uname -r), cgroup v2 controllers: $(cat $CG/cgroup.controllers)"
BERTH_TEST_FILTER=$filter bash /repo/tests/vm/run-in-vm.sh 2>&1 | tee /tmp/vm-run.log
rc=${PIPESTATUS[0]}
line=$(grep -E '^total: [0-9]+ passed, [0-9]+ failed$' /tmp/vm-run.log | tail -n1)
p=$(echo "$line" | awk '{print $2}')
f=$(echo "$line" | awk '{print $4}')
[ -n "$line" ] || { p=0; f=1; }
echo "BERTH-VM-END rc=$rc pass=${p:-0} fail=${f:-1}"
sync
poweroff -f
