/* Layer unpacking: a tar stream (gzip, zstd or plain) into a directory in
 * overlay's on-disk form, every path resolved inside that directory. */
#ifndef BERTH_UNPACK_H
#define BERTH_UNPACK_H
#include "util/util.h"

typedef ssize_t (*blob_read_fn)(void *ctx, const void **data, berth_error_t *err);

struct unpack_opts {
  bool user_xattrs; /* opaque dirs as user.overlay.opaque (rootless) instead of trusted.* */
};

struct unpack_stats {
  uint64_t entries, bytes, compressed;
  unsigned devices_skipped, chown_failed, xattrs_skipped, neutralized;
};

/* Read the blob through `rd`, verify it is exactly `size` bytes with
 * `digest`, and unpack it into destfd. On any failure the caller discards
 * the directory: nothing partial is kept. */
int unpack_layer(int destfd, blob_read_fn rd, void *ctx, const char *digest, uint64_t size, const struct unpack_opts *o,
                 struct unpack_stats *st, berth_error_t *err);

#endif
