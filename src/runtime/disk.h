/* The writable layer's size limit (disk.c). */
#ifndef BERTH_DISK_H
#define BERTH_DISK_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/util.h"

/* can this process enforce a disk limit here? *why says why not */
bool disk_limit_supported(const char **why);
/* make <cdir>/disk (an ext4 image of BYTES, loop-mounted) with upper/ and
 * work/ in it, and <cdir>/upper, <cdir>/work as links to them */
int disk_setup(const char *cdir, int64_t bytes, berth_error_t *err);
/* mount <cdir>/disk again if it is not (a start after a reboot) */
int disk_mount(const char *cdir, berth_error_t *err);
/* unmount <cdir>/disk (lazily) if it is mounted */
void disk_release(const char *cdir);
/* {limit, used, available, mounted} of a limited layer; NULL for none */
json_t *disk_usage(const char *cdir, int64_t limit);

#endif
