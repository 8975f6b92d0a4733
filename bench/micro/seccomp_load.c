/* How long loading a seccomp filter takes (bench/micro.sh): the kernel
 * runs a new filter once per syscall number to build its allow cache, so
 * the filter's shape matters. usage: seccomp_load FILTER.bpf [N] */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "micro.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: seccomp_load FILTER.bpf [N]\n");
    return 2;
  }
  static struct sock_filter buf[8192];
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  size_t len = fread(buf, sizeof *buf, 8192, f);
  fclose(f);
  int n = argc > 2 ? atoi(argv[2]) : 40;
  if (n < 1 || n > 1000) n = 40;
  double *s = calloc((size_t)n, sizeof *s);
  struct sock_fprog prog = {.len = (unsigned short)len, .filter = buf};
  for (int i = 0; i < n; i++) {
    int p[2];
    if (pipe(p) < 0) return 1;
    pid_t c = fork();
    if (c == 0) { /* a fresh process each time: filters stack */
      prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
      double t0 = now_ms(), d = -1;
      if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0) d = now_ms() - t0;
      if (write(p[1], &d, sizeof d) < 0) {}
      _exit(0);
    }
    if (read(p[0], &s[i], sizeof s[i]) != sizeof s[i] || s[i] < 0) {
      fprintf(stderr, "seccomp_load: loading %s failed\n", argv[1]);
      return 1;
    }
    waitpid(c, NULL, 0);
    close(p[0]), close(p[1]);
  }
  sort_ms(s, n);
  printf("%-28s %4zu instructions: load median %.3f ms, min %.3f (%d loads)\n", argv[1], len, s[n / 2], s[0], n);
  return 0;
}
