/* berth configuration: /etc/berth/config.json, then the user's
 * ~/.config/berth/config.json (keys override), or $BERTH_CONFIG alone. */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H
#include <jansson.h>
#include "util/util.h"

struct berth_config {
  json_t *root;
  bool rootless; /* euid != 0 */
  char *data_dir; /* store and container data */
  char *run_dir; /* locks, sockets, pids */
  char *home;
  char *files[2]; /* the config files consulted (present or not), NULL after the last */
};

int config_load(struct berth_config *c, berth_error_t *err);
/* The run dir, made (0700) if missing, and fit to hold berth's records:
 * a directory of this user's that no other user may write. Otherwise a
 * negative value and an error that names the fix (the /tmp fallback is a
 * name anyone could have taken first). */
int config_run_dir_check(const struct berth_config *c, berth_error_t *err);
/* the same as a yes or no; a no is said once per process as a warning */
bool config_run_dir_usable(const struct berth_config *c);
void config_free(struct berth_config *c);
/* Process-wide configuration, loaded once. */
struct berth_config *config_get(berth_error_t *err);

bool config_registry_insecure(struct berth_config *c, const char *hostport);
json_t *config_mirrors(struct berth_config *c, const char *domain); /* borrowed array or NULL */
long config_int(struct berth_config *c, const char *key, long def);
json_t *config_array(struct berth_config *c, const char *key); /* borrowed */

#endif
