/* Workload confinement: capabilities, no_new_privs, seccomp. */
#ifndef BERTH_SECURITY_H
#define BERTH_SECURITY_H
#include "util.h"

/* Drop every capability (bounding, ambient, permitted, effective,
 * inheritable) except those in keep (a bitmask of CAP_* numbers; 0 for
 * workloads). Call after setuid-type changes are done. */
int security_drop_caps(uint64_t keep, berth_error_t *err);
/* Only the bounding and ambient sets: done before switching to a non-root
 * user, which needs CAP_SETPCAP for it. */
int security_drop_bounding(uint64_t keep, berth_error_t *err);
int security_no_new_privs(berth_error_t *err);
/* Load berth's seccomp profile (profiles/seccomp.json, built in). */
int security_seccomp(berth_error_t *err);
/* Build the filter (a scmp_filter_ctx) from the profile; for gen-seccomp. */
int security_seccomp_build(void **out, berth_error_t *err);
/* Capability mask of Docker's default set (for provisioning steps). */
uint64_t security_docker_default_caps(void);

#endif
