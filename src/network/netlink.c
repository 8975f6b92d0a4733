#define _GNU_SOURCE
#include "network/netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* One request, built in place: header, family struct, then attributes
 * (nested ones through nest_begin/nest_end). */
struct nlreq {
  union {
    struct nlmsghdr h;
    char buf[1024];
  };
};

static struct rtattr *attr_put(struct nlreq *r, unsigned short type, const void *data, size_t len) {
  size_t off = NLMSG_ALIGN(r->h.nlmsg_len);
  if (off + RTA_SPACE(len) > sizeof r->buf) return NULL;
  struct rtattr *a = (struct rtattr *)(r->buf + off);
  a->rta_type = type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  if (len) memcpy(RTA_DATA(a), data, len);
  r->h.nlmsg_len = (unsigned)(off + RTA_ALIGN(a->rta_len));
  return a;
}

static struct rtattr *nest_begin(struct nlreq *r, unsigned short type) { return attr_put(r, type, NULL, 0); }

static void nest_end(struct nlreq *r, struct rtattr *a) {
  if (a) a->rta_len = (unsigned short)(r->buf + r->h.nlmsg_len - (char *)a);
}

static void *body_put(struct nlreq *r, const void *body, size_t len) {
  void *p = r->buf + NLMSG_ALIGN(r->h.nlmsg_len);
  memcpy(p, body, len);
  r->h.nlmsg_len = (unsigned)(NLMSG_ALIGN(r->h.nlmsg_len) + NLMSG_ALIGN(len));
  return p;
}

static void req_init(struct nlreq *r, unsigned short type, unsigned short flags) {
  memset(r, 0, sizeof *r);
  r->h.nlmsg_len = NLMSG_HDRLEN;
  r->h.nlmsg_type = type;
  r->h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
}

/* Send and read the kernel's acknowledgement: 0 or -errno. */
static int talk(int nl, struct nlreq *r) {
  static unsigned seq;
  r->h.nlmsg_seq = ++seq;
  struct sockaddr_nl k = {.nl_family = AF_NETLINK};
  if (sendto(nl, r->buf, r->h.nlmsg_len, 0, (struct sockaddr *)&k, sizeof k) < 0) return -errno;
  char ans[4096];
  for (;;) {
    ssize_t n = recv(nl, ans, sizeof ans, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)ans; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_seq != r->h.nlmsg_seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
    }
  }
}

int nl_open(berth_error_t *err) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return berth_error(err, errno, "open a netlink socket");
  struct sockaddr_nl a = {.nl_family = AF_NETLINK};
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
    int e = errno;
    close(s);
    return berth_error(err, e, "bind a netlink socket");
  }
  return s;
}

int nl_ifindex(int nl, const char *ifname) {
  /* RTM_GETLINK by name answers in the socket's namespace (if_nametoindex
   * would ask the caller's, which may differ) */
  struct nlreq r;
  req_init(&r, RTM_GETLINK, 0);
  r.h.nlmsg_flags = NLM_F_REQUEST;
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
  body_put(&r, &ifi, sizeof ifi);
  attr_put(&r, IFLA_IFNAME, ifname, strlen(ifname) + 1);
  static unsigned seq = 1u << 30;
  r.h.nlmsg_seq = ++seq;
  struct sockaddr_nl k = {.nl_family = AF_NETLINK};
  if (sendto(nl, r.buf, r.h.nlmsg_len, 0, (struct sockaddr *)&k, sizeof k) < 0) return 0;
  char ans[8192];
  for (;;) {
    ssize_t n = recv(nl, ans, sizeof ans, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return 0;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)ans; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_seq != r.h.nlmsg_seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) return 0;
      if (h->nlmsg_type == RTM_NEWLINK) return ((struct ifinfomsg *)NLMSG_DATA(h))->ifi_index;
    }
  }
}

static int link_new(int nl, const char *name, const char *kind, const char *peer, int peer_netns_fd) {
  struct nlreq r;
  req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
  body_put(&r, &ifi, sizeof ifi);
  attr_put(&r, IFLA_IFNAME, name, strlen(name) + 1);
  struct rtattr *li = nest_begin(&r, IFLA_LINKINFO);
  attr_put(&r, IFLA_INFO_KIND, kind, strlen(kind));
  if (peer) {
    struct rtattr *data = nest_begin(&r, IFLA_INFO_DATA);
    struct rtattr *pi = nest_begin(&r, VETH_INFO_PEER);
    /* the peer's ifinfomsg is part of VETH_INFO_PEER's payload */
    struct ifinfomsg pifi = {.ifi_family = AF_UNSPEC};
    memcpy(r.buf + r.h.nlmsg_len, &pifi, sizeof pifi);
    r.h.nlmsg_len += (unsigned)NLMSG_ALIGN(sizeof pifi);
    attr_put(&r, IFLA_IFNAME, peer, strlen(peer) + 1);
    if (peer_netns_fd >= 0) {
      unsigned fd = (unsigned)peer_netns_fd;
      attr_put(&r, IFLA_NET_NS_FD, &fd, sizeof fd);
    }
    nest_end(&r, pi);
    nest_end(&r, data);
  }
  nest_end(&r, li);
  return talk(nl, &r);
}

int nl_bridge_add(int nl, const char *name, berth_error_t *err) {
  int r = link_new(nl, name, "bridge", NULL, -1);
  return r < 0 ? berth_error(err, -r, "create bridge %s", name) : 0;
}

int nl_veth_add(int nl, const char *name, const char *peer, int peer_netns_fd, berth_error_t *err) {
  int r = link_new(nl, name, "veth", peer, peer_netns_fd);
  return r < 0 ? berth_error(err, -r, "create veth pair %s/%s", name, peer) : 0;
}

int nl_link_up(int nl, const char *ifname, int master_ifindex, berth_error_t *err) {
  int idx = nl_ifindex(nl, ifname);
  if (idx <= 0) return berth_error(err, -ENODEV, "network interface %s not found", ifname);
  struct nlreq r;
  req_init(&r, RTM_NEWLINK, 0);
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = idx, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
  body_put(&r, &ifi, sizeof ifi);
  if (master_ifindex > 0) {
    unsigned m = (unsigned)master_ifindex;
    attr_put(&r, IFLA_MASTER, &m, sizeof m);
  }
  int e = talk(nl, &r);
  return e < 0 ? berth_error(err, -e, "bring up %s", ifname) : 0;
}

int nl_bridge_port_isolate(int nl, const char *ifname, berth_error_t *err) {
  int idx = nl_ifindex(nl, ifname);
  if (idx <= 0) return berth_error(err, -ENODEV, "network interface %s not found", ifname);
  struct nlreq r;
  req_init(&r, RTM_SETLINK, 0);
  struct ifinfomsg ifi = {.ifi_family = AF_BRIDGE, .ifi_index = idx};
  body_put(&r, &ifi, sizeof ifi);
  struct rtattr *n = nest_begin(&r, IFLA_PROTINFO | NLA_F_NESTED);
  uint8_t on = 1;
  attr_put(&r, IFLA_BRPORT_ISOLATED, &on, sizeof on);
  nest_end(&r, n);
  int e = talk(nl, &r);
  return e < 0 ? berth_error(err, -e, "isolate bridge port %s", ifname) : 0;
}

int nl_addr_add(int nl, const char *ifname, struct in_addr addr, int prefix, berth_error_t *err) {
  int idx = nl_ifindex(nl, ifname);
  if (idx <= 0) return berth_error(err, -ENODEV, "network interface %s not found", ifname);
  struct nlreq r;
  req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)prefix, .ifa_index = (unsigned)idx};
  body_put(&r, &ifa, sizeof ifa);
  attr_put(&r, IFA_LOCAL, &addr, sizeof addr);
  attr_put(&r, IFA_ADDRESS, &addr, sizeof addr);
  int e = talk(nl, &r);
  return e < 0 ? berth_error(err, -e, "add an address to %s", ifname) : 0;
}

int nl_route_unreachable(int nl, struct in_addr dst, int prefix, berth_error_t *err) {
  struct nlreq r;
  req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  struct rtmsg rt = {.rtm_family = AF_INET,
                     .rtm_dst_len = (unsigned char)prefix,
                     .rtm_table = RT_TABLE_MAIN,
                     .rtm_protocol = RTPROT_BOOT,
                     .rtm_scope = RT_SCOPE_UNIVERSE,
                     .rtm_type = RTN_UNREACHABLE};
  body_put(&r, &rt, sizeof rt);
  attr_put(&r, RTA_DST, &dst, sizeof dst);
  int e = talk(nl, &r);
  return e < 0 ? berth_error(err, -e, "add an unreachable route") : 0;
}

int nl_route_default(int nl, struct in_addr gw, berth_error_t *err) {
  struct nlreq r;
  req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  struct rtmsg rt = {.rtm_family = AF_INET,
                     .rtm_table = RT_TABLE_MAIN,
                     .rtm_protocol = RTPROT_BOOT,
                     .rtm_scope = RT_SCOPE_UNIVERSE,
                     .rtm_type = RTN_UNICAST};
  body_put(&r, &rt, sizeof rt);
  attr_put(&r, RTA_GATEWAY, &gw, sizeof gw);
  int e = talk(nl, &r);
  return e < 0 ? berth_error(err, -e, "add the default route") : 0;
}

int nl_link_del(int nl, const char *ifname) {
  int idx = nl_ifindex(nl, ifname);
  if (idx <= 0) return -ENODEV;
  struct nlreq r;
  req_init(&r, RTM_DELLINK, 0);
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = idx};
  body_put(&r, &ifi, sizeof ifi);
  return talk(nl, &r);
}

int nl_nft_table_exists(int family, const char *table) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (s < 0) return -errno;
  struct nlreq r;
  req_init(&r, (unsigned short)((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE), 0);
  struct nfgenmsg g = {.nfgen_family = (unsigned char)family, .version = NFNETLINK_V0};
  body_put(&r, &g, sizeof g);
  attr_put(&r, NFTA_TABLE_NAME, table, strlen(table) + 1);
  int e = talk(s, &r);
  close(s);
  return e == 0 ? 1 : e == -ENOENT ? 0 : e;
}

int net_veth_plug(int hfd, int cfd, const char *veth, const char *bridge, const char *ip, int prefix, const char *gw,
                  bool unreachable_others, bool isolated, berth_error_t *err) {
  struct in_addr a, g, all;
  if (inet_pton(AF_INET, ip, &a) != 1 || (gw && inet_pton(AF_INET, gw, &g) != 1)) return berth_error(err, -EINVAL, "bad address %s", ip);
  inet_pton(AF_INET, "10.89.0.0", &all);
  if (hfd >= 0 && setns(hfd, CLONE_NEWNET) < 0) return berth_error(err, errno, "enter the network's namespace");
  cleanup_close int nh = nl_open(err);
  if (nh < 0) return -1;
  if (nl_veth_add(nh, veth, "eth0", cfd, err) < 0) return -1;
  int br = nl_ifindex(nh, bridge);
  if (br <= 0) return berth_error(err, -ENODEV, "the network's bridge %s is gone: remove and create the network again", bridge);
  if (nl_link_up(nh, veth, br, err) < 0) return -1;
  if (isolated && nl_bridge_port_isolate(nh, veth, err) < 0) return -1;
  if (setns(cfd, CLONE_NEWNET) < 0) return berth_error(err, errno, "enter the container's network namespace");
  cleanup_close int nc = nl_open(err);
  if (nc < 0) return -1;
  if (nl_addr_add(nc, "eth0", a, prefix, err) < 0 || nl_link_up(nc, "eth0", 0, err) < 0) return -1;
  if (gw && nl_route_default(nc, g, err) < 0) return -1;
  if (unreachable_others && nl_route_unreachable(nc, all, 16, err) < 0) return -1;
  return 0;
}
