/* Request validation and dispatch for the `containers` tool contract.
 * Every bad request gets {"error", "code", "field"} and changes nothing. */
#define _GNU_SOURCE
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle/cdi.h"
#include "runtime/cgroup.h"
#include "util/config.h"
#include "runtime/container.h"
#include "util/security.h"
#include "preflight/preflight.h"
#include "provision/provision.h"
#include "network/network.h"
#include "network/egress.h"
#include "berth.h"
#include "image/store.h"

enum ptype {
  T_STR,
  T_BOOL,
  T_INT,
  T_NUM,
  T_STRMAP,
  T_STRLIST,
  T_MOUNTS,
  T_PORTS,
  T_PASSTHROUGH,
  T_NAME,
  T_SNAP,
  T_ARGV,
  T_EGRESS,
  T_GPU,
  T_DEVICES
};

struct param {
  const char *name;
  enum ptype type;
  bool required;
  const char *desc;
};

typedef json_t *(*handler_fn)(json_t *req);

struct op {
  const char *name;
  const struct param *params;
  handler_fn fn;
  const char *desc;
};

#define MAX_STRING (256 * 1024)
/* budgets per request parameter (maps: env, dotfiles_inline; lists: setup_commands, mounts, ports) */
#define MAX_MAP_ENTRIES 4096
#define MAX_MAP_BYTES (1024 * 1024)
#define MAX_LIST_ENTRIES 1024

static const struct param P_NONE[] = {{0}};
static const struct param P_CREATE[] = {
    {"name", T_NAME, false, "container name (default <purpose or env>-<6 hex>)"},
    {"image", T_STR, false, "image reference; pulled when absent"},
    {"purpose", T_STR, false, "purpose profile (python, node, rust, go, general, amplifier, clean, try-repo)"},
    {"workdir", T_STR, false, "working directory (default /workspace)"},
    {"mounts", T_MOUNTS, false, "bind mounts [{host, container, mode ro|rw}]"},
    {"mount_cwd", T_BOOL, false, "bind the caller's current directory at the workdir (default true)"},
    {"ports", T_PORTS, false, "published ports [{host, container, protocol, host_ip}]"},
    {"env", T_STRMAP, false, "environment variables; always win"},
    {"env_passthrough", T_PASSTHROUGH, false, "auto | all | none | [names] (default auto)"},
    {"forward_git", T_BOOL, false, "forward the host's git config (default true)"},
    {"forward_gh", T_BOOL, false, "forward the host's gh token (default true)"},
    {"forward_ssh", T_BOOL, false, "forward the ssh agent or keys (default false)"},
    {"dotfiles_repo", T_STR, false, "dotfiles repository URL"},
    {"dotfiles_script", T_STR, false, "install script in the dotfiles repo"},
    {"dotfiles_branch", T_STR, false, "dotfiles branch"},
    {"dotfiles_target", T_STR, false, "clone target (default ~/.dotfiles)"},
    {"dotfiles_inline", T_STRMAP, false, "files written into the home directory {path: content}"},
    {"dotfiles_skip", T_BOOL, false, "skip dotfiles"},
    {"setup_commands", T_STRLIST, false, "commands run in order after provisioning"},
    {"memory_limit", T_STR, false, "memory limit, e.g. 4g (default 4g)"},
    {"disk_limit", T_STR, false,
     "size of the writable layer, e.g. 10g (default none, or `disk_limit` in berth's config); "
     "writes past it fail with ENOSPC; root only: rootless the reply's notes say it is not enforced"},
    {"cpu_limit", T_NUM, false, "CPU limit in cores"},
    {"pids_limit", T_INT, false, "process limit (default 256)"},
    {"gpu", T_GPU, false, "GPUs through CDI: true (all: nvidia.com/gpu=all), or a list of GPU ids (indexes or UUIDs: nvidia.com/gpu=ID)"},
    {"devices", T_DEVICES, false, "devices: CDI names (vendor.com/class=name) or host device paths (/dev/fuse[:/dev/x][:rwm])"},
    {"network", T_STR, false, "bridge | host | none | a named network"},
    {"egress", T_EGRESS, false,
     "egress policy: the container reaches only what `allow` lists: DNS names (*.example.org: any name below), IPv4/IPv6 "
     "addresses and CIDRs, each with an optional :PORT or :LOW-HIGH and /tcp or /udp (10.1.2.0/24:5432/tcp); names are "
     "answered by berth's resolver, everything else gets NXDOMAIN or an immediate refusal. deny_host (default true) keeps "
     "the host's addresses out (host.berth.internal[:PORT] in `allow` lets one in); log (default true) records refusals "
     "(status's egress_denied); profile (default true) adds the purpose profile's list. Default: no policy (bridge or a "
     "named network only)"},
    {"persistent", T_BOOL, false, "keep across restarts"},
    {"seccomp_profile", T_STR, false, "path of a seccomp profile (OCI or Docker JSON) for the workloads (default berth's)"},
    {"repo", T_STR, false, "purpose try-repo: the git URL (or path) to clone into the workspace"},
    {"repo_branch", T_STR, false, "purpose try-repo: branch to clone"},
    {"remove_on_failure", T_BOOL, false, "remove the container when a provisioning step fails (default false: keep and report)"},
    {"command", T_ARGV, false,
     "the main process's command (an array, or a string run with /bin/sh -c): the container "
     "becomes a service running it (default: the image's Cmd when it is not a bare shell)"},
    {"entrypoint", T_ARGV, false, "replaces the image's Entrypoint (and drops its Cmd unless `command` is given)"},
    {"keep_alive", T_BOOL, false, "a dev container (berth's init alone, for execs) whatever the image's command"},
    {"user", T_STR, false, "user[:group] of the main process (default the image's)"},
    {"restart", T_STR, false, "restart policy: no (default), on-failure[:N], always, unless-stopped"},
    {"ttl", T_INT, false, "seconds until the container is stopped and removed (default: never; not with persistent)"},
    {0}};
static const struct param P_EXEC[] = {{"container", T_NAME, true, "container name"},
                                      {"command", T_STR, true, "shell command, run with /bin/sh -c"},
                                      {"timeout", T_INT, false, "seconds (default 300); the command and all it started are killed"},
                                      {"workdir", T_STR, false, "working directory"},
                                      {"user", T_STR, false, "user[:group] inside the container"},
                                      {"env", T_STRMAP, false, "extra environment"},
                                      {"setup_capabilities", T_BOOL, false,
                                       "run with the setup capability set (Docker's default less CAP_MKNOD) that package "
                                       "managers need (apt-get install); default false: no capabilities"},
                                      {0}};
static const struct param P_CONTAINER[] = {{"container", T_NAME, true, "container name"}, {0}};
static const struct param P_LOGS[] = {{"container", T_NAME, true, "container name"},
                                      {"tail", T_INT, false, "the last N lines (default all, at most 1 MiB of text)"},
                                      {"since", T_STR, false, "from this time: RFC 3339, unix seconds, or a duration back (10m)"},
                                      {"timestamps", T_BOOL, false, "prefix each line with its time"},
                                      {0}};
static const struct param P_STOP[] = {{"container", T_NAME, true, "container name"},
                                      {"timeout", T_INT, false, "seconds between the stop signal and SIGKILL (default 10)"},
                                      {0}};
static const struct param P_STATUS[] = {
    {"container", T_NAME, true, "container name"}, {"health_check", T_BOOL, false, "run a trivial exec and report latency and usage"}, {0}};
static const struct param P_DESTROY[] = {
    {"container", T_NAME, true, "container name"}, {"force", T_BOOL, false, "kill at once instead of SIGTERM + grace"}, {0}};
static const struct param P_DESTROY_ALL[] = {{"confirm", T_BOOL, false, "must be true"}, {"force", T_BOOL, false, "kill at once"}, {0}};
static const struct param P_COPY_IN[] = {{"container", T_NAME, true, "container name"},
                                         {"host_path", T_STR, true, "source on the host"},
                                         {"container_path", T_STR, true, "destination in the container"},
                                         {0}};
static const struct param P_COPY_OUT[] = {
    {"container", T_NAME, true, "container name"},
    {"container_path", T_STR, true, "source in the container"},
    {"host_path", T_STR, true, "destination on the host"},
    {"follow_symlinks", T_BOOL, false, "follow a link at container_path inside the container (default: copy the link)"},
    {"keep_setid", T_BOOL, false, "keep set-user-ID and set-group-ID bits (default: stripped)"},
    {0}};
static const struct param P_SNAPSHOT[] = {
    {"container", T_NAME, true, "container name"},
    {"name", T_SNAP, false, "snapshot name: 1-63 lowercase letters, digits, `-`, `_`, `.`; an existing one is replaced"},
    {0}};
static const struct param P_RESTORE[] = {{"snapshot", T_SNAP, true, "snapshot name"}, {"name", T_NAME, false, "new container name"}, {0}};
static const struct param P_DELETE_SNAPSHOT[] = {{"snapshot", T_SNAP, true, "snapshot name"}, {0}};
static const struct param P_NETWORK[] = {{"name", T_NAME, true, "network name"}, {0}};
static const struct param P_EGRESS_TEST[] = {
    {"container", T_NAME, true, "container name"}, {"destination", T_STR, true, "HOST[:PORT][/tcp|/udp]: a name or an address"}, {0}};

static json_t *h_preflight(json_t *req);
static json_t *h_create(json_t *req);
static json_t *h_exec(json_t *req);
static const char *container_shell(const char *name);
static json_t *h_hint(json_t *req);
static json_t *h_list(json_t *req);
static json_t *h_status(json_t *req);
static json_t *h_destroy(json_t *req);
static json_t *h_destroy_all(json_t *req);
static json_t *h_copy_in(json_t *req);
static json_t *h_copy_out(json_t *req);
static json_t *h_create_network(json_t *req);
static json_t *h_destroy_network(json_t *req);
static json_t *h_snapshot(json_t *req);
static json_t *h_restore(json_t *req);
static json_t *h_delete_snapshot(json_t *req);
static json_t *h_logs(json_t *req);
static json_t *h_stop(json_t *req);
static json_t *h_start(json_t *req);
static json_t *h_restart(json_t *req);
static json_t *h_egress_test(json_t *req);

static const struct op OPS[] = {
    {"preflight", P_NONE, h_preflight, "check the host and print the fix for each problem"},
    {"create", P_CREATE, h_create, "create a provisioned container"},
    {"exec", P_EXEC, h_exec, "run a command in a container"},
    {"exec_interactive_hint", P_CONTAINER, h_hint, "the command a person runs to get a shell"},
    {"list", P_NONE, h_list, "list containers"},
    {"status", P_STATUS, h_status, "one container's status"},
    {"destroy", P_DESTROY, h_destroy, "stop and remove a container"},
    {"logs", P_LOGS, h_logs, "a service container's output (its main process's stdout and stderr)"},
    {"stop", P_STOP, h_stop, "stop a container and keep it (its files, config and network) for start"},
    {"start", P_CONTAINER, h_start, "start a stopped container again (no provisioning)"},
    {"restart", P_STOP, h_restart, "stop and start a container"},
    {"destroy_all", P_DESTROY_ALL, h_destroy_all, "remove every container (confirm=true)"},
    {"copy_in", P_COPY_IN, h_copy_in, "copy a file or directory into a container"},
    {"copy_out", P_COPY_OUT, h_copy_out, "copy a file or directory out of a container"},
    {"snapshot", P_SNAPSHOT, h_snapshot, "save a container's filesystem as an image"},
    {"restore", P_RESTORE, h_restore, "create a container from a snapshot"},
    {"delete_snapshot", P_DELETE_SNAPSHOT, h_delete_snapshot, "delete a snapshot"},
    {"create_network", P_NETWORK, h_create_network, "create a named network"},
    {"destroy_network", P_NETWORK, h_destroy_network, "remove a named network (refused while containers are attached)"},
    {"egress_test", P_EGRESS_TEST, h_egress_test,
     "dry run of a container's egress policy: would a destination be allowed, and by which rule"},
    {0}};

static json_t *err_reply(const char *code, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static json_t *err_reply(const char *code, const char *field, const char *fmt, ...) {
  char *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  va_end(ap);
  json_t *r = json_pack("{s:o, s:s}", "error", json_string_safe(msg ? msg : "error"), "code", code);
  if (field) json_object_set_new(r, "field", json_string_safe(field));
  free(msg);
  return r;
}

static json_t *from_error(berth_error_t e, const char *prefix) {
  const char *code = !e                                           ? "failed"
                     : e->status == ENOENT                        ? "not_found"
                     : e->status == EEXIST || e->status == EBUSY  ? "conflict"
                     : e->status == EINVAL || e->status == ERANGE ? "invalid_value"
                     : e->status == ENOTSUP                       ? "not_implemented"
                                                                  : "failed";
  const char *m = e && e->msg ? e->msg : "unknown error";
  json_t *r = (prefix && !str_has_prefix(m, prefix)) ? err_reply(code, NULL, "%s%s", prefix, m) : err_reply(code, NULL, "%s", m);
  berth_error_free(e);
  return r;
}

static const char *type_name(enum ptype t) {
  switch (t) {
  case T_STR:
  case T_NAME:
  case T_SNAP: return "string";
  case T_BOOL: return "boolean";
  case T_INT: return "integer";
  case T_NUM: return "number";
  case T_STRMAP: return "object of strings";
  case T_STRLIST: return "array of strings";
  case T_ARGV: return "string or array of strings";
  case T_MOUNTS: return "array of {host, container, mode}";
  case T_PORTS: return "array of {host, container, protocol, host_ip}";
  case T_PASSTHROUGH: return "\"auto\", \"all\", \"none\" or an array of names";
  case T_EGRESS: return "an object {allow: [entries], deny_host, log, profile}";
  case T_GPU: return "a boolean or an array of GPU ids";
  case T_DEVICES: return "an array of device names or paths";
  }
  return "?";
}

static bool str_ok(json_t *v) { return json_is_string(v) && json_string_length(v) <= MAX_STRING; }

static json_t *check_value(const struct param *p, json_t *v) {
  const char *n = p->name;
  /* a budget for every list parameter (setup_commands, mounts, ports, ...) */
  if (json_is_array(v) && json_array_size(v) > MAX_LIST_ENTRIES)
    return err_reply("invalid_value", n, "`%s` has %zu entries; at most %d", n, json_array_size(v), MAX_LIST_ENTRIES);
  switch (p->type) {
  case T_STR:
    if (!json_is_string(v)) break;
    if (!str_ok(v)) return err_reply("invalid_value", n, "`%s` is longer than %d bytes", n, MAX_STRING);
    return NULL;
  case T_NAME:
    if (!json_is_string(v)) break;
    if (!container_name_valid(json_string_value(v)))
      return err_reply("invalid_value", n, "`%s` must be 1-63 letters, digits, `_`, `.` or `-`, not starting with `.` or `-` (got `%.80s`)",
                       n, json_string_value(v));
    return NULL;
  case T_SNAP: /* the very rule the snapshot itself applies */
    if (!json_is_string(v)) break;
    if (!berth_snapshot_name_valid(json_string_value(v)))
      return err_reply("invalid_value", n,
                       "`%s` must be 1-63 lowercase letters, digits, `-`, `_` or `.`, starting with a letter or "
                       "digit (got `%.80s`)",
                       n, json_string_value(v));
    return NULL;
  case T_BOOL:
    if (json_is_boolean(v)) return NULL;
    break;
  case T_INT:
    if (json_is_integer(v)) return NULL;
    break;
  case T_NUM:
    if (json_is_number(v)) return NULL;
    break;
  case T_STRMAP: {
    if (!json_is_object(v)) break;
    /* a budget, so that one request cannot cost minutes of CPU (100k
     * variables did) or megabytes in every exec's environment */
    if (json_object_size(v) > MAX_MAP_ENTRIES)
      return err_reply("invalid_value", n, "`%s` has %zu entries; at most %d", n, json_object_size(v), MAX_MAP_ENTRIES);
    const char *k;
    json_t *x;
    size_t total = 0;
    json_object_foreach(v, k, x) {
      if (!str_ok(x)) return err_reply("invalid_type", n, "`%s.%.60s` must be a string of at most %d bytes", n, k, MAX_STRING);
      if (!*k || strlen(k) > 4096) return err_reply("invalid_value", n, "`%s` has an empty or huge key", n);
      total += strlen(k) + json_string_length(x) + 2;
    }
    if (total > MAX_MAP_BYTES) return err_reply("invalid_value", n, "`%s` holds %zu bytes; at most %d in all", n, total, MAX_MAP_BYTES);
    return NULL;
  }
  case T_ARGV:
    if (str_ok(v)) return NULL;
    __attribute__((fallthrough)); /* else an array of strings */
  case T_STRLIST: {
    if (!json_is_array(v)) break;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if (!str_ok(x)) return err_reply("invalid_type", n, "`%s[%zu]` must be a string", n, i);
    return NULL;
  }
  case T_GPU: {
    if (json_is_boolean(v)) return NULL;
    if (!json_is_array(v)) break;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      if (!json_is_string(x) && !(json_is_integer(x) && json_integer_value(x) >= 0))
        return err_reply("invalid_type", n, "`%s[%zu]` must be a GPU id (an index or a UUID)", n, i);
      cleanup_free char *q = json_is_string(x) ? xasprintf("nvidia.com/gpu=%s", json_string_value(x)) : NULL;
      berth_error_t e = NULL;
      if (q && cdi_name_check(q, &e) < 0) {
        json_t *r = err_reply("invalid_value", n, "`%s[%zu]`: %s", n, i, e->msg);
        berth_error_free(e);
        return r;
      }
    }
    return NULL;
  }
  case T_DEVICES: {
    if (!json_is_array(v)) break;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      if (!str_ok(x)) return err_reply("invalid_type", n, "`%s[%zu]` must be a string", n, i);
      berth_error_t e = NULL;
      if (cdi_request_check(json_string_value(x), &e) < 0) {
        json_t *r = err_reply("invalid_value", n, "`%s[%zu]`: %s", n, i, e->msg);
        berth_error_free(e);
        return r;
      }
    }
    return NULL;
  }
  case T_PASSTHROUGH: {
    if (json_is_string(v)) {
      const char *s = json_string_value(v);
      if (!strcmp(s, "auto") || !strcmp(s, "all") || !strcmp(s, "none")) return NULL;
      return err_reply("invalid_value", n, "`%s` must be \"auto\", \"all\", \"none\" or an array of names (got `%.40s`)", n, s);
    }
    if (!json_is_array(v)) break;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if (!str_ok(x)) return err_reply("invalid_type", n, "`%s[%zu]` must be a string", n, i);
    return NULL;
  }
  case T_MOUNTS: {
    if (!json_is_array(v)) break;
    size_t i;
    json_t *m;
    json_array_foreach(v, i, m) {
      if (!json_is_object(m)) return err_reply("invalid_type", n, "`mounts[%zu]` must be an object {host, container, mode}", i);
      const char *k;
      json_t *x;
      json_object_foreach(m, k, x) {
        if (strcmp(k, "host") && strcmp(k, "container") && strcmp(k, "mode"))
          return err_reply("unknown_parameter", n, "`mounts[%zu].%.40s` is not a mount field (host, container, mode)", i, k);
        if (!str_ok(x)) return err_reply("invalid_type", n, "`mounts[%zu].%s` must be a string", i, k);
      }
      const char *h = json_string_value(json_object_get(m, "host")), *c = json_string_value(json_object_get(m, "container"));
      const char *mode = json_string_value(json_object_get(m, "mode"));
      if (!h || !c) return err_reply("missing_parameter", n, "`mounts[%zu]` needs `host` and `container`", i);
      if (h[0] != '/' || c[0] != '/' || strstr(h, "/../") || strstr(c, "/../") || str_has_suffix(c, "/..") || str_has_suffix(h, "/.."))
        return err_reply("invalid_value", n, "`mounts[%zu]`: host and container must be absolute paths without `..`", i);
      if (mode && strcmp(mode, "ro") && strcmp(mode, "rw"))
        return err_reply("invalid_value", n, "`mounts[%zu].mode` must be \"ro\" or \"rw\"", i);
    }
    return NULL;
  }
  case T_EGRESS: {
    if (!json_is_object(v)) break;
    json_t *norm = NULL;
    berth_error_t e = NULL;
    if (egress_normalize(v, NULL, &norm, &e) < 0) {
      json_t *r = err_reply("invalid_value", n, "%s", e->msg);
      berth_error_free(e);
      return r;
    }
    json_decref(norm);
    return NULL;
  }
  case T_PORTS: {
    if (!json_is_array(v)) break;
    size_t i;
    json_t *m;
    json_array_foreach(v, i, m) {
      if (!json_is_object(m)) return err_reply("invalid_type", n, "`ports[%zu]` must be an object", i);
      json_t *h = json_object_get(m, "host"), *c = json_object_get(m, "container");
      if (!json_is_integer(h) || !json_is_integer(c) || json_integer_value(h) < 1 || json_integer_value(h) > 65535 ||
          json_integer_value(c) < 1 || json_integer_value(c) > 65535)
        return err_reply("invalid_value", n, "`ports[%zu]`: host and container must be ports 1-65535", i);
    }
    return NULL;
  }
  }
  return err_reply("invalid_type", n, "`%s` must be %s", n, type_name(p->type));
}

static const struct op *find_op(const char *name) {
  for (const struct op *o = OPS; o->name; o++)
    if (!strcmp(o->name, name)) return o;
  return NULL;
}

int api_validate(const char *text, size_t len, json_t **req, json_t **reply) {
  *req = NULL;
  *reply = NULL;
  if (len > 16 * 1024 * 1024) {
    *reply = err_reply("invalid_json", NULL, "request larger than 16 MiB");
    return -1;
  }
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    *reply = err_reply("invalid_json", NULL, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
    return -1;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    *reply = err_reply("invalid_request", NULL, "the request must be a JSON object with an `operation`");
    return -1;
  }
  json_t *opv = json_object_get(j, "operation");
  if (!opv) {
    json_decref(j);
    *reply = err_reply("missing_parameter", "operation", "missing `operation`");
    return -1;
  }
  if (!json_is_string(opv)) {
    json_decref(j);
    *reply = err_reply("invalid_type", "operation", "`operation` must be a string");
    return -1;
  }
  const struct op *op = find_op(json_string_value(opv));
  if (!op) {
    struct buf names = {0};
    for (const struct op *o = OPS; o->name; o++) {
      if (names.len) buf_append(&names, ", ", 2);
      buf_append(&names, o->name, strlen(o->name));
    }
    *reply = err_reply("unknown_operation", "operation", "unknown operation `%.60s`; one of: %s", json_string_value(opv), names.data);
    buf_free(&names);
    json_decref(j);
    return -1;
  }
  const char *k;
  json_t *v;
  json_object_foreach(j, k, v) {
    if (!strcmp(k, "operation")) continue;
    const struct param *p = op->params;
    while (p->name && strcmp(p->name, k)) p++;
    if (!p->name) {
      *reply = err_reply("unknown_parameter", k, "unknown parameter `%.60s` for operation `%s`", k, op->name);
      json_decref(j);
      return -1;
    }
    if (json_is_null(v)) continue; /* null = default */
    json_t *e = check_value(p, v);
    if (e) {
      *reply = e;
      json_decref(j);
      return -1;
    }
  }
  for (const struct param *p = op->params; p->name; p++)
    if (p->required && (!json_object_get(j, p->name) || json_is_null(json_object_get(j, p->name)))) {
      *reply = err_reply("missing_parameter", p->name, "operation `%s` needs `%s`", op->name, p->name);
      json_decref(j);
      return -1;
    }
  /* values whose range is checked beyond their type */
  static const char *sizes[] = {"memory_limit", "disk_limit", NULL};
  for (int si = 0; sizes[si]; si++) {
    json_t *sz = json_object_get(j, sizes[si]);
    if (!json_is_string(sz)) continue;
    int64_t b;
    berth_error_t e = NULL;
    if (parse_size(json_string_value(sz), &b, &e) < 0) {
      *reply = err_reply("invalid_value", sizes[si], "`%s`: %s", sizes[si], e->msg);
      berth_error_free(e);
      json_decref(j);
      return -1;
    }
    if (!strcmp(sizes[si], "disk_limit") && b > 0 && b < (16LL << 20)) {
      *reply = err_reply("invalid_value", sizes[si], "`disk_limit` must be at least 16m (got `%s`)", json_string_value(sz));
      json_decref(j);
      return -1;
    }
  }
  json_t *cpu = json_object_get(j, "cpu_limit");
  if (json_is_number(cpu) && (json_number_value(cpu) <= 0 || json_number_value(cpu) > 1024)) {
    *reply = err_reply("invalid_value", "cpu_limit", "`cpu_limit` must be more than 0 and at most 1024 cores");
    json_decref(j);
    return -1;
  }
  json_t *pl = json_object_get(j, "pids_limit");
  if (json_is_integer(pl) && (json_integer_value(pl) < 8 || json_integer_value(pl) > 4194304)) {
    *reply = err_reply("invalid_value", "pids_limit", "`pids_limit` must be between 8 and 4194304");
    json_decref(j);
    return -1;
  }
  json_t *to = json_object_get(j, "timeout");
  if (json_is_integer(to) && (json_integer_value(to) < 1 || json_integer_value(to) > 7 * 86400)) {
    *reply = err_reply("invalid_value", "timeout", "`timeout` must be 1 to 604800 seconds");
    json_decref(j);
    return -1;
  }
  *req = j;
  return 0;
}

static api_progress_fn progress_fn;
static void *progress_ud;
void api_set_progress(api_progress_fn fn, void *ud) {
  progress_fn = fn;
  progress_ud = ud;
}
void api_progress(double p, double t, const char *m) {
  if (progress_fn) progress_fn(progress_ud, p, t, m);
}

json_t *api_call_json(json_t *request) {
  char *t = json_dumps(request, JSON_COMPACT);
  json_t *r = t ? api_call_text(t, strlen(t)) : err_reply("invalid_request", NULL, "unserializable request");
  free(t);
  return r;
}

json_t *api_call_text(const char *text, size_t len) {
  json_t *req, *reply;
  if (api_validate(text, len, &req, &reply) < 0) return reply;
  const struct op *op = find_op(json_string_value(json_object_get(req, "operation")));
  reply = op->fn(req);
  json_decref(req);
  return reply;
}

json_t *api_input_schema(void) {
  json_t *props = json_object();
  json_t *ops = json_array();
  for (const struct op *o = OPS; o->name; o++) json_array_append_new(ops, json_string(o->name));
  json_object_set_new(props, "operation",
                      json_pack("{s:s, s:o, s:s}", "type", "string", "enum", ops, "description",
                                "preflight, create, exec, exec_interactive_hint, list, status, destroy, destroy_all, "
                                "logs, stop, start, restart, copy_in, copy_out, snapshot, restore, delete_snapshot, "
                                "create_network, destroy_network, egress_test"));
  for (const struct op *o = OPS; o->name; o++)
    for (const struct param *p = o->params; p->name; p++) {
      if (json_object_get(props, p->name)) continue;
      json_t *s;
      switch (p->type) {
      case T_STR:
      case T_NAME:
      case T_SNAP: s = json_pack("{s:s}", "type", "string"); break;
      case T_BOOL: s = json_pack("{s:s}", "type", "boolean"); break;
      case T_INT: s = json_pack("{s:s}", "type", "integer"); break;
      case T_NUM: s = json_pack("{s:s}", "type", "number"); break;
      case T_STRMAP: s = json_pack("{s:s, s:{s:s}}", "type", "object", "additionalProperties", "type", "string"); break;
      case T_STRLIST:
      case T_DEVICES: s = json_pack("{s:s, s:{s:s}}", "type", "array", "items", "type", "string"); break;
      case T_GPU:
        s = json_pack("{s:[{s:s}, {s:s, s:{s:[s,s]}}]}", "anyOf", "type", "boolean", "type", "array", "items", "type", "string", "integer");
        break;
      case T_ARGV:
        s = json_pack("{s:[{s:s}, {s:s, s:{s:s}}]}", "anyOf", "type", "string", "type", "array", "items", "type", "string");
        break;
      case T_PASSTHROUGH:
        s = json_pack("{s:[{s:s, s:[s,s,s]}, {s:s, s:{s:s}}]}", "anyOf", "type", "string", "enum", "auto", "all", "none", "type", "array",
                      "items", "type", "string");
        break;
      case T_MOUNTS:
        s = json_pack("{s:s, s:{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s, s:[s,s]}}, s:[s,s]}}", "type", "array", "items", "type", "object",
                      "properties", "host", "type", "string", "container", "type", "string", "mode", "type", "string", "enum", "ro", "rw",
                      "required", "host", "container");
        break;
      case T_EGRESS:
        s = json_pack("{s:s, s:{s:{s:s, s:{s:s}}, s:{s:s}, s:{s:s}, s:{s:s}}, s:b}", "type", "object", "properties", "allow", "type",
                      "array", "items", "type", "string", "deny_host", "type", "boolean", "log", "type", "boolean", "profile", "type",
                      "boolean", "additionalProperties", 0);
        break;
      case T_PORTS:
        s = json_pack("{s:s, s:{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s, s:[s,s]}, s:{s:s}}, s:[s,s]}}", "type", "array", "items", "type",
                      "object", "properties", "host", "type", "integer", "container", "type", "integer", "protocol", "type", "string",
                      "enum", "tcp", "udp", "host_ip", "type", "string", "required", "host", "container");
        break;
      default: s = json_object();
      }
      json_object_set_new(s, "description", json_string(p->desc));
      json_object_set_new(props, p->name, s);
    }
  return json_pack("{s:s, s:o, s:[s], s:b}", "type", "object", "properties", props, "required", "operation", "additionalProperties", 0);
}

/* ---------- handlers ---------- */

static json_t *h_preflight(json_t *req) {
  (void)req;
  return preflight_run();
}

static json_t *h_create_network(json_t *req) {
  json_t *out = NULL;
  berth_error_t e = NULL;
  return net_named_create(jstr(req, "name"), &out, &e) < 0 ? from_error(e, NULL) : out;
}

static json_t *h_egress_test(json_t *req) {
  json_t *out = NULL;
  berth_error_t e = NULL;
  return container_egress_test(jstr(req, "container"), jstr(req, "destination"), &out, &e) < 0 ? from_error(e, NULL) : out;
}

static json_t *h_destroy_network(json_t *req) {
  json_t *out = NULL;
  berth_error_t e = NULL;
  return net_named_destroy(jstr(req, "name"), container_network_members, &out, &e) < 0 ? from_error(e, NULL) : out;
}

static bool preflight_done;

/* A create request's checks and options, shared by create and berth run's
 * one-shot. Returns an error reply, or NULL with *cp filled (free it with
 * provision_free(&cp->p) and json_decref(cp->names)). */
struct create_prep {
  struct prov p;
  struct create_opts o;
  json_t *names; /* the variables' names, for the reply */
};

static bool api_session;
static json_t *session_made;
void api_set_session(bool on) { api_session = on; }
json_t *api_session_containers(void) { return session_made; }
static void api_create_prep_free(struct create_prep *cp);

static json_t *create_prepare(json_t *req, struct create_prep *cp) {
  memset(cp, 0, sizeof *cp);
  if (!preflight_done && !getenv("BERTH_SKIP_PREFLIGHT")) {
    json_t *pf = NULL;
    if (!preflight_ready(&pf))
      return json_pack("{s:s, s:s, s:o}", "error", "Container runtime not ready. See preflight results.", "code", "not_ready", "preflight",
                       pf);
    preflight_done = true;
  }
  /* machinery that is not built yet: refuse rather than ignore */
  json_t *ports = json_object_get(req, "ports");
  const char *net = jstr(req, "network");
  /* the guide's default is the bridge network; without its helper, none */
  if (!net) net = net_helper_available() || hb_usable() ? "bridge" : "none";
  if (json_array_size(ports) && (!strcmp(net, "none") || !strcmp(net, "host")))
    return err_reply("invalid_value", "ports", "published ports need the bridge network or a named network");
  json_t *egress = json_object_get(req, "egress");
  if (json_is_null(egress)) egress = NULL;
  if (egress && (!strcmp(net, "none") || !strcmp(net, "host")))
    return err_reply("invalid_value", "egress",
                     "an egress policy filters the container's own network namespace: it needs the "
                     "bridge network or a named network (network `%s` %s)",
                     net, !strcmp(net, "none") ? "reaches nothing anyway" : "is the host's own");
  struct berth_config *ecfg = egress ? config_get(NULL) : NULL;
  json_t *edns = ecfg ? json_object_get(ecfg->root, "egress_dns") : NULL;
  if (edns) {
    size_t i;
    json_t *x;
    bool ok = json_is_array(edns) && json_array_size(edns) <= 4;
    struct egress_addr ea;
    json_array_foreach(edns, i, x) ok = ok && egress_addr_parse(json_string_value(x), &ea) == 0;
    if (!ok)
      return err_reply("invalid_value", "egress", "berth's config key `egress_dns` must be a list of at most 4 resolvers, "
                       "\"IP\" or \"IP:PORT\" ([IPv6]:PORT), in %s", ecfg->files[1] ? ecfg->files[1] : ecfg->files[0] ?: "the config file");
  }

  json_t *inl = json_object_get(req, "dotfiles_inline");
  const char *k;
  json_t *v;
  json_object_foreach(inl, k, v) if (k[0] == '/' || k[0] == '~' || strstr(k, "..") || !*k) return err_reply(
      "invalid_value", "dotfiles_inline", "dotfiles_inline path `%.80s` must be relative to the home directory, without `..`", k);

  struct prov *p = &cp->p;
  json_t *bad = NULL;
  if (provision_prepare(p, req, &bad) < 0) {
    provision_free(p);
    return bad;
  }
  cp->names = json_array();
  json_object_foreach(p->env, k, v) json_array_append_new(cp->names, json_string(k));
  cp->o = (struct create_opts){.name = jstr(req, "name"),
                               .image = p->image,
                               .workdir = jstr(req, "workdir"),
                               .purpose = jstr(req, "purpose"),
                               .network = net,
                               .ports = ports,
                               .mounts = p->mounts,
                               .env = p->env,
                               .mount_cwd = p->mount_cwd,
                               .persistent = jbool(req, "persistent", false),
                               .quiet = true,
                               .limits = {.memory = 4LL << 30, .pids = 256},
                               .seccomp_profile = jstr(req, "seccomp_profile")};
  berth_error_t e = NULL;
  if (json_is_string(json_object_get(req, "memory_limit"))) parse_size(jstr(req, "memory_limit"), &cp->o.limits.memory, &e);
  berth_error_free(e);
  e = NULL;
  /* the writable layer's limit: the request's, else the config's default */
  struct berth_config *dcfg = config_get(NULL);
  const char *disk = jstr(req, "disk_limit") ? jstr(req, "disk_limit") : dcfg ? jstr(dcfg->root, "disk_limit") : NULL;
  if (disk && parse_size(disk, &cp->o.disk_limit, &e) < 0) cp->o.disk_limit = 0;
  berth_error_free(e);
  if (json_is_number(json_object_get(req, "cpu_limit"))) cp->o.limits.cpus = json_number_value(json_object_get(req, "cpu_limit"));
  if (json_is_integer(json_object_get(req, "pids_limit"))) cp->o.limits.pids = json_integer_value(json_object_get(req, "pids_limit"));
  /* the main process: a string command runs with /bin/sh -c */
  json_t *argvs[2] = {json_object_get(req, "command"), json_object_get(req, "entrypoint")};
  for (int i = 0; i < 2; i++) {
    json_t *a = argvs[i];
    json_t *conv = json_is_string(a) ? json_pack("[s,s,O]", "/bin/sh", "-c", a) : json_is_array(a) ? json_incref(a) : NULL;
    if (i == 0) cp->o.command = conv;
    else cp->o.entrypoint = conv;
  }
  if (json_is_array(json_object_get(req, "command")) && !json_array_size(json_object_get(req, "command")) &&
      !json_object_get(req, "entrypoint")) {
    api_create_prep_free(cp);
    return err_reply("invalid_value", "command", "`command` is empty: give the program to run, or leave it out");
  }
  cp->o.keep_alive = jbool(req, "keep_alive", false);
  cp->o.dev_needed = provision_wants_dev(&cp->p);
  cp->o.mount_cwd_explicit = json_object_get(req, "mount_cwd") != NULL;
  cp->o.user = jstr(req, "user");
  cp->o.restart = jstr(req, "restart");
  char pol[32];
  int max;
  berth_error_t re = NULL;
  if (container_parse_restart(cp->o.restart, pol, sizeof pol, &max, &re) < 0) {
    json_t *bad = err_reply("invalid_value", "restart", "%s", re->msg);
    berth_error_free(re);
    api_create_prep_free(cp);
    return bad;
  }
  json_t *ttl = json_object_get(req, "ttl");
  if (ttl && json_integer_value(ttl) <= 0) {
    api_create_prep_free(cp);
    return err_reply("invalid_value", "ttl", "`ttl` is a number of seconds above 0");
  }
  cp->o.ttl = json_integer_value(ttl);
  /* kept for a later start: the caller's own variables and the profile's;
   * those taken from the host (passed through, forwarded credentials) not */
  cp->o.env_keep = json_array();
  json_object_foreach(json_object_get(req, "env"), k, v) json_array_append_new(cp->o.env_keep, json_string(k));
  json_object_foreach(json_object_get(cp->p.profile, "env"), k, v) json_array_append_new(cp->o.env_keep, json_string(k));
  if (api_session) cp->o.session = container_session_ref();
  /* the policy, with the purpose profile's list (the profile the
   * try-repo detection picked, too) */
  if (egress) {
    berth_error_t ee = NULL;
    if (egress_normalize(egress, json_object_get(cp->p.profile, "egress"), &cp->o.egress, &ee) < 0) {
      json_t *bad = err_reply("invalid_value", "egress", "%s", ee->msg);
      berth_error_free(ee);
      api_create_prep_free(cp);
      return bad;
    }
  }
  /* devices: the request's, then the GPUs (NVIDIA's CDI names) */
  json_t *gpu = json_object_get(req, "gpu");
  if (json_array_size(json_object_get(req, "devices")) || json_is_true(gpu) || json_array_size(gpu)) {
    cp->o.devices = json_array();
    json_array_extend(cp->o.devices, json_object_get(req, "devices"));
    json_t *g = cdi_gpu_names(gpu);
    json_array_extend(cp->o.devices, g);
    cp->o.gpu = json_array_size(g) > 0;
    json_decref(g);
  }
  return NULL;
}

static void api_create_prep_free(struct create_prep *cp) {
  json_decref(cp->o.command);
  json_decref(cp->o.entrypoint);
  json_decref(cp->o.env_keep);
  json_decref(cp->o.session);
  json_decref(cp->o.egress);
  json_decref(cp->o.devices);
  cp->o.command = cp->o.entrypoint = cp->o.env_keep = cp->o.session = cp->o.egress = cp->o.devices = NULL;
}

json_t *api_run(json_t *request, const struct exec_opts *eo, bool rm, struct exec_result *res, bool *long_way) {
  *long_way = false;
  memset(res, 0, sizeof *res);
  char *t = json_dumps(request, JSON_COMPACT);
  json_t *req = NULL, *reply = NULL;
  if (!t) return err_reply("invalid_request", NULL, "unserializable request");
  int v = api_validate(t, strlen(t), &req, &reply);
  free(t);
  if (v < 0) return reply;
  struct create_prep cp;
  if ((reply = create_prepare(req, &cp))) {
    json_decref(req);
    return reply;
  }
  if (provision_needs_container(&cp.p)) {
    *long_way = true;
  } else {
    cp.o.run = eo;
    cp.o.remove_on_exit = rm;
    json_t *out = NULL;
    berth_error_t e = NULL;
    if (container_run(&cp.o, res, &out, &e) < 0) reply = from_error(e, "Failed to create container: ");
    else {
      reply = json_pack("{s:b, s:O, s:O, s:O, s:i, s:b}", "success", 1, "container", json_object_get(out, "container"), "container_id",
                        json_object_get(out, "container_id"), "image", json_object_get(out, "image"), "exit_code", res->exit_code,
                        "removed", rm);
      if (json_object_get(out, "notes")) json_object_set(reply, "notes", json_object_get(out, "notes"));
      json_decref(out);
    }
  }
  json_decref(cp.names);
  api_create_prep_free(&cp);
  provision_free(&cp.p);
  json_decref(req);
  return reply;
}

static void api_step_progress(const char *name) {
  cleanup_free char *m = xasprintf("provisioning: %s", name);
  api_progress(2, 3, m);
}

static json_t *h_create(json_t *req) {
  struct create_prep cp;
  json_t *bad = create_prepare(req, &cp);
  if (bad) return bad;
  struct prov p = cp.p;
  json_t *names = cp.names;
  struct create_opts o = cp.o;
  berth_error_t e = NULL;
  api_progress(0, 3, "pulling the image and starting the container");
  json_t *res = NULL;
  int cr = container_create(&o, &res, &e);
  api_create_prep_free(&cp);
  if (cr < 0) {
    json_decref(names);
    /* an image the caller did not name (the purpose's or the configured
     * default) that could not be had: say how to choose another */
    if (!jstr(req, "image") && e && e->msg && strstr(e->msg, "pull ")) {
      struct berth_config *cfg = config_get(NULL);
      const char *file = cfg ? (cfg->files[1] ? cfg->files[1] : cfg->files[0]) : NULL;
      static const char pre[] = "Failed to create container: ";
      if (str_has_prefix(e->msg, pre)) memmove(e->msg, e->msg + sizeof pre - 1, strlen(e->msg) - (sizeof pre - 1) + 1);
      berth_error_wrap(&e,
                       "the image `%s` (%s) could not be pulled; pass `image` with one that is present (%s) or "
                       "reachable, or set `default_image`, a purpose's image under `profiles`, or `registry_mirrors` in "
                       "berth's config file%s%s. The registry said",
                       o.image ? o.image : "?", jstr(req, "purpose") ? "the purpose's image" : "the default image",
                       advice("`berth images`", "pulled or loaded before"), file ? " " : "", file ? file : "");
    }
    provision_free(&p);
    return from_error(e, "Failed to create container: ");
  }
  const char *name = json_string_value(json_object_get(res, "container"));
  bool failed = false;
  bool service = !strcmp(jstr(res, "mode") ?: "", "service");
  /* a service is its image's: nothing of the caller's is carried into it
   * but its variables */
  if (service) provision_run_service(&p);
  else {
    api_progress(1, 3, "provisioning");
    provision_on_step = api_step_progress;
    provision_run(&p, name, &failed);
    provision_on_step = NULL;
  }
  if (api_session && !json_is_true(json_object_get(res, "persistent"))) {
    if (!session_made) session_made = json_array();
    json_array_append_new(session_made, json_string(name));
  }
  api_progress(3, 3, "done");
  json_t *reply = json_pack(
      "{s:b, s:O, s:O, s:O, s:s?, s:O, s:O, s:o, s:O, s:O, s:s}", "success", 1, "container", json_object_get(res, "container"),
      "container_id", json_object_get(res, "container_id"), "image", json_object_get(res, "image"), "purpose", jstr(req, "purpose"),
      "connect_command", json_object_get(res, "connect_command"), "workdir", json_object_get(res, "workdir"), "env_vars_injected", names,
      "persistent", json_object_get(res, "persistent"), "provisioning_report", p.report, "status", failed ? "partial" : "ready");
  if (p.lang) json_object_set_new(reply, "detected_language", json_string(p.lang));
  json_object_set(reply, "mode", json_object_get(res, "mode"));
  if (service) {
    json_object_set(reply, "command", json_object_get(res, "command"));
    cleanup_free char *lc = xasprintf("berth logs -f %s", name);
    json_object_set_new(reply, "logs_command", json_string(lc));
  }
  if (json_object_get(res, "expires_at")) json_object_set(reply, "expires_at", json_object_get(res, "expires_at"));
  if (json_object_get(res, "notes")) json_object_set(reply, "notes", json_object_get(res, "notes"));
  if (json_object_get(res, "disk")) json_object_set(reply, "disk", json_object_get(res, "disk"));
  if (json_object_get(res, "egress")) json_object_set(reply, "egress", json_object_get(res, "egress"));
  if (json_object_get(res, "devices")) json_object_set(reply, "devices", json_object_get(res, "devices"));
  json_t *cg = json_object_get(res, "cgroup");
  json_object_set_new(reply, "limits_applied", json_boolean(json_is_true(json_object_get(cg, "limits_applied"))));
  if (json_object_get(cg, "note")) json_object_set(reply, "limits_note", json_object_get(cg, "note"));
  /* one truth for the shell a person opens: hint's */
  cleanup_free char *cc = xasprintf("berth exec -it %s %s", name, container_shell(name));
  json_object_set_new(reply, "connect_command", json_string(cc));
  const char *fstep = NULL;
  size_t k;
  json_t *st;
  json_array_foreach(p.report, k, st) if (!fstep && !strcmp(jstr(st, "status") ?: "", "failed")) fstep = jstr(st, "name");
  if (fstep) json_object_set_new(reply, "failed_step", json_string(fstep));
  if (failed && jbool(req, "remove_on_failure", false)) {
    json_t *out = NULL;
    berth_error_t e3 = NULL;
    container_remove(name, true, &out, &e3);
    berth_error_free(e3);
    json_decref(out);
    json_object_set_new(reply, "success", json_false());
    json_object_set_new(reply, "removed", json_true());
    cleanup_free char *em = xasprintf("Failed to create container: provisioning step %s failed; the container was removed "
                                      "(remove_on_failure)",
                                      fstep ? fstep : "?");
    json_object_set_new(reply, "error", json_string_safe(em));
    json_object_set_new(reply, "code", json_string("failed"));
  }
  json_decref(res);
  provision_free(&p);
  return reply;
}

/* apt, dpkg, chown or a setuid-family call refused for want of privilege */
static bool exec_looks_unprivileged(const struct exec_result *r) {
  static const char *signs[] = {"setgroups",
                                "seteuid",
                                "setegid",
                                "setresuid",
                                "chown",
                                "chmod",
                                "Operation not permitted",
                                "are you root?",
                                "Could not open lock file",
                                "unable to acquire the dpkg frontend lock",
                                "requested operation requires superuser privilege",
                                NULL};
  for (int i = 0; signs[i]; i++)
    if ((r->err.data && memmem(r->err.data, r->err.len, signs[i], strlen(signs[i]))) ||
        (r->out.data && memmem(r->out.data, r->out.len, signs[i], strlen(signs[i]))))
      return true;
  return false;
}

static json_t *h_exec(json_t *req) {
  char *argv[] = {"/bin/sh", "-c", (char *)jstr(req, "command"), NULL};
  json_t *to = json_object_get(req, "timeout");
  bool caps = jbool(req, "setup_capabilities", false);
  struct exec_opts eo = {.name = jstr(req, "container"),
                         .argv = argv,
                         .capture = true,
                         .capture_max = 4 << 20,
                         .timeout = json_is_integer(to) ? (int)json_integer_value(to) : 300,
                         .workdir = jstr(req, "workdir"),
                         .user = jstr(req, "user"),
                         .env = json_object_get(req, "env"),
                         .keep_caps = caps ? security_setup_caps() : 0};
  struct exec_result r;
  berth_error_t e = NULL;
  if (container_exec(&eo, &r, &e) < 0) {
    /* a container that has exited: the documented code */
    if (e && e->status == ESRCH) {
      json_t *o = err_reply("not_running", NULL, "%s", e->msg);
      berth_error_free(e);
      return o;
    }
    return from_error(e, NULL);
  }
  json_t *o = json_pack("{s:i, s:s%, s:s%, s:b}", "returncode", r.exit_code, "stdout", r.out.data ? r.out.data : "", r.out.len, "stderr",
                        r.err.data ? r.err.data : "", r.err.len, "timed_out", r.timed_out);
  if (!o) /* not UTF-8: hand back what is valid, say so */
    o = json_pack("{s:i, s:s, s:s, s:b, s:s}", "returncode", r.exit_code, "stdout", "", "stderr", "", "timed_out", r.timed_out, "note",
                  "output was not valid UTF-8 and was dropped; redirect it to a file and use copy_out");
  if (r.out_truncated || r.err_truncated) json_object_set_new(o, "truncated", json_true());
  if (!caps && r.exit_code != 0 && !r.timed_out && exec_looks_unprivileged(&r))
    json_object_set_new(o, "hint",
                        json_string("the command failed as one that needs privileges (a package manager, chown, "
                                    "setuid): exec runs with no capabilities; pass setup_capabilities=true to run "
                                    "it with the setup set (as setup_commands do)"));
  buf_free(&r.out);
  buf_free(&r.err);
  return o;
}

/* the first of bash, zsh, sh the running container has (sh when it is not running) */
static const char *container_shell(const char *name) {
  json_t *st = NULL;
  berth_error_t e = NULL;
  if (container_status(name, false, &st, &e) < 0) {
    berth_error_free(e);
    return "/bin/sh";
  }
  json_int_t pid =
      json_is_true(json_object_get(st, "running")) ? json_integer_value(json_object_get(json_object_get(st, "metadata"), "pid")) : 0;
  json_decref(st);
  static const char *shells[] = {"/bin/bash", "/bin/zsh", "/bin/sh"};
  char rootp[64];
  snprintf(rootp, sizeof rootp, "/proc/%lld/root", (long long)pid);
  cleanup_close int rfd = pid > 0 ? open(rootp, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
  for (int i = 0; i < 3 && rfd >= 0; i++) {
    int fd = openat_in_root(rfd, shells[i] + 1, O_PATH, 0, 0);
    if (fd >= 0) {
      close(fd);
      return shells[i];
    }
  }
  return "/bin/sh";
}

static json_t *h_hint(json_t *req) {
  const char *name = jstr(req, "container");
  json_t *st = NULL;
  berth_error_t e = NULL;
  if (container_status(name, false, &st, &e) < 0) return from_error(e, NULL);
  bool running = json_is_true(json_object_get(st, "running"));
  json_decref(st);
  if (!running) return err_reply("not_running", "container", "container %s is not running; start it again with the start operation", name);
  const char *shell = container_shell(name);
  cleanup_free char *cmd = xasprintf("berth exec -it %s %s", name, shell);
  return json_pack("{s:s, s:s, s:s}", "command", cmd, "shell", shell, "container", name);
}

static json_t *h_list(json_t *req) {
  (void)req;
  json_t *out = NULL;
  berth_error_t e = NULL;
  if (container_list(&out, &e) < 0) return from_error(e, NULL);
  return out;
}

static json_t *h_status(json_t *req) {
  json_t *out = NULL;
  berth_error_t e = NULL;
  if (container_status(jstr(req, "container"), jbool(req, "health_check", false), &out, &e) < 0) return from_error(e, NULL);
  return out;
}

static json_t *h_destroy(json_t *req) {
  json_t *out = NULL;
  berth_error_t e = NULL;
  if (container_remove(jstr(req, "container"), jbool(req, "force", false), &out, &e) < 0) return from_error(e, NULL);
  return out;
}

static json_t *h_destroy_all(json_t *req) {
  if (!jbool(req, "confirm", false)) return err_reply("confirm_required", "confirm", "Set confirm=true to destroy all managed containers");
  json_t *list = NULL;
  berth_error_t e = NULL;
  if (container_list(&list, &e) < 0) return from_error(e, NULL);
  json_t *results = json_array();
  size_t i, n = 0;
  json_t *c;
  json_array_foreach(json_object_get(list, "containers"), i, c) {
    const char *name = json_string_value(json_object_get(c, "name"));
    json_t *out = NULL;
    berth_error_t e2 = NULL;
    if (container_remove(name, jbool(req, "force", false), &out, &e2) < 0) {
      json_array_append_new(results, json_pack("{s:b, s:s, s:s}", "success", 0, "container", name, "detail", e2->msg));
      berth_error_free(e2);
    } else {
      json_array_append_new(results, out);
      n++;
    }
  }
  json_decref(list);
  return json_pack("{s:I, s:o}", "destroyed", (json_int_t)n, "results", results);
}

static json_t *h_copy_in(json_t *req) {
  berth_error_t e = NULL;
  if (container_copy(jstr(req, "container"), jstr(req, "host_path"), jstr(req, "container_path"), true, 0, &e) < 0)
    return from_error(e, NULL);
  return json_pack("{s:b, s:s}", "success", 1, "detail", "copied into the container");
}

static json_t *h_copy_out(json_t *req) {
  berth_error_t e = NULL;
  unsigned flags = (jbool(req, "follow_symlinks", false) ? COPY_FOLLOW_LINKS : 0) | (jbool(req, "keep_setid", false) ? COPY_KEEP_SETID : 0);
  if (container_copy(jstr(req, "container"), jstr(req, "host_path"), jstr(req, "container_path"), false, flags, &e) < 0)
    return from_error(e, NULL);
  return json_pack("{s:b, s:s}", "success", 1, "detail", "copied out of the container");
}

static json_t *h_snapshot(json_t *req) {
  const char *c = jstr(req, "container");
  json_t *st = NULL;
  berth_error_t e = NULL;
  if (container_status(c, false, &st, &e) < 0) return from_error(e, NULL);
  json_decref(st);
  cleanup_free char *name = NULL;
  if (jstr(req, "name")) name = strdup(jstr(req, "name"));
  else {
    cleanup_free char *h = random_hex(3);
    name = xasprintf("%s-%s", c, h);
    for (char *p = name; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
  }
  char *res = NULL;
  if (berth_snapshot(c, name, &res, &e) < 0) return from_error(e, "Failed to snapshot: ");
  json_t *o = json_loads(res, 0, NULL);
  free(res);
  return o;
}

static json_t *h_restore(json_t *req) {
  cleanup_free char *ref = berth_snapshot_ref(jstr(req, "snapshot"));
  json_t *c = json_pack("{s:s, s:s, s:b}", "operation", "create", "image", ref, "mount_cwd", 0);
  if (jstr(req, "name")) json_object_set_new(c, "name", json_string(jstr(req, "name")));
  /* check it exists first: a missing snapshot must not become a pull attempt */
  struct store s;
  berth_error_t e = NULL;
  json_t *rec = NULL, *cfg = NULL;
  if (store_open(&s, false, &e) < 0) {
    json_decref(c);
    return from_error(e, NULL);
  }
  int r = store_lookup(&s, ref, &rec, &cfg, &e);
  store_close(&s);
  json_decref(rec);
  json_decref(cfg);
  if (r < 0) {
    berth_error_free(e);
    json_decref(c);
    return err_reply("not_found", "snapshot", "Snapshot not found: %s", jstr(req, "snapshot"));
  }
  json_t *reply = api_call_json(c);
  json_decref(c);
  if (!json_object_get(reply, "error")) json_object_set_new(reply, "snapshot", json_string(jstr(req, "snapshot")));
  return reply;
}

static json_t *h_delete_snapshot(json_t *req) {
  cleanup_free char *ref = berth_snapshot_ref(jstr(req, "snapshot"));
  char *res = NULL;
  berth_error_t e = NULL;
  if (berth_image_remove(ref, &res, &e) < 0) {
    berth_error_free(e);
    return err_reply("not_found", "snapshot", "Snapshot not found: %s", jstr(req, "snapshot"));
  }
  free(res);
  return json_pack("{s:b, s:s, s:s}", "success", 1, "snapshot", jstr(req, "snapshot"), "detail", "snapshot deleted");
}

/* ---------- lifecycle: logs, stop, start, restart ---------- */
#include "runtime/logs.h"

static json_t *h_logs(json_t *req) {
  const char *name = jstr(req, "container");
  json_t *st = container_state(name);
  if (!st) return err_reply("not_found", "container", "Container not found: %s", name);
  bool service = !strcmp(jstr(st, "mode") ?: "", "service");
  json_decref(st);
  struct log_query q = {.tail = json_object_get(req, "tail") ? json_integer_value(json_object_get(req, "tail")) : -1,
                        .timestamps = jbool(req, "timestamps", false)};
  if (q.tail < -1) return err_reply("invalid_value", "tail", "`tail` is a number of lines, 0 or more");
  berth_error_t e = NULL;
  if (jstr(req, "since") && log_parse_time(jstr(req, "since"), &q.since, &e) < 0) {
    json_t *o = err_reply("invalid_value", "since", "%s", e->msg);
    berth_error_free(e);
    return o;
  }
  cleanup_free char *cdir = container_dir(name);
  struct buf b = {0};
  bool trunc = false;
  if (log_read_text(cdir, &q, 1 << 20, &b, &trunc, &e) < 0) return from_error(e, NULL);
  json_t *o = json_pack("{s:s, s:s%}", "container", name, "logs", b.data ? b.data : "", b.len);
  if (!o)
    o = json_pack("{s:s, s:s, s:s}", "container", name, "logs", "", "note",
                  "the log is not valid UTF-8; read it with `berth logs` on the host");
  if (trunc) json_object_set_new(o, "truncated", json_true());
  if (!service)
    json_object_set_new(o, "note",
                        json_string("a dev container has no main process whose output is kept: exec returns "
                                    "each command's output"));
  buf_free(&b);
  return o;
}

static int req_timeout(json_t *req) {
  json_t *t = json_object_get(req, "timeout");
  return json_is_integer(t) && json_integer_value(t) >= 0 ? (int)json_integer_value(t) : -1;
}

static json_t *h_stop(json_t *req) {
  json_t *out = NULL;
  berth_error_t e = NULL;
  return container_stop(jstr(req, "container"), req_timeout(req), &out, &e) < 0 ? from_error(e, NULL) : out;
}

static json_t *h_start(json_t *req) {
  json_t *out = NULL;
  berth_error_t e = NULL;
  return container_start(jstr(req, "container"), &out, &e) < 0 ? from_error(e, NULL) : out;
}

static json_t *h_restart(json_t *req) {
  json_t *out = NULL;
  berth_error_t e = NULL;
  return container_restart(jstr(req, "container"), req_timeout(req), &out, &e) < 0 ? from_error(e, NULL) : out;
}
