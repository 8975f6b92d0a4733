/* The DNS subset of the egress resolver (dns.h). Hand-written rather than
 * taken from a library: the resolver reads one question, builds error
 * replies, and picks A/AAAA records off a reply's CNAME chain; everything
 * else of a reply is relayed unread. That is ~200 lines whose every read
 * is checked against the message length, and it keeps the helper (which
 * starts on every create with a policy) free of another dlopen. */
#define _GNU_SOURCE
#include "network/dns.h"

#include <stdio.h>
#include <string.h>

static bool name_char(uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'; }

/* The name at off: *next is the offset just past it (past its first
 * pointer, if any), *ptr whether it used compression. 0, or -1 when
 * malformed. out gets the lowercase presentation form when every label is
 * readable (*ok), else *ok is false and out is empty. */
static int read_name(const uint8_t *m, size_t len, size_t off, char out[DNS_MAX_NAME + 1], size_t *next, bool *ok, bool *ptr) {
  size_t pos = off, olen = 0, wire = 0;
  bool have_next = false;
  int jumps = 0;
  *ok = true;
  if (ptr) *ptr = false;
  out[0] = '\0';
  for (;;) {
    if (pos >= len) return -1;
    uint8_t c = m[pos];
    if ((c & 0xc0) == 0xc0) {
      if (pos + 1 >= len) return -1;
      size_t target = (size_t)(c & 0x3f) << 8 | m[pos + 1];
      /* backwards only, and a bounded number of times: no loops */
      if (target >= pos || ++jumps > DNS_MAX_JUMPS) return -1;
      if (!have_next) *next = pos + 2, have_next = true;
      if (ptr) *ptr = true;
      pos = target;
      continue;
    }
    if (c & 0xc0) return -1; /* extended label types: not in use */
    if (c == 0) {
      if (!have_next) *next = pos + 1;
      break;
    }
    if (pos + 1 + c > len) return -1;
    wire += 1 + (size_t)c;
    if (wire + 1 > 255) return -1;
    if (*ok) {
      if (olen + (olen ? 1 : 0) + c > DNS_MAX_NAME) *ok = false;
      else {
        if (olen) out[olen++] = '.';
        for (size_t i = 0; i < c && *ok; i++) {
          uint8_t b = m[pos + 1 + i];
          if (b >= 'A' && b <= 'Z') b = (uint8_t)(b - 'A' + 'a');
          if (!name_char(b)) *ok = false;
          out[olen++] = (char)b;
        }
      }
    }
    pos += 1 + (size_t)c;
  }
  if (*ok) out[olen] = '\0';
  else out[0] = '\0';
  return 0;
}

int dns_parse_query(const uint8_t *m, size_t len, struct dns_query *q) {
  memset(q, 0, sizeof *q);
  if (len < DNS_HEADER) return -1;
  q->id = dns_get16(m);
  q->flags = dns_get16(m + 2);
  if (q->flags & 0x8000) return -1; /* a reply, not a query */
  if (dns_get16(m + 4) != 1) return -1; /* exactly one question */
  size_t next = 0;
  bool ptr = false;
  if (read_name(m, len, DNS_HEADER, q->name, &next, &q->name_ok, &ptr) < 0) return -1;
  if (next + 4 > len) return -1;
  q->qtype = dns_get16(m + next);
  q->qclass = dns_get16(m + next + 2);
  /* a question that points elsewhere cannot be copied into a reply as is */
  q->qend = ptr ? 0 : next + 4;
  return 0;
}

size_t dns_reply_error(const uint8_t *query, const struct dns_query *q, int rcode, uint8_t *out, size_t outlen) {
  size_t qlen = q->qend > DNS_HEADER ? q->qend - DNS_HEADER : 0;
  if (outlen < DNS_HEADER + qlen) return 0;
  memset(out, 0, DNS_HEADER);
  dns_put16(out, q->id);
  /* QR, the query's opcode and RD, RA; no AA: berth is not the authority */
  uint16_t flags = (uint16_t)(0x8000 | (q->flags & 0x7900) | 0x0080 | (rcode & 0x0f));
  dns_put16(out + 2, flags);
  dns_put16(out + 4, qlen ? 1 : 0);
  if (qlen) memcpy(out + DNS_HEADER, query + DNS_HEADER, qlen);
  return DNS_HEADER + qlen;
}

/* one resource record's frame */
struct rr {
  size_t owner, rdata; /* offsets */
  uint16_t type, class_, rdlen;
  uint32_t ttl;
};

static int read_rr(const uint8_t *m, size_t len, size_t *pos, struct rr *r) {
  char tmp[DNS_MAX_NAME + 1];
  bool ok;
  size_t next = 0;
  r->owner = *pos;
  if (read_name(m, len, *pos, tmp, &next, &ok, NULL) < 0 || next + 10 > len) return -1;
  r->type = dns_get16(m + next);
  r->class_ = dns_get16(m + next + 2);
  uint32_t ttl = (uint32_t)m[next + 4] << 24 | (uint32_t)m[next + 5] << 16 | (uint32_t)m[next + 6] << 8 | m[next + 7];
  r->ttl = ttl & 0x80000000u ? 0 : ttl; /* RFC 2181: a TTL with the top bit set is 0 */
  r->rdlen = dns_get16(m + next + 8);
  r->rdata = next + 10;
  if (r->rdata + r->rdlen > len) return -1;
  *pos = r->rdata + r->rdlen;
  return 0;
}

#define CHAIN_MAX 9 /* the name and 8 CNAME links */
#define ANSWERS_MAX 128

int dns_reply_addrs(const uint8_t *m, size_t len, const struct dns_query *q,
                    void (*fn)(int family, const uint8_t *addr, uint32_t ttl, void *ud), void *ud) {
  if (len < DNS_HEADER || !(m[2] & 0x80) || dns_get16(m + 4) != 1 || !q->name_ok) return -1;
  char name[DNS_MAX_NAME + 1];
  bool ok;
  size_t pos = 0;
  if (read_name(m, len, DNS_HEADER, name, &pos, &ok, NULL) < 0 || !ok || pos + 4 > len) return -1;
  if (strcmp(name, q->name) || dns_get16(m + pos) != q->qtype || dns_get16(m + pos + 2) != q->qclass) return -1;
  pos += 4;
  size_t an = dns_get16(m + 6);
  if (an > ANSWERS_MAX) an = ANSWERS_MAX;
  struct rr rrs[ANSWERS_MAX];
  for (size_t i = 0; i < an; i++)
    if (read_rr(m, len, &pos, &rrs[i]) < 0) return -1;
  /* the chain: the question's name, then each CNAME target in turn */
  char chain[CHAIN_MAX][DNS_MAX_NAME + 1];
  size_t nc = 1;
  snprintf(chain[0], sizeof chain[0], "%s", q->name);
  for (bool grew = true; grew && nc < CHAIN_MAX;) {
    grew = false;
    for (size_t i = 0; i < an && !grew; i++) {
      if (rrs[i].type != DNS_T_CNAME || rrs[i].class_ != DNS_C_IN) continue;
      size_t nx;
      if (read_name(m, len, rrs[i].owner, name, &nx, &ok, NULL) < 0 || !ok || strcmp(name, chain[nc - 1])) continue;
      char target[DNS_MAX_NAME + 1];
      if (read_name(m, len, rrs[i].rdata, target, &nx, &ok, NULL) < 0 || !ok || nx > rrs[i].rdata + rrs[i].rdlen) continue;
      bool seen = false;
      for (size_t k = 0; k < nc; k++) seen |= !strcmp(chain[k], target);
      if (seen) continue;
      snprintf(chain[nc++], sizeof chain[0], "%s", target);
      grew = true;
    }
  }
  int n = 0;
  for (size_t i = 0; i < an; i++) {
    struct rr *r = &rrs[i];
    int family = r->type == DNS_T_A && r->rdlen == 4 ? 4 : r->type == DNS_T_AAAA && r->rdlen == 16 ? 6 : 0;
    if (!family || r->class_ != DNS_C_IN) continue;
    size_t nx;
    if (read_name(m, len, r->owner, name, &nx, &ok, NULL) < 0 || !ok) continue;
    bool on = false;
    for (size_t k = 0; k < nc && !on; k++) on = !strcmp(chain[k], name);
    if (!on) continue;
    if (fn) fn(family, m + r->rdata, r->ttl, ud);
    n++;
  }
  return n;
}

bool dns_name_valid(const char *name) {
  size_t n = strlen(name), label = 0;
  if (n == 0 || n > DNS_MAX_NAME) return false;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || name[i] == '.') {
      if (label == 0 || label > 63) return false;
      label = 0;
    } else if (!name_char((uint8_t)name[i])) {
      return false;
    } else {
      label++;
    }
  }
  return true;
}
