#define _GNU_SOURCE
/* The egress helper (`berth-egress`): one process per container with a
 * policy, forked by the monitor like the port forwarder. It
 *   - joins the container's network namespace (rootless: its user
 *     namespace first), installs the policy's nftables table there with
 *     libnftables, and only then says ready: nothing of the workload runs
 *     before that;
 *   - answers DNS at EGRESS_RESOLVER:53 (UDP and TCP) inside the
 *     container: allowed names are forwarded to the upstream resolvers
 *     (its queries carry EGRESS_MARK, which the table lets through to them
 *     alone), the addresses of the answer go into the name's nftables sets
 *     with the records' TTLs before the answer is passed on, so the first
 *     connect works; every other name gets NXDOMAIN;
 *   - reads the table's refusals (NFLOG group EGRESS_LOG_GROUP) and its own
 *     refused names into <cdir>/egress.log and egress.log.1, two files of
 *     EGRESS_LOG_MAX used in turn, at most EGRESS_LOG_RATE a second;
 *   - ends when the container's init does (a pidfd).
 * Once set up it keeps CAP_NET_ADMIN alone (to change its own sets), as
 * root runs as nobody, is not dumpable, and is under berth's seccomp
 * filter plus one that lets it make no socket but IPv4 and IPv6 ones. */
#include "network/egress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "network/dns.h"
#include "network/netlink.h"
#include "network/network.h"
#include "util/security.h"

#define NFPROTO_INET_ 1 /* linux/netfilter.h's NFPROTO_INET and NF_ACCEPT (its headers clash with netinet/in.h) */
#define NF_ACCEPT_ 1
#define TTL_MIN 30 /* seconds an answer's addresses stay allowed at least */
#define TTL_MAX 86400
#define UP_TIMEOUT 2.0 /* seconds per upstream resolver */
#define MAX_PENDING 256
#define MAX_TCP 16
#define TCP_IDLE 10.0
#define LEARNED_MAX 4096
#define NAMES_MAX 256

static double mono(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- records */
struct recs {
  int fd[2], cur;
  off_t size;
  long long n;
  double tokens, last;
};

static long long max_n(int fd) {
  long long best = 0;
  char buf[8192], carry[64] = "";
  size_t cl = 0;
  ssize_t r;
  bool line_start = true;
  lseek(fd, 0, SEEK_SET);
  /* lines begin {"n":N, */
  while ((r = read(fd, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < r; i++) {
      char c = buf[i];
      if (line_start && cl < sizeof carry - 1) carry[cl++] = c;
      if (c == '\n') {
        carry[cl] = '\0';
        long long v;
        if (sscanf(carry, "{\"n\":%lld", &v) == 1 && v > best) best = v;
        cl = 0;
        line_start = true;
      } else if (cl >= sizeof carry - 1) {
        line_start = false;
      }
    }
  }
  return best;
}

static void recs_open(struct recs *r, int dirfd) {
  const char *names[2] = {"egress.log", "egress.log.1"};
  long long top[2] = {0, 0};
  for (int i = 0; i < 2; i++) {
    r->fd[i] = openat(dirfd, names[i], O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    top[i] = r->fd[i] >= 0 ? max_n(r->fd[i]) : 0;
  }
  /* a container started again goes on counting where it was */
  r->cur = top[1] > top[0];
  r->n = top[r->cur];
  r->size = r->fd[r->cur] >= 0 ? lseek(r->fd[r->cur], 0, SEEK_END) : 0;
  r->tokens = 2 * EGRESS_LOG_RATE;
  r->last = mono();
}

/* at most EGRESS_LOG_RATE a second (a burst of twice that) */
static bool recs_allow(struct recs *r) {
  double now = mono();
  r->tokens += (now - r->last) * EGRESS_LOG_RATE;
  if (r->tokens > 2 * EGRESS_LOG_RATE) r->tokens = 2 * EGRESS_LOG_RATE;
  r->last = now;
  if (r->tokens < 1) return false;
  r->tokens -= 1;
  return true;
}

static void recs_write(struct recs *r, const char *fields) {
  if (r->fd[0] < 0 || r->fd[1] < 0) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[40], line[700];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  int len = snprintf(line, sizeof line, "{\"n\":%lld,\"time\":\"%s.%03ldZ\",%s}\n", r->n + 1, when, ts.tv_nsec / 1000000, fields);
  if (len <= 0 || (size_t)len >= sizeof line) return;
  /* two files in turn: the older one is emptied when the newer is full */
  if (r->size + len > EGRESS_LOG_MAX) {
    r->cur ^= 1;
    if (ftruncate(r->fd[r->cur], 0) < 0) return;
    r->size = 0;
  }
  if (write(r->fd[r->cur], line, (size_t)len) == len) {
    r->size += len;
    r->n++;
  }
}

/* ------------------------------------------------------------ nfnetlink */
struct nlb {
  uint8_t b[2048];
  size_t len;
};

static size_t nl_begin(struct nlb *m, uint16_t type, uint16_t flags, uint8_t family, uint16_t res_id, uint32_t seq) {
  size_t off = m->len;
  struct nlmsghdr *h = (struct nlmsghdr *)(m->b + off);
  memset(h, 0, NLMSG_HDRLEN + sizeof(struct nfgenmsg));
  h->nlmsg_type = type;
  h->nlmsg_flags = flags;
  h->nlmsg_seq = seq;
  struct nfgenmsg *g = (struct nfgenmsg *)(m->b + off + NLMSG_HDRLEN);
  g->nfgen_family = family;
  g->version = NFNETLINK_V0;
  g->res_id = htons(res_id);
  m->len += NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
  return off;
}

static void nl_end(struct nlb *m, size_t off) { ((struct nlmsghdr *)(m->b + off))->nlmsg_len = (uint32_t)(m->len - off); }

static size_t nl_attr(struct nlb *m, uint16_t type, const void *data, size_t len) {
  size_t off = m->len;
  struct nlattr *a = (struct nlattr *)(m->b + off);
  a->nla_type = type;
  a->nla_len = (uint16_t)(NLA_HDRLEN + len);
  if (len) memcpy(m->b + off + NLA_HDRLEN, data, len);
  memset(m->b + off + NLA_HDRLEN + len, 0, NLA_ALIGN(len) - len);
  m->len += NLA_HDRLEN + NLA_ALIGN(len);
  return off;
}

static void nl_nest_end(struct nlb *m, size_t off) { ((struct nlattr *)(m->b + off))->nla_len = (uint16_t)(m->len - off); }

/* Send m and wait for the acks of `acks` messages: 0, or the first error. */
static int nl_talk(int fd, struct nlb *m, int acks) {
  struct sockaddr_nl k = {.nl_family = AF_NETLINK};
  if (sendto(fd, m->b, m->len, 0, (struct sockaddr *)&k, sizeof k) < 0) return -errno;
  int got = 0, first = 0;
  uint8_t buf[4096];
  while (got < acks) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 1000) <= 0) return first ? first : -ETIMEDOUT;
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return -errno;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      const struct nlmsgerr *e = NLMSG_DATA(h);
      got++;
      if (e->error < 0 && !first) first = e->error;
    }
  }
  return first;
}

/* Add addr to set (DELSETELEM first when replace: kernels before 6.x keep
 * an element's old timeout when it is added again). */
static int set_elem(int fd, const char *set, int family, const uint8_t *addr, uint64_t timeout_ms, bool replace) {
  static uint32_t seq = 1;
  struct nlb m = {.len = 0};
  size_t b = nl_begin(&m, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES, seq++);
  nl_end(&m, b);
  for (int pass = replace ? 0 : 1; pass < 2; pass++) {
    uint16_t type = (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | (pass ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM));
    size_t h = nl_begin(&m, type, NLM_F_REQUEST | NLM_F_ACK | (pass ? NLM_F_CREATE : 0), NFPROTO_INET_, 0, seq++);
    nl_attr(&m, NFTA_SET_ELEM_LIST_TABLE, EGRESS_TABLE, sizeof EGRESS_TABLE);
    nl_attr(&m, NFTA_SET_ELEM_LIST_SET, set, strlen(set) + 1);
    size_t elems = nl_attr(&m, NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED, NULL, 0);
    size_t el = nl_attr(&m, NFTA_LIST_ELEM | NLA_F_NESTED, NULL, 0);
    size_t key = nl_attr(&m, NFTA_SET_ELEM_KEY | NLA_F_NESTED, NULL, 0);
    nl_attr(&m, NFTA_DATA_VALUE, addr, family == 4 ? 4 : 16);
    nl_nest_end(&m, key);
    if (pass) {
      uint64_t t = htobe64(timeout_ms);
      nl_attr(&m, NFTA_SET_ELEM_TIMEOUT, &t, sizeof t);
    }
    nl_nest_end(&m, el);
    nl_nest_end(&m, elems);
    nl_end(&m, h);
  }
  size_t e = nl_begin(&m, NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES, seq++);
  nl_end(&m, e);
  return nl_talk(fd, &m, replace ? 2 : 1);
}

/* ---- the table, as nfnetlink messages (libnftables would cost this
 * process a library load and a parse of the same, on the create's
 * path) ---- */
static size_t b_attr(struct buf *b, uint16_t type, const void *data, size_t len) {
  size_t off = b->len;
  struct nlattr a = {.nla_len = (uint16_t)(NLA_HDRLEN + len), .nla_type = type};
  static const uint8_t zero[8];
  buf_append(b, &a, sizeof a);
  if (len) buf_append(b, data, len);
  buf_append(b, zero, NLA_ALIGN(len) - len);
  return off;
}
static void b_nest_end(struct buf *b, size_t off) {
  if (b->data) ((struct nlattr *)(b->data + off))->nla_len = (uint16_t)(b->len - off);
}
static void b_u32(struct buf *b, uint16_t type, uint32_t v) {
  uint32_t x = htonl(v);
  b_attr(b, type, &x, 4);
}
static void b_str(struct buf *b, uint16_t type, const char *s) { b_attr(b, type, s, strlen(s) + 1); }

struct tx {
  struct buf b;
  uint32_t seq;
  int msgs; /* each asks for an ack */
};
static size_t b_msg(struct tx *t, uint16_t type, uint16_t flags, uint8_t family, uint16_t res_id) {
  size_t off = t->b.len;
  struct nlmsghdr h = {.nlmsg_type = type, .nlmsg_flags = flags, .nlmsg_seq = t->seq++};
  struct nfgenmsg g = {.nfgen_family = family, .version = NFNETLINK_V0, .res_id = htons(res_id)};
  buf_append(&t->b, &h, sizeof h);
  buf_append(&t->b, &g, sizeof g);
  if (flags & NLM_F_ACK) t->msgs++;
  return off;
}
static void b_msg_end(struct tx *t, size_t off) {
  if (t->b.data) ((struct nlmsghdr *)(t->b.data + off))->nlmsg_len = (uint32_t)(t->b.len - off);
}
static size_t nft_msg(struct tx *t, int type, uint16_t extra) {
  return b_msg(t, (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | type), (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | extra), NFPROTO_INET_, 0);
}

struct ex {
  size_t el, d;
};
static struct ex ex_begin(struct buf *b, const char *name) {
  struct ex e;
  e.el = b_attr(b, NFTA_LIST_ELEM | NLA_F_NESTED, NULL, 0);
  b_str(b, NFTA_EXPR_NAME, name);
  e.d = b_attr(b, NFTA_EXPR_DATA | NLA_F_NESTED, NULL, 0);
  return e;
}
static void ex_end(struct buf *b, struct ex e) {
  b_nest_end(b, e.d);
  b_nest_end(b, e.el);
}
static void e_meta(struct buf *b, uint32_t key) {
  struct ex e = ex_begin(b, "meta");
  b_u32(b, NFTA_META_DREG, NFT_REG_1);
  b_u32(b, NFTA_META_KEY, key);
  ex_end(b, e);
}
static void e_payload(struct buf *b, uint32_t base, uint32_t off, uint32_t len) {
  struct ex e = ex_begin(b, "payload");
  b_u32(b, NFTA_PAYLOAD_DREG, NFT_REG_1);
  b_u32(b, NFTA_PAYLOAD_BASE, base);
  b_u32(b, NFTA_PAYLOAD_OFFSET, off);
  b_u32(b, NFTA_PAYLOAD_LEN, len);
  ex_end(b, e);
}
static void e_cmp(struct buf *b, uint32_t op, const void *data, size_t len) {
  struct ex e = ex_begin(b, "cmp");
  b_u32(b, NFTA_CMP_SREG, NFT_REG_1);
  b_u32(b, NFTA_CMP_OP, op);
  size_t d = b_attr(b, NFTA_CMP_DATA | NLA_F_NESTED, NULL, 0);
  b_attr(b, NFTA_DATA_VALUE, data, len);
  b_nest_end(b, d);
  ex_end(b, e);
}
static void e_bitwise(struct buf *b, const void *mask, size_t len) {
  static const uint8_t zero[16];
  struct ex e = ex_begin(b, "bitwise");
  b_u32(b, NFTA_BITWISE_SREG, NFT_REG_1);
  b_u32(b, NFTA_BITWISE_DREG, NFT_REG_1);
  b_u32(b, NFTA_BITWISE_LEN, (uint32_t)len);
  size_t d = b_attr(b, NFTA_BITWISE_MASK | NLA_F_NESTED, NULL, 0);
  b_attr(b, NFTA_DATA_VALUE, mask, len);
  b_nest_end(b, d);
  d = b_attr(b, NFTA_BITWISE_XOR | NLA_F_NESTED, NULL, 0);
  b_attr(b, NFTA_DATA_VALUE, zero, len);
  b_nest_end(b, d);
  ex_end(b, e);
}
static void e_verdict(struct buf *b, int code, const char *chain) {
  struct ex e = ex_begin(b, "immediate");
  b_u32(b, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
  size_t d = b_attr(b, NFTA_IMMEDIATE_DATA | NLA_F_NESTED, NULL, 0);
  size_t v = b_attr(b, NFTA_DATA_VERDICT | NLA_F_NESTED, NULL, 0);
  b_u32(b, NFTA_VERDICT_CODE, (uint32_t)code);
  if (chain) b_str(b, NFTA_VERDICT_CHAIN, chain);
  b_nest_end(b, v);
  b_nest_end(b, d);
  ex_end(b, e);
}

static size_t rule_begin(struct tx *t, const char *chain, size_t *exprs) {
  size_t h = nft_msg(t, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
  b_str(&t->b, NFTA_RULE_TABLE, EGRESS_TABLE);
  b_str(&t->b, NFTA_RULE_CHAIN, chain);
  *exprs = b_attr(&t->b, NFTA_RULE_EXPRESSIONS | NLA_F_NESTED, NULL, 0);
  return h;
}
static void rule_end(struct tx *t, size_t h, size_t exprs) {
  b_nest_end(&t->b, exprs);
  b_msg_end(t, h);
}

/* one rule of the output chain, as nft itself would write it */
static void put_match(struct tx *t, const struct egress_match *m) {
  struct buf *b = &t->b;
  size_t ex, h = rule_begin(t, "output", &ex);
  if (m->oif_lo) {
    uint32_t lo = 1; /* LOOPBACK_IFINDEX: lo is 1 in every namespace */
    e_meta(b, NFT_META_OIF);
    e_cmp(b, NFT_CMP_EQ, &lo, 4);
  }
  if (m->ct_ok) {
    uint32_t mask = 0x2 | 0x4, zero = 0; /* NF_CT_STATE_BIT of established and related */
    struct ex e = ex_begin(b, "ct");
    b_u32(b, NFTA_CT_DREG, NFT_REG_1);
    b_u32(b, NFTA_CT_KEY, NFT_CT_STATE);
    ex_end(b, e);
    e_bitwise(b, &mask, 4);
    e_cmp(b, NFT_CMP_NEQ, &zero, 4);
  }
  if (m->mark) {
    uint32_t mark = EGRESS_MARK;
    e_meta(b, NFT_META_MARK);
    e_cmp(b, NFT_CMP_EQ, &mark, 4);
  }
  if (m->family) { /* an inet table sees both: the header's family first */
    uint8_t nfproto = m->family == 4 ? 2 : 10; /* NFPROTO_IPV4, NFPROTO_IPV6 */
    e_meta(b, NFT_META_NFPROTO);
    e_cmp(b, NFT_CMP_EQ, &nfproto, 1);
  }
  uint32_t alen = m->family == 4 ? 4 : 16, aoff = m->family == 4 ? 16 : 24;
  if (m->prefix > 0) {
    e_payload(b, NFT_PAYLOAD_NETWORK_HEADER, aoff, alen);
    uint8_t mask[16] = {0}, net[16];
    for (int i = 0; i < m->prefix; i++) mask[i / 8] |= (uint8_t)(0x80 >> (i % 8));
    for (uint32_t i = 0; i < alen; i++) net[i] = m->addr[i] & mask[i];
    if ((uint32_t)m->prefix < alen * 8) e_bitwise(b, mask, alen);
    e_cmp(b, NFT_CMP_EQ, net, alen);
  }
  if (m->set >= 0) {
    char set[32];
    snprintf(set, sizeof set, "n%d_%d", m->set, m->family);
    e_payload(b, NFT_PAYLOAD_NETWORK_HEADER, aoff, alen);
    struct ex e = ex_begin(b, "lookup");
    b_str(b, NFTA_LOOKUP_SET, set);
    b_u32(b, NFTA_LOOKUP_SREG, NFT_REG_1);
    ex_end(b, e);
  }
  if (m->proto) {
    e_meta(b, NFT_META_L4PROTO);
    e_cmp(b, NFT_CMP_EQ, &m->proto, 1);
  }
  if (m->icmp6_type >= 0) {
    uint8_t type = (uint8_t)m->icmp6_type;
    e_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1);
    e_cmp(b, NFT_CMP_EQ, &type, 1);
  }
  if (m->port_lo) {
    uint16_t lo = htons(m->port_lo), hi = htons(m->port_hi);
    e_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
    if (m->port_lo == m->port_hi) e_cmp(b, NFT_CMP_EQ, &lo, 2);
    else { /* big-endian bytes compare as the numbers do */ e_cmp(b, NFT_CMP_GTE, &lo, 2);
      e_cmp(b, NFT_CMP_LTE, &hi, 2);
    }
  }
  if (m->verdict == EGRESS_ACCEPT) e_verdict(b, NF_ACCEPT_, NULL);
  else e_verdict(b, NFT_JUMP, "deny");
  rule_end(t, h, ex);
}

static void tx_begin(struct tx *t) {
  size_t h = b_msg(t, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
  b_msg_end(t, h);
}

/* close the batch, send it, and wait for every message's ack */
static int tx_send(int fd, struct tx *t) {
  size_t h = b_msg(t, NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
  b_msg_end(t, h);
  if (!t->b.data) return -ENOMEM;
  struct sockaddr_nl k = {.nl_family = AF_NETLINK};
  int first = 0, got = 0;
  if (sendto(fd, t->b.data, t->b.len, 0, (struct sockaddr *)&k, sizeof k) < 0) first = -errno;
  uint8_t r[8192];
  while (!first && got < t->msgs) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 2000) <= 0) {
      first = -ETIMEDOUT;
      break;
    }
    ssize_t n = recv(fd, r, sizeof r, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      first = -errno;
      break;
    }
    for (struct nlmsghdr *x = (struct nlmsghdr *)r; NLMSG_OK(x, (size_t)n); x = NLMSG_NEXT(x, n)) {
      if (x->nlmsg_type != NLMSG_ERROR) continue;
      got++;
      int e = ((const struct nlmsgerr *)NLMSG_DATA(x))->error;
      if (e < 0 && !first) first = e;
    }
  }
  buf_free(&t->b);
  t->msgs = 0;
  return first;
}

int egress_table_install(const struct egress_table *tb, berth_error_t *err) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  struct sockaddr_nl a = {.nl_family = AF_NETLINK};
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    return berth_error(err, e, "egress: open a netfilter socket");
  }
  struct tx t = {.seq = 1};
  tx_begin(&t);
  size_t h = nft_msg(&t, NFT_MSG_NEWTABLE, NLM_F_CREATE);
  b_str(&t.b, NFTA_TABLE_NAME, EGRESS_TABLE);
  b_msg_end(&t, h);
  for (int i = 0; i < 2 * tb->sets; i++) {
    char name[32];
    int fam = i % 2 ? 6 : 4;
    snprintf(name, sizeof name, "n%d_%d", i / 2, fam);
    h = nft_msg(&t, NFT_MSG_NEWSET, NLM_F_CREATE);
    b_str(&t.b, NFTA_SET_TABLE, EGRESS_TABLE);
    b_str(&t.b, NFTA_SET_NAME, name);
    b_u32(&t.b, NFTA_SET_FLAGS, NFT_SET_TIMEOUT);
    b_u32(&t.b, NFTA_SET_KEY_TYPE, fam == 4 ? 7 : 8); /* nft's ipv4_addr, ipv6_addr */
    b_u32(&t.b, NFTA_SET_KEY_LEN, fam == 4 ? 4 : 16);
    b_u32(&t.b, NFTA_SET_ID, (uint32_t)i + 1);
    size_t d = b_attr(&t.b, NFTA_SET_DESC | NLA_F_NESTED, NULL, 0);
    b_u32(&t.b, NFTA_SET_DESC_SIZE, 65536);
    b_nest_end(&t.b, d);
    b_msg_end(&t, h);
  }
  /* every refusal goes through here: recorded (at a bounded rate: a flood
   * cannot fill the disk), then refused at once, never left to time out */
  h = nft_msg(&t, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
  b_str(&t.b, NFTA_CHAIN_TABLE, EGRESS_TABLE);
  b_str(&t.b, NFTA_CHAIN_NAME, "deny");
  b_msg_end(&t, h);
  size_t ex;
  if (tb->log) {
    h = rule_begin(&t, "deny", &ex);
    struct ex e = ex_begin(&t.b, "limit");
    uint64_t rate = htobe64(EGRESS_LOG_RATE), unit = htobe64(1);
    b_attr(&t.b, NFTA_LIMIT_RATE, &rate, 8);
    b_attr(&t.b, NFTA_LIMIT_UNIT, &unit, 8);
    b_u32(&t.b, NFTA_LIMIT_BURST, 2 * EGRESS_LOG_RATE);
    b_u32(&t.b, NFTA_LIMIT_TYPE, NFT_LIMIT_PKTS);
    b_u32(&t.b, NFTA_LIMIT_FLAGS, 0);
    ex_end(&t.b, e);
    e = ex_begin(&t.b, "log");
    uint16_t group = htons(EGRESS_LOG_GROUP);
    b_attr(&t.b, NFTA_LOG_GROUP, &group, 2);
    ex_end(&t.b, e);
    rule_end(&t, h, ex);
  }
  h = rule_begin(&t, "deny", &ex);
  uint8_t tcp = IPPROTO_TCP;
  e_meta(&t.b, NFT_META_L4PROTO);
  e_cmp(&t.b, NFT_CMP_EQ, &tcp, 1);
  struct ex e = ex_begin(&t.b, "reject");
  b_u32(&t.b, NFTA_REJECT_TYPE, NFT_REJECT_TCP_RST);
  ex_end(&t.b, e);
  rule_end(&t, h, ex);
  h = rule_begin(&t, "deny", &ex);
  e = ex_begin(&t.b, "reject");
  b_u32(&t.b, NFTA_REJECT_TYPE, NFT_REJECT_ICMPX_UNREACH);
  uint8_t code = NFT_REJECT_ICMPX_ADMIN_PROHIBITED;
  b_attr(&t.b, NFTA_REJECT_ICMP_CODE, &code, 1);
  ex_end(&t.b, e);
  rule_end(&t, h, ex);
  h = nft_msg(&t, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
  b_str(&t.b, NFTA_CHAIN_TABLE, EGRESS_TABLE);
  b_str(&t.b, NFTA_CHAIN_NAME, "output");
  size_t hook = b_attr(&t.b, NFTA_CHAIN_HOOK | NLA_F_NESTED, NULL, 0);
  b_u32(&t.b, NFTA_HOOK_HOOKNUM, 3); /* NF_INET_LOCAL_OUT */
  b_u32(&t.b, NFTA_HOOK_PRIORITY, 0); /* filter */
  b_nest_end(&t.b, hook);
  b_u32(&t.b, NFTA_CHAIN_POLICY, NF_ACCEPT_);
  b_str(&t.b, NFTA_CHAIN_TYPE, "filter");
  b_msg_end(&t, h);
  int r = 0;
  for (size_t i = 0; i < tb->n && r == 0; i++) {
    put_match(&t, &tb->m[i]);
    /* a batch goes in one message: keep each well under the socket's buffer */
    if (t.b.len > (48 << 10) && i + 1 < tb->n) {
      r = tx_send(fd, &t);
      tx_begin(&t);
    }
  }
  if (r == 0) r = tx_send(fd, &t);
  else buf_free(&t.b);
  close(fd);
  if (r < 0) return berth_error(err, r, "egress: the kernel refused the policy's nftables table (is nf_tables available?)");
  return 0;
}

/* an NFLOG socket bound to the refusals' group */
static int nflog_open(berth_error_t *err) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
  struct sockaddr_nl a = {.nl_family = AF_NETLINK};
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    return berth_error(err, e, "open the NFLOG socket for the egress records");
  }
  struct nlb m = {.len = 0};
  size_t h = nl_begin(&m, NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, AF_UNSPEC, EGRESS_LOG_GROUP, 1);
  struct nfulnl_msg_config_cmd cmd = {.command = NFULNL_CFG_CMD_BIND};
  nl_attr(&m, NFULA_CFG_CMD, &cmd, sizeof cmd);
  nl_end(&m, h);
  h = nl_begin(&m, NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, AF_UNSPEC, EGRESS_LOG_GROUP, 2);
  struct nfulnl_msg_config_mode mode = {.copy_range = htonl(64), .copy_mode = NFULNL_COPY_PACKET};
  nl_attr(&m, NFULA_CFG_MODE, &mode, sizeof mode);
  /* each refusal at once: by default the kernel gathers 100 of them or a
   * second's worth (nftables' limit keeps the rate low anyway) */
  uint32_t one = htonl(1);
  nl_attr(&m, NFULA_CFG_QTHRESH, &one, sizeof one);
  nl_end(&m, h);
  int r = nl_talk(fd, &m, 2);
  if (r < 0) {
    close(fd);
    return berth_error(err, r, "bind NFLOG group %d for the egress records", EGRESS_LOG_GROUP);
  }
  return fd;
}

/* ---------------------------------------------------------------- state */
struct tconn {
  int fd;
  unsigned gen;
  uint8_t *buf;
  size_t have;
  double idle;
};

struct pending {
  bool used, tcp_client, up_tcp, sent;
  int tidx;
  unsigned tgen;
  struct sockaddr_in caddr;
  uint16_t cid, uid;
  struct dns_query q;
  uint8_t *msg;
  size_t mlen;
  int up, fd;
  uint8_t *rbuf;
  size_t rhave, rneed;
  double deadline;
};

struct learned {
  int set, family;
  uint8_t addr[16];
  double expires;
};

struct named {
  int family;
  uint8_t addr[16];
  char name[DNS_MAX_NAME + 1];
};

struct helper {
  const struct egress_policy *p;
  const struct egress_net *n;
  int pidfd, udp, tcp, nft, nflog;
  struct recs recs;
  struct tconn t[MAX_TCP];
  struct pending q[MAX_PENDING];
  struct learned learned[LEARNED_MAX];
  size_t nlearned;
  struct named names[NAMES_MAX]; /* addresses of recent answers: refusals get a name */
  size_t names_next;
  unsigned gen;
};

static uint16_t rand16(void) {
  uint16_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) v = (uint16_t)(mono() * 1e6);
  return v;
}

static void reply_client(struct helper *H, struct pending *pd, uint8_t *msg, size_t len) {
  if (len < DNS_HEADER) return;
  dns_put16(msg, pd->cid);
  if (!pd->tcp_client) {
    sendto(H->udp, msg, len, MSG_DONTWAIT, (struct sockaddr *)&pd->caddr, sizeof pd->caddr);
    return;
  }
  struct tconn *c = &H->t[pd->tidx];
  if (c->fd < 0 || c->gen != pd->tgen) return;
  uint8_t l[2];
  dns_put16(l, (uint16_t)len);
  struct iovec iov[2] = {{l, 2}, {msg, len}};
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
  /* a client that does not read its answers loses its connection */
  if (sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)(len + 2)) {
    close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
  }
}

static void pending_free(struct pending *pd) {
  if (pd->fd >= 0) close(pd->fd);
  free(pd->msg);
  free(pd->rbuf);
  memset(pd, 0, sizeof *pd);
  pd->fd = -1;
}

static void reply_error(struct helper *H, struct pending *pd, int rcode) {
  uint8_t out[DNS_HEADER + DNS_MAX_NAME + 8];
  size_t n = dns_reply_error(pd->msg, &pd->q, rcode, out, sizeof out);
  if (n) reply_client(H, pd, out, n);
}

static const char *qtype_name(uint16_t t) {
  switch (t) {
  case DNS_T_A: return "A";
  case DNS_T_AAAA: return "AAAA";
  case DNS_T_CNAME: return "CNAME";
  case 15: return "MX";
  case 16: return "TXT";
  case 33: return "SRV";
  case 65: return "HTTPS";
  case 12: return "PTR";
  default: return NULL;
  }
}

/* a socket to upstream resolver i, its packets marked as the resolver's */
static int upstream_socket(struct helper *H, int i, bool tcp) {
  const struct egress_addr *u = &H->n->up[i];
  int fd = socket(u->family == 4 ? AF_INET : AF_INET6, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  unsigned mark = EGRESS_MARK;
  struct sockaddr_storage ss = {0};
  socklen_t sl;
  if (u->family == 4) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET, a->sin_port = htons(u->port);
    memcpy(&a->sin_addr, u->addr, 4);
    sl = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6, a->sin6_port = htons(u->port);
    memcpy(&a->sin6_addr, u->addr, 16);
    sl = sizeof *a;
  }
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0 ||
      (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)) {
    close(fd);
    return -1;
  }
  return fd;
}

/* (re)send pd's query to its current upstream over UDP; false when none is left */
static bool upstream_send(struct helper *H, struct pending *pd) {
  for (; pd->up < (int)H->n->nup; pd->up++) {
    if (pd->fd >= 0) close(pd->fd);
    pd->fd = upstream_socket(H, pd->up, false);
    if (pd->fd < 0) continue;
    pd->uid = rand16();
    dns_put16(pd->msg, pd->uid);
    if (send(pd->fd, pd->msg, pd->mlen, MSG_DONTWAIT) == (ssize_t)pd->mlen) {
      pd->deadline = mono() + UP_TIMEOUT;
      pd->up_tcp = false;
      return true;
    }
  }
  return false;
}

static void on_addr(int family, const uint8_t *addr, uint32_t ttl, void *ud) {
  void **a = ud;
  struct helper *H = a[0];
  struct pending *pd = a[1];
  uint64_t secs = ttl < TTL_MIN ? TTL_MIN : ttl > TTL_MAX ? TTL_MAX : ttl;
  double now = mono();
  for (size_t i = 0; i < H->p->n; i++) {
    const struct egress_rule *r = &H->p->rules[i];
    if (r->set < 0 || !egress_name_match(r, pd->q.name)) continue;
    char set[32];
    snprintf(set, sizeof set, "n%d_%d", r->set, family);
    struct learned *l = NULL;
    for (size_t k = 0; k < H->nlearned && !l; k++)
      if (H->learned[k].set == r->set && H->learned[k].family == family && !memcmp(H->learned[k].addr, addr, family == 4 ? 4 : 16))
        l = &H->learned[k];
    if (l && l->expires >= now + (double)secs) continue; /* held long enough already */
    bool present = l && l->expires > now + 1;
    int e = set_elem(H->nft, set, family, addr, secs * 1000, present);
    if (e == -ENOENT && present) e = set_elem(H->nft, set, family, addr, secs * 1000, false); /* expired meanwhile */
    if (e < 0) continue;
    if (!l) {
      if (H->nlearned < LEARNED_MAX) l = &H->learned[H->nlearned++];
      else { /* full: forget the one that ends first */ l = &H->learned[0];
        for (size_t k = 1; k < LEARNED_MAX; k++)
          if (H->learned[k].expires < l->expires) l = &H->learned[k];
      }
    }
    *l = (struct learned){.set = r->set, .family = family, .expires = now + (double)secs};
    memcpy(l->addr, addr, family == 4 ? 4 : 16);
  }
  struct named *nm = &H->names[H->names_next++ % NAMES_MAX];
  nm->family = family;
  memcpy(nm->addr, addr, family == 4 ? 4 : 16);
  snprintf(nm->name, sizeof nm->name, "%s", pd->q.name);
}

/* an upstream's answer for pd: its addresses into the sets, then to the client */
static void answer(struct helper *H, struct pending *pd, uint8_t *msg, size_t len) {
  if (dns_rcode(msg) == DNS_R_NOERROR) {
    void *ud[2] = {H, pd};
    if (dns_reply_addrs(msg, len, &pd->q, on_addr, ud) < 0) {
      reply_error(H, pd, DNS_R_SERVFAIL);
      return;
    }
  }
  reply_client(H, pd, msg, len);
}

static void query(struct helper *H, const uint8_t *msg, size_t len, bool tcp, int tidx, const struct sockaddr_in *from) {
  struct pending tmp = {.fd = -1, .tcp_client = tcp, .tidx = tidx, .tgen = tcp ? H->t[tidx].gen : 0};
  if (from) tmp.caddr = *from;
  int pr = dns_parse_query(msg, len, &tmp.q);
  tmp.cid = tmp.q.id;
  tmp.msg = (uint8_t *)msg;
  if (pr < 0) {
    if (len >= DNS_HEADER && !(msg[2] & 0x80)) reply_error(H, &tmp, DNS_R_FORMERR);
    return;
  }
  if ((tmp.q.flags >> 11 & 0xf) != 0) { /* only standard queries */
    reply_error(H, &tmp, DNS_R_NOTIMP);
    return;
  }
  if (tmp.q.qclass != DNS_C_IN) {
    reply_error(H, &tmp, DNS_R_REFUSED);
    return;
  }
  if (!tmp.q.name_ok || !egress_name_allowed(H->p, tmp.q.name)) {
    reply_error(H, &tmp, DNS_R_NXDOMAIN);
    if (H->p->log && recs_allow(&H->recs)) {
      char f[400];
      const char *tn = qtype_name(tmp.q.qtype);
      char tbuf[8];
      if (!tn) snprintf(tbuf, sizeof tbuf, "%u", tmp.q.qtype), tn = tbuf;
      snprintf(f, sizeof f, "\"kind\":\"dns\",\"name\":\"%s\",\"type\":\"%s\"", tmp.q.name_ok ? tmp.q.name : "(unreadable)", tn);
      recs_write(&H->recs, f);
    }
    return;
  }
  struct pending *pd = NULL;
  for (int i = 0; i < MAX_PENDING && !pd; i++)
    if (!H->q[i].used) pd = &H->q[i];
  if (!pd) {
    reply_error(H, &tmp, DNS_R_SERVFAIL);
    return;
  }
  *pd = tmp;
  pd->used = true;
  pd->msg = malloc(len);
  if (!pd->msg) {
    pending_free(pd);
    return;
  }
  memcpy(pd->msg, msg, len);
  pd->mlen = len;
  if (!upstream_send(H, pd)) {
    reply_error(H, pd, DNS_R_SERVFAIL);
    pending_free(pd);
  }
}

/* an upstream answered pd over UDP */
static void upstream_udp(struct helper *H, struct pending *pd) {
  static uint8_t buf[65536];
  ssize_t n = recv(pd->fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0 && errno == ECONNREFUSED) pd->deadline = 0; /* nobody there: the next upstream */
  if (n < DNS_HEADER || dns_get16(buf) != pd->uid || !(buf[2] & 0x80)) return; /* not the answer: keep waiting */
  if ((buf[2] & 0x02) && pd->tcp_client) { /* truncated: the same upstream over TCP */
    close(pd->fd);
    pd->fd = upstream_socket(H, pd->up, true);
    if (pd->fd < 0) {
      reply_error(H, pd, DNS_R_SERVFAIL);
      pending_free(pd);
      return;
    }
    pd->up_tcp = true, pd->sent = false, pd->rhave = 0, pd->rneed = 0;
    pd->deadline = mono() + UP_TIMEOUT;
    return;
  }
  answer(H, pd, buf, (size_t)n);
  pending_free(pd);
}

/* pd's TCP exchange with its upstream: write the query, read the answer */
static void upstream_tcp(struct helper *H, struct pending *pd, short revents) {
  if (!pd->sent) {
    if (!(revents & (POLLOUT | POLLERR | POLLHUP))) return;
    int e = 0;
    socklen_t el = sizeof e;
    uint8_t l[2];
    dns_put16(l, (uint16_t)pd->mlen);
    struct iovec iov[2] = {{l, 2}, {pd->msg, pd->mlen}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    if (getsockopt(pd->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e ||
        sendmsg(pd->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)(pd->mlen + 2)) {
      reply_error(H, pd, DNS_R_SERVFAIL);
      pending_free(pd);
      return;
    }
    pd->sent = true;
    return;
  }
  if (!pd->rbuf && !(pd->rbuf = malloc(2 + 65535))) {
    pending_free(pd);
    return;
  }
  size_t want = pd->rneed ? pd->rneed + 2 : 2;
  ssize_t n = recv(pd->fd, pd->rbuf + pd->rhave, want - pd->rhave, MSG_DONTWAIT);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    reply_error(H, pd, DNS_R_SERVFAIL);
    pending_free(pd);
    return;
  }
  pd->rhave += (size_t)n;
  if (!pd->rneed && pd->rhave >= 2) {
    pd->rneed = dns_get16(pd->rbuf);
    if (pd->rneed < DNS_HEADER) {
      reply_error(H, pd, DNS_R_SERVFAIL);
      pending_free(pd);
    }
    return;
  }
  if (pd->rneed && pd->rhave == pd->rneed + 2) {
    if (dns_get16(pd->rbuf + 2) != pd->uid) reply_error(H, pd, DNS_R_SERVFAIL);
    else answer(H, pd, pd->rbuf + 2, pd->rneed);
    pending_free(pd);
  }
}

static void tcp_close(struct tconn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  free(c->buf);
  c->buf = NULL;
  c->have = 0;
}

static void tcp_read(struct helper *H, int i) {
  struct tconn *c = &H->t[i];
  ssize_t n = recv(c->fd, c->buf + c->have, 2 + 65535 - c->have, MSG_DONTWAIT);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    tcp_close(c);
    return;
  }
  c->have += (size_t)n;
  c->idle = mono() + TCP_IDLE;
  while (c->fd >= 0 && c->have >= 2) {
    size_t l = dns_get16(c->buf);
    if (l < DNS_HEADER) {
      tcp_close(c);
      return;
    }
    if (c->have < l + 2) return;
    query(H, c->buf + 2, l, true, i, NULL);
    if (c->fd < 0) return;
    memmove(c->buf, c->buf + 2 + l, c->have - 2 - l);
    c->have -= 2 + l;
  }
}

static void nflog_read(struct helper *H) {
  static uint8_t buf[16384];
  for (;;) {
    ssize_t n = recv(H->nflog, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) return; /* ENOBUFS (a flood overran us) counts as nothing to read */
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != (NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET)) continue;
      size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
      const uint8_t *pkt = NULL;
      size_t plen = 0;
      while (off + NLA_HDRLEN <= h->nlmsg_len) {
        const struct nlattr *a = (const struct nlattr *)((const uint8_t *)h + off);
        if (a->nla_len < NLA_HDRLEN || off + a->nla_len > h->nlmsg_len) break;
        if ((a->nla_type & NLA_TYPE_MASK) == NFULA_PAYLOAD) {
          pkt = (const uint8_t *)a + NLA_HDRLEN;
          plen = a->nla_len - NLA_HDRLEN;
        }
        off += NLA_ALIGN(a->nla_len);
      }
      if (!pkt || plen < 1) continue;
      int family = pkt[0] >> 4, proto, port = -1;
      const uint8_t *dst, *l4;
      size_t l4len;
      if (family == 4 && plen >= 20 && (size_t)(pkt[0] & 15) * 4 <= plen) {
        proto = pkt[9], dst = pkt + 16, l4 = pkt + (pkt[0] & 15) * 4, l4len = plen - (size_t)(pkt[0] & 15) * 4;
      } else if (family == 6 && plen >= 40) {
        proto = pkt[6], dst = pkt + 24, l4 = pkt + 40, l4len = plen - 40;
        if (proto == 0 && l4len >= 8 && (size_t)(l4[1] + 1) * 8 <= l4len) { /* past a hop-by-hop header */
          size_t hl = (size_t)(l4[1] + 1) * 8;
          proto = l4[0], l4 += hl, l4len -= hl;
        }
      } else {
        continue;
      }
      if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && l4len >= 4) port = dns_get16(l4 + 2);
      char a[INET6_ADDRSTRLEN], f[500], ps[16] = "", pn[24];
      inet_ntop(family == 4 ? AF_INET : AF_INET6, dst, a, sizeof a);
      const char *pname = proto == IPPROTO_TCP      ? "tcp"
                          : proto == IPPROTO_UDP    ? "udp"
                          : proto == IPPROTO_ICMP   ? "icmp"
                          : proto == IPPROTO_ICMPV6 ? "icmpv6"
                                                    : NULL;
      if (!pname) snprintf(pn, sizeof pn, "%d", proto), pname = pn;
      if (port >= 0) snprintf(ps, sizeof ps, ",\"port\":%d", port);
      const char *name = NULL;
      for (size_t i = 0; i < NAMES_MAX && !name; i++) {
        const struct named *nm = &H->names[(H->names_next + NAMES_MAX - 1 - i) % NAMES_MAX];
        if (nm->name[0] && nm->family == family && !memcmp(nm->addr, dst, family == 4 ? 4 : 16)) name = nm->name;
      }
      int k = snprintf(f, sizeof f, "\"kind\":\"connect\",\"proto\":\"%s\",\"destination\":\"%s\"%s", pname, a, ps);
      if (name && k > 0 && (size_t)k < sizeof f) snprintf(f + k, sizeof f - (size_t)k, ",\"name\":\"%s\"", name);
      recs_write(&H->recs, f); /* nftables limited the rate already */
    }
  }
}

static __attribute__((noreturn)) void serve(struct helper *H) {
  for (int i = 0; i < MAX_TCP; i++) H->t[i].fd = -1;
  for (int i = 0; i < MAX_PENDING; i++) H->q[i].fd = -1;
  struct pollfd pf[4 + MAX_TCP + MAX_PENDING];
  int qi[MAX_PENDING];
  for (;;) {
    size_t n = 0;
    pf[n++] = (struct pollfd){.fd = H->pidfd, .events = POLLIN};
    pf[n++] = (struct pollfd){.fd = H->udp, .events = POLLIN};
    pf[n++] = (struct pollfd){.fd = H->tcp, .events = POLLIN};
    pf[n++] = (struct pollfd){.fd = H->nflog, .events = POLLIN};
    for (int i = 0; i < MAX_TCP; i++) pf[n++] = (struct pollfd){.fd = H->t[i].fd, .events = POLLIN};
    size_t qbase = n, nq = 0;
    double now = mono(), wake = now + 60;
    for (int i = 0; i < MAX_PENDING; i++) {
      struct pending *pd = &H->q[i];
      if (!pd->used) continue;
      pf[n++] = (struct pollfd){.fd = pd->fd, .events = (short)(pd->up_tcp && !pd->sent ? POLLOUT : POLLIN)};
      qi[nq++] = i;
      if (pd->deadline < wake) wake = pd->deadline;
    }
    for (int i = 0; i < MAX_TCP; i++)
      if (H->t[i].fd >= 0 && H->t[i].idle < wake) wake = H->t[i].idle;
    int ms = wake <= now ? 0 : (int)((wake - now) * 1000) + 1;
    int r = poll(pf, n, ms);
    if (r < 0 && errno != EINTR) _exit(1);
    if (r > 0 && pf[0].revents) _exit(0); /* the container's init is gone */
    if (r > 0 && pf[1].revents) {
      for (int k = 0; k < 64; k++) { /* a batch, then the others get their turn */
        static uint8_t buf[4096];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t m = recvfrom(H->udp, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (m < 0) break;
        query(H, buf, (size_t)m, false, 0, &from);
      }
    }
    if (r > 0 && pf[2].revents) {
      int c = accept4(H->tcp, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      int slot = -1;
      for (int i = 0; i < MAX_TCP && slot < 0 && c >= 0; i++)
        if (H->t[i].fd < 0) slot = i;
      uint8_t *b = slot >= 0 ? malloc(2 + 65535) : NULL;
      if (c >= 0 && (!b || slot < 0)) close(c);
      else if (c >= 0) H->t[slot] = (struct tconn){.fd = c, .gen = ++H->gen, .buf = b, .idle = mono() + TCP_IDLE};
      if (c < 0 || slot < 0) free(b);
    }
    if (r > 0 && pf[3].revents) nflog_read(H);
    for (int i = 0; r > 0 && i < MAX_TCP; i++)
      if (H->t[i].fd >= 0 && pf[4 + i].revents) tcp_read(H, i);
    for (size_t k = 0; r > 0 && k < nq; k++) {
      struct pending *pd = &H->q[qi[k]];
      short ev = pf[qbase + k].revents;
      if (!pd->used || !ev) continue;
      if (pd->up_tcp) upstream_tcp(H, pd, ev);
      else if (ev & POLLIN) upstream_udp(H, pd);
      else if (ev & (POLLERR | POLLHUP)) pd->deadline = 0; /* refused: the next upstream */
    }
    now = mono();
    for (int i = 0; i < MAX_PENDING; i++) {
      struct pending *pd = &H->q[i];
      if (!pd->used || pd->deadline > now) continue;
      pd->up++;
      if (pd->up_tcp || !upstream_send(H, pd)) {
        reply_error(H, pd, DNS_R_SERVFAIL);
        pending_free(pd);
      }
    }
    for (int i = 0; i < MAX_TCP; i++)
      if (H->t[i].fd >= 0 && H->t[i].idle <= now) tcp_close(&H->t[i]);
  }
}

/* ------------------------------------------------------------ the process */
/* After the setup: no socket but IPv4 and IPv6 ones (so no new netlink
 * socket: nothing but the table's sets can be changed), and no exec. */
static int seal(void) {
#if defined(__x86_64__)
#define SEAL_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SEAL_ARCH AUDIT_ARCH_AARCH64
#endif
#ifdef SEAL_ARCH
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SEAL_ARCH, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_execve, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_execveat, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 4),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {.len = (unsigned short)(sizeof f / sizeof *f), .filter = f};
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
#else
  return 0;
#endif
}

static int confine(bool root, berth_error_t *err) {
  uint64_t keep = 1ULL << CAP_NET_ADMIN;
  if (security_drop_bounding(keep, err) < 0) return -1;
  if (root) { /* nobody, holding CAP_NET_ADMIN alone */
    if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 ||
        setresuid(65534, 65534, 65534) < 0)
      return berth_error(err, errno, "drop to nobody");
  }
  if (security_drop_caps(keep, err) < 0 || security_no_new_privs(err) < 0) return -1;
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (seal() < 0) return berth_error(err, errno, "seal the egress helper (seccomp)");
  return security_seccomp(err);
}

static int listen_on(int type) {
  int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
  inet_pton(AF_INET, EGRESS_RESOLVER, &a.sin_addr);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || (type == SOCK_STREAM && listen(fd, MAX_TCP) < 0)) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

/* In the helper: the table, the resolver's sockets, the records, then
 * confinement. 0, or -1 with msg saying why. */
static int setup(struct helper *H, struct egress_net *n, int ufd, int nfd, int dirfd, bool rootless, char *msg, size_t len) {
  cleanup_error berth_error_t e = NULL;
  (void)dirfd;
  /* the host's addresses, seen from its own namespace */
  egress_host_addrs(n);
  if ((ufd >= 0 && setns(ufd, CLONE_NEWUSER) < 0) || setns(nfd, CLONE_NEWNET) < 0) {
    snprintf(msg, len, "egress: enter the container's network namespace: %s", strerror(errno));
    return -1;
  }
  struct egress_table t;
  if (egress_table_build(H->p, n, &t) < 0) {
    snprintf(msg, len, "egress: out of memory");
    return -1;
  }
  int r = egress_table_install(&t, &e);
  egress_table_free(&t);
  if (r < 0) {
    snprintf(msg, len, "%s", e->msg);
    return -1;
  }
  /* lo up first (rootless, the container's init does it too, maybe
   * later): bound before, 127.0.0.11 would not be an address of this
   * namespace yet, and the answers would leave from 127.0.0.1, which the
   * clients, talking to 127.0.0.11, do not take */
  int rt = nl_open(&e);
  if (rt < 0 || nl_link_up(rt, "lo", 0, &e) < 0) {
    snprintf(msg, len, "egress: bring up the container's loopback: %s", e->msg);
    if (rt >= 0) close(rt);
    return -1;
  }
  close(rt);
  H->udp = listen_on(SOCK_DGRAM);
  H->tcp = listen_on(SOCK_STREAM);
  H->nft = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  struct sockaddr_nl na = {.nl_family = AF_NETLINK};
  if (H->udp < 0 || H->tcp < 0 || H->nft < 0 || bind(H->nft, (struct sockaddr *)&na, sizeof na) < 0) {
    snprintf(msg, len, "egress: the resolver cannot listen on %s:53 in the container: %s", EGRESS_RESOLVER, strerror(errno));
    return -1;
  }
  if (H->p->log && (H->nflog = nflog_open(&e)) < 0) {
    snprintf(msg, len, "egress: %s", e->msg);
    return -1;
  }
  (void)rootless;
  return 0;
}

static __attribute__((noreturn)) void helper_main(const struct egress_policy *p, const struct egress_net *n0, int pidfd, int ufd, int nfd,
                                                  int dirfd, int ready, bool rootless) {
  static struct helper H; /* large (the tables above): not on the stack */
  static struct egress_net n;
  n = *n0;
  H.p = p, H.n = &n, H.pidfd = pidfd, H.nflog = -1;
  char msg[512] = "";
  int r = setup(&H, &n, ufd, nfd, dirfd, rootless, msg, sizeof msg);
  if (ufd >= 0) close(ufd);
  close(nfd);
  if (r < 0) {
    if (write(ready, msg, strlen(msg) + 1) < 0) {}
    _exit(1);
  }
  /* the table is in place, the resolver listens: the workload may start.
   * What follows is off the create's path: nothing is served before it */
  if (write(ready, "", 1) != 1) _exit(1);
  close(ready);
  recs_open(&H.recs, dirfd);
  close(dirfd);
  berth_error_t e = NULL;
  if (confine(!rootless && geteuid() == 0, &e) < 0) _exit(1); /* unconfined, it serves nothing */
  serve(&H);
}

int egress_start(pid_t init_pid, bool rootless, const struct egress_policy *p, const struct egress_net *n, const char *cdir,
                 struct egress_helper *h, berth_error_t *err) {
  h->pid = -1;
  h->ready_fd = -1;
  if (!n->nup) return berth_error(err, -EINVAL, "egress: no upstream resolver for berth's resolver (set `egress_dns` in berth's config)");
  char path[64];
  int pidfd = (int)syscall(SYS_pidfd_open, init_pid, 0);
  snprintf(path, sizeof path, "/proc/%d/ns/user", (int)init_pid);
  int ufd = rootless ? open(path, O_RDONLY | O_CLOEXEC) : -1;
  snprintf(path, sizeof path, "/proc/%d/ns/net", (int)init_pid);
  int nfd = open(path, O_RDONLY | O_CLOEXEC);
  int dfd = open(cdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int ready[2] = {-1, -1};
  if (pidfd < 0 || nfd < 0 || dfd < 0 || (rootless && ufd < 0) || pipe2(ready, O_CLOEXEC) < 0) {
    int e = errno;
    int fds[] = {pidfd, ufd, nfd, dfd};
    for (int i = 0; i < 4; i++)
      if (fds[i] >= 0) close(fds[i]);
    return berth_error(err, e, "egress: open the container's namespaces for its helper");
  }
  pid_t f = fork();
  if (f == 0) {
    close(ready[0]);
    /* nothing of the monitor's: not its pipes (their readers would wait
     * for us), not the container's lock, not its environment memfd. Ours
     * are packed from 3 up (moved out of each other's way first), the
     * rest closed in one call. */
    int *keep[] = {&pidfd, &ufd, &nfd, &dfd, &ready[1]};
    int next = 3;
    for (int i = 0; i < 5; i++)
      if (*keep[i] >= 0) *keep[i] = fcntl(*keep[i], F_DUPFD_CLOEXEC, 64);
    for (int i = 0; i < 5; i++)
      if (*keep[i] >= 0) *keep[i] = dup3(*keep[i], next++, O_CLOEXEC);
    syscall(SYS_close_range, (unsigned)next, ~0U, 0U);
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul >= 0) dup2(nul, 0), dup2(nul, 1), dup2(nul, 2), close(nul);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_NAME, "berth-egress");
    proc_set_title("berth-egress");
    helper_main(p, n, pidfd, ufd, nfd, dfd, ready[1], rootless);
  }
  int fe = errno;
  close(ready[1]);
  close(pidfd);
  if (ufd >= 0) close(ufd);
  close(nfd);
  close(dfd);
  if (f < 0) {
    close(ready[0]);
    return berth_error(err, fe, "egress: fork its helper");
  }
  h->pid = f;
  h->ready_fd = ready[0];
  return 0;
}

int egress_ready(struct egress_helper *h, berth_error_t *err) {
  if (h->pid <= 0) return 0;
  char msg[520] = "";
  struct pollfd p = {.fd = h->ready_fd, .events = POLLIN};
  int r;
  while ((r = poll(&p, 1, 10000)) < 0 && errno == EINTR) {}
  ssize_t n = r > 0 ? read(h->ready_fd, msg, sizeof msg - 1) : -1;
  close(h->ready_fd);
  h->ready_fd = -1;
  if (n == 1 && msg[0] == '\0') return 0;
  kill(h->pid, SIGKILL);
  while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR) {}
  h->pid = -1;
  if (n > 1) return berth_error(err, -EIO, "%s", msg);
  return berth_error(err, -EIO, "egress: the policy's helper %s", r == 0 ? "did not get ready in 10 s" : "died while setting up");
}
