/* Containers: create (monitor + berth's own init in new namespaces),
 * exec, list, status, remove. No daemon: state lives in files. */
#ifndef BERTH_CONTAINER_H
#define BERTH_CONTAINER_H
#include <jansson.h>
#include "runtime/cgroup.h"
#include "util/util.h"

struct exec_opts;
struct create_opts {
  const char *name, *image, *workdir, *purpose, *network, *platform;
  json_t *mounts; /* [{"host","container","mode"}] */
  json_t *env; /* {"K":"V"} */
  json_t *ports; /* [{"host","container","protocol","host_ip"}], bridge network only */
  bool mount_cwd, persistent, quiet;
  struct limits limits;
  /* the writable layer's size in bytes (0: none); root only, else the
   * result says it is not enforced */
  int64_t disk_limit;
  /* container_run: the container's main process, and whether the
   * container goes when it ends */
  const struct exec_opts *run;
  bool remove_on_exit;
  /* a seccomp profile (OCI or Docker JSON) for the workloads instead of
   * berth's; NULL: config `seccomp_profile`, else berth's */
  const char *seccomp_profile;
  /* The main process. A service container runs command (else the image's
   * Cmd) after entrypoint (else the image's Entrypoint), its output kept in
   * its log; a dev container has berth's init alone, kept alive for execs.
   * Explicit command/entrypoint (JSON string arrays): a service. Else
   * keep_alive or dev_needed (a purpose, setup): a dev container. Else the
   * image decides: a bare shell (or nothing) is a dev container. */
  json_t *command, *entrypoint;
  bool keep_alive, dev_needed;
  bool mount_cwd_explicit; /* a service gets the cwd mount only when asked */
  const char *user; /* the main process's user (default the image's) */
  const char *restart; /* no | on-failure[:N] | always | unless-stopped */
  int64_t ttl; /* seconds until it is removed (0: never) */
  /* names of the env values kept (0600, in its directory) for a later
   * start; NULL: all of them. The others exist only while it runs. */
  json_t *env_keep;
  /* the MCP session that made it ({pid, starttime}): removed when that
   * session ends, unless persistent */
  json_t *session;
  /* an egress policy as egress_normalize makes it (NULL: none, the
   * network as it is) */
  json_t *egress;
  /* devices: CDI names (vendor/class=name) and host device paths
   * (/dev/x[:CTR][:rwm]); gpu: some came from `gpu`/--gpus (a failure
   * then says what preflight's gpu check says) */
  json_t *devices;
  bool gpu;
};

struct exec_opts {
  const char *name;
  char *const *argv;
  json_t *env; /* {"K":"V"} */
  const char *workdir, *user;
  int timeout; /* seconds, 0 = none */
  bool tty;
  bool interactive; /* without tty: the caller's stdin is relayed (else the command reads /dev/null) */
  bool capture; /* collect stdout/stderr instead of passing them through */
  size_t capture_max; /* per stream */
  uint64_t keep_caps; /* capabilities kept (0 = none, the default) */
  /* the container's own seccomp program (security_seccomp_read); NULL:
   * berth's, or (exec) the one its spec names */
  const char *seccomp_bpf;
  size_t seccomp_len;
  /* already under berth's filter (a run's command inherits its init's):
   * loading it again would only stack a second copy */
  bool seccomp_inherited;
};

struct exec_result {
  int exit_code;
  bool timed_out;
  struct buf out, err;
  bool out_truncated, err_truncated;
};

int container_create(const struct create_opts *o, json_t **result, berth_error_t *err);
int container_exec(const struct exec_opts *o, struct exec_result *res, berth_error_t *err);
/* berth run: create a container whose main process is o->run (started by
 * its init once the container is up, in place of a separate exec), wait
 * for it here (this process is the container's monitor meanwhile: stdio,
 * terminal and signals pass straight through), then remove the container
 * (o->remove_on_exit) or record it exited. res->exit_code is the
 * command's; *result as create's. */
int container_run(const struct create_opts *o, struct exec_result *res, json_t **result, berth_error_t *err);
int container_list(json_t **out, berth_error_t *err);
/* Stop: the stop signal (the image's StopSignal, else SIGTERM), then
 * SIGKILL after timeout seconds (<0: 10). The container stays, stopped:
 * its restart policy does not bring it back. */
int container_stop(const char *name, int timeout, json_t **out, berth_error_t *err);
/* Start a stopped container again: same name, writable layer, mounts,
 * ports, network and limits; provisioning does not run again. */
int container_start(const char *name, json_t **out, berth_error_t *err);
int container_restart(const char *name, int timeout, json_t **out, berth_error_t *err);
/* a signal to the main process (a dev container: to its init) */
int container_kill(const char *name, int sig, json_t **out, berth_error_t *err);
/* the boot hook: start every persistent container (and those whose policy
 * is always or unless-stopped) that is not running */
int container_start_persistent(json_t **out, berth_error_t *err);
int container_parse_signal(const char *s);
/* The setup capability set for a container's processes (its state): with
 * an egress policy without CAP_NET_RAW, which can set SO_MARK, the mark
 * that lets the policy's resolver through. */
uint64_t container_setup_caps(json_t *state);
/* {pid, starttime} of this process, for create_opts.session */
json_t *container_session_ref(void);
/* a restart policy's syntax: no | on-failure[:N] | always | unless-stopped */
int container_parse_restart(const char *s, char *policy, size_t plen, int *max, berth_error_t *err);
int container_status(const char *name, bool health, json_t **out, berth_error_t *err);
/* Dry run of the container's egress policy: would dest (HOST[:PORT][/PROTO])
 * be reached, and by which rule? {allowed, destination, rule, reason} */
int container_egress_test(const char *name, const char *dest, json_t **out, berth_error_t *err);
int container_remove(const char *name, bool force, json_t **out, berth_error_t *err);
/* copy between host and a running container (into: host -> container) */
/* copy out: keep set-user-ID and set-group-ID bits (stripped by default) */
#define COPY_KEEP_SETID 1u
/* copy out: follow links at container_path inside the container's root
 * (by default a link is copied as a link) */
#define COPY_FOLLOW_LINKS 2u
int container_copy(const char *name, const char *host_path, const char *container_path, bool into, unsigned flags, berth_error_t *err);
/* copy a host tree into dirfd ddir, everything owned by uid:gid (-1 keeps) */
int copy_tree_owned(int sdir, const char *sname, int ddir, const char *dname, uid_t uid, gid_t gid, berth_error_t *err);

/* A user inside the container, from its own /etc/passwd and /etc/group
 * (never NSS: nothing of the image is loaded into berth). Call with the
 * container's root as "/". */
struct user_ids {
  uid_t uid;
  gid_t gid;
  gid_t *groups; /* the primary group first, then the memberships (no repeats) */
  int ngroups;
  char home[256];
};
/* The files are read bounded and without waiting: a FIFO, a device, a link
 * into /proc, a file over 4 MiB or with NUL bytes gets a clear error.
 * Free with user_ids_free. */
int container_lookup_user(const char *spec, struct user_ids *u, char *msg, size_t msglen);
void user_ids_free(struct user_ids *u);

/* Filesystem changes made inside a running container by a helper that
 * joins its user and mount namespaces: paths are resolved in its root,
 * "~/" is the user's home, and files belong to that user. */
enum cfs_kind { CFS_MKDIR, CFS_WRITE, CFS_SYMLINK, CFS_COPY };
struct cfs_op {
  enum cfs_kind kind;
  const char *path; /* absolute, or "~/..." */
  const char *data; /* CFS_WRITE: bytes; CFS_SYMLINK: link target */
  size_t len;
  mode_t mode;
  int host_dirfd; /* CFS_COPY: the source is host_name in this directory */
  const char *host_name;
  bool replace; /* CFS_SYMLINK/CFS_WRITE: replace what is there */
};
int container_fs_apply(const char *name, const char *user, const struct cfs_op *ops, size_t n, berth_error_t *err);
/* name_valid (util.h): the rule for container names */
bool container_name_valid(const char *name);
/* The container's directory (NULL: no data dir) and its state record as
 * last written (NULL: no such container); live_status says whether the
 * recorded init still runs. */
char *container_dir(const char *name);
json_t *container_state(const char *name);
const char *container_live_status(json_t *state);
/* Containers whose network is `net`: [{name, ip, hosts, status}]; live_only
 * keeps running (or being created) ones that hold an address. The
 * net_members_fn handed to network/'s named-network calls. */
json_t *container_network_members(const char *net, bool live_only);
/* internal: the monitor's last step (see tinyinit.c) */
int container_monitor_exit(const char *name, int code);
char *container_random_name(const char *prefix);

/* internal: a sealed memfd (close-on-exec) holding berth-tiny, or -1 with
 * errno (ENOSYS: this build has none, not x86_64) */
int tiny_memfd(void);
/* internal: the container's init, entered in the cloned child */
struct init_args;
/* internal (exec.c), for container_run: in the container's init (set up,
 * still privileged), start the command as exec would (user, terminal,
 * environment ["K=V"], confinement); it waits for a go byte on go_fd
 * before anything of it runs. A terminal's master goes to pty_sock.
 * ready(ready_arg) runs once nothing is left that could fail but the
 * start itself; the call returns once the command has exec'd (or ended). */
pid_t container_spawn_command(const struct exec_opts *o, json_t *spec, json_t *env_kv, int go_fd, int pty_sock, int out_fd, int err_fd,
                              void (*ready)(void *), void *ready_arg, berth_error_t *err);
/* the caller's side of a command's stdio: a terminal relayed until the
 * master closes or child ends (not reaped), or captured output */
void exec_relay_pty(int master, pid_t child);
void exec_collect(int out_r, int err_r, struct exec_result *res, size_t max);
int exec_recv_fd(int sock);

#endif
