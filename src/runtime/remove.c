/* Removing a container: its record, cgroup and network, and its
 * directory, moved to <data>/trash and deleted there (in the background
 * for run --rm). */
#define _GNU_SOURCE
#include "runtime/container.h"
#include "runtime/container_internal.h"
#include "network/network.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "util/config.h"
#include "runtime/disk.h"
#include "util/userns.h"

static int remove_dir_fn(void *arg, char **result, berth_error_t *err) {
  *result = NULL;
  return rm_rf((const char *)arg, err);
}

/* Remove a container directory; rootless it may hold subordinate-id files,
 * so removal happens inside the mapped user namespace. */
static int remove_container_dir_at(int userns_fd, const char *cdir, struct rm_later *later, berth_error_t *err);
int remove_container_dir(const char *cdir, berth_error_t *err) { return remove_container_dir_at(-1, cdir, NULL, err); }

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
    struct trash_child tc = {
        .job = {.dir = trash, .own = own}, .cg = later->cg, .userns_fd = userns_fd, .held = {-1, -1}, .gone = {-1, -1}};
    pid_t p = berth_is_cli ? trash_spawn_cli(&tc, later) : trash_spawn_embedded(&tc, later);
    if (p > 0) return 0;
    cdir = dst; /* no fork: delete it here */
  }
  char *res = NULL;
  int r = userns_run_at(userns_fd, remove_dir_fn, (void *)cdir, &res, err);
  free(res);
  return r;
}

/* Wait until the recorded process is gone: a pidfd turns readable the
 * moment it exits (no polling loop); the start time check first makes sure
 * the pidfd is for that very process. */
void wait_gone(json_t *st, const char *field, double secs) {
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
int remove_container(const char *name, const char *want_id, int userns_hint, bool force, struct rm_later *later, json_t **out,
                     berth_error_t *err) {
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
    pid_t pid = state_proc(st, "init").pid;
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
