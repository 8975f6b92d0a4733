/* inspect, stats and top: readers of a container's record, counters and
 * processes (inspect.h). */
#define _GNU_SOURCE
#include "runtime/inspect.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/container.h"
#include "runtime/container_internal.h"
#include "runtime/disk.h"
#include "image/store.h"

/* ---------- inspect ---------- */

/* the parts of an image's config people ask about, under docker's names */
static json_t *image_config_summary(json_t *cfg) {
  static const char *const keys[] = {"Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "StopSignal", "Labels"};
  json_t *c = json_object_get(cfg, "config"), *o = json_object();
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) json_object_set(o, keys[i], json_object_get(c, keys[i]) ?: json_null());
  return o;
}

/* an image record and its parsed config, by manifest digest */
static int image_load(struct store *s, const char *digest, json_t **rec, json_t **cfg, berth_error_t *err) {
  json_t *r = store_read_image(s, digest, err);
  if (!r) return -1;
  cleanup_free char *body = NULL;
  size_t len = 0;
  const char *cd = jstr(r, "config");
  json_t *c = cd && store_get_blob(s, cd, 8 << 20, &body, &len, err) == 0 ? json_loadb(body, len, 0, NULL) : NULL;
  if (!c) {
    json_decref(r);
    return err && *err ? -1 : berth_error(err, -EINVAL, "image %s: its config is not JSON", digest);
  }
  *rec = r;
  *cfg = c;
  return 0;
}

/* the manifest digest of a digest or a unique prefix of its hex (4 or more
 * digits) among the store's images; NULL with *err set */
static char *image_by_prefix(struct store *s, const char *ref, berth_error_t *err) {
  const char *hex = str_has_prefix(ref, "sha256:") ? ref + 7 : ref;
  size_t n = strlen(hex);
  if (n < 4 || n > 64 || strspn(hex, "0123456789abcdef") != n) {
    berth_error(err, -ENOENT, "No such image: %s", ref);
    return NULL;
  }
  cleanup_free char *dir = store_path(s, "images");
  DIR *d = dir ? opendir(dir) : NULL;
  char *found = NULL;
  int matches = 0;
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (strlen(de->d_name) != 64 + 5 || !str_has_suffix(de->d_name, ".json") || strncmp(de->d_name, hex, n)) continue;
    if (!matches++) found = xasprintf("sha256:%.64s", de->d_name);
  }
  if (d) closedir(d);
  if (matches == 1) return found;
  free(found);
  if (matches > 1) berth_error(err, -EINVAL, "`%s` is the start of %d image digests: give more of it", ref, matches);
  else berth_error(err, -ENOENT, "No such image: %s", ref);
  return NULL;
}

/* every name in refs.json that points at digest */
static json_t *image_names(struct store *s, const char *digest) {
  json_t *names = json_array(), *v;
  json_t *refs = store_refs(s, NULL);
  const char *k;
  json_object_foreach(refs, k, v) if (!strcmp(json_string_value(v) ?: "", digest)) json_array_append_new(names, json_string(k));
  json_decref(refs);
  return names;
}

static json_t *image_json(struct store *s, json_t *rec, json_t *cfg) {
  json_t *o = json_pack("{s:s, s:o}", "type", "image", "names", image_names(s, jstr(rec, "digest") ?: ""));
  json_object_update(o, rec);
  json_object_del(o, "name"); /* store_lookup's key: the names are above */
  /* "config" is the config's digest in the record, the config itself here */
  json_object_set(o, "config_digest", json_object_get(rec, "config") ?: json_null());
  int64_t size = 0;
  size_t i;
  json_t *l;
  json_array_foreach(json_object_get(rec, "layers"), i, l) size += json_integer_value(json_object_get(l, "size"));
  json_object_set_new(o, "size", json_integer(size));
  json_object_set(o, "image_created", json_object_get(cfg, "created") ?: json_null());
  json_object_set(o, "architecture", json_object_get(cfg, "architecture") ?: json_null());
  json_object_set(o, "os", json_object_get(cfg, "os") ?: json_null());
  if (json_object_get(cfg, "author")) json_object_set(o, "author", json_object_get(cfg, "author"));
  json_object_set_new(o, "config", image_config_summary(cfg));
  return o;
}

int image_inspect(const char *ref, json_t **out, berth_error_t *err) {
  struct store s;
  if (store_open(&s, false, err) < 0) return -1;
  json_t *rec = NULL, *cfg = NULL;
  berth_error_t e = NULL;
  int r = store_lookup(&s, ref, &rec, &cfg, &e);
  if (r < 0) {
    /* not a name in the store (or no name at all): a digest, or its start */
    berth_error_free(e);
    cleanup_free char *digest = image_by_prefix(&s, ref, err);
    r = digest ? image_load(&s, digest, &rec, &cfg, err) : -1;
  }
  if (r == 0) *out = image_json(&s, rec, cfg);
  json_decref(rec);
  json_decref(cfg);
  store_close(&s);
  return r;
}

/* config.json's parts, the caller's environment by name only: the values
 * of -e variables never reach the spec, but a name the caller set may also
 * be the image's (PATH), so those entries are left out too */
static json_t *spec_summary(json_t *spec) {
  json_t *ann = json_object_get(spec, "annotations"), *proc = json_object_get(spec, "process");
  json_t *names = json_loads(jstr(ann, "berth.env_names") ?: "[]", 0, NULL);
  if (!json_is_array(names)) {
    json_decref(names);
    names = json_array();
  }
  json_t *env = json_array(), *v, *n;
  size_t i, k;
  json_array_foreach(json_object_get(proc, "env"), i, v) {
    const char *kv = json_string_value(v);
    if (!kv) continue;
    size_t kl = strcspn(kv, "=");
    bool caller = false;
    json_array_foreach(names, k, n) {
      const char *nm = json_string_value(n);
      caller = caller || (nm && strlen(nm) == kl && !strncmp(nm, kv, kl));
    }
    if (!caller) json_array_append(env, v);
  }
  json_t *ns = json_array();
  json_array_foreach(json_object_get(json_object_get(spec, "linux"), "namespaces"), i, v) json_array_append(ns, json_object_get(v, "type"));
  json_t *linux = json_object_get(spec, "linux");
  return json_pack("{s:O?, s:s?, s:O?, s:o, s:o, s:O?, s:o, s:O?, s:s?, s:s}", "hostname", json_object_get(spec, "hostname"), "user",
                   jstr(ann, "berth.user"), "workdir", json_object_get(proc, "cwd"), "env", env, "env_names", names, "mounts",
                   json_object_get(spec, "mounts"), "namespaces", ns, "resources", json_object_get(linux, "resources"), "rootfs",
                   jstr(ann, "berth.rootfs"), "seccomp", jstr(ann, "berth.seccomp") ? "own profile" : "berth's");
}

int container_inspect(const char *name, json_t **out, berth_error_t *err) {
  json_t *st = container_state(name);
  if (!st) return berth_error(err, -ENOENT, "No such container: %.80s%s", name, advice(" (see `berth ls`)", " (see the list operation)"));
  cleanup_free char *dir = container_dir(name);
  const char *status = container_live_status(st);
  bool running = !strcmp(status, "running");
  json_t *o = json_pack("{s:s, s:s, s:O?, s:s, s:b, s:O?, s:s?}", "type", "container", "name", name, "id", json_object_get(st, "id"),
                        "status", status, "running", running, "created", json_object_get(st, "created"), "dir", dir);
  json_object_set(o, "pid", running ? json_object_get(json_object_get(st, "init"), "pid") : json_null());
  /* what the lifecycle records, where this container has it */
  static const char *const lift[] = {"started_at", "finished_at",   "exit_code",  "oom_killed", "stopped",  "mode", "command",
                                     "restart",    "restart_count", "persistent", "purpose",    "one_shot", "notes"};
  for (size_t i = 0; i < sizeof lift / sizeof *lift; i++)
    if (json_object_get(st, lift[i])) json_object_set(o, lift[i], json_object_get(st, lift[i]));

  cleanup_free char *sp = dir ? xasprintf("%s/config.json", dir) : NULL;
  json_t *spec = sp ? json_load_file(sp, 0, NULL) : NULL;
  json_object_set_new(o, "config", spec ? spec_summary(spec) : json_null());
  json_decref(spec);

  const char *net = jstr(st, "network");
  json_object_set_new(o, "network",
                      json_pack("{s:s?, s:O?, s:O, s:b}", "name", net, "ip", json_object_get(st, "ip"), "ports",
                                json_object_get(st, "ports") ?: json_array(), "isolated", strcmp(net ?: "", "host") != 0));
  json_t *lim = json_deep_copy(json_object_get(st, "limits")) ?: json_object(), *cg = json_object_get(st, "cgroup");
  json_object_set(lim, "applied", json_object_get(cg, "limits_applied") ?: json_false());
  if (json_object_get(cg, "note")) json_object_set(lim, "note", json_object_get(cg, "note"));
  json_object_set_new(o, "limits", lim);
  json_object_set(o, "cgroup", cg ?: json_null());
  json_t *dk = json_object_get(st, "disk");
  if (dk) { /* the writable layer's limit, and its use when enforced */
    json_t *d = json_deep_copy(dk);
    json_t *u =
        json_is_true(json_object_get(dk, "enforced")) && dir ? disk_usage(dir, json_integer_value(json_object_get(dk, "limit"))) : NULL;
    if (u) json_object_update(d, u);
    json_decref(u);
    json_object_set_new(o, "disk", d);
  } else json_object_set_new(o, "disk", json_null());

  /* the image as the store has it now: by the digest the container was
   * made from (a name may point elsewhere since) */
  json_t *img =
      json_pack("{s:O?, s:O?, s:n}", "name", json_object_get(st, "image"), "digest", json_object_get(st, "image_digest"), "config");
  struct store s;
  berth_error_t e = NULL;
  json_t *rec = NULL, *cfg = NULL;
  const char *dg = jstr(st, "image_digest");
  if (dg && store_open(&s, false, &e) == 0) {
    if (image_load(&s, dg, &rec, &cfg, &e) == 0) json_object_set_new(img, "config", image_config_summary(cfg));
    else json_object_set_new(img, "note", json_string("the image is no longer in the store (removed with rmi)"));
    store_close(&s);
  }
  berth_error_free(e);
  json_decref(rec);
  json_decref(cfg);
  json_object_set_new(o, "image", img);
  json_object_set(o, "state", st); /* the record as written, for what is not above */
  json_decref(st);
  *out = o;
  return 0;
}

/* ---------- stats ---------- */

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int proc_net_dev_parse(const char *text, int64_t *rx, int64_t *tx) {
  *rx = *tx = 0;
  int n = 0;
  for (const char *l = text; l && *l;) {
    const char *e = strchrnul(l, '\n');
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)(e - l), l); /* one line: sscanf must not run on into the next */
    l = *e ? e + 1 : e;
    char *c = strchr(line, ':'); /* the two header lines have none */
    if (!c) continue;
    *c = '\0';
    const char *ifname = line + strspn(line, " ");
    unsigned long long r, t;
    if (!strcmp(ifname, "lo") || sscanf(c + 1, "%llu %*u %*u %*u %*u %*u %*u %*u %llu", &r, &t) != 2) continue;
    *rx += (int64_t)r;
    *tx += (int64_t)t;
    n++;
  }
  return n;
}

void container_sample(json_t *st, struct ctr_sample *s) {
  cgroup_stats(json_object_get(st, "cgroup"), &s->cg);
  s->at = mono_now();
  s->net_rx = s->net_tx = -1;
  /* init's view of /proc/net is its network namespace's; with the host's
   * network those would be the host's counters */
  int pid = state_proc(st, "init").pid;
  if (pid <= 0 || !strcmp(jstr(st, "network") ?: "", "host")) return;
  char p[64], buf[8192];
  snprintf(p, sizeof p, "/proc/%d/net/dev", pid);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  size_t n = 0;
  ssize_t r;
  while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
  close(fd);
  buf[n] = '\0';
  int64_t rx, tx;
  if (proc_net_dev_parse(buf, &rx, &tx) >= 0) {
    s->net_rx = rx;
    s->net_tx = tx;
  }
}

/* ---------- top ---------- */

long proc_status_nspid(const char *status) {
  const char *l = strstr(status, "\nNSpid:");
  if (!l) return -1;
  l += 7;
  long v = -1;
  while (*l && *l != '\n') {
    char *end;
    long x = strtol(l, &end, 10);
    if (end == l) break;
    v = x;
    l = end;
  }
  return v;
}

char *passwd_name(const char *text, long uid) {
  for (const char *l = text; l && *l;) {
    const char *e = strchrnul(l, '\n');
    const char *c1 = memchr(l, ':', (size_t)(e - l));
    const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(e - c1 - 1)) : NULL;
    if (c2 && c1 > l) {
      char *end;
      long u = strtol(c2 + 1, &end, 10);
      if (end > c2 + 1 && *end == ':' && u == uid) {
        size_t n = (size_t)(c1 - l);
        for (size_t i = 0; i < n; i++)
          if (!isalnum((unsigned char)l[i]) && !strchr("._-", l[i])) return NULL;
        return strndup(l, n);
      }
    }
    l = *e ? e + 1 : e;
  }
  return NULL;
}

/* the container's /etc/passwd, resolved inside its root (a link there
 * must not lead to a host file), a regular file of at most 1 MiB */
static char *container_passwd(int init_pid) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/root", init_pid);
  cleanup_close int root = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
  cleanup_close int fd = root >= 0 ? openat_in_root(root, "/etc/passwd", O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, 0) : -1;
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > (1 << 20)) return NULL;
  char *buf = malloc((size_t)sb.st_size + 1);
  size_t n = 0;
  ssize_t r;
  while (buf && n < (size_t)sb.st_size && (r = read(fd, buf + n, (size_t)sb.st_size - n)) > 0) n += (size_t)r;
  if (buf) buf[n] = '\0';
  return buf;
}

/* host uid -> the container's, through init's uid_map as the host reads it */
static long uid_inside(const char *map, long host) {
  for (const char *l = map; l && *l;) {
    long in, out, cnt;
    if (sscanf(l, "%ld %ld %ld", &in, &out, &cnt) == 3 && host >= out && host - out < cnt) return in + (host - out);
    l = strchr(l, '\n');
    if (l) l++;
  }
  return -1;
}

static char *proc_read(int pid, const char *file, size_t max) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/%s", pid, file);
  char *s = NULL;
  size_t len = 0;
  if (read_file(p, max, &s, &len, NULL) < 0) return NULL;
  return s;
}

/* one process's row, or NULL when it went meanwhile */
static json_t *top_row(int pid, const char *map, const char *passwd, long ticks) {
  cleanup_free char *status = proc_read(pid, "status", 1 << 16);
  cleanup_free char *stat = proc_read(pid, "stat", 8192);
  if (!status || !stat) return NULL;
  long host_uid = -1;
  const char *u = strstr(status, "\nUid:");
  if (u) sscanf(u + 5, "%*d %ld", &host_uid); /* effective, as ps shows */
  long uid = host_uid >= 0 ? uid_inside(map, host_uid) : -1;
  cleanup_free char *uname = uid >= 0 && passwd ? passwd_name(passwd, uid) : NULL;
  char ubuf[32];
  snprintf(ubuf, sizeof ubuf, "%ld", uid);
  unsigned long ut = 0, stt = 0;
  char *e = strrchr(stat, ')');
  if (e) sscanf(e + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt);
  unsigned long secs = (ut + stt) / (unsigned long)(ticks > 0 ? ticks : 100);
  char tbuf[32];
  if (secs >= 86400) snprintf(tbuf, sizeof tbuf, "%lu-%02lu:%02lu:%02lu", secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
  else snprintf(tbuf, sizeof tbuf, "%02lu:%02lu:%02lu", secs / 3600, secs / 60 % 60, secs % 60);
  /* the command line, arguments joined by spaces; control characters (a
   * terminal's escapes) become '?' */
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
  char cmd[4096];
  size_t n = 0;
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t r;
    while (n < sizeof cmd - 1 && (r = read(fd, cmd + n, sizeof cmd - 1 - n)) > 0) n += (size_t)r;
    close(fd);
  }
  while (n && cmd[n - 1] == '\0') n--;
  cmd[n] = '\0';
  for (size_t i = 0; i < n; i++) {
    if (cmd[i] == '\0') cmd[i] = ' ';
    else if ((unsigned char)cmd[i] < 0x20 || cmd[i] == 0x7f) cmd[i] = '?';
  }
  if (!n) { /* a kernel-made or exiting process: its name, as ps shows it */
    const char *nm = strstr(status, "Name:\t");
    snprintf(cmd, sizeof cmd, "[%.*s]", nm ? (int)strcspn(nm + 6, "\n") : 1, nm ? nm + 6 : "?");
  }
  return json_pack("{s:i, s:I, s:I, s:o, s:s, s:o}", "pid", pid, "container_pid", (json_int_t)proc_status_nspid(status), "uid",
                   (json_int_t)uid, "user",
                   json_string_safe(uname      ? uname
                                    : uid >= 0 ? ubuf
                                               : "?"),
                   "time", tbuf, "cmd", json_string_safe(cmd));
}

int container_top(const char *name, json_t **out, berth_error_t *err) {
  json_t *st = container_state(name);
  if (!st) return berth_error(err, -ENOENT, "No such container: %.80s%s", name, advice(" (see `berth ls`)", " (see the list operation)"));
  bool running = state_live(st) == STATUS_RUNNING;
  int init = state_proc(st, "init").pid;
  json_decref(st);
  if (!running) return berth_error(err, -EINVAL, "Container %s is not running: it has no processes to list", name);
  char p[64], want[64], got[64];
  snprintf(p, sizeof p, "/proc/%d/ns/pid", init);
  ssize_t wl = readlink(p, want, sizeof want - 1);
  if (wl < 0) return berth_error(err, errno, "read the pid namespace of container %s (its init, pid %d)", name, init);
  want[wl] = '\0';
  cleanup_free char *map = proc_read(init, "uid_map", 1 << 16);
  cleanup_free char *passwd = container_passwd(init);
  long ticks = sysconf(_SC_CLK_TCK);
  /* every process in init's pid namespace: what the container runs, exec'd
   * commands included (the kernel lists /proc in pid order) */
  DIR *d = opendir("/proc");
  if (!d) return berth_error(err, errno, "open /proc");
  json_t *rows = json_array();
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!isdigit((unsigned char)de->d_name[0])) continue;
    int pid = atoi(de->d_name);
    snprintf(p, sizeof p, "/proc/%d/ns/pid", pid);
    ssize_t gl = readlink(p, got, sizeof got - 1);
    if (gl != wl || memcmp(got, want, (size_t)wl)) continue;
    json_t *row = top_row(pid, map, passwd, ticks);
    if (row) json_array_append_new(rows, row);
  }
  closedir(d);
  *out = json_pack("{s:s, s:o}", "container", name, "processes", rows);
  return 0;
}
