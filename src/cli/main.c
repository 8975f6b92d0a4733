/* berth command line: global options, the help and the dispatch to the
 * commands (the other files of src/cli; what they print is output.c's).
 * Human output by default, JSON with --json; exit codes follow Docker: 125
 * when berth itself fails. */
#define _GNU_SOURCE
#include <jansson.h>
#include <string.h>

#include "berth.h"
#include "util/util.h"

#include "cli/cli.h"
#include "runtime/container.h"

static const char *MAIN_HELP = "Usage: berth [--debug] COMMAND [OPTIONS]\n\n"
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
                 "images and networks): `source <(berth completion bash)`.\n",
                 stdout),
           0;
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
  if (!strcmp(cmd, "oci")) return oci_main(argc, argv);
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
  /* berth-oci (a link to berth): runc's command line */
  const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  if (!strcmp(base, "berth-oci")) return oci_main(argc, argv);
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
