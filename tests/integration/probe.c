/* Static helper copied into test containers: tries syscalls a confined
 * workload must not be able to use and prints one line per attempt:
 *   NAME ok | NAME errno=NAME
 * and a few network probes (connect, udpsend, nft: what a workload under an
 * egress policy may try against it). */
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
#include <arpa/inet.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <time.h>
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
  if (!path) {
    puts("agent no-SSH_AUTH_SOCK");
    return 1;
  }
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strncpy(a.sun_path, path, sizeof a.sun_path - 1);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
    printf("agent connect errno=%s\n", strerrorname_np(errno));
    return 1;
  }
  unsigned char req[5] = {0, 0, 0, 1, 11}; /* SSH_AGENTC_REQUEST_IDENTITIES */
  if (write(s, req, 5) != 5) return 1;
  unsigned char rep[9];
  if (read(s, rep, 9) < 9 || rep[4] != 12) {
    puts("agent bad-reply");
    return 1;
  }
  printf("agent identities=%u\n", (unsigned)rep[5] << 24 | rep[6] << 16 | rep[7] << 8 | rep[8]);
  return 0;
}

/* `probe udprecv PORT`: wait (5 s) for one UDP datagram on PORT and print it */
static int udprecv(const char *port) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
    printf("udprecv bind errno=%s\n", strerrorname_np(errno));
    return 1;
  }
  struct timeval tv = {5, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[256];
  ssize_t n = recv(s, buf, sizeof buf - 1, 0);
  if (n < 0) {
    puts("udprecv timeout");
    return 1;
  }
  buf[n] = 0;
  printf("udprecv %s", buf);
  return 0;
}

static double ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* `probe connect IP PORT`: a TCP connect (5 s at most): ok or its errno, and how long it took */
static int tcpconnect(const char *ip, const char *port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
    puts("connect bad-address");
    return 1;
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {5, 0};
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int r = connect(s, (struct sockaddr *)&a, sizeof a);
  double ms = ms_since(&t0);
  if (r == 0) printf("connect ok ms=%.3f\n", ms);
  else printf("connect errno=%s ms=%.3f\n", strerrorname_np(errno), ms);
  return r != 0;
}

/* `probe udpsend IP PORT`: one datagram, then 1 s for an answer */
static int udpsend(const char *ip, const char *port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
    puts("udpsend bad-address");
    return 1;
  }
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct timeval tv = {1, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  /* a DNS query for example.org, so that a resolver would answer */
  unsigned char q[] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'o', 'r', 'g', 0, 0, 1, 0, 1};
  if (sendto(s, q, sizeof q, 0, (struct sockaddr *)&a, sizeof a) < 0) {
    printf("udpsend errno=%s\n", strerrorname_np(errno));
    return 1;
  }
  char buf[512];
  if (recv(s, buf, sizeof buf, 0) < 0) {
    printf("udpsend recv errno=%s\n", strerrorname_np(errno));
    return 1;
  }
  puts("udpsend answered");
  return 0;
}

/* one nfnetlink batch around one nf_tables message; prints the kernel's answer */
static void nft_try(const char *what, unsigned short msgtype, unsigned char family, const char *table) {
  int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
  if (s < 0) {
    printf("%s socket errno=%s\n", what, strerrorname_np(errno));
    return;
  }
  unsigned char b[512];
  size_t n = 0;
  memset(b, 0, sizeof b);
  struct nlmsghdr *h = (struct nlmsghdr *)b;
  h->nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
  h->nlmsg_type = NFNL_MSG_BATCH_BEGIN;
  h->nlmsg_flags = NLM_F_REQUEST;
  h->nlmsg_seq = 1;
  ((struct nfgenmsg *)NLMSG_DATA(h))->res_id = htons(NFNL_SUBSYS_NFTABLES);
  n += NLMSG_ALIGN(h->nlmsg_len);
  h = (struct nlmsghdr *)(b + n);
  h->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | msgtype;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  h->nlmsg_seq = 2;
  ((struct nfgenmsg *)NLMSG_DATA(h))->nfgen_family = family;
  size_t len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
  if (table) {
    struct nlattr *a = (struct nlattr *)((unsigned char *)h + NLMSG_ALIGN(len));
    a->nla_type = NFTA_TABLE_NAME;
    a->nla_len = (unsigned short)(NLA_HDRLEN + strlen(table) + 1);
    memcpy((unsigned char *)a + NLA_HDRLEN, table, strlen(table) + 1);
    len = NLMSG_ALIGN(len) + NLA_ALIGN(a->nla_len);
  }
  h->nlmsg_len = (unsigned)len;
  n += NLMSG_ALIGN(len);
  h = (struct nlmsghdr *)(b + n);
  h->nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
  h->nlmsg_type = NFNL_MSG_BATCH_END;
  h->nlmsg_flags = NLM_F_REQUEST;
  h->nlmsg_seq = 3;
  ((struct nfgenmsg *)NLMSG_DATA(h))->res_id = htons(NFNL_SUBSYS_NFTABLES);
  n += NLMSG_ALIGN(h->nlmsg_len);
  struct sockaddr_nl k = {.nl_family = AF_NETLINK};
  if (sendto(s, b, n, 0, (struct sockaddr *)&k, sizeof k) < 0) {
    printf("%s send errno=%s\n", what, strerrorname_np(errno));
    return;
  }
  struct timeval tv = {2, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  unsigned char r[4096];
  ssize_t m = recv(s, r, sizeof r, 0);
  if (m < 0) {
    printf("%s recv errno=%s\n", what, strerrorname_np(errno));
    return;
  }
  for (struct nlmsghdr *x = (struct nlmsghdr *)r; NLMSG_OK(x, (size_t)m); x = NLMSG_NEXT(x, m))
    if (x->nlmsg_type == NLMSG_ERROR) {
      int e = ((struct nlmsgerr *)NLMSG_DATA(x))->error;
      if (e == 0) printf("%s ok\n", what);
      else {
        errno = -e;
        printf("%s errno=%s\n", what, strerrorname_np(errno));
      }
      return;
    }
  printf("%s no-answer\n", what);
}

int main(int argc, char **argv) {
  if (argc > 3 && !strcmp(argv[1], "connect")) return tcpconnect(argv[2], argv[3]);
  if (argc > 3 && !strcmp(argv[1], "udpsend")) return udpsend(argv[2], argv[3]);
  if (argc > 1 && !strcmp(argv[1], "nft")) {
    /* never where it could work: a process holding CAP_NET_ADMIN (the
     * host's root) would really flush its namespace's ruleset */
    struct __user_cap_header_struct ch = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct cd[2];
    if (syscall(SYS_capget, &ch, cd) < 0 || (cd[0].effective & (1u << CAP_NET_ADMIN))) {
      puts("nft refused: this process holds CAP_NET_ADMIN; run it in a container");
      return 2;
    }
    /* what `nft delete table inet berth_egress` and `nft flush ruleset` send */
    nft_try("nft_delete_table", NFT_MSG_DELTABLE, 1 /* NFPROTO_INET */, "berth_egress");
    nft_try("nft_flush_ruleset", NFT_MSG_DELTABLE, 0 /* NFPROTO_UNSPEC */, NULL);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    unsigned mark = 0x62657274;
    report("so_mark", setsockopt(s, SOL_SOCKET, SO_MARK, &mark, sizeof mark));
    return 0;
  }
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
