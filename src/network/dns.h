/* The small subset of DNS messages (RFC 1035) that berth's egress
 * resolver needs: the question of a query, error replies built from it,
 * and the A/AAAA records of a reply on the CNAME chain of its question.
 * Everything is bounded by the message length; names are read with at
 * most DNS_MAX_JUMPS compression pointers, each pointing backwards. Names
 * come out in lowercase presentation form without the trailing dot; a
 * label with bytes other than letters, digits, '-' and '_' makes the name
 * unreadable (such a name is never allowed, so it never needs matching). */
#ifndef BERTH_DNS_H
#define BERTH_DNS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_MAX_NAME 253 /* presentation form, without the trailing dot */
#define DNS_MAX_JUMPS 16
#define DNS_HEADER 12

enum { DNS_T_A = 1, DNS_T_CNAME = 5, DNS_T_AAAA = 28, DNS_C_IN = 1 };
enum { DNS_R_NOERROR = 0, DNS_R_FORMERR = 1, DNS_R_SERVFAIL = 2, DNS_R_NXDOMAIN = 3, DNS_R_NOTIMP = 4, DNS_R_REFUSED = 5 };

struct dns_query {
  uint16_t id, flags;
  char name[DNS_MAX_NAME + 1];
  bool name_ok; /* name holds the question's name (else it was unreadable) */
  uint16_t qtype, qclass;
  size_t qend; /* offset just past the question */
};

/* Header and the one question of a query (QR clear, QDCOUNT 1). 0, or -1
 * when the message is malformed; q->id is filled whenever the header is
 * there (>= 12 bytes), so that a FORMERR can be sent back. A name that is
 * well-formed but unreadable (see above) is not an error: name_ok false. */
int dns_parse_query(const uint8_t *m, size_t len, struct dns_query *q);

/* A reply to q with rcode and no records: the header (id, RD kept, QR and
 * RA set) and the question copied from the query. Returns its length, 0
 * when out is too small. */
size_t dns_reply_error(const uint8_t *query, const struct dns_query *q, int rcode, uint8_t *out, size_t outlen);

/* The addresses a reply gives for q: it must be a reply (QR set) with the
 * same question; fn is called for each A (family 4) and AAAA (family 6)
 * record of class IN whose owner is q's name or a name on the CNAME chain
 * that starts there (at most 8 links), with its TTL. Returns the number of
 * addresses, or -1 when the reply is malformed or is not for q. */
int dns_reply_addrs(const uint8_t *m, size_t len, const struct dns_query *q,
                    void (*fn)(int family, const uint8_t *addr, uint32_t ttl, void *ud), void *ud);

/* A name as a policy writes it: lowercase letters, digits, '-' and '_',
 * labels of 1-63, at most 253 in all. */
bool dns_name_valid(const char *name);

static inline uint16_t dns_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void dns_put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline int dns_rcode(const uint8_t *m) { return m[3] & 0x0f; }

#endif
