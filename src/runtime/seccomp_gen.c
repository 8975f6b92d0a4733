/* Build-time tool: compile profiles/seccomp.json into the BPF program that
 * berth loads at run time (build/seccomp.bpf). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>

#include "security.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen-seccomp OUT.bpf\n");
    return 2;
  }
  void *ctx = NULL;
  berth_error_t err = NULL;
  if (security_seccomp_build(&ctx, &err) < 0) {
    fprintf(stderr, "gen-seccomp: %s\n", err->msg);
    return 1;
  }
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || seccomp_export_bpf(ctx, fd) < 0) {
    perror("gen-seccomp");
    return 1;
  }
  close(fd);
  seccomp_release(ctx);
  return 0;
}
