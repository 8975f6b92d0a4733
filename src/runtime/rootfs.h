/* Mounting inside a container's root without leaving it: every target is
 * opened with openat2(RESOLVE_IN_ROOT) and mounted through its
 * /proc/self/fd path, so a symlink planted in an image (or by a running
 * container) can never redirect a mount onto the host. Shared by berth's
 * own containers (init.c) and the bundle runtime (oci_linux.c). */
#ifndef BERTH_ROOTFS_H
#define BERTH_ROOTFS_H
#include <jansson.h>
#include <stdbool.h>
#include "util.h"

/* "/proc/self/fd/N" (malloc'd) */
char *rootfs_fdpath(int fd);
/* Open (creating, with its parents) a mount target inside the root, as an
 * O_PATH fd; no_symlinks: refuse any symlink on the way (system targets) */
int rootfs_target(int rootfd, const char *dest, bool is_file, bool no_symlinks, berth_error_t *err);
int rootfs_mount_fd(const char *src, int tfd, const char *type, unsigned long flags, const char *data, const char *what,
                    berth_error_t *err);
/* the per-mount flags a remount must keep (locked in a user namespace) */
unsigned long rootfs_locked_flags(const char *path);
/* bind REL (relative to the root) onto itself, read-only; absent: nothing */
int rootfs_remount_ro(int rootfd, const char *rel, berth_error_t *err);
/* hide REL: /dev/null over a file, an empty read-only tmpfs over a directory */
int rootfs_mask(int rootfd, const char *rel, berth_error_t *err);
/* the spec's linux.maskedPaths and linux.readonlyPaths, below rootfd */
int rootfs_mask_and_readonly(int rootfd, json_t *linux_, berth_error_t *err);
#endif
