/* cgroups for containers: pure v2 (delegated subtree) or v1/hybrid
 * controllers, always below the cgroup berth itself runs in. */
#ifndef BERTH_CGROUP_H
#define BERTH_CGROUP_H
#include <jansson.h>
#include "util/util.h"

/* the devices allow-list berth's own /dev needs (null, zero, full,
 * random, urandom, tty, ptmx, pts; read and write), as OCI
 * linux.resources.devices entries after a deny-all one */
json_t *cgroup_default_devices(void);
/* a spec's linux.resources.devices as berth applies it (the allow entries
 * of type c or b with a major, read and write, never mknod; not an array:
 * berth's own list), as a list for linux.resources */
json_t *cgroup_berth_devices(json_t *devices);

/* one allow entry of an OCI runtime's devices list: type 'a' (any), 'b'
 * or 'c'; major and minor -1 for any; what it allows */
struct cgroup_dev_rule {
  char type;
  int64_t major, minor;
  bool r, w, m;
};
/* the same kind of program from such entries, as given (berth-oci): what
 * no entry allows is refused, mknod included */
int cgroup_devices_bpf_rules(int cgfd, const struct cgroup_dev_rule *rules, size_t n, berth_error_t *err);

struct limits {
  int64_t memory; /* bytes, 0 = none */
  int64_t pids; /* 0 = none */
  double cpus; /* 0 = none */
};

/* Create the container's cgroup(s) and apply the spec's linux.resources
 * (spec_linux: its "linux"; the devices allow-list as cgroup_berth_devices
 * has it), through the same code as berth-oci (oci_cgroup_make), in
 * berth's layout: <own cgroup>/berth/NAME. When limits cannot be applied
 * (rootless without delegation) this still succeeds, returning a JSON
 * object {version, paths:[...], limits_applied, note}. */
int cgroup_create(const char *name, json_t *spec_linux, json_t **info, berth_error_t *err);
bool cgroup_is_v2(void);
/* What a container's cgroup has used; -1 for what is unknown or, for a
 * limit, not set. Memory is usage less inactive page cache (as docker stats
 * counts it); CPU from v1 cpuacct.usage or v2 cpu.stat; I/O from v1
 * blkio.throttle.io_service_bytes or v2 io.stat, where the cgroup has them. */
struct cgroup_stats {
  int64_t mem_usage, mem_limit;
  int64_t cpu_ns;
  int64_t pids, pids_max;
  int64_t io_read, io_write;
};
/* -1 when there is no cgroup to read (limits not applied) */
int cgroup_stats(json_t *info, struct cgroup_stats *out);
/* parsers of cgroup files: "KEY N" lines (-1: absent); a limit ("max" or
 * v1's largest value: -1); v2 io.stat and v1 blkio byte counts, summed */
int64_t cgroup_stat_field(const char *text, const char *key);
int64_t cgroup_parse_limit(const char *text);
void cgroup_parse_io_stat(const char *text, int64_t *rd, int64_t *wr);
void cgroup_parse_blkio(const char *text, int64_t *rd, int64_t *wr);
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
