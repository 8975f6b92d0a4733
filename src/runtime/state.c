/* The container record: its directory under <data>/containers, its lock,
 * its state (state.json: read, written, synced) and whether the processes
 * it names are still those processes. */
#define _GNU_SOURCE
#include "runtime/container.h"
#include "runtime/container_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

#include "util/config.h"

/* ---------- paths, state ---------- */
char *containers_dir(berth_error_t *err) {
  struct berth_config *cfg = config_get(err);
  return cfg ? xasprintf("%s/containers", cfg->data_dir) : NULL;
}

char *cpath(const char *name, const char *file) {
  cleanup_error berth_error_t e = NULL;
  cleanup_free char *d = containers_dir(&e);
  if (!d) return NULL;
  return file ? xasprintf("%s/%s/%s", d, name, file) : xasprintf("%s/%s", d, name);
}

bool container_name_valid(const char *n) { return name_valid(n); }

char *container_random_name(const char *prefix) {
  cleanup_free char *h = random_hex(3);
  return xasprintf("%s-%s", prefix && *prefix ? prefix : "env", h ? h : "000000");
}

json_t *state_read(const char *name) {
  cleanup_free char *p = cpath(name, "state.json");
  return p ? json_load_file(p, 0, NULL) : NULL;
}

char *container_dir(const char *name) { return container_name_valid(name) ? cpath(name, NULL) : NULL; }
json_t *container_state(const char *name) { return container_name_valid(name) ? state_read(name) : NULL; }

int state_write(const char *name, json_t *st, berth_error_t *err) {
  cleanup_free char *p = cpath(name, "state.json");
  cleanup_free char *txt = json_dumps(st, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (!p || !txt) return berth_error(err, -ENOMEM, "state");
  /* no fsync on the start path: the monitor syncs the record once the
   * container runs (state_sync), and liveness is read from /proc anyway.
   * A `run --rm` container's record goes with it: it need never reach the
   * disk (write_file_swap) */
  if (json_is_true(json_object_get(st, "remove_on_exit"))) return write_file_swap(p, txt, strlen(txt), 0600, err);
  return write_file_replace(p, txt, strlen(txt), 0600, false, err);
}

/* state_write where no caller takes the error: a failure is logged, not lost */
void state_write_warn(const char *name, json_t *st, const char *what) {
  cleanup_error berth_error_t e = NULL;
  if (state_write(name, st, &e) < 0) berth_warn("recording %s of %s: %s", what, name, e && e->msg ? e->msg : "failed");
}

void state_sync(const char *name) {
  cleanup_free char *p = cpath(name, "state.json");
  int fd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
  if (fd >= 0) {
    if (fsync(fd) < 0) {}
    close(fd);
  }
}

int container_lock(const char *name, berth_error_t *err) {
  cleanup_free char *p = cpath(name, "lock");
  if (!p) return berth_error(err, -ENOMEM, "lock");
  int fd = open(p, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return berth_error(err, errno == ENOENT ? -ENOENT : errno, errno == ENOENT ? "Container not found: %s" : "lock container %s", name);
  if (flock(fd, LOCK_EX) < 0) {
    close(fd);
    return berth_error(err, errno, "lock container %s", name);
  }
  return fd;
}

/* Is the process recorded as `field` (pid + starttime) still that process? */
struct state_proc state_proc(json_t *st, const char *field) {
  json_t *p = json_object_get(st, field);
  json_int_t pid = json_integer_value(json_object_get(p, "pid")), t = json_integer_value(json_object_get(p, "starttime"));
  if (pid <= 0 || pid > INT32_MAX || t <= 0) return (struct state_proc){0, 0};
  return (struct state_proc){(pid_t)pid, (unsigned long long)t};
}

bool state_proc_alive(json_t *st, const char *field) {
  struct state_proc sp = state_proc(st, field);
  pid_t pid = sp.pid;
  unsigned long long t = sp.start;
  cleanup_free char *b = boot_id_read();
  const char *sb = json_string_value(json_object_get(st, "boot_id"));
  if (!sb || strcmp(sb, b)) return false; /* rebooted since */
  return pid > 0 && t && proc_starttime(pid) == t;
}

static const char *const STATUS_NAMES[] = {"unknown", "creating", "running", "exited", "restarting"};

enum state_status state_status(json_t *st) {
  const char *s = json_string_value(json_object_get(st, "status"));
  for (size_t i = 1; s && i < sizeof STATUS_NAMES / sizeof *STATUS_NAMES; i++)
    if (!strcmp(s, STATUS_NAMES[i])) return (enum state_status)i;
  return STATUS_UNKNOWN;
}

enum state_status state_live(json_t *st) {
  enum state_status s = state_status(st);
  return s == STATUS_RUNNING && !state_proc_alive(st, "init") ? STATUS_EXITED : s;
}

const char *state_status_name(enum state_status s) {
  return (size_t)s < sizeof STATUS_NAMES / sizeof *STATUS_NAMES ? STATUS_NAMES[s] : "unknown";
}

void state_set_status(json_t *st, enum state_status s) { json_object_set_new(st, "status", json_string(state_status_name(s))); }

void state_to_running(json_t *st, const struct launched *L, pid_t monitor) {
  cleanup_free char *bid = boot_id_read();
  state_set_status(st, STATUS_RUNNING);
  /* the last run's end belongs to that run */
  json_object_del(st, "exit_code");
  json_object_del(st, "finished_at");
  json_object_del(st, "oom_killed");
  json_object_set_new(st, "init", proc_ref(L->pid));
  json_object_set_new(st, "monitor", proc_ref(monitor));
  json_object_set_new(st, "boot_id", json_string(bid));
  json_object_set_new(st, "started_at", json_integer((json_int_t)time(NULL)));
  json_object_set_new(st, "single_id_mapping", json_boolean(L->single));
  if (L->note) json_object_set_new(st, "notes", json_pack("[s]", L->note));
  if (L->helper > 0) json_object_set_new(st, "network_helper", proc_ref(L->helper));
  if (L->fwd > 0) json_object_set_new(st, "port_forwarder", proc_ref(L->fwd));
  if (L->egress > 0) json_object_set_new(st, "egress_helper", proc_ref(L->egress));
}

void state_to_exited(json_t *st, int code, bool oom) {
  state_set_status(st, STATUS_EXITED);
  json_object_set_new(st, "exit_code", json_integer(code));
  json_object_set_new(st, "finished_at", json_integer((json_int_t)time(NULL)));
  json_object_set_new(st, "oom_killed", json_boolean(oom));
}

void state_to_restarting(json_t *st, long long backoff_ms, pid_t monitor) {
  state_set_status(st, STATUS_RESTARTING);
  json_object_set_new(st, "restart_backoff_ms", json_integer((json_int_t)backoff_ms));
  json_object_set_new(st, "monitor", proc_ref(monitor));
}

void state_restart_failed(json_t *st, int count, const char *why) {
  state_set_status(st, STATUS_EXITED);
  json_object_set_new(st, "restart_count", json_integer(count));
  json_object_set_new(st, "restart_error", json_string(why ? why : "the start failed"));
}

json_t *proc_ref(pid_t pid) { return json_pack("{s:i, s:I}", "pid", (int)pid, "starttime", (json_int_t)proc_starttime(pid)); }
