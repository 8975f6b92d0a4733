/* How long moving a fresh child into a cgroup takes, two ways (bench/micro.sh).
 *   v1: the parent writes the child's pid to cgroup.procs, or the child
 *       writes "0" to tasks (itself, one thread: no global threadgroup lock)
 *   v2: the parent writes the child's pid to cgroup.procs, or the child is
 *       born there (clone3 CLONE_INTO_CGROUP)
 * A pause before each move (default 20 ms) lets the lock's RCU state go
 * idle, as between two commands a person types.
 * usage: cgmove PARENT_CGROUP_DIR v1|v2 procs|self [N] [PAUSE_MS] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "micro.h"

static int put(const char *dir, const char *file, const char *v) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", dir, file);
  int fd = open(p, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r = write(fd, v, strlen(v)) == (ssize_t)strlen(v) ? 0 : -1;
  close(fd);
  return r;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: cgmove PARENT_CGROUP_DIR v1|v2 procs|self [N] [PAUSE_MS]\n");
    return 2;
  }
  const char *base = argv[1];
  int v2 = !strcmp(argv[2], "v2"), self = !strcmp(argv[3], "self");
  int n = argc > 4 ? atoi(argv[4]) : 30, pause_ms = argc > 5 ? atoi(argv[5]) : 20;
  if (n < 1 || n > 1000) n = 30;
  double *s = calloc((size_t)n, sizeof *s);
  for (int i = 0; i < n; i++) {
    char d[4096];
    snprintf(d, sizeof d, "%s/cgmove-%d-%d", base, (int)getpid(), i);
    if (mkdir(d, 0755) < 0) {
      perror(d);
      return 1;
    }
    int go[2], back[2];
    if (pipe(go) < 0 || pipe(back) < 0) return 1;
    struct timespec ts = {0, pause_ms * 1000000L};
    nanosleep(&ts, NULL);
    double dt = -1, t0 = now_ms();
    pid_t c;
    if (v2 && self) { /* born inside */
      int cfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      struct clone_args a = {.flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)cfd};
      c = (pid_t)syscall(SYS_clone3, &a, sizeof a);
      if (c == 0) _exit(0);
      dt = now_ms() - t0;
      close(cfd);
    } else {
      c = fork();
      if (c == 0) {
        char b;
        if (read(go[0], &b, 1) != 1) _exit(1);
        double x = -1, u0 = now_ms();
        if (self && put(d, "tasks", "0") == 0) x = now_ms() - u0;
        if (write(back[1], &x, sizeof x) < 0) {}
        _exit(0);
      }
      if (self) {
        if (write(go[1], "g", 1) < 0 || read(back[0], &dt, sizeof dt) != sizeof dt) dt = -1;
      } else {
        char pid[32];
        snprintf(pid, sizeof pid, "%d", (int)c);
        t0 = now_ms();
        if (put(d, "cgroup.procs", pid) == 0) dt = now_ms() - t0;
        if (write(go[1], "g", 1) < 0 || read(back[0], &t0, sizeof t0) < 0) {}
      }
    }
    waitpid(c, NULL, 0);
    rmdir(d);
    close(go[0]), close(go[1]), close(back[0]), close(back[1]);
    if (dt < 0) {
      fprintf(stderr, "cgmove: the move failed in %s\n", d);
      return 1;
    }
    s[i] = dt;
  }
  sort_ms(s, n);
  printf("%s %s: median %.3f ms, min %.3f, max %.3f (%d moves, %d ms apart)\n", argv[2],
         self ? (v2 ? "born inside (clone3 CLONE_INTO_CGROUP)" : "child moves itself (tasks \"0\")") : "parent moves child (cgroup.procs)",
         s[n / 2], s[0], s[n - 1], n, pause_ms);
  return 0;
}
