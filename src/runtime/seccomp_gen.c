/* Build-time tool: compile profiles/seccomp/default.json into the BPF program that
 * berth loads at run time (build/seccomp.bpf). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util/security.h"

int main(int argc, char **argv) {
  /* --linear: the same filter as a list of comparisons, for bench/micro.sh */
  bool linear = argc == 3 && !strcmp(argv[1], "--linear");
  if (argc != 2 && !linear) {
    fprintf(stderr, "usage: gen-seccomp [--linear] OUT.bpf\n");
    return 2;
  }
  const char *out = argv[argc - 1];
  void *ctx = NULL;
  berth_error_t err = NULL;
  if (security_seccomp_build(&ctx, &err) < 0) {
    fprintf(stderr, "gen-seccomp: %s\n", err->msg);
    return 1;
  }
  if (linear && seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 1) < 0) {
    fprintf(stderr, "gen-seccomp: cannot ask libseccomp for a list\n");
    return 1;
  }
  int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || seccomp_export_bpf(ctx, fd) < 0) {
    perror("gen-seccomp");
    return 1;
  }
  close(fd);
  seccomp_release(ctx);
  return 0;
}
