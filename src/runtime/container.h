/* Containers: create (monitor + berth's own init in new namespaces),
 * exec, list, status, remove. No daemon: state lives in files. */
#ifndef BERTH_CONTAINER_H
#define BERTH_CONTAINER_H
#include <jansson.h>
#include "cgroup.h"
#include "util.h"

struct create_opts {
  const char *name, *image, *workdir, *purpose, *network, *platform;
  json_t *mounts; /* [{"host","container","mode"}] */
  json_t *env;    /* {"K":"V"} */
  bool mount_cwd, persistent, quiet;
  struct limits limits;
};

struct exec_opts {
  const char *name;
  char *const *argv;
  json_t *env; /* {"K":"V"} */
  const char *workdir, *user;
  int timeout; /* seconds, 0 = none */
  bool tty;
  bool capture;      /* collect stdout/stderr instead of passing them through */
  size_t capture_max; /* per stream */
  uint64_t keep_caps; /* capabilities kept (0 = none, the default) */
};

struct exec_result {
  int exit_code;
  bool timed_out;
  struct buf out, err;
  bool out_truncated, err_truncated;
};

int container_create(const struct create_opts *o, json_t **result, berth_error_t *err);
int container_exec(const struct exec_opts *o, struct exec_result *res, berth_error_t *err);
int container_list(json_t **out, berth_error_t *err);
int container_status(const char *name, bool health, json_t **out, berth_error_t *err);
int container_remove(const char *name, bool force, json_t **out, berth_error_t *err);
/* copy between host and a running container (into: host -> container) */
int container_copy(const char *name, const char *host_path, const char *container_path, bool into, berth_error_t *err);
bool container_name_valid(const char *name);
char *container_random_name(const char *prefix);

/* internal: the container's init, entered in the cloned child */
struct init_args;

#endif
