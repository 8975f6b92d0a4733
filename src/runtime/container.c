/* Container lifecycle.
 *
 *   berth create ── fork ── setsid ── fork ──> monitor (outlives the CLI)
 *                                               └─ clone(new namespaces) ──> berth init (PID 1)
 *
 * The monitor maps ids (rootless), puts init into the cgroup, lets it set up
 * the root filesystem, reports success or the exact error back to the CLI,
 * then waits for init and records its end. Init mounts the overlay and
 * /proc, /dev, /sys inside its own mount namespace (so the host never sees
 * them), pivots into the root and reaps orphans until told to stop. */
#define _GNU_SOURCE
#include "container.h"
#include "network.h"
#include "egress.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "berth.h"
#include "cdi.h"
#include "config.h"
#include "disk.h"
#include "logs.h"
#include "hooks.h"
#include "preflight.h"
#include "rootfs.h"
#include "security.h"
#include "spec.h"
#include "store.h"
#include "userns.h"

/* ---------- paths, state ---------- */
static char *containers_dir(berth_error_t *err) {
  struct berth_config *cfg = config_get(err);
  return cfg ? xasprintf("%s/containers", cfg->data_dir) : NULL;
}

static char *cpath(const char *name, const char *file) {
  cleanup_error berth_error_t e = NULL;
  cleanup_free char *d = containers_dir(&e);
  if (!d) return NULL;
  return file ? xasprintf("%s/%s/%s", d, name, file) : xasprintf("%s/%s", d, name);
}

bool container_name_valid(const char *n) { return name_valid(n); }

char *container_random_name(const char *prefix) {
  cleanup_free char *h = random_hex(3);
  return xasprintf("%s-%s", prefix && *prefix ? prefix : "env", h ? h : "000000");
}

static json_t *state_read(const char *name) {
  cleanup_free char *p = cpath(name, "state.json");
  return p ? json_load_file(p, 0, NULL) : NULL;
}

char *container_dir(const char *name) { return container_name_valid(name) ? cpath(name, NULL) : NULL; }
json_t *container_state(const char *name) { return container_name_valid(name) ? state_read(name) : NULL; }

static int state_write(const char *name, json_t *st, berth_error_t *err) {
  cleanup_free char *p = cpath(name, "state.json");
  cleanup_free char *txt = json_dumps(st, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (!p || !txt) return berth_error(err, -ENOMEM, "state");
  /* no fsync on the start path: the monitor syncs the record once the
   * container runs (state_sync), and liveness is read from /proc anyway.
   * A `run --rm` container's record goes with it: it need never reach the
   * disk (write_file_swap) */
  if (json_is_true(json_object_get(st, "remove_on_exit"))) return write_file_swap(p, txt, strlen(txt), 0600, err);
  return write_file_replace(p, txt, strlen(txt), 0600, false, err);
}

/* state_write where no caller takes the error: a failure is logged, not lost */
static void state_write_warn(const char *name, json_t *st, const char *what) {
  cleanup_error berth_error_t e = NULL;
  if (state_write(name, st, &e) < 0) berth_warn("recording %s of %s: %s", what, name, e && e->msg ? e->msg : "failed");
}

static void state_sync(const char *name) {
  cleanup_free char *p = cpath(name, "state.json");
  int fd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
  if (fd >= 0) {
    if (fsync(fd) < 0) {}
    close(fd);
  }
}

static int container_lock(const char *name, berth_error_t *err) {
  cleanup_free char *p = cpath(name, "lock");
  if (!p) return berth_error(err, -ENOMEM, "lock");
  int fd = open(p, O_RDWR | O_CLOEXEC);
  if (fd < 0) return berth_error(err, errno == ENOENT ? -ENOENT : errno, errno == ENOENT ? "Container not found: %s" : "lock container %s", name);
  if (flock(fd, LOCK_EX) < 0) {
    close(fd);
    return berth_error(err, errno, "lock container %s", name);
  }
  return fd;
}

/* Is the process recorded as `field` (pid + starttime) still that process? */
static bool state_proc_alive(json_t *st, const char *field) {
  json_t *p = json_object_get(st, field);
  pid_t pid = (pid_t)json_integer_value(json_object_get(p, "pid"));
  unsigned long long t = (unsigned long long)json_integer_value(json_object_get(p, "starttime"));
  cleanup_free char *b = boot_id_read();
  const char *sb = json_string_value(json_object_get(st, "boot_id"));
  if (!sb || strcmp(sb, b)) return false; /* rebooted since */
  return pid > 0 && t && proc_starttime(pid) == t;
}

/* the spec's devices allow-list, for cgroup_create */
static json_t *spec_devices(json_t *spec) {
  return json_object_get(json_object_get(json_object_get(spec, "linux"), "resources"), "devices");
}

static json_t *proc_ref(pid_t pid) {
  return json_pack("{s:i, s:I}", "pid", (int)pid, "starttime", (json_int_t)proc_starttime(pid));
}

/* ---------- init: everything below runs in the new namespaces ---------- */
struct init_args {
  json_t *spec;
  const char *cdir, *name;
  pid_t host_pid; /* ours as the host sees it (for hooks' state), from the launcher */
  int sync_fd;   /* read: monitor says go */
  int report_fd; /* write: "" on success or an error message */
  bool rootless, single_map;
  const char *note; /* success with a remark (e.g. the copied root) */
  /* berth run: the command, started by init once set up; it waits for a
   * go byte on run_go (the launcher sends it when the network is up) */
  const struct exec_opts *run;
  json_t *run_env; /* ["K=V"]: the caller's variables */
  int run_go, pty_sock, out_fd, err_fd;
  /* the upper layer is thrown away with the container (run --rm): overlay
   * may skip syncing it (`volatile`), which spares the unmount a flush of
   * the store's filesystem */
  bool volatile_upper;
  /* the second go byte was read early (to ask for fuse-overlayfs) */
  bool second_go_done, lo_done;
};

static int init_fail(struct init_args *a, berth_error_t err) {
  const char *m = err && err->msg ? err->msg : "container setup failed";
  if (write(a->report_fd, m, strlen(m)) < 0) {}
  _exit(1);
}

/* ---- the fallback when overlayfs cannot be mounted: a copied root ----
 * Layers are applied bottom-up into the container's upper dir as a plain
 * tree: whiteouts (0/0 character devices) delete, opaque directories are
 * emptied first; owners, modes, times, links and xattrs are kept. Slower to
 * create and bigger on disk, but the container works, and says so. */
static bool dir_opaque(int fd) {
  char v[4];
  ssize_t n = fgetxattr(fd, "trusted.overlay.opaque", v, sizeof v);
  if (n < 1) n = fgetxattr(fd, "user.overlay.opaque", v, sizeof v);
  return n >= 1 && v[0] == 'y';
}

static int apply_layer_dir(int src, int dst, int depth, berth_error_t *err) {
  if (depth > 256) return berth_error(err, -ELOOP, "layer tree too deep");
  DIR *d = fdopendir(dup(src));
  if (!d) return berth_error(err, errno, "read layer");
  struct dirent *de;
  int r = 0;
  while (r == 0 && (de = readdir(d))) {
    const char *nm = de->d_name;
    if (!strcmp(nm, ".") || !strcmp(nm, "..")) continue;
    struct stat st;
    if (fstatat(src, nm, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      r = berth_error(err, errno, "stat `%s` in a layer", nm);
      break;
    }
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) { /* whiteout */
      r = rm_rf_at(dst, nm, err);
      continue;
    }
    struct stat cur;
    bool exists = fstatat(dst, nm, &cur, AT_SYMLINK_NOFOLLOW) == 0;
    if (S_ISDIR(st.st_mode)) {
      int sfd = openat(src, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sfd < 0) {
        r = berth_error(err, errno, "open `%s` in a layer", nm);
        break;
      }
      if (exists && (!S_ISDIR(cur.st_mode) || dir_opaque(sfd))) r = rm_rf_at(dst, nm, err), exists = false;
      if (r == 0 && !exists && mkdirat(dst, nm, st.st_mode & 07777) < 0) r = berth_error(err, errno, "create `%s`", nm);
      int dfd = r == 0 ? openat(dst, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
      if (r == 0 && dfd < 0) r = berth_error(err, errno, "open `%s`", nm);
      if (r == 0) {
        if (fchown(dfd, st.st_uid, st.st_gid) < 0) {}
        fchmod(dfd, st.st_mode & 07777);
        r = apply_layer_dir(sfd, dfd, depth + 1, err);
        struct timespec ts[2] = {st.st_atim, st.st_mtim};
        futimens(dfd, ts);
      }
      if (dfd >= 0) close(dfd);
      close(sfd);
      continue;
    }
    if (exists) r = rm_rf_at(dst, nm, err);
    if (r == 0) r = copy_tree_owned(src, nm, dst, nm, st.st_uid, st.st_gid, err);
    if (r == 0 && !S_ISLNK(st.st_mode)) {
      fchmodat(dst, nm, st.st_mode & 07777, 0); /* chown clears setuid: set the mode after it */
      struct timespec ts[2] = {st.st_atim, st.st_mtim};
      utimensat(dst, nm, ts, AT_SYMLINK_NOFOLLOW);
    }
  }
  closedir(d);
  return r;
}

static int copy_rootfs(json_t *lowers, const char *upper, const char *rootfs, berth_error_t *err) {
  cleanup_close int dst = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dst < 0) return berth_error(err, errno, "open `%s`", upper);
  size_t i;
  json_t *v;
  json_array_foreach(lowers, i, v) { /* bottom layer first */
    cleanup_close int src = open(json_string_value(v), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (src < 0) return berth_error(err, errno, "open layer `%s`", json_string_value(v));
    if (apply_layer_dir(src, dst, 0, err) < 0) return -1;
  }
  if (mount(upper, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) return berth_error(err, errno, "bind the copied root filesystem");
  /* nodev, as the overlay root (a bind takes its flags on a remount) */
  if (mount(NULL, rootfs, NULL, MS_BIND | MS_REMOUNT | MS_NODEV | rootfs_locked_flags(rootfs), NULL) < 0)
    return berth_error(err, errno, "make the copied root filesystem nodev");
  return 0;
}

static int init_second_go(struct init_args *a, berth_error_t *err);
static bool read_full(int fd, void *buf, size_t n);

/* Ask the launcher to serve our root with fuse-overlayfs. It runs it in
 * our mount (and user) namespace but outside our pid namespace: a daemon
 * among the container's processes would hand them its descriptors of the
 * host's layer directories through /proc/PID/fd. True once it is mounted. */
static bool init_fuse_root(struct init_args *a) {
  if (!fuse_overlayfs_path()) return false;
  berth_error_t e = NULL;
  if (!a->second_go_done && init_second_go(a, &e) < 0) { /* the request channel opens with it */
    berth_error_free(e);
    return false;
  }
  char req = '\x02', ack = 0;
  if (write(a->report_fd, &req, 1) != 1 || !read_full(a->sync_fd, &ack, 1)) return false;
  return ack == 1;
}

static int mount_overlay(struct init_args *a, const char *rootfs, berth_error_t *err) {
  json_t *ann = json_object_get(a->spec, "annotations");
  json_t *lowers = json_loads(json_string_value(json_object_get(ann, "berth.lowerdirs")) ?: "[]", 0, NULL);
  const char *upper = json_string_value(json_object_get(ann, "berth.upperdir"));
  const char *work = json_string_value(json_object_get(ann, "berth.workdir"));
  size_t n = json_array_size(lowers);
  int ret = -1;
  if (!n || !upper || !work) {
    json_decref(lowers);
    return berth_error(err, -EINVAL, "container spec lacks overlay layers");
  }
  const char *mode = json_string_value(json_object_get(ann, "berth.rootfs"));
  if (mode && !strcmp(mode, "copy")) { /* asked for (config `rootfs: "copy"`) */
    int r = copy_rootfs(lowers, upper, rootfs, err);
    json_decref(lowers);
    if (r == 0) a->note = "root filesystem copied from the layers (config `rootfs`: copy)";
    return r;
  }
  if (mode && !strcmp(mode, "fuse")) { /* asked for (config `rootfs: "fuse"`) */
    json_decref(lowers);
    if (init_fuse_root(a)) {
      a->note = "root filesystem served by fuse-overlayfs (config `rootfs`: fuse)";
      return 0;
    }
    return berth_error(err, -ENOTSUP, "config `rootfs` is fuse, but fuse-overlayfs could not serve the root filesystem "
                                      "(is it installed, and /dev/fuse open to you? %s)", advice("see `berth preflight`", "see the preflight operation"));
  }
  /* new mount API: one lowerdir+ per layer, no option-length limit (6.8+) */
  int fsfd = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (fsfd >= 0) {
    bool ok = true;
    for (size_t i = n; i-- > 0 && ok;) /* topmost layer first */
      ok = syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "lowerdir+", json_string_value(json_array_get(lowers, i)), 0) == 0;
    if (ok) {
      ok = syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0) == 0 &&
           syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "workdir", work, 0) == 0 &&
           (!a->rootless || syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) == 0);
      /* best effort: kernels before 5.10 lack it and sync as always */
      if (ok && a->volatile_upper) syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_FLAG, "volatile", NULL, 0);
      ok = ok && syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0;
      if (ok) {
        /* nodev: no device node in the root can be opened, whatever made it */
        int mfd = (int)syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
        if (mfd >= 0 && syscall(SYS_move_mount, mfd, "", AT_FDCWD, rootfs, MOVE_MOUNT_F_EMPTY_PATH) == 0) ret = 0;
        if (mfd >= 0) close(mfd);
      }
    }
    close(fsfd);
  }
  if (ret < 0) {
    /* classic mount(2): short relative links (l/0, l/1, ...) keep the option string small */
    cleanup_free char *ldir = xasprintf("%s/l", a->cdir);
    mkdir(ldir, 0700);
    struct buf opt = {0};
    buf_append(&opt, "lowerdir=", 9);
    for (size_t i = n; i-- > 0;) {
      /* the link's full path is as long as the container dir (it was cut to 31 bytes here, so
       * every data dir longer than ~20 characters lost overlayfs before 6.8) */
      cleanup_free char *link = xasprintf("%s/l/%zu", a->cdir, i);
      unlink(link);
      if (symlink(json_string_value(json_array_get(lowers, i)), link) < 0) {}
      char name[32];
      snprintf(name, sizeof name, "l/%zu%s", i, i ? ":" : "");
      buf_append(&opt, name, strlen(name));
    }
    cleanup_free char *rest = xasprintf(",upperdir=%s,workdir=%s%s", upper, work, a->rootless ? ",userxattr" : "");
    buf_append(&opt, rest, strlen(rest));
    size_t plain = opt.len;
    if (a->volatile_upper) buf_append(&opt, ",volatile", 10); /* with its NUL */
    else buf_append(&opt, "", 1);
    int cwd = open(".", O_PATH | O_CLOEXEC);
    bool in = chdir(a->cdir) == 0;
    if (in && mount("overlay", rootfs, "overlay", MS_NODEV, opt.data) == 0) ret = 0;
    else if (in && a->volatile_upper && errno == EINVAL && (opt.data[plain] = '\0', mount("overlay", rootfs, "overlay", MS_NODEV, opt.data) == 0))
      ret = 0; /* a kernel before 5.10: no `volatile` */
    else
      berth_error(err, errno, "mount the overlay root filesystem (%zu layers)%s", n,
                  a->rootless ? advice("; rootless overlay needs Linux 5.11+ (see `berth preflight`)", "; rootless overlay needs Linux 5.11+ (see the preflight operation)") : "");
    if (cwd >= 0) {
      if (fchdir(cwd) < 0) {}
      close(cwd);
    }
    buf_free(&opt);
  }
  if (ret < 0 && init_fuse_root(a)) { /* overlayfs refused: fuse-overlayfs next, and say so */
    a->note = xasprintf("overlayfs could not be mounted here (%s): fuse-overlayfs serves the root filesystem (slower "
                        "file access; %s)", err && *err ? (*err)->msg : "?", advice("see `berth preflight`", "see the preflight operation"));
    berth_error_clear(err);
    ret = 0;
  }
  if (ret < 0) {
    /* and where that cannot run either: copy the layers, and say so */
    berth_error_t e2 = NULL;
    if (copy_rootfs(lowers, upper, rootfs, &e2) == 0) {
      /* the init's note lives until it sends it: a one-off allocation */
      a->note = xasprintf("overlayfs could not be mounted here (%s): the root filesystem was copied from the layers (slower "
                          "creates, more disk; %s)", err && *err ? (*err)->msg : "?", advice("see `berth preflight`", "see the preflight operation"));
      berth_error_clear(err);
      ret = 0;
    } else {
      berth_error_wrap(&e2, "overlay failed (%s); copying the layers failed too", err && *err ? (*err)->msg : "?");
      berth_error_clear(err);
      if (err) *err = e2;
      else berth_error_free(e2);
    }
  }
  json_decref(lowers);
  return ret;
}

/* One device the spec asks for (linux.devices) at its path under the
 * container's /dev: made with mknod as root; bound from its host node
 * rootless (mknod is not possible there) or where the devices program
 * refuses mknod (cgroup v2); the host node must still be the device the
 * spec names, so a node swapped on the host since create is not bound. */
static int device_node(int dfd, json_t *d, const char *host, bool rootless, berth_error_t *err) {
  const char *path = json_string_value(json_object_get(d, "path")), *type = json_string_value(json_object_get(d, "type"));
  if (!path || !type || !str_has_prefix(path, "/dev/") || strstr(path, "/..") || strstr(path, "/./") || strstr(path, "//"))
    return berth_error(err, -EINVAL, "device `%s`: the spec's path must lie under /dev", path ? path : "?");
  unsigned major = (unsigned)json_integer_value(json_object_get(d, "major")), minor = (unsigned)json_integer_value(json_object_get(d, "minor"));
  mode_t perm = (mode_t)json_integer_value(json_object_get(d, "fileMode")) & 07777;
  if (!json_object_get(d, "fileMode")) perm = 0666;
  mode_t fmt = type[0] == 'b' ? S_IFBLK : type[0] == 'p' ? S_IFIFO : S_IFCHR;
  cleanup_free char *rel = strdup(path + 5);
  char *slash = strrchr(rel, '/');
  const char *base = slash ? slash + 1 : rel;
  cleanup_close int pfd = -1;
  if (slash) {
    *slash = '\0';
    pfd = mkdir_in_root(dfd, rel, 0755, RESOLVE_NO_SYMLINKS, err); /* inside our /dev tmpfs, no link followed */
    if (pfd < 0) return berth_error_wrap(err, "device `%s`", path);
  }
  int at = pfd >= 0 ? pfd : dfd;
  if (fmt == S_IFIFO || !rootless) {
    if (mknodat(at, base, fmt | perm, makedev(major, minor)) == 0) {
      fchmodat(at, base, perm, 0); /* past the umask */
      if (fchownat(at, base, (uid_t)json_integer_value(json_object_get(d, "uid")), (gid_t)json_integer_value(json_object_get(d, "gid")),
                   AT_SYMLINK_NOFOLLOW) < 0 && !rootless)
        return berth_error(err, errno, "device `%s`: owner", path);
      return 0;
    }
    if (errno != EPERM || fmt == S_IFIFO) return berth_error(err, errno, "create device `%s`", path);
  }
  if (!host) return berth_error(err, -ENOENT, "device `%s`: no host node to bind (mknod was refused)", path);
  cleanup_close int hfd = open(host, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (hfd < 0 || fstat(hfd, &st) < 0) return berth_error(err, errno, "device `%s`: host node `%s`", path, host);
  if ((st.st_mode & S_IFMT) != fmt || st.st_rdev != makedev(major, minor))
    return berth_error(err, -EINVAL, "device `%s`: host node `%s` is no longer %c %u:%u; create the container again", path, host, type[0], major, minor);
  int c = openat(at, base, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (c < 0) return berth_error(err, errno, "create device `%s`", path);
  close(c);
  cleanup_close int t = openat(at, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  cleanup_free char *src = rootfs_fdpath(hfd);
  return t < 0 ? berth_error(err, errno, "device `%s`", path) : rootfs_mount_fd(src, t, NULL, MS_BIND, NULL, path, err);
}

/* the spec's devices (linux.devices), their host nodes in annotation berth.device_sources */
static int spec_device_nodes(int dfd, struct init_args *a, berth_error_t *err) {
  json_t *devs = json_object_get(json_object_get(a->spec, "linux"), "devices");
  if (!json_array_size(devs)) return 0;
  json_t *src = json_loads(json_string_value(json_object_get(json_object_get(a->spec, "annotations"), "berth.device_sources")) ?: "{}", 0, NULL);
  size_t i;
  json_t *d;
  int r = 0;
  json_array_foreach(devs, i, d) {
    if ((r = device_node(dfd, d, json_string_value(json_object_get(src, json_string_value(json_object_get(d, "path")) ?: "")), a->rootless,
                         err)) < 0)
      break;
  }
  json_decref(src);
  return r;
}

static int setup_dev(int rootfd, struct init_args *a, berth_error_t *err) {
  cleanup_close int dev = rootfs_target(rootfd, "/dev", false, true, err);
  if (dev < 0) return -1;
  if (rootfs_mount_fd("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k", "/dev", err) < 0) return -1;
  cleanup_close int dfd = openat_in_root(rootfd, "dev", O_RDONLY | O_DIRECTORY, 0, RESOLVE_NO_SYMLINKS);
  if (dfd < 0) return berth_error(err, errno, "open /dev");
  /* device nodes: root makes them (one mknod each instead of a file and a
   * bind mount); rootless may not, and binds the host's */
  const char *devs[] = {"null", "zero", "full", "random", "urandom", "tty"};
  const dev_t nums[] = {makedev(1, 3), makedev(1, 5), makedev(1, 7), makedev(1, 8), makedev(1, 9), makedev(5, 0)};
  bool made = !a->rootless;
  for (size_t i = 0; i < 6 && made; i++)
    made = mknodat(dfd, devs[i], S_IFCHR | 0666, nums[i]) == 0 && fchmodat(dfd, devs[i], 0666, 0) == 0;
  for (size_t i = 0; i < 6 && !made; i++) {
    unlinkat(dfd, devs[i], 0); /* a half-made set: bind all six */
    int c = openat(dfd, devs[i], O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    if (c < 0) return berth_error(err, errno, "create /dev/%s", devs[i]);
    close(c);
    cleanup_free char *src = xasprintf("/dev/%s", devs[i]);
    cleanup_close int t = openat(dfd, devs[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (rootfs_mount_fd(src, t, NULL, MS_BIND, NULL, src, err) < 0) return -1;
  }
  mkdirat(dfd, "pts", 0755);
  mkdirat(dfd, "shm", 01777);
  mkdirat(dfd, "mqueue", 0755);
  cleanup_close int pts = openat(dfd, "pts", O_PATH | O_NOFOLLOW | O_CLOEXEC);
  const char *ptsopt = a->rootless && a->single_map ? "newinstance,ptmxmode=0666,mode=0620" : "newinstance,ptmxmode=0666,mode=0620,gid=5";
  if (rootfs_mount_fd("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC, ptsopt, "/dev/pts", err) < 0) return -1;
  cleanup_close int shm = openat(dfd, "shm", O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (rootfs_mount_fd("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k", "/dev/shm", err) < 0) return -1;
  cleanup_close int mq = openat(dfd, "mqueue", O_PATH | O_NOFOLLOW | O_CLOEXEC);
  berth_error_t ignored = NULL;
  rootfs_mount_fd("mqueue", mq, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "/dev/mqueue", &ignored);
  berth_error_free(ignored);
  const char *links[][2] = {{"ptmx", "pts/ptmx"}, {"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"},
                            {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}, {"core", "/proc/kcore"}};
  for (size_t i = 0; i < 5; i++)
    if (symlinkat(links[i][1], dfd, links[i][0]) < 0) return berth_error(err, errno, "create /dev/%s", links[i][0]);
  return spec_device_nodes(dfd, a, err);
}

/* A target opened in the root was checked as written; the image's
 * symlinks may still lead it to the root, /dev, or into /proc or /sys
 * (mounted by now): a bind there would cover the container's own setup */
static int target_forbidden(int rootfd, int t, const char *dst, berth_error_t *err) {
  struct stat ts, rs, ds;
  struct statfs tf;
  bool bad = fstatfs(t, &tf) < 0 || tf.f_type == PROC_SUPER_MAGIC || tf.f_type == SYSFS_MAGIC || fstat(t, &ts) < 0 ||
             (fstat(rootfd, &rs) == 0 && rs.st_dev == ts.st_dev && rs.st_ino == ts.st_ino) ||
             (fstatat(rootfd, "dev", &ds, AT_SYMLINK_NOFOLLOW) == 0 && ds.st_dev == ts.st_dev && ds.st_ino == ts.st_ino);
  if (!bad) return 0;
  return berth_error(err, -EINVAL, "mount target `%s` leads (through the image's symlinks) to `/`, `/dev`, or into `/proc` or "
                     "`/sys`; refusing to mount there", dst);
}

static int bind_file(int rootfd, const char *host, const char *dest, berth_error_t *err) {
  cleanup_close int t = rootfs_target(rootfd, dest, true, false, err);
  if (t < 0 || target_forbidden(rootfd, t, dest, err) < 0) return -1;
  return rootfs_mount_fd(host, t, NULL, MS_BIND, NULL, dest, err);
}

static int user_mounts(int rootfd, struct init_args *a, berth_error_t *err) {
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(a->spec, "mounts"), i, m) {
    const char *type = json_string_value(json_object_get(m, "type")) ?: "";
    const char *src = json_string_value(json_object_get(m, "source"));
    const char *dst = json_string_value(json_object_get(m, "destination"));
    bool ro = false, nosuid = false, noexec = false, rec = true;
    size_t k;
    json_t *o;
    struct buf data = {0};
    json_array_foreach(json_object_get(m, "options"), k, o) {
      const char *op = json_string_value(o) ?: "";
      ro |= !strcmp(op, "ro"), nosuid |= !strcmp(op, "nosuid"), noexec |= !strcmp(op, "noexec");
      if (!strcmp(op, "bind")) rec = false;
      if (strchr(op, '=')) { /* tmpfs parameters: size=, mode= ... */
        if (data.len) buf_append(&data, ",", 1);
        buf_append(&data, op, strlen(op));
      }
    }
    buf_append(&data, "", 1);
    /* a tmpfs of a device's (CDI); /dev and /dev/shm are berth's own */
    if (!strcmp(type, "tmpfs") && dst && strcmp(dst, "/dev") && strcmp(dst, "/dev/shm")) {
      cleanup_close int t = rootfs_target(rootfd, dst, false, false, err);
      int r = t < 0 || target_forbidden(rootfd, t, dst, err) < 0
                  ? -1
                  : rootfs_mount_fd("tmpfs", t, "tmpfs", MS_NODEV | (nosuid ? MS_NOSUID : 0) | (noexec ? MS_NOEXEC : 0) | (ro ? MS_RDONLY : 0),
                             data.data, dst, err);
      buf_free(&data);
      if (r < 0) return -1;
      continue;
    }
    buf_free(&data);
    if (strcmp(type, "bind")) continue;
    if (!src || !dst) continue;
    if (!strncmp(dst, "/etc/", 5) && strstr(src, a->cdir) == src) continue; /* generated files: later */
    cleanup_close int sfd = open(src, O_PATH | O_CLOEXEC);
    if (sfd < 0) return berth_error(err, errno, "mount source `%s`", src);
    struct stat st;
    fstat(sfd, &st);
    cleanup_close int t = rootfs_target(rootfd, dst, !S_ISDIR(st.st_mode), false, err);
    if (t < 0) return berth_error_wrap(err, "mount `%s` at `%s`", src, dst);
    if (target_forbidden(rootfd, t, dst, err) < 0) return -1;
    cleanup_free char *sp = rootfs_fdpath(sfd);
    if (rootfs_mount_fd(sp, t, NULL, MS_BIND | (rec ? MS_REC : 0), NULL, dst, err) < 0) return -1;
    {
      /* nodev always (a host directory's device nodes stay closed to the
       * container), read-only, nosuid, noexec when asked */
      const char *rel = dst;
      while (*rel == '/') rel++;
      int fd = openat_in_root(rootfd, rel, O_PATH, 0, 0);
      cleanup_free char *p = rootfs_fdpath(fd);
      unsigned long keep = rootfs_locked_flags(p);
      int r = mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_NODEV | (ro ? MS_RDONLY : 0) | (nosuid ? MS_NOSUID : 0) | (noexec ? MS_NOEXEC : 0) | keep,
                    NULL);
      close(fd);
      if (r < 0) return berth_error(err, errno, "make mount `%s` %s", dst, ro ? "read-only" : "nodev");
    }
  }
  return 0;
}

/* the highest group id this user namespace maps (ping_group_range takes
 * ids as the writer sees them and refuses unmapped ones) */
static unsigned long gid_max_mapped(void) {
  cleanup_free char *map = NULL;
  unsigned long max = 0;
  if (read_file("/proc/self/gid_map", 4096, &map, NULL, NULL) < 0) return 0;
  for (char *l = map; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    unsigned long in, out, n;
    if (sscanf(l, "%lu %lu %lu", &in, &out, &n) == 3 && n && in + n - 1 > max) max = in + n - 1;
  }
  return max > 2147483647UL ? 2147483647UL : max;
}

static void loopback_up(void) {
  /* as Docker does in a container's own network namespace: any user may bind
   * low ports and send pings (workloads hold no capabilities) */
  write_value("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0");
  char range[32];
  snprintf(range, sizeof range, "0 %lu", gid_max_mapped());
  write_value("/proc/sys/net/ipv4/ping_group_range", range);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return;
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  close(s);
}

/* Root: the launcher brings the container's loopback up from outside,
 * while init mounts (time init would otherwise spend in line); rootless, the
 * namespace belongs to the container's user namespace and init does it.
 * *done stays false when it could not enter the namespace (init does it
 * then). The launcher always returns to its own namespace, or fails the
 * launch (-1). */
static int loopback_up_from_outside(pid_t pid, bool *done, berth_error_t *err) {
  *done = false;
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/ns/net", (int)pid);
  cleanup_close int theirs = open(p, O_RDONLY | O_CLOEXEC);
  cleanup_close int ours = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (theirs < 0 || ours < 0 || setns(theirs, CLONE_NEWNET) < 0) return 0;
  loopback_up();
  if (setns(ours, CLONE_NEWNET) < 0) return berth_error(err, errno, "return to berth's own network namespace");
  *done = true;
  return 0;
}

/* berth-tiny, linked in as bytes (x86_64; see tinyinit.c). Elsewhere init
 * and monitor keep their own loops. */
#ifdef BERTH_HAVE_TINY
extern const char _binary_berth_tiny_start[];
extern const char _binary_berth_tiny_end[];
#else
static const char *const _binary_berth_tiny_start = NULL, *const _binary_berth_tiny_end = NULL;
#endif

int tiny_memfd(void) {
  uintptr_t b0 = (uintptr_t)_binary_berth_tiny_start, b1 = (uintptr_t)_binary_berth_tiny_end;
  if (!b0 || b1 <= b0) {
    errno = ENOSYS;
    return -1;
  }
  int fd = memfd_create("berth-tiny", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  size_t n = b1 - b0;
  if (write(fd, _binary_berth_tiny_start, n) != (ssize_t)n ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
    int e = errno;
    close(fd);
    errno = e ? e : EIO;
    return -1;
  }
  return fd;
}

/* exec berth-tiny from a memfd; returns only on failure */
static void exec_tiny(char *const argv[], char *const envp[]) {
  int fd = tiny_memfd();
  if (fd < 0) return;
  syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
  close(fd);
}

static bool read_full(int fd, void *p, size_t n) {
  for (size_t got = 0; got < n;) {
    ssize_t r = read(fd, (char *)p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += (size_t)r;
  }
  return true;
}

/* The launcher's second go: a byte (1, or 2 when it has brought our
 * loopback up: a->lo_done), then the length and JSON of a cgroup to move
 * ourselves into (length 0: the launcher placed us). */
static int init_second_go(struct init_args *a, berth_error_t *err) {
  char go = 0;
  uint32_t len = 0;
  if (!read_full(a->sync_fd, &go, 1) || (go != 1 && go != 2) || !read_full(a->sync_fd, &len, sizeof len)) _exit(1);
  a->second_go_done = true;
  a->lo_done = go == 2;
  if (len) {
    cleanup_free char *txt = len < (1U << 20) ? xmalloc0(len + 1) : NULL;
    if (!txt || !read_full(a->sync_fd, txt, len)) _exit(1);
    json_t *cg = json_loads(txt, 0, NULL);
    int r = cg ? cgroup_enter_self(cg, err) : berth_error(err, -EINVAL, "bad cgroup from the launcher");
    json_decref(cg);
    if (r < 0) return -1;
  }
  return 0;
}

/* Nothing a hook started may stay in the container: it ran with init's
 * privileges, and no process of the container exists yet. PID 1's
 * kill(-1) reaches every other process of its pid namespace. */
static void init_kill_rest(void) {
  kill(-1, SIGKILL);
  while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
}

/* The hooks of the creation, while the host's root is still in view: the
 * launcher runs prestart and createRuntime on the host (a byte on the
 * report pipe; it answers with 1 and our pid as the host sees it, or 0
 * when a hook failed, which it reports); then createContainer here, in
 * the container's namespaces. */
static int init_hooks_created(struct init_args *a, berth_error_t *err) {
  static const char *const kinds[] = {"prestart", "createRuntime", "createContainer", "startContainer"};
  bool any = false;
  for (int i = 0; i < 4; i++) any |= hooks_any(a->spec, kinds[i]);
  if (!any) return 0;
  char req = '\x03', ack = 0;
  int32_t pid = 0;
  if (write(a->report_fd, &req, 1) != 1 || !read_full(a->sync_fd, &ack, 1)) return berth_error(err, -EIO, "the launcher is gone");
  if (ack != 1) return berth_error(err, -EIO, "a prestart or createRuntime hook failed");
  if (!read_full(a->sync_fd, &pid, sizeof pid)) return berth_error(err, -EIO, "the launcher is gone");
  a->host_pid = pid;
  if (!hooks_any(a->spec, "createContainer")) return 0;
  cleanup_free char *state = hooks_state(a->spec, a->name, "creating", pid, a->cdir);
  int r = hooks_run(a->spec, "createContainer", state, 0, err);
  init_kill_rest();
  return r;
}

/* startContainer: after pivot_root, in the container, confined (HOOK_CONFINED) */
static int init_hooks_start(struct init_args *a, berth_error_t *err) {
  if (!hooks_any(a->spec, "startContainer")) return 0;
  cleanup_free char *state = hooks_state(a->spec, a->name, "created", a->host_pid, a->cdir);
  int r = hooks_run(a->spec, "startContainer", state, HOOK_CONFINED, err);
  init_kill_rest();
  return r;
}

static volatile sig_atomic_t init_stop;
static void init_on_term(int sig) { init_stop = sig; }
static void init_on_chld(int sig) { (void)sig; } /* so pause() wakes for orphans */

static int init_setup(struct init_args *a, berth_error_t *err) {
  const char *rootfs = json_string_value(json_object_get(json_object_get(a->spec, "root"), "path"));
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) return berth_error(err, errno, "make mounts private");
  berth_trace("init: go");
  if (mount_overlay(a, rootfs, err) < 0) return -1;
  berth_trace("init: overlay mounted");
  cleanup_close int rootfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return berth_error(err, errno, "open root filesystem");
  bool own_net = false;
  size_t i;
  json_t *ns;
  json_array_foreach(json_object_get(json_object_get(a->spec, "linux"), "namespaces"), i, ns)
    if (!strcmp(json_string_value(json_object_get(ns, "type")) ?: "", "network")) own_net = true;

  cleanup_close int proc = rootfs_target(rootfd, "/proc", false, true, err);
  if (proc < 0) return -1;
  if (rootfs_mount_fd("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "/proc", err) < 0) return -1;
  if (setup_dev(rootfd, a, err) < 0) return -1;
  cleanup_close int sys = rootfs_target(rootfd, "/sys", false, true, err);
  if (sys < 0) return -1;
  berth_error_t e2 = NULL;
  if (!own_net || rootfs_mount_fd("sysfs", sys, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "/sys", &e2) < 0) {
    berth_error_clear(&e2);
    /* host network namespace (or a kernel that refuses): the host's /sys, read-only */
    if (rootfs_mount_fd("/sys", sys, NULL, MS_BIND | MS_REC, NULL, "/sys", err) < 0) return -1;
    if (rootfs_remount_ro(rootfd, "sys", err) < 0) return -1;
  }
  if (user_mounts(rootfd, a, err) < 0) return -1;
  const char *gen[] = {"hostname", "hosts", "resolv.conf"};
  for (int k = 0; k < 3; k++) {
    cleanup_free char *src = xasprintf("%s/etc/%s", a->cdir, gen[k]);
    cleanup_free char *dst = xasprintf("/etc/%s", gen[k]);
    if (bind_file(rootfd, src, dst, err) < 0) return -1;
  }
  json_t *linux_ = json_object_get(a->spec, "linux");
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
  const char *cwd = json_string_value(json_object_get(json_object_get(a->spec, "process"), "cwd"));
  if (cwd && *cwd) {
    const char *rel = cwd;
    while (*rel == '/') rel++;
    int w = mkdir_in_root(rootfd, rel, 0755, 0, err);
    if (w < 0) return berth_error_wrap(err, "workdir `%s`", cwd);
    close(w);
  }
  berth_trace("init: mounts done");
  /* the launcher made the cgroup meanwhile; on v1 we move ourselves (see
   * cgroup_enter_self), while the host's cgroupfs is still in view; only
   * then is the cgroup namespace rooted where it belongs */
  if (!a->second_go_done && init_second_go(a, err) < 0) return -1;
  if (init_hooks_created(a, err) < 0) return -1;
  close(a->sync_fd); /* the launcher's requests channel: done */
  a->sync_fd = -1;
  berth_trace("init: second go");
  if (own_net && !a->lo_done) loopback_up(); /* through the host's /proc: the container's /proc/sys is read-only already */
  if (unshare(CLONE_NEWCGROUP) < 0) berth_debug("cgroup namespace: %s", strerror(errno));
  if (fchdir(rootfd) < 0) return berth_error(err, errno, "enter root filesystem");
  if (syscall(SYS_pivot_root, ".", ".") < 0) return berth_error(err, errno, "pivot_root");
  if (umount2(".", MNT_DETACH) < 0) return berth_error(err, errno, "detach the old root");
  if (chdir("/") < 0) return berth_error(err, errno, "chdir /");
  const char *hn = json_string_value(json_object_get(a->spec, "hostname"));
  if (hn && sethostname(hn, strlen(hn)) < 0) return berth_error(err, errno, "set hostname");
  berth_trace("init: pivoted");
  return 0;
}

/* set up: tell the launcher (EOF without an error message) */
static void init_ready(void *arg) {
  struct init_args *a = arg;
  if (a->note) { /* success with a remark: \x01 marks it as not an error */
    char m[512];
    snprintf(m, sizeof m, "\x01%s", a->note);
    if (write(a->report_fd, m, strlen(m)) < 0) {}
  }
  berth_trace("init: report");
  close(a->report_fd);
  a->report_fd = -1;
}

static int init_main(struct init_args *a) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  proc_set_title("berth-init");
  char go = 0;
  if (read(a->sync_fd, &go, 1) != 1 || go != 1) _exit(1);
  berth_error_t err = NULL;
  if (a->rootless) { /* one line in uid_map: only the user's own id is mapped */
    cleanup_free char *map = NULL;
    if (read_file("/proc/self/uid_map", 4096, &map, NULL, NULL) == 0) {
      char *nl = strchr(map, '\n');
      a->single_map = !nl || !nl[1];
    }
  }
  if (a->rootless && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
    init_fail(a, (berth_error(&err, errno, "become root in the user namespace"), err));
  /* the workload's own seccomp program, if any: read while the host's files are in view */
  struct exec_opts run_opts = a->run ? *a->run : (struct exec_opts){0};
  char *bpf = NULL;
  if (a->run && security_seccomp_read(a->spec, &bpf, &run_opts.seccomp_len, &err) < 0) init_fail(a, err);
  run_opts.seccomp_bpf = bpf;
  if (init_setup(a, &err) < 0 || init_hooks_start(a, &err) < 0) init_fail(a, err);
  pid_t cmd = 0;
  /* With berth's own filter for both, init takes it before the command is
   * spawned and the command inherits it: one load (a JIT compile) fewer.
   * Init keeps its capabilities until the command has its own (it may
   * need CAP_SETUID for -u); no_new_privs comes first, as seccomp needs it
   * once they are gone. A profile of the user's own applies to the command
   * only, so then each loads its own, as before. */
  bool shared_filter = a->run && !bpf;
  if (shared_filter && (security_no_new_privs(&err) < 0 || security_seccomp(&err) < 0)) init_fail(a, err);
  run_opts.seccomp_inherited = shared_filter;
  /* the bounding set too (one prctl, a new set of credentials, per
   * capability): the command inherits it and has only what it keeps left
   * to drop; init's own capabilities stay until the command is started */
  if (a->run && security_drop_bounding((1ULL << CAP_KILL) | run_opts.keep_caps, &err) < 0) init_fail(a, err);
  if (a->run) {
    setsid(); /* the terminal's signals reach the launcher, which passes them on once */
    /* we report as soon as only the start itself can fail (the launcher
     * then sends the go the command waits for); we are back once it has
     * exec'd */
    cmd = container_spawn_command(&run_opts, a->spec, a->run_env, a->run_go, a->pty_sock, a->out_fd, a->err_fd, init_ready, a, &err);
    if (cmd < 0 && a->report_fd >= 0) init_fail(a, err);
    if (cmd < 0) {
      fprintf(stderr, "berth: container init: %s\n", err->msg);
      _exit(125);
    }
    close(a->run_go);
    if (a->pty_sock >= 0) close(a->pty_sock);
    if (a->out_fd >= 0) close(a->out_fd), close(a->err_fd);
  }
  /* PID 1 keeps only the right to signal; everything else goes */
  if (!a->run && (security_drop_caps(1ULL << CAP_KILL, &err) < 0 || security_no_new_privs(&err) < 0 || security_seccomp(&err) < 0))
    init_fail(a, err);
  berth_trace("init: confined");
  if (!a->run) init_ready(a);
  if (a->run && (security_drop_caps(1ULL << CAP_KILL, &err) < 0 ||
                 (!shared_filter && (security_no_new_privs(&err) < 0 || security_seccomp(&err) < 0)))) {
    kill(cmd, SIGKILL);
    fprintf(stderr, "berth: container init: %s\n", err->msg);
    _exit(125);
  }
  /* a one-shot ends with its launcher; a container outlives its monitor's exec */
  if (!a->run) prctl(PR_SET_PDEATHSIG, 0);
  syscall(SYS_close_range, 5U, ~0U, 0); /* fd 3: environment memfd, fd 4: network helper's exit pipe */
  int nul = open("/dev/null", O_RDWR);
  if (nul >= 0) {
    dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
    if (nul > 2) close(nul);
  }
  /* what stays resident: a few KiB of berth-tiny rather than all of berth */
  char scmd[24];
  snprintf(scmd, sizeof scmd, "%d", (int)cmd);
  char *targv[] = {"berth-init", cmd ? "run" : "init", scmd, NULL}, *tenvp[] = {NULL};
  exec_tiny(targv, tenvp);
  if (cmd) { /* no berth-tiny (not x86_64): the same loop here */
    sigset_t all;
    sigemptyset(&all);
    int fwd[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD};
    for (size_t k = 0; k < sizeof fwd / sizeof *fwd; k++) sigaddset(&all, fwd[k]);
    sigprocmask(SIG_BLOCK, &all, NULL);
    for (;;) {
      int st;
      pid_t p;
      while ((p = waitpid(-1, &st, WNOHANG)) > 0)
        if (p == cmd) _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
      if (p < 0 && errno == ECHILD) _exit(125);
      int sig = sigwaitinfo(&all, NULL);
      if (sig > 0 && sig != SIGCHLD) kill(cmd, sig);
    }
  }
  struct sigaction sa = {.sa_handler = init_on_term};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  struct sigaction sc = {.sa_handler = init_on_chld, .sa_flags = SA_NOCLDSTOP};
  sigaction(SIGCHLD, &sc, NULL);
  /* reap everything; on a stop signal pass it on, give a grace, then leave
   * (the kernel kills what is left when PID 1 exits). SIGCHLD stays blocked
   * except inside sigsuspend, so no exit can slip between check and sleep. */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGCHLD);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGHUP);
  sigaddset(&block, SIGALRM);
  sigprocmask(SIG_BLOCK, &block, &old);
  struct sigaction sal = {.sa_handler = init_on_chld};
  sigaction(SIGALRM, &sal, NULL);
  double stop_at = 0;
  for (;;) {
    int st;
    pid_t p;
    bool none_left = false;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {}
    if (p < 0 && errno == ECHILD) none_left = true;
    if (init_stop) {
      if (stop_at == 0) {
        kill(-1, SIGTERM);
        stop_at = now_seconds() + 10;
        alarm(10);
      }
      if (none_left || now_seconds() >= stop_at) _exit(0);
    }
    sigsuspend(&old);
  }
}

/* ---------- monitor ---------- */
struct monitor_args {
  const char *name, *cdir, *id;
  json_t *spec;
  const char *cgname; /* made by launch(), while init mounts (berth run) */
  json_t *cg_made;    /* or made already (create: before the monitor's fork, which
                       * cgroup v2 placement needs: berth alone in its cgroup) */
  const struct limits *limits;
  bool rootless, own_net;
  int report_fd; /* to the CLI (-1: `berth run`, the launcher is the CLI) */
  int lock_fd;   /* the create's lock: init must not hold it */
  int env_fd;    /* sealed memfd with the caller's variables; init keeps it as fd 3 */
  bool bridge;   /* start slirp4netns; init keeps its exit pipe as fd 4 */
  json_t *ports;
  int *port_fds; /* bound on the host by create */
  /* root's default network on berth0, or a named network: the address */
  bool hostbr;
  /* a named network: its holder's namespaces (opened under its lock) */
  bool named;
  const struct net_lease *lease;
  bool net_single;
  const char *ip;
  json_t *egress; /* the egress policy (NULL: none) */
  /* berth run: init starts this command (see struct init_args) */
  const struct exec_opts *run;
  json_t *run_env;
  int run_go, pty_sock, out_fd, err_fd;
  bool volatile_upper;
  /* a service: init starts this command, its output goes to the log, and
   * the monitor stays (resident) to write it; also resident for a restart
   * policy or an expiry (expires_at, unix seconds) */
  const struct exec_opts *service;
  bool resident;
  double expires_at;
};

/* what launch() started */
struct launched {
  json_t *cg;             /* the cgroup it made (cgroup_create's info) */
  pid_t pid, helper, fwd; /* init, slirp4netns, the ports forwarder (0: none) */
  pid_t egress;           /* the egress policy's helper (0: none) */
  bool single;            /* one id mapped */
  char *note;             /* a remark of init's setup */
};

static void monitor_report(int fd, json_t *msg) {
  char *t = json_dumps(msg, JSON_COMPACT);
  if (t) {
    /* one line: the CLI stops reading at the newline, not at our close */
    cleanup_free char *line = xasprintf("%s\n", t);
    if (write(fd, line, strlen(line)) < 0) {}
    free(t);
  }
  json_decref(msg);
  close(fd);
}

/* The monitor's pipe ends that the cloned init must not keep. */
struct init_fds {
  int sync_w, rep_r, exit_r, exit_w, extra;
};

static __attribute__((noreturn)) void init_child(struct monitor_args *m, struct init_args *ia, struct init_fds *f) {
  close(f->sync_w);
  close(f->rep_r);
  if (m->report_fd >= 0) close(m->report_fd);
  if (m->lock_fd >= 0) close(m->lock_fd); /* flock: a copy would hold the container's lock */
  if (f->extra >= 0) close(f->extra);
  /* fd 3 in init: the environment memfd, read by `berth exec` via /proc;
   * fd 4: the write end of slirp4netns's exit pipe (it ends with init) */
  /* moved up, out of the way of fds 3 and 4 (the originals closed: the
   * launcher waits for the report pipe's EOF) */
  int *mv[] = {&ia->sync_fd, &ia->report_fd, &ia->run_go, &ia->pty_sock, &ia->out_fd, &ia->err_fd};
  for (size_t i = 0; i < sizeof mv / sizeof *mv; i++) {
    if (*mv[i] < 0 || (i >= 2 && !ia->run)) continue;
    int old = *mv[i];
    *mv[i] = fcntl(old, F_DUPFD_CLOEXEC, 100);
    close(old);
  }
  int envh = m->env_fd >= 0 ? fcntl(m->env_fd, F_DUPFD_CLOEXEC, 100) : -1;
  int exith = f->exit_w >= 0 ? fcntl(f->exit_w, F_DUPFD_CLOEXEC, 100) : -1;
  if (envh >= 0) dup2(envh, 3);
  if (exith >= 0) dup2(exith, 4);
  if (f->exit_r >= 0) close(f->exit_r);
  _exit(init_main(ia));
}

struct helper_result {
  pid_t pid;
  bool placed;
  char msg[512];
};
struct helper_args {
  struct monitor_args *m;
  unsigned long flags;
  int userns_fd, rfd, wfd;
  json_t *cg;
  struct init_args *ia;
  struct init_fds *f;
  const sigset_t *mask; /* the launcher's, for init */
};

/* the helper: runs on the launcher's memory (it sleeps meanwhile), on a stack of its own */
static int helper_main(void *arg) {
  struct helper_args *h = arg;
  struct monitor_args *m = h->m;
  struct helper_result r = {-1, false, ""};
  berth_error_t e = NULL;
  close(h->rfd); /* our own fd table: the reading end is the launcher's */
  if (h->userns_fd < 0 || setns(h->userns_fd, CLONE_NEWUSER) == 0) {
    pid_t c = -1;
    errno = EOPNOTSUPP;
    if (h->cg) c = cgroup_clone_into(h->cg, (h->flags & ~(unsigned long)CSIGNAL) | CLONE_PARENT, &r.placed);
    if (c < 0 && cgroup_clone_refused(errno)) c = (pid_t)syscall(SYS_clone, h->flags | CLONE_PARENT, NULL, NULL, NULL, NULL);
    if (c == 0) { /* init: a copy of this memory of its own */
      sigprocmask(SIG_SETMASK, h->mask, NULL);
      h->f->extra = h->wfd;
      init_child(m, h->ia, h->f);
    }
    if (c < 0) berth_error(&e, errno, "create the container's namespaces (clone)");
    r.pid = c;
    if (c > 0 && h->userns_fd >= 0 && userns_map_identity(c) < 0)
      berth_error(&e, errno ? errno : -EIO, "map the container's ids onto its parent user namespace");
    if (c > 0 && !e && m->named) net_named_attach(m->lease, c, m->id, &e);
  } else {
    berth_error(&e, errno, "join the %s user namespace", m->named ? "network's" : "keeper's");
  }
  if (e && m->named) snprintf(r.msg, sizeof r.msg, "network %s: %s", m->ip, e->msg);
  else if (e) snprintf(r.msg, sizeof r.msg, "%s", e->msg);
  berth_error_free(e);
  if (write(h->wfd, &r, sizeof r) != sizeof r) {}
  _exit(0);
}

/* A container on a named network, or a rootless one made in the user
 * namespace keeper's (userns.h), is cloned by a short-lived helper that
 * first joins that user namespace (userns_fd): the container's user
 * namespace is then a child of it, which the helper maps 1:1 itself, and
 * on a named network it holds CAP_NET_ADMIN over both ends of the veth
 * pair it plugs in. CLONE_PARENT makes init our child all the same.
 * The helper is started like posix_spawn (CLONE_VM | CLONE_VFORK, as the
 * command is, exec.c): we wait for it anyway, and a fork of berth costs
 * more CPU: a copy of the page tables made to be torn down again.
 * Returns init's pid (in the monitor), with *err set when init
 * exists but could not be mapped or plugged in. */
static pid_t clone_via_helper(struct monitor_args *m, unsigned long flags, int userns_fd, json_t *cg, bool *placed,
                              struct init_args *ia, struct init_fds *f, berth_error_t *err) {
  int pp[2];
  if (pipe2(pp, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  /* the helper runs with every signal blocked; init gets our mask back */
  sigset_t old;
  sigprocmask(SIG_SETMASK, NULL, &old);
  struct helper_args h = {.m = m, .flags = flags, .userns_fd = userns_fd, .rfd = pp[0], .wfd = pp[1], .cg = cg, .ia = ia, .f = f, .mask = &old};
  pid_t x = clone_vm(helper_main, &h, CLONE_VFORK, 512 << 10);
  int ce = errno;
  close(pp[1]);
  if (x < 0) {
    close(pp[0]);
    return berth_error(err, ce, "start the namespace setup helper");
  }
  struct helper_result r = {-1, false, ""};
  ssize_t n = read(pp[0], &r, sizeof r);
  close(pp[0]);
  while (waitpid(x, NULL, 0) < 0 && errno == EINTR) {}
  if (n != sizeof r) return berth_error(err, -EIO, "the namespace setup helper died");
  if (r.msg[0]) berth_error(err, -EIO, "%s", r.msg);
  if (r.pid < 0 && !*err) berth_error(err, -EIO, "clone failed");
  *placed = r.placed;
  return r.pid;
}

/* the keeper's body: berth-tiny (argv[0] berth-userns), a few KiB */
static void keeper_hold(void) {
  char *argv[] = {"berth-userns", "hold", NULL}, *envp[] = {NULL};
  exec_tiny(argv, envp);
}

/* a helper in init's user (rootless) and mount namespaces: -1 fork failed, else its pid */
static pid_t in_init_ns(int usr, int mnt, int (*fn)(void *), void *arg) {
  pid_t c = fork();
  if (c == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if ((usr >= 0 && setns(usr, CLONE_NEWUSER) < 0) || setns(mnt, CLONE_NEWNS) < 0) _exit(126);
    _exit(fn(arg));
  }
  return c;
}

struct fuse_mnt {
  const char *rootfs;
  int fd;
};

static int fuse_mount_fn(void *arg) {
  const struct fuse_mnt *f = arg;
  char o[128];
  snprintf(o, sizeof o, "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions", f->fd);
  return mount("fuse-overlayfs", f->rootfs, "fuse.fuse-overlayfs", MS_NOSUID | MS_NODEV, o) == 0 ? 0 : 1;
}

static int fuse_check_fn(void *arg) {
  const struct fuse_mnt *f = arg;
  struct stat st;
  alarm(5); /* a daemon that never answers */
  return stat(f->rootfs, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : 1;
}

static bool wait_ok(pid_t c) {
  int st = 0;
  if (c < 0) return false;
  while (waitpid(c, &st, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Serve init's root with fuse-overlayfs (init_fuse_root). The FUSE mount
 * is made in init's mount namespace with a /dev/fuse descriptor of ours;
 * the daemon gets that descriptor (mount point /dev/fd/N) and stays in our
 * mount and pid namespaces (rootless: in init's user namespace, for its
 * ids): no container process can see it or reach its descriptors of the
 * host's layer directories, and init's pivot_root cannot move its root. It
 * ends when the mount goes with the container (or with us). */
static int fuse_serve(struct monitor_args *m, pid_t pid, berth_error_t *err) {
  const char *fo = fuse_overlayfs_path();
  json_t *ann = json_object_get(m->spec, "annotations");
  const char *rootfs = json_string_value(json_object_get(json_object_get(m->spec, "root"), "path"));
  const char *upper = json_string_value(json_object_get(ann, "berth.upperdir"));
  const char *work = json_string_value(json_object_get(ann, "berth.workdir"));
  json_t *lowers = json_loads(json_string_value(json_object_get(ann, "berth.lowerdirs")) ?: "[]", 0, NULL);
  if (!fo || !rootfs || !upper || !work || !json_array_size(lowers)) {
    json_decref(lowers);
    return berth_error(err, -EINVAL, "fuse-overlayfs: nothing to serve");
  }
  struct buf o = {0};
  buf_append(&o, "lowerdir=", 9);
  for (size_t i = json_array_size(lowers); i-- > 0;) { /* topmost first */
    const char *l = json_string_value(json_array_get(lowers, i));
    buf_append(&o, l, strlen(l));
    if (i) buf_append(&o, ":", 1);
  }
  json_decref(lowers);
  cleanup_free char *rest = xasprintf(",upperdir=%s,workdir=%s", upper, work);
  buf_append(&o, rest, strlen(rest) + 1);
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/ns/mnt", (int)pid);
  cleanup_close int mnt = open(p, O_RDONLY | O_CLOEXEC);
  snprintf(p, sizeof p, "/proc/%d/ns/user", (int)pid);
  cleanup_close int usr = m->rootless ? open(p, O_RDONLY | O_CLOEXEC) : -1;
  cleanup_close int dev = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (mnt < 0 || (m->rootless && usr < 0) || dev < 0) {
    int e = errno;
    buf_free(&o);
    return berth_error(err, e, "fuse-overlayfs: %s", dev < 0 ? "open /dev/fuse" : "open init's namespaces");
  }
  struct fuse_mnt f = {.rootfs = rootfs, .fd = dev};
  if (!wait_ok(in_init_ns(usr, mnt, fuse_mount_fn, &f))) {
    buf_free(&o);
    return berth_error(err, -EIO, "fuse-overlayfs: the FUSE mount was refused");
  }
  pid_t d = fork();
  if (d == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (usr >= 0 && setns(usr, CLONE_NEWUSER) < 0) _exit(126);
    int nul = open("/dev/null", O_RDWR);
    dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
    int fd = dup2(dev, 3); /* without O_CLOEXEC */
    syscall(SYS_close_range, 4U, ~0U, 0U);
    proc_set_title("berth-fuse");
    execl(fo, "fuse-overlayfs", "-f", "-o", o.data, fd == 3 ? "/dev/fd/3" : "/dev/null", (char *)NULL);
    _exit(127);
  }
  buf_free(&o);
  /* serving once init's side sees the root directory through it */
  if (d < 0 || !wait_ok(in_init_ns(usr, mnt, fuse_check_fn, &f))) {
    if (d > 0) {
      kill(d, SIGKILL); /* the connection aborts: init's accesses fail rather than hang */
      while (waitpid(d, NULL, 0) < 0 && errno == EINTR) {}
    }
    return berth_error(err, -EIO, "fuse-overlayfs did not serve the root filesystem");
  }
  return 0;
}

static char *hostbr_resolv(void);

/* What the egress table needs to know of the container's network: how it
 * goes out (berth0, or slirp4netns: a named network's members too), its
 * named network's subnet (members reach each other), and the resolvers
 * berth's resolver forwards to: config `egress_dns`, else those the
 * container would have used itself. */
static void egress_net_of(const struct monitor_args *m, struct egress_net *n) {
  memset(n, 0, sizeof *n);
  n->slirp = m->bridge;
  unsigned a, b, k, h;
  if (m->named && m->ip && sscanf(m->ip, "%u.%u.%u.%u", &a, &b, &k, &h) == 4)
    snprintf(n->subnet, sizeof n->subnet, "%u.%u.%u.0/24", a & 255, b & 255, k & 255);
  struct berth_config *cfg = config_get(NULL);
  json_t *up = cfg ? config_array(cfg, "egress_dns") : NULL, *v;
  size_t i;
  json_array_foreach(up, i, v) if (n->nup < 4 && egress_addr_parse(json_string_value(v), &n->up[n->nup]) == 0) n->nup++;
  if (n->nup) return;
  if (!m->hostbr) {
    egress_addr_parse(NET_DNS_ADDR, &n->up[n->nup++]);
    return;
  }
  cleanup_free char *rv = hostbr_resolv();
  char *save = NULL;
  for (char *l = strtok_r(rv, "\n", &save); l && n->nup < 4; l = strtok_r(NULL, "\n", &save)) {
    char ns[64];
    if (sscanf(l, "nameserver %63s", ns) == 1 && egress_addr_parse(ns, &n->up[n->nup]) == 0 && n->up[n->nup].family == 4) n->nup++;
  }
}

/* Start the container: clone init into its namespaces, map its ids, move it
 * into its cgroups and plug in its network while it builds its root, wait
 * for its verdict, start the ports forwarder. Runs in the monitor, or in
 * the CLI for `berth run`. On failure whatever was started is killed and
 * reaped, and *err says why. */
static int launch(struct monitor_args *m, struct launched *L, berth_error_t *err) {
  memset(L, 0, sizeof *L);
  int sync[2], rep[2];
  if (pipe2(sync, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  if (pipe2(rep, O_CLOEXEC) < 0) {
    int e = errno;
    close(sync[0]), close(sync[1]);
    return berth_error(err, e, "pipe");
  }
  unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
  if (m->own_net) flags |= CLONE_NEWNET;
  if (m->rootless) flags |= CLONE_NEWUSER;
  int exitp[2] = {-1, -1};
  if (m->bridge && pipe2(exitp, O_CLOEXEC) < 0) {
    int e = errno;
    close(sync[0]), close(sync[1]), close(rep[0]), close(rep[1]);
    return berth_error(err, e, "pipe");
  }
  struct init_args ia = {.spec = m->spec, .cdir = m->cdir, .name = m->name, .sync_fd = sync[0], .report_fd = rep[1], .rootless = m->rootless,
                         .run = m->run, .run_env = m->run_env, .run_go = m->run_go, .pty_sock = m->pty_sock,
                         .out_fd = m->out_fd, .err_fd = m->err_fd, .volatile_upper = m->volatile_upper};
  struct init_fds fds = {.sync_w = sync[1], .rep_r = rep[0], .exit_r = exitp[0], .exit_w = exitp[1], .extra = -1};
  berth_error_t e1 = NULL, e2 = NULL;
  /* cgroup v2: made first, so that init is born in it (clone3 with
   * CLONE_INTO_CGROUP: no migration, which would take the kernel's global
   * lock, see cgroup_enter_self); v1: made while init mounts */
  json_t *cg = m->cg_made ? json_incref(m->cg_made) : NULL;
  if (!cg && cgroup_is_v2() && cgroup_create(m->cgname, m->limits, spec_devices(m->spec), &cg, &e2) < 0) {
    close(sync[0]), close(sync[1]), close(rep[0]), close(rep[1]);
    if (exitp[0] >= 0) close(exitp[0]), close(exitp[1]);
    *err = e2;
    return -1;
  }
  bool placed = false;
  pid_t pid = -1;
  /* rootless: inside the keeper's user namespace, no newuidmap round */
  cleanup_close int keeper = -1;
  struct berth_config *kcfg = m->rootless && !m->named && (uintptr_t)_binary_berth_tiny_start ? config_get(NULL) : NULL;
  if (kcfg && !config_run_dir_usable(kcfg)) kcfg = NULL; /* no keeper: each container maps its own namespace */
  if (kcfg) keeper = userns_keeper_open(kcfg->run_dir, keeper_hold);
  berth_trace("launch: keeper %d", keeper);
  errno = EOPNOTSUPP;
  if (m->named || keeper >= 0)
    pid = clone_via_helper(m, flags, m->named ? (m->rootless ? m->lease->userns_fd : -1) : keeper, cg, &placed, &ia, &fds, &e1);
  else if (cg) pid = cgroup_clone_into(cg, flags & ~(unsigned long)CSIGNAL, &placed);
  if (!m->named && keeper < 0 && pid < 0 && cgroup_clone_refused(errno))
    pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
  if (pid == 0) init_child(m, &ia, &fds);
  int clone_errno = errno;
  berth_trace("launch: cloned init %d", (int)pid);
  close(sync[0]);
  close(rep[1]);
  if (exitp[1] >= 0) close(exitp[1]); /* only init holds it now */
  if (pid < 0) {
    close(sync[1]), close(rep[0]);
    if (exitp[0] >= 0) close(exitp[0]);
    if (cg && !m->cg_made) cgroup_destroy(cg);
    json_decref(cg);
    if (e1) {
      *err = e1;
      return -1;
    }
    return berth_error(err, clone_errno, "create the container's namespaces (clone)%s",
                       m->rootless ? advice("; run `berth preflight`", "; run the preflight operation") : "");
  }
  L->pid = pid;
  L->single = m->net_single;
  /* init mounts while we make its cgroup: on another CPU, or it waits for us */
  cpu_set_t init_cpus;
  bool aside = cpu_aside(pid, &init_cpus);
  const char *fail = NULL;
  if (e1) fail = e1->msg; /* cloned, but not plugged into its network */
  else if (m->rootless && !m->named && keeper < 0 && userns_map(pid, &L->single) < 0)
    fail = advice("cannot map user ids for the container; run `berth preflight`",
                  "cannot map user ids for the container; run the preflight operation");
  berth_trace("launch: mapped");
  /* two go bytes: the first starts init's mounts, the second (after the
   * cgroup move, which overlaps them) lets it root its cgroup namespace */
  char go = fail ? 0 : 1;
  if (write(sync[1], &go, 1) != 1) {}
  /* v1: the cgroup is made now, while init mounts */
  L->cg = cg;
  if (!fail && !L->cg && cgroup_create(m->cgname, m->limits, spec_devices(m->spec), &L->cg, &e2) < 0) fail = e2->msg;
  /* the second go: init moves itself on v1, we move it when it was not born inside */
  cleanup_free char *self_move = NULL;
  if (!fail && !placed) {
    if (json_integer_value(json_object_get(L->cg, "version")) == 1) self_move = json_dumps(L->cg, JSON_COMPACT);
    else if (cgroup_enter(L->cg, pid, &e2) < 0) fail = e2->msg;
  }
  berth_trace("launch: cgroup made");
  bool lo_done = false;
  if (!fail && m->own_net && !m->rootless && !m->named && loopback_up_from_outside(pid, &lo_done, &e2) < 0) fail = e2->msg;
  /* before the second go: nothing init starts may inherit the narrowed mask */
  if (aside) cpu_restore(pid, &init_cpus);
  {
    uint32_t len = self_move ? (uint32_t)strlen(self_move) : 0;
    struct buf g2 = {0};
    char one = lo_done ? 2 : 1;
    buf_append(&g2, &one, 1);
    buf_append(&g2, &len, sizeof len);
    if (len) buf_append(&g2, self_move, len);
    /* EPIPE if init failed already: SIGPIPE is ignored */
    if (fail || write(sync[1], g2.data, g2.len) != (ssize_t)g2.len) {}
    buf_free(&g2);
  }
  /* open until init reports, for its requests (fuse_serve); at once when
   * we gave up, so that init's read ends */
  if (fail) close(sync[1]), sync[1] = -1;
  /* recorded at once (a crash leaves it named in the state, for whoever
   * collects it), though after init's go: the rename may flush */
  if (!fail && !m->cg_made) {
    json_t *st = state_read(m->name);
    if (st) {
      json_object_set(st, "cgroup", L->cg);
      state_write_warn(m->name, st, "the cgroup");
      json_decref(st);
    }
  }
  /* an egress policy's table goes in while init builds the root and the
   * network comes up, by a helper of its own; it is waited for below,
   * before anything of the workload can run */
  struct egress_helper eh = {.pid = -1, .ready_fd = -1};
  berth_error_t e5 = NULL;
  if (!fail && m->egress) {
    struct egress_policy ep;
    struct egress_net en;
    egress_net_of(m, &en);
    if (egress_policy_load(m->egress, &ep, &e5) < 0) fail = e5->msg;
    else {
      if (egress_start(pid, m->rootless, &ep, &en, m->cdir, &eh, &e5) < 0) fail = e5->msg;
      egress_policy_free(&ep);
    }
    berth_trace("launch: egress helper forked");
  }
  /* the network comes up while init builds the root: nothing runs in the
   * container before we report, so the two need not wait for each other */
  const char *net_fail = NULL;
  berth_error_t e3 = NULL;
  if (!fail && m->hostbr && hb_attach(pid, m->id, m->ip, &e3) < 0) net_fail = e3->msg;
  if (!fail && !net_fail && m->bridge && net_start(pid, m->rootless, exitp[0], &L->helper, &e3) < 0) net_fail = e3->msg;
  struct buf msg = {0};
  char tmp[4096];
  ssize_t n;
  berth_error_t hook_err = NULL;
  while ((n = read(rep[0], tmp, sizeof tmp)) > 0 || (n < 0 && errno == EINTR)) {
    if (n == 1 && !msg.len && tmp[0] == '\x03' && sync[1] >= 0) { /* init asks for the creation hooks, and waits */
      cleanup_free char *st = hooks_state(m->spec, m->name, "creating", pid, m->cdir);
      int hr = hooks_run(m->spec, "prestart", st, 0, &hook_err);
      if (hr == 0) hr = hooks_run(m->spec, "createRuntime", st, 0, &hook_err);
      char ack[1 + sizeof(int32_t)] = {hr == 0};
      int32_t p32 = (int32_t)pid;
      memcpy(ack + 1, &p32, sizeof p32);
      if (write(sync[1], ack, sizeof ack) != (ssize_t)sizeof ack) {}
      continue;
    }
    if (n == 1 && !msg.len && tmp[0] == '\x02' && sync[1] >= 0) { /* init asks for fuse-overlayfs, and waits */
      berth_error_t ef = NULL;
      char ack = fuse_serve(m, pid, &ef) == 0 ? 1 : 0;
      if (ef) berth_warn("%s", ef->msg);
      berth_error_free(ef);
      if (write(sync[1], &ack, 1) != 1) {}
      continue;
    }
    if (n > 0) buf_append(&msg, tmp, n);
  }
  close(rep[0]);
  if (sync[1] >= 0) close(sync[1]);
  berth_trace("launch: init reported");
  if (msg.len && msg.data[0] == '\x01') { /* a remark, not an error */
    L->note = strdup(msg.data + 1);
    buf_free(&msg);
  }
  if (L->single) { /* said with the create's result, and kept in its state */
    char *n = xasprintf("%s%sa single-id mapping: only root (you) exists in this container, and image files of other "
                        "owners are root's (this user has no subordinate ids, or no working newuidmap); `berth "
                        "preflight` shows the fix", L->note ? L->note : "", L->note ? "; " : "");
    free(L->note);
    L->note = n;
  }
  if (!fail && hook_err) fail = hook_err->msg; /* init only says that one failed */
  /* init's own failure explains a network that could not attach to it */
  if (!fail && !msg.len && net_fail) fail = net_fail;
  if (eh.pid > 0 && !fail && !msg.len) {
    if (egress_ready(&eh, &e5) < 0) fail = e5->msg;
    berth_trace("launch: egress table in place");
  }
  if (eh.ready_fd >= 0) close(eh.ready_fd);
  if (eh.pid > 0) L->egress = eh.pid;
  berth_error_t e4 = NULL;
  if (!fail && !msg.len && json_array_size(m->ports)) {
    L->fwd = pf_start(pid, m->rootless, m->ports, m->port_fds, &e4);
    if (L->fwd < 0) {
      L->fwd = 0;
      fail = e4->msg;
    }
  }
  pf_close(m->ports, m->port_fds); /* the forwarder has them */
  if (exitp[0] >= 0) close(exitp[0]);
  int r = 0;
  if (fail || msg.len) {
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    pid_t helpers[] = {L->helper, L->egress};
    for (int i = 0; i < 2; i++)
      if (helpers[i] > 0) {
        kill(helpers[i], SIGKILL);
        while (waitpid(helpers[i], NULL, 0) < 0 && errno == EINTR) {}
      }
    berth_error(err, -EIO, "%s", fail ? fail : msg.data);
    if (L->cg && !m->cg_made) cgroup_destroy(L->cg);
    json_decref(L->cg);
    free(L->note);
    memset(L, 0, sizeof *L);
    r = -1;
  }
  buf_free(&msg);
  berth_error_free(e1);
  berth_error_free(e2);
  berth_error_free(e3);
  berth_error_free(e4);
  berth_error_free(e5);
  berth_error_free(hook_err);
  return r;
}

/* poststart hooks: on the host, once the container runs; a failure is a
 * remark (the OCI runtime spec: warn and go on), added to *note */
static void poststart(json_t *spec, const char *name, const char *cdir, pid_t pid, char **note) {
  if (!hooks_any(spec, "poststart")) return;
  cleanup_free char *st = hooks_state(spec, name, "running", pid, cdir);
  berth_error_t e = NULL;
  if (hooks_run(spec, "poststart", st, 0, &e) == 0) return;
  char *n = xasprintf("%s%s%s", *note ? *note : "", *note ? "; " : "", e->msg);
  free(*note);
  *note = n;
  berth_error_free(e);
}

/* poststop hooks: on the host, once the container has ended (its record
 * says so) or is removed; a failure is a warning */
static void poststop(const char *name, const char *cdir, json_t *known) {
  cleanup_free char *sp = known ? NULL : xasprintf("%s/config.json", cdir);
  json_t *spec = known ? json_incref(known) : json_load_file(sp, 0, NULL);
  if (hooks_any(spec, "poststop")) {
    cleanup_free char *st = hooks_state(spec, name, "stopped", 0, cdir);
    berth_error_t e = NULL;
    if (hooks_run(spec, "poststop", st, 0, &e) < 0) berth_warn("container %s: %s", name, e->msg);
    berth_error_free(e);
  }
  json_decref(spec);
}

/* The state of a started container: running, with its processes. */
static void record_running(const char *name, const struct launched *L, pid_t monitor) {
  json_t *st = state_read(name);
  if (!st) st = json_object();
  cleanup_free char *bid = boot_id_read();
  json_object_set_new(st, "status", json_string("running"));
  /* the last run's end belongs to that run */
  json_object_del(st, "exit_code");
  json_object_del(st, "finished_at");
  json_object_del(st, "oom_killed");
  json_object_set_new(st, "init", proc_ref(L->pid));
  json_object_set_new(st, "monitor", proc_ref(monitor));
  json_object_set_new(st, "boot_id", json_string(bid));
  json_object_set_new(st, "started_at", json_integer((json_int_t)time(NULL)));
  json_object_set_new(st, "single_id_mapping", json_boolean(L->single));
  if (L->note) json_object_set_new(st, "notes", json_pack("[s]", L->note));
  if (L->helper > 0) json_object_set_new(st, "network_helper", proc_ref(L->helper));
  if (L->fwd > 0) json_object_set_new(st, "port_forwarder", proc_ref(L->fwd));
  if (L->egress > 0) json_object_set_new(st, "egress_helper", proc_ref(L->egress));
  state_write_warn(name, st, "the start");
  json_decref(st);
}

static void monitor_serve(struct monitor_args *m, pid_t pid, int out_r, int err_r, struct log_writer *lw);
static json_t *read_env_fd(int fd);

static int open_monitor_log(const char *cdir) {
  cleanup_free char *p = xasprintf("%s/monitor.log", cdir);
  return open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
}

static void monitor_main(struct monitor_args *m) {
  proc_set_title("berth-monitor");
  signal(SIGPIPE, SIG_IGN);
  struct launched L;
  berth_error_t err = NULL;
  /* a service: its command waits for our go, its output comes to us */
  int go[2] = {-1, -1}, op[2] = {-1, -1}, ep[2] = {-1, -1};
  json_t *svc_env = NULL;
  if (m->service) {
    if (pipe2(go, O_CLOEXEC) < 0 || pipe2(op, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
      monitor_report(m->report_fd, json_pack("{s:s}", "error", "pipe for the service's output"));
      _exit(1);
    }
    svc_env = read_env_fd(m->env_fd);
    m->run = m->service;
    m->run_env = svc_env;
    m->run_go = go[0], m->out_fd = op[1], m->err_fd = ep[1];
  }
  if (launch(m, &L, &err) < 0) {
    monitor_report(m->report_fd, json_pack("{s:s}", "error", err->msg));
    _exit(1);
  }
  /* opened after init exists (it must hold no fd of the host's) and
   * before our report: until then the create or start holds the
   * container's lock, so this is its directory, and no `rm` is emptying it
   * (a file made after the report could land in a directory being
   * removed, which then stays with that file alone) */
  int lf = open_monitor_log(m->cdir);
  struct log_writer lw = {.fd = -1, .dirfd = -1};
  if (m->service && log_open(&lw, m->cdir, &err) < 0) {
    fprintf(stderr, "berth-monitor: %s\n", err->msg); /* the service runs; its output is dropped */
    berth_error_clear(&err);
  }
  if (m->service) {
    close(go[0]), close(op[1]), close(ep[1]);
    json_decref(svc_env);
    char g = 1;
    if (write(go[1], &g, 1) != 1) {}
    close(go[1]);
  }
  pid_t pid = L.pid;
  poststart(m->spec, m->name, m->cdir, pid, &L.note);
  record_running(m->name, &L, getpid());
  json_t *okmsg = json_pack("{s:b, s:i, s:O}", "ok", 1, "pid", (int)pid, "cgroup", L.cg);
  if (L.note) json_object_set_new(okmsg, "note", json_string(L.note));
  monitor_report(m->report_fd, okmsg);
  berth_trace("monitor: reported ok");
  state_sync(m->name); /* durable now, off the create's path */
  /* from here on nobody reads our stdio */
  int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (nul >= 0) dup2(nul, 0);
  if (lf >= 0) dup2(lf, 1), dup2(lf, 2);
  if (m->resident) monitor_serve(m, pid, op[0], ep[0], &lw); /* does not return */
  {
    /* hand the waiting to berth-tiny; it execs `berth __monitor-exit` at the end */
    int self = open("/proc/self/exe", O_RDONLY);
    if (self >= 0) {
      struct berth_config *cfg = config_get(NULL);
      char spid[24], sfd[24];
      snprintf(spid, sizeof spid, "%d", (int)pid);
      snprintf(sfd, sizeof sfd, "%d", self);
      cleanup_free char *e1 = cfg ? xasprintf("BERTH_ROOT=%s", cfg->data_dir) : NULL;
      cleanup_free char *e2 = cfg ? xasprintf("BERTH_RUNROOT=%s", cfg->run_dir) : NULL;
      cleanup_free char *e3 = getenv("BERTH_CONFIG") ? xasprintf("BERTH_CONFIG=%s", getenv("BERTH_CONFIG")) : NULL;
      cleanup_free char *e4 = xasprintf("HOME=%s", cfg ? cfg->home : "/");
      char *tenvp[] = {e1, e2, e4, e3, NULL};
      /* NAME:ID:PID: the name may be reused by a new container, or the
       * container started again, before we record */
      cleanup_free char *who = xasprintf("%s:%s:%d", m->name, m->id ? m->id : "", (int)pid);
      char *targv[] = {"berth-monitor", "monitor", spid, sfd, who, NULL};
      signal(SIGPIPE, SIG_DFL);
      exec_tiny(targv, tenvp);
      close(self);
    }
  }
  /* no berth-tiny here (not x86_64): wait ourselves, then the same last step */
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  cleanup_free char *who = xasprintf("%s:%s:%d", m->name, m->id ? m->id : "", (int)pid);
  container_monitor_exit(who, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  _exit(0);
}


/* `berth __monitor-exit NAME STATUS`: berth-tiny's monitor execs this when
 * the container's init has ended. */
static int record_exit(const char *who, int code, bool reap_children);

int container_monitor_exit(const char *who, int code) { return record_exit(who, code, true); }

/* reap_children: only in a process whose children are all the container's
 * (the monitor, or berth run's CLI): never in `ls`, which an embedding
 * program may call */
static int record_exit(const char *who, int code, bool reap_children) {
  /* who is NAME:ID: record only into the container this monitor watched */
  /* NAME:ID[:INITPID]: the init it watched, as a start may follow at once */
  char name[72] = "", id[40] = "";
  const char *colon = strchr(who, ':');
  if (!colon || (size_t)(colon - who) >= sizeof name) return -1;
  memcpy(name, who, (size_t)(colon - who));
  const char *c2 = strchr(colon + 1, ':');
  size_t idlen = c2 ? (size_t)(c2 - colon - 1) : strlen(colon + 1);
  if (idlen >= sizeof id) return -1;
  memcpy(id, colon + 1, idlen);
  long watched = c2 ? strtol(c2 + 1, NULL, 10) : 0;
  if (!container_name_valid(name)) return -1;
  int st;
  /* our other child, the network helper, ends when init's end of its exit
   * pipe closes: reap it (briefly waiting), whether or not state remains */
  for (int i = 0; reap_children && i < 200; i++) {
    pid_t p = waitpid(-1, &st, WNOHANG);
    if (p < 0 && errno == ECHILD) break;
    if (p == 0) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  cleanup_free char *lockp = cpath(name, "lock");
  int lk = lockp ? open(lockp, O_RDWR | O_CLOEXEC) : -1;
  if (lk < 0 || flock(lk, LOCK_EX) < 0) return -1; /* removed meanwhile: nothing to record */
  json_t *s2 = state_read(name);
  if (s2 && strcmp(json_string_value(json_object_get(s2, "id")) ?: "", id)) {
    json_decref(s2); /* the name now belongs to another container */
    s2 = NULL;
  }
  if (s2 && watched > 0 && json_integer_value(json_object_get(json_object_get(s2, "init"), "pid")) != watched) {
    json_decref(s2); /* started again meanwhile: that start's monitor records its end */
    s2 = NULL;
  }
  if (s2) {
    bool ended_now = strcmp(jstr(s2, "status") ?: "", "exited") != 0;
    /* the network helper is our child: end it (it usually has, with init's pipe) and reap it */
    pid_t hp = (pid_t)json_integer_value(json_object_get(json_object_get(s2, "network_helper"), "pid"));
    if (hp > 0) {
      if (state_proc_alive(s2, "network_helper")) kill(hp, SIGTERM);
      while (waitpid(hp, &st, 0) < 0 && errno == EINTR) {}
    }
    json_object_set_new(s2, "status", json_string("exited"));
    json_object_set_new(s2, "exit_code", json_integer(code));
    json_object_set_new(s2, "finished_at", json_integer((json_int_t)time(NULL)));
    json_object_set_new(s2, "oom_killed", json_boolean(cgroup_oom_kills(json_object_get(s2, "cgroup")) > 0));
    berth_error_t we = NULL;
    if (state_write(name, s2, &we) < 0) {
      berth_warn("recording the end of %s: %s", name, we->msg);
      berth_error_free(we);
    }
    cgroup_destroy(json_object_get(s2, "cgroup"));
    if (ended_now) {
      cleanup_free char *cdir = cpath(name, NULL);
      if (cdir) poststop(name, cdir, NULL);
    }
    hb_release(jstr(s2, "id"));
    /* a stopped member loses its name on the network */
    if (net_is_named(jstr(s2, "network"))) net_named_refresh(jstr(s2, "network"), container_network_members);
    json_decref(s2);
  }
  close(lk);
  while (reap_children && waitpid(-1, &st, WNOHANG) > 0) {}
  return 0;
}

/* ---------- create ---------- */
/* resolv.conf on berth0: the host's, with a loopback resolver on
 * 127.0.0.1 (a local caching daemon) reached through the gateway address */
static char *hostbr_resolv(void) {
  cleanup_free char *hv = NULL;
  struct buf b = {0};
  /* systemd-resolved's stub listens on 127.0.0.53 only, which the gateway
   * does not reach: take the upstream servers it uses (as Docker does) */
  if (read_file("/etc/resolv.conf", 1 << 16, &hv, NULL, NULL) == 0 && strstr(hv, "nameserver 127.0.0.53")) {
    cleanup_free char *up = NULL;
    if (read_file("/run/systemd/resolve/resolv.conf", 1 << 16, &up, NULL, NULL) == 0 && strstr(up, "nameserver")) {
      free(hv);
      hv = up;
      up = NULL;
    }
  }
  if (hv) {
    char *save = NULL;
    for (char *l = strtok_r(hv, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
      char ns[64];
      cleanup_free char *line = (sscanf(l, "nameserver %63s", ns) == 1 && (str_has_prefix(ns, "127.") || !strcmp(ns, "::1")))
                                    ? xstrdup("nameserver " HB_GATEWAY) : xstrdup(l);
      buf_append(&b, line, strlen(line));
      buf_append(&b, "\n", 1);
    }
  }
  if (!b.len) buf_append(&b, "nameserver " HB_GATEWAY "\n", strlen("nameserver " HB_GATEWAY "\n"));
  buf_append(&b, "", 1);
  return b.data;
}

/* into a new container directory (written in place: nothing reads them yet) */
/* again: a start of a stopped container (the files are there) */
static int gen_write(const char *p, const char *v, bool again, berth_error_t *err) {
  return again ? write_file_replace(p, v, strlen(v), 0644, false, err) : write_file_new(p, v, strlen(v), 0644, err);
}

/* egress: a policy's resolver answers the container's DNS */
static int write_gen_files(const char *cdir, const char *name, const char *network, const char *ip, bool hostbr, bool egress,
                           bool again, berth_error_t *err) {
  /* a named network's members also go through slirp4netns for the outside */
  bool host_net = !strcmp(network, "host"), bridge = !strcmp(network, "bridge") || net_is_named(network);
  cleanup_free char *etc = xasprintf("%s/etc", cdir);
  if (mkdir(etc, 0755) < 0 && errno != EEXIST) return berth_error(err, errno, "create `%s`", etc);
  cleanup_free char *hn = xasprintf("%s/hostname", etc);
  cleanup_free char *hnv = xasprintf("%s\n", name);
  if (gen_write(hn, hnv, again, err) < 0) return -1;
  cleanup_free char *hosts = xasprintf("%s/hosts", etc);
  cleanup_free char *hv = xasprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n%s",
                                    ip ? ip : bridge ? NET_GUEST_ADDR : "127.0.1.1", name,
                                    hostbr ? HB_GATEWAY "\thost.berth.internal\n" : bridge ? NET_HOST_ADDR "\thost.berth.internal\n" : "");
  if (gen_write(hosts, hv, again, err) < 0) return -1;
  cleanup_free char *rc = xasprintf("%s/resolv.conf", etc);
  cleanup_free char *rv = NULL;
  if (host_net && read_file("/etc/resolv.conf", 1 << 16, &rv, NULL, NULL) == 0) {
  } else if (egress && bridge) {
    rv = strdup("# berth: an egress policy: berth's resolver answers the names it allows\nnameserver " EGRESS_RESOLVER "\n");
  } else if (hostbr) {
    rv = hostbr_resolv();
  } else if (bridge) {
    rv = strdup("nameserver " NET_DNS_ADDR "\n");
  } else {
    free(rv);
    rv = strdup("# berth: this container has no external network (network: none)\n");
  }
  return gen_write(rc, rv, again, err);
}

static int remove_dir_fn(void *arg, char **result, berth_error_t *err) {
  *result = NULL;
  return rm_rf((const char *)arg, err);
}

/* what a background removal (run --rm) leaves to its detached child: the
 * container's mount namespace (hold_fd; the unmounts wait for expedited
 * RCU) and its cgroup */
struct rm_later {
  int hold_fd;
  json_t *cg;
};
/* Remove a container directory; rootless it may hold subordinate-id files,
 * so removal happens inside the mapped user namespace. */
static int remove_container_dir_at(int userns_fd, const char *cdir, struct rm_later *later, berth_error_t *err);
static int remove_container_dir(const char *cdir, berth_error_t *err) { return remove_container_dir_at(-1, cdir, NULL, err); }

/* <data>/trash: removed containers' directories, being deleted */
struct trash_job {
  const char *dir, *own; /* the trash dir, and the entry this removal put there */
};

static int empty_trash_fn(void *arg, char **result, berth_error_t *err) {
  (void)err;
  *result = NULL;
  const struct trash_job *t = arg;
  cleanup_close int dfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return 0;
  rm_rf_at(dfd, t->own, NULL);
  /* what an earlier removal could not finish (killed, or a crash) */
  DIR *d = fdopendir(dup(dfd));
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) rm_rf_at(dfd, de->d_name, NULL);
  if (d) closedir(d);
  return 0;
}

/* what the detached child that empties a removed container needs */
struct trash_child {
  struct trash_job job;
  json_t *cg;
  int userns_fd;
  int held[2]; /* the fork: we let the mount namespace go first (EOF) */
  int gone[2]; /* the CLI's clone: EOF once this process is gone */
};

static int trash_main(void *arg) {
  struct trash_child *tc = arg;
  char b;
  if (tc->gone[0] >= 0) { /* on our memory: nothing until we have exited */
    close(tc->gone[1]);
    while (read(tc->gone[0], &b, 1) > 0) {}
  }
  if (tc->held[0] >= 0) {
    close(tc->held[1]);
    while (read(tc->held[0], &b, 1) < 0 && errno == EINTR) {}
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  setsid();
  int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (nul >= 0) dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
  /* nothing of the caller's: not its pipes (a shell's $(...) would wait), not its locks */
  int ufd = tc->userns_fd >= 0 ? dup2(tc->userns_fd, 3) : -1;
  syscall(SYS_close_range, ufd >= 0 ? 4U : 3U, ~0U, 0U); /* the held mount namespace goes: unmounted */
  proc_set_title("berth-trash");
  /* out of the way of whatever starts next (a loop of runs) */
  struct sched_param sp = {0};
  sched_setscheduler(0, SCHED_IDLE, &sp);
  cgroup_destroy(tc->cg); /* empty: init was reaped */
  char *res = NULL;
  berth_error_t e = NULL;
  /* rootless, this child moves into the container's user namespace
   * itself rather than fork a helper there */
  if (ufd >= 0 && userns_enter(ufd, &e) == 0) empty_trash_fn(&tc->job, &res, &e);
  else userns_run_at(-1, empty_trash_fn, &tc->job, &res, &e);
  _exit(0);
}

/* Embedded (a long-lived caller): a double fork leaves the caller no zombie. */
static pid_t trash_spawn_embedded(struct trash_child *tc, struct rm_later *later) {
  /* the child lets the mount namespace go only after we have: the last
   * holder pays for the unmounts */
  if (later->hold_fd >= 0 && pipe2(tc->held, O_CLOEXEC) < 0) tc->held[0] = tc->held[1] = -1;
  pid_t p = fork();
  if (p == 0) {
    if (fork() != 0) _exit(0);
    trash_main(tc);
  }
  if (tc->held[0] >= 0) close(tc->held[0]);
  if (p > 0 && later->hold_fd >= 0) {
    close(later->hold_fd);
    later->hold_fd = -1;
  }
  if (tc->held[1] >= 0) close(tc->held[1]);
  while (p > 0 && waitpid(p, NULL, 0) < 0 && errno == EINTR) {}
  return p;
}

/* The berth command exits right after: its child is reparented and needs
 * no wait, and need not copy our memory either. It is cloned onto it
 * (CLONE_VM, a stack of its own) and waits, all signals blocked, until
 * this process has exited (EOF on `gone`: its write end is only ours), so
 * the two never run on that memory at once; a fork would copy the page
 * tables for a process that touches almost nothing of them. What it
 * needs is copied for it, and never freed by us. */
static pid_t trash_spawn_cli(struct trash_child *tc, struct rm_later *later) {
  struct trash_child *c = malloc(sizeof *c);
  if (!c || pipe2(tc->gone, O_CLOEXEC) < 0) {
    free(c);
    return trash_spawn_embedded(tc, later);
  }
  *c = *tc;
  c->job.dir = xstrdup(tc->job.dir);
  c->job.own = xstrdup(tc->job.own);
  c->cg = tc->cg ? json_deep_copy(tc->cg) : NULL;
  /* 8 MiB: untouched pages cost nothing, and deep trees recurse */
  pid_t p = clone_vm(trash_main, c, 0, 8 << 20);
  close(tc->gone[0]);
  if (p < 0) {
    close(tc->gone[1]);
    json_decref(c->cg);
    free((char *)c->job.dir), free((char *)c->job.own), free(c);
    tc->gone[0] = tc->gone[1] = -1;
    return trash_spawn_embedded(tc, later);
  }
  /* gone[1] stays open until we exit; the child's copy of the mount
   * namespace fd is the last once ours is closed */
  if (later->hold_fd >= 0) {
    close(later->hold_fd);
    later->hold_fd = -1;
  }
  return p;
}

/* A removed container's name is free at once: its directory is renamed
 * into <data>/trash and a detached child deletes it, so `rm` and
 * `run --rm` do not wait for the disk (longer the bigger the container).
 * Rootless, the child works in the container's user namespace
 * (userns_fd), where the subordinate ids
 * its files belong to are mapped. Whatever is left in trash (a child
 * killed, a crash) goes with the next removal. */
static int remove_container_dir_at(int userns_fd, const char *cdir, struct rm_later *later, berth_error_t *err) {
  disk_release(cdir); /* a limited writable layer's filesystem, if any */
  struct berth_config *cfg = config_get(NULL);
  if (!later) cfg = NULL; /* `berth rm`: the space is free when it returns */
  cleanup_free char *trash = cfg ? xasprintf("%s/trash", cfg->data_dir) : NULL;
  cleanup_free char *rnd = random_hex(6);
  const char *base = strrchr(cdir, '/') ? strrchr(cdir, '/') + 1 : cdir;
  cleanup_free char *own = xasprintf("%s-%s", base, rnd ? rnd : "x");
  cleanup_free char *dst = trash ? xasprintf("%s/%s", trash, own) : NULL;
  if (dst && (mkdir(trash, 0700) == 0 || errno == EEXIST) && rename(cdir, dst) == 0) {
    fflush(stdout);
    fflush(stderr);
    struct trash_child tc = {.job = {.dir = trash, .own = own}, .cg = later->cg, .userns_fd = userns_fd,
                             .held = {-1, -1}, .gone = {-1, -1}};
    pid_t p = berth_is_cli ? trash_spawn_cli(&tc, later) : trash_spawn_embedded(&tc, later);
    if (p > 0) return 0;
    cdir = dst; /* no fork: delete it here */
  }
  char *res = NULL;
  int r = userns_run_at(userns_fd, remove_dir_fn, (void *)cdir, &res, err);
  free(res);
  return r;
}

/* The image's record and config. On success *held is the store, open
 * shared: a prune or rmi (exclusive) waits until the container's
 * layers.json names the layers, and then keeps them (store_close it). */
static int pull_if_absent(const struct create_opts *o, json_t **rec, json_t **cfg, struct store *held, berth_error_t *err) {
  if (store_open(held, false, err) < 0) return -1;
  int r = store_lookup(held, o->image, rec, cfg, err);
  if (r == 0) return 0;
  store_close(held);
  if (!err || !*err || (*err)->status != ENOENT) return r;
  berth_error_clear(err);
  struct berth_pull_options po = {.platform = o->platform, .quiet = o->quiet};
  char *res = NULL;
  if (berth_image_pull(o->image, &po, &res, err) < 0) return -1;
  free(res);
  if (store_open(held, false, err) < 0) return -1;
  r = store_lookup(held, o->image, rec, cfg, err);
  if (r < 0) store_close(held);
  return r;
}

/* The caller's environment values, sealed in a memfd (never on disk). */
static json_t *env_array(json_t *env) {
  json_t *arr = json_array();
  const char *k;
  json_t *v;
  json_object_foreach(env, k, v) if (json_is_string(v)) {
    cleanup_free char *kv = xasprintf("%s=%s", k, json_string_value(v));
    json_array_append_new(arr, json_string(kv));
  }
  return arr;
}

static int env_memfd(json_t *env, berth_error_t *err) {
  json_t *arr = env_array(env);
  char *txt = json_dumps(arr, JSON_COMPACT);
  json_decref(arr);
  int fd = memfd_create("berth-env", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || !txt) {
    free(txt);
    return berth_error(err, errno, "memfd for the environment");
  }
  size_t len = strlen(txt);
  bool ok = write(fd, txt, len) == (ssize_t)len;
  explicit_bzero(txt, len);
  free(txt);
  if (!ok || fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
    close(fd);
    return berth_error(err, errno, "seal the environment memfd");
  }
  return fd;
}

static bool reap_stale_create(const char *dir, const char *name, json_t *st);
static bool reap_expired(const char *name, json_t *st);
/* the name is taken by a create that died: free it */
static bool reap_named(const char *dir, const char *name) {
  json_t *st = state_read(name);
  bool r = reap_stale_create(dir, name, st);
  json_decref(st);
  errno = EEXIST;
  return r;
}

struct create_ctx {
  const struct create_opts *o;
  json_t *cdi_edits, *cdi_notes; /* the devices asked for, resolved before anything is made */
  struct berth_config *cfg;
  const char *name, *cdir, *network;
  json_t *img, *icfg;
  json_t *cg, *spec; /* owned by the caller, filled here */
  int env_fd;
  bool slirp;     /* outbound through slirp4netns (bridge or a named network) */
  int *port_fds;  /* published ports, bound on the host before anything else */
  char *note; /* a remark of the container's setup, for the result */
  char *disk_note; /* a disk limit asked for and not enforced: why */
  bool disk_on;    /* the writable layer is a filesystem of disk_limit bytes */
  int lock_fd;
  char *id, *cgname;
  struct net_lease lease; /* named network: address and holder */
  bool hostbr;            /* root's default network on berth0 */
  char hb_ip[16];
  /* container_run: what launch() started, and the launcher's ends */
  struct launched L;
  int userns_fd; /* rootless: the container's user namespace, for the removal */
  int mnt_fd;
  int run_go_w, pty_sock, out_r, err_r;
  struct store store; /* open shared from the image's lookup to layers.json */
  bool store_held;
  /* a service: its command (a JSON array, and argv pointing into it) */
  json_t *svc_argv;
  char **svc_cargv;
  struct exec_opts svc;
  bool resident;
  double expires_at;
};

/* the monitor's arguments for this create */
static struct monitor_args monitor_args_of(struct create_ctx *c) {
  return (struct monitor_args){.name = c->name, .cdir = c->cdir, .spec = c->spec, .cgname = c->cgname, .limits = &c->o->limits,
                               .rootless = c->cfg->rootless,
                               .own_net = strcmp(c->network, "host") != 0, .report_fd = -1, .lock_fd = -1,
                               .env_fd = c->env_fd, .bridge = c->slirp, .port_fds = c->port_fds, .id = c->id,
                               .ports = c->o->ports, .named = net_is_named(c->network), .lease = &c->lease,
                               .net_single = c->lease.single, .ip = c->hostbr ? c->hb_ip : c->lease.ip, .hostbr = c->hostbr,
                               .run_go = -1, .pty_sock = -1, .out_fd = -1, .err_fd = -1, .egress = c->o->egress};
}

/* Spawn the monitor and wait for its verdict on the container's setup. */
static int start_monitor(struct create_ctx *c, berth_error_t *err) {
  int rp[2];
  if (pipe2(rp, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  fflush(stdout);
  fflush(stderr);
  pid_t mid = fork();
  if (mid < 0) {
    close(rp[0]), close(rp[1]);
    return berth_error(err, errno, "fork");
  }
  if (mid == 0) {
    close(rp[0]);
    close(c->lock_fd); /* the monitor must not hold the create's lock */
    setsid();
    pid_t m2 = fork();
    if (m2 != 0) _exit(m2 < 0);
    struct monitor_args ma = monitor_args_of(c);
    ma.report_fd = rp[1];
    ma.cg_made = c->cg;
    ma.service = c->svc_argv ? &c->svc : NULL;
    ma.resident = c->resident;
    ma.expires_at = c->expires_at;
    monitor_main(&ma);
    _exit(0);
  }
  close(rp[1]);
  waitpid(mid, NULL, 0);
  struct buf rb = {0};
  char tmp[4096];
  ssize_t n;
  while ((n = read(rp[0], tmp, sizeof tmp)) > 0) {
    buf_append(&rb, tmp, (size_t)n);
    if (tmp[n - 1] == '\n') break; /* the whole verdict (JSON has no raw newline) */
  }
  close(rp[0]);
  json_t *rep = rb.data ? json_loads(rb.data, 0, NULL) : NULL;
  buf_free(&rb);
  int r = 0;
  if (!rep) r = berth_error(err, -EIO, "container monitor died during setup");
  else if (!json_is_true(json_object_get(rep, "ok")))
    r = berth_error(err, -EIO, "%s", json_string_value(json_object_get(rep, "error")) ?: "container failed to start");
  else {
    if (json_object_get(rep, "note")) c->note = strdup(json_string_value(json_object_get(rep, "note")));
  }
  json_decref(rep);
  return r;
}

/* berth run: launch from here; this process is the container's monitor
 * until its command ends (run_finish). */
static int run_start(struct create_ctx *c, berth_error_t *err) {
  const struct exec_opts *eo = c->o->run;
  int go[2] = {-1, -1}, sock[2] = {-1, -1}, op[2] = {-1, -1}, ep[2] = {-1, -1};
  int r = 0;
  if (pipe2(go, O_CLOEXEC) < 0 || (eo->tty && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock) < 0) ||
      (eo->capture && !eo->tty && (pipe2(op, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0)))
    r = berth_error(err, errno, "pipe");
  json_t *envkv = env_array(c->o->env);
  if (r == 0) {
    struct monitor_args ma = monitor_args_of(c);
    ma.lock_fd = c->lock_fd;
    ma.run = eo;
    ma.run_env = envkv;
    ma.run_go = go[0], ma.pty_sock = sock[1], ma.out_fd = op[1], ma.err_fd = ep[1];
    ma.volatile_upper = c->o->remove_on_exit;
    fflush(stdout);
    fflush(stderr);
    /* a pipe to an init that failed must not kill us */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGPIPE, &ign, &old);
    r = launch(&ma, &c->L, err);
    sigaction(SIGPIPE, &old, NULL);
  }
  json_decref(envkv);
  int *theirs[] = {&go[0], &sock[1], &op[1], &ep[1]}, *ours[] = {&go[1], &sock[0], &op[0], &ep[0]};
  for (int i = 0; i < 4; i++) {
    if (*theirs[i] >= 0) close(*theirs[i]);
    if (r < 0 && *ours[i] >= 0) close(*ours[i]), *ours[i] = -1;
  }
  c->run_go_w = go[1], c->pty_sock = sock[0], c->out_r = op[0], c->err_r = ep[0];
  if (r < 0) return -1;
  /* the command may start: the bookkeeping below overlaps it */
  char g = 1;
  if (write(c->run_go_w, &g, 1) != 1) {}
  close(c->run_go_w);
  c->run_go_w = -1;
  berth_trace("run: go");
  {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/ns/mnt", (int)c->L.pid);
    c->mnt_fd = open(p, O_RDONLY | O_CLOEXEC);
  }
  if (c->cfg->rootless) { /* outlives init: the removal runs in it, no newuidmap round */
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/ns/user", (int)c->L.pid);
    c->userns_fd = open(p, O_RDONLY | O_CLOEXEC);
  }
  poststart(c->spec, c->name, c->cdir, c->L.pid, &c->L.note);
  record_running(c->name, &c->L, getpid());
  c->cg = json_incref(c->L.cg);
  if (c->L.note) c->note = strdup(c->L.note);
  return 0;
}

/* Everything after the container directory exists; the caller undoes it all on failure. */
/* A seccomp profile of the user's own for the workloads: compiled now (a
 * bad one fails the create before anything runs), kept as
 * <cdir>/seccomp.bpf, and written into the spec (linux.seccomp) with the
 * program's path (annotation berth.seccomp) for init and exec to load.
 * Init itself keeps berth's filter. */
static int seccomp_for_container(struct create_ctx *c, const char *path, berth_error_t *err) {
  cleanup_free char *txt = NULL;
  size_t len = 0;
  if (read_file(path, 1 << 20, &txt, &len, err) < 0) return berth_error_wrap(err, "seccomp profile `%s`", path);
  json_error_t je;
  json_t *p = json_loadb(txt, len, JSON_REJECT_DUPLICATES, &je);
  if (!p) return berth_error(err, -EINVAL, "seccomp profile `%s`: line %d: %s", path, je.line, je.text);
  cleanup_free char *bpf = NULL;
  size_t n = 0;
  cleanup_free char *bp = xasprintf("%s/seccomp.bpf", c->cdir);
  if (security_seccomp_bpf(p, &bpf, &n, err) < 0 || write_file_new(bp, bpf, n, 0600, err) < 0) {
    json_decref(p);
    return berth_error_wrap(err, "`%s`", path);
  }
  json_t *linux_ = json_object_get(c->spec, "linux"), *ann = json_object_get(c->spec, "annotations");
  if (!json_is_object(linux_) || !json_is_object(ann)) {
    json_decref(p);
    return berth_error(err, -EINVAL, "container spec lacks linux or annotations");
  }
  json_object_set_new(linux_, "seccomp", p);
  json_object_set_new(ann, "berth.seccomp", json_string(bp));
  return 0;
}

/* ---------- the main process ---------- */
/* A shell alone (flags at most, no -c): what an image gives when it is
 * meant to be entered, not run. */
static bool bare_shell(json_t *argv) {
  size_t n = json_array_size(argv);
  const char *a0 = n ? json_string_value(json_array_get(argv, 0)) : NULL;
  if (!a0) return true;
  const char *b = strrchr(a0, '/') ? strrchr(a0, '/') + 1 : a0;
  static const char *shells[] = {"sh", "bash", "zsh", "ash", "dash", "ksh", "mksh", "fish", NULL};
  bool sh = false;
  for (int i = 0; shells[i]; i++) sh |= !strcmp(b, shells[i]);
  if (!sh) return false;
  for (size_t i = 1; i < n; i++) {
    const char *x = json_string_value(json_array_get(argv, i));
    if (!x || x[0] != '-' || !strcmp(x, "-c")) return false;
  }
  return true;
}

static void append_strings(json_t *to, json_t *from) {
  size_t i;
  json_t *v;
  json_array_foreach(from, i, v) if (json_is_string(v)) json_array_append(to, v);
}

/* The service's command, or NULL for a dev container (see create_opts). */
static int resolve_main(const struct create_opts *o, json_t *icc, json_t **argv, berth_error_t *err) {
  *argv = NULL;
  bool given = o->command || o->entrypoint;
  if (given && o->keep_alive)
    return berth_error(err, -EINVAL, "keep_alive and a command exclude each other: a command given runs as the main "
                       "process, keep_alive keeps berth's init alone; drop one");
  if (!given && (o->keep_alive || o->dev_needed)) return 0;
  json_t *a = json_array();
  append_strings(a, o->entrypoint ? o->entrypoint : json_object_get(icc, "Entrypoint"));
  /* Docker's rule: a new entrypoint drops the image's Cmd */
  append_strings(a, o->command ? o->command : o->entrypoint ? NULL : json_object_get(icc, "Cmd"));
  if (!given && bare_shell(a)) {
    json_decref(a);
    return 0;
  }
  if (!json_array_size(a) || !*json_string_value(json_array_get(a, 0))) {
    json_decref(a);
    return berth_error(err, -EINVAL, "no command to run: the entrypoint and command are empty");
  }
  *argv = a;
  return 0;
}

int container_parse_restart(const char *s, char *policy, size_t plen, int *max, berth_error_t *err) {
  *max = 0;
  const char *r = s && *s ? s : "no";
  static const char *ok[] = {"no", "always", "unless-stopped", NULL};
  for (int i = 0; ok[i]; i++)
    if (!strcmp(r, ok[i])) return snprintf(policy, plen, "%s", r), 0;
  if (str_has_prefix(r, "on-failure") && (!r[10] || r[10] == ':')) {
    if (r[10]) {
      char *end;
      long n = strtol(r + 11, &end, 10);
      if (!r[11] || *end || n < 0 || n > 1000000)
        return berth_error(err, -EINVAL, "restart policy `%.60s`: on-failure:N takes a count of restarts (0: no limit)", s);
      *max = (int)n;
    }
    return snprintf(policy, plen, "on-failure"), 0;
  }
  return berth_error(err, -EINVAL, "restart policy `%.60s`: use no, on-failure[:N], always or unless-stopped", s);
}

/* The variables kept for a later start: the ones named in env_keep (all
 * when NULL), in <cdir>/env.json, 0600 in the 0700 container directory. */
static int env_keep_write(struct create_ctx *c, berth_error_t *err) {
  json_t *kept = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(c->o->env, k, v) {
    bool keep = !c->o->env_keep;
    size_t i;
    json_t *n;
    json_array_foreach(c->o->env_keep, i, n) keep |= !strcmp(json_string_value(n) ?: "", k);
    if (keep && json_is_string(v)) json_object_set(kept, k, v);
  }
  int r = 0;
  if (json_object_size(kept)) {
    cleanup_free char *p = xasprintf("%s/env.json", c->cdir);
    char *txt = json_dumps(kept, JSON_COMPACT);
    r = txt ? write_file_new(p, txt, strlen(txt), 0600, err) : berth_error(err, -ENOMEM, "env");
    if (txt) explicit_bzero(txt, strlen(txt)), free(txt);
  }
  json_decref(kept);
  return r;
}

/* the main process's record, and its start options */
static int main_state(struct create_ctx *c, json_t *st, berth_error_t *err) {
  const struct create_opts *o = c->o;
  json_t *icc = json_object_get(c->icfg, "config");
  json_t *cmd = c->svc_argv ? json_incref(c->svc_argv) : NULL;
  if (!cmd && o->run && !o->remove_on_exit) { /* `berth run`: a start runs the command again, detached */
    cmd = json_array();
    for (char *const *a = o->run->argv; a && *a; a++) json_array_append_new(cmd, json_string(*a));
  }
  json_object_set_new(st, "mode", json_string(cmd ? "service" : "dev"));
  if (cmd) json_object_set_new(st, "command", cmd);
  const char *user = o->user ? o->user : o->run ? o->run->user : NULL;
  if (user) json_object_set_new(st, "user", json_string(user));
  if (jstr(icc, "StopSignal")) json_object_set_new(st, "stop_signal", json_string(jstr(icc, "StopSignal")));
  char policy[32];
  int max = 0;
  if (container_parse_restart(o->restart, policy, sizeof policy, &max, err) < 0) return -1;
  if (o->run && strcmp(policy, "no")) return berth_error(err, -EINVAL, "a restart policy needs a detached container (create, or run -d)");
  json_object_set_new(st, "restart", json_pack("{s:s, s:i}", "policy", policy, "max", max));
  json_object_set_new(st, "restart_count", json_integer(0));
  if (o->ttl > 0 && o->persistent)
    return berth_error(err, -EINVAL, "a ttl and persistent exclude each other: a persistent container is kept until removed");
  if (o->ttl > 0) {
    c->expires_at = (double)time(NULL) + (double)o->ttl;
    json_object_set_new(st, "expires_at", json_integer((json_int_t)c->expires_at));
  }
  if (o->session) json_object_set(st, "session", o->session);
  c->resident = c->svc_argv || strcmp(policy, "no") || o->ttl > 0;
  if (env_keep_write(c, err) < 0) return -1;
  if (c->svc_argv) {
    size_t n = json_array_size(c->svc_argv);
    c->svc_cargv = xmalloc0(sizeof(char *) * (n + 1));
    for (size_t i = 0; i < n; i++) c->svc_cargv[i] = (char *)json_string_value(json_array_get(c->svc_argv, i));
    /* a service's own process gets what setup steps get (Docker's default
     * set less CAP_MKNOD): an image's entrypoint may chown its data and
     * drop to its user; execs into it still get none */
    c->svc = (struct exec_opts){.name = c->name, .argv = c->svc_cargv, .user = o->user, .keep_caps = container_setup_caps(st)};
  }
  return 0;
}

static int create_in_dir(struct create_ctx *c, json_t **result, berth_error_t *err) {
  const struct create_opts *o = c->o;
  /* published ports first: one in use fails before anything runs */
  c->port_fds = xmalloc0(sizeof(int) * (json_array_size(o->ports) + 1));
  if (pf_bind(o->ports, c->port_fds, err) < 0) return -1;
  berth_trace("create: in dir");
  /* held for the whole create: a "creating" container whose lock is free
   * was left by a create that died (see reap_stale_create) */
  cleanup_free char *lockp = xasprintf("%s/lock", c->cdir);
  c->lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (c->lock_fd < 0) return berth_error(err, errno, "create `%s`", lockp);
  if (flock(c->lock_fd, LOCK_EX) < 0) return berth_error(err, errno, "lock `%s`", lockp);
  /* a size limit for the writable layer: upper/ and work/ on a filesystem of that size */
  const char *why = NULL;
  if (o->disk_limit > 0 && disk_limit_supported(&why)) {
    if (disk_setup(c->cdir, o->disk_limit, err) < 0) return -1;
    c->disk_on = true;
  } else if (o->disk_limit > 0)
    c->disk_note = xasprintf("disk limit not enforced: %s; the writable layer can grow to the free space of %s", why,
                             c->cfg->data_dir);
  const char *sub[] = {"upper", "work", "rootfs"};
  for (int i = c->disk_on ? 2 : 0; i < 3; i++) {
    cleanup_free char *p = xasprintf("%s/%s", c->cdir, sub[i]);
    if (mkdir(p, 0755) < 0) return berth_error(err, errno, "create `%s`", p);
  }
  json_t *icc = json_object_get(c->icfg, "config");
  if (!o->run && resolve_main(o, icc, &c->svc_argv, err) < 0) return -1;
  /* a service works where its image says (Docker's default: /); the
   * caller's directory is bound only when asked for */
  const char *wdir = o->workdir;
  if (c->svc_argv && !wdir) wdir = jstr(icc, "WorkingDir") && *jstr(icc, "WorkingDir") ? jstr(icc, "WorkingDir") : "/";
  cleanup_free char *cwd = o->mount_cwd && (!c->svc_argv || o->mount_cwd_explicit) ? getcwd(NULL, 0) : NULL;
  struct spec_input si = {.name = c->name, .cdir = c->cdir, .image_record = c->img, .image_config = c->icfg,
                          .workdir = wdir, .mounts = o->mounts, .env = o->env, .cwd_mount = cwd,
                          .network = c->network, .limits = o->limits, .rootless = c->cfg->rootless};
  if (spec_generate(&si, &c->spec, err) < 0) return -1;
  if (c->cdi_edits && cdi_apply(c->spec, c->cdi_edits, err) < 0) return -1;
  const char *prof = o->seccomp_profile ? o->seccomp_profile : jstr(c->cfg->root, "seccomp_profile");
  if (prof && *prof && seccomp_for_container(c, prof, err) < 0) return -1;
  cleanup_free char *sp = xasprintf("%s/config.json", c->cdir);
  cleanup_free char *txt = json_dumps(c->spec, JSON_INDENT(2));
  if (write_file_new(sp, txt, strlen(txt), 0600, err) < 0) return -1;
  json_t *layers = json_array();
  size_t i;
  json_t *l;
  json_array_foreach(json_object_get(c->img, "layers"), i, l) json_array_append(layers, json_object_get(l, "digest"));
  cleanup_free char *lp = xasprintf("%s/layers.json", c->cdir);
  cleanup_free char *lt = json_dumps(layers, JSON_COMPACT);
  json_decref(layers);
  if (write_file_new(lp, lt, strlen(lt), 0600, err) < 0) return -1;
  store_close(&c->store); /* the layers are named: a prune keeps them now */
  c->store_held = false;
  /* the cgroup is named by instance: names repeat across users and data dirs */
  c->id = random_hex(6);
  const char *id = c->id;
  bool named = net_is_named(c->network);
  /* the address is recorded in the state below, under the network's lock */
  if (named && net_named_lease(c->network, container_network_members, &c->lease, err) < 0) return -1;
  c->hostbr = !strcmp(c->network, "bridge") && hb_usable();
  if (c->hostbr && hb_lease(id, c->hb_ip, err) < 0) return -1;
  const char *ip = named ? c->lease.ip : c->hostbr ? c->hb_ip : NULL;
  if (write_gen_files(c->cdir, c->name, c->network, ip, c->hostbr, o->egress != NULL, false, err) < 0) return -1;
  c->cgname = xasprintf("%s-%s", c->name, id);
  if (!o->run && cgroup_create(c->cgname, &o->limits, spec_devices(c->spec), &c->cg, err) < 0) return -1;
  c->env_fd = env_memfd(o->env, err);
  if (c->env_fd < 0) return -1;
  c->slirp = (!strcmp(c->network, "bridge") && !c->hostbr) || named;
  const char *workdir = json_string_value(json_object_get(json_object_get(c->spec, "process"), "cwd"));
  json_t *st = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:b, s:s, s:s*, s:O, s:I, s:{s:I, s:I, s:f}, s:s}", "id", id,
                         "name", c->name, "status", "creating", "image", json_string_value(json_object_get(c->img, "name")),
                         "image_digest", json_string_value(json_object_get(c->img, "digest")), "mounts",
                         json_object_get(c->spec, "mounts"), "persistent", o->persistent, "network", c->network,
                         "purpose", o->purpose, "cgroup", c->cg ? c->cg : json_null(), "created", (json_int_t)time(NULL), "limits", "memory",
                         (json_int_t)o->limits.memory, "pids", (json_int_t)o->limits.pids, "cpus", o->limits.cpus,
                         "workdir", workdir);
  if (!st) return berth_error(err, -ENOMEM, "state");
  if (ip) json_object_set_new(st, "ip", json_string(ip));
  if (o->disk_limit > 0)
    json_object_set_new(st, "disk", json_pack("{s:I, s:b, s:s*}", "limit", (json_int_t)o->disk_limit, "enforced", c->disk_on,
                                              "note", c->disk_note));
  if (json_array_size(o->ports)) json_object_set(st, "ports", o->ports);
  if (o->egress) json_object_set(st, "egress", o->egress);
  if (json_array_size(o->devices)) json_object_set(st, "devices", o->devices);
  if (main_state(c, st, err) < 0) {
    json_decref(st);
    return -1;
  }
  /* a `berth run` one-shot: gone when its command ends (even if its launcher is killed) */
  if (o->run) json_object_set_new(st, "one_shot", json_true());
  if (o->run && o->remove_on_exit) json_object_set_new(st, "remove_on_exit", json_true());
  /* the first record in place (no temporary file and rename): a reader
   * that sees it half-written finds "creating" or nothing, and our lock
   * held (see reap_stale_create) */
  cleanup_free char *stp = xasprintf("%s/state.json", c->cdir);
  cleanup_free char *stt = json_dumps(st, JSON_INDENT(2) | JSON_SORT_KEYS);
  int r = stt ? write_file_new(stp, stt, strlen(stt), 0600, err) : berth_error(err, -ENOMEM, "state");
  json_decref(st);
  if (c->lease.lock_fd >= 0) close(c->lease.lock_fd); /* the namespace fds stay for the monitor */
  c->lease.lock_fd = -1;
  berth_trace("create: state written");
  if (r < 0 || (o->run ? run_start(c, err) : start_monitor(c, err)) < 0) return -1;
  berth_trace("create: monitor verdict");
  if (named) net_named_refresh(c->network, container_network_members); /* the others learn our name, we theirs */
  json_t *res = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:O, s:s}", "container", c->name, "container_id", id, "image",
                          json_string_value(json_object_get(c->img, "name")), "workdir", workdir, "network", c->network,
                          "persistent", o->persistent, "cgroup", c->cg, "mode", c->svc_argv ? "service" : "dev");
  if (c->svc_argv) json_object_set(res, "command", c->svc_argv);
  if (c->expires_at > 0) json_object_set_new(res, "expires_at", json_integer((json_int_t)c->expires_at));
  cleanup_free char *cc = xasprintf("berth exec -it %s /bin/sh", c->name);
  json_object_set_new(res, "connect_command", json_string(cc));
  if (c->note) json_object_set_new(res, "notes", json_pack("[s]", c->note));
  if (o->egress) json_object_set(res, "egress", o->egress);
  if (json_array_size(o->devices)) json_object_set(res, "devices", o->devices);
  if (json_array_size(c->cdi_notes)) {
    if (!json_object_get(res, "notes")) json_object_set_new(res, "notes", json_array());
    json_array_extend(json_object_get(res, "notes"), c->cdi_notes);
  }
  if (o->disk_limit > 0) {
    json_object_set_new(res, "disk", json_pack("{s:I, s:b}", "limit", (json_int_t)o->disk_limit, "enforced", c->disk_on));
    if (c->disk_note) {
      if (!json_object_get(res, "notes")) json_object_set_new(res, "notes", json_array());
      json_array_append_new(json_object_get(res, "notes"), json_string(c->disk_note));
    }
  }
  *result = res;
  return 0;
}

static int remove_container(const char *name, const char *want_id, int userns_fd, bool force, struct rm_later *later,
                            json_t **out, berth_error_t *err);

static volatile sig_atomic_t run_sig;
static void run_on_sig(int s) { run_sig = s; }

/* berth run: let the command go, pass its stdio and signals, wait for the
 * container's end (init exits with the command's status), then remove or
 * record it. */
static void run_finish(struct create_ctx *c, struct exec_result *res) {
  const struct exec_opts *eo = c->o->run;
  pid_t pid = c->L.pid;
  int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  struct sigaction old[6], sa = {.sa_handler = run_on_sig};
  /* a terminal's ^C reaches the command as a byte (raw mode); captured
   * output is for programs: a signal ends us, and init with us */
  bool fwd = !eo->tty && !eo->capture;
  for (int i = 0; fwd && i < 6; i++) sigaction(sigs[i], &sa, &old[i]);
  if (eo->tty) {
    int master = exec_recv_fd(c->pty_sock);
    if (master >= 0) {
      exec_relay_pty(master, pid);
      close(master);
    }
  } else if (eo->capture) {
    exec_collect(c->out_r, c->err_r, res, eo->capture_max);
    c->out_r = c->err_r = -1;
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) {
      st = 125 << 8;
      break;
    }
    if (run_sig) kill(pid, run_sig), run_sig = 0;
  }
  for (int i = 0; fwd && i < 6; i++) sigaction(sigs[i], &old[i], NULL);
  res->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  berth_trace("run: exited %d", res->exit_code);
  if (c->o->remove_on_exit) {
    poststop(c->name, c->cdir, c->spec); /* the spec in hand: no read of config.json per run */
    /* the name is free when we return; the unmounts, the cgroup and the
     * files go with a detached child */
    json_t *out = NULL;
    berth_error_t e = NULL;
    struct rm_later later = {.hold_fd = c->mnt_fd};
    if (remove_container(c->name, c->id, c->userns_fd, true, &later, &out, &e) < 0) {
      berth_warn("removing %s: %s", c->name, e->msg);
      berth_error_free(e);
    }
    if (later.hold_fd < 0) c->mnt_fd = -1; /* handed over */
    json_decref(later.cg);
    json_decref(out);
  } else {
    cleanup_free char *who = xasprintf("%s:%s", c->name, c->id);
    container_monitor_exit(who, res->exit_code);
  }
  if (c->mnt_fd >= 0) close(c->mnt_fd);
  c->mnt_fd = -1;
  berth_trace("run: cleaned up");
}

static int create_or_run(const struct create_opts *o, struct exec_result *res, json_t **result, berth_error_t *err);

/* `gpu` asked for GPUs that CDI cannot give: what preflight's gpu check
 * says about this host (none at all, or no spec, and the command that
 * writes one) leads the message */
static void gpu_explain(berth_error_t *err) {
  json_t *chk = preflight_gpu_check();
  if (!json_is_true(json_object_get(chk, "passed")) && err && *err) {
    const char *fix = jstr(chk, "fix");
    cleanup_free char *was = strdup((*err)->msg);
    int status = (*err)->status;
    berth_error_clear(err);
    berth_error(err, status == EINVAL ? -EINVAL : -ENOENT, "gpu: %s; %s%s%s (%s)", jstr(chk, "detail") ?: "", jstr(chk, "guidance") ?: "",
                fix ? "; run: " : "", fix ? fix : "", was);
  }
  json_decref(chk);
}

int container_create(const struct create_opts *o, json_t **result, berth_error_t *err) {
  if (o->run) return berth_error(err, -EINVAL, "Failed to create container: a command to run needs container_run");
  return create_or_run(o, NULL, result, err);
}

int container_run(const struct create_opts *o, struct exec_result *res, json_t **result, berth_error_t *err) {
  memset(res, 0, sizeof *res);
  if (!o->run || !o->run->argv || !o->run->argv[0]) return berth_error(err, -EINVAL, "Failed to create container: a command is required");
  return create_or_run(o, res, result, err);
}

static int create_or_run(const struct create_opts *o, struct exec_result *res, json_t **result, berth_error_t *err) {
  struct berth_config *cfg = config_get(err);
  if (!cfg) return -1;
  if (!o->image || !*o->image) return berth_error(err, -EINVAL, "Failed to create container: an image is required");
  cleanup_free char *name = o->name ? strdup(o->name) : container_random_name(o->purpose);
  if (!container_name_valid(name))
    return berth_error(err, -EINVAL, "Failed to create container: invalid container name `%.80s`: use 1-63 letters, "
                       "digits, `_`, `.` or `-`, not starting with `.` or `-`", name);
  const char *network = o->network ? o->network : "none";
  if (net_is_named(network) && !container_name_valid(network))
    return berth_error(err, -EINVAL, "Failed to create container: invalid network name `%.80s`", network);
  if (json_array_size(o->ports) && (!strcmp(network, "none") || !strcmp(network, "host")))
    return berth_error(err, -EINVAL, "Failed to create container: published ports need the bridge network or a named network");
  if (net_ports_check(o->ports, err) < 0) return berth_error_wrap(err, "Failed to create container");
  /* probed only for a network that needs it (it opens /dev/net/tun) */
  if (strcmp(network, "none") && strcmp(network, "host") &&
      !(!strcmp(network, "bridge") ? hb_usable() || net_helper_available() : net_helper_available()))
    return berth_error(err, -ENOENT, "Failed to create container: network `%s` needs slirp4netns and a usable "
                       "/dev/net/tun (%s), or use network \"none\" or \"host\"", network, advice("see `berth preflight`", "see the preflight operation"));
  struct create_ctx c = {.o = o, .cfg = cfg, .name = name, .network = network, .env_fd = -1, .lock_fd = -1,
                         .lease = {.lock_fd = -1, .userns_fd = -1, .netns_fd = -1}, .userns_fd = -1, .run_go_w = -1,
                         .pty_sock = -1, .out_r = -1, .err_r = -1, .mnt_fd = -1};
  berth_trace("create: start");
  /* devices first: a name that does not resolve, or a node that cannot be
   * given, fails the create before anything exists */
  if (json_array_size(o->devices)) {
    struct cdi_registry reg;
    cdi_registry_load(NULL, &reg, NULL);
    c.cdi_notes = json_array();
    int r = cdi_resolve(&reg, o->devices, cfg->rootless, &c.cdi_edits, c.cdi_notes, err);
    cdi_registry_free(&reg);
    berth_trace("create: devices resolved");
    if (r < 0) {
      if (o->gpu) gpu_explain(err);
      json_decref(c.cdi_notes);
      return berth_error_wrap(err, "Failed to create container");
    }
  }
  if (pull_if_absent(o, &c.img, &c.icfg, &c.store, err) < 0) {
    json_decref(c.cdi_edits), json_decref(c.cdi_notes);
    return berth_error_wrap(err, "Failed to create container");
  }
  c.store_held = true;
  berth_trace("create: image found");
  cleanup_free char *parent = containers_dir(err);
  cleanup_free char *cdir = parent ? xasprintf("%s/%s", parent, name) : NULL;
  c.cdir = cdir;
  int ret = -1;
  if (!parent || mkdir_p(parent, 0700, err) < 0) {
  } else if (mkdir(cdir, 0700) < 0 && !(errno == EEXIST && reap_named(parent, name) && mkdir(cdir, 0700) == 0)) {
    if (errno == EEXIST) {
      cleanup_free char *how = berth_for_agents ? xasprintf("the destroy operation with container=\"%s\", or choose another name", name)
                                                : xasprintf("`berth rm -f %s`, or choose another name", name);
      berth_error(err, -EEXIST, "container name `%s` is already in use (remove it with %s)", name, how);
    }
    else berth_error(err, errno, "create `%s`", cdir);
  } else {
    ret = create_in_dir(&c, result, err);
    if (ret < 0) {
      /* a failed create leaves nothing: no cgroup, no directory, the name free */
      if (c.cg) cgroup_destroy(c.cg);
      berth_error_t e2 = NULL;
      if (remove_container_dir(cdir, &e2) < 0) {
        berth_warn("cleaning up `%s`: %s", cdir, e2->msg);
        berth_error_free(e2);
      }
    }
  }
  if (ret < 0) berth_error_wrap(err, "Failed to create container");
  if (c.store_held) store_close(&c.store);
  if (c.env_fd >= 0) close(c.env_fd);
  if (c.lock_fd >= 0) close(c.lock_fd);
  net_lease_close(&c.lease);
  pf_close(o->ports, c.port_fds);
  free(c.port_fds);
  if (ret < 0 && c.hostbr) hb_release(c.id);
  if (ret == 0 && o->run) run_finish(&c, res);
  int *fds[] = {&c.userns_fd, &c.run_go_w, &c.pty_sock, &c.out_r, &c.err_r, &c.mnt_fd};
  for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
    if (*fds[i] >= 0) close(*fds[i]);
  free(c.L.note);
  free(c.svc_cargv);
  json_decref(c.svc_argv);
  json_decref(c.L.cg);
  free(c.cgname);
  free(c.id);
  free(c.note);
  free(c.disk_note);
  json_decref(c.cg);
  json_decref(c.spec);
  json_decref(c.img);
  json_decref(c.icfg);
  json_decref(c.cdi_edits);
  json_decref(c.cdi_notes);
  return ret;
}

/* ---------- list / status / remove ---------- */
static const char *live_status(json_t *st) {
  const char *s = json_string_value(json_object_get(st, "status"));
  if (s && !strcmp(s, "running")) return state_proc_alive(st, "init") ? "running" : "exited";
  if (s && !strcmp(s, "creating")) return "creating";
  return s ? s : "unknown";
}
const char *container_live_status(json_t *st) { return live_status(st); }

/* A create killed midway (the CLI got SIGKILL) leaves a directory whose
 * state is missing or "creating" and whose lock nobody holds: remove it, so
 * the name is free again. */
static bool reap_stale_create(const char *dir, const char *name, json_t *st) {
  const char *s = json_string_value(json_object_get(st, "status"));
  if (st && s && strcmp(s, "creating")) return false;
  cleanup_free char *lockp = xasprintf("%s/%s/lock", dir, name);
  cleanup_close int fd = open(lockp, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    struct stat sb;
    cleanup_free char *p = xasprintf("%s/%s", dir, name);
    /* no lock file yet: only old directories count (a create may be starting) */
    if (stat(p, &sb) < 0 || time(NULL) - sb.st_mtime < 30) return false;
  } else if (flock(fd, LOCK_EX | LOCK_NB) < 0)
    return false; /* its create is still running */
  if (st) cgroup_destroy(json_object_get(st, "cgroup"));
  cleanup_free char *p = xasprintf("%s/%s", dir, name);
  berth_error_t e = NULL;
  if (remove_container_dir(p, &e) < 0) berth_error_free(e);
  return true;
}

/* A `berth run` whose launcher was killed: its container died with it
 * (init's parent-death signal). Finish what the launcher would have done:
 * remove it (--rm), or record it exited. */
static bool reap_one_shot(const char *name, json_t *st) {
  if (!json_is_true(json_object_get(st, "one_shot")) || strcmp(live_status(st), "exited") ||
      strcmp(jstr(st, "status") ?: "", "running") || state_proc_alive(st, "monitor"))
    return false;
  if (!json_is_true(json_object_get(st, "remove_on_exit"))) {
    cleanup_free char *who = xasprintf("%s:%s", name, jstr(st, "id") ?: "");
    record_exit(who, 137, false);
    return false; /* still listed, now exited */
  }
  json_t *out = NULL;
  berth_error_t e = NULL;
  if (remove_container(name, jstr(st, "id"), -1, true, NULL, &out, &e) < 0) berth_error_free(e);
  json_decref(out);
  return true;
}

int container_list(json_t **out, berth_error_t *err) {
  cleanup_free char *d = containers_dir(err);
  if (!d) return -1;
  json_t *arr = json_array(), *stale_nets = json_object();
  hb_gc(); /* a crashed container's address (and maybe berth0 with it) */
  DIR *dd = opendir(d);
  if (dd) {
    struct dirent *de;
    while ((de = readdir(dd))) {
      if (de->d_name[0] == '.' || !container_name_valid(de->d_name)) continue;
      json_t *st = state_read(de->d_name);
      if (reap_stale_create(d, de->d_name, st) || (st && reap_one_shot(de->d_name, st)) || (st && reap_expired(de->d_name, st))) {
        json_decref(st);
        continue;
      }
      if (!st) continue;
      const char *ls = live_status(st), *net = jstr(st, "network");
      /* recorded running, found dead (a crash): its network's members forget it */
      if (net_is_named(net) && !strcmp(ls, "exited") && !strcmp(jstr(st, "status") ?: "", "running") &&
          !json_object_get(stale_nets, net))
        json_object_set_new(stale_nets, net, json_true());
      json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:O, s:O, s:O, s:O}", "name", de->d_name, "status",
                                           ls, "image", json_string_value(json_object_get(st, "image")) ?: "",
                                           "ports", json_object_get(st, "ports") ?: json_array(), "purpose", json_object_get(st, "purpose") ?: json_null(),
                                           "persistent", json_object_get(st, "persistent") ?: json_false(), "network",
                                           json_object_get(st, "network") ?: json_null()));
      json_object_set_new(json_array_get(arr, json_array_size(arr) - 1), "mode", json_string(jstr(st, "mode") ?: "dev"));
      json_decref(st);
    }
    closedir(dd);
  }
  const char *net;
  json_t *v;
  json_object_foreach(stale_nets, net, v) net_named_refresh(net, container_network_members);
  json_decref(stale_nets);
  *out = json_pack("{s:o, s:I}", "containers", arr, "count", (json_int_t)json_array_size(arr));
  return 0;
}

json_t *container_network_members(const char *net, bool live_only) {
  json_t *arr = json_array();
  cleanup_error berth_error_t e = NULL;
  cleanup_free char *d = containers_dir(&e);
  DIR *dd = d ? opendir(d) : NULL;
  struct dirent *de;
  while (dd && (de = readdir(dd))) {
    if (de->d_name[0] == '.' || !container_name_valid(de->d_name)) continue;
    json_t *st = state_read(de->d_name);
    const char *s = live_status(st);
    /* a create in progress already owns its address */
    bool live = !strcmp(s, "running") || !strcmp(s, "creating");
    if (st && !strcmp(jstr(st, "network") ?: "", net) && (!live_only || (live && jstr(st, "ip")))) {
      cleanup_free char *hosts = xasprintf("%s/%s/etc/hosts", d, de->d_name);
      json_array_append_new(arr, json_pack("{s:s, s:s?, s:s, s:s}", "name", de->d_name, "ip", jstr(st, "ip"), "hosts",
                                           hosts, "status", s));
    }
    json_decref(st);
  }
  if (dd) closedir(dd);
  return arr;
}

int container_status(const char *name, bool health, json_t **out, berth_error_t *err) {
  if (!container_name_valid(name)) return berth_error(err, -ENOENT, "Container not found: %.80s", name);
  json_t *st = state_read(name);
  if (!st) return berth_error(err, -ENOENT, "Container not found: %s", name);
  const char *s = live_status(st);
  bool running = !strcmp(s, "running");
  json_t *meta = json_pack("{s:O, s:O, s:O, s:O, s:O, s:O}", "id", json_object_get(st, "id"), "limits",
                           json_object_get(st, "limits"), "mounts", json_object_get(st, "mounts") ?: json_array(),
                           "network", json_object_get(st, "network") ?: json_null(), "workdir",
                           json_object_get(st, "workdir") ?: json_null(), "cgroup", json_object_get(st, "cgroup") ?: json_null());
  if (running) json_object_set(meta, "pid", json_object_get(json_object_get(st, "init"), "pid"));
  if (json_object_get(st, "ip")) json_object_set(meta, "ip", json_object_get(st, "ip"));
  json_object_set_new(meta, "network_isolated", json_boolean(strcmp(jstr(st, "network") ?: "", "host") != 0));
  if (json_object_get(st, "exit_code")) json_object_set(meta, "exit_code", json_object_get(st, "exit_code"));
  json_object_set(meta, "persistent", json_object_get(st, "persistent") ?: json_false());
  json_object_set(meta, "ports", json_object_get(st, "ports") ?: json_array());
  if (json_object_get(st, "devices")) json_object_set(meta, "devices", json_object_get(st, "devices"));
  json_object_set(meta, "purpose", json_object_get(st, "purpose") ?: json_null());
  /* the main process and its life */
  const char *keys[] = {"command", "user", "restart", "restart_count", "finished_at", "oom_killed", "expires_at", "stopped",
                        "stop_signal", "restart_error"};
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
    if (json_object_get(st, keys[k])) json_object_set(meta, keys[k], json_object_get(st, keys[k]));
  json_object_set_new(meta, "mode", json_string(jstr(st, "mode") ?: "dev"));
  json_t *dk = json_object_get(st, "disk");
  if (dk) { /* the writable layer's limit, and its use when enforced */
    struct berth_config *cfg = config_get(NULL);
    cleanup_free char *cdir = cfg ? xasprintf("%s/containers/%s", cfg->data_dir, name) : NULL;
    json_t *u = json_is_true(json_object_get(dk, "enforced")) && cdir ? disk_usage(cdir, json_integer_value(json_object_get(dk, "limit"))) : NULL;
    json_t *d = json_deep_copy(dk);
    if (u) json_object_update(d, u);
    json_decref(u);
    json_object_set_new(meta, "disk", d);
  }
  json_t *o = json_pack("{s:s, s:b, s:s, s:O, s:s, s:o}", "container", name, "running", running, "status", s,
                        "started_at", json_object_get(st, "started_at") ?: json_null(), "image",
                        json_string_value(json_object_get(st, "image")) ?: "", "metadata", meta);
  if (json_object_get(st, "egress")) { /* the policy, and what it refused lately */
    json_object_set(meta, "egress", json_object_get(st, "egress"));
    cleanup_free char *cdir = container_dir(name);
    json_int_t count = 0;
    json_t *recent = cdir ? egress_records(cdir, 5, &count) : json_array();
    json_object_set_new(o, "egress_denied", json_pack("{s:I, s:o}", "count", count, "recent", recent));
  }
  if (health && running) {
    int64_t mem, pids;
    cgroup_usage(json_object_get(st, "cgroup"), &mem, &pids);
    char *const argv[] = {"/bin/sh", "-c", "true", NULL};
    struct exec_opts eo = {.name = name, .argv = argv, .capture = true, .capture_max = 4096, .timeout = 10};
    struct exec_result r = {0};
    double t0 = now_seconds();
    berth_error_t e2 = NULL;
    int er = container_exec(&eo, &r, &e2);
    double ms = (now_seconds() - t0) * 1000;
    json_object_set_new(o, "health", json_pack("{s:b, s:f, s:I, s:I, s:s*}", "healthy", er == 0 && r.exit_code == 0,
                                               "exec_latency_ms", ms, "memory_bytes", (json_int_t)mem, "pids",
                                               (json_int_t)pids, "error", e2 ? e2->msg : NULL));
    berth_error_free(e2);
    buf_free(&r.out);
    buf_free(&r.err);
  }
  json_decref(st);
  *out = o;
  return 0;
}

int container_egress_test(const char *name, const char *dest, json_t **out, berth_error_t *err) {
  if (!container_name_valid(name)) return berth_error(err, -ENOENT, "Container not found: %.80s", name);
  json_t *st = state_read(name);
  if (!st) return berth_error(err, -ENOENT, "Container not found: %s", name);
  json_t *pol = json_object_get(st, "egress");
  if (!pol) {
    json_decref(st);
    return berth_error(err, -EINVAL, "container %s has no egress policy: every destination is allowed (%s)", name,
                       advice("create it with --egress allow:HOST,...", "create it with `egress`"));
  }
  /* the network as its launch saw it: berth0 holds 10.88/16, named networks 10.89/16 */
  const char *net = jstr(st, "network") ?: "bridge", *ip = jstr(st, "ip");
  struct monitor_args m = {.named = net_is_named(net), .ip = ip};
  m.hostbr = !m.named && ip && str_has_prefix(ip, "10.88.");
  m.bridge = !m.hostbr;
  struct egress_net n;
  egress_net_of(&m, &n);
  egress_host_addrs(&n);
  int r = egress_check(pol, &n, dest, out, err);
  if (r == 0) json_object_set_new(*out, "container", json_string(name));
  json_decref(st);
  return r;
}

/* Wait until the recorded process is gone: a pidfd turns readable the
 * moment it exits (no polling loop); the start time check first makes sure
 * the pidfd is for that very process. */
static void wait_gone(json_t *st, const char *field, double secs) {
  pid_t pid = (pid_t)json_integer_value(json_object_get(json_object_get(st, field), "pid"));
  int pfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
  if (pfd >= 0 && state_proc_alive(st, field)) {
    struct pollfd p = {.fd = pfd, .events = POLLIN};
    while (poll(&p, 1, (int)(secs * 1000)) < 0 && errno == EINTR) {}
  }
  if (pfd >= 0) close(pfd);
  double end = now_seconds() + 0.5; /* exited; zombie until reaped: both count as gone */
  while (state_proc_alive(st, field) && now_seconds() < end) {
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

int container_remove(const char *name, bool force, json_t **out, berth_error_t *err) {
  return remove_container(name, NULL, -1, force, NULL, out, err);
}

/* want_id: remove only that instance (a one-shot's launcher: the name may
 * have been removed and taken again meanwhile); userns_fd: the container's
 * user namespace, held by the caller (rootless), or -1 */
static int remove_container(const char *name, const char *want_id, int userns_hint, bool force, struct rm_later *later,
                            json_t **out, berth_error_t *err) {
  if (!container_name_valid(name)) return berth_error(err, -ENOENT, "Container not found: %.80s", name);
  cleanup_close int lk = container_lock(name, err);
  if (lk < 0) return -1;
  berth_trace("rm: locked");
  json_t *st = state_read(name);
  if (want_id && (!st || strcmp(jstr(st, "id") ?: "", want_id))) {
    json_decref(st);
    *out = json_pack("{s:b, s:s, s:s}", "success", 1, "container", name, "detail", "Container already removed");
    return 0;
  }
  cleanup_free char *cdir = cpath(name, NULL);
  cleanup_close int userns_fd = userns_hint >= 0 ? fcntl(userns_hint, F_DUPFD_CLOEXEC, 3) : -1;
  bool was_running = st && state_proc_alive(st, "init");
  if (st && state_proc_alive(st, "init")) {
    pid_t pid = (pid_t)json_integer_value(json_object_get(json_object_get(st, "init"), "pid"));
    /* rootless: the container's own user namespace outlives init through
     * this fd, and removes its files without a fresh newuidmap round */
    if (geteuid() != 0 && userns_fd < 0) {
      char p[64];
      snprintf(p, sizeof p, "/proc/%d/ns/user", (int)pid);
      userns_fd = open(p, O_RDONLY | O_CLOEXEC);
      if (userns_fd >= 0 && !state_proc_alive(st, "init")) { /* pid reused meanwhile */
        close(userns_fd);
        userns_fd = -1;
      }
    }
    if (!force) {
      kill(pid, SIGTERM);
      wait_gone(st, "init", 10);
    }
    if (state_proc_alive(st, "init")) kill(pid, SIGKILL); /* PID 1 dies: the kernel kills the rest */
    wait_gone(st, "init", 5);
  }
  berth_trace("rm: init gone");
  /* its monitor finds no record once we are done: the end is ours to announce */
  if (was_running) poststop(name, cdir, NULL);
  if (later) later->cg = json_incref(json_object_get(st, "cgroup")); /* removed by the trash child */
  else if (st) cgroup_destroy(json_object_get(st, "cgroup"));
  berth_trace("rm: cgroup removed");
  /* no waiting for the monitor: it is blocked on our lock to record the exit,
   * and finds no state once we are done */
  cleanup_free char *net = net_is_named(jstr(st, "network")) ? xstrdup(jstr(st, "network")) : NULL;
  if (!strcmp(jstr(st, "network") ?: "", "bridge")) hb_release(jstr(st, "id")); /* the only network with a lease */
  json_decref(st);
  if (remove_container_dir_at(userns_fd, cdir, later, err) < 0) return berth_error_wrap(err, "remove container %s", name);
  berth_trace("rm: dir removed");
  if (net) net_named_refresh(net, container_network_members); /* the others forget our name */
  *out = json_pack("{s:b, s:s, s:s}", "success", 1, "container", name, "detail", "Container removed");
  return 0;
}

/* ---------- service monitor, stop, start, restart policy ---------- */

/* the sealed environment memfd's ["K=V"] */
static json_t *read_env_fd(int fd) {
  if (fd < 0) return json_array();
  struct stat sb;
  if (fstat(fd, &sb) < 0 || sb.st_size <= 0 || sb.st_size > (16 << 20)) return json_array();
  char *txt = xmalloc0((size_t)sb.st_size + 1);
  ssize_t n = pread(fd, txt, (size_t)sb.st_size, 0);
  json_t *j = n > 0 ? json_loadb(txt, (size_t)n, 0, NULL) : NULL;
  explicit_bzero(txt, (size_t)sb.st_size);
  free(txt);
  if (!json_is_array(j)) {
    json_decref(j);
    j = json_array();
  }
  return j;
}

static int start_existing(const char *name, int env_fd_in, bool auto_restart, json_t **out, berth_error_t *err);

/* The restart policy, after the end was recorded: start the container
 * again (a new monitor takes over) after a back-off that doubles from
 * 100 ms to a minute, and goes back to 100 ms once a run lasted 10 s. */
static void monitor_restart(const char *name, const char *id, int code, double ran, int env_fd) {
  for (;;) {
    cleanup_error berth_error_t e = NULL;
    int lk = container_lock(name, &e);
    if (lk < 0) return;
    json_t *st = state_read(name);
    json_t *rs = json_object_get(st, "restart");
    const char *policy = jstr(rs, "policy") ?: "no";
    int max = (int)json_integer_value(json_object_get(rs, "max"));
    int count = (int)json_integer_value(json_object_get(st, "restart_count"));
    bool again = st && !strcmp(jstr(st, "id") ?: "", id) && !json_is_true(json_object_get(st, "stopped")) &&
                 !strcmp(jstr(st, "status") ?: "", "exited") &&
                 (!strcmp(policy, "always") || !strcmp(policy, "unless-stopped") ||
                  (!strcmp(policy, "on-failure") && code != 0 && (max == 0 || count < max)));
    if (!again) {
      json_decref(st);
      close(lk);
      return;
    }
    json_int_t prev = json_integer_value(json_object_get(st, "restart_backoff_ms"));
    json_int_t delay = ran >= 10 || prev <= 0 ? 100 : prev * 2 > 60000 ? 60000 : prev * 2;
    json_object_set_new(st, "restart_backoff_ms", json_integer(delay));
    json_object_set_new(st, "status", json_string("restarting"));
    json_object_set_new(st, "monitor", proc_ref(getpid()));
    state_write_warn(name, st, "the restart");
    json_decref(st);
    close(lk);
    struct timespec ts = {(time_t)(delay / 1000), (long)(delay % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
    json_t *res = NULL;
    if (start_existing(name, env_fd, true, &res, &e) == 0) {
      json_decref(res);
      return;
    }
    /* the start failed: that counts as a failed run */
    berth_warn("restarting %s: %s", name, e->msg);
    lk = container_lock(name, NULL);
    if (lk < 0) return;
    st = state_read(name);
    if (st && !strcmp(jstr(st, "status") ?: "", "restarting")) {
      json_object_set_new(st, "status", json_string("exited"));
      json_object_set_new(st, "restart_count", json_integer(count + 1));
      json_object_set_new(st, "restart_error", json_string(e->msg));
      state_write_warn(name, st, "the failed restart");
    }
    json_decref(st);
    close(lk);
    code = 125, ran = 0;
  }
}

/* The resident monitor: writes the service's output to its log, ends the
 * container when it expires, records the end, applies the restart policy. */
static void monitor_serve(struct monitor_args *m, pid_t pid, int out_r, int err_r, struct log_writer *lwp) {
  struct log_writer lw = *lwp;
  berth_error_t e = NULL;
  int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
  double started = wall_seconds(), kill_at = 0;
  bool exited = false, expired = false;
  int status = 0, fds[2] = {out_r, err_r};
  static char buf[65536];
  while (!exited || fds[0] >= 0 || fds[1] >= 0) {
    struct pollfd p[3] = {{.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN},
                          {.fd = exited ? -1 : pfd, .events = POLLIN}};
    double now = wall_seconds(), wake = 0; /* expires_at is a wall-clock time */
    if (m->expires_at > 0 && !expired) wake = m->expires_at;
    if (kill_at > 0 && !exited) wake = kill_at;
    int timeout = wake > 0 ? (wake <= now ? 0 : (int)((wake - now) * 1000) + 1) : -1;
    if (pfd < 0 && !exited && (timeout < 0 || timeout > 200)) timeout = 200; /* no pidfd: look now and then */
    int r = poll(p, 3, timeout);
    if (r < 0 && errno != EINTR) break;
    for (int i = 0; i < 2 && r > 0; i++) {
      if (fds[i] < 0 || !p[i].revents) continue;
      ssize_t n = read(fds[i], buf, sizeof buf);
      if (n > 0 && lw.fd >= 0) log_feed(&lw, i, buf, (size_t)n);
      else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        if (lw.fd >= 0) log_flush(&lw, i);
        close(fds[i]);
        fds[i] = -1;
      }
    }
    if (!exited) {
      int w = waitpid(pid, &status, WNOHANG);
      if (w == pid || (w < 0 && errno == ECHILD)) exited = true;
    }
    now = wall_seconds();
    if (!exited && m->expires_at > 0 && !expired && now >= m->expires_at) {
      expired = true; /* its time is up: stopped as `berth stop` would, then removed */
      kill(pid, SIGTERM);
      kill_at = now + 10;
    } else if (!exited && kill_at > 0 && now >= kill_at)
      kill(pid, SIGKILL);
  }
  if (pfd >= 0) close(pfd);
  if (lw.path) log_close(&lw);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 125;
  cleanup_free char *who = xasprintf("%s:%s:%d", m->name, m->id ? m->id : "", (int)pid);
  record_exit(who, code, true);
  if (expired) {
    json_t *o = NULL;
    if (remove_container(m->name, m->id, -1, true, NULL, &o, &e) < 0) berth_error_clear(&e);
    json_decref(o);
    _exit(0);
  }
  monitor_restart(m->name, m->id ? m->id : "", code, wall_seconds() - started, m->env_fd);
  _exit(0);
}

uint64_t container_setup_caps(json_t *state) {
  uint64_t caps = security_setup_caps();
  /* SO_MARK takes CAP_NET_ADMIN or CAP_NET_RAW: with neither, no process of
   * the container can pass for the policy's resolver (ping still works:
   * ping_group_range is open in the container's namespace) */
  if (json_object_get(state, "egress")) caps &= ~(1ULL << CAP_NET_RAW);
  return caps;
}

int container_parse_signal(const char *s) {
  if (!s || !*s) return 0;
  char *end;
  long n = strtol(s, &end, 10);
  if (!*end && n > 0 && n < 65) return (int)n;
  const char *b = str_has_prefix(s, "SIG") ? s + 3 : s;
  static const struct { const char *n; int s; } T[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
      {"TERM", SIGTERM}, {"STOP", SIGSTOP}, {"CONT", SIGCONT}, {"WINCH", SIGWINCH}, {"PWR", SIGPWR}, {"ALRM", SIGALRM}};
  for (size_t i = 0; i < sizeof T / sizeof *T; i++)
    if (!strcasecmp(b, T[i].n)) return T[i].s;
  if (!strncasecmp(b, "RTMIN+", 6)) {
    n = strtol(b + 6, &end, 10);
    if (!*end && n >= 0 && SIGRTMIN + n <= SIGRTMAX) return SIGRTMIN + (int)n;
  }
  return -1;
}

int container_stop(const char *name, int timeout, json_t **out, berth_error_t *err) {
  if (!container_name_valid(name)) return berth_error(err, -ENOENT, "Container not found: %.80s", name);
  if (timeout < 0) timeout = 10;
  int lk = container_lock(name, err);
  if (lk < 0) return -1;
  json_t *st = state_read(name);
  if (!st) {
    close(lk);
    return berth_error(err, -ENOENT, "Container not found: %s", name);
  }
  /* first: the monitor must not restart what we stop */
  json_object_set_new(st, "stopped", json_true());
  bool restarting = !strcmp(jstr(st, "status") ?: "", "restarting");
  bool running = !strcmp(live_status(st), "running");
  if (restarting) json_object_set_new(st, "status", json_string("exited"));
  state_write_warn(name, st, "the stop");
  close(lk);
  if (restarting && state_proc_alive(st, "monitor")) { /* asleep in its back-off */
    kill((pid_t)json_integer_value(json_object_get(json_object_get(st, "monitor"), "pid")), SIGKILL);
    wait_gone(st, "monitor", 2);
  }
  if (running) {
    pid_t pid = (pid_t)json_integer_value(json_object_get(json_object_get(st, "init"), "pid"));
    int sig = strcmp(jstr(st, "mode") ?: "", "service") ? SIGTERM : container_parse_signal(jstr(st, "stop_signal"));
    if (sig <= 0) sig = SIGTERM;
    kill(pid, sig);
    wait_gone(st, "init", timeout);
    if (state_proc_alive(st, "init")) kill(pid, SIGKILL); /* PID 1 dies: the kernel kills the rest */
    wait_gone(st, "init", 5);
    wait_gone(st, "monitor", 5); /* it records the end */
  }
  json_decref(st);
  st = state_read(name);
  *out = json_pack("{s:b, s:s, s:s, s:O}", "success", 1, "container", name, "status", st ? live_status(st) : "removed",
                   "exit_code", json_object_get(st, "exit_code") ?: json_null());
  if (!running) json_object_set_new(*out, "detail", json_string("it was not running"));
  json_decref(st);
  return 0;
}

int container_kill(const char *name, int sig, json_t **out, berth_error_t *err) {
  if (!container_name_valid(name)) return berth_error(err, -ENOENT, "Container not found: %.80s", name);
  json_t *st = state_read(name);
  if (!st) return berth_error(err, -ENOENT, "Container not found: %s", name);
  if (strcmp(live_status(st), "running")) {
    json_decref(st);
    return berth_error(err, -ESRCH, "container %s is not running", name);
  }
  pid_t pid = (pid_t)json_integer_value(json_object_get(json_object_get(st, "init"), "pid"));
  /* a service's init passes it to the main process; a dev container's
   * init takes TERM, INT and HUP as a stop */
  int r = state_proc_alive(st, "init") && kill(pid, sig) == 0 ? 0 : berth_error(err, errno, "signal container %s", name);
  json_decref(st);
  if (r == 0) *out = json_pack("{s:b, s:s, s:i}", "success", 1, "container", name, "signal", sig);
  return r;
}

int container_start(const char *name, json_t **out, berth_error_t *err) { return start_existing(name, -1, false, out, err); }

int container_restart(const char *name, int timeout, json_t **out, berth_error_t *err) {
  json_t *o = NULL;
  if (container_stop(name, timeout, &o, err) < 0) return -1;
  json_decref(o);
  return start_existing(name, -1, false, out, err);
}

/* the kept variables (env.json) as an object, and the names that are not */
static json_t *env_kept(const char *cdir, json_t *spec, json_t **dropped) {
  cleanup_free char *p = xasprintf("%s/env.json", cdir);
  cleanup_free char *txt = NULL;
  size_t len = 0;
  json_t *kept = read_file(p, 16 << 20, &txt, &len, NULL) == 0 ? json_loadb(txt, len, 0, NULL) : NULL;
  if (txt) explicit_bzero(txt, len);
  if (!json_is_object(kept)) {
    json_decref(kept);
    kept = json_object();
  }
  *dropped = json_array();
  const char *names = jstr(json_object_get(spec, "annotations"), "berth.env_names");
  json_t *all = names ? json_loads(names, 0, NULL) : NULL;
  size_t i;
  json_t *n;
  json_array_foreach(all, i, n) if (json_is_string(n) && !json_object_get(kept, json_string_value(n)))
    json_array_append(*dropped, n);
  json_decref(all);
  return kept;
}

static int start_existing(const char *name, int env_fd_in, bool auto_restart, json_t **out, berth_error_t *err) {
  if (!container_name_valid(name)) return berth_error(err, -ENOENT, "Container not found: %.80s", name);
  struct berth_config *cfg = config_get(err);
  if (!cfg) return -1;
  int lk = container_lock(name, err);
  if (lk < 0) return -1;
  json_t *st = state_read(name);
  const char *ls = st ? live_status(st) : NULL;
  if (!st || !strcmp(ls, "running") || !strcmp(ls, "creating") || json_is_true(json_object_get(st, "remove_on_exit"))) {
    int r = 0;
    if (!st) r = berth_error(err, -ENOENT, "Container not found: %s", name);
    else if (!strcmp(ls, "running"))
      *out = json_pack("{s:b, s:s, s:s, s:s}", "success", 1, "container", name, "status", "running", "detail", "already running");
    else if (!strcmp(ls, "creating")) r = berth_error(err, -EBUSY, "container %s is still being created", name);
    else r = berth_error(err, -EINVAL, "container %s was a `run --rm` one-shot: it cannot be started again", name);
    json_decref(st);
    close(lk);
    return r;
  }
  /* what a crash (or a reboot) left: helpers, the cgroup, the address */
  const char *helpers[] = {"network_helper", "port_forwarder", "egress_helper"};
  for (int i = 0; i < 3; i++)
    if (state_proc_alive(st, helpers[i])) kill((pid_t)json_integer_value(json_object_get(json_object_get(st, helpers[i]), "pid")), SIGKILL);
  cgroup_destroy(json_object_get(st, "cgroup"));
  berth_trace("start: leftovers cleared");
  const char *id = jstr(st, "id") ?: "";
  const char *network = jstr(st, "network") ?: "none";
  if (!strcmp(network, "bridge")) hb_release(id);
  cleanup_free char *cdir = cpath(name, NULL);
  cleanup_free char *sp = xasprintf("%s/config.json", cdir);
  json_t *limits = json_object_get(st, "limits");
  struct create_opts so = {.name = name, .image = jstr(st, "image"), .persistent = jbool(st, "persistent", false),
                           .quiet = true, .ports = json_object_get(st, "ports"), .egress = json_object_get(st, "egress"),
                           .limits = {.memory = json_integer_value(json_object_get(limits, "memory")),
                                      .pids = json_integer_value(json_object_get(limits, "pids")),
                                      .cpus = json_number_value(json_object_get(limits, "cpus"))}};
  struct create_ctx c = {.o = &so, .cfg = cfg, .name = name, .cdir = cdir, .network = network, .env_fd = -1, .lock_fd = lk,
                         .lease = {.lock_fd = -1, .userns_fd = -1, .netns_fd = -1}, .userns_fd = -1, .run_go_w = -1,
                         .pty_sock = -1, .out_r = -1, .err_r = -1, .mnt_fd = -1};
  c.spec = json_load_file(sp, 0, NULL);
  c.port_fds = xmalloc0(sizeof(int) * (json_array_size(so.ports) + 1));
  json_t *kept = NULL, *dropped = NULL, *cmd = NULL, *restored = NULL, *v;
  const char *ip = NULL, *k;
  char *hx = NULL;
  int r = -1;
  bool named = net_is_named(network);
  if (!c.spec) {
    berth_error(err, -EINVAL, "container %s: its config.json is missing or unreadable; remove it with `berth rm -f %s`", name, name);
    goto done;
  }
  if (json_is_true(json_object_get(json_object_get(st, "disk"), "enforced")) && disk_mount(cdir, err) < 0) goto done;
  if (pf_bind(so.ports, c.port_fds, err) < 0) goto done;
  if (named && net_named_lease(network, container_network_members, &c.lease, err) < 0) goto done;
  c.hostbr = !strcmp(network, "bridge") && hb_usable();
  if (c.hostbr && hb_lease(id, c.hb_ip, err) < 0) goto done;
  ip = named ? c.lease.ip : c.hostbr ? c.hb_ip : NULL;
  if (write_gen_files(cdir, name, network, ip, c.hostbr, so.egress != NULL, true, err) < 0) goto done;
  hx = random_hex(2);
  c.cgname = xasprintf("%s-%s-%s", name, id, hx ? hx : "0"); /* a new name: the old one may linger */
  free(hx);
  berth_trace("start: network and files");
  if (cgroup_create(c.cgname, &so.limits, spec_devices(c.spec), &c.cg, err) < 0) goto done;
  berth_trace("start: cgroup");
  kept = env_kept(cdir, c.spec, &dropped);
  if (env_fd_in >= 0) {
    c.env_fd = fcntl(env_fd_in, F_DUPFD_CLOEXEC, 3);
    json_array_clear(dropped); /* the monitor held them all */
  } else {
    so.env = kept;
    c.env_fd = env_memfd(kept, err);
  }
  if (c.env_fd < 0) goto done;
  c.slirp = (!strcmp(network, "bridge") && !c.hostbr) || named;
  cmd = json_object_get(st, "command");
  if (!strcmp(jstr(st, "mode") ?: "", "service") && json_array_size(cmd)) {
    c.svc_argv = json_incref(cmd);
    size_t n = json_array_size(cmd);
    c.svc_cargv = xmalloc0(sizeof(char *) * (n + 1));
    for (size_t i = 0; i < n; i++) c.svc_cargv[i] = (char *)(json_string_value(json_array_get(cmd, i)) ?: "");
    c.svc = (struct exec_opts){.name = name, .argv = c.svc_cargv, .user = jstr(st, "user"), .keep_caps = container_setup_caps(st)};
  }
  c.expires_at = (double)json_integer_value(json_object_get(st, "expires_at"));
  c.resident = c.svc_argv || strcmp(jstr(json_object_get(st, "restart"), "policy") ?: "no", "no") || c.expires_at > 0;
  c.id = xstrdup(id);
  json_object_del(st, "stopped");
  json_object_del(st, "one_shot");
  json_object_del(st, "restart_error");
  json_object_set(st, "cgroup", c.cg);
  if (ip) json_object_set_new(st, "ip", json_string(ip));
  else json_object_del(st, "ip");
  json_object_set_new(st, "restart_count", json_integer(auto_restart ? json_integer_value(json_object_get(st, "restart_count")) + 1 : 0));
  if (!auto_restart) json_object_del(st, "restart_backoff_ms");
  if (state_write(name, st, err) < 0) goto done;
  if (c.lease.lock_fd >= 0) close(c.lease.lock_fd);
  c.lease.lock_fd = -1;
  berth_trace("start: state written");
  if (start_monitor(&c, err) < 0) goto done;
  berth_trace("start: monitor verdict");
  if (named) net_named_refresh(network, container_network_members);
  r = 0;
  *out = json_pack("{s:b, s:s, s:s, s:O, s:s, s:O}", "success", 1, "container", name, "status", "running", "restart_count",
                   json_object_get(st, "restart_count"), "mode", jstr(st, "mode") ?: "dev", "env_dropped", dropped);
  restored = json_array();
  json_object_foreach(kept, k, v) json_array_append_new(restored, json_string(k));
  json_object_set_new(*out, "env_restored", restored);
  if (json_array_size(dropped))
    json_object_set_new(*out, "notes", json_pack("[s]", "variables that came from the host (passed through or forwarded "
                                                        "credentials) live only while a container runs: env_dropped names "
                                                        "them; pass them again with exec -e, or recreate the container"));
done:
  if (r < 0) {
    if (c.cg) cgroup_destroy(c.cg);
    if (c.hostbr) hb_release(id);
    berth_error_wrap(err, "Failed to start container %s", name);
  }
  close(lk);
  if (c.env_fd >= 0) close(c.env_fd);
  net_lease_close(&c.lease);
  pf_close(so.ports, c.port_fds);
  free(c.port_fds);
  free(c.cgname);
  free(c.id);
  free(c.note);
  free(c.svc_cargv);
  json_decref(c.svc_argv);
  json_decref(c.cg);
  json_decref(c.spec);
  json_decref(kept);
  json_decref(dropped);
  json_decref(st);
  return r;
}

int container_start_persistent(json_t **out, berth_error_t *err) {
  cleanup_free char *d = containers_dir(err);
  if (!d) return -1;
  json_t *started = json_array(), *failed = json_array(), *skipped = json_array();
  DIR *dd = opendir(d);
  struct dirent *de;
  while (dd && (de = readdir(dd))) {
    if (de->d_name[0] == '.' || !container_name_valid(de->d_name)) continue;
    json_t *st = state_read(de->d_name);
    const char *policy = jstr(json_object_get(st, "restart"), "policy") ?: "no";
    bool stopped = json_is_true(json_object_get(st, "stopped"));
    /* persistent and unless-stopped: unless a person stopped it; always: even then (Docker's rule) */
    bool want = st && strcmp(live_status(st), "running") && strcmp(live_status(st), "creating") &&
                ((jbool(st, "persistent", false) && !stopped) || !strcmp(policy, "always") ||
                 (!strcmp(policy, "unless-stopped") && !stopped));
    if (want) {
      json_t *o = NULL;
      berth_error_t e = NULL;
      if (start_existing(de->d_name, -1, false, &o, &e) < 0) {
        json_array_append_new(failed, json_pack("{s:s, s:s}", "container", de->d_name, "error", e->msg));
        berth_error_free(e);
      } else
        json_array_append_new(started, json_string(de->d_name));
      json_decref(o);
    } else if (st && jbool(st, "persistent", false) && stopped)
      json_array_append_new(skipped, json_string(de->d_name));
    json_decref(st);
  }
  if (dd) closedir(dd);
  *out = json_pack("{s:b, s:o, s:o, s:o}", "success", json_array_size(failed) == 0, "started", started, "failed", failed,
                   "skipped_stopped", skipped);
  return 0;
}

json_t *container_session_ref(void) { return proc_ref(getpid()); }

/* a container whose time is up, or whose MCP session ended without
 * removing it (the server was killed): removed, unless persistent */
static bool reap_expired(const char *name, json_t *st) {
  if (jbool(st, "persistent", false)) return false;
  json_t *exp = json_object_get(st, "expires_at");
  bool gone = (exp && json_integer_value(exp) > 0 && json_integer_value(exp) <= (json_int_t)time(NULL)) ||
              (json_object_get(st, "session") && !state_proc_alive(st, "session"));
  if (!gone || !strcmp(live_status(st), "creating")) return false;
  json_t *o = NULL;
  berth_error_t e = NULL;
  if (remove_container(name, jstr(st, "id"), -1, true, NULL, &o, &e) < 0) berth_error_free(e);
  json_decref(o);
  return true;
}
