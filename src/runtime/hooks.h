/* OCI hooks (config.json `hooks`, from CDI specs): each runs with the
 * container's state on stdin, its own path, args and env (never the
 * container's environment), and at most its timeout. */
#ifndef BERTH_HOOKS_H
#define BERTH_HOOKS_H
#include <jansson.h>
#include "util/util.h"

/* the spec has hooks of this kind (createRuntime, createContainer, ...) */
bool hooks_any(json_t *spec, const char *kind);
/* the OCI state a hook reads: {ociVersion, id, status, pid, bundle, annotations} (malloc'd) */
char *hooks_state(json_t *spec, const char *id, const char *status, pid_t pid, const char *bundle);
/* seconds a hook without a timeout of its own gets (a create must not hang) */
#define HOOK_DEFAULT_TIMEOUT 60
/* startContainer: the path is the container's; the hook runs as the
 * container's root without capabilities, with no_new_privs and berth's
 * seccomp filter, exec'd through berth-tiny (a host binary never execs a
 * path the container controls) */
#define HOOK_CONFINED 1u
/* Run the spec's hooks of one kind in order, in this process's namespaces;
 * the first that fails, times out or cannot start stops the rest, and
 * *err names it with the end of its output. */
int hooks_run(json_t *spec, const char *kind, const char *state, unsigned flags, berth_error_t *err);

#endif
