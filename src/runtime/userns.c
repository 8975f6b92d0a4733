#define _GNU_SOURCE
#include "userns.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <pwd.h>
#include <sched.h>
#include <spawn.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

int subid_lookup(const char *file, const char *user, uid_t uid, struct id_range *out) {
  cleanup_fclose FILE *f = fopen(file, "re");
  if (!f) return -1;
  char line[512];
  char uidstr[32];
  snprintf(uidstr, sizeof uidstr, "%u", (unsigned)uid);
  while (fgets(line, sizeof line, f)) {
    char *name = strtok(line, ":\n");
    char *start = strtok(NULL, ":\n");
    char *count = strtok(NULL, ":\n");
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

/* newuidmap/newgidmap PID 0 ID 1 1 START COUNT, started with posix_spawn
 * (no copy of our page tables); returns its pid or -1 */
static pid_t spawn_helper(const char *prog, pid_t pid, unsigned id, const struct id_range *r) {
  char spid[16], sid[16], sstart[32], scount[32];
  snprintf(spid, sizeof spid, "%d", (int)pid);
  snprintf(sid, sizeof sid, "%u", id);
  snprintf(sstart, sizeof sstart, "%lu", r->start);
  snprintf(scount, sizeof scount, "%lu", r->count);
  char *argv[] = {(char *)prog, spid, "0", sid, "1", "1", sstart, scount, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t c = -1;
  if (posix_spawnp(&c, prog, &fa, NULL, argv, environ) != 0) c = -1;
  posix_spawn_file_actions_destroy(&fa);
  return c;
}

static bool helper_ok(pid_t c) {
  int st = 0;
  if (c < 0) return false;
  while (waitpid(c, &st, 0) < 0)
    if (errno != EINTR) return false;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
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
    /* both at once: each is a set-user-ID exec of a few ms */
    pid_t u = spawn_helper("newuidmap", pid, uid, &ur), g = spawn_helper("newgidmap", pid, gid, &gr);
    bool uok = helper_ok(u), gok = helper_ok(g);
    if (uok && gok) return 0;
    if (uok || gok) return -1; /* half mapped: the namespace cannot be mapped again */
  }
  *single = true;
  char m[64];
  snprintf(m, sizeof m, "0 %u 1\n", (unsigned)uid);
  if (write_proc(pid, "uid_map", m) < 0) return -1;
  write_proc(pid, "setgroups", "deny");
  snprintf(m, sizeof m, "0 %u 1\n", (unsigned)gid);
  return write_proc(pid, "gid_map", m);
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

int userns_run_at(int userns_fd, int (*fn)(void *arg, char **result, berth_error_t *err), void *arg, char **result,
                  berth_error_t *err) {
  if (geteuid() == 0) return fn(arg, result, err);
  int sync1[2], sync2[2], res[2];
  if (pipe2(sync1, O_CLOEXEC) < 0 || pipe2(sync2, O_CLOEXEC) < 0 || pipe2(res, O_CLOEXEC) < 0)
    return berth_error(err, errno, "pipe");
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
    if (!ok)
      r = berth_error(&cerr, e,
                      "cannot create a user namespace for rootless image storage; run `berth preflight` for the fix");
    else if (!go)
      r = berth_error(&cerr, -EPERM, "cannot map ids into the user namespace; run `berth preflight` for the fix");
    else {
      if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) _exit(125);
      setgroups(0, NULL);
      setenv("BERTH_IN_USERNS", "1", 1);
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
  } else
  {
    /* the message already carries strerror: rebuild without appending it again */
    ret = berth_error(err, 0, "%s", json_string_value(json_object_get(j, "msg")) ?: "error");
    if (err && *err) (*err)->status = (int)json_integer_value(json_object_get(j, "status"));
  }
  json_decref(j);
  return ret;
}
