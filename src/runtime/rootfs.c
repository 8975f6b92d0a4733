#define _GNU_SOURCE
#include "runtime/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
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
  } else dfd = openat_in_root(rootfd, "", O_PATH | O_DIRECTORY, 0, 0);
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
  if (S_ISDIR(st.st_mode))
    r = rootfs_mount_fd("tmpfs", fd, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0555", rel, err);
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

/* ---------- mount options ---------- */
struct mopt {
  const char *name;
  bool clear;
  unsigned long flag;
};
static const struct mopt MOPTS[] = {
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},
    {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},
    {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},
    {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},
    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},
    {"nomand", true, MS_MANDLOCK},
    {"atime", true, MS_NOATIME},
    {"noatime", false, MS_NOATIME},
    {"diratime", true, MS_NODIRATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"bind", false, MS_BIND},
    {"rbind", false, MS_BIND | MS_REC},
    {"silent", false, MS_SILENT},
    {"loud", true, MS_SILENT},
    {"iversion", false, MS_I_VERSION},
    {"noiversion", true, MS_I_VERSION},
    {"lazytime", false, MS_LAZYTIME},
    {"nolazytime", true, MS_LAZYTIME},
};
static const struct mopt PROPS[] = {
    {"private", false, MS_PRIVATE},       {"rprivate", false, MS_PRIVATE | MS_REC},
    {"shared", false, MS_SHARED},         {"rshared", false, MS_SHARED | MS_REC},
    {"slave", false, MS_SLAVE},           {"rslave", false, MS_SLAVE | MS_REC},
    {"unbindable", false, MS_UNBINDABLE}, {"runbindable", false, MS_UNBINDABLE | MS_REC},
};

struct mount_opts {
  unsigned long flags, prop;
  char data[4096];
  bool tmpcopyup;
};

static void parse_mount_options(json_t *opts, struct mount_opts *o) {
  memset(o, 0, sizeof *o);
  size_t i, n = 0;
  json_t *v;
  json_array_foreach(opts, i, v) {
    const char *s = json_string_value(v);
    if (!s) continue;
    bool found = false;
    for (size_t k = 0; k < sizeof MOPTS / sizeof *MOPTS && !found; k++)
      if (!strcmp(s, MOPTS[k].name)) {
        if (MOPTS[k].clear) o->flags &= ~MOPTS[k].flag;
        else o->flags |= MOPTS[k].flag;
        found = true;
      }
    for (size_t k = 0; k < sizeof PROPS / sizeof *PROPS && !found; k++)
      if (!strcmp(s, PROPS[k].name)) o->prop = PROPS[k].flag, found = true;
    if (!found && !strcmp(s, "tmpcopyup")) o->tmpcopyup = true, found = true;
    /* runc's and podman's own markers: not kernel options */
    if (!found && (!strcmp(s, "idmap") || !strcmp(s, "ridmap") || !strcmp(s, "copy-symlink") || str_has_prefix(s, "x-"))) found = true;
    if (!found) {
      int w = snprintf(o->data + n, sizeof o->data - n, "%s%s", n ? "," : "", s);
      if (w > 0 && (size_t)w < sizeof o->data - n) n += (size_t)w;
    }
  }
}

unsigned long rootfs_propagation(const char *s, bool *ok) {
  *ok = true;
  if (!s || !*s) return MS_SLAVE | MS_REC;
  for (size_t k = 0; k < sizeof PROPS / sizeof *PROPS; k++)
    if (!strcmp(s, PROPS[k].name)) return PROPS[k].flag;
  *ok = false;
  return 0;
}

/* ---------- a spec's mounts ---------- */
/* the host's directory of our cgroup in the hierarchy mounted at mnt with
 * these super options (v2: NULL), or NULL; own_cgroups is /proc/self/cgroup
 * read before the cgroup namespace (the host's names) */
static char *own_cgroup_dir(const char *own_cgroups, const char *mnt, const char *opts) {
  cleanup_cgroup_lines struct cgroup_lines it = cgroup_lines_begin(own_cgroups);
  struct cgroup_line l;
  while (cgroup_lines_next(&it, &l)) {
    bool match;
    if (!opts) match = !*l.ctrls;
    else if (!*l.ctrls) match = false;
    else {
      /* every controller (or name=) of the line is among the mount's options */
      match = true;
      cleanup_free char *copy = xstrdup(l.ctrls);
      for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && match; t = strtok_r(NULL, ",", &save))
        match = cgroup_ctrls_has(opts, t);
    }
    if (match) return xasprintf("%s%s", mnt, l.path);
  }
  return NULL;
}

/* a bind source: relative paths are the bundle's */
static char *bind_source(const struct rootfs_spec *c, const char *src) {
  return src && src[0] == '/' ? xstrdup(src) : xasprintf("%s/%s", c->bundle ? c->bundle : "", src ? src : "");
}

/* cgroup v1/hybrid: a tmpfs with each hierarchy of ours mounted again in
 * the container's cgroup namespace; where the kernel refuses (a user
 * namespace), the host's hierarchies read-only */
static int mount_cgroup_v1(const struct rootfs_spec *c, int rootfd, int tfd, const char *dest, unsigned long flags, berth_error_t *err) {
  if (rootfs_mount_fd("tmpfs", tfd, "tmpfs", (flags & ~MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755", dest, err) < 0) return -1;
  cleanup_free char *minfo = NULL;
  if (mountinfo_read(&minfo, err) < 0) return -1;
  cleanup_mountinfo_lines struct mountinfo_lines it = mountinfo_lines_begin(minfo);
  struct mountinfo_line m;
  while (mountinfo_lines_next(&it, &m)) {
    const char *mnt = m.mnt;
    bool v2 = !strcmp(m.fstype, "cgroup2");
    if (strcmp(m.fstype, "cgroup") && !v2) continue;
    if (!str_has_prefix(mnt, "/sys/fs/cgroup/")) continue;
    const char *base = mnt + strlen("/sys/fs/cgroup/");
    if (strchr(base, '/') || !*base) continue;
    /* the controllers (and name=) of a v1 hierarchy, without rw/ro */
    char opts[1024] = "";
    size_t on = 0;
    for (const char *tok = m.super; *tok && !v2 && on < sizeof opts;) {
      int tl = (int)strcspn(tok, ",");
      bool rwro = tl == 2 && (!strncmp(tok, "rw", 2) || !strncmp(tok, "ro", 2));
      if (tl && !rwro) on += (size_t)snprintf(opts + on, sizeof opts - on, "%s%.*s", on ? "," : "", tl, tok);
      tok += tl + (tok[tl] == ',');
    }
    cleanup_free char *sub = xasprintf("%s/%s", dest, base);
    berth_error_t e = NULL;
    cleanup_close int sfd = rootfs_target(rootfd, sub, false, true, &e);
    if (sfd < 0) {
      berth_error_clear(&e);
      continue;
    }
    cleanup_free char *p = rootfs_fdpath(sfd);
    /* our own cgroup's directory, bound: what a mount in our cgroup
     * namespace shows, without a new cgroup superblock (0.7-12 ms here) */
    cleanup_free char *own = own_cgroup_dir(c->own_cgroups, mnt, v2 ? NULL : opts);
    unsigned long mf = flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
    bool bound = own && mount(own, p, NULL, MS_BIND, NULL) == 0;
    if (bound) {
      free(p);
      close(sfd);
      sfd = rootfs_target(rootfd, sub, false, true, &e);
      berth_error_clear(&e);
      p = sfd >= 0 ? rootfs_fdpath(sfd) : NULL;
      if (p) mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | mf | rootfs_locked_flags(p), NULL);
    } else if (mount(v2 ? "cgroup2" : "cgroup", p, v2 ? "cgroup2" : "cgroup", mf, v2 ? NULL : opts) < 0 &&
               mount(mnt, p, NULL, MS_BIND | MS_REC, NULL) == 0)
      mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | rootfs_locked_flags(p), NULL);
    /* cpu,cpuacct is also reachable as cpu and cpuacct */
    if (strchr(base, ',')) {
      cleanup_free char *copy = xstrdup(base);
      for (char *save_ = NULL, *tok = strtok_r(copy, ",", &save_); tok; tok = strtok_r(NULL, ",", &save_)) {
        cleanup_close int d = rootfs_target(rootfd, dest, false, true, &e);
        if (d >= 0 && symlinkat(base, d, tok) < 0 && errno != EEXIST) {}
        berth_error_clear(&e);
      }
    }
  }
  if (flags & MS_RDONLY) {
    cleanup_free char *p = rootfs_fdpath(tfd);
    if (mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | rootfs_locked_flags(p), NULL) < 0)
      berth_debug("cgroup tmpfs read-only: %s", strerror(errno));
  }
  return 0;
}

static bool host_cgroup_v2(void) {
  struct stat st;
  return stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
}

/* dest is dir or below it */
static bool path_under(const char *dest, const char *dir) {
  size_t n = strlen(dir);
  return !strncmp(dest, dir, n) && (dest[n] == '\0' || dest[n] == '/');
}

/* A target as written was checked; the image's symlinks may still lead it
 * to the root, /dev, or into /proc or /sys (mounted by now), where a mount
 * would cover the container's own setup (runc's CVE-2019-19921 class) */
static int target_redirected(int rootfd, int t, const char *dst, berth_error_t *err) {
  struct stat ts, rs, ds;
  struct statfs tf;
  bool bad = fstatfs(t, &tf) < 0 || tf.f_type == PROC_SUPER_MAGIC || tf.f_type == SYSFS_MAGIC || fstat(t, &ts) < 0 ||
             (fstat(rootfd, &rs) == 0 && rs.st_dev == ts.st_dev && rs.st_ino == ts.st_ino) ||
             (fstatat(rootfd, "dev", &ds, AT_SYMLINK_NOFOLLOW) == 0 && ds.st_dev == ts.st_dev && ds.st_ino == ts.st_ino);
  if (!bad) return 0;
  return berth_error(err, -EINVAL,
                     "mount target `%s` leads (through the image's symlinks) to `/`, `/dev`, or into `/proc` or "
                     "`/sys`; refusing to mount there",
                     dst);
}

int rootfs_spec_mount(const struct rootfs_spec *c, int rootfd, json_t *m, size_t idx, berth_error_t *err) {
  const char *dest = jstr(m, "destination"), *type = jstr(m, "type"), *src = jstr(m, "source");
  if (!dest || !*dest) return berth_error(err, -EINVAL, "mounts[%zu]: `destination` is required", idx);
  if (dest[0] != '/') return berth_error(err, -EINVAL, "mounts[%zu]: destination `%s` must be absolute", idx, dest);
  if (json_object_get(m, "uidMappings") || json_object_get(m, "gidMappings"))
    return berth_error(err, -ENOTSUP,
                       "mounts[%zu] (%s): idmapped mounts (uidMappings/gidMappings) are not supported by berth-oci yet; "
                       "drop the mapping or use runc/crun for this container",
                       idx, dest);
  struct mount_opts o;
  parse_mount_options(json_object_get(m, "options"), &o);
  bool bind = (o.flags & MS_BIND) || (type && !strcmp(type, "bind"));
  if (bind) o.flags |= MS_BIND;
  cleanup_free char *hsrc = bind ? bind_source(c, src) : NULL;
  bool is_file = false, regular = false;
  if (bind) {
    struct stat st;
    if (stat(hsrc, &st) < 0) return berth_error(err, errno, "mounts[%zu]: bind source `%s`", idx, hsrc);
    is_file = !S_ISDIR(st.st_mode);
    regular = S_ISREG(st.st_mode);
  }
  /* the caller's policy: a host directory's (or a tmpfs's) device nodes
   * stay closed to the container; a regular file is no device */
  if (c->nodev && !regular && (bind || (type && !strcmp(type, "tmpfs") && strcmp(dest, "/dev")))) o.flags |= MS_NODEV;
  /* /proc and /sys targets are the kernel's: no symlink on the way */
  bool sys = path_under(dest, "/proc") || path_under(dest, "/sys") || path_under(dest, "/dev");
  cleanup_close int tfd = rootfs_target(rootfd, dest, is_file, sys, err);
  if (tfd < 0) return berth_error_wrap(err, "mounts[%zu]", idx);
  if (!sys && target_redirected(rootfd, tfd, dest, err) < 0) return -1;
  cleanup_free char *tp = rootfs_fdpath(tfd);
  if (type && !strcmp(type, "cgroup")) {
    if (host_cgroup_v2()) {
      cleanup_free char *own = own_cgroup_dir(c->own_cgroups, "/sys/fs/cgroup", NULL);
      if (own && mount(own, tp, NULL, MS_BIND, NULL) == 0) {
        /* our own cgroup, bound (see mount_cgroup_v1) */
        close(tfd);
        tfd = rootfs_target(rootfd, dest, false, sys, err);
        if (tfd < 0) return -1;
        free(tp);
        tp = rootfs_fdpath(tfd);
        unsigned long mf = o.flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
        if (mount(NULL, tp, NULL, MS_BIND | MS_REMOUNT | mf | rootfs_locked_flags(tp), NULL) < 0)
          return berth_error(err, errno, "mounts[%zu]: cgroup2 at %s: its options", idx, dest);
      } else if (mount("cgroup2", tp, "cgroup2", o.flags & ~(MS_BIND | MS_REC), NULL) < 0 &&
                 mount("/sys/fs/cgroup", tp, NULL, MS_BIND | MS_REC, NULL) < 0)
        return berth_error(err, errno, "mounts[%zu]: cgroup2 at %s", idx, dest);
    } else if (mount_cgroup_v1(c, rootfd, tfd, dest, o.flags & ~(MS_BIND | MS_REC), err) < 0) return -1;
  } else if (bind) {
    if (mount(hsrc, tp, NULL, o.flags & (MS_BIND | MS_REC), NULL) < 0)
      return berth_error(err, errno, "mounts[%zu]: bind `%s` at %s", idx, hsrc, dest);
    unsigned long extra = o.flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
    if (extra) {
      /* the remount must be of the new mount: reopen the target */
      close(tfd);
      tfd = rootfs_target(rootfd, dest, is_file, sys, err);
      if (tfd < 0) return -1;
      free(tp);
      tp = rootfs_fdpath(tfd);
      if (mount(NULL, tp, NULL, MS_BIND | MS_REMOUNT | extra | rootfs_locked_flags(tp), NULL) < 0)
        return berth_error(err, errno, "mounts[%zu]: remount %s with its options", idx, dest);
    }
  } else {
    const char *t = type && *type ? type : src;
    if (!t) return berth_error(err, -EINVAL, "mounts[%zu] (%s): needs a `type`", idx, dest);
    int r = mount(src ? src : t, tp, t, o.flags & ~MS_REMOUNT, o.data[0] ? o.data : NULL);
    if (r < 0 && errno == EINVAL && !strcmp(t, "devpts") && strstr(o.data, "gid=")) {
      /* gid=5 (tty) is not mapped in most user namespaces: without it, as crun does */
      char nd[sizeof o.data] = "";
      size_t n = 0;
      cleanup_free char *copy = xstrdup(o.data);
      for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (!str_has_prefix(tok, "gid=")) n += (size_t)snprintf(nd + n, sizeof nd - n, "%s%s", n ? "," : "", tok);
      r = mount(src ? src : t, tp, t, o.flags & ~MS_REMOUNT, nd[0] ? nd : NULL);
    }
    if (r < 0) {
      int e = errno;
      /* in a user namespace the kernel refuses sysfs without a network
       * namespace of ours and mqueue without an IPC one: the host's, bound */
      const char *host = !strcmp(t, "sysfs") ? "/sys" : !strcmp(t, "mqueue") ? "/dev/mqueue" : NULL;
      if (!(host && (e == EPERM || e == EACCES) && mount(host, tp, NULL, MS_BIND | MS_REC, NULL) == 0))
        return berth_error(err, e, "mounts[%zu]: mount %s (%s) at %s", idx, src ? src : t, t, dest);
      if (o.flags & MS_RDONLY) {
        close(tfd);
        tfd = rootfs_target(rootfd, dest, false, sys, err);
        if (tfd < 0) return -1;
        free(tp);
        tp = rootfs_fdpath(tfd);
        mount(NULL, tp, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | rootfs_locked_flags(tp), NULL);
      }
    }
  }
  if (o.prop) {
    close(tfd);
    tfd = rootfs_target(rootfd, dest, is_file, sys, err);
    if (tfd < 0) return -1;
    free(tp);
    tp = rootfs_fdpath(tfd);
    if (mount(NULL, tp, NULL, o.prop, NULL) < 0) return berth_error(err, errno, "mounts[%zu]: propagation of %s", idx, dest);
  }
  return 0;
}

static const struct {
  const char *path;
  unsigned maj, min;
} DEFAULT_DEVS[] = {{"/dev/null", 1, 3},   {"/dev/zero", 1, 5},    {"/dev/full", 1, 7},
                    {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0}};

/* One device node: made with mknod, or, where that is not possible (a user
 * namespace, or a devices program that refuses mknod), the host's node
 * bound, when it is still the device asked for: a node swapped on the host
 * is not bound. host: the host's node (NULL: the same path). */
static int make_device(const struct rootfs_spec *c, int rootfd, int devfd, const char *path, const char *host, char type, unsigned maj,
                       unsigned min, mode_t mode, uid_t uid, gid_t gid, berth_error_t *err) {
  const char *rel = path;
  while (*rel == '/') rel++;
  cleanup_free char *dir = xstrdup(rel);
  char *slash = strrchr(dir, '/');
  const char *base = rel;
  cleanup_close int own = -1;
  int dfd;
  if (slash) {
    *slash = '\0';
    base = slash + 1;
    /* most nodes are right in /dev: its directory, opened once by the caller */
    dfd = devfd >= 0 && !strcmp(dir, "dev") ? devfd : (own = mkdir_in_root(rootfd, dir, 0755, RESOLVE_NO_SYMLINKS, err));
  } else dfd = own = openat_in_root(rootfd, "", O_PATH | O_DIRECTORY, 0, 0);
  if (dfd < 0) return berth_error_wrap(err, "device %s", path);
  unlinkat(dfd, base, 0);
  mode_t kind = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
  if (!c->in_userns || type == 'p') {
    if (mknodat(dfd, base, kind | (mode & 07777), makedev(maj, min)) == 0) {
      if (fchownat(dfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 && !c->in_userns) return berth_error(err, errno, "chown device %s", path);
      if (fchmodat(dfd, base, mode & 07777, 0) < 0) return berth_error(err, errno, "chmod device %s", path); /* past the umask */
      return 0;
    }
    if (errno != EPERM || type == 'p') return berth_error(err, errno, "create device %s", path);
  }
  if (!host) host = path;
  cleanup_close int hfd = open(host, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (hfd < 0 || fstat(hfd, &st) < 0 || (st.st_mode & S_IFMT) != kind || major(st.st_rdev) != maj || minor(st.st_rdev) != min)
    return berth_error(err, -EPERM,
                       "device %s (%c %u:%u): it cannot be created here (a user namespace, or the devices cgroup) and "
                       "the host's %s is not that device",
                       path, type, maj, min, host);
  int fd = openat(dfd, base, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return berth_error(err, errno, "create %s", path);
  close(fd);
  cleanup_close int t = openat(dfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (t < 0) return berth_error(err, errno, "open %s", path);
  cleanup_free char *src = rootfs_fdpath(hfd);
  return rootfs_mount_fd(src, t, NULL, MS_BIND, NULL, path, err);
}

/* Is /dev a bind mount (the host's /dev, or a directory of the caller's)?
 * Then its nodes are not the container's to make: creating them would
 * unlink and replace nodes there (runc skips them too). */
static bool dev_is_bound(json_t *spec) {
  size_t i, k;
  json_t *m, *o;
  json_array_foreach(json_object_get(spec, "mounts"), i, m) {
    const char *dest = jstr(m, "destination");
    if (!dest || (strcmp(dest, "/dev") && strcmp(dest, "/dev/"))) continue;
    if (!strcmp(jstr(m, "type") ?: "", "bind")) return true;
    json_array_foreach(json_object_get(m, "options"), k,
                       o) if (!strcmp(json_string_value(o) ?: "", "bind") || !strcmp(json_string_value(o) ?: "", "rbind")) return true;
  }
  return false;
}

int rootfs_spec_devices(const struct rootfs_spec *c, int rootfd, berth_error_t *err) {
  json_t *devs = json_object_get(json_object_get(c->spec, "linux"), "devices");
  size_t i;
  json_t *d;
  if (dev_is_bound(c->spec)) return 0;
  berth_error_t ignored = NULL;
  cleanup_close int devfd = mkdir_in_root(rootfd, "dev", 0755, RESOLVE_NO_SYMLINKS, &ignored); /* -1: each node opens its own */
  berth_error_free(ignored);
  json_array_foreach(devs, i, d) {
    const char *path = jstr(d, "path"), *type = jstr(d, "type");
    if (!path || path[0] != '/' || strstr(path, "/../") || str_has_suffix(path, "/..") || !type || !strchr("cbup", type[0]) || type[1])
      return berth_error(err, -EINVAL, "linux.devices[%zu]: needs an absolute `path` without `..` and a `type` of c, b, u or p", i);
    json_t *fm = json_object_get(d, "fileMode");
    mode_t mode = fm ? (mode_t)json_integer_value(fm) : 0666;
    uid_t uid = json_object_get(d, "uid") ? (uid_t)json_integer_value(json_object_get(d, "uid")) : 0;
    gid_t gid = json_object_get(d, "gid") ? (gid_t)json_integer_value(json_object_get(d, "gid")) : 0;
    if (make_device(c, rootfd, devfd, path, jstr(c->device_sources, path), type[0] == 'u' ? 'c' : type[0],
                    (unsigned)json_integer_value(json_object_get(d, "major")), (unsigned)json_integer_value(json_object_get(d, "minor")),
                    mode, uid, gid, err) < 0)
      return -1;
  }
  for (size_t k = 0; k < sizeof DEFAULT_DEVS / sizeof *DEFAULT_DEVS; k++) {
    bool listed = false;
    json_array_foreach(devs, i, d) if (!strcmp(jstr(d, "path") ?: "", DEFAULT_DEVS[k].path)) listed = true;
    if (!listed &&
        make_device(c, rootfd, devfd, DEFAULT_DEVS[k].path, NULL, 'c', DEFAULT_DEVS[k].maj, DEFAULT_DEVS[k].min, 0666, 0, 0, err) < 0)
      return -1;
  }
  int dev = devfd;
  if (dev < 0) return 0;
  static const char *links[][2] = {
      {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
  for (size_t k = 0; k < 4; k++)
    if (symlinkat(links[k][0], dev, links[k][1]) < 0 && errno != EEXIST) return berth_error(err, errno, "/dev/%s", links[k][1]);
  struct stat st;
  if (fstatat(dev, "pts/ptmx", &st, 0) == 0) {
    if (fstatat(dev, "ptmx", &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISLNK(st.st_mode)) unlinkat(dev, "ptmx", 0);
    if (symlinkat("pts/ptmx", dev, "ptmx") < 0 && errno != EEXIST) return berth_error(err, errno, "/dev/ptmx");
  }
  return 0;
}

int rootfs_spec_mounts(const struct rootfs_spec *c, int rootfd, berth_error_t *err) {
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(c->spec, "mounts"), i, m) if (rootfs_spec_mount(c, rootfd, m, i, err) < 0) return -1;
  return 0;
}
