/* Egress policies: a container that may reach only the hosts it needs.
 *
 * A policy is a list of allow entries (DNS names, optionally `*.`-wild,
 * IPv4/IPv6 addresses and CIDRs, each with optional ports and protocol),
 * whether the host stays out of reach (deny_host) and whether refusals are
 * recorded (log). It is enforced in the container's own network namespace
 * by an nftables table berth installs before the workload starts, with one
 * set of addresses per name entry; berth's resolver for the container (a
 * helper process, egress_helper.c) answers only allowed names, puts their
 * addresses into those sets with the records' TTLs before it replies, and
 * answers NXDOMAIN to everything else. Refusals (names by the resolver,
 * connections by nftables' NFLOG) go to a capped file in the container's
 * directory. See docs/security.md for what this stops and what it does not. */
#ifndef BERTH_EGRESS_H
#define BERTH_EGRESS_H
#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>
#include "util/util.h"

#define EGRESS_MAX_ENTRIES 256
#define EGRESS_MAX_NAMES 64
#define EGRESS_TABLE "berth_egress"
/* the resolver's address inside the container (on its loopback) */
#define EGRESS_RESOLVER "127.0.0.11"
/* the NFLOG group of refusals (per network namespace) */
#define EGRESS_LOG_GROUP 7
/* the resolver's own upstream queries: only it can set this mark (no
 * process of the container holds CAP_NET_ADMIN or CAP_NET_RAW) */
#define EGRESS_MARK 0x62657274u
/* refusals recorded per second (burst twice that), by nftables and the resolver */
#define EGRESS_LOG_RATE 20
/* each of the two record files egress.log and egress.log.1 */
#define EGRESS_LOG_MAX (256 * 1024)
#define EGRESS_HOST_NAME "host.berth.internal"

struct egress_rule {
  bool is_name, wildcard; /* a name (wildcard: any name strictly below it) */
  char name[254];
  int family; /* addresses: 4 or 6 */
  uint8_t addr[16];
  int prefix;
  uint16_t port_lo, port_hi; /* 0: any port */
  uint8_t proto; /* 0: any protocol, else IPPROTO_TCP or IPPROTO_UDP */
  int set; /* a name: its sets are n<set>_4 and n<set>_6 (-1: none) */
};

struct egress_policy {
  struct egress_rule *rules;
  size_t n;
  bool deny_host, log;
};

struct egress_addr {
  int family;
  uint8_t addr[16];
  uint16_t port;
};

/* The container's network as the rules see it. */
struct egress_net {
  bool slirp; /* outbound through slirp4netns; else root's berth0 */
  char subnet[24]; /* a named network's subnet (its members stay reachable), or "" */
  struct egress_addr up[4]; /* the resolvers berth's resolver forwards to */
  size_t nup;
  struct egress_addr host[32]; /* the host's own addresses (deny_host) */
  size_t nhost;
};

/* One entry: HOST[:PORT[-PORT]][/tcp|/udp], HOST a name, `*.`name, an
 * IPv4 address or CIDR, or an IPv6 one (in brackets when a port follows). */
int egress_rule_parse(const char *text, struct egress_rule *r, berth_error_t *err);
/* Its canonical text (names lowercase, CIDRs at their network address). */
void egress_rule_format(const struct egress_rule *r, char *out, size_t len);
/* Validate a request's `egress` object ({allow, deny_host, log, profile})
 * and make the stored policy {allow, deny_host, log}: entries canonical,
 * repeats dropped, the purpose profile's list (profile_list) added unless
 * `profile` is false. */
int egress_normalize(json_t *req, json_t *profile_list, json_t **out, berth_error_t *err);
/* A stored policy into rules (free with egress_policy_free). */
int egress_policy_load(json_t *pol, struct egress_policy *p, berth_error_t *err);
void egress_policy_free(struct egress_policy *p);
/* Does name (lowercase, no trailing dot) fall under the rule? */
bool egress_name_match(const struct egress_rule *r, const char *name);
/* Is name allowed by any name rule? */
bool egress_name_allowed(const struct egress_policy *p, const char *name);
/* The host's own addresses (getifaddrs of the caller's network namespace)
 * and berth's gateway addresses, into n->host. */
void egress_host_addrs(struct egress_net *n);
/* "IP" or "IP:PORT" ([IPv6]:PORT) of a resolver; port 53 by default. */
int egress_addr_parse(const char *text, struct egress_addr *a);
/* The container's table as one list of rules: the output chain's, in
 * order; the deny chain is fixed (recorded at a bounded rate when the
 * policy logs, then TCP reset or ICMP admin-prohibited). The helper sends
 * it to the kernel as nfnetlink messages; egress_nft_script shows the same
 * as nft text. */
enum { EGRESS_ACCEPT, EGRESS_DENY };
struct egress_match {
  uint8_t family; /* 0: any, 4 or 6 */
  bool oif_lo, ct_ok, mark; /* oif lo; ct state established,related; the resolver's mark */
  int prefix; /* daddr within addr/prefix (-1: any address) */
  uint8_t addr[16];
  int set; /* daddr in set n<set>_<family> (-1: none) */
  uint8_t proto; /* meta l4proto (0: any) */
  uint16_t port_lo, port_hi; /* th dport (0: any) */
  int icmp6_type; /* icmpv6 type (-1: any) */
  int verdict;
};
struct egress_table {
  struct egress_match *m;
  size_t n, cap;
  int sets; /* name rules' sets: n0_4, n0_6 ... n<sets-1>_6 */
  bool log;
};
int egress_table_build(const struct egress_policy *p, const struct egress_net *n, struct egress_table *t);
void egress_table_free(struct egress_table *t);
/* The table as an nftables script (what `nft list` shows, near enough);
 * NULL when out of memory. */
char *egress_nft_script(const struct egress_policy *p, const struct egress_net *n);
/* Install the table in the caller's network namespace, by nfnetlink. */
int egress_table_install(const struct egress_table *t, berth_error_t *err);
/* Dry run: would a connection to dest (HOST[:PORT][/PROTO]) be allowed, and
 * by which rule? {allowed, destination, rule?, reason} */
int egress_check(json_t *policy, const struct egress_net *n, const char *dest, json_t **out, berth_error_t *err);

/* ---- the helper (egress_helper.c) ---- */
struct egress_helper {
  pid_t pid;
  int ready_fd;
};
/* Fork the helper for init_pid's network namespace: it installs the table,
 * then serves DNS at EGRESS_RESOLVER:53 and records refusals into
 * <cdir>/egress.log until init ends. Returns at once; egress_ready waits
 * for the table to be in place (or says why it is not). */
int egress_start(pid_t init_pid, bool rootless, const struct egress_policy *p, const struct egress_net *n, const char *cdir,
                 struct egress_helper *h, berth_error_t *err);
int egress_ready(struct egress_helper *h, berth_error_t *err);

/* ---- records ---- */
/* The last `last` refusals recorded for the container (oldest first) and
 * how many were recorded in all (*count). */
json_t *egress_records(const char *cdir, size_t last, json_int_t *count);

#endif
