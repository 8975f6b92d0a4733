/* Image manifests, indexes and platform selection. */
#ifndef BERTH_MANIFEST_H
#define BERTH_MANIFEST_H
#include <jansson.h>
#include "util/util.h"

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

enum { MANIFEST_IMAGE = 1, MANIFEST_INDEX = 2 };

struct layer_desc {
  char *digest, *media_type;
  uint64_t size;
};

struct manifest {
  char *media_type;
  char *config_digest;
  uint64_t config_size;
  struct layer_desc *layers;
  size_t n_layers;
};

struct platform {
  char os[32], arch[32], variant[16];
};

/* Decide what a manifest body is. The body's own mediaType wins; without
 * one, a known Content-Type decides; else the structure does. Schema 1 is
 * refused with the reason. */
int manifest_classify(const char *body, size_t len, const char *content_type, int *kind, json_t **out, berth_error_t *err);
int manifest_parse(json_t *j, struct manifest *m, berth_error_t *err);
void manifest_free(struct manifest *m);

int platform_parse(const char *s, struct platform *p, berth_error_t *err);
void platform_host(struct platform *p);
char *platform_string(const struct platform *p);
/* Choose the entry of an index for platform p. */
int index_select(json_t *index, const struct platform *p, char **digest, uint64_t *size, berth_error_t *err);

#endif
