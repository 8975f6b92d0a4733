/* Content-addressed image store under <data>/storage:
 *   blobs/sha256/<hex>         manifests and configs, verified
 *   layers/<hex>/diff          one unpacked layer (overlay lower dir)
 *   images/<hex>.json          image record, keyed by manifest digest
 *   refs.json                  name:tag -> manifest digest
 *   tmp/, locks/
 * Only complete, verified things are ever renamed into place. */
#ifndef BERTH_STORE_H
#define BERTH_STORE_H
#include <jansson.h>
#include "util/config.h"
#include "util/util.h"

struct store {
  char *root; /* <data>/storage */
  int gc_lock; /* shared while pulling, exclusive for removal */
  bool user_xattrs;
};

int store_open(struct store *s, bool exclusive, berth_error_t *err);
void store_close(struct store *s);

char *store_path(struct store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int store_put_blob(struct store *s, const char *digest, const void *data, size_t len, berth_error_t *err);
int store_get_blob(struct store *s, const char *digest, size_t max, char **data, size_t *len, berth_error_t *err);
bool store_has_layer(struct store *s, const char *digest);

int store_write_image(struct store *s, const char *digest, json_t *record, berth_error_t *err);
json_t *store_read_image(struct store *s, const char *digest, berth_error_t *err);
/* refs: the lock is taken inside */
int store_ref_set(struct store *s, const char *name, const char *digest, berth_error_t *err);
json_t *store_refs(struct store *s, berth_error_t *err); /* new reference */
int store_list(struct store *s, json_t **out, berth_error_t *err);
/* Take a name away; with its last name the image goes too. An image a
 * container uses (its state's image_digest) keeps its last name (-EBUSY,
 * naming the containers), or with force loses it and stays, unnamed
 * ("kept_for": the containers), until they are gone. */
int store_remove(struct store *s, const char *name, bool force, json_t **out, berth_error_t *err);
/* Remove an image record (its manifest, config, and every layer no other
 * image or container uses); the deleted layers' digests go to removed.
 * Call with the store open exclusively and no name left on it. */
void store_remove_image(struct store *s, const char *digest, json_t *removed);
/* Remove layers/HEX (rename into tmp/, then delete): 0 done, 1 it was not
 * there. The caller has made sure nothing uses it. */
int store_remove_layer(struct store *s, const char *digest, berth_error_t *err);
/* rmi by digest: `sha256:HEX` or a unique prefix of HEX (4 or more); every
 * name on the image goes with it. In use: as store_remove. */
int store_remove_digest(struct store *s, const char *prefix, bool force, json_t **out, berth_error_t *err);
/* The containers whose record names the image `digest`: [names]. */
json_t *store_image_users(struct store *s, const char *digest);
/* Is tmp/ENTRY a leftover of a process that is gone? Each kind by its
 * writer's own rule: layer-HEX (a pull) and load-X (a load) while their
 * writer holds locks/ENTRY.lock, snap-PID-START-X while that process
 * lives, rm-HEX-X (a removal) while one holds the gc lock exclusively
 * (call with the store open). 1: stale, and *lock_fd (-1 or a lock to
 * close once it is removed) keeps a new writer out meanwhile; 0: in use,
 * or not berth's. */
int store_tmp_stale(struct store *s, const char *entry, int *lock_fd);
/* Find an image by reference: its record (plus "name") and parsed config. */
int store_lookup(struct store *s, const char *ref, json_t **record, json_t **config, berth_error_t *err);

#endif
