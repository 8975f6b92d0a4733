/* Pull orchestration shared by registry pulls and local loads. */
#ifndef BERTH_PULL_H
#define BERTH_PULL_H
#include <jansson.h>
#include <stdatomic.h>
#include "image/manifest.h"
#include "image/store.h"
#include "image/unpack.h"

/* A source of layer blobs: registry stream or local file. */
struct layer_source {
  void *ctx;
  int (*open)(void *ctx, const struct layer_desc *l, _Atomic uint64_t *progress, void **stream, berth_error_t *err);
  ssize_t (*read)(void *stream, const void **data, berth_error_t *err);
  void (*close)(void *stream);
};

struct pull_progress; /* display */

/* Make every layer of m present in the store (download/unpack in parallel). */
int fetch_layers(struct store *s, const struct manifest *m, struct layer_source *src, bool quiet, json_t *notes, berth_error_t *err);
/* Write the image record and name it; returns the record in *out. */
int commit_image(struct store *s, const char *name, const char *manifest_digest, const char *index_digest, const struct manifest *m,
                 json_t *config, json_t *notes, json_t **out, berth_error_t *err);
/* Validate a config blob against the manifest and parse it. */
int check_config(const char *digest, const char *data, size_t len, json_t **out, berth_error_t *err);

#endif
