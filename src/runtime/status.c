/* Listing containers and their status (and what a list reaps: dead
 * creates, killed one-shots, expired containers). */
#define _GNU_SOURCE
#include "runtime/container.h"
#include "runtime/container_internal.h"
#include "network/network.h"
#include "network/egress.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "util/config.h"
#include "runtime/disk.h"

/* ---------- list / status ---------- */
/* the status as users see it: typed ones by name (running checked
 * against /proc), any other string as recorded */
const char *live_status(json_t *st) {
  enum state_status s = state_live(st);
  const char *rec = json_string_value(json_object_get(st, "status"));
  return s == STATUS_UNKNOWN && rec ? rec : state_status_name(s);
}
const char *container_live_status(json_t *st) { return live_status(st); }

/* A create killed midway (the CLI got SIGKILL) leaves a directory whose
 * state is missing or "creating" and whose lock nobody holds: remove it, so
 * the name is free again. */
bool reap_stale_create(const char *dir, const char *name, json_t *st) {
  /* no status at all: a record cut short, as good as creating */
  if (st && json_object_get(st, "status") && state_status(st) != STATUS_CREATING) return false;
  cleanup_free char *lockp = xasprintf("%s/%s/lock", dir, name);
  cleanup_close int fd = open(lockp, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    struct stat sb;
    cleanup_free char *p = xasprintf("%s/%s", dir, name);
    /* no lock file yet: only old directories count (a create may be starting) */
    if (stat(p, &sb) < 0 || time(NULL) - sb.st_mtime < 30) return false;
  } else if (flock(fd, LOCK_EX | LOCK_NB) < 0) return false; /* its create is still running */
  if (st) cgroup_destroy(json_object_get(st, "cgroup"));
  cleanup_free char *p = xasprintf("%s/%s", dir, name);
  berth_error_t e = NULL;
  if (remove_container_dir(p, &e) < 0) berth_error_free(e);
  return true;
}

/* A `berth run` whose launcher was killed: its container died with it
 * (init's parent-death signal). Finish what the launcher would have done:
 * remove it (--rm), or record it exited. */
static bool reap_one_shot(const char *name, json_t *st) {
  if (!json_is_true(json_object_get(st, "one_shot")) || state_status(st) != STATUS_RUNNING || state_live(st) != STATUS_EXITED ||
      state_proc_alive(st, "monitor"))
    return false;
  if (!json_is_true(json_object_get(st, "remove_on_exit"))) {
    cleanup_free char *who = xasprintf("%s:%s", name, jstr(st, "id") ?: "");
    record_exit(who, 137, false);
    return false; /* still listed, now exited */
  }
  json_t *out = NULL;
  berth_error_t e = NULL;
  if (remove_container(name, jstr(st, "id"), -1, true, NULL, &out, &e) < 0) berth_error_free(e);
  json_decref(out);
  return true;
}

int container_list(json_t **out, berth_error_t *err) {
  cleanup_free char *d = containers_dir(err);
  if (!d) return -1;
  json_t *arr = json_array(), *stale_nets = json_object();
  hb_gc(); /* a crashed container's address (and maybe berth0 with it) */
  DIR *dd = opendir(d);
  if (dd) {
    struct dirent *de;
    while ((de = readdir(dd))) {
      if (de->d_name[0] == '.' || !container_name_valid(de->d_name)) continue;
      json_t *st = state_read(de->d_name);
      if (reap_stale_create(d, de->d_name, st) || (st && reap_one_shot(de->d_name, st)) || (st && reap_expired(de->d_name, st))) {
        json_decref(st);
        continue;
      }
      if (!st) continue;
      const char *ls = live_status(st), *net = jstr(st, "network");
      /* recorded running, found dead (a crash): its network's members forget it */
      if (net_is_named(net) && state_live(st) == STATUS_EXITED && state_status(st) == STATUS_RUNNING && !json_object_get(stale_nets, net))
        json_object_set_new(stale_nets, net, json_true());
      json_array_append_new(
          arr, json_pack("{s:s, s:s, s:s, s:O, s:O, s:O, s:O}", "name", de->d_name, "status", ls, "image",
                         json_string_value(json_object_get(st, "image")) ?: "", "ports", json_object_get(st, "ports") ?: json_array(),
                         "purpose", json_object_get(st, "purpose") ?: json_null(), "persistent",
                         json_object_get(st, "persistent") ?: json_false(), "network", json_object_get(st, "network") ?: json_null()));
      json_object_set_new(json_array_get(arr, json_array_size(arr) - 1), "mode", json_string(jstr(st, "mode") ?: "dev"));
      json_decref(st);
    }
    closedir(dd);
  }
  const char *net;
  json_t *v;
  json_object_foreach(stale_nets, net, v) net_named_refresh(net, container_network_members);
  json_decref(stale_nets);
  *out = json_pack("{s:o, s:I}", "containers", arr, "count", (json_int_t)json_array_size(arr));
  return 0;
}

json_t *container_network_members(const char *net, bool live_only) {
  json_t *arr = json_array();
  cleanup_error berth_error_t e = NULL;
  cleanup_free char *d = containers_dir(&e);
  DIR *dd = d ? opendir(d) : NULL;
  struct dirent *de;
  while (dd && (de = readdir(dd))) {
    if (de->d_name[0] == '.' || !container_name_valid(de->d_name)) continue;
    json_t *st = state_read(de->d_name);
    const char *s = live_status(st);
    /* a create in progress already owns its address */
    bool live = state_live(st) == STATUS_RUNNING || state_live(st) == STATUS_CREATING;
    if (st && !strcmp(jstr(st, "network") ?: "", net) && (!live_only || (live && jstr(st, "ip")))) {
      cleanup_free char *hosts = xasprintf("%s/%s/etc/hosts", d, de->d_name);
      json_array_append_new(arr, json_pack("{s:s, s:s?, s:s, s:s}", "name", de->d_name, "ip", jstr(st, "ip"), "hosts", hosts, "status", s));
    }
    json_decref(st);
  }
  if (dd) closedir(dd);
  return arr;
}

int container_status(const char *name, bool health, json_t **out, berth_error_t *err) {
  if (!container_name_valid(name)) return berth_error(err, -ENOENT, "Container not found: %.80s", name);
  json_t *st = state_read(name);
  if (!st) return berth_error(err, -ENOENT, "Container not found: %s", name);
  const char *s = live_status(st);
  bool running = state_live(st) == STATUS_RUNNING;
  json_t *meta =
      json_pack("{s:O, s:O, s:O, s:O, s:O, s:O}", "id", json_object_get(st, "id"), "limits", json_object_get(st, "limits"), "mounts",
                json_object_get(st, "mounts") ?: json_array(), "network", json_object_get(st, "network") ?: json_null(), "workdir",
                json_object_get(st, "workdir") ?: json_null(), "cgroup", json_object_get(st, "cgroup") ?: json_null());
  if (running) json_object_set(meta, "pid", json_object_get(json_object_get(st, "init"), "pid"));
  if (json_object_get(st, "ip")) json_object_set(meta, "ip", json_object_get(st, "ip"));
  json_object_set_new(meta, "network_isolated", json_boolean(strcmp(jstr(st, "network") ?: "", "host") != 0));
  if (json_object_get(st, "exit_code")) json_object_set(meta, "exit_code", json_object_get(st, "exit_code"));
  json_object_set(meta, "persistent", json_object_get(st, "persistent") ?: json_false());
  json_object_set(meta, "ports", json_object_get(st, "ports") ?: json_array());
  if (json_object_get(st, "devices")) json_object_set(meta, "devices", json_object_get(st, "devices"));
  json_object_set(meta, "purpose", json_object_get(st, "purpose") ?: json_null());
  /* the main process and its life */
  const char *keys[] = {"command",    "user",       "restart", "restart_count", "finished_at",
                        "oom_killed", "expires_at", "stopped", "stop_signal",   "restart_error"};
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
    if (json_object_get(st, keys[k])) json_object_set(meta, keys[k], json_object_get(st, keys[k]));
  json_object_set_new(meta, "mode", json_string(jstr(st, "mode") ?: "dev"));
  json_t *dk = json_object_get(st, "disk");
  if (dk) { /* the writable layer's limit, and its use when enforced */
    cleanup_free char *cdir = cpath(name, NULL);
    json_t *u =
        json_is_true(json_object_get(dk, "enforced")) && cdir ? disk_usage(cdir, json_integer_value(json_object_get(dk, "limit"))) : NULL;
    json_t *d = json_deep_copy(dk);
    if (u) json_object_update(d, u);
    json_decref(u);
    json_object_set_new(meta, "disk", d);
  }
  json_t *o = json_pack("{s:s, s:b, s:s, s:O, s:s, s:o}", "container", name, "running", running, "status", s, "started_at",
                        json_object_get(st, "started_at") ?: json_null(), "image", json_string_value(json_object_get(st, "image")) ?: "",
                        "metadata", meta);
  if (json_object_get(st, "egress")) { /* the policy, and what it refused lately */
    json_object_set(meta, "egress", json_object_get(st, "egress"));
    cleanup_free char *cdir = container_dir(name);
    json_int_t count = 0;
    json_t *recent = cdir ? egress_records(cdir, 5, &count) : json_array();
    json_object_set_new(o, "egress_denied", json_pack("{s:I, s:o}", "count", count, "recent", recent));
  }
  if (health && running) {
    int64_t mem, pids;
    cgroup_usage(json_object_get(st, "cgroup"), &mem, &pids);
    char *const argv[] = {"/bin/sh", "-c", "true", NULL};
    struct exec_opts eo = {.name = name, .argv = argv, .capture = true, .capture_max = 4096, .timeout = 10};
    struct exec_result r = {0};
    double t0 = now_seconds();
    berth_error_t e2 = NULL;
    int er = container_exec(&eo, &r, &e2);
    double ms = (now_seconds() - t0) * 1000;
    json_object_set_new(o, "health",
                        json_pack("{s:b, s:f, s:I, s:I, s:s*}", "healthy", er == 0 && r.exit_code == 0, "exec_latency_ms", ms,
                                  "memory_bytes", (json_int_t)mem, "pids", (json_int_t)pids, "error", e2 ? e2->msg : NULL));
    berth_error_free(e2);
    buf_free(&r.out);
    buf_free(&r.err);
  }
  json_decref(st);
  *out = o;
  return 0;
}

int container_egress_test(const char *name, const char *dest, json_t **out, berth_error_t *err) {
  if (!container_name_valid(name)) return berth_error(err, -ENOENT, "Container not found: %.80s", name);
  json_t *st = state_read(name);
  if (!st) return berth_error(err, -ENOENT, "Container not found: %s", name);
  json_t *pol = json_object_get(st, "egress");
  if (!pol) {
    json_decref(st);
    return berth_error(err, -EINVAL, "container %s has no egress policy: every destination is allowed (%s)", name,
                       advice("create it with --egress allow:HOST,...", "create it with `egress`"));
  }
  /* the network as its launch saw it: berth0 holds 10.88/16, named networks 10.89/16 */
  const char *net = jstr(st, "network") ?: "bridge", *ip = jstr(st, "ip");
  struct monitor_args m = {.named = net_is_named(net), .ip = ip};
  m.hostbr = !m.named && ip && str_has_prefix(ip, "10.88.");
  m.bridge = !m.hostbr;
  struct egress_net n;
  egress_net_of(&m, &n);
  egress_host_addrs(&n);
  int r = egress_check(pol, &n, dest, out, err);
  if (r == 0) json_object_set_new(*out, "container", json_string(name));
  json_decref(st);
  return r;
}
