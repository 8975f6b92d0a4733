/* The bundle runtime: an OCI bundle (config.json + root filesystem) turned
 * into a container, with the runtime spec's operations (create, start,
 * state, kill, delete, exec) and runc's extras (run, ps, list, pause,
 * resume, update). This is what `berth-oci` serves to podman, containerd
 * and CRI-O; it reads config.json alone and keeps its state under --root.
 *
 *   create:  runtime ──fork──▶ stage 1 (joins ns paths, unshares the new
 *            ones; the runtime writes its id maps) ──clone(PARENT)──▶
 *            container process (mounts, devices, pivot_root, ...) which
 *            reports "created" on the sync socket and blocks opening
 *            exec.fifo; the runtime records the state and exits.
 *   start:   opens exec.fifo: the container process runs startContainer
 *            hooks, drops to the process's user, caps and seccomp, execs.
 */
#ifndef BERTH_OCI_H
#define BERTH_OCI_H
#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include "util/util.h"

struct oci_global {
  const char *root; /* state directory (--root) */
  bool systemd_cgroup; /* --systemd-cgroup */
  int rootless; /* --rootless: -1 auto, 0 false, 1 true */
  bool debug;
};

struct oci_create_opts {
  const char *id, *bundle, *pid_file, *console_socket;
  bool no_pivot, no_new_keyring;
  int preserve_fds;
  bool detach; /* run: do not wait */
  bool keep; /* run: keep the container after it exits */
};

struct oci_exec_opts {
  const char *id;
  json_t *process; /* a runtime-spec process object (from --process or the flags) */
  const char *pid_file, *console_socket;
  bool detach;
  int preserve_fds;
};

/* state directory for this caller: --root, else /run/berth-oci (root) or
 * $XDG_RUNTIME_DIR/berth-oci */
const char *oci_root(const struct oci_global *g);
bool oci_id_valid(const char *id);

/* `run`: create + start, then (not detached) wait and delete; returns the
 * process's exit status (0-255) or -1 */
int oci_create(const struct oci_global *g, const struct oci_create_opts *o, bool start, berth_error_t *err);
int oci_start(const struct oci_global *g, const char *id, berth_error_t *err);
/* the spec's state JSON */
int oci_state(const struct oci_global *g, const char *id, json_t **out, berth_error_t *err);
int oci_kill(const struct oci_global *g, const char *id, int sig, bool all, berth_error_t *err);
int oci_delete(const struct oci_global *g, const char *id, bool force, berth_error_t *err);
/* not detached: the exit status of the process (0-255) */
int oci_exec(const struct oci_global *g, const struct oci_exec_opts *o, berth_error_t *err);
int oci_list(const struct oci_global *g, json_t **out, berth_error_t *err);
int oci_pids(const struct oci_global *g, const char *id, pid_t **pids, size_t *n, berth_error_t *err);
int oci_pause(const struct oci_global *g, const char *id, bool pause, berth_error_t *err);
int oci_update(const struct oci_global *g, const char *id, json_t *resources, berth_error_t *err);
/* the runtime-spec features document */
json_t *oci_features(void);
/* a default config.json (rootless: with a user namespace mapping the caller) */
json_t *oci_default_spec(bool rootless);
/* signal by name ("KILL", "SIGKILL") or number; -1 if unknown */
int oci_parse_signal(const char *s);

/* ---- inside: the container process's setup (oci_linux.c) ---- */
struct oci_init {
  json_t *spec;
  const char *bundle, *rootfs, *id, *state_dir;
  int sync_fd; /* to the runtime: messages below */
  int fifo_fd; /* O_PATH exec.fifo (-1: run, start at once) */
  int console_fd; /* connected console socket (-1: none) */
  int preserve_fds;
  bool no_pivot, no_new_keyring, in_userns, new_userns, rootless;
  char *own_cgroups; /* /proc/self/cgroup before the cgroup namespace */
};
/* Messages on the sync socket (SOCK_SEQPACKET), fixed header + payload. */
enum oci_sync_type {
  OCI_SYNC_MAPPED = 1, /* runtime -> stage 1: id maps written */
  OCI_SYNC_PID, /* stage 1 -> runtime: the container process's pid (payload: int32) */
  OCI_SYNC_USERNS, /* stage 1 -> runtime: please write the id maps */
  OCI_SYNC_CGROUP, /* runtime -> container: the cgroup files to join ("0"), then (again) createRuntime hooks done, go on */
  OCI_SYNC_HOOKS, /* container -> runtime: joined (value 0) or please move me (1) */
  OCI_SYNC_CREATED, /* container -> runtime: ready, waiting on exec.fifo */
  OCI_SYNC_ERROR, /* any -> runtime: payload is the message */
};
struct oci_sync_msg {
  uint32_t type;
  int32_t value;
  char text[3072];
};
int oci_sync_send(int fd, enum oci_sync_type t, int32_t value, const char *text);
/* -1 on EOF/error; the message in *m */
int oci_sync_recv(int fd, struct oci_sync_msg *m);

/* The container process: everything from mounts to exec; never returns. */
__attribute__((noreturn)) void oci_init_main(struct oci_init *in);
/* the exec'd process in an existing container: user, caps, rlimits,
 * no_new_privs, seccomp, cwd, env, terminal; never returns (on failure
 * writes the message to report_fd and exits 127) */
__attribute__((noreturn)) void oci_process_exec(json_t *process, json_t *spec, int console_fd, int report_fd, int preserve_fds,
                                                bool setsid_);
/* capabilities and rlimits that the kernel knows (checked at create) */
int oci_process_validate(json_t *process, berth_error_t *err);
/* capability number -> name (NULL past the last one berth-oci knows) */
const char *oci_cap_name(int n);
/* capability name -> number (-1 unknown) */
int oci_cap_number(const char *name);
/* compile linux.seccomp now (while the host's libseccomp can be loaded) */
int oci_seccomp_prepare(json_t *seccomp, berth_error_t *err);
/* apply linux.seccomp (NULL/none: nothing) */
int oci_seccomp_apply(json_t *seccomp, berth_error_t *err);

#endif
