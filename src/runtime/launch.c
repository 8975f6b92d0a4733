/* Launching a container, and its monitor.
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
#include "runtime/container.h"
#include "runtime/container_internal.h"
#include "network/network.h"
#include "network/egress.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "util/config.h"
#include "runtime/logs.h"
#include "runtime/hooks.h"
#include "runtime/process.h"
#include "util/userns.h"

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
void exec_tiny(char *const argv[], char *const envp[]) {
  int fd = tiny_memfd();
  if (fd < 0) return;
  syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
  close(fd);
}

/* ---------- monitor ---------- */

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
static pid_t clone_via_helper(struct monitor_args *m, unsigned long flags, int userns_fd, json_t *cg, bool *placed, struct init_args *ia,
                              struct init_fds *f, berth_error_t *err) {
  int pp[2];
  if (pipe2(pp, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  /* the helper runs with every signal blocked; init gets our mask back */
  sigset_t old;
  sigprocmask(SIG_SETMASK, NULL, &old);
  struct helper_args h = {
      .m = m, .flags = flags, .userns_fd = userns_fd, .rfd = pp[0], .wfd = pp[1], .cg = cg, .ia = ia, .f = f, .mask = &old};
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

/* What the egress table needs to know of the container's network: how it
 * goes out (berth0, or slirp4netns: a named network's members too), its
 * named network's subnet (members reach each other), and the resolvers
 * berth's resolver forwards to: config `egress_dns`, else those the
 * container would have used itself. */
void egress_net_of(const struct monitor_args *m, struct egress_net *n) {
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
int launch(struct monitor_args *m, struct launched *L, berth_error_t *err) {
  memset(L, 0, sizeof *L);
  /* the namespaces the bundle lists, read as berth-oci reads them; they
   * must be the ones berth makes its containers with (a config.json
   * edited by hand, or damaged, is refused before anything starts) */
  unsigned long flags = 0;
  if (ns_new_flags(json_object_get(m->spec, "linux"), &flags, err) < 0)
    return berth_error_wrap(err, "container %s: recreate it (`berth rm -f %s`)", m->name, m->name);
  unsigned long want = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | (m->own_net ? CLONE_NEWNET : 0) |
                       (m->rootless ? CLONE_NEWUSER : 0);
  if (flags != want)
    return berth_error(err, -EINVAL,
                       "container %s: its config.json lists other namespaces than berth makes (%#lx, not %#lx); recreate it (`berth rm "
                       "-f %s`)",
                       m->name, flags, want, m->name);
  /* the cgroup namespace: init makes it once it is in its cgroup (INIT_MSG_CGROUP) */
  flags = (flags & ~(unsigned long)CLONE_NEWCGROUP) | SIGCHLD;
  int sync[2], rep[2];
  if (pipe2(sync, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  if (pipe2(rep, O_CLOEXEC) < 0) {
    int e = errno;
    close(sync[0]), close(sync[1]);
    return berth_error(err, e, "pipe");
  }
  int exitp[2] = {-1, -1};
  if (m->bridge && pipe2(exitp, O_CLOEXEC) < 0) {
    int e = errno;
    close(sync[0]), close(sync[1]), close(rep[0]), close(rep[1]);
    return berth_error(err, e, "pipe");
  }
  struct init_args ia = {.spec = m->spec,
                         .cdir = m->cdir,
                         .name = m->name,
                         .sync_fd = sync[0],
                         .report_fd = rep[1],
                         .rootless = m->rootless,
                         .run = m->run,
                         .run_env = m->run_env,
                         .run_go = m->run_go,
                         .pty_sock = m->pty_sock,
                         .out_fd = m->out_fd,
                         .err_fd = m->err_fd,
                         .volatile_upper = m->volatile_upper};
  struct init_fds fds = {.sync_w = sync[1], .rep_r = rep[0], .exit_r = exitp[0], .exit_w = exitp[1], .extra = -1};
  berth_error_t e1 = NULL, e2 = NULL;
  /* cgroup v2: made first, so that init is born in it (clone3 with
   * CLONE_INTO_CGROUP: no migration, which would take the kernel's global
   * lock, see cgroup_enter_self); v1: made while init mounts */
  json_t *cg = m->cg_made ? json_incref(m->cg_made) : NULL;
  if (!cg && cgroup_is_v2() && cgroup_create(m->cgname, json_object_get(m->spec, "linux"), &cg, &e2) < 0) {
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
  if (!m->named && keeper < 0 && pid < 0 && cgroup_clone_refused(errno)) pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
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
  /* two goes: the first (INIT_MSG_GO) starts init's mounts, the second
   * (INIT_MSG_CGROUP, after the cgroup move, which overlaps them) lets it
   * root its cgroup namespace */
  init_msg_send(sync[1], INIT_MSG_GO, fail ? 0 : 1, NULL);
  /* v1: the cgroup is made now, while init mounts */
  L->cg = cg;
  if (!fail && !L->cg && cgroup_create(m->cgname, json_object_get(m->spec, "linux"), &L->cg, &e2) < 0) fail = e2->msg;
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
  /* EPIPE if init failed already: SIGPIPE is ignored */
  if (!fail) init_msg_send(sync[1], INIT_MSG_CGROUP, lo_done ? 1 : 0, self_move);
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
  /* init's requests and its report, until it closes the pipe (it has
   * exec'd, or exited) */
  struct buf msg = {0}; /* init's error */
  bool ready = false;
  berth_error_t hook_err = NULL;
  struct init_msg_hdr h;
  char *payload;
  while (init_msg_recv(rep[0], &h, &payload) == 0) {
    switch ((enum init_msg)h.type) {
    case INIT_MSG_HOOKS: { /* init waits for prestart and createRuntime */
      cleanup_free char *st = hooks_state(m->spec, m->name, "creating", pid, m->cdir);
      int hr = hooks_run(m->spec, "prestart", st, 0, &hook_err);
      if (hr == 0) hr = hooks_run(m->spec, "createRuntime", st, 0, &hook_err);
      init_msg_send(sync[1], INIT_MSG_HOOKS_DONE, hr == 0 ? (int32_t)pid : 0, NULL);
      break;
    }
    case INIT_MSG_FUSE: { /* init waits for fuse-overlayfs */
      berth_error_t ef = NULL;
      int ok = fuse_serve(m, pid, &ef) == 0;
      if (ef) berth_warn("%s", ef->msg);
      berth_error_free(ef);
      init_msg_send(sync[1], INIT_MSG_FUSE_DONE, ok, NULL);
      break;
    }
    case INIT_MSG_READY:
      ready = true;
      if (payload && *payload) L->note = xstrdup(payload);
      break;
    case INIT_MSG_ERROR:
      if (!msg.len) {
        const char *t = payload && *payload ? payload : "container setup failed";
        buf_append(&msg, t, strlen(t) + 1);
        msg.len--; /* NUL-terminated, not counted */
      }
      break;
    default: break; /* not init's to send */
    }
    free(payload);
  }
  close(rep[0]);
  if (sync[1] >= 0) close(sync[1]);
  berth_trace("launch: init reported");
  if (!ready && !msg.len && !fail) { /* gone without a word (killed, or the launcher gave up) */
    const char *t =
        "berth init exited during the container's setup without a report (BERTH_TRACE=1 shows how far it got); try the create again";
    buf_append(&msg, t, strlen(t) + 1);
    msg.len--;
  }
  if (L->single) { /* said with the create's result, and kept in its state */
    char *n = xasprintf("%s%sa single-id mapping: only root (you) exists in this container, and image files of other "
                        "owners are root's (this user has no subordinate ids, or no working newuidmap); `berth "
                        "preflight` shows the fix",
                        L->note ? L->note : "", L->note ? "; " : "");
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
void poststart(json_t *spec, const char *name, const char *cdir, pid_t pid, char **note) {
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
void poststop(const char *name, const char *cdir, json_t *known) {
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
void record_running(const char *name, const struct launched *L, pid_t monitor) {
  json_t *st = state_read(name);
  if (!st) st = json_object();
  state_to_running(st, L, monitor);
  state_write_warn(name, st, "the start");
  json_decref(st);
}

static void monitor_serve(struct monitor_args *m, pid_t pid, int out_r, int err_r, struct log_writer *lw);
static json_t *read_env_fd(int fd);

static int open_monitor_log(const char *cdir) {
  cleanup_free char *p = xasprintf("%s/monitor.log", cdir);
  return open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
}

void monitor_main(struct monitor_args *m) {
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

int container_monitor_exit(const char *who, int code) { return record_exit(who, code, true); }

/* reap_children: only in a process whose children are all the container's
 * (the monitor, or berth run's CLI): never in `ls`, which an embedding
 * program may call */
int record_exit(const char *who, int code, bool reap_children) {
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
  if (s2 && watched > 0 && state_proc(s2, "init").pid != watched) {
    json_decref(s2); /* started again meanwhile: that start's monitor records its end */
    s2 = NULL;
  }
  if (s2) {
    bool ended_now = state_status(s2) != STATUS_EXITED;
    /* the network helper is our child: end it (it usually has, with init's pipe) and reap it */
    pid_t hp = (pid_t)json_integer_value(json_object_get(json_object_get(s2, "network_helper"), "pid"));
    if (hp > 0) {
      if (state_proc_alive(s2, "network_helper")) kill(hp, SIGTERM);
      while (waitpid(hp, &st, 0) < 0 && errno == EINTR) {}
    }
    state_to_exited(s2, code, cgroup_oom_kills(json_object_get(s2, "cgroup")) > 0);
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

/* ---------- service monitor, restart policy ---------- */

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
                 state_status(st) == STATUS_EXITED &&
                 (!strcmp(policy, "always") || !strcmp(policy, "unless-stopped") ||
                  (!strcmp(policy, "on-failure") && code != 0 && (max == 0 || count < max)));
    if (!again) {
      json_decref(st);
      close(lk);
      return;
    }
    json_int_t prev = json_integer_value(json_object_get(st, "restart_backoff_ms"));
    json_int_t delay = ran >= 10 || prev <= 0 ? 100 : prev * 2 > 60000 ? 60000 : prev * 2;
    state_to_restarting(st, delay, getpid());
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
    if (st && state_status(st) == STATUS_RESTARTING) {
      state_restart_failed(st, count + 1, e->msg);
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
    struct pollfd p[3] = {{.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN}, {.fd = exited ? -1 : pfd, .events = POLLIN}};
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
    } else if (!exited && kill_at > 0 && now >= kill_at) kill(pid, SIGKILL);
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
