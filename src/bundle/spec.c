#define _GNU_SOURCE
#include "bundle/spec.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "util/config.h"

static const char *MASKED[] = {"/proc/acpi",
                               "/proc/kcore",
                               "/proc/keys",
                               "/proc/latency_stats",
                               "/proc/timer_list",
                               "/proc/timer_stats",
                               "/proc/sched_debug",
                               "/proc/scsi",
                               "/proc/interrupts",
                               "/sys/firmware",
                               "/sys/devices/virtual/powercap"};
static const char *READONLY[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};

const char *env_get(json_t *env, const char *key) {
  size_t i, kl = strlen(key);
  json_t *v;
  json_array_foreach(env, i, v) {
    const char *s = json_string_value(v);
    if (s && !strncmp(s, key, kl) && s[kl] == '=') return s + kl + 1;
  }
  return NULL;
}

void env_set(json_t *env, const char *key, const char *value) {
  size_t i, kl = strlen(key);
  json_t *v;
  char *kv = xasprintf("%s=%s", key, value);
  json_array_foreach(env, i, v) {
    const char *s = json_string_value(v);
    if (s && !strncmp(s, key, kl) && s[kl] == '=') {
      json_array_set_new(env, i, json_string(kv));
      free(kv);
      return;
    }
  }
  json_array_append_new(env, json_string(kv));
  free(kv);
}

static bool env_key_valid(const char *k) {
  if (!*k || strchr(k, '=')) return false;
  for (const char *p = k; *p; p++)
    if ((unsigned char)*p < 0x20) return false;
  return true;
}

static bool abs_clean(const char *p) { return p && p[0] == '/' && !strstr(p, "/../") && !str_has_suffix(p, "/..") && strlen(p) < 4096; }

/* P as the kernel walks it into OUT (repeated slashes and `.` go; `..` is
 * refused elsewhere); false when it does not fit */
static bool norm_path(const char *p, char *norm, size_t size) {
  size_t n = 0;
  for (const char *c = p; *c;) {
    while (*c == '/') c++;
    const char *e = strchrnul(c, '/');
    size_t len = (size_t)(e - c);
    if (len && !(len == 1 && *c == '.')) {
      if (n + 1 + len >= size) return false;
      norm[n++] = '/';
      memcpy(norm + n, c, len);
      n += len;
    }
    c = e;
  }
  norm[n] = '\0';
  return true;
}

bool spec_same_path(const char *a, const char *b) {
  char na[4096], nb[4096];
  return norm_path(a, na, sizeof na) && norm_path(b, nb, sizeof nb) && !strcmp(na, nb);
}

bool spec_mount_target_forbidden(const char *p) {
  char norm[4096];
  if (!norm_path(p, norm, sizeof norm)) return true; /* longer than a path: nothing to mount at */
  size_t n = strlen(norm);
  if (!n || !strcmp(norm, "/dev")) return true;
  return str_has_prefix(norm, "/proc") && (!norm[5] || norm[5] == '/') ? true
                                                                       : str_has_prefix(norm, "/sys") && (!norm[4] || norm[4] == '/');
}

int spec_generate(const struct spec_input *in, json_t **out, berth_error_t *err) {
  json_t *icfg = json_object_get(in->image_config, "config");
  json_t *env = json_array();
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(icfg, "Env"), i, v) if (json_is_string(v) && strchr(json_string_value(v), '='))
      json_array_append(env, v);
  if (!env_get(env, "PATH")) env_set(env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  env_set(env, "HOSTNAME", in->name);
  const char *k;
  /* values of the caller's variables (tokens, keys) never go to disk: the
   * spec records their names; the values live in a sealed memfd held by the
   * container's init (see launch.c, init_child) */
  json_t *env_names = json_array();
  json_object_foreach(in->env, k, v) {
    if (!env_key_valid(k) || !json_is_string(v)) {
      json_decref(env);
      json_decref(env_names);
      return berth_error(err, -EINVAL, "env: `%.60s` needs a name without `=` and a string value", k);
    }
    json_array_append_new(env_names, json_string(k));
  }
  cleanup_free char *env_names_txt = json_dumps(env_names, JSON_COMPACT);
  json_decref(env_names);
  const char *wd = in->workdir && *in->workdir ? in->workdir : "/workspace";
  if (!abs_clean(wd)) {
    json_decref(env);
    return berth_error(err, -EINVAL, "workdir `%.100s` must be an absolute path without `..`", wd);
  }

  if (in->cwd_mount && spec_mount_target_forbidden(wd)) {
    json_decref(env);
    return berth_error(err, -EINVAL,
                       "workdir `%.100s` cannot take the current directory's mount: choose another workdir, or "
                       "no mount of the current directory",
                       wd);
  }
  json_t *mounts = json_array();
  json_array_append_new(mounts, json_pack("{s:s,s:s,s:s,s:[s,s,s]}", "destination", "/proc", "type", "proc", "source", "proc", "options",
                                          "nosuid", "noexec", "nodev"));
  json_array_append_new(mounts, json_pack("{s:s,s:s,s:s,s:[s,s,s,s]}", "destination", "/dev", "type", "tmpfs", "source", "tmpfs", "options",
                                          "nosuid", "strictatime", "mode=755", "size=65536k"));
  json_array_append_new(mounts, json_pack("{s:s,s:s,s:s,s:[s,s,s,s,s,s]}", "destination", "/dev/pts", "type", "devpts", "source", "devpts",
                                          "options", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"));
  json_array_append_new(mounts, json_pack("{s:s,s:s,s:s,s:[s,s,s,s,s]}", "destination", "/dev/shm", "type", "tmpfs", "source", "shm",
                                          "options", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"));
  json_array_append_new(mounts, json_pack("{s:s,s:s,s:s,s:[s,s,s]}", "destination", "/dev/mqueue", "type", "mqueue", "source", "mqueue",
                                          "options", "nosuid", "noexec", "nodev"));
  json_array_append_new(mounts, json_pack("{s:s,s:s,s:s,s:[s,s,s,s]}", "destination", "/sys", "type", "sysfs", "source", "sysfs", "options",
                                          "nosuid", "noexec", "nodev", "ro"));
  /* an explicit mount at the workdir takes its place (never both, stacked) */
  bool wd_taken = false;
  json_array_foreach(in->mounts, i, v) {
    const char *c = json_string_value(json_object_get(v, "container"));
    if (c && spec_same_path(c, wd)) wd_taken = true;
  }
  if (in->cwd_mount && !wd_taken)
    json_array_append_new(mounts, json_pack("{s:s,s:s,s:s,s:[s,s,s]}", "destination", wd, "type", "bind", "source", in->cwd_mount,
                                            "options", "rbind", "rw", "nodev"));
  json_array_foreach(in->mounts, i, v) {
    const char *h = json_string_value(json_object_get(v, "host"));
    const char *c = json_string_value(json_object_get(v, "container"));
    const char *mode = json_string_value(json_object_get(v, "mode"));
    if (!mode) mode = "rw";
    struct stat st;
    if (!abs_clean(h) || !abs_clean(c) || (strcmp(mode, "rw") && strcmp(mode, "ro"))) {
      json_decref(env);
      json_decref(mounts);
      return berth_error(err, -EINVAL, "mount %zu: host and container must be absolute paths without `..`, mode `ro` or `rw`", i);
    }
    if (spec_mount_target_forbidden(c)) {
      json_decref(env);
      json_decref(mounts);
      return berth_error(err, -EINVAL,
                         "mount %zu: `%s` cannot be a mount target: `/`, `/proc`, `/sys`, `/dev` and anything below `/proc` "
                         "and `/sys` belong to the container's own setup; mount at another path such as /mnt/%s",
                         i, c, strrchr(h, '/') && strrchr(h, '/')[1] ? strrchr(h, '/') + 1 : "host");
    }
    if (stat(h, &st) < 0) {
      int e = errno;
      json_decref(env);
      json_decref(mounts);
      return berth_error(err, e, "mount source `%s`", h);
    }
    json_array_append_new(
        mounts, json_pack("{s:s,s:s,s:s,s:[s,s,s]}", "destination", c, "type", "bind", "source", h, "options", "rbind", mode, "nodev"));
  }
  const char *gen[] = {"hostname", "hosts", "resolv.conf"};
  for (int g = 0; g < 3; g++) {
    cleanup_free char *src = xasprintf("%s/etc/%s", in->cdir, gen[g]);
    cleanup_free char *dst = xasprintf("/etc/%s", gen[g]);
    json_array_append_new(mounts,
                          json_pack("{s:s,s:s,s:s,s:[s,s]}", "destination", dst, "type", "bind", "source", src, "options", "bind", "rw"));
  }

  json_t *ns = json_array();
  const char *nss[] = {"pid", "mount", "ipc", "uts", "cgroup"};
  for (int n = 0; n < 5; n++) json_array_append_new(ns, json_pack("{s:s}", "type", nss[n]));
  if (strcmp(in->network, "host")) json_array_append_new(ns, json_pack("{s:s}", "type", "network"));
  if (in->rootless) json_array_append_new(ns, json_pack("{s:s}", "type", "user"));
  json_t *masked = json_array(), *ro = json_array();
  for (size_t m = 0; m < sizeof MASKED / sizeof *MASKED; m++) json_array_append_new(masked, json_string(MASKED[m]));
  for (size_t m = 0; m < sizeof READONLY / sizeof *READONLY; m++) json_array_append_new(ro, json_string(READONLY[m]));
  json_t *res = json_object();
  /* the devices cgroup's allow-list: berth's own /dev nodes (devices
   * asked for are added by cdi_apply); read by cgroup_create */
  json_object_set_new(res, "devices", cgroup_default_devices());
  if (in->limits.memory > 0)
    json_object_set_new(res, "memory",
                        json_pack("{s:I, s:I}", "limit", (json_int_t)in->limits.memory, "swap", (json_int_t)in->limits.memory));
  if (in->limits.pids > 0) json_object_set_new(res, "pids", json_pack("{s:I}", "limit", (json_int_t)in->limits.pids));
  if (in->limits.cpus > 0)
    json_object_set_new(res, "cpu", json_pack("{s:I, s:I}", "quota", (json_int_t)(in->limits.cpus * 100000), "period", (json_int_t)100000));

  /* layers bottom-first, as the manifest lists them */
  struct berth_config *cfg = config_get(err);
  if (!cfg) return -1;
  json_t *lowers = json_array();
  json_array_foreach(json_object_get(in->image_record, "layers"), i, v) {
    const char *d = json_string_value(json_object_get(v, "digest"));
    if (!d || strlen(d) != 71) continue;
    cleanup_free char *lp = xasprintf("%s/storage/layers/%s/diff", cfg->data_dir, d + 7);
    json_array_append_new(lowers, json_string(lp));
  }
  cleanup_free char *ltxt = json_dumps(lowers, JSON_COMPACT);
  json_decref(lowers);
  cleanup_free char *upper = xasprintf("%s/upper", in->cdir);
  cleanup_free char *work = xasprintf("%s/work", in->cdir);
  cleanup_free char *rootfs = xasprintf("%s/rootfs", in->cdir);
  const char *user = json_string_value(json_object_get(icfg, "User"));
  *out = json_pack("{s:s, s:{s:b, s:{s:i, s:i}, s:[s], s:o, s:s, s:b}, s:{s:s, s:b}, s:s, s:o,"
                   " s:{s:o, s:o, s:o, s:o}, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s}}",
                   "ociVersion", "1.0.2", "process", "terminal", 0, "user", "uid", 0, "gid", 0, "args", "berth-init", "env", env, "cwd", wd,
                   "noNewPrivileges", 1, "root", "path", rootfs, "readonly", 0, "hostname", in->name, "mounts", mounts, "linux",
                   "namespaces", ns, "resources", res, "maskedPaths", masked, "readonlyPaths", ro, "annotations", "berth.lowerdirs", ltxt,
                   "berth.upperdir", upper, "berth.workdir", work, "berth.user", user && *user ? user : "0", "berth.image",
                   json_string_value(json_object_get(in->image_record, "name")) ?: "", "berth.env_names", env_names_txt, "berth.rootfs",
                   json_string_value(json_object_get(cfg->root, "rootfs")) ?: "overlay");
  if (!*out) return berth_error(err, -ENOMEM, "spec");
  return 0;
}
