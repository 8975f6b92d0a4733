#ifndef BERTH_CLI_H
#define BERTH_CLI_H
#include <jansson.h>
#include "berth.h"
#define EXIT_BERTH 125
/* ---- output.c: what commands print ---- */
/* print err (as {"error", "code"} with json, else in red when stderr is a
 * terminal and NO_COLOR is unset), free it; returns EXIT_BERTH */
int cli_fail(bool json, berth_error_t err);
void cli_print_json(json_t *j);
/* JSON text as is, with a newline */
void cli_print_json_text(const char *t);
/* an option COMMAND does not take: say so, point at its help; exit 125 */
int cli_unknown_option(const char *cmd, const char *arg);
/* "berth CMD: " fmt (with arg) and a pointer to its help; returns EXIT_BERTH */
int cli_usage_error(const char *cmd, const char *fmt, const char *arg);
/* pull's and load's result (one image or an array) for people; notes on stderr */
void cli_print_pull_human(const char *result);

/* images.c */
int cmd_pull(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_rmi(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_tool(int argc, char **argv);
int cmd_mcp(int argc, char **argv);
int cmd_preflight(int argc, char **argv);
int cmd_hint(int argc, char **argv);
int cmd_cp(int argc, char **argv);
int cmd_network(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_restart(int argc, char **argv);
int cmd_kill(int argc, char **argv);
int cmd_autostart(int argc, char **argv);
int cmd_egress(int argc, char **argv);
/* create's --egress SPEC and --egress-file FILE into the request's egress object */
int cli_egress_flag(json_t **egress, const char *spec);
int cli_egress_file(json_t **egress, const char *path);
/* berth logs --network: the refusals recorded for a container */
int cli_egress_records(const char *name, long long tail, bool json);
/* status for people: the policy and the last refusals */
void cli_egress_print_status(json_t *status);
/* inspect.c */
int cmd_inspect(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_top(int argc, char **argv);
/* system.c */
int cmd_system(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
/* berth-oci: runc's command line (src/cli/oci.c) */
int oci_main(int argc, char **argv);
#endif
