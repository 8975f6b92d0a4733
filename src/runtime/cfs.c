/* Filesystem changes inside a running container (provisioning: git
 * config, ssh keys, dotfiles). A helper joins the container's user and
 * mount namespaces, so "/" is the container's root, image ids are real
 * ids there, and the container's own /etc/passwd says who "~" is. Every
 * lookup is confined with openat2(RESOLVE_IN_ROOT); nothing from the image
 * is executed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/openat2.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "util/config.h"
#include "runtime/container.h"
#include "runtime/container_internal.h"

static char *expand(const char *path, const struct user_ids *u) {
  const char *home = u->home[0] == '/' ? u->home + 1 : u->home;
  if (!strcmp(path, "~")) return strdup(home);
  if (str_has_prefix(path, "~/")) return *home ? xasprintf("%s/%s", home, path + 2) : strdup(path + 2);
  while (*path == '/') path++;
  return strdup(path);
}

static bool rel_ok(const char *rel) {
  return *rel && strlen(rel) < 4096 && !strstr(rel, "/../") && strncmp(rel, "../", 3) && !str_has_suffix(rel, "/..") && strcmp(rel, "..");
}

static int apply_one(int rootfd, const struct cfs_op *op, const struct user_ids *u, berth_error_t *err) {
  cleanup_free char *rel = expand(op->path, u);
  if (!rel_ok(rel)) return berth_error(err, -EINVAL, "path `%.200s` must stay inside the container (no `..`)", op->path);
  if (op->kind == CFS_MKDIR) {
    int fd = mkdir_in_root_owned(rootfd, rel, 0755, 0, u->uid, u->gid, err);
    if (fd < 0) return -1;
    /* not via /proc/self: this helper has no pid in the container's /proc */
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(fd);
    if (dfd >= 0 && op->mode) fchmod(dfd, op->mode);
    if (dfd >= 0) close(dfd);
    return 0;
  }
  cleanup_free char *copy = strdup(rel);
  char *slash = strrchr(copy, '/');
  const char *base = slash ? slash + 1 : copy;
  if (slash) *slash = '\0';
  int ppath =
      slash ? mkdir_in_root_owned(rootfd, copy, 0755, 0, u->uid, u->gid, err) : openat_in_root(rootfd, "", O_PATH | O_DIRECTORY, 0, 0);
  if (ppath < 0) return -1;
  cleanup_close int parent = openat(ppath, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  close(ppath);
  if (parent < 0) return berth_error(err, errno, "open `/%s`", copy);
  struct stat st;
  bool exists = fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
  switch (op->kind) {
  case CFS_WRITE: {
    if (exists && (op->replace || !S_ISREG(st.st_mode))) {
      if (S_ISDIR(st.st_mode)) return berth_error(err, -EISDIR, "`%s` is a directory", op->path);
      unlinkat(parent, base, 0); /* never write through a symlink */
    }
    cleanup_close int fd = openat(parent, base, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, op->mode ? op->mode : 0644);
    if (fd < 0) return berth_error(err, errno, "create `%s`", op->path);
    for (size_t off = 0; off < op->len;) {
      ssize_t w = write(fd, op->data + off, op->len - off);
      if (w < 0) return berth_error(err, errno, "write `%s`", op->path);
      off += (size_t)w;
    }
    if (fchown(fd, u->uid, u->gid) < 0) return berth_error(err, errno, "chown `%s`", op->path);
    fchmod(fd, op->mode ? op->mode : 0644);
    return 0;
  }
  case CFS_SYMLINK:
    if (exists) {
      if (!op->replace) return 0;
      if (S_ISDIR(st.st_mode)) return berth_error(err, -EISDIR, "`%s` is a directory", op->path);
      unlinkat(parent, base, 0);
    }
    if (symlinkat(op->data, parent, base) < 0) return berth_error(err, errno, "link `%s`", op->path);
    fchownat(parent, base, u->uid, u->gid, AT_SYMLINK_NOFOLLOW);
    return 0;
  case CFS_COPY: return copy_tree_owned(op->host_dirfd, op->host_name, parent, base, u->uid, u->gid, err);
  default: return berth_error(err, -EINVAL, "unknown operation");
  }
}

int container_fs_apply(const char *name, const char *user, const struct cfs_op *ops, size_t n, berth_error_t *err) {
  struct berth_config *cfg = config_get(err);
  if (!cfg) return -1;
  json_t *st = NULL;
  if (container_status(name, false, &st, err) < 0) return -1;
  bool running = json_is_true(json_object_get(st, "running"));
  pid_t pid = (pid_t)json_integer_value(json_object_get(json_object_get(st, "metadata"), "pid"));
  json_decref(st);
  if (!running) return berth_error(err, -ESRCH, "container %s is not running", name);
  cleanup_free char *cp = cpath(name, "config.json");
  json_t *spec = cp ? json_load_file(cp, 0, NULL) : NULL;
  cleanup_free char *defuser = strdup(json_string_value(json_object_get(json_object_get(spec, "annotations"), "berth.user")) ?: "0");
  json_decref(spec);
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/ns/user", (int)pid);
  cleanup_close int userns = cfg->rootless ? open(p, O_RDONLY | O_CLOEXEC) : -1;
  snprintf(p, sizeof p, "/proc/%d/ns/mnt", (int)pid);
  cleanup_close int mntns = open(p, O_RDONLY | O_CLOEXEC);
  if (mntns < 0 || (cfg->rootless && userns < 0)) return berth_error(err, errno, "open the namespaces of container %s", name);
  int ep[2];
  if (pipe2(ep, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  fflush(stdout);
  fflush(stderr);
  pid_t c = fork();
  if (c < 0) return berth_error(err, errno, "fork");
  if (c == 0) {
    close(ep[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* in the container's mount namespace, as berth */
    proc_set_title("berth-fs");
    berth_error_t e = NULL;
    if ((userns >= 0 && setns(userns, CLONE_NEWUSER) < 0) || setns(mntns, CLONE_NEWNS) < 0 ||
        (userns >= 0 && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) || chdir("/") < 0) {
      berth_error(&e, errno, "join container %s", name);
    } else {
      struct user_ids u;
      char msg[512];
      if (container_lookup_user(user ? user : defuser, &u, msg, sizeof msg) < 0) berth_error(&e, -EINVAL, "%s", msg);
      int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
      umask(022);
      for (size_t i = 0; i < n && !e; i++) apply_one(rootfd, &ops[i], &u, &e);
    }
    if (e && e->msg) {
      if (write(ep[1], e->msg, strlen(e->msg)) < 0) {}
    }
    _exit(e ? 1 : 0);
  }
  close(ep[1]);
  struct buf msg = {0};
  char tmp[1024];
  ssize_t r;
  while ((r = read(ep[0], tmp, sizeof tmp)) > 0) buf_append(&msg, tmp, (size_t)r);
  close(ep[0]);
  int wst = 0;
  while (waitpid(c, &wst, 0) < 0 && errno == EINTR) {}
  int ret = 0;
  if (msg.len) ret = berth_error(err, -EIO, "%s", msg.data);
  else if (!WIFEXITED(wst) || WEXITSTATUS(wst)) ret = berth_error(err, -EIO, "the helper writing into container %s failed", name);
  buf_free(&msg);
  return ret;
}
