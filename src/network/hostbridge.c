#define _GNU_SOURCE
/* Root's default network: a Linux bridge berth0 (10.88.0.1/16) on the host,
 * one veth pair per container, and an nftables table `ip berth` for the
 * rest: masquerade for outbound traffic, host.berth.internal (the gateway
 * address) translated to the host's 127.0.0.1 (route_localnet on berth0
 * only), and no new connections into containers from outside the bridge.
 *
 * Addresses are leases shared by every berth data directory on the host:
 * /run/berth-net/leases/<ip> holds "container-id pid starttime" of the
 * process that owns it (the creating CLI, then the container's init), so a
 * lease whose process is gone is free again. When the last lease goes, the
 * bridge and the table go too, after a linger of 1.5 s in which a new
 * container finds them up. ip_forward is turned on if it was off and left
 * on, as Docker does (docs/security.md). */
#include "network/network.h"
#include "network/netlink.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HB_DIR "/run/berth-net"
#define HB_BRIDGE "berth0"

static const char *nft_path(void) {
  static const char *c[] = {"/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", NULL};
  for (int i = 0; c[i]; i++)
    if (access(c[i], X_OK) == 0) return c[i];
  return NULL;
}

bool hb_usable(void) { return geteuid() == 0 && nft_path() && getenv("BERTH_ROOT_SLIRP") == NULL; }

static int hb_lock(berth_error_t *err) {
  if (mkdir_p(HB_DIR "/leases", 0700, err) < 0) return -1;
  return lock_file(HB_DIR "/lock", true, err);
}

/* libnftables in this process (no exec, no second dynamic link: a few ms
 * less on the first create). Returns 1 when the library is not there. */
static int nft_lib(const char *script, berth_error_t *err) {
  static void *h;
  if (!h) h = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) return 1;
  void *(*ctx_new)(uint32_t) = (void *(*)(uint32_t))dlsym(h, "nft_ctx_new");
  void (*ctx_free)(void *) = (void (*)(void *))dlsym(h, "nft_ctx_free");
  int (*buf_out)(void *) = (int (*)(void *))dlsym(h, "nft_ctx_buffer_output");
  int (*buf_err)(void *) = (int (*)(void *))dlsym(h, "nft_ctx_buffer_error");
  const char *(*get_err)(void *) = (const char *(*)(void *))dlsym(h, "nft_ctx_get_error_buffer");
  int (*run)(void *, const char *) = (int (*)(void *, const char *))dlsym(h, "nft_run_cmd_from_buffer");
  if (!ctx_new || !ctx_free || !buf_out || !buf_err || !get_err || !run) return 1;
  void *ctx = ctx_new(0);
  if (!ctx) return 1;
  buf_out(ctx);
  buf_err(ctx);
  int r = run(ctx, script);
  if (r != 0) {
    const char *m = get_err(ctx);
    berth_error(err, -EIO, "nft refused berth's rules: %.300s", m && *m ? m : "unknown error");
  }
  ctx_free(ctx);
  return r != 0 ? -1 : 0;
}

/* Feed a script to nftables (the nftables package brings libnftables1),
 * in the caller's network namespace. */
int net_nft_run(const char *script, berth_error_t *err) {
  int r = nft_lib(script, err);
  if (r > 0)
    return berth_error(err, -ENOENT,
                       "libnftables (package libnftables1, with nftables) cannot be loaded: "
                       "sudo apt-get install nftables");
  return r;
}

static bool lease_alive(const char *ip, char *cid, size_t cidlen) {
  cleanup_free char *p = xasprintf(HB_DIR "/leases/%s", ip);
  cleanup_free char *txt = NULL;
  if (read_file(p, 256, &txt, NULL, NULL) < 0) return false;
  char id[64] = "";
  int pid = 0;
  unsigned long long st = 0;
  if (sscanf(txt, "%63s %d %llu", id, &pid, &st) != 3) return false;
  if (cid) snprintf(cid, cidlen, "%s", id);
  return pid > 0 && proc_starttime(pid) == st;
}

static int lease_write(const char *ip, const char *cid, pid_t pid, berth_error_t *err) {
  cleanup_free char *p = xasprintf(HB_DIR "/leases/%s", ip);
  cleanup_free char *v = xasprintf("%s %d %llu\n", cid, (int)pid, proc_starttime(pid));
  return write_file_atomic(p, v, strlen(v), 0600, err);
}

/* With the lock held: drop dead leases; with none left, take everything down. */
/* the host end of cid's pair: it goes with the container's namespace, but
 * asynchronously (the kernel cleans namespaces up later), so take it down */
static void veth_del(int nl, const char *cid) {
  char veth[16];
  snprintf(veth, sizeof veth, "vh%.12s", cid);
  if (nl >= 0) nl_link_del(nl, veth);
}

/* With the lock held: drop dead leases, count live ones. */
static int leases_scan(void) {
  berth_error_t e = NULL;
  int nl = nl_open(&e);
  berth_error_free(e);
  DIR *d = opendir(HB_DIR "/leases");
  int live = 0;
  struct dirent *de;
  while (d && (de = readdir(d))) {
    char owner[64] = "";
    if (de->d_name[0] == '.') continue;
    if (lease_alive(de->d_name, owner, sizeof owner)) live++;
    else {
      cleanup_free char *p = xasprintf(HB_DIR "/leases/%s", de->d_name);
      unlink(p);
      if (owner[0]) veth_del(nl, owner);
    }
  }
  if (d) closedir(d);
  if (nl >= 0) close(nl);
  return live;
}

/* With the lock held: the bridge and the table. */
static void teardown(void) {
  unlink(HB_DIR "/up");
  berth_error_t e = NULL;
  int nl = nl_open(&e);
  if (nl >= 0) {
    nl_link_del(nl, HB_BRIDGE);
    close(nl);
  }
  berth_error_free(e);
  e = NULL;
  if (access(HB_DIR "/table", F_OK) == 0) {
    if (net_nft_run("delete table ip berth\n", &e) < 0) berth_error_free(e);
    unlink(HB_DIR "/table");
  }
}

/* With the lock (fd lk) held: when no lease is left, take everything down
 * after a short linger, from a detached child, so that `rm` returns at once
 * (deleting a bridge waits for an RCU grace period) and a `run` right after
 * a `run` finds the bridge still up. The child re-checks under the lock. */
#define HB_LINGER_MS 1500
static void gc_locked(int lk) {
  if (leases_scan() || access(HB_DIR "/up", F_OK) < 0) return;
  fflush(stdout);
  fflush(stderr);
  pid_t a = fork();
  if (a > 0) {
    waitpid(a, NULL, 0);
    return;
  }
  if (a < 0) { /* cannot fork: now, here */
    teardown();
    return;
  }
  if (fork() != 0) _exit(0);
  /* nothing of the caller's: not the hb lock (it belongs to the open file:
   * let go of it while waiting), not a container's lock, not an embedding
   * application's sockets */
  (void)lk;
  syscall(SYS_close_range, 3U, ~0U, 0);
  setsid();
  int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (nul >= 0) dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
  struct timespec ts = {HB_LINGER_MS / 1000, (HB_LINGER_MS % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  berth_error_t e = NULL;
  int l2 = hb_lock(&e);
  if (l2 >= 0 && leases_scan() == 0 && access(HB_DIR "/up", F_OK) == 0) teardown();
  _exit(0);
}

void hb_gc(void) {
  if (geteuid() != 0 || access(HB_DIR "/leases", F_OK) < 0) return;
  cleanup_error berth_error_t e = NULL;
  cleanup_close int lk = hb_lock(&e);
  if (lk >= 0) gc_locked(lk);
}

int hb_lease(const char *cid, char ip[16], berth_error_t *err) {
  cleanup_close int lk = hb_lock(err);
  if (lk < 0) return -1;
  leases_scan();
  /* 10.88.0.2 .. 10.88.255.254 */
  for (unsigned h = 2; h < 65535; h++) {
    if ((h & 0xff) == 0 || (h & 0xff) == 255) continue;
    snprintf(ip, 16, "10.88.%u.%u", h >> 8, h & 0xff);
    cleanup_free char *p = xasprintf(HB_DIR "/leases/%s", ip);
    if (access(p, F_OK) == 0) continue;
    return lease_write(ip, cid, getpid(), err);
  }
  return berth_error(err, -ENOSPC, "no free address left on berth0 (10.88.0.0/16)");
}

void hb_release(const char *cid) {
  if (!cid || geteuid() != 0 || access(HB_DIR "/leases", F_OK) < 0) return;
  cleanup_error berth_error_t e = NULL;
  cleanup_close int lk = hb_lock(&e);
  if (lk < 0) return;
  DIR *d = opendir(HB_DIR "/leases");
  struct dirent *de;
  while (d && (de = readdir(d))) {
    char owner[64] = "";
    if (de->d_name[0] == '.') continue;
    lease_alive(de->d_name, owner, sizeof owner);
    if (!strcmp(owner, cid)) {
      cleanup_free char *p = xasprintf(HB_DIR "/leases/%s", de->d_name);
      unlink(p);
    }
  }
  if (d) closedir(d);
  /* its veth goes with its network namespace (the kernel's cleanup) */
  gc_locked(lk);
}

#define HB_RULES_VERSION "2"

/* With the lock held: berth0 and the table, when not there yet. */
static int bridge_up(berth_error_t *err) {
  cleanup_close int nl = nl_open(err);
  if (nl < 0) return -1;
  if (nl_ifindex(nl, HB_BRIDGE) <= 0) {
    struct in_addr gw;
    inet_pton(AF_INET, HB_GATEWAY, &gw);
    if (nl_bridge_add(nl, HB_BRIDGE, err) < 0 || nl_addr_add(nl, HB_BRIDGE, gw, 16, err) < 0 || nl_link_up(nl, HB_BRIDGE, 0, err) < 0)
      return -1;
  }
  int up = open(HB_DIR "/up", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (up >= 0) close(up);
  /* host.berth.internal: the gateway address, answered by the host's loopback */
  write_value("/proc/sys/net/ipv4/conf/" HB_BRIDGE "/route_localnet", "1");
  /* no IPv6 on the bridge: the table below is IPv4's, and link-local
   * addresses (fe80::...%berth0) would reach the containers around it */
  write_value("/proc/sys/net/ipv6/conf/" HB_BRIDGE "/disable_ipv6", "1");
  /* checked every time, not only the first: a `flush ruleset` (an nftables
   * or firewalld reload) may have removed it; the script replaces it whole */
  /* the marker holds the rules' version: a table of an older berth
   * (without the output chain) is replaced too */
  cleanup_free char *ver = NULL;
  if (read_file(HB_DIR "/table", 64, &ver, NULL, NULL) < 0 || strcmp(ver, HB_RULES_VERSION) || nl_nft_table_exists(AF_INET, "berth") != 1) {
    const char *rules = "table ip berth\n"
                        "delete table ip berth\n"
                        "table ip berth {\n"
                        "  chain postrouting {\n"
                        "    type nat hook postrouting priority srcnat; policy accept;\n"
                        "    ip saddr 10.88.0.0/16 oifname != \"" HB_BRIDGE "\" masquerade\n"
                        "  }\n"
                        "  chain prerouting {\n"
                        "    type nat hook prerouting priority dstnat; policy accept;\n"
                        "    iifname \"" HB_BRIDGE "\" ip daddr " HB_GATEWAY " dnat to 127.0.0.1\n"
                        "  }\n"
                        "  chain forward {\n"
                        "    type filter hook forward priority filter; policy accept;\n"
                        "    oifname \"" HB_BRIDGE "\" iifname != \"" HB_BRIDGE "\" ct state established,related accept\n"
                        "    oifname \"" HB_BRIDGE "\" iifname != \"" HB_BRIDGE "\" drop\n"
                        "  }\n"
                        /* the host's own processes (any user, slirp4netns of rootless
         * containers) open nothing into the bridge: published ports are
         * served inside the container's namespace, not through it */
                        "  chain output {\n"
                        "    type filter hook output priority filter; policy accept;\n"
                        "    oifname \"" HB_BRIDGE "\" ct state established,related accept\n"
                        "    oifname \"" HB_BRIDGE "\" reject with icmp type admin-prohibited\n"
                        "  }\n"
                        "}\n";
    if (net_nft_run(rules, err) < 0) return -1;
    write_file_replace(HB_DIR "/table", HB_RULES_VERSION, strlen(HB_RULES_VERSION), 0600, false, NULL);
  }
  /* forwarding on (as Docker does), and left on: turning it off later could
   * break whatever else came to rely on it meanwhile (docs/security.md) */
  cleanup_free char *fw = NULL;
  if (read_file("/proc/sys/net/ipv4/ip_forward", 16, &fw, NULL, NULL) == 0 && fw[0] == '0')
    write_value("/proc/sys/net/ipv4/ip_forward", "1");
  return 0;
}

int hb_attach(pid_t init_pid, const char *cid, const char *ip, berth_error_t *err) {
  cleanup_close int lk = hb_lock(err);
  if (lk < 0) return -1;
  if (bridge_up(err) < 0) return -1;
  /* the lease now lives as long as the container's init */
  if (lease_write(ip, cid, init_pid, err) < 0) return -1;
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/ns/net", (int)init_pid);
  cleanup_close int cfd = open(p, O_RDONLY | O_CLOEXEC);
  if (cfd < 0) return berth_error(err, errno, "open the container's network namespace");
  /* the plug enters the container's namespace: do it in a child */
  int rp[2];
  if (pipe2(rp, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  pid_t c = fork();
  if (c == 0) {
    close(rp[0]);
    berth_error_t e = NULL;
    char veth[16];
    snprintf(veth, sizeof veth, "vh%.12s", cid);
    char msg[400] = "";
    /* an isolated port: berth0's containers reach the gateway, not each other */
    if (net_veth_plug(-1, cfd, veth, HB_BRIDGE, ip, 16, HB_GATEWAY, false, true, &e) < 0) snprintf(msg, sizeof msg, "%s", e->msg);
    if (write(rp[1], msg, strlen(msg) + 1) < 0) {}
    _exit(0);
  }
  close(rp[1]);
  char msg[400] = "";
  ssize_t n = c > 0 ? read(rp[0], msg, sizeof msg - 1) : -1;
  close(rp[0]);
  if (c > 0) waitpid(c, NULL, 0);
  if (n <= 0) return berth_error(err, -EIO, "the network setup helper died");
  if (msg[0]) return berth_error(err, -EIO, "berth0: %s", msg);
  return 0;
}
