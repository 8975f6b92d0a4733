#define _GNU_SOURCE
#include "image/manifest.h"

#include <errno.h>
#include <string.h>
#include <sys/utsname.h>

#include "image/digest.h"

static bool is_index_type(const char *t) { return t && (!strcmp(t, MT_OCI_INDEX) || !strcmp(t, MT_DOCKER_LIST)); }
static bool is_image_type(const char *t) { return t && (!strcmp(t, MT_OCI_MANIFEST) || !strcmp(t, MT_DOCKER_MANIFEST)); }

int manifest_classify(const char *body, size_t len, const char *content_type, int *kind, json_t **out, berth_error_t *err) {
  json_error_t je;
  json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (!j) return berth_error(err, -EINVAL, "manifest is not valid JSON (line %d: %s)", je.line, je.text);
  if (!json_is_object(j)) {
    json_decref(j);
    return berth_error(err, -EINVAL, "manifest is not a JSON object");
  }
  cleanup_free char *ct = NULL;
  if (content_type) {
    ct = strndup(content_type, strcspn(content_type, ";"));
    for (char *e = ct + strlen(ct); e > ct && e[-1] == ' '; e--) e[-1] = '\0';
  }
  json_t *sv = json_object_get(j, "schemaVersion");
  const char *mt = json_string_value(json_object_get(j, "mediaType"));
  if ((json_is_integer(sv) && json_integer_value(sv) == 1) || (ct && (!strcmp(ct, MT_DOCKER_V1) || !strcmp(ct, MT_DOCKER_V1_SIGNED)))) {
    json_decref(j);
    return berth_error(err, -ENOTSUP,
                       "this is a Docker schema 1 manifest, deprecated since 2017 and unverifiable by content digest: "
                       "berth refuses it; push the image again with a current tool (schema 2 or OCI)");
  }
  if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
    json_decref(j);
    return berth_error(err, -EINVAL, "manifest has no schemaVersion 2");
  }
  const char *type = mt;
  if (!type && (is_index_type(ct) || is_image_type(ct))) type = ct;
  if (!type) { /* neither says: go by structure */
    if (json_is_array(json_object_get(j, "manifests"))) type = MT_OCI_INDEX;
    else if (json_is_object(json_object_get(j, "config")) && json_is_array(json_object_get(j, "layers"))) type = MT_OCI_MANIFEST;
  }
  if (is_index_type(type)) *kind = MANIFEST_INDEX;
  else if (is_image_type(type)) *kind = MANIFEST_IMAGE;
  else {
    json_decref(j);
    return berth_error(err, -ENOTSUP, "unsupported manifest type `%.100s` (Content-Type `%.100s`)", type ? type : "(none)",
                       ct ? ct : "(none)");
  }
  *out = j;
  return 0;
}

static bool layer_type_ok(const char *t) {
  static const char *ok[] = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.v1.tar+zstd",
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.diff.tar",
  };
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
    if (!strcmp(t, ok[i])) return true;
  return false;
}

static int parse_desc(json_t *d, const char *what, char **digest, uint64_t *size, char **mt, berth_error_t *err) {
  const char *dg = json_string_value(json_object_get(d, "digest"));
  json_t *sz = json_object_get(d, "size");
  if (!json_is_object(d) || !dg) return berth_error(err, -EINVAL, "manifest: %s has no digest", what);
  if (digest_check(dg, err) < 0) return berth_error_wrap(err, "manifest: %s", what);
  if (!json_is_integer(sz) || json_integer_value(sz) < 0 || json_integer_value(sz) > (1LL << 42))
    return berth_error(err, -EINVAL, "manifest: %s %s has an invalid size", what, dg);
  *digest = strdup(dg);
  *size = (uint64_t)json_integer_value(sz);
  if (mt) {
    const char *m = json_string_value(json_object_get(d, "mediaType"));
    *mt = m ? strdup(m) : NULL;
  }
  return 0;
}

int manifest_parse(json_t *j, struct manifest *m, berth_error_t *err) {
  memset(m, 0, sizeof *m);
  json_t *layers = json_object_get(j, "layers");
  const char *mt = json_string_value(json_object_get(j, "mediaType"));
  m->media_type = strdup(mt ? mt : MT_OCI_MANIFEST);
  json_t *cfg = json_object_get(j, "config");
  char *cmt = NULL;
  if (parse_desc(cfg, "config", &m->config_digest, &m->config_size, &cmt, err) < 0) goto fail;
  if (cmt && strcmp(cmt, "application/vnd.oci.image.config.v1+json") && strcmp(cmt, "application/vnd.docker.container.image.v1+json")) {
    berth_error(err, -ENOTSUP, "config media type `%.100s`: this is an OCI artifact, not a container image", cmt);
    free(cmt);
    goto fail;
  }
  free(cmt);
  if (m->config_size > (8 << 20)) {
    berth_error(err, -EFBIG, "image config of %llu bytes is implausibly large; refusing", (unsigned long long)m->config_size);
    goto fail;
  }
  if (!json_is_array(layers)) {
    berth_error(err, -EINVAL, "manifest has no layers array");
    goto fail;
  }
  m->n_layers = json_array_size(layers);
  if (m->n_layers > 500) {
    berth_error(err, -E2BIG, "manifest lists %zu layers; berth accepts at most 500", m->n_layers);
    goto fail;
  }
  m->layers = xmalloc0(sizeof *m->layers * m->n_layers);
  for (size_t i = 0; i < m->n_layers; i++) {
    struct layer_desc *l = &m->layers[i];
    char what[32];
    snprintf(what, sizeof what, "layer %zu", i + 1);
    if (parse_desc(json_array_get(layers, i), what, &l->digest, &l->size, &l->media_type, err) < 0) goto fail;
    if (!l->media_type) l->media_type = strdup("application/vnd.oci.image.layer.v1.tar+gzip");
    if (!layer_type_ok(l->media_type)) {
      berth_error(err, -ENOTSUP, "layer %s has media type `%.100s`, which is not a container filesystem layer", l->digest, l->media_type);
      goto fail;
    }
  }
  return 0;
fail:
  manifest_free(m);
  return -1;
}

void manifest_free(struct manifest *m) {
  for (size_t i = 0; i < m->n_layers; i++) {
    free(m->layers[i].digest);
    free(m->layers[i].media_type);
  }
  free(m->layers);
  free(m->media_type);
  free(m->config_digest);
  memset(m, 0, sizeof *m);
}

void platform_host(struct platform *p) {
  struct utsname u;
  memset(p, 0, sizeof *p);
  strcpy(p->os, "linux");
  uname(&u);
  const char *a = u.machine;
  if (!strcmp(a, "x86_64")) strcpy(p->arch, "amd64");
  else if (!strcmp(a, "aarch64")) strcpy(p->arch, "arm64"), strcpy(p->variant, "v8");
  else if (!strncmp(a, "armv7", 5)) strcpy(p->arch, "arm"), strcpy(p->variant, "v7");
  else if (!strncmp(a, "armv6", 5)) strcpy(p->arch, "arm"), strcpy(p->variant, "v6");
  else if (!strcmp(a, "i686") || !strcmp(a, "i386")) strcpy(p->arch, "386");
  else if (!strcmp(a, "ppc64le")) strcpy(p->arch, "ppc64le");
  else if (!strcmp(a, "s390x")) strcpy(p->arch, "s390x");
  else if (!strcmp(a, "riscv64")) strcpy(p->arch, "riscv64");
  else snprintf(p->arch, sizeof p->arch, "%.31s", a);
}

int platform_parse(const char *s, struct platform *p, berth_error_t *err) {
  memset(p, 0, sizeof *p);
  const char *a = strchr(s, '/');
  const char *v = a ? strchr(a + 1, '/') : NULL;
  size_t ol = a ? (size_t)(a - s) : 0, al = a ? (v ? (size_t)(v - a - 1) : strlen(a + 1)) : 0;
  if (!a || ol == 0 || ol >= sizeof p->os || al == 0 || al >= sizeof p->arch ||
      (v && (strlen(v + 1) == 0 || strlen(v + 1) >= sizeof p->variant)) || (v && strchr(v + 1, '/')))
    return berth_error(err, -EINVAL, "invalid platform `%.60s`: expected os/arch[/variant], e.g. linux/arm64/v8", s);
  memcpy(p->os, s, ol);
  memcpy(p->arch, a + 1, al);
  if (v) strcpy(p->variant, v + 1);
  if (!strcmp(p->arch, "aarch64")) strcpy(p->arch, "arm64");
  if (!strcmp(p->arch, "x86_64")) strcpy(p->arch, "amd64");
  return 0;
}

char *platform_string(const struct platform *p) {
  return p->variant[0] ? xasprintf("%s/%s/%s", p->os, p->arch, p->variant) : xasprintf("%s/%s", p->os, p->arch);
}

/* arm64 images often omit the variant; v8 is implied. */
static bool variant_eq(const char *arch, const char *a, const char *b) {
  if (!strcmp(a, b)) return true;
  if (!strcmp(arch, "arm64")) return (!*a || !strcmp(a, "v8")) && (!*b || !strcmp(b, "v8"));
  return false;
}

int index_select(json_t *index, const struct platform *p, char **digest, uint64_t *size, berth_error_t *err) {
  json_t *ms = json_object_get(index, "manifests");
  if (!json_is_array(ms)) return berth_error(err, -EINVAL, "index has no manifests array");
  size_t i;
  json_t *m;
  int best = -1, best_score = 0;
  struct buf avail = {0};
  json_array_foreach(ms, i, m) {
    json_t *pl = json_object_get(m, "platform");
    const char *os = json_string_value(json_object_get(pl, "os"));
    const char *arch = json_string_value(json_object_get(pl, "architecture"));
    const char *var = json_string_value(json_object_get(pl, "variant"));
    if (!os || !arch) continue; /* attestation manifests and the like */
    if (!strcmp(os, "unknown")) continue;
    char one[128];
    snprintf(one, sizeof one, "%s%s/%s%s%s", avail.len ? ", " : "", os, arch, var ? "/" : "", var ? var : "");
    buf_append(&avail, one, strlen(one));
    if (strcmp(os, p->os) || strcmp(arch, p->arch)) continue;
    int score;
    if (p->variant[0]) score = variant_eq(arch, p->variant, var ? var : "") ? 2 : 0;
    else score = !var || variant_eq(arch, "", var) ? 2 : 1; /* no variant asked: prefer none */
    if (score > best_score) best = (int)i, best_score = score;
  }
  if (best < 0) {
    cleanup_free char *want = platform_string(p);
    int r = berth_error(err, -ENOENT, "no image for platform %s in this index; available: %s (choose one with --platform)", want,
                        avail.len ? avail.data : "none");
    buf_free(&avail);
    return r;
  }
  buf_free(&avail);
  return parse_desc(json_array_get(ms, best), "index entry", digest, size, NULL, err);
}
