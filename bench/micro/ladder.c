/* ladder: what the parts of a container start cost with no runtime around
 * them. Each level is one start of /bin/true in a fresh container, done
 * with bare system calls by this small program, and adds one thing `berth
 * run --rm` must do to the level below:
 *
 *   0 ns        clone into new mount, pid, net, uts and ipc namespaces (and
 *               a user namespace mapping only the caller, when not root),
 *               chroot into ROOTFS, exec /bin/true
 *   1 overlay   ... into a fresh overlay of ROOTFS (volatile; userxattr when
 *               not root) instead, removed after
 *   2 mounts    + /proc, /dev (tmpfs, six nodes, devpts, shm, mqueue, links),
 *               /sys read-only, /etc/{hostname,hosts,resolv.conf}, the 11
 *               masked and 5 read-only /proc and /sys paths (plain mount(2)
 *               on paths: none of berth's resolution inside the root)
 *   3 pivot     pivot_root and detach the old root instead of chroot
 *   4 init      PID 1 forks the command and reaps it instead of exec'ing it
 *   5 confine   the command: no_new_privs, the bounding set dropped, no
 *               capabilities, and BPF (berth's built-in seccomp filter)
 *   6 cgroup    root: a cgroup made (v1: memory, pids, cpu; v2: one group),
 *               its limits written, PID 1 moves itself in; removed after
 *
 * Level 6 is the whole isolation `berth run --rm` sets up for /bin/true,
 * minus berth itself (its CLI, state files, locks, checks, and the safe
 * path resolution). Against the floor command (bench/start.sh's unshare +
 * chroot) it says how much of the floor ratio any runtime pays.
 *
 *   ladder run LEVEL ROOTFS SCRATCH BPF      one start (exit 0 on success)
 *   ladder bench ROOTFS SCRATCH BPF RUNS ROUNDS -- FLOOR-COMMAND... [-- COMMAND...]
 *       the levels, the floor command and the optional other command (say
 *       `berth run --rm ...`) in turns, RUNS starts of each per round,
 *       ROUNDS rounds (a slow minute lands on all of them); prints each
 *       one's median in ms and its ratio to the floor's
 *
 * SCRATCH: a directory on the file system to measure (each start makes
 * and removes its overlay directories there). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "micro.h"

#define LEVELS 7
static const char *NAMES[LEVELS] = {"ns", "+overlay", "+mounts", "+pivot_root", "+init", "+confine", "+cgroup"};

static void cgroups_remove(void);

static void die(const char *what) {
  fprintf(stderr, "ladder: %s: %s\n", what, strerror(errno));
  cgroups_remove(); /* a failed start leaves no cgroup behind */
  _exit(1);
}

static void put(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) die(path);
  close(fd);
}

static void mnt(const char *src, const char *dst, const char *type, unsigned long fl, const char *data) {
  if (mount(src, dst, type, fl, data) < 0) die(dst);
}

/* remove a tree below dirfd (what berth's trash does for a container);
 * overlay makes its work dirs mode 0, so each directory is opened up first */
static void rm_tree(int dirfd, const char *name) {
  fchmodat(dirfd, name, 0700, 0);
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    /* d_type may be DT_UNKNOWN: a directory then fails unlink with EISDIR */
    if (e->d_type == DT_DIR || (unlinkat(fd, e->d_name, 0) < 0 && errno == EISDIR)) rm_tree(fd, e->d_name);
  }
  if (d) closedir(d);
  unlinkat(dirfd, name, AT_REMOVEDIR);
}

struct start {
  int level;
  const char *rootfs, *dir, *bpf;
  char cg[3][512];
  int ncg, sync[2];
  struct sock_fprog prog;
};

static void setup_mounts(struct start *s, const char *root) {
  char p[4096];
#define AT(rel) (snprintf(p, sizeof p, "%s/%s", root, rel), p)
  mnt("proc", AT("proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mnt("tmpfs", AT("dev"), "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  const char *devs[] = {"null", "zero", "full", "random", "urandom", "tty"};
  const dev_t nums[] = {makedev(1, 3), makedev(1, 5), makedev(1, 7), makedev(1, 8), makedev(1, 9), makedev(5, 0)};
  for (int i = 0; i < 6; i++) {
    char rel[64], host[64];
    snprintf(rel, sizeof rel, "dev/%s", devs[i]);
    if (mknod(AT(rel), S_IFCHR | 0666, nums[i]) < 0) { /* rootless: bind the host's */
      close(open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0666));
      snprintf(host, sizeof host, "/dev/%s", devs[i]);
      mnt(host, p, NULL, MS_BIND, NULL);
    }
  }
  mkdir(AT("dev/pts"), 0755);
  mkdir(AT("dev/shm"), 01777);
  mkdir(AT("dev/mqueue"), 0755);
  mnt("devpts", AT("dev/pts"), "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
  mnt("shm", AT("dev/shm"), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
  mount("mqueue", AT("dev/mqueue"), "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  const char *links[][2] = {{"ptmx", "pts/ptmx"},
                            {"fd", "/proc/self/fd"},
                            {"stdin", "/proc/self/fd/0"},
                            {"stdout", "/proc/self/fd/1"},
                            {"stderr", "/proc/self/fd/2"}};
  for (int i = 0; i < 5; i++) {
    char rel[64];
    snprintf(rel, sizeof rel, "dev/%s", links[i][0]);
    if (symlink(links[i][1], AT(rel)) < 0) die(p);
  }
  mnt("sysfs", AT("sys"), "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  const char *gen[] = {"hostname", "hosts", "resolv.conf"};
  for (int i = 0; i < 3; i++) {
    char src[4096], rel[64];
    snprintf(src, sizeof src, "%s/%s", s->dir, gen[i]);
    snprintf(rel, sizeof rel, "etc/%s", gen[i]);
    if (access(AT(rel), F_OK) < 0) close(open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    mnt(src, p, NULL, MS_BIND, NULL);
  }
  const char *masked[] = {"proc/acpi",
                          "proc/kcore",
                          "proc/keys",
                          "proc/latency_stats",
                          "proc/timer_list",
                          "proc/timer_stats",
                          "proc/sched_debug",
                          "proc/scsi",
                          "proc/interrupts",
                          "sys/firmware",
                          "sys/devices/virtual/powercap"};
  char empty[4096];
  snprintf(empty, sizeof empty, "%s/empty", s->dir);
  for (int i = 0; i < 11; i++) {
    struct stat st;
    if (stat(AT(masked[i]), &st) < 0) continue;
    mnt(S_ISDIR(st.st_mode) ? empty : "/dev/null", p, NULL, MS_BIND, NULL);
    if (S_ISDIR(st.st_mode)) mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
  }
  const char *ro[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger"};
  for (int i = 0; i < 5; i++) {
    if (access(AT(ro[i]), F_OK) < 0) continue;
    mnt(p, p, NULL, MS_BIND | MS_REC, NULL);
    mnt(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  }
#undef AT
}

static void confine(struct start *s) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("no_new_privs");
  for (int c = 0; c <= 40; c++)
    if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1 && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) die("bounding set");
  struct {
    unsigned v;
    int pid;
  } hdr = {0x20080522, 0};
  unsigned data[6] = {0};
  if (syscall(SYS_capset, &hdr, data) < 0) die("capset");
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &s->prog) < 0) die("seccomp");
}

static int child(void *arg) {
  struct start *s = arg;
  char go;
  if (read(s->sync[0], &go, 1) != 1) _exit(1);
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make / private");
  for (int i = 0; i < s->ncg; i++) put(s->cg[i], "0"); /* v1 "tasks" / v2 "cgroup.procs": ourselves */
  char root[4096];
  snprintf(root, sizeof root, "%s", s->rootfs);
  if (s->level >= 1) {
    char opts[8192];
    snprintf(root, sizeof root, "%s/merged", s->dir);
    snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s/upper,workdir=%s/work,volatile", s->rootfs, s->dir, s->dir);
    if (mount("overlay", root, "overlay", 0, opts) < 0) {
      strcat(opts, ",userxattr"); /* in a user namespace */
      mnt("overlay", root, "overlay", 0, opts);
    }
  }
  if (s->level >= 2) setup_mounts(s, root);
  if (s->level >= 3) {
    if (chdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0) die("pivot_root");
  } else if (chroot(root) < 0) die("chroot");
  if (chdir("/") < 0) die("chdir");
  char *argv[] = {"/bin/true", NULL}, *envp[] = {"PATH=/bin:/usr/bin", NULL};
  if (s->level < 4) {
    execve(argv[0], argv, envp);
    die("exec");
  }
  pid_t cmd = fork();
  if (cmd == 0) {
    if (s->level >= 5) confine(s);
    execve(argv[0], argv, envp);
    die("exec");
  }
  int st;
  for (pid_t p; (p = wait(&st)) != cmd;)
    if (p < 0) die("wait");
  _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

/* the cgroups this process made (their tasks/cgroup.procs paths), removed
 * by the process that made them, after the start or on a failure */
static struct start *cg_owner_start;
static pid_t cg_owner;

static void cgroups_remove(void) {
  struct start *s = cg_owner_start;
  if (!s || getpid() != cg_owner) return;
  for (int i = 0; i < s->ncg; i++) {
    char *slash = strrchr(s->cg[i], '/');
    *slash = 0;
    if (rmdir(s->cg[i]) < 0) fprintf(stderr, "ladder: remove %s: %s\n", s->cg[i], strerror(errno));
  }
  s->ncg = 0;
}

/* the cgroup below our own in each controller (v1) or in the v2 tree */
static int cgroups_make(struct start *s) {
  FILE *f = fopen("/proc/self/cgroup", "re");
  char line[1024];
  const char *ctrls[] = {"memory", "pids", "cpu"};
  const char *limits[][2] = {{"memory.limit_in_bytes", "4294967296"}, {"pids.max", "256"}, {"cpu.cfs_quota_us", "200000"}};
  bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
  cg_owner_start = s, cg_owner = getpid();
  while (f && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    *c1 = *c2 = 0;
    char *list = c1 + 1, *path = c2 + 1, dir[512];
    for (int i = 0; i < 3 && !v2; i++) {
      char *tok, *sp, buf[256];
      snprintf(buf, sizeof buf, "%s", list);
      for (tok = strtok_r(buf, ",", &sp); tok; tok = strtok_r(NULL, ",", &sp))
        if (!strcmp(tok, ctrls[i])) break;
      if (!tok) continue;
      snprintf(dir, sizeof dir, "/sys/fs/cgroup/%s%s/ladder-%d", list, strcmp(path, "/") ? path : "", getpid());
      if (mkdir(dir, 0755) < 0) die(dir);
      snprintf(s->cg[s->ncg++], sizeof s->cg[0], "%s/tasks", dir);
      char lim[600];
      snprintf(lim, sizeof lim, "%s/%s", dir, limits[i][0]);
      put(lim, limits[i][1]);
    }
    if (v2 && !*list) {
      snprintf(dir, sizeof dir, "/sys/fs/cgroup%s/ladder-%d", strcmp(path, "/") ? path : "", getpid());
      if (mkdir(dir, 0755) < 0) die(dir);
      snprintf(s->cg[s->ncg++], sizeof s->cg[0], "%s/cgroup.procs", dir);
      const char *v2lim[][2] = {{"memory.max", "4294967296"}, {"pids.max", "256"}, {"cpu.max", "200000 100000"}};
      for (int i = 0; i < 3; i++) {
        char lim[600];
        snprintf(lim, sizeof lim, "%s/%s", dir, v2lim[i][0]);
        if (access(lim, F_OK) == 0) put(lim, v2lim[i][1]);
      }
    }
  }
  if (f) fclose(f);
  return s->ncg;
}

static int run_one(int level, const char *rootfs, const char *scratch, const char *bpf) {
  static struct start s;
  s.level = level, s.rootfs = rootfs, s.bpf = bpf;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/c-%d", scratch, getpid());
  s.dir = dir;
  if (level >= 1) {
    char p[4200];
    if (mkdir(dir, 0700) < 0) die(dir);
    const char *sub[] = {"upper", "work", "merged", "empty"};
    for (int i = 0; i < 4; i++) {
      snprintf(p, sizeof p, "%s/%s", dir, sub[i]);
      if (mkdir(p, 0755) < 0) die(p);
    }
    const char *gen[][2] = {{"hostname", "ladder\n"}, {"hosts", "127.0.0.1 localhost ladder\n"}, {"resolv.conf", ""}};
    for (int i = 0; level >= 2 && i < 3; i++) {
      snprintf(p, sizeof p, "%s/%s", dir, gen[i][0]);
      put(p, gen[i][1]);
    }
  }
  if (level >= 5) {
    static struct sock_filter insns[4096];
    int fd = open(bpf, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, insns, sizeof insns);
    if (n <= 0 || n % 8) die(bpf);
    close(fd);
    s.prog = (struct sock_fprog){.len = (unsigned short)(n / 8), .filter = insns};
  }
  if (level >= 6 && geteuid() == 0) cgroups_make(&s);
  if (pipe2(s.sync, O_CLOEXEC) < 0) die("pipe");
  bool root = geteuid() == 0;
  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
  if (!root) flags |= CLONE_NEWUSER;
  static char stack[256 * 1024];
  pid_t pid = clone(child, stack + sizeof stack, flags, &s);
  if (pid < 0) die("clone");
  if (!root) { /* only the caller mapped, as unshare --map-root-user */
    char p[64], m[64];
    snprintf(p, sizeof p, "/proc/%d/setgroups", pid);
    put(p, "deny");
    snprintf(p, sizeof p, "/proc/%d/uid_map", pid);
    snprintf(m, sizeof m, "0 %d 1", getuid());
    put(p, m);
    snprintf(p, sizeof p, "/proc/%d/gid_map", pid);
    snprintf(m, sizeof m, "0 %d 1", getgid());
    put(p, m);
  }
  if (write(s.sync[1], "g", 1) != 1) die("go");
  int st;
  if (waitpid(pid, &st, 0) < 0) die("waitpid");
  cgroups_remove();
  /* the directories go in the background, as berth's trash child does */
  if (level >= 1 && fork() == 0) {
    rm_tree(AT_FDCWD, dir);
    _exit(0);
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static double spawn_ms(char *const argv[]) {
  extern char **environ;
  double t0 = now_ms();
  pid_t p;
  if (posix_spawn(&p, argv[0], NULL, NULL, argv, environ) != 0) die(argv[0]);
  int st;
  if (waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
    fprintf(stderr, "ladder: %s failed\n", argv[0]);
    exit(1);
  }
  double ms = now_ms() - t0;
  while (waitpid(-1, &st, WNOHANG) > 0) {} /* background removals, reparented to us */
  return ms;
}

int main(int argc, char **argv) {
  if (argc == 6 && !strcmp(argv[1], "run")) return run_one(atoi(argv[2]), argv[3], argv[4], argv[5]);
  if (argc < 9 || strcmp(argv[1], "bench") || strcmp(argv[7], "--")) {
    fprintf(stderr, "usage: ladder run LEVEL ROOTFS SCRATCH BPF\n"
                    "       ladder bench ROOTFS SCRATCH BPF RUNS ROUNDS -- FLOOR-COMMAND... [-- COMMAND...]\n");
    return 2;
  }
  char **floor_argv = argv + 8, **other = NULL;
  for (int i = 8; i < argc; i++)
    if (!strcmp(argv[i], "--")) {
      argv[i] = NULL;
      other = argv + i + 1;
      break;
    }
  if (!floor_argv[0] || (other && !other[0])) return 2;
  int runs = atoi(argv[5]), rounds = atoi(argv[6]), top = geteuid() == 0 ? LEVELS : LEVELS - 1;
  if (runs < 1 || rounds < 1) return 2;
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) die("/proc/self/exe");
  self[n] = 0;
  /* slots: the levels (0 .. top-1), the floor (top), the other command (top+1) */
  int slots = top + 1 + (other != NULL);
  double *t[LEVELS + 2];
  for (int l = 0; l < slots; l++) t[l] = calloc((size_t)(runs * rounds), sizeof(double));
  char lv[8];
  char *largv[] = {self, "run", lv, argv[2], argv[3], argv[4], NULL};
  for (int l = 0; l < slots; l++) /* warm-up, and a failing one stops here */
    for (int w = 0; w < 2; w++) {
      snprintf(lv, sizeof lv, "%d", l);
      spawn_ms(l < top ? largv : l == top ? floor_argv : other);
    }
  for (int r = 0; r < rounds; r++)
    for (int l = 0; l < slots; l++)
      for (int i = 0; i < runs; i++) {
        snprintf(lv, sizeof lv, "%d", l);
        t[l][r * runs + i] = spawn_ms(l < top ? largv : l == top ? floor_argv : other);
      }
  int k = runs * rounds;
  for (int l = 0; l < slots; l++) sort_ms(t[l], k);
  double floor_ms = t[top][k / 2];
  printf("floor (%s ...): median %.2f ms\n", floor_argv[0], floor_ms);
  for (int l = 0; l < top; l++)
    printf("level %d %-12s median %.2f ms  = %.2fx the floor\n", l, NAMES[l], t[l][k / 2], t[l][k / 2] / floor_ms);
  if (top < LEVELS) printf("level 6 +cgroup       n/a (not root)\n");
  if (other)
    printf("%s ...: median %.2f ms  = %.2fx the floor, %.2fx level %d\n", other[0], t[top + 1][k / 2], t[top + 1][k / 2] / floor_ms,
           t[top + 1][k / 2] / t[top - 1][k / 2], top - 1);
  return 0;
}
