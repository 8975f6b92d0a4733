/* berth-tiny: what stays resident for an idle container. Built without a C
 * library (x86_64 system calls by hand) so that a container's PID 1 and its
 * monitor cost a few KiB instead of a dynamically linked berth each.
 *
 *   berth-tiny init
 *       PID 1 after berth's init has set the container up (and exec'd this
 *       from a memfd): reaps every child; on SIGTERM/SIGINT/SIGHUP passes
 *       SIGTERM to all processes and leaves when they are gone or after 10 s.
 *   berth-tiny run PID
 *       PID 1 of a one-shot `berth run`: PID is the command, its child.
 *       Reaps every child, passes SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1
 *       and SIGUSR2 on to the command, and exits with the command's status
 *       (128+N when a signal N ended it) as soon as the command ends; the
 *       kernel then ends whatever it left behind.
 *   berth-tiny hold
 *       rootless: the user namespace keeper (argv[0] berth-userns), which
 *       only exists to hold its mapped user namespace (see userns.h).
 *   berth-tiny monitor PID BERTHFD NAME
 *       the container's monitor: waits for its child PID (the container's
 *       init), then execs berth (the open fd BERTHFD) as
 *       `berth __monitor-exit NAME STATUS` to record the end and clean up.
 *   berth-tiny exec FILE [ARG...]
 *       the last step of every command berth starts in a container: berth,
 *       confined already, execs this from a sealed memfd, and this execs
 *       FILE (searched in $PATH as execvp does) with argv FILE ARG...
 *       The exec of a path the container controls must never be made by a
 *       process whose /proc/self/exe is the host's berth binary: a path
 *       that resolves to /proc/self/exe (a symlink, a `#!` line) would run
 *       the host binary inside the container, where it could be opened for
 *       writing (CVE-2019-5736). From here /proc/self/exe is this sealed
 *       memfd, which nothing can write.
 *
 * Inherited file descriptors (the environment memfd at 3, the network
 * helper's exit pipe at 4) stay open: nothing here closes them. */
#include <asm/unistd.h>
#include <linux/signal.h>

typedef unsigned long ulong;

static long sys6(long n, long a, long b, long c, long d, long e) {
  long r;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8) : "rcx", "r11", "memory");
  return r;
}
#define SYS(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0)

static void die(int code) {
  for (;;) SYS(__NR_exit_group, code, 0, 0, 0);
}

static int streq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

static long atol_(const char *s) {
  long v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
  return v;
}

static void utoa(ulong v, char *out) {
  char tmp[24];
  int n = 0;
  do tmp[n++] = (char)('0' + v % 10), v /= 10;
  while (v);
  while (n) *out++ = tmp[--n];
  *out = 0;
}

#define BIT(s) (1UL << ((s)-1))

static void run_init(void) {
  /* kill(-1) below means "everything in this pid namespace" only as its
   * PID 1; anywhere else it would reach every process of the user */
  if (SYS(__NR_getpid, 0, 0, 0, 0) != 1) die(3);
  SYS(__NR_prctl, 15 /* PR_SET_NAME */, "berth-init", 0, 0);
  ulong set = BIT(SIGCHLD) | BIT(SIGTERM) | BIT(SIGINT) | BIT(SIGHUP) | BIT(SIGALRM);
  SYS(__NR_rt_sigprocmask, SIG_BLOCK, &set, 0, 8);
  int stopping = 0;
  for (;;) {
    int st;
    long p;
    while ((p = SYS(__NR_wait4, -1, &st, 1 /* WNOHANG */, 0)) > 0) {}
    if (stopping && p == -10 /* ECHILD */) die(0);
    long sig = SYS(__NR_rt_sigtimedwait, &set, 0, 0, 8);
    if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
      if (!stopping) {
        stopping = 1;
        SYS(__NR_kill, -1, SIGTERM, 0, 0);
        SYS(__NR_alarm, 10, 0, 0, 0);
      }
    } else if (sig == SIGALRM && stopping) die(0); /* the kernel kills what is left when PID 1 exits */
  }
}

static ulong wait_code(int st) { return (st & 0x7f) == 0 ? (ulong)((st >> 8) & 0xff) : 128 + (ulong)(st & 0x7f); }

static void run_cmd(long cmd) {
  if (SYS(__NR_getpid, 0, 0, 0, 0) != 1) die(3);
  SYS(__NR_prctl, 15 /* PR_SET_NAME */, "berth-init", 0, 0);
  /* what a stop or `berth kill` may send: images' StopSignal values
   * include SIGWINCH, SIGPWR and SIGRTMIN+3 besides the usual ones */
  ulong set = BIT(SIGCHLD) | BIT(SIGTERM) | BIT(SIGINT) | BIT(SIGHUP) | BIT(SIGQUIT) | BIT(SIGUSR1) | BIT(SIGUSR2) |
              BIT(28 /* SIGWINCH */) | BIT(30 /* SIGPWR */) | BIT(14 /* SIGALRM */) | BIT(37 /* SIGRTMIN+3 */);
  SYS(__NR_rt_sigprocmask, SIG_BLOCK, &set, 0, 8);
  for (;;) {
    int st;
    long p;
    while ((p = SYS(__NR_wait4, -1, &st, 1 /* WNOHANG */, 0)) > 0)
      if (p == cmd) die((int)wait_code(st));
    if (p == -10 /* ECHILD: the command is gone, unseen */) die(125);
    long sig = SYS(__NR_rt_sigtimedwait, &set, 0, 0, 8);
    if (sig > 0 && sig != SIGCHLD) SYS(__NR_kill, cmd, sig, 0, 0);
  }
}

static void run_monitor(long pid, long fd, char *name, char **envp) {
  SYS(__NR_prctl, 15 /* PR_SET_NAME */, "berth-monitor", 0, 0);
  int st = 0;
  long r;
  do r = SYS(__NR_wait4, pid, &st, 0, 0);
  while (r == -4 /* EINTR */);
  ulong code = wait_code(st);
  char num[24];
  utoa(code, num);
  char *argv[] = {"berth", "__monitor-exit", name, num, 0};
  sys6(__NR_execveat, fd, (long)"", (long)argv, (long)envp, 0x1000 /* AT_EMPTY_PATH */);
  die(1);
}

static ulong slen(const char *s) {
  ulong n = 0;
  while (s[n]) n++;
  return n;
}

static void put2(const char *s) { SYS(__NR_write, 2, s, slen(s), 0); }

/* execve; on ENOEXEC (no #! line) the file is a shell script, as execvp has it */
static long try_exec(const char *path, char **argv, char **envp) {
  long r = SYS(__NR_execve, path, argv, envp, 0);
  if (r != -8 /* ENOEXEC */) return r;
  /* argv[-1] is ours to reuse ("exec"): sh PATH ARG... */
  argv[-1] = "/bin/sh";
  argv[0] = (char *)path;
  SYS(__NR_execve, "/bin/sh", argv - 1, envp, 0);
  return r;
}

static void run_exec(char **argv, char **envp) {
  char *file = argv[0];
  long err = -2 /* ENOENT */;
  int has_slash = 0;
  for (char *c = file; *c; c++) has_slash |= *c == '/';
  if (!*file) {
  } else if (has_slash) {
    err = try_exec(file, argv, envp);
  } else {
    const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (char **e = envp; *e; e++)
      if ((*e)[0] == 'P' && (*e)[1] == 'A' && (*e)[2] == 'T' && (*e)[3] == 'H' && (*e)[4] == '=') path = *e + 5;
    ulong flen = slen(file);
    int eacces = 0;
    char buf[4096];
    for (const char *p = path;;) {
      const char *q = p;
      while (*q && *q != ':') q++;
      ulong dlen = (ulong)(q - p);
      if (dlen + flen + 2 <= sizeof buf) {
        ulong n = 0;
        for (ulong i = 0; i < dlen; i++) buf[n++] = p[i];
        if (dlen) buf[n++] = '/';
        for (ulong i = 0; i <= flen; i++) buf[n++] = file[i];
        char *keep = argv[0];
        long r = try_exec(buf, argv, envp);
        argv[0] = keep;
        if (r == -13 /* EACCES */) eacces = 1;
        else if (r != -2 && r != -20 /* ENOTDIR */ && r != -116 /* ESTALE */ && r != -19 /* ENODEV */ && r != -110) {
          err = r;
          break;
        }
      }
      if (!*q) {
        if (eacces) err = -13;
        break;
      }
      p = q + 1;
    }
  }
  /* the messages berth's own execvp path gave */
  put2("berth: exec: `");
  put2(file);
  if (err == -2 && !has_slash) {
    put2("`: executable file not found in $PATH\n");
    die(127);
  }
  static const struct {
    long e;
    const char *m;
  } msgs[] = {
      {-2, "No such file or directory"}, {-13, "Permission denied"},      {-8, "Exec format error"},
      {-20, "Not a directory"},          {-21, "Is a directory"},         {-7, "Argument list too long"},
      {-12, "Cannot allocate memory"},   {-26, "Text file busy"},         {-40, "Too many levels of symbolic links"},
      {-36, "File name too long"},       {-1, "Operation not permitted"}, {-11, "Resource temporarily unavailable"},
  };
  const char *m = "cannot execute";
  for (ulong i = 0; i < sizeof msgs / sizeof msgs[0]; i++)
    if (msgs[i].e == err) m = msgs[i].m;
  put2("`: ");
  put2(m);
  put2("\n");
  die(err == -2 ? 127 : 126);
}

static void run_hold(void) {
  SYS(__NR_prctl, 15 /* PR_SET_NAME */, "berth-userns", 0, 0);
  ulong none = 0;
  SYS(__NR_rt_sigprocmask, SIG_SETMASK, &none, 0, 8);
  for (;;) SYS(__NR_pause, 0, 0, 0, 0); /* SIGTERM or SIGKILL ends it */
}

__attribute__((used)) void tiny_main(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  if (argc >= 2 && streq(argv[1], "init")) run_init();
  if (argc >= 3 && streq(argv[1], "run")) run_cmd(atol_(argv[2]));
  if (argc >= 5 && streq(argv[1], "monitor")) run_monitor(atol_(argv[2]), atol_(argv[3]), argv[4], envp);
  if (argc >= 2 && streq(argv[1], "hold")) run_hold();
  if (argc >= 3 && streq(argv[1], "exec")) run_exec(argv + 2, envp);
  die(2);
}

__asm__(".text\n.global _start\n_start:\n  mov %rsp, %rdi\n  and $-16, %rsp\n  call tiny_main\n  hlt\n");
