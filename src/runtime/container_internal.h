/* What the container code of runtime/ shares between its files: the
 * container record (state.c), berth init (init.c), the launch and the
 * monitor (launch.c), create and run (container.c), removal (remove.c),
 * list and status (status.c) and the lifecycle (lifecycle.c). Internal to
 * runtime/: the API is container.h. */
#ifndef BERTH_CONTAINER_INTERNAL_H
#define BERTH_CONTAINER_INTERNAL_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "runtime/container.h"
#include "network/network.h"
#include "image/store.h"
#include "util/util.h"

struct egress_net;

/* ---------- the container record (state.c) ---------- */
char *containers_dir(berth_error_t *err);
/* <data>/containers/NAME[/FILE] */
char *cpath(const char *name, const char *file);
json_t *state_read(const char *name);
int state_write(const char *name, json_t *st, berth_error_t *err);
/* state_write where no caller takes the error: a failure is logged, not lost */
void state_write_warn(const char *name, json_t *st, const char *what);
void state_sync(const char *name);
/* the container's lock (flock, exclusive): its fd, or -1 */
int container_lock(const char *name, berth_error_t *err);
/* a process the record names ("init", "monitor"): its pid and start time
 * (clock ticks after boot); {0, 0} when none is recorded */
struct state_proc {
  pid_t pid;
  unsigned long long start;
};
struct state_proc state_proc(json_t *st, const char *field);
/* Is the process recorded as `field` still that process, in this boot? */
bool state_proc_alive(json_t *st, const char *field);
/* {"pid", "starttime"} of a process */
json_t *proc_ref(pid_t pid);
/* The record's `status`, typed. creating: a create or start holds the
 * lock; running: its init was started (state_live checks it still runs);
 * exited: it ended and its end was recorded; restarting: its monitor
 * waits out the restart back-off. unknown: missing or damaged. */
enum state_status { STATUS_UNKNOWN, STATUS_CREATING, STATUS_RUNNING, STATUS_EXITED, STATUS_RESTARTING };
enum state_status state_status(json_t *st);
/* as recorded, but a running one whose init is gone (killed from outside,
 * the host rebooted) reads exited */
enum state_status state_live(json_t *st);
const char *state_status_name(enum state_status s);
/* only the status (stopping a restarting container: its last end stays) */
void state_set_status(json_t *st, enum state_status s);
/* The transitions, each writing every field it owns, on a record in
 * memory (the caller holds the lock and writes it): */
struct launched;
/* started: init and its monitor and helpers, the boot, the start time;
 * the last run's end (exit code, end time, OOM) goes */
void state_to_running(json_t *st, const struct launched *L, pid_t monitor);
/* ended with code (128+N: signal N); oom: the cgroup saw an OOM kill */
void state_to_exited(json_t *st, int code, bool oom);
/* the restart policy's back-off: monitor sleeps backoff_ms, then starts it */
void state_to_restarting(json_t *st, long long backoff_ms, pid_t monitor);
/* a restart that could not start it: exited again, the count up, why */
void state_restart_failed(json_t *st, int count, const char *why);

/* ---------- launcher <-> init messages (init.c) ----------
 * On the two pipes between the launcher and berth init: a fixed header,
 * then `len` bytes of payload. One writer per direction. */
enum init_msg {
  INIT_MSG_GO = 1, /* launcher -> init: ids mapped, mount the root; value 0: give up */
  INIT_MSG_CGROUP, /* launcher -> init: the cgroup is made; value 1: the launcher brought our loopback up;
                        * payload: a v1 cgroup (cgroup_create's JSON) to move ourselves into, or none (placed) */
  INIT_MSG_HOOKS, /* init -> launcher: run prestart and createRuntime, then answer */
  INIT_MSG_HOOKS_DONE, /* launcher -> init: value: init's pid as the host sees it; 0: a hook failed */
  INIT_MSG_FUSE, /* init -> launcher: serve our root with fuse-overlayfs, then answer */
  INIT_MSG_FUSE_DONE, /* launcher -> init: value 1: mounted */
  INIT_MSG_READY, /* init -> launcher: set up; payload: a remark for the result, or none */
  INIT_MSG_ERROR, /* init -> launcher: the setup failed; payload: the message */
};
struct init_msg_hdr {
  uint32_t type; /* enum init_msg */
  int32_t value;
  uint32_t len; /* payload bytes that follow */
};
int init_msg_send(int fd, enum init_msg type, int32_t value, const char *payload);
/* the next message; its payload NUL-terminated in *payload (malloc'd, NULL
 * when none). -1 on EOF, a broken message or a payload over 1 MiB */
int init_msg_recv(int fd, struct init_msg_hdr *h, char **payload);
/* the next message must be `type`: its value, or -1 */
int init_msg_expect(int fd, enum init_msg type, char **payload);

/* ---------- berth init (init.c) ---------- */
struct init_args {
  json_t *spec;
  const char *cdir, *name;
  pid_t host_pid; /* ours as the host sees it (for hooks' state), from the launcher */
  int sync_fd; /* read: monitor says go */
  int report_fd; /* write: "" on success or an error message */
  bool rootless, single_map;
  const char *note; /* success with a remark (e.g. the copied root) */
  /* berth run: the command, started by init once set up; it waits for a
   * go byte on run_go (the launcher sends it when the network is up) */
  const struct exec_opts *run;
  json_t *run_env; /* ["K=V"]: the caller's variables */
  int run_go, pty_sock, out_fd, err_fd;
  /* the upper layer is thrown away with the container (run --rm): overlay
   * may skip syncing it (`volatile`), which spares the unmount a flush of
   * the store's filesystem */
  bool volatile_upper;
  /* the second go byte was read early (to ask for fuse-overlayfs) */
  bool second_go_done, lo_done;
};

int init_main(struct init_args *a);
/* ask the launcher to serve our root with fuse-overlayfs */
bool init_fuse_root(struct init_args *a);
void loopback_up(void);

/* ---------- launch and monitor (launch.c) ---------- */
struct monitor_args {
  const char *name, *cdir, *id;
  json_t *spec;
  const char *cgname; /* made by launch(), while init mounts (berth run) */
  json_t *cg_made; /* or made already (create: before the monitor's fork, which
                       * cgroup v2 placement needs: berth alone in its cgroup) */
  bool rootless, own_net;
  int report_fd; /* to the CLI (-1: `berth run`, the launcher is the CLI) */
  int lock_fd; /* the create's lock: init must not hold it */
  int env_fd; /* sealed memfd with the caller's variables; init keeps it as fd 3 */
  bool bridge; /* start slirp4netns; init keeps its exit pipe as fd 4 */
  json_t *ports;
  int *port_fds; /* bound on the host by create */
  /* root's default network on berth0, or a named network: the address */
  bool hostbr;
  /* a named network: its holder's namespaces (opened under its lock) */
  bool named;
  const struct net_lease *lease;
  bool net_single;
  const char *ip;
  json_t *egress; /* the egress policy (NULL: none) */
  /* berth run: init starts this command (see struct init_args) */
  const struct exec_opts *run;
  json_t *run_env;
  int run_go, pty_sock, out_fd, err_fd;
  bool volatile_upper;
  /* a service: init starts this command, its output goes to the log, and
   * the monitor stays (resident) to write it; also resident for a restart
   * policy or an expiry (expires_at, unix seconds) */
  const struct exec_opts *service;
  bool resident;
  double expires_at;
};

/* what launch() started */
struct launched {
  json_t *cg; /* the cgroup it made (cgroup_create's info) */
  pid_t pid, helper, fwd; /* init, slirp4netns, the ports forwarder (0: none) */
  pid_t egress; /* the egress policy's helper (0: none) */
  bool single; /* one id mapped */
  char *note; /* a remark of init's setup */
};

int launch(struct monitor_args *m, struct launched *L, berth_error_t *err);
/* exec berth-tiny from a memfd; returns only on failure */
void exec_tiny(char *const argv[], char *const envp[]);
void monitor_main(struct monitor_args *m);
void egress_net_of(const struct monitor_args *m, struct egress_net *n);
void poststart(json_t *spec, const char *name, const char *cdir, pid_t pid, char **note);
void poststop(const char *name, const char *cdir, json_t *known);
void record_running(const char *name, const struct launched *L, pid_t monitor);
int record_exit(const char *who, int code, bool reap_children);

/* ---------- removal (remove.c) ---------- */
/* what a background removal (run --rm) leaves to its detached child: the
 * container's mount namespace (hold_fd; the unmounts wait for expedited
 * RCU) and its cgroup */
struct rm_later {
  int hold_fd;
  json_t *cg;
};

int remove_container_dir(const char *cdir, berth_error_t *err);
int remove_container(const char *name, const char *want_id, int userns_hint, bool force, struct rm_later *later, json_t **out,
                     berth_error_t *err);
/* wait until the process recorded as `field` is gone (at most secs) */
void wait_gone(json_t *st, const char *field, double secs);

/* ---------- create and run (container.c) ---------- */
struct create_ctx {
  const struct create_opts *o;
  json_t *cdi_edits, *cdi_notes; /* the devices asked for, resolved before anything is made */
  struct berth_config *cfg;
  const char *name, *cdir, *network;
  json_t *img, *icfg;
  json_t *cg, *spec; /* owned by the caller, filled here */
  int env_fd;
  bool slirp; /* outbound through slirp4netns (bridge or a named network) */
  int *port_fds; /* published ports, bound on the host before anything else */
  char *note; /* a remark of the container's setup, for the result */
  char *disk_note; /* a disk limit asked for and not enforced: why */
  bool disk_on; /* the writable layer is a filesystem of disk_limit bytes */
  int lock_fd;
  char *id, *cgname;
  struct net_lease lease; /* named network: address and holder */
  bool hostbr; /* root's default network on berth0 */
  char hb_ip[16];
  /* container_run: what launch() started, and the launcher's ends */
  struct launched L;
  int userns_fd; /* rootless: the container's user namespace, for the removal */
  int mnt_fd;
  int run_go_w, pty_sock, out_r, err_r;
  struct store store; /* open shared from the image's lookup to layers.json */
  bool store_held;
  /* a service: its command (a JSON array, and argv pointing into it) */
  json_t *svc_argv;
  char **svc_cargv;
  struct exec_opts svc;
  bool resident;
  double expires_at;
};

/* a create_ctx with every descriptor closed (-1), for create and start */
#define CREATE_CTX_NO_FDS                                                                                                                  \
  .env_fd = -1, .lock_fd = -1, .lease = {.lock_fd = -1, .userns_fd = -1, .netns_fd = -1}, .userns_fd = -1, .run_go_w = -1, .pty_sock = -1, \
  .out_r = -1, .err_r = -1, .mnt_fd = -1

char *hostbr_resolv(void);
int write_gen_files(const char *cdir, const char *name, const char *network, const char *ip, bool hostbr, bool egress, bool again,
                    berth_error_t *err);
int env_memfd(json_t *env, berth_error_t *err);
int start_monitor(struct create_ctx *c, berth_error_t *err);

/* ---------- list and status (status.c) ---------- */
const char *live_status(json_t *st);
bool reap_stale_create(const char *dir, const char *name, json_t *st);

/* ---------- lifecycle (lifecycle.c) ---------- */
int start_existing(const char *name, int env_fd_in, bool auto_restart, json_t **out, berth_error_t *err);
bool reap_expired(const char *name, json_t *st);
#endif
