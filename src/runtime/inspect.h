/* What `berth inspect`, `berth stats` and `berth top` read: a container's
 * record with its spec and image, an image's record, a running
 * container's resource use and its processes. Read-only: nothing here
 * takes a container's lock or changes a file. */
#ifndef BERTH_INSPECT_H
#define BERTH_INSPECT_H
#include <jansson.h>
#include "runtime/cgroup.h"
#include "util/util.h"

/* A container's record: state, live status, config from its spec (the
 * caller's environment by name only), network, limits, disk, and its
 * image's config. -ENOENT when there is no such container. */
int container_inspect(const char *name, json_t **out, berth_error_t *err);
/* An image by name, by digest (sha256:HEX) or by 4 or more of its first
 * hex digits: the store record, every name on it and its config.
 * -ENOENT when the store has no such image. */
int image_inspect(const char *ref, json_t **out, berth_error_t *err);

/* One reading of a running container's counters (state: its record). */
struct ctr_sample {
  struct cgroup_stats cg;
  int64_t net_rx, net_tx; /* bytes through every interface but lo; -1: unknown (host network) */
  double at; /* CLOCK_MONOTONIC seconds */
};
void container_sample(json_t *state, struct ctr_sample *s);

/* The processes in a running container's pid namespace:
 * [{pid, container_pid, uid, user, time, cmd}], pid order. */
int container_top(const char *name, json_t **out, berth_error_t *err);

/* parsers (exposed for the unit tests) */
/* /proc/PID/net/dev: rx and tx bytes summed over the interfaces but lo;
 * how many interfaces were counted */
int proc_net_dev_parse(const char *text, int64_t *rx, int64_t *tx);
/* the last field of /proc/PID/status's NSpid line (the pid in the innermost
 * namespace); -1 when absent */
long proc_status_nspid(const char *status);
/* the name of uid in /etc/passwd text (a copy), or NULL when it has none or
 * one with other characters than letters, digits and `._-` (the file is the
 * container's: its names reach a terminal) */
char *passwd_name(const char *text, long uid);

#endif
