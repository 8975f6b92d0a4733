/* berth init: PID 1 of a container. Everything here runs in the new
 * namespaces: the root filesystem (overlay, fuse-overlayfs, or a copied
 * root), /dev, the user's binds and masks, hooks, the pivot, then the
 * reaping loop (or berth-tiny). */
#define _GNU_SOURCE
#include "runtime/container.h"
#include "runtime/container_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "runtime/hooks.h"
#include "runtime/rootfs.h"
#include "util/security.h"

/* ---------- init: everything below runs in the new namespaces ---------- */

static int init_fail(struct init_args *a, berth_error_t err) {
  init_msg_send(a->report_fd, INIT_MSG_ERROR, err ? err->status : 0, err && err->msg ? err->msg : "container setup failed");
  _exit(1);
}

/* ---------- the messages of launch.c and init ---------- */
static bool write_full(int fd, const void *p, size_t n) {
  for (size_t done = 0; done < n;) {
    ssize_t r = write(fd, (const char *)p + done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += (size_t)r;
  }
  return true;
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

int init_msg_send(int fd, enum init_msg type, int32_t value, const char *payload) {
  size_t len = payload ? strlen(payload) : 0;
  if (fd < 0 || len > (1U << 20)) return -1;
  struct init_msg_hdr h = {.type = (uint32_t)type, .value = value, .len = (uint32_t)len};
  /* one write where it fits: a pipe keeps writes of up to PIPE_BUF whole */
  char small[512];
  if (sizeof h + len <= sizeof small) {
    memcpy(small, &h, sizeof h);
    if (len) memcpy(small + sizeof h, payload, len);
    return write_full(fd, small, sizeof h + len) ? 0 : -1;
  }
  return write_full(fd, &h, sizeof h) && write_full(fd, payload, len) ? 0 : -1;
}

int init_msg_recv(int fd, struct init_msg_hdr *h, char **payload) {
  *payload = NULL;
  if (!read_full(fd, h, sizeof *h) || h->type < INIT_MSG_GO || h->type > INIT_MSG_ERROR || h->len > (1U << 20)) return -1;
  if (!h->len) return 0;
  char *p = malloc(h->len + 1);
  if (!p || !read_full(fd, p, h->len)) {
    free(p);
    return -1;
  }
  p[h->len] = '\0';
  *payload = p;
  return 0;
}

int init_msg_expect(int fd, enum init_msg type, char **payload) {
  struct init_msg_hdr h;
  char *p = NULL;
  if (init_msg_recv(fd, &h, &p) < 0 || h.type != (uint32_t)type) {
    free(p);
    return -1;
  }
  if (payload) *payload = p;
  else free(p);
  return h.value;
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

/* Ask the launcher to serve our root with fuse-overlayfs. It runs it in
 * our mount (and user) namespace but outside our pid namespace: a daemon
 * among the container's processes would hand them its descriptors of the
 * host's layer directories through /proc/PID/fd. True once it is mounted. */
bool init_fuse_root(struct init_args *a) {
  if (!fuse_overlayfs_path()) return false;
  berth_error_t e = NULL;
  if (!a->second_go_done && init_second_go(a, &e) < 0) { /* the request channel opens with it */
    berth_error_free(e);
    return false;
  }
  if (init_msg_send(a->report_fd, INIT_MSG_FUSE, 0, NULL) < 0) return false;
  return init_msg_expect(a->sync_fd, INIT_MSG_FUSE_DONE, NULL) == 1;
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
    return berth_error(err, -ENOTSUP,
                       "config `rootfs` is fuse, but fuse-overlayfs could not serve the root filesystem "
                       "(is it installed, and /dev/fuse open to you? %s)",
                       advice("see `berth preflight`", "see the preflight operation"));
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
    else if (in && a->volatile_upper && errno == EINVAL &&
             (opt.data[plain] = '\0', mount("overlay", rootfs, "overlay", MS_NODEV, opt.data) == 0))
      ret = 0; /* a kernel before 5.10: no `volatile` */
    else
      berth_error(err, errno, "mount the overlay root filesystem (%zu layers)%s", n,
                  a->rootless ? advice("; rootless overlay needs Linux 5.11+ (see `berth preflight`)",
                                       "; rootless overlay needs Linux 5.11+ (see the preflight operation)")
                              : "");
    if (cwd >= 0) {
      if (fchdir(cwd) < 0) {}
      close(cwd);
    }
    buf_free(&opt);
  }
  if (ret < 0 && init_fuse_root(a)) { /* overlayfs refused: fuse-overlayfs next, and say so */
    a->note = xasprintf("overlayfs could not be mounted here (%s): fuse-overlayfs serves the root filesystem (slower "
                        "file access; %s)",
                        err && *err ? (*err)->msg : "?", advice("see `berth preflight`", "see the preflight operation"));
    berth_error_clear(err);
    ret = 0;
  }
  if (ret < 0) {
    /* and where that cannot run either: copy the layers, and say so */
    berth_error_t e2 = NULL;
    if (copy_rootfs(lowers, upper, rootfs, &e2) == 0) {
      /* the init's note lives until it sends it: a one-off allocation */
      a->note = xasprintf("overlayfs could not be mounted here (%s): the root filesystem was copied from the layers (slower "
                          "creates, more disk; %s)",
                          err && *err ? (*err)->msg : "?", advice("see `berth preflight`", "see the preflight operation"));
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

void loopback_up(void) {
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
/* The launcher's second go (INIT_MSG_CGROUP): whether it brought our
 * loopback up, and the cgroup to move ourselves into (none: it placed us). */
static int init_second_go(struct init_args *a, berth_error_t *err) {
  cleanup_free char *txt = NULL;
  int v = init_msg_expect(a->sync_fd, INIT_MSG_CGROUP, &txt);
  if (v < 0) _exit(1);
  a->second_go_done = true;
  a->lo_done = v == 1;
  if (txt) {
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
 * launcher runs prestart and createRuntime on the host (INIT_MSG_HOOKS; it
 * answers with our pid as the host sees it, or 0 when a hook failed, which
 * it reports); then createContainer here, in the container's namespaces. */
static int init_hooks_created(struct init_args *a, berth_error_t *err) {
  static const char *const kinds[] = {"prestart", "createRuntime", "createContainer", "startContainer"};
  bool any = false;
  for (int i = 0; i < 4; i++) any |= hooks_any(a->spec, kinds[i]);
  if (!any) return 0;
  if (init_msg_send(a->report_fd, INIT_MSG_HOOKS, 0, NULL) < 0) return berth_error(err, -EIO, "the launcher is gone");
  int pid = init_msg_expect(a->sync_fd, INIT_MSG_HOOKS_DONE, NULL);
  if (pid < 0) return berth_error(err, -EIO, "the launcher is gone");
  if (pid == 0) return berth_error(err, -EIO, "a prestart or createRuntime hook failed");
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
  json_array_foreach(json_object_get(json_object_get(a->spec, "linux"), "namespaces"), i,
                     ns) if (!strcmp(json_string_value(json_object_get(ns, "type")) ?: "", "network")) own_net = true;

  /* the spec's mounts and devices, by the code berth-oci runs them with;
   * berth's policy on top: nothing the caller binds (or a device's tmpfs)
   * opens device nodes */
  json_t *sources = json_loads(jstr(json_object_get(a->spec, "annotations"), "berth.device_sources") ?: "{}", 0, NULL);
  struct rootfs_spec rs = {.spec = a->spec, .device_sources = sources, .in_userns = a->rootless, .nodev = true};
  int r = rootfs_spec_mounts(&rs, rootfd, err);
  if (r == 0) r = rootfs_spec_devices(&rs, rootfd, err);
  json_decref(sources);
  if (r < 0) return -1;
  if (rootfs_mask_and_readonly(rootfd, json_object_get(a->spec, "linux"), err) < 0) return -1;
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

/* set up: tell the launcher (with a remark for the result, if any) */
static void init_ready(void *arg) {
  struct init_args *a = arg;
  init_msg_send(a->report_fd, INIT_MSG_READY, 0, a->note);
  berth_trace("init: report");
  close(a->report_fd);
  a->report_fd = -1;
}

int init_main(struct init_args *a) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  proc_set_title("berth-init");
  if (init_msg_expect(a->sync_fd, INIT_MSG_GO, NULL) != 1) _exit(1);
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
