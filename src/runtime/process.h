/* Becoming the container's process, the steps berth's own commands
 * (exec.c: `berth exec`, `run`, a service's main process) and berth-oci's
 * (oci_linux.c: the first process, `exec`) take alike, in their own order:
 * the signals a fresh process has, the user's ids and groups, and a working
 * directory checked to lie inside the container's root. */
#ifndef BERTH_PROCESS_H
#define BERTH_PROCESS_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/util.h"

/* every signal at its default and none blocked: an ignored one (SIGPIPE
 * while berth launches, SIGCHLD from an engine) survives an exec, and a
 * shell whose SIGCHLD is ignored sees every wait() fail with ECHILD.
 * Through the raw call: glibc's sigaction refuses its own signals (32, 33),
 * which a caller may have left ignored too. */
void process_reset_signals(void);

/* The namespace kinds of a config's linux.namespaces: the clone flag and
 * the name under /proc/PID/ns, in the order they are joined (user first:
 * the others are joined with its rights). */
struct ns_kind {
  const char *type;
  int flag;
  const char *proc;
};
enum { N_NS_KINDS = 8 };
extern const struct ns_kind NS_KINDS[N_NS_KINDS];
/* index into NS_KINDS, or -1 */
int ns_kind_index(const char *type);
/* the clone flags of the namespaces linux.namespaces asks to be new (an
 * entry without a path); an unknown or repeated type is an error */
int ns_new_flags(json_t *linux_, unsigned long *flags, berth_error_t *err);

/* Is setgroups(2) denied in this user namespace (a single-id mapping made
 * without newgidmap writes "deny")? */
bool process_setgroups_denied(void);

/* Become uid:gid with these supplementary groups. Where the user namespace
 * denies setgroups (a single-id mapping), the groups stay as they are and
 * *single is set, unless groups_required (the caller named groups that
 * must be had). keep_caps: the capabilities survive the uid change (the
 * caller sets its own sets afterwards). An id the user namespace does not
 * map fails with -EINVAL and a message that says so; `who` names the
 * process in it ("process.user", "exec"). */
int process_set_ids(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups, bool groups_required, bool keep_caps, const char *who,
                    bool *single, berth_error_t *err);

/* chdir to cwd, which must then lie inside the container's root: a path
 * through a directory fd leaked from the host (/proc/self/fd/N,
 * CVE-2024-21626) lands outside it, where getcwd() fails or answers
 * "(unreachable)..." */
int process_enter_cwd(const char *cwd, berth_error_t *err);
#endif
