/* berth command line. Human output by default, JSON with --json; exit
 * codes follow Docker: 125 when berth itself fails. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <string.h>

#include "berth.h"
#include "util.h"

#include "cli.h"
#include "container.h"

static const char *PULL_HELP =
    "Usage: berth pull [OPTIONS] REF\n\n"
    "Pull an image from a registry into berth's store.\n\n"
    "  --platform OS/ARCH[/VARIANT]  choose from a multi-platform image (default: this host)\n"
    "  -q, --quiet                   no progress output\n"
    "      --json                    print the result as JSON only\n";

static const char *LOAD_HELP =
    "Usage: berth load [OPTIONS] PATH\n\n"
    "Import an OCI image layout (directory or tar) or a `docker save` archive.\n\n"
    "  --name REF     name for the image (default: from the archive)\n"
    "  -q, --quiet    no progress output\n"
    "      --json     print the result as JSON only\n";

static const char *IMAGES_HELP =
    "Usage: berth images [--json]\n\nList images in berth's store.\n";
static const char *RMI_HELP =
    "Usage: berth rmi [-f] [--json] REF...\n\n"
    "Remove image names; with an image's last name the image goes, with every layer no other\n"
    "image or container uses. REF may be a digest (sha256:HEX or 4+ of its first hex digits):\n"
    "every name of that image goes. An image a container uses is refused, naming the container.\n\n"
    "  -f, --force   take the names of an image in use away anyway: the image stays, unnamed,\n"
    "                until no container uses it (`berth system prune` removes it then)\n"
    "      --json    the results as JSON\n";

struct common {
  bool json, quiet, help, force;
  const char *platform, *name;
};

static int parse(const char *cmd, int argc, char **argv, struct common *c) {
  static struct option opts[] = {{"json", no_argument, 0, 'j'},         {"quiet", no_argument, 0, 'q'},
                                 {"help", no_argument, 0, 'h'},         {"platform", required_argument, 0, 'p'},
                                 {"name", required_argument, 0, 'n'},   {"force", no_argument, 0, 'f'},
                                 {0, 0, 0, 0}};
  optind = 1;
  opterr = 0;
  int o;
  while ((o = getopt_long(argc, argv, "+qhf", opts, NULL)) != -1) {
    switch (o) {
    case 'j': c->json = true; break;
    case 'q': c->quiet = true; break;
    case 'h': c->help = true; break;
    case 'p': c->platform = optarg; break;
    case 'n': c->name = optarg; break;
    case 'f':
      if (strcmp(cmd, "rmi")) return cli_usage_error(cmd, "unknown option `%s`", argv[optind - 1]);
      c->force = true;
      break;
    default: return cli_usage_error(cmd, "unknown option `%s`", argv[optind - 1]);
    }
  }
  return 0;
}

static int cmd_pull(int argc, char **argv) {
  struct common c = {0};
  if (parse("pull", argc, argv, &c)) return EXIT_BERTH;
  if (c.help) return fputs(PULL_HELP, stdout), 0;
  if (optind != argc - 1) return cli_usage_error("pull", "expected exactly one image reference%s", "");
  struct berth_pull_options po = {.platform = c.platform, .quiet = c.quiet, .json_progress = c.json};
  char *res = NULL;
  berth_error_t err = NULL;
  if (berth_image_pull(argv[optind], &po, &res, &err) < 0) return cli_fail(c.json, err);
  if (c.json) cli_print_json_text(res);
  else if (!c.quiet) cli_print_pull_human(res);
  free(res);
  return 0;
}

static int cmd_load(int argc, char **argv) {
  struct common c = {0};
  if (parse("load", argc, argv, &c)) return EXIT_BERTH;
  if (c.help) return fputs(LOAD_HELP, stdout), 0;
  if (optind != argc - 1) return cli_usage_error("load", "expected exactly one PATH%s", "");
  struct berth_pull_options po = {.quiet = c.quiet, .json_progress = c.json};
  char *res = NULL;
  berth_error_t err = NULL;
  if (berth_image_load(argv[optind], c.name, &po, &res, &err) < 0) return cli_fail(c.json, err);
  if (c.json) cli_print_json_text(res);
  else if (!c.quiet) cli_print_pull_human(res);
  free(res);
  return 0;
}

static int cmd_images(int argc, char **argv) {
  struct common c = {0};
  if (parse("images", argc, argv, &c)) return EXIT_BERTH;
  if (c.help) return fputs(IMAGES_HELP, stdout), 0;
  char *res = NULL;
  berth_error_t err = NULL;
  if (berth_image_list(&res, &err) < 0) return cli_fail(c.json, err);
  if (c.json) {
    cli_print_json_text(res);
    free(res);
    return 0;
  }
  json_t *arr = json_loads(res, 0, NULL);
  free(res);
  printf("%-50s %-19s %-14s %10s %s\n", "NAME", "DIGEST", "PLATFORM", "SIZE", "LAYERS");
  size_t i;
  json_t *img;
  json_array_foreach(arr, i, img) {
    json_t *names = json_object_get(img, "names");
    char sz[32];
    human_size((uint64_t)json_integer_value(json_object_get(img, "size")), sz, sizeof sz);
    size_t nn = json_array_size(names);
    for (size_t k = 0; k < (nn ? nn : 1); k++)
      printf("%-50s %-19.19s %-14s %10s %zu\n", nn ? json_string_value(json_array_get(names, k)) : "<none>",
             json_string_value(json_object_get(img, "digest")), json_string_value(json_object_get(img, "platform")), sz,
             json_array_size(json_object_get(img, "layers")));
  }
  json_decref(arr);
  return 0;
}

static int cmd_rmi(int argc, char **argv) {
  struct common c = {0};
  if (parse("rmi", argc, argv, &c)) return EXIT_BERTH;
  if (c.help) return fputs(RMI_HELP, stdout), 0;
  if (optind >= argc) return cli_usage_error("rmi", "expected at least one image reference%s", "");
  int rc = 0;
  json_t *all = json_array();
  for (int i = optind; i < argc; i++) {
    char *res = NULL;
    berth_error_t err = NULL;
    if (berth_rmi(argv[i], c.force, &res, &err) < 0) {
      if (c.json) json_array_append_new(all, json_pack("{s:s, s:s}", "image", argv[i], "error", err->msg));
      else fprintf(stderr, "berth: error: %s\n", err->msg);
      berth_error_free(err);
      rc = EXIT_BERTH;
      continue;
    }
    json_t *j = json_loads(res, 0, NULL);
    free(res);
    if (c.json) json_array_append(all, j);
    else {
      printf("Untagged: %s\n", json_string_value(json_object_get(j, "untagged")));
      size_t k;
      json_t *d;
      json_array_foreach(json_object_get(j, "deleted_layers"), k, d) printf("Deleted layer: %s\n", json_string_value(d));
      json_t *kept = json_object_get(j, "kept_for");
      if (json_array_size(kept)) {
        printf("Kept image %s, unnamed: container%s", json_string_value(json_object_get(j, "digest")), json_array_size(kept) > 1 ? "s" : "");
        json_array_foreach(kept, k, d) printf("%s %s", k ? "," : "", json_string_value(d));
        printf(" use%s it (`berth system prune` removes it once they are gone)\n", json_array_size(kept) > 1 ? "" : "s");
      }
    }
    json_decref(j);
  }
  if (c.json) {
    char *t = json_dumps(all, JSON_INDENT(2));
    cli_print_json_text(t);
    free(t);
  }
  json_decref(all);
  return rc;
}

static const char *MAIN_HELP =
    "Usage: berth [--debug] COMMAND [OPTIONS]\n\n"
    "Daemonless, rootless-first development containers.\n\n"
    "Images:\n"
    "  pull       pull an image from a registry\n"
    "  load       import an OCI layout or docker save archive\n"
    "  images     list images\n"
    "  rmi        remove images\n"
    "  commit     make an image from a container\n"
    "  snapshot   the snapshots agents make: ls, rm\n\n"
    "Containers:\n"
    "  create     create and start a container\n"
    "  run        create, run a command, optionally remove (--rm)\n"
    "  exec       run a command in a running container (-it for a terminal)\n"
    "  ls, ps     list containers\n"
    "  status     show one container (--health checks it)\n"
    "  rm         stop and remove containers\n"
    "  logs       a service container's output (-f follows)\n"
    "  stop       stop containers, keeping them; start, restart: bring them back\n"
    "  kill       send a signal to a container's main process\n"
    "  inspect    a container's or an image's whole record, as JSON\n"
    "  stats      resource use of running containers: CPU, memory, network, block I/O\n"
    "  top        the processes running in a container\n\n"
    "  cp         copy files: berth cp HOSTPATH NAME:PATH, berth cp NAME:PATH HOSTPATH\n"
    "  hint       the command that opens a shell in a container\n"
    "  network    named networks: create, rm, ls\n"
    "  egress     egress test NAME HOST[:PORT]: would the container's policy allow it?\n"
    "  system     disk use (df) and removing what nothing needs (prune)\n\n"
    "Agents and hosts:\n"
    "  tool       one JSON request of the containers tool contract -> one JSON reply\n"
    "  mcp        Model Context Protocol server on stdio (tool `containers`)\n"
    "  preflight  check this host; prints the exact fix for each problem\n"
    "  autostart  the boot hook that starts persistent containers (enable, disable, status)\n\n"
    "Other:\n"
    "  version    print the version\n"
    "  completion bash completion: source <(berth completion bash)\n\n"
    "Every command takes --help (or `berth help COMMAND`) and --json.\n";

extern const char _binary_scripts_completion_berth_bash_start[];
extern const char _binary_scripts_completion_berth_bash_end[];

static int cmd_completion(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "bash")) {
    fwrite(_binary_scripts_completion_berth_bash_start, 1,
           (size_t)(_binary_scripts_completion_berth_bash_end - _binary_scripts_completion_berth_bash_start), stdout);
    return 0;
  }
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
    return fputs("Usage: berth completion bash\n\nPrint bash completion for berth (commands, flags, and the names of containers,\n"
                 "images and networks): `source <(berth completion bash)`.\n", stdout), 0;
  fprintf(stderr, "berth completion: expected `bash`; see `berth completion --help`\n");
  return EXIT_BERTH;
}

#define NO_SUCH_COMMAND (-1000)
static int dispatch(const char *cmd, int argc, char **argv) {
  if (!strcmp(cmd, "pull")) return cmd_pull(argc, argv);
  if (!strcmp(cmd, "load")) return cmd_load(argc, argv);
  if (!strcmp(cmd, "images")) return cmd_images(argc, argv);
  if (!strcmp(cmd, "rmi")) return cmd_rmi(argc, argv);
  if (!strcmp(cmd, "__monitor-exit") && argc == 3) return container_monitor_exit(argv[1], atoi(argv[2])) < 0;
  if (!strcmp(cmd, "create")) return cmd_create(argc, argv);
  if (!strcmp(cmd, "run")) return cmd_run(argc, argv);
  if (!strcmp(cmd, "exec")) return cmd_exec(argc, argv);
  if (!strcmp(cmd, "ls") || !strcmp(cmd, "ps")) return cmd_ls(argc, argv);
  if (!strcmp(cmd, "status")) return cmd_status(argc, argv);
  if (!strcmp(cmd, "rm")) return cmd_rm(argc, argv);
  if (!strcmp(cmd, "tool")) return cmd_tool(argc, argv);
  if (!strcmp(cmd, "mcp")) return cmd_mcp(argc, argv);
  if (!strcmp(cmd, "preflight")) return cmd_preflight(argc, argv);
  if (!strcmp(cmd, "hint")) return cmd_hint(argc, argv);
  if (!strcmp(cmd, "cp")) return cmd_cp(argc, argv);
  if (!strcmp(cmd, "network")) return cmd_network(argc, argv);
  if (!strcmp(cmd, "logs")) return cmd_logs(argc, argv);
  if (!strcmp(cmd, "stop")) return cmd_stop(argc, argv);
  if (!strcmp(cmd, "start")) return cmd_start(argc, argv);
  if (!strcmp(cmd, "restart")) return cmd_restart(argc, argv);
  if (!strcmp(cmd, "kill")) return cmd_kill(argc, argv);
  if (!strcmp(cmd, "autostart")) return cmd_autostart(argc, argv);
  if (!strcmp(cmd, "egress")) return cmd_egress(argc, argv);
  if (!strcmp(cmd, "inspect")) return cmd_inspect(argc, argv);
  if (!strcmp(cmd, "stats")) return cmd_stats(argc, argv);
  if (!strcmp(cmd, "top")) return cmd_top(argc, argv);
  if (!strcmp(cmd, "system")) return cmd_system(argc, argv);
  if (!strcmp(cmd, "commit")) return cmd_commit(argc, argv);
  if (!strcmp(cmd, "snapshot")) return cmd_snapshot(argc, argv);
  if (!strcmp(cmd, "version")) return printf("berth %s\n", berth_version()), 0;
  if (!strcmp(cmd, "completion")) return cmd_completion(argc, argv);
  return NO_SUCH_COMMAND;
}

int main(int argc, char **argv) {
  proc_title_init(argc, argv);
  berth_trace("main %s", argc > 1 ? argv[1] : "");
  berth_is_cli = true;
  int i = 1;
  while (i < argc && argv[i][0] == '-') {
    if (!strcmp(argv[i], "--debug")) berth_log_level = BERTH_LOG_DEBUG;
    else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) berth_log_level = BERTH_LOG_INFO;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fputs(MAIN_HELP, stdout), 0;
    else if (!strcmp(argv[i], "--version")) return printf("berth %s\n", berth_version()), 0;
    else return cli_usage_error("", "unknown option `%s`", argv[i]);
    i++;
  }
  const char *lvl = getenv("BERTH_LOG");
  if (lvl && !strcmp(lvl, "debug")) berth_log_level = BERTH_LOG_DEBUG;
  else if (lvl && !strcmp(lvl, "info")) berth_log_level = BERTH_LOG_INFO;
  if (i >= argc) {
    fputs(MAIN_HELP, stderr);
    return EXIT_BERTH;
  }
  const char *cmd = argv[i];
  /* a one-shot command, which exits when done; the MCP server lives on,
   * as a program embedding the library does */
  berth_is_cli = strcmp(cmd, "mcp") != 0;
  int sub_argc = argc - i;
  char **sub_argv = argv + i;
  if (!strcmp(cmd, "help")) {
    if (sub_argc < 2) return fputs(MAIN_HELP, stdout), 0;
    /* berth help CMD: CMD --help */
    char *hargv[] = {sub_argv[1], "--help", NULL};
    if (strcmp(sub_argv[1], "help") && strcmp(sub_argv[1], "__monitor-exit")) {
      int r = dispatch(sub_argv[1], 2, hargv);
      if (r != NO_SUCH_COMMAND) return r;
    }
    fprintf(stderr, "berth help: unknown command `%s`; see `berth --help`\n", sub_argv[1]);
    return EXIT_BERTH;
  }
  int r = dispatch(cmd, sub_argc, sub_argv);
  if (r != NO_SUCH_COMMAND) return r;
  fprintf(stderr, "berth: unknown command `%s`; see `berth --help`\n", cmd);
  return EXIT_BERTH;
}
