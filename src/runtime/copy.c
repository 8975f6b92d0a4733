/* copy_in / copy_out: files between the host and a running container.
 * The container side is reached through /proc/<init>/root and every path
 * there is resolved with openat2(RESOLVE_IN_ROOT); final components are
 * never followed, so a symlink planted in the container cannot turn a copy
 * into a read or write of a host file. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

#include "config.h"
#include "container.h"

/* owner for everything created (uid -1: the creating process's) */
struct copy_owner {
  uid_t uid;
  gid_t gid;
};
static const struct copy_owner KEEP = {(uid_t)-1, (gid_t)-1};
static int copy_entry(int sdir, const char *sname, int ddir, const char *dname, int depth, const struct copy_owner *ow,
                      berth_error_t *err);

static int copy_file(int sdir, const char *sname, int ddir, const char *dname, const struct stat *st,
                     const struct copy_owner *ow, berth_error_t *err) {
  cleanup_close int in = openat(sdir, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) return berth_error(err, errno, "open `%s`", sname);
  struct stat cur;
  if (fstatat(ddir, dname, &cur, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(cur.st_mode)) {
    if (S_ISDIR(cur.st_mode)) return berth_error(err, -EISDIR, "`%s` is a directory", dname);
    unlinkat(ddir, dname, 0); /* a symlink or device there is replaced, never written through */
  }
  cleanup_close int out = openat(ddir, dname, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, st->st_mode & 0777);
  if (out < 0) return berth_error(err, errno, "create `%s`", dname);
  off_t left = st->st_size;
  while (left > 0) {
    ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) n = sendfile(out, in, NULL, (size_t)left);
    if (n < 0) return berth_error(err, errno, "copy `%s`", sname);
    if (n == 0) break;
    left -= n;
  }
  if (ow->uid != (uid_t)-1 && fchown(out, ow->uid, ow->gid) < 0) return berth_error(err, errno, "chown `%s`", dname);
  if (fchmod(out, st->st_mode & 07777) < 0) {}
  return 0;
}

static int copy_dir(int sdir, const char *sname, int ddir, const char *dname, const struct stat *st, int depth,
                    const struct copy_owner *ow, berth_error_t *err) {
  if (depth > 128) return berth_error(err, -ELOOP, "directory tree deeper than 128 levels");
  if (mkdirat(ddir, dname, st->st_mode & 07777) < 0 && errno != EEXIST) return berth_error(err, errno, "create `%s`", dname);
  cleanup_close int s = openat(sdir, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (s < 0) return berth_error(err, errno, "open `%s`", sname);
  cleanup_close int d = openat(ddir, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (d < 0) return berth_error(err, errno, "open `%s`", dname);
  if (ow->uid != (uid_t)-1 && fchown(d, ow->uid, ow->gid) < 0) return berth_error(err, errno, "chown `%s`", dname);
  DIR *dd = fdopendir(dup(s));
  if (!dd) return berth_error(err, errno, "list `%s`", sname);
  struct dirent *de;
  int r = 0;
  while (r == 0 && (de = readdir(dd))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    r = copy_entry(s, de->d_name, d, de->d_name, depth + 1, ow, err);
  }
  closedir(dd);
  return r;
}

static int copy_entry(int sdir, const char *sname, int ddir, const char *dname, int depth, const struct copy_owner *ow,
                      berth_error_t *err) {
  struct stat st;
  if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0) return berth_error(err, errno, "stat `%s`", sname);
  if (S_ISREG(st.st_mode)) return copy_file(sdir, sname, ddir, dname, &st, ow, err);
  if (S_ISDIR(st.st_mode)) return copy_dir(sdir, sname, ddir, dname, &st, depth, ow, err);
  if (S_ISLNK(st.st_mode)) {
    char t[4096];
    ssize_t n = readlinkat(sdir, sname, t, sizeof t - 1);
    if (n < 0) return berth_error(err, errno, "read link `%s`", sname);
    t[n] = '\0';
    unlinkat(ddir, dname, 0);
    if (symlinkat(t, ddir, dname) < 0) return berth_error(err, errno, "create link `%s`", dname);
    if (ow->uid != (uid_t)-1) fchownat(ddir, dname, ow->uid, ow->gid, AT_SYMLINK_NOFOLLOW);
    return 0;
  }
  return 0; /* devices, fifos and sockets are not copied */
}

static bool clean_abs(const char *p) {
  return p && p[0] == '/' && strlen(p) < 4096 && !strstr(p, "/../") && !str_has_suffix(p, "/..");
}

int container_copy(const char *name, const char *host_path, const char *cpath_, bool into, berth_error_t *err) {
  if (!clean_abs(cpath_)) return berth_error(err, -EINVAL, "container_path must be an absolute path without `..`");
  if (!host_path || !*host_path) return berth_error(err, -EINVAL, "host_path is required");
  json_t *st = NULL;
  if (container_status(name, false, &st, err) < 0) return -1;
  bool running = json_is_true(json_object_get(st, "running"));
  json_int_t pid = json_integer_value(json_object_get(json_object_get(st, "metadata"), "pid"));
  json_decref(st);
  if (!running) return berth_error(err, -ESRCH, "container %s is not running", name);
  char rootp[64];
  snprintf(rootp, sizeof rootp, "/proc/%lld/root", (long long)pid);
  cleanup_close int rootfd = open(rootp, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return berth_error(err, errno, "open the root of container %s", name);

  cleanup_free char *cp = strdup(cpath_);
  cleanup_free char *cp2 = strdup(cpath_);
  char *cdir = dirname(cp), *cbase = basename(cp2);
  cleanup_free char *hp = strdup(host_path);
  cleanup_free char *hp2 = strdup(host_path);
  char *hdir = dirname(hp), *hbase = basename(hp2);
  if (into) {
    cleanup_close int hd = open(hdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (hd < 0) return berth_error(err, errno, "host_path `%s`", host_path);
    cleanup_close int cd = -1;
    const char *dname = cbase;
    /* an existing directory (or a trailing /) receives the source under its own name */
    int existing = openat_in_root(rootfd, cpath_ + 1, O_PATH | O_DIRECTORY, 0, 0);
    if (existing >= 0) {
      cd = existing;
      dname = hbase;
    } else {
      if (existing >= 0) close(existing);
      cd = mkdir_in_root(rootfd, cdir + 1, 0755, 0, err);
      if (cd < 0) return berth_error_wrap(err, "container_path `%s`", cpath_);
    }
    cleanup_close int cdr = openat(cd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cdr < 0) return berth_error(err, errno, "open `%s` in the container", cdir);
    return copy_entry(hd, hbase, cdr, dname, 0, &KEEP, err);
  }
  cleanup_close int cd = openat_in_root(rootfd, *cdir == '/' ? cdir + 1 : cdir, O_RDONLY | O_DIRECTORY, 0, 0);
  if (cd < 0) return berth_error(err, errno, "container_path `%s`", cpath_);
  struct stat hs;
  const char *dname = hbase;
  cleanup_close int hd = -1;
  if (stat(host_path, &hs) == 0 && S_ISDIR(hs.st_mode)) {
    hd = open(host_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    dname = !strcmp(cbase, "/") ? "root" : cbase;
  } else
    hd = open(hdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (hd < 0) return berth_error(err, errno, "host_path `%s`", host_path);
  return copy_entry(cd, !strcmp(cbase, "/") ? "." : cbase, hd, dname, 0, &KEEP, err);
}

int copy_tree_owned(int sdir, const char *sname, int ddir, const char *dname, uid_t uid, gid_t gid, berth_error_t *err) {
  struct copy_owner ow = {uid, gid};
  return copy_entry(sdir, sname, ddir, dname, 0, &ow, err);
}
