/* Embedding berth: one call, request JSON in, reply JSON out.
 * Build: cc -o embed docs/examples/embed.c -Iinclude build/libberth.a \
 *          $(pkg-config --libs jansson) -pthread -ldl
 *        (libcurl, libarchive, libcrypto and libseccomp are dlopen()ed on first use)
 * Run:   ./embed IMAGE        (creates a sandbox, runs a command, removes it) */
#include <stdio.h>
#include <string.h>

#include "berth.h"

static int step(const char *request) {
  char *reply = berth_call(request);
  if (!reply) return -1;
  printf("> %s\n< %s\n", request, reply);
  int failed = strncmp(reply, "{\"error\"", 8) == 0; /* a failure reply leads with its error */
  berth_free(reply);
  return failed ? -1 : 0;
}

int main(int argc, char **argv) {
  const char *image = argc > 1 ? argv[1] : "localhost/busybox:latest";
  char create[512];
  snprintf(create, sizeof create, "{\"operation\":\"create\",\"name\":\"embed-demo\",\"image\":\"%s\",\"mount_cwd\":false}", image);
  if (step("{\"operation\":\"preflight\"}") < 0) return 1;
  if (step(create) < 0) return 1;
  int rc = step("{\"operation\":\"exec\",\"container\":\"embed-demo\",\"command\":\"echo hello from $(hostname)\"}");
  step("{\"operation\":\"destroy\",\"container\":\"embed-demo\",\"force\":true}");
  return rc < 0 ? 1 : 0;
}
