/* berth egress test; create's --egress and --egress-file; the refusals
 * that `berth logs --network` and `berth status` print. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "berth.h"
#include "cli/cli.h"
#include "runtime/container.h"
#include "network/egress.h"

static const char *EGRESS_HELP = "Usage: berth egress test [--json] NAME HOST[:PORT][/tcp|/udp]\n\n"
                                 "Dry run of a container's egress policy (`berth create --egress`): would a connection\n"
                                 "from it to HOST (a name or an address) be allowed, and by which rule? Exit 0 when\n"
                                 "allowed, 1 when refused.\n\n"
                                 "      --json     {allowed, destination, rule, reason}\n\n"
                                 "Refusals that happened: `berth logs --network NAME`, `berth status NAME`.\n";

static json_t *egress_obj(json_t **e) {
  if (!*e) *e = json_object();
  return *e;
}

static void allow_add(json_t *e, const char *entry, size_t len) {
  while (len && isspace((unsigned char)*entry)) entry++, len--;
  while (len && isspace((unsigned char)entry[len - 1])) len--;
  if (!len) return;
  json_t *a = json_object_get(e, "allow");
  if (!a) json_object_set_new(e, "allow", a = json_array());
  json_array_append_new(a, json_stringn(entry, len));
}

int cli_egress_flag(json_t **egress, const char *spec) {
  json_t *e = egress_obj(egress);
  if (str_has_prefix(spec, "allow:")) {
    for (const char *s = spec + 6; *s;) {
      const char *c = strchr(s, ',');
      size_t n = c ? (size_t)(c - s) : strlen(s);
      allow_add(e, s, n);
      s += n + (c ? 1 : 0);
    }
    if (!json_object_get(e, "allow")) json_object_set_new(e, "allow", json_array());
  } else if (!strcmp(spec, "deny")) {
    if (!json_object_get(e, "allow")) json_object_set_new(e, "allow", json_array());
  } else if (!strcmp(spec, "host")) {
    json_object_set_new(e, "deny_host", json_false());
  } else if (!strcmp(spec, "nolog")) {
    json_object_set_new(e, "log", json_false());
  } else if (!strcmp(spec, "noprofile")) {
    json_object_set_new(e, "profile", json_false());
  } else {
    fprintf(stderr,
            "berth: --egress expects allow:ENTRY[,ENTRY...], deny, host, nolog or noprofile, got `%s`; an entry is "
            "HOST[:PORT[-PORT]][/tcp|/udp] (see `berth create --help`)\n",
            spec);
    return -1;
  }
  return 0;
}

int cli_egress_file(json_t **egress, const char *path) {
  cleanup_free char *txt = NULL;
  size_t len = 0;
  berth_error_t err = NULL;
  if (read_file(path, 1 << 20, &txt, &len, &err) < 0) {
    fprintf(stderr, "berth: --egress-file: %s\n", err->msg);
    berth_error_free(err);
    return -1;
  }
  json_t *e = egress_obj(egress);
  const char *s = txt;
  while (isspace((unsigned char)*s)) s++;
  if (*s == '{') { /* the tool's egress object */
    json_error_t je;
    json_t *j = json_loadb(txt, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
      fprintf(stderr, "berth: --egress-file %s: line %d: %s\n", path, je.line, j ? "expected an object" : je.text);
      json_decref(j);
      return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
      if (!strcmp(k, "allow") && json_is_array(v)) {
        size_t i;
        json_t *x;
        if (!json_object_get(e, "allow")) json_object_set_new(e, "allow", json_array());
        json_array_foreach(v, i, x) json_array_append(json_object_get(e, "allow"), x);
      } else {
        json_object_set(e, k, v); /* checked with the rest of the request */
      }
    }
    json_decref(j);
    return 0;
  }
  /* one entry a line; # starts a comment */
  if (!json_object_get(e, "allow")) json_object_set_new(e, "allow", json_array());
  for (char *save = NULL, *l = strtok_r(txt, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    char *hash = strchr(l, '#');
    if (hash) *hash = '\0';
    allow_add(e, l, strlen(l));
  }
  return 0;
}

/* one refusal, for people */
static void print_record(json_t *r) {
  const char *kind = json_string_value(json_object_get(r, "kind")) ?: "?";
  const char *when = json_string_value(json_object_get(r, "time")) ?: "-";
  const char *name = json_string_value(json_object_get(r, "name"));
  if (!strcmp(kind, "dns")) {
    printf("%s  refused name %s (%s): NXDOMAIN\n", when, name ?: "?", json_string_value(json_object_get(r, "type")) ?: "?");
    return;
  }
  const char *dst = json_string_value(json_object_get(r, "destination")) ?: "?";
  json_t *port = json_object_get(r, "port");
  bool v6 = strchr(dst, ':') != NULL;
  printf("%s  refused %s to %s%s%s", when, json_string_value(json_object_get(r, "proto")) ?: "?", v6 && port ? "[" : "", dst,
         v6 && port ? "]" : "");
  if (port) printf(":%lld", (long long)json_integer_value(port));
  if (name) printf(" (%s)", name);
  putchar('\n');
}

void cli_egress_print_status(json_t *status) {
  json_t *pol = json_object_get(json_object_get(status, "metadata"), "egress");
  if (!pol) return;
  json_t *allow = json_object_get(pol, "allow");
  printf("%-14s allow", "Egress:");
  if (!json_array_size(allow)) printf(" nothing");
  size_t i;
  json_t *a;
  json_array_foreach(allow, i, a) printf("%s %s", i ? "," : "", json_string_value(a));
  printf("; host %s%s\n", json_is_false(json_object_get(pol, "deny_host")) ? "allowed" : "denied",
         json_is_false(json_object_get(pol, "log")) ? "; refusals not recorded" : "");
  json_t *d = json_object_get(status, "egress_denied");
  if (!d) return;
  printf("%-14s %lld recorded", "Refused:", (long long)json_integer_value(json_object_get(d, "count")));
  if (json_array_size(json_object_get(d, "recent"))) printf(", the last:");
  putchar('\n');
  json_array_foreach(json_object_get(d, "recent"), i, a) {
    printf("  ");
    print_record(a);
  }
}

int cli_egress_records(const char *name, long long tail, bool json) {
  json_t *st = container_state(name);
  if (!st) {
    fprintf(stderr, "berth: error: Container not found: %s\n", name);
    return 1;
  }
  bool has = json_object_get(st, "egress") != NULL;
  json_decref(st);
  if (!has) {
    fprintf(stderr, "berth logs: %s has no egress policy, so nothing is refused or recorded (create it with --egress)\n", name);
    return 1;
  }
  cleanup_free char *cdir = container_dir(name);
  json_int_t count = 0;
  json_t *recs = egress_records(cdir, tail < 0 ? (size_t)-1 : (size_t)tail, &count);
  if (json) {
    json_t *o = json_pack("{s:s, s:I, s:O}", "container", name, "count", count, "records", recs);
    cli_print_json(o);
    json_decref(o);
  } else {
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r) print_record(r);
  }
  json_decref(recs);
  return 0;
}

int cmd_egress(int argc, char **argv) {
  bool json = false;
  const char *args[3] = {0};
  int n = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fputs(EGRESS_HELP, stdout), 0;
    else if (argv[i][0] == '-') return cli_unknown_option("egress", argv[i]);
    else if (n < 3) args[n++] = argv[i];
    else return fprintf(stderr, "berth egress: too many arguments; see `berth egress --help`\n"), EXIT_BERTH;
  }
  if (n != 3 || strcmp(args[0], "test")) {
    fprintf(stderr, "berth egress: expected `test NAME HOST[:PORT]`; see `berth egress --help`\n");
    return EXIT_BERTH;
  }
  json_t *out = NULL;
  berth_error_t err = NULL;
  if (container_egress_test(args[1], args[2], &out, &err) < 0) return cli_fail(json, err);
  bool allowed = json_is_true(json_object_get(out, "allowed"));
  if (json) cli_print_json(out);
  else {
    const char *rule = json_string_value(json_object_get(out, "rule"));
    printf("%s: %s", args[2], allowed ? "allowed" : "refused");
    if (rule) printf(" by `%s`", rule);
    printf(" (%s)\n", json_string_value(json_object_get(out, "reason")));
  }
  json_decref(out);
  return allowed ? 0 : 1;
}
