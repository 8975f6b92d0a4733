/* libFuzzer target for egress's hand-written parsers: any byte string,
 * as a DNS query, as a reply to that query and to a fixed one, and as a
 * policy entry, must be handled without a crash, a leak or a read outside
 * it; error replies are never longer than the query they answer; every
 * address handed out lies inside the message; an entry's canonical text
 * parses back to itself. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "network/dns.h"
#include "network/egress.h"

struct span {
  const uint8_t *lo, *hi;
};

static void in_message(int family, const uint8_t *addr, uint32_t ttl, void *ud) {
  const struct span *s = ud;
  (void)ttl;
  size_t n = family == 4 ? 4 : 16;
  if ((family != 4 && family != 6) || addr < s->lo || addr + n > s->hi) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct dns_query q;
  if (dns_parse_query(data, size, &q) == 0) {
    uint8_t out[DNS_HEADER + DNS_MAX_NAME + 8];
    size_t n = dns_reply_error(data, &q, DNS_R_NXDOMAIN, out, sizeof out);
    if (n && (n < DNS_HEADER || n > size)) __builtin_trap();
    if (q.name_ok && strlen(q.name) > DNS_MAX_NAME) __builtin_trap();
    uint8_t *reply = malloc(size);
    if (reply) {
      memcpy(reply, data, size);
      reply[2] |= 0x80;
      struct span s = {reply, reply + size};
      dns_reply_addrs(reply, size, &q, in_message, &s);
      free(reply);
    }
  }
  static const uint8_t fixed_query[] = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1};
  struct dns_query fq;
  if (dns_parse_query(fixed_query, sizeof fixed_query, &fq) != 0) __builtin_trap();
  struct span s = {data, data + size};
  dns_reply_addrs(data, size, &fq, in_message, &s);
  char text[320];
  if (size < sizeof text && !memchr(data, 0, size)) {
    memcpy(text, data, size);
    text[size] = '\0';
    struct egress_rule r, r2;
    berth_error_t e = NULL;
    if (egress_rule_parse(text, &r, &e) == 0) {
      char c1[340], c2[340];
      egress_rule_format(&r, c1, sizeof c1);
      if (egress_rule_parse(c1, &r2, NULL) != 0) __builtin_trap();
      egress_rule_format(&r2, c2, sizeof c2);
      if (strcmp(c1, c2)) __builtin_trap();
    } else {
      berth_error_free(e);
    }
  }
  return 0;
}
