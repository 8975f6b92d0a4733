#define _GNU_SOURCE
/* Egress policies: the DNS subset (queries, error replies, the addresses
 * of a reply's CNAME chain, hostile and truncated messages), policy
 * entries, normalization, name matching, the nftables script (also loaded
 * into a network namespace of its own) and the dry run. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "network/dns.h"
#include "network/egress.h"
#include "network/network.h"

/* ---- building messages ---- */
struct msg {
  uint8_t b[2048];
  size_t n;
};
static void put(struct msg *m, const void *d, size_t n) {
  memcpy(m->b + m->n, d, n);
  m->n += n;
}
static void put16(struct msg *m, uint16_t v) {
  uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  put(m, x, 2);
}
static void put32(struct msg *m, uint32_t v) {
  put16(m, (uint16_t)(v >> 16));
  put16(m, (uint16_t)v);
}
static void name(struct msg *m, const char *dotted) {
  const char *s = dotted;
  while (*s) {
    const char *d = strchr(s, '.');
    size_t l = d ? (size_t)(d - s) : strlen(s);
    uint8_t c = (uint8_t)l;
    put(m, &c, 1);
    put(m, s, l);
    s += l + (d ? 1 : 0);
  }
  uint8_t z = 0;
  put(m, &z, 1);
}
static void header(struct msg *m, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an) {
  m->n = 0;
  put16(m, id), put16(m, flags), put16(m, qd), put16(m, an), put16(m, 0), put16(m, 0);
}
static void question(struct msg *m, const char *n, uint16_t type) {
  name(m, n);
  put16(m, type);
  put16(m, DNS_C_IN);
}
static void rr_a(struct msg *m, const char *owner, const char *ip, uint32_t ttl) {
  if (owner) name(m, owner);
  else put16(m, 0xc00c); /* a pointer to the question's name */
  put16(m, DNS_T_A), put16(m, DNS_C_IN), put32(m, ttl), put16(m, 4);
  struct in_addr a;
  inet_pton(AF_INET, ip, &a);
  put(m, &a, 4);
}
static void rr_aaaa(struct msg *m, const char *owner, const char *ip, uint32_t ttl) {
  name(m, owner);
  put16(m, DNS_T_AAAA), put16(m, DNS_C_IN), put32(m, ttl), put16(m, 16);
  struct in6_addr a;
  inet_pton(AF_INET6, ip, &a);
  put(m, &a, 16);
}
static void rr_cname(struct msg *m, const char *owner, const char *target, uint32_t ttl) {
  name(m, owner);
  put16(m, DNS_T_CNAME), put16(m, DNS_C_IN), put32(m, ttl);
  struct msg t = {.n = 0};
  name(&t, target);
  put16(m, (uint16_t)t.n);
  put(m, t.b, t.n);
}

struct got {
  char addrs[16][64];
  uint32_t ttl[16];
  int n;
};
static void collect(int family, const uint8_t *a, uint32_t ttl, void *ud) {
  struct got *g = ud;
  if (g->n >= 16) return;
  inet_ntop(family == 4 ? AF_INET : AF_INET6, a, g->addrs[g->n], sizeof g->addrs[0]);
  g->ttl[g->n++] = ttl;
}

/* ---- queries ---- */
Test(dns, query_parsed_and_lowercased) {
  struct msg m;
  header(&m, 0x1234, 0x0100, 1, 0);
  question(&m, "Deb.Debian.ORG", DNS_T_AAAA);
  struct dns_query q;
  cr_assert_eq(dns_parse_query(m.b, m.n, &q), 0);
  cr_assert_eq(q.id, 0x1234);
  cr_assert(q.name_ok);
  cr_assert_str_eq(q.name, "deb.debian.org");
  cr_assert_eq(q.qtype, DNS_T_AAAA);
  cr_assert_eq(q.qclass, DNS_C_IN);
  cr_assert_eq(q.qend, m.n);
}

Test(dns, every_truncation_of_a_query_is_refused_cleanly) {
  struct msg m;
  header(&m, 1, 0x0100, 1, 0);
  question(&m, "files.pythonhosted.org", DNS_T_A);
  for (size_t n = 0; n < m.n; n++) {
    struct dns_query q;
    cr_assert_eq(dns_parse_query(m.b, n, &q), -1, "prefix of %zu bytes", n);
  }
}

Test(dns, replies_and_counts_other_than_one_question_are_not_queries) {
  struct msg m;
  struct dns_query q;
  header(&m, 1, 0x8180, 1, 0);
  question(&m, "a.org", DNS_T_A);
  cr_assert_eq(dns_parse_query(m.b, m.n, &q), -1, "QR set");
  header(&m, 1, 0x0100, 2, 0);
  question(&m, "a.org", DNS_T_A);
  question(&m, "b.org", DNS_T_A);
  cr_assert_eq(dns_parse_query(m.b, m.n, &q), -1, "two questions");
  header(&m, 1, 0x0100, 0, 0);
  cr_assert_eq(dns_parse_query(m.b, m.n, &q), -1, "no question");
}

Test(dns, compression_loops_and_forward_pointers_are_malformed) {
  struct msg m;
  struct dns_query q;
  header(&m, 1, 0x0100, 1, 0);
  put16(&m, 0xc00c); /* points at itself */
  put16(&m, 1), put16(&m, 1);
  cr_assert_eq(dns_parse_query(m.b, m.n, &q), -1);
  header(&m, 1, 0x0100, 1, 0);
  uint8_t l[] = {1, 'a'};
  put(&m, l, 2);
  put16(&m, 0xc00c); /* back to the start: a.a.a.a... */
  put16(&m, 1), put16(&m, 1);
  cr_assert_eq(dns_parse_query(m.b, m.n, &q), -1);
  header(&m, 1, 0x0100, 1, 0);
  put16(&m, 0xc020); /* forwards */
  put16(&m, 1), put16(&m, 1);
  cr_assert_eq(dns_parse_query(m.b, m.n, &q), -1);
  header(&m, 1, 0x0100, 1, 0);
  uint8_t ext[] = {0x41, 'x'}; /* extended label type */
  put(&m, ext, 2);
  cr_assert_eq(dns_parse_query(m.b, m.n, &q), -1);
}

Test(dns, names_too_long_are_malformed) {
  struct msg m;
  struct dns_query q;
  header(&m, 1, 0x0100, 1, 0);
  for (int i = 0; i < 5; i++) { /* 5 labels of 63: 320 bytes of wire name */
    uint8_t c = 63;
    put(&m, &c, 1);
    char l[63];
    memset(l, 'a', sizeof l);
    put(&m, l, 63);
  }
  uint8_t z = 0;
  put(&m, &z, 1);
  put16(&m, 1), put16(&m, 1);
  cr_assert_eq(dns_parse_query(m.b, m.n, &q), -1);
}

Test(dns, unreadable_names_parse_but_never_match) {
  struct msg m;
  header(&m, 7, 0x0100, 1, 0);
  uint8_t l[] = {5, 'a', '.', 'b', 0xff, 'c', 3, 'o', 'r', 'g', 0};
  put(&m, l, sizeof l);
  put16(&m, 1), put16(&m, 1);
  struct dns_query q;
  cr_assert_eq(dns_parse_query(m.b, m.n, &q), 0);
  cr_assert_not(q.name_ok);
  cr_assert_str_eq(q.name, "");
}

Test(dns, error_reply_keeps_id_question_and_rd) {
  struct msg m;
  header(&m, 0xbeef, 0x0100, 1, 0);
  question(&m, "evil.example", DNS_T_A);
  struct dns_query q;
  cr_assert_eq(dns_parse_query(m.b, m.n, &q), 0);
  uint8_t out[512];
  size_t n = dns_reply_error(m.b, &q, DNS_R_NXDOMAIN, out, sizeof out);
  cr_assert_eq(n, m.n);
  cr_assert_eq(dns_get16(out), 0xbeef);
  cr_assert_eq(dns_get16(out + 2), 0x8183, "QR, RD, RA, NXDOMAIN: %04x", dns_get16(out + 2));
  cr_assert_eq(dns_get16(out + 4), 1);
  cr_assert_eq(dns_get16(out + 6), 0);
  cr_assert_eq(memcmp(out + 12, m.b + 12, m.n - 12), 0);
  cr_assert_eq(dns_reply_error(m.b, &q, DNS_R_NXDOMAIN, out, 20), 0, "too small");
}

/* ---- replies ---- */
static struct dns_query query_of(const char *n, uint16_t type) {
  struct msg m;
  header(&m, 1, 0x0100, 1, 0);
  question(&m, n, type);
  struct dns_query q;
  cr_assert_eq(dns_parse_query(m.b, m.n, &q), 0);
  return q;
}

Test(dns, addresses_on_the_cname_chain_only) {
  struct dns_query q = query_of("deb.debian.org", DNS_T_A);
  struct msg m;
  header(&m, 1, 0x8180, 1, 5);
  question(&m, "deb.debian.org", DNS_T_A);
  rr_cname(&m, "deb.debian.org", "debian.map.fastly.net", 300);
  rr_a(&m, "debian.map.fastly.net", "151.101.2.132", 30);
  rr_a(&m, "debian.map.fastly.net", "151.101.66.132", 30);
  rr_a(&m, "evil.example", "6.6.6.6", 3000); /* not on the chain: never allowed */
  rr_aaaa(&m, "debian.map.fastly.net", "2a04:4e42::644", 0x80000001u);
  struct got g = {.n = 0};
  cr_assert_eq(dns_reply_addrs(m.b, m.n, &q, collect, &g), 3);
  cr_assert_str_eq(g.addrs[0], "151.101.2.132");
  cr_assert_eq(g.ttl[0], 30);
  cr_assert_str_eq(g.addrs[1], "151.101.66.132");
  cr_assert_str_eq(g.addrs[2], "2a04:4e42::644");
  cr_assert_eq(g.ttl[2], 0, "a TTL with the top bit set counts as 0");
}

Test(dns, compressed_owner_names_match) {
  struct dns_query q = query_of("pypi.org", DNS_T_A);
  struct msg m;
  header(&m, 1, 0x8180, 1, 1);
  question(&m, "PyPI.org", DNS_T_A);
  rr_a(&m, NULL, "151.101.0.223", 60);
  struct got g = {.n = 0};
  cr_assert_eq(dns_reply_addrs(m.b, m.n, &q, collect, &g), 1);
  cr_assert_str_eq(g.addrs[0], "151.101.0.223");
}

Test(dns, a_reply_to_another_question_is_refused) {
  struct dns_query q = query_of("pypi.org", DNS_T_A);
  struct msg m;
  header(&m, 1, 0x8180, 1, 1);
  question(&m, "evil.example", DNS_T_A);
  rr_a(&m, NULL, "6.6.6.6", 60);
  cr_assert_eq(dns_reply_addrs(m.b, m.n, &q, NULL, NULL), -1);
  header(&m, 1, 0x8180, 1, 1);
  question(&m, "pypi.org", DNS_T_AAAA);
  cr_assert_eq(dns_reply_addrs(m.b, m.n, &q, NULL, NULL), -1, "another type");
  header(&m, 1, 0x0100, 1, 0);
  question(&m, "pypi.org", DNS_T_A);
  cr_assert_eq(dns_reply_addrs(m.b, m.n, &q, NULL, NULL), -1, "not a reply");
}

Test(dns, every_truncation_of_a_reply_fails_or_gives_less) {
  struct dns_query q = query_of("a.example", DNS_T_A);
  struct msg m;
  header(&m, 1, 0x8180, 1, 3);
  question(&m, "a.example", DNS_T_A);
  rr_cname(&m, "a.example", "b.example", 60);
  rr_a(&m, "b.example", "192.0.2.7", 60);
  rr_a(&m, "b.example", "192.0.2.8", 60);
  for (size_t n = 0; n < m.n; n++) {
    struct got g = {.n = 0};
    int r = dns_reply_addrs(m.b, n, &q, collect, &g);
    cr_assert(r == -1, "a reply cut at %zu bytes gave %d", n, r);
  }
  struct got g = {.n = 0};
  cr_assert_eq(dns_reply_addrs(m.b, m.n, &q, collect, &g), 2);
}

Test(dns, cname_loops_end) {
  struct dns_query q = query_of("a.example", DNS_T_A);
  struct msg m;
  header(&m, 1, 0x8180, 1, 3);
  question(&m, "a.example", DNS_T_A);
  rr_cname(&m, "a.example", "b.example", 60);
  rr_cname(&m, "b.example", "a.example", 60);
  rr_a(&m, "b.example", "192.0.2.9", 60);
  struct got g = {.n = 0};
  cr_assert_eq(dns_reply_addrs(m.b, m.n, &q, collect, &g), 1);
}

Test(dns, random_bytes_never_crash) {
  srand(42);
  struct dns_query q = query_of("a.example", DNS_T_A);
  uint8_t b[600];
  for (int i = 0; i < 200000; i++) {
    size_t n = (size_t)(rand() % (int)sizeof b);
    for (size_t k = 0; k < n; k++) b[k] = (uint8_t)rand();
    if (n > 5 && (i & 1)) b[4] = 0, b[5] = 1; /* one question: further in */
    struct dns_query p;
    dns_parse_query(b, n, &p);
    dns_reply_addrs(b, n, &q, NULL, NULL);
  }
}

Test(dns, policy_names) {
  cr_assert(dns_name_valid("deb.debian.org"));
  cr_assert(dns_name_valid("_acme-challenge.x.org"));
  cr_assert_not(dns_name_valid(""));
  cr_assert_not(dns_name_valid("a..b"));
  cr_assert_not(dns_name_valid(".a"));
  cr_assert_not(dns_name_valid("a b"));
  cr_assert_not(dns_name_valid("A.org"), "callers lowercase first");
  char l[70];
  memset(l, 'a', 64);
  l[64] = 0;
  cr_assert_not(dns_name_valid(l), "a label of 64");
}

/* ---- entries ---- */
static void parses_as(const char *in, const char *canon) {
  struct egress_rule r;
  berth_error_t e = NULL;
  cr_assert_eq(egress_rule_parse(in, &r, &e), 0, "%s: %s", in, e ? e->msg : "");
  char out[340];
  egress_rule_format(&r, out, sizeof out);
  cr_assert_str_eq(out, canon, "%s", in);
}

static void refused(const char *in) {
  struct egress_rule r;
  berth_error_t e = NULL;
  cr_assert_eq(egress_rule_parse(in, &r, &e), -1, "`%s` was accepted", in);
  cr_assert(strstr(e->msg, "HOST[:PORT"), "the error shows the syntax: %s", e->msg);
  berth_error_free(e);
}

Test(policy, entries) {
  parses_as("deb.debian.org", "deb.debian.org");
  parses_as("Deb.Debian.Org.", "deb.debian.org");
  parses_as("*.pypi.org", "*.pypi.org");
  parses_as("github.com:443", "github.com:443");
  parses_as("github.com:443/TCP", "github.com:443/tcp");
  parses_as("ntp.org:123/udp", "ntp.org:123/udp");
  parses_as("x.org:8000-8100", "x.org:8000-8100");
  parses_as("10.1.2.0/24:5432", "10.1.2.0/24:5432");
  parses_as("10.1.2.77/24", "10.1.2.0/24");
  parses_as("192.0.2.1", "192.0.2.1");
  parses_as("192.0.2.1:53/udp", "192.0.2.1:53/udp");
  parses_as("0.0.0.0/0", "0.0.0.0/0");
  parses_as("2001:db8::1", "2001:db8::1");
  parses_as("2001:db8::/32", "2001:db8::/32");
  parses_as("[2001:db8::1]:443", "[2001:db8::1]:443");
  parses_as("[2001:db8::/32]:443/tcp", "[2001:db8::/32]:443/tcp");
  parses_as(" host.berth.internal:8080 ", "host.berth.internal:8080");
  refused("");
  refused("*");
  refused("*.");
  refused("a..b");
  refused("x.org:0");
  refused("x.org:65536");
  refused("x.org:90-80");
  refused("x.org:http");
  refused("x.org:");
  refused("10.1.2");
  refused("2."); /* found by fuzz_dns: a name that reads back as an address */
  refused("*.10.1.");
  refused("10.1.2.0/33");
  refused("300.1.2.3");
  refused("[::1");
  refused("[::1]x");
  refused("2001:db8::/129");
  refused("exa mple.org");
  refused("bad_\xff.org");
}

Test(policy, wildcards_match_below_only) {
  struct egress_rule r;
  cr_assert_eq(egress_rule_parse("*.pypi.org", &r, NULL), 0);
  cr_assert(egress_name_match(&r, "files.pypi.org"));
  cr_assert(egress_name_match(&r, "a.b.pypi.org"));
  cr_assert_not(egress_name_match(&r, "pypi.org"));
  cr_assert_not(egress_name_match(&r, "evilpypi.org"));
  cr_assert_not(egress_name_match(&r, "pypi.org.evil.com"));
  cr_assert_eq(egress_rule_parse("pypi.org", &r, NULL), 0);
  cr_assert(egress_name_match(&r, "pypi.org"));
  cr_assert_not(egress_name_match(&r, "files.pypi.org"));
  cr_assert_eq(egress_rule_parse("10.0.0.0/8", &r, NULL), 0);
  cr_assert_not(egress_name_match(&r, "10.0.0.0"));
  cr_assert_eq(egress_rule_parse("host.berth.internal", &r, NULL), 0);
  cr_assert_not(egress_name_match(&r, "host.berth.internal"), "never through DNS: /etc/hosts has it");
}

Test(policy, normalize_merges_profile_and_drops_repeats) {
  json_t *req = json_pack("{s:[s,s,s], s:b}", "allow", "PyPI.org", "pypi.org", "10.0.0.1/8", "log", 0);
  json_t *prof = json_pack("[s,s]", "pypi.org", "deb.debian.org:80/tcp");
  json_t *out = NULL;
  berth_error_t e = NULL;
  cr_assert_eq(egress_normalize(req, prof, &out, &e), 0, "%s", e ? e->msg : "");
  char *t = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
  cr_assert_str_eq(t, "{\"allow\":[\"pypi.org\",\"10.0.0.0/8\",\"deb.debian.org:80/tcp\"],\"deny_host\":true,\"log\":false}");
  free(t);
  json_decref(out);
  json_object_set_new(req, "profile", json_false());
  cr_assert_eq(egress_normalize(req, prof, &out, &e), 0);
  cr_assert_eq(json_array_size(json_object_get(out, "allow")), 2);
  json_decref(out);
  json_decref(req);
  json_decref(prof);
}

Test(policy, normalize_refuses_bad_requests) {
  const char *bad[] = {
      "[]", "{\"allow\": \"x.org\"}", "{\"allow\": [1]}", "{\"deny_host\": \"no\"}", "{\"allows\": []}", "{\"allow\": [\"x.org:0\"]}"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *req = json_loads(bad[i], 0, NULL), *out = NULL;
    berth_error_t e = NULL;
    cr_assert_eq(egress_normalize(req, NULL, &out, &e), -1, "%s", bad[i]);
    cr_assert_not_null(e);
    berth_error_free(e);
    json_decref(req);
  }
  json_t *many = json_object(), *a = json_array();
  for (int i = 0; i <= EGRESS_MAX_NAMES; i++) {
    char n[32];
    snprintf(n, sizeof n, "n%d.example", i);
    json_array_append_new(a, json_string(n));
  }
  json_object_set_new(many, "allow", a);
  json_t *out = NULL;
  berth_error_t e = NULL;
  cr_assert_eq(egress_normalize(many, NULL, &out, &e), -1, "more names than sets");
  berth_error_free(e);
  json_decref(many);
}

Test(policy, resolver_addresses) {
  struct egress_addr a;
  cr_assert_eq(egress_addr_parse("10.0.2.3", &a), 0);
  cr_assert_eq(a.family, 4);
  cr_assert_eq(a.port, 53);
  cr_assert_eq(egress_addr_parse("10.250.0.2:5353", &a), 0);
  cr_assert_eq(a.port, 5353);
  cr_assert_eq(egress_addr_parse("[fd00::1]:54", &a), 0);
  cr_assert_eq(a.family, 6);
  cr_assert_eq(a.port, 54);
  cr_assert_eq(egress_addr_parse("fd00::1", &a), 0);
  cr_assert_eq(egress_addr_parse("resolver.example", &a), -1);
  cr_assert_eq(egress_addr_parse("10.0.0.1:0", &a), -1);
  cr_assert_eq(egress_addr_parse(NULL, &a), -1);
}

/* ---- the table ---- */
static json_t *policy(const char *json) {
  json_t *req = json_loads(json, 0, NULL), *out = NULL;
  berth_error_t e = NULL;
  cr_assert_eq(egress_normalize(req, NULL, &out, &e), 0, "%s: %s", json, e ? e->msg : "");
  json_decref(req);
  return out;
}

static struct egress_net net_of(bool slirp, const char *subnet) {
  struct egress_net n;
  memset(&n, 0, sizeof n);
  n.slirp = slirp;
  snprintf(n.subnet, sizeof n.subnet, "%s", subnet);
  egress_addr_parse(slirp ? "10.0.2.3" : "192.0.2.53", &n.up[n.nup++]);
  n.host[0].family = 4;
  inet_pton(AF_INET, slirp ? "10.0.2.2" : "10.88.0.1", n.host[0].addr);
  n.host[1].family = 4;
  inet_pton(AF_INET, "198.51.100.4", n.host[1].addr);
  n.host[2].family = 6;
  inet_pton(AF_INET6, "fd00::2", n.host[2].addr);
  n.nhost = 3;
  return n;
}

static char *script_of(const char *json, bool slirp, const char *subnet) {
  json_t *pol = policy(json);
  struct egress_policy p;
  cr_assert_eq(egress_policy_load(pol, &p, NULL), 0);
  struct egress_net n = net_of(slirp, subnet);
  char *s = egress_nft_script(&p, &n);
  egress_policy_free(&p);
  json_decref(pol);
  return s;
}

Test(table, rules_in_order) {
  char *s = script_of("{\"allow\": [\"*.pypi.org:443/tcp\", \"10.1.2.0/24:5432\", \"host.berth.internal:8080\", \"[2001:db8::/32]:443\"]}",
                      false, "");
  cr_assert(strstr(s, "set n0_4 { type ipv4_addr; flags timeout;"), "%s", s);
  cr_assert(strstr(s, "meta mark 0x62657274 ip daddr 192.0.2.53 udp dport 53 accept"), "%s", s);
  cr_assert(strstr(s, "ip daddr 192.0.2.53 tcp dport 53 jump deny"), "%s", s);
  cr_assert(strstr(s, "ip daddr 10.88.0.1 tcp dport 8080 accept"), "%s", s);
  cr_assert(strstr(s, "ip daddr 198.51.100.4 jump deny"), "%s", s);
  cr_assert(strstr(s, "ip6 daddr fd00::2 jump deny"), "%s", s);
  cr_assert(strstr(s, "ip daddr @n0_4 tcp dport 443 accept"), "%s", s);
  cr_assert(strstr(s, "ip daddr 10.1.2.0/24 udp dport 5432 accept"), "%s", s);
  cr_assert(strstr(s, "ip6 daddr 2001:db8::/32 udp dport 443 accept"), "%s", s);
  cr_assert(strstr(s, "limit rate 20/second burst 40 packets log group 7"), "%s", s);
  cr_assert(strstr(s, "reject with tcp reset"), "%s", s);
  /* the order: DNS first, then the host's port, the host, the sets */
  cr_assert(strstr(s, "dport 53 accept") < strstr(s, "dport 8080 accept"));
  cr_assert(strstr(s, "dport 8080 accept") < strstr(s, "198.51.100.4 jump deny"));
  cr_assert(strstr(s, "198.51.100.4 jump deny") < strstr(s, "@n0_4"));
  free(s);
}

Test(table, host_allowed_named_subnet_no_log) {
  char *s = script_of("{\"allow\": [], \"deny_host\": false, \"log\": false}", true, "10.89.3.0/24");
  cr_assert(strstr(s, "ip daddr 10.0.2.2 accept"), "%s", s);
  cr_assert(strstr(s, "ip daddr 198.51.100.4 accept"), "%s", s);
  cr_assert(strstr(s, "ip daddr 10.89.3.0/24 accept"), "%s", s);
  cr_assert_null(strstr(s, "log group"), "%s", s);
  cr_assert_null(strstr(s, "set n0"), "%s", s);
  free(s);
}

/* In a network namespace of our own: the table berth sends by nfnetlink,
 * read back by libnftables (nft's own decoder), must list the rules of the
 * text rendering; and libnftables must take that text too. */
static char *nft_list(void) {
  void *h = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) return NULL;
  void *(*ctx_new)(uint32_t) = (void *(*)(uint32_t))dlsym(h, "nft_ctx_new");
  int (*buf_out)(void *) = (int (*)(void *))dlsym(h, "nft_ctx_buffer_output");
  const char *(*get_out)(void *) = (const char *(*)(void *))dlsym(h, "nft_ctx_get_output_buffer");
  int (*run)(void *, const char *) = (int (*)(void *, const char *))dlsym(h, "nft_run_cmd_from_buffer");
  void *ctx = ctx_new(0);
  buf_out(ctx);
  if (run(ctx, "list table inet berth_egress") != 0) return NULL;
  return strdup(get_out(ctx));
}

/* the rule lines of a listing, whitespace folded, one a line */
static char *rule_lines(const char *text) {
  struct buf b = {0};
  bool in_output = false;
  char *copy = strdup(text), *save = NULL;
  for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    while (*l == ' ' || *l == '\t') l++;
    if (str_has_prefix(l, "chain output")) in_output = true;
    if (!in_output || str_has_prefix(l, "chain") || str_has_prefix(l, "type filter") || !strcmp(l, "}") || !*l) continue;
    buf_append(&b, l, strlen(l));
    buf_append(&b, "\n", 1);
  }
  free(copy);
  buf_append(&b, "", 1);
  return b.data;
}

static int install_in_netns(const char *json, bool slirp, const char *subnet, const char *want) {
  fflush(stdout);
  pid_t p = fork();
  if (p == 0) {
    if (unshare(CLONE_NEWNET | (geteuid() ? CLONE_NEWUSER : 0)) < 0) _exit(100);
    json_t *pol = policy(json);
    struct egress_policy ep;
    if (egress_policy_load(pol, &ep, NULL) < 0) _exit(101);
    struct egress_net n = net_of(slirp, subnet);
    struct egress_table t;
    berth_error_t e = NULL;
    if (egress_table_build(&ep, &n, &t) < 0 || egress_table_install(&t, &e) < 0) {
      fprintf(stderr, "install: %s\n", e ? e->msg : "out of memory");
      _exit(102);
    }
    char *listed = nft_list();
    if (!listed) _exit(103); /* libnftables missing: apt-get install nftables */
    char *got = rule_lines(listed);
    if (strcmp(got, want)) {
      fprintf(stderr, "nft lists:\n%s\nexpected:\n%s\n", got, want);
      _exit(104);
    }
    /* and the text rendering is a script nft takes */
    char *script = egress_nft_script(&ep, &n);
    if (unshare(CLONE_NEWNET) == 0 && net_nft_run(script, &e) < 0) {
      fprintf(stderr, "%s\n%s\n", e->msg, script);
      _exit(105);
    }
    _exit(0);
  }
  int st = 0;
  waitpid(p, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 200;
}

Test(table, installed_by_netlink_reads_back_as_written) {
  const char *want = "ct state established,related accept\n"
                     "oif \"lo\" accept\n"
                     "ip6 daddr ff02::/16 accept\n"
                     "icmpv6 type nd-router-solicit accept\n"
                     "icmpv6 type nd-neighbor-solicit accept\n"
                     "icmpv6 type nd-neighbor-advert accept\n"
                     "meta mark 0x62657274 ip daddr 192.0.2.53 tcp dport 53 accept\n"
                     "meta mark 0x62657274 ip daddr 192.0.2.53 udp dport 53 accept\n"
                     "ip daddr 192.0.2.53 tcp dport 53 jump deny\n"
                     "ip daddr 192.0.2.53 udp dport 53 jump deny\n"
                     "ip daddr 10.88.0.1 tcp dport 8080 accept\n"
                     "ip daddr 10.88.0.1 udp dport 8080 accept\n"
                     "ip daddr 10.88.0.1 jump deny\n"
                     "ip daddr 198.51.100.4 jump deny\n"
                     "ip6 daddr fd00::2 jump deny\n"
                     "ip daddr @n0_4 tcp dport 443 accept\n"
                     "ip6 daddr @n0_6 tcp dport 443 accept\n"
                     "ip daddr @n1_4 accept\n"
                     "ip6 daddr @n1_6 accept\n"
                     "ip daddr 10.1.2.0/24 tcp dport 5432 accept\n"
                     "ip daddr 10.1.2.0/24 udp dport 5432 accept\n"
                     "ip6 daddr 2001:db8::/32 tcp dport 443 accept\n"
                     "ip daddr 203.0.113.7 udp dport 123 accept\n"
                     "ip daddr 198.18.0.0/15 tcp dport 8000-8100 accept\n"
                     "ip daddr 192.0.2.9 meta l4proto tcp accept\n"
                     "meta nfproto ipv4 tcp dport 22 accept\n"
                     "jump deny\n";
  int r = install_in_netns("{\"allow\": [\"*.pypi.org:443/tcp\", \"deb.debian.org\", \"10.1.2.0/24:5432\", \"host.berth.internal:8080\", "
                           "\"[2001:db8::/32]:443/tcp\", \"203.0.113.7:123/udp\", \"198.18.0.0/15:8000-8100/tcp\", "
                           "\"192.0.2.9/tcp\", \"0.0.0.0/0:22/tcp\"]}",
                           false, "", want);
  cr_assert_neq(r, 103, "libnftables is missing (apt-get install nftables): nothing to read the table back with");
  cr_assert_eq(r, 0, "step %d failed (see stderr)", r);
  const char *want2 = "ct state established,related accept\n"
                      "oif \"lo\" accept\n"
                      "ip6 daddr ff02::/16 accept\n"
                      "icmpv6 type nd-router-solicit accept\n"
                      "icmpv6 type nd-neighbor-solicit accept\n"
                      "icmpv6 type nd-neighbor-advert accept\n"
                      "meta mark 0x62657274 ip daddr 10.0.2.3 tcp dport 53 accept\n"
                      "meta mark 0x62657274 ip daddr 10.0.2.3 udp dport 53 accept\n"
                      "ip daddr 10.0.2.3 tcp dport 53 jump deny\n"
                      "ip daddr 10.0.2.3 udp dport 53 jump deny\n"
                      "ip daddr 10.0.2.2 accept\n"
                      "ip daddr 198.51.100.4 accept\n"
                      "ip6 daddr fd00::2 accept\n"
                      "ip daddr 10.89.3.0/24 accept\n"
                      "jump deny\n";
  r = install_in_netns("{\"allow\": [], \"deny_host\": false, \"log\": false}", true, "10.89.3.0/24", want2);
  cr_assert_eq(r, 0, "step %d failed (see stderr)", r);
}

/* ---- the dry run ---- */
static void check(json_t *pol, const struct egress_net *n, const char *dest, bool allowed, const char *rule, const char *why) {
  json_t *out = NULL;
  berth_error_t e = NULL;
  cr_assert_eq(egress_check(pol, n, dest, &out, &e), 0, "%s: %s", dest, e ? e->msg : "");
  cr_assert_eq(json_is_true(json_object_get(out, "allowed")), allowed, "%s: %s", dest, json_dumps(out, 0));
  if (rule) cr_assert_str_eq(json_string_value(json_object_get(out, "rule")) ?: "(none)", rule, "%s", dest);
  if (why)
    cr_assert(strstr(json_string_value(json_object_get(out, "reason")), why), "%s: %s", dest,
              json_string_value(json_object_get(out, "reason")));
  json_decref(out);
}

Test(dryrun, rules_and_reasons) {
  json_t *pol = policy("{\"allow\": [\"*.pypi.org:443/tcp\", \"deb.debian.org\", \"10.1.2.0/24:5432\", \"host.berth.internal:8080\"]}");
  struct egress_net n = net_of(false, "");
  check(pol, &n, "files.pypi.org:443", true, "*.pypi.org:443/tcp", NULL);
  check(pol, &n, "files.pypi.org:80", false, NULL, "port 80");
  check(pol, &n, "pypi.org", false, NULL, "NXDOMAIN");
  check(pol, &n, "deb.debian.org:80", true, "deb.debian.org", NULL);
  check(pol, &n, "10.1.2.9:5432", true, "10.1.2.0/24:5432", NULL);
  check(pol, &n, "10.1.2.9:5433", false, NULL, "not port 5433");
  check(pol, &n, "10.1.3.9:5432", false, NULL, "no rule allows this address");
  check(pol, &n, "host.berth.internal:8080", true, "host.berth.internal:8080", NULL);
  check(pol, &n, "host.berth.internal:22", false, NULL, "deny_host");
  check(pol, &n, "198.51.100.4:22", false, NULL, "deny_host");
  check(pol, &n, "192.0.2.53:53", false, NULL, "berth's resolver");
  check(pol, &n, "127.0.0.1:5432", true, NULL, "loopback");
  json_t *out = NULL;
  berth_error_t e = NULL;
  cr_assert_eq(egress_check(pol, &n, "*.pypi.org", &out, &e), -1, "not one destination");
  berth_error_free(e);
  e = NULL;
  cr_assert_eq(egress_check(pol, &n, "10.0.0.0/8", &out, &e), -1, "not one destination");
  berth_error_free(e);
  json_decref(pol);
}
