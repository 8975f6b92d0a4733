/* The bundle runtime's container process: from config.json to exec.
 *
 *   wait OCI_SYNC_CGROUP ─▶ [userns root] ─▶ unshare cgroup ns ─▶ rootfs:
 *   propagation, bind, mounts in order, devices, /dev links,
 *   createContainer hooks, masked/read-only paths ─▶ pivot_root ─▶ sysctl,
 *   hostname, rlimits, oom_score_adj, terminal ─▶ OCI_SYNC_CREATED ─▶
 *   open exec.fifo (blocks until `start`) ─▶ startContainer hooks ─▶
 *   oci_process_exec: user, capabilities, no_new_privs, seccomp, exec.
 *
 * Every mount target is resolved inside the root (rootfs.c), so a symlink
 * in the bundle cannot send a mount onto the host. */
#define _GNU_SOURCE
#include "runtime/oci.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <pty.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include "runtime/hooks.h"
#include "runtime/process.h"
#include "runtime/rootfs.h"
#include "util/security.h"

/* ---------- the sync socket ---------- */
int oci_sync_send(int fd, enum oci_sync_type t, int32_t value, const char *text) {
  struct oci_sync_msg m = {.type = t, .value = value};
  size_t len = offsetof(struct oci_sync_msg, text);
  if (text) {
    snprintf(m.text, sizeof m.text, "%s", text);
    len += strlen(m.text) + 1;
  }
  ssize_t n;
  do n = send(fd, &m, len, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n == (ssize_t)len ? 0 : -1;
}

int oci_sync_recv(int fd, struct oci_sync_msg *m) {
  memset(m, 0, sizeof *m);
  ssize_t n;
  do n = recv(fd, m, sizeof *m, 0);
  while (n < 0 && errno == EINTR);
  if (n < (ssize_t)offsetof(struct oci_sync_msg, text)) return -1;
  m->text[sizeof m->text - 1] = '\0';
  return 0;
}

static __attribute__((noreturn)) void die_sync(int fd, berth_error_t err) {
  const char *msg = err && err->msg ? err->msg : "container setup failed";
  if (fd < 0 || oci_sync_send(fd, OCI_SYNC_ERROR, err ? err->status : 0, msg) < 0) dprintf(2, "berth-oci: %s\n", msg);
  _exit(127);
}

/* ---------- capabilities ---------- */
static const char *const CAPS[] = {"CAP_CHOWN",
                                   "CAP_DAC_OVERRIDE",
                                   "CAP_DAC_READ_SEARCH",
                                   "CAP_FOWNER",
                                   "CAP_FSETID",
                                   "CAP_KILL",
                                   "CAP_SETGID",
                                   "CAP_SETUID",
                                   "CAP_SETPCAP",
                                   "CAP_LINUX_IMMUTABLE",
                                   "CAP_NET_BIND_SERVICE",
                                   "CAP_NET_BROADCAST",
                                   "CAP_NET_ADMIN",
                                   "CAP_NET_RAW",
                                   "CAP_IPC_LOCK",
                                   "CAP_IPC_OWNER",
                                   "CAP_SYS_MODULE",
                                   "CAP_SYS_RAWIO",
                                   "CAP_SYS_CHROOT",
                                   "CAP_SYS_PTRACE",
                                   "CAP_SYS_PACCT",
                                   "CAP_SYS_ADMIN",
                                   "CAP_SYS_BOOT",
                                   "CAP_SYS_NICE",
                                   "CAP_SYS_RESOURCE",
                                   "CAP_SYS_TIME",
                                   "CAP_SYS_TTY_CONFIG",
                                   "CAP_MKNOD",
                                   "CAP_LEASE",
                                   "CAP_AUDIT_WRITE",
                                   "CAP_AUDIT_CONTROL",
                                   "CAP_SETFCAP",
                                   "CAP_MAC_OVERRIDE",
                                   "CAP_MAC_ADMIN",
                                   "CAP_SYSLOG",
                                   "CAP_WAKE_ALARM",
                                   "CAP_BLOCK_SUSPEND",
                                   "CAP_AUDIT_READ",
                                   "CAP_PERFMON",
                                   "CAP_BPF",
                                   "CAP_CHECKPOINT_RESTORE"};

const char *oci_cap_name(int n) { return n >= 0 && n < (int)(sizeof CAPS / sizeof *CAPS) ? CAPS[n] : NULL; }

int oci_cap_number(const char *name) {
  if (!name) return -1;
  for (size_t i = 0; i < sizeof CAPS / sizeof *CAPS; i++)
    if (!strcasecmp(name, CAPS[i]) || !strcasecmp(name, CAPS[i] + 4)) return (int)i;
  return -1;
}

/* a capability list -> mask; an unknown name is an error, one this
 * kernel lacks is left out (runc and crun warn the same way) */
static int cap_mask(json_t *list, const char *set, uint64_t *out, berth_error_t *err) {
  *out = 0;
  size_t i;
  json_t *v;
  json_array_foreach(list, i, v) {
    int c = oci_cap_number(json_string_value(v));
    if (c < 0) return berth_error(err, -EINVAL, "process.capabilities.%s: unknown capability `%.60s`", set, json_string_value(v) ?: "?");
    if (c <= security_last_cap()) *out |= 1ULL << c;
  }
  return 0;
}

struct caps {
  bool given;
  uint64_t bounding, effective, permitted, inheritable, ambient;
};

static int caps_parse(json_t *c, struct caps *out, berth_error_t *err) {
  memset(out, 0, sizeof *out);
  if (!json_is_object(c)) return 0; /* none given: the process keeps none (below) */
  out->given = true;
  if (cap_mask(json_object_get(c, "bounding"), "bounding", &out->bounding, err) < 0 ||
      cap_mask(json_object_get(c, "effective"), "effective", &out->effective, err) < 0 ||
      cap_mask(json_object_get(c, "permitted"), "permitted", &out->permitted, err) < 0 ||
      cap_mask(json_object_get(c, "inheritable"), "inheritable", &out->inheritable, err) < 0 ||
      cap_mask(json_object_get(c, "ambient"), "ambient", &out->ambient, err) < 0)
    return -1;
  return 0;
}

static int caps_bounding(const struct caps *c, berth_error_t *err) {
  for (int i = 0; i <= security_last_cap(); i++) {
    if (c->bounding & (1ULL << i)) continue;
    if (prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0 && errno != EINVAL)
      return berth_error(err, errno, "drop capability %s from the bounding set", i < (int)(sizeof CAPS / sizeof *CAPS) ? CAPS[i] : "?");
  }
  return 0;
}

static int caps_set(const struct caps *c, berth_error_t *err) {
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[2] = {
      {.effective = (uint32_t)c->effective, .permitted = (uint32_t)c->permitted, .inheritable = (uint32_t)c->inheritable},
      {.effective = (uint32_t)(c->effective >> 32),
       .permitted = (uint32_t)(c->permitted >> 32),
       .inheritable = (uint32_t)(c->inheritable >> 32)}};
  if (syscall(SYS_capset, &h, d) < 0) return berth_error(err, errno, "set the process's capabilities");
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  for (int i = 0; i <= security_last_cap(); i++)
    if ((c->ambient & (1ULL << i)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i, 0, 0) < 0 && errno != EPERM)
      return berth_error(err, errno, "raise ambient capability %s", CAPS[i]);
  return 0;
}

/* ---------- seccomp ---------- */
/* compiled while the host's libseccomp is in view (before pivot_root or
 * setns into the container's mounts), loaded at the end */
static void *seccomp_ctx;

int oci_seccomp_prepare(json_t *seccomp, berth_error_t *err) {
  if (!json_is_object(seccomp) || seccomp_ctx) return 0;
  if (lazylib_require_seccomp(err) < 0 || security_seccomp_compile(seccomp, &seccomp_ctx, err) < 0)
    return berth_error_wrap(err, "linux.seccomp");
  return 0;
}

int oci_seccomp_apply(json_t *seccomp, berth_error_t *err) {
  if (!json_is_object(seccomp)) return 0;
  if (oci_seccomp_prepare(seccomp, err) < 0) return -1;
  /* libseccomp sets no_new_privs itself unless told not to: the process's
   * noNewPrivileges decides (without it, loading needs CAP_SYS_ADMIN) */
  seccomp_attr_set((scmp_filter_ctx)seccomp_ctx, SCMP_FLTATR_CTL_NNP, 0);
  int r = seccomp_load((scmp_filter_ctx)seccomp_ctx);
  if (r < 0) return berth_error(err, -r, "load the seccomp filter of linux.seccomp");
  return 0;
}

static bool spec_has_ns(json_t *spec, const char *type) {
  size_t i;
  json_t *ns;
  json_array_foreach(json_object_get(json_object_get(spec, "linux"), "namespaces"), i,
                     ns) if (!strcmp(jstr(ns, "type") ?: "", type)) return true;
  return false;
}

/* a namespace of this type to be made (not joined by path) */
static bool spec_new_ns(json_t *spec, const char *type) {
  size_t i;
  json_t *ns;
  json_array_foreach(json_object_get(json_object_get(spec, "linux"), "namespaces"), i,
                     ns) if (!strcmp(jstr(ns, "type") ?: "", type)) return !(jstr(ns, "path") && *jstr(ns, "path"));
  return false;
}

static int setup_rootfs(struct oci_init *in, berth_error_t *err) {
  json_t *linux_ = json_object_get(in->spec, "linux");
  bool ok;
  rootfs_propagation(jstr(linux_, "rootfsPropagation"), &ok);
  if (!ok)
    return berth_error(err, -EINVAL, "linux.rootfsPropagation `%s`: use shared, slave, private or unbindable (r-prefixed too)",
                       jstr(linux_, "rootfsPropagation"));
  /* never let a mount made here travel back to the host: everything is a
   * slave first (which pivot_root also needs); the propagation the config
   * asks for is applied to the new root after the pivot */
  if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0) return berth_error(err, errno, "make the mounts private to the container");
  if (mount(in->rootfs, in->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) return berth_error(err, errno, "bind the root %s", in->rootfs);
  cleanup_close int rootfd = open(in->rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return berth_error(err, errno, "open the root %s", in->rootfs);
  berth_trace("oci-init: go");
  struct rootfs_spec rs = {.spec = in->spec, .bundle = in->bundle, .own_cgroups = in->own_cgroups, .in_userns = in->in_userns};
  if (rootfs_spec_mounts(&rs, rootfd, err) < 0) return -1;
  berth_trace("oci-init: mounts");
  if (rootfs_spec_devices(&rs, rootfd, err) < 0) return -1;
  berth_trace("oci-init: devices");
  if (hooks_any(in->spec, "createContainer")) {
    cleanup_free char *st = hooks_state(in->spec, in->id, "created", getpid(), in->bundle);
    if (hooks_run(in->spec, "createContainer", st, 0, err) < 0) return -1;
  }
  if (fchdir(rootfd) < 0) return berth_error(err, errno, "enter the root");
  if (in->no_pivot) {
    if (mount(".", "/", NULL, MS_MOVE, NULL) < 0) return berth_error(err, errno, "move the root (--no-pivot)");
    if (chroot(".") < 0) return berth_error(err, errno, "chroot (--no-pivot)");
  } else {
    if (syscall(SYS_pivot_root, ".", ".") < 0) return berth_error(err, errno, "pivot_root into %s", in->rootfs);
    /* the old root is stacked under the new one: slave it (no unmount
     * event reaches the host) and detach it */
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) return berth_error(err, errno, "slave the old root");
    if (umount2(".", MNT_DETACH) < 0) return berth_error(err, errno, "detach the old root");
  }
  if (chdir("/") < 0) return berth_error(err, errno, "chdir /");
  berth_trace("oci-init: pivoted");
  return 0;
}

/* after the sysctls are written (as runc orders it): masked and read-only
 * paths, the read-only root, the root's propagation */
static int finish_rootfs(struct oci_init *in, berth_error_t *err) {
  json_t *linux_ = json_object_get(in->spec, "linux");
  cleanup_close int rootfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return berth_error(err, errno, "open the root");
  if (rootfs_mask_and_readonly(rootfd, linux_, err) < 0) return -1;
  bool ok;
  unsigned long prop = rootfs_propagation(jstr(linux_, "rootfsPropagation"), &ok);
  if (json_is_true(json_object_get(json_object_get(in->spec, "root"), "readonly"))) {
    if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | rootfs_locked_flags("/"), NULL) < 0)
      return berth_error(err, errno, "make the root read-only (root.readonly)");
  }
  if (jstr(linux_, "rootfsPropagation") && mount(NULL, "/", NULL, prop, NULL) < 0)
    return berth_error(err, errno, "linux.rootfsPropagation %s", jstr(linux_, "rootfsPropagation"));
  return 0;
}

/* ---------- the rest of the container's settings ---------- */
static int write_sysctls(json_t *sysctl, berth_error_t *err) {
  const char *k;
  json_t *v;
  json_object_foreach(sysctl, k, v) {
    if (!json_is_string(v) || !*k || strstr(k, "..") || k[0] == '/' || strchr(k, '\0') == k)
      return berth_error(err, -EINVAL, "linux.sysctl `%.80s`: needs a name like net.ipv4.ip_forward and a string value", k);
    cleanup_free char *path = xasprintf("/proc/sys/%s", k);
    for (char *c = path + 10; *c; c++)
      if (*c == '.') *c = '/';
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return berth_error(err, errno, "linux.sysctl %s", k);
    const char *s = json_string_value(v);
    ssize_t n = write(fd, s, strlen(s));
    int e = errno;
    close(fd);
    if (n < 0) return berth_error(err, e, "linux.sysctl %s = %s", k, s);
  }
  return 0;
}

static const struct {
  const char *name;
  int res;
} RLIMITS[] = {{"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_CPU", RLIMIT_CPU},
               {"RLIMIT_DATA", RLIMIT_DATA},       {"RLIMIT_FSIZE", RLIMIT_FSIZE},       {"RLIMIT_LOCKS", RLIMIT_LOCKS},
               {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
               {"RLIMIT_NOFILE", RLIMIT_NOFILE},   {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_RSS", RLIMIT_RSS},
               {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
               {"RLIMIT_STACK", RLIMIT_STACK}};

static int set_rlimits(json_t *list, berth_error_t *err) {
  size_t i;
  json_t *r;
  json_array_foreach(list, i, r) {
    const char *t = jstr(r, "type");
    int res = -1;
    for (size_t k = 0; k < sizeof RLIMITS / sizeof *RLIMITS; k++)
      if (t && !strcmp(t, RLIMITS[k].name)) res = RLIMITS[k].res;
    if (res < 0) return berth_error(err, -EINVAL, "process.rlimits[%zu]: unknown type `%.40s`", i, t ?: "");
    json_t *soft = json_object_get(r, "soft"), *hard = json_object_get(r, "hard");
    struct rlimit rl = {.rlim_cur = (rlim_t)json_integer_value(soft), .rlim_max = (rlim_t)json_integer_value(hard)};
    /* 2^64-1 does not fit jansson's integer: it arrives as a real */
    if (json_is_real(soft) || json_integer_value(soft) < 0) rl.rlim_cur = RLIM_INFINITY;
    if (json_is_real(hard) || json_integer_value(hard) < 0) rl.rlim_max = RLIM_INFINITY;
    if (setrlimit(res, &rl) < 0)
      return berth_error(err, errno, "process.rlimits %s (soft %llu, hard %llu)", t, (unsigned long long)rl.rlim_cur,
                         (unsigned long long)rl.rlim_max);
  }
  return 0;
}

int oci_process_validate(json_t *process, berth_error_t *err) {
  struct caps c;
  if (caps_parse(json_object_get(process, "capabilities"), &c, err) < 0) return -1;
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(process, "rlimits"), i, r) {
    const char *t = jstr(r, "type");
    bool known = false;
    for (size_t k = 0; k < sizeof RLIMITS / sizeof *RLIMITS; k++)
      if (t && !strcmp(t, RLIMITS[k].name)) known = true;
    if (!known) return berth_error(err, -EINVAL, "process.rlimits[%zu]: unknown type `%.40s`", i, t ?: "");
    json_t *soft = json_object_get(r, "soft"), *hard = json_object_get(r, "hard");
    if (json_is_integer(soft) && json_is_integer(hard) && json_integer_value(soft) >= 0 && json_integer_value(hard) >= 0 &&
        json_integer_value(soft) > json_integer_value(hard))
      return berth_error(err, -EINVAL, "process.rlimits[%zu] (%s): soft %lld is above hard %lld", i, t, (long long)json_integer_value(soft),
                         (long long)json_integer_value(hard));
  }
  return 0;
}

/* the pty for process.terminal: master to the console socket, slave our stdio */
static int setup_terminal(json_t *process, int console_fd, berth_error_t *err) {
  if (console_fd < 0)
    return berth_error(err, -EINVAL, "process.terminal is true: give --console-socket (a unix socket that receives the pty's master)");
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return berth_error(err, errno, "open /dev/ptmx (is /dev/pts mounted with newinstance?)");
  if (unlockpt(master) < 0) return close(master), berth_error(err, errno, "unlock the pty");
  char name[128];
  if (ptsname_r(master, name, sizeof name) != 0) return close(master), berth_error(err, errno, "name the pty");
  json_t *sz = json_object_get(process, "consoleSize");
  if (sz) {
    struct winsize ws = {.ws_row = (unsigned short)json_integer_value(json_object_get(sz, "height")),
                         .ws_col = (unsigned short)json_integer_value(json_object_get(sz, "width"))};
    ioctl(master, TIOCSWINSZ, &ws);
  }
  int slave = open(name, O_RDWR | O_NOCTTY);
  if (slave < 0) return close(master), berth_error(err, errno, "open %s", name);
  char cbuf[CMSG_SPACE(sizeof(int))];
  memset(cbuf, 0, sizeof cbuf);
  struct iovec iov = {.iov_base = name, .iov_len = strlen(name)};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &master, sizeof(int));
  ssize_t n;
  do n = sendmsg(console_fd, &mh, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  int e = errno;
  close(master);
  if (n < 0) return close(slave), berth_error(err, e, "send the pty to the console socket");
  setsid();
  if (ioctl(slave, TIOCSCTTY, 0) < 0) return close(slave), berth_error(err, errno, "make the pty the controlling terminal");
  dup2(slave, 0), dup2(slave, 1), dup2(slave, 2);
  if (slave > 2) close(slave);
  return 0;
}

/* the program, found on the process's own PATH (as execvpe would, but
 * checked before `created` is reported, so a missing one fails create) */
static char *find_program(const char *arg0, json_t *env) {
  if (!arg0 || !*arg0) return NULL;
  if (strchr(arg0, '/')) return access(arg0, X_OK) == 0 ? xstrdup(arg0) : NULL;
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t i;
  json_t *v;
  json_array_foreach(env, i, v) if (str_has_prefix(json_string_value(v) ?: "", "PATH=")) path = json_string_value(v) + 5;
  cleanup_free char *copy = xstrdup(path);
  for (char *save = NULL, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    char *c = xasprintf("%s/%s", *d ? d : ".", arg0);
    struct stat st;
    if (stat(c, &st) == 0 && S_ISREG(st.st_mode) && access(c, X_OK) == 0) return c;
    free(c);
  }
  return NULL;
}

static int apparmor_apply(const char *profile, berth_error_t *err) {
  if (!profile || !*profile) return 0;
  char en[4] = "";
  int fd = open("/sys/module/apparmor/parameters/enabled", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (read(fd, en, 1) < 0) en[0] = 0;
    close(fd);
  }
  if (en[0] != 'Y')
    return berth_error(err, -ENOTSUP,
                       "process.apparmorProfile `%s`: AppArmor is not enabled on this host; drop the profile or enable AppArmor", profile);
  cleanup_free char *cmd = xasprintf("exec %s", profile);
  fd = open("/proc/self/attr/apparmor/exec", O_WRONLY | O_CLOEXEC);
  if (fd < 0) fd = open("/proc/self/attr/exec", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return berth_error(err, errno, "process.apparmorProfile");
  ssize_t n = write(fd, cmd, strlen(cmd));
  int e = errno;
  close(fd);
  return n < 0 ? berth_error(err, e, "process.apparmorProfile `%s`", profile) : 0;
}

/* user, capabilities, no_new_privs, seccomp, cwd, env, exec: shared by the
 * container's first process and `exec` */
static int process_prepare(json_t *process, json_t *spec, char **prog, berth_error_t *err) {
  json_t *user = json_object_get(process, "user");
  json_t *env = json_object_get(process, "env");
  json_t *args = json_object_get(process, "args");
  if (!json_array_size(args) || !json_is_string(json_array_get(args, 0)))
    return berth_error(err, -EINVAL, "process.args: needs at least the program");
  const char *cwd = jstr(process, "cwd");
  if (!cwd || cwd[0] != '/') return berth_error(err, -EINVAL, "process.cwd `%s` must be an absolute path", cwd ?: "");
  if (set_rlimits(json_object_get(process, "rlimits"), err) < 0) return -1;
  struct caps caps;
  if (caps_parse(json_object_get(process, "capabilities"), &caps, err) < 0) return -1;
  uid_t uid = (uid_t)json_integer_value(json_object_get(user, "uid"));
  gid_t gid = (gid_t)json_integer_value(json_object_get(user, "gid"));
  if (json_object_get(user, "umask")) umask((mode_t)json_integer_value(json_object_get(user, "umask")) & 0777);
  size_t ng = json_array_size(json_object_get(user, "additionalGids"));
  gid_t gids[128];
  if (ng > 128) return berth_error(err, -EINVAL, "process.user.additionalGids: at most 128");
  for (size_t i = 0; i < ng; i++) gids[i] = (gid_t)json_integer_value(json_array_get(json_object_get(user, "additionalGids"), i));
  if (chdir(cwd) < 0) {
    /* it may be readable only by the user: tried again once we are the user */
    if (errno != EACCES) return berth_error(err, errno, "process.cwd %s", cwd);
  }
  bool nnp = json_is_true(json_object_get(process, "noNewPrivileges"));
  json_t *seccomp = json_object_get(json_object_get(spec, "linux"), "seccomp");
  /* without no_new_privs the filter needs CAP_SYS_ADMIN: load it while we have it */
  if (!nnp && seccomp && oci_seccomp_apply(seccomp, err) < 0) return -1;
  if (apparmor_apply(jstr(process, "apparmorProfile"), err) < 0) return -1;
  /* a label asked for on a host that enforces SELinux cannot be honoured:
   * refused rather than run unconfined */
  const char *label = jstr(process, "selinuxLabel");
  if (label && *label && access("/sys/fs/selinux/enforce", F_OK) == 0)
    return berth_error(err, -ENOTSUP,
                       "process.selinuxLabel `%s`: berth-oci does not apply SELinux labels; run this container with runc or crun", label);
  if (caps_bounding(&caps, err) < 0) return -1;
  /* the capabilities survive the uid change: caps_set makes the process's own */
  if (process_set_ids(uid, gid, gids, ng, true, true, "process.user", NULL, err) < 0) return -1;
  if (caps_set(&caps, err) < 0) return -1;
  /* inside the container's root (CVE-2024-21626: a cwd through a leaked fd) */
  if (process_enter_cwd(cwd, err) < 0) return berth_error_wrap(err, "process.cwd");
  /* the environment the program gets, and the PATH it is found on */
  clearenv();
  size_t i;
  json_t *v;
  json_array_foreach(env, i, v) if (json_is_string(v) && strchr(json_string_value(v), '=')) putenv((char *)json_string_value(v));
  *prog = find_program(json_string_value(json_array_get(args, 0)), env);
  if (!*prog)
    return berth_error(err, -ENOENT, "process.args[0] `%s`: no such executable in the container (PATH searched)",
                       json_string_value(json_array_get(args, 0)));
  if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return berth_error(err, errno, "no_new_privs");
  if (nnp && seccomp && oci_seccomp_apply(seccomp, err) < 0) return -1;
  return 0;
}

static void exec_prog(const char *prog, json_t *process) {
  json_t *args = json_object_get(process, "args");
  size_t n = json_array_size(args);
  char **argv = calloc(n + 1, sizeof *argv);
  if (!argv) _exit(127);
  for (size_t i = 0; i < n; i++) argv[i] = (char *)(json_string_value(json_array_get(args, i)) ?: "");
  execv(prog, argv);
}

void oci_process_exec(json_t *process, json_t *spec, int console_fd, int report_fd, int preserve_fds, bool new_session) {
  berth_error_t err = NULL;
  char *prog = NULL;
  if (new_session && !json_is_true(json_object_get(process, "terminal"))) setsid();
  if (json_is_true(json_object_get(process, "terminal")) && setup_terminal(process, console_fd, &err) < 0) goto fail;
  if (console_fd >= 0) close(console_fd);
  if (process_prepare(process, spec, &prog, &err) < 0) goto fail;
  /* nothing of the runtime's survives the exec: only 0-2 and the fds the
   * caller asked to pass on (--preserve-fds) */
  syscall(SYS_close_range, (unsigned)(3 + (preserve_fds > 0 ? preserve_fds : 0)), ~0U, CLOSE_RANGE_CLOEXEC);
  /* the program starts with every signal at its default and none blocked:
   * an ignored SIGCHLD inherited from the engine (the exec keeps ignored
   * ones) would make every wait() of its shell fail with ECHILD */
  process_reset_signals();
  berth_trace("oci-init: exec");
  if (report_fd >= 0) fcntl(report_fd, F_SETFD, FD_CLOEXEC);
  exec_prog(prog, process);
  berth_error(&err, errno, "exec %s", prog);
fail:
  if (report_fd >= 0) {
    if (write(report_fd, err->msg, strlen(err->msg)) < 0) {}
  } else dprintf(2, "berth-oci: %s\n", err->msg);
  _exit(127);
}

void oci_init_main(struct oci_init *in) {
  berth_error_t err = NULL;
  int proc_fd = -1;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  setsid(); /* as runc: the container's first process leads its own session */
  struct oci_sync_msg m;
  if (oci_sync_recv(in->sync_fd, &m) < 0 || m.type != OCI_SYNC_CGROUP) _exit(127);
  /* into the cgroup made for us, by ourselves: a v1 `tasks` write of "0"
   * skips the global lock that moving another process takes; the runtime
   * moves us when we cannot (an empty list, or ids that do not own it) */
  bool moved = m.text[0] != '\0';
  for (char *save = NULL, *f = strtok_r(m.text, "\n", &save); f && moved; f = strtok_r(NULL, "\n", &save))
    if (write_value(f, "0") < 0) moved = false;
  if (oci_sync_send(in->sync_fd, OCI_SYNC_HOOKS, moved ? 0 : 1, NULL) < 0) _exit(127);
  if (oci_sync_recv(in->sync_fd, &m) < 0 || m.type != OCI_SYNC_CGROUP) _exit(127);
  if (in->new_userns && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
    die_sync(in->sync_fd, (berth_error(&err, errno, "become root in the container's user namespace (are uid 0 and gid 0 mapped?)"), err));
  /* our cgroups as the host names them, for the cgroup mounts below */
  read_file("/proc/self/cgroup", 65536, &in->own_cgroups, NULL, NULL);
  /* after the runtime placed us: the namespace's root is our cgroup */
  if (spec_new_ns(in->spec, "cgroup") && unshare(CLONE_NEWCGROUP) < 0)
    die_sync(in->sync_fd, (berth_error(&err, errno, "unshare the cgroup namespace"), err));
  json_t *linux_ = json_object_get(in->spec, "linux");
  if (oci_seccomp_prepare(json_object_get(linux_, "seccomp"), &err) < 0) die_sync(in->sync_fd, err);
  if (spec_has_ns(in->spec, "mount")) {
    if (setup_rootfs(in, &err) < 0) die_sync(in->sync_fd, err);
  } else {
    /* no mount namespace: the runtime's own is shared, so berth mounts
     * nothing in it (it would be the host's); the root is only chrooted.
     * The start fifo is reopened through the /proc seen before (closed
     * before the exec) */
    proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (chroot(in->rootfs) < 0 || chdir("/") < 0) die_sync(in->sync_fd, (berth_error(&err, errno, "chroot %s", in->rootfs), err));
  }
  if (write_sysctls(json_object_get(linux_, "sysctl"), &err) < 0) die_sync(in->sync_fd, err);
  if (spec_has_ns(in->spec, "mount") && finish_rootfs(in, &err) < 0) die_sync(in->sync_fd, err);
  berth_trace("oci-init: masked and read-only paths");
  const char *hn = jstr(in->spec, "hostname");
  if (hn && *hn) {
    if (!spec_has_ns(in->spec, "uts"))
      die_sync(in->sync_fd, (berth_error(&err, -EINVAL, "hostname `%s` needs a uts namespace in linux.namespaces", hn), err));
    if (sethostname(hn, strlen(hn)) < 0) die_sync(in->sync_fd, (berth_error(&err, errno, "set hostname"), err));
  }
  const char *dn = jstr(in->spec, "domainname");
  if (dn && *dn && setdomainname(dn, strlen(dn)) < 0) die_sync(in->sync_fd, (berth_error(&err, errno, "set domainname"), err));
  json_t *process = json_object_get(in->spec, "process");
  json_t *osa = json_object_get(process, "oomScoreAdj");
  if (osa) {
    char b[24];
    snprintf(b, sizeof b, "%lld", (long long)json_integer_value(osa));
    if (write_value("/proc/self/oom_score_adj", b) < 0) die_sync(in->sync_fd, (berth_error(&err, errno, "process.oomScoreAdj %s", b), err));
  }
  json_t *pers = json_object_get(linux_, "personality");
  if (pers && !strcmp(jstr(pers, "domain") ?: "", "LINUX32") && personality(PER_LINUX32) < 0)
    die_sync(in->sync_fd, (berth_error(&err, errno, "linux.personality"), err));
  if (!in->no_new_keyring && syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL) < 0 && errno != ENOSYS)
    berth_debug("session keyring: %s", strerror(errno));
  if (json_is_true(json_object_get(process, "terminal")) && setup_terminal(process, in->console_fd, &err) < 0) die_sync(in->sync_fd, err);
  if (in->console_fd >= 0) close(in->console_fd);
  /* what would fail only at the exec fails create instead: the user's ids
   * must be mapped, the cwd is made if missing (as runc does) */
  {
    json_t *user = json_object_get(process, "user");
    if (json_object_get(user, "uid") && json_integer_value(json_object_get(user, "uid")) != 0 && in->in_userns) {
      uid_t u = (uid_t)json_integer_value(json_object_get(user, "uid"));
      gid_t gg = (gid_t)json_integer_value(json_object_get(user, "gid"));
      if (setresgid(-1, gg, -1) < 0 || setresgid(-1, 0, -1) < 0)
        die_sync(in->sync_fd,
                 (berth_error(&err, -EINVAL, "process.user.gid %u is not mapped in the container's user namespace (linux.gidMappings)",
                              (unsigned)gg),
                  err));
      if (setresuid(-1, u, -1) < 0 || setresuid(-1, 0, -1) < 0)
        die_sync(in->sync_fd,
                 (berth_error(&err, -EINVAL, "process.user.uid %u is not mapped in the container's user namespace (linux.uidMappings)",
                              (unsigned)u),
                  err));
    }
    const char *cwd = jstr(process, "cwd");
    struct stat cst;
    if (cwd && cwd[0] == '/' && stat(cwd, &cst) < 0 && errno == ENOENT) {
      int rfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
      int w = rfd >= 0 ? mkdir_in_root(rfd, cwd + 1, 0755, 0, &err) : -1;
      if (rfd >= 0) close(rfd);
      if (w < 0) die_sync(in->sync_fd, (berth_error_wrap(&err, "process.cwd %s", cwd), err));
      close(w);
    }
  }
  /* a missing program fails create, not start */
  const char *arg0 = json_string_value(json_array_get(json_object_get(process, "args"), 0));
  cleanup_free char *prog = find_program(arg0, json_object_get(process, "env"));
  if (!prog && !(arg0 && strchr(arg0, '/') && errno == EACCES))
    die_sync(in->sync_fd,
             (berth_error(&err, -ENOENT, "process.args[0] `%s`: no such executable in the container (PATH searched)", arg0 ?: ""), err));
  /* the runtime exits once we are created: we must outlive it */
  prctl(PR_SET_PDEATHSIG, 0);
  if (oci_sync_send(in->sync_fd, OCI_SYNC_CREATED, 0, NULL) < 0) _exit(127);
  close(in->sync_fd);
  if (in->fifo_fd >= 0) {
    /* blocks until `start` opens the other end */
    char p[64];
    snprintf(p, sizeof p, "%sself/fd/%d", proc_fd >= 0 ? "" : "/proc/", in->fifo_fd);
    int w = proc_fd >= 0 ? openat(proc_fd, p, O_WRONLY | O_CLOEXEC) : open(p, O_WRONLY | O_CLOEXEC);
    if (w < 0) _exit(127);
    if (write(w, "0", 1) != 1) _exit(127);
    /* w stays open until the exec closes it (O_CLOEXEC): `start` waits
     * for that end of file, so it returns once the program runs */
    close(in->fifo_fd);
  }
  if (proc_fd >= 0) close(proc_fd);
  if (hooks_any(in->spec, "startContainer")) {
    cleanup_free char *st = hooks_state(in->spec, in->id, "running", getpid(), in->bundle);
    if (hooks_run(in->spec, "startContainer", st, HOOK_CONFINED, &err) < 0) {
      dprintf(2, "berth-oci: %s\n", err->msg);
      _exit(127);
    }
  }
  json_object_set_new(process, "terminal", json_false()); /* set up above, before `created` */
  oci_process_exec(process, in->spec, -1, -1, in->preserve_fds, false);
}
