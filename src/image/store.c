#define _GNU_SOURCE
#include "image/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "image/digest.h"
#include "image/ref.h"

char *store_path(struct store *s, const char *fmt, ...) {
  char *tail = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&tail, fmt, ap) < 0) tail = NULL;
  va_end(ap);
  char *p = tail ? xasprintf("%s/%s", s->root, tail) : NULL;
  free(tail);
  return p;
}

int store_open(struct store *s, bool exclusive, berth_error_t *err) {
  memset(s, 0, sizeof *s);
  s->gc_lock = -1;
  struct berth_config *cfg = config_get(err);
  if (!cfg) return -1;
  s->root = xasprintf("%s/storage", cfg->data_dir);
  s->user_xattrs = geteuid() != 0 || getenv("BERTH_IN_USERNS") != NULL;
  const char *sub[] = {"blobs/sha256", "layers", "images", "tmp", "locks"};
  for (size_t i = 0; i < 5; i++) {
    cleanup_free char *p = store_path(s, "%s", sub[i]);
    if (mkdir_p(p, 0700, err) < 0) return berth_error_wrap(err, "image store");
  }
  cleanup_free char *lp = store_path(s, "locks/gc.lock");
  s->gc_lock = lock_file(lp, exclusive, err);
  return s->gc_lock < 0 ? -1 : 0;
}

void store_close(struct store *s) {
  if (s->gc_lock >= 0) close(s->gc_lock);
  free(s->root);
  memset(s, 0, sizeof *s);
  s->gc_lock = -1;
}

int store_put_blob(struct store *s, const char *digest, const void *data, size_t len, berth_error_t *err) {
  if (digest_check(digest, err) < 0) return -1;
  char got[72];
  digest_of(data, len, got);
  if (strcmp(got, digest)) return berth_error(err, -EBADMSG, "blob %s has digest %s; discarded", digest, got);
  cleanup_free char *p = store_path(s, "blobs/sha256/%s", digest_hex(digest));
  if (path_exists(p)) return 0;
  return write_file_atomic(p, data, len, 0644, err);
}

int store_get_blob(struct store *s, const char *digest, size_t max, char **data, size_t *len, berth_error_t *err) {
  if (digest_check(digest, err) < 0) return -1;
  cleanup_free char *p = store_path(s, "blobs/sha256/%s", digest_hex(digest));
  return read_file(p, max, data, len, err);
}

bool store_has_layer(struct store *s, const char *digest) {
  if (!digest_valid(digest)) return false;
  cleanup_free char *p = store_path(s, "layers/%s/diff", digest_hex(digest));
  return path_exists(p);
}

int store_write_image(struct store *s, const char *digest, json_t *record, berth_error_t *err) {
  if (digest_check(digest, err) < 0) return -1;
  cleanup_free char *p = store_path(s, "images/%s.json", digest_hex(digest));
  cleanup_free char *txt = json_dumps(record, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (!txt) return berth_error(err, -ENOMEM, "image record");
  return write_file_atomic(p, txt, strlen(txt), 0644, err);
}

json_t *store_read_image(struct store *s, const char *digest, berth_error_t *err) {
  if (digest_check(digest, err) < 0) return NULL;
  cleanup_free char *p = store_path(s, "images/%s.json", digest_hex(digest));
  json_error_t je;
  json_t *j = json_load_file(p, 0, &je);
  if (!j) berth_error(err, -ENOENT, "image %s is not in the store", digest);
  return j;
}

static json_t *refs_load(struct store *s, berth_error_t *err) {
  cleanup_free char *p = store_path(s, "refs.json");
  if (!path_exists(p)) return json_object();
  json_error_t je;
  json_t *j = json_load_file(p, 0, &je);
  if (!j || !json_is_object(j)) {
    json_decref(j);
    berth_error(err, -EINVAL, "image store `%s` is corrupt (%s); move it away and pull again", p, je.text);
    return NULL;
  }
  return j;
}

static int refs_save(struct store *s, json_t *refs, berth_error_t *err) {
  cleanup_free char *p = store_path(s, "refs.json");
  cleanup_free char *txt = json_dumps(refs, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (!txt) return berth_error(err, -ENOMEM, "refs");
  return write_file_atomic(p, txt, strlen(txt), 0644, err);
}

json_t *store_refs(struct store *s, berth_error_t *err) {
  cleanup_free char *lp = store_path(s, "locks/refs.lock");
  cleanup_close int lk = lock_file(lp, false, err);
  if (lk < 0) return NULL;
  return refs_load(s, err);
}

int store_ref_set(struct store *s, const char *name, const char *digest, berth_error_t *err) {
  cleanup_free char *lp = store_path(s, "locks/refs.lock");
  cleanup_close int lk = lock_file(lp, true, err);
  if (lk < 0) return -1;
  json_t *refs = refs_load(s, err);
  if (!refs) return -1;
  json_object_set_new(refs, name, json_string(digest));
  int r = refs_save(s, refs, err);
  json_decref(refs);
  return r;
}

static uint64_t record_size(json_t *rec) {
  uint64_t n = 0;
  size_t i;
  json_t *l;
  json_array_foreach(json_object_get(rec, "layers"), i, l) n += (uint64_t)json_integer_value(json_object_get(l, "size"));
  return n;
}

int store_list(struct store *s, json_t **out, berth_error_t *err) {
  json_t *refs = store_refs(s, err);
  if (!refs) return -1;
  json_t *arr = json_array();
  cleanup_free char *dir = store_path(s, "images");
  DIR *d = opendir(dir);
  if (!d) {
    json_decref(refs);
    json_decref(arr);
    return berth_error(err, errno, "open `%s`", dir);
  }
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!str_has_suffix(de->d_name, ".json") || strlen(de->d_name) != 69) continue;
    char digest[72];
    snprintf(digest, sizeof digest, "sha256:%.64s", de->d_name);
    json_t *rec = store_read_image(s, digest, NULL);
    if (!rec) continue;
    json_t *names = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(refs, k, v) if (!strcmp(json_string_value(v), digest)) json_array_append_new(names, json_string(k));
    json_t *layers = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(rec, "layers"), i, l) {
      const char *ld = json_string_value(json_object_get(l, "digest"));
      json_t *o = json_deep_copy(l);
      if (ld && digest_valid(ld)) {
        cleanup_free char *lp = store_path(s, "layers/%s/diff", digest_hex(ld));
        json_object_set_new(o, "path", json_string(lp));
      }
      json_array_append_new(layers, o);
    }
    json_t *img = json_pack("{s:o, s:s, s:O, s:O, s:I, s:o}", "names", names, "digest", digest, "config", json_object_get(rec, "config"),
                            "platform", json_object_get(rec, "platform"), "size", (json_int_t)record_size(rec), "layers", layers);
    if (img) {
      json_object_set(img, "created", json_object_get(rec, "created"));
      json_array_append_new(arr, img);
    }
    json_decref(rec);
  }
  closedir(d);
  json_decref(refs);
  *out = arr;
  return 0;
}

/* Is `digest` listed by an image other than `except`? */
static bool digest_used(struct store *s, const char *digest, const char *except, const char *field) {
  cleanup_free char *dir = store_path(s, "images");
  DIR *d = opendir(dir);
  if (!d) return true; /* when unsure, keep */
  bool used = false;
  struct dirent *de;
  while (!used && (de = readdir(d))) {
    if (!str_has_suffix(de->d_name, ".json") || strlen(de->d_name) != 69) continue;
    if (!strncmp(de->d_name, digest_hex(except), 64)) continue;
    char dg[72];
    snprintf(dg, sizeof dg, "sha256:%.64s", de->d_name);
    json_t *rec = store_read_image(s, dg, NULL);
    if (!rec) continue;
    if (!strcmp(field, "config")) used = !strcmp(json_string_value(json_object_get(rec, "config")) ?: "", digest);
    else {
      size_t i;
      json_t *l;
      json_array_foreach(json_object_get(rec, "layers"), i, l) if (!strcmp(json_string_value(json_object_get(l, "digest")) ?: "", digest))
          used = true;
    }
    json_decref(rec);
  }
  closedir(d);
  return used;
}

/* Containers (later) hold a record of the layers they run on. */
static bool layer_used_by_container(struct store *s, const char *digest) {
  cleanup_free char *dir = xasprintf("%s/../containers", s->root);
  DIR *d = opendir(dir);
  if (!d) return false;
  bool used = false;
  struct dirent *de;
  while (!used && (de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    cleanup_free char *p = xasprintf("%s/%s/layers.json", dir, de->d_name);
    json_t *j = json_load_file(p, 0, NULL);
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), digest)) used = true;
    json_decref(j);
  }
  closedir(d);
  return used;
}

int store_tmp_stale(struct store *s, const char *entry, int *lock_fd) {
  *lock_fd = -1;
  /* a removal holds the gc lock exclusively, and so do we, or we share it */
  if (str_has_prefix(entry, "rm-")) return 1;
  /* a snapshot's work dir is named by the process that makes it */
  int pid;
  unsigned long long t0;
  if (sscanf(entry, "snap-%d-%llu-", &pid, &t0) == 2) return !(pid > 0 && proc_starttime(pid) == t0);
  /* a pull's layer-HEX and a load's load-X: their writer holds locks/ENTRY.lock */
  if (!str_has_prefix(entry, "layer-") && !str_has_prefix(entry, "load-")) return 0;
  cleanup_free char *lp = store_path(s, "locks/%s.lock", entry);
  int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    close(fd);
    return 0;
  }
  *lock_fd = fd; /* held while the caller removes it: no new writer starts meanwhile */
  return 1;
}

/* Leftovers of a removal that was killed: we hold the gc lock exclusively,
 * so no other removal is running. */
static void remove_stale_rm_dirs(struct store *s) {
  cleanup_free char *dir = store_path(s, "tmp");
  cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dfd >= 0 ? fdopendir(dup(dfd)) : NULL;
  if (!d) return;
  struct dirent *de;
  int lk;
  while ((de = readdir(d)))
    if (str_has_prefix(de->d_name, "rm-") && store_tmp_stale(s, de->d_name, &lk)) rm_rf_at(dfd, de->d_name, NULL);
  closedir(d);
}

json_t *store_image_users(struct store *s, const char *digest) {
  json_t *users = json_array(), *refs = NULL;
  cleanup_free char *dir = xasprintf("%s/../containers", s->root);
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    cleanup_free char *p = xasprintf("%s/%s/state.json", dir, de->d_name);
    json_t *st = json_load_file(p, 0, NULL);
    const char *dg = jstr(st, "image_digest");
    if (st && !dg && jstr(st, "image")) { /* a record from before image_digest: its name */
      if (!refs) refs = refs_load(s, NULL);
      dg = jstr(refs, jstr(st, "image"));
    }
    if (dg && !strcmp(dg, digest)) json_array_append_new(users, json_string(de->d_name));
    json_decref(st);
  }
  if (d) closedir(d);
  json_decref(refs);
  return users;
}

/* what rmi says when a container still runs on the image, or may be started again */
static int refuse_in_use(const char *what, json_t *users, berth_error_t *err) {
  struct buf b = {0}, rm = {0};
  size_t i, n = json_array_size(users);
  json_t *u;
  json_array_foreach(users, i, u) {
    if (i == 5) {
      cleanup_free char *more = xasprintf(" and %zu more", n - 5);
      buf_append(&b, more, strlen(more));
      break;
    }
    cleanup_free char *one = xasprintf("%s`%s`", i ? ", " : "", json_string_value(u));
    cleanup_free char *arg = xasprintf(" %s", json_string_value(u));
    buf_append(&b, one, strlen(one));
    buf_append(&rm, arg, strlen(arg));
  }
  buf_append(&b, "", 1);
  buf_append(&rm, "", 1);
  cleanup_free char *fix = berth_for_agents ? xasprintf("destroy %s first", n > 1 ? "them" : "it")
                                            : xasprintf("remove %s first (`berth rm%s`), or take the name away with `berth rmi --force %s` "
                                                        "(the image then stays, unnamed, until no container uses it, and "
                                                        "`berth system prune` removes it after that)",
                                                        n > 1 ? "them" : "it", rm.data, what);
  int r = berth_error(err, -EBUSY, "image `%s` is used by container%s %s: %s", what, n > 1 ? "s" : "", b.data, fix);
  buf_free(&b);
  buf_free(&rm);
  return r;
}

int store_remove(struct store *s, const char *name, bool force, json_t **out, berth_error_t *err) {
  remove_stale_rm_dirs(s);
  cleanup_free char *lp = store_path(s, "locks/refs.lock");
  cleanup_close int lk = lock_file(lp, true, err);
  if (lk < 0) return -1;
  json_t *refs = refs_load(s, err);
  if (!refs) return -1;
  const char *digest_c = json_string_value(json_object_get(refs, name));
  if (!digest_c) {
    json_decref(refs);
    return berth_error(err, -ENOENT, "image `%s` is not in the store (see `berth images`)", name);
  }
  char digest[72];
  snprintf(digest, sizeof digest, "%s", digest_c);
  bool still_named = false;
  const char *k;
  json_t *v;
  json_object_foreach(refs, k, v) if (strcmp(k, name) && !strcmp(json_string_value(v) ?: "", digest)) still_named = true;
  /* its last name: not while a container uses the image */
  json_t *users = still_named ? json_array() : store_image_users(s, digest);
  if (json_array_size(users) && !force) {
    json_decref(refs);
    int r = refuse_in_use(name, users, err);
    json_decref(users);
    return r;
  }
  json_object_del(refs, name);
  if (refs_save(s, refs, err) < 0) {
    json_decref(refs);
    json_decref(users);
    return -1;
  }
  json_decref(refs);
  json_t *removed = json_array();
  json_t *res = json_pack("{s:s, s:s, s:o}", "untagged", name, "digest", digest, "deleted_layers", removed);
  if (json_array_size(users)) json_object_set(res, "kept_for", users); /* unnamed until they are gone */
  else if (!still_named) store_remove_image(s, digest, removed);
  json_decref(users);
  *out = res;
  return 0;
}

void store_remove_image(struct store *s, const char *digest, json_t *removed) {
  json_t *rec = store_read_image(s, digest, NULL);
  cleanup_free char *img = store_path(s, "images/%s.json", digest_hex(digest));
  unlink(img);
  if (rec) {
    const char *cfgd = json_string_value(json_object_get(rec, "config"));
    if (cfgd && digest_valid(cfgd) && !digest_used(s, cfgd, digest, "config")) {
      cleanup_free char *p = store_path(s, "blobs/sha256/%s", digest_hex(cfgd));
      unlink(p);
    }
    cleanup_free char *mp = store_path(s, "blobs/sha256/%s", digest_hex(digest));
    unlink(mp);
    const char *idx = json_string_value(json_object_get(rec, "index"));
    if (idx && digest_valid(idx)) {
      cleanup_free char *ip = store_path(s, "blobs/sha256/%s", digest_hex(idx));
      unlink(ip);
    }
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(rec, "layers"), i, l) {
      const char *ld = json_string_value(json_object_get(l, "digest"));
      if (!ld || !digest_valid(ld) || digest_used(s, ld, digest, "layers") || layer_used_by_container(s, ld)) continue;
      berth_error_t e2 = NULL;
      int r = store_remove_layer(s, ld, &e2);
      if (r < 0) berth_warn("removing layer %s: %s", ld, e2 ? e2->msg : "failed");
      berth_error_free(e2);
      if (r == 0) json_array_append_new(removed, json_string(ld));
    }
    json_decref(rec);
  }
}

int store_remove_layer(struct store *s, const char *digest, berth_error_t *err) {
  if (!digest_valid(digest)) return 1;
  cleanup_free char *dir = store_path(s, "layers");
  cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return berth_error(err, errno, "open `%s`", dir);
  /* rename first so a half-removed layer is never taken as present */
  cleanup_free char *rnd = random_hex(6);
  cleanup_free char *tmpname = xasprintf("../tmp/rm-%s-%s", digest_hex(digest), rnd);
  if (renameat(dfd, digest_hex(digest), dfd, tmpname) < 0) {
    if (errno == ENOENT) return 1;
    return berth_error(err, errno, "move layer %s out of the store", digest);
  }
  /* out of the store now: what rm cannot delete stays in tmp/ for the next removal */
  berth_error_t e2 = NULL;
  if (rm_rf_at(dfd, tmpname, &e2) < 0) {
    berth_warn("removing layer %s: %s (what is left goes with the next removal)", digest, e2->msg);
    berth_error_free(e2);
  }
  return 0;
}

int store_remove_digest(struct store *s, const char *prefix, bool force, json_t **out, berth_error_t *err) {
  const char *hex = str_has_prefix(prefix, "sha256:") ? prefix + 7 : prefix;
  size_t hl = strlen(hex);
  if (hl < 4 || hl > 64 || strspn(hex, "0123456789abcdef") != hl)
    return berth_error(err, -EINVAL, "`%s` is not an image digest (sha256:HEX, or 4 or more of its first hex digits)", prefix);
  remove_stale_rm_dirs(s);
  cleanup_free char *lp = store_path(s, "locks/refs.lock");
  cleanup_close int lk = lock_file(lp, true, err);
  if (lk < 0) return -1;
  cleanup_free char *dir = store_path(s, "images");
  DIR *d = opendir(dir);
  if (!d) return berth_error(err, errno, "open `%s`", dir);
  char digest[72] = "";
  int found = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!str_has_suffix(de->d_name, ".json") || strlen(de->d_name) != 69 || strncmp(de->d_name, hex, hl)) continue;
    if (found++ == 0) snprintf(digest, sizeof digest, "sha256:%.64s", de->d_name);
  }
  closedir(d);
  if (!found) return berth_error(err, -ENOENT, "no image with digest `%s` (see `berth images`)", prefix);
  if (found > 1) return berth_error(err, -EINVAL, "`%s` matches %d images; give more of the digest", prefix, found);
  json_t *users = store_image_users(s, digest);
  if (json_array_size(users) && !force) {
    int r = refuse_in_use(prefix, users, err);
    json_decref(users);
    return r;
  }
  json_t *refs = refs_load(s, err);
  if (!refs) {
    json_decref(users);
    return -1;
  }
  json_t *names = json_array();
  const char *k;
  json_t *v;
  void *tmp;
  json_object_foreach_safe(refs, tmp, k, v) if (!strcmp(json_string_value(v) ?: "", digest)) {
    json_array_append_new(names, json_string(k));
    json_object_del(refs, k);
  }
  int r = json_array_size(names) ? refs_save(s, refs, err) : 0;
  json_decref(refs);
  if (r < 0) {
    json_decref(names);
    json_decref(users);
    return -1;
  }
  json_t *removed = json_array();
  if (!json_array_size(users)) store_remove_image(s, digest, removed);
  *out = json_pack("{s:s, s:s, s:o, s:o}", "untagged", digest, "digest", digest, "names", names, "deleted_layers", removed);
  if (json_array_size(users)) json_object_set(*out, "kept_for", users); /* unnamed until they are gone */
  json_decref(users);
  return 0;
}

int store_lookup(struct store *s, const char *ref, json_t **record, json_t **config, berth_error_t *err) {
  struct image_ref r;
  if (ref_parse(ref, &r, err) < 0) return -1;
  cleanup_free char *name = ref_name(&r);
  cleanup_free char *key = r.tag ? xasprintf("%s:%s", name, r.tag) : xasprintf("%s@%s", name, r.digest);
  ref_free(&r);
  json_t *refs = store_refs(s, err);
  if (!refs) return -1;
  const char *dg = json_string_value(json_object_get(refs, key));
  char digest[72] = "";
  if (dg) snprintf(digest, sizeof digest, "%s", dg);
  json_decref(refs);
  if (!*digest) return berth_error(err, -ENOENT, "image `%s` is not in the store", key);
  json_t *rec = store_read_image(s, digest, err);
  if (!rec) return -1;
  const char *cd = json_string_value(json_object_get(rec, "config"));
  cleanup_free char *cbody = NULL;
  size_t clen;
  if (!cd || store_get_blob(s, cd, 8 << 20, &cbody, &clen, err) < 0) {
    json_decref(rec);
    return berth_error_wrap(err, "image `%s`: config", key);
  }
  json_t *cfg = json_loadb(cbody, clen, 0, NULL);
  if (!cfg) {
    json_decref(rec);
    return berth_error(err, -EINVAL, "image `%s`: config is not JSON", key);
  }
  json_object_set_new(rec, "name", json_string(key));
  *record = rec;
  *config = cfg;
  return 0;
}
