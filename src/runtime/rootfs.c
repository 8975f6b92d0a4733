#define _GNU_SOURCE
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

char *rootfs_fdpath(int fd) { return xasprintf("/proc/self/fd/%d", fd); }

/* Open (creating) a mount target inside the root; system targets refuse symlinks. */
int rootfs_target(int rootfd, const char *dest, bool is_file, bool no_symlinks, berth_error_t *err) {
  uint64_t res = no_symlinks ? RESOLVE_NO_SYMLINKS : 0;
  const char *rel = dest;
  while (*rel == '/') rel++;
  if (!is_file) {
    int fd = mkdir_in_root(rootfd, rel, 0755, res, err);
    if (fd < 0 && err && *err && (*err)->status == ELOOP)
      return berth_error(err, -ELOOP, "the image's `%s` is (or passes through) a symlink; refusing to mount over it", dest);
    return fd;
  }
  cleanup_free char *copy = strdup(rel);
  char *slash = strrchr(copy, '/');
  cleanup_close int dfd = -1;
  const char *base = copy;
  if (slash) {
    *slash = '\0';
    dfd = mkdir_in_root(rootfd, copy, 0755, res, err);
    base = slash + 1;
  } else
    dfd = openat_in_root(rootfd, "", O_PATH | O_DIRECTORY, 0, 0);
  if (dfd < 0) return -1;
  int fd = openat(dfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    int c = openat(dfd, base, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (c >= 0) close(c);
    fd = openat(dfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  }
  if (fd < 0) return berth_error(err, errno, "mount target `%s`", dest);
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
    close(fd);
    return berth_error(err, -ELOOP, "mount target `%s` is a symlink; refusing", dest);
  }
  return fd;
}

int rootfs_mount_fd(const char *src, int tfd, const char *type, unsigned long flags, const char *data, const char *what,
                    berth_error_t *err) {
  cleanup_free char *t = rootfs_fdpath(tfd);
  if (mount(src, t, type, flags, data) < 0) return berth_error(err, errno, "mount %s", what);
  return 0;
}

/* Flags a remount must keep (the kernel locks them in a user namespace). */
unsigned long rootfs_locked_flags(const char *path) {
  struct statvfs sv;
  unsigned long f = 0;
  if (statvfs(path, &sv) < 0) return 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

int rootfs_remount_ro(int rootfd, const char *rel, berth_error_t *err) {
  int fd = openat_in_root(rootfd, rel, O_PATH, 0, RESOLVE_NO_SYMLINKS);
  if (fd < 0) return errno == ENOENT ? 0 : berth_error(err, errno, "read-only path `/%s`", rel);
  cleanup_free char *p = rootfs_fdpath(fd);
  int r = mount(p, p, NULL, MS_BIND | MS_REC, NULL);
  close(fd);
  if (r < 0) return berth_error(err, errno, "bind `/%s`", rel);
  fd = openat_in_root(rootfd, rel, O_PATH, 0, RESOLVE_NO_SYMLINKS);
  if (fd < 0) return berth_error(err, errno, "reopen `/%s`", rel);
  free(p);
  p = rootfs_fdpath(fd);
  unsigned long keep = rootfs_locked_flags(p);
  r = mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL);
  close(fd);
  if (r < 0) return berth_error(err, errno, "make `/%s` read-only", rel);
  return 0;
}

int rootfs_mask(int rootfd, const char *rel, berth_error_t *err) {
  int fd = openat_in_root(rootfd, rel, O_PATH, 0, RESOLVE_NO_SYMLINKS);
  if (fd < 0) return errno == ENOENT ? 0 : berth_error(err, errno, "masked path `/%s`", rel);
  struct stat st;
  fstat(fd, &st);
  int r;
  if (S_ISDIR(st.st_mode)) r = rootfs_mount_fd("tmpfs", fd, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0555", rel, err);
  else r = rootfs_mount_fd("/dev/null", fd, NULL, MS_BIND, NULL, rel, err);
  close(fd);
  return r;
}

int rootfs_mask_and_readonly(int rootfd, json_t *linux_, berth_error_t *err) {
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(linux_, "maskedPaths"), i, p) {
    const char *rel = json_string_value(p);
    while (rel && *rel == '/') rel++;
    if (rel && rootfs_mask(rootfd, rel, err) < 0) return -1;
  }
  json_array_foreach(json_object_get(linux_, "readonlyPaths"), i, p) {
    const char *rel = json_string_value(p);
    while (rel && *rel == '/') rel++;
    if (rel && rootfs_remount_ro(rootfd, rel, err) < 0) return -1;
  }
  return 0;
}
