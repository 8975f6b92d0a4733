/* A few rtnetlink requests (links, addresses, routes) in the network
 * namespace the socket was opened in: enough to build a bridge and plug
 * veth pairs into it, without spawning `ip` for every step. */
#ifndef BERTH_NETLINK_H
#define BERTH_NETLINK_H
#include <netinet/in.h>
#include "util/util.h"

/* A NETLINK_ROUTE socket in the caller's current network namespace. */
int nl_open(berth_error_t *err);
int nl_bridge_add(int nl, const char *name, berth_error_t *err);
/* veth pair `name` (here) and `peer` created directly in the network
 * namespace of peer_netns_fd. */
int nl_veth_add(int nl, const char *name, const char *peer, int peer_netns_fd, berth_error_t *err);
/* Bring a link up; master_ifindex > 0 enslaves it to that bridge first. */
int nl_link_up(int nl, const char *ifname, int master_ifindex, berth_error_t *err);
/* a bridge port that reaches the bridge (and the host) but no other isolated port */
int nl_bridge_port_isolate(int nl, const char *ifname, berth_error_t *err);
int nl_addr_add(int nl, const char *ifname, struct in_addr addr, int prefix, berth_error_t *err);
/* An `unreachable` route: traffic to dst/prefix fails at once, locally. */
int nl_route_unreachable(int nl, struct in_addr dst, int prefix, berth_error_t *err);
/* A default route through gw. */
int nl_route_default(int nl, struct in_addr gw, berth_error_t *err);
/* Delete a link (-ENODEV when absent). */
int nl_link_del(int nl, const char *ifname);
/* Does nftables table `table` of `family` (AF_INET: ip) exist? 1, 0, or
 * -errno: one netlink round trip, no libnftables. */
int nl_nft_table_exists(int family, const char *table);
/* The interface index of ifname in the socket's namespace (0 when absent). */
int nl_ifindex(int nl, const char *ifname);

/* A veth pair: `veth` on `bridge` in the namespace of hfd (-1: ours), its
 * peer eth0 in cfd's with ip/prefix, a default route through gw (NULL:
 * none) and, when asked, an unreachable route to the other named networks
 * (10.89.0.0/16); isolated makes `veth` an isolated bridge port.
 * Enters namespaces: call in a process that exits afterwards. */
int net_veth_plug(int hfd, int cfd, const char *veth, const char *bridge, const char *ip, int prefix, const char *gw,
                  bool unreachable_others, bool isolated, berth_error_t *err);

#endif
