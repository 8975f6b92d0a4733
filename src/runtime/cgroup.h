/* cgroups for containers: pure v2 (delegated subtree) or v1/hybrid
 * controllers, always below the cgroup berth itself runs in. */
#ifndef BERTH_CGROUP_H
#define BERTH_CGROUP_H
#include <jansson.h>
#include "util.h"

/* the devices allow-list berth's own /dev needs (null, zero, full,
 * random, urandom, tty, ptmx, pts; read and write), as OCI
 * linux.resources.devices entries after a deny-all one */
json_t *cgroup_default_devices(void);
/* attach an allow-list (OCI linux.resources.devices: the allow entries of
 * type c or b with a major, read and write as their access says, never
 * mknod; NULL: berth's own list) to a cgroup v2 directory as a BPF
 * program (root) */
int cgroup_devices_bpf(int cgfd, json_t *devices, berth_error_t *err);

struct limits {
  int64_t memory; /* bytes, 0 = none */
  int64_t pids;   /* 0 = none */
  double cpus;    /* 0 = none */
};

/* Create the container's cgroup(s) and apply limits, and (root) the
 * devices allow-list of the spec's linux.resources.devices (NULL:
 * berth's own). When limits cannot be applied (rootless without
 * delegation) this still succeeds, returning a JSON object {version,
 * paths:[...], limits_applied, note}. */
int cgroup_create(const char *name, const struct limits *l, json_t *devices, json_t **info, berth_error_t *err);
bool cgroup_is_v2(void);
/* Move process pid (all its threads) into the cgroup(s). */
int cgroup_enter(json_t *info, pid_t pid, berth_error_t *err);
/* Move the calling process, which must be single-threaded, without the
 * kernel's global lock where the hierarchy allows it (v1). */
int cgroup_enter_self(json_t *info, berth_error_t *err);
/* clone3(flags | CLONE_INTO_CGROUP) into a v2 cgroup: the child is born
 * there (*placed). -1 with errno EOPNOTSUPP where that does not apply (v1,
 * several paths, threads); cgroup_clone_refused(errno) says when a plain
 * clone and a move should be used instead. */
pid_t cgroup_clone_into(json_t *info, uint64_t flags, bool *placed);
bool cgroup_clone_refused(int e);
/* fork(), with the child born in the container's cgroup: clone3 with
 * CLONE_INTO_CGROUP on cgroup v2 (no migration), else the child moves
 * itself (a failure to move is not fatal: the child runs on). */
pid_t cgroup_fork_into(json_t *info);
/* Kill what is left and remove the directories. */
void cgroup_destroy(json_t *info);
/* current memory bytes and pids, -1 when unknown */
void cgroup_usage(json_t *info, int64_t *mem, int64_t *pids);
/* the OOM kills in the cgroup so far */
int64_t cgroup_oom_kills(json_t *info);
int parse_size(const char *s, int64_t *out, berth_error_t *err);

#endif
