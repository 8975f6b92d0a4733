/* berth tool (one JSON request -> one JSON reply), berth mcp (Model
 * Context Protocol server on stdio), berth preflight, berth hint, berth cp. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "berth.h"
#include "cli/cli.h"
#include "util/util.h"

static int read_stdin(struct buf *b) {
  char tmp[65536];
  ssize_t n;
  while ((n = read(STDIN_FILENO, tmp, sizeof tmp)) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (b->len + (size_t)n > 16 * 1024 * 1024) return -2;
    buf_append(b, tmp, (size_t)n);
  }
  return 0;
}

int cmd_tool(int argc, char **argv) {
  const char *req = NULL;
  berth_for_agents = true;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--request") && i + 1 < argc) req = argv[++i];
    else if (!strncmp(argv[i], "--request=", 10)) req = argv[i] + 10;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs("Usage: berth tool [--request JSON]\n\n"
            "Read one request of the `containers` tool contract (from --request or stdin) and print one JSON reply.\n"
            "Exit 0 when the reply has no `error`. Operations: preflight, create, exec, exec_interactive_hint, list,\n"
            "status, destroy, destroy_all, copy_in, copy_out, snapshot, restore, delete_snapshot, create_network,\n"
            "destroy_network. See docs/api.md.\n",
            stdout);
      return 0;
    } else {
      fprintf(stderr, "berth tool: unknown argument `%s`\n", argv[i]);
      return EXIT_BERTH;
    }
  }
  struct buf in = {0};
  if (!req) {
    int r = read_stdin(&in);
    if (r < 0) {
      json_t *e = json_pack("{s:s, s:s}", "error", r == -2 ? "request larger than 16 MiB" : "cannot read stdin", "code", "invalid_json");
      cli_print_json(e);
      json_decref(e);
      buf_free(&in);
      return 1;
    }
  }
  json_t *reply = req ? api_call_text(req, strlen(req)) : api_call_text(in.data ? in.data : "", in.len);
  buf_free(&in);
  cli_print_json(reply);
  int rc = json_object_get(reply, "error") ? 1 : 0;
  json_decref(reply);
  return rc;
}

int cmd_preflight(int argc, char **argv) {
  bool json = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
      return fputs("Usage: berth preflight [--json]\n\nCheck this host and print the exact fix for each problem.\n", stdout), 0;
    else return cli_unknown_option("preflight", argv[i]);
  }
  const char *req = "{\"operation\":\"preflight\"}";
  json_t *r = api_call_text(req, strlen(req));
  bool ready = json_is_true(json_object_get(r, "ready"));
  if (json) cli_print_json(r);
  else {
    bool color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(r, "checks"), i, c) {
      bool ok = json_is_true(json_object_get(c, "passed")), req = json_is_true(json_object_get(c, "required"));
      const char *mark = ok ? "ok  " : req ? "FAIL" : "warn";
      if (color) printf("%s%s\033[0m ", ok ? "\033[32m" : req ? "\033[31m" : "\033[33m", mark);
      else printf("%s ", mark);
      printf("%-16s %s\n", json_string_value(json_object_get(c, "name")), json_string_value(json_object_get(c, "detail")));
      if (!ok && json_object_get(c, "guidance")) printf("     fix: %s\n", json_string_value(json_object_get(c, "guidance")));
      /* the exact command, alone on its line for copy and paste */
      if (!ok && json_object_get(c, "fix")) printf("     run: %s\n", json_string_value(json_object_get(c, "fix")));
      if (!ok && json_object_get(c, "after_fix")) printf("     then: %s\n", json_string_value(json_object_get(c, "after_fix")));
      if (!ok && json_object_get(c, "run_with"))
        printf("     start berth as: %s berth ...\n", json_string_value(json_object_get(c, "run_with")));
    }
    printf("%s\n", json_string_value(json_object_get(r, "summary")) ?: json_string_value(json_object_get(r, "error")) ?: "");
  }
  json_decref(r);
  return ready ? 0 : 1;
}

int cmd_hint(int argc, char **argv) {
  bool json = false;
  const char *name = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
      return fputs("Usage: berth hint [--json] NAME\n\nPrint the command that opens a shell in the container.\n", stdout), 0;
    else if (argv[i][0] == '-') return cli_unknown_option("hint", argv[i]);
    else name = argv[i];
  }
  if (!name) return fprintf(stderr, "berth hint: expected NAME\n"), EXIT_BERTH;
  json_t *req = json_pack("{s:s, s:s}", "operation", "exec_interactive_hint", "container", name);
  json_t *r = api_call_json(req);
  json_decref(req);
  int rc = 0;
  if (json) cli_print_json(r);
  else if (json_object_get(r, "error")) fprintf(stderr, "berth: error: %s\n", json_string_value(json_object_get(r, "error")));
  else printf("%s\n", json_string_value(json_object_get(r, "command")));
  if (json_object_get(r, "error")) rc = EXIT_BERTH;
  json_decref(r);
  return rc;
}

/* berth cp [--json] SRC DST, one side NAME:PATH (like docker cp) */
int cmd_cp(int argc, char **argv) {
  bool json = false, follow = false, archive = false;
  const char *a = NULL, *b = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "-L") || !strcmp(argv[i], "--follow-link")) follow = true;
    else if (!strcmp(argv[i], "-a") || !strcmp(argv[i], "--archive")) archive = true;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
      return fputs("Usage: berth cp [OPTIONS] HOSTPATH NAME:PATH\n       berth cp [OPTIONS] NAME:PATH HOSTPATH\n\n"
                   "Links are copied as links; devices, FIFOs and sockets are not copied.\n\n"
                   "  -L, --follow-link  copy out what a link at NAME:PATH leads to, resolved inside the container\n"
                   "  -a, --archive      copy out keeping set-user-ID and set-group-ID bits (stripped by default)\n"
                   "      --json         print the result as JSON\n",
                   stdout),
             0;
    else if (argv[i][0] == '-' && argv[i][1])
      return fprintf(stderr, "berth cp: unknown option `%s`; see `berth cp --help`\n", argv[i]), EXIT_BERTH;
    else if (!a) a = argv[i];
    else if (!b) b = argv[i];
    else return fprintf(stderr, "berth cp: expected SRC and DST, got a third argument `%s`\n", argv[i]), EXIT_BERTH;
  }
  if (!a || !b) return fprintf(stderr, "berth cp: expected SRC and DST\n"), EXIT_BERTH;
  const char *ca = strchr(a, ':'), *cb = strchr(b, ':');
  bool into = cb && (!ca || a[0] == '/' || a[0] == '.');
  const char *cspec = into ? b : a, *host = into ? a : b;
  const char *colon = strchr(cspec, ':');
  if (!colon) return fprintf(stderr, "berth cp: one side must be NAME:PATH\n"), EXIT_BERTH;
  cleanup_free char *name = strndup(cspec, (size_t)(colon - cspec));
  char *abs = realpath(host, NULL);
  cleanup_free char *hostabs = abs ? abs : (host[0] == '/' ? strdup(host) : xasprintf("%s/%s", getcwd((char[4096]){0}, 4096), host));
  json_t *req = json_pack("{s:s, s:s, s:s, s:s}", "operation", into ? "copy_in" : "copy_out", "container", name, "host_path", hostabs,
                          "container_path", colon + 1);
  if (!into && follow) json_object_set_new(req, "follow_symlinks", json_true());
  if (!into && archive) json_object_set_new(req, "keep_setid", json_true());
  json_t *r = api_call_json(req);
  json_decref(req);
  int rc = json_object_get(r, "error") ? EXIT_BERTH : 0;
  if (json) cli_print_json(r);
  else if (rc) fprintf(stderr, "berth: error: %s\n", json_string_value(json_object_get(r, "error")));
  json_decref(r);
  return rc;
}
