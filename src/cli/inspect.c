/* berth inspect / stats / top. A name that is neither a container nor an
 * image exits 1 (as docker does); other failures 125. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "berth.h"
#include "cli/cli.h"
#include "util/config.h"
#include "runtime/container.h"
#include "runtime/inspect.h"

static int fail(bool json, berth_error_t err) {
  bool not_found = err && err->status == ENOENT;
  int r = cli_fail(json, err);
  return not_found ? 1 : r;
}

/* ---------- inspect ---------- */

static const char *INSPECT_HELP = "Usage: berth inspect [OPTIONS] NAME|IMAGE...\n\n"
                                  "Print what berth knows about containers or images, as a JSON array (one entry\n"
                                  "each). A name is looked up as a container first, then as an image (a name, a\n"
                                  "digest sha256:HEX, or 4 or more of its first hex digits).\n\n"
                                  "A container: its state and live status, config (from its spec: hostname, user,\n"
                                  "workdir, env, the names only of the variables given with -e, mounts, namespaces,\n"
                                  "resources), network, limits, disk and its image's config. An image: its store\n"
                                  "record, every name on it and its config (Env, Cmd, Entrypoint, ...).\n\n"
                                  "      --type container|image  look for that kind only\n"
                                  "      --json                  (the output is JSON anyway)\n\n"
                                  "Exit 1 when a name is neither (nothing is printed then).\n";

int cmd_inspect(int argc, char **argv) {
  static struct option opts[] = {
      {"type", required_argument, 0, 't'}, {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *type = NULL;
  bool json = false;
  optind = 1;
  opterr = 0;
  int op;
  while ((op = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    switch (op) {
    case 't': type = optarg; break;
    case 'j': json = true; break;
    case 'h': return fputs(INSPECT_HELP, stdout), 0;
    default: return cli_unknown_option("inspect", argv[optind - 1]);
    }
  }
  if (type && strcmp(type, "container") && strcmp(type, "image"))
    return fprintf(stderr, "berth inspect: --type is `container` or `image`, not `%s`\n", type), EXIT_BERTH;
  if (optind >= argc) return fprintf(stderr, "berth inspect: expected a container or image name; see `berth inspect --help`\n"), EXIT_BERTH;
  json_t *all = json_array();
  for (int i = optind; i < argc; i++) {
    const char *name = argv[i];
    json_t *o = NULL;
    berth_error_t err = NULL;
    int r = -1;
    if (!type || !strcmp(type, "container")) r = container_inspect(name, &o, &err);
    if (r < 0 && !type && err && err->status == ENOENT) {
      berth_error_free(err);
      err = NULL;
      r = image_inspect(name, &o, &err);
      if (r < 0 && err && err->status == ENOENT) {
        berth_error_free(err);
        err = NULL;
        berth_error(&err, -ENOENT, "No such container or image: %s (see `berth ls` and `berth images`)", name);
      }
    } else if (type && !strcmp(type, "image")) r = image_inspect(name, &o, &err);
    if (r < 0) {
      json_decref(all);
      return fail(json, err);
    }
    json_array_append_new(all, o);
  }
  cli_print_json(all);
  json_decref(all);
  return 0;
}

/* ---------- stats ---------- */

static const char *STATS_HELP = "Usage: berth stats [OPTIONS] [NAME...]\n\n"
                                "Resource use of running containers (or of the NAMEs), one line each: CPU %\n"
                                "(100% = one CPU), memory use / limit (the host's memory when there is no limit),\n"
                                "network bytes received / sent (every interface but lo), block I/O read / written,\n"
                                "processes. Refreshed every second until Ctrl-C (the screen cleared on a terminal).\n"
                                "Figures the cgroup does not give (no limits applied, rootless on cgroup v1; no\n"
                                "io accounting) show as --, null in JSON.\n\n"
                                "      --no-stream  print once (CPU % over the first 50 ms) and exit\n"
                                "      --json       JSON: an array per refresh (one line each when streaming)\n";

/* the window of the first CPU reading: long enough for a figure, short
 * enough for --no-stream to answer at once */
#define FIRST_WINDOW 0.05

struct srow {
  char *name, *id, *status;
  bool running;
  json_t *st;
  struct ctr_sample s;
};

static void srows_free(struct srow *r, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(r[i].name);
    free(r[i].id);
    free(r[i].status);
    json_decref(r[i].st);
  }
  free(r);
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the rows to show now: the NAMEs given, else every running container.
 * A NAME that does not exist fails (first) or drops out (later frames). */
static int srows_load(char **names, int nnames, bool first, struct srow **out, size_t *nout, berth_error_t *err) {
  char **list = NULL;
  size_t nl = 0;
  if (nnames) {
    list = xmalloc0(sizeof *list * (size_t)nnames);
    for (int i = 0; i < nnames; i++) list[nl++] = xstrdup(names[i]);
  } else {
    struct berth_config *cfg = config_get(err);
    if (!cfg) return -1;
    cleanup_free char *dir = xasprintf("%s/containers", cfg->data_dir);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
      if (!container_name_valid(de->d_name)) continue;
      char **nlist = realloc(list, sizeof *list * (nl + 1));
      if (!nlist) break;
      list = nlist;
      list[nl++] = xstrdup(de->d_name);
    }
    if (d) closedir(d);
    if (nl) qsort(list, nl, sizeof *list, name_cmp);
  }
  struct srow *rows = xmalloc0(sizeof *rows * (nl ? nl : 1));
  size_t n = 0;
  int ret = 0;
  for (size_t i = 0; i < nl; i++) {
    json_t *st = container_state(list[i]);
    if (!st && nnames && first && ret == 0) ret = berth_error(err, -ENOENT, "No such container: %s (see `berth ls`)", list[i]);
    if (!st) continue;
    const char *status = container_live_status(st);
    bool running = !strcmp(status, "running");
    if (!running && !nnames) {
      json_decref(st);
      continue;
    }
    rows[n++] = (struct srow){
        .name = xstrdup(list[i]), .id = xstrdup(jstr(st, "id") ?: ""), .status = xstrdup(status), .running = running, .st = st};
  }
  for (size_t i = 0; i < nl; i++) free(list[i]);
  free(list);
  if (ret < 0) {
    srows_free(rows, n);
    return -1;
  }
  *out = rows;
  *nout = n;
  return 0;
}

/* every row's counters, one after another: all containers share one wait */
static void srows_sample(struct srow *r, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (r[i].running) container_sample(r[i].st, &r[i].s);
}

static const struct srow *srow_prev(const struct srow *prev, size_t np, const struct srow *r) {
  for (size_t i = 0; i < np; i++)
    if (prev[i].running && !strcmp(prev[i].name, r->name) && !strcmp(prev[i].id, r->id)) return &prev[i];
  return NULL;
}

static void sleep_until(double t) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  double left = t - ((double)now.tv_sec + (double)now.tv_nsec / 1e9);
  if (left <= 0) return;
  struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

static json_t *num_or_null(int64_t v) { return v >= 0 ? json_integer(v) : json_null(); }

static int64_t host_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  return pages > 0 && psz > 0 ? (int64_t)pages * psz : -1;
}

/* one row's figures; cpu < 0 when there is no earlier reading to compare */
static json_t *srow_json(const struct srow *r, const struct srow *p) {
  const struct cgroup_stats *c = &r->s.cg;
  bool on = r->running;
  double cpu = -1;
  if (on && p && c->cpu_ns >= 0 && p->s.cg.cpu_ns >= 0 && r->s.at > p->s.at) {
    cpu = (double)(c->cpu_ns - p->s.cg.cpu_ns) / ((r->s.at - p->s.at) * 1e9) * 100;
    if (cpu < 0) cpu = 0;
    cpu = (double)(int64_t)(cpu * 100 + 0.5) / 100;
  }
  int64_t lim = on ? c->mem_limit : -1, base = lim > 0 ? lim : host_memory();
  double mp = on && c->mem_usage >= 0 && base > 0 ? (double)(int64_t)((double)c->mem_usage / (double)base * 10000 + 0.5) / 100 : -1;
  json_t *o = json_pack("{s:s, s:s, s:s}", "name", r->name, "id", r->id, "status", r->status);
  json_object_set_new(o, "cpu_percent", cpu >= 0 ? json_real(cpu) : json_null());
  json_object_set_new(o, "memory_usage", num_or_null(on ? c->mem_usage : -1));
  json_object_set_new(o, "memory_limit", num_or_null(lim));
  json_object_set_new(o, "memory_percent", mp >= 0 ? json_real(mp) : json_null());
  json_object_set_new(o, "net_rx", num_or_null(on ? r->s.net_rx : -1));
  json_object_set_new(o, "net_tx", num_or_null(on ? r->s.net_tx : -1));
  json_object_set_new(o, "block_read", num_or_null(on ? c->io_read : -1));
  json_object_set_new(o, "block_write", num_or_null(on ? c->io_write : -1));
  json_object_set_new(o, "pids", num_or_null(on ? c->pids : -1));
  json_object_set_new(o, "pids_max", num_or_null(on ? c->pids_max : -1));
  return o;
}

/* sizes as docker stats prints them: memory in binary units, I/O in decimal */
static const char *fmt_size(json_t *v, bool binary, char *buf, size_t len) {
  if (!json_is_integer(v)) return "--";
  static const char *const bin[] = {"B", "KiB", "MiB", "GiB", "TiB"}, *const dec[] = {"B", "kB", "MB", "GB", "TB"};
  double x = (double)json_integer_value(v), step = binary ? 1024 : 1000;
  int u = 0;
  while (x >= step && u < 4) x /= step, u++;
  snprintf(buf, len, binary ? "%.4g%s" : "%.3g%s", x, (binary ? bin : dec)[u]);
  return buf;
}

static void stats_print_table(json_t *arr) {
  int w = 4;
  size_t i;
  json_t *o;
  json_array_foreach(arr, i, o) if ((int)strlen(jstr(o, "name")) > w) w = (int)strlen(jstr(o, "name"));
  printf("%-*s   %-8s %-21s %-8s %-19s %-19s %s\n", w, "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS");
  json_array_foreach(arr, i, o) {
    char a[32], b[32], cpu[16] = "--", mp[16] = "--", pids[24] = "--", mem[48], net[48], blk[48];
    if (json_is_number(json_object_get(o, "cpu_percent")))
      snprintf(cpu, sizeof cpu, "%.2f%%", json_number_value(json_object_get(o, "cpu_percent")));
    if (json_is_number(json_object_get(o, "memory_percent")))
      snprintf(mp, sizeof mp, "%.2f%%", json_number_value(json_object_get(o, "memory_percent")));
    if (json_is_integer(json_object_get(o, "pids")))
      snprintf(pids, sizeof pids, "%lld", (long long)json_integer_value(json_object_get(o, "pids")));
    /* no limit: the host's memory, which is what the container may use */
    json_t *lim = json_object_get(o, "memory_limit"), *host = NULL;
    if (!json_is_integer(lim) && json_is_integer(json_object_get(o, "memory_usage"))) lim = host = json_integer(host_memory());
    snprintf(mem, sizeof mem, "%s / %s", fmt_size(json_object_get(o, "memory_usage"), true, a, sizeof a), fmt_size(lim, true, b, sizeof b));
    json_decref(host);
    snprintf(net, sizeof net, "%s / %s", fmt_size(json_object_get(o, "net_rx"), false, a, sizeof a),
             fmt_size(json_object_get(o, "net_tx"), false, b, sizeof b));
    snprintf(blk, sizeof blk, "%s / %s", fmt_size(json_object_get(o, "block_read"), false, a, sizeof a),
             fmt_size(json_object_get(o, "block_write"), false, b, sizeof b));
    printf("%-*s   %-8s %-21s %-8s %-19s %-19s %s\n", w, jstr(o, "name"), cpu, mem, mp, net, blk, pids);
  }
}

int cmd_stats(int argc, char **argv) {
  static struct option opts[] = {
      {"no-stream", no_argument, 0, 'n'}, {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  bool once = false, json = false;
  optind = 1;
  opterr = 0;
  int op;
  while ((op = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    switch (op) {
    case 'n': once = true; break;
    case 'j': json = true; break;
    case 'h': return fputs(STATS_HELP, stdout), 0;
    default: return cli_unknown_option("stats", argv[optind - 1]);
    }
  }
  char **names = argv + optind;
  int nnames = argc - optind;
  for (int i = 0; i < nnames; i++)
    if (!container_name_valid(names[i])) {
      berth_error_t err = NULL;
      berth_error(&err, -ENOENT, "No such container: %.80s (see `berth ls`)", names[i]);
      return fail(json, err);
    }
  bool tty = !json && isatty(STDOUT_FILENO);
  berth_error_t err = NULL;
  struct srow *prev = NULL, *cur = NULL;
  size_t np = 0, nc = 0;
  /* a first reading, then one every second (the first after FIRST_WINDOW) */
  if (srows_load(names, nnames, true, &prev, &np, &err) < 0) return fail(json, err);
  srows_sample(prev, np);
  double t0 = np ? prev[0].s.at : 0, wait = np ? FIRST_WINDOW : 0;
  bool first = true;
  for (;;) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!np) t0 = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    sleep_until(t0 + wait);
    if (first) { /* the same containers again, at the end of the window */
      cur = xmalloc0(sizeof *cur * (np ? np : 1));
      for (size_t i = 0; i < np; i++)
        cur[i] = (struct srow){.name = xstrdup(prev[i].name),
                               .id = xstrdup(prev[i].id),
                               .status = xstrdup(prev[i].status),
                               .running = prev[i].running,
                               .st = json_incref(prev[i].st)};
      nc = np;
    } else if (srows_load(names, nnames, false, &cur, &nc, &err) < 0) {
      srows_free(prev, np);
      return fail(json, err);
    }
    first = false;
    srows_sample(cur, nc);
    json_t *arr = json_array();
    for (size_t i = 0; i < nc; i++) json_array_append_new(arr, srow_json(&cur[i], srow_prev(prev, np, &cur[i])));
    if (tty) fputs("\033[2J\033[H", stdout);
    if (json && once) cli_print_json(arr);
    else if (json) {
      char *t = json_dumps(arr, JSON_COMPACT);
      if (t) puts(t);
      free(t);
    } else stats_print_table(arr);
    json_decref(arr);
    fflush(stdout);
    srows_free(prev, np);
    prev = cur;
    np = nc;
    if (once || ferror(stdout)) break;
    t0 = np ? prev[0].s.at : t0 + wait;
    wait = 1.0;
  }
  srows_free(prev, np);
  return 0;
}

/* ---------- top ---------- */

static const char *TOP_HELP = "Usage: berth top [--json] NAME\n\n"
                              "The processes running in a container: PID (the host's), CPID (inside the\n"
                              "container), USER (from the container's /etc/passwd, else the uid), TIME (CPU\n"
                              "time), CMD (the command line).\n\n"
                              "      --json  {container, processes: [{pid, container_pid, uid, user, time, cmd}]}\n";

int cmd_top(int argc, char **argv) {
  bool json = false;
  const char *name = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fputs(TOP_HELP, stdout), 0;
    else if (argv[i][0] == '-') return cli_unknown_option("top", argv[i]);
    else if (name) return fprintf(stderr, "berth top: one NAME only, got `%s` too\n", argv[i]), EXIT_BERTH;
    else name = argv[i];
  }
  if (!name) return fprintf(stderr, "berth top: expected a container name; see `berth top --help`\n"), EXIT_BERTH;
  json_t *out = NULL;
  berth_error_t err = NULL;
  if (container_top(name, &out, &err) < 0) return fail(json, err);
  if (json) cli_print_json(out);
  else {
    printf("%-8s %-6s %-10s %-10s %s\n", "PID", "CPID", "USER", "TIME", "CMD");
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(out, "processes"), i, p)
        printf("%-8lld %-6lld %-10s %-10s %s\n", (long long)json_integer_value(json_object_get(p, "pid")),
               (long long)json_integer_value(json_object_get(p, "container_pid")), jstr(p, "user"), jstr(p, "time"), jstr(p, "cmd"));
  }
  json_decref(out);
  return 0;
}
