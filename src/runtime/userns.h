/* Rootless: run an operation inside a user namespace mapped with the
 * user's subordinate id ranges, so image files keep their owners. */
#ifndef BERTH_USERNS_H
#define BERTH_USERNS_H
#include "util.h"

struct id_range {
  unsigned long start, count;
};
/* Look up `user` (name or uid) in an /etc/subuid-style file. */
int subid_lookup(const char *file, const char *user, uid_t uid, struct id_range *out);

/* Map a child in a new user namespace: subordinate ranges through
 * newuidmap/newgidmap, else only the user's own ids (*single = true). */
int userns_map(pid_t pid, bool *single);

/* Run fn in a mapped user namespace when not root; directly when root.
 * The result string and error travel back over a pipe. */
int userns_run(int (*fn)(void *arg, char **result, berth_error_t *err), void *arg, char **result, berth_error_t *err);
/* The same in an existing, mapped user namespace (an nsfs fd), which saves
 * the newuidmap/newgidmap round; userns_fd < 0 is userns_run. */
int userns_run_at(int userns_fd, int (*fn)(void *arg, char **result, berth_error_t *err), void *arg, char **result,
                  berth_error_t *err);

#endif
