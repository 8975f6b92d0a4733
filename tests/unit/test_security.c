#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/security.h"
#include "bundle/spec.h"
#include "runtime/cgroup.h"
#include "runtime/oci_cgroup.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "util/util.h"

/* the filter compiled at build time (build/seccomp.bpf, linked into libberth.a) */
extern const char _binary_seccomp_bpf_start[];
extern const char _binary_seccomp_bpf_end[];

/* libseccomp is loaded on first use (lazylib.c): the filter it builds at run
 * time through the shims (seccomp_rule_add is variadic) is the one berth
 * loads, byte for byte */
Test(security, runtime_filter_equals_build_time_filter) {
  cr_assert_eq(lazylib_require_seccomp(NULL), 0);
  void *ctx = NULL;
  berth_error_t err = NULL;
  cr_assert_eq(security_seccomp_build(&ctx, &err), 0, "%s", err ? err->msg : "");
  int fd = memfd_create("bpf", MFD_CLOEXEC);
  cr_assert_geq(fd, 0);
  cr_assert_eq(seccomp_export_bpf(ctx, fd), 0);
  seccomp_release(ctx);
  off_t n = lseek(fd, 0, SEEK_END);
  size_t want = (size_t)(_binary_seccomp_bpf_end - _binary_seccomp_bpf_start);
  cr_assert_eq((size_t)n, want, "runtime filter %lld bytes, build-time %zu", (long long)n, want);
  char *buf = malloc(want);
  cr_assert_eq(pread(fd, buf, want, 0), (ssize_t)want);
  cr_assert_eq(memcmp(buf, _binary_seccomp_bpf_start, want), 0);
  free(buf);
  close(fd);
}

static unsigned long long status_caps(const char *status, const char *field) {
  const char *p = strstr(status, field);
  return p ? strtoull(p + strlen(field), NULL, 16) : ~0ULL;
}

/* security_drop_caps sets the sets with capset(2) (no libcap): in a user
 * namespace of its own (full capabilities there, root or not), a child
 * keeps exactly `keep` in its permitted, effective and bounding sets,
 * nothing inheritable or ambient; a capability above 31 checks the upper
 * 32-bit word */
static void check_drop(uint64_t keep) {
  int pfd[2];
  cr_assert_eq(pipe(pfd), 0);
  pid_t p = fork();
  cr_assert_geq(p, 0);
  if (p == 0) {
    close(pfd[0]);
    berth_error_t err = NULL;
    char status[4096] = "";
    if (unshare(CLONE_NEWUSER) < 0) snprintf(status, sizeof status, "unshare: %s", strerror(errno));
    else if (security_drop_caps(keep, &err) < 0) snprintf(status, sizeof status, "drop: %s", err->msg);
    else {
      FILE *f = fopen("/proc/self/status", "re");
      size_t n = f ? fread(status, 1, sizeof status - 1, f) : 0;
      status[n] = '\0';
      if (f) fclose(f);
    }
    if (write(pfd[1], status, strlen(status)) < 0) _exit(2);
    _exit(0);
  }
  close(pfd[1]);
  char status[4096];
  ssize_t n = read(pfd[0], status, sizeof status - 1);
  close(pfd[0]);
  int st;
  waitpid(p, &st, 0);
  cr_assert(n > 0);
  status[n] = '\0';
  cr_assert(strstr(status, "CapEff:"), "%s", status);
  cr_assert_eq(status_caps(status, "CapPrm:"), keep, "%s", status);
  cr_assert_eq(status_caps(status, "CapEff:"), keep, "%s", status);
  cr_assert_eq(status_caps(status, "CapBnd:"), keep, "%s", status);
  cr_assert_eq(status_caps(status, "CapInh:"), 0, "%s", status);
  cr_assert_eq(status_caps(status, "CapAmb:"), 0, "%s", status);
}

Test(security, drop_caps_keeps_exactly_keep) {
  check_drop(1ULL << CAP_KILL);
  check_drop((1ULL << CAP_KILL) | (1ULL << CAP_AUDIT_READ));
  check_drop(0);
}

/* ---- profiles of the user's own (OCI runtime-spec / Docker JSON) ---- */

/* compile PROFILE, load it in a child, call each syscall of probe() there
 * and return what it saw: one char per call, '0' success or the errno as
 * a letter ('A' + errno) */
static void run_profile(const char *profile, char *out, size_t outn) {
  json_error_t je;
  json_t *p = json_loads(profile, 0, &je);
  cr_assert(p, "test profile: %s", je.text);
  char *bpf = NULL;
  size_t len = 0;
  berth_error_t err = NULL;
  cr_assert_eq(security_seccomp_bpf(p, &bpf, &len, &err), 0, "%s", err ? err->msg : "");
  json_decref(p);
  int pfd[2];
  cr_assert_eq(pipe(pfd), 0);
  pid_t c = fork();
  if (c == 0) {
    close(pfd[0]);
    berth_error_t e = NULL;
    if (security_no_new_privs(&e) < 0 || security_seccomp_program(bpf, len, &e) < 0) _exit(3);
    char res[8] = "";
    for (int i = 0; i < 5; i++) {
      errno = 0;
      long v = i == 0   ? syscall(SYS_getppid)
               : i == 1 ? syscall(SYS_getpgid, 0)
               : i == 2 ? syscall(SYS_personality, 0xffffffffUL)
               : i == 3 ? syscall(SYS_personality, 0x0040000UL)
                        : syscall(SYS_getpriority, 0, 0);
      res[i] = v >= 0 || errno == 0 ? '0' : (char)('A' + errno);
    }
    if (write(pfd[1], res, 5) != 5) _exit(2);
    _exit(0);
  }
  close(pfd[1]);
  ssize_t n = read(pfd[0], out, outn - 1);
  close(pfd[0]);
  int st;
  waitpid(c, &st, 0);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status %d)", st);
  out[n > 0 ? n : 0] = '\0';
  free(bpf);
}

#define EP ('A' + EPERM)
#define EA ('A' + EACCES)

Test(security, oci_profile_actions_errno_and_args) {
  cr_assert_eq(lazylib_require_seccomp(NULL), 0);
  char got[16];
  /* getppid: EACCES; getpgid: EPERM (errnoRet defaults to EPERM);
   * personality: only the query; getpriority: allowed */
  run_profile("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ["
              "{\"names\": [\"getppid\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 13},"
              "{\"names\": [\"getpgid\"], \"action\": \"SCMP_ACT_ERRNO\"},"
              "{\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 1,"
              " \"args\": [{\"index\": 0, \"value\": 4294967295, \"op\": \"SCMP_CMP_NE\"}]},"
              "{\"names\": [\"no_such_syscall_anywhere\"], \"action\": \"SCMP_ACT_ERRNO\"}]}",
              got, sizeof got);
  char want[] = {EA, EP, '0', EP, '0', 0};
  cr_assert_str_eq(got, want);
}

Test(security, docker_profile_archmap_includes_excludes_and_name) {
  cr_assert_eq(lazylib_require_seccomp(NULL), 0);
  char got[16];
  /* Docker's shapes: archMap, a single "name", rules for capabilities
   * (workloads hold none: skipped), excluded for them (kept), for another
   * architecture (skipped), for a kernel from the future (skipped) */
  run_profile("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 1,"
              " \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\", \"subArchitectures\": [\"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"]},"
              "              {\"architecture\": \"SCMP_ARCH_AARCH64\", \"subArchitectures\": [\"SCMP_ARCH_ARM\"]}],"
              " \"syscalls\": ["
              "{\"names\": [\"write\", \"exit_group\", \"exit\", \"rt_sigreturn\", \"getpriority\"], \"action\": \"SCMP_ACT_ALLOW\"},"
              "{\"name\": \"getppid\", \"action\": \"SCMP_ACT_ALLOW\"},"
              "{\"names\": [\"getpgid\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}},"
              "{\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ALLOW\", \"excludes\": {\"caps\": [\"CAP_SYS_ADMIN\"]},"
              " \"includes\": {\"arches\": [\"amd64\", \"arm64\"], \"minKernel\": \"4.0\"}},"
              "{\"names\": [\"getpriority\"], \"action\": \"SCMP_ACT_ERRNO\", \"includes\": {\"minKernel\": \"99.0\"}},"
              "{\"names\": [\"getppid\"], \"action\": \"SCMP_ACT_ERRNO\", \"includes\": {\"arches\": [\"s390x\"]}}]}",
              got, sizeof got);
  char want[] = {'0', EP, '0', '0', '0', 0};
  cr_assert_str_eq(got, want);
}

/* bad profiles fail with a message naming the entry and field; none crashes */
Test(security, bad_profiles_are_refused_clearly) {
  cr_assert_eq(lazylib_require_seccomp(NULL), 0);
  static const struct {
    const char *json, *says;
  } bad[] = {
      {"[]", "not a JSON object"},
      {"{}", "defaultAction"},
      {"{\"defaultAction\": \"SCMP_ACT_BOGUS\"}", "unknown action"},
      {"{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": \"x\"}", "errnoRet"},
      {"{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 99999}", "errnoRet"},
      {"{\"defaultAction\": \"SCMP_ACT_NOTIFY\"}", "seccomp agent"},
      {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/run/agent.sock\"}", "listenerPath"},
      {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"]}", "not supported"},
      {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [7]}", "syscalls[0]: not an object"},
      {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"]}]}", "syscalls[0]: `action`"},
      {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [1], \"action\": \"SCMP_ACT_ERRNO\"}]}", "strings"},
      {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"write\"], \"action\": \"SCMP_ACT_LOG\"}, {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\","
       " \"args\": [{\"index\": 9, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]}]}",
       "syscalls[1]"},
      {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\","
       " \"args\": [{\"index\": 0, \"value\": \"1\", \"op\": \"SCMP_CMP_EQ\"}]}]}",
       "integers"},
      {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\","
       " \"args\": [{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_SOMETIMES\"}]}]}",
       "unknown `op`"},
      {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\", \"args\": ["
       "{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}, {\"index\": 1, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
       "{\"index\": 2, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}, {\"index\": 3, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
       "{\"index\": 4, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}, {\"index\": 5, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
       "{\"index\": 0, \"value\": 2, \"op\": \"SCMP_CMP_EQ\"}]}]}",
       "at most 6"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *p = json_loads(bad[i].json, 0, NULL);
    cr_assert(p, "case %zu is not JSON", i);
    void *ctx = NULL;
    berth_error_t err = NULL;
    cr_assert_eq(security_seccomp_compile(p, &ctx, &err), -1, "case %zu accepted: %s", i, bad[i].json);
    cr_assert_null(ctx);
    cr_assert(err && strstr(err->msg, bad[i].says), "case %zu: `%s` does not say `%s`", i, err ? err->msg : "", bad[i].says);
    berth_error_free(err);
    json_decref(p);
  }
}

/* the container's own setup is never a caller's mount target, however written */
Test(mount_targets, forbidden_as_the_kernel_walks_them) {
  const char *bad[] = {
      "/",    "//",    "/.",      "/proc", "/proc/", "//proc", "/./proc", "/proc/sys", "/proc/self/fd", "/sys", "/sys/fs/cgroup",
      "/dev", "/dev/", "/./dev/."};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) cr_expect(spec_mount_target_forbidden(bad[i]), "%s must be refused", bad[i]);
  const char *ok[] = {"/workspace", "/procfs", "/sysroot", "/devx", "/dev/fuse", "/mnt/proc", "/home/sys"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) cr_expect(!spec_mount_target_forbidden(ok[i]), "%s must be allowed", ok[i]);
}

/* The cgroup v2 devices program, on a cgroup of the v2 hierarchy this host
 * has (pure v2, or the hybrid's /sys/fs/cgroup/unified): a child moved
 * into it may open /dev/null and /dev/zero, not /dev/kmsg or a block
 * device, and may make no node at all (it is root, with CAP_MKNOD). */
static char *v2_mount(void) {
  if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) return strdup("/sys/fs/cgroup");
  if (access("/sys/fs/cgroup/unified/cgroup.procs", F_OK) == 0) return strdup("/sys/fs/cgroup/unified");
  return NULL;
}

Test(devices, bpf_allow_list_on_a_v2_cgroup) {
  cr_assert_eq(geteuid(), 0, "run the unit tests as root (make test does): the devices program needs it");
  char *mnt = v2_mount();
  cr_assert(mnt, "no cgroup v2 hierarchy mounted on this host");
  char *own = NULL;
  cr_assert_eq(read_file("/proc/self/cgroup", 65536, &own, NULL, NULL), 0);
  char *v2 = cgroup_own_path(own, "");
  cr_assert(v2, "no cgroup v2 line in /proc/self/cgroup");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s%s/berth-unit-devices-%d", mnt, strcmp(v2, "/") ? v2 : "", (int)getpid());
  cr_assert_eq(mkdir(dir, 0755), 0, "mkdir %s: %s", dir, strerror(errno));
  int cfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  berth_error_t err = NULL;
  json_t *own_list = cgroup_berth_devices(NULL); /* berth's own list, as a container made before specs carried one gets */
  int r = oci_cgroup_devices_v2(cfd, own_list, &err);
  json_decref(own_list);
  cr_assert_eq(r, 0, "attach: %s", err ? err->msg : "?");
  close(cfd);
  pid_t c = fork();
  if (c == 0) {
    char procs[4200], pid[32];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    FILE *f = fopen(procs, "w");
    if (!f || fputs(pid, f) < 0 || fclose(f) != 0) _exit(100);
    int bits = 0;
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) bits |= 1, close(fd);
    fd = open("/dev/zero", O_RDONLY);
    if (fd >= 0) bits |= 2, close(fd);
    fd = open("/dev/kmsg", O_RDONLY);
    if (fd < 0 && errno == EPERM) bits |= 4;
    if (fd >= 0) close(fd);
    char node[64];
    snprintf(node, sizeof node, "/tmp/berth-unit-node-%d", (int)getpid());
    if (mknod(node, S_IFCHR | 0600, makedev(1, 3)) < 0 && errno == EPERM) bits |= 8;
    else unlink(node);
    fd = open("/dev/loop-control", O_RDWR); /* 10:237: not on the list */
    if (fd < 0 && errno == EPERM) bits |= 16;
    if (fd >= 0) close(fd);
    _exit(bits);
  }
  int st = 0;
  waitpid(c, &st, 0);
  rmdir(dir);
  free(own), free(v2);
  free(mnt);
  cr_assert(WIFEXITED(st), "the child died");
  int bits = WEXITSTATUS(st);
  cr_assert_neq(bits, 100, "could not move the child into %s", dir);
  cr_expect(bits & 1, "/dev/null is allowed (bits %d)", bits);
  cr_expect(bits & 2, "/dev/zero is allowed (bits %d)", bits);
  cr_expect(bits & 4, "/dev/kmsg is refused with EPERM (bits %d)", bits);
  cr_expect(bits & 8, "mknod is refused with EPERM (bits %d)", bits);
  cr_expect(bits & 16, "/dev/loop-control is refused with EPERM (bits %d)", bits);
}

/* The same program from a spec's list: berth's own entries plus the
 * devices asked for, each with its access (read only here), a block
 * device among them; what is not listed stays refused. */
Test(devices, bpf_program_from_a_spec_list) {
  cr_assert_eq(geteuid(), 0, "run the unit tests as root (make test does): the devices program needs it");
  char *mnt = v2_mount();
  cr_assert(mnt, "no cgroup v2 hierarchy mounted on this host");
  char *own = NULL;
  cr_assert_eq(read_file("/proc/self/cgroup", 65536, &own, NULL, NULL), 0);
  char *v2 = cgroup_own_path(own, "");
  cr_assert(v2, "no cgroup v2 line in /proc/self/cgroup");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s%s/berth-unit-devices2-%d", mnt, strcmp(v2, "/") ? v2 : "", (int)getpid());
  cr_assert_eq(mkdir(dir, 0755), 0, "mkdir %s: %s", dir, strerror(errno));
  json_t *list = cgroup_default_devices();
  json_array_append_new(list, json_pack("{s:b, s:s, s:i, s:i, s:s}", "allow", 1, "type", "c", "major", 1, "minor", 11, "access", "r"));
  json_array_append_new(list, json_pack("{s:b, s:s, s:i, s:i, s:s}", "allow", 1, "type", "b", "major", 7, "minor", 0, "access", "rm"));
  /* not honoured: an entry without a major (a wildcard over every device) */
  json_array_append_new(list, json_pack("{s:b, s:s, s:s}", "allow", 1, "type", "c", "access", "rw"));
  int cfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  berth_error_t err = NULL;
  /* as berth applies a spec's list: through its filter, by the runtime's program */
  json_t *applied = cgroup_berth_devices(list);
  int r = oci_cgroup_devices_v2(cfd, applied, &err);
  json_decref(applied);
  json_decref(list);
  cr_assert_eq(r, 0, "attach: %s", err ? err->msg : "?");
  close(cfd);
  pid_t c = fork();
  if (c == 0) {
    char procs[4200], pid[32];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    FILE *f = fopen(procs, "w");
    if (!f || fputs(pid, f) < 0 || fclose(f) != 0) _exit(100);
    int bits = 0, fd;
    if ((fd = open("/dev/null", O_RDWR)) >= 0) bits |= 1, close(fd);
    if ((fd = open("/dev/kmsg", O_RDONLY)) >= 0) bits |= 2, close(fd);
    if ((fd = open("/dev/kmsg", O_WRONLY)) < 0 && errno == EPERM) bits |= 4;
    if (fd >= 0) close(fd);
    if ((fd = open("/dev/loop0", O_RDONLY)) >= 0) bits |= 8, close(fd);
    if ((fd = open("/dev/loop0", O_RDWR)) < 0 && errno == EPERM) bits |= 16;
    if (fd >= 0) close(fd);
    if ((fd = open("/dev/loop1", O_RDONLY)) < 0 && errno == EPERM) bits |= 32;
    if (fd >= 0) close(fd);
    if ((fd = open("/dev/loop-control", O_RDWR)) < 0 && errno == EPERM) bits |= 64;
    if (fd >= 0) close(fd);
    _exit(bits);
  }
  int st = 0;
  waitpid(c, &st, 0);
  rmdir(dir);
  free(own), free(v2);
  free(mnt);
  cr_assert(WIFEXITED(st), "the child died");
  int bits = WEXITSTATUS(st);
  cr_assert_neq(bits, 100, "could not move the child into %s", dir);
  cr_expect(bits & 1, "/dev/null (berth's own) is allowed (bits %d)", bits);
  cr_expect(bits & 2, "/dev/kmsg read is allowed (bits %d)", bits);
  cr_expect(bits & 4, "/dev/kmsg write is refused with EPERM: the entry is read-only (bits %d)", bits);
  cr_expect(bits & 8, "/dev/loop0 (block 7:0) read is allowed (bits %d)", bits);
  cr_expect(bits & 16, "/dev/loop0 write is refused (bits %d)", bits);
  cr_expect(bits & 32, "/dev/loop1 is refused: not listed (bits %d)", bits);
  cr_expect(bits & 64, "/dev/loop-control is refused: a wildcard major is no entry (bits %d)", bits);
}
