/* `berth load`: import an OCI image layout (directory or tar) or a
 * `docker save` archive, with the same verification and unpacking as a
 * pull. A tar is first unpacked (by the same confined unpacker) into the
 * store's tmp dir. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "berth.h"
#include "image/digest.h"
#include "image/pull.h"
#include "image/ref.h"
#include "util/userns.h"

struct file_src {
  int dirfd;
  json_t *paths; /* digest -> path inside dirfd */
};

struct file_stream {
  int fd;
  _Atomic uint64_t *progress;
  uint64_t n;
  char buf[256 * 1024];
};

static int fs_open(void *ctx, const struct layer_desc *l, _Atomic uint64_t *progress, void **stream, berth_error_t *err) {
  struct file_src *fs = ctx;
  const char *rel = json_string_value(json_object_get(fs->paths, l->digest));
  cleanup_free char *def = xasprintf("blobs/sha256/%s", digest_hex(l->digest));
  if (!rel) rel = def;
  int fd = openat_in_root(fs->dirfd, rel, O_RDONLY, 0, 0);
  if (fd < 0) return berth_error(err, errno, "layer %s: open `%s` in the archive", l->digest, rel);
  struct file_stream *s = malloc(sizeof *s);
  if (!s) {
    close(fd);
    return berth_error(err, -ENOMEM, "load");
  }
  s->fd = fd;
  s->progress = progress;
  s->n = 0;
  *stream = s;
  return 0;
}

static ssize_t fs_read(void *stream, const void **data, berth_error_t *err) {
  struct file_stream *s = stream;
  ssize_t n;
  do n = read(s->fd, s->buf, sizeof s->buf);
  while (n < 0 && errno == EINTR);
  if (n < 0) return berth_error(err, errno, "read layer");
  s->n += (uint64_t)n;
  if (s->progress) atomic_store(s->progress, s->n);
  *data = s->buf;
  return n;
}

static void fs_close(void *stream) {
  struct file_stream *s = stream;
  if (!s) return;
  close(s->fd);
  free(s);
}

static int read_in(int dirfd, const char *rel, size_t max, char **out, size_t *len, berth_error_t *err) {
  cleanup_close int fd = openat_in_root(dirfd, rel, O_RDONLY, 0, 0);
  if (fd < 0) return berth_error(err, errno, "open `%s` in the archive", rel);
  return read_file_at(fd, "", max, out, len, err) == 0 ? 0 : -1;
}

/* hash a file, for docker-save layers whose digests are not written down */
static int hash_file(int dirfd, const char *rel, char out[72], uint64_t *size, bool *gz, bool *zst, berth_error_t *err) {
  cleanup_close int fd = openat_in_root(dirfd, rel, O_RDONLY, 0, 0);
  if (fd < 0) return berth_error(err, errno, "open `%s` in the archive", rel);
  /* on the heap: as static TLS it was zeroed at every berth start and in
   * every thread */
  enum { BUFSZ = 256 * 1024 };
  cleanup_free char *b = malloc(BUFSZ);
  if (!b) return berth_error(err, -ENOMEM, "hash `%s`", rel);
  struct hasher h;
  if (hasher_init(&h) < 0) return berth_error(err, -ENOMEM, "sha256");
  uint64_t n = 0;
  ssize_t r;
  while ((r = read(fd, b, BUFSZ)) > 0) {
    if (n == 0 && r >= 4) {
      *gz = (unsigned char)b[0] == 0x1f && (unsigned char)b[1] == 0x8b;
      *zst = (unsigned char)b[0] == 0x28 && (unsigned char)b[1] == 0xb5 && (unsigned char)b[2] == 0x2f && (unsigned char)b[3] == 0xfd;
    }
    hasher_update(&h, b, (size_t)r);
    n += (uint64_t)r;
  }
  if (r < 0) {
    hasher_free(&h);
    return berth_error(err, errno, "read `%s`", rel);
  }
  hasher_final(&h, out);
  hasher_free(&h);
  *size = n;
  return 0;
}

static int import_manifest(struct store *s, int dirfd, struct file_src *fsrc, const char *mbody, size_t mlen, const char *mdigest,
                           const char *index_digest, const char *name, bool quiet, json_t *results, berth_error_t *err) {
  int kind;
  json_t *mj = NULL;
  if (manifest_classify(mbody, mlen, NULL, &kind, &mj, err) < 0) return -1;
  if (kind != MANIFEST_IMAGE) {
    json_decref(mj);
    return berth_error(err, -EINVAL, "manifest %s is not an image manifest", mdigest);
  }
  struct manifest m;
  int r = manifest_parse(mj, &m, err);
  json_decref(mj);
  if (r < 0) return -1;
  json_t *config = NULL, *notes = json_array(), *out = NULL;
  cleanup_free char *cbody = NULL;
  size_t clen = 0;
  const char *crel = json_string_value(json_object_get(fsrc->paths, m.config_digest));
  cleanup_free char *cdef = xasprintf("blobs/sha256/%s", digest_hex(m.config_digest));
  struct layer_source src = {.ctx = fsrc, .open = fs_open, .read = fs_read, .close = fs_close};
  r = -1;
  if (read_in(dirfd, crel ? crel : cdef, 8 << 20, &cbody, &clen, err) < 0) goto out;
  if (check_config(m.config_digest, cbody, clen, &config, err) < 0) goto out;
  if (store_put_blob(s, m.config_digest, cbody, clen, err) < 0) goto out;
  if (fetch_layers(s, &m, &src, quiet, notes, err) < 0) goto out;
  if (store_put_blob(s, mdigest, mbody, mlen, err) < 0) goto out;
  if (commit_image(s, name, mdigest, index_digest, &m, config, notes, &out, err) < 0) goto out;
  json_array_append_new(results, out);
  r = 0;
out:
  json_decref(config);
  json_decref(notes);
  manifest_free(&m);
  return r;
}

/* Name for an image: explicit, else its annotations, else localhost/<dir>. */
static char *choose_name(const char *explicit, json_t *desc, const char *path, berth_error_t *err) {
  const char *ann = json_string_value(json_object_get(json_object_get(desc, "annotations"), "io.containerd.image.name"));
  const char *refname = json_string_value(json_object_get(json_object_get(desc, "annotations"), "org.opencontainers.image.ref.name"));
  cleanup_free char *pc = strdup(path);
  char *base = basename(pc);
  cleanup_free char *candidate = NULL;
  if (explicit) candidate = strdup(explicit);
  else if (ann) candidate = strdup(ann);
  else if (refname && (strchr(refname, '/') || strchr(refname, ':'))) candidate = strdup(refname);
  else {
    /* a directory name is rarely a valid repository: keep [a-z0-9._-] */
    cleanup_free char *clean = strdup(base);
    size_t j = 0;
    for (size_t i = 0; clean[i]; i++) {
      char ch = clean[i];
      if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
      if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) clean[j++] = ch;
      else if (j && clean[j - 1] != '-') clean[j++] = '-';
    }
    while (j && clean[j - 1] == '-') j--;
    clean[j] = '\0';
    if (str_has_suffix(clean, "-tar")) clean[j - 4] = '\0';
    candidate = xasprintf("localhost/%s:%s", *clean ? clean : "image", refname ? refname : "latest");
  }
  struct image_ref ref;
  if (ref_parse(candidate, &ref, err) < 0) return NULL;
  cleanup_free char *n = ref_name(&ref);
  char *full = ref.tag ? xasprintf("%s:%s", n, ref.tag) : xasprintf("%s@%s", n, ref.digest);
  ref_free(&ref);
  return full;
}

static int load_oci(struct store *s, int dirfd, const char *path, const char *name, bool quiet, json_t *results, berth_error_t *err) {
  cleanup_free char *idx = NULL;
  size_t ilen;
  if (read_in(dirfd, "index.json", 4 << 20, &idx, &ilen, err) < 0) return -1;
  json_t *ij = json_loadb(idx, ilen, 0, NULL);
  json_t *ms = json_object_get(ij, "manifests");
  if (!json_is_array(ms) || json_array_size(ms) == 0) {
    json_decref(ij);
    return berth_error(err, -EINVAL, "`%s`: index.json lists no manifests", path);
  }
  if (name && json_array_size(ms) > 1) {
    json_decref(ij);
    return berth_error(err, -EINVAL, "`%s` holds %zu images; --name needs exactly one", path, json_array_size(ms));
  }
  struct file_src fsrc = {.dirfd = dirfd, .paths = json_object()};
  struct platform p;
  platform_host(&p);
  size_t i;
  json_t *d;
  int r = 0;
  json_array_foreach(ms, i, d) {
    const char *dg = json_string_value(json_object_get(d, "digest"));
    const char *mt = json_string_value(json_object_get(d, "mediaType"));
    if (digest_check(dg, err) < 0) {
      r = berth_error_wrap(err, "`%s` index.json", path);
      break;
    }
    cleanup_free char *rel = xasprintf("blobs/sha256/%s", digest_hex(dg));
    cleanup_free char *body = NULL;
    size_t blen;
    if ((r = read_in(dirfd, rel, 4 << 20, &body, &blen, err)) < 0) break;
    char got[72];
    digest_of(body, blen, got);
    if (strcmp(got, dg)) {
      r = berth_error(err, -EBADMSG, "manifest %s in `%s` has digest %s", dg, path, got);
      break;
    }
    int kind;
    json_t *mj = NULL;
    if ((r = manifest_classify(body, blen, mt, &kind, &mj, err)) < 0) break;
    cleanup_free char *nm = choose_name(name, d, path, err);
    if (!nm) {
      json_decref(mj);
      r = -1;
      break;
    }
    if (kind == MANIFEST_INDEX) {
      cleanup_free char *child = NULL;
      uint64_t csize;
      r = index_select(mj, &p, &child, &csize, err);
      json_decref(mj);
      if (r < 0) break;
      cleanup_free char *crel = xasprintf("blobs/sha256/%s", digest_hex(child));
      cleanup_free char *cbody = NULL;
      size_t clen;
      if ((r = read_in(dirfd, crel, 4 << 20, &cbody, &clen, err)) < 0) break;
      digest_of(cbody, clen, got);
      if (strcmp(got, child)) {
        r = berth_error(err, -EBADMSG, "manifest %s in `%s` has digest %s", child, path, got);
        break;
      }
      r = import_manifest(s, dirfd, &fsrc, cbody, clen, child, dg, nm, quiet, results, err);
    } else {
      json_decref(mj);
      r = import_manifest(s, dirfd, &fsrc, body, blen, dg, NULL, nm, quiet, results, err);
    }
    if (r < 0) break;
  }
  json_decref(fsrc.paths);
  json_decref(ij);
  return r;
}

static int load_docker(struct store *s, int dirfd, const char *path, const char *name, bool quiet, json_t *results, berth_error_t *err) {
  cleanup_free char *mtxt = NULL;
  size_t mlen;
  if (read_in(dirfd, "manifest.json", 4 << 20, &mtxt, &mlen, err) < 0) return -1;
  json_t *arr = json_loadb(mtxt, mlen, 0, NULL);
  if (!json_is_array(arr) || !json_array_size(arr)) {
    json_decref(arr);
    return berth_error(err, -EINVAL, "`%s`: manifest.json is not a docker save manifest", path);
  }
  if (name && json_array_size(arr) > 1) {
    json_decref(arr);
    return berth_error(err, -EINVAL, "`%s` holds %zu images; --name needs exactly one", path, json_array_size(arr));
  }
  int r = 0;
  size_t i;
  json_t *e;
  json_array_foreach(arr, i, e) {
    const char *cfg = json_string_value(json_object_get(e, "Config"));
    json_t *layers = json_object_get(e, "Layers");
    if (!cfg || !json_is_array(layers)) {
      r = berth_error(err, -EINVAL, "`%s`: manifest.json entry %zu lacks Config or Layers", path, i);
      break;
    }
    struct file_src fsrc = {.dirfd = dirfd, .paths = json_object()};
    char cdg[72];
    uint64_t csize;
    bool gz = false, zst = false;
    if ((r = hash_file(dirfd, cfg, cdg, &csize, &gz, &zst, err)) < 0) {
      json_decref(fsrc.paths);
      break;
    }
    json_object_set_new(fsrc.paths, cdg, json_string(cfg));
    json_t *ldescs = json_array();
    size_t k;
    json_t *l;
    json_array_foreach(layers, k, l) {
      const char *lp = json_string_value(l);
      char ldg[72];
      uint64_t lsize;
      if (!lp) {
        r = berth_error(err, -EINVAL, "`%s`: bad layer entry", path);
        break;
      }
      if ((r = hash_file(dirfd, lp, ldg, &lsize, &gz, &zst, err)) < 0) break;
      json_object_set_new(fsrc.paths, ldg, json_string(lp));
      json_array_append_new(ldescs, json_pack("{s:s, s:s, s:I}", "mediaType",
                                              gz    ? "application/vnd.oci.image.layer.v1.tar+gzip"
                                              : zst ? "application/vnd.oci.image.layer.v1.tar+zstd"
                                                    : "application/vnd.oci.image.layer.v1.tar",
                                              "digest", ldg, "size", (json_int_t)lsize));
    }
    if (r < 0) {
      json_decref(ldescs);
      json_decref(fsrc.paths);
      break;
    }
    /* synthesize the OCI manifest docker save does not carry */
    json_t *man = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", 2, "mediaType", MT_OCI_MANIFEST, "config", "mediaType",
                            "application/vnd.oci.image.config.v1+json", "digest", cdg, "size", (json_int_t)csize, "layers", ldescs);
    cleanup_free char *mbody = json_dumps(man, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(man);
    char mdg[72];
    digest_of(mbody, strlen(mbody), mdg);
    const char *tag = json_string_value(json_array_get(json_object_get(e, "RepoTags"), 0));
    cleanup_free char *nm = NULL;
    if (name || tag) {
      json_t *fake = json_pack("{s:{s:s}}", "annotations", "io.containerd.image.name", name ? name : tag);
      nm = choose_name(NULL, fake, path, err);
      json_decref(fake);
    } else nm = choose_name(NULL, NULL, path, err);
    if (!nm) {
      json_decref(fsrc.paths);
      r = -1;
      break;
    }
    r = import_manifest(s, dirfd, &fsrc, mbody, strlen(mbody), mdg, NULL, nm, quiet, results, err);
    json_decref(fsrc.paths);
    if (r < 0) break;
  }
  json_decref(arr);
  return r;
}

static ssize_t plain_read(void *ctx, const void **data, berth_error_t *err) {
  struct file_stream *s = ctx;
  return fs_read(s, data, err);
}

/* tmp/load-X belongs to a load holding locks/load-X.lock; a lock we can
 * take means its owner died (kill -9): remove the leftovers. */
static void sweep_stale_loads(struct store *s) {
  cleanup_free char *dir = store_path(s, "tmp");
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    cleanup_close int fd = -1;
    if (!str_has_prefix(de->d_name, "load-") || !store_tmp_stale(s, de->d_name, &fd)) continue;
    cleanup_free char *lockp = store_path(s, "locks/%s.lock", de->d_name);
    cleanup_free char *p = store_path(s, "tmp/%s", de->d_name);
    rm_rf(p, NULL);
    unlink(lockp);
  }
  closedir(d);
}

struct load_args {
  const char *path, *name;
  const struct berth_pull_options *opts;
};

static int load_in_ns(void *arg, char **result, berth_error_t *err) {
  struct load_args *a = arg;
  bool quiet = a->opts && (a->opts->quiet || a->opts->json_progress);
  struct stat st;
  if (stat(a->path, &st) < 0) return berth_error(err, errno, "load `%s`", a->path);
  if (lazylib_require_crypto(err) < 0) return -1;
  struct store s;
  if (store_open(&s, false, err) < 0) return -1;
  int r = -1;
  cleanup_close int dirfd = -1;
  cleanup_close int load_lock = -1;
  cleanup_free char *unpacked = NULL;
  json_t *results = json_array();
  if (S_ISDIR(st.st_mode)) {
    dirfd = open(a->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
      berth_error(err, errno, "open `%s`", a->path);
      goto out;
    }
  } else {
    sweep_stale_loads(&s);
    cleanup_free char *rnd = random_hex(8);
    cleanup_free char *lockp = store_path(&s, "locks/load-%s.lock", rnd);
    load_lock = lock_file(lockp, true, err);
    if (load_lock < 0) goto out;
    unpacked = store_path(&s, "tmp/load-%s", rnd);
    if (mkdir(unpacked, 0700) < 0) {
      berth_error(err, errno, "create `%s`", unpacked);
      goto out;
    }
    dirfd = open(unpacked, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct file_stream *fsm = malloc(sizeof *fsm);
    fsm->fd = open(a->path, O_RDONLY | O_CLOEXEC);
    fsm->progress = NULL;
    fsm->n = 0;
    if (fsm->fd < 0 || dirfd < 0) {
      berth_error(err, errno, "open `%s`", a->path);
      if (fsm->fd >= 0) close(fsm->fd);
      free(fsm);
      goto out;
    }
    struct unpack_opts uo = {.user_xattrs = s.user_xattrs};
    struct unpack_stats ust;
    int ur = unpack_layer(dirfd, plain_read, fsm, NULL, 0, &uo, &ust, err);
    close(fsm->fd);
    free(fsm);
    if (ur < 0) {
      berth_error_wrap(err, "load `%s`", a->path);
      goto out;
    }
  }
  if (faccessat(dirfd, "index.json", F_OK, 0) == 0 && faccessat(dirfd, "oci-layout", F_OK, 0) == 0)
    r = load_oci(&s, dirfd, a->path, a->name, quiet, results, err);
  else if (faccessat(dirfd, "manifest.json", F_OK, 0) == 0) r = load_docker(&s, dirfd, a->path, a->name, quiet, results, err);
  else
    r = berth_error(err, -EINVAL,
                    "`%s` is neither an OCI image layout (oci-layout + index.json) nor a `docker save` archive (manifest.json)", a->path);
  if (r == 0) *result = json_dumps(results, JSON_INDENT(2));
out:
  json_decref(results);
  if (unpacked) {
    rm_rf(unpacked, NULL);
    cleanup_free char *lockp = xasprintf("%s/locks/%s.lock", s.root, strrchr(unpacked, '/') + 1);
    unlink(lockp);
  }
  store_close(&s);
  return r;
}

int berth_image_load(const char *path, const char *name, const struct berth_pull_options *opts, char **result, berth_error_t *err) {
  struct load_args a = {path, name, opts};
  return userns_run(load_in_ns, &a, result, err);
}

int image_import_layout(const char *dir, const char *name, char **result, berth_error_t *err) {
  struct berth_pull_options po = {.quiet = true};
  struct load_args a = {dir, name, &po};
  return load_in_ns(&a, result, err); /* the caller is already in the right user namespace */
}
