/* Image reference parsing. Grammar follows the distribution reference
 * package that Docker uses, so "busybox" means
 * "docker.io/library/busybox:latest" everywhere. */
#define _GNU_SOURCE
#include "image/ref.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "image/digest.h"

static bool is_alnum_lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/* path-component := [a-z0-9]+ ( ( [._] | __ | [-]+ ) [a-z0-9]+ )* */
static bool path_component_valid(const char *s, size_t n) {
  size_t i = 0;
  if (n == 0 || !is_alnum_lower(s[0])) return false;
  while (i < n) {
    while (i < n && is_alnum_lower(s[i])) i++;
    if (i == n) return true;
    size_t sep = i;
    if (s[i] == '.' || (s[i] == '_' && (i + 1 >= n || s[i + 1] != '_'))) i++;
    else if (s[i] == '_' && s[i + 1] == '_') i += 2;
    else if (s[i] == '-')
      while (i < n && s[i] == '-') i++;
    else return false;
    if (i == n || !is_alnum_lower(s[i]) || i == sep) return false;
  }
  return true;
}

static bool domain_valid(const char *s) {
  const char *colon = NULL;
  if (s[0] == '[') { /* [IPv6]:port */
    const char *end = strchr(s, ']');
    if (!end) return false;
    for (const char *p = s + 1; p < end; p++)
      if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.') return false;
    colon = end[1] == ':' ? end + 1 : NULL;
    if (!colon && end[1]) return false;
  } else {
    colon = strchr(s, ':');
    size_t hl = colon ? (size_t)(colon - s) : strlen(s);
    if (hl == 0) return false;
    size_t start = 0;
    for (size_t i = 0; i <= hl; i++) {
      if (i == hl || s[i] == '.') {
        size_t len = i - start;
        if (len == 0 || !isalnum((unsigned char)s[start]) || !isalnum((unsigned char)s[i - 1])) return false;
        start = i + 1;
        continue;
      }
      if (!isalnum((unsigned char)s[i]) && s[i] != '-') return false;
    }
  }
  if (colon) {
    if (!colon[1]) return false;
    for (const char *p = colon + 1; *p; p++)
      if (!isdigit((unsigned char)*p)) return false;
  }
  return true;
}

static bool tag_valid(const char *t) {
  size_t n = strlen(t);
  if (n == 0 || n > 128) return false;
  if (!(isalnum((unsigned char)t[0]) || t[0] == '_')) return false;
  for (size_t i = 1; i < n; i++)
    if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-')) return false;
  return true;
}

void ref_free(struct image_ref *r) {
  free(r->domain);
  free(r->path);
  free(r->tag);
  free(r->digest);
  memset(r, 0, sizeof *r);
}

int ref_parse(const char *s, struct image_ref *out, berth_error_t *err) {
  memset(out, 0, sizeof *out);
  if (!s || !*s) return berth_error(err, -EINVAL, "invalid reference: empty image name");
  size_t slen = strlen(s);
  if (slen > 1024) return berth_error(err, -EINVAL, "invalid reference: longer than 1024 characters");
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
      return berth_error(err, -EINVAL, "invalid reference `%.100s`: contains whitespace or a non-ASCII byte", s);

  cleanup_free char *copy = strdup(s);
  if (!copy) return berth_error(err, -ENOMEM, "parse reference");
  char *at = strchr(copy, '@');
  if (at) {
    *at = '\0';
    if (digest_check(at + 1, err) < 0) return berth_error_wrap(err, "invalid reference `%.100s`", s);
    out->digest = strdup(at + 1);
  }
  char *name = copy;
  char *slash = strrchr(name, '/');
  char *colon = strrchr(name, ':');
  if (colon && (!slash || colon > slash)) {
    *colon = '\0';
    if (!tag_valid(colon + 1)) {
      ref_free(out);
      return berth_error(err, -EINVAL,
                         "invalid reference `%.100s`: tag `%.130s` must be 1-128 of [A-Za-z0-9_.-] and not start with `.` or `-`", s,
                         colon + 1);
    }
    out->tag = strdup(colon + 1);
  }
  if (!*name) {
    ref_free(out);
    return berth_error(err, -EINVAL, "invalid reference `%.100s`: missing repository name", s);
  }

  char *first_slash = strchr(name, '/');
  const char *remote = name;
  if (first_slash) {
    size_t dl = first_slash - name;
    bool is_domain = memchr(name, '.', dl) || memchr(name, ':', dl) || (dl == 9 && !strncmp(name, "localhost", 9));
    for (size_t i = 0; i < dl && !is_domain; i++)
      if (isupper((unsigned char)name[i])) is_domain = true;
    if (is_domain) {
      *first_slash = '\0';
      if (!domain_valid(name)) {
        ref_free(out);
        return berth_error(err, -EINVAL, "invalid reference `%.100s`: registry `%s` is not a valid host[:port]", s, name);
      }
      out->domain = strdup(name);
      remote = first_slash + 1;
    }
  }
  if (!out->domain) out->domain = strdup("docker.io");
  if (!strcmp(out->domain, "index.docker.io")) {
    free(out->domain);
    out->domain = strdup("docker.io");
  }
  /* validate each path component, naming the bad one */
  const char *p = remote;
  if (!*p) {
    ref_free(out);
    return berth_error(err, -EINVAL, "invalid reference `%.100s`: missing repository name", s);
  }
  while (*p) {
    const char *e = strchr(p, '/');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (!path_component_valid(p, n)) {
      bool upper = false;
      for (size_t i = 0; i < n; i++) upper |= isupper((unsigned char)p[i]);
      ref_free(out);
      if (upper)
        return berth_error(err, -EINVAL, "invalid reference `%.100s`: repository name component `%.*s` must be lowercase", s, (int)n, p);
      return berth_error(
          err, -EINVAL,
          "invalid reference `%.100s`: repository name component `%.*s` may only contain [a-z0-9] separated by `.`, `_`, `__` or `-`", s,
          (int)n, p);
    }
    if (!e) break;
    p = e + 1;
    if (!*p) {
      ref_free(out);
      return berth_error(err, -EINVAL, "invalid reference `%.100s`: trailing `/` in repository name", s);
    }
  }
  if (!strcmp(out->domain, "docker.io") && !strchr(remote, '/')) out->path = xasprintf("library/%s", remote);
  else out->path = strdup(remote);
  if (strlen(out->domain) + 1 + strlen(out->path) > 255) {
    ref_free(out);
    return berth_error(err, -EINVAL, "invalid reference `%.100s`: repository name longer than 255 characters", s);
  }
  if (!out->tag && !out->digest) out->tag = strdup("latest");
  if (!out->domain || !out->path) {
    ref_free(out);
    return berth_error(err, -ENOMEM, "parse reference");
  }
  return 0;
}

char *ref_name(const struct image_ref *r) { return xasprintf("%s/%s", r->domain, r->path); }

char *ref_string(const struct image_ref *r) {
  if (r->tag && r->digest) return xasprintf("%s/%s:%s@%s", r->domain, r->path, r->tag, r->digest);
  if (r->digest) return xasprintf("%s/%s@%s", r->domain, r->path, r->digest);
  return xasprintf("%s/%s:%s", r->domain, r->path, r->tag);
}

const char *ref_registry_host(const struct image_ref *r) {
  return strcmp(r->domain, "docker.io") == 0 ? "registry-1.docker.io" : r->domain;
}
