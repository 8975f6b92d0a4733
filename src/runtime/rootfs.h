/* Mounting inside a container's root without leaving it: every target is
 * opened with openat2(RESOLVE_IN_ROOT) and mounted through its
 * /proc/self/fd path, so a symlink planted in an image (or by a running
 * container) can never redirect a mount onto the host. Shared by berth's
 * own containers (init.c) and the bundle runtime (oci_linux.c). */
#ifndef BERTH_ROOTFS_H
#define BERTH_ROOTFS_H
#include <jansson.h>
#include <stdbool.h>
#include "util/util.h"

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

/* ---- a spec's mounts and devices, for berth-oci and berth's own init ----
 * The caller's policy is in here; the rest comes from the spec. */
struct rootfs_spec {
  json_t *spec;
  const char *bundle; /* relative bind sources are the bundle's */
  const char *own_cgroups; /* /proc/self/cgroup before the cgroup namespace (cgroup mounts) */
  json_t *device_sources; /* {"/dev/x": "/host/node"}: a device's host node, where not the same path */
  bool in_userns; /* no mknod: the host's nodes are bound */
  bool nodev; /* every bind and tmpfs but /dev is nodev, whatever its options say */
};
/* mounts[idx] of the spec, its target resolved inside the root */
int rootfs_spec_mount(const struct rootfs_spec *c, int rootfd, json_t *m, size_t idx, berth_error_t *err);
/* the spec's mounts, in order */
int rootfs_spec_mounts(const struct rootfs_spec *c, int rootfd, berth_error_t *err);
/* linux.devices, the default nodes (null, zero, full, random, urandom,
 * tty) and the /dev links */
int rootfs_spec_devices(const struct rootfs_spec *c, int rootfd, berth_error_t *err);
/* a propagation option (rslave, private, ...) as mount flags; "" or NULL:
 * rslave; *ok false when unknown */
unsigned long rootfs_propagation(const char *s, bool *ok);
#endif
