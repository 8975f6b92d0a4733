/* Host checks. Each failed check carries `guidance`: the exact command or
 * file change that fixes it, with `sudo` where root is needed. Checks that
 * only limit features (cgroup limits, network helpers) are `required:false`
 * and do not make the host "not ready". */
#define _GNU_SOURCE
#include "preflight.h"

#include <errno.h>
#include <fcntl.h>
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

#include "config.h"
#include "digest.h"
#include "userns.h"
#include "util.h"

static void add(json_t *checks, const char *name, bool passed, bool required, const char *detail, const char *guidance) {
  json_t *c = json_pack("{s:s, s:b, s:b, s:s}", "name", name, "passed", passed, "required", required, "detail", detail);
  if (!passed && guidance) json_object_set_new(c, "guidance", json_string(guidance));
  json_array_append_new(checks, c);
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
  const char *g = NULL;
  bool ok = probe;
  if (max == 0) {
    ok = false;
    g = "sudo sysctl -w user.max_user_namespaces=28633 && echo 'user.max_user_namespaces=28633' | sudo tee /etc/sysctl.d/90-berth-userns.conf";
  } else if (clone == 0) {
    ok = false;
    g = "sudo sysctl -w kernel.unprivileged_userns_clone=1 && echo 'kernel.unprivileged_userns_clone=1' | sudo tee /etc/sysctl.d/90-berth-userns.conf";
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
  add(c, "user_namespaces", ok, rootless, d, g);
}

static void check_subids(json_t *c, bool rootless) {
  if (!rootless) {
    add(c, "subordinate_ids", true, false, "running as root: not needed", NULL);
    return;
  }
  struct id_range u, g;
  const char *name = user_name();
  bool hu = subid_lookup("/etc/subuid", name, getuid(), &u) == 0 && u.count >= 65536;
  bool hg = subid_lookup("/etc/subgid", name, getuid(), &g) == 0 && g.count >= 65536;
  char d[256], gd[512];
  snprintf(d, sizeof d, "/etc/subuid: %s; /etc/subgid: %s", hu ? "range of 65536+ ids" : "no range of 65536 ids",
           hg ? "range of 65536+ ids" : "no range of 65536 ids");
  snprintf(gd, sizeof gd, "sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s (pick a range no other user has)", name);
  add(c, "subordinate_ids", hu && hg, true, d, gd);
}

static bool helper_ok(const char *name, char *path, size_t pl) {
  const char *dirs[] = {"/usr/bin", "/bin", "/usr/sbin", "/usr/local/bin"};
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
  char d[600];
  const char *gd;
  if (!*pu || !*pg) {
    snprintf(d, sizeof d, "newuidmap/newgidmap not installed");
    gd = "sudo apt-get install uidmap";
  } else {
    snprintf(d, sizeof d, "%s %s, %s %s", pu, u ? "setuid" : "lacks setuid/file caps", pg, g ? "setuid" : "lacks setuid/file caps");
    gd = "sudo chmod u+s /usr/bin/newuidmap /usr/bin/newgidmap (or: sudo setcap cap_setuid+ep /usr/bin/newuidmap; sudo setcap cap_setgid+ep /usr/bin/newgidmap)";
  }
  add(c, "newuidmap", u && g, rootless, d, gd);
}

static void check_cgroups(json_t *c, bool rootless) {
  struct stat st;
  bool v2 = stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
  char d[512];
  if (!v2) {
    bool hybrid = stat("/sys/fs/cgroup/unified/cgroup.controllers", &st) == 0;
    bool writable = access("/sys/fs/cgroup/memory", W_OK) == 0 && access("/sys/fs/cgroup/pids", W_OK) == 0;
    snprintf(d, sizeof d, "cgroup v1%s: memory, pids and cpu limits %s", hybrid ? " (hybrid)" : "",
             !rootless && writable ? "apply" : "cannot be applied for this user (v1 has no delegation); containers run without them");
    add(c, "cgroups", !rootless && writable, false, d,
        "boot with cgroup v2 for rootless limits: sudo sed -i 's/GRUB_CMDLINE_LINUX=\"/GRUB_CMDLINE_LINUX=\"systemd.unified_cgroup_hierarchy=1 /' "
        "/etc/default/grub && sudo update-grub && sudo reboot");
    return;
  }
  cleanup_free char *own = NULL;
  cleanup_free char *cg = NULL;
  if (read_file("/proc/self/cgroup", 4096, &cg, NULL, NULL) == 0) {
    char *p = strstr(cg, "0::");
    if (p) {
      p += 3;
      own = strndup(p, strcspn(p, "\n"));
    }
  }
  cleanup_free char *dir = xasprintf("/sys/fs/cgroup%s", own && strcmp(own, "/") ? own : "");
  cleanup_free char *ctl = NULL;
  cleanup_free char *cf = xasprintf("%s/cgroup.controllers", dir);
  read_file(cf, 4096, &ctl, NULL, NULL);
  bool has = ctl && strstr(ctl, "memory") && strstr(ctl, "pids") && strstr(ctl, "cpu");
  bool w = access(dir, W_OK) == 0;
  snprintf(d, sizeof d, "cgroup v2 at %s: controllers [%s]%s", dir, ctl ? strtok(ctl, "\n") : "none",
           w ? "" : "; not writable by this user");
  cleanup_free char *g = xasprintf(
      "delegate memory, pids and cpu to the user: sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' "
      "| sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload, then log in again; "
      "or run berth in a delegated scope: systemd-run --user --scope -p Delegate=yes berth ...");
  add(c, "cgroups", has && w, false, d, g);
}

/* Probe an overlay mount the way containers use it (in a user namespace
 * when rootless); cached per kernel in the run dir. */
static void check_overlay(json_t *c, bool rootless, struct berth_config *cfg) {
  struct utsname u;
  uname(&u);
  /* cached per kernel and data dir (the store's filesystem decides) */
  char dd[72];
  digest_of(cfg->data_dir, strlen(cfg->data_dir), dd);
  cleanup_free char *cache = xasprintf("%s/overlay-probe-%s-%.12s", cfg->run_dir, u.release, dd + 7);
  cleanup_free char *cached = NULL;
  if (read_file(cache, 256, &cached, NULL, NULL) == 0 && (cached[0] == '1' || cached[0] == '0')) {
    bool ok = cached[0] == '1';
    add(c, "overlay", ok, false, ok ? "overlayfs mounts (cached probe)" :
        "overlayfs cannot be mounted here (cached probe): containers get a copied root filesystem (slower, more disk)",
        "sudo modprobe overlay; rootless needs Linux 5.11+ and a store on a filesystem with user xattrs (ext4, xfs, btrfs, tmpfs 6.6+)");
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
  pid_t p = fork();
  if (p == 0) {
    if (rootless) {
      uid_t uid = getuid();
      gid_t gid = getgid();
      if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) _exit(2);
      char m[64];
      snprintf(m, sizeof m, "0 %u 1", (unsigned)uid);
      int fd = open("/proc/self/setgroups", O_WRONLY);
      if (fd >= 0) { if (write(fd, "deny", 4) < 0) {} close(fd); }
      fd = open("/proc/self/uid_map", O_WRONLY);
      if (fd < 0 || write(fd, m, strlen(m)) < 0) _exit(3);
      close(fd);
      snprintf(m, sizeof m, "0 %u 1", (unsigned)gid);
      fd = open("/proc/self/gid_map", O_WRONLY);
      if (fd < 0 || write(fd, m, strlen(m)) < 0) _exit(3);
      close(fd);
    } else if (unshare(CLONE_NEWNS) < 0)
      _exit(2);
    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    cleanup_free char *opt = xasprintf("lowerdir=%s/l,upperdir=%s/u,workdir=%s/w%s", dir, dir, dir, rootless ? ",userxattr" : "");
    cleanup_free char *m = xasprintf("%s/m", dir);
    _exit(mount("overlay", m, "overlay", 0, opt) == 0 ? 0 : 1);
  }
  int st = 0;
  if (p > 0) waitpid(p, &st, 0);
  bool ok = p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  rm_rf(dir, NULL);
  mkdir_p(cfg->run_dir, 0700, NULL);
  write_file_atomic(cache, ok ? "1" : "0", 1, 0600, NULL);
  char d[512];
  snprintf(d, sizeof d, "overlayfs %s%s (probe under %s)%s", ok ? "mounts" : "cannot be mounted", rootless ? " in a user namespace" : "",
           base, ok ? "" : ": containers get a copied root filesystem (slower, more disk)");
  add(c, "overlay", ok, false, d,
      "sudo modprobe overlay; rootless needs Linux 5.11+ and a store on a filesystem with user xattrs (ext4, xfs, btrfs, tmpfs 6.6+); "
      "set `data_dir` in ~/.config/berth/config.json to such a filesystem");
}

static void check_seccomp(json_t *c) {
  cleanup_free char *s = NULL;
  bool ok = read_file("/proc/self/status", 1 << 16, &s, NULL, NULL) == 0 && strstr(s, "Seccomp:");
  ok = ok && prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
  add(c, "seccomp", ok, true, ok ? "seccomp filters available" : "the kernel has no seccomp filter support",
      "use a kernel built with CONFIG_SECCOMP_FILTER=y (every distribution kernel is)");
}

static void check_network(json_t *c) {
  char p1[256], p2[256];
  bool pasta = false, slirp = false;
  const char *dirs[] = {"/usr/bin", "/usr/local/bin", "/bin"};
  for (int i = 0; i < 3; i++) {
    snprintf(p1, sizeof p1, "%s/pasta", dirs[i]);
    snprintf(p2, sizeof p2, "%s/slirp4netns", dirs[i]);
    pasta |= access(p1, X_OK) == 0;
    slirp |= access(p2, X_OK) == 0;
  }
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  bool tun = fd >= 0;
  if (fd >= 0) close(fd);
  char d[256];
  snprintf(d, sizeof d, "pasta %s, slirp4netns %s, /dev/net/tun %s (needed for the bridge network, not for none/host)",
           pasta ? "found" : "missing", slirp ? "found" : "missing", tun ? "usable" : "not usable");
  add(c, "network_helper", (pasta || slirp) && tun, false, d,
      !tun ? "sudo modprobe tun && sudo chmod 0666 /dev/net/tun" : "sudo apt-get install passt (or slirp4netns)");
}

static void check_disk(json_t *c, struct berth_config *cfg) {
  const char *p = cfg->data_dir;
  cleanup_free char *probe = strdup(p);
  struct statvfs sv;
  while (statvfs(probe, &sv) < 0) {
    char *s = strrchr(probe, '/');
    if (!s || s == probe) {
      strcpy(probe, "/");
      statvfs(probe, &sv);
      break;
    }
    *s = '\0';
  }
  double gb = (double)sv.f_bavail * (double)sv.f_frsize / 1e9;
  char d[256];
  snprintf(d, sizeof d, "%.1fGB free at %s%s", gb, p, gb < 1 ? "" : gb < 5 ? " (low, consider pruning)" : "");
  cleanup_free char *g = xasprintf("free space under %s: `berth rm --all --confirm`, `berth rmi` unused images, or set `data_dir` "
                                   "in berth's config to a larger filesystem", p);
  add(c, "disk_space", gb >= 1, true, d, g);
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
