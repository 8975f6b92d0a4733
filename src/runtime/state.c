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

json_t *proc_ref(pid_t pid) { return json_pack("{s:i, s:I}", "pid", (int)pid, "starttime", (json_int_t)proc_starttime(pid)); }
