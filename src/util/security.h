/* Workload confinement: capabilities, no_new_privs, seccomp. */
#ifndef BERTH_SECURITY_H
#define BERTH_SECURITY_H
#include "util/util.h"

/* the highest capability number this kernel knows (cap_last_cap) */
int security_last_cap(void);
/* Drop every capability (bounding, ambient, permitted, effective,
 * inheritable) except those in keep (a bitmask of CAP_* numbers; 0 for
 * workloads). Call after setuid-type changes are done. */
int security_drop_caps(uint64_t keep, berth_error_t *err);
/* Only the bounding and ambient sets: done before switching to a non-root
 * user, which needs CAP_SETPCAP for it. */
int security_drop_bounding(uint64_t keep, berth_error_t *err);
int security_no_new_privs(berth_error_t *err);
/* Load berth's seccomp filter (profiles/seccomp/default.json, compiled at
 * build time): init's own, and every workload's unless its container has
 * a profile of its own. */
int security_seccomp(berth_error_t *err);
/* Load a compiled profile (security_seccomp_bpf), or berth's when NULL. */
int security_seccomp_program(const char *bpf, size_t len, berth_error_t *err);
/* A container's own compiled profile, named in its spec (annotation
 * berth.seccomp); *bpf NULL when it has none. Read it while the host's
 * files are in view. */
int security_seccomp_read(json_t *spec, char **bpf, size_t *len, berth_error_t *err);
/* Compile a profile in the OCI runtime-spec linux.seccomp format (what
 * Docker's profiles use, with their archMap and includes/excludes) into a
 * libseccomp filter (scmp_filter_ctx). Bad input: -1 and *err saying which
 * entry and field. Call lazylib_require_seccomp first. */
int security_seccomp_compile(json_t *profile, void **out, berth_error_t *err);
/* The default profile compiled; for gen-seccomp and the run-time fallback. */
int security_seccomp_build(void **out, berth_error_t *err);
/* A profile compiled to the BPF program berth loads (malloc'd *bpf). */
int security_seccomp_bpf(json_t *profile, char **bpf, size_t *len, berth_error_t *err);
/* Capability mask for provisioning steps: Docker's default set less CAP_MKNOD. */
uint64_t security_setup_caps(void);

#endif
