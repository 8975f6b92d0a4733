/* OCI hooks (hooks.h). The hook's environment is exactly its own `env`
 * (empty when it has none): a container's environment (LD_PRELOAD from
 * an image, CVE-2025-23266) never reaches a program that runs with the
 * runtime's privileges. */
#define _GNU_SOURCE
#include "runtime/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "runtime/container.h"
#include "util/security.h"

bool hooks_any(json_t *spec, const char *kind) { return json_array_size(json_object_get(json_object_get(spec, "hooks"), kind)) > 0; }

char *hooks_state(json_t *spec, const char *id, const char *status, pid_t pid, const char *bundle) {
  json_t *s = json_pack("{s:s, s:s, s:s, s:s}", "ociVersion", "1.0.2", "id", id, "status", status, "bundle", bundle);
  if (pid > 0) json_object_set_new(s, "pid", json_integer(pid));
  json_t *ann = json_object_get(spec, "annotations");
  if (json_is_object(ann)) json_object_set(s, "annotations", ann);
  char *t = json_dumps(s, JSON_COMPACT);
  json_decref(s);
  return t;
}

/* the child: stdin the state, stdout and stderr the output pipe, nothing
 * else of ours; every signal as a new process has it */
static __attribute__((noreturn)) void hook_child(const char *path, char **argv, char **envp, int in, int out, unsigned flags) {
  setsid(); /* its own group: a timeout kills what it started too */
  dup2(in, 0), dup2(out, 1), dup2(out, 2);
  sigset_t none;
  sigemptyset(&none);
  for (int s = 1; s < 65; s++)
    if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int tfd = -1;
  if (flags & HOOK_CONFINED) {
    berth_error_t e = NULL;
    tfd = tiny_memfd();
    if (tfd < 0) dprintf(2, "berth: cannot start the hook safely: %s\n", strerror(errno)), _exit(127);
    if (security_drop_bounding(0, &e) < 0 || security_drop_caps(0, &e) < 0 || security_no_new_privs(&e) < 0 || security_seccomp(&e) < 0)
      dprintf(2, "berth: confining the hook: %s\n", e->msg), _exit(127);
    if (dup2(tfd, 3) < 0) _exit(127);
    tfd = 3;
  }
  syscall(SYS_close_range, (unsigned)(tfd >= 0 ? 4 : 3), ~0U, 0U);
  if (flags & HOOK_CONFINED) {
    /* berth-tiny exec FILE ARG...: argv[0] is the path there */
    size_t n = 0;
    while (argv[n]) n++;
    char **t = calloc(n + 3, sizeof *t);
    if (!t) _exit(127);
    t[0] = "berth-tiny", t[1] = "exec", t[2] = (char *)path;
    for (size_t i = 1; i < n; i++) t[i + 2] = argv[i];
    syscall(SYS_execveat, tfd, "", t, envp, AT_EMPTY_PATH);
  } else execve(path, argv, envp);
  dprintf(2, "berth: cannot run the hook: %s\n", strerror(errno));
  _exit(127);
}

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int hook_one(json_t *h, const char *kind, const char *state, unsigned flags, berth_error_t *err) {
  const char *path = json_string_value(json_object_get(h, "path"));
  if (!path || path[0] != '/') return berth_error(err, -EINVAL, "%s hook: its path must be absolute", kind);
  json_t *args = json_object_get(h, "args"), *env = json_object_get(h, "env");
  json_int_t timeout = json_integer_value(json_object_get(h, "timeout"));
  if (timeout <= 0) timeout = HOOK_DEFAULT_TIMEOUT;
  size_t na = json_array_size(args), ne = json_array_size(env);
  char **argv = calloc(na + 2, sizeof *argv), **envp = calloc(ne + 1, sizeof *envp);
  if (!argv || !envp) {
    free(argv), free(envp);
    return berth_error(err, -ENOMEM, "hook");
  }
  for (size_t i = 0; i < na; i++) argv[i] = (char *)(json_string_value(json_array_get(args, i)) ?: "");
  if (!na) argv[0] = (char *)path;
  for (size_t i = 0; i < ne; i++) envp[i] = (char *)(json_string_value(json_array_get(env, i)) ?: "");
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
    int e = errno;
    if (in[0] >= 0) close(in[0]), close(in[1]);
    free(argv), free(envp);
    return berth_error(err, e, "%s hook `%s`: pipe", kind, path);
  }
  pid_t pid = fork();
  if (pid == 0) hook_child(path, argv, envp, in[0], out[1], flags);
  int fe = errno;
  free(argv), free(envp);
  close(in[0]), close(out[1]);
  if (pid < 0) {
    close(in[1]), close(out[0]);
    return berth_error(err, fe, "%s hook `%s`: fork", kind, path);
  }
  /* the state: one write (a hook that does not read gets EPIPE, not us killed) */
  struct sigaction ign = {.sa_handler = SIG_IGN}, oldpipe;
  sigaction(SIGPIPE, &ign, &oldpipe);
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  size_t sl = strlen(state);
  if (write(in[1], state, sl) != (ssize_t)sl) {}
  close(in[1]);
  sigaction(SIGPIPE, &oldpipe, NULL);
  /* its output, the last 2 KiB, until it ends (or the deadline); its
   * end shows on a pidfd, so a fast hook costs no polling interval */
  char tail[2048];
  size_t tl = 0;
  double deadline = mono() + (double)timeout;
  int status = 0, pfd = (int)syscall(SYS_pidfd_open, pid, 0);
  bool ended = false, timed_out = false, eof = false;
  while (!ended) {
    struct pollfd p[2] = {{.fd = eof ? -1 : out[0], .events = POLLIN}, {.fd = pfd, .events = POLLIN}};
    int left = (int)((deadline - mono()) * 1000);
    if (left <= 0) {
      timed_out = true;
      break;
    }
    int pr = poll(p, 2, pfd < 0 && left > 10 ? 10 : left);
    if (pr > 0 && p[0].revents) {
      char b[4096];
      ssize_t n = read(out[0], b, sizeof b);
      if (n <= 0) eof = true;
      for (ssize_t i = 0; i < n; i++) {
        if (tl == sizeof tail) memmove(tail, tail + 1, --tl);
        tail[tl++] = b[i];
      }
    }
    if (waitpid(pid, &status, WNOHANG) == pid) ended = true;
  }
  if (pfd >= 0) close(pfd);
  if (ended && !eof) { /* what it wrote last, without waiting for its children's copies */
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    char b[4096];
    ssize_t n;
    while ((n = read(out[0], b, sizeof b)) > 0)
      for (ssize_t i = 0; i < n; i++) {
        if (tl == sizeof tail) memmove(tail, tail + 1, --tl);
        tail[tl++] = b[i];
      }
  }
  if (timed_out) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  }
  close(out[0]);
  /* what it started and left behind goes with it */
  kill(-pid, SIGKILL);
  while (tl && (tail[tl - 1] == '\n' || tail[tl - 1] == ' ')) tl--;
  tail[tl < sizeof tail ? tl : sizeof tail - 1] = '\0';
  if (timed_out)
    return berth_error(err, -ETIMEDOUT, "%s hook `%s` did not finish within %lld s%s%s", kind, path, (long long)timeout, tl ? ": " : "",
                       tail);
  if (WIFSIGNALED(status))
    return berth_error(err, -EIO, "%s hook `%s` was killed by signal %d%s%s", kind, path, WTERMSIG(status), tl ? ": " : "", tail);
  if (WEXITSTATUS(status))
    return berth_error(err, -EIO, "%s hook `%s` failed (exit %d)%s%s", kind, path, WEXITSTATUS(status), tl ? ": " : "", tail);
  return 0;
}

int hooks_run(json_t *spec, const char *kind, const char *state, unsigned flags, berth_error_t *err) {
  size_t i;
  json_t *h;
  json_array_foreach(json_object_get(json_object_get(spec, "hooks"), kind), i, h) {
    berth_trace("hooks: %s %zu", kind, i);
    if (hook_one(h, kind, state, flags, err) < 0) return -1;
  }
  return 0;
}
