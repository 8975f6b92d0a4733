/* berth system df|prune, berth commit, berth snapshot ls|rm: disk use,
 * garbage, and images made from containers (src/runtime/gc.c,
 * src/image/snapshot.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "berth.h"
#include "util/util.h"

#include "cli/cli.h"
#include "runtime/container.h"

static const char *SYSTEM_HELP = "Usage: berth system df [-v] [--json]\n"
                                 "       berth system prune [--all] [--volumes-if-any] [-f] [--dry-run] [--json]\n\n"
                                 "Disk use of berth's data dir, and removing what nothing needs. See `berth system df --help`\n"
                                 "and `berth system prune --help`.\n";

static const char *DF_HELP = "Usage: berth system df [-v] [--json]\n\n"
                             "Disk use of berth's data dir (allocated blocks, each file once, as `du -x` counts):\n"
                             "images, snapshots (images too, counted in both rows), containers (their writable\n"
                             "layers: upper/, or disk.img with a disk limit), layers, and leftovers of interrupted\n"
                             "work. RECLAIMABLE is what `berth system prune -a` can free of each.\n\n"
                             "  -v, --verbose  list the images, containers, unused layers and leftovers\n"
                             "      --json     the figures as JSON (bytes)\n";

static const char *PRUNE_HELP = "Usage: berth system prune [OPTIONS]\n\n"
                                "Remove what nothing needs:\n"
                                "  - containers that exited and are neither persistent nor have a restart policy\n"
                                "    (never a running one, one being created, or one that may be started again);\n"
                                "  - dangling images: images no name points at (a tag pulled or loaded again onto a\n"
                                "    new image, `rmi --force` of an image a container used) that no container uses;\n"
                                "  - layers no image and no container names;\n"
                                "  - leftovers of interrupted pulls, loads, snapshots and removals whose process is\n"
                                "    gone, removed containers' files in the trash, blobs no image names.\n"
                                "On a terminal it lists what goes and asks first; elsewhere it needs -f.\n\n"
                                "  -a, --all             also every image no container uses (snapshots and commits too)\n"
                                "      --volumes-if-any  accepted for Docker's habits: berth has no volumes\n"
                                "  -f, --force           do not ask\n"
                                "      --dry-run         only list what would go and what that frees\n"
                                "      --json            the result as JSON\n";

static const char *COMMIT_HELP = "Usage: berth commit [--json] NAME [REF]\n\n"
                                 "Make an image from container NAME: its writable layer on top of its image's layers,\n"
                                 "the same as a snapshot, named REF (default localhost/NAME:latest; a name taken again\n"
                                 "moves to the new image). Private ssh keys under any .ssh directory are left out.\n"
                                 "Prints the image's digest.\n\n"
                                 "      --json     the result as JSON\n";

static const char *SNAPSHOT_HELP = "Usage: berth snapshot ls [--json]\n"
                                   "       berth snapshot rm [-f] [--json] NAME...\n\n"
                                   "The snapshots agents make (the tool's snapshot operation): images named\n"
                                   "berth.local/snapshot/NAME:latest.\n\n"
                                   "ls: NAME, DIGEST, CREATED, SIZE (the layer the snapshot added), USED BY (containers\n"
                                   "    made from it, e.g. by restore).\n"
                                   "rm: remove snapshots; one a container uses is refused, naming it.\n"
                                   "  -f, --force   take the name of a snapshot in use away anyway: its image stays,\n"
                                   "                unnamed, until no container uses it\n"
                                   "      --json    the results as JSON\n";

static const char *size_str(json_int_t n, char *buf, size_t len) { return human_size((uint64_t)(n > 0 ? n : 0), buf, len); }

/* ---------- df ---------- */

static void df_row(const char *label, json_t *r) {
  char a[32], b[32];
  json_int_t size = json_integer_value(json_object_get(r, "size")), rec = json_integer_value(json_object_get(r, "reclaimable"));
  char pct[16];
  snprintf(pct, sizeof pct, "(%d%%)", size > 0 ? (int)(rec * 100 / size) : 0);
  printf("%-12s %-7lld %-7lld %-11s %s %s\n", label, (long long)json_integer_value(json_object_get(r, "count")),
         (long long)json_integer_value(json_object_get(r, "active")), size_str(size, a, sizeof a), size_str(rec, b, sizeof b), pct);
}

static void df_verbose(json_t *o) {
  char a[32];
  size_t i;
  json_t *v;
  printf("\nImages:\n");
  json_array_foreach(json_object_get(json_object_get(o, "images"), "items"), i, v) {
    json_t *names = json_object_get(v, "names"), *users = json_object_get(v, "containers");
    printf("  %-19.19s %10s  %s%s", jstr(v, "digest"), size_str(json_integer_value(json_object_get(v, "size")), a, sizeof a),
           json_array_size(names) ? json_string_value(json_array_get(names, 0)) : "<none>",
           json_array_size(names) > 1 ? " (and more names)" : "");
    size_t k;
    json_t *u;
    json_array_foreach(users, k, u) printf("%s%s", k ? ", " : "  used by ", json_string_value(u));
    printf("\n");
  }
  printf("\nContainers:\n");
  json_array_foreach(json_object_get(json_object_get(o, "containers"), "items"), i, v) printf(
      "  %-24s %-9s %10s%s%s\n", jstr(v, "name"), jstr(v, "status"), size_str(json_integer_value(json_object_get(v, "size")), a, sizeof a),
      jbool(v, "persistent", false) ? "  persistent" : "", jbool(v, "reclaimable", false) ? "  reclaimable" : "");
  json_t *unused = json_object_get(json_object_get(o, "layers"), "unused");
  if (json_array_size(unused)) {
    printf("\nUnused layers:\n");
    json_array_foreach(unused, i, v)
        printf("  %s %10s\n", jstr(v, "digest"), size_str(json_integer_value(json_object_get(v, "size")), a, sizeof a));
  }
  json_t *left = json_object_get(json_object_get(o, "leftovers"), "items");
  if (json_array_size(left)) {
    printf("\nLeftovers:\n");
    json_array_foreach(left, i, v)
        printf("  %s %s: %s\n", jstr(v, "path"), size_str(json_integer_value(json_object_get(v, "size")), a, sizeof a), jstr(v, "why"));
  }
}

static int cmd_df(int argc, char **argv) {
  bool json = false, verbose = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) verbose = true;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fputs(DF_HELP, stdout), 0;
    else return cli_unknown_option("system df", argv[i]);
  }
  char *res = NULL;
  berth_error_t err = NULL;
  if (berth_system_df(&res, &err) < 0) return cli_fail(json, err);
  if (json) {
    puts(res);
    free(res);
    return 0;
  }
  json_t *o = json_loads(res, 0, NULL);
  free(res);
  printf("%-12s %-7s %-7s %-11s %s\n", "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE");
  df_row("Images", json_object_get(o, "images"));
  df_row("Snapshots", json_object_get(o, "snapshots"));
  df_row("Containers", json_object_get(o, "containers"));
  df_row("Layers", json_object_get(o, "layers"));
  df_row("Leftovers", json_object_get(o, "leftovers"));
  char a[32];
  printf("\n%s: %s in all. ACTIVE: images and snapshots a container uses, running containers, layers\n"
         "an image or container names, leftovers in use or kept. Snapshots are counted with the images too.\n",
         jstr(o, "data_dir"), size_str(json_integer_value(json_object_get(o, "total_size")), a, sizeof a));
  if (verbose) df_verbose(o);
  json_decref(o);
  return 0;
}

/* ---------- prune ---------- */

static size_t plan_items(json_t *p) {
  return json_array_size(json_object_get(p, "containers")) + json_array_size(json_object_get(p, "images")) +
         json_array_size(json_object_get(p, "layers")) + json_array_size(json_object_get(p, "leftovers"));
}

static const char *image_label(json_t *v, char *buf, size_t len) {
  json_t *names = json_object_get(v, "names");
  snprintf(buf, len, "%.19s%s%s%s", jstr(v, "digest"), json_array_size(names) ? " (" : "",
           json_array_size(names) ? json_string_value(json_array_get(names, 0)) : "", json_array_size(names) ? ")" : "");
  return buf;
}

/* the list a person confirms, or a dry run prints */
static void print_plan(FILE *f, json_t *p) {
  char a[32], l[400];
  size_t i;
  json_t *v;
  json_t *c = json_object_get(p, "containers"), *im = json_object_get(p, "images"), *ly = json_object_get(p, "layers"),
         *lo = json_object_get(p, "leftovers");
  if (json_array_size(c)) fprintf(f, "Containers that exited (%zu):\n", json_array_size(c));
  json_array_foreach(c, i, v)
      fprintf(f, "  %s  %s\n", jstr(v, "name"), size_str(json_integer_value(json_object_get(v, "size")), a, sizeof a));
  if (json_array_size(im)) fprintf(f, "Images no container uses (%zu):\n", json_array_size(im));
  json_array_foreach(im, i, v)
      fprintf(f, "  %s  %s%s\n", image_label(v, l, sizeof l), size_str(json_integer_value(json_object_get(v, "size")), a, sizeof a),
              jbool(v, "snapshot", false)   ? "  (a snapshot)"
              : jbool(v, "dangling", false) ? "  (dangling)"
                                            : "");
  if (json_array_size(ly)) fprintf(f, "Layers nothing names (%zu):\n", json_array_size(ly));
  json_array_foreach(ly, i, v)
      fprintf(f, "  %.19s  %s\n", jstr(v, "digest"), size_str(json_integer_value(json_object_get(v, "size")), a, sizeof a));
  if (json_array_size(lo)) fprintf(f, "Leftovers of interrupted work (%zu):\n", json_array_size(lo));
  json_array_foreach(lo, i, v)
      fprintf(f, "  %s  %s: %s\n", jstr(v, "path"), size_str(json_integer_value(json_object_get(v, "size")), a, sizeof a), jstr(v, "why"));
  json_array_foreach(json_object_get(p, "notes"), i, v) fprintf(f, "note: %s\n", json_string_value(v));
}

static const char *NO_VOLUMES = "berth has no volumes: none to remove";

static int cmd_prune(int argc, char **argv) {
  bool json = false, force = false, dry = false, volumes = false;
  struct berth_prune_options po = {0};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--force")) force = true;
    else if (!strcmp(argv[i], "-a") || !strcmp(argv[i], "--all")) po.all = true;
    else if (!strcmp(argv[i], "--dry-run")) dry = true;
    else if (!strcmp(argv[i], "--volumes-if-any")) volumes = true;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fputs(PRUNE_HELP, stdout), 0;
    else return cli_unknown_option("system prune", argv[i]);
  }
  bool ask = !force && !dry;
  if (ask && !isatty(STDIN_FILENO)) {
    berth_error_t err = NULL;
    berth_error(&err, -EINVAL,
                "system prune removes things and there is no terminal to ask on: pass -f (--force) to remove "
                "without asking, or --dry-run to see what would go");
    return cli_fail(json, err);
  }
  /* what goes: listed (and confirmed) first, then exactly that is removed */
  char *plan_txt = NULL;
  berth_error_t err = NULL;
  po.dry_run = true;
  if (berth_system_prune(&po, &plan_txt, &err) < 0) return cli_fail(json, err);
  json_t *plan = json_loads(plan_txt, 0, NULL);
  FILE *say = json ? stderr : stdout;
  if (dry) {
    if (volumes) json_object_set_new(plan, "volumes", json_string(NO_VOLUMES));
    if (json) cli_print_json(plan);
    else {
      char a[32];
      if (!plan_items(plan)) printf("Nothing to remove.\n");
      print_plan(stdout, plan);
      if (plan_items(plan)) printf("Would free %s.\n", size_str(json_integer_value(json_object_get(plan, "reclaimable")), a, sizeof a));
      if (volumes) printf("%s.\n", NO_VOLUMES);
    }
    json_decref(plan);
    free(plan_txt);
    return 0;
  }
  if (ask && plan_items(plan)) { /* nothing to remove: nothing to ask */
    char a[32], line[64] = "";
    fprintf(say, "WARNING! This will remove:\n");
    print_plan(say, plan);
    fprintf(say, "That frees about %s.\nAre you sure you want to continue? [y/N] ",
            size_str(json_integer_value(json_object_get(plan, "reclaimable")), a, sizeof a));
    fflush(say);
    if (!fgets(line, sizeof line, stdin) || (strcasecmp(line, "y\n") && strcasecmp(line, "yes\n"))) {
      fprintf(say, "Nothing removed.\n");
      json_decref(plan);
      free(plan_txt);
      return 0;
    }
  }
  json_decref(plan);
  po.dry_run = false;
  po.plan = plan_txt;
  char *res = NULL;
  int r = berth_system_prune(&po, &res, &err);
  free(plan_txt);
  if (r < 0) return cli_fail(json, err);
  json_t *o = json_loads(res, 0, NULL);
  free(res);
  if (volumes) json_object_set_new(o, "volumes", json_string(NO_VOLUMES));
  int rc = json_array_size(json_object_get(o, "failed")) ? EXIT_BERTH : 0;
  if (json) {
    cli_print_json(o);
    json_decref(o);
    return rc;
  }
  char a[32];
  size_t i, k;
  json_t *v, *x;
  if (json_array_size(json_object_get(o, "containers"))) printf("Deleted containers:\n");
  json_array_foreach(json_object_get(o, "containers"), i, v)
      printf("  %s  %s\n", jstr(v, "name"), size_str(json_integer_value(json_object_get(v, "size")), a, sizeof a));
  if (json_array_size(json_object_get(o, "images"))) printf("Deleted images:\n");
  json_array_foreach(json_object_get(o, "images"), i, v) {
    json_array_foreach(json_object_get(v, "names"), k, x) printf("  untagged: %s\n", json_string_value(x));
    printf("  deleted: %s  %s\n", jstr(v, "digest"), size_str(json_integer_value(json_object_get(v, "size")), a, sizeof a));
  }
  if (json_array_size(json_object_get(o, "layers"))) printf("Deleted layers:\n");
  json_array_foreach(json_object_get(o, "layers"), i, v)
      printf("  %s  %s\n", jstr(v, "digest"), size_str(json_integer_value(json_object_get(v, "size")), a, sizeof a));
  if (json_array_size(json_object_get(o, "leftovers"))) printf("Removed leftovers:\n");
  json_array_foreach(json_object_get(o, "leftovers"), i, v)
      printf("  %s  %s\n", jstr(v, "path"), size_str(json_integer_value(json_object_get(v, "size")), a, sizeof a));
  json_array_foreach(json_object_get(o, "failed"), i, v) fprintf(stderr, "berth: error: %s: %s\n", jstr(v, "item"), jstr(v, "error"));
  json_array_foreach(json_object_get(o, "notes"), i, v) fprintf(stderr, "note: %s\n", json_string_value(v));
  if (volumes) printf("%s.\n", NO_VOLUMES);
  json_int_t freed = json_integer_value(json_object_get(o, "bytes_freed"));
  printf("Total reclaimed space: %s (%lld bytes)\n", size_str(freed, a, sizeof a), (long long)freed);
  json_decref(o);
  return rc;
}

int cmd_system(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fputs(SYSTEM_HELP, argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_BERTH : 0;
  }
  if (!strcmp(argv[1], "df")) return cmd_df(argc - 1, argv + 1);
  if (!strcmp(argv[1], "prune")) return cmd_prune(argc - 1, argv + 1);
  fprintf(stderr, "berth system: unknown subcommand `%s`; see `berth system --help`\n", argv[1]);
  return EXIT_BERTH;
}

/* ---------- commit ---------- */

int cmd_commit(int argc, char **argv) {
  bool json = false;
  const char *pos[3] = {0};
  int np = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fputs(COMMIT_HELP, stdout), 0;
    else if (argv[i][0] == '-') return cli_unknown_option("commit", argv[i]);
    else if (np < 3) pos[np++] = argv[i];
  }
  if (np < 1 || np > 2) {
    fprintf(stderr, "berth commit: expected NAME [REF]; see `berth commit --help`\n");
    return EXIT_BERTH;
  }
  char *res = NULL;
  berth_error_t err = NULL;
  if (berth_commit(pos[0], pos[1], &res, &err) < 0) return cli_fail(json, err);
  json_t *o = json_loads(res, 0, NULL);
  free(res);
  if (json) cli_print_json(o);
  else {
    printf("%s\n", jstr(o, "digest") ?: "");
    fprintf(stderr, "%s: %s\n", jstr(o, "image"), jstr(o, "detail"));
  }
  json_decref(o);
  return 0;
}

/* ---------- snapshot ls / rm ---------- */

static const char *SNAP_PREFIX = "berth.local/snapshot/";

/* container -> the image it was made from, for USED BY */
static json_t *containers_by_image(void) {
  json_t *by = json_object(), *l = NULL;
  berth_error_t e = NULL;
  if (container_list(&l, &e) < 0) {
    berth_error_free(e);
    return by;
  }
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(l, "containers"), i, c) {
    json_t *st = container_state(jstr(c, "name"));
    const char *dg = jstr(st, "image_digest");
    if (dg) {
      if (!json_object_get(by, dg)) json_object_set_new(by, dg, json_array());
      json_array_append_new(json_object_get(by, dg), json_string(jstr(c, "name")));
    }
    json_decref(st);
  }
  json_decref(l);
  return by;
}

static int snapshot_ls(bool json) {
  char *res = NULL;
  berth_error_t err = NULL;
  if (berth_image_list(&res, &err) < 0) return cli_fail(json, err);
  json_t *imgs = json_loads(res, 0, NULL), *out = json_array(), *by = containers_by_image();
  free(res);
  size_t i, k;
  json_t *img, *n;
  json_array_foreach(imgs, i, img) json_array_foreach(json_object_get(img, "names"), k, n) {
    const char *name = json_string_value(n);
    if (!str_has_prefix(name, SNAP_PREFIX) || !str_has_suffix(name, ":latest")) continue;
    json_t *layers = json_object_get(img, "layers");
    json_t *own = json_object_get(json_array_get(layers, json_array_size(layers) - 1), "size");
    json_t *users = json_object_get(by, jstr(img, "digest"));
    json_array_append_new(out,
                          json_pack("{s:s%, s:s, s:s, s:O, s:O, s:O, s:O}", "name", name + strlen(SNAP_PREFIX),
                                    strlen(name) - strlen(SNAP_PREFIX) - strlen(":latest"), "image", name, "digest", jstr(img, "digest"),
                                    "created", json_object_get(img, "created") ?: json_null(), "size", own ?: json_integer(0), "image_size",
                                    json_object_get(img, "size"), "containers", users ?: json_array()));
  }
  if (json) cli_print_json(out);
  else {
    printf("%-28s %-19s %-16s %10s  %s\n", "NAME", "DIGEST", "CREATED", "SIZE", "USED BY");
    json_t *s;
    json_array_foreach(out, i, s) {
      char when[32] = "-", sz[32];
      time_t t = (time_t)json_integer_value(json_object_get(s, "created"));
      if (t > 0) strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&t));
      printf("%-28s %-19.19s %-16s %10s  ", jstr(s, "name"), jstr(s, "digest"), when,
             size_str(json_integer_value(json_object_get(s, "size")), sz, sizeof sz));
      json_array_foreach(json_object_get(s, "containers"), k, n) printf("%s%s", k ? ", " : "", json_string_value(n));
      printf("%s\n", json_array_size(json_object_get(s, "containers")) ? "" : "-");
    }
  }
  json_decref(out);
  json_decref(imgs);
  json_decref(by);
  return 0;
}

/* rmi's refusal, said of the snapshot: `image REF` -> `snapshot NAME`, and its fix */
static char *snapshot_words(const char *msg, const char *ref, const char *name) {
  cleanup_free char *img = xasprintf("image `%s`", ref), *fix = xasprintf("`berth rmi --force %s`", ref);
  cleanup_free char *snap = xasprintf("snapshot `%s`", name), *sfix = xasprintf("`berth snapshot rm -f %s`", name);
  struct buf b = {0};
  for (const char *p = msg; *p;) {
    if (str_has_prefix(p, img)) buf_append(&b, snap, strlen(snap)), p += strlen(img);
    else if (str_has_prefix(p, fix)) buf_append(&b, sfix, strlen(sfix)), p += strlen(fix);
    else buf_append(&b, p++, 1);
  }
  buf_append(&b, "", 1);
  return b.data;
}

static int snapshot_rm(int argc, char **argv, bool json, bool force) {
  int rc = 0, n = 0;
  json_t *all = json_array();
  for (int i = 0; i < argc; i++) {
    if (argv[i][0] == '-') continue;
    n++;
    const char *name = argv[i];
    char *res = NULL;
    berth_error_t err = NULL;
    int r;
    if (!berth_snapshot_name_valid(name))
      r = berth_error(&err, -EINVAL, "`%.80s` is no snapshot name (1-63 lowercase letters, digits, `-`, `_`, `.`); see `berth snapshot ls`",
                      name);
    else {
      cleanup_free char *ref = berth_snapshot_ref(name);
      r = berth_rmi(ref, force, &res, &err);
      if (r < 0 && err && err->status == ENOENT) {
        berth_error_free(err);
        err = NULL;
        berth_error(&err, -ENOENT, "no snapshot `%s` (see `berth snapshot ls`)", name);
      } else if (r < 0 && err && err->status == EBUSY) { /* in this command's terms */
        char *m = snapshot_words(err->msg, ref, name);
        free(err->msg);
        err->msg = m;
      }
    }
    if (r < 0) {
      rc = EXIT_BERTH;
      if (json) json_array_append_new(all, json_pack("{s:s, s:s}", "snapshot", name, "error", err->msg));
      else fprintf(stderr, "berth: error: %s\n", err->msg);
      berth_error_free(err);
      continue;
    }
    json_t *o = json_loads(res, 0, NULL);
    free(res);
    json_object_set_new(o, "snapshot", json_string(name));
    if (!json) {
      json_t *kept = json_object_get(o, "kept_for");
      if (json_array_size(kept))
        printf("Deleted snapshot %s (its image stays, unnamed, while container %s uses it)\n", name,
               json_string_value(json_array_get(kept, 0)));
      else printf("Deleted snapshot %s\n", name);
    }
    json_array_append_new(all, o);
  }
  if (!n) {
    fprintf(stderr, "berth snapshot rm: expected NAME...; see `berth snapshot --help`\n");
    rc = EXIT_BERTH;
  } else if (json) cli_print_json(all);
  json_decref(all);
  return rc;
}

int cmd_snapshot(int argc, char **argv) {
  bool json = false, force = false;
  const char *sub = argc > 1 ? argv[1] : NULL;
  if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
    fputs(SNAPSHOT_HELP, sub ? stdout : stderr);
    return sub ? 0 : EXIT_BERTH;
  }
  bool rm = !strcmp(sub, "rm");
  if (!rm && strcmp(sub, "ls")) {
    fprintf(stderr, "berth snapshot: unknown subcommand `%s`; see `berth snapshot --help`\n", sub);
    return EXIT_BERTH;
  }
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (rm && (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--force"))) force = true;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fputs(SNAPSHOT_HELP, stdout), 0;
    else if (argv[i][0] == '-') return cli_unknown_option(rm ? "snapshot rm" : "snapshot ls", argv[i]);
    else if (!rm) {
      fprintf(stderr, "berth snapshot ls: takes no NAME; see `berth snapshot --help`\n");
      return EXIT_BERTH;
    }
  }
  return rm ? snapshot_rm(argc - 2, argv + 2, json, force) : snapshot_ls(json);
}
