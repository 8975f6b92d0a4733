/* berth exec: join a running container and run a command in it.
 *
 *   CLI ── fork ──> joiner: enters the cgroup, then setns() into the
 *                   container's user (rootless), ipc, uts, net, cgroup, pid
 *                   and mount namespaces ── fork ──> supervisor (in the pid ns)
 *                                                     └─ fork ──> command
 * The supervisor is a child subreaper: everything the command starts stays
 * below it, so a timeout kills the whole tree inside the container. It
 * reports the exit code and whether the timeout fired over a pipe. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <limits.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

#include "runtime/cgroup.h"
#include "util/config.h"
#include "runtime/container.h"
#include "runtime/container_internal.h"
#include "runtime/process.h"
#include "util/security.h"
#include "bundle/spec.h"

struct exec_report {
  int exit_code;
  int timed_out;
  char msg[512];
};

/* ---------- user lookup inside the container (never via NSS) ---------- */
static bool all_digits(const char *s) {
  if (!*s) return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

/* The container's /etc files are the image's (or the workload's) to make:
 * read by a process that runs berth's code with privileges, so only a
 * regular file of a real filesystem, at most ETC_MAX bytes, opened without
 * waiting (a FIFO or a device would hang us; a link into /proc could show
 * us our own environment). *out NULL: the file does not exist. */
#define ETC_MAX (4u << 20)
static int read_etc(const char *path, char **out, char *msg, size_t ml) {
  *out = NULL;
  cleanup_close int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return 0;
  struct stat st;
  struct statfs sf;
  const char *why = NULL;
  if (fd < 0 || fstat(fd, &st) < 0) why = strerror(errno);
  else if (!S_ISREG(st.st_mode)) why = "it is not a regular file (a FIFO, a device or a directory)";
  else if (fstatfs(fd, &sf) == 0 && (sf.f_type == PROC_SUPER_MAGIC || sf.f_type == SYSFS_MAGIC)) why = "it leads into /proc or /sys";
  else if ((uint64_t)st.st_size > ETC_MAX) why = "it is larger than 4 MiB";
  size_t len = 0;
  if (!why && read_file_at(fd, "", ETC_MAX, out, &len, NULL) < 0) why = "it could not be read whole";
  if (why) {
    snprintf(msg, ml, "the container's %s cannot be used: %s; make it a plain file of users and groups", path, why);
    return -1;
  }
  if (memchr(*out, '\0', len)) { /* nothing past a NUL is a line of it */
    free(*out);
    *out = NULL;
    snprintf(msg, ml, "the container's %s cannot be used: it holds NUL bytes", path);
    return -1;
  }
  return 0;
}

/* split a line of FIELDS ':'-separated fields in place; the count found */
static int split_fields(char *line, char **f, int max) {
  int n = 0;
  for (char *p = line; n < max;) {
    f[n++] = p;
    char *c = strchr(p, ':');
    if (!c) break;
    *c = '\0';
    p = c + 1;
  }
  return n;
}

void user_ids_free(struct user_ids *u) {
  free(u->groups);
  u->groups = NULL;
  u->ngroups = 0;
}

static int add_group(struct user_ids *u, gid_t g, size_t *cap) {
  for (int i = 0; i < u->ngroups; i++)
    if (u->groups[i] == g) return 0;
  if (u->ngroups >= NGROUPS_MAX) return 0; /* the kernel takes no more */
  if ((size_t)u->ngroups == *cap) {
    size_t nc = *cap ? *cap * 2 : 16;
    gid_t *ng = realloc(u->groups, nc * sizeof *ng);
    if (!ng) return -1;
    u->groups = ng;
    *cap = nc;
  }
  u->groups[u->ngroups++] = g;
  return 0;
}

int container_lookup_user(const char *spec, struct user_ids *u, char *msg, size_t msglen) {
  memset(u, 0, sizeof *u);
  strcpy(u->home, "/root");
  cleanup_free char *copy = strdup(spec && *spec ? spec : "0");
  if (!copy) return snprintf(msg, msglen, "out of memory"), -1;
  char *gpart = strchr(copy, ':');
  if (gpart) *gpart++ = '\0';
  bool found = false;
  char uname[256] = "";
  cleanup_free char *passwd = NULL, *group = NULL;
  if (read_etc("/etc/passwd", &passwd, msg, msglen) < 0) return -1;
  for (char *save = NULL, *line = passwd ? strtok_r(passwd, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
    char *fields[7];
    if (split_fields(line, fields, 7) < 6) continue;
    bool match = all_digits(copy) ? strtoul(fields[2], NULL, 10) == strtoul(copy, NULL, 10) : !strcmp(fields[0], copy);
    if (!match) continue;
    u->uid = (uid_t)strtoul(fields[2], NULL, 10);
    u->gid = (gid_t)strtoul(fields[3], NULL, 10);
    snprintf(u->home, sizeof u->home, "%s", fields[5]);
    snprintf(uname, sizeof uname, "%s", fields[0]);
    found = true;
    break;
  }
  if (!found) {
    if (!all_digits(copy)) {
      snprintf(msg, msglen, "user `%.200s` not found in the container's /etc/passwd", copy);
      return -1;
    }
    u->uid = (uid_t)strtoul(copy, NULL, 10);
    u->gid = u->uid ? u->uid : 0;
    strcpy(u->home, "/");
  }
  bool need_group = (gpart && !all_digits(gpart)) || *uname;
  if (need_group && read_etc("/etc/group", &group, msg, msglen) < 0) return -1;
  if (gpart && all_digits(gpart)) u->gid = (gid_t)strtoul(gpart, NULL, 10);
  /* one pass over /etc/group: the named group, and the user's memberships */
  size_t cap = 0;
  bool gfound = false;
  if (add_group(u, u->gid, &cap) < 0) return snprintf(msg, msglen, "out of memory"), -1;
  gid_t first = u->gid;
  for (char *save = NULL, *line = group ? strtok_r(group, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
    char *f[4];
    if (split_fields(line, f, 4) < 3) continue;
    gid_t g = (gid_t)strtoul(f[2], NULL, 10);
    if (gpart && !all_digits(gpart) && !gfound && !strcmp(f[0], gpart)) {
      gfound = true;
      u->gid = g;
    }
    if (!*uname || !f[3]) continue;
    for (char *s2 = NULL, *m = strtok_r(f[3], ",", &s2); m; m = strtok_r(NULL, ",", &s2))
      if (!strcmp(m, uname) && add_group(u, g, &cap) < 0) {
        user_ids_free(u);
        return snprintf(msg, msglen, "out of memory"), -1;
      }
  }
  if (gpart && !all_digits(gpart) && !gfound) {
    user_ids_free(u);
    snprintf(msg, msglen, "group `%.200s` not found in the container's /etc/group", gpart);
    return -1;
  }
  if (u->gid != first) u->groups[0] = u->gid; /* the primary group leads */
  return 0;
}

/* this user namespace forbids setgroups (its /proc/self/setgroups says deny) */
/* ---------- the supervisor's tree killing ---------- */
static int children_of(pid_t pid, pid_t *out, int max) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/task/%d/children", (int)pid, (int)pid);
  char *s = NULL;
  int n = 0;
  if (read_file(p, 1 << 20, &s, NULL, NULL) < 0) return 0;
  for (char *save_ = NULL, *t = strtok_r(s, " \n", &save_); t && n < max; t = strtok_r(NULL, " \n", &save_)) out[n++] = (pid_t)atoi(t);
  free(s);
  return n;
}

static void kill_tree(pid_t root, int sig) {
  pid_t stack[4096];
  int top = children_of(root, stack, 4096);
  while (top > 0) {
    pid_t p = stack[--top];
    kill(p, SIGSTOP); /* no new children while we look */
    top += children_of(p, stack + top, 4096 - top);
    kill(p, sig);
    kill(p, SIGCONT);
  }
}

/* does process PID hold a descriptor on one of these pipes? */
static bool holds_pipe(pid_t pid, ino_t a, ino_t b) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(p);
  if (!d) return false;
  bool found = false;
  struct dirent *de;
  while (!found && (de = readdir(d))) {
    char lp[320], t[64];
    snprintf(lp, sizeof lp, "%s/%s", p, de->d_name);
    ssize_t n = readlink(lp, t, sizeof t - 1);
    unsigned long long ino;
    if (n <= 0) continue;
    t[n] = '\0';
    if (sscanf(t, "pipe:[%llu]", &ino) == 1 && ino && (ino == (unsigned long long)a || ino == (unsigned long long)b)) found = true;
  }
  closedir(d);
  return found;
}

/* the processes below us that hold the command's output pipes: counted,
 * and killed when asked */
static int output_holders(ino_t out, ino_t err, bool kill_them) {
  pid_t stack[4096];
  int top = children_of(getpid(), stack, 4096), n = 0;
  while (top > 0) {
    pid_t p = stack[--top];
    top += children_of(p, stack + top, 4096 - top);
    if (holds_pipe(p, out, err)) {
      n++;
      if (kill_them) kill(p, SIGKILL);
    }
  }
  return n;
}

static volatile sig_atomic_t sup_alarm, sup_term;
static void sup_on_alarm(int s) {
  (void)s;
  sup_alarm = 1;
}
static void sup_on_term(int s) { sup_term = s; }

static void send_fd(int sock, int fd) {
  char dummy = 'p';
  struct iovec io = {.iov_base = &dummy, .iov_len = 1};
  char cbuf[CMSG_SPACE(sizeof(int))];
  memset(cbuf, 0, sizeof cbuf);
  struct msghdr mh = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (sendmsg(sock, &mh, 0) < 0) {}
}

int exec_recv_fd(int sock) {
  char dummy;
  struct iovec io = {.iov_base = &dummy, .iov_len = 1};
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct msghdr mh = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  if (recvmsg(sock, &mh, 0) <= 0) return -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof(int));
  return fd;
}

struct exec_ctx {
  const struct exec_opts *o;
  json_t *spec;
  json_t *secret_env; /* "K=V" from the container's environment memfd */
  int report_fd, pty_sock;
  int out_fd, err_fd; /* capture pipes or -1 */
  int in_fd; /* exec -i without a terminal: the relayed stdin, else -1 (/dev/null) */
};

static void close_fds_except(const int *keep, int n);

/* The command: become the user, drop everything, exec. Never returns. */
static void run_command(struct exec_ctx *x, const struct user_ids *u, int pty_slave) {
  const struct exec_opts *o = x->o;
  /* The container's path is exec'd by berth-tiny from a sealed memfd, never
   * by this process: its /proc/self/exe is the host's berth (or, embedded,
   * the caller's program), and a path that resolves to /proc/self/exe (a
   * symlink, a `#!` line) would run that binary inside the container,
   * where another process could reopen it for writing (CVE-2019-5736).
   * Made before the confinement: a profile of the user's own may refuse
   * memfd_create. */
  int tfd = tiny_memfd();
  if (tfd < 0) {
    fprintf(stderr, "berth: exec: cannot start `%s` safely: %s\n", o->argv[0],
            errno == ENOSYS ? "this build of berth has no berth-tiny (x86_64 only), which starts every command in a container"
                            : strerror(errno));
    _exit(126);
  }
  /* every signal as a fresh process has it: what berth ignores (SIGPIPE
   * while it launches) would stay ignored across the exec */
  process_reset_signals();
  setsid();
  if (pty_slave >= 0) {
    ioctl(pty_slave, TIOCSCTTY, 0);
    dup2(pty_slave, 0), dup2(pty_slave, 1), dup2(pty_slave, 2);
    if (pty_slave > 2) close(pty_slave);
  } else {
    if (x->out_fd >= 0) dup2(x->out_fd, 1);
    if (x->err_fd >= 0) dup2(x->err_fd, 2);
    if (x->in_fd >= 0) dup2(x->in_fd, 0);
    else if (x->out_fd >= 0) {
      int nul = open("/dev/null", O_RDONLY);
      if (nul >= 0) dup2(nul, 0);
    }
  }
  json_t *env = json_deep_copy(json_object_get(json_object_get(x->spec, "process"), "env"));
  size_t ei;
  json_t *ev;
  json_array_foreach(x->secret_env, ei, ev) {
    const char *kv = json_string_value(ev);
    const char *eq = kv ? strchr(kv, '=') : NULL;
    if (!eq) continue;
    cleanup_free char *k = strndup(kv, (size_t)(eq - kv));
    env_set(env, k, eq + 1);
  }
  if (!env_get(env, "HOME")) env_set(env, "HOME", u->home);
  if (pty_slave >= 0 && !env_get(env, "TERM")) env_set(env, "TERM", getenv("TERM") && *getenv("TERM") ? getenv("TERM") : "xterm");
  const char *k;
  json_t *v;
  json_object_foreach(o->env, k, v) if (json_is_string(v)) env_set(env, k, json_string_value(v));
  const char *wd = o->workdir ? o->workdir : json_string_value(json_object_get(json_object_get(x->spec, "process"), "cwd"));
  berth_error_t err = NULL;
  /* the workdir must lie inside the container's root */
  if (wd && process_enter_cwd(wd, &err) < 0) {
    fprintf(stderr, "berth: exec: %s\n", err->msg);
    _exit(126);
  }
  if (security_drop_bounding(o->keep_caps, &err) < 0) {
    fprintf(stderr, "berth: exec: %s\n", err->msg);
    _exit(126);
  }
  /* the user's groups, and the additional ones the spec names (a device's
   * group from a CDI spec: process.user.additionalGids); a single-id
   * mapping (rootless without subordinate ids) denies setgroups and maps
   * only root: the groups stay as they are */
  json_t *extra = json_object_get(json_object_get(json_object_get(x->spec, "process"), "user"), "additionalGids");
  size_t ng = (size_t)u->ngroups;
  gid_t *groups = calloc(ng + json_array_size(extra) + 1, sizeof *groups);
  if (!groups) _exit(126);
  memcpy(groups, u->groups, ng * sizeof *groups);
  size_t gi;
  json_t *gv;
  json_array_foreach(extra, gi, gv) {
    gid_t g = (gid_t)json_integer_value(gv);
    bool have = false;
    for (size_t k = 0; k < ng; k++) have |= groups[k] == g;
    if (!have && json_is_integer(gv) && ng < NGROUPS_MAX) groups[ng++] = g;
  }
  if (process_set_ids(u->uid, u->gid, groups, ng, false, false, "exec", NULL, &err) < 0) {
    fprintf(stderr, "berth: %s\n", err->msg);
    _exit(126);
  }
  if (security_drop_caps(o->keep_caps, &err) < 0 || security_no_new_privs(&err) < 0 ||
      (!o->seccomp_inherited && security_seccomp_program(o->seccomp_bpf, o->seccomp_len, &err) < 0)) {
    fprintf(stderr, "berth: exec: %s\n", err->msg);
    _exit(126);
  }
  berth_trace("exec: confined, exec");
  size_t n = json_array_size(env);
  char **envp = calloc(n + 1, sizeof *envp);
  for (size_t i = 0; i < n; i++) envp[i] = (char *)json_string_value(json_array_get(env, i));
  environ = envp;
  /* nothing of berth's reaches the command (CVE-2024-21626 class); the
   * memfd is close-on-exec */
  close_fds_except(&tfd, 1);
  size_t argc = 0;
  while (o->argv[argc]) argc++;
  char **targv = calloc(argc + 3, sizeof *targv);
  if (!targv) _exit(126);
  targv[0] = "berth-tiny";
  targv[1] = "exec";
  memcpy(targv + 2, o->argv, argc * sizeof *targv);
  syscall(SYS_execveat, tfd, "", targv, envp, AT_EMPTY_PATH);
  /* a profile of the user's own may refuse execveat: the same memfd by path */
  char fdpath[64];
  snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", tfd);
  if (errno == EPERM || errno == ENOSYS) execve(fdpath, targv, envp);
  fprintf(stderr, "berth: exec: `%s`: start berth-tiny: %s\n", o->argv[0], strerror(errno));
  _exit(126);
}

/* A terminal inside the container (its own devpts): the master goes to
 * sock, the slave stays for the command. */
static int open_pty(int sock, char *msg, size_t ml) {
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
    snprintf(msg, ml, "allocate a terminal in the container: %s", strerror(errno));
    if (master >= 0) close(master);
    return -1;
  }
  char name[128];
  int slave = ptsname_r(master, name, sizeof name) == 0 ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
  if (slave < 0) {
    snprintf(msg, ml, "open the container's terminal: %s", strerror(errno));
    close(master);
    return -1;
  }
  send_fd(sock, master);
  close(master);
  return slave;
}

struct cmd_args {
  struct exec_ctx *x;
  const struct user_ids *u;
  int slave;
};

static int cmd_child(void *arg) {
  struct cmd_args *a = arg;
  prctl(PR_SET_PDEATHSIG, 0);
  run_command(a->x, a->u, a->slave);
  return 126;
}

static void supervisor(struct exec_ctx *x) {
  struct exec_report rep = {0};
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  /* the timeout covers every step, the user lookup in the container's
   * files included */
  struct sigaction sa = {.sa_handler = sup_on_alarm};
  sigaction(SIGALRM, &sa, NULL);
  if (x->o->timeout > 0) alarm((unsigned)x->o->timeout);
  struct user_ids u;
  const char *user = x->o->user ? x->o->user : json_string_value(json_object_get(json_object_get(x->spec, "annotations"), "berth.user"));
  if (container_lookup_user(user, &u, rep.msg, sizeof rep.msg) < 0) {
    rep.exit_code = 126;
    if (write(x->report_fd, &rep, sizeof rep) < 0) {}
    _exit(126);
  }
  int slave = -1;
  if (x->o->tty && (slave = open_pty(x->pty_sock, rep.msg, sizeof rep.msg)) < 0) {
    rep.exit_code = 126;
    if (write(x->report_fd, &rep, sizeof rep) < 0) {}
    _exit(126);
  }
  if (sup_alarm) { /* the lookup took the whole time */
    rep.exit_code = 124;
    rep.timed_out = 1;
    if (write(x->report_fd, &rep, sizeof rep) < 0) {}
    _exit(0);
  }
  struct sigaction st = {.sa_handler = sup_on_term};
  sigaction(SIGTERM, &st, NULL);
  sigaction(SIGINT, &st, NULL);
  sigaction(SIGHUP, &st, NULL);
  /* like posix_spawn, as run's command is started: on our memory and a
   * stack of its own, while we sleep until it has exec'd (no copy of the
   * page tables; it resets every signal before it unblocks them) */
  struct cmd_args ca = {.x = x, .u = &u, .slave = slave};
  pid_t cmd = clone_vm(cmd_child, &ca, CLONE_VFORK, 512 << 10);
  if (cmd < 0) _exit(126);
  if (slave >= 0) close(slave);
  struct stat po = {0}, pe = {0};
  if (x->out_fd >= 0) fstat(x->out_fd, &po), close(x->out_fd);
  if (x->err_fd >= 0) fstat(x->err_fd, &pe), close(x->err_fd);
  if (x->in_fd >= 0) close(x->in_fd);
  int status = 0;
  bool killed = false;
  for (;;) {
    /* as a subreaper we also inherit the command's orphans: reap them too */
    int st2;
    pid_t r = waitpid(-1, &st2, 0);
    if (r == cmd) {
      status = st2;
      break;
    }
    if (r > 0) continue;
    if (r < 0 && errno != EINTR) break;
    if ((sup_alarm || sup_term) && !killed) {
      rep.timed_out = sup_alarm ? 1 : 0;
      kill_tree(getpid(), SIGKILL);
      killed = true;
    }
  }
  if (killed || sup_alarm) { /* leave nothing the command started */
    rep.timed_out = sup_alarm ? 1 : rep.timed_out;
    for (int i = 0; i < 50; i++) {
      kill_tree(getpid(), SIGKILL);
      while (waitpid(-1, NULL, WNOHANG) > 0) {}
      pid_t c[1];
      if (children_of(getpid(), c, 1) == 0) break;
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  /* The command is done; what it left in the background and still holds
   * our output (`(sleep 300 &)`) is killed: the reply would otherwise wait
   * for it, or it would write into a pipe nobody reads. What was started
   * to stay (`nohup server >log 2>&1 &`) holds no part of it and lives on. */
  if (!killed && (po.st_ino || pe.st_ino)) {
    /* a child forked just before the command ended may not have made its
     * redirection yet (`srv >log 2>&1 &` as the last line): 100 ms for
     * that before what still holds the pipes is ended */
    for (int i = 0; i < 10 && output_holders(po.st_ino, pe.st_ino, false) > 0; i++) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
      while (waitpid(-1, NULL, WNOHANG) > 0) {}
    }
    for (int pass = 0; pass < 2; pass++) {
      output_holders(po.st_ino, pe.st_ino, true);
      while (waitpid(-1, NULL, WNOHANG) > 0) {}
    }
  }
  rep.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (rep.timed_out) rep.exit_code = 124;
  if (write(x->report_fd, &rep, sizeof rep) < 0) {}
  _exit(0);
}

/* close every descriptor above 2 but those in keep (-1 entries ignored) */
static void close_fds_except(const int *keep, int n) {
  int lo = 3;
  for (;;) {
    int next = -1; /* the smallest kept fd >= lo */
    for (int i = 0; i < n; i++)
      if (keep[i] >= lo && (next < 0 || keep[i] < next)) next = keep[i];
    if (next < 0) {
      syscall(SYS_close_range, (unsigned)lo, ~0U, 0U);
      return;
    }
    if (next > lo) syscall(SYS_close_range, (unsigned)lo, (unsigned)next - 1, 0U);
    lo = next + 1;
  }
}

struct spawn_args {
  struct exec_ctx *x;
  const struct user_ids *u;
  int go_fd, slave;
};

static int spawn_child(void *arg) {
  struct spawn_args *a = arg;
  /* init's pipes to the launcher must close with init, not with us */
  int keep[] = {a->go_fd, a->slave, a->x->out_fd, a->x->err_fd, a->x->in_fd};
  close_fds_except(keep, 5);
  berth_trace("command: forked");
  char go = 0;
  while (read(a->go_fd, &go, 1) < 0 && errno == EINTR) {}
  if (go != 1) _exit(125); /* the launcher gave up */
  berth_trace("command: go");
  run_command(a->x, a->u, a->slave);
  return 125;
}

pid_t container_spawn_command(const struct exec_opts *o, json_t *spec, json_t *env_kv, int go_fd, int pty_sock, int out_fd, int err_fd,
                              void (*ready)(void *), void *ready_arg, berth_error_t *err) {
  struct exec_ctx x = {.o = o,
                       .spec = spec,
                       .secret_env = env_kv,
                       .report_fd = -1,
                       .pty_sock = pty_sock,
                       .out_fd = o->tty ? -1 : out_fd,
                       .err_fd = o->tty ? -1 : err_fd,
                       .in_fd = -1};
  struct user_ids u;
  char msg[512];
  const char *user = o->user ? o->user : json_string_value(json_object_get(json_object_get(spec, "annotations"), "berth.user"));
  if (container_lookup_user(user, &u, msg, sizeof msg) < 0) return berth_error(err, -EINVAL, "%s", msg);
  int slave = -1;
  if (o->tty && (slave = open_pty(pty_sock, msg, sizeof msg)) < 0) {
    user_ids_free(&u);
    return berth_error(err, -EIO, "%s", msg);
  }
  /* like posix_spawn: the child borrows our memory on its own stack and
   * we sleep until it has exec'd, which spares a copy of berth's page
   * tables and every copy-on-write fault of a fork, and the
   * exec a teardown of them. Nothing else of ours runs meanwhile. */
  if (ready) ready(ready_arg); /* the launcher sends the go byte once it hears from us */
  struct spawn_args sa = {.x = &x, .u = &u, .go_fd = go_fd, .slave = slave};
  /* the child resets every signal to its default before it unblocks them (run_command) */
  pid_t c = clone_vm(spawn_child, &sa, CLONE_VFORK, 512 << 10);
  int e = errno;
  if (slave >= 0) close(slave);
  user_ids_free(&u); /* the child has exec'd (or exited): CLONE_VFORK */
  if (c < 0) return berth_error(err, e, "start the command");
  return c;
}

/* The caller's variables of this container: init's fd 3, a sealed memfd. */
static json_t *read_env_memfd(pid_t pid) {
  char p[64], target[128];
  snprintf(p, sizeof p, "/proc/%d/fd/3", (int)pid);
  ssize_t n = readlink(p, target, sizeof target - 1);
  if (n < 0) return NULL;
  target[n] = '\0';
  if (strncmp(target, "/memfd:berth-env", 16)) return NULL;
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  int seals = fcntl(fd, F_GET_SEALS);
  char *txt = NULL;
  size_t len = 0;
  json_t *j = NULL;
  /* only trust it sealed, as berth left it */
  if (seals >= 0 && (seals & F_SEAL_WRITE) && read_file_at(fd, "", 16 << 20, &txt, &len, NULL) == 0) {
    j = json_loadb(txt, len, 0, NULL);
    explicit_bzero(txt, len);
    free(txt);
  }
  close(fd);
  if (j && !json_is_array(j)) {
    json_decref(j);
    j = NULL;
  }
  return j;
}

static int open_ns(pid_t pid, const char *ns) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/ns/%s", (int)pid, ns);
  return open(p, O_RDONLY | O_CLOEXEC);
}

/* the namespaces exec joins: user, ipc, uts, net, cgroup, pid, mnt */
#define EXEC_NS 7
/* cleanup of the namespace fds still open (-1: none, -2: shared with us) */
static void ns_fds_close(int (*fds)[EXEC_NS]) {
  for (int i = 0; i < EXEC_NS; i++)
    if ((*fds)[i] >= 0) close((*fds)[i]), (*fds)[i] = -1;
}

static struct termios saved_tio;
static bool tio_saved;
static void restore_tty(void) {
  if (tio_saved) tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
}

static volatile sig_atomic_t got_winch, got_sig;
static void on_winch(int s) {
  (void)s;
  got_winch = 1;
}
static void on_fwd(int s) { got_sig = s; }

static void copy_winsize(int master) {
  struct winsize ws;
  if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) ioctl(master, TIOCSWINSZ, &ws);
}

/* relay between the user's terminal and the container's pty */
void exec_relay_pty(int master, pid_t joiner) {
  if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
    tio_saved = true;
    atexit(restore_tty);
    struct termios raw = saved_tio;
    cfmakeraw(&raw);
    tcsetattr(STDIN_FILENO, TCSANOW, &raw);
  }
  copy_winsize(master);
  struct sigaction sa = {.sa_handler = on_winch};
  sigaction(SIGWINCH, &sa, NULL);
  char buf[16384];
  bool in_open = true;
  for (;;) {
    if (got_winch) {
      got_winch = 0;
      copy_winsize(master);
    }
    struct pollfd p[2] = {{.fd = master, .events = POLLIN}, {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN}};
    int r = poll(p, 2, 200);
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) {
      siginfo_t si = {0};
      if (waitid(P_PID, (id_t)joiner, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == joiner) break;
      continue;
    }
    if (p[0].revents & POLLIN) {
      ssize_t n = read(master, buf, sizeof buf);
      if (n <= 0) break;
      for (ssize_t off = 0; off < n;) {
        ssize_t w = write(STDOUT_FILENO, buf + off, (size_t)(n - off));
        if (w <= 0) break;
        off += w;
      }
    } else if (p[0].revents & (POLLHUP | POLLERR)) break;
    if (p[1].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) in_open = false;
      else if (write(master, buf, (size_t)n) < 0) {}
    }
  }
  restore_tty();
  tio_saved = false;
}

static void drain_into(int fd, struct buf *b, size_t max, bool *trunc, bool *open_) {
  char tmp[16384];
  ssize_t n = read(fd, tmp, sizeof tmp);
  if (n <= 0) {
    if (n == 0 || errno != EINTR) *open_ = false;
    return;
  }
  size_t room = b->len < max ? max - b->len : 0;
  if ((size_t)n > room) *trunc = true;
  buf_append(b, tmp, (size_t)n < room ? (size_t)n : room);
}

void exec_collect(int out_r, int err_r, struct exec_result *res, size_t max) {
  bool oo = true, eo = true;
  while (oo || eo) {
    struct pollfd p[2] = {{.fd = oo ? out_r : -1, .events = POLLIN}, {.fd = eo ? err_r : -1, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[0].revents) drain_into(out_r, &res->out, max, &res->out_truncated, &oo);
    if (p[1].revents) drain_into(err_r, &res->err, max, &res->err_truncated, &eo);
  }
  close(out_r);
  close(err_r);
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return; /* the caller's end is gone: the output is dropped */
    p += w, n -= (size_t)w;
  }
}

/* one read of a command's output pipe into res (capture) or our own fd;
 * false at its end (or, with drain, once it would block) */
static bool pump_out(int fd, int to, struct exec_result *res, bool is_err, size_t max) {
  char tmp[16384];
  ssize_t n = read(fd, tmp, sizeof tmp);
  if (n < 0 && errno == EINTR) return true;
  if (n <= 0) return false;
  if (!res) write_all(to, tmp, (size_t)n);
  else {
    struct buf *b = is_err ? &res->err : &res->out;
    size_t room = b->len < max ? max - b->len : 0;
    if ((size_t)n > room) *(is_err ? &res->err_truncated : &res->out_truncated) = true;
    buf_append(b, tmp, (size_t)n < room ? (size_t)n : room);
  }
  return true;
}

/* Relay a command's stdio (no terminal) until its supervisor reports: the
 * output to res (capture) or to our stdout and stderr, our stdin to in_w
 * (-1: none). What background children still hold open after that is
 * not waited for: what is in the pipes is taken, then they are closed.
 * Returns the bytes of the report read (sizeof *rep when complete). */
static ssize_t exec_pump(int out_r, int err_r, int in_w, int rp, struct exec_report *rep, struct exec_result *res, size_t max,
                         pid_t joiner) {
  fcntl(out_r, F_SETFL, O_NONBLOCK);
  fcntl(err_r, F_SETFL, O_NONBLOCK);
  if (in_w >= 0) fcntl(in_w, F_SETFL, O_NONBLOCK);
  struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
  sigaction(SIGPIPE, &ign, &old_pipe);
  bool oo = true, eo = true, in_open = in_w >= 0;
  char ibuf[16384];
  size_t ilen = 0, ioff = 0;
  ssize_t got = 0;
  for (;;) {
    struct pollfd p[5] = {{.fd = oo ? out_r : -1, .events = POLLIN},
                          {.fd = eo ? err_r : -1, .events = POLLIN},
                          {.fd = rp, .events = POLLIN},
                          {.fd = in_open && !ilen ? STDIN_FILENO : -1, .events = POLLIN},
                          {.fd = in_open && ilen ? in_w : -1, .events = POLLOUT}};
    if (poll(p, 5, -1) < 0) {
      if (errno != EINTR) break;
      if (got_sig) kill(joiner, SIGTERM), got_sig = 0;
      continue;
    }
    if (p[0].revents && !pump_out(out_r, STDOUT_FILENO, res, false, max)) oo = false;
    if (p[1].revents && !pump_out(err_r, STDERR_FILENO, res, true, max)) eo = false;
    if (p[3].revents) {
      ssize_t r = read(STDIN_FILENO, ibuf, sizeof ibuf);
      if (r > 0) ilen = (size_t)r, ioff = 0;
      else if (r == 0 || errno != EINTR) in_open = false;
    }
    if (p[4].revents) {
      ssize_t w = write(in_w, ibuf + ioff, ilen - ioff);
      if (w > 0 && (ioff += (size_t)w) == ilen) ilen = 0;
      else if (w < 0 && errno != EAGAIN && errno != EINTR) in_open = false;
    }
    if (in_w >= 0 && !in_open) { /* the end of our stdin is the command's */
      close(in_w);
      in_w = -1;
    }
    if (p[2].revents) {
      ssize_t r = read(rp, (char *)rep + got, sizeof *rep - (size_t)got);
      if (r < 0 && errno == EINTR) continue;
      if (r > 0) got += r;
      if (r <= 0 || got == (ssize_t)sizeof *rep) break; /* reported, or the supervisor is gone */
    }
  }
  /* the command has ended: what it wrote is in the pipes */
  while (oo && pump_out(out_r, STDOUT_FILENO, res, false, max)) {}
  while (eo && pump_out(err_r, STDERR_FILENO, res, true, max)) {}
  close(out_r);
  close(err_r);
  if (in_w >= 0) close(in_w);
  sigaction(SIGPIPE, &old_pipe, NULL);
  return got;
}

int container_exec(const struct exec_opts *o, struct exec_result *res, berth_error_t *err) {
  memset(res, 0, sizeof *res);
  if (!o->argv || !o->argv[0]) return berth_error(err, -EINVAL, "exec: a command is required");
  if (!container_name_valid(o->name)) return berth_error(err, -ENOENT, "Container not found: %.80s", o->name);
  struct berth_config *cfg = config_get(err);
  if (!cfg) return -1;
  cleanup_free char *cp = cpath(o->name, "config.json");
  cleanup_json json_t *st = state_read(o->name);
  if (!st) return berth_error(err, -ENOENT, "Container not found: %s", o->name);
  cleanup_json json_t *spec = json_load_file(cp, 0, NULL);
  struct state_proc init = state_proc(st, "init");
  pid_t pid = init.pid;
  /* the recorded init must still be that very process (no pid reuse) */
  bool alive = init.start && proc_starttime(pid) == init.start;
  cleanup_json json_t *secret_env = alive ? read_env_memfd(pid) : NULL;
  if (!spec || !alive)
    return berth_error(err, -ESRCH, "container %s is not running (%s)", o->name,
                       advice("start it again with `berth start NAME`", "start it again with the start operation"));
  /* the container's own seccomp profile, if it has one: read here, on the host */
  struct exec_opts eo = *o;
  /* under an egress policy not even setup steps may set SO_MARK (see
   * container_setup_caps) */
  if (eo.keep_caps) eo.keep_caps &= container_setup_caps(st) | ~security_setup_caps();
  cleanup_free char *bpf = NULL;
  if (!eo.seccomp_bpf) {
    if (security_seccomp_read(spec, &bpf, &eo.seccomp_len, err) < 0) return -1;
    eo.seccomp_bpf = bpf;
  }
  o = &eo;
  bool rootless = cfg->rootless;
  __attribute__((cleanup(ns_fds_close))) int fds[EXEC_NS] = {-1, -1, -1, -1, -1, -1, -1};
  const char *names[EXEC_NS] = {"user", "ipc", "uts", "net", "cgroup", "pid", "mnt"};
  for (int i = 0; i < EXEC_NS; i++) {
    fds[i] = (i == 0 && !rootless) ? -1 : open_ns(pid, names[i]);
    /* a namespace the container shares with us (network "host") is not
     * joined: setns into the host's own would need privileges we lack */
    char self[64];
    snprintf(self, sizeof self, "/proc/self/ns/%s", names[i]);
    struct stat a, b;
    if (fds[i] >= 0 && fstat(fds[i], &a) == 0 && stat(self, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
      close(fds[i]);
      fds[i] = -2; /* shared: skip */
    }
  }
  for (int i = 0; i < EXEC_NS; i++)
    if (fds[i] == -1 && !(i == 0 && !rootless)) return berth_error(err, errno, "open namespace `%s` of container %s", names[i], o->name);
  /* Without a terminal the command gets pipes, never the caller's own
   * descriptors: a terminal would stay readable (and open to TIOCSTI) for
   * whatever the command leaves in the background, and a pipe of the
   * caller's would keep it waiting for an end of file that such a child
   * holds back. The relay ends when the command does. */
  cleanup_close_pair int rp[2] = {-1, -1};
  cleanup_close_pair int sock[2] = {-1, -1};
  cleanup_close_pair int op[2] = {-1, -1};
  cleanup_close_pair int ep[2] = {-1, -1};
  cleanup_close_pair int ip[2] = {-1, -1};
  if (pipe2(rp, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  if (o->tty && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock) < 0) return berth_error(err, errno, "socketpair");
  if (!o->tty && (pipe2(op, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0)) return berth_error(err, errno, "pipe");
  if (!o->tty && o->interactive && !o->capture && pipe2(ip, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  fflush(stdout);
  fflush(stderr);
  /* born in the container's cgroup (clone3 CLONE_INTO_CGROUP on v2) */
  berth_trace("exec: fork joiner");
  pid_t joiner = cgroup_fork_into(json_object_get(st, "cgroup"));
  if (joiner < 0) return berth_error(err, errno, "fork");
  if (joiner == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* we (and the supervisor we fork) run berth's binary inside the
     * container's pid namespace: not dumpable, so no process in there can
     * open our /proc exe, maps, environ, fds or memory, whatever its ids */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    proc_set_title("berth-exec");
    /* nothing the caller had open goes in with us: a descriptor of a host
     * directory would be a way out, even as the command's workdir
     * (/proc/self/fd/N, CVE-2024-21626) */
    int keep[] = {rp[1], sock[1], op[1], ep[1], ip[0], fds[0], fds[1], fds[2], fds[3], fds[4], fds[5], fds[6]};
    close_fds_except(keep, (int)(sizeof keep / sizeof *keep));
    for (int i = 0; i < EXEC_NS; i++) {
      if (fds[i] < 0) continue; /* not ours to join (-1) or shared (-2) */
      if (setns(fds[i], 0) < 0) {
        struct exec_report rep = {.exit_code = 125};
        snprintf(rep.msg, sizeof rep.msg, "join the container's %s namespace: %s", names[i], strerror(errno));
        if (write(rp[1], &rep, sizeof rep) < 0) {}
        _exit(125);
      }
      close(fds[i]);
    }
    berth_trace("exec: joined");
    if (rootless && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) _exit(125);
    struct exec_ctx x = {.o = o,
                         .spec = spec,
                         .secret_env = secret_env,
                         .report_fd = rp[1],
                         .pty_sock = sock[1],
                         .out_fd = op[1],
                         .err_fd = ep[1],
                         .in_fd = ip[0]};
    pid_t sup = fork();
    if (sup == 0) supervisor(&x);
    if (op[1] >= 0) close(op[1]), close(ep[1]);
    if (ip[0] >= 0) close(ip[0]);
    close(rp[1]);
    /* pass stop requests on to the supervisor, which kills the tree */
    struct sigaction sa = {.sa_handler = on_fwd};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    int s;
    while (waitpid(sup, &s, 0) < 0 && errno == EINTR)
      if (got_sig) kill(sup, SIGTERM), got_sig = 0;
    _exit(0);
  }
  ns_fds_close(&fds);
  berth_closep(&rp[1]);
  berth_closep(&sock[1]);
  berth_closep(&op[1]);
  berth_closep(&ep[1]);
  berth_closep(&ip[0]);
  struct exec_report rep = {.exit_code = -1};
  ssize_t n = -1;
  if (o->tty) {
    int master = exec_recv_fd(sock[0]);
    berth_closep(&sock[0]);
    if (master >= 0) {
      exec_relay_pty(master, joiner);
      close(master);
    }
  } else {
    struct sigaction sa = {.sa_handler = on_fwd};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    n = exec_pump(op[0], ep[0], ip[1], rp[0], &rep, o->capture ? res : NULL, o->capture_max, joiner);
    op[0] = ep[0] = ip[1] = -1; /* exec_pump closed them */
  }
  if (n < 0)
    while ((n = read(rp[0], &rep, sizeof rep)) < 0 && errno == EINTR)
      if (got_sig) kill(joiner, SIGTERM), got_sig = 0;
  berth_closep(&rp[0]);
  berth_trace("exec: reported %d", rep.exit_code);
  int s;
  while (waitpid(joiner, &s, 0) < 0 && errno == EINTR) {}
  if (n != (ssize_t)sizeof rep) return berth_error(err, -EIO, "exec in %s: the command's supervisor died", o->name);
  if (rep.msg[0] && rep.exit_code >= 125) return berth_error(err, -EIO, "exec in %s: %s", o->name, rep.msg);
  res->exit_code = rep.exit_code;
  res->timed_out = rep.timed_out;
  return 0;
}
