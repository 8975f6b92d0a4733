/* Container networking: the default "bridge" network gives a container its
 * own network namespace with outbound connectivity through slirp4netns (a
 * user-space TCP/IP stack, no privileges, no host interfaces or firewall
 * rules to clean up), DNS at 10.0.2.3, the host's loopback at 10.0.2.2
 * (host.berth.internal), and published ports bound on 127.0.0.1. */
#ifndef BERTH_NETWORK_H
#define BERTH_NETWORK_H
#include <jansson.h>
#include "util.h"

#define NET_GUEST_ADDR "10.0.2.100"
#define NET_HOST_ADDR "10.0.2.2"
#define NET_DNS_ADDR "10.0.2.3"

/* Start slirp4netns for the network namespace of init_pid. exit_fd is a
 * pipe read end: slirp4netns exits when its write end (held by the
 * container's init) closes. */
int net_start(pid_t init_pid, bool rootless, const char *api_socket, int exit_fd, pid_t *helper, berth_error_t *err);
/* Publish ports [{host, container, protocol, host_ip}] through the API socket. */
int net_publish(const char *api_socket, json_t *ports, berth_error_t *err);
/* Validate ports before anything is created; fills defaults. */
int net_ports_check(json_t *ports, berth_error_t *err);
bool net_helper_available(void);

#endif
