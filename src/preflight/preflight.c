/* Host checks. Each failed check carries `guidance`: the exact command or
 * file change that fixes it, with `sudo` where root is needed. Checks that
 * only limit features (cgroup limits, network helpers, the subordinate ids
 * that give containers more than one user) are `required:false`
 * and do not make the host "not ready". */
#define _GNU_SOURCE
#include "preflight/preflight.h"
#include "network/network.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/xattr.h>
#include <sys/wait.h>
#include <time.h>

#include "bundle/cdi.h"
#include "util/config.h"
#include "runtime/disk.h"
#include "runtime/container.h"
#include "util/userns.h"
#include "util/util.h"

/* guidance: what to do, for a person. fix: the exact shell command that
 * does it, run as this user (sudo inside where root is needed), when one
 * exists; after: what must follow it that is no command (log in again). */
static json_t *add(json_t *checks, const char *name, bool passed, bool required, const char *detail, const char *guidance) {
  json_t *c = json_pack("{s:s, s:b, s:b, s:s}", "name", name, "passed", passed, "required", required, "detail", detail);
  if (!passed && guidance) json_object_set_new(c, "guidance", json_string(guidance));
  json_array_append_new(checks, c);
  return c;
}
static void set_fix(json_t *c, const char *fix, const char *after) {
  if (json_is_true(json_object_get(c, "passed"))) return;
  if (fix) json_object_set_new(c, "fix", json_string(fix));
  if (after) json_object_set_new(c, "after_fix", json_string(after));
}

static long read_long(const char *path, long def) {
  cleanup_free char *s = NULL;
  if (read_file(path, 64, &s, NULL, NULL) < 0) return def;
  return strtol(s, NULL, 10);
}

static const char *user_name(void) {
  struct passwd *pw = getpwuid(getuid());
  return pw ? pw->pw_name : "USER";
}

/* Can this process make a user namespace? (fork + unshare, nothing kept) */
static bool probe_userns(char *why, size_t wl) {
  pid_t p = fork();
  if (p < 0) return false;
  if (p == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : (errno & 0x7f));
  int st;
  waitpid(p, &st, 0);
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
  if (code) snprintf(why, wl, "%s", strerror(code));
  return code == 0;
}

static void check_kernel(json_t *c) {
  struct utsname u;
  uname(&u);
  int maj = 0, min = 0;
  sscanf(u.release, "%d.%d", &maj, &min);
  bool ok = maj > 5 || (maj == 5 && min >= 11);
  char d[256];
  snprintf(d, sizeof d, "Linux %s %s (rootless overlay needs 5.11+; unlimited layers via lowerdir+ on 6.8+)", u.release,
           ok ? "ok" : "too old");
  add(c, "kernel", ok, true, d, "upgrade the kernel to 5.11 or newer (Debian 12 ships 6.1)");
}

static void check_userns(json_t *c, bool rootless) {
  long max = read_long("/proc/sys/user/max_user_namespaces", -1);
  long clone = read_long("/proc/sys/kernel/unprivileged_userns_clone", -1);
  long aa = read_long("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", -1);
  char why[128] = "";
  bool probe = probe_userns(why, sizeof why);
  char d[512];
  const char *g = NULL, *fix = NULL;
  bool ok = probe;
  if (max == 0) {
    ok = false;
    g = fix =
        "sudo sysctl -w user.max_user_namespaces=28633 && echo 'user.max_user_namespaces=28633' | sudo tee /etc/sysctl.d/90-berth-userns.conf";
  } else if (clone == 0) {
    ok = false;
    g = fix =
        "sudo sysctl -w kernel.unprivileged_userns_clone=1 && echo 'kernel.unprivileged_userns_clone=1' | sudo tee /etc/sysctl.d/90-berth-userns-clone.conf";
  } else if (aa == 1 && !probe) {
    g = "either allow unprivileged user namespaces: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 ; or give berth an "
        "AppArmor profile: printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile berth /usr/local/bin/berth flags=(unconfined) {\\n  userns,\\n}\\n' "
        "| sudo tee /etc/apparmor.d/berth && sudo apparmor_parser -r /etc/apparmor.d/berth";
  } else if (!probe)
    g = "user namespaces are refused here (inside another container?): run berth on the host, or give the outer container "
        "CAP_SYS_ADMIN / --security-opt seccomp=unconfined so it may create user namespaces";
  snprintf(d, sizeof d, "user.max_user_namespaces=%ld%s%s; unshare(CLONE_NEWUSER) %s%s%s", max,
           clone >= 0 ? (clone ? ", unprivileged_userns_clone=1" : ", unprivileged_userns_clone=0") : "",
           aa >= 0 ? (aa ? ", apparmor_restrict_unprivileged_userns=1" : ", apparmor_restrict_unprivileged_userns=0") : "",
           probe ? "works" : "fails: ", probe ? "" : why, "");
  set_fix(add(c, "user_namespaces", ok, rootless, d, g), fix, NULL);
}

/* the first 65536 ids from 100000 up that no range in /etc/subuid or
 * /etc/subgid touches (each clash moves past that range) */
static unsigned long free_subid_start(void) {
  unsigned long start = 100000;
  for (bool moved = true; moved;) {
    moved = false;
    const char *files[] = {"/etc/subuid", "/etc/subgid"};
    for (int f = 0; f < 2; f++) {
      FILE *fp = fopen(files[f], "re");
      if (!fp) continue;
      char line[512];
      while (fgets(line, sizeof line, fp)) {
        char *a = strchr(line, ':');
        unsigned long s, n;
        if (!a || sscanf(a + 1, "%lu:%lu", &s, &n) != 2) continue;
        if (s < start + 65536 && start < s + n) {
          start = s + n;
          moved = true;
        }
      }
      fclose(fp);
    }
  }
  return start;
}

/* what a rootless container gets without subordinate ids or newuidmap */
#define SINGLE_ID_NOTE                                                                                           \
  "; until fixed, containers run with a single-id mapping: only root (you) exists inside, image files of other " \
  "owners become root's, and switching to another user fails"

static void check_subids(json_t *c, bool rootless) {
  if (!rootless) {
    add(c, "subordinate_ids", true, false, "running as root: not needed", NULL);
    return;
  }
  struct id_range u, g;
  const char *name = user_name();
  bool hu = subid_lookup("/etc/subuid", name, getuid(), &u) == 0 && u.count >= 65536;
  bool hg = subid_lookup("/etc/subgid", name, getuid(), &g) == 0 && g.count >= 65536;
  char d[512], gd[512], fx[256];
  snprintf(d, sizeof d, "/etc/subuid: %s; /etc/subgid: %s%s", hu ? "range of 65536+ ids" : "no range of 65536 ids",
           hg ? "range of 65536+ ids" : "no range of 65536 ids", hu && hg ? "" : SINGLE_ID_NOTE);
  unsigned long start = free_subid_start();
  snprintf(fx, sizeof fx, "sudo usermod --add-subuids %lu-%lu --add-subgids %lu-%lu %s", start, start + 65535, start, start + 65535, name);
  snprintf(gd, sizeof gd, "give %s 65536 subordinate ids that no other user has (%lu-%lu is free in /etc/subuid and /etc/subgid): %s", name,
           start, start + 65535, fx);
  set_fix(add(c, "subordinate_ids", hu && hg, false, d, gd), fx, NULL);
}

static const char *const helper_dirs[] = {"/usr/bin", "/bin", "/usr/sbin", "/usr/local/bin"};

static bool helper_ok(const char *name, char *path, size_t pl) {
  const char *const *dirs = helper_dirs;
  for (int i = 0; i < 4; i++) {
    snprintf(path, pl, "%s/%s", dirs[i], name);
    struct stat st;
    if (stat(path, &st) == 0) {
      if ((st.st_mode & S_ISUID) && st.st_uid == 0) return true;
      char caps[256];
      ssize_t n = getxattr(path, "security.capability", caps, sizeof caps);
      return n > 0;
    }
  }
  path[0] = '\0';
  return false;
}

static void check_idmap(json_t *c, bool rootless) {
  char pu[256], pg[256];
  bool u = helper_ok("newuidmap", pu, sizeof pu), g = helper_ok("newgidmap", pg, sizeof pg);
  char d[600], fx[600] = "";
  cleanup_free char *gd = NULL;
  if (!*pu || !*pg) {
    snprintf(d, sizeof d, "newuidmap/newgidmap not installed");
    snprintf(fx, sizeof fx, "sudo apt-get install -y uidmap");
    gd = strdup(fx);
  } else {
    snprintf(d, sizeof d, "%s %s, %s %s", pu, u ? "setuid" : "lacks setuid/file caps", pg, g ? "setuid" : "lacks setuid/file caps");
    snprintf(fx, sizeof fx, "sudo chmod u+s %s %s", pu, pg);
    gd = xasprintf("%s (or give them file capabilities: sudo setcap cap_setuid+ep %s; sudo setcap cap_setgid+ep %s)", fx, pu, pg);
  }
  /* without them a rootless container still runs, with a single-id mapping */
  if (rootless && !(u && g)) strncat(d, SINGLE_ID_NOTE, sizeof d - strlen(d) - 1);
  set_fix(add(c, "newuidmap", u && g, false, d, gd), fx, NULL);
}

static void check_cgroups(json_t *c, bool rootless) {
  struct stat st;
  bool v2 = stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
  char d[1024];
  if (!v2) {
    bool hybrid = stat("/sys/fs/cgroup/unified/cgroup.controllers", &st) == 0;
    bool writable = access("/sys/fs/cgroup/memory", W_OK) == 0 && access("/sys/fs/cgroup/pids", W_OK) == 0;
    snprintf(d, sizeof d, "cgroup v1%s: memory, pids and cpu limits %s", hybrid ? " (hybrid)" : "",
             !rootless && writable ? "apply" : "cannot be applied for this user (v1 has no delegation); containers run without them");
    const char *fx = "sudo sed -i 's/GRUB_CMDLINE_LINUX=\"/GRUB_CMDLINE_LINUX=\"systemd.unified_cgroup_hierarchy=1 /' /etc/default/grub && "
                     "sudo update-grub";
    cleanup_free char *g = xasprintf("boot with cgroup v2 for rootless limits: %s && sudo reboot", fx);
    set_fix(add(c, "cgroups", !rootless && writable, false, d, g), fx, "reboot");
    return;
  }
  cleanup_free char *own = NULL;
  cleanup_free char *cg = NULL;
  if (read_file("/proc/self/cgroup", 4096, &cg, NULL, NULL) == 0) own = cgroup_own_path(cg, "");
  /* an earlier create of this process moved it into <base>/berth/monitor (see cgroup.c) */
  size_t ol = own ? strlen(own) : 0, sl = strlen("/berth/monitor");
  if (ol > sl && !strcmp(own + ol - sl, "/berth/monitor")) own[ol - sl] = '\0';
  bool top = !own || !strcmp(own, "/");
  cleanup_free char *dir = xasprintf("/sys/fs/cgroup%s", top ? "" : own);
  if (!rootless) {
    /* root uses its own cgroup, or /sys/fs/cgroup/berth when that one is shared (see cgroup.c) */
    cleanup_free char *ctl = NULL;
    read_file("/sys/fs/cgroup/cgroup.controllers", 4096, &ctl, NULL, NULL);
    bool has = list_has_word(ctl, "memory", ' ') && list_has_word(ctl, "pids", ' ') && list_has_word(ctl, "cpu", ' ');
    snprintf(d, sizeof d, "cgroup v2: root cgroup controllers [%s]%s", ctl ? strtok_r(ctl, "\n", &(char *){NULL}) : "none",
             has ? "; memory, pids and cpu limits apply" : "");
    add(c, "cgroups", has, false, d,
        "enable the memory, pids and cpu controllers in the kernel (cgroup_enable=memory on the kernel command line)");
    return;
  }
  cleanup_free char *ctl = NULL;
  cleanup_free char *cf = xasprintf("%s/cgroup.controllers", dir);
  read_file(cf, 4096, &ctl, NULL, NULL);
  if (ctl) ctl[strcspn(ctl, "\n")] = '\0';
  bool has = list_has_word(ctl, "memory", ' ') && list_has_word(ctl, "pids", ' ') && list_has_word(ctl, "cpu", ' ');
  cleanup_free char *procs = xasprintf("%s/cgroup.procs", dir);
  cleanup_free char *sub = xasprintf("%s/cgroup.subtree_control", dir);
  bool w = access(dir, W_OK) == 0 && access(procs, W_OK) == 0 && access(sub, W_OK) == 0;
  /* cgroup v2 hands controllers only to cgroups without processes of their own: berth
   * steps into a leaf itself, but cannot move the rest (a login shell) */
  bool others = false;
  cleanup_free char *sc = NULL;
  read_file(sub, 4096, &sc, NULL, NULL);
  if (!(list_has_word(sc, "memory", ' ') && list_has_word(sc, "pids", ' ') && list_has_word(sc, "cpu", ' '))) {
    cleanup_free char *pl = NULL;
    if (read_file(procs, 1 << 20, &pl, NULL, NULL) == 0)
      for (char *save, *t = strtok_r(pl, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
        if (atoi(t) != getpid()) others = true;
  }
  bool ok = has && w && !others;
  snprintf(d, sizeof d, "cgroup v2 at %s: controllers [%s]%s%s", dir, ctl ? ctl : "none", w ? "" : "; not delegated to this user",
           w && others ? "; shared with other processes (cgroup v2 gives controllers only to cgroups without processes)" : "");
  bool systemd = stat("/run/systemd/system", &st) == 0;
  uid_t uid = getuid();
  cleanup_free char *svc = xasprintf("/sys/fs/cgroup/user.slice/user-%u.slice/user@%u.service", (unsigned)uid, (unsigned)uid);
  cleanup_free char *svcctl = NULL;
  cleanup_free char *svcf = xasprintf("%s/cgroup.controllers", svc);
  read_file(svcf, 4096, &svcctl, NULL, NULL);
  bool svc_ok = stat(svc, &st) == 0 && st.st_uid == uid && list_has_word(svcctl, "memory", ' ') && list_has_word(svcctl, "pids", ' ') &&
                list_has_word(svcctl, "cpu", ' ');
  const char *scope = "systemd-run --user --scope -p Delegate=yes";
  const char *dropin = "sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' "
                       "| sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload";
  json_t *j;
  if (ok) {
    add(c, "cgroups", true, false, d, NULL);
  } else if (systemd && !svc_ok) {
    cleanup_free char *g = xasprintf("delegate memory, pids and cpu to your systemd user manager: %s; then log in again and run "
                                     "berth in a delegated scope: %s berth ...",
                                     dropin, scope);
    j = add(c, "cgroups", false, false, d, g);
    set_fix(j, dropin, "log in again");
    json_object_set_new(j, "run_with", json_string(scope));
  } else if (systemd) {
    cleanup_free char *g = xasprintf("your user manager has memory, pids and cpu delegated, but berth runs outside it (%s): run "
                                     "berth in a delegated scope: %s berth ...",
                                     own ? own : "?", scope);
    j = add(c, "cgroups", false, false, d, g);
    json_object_set_new(j, "run_with", json_string(scope));
  } else {
    add(c, "cgroups", false, false, d,
        "no systemd here: have whatever starts your session give it a cgroup of its own with memory, pids and cpu enabled in every "
        "parent's cgroup.subtree_control, owned by you (the directory and its cgroup.procs, cgroup.subtree_control and "
        "cgroup.threads), and start berth alone in it");
  }
}

/* Probe an overlay mount the way containers use it (in a user namespace
 * when rootless); cached per kernel in the run dir. */
/* what containers get when overlayfs cannot be mounted (init.c:
 * fuse-overlayfs where it can run, else a copied root filesystem) */
static const char *overlay_fallback(void) {
  bool have = fuse_overlayfs_path() != NULL;
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd >= 0) close(fd);
  if (have && fd >= 0) return "containers get fuse-overlayfs instead (slower file access)";
  if (have)
    return "containers get a copied root filesystem (slower, more disk): fuse-overlayfs is installed but /dev/fuse is not open to you";
  return "containers get a copied root filesystem (slower, more disk), or fuse-overlayfs where it is installed "
         "(sudo apt-get install fuse-overlayfs)";
}

/* this boot's id (one line, no newline), or NULL */
static char *boot_id(void) {
  char *b = NULL;
  if (read_file("/proc/sys/kernel/random/boot_id", 64, &b, NULL, NULL) < 0) return NULL;
  b[strcspn(b, "\n")] = '\0';
  if (!*b) {
    free(b);
    return NULL;
  }
  return b;
}

static void check_overlay(json_t *c, bool rootless, struct berth_config *cfg) {
  struct utsname u;
  uname(&u);
  /* cached in the data dir (the store's filesystem decides), per kernel and
   * boot, so that it goes with the store (it was one file per data dir in
   * the run dir, which test suites filled by the thousand) */
  cleanup_free char *boot = boot_id();
  cleanup_free char *cache = xasprintf("%s/tmp/overlay-ok-%s", cfg->data_dir, u.release);
  cleanup_free char *want = xasprintf("1 %s", boot ? boot : "-");
  cleanup_free char *cached = NULL;
  /* only a success is cached: a failure is probed again, so the check sees a fix at once */
  if (read_file(cache, 256, &cached, NULL, NULL) == 0 && !strcmp(cached, want)) {
    add(c, "overlay", true, false, "overlayfs mounts (cached probe)", NULL);
    return;
  }
  cleanup_free char *fs = NULL;
  read_file("/proc/filesystems", 1 << 16, &fs, NULL, NULL);
  if (fs && !strstr(fs, "\toverlay\n")) {
    /* not built in, not loaded, and nothing loaded it on demand */
    char d0[400];
    snprintf(d0, sizeof d0, "the overlay filesystem is not available (no `overlay` in /proc/filesystems; module not loaded): %s",
             overlay_fallback());
    json_t *j = add(
        c, "overlay", false, false, d0,
        "load the module now and at every boot: sudo modprobe overlay && echo overlay | sudo tee /etc/modules-load.d/berth-overlay.conf");
    set_fix(j, "sudo modprobe overlay && echo overlay | sudo tee /etc/modules-load.d/berth-overlay.conf", NULL);
    return;
  }
  cleanup_free char *base = xasprintf("%s/tmp", cfg->data_dir);
  mkdir_p(base, 0700, NULL);
  cleanup_free char *rnd = random_hex(4);
  cleanup_free char *dir = xasprintf("%s/overlay-probe-%s", base, rnd);
  const char *sub[] = {"l", "u", "w", "m"};
  mkdir(dir, 0700);
  for (int i = 0; i < 4; i++) {
    cleanup_free char *p = xasprintf("%s/%s", dir, sub[i]);
    mkdir(p, 0755);
  }
  /* rootless overlay keeps its metadata (opaque directories) in user.* xattrs:
   * without them it still mounts, but image contents come out wrong */
  bool xattr_ok = true;
  if (rootless) {
    cleanup_free char *u = xasprintf("%s/u", dir);
    xattr_ok = setxattr(u, "user.berth.probe", "1", 1, 0) == 0;
  }
  pid_t p = xattr_ok ? fork() : -1;
  if (p == 0) {
    if (rootless) {
      uid_t uid = getuid();
      gid_t gid = getgid();
      if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) _exit(2);
      char m[64];
      snprintf(m, sizeof m, "0 %u 1", (unsigned)uid);
      int fd = open("/proc/self/setgroups", O_WRONLY);
      if (fd >= 0) {
        if (write(fd, "deny", 4) < 0) {}
        close(fd);
      }
      fd = open("/proc/self/uid_map", O_WRONLY);
      if (fd < 0 || write(fd, m, strlen(m)) < 0) _exit(3);
      close(fd);
      snprintf(m, sizeof m, "0 %u 1", (unsigned)gid);
      fd = open("/proc/self/gid_map", O_WRONLY);
      if (fd < 0 || write(fd, m, strlen(m)) < 0) _exit(3);
      close(fd);
    } else if (unshare(CLONE_NEWNS) < 0) _exit(2);
    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    cleanup_free char *opt = xasprintf("lowerdir=%s/l,upperdir=%s/u,workdir=%s/w%s", dir, dir, dir, rootless ? ",userxattr" : "");
    cleanup_free char *m = xasprintf("%s/m", dir);
    _exit(mount("overlay", m, "overlay", 0, opt) == 0 ? 0 : 1);
  }
  int st = 0;
  if (p > 0) waitpid(p, &st, 0);
  bool ok = p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  rm_rf(dir, NULL);
  if (ok) write_file_replace(cache, want, strlen(want), 0600, false, NULL); /* a cache: no fsync (base exists) */
  char d[512];
  if (!xattr_ok)
    snprintf(d, sizeof d,
             "the store's filesystem (%s) takes no user.* extended attributes, which rootless overlayfs needs for "
             "opaque directories: images that have them cannot be stored there",
             base);
  else
    snprintf(d, sizeof d, "overlayfs %s%s (probe under %s)%s%s", ok ? "mounts" : "cannot be mounted",
             rootless ? " in a user namespace" : "", base, ok ? "" : ": ", ok ? "" : overlay_fallback());
  add(c, "overlay", ok, false, d,
      "keep the store on a filesystem overlayfs can use as its upper layer (not overlayfs itself, not NFS; rootless also needs "
      "user xattrs: ext4, xfs, btrfs, tmpfs 6.6+): set `data_dir` in berth's config (~/.config/berth/config.json) or BERTH_ROOT "
      "to a directory there");
}

static void check_seccomp(json_t *c) {
  cleanup_free char *s = NULL;
  bool ok = read_file("/proc/self/status", 1 << 16, &s, NULL, NULL) == 0 && strstr(s, "Seccomp:");
  ok = ok && prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
  add(c, "seccomp", ok, true, ok ? "seccomp filters available" : "the kernel has no seccomp filter support",
      "use a kernel built with CONFIG_SECCOMP_FILTER=y (every distribution kernel is)");
}

static void check_network(json_t *c) {
  char p2[256];
  bool slirp = false;
  const char *dirs[] = {"/usr/bin", "/usr/local/bin", "/bin"};
  for (int i = 0; i < 3; i++) {
    snprintf(p2, sizeof p2, "%s/slirp4netns", dirs[i]);
    slirp |= access(p2, X_OK) == 0;
  }
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  bool tun = fd >= 0;
  if (fd >= 0) close(fd);
  char d[320];
  snprintf(d, sizeof d, "slirp4netns %s, /dev/net/tun %s (needed for %s and for named networks' outside access; not for none/host)",
           slirp ? "found" : "missing", tun ? "usable" : "not usable",
           geteuid() == 0 ? "the bridge network when nft is missing" : "the bridge network");
  const char *fx = !tun ? "sudo modprobe tun && sudo chmod 0666 /dev/net/tun" : "sudo apt-get install -y slirp4netns";
  set_fix(add(c, "network_helper", slirp && tun, false, d, fx), fx, NULL);
  if (geteuid() == 0) {
    /* root's default network: berth0 with an nftables table */
    bool nft = hb_usable();
    const char *nfx = "sudo apt-get install -y nftables";
    set_fix(add(c, "nftables", nft, false,
                nft ? "nft found: the bridge network is berth0 with NAT"
                    : "nft missing: the bridge network falls back to slirp4netns (slower outbound)",
                nfx),
            nfx, NULL);
  }
}

/* GB free where the data dir is (or would be created) */
static double free_gb(const char *p) {
  cleanup_free char *probe = strdup(p);
  struct statvfs sv = {0};
  while (statvfs(probe, &sv) < 0) {
    char *s = strrchr(probe, '/');
    if (!s || s == probe) {
      strcpy(probe, "/");
      statvfs(probe, &sv);
      break;
    }
    *s = '\0';
  }
  return (double)sv.f_bavail * (double)sv.f_frsize / 1e9;
}

static void check_disk(json_t *c, struct berth_config *cfg) {
  const char *p = cfg->data_dir;
  double gb = free_gb(p);
  char d[256];
  snprintf(d, sizeof d, "%.1fGB free at %s%s", gb, p, gb < 1 ? "" : gb < 5 ? " (low, consider pruning)" : "");
  if (gb >= 1) {
    add(c, "disk_space", true, true, d, NULL);
    return;
  }
  /* what berth itself can give back without touching a running container */
  struct buf names = {0};
  json_t *list = NULL;
  berth_error_t e = NULL;
  if (container_list(&list, &e) == 0) {
    size_t i;
    json_t *ct;
    json_array_foreach(json_object_get(list, "containers"), i, ct) {
      const char *st = json_string_value(json_object_get(ct, "status")), *n = json_string_value(json_object_get(ct, "name"));
      if (!n || (st && !strcmp(st, "running"))) continue;
      buf_append(&names, " ", 1);
      buf_append(&names, n, strlen(n));
    }
  }
  berth_error_free(e);
  json_decref(list);
  cleanup_free char *fx = names.len ? xasprintf("berth rm%.*s", (int)names.len, names.data) : NULL;
  cleanup_free char *g = xasprintf("free space under %s: %s%s`berth rmi` images you no longer use, `berth rm` containers you no longer "
                                   "need, or set `data_dir` in berth's config to a larger filesystem",
                                   p, fx ? "remove the containers that are not running: " : "", fx ? fx : "");
  buf_free(&names);
  set_fix(add(c, "disk_space", false, true, d, g), fx, NULL);
}

/* not required: without it berth keeps no records there (no user namespace
 * keeper, no kept verdict) and is only slower */
static void check_run_dir(json_t *c, struct berth_config *cfg) {
  berth_error_t e = NULL;
  if (config_run_dir_check(cfg, &e) == 0) {
    cleanup_free char *d = xasprintf("%s: this user's alone", cfg->run_dir);
    add(c, "run_dir", true, false, d, NULL);
    return;
  }
  json_t *r = add(c, "run_dir", false, false, e->msg, "berth keeps no records there (slower starts, no rootless user namespace keeper)");
  cleanup_free char *fx =
      xasprintf("mkdir -m 0700 -p %s/.cache/berth-run && export BERTH_RUNROOT=%s/.cache/berth-run", cfg->home, cfg->home);
  set_fix(r, fx, NULL);
  berth_error_free(e);
}

/* not required: containers run without a disk limit where it cannot be had */
static void check_disk_limit(json_t *c) {
  const char *why = NULL;
  if (disk_limit_supported(&why)) {
    add(c, "disk_limit", true, false, "disk limits (`--disk`, `disk_limit`) are enforced: an ext4 image per container, loop-mounted", NULL);
    return;
  }
  cleanup_free char *d = xasprintf("disk limits cannot be enforced here: %s", why);
  json_t *r = add(c, "disk_limit", false, false, d,
                  geteuid() == 0 ? "install e2fsprogs and load the loop module; containers run without a disk limit meanwhile"
                                 : "a container's writable layer can use the data dir's free space; run berth as root where a "
                                   "limit is needed");
  if (geteuid() == 0) set_fix(r, !strncmp(why, "mke2fs", 6) ? "apt-get install -y e2fsprogs" : "modprobe loop", NULL);
}

/* ---------- GPUs (optional) ----------
 * What a `gpu` request needs: GPU nodes on the host and a CDI spec naming
 * them (vendors generate it). NVIDIA: /dev/nvidiaN; AMD compute: /dev/kfd;
 * any DRM GPU: /dev/dri/renderD* and card*. */
static void gpu_nodes(struct buf *list, int *nv, int *amd, int *dri) {
  *nv = *amd = *dri = 0;
  DIR *d = opendir("/dev");
  struct dirent *de;
  while (d && (de = readdir(d))) {
    const char *n = de->d_name;
    if (str_has_prefix(n, "nvidia") && n[6] >= '0' && n[6] <= '9' && strspn(n + 6, "0123456789") == strlen(n + 6)) {
      (*nv)++;
      if (list->len < 300) {
        cleanup_free char *b = xasprintf("%s/dev/%s", list->len ? ", " : "", n);
        buf_append(list, b, strlen(b));
      }
    }
  }
  if (d) closedir(d);
  struct stat st;
  if (stat("/dev/kfd", &st) == 0 && S_ISCHR(st.st_mode)) {
    (*amd)++;
    buf_append(list, list->len ? ", /dev/kfd" : "/dev/kfd", list->len ? 10 : 8);
  }
  d = opendir("/dev/dri");
  while (d && (de = readdir(d))) {
    if (!str_has_prefix(de->d_name, "renderD") && !str_has_prefix(de->d_name, "card")) continue;
    (*dri)++;
    if (list->len < 300) {
      cleanup_free char *b = xasprintf("%s/dev/dri/%s", list->len ? ", " : "", de->d_name);
      buf_append(list, b, strlen(b));
    }
  }
  if (d) closedir(d);
  buf_append(list, "", 1);
}

/* the qualified names of one kind, shown */
static char *kind_devices(struct cdi_registry *r, const char *kind) {
  struct buf b = {0};
  const char *k;
  json_t *x;
  json_object_foreach(r->devices, k, x) if (str_has_prefix(k, kind) && k[strlen(kind)] == '=') {
    if (b.len) buf_append(&b, ", ", 2);
    buf_append(&b, k, strlen(k));
  }
  buf_append(&b, "", 1);
  return b.data;
}

json_t *preflight_gpu_check(void) {
  struct buf nodes = {0};
  int nv, amd, dri;
  gpu_nodes(&nodes, &nv, &amd, &dri);
  struct cdi_registry r;
  cdi_registry_load(NULL, &r, NULL);
  cleanup_free char *dirs = NULL;
  {
    struct buf b = {0};
    size_t i;
    json_t *x;
    json_array_foreach(r.dirs, i, x) {
      if (b.len) buf_append(&b, ", ", 2);
      buf_append(&b, json_string_value(x), strlen(json_string_value(x)));
    }
    buf_append(&b, "", 1);
    dirs = b.data;
  }
  cleanup_free char *nvd = kind_devices(&r, "nvidia.com/gpu"), *amdd = kind_devices(&r, "amd.com/gpu");
  const char *sudo = geteuid() == 0 ? "" : "sudo ";
  cleanup_free char *errs = NULL;
  if (json_array_size(r.errors)) {
    struct buf b = {0};
    for (size_t i = 0; i < json_array_size(r.errors) && i < 3; i++) {
      const char *m = json_string_value(json_array_get(r.errors, i));
      if (b.len) buf_append(&b, "; ", 2);
      buf_append(&b, m, strlen(m));
    }
    buf_append(&b, "", 1);
    errs = b.data;
  }
  json_t *c = json_array(), *chk = NULL;
  cleanup_free char *d = NULL, *g = NULL, *fx = NULL;
  if (!nv && !amd && !dri) {
    d = xasprintf("no GPU on this host: no /dev/nvidia*, /dev/kfd or /dev/dri (or its driver is not loaded)%s%s",
                  errs ? "; CDI specs left out: " : "", errs ? errs : "");
    chk = add(c, "gpu", false, false, d,
              "`gpu` and `--gpus` need a host with a GPU and its driver loaded; other devices can still "
              "be given by CDI name or path (--device, the create request's `devices`)");
  } else if (nv && !*nvd) {
    d = xasprintf("NVIDIA GPU nodes (%s) but no CDI spec in %s names nvidia.com/gpu devices%s%s", nodes.data, dirs,
                  errs ? "; specs left out: " : "", errs ? errs : "");
    fx = xasprintf("%snvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml", sudo);
    g = xasprintf("install the NVIDIA Container Toolkit (nvidia-ctk) and write the CDI spec: %s; it must be written again after a "
                  "driver upgrade",
                  fx);
    chk = add(c, "gpu", false, false, d, g);
  } else if (amd && !nv && !*amdd) {
    d = xasprintf("AMD GPU nodes (%s) but no CDI spec in %s names amd.com/gpu devices%s%s", nodes.data, dirs,
                  errs ? "; specs left out: " : "", errs ? errs : "");
    fx = xasprintf("%samd-ctk cdi generate --output=/etc/cdi/amd.json", sudo);
    g = xasprintf("install the AMD Container Toolkit (amd-ctk) and write the CDI spec: %s; then ask for `--device amd.com/gpu=all` "
                  "(`gpu`/`--gpus` name NVIDIA's devices)",
                  fx);
    chk = add(c, "gpu", false, false, d, g);
  } else if (!nv && !amd) {
    d = xasprintf("GPU nodes %s (no NVIDIA or AMD compute node), named by no CDI spec of theirs", nodes.data);
    chk = add(c, "gpu", false, false, d,
              "give the nodes by path (--device /dev/dri/renderD128), or write a CDI spec for them; "
              "`gpu`/`--gpus` name NVIDIA's devices");
  } else {
    /* the spec must also be usable now: nodes, libraries and hooks present (a driver upgrade leaves it stale) */
    json_t *req = json_pack("[s]", nv ? "nvidia.com/gpu=all" : "amd.com/gpu=all"), *edits = NULL;
    berth_error_t e = NULL;
    struct berth_config *cfg = config_get(NULL);
    bool usable = json_object_get(r.devices, json_string_value(json_array_get(req, 0))) &&
                  cdi_resolve(&r, req, cfg && cfg->rootless, &edits, NULL, &e) == 0;
    if (usable) {
      d = xasprintf("GPUs %s; CDI devices %s%s%s", nodes.data, nv ? nvd : amdd, errs ? "; specs left out: " : "", errs ? errs : "");
      chk = add(c, "gpu", !errs, false, d, "fix or remove the specs left out");
    } else {
      d = xasprintf("GPUs %s, but %s: %s", nodes.data, nv ? "nvidia.com/gpu=all" : "amd.com/gpu=all",
                    e ? e->msg : "is not among the CDI devices");
      fx = nv ? xasprintf("%snvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml", sudo)
              : xasprintf("%samd-ctk cdi generate --output=/etc/cdi/amd.json", sudo);
      g = xasprintf("write the CDI spec again (it goes stale with a driver upgrade): %s", fx);
      chk = add(c, "gpu", false, false, d, g);
    }
    berth_error_free(e);
    json_decref(edits);
    json_decref(req);
  }
  if (fx) set_fix(chk, fx, NULL);
  json_incref(chk);
  json_decref(c);
  buf_free(&nodes);
  cdi_registry_free(&r);
  return chk;
}

static void check_nesting(json_t *c) {
  struct stat st;
  bool in_ctr = stat("/.dockerenv", &st) == 0 || stat("/run/.containerenv", &st) == 0;
  cleanup_free char *map = NULL;
  bool in_userns = false;
  if (read_file("/proc/self/uid_map", 4096, &map, NULL, NULL) == 0) {
    unsigned long a, b, n;
    in_userns = sscanf(map, "%lu %lu %lu", &a, &b, &n) == 3 && !(a == 0 && b == 0 && n == 4294967295UL);
  }
  char d[256];
  snprintf(d, sizeof d, "%s%s", in_ctr ? "running inside a container" : "not inside a container",
           in_userns ? ", inside a user namespace" : "");
  add(c, "nesting", true, false, d, NULL);
}

json_t *preflight_run(void) {
  json_t *checks = json_array();
  berth_error_t e = NULL;
  struct berth_config *cfg = config_get(&e);
  if (!cfg) {
    json_t *r = json_pack("{s:b, s:s, s:o, s:s}", "ready", 0, "runtime", "berth", "checks", checks, "summary", e ? e->msg : "config error");
    berth_error_free(e);
    return r;
  }
  bool rootless = cfg->rootless;
  check_kernel(checks);
  check_userns(checks, rootless);
  check_subids(checks, rootless);
  check_idmap(checks, rootless);
  check_cgroups(checks, rootless);
  check_overlay(checks, rootless, cfg);
  check_seccomp(checks);
  check_network(checks);
  check_disk(checks, cfg);
  check_run_dir(checks, cfg);
  check_disk_limit(checks);
  json_array_append_new(checks, preflight_gpu_check());
  check_nesting(checks);
  bool ready = true;
  int failed = 0, warn = 0;
  size_t i;
  json_t *ch;
  json_array_foreach(checks, i, ch) {
    if (json_is_true(json_object_get(ch, "passed"))) continue;
    if (json_is_true(json_object_get(ch, "required"))) ready = false, failed++;
    else warn++;
  }
  char sum[256];
  snprintf(sum, sizeof sum, "%s: %zu checks, %d required failed, %d optional not met (%s)", ready ? "ready" : "not ready",
           json_array_size(checks), failed, warn, rootless ? "rootless" : "root");
  return json_pack("{s:b, s:s, s:o, s:s}", "ready", ready, "runtime", "berth", "checks", checks, "summary", sum);
}

/* ---------- the verdict cache of creates ----------
 * The checks cost a create a fork for the user namespace probe, NSS for
 * the user name and ~60 system calls, and their answer seldom changes, so
 * a passing verdict is kept in the run dir, keyed by what it rests on: the
 * boot, the uids, the kernel, this berth build, the data and run dirs, the
 * user namespace sysctls, /etc/subuid and /etc/subgid, newuidmap and
 * newgidmap (rootless) and the config files (each file by inode, size,
 * mtime and ctime). A create whose key matches skips the checks; free disk
 * space, which changes by itself, is looked at every time (one statvfs). A
 * failing verdict is never kept (and drops a kept one), and `berth
 * preflight` always runs every check. */

static void key_printf(struct buf *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void key_printf(struct buf *k, const char *fmt, ...) {
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n >= 0) buf_append(k, s, (size_t)n);
  free(s);
}

/* a file's identity; false when it does not exist */
static bool key_file(struct buf *k, const char *path) {
  struct stat st;
  if (stat(path, &st) < 0) {
    key_printf(k, "%s -\n", path);
    return false;
  }
  key_printf(k, "%s %llu:%llu %lld %lld.%09ld %lld.%09ld\n", path, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
             (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
  return true;
}

char *preflight_cache_key(struct berth_config *cfg) {
  cleanup_free char *boot = boot_id();
  if (!boot) return NULL;
  struct utsname u;
  uname(&u);
  struct buf k = {0};
  key_printf(&k, "berth preflight verdict 1\nboot %s\nuid %u euid %u\nkernel %s\nberth %s\n", boot, (unsigned)getuid(), (unsigned)geteuid(),
             u.release, berth_version());
  key_file(&k, "/proc/self/exe");
  key_printf(&k, "data_dir %s\nrun_dir %s\n", cfg->data_dir, cfg->run_dir);
  key_printf(&k, "userns %ld %ld %ld\n", read_long("/proc/sys/user/max_user_namespaces", -1),
             read_long("/proc/sys/kernel/unprivileged_userns_clone", -1),
             read_long("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", -1));
  key_file(&k, "/etc/subuid");
  key_file(&k, "/etc/subgid");
  if (cfg->rootless)
    for (int h = 0; h < 2; h++)
      for (int i = 0; i < 4; i++) {
        cleanup_free char *p = xasprintf("%s/%s", helper_dirs[i], h ? "newgidmap" : "newuidmap");
        if (key_file(&k, p)) break;
      }
  for (int i = 0; i < 2 && cfg->files[i]; i++) key_file(&k, cfg->files[i]);
  buf_append(&k, "", 1);
  return k.data;
}

bool preflight_ready(json_t **report) {
  *report = NULL;
  berth_error_t e = NULL;
  struct berth_config *cfg = config_get(&e);
  berth_error_free(e);
  /* a verdict is kept only in a run dir that is ours alone */
  bool safe_run = cfg && config_run_dir_usable(cfg);
  cleanup_free char *key = safe_run ? preflight_cache_key(cfg) : NULL;
  cleanup_free char *path = safe_run ? xasprintf("%s/preflight-verdict", cfg->run_dir) : NULL;
  if (key) {
    cleanup_free char *have = NULL;
    if (read_file(path, 1 << 16, &have, NULL, NULL) == 0 && !strcmp(have, key) && free_gb(cfg->data_dir) >= 1) {
      berth_debug("preflight: the checks passed before (%s), not run again", path);
      return true;
    }
  }
  json_t *pf = preflight_run();
  if (!json_is_true(json_object_get(pf, "ready"))) {
    if (path) unlink(path);
    *report = pf;
    return false;
  }
  json_decref(pf);
  if (key) {
    if (write_file_atomic(path, key, strlen(key), 0600, NULL) == 0) berth_debug("preflight: the checks passed; verdict kept in %s", path);
  }
  return true;
}
