/* berth logs / stop / start / restart / kill / autostart */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth.h"
#include "cli/cli.h"
#include "util/config.h"
#include "runtime/container.h"
#include "runtime/logs.h"

static const char *LOGS_HELP = "Usage: berth logs [OPTIONS] NAME\n\n"
                               "Print a service container's output: its main process's stdout (to stdout) and\n"
                               "stderr (to stderr), kept in its log (capped: config log_max_size x log_max_files,\n"
                               "default 10m x 3).\n\n"
                               "  -f, --follow         keep printing what comes, until the container stops\n"
                               "  -n, --tail N         only the last N lines\n"
                               "      --since T        from T: 2026-12-03T12:00:00Z, unix seconds, or a duration (10m, 1h30m)\n"
                               "      --until T        up to T\n"
                               "  -t, --timestamps     prefix each line with its time\n"
                               "      --network        instead: what the container's egress policy refused (names and\n"
                               "                       connections, with their times; -n applies; --json as JSON)\n";

static bool still_running(void *arg) {
  json_t *st = container_state(arg);
  bool r = st && !strcmp(container_live_status(st), "running");
  /* restarting counts: the next run's output follows */
  if (st && !strcmp(json_string_value(json_object_get(st, "status")) ?: "", "restarting")) r = true;
  json_decref(st);
  return r;
}

int cmd_logs(int argc, char **argv) {
  static struct option opts[] = {
      {"follow", no_argument, 0, 'f'},      {"tail", required_argument, 0, 'n'}, {"since", required_argument, 0, 'S'},
      {"until", required_argument, 0, 'U'}, {"timestamps", no_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
      {"network", no_argument, 0, 'N'},     {"json", no_argument, 0, 'J'},       {0, 0, 0, 0}};
  struct log_query q = {.tail = -1};
  bool network = false, json = false;
  optind = 1;
  opterr = 0;
  int op;
  berth_error_t err = NULL;
  while ((op = getopt_long(argc, argv, "+fn:th", opts, NULL)) != -1) {
    switch (op) {
    case 'f': q.follow = true; break;
    case 't': q.timestamps = true; break;
    case 'n': {
      char *end;
      long long n = strtoll(optarg, &end, 10);
      if (!strcmp(optarg, "all")) n = -1, end = optarg + 3;
      if (*end || n < -1) {
        fprintf(stderr, "berth logs: --tail expects a number of lines, got `%s`\n", optarg);
        return EXIT_BERTH;
      }
      q.tail = n;
      break;
    }
    case 'S':
    case 'U':
      if (log_parse_time(optarg, op == 'S' ? &q.since : &q.until, &err) < 0) {
        fprintf(stderr, "berth logs: --%s: %s\n", op == 'S' ? "since" : "until", err->msg);
        berth_error_free(err);
        return EXIT_BERTH;
      }
      break;
    case 'h': return fputs(LOGS_HELP, stdout), 0;
    case 'N': network = true; break;
    case 'J': json = true; break;
    default: return cli_unknown_option("logs", argv[optind - 1]);
    }
  }
  if (argc - optind != 1) {
    fprintf(stderr, "berth logs: expected one container name; see `berth logs --help`\n");
    return EXIT_BERTH;
  }
  const char *name = argv[optind];
  if (network) return cli_egress_records(name, q.tail, json); /* the egress policy's refusals */
  if (json) return cli_unknown_option("logs", "--json");
  json_t *st = container_state(name);
  if (!st) {
    fprintf(stderr, "berth: error: Container not found: %s\n", name);
    return 1;
  }
  bool service = !strcmp(json_string_value(json_object_get(st, "mode")) ?: "", "service");
  json_decref(st);
  if (!service) fprintf(stderr, "berth logs: %s is a dev container: no main process output is kept (exec prints each command's)\n", name);
  cleanup_free char *cdir = container_dir(name);
  signal(SIGPIPE, SIG_DFL); /* `berth logs -f | head` ends quietly */
  if (log_read(cdir, &q, STDOUT_FILENO, STDERR_FILENO, still_running, (void *)name, &err) < 0) return cli_fail(false, err);
  return 0;
}

/* NAME... with -t/--time SECONDS (stop, restart) or -s/--signal SIG (kill) */
enum verb { V_STOP, V_START, V_RESTART, V_KILL };
static const char *VERB_HELP[] = {"Usage: berth stop [-t SECONDS] NAME...\n\n"
                                  "Stop containers: the image's StopSignal (else SIGTERM) to the main process, SIGKILL\n"
                                  "after the grace period (default 10 s). The container stays, with its writable layer,\n"
                                  "config, mounts and network, for `berth start`; its restart policy does not bring it back.\n\n"
                                  "  -t, --time S         seconds before SIGKILL (default 10)\n"
                                  "      --json           JSON output\n",
                                  "Usage: berth start NAME...\n"
                                  "       berth start --all-persistent\n\n"
                                  "Start stopped containers again: same name, writable layer, mounts, ports, network and\n"
                                  "limits. Provisioning does not run again. Variables that came from the host (passed\n"
                                  "through, forwarded credentials) are not kept across a stop: the reply names them.\n\n"
                                  "      --all-persistent start every persistent container (and those with restart policy\n"
                                  "                       always or unless-stopped) that is not running: the boot command\n"
                                  "                       `berth autostart enable` installs\n"
                                  "      --json           JSON output\n",
                                  "Usage: berth restart [-t SECONDS] NAME...\n\nStop, then start containers (see `berth stop --help`).\n\n"
                                  "  -t, --time S         seconds before SIGKILL (default 10)\n"
                                  "      --json           JSON output\n",
                                  "Usage: berth kill [-s SIGNAL] NAME...\n\n"
                                  "Send a signal (default SIGKILL) to a container's main process (a dev container: its init,\n"
                                  "which takes TERM, INT and HUP as a stop).\n\n"
                                  "  -s, --signal SIG     KILL, TERM, INT, HUP, USR1, 15, SIGRTMIN+3, ...\n"
                                  "      --json           JSON output\n"};

static int verb_cmd(enum verb v, const char *cmd, int argc, char **argv) {
  static struct option opts[] = {{"time", required_argument, 0, 't'},
                                 {"timeout", required_argument, 0, 't'},
                                 {"signal", required_argument, 0, 's'},
                                 {"json", no_argument, 0, 'j'},
                                 {"all-persistent", no_argument, 0, 'a'},
                                 {"help", no_argument, 0, 'h'},
                                 {0, 0, 0, 0}};
  int timeout = -1, sig = SIGKILL;
  bool json = false, all = false;
  optind = 1;
  opterr = 0;
  int op;
  while ((op = getopt_long(argc, argv, "+t:s:h", opts, NULL)) != -1) {
    if (op == 'h') return fputs(VERB_HELP[v], stdout), 0;
    if (op == 'j') json = true;
    else if (op == 't' && (v == V_STOP || v == V_RESTART)) {
      char *end;
      long t = strtol(optarg, &end, 10);
      if (*end || t < 0 || t > 86400) {
        fprintf(stderr, "berth %s: -t expects seconds, got `%s`\n", cmd, optarg);
        return EXIT_BERTH;
      }
      timeout = (int)t;
    } else if (op == 's' && v == V_KILL) {
      sig = container_parse_signal(optarg);
      if (sig <= 0) {
        fprintf(stderr, "berth kill: unknown signal `%s` (KILL, TERM, INT, HUP, USR1, 15, ...)\n", optarg);
        return EXIT_BERTH;
      }
    } else if (op == 'a' && v == V_START) all = true;
    else return cli_unknown_option(cmd, argv[optind - 1]);
  }
  if (all) {
    if (optind < argc) {
      fprintf(stderr, "berth start: --all-persistent takes no names\n");
      return EXIT_BERTH;
    }
    json_t *out = NULL;
    berth_error_t err = NULL;
    if (container_start_persistent(&out, &err) < 0) return cli_fail(json, err);
    if (json) cli_print_json(out);
    else {
      size_t i;
      json_t *x;
      json_array_foreach(json_object_get(out, "started"), i, x) printf("%s\n", json_string_value(x));
      json_array_foreach(json_object_get(out, "failed"), i, x)
          fprintf(stderr, "berth: start %s: %s\n", json_string_value(json_object_get(x, "container")),
                  json_string_value(json_object_get(x, "error")));
    }
    int rc = json_is_true(json_object_get(out, "success")) ? 0 : 1;
    json_decref(out);
    return rc;
  }
  if (optind >= argc) {
    fprintf(stderr, "berth %s: expected at least one container name; see `berth %s --help`\n", cmd, cmd);
    return EXIT_BERTH;
  }
  int rc = 0;
  json_t *all_out = json_array();
  for (int i = optind; i < argc; i++) {
    json_t *out = NULL;
    berth_error_t err = NULL;
    int r = v == V_STOP      ? container_stop(argv[i], timeout, &out, &err)
            : v == V_START   ? container_start(argv[i], &out, &err)
            : v == V_RESTART ? container_restart(argv[i], timeout, &out, &err)
                             : container_kill(argv[i], sig, &out, &err);
    if (r < 0) {
      if (json) json_array_append_new(all_out, json_pack("{s:s, s:s}", "container", argv[i], "error", err->msg));
      else fprintf(stderr, "berth: error: %s\n", err->msg);
      berth_error_free(err);
      rc = 1;
      continue;
    }
    if (json) json_array_append(all_out, out);
    else {
      printf("%s\n", argv[i]);
      json_t *d = json_object_get(out, "env_dropped");
      if (json_array_size(d)) {
        fprintf(stderr, "note: %s: not restored (they came from the host and live only while it runs):", argv[i]);
        size_t k;
        json_t *x;
        json_array_foreach(d, k, x) fprintf(stderr, " %s", json_string_value(x));
        fputc('\n', stderr);
      }
    }
    json_decref(out);
  }
  if (json) cli_print_json(json_array_size(all_out) == 1 ? json_array_get(all_out, 0) : all_out);
  json_decref(all_out);
  return rc;
}

int cmd_stop(int argc, char **argv) { return verb_cmd(V_STOP, "stop", argc, argv); }
int cmd_start(int argc, char **argv) { return verb_cmd(V_START, "start", argc, argv); }
int cmd_restart(int argc, char **argv) { return verb_cmd(V_RESTART, "restart", argc, argv); }
int cmd_kill(int argc, char **argv) { return verb_cmd(V_KILL, "kill", argc, argv); }

/* ---------- autostart: the boot hook ---------- */
static const char *AUTOSTART_HELP = "Usage: berth autostart enable|disable|status [--print]\n\n"
                                    "The boot hook that runs `berth start --all-persistent`: persistent containers (and\n"
                                    "those whose restart policy is always or unless-stopped) come back after a reboot.\n"
                                    "As root a systemd system unit, rootless a systemd user unit (then `loginctl\n"
                                    "enable-linger USER` lets it run without a login). Without systemd it says so and\n"
                                    "prints the command to run at boot.\n\n"
                                    "      --print          print the unit text and change nothing\n";

static char *unit_text(const char *exe, struct berth_config *cfg, bool root) {
  struct buf env = {0};
  const char *vars[] = {"BERTH_ROOT", "BERTH_RUNROOT", "BERTH_CONFIG"};
  for (int i = 0; i < 3; i++)
    if (getenv(vars[i])) {
      cleanup_free char *l = xasprintf("Environment=\"%s=%s\"\n", vars[i], getenv(vars[i]));
      buf_append(&env, l, strlen(l));
    }
  buf_append(&env, "", 1);
  char *t = xasprintf("# berth autostart: generated by `berth autostart enable`\n"
                      "[Unit]\n"
                      "Description=berth: start persistent containers\n"
                      "Documentation=man:berth(1) https://github.com/berth/berth/blob/main/docs/cli.md\n"
                      "Wants=network-online.target\n"
                      "After=network-online.target local-fs.target\n\n"
                      "[Service]\n"
                      "Type=oneshot\n"
                      "RemainAfterExit=yes\n"
                      "%s"
                      "ExecStart=%s start --all-persistent\n"
                      "# the containers' monitors outlive this unit's process\n"
                      "KillMode=none\n\n"
                      "[Install]\n"
                      "WantedBy=%s\n",
                      env.data, exe, root ? "multi-user.target" : "default.target");
  (void)cfg;
  buf_free(&env);
  return t;
}

int cmd_autostart(int argc, char **argv) {
  bool print = false;
  const char *what = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fputs(AUTOSTART_HELP, stdout), 0;
    if (!strcmp(argv[i], "--print")) print = true;
    else if (!what && (!strcmp(argv[i], "enable") || !strcmp(argv[i], "disable") || !strcmp(argv[i], "status"))) what = argv[i];
    else return cli_unknown_option("autostart", argv[i]);
  }
  if (!what) {
    fputs(AUTOSTART_HELP, stderr);
    return EXIT_BERTH;
  }
  berth_error_t err = NULL;
  struct berth_config *cfg = config_get(&err);
  if (!cfg) return cli_fail(false, err);
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return fprintf(stderr, "berth autostart: cannot find berth's own path\n"), EXIT_BERTH;
  exe[n] = '\0';
  bool root = geteuid() == 0;
  const char *ud = getenv("BERTH_SYSTEMD_UNIT_DIR"); /* tests, packagers */
  cleanup_free char *dir = ud ? xstrdup(ud) : root ? xstrdup("/etc/systemd/system") : xasprintf("%s/.config/systemd/user", cfg->home);
  cleanup_free char *path = xasprintf("%s/berth-autostart.service", dir);
  cleanup_free char *text = unit_text(exe, cfg, root);
  bool systemd = access("/run/systemd/system", F_OK) == 0;
  const char *sc = root ? "systemctl" : "systemctl --user";
  cleanup_free char *boot_cmd = xasprintf("%s%s%s%s start --all-persistent", getenv("BERTH_ROOT") ? "BERTH_ROOT=" : "",
                                          getenv("BERTH_ROOT") ?: "", getenv("BERTH_ROOT") ? " " : "", exe);
  if (print || !strcmp(what, "status")) {
    bool present = access(path, F_OK) == 0;
    if (!strcmp(what, "status"))
      printf("unit: %s (%s)\nsystemd: %s\nboot command: %s\n\n", path, present ? "installed" : "not installed",
             systemd ? "running" : "not running here", boot_cmd);
    fputs(text, stdout);
    return 0;
  }
  if (!strcmp(what, "disable")) {
    if (systemd) {
      cleanup_free char *c = xasprintf("%s disable berth-autostart.service >/dev/null 2>&1", sc);
      if (system(c) != 0) {}
    }
    if (unlink(path) < 0 && errno != ENOENT) return fprintf(stderr, "berth autostart: remove %s: %s\n", path, strerror(errno)), 1;
    printf("removed %s\n", path);
    return 0;
  }
  if (mkdir_p(dir, 0755, &err) < 0 || write_file_replace(path, text, strlen(text), 0644, true, &err) < 0) return cli_fail(false, err);
  printf("wrote %s:\n\n%s\n", path, text);
  if (!systemd) {
    printf("systemd is not running on this host: nothing was enabled. Run this at boot instead\n"
           "(from /etc/rc.local, a cron `@reboot` line, or your init system):\n\n    %s\n",
           boot_cmd);
    return 0;
  }
  cleanup_free char *c = xasprintf("%s daemon-reload && %s enable berth-autostart.service", sc, sc);
  int r = system(c);
  if (r != 0) return fprintf(stderr, "berth autostart: `%s` failed; run it yourself\n", c), 1;
  printf("enabled: %s\n", c);
  if (!root)
    printf("rootless: a user unit runs at boot only with lingering on: `loginctl enable-linger %s`\n",
           getenv("USER") ? getenv("USER") : "$USER");
  return 0;
}
