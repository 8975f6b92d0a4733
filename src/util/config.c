#define _GNU_SOURCE
#include "util/config.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>

static int load_json_file(const char *path, json_t **out, berth_error_t *err) {
  *out = NULL;
  if (!path_exists(path)) return 0;
  json_error_t je;
  json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!j) return berth_error(err, -EINVAL, "config `%s` line %d: %s; fix or remove the file", path, je.line, je.text);
  if (!json_is_object(j)) {
    json_decref(j);
    return berth_error(err, -EINVAL, "config `%s`: top level must be a JSON object", path);
  }
  *out = j;
  return 0;
}

int config_load(struct berth_config *c, berth_error_t *err) {
  memset(c, 0, sizeof *c);
  c->rootless = geteuid() != 0;
  const char *home = getenv("HOME");
  if (!home || !*home) {
    struct passwd *pw = getpwuid(geteuid());
    home = pw ? pw->pw_dir : "/";
  }
  c->home = strdup(home);
  c->root = json_object();

  const char *explicit = getenv("BERTH_CONFIG");
  if (explicit && *explicit) {
    json_t *j = NULL;
    c->files[0] = strdup(explicit);
    if (!path_exists(explicit)) return berth_error(err, -ENOENT, "BERTH_CONFIG `%s`", explicit);
    if (load_json_file(explicit, &j, err) < 0) return -1;
    json_object_update(c->root, j);
    json_decref(j);
  } else {
    cleanup_free char *user = NULL;
    const char *xdg = getenv("XDG_CONFIG_HOME");
    user = (xdg && *xdg) ? xasprintf("%s/berth/config.json", xdg) : xasprintf("%s/.config/berth/config.json", c->home);
    const char *files[] = {"/etc/berth/config.json", user};
    for (size_t i = 0; i < 2; i++) {
      c->files[i] = strdup(files[i]);
      json_t *j = NULL;
      if (load_json_file(files[i], &j, err) < 0) return -1;
      if (j) json_object_update(c->root, j);
      json_decref(j);
    }
  }

  const char *d = getenv("BERTH_ROOT");
  json_t *jd = json_object_get(c->root, "data_dir");
  if (d && *d) c->data_dir = strdup(d);
  else if (json_is_string(jd)) c->data_dir = strdup(json_string_value(jd));
  else if (!c->rootless) c->data_dir = strdup("/var/lib/berth");
  else {
    const char *x = getenv("XDG_DATA_HOME");
    c->data_dir = (x && *x) ? xasprintf("%s/berth", x) : xasprintf("%s/.local/share/berth", c->home);
  }
  const char *r = getenv("BERTH_RUNROOT");
  if (r && *r) c->run_dir = strdup(r);
  else if (!c->rootless) c->run_dir = strdup("/run/berth");
  else {
    const char *x = getenv("XDG_RUNTIME_DIR");
    c->run_dir = (x && *x) ? xasprintf("%s/berth", x) : xasprintf("/tmp/berth-run-%u", (unsigned)geteuid());
  }
  if (!c->data_dir || !c->run_dir) return berth_error(err, -ENOMEM, "config");
  return 0;
}

int config_run_dir_check(const struct berth_config *c, berth_error_t *err) {
  if (mkdir_p(c->run_dir, 0700, err) < 0) return -1;
  struct stat st;
  if (lstat(c->run_dir, &st) < 0) return berth_error(err, errno, "run dir `%s`", c->run_dir);
  const char *why = !S_ISDIR(st.st_mode)     ? "is not a directory"
                    : st.st_uid != geteuid() ? "belongs to another user"
                    : (st.st_mode & 022)     ? "can be written by other users"
                                             : NULL;
  if (!why) return 0;
  return berth_error(err, -EPERM,
                     "berth's run dir `%s` %s (owner uid %u, mode %04o): another user could plant berth's records there; remove it, or "
                     "set XDG_RUNTIME_DIR (or BERTH_RUNROOT) to a directory of your own with mode 0700",
                     c->run_dir, why, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
}

bool config_run_dir_usable(const struct berth_config *c) {
  static bool warned;
  berth_error_t e = NULL;
  if (config_run_dir_check(c, &e) == 0) return true;
  if (!warned) berth_warn("%s", e->msg);
  warned = true;
  berth_error_free(e);
  return false;
}

void config_free(struct berth_config *c) {
  json_decref(c->root);
  free(c->data_dir);
  free(c->run_dir);
  free(c->home);
  free(c->files[0]);
  free(c->files[1]);
  memset(c, 0, sizeof *c);
}

struct berth_config *config_get(berth_error_t *err) {
  static struct berth_config cfg;
  static bool loaded;
  if (!loaded) {
    if (config_load(&cfg, err) < 0) {
      config_free(&cfg);
      return NULL;
    }
    loaded = true;
  }
  return &cfg;
}

bool config_registry_insecure(struct berth_config *c, const char *hostport) {
  json_t *a = json_object_get(c->root, "insecure_registries");
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), hostport)) return true;
  return false;
}

json_t *config_mirrors(struct berth_config *c, const char *domain) {
  json_t *m = json_object_get(json_object_get(c->root, "registry_mirrors"), domain);
  return json_is_array(m) ? m : NULL;
}

long config_int(struct berth_config *c, const char *key, long def) {
  json_t *v = json_object_get(c->root, key);
  return json_is_integer(v) ? (long)json_integer_value(v) : def;
}

json_t *config_array(struct berth_config *c, const char *key) {
  json_t *v = json_object_get(c->root, key);
  return json_is_array(v) ? v : NULL;
}
