/* preflight: diagnose the host, with the exact fix for each problem. */
#ifndef BERTH_PREFLIGHT_H
#define BERTH_PREFLIGHT_H
#include <jansson.h>
#include <stdbool.h>

/* {ready, runtime:"berth", checks:[{name, passed, required, detail, guidance}], summary} */
json_t *preflight_run(void);

/* For create: is the host ready? Reuses a passing verdict kept in the run
 * dir while its key (preflight_cache_key) still matches, else runs the
 * checks and keeps a passing verdict; false with *report = the full
 * preflight report (caller's reference) when not ready. */
bool preflight_ready(json_t **report);
/* what a kept verdict rests on (boot id, uids, kernel, berth build, dirs,
 * sysctls, subordinate id files, id map helpers, config files); NULL when
 * the boot id is unreadable (nothing is kept then). malloc'd. */
struct berth_config;
char *preflight_cache_key(struct berth_config *cfg);
/* the optional `gpu` check alone: GPUs on the host (/dev/nvidia*,
 * /dev/dri, /dev/kfd), CDI specs naming them, the command that writes
 * one; {name, passed, required, detail, guidance, fix} (new reference) */
json_t *preflight_gpu_check(void);

#endif
