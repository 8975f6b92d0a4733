#define _GNU_SOURCE
/* The rtnetlink helpers and the port binder against the real kernel: each
 * test runs in a child with a network namespace of its own (a user
 * namespace too when not root), so the host's interfaces are never
 * touched. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "network/netlink.h"
#include "network/network.h"

/* Run fn in a child inside fresh network namespaces; fn's return value is
 * the child's exit status (0 = all checks passed, else the failing step). */
static int in_netns(int (*fn)(void)) {
  pid_t p = fork();
  if (p == 0) {
    int flags = CLONE_NEWNET | (geteuid() ? CLONE_NEWUSER : 0);
    if (unshare(flags) < 0) _exit(100);
    _exit(fn());
  }
  int st = 0;
  waitpid(p, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 200;
}

static bool is_up(const char *ifname) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq r = {0};
  snprintf(r.ifr_name, sizeof r.ifr_name, "%s", ifname);
  bool up = s >= 0 && ioctl(s, SIOCGIFFLAGS, &r) == 0 && (r.ifr_flags & IFF_UP);
  if (s >= 0) close(s);
  return up;
}

static char *addr_of(const char *ifname, char *out, size_t len) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq r = {0};
  snprintf(r.ifr_name, sizeof r.ifr_name, "%s", ifname);
  out[0] = 0;
  if (s >= 0 && ioctl(s, SIOCGIFADDR, &r) == 0) inet_ntop(AF_INET, &((struct sockaddr_in *)&r.ifr_addr)->sin_addr, out, (socklen_t)len);
  if (s >= 0) close(s);
  return out;
}

static int bridge_and_veth(void) {
  berth_error_t e = NULL;
  int nl = nl_open(&e);
  if (nl < 0) return 1;
  if (nl_bridge_add(nl, "br0", &e) < 0) return 2;
  if (nl_bridge_add(nl, "br0", &e) == 0) return 3; /* the second one must be refused (EEXIST) */
  berth_error_free(e);
  e = NULL;
  struct in_addr gw;
  inet_pton(AF_INET, "10.89.7.1", &gw);
  if (nl_addr_add(nl, "br0", gw, 24, &e) < 0 || nl_link_up(nl, "br0", 0, &e) < 0) return 4;
  char a[32];
  if (strcmp(addr_of("br0", a, sizeof a), "10.89.7.1") || !is_up("br0")) return 5;
  /* a veth pair whose peer is created straight in another namespace */
  int here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (unshare(CLONE_NEWNET) < 0) return 6;
  int there = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (setns(here, CLONE_NEWNET) < 0) return 7;
  if (nl_veth_add(nl, "vbtest", "eth0", there, &e) < 0) return 8;
  int br = nl_ifindex(nl, "br0");
  if (br <= 0 || nl_link_up(nl, "vbtest", br, &e) < 0) return 9;
  if (nl_ifindex(nl, "eth0") != 0) return 10; /* not on this side */
  /* ... and plugged in through the helper berth uses */
  if (setns(there, CLONE_NEWNET) < 0) return 11;
  int nc = nl_open(&e);
  if (nc < 0 || nl_ifindex(nc, "eth0") <= 0) return 12;
  struct in_addr ip, all;
  inet_pton(AF_INET, "10.89.7.2", &ip);
  inet_pton(AF_INET, "10.89.0.0", &all);
  if (nl_addr_add(nc, "eth0", ip, 24, &e) < 0 || nl_link_up(nc, "eth0", 0, &e) < 0) return 13;
  if (nl_route_default(nc, gw, &e) < 0 || nl_route_unreachable(nc, all, 16, &e) < 0) return 14;
  if (strcmp(addr_of("eth0", a, sizeof a), "10.89.7.2") || !is_up("eth0")) return 15;
  /* the unreachable route answers at once: another network's address */
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(80)};
  inet_pton(AF_INET, "10.89.9.9", &to.sin_addr);
  if (connect(s, (struct sockaddr *)&to, sizeof to) == 0 || errno != EHOSTUNREACH) return 16;
  close(s);
  /* deleting one end takes the pair down */
  if (setns(here, CLONE_NEWNET) < 0) return 17;
  if (nl_link_del(nl, "vbtest") != 0 || nl_ifindex(nl, "vbtest") != 0) return 18;
  if (nl_link_del(nl, "vbtest") != -ENODEV) return 19;
  return 0;
}

static int nft_probe(void) {
  /* a fresh namespace has no tables: a well-formed GETTABLE says ENOENT (0
   * here), a malformed one EINVAL */
  int r = nl_nft_table_exists(AF_INET, "berth");
  return r == 0 ? 0 : r == 1 ? 1 : 2;
}

Test(netlink, nft_table_probe_is_well_formed) {
  int r = in_netns(nft_probe);
  cr_assert_eq(r, 0, "nft GETTABLE probe: %d (1: a table in a fresh namespace?, 2: an error reply)", r);
}

Test(netlink, bridge_veth_addresses_routes_in_private_namespaces) {
  int r = in_netns(bridge_and_veth);
  cr_assert_eq(r, 0, "netlink step %d failed (100: cannot unshare a network namespace here)", r);
}

static int bind_conflict(void) {
  berth_error_t e = NULL;
  int nl = nl_open(&e);
  if (nl < 0 || nl_link_up(nl, "lo", 0, &e) < 0) return 1;
  /* someone else holds 127.0.0.1:18080 */
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(18080), .sin_addr = {htonl(INADDR_LOOPBACK)}};
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 1) < 0) return 2;
  json_t *ports =
      json_pack("[{s:i, s:i}, {s:i, s:i, s:s}]", "host", 18081, "container", 80, "host", 18080, "container", 81, "protocol", "tcp");
  int fds[2] = {-1, -1};
  int r = pf_bind(ports, fds, &e);
  if (r >= 0 || !e || e->status != EADDRINUSE || !strstr(e->msg, "127.0.0.1:18080")) return 3;
  /* what was bound before the conflict is let go again */
  if (fds[0] != -1 || fds[1] != -1) return 4;
  int s2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in b = {.sin_family = AF_INET, .sin_port = htons(18081), .sin_addr = {htonl(INADDR_LOOPBACK)}};
  if (bind(s2, (struct sockaddr *)&b, sizeof b) < 0) return 5;
  close(s2);
  berth_error_free(e);
  e = NULL;
  close(s);
  /* free now: both bound, on loopback, UDP too */
  json_t *p2 =
      json_pack("[{s:i, s:i}, {s:i, s:i, s:s}]", "host", 18080, "container", 80, "host", 18080, "container", 81, "protocol", "udp");
  if (pf_bind(p2, fds, &e) < 0) return 6;
  struct sockaddr_in got;
  socklen_t gl = sizeof got;
  if (getsockname(fds[0], (struct sockaddr *)&got, &gl) < 0 || got.sin_addr.s_addr != htonl(INADDR_LOOPBACK)) return 7;
  pf_close(p2, fds);
  json_decref(ports);
  json_decref(p2);
  return 0;
}

Test(portfwd, a_port_in_use_fails_by_name_and_leaves_nothing_bound) {
  int r = in_netns(bind_conflict);
  cr_assert_eq(r, 0, "port binding step %d failed", r);
}

Test(portfwd, ports_are_validated_before_anything_is_bound) {
  berth_error_t e = NULL;
  json_t *bad = json_pack("[{s:i, s:i}]", "host", 70000, "container", 80);
  cr_assert_lt(net_ports_check(bad, &e), 0);
  cr_assert(e && strstr(e->msg, "1-65535"));
  berth_error_free(e);
  e = NULL;
  json_t *many = json_array();
  for (int i = 0; i < PF_MAX_PORTS + 1; i++) json_array_append_new(many, json_pack("{s:i, s:i}", "host", 9000 + i, "container", 80));
  cr_assert_lt(net_ports_check(many, &e), 0, "more ports than the forwarder serves must fail before anything is built");
  cr_assert(e && strstr(e->msg, "at most"));
  berth_error_free(e);
  e = NULL;
  json_decref(many);
  json_t *ip = json_pack("[{s:i, s:i, s:s}]", "host", 8080, "container", 80, "host_ip", "localhost; rm -rf /");
  cr_assert_lt(net_ports_check(ip, &e), 0);
  cr_assert(e && strstr(e->msg, "not an IPv4 address"));
  berth_error_free(e);
  json_decref(bad);
  json_decref(ip);
}

Test(named, reserved_and_invalid_network_names_are_refused) {
  cr_assert(!net_is_named("bridge"));
  cr_assert(!net_is_named("none"));
  cr_assert(!net_is_named("host"));
  cr_assert(net_is_named("my-stack"));
  json_t *out = NULL;
  berth_error_t e = NULL;
  const char *bad[] = {"bridge", "default", "../x", "", "a b", NULL};
  for (int i = 0; bad[i]; i++) {
    cr_assert_lt(net_named_create(bad[i], &out, &e), 0, "`%s` accepted", bad[i]);
    cr_assert_eq(e->status, EINVAL);
    berth_error_free(e);
    e = NULL;
  }
}
