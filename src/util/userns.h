/* Rootless: run an operation inside a user namespace mapped with the
 * user's subordinate id ranges, so image files keep their owners. */
#ifndef BERTH_USERNS_H
#define BERTH_USERNS_H
#include "util/util.h"

struct id_range {
  unsigned long start, count;
};
/* Look up `user` (name or uid) in an /etc/subuid-style file. */
int subid_lookup(const char *file, const char *user, uid_t uid, struct id_range *out);

/* one line of a uid_map or gid_map: ids inside from `inside`, onto the
 * parent namespace's from `outside`, `count` of them */
struct id_map {
  unsigned long inside, outside, count;
};
/* Write process pid's uid and gid maps (the one way berth and berth-oci
 * map a user namespace): directly where the kernel lets us (root, or our
 * own ids alone), else through newuidmap and newgidmap, started together.
 * *partial: one map was written and the other not (the namespace cannot
 * be mapped again). */
int userns_write_maps(pid_t pid, const struct id_map *u, size_t nu, const struct id_map *g, size_t ng, bool *partial, berth_error_t *err);
/* Map a child in a new user namespace: subordinate ranges through
 * newuidmap/newgidmap, else only the user's own ids (*single = true). */
int userns_map(pid_t pid, bool *single);

/* Rootless with subordinate ids: an fd of the keeper's user namespace,
 * mapped once with the user's ranges and held by a tiny process (like
 * Podman's pause process), started (calling hold, which must not return)
 * when there is none (hold NULL: only an existing one); -1 when there is
 * no keeper to be had (root, no
 * subordinate ids, a failure): map each container on its own then. A
 * container's user namespace made inside it is mapped 1:1 by berth
 * itself (userns_map_identity) instead of by newuidmap/newgidmap. */
int userns_keeper_open(const char *run_dir, void (*hold)(void));
/* Map a child user namespace 1:1 onto ours (we are in its parent). */
int userns_map_identity(pid_t pid);

/* Run fn in a mapped user namespace when not root (the keeper's, when one
 * is running); directly when root.
 * The result string and error travel back over a pipe. */
int userns_run(int (*fn)(void *arg, char **result, berth_error_t *err), void *arg, char **result, berth_error_t *err);
/* The same in an existing, mapped user namespace (an nsfs fd), which saves
 * the newuidmap/newgidmap round; userns_fd < 0 is userns_run. */
int userns_run_at(int userns_fd, int (*fn)(void *arg, char **result, berth_error_t *err), void *arg, char **result, berth_error_t *err);
/* Move this process for good into an existing, mapped user namespace and
 * become its root (a dedicated child with nothing left to do outside it,
 * where userns_run_at would fork once more). Root: nothing to do. */
int userns_enter(int userns_fd, berth_error_t *err);

#endif
