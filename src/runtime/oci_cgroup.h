/* An OCI container's cgroup: linux.cgroupsPath and linux.resources, on
 * cgroup v1/hybrid and v2. `info` is a JSON object the runtime stores in the
 * container's state and passes back (at least {"version":1|2,"paths":{...}} ). */
#ifndef BERTH_OCI_CGROUP_H
#define BERTH_OCI_CGROUP_H
#include <jansson.h>
#include <sys/types.h>
#include "util/util.h"
/* Make the cgroup(s) for container `id` as `linux_` (the config's "linux" object; may be NULL) says,
 * apply linux.resources, and move `pid` (all its threads) into it.
 * No cgroupsPath: "berth-oci/<id>" below the caller's own cgroup.
 * rootless: when the hierarchy is not writable for us and resources are empty, succeed
 * with no cgroup (info {"version":N,"paths":{}, "applied":false}); with resources set, fail
 * with a message saying limits need a delegated cgroup (how to get one).
 * systemd_cgroup: the cgroupsPath may be "slice:prefix:name" (runc --systemd-cgroup);
 * there is no systemd here: map it to the cgroupfs path <slice>/<prefix>-<name>.scope
 * (say so in a comment). */
int oci_cgroup_create(const char *id, json_t *linux_, pid_t pid, bool rootless, bool systemd_cgroup, json_t **info, berth_error_t *err);
/* The one way a container's cgroup is made and limited, for berth-oci
 * (oci_cgroup_create: the config alone) and for berth's own containers
 * (cgroup_create: the manager's layout, and lenient). */
struct oci_cgroup_req {
  const char *id; /* the container: the default path's leaf, and v2_base's */
  json_t *linux_; /* the config's "linux": cgroupsPath and resources */
  pid_t pid; /* moved in (cgroup.procs) when > 0 */
  bool rootless, systemd_cgroup;
  const char *path; /* instead of linux.cgroupsPath (relative: below the caller's own cgroup) */
  const char *v2_base; /* pure v2: the leaf is <v2_base>/<id>, in a directory the caller made with its controllers enabled */
  const char *const *v1_ctrls; /* v1: groups only in the hierarchies of these (NULL-ended) and of the controllers the resources use;
                                  NULL: every mounted one */
  bool lenient; /* what cannot be made or applied is said in info's "note" (applied false) and the create goes on; a devices
                   allow-list that cannot be applied is a debug message */
};
int oci_cgroup_make(const struct oci_cgroup_req *req, json_t **info, berth_error_t *err);
/* the files through which a process moves itself in ("0"), one per line
 * (malloc'd): v1 `tasks` (a thread moving itself skips the kernel's global
 * threadgroup lock), v2 cgroup.procs */
char *oci_cgroup_self_files(json_t *info);
/* move pid (all its threads) in from outside, through cgroup.procs */
int oci_cgroup_enter(json_t *info, pid_t pid, berth_error_t *err);
/* apply a linux.resources object again (runc update) */
int oci_cgroup_update(json_t *info, json_t *resources, berth_error_t *err);
/* freezer: v1 freezer.state FROZEN/THAWED (wait until it settles), v2 cgroup.freeze */
int oci_cgroup_freeze(json_t *info, bool frozen, berth_error_t *err);
bool oci_cgroup_frozen(json_t *info);
/* the pids in the cgroup (malloc'd array), for `ps` and `kill --all` */
int oci_cgroup_pids(json_t *info, pid_t **pids, size_t *n, berth_error_t *err);
/* signal every process of the cgroup (v2: cgroup.kill for SIGKILL where present) */
int oci_cgroup_kill_all(json_t *info, int sig, berth_error_t *err);
/* linux.resources.devices as a cgroup v2 BPF program on the directory cgfd (root) */
int oci_cgroup_devices_v2(int cgfd, json_t *devices, berth_error_t *err);
/* the directories of info's paths, each once (at most max) */
size_t oci_cgroup_dirs(json_t *info, const char **out, size_t max);
/* remove the directories (kill what is left first, wait briefly); best effort */
void oci_cgroup_destroy(json_t *info);
#endif
