/* berth — public C API.
 *
 * Every fallible call returns a negative value and fills a berth_error_t
 * (errno plus a message saying what to do). Release it with berth_error_free.
 */
#ifndef BERTH_H
#define BERTH_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct berth_error_s {
  int status; /* errno value, or 0 when not from a system call */
  char *msg;
};
typedef struct berth_error_s *berth_error_t;

void berth_error_free(berth_error_t err);
const char *berth_version(void);

/* ---- the one core call ----
 * request: {"operation": "create" | "exec" | ..., parameters...} as in the
 * containers tool contract (docs/api.md). Returns a newly allocated reply
 * JSON text (free it with berth_free); a reply with an "error" field is a
 * failure. Never NULL except when out of memory. */
char *berth_call(const char *request_json);
void berth_free(void *p);

/* ---- images ---- */
struct berth_pull_options {
  const char *platform; /* "os/arch[/variant]"; NULL = host platform */
  bool quiet; /* no progress output */
  bool json_progress; /* progress suppressed, caller prints JSON */
};

/* Pull REF into the store. On success *result is a JSON text describing the
 * image (caller frees). */
int berth_image_pull(const char *ref, const struct berth_pull_options *opts, char **result, berth_error_t *err);
/* Import an OCI layout (directory or tar) or a `docker save` archive. */
int berth_image_load(const char *path, const char *name, const struct berth_pull_options *opts, char **result, berth_error_t *err);
/* JSON array of images in the store. */
int berth_image_list(char **result, berth_error_t *err);
/* Save a container's writable layer as image berth.local/snapshot/NAME. */
int berth_snapshot(const char *container, const char *name, char **result, berth_error_t *err);
char *berth_snapshot_ref(const char *name);
/* 1-63 lowercase letters, digits, `-`, `_`, `.`, starting with a letter or digit */
bool berth_snapshot_name_valid(const char *name);
/* `berth commit`: the same as a snapshot (the container's writable layer
 * on top of its image's layers), named REF (NAME[:TAG], normalized as a
 * pull's; NULL: localhost/CONTAINER:latest). A name taken again moves to
 * the new image. *result: {success, image, digest, layer, detail}. */
int berth_commit(const char *container, const char *ref, char **result, berth_error_t *err);
/* `berth rmi`: take the name REF (or every name of the image, for a
 * digest) away; with the last name the image goes, with every layer no
 * other image or container uses. An image a container uses (running, or
 * stopped and kept) is refused, naming the container; with force its
 * names go and the image stays, unnamed ("kept_for": the containers),
 * until no container uses it (`berth system prune` then removes it). */
int berth_rmi(const char *ref, bool force, char **result, berth_error_t *err);
/* berth_rmi with force: the name goes, an image in use stays unnamed. */
int berth_image_remove(const char *ref, char **result, berth_error_t *err);

/* ---- disk use and garbage (docs/api.md, "C library") ---- */
/* `berth system df`: disk use of the data dir by images, snapshots,
 * containers, layers and leftovers of interrupted work, each {count,
 * active, size, reclaimable} in bytes of disk use. */
int berth_system_df(char **result, berth_error_t *err);
struct berth_prune_options {
  bool all; /* every image no container uses, not only unnamed ones */
  bool dry_run; /* only say what would go (and how much that frees) */
  const char *plan; /* a dry run's result: remove only what it listed and is
                       garbage still; NULL: whatever is garbage now */
};
/* `berth system prune`: remove exited containers that are neither
 * persistent nor have a restart policy, unused images (unnamed ones, or
 * with `all` every one), layers nothing names, and leftovers of
 * interrupted work. *result: {containers, images, layers, leftovers,
 * failed, notes, bytes_freed}; a dry run: the same lists and
 * `reclaimable`. */
int berth_system_prune(const struct berth_prune_options *opts, char **result, berth_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
