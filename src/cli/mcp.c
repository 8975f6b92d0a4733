/* berth mcp: a Model Context Protocol server on stdio (JSON-RPC 2.0, one
 * message per line) exposing one tool, `containers`, whose arguments and
 * result are exactly the `berth tool` request and reply. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "runtime/container.h"
#include "berth.h"
#include "cli/cli.h"
#include "util/util.h"

static const char *VERSIONS[] = {"2025-06-18", "2025-03-26", "2024-11-05", NULL};

static void send_msg(json_t *m) {
  char *t = json_dumps(m, JSON_COMPACT);
  if (t) {
    fputs(t, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    free(t);
  }
  json_decref(m);
}

static void send_error(json_t *id, int code, const char *msg) {
  send_msg(json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(), "error", "code", code, "message", msg));
}

struct progress_ctx {
  json_t *token;
};

static void on_progress(void *ud, double p, double total, const char *message) {
  struct progress_ctx *pc = ud;
  if (!pc->token) return;
  send_msg(json_pack("{s:s, s:s, s:{s:O, s:f, s:f, s:s}}", "jsonrpc", "2.0", "method", "notifications/progress", "params", "progressToken",
                     pc->token, "progress", p, "total", total, "message", message ? message : ""));
}

static const char *TOOL_DESC =
    "Manage isolated, provisioned development containers with berth (daemonless, rootless-first). "
    "Set `operation` to one of: preflight (check the host; run before the first create), create (name, image, purpose, "
    "workdir, mounts, mount_cwd, env, env_passthrough, setup_commands, memory_limit, cpu_limit, pids_limit, network, "
    "persistent, ...), exec (container, command, timeout=300), exec_interactive_hint (the command a person runs for a "
    "shell), list, status (health_check), destroy (force), destroy_all (confirm=true), copy_in / copy_out (container, "
    "host_path, container_path), snapshot, restore, delete_snapshot, create_network, destroy_network. The result is the "
    "operation's JSON reply; a reply with `error` is a failure and says what to do.";

static void handle(json_t *msg) {
  json_t *id = json_object_get(msg, "id");
  const char *method = json_string_value(json_object_get(msg, "method"));
  json_t *params = json_object_get(msg, "params");
  if (!method) {
    if (id) send_error(id, -32600, "invalid request: no method");
    return;
  }
  bool notification = id == NULL;
  if (!strcmp(method, "initialize")) {
    const char *want = json_string_value(json_object_get(params, "protocolVersion"));
    const char *ver = VERSIONS[0];
    for (int i = 0; want && VERSIONS[i]; i++)
      if (!strcmp(want, VERSIONS[i])) ver = VERSIONS[i];
    send_msg(json_pack("{s:s, s:O, s:{s:s, s:{s:{s:b}}, s:{s:s, s:s}, s:s}}", "jsonrpc", "2.0", "id", id, "result", "protocolVersion", ver,
                       "capabilities", "tools", "listChanged", 0, "serverInfo", "name", "berth", "version", berth_version(), "instructions",
                       "Use the `containers` tool. Run operation=preflight first; create returns a container name to use "
                       "with exec; give people the exec_interactive_hint command."));
    return;
  }
  if (notification) return; /* notifications/initialized, cancelled, ... */
  if (!strcmp(method, "ping")) {
    send_msg(json_pack("{s:s, s:O, s:{}}", "jsonrpc", "2.0", "id", id, "result"));
    return;
  }
  if (!strcmp(method, "tools/list")) {
    send_msg(json_pack("{s:s, s:O, s:{s:[{s:s, s:s, s:s, s:o}]}}", "jsonrpc", "2.0", "id", id, "result", "tools", "name", "containers",
                       "title", "Development containers", "description", TOOL_DESC, "inputSchema", api_input_schema()));
    return;
  }
  if (!strcmp(method, "tools/call")) {
    const char *name = json_string_value(json_object_get(params, "name"));
    if (!name || strcmp(name, "containers")) {
      send_error(id, -32602, "unknown tool: the only tool is `containers`");
      return;
    }
    json_t *args = json_object_get(params, "arguments");
    json_t *req = json_is_object(args) ? json_deep_copy(args) : json_object();
    struct progress_ctx pc = {.token = json_object_get(json_object_get(params, "_meta"), "progressToken")};
    api_set_progress(on_progress, &pc);
    json_t *reply = api_call_json(req);
    api_set_progress(NULL, NULL);
    json_decref(req);
    char *dump = json_dumps(reply, JSON_INDENT(2));
    /* a create whose provisioning failed says so first, for a reader
     * of the text alone */
    const char *fs = json_string_value(json_object_get(reply, "failed_step"));
    char *text =
        fs && dump
            ? xasprintf("PARTIAL: provisioning step %s failed; the container is up without it (see provisioning_report)\n%s", fs, dump)
        : dump ? strdup(dump)
               : NULL;
    free(dump);
    bool is_error = json_object_get(reply, "error") != NULL;
    send_msg(json_pack("{s:s, s:O, s:{s:[{s:s, s:s}], s:o, s:b}}", "jsonrpc", "2.0", "id", id, "result", "content", "type", "text", "text",
                       text ? text : "{}", "structuredContent", reply, "isError", is_error));
    free(text);
    return;
  }
  if (!strcmp(method, "resources/list")) {
    send_msg(json_pack("{s:s, s:O, s:{s:[]}}", "jsonrpc", "2.0", "id", id, "result", "resources"));
    return;
  }
  if (!strcmp(method, "prompts/list")) {
    send_msg(json_pack("{s:s, s:O, s:{s:[]}}", "jsonrpc", "2.0", "id", id, "result", "prompts"));
    return;
  }
  char m[160];
  snprintf(m, sizeof m, "method not found: %.100s", method);
  send_error(id, -32601, m);
}

static volatile sig_atomic_t mcp_stop;
static void mcp_on_signal(int s) { mcp_stop = s; }

int cmd_mcp(int argc, char **argv) {
  bool keep = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
      return fputs("Usage: berth mcp [--keep-containers]\n\nServe the `containers` tool over the Model Context Protocol on "
                   "stdin/stdout.\n\nContainers the session creates are removed when it ends (stdin closed, the client\n"
                   "gone, SIGTERM/SIGHUP/SIGINT), unless persistent=true.\n\n"
                   "      --keep-containers  keep them after the session\n",
                   stdout),
             0;
    if (!strcmp(argv[i], "--keep-containers")) {
      keep = true;
      continue;
    }
    return cli_unknown_option("mcp", argv[i]);
  }
  /* the session's end is ours to see: a signal interrupts the read, a
   * client gone is EOF (and no SIGPIPE mid-reply) */
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = mcp_on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  api_set_session(!keep);
  berth_log_level = BERTH_LOG_ERROR; /* stdout is the protocol; keep stderr quiet too */
  berth_for_agents = true;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while (!mcp_stop && (n = getline(&line, &cap, stdin)) >= 0) {
    if (n == 0 || (n == 1 && line[0] == '\n')) continue;
    if (n > 16 * 1024 * 1024) {
      send_error(NULL, -32600, "message larger than 16 MiB");
      continue;
    }
    json_error_t je;
    json_t *msg = json_loadb(line, (size_t)n, 0, &je);
    if (!msg) {
      send_error(NULL, -32700, "parse error: invalid JSON");
      continue;
    }
    if (json_is_array(msg)) { /* batches (2025-03-26) */
      size_t i;
      json_t *m;
      json_array_foreach(msg, i, m) if (json_is_object(m)) handle(m);
    } else if (json_is_object(msg)) handle(msg);
    else send_error(NULL, -32600, "invalid request");
    json_decref(msg);
  }
  free(line);
  /* the session's containers go with it */
  size_t i;
  json_t *nm;
  json_array_foreach(api_session_containers(), i, nm) {
    json_t *out = NULL;
    berth_error_t e = NULL;
    if (container_remove(json_string_value(nm), true, &out, &e) < 0) berth_error_free(e);
    json_decref(out);
  }
  return 0;
}
