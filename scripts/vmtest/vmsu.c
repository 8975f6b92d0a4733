/* The test VM's stand-ins for what a systemd host provides, one static
 * binary dispatched on its name (the VM has no systemd, no sudo, no PAM):
 *
 *   vmsu [--cgroup DIR | --scope DIR] USER CMD...   (run by root)
 *       run CMD as USER (groups cleared, HOME/USER/LOGNAME set) with no
 *       parent left behind; first join the existing cgroup DIR, or create
 *       DIR as a delegated scope (chowned like systemd's Delegate=yes does:
 *       the directory, cgroup.procs, cgroup.subtree_control, cgroup.threads)
 *       and join it.
 *   sudo CMD...                                     (installed setuid root)
 *       run CMD as root, as `sudo` would for a user allowed everything.
 *   systemd-run --user --scope -p Delegate=yes CMD... (installed setuid root)
 *       what systemd-run asks the user's manager for: a new scope
 *       user@UID.service/app.slice/run-rPID.scope, delegated to the user,
 *       with the controllers user@UID.service has enabled down to it; the
 *       move of the caller into it is done as root, as the system manager
 *       does for a user manager (AttachProcessesToUnit). Fails like the
 *       real one when the user's manager cgroup is not delegated.
 *
 * Built by scripts/vmtest/vmtest.sh with `cc -static`; never installed on
 * a host. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "vmsu: %s: %s\n", what, strerror(errno));
  exit(125);
}

static int put(const char *dir, const char *file, const char *val) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", dir, file);
  int fd = open(p, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, val, strlen(val));
  int e = errno;
  close(fd);
  errno = e;
  return n == (ssize_t)strlen(val) ? 0 : -1;
}

static void join(const char *dir) {
  char pid[32];
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  if (put(dir, "cgroup.procs", pid) < 0) die(dir);
}

static void delegate(const char *dir, uid_t uid, gid_t gid) {
  const char *files[] = {"", "/cgroup.procs", "/cgroup.subtree_control", "/cgroup.threads"};
  char p[4096];
  for (int i = 0; i < 4; i++) {
    snprintf(p, sizeof p, "%s%s", dir, files[i]);
    if (chown(p, uid, gid) < 0) die(p);
  }
}

/* enable in DIR's subtree_control every controller DIR has */
static void enable_all(const char *dir) {
  char p[4096], buf[512] = "";
  snprintf(p, sizeof p, "%s/cgroup.controllers", dir);
  FILE *f = fopen(p, "re");
  if (!f) return;
  if (!fgets(buf, sizeof buf, f)) buf[0] = '\0';
  fclose(f);
  for (char *save, *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
    char v[64];
    snprintf(v, sizeof v, "+%s", t);
    put(dir, "cgroup.subtree_control", v);
  }
}

static void become(uid_t uid, gid_t gid, const struct passwd *pw) {
  if (pw) {
    setenv("HOME", pw->pw_dir, 1);
    setenv("USER", pw->pw_name, 1);
    setenv("LOGNAME", pw->pw_name, 1);
  }
  if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) die("drop privileges");
}

static int cmd_vmsu(int argc, char **argv) {
  int i = 1;
  const char *cg = NULL, *scope = NULL;
  if (i + 1 < argc && !strcmp(argv[i], "--cgroup")) cg = argv[i + 1], i += 2;
  else if (i + 1 < argc && !strcmp(argv[i], "--scope")) scope = argv[i + 1], i += 2;
  if (argc - i < 2) {
    fprintf(stderr, "usage: vmsu [--cgroup DIR | --scope DIR] USER CMD...\n");
    return 2;
  }
  struct passwd *pw = getpwnam(argv[i]);
  if (!pw) {
    fprintf(stderr, "vmsu: no user %s\n", argv[i]);
    return 125;
  }
  if (scope) {
    if (mkdir(scope, 0755) < 0 && errno != EEXIST) die(scope);
    delegate(scope, pw->pw_uid, pw->pw_gid);
    join(scope);
  } else if (cg) join(cg);
  become(pw->pw_uid, pw->pw_gid, pw);
  execvp(argv[i + 1], argv + i + 1);
  die(argv[i + 1]);
  return 127;
}

static int cmd_sudo(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: sudo CMD...\n");
    return 1;
  }
  if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) die("sudo: become root (is it setuid root?)");
  execvp(argv[1], argv + 1);
  die(argv[1]);
  return 127;
}

static int cmd_systemd_run(int argc, char **argv) {
  bool user = false, scope = false, delegate_yes = false;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (!strcmp(argv[i], "--user")) user = true;
    else if (!strcmp(argv[i], "--scope")) scope = true;
    else if (!strcmp(argv[i], "-p") && i + 1 < argc && !strcmp(argv[i + 1], "Delegate=yes")) delegate_yes = true, i++;
    else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) continue;
    else {
      fprintf(stderr, "systemd-run (test VM stand-in): only --user --scope -p Delegate=yes CMD... is emulated, not %s\n", argv[i]);
      return 1;
    }
  }
  if (!user || !scope || !delegate_yes || i >= argc) {
    fprintf(stderr, "systemd-run (test VM stand-in): only --user --scope -p Delegate=yes CMD... is emulated\n");
    return 1;
  }
  uid_t uid = getuid();
  gid_t gid = getgid();
  struct passwd *pw = getpwuid(uid);
  char svc[512], slice[600], sc[700];
  snprintf(svc, sizeof svc, "/sys/fs/cgroup/user.slice/user-%u.slice/user@%u.service", (unsigned)uid, (unsigned)uid);
  struct stat st;
  if (stat(svc, &st) < 0 || st.st_uid != uid) {
    /* what the real one says without a user manager it may talk to */
    fprintf(stderr, "Failed to connect to bus: No medium found\n");
    return 1;
  }
  /* the user manager's part, with the user's own rights */
  if (setresuid(uid, uid, 0) < 0) die("seteuid");
  snprintf(slice, sizeof slice, "%s/app.slice", svc);
  snprintf(sc, sizeof sc, "%s/run-r%d.scope", slice, (int)getpid());
  if (mkdir(slice, 0755) < 0 && errno != EEXIST) die(slice);
  enable_all(svc);
  enable_all(slice);
  if (mkdir(sc, 0755) < 0) die(sc);
  /* the system manager's part: attach the caller */
  if (setresuid(0, 0, 0) < 0) die("setuid");
  join(sc);
  become(uid, gid, pw);
  execvp(argv[i], argv + i);
  die(argv[i]);
  return 127;
}

int main(int argc, char **argv) {
  const char *me = basename(argv[0]);
  if (!strcmp(me, "sudo")) return cmd_sudo(argc, argv);
  if (!strcmp(me, "systemd-run")) return cmd_systemd_run(argc, argv);
  return cmd_vmsu(argc, argv);
}
