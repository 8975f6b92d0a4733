/* berth create / run / exec / ls / status / rm */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "berth.h"
#include "bundle/cdi.h"
#include "runtime/cgroup.h"
#include "cli/cli.h"
#include "runtime/container.h"
#include "util/security.h"
#include "api/api.h"
#include "network/network.h"
#include "runtime/logs.h"

static const char *CREATE_HELP = "Usage: berth create [OPTIONS] IMAGE [COMMAND [ARG...]]\n"
                                 "       berth create [OPTIONS] --image IMAGE\n\n"
                                 "Create and start a container (detached). A service container runs COMMAND (else the\n"
                                 "image's Entrypoint + Cmd) as its main process, its output kept for `berth logs`; a dev\n"
                                 "container (an image whose command is a bare shell, --purpose, --setup, --keep-alive)\n"
                                 "has berth's init alone, kept alive for `berth exec`.\n\n"
                                 "      --entrypoint CMD replace the image's Entrypoint (a string, run as one program)\n"
                                 "      --keep-alive     a dev container whatever the image's command\n"
                                 "  -u, --user U[:G]     the main process's user (default the image's)\n"
                                 "      --restart P      restart policy: no (default), on-failure[:N], always, unless-stopped\n"
                                 "      --ttl DURATION   remove the container after this long (90s, 10m, 2h)\n"
                                 "  --name NAME          container name (default: <purpose or env>-<6 hex>)\n"
                                 "  --image REF          image (pulled when absent)\n"
                                 "  --purpose P          purpose profile: python, node, rust, go, general, amplifier, clean, try-repo\n"
                                 "  --repo URL           try-repo: the repository to clone into the workspace\n"
                                 "  --setup CMD          setup command, run after provisioning (repeatable)\n"
                                 "  --env-passthrough M  host variables passed in: auto (default), all, none\n"
                                 "  -w, --workdir DIR    working directory (default /workspace)\n"
                                 "  -v, --volume H:C[:ro] bind mount host path H at C\n"
                                 "  -p, --publish [IP:]H:C[/udp]  publish container port C on host port H (127.0.0.1 unless IP)\n"
                                 "      --no-mount-cwd   do not bind the current directory at the workdir (create binds it by default)\n"
                                 "      --mount-cwd      bind the current directory at the workdir (run does not by default)\n"
                                 "  -e, --env K=V        environment variable\n"
                                 "      --memory SIZE    memory limit (default 4g)\n"
                                 "      --disk SIZE      size of the writable layer (ENOSPC past it; root only; config disk_limit)\n"
                                 "      --cpus N         CPU limit in cores\n"
                                 "      --pids N         process limit (default 256)\n"
                                 "      --network MODE   bridge (default: own namespace, outbound, published ports), none, host,\n"
                                 "                       or a named network (berth network create NAME)\n"
                                 "      --egress SPEC    an egress policy: the container reaches only what it allows (repeatable):\n"
                                 "                         allow:ENTRY[,ENTRY...]  ENTRY is HOST[:PORT[-PORT]][/tcp|/udp], HOST a name\n"
                                 "                           (deb.debian.org, *.pypi.org), an address or CIDR (10.1.2.0/24,\n"
                                 "                           [2001:db8::/32]:443); other names get NXDOMAIN, other addresses an\n"
                                 "                           immediate refusal; the purpose profile's list is added\n"
                                 "                         deny       a policy that allows nothing else\n"
                                 "                         host       the host's addresses too (host.berth.internal); default: denied\n"
                                 "                         nolog      do not record refusals (`berth logs --network NAME`)\n"
                                 "                         noprofile  without the purpose profile's list\n"
                                 "      --egress-file F  the same from a file: one entry a line (# comments), or the tool's\n"
                                 "                       JSON {allow, deny_host, log, profile}; `berth egress test` checks one\n"
                                 "      --persistent     record the container as persistent\n"
                                 "      --device D       a device (repeatable): a CDI name (vendor.com/class=name, from the specs\n"
                                 "                       in /etc/cdi, /var/run/cdi) or a host node /dev/x[:/dev/y][:rwm]\n"
                                 "      --gpus G         GPUs through NVIDIA's CDI names: all, a count (2), or device=ID[,ID...]\n"
                                 "      --seccomp-profile FILE  seccomp profile (OCI or Docker JSON) for its processes\n"
                                 "                       instead of berth's (see docs/security.md)\n"
                                 "      --platform P     platform to pull\n"
                                 "  -q, --quiet          print only the name\n"
                                 "      --json           JSON output\n";

static const char *RUN_HELP = "Usage: berth run [OPTIONS] IMAGE [CMD [ARG...]]\n\n"
                              "Create a container, run CMD in it as its main process (default /bin/sh), and with --rm\n"
                              "remove it. The exit code is CMD's (125: berth failed). The current directory is not\n"
                              "bound unless --mount-cwd (or -v \"$PWD\":/workspace).\n\n"
                              "      --rm             remove the container when CMD ends\n"
                              "  -d, --detach         run in the background as a service container: print its name\n"
                              "                       (output: `berth logs NAME`)\n"
                              "  -u, --user U[:G]     run CMD as this user\n"
                              "  -i, --interactive    keep stdin open\n"
                              "  -t, --tty            allocate a terminal (use -it together)\n"
                              "and every option of `berth create` (see `berth create --help`).\n";

static const char *EXEC_HELP = "Usage: berth exec [OPTIONS] NAME CMD [ARG...]\n\n"
                               "Run a command in a running container, with the same confinement.\n\n"
                               "  -i, --interactive    relay stdin to the command (without it: /dev/null)\n"
                               "  -t, --tty            allocate a terminal (use -it together)\n"
                               "  -e, --env K=V        environment variable\n"
                               "  -w, --workdir DIR    working directory\n"
                               "  -u, --user U[:G]     user (name or id) inside the container\n"
                               "      --timeout S      kill the command and all it started after S seconds (exit 124)\n"
                               "      --setup-caps     run with the setup capability set (Docker's default less CAP_MKNOD),\n"
                               "                       for package managers (apt-get install); default: no capabilities\n"
                               "      --json           capture output and print {returncode, stdout, stderr, timed_out}\n";

static int env_arg(json_t *env, const char *kv) {
  const char *eq = strchr(kv, '=');
  if (!eq || eq == kv) {
    fprintf(stderr, "berth: -e expects K=V, got `%s`\n", kv);
    return -1;
  }
  cleanup_free char *k = strndup(kv, eq - kv);
  json_object_set_new(env, k, json_string(eq + 1));
  return 0;
}

/* -p [IP:]HOST:CTR[/tcp|/udp] */
static int publish_arg(json_t *ports, const char *spec) {
  cleanup_free char *s = strdup(spec);
  const char *proto = "tcp";
  char *slash = strchr(s, '/');
  if (slash) {
    *slash = '\0';
    proto = slash + 1;
  }
  char *parts[3] = {0};
  int n = 0;
  for (char *save_ = NULL, *t = strtok_r(s, ":", &save_); t && n < 3; t = strtok_r(NULL, ":", &save_)) parts[n++] = t;
  const char *ip = n == 3 ? parts[0] : NULL;
  const char *h = n >= 2 ? parts[n - 2] : NULL, *c = n >= 2 ? parts[n - 1] : NULL;
  char *e1 = NULL, *e2 = NULL;
  long hp = h ? strtol(h, &e1, 10) : 0, cp = c ? strtol(c, &e2, 10) : 0;
  if (!h || !c || *e1 || *e2 || hp < 1 || hp > 65535 || cp < 1 || cp > 65535 || (strcmp(proto, "tcp") && strcmp(proto, "udp"))) {
    fprintf(stderr, "berth: -p expects [IP:]HOST:CONTAINER[/tcp|/udp], got `%s`\n", spec);
    return -1;
  }
  json_t *o = json_pack("{s:i, s:i, s:s}", "host", (int)hp, "container", (int)cp, "protocol", proto);
  if (ip) json_object_set_new(o, "host_ip", json_string(ip));
  json_array_append_new(ports, o);
  return 0;
}

static int volume_arg(json_t *mounts, const char *spec) {
  cleanup_free char *s = strdup(spec);
  char *c1 = strchr(s, ':');
  if (!c1) {
    fprintf(stderr, "berth: -v expects HOST:CONTAINER[:ro|rw], got `%s`\n", spec);
    return -1;
  }
  *c1 = '\0';
  char *c2 = strchr(c1 + 1, ':');
  if (c2) *c2 = '\0';
  char *host = realpath(s, NULL);
  json_array_append_new(mounts, json_pack("{s:s, s:s, s:s}", "host", host ? host : s, "container", c1 + 1, "mode", c2 ? c2 + 1 : "rw"));
  free(host);
  return 0;
}

struct create_cli {
  struct create_opts o;
  bool json, quiet, rm, tty, interactive, detach, mount_cwd_set;
  const char *entrypoint, *ttl;
  json_t *env, *mounts, *setup, *ports;
  json_t *devices, *gpu; /* --device, --gpus */
  const char *repo, *passthrough;
  json_t *egress; /* the request's egress object, from --egress and --egress-file */
};

enum {
  O_NAME = 256,
  O_IMAGE,
  O_PURPOSE,
  O_NOCWD,
  O_MEMORY,
  O_CPUS,
  O_PIDS,
  O_NETWORK,
  O_PERSIST,
  O_PLATFORM,
  O_JSON,
  O_RM,
  O_TIMEOUT,
  O_REPO,
  O_SETUP,
  O_PASS,
  O_SECCOMP,
  O_SETUP_CAPS,
  O_MOUNTCWD,
  O_DISK,
  O_ENTRYPOINT,
  O_KEEPALIVE,
  O_RESTART,
  O_TTL,
  O_EGRESS,
  O_EGRESS_FILE,
  O_DEVICE,
  O_GPUS
};

/* parse create's flags; returns index of the first positional or -1 */
static int parse_create(int argc, char **argv, struct create_cli *c, bool run, bool *help) {
  static struct option opts[] = {{"name", required_argument, 0, O_NAME},
                                 {"image", required_argument, 0, O_IMAGE},
                                 {"purpose", required_argument, 0, O_PURPOSE},
                                 {"workdir", required_argument, 0, 'w'},
                                 {"volume", required_argument, 0, 'v'},
                                 {"no-mount-cwd", no_argument, 0, O_NOCWD},
                                 {"env", required_argument, 0, 'e'},
                                 {"memory", required_argument, 0, O_MEMORY},
                                 {"cpus", required_argument, 0, O_CPUS},
                                 {"pids", required_argument, 0, O_PIDS},
                                 {"network", required_argument, 0, O_NETWORK},
                                 {"persistent", no_argument, 0, O_PERSIST},
                                 {"platform", required_argument, 0, O_PLATFORM},
                                 {"quiet", no_argument, 0, 'q'},
                                 {"json", no_argument, 0, O_JSON},
                                 {"help", no_argument, 0, 'h'},
                                 {"rm", no_argument, 0, O_RM},
                                 {"tty", no_argument, 0, 't'},
                                 {"interactive", no_argument, 0, 'i'},
                                 {"repo", required_argument, 0, O_REPO},
                                 {"setup", required_argument, 0, O_SETUP},
                                 {"env-passthrough", required_argument, 0, O_PASS},
                                 {"publish", required_argument, 0, 'p'},
                                 {"seccomp-profile", required_argument, 0, O_SECCOMP},
                                 {"mount-cwd", no_argument, 0, O_MOUNTCWD},
                                 {"disk", required_argument, 0, O_DISK},
                                 {"entrypoint", required_argument, 0, O_ENTRYPOINT},
                                 {"keep-alive", no_argument, 0, O_KEEPALIVE},
                                 {"user", required_argument, 0, 'u'},
                                 {"restart", required_argument, 0, O_RESTART},
                                 {"ttl", required_argument, 0, O_TTL},
                                 {"detach", no_argument, 0, 'd'},
                                 {"egress", required_argument, 0, O_EGRESS},
                                 {"egress-file", required_argument, 0, O_EGRESS_FILE},
                                 {"device", required_argument, 0, O_DEVICE},
                                 {"gpus", required_argument, 0, O_GPUS},
                                 {0, 0, 0, 0}};
  c->env = json_object();
  c->mounts = json_array();
  c->setup = json_array();
  c->ports = json_array();
  c->devices = json_array();
  /* create binds the current directory at the workdir (the guide's
   * mount_cwd); run does not, as no Docker or Podman user expects */
  c->o.mount_cwd = !run;
  c->o.limits = (struct limits){.memory = 4LL << 30, .pids = 256};
  optind = 1;
  opterr = 0;
  int op;
  berth_error_t err = NULL;
  while ((op = getopt_long(argc, argv, "+w:v:e:p:qhitu:d", opts, NULL)) != -1) {
    switch (op) {
    case O_NAME: c->o.name = optarg; break;
    case O_IMAGE: c->o.image = optarg; break;
    case O_PURPOSE: c->o.purpose = optarg; break;
    case 'w': c->o.workdir = optarg; break;
    case 'v':
      if (volume_arg(c->mounts, optarg) < 0) return -1;
      break;
    case 'p':
      if (publish_arg(c->ports, optarg) < 0) return -1;
      break;
    case O_NOCWD: c->o.mount_cwd = false, c->mount_cwd_set = true; break;
    case O_MOUNTCWD: c->o.mount_cwd = true, c->mount_cwd_set = true; break;
    case O_ENTRYPOINT: c->entrypoint = optarg; break;
    case O_KEEPALIVE: c->o.keep_alive = true; break;
    case 'u': c->o.user = optarg; break;
    case O_RESTART: {
      char pol[32];
      int max;
      if (container_parse_restart(optarg, pol, sizeof pol, &max, &err) < 0) {
        fprintf(stderr, "berth: --restart: %s\n", err->msg);
        berth_error_free(err);
        return -1;
      }
      c->o.restart = optarg;
      break;
    }
    case O_TTL: {
      double t = 0;
      /* a duration: 90s, 10m, 2h (log_parse_time reads it back from now) */
      if (log_parse_time(optarg, &t, &err) < 0 || strspn(optarg, "0123456789.") == strlen(optarg)) {
        fprintf(stderr, "berth: --ttl expects a duration such as 90s, 10m or 2h, got `%s`\n", optarg);
        berth_error_free(err);
        return -1;
      }
      c->o.ttl = (int64_t)(wall_seconds() - t + 0.5);
      if (c->o.ttl <= 0) {
        fprintf(stderr, "berth: --ttl must be above 0\n");
        return -1;
      }
      break;
    }
    case 'd':
      if (!run) goto bad;
      c->detach = true;
      break;
    case 'e':
      if (env_arg(c->env, optarg) < 0) return -1;
      break;
    case O_MEMORY:
      if (parse_size(optarg, &c->o.limits.memory, &err) < 0) {
        fprintf(stderr, "berth: --memory: %s\n", err->msg);
        berth_error_free(err);
        return -1;
      }
      break;
    case O_DISK:
      if (parse_size(optarg, &c->o.disk_limit, &err) < 0) {
        fprintf(stderr, "berth: --disk: %s\n", err->msg);
        berth_error_free(err);
        return -1;
      }
      break;
    case O_CPUS: {
      char *end;
      c->o.limits.cpus = strtod(optarg, &end);
      if (*end || c->o.limits.cpus <= 0 || c->o.limits.cpus > 1024) {
        fprintf(stderr, "berth: --cpus expects a positive number of cores, got `%s`\n", optarg);
        return -1;
      }
      break;
    }
    case O_PIDS: {
      char *end;
      c->o.limits.pids = strtoll(optarg, &end, 10);
      if (*end || c->o.limits.pids < 1) {
        fprintf(stderr, "berth: --pids expects a positive integer, got `%s`\n", optarg);
        return -1;
      }
      break;
    }
    case O_NETWORK: c->o.network = optarg; break;
    case O_EGRESS:
      if (cli_egress_flag(&c->egress, optarg) < 0) return -1;
      break;
    case O_EGRESS_FILE:
      if (cli_egress_file(&c->egress, optarg) < 0) return -1;
      break;
    case O_PERSIST: c->o.persistent = true; break;
    case O_PLATFORM: c->o.platform = optarg; break;
    case O_REPO: c->repo = optarg; break;
    case O_SETUP: json_array_append_new(c->setup, json_string(optarg)); break;
    case O_PASS: c->passthrough = optarg; break;
    case O_SECCOMP: c->o.seccomp_profile = optarg; break;
    case O_DEVICE:
      if (cdi_request_check(optarg, &err) < 0) {
        fprintf(stderr, "berth: --device: %s\n", err->msg);
        berth_error_free(err);
        return -1;
      }
      json_array_append_new(c->devices, json_string(optarg));
      break;
    case O_GPUS:
      json_decref(c->gpu);
      if (!(c->gpu = cdi_gpus_arg(optarg, &err))) {
        fprintf(stderr, "berth: %s\n", err->msg);
        berth_error_free(err);
        return -1;
      }
      break;
    case 'q': c->quiet = true; break;
    case O_JSON: c->json = true; break;
    case 'h': *help = true; return optind;
    case O_RM:
      if (!run) goto bad;
      c->rm = true;
      break;
    case 't':
      if (!run) goto bad;
      c->tty = true;
      break;
    case 'i':
      if (!run) goto bad;
      c->interactive = true;
      break;
    default:
    bad:
      fprintf(stderr, "berth %s: unknown option `%s`; see `berth %s --help`\n", run ? "run" : "create", argv[optind - 1],
              run ? "run" : "create");
      return -1;
    }
  }
  c->o.env = c->env;
  c->o.mounts = c->mounts;
  c->o.quiet = c->quiet || c->json;
  return optind;
}

/* the create request of the tool contract, from CLI flags */
static json_t *create_request(struct create_cli *c) {
  json_t *r = json_pack("{s:s, s:O, s:b}", "operation", "create", "env", c->env, "persistent", c->o.persistent);
  /* create binds the current directory by default (a dev container; a
   * service only when asked), run does not */
  if (c->mount_cwd_set || !c->o.mount_cwd) json_object_set_new(r, "mount_cwd", json_boolean(c->o.mount_cwd));
  if (c->entrypoint) json_object_set_new(r, "entrypoint", json_pack("[s]", c->entrypoint));
  if (c->o.keep_alive) json_object_set_new(r, "keep_alive", json_true());
  if (c->o.user) json_object_set_new(r, "user", json_string(c->o.user));
  if (c->o.restart) json_object_set_new(r, "restart", json_string(c->o.restart));
  if (c->o.ttl > 0) json_object_set_new(r, "ttl", json_integer(c->o.ttl));
  if (c->o.name) json_object_set_new(r, "name", json_string(c->o.name));
  if (c->o.image) json_object_set_new(r, "image", json_string(c->o.image));
  if (c->o.purpose) json_object_set_new(r, "purpose", json_string(c->o.purpose));
  if (c->o.workdir) json_object_set_new(r, "workdir", json_string(c->o.workdir));
  if (c->o.network) json_object_set_new(r, "network", json_string(c->o.network));
  if (c->egress) json_object_set(r, "egress", c->egress);
  if (json_array_size(c->mounts)) json_object_set(r, "mounts", c->mounts);
  if (json_array_size(c->ports)) json_object_set(r, "ports", c->ports);
  if (json_array_size(c->devices)) json_object_set(r, "devices", c->devices);
  if (c->gpu) json_object_set(r, "gpu", c->gpu);
  if (c->repo) json_object_set_new(r, "repo", json_string(c->repo));
  if (c->passthrough) json_object_set_new(r, "env_passthrough", json_string(c->passthrough));
  if (c->o.seccomp_profile) { /* the path as the caller meant it, whatever the reader's directory */
    char *abs = realpath(c->o.seccomp_profile, NULL);
    json_object_set_new(r, "seccomp_profile", json_string(abs ? abs : c->o.seccomp_profile));
    free(abs);
  }
  for (size_t i = 0; i < json_array_size(c->setup); i++) {
    if (!json_object_get(r, "setup_commands")) json_object_set_new(r, "setup_commands", json_array());
    json_array_append(json_object_get(r, "setup_commands"), json_array_get(c->setup, i));
  }
  char v[64];
  snprintf(v, sizeof v, "%lldb", (long long)c->o.limits.memory);
  json_object_set_new(r, "memory_limit", json_string(v));
  json_object_set_new(r, "pids_limit", json_integer(c->o.limits.pids));
  if (c->o.limits.cpus > 0) json_object_set_new(r, "cpu_limit", json_real(c->o.limits.cpus));
  if (c->o.disk_limit > 0) {
    snprintf(v, sizeof v, "%lldb", (long long)c->o.disk_limit);
    json_object_set_new(r, "disk_limit", json_string(v));
  }
  return r;
}

/* print a create reply for people: the name, then what needs attention */
static int create_reply(json_t *rep, bool json, bool quiet) {
  if (json) cli_print_json(rep);
  if (json_object_get(rep, "error")) {
    if (!json) fprintf(stderr, "berth: error: %s\n", json_string_value(json_object_get(rep, "error")));
    json_t *pf = json_object_get(rep, "preflight");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(pf, "checks"), i, c) if (!json && !json_is_true(json_object_get(c, "passed")))
        fprintf(stderr, "  %s: %s\n    fix: %s\n", json_string_value(json_object_get(c, "name")),
                json_string_value(json_object_get(c, "detail")), json_string_value(json_object_get(c, "guidance")) ?: "");
    return EXIT_BERTH;
  }
  /* provisioning that failed is a failed create for scripts (exit 1), though
   * the container is kept for a look inside, as the reply says */
  const char *failed_step = NULL;
  size_t i;
  json_t *s;
  json_array_foreach(json_object_get(rep, "provisioning_report"), i, s) {
    const char *st = json_string_value(json_object_get(s, "status"));
    if (st && !strcmp(st, "failed") && !failed_step) failed_step = json_string_value(json_object_get(s, "name"));
  }
  if (json) return failed_step ? 1 : 0;
  const char *name = json_string_value(json_object_get(rep, "container"));
  printf("%s\n", name);
  json_array_foreach(json_object_get(rep, "provisioning_report"), i, s) {
    const char *st = json_string_value(json_object_get(s, "status"));
    if (st && !strcmp(st, "failed"))
      fprintf(stderr, "berth: create: step %s failed: %s (%s)\n", json_string_value(json_object_get(s, "name")),
              json_string_value(json_object_get(s, "detail")) ?: "", json_string_value(json_object_get(s, "error")) ?: "");
  }
  if (failed_step)
    fprintf(stderr,
            "berth: create: %s was created but provisioning failed at %s; it is kept: look inside with `berth exec -it %s "
            "sh`, or remove it with `berth rm -f %s`\n",
            name, failed_step, name, name);
  if (quiet) return failed_step ? 1 : 0;
  json_t *nt;
  json_array_foreach(json_object_get(rep, "notes"), i, nt) fprintf(stderr, "note: %s\n", json_string_value(nt));
  if (json_is_false(json_object_get(rep, "limits_applied")))
    fprintf(stderr, "note: %s\n", json_string_value(json_object_get(rep, "limits_note")) ?: "resource limits not applied");
  return failed_step ? 1 : 0;
}

static void create_progress(void *ud, double p, double t, const char *m) {
  (void)ud, (void)p, (void)t;
  fprintf(stderr, "\r\033[Kberth: create: %s", m);
}

int cmd_create(int argc, char **argv) {
  struct create_cli c = {0};
  bool help = false;
  int i = parse_create(argc, argv, &c, false, &help);
  if (help) return fputs(CREATE_HELP, stdout), 0;
  if (i < 0) return EXIT_BERTH;
  if (!c.o.image && i < argc) c.o.image = argv[i++];
  /* on a terminal: which step runs (a profile's packages take minutes) */
  if (!c.quiet && !c.json && isatty(STDERR_FILENO)) api_set_progress(create_progress, NULL);
  json_t *req = create_request(&c);
  if (i < argc) { /* the main process's command, as docker create takes it */
    json_t *cmd = json_array();
    for (; i < argc; i++) json_array_append_new(cmd, json_string(argv[i]));
    json_object_set_new(req, "command", cmd);
  }
  json_t *rep = api_call_json(req);
  json_decref(req);
  if (!c.quiet && !c.json && isatty(STDERR_FILENO)) {
    api_set_progress(NULL, NULL);
    fputs("\r\033[K", stderr);
  }
  int rc = create_reply(rep, c.json, c.quiet);
  json_decref(rep);
  json_decref(c.env);
  json_decref(c.mounts);
  json_decref(c.setup);
  json_decref(c.ports);
  json_decref(c.egress);
  json_decref(c.devices);
  json_decref(c.gpu);
  return rc;
}

static int print_exec(const struct exec_result *r, bool json) {
  if (json) {
    json_t *o = json_pack("{s:i, s:s#, s:s#, s:b}", "returncode", r->exit_code, "stdout", r->out.data ? r->out.data : "", r->out.len,
                          "stderr", r->err.data ? r->err.data : "", r->err.len, "timed_out", r->timed_out);
    if (!o)
      o = json_pack("{s:i, s:s, s:s, s:b}", "returncode", r->exit_code, "stdout", "(not valid UTF-8)", "stderr", "", "timed_out",
                    r->timed_out);
    cli_print_json(o);
    json_decref(o);
  } else if (r->timed_out) fprintf(stderr, "berth: exec: timed out; the command and everything it started were killed\n");
  return r->exit_code;
}

int cmd_exec(int argc, char **argv) {
  static struct option opts[] = {{"interactive", no_argument, 0, 'i'},
                                 {"tty", no_argument, 0, 't'},
                                 {"env", required_argument, 0, 'e'},
                                 {"workdir", required_argument, 0, 'w'},
                                 {"user", required_argument, 0, 'u'},
                                 {"timeout", required_argument, 0, O_TIMEOUT},
                                 {"json", no_argument, 0, O_JSON},
                                 {"help", no_argument, 0, 'h'},
                                 {"setup-caps", no_argument, 0, O_SETUP_CAPS},
                                 {0, 0, 0, 0}};
  struct exec_opts o = {.capture_max = 10 << 20};
  json_t *env = json_object();
  bool json = false;
  optind = 1;
  opterr = 0;
  int op;
  while ((op = getopt_long(argc, argv, "+ite:w:u:h", opts, NULL)) != -1) {
    switch (op) {
    case 'i': o.interactive = true; break;
    case 't': o.tty = true; break;
    case 'e':
      if (env_arg(env, optarg) < 0) return EXIT_BERTH;
      break;
    case 'w': o.workdir = optarg; break;
    case 'u': o.user = optarg; break;
    case O_TIMEOUT: {
      char *end;
      long t = strtol(optarg, &end, 10);
      if (*end || t < 0 || t > 86400 * 7) {
        fprintf(stderr, "berth exec: --timeout expects seconds (0-604800), got `%s`\n", optarg);
        return EXIT_BERTH;
      }
      o.timeout = (int)t;
      break;
    }
    case O_JSON: json = true; break;
    case O_SETUP_CAPS: o.keep_caps = security_setup_caps(); break;
    case 'h': return fputs(EXEC_HELP, stdout), 0;
    default: fprintf(stderr, "berth exec: unknown option `%s`; see `berth exec --help`\n", argv[optind - 1]); return EXIT_BERTH;
    }
  }
  if (argc - optind < 2) {
    fprintf(stderr, "berth exec: expected NAME CMD [ARG...]; see `berth exec --help`\n");
    return EXIT_BERTH;
  }
  if (o.tty && !isatty(STDIN_FILENO)) o.tty = isatty(STDOUT_FILENO); /* like docker: -t without a terminal still works */
  o.name = argv[optind];
  o.argv = argv + optind + 1;
  o.env = env;
  o.capture = json;
  struct exec_result r;
  berth_error_t err = NULL;
  int rc = container_exec(&o, &r, &err);
  json_decref(env);
  if (rc < 0) return cli_fail(json, err);
  rc = print_exec(&r, json);
  buf_free(&r.out);
  buf_free(&r.err);
  return rc;
}

int cmd_run(int argc, char **argv) {
  struct create_cli c = {0};
  bool help = false;
  int i = parse_create(argc, argv, &c, true, &help);
  if (help) return fputs(RUN_HELP, stdout), 0;
  if (i < 0) return EXIT_BERTH;
  if (!c.o.image && i < argc) c.o.image = argv[i++];
  if (c.detach) { /* a service container: created, its command its main process */
    if (c.rm || c.tty || c.interactive) {
      fprintf(stderr, "berth run: -d runs in the background: it takes no --rm, -t or -i (for an expiry use --ttl)\n");
      return EXIT_BERTH;
    }
    json_t *req = create_request(&c);
    json_object_set_new(req, "forward_git", json_false());
    json_object_set_new(req, "forward_gh", json_false());
    json_object_set_new(req, "dotfiles_skip", json_true());
    if (i < argc) {
      json_t *cmd = json_array();
      for (; i < argc; i++) json_array_append_new(cmd, json_string(argv[i]));
      json_object_set_new(req, "command", cmd);
    }
    json_t *rep = api_call_json(req);
    json_decref(req);
    int rc = create_reply(rep, c.json, true);
    json_decref(rep);
    json_decref(c.env);
    json_decref(c.mounts);
    json_decref(c.egress);
    return rc;
  }
  char *defcmd[] = {"/bin/sh", NULL};
  char **cmd = i < argc ? argv + i : defcmd;
  json_t *req = create_request(&c);
  json_object_del(req, "user"); /* the command's user, below */
  /* a one-shot like `docker run`: no credentials or dotfiles carried in
   * (create + exec is the provisioned environment); saves the host-side
   * git and gh calls on every run */
  json_object_set_new(req, "forward_git", json_false());
  json_object_set_new(req, "forward_gh", json_false());
  json_object_set_new(req, "dotfiles_skip", json_true());
  /* the command as the container's main process: one launch, no exec */
  struct exec_opts eo = {.argv = cmd, .tty = c.tty && isatty(STDIN_FILENO), .capture = c.json, .capture_max = 10 << 20, .user = c.o.user};
  struct exec_result r;
  bool long_way = false;
  json_t *res = api_run(req, &eo, c.rm, &r, &long_way);
  if (!long_way) {
    json_decref(req);
    int rc;
    if (json_object_get(res, "error")) rc = create_reply(res, c.json, true);
    else {
      rc = print_exec(&r, c.json);
      const char *name = json_string_value(json_object_get(res, "container"));
      /* what create would have said (a single-id mapping, a root filesystem
       * copied for want of overlayfs): after the command, on stderr */
      size_t k;
      json_t *nt;
      if (!c.json) json_array_foreach(json_object_get(res, "notes"), k, nt) fprintf(stderr, "note: %s\n", json_string_value(nt));
      if (!c.rm && !c.json)
        fprintf(stderr, "berth: container %s exited (%d); it stays: `berth start %s` runs it again (detached), `berth rm %s` removes it\n",
                name, rc, name, name);
    }
    buf_free(&r.out);
    buf_free(&r.err);
    json_decref(res);
    json_decref(c.env);
    json_decref(c.mounts);
    json_decref(c.egress);
    return rc;
  }
  /* a purpose, setup commands, a repo: provision first, then exec */
  res = api_call_json(req);
  json_decref(req);
  if (json_object_get(res, "error")) {
    int r = create_reply(res, c.json, true);
    json_decref(res);
    return r;
  }
  berth_error_t err = NULL;
  const char *name = json_string_value(json_object_get(res, "container"));
  eo.name = name;
  int rc = container_exec(&eo, &r, &err);
  if (rc < 0) rc = cli_fail(c.json, err);
  else rc = print_exec(&r, c.json);
  buf_free(&r.out);
  buf_free(&r.err);
  if (c.rm) {
    json_t *out = NULL;
    berth_error_t e2 = NULL;
    if (container_remove(name, true, &out, &e2) < 0) {
      fprintf(stderr, "berth: removing %s: %s\n", name, e2->msg);
      berth_error_free(e2);
    }
    json_decref(out);
  } else if (!c.json) fprintf(stderr, "container %s is still running (berth rm %s)\n", name, name);
  json_decref(res);
  json_decref(c.env);
  json_decref(c.mounts);
  json_decref(c.egress);
  return rc;
}

int cmd_ls(int argc, char **argv) {
  bool json = false, quiet = false, all = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) quiet = true;
    else if (!strcmp(argv[i], "-a") || !strcmp(argv[i], "--all")) all = true;
    else if (!strcmp(argv[i], "-aq") || !strcmp(argv[i], "-qa")) all = quiet = true;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
      return fputs("Usage: berth ls [OPTIONS]   (also: berth ps)\n\nList running containers (-a: all, stopped ones too).\n\n"
                   "  -a, --all    stopped and exited containers too\n"
                   "  -q, --quiet  names only, one a line\n"
                   "      --json   {count, containers: [{name, status, mode, image, network, persistent, ...}]}\n",
                   stdout),
             0;
    else if (argv[i][0] == '-') return cli_unknown_option("ls", argv[i]);
    else return fprintf(stderr, "berth ls: unexpected argument `%s`; see `berth ls --help`\n", argv[i]), EXIT_BERTH;
  }
  json_t *out = NULL;
  berth_error_t err = NULL;
  if (container_list(&out, &err) < 0) return cli_fail(json, err);
  if (!all) { /* as docker ps: what runs (or is on its way) */
    json_t *arr = json_object_get(out, "containers");
    for (size_t i = json_array_size(arr); i-- > 0;) {
      const char *s = json_string_value(json_object_get(json_array_get(arr, i), "status")) ?: "";
      if (strcmp(s, "running") && strcmp(s, "creating") && strcmp(s, "restarting")) json_array_remove(arr, i);
    }
    json_object_set_new(out, "count", json_integer((json_int_t)json_array_size(arr)));
  }
  if (json) cli_print_json(out);
  else if (quiet) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(out, "containers"), i, c) printf("%s\n", json_string_value(json_object_get(c, "name")));
  } else {
    printf("%-24s %-10s %-8s %-40s %-8s %s\n", "NAME", "STATUS", "MODE", "IMAGE", "NETWORK", "PERSISTENT");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(out, "containers"), i, c) printf(
        "%-24s %-10s %-8s %-40s %-8s %s\n", json_string_value(json_object_get(c, "name")), json_string_value(json_object_get(c, "status")),
        json_string_value(json_object_get(c, "mode")) ?: "dev", json_string_value(json_object_get(c, "image")),
        json_string_value(json_object_get(c, "network")) ?: "-", json_is_true(json_object_get(c, "persistent")) ? "yes" : "no");
  }
  json_decref(out);
  return 0;
}

static void fmt_time(json_t *t, char *out, size_t n) {
  time_t v = (time_t)json_integer_value(t);
  struct tm tm;
  if (!json_is_integer(t) || !v || !localtime_r(&v, &tm)) snprintf(out, n, "-");
  else strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

static void fmt_bytes(int64_t b, char *out, size_t n) {
  if (b <= 0) snprintf(out, n, "none");
  else if (b >= (1LL << 30)) snprintf(out, n, "%.1f GiB", b / (double)(1LL << 30));
  else snprintf(out, n, "%.0f MiB", b / (double)(1LL << 20));
}

/* `berth status NAME` for people: one fact a line */
static void print_status(json_t *o) {
  json_t *m = json_object_get(o, "metadata");
  const char *name = json_string_value(json_object_get(o, "container"));
  char t1[64], t2[64], mem[32];
  printf("%-14s %s\n", "Name:", name);
  printf("%-14s %s", "Status:", json_string_value(json_object_get(o, "status")));
  if (json_object_get(m, "exit_code"))
    printf(" (exit code %lld%s)", (long long)json_integer_value(json_object_get(m, "exit_code")),
           json_is_true(json_object_get(m, "oom_killed")) ? ", killed for want of memory" : "");
  if (json_is_true(json_object_get(m, "stopped"))) printf(", stopped by a person");
  putchar('\n');
  printf("%-14s %s\n", "Mode:", json_string_value(json_object_get(m, "mode")));
  json_t *cmd = json_object_get(m, "command");
  if (json_array_size(cmd)) {
    printf("%-14s", "Command:");
    size_t i;
    json_t *a;
    json_array_foreach(cmd, i, a) printf(" %s", json_string_value(a));
    putchar('\n');
  }
  printf("%-14s %s\n", "Image:", json_string_value(json_object_get(o, "image")));
  fmt_time(json_object_get(o, "started_at"), t1, sizeof t1);
  fmt_time(json_object_get(m, "finished_at"), t2, sizeof t2);
  printf("%-14s %s\n", "Started:", t1);
  if (json_object_get(m, "finished_at")) printf("%-14s %s\n", "Finished:", t2);
  if (json_object_get(m, "pid")) printf("%-14s %lld\n", "PID:", (long long)json_integer_value(json_object_get(m, "pid")));
  json_t *rs = json_object_get(m, "restart");
  if (rs) {
    printf("%-14s %s", "Restart:", json_string_value(json_object_get(rs, "policy")));
    if (json_integer_value(json_object_get(rs, "max"))) printf(":%lld", (long long)json_integer_value(json_object_get(rs, "max")));
    printf(" (%lld restarts so far)\n", (long long)json_integer_value(json_object_get(m, "restart_count")));
  }
  printf("%-14s %s%s%s\n", "Network:", json_string_value(json_object_get(m, "network")) ?: "-", json_object_get(m, "ip") ? ", " : "",
         json_string_value(json_object_get(m, "ip")) ?: "");
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(m, "ports"), i, p)
      printf("%-14s %s:%lld -> %lld/%s\n", i ? "" : "Ports:", json_string_value(json_object_get(p, "host_ip")) ?: "127.0.0.1",
             (long long)json_integer_value(json_object_get(p, "host")), (long long)json_integer_value(json_object_get(p, "container")),
             json_string_value(json_object_get(p, "protocol")) ?: "tcp");
  json_t *l = json_object_get(m, "limits");
  fmt_bytes(json_integer_value(json_object_get(l, "memory")), mem, sizeof mem);
  printf("%-14s memory %s, pids %lld, cpus %g\n", "Limits:", mem, (long long)json_integer_value(json_object_get(l, "pids")),
         json_number_value(json_object_get(l, "cpus")));
  printf("%-14s %s\n", "Workdir:", json_string_value(json_object_get(m, "workdir")) ?: "-");
  printf("%-14s %s\n", "Persistent:", json_is_true(json_object_get(m, "persistent")) ? "yes" : "no");
  if (json_object_get(m, "expires_at")) {
    fmt_time(json_object_get(m, "expires_at"), t1, sizeof t1);
    printf("%-14s %s\n", "Expires:", t1);
  }
  json_t *h = json_object_get(o, "health");
  if (h)
    printf("%-14s %s (exec %.1f ms)\n", "Health:", json_is_true(json_object_get(h, "healthy")) ? "healthy" : "unhealthy",
           json_number_value(json_object_get(h, "exec_latency_ms")));
  cli_egress_print_status(o);
  if (!strcmp(json_string_value(json_object_get(m, "mode")) ?: "", "service")) printf("%-14s berth logs %s\n", "Logs:", name);
  printf("(`berth status --json %s` or `berth inspect %s` for everything)\n", name, name);
}

int cmd_status(int argc, char **argv) {
  bool json = false, health = false;
  const char *name = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "--health")) health = true;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
      return fputs("Usage: berth status [OPTIONS] NAME\n\nShow one container: its state, main process, network and limits.\n\n"
                   "      --health  also check that it answers (an exec of `true`)\n"
                   "      --json    the same, for scripts\n",
                   stdout),
             0;
    else if (argv[i][0] == '-') return cli_unknown_option("status", argv[i]);
    else if (name) return fprintf(stderr, "berth status: one NAME only, got `%s` too\n", argv[i]), EXIT_BERTH;
    else name = argv[i];
  }
  if (!name) return fprintf(stderr, "berth status: expected NAME\n"), EXIT_BERTH;
  json_t *out = NULL;
  berth_error_t err = NULL;
  if (container_status(name, health, &out, &err) < 0) return cli_fail(json, err);
  if (json) cli_print_json(out);
  else print_status(out);
  json_decref(out);
  return 0;
}

int cmd_rm(int argc, char **argv) {
  bool json = false, force = false, all = false, confirm = false;
  json_t *results = json_array();
  int rc = 0, names = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--force")) force = true;
    else if (!strcmp(argv[i], "--all")) all = true;
    else if (!strcmp(argv[i], "--confirm")) confirm = true;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
      return fputs("Usage: berth rm [OPTIONS] NAME...\n       berth rm --all --confirm [-f]\n\n"
                   "Stop (SIGTERM, SIGKILL after 10 s; -f at once) and remove containers.\n\n"
                   "  -f, --force    kill at once\n"
                   "      --all      every container of this data dir (with --confirm)\n"
                   "      --confirm  needed with --all\n"
                   "      --json     the results as JSON\n",
                   stdout),
             0;
    else if (argv[i][0] == '-') {
      json_decref(results);
      return cli_unknown_option("rm", argv[i]);
    }
  }
  if (all && !confirm) {
    fprintf(stderr, "berth: error: Set confirm=true to destroy all managed containers (add --confirm)\n");
    return EXIT_BERTH;
  }
  json_t *list = NULL;
  if (all) {
    berth_error_t err = NULL;
    if (container_list(&list, &err) < 0) return cli_fail(json, err);
  }
  size_t nall = all ? json_array_size(json_object_get(list, "containers")) : 0;
  for (int i = 1; i < argc || (size_t)(i - argc) < nall; i++) {
    const char *name;
    if (i < argc) {
      if (argv[i][0] == '-') continue;
      name = argv[i];
    } else name = json_string_value(json_object_get(json_array_get(json_object_get(list, "containers"), (size_t)(i - argc)), "name"));
    names++;
    json_t *out = NULL;
    berth_error_t err = NULL;
    if (container_remove(name, force, &out, &err) < 0) {
      rc = EXIT_BERTH;
      if (!json) fprintf(stderr, "berth: error: %s\n", err->msg);
      json_array_append_new(results, json_pack("{s:b, s:s, s:s}", "success", 0, "container", name, "detail", err->msg));
      berth_error_free(err);
      continue;
    }
    if (!json) printf("%s\n", name);
    json_array_append_new(results, out);
  }
  if (!names && !all) {
    fprintf(stderr, "berth rm: expected NAME...\n");
    rc = EXIT_BERTH;
  }
  if (json) {
    json_t *o = all ? json_pack("{s:I, s:O}", "destroyed", (json_int_t)json_array_size(results), "results", results) : json_incref(results);
    cli_print_json(o);
    json_decref(o);
  }
  json_decref(results);
  json_decref(list);
  return rc;
}

/* berth network create|rm|ls */
int cmd_network(int argc, char **argv) {
  static const char *usage = "Usage: berth network create [--json] NAME\n       berth network rm [--json] NAME...\n"
                             "       berth network ls [--json]\n\n"
                             "Named networks: containers created with --network NAME reach each other by name.\n"
                             "`rm` refuses while containers are attached.\n";
  const char *sub = argc > 1 ? argv[1] : NULL;
  bool json = false;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fputs(usage, stdout), 0;
    else if (argv[i][0] == '-') return cli_unknown_option("network", argv[i]);
  }
  if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h")) return fputs(usage, sub ? stdout : stderr), sub ? 0 : EXIT_BERTH;
  json_t *out = NULL;
  berth_error_t err = NULL;
  if (!strcmp(sub, "ls") || !strcmp(sub, "list")) {
    if (net_named_list(container_network_members, &out, &err) < 0) return cli_fail(json, err);
    if (json) cli_print_json(out);
    else {
      printf("%-24s %-16s %s\n", "NAME", "SUBNET", "CONTAINERS");
      size_t i, j;
      json_t *n, *c;
      json_array_foreach(json_object_get(out, "networks"), i, n) {
        printf("%-24s %-16s", jstr(n, "name"), jstr(n, "subnet") ?: "-");
        json_array_foreach(json_object_get(n, "containers"), j, c) printf("%s%s", j ? "," : " ", json_string_value(c));
        putchar('\n');
      }
    }
    json_decref(out);
    return 0;
  }
  bool create = !strcmp(sub, "create");
  if (!create && strcmp(sub, "rm") && strcmp(sub, "remove")) return fputs(usage, stderr), EXIT_BERTH;
  int rc = 0, names = 0;
  for (int i = 2; i < argc; i++) {
    if (argv[i][0] == '-') continue;
    names++;
    int r = create ? net_named_create(argv[i], &out, &err) : net_named_destroy(argv[i], container_network_members, &out, &err);
    if (r < 0) {
      rc = cli_fail(json, err);
      continue;
    }
    if (json) cli_print_json(out);
    else puts(jstr(out, "network"));
    json_decref(out);
  }
  if (!names) return fprintf(stderr, "berth network %s: expected NAME\n", sub), EXIT_BERTH;
  return rc;
}
