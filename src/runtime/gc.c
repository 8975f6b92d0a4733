/* Disk use and garbage collection: `berth system df` and `berth system
 * prune`. What counts as garbage, and when:
 *   - a container that exited, is not persistent and has no restart policy
 *     (never one that runs, is being created, or may be started again);
 *   - an image no container uses that no name points at ("dangling": a tag
 *     pulled or loaded again onto a new image, an image whose names
 *     `rmi --force` took while a container used it); with --all every
 *     image no container uses, snapshots and commits included;
 *   - a layer no image and no container names (a pull that failed after
 *     some of its layers were stored);
 *   - leftovers of interrupted work, each by its writer's own rule
 *     (store_tmp_stale): tmp/ of the store, <data>/trash (removed
 *     containers' directories, which the next removal empties anyway), and
 *     blobs no image record names. <data>/tmp entries without a recorded
 *     owner are reported, never removed.
 * Sizes are disk use (allocated blocks, each inode once), measured before
 * anything is removed; what is reported freed is only what is then gone.
 * Rootless, everything that reads or removes the data dir runs in the
 * mapped user namespace: a container's files belong to subordinate ids. */
#define _GNU_SOURCE
#include "runtime/gc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth.h"
#include "util/config.h"
#include "runtime/container.h"
#include "image/digest.h"
#include "image/store.h"
#include "util/userns.h"

/* ---------- sizes ---------- */

void du_seen_free(struct du_seen *s) {
  free(s->keys);
  memset(s, 0, sizeof *s);
}

static size_t seen_slot(const struct du_seen *s, uint64_t dev, uint64_t ino) {
  uint64_t h = (ino * 0x9E3779B97F4A7C15ULL) ^ (dev * 0xC2B2AE3D27D4EB4FULL);
  return (size_t)(h ^ (h >> 29)) & (s->cap - 1);
}

/* true when (dev, ino) was new */
static bool seen_add(struct du_seen *s, dev_t dev, ino_t ino) {
  uint64_t d = (uint64_t)dev + 1, i = (uint64_t)ino;
  if ((s->n + 1) * 2 > s->cap) {
    size_t ncap = s->cap ? s->cap * 2 : 256;
    uint64_t *nk = calloc(ncap, 2 * sizeof *nk);
    if (!nk) return true; /* out of memory: count it again rather than fail */
    struct du_seen g = {nk, 0, ncap};
    for (size_t k = 0; k < s->cap; k++)
      if (s->keys[2 * k]) {
        size_t j = seen_slot(&g, s->keys[2 * k], s->keys[2 * k + 1]);
        while (nk[2 * j]) j = (j + 1) & (ncap - 1);
        nk[2 * j] = s->keys[2 * k], nk[2 * j + 1] = s->keys[2 * k + 1];
        g.n++;
      }
    free(s->keys);
    *s = g;
  }
  for (size_t j = seen_slot(s, d, i);; j = (j + 1) & (s->cap - 1)) {
    uint64_t *k = s->keys + 2 * j;
    if (!k[0]) {
      k[0] = d, k[1] = i;
      s->n++;
      return true;
    }
    if (k[0] == d && k[1] == i) return false;
  }
}

static uint64_t du_tree(int dfd, const char *name, const struct stat *st, dev_t dev, struct du_seen *seen) {
  if (st->st_dev != dev) return 0; /* a mount point: another filesystem's */
  uint64_t n = (uint64_t)st->st_blocks * 512;
  if (!S_ISDIR(st->st_mode)) return st->st_nlink > 1 && !seen_add(seen, st->st_dev, st->st_ino) ? 0 : n;
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    if (fd >= 0) close(fd);
    return n;
  }
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    struct stat cs;
    if (fstatat(dirfd(d), de->d_name, &cs, AT_SYMLINK_NOFOLLOW) == 0) n += du_tree(dirfd(d), de->d_name, &cs, dev, seen);
  }
  closedir(d);
  return n;
}

uint64_t du_at(int dirfd, const char *name, struct du_seen *seen) {
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return 0;
  return du_tree(dirfd, name, &st, st.st_dev, seen);
}

enum gc_tmp_kind gc_tmp_kind(const char *e, bool in_store) {
  if (in_store) {
    if (str_has_prefix(e, "layer-")) return GC_TMP_LAYER;
    if (str_has_prefix(e, "load-")) return GC_TMP_LOAD;
    if (str_has_prefix(e, "snap-")) return GC_TMP_SNAPSHOT;
    if (str_has_prefix(e, "rm-")) return GC_TMP_REMOVAL;
    return GC_TMP_UNKNOWN;
  }
  if (str_has_prefix(e, "overlay-ok-")) return GC_TMP_CACHE;
  if (str_has_prefix(e, "overlay-probe-") || str_has_prefix(e, "provision-")) return GC_TMP_NO_OWNER;
  return GC_TMP_UNKNOWN;
}

const char *gc_tmp_why(enum gc_tmp_kind k, bool stale) {
  switch (k) {
  case GC_TMP_LAYER: return stale ? "a layer download that ended early" : "a layer being downloaded";
  case GC_TMP_LOAD: return stale ? "an archive load that ended early" : "an archive being loaded";
  case GC_TMP_SNAPSHOT: return stale ? "a snapshot whose process is gone" : "a snapshot being made";
  case GC_TMP_REMOVAL: return stale ? "a layer removal that ended early" : "a layer being removed";
  case GC_TMP_CACHE: return "preflight's cached overlay probe: kept";
  case GC_TMP_NO_OWNER:
    return "no owner recorded (a preflight probe, a try-repo clone): kept; remove it by hand while no berth command runs";
  default: return "not berth's: kept";
  }
}

/* ---------- the scan ---------- */

struct scan {
  char *data; /* the data dir */
  struct store s; /* open (exclusively to remove) */
  json_t *ctrs; /* name -> {status, persistent, removable, image_digest, layers, size} */
  json_t *images; /* digest -> {names, layers, blobs, record, snapshot} */
  json_t *layers; /* digest -> size of layers/HEX */
  json_t *blobs; /* digest -> size */
  json_t *records; /* digest -> size of images/HEX.json */
  json_t *left; /* [{path, size, stale, why}]: tmp, trash */
  bool busy; /* a container is being created: it may be about to use any image */
  const char *unsure; /* a record that could not be read: what it names is unknown */
  struct du_seen seen;
};

static void scan_free(struct scan *sc) {
  json_decref(sc->ctrs);
  json_decref(sc->images);
  json_decref(sc->layers);
  json_decref(sc->blobs);
  json_decref(sc->records);
  json_decref(sc->left);
  du_seen_free(&sc->seen);
  if (sc->s.root) store_close(&sc->s);
  free(sc->data);
}

static json_int_t jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static bool is_snapshot_name(const char *n) { return str_has_prefix(n, "berth.local/snapshot/"); }

/* the images, their names and what each references */
static int scan_images(struct scan *sc, berth_error_t *err) {
  json_t *refs = store_refs(&sc->s, err);
  if (!refs) return -1;
  cleanup_free char *dir = store_path(&sc->s, "images");
  DIR *d = opendir(dir);
  if (!d) {
    json_decref(refs);
    return berth_error(err, errno, "open `%s`", dir);
  }
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!str_has_suffix(de->d_name, ".json") || strlen(de->d_name) != 69) continue;
    char dg[72];
    snprintf(dg, sizeof dg, "sha256:%.64s", de->d_name);
    json_t *rec = store_read_image(&sc->s, dg, NULL);
    if (!rec) {
      sc->unsure = "an image record cannot be read";
      continue;
    }
    json_t *names = json_array(), *layers = json_array(), *blobs = json_array();
    bool snap = false;
    const char *k;
    json_t *v;
    json_object_foreach(refs, k, v) if (!strcmp(json_string_value(v) ?: "", dg)) {
      json_array_append_new(names, json_string(k));
      snap = snap || is_snapshot_name(k);
    }
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(rec, "layers"), i, l) {
      const char *ld = jstr(l, "digest");
      if (ld && digest_valid(ld)) json_array_append_new(layers, json_string(ld));
    }
    json_array_append_new(blobs, json_string(dg));
    const char *extra[] = {"config", "index"};
    for (int e = 0; e < 2; e++)
      if (jstr(rec, extra[e]) && digest_valid(jstr(rec, extra[e]))) json_array_append_new(blobs, json_string(jstr(rec, extra[e])));
    struct stat st;
    json_int_t rsz = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? (json_int_t)st.st_blocks * 512 : 0;
    json_object_set_new(sc->records, dg, json_integer(rsz));
    json_object_set_new(sc->images, dg,
                        json_pack("{s:o, s:o, s:o, s:b}", "names", names, "layers", layers, "blobs", blobs, "snapshot", snap));
    json_decref(rec);
  }
  closedir(d);
  json_decref(refs);
  return 0;
}

/* every layer directory and blob, with its size */
static void scan_layers_blobs(struct scan *sc) {
  cleanup_free char *ld = store_path(&sc->s, "layers");
  cleanup_close int lfd = open(ld, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = lfd >= 0 ? fdopendir(dup(lfd)) : NULL;
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (strlen(de->d_name) != 64 || strspn(de->d_name, "0123456789abcdef") != 64) continue;
    cleanup_free char *dg = xasprintf("sha256:%s", de->d_name);
    json_object_set_new(sc->layers, dg, json_integer((json_int_t)du_at(lfd, de->d_name, &sc->seen)));
  }
  if (d) closedir(d);
  cleanup_free char *bd = store_path(&sc->s, "blobs/sha256");
  d = opendir(bd);
  while (d && (de = readdir(d))) {
    struct stat st;
    if (strlen(de->d_name) != 64 || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    cleanup_free char *dg = xasprintf("sha256:%s", de->d_name);
    json_object_set_new(sc->blobs, dg, json_integer((json_int_t)st.st_blocks * 512));
  }
  if (d) closedir(d);
}

/* the containers `list` (container_list's) and their records */
static void scan_containers(struct scan *sc, json_t *list) {
  json_t *refs = store_refs(&sc->s, NULL);
  cleanup_free char *cd = xasprintf("%s/containers", sc->data);
  cleanup_close int cfd = open(cd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  size_t i;
  json_t *c;
  json_array_foreach(list, i, c) {
    const char *name = jstr(c, "name"), *status = jstr(c, "status") ?: "";
    if (!name || !container_name_valid(name)) continue;
    cleanup_free char *sp = xasprintf("%s/%s/state.json", cd, name);
    cleanup_free char *lp = xasprintf("%s/%s/layers.json", cd, name);
    json_t *st = json_load_file(sp, 0, NULL);
    json_t *layers = json_load_file(lp, 0, NULL);
    if (!json_is_array(layers)) {
      json_decref(layers);
      layers = json_array();
      sc->unsure = "a container's layers.json cannot be read";
    }
    const char *dg = jstr(st, "image_digest");
    if (!dg && jstr(st, "image")) dg = jstr(refs, jstr(st, "image")); /* a record from before image_digest */
    const char *policy = jstr(json_object_get(st, "restart"), "policy");
    bool persistent = jbool(st, "persistent", false);
    /* exited and not to be started again: not persistent, no restart policy */
    bool removable = st && !strcmp(status, "exited") && !persistent && (!policy || !strcmp(policy, "no"));
    if (!strcmp(status, "creating")) sc->busy = true;
    json_t *o = json_pack("{s:s, s:b, s:b, s:s?, s:O, s:o, s:I}", "status", status, "persistent", persistent, "removable", removable,
                          "image_digest", dg, "id", json_object_get(st, "id") ?: json_null(), "layers", layers, "size",
                          (json_int_t)(cfd >= 0 ? du_at(cfd, name, &sc->seen) : 0));
    json_object_set_new(sc->ctrs, name, o);
    json_decref(st);
  }
  /* a directory the list does not know is a create that has not written its record yet */
  DIR *d = cfd >= 0 ? fdopendir(dup(cfd)) : NULL;
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (de->d_name[0] != '.' && container_name_valid(de->d_name) && !json_object_get(sc->ctrs, de->d_name)) sc->busy = true;
  if (d) closedir(d);
  json_decref(refs);
}

static void add_left(struct scan *sc, int dfd, const char *rel, const char *entry, bool stale, const char *why) {
  cleanup_free char *path = xasprintf("%s/%s", rel, entry);
  json_array_append_new(sc->left, json_pack("{s:s, s:I, s:b, s:s}", "path", path, "size", (json_int_t)du_at(dfd, entry, &sc->seen), "stale",
                                            stale, "why", why));
}

/* tmp/ of the store and of the data dir, and the trash */
static void scan_leftovers(struct scan *sc) {
  const char *dirs[] = {"storage/tmp", "tmp", "trash"};
  for (int k = 0; k < 3; k++) {
    cleanup_free char *p = xasprintf("%s/%s", sc->data, dirs[k]);
    cleanup_close int dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dup(dfd)) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d))) {
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
      if (k == 2) { /* removed containers: the next removal empties all of it (empty_trash_fn) */
        add_left(sc, dfd, dirs[k], de->d_name, true, "a removed container's files, not yet deleted");
        continue;
      }
      enum gc_tmp_kind kind = gc_tmp_kind(de->d_name, k == 0);
      if (kind == GC_TMP_CACHE) continue;
      int lk = -1;
      bool stale = k == 0 && kind != GC_TMP_UNKNOWN && store_tmp_stale(&sc->s, de->d_name, &lk) == 1;
      if (lk >= 0) close(lk); /* taken again when it is removed */
      add_left(sc, dfd, dirs[k], de->d_name, stale, gc_tmp_why(kind, stale));
    }
    if (d) closedir(d);
  }
}

static int scan_run(struct scan *sc, json_t *list, bool exclusive, berth_error_t *err) {
  struct berth_config *cfg = config_get(err);
  if (!cfg) return -1;
  sc->data = xstrdup(cfg->data_dir);
  sc->ctrs = json_object(), sc->images = json_object(), sc->layers = json_object();
  sc->blobs = json_object(), sc->records = json_object(), sc->left = json_array();
  if (store_open(&sc->s, exclusive, err) < 0) return -1;
  if (scan_images(sc, err) < 0) return -1;
  scan_containers(sc, list);
  scan_layers_blobs(sc);
  scan_leftovers(sc);
  return 0;
}

/* ---------- what goes, and how much that frees ---------- */

/* set[digest] for each layer the kept containers (not removable, when
 * without_removable) name */
static json_t *container_layers(struct scan *sc, bool without_removable) {
  json_t *set = json_object();
  const char *n;
  json_t *c;
  json_object_foreach(sc->ctrs, n, c) {
    if (without_removable && jbool(c, "removable", false)) continue;
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(c, "layers"), i, l) if (json_is_string(l)) json_object_set(set, json_string_value(l), json_true());
  }
  return set;
}

/* the containers that use image dg (the removable ones left out when asked) */
static json_t *image_users(struct scan *sc, const char *dg, bool without_removable) {
  json_t *u = json_array();
  const char *n;
  json_t *c;
  json_object_foreach(sc->ctrs, n, c) if (!strcmp(jstr(c, "image_digest") ?: "", dg) &&
                                          !(without_removable && jbool(c, "removable", false))) json_array_append_new(u, json_string(n));
  return u;
}

/* What removing the images in `gone` frees, when the containers in use
 * name `ctr_layers`: a layer (a blob) goes when no image left names it and
 * no container runs on it. Per image: {size, layers:[its layers that go]},
 * each layer counted once, with the first image that names it. */
static json_t *freed_by(struct scan *sc, json_t *gone, json_t *ctr_layers, uint64_t *total) {
  json_t *kept_l = json_object(), *kept_b = json_object(), *taken = json_object(), *out = json_object();
  const char *dg;
  json_t *img, *v;
  size_t i;
  json_object_foreach(sc->images, dg, img) {
    if (json_object_get(gone, dg)) continue;
    json_array_foreach(json_object_get(img, "layers"), i, v) json_object_set(kept_l, json_string_value(v), json_true());
    json_array_foreach(json_object_get(img, "blobs"), i, v) json_object_set(kept_b, json_string_value(v), json_true());
  }
  *total = 0;
  json_object_foreach(sc->images, dg, img) {
    if (!json_object_get(gone, dg)) continue;
    uint64_t n = (uint64_t)jint(sc->records, dg);
    json_t *ls = json_array();
    json_array_foreach(json_object_get(img, "layers"), i, v) {
      const char *l = json_string_value(v);
      if (json_object_get(kept_l, l) || json_object_get(ctr_layers, l) || json_object_get(taken, l)) continue;
      json_object_set(taken, l, json_true());
      json_array_append(ls, v);
      n += (uint64_t)jint(sc->layers, l);
    }
    json_array_foreach(json_object_get(img, "blobs"), i, v) {
      const char *b = json_string_value(v);
      if (json_object_get(kept_b, b) || json_object_get(taken, b)) continue;
      json_object_set(taken, b, json_true());
      n += (uint64_t)jint(sc->blobs, b);
    }
    json_object_set_new(out, dg, json_pack("{s:I, s:o}", "size", (json_int_t)n, "layers", ls));
    *total += n;
  }
  json_decref(kept_l);
  json_decref(kept_b);
  json_decref(taken);
  return out;
}

/* blobs no image record names (a pull or load that ended between its
 * config and its record), as leftovers */
static void add_orphan_blobs(struct scan *sc) {
  if (sc->unsure) return;
  json_t *named = json_object();
  const char *dg;
  json_t *img, *v;
  size_t i;
  json_object_foreach(sc->images, dg, img) json_array_foreach(json_object_get(img, "blobs"), i, v)
      json_object_set(named, json_string_value(v), json_true());
  json_object_foreach(sc->blobs, dg, v) if (!json_object_get(named, dg)) {
    cleanup_free char *p = xasprintf("storage/blobs/sha256/%s", digest_hex(dg));
    json_array_append_new(sc->left, json_pack("{s:s, s:I, s:b, s:s}", "path", p, "size", json_integer_value(v), "stale", 1, "why",
                                              "a blob no image names (a pull or load that ended early)"));
  }
  json_decref(named);
}

/* layers no image names and no container (but the removable ones) runs on;
 * none when a record could not be read */
static json_t *orphan_layers(struct scan *sc, json_t *ctr_layers) {
  json_t *named = json_object(), *out = json_array();
  if (sc->unsure) return out;
  const char *dg;
  json_t *img, *v;
  size_t i;
  json_object_foreach(sc->images, dg, img) json_array_foreach(json_object_get(img, "layers"), i, v)
      json_object_set(named, json_string_value(v), json_true());
  json_object_foreach(sc->layers, dg, v) if (!json_object_get(named, dg) && !json_object_get(ctr_layers, dg))
      json_array_append_new(out, json_pack("{s:s, s:O}", "digest", dg, "size", v));
  json_decref(named);
  return out;
}

/* ---------- df ---------- */

static json_t *row(uint64_t count, uint64_t active, uint64_t size, uint64_t reclaimable) {
  return json_pack("{s:I, s:I, s:I, s:I}", "count", (json_int_t)count, "active", (json_int_t)active, "size", (json_int_t)size,
                   "reclaimable", (json_int_t)reclaimable);
}

static int df_in_ns(void *arg, char **result, berth_error_t *err) {
  struct scan sc = {0};
  if (scan_run(&sc, arg, false, err) < 0) {
    scan_free(&sc);
    return -1;
  }
  add_orphan_blobs(&sc);
  json_t *cl_all = container_layers(&sc, false);
  /* containers */
  uint64_t c_n = 0, c_run = 0, c_size = 0, c_rec = 0;
  json_t *c_items = json_array();
  const char *k;
  json_t *v;
  json_object_foreach(sc.ctrs, k, v) {
    c_n++;
    c_run += !strcmp(jstr(v, "status") ?: "", "running");
    c_size += (uint64_t)jint(v, "size");
    if (jbool(v, "removable", false)) c_rec += (uint64_t)jint(v, "size");
    json_array_append_new(c_items, json_pack("{s:s, s:O, s:O, s:O, s:O}", "name", k, "status", json_object_get(v, "status"), "persistent",
                                             json_object_get(v, "persistent"), "size", json_object_get(v, "size"), "reclaimable",
                                             json_object_get(v, "removable")));
  }
  /* images: active when a container uses it; reclaimable what removing every unused one frees */
  json_t *unused = json_object(), *unused_snaps = json_object(), *snaps = json_object(), *all_imgs = json_object();
  json_t *i_items = json_array();
  uint64_t i_n = 0, i_act = 0, s_n = 0, s_act = 0;
  json_object_foreach(sc.images, k, v) {
    json_t *u = image_users(&sc, k, false);
    bool used = json_array_size(u) > 0, snap = jbool(v, "snapshot", false);
    i_n++, i_act += used;
    s_n += snap, s_act += snap && used;
    json_object_set(all_imgs, k, json_true());
    if (!used) json_object_set(unused, k, json_true());
    if (snap) json_object_set(snaps, k, json_true());
    if (!used && snap) json_object_set(unused_snaps, k, json_true());
    uint64_t sz = (uint64_t)jint(sc.records, k);
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(v, "layers"), i, x) sz += (uint64_t)jint(sc.layers, json_string_value(x));
    json_array_foreach(json_object_get(v, "blobs"), i, x) sz += (uint64_t)jint(sc.blobs, json_string_value(x));
    json_array_append_new(i_items, json_pack("{s:s, s:O, s:I, s:o, s:b, s:b}", "digest", k, "names", json_object_get(v, "names"), "size",
                                             (json_int_t)sz, "containers", u, "dangling", json_array_size(json_object_get(v, "names")) == 0,
                                             "snapshot", snap));
  }
  json_t *none = json_object();
  uint64_t i_size, i_rec, s_size, s_rec;
  /* size: everything the images hold (what removing them all frees, containers aside);
   * reclaimable: what removing the unused ones frees, with the containers' layers kept */
  json_decref(freed_by(&sc, all_imgs, none, &i_size));
  json_decref(freed_by(&sc, unused, cl_all, &i_rec));
  /* the snapshots' own part, which no other image holds */
  json_decref(freed_by(&sc, snaps, none, &s_size));
  json_decref(freed_by(&sc, unused_snaps, cl_all, &s_rec));
  /* layers: all directories; reclaimable those nothing names */
  json_t *orph = orphan_layers(&sc, cl_all);
  uint64_t l_n = json_object_size(sc.layers), l_size = 0, l_rec = 0;
  json_object_foreach(sc.layers, k, v) l_size += (uint64_t)json_integer_value(v);
  size_t i;
  json_array_foreach(orph, i, v) l_rec += (uint64_t)jint(v, "size");
  /* leftovers */
  uint64_t t_n = json_array_size(sc.left), t_size = 0, t_rec = 0, t_stale = 0, blobs = 0, records = 0, left_nonblob = 0;
  json_array_foreach(sc.left, i, v) {
    t_size += (uint64_t)jint(v, "size");
    if (jbool(v, "stale", false)) t_rec += (uint64_t)jint(v, "size"), t_stale++;
    if (!str_has_prefix(jstr(v, "path") ?: "", "storage/blobs/")) left_nonblob += (uint64_t)jint(v, "size");
  }
  json_object_foreach(sc.blobs, k, v) blobs += (uint64_t)json_integer_value(v);
  json_object_foreach(sc.records, k, v) records += (uint64_t)json_integer_value(v);
  json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:s, s:I}", "images", row(i_n, i_act, i_size, i_rec), "snapshots",
                        row(s_n, s_act, s_size, s_rec), "containers", row(c_n, c_run, c_size, c_rec), "layers",
                        row(l_n, l_n - json_array_size(orph), l_size, l_rec), "leftovers", row(t_n, t_n - t_stale, t_size, t_rec),
                        "data_dir", sc.data, "total_size", (json_int_t)(c_size + l_size + blobs + records + left_nonblob));
  json_object_set_new(json_object_get(o, "images"), "items", i_items);
  json_object_set_new(json_object_get(o, "containers"), "items", c_items);
  json_object_set_new(json_object_get(o, "layers"), "unused", orph);
  json_object_set(json_object_get(o, "leftovers"), "items", sc.left);
  *result = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  json_decref(none);
  json_decref(snaps);
  json_decref(unused);
  json_decref(unused_snaps);
  json_decref(all_imgs);
  json_decref(cl_all);
  scan_free(&sc);
  return 0;
}

/* ---------- prune ---------- */

struct prune_args {
  json_t *list; /* container_list's containers */
  bool all;
  json_t *plan; /* collect: what may go (the plan made before) */
};

/* the plan: what would go, and what that frees */
static int plan_in_ns(void *arg, char **result, berth_error_t *err) {
  struct prune_args *a = arg;
  struct scan sc = {0};
  if (scan_run(&sc, a->list, false, err) < 0) {
    scan_free(&sc);
    return -1;
  }
  add_orphan_blobs(&sc);
  json_t *kept_cl = container_layers(&sc, true);
  json_t *ctrs = json_array(), *images = json_array(), *notes = json_array(), *left = json_array();
  uint64_t total = 0, img_total = 0;
  const char *k;
  json_t *v;
  json_object_foreach(sc.ctrs, k, v) if (jbool(v, "removable", false)) {
    json_array_append_new(ctrs,
                          json_pack("{s:s, s:O, s:O}", "name", k, "id", json_object_get(v, "id"), "size", json_object_get(v, "size")));
    total += (uint64_t)jint(v, "size");
  }
  json_t *gone = json_object();
  if (sc.busy)
    json_array_append_new(notes,
                          json_string("a container is being created: no image is removed this time (run prune again once it is up)"));
  else json_object_foreach(sc.images, k, v) {
      json_t *u = image_users(&sc, k, true);
      bool named = json_array_size(json_object_get(v, "names")) > 0;
      if (!json_array_size(u) && (!named || a->all)) json_object_set(gone, k, json_true());
      json_decref(u);
    }
  if (sc.unsure) {
    cleanup_free char *n = xasprintf("%s: unused layers and blobs are left this time (see `berth system df -v`)", sc.unsure);
    json_array_append_new(notes, json_string(n));
  }
  json_t *fr = freed_by(&sc, gone, kept_cl, &img_total);
  json_object_foreach(sc.images, k, v) if (json_object_get(gone, k)) json_array_append_new(
      images, json_pack("{s:s, s:O, s:O, s:b, s:O}", "digest", k, "names", json_object_get(v, "names"), "size",
                        json_object_get(json_object_get(fr, k), "size"), "dangling", json_array_size(json_object_get(v, "names")) == 0,
                        "snapshot", json_object_get(v, "snapshot")));
  total += img_total;
  json_t *orph = orphan_layers(&sc, kept_cl);
  size_t i;
  json_array_foreach(orph, i, v) total += (uint64_t)jint(v, "size");
  json_array_foreach(sc.left, i, v) if (jbool(v, "stale", false)) {
    json_array_append_new(left, json_pack("{s:O, s:O, s:O}", "path", json_object_get(v, "path"), "size", json_object_get(v, "size"), "why",
                                          json_object_get(v, "why")));
    total += (uint64_t)jint(v, "size");
  }
  json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:I, s:o}", "containers", ctrs, "images", images, "layers", orph, "leftovers", left,
                        "reclaimable", (json_int_t)total, "notes", notes);
  *result = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  json_decref(fr);
  json_decref(gone);
  json_decref(kept_cl);
  scan_free(&sc);
  return 0;
}

/* is `key` of kind `field` listed in the plan's array `what`? */
static bool in_plan(json_t *plan, const char *what, const char *field, const char *key) {
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(plan, what), i, v) if (!strcmp(jstr(v, field) ?: "", key)) return true;
  return false;
}

/* a layer is gone when neither its directory nor a removal's rest of it is left */
static bool layer_gone(struct scan *sc, const char *dg) {
  cleanup_free char *p = store_path(&sc->s, "layers/%s", digest_hex(dg));
  if (path_exists(p)) return false;
  cleanup_free char *tmp = store_path(&sc->s, "tmp");
  cleanup_free char *pre = xasprintf("rm-%s-", digest_hex(dg));
  DIR *d = opendir(tmp);
  struct dirent *de;
  bool gone = true;
  while (d && gone && (de = readdir(d))) gone = !str_has_prefix(de->d_name, pre);
  if (d) closedir(d);
  return gone;
}

static void failed(json_t *arr, const char *what, berth_error_t e) {
  json_array_append_new(arr, json_pack("{s:s, s:s}", "item", what, "error", e && e->msg ? e->msg : "failed"));
  berth_error_free(e);
}

/* Remove what the plan listed and is garbage still, under the exclusive
 * gc lock (no pull, load or removal runs meanwhile); freed bytes are the
 * sizes measured now, of what is then gone. */
static int collect_in_ns(void *arg, char **result, berth_error_t *err) {
  struct prune_args *a = arg;
  struct scan sc = {0};
  if (scan_run(&sc, a->list, true, err) < 0) {
    scan_free(&sc);
    return -1;
  }
  add_orphan_blobs(&sc);
  json_t *cl = container_layers(&sc, false); /* the plan's containers are removed by now */
  json_t *images = json_array(), *layers = json_array(), *left = json_array(), *fails = json_array(), *gone = json_object();
  json_t *notes = json_array();
  uint64_t freed = 0;
  const char *k;
  json_t *v;
  if (!sc.busy) json_object_foreach(sc.images, k, v) {
      json_t *u = image_users(&sc, k, false);
      if (!json_array_size(u) && in_plan(a->plan, "images", "digest", k)) json_object_set(gone, k, json_true());
      json_decref(u);
    }
  else if (json_array_size(json_object_get(a->plan, "images")))
    json_array_append_new(notes,
                          json_string("a container is being created: no image is removed this time (run prune again once it is up)"));
  json_object_foreach(sc.images, k, v) {
    if (!json_object_get(gone, k)) continue;
    json_t *out = NULL;
    berth_error_t e = NULL;
    /* not forced: a container that took the image meanwhile keeps it */
    if (store_remove_digest(&sc.s, k, false, &out, &e) < 0) {
      failed(fails, k, e);
      continue;
    }
    uint64_t n = 0;
    cleanup_free char *rp = store_path(&sc.s, "images/%s.json", digest_hex(k));
    if (!path_exists(rp)) n += (uint64_t)jint(sc.records, k);
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(out, "deleted_layers"), i, x) if (layer_gone(&sc, json_string_value(x))) n +=
        (uint64_t)jint(sc.layers, json_string_value(x));
    json_array_foreach(json_object_get(v, "blobs"), i, x) {
      cleanup_free char *bp = store_path(&sc.s, "blobs/sha256/%s", digest_hex(json_string_value(x)));
      /* counted once: a blob two removed images share goes with the second */
      if (json_object_get(sc.blobs, json_string_value(x)) && !path_exists(bp)) {
        n += (uint64_t)jint(sc.blobs, json_string_value(x));
        json_object_del(sc.blobs, json_string_value(x));
      }
    }
    freed += n;
    json_array_append_new(images, json_pack("{s:s, s:O, s:I, s:O}", "digest", k, "names", json_object_get(out, "names"), "size",
                                            (json_int_t)n, "deleted_layers", json_object_get(out, "deleted_layers")));
    json_decref(out);
  }
  json_t *orph = orphan_layers(&sc, cl);
  size_t i;
  json_array_foreach(orph, i, v) {
    const char *dg = jstr(v, "digest");
    if (!in_plan(a->plan, "layers", "digest", dg)) continue;
    berth_error_t e = NULL;
    if (store_remove_layer(&sc.s, dg, &e) < 0) {
      failed(fails, dg, e);
      continue;
    }
    if (!layer_gone(&sc, dg)) continue;
    freed += (uint64_t)jint(v, "size");
    json_array_append(layers, v);
  }
  json_array_foreach(sc.left, i, v) {
    const char *p = jstr(v, "path");
    if (!jbool(v, "stale", false) || !in_plan(a->plan, "leftovers", "path", p)) continue;
    cleanup_free char *full = xasprintf("%s/%s", sc.data, p);
    const char *base = strrchr(p, '/') + 1;
    int lk = -1;
    /* taken again: its owner's lock is held while it goes */
    if (str_has_prefix(p, "storage/tmp/") && store_tmp_stale(&sc.s, base, &lk) != 1) continue;
    berth_error_t e = NULL;
    int r = rm_rf(full, &e);
    if (r == 0 && gc_tmp_kind(base, true) == GC_TMP_LOAD && str_has_prefix(p, "storage/tmp/")) {
      cleanup_free char *lockp = store_path(&sc.s, "locks/%s.lock", base);
      unlink(lockp); /* a load's lock has a name of its own, never taken again */
    }
    if (lk >= 0) close(lk);
    if (r < 0) {
      failed(fails, p, e);
      continue;
    }
    if (path_exists(full)) continue;
    freed += (uint64_t)jint(v, "size");
    json_array_append_new(left, json_pack("{s:O, s:O, s:O}", "path", json_object_get(v, "path"), "size", json_object_get(v, "size"), "why",
                                          json_object_get(v, "why")));
  }
  json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:I, s:o}", "images", images, "layers", layers, "leftovers", left, "failed", fails,
                        "bytes_freed", (json_int_t)freed, "notes", notes);
  *result = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  json_decref(orph);
  json_decref(gone);
  json_decref(cl);
  scan_free(&sc);
  return 0;
}

/* ---------- the library's entry points ---------- */

static json_t *containers_now(berth_error_t *err) {
  json_t *l = NULL;
  if (container_list(&l, err) < 0) return NULL; /* also collects dead creates and one-shots */
  json_t *c = json_incref(json_object_get(l, "containers"));
  json_decref(l);
  return c ? c : json_array();
}

static int run_json(int (*fn)(void *, char **, berth_error_t *), void *arg, json_t **out, berth_error_t *err) {
  char *res = NULL;
  if (userns_run(fn, arg, &res, err) < 0) return -1;
  *out = res ? json_loads(res, 0, NULL) : NULL;
  free(res);
  return *out ? 0 : berth_error(err, -EIO, "system: an unreadable result from the user namespace helper");
}

int berth_system_df(char **result, berth_error_t *err) {
  json_t *list = containers_now(err);
  if (!list) return -1;
  json_t *o = NULL;
  int r = run_json(df_in_ns, list, &o, err);
  json_decref(list);
  if (r < 0) return -1;
  *result = json_dumps(o, JSON_INDENT(2));
  json_decref(o);
  return 0;
}

/* keep the items of `fresh` (this moment's plan) that `confirmed` lists
 * too; a container only as the same instance (its id) */
static void plan_intersect(json_t *fresh, json_t *confirmed) {
  const char *what[][2] = {{"containers", "name"}, {"images", "digest"}, {"layers", "digest"}, {"leftovers", "path"}};
  for (int w = 0; w < 4; w++) {
    json_t *arr = json_object_get(fresh, what[w][0]);
    for (size_t i = json_array_size(arr); i-- > 0;) {
      json_t *it = json_array_get(arr, i), *c;
      size_t k;
      bool keep = false;
      json_array_foreach(json_object_get(confirmed, what[w][0]), k, c) keep =
          keep || (!strcmp(jstr(c, what[w][1]) ?: "", jstr(it, what[w][1]) ?: "") &&
                   (w || json_equal(json_object_get(c, "id"), json_object_get(it, "id"))));
      if (!keep) json_array_remove(arr, i);
    }
  }
}

int berth_system_prune(const struct berth_prune_options *opts, char **result, berth_error_t *err) {
  struct berth_prune_options none = {0};
  if (!opts) opts = &none;
  json_t *confirmed = NULL;
  if (opts->plan && !(confirmed = json_loads(opts->plan, 0, NULL)))
    return berth_error(err, -EINVAL, "prune: the plan is not JSON (pass a dry run's result as it was)");
  json_t *list = containers_now(err), *plan = NULL;
  struct prune_args a = {list, opts->all, NULL};
  if (!list || run_json(plan_in_ns, &a, &plan, err) < 0) {
    json_decref(list);
    json_decref(confirmed);
    return -1;
  }
  json_decref(list);
  if (confirmed) plan_intersect(plan, confirmed);
  json_decref(confirmed);
  if (opts->dry_run) {
    json_object_set_new(plan, "dry_run", json_true());
    *result = json_dumps(plan, JSON_INDENT(2));
    json_decref(plan);
    return 0;
  }
  /* containers first: what they ran on may be garbage after them */
  json_t *removed = json_array(), *fails = json_array();
  uint64_t freed = 0;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(plan, "containers"), i, c) {
    const char *name = jstr(c, "name");
    json_t *st = container_state(name);
    /* as the plan saw it: the same instance, still exited */
    bool same = st && !strcmp(container_live_status(st), "exited") && json_equal(json_object_get(st, "id"), json_object_get(c, "id")) &&
                !jbool(st, "persistent", false);
    json_decref(st);
    if (!same) continue;
    json_t *out = NULL;
    berth_error_t e = NULL;
    if (container_remove(name, false, &out, &e) < 0) {
      failed(fails, name, e);
      continue;
    }
    json_decref(out);
    json_array_append(removed, c);
    freed += (uint64_t)jint(c, "size");
  }
  list = containers_now(err);
  json_t *res = NULL;
  a = (struct prune_args){list, opts->all, plan};
  if (!list || run_json(collect_in_ns, &a, &res, err) < 0) {
    json_decref(list);
    json_decref(plan);
    json_decref(removed);
    json_decref(fails);
    return -1;
  }
  json_decref(list);
  json_object_set_new(res, "containers", removed);
  json_array_extend(json_object_get(res, "failed"), fails);
  json_decref(fails);
  json_object_set_new(res, "bytes_freed", json_integer((json_int_t)(freed + (uint64_t)jint(res, "bytes_freed"))));
  json_t *notes = json_object_get(plan, "notes");
  json_array_extend(notes, json_object_get(res, "notes"));
  json_object_set(res, "notes", notes);
  json_decref(plan);
  *result = json_dumps(res, JSON_INDENT(2));
  json_decref(res);
  return 0;
}
