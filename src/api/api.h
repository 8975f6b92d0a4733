/* The one core call: request JSON in, reply JSON out. The CLI's `tool`,
 * the MCP server and library users all go through here. */
#ifndef BERTH_API_H
#define BERTH_API_H
#include <jansson.h>
#include "util/util.h"

/* Parse and validate a request without acting on it. On success *req is
 * the request with defaults filled in; on failure *reply is the structured
 * error reply. Never has side effects (fuzzed). */
int api_validate(const char *text, size_t len, json_t **req, json_t **reply);
/* Validate and execute; always returns a reply object. */
json_t *api_call_json(json_t *request);
/* an MCP session: containers it creates (not persistent) are recorded in
 * their state as its own, and listed by api_session_containers */
void api_set_session(bool on);
json_t *api_session_containers(void);
json_t *api_call_text(const char *text, size_t len);
/* berth run's one-shot: a create request whose container's main process is
 * the command eo (argv, tty, capture), waited for; with rm the container is
 * removed afterwards, else left exited. Returns create's error reply, or
 * {"success": true, "container", "exit_code", ...}; the output went to the
 * caller's stdio, or into res (eo->capture). *long_way: nothing was done,
 * because the request needs the provisioning pipeline (a purpose, setup
 * commands, a repo, credentials): create, then exec. */
struct exec_opts;
struct exec_result;
json_t *api_run(json_t *request, const struct exec_opts *eo, bool rm, struct exec_result *res, bool *long_way);
/* JSON Schema of the tool's parameters (for MCP tools/list). */
json_t *api_input_schema(void);
/* progress callback for long operations (MCP notifications) */
typedef void (*api_progress_fn)(void *ud, double progress, double total, const char *message);
void api_set_progress(api_progress_fn fn, void *ud);
void api_progress(double progress, double total, const char *message);

#endif
