/* berth command line: what the commands print. JSON for --json (and errors
 * as {"error", "code"}), human text otherwise; the usage errors that end a
 * command with exit code 125. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "berth.h"
#include "util/util.h"

#include "cli/cli.h"

static bool want_color(void) { return isatty(STDERR_FILENO) && !getenv("NO_COLOR"); }

void cli_print_json(json_t *j) {
  char *t = json_dumps(j, JSON_INDENT(2));
  if (t) puts(t);
  free(t);
}

int cli_fail(bool json, berth_error_t err) {
  const char *msg = err && err->msg ? err->msg : "unknown error";
  if (json) {
    json_t *j = json_pack("{s:o, s:s}", "error", json_string_safe(msg), "code", err && err->status == ENOENT ? "not_found" : "failed");
    char *t = json_dumps(j, JSON_INDENT(2));
    puts(t);
    free(t);
    json_decref(j);
  } else if (want_color()) fprintf(stderr, "\033[31mberth: error:\033[0m %s\n", msg);
  else fprintf(stderr, "berth: error: %s\n", msg);
  berth_error_free(err);
  return EXIT_BERTH;
}

int cli_unknown_option(const char *cmd, const char *arg) {
  fprintf(stderr, "berth %s: unknown option `%s`; see `berth %s --help`\n", cmd, arg, cmd);
  return EXIT_BERTH;
}

int cli_usage_error(const char *cmd, const char *fmt, const char *arg) {
  fprintf(stderr, "berth %s: ", cmd);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nSee `berth %s --help`.\n", cmd);
  return EXIT_BERTH;
}

void cli_print_json_text(const char *t) {
  fputs(t, stdout);
  fputc('\n', stdout);
}

void cli_print_pull_human(const char *result) {
  json_t *j = json_loads(result, 0, NULL);
  json_t *arr = json_is_array(j) ? j : NULL;
  size_t n = arr ? json_array_size(arr) : 1;
  for (size_t i = 0; i < n; i++) {
    json_t *o = arr ? json_array_get(arr, i) : j;
    printf("%s\n  digest:   %s\n  platform: %s\n  layers:   %zu\n", json_string_value(json_object_get(o, "name")),
           json_string_value(json_object_get(o, "digest")), json_string_value(json_object_get(o, "platform")),
           json_array_size(json_object_get(o, "layers")));
    size_t k;
    json_t *note;
    json_array_foreach(json_object_get(o, "notes"), k, note) fprintf(stderr, "note: %s\n", json_string_value(note));
  }
  json_decref(j);
}
