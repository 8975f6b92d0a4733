/* Disk use and garbage collection of a data dir: `berth system df` and
 * `berth system prune` (gc.c). */
#ifndef BERTH_GC_H
#define BERTH_GC_H
#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/util.h"

/* Inodes already counted, so that a file with several links counts once
 * (as du counts it). Zero-initialise; du_seen_free when done. */
struct du_seen {
  uint64_t *keys; /* (dev + 1, ino) pairs, open addressing; (0, 0) is empty */
  size_t n, cap;
};
void du_seen_free(struct du_seen *s);
/* Disk use of the tree at dirfd/name in bytes: allocated blocks (a sparse
 * file counts what it holds), as `du -x -B1` reports it. Links are not
 * followed, another filesystem mounted below (a container's disk limit)
 * is not entered, and an inode seen before counts nothing. 0: missing. */
uint64_t du_at(int dirfd, const char *name, struct du_seen *seen);

/* What an entry of <data>/tmp or <data>/storage/tmp is. */
enum gc_tmp_kind {
  GC_TMP_UNKNOWN, /* not berth's: kept */
  GC_TMP_CACHE, /* overlay-ok-KERNEL: preflight's cached probe, kept */
  GC_TMP_NO_OWNER, /* overlay-probe-X, provision-X: no owner recorded, kept */
  GC_TMP_LAYER, /* storage: a pull's layer-HEX */
  GC_TMP_LOAD, /* storage: a load's load-X */
  GC_TMP_SNAPSHOT, /* storage: snap-PID-START-X */
  GC_TMP_REMOVAL, /* storage: rm-HEX-X, a layer being deleted */
};
enum gc_tmp_kind gc_tmp_kind(const char *entry, bool in_store);
/* why such an entry is, or is not, garbage (for a person) */
const char *gc_tmp_why(enum gc_tmp_kind k, bool stale);

#endif
