/* Container networking. The default "bridge" network gives a container its
 * own network namespace: as root a veth on the host bridge berth0 with NAT
 * (hostbridge.c), rootless (or root without nft) slirp4netns, a user-space
 * TCP/IP stack with DNS at 10.0.2.3 and the host's loopback at 10.0.2.2.
 * Either way the host's loopback is host.berth.internal. Published ports
 * are bound on 127.0.0.1 by berth and spliced into the container by a
 * forwarder (portfwd.c). Named networks add a bridge between containers
 * in a namespace berth owns (named.c). */
#ifndef BERTH_NETWORK_H
#define BERTH_NETWORK_H
#include <jansson.h>
#include "util/util.h"

#define NET_GUEST_ADDR "10.0.2.100"
#define NET_HOST_ADDR "10.0.2.2"
#define NET_DNS_ADDR "10.0.2.3"

/* Start slirp4netns for the network namespace of init_pid. exit_fd is a
 * pipe read end: slirp4netns exits when its write end (held by the
 * container's init) closes. */
int net_start(pid_t init_pid, bool rootless, int exit_fd, pid_t *helper, berth_error_t *err);

/* ---- root's default network: bridge berth0 + nftables (hostbridge.c) ---- */
#define HB_GATEWAY "10.88.0.1"
/* root, with nft (BERTH_ROOT_SLIRP=1 forces slirp4netns instead) */
bool hb_usable(void);
/* An address for container cid; held by the calling process until
 * hb_attach hands it to the container's init. */
int hb_lease(const char *cid, char ip[16], berth_error_t *err);
/* Bridge and rules up if needed, then a veth pair into init_pid's namespace. */
int hb_attach(pid_t init_pid, const char *cid, const char *ip, berth_error_t *err);
/* An nftables script, through libnftables in this process and in its
 * current network namespace; the error says how to install it. */
int net_nft_run(const char *script, berth_error_t *err);
/* Drop cid's lease; the last one takes the bridge and the rules down. */
void hb_release(const char *cid);
/* Drop leases of processes that are gone (a crash), likewise. */
void hb_gc(void);

/* ---- published ports (portfwd.c) ---- */
#define PF_MAX_PORTS 16
/* Bind ports [{host, container, protocol, host_ip}] on the host: fds[i]
 * for ports[i]. A port in use fails with EADDRINUSE and closes the rest. */
int pf_bind(json_t *ports, int *fds, berth_error_t *err);
void pf_close(json_t *ports, int *fds);
/* Fork the forwarder for init_pid's network namespace; it keeps fds and
 * ends with init. */
pid_t pf_start(pid_t init_pid, bool rootless, json_t *ports, int *fds, berth_error_t *err);
/* Validate ports before anything is created; fills defaults. */
int net_ports_check(json_t *ports, berth_error_t *err);
bool net_helper_available(void);

/* ---- named networks (named.c) ---- */
bool net_is_named(const char *network); /* not bridge, none or host */
/* The containers on a named network, [{name, ip, hosts, status}]; live_only
 * keeps running (or being created) ones that hold an address. This module
 * knows no containers: the caller passes the runtime's lister
 * (container_network_members), and it is called under the network's lock,
 * so an address chosen or a member counted stays true until it is released. */
typedef json_t *net_members_fn(const char *network, bool live_only);
int net_named_create(const char *name, json_t **out, berth_error_t *err);
/* refuses while containers are attached, naming them */
int net_named_destroy(const char *name, net_members_fn *members, json_t **out, berth_error_t *err);
int net_named_list(net_members_fn *members, json_t **out, berth_error_t *err);

/* An address on the network for a new container. The network's lock is
 * held (lock_fd) until the caller has recorded the address in the
 * container's state; the holder process is (re)started if needed. */
struct net_lease {
  int lock_fd;
  int userns_fd, netns_fd; /* the holder's namespaces, opened under the lock */
  pid_t holder;
  bool single; /* the network's user namespace has only the user's own id */
  char ip[16];
};
int net_named_lease(const char *name, net_members_fn *members, struct net_lease *l, berth_error_t *err);
/* Plug init_pid's network namespace into the network: eth0 with ip. Enters
 * other network namespaces: call in a process that exits afterwards. */
int net_named_attach(const struct net_lease *l, pid_t init_pid, const char *id, berth_error_t *err);
/* Close what a lease holds (lock and namespace fds). */
void net_lease_close(struct net_lease *l);
/* Rewrite the members' /etc/hosts (after a member came or went). */
void net_named_refresh(const char *name, net_members_fn *members);

#endif
