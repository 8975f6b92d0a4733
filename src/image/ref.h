/* Image references, normalized the way Docker does. */
#ifndef BERTH_REF_H
#define BERTH_REF_H
#include "util/util.h"

struct image_ref {
  char *domain; /* "docker.io", "127.0.0.1:5000" */
  char *path; /* "library/busybox" */
  char *tag; /* may be NULL when only a digest was given */
  char *digest; /* "sha256:..." or NULL */
};

int ref_parse(const char *s, struct image_ref *out, berth_error_t *err);
void ref_free(struct image_ref *r);
/* "docker.io/library/busybox:latest" (tag form; digest appended when present) */
char *ref_string(const struct image_ref *r);
/* The name without tag/digest: "docker.io/library/busybox" */
char *ref_name(const struct image_ref *r);
/* host[:port] to talk to ("registry-1.docker.io" for docker.io) */
const char *ref_registry_host(const struct image_ref *r);

#endif
