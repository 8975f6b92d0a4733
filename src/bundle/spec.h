/* Image config + create request -> OCI runtime-spec config.json, the
 * contract between berth's high-level side and its launcher. */
#ifndef BERTH_SPEC_H
#define BERTH_SPEC_H
#include <jansson.h>
#include "runtime/cgroup.h"
#include "util/util.h"

struct spec_input {
  const char *name, *cdir;
  json_t *image_record, *image_config;
  const char *workdir; /* NULL: /workspace */
  json_t *mounts; /* [{"host","container","mode"}] */
  json_t *env; /* {"K":"V"} */
  const char *cwd_mount; /* host dir bound at the workdir, or NULL */
  const char *network;
  struct limits limits;
  bool rootless;
};

int spec_generate(const struct spec_input *in, json_t **out, berth_error_t *err);
/* `/`, `/proc`, `/sys`, `/dev` and anything below `/proc` and `/sys`: the
 * container's own setup, never a mount target of the caller's */
bool spec_mount_target_forbidden(const char *path);
/* the same path as the kernel walks it (`//` and `.` folded) */
bool spec_same_path(const char *a, const char *b);
/* "K=V" array helpers */
const char *env_get(json_t *env_array, const char *key);
void env_set(json_t *env_array, const char *key, const char *value);

#endif
