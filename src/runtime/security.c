#define _GNU_SOURCE
#include "security.h"

#include <errno.h>
#include <jansson.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* profiles/seccomp.json, linked in with `ld -r -b binary` */
extern const char _binary_profiles_seccomp_json_start[];
extern const char _binary_profiles_seccomp_json_end[];

static int last_cap(void) {
  static int last = -1;
  if (last < 0) {
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
    if (!f || fscanf(f, "%d", &last) != 1) last = CAP_LAST_CAP;
    if (f) fclose(f);
  }
  return last;
}

int security_drop_bounding(uint64_t keep, berth_error_t *err) {
  int last = last_cap();
  for (int c = 0; c <= last; c++) {
    if (keep & (1ULL << c)) continue;
    if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) <= 0) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
      return berth_error(err, errno, "drop capability %d from the bounding set", c);
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  return 0;
}

int security_drop_caps(uint64_t keep, berth_error_t *err) {
  int last = last_cap();
  if (security_drop_bounding(keep, err) < 0) return -1;
  /* permitted and effective = keep, inheritable empty: the one capset(2)
   * that libcap's cap_set_proc() makes (libcap is not linked: loading it,
   * with its constructor's probes, cost every berth process ~0.07 ms) */
  uint64_t m = 0;
  for (int c = 0; c <= last && c < 64; c++)
    if (keep & (1ULL << c)) m |= 1ULL << c;
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {
      {.effective = (uint32_t)m, .permitted = (uint32_t)m, .inheritable = 0},
      {.effective = (uint32_t)(m >> 32), .permitted = (uint32_t)(m >> 32), .inheritable = 0}};
  if (syscall(SYS_capset, &h, d) < 0) return berth_error(err, errno, "drop capabilities");
  return 0;
}

int security_no_new_privs(berth_error_t *err) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return berth_error(err, errno, "set no_new_privs");
  return 0;
}

uint64_t security_docker_default_caps(void) {
  static const int d[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW,
                          CAP_SETGID, CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE,
                          CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE};
  uint64_t m = 0;
  for (size_t i = 0; i < sizeof d / sizeof *d; i++) m |= 1ULL << d[i];
  return m;
}

static int errno_named(const char *s) {
  if (s && !strcmp(s, "EPERM")) return EPERM;
  if (s && !strcmp(s, "EACCES")) return EACCES;
  return ENOSYS;
}

/* The filter compiled at build time (build/seccomp.bpf, by gen-seccomp from
 * the same profile): loading it costs a syscall instead of building the
 * filter from ~400 names on every create and exec. Builds without it (the
 * generator itself, the fuzzer) define BERTH_SECCOMP_RUNTIME_ONLY and
 * compile the filter at run time. */
#ifdef BERTH_SECCOMP_RUNTIME_ONLY
#define BPF_WEAK __attribute__((weak))
#else
#define BPF_WEAK
#endif
extern const char _binary_seccomp_bpf_start[] BPF_WEAK;
extern const char _binary_seccomp_bpf_end[] BPF_WEAK;

int security_seccomp(berth_error_t *err) {
  uintptr_t b0 = (uintptr_t)_binary_seccomp_bpf_start, b1 = (uintptr_t)_binary_seccomp_bpf_end;
  if (b0 && b1 > b0) {
    size_t n = b1 - b0;
    if (n % sizeof(struct sock_filter) == 0) {
      struct sock_fprog prog = {.len = (unsigned short)(n / sizeof(struct sock_filter)),
                                .filter = (struct sock_filter *)_binary_seccomp_bpf_start};
      if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0) return 0;
      return berth_error(err, errno, "load the seccomp filter");
    }
  }
  scmp_filter_ctx ctx = NULL;
  if (lazylib_require_seccomp(err) < 0 || security_seccomp_build(&ctx, err) < 0) return -1;
  int r = seccomp_load(ctx);
  seccomp_release(ctx);
  if (r < 0) return berth_error(err, -r, "load seccomp filter");
  return 0;
}

int security_seccomp_build(void **out, berth_error_t *err) {
  size_t len = (size_t)(_binary_profiles_seccomp_json_end - _binary_profiles_seccomp_json_start);
  json_error_t je;
  json_t *p = json_loadb(_binary_profiles_seccomp_json_start, len, 0, &je);
  if (!p) return berth_error(err, -EINVAL, "built-in seccomp profile: %s", je.text);
  int def = errno_named(json_string_value(json_object_get(p, "default_errno")));
  int den = errno_named(json_string_value(json_object_get(p, "denied_errno")));
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(def));
  int ret = 0;
  if (!ctx) {
    json_decref(p);
    return berth_error(err, -ENOMEM, "seccomp_init");
  }
  /* a binary tree over the syscall numbers rather than a list: the kernel
   * runs the filter once per syscall number when it is loaded (to build
   * its allow cache), which for a ~400-instruction list cost 0.5 ms per
   * load; with the tree it is a few dozen instructions per number */
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(p, "allowed"), i, v) {
    int nr = seccomp_syscall_resolve_name(json_string_value(v));
    if (nr != __NR_SCMP_ERROR) seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
  }
  json_array_foreach(json_object_get(p, "denied"), i, v) {
    int nr = seccomp_syscall_resolve_name(json_string_value(v));
    if (nr != __NR_SCMP_ERROR) seccomp_rule_add(ctx, SCMP_ACT_ERRNO(den), nr, 0);
  }
  /* clone: plain forks and threads only, never new namespaces */
  const uint64_t ns = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
                      CLONE_NEWCGROUP | CLONE_NEWTIME;
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, ns, 0));
  for (int b = 0; b < 64; b++)
    if (ns & (1ULL << b))
      seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, 1ULL << b, 1ULL << b));
  json_decref(p);
  *out = ctx;
  return ret;
}
