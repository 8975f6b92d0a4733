/* Static helper copied into test containers: tries syscalls a confined
 * workload must not be able to use and prints one line per attempt:
 *   NAME ok | NAME errno=NAME */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *what, long r) {
  if (r >= 0) printf("%s ok\n", what);
  else printf("%s errno=%s\n", what, strerrorname_np(errno));
}

int main(void) {
  report("unshare_user", unshare(CLONE_NEWUSER));
  report("unshare_mount", unshare(CLONE_NEWNS));
  report("mount", mount("tmpfs", "/tmp", "tmpfs", 0, NULL));
  report("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 1));
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  report("bpf", syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
  report("ptrace", syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0));
  report("clone_newuser", syscall(SYS_clone, CLONE_NEWUSER, 0, 0, 0, 0));
  report("reboot", syscall(SYS_reboot, 0xfee1dead, 0x28121969, 0x4321fedc, 0));
  report("chroot", chroot("/tmp"));
  return 0;
}
