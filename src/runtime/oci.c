/* The bundle runtime's operations (see oci.h for the process diagram).
 *
 * State, per container, under the root (0700):
 *   <root>/<id>/state.json   pid + its start time, bundle, created, cgroup
 *   <root>/<id>/config.json  the config as it was at create (a later edit
 *                            of the bundle's file changes nothing)
 *   <root>/<id>/exec.fifo    exists from create until start
 * The status is derived, never stored: the pid alive (same start time)
 * with the fifo is `created`, without it `running` (or `paused` when
 * frozen), gone is `stopped`. */
#define _GNU_SOURCE
#include "runtime/oci.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/hooks.h"
#include "runtime/oci_cgroup.h"
#include "runtime/process.h"
#include "util/userns.h"

#define OCI_VERSION "1.0.2"

static bool in_userns(void) {
  static int cached = -1;
  if (cached < 0) {
    cleanup_free char *m = NULL;
    cached = read_file("/proc/self/uid_map", 4096, &m, NULL, NULL) == 0 && !strstr(m, "4294967295");
  }
  return cached;
}

static bool is_rootless(const struct oci_global *g) {
  if (g->rootless >= 0) return g->rootless;
  return geteuid() != 0 || in_userns();
}

const char *oci_root(const struct oci_global *g) {
  static char buf[PATH_MAX];
  if (g->root && *g->root) return g->root;
  if (geteuid() == 0 && !in_userns()) return "/run/berth-oci";
  const char *x = getenv("XDG_RUNTIME_DIR");
  if (x && *x) snprintf(buf, sizeof buf, "%s/berth-oci", x);
  else snprintf(buf, sizeof buf, "/tmp/berth-oci-%u", (unsigned)geteuid());
  return buf;
}

/* as runc: letters, digits and . _ + - (no path separators) */
bool oci_id_valid(const char *id) {
  if (!id || !*id || strlen(id) > 1024 || !strcmp(id, ".") || !strcmp(id, "..")) return false;
  for (const char *c = id; *c; c++)
    if (!(('a' <= *c && *c <= 'z') || ('A' <= *c && *c <= 'Z') || ('0' <= *c && *c <= '9') || strchr("._+-", *c))) return false;
  return true;
}

/* the state root must be ours alone: a directory another user made first
 * (the /tmp fallback) could plant a saved config whose hooks we would run */
static int root_check(const struct oci_global *g, berth_error_t *err) {
  const char *root = oci_root(g);
  struct stat st;
  if (lstat(root, &st) < 0) return errno == ENOENT ? 0 : berth_error(err, errno, "the state directory %s", root);
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
    return berth_error(err, -EPERM,
                       "the state directory %s is not a directory of yours alone (owner %u, mode %o): remove it, or "
                       "give --root DIR",
                       root, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
  return 0;
}

static char *state_path(const struct oci_global *g, const char *id, const char *file) {
  return file ? xasprintf("%s/%s/%s", oci_root(g), id, file) : xasprintf("%s/%s", oci_root(g), id);
}

static int id_check(const char *id, berth_error_t *err) {
  if (!oci_id_valid(id))
    return berth_error(err, -EINVAL, "container ID `%.80s` is invalid: use letters, digits, `.`, `_`, `+` and `-`", id ? id : "");
  return 0;
}

struct ostate {
  json_t *st, *spec;
  pid_t pid;
  const char *status;
};

static void ostate_free(struct ostate *s) {
  json_decref(s->st);
  json_decref(s->spec);
}
#define cleanup_ostate __attribute__((cleanup(ostate_free)))

static bool pid_alive(pid_t pid, unsigned long long start) {
  if (pid <= 0) return false;
  char p[64], buf[512];
  snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  char *rp = strrchr(buf, ')');
  if (!rp || rp[1] != ' ') return false;
  if (rp[2] == 'Z' || rp[2] == 'X') return false; /* exited, not yet reaped */
  return !start || proc_starttime(pid) == start;
}

static int load(const struct oci_global *g, const char *id, struct ostate *s, berth_error_t *err) {
  memset(s, 0, sizeof *s);
  if (id_check(id, err) < 0 || root_check(g, err) < 0) return -1;
  cleanup_free char *sp = state_path(g, id, "state.json");
  cleanup_free char *cp = state_path(g, id, "config.json");
  json_error_t je;
  s->st = json_load_file(sp, 0, &je);
  if (!s->st) {
    cleanup_free char *dir = state_path(g, id, NULL);
    if (access(dir, F_OK) < 0) return berth_error(err, -ENOENT, "container `%s` does not exist (no state in %s)", id, oci_root(g));
    return berth_error(err, -EIO,
                       "container `%s`: its state %s cannot be read: %s (a create still running, or a crash: "
                       "`delete --force %s` clears it)",
                       id, sp, je.text, id);
  }
  s->spec = json_load_file(cp, 0, &je);
  if (!s->spec) s->spec = json_object();
  s->pid = (pid_t)json_integer_value(json_object_get(s->st, "pid"));
  unsigned long long start = (unsigned long long)json_integer_value(json_object_get(s->st, "starttime"));
  if (!pid_alive(s->pid, start)) s->status = "stopped";
  else {
    cleanup_free char *fifo = state_path(g, id, "exec.fifo");
    if (access(fifo, F_OK) == 0) s->status = "created";
    else if (oci_cgroup_frozen(json_object_get(s->st, "cgroup"))) s->status = "paused";
    else s->status = "running";
  }
  return 0;
}

static json_t *state_json(struct ostate *s, const char *id) {
  json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s}", "ociVersion", OCI_VERSION, "id", id, "status", s->status, "pid",
                        strcmp(s->status, "stopped") ? (int)s->pid : 0, "bundle", jstr(s->st, "bundle") ?: "");
  json_t *ann = json_object_get(s->spec, "annotations");
  if (json_is_object(ann) && json_object_size(ann)) json_object_set(o, "annotations", ann);
  return o;
}

int oci_state(const struct oci_global *g, const char *id, json_t **out, berth_error_t *err) {
  cleanup_ostate struct ostate s;
  if (load(g, id, &s, err) < 0) return -1;
  *out = state_json(&s, id);
  json_t *st = s.st;
  json_object_set_new(*out, "rootfs", json_string(jstr(st, "rootfs") ?: ""));
  json_object_set_new(*out, "created", json_string(jstr(st, "created") ?: ""));
  json_object_set_new(*out, "owner", json_string(""));
  return 0;
}

/* ---------- waiting for a process that is not our child ---------- */
static bool wait_gone(pid_t pid, unsigned long long start, int ms) {
  int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pfd < 0) return !pid_alive(pid, start);
  struct pollfd p = {.fd = pfd, .events = POLLIN};
  int deadline = ms;
  while (deadline > 0) {
    int r = poll(&p, 1, 50);
    if (r > 0 || !pid_alive(pid, start)) break;
    deadline -= 50;
  }
  close(pfd);
  return !pid_alive(pid, start);
}

static int signal_pid(pid_t pid, unsigned long long start, int sig, berth_error_t *err) {
  int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pfd >= 0) {
    /* the pidfd pins this process: checked once, signalled without a race */
    if (start && proc_starttime(pid) != start) {
      close(pfd);
      return berth_error(err, -ESRCH, "the container's process has exited");
    }
    int r = (int)syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0);
    int e = errno;
    close(pfd);
    if (r < 0) return berth_error(err, e, "signal %d to the container's process %d", sig, (int)pid);
    return 0;
  }
  if (kill(pid, sig) < 0) return berth_error(err, errno, "signal %d to %d", sig, (int)pid);
  return 0;
}

/* ---------- hooks run by the runtime ---------- */
static int run_hooks(json_t *spec, const char *kind, const char *id, const char *status, pid_t pid, const char *bundle,
                     berth_error_t *err) {
  if (!hooks_any(spec, kind)) return 0;
  cleanup_free char *st = hooks_state(spec, id, status, pid, bundle);
  return hooks_run(spec, kind, st, 0, err);
}

/* poststart and poststop: a failing hook is a warning and the rest still
 * run (the spec's lifecycle continues as if it had succeeded) */
static void run_hooks_warn(json_t *spec, const char *kind, const char *id, const char *status, pid_t pid, const char *bundle) {
  json_t *list = json_object_get(json_object_get(spec, "hooks"), kind);
  size_t i;
  json_t *h;
  json_array_foreach(list, i, h) {
    json_t *one = json_pack("{s:O, s:{s:[O]}}", "annotations", json_object_get(spec, "annotations") ?: json_null(), "hooks", kind, h);
    if (!json_is_object(json_object_get(one, "annotations"))) json_object_del(one, "annotations");
    berth_error_t e = NULL;
    if (run_hooks(one, kind, id, status, pid, bundle, &e) < 0) {
      berth_warn("%s hook %zu (%s): %s", kind, i, jstr(h, "path") ?: "?", e->msg);
      berth_error_clear(&e);
    }
    json_decref(one);
  }
}

static int ns_pids(pid_t init, pid_t **pids, size_t *n, berth_error_t *err);
static bool has_cgroup(json_t *cg);

/* ---------- delete ---------- */
static void remove_state(const struct oci_global *g, const char *id) {
  cleanup_free char *dir = state_path(g, id, NULL);
  berth_error_t e = NULL;
  if (rm_rf(dir, &e) < 0) {
    berth_warn("remove %s: %s", dir, e->msg);
    berth_error_clear(&e);
  }
}

static void destroy(const struct oci_global *g, const char *id, struct ostate *s) {
  oci_cgroup_destroy(json_object_get(s->st, "cgroup"));
  /* poststop: failures are warnings (the spec), the container is gone either way */
  berth_trace("oci: cgroup removed");
  run_hooks_warn(s->spec, "poststop", id, "stopped", 0, jstr(s->st, "bundle") ?: "");
  remove_state(g, id);
  berth_trace("oci: state removed");
}

int oci_delete(const struct oci_global *g, const char *id, bool force, berth_error_t *err) {
  cleanup_ostate struct ostate s;
  if (load(g, id, &s, err) < 0) {
    /* a create that died half-way leaves a directory without a state: --force clears it */
    cleanup_free char *dir = state_path(g, id, NULL);
    if (force && oci_id_valid(id) && access(dir, F_OK) == 0) {
      berth_error_clear(err);
      remove_state(g, id);
      return 0;
    }
    return -1;
  }
  unsigned long long start = (unsigned long long)json_integer_value(json_object_get(s.st, "starttime"));
  json_t *cg = json_object_get(s.st, "cgroup");
  /* the spec: deleting a container that is not stopped is an error (runc
   * deletes a created one; --force does here) */
  if (strcmp(s.status, "stopped")) {
    if (!force) return berth_error(err, -EBUSY, "container `%s` is %s: stop it first (kill %s KILL) or delete --force", id, s.status, id);
  }
  if (strcmp(s.status, "stopped")) {
    berth_error_t e = NULL;
    if (oci_cgroup_kill_all(cg, SIGKILL, &e) < 0) berth_error_clear(&e);
    if (!strcmp(s.status, "paused")) oci_cgroup_freeze(cg, false, &e), berth_error_clear(&e);
    if (signal_pid(s.pid, start, SIGKILL, &e) < 0) berth_error_clear(&e);
    if (!wait_gone(s.pid, start, 10000))
      return berth_error(err, -EBUSY, "container `%s`: its process %d did not end after SIGKILL", id, (int)s.pid);
  }
  destroy(g, id, &s);
  return 0;
}

int oci_kill(const struct oci_global *g, const char *id, int sig, bool all, berth_error_t *err) {
  cleanup_ostate struct ostate s;
  if (load(g, id, &s, err) < 0) return -1;
  if (!strcmp(s.status, "stopped")) return berth_error(err, -ESRCH, "container `%s` is not running", id);
  json_t *cg = json_object_get(s.st, "cgroup");
  if (all && !has_cgroup(cg)) {
    pid_t *pids = NULL;
    size_t n = 0;
    if (ns_pids(s.pid, &pids, &n, err) < 0) return -1;
    for (size_t i = 0; i < n; i++) kill(pids[i], sig);
    free(pids);
    return 0;
  }
  if (all) return oci_cgroup_kill_all(cg, sig, err);
  return signal_pid(s.pid, (unsigned long long)json_integer_value(json_object_get(s.st, "starttime")), sig, err);
}

/* ---------- start ---------- */
int oci_start(const struct oci_global *g, const char *id, berth_error_t *err) {
  cleanup_ostate struct ostate s;
  if (load(g, id, &s, err) < 0) return -1;
  if (strcmp(s.status, "created"))
    return berth_error(err, -EINVAL, "container `%s` is %s: only a created container can be started", id, s.status);
  cleanup_free char *fifo = state_path(g, id, "exec.fifo");
  cleanup_close int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return berth_error(err, errno, "container `%s`: open %s", id, fifo);
  unsigned long long start = (unsigned long long)json_integer_value(json_object_get(s.st, "starttime"));
  char c = 0;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, 100);
    if (r > 0) {
      ssize_t n = read(fd, &c, 1);
      if (n == 1) break;
      if (n < 0 && errno != EAGAIN) return berth_error(err, errno, "container `%s`: read the start fifo", id);
      if (n == 0 && !pid_alive(s.pid, start)) return berth_error(err, -ESRCH, "container `%s`: its process ended before it started", id);
      if (n == 0) usleep(1000); /* no writer yet: POLLHUP */
    } else if (!pid_alive(s.pid, start)) return berth_error(err, -ESRCH, "container `%s`: its process ended before it started", id);
  }
  /* the writer closes at the program's exec (or its end): wait for it, so
   * that a signal sent right after start reaches the program, not us */
  for (int waited = 0; waited < 60000; waited += 10) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 10) > 0) {
      ssize_t n = read(fd, &c, 1);
      if (n == 0 || (n < 0 && errno != EAGAIN)) break;
    }
    if (!pid_alive(s.pid, start)) break;
  }
  unlink(fifo);
  run_hooks_warn(s.spec, "poststart", id, "running", s.pid, jstr(s.st, "bundle") ?: "");
  return 0;
}

/* ---------- create ---------- */
static int validate_spec(json_t *spec, const char *bundle, char **rootfs, berth_error_t *err) {
  if (!json_is_object(spec)) return berth_error(err, -EINVAL, "config.json: not a JSON object");
  const char *v = jstr(spec, "ociVersion");
  if (!v || strncmp(v, "1.", 2))
    return berth_error(err, -EINVAL, "config.json: ociVersion `%s` is not a 1.x runtime spec version", v ? v : "(missing)");
  json_t *root = json_object_get(spec, "root");
  const char *rp = jstr(root, "path");
  if (!rp || !*rp) return berth_error(err, -EINVAL, "config.json: root.path is required");
  cleanup_free char *abs = rp[0] == '/' ? xstrdup(rp) : xasprintf("%s/%s", bundle, rp);
  char real[PATH_MAX];
  if (!realpath(abs, real)) return berth_error(err, errno, "config.json: root.path %s (the bundle's root filesystem)", abs);
  struct stat st;
  if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) return berth_error(err, -ENOTDIR, "config.json: root.path %s is not a directory", real);
  json_t *process = json_object_get(spec, "process");
  if (!json_is_object(process)) return berth_error(err, -EINVAL, "config.json: `process` is required to create a container");
  if (!json_array_size(json_object_get(process, "args")))
    return berth_error(err, -EINVAL, "config.json: process.args needs at least the program to run");
  const char *cwd = jstr(process, "cwd");
  if (!cwd || cwd[0] != '/') return berth_error(err, -EINVAL, "config.json: process.cwd `%s` must be an absolute path", cwd ? cwd : "");
  if (oci_process_validate(process, err) < 0) return berth_error_wrap(err, "config.json");
  json_t *linux_ = json_object_get(spec, "linux");
  size_t i;
  json_t *ns;
  unsigned long new_flags;
  if (ns_new_flags(linux_, &new_flags, err) < 0) return -1;
  json_array_foreach(json_object_get(linux_, "namespaces"), i, ns) {
    int k = ns_kind_index(jstr(ns, "type"));
    const char *p = jstr(ns, "path");
    if (p && *p && access(p, F_OK) < 0)
      return berth_error(err, errno, "config.json: linux.namespaces[%zu] (%s): path %s", i, NS_KINDS[k].type, p);
  }
  bool new_user = new_flags & CLONE_NEWUSER;
  if (!new_user && (json_array_size(json_object_get(linux_, "uidMappings")) || json_array_size(json_object_get(linux_, "gidMappings"))))
    return berth_error(err, -EINVAL, "config.json: linux.uidMappings/gidMappings need a new user namespace in linux.namespaces");
  /* a new user namespace without maps (crun spec --rootless writes none):
   * the caller's own ids become the container's root, as crun does */
  if (new_user && !json_array_size(json_object_get(linux_, "uidMappings")))
    json_object_set_new(linux_, "uidMappings",
                        json_pack("[{s:i, s:I, s:i}]", "containerID", 0, "hostID", (json_int_t)geteuid(), "size", 1));
  if (new_user && !json_array_size(json_object_get(linux_, "gidMappings")))
    json_object_set_new(linux_, "gidMappings",
                        json_pack("[{s:i, s:I, s:i}]", "containerID", 0, "hostID", (json_int_t)getegid(), "size", 1));
  json_t *h;
  json_object_foreach(json_object_get(spec, "hooks"), v, h) {
    if (strcmp(v, "prestart") && strcmp(v, "createRuntime") && strcmp(v, "createContainer") && strcmp(v, "startContainer") &&
        strcmp(v, "poststart") && strcmp(v, "poststop"))
      return berth_error(err, -EINVAL, "config.json: hooks.%s is not a hook kind", v);
    json_t *e;
    json_array_foreach(h, i, e) if (!jstr(e, "path") || jstr(e, "path")[0] != '/') return berth_error(
        err, -EINVAL, "config.json: hooks.%s[%zu].path must be an absolute path", v, i);
  }
  *rootfs = xstrdup(real);
  return 0;
}

/* linux.uidMappings or gidMappings as map lines (malloc'd; *n of them) */
static struct id_map *maps_of(json_t *maps, const char *what, size_t *n, berth_error_t *err) {
  *n = json_array_size(maps);
  struct id_map *m = calloc(*n + 1, sizeof *m);
  if (!m) return berth_error(err, -ENOMEM, "id maps"), NULL;
  for (size_t i = 0; i < *n; i++) {
    json_t *e = json_array_get(maps, i);
    json_t *c = json_object_get(e, "containerID"), *h = json_object_get(e, "hostID"), *z = json_object_get(e, "size");
    if (!json_is_integer(c) || !json_is_integer(h) || !json_is_integer(z) || json_integer_value(c) < 0 || json_integer_value(h) < 0 ||
        json_integer_value(z) <= 0 || json_integer_value(c) > UINT32_MAX || json_integer_value(h) > UINT32_MAX ||
        json_integer_value(z) > UINT32_MAX) {
      free(m);
      return berth_error(err, -EINVAL, "config.json: linux.%s[%zu] needs containerID, hostID and size as integers (size at least 1)", what,
                         i),
             NULL;
    }
    m[i] =
        (struct id_map){(unsigned long)json_integer_value(c), (unsigned long)json_integer_value(h), (unsigned long)json_integer_value(z)};
  }
  return m;
}

/* the container's id maps, the way berth maps its own (userns_write_maps) */
static int write_maps(pid_t pid, json_t *linux_, berth_error_t *err) {
  size_t nu = 0, ng = 0;
  cleanup_free struct id_map *u = maps_of(json_object_get(linux_, "uidMappings"), "uidMappings", &nu, err);
  if (!u) return -1;
  cleanup_free struct id_map *g = maps_of(json_object_get(linux_, "gidMappings"), "gidMappings", &ng, err);
  if (!g) return -1;
  bool partial;
  return userns_write_maps(pid, u, nu, g, ng, &partial, err);
}

/* the host uid that the container's root maps to (for the fifo's owner) */
static uid_t host_id_of_root(json_t *maps, uid_t def) {
  size_t i;
  json_t *m;
  json_array_foreach(maps, i, m) if (json_integer_value(json_object_get(m, "containerID")) ==
                                     0) return (uid_t)json_integer_value(json_object_get(m, "hostID"));
  return def;
}

/* linux with the devices every container needs allowed after the config's
 * own rules (as runc and crun do): mknod of any node (the device list
 * decides what is made), the standard nodes, ptys, and linux.devices */
static json_t *cgroup_linux(json_t *linux_) {
  json_t *l = linux_ ? json_deep_copy(linux_) : json_object();
  json_t *res = json_object_get(l, "resources");
  if (!res) json_object_set_new(l, "resources", res = json_object());
  json_t *devs = json_object_get(res, "devices");
  /* none listed: deny all but these, never allow all (a host disk node
   * would be one mknod away) */
  if (!json_is_array(devs)) json_object_set_new(res, "devices", devs = json_array());
  if (!json_array_size(devs)) json_array_append_new(devs, json_pack("{s:b, s:s}", "allow", 0, "access", "rwm"));
  static const struct {
    const char *type;
    int major, minor;
    const char *access;
  } std[] = {{"c", -1, -1, "m"}, {"b", -1, -1, "m"}, {"c", 1, 3, "rwm"}, {"c", 1, 5, "rwm"}, {"c", 1, 7, "rwm"},    {"c", 1, 8, "rwm"},
             {"c", 1, 9, "rwm"}, {"c", 5, 0, "rwm"}, {"c", 5, 1, "rwm"}, {"c", 5, 2, "rwm"}, {"c", 136, -1, "rwm"}, {"c", 10, 200, "rwm"}};
  for (size_t i = 0; i < sizeof std / sizeof *std; i++) {
    json_t *d = json_pack("{s:b, s:s, s:s}", "allow", 1, "type", std[i].type, "access", std[i].access);
    if (std[i].major >= 0) json_object_set_new(d, "major", json_integer(std[i].major));
    if (std[i].minor >= 0) json_object_set_new(d, "minor", json_integer(std[i].minor));
    json_array_append_new(devs, d);
  }
  size_t i;
  json_t *d;
  json_array_foreach(json_object_get(l, "devices"), i, d) {
    const char *t = jstr(d, "type");
    if (!t || (strcmp(t, "c") && strcmp(t, "b") && strcmp(t, "u"))) continue;
    json_array_append_new(devs, json_pack("{s:b, s:s, s:O, s:O, s:s}", "allow", 1, "type", !strcmp(t, "b") ? "b" : "c", "major",
                                          json_object_get(d, "major"), "minor", json_object_get(d, "minor"), "access", "rwm"));
  }
  return l;
}

struct stage1 {
  json_t *spec;
  int sync;
  struct oci_init *init;
};

/* stage 1: join the namespaces with paths, make the new ones, then clone
 * the container process as the runtime's child (CLONE_PARENT), so that
 * `run` can wait for it and a new PID namespace has it as PID 1 */
static __attribute__((noreturn)) void stage1_main(struct stage1 *s) {
  berth_error_t err = NULL;
  json_t *linux_ = json_object_get(s->spec, "linux");
  int fds[8];
  int unshare_flags = 0;
  bool new_user = false;
  size_t i;
  json_t *ns;
  struct oci_sync_msg m;
  pid_t c;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (size_t k = 0; k < 8; k++) fds[k] = -1;
  json_array_foreach(json_object_get(linux_, "namespaces"), i, ns) {
    int k = ns_kind_index(jstr(ns, "type"));
    const char *p = jstr(ns, "path");
    if (p && *p) {
      fds[k] = open(p, O_RDONLY | O_CLOEXEC);
      if (fds[k] < 0) {
        berth_error(&err, errno, "open the %s namespace %s", NS_KINDS[k].type, p);
        goto fail;
      }
    } else if (k == 0) new_user = true;
    else if (NS_KINDS[k].flag != CLONE_NEWCGROUP) /* after the cgroup is made (oci_linux.c) */ unshare_flags |= NS_KINDS[k].flag;
  }
  /* the user namespace first: the others are joined with its rights */
  for (size_t k = 0; k < 8; k++) {
    if (fds[k] < 0) continue;
    if (setns(fds[k], NS_KINDS[k].flag) < 0) {
      berth_error(&err, errno,
                  errno == EINVAL ? "join the %s namespace: the path is not a %s namespace (or cannot be joined)" : "join the %s namespace",
                  NS_KINDS[k].type, NS_KINDS[k].type);
      goto fail;
    }
    close(fds[k]);
    if (k == 0 && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) {}
  }
  if (new_user) {
    if (unshare(CLONE_NEWUSER) < 0) {
      berth_error(&err, errno, "create the user namespace (unprivileged user namespaces disabled? see `berth preflight`)");
      goto fail;
    }
    if (oci_sync_send(s->sync, OCI_SYNC_USERNS, 0, NULL) < 0 || oci_sync_recv(s->sync, &m) < 0) _exit(127);
    if (m.type == OCI_SYNC_ERROR) _exit(127);
    /* mapped: from here on no process in the container may open our
     * /proc entries (exe is the host's berth binary: CVE-2019-5736) */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
      berth_error(&err, errno, "become root in the new user namespace (are 0 mapped in uidMappings and gidMappings?)");
      goto fail;
    }
  }
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* (see above; the exec makes the program dumpable again) */
  if (unshare_flags && unshare(unshare_flags) < 0) {
    berth_error(&err, errno, "create the container's namespaces");
    goto fail;
  }
  c = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
  if (c < 0) {
    berth_error(&err, errno, "start the container process");
    goto fail;
  }
  if (c == 0) {
    s->init->new_userns = new_user;
    s->init->in_userns = new_user || fds[0] >= 0 || in_userns();
    oci_init_main(s->init);
  }
  oci_sync_send(s->sync, OCI_SYNC_PID, (int32_t)c, NULL);
  _exit(0);
fail:
  oci_sync_send(s->sync, OCI_SYNC_ERROR, err->status, err->msg);
  _exit(127);
}

static char *now_rfc3339(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char b[64];
  strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
  return xasprintf("%s.%09ldZ", b, ts.tv_nsec);
}

static int write_pid_file(const char *path, pid_t pid, berth_error_t *err) {
  if (!path) return 0;
  char b[24];
  int n = snprintf(b, sizeof b, "%d", (int)pid);
  char abs[PATH_MAX];
  if (path[0] != '/') {
    if (!getcwd(abs, sizeof abs - strlen(path) - 2)) return berth_error(err, errno, "--pid-file %s", path);
    strcat(abs, "/");
    strcat(abs, path);
    path = abs;
  }
  return write_file_replace(path, b, (size_t)n, 0644, false, err) < 0 ? berth_error_wrap(err, "--pid-file") : 0;
}

static int connect_console(const char *path, berth_error_t *err) {
  if (!path) return -1;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return berth_error(err, -ENAMETOOLONG, "--console-socket %s: path too long", path);
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return berth_error(err, errno, "console socket");
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return berth_error(err, e, "connect to --console-socket %s", path);
  }
  return fd;
}

static volatile sig_atomic_t fwd_pid;
static void forward_signal(int sig) {
  if (fwd_pid > 0) kill(fwd_pid, sig);
}

/* wait for our child (the process of `run` or a foreground `exec`),
 * passing the caller's signals on; its exit status as a shell shows it */
static int wait_child(pid_t pid) {
  fwd_pid = pid;
  struct sigaction sa = {.sa_handler = forward_signal, .sa_flags = SA_RESTART};
  int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) sigaction(sigs[i], &sa, NULL);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return 255;
  fwd_pid = 0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int oci_create(const struct oci_global *g, const struct oci_create_opts *o, bool start, berth_error_t *err) {
  berth_trace("oci: create");
  if (id_check(o->id, err) < 0) return -1;
  char bundle[PATH_MAX];
  if (!realpath(o->bundle && *o->bundle ? o->bundle : ".", bundle))
    return berth_error(err, errno, "bundle %s", o->bundle ? o->bundle : ".");
  cleanup_free char *cfgp = xasprintf("%s/config.json", bundle);
  json_error_t je;
  cleanup_json json_t *spec = json_load_file(cfgp, JSON_REJECT_DUPLICATES, &je);
  if (!spec) {
    if (access(cfgp, F_OK) < 0) return berth_error(err, -ENOENT, "bundle %s has no config.json (`berth-oci spec` writes one)", bundle);
    return berth_error(err, -EINVAL, "%s: line %d: %s", cfgp, je.line, je.text);
  }
  cleanup_free char *rootfs = NULL;
  if (validate_spec(spec, bundle, &rootfs, err) < 0) return -1;
  const char *root = oci_root(g);
  if (mkdir_p(root, 0700, err) < 0) return berth_error_wrap(err, "the state directory (--root)");
  if (root_check(g, err) < 0) return -1;
  cleanup_free char *dir = state_path(g, o->id, NULL);
  if (mkdir(dir, 0700) < 0) {
    if (errno == EEXIST) return berth_error(err, -EEXIST, "container `%s` already exists: pick another ID, or delete it first", o->id);
    return berth_error(err, errno, "create %s", dir);
  }
  /* from here on a failure removes what was made */
  pid_t child = -1, init = -1;
  json_t *cg = NULL;
  int sp[2] = {-1, -1}, console = -1, fifo = -1;
  struct stage1 s1;
  struct oci_sync_msg m;
  berth_error_t e = NULL;
  int code;
  json_t *linux_ = json_object_get(spec, "linux");
  struct oci_init in = {.spec = spec,
                        .bundle = bundle,
                        .rootfs = rootfs,
                        .id = o->id,
                        .state_dir = dir,
                        .fifo_fd = -1,
                        .console_fd = -1,
                        .preserve_fds = o->preserve_fds,
                        .no_pivot = o->no_pivot,
                        .no_new_keyring = o->no_new_keyring,
                        .rootless = is_rootless(g)};
  cleanup_free char *copy = xasprintf("%s/config.json", dir);
  if (json_dump_file(spec, copy, JSON_COMPACT) < 0) {
    berth_error(err, errno, "write %s", copy);
    goto fail;
  }
  if (!start) {
    cleanup_free char *fp = xasprintf("%s/exec.fifo", dir);
    if (mkfifo(fp, 0600) < 0) {
      berth_error(err, errno, "create %s", fp);
      goto fail;
    }
    /* the container's root opens it after the pivot: it must own it */
    uid_t fu = host_id_of_root(json_object_get(linux_, "uidMappings"), geteuid());
    gid_t fg = host_id_of_root(json_object_get(linux_, "gidMappings"), getegid());
    if (chown(fp, fu, fg) < 0 && errno != EPERM && errno != EINVAL) berth_debug("chown fifo: %s", strerror(errno));
    fifo = open(fp, O_PATH | O_CLOEXEC);
    if (fifo < 0) {
      berth_error(err, errno, "open %s", fp);
      goto fail;
    }
    in.fifo_fd = fifo;
  }
  if (o->console_socket) {
    console = connect_console(o->console_socket, err);
    if (console < 0) goto fail;
    in.console_fd = console;
  } else if (json_is_true(json_object_get(json_object_get(spec, "process"), "terminal"))) {
    berth_error(err, -EINVAL,
                "process.terminal is true: give --console-socket (a unix socket that receives the pty's master), "
                "or set terminal to false");
    goto fail;
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
    berth_error(err, errno, "sync socket");
    goto fail;
  }
  in.sync_fd = sp[1];
  s1 = (struct stage1){.spec = spec, .sync = sp[1], .init = &in};
  child = fork();
  if (child < 0) {
    berth_error(err, errno, "fork");
    goto fail;
  }
  if (child == 0) {
    close(sp[0]);
    stage1_main(&s1);
  }
  close(sp[1]);
  sp[1] = -1;
  /* the cgroup is made while stage 1 makes the namespaces (the two do not
   * wait for each other; the container process joins it later) */
  {
    cleanup_json json_t *cgl = cgroup_linux(linux_);
    if (oci_cgroup_create(o->id, cgl, 0, in.rootless, g->systemd_cgroup, &cg, err) < 0) goto fail;
  }
  berth_trace("oci: cgroup made");
  for (;;) {
    if (oci_sync_recv(sp[0], &m) < 0) {
      berth_error(err, -EIO, "the container's setup ended without a word (see the messages above)");
      goto fail;
    }
    if (m.type == OCI_SYNC_ERROR) {
      berth_error(err, m.value > 0 ? -m.value : m.value ? m.value : -EIO, "%s", m.text);
      goto fail;
    }
    if (m.type == OCI_SYNC_USERNS) {
      if (write_maps(child, linux_, err) < 0) {
        oci_sync_send(sp[0], OCI_SYNC_ERROR, 0, "maps");
        goto fail;
      }
      oci_sync_send(sp[0], OCI_SYNC_MAPPED, 0, NULL);
      continue;
    }
    if (m.type == OCI_SYNC_PID) {
      init = (pid_t)m.value;
      break;
    }
  }
  waitpid(child, NULL, 0);
  child = -1;
  berth_trace("oci: namespaces made");
  {
    /* the state: written before the hooks (they may ask for it) */
    unsigned long long st0 = proc_starttime(init);
    cleanup_free char *created = now_rfc3339();
    cleanup_json json_t *st = json_pack("{s:i, s:I, s:s, s:s, s:s, s:O}", "pid", (int)init, "starttime", (json_int_t)st0, "bundle", bundle,
                                        "rootfs", rootfs, "created", created, "cgroup", cg);
    cleanup_free char *sp_ = xasprintf("%s/state.json", dir);
    cleanup_free char *txt = json_dumps(st, JSON_COMPACT);
    /* run-time state (tmpfs under /run): replaced atomically, not synced */
    if (write_file_replace(sp_, txt, strlen(txt), 0600, false, err) < 0) goto fail;
  }
  berth_trace("oci: state written");
  {
    cleanup_free char *files = oci_cgroup_self_files(cg);
    oci_sync_send(sp[0], OCI_SYNC_CGROUP, 0, files && strlen(files) < sizeof m.text - 1 ? files : "");
    if (oci_sync_recv(sp[0], &m) < 0 || (m.type != OCI_SYNC_HOOKS && m.type != OCI_SYNC_ERROR)) {
      berth_error(err, -EIO, "the container process ended during its setup (see the messages above)");
      goto fail;
    }
    if (m.type == OCI_SYNC_ERROR) {
      berth_error(err, m.value > 0 ? -m.value : m.value ? m.value : -EIO, "%s", m.text);
      goto fail;
    }
    /* it could not move itself (its ids do not own the cgroup files): from here */
    if (m.value && oci_cgroup_enter(cg, init, err) < 0) goto fail;
  }
  if (run_hooks(spec, "prestart", o->id, "created", init, bundle, err) < 0 ||
      run_hooks(spec, "createRuntime", o->id, "created", init, bundle, err) < 0)
    goto fail;
  oci_sync_send(sp[0], OCI_SYNC_CGROUP, 0, NULL);
  if (oci_sync_recv(sp[0], &m) < 0 || m.type != OCI_SYNC_CREATED) {
    if (m.type == OCI_SYNC_ERROR) berth_error(err, m.value > 0 ? -m.value : m.value ? m.value : -EIO, "%s", m.text);
    else berth_error(err, -EIO, "the container process ended during its setup (see the messages above)");
    goto fail;
  }
  berth_trace("oci: created");
  close(sp[0]);
  sp[0] = -1;
  if (console >= 0) close(console);
  if (fifo >= 0) close(fifo);
  json_decref(cg);
  if (write_pid_file(o->pid_file, init, err) < 0) {
    kill(init, SIGKILL);
    struct ostate s = {0};
    load(g, o->id, &s, NULL);
    destroy(g, o->id, &s);
    ostate_free(&s);
    return -1;
  }
  if (!start) return 0;
  run_hooks_warn(spec, "poststart", o->id, "running", init, bundle);
  if (o->detach) return 0;
  code = wait_child(init);
  berth_trace("oci: exited");
  if (!o->keep) {
    struct ostate s = {0};
    if (load(g, o->id, &s, &e) == 0) destroy(g, o->id, &s);
    berth_error_clear(&e);
    ostate_free(&s);
  }
  return code;

fail:
  if (child > 0) kill(child, SIGKILL), waitpid(child, NULL, 0);
  if (init > 0) kill(init, SIGKILL), waitpid(init, NULL, WNOHANG);
  if (cg) {
    if (init > 0) wait_gone(init, 0, 2000);
    oci_cgroup_destroy(cg);
    json_decref(cg);
  }
  if (sp[0] >= 0) close(sp[0]);
  if (sp[1] >= 0) close(sp[1]);
  if (console >= 0) close(console);
  if (fifo >= 0) close(fifo);
  if (init > 0) waitpid(init, NULL, 0);
  remove_state(g, o->id);
  return -1;
}

/* ---------- exec ---------- */
/* join the cgroups of `pid` (read from /proc/PID/cgroup and the mounts) */
static void join_cgroups_of(pid_t pid) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/cgroup", (int)pid);
  /* read whole: a line is as long as its path, which no line buffer bounds */
  cleanup_free char *text = NULL;
  if (read_file(p, 1 << 20, &text, NULL, NULL) < 0) return;
  cleanup_cgroup_lines struct cgroup_lines it = cgroup_lines_begin(text);
  struct cgroup_line l;
  while (cgroup_lines_next(&it, &l)) {
    cleanup_free char *mnt = NULL;
    bool v1 = *l.ctrls != '\0';
    /* a hybrid host's unified hierarchy: berth-oci gives containers no group there */
    if (!v1 && access("/sys/fs/cgroup/unified", F_OK) == 0) continue;
    if (!v1) mnt = xstrdup("/sys/fs/cgroup");
    else if (str_has_prefix(l.ctrls, "name=")) mnt = xasprintf("/sys/fs/cgroup/%s", l.ctrls + 5);
    else mnt = xasprintf("/sys/fs/cgroup/%s", l.ctrls);
    /* v1: `tasks` (we are one thread moving itself: no global lock) */
    cleanup_free char *procs = xasprintf("%s%s/%s", mnt, l.path, v1 ? "tasks" : "cgroup.procs");
    if (write_value(procs, "0") < 0) berth_debug("exec: join %s: %s", procs, strerror(errno));
  }
}

int oci_exec(const struct oci_global *g, const struct oci_exec_opts *o, berth_error_t *err) {
  cleanup_ostate struct ostate s;
  if (load(g, o->id, &s, err) < 0) return -1;
  if (strcmp(s.status, "running") && strcmp(s.status, "created"))
    return berth_error(err, -EINVAL, "container `%s` is %s: exec needs a running container", o->id, s.status);
  json_t *process = o->process;
  if (!json_array_size(json_object_get(process, "args"))) return berth_error(err, -EINVAL, "exec: give the command to run");
  if (oci_process_validate(process, err) < 0) return -1;
  if (json_is_true(json_object_get(process, "terminal")) && !o->console_socket)
    return berth_error(err, -EINVAL, "exec with a terminal: give --console-socket (a unix socket that receives the pty's master)");
  if (oci_seccomp_prepare(json_object_get(json_object_get(s.spec, "linux"), "seccomp"), err) < 0) return -1;
  /* the container's namespaces, opened before any is joined */
  bool spec_has_mount_ns = false;
  int nsfd[8];
  for (size_t k = 0; k < 8; k++) nsfd[k] = -1;
  size_t i;
  json_t *ns;
  json_array_foreach(json_object_get(json_object_get(s.spec, "linux"), "namespaces"), i, ns) {
    int k = ns_kind_index(jstr(ns, "type"));
    if (k < 0) continue;
    if (k == 5) spec_has_mount_ns = true;
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/ns/%s", (int)s.pid, NS_KINDS[k].proc);
    nsfd[k] = open(p, O_RDONLY | O_CLOEXEC);
    if (nsfd[k] < 0) {
      int e = errno;
      for (size_t j = 0; j < 8; j++)
        if (nsfd[j] >= 0) close(nsfd[j]);
      return berth_error(err, e, "container `%s`: open its %s namespace", o->id, NS_KINDS[k].type);
    }
  }
  cleanup_close int console = -1;
  if (o->console_socket && (console = connect_console(o->console_socket, err)) < 0) {
    for (size_t j = 0; j < 8; j++)
      if (nsfd[j] >= 0) close(nsfd[j]);
    return -1;
  }
  int rep[2], pidp[2];
  if (pipe2(rep, O_CLOEXEC) < 0 || pipe2(pidp, O_CLOEXEC) < 0) {
    for (size_t j = 0; j < 8; j++)
      if (nsfd[j] >= 0) close(nsfd[j]);
    return berth_error(err, errno, "pipe");
  }
  pid_t e1 = fork();
  if (e1 == 0) {
    /* the container's processes must not reach our /proc entries (exe is
     * the host's berth binary: CVE-2019-5736); the exec resets it */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    close(rep[0]);
    close(pidp[0]);
    join_cgroups_of(s.pid);
    for (size_t k = 0; k < 8; k++) {
      if (nsfd[k] < 0) continue;
      /* the time namespace applies to children only, as pid does */
      if (setns(nsfd[k], NS_KINDS[k].flag) < 0 && !(k == 0 && errno == EINVAL)) {
        dprintf(rep[1], "join the container's %s namespace: %s", NS_KINDS[k].type, strerror(errno));
        _exit(127);
      }
      close(nsfd[k]);
    }
    pid_t c = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
    if (c == 0) {
      close(pidp[1]);
      /* without a mount namespace of its own the container is a chroot:
       * the same root as its first process */
      if (!spec_has_mount_ns) {
        char rp[64];
        snprintf(rp, sizeof rp, "/proc/%d/root", (int)s.pid);
        if (chroot(rp) < 0 || chdir("/") < 0) {
          dprintf(rep[1], "enter the container's root %s: %s", rp, strerror(errno));
          _exit(127);
        }
      }
      oci_process_exec(process, s.spec, console, rep[1], o->preserve_fds, true);
    }
    int32_t v = c;
    if (write(pidp[1], &v, sizeof v) < 0) {}
    _exit(c < 0 ? 127 : 0);
  }
  for (size_t j = 0; j < 8; j++)
    if (nsfd[j] >= 0) close(nsfd[j]);
  close(rep[1]);
  close(pidp[1]);
  if (e1 < 0) {
    close(rep[0]);
    close(pidp[0]);
    return berth_error(err, errno, "fork");
  }
  int32_t pid = -1;
  ssize_t n = read(pidp[0], &pid, sizeof pid);
  close(pidp[0]);
  waitpid(e1, NULL, 0);
  char msg[2048];
  ssize_t mn = read(rep[0], msg, sizeof msg - 1);
  close(rep[0]);
  if (mn > 0) {
    msg[mn] = '\0';
    if (n == sizeof pid && pid > 0) waitpid(pid, NULL, 0);
    return berth_error(err, -EINVAL, "exec in `%s`: %s", o->id, msg);
  }
  if (n != sizeof pid || pid <= 0) return berth_error(err, -EIO, "exec in `%s`: the process could not be started", o->id);
  if (write_pid_file(o->pid_file, pid, err) < 0) return -1;
  if (o->detach) return 0;
  return wait_child(pid);
}

/* ---------- list, ps, pause, update ---------- */
int oci_list(const struct oci_global *g, json_t **out, berth_error_t *err) {
  (void)err;
  *out = json_array();
  DIR *d = opendir(oci_root(g));
  if (!d) return 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!oci_id_valid(de->d_name)) continue;
    struct ostate s;
    berth_error_t e = NULL;
    if (load(g, de->d_name, &s, &e) < 0) {
      berth_error_clear(&e);
      ostate_free(&s);
      continue;
    }
    json_t *o = state_json(&s, de->d_name);
    json_object_set_new(o, "rootfs", json_string(jstr(s.st, "rootfs") ?: ""));
    json_object_set_new(o, "created", json_string(jstr(s.st, "created") ?: ""));
    json_object_set_new(o, "owner", json_string(""));
    json_array_append_new(*out, o);
    ostate_free(&s);
  }
  closedir(d);
  return 0;
}

/* without a cgroup of its own (rootless, no delegation): the processes in
 * the container's PID namespace, when it has one */
static int ns_pids(pid_t init, pid_t **pids, size_t *n, berth_error_t *err) {
  char p[64], want[64] = "", got[64];
  snprintf(p, sizeof p, "/proc/%d/ns/pid", (int)init);
  ssize_t l = readlink(p, want, sizeof want - 1);
  if (l <= 0) return berth_error(err, errno, "the container's PID namespace");
  want[l] = '\0';
  snprintf(got, sizeof got, "/proc/self/ns/pid");
  char self[64] = "";
  l = readlink(got, self, sizeof self - 1);
  if (l > 0 && (self[l] = '\0', !strcmp(self, want)))
    return berth_error(err, -ENOTSUP,
                       "the container shares the runtime's PID namespace and has no cgroup of its own: its processes cannot be told apart");
  DIR *d = opendir("/proc");
  if (!d) return berth_error(err, errno, "/proc");
  size_t cap = 16;
  *pids = malloc(cap * sizeof **pids);
  *n = 0;
  struct dirent *de;
  while (*pids && (de = readdir(d))) {
    char *end;
    long v = strtol(de->d_name, &end, 10);
    if (*end || v <= 0) continue;
    snprintf(p, sizeof p, "/proc/%ld/ns/pid", v);
    l = readlink(p, got, sizeof got - 1);
    if (l <= 0) continue;
    got[l] = '\0';
    if (strcmp(got, want)) continue;
    if (*n == cap) {
      pid_t *np = realloc(*pids, (cap *= 2) * sizeof **pids);
      if (!np) break;
      *pids = np;
    }
    (*pids)[(*n)++] = (pid_t)v;
  }
  closedir(d);
  return *pids ? 0 : berth_error(err, -ENOMEM, "ps");
}

static bool has_cgroup(json_t *cg) { return json_object_size(json_object_get(cg, "paths")) > 0; }

int oci_pids(const struct oci_global *g, const char *id, pid_t **pids, size_t *n, berth_error_t *err) {
  cleanup_ostate struct ostate s;
  if (load(g, id, &s, err) < 0) return -1;
  if (!strcmp(s.status, "stopped")) {
    *pids = NULL;
    *n = 0;
    return 0;
  }
  json_t *cg = json_object_get(s.st, "cgroup");
  if (!has_cgroup(cg)) return ns_pids(s.pid, pids, n, err);
  return oci_cgroup_pids(cg, pids, n, err);
}

int oci_pause(const struct oci_global *g, const char *id, bool pause, berth_error_t *err) {
  cleanup_ostate struct ostate s;
  if (load(g, id, &s, err) < 0) return -1;
  if (pause && strcmp(s.status, "running"))
    return berth_error(err, -EINVAL, "container `%s` is %s: only a running one can be paused", id, s.status);
  if (!pause && strcmp(s.status, "paused")) return berth_error(err, -EINVAL, "container `%s` is %s, not paused", id, s.status);
  return oci_cgroup_freeze(json_object_get(s.st, "cgroup"), pause, err);
}

int oci_update(const struct oci_global *g, const char *id, json_t *resources, berth_error_t *err) {
  cleanup_ostate struct ostate s;
  if (load(g, id, &s, err) < 0) return -1;
  if (!strcmp(s.status, "stopped")) return berth_error(err, -EINVAL, "container `%s` is stopped: nothing to update", id);
  if (!json_is_object(resources)) return berth_error(err, -EINVAL, "update: the resources must be a JSON object (linux.resources)");
  if (oci_cgroup_update(json_object_get(s.st, "cgroup"), resources, err) < 0) return -1;
  /* the saved config follows, so that `state` and later updates see it */
  json_t *linux_ = json_object_get(s.spec, "linux");
  if (!linux_) json_object_set_new(s.spec, "linux", linux_ = json_object());
  json_t *res = json_object_get(linux_, "resources");
  if (!res) json_object_set_new(linux_, "resources", res = json_object());
  json_object_update_recursive(res, resources);
  cleanup_free char *cp = state_path(g, id, "config.json");
  cleanup_free char *txt = json_dumps(s.spec, JSON_COMPACT);
  return txt ? write_file_replace(cp, txt, strlen(txt), 0600, false, err) : 0;
}

/* ---------- signals, features, spec ---------- */
int oci_parse_signal(const char *s) { return signal_parse(s); }

json_t *oci_features(void) {
  json_t *caps = json_array();
  for (int i = 0; oci_cap_name(i); i++) json_array_append_new(caps, json_string(oci_cap_name(i)));
  json_t *mopts = json_pack("[s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s]", "async", "atime", "bind",
                            "dev", "diratime", "dirsync", "exec", "iversion", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime",
                            "noexec", "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "private", "rbind",
                            "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "silent", "slave",
                            "strictatime", "suid", "sync", "unbindable");
  return json_pack(
      "{s:s, s:s, s:[s,s,s,s,s,s], s:o, s:{s:[s,s,s,s,s,s,s,s], s:o, s:{s:b, s:b, s:b}, s:{s:b, s:b}, "
      "s:{s:b, s:[s,s,s,s,s,s,s,s], s:[s,s,s,s,s,s,s], s:[s,s,s], s:[s]}, s:{s:b}, s:{s:b}, s:{s:b}, s:{s:{s:b}}}, "
      "s:{s:s}}",
      "ociVersionMin", "1.0.0", "ociVersionMax", "1.1.0", "hooks", "prestart", "createRuntime", "createContainer", "startContainer",
      "poststart", "poststop", "mountOptions", mopts, "linux", "namespaces", "cgroup", "ipc", "mount", "network", "pid", "time", "user",
      "uts", "capabilities", caps, "cgroup", "v1", 1, "v2", 1, "systemd", 0, "seccomp", "enabled", 1, "notify", 0,
      /* what security.c's compiler takes (NOTIFY needs an agent: refused) */
      "seccomp", "enabled", 1, "actions", "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
      "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP", "operators", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",
      "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ", "archs", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
      "knownFlags", "SECCOMP_FILTER_FLAG_TSYNC", "apparmor", "enabled", 1, "selinux", "enabled", 0, "intelRdt", "enabled", 0,
      "mountExtensions", "idmap", "enabled", 0, "annotations", "org.opencontainers.runtime-spec.features.runtime", "berth-oci");
}

json_t *oci_default_spec(bool rootless) {
  json_t *caps = json_pack("[s,s,s]", "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE");
  json_t *spec = json_pack(
      "{s:s, s:{s:b, s:{s:i, s:i}, s:[s], s:[s,s], s:s, s:{s:O, s:O, s:O, s:O, s:O}, s:[{s:s, s:i, s:i}], s:b},"
      " s:{s:s, s:b}, s:s,"
      " s:[{s:s,s:s,s:s}, {s:s,s:s,s:s,s:[s,s,s,s]}, {s:s,s:s,s:s,s:[s,s,s,s,s,s]}, {s:s,s:s,s:s,s:[s,s,s,s]},"
      "    {s:s,s:s,s:s,s:[s,s,s]}, {s:s,s:s,s:s,s:[s,s,s,s]}, {s:s,s:s,s:s,s:[s,s,s,s,s]}],"
      " s:{s:{s:[{s:b, s:s}]}, s:[{s:s},{s:s},{s:s},{s:s},{s:s}],"
      "    s:[s,s,s,s,s,s,s,s,s,s], s:[s,s,s,s,s]}}",
      "ociVersion", OCI_VERSION, "process", "terminal", 1, "user", "uid", 0, "gid", 0, "args", "sh", "env",
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "cwd", "/", "capabilities", "bounding", caps,
      "effective", caps, "permitted", caps, "inheritable", caps, "ambient", caps, "rlimits", "type", "RLIMIT_NOFILE", "hard", 1024, "soft",
      1024, "noNewPrivileges", 1, "root", "path", "rootfs", "readonly", 1, "hostname", "berth", "mounts", "destination", "/proc", "type",
      "proc", "source", "proc", "destination", "/dev", "type", "tmpfs", "source", "tmpfs", "options", "nosuid", "strictatime", "mode=755",
      "size=65536k", "destination", "/dev/pts", "type", "devpts", "source", "devpts", "options", "nosuid", "noexec", "newinstance",
      "ptmxmode=0666", "mode=0620", "gid=5", "destination", "/dev/shm", "type", "tmpfs", "source", "shm", "options", "nosuid", "noexec",
      "nodev", "mode=1777", "destination", "/dev/mqueue", "type", "mqueue", "source", "mqueue", "options", "nosuid", "noexec", "nodev",
      "destination", "/sys", "type", "sysfs", "source", "sysfs", "options", "nosuid", "noexec", "nodev", "ro", "destination",
      "/sys/fs/cgroup", "type", "cgroup", "source", "cgroup", "options", "nosuid", "noexec", "nodev", "relatime", "ro", "linux",
      "resources", "devices", "allow", 0, "access", "rwm", "namespaces", "type", "pid", "type", "network", "type", "ipc", "type", "uts",
      "type", "mount", "maskedPaths", "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
      "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi", "readonlyPaths", "/proc/bus", "/proc/fs", "/proc/irq",
      "/proc/sys", "/proc/sysrq-trigger");
  json_decref(caps);
  if (rootless && spec) {
    json_t *linux_ = json_object_get(spec, "linux");
    json_t *nss = json_object_get(linux_, "namespaces");
    /* no network namespace of its own (slirp4netns or pasta give one), a user namespace mapping the caller */
    json_array_remove(nss, 1);
    json_array_append_new(nss, json_pack("{s:s}", "type", "user"));
    json_object_set_new(linux_, "uidMappings", json_pack("[{s:i, s:i, s:i}]", "containerID", 0, "hostID", (int)getuid(), "size", 1));
    json_object_set_new(linux_, "gidMappings", json_pack("[{s:i, s:i, s:i}]", "containerID", 0, "hostID", (int)getgid(), "size", 1));
    json_object_del(linux_, "resources");
    /* sysfs needs a network namespace of its own: the host's, bound */
    json_t *mounts = json_object_get(spec, "mounts");
    json_array_set_new(mounts, 5,
                       json_pack("{s:s,s:s,s:s,s:[s,s,s,s,s]}", "destination", "/sys", "type", "none", "source", "/sys", "options", "rbind",
                                 "nosuid", "noexec", "nodev", "ro"));
    json_array_remove(mounts, 6);
    /* gid=5 is not mapped in a one-id user namespace */
    json_t *pts = json_object_get(json_array_get(mounts, 2), "options");
    json_array_remove(pts, 5);
  }
  return spec;
}
