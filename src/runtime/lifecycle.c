/* A created container's life: stop, kill, start (again), restart, the
 * persistent ones at boot, expiry. */
#define _GNU_SOURCE
#include "runtime/container.h"
#include "runtime/container_internal.h"
#include "network/network.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>

#include "util/config.h"
#include "runtime/disk.h"
#include "util/security.h"

uint64_t container_setup_caps(json_t *state) {
  uint64_t caps = security_setup_caps();
  /* SO_MARK takes CAP_NET_ADMIN or CAP_NET_RAW: with neither, no process of
   * the container can pass for the policy's resolver (ping still works:
   * ping_group_range is open in the container's namespace) */
  if (json_object_get(state, "egress")) caps &= ~(1ULL << CAP_NET_RAW);
  return caps;
}

int container_parse_signal(const char *s) {
  if (!s || !*s) return 0;
  return signal_parse(s);
}

int container_stop(const char *name, int timeout, json_t **out, berth_error_t *err) {
  if (!container_name_valid(name)) return berth_error(err, -ENOENT, "Container not found: %.80s", name);
  if (timeout < 0) timeout = 10;
  int lk = container_lock(name, err);
  if (lk < 0) return -1;
  json_t *st = state_read(name);
  if (!st) {
    close(lk);
    return berth_error(err, -ENOENT, "Container not found: %s", name);
  }
  /* first: the monitor must not restart what we stop */
  json_object_set_new(st, "stopped", json_true());
  bool restarting = state_status(st) == STATUS_RESTARTING;
  bool running = state_live(st) == STATUS_RUNNING;
  if (restarting) state_set_status(st, STATUS_EXITED); /* its last run's end stays recorded */
  state_write_warn(name, st, "the stop");
  close(lk);
  if (restarting && state_proc_alive(st, "monitor")) { /* asleep in its back-off */
    kill(state_proc(st, "monitor").pid, SIGKILL);
    wait_gone(st, "monitor", 2);
  }
  if (running) {
    pid_t pid = state_proc(st, "init").pid;
    int sig = strcmp(jstr(st, "mode") ?: "", "service") ? SIGTERM : container_parse_signal(jstr(st, "stop_signal"));
    if (sig <= 0) sig = SIGTERM;
    kill(pid, sig);
    wait_gone(st, "init", timeout);
    if (state_proc_alive(st, "init")) kill(pid, SIGKILL); /* PID 1 dies: the kernel kills the rest */
    wait_gone(st, "init", 5);
    wait_gone(st, "monitor", 5); /* it records the end */
  }
  json_decref(st);
  st = state_read(name);
  *out = json_pack("{s:b, s:s, s:s, s:O}", "success", 1, "container", name, "status", st ? live_status(st) : "removed", "exit_code",
                   json_object_get(st, "exit_code") ?: json_null());
  if (!running) json_object_set_new(*out, "detail", json_string("it was not running"));
  json_decref(st);
  return 0;
}

int container_kill(const char *name, int sig, json_t **out, berth_error_t *err) {
  if (!container_name_valid(name)) return berth_error(err, -ENOENT, "Container not found: %.80s", name);
  json_t *st = state_read(name);
  if (!st) return berth_error(err, -ENOENT, "Container not found: %s", name);
  if (state_live(st) != STATUS_RUNNING) {
    json_decref(st);
    return berth_error(err, -ESRCH, "container %s is not running", name);
  }
  pid_t pid = state_proc(st, "init").pid;
  /* a service's init passes it to the main process; a dev container's
   * init takes TERM, INT and HUP as a stop */
  int r = state_proc_alive(st, "init") && kill(pid, sig) == 0 ? 0 : berth_error(err, errno, "signal container %s", name);
  json_decref(st);
  if (r == 0) *out = json_pack("{s:b, s:s, s:i}", "success", 1, "container", name, "signal", sig);
  return r;
}

int container_start(const char *name, json_t **out, berth_error_t *err) { return start_existing(name, -1, false, out, err); }

int container_restart(const char *name, int timeout, json_t **out, berth_error_t *err) {
  json_t *o = NULL;
  if (container_stop(name, timeout, &o, err) < 0) return -1;
  json_decref(o);
  return start_existing(name, -1, false, out, err);
}

/* the kept variables (env.json) as an object, and the names that are not */
static json_t *env_kept(const char *cdir, json_t *spec, json_t **dropped) {
  cleanup_free char *p = xasprintf("%s/env.json", cdir);
  cleanup_free char *txt = NULL;
  size_t len = 0;
  json_t *kept = read_file(p, 16 << 20, &txt, &len, NULL) == 0 ? json_loadb(txt, len, 0, NULL) : NULL;
  if (txt) explicit_bzero(txt, len);
  if (!json_is_object(kept)) {
    json_decref(kept);
    kept = json_object();
  }
  *dropped = json_array();
  const char *names = jstr(json_object_get(spec, "annotations"), "berth.env_names");
  json_t *all = names ? json_loads(names, 0, NULL) : NULL;
  size_t i;
  json_t *n;
  json_array_foreach(all, i, n) if (json_is_string(n) && !json_object_get(kept, json_string_value(n))) json_array_append(*dropped, n);
  json_decref(all);
  return kept;
}

int start_existing(const char *name, int env_fd_in, bool auto_restart, json_t **out, berth_error_t *err) {
  if (!container_name_valid(name)) return berth_error(err, -ENOENT, "Container not found: %.80s", name);
  struct berth_config *cfg = config_get(err);
  if (!cfg) return -1;
  int lk = container_lock(name, err);
  if (lk < 0) return -1;
  json_t *st = state_read(name);
  enum state_status ls = st ? state_live(st) : STATUS_UNKNOWN;
  if (!st || ls == STATUS_RUNNING || ls == STATUS_CREATING || json_is_true(json_object_get(st, "remove_on_exit"))) {
    int r = 0;
    if (!st) r = berth_error(err, -ENOENT, "Container not found: %s", name);
    else if (ls == STATUS_RUNNING)
      *out = json_pack("{s:b, s:s, s:s, s:s}", "success", 1, "container", name, "status", "running", "detail", "already running");
    else if (ls == STATUS_CREATING) r = berth_error(err, -EBUSY, "container %s is still being created", name);
    else r = berth_error(err, -EINVAL, "container %s was a `run --rm` one-shot: it cannot be started again", name);
    json_decref(st);
    close(lk);
    return r;
  }
  /* what a crash (or a reboot) left: helpers, the cgroup, the address */
  const char *helpers[] = {"network_helper", "port_forwarder", "egress_helper"};
  for (int i = 0; i < 3; i++)
    if (state_proc_alive(st, helpers[i])) kill((pid_t)json_integer_value(json_object_get(json_object_get(st, helpers[i]), "pid")), SIGKILL);
  cgroup_destroy(json_object_get(st, "cgroup"));
  berth_trace("start: leftovers cleared");
  const char *id = jstr(st, "id") ?: "";
  const char *network = jstr(st, "network") ?: "none";
  if (!strcmp(network, "bridge")) hb_release(id);
  cleanup_free char *cdir = cpath(name, NULL);
  cleanup_free char *sp = xasprintf("%s/config.json", cdir);
  json_t *limits = json_object_get(st, "limits");
  struct create_opts so = {.name = name,
                           .image = jstr(st, "image"),
                           .persistent = jbool(st, "persistent", false),
                           .quiet = true,
                           .ports = json_object_get(st, "ports"),
                           .egress = json_object_get(st, "egress"),
                           .limits = {.memory = json_integer_value(json_object_get(limits, "memory")),
                                      .pids = json_integer_value(json_object_get(limits, "pids")),
                                      .cpus = json_number_value(json_object_get(limits, "cpus"))}};
  struct create_ctx c = {.o = &so, .cfg = cfg, .name = name, .cdir = cdir, .network = network, CREATE_CTX_NO_FDS};
  c.lock_fd = lk;
  c.spec = json_load_file(sp, 0, NULL);
  c.port_fds = xmalloc0(sizeof(int) * (json_array_size(so.ports) + 1));
  json_t *kept = NULL, *dropped = NULL, *cmd = NULL, *restored = NULL, *v;
  const char *ip = NULL, *k;
  char *hx = NULL;
  int r = -1;
  bool named = net_is_named(network);
  if (!c.spec) {
    berth_error(err, -EINVAL, "container %s: its config.json is missing or unreadable; remove it with `berth rm -f %s`", name, name);
    goto done;
  }
  if (json_is_true(json_object_get(json_object_get(st, "disk"), "enforced")) && disk_mount(cdir, err) < 0) goto done;
  if (pf_bind(so.ports, c.port_fds, err) < 0) goto done;
  if (named && net_named_lease(network, container_network_members, &c.lease, err) < 0) goto done;
  c.hostbr = !strcmp(network, "bridge") && hb_usable();
  if (c.hostbr && hb_lease(id, c.hb_ip, err) < 0) goto done;
  ip = named ? c.lease.ip : c.hostbr ? c.hb_ip : NULL;
  if (write_gen_files(cdir, name, network, ip, c.hostbr, so.egress != NULL, true, err) < 0) goto done;
  hx = random_hex(2);
  c.cgname = xasprintf("%s-%s-%s", name, id, hx ? hx : "0"); /* a new name: the old one may linger */
  free(hx);
  berth_trace("start: network and files");
  if (cgroup_create(c.cgname, json_object_get(c.spec, "linux"), &c.cg, err) < 0) goto done;
  berth_trace("start: cgroup");
  kept = env_kept(cdir, c.spec, &dropped);
  if (env_fd_in >= 0) {
    c.env_fd = fcntl(env_fd_in, F_DUPFD_CLOEXEC, 3);
    json_array_clear(dropped); /* the monitor held them all */
  } else {
    so.env = kept;
    c.env_fd = env_memfd(kept, err);
  }
  if (c.env_fd < 0) goto done;
  c.slirp = (!strcmp(network, "bridge") && !c.hostbr) || named;
  cmd = json_object_get(st, "command");
  if (!strcmp(jstr(st, "mode") ?: "", "service") && json_array_size(cmd)) {
    c.svc_argv = json_incref(cmd);
    size_t n = json_array_size(cmd);
    c.svc_cargv = xmalloc0(sizeof(char *) * (n + 1));
    for (size_t i = 0; i < n; i++) c.svc_cargv[i] = (char *)(json_string_value(json_array_get(cmd, i)) ?: "");
    c.svc = (struct exec_opts){.name = name, .argv = c.svc_cargv, .user = jstr(st, "user"), .keep_caps = container_setup_caps(st)};
  }
  c.expires_at = (double)json_integer_value(json_object_get(st, "expires_at"));
  c.resident = c.svc_argv || strcmp(jstr(json_object_get(st, "restart"), "policy") ?: "no", "no") || c.expires_at > 0;
  c.id = xstrdup(id);
  json_object_del(st, "stopped");
  json_object_del(st, "one_shot");
  json_object_del(st, "restart_error");
  json_object_set(st, "cgroup", c.cg);
  if (ip) json_object_set_new(st, "ip", json_string(ip));
  else json_object_del(st, "ip");
  json_object_set_new(st, "restart_count", json_integer(auto_restart ? json_integer_value(json_object_get(st, "restart_count")) + 1 : 0));
  if (!auto_restart) json_object_del(st, "restart_backoff_ms");
  if (state_write(name, st, err) < 0) goto done;
  if (c.lease.lock_fd >= 0) close(c.lease.lock_fd);
  c.lease.lock_fd = -1;
  berth_trace("start: state written");
  if (start_monitor(&c, err) < 0) goto done;
  berth_trace("start: monitor verdict");
  if (named) net_named_refresh(network, container_network_members);
  r = 0;
  *out = json_pack("{s:b, s:s, s:s, s:O, s:s, s:O}", "success", 1, "container", name, "status", "running", "restart_count",
                   json_object_get(st, "restart_count"), "mode", jstr(st, "mode") ?: "dev", "env_dropped", dropped);
  restored = json_array();
  json_object_foreach(kept, k, v) json_array_append_new(restored, json_string(k));
  json_object_set_new(*out, "env_restored", restored);
  if (json_array_size(dropped))
    json_object_set_new(*out, "notes",
                        json_pack("[s]", "variables that came from the host (passed through or forwarded "
                                         "credentials) live only while a container runs: env_dropped names "
                                         "them; pass them again with exec -e, or recreate the container"));
done:
  if (r < 0) {
    if (c.cg) cgroup_destroy(c.cg);
    if (c.hostbr) hb_release(id);
    berth_error_wrap(err, "Failed to start container %s", name);
  }
  close(lk);
  if (c.env_fd >= 0) close(c.env_fd);
  net_lease_close(&c.lease);
  pf_close(so.ports, c.port_fds);
  free(c.port_fds);
  free(c.cgname);
  free(c.id);
  free(c.note);
  free(c.svc_cargv);
  json_decref(c.svc_argv);
  json_decref(c.cg);
  json_decref(c.spec);
  json_decref(kept);
  json_decref(dropped);
  json_decref(st);
  return r;
}

int container_start_persistent(json_t **out, berth_error_t *err) {
  cleanup_free char *d = containers_dir(err);
  if (!d) return -1;
  json_t *started = json_array(), *failed = json_array(), *skipped = json_array();
  DIR *dd = opendir(d);
  struct dirent *de;
  while (dd && (de = readdir(dd))) {
    if (de->d_name[0] == '.' || !container_name_valid(de->d_name)) continue;
    json_t *st = state_read(de->d_name);
    const char *policy = jstr(json_object_get(st, "restart"), "policy") ?: "no";
    bool stopped = json_is_true(json_object_get(st, "stopped"));
    /* persistent and unless-stopped: unless a person stopped it; always: even then (Docker's rule) */
    bool want =
        st && state_live(st) != STATUS_RUNNING && state_live(st) != STATUS_CREATING &&
        ((jbool(st, "persistent", false) && !stopped) || !strcmp(policy, "always") || (!strcmp(policy, "unless-stopped") && !stopped));
    if (want) {
      json_t *o = NULL;
      berth_error_t e = NULL;
      if (start_existing(de->d_name, -1, false, &o, &e) < 0) {
        json_array_append_new(failed, json_pack("{s:s, s:s}", "container", de->d_name, "error", e->msg));
        berth_error_free(e);
      } else json_array_append_new(started, json_string(de->d_name));
      json_decref(o);
    } else if (st && jbool(st, "persistent", false) && stopped) json_array_append_new(skipped, json_string(de->d_name));
    json_decref(st);
  }
  if (dd) closedir(dd);
  *out = json_pack("{s:b, s:o, s:o, s:o}", "success", json_array_size(failed) == 0, "started", started, "failed", failed, "skipped_stopped",
                   skipped);
  return 0;
}

json_t *container_session_ref(void) { return proc_ref(getpid()); }

/* a container whose time is up, or whose MCP session ended without
 * removing it (the server was killed): removed, unless persistent */
bool reap_expired(const char *name, json_t *st) {
  if (jbool(st, "persistent", false)) return false;
  json_t *exp = json_object_get(st, "expires_at");
  bool gone = (exp && json_integer_value(exp) > 0 && json_integer_value(exp) <= (json_int_t)time(NULL)) ||
              (json_object_get(st, "session") && !state_proc_alive(st, "session"));
  if (!gone || state_live(st) == STATUS_CREATING) return false;
  json_t *o = NULL;
  berth_error_t e = NULL;
  if (remove_container(name, jstr(st, "id"), -1, true, NULL, &o, &e) < 0) berth_error_free(e);
  json_decref(o);
  return true;
}
