/* Egress policies: entries, the stored policy, the nftables table that
 * enforces it, the dry run, and the records of refusals (egress.h). The
 * helper process that installs the table and answers DNS is in
 * egress_helper.c. */
#define _GNU_SOURCE
#include "network/egress.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "network/dns.h"
#include "network/network.h"

static const char SYNTAX[] = "HOST[:PORT[-PORT]][/tcp|/udp], HOST a name (example.org, *.example.org), an IPv4 address "
                             "or CIDR (10.1.2.0/24) or an IPv6 one ([2001:db8::/32]:443)";

static int parse_ports(const char *s, struct egress_rule *r) {
  char *end;
  long lo = strtol(s, &end, 10), hi = lo;
  if (end == s) return -1;
  if (*end == '-') {
    const char *h = end + 1;
    hi = strtol(h, &end, 10);
    if (end == h) return -1;
  }
  if (*end || lo < 1 || hi > 65535 || lo > hi) return -1;
  r->port_lo = (uint16_t)lo;
  r->port_hi = (uint16_t)hi;
  return 0;
}

/* ADDR[/PREFIX] of family 4 or 6, host bits cleared */
static int parse_cidr(char *s, int family, struct egress_rule *r) {
  int max = family == 4 ? 32 : 128, prefix = max;
  char *slash = strchr(s, '/');
  if (slash) {
    char *end;
    *slash = '\0';
    long p = strtol(slash + 1, &end, 10);
    if (!slash[1] || *end || p < 0 || p > max) return -1;
    prefix = (int)p;
  }
  if (inet_pton(family == 4 ? AF_INET : AF_INET6, s, r->addr) != 1) return -1;
  r->family = family;
  r->prefix = prefix;
  for (int b = prefix; b < max; b++) r->addr[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
  return 0;
}

static bool all_digits(const char *s) {
  if (!*s) return false;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s)) return false;
  return true;
}

static int bad_entry(const char *text, berth_error_t *err) {
  return berth_error(err, -EINVAL, "egress entry `%.80s` is not valid; write %s", text, SYNTAX);
}

int egress_rule_parse(const char *text, struct egress_rule *r, berth_error_t *err) {
  memset(r, 0, sizeof *r);
  r->set = -1;
  size_t len = text ? strlen(text) : 0;
  if (!len || len > 300) return berth_error(err, -EINVAL, "egress entry `%.60s`: empty or too long; write %s", text ? text : "", SYNTAX);
  char buf[304], *s = buf;
  for (size_t i = 0; i <= len; i++) buf[i] = (char)tolower((unsigned char)text[i]);
  while (*s == ' ') s++;
  for (size_t n = strlen(s); n && s[n - 1] == ' ';) s[--n] = '\0';
  size_t n = strlen(s);
  if (n > 4 && (!strcmp(s + n - 4, "/tcp") || !strcmp(s + n - 4, "/udp"))) {
    r->proto = s[n - 3] == 't' ? IPPROTO_TCP : IPPROTO_UDP;
    s[n - 4] = '\0';
  }
  char *host = s, *ports = NULL;
  int v6 = 0;
  if (*s == '[') {
    char *close = strchr(s, ']');
    if (!close || (close[1] && close[1] != ':')) return bad_entry(text, err);
    *close = '\0';
    host = s + 1;
    if (close[1] == ':') ports = close + 2;
    v6 = 1;
  } else {
    char *c1 = strchr(s, ':');
    if (c1 && strchr(c1 + 1, ':')) v6 = 1; /* a bare IPv6 address: no port */
    else if (c1) *c1 = '\0', ports = c1 + 1;
  }
  if (ports && parse_ports(ports, r) < 0)
    return berth_error(err, -EINVAL, "egress entry `%.80s`: the port must be 1-65535 or a range LOW-HIGH; write %s", text, SYNTAX);
  if (v6) {
    if (parse_cidr(host, 6, r) < 0)
      return berth_error(err, -EINVAL, "egress entry `%.80s`: not an IPv6 address or CIDR; write %s", text, SYNTAX);
    return 0;
  }
  if (strchr(host, '/') || all_digits(strrchr(host, '.') ? strrchr(host, '.') + 1 : host)) {
    if (parse_cidr(host, 4, r) < 0)
      return berth_error(err, -EINVAL, "egress entry `%.80s`: not an IPv4 address or CIDR; write %s", text, SYNTAX);
    return 0;
  }
  r->is_name = true;
  if (str_has_prefix(host, "*.")) {
    r->wildcard = true;
    host += 2;
  }
  size_t hl = strlen(host);
  if (hl && host[hl - 1] == '.') host[--hl] = '\0';
  /* a last label of digits alone reads as an address: no name has one */
  if (!dns_name_valid(host) || all_digits(strrchr(host, '.') ? strrchr(host, '.') + 1 : host)) return bad_entry(text, err);
  snprintf(r->name, sizeof r->name, "%s", host);
  return 0;
}

static void addr_text(int family, const uint8_t *a, char *out, size_t len) {
  if (!inet_ntop(family == 4 ? AF_INET : AF_INET6, a, out, (socklen_t)len)) snprintf(out, len, "?");
}

void egress_rule_format(const struct egress_rule *r, char *out, size_t len) {
  char host[300], ports[16] = "";
  if (r->is_name) {
    snprintf(host, sizeof host, "%s%s", r->wildcard ? "*." : "", r->name);
  } else {
    char a[INET6_ADDRSTRLEN];
    addr_text(r->family, r->addr, a, sizeof a);
    bool full = r->prefix == (r->family == 4 ? 32 : 128);
    char pfx[8] = "";
    if (!full) snprintf(pfx, sizeof pfx, "/%d", r->prefix);
    if (r->family == 6 && r->port_lo) snprintf(host, sizeof host, "[%s%s]", a, pfx);
    else snprintf(host, sizeof host, "%s%s", a, pfx);
  }
  if (r->port_lo == r->port_hi && r->port_lo) snprintf(ports, sizeof ports, ":%u", r->port_lo);
  else if (r->port_lo) snprintf(ports, sizeof ports, ":%u-%u", r->port_lo, r->port_hi);
  snprintf(out, len, "%s%s%s", host, ports, r->proto == IPPROTO_TCP ? "/tcp" : r->proto == IPPROTO_UDP ? "/udp" : "");
}

static bool is_host_name(const struct egress_rule *r) { return r->is_name && !r->wildcard && !strcmp(r->name, EGRESS_HOST_NAME); }

int egress_normalize(json_t *req, json_t *profile_list, json_t **out, berth_error_t *err) {
  *out = NULL;
  if (!json_is_object(req)) return berth_error(err, -EINVAL, "`egress` must be an object {allow: [entries], deny_host, log, profile}");
  const char *k;
  json_t *v;
  json_object_foreach(req, k, v) {
    bool is_bool = !strcmp(k, "deny_host") || !strcmp(k, "log") || !strcmp(k, "profile");
    if (!is_bool && strcmp(k, "allow"))
      return berth_error(err, -EINVAL, "`egress.%.40s` is not a policy field (allow, deny_host, log, profile)", k);
    if (is_bool && !json_is_boolean(v) && !json_is_null(v)) return berth_error(err, -EINVAL, "`egress.%s` must be a boolean", k);
  }
  json_t *allow = json_object_get(req, "allow");
  if (allow && !json_is_null(allow) && !json_is_array(allow))
    return berth_error(err, -EINVAL, "`egress.allow` must be an array of entries (%s)", SYNTAX);
  json_t *lists[2] = {allow, jbool(req, "profile", true) ? profile_list : NULL};
  json_t *canon = json_array();
  size_t names = 0;
  for (int l = 0; l < 2; l++) {
    size_t i;
    json_array_foreach(lists[l], i, v) {
      if (!json_is_string(v)) {
        json_decref(canon);
        return berth_error(err, -EINVAL, "`egress.allow[%zu]` must be a string (%s)", i, SYNTAX);
      }
      struct egress_rule r;
      if (egress_rule_parse(json_string_value(v), &r, err) < 0) {
        json_decref(canon);
        return l ? berth_error_wrap(err, "the purpose profile's egress list") : -1;
      }
      char t[340];
      egress_rule_format(&r, t, sizeof t);
      bool dup = false;
      size_t j;
      json_t *c;
      json_array_foreach(canon, j, c) dup |= !strcmp(json_string_value(c), t);
      if (dup) continue;
      if (json_array_size(canon) >= EGRESS_MAX_ENTRIES || (r.is_name && !is_host_name(&r) && ++names > EGRESS_MAX_NAMES)) {
        json_decref(canon);
        return berth_error(err, -EINVAL,
                           "an egress policy takes at most %d entries, %d of them names; use CIDRs or "
                           "wildcards (*.example.org) to say more with fewer",
                           EGRESS_MAX_ENTRIES, EGRESS_MAX_NAMES);
      }
      json_array_append_new(canon, json_string(t));
    }
  }
  *out = json_pack("{s:o, s:b, s:b}", "allow", canon, "deny_host", jbool(req, "deny_host", true), "log", jbool(req, "log", true));
  return 0;
}

int egress_policy_load(json_t *pol, struct egress_policy *p, berth_error_t *err) {
  memset(p, 0, sizeof *p);
  json_t *allow = json_object_get(pol, "allow");
  size_t n = json_array_size(allow);
  if (n > EGRESS_MAX_ENTRIES) return berth_error(err, -EINVAL, "the egress policy has more than %d entries", EGRESS_MAX_ENTRIES);
  p->rules = xmalloc0(sizeof *p->rules * (n ? n : 1));
  p->deny_host = jbool(pol, "deny_host", true);
  p->log = jbool(pol, "log", true);
  int sets = 0;
  for (size_t i = 0; i < n; i++) {
    if (egress_rule_parse(json_string_value(json_array_get(allow, i)), &p->rules[i], err) < 0) {
      egress_policy_free(p);
      return berth_error_wrap(err, "the container's egress policy");
    }
    if (p->rules[i].is_name && !is_host_name(&p->rules[i])) p->rules[i].set = sets++;
    p->n++;
  }
  return 0;
}

void egress_policy_free(struct egress_policy *p) {
  free(p->rules);
  p->rules = NULL;
  p->n = 0;
}

bool egress_name_match(const struct egress_rule *r, const char *name) {
  if (!r->is_name || is_host_name(r)) return false;
  if (!r->wildcard) return !strcmp(name, r->name);
  size_t nl = strlen(name), rl = strlen(r->name);
  return nl > rl + 1 && name[nl - rl - 1] == '.' && !strcmp(name + nl - rl, r->name);
}

bool egress_name_allowed(const struct egress_policy *p, const char *name) {
  for (size_t i = 0; i < p->n; i++)
    if (egress_name_match(&p->rules[i], name)) return true;
  return false;
}

static void host_add(struct egress_net *n, int family, const void *a) {
  size_t alen = family == 4 ? 4 : 16;
  for (size_t i = 0; i < n->nhost; i++)
    if (n->host[i].family == family && !memcmp(n->host[i].addr, a, alen)) return;
  if (n->nhost >= sizeof n->host / sizeof *n->host) return;
  n->host[n->nhost].family = family;
  memcpy(n->host[n->nhost].addr, a, alen);
  n->nhost++;
}

void egress_host_addrs(struct egress_net *n) {
  n->nhost = 0;
  struct in_addr g;
  /* host.berth.internal, and slirp4netns's resolver (berth's own goes there) */
  const char *gw[] = {n->slirp ? NET_HOST_ADDR : HB_GATEWAY, n->slirp ? NET_DNS_ADDR : NULL};
  for (int i = 0; i < 2; i++)
    if (gw[i] && inet_pton(AF_INET, gw[i], &g) == 1) host_add(n, 4, &g);
  struct ifaddrs *ifa = NULL;
  if (getifaddrs(&ifa) < 0) return;
  for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
      if ((ntohl(a.s_addr) >> 24) != 127) host_add(n, 4, &a); /* the container's loopback is its own */
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      struct in6_addr a = ((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
      if (!IN6_IS_ADDR_LOOPBACK(&a) && !IN6_IS_ADDR_LINKLOCAL(&a)) host_add(n, 6, &a);
    }
  }
  freeifaddrs(ifa);
}

int egress_addr_parse(const char *text, struct egress_addr *a) {
  memset(a, 0, sizeof *a);
  a->port = 53;
  char buf[80];
  if (!text || strlen(text) >= sizeof buf) return -1;
  snprintf(buf, sizeof buf, "%s", text);
  char *host = buf, *port = NULL;
  if (buf[0] == '[') {
    char *c = strchr(buf, ']');
    if (!c || (c[1] && c[1] != ':')) return -1;
    *c = '\0';
    host = buf + 1;
    if (c[1]) port = c + 2;
  } else {
    char *c = strchr(buf, ':');
    if (c && !strchr(c + 1, ':')) *c = '\0', port = c + 1;
  }
  if (port) {
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 1 || p > 65535) return -1;
    a->port = (uint16_t)p;
  }
  if (inet_pton(AF_INET, host, a->addr) == 1) a->family = 4;
  else if (inet_pton(AF_INET6, host, a->addr) == 1) a->family = 6;
  else return -1;
  return 0;
}

/* ---- the nftables table ---- */
static void appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(struct buf *b, const char *fmt, ...) {
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n > 0) buf_append(b, s, (size_t)n);
  free(s);
}

static struct egress_match *add(struct egress_table *t, int verdict) {
  static struct egress_match spill; /* never used: the table is sized for the worst case */
  struct egress_match *m = t->n < t->cap ? &t->m[t->n++] : &spill;
  memset(m, 0, sizeof *m);
  m->prefix = -1, m->set = -1, m->icmp6_type = -1, m->verdict = verdict;
  return m;
}

static void set_addr(struct egress_match *m, int family, const uint8_t *a, int prefix) {
  m->family = (uint8_t)family;
  memcpy(m->addr, a, family == 4 ? 4 : 16);
  m->prefix = prefix;
}

/* a rule's ports: with no protocol named, one rule each for TCP and UDP */
static void add_ported(struct egress_table *t, const struct egress_match *base, const struct egress_rule *r) {
  for (int pr = 0; pr < 2; pr++) {
    uint8_t proto = r->proto ? r->proto : pr ? IPPROTO_UDP : IPPROTO_TCP;
    if (pr && (r->proto || !r->port_lo)) break;
    struct egress_match *m = add(t, base->verdict);
    *m = *base;
    if (r->port_lo || r->proto) m->proto = proto;
    m->port_lo = r->port_lo, m->port_hi = r->port_hi;
  }
}

int egress_table_build(const struct egress_policy *p, const struct egress_net *n, struct egress_table *t) {
  memset(t, 0, sizeof *t);
  t->log = p->log;
  /* the most each part can take (a rule with ports and no protocol is two) */
  t->cap = 8 + 4 * n->nup + n->nhost + 1 + 4 * p->n + 1;
  t->m = xmalloc0(t->cap * sizeof *t->m);
  if (!t->m) return -1;
  uint8_t gw[4];
  inet_pton(AF_INET, n->slirp ? NET_HOST_ADDR : HB_GATEWAY, gw);
  /* established flows first: a bulk transfer's packets stop at rule one */
  add(t, EGRESS_ACCEPT)->ct_ok = true;
  add(t, EGRESS_ACCEPT)->oif_lo = true;
  /* IPv6's own upkeep on the link (neighbour discovery, MLD): nothing
   * leaves the link with it */
  uint8_t ff02[16] = {0xff, 0x02};
  set_addr(add(t, EGRESS_ACCEPT), 6, ff02, 16);
  const int nd[] = {133, 135, 136};
  for (int i = 0; i < 3; i++) {
    struct egress_match *m = add(t, EGRESS_ACCEPT);
    m->family = 6, m->proto = IPPROTO_ICMPV6, m->icmp6_type = nd[i];
  }
  /* DNS goes through berth's resolver: its upstreams answer it alone */
  for (size_t i = 0; i < n->nup; i++)
    for (int deny = 0; deny < 2; deny++)
      for (int pr = 0; pr < 2; pr++) {
        struct egress_match *m = add(t, deny ? EGRESS_DENY : EGRESS_ACCEPT);
        set_addr(m, n->up[i].family, n->up[i].addr, n->up[i].family == 4 ? 32 : 128);
        m->mark = !deny;
        m->proto = pr ? IPPROTO_UDP : IPPROTO_TCP;
        m->port_lo = m->port_hi = n->up[i].port;
      }
  for (size_t i = 0; i < p->n; i++)
    if (is_host_name(&p->rules[i])) {
      struct egress_match b;
      memset(&b, 0, sizeof b);
      b.set = -1, b.icmp6_type = -1, b.verdict = EGRESS_ACCEPT;
      set_addr(&b, 4, gw, 32);
      add_ported(t, &b, &p->rules[i]);
    }
  for (size_t i = 0; i < n->nhost; i++)
    set_addr(add(t, p->deny_host ? EGRESS_DENY : EGRESS_ACCEPT), n->host[i].family, n->host[i].addr, n->host[i].family == 4 ? 32 : 128);
  struct egress_rule sn;
  if (n->subnet[0] && egress_rule_parse(n->subnet, &sn, NULL) == 0) set_addr(add(t, EGRESS_ACCEPT), sn.family, sn.addr, sn.prefix);
  for (size_t i = 0; i < p->n; i++) {
    const struct egress_rule *r = &p->rules[i];
    struct egress_match b;
    memset(&b, 0, sizeof b);
    b.prefix = -1, b.set = -1, b.icmp6_type = -1, b.verdict = EGRESS_ACCEPT;
    if (r->set >= 0) {
      if (r->set + 1 > t->sets) t->sets = r->set + 1;
      b.set = r->set;
      for (int f = 4; f <= 6; f += 2) {
        b.family = (uint8_t)f;
        add_ported(t, &b, r);
      }
    } else if (!r->is_name) {
      set_addr(&b, r->family, r->addr, r->prefix);
      add_ported(t, &b, r);
    }
  }
  add(t, EGRESS_DENY);
  return 0;
}

void egress_table_free(struct egress_table *t) {
  free(t->m);
  memset(t, 0, sizeof *t);
}

char *egress_nft_script(const struct egress_policy *p, const struct egress_net *n) {
  struct egress_table t;
  if (egress_table_build(p, n, &t) < 0) return NULL;
  struct buf b = {0};
  appendf(&b, "table inet " EGRESS_TABLE " {\n");
  for (int i = 0; i < t.sets; i++)
    appendf(&b,
            "  set n%d_4 { type ipv4_addr; flags timeout; size 65536; }\n"
            "  set n%d_6 { type ipv6_addr; flags timeout; size 65536; }\n",
            i, i);
  /* every refusal goes through here: recorded (at a bounded rate: a flood
   * cannot fill the disk), then refused at once, never left to time out */
  appendf(&b, "  chain deny {\n");
  if (t.log)
    appendf(&b, "    limit rate %d/second burst %d packets log group %d\n", EGRESS_LOG_RATE, 2 * EGRESS_LOG_RATE, EGRESS_LOG_GROUP);
  appendf(&b, "    meta l4proto tcp reject with tcp reset\n"
              "    reject with icmpx type admin-prohibited\n"
              "  }\n"
              "  chain output {\n"
              "    type filter hook output priority filter; policy accept;\n");
  for (size_t i = 0; i < t.n; i++) {
    const struct egress_match *m = &t.m[i];
    const char *ip = m->family == 6 ? "ip6" : "ip";
    appendf(&b, "   ");
    if (m->oif_lo) appendf(&b, " oif \"lo\"");
    if (m->ct_ok) appendf(&b, " ct state established,related");
    if (m->mark) appendf(&b, " meta mark 0x%x", EGRESS_MARK);
    if (m->prefix >= 0) {
      char a[INET6_ADDRSTRLEN];
      addr_text(m->family, m->addr, a, sizeof a);
      if (m->prefix == (m->family == 4 ? 32 : 128)) appendf(&b, " %s daddr %s", ip, a);
      else appendf(&b, " %s daddr %s/%d", ip, a, m->prefix);
    }
    if (m->set >= 0) appendf(&b, " %s daddr @n%d_%d", ip, m->set, m->family);
    const char *pn = m->proto == IPPROTO_TCP ? "tcp" : m->proto == IPPROTO_UDP ? "udp" : "icmpv6";
    if (m->icmp6_type >= 0) appendf(&b, " icmpv6 type %d", m->icmp6_type);
    else if (m->port_lo == m->port_hi && m->port_lo) appendf(&b, " %s dport %u", pn, m->port_lo);
    else if (m->port_lo) appendf(&b, " %s dport %u-%u", pn, m->port_lo, m->port_hi);
    else if (m->proto) appendf(&b, " meta l4proto %s", pn);
    appendf(&b, " %s\n", m->verdict == EGRESS_ACCEPT ? "accept" : "jump deny");
  }
  appendf(&b, "  }\n}\n");
  buf_append(&b, "", 1);
  egress_table_free(&t);
  return b.data;
}

/* ---- the dry run ---- */
static bool in_prefix(const uint8_t *a, const uint8_t *net, int prefix) {
  for (int bit = 0; bit < prefix; bit++) {
    uint8_t m = (uint8_t)(0x80 >> (bit % 8));
    if ((a[bit / 8] & m) != (net[bit / 8] & m)) return false;
  }
  return true;
}

static bool port_ok(const struct egress_rule *r, int port, int proto) {
  if (r->proto && proto && r->proto != proto) return false;
  if (r->port_lo && port && (port < r->port_lo || port > r->port_hi)) return false;
  return true;
}

static bool port_limited(const struct egress_rule *r, int port, int proto) { return (r->port_lo && !port) || (r->proto && !proto); }

int egress_check(json_t *policy, const struct egress_net *n, const char *dest, json_t **out, berth_error_t *err) {
  struct egress_rule d;
  if (egress_rule_parse(dest, &d, err) < 0) return -1;
  if (d.wildcard || d.port_lo != d.port_hi || (!d.is_name && d.prefix != (d.family == 4 ? 32 : 128)))
    return berth_error(err, -EINVAL, "`%.80s`: give one destination: HOST[:PORT][/tcp|/udp], HOST a name or an address", dest);
  struct egress_policy p;
  if (egress_policy_load(policy, &p, err) < 0) return -1;
  int port = d.port_lo, proto = d.proto;
  const char *rule = NULL, *reason = NULL;
  char rt[340], why[600];
  bool allowed = false;
  bool is_gw = is_host_name(&d);
  if (is_gw) { /* /etc/hosts says the gateway: judged as that address */
    d.is_name = false;
    d.family = 4;
    inet_pton(AF_INET, n->slirp ? NET_HOST_ADDR : HB_GATEWAY, d.addr);
  }
  if (!d.is_name) {
    bool loop = d.family == 4 ? d.addr[0] == 127 : IN6_IS_ADDR_LOOPBACK((struct in6_addr *)d.addr);
    bool host = false, upstream = false, subnet = false;
    for (size_t i = 0; i < n->nhost; i++) host |= n->host[i].family == d.family && !memcmp(n->host[i].addr, d.addr, d.family == 4 ? 4 : 16);
    for (size_t i = 0; i < n->nup; i++)
      upstream |= n->up[i].family == d.family && !memcmp(n->up[i].addr, d.addr, d.family == 4 ? 4 : 16) && (!port || port == n->up[i].port);
    struct egress_rule sn;
    if (n->subnet[0] && egress_rule_parse(n->subnet, &sn, NULL) == 0 && sn.family == d.family)
      subnet = in_prefix(d.addr, sn.addr, sn.prefix);
    if (loop) {
      allowed = true, reason = "the container's own loopback";
    } else if (upstream) {
      reason = "DNS goes through berth's resolver for the container, which alone reaches its upstream servers";
    } else {
      for (size_t i = 0; i < p.n && !allowed && is_gw; i++)
        if (is_host_name(&p.rules[i]) && port_ok(&p.rules[i], port, proto)) {
          egress_rule_format(&p.rules[i], rt, sizeof rt);
          allowed = true, rule = rt;
          reason = port_limited(&p.rules[i], port, proto) ? "host.berth.internal (for the rule's ports and protocol only)"
                                                          : "host.berth.internal";
        }
      if (!allowed && host && p.deny_host) {
        reason = "an address of the host (deny_host: the host's services stay out of reach; allow host.berth.internal[:PORT] "
                 "or set deny_host false)";
      } else if (!allowed && host) {
        allowed = true, reason = "an address of the host (deny_host is false)";
      } else if (!allowed && subnet) {
        allowed = true, reason = "the container's named network";
      }
      bool decided = allowed || reason;
      for (size_t i = 0; i < p.n && !decided; i++) {
        const struct egress_rule *r = &p.rules[i];
        if (r->is_name || r->family != d.family || !in_prefix(d.addr, r->addr, r->prefix)) continue;
        egress_rule_format(r, rt, sizeof rt);
        if (!port_ok(r, port, proto)) {
          snprintf(why, sizeof why, "rule `%s` covers the address but not %s%s%d", rt,
                   proto == IPPROTO_UDP ? "udp "
                   : proto              ? "tcp "
                                        : "",
                   "port ", port);
          reason = why;
          continue;
        }
        allowed = decided = true, rule = rt;
        reason = port_limited(r, port, proto) ? "by an address rule (for its ports and protocol only)" : "by an address rule";
      }
      if (!allowed && !reason)
        reason = "no rule allows this address (addresses of allowed names are allowed while berth's resolver holds them "
                 "from an answer: for their TTL, at least 30 s)";
    }
  } else {
    for (size_t i = 0; i < p.n && !allowed; i++) {
      const struct egress_rule *r = &p.rules[i];
      if (!egress_name_match(r, d.name)) continue;
      egress_rule_format(r, rt, sizeof rt);
      if (!port_ok(r, port, proto)) {
        snprintf(why, sizeof why, "the name resolves (rule `%s`), but connections to %s%s%d are refused", rt,
                 proto == IPPROTO_UDP ? "udp "
                 : proto              ? "tcp "
                                      : "",
                 "port ", port);
        reason = why;
        continue;
      }
      allowed = true, rule = rt;
      reason = port_limited(r, port, proto) ? "by a name rule (for its ports and protocol only): berth's resolver answers it and its "
                                              "addresses are allowed for their TTL"
                                            : "by a name rule: berth's resolver answers it and its addresses are allowed for their TTL";
    }
    if (!allowed && !reason) reason = "no rule allows this name: berth's resolver answers NXDOMAIN";
  }
  *out = json_pack("{s:b, s:s, s:s*, s:s}", "allowed", allowed, "destination", dest, "rule", rule, "reason", reason);
  egress_policy_free(&p);
  return 0;
}

/* ---- records ---- */
static void records_of(const char *path, json_t *all) {
  cleanup_free char *txt = NULL;
  size_t len = 0;
  if (read_file(path, 2 * EGRESS_LOG_MAX, &txt, &len, NULL) < 0) return;
  char *save = NULL;
  for (char *l = strtok_r(txt, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    json_t *r = json_loads(l, 0, NULL);
    if (json_is_object(r) && json_is_integer(json_object_get(r, "n"))) json_array_append(all, r);
    json_decref(r);
  }
}

static int by_n(const void *a, const void *b) {
  json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "n"));
  json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "n"));
  return x < y ? -1 : x > y;
}

json_t *egress_records(const char *cdir, size_t last, json_int_t *count) {
  json_t *all = json_array();
  cleanup_free char *p0 = xasprintf("%s/egress.log", cdir), *p1 = xasprintf("%s/egress.log.1", cdir);
  records_of(p1, all);
  records_of(p0, all);
  size_t n = json_array_size(all);
  json_t **v = xmalloc0(sizeof *v * (n ? n : 1));
  for (size_t i = 0; i < n; i++) v[i] = json_array_get(all, i);
  qsort(v, n, sizeof *v, by_n);
  json_t *out = json_array();
  for (size_t i = n > last ? n - last : 0; i < n; i++) {
    json_t *r = json_deep_copy(v[i]);
    json_object_del(r, "n");
    json_array_append_new(out, r);
  }
  *count = n ? json_integer_value(json_object_get(v[n - 1], "n")) : 0;
  free(v);
  json_decref(all);
  return out;
}
