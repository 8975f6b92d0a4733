#define _GNU_SOURCE
#include "util/security.h"

#include <errno.h>
#include <jansson.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/syscall.h>
#include <unistd.h>

/* profiles/seccomp/default.json, linked in with `ld -r -b binary` */
extern const char _binary_profiles_seccomp_default_json_start[];
extern const char _binary_profiles_seccomp_default_json_end[];

int security_last_cap(void) {
  static int last = -1;
  if (last < 0) {
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
    if (!f || fscanf(f, "%d", &last) != 1) last = CAP_LAST_CAP;
    if (f) fclose(f);
  }
  return last;
}

int security_drop_bounding(uint64_t keep, berth_error_t *err) {
  int last = security_last_cap();
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
  int last = security_last_cap();
  if (security_drop_bounding(keep, err) < 0) return -1;
  /* permitted and effective = keep, inheritable empty: the one capset(2)
   * that libcap's cap_set_proc() makes (libcap is not linked: loading it,
   * with its constructor's probes, would cost every berth process) */
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

/* Docker's default set less CAP_MKNOD: setup steps run code berth did not
 * write (a package's maintainer scripts), which must not make device nodes */
uint64_t security_setup_caps(void) {
  static const int d[] = {CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,     CAP_NET_RAW, CAP_SETGID,     CAP_SETUID,
                          CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL,    CAP_AUDIT_WRITE};
  uint64_t m = 0;
  for (size_t i = 0; i < sizeof d / sizeof *d; i++) m |= 1ULL << d[i];
  return m;
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

static int load_bpf(const char *bpf, size_t n, berth_error_t *err) {
  if (n == 0 || n % sizeof(struct sock_filter) || n / sizeof(struct sock_filter) > BPF_MAXINSNS)
    return berth_error(err, -EINVAL, "the seccomp program is not a BPF program (%zu bytes)", n);
  struct sock_fprog prog = {.len = (unsigned short)(n / sizeof(struct sock_filter)), .filter = (struct sock_filter *)bpf};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0) return 0;
  return berth_error(err, errno, "load the seccomp filter");
}

int security_seccomp_program(const char *bpf, size_t len, berth_error_t *err) {
  return bpf ? load_bpf(bpf, len, err) : security_seccomp(err);
}

int security_seccomp_read(json_t *spec, char **bpf, size_t *len, berth_error_t *err) {
  *bpf = NULL;
  *len = 0;
  const char *path = json_string_value(json_object_get(json_object_get(spec, "annotations"), "berth.seccomp"));
  if (!path) return 0;
  if (read_file(path, BPF_MAXINSNS * sizeof(struct sock_filter), bpf, len, err) < 0)
    return berth_error_wrap(err, "the container's seccomp program");
  return 0;
}

int security_seccomp(berth_error_t *err) {
  uintptr_t b0 = (uintptr_t)_binary_seccomp_bpf_start, b1 = (uintptr_t)_binary_seccomp_bpf_end;
  if (b0 && b1 > b0) return load_bpf(_binary_seccomp_bpf_start, b1 - b0, err);
  scmp_filter_ctx ctx = NULL;
  if (lazylib_require_seccomp(err) < 0 || security_seccomp_build(&ctx, err) < 0) return -1;
  int r = seccomp_load(ctx);
  seccomp_release(ctx);
  if (r < 0) return berth_error(err, -r, "load seccomp filter");
  return 0;
}

/* ---- profiles: the OCI runtime-spec linux.seccomp format, with Docker's
 * additions (archMap, includes/excludes, a single "name") ---- */

static const struct {
  const char *name;
  uint32_t act; /* SCMP_ACT_ERRNO/TRACE take errnoRet */
} actions[] = {{"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},
               {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0)},
               {"SCMP_ACT_KILL", SCMP_ACT_KILL},
               {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL},
               {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS},
               {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
               {"SCMP_ACT_LOG", SCMP_ACT_LOG},
               {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0)}};

static int action_of(json_t *name, json_t *ret, int def_ret, const char *where, uint32_t *out, berth_error_t *err) {
  const char *n = json_string_value(name);
  if (!n) return berth_error(err, -EINVAL, "%s: `action` must be a string such as \"SCMP_ACT_ERRNO\"", where);
  if (ret && (!json_is_integer(ret) || json_integer_value(ret) < 0 || json_integer_value(ret) > 4095))
    return berth_error(err, -EINVAL, "%s: `errnoRet` must be an errno number (0-4095)", where);
  uint16_t r = ret ? (uint16_t)json_integer_value(ret) : (uint16_t)def_ret;
  for (size_t i = 0; i < sizeof actions / sizeof *actions; i++)
    if (!strcmp(n, actions[i].name)) {
      *out = actions[i].act == SCMP_ACT_ERRNO(0)   ? SCMP_ACT_ERRNO(r)
             : actions[i].act == SCMP_ACT_TRACE(0) ? SCMP_ACT_TRACE(r)
                                                   : actions[i].act;
      return 0;
    }
  if (!strcmp(n, "SCMP_ACT_NOTIFY"))
    return berth_error(err, -ENOTSUP, "%s: SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), which berth does not run", where);
  return berth_error(err, -EINVAL, "%s: unknown action `%.40s`", where, n);
}

static const struct {
  const char *name;
  enum scmp_compare op;
} ops[] = {{"SCMP_CMP_NE", SCMP_CMP_NE},
           {"SCMP_CMP_LT", SCMP_CMP_LT},
           {"SCMP_CMP_LE", SCMP_CMP_LE},
           {"SCMP_CMP_EQ", SCMP_CMP_EQ},
           {"SCMP_CMP_GE", SCMP_CMP_GE},
           {"SCMP_CMP_GT", SCMP_CMP_GT},
           {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};

static int arg_of(json_t *a, const char *where, struct scmp_arg_cmp *out, berth_error_t *err) {
  json_t *idx = json_object_get(a, "index"), *v = json_object_get(a, "value"), *v2 = json_object_get(a, "valueTwo");
  const char *op = json_string_value(json_object_get(a, "op"));
  if (!json_is_object(a) || !json_is_integer(idx) || json_integer_value(idx) < 0 || json_integer_value(idx) > 5)
    return berth_error(err, -EINVAL, "%s: each of `args` needs an `index` from 0 to 5", where);
  /* JSON integers are signed 64-bit: values above 2^63 come negative, as the same bits */
  if (!json_is_integer(v) || (v2 && !json_is_integer(v2)))
    return berth_error(err, -EINVAL, "%s: `value` and `valueTwo` must be integers", where);
  *out = (struct scmp_arg_cmp){.arg = (unsigned)json_integer_value(idx),
                               .datum_a = (scmp_datum_t)json_integer_value(v),
                               .datum_b = v2 ? (scmp_datum_t)json_integer_value(v2) : 0};
  for (size_t i = 0; op && i < sizeof ops / sizeof *ops; i++)
    if (!strcmp(op, ops[i].name)) {
      out->op = ops[i].op;
      return 0;
    }
  return berth_error(err, -EINVAL, "%s: unknown `op` `%.40s`", where, op ? op : "(none)");
}

/* Docker's architecture names (Go's) for this build's native one */
#if defined(__x86_64__)
#define NATIVE_GOARCH "amd64"
#elif defined(__aarch64__)
#define NATIVE_GOARCH "arm64"
#else
#define NATIVE_GOARCH ""
#endif

static bool in_strings(json_t *arr, const char *s) {
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) if (json_string_value(v) && !strcmp(json_string_value(v), s)) return true;
  return false;
}

static bool kernel_at_least(const char *want) {
  struct utsname u;
  int a = 0, b = 0, x = 0, y = 0;
  if (!want || uname(&u) < 0 || sscanf(want, "%d.%d", &a, &b) < 1 || sscanf(u.release, "%d.%d", &x, &y) < 1) return true;
  return x > a || (x == a && y >= b);
}

/* Docker's includes/excludes: workloads hold no capabilities, so a rule for
 * some capability never applies and one excluded for it always does */
static bool rule_applies(json_t *sc) {
  json_t *inc = json_object_get(sc, "includes"), *exc = json_object_get(sc, "excludes");
  if (json_array_size(json_object_get(inc, "caps"))) return false;
  if (json_array_size(json_object_get(inc, "arches")) && !in_strings(json_object_get(inc, "arches"), NATIVE_GOARCH)) return false;
  if (json_string_value(json_object_get(inc, "minKernel")) && !kernel_at_least(json_string_value(json_object_get(inc, "minKernel"))))
    return false;
  if (in_strings(json_object_get(exc, "arches"), NATIVE_GOARCH)) return false;
  return true;
}

static int add_arch(scmp_filter_ctx ctx, const char *name, berth_error_t *err) {
  static const struct {
    const char *oci, *scmp;
  } names[] = {{"SCMP_ARCH_X86", "x86"},         {"SCMP_ARCH_X86_64", "x86_64"},   {"SCMP_ARCH_X32", "x32"},
               {"SCMP_ARCH_ARM", "arm"},         {"SCMP_ARCH_AARCH64", "aarch64"}, {"SCMP_ARCH_RISCV64", "riscv64"},
               {"SCMP_ARCH_PPC64LE", "ppc64le"}, {"SCMP_ARCH_S390X", "s390x"}};
  for (size_t i = 0; name && i < sizeof names / sizeof *names; i++)
    if (!strcmp(name, names[i].oci)) {
      uint32_t a = seccomp_arch_resolve_name(names[i].scmp);
      int r = a ? seccomp_arch_add(ctx, a) : -EINVAL;
      if (r < 0 && r != -EEXIST) return berth_error(err, -r, "seccomp profile: cannot add architecture %s", name);
      return 0;
    }
  return 0; /* other architectures' names: nothing to do on this one */
}

int security_seccomp_compile(json_t *p, void **out, berth_error_t *err) {
  *out = NULL;
  if (!json_is_object(p)) return berth_error(err, -EINVAL, "seccomp profile: not a JSON object");
  if (json_string_value(json_object_get(p, "listenerPath")) && *json_string_value(json_object_get(p, "listenerPath")))
    return berth_error(err, -ENOTSUP, "seccomp profile: `listenerPath` (a seccomp agent) is not supported");
  size_t i, k;
  json_t *v;
  json_array_foreach(json_object_get(p, "flags"), i, v) {
    const char *f = json_string_value(v);
    if (!f || strcmp(f, "SECCOMP_FILTER_FLAG_TSYNC")) /* berth's processes are single-threaded when they load it */
      return berth_error(err, -ENOTSUP, "seccomp profile: flag `%.40s` is not supported", f ? f : "?");
  }
  json_t *dret = json_object_get(p, "defaultErrnoRet");
  uint32_t def;
  if (action_of(json_object_get(p, "defaultAction"), dret, EPERM, "seccomp profile: defaultAction", &def, err) < 0) return -1;
  scmp_filter_ctx ctx = seccomp_init(def);
  if (!ctx) return berth_error(err, -EINVAL, "seccomp profile: libseccomp refused the default action");
  /* a binary tree over the syscall numbers rather than a list: the kernel
   * runs the filter once per syscall number when it is loaded (to build
   * its allow cache), which for a ~400-instruction list means the whole
   * list per number at every load; with the tree it is a few dozen
   * instructions per number */
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  int ret = 0;
  json_array_foreach(json_object_get(p, "architectures"), i, v) if (ret == 0) ret = add_arch(ctx, json_string_value(v), err);
  json_array_foreach(json_object_get(p, "archMap"), i, v) {
    const char *a = json_string_value(json_object_get(v, "architecture"));
    bool native = a && ((!strcmp(NATIVE_GOARCH, "amd64") && !strcmp(a, "SCMP_ARCH_X86_64")) ||
                        (!strcmp(NATIVE_GOARCH, "arm64") && !strcmp(a, "SCMP_ARCH_AARCH64")));
    json_t *s2;
    if (native)
      json_array_foreach(json_object_get(v, "subArchitectures"), k, s2) if (ret == 0) ret = add_arch(ctx, json_string_value(s2), err);
  }
  json_t *sc;
  json_array_foreach(json_object_get(p, "syscalls"), i, sc) {
    if (ret < 0) break;
    char where[48];
    snprintf(where, sizeof where, "seccomp profile: syscalls[%zu]", i);
    if (!json_is_object(sc)) {
      ret = berth_error(err, -EINVAL, "%s: not an object", where);
      break;
    }
    if (!rule_applies(sc)) continue;
    uint32_t act;
    if (action_of(json_object_get(sc, "action"), json_object_get(sc, "errnoRet"), EPERM, where, &act, err) < 0) {
      ret = -1;
      break;
    }
    json_t *args = json_object_get(sc, "args");
    size_t na = json_array_size(args);
    if (na > 6) {
      ret = berth_error(err, -EINVAL, "%s: at most 6 `args`", where);
      break;
    }
    struct scmp_arg_cmp cmp[6];
    bool same_index = false;
    for (k = 0; k < na && ret == 0; k++) {
      if (arg_of(json_array_get(args, k), where, &cmp[k], err) < 0) ret = -1;
      for (size_t j = 0; j < k && ret == 0; j++) same_index |= cmp[j].arg == cmp[k].arg;
    }
    if (ret < 0) break;
    json_t *names = json_object_get(sc, "names");
    json_t *one = json_object_get(sc, "name"); /* Docker's older form */
    size_t nn = json_is_array(names) ? json_array_size(names) : one ? 1 : 0;
    for (k = 0; k < nn && ret == 0; k++) {
      const char *n = json_string_value(json_is_array(names) ? json_array_get(names, k) : one);
      if (!n) {
        ret = berth_error(err, -EINVAL, "%s: `names` must hold strings", where);
        break;
      }
      int nr = seccomp_syscall_resolve_name(n);
      if (nr == __NR_SCMP_ERROR) continue; /* not a syscall here (another architecture's, or newer) */
      int r = 0;
      /* libseccomp takes one comparison per argument in a rule: several on
       * the same argument become one rule each (as runc does) */
      if (same_index)
        for (size_t j = 0; j < na && r == 0; j++) r = seccomp_rule_add_array(ctx, act, nr, 1, &cmp[j]);
      else r = seccomp_rule_add_array(ctx, act, nr, (unsigned)na, na ? cmp : NULL);
      /* the default action again, or an action libseccomp cannot place */
      if (r == -EACCES || r == -EEXIST) r = 0;
      if (r < 0) ret = berth_error(err, -r, "%s: libseccomp refused the rule for `%s`", where, n);
    }
  }
  if (ret < 0) {
    seccomp_release(ctx);
    return -1;
  }
  *out = ctx;
  return 0;
}

int security_seccomp_build(void **out, berth_error_t *err) {
  size_t len = (size_t)(_binary_profiles_seccomp_default_json_end - _binary_profiles_seccomp_default_json_start);
  json_error_t je;
  json_t *p = json_loadb(_binary_profiles_seccomp_default_json_start, len, 0, &je);
  if (!p) return berth_error(err, -EINVAL, "built-in seccomp profile: %s", je.text);
  int r = security_seccomp_compile(p, out, err);
  json_decref(p);
  return r;
}

int security_seccomp_bpf(json_t *profile, char **bpf, size_t *len, berth_error_t *err) {
  *bpf = NULL;
  *len = 0;
  if (lazylib_require_seccomp(err) < 0) return -1;
  void *ctx = NULL;
  if (security_seccomp_compile(profile, &ctx, err) < 0) return -1;
  int fd = memfd_create("berth-seccomp", MFD_CLOEXEC);
  int r = fd < 0 ? -errno : seccomp_export_bpf(ctx, fd);
  seccomp_release(ctx);
  if (r < 0) {
    if (fd >= 0) close(fd);
    return berth_error(err, -r, "seccomp profile: libseccomp could not produce the program");
  }
  off_t n = lseek(fd, 0, SEEK_END);
  char *b = n > 0 ? malloc((size_t)n) : NULL;
  if (!b || pread(fd, b, (size_t)n, 0) != n) {
    free(b);
    close(fd);
    return berth_error(err, -EIO, "seccomp profile: could not read the compiled program back");
  }
  close(fd);
  *bpf = b;
  *len = (size_t)n;
  return 0;
}
