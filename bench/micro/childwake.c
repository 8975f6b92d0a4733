/* How long a just-forked child waits for a CPU while its parent keeps
 * working: the parent forks, tells the child to go (a pipe byte) and then
 * busies itself for BUSY ms, as berth's launcher makes the cgroup while
 * init mounts. "aside" first moves the child off the parent's CPU, as
 * launch() does (cpu_aside in src/util/util.c).
 *
 *   childwake same|aside RUNS BUSY_MS */
#define _GNU_SOURCE
#include "micro.h"
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 4 || (strcmp(argv[1], "same") && strcmp(argv[1], "aside"))) {
    fprintf(stderr, "usage: childwake same|aside RUNS BUSY_MS\n");
    return 1;
  }
  int aside = !strcmp(argv[1], "aside"), runs = atoi(argv[2]);
  double busy = atof(argv[3]);
  if (runs < 1 || runs > 1000 || busy <= 0) return 1;
  double *woke = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  double *lat = calloc((size_t)runs, sizeof *lat);
  if (woke == MAP_FAILED || !lat) return 1;
  for (int i = 0; i < runs; i++) {
    int p[2];
    if (pipe(p) < 0) return 1;
    usleep(20000);
    pid_t c = fork();
    if (c < 0) return 1;
    if (c == 0) {
      char b;
      if (read(p[0], &b, 1) != 1) _exit(1);
      woke[0] = now_ms();
      _exit(0);
    }
    cpu_set_t old, away;
    int moved = 0;
    if (aside && sched_getaffinity(c, sizeof old, &old) == 0) {
      away = old;
      CPU_CLR(sched_getcpu(), &away);
      moved = CPU_COUNT(&away) > 0 && sched_setaffinity(c, sizeof away, &away) == 0;
    }
    double t0 = now_ms();
    if (write(p[1], "x", 1) != 1) return 1;
    while (now_ms() - t0 < busy) {}
    if (moved) sched_setaffinity(c, sizeof old, &old);
    waitpid(c, NULL, 0);
    lat[i] = woke[0] - t0;
    close(p[0]), close(p[1]);
  }
  sort_ms(lat, runs);
  printf("child %s: runs %.3f ms after its go, median (min %.3f, max %.3f; parent busy %.1f ms, %d runs)\n",
         aside ? "moved off the parent's CPU" : "left where it was queued", lat[runs / 2], lat[0], lat[runs - 1], busy, runs);
  return 0;
}
