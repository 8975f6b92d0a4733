/* berth-oci: runc's command line over the bundle runtime (runtime/oci.c),
 * for podman (--runtime), containerd (the runc shim's BinaryName), CRI-O
 * and Kubernetes RuntimeClass. `berth-oci` is a link to berth; main()
 * sends here when argv[0] says so (or for `berth oci ...`).
 *
 * Options are taken as runc's CLI library takes them: `--flag value`,
 * `--flag=value`, `-flag value`, before or after the container ID. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cgroup.h"
#include "cli/cli.h"
#include "runtime/oci.h"

static FILE *log_file;
static bool log_json;

static void log_line(int level, const char *msg) {
  if (!log_file) return;
  static const char *names[] = {"error", "warning", "info", "debug"};
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char t[64];
  strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (log_json) {
    json_t *o = json_pack("{s:s, s:s, s:s}", "level", names[level], "msg", msg, "time", t);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s) fprintf(log_file, "%s\n", s);
    free(s);
    json_decref(o);
  } else fprintf(log_file, "time=\"%s\" level=%s msg=\"%s\"\n", t, names[level], msg);
  fflush(log_file);
}

static int fail(berth_error_t err) {
  const char *m = err && err->msg ? err->msg : "failed";
  log_line(BERTH_LOG_ERROR, m);
  fprintf(stderr, "berth-oci: %s\n", m);
  berth_error_clear(&err);
  return 1;
}

static int usage(const char *fmt, const char *arg) {
  char m[512];
  snprintf(m, sizeof m, fmt, arg ? arg : "");
  log_line(BERTH_LOG_ERROR, m);
  fprintf(stderr, "berth-oci: %s (see berth-oci --help)\n", m);
  return 1;
}

static const char HELP[] =
    "berth-oci: an OCI runtime with runc's command line (podman --runtime, containerd BinaryName, CRI-O)\n\n"
    "usage: berth-oci [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup] [--rootless true|false|auto]\n"
    "                 COMMAND [OPTIONS] ID ...\n\n"
    "commands:\n"
    "  create --bundle DIR [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID\n"
    "  start ID              run the created container's process\n"
    "  run [create's options] [--detach] [--keep] ID\n"
    "  state ID              the runtime spec's state JSON\n"
    "  kill [--all] ID [SIGNAL]\n"
    "  delete [--force] ID\n"
    "  exec [--process FILE | --tty --cwd D --env K=V --user U[:G] --cap C ... ID CMD ARG...] [--detach] [--pid-file F]\n"
    "       [--console-socket S] ID\n"
    "  ps [--format table|json] ID\n"
    "  list [--format table|json] [--quiet]\n"
    "  pause ID | resume ID   (the cgroup freezer)\n"
    "  update [--resources FILE|-] [--memory N] [--memory-swap N] [--pids-limit N] [--cpu-quota N] [--cpu-period N]\n"
    "         [--cpu-shares N] [--cpuset-cpus L] [--cpuset-mems L] ID\n"
    "  features              what this runtime supports (JSON)\n"
    "  spec [--bundle DIR] [--rootless]   write a default config.json\n\n"
    "See docs/oci-runtime.md.\n";

/* ---------- option parsing ---------- */
struct opt {
  const char *name, *alt; /* long name, one-letter alias (or NULL) */
  bool arg;
  const char **val; /* the value (arg) */
  bool *flag; /* or set (no arg) */
  json_t *multi; /* or appended (repeatable arg) */
};

/* options anywhere; the rest (positional) in pos; "--" ends options.
 * stop_at_cmd: after the first positional (exec's ID), the rest is the command */
static int parse(int argc, char **argv, struct opt *opts, char **pos, int *npos, int maxpos, bool stop_after_first) {
  *npos = 0;
  bool rest = false;
  for (int i = 1; i < argc; i++) {
    char *a = argv[i];
    if (rest || a[0] != '-' || !a[1]) {
      if (*npos >= maxpos) return usage("unexpected argument `%s`", a);
      pos[(*npos)++] = a;
      if (stop_after_first && *npos == 1) rest = true;
      continue;
    }
    if (!strcmp(a, "--")) {
      rest = true;
      continue;
    }
    const char *n = a + 1 + (a[1] == '-');
    const char *eq = strchr(n, '=');
    size_t nl = eq ? (size_t)(eq - n) : strlen(n);
    struct opt *o = NULL;
    for (struct opt *p = opts; p && p->name; p++)
      if ((strlen(p->name) == nl && !strncmp(p->name, n, nl)) || (p->alt && strlen(p->alt) == nl && !strncmp(p->alt, n, nl))) o = p;
    if (!o) return usage("unknown option `%s`", a);
    if (o->arg) {
      const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
      if (!v) return usage("option `%s` needs a value", a);
      if (o->multi) json_array_append_new(o->multi, json_string(v));
      else *o->val = v;
    } else if (eq) {
      *o->flag = !strcmp(eq + 1, "true") || !strcmp(eq + 1, "1");
    } else *o->flag = true;
  }
  return 0;
}

static bool want_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--")) return false;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
  }
  return false;
}

static int need_id(int npos, char **pos, const char *cmd) {
  (void)pos;
  if (npos < 1) return usage("%s: give the container ID", cmd);
  return 0;
}

static int print_json(json_t *j) {
  char *s = json_dumps(j, JSON_INDENT(2));
  if (s) puts(s);
  free(s);
  json_decref(j);
  return 0;
}

/* ---------- commands ---------- */
static int ocmd_create_run(struct oci_global *g, int argc, char **argv, bool run) {
  const char *bundle = NULL, *pidf = NULL, *cs = NULL, *pres = NULL;
  bool nopivot = false, nokey = false, detach = false, keep = false, nosub = false;
  struct opt opts[] = {{"bundle", "b", true, &bundle, NULL, NULL},          {"pid-file", NULL, true, &pidf, NULL, NULL},
                       {"console-socket", NULL, true, &cs, NULL, NULL},     {"no-pivot", NULL, false, NULL, &nopivot, NULL},
                       {"no-new-keyring", NULL, false, NULL, &nokey, NULL}, {"preserve-fds", NULL, true, &pres, NULL, NULL},
                       {"detach", "d", false, NULL, &detach, NULL},         {"keep", NULL, false, NULL, &keep, NULL},
                       {"no-subreaper", NULL, false, NULL, &nosub, NULL},   {NULL, NULL, false, NULL, NULL, NULL}};
  char *pos[2];
  int npos;
  if (parse(argc, argv, opts, pos, &npos, 1, false) < 0 || need_id(npos, pos, argv[0]) < 0) return 1;
  if (!run && (detach || keep)) return usage("create: %s is an option of run", detach ? "--detach" : "--keep");
  struct oci_create_opts o = {.id = pos[0],
                              .bundle = bundle,
                              .pid_file = pidf,
                              .console_socket = cs,
                              .no_pivot = nopivot,
                              .no_new_keyring = nokey,
                              .preserve_fds = pres ? atoi(pres) : 0,
                              .detach = detach,
                              .keep = keep};
  if (o.preserve_fds < 0) return usage("--preserve-fds `%s`: a number of fds after 0-2", pres);
  berth_error_t err = NULL;
  int r = oci_create(g, &o, run, &err);
  if (r < 0) return fail(err);
  return run ? r : 0;
}

static int ocmd_simple(struct oci_global *g, int argc, char **argv) {
  const char *cmd = argv[0];
  char *pos[2];
  int npos;
  struct opt none[] = {{NULL, NULL, false, NULL, NULL, NULL}};
  if (parse(argc, argv, none, pos, &npos, 1, false) < 0 || need_id(npos, pos, cmd) < 0) return 1;
  berth_error_t err = NULL;
  int r;
  if (!strcmp(cmd, "start")) r = oci_start(g, pos[0], &err);
  else if (!strcmp(cmd, "pause") || !strcmp(cmd, "resume")) r = oci_pause(g, pos[0], !strcmp(cmd, "pause"), &err);
  else {
    json_t *st = NULL;
    r = oci_state(g, pos[0], &st, &err);
    if (r == 0) print_json(st);
  }
  return r < 0 ? fail(err) : 0;
}

static int ocmd_kill(struct oci_global *g, int argc, char **argv) {
  bool all = false;
  struct opt opts[] = {{"all", "a", false, NULL, &all, NULL}, {NULL, NULL, false, NULL, NULL, NULL}};
  char *pos[3];
  int npos;
  if (parse(argc, argv, opts, pos, &npos, 2, false) < 0 || need_id(npos, pos, "kill") < 0) return 1;
  int sig = npos > 1 ? oci_parse_signal(pos[1]) : 15;
  if (sig < 0) return usage("kill: unknown signal `%s`", pos[1]);
  berth_error_t err = NULL;
  return oci_kill(g, pos[0], sig, all, &err) < 0 ? fail(err) : 0;
}

static int ocmd_delete(struct oci_global *g, int argc, char **argv) {
  bool force = false;
  struct opt opts[] = {{"force", "f", false, NULL, &force, NULL}, {NULL, NULL, false, NULL, NULL, NULL}};
  char *pos[2];
  int npos;
  if (parse(argc, argv, opts, pos, &npos, 1, false) < 0 || need_id(npos, pos, "delete") < 0) return 1;
  berth_error_t err = NULL;
  return oci_delete(g, pos[0], force, &err) < 0 ? fail(err) : 0;
}

struct exec_flags {
  const char *cwd, *user, *aa;
  bool tty, nnp;
  json_t *envs, *gids, *caps;
};

/* the container's own process, with this command: what runc does */
static json_t *process_from_flags(struct oci_global *g, char **pos, int npos, const struct exec_flags *f, berth_error_t *err) {
  json_t *st = NULL;
  if (oci_state(g, pos[0], &st, err) < 0) return NULL;
  json_decref(st);
  cleanup_free char *cp = xasprintf("%s/%s/config.json", oci_root(g), pos[0]);
  json_t *spec = json_load_file(cp, 0, NULL);
  json_t *process = json_deep_copy(json_object_get(spec, "process"));
  json_decref(spec);
  if (!process) process = json_object();
  json_t *args = json_array();
  for (int i = 1; i < npos; i++) json_array_append_new(args, json_string(pos[i]));
  json_object_set_new(process, "args", args);
  json_object_set_new(process, "terminal", json_boolean(f->tty));
  if (f->cwd) json_object_set_new(process, "cwd", json_string(f->cwd));
  json_t *env = json_object_get(process, "env");
  if (!env) json_object_set_new(process, "env", env = json_array());
  size_t i;
  json_t *v;
  json_array_foreach(f->envs, i, v) {
    const char *kv = json_string_value(v), *eq = strchr(kv, '=');
    size_t kl = eq ? (size_t)(eq - kv) : strlen(kv);
    size_t j;
    json_t *e;
    bool replaced = false;
    json_array_foreach(env, j, e) {
      const char *s = json_string_value(e);
      if (s && !strncmp(s, kv, kl) && s[kl] == '=') json_array_set(env, j, v), replaced = true;
    }
    if (!replaced) json_array_append(env, v);
  }
  if (f->user) {
    char *end;
    unsigned long uid = strtoul(f->user, &end, 10);
    unsigned long gid = 0;
    if (end == f->user || (*end && *end != ':') || (*end == ':' && (gid = strtoul(end + 1, &end, 10), *end))) {
      json_decref(process);
      berth_error(err, -EINVAL, "exec: --user `%s`: give UID[:GID] as numbers", f->user);
      return NULL;
    }
    json_object_set_new(process, "user", json_pack("{s:I, s:I}", "uid", (json_int_t)uid, "gid", (json_int_t)gid));
  }
  if (json_array_size(f->gids)) {
    json_t *ag = json_array();
    json_array_foreach(f->gids, i, v) json_array_append_new(ag, json_integer(atoll(json_string_value(v))));
    json_t *u = json_object_get(process, "user");
    if (!u) json_object_set_new(process, "user", u = json_pack("{s:i, s:i}", "uid", 0, "gid", 0));
    json_object_set_new(u, "additionalGids", ag);
  }
  if (json_array_size(f->caps)) {
    json_t *c = json_object_get(process, "capabilities");
    if (!c) json_object_set_new(process, "capabilities", c = json_object());
    const char *sets[] = {"bounding", "effective", "permitted", "ambient"};
    for (size_t k = 0; k < 4; k++) {
      json_t *l = json_object_get(c, sets[k]);
      if (!l) json_object_set_new(c, sets[k], l = json_array());
      json_array_foreach(f->caps, i, v) json_array_append(l, v);
    }
  }
  if (f->nnp) json_object_set_new(process, "noNewPrivileges", json_true());
  if (f->aa) json_object_set_new(process, "apparmorProfile", json_string(f->aa));
  return process;
}

static int ocmd_exec(struct oci_global *g, int argc, char **argv) {
  const char *cs = NULL, *procf = NULL, *pidf = NULL, *label = NULL, *pres = NULL, *cgroup = NULL;
  bool detach = false, ignore_paused = false;
  struct exec_flags f = {.envs = json_array(), .gids = json_array(), .caps = json_array()};
  struct opt opts[] = {{"console-socket", NULL, true, &cs, NULL, NULL},
                       {"cwd", NULL, true, &f.cwd, NULL, NULL},
                       {"env", "e", true, NULL, NULL, f.envs},
                       {"tty", "t", false, NULL, &f.tty, NULL},
                       {"user", "u", true, &f.user, NULL, NULL},
                       {"additional-gids", "g", true, NULL, NULL, f.gids},
                       {"process", "p", true, &procf, NULL, NULL},
                       {"detach", "d", false, NULL, &detach, NULL},
                       {"pid-file", NULL, true, &pidf, NULL, NULL},
                       {"process-label", NULL, true, &label, NULL, NULL},
                       {"apparmor", NULL, true, &f.aa, NULL, NULL},
                       {"no-new-privs", NULL, false, NULL, &f.nnp, NULL},
                       {"cap", "c", true, NULL, NULL, f.caps},
                       {"preserve-fds", NULL, true, &pres, NULL, NULL},
                       {"ignore-paused", NULL, false, NULL, &ignore_paused, NULL},
                       {"cgroup", NULL, true, &cgroup, NULL, NULL},
                       {NULL, NULL, false, NULL, NULL, NULL}};
  char **pos = calloc((size_t)argc + 1, sizeof *pos);
  int npos = 0, rc = 1;
  json_t *process = NULL;
  berth_error_t err = NULL;
  if (!pos || parse(argc, argv, opts, pos, &npos, argc, true) < 0 || need_id(npos, pos, "exec") < 0) {
    rc = 1;
  } else if (procf) {
    json_error_t je;
    process = !strcmp(procf, "-") ? json_loadf(stdin, 0, &je) : json_load_file(procf, 0, &je);
    if (!json_is_object(process)) rc = usage("exec: --process: not a runtime-spec process object (%s)", je.text);
    else if (f.tty) json_object_set_new(process, "terminal", json_true());
  } else if (npos < 2) {
    rc = usage("exec: give the command to run after the ID (or --process FILE)%s", "");
  } else if (!(process = process_from_flags(g, pos, npos, &f, &err))) {
    rc = fail(err);
  }
  if (json_is_object(process)) {
    struct oci_exec_opts o = {
        .id = pos[0], .process = process, .pid_file = pidf, .console_socket = cs, .detach = detach, .preserve_fds = pres ? atoi(pres) : 0};
    int r = oci_exec(g, &o, &err);
    rc = r < 0 ? fail(err) : r;
  }
  free(pos);
  json_decref(process);
  json_decref(f.envs);
  json_decref(f.gids);
  json_decref(f.caps);
  return rc;
}

static int ocmd_list(struct oci_global *g, int argc, char **argv) {
  const char *format = "table";
  bool quiet = false;
  struct opt opts[] = {
      {"format", "f", true, &format, NULL, NULL}, {"quiet", "q", false, NULL, &quiet, NULL}, {NULL, NULL, false, NULL, NULL, NULL}};
  char *pos[1];
  int npos;
  if (parse(argc, argv, opts, pos, &npos, 0, false) < 0) return 1;
  json_t *l = NULL;
  berth_error_t err = NULL;
  if (oci_list(g, &l, &err) < 0) return fail(err);
  size_t i;
  json_t *c;
  if (quiet) {
    json_array_foreach(l, i, c) puts(jstr(c, "id"));
    json_decref(l);
    return 0;
  }
  if (!strcmp(format, "json")) return print_json(l);
  if (strcmp(format, "table")) {
    json_decref(l);
    return usage("list: --format `%s`: table or json", format);
  }
  printf("%-24s %-8s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
  json_array_foreach(l, i, c)
      printf("%-24s %-8lld %-10s %-40s %-32s %s\n", jstr(c, "id"), (long long)json_integer_value(json_object_get(c, "pid")),
             jstr(c, "status"), jstr(c, "bundle"), jstr(c, "created"), jstr(c, "owner"));
  json_decref(l);
  return 0;
}

static int ocmd_ps(struct oci_global *g, int argc, char **argv) {
  const char *format = "table";
  struct opt opts[] = {{"format", "f", true, &format, NULL, NULL}, {NULL, NULL, false, NULL, NULL, NULL}};
  char **pos = calloc((size_t)argc + 1, sizeof *pos);
  int npos;
  if (!pos) return 1;
  if (parse(argc, argv, opts, pos, &npos, argc, true) < 0 || need_id(npos, pos, "ps") < 0) return free(pos), 1;
  pid_t *pids = NULL;
  size_t n = 0;
  berth_error_t err = NULL;
  if (oci_pids(g, pos[0], &pids, &n, &err) < 0) return free(pos), fail(err);
  if (!strcmp(format, "json")) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_integer(pids[i]));
    char *s = json_dumps(a, JSON_COMPACT);
    if (s) puts(s);
    free(s);
    json_decref(a);
    free(pids);
    free(pos);
    return 0;
  }
  /* table: ps's own output (its options after the ID), only our pids */
  struct buf cmd = {0};
  buf_append(&cmd, "ps", 2);
  if (npos > 1)
    for (int i = 1; i < npos; i++) {
      buf_append(&cmd, " '", 2);
      for (const char *c = pos[i]; *c; c++) {
        if (*c == '\'') buf_append(&cmd, "'\\''", 4);
        else buf_append(&cmd, c, 1);
      }
      buf_append(&cmd, "'", 1);
    }
  else buf_append(&cmd, " -ef", 4);
  buf_append(&cmd, "", 1);
  FILE *p = popen(cmd.data, "re");
  char line[4096];
  int pidcol = -1;
  if (p && fgets(line, sizeof line, p)) {
    fputs(line, stdout);
    int col = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save), col++)
      if (!strcmp(t, "PID")) pidcol = col;
    while (fgets(line, sizeof line, p)) {
      char copy[4096];
      snprintf(copy, sizeof copy, "%s", line);
      int c = 0;
      long pid = -1;
      for (char *save = NULL, *t = strtok_r(copy, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save), c++)
        if (c == pidcol) pid = atol(t);
      for (size_t i = 0; i < n; i++)
        if (pids[i] == pid) fputs(line, stdout);
    }
  }
  if (p) pclose(p);
  buf_free(&cmd);
  free(pids);
  free(pos);
  if (pidcol < 0) return usage("ps: its output has no PID column%s", "");
  return 0;
}

static int set_num(json_t *res, const char *group, const char *key, const char *v, bool str) {
  if (!v) return 0;
  json_t *o = json_object_get(res, group);
  if (!o) json_object_set_new(res, group, o = json_object());
  if (str) return json_object_set_new(o, key, json_string(v)), 0;
  char *end;
  long long n = strtoll(v, &end, 10);
  if (*end || end == v) return usage("update: `%s` is not a number", v);
  json_object_set_new(o, key, json_integer(n));
  return 0;
}

static int ocmd_update(struct oci_global *g, int argc, char **argv) {
  const char *rfile = NULL, *mem = NULL, *swap = NULL, *pids = NULL, *quota = NULL, *period = NULL, *shares = NULL, *cpus = NULL,
             *mems = NULL, *kmem = NULL, *res_ = NULL;
  struct opt opts[] = {{"resources", "r", true, &rfile, NULL, NULL},
                       {"memory", "m", true, &mem, NULL, NULL},
                       {"memory-swap", NULL, true, &swap, NULL, NULL},
                       {"memory-reservation", NULL, true, &res_, NULL, NULL},
                       {"kernel-memory", NULL, true, &kmem, NULL, NULL},
                       {"pids-limit", NULL, true, &pids, NULL, NULL},
                       {"cpu-quota", NULL, true, &quota, NULL, NULL},
                       {"cpu-period", NULL, true, &period, NULL, NULL},
                       {"cpu-share", NULL, true, &shares, NULL, NULL},
                       {"cpu-shares", NULL, true, &shares, NULL, NULL},
                       {"cpuset-cpus", NULL, true, &cpus, NULL, NULL},
                       {"cpuset-mems", NULL, true, &mems, NULL, NULL},
                       {NULL, NULL, false, NULL, NULL, NULL}};
  char *pos[2];
  int npos;
  if (parse(argc, argv, opts, pos, &npos, 1, false) < 0 || need_id(npos, pos, "update") < 0) return 1;
  json_t *res;
  if (rfile) {
    json_error_t je;
    res = !strcmp(rfile, "-") ? json_loadf(stdin, 0, &je) : json_load_file(rfile, 0, &je);
    if (!json_is_object(res)) {
      json_decref(res);
      return usage("update: --resources: not a linux.resources JSON object (%s)", je.text);
    }
  } else res = json_object();
  int64_t v;
  berth_error_t err = NULL;
  const char *sizes[][2] = {{"limit", mem}, {"swap", swap}, {"reservation", res_}, {"kernel", kmem}};
  for (size_t i = 0; i < 4; i++) {
    if (!sizes[i][1]) continue;
    if (parse_size(sizes[i][1], &v, &err) < 0) {
      json_decref(res);
      return fail(err);
    }
    json_t *m = json_object_get(res, "memory");
    if (!m) json_object_set_new(res, "memory", m = json_object());
    json_object_set_new(m, sizes[i][0], json_integer(v));
  }
  if (set_num(res, "pids", "limit", pids, false) || set_num(res, "cpu", "quota", quota, false) ||
      set_num(res, "cpu", "period", period, false) || set_num(res, "cpu", "shares", shares, false) ||
      set_num(res, "cpu", "cpus", cpus, true) || set_num(res, "cpu", "mems", mems, true)) {
    json_decref(res);
    return 1;
  }
  int r = oci_update(g, pos[0], res, &err);
  json_decref(res);
  return r < 0 ? fail(err) : 0;
}

static int ocmd_spec(int argc, char **argv) {
  const char *bundle = ".";
  bool rootless = false;
  struct opt opts[] = {
      {"bundle", "b", true, &bundle, NULL, NULL}, {"rootless", NULL, false, NULL, &rootless, NULL}, {NULL, NULL, false, NULL, NULL, NULL}};
  char *pos[1];
  int npos;
  if (parse(argc, argv, opts, pos, &npos, 0, false) < 0) return 1;
  cleanup_free char *p = xasprintf("%s/config.json", bundle);
  json_t *s = oci_default_spec(rootless);
  char *txt = json_dumps(s, JSON_INDENT(2));
  json_decref(s);
  berth_error_t err = NULL;
  int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    free(txt);
    return fail((berth_error(&err, errno, errno == EEXIST ? "%s exists already: remove it first" : "write %s", p), err));
  }
  size_t len = strlen(txt);
  bool ok = write(fd, txt, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
  close(fd);
  free(txt);
  if (!ok) return fail((berth_error(&err, errno, "write %s", p), err));
  return 0;
}

int oci_main(int argc, char **argv) {
  struct oci_global g = {.rootless = -1};
  const char *logp = NULL, *fmt = "text", *rootless = NULL, *criu = NULL;
  bool debug = false, sysd = false;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i] + 1 + (argv[i][1] == '-');
    const char *eq = strchr(a, '=');
    size_t nl = eq ? (size_t)(eq - a) : strlen(a);
#define IS(s) (nl == strlen(s) && !strncmp(a, s, nl))
#define VAL() (eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL))
    if (IS("root")) g.root = VAL();
    else if (IS("log")) logp = VAL();
    else if (IS("log-format")) fmt = VAL();
    else if (IS("rootless")) rootless = VAL();
    else if (IS("criu")) criu = VAL();
    else if (IS("debug")) debug = true;
    else if (IS("systemd-cgroup")) sysd = true;
    else if (IS("help") || IS("h")) return fputs(HELP, stdout), 0;
    else if (IS("version") || IS("v")) {
      printf("berth-oci version %s\nspec: 1.0.2\n", berth_version());
      return 0;
    } else return usage("unknown global option `%s`", argv[i]);
    if ((IS("root") || IS("log") || IS("log-format") || IS("rootless") || IS("criu")) && !(eq || argv[i]))
      return usage("option `%s` needs a value", a);
#undef IS
#undef VAL
  }
  (void)criu;
  if (!fmt || (strcmp(fmt, "text") && strcmp(fmt, "json"))) return usage("--log-format `%s`: text or json", fmt);
  log_json = !strcmp(fmt, "json");
  if (logp && *logp) {
    log_file = fopen(logp, "ae");
    if (!log_file) fprintf(stderr, "berth-oci: cannot open --log %s: %s\n", logp, strerror(errno));
    berth_log_hook = log_line;
  }
  if (debug) berth_log_level = BERTH_LOG_DEBUG;
  g.debug = debug;
  g.systemd_cgroup = sysd;
  if (rootless) g.rootless = !strcmp(rootless, "true") ? 1 : !strcmp(rootless, "false") ? 0 : -1;
  if (i >= argc) return fputs(HELP, stderr), 1;
  const char *cmd = argv[i];
  int sargc = argc - i;
  char **sargv = argv + i;
  if (!strcmp(cmd, "help") || want_help(sargc, sargv)) return fputs(HELP, stdout), 0;
  if (!strcmp(cmd, "create")) return ocmd_create_run(&g, sargc, sargv, false);
  if (!strcmp(cmd, "run")) return ocmd_create_run(&g, sargc, sargv, true);
  if (!strcmp(cmd, "start") || !strcmp(cmd, "state") || !strcmp(cmd, "pause") || !strcmp(cmd, "resume"))
    return ocmd_simple(&g, sargc, sargv);
  if (!strcmp(cmd, "kill")) return ocmd_kill(&g, sargc, sargv);
  if (!strcmp(cmd, "delete")) return ocmd_delete(&g, sargc, sargv);
  if (!strcmp(cmd, "exec")) return ocmd_exec(&g, sargc, sargv);
  if (!strcmp(cmd, "list") || !strcmp(cmd, "ls")) return ocmd_list(&g, sargc, sargv);
  if (!strcmp(cmd, "ps")) return ocmd_ps(&g, sargc, sargv);
  if (!strcmp(cmd, "update")) return ocmd_update(&g, sargc, sargv);
  if (!strcmp(cmd, "features")) return print_json(oci_features());
  if (!strcmp(cmd, "spec")) return ocmd_spec(sargc, sargv);
  if (!strcmp(cmd, "checkpoint") || !strcmp(cmd, "restore") || !strcmp(cmd, "events"))
    return usage("`%s` is not supported by berth-oci", cmd);
  return usage("unknown command `%s`", cmd);
}
