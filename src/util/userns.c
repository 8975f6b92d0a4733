#define _GNU_SOURCE
#include "util/userns.h"

#include "util/config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <pwd.h>
#include <sched.h>
#include <spawn.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

int subid_lookup(const char *file, const char *user, uid_t uid, struct id_range *out) {
  cleanup_fclose FILE *f = fopen(file, "re");
  if (!f) return -1;
  char line[512];
  char uidstr[32];
  snprintf(uidstr, sizeof uidstr, "%u", (unsigned)uid);
  while (fgets(line, sizeof line, f)) {
    char *save = NULL;
    char *name = strtok_r(line, ":\n", &save);
    char *start = strtok_r(NULL, ":\n", &save);
    char *count = strtok_r(NULL, ":\n", &save);
    if (!name || !start || !count) continue;
    if (strcmp(name, uidstr) && (!user || strcmp(name, user))) continue;
    out->start = strtoul(start, NULL, 10);
    out->count = strtoul(count, NULL, 10);
    if (out->count > 0) return 0;
  }
  return -1;
}

static int write_proc(pid_t pid, const char *what, const char *data) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/%s", (int)pid, what);
  int fd = open(p, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, data, strlen(data));
  close(fd);
  return n == (ssize_t)strlen(data) ? 0 : -1;
}

static char *map_text(const struct id_map *m, size_t n) {
  struct buf b = {0};
  for (size_t i = 0; i < n; i++) {
    char line[96];
    int k = snprintf(line, sizeof line, "%lu %lu %lu\n", m[i].inside, m[i].outside, m[i].count);
    buf_append(&b, line, (size_t)k);
  }
  buf_append(&b, "", 1);
  return b.data;
}

/* newuidmap/newgidmap PID IN OUT COUNT..., started with posix_spawn (no
 * copy of our page tables); its pid, or -1 */
static pid_t spawn_helper(const char *prog, pid_t pid, const struct id_map *m, size_t n) {
  char **argv = calloc(3 * n + 3, sizeof *argv);
  if (!argv) return -1;
  char spid[16];
  snprintf(spid, sizeof spid, "%d", (int)pid);
  size_t a = 0;
  argv[a++] = (char *)prog;
  argv[a++] = spid;
  for (size_t i = 0; i < n; i++) {
    argv[a++] = xasprintf("%lu", m[i].inside);
    argv[a++] = xasprintf("%lu", m[i].outside);
    argv[a++] = xasprintf("%lu", m[i].count);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t c = -1;
  if (posix_spawnp(&c, prog, &fa, NULL, argv, environ) != 0) c = -1;
  posix_spawn_file_actions_destroy(&fa);
  for (size_t i = 2; i < a; i++) free(argv[i]);
  free(argv);
  return c;
}

static bool helper_ok(pid_t c) {
  int st = 0;
  if (c < 0) return false;
  while (waitpid(c, &st, 0) < 0)
    if (errno != EINTR) return false;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int userns_write_maps(pid_t pid, const struct id_map *u, size_t nu, const struct id_map *g, size_t ng, bool *partial, berth_error_t *err) {
  *partial = false;
  cleanup_free char *ut = map_text(u, nu), *gt = map_text(g, ng);
  /* directly where the kernel lets us (root, or our own id alone); a
   * single gid map of our own needs setgroups denied first */
  bool u_done = write_proc(pid, "uid_map", ut) == 0;
  if (!u_done && errno != EPERM) return berth_error(err, errno, "write the uid map of process %d (%.64s)", (int)pid, ut);
  bool g_done = write_proc(pid, "gid_map", gt) == 0;
  if (!g_done && errno == EPERM && ng == 1 && g[0].count == 1 && g[0].outside == (unsigned long)getegid() &&
      write_proc(pid, "setgroups", "deny") == 0)
    g_done = write_proc(pid, "gid_map", gt) == 0;
  if (!g_done && errno != EPERM) {
    *partial = u_done;
    return berth_error(err, errno, "write the gid map of process %d (%.64s)", (int)pid, gt);
  }
  /* the rest through the set-user-ID helpers, both at once: each is an
   * exec of a few ms */
  pid_t hu = u_done ? 0 : spawn_helper("newuidmap", pid, u, nu);
  pid_t hg = g_done ? 0 : spawn_helper("newgidmap", pid, g, ng);
  bool uok = u_done || helper_ok(hu), gok = g_done || helper_ok(hg);
  if (uok && gok) return 0;
  *partial = uok || gok; /* half mapped: the namespace cannot be mapped again */
  return berth_error(err, -EPERM,
                     "%s could not write the %s map of process %d: its ranges must be within your %s (and the helper installed "
                     "set-user-ID: `berth preflight` checks both)",
                     uok ? "newgidmap" : "newuidmap", uok ? "gid" : "uid", (int)pid, uok ? "/etc/subgid" : "/etc/subuid");
}

/* Map the child: full ranges through newuidmap/newgidmap when the user has
 * them, else only the user's own ids (and say what that means). */
int userns_map(pid_t pid, bool *single) {
  uid_t uid = getuid();
  gid_t gid = getgid();
  struct passwd *pw = getpwuid(uid);
  const char *name = pw ? pw->pw_name : NULL;
  struct id_range ur, gr;
  *single = false;
  if (subid_lookup("/etc/subuid", name, uid, &ur) == 0 && subid_lookup("/etc/subgid", name, uid, &gr) == 0) {
    struct id_map um[] = {{0, uid, 1}, {1, ur.start, ur.count}}, gm[] = {{0, gid, 1}, {1, gr.start, gr.count}};
    bool partial = false;
    cleanup_error berth_error_t e = NULL;
    if (userns_write_maps(pid, um, 2, gm, 2, &partial, &e) == 0) return 0;
    if (partial) return -1;
  }
  *single = true;
  char m[64];
  snprintf(m, sizeof m, "0 %u 1\n", (unsigned)uid);
  if (write_proc(pid, "uid_map", m) < 0) return -1;
  write_proc(pid, "setgroups", "deny");
  snprintf(m, sizeof m, "0 %u 1\n", (unsigned)gid);
  return write_proc(pid, "gid_map", m);
}

/* ---- the user namespace keeper ---- */

/* the maps a rootless container gets: 0 -> the user, 1.. -> subordinate ids */
static bool expected_ranges(struct id_range *ur, struct id_range *gr) {
  struct passwd *pw = getpwuid(getuid());
  const char *name = pw ? pw->pw_name : NULL;
  return subid_lookup("/etc/subuid", name, getuid(), ur) == 0 && subid_lookup("/etc/subgid", name, getuid(), gr) == 0;
}

static bool map_is(pid_t pid, const char *which, unsigned long own, const struct id_range *r) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/%s", (int)pid, which);
  cleanup_free char *txt = NULL;
  if (read_file(p, 4096, &txt, NULL, NULL) < 0) return false;
  unsigned long a[6];
  int n = sscanf(txt, "%lu %lu %lu %lu %lu %lu", &a[0], &a[1], &a[2], &a[3], &a[4], &a[5]);
  return n == 6 && a[0] == 0 && a[1] == own && a[2] == 1 && a[3] == 1 && a[4] == r->start && a[5] == r->count;
}

/* the keeper recorded in path, if it is still that process with those maps
 * (one with other maps, from before /etc/subuid changed, is told to go:
 * the containers made in it keep their namespaces) */
static pid_t keeper_alive(const char *path, const struct id_range *ur, const struct id_range *gr) {
  cleanup_free char *rec = NULL;
  if (read_file(path, 256, &rec, NULL, NULL) < 0) return -1;
  int pid = 0;
  unsigned long long start = 0;
  if (sscanf(rec, "%d %llu", &pid, &start) != 2 || pid <= 0 || !start || proc_starttime(pid) != start) return -1;
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
  cleanup_free char *cmd = NULL;
  if (read_file(p, 256, &cmd, NULL, NULL) < 0 || strcmp(cmd, "berth-userns")) return -1;
  if (!map_is(pid, "uid_map", getuid(), ur) || !map_is(pid, "gid_map", getgid(), gr)) {
    kill(pid, SIGTERM);
    return -1;
  }
  return pid;
}

/* Start a keeper: a process of its own session (reparented, no zombie for
 * an embedding caller) in a new user namespace, mapped by newuidmap and
 * newgidmap once; then it becomes `hold` (berth-tiny, a few KiB). */
static pid_t keeper_start(void (*hold)(void)) {
  int rp[2], gp[2];
  if (pipe2(rp, O_CLOEXEC) < 0) return -1;
  if (pipe2(gp, O_CLOEXEC) < 0) {
    close(rp[0]), close(rp[1]);
    return -1;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t a = fork();
  if (a == 0) {
    setsid();
    if (fork() != 0) _exit(0);
    close(rp[0]), close(gp[1]);
    pid_t me = getpid();
    if (unshare(CLONE_NEWUSER) < 0 || write(rp[1], &me, sizeof me) != sizeof me) _exit(1);
    char b = 0;
    if (read(gp[0], &b, 1) != 1 || b != 1) _exit(1); /* not mapped: gone */
    if (chdir("/") < 0) {}
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
    /* rp[1] stays until the exec closes it: the caller waits for that EOF,
     * so it never sees us before we are `berth-userns` */
    if (dup3(rp[1], 3, O_CLOEXEC) < 0) _exit(1);
    syscall(SYS_close_range, 4U, ~0U, 0U);
    hold();
    _exit(1);
  }
  close(rp[1]), close(gp[0]);
  pid_t k = -1;
  if (a > 0) {
    while (waitpid(a, NULL, 0) < 0 && errno == EINTR) {}
    if (read(rp[0], &k, sizeof k) != sizeof k) k = -1;
  }
  bool single = true;
  char go = k > 0 && userns_map(k, &single) == 0 && !single;
  if (write(gp[1], &go, 1) != 1) go = 0;
  close(gp[1]);
  /* EOF: it exec'd (or died, which the caller's check sees) */
  for (ssize_t n = 1; go && n != 0;) {
    char b;
    n = read(rp[0], &b, 1);
    if (n < 0 && errno != EINTR) break;
  }
  close(rp[0]);
  return go ? k : -1;
}

int userns_keeper_open(const char *run_dir, void (*hold)(void)) {
  struct id_range ur, gr;
  if (geteuid() == 0 || !run_dir || !expected_ranges(&ur, &gr)) return -1;
  cleanup_free char *rec = xasprintf("%s/userns-keeper", run_dir);
  pid_t k = keeper_alive(rec, &ur, &gr);
  if (k < 0 && !hold) return -1; /* only an existing one */
  if (k < 0) {
    cleanup_free char *lp = xasprintf("%s/userns-keeper.lock", run_dir);
    cleanup_close int lk = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lk < 0 || flock(lk, LOCK_EX) < 0) return -1;
    k = keeper_alive(rec, &ur, &gr); /* another berth may have started one meanwhile */
    if (k < 0 && (k = keeper_start(hold)) > 0) {
      char line[64];
      snprintf(line, sizeof line, "%d %llu\n", (int)k, proc_starttime(k));
      if (write_file_replace(rec, line, strlen(line), 0600, false, NULL) < 0) {}
    }
    if (k < 0) return -1;
  }
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/ns/user", (int)k);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  /* the same process still (not a pid reused between the check and the open) */
  if (fd >= 0 && keeper_alive(rec, &ur, &gr) != k) {
    close(fd);
    fd = -1;
  }
  return fd;
}

int userns_map_identity(pid_t pid) {
  const char *which[] = {"uid_map", "gid_map"};
  for (int w = 0; w < 2; w++) {
    char src[32], dst[64];
    cleanup_free char *txt = NULL;
    snprintf(src, sizeof src, "/proc/self/%s", which[w]);
    snprintf(dst, sizeof dst, "/proc/%d/%s", (int)pid, which[w]);
    if (read_file(src, 8192, &txt, NULL, NULL) < 0) return -1;
    struct buf b = {0};
    char *save = NULL;
    for (char *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
      unsigned long in, out, count;
      if (sscanf(line, "%lu %lu %lu", &in, &out, &count) != 3) continue;
      char l[80];
      int n = snprintf(l, sizeof l, "%lu %lu %lu\n", in, in, count);
      buf_append(&b, l, (size_t)n);
    }
    int fd = open(dst, O_WRONLY | O_CLOEXEC);
    bool ok = fd >= 0 && b.len && write(fd, b.data, b.len) == (ssize_t)b.len;
    if (fd >= 0) close(fd);
    buf_free(&b);
    if (!ok) return -1;
  }
  return 0;
}

static int read_all(int fd, struct buf *b) {
  char tmp[8192];
  for (;;) {
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? -1 : 0;
    if (buf_append(b, tmp, n) < 0) return -1;
  }
}

static volatile pid_t forward_pid;
static void forward_signal(int sig) {
  if (forward_pid > 0) kill(forward_pid, sig);
}

int userns_run(int (*fn)(void *arg, char **result, berth_error_t *err), void *arg, char **result, berth_error_t *err) {
  return userns_run_at(-1, fn, arg, result, err);
}

/* root of the user namespace just entered: it maps us there */
static int become_root(void) {
  if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) return -1;
  setgroups(0, NULL);
  setenv("BERTH_IN_USERNS", "1", 1);
  return 0;
}

int userns_enter(int userns_fd, berth_error_t *err) {
  if (geteuid() == 0) return 0;
  if (setns(userns_fd, CLONE_NEWUSER) < 0) return berth_error(err, errno, "enter the container's user namespace");
  if (become_root() < 0) return berth_error(err, errno, "become root in the container's user namespace");
  return 0;
}

int userns_run_at(int userns_fd, int (*fn)(void *arg, char **result, berth_error_t *err), void *arg, char **result, berth_error_t *err) {
  if (geteuid() == 0) return fn(arg, result, err);
  /* none given: the keeper's when there is one, the same maps without a
   * newuidmap/newgidmap round (two set-user-ID execs); none is started for this */
  cleanup_close int kfd = -1;
  if (userns_fd < 0) {
    struct berth_config *c = config_get(NULL);
    userns_fd = kfd = c && config_run_dir_usable(c) ? userns_keeper_open(c->run_dir, NULL) : -1;
  }
  int sync1[2], sync2[2], res[2];
  if (pipe2(sync1, O_CLOEXEC) < 0 || pipe2(sync2, O_CLOEXEC) < 0 || pipe2(res, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return berth_error(err, errno, "fork");
  if (pid == 0) {
    close(sync1[0]);
    close(sync2[1]);
    close(res[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char ok = 1;
    /* an existing namespace (already mapped), or a new one we map */
    if (userns_fd >= 0 ? setns(userns_fd, CLONE_NEWUSER) < 0 : unshare(CLONE_NEWUSER) < 0) ok = 0;
    int e = errno;
    if (write(sync1[1], &ok, 1) != 1) _exit(125);
    char go = 0;
    if (read(sync2[0], &go, 1) != 1) go = 0;
    berth_error_t cerr = NULL;
    char *out = NULL;
    int r;
    if (!ok) r = berth_error(&cerr, e, "cannot create a user namespace for rootless image storage; run `berth preflight` for the fix");
    else if (!go) r = berth_error(&cerr, -EPERM, "cannot map ids into the user namespace; run `berth preflight` for the fix");
    else {
      if (become_root() < 0) _exit(125);
      r = fn(arg, &out, &cerr);
    }
    json_t *msg = r < 0 ? json_pack("{s:b, s:i, s:o}", "ok", 0, "status", cerr ? cerr->status : 0, "msg",
                                    json_string_safe(cerr && cerr->msg ? cerr->msg : "unknown error"))
                        : json_pack("{s:b, s:s}", "ok", 1, "result", out ? out : "");
    char *txt = json_dumps(msg, JSON_COMPACT);
    size_t left = txt ? strlen(txt) : 0;
    for (char *p = txt; left;) {
      ssize_t n = write(res[1], p, left);
      if (n <= 0) break;
      p += n;
      left -= (size_t)n;
    }
    fflush(stdout);
    fflush(stderr);
    _exit(r < 0 ? 1 : 0);
  }
  close(sync1[1]);
  close(sync2[0]);
  close(res[1]);
  char ok = 0;
  if (read(sync1[0], &ok, 1) != 1) ok = 0;
  bool single = false;
  char go = ok && (userns_fd >= 0 || userns_map(pid, &single) == 0);
  if (go && single) {
    static bool said;
    if (!said && !getenv("BERTH_QUIET_SUBID"))
      berth_warn("no /etc/subuid and /etc/subgid range (or newuidmap) for this user: image files owned by other "
                 "users will belong to you; `berth preflight` shows the fix");
    said = true;
  }
  if (write(sync2[1], &go, 1) != 1) {}
  close(sync1[0]);
  close(sync2[1]);
  forward_pid = pid;
  struct sigaction sa = {.sa_handler = forward_signal}, old_int, old_term;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  struct buf b = {0};
  read_all(res[0], &b);
  close(res[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  forward_pid = 0;
  json_t *j = b.data ? json_loads(b.data, 0, NULL) : NULL;
  buf_free(&b);
  if (!j) {
    if (WIFSIGNALED(st)) return berth_error(err, -EINTR, "operation killed by signal %d", WTERMSIG(st));
    return berth_error(err, -EIO, "rootless helper process failed (exit %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  }
  int ret;
  if (json_is_true(json_object_get(j, "ok"))) {
    *result = strdup(json_string_value(json_object_get(j, "result")) ?: "");
    ret = 0;
  } else {
    /* the message already carries strerror: rebuild without appending it again */
    ret = berth_error(err, 0, "%s", json_string_value(json_object_get(j, "msg")) ?: "error");
    if (err && *err) (*err)->status = (int)json_integer_value(json_object_get(j, "status"));
  }
  json_decref(j);
  return ret;
}
