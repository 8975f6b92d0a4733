/* Static helper copied into test containers: tries syscalls a confined
 * workload must not be able to use and prints one line per attempt:
 *   NAME ok | NAME errno=NAME */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *what, long r) {
  if (r >= 0) printf("%s ok\n", what);
  else printf("%s errno=%s\n", what, strerrorname_np(errno));
}

/* `probe agent`: ask $SSH_AUTH_SOCK for its identities, print how many */
static int agent(void) {
  const char *path = getenv("SSH_AUTH_SOCK");
  if (!path) { puts("agent no-SSH_AUTH_SOCK"); return 1; }
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strncpy(a.sun_path, path, sizeof a.sun_path - 1);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { printf("agent connect errno=%s\n", strerrorname_np(errno)); return 1; }
  unsigned char req[5] = {0, 0, 0, 1, 11}; /* SSH_AGENTC_REQUEST_IDENTITIES */
  if (write(s, req, 5) != 5) return 1;
  unsigned char rep[9];
  if (read(s, rep, 9) < 9 || rep[4] != 12) { puts("agent bad-reply"); return 1; }
  printf("agent identities=%u\n", (unsigned)rep[5] << 24 | rep[6] << 16 | rep[7] << 8 | rep[8]);
  return 0;
}

/* `probe udprecv PORT`: wait (5 s) for one UDP datagram on PORT and print it */
static int udprecv(const char *port) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) { printf("udprecv bind errno=%s\n", strerrorname_np(errno)); return 1; }
  struct timeval tv = {5, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[256];
  ssize_t n = recv(s, buf, sizeof buf - 1, 0);
  if (n < 0) { puts("udprecv timeout"); return 1; }
  buf[n] = 0;
  printf("udprecv %s", buf);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 2 && !strcmp(argv[1], "udprecv")) return udprecv(argv[2]);
  if (argc > 1 && !strcmp(argv[1], "agent")) return agent();
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
  /* the rest of the EPERM list (profiles/seccomp/default.json) */
  report("kexec_load", syscall(SYS_kexec_load, 0, 0, 0, 0));
  report("init_module", syscall(SYS_init_module, 0, 0, ""));
  report("finit_module", syscall(SYS_finit_module, -1, "", 0));
  report("delete_module", syscall(SYS_delete_module, "nosuch", 0));
  report("perf_event_open", syscall(SYS_perf_event_open, 0, 0, -1, -1, 0));
  report("userfaultfd", syscall(SYS_userfaultfd, 0));
  report("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, 0, 0));
  report("pivot_root", syscall(SYS_pivot_root, "/", "/"));
  report("umount2", syscall(SYS_umount2, "/proc", 0));
  report("move_mount", syscall(SYS_move_mount, -1, "", -1, "", 0));
  report("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
  report("open_tree", syscall(SYS_open_tree, -1, "/", 0));
  report("setns", syscall(SYS_setns, 0, 0));
  report("swapon", syscall(SYS_swapon, "/nosuch", 0));
  report("swapoff", syscall(SYS_swapoff, "/nosuch"));
  report("acct", syscall(SYS_acct, NULL));
  struct timespec ts = {0, 0};
  report("clock_settime", syscall(SYS_clock_settime, 0 /* CLOCK_REALTIME */, &ts));
  report("iopl", syscall(SYS_iopl, 3));
  report("ioperm", syscall(SYS_ioperm, 0x80, 1, 1));
  report("add_key", syscall(SYS_add_key, "user", "x", "y", 1, -3));
  report("request_key", syscall(SYS_request_key, "user", "x", NULL, 0));
  report("io_uring_setup", syscall(SYS_io_uring_setup, 1, calloc(1, 256)));
  report("personality_other", syscall(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */));
  /* what stays possible: the default persona and asking for it */
  report("personality_query", syscall(SYS_personality, 0xffffffffUL));
  report("personality_default", syscall(SYS_personality, 0));
  /* a syscall the profile does not list: ENOSYS, as on an older kernel */
  report("unlisted", syscall(SYS_vserver, 0));
  report("clone3", syscall(SYS_clone3, NULL, 0));
  return 0;
}
