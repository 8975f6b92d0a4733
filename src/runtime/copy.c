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

#include "util/config.h"
#include "runtime/container.h"

/* owner for everything created (uid -1: the creating process's), and
 * whether set-user-ID and set-group-ID bits survive */
struct copy_owner {
  uid_t uid;
  gid_t gid;
  bool keep_setid;
};
static int copy_entry(int sdir, const char *sname, int ddir, const char *dname, int depth, const struct copy_owner *ow, berth_error_t *err);

static int copy_file(int sdir, const char *sname, int ddir, const char *dname, const struct stat *st, const struct copy_owner *ow,
                     berth_error_t *err) {
  /* never waiting on what was swapped in since the stat (a FIFO would hang
   * us): the opened file must be the regular file we looked at */
  cleanup_close int in = openat(sdir, sname, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (in < 0) return berth_error(err, errno, "open `%s`", sname);
  struct stat now;
  if (fstat(in, &now) < 0 || !S_ISREG(now.st_mode) || now.st_ino != st->st_ino || now.st_dev != st->st_dev)
    return berth_error(err, -EAGAIN, "`%s` changed while it was copied (it is no longer the regular file it was); copy again", sname);
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
  /* a set-user-ID file made in a container would give its owner's ids to
   * whoever runs the copy on the host (Docker keeps them; --archive does) */
  if (fchmod(out, st->st_mode & (ow->keep_setid ? 07777 : 01777)) < 0) {}
  return 0;
}

static int copy_dir(int sdir, const char *sname, int ddir, const char *dname, const struct stat *st, int depth, const struct copy_owner *ow,
                    berth_error_t *err) {
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
  return 0; /* devices, fifos and sockets are not copied (never opened) */
}

static bool clean_abs(const char *p) { return p && p[0] == '/' && strlen(p) < 4096 && !strstr(p, "/../") && !str_has_suffix(p, "/.."); }

/* PATH with ".." and "." taken out lexically, never above "/" (as the
 * kernel's in-root resolution clamps them); always absolute */
static char *clamp_path(const char *path) {
  size_t n = strlen(path);
  char *out = malloc(n + 2);
  if (!out) return NULL;
  size_t len = 0;
  for (const char *c = path; *c;) {
    while (*c == '/') c++;
    const char *e = strchrnul(c, '/');
    size_t l = (size_t)(e - c);
    if (l == 2 && c[0] == '.' && c[1] == '.') {
      while (len > 0 && out[len - 1] != '/') len--;
      if (len > 0) len--; /* the slash before it */
    } else if (l && !(l == 1 && *c == '.')) {
      out[len++] = '/';
      memcpy(out + len, c, l);
      len += l;
    }
    c = e;
  }
  if (!len) out[len++] = '/';
  out[len] = '\0';
  return out;
}

/* follow the links at the end of PATH inside the root (40 at most, as the
 * kernel does); *out is the path of what they lead to */
static int resolve_in_root(int rootfd, const char *path, char **out, berth_error_t *err) {
  char *cur = clamp_path(path);
  for (int hops = 0; cur; hops++) {
    if (!strcmp(cur, "/")) break;
    char *slash = strrchr(cur, '/');
    cleanup_free char *dir = strndup(cur, (size_t)(slash - cur));
    cleanup_close int dfd = openat_in_root(rootfd, *dir ? dir + 1 : "", O_PATH | O_DIRECTORY, 0, 0);
    struct stat st;
    if (dfd < 0 || fstatat(dfd, slash + 1, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode)) break;
    if (hops == 40) {
      free(cur);
      return berth_error(err, -ELOOP, "container_path `%s`: too many levels of links (in the container)", path);
    }
    char t[4096];
    ssize_t n = readlinkat(dfd, slash + 1, t, sizeof t - 1);
    if (n < 0) {
      int e = errno;
      free(cur);
      return berth_error(err, e, "read the link `%s` in the container", path);
    }
    t[n] = '\0';
    cleanup_free char *next = t[0] == '/' ? strdup(t) : xasprintf("%s/%s", dir, t);
    free(cur);
    cur = next ? clamp_path(next) : NULL;
  }
  if (!cur) return berth_error(err, -ENOMEM, "out of memory");
  *out = cur;
  return 0;
}

int container_copy(const char *name, const char *host_path, const char *cpath_, bool into, unsigned flags, berth_error_t *err) {
  const struct copy_owner ow = {(uid_t)-1, (gid_t)-1, !into && (flags & COPY_KEEP_SETID)};
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

  /* -L: links at the path are followed, resolved inside the container's root */
  cleanup_free char *resolved = NULL;
  if (!into && (flags & COPY_FOLLOW_LINKS)) {
    if (resolve_in_root(rootfd, cpath_, &resolved, err) < 0) return -1;
    cpath_ = resolved;
  }
  cleanup_free char *cp = strdup(cpath_);
  cleanup_free char *cp2 = strdup(cpath_);
  char *cdir = dirname(cp), *cbase = basename(cp2);
  cleanup_free char *hp = strdup(host_path);
  cleanup_free char *hp2 = strdup(host_path);
  char *hdir = dirname(hp), *hbase = basename(hp2);
  if (into) {
    cleanup_close int hd = open(hdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (hd < 0) return berth_error(err, errno, "host_path `%s` (on the host)", host_path);
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
    if (faccessat(hd, hbase, F_OK, AT_SYMLINK_NOFOLLOW) < 0) return berth_error(err, errno, "host_path `%s` (on the host)", host_path);
    return copy_entry(hd, hbase, cdr, dname, 0, &ow, err);
  }
  cleanup_close int cd = openat_in_root(rootfd, *cdir == '/' ? cdir + 1 : cdir, O_RDONLY | O_DIRECTORY, 0, 0);
  if (cd < 0) return berth_error(err, errno, "container_path `%s` (in the container)", cpath_);
  struct stat hs;
  const char *dname = hbase;
  cleanup_close int hd = -1;
  if (stat(host_path, &hs) == 0 && S_ISDIR(hs.st_mode)) {
    hd = open(host_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    dname = !strcmp(cbase, "/") ? "root" : cbase;
  } else hd = open(hdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (hd < 0) return berth_error(err, errno, "host_path `%s` (on the host)", host_path);
  if (faccessat(cd, !strcmp(cbase, "/") ? "." : cbase, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
    return berth_error(err, errno, "container_path `%s` (in the container)", cpath_);
  return copy_entry(cd, !strcmp(cbase, "/") ? "." : cbase, hd, dname, 0, &ow, err);
}

int copy_tree_owned(int sdir, const char *sname, int ddir, const char *dname, uid_t uid, gid_t gid, berth_error_t *err) {
  struct copy_owner ow = {uid, gid, true}; /* into a container: as the host has it */
  return copy_entry(sdir, sname, ddir, dname, 0, &ow, err);
}
