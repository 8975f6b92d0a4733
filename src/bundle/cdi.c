/* CDI spec reader, validator and resolver (see cdi.h).
 *
 * Specs are trusted host configuration (root writes them), but berth
 * still checks every name and path it takes from them: a device node goes
 * only under the container's /dev, a mount never over /proc, /sys or
 * /dev, a hook must be an absolute path, and two edits that disagree are
 * refused rather than one silently winning. The rules for names,
 * versions, fields and merge order are the CDI project's (SPEC.md and its
 * Go reference, pkg/cdi and pkg/parser). */
#define _GNU_SOURCE
#include "bundle/cdi.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <yaml.h>

#include "util/config.h"
#include "bundle/spec.h"

/* ---------- published spec versions, oldest first ----------
 * A spec must name one of them, and one no older than the newest feature
 * it uses (the reference's MinimumRequiredVersion). 0.1.0 and 0.2.0 are
 * accepted as known, as the reference does. */
static const char *const VERSIONS[] = {"0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0"};
enum { V030 = 2, V040, V050, V060, V070, V080, V100, V110, N_VERSIONS };

/* the YAML or JSON node a value came from: its line (YAML) and whether it
 * was a plain (unquoted, untagged) scalar, which may then be read as a
 * number, a boolean or null */
struct mark {
  json_t *node;
  int line;
  bool plain;
};

struct vctx {
  const char *file;
  bool yaml;
  struct mark *marks;
  size_t nmarks, cap;
  size_t nodes; /* converted so far: a bound on alias expansion */
  json_t *anchors; /* YAML anchors: name -> {node, size} */
  yaml_parser_t *parser;
  int need; /* the newest version a used feature needs */
  char need_by[96];
  berth_error_t *err;
};

enum { MAX_NODES = 500000, MAX_DEPTH = 64, MAX_SPEC_BYTES = 16 << 20 };
/* a field's path for messages (cut when very long, which is fine there) */
static void fld(char *b, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fld(char *b, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b, n, fmt, ap);
  va_end(ap);
}
#define FLD(b, ...) fld(b, sizeof b, __VA_ARGS__)

/* marks by node pointer, open addressing: every typed read looks one up,
 * and a generated spec has tens of thousands of nodes */
static size_t mark_slot(const struct vctx *v, const json_t *n) {
  uintptr_t h = (uintptr_t)n;
  h ^= h >> 17, h *= 0x9E3779B97F4A7C15ULL, h ^= h >> 29;
  return (size_t)h & (v->cap - 1);
}

static void mark_add(struct vctx *v, json_t *n, int line, bool plain) {
  if (!n) return;
  if ((v->nmarks + 1) * 2 > v->cap) { /* keep it at most half full */
    size_t nc = v->cap ? v->cap * 2 : 1024;
    struct mark *m = calloc(nc, sizeof *m), *old = v->marks;
    if (!m) return; /* lines are for messages only */
    size_t oc = v->cap;
    v->marks = m, v->cap = nc;
    for (size_t i = 0; i < oc; i++)
      if (old[i].node) {
        size_t k = mark_slot(v, old[i].node);
        while (m[k].node) k = (k + 1) & (nc - 1);
        m[k] = old[i];
      }
    free(old);
  }
  size_t k = mark_slot(v, n);
  while (v->marks[k].node && v->marks[k].node != n) k = (k + 1) & (v->cap - 1);
  if (!v->marks[k].node) v->nmarks++;
  v->marks[k] = (struct mark){n, line, plain};
}

static const struct mark *mark_of(struct vctx *v, json_t *n) {
  if (!n || !v->cap) return NULL;
  for (size_t k = mark_slot(v, n); v->marks[k].node; k = (k + 1) & (v->cap - 1))
    if (v->marks[k].node == n) return &v->marks[k];
  return NULL;
}

static int verr(struct vctx *v, json_t *node, const char *field, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int verr(struct vctx *v, json_t *node, const char *field, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const struct mark *m = mark_of(v, node);
  if (m && m->line > 0)
    return berth_error(v->err, -EINVAL, "CDI spec `%s`, line %d: %s%s%s", v->file, m->line, field, *field ? ": " : "", msg);
  return berth_error(v->err, -EINVAL, "CDI spec `%s`: %s%s%s", v->file, field, *field ? ": " : "", msg);
}

/* ---------- YAML, through libyaml's event parser ----------
 * Events rather than libyaml's document loader: the loader gives every
 * untagged scalar the `str` tag, and the reader must tell `major: 195`
 * (a number) from `major: "195"` (a string, refused there as the
 * reference refuses it). Scalars stay JSON strings; their marks say
 * whether they were plain. */
static int y_fail(struct vctx *v) {
  yaml_parser_t *p = v->parser;
  int line = (int)(p->problem ? p->problem_mark.line : p->context_mark.line) + 1;
  return berth_error(v->err, -EINVAL, "CDI spec `%s`, line %d: not valid YAML: %s%s%s", v->file, line,
                     p->problem ? p->problem : "parse error", p->context ? " " : "", p->context ? p->context : "");
}

static bool y_next(struct vctx *v, yaml_event_t *ev) {
  if (yaml_parser_parse(v->parser, ev)) return true;
  y_fail(v);
  return false;
}

static json_t *y_node(struct vctx *v, yaml_event_t *ev, int depth);

static json_t *y_collection(struct vctx *v, yaml_event_t *ev, int depth, int line) {
  bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
  json_t *j = seq ? json_array() : json_object();
  mark_add(v, j, line, false);
  for (;;) {
    yaml_event_t e;
    if (!y_next(v, &e)) goto fail;
    if (e.type == (seq ? YAML_SEQUENCE_END_EVENT : YAML_MAPPING_END_EVENT)) {
      yaml_event_delete(&e);
      return j;
    }
    if (seq) {
      json_t *c = y_node(v, &e, depth + 1);
      if (!c) goto fail;
      json_array_append_new(j, c);
      continue;
    }
    /* a mapping: a scalar key, then its value */
    int kline = (int)e.start_mark.line + 1;
    if (e.type != YAML_SCALAR_EVENT) {
      yaml_event_delete(&e);
      berth_error(v->err, -EINVAL, "CDI spec `%s`, line %d: a mapping key must be a plain string", v->file, kline);
      goto fail;
    }
    cleanup_free char *key = strndup((const char *)e.data.scalar.value, e.data.scalar.length);
    bool bad = !key || strlen(key) != e.data.scalar.length;
    yaml_event_delete(&e);
    if (bad) {
      berth_error(v->err, -EINVAL, "CDI spec `%s`, line %d: a key holds a NUL byte", v->file, kline);
      goto fail;
    }
    if (json_object_get(j, key)) {
      berth_error(v->err, -EINVAL, "CDI spec `%s`, line %d: `%.80s` is given twice", v->file, kline, key);
      goto fail;
    }
    if (!y_next(v, &e)) goto fail;
    json_t *c = y_node(v, &e, depth + 1);
    if (!c) goto fail;
    if (json_object_set_new(j, key, c) < 0) {
      berth_error(v->err, -EINVAL, "CDI spec `%s`, line %d: key `%.80s` is not valid UTF-8", v->file, kline, key);
      goto fail;
    }
  }
fail:
  json_decref(j);
  return NULL;
}

/* ev is consumed (deleted) whatever happens */
static json_t *y_node(struct vctx *v, yaml_event_t *ev, int depth) {
  int line = (int)ev->start_mark.line + 1;
  json_t *j = NULL;
  cleanup_free char *anchor = NULL;
  if (depth > MAX_DEPTH) {
    yaml_event_delete(ev);
    berth_error(v->err, -EINVAL, "CDI spec `%s`, line %d: nested deeper than %d levels", v->file, line, MAX_DEPTH);
    return NULL;
  }
  switch (ev->type) {
  case YAML_ALIAS_EVENT: {
    const char *name = (const char *)ev->data.alias.anchor;
    json_t *a = json_object_get(v->anchors, name ? name : "");
    if (!a) {
      berth_error(v->err, -EINVAL, "CDI spec `%s`, line %d: alias `*%.60s` names no anchor", v->file, line, name ? name : "");
      break;
    }
    v->nodes += (size_t)json_integer_value(json_object_get(a, "size"));
    if (v->nodes > MAX_NODES) {
      berth_error(v->err, -EINVAL, "CDI spec `%s`, line %d: aliases expand to more than %d nodes", v->file, line, MAX_NODES);
      break;
    }
    j = json_deep_copy(json_object_get(a, "node"));
    mark_add(v, j, line, false);
    break;
  }
  case YAML_SCALAR_EVENT: {
    if (++v->nodes > MAX_NODES) {
      berth_error(v->err, -EINVAL, "CDI spec `%s`: more than %d nodes", v->file, MAX_NODES);
      break;
    }
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    if (memchr(s, 0, len)) {
      berth_error(v->err, -EINVAL, "CDI spec `%s`, line %d: a value holds a NUL byte", v->file, line);
      break;
    }
    j = json_stringn(s, len);
    if (!j) {
      berth_error(v->err, -EINVAL, "CDI spec `%s`, line %d: a value is not valid UTF-8", v->file, line);
      break;
    }
    /* plain, or explicitly typed other than as a string */
    bool plain = tag ? strcmp(tag, YAML_STR_TAG) != 0 : ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    mark_add(v, j, line, plain);
    if (ev->data.scalar.anchor) anchor = strdup((const char *)ev->data.scalar.anchor);
    break;
  }
  case YAML_SEQUENCE_START_EVENT:
  case YAML_MAPPING_START_EVENT: {
    const yaml_char_t *an = ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
    if (an) anchor = strdup((const char *)an);
    if (++v->nodes > MAX_NODES) {
      berth_error(v->err, -EINVAL, "CDI spec `%s`: more than %d nodes", v->file, MAX_NODES);
      break;
    }
    size_t before = v->nodes;
    j = y_collection(v, ev, depth, line);
    if (j && anchor)
      json_object_set_new(v->anchors, anchor, json_pack("{s:O, s:I}", "node", j, "size", (json_int_t)(v->nodes - before + 1)));
    yaml_event_delete(ev);
    return j;
  }
  default: berth_error(v->err, -EINVAL, "CDI spec `%s`, line %d: unexpected YAML event", v->file, line); break;
  }
  if (j && anchor) json_object_set_new(v->anchors, anchor, json_pack("{s:O, s:i}", "node", j, "size", 1));
  yaml_event_delete(ev);
  return j;
}

/* the one document of a YAML file */
static json_t *y_load(struct vctx *v, const char *text, size_t len) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) {
    berth_error(v->err, -ENOMEM, "YAML parser");
    return NULL;
  }
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  v->parser = &p;
  v->anchors = json_object();
  json_t *root = NULL;
  yaml_event_t e;
  int step = 0; /* stream start, document start (or the end: empty), the node, document end, stream end */
  for (bool go = true; go && y_next(v, &e); step++) {
    if (step == 1 && e.type == YAML_STREAM_END_EVENT) {
      berth_error(v->err, -EINVAL, "CDI spec `%s`: the file is empty", v->file);
      go = false;
    } else if (step == 2) {
      root = y_node(v, &e, 0); /* consumes e */
      if (!root) break;
      continue;
    } else if (step == 4) {
      if (e.type != YAML_STREAM_END_EVENT) {
        berth_error(v->err, -EINVAL, "CDI spec `%s`, line %d: a second YAML document; a spec file holds one", v->file,
                    (int)e.start_mark.line + 1);
        json_decref(root);
        root = NULL;
      }
      go = false;
    }
    yaml_event_delete(&e);
  }
  if (step < 5 && root) { /* stopped early: the parser's error is set */
    json_decref(root);
    root = NULL;
  }
  yaml_parser_delete(&p);
  v->parser = NULL;
  json_decref(v->anchors);
  v->anchors = NULL;
  return root;
}

/* ---------- typed fields ----------
 * JSON values have their types. A YAML scalar is a string; a plain one
 * may be read as a number, a boolean or null (YAML 1.1, as libyaml and
 * the reference's YAML library read it). A field set to null counts as
 * absent. Every getter returns 1 (present), 0 (absent) or -1 (error). */
static bool y_plain(struct vctx *v, json_t *n) {
  const struct mark *m = v->yaml ? mark_of(v, n) : NULL;
  return m && m->plain && json_is_string(n);
}

static bool is_null(struct vctx *v, json_t *n) {
  if (!n || json_is_null(n)) return true;
  if (!y_plain(v, n)) return false;
  const char *s = json_string_value(n);
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static const char *shown(json_t *n) {
  static __thread char b[64];
  if (json_is_string(n)) snprintf(b, sizeof b, "`%.40s`", json_string_value(n));
  else
    snprintf(b, sizeof b, "%s",
             json_is_object(n)    ? "an object"
             : json_is_array(n)   ? "a list"
             : json_is_integer(n) ? "a number"
             : json_is_real(n)    ? "a number"
             : json_is_boolean(n) ? "a boolean"
                                  : "null");
  return b;
}

static int g_str(struct vctx *v, json_t *n, const char *field, const char **out) {
  *out = NULL;
  if (is_null(v, n)) return 0;
  if (!json_is_string(n)) return verr(v, n, field, "expected a string, got %s", shown(n));
  *out = json_string_value(n);
  return 1;
}

/* YAML 1.1 integers: decimal, 0x hex, 0o or leading-0 octal, `_` allowed */
static bool y_int(const char *s, int64_t *out) {
  char b[80];
  size_t n = 0;
  for (const char *c = s; *c; c++) {
    if (*c == '_') continue;
    if (n + 1 >= sizeof b) return false;
    b[n++] = *c;
  }
  b[n] = '\0';
  const char *d = b;
  bool neg = *d == '-';
  if (*d == '-' || *d == '+') d++;
  int base = 10;
  if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) base = 16, d += 2;
  else if (d[0] == '0' && d[1] == 'o') base = 8, d += 2;
  else if (d[0] == '0' && d[1]) base = 8, d += 1;
  if (!*d) return false;
  for (const char *c = d; *c; c++) {
    int x = *c >= '0' && *c <= '9' ? *c - '0' : *c >= 'a' && *c <= 'f' ? *c - 'a' + 10 : *c >= 'A' && *c <= 'F' ? *c - 'A' + 10 : 99;
    if (x >= base) return false;
  }
  errno = 0;
  unsigned long long u = strtoull(d, NULL, base);
  if (errno || u > (unsigned long long)INT64_MAX) return false;
  *out = neg ? -(int64_t)u : (int64_t)u;
  return true;
}

static int g_int(struct vctx *v, json_t *n, const char *field, int64_t min, int64_t max, int64_t *out) {
  *out = 0;
  if (is_null(v, n)) return 0;
  int64_t x;
  if (json_is_integer(n)) x = json_integer_value(n);
  else if (y_plain(v, n) && y_int(json_string_value(n), &x)) {
  } else if (json_is_string(n) && y_int(json_string_value(n), &x))
    return verr(v, n, field, "expected an integer, got the string %s: drop the quotes", shown(n));
  else return verr(v, n, field, "expected an integer, got %s", shown(n));
  if (x < min || x > max) return verr(v, n, field, "%lld is out of range (%lld to %lld)", (long long)x, (long long)min, (long long)max);
  *out = x;
  return 1;
}

static int g_bool(struct vctx *v, json_t *n, const char *field, bool *out) {
  *out = false;
  if (is_null(v, n)) return 0;
  if (json_is_boolean(n)) return *out = json_is_true(n), 1;
  if (y_plain(v, n)) {
    static const char *const t[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", NULL};
    static const char *const f[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", NULL};
    const char *s = json_string_value(n);
    for (int i = 0; t[i]; i++)
      if (!strcmp(s, t[i])) return *out = true, 1;
    for (int i = 0; f[i]; i++)
      if (!strcmp(s, f[i])) return 1;
  }
  return verr(v, n, field, "expected true or false, got %s", shown(n));
}

/* a list of strings, as a new array (NULL when absent) */
static int g_strlist(struct vctx *v, json_t *n, const char *field, json_t **out) {
  *out = NULL;
  if (is_null(v, n)) return 0;
  if (!json_is_array(n)) return verr(v, n, field, "expected a list of strings, got %s", shown(n));
  json_t *a = json_array();
  size_t i;
  json_t *x;
  json_array_foreach(n, i, x) {
    char f[200];
    FLD(f, "%s[%zu]", field, i);
    const char *s;
    if (g_str(v, x, f, &s) <= 0) {
      json_decref(a);
      return is_null(v, x) ? verr(v, x, f, "expected a string, got null") : -1;
    }
    json_array_append_new(a, json_string(s));
  }
  *out = a;
  return 1;
}

static int only_keys(struct vctx *v, json_t *o, const char *field, const char *const *allowed) {
  const char *k;
  json_t *x;
  json_object_foreach(o, k, x) {
    bool ok = false;
    for (int i = 0; allowed[i] && !ok; i++) ok = !strcmp(k, allowed[i]);
    if (ok) continue;
    struct buf names = {0};
    for (int i = 0; allowed[i]; i++) {
      if (i) buf_append(&names, ", ", 2);
      buf_append(&names, allowed[i], strlen(allowed[i]));
    }
    buf_append(&names, "", 1);
    char f[256];
    FLD(f, "%s%s%.80s", field, *field ? "." : "", k);
    int r = verr(v, x, f, "unknown field (%s has %s)", *field ? field : "a spec", names.data);
    buf_free(&names);
    return r;
  }
  return 0;
}

static bool want_object(struct vctx *v, json_t *n, const char *field) {
  if (json_is_object(n)) return true;
  verr(v, n, field, "expected a mapping of fields, got %s", shown(n));
  return false;
}

/* a feature (at node) that a spec version introduced */
static void need(struct vctx *v, int version, const char *what, json_t *node) {
  if (version <= v->need) return;
  v->need = version;
  const struct mark *m = mark_of(v, node);
  if (m && m->line > 0) snprintf(v->need_by, sizeof v->need_by, "%s (line %d)", what, m->line);
  else snprintf(v->need_by, sizeof v->need_by, "%s", what);
}

/* ---------- names (pkg/parser's rules) ---------- */
static bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_alnum(char c) { return is_letter(c) || (c >= '0' && c <= '9'); }

/* vendor or class: a letter first, letters, digits, `_`, `-`, `.` between, a letter or digit last */
static const char *vendor_class_why(const char *s, size_t n) {
  if (!n) return "is empty";
  if (!is_letter(s[0])) return "must start with a letter";
  for (size_t i = 1; i + 1 < n; i++)
    if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.') return "may hold only letters, digits, `_`, `-` and `.`";
  if (n > 1 && !is_alnum(s[n - 1])) return "must end with a letter or digit";
  return NULL;
}

/* a device name: letters, digits, `_`, `-`, `.`, `:`; a letter or digit first and last */
static const char *device_name_why(const char *s) {
  size_t n = strlen(s);
  if (!n) return "is empty";
  if (!is_alnum(s[0])) return "must start with a letter or digit";
  for (size_t i = 1; i + 1 < n; i++)
    if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.' && s[i] != ':')
      return "may hold only letters, digits, `_`, `-`, `.` and `:`";
  if (n > 1 && !is_alnum(s[n - 1])) return "must end with a letter or digit";
  return NULL;
}

/* kind `vendor/class`: the spec's limits too (vendor a DNS name of at
 * most 253 bytes, class at most 63) */
static const char *kind_why(const char *kind, const char **part) {
  const char *slash = strchr(kind, '/');
  *part = "kind";
  if (!slash || slash == kind || !slash[1]) return "must be `vendor/class`, such as `vendor.com/device`";
  if (strchr(slash + 1, '/')) return "must have one `/` only (`vendor/class`)";
  size_t vl = (size_t)(slash - kind), cl = strlen(slash + 1);
  const char *why = vendor_class_why(kind, vl);
  if (why) return *part = "vendor", why;
  if (vl > 253) return *part = "vendor", "is longer than 253 bytes";
  why = vendor_class_why(slash + 1, cl);
  if (why) return *part = "class", why;
  if (cl > 63) return *part = "class", "is longer than 63 bytes";
  return NULL;
}

int cdi_name_check(const char *q, berth_error_t *err) {
  const char *eq = strchr(q, '=');
  if (!eq || eq == q || !eq[1])
    return berth_error(err, -EINVAL,
                       "device `%.120s` is not a CDI name: use vendor/class=name (nvidia.com/gpu=0) or a host device path (/dev/fuse)", q);
  cleanup_free char *kind = strndup(q, (size_t)(eq - q));
  const char *part, *why = kind_why(kind, &part);
  if (why) return berth_error(err, -EINVAL, "device `%.120s`: the %s %s", q, part, why);
  why = device_name_why(eq + 1);
  if (why) return berth_error(err, -EINVAL, "device `%.120s`: the device name `%.80s` %s", q, eq + 1, why);
  return 0;
}

/* `HOST[:CTR][:PERMS]` as Docker reads --device: a second part that is not
 * a path is the permissions */
struct hostdev {
  char *host, *ctr, *perms;
};

static bool perms_ok(const char *p) { return *p && strspn(p, "rwm") == strlen(p) && strlen(p) <= 3; }

static int hostdev_parse(const char *s, struct hostdev *h, berth_error_t *err) {
  memset(h, 0, sizeof *h);
  cleanup_free char *c = strdup(s);
  char *parts[3] = {0};
  int n = 0;
  for (char *save, *t = strtok_r(c, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
    if (n == 3) return berth_error(err, -EINVAL, "device `%.120s`: use HOST_PATH[:CONTAINER_PATH][:PERMISSIONS] (at most two `:`)", s);
    parts[n++] = t;
  }
  if (!n || parts[0][0] != '/') return berth_error(err, -EINVAL, "device `%.120s`: a host device path must be absolute (/dev/fuse)", s);
  const char *ctr = parts[0], *perms = "rwm";
  if (n >= 2 && parts[1][0] == '/') ctr = parts[1];
  else if (n == 2) perms = parts[1];
  if (n == 3) {
    if (parts[1][0] != '/') return berth_error(err, -EINVAL, "device `%.120s`: the container path `%s` must be absolute", s, parts[1]);
    perms = parts[2];
  }
  if (!perms_ok(perms))
    return berth_error(err, -EINVAL, "device `%.120s`: permissions `%s` must be one or more of r (read), w (write), m (mknod)", s, perms);
  h->host = strdup(parts[0]), h->ctr = strdup(ctr), h->perms = strdup(perms);
  return 0;
}

static void hostdev_free(struct hostdev *h) { free(h->host), free(h->ctr), free(h->perms); }

int cdi_request_check(const char *r, berth_error_t *err) {
  if (!r || !*r) return berth_error(err, -EINVAL, "a device request is empty");
  if (r[0] != '/') return cdi_name_check(r, err);
  struct hostdev h;
  if (hostdev_parse(r, &h, err) < 0) return -1;
  hostdev_free(&h);
  return 0;
}

/* ---------- the spec's fields ---------- */
/* annotations: the Kubernetes rules the reference applies (keys
 * `[prefix/]name`, at most 256 KiB in all) */
static int v_annotations(struct vctx *v, json_t *n, const char *field, json_t **out) {
  *out = NULL;
  if (is_null(v, n)) return 0;
  if (!want_object(v, n, field)) return -1;
  json_t *a = json_object();
  const char *k;
  json_t *x;
  size_t total = 0;
  json_object_foreach(n, k, x) {
    char f[256];
    FLD(f, "%s.%.80s", field, k);
    const char *slash = strrchr(k, '/'), *name = slash ? slash + 1 : k;
    const char *why = NULL;
    if (slash && (slash == k || (size_t)(slash - k) > 253)) why = "has an empty or too long prefix (a DNS name of at most 253 bytes)";
    else if (!*name || strlen(name) > 63) why = "needs a name of 1-63 bytes after the prefix";
    else if (!is_alnum(name[0]) || !is_alnum(name[strlen(name) - 1])) why = "must start and end with a letter or digit";
    for (const char *c = name; !why && *c; c++)
      if (!is_alnum(*c) && *c != '-' && *c != '_' && *c != '.') why = "may hold only letters, digits, `-`, `_` and `.`";
    const char *s;
    int r = why ? verr(v, x, f, "the key %s", why) : g_str(v, x, f, &s);
    if (r < 0) {
      json_decref(a);
      return -1;
    }
    total += strlen(k) + (s ? strlen(s) : 0);
    json_object_set_new(a, k, json_string(s ? s : ""));
  }
  if (total > 256 * 1024) {
    json_decref(a);
    return verr(v, n, field, "holds %zu bytes; at most 256 KiB", total);
  }
  *out = a;
  return json_object_size(a) ? 1 : 0;
}

static bool env_entry_ok(const char *s) {
  const char *eq = strchr(s, '=');
  return eq && eq != s;
}

static int v_env(struct vctx *v, json_t *n, const char *field, json_t **out) {
  int r = g_strlist(v, n, field, out);
  size_t i;
  json_t *x;
  if (r > 0) json_array_foreach(*out, i, x) if (!env_entry_ok(json_string_value(x))) {
      char f[200];
      FLD(f, "%s[%zu]", field, i);
      int e = verr(v, json_array_get(n, i), f, "`%.80s` is not NAME=VALUE", json_string_value(x));
      json_decref(*out);
      *out = NULL;
      return e;
    }
  return r;
}

static const char *const HOOK_NAMES[] = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop", NULL};

static int v_device_node(struct vctx *v, json_t *n, const char *field, json_t **out) {
  static const char *const keys[] = {"path", "hostPath", "type", "major", "minor", "fileMode", "permissions", "uid", "gid", NULL};
  if (!want_object(v, n, field) || only_keys(v, n, field, keys) < 0) return -1;
  char f[256];
  json_t *o = json_object();
  const char *path, *host, *type, *perms;
  int64_t major, minor, mode, uid, gid;
  int rp, rh, rt, rma, rmi, rmo, rpe, ru, rg;
  FLD(f, "%s.path", field);
  if ((rp = g_str(v, json_object_get(n, "path"), f, &path)) < 0) goto fail;
  if (!rp || !*path) {
    verr(v, n, f, "a device node needs its path in the container");
    goto fail;
  }
  FLD(f, "%s.hostPath", field);
  if ((rh = g_str(v, json_object_get(n, "hostPath"), f, &host)) < 0) goto fail;
  FLD(f, "%s.type", field);
  if ((rt = g_str(v, json_object_get(n, "type"), f, &type)) < 0) goto fail;
  if (rt && strcmp(type, "") && strcmp(type, "b") && strcmp(type, "c") && strcmp(type, "u") && strcmp(type, "p")) {
    verr(v, json_object_get(n, "type"), f, "`%.20s` is not a device type: b (block), c or u (character), p (FIFO)", type);
    goto fail;
  }
  FLD(f, "%s.major", field);
  if ((rma = g_int(v, json_object_get(n, "major"), f, 0, 0xfff, &major)) < 0) goto fail;
  FLD(f, "%s.minor", field);
  if ((rmi = g_int(v, json_object_get(n, "minor"), f, 0, 0xfffff, &minor)) < 0) goto fail;
  FLD(f, "%s.fileMode", field);
  if ((rmo = g_int(v, json_object_get(n, "fileMode"), f, 0, 0xffffffffLL, &mode)) < 0) goto fail;
  FLD(f, "%s.permissions", field);
  if ((rpe = g_str(v, json_object_get(n, "permissions"), f, &perms)) < 0) goto fail;
  if (rpe && *perms && strcmp(perms, "none") && (strspn(perms, "rwm") != strlen(perms))) {
    verr(v, json_object_get(n, "permissions"), f, "`%.20s`: use one or more of r, w, m, or `none`", perms);
    goto fail;
  }
  FLD(f, "%s.uid", field);
  if ((ru = g_int(v, json_object_get(n, "uid"), f, 0, 0xffffffffLL, &uid)) < 0) goto fail;
  FLD(f, "%s.gid", field);
  if ((rg = g_int(v, json_object_get(n, "gid"), f, 0, 0xffffffffLL, &gid)) < 0) goto fail;
  json_object_set_new(o, "path", json_string(path));
  if (rh && *host) {
    json_object_set_new(o, "hostPath", json_string(host));
    need(v, V050, "`hostPath` in deviceNodes", json_object_get(n, "hostPath"));
  }
  if (rt && *type) json_object_set_new(o, "type", json_string(type));
  if (rma) json_object_set_new(o, "major", json_integer(major));
  if (rmi) json_object_set_new(o, "minor", json_integer(minor));
  if (rmo) json_object_set_new(o, "fileMode", json_integer(mode));
  if (rpe && *perms) json_object_set_new(o, "permissions", json_string(perms));
  if (ru) json_object_set_new(o, "uid", json_integer(uid));
  if (rg) json_object_set_new(o, "gid", json_integer(gid));
  *out = o;
  return 0;
fail:
  json_decref(o);
  return -1;
}

static int v_mount(struct vctx *v, json_t *n, const char *field, json_t **out) {
  static const char *const keys[] = {"hostPath", "containerPath", "options", "type", NULL};
  if (!want_object(v, n, field) || only_keys(v, n, field, keys) < 0) return -1;
  char f[256];
  const char *host, *ctr, *type;
  json_t *opts = NULL;
  int r;
  FLD(f, "%s.hostPath", field);
  if ((r = g_str(v, json_object_get(n, "hostPath"), f, &host)) < 0) return -1;
  if (!r || !*host) return verr(v, n, f, "a mount needs its host path");
  FLD(f, "%s.containerPath", field);
  if ((r = g_str(v, json_object_get(n, "containerPath"), f, &ctr)) < 0) return -1;
  if (!r || !*ctr) return verr(v, n, f, "a mount needs its container path");
  FLD(f, "%s.type", field);
  if ((r = g_str(v, json_object_get(n, "type"), f, &type)) < 0) return -1;
  FLD(f, "%s.options", field);
  if (g_strlist(v, json_object_get(n, "options"), f, &opts) < 0) return -1;
  json_t *o = json_pack("{s:s, s:s}", "hostPath", host, "containerPath", ctr);
  if (r && *type) {
    json_object_set_new(o, "type", json_string(type));
    need(v, V040, "`type` in mounts", json_object_get(n, "type"));
  }
  if (opts) json_object_set_new(o, "options", opts);
  *out = o;
  return 0;
}

static int v_hook(struct vctx *v, json_t *n, const char *field, json_t **out) {
  static const char *const keys[] = {"hookName", "path", "args", "env", "timeout", NULL};
  if (!want_object(v, n, field) || only_keys(v, n, field, keys) < 0) return -1;
  char f[256];
  const char *name, *path;
  json_t *args = NULL, *env = NULL;
  int64_t timeout;
  int r;
  FLD(f, "%s.hookName", field);
  if ((r = g_str(v, json_object_get(n, "hookName"), f, &name)) < 0) return -1;
  bool known = false;
  for (int i = 0; r && HOOK_NAMES[i]; i++) known |= !strcmp(name, HOOK_NAMES[i]);
  if (!known)
    return verr(v, r ? json_object_get(n, "hookName") : n, f,
                "%s%.40s%s is not a hook: use prestart, createRuntime, createContainer, "
                "startContainer, poststart or poststop",
                r ? "`" : "", r ? name : "(missing)", r ? "`" : "");
  FLD(f, "%s.path", field);
  if ((r = g_str(v, json_object_get(n, "path"), f, &path)) < 0) return -1;
  if (!r || !*path) return verr(v, n, f, "hook `%s` needs a path", name);
  FLD(f, "%s.args", field);
  if (g_strlist(v, json_object_get(n, "args"), f, &args) < 0) return -1;
  FLD(f, "%s.env", field);
  if (v_env(v, json_object_get(n, "env"), f, &env) < 0) {
    json_decref(args);
    return -1;
  }
  FLD(f, "%s.timeout", field);
  /* the OCI runtime spec: a timeout, when set, is above 0 */
  if ((r = g_int(v, json_object_get(n, "timeout"), f, 1, 86400 * 365, &timeout)) < 0) {
    json_decref(args), json_decref(env);
    return -1;
  }
  json_t *o = json_pack("{s:s, s:s}", "hookName", name, "path", path);
  if (args) json_object_set_new(o, "args", args);
  if (env) json_object_set_new(o, "env", env);
  if (r) json_object_set_new(o, "timeout", json_integer(timeout));
  *out = o;
  return 0;
}

static int v_intel_rdt(struct vctx *v, json_t *n, const char *field, json_t **out) {
  static const char *const keys[] = {"closID", "l3CacheSchema", "memBwSchema", "schemata", "enableMonitoring", NULL};
  if (!want_object(v, n, field) || only_keys(v, n, field, keys) < 0) return -1;
  need(v, V070, "`intelRdt`", n);
  char f[256];
  json_t *o = json_object();
  const char *strs[] = {"closID", "l3CacheSchema", "memBwSchema"};
  for (int i = 0; i < 3; i++) {
    const char *s;
    FLD(f, "%s.%s", field, strs[i]);
    int r = g_str(v, json_object_get(n, strs[i]), f, &s);
    if (r < 0) goto fail;
    /* closID names a directory of resctrl: a file name, or "/" for the root CLOS */
    if (r && i == 0 && strcmp(s, "/") && (strlen(s) >= 4096 || !strcmp(s, ".") || !strcmp(s, "..") || strpbrk(s, "/\n"))) {
      verr(v, json_object_get(n, strs[i]), f, "`%.60s` is not a valid CLOS name", s);
      goto fail;
    }
    if (r && *s) json_object_set_new(o, strs[i], json_string(s));
  }
  json_t *sch;
  FLD(f, "%s.schemata", field);
  if (g_strlist(v, json_object_get(n, "schemata"), f, &sch) < 0) goto fail;
  if (sch) {
    json_object_set_new(o, "schemata", sch);
    need(v, V110, "`intelRdt.schemata`", json_object_get(n, "schemata"));
  }
  bool mon;
  FLD(f, "%s.enableMonitoring", field);
  if (g_bool(v, json_object_get(n, "enableMonitoring"), f, &mon) < 0) goto fail;
  if (mon) {
    json_object_set_new(o, "enableMonitoring", json_true());
    need(v, V110, "`intelRdt.enableMonitoring`", json_object_get(n, "enableMonitoring"));
  }
  *out = o;
  return 0;
fail:
  json_decref(o);
  return -1;
}

/* a net device: {hostInterfaceName, name}, each unique in its list */
static int v_net_device(struct vctx *v, json_t *x, const char *fi, json_t *list, json_t **out) {
  static const char *const nk[] = {"hostInterfaceName", "name", NULL};
  const char *h, *nm;
  char fh[280], fn[280];
  FLD(fh, "%s.hostInterfaceName", fi);
  FLD(fn, "%s.name", fi);
  if (!want_object(v, x, fi) || only_keys(v, x, fi, nk) < 0 || g_str(v, json_object_get(x, "hostInterfaceName"), fh, &h) < 0 ||
      g_str(v, json_object_get(x, "name"), fn, &nm) < 0)
    return -1;
  if (!h || !*h || !nm || !*nm) return verr(v, x, fi, "a net device needs hostInterfaceName and name");
  size_t j;
  json_t *y;
  json_array_foreach(list, j, y) if (!strcmp(jstr(y, "hostInterfaceName"), h) || !strcmp(jstr(y, "name"), nm)) return verr(
      v, x, fi, "host interface `%s` or name `%s` is listed twice", h, nm);
  need(v, V110, "`netDevices`", x);
  *out = json_pack("{s:s, s:s}", "hostInterfaceName", h, "name", nm);
  return 0;
}

static int v_gids(struct vctx *v, json_t *gl, const char *f, json_t *o) {
  if (is_null(v, gl)) return 0;
  if (!json_is_array(gl)) return verr(v, gl, f, "expected a list of group ids, got %s", shown(gl));
  json_t *a = json_array();
  json_object_set_new(o, "additionalGids", a);
  size_t i;
  json_t *x;
  json_array_foreach(gl, i, x) {
    char fi[280];
    FLD(fi, "%s[%zu]", f, i);
    int64_t g;
    int r = g_int(v, x, fi, 0, 0xffffffffLL, &g);
    if (r < 0) return -1;
    if (!r) return verr(v, x, fi, "expected a group id, got null");
    json_array_append_new(a, json_integer(g));
  }
  if (json_array_size(a)) need(v, V070, "`additionalGids`", gl);
  return 0;
}

/* the fields of containerEdits into o */
static int v_edits_into(struct vctx *v, json_t *n, const char *field, json_t *o) {
  static const char *const keys[] = {"env", "deviceNodes", "netDevices", "hooks", "mounts", "intelRdt", "additionalGids", NULL};
  char f[256];
  if (!want_object(v, n, field) || only_keys(v, n, field, keys) < 0) return -1;
  json_t *env;
  FLD(f, "%s.env", field);
  if (v_env(v, json_object_get(n, "env"), f, &env) < 0) return -1;
  if (env) json_object_set_new(o, "env", env);
  static const char *const lists[] = {"deviceNodes", "mounts", "hooks", "netDevices"};
  for (int li = 0; li < 4; li++) {
    json_t *l = json_object_get(n, lists[li]);
    FLD(f, "%s.%s", field, lists[li]);
    if (is_null(v, l)) continue;
    if (!json_is_array(l)) return verr(v, l, f, "expected a list, got %s", shown(l));
    json_t *a = json_array();
    json_object_set_new(o, lists[li], a);
    size_t i;
    json_t *x;
    json_array_foreach(l, i, x) {
      char fi[256];
      FLD(fi, "%s[%zu]", f, i);
      json_t *item = NULL;
      int r = li == 0   ? v_device_node(v, x, fi, &item)
              : li == 1 ? v_mount(v, x, fi, &item)
              : li == 2 ? v_hook(v, x, fi, &item)
                        : v_net_device(v, x, fi, a, &item);
      if (r < 0) return -1;
      json_array_append_new(a, item);
    }
  }
  json_t *rdt = json_object_get(n, "intelRdt");
  if (!is_null(v, rdt)) {
    json_t *ro;
    FLD(f, "%s.intelRdt", field);
    if (v_intel_rdt(v, rdt, f, &ro) < 0) return -1;
    json_object_set_new(o, "intelRdt", ro);
  }
  FLD(f, "%s.additionalGids", field);
  return v_gids(v, json_object_get(n, "additionalGids"), f, o);
}

/* containerEdits; device says whether they must not be empty */
static int v_edits(struct vctx *v, json_t *n, const char *field, bool device, json_t **out) {
  *out = NULL;
  json_t *o = json_object();
  if (!is_null(v, n) && v_edits_into(v, n, field, o) < 0) {
    json_decref(o);
    return -1;
  }
  if (device && !json_object_size(o)) {
    json_decref(o);
    return verr(v, n, field, "a device needs at least one edit (env, deviceNodes, mounts, hooks, additionalGids, intelRdt, netDevices)");
  }
  *out = o;
  return 0;
}

static int version_index(const char *s) {
  if (*s == 'v') s++;
  for (int i = 0; i < N_VERSIONS; i++)
    if (!strcmp(s, VERSIONS[i])) return i;
  return -1;
}

static int v_spec(struct vctx *v, json_t *root, json_t **out) {
  static const char *const keys[] = {"cdiVersion", "kind", "annotations", "devices", "containerEdits", NULL};
  if (!json_is_object(root)) return verr(v, root, "", "a spec is a mapping with cdiVersion, kind and devices, got %s", shown(root));
  if (only_keys(v, root, "", keys) < 0) return -1;
  const char *ver, *kind;
  int r = g_str(v, json_object_get(root, "cdiVersion"), "cdiVersion", &ver);
  if (r < 0) return -1;
  if (!r) return verr(v, root, "cdiVersion", "missing: every spec names the CDI version it follows (1.1.0 is the newest)");
  int vi = version_index(ver);
  if (vi < 0)
    return verr(v, json_object_get(root, "cdiVersion"), "cdiVersion", "`%.40s` is not a published CDI version (%s to %s)", ver, VERSIONS[0],
                VERSIONS[N_VERSIONS - 1]);
  r = g_str(v, json_object_get(root, "kind"), "kind", &kind);
  if (r < 0) return -1;
  if (!r) return verr(v, root, "kind", "missing: the spec's `vendor/class`, such as `vendor.com/device`");
  const char *part, *why = kind_why(kind, &part);
  if (why) return verr(v, json_object_get(root, "kind"), "kind", "`%.80s`: the %s %s", kind, part, why);
  if (strchr(strchr(kind, '/') + 1, '.')) need(v, V060, "a `.` in the kind's class", json_object_get(root, "kind"));
  json_t *o = json_pack("{s:s, s:s, s:s#, s:s}", "path", v->file, "version", ver[0] == 'v' ? ver + 1 : ver, "vendor", kind,
                        (int)(strchr(kind, '/') - kind), "class", strchr(kind, '/') + 1);
  json_object_set_new(o, "kind", json_string(kind));
  json_t *ann, *edits, *devs = json_object(), *dl;
  size_t i;
  json_t *d;
  json_object_set_new(o, "devices", devs);
  if ((r = v_annotations(v, json_object_get(root, "annotations"), "annotations", &ann)) < 0) goto fail;
  if (r) need(v, V060, "`annotations`", json_object_get(root, "annotations"));
  if (ann) json_object_set_new(o, "annotations", ann);
  if (v_edits(v, json_object_get(root, "containerEdits"), "containerEdits", false, &edits) < 0) goto fail;
  json_object_set_new(o, "edits", edits);
  dl = json_object_get(root, "devices");
  if (is_null(v, dl) || !json_is_array(dl) || !json_array_size(dl)) {
    verr(v, is_null(v, dl) ? root : dl, "devices", "a spec lists at least one device");
    goto fail;
  }
  json_array_foreach(dl, i, d) {
    static const char *const dkeys[] = {"name", "annotations", "containerEdits", NULL};
    char f[128], ff[192];
    FLD(f, "devices[%zu]", i);
    if (!want_object(v, d, f) || only_keys(v, d, f, dkeys) < 0) goto fail;
    const char *name;
    FLD(ff, "%s.name", f);
    if ((r = g_str(v, json_object_get(d, "name"), ff, &name)) < 0) goto fail;
    if (!r) {
      verr(v, d, ff, "every device needs a name");
      goto fail;
    }
    if ((why = device_name_why(name))) {
      verr(v, json_object_get(d, "name"), ff, "`%.80s` %s", name, why);
      goto fail;
    }
    if (name[0] >= '0' && name[0] <= '9') need(v, V050, "a device name starting with a digit", json_object_get(d, "name"));
    if (json_object_get(devs, name)) {
      verr(v, json_object_get(d, "name"), ff, "device `%.80s` is listed twice", name);
      goto fail;
    }
    json_t *dann, *de;
    FLD(ff, "%s.annotations", f);
    if ((r = v_annotations(v, json_object_get(d, "annotations"), ff, &dann)) < 0) goto fail;
    if (r) need(v, V060, "device `annotations`", json_object_get(d, "annotations"));
    FLD(ff, "%s.containerEdits", f);
    if (v_edits(v, json_object_get(d, "containerEdits"), ff, true, &de) < 0) {
      json_decref(dann);
      goto fail;
    }
    json_t *dev = json_pack("{s:o}", "edits", de);
    if (dann) json_object_set_new(dev, "annotations", dann);
    json_object_set_new(devs, name, dev);
  }
  if (vi < v->need) {
    verr(v, json_object_get(root, "cdiVersion"), "cdiVersion", "%s needs CDI %s or later, but the spec says %s: set cdiVersion to %s",
         v->need_by, VERSIONS[v->need], ver, VERSIONS[v->need]);
    goto fail;
  }
  *out = o;
  return 0;
fail:
  json_decref(o);
  return -1;
}

int cdi_spec_parse(const char *path, const char *text, size_t len, json_t **out, berth_error_t *err) {
  *out = NULL;
  struct vctx v = {.file = path, .yaml = !str_has_suffix(path, ".json"), .need = V030, .err = err};
  json_t *root = NULL;
  if (len > MAX_SPEC_BYTES) return berth_error(err, -EFBIG, "CDI spec `%s`: larger than %d MiB", path, MAX_SPEC_BYTES >> 20);
  if (v.yaml && lazylib_require_yaml(err) < 0) return berth_error_wrap(err, "CDI spec `%s`", path);
  if (v.yaml) root = y_load(&v, text, len);
  else {
    json_error_t je;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) berth_error(err, -EINVAL, "CDI spec `%s`, line %d: not valid JSON: %s", path, je.line, je.text);
  }
  int r = root ? v_spec(&v, root, out) : -1;
  json_decref(root);
  free(v.marks);
  return r;
}

/* A spec names hooks that root runs: as root its file (and directory)
 * must be root's and writable by no one else; for a user, the user's or
 * root's. */
static const char *trust_why(const struct stat *st) {
  if (st->st_uid != 0 && st->st_uid != geteuid()) return geteuid() == 0 ? "belongs to another user than root" : "belongs to another user";
  if (st->st_mode & (S_IWGRP | S_IWOTH)) return "is writable by group or others";
  return NULL;
}

int cdi_spec_load(const char *path, json_t **out, berth_error_t *err) {
  *out = NULL;
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return berth_error(err, errno, "CDI spec `%s`", path);
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) return berth_error(err, -EINVAL, "CDI spec `%s`: not a regular file", path);
  const char *why = trust_why(&st);
  if (why) return berth_error(err, -EPERM, "CDI spec `%s` %s: its hooks would run as you; `chmod go-w` it (and own it as root)", path, why);
  if (st.st_size > MAX_SPEC_BYTES) return berth_error(err, -EFBIG, "CDI spec `%s`: larger than %d MiB", path, MAX_SPEC_BYTES >> 20);
  cleanup_free char *txt = NULL;
  size_t len = 0;
  if (read_file_at(fd, "", MAX_SPEC_BYTES, &txt, &len, err) < 0) return berth_error_wrap(err, "CDI spec `%s`", path);
  return cdi_spec_parse(path, txt, len, out, err);
}

/* ---------- the spec directories ---------- */
json_t *cdi_spec_dirs(void) {
  struct berth_config *cfg = config_get(NULL);
  json_t *c = cfg ? config_array(cfg, "cdi_spec_dirs") : NULL;
  if (!c) return json_pack("[s, s]", "/etc/cdi", "/var/run/cdi");
  json_t *a = json_array();
  size_t i;
  json_t *x;
  json_array_foreach(c, i, x) if (json_is_string(x)) json_array_append(a, x);
  return a;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void cdi_registry_free(struct cdi_registry *r) {
  json_decref(r->dirs), json_decref(r->specs), json_decref(r->devices), json_decref(r->errors);
  memset(r, 0, sizeof *r);
}

int cdi_registry_load(json_t *dirs, struct cdi_registry *r, berth_error_t *err) {
  (void)err;
  memset(r, 0, sizeof *r);
  r->dirs = dirs ? json_incref(dirs) : cdi_spec_dirs();
  r->specs = json_array(), r->devices = json_object(), r->errors = json_array();
  json_t *conflicts = json_object();
  size_t prio;
  json_t *dv;
  json_array_foreach(r->dirs, prio, dv) {
    const char *dir = json_string_value(dv);
    if (!dir || dir[0] != '/') {
      json_array_append_new(r->errors, json_sprintf("config `cdi_spec_dirs`: `%s` is not an absolute path", dir ? dir : "?"));
      continue;
    }
    DIR *d = opendir(dir);
    if (!d) {
      if (errno != ENOENT) json_array_append_new(r->errors, json_sprintf("%s: %s", dir, strerror(errno)));
      continue;
    }
    struct stat dst;
    const char *why = fstat(dirfd(d), &dst) == 0 ? trust_why(&dst) : "cannot be examined";
    if (why) {
      json_array_append_new(r->errors, json_sprintf("%s %s: its specs are not read (`chmod go-w %s`)", dir, why, dir));
      closedir(d);
      continue;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
      if (!str_has_suffix(de->d_name, ".json") && !str_has_suffix(de->d_name, ".yaml")) continue;
      if (n == cap) {
        cap = cap ? cap * 2 : 16;
        char **nn = realloc(names, cap * sizeof *nn);
        if (!nn) break;
        names = nn;
      }
      names[n++] = strdup(de->d_name);
    }
    closedir(d);
    /* a fixed order: a conflict reads the same on every run */
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
      cleanup_free char *p = xasprintf("%s/%s", dir, names[i]);
      free(names[i]);
      struct stat st;
      if (stat(p, &st) < 0 || S_ISDIR(st.st_mode)) continue;
      json_t *spec = NULL;
      berth_error_t e = NULL;
      if (cdi_spec_load(p, &spec, &e) < 0) {
        json_array_append_new(r->errors, json_string(e->msg));
        berth_error_free(e);
        continue;
      }
      json_object_set_new(spec, "priority", json_integer((json_int_t)prio));
      size_t idx = json_array_size(r->specs);
      json_array_append_new(r->specs, spec);
      const char *k;
      json_t *x;
      json_object_foreach(json_object_get(spec, "devices"), k, x) {
        cleanup_free char *q = xasprintf("%s=%s", jstr(spec, "kind"), k);
        json_t *old = json_object_get(r->devices, q);
        if (old) {
          json_t *os = json_array_get(r->specs, (size_t)json_integer_value(old));
          if (json_integer_value(json_object_get(os, "priority")) == (json_int_t)prio) {
            /* the reference's rule: same priority, neither wins */
            json_array_append_new(r->errors, json_sprintf("device %s is defined by both %s and %s (one directory): neither is used; "
                                                          "remove one of them",
                                                          q, jstr(os, "path"), p));
            json_object_set_new(conflicts, q, json_true());
          }
        }
        json_object_set_new(r->devices, q, json_integer((json_int_t)idx)); /* a later directory wins */
      }
    }
    free(names);
  }
  const char *q;
  json_t *x;
  json_object_foreach(conflicts, q, x) json_object_del(r->devices, q);
  json_decref(conflicts);
  return 0;
}

/* ---------- resolving requests into one set of edits ---------- */
struct merge {
  json_t *env; /* ["K=V"] */
  json_t *env_from; /* {K: source} */
  json_t *nodes, *mounts, *hooks, *gids;
  json_t *notes;
  unsigned flags;
  berth_error_t *err;
};
enum { M_ROOTLESS = 1, M_GROUPS_KEPT = 2 };

/* the container's /dev entries berth makes itself */
static const char *const DEV_OWN[] = {"null",   "zero",   "full", "random",  "urandom", "tty", "ptmx",   "fd", "stdin",
                                      "stdout", "stderr", "core", "console", "pts",     "shm", "mqueue", NULL};

static bool clean_abs(const char *p) {
  if (!p || p[0] != '/' || strlen(p) >= 4096) return false;
  for (const char *c = p; *c; c++) {
    if (*c != '/') continue;
    if (c[1] == '/' || (c[1] == '.' && (c[2] == '/' || !c[2])) || (c[1] == '.' && c[2] == '.' && (c[3] == '/' || !c[3]))) return false;
  }
  return strcmp(p, "/") == 0 || p[strlen(p) - 1] != '/';
}

static const char *node_path_why(const char *p) {
  if (!clean_abs(p)) return "must be an absolute path without `.`, `..` or `//`";
  if (!str_has_prefix(p, "/dev/") || !p[5]) return "must lie under /dev: the rest of a container's root is mounted nodev";
  size_t first = strcspn(p + 5, "/");
  for (int i = 0; DEV_OWN[i]; i++)
    if (strlen(DEV_OWN[i]) == first && !strncmp(p + 5, DEV_OWN[i], first)) return "is one of the /dev entries berth makes itself";
  return NULL;
}

static bool in_groups(gid_t g) {
  if (getegid() == g) return true;
  gid_t gs[256];
  int n = getgroups(256, gs);
  for (int i = 0; i < n; i++)
    if (gs[i] == g) return true;
  return false;
}

static const char *group_name(gid_t g, char *buf, size_t len) {
  struct group gr, *res = NULL;
  char tmp[1024];
  if (getgrgid_r(g, &gr, tmp, sizeof tmp, &res) == 0 && res) snprintf(buf, len, "%s", gr.gr_name);
  else snprintf(buf, len, "%u", (unsigned)g);
  return buf;
}

/* rootless: the container's processes reach a bound node with the user's
 * own ids (container root) or subordinate ones, and without the user's
 * supplementary groups (berth sets the container user's own); say so
 * before anything is made, and how to fix it */
static int rootless_access(struct merge *m, const char *from, const char *host, const struct stat *st, const char *access) {
  mode_t need = 0;
  if (strchr(access, 'r')) need |= 4;
  if (strchr(access, 'w')) need |= 2;
  if (!need || (st->st_mode & need) == need) return 0; /* open to everyone */
  if (st->st_uid == getuid() && ((st->st_mode >> 6) & need) == need) {
    cleanup_free char *n = xasprintf("%s: only the container's root (you) can open %s (yours, mode %o)", from, host, st->st_mode & 0777);
    json_array_append_new(m->notes, json_string(n));
    return 0;
  }
  char gname[64];
  group_name(st->st_gid, gname, sizeof gname);
  bool by_group = ((st->st_mode >> 3) & need) == need;
  if (by_group && in_groups(st->st_gid) && (m->flags & M_GROUPS_KEPT)) return 0;
  if (by_group && in_groups(st->st_gid))
    return berth_error(m->err, -EACCES,
                       "%s: %s (group %s, mode %o) is open to you only through group `%s`, and a rootless container's "
                       "processes do not keep your supplementary groups (they take the container user's): make the node open to "
                       "everyone (a udev rule with MODE=\"0666\"), or run berth as root",
                       from, host, gname, st->st_mode & 0777, gname);
  if (by_group && (m->flags & M_GROUPS_KEPT))
    return berth_error(m->err, -EACCES,
                       "%s: %s (group %s, mode %o) is open to group `%s`, which your user is not in: `sudo usermod -aG "
                       "%s $USER` and log in again, or run berth as root",
                       from, host, gname, st->st_mode & 0777, gname, gname);
  return berth_error(m->err, -EACCES,
                     "%s: %s (owner uid %u, group %s, mode %o) is not open to your user, and a rootless container "
                     "gets only the nodes its user may open (without your supplementary groups): have it made open to everyone "
                     "(a udev rule with MODE=\"0666\"), or run berth as root",
                     from, host, (unsigned)st->st_uid, gname, st->st_mode & 0777);
}

/* fill a node from the host (the reference's fillMissingInfo), check its
 * path, and add it unless the same node is there already */
static int merge_node(struct merge *m, json_t *n, const char *from) {
  const char *path = jstr(n, "path");
  const char *why = node_path_why(path);
  if (why) return berth_error(m->err, -EINVAL, "%s: device node path `%.200s` %s", from, path, why);
  const char *host = jstr(n, "hostPath") ? jstr(n, "hostPath") : path;
  if (!clean_abs(host))
    return berth_error(m->err, -EINVAL, "%s: host device path `%.200s` must be absolute, without `.` or `..`", from, host);
  char type = jstr(n, "type") ? jstr(n, "type")[0] : 0;
  if (type == 'u') type = 'c';
  int64_t major = json_integer_value(json_object_get(n, "major")), minor = json_integer_value(json_object_get(n, "minor"));
  bool minimal = type && (major || type == 'p');
  struct stat st;
  int lr = lstat(host, &st), se = errno;
  bool present = lr == 0 && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode));
  if (!present && !minimal) {
    if (lr == 0) return berth_error(m->err, -EINVAL, "%s: `%s` on the host is not a device node", from, host);
    return berth_error(m->err, se == ENOENT ? -ENOENT : se,
                       "%s: host device `%s`: %s (is its driver loaded? `berth preflight` "
                       "shows the GPUs this host has)",
                       from, host, strerror(se));
  }
  char htype = present ? (S_ISBLK(st.st_mode) ? 'b' : S_ISFIFO(st.st_mode) ? 'p' : 'c') : 0;
  if (!minimal) {
    if (type && type != htype)
      return berth_error(m->err, -EINVAL, "%s: `%s` is type %c in the spec but %c on the host", from, host, type, htype);
    type = htype;
    if (!major && type != 'p') major = major(st.st_rdev), minor = minor(st.st_rdev);
  }
  int64_t mode = json_object_get(n, "fileMode") ? json_integer_value(json_object_get(n, "fileMode")) & 07777
                 : present                      ? (int64_t)(st.st_mode & 07777)
                                                : 0666;
  /* permissions for the devices cgroup: m (mknod) never goes to a
   * workload (none holds CAP_MKNOD), so r and w are what counts */
  const char *perm = jstr(n, "permissions") ? jstr(n, "permissions") : "rwm";
  char access[3] = "";
  if (strcmp(perm, "none")) snprintf(access, sizeof access, "%s%s", strchr(perm, 'r') ? "r" : "", strchr(perm, 'w') ? "w" : "");
  bool matches = present && htype == type && (type == 'p' || st.st_rdev == makedev((unsigned)major, (unsigned)minor));
  if ((m->flags & M_ROOTLESS) && type != 'p') {
    if (!matches)
      return berth_error(m->err, -ENOENT, "%s: a rootless container gets a device by binding the host's node, and `%s` %s", from, host,
                         present ? "has other device numbers than the spec says" : "does not exist on this host");
    if (rootless_access(m, from, host, &st, access) < 0) return -1;
  }
  json_t *o = json_pack("{s:s, s:s#, s:I, s:I, s:I, s:s, s:s}", "path", path, "type", &type, 1, "major", (json_int_t)major, "minor",
                        (json_int_t)minor, "fileMode", (json_int_t)mode, "access", access, "_from", from);
  if (matches) json_object_set_new(o, "hostPath", json_string(host));
  if (json_object_get(n, "uid")) json_object_set(o, "uid", json_object_get(n, "uid"));
  if (json_object_get(n, "gid")) json_object_set(o, "gid", json_object_get(n, "gid"));
  size_t i;
  json_t *x;
  json_array_foreach(m->nodes, i, x) {
    if (strcmp(jstr(x, "path"), path)) continue;
    const char *keys[] = {"type", "major", "minor", "fileMode", "access", "uid", "gid", "hostPath"};
    bool same = true;
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
      json_t *a = json_object_get(x, keys[k]), *b = json_object_get(o, keys[k]);
      same &= (!a && !b) || (a && b && json_equal(a, b));
    }
    int r = same ? 0
                 : berth_error(m->err, -EINVAL,
                               "conflicting edits: device node %s is %c %lld:%lld from %s but %c %lld:%lld (or another "
                               "mode or owner) from %s; ask for one of them",
                               path, jstr(x, "type")[0], (long long)json_integer_value(json_object_get(x, "major")),
                               (long long)json_integer_value(json_object_get(x, "minor")), jstr(x, "_from"), type, (long long)major,
                               (long long)minor, from);
    json_decref(o);
    return r;
  }
  json_array_append_new(m->nodes, o);
  return 0;
}

/* a tmpfs mount's options: flags, and the tmpfs parameters berth passes on */
static int tmpfs_options(struct merge *m, json_t *n, const char *from, const char *ctr, json_t *opts) {
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(n, "options"), i, x) {
    const char *o = json_string_value(x);
    static const char *const keys[] = {"mode=", "size=", "nr_inodes=", "nr_blocks=", "uid=", "gid=", NULL};
    static const char *const flags[] = {"ro", "rw", "nosuid", "noexec", NULL};
    static const char *const ignored[] = {"nodev",   "dev",        "suid",     "exec",    "strictatime", "relatime",
                                          "noatime", "nodiratime", "rprivate", "private", "tmpcopyup",   NULL};
    bool ok = false;
    for (int k = 0; keys[k] && !ok; k++) ok = str_has_prefix(o, keys[k]) && o[strlen(keys[k])] && !strchr(o, ',');
    for (int k = 0; flags[k] && !ok; k++) ok = !strcmp(o, flags[k]);
    if (ok) {
      json_array_append_new(opts, json_string(o));
      continue;
    }
    for (int k = 0; ignored[k] && !ok; k++) ok = !strcmp(o, ignored[k]);
    if (!ok)
      return berth_error(m->err, -ENOTSUP,
                         "%s: tmpfs option `%.40s` at %s is not one berth applies (ro, nosuid, noexec, mode=, size=, "
                         "nr_inodes=, nr_blocks=, uid=, gid=)",
                         from, o, ctr);
  }
  return 0;
}

static int merge_mount(struct merge *m, json_t *n, const char *from) {
  const char *host = jstr(n, "hostPath"), *ctr = jstr(n, "containerPath"), *type = jstr(n, "type");
  bool tmpfs = type && !strcmp(type, "tmpfs");
  if (!clean_abs(ctr) || spec_mount_target_forbidden(ctr))
    return berth_error(m->err, -EINVAL,
                       "%s: mount target `%.200s` must be an absolute path without `.` or `..`, and not `/`, /dev, "
                       "or /proc, /sys or below them",
                       from, ctr);
  if (type && strcmp(type, "bind") && strcmp(type, "none") && !tmpfs)
    return berth_error(m->err, -ENOTSUP, "%s: mount type `%.40s` at %s: berth applies bind and tmpfs mounts only", from, type, ctr);
  json_t *opts = json_array(), *o = NULL;
  if (tmpfs) {
    if (tmpfs_options(m, n, from, ctr, opts) < 0) {
      json_decref(opts);
      return -1;
    }
    o = json_pack("{s:s, s:s, s:s, s:o, s:s}", "type", "tmpfs", "hostPath", "tmpfs", "containerPath", ctr, "options", opts, "_from", from);
  } else {
    if (!clean_abs(host)) {
      json_decref(opts);
      return berth_error(m->err, -EINVAL, "%s: mount source `%.200s` must be an absolute path without `.` or `..`", from, host);
    }
    struct stat st;
    if (stat(host, &st) < 0) {
      int e = errno;
      json_decref(opts);
      return berth_error(m->err, e == ENOENT ? -ENOENT : e, "%s: mount source `%s`: %s", from, host, strerror(e));
    }
    bool rec = true, ro = false, nosuid = false, noexec = false;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(n, "options"), i, x) {
      const char *op = json_string_value(x);
      static const char *const ignored[] = {"nodev",    "dev",        "suid",    "exec",   "rprivate",    "private",
                                            "rslave",   "slave",      "rshared", "shared", "runbindable", "unbindable",
                                            "relatime", "norelatime", "noatime", "atime",  "strictatime", "nodiratime",
                                            "diratime", "z",          "Z",       NULL};
      bool ign = false;
      for (int k = 0; ignored[k]; k++) ign |= !strcmp(op, ignored[k]);
      if (ign) continue; /* nodev is always set; propagation is berth's (private) */
      if (!strcmp(op, "bind")) rec = false;
      else if (!strcmp(op, "rbind")) rec = true;
      else if (!strcmp(op, "ro")) ro = true;
      else if (!strcmp(op, "rw")) ro = false;
      else if (!strcmp(op, "nosuid")) nosuid = true;
      else if (!strcmp(op, "noexec")) noexec = true;
      else {
        json_decref(opts);
        return berth_error(m->err, -ENOTSUP,
                           "%s: mount option `%.40s` at %s is not one berth applies (bind, rbind, ro, rw, nosuid, "
                           "noexec; nodev is always set)",
                           from, op, ctr);
      }
    }
    json_array_append_new(opts, json_string(rec ? "rbind" : "bind"));
    json_array_append_new(opts, json_string(ro ? "ro" : "rw"));
    if (nosuid) json_array_append_new(opts, json_string("nosuid"));
    if (noexec) json_array_append_new(opts, json_string("noexec"));
    o = json_pack("{s:s, s:s, s:s, s:o, s:s}", "type", "bind", "hostPath", host, "containerPath", ctr, "options", opts, "_from", from);
  }
  size_t i;
  json_t *x;
  json_array_foreach(m->mounts, i, x) {
    if (!spec_same_path(jstr(x, "containerPath"), ctr)) continue;
    bool same = !strcmp(jstr(x, "hostPath"), jstr(o, "hostPath")) && !strcmp(jstr(x, "type"), jstr(o, "type")) &&
                json_equal(json_object_get(x, "options"), json_object_get(o, "options"));
    int r = same ? 0
                 : berth_error(m->err, -EINVAL, "conflicting edits: %s is mounted from %s by %s but from %s by %s", ctr,
                               jstr(x, "hostPath"), jstr(x, "_from"), jstr(o, "hostPath"), from);
    json_decref(o);
    return r;
  }
  json_array_append_new(m->mounts, o);
  return 0;
}

static int merge_hook(struct merge *m, json_t *n, const char *from) {
  const char *path = jstr(n, "path"), *kind = jstr(n, "hookName");
  if (!clean_abs(path)) return berth_error(m->err, -EINVAL, "%s: %s hook `%.200s` must be an absolute path", from, kind, path);
  /* every hook but startContainer runs a host program: it must be there now */
  struct stat st;
  if (strcmp(kind, "startContainer") && (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || access(path, X_OK) < 0))
    return berth_error(m->err, -ENOENT,
                       "%s: %s hook `%s` is not an executable file on this host (install the vendor's container "
                       "toolkit, or generate the spec again)",
                       from, kind, path);
  json_t *o = json_deep_copy(n);
  json_object_set_new(o, "_from", json_string(from));
  size_t i;
  json_t *x;
  json_array_foreach(m->hooks, i, x) {
    json_t *a = json_deep_copy(x);
    json_object_del(a, "_from");
    bool same = json_equal(a, n);
    json_decref(a);
    if (same) {
      json_decref(o);
      return 0;
    }
  }
  json_array_append_new(m->hooks, o);
  return 0;
}

static int merge_edits(struct merge *m, json_t *e, const char *from) {
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(e, "env"), i, x) {
    const char *kv = json_string_value(x), *eq = strchr(kv, '=');
    cleanup_free char *k = strndup(kv, (size_t)(eq - kv));
    const char *was = env_get(m->env, k);
    if (was && strcmp(was, eq + 1))
      return berth_error(m->err, -EINVAL, "conflicting edits: %s=%s from %s but %s from %s", k, was, jstr(m->env_from, k), kv, from);
    if (!was) {
      json_array_append(m->env, x);
      json_object_set_new(m->env_from, k, json_string(from));
    }
  }
  json_array_foreach(json_object_get(e, "deviceNodes"), i, x) if (merge_node(m, x, from) < 0) return -1;
  json_array_foreach(json_object_get(e, "mounts"), i, x) if (merge_mount(m, x, from) < 0) return -1;
  json_array_foreach(json_object_get(e, "hooks"), i, x) if (merge_hook(m, x, from) < 0) return -1;
  json_array_foreach(json_object_get(e, "additionalGids"), i, x) {
    if (!json_integer_value(x)) continue; /* the spec: 0 is ignored */
    bool have = false;
    size_t j;
    json_t *y;
    json_array_foreach(m->gids, j, y) have |= json_equal(x, y);
    if (have) continue;
    if (m->flags & M_ROOTLESS) {
      cleanup_free char *n = xasprintf("%s: additional group %lld not given: a rootless container's group ids are not the host's", from,
                                       (long long)json_integer_value(x));
      json_array_append_new(m->notes, json_string(n));
      continue;
    }
    json_array_append(m->gids, x);
  }
  if (json_object_get(e, "intelRdt"))
    return berth_error(m->err, -ENOTSUP, "%s asks for intelRdt (resctrl) settings, which berth does not apply", from);
  if (json_array_size(json_object_get(e, "netDevices")))
    return berth_error(m->err, -ENOTSUP, "%s asks for network devices to be moved into the container, which berth does not do", from);
  return 0;
}

/* why a name is not among the devices: what the kind offers, or where was looked */
static int not_found(struct cdi_registry *r, const char *q, berth_error_t *err) {
  const char *eq = strchr(q, '=');
  cleanup_free char *kind = strndup(q, (size_t)(eq - q));
  struct buf names = {0};
  const char *k;
  json_t *x;
  json_object_foreach(r->devices, k, x) if (str_has_prefix(k, kind) && k[strlen(kind)] == '=') {
    if (names.len) buf_append(&names, ", ", 2);
    buf_append(&names, k + strlen(kind) + 1, strlen(k) - strlen(kind) - 1);
  }
  buf_append(&names, "", 1);
  struct buf db = {0};
  size_t di;
  json_t *dv;
  json_array_foreach(r->dirs, di, dv) {
    if (db.len) buf_append(&db, ", ", 2);
    buf_append(&db, json_string_value(dv) ?: "?", strlen(json_string_value(dv) ?: "?"));
  }
  buf_append(&db, "", 1);
  cleanup_free char *dirs = db.data;
  cleanup_free char *bad = NULL;
  if (json_array_size(r->errors)) {
    struct buf b = {0};
    size_t i;
    json_array_foreach(r->errors, i, x) {
      buf_append(&b, "; ", 2);
      buf_append(&b, json_string_value(x), strlen(json_string_value(x)));
    }
    buf_append(&b, "", 1);
    bad = b.data;
  }
  int ret = *names.data
                ? berth_error(err, -ENOENT, "CDI device `%s` not found: kind %s has %s%s", q, kind, names.data, bad ? bad : "")
                : berth_error(err, -ENOENT, "CDI device `%s` not found: no spec in %s names kind %s%s", q, dirs, kind, bad ? bad : "");
  buf_free(&names);
  return ret;
}

int cdi_resolve(struct cdi_registry *r, json_t *requests, bool rootless, json_t **edits, json_t *notes, berth_error_t *err) {
  *edits = NULL;
  unsigned flags = rootless ? M_ROOTLESS : 0;
  /* rootless without subordinate ids, the workloads keep the user's groups */
  if (rootless) {
    cleanup_free char *sub = NULL;
    char name[64];
    snprintf(name, sizeof name, "%u:", (unsigned)getuid());
    bool has = false;
    if (read_file("/etc/subgid", 1 << 20, &sub, NULL, NULL) == 0) {
      const char *u = getenv("USER");
      for (char *l = sub; l && *l && !has; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        has = !strncmp(l, name, strlen(name)) || (u && *u && !strncmp(l, u, strlen(u)) && l[strlen(u)] == ':');
    }
    if (!has) flags |= M_GROUPS_KEPT;
  }
  struct merge m = {.env = json_array(),
                    .env_from = json_object(),
                    .nodes = json_array(),
                    .mounts = json_array(),
                    .hooks = json_array(),
                    .gids = json_array(),
                    .notes = notes ? json_incref(notes) : json_array(),
                    .flags = flags,
                    .err = err};
  json_t *done = json_object(), *specs_done = json_object();
  int ret = -1;
  size_t i;
  json_t *x;
  json_array_foreach(requests, i, x) {
    const char *q = json_string_value(x);
    if (!q || cdi_request_check(q, err) < 0) goto out;
    if (json_object_get(done, q)) continue;
    json_object_set_new(done, q, json_true());
    if (q[0] == '/') { /* a host device path */
      struct hostdev h;
      if (hostdev_parse(q, &h, err) < 0) goto out;
      cleanup_free char *real = realpath(h.host, NULL);
      struct stat st;
      int bad =
          !real                 ? berth_error(err, errno == ENOENT ? -ENOENT : errno, "device `%s`: %s", h.host, strerror(errno))
          : stat(real, &st) < 0 ? berth_error(err, errno, "device `%s`", h.host)
          : (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
              ? berth_error(err, -EINVAL, "device `%s` is not a device node%s", h.host,
                            S_ISDIR(st.st_mode) ? ": name each node (berth does not add a directory's nodes)" : " (bind files with -v)")
              : 0;
      json_t *n = bad ? NULL : json_pack("{s:s, s:s, s:s}", "path", h.ctr, "hostPath", real, "permissions", h.perms);
      int r = bad ? -1 : merge_node(&m, n, q);
      json_decref(n);
      hostdev_free(&h);
      if (r < 0) goto out;
      continue;
    }
    json_t *idx = json_object_get(r->devices, q);
    if (!idx) {
      not_found(r, q, err);
      goto out;
    }
    json_t *spec = json_array_get(r->specs, (size_t)json_integer_value(idx));
    const char *path = jstr(spec, "path");
    /* the spec's own edits once, whatever number of its devices is asked for */
    if (!json_object_get(specs_done, path)) {
      json_object_set_new(specs_done, path, json_true());
      cleanup_free char *from = xasprintf("%s (%s)", jstr(spec, "kind"), path);
      if (merge_edits(&m, json_object_get(spec, "edits"), from) < 0) goto out;
    }
    cleanup_free char *from = xasprintf("%s (%s)", q, path);
    if (merge_edits(&m, json_object_get(json_object_get(json_object_get(spec, "devices"), strchr(q, '=') + 1), "edits"), from) < 0)
      goto out;
  }
  *edits = json_pack("{s:O, s:O, s:O, s:O, s:O, s:O}", "env", m.env, "deviceNodes", m.nodes, "mounts", m.mounts, "hooks", m.hooks,
                     "additionalGids", m.gids, "requests", requests);
  ret = 0;
out:
  json_decref(done), json_decref(specs_done);
  json_decref(m.env), json_decref(m.env_from), json_decref(m.nodes), json_decref(m.mounts), json_decref(m.hooks), json_decref(m.gids);
  json_decref(m.notes);
  return ret;
}

/* ---------- into the OCI spec ---------- */
static json_t *obj_at(json_t *o, const char *k) {
  json_t *x = json_object_get(o, k);
  if (!json_is_object(x)) json_object_set_new(o, k, x = json_object());
  return x;
}
static json_t *arr_at(json_t *o, const char *k) {
  json_t *x = json_object_get(o, k);
  if (!json_is_array(x)) json_object_set_new(o, k, x = json_array());
  return x;
}

int cdi_apply(json_t *spec, json_t *edits, berth_error_t *err) {
  json_t *process = obj_at(spec, "process"), *linux_ = obj_at(spec, "linux"), *ann = obj_at(spec, "annotations");
  json_t *env = arr_at(process, "env");
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(edits, "env"), i, x) {
    const char *kv = json_string_value(x), *eq = strchr(kv, '=');
    cleanup_free char *k = strndup(kv, (size_t)(eq - kv));
    env_set(env, k, eq + 1);
  }
  json_t *devs = arr_at(linux_, "devices"), *allow = arr_at(obj_at(linux_, "resources"), "devices"), *sources = json_object();
  json_array_foreach(json_object_get(edits, "deviceNodes"), i, x) {
    json_t *d = json_pack("{s:s, s:s, s:O, s:O, s:O, s:i, s:i}", "path", jstr(x, "path"), "type", jstr(x, "type"), "major",
                          json_object_get(x, "major"), "minor", json_object_get(x, "minor"), "fileMode", json_object_get(x, "fileMode"),
                          "uid", 0, "gid", 0);
    if (json_object_get(x, "uid")) json_object_set(d, "uid", json_object_get(x, "uid"));
    if (json_object_get(x, "gid")) json_object_set(d, "gid", json_object_get(x, "gid"));
    json_array_append_new(devs, d);
    if (*jstr(x, "access") && strcmp(jstr(x, "type"), "p"))
      json_array_append_new(allow,
                            json_pack("{s:b, s:s, s:O, s:O, s:s}", "allow", 1, "type", jstr(x, "type"), "major",
                                      json_object_get(x, "major"), "minor", json_object_get(x, "minor"), "access", jstr(x, "access")));
    if (jstr(x, "hostPath")) json_object_set_new(sources, jstr(x, "path"), json_string(jstr(x, "hostPath")));
  }
  if (json_object_size(sources)) {
    char *t = json_dumps(sources, JSON_COMPACT);
    json_object_set_new(ann, "berth.device_sources", json_string(t));
    free(t);
  }
  json_decref(sources);
  json_t *mounts = arr_at(spec, "mounts");
  json_array_foreach(json_object_get(edits, "mounts"), i, x) {
    size_t j;
    json_t *y;
    json_array_foreach(mounts, j, y) if (spec_same_path(jstr(y, "destination") ?: "", jstr(x, "containerPath"))) return berth_error(
        err, -EINVAL, "%s mounts %s at %s, where the create already mounts something (%s): drop one of them", jstr(x, "_from"),
        jstr(x, "hostPath"), jstr(x, "containerPath"), jstr(y, "source") ?: jstr(y, "type"));
    json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:O}", "destination", jstr(x, "containerPath"), "type", jstr(x, "type"),
                                            "source", jstr(x, "hostPath"), "options", json_object_get(x, "options")));
  }
  json_t *hooks = json_array_size(json_object_get(edits, "hooks")) ? obj_at(spec, "hooks") : NULL;
  json_array_foreach(json_object_get(edits, "hooks"), i, x) {
    json_t *h = json_pack("{s:s}", "path", jstr(x, "path"));
    const char *keys[] = {"args", "env", "timeout"};
    for (int k = 0; k < 3; k++)
      if (json_object_get(x, keys[k])) json_object_set(h, keys[k], json_object_get(x, keys[k]));
    json_array_append_new(arr_at(hooks, jstr(x, "hookName")), h);
  }
  if (json_array_size(json_object_get(edits, "additionalGids"))) {
    json_t *g = arr_at(obj_at(process, "user"), "additionalGids");
    json_array_extend(g, json_object_get(edits, "additionalGids"));
  }
  if (json_array_size(json_object_get(edits, "requests"))) {
    char *t = json_dumps(json_object_get(edits, "requests"), JSON_COMPACT);
    json_object_set_new(ann, "berth.devices", json_string(t));
    free(t);
  }
  return 0;
}

/* ---------- --gpus and `gpu` ---------- */
json_t *cdi_gpus_arg(const char *s, berth_error_t *err) {
  cleanup_free char *c = strdup(s ? s : "");
  char *p = c;
  size_t n = strlen(p);
  if (n >= 2 && ((p[0] == '"' && p[n - 1] == '"') || (p[0] == '\'' && p[n - 1] == '\''))) p[n - 1] = '\0', p++;
  if (!strcmp(p, "all") || !strcmp(p, "count=all")) return json_true();
  const char *count = str_has_prefix(p, "count=") ? p + 6 : strspn(p, "0123456789") == strlen(p) && *p ? p : NULL;
  if (count) {
    char *end;
    long k = strtol(count, &end, 10);
    if (*end || k < 1 || k > 1024) {
      berth_error(err, -EINVAL, "--gpus `%.60s`: a count is 1 or more", s);
      return NULL;
    }
    json_t *a = json_array();
    for (long i = 0; i < k; i++) json_array_append_new(a, json_sprintf("%ld", i));
    return a;
  }
  if (str_has_prefix(p, "device=") && p[7]) {
    json_t *a = json_array();
    for (char *save, *t = strtok_r(p + 7, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
      cleanup_free char *q = xasprintf("nvidia.com/gpu=%s", t);
      if (cdi_name_check(q, err) < 0) {
        berth_error_wrap(err, "--gpus `%.60s`", s);
        json_decref(a);
        return NULL;
      }
      json_array_append_new(a, json_string(t));
    }
    return a;
  }
  berth_error(err, -EINVAL, "--gpus `%.60s`: use all, a count (2), or device=ID[,ID...] (indexes or UUIDs)", s);
  return NULL;
}

json_t *cdi_gpu_names(json_t *gpu) {
  json_t *a = json_array();
  if (json_is_true(gpu)) json_array_append_new(a, json_string("nvidia.com/gpu=all"));
  size_t i;
  json_t *x;
  json_array_foreach(gpu, i, x) {
    if (json_is_integer(x)) json_array_append_new(a, json_sprintf("nvidia.com/gpu=%lld", (long long)json_integer_value(x)));
    else if (json_is_string(x)) json_array_append_new(a, json_sprintf("nvidia.com/gpu=%s", json_string_value(x)));
  }
  return a;
}
