#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "security.h"
#include "util.h"

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
