/* Snapshots: a container's writable layer (its overlay upper dir) becomes
 * a new uncompressed layer on top of the container's image layers, stored
 * as the image berth.local/snapshot/NAME:latest. Overlay whiteouts and
 * opaque directories are written back as OCI .wh. entries. Private ssh keys
 * are never included (a container that got ~/.ssh copied in keeps them;
 * its snapshot does not); environment values were never on disk. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>

#include "berth.h"
#include "image/digest.h"
#include "image/manifest.h"
#include "image/ref.h"
#include "image/store.h"
#include "util/userns.h"

int image_import_layout(const char *dir, const char *name, char **result, berth_error_t *err);
char *berth_snapshot_ref(const char *name);

struct tarw {
  struct archive *a;
  int fd;
  struct hasher h;
  uint64_t size;
  json_t *inodes; /* "dev:ino" -> first path, for hardlinks */
  unsigned skipped_secrets;
};

static la_ssize_t tw_write(struct archive *a, void *ud, const void *buf, size_t n) {
  (void)a;
  struct tarw *t = ud;
  hasher_update(&t->h, buf, n);
  t->size += n;
  for (size_t off = 0; off < n;) {
    ssize_t w = write(t->fd, (const char *)buf + off, n - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    off += (size_t)w;
  }
  return (la_ssize_t)n;
}

static bool opaque(int fd) {
  char v[4];
  ssize_t n = fgetxattr(fd, "trusted.overlay.opaque", v, sizeof v);
  if (n < 1) n = fgetxattr(fd, "user.overlay.opaque", v, sizeof v);
  return n >= 1 && v[0] == 'y';
}

/* private keys under any .ssh directory stay out of snapshots */
static bool secret_path(const char *rel) {
  const char *s = strstr(rel, ".ssh/");
  if (!s || (s != rel && s[-1] != '/')) return false;
  const char *base = strrchr(rel, '/') + 1;
  return !(str_has_suffix(base, ".pub") || !strcmp(base, "known_hosts") || !strcmp(base, "config") || !strcmp(base, "authorized_keys") ||
           !strcmp(base, "known_hosts.old"));
}

static int add_entry(struct tarw *t, int dirfd, const char *name, const char *rel, int depth, berth_error_t *err);

static int add_dir(struct tarw *t, int dfd, const char *rel, int depth, berth_error_t *err) {
  DIR *d = fdopendir(dup(dfd));
  if (!d) return berth_error(err, errno, "list `%s`", rel);
  struct dirent *de;
  int r = 0;
  while (r == 0 && (de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    cleanup_free char *child = *rel ? xasprintf("%s/%s", rel, de->d_name) : strdup(de->d_name);
    r = add_entry(t, dfd, de->d_name, child, depth + 1, err);
  }
  closedir(d);
  return r;
}

static int add_entry(struct tarw *t, int dirfd, const char *name, const char *rel, int depth, berth_error_t *err) {
  if (depth > 256) return berth_error(err, -ELOOP, "directory tree too deep at `%s`", rel);
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return berth_error(err, errno, "stat `%s`", rel);
  if (S_ISREG(st.st_mode) && secret_path(rel)) {
    t->skipped_secrets++;
    return 0;
  }
  struct archive_entry *e = archive_entry_new();
  int ret = 0;
  if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) { /* overlay whiteout -> OCI whiteout */
    const char *slash = strrchr(rel, '/');
    cleanup_free char *wh = slash ? xasprintf("%.*s/.wh.%s", (int)(slash - rel), rel, slash + 1) : xasprintf(".wh.%s", rel);
    archive_entry_set_pathname(e, wh);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 0);
    archive_entry_set_mtime(e, st.st_mtime, 0);
    if (archive_write_header(t->a, e) != ARCHIVE_OK) ret = berth_error(err, -EIO, "tar: %s", archive_error_string(t->a));
    archive_entry_free(e);
    return ret;
  }
  archive_entry_copy_stat(e, &st);
  archive_entry_set_pathname(e, rel);
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlinkat(dirfd, name, target, sizeof target - 1);
    if (n < 0) {
      archive_entry_free(e);
      return berth_error(err, errno, "readlink `%s`", rel);
    }
    target[n] = '\0';
    archive_entry_set_symlink(e, target);
  } else if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
    char key[64];
    snprintf(key, sizeof key, "%lu:%lu", (unsigned long)st.st_dev, (unsigned long)st.st_ino);
    const char *first = json_string_value(json_object_get(t->inodes, key));
    if (first) {
      archive_entry_set_hardlink(e, first);
      archive_entry_set_size(e, 0);
    } else json_object_set_new(t->inodes, key, json_string(rel));
  } else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISFIFO(st.st_mode)) {
    archive_entry_free(e); /* sockets and devices are not part of a layer */
    return 0;
  }
  int fd = -1;
  if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
    /* the container may be running: never wait on what was swapped in
     * since the stat (a FIFO), and read only the file we looked at */
    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
    if (fd < 0) {
      archive_entry_free(e);
      return berth_error(err, errno, "open `%s`", rel);
    }
    struct stat now;
    if (fstat(fd, &now) < 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev || (now.st_mode & S_IFMT) != (st.st_mode & S_IFMT)) {
      close(fd);
      archive_entry_free(e);
      return berth_error(err, -EAGAIN, "`%s` changed while the snapshot was taken; take it again (or stop what writes it)", rel);
    }
    char v[256];
    ssize_t vn = fgetxattr(fd, "security.capability", v, sizeof v);
    if (vn > 0) archive_entry_xattr_add_entry(e, "security.capability", v, (size_t)vn);
  }
  if (archive_write_header(t->a, e) != ARCHIVE_OK) ret = berth_error(err, -EIO, "tar: %s", archive_error_string(t->a));
  if (ret == 0 && S_ISREG(st.st_mode) && !archive_entry_hardlink(e)) {
    char buf[65536];
    ssize_t n;
    off_t left = st.st_size; /* what the header declared, whatever the file does meanwhile */
    while (left > 0 && (n = read(fd, buf, (size_t)(left < (off_t)sizeof buf ? left : (off_t)sizeof buf))) > 0 && (left -= n, 1))
      if (archive_write_data(t->a, buf, (size_t)n) < 0) {
        ret = berth_error(err, -EIO, "tar: %s", archive_error_string(t->a));
        break;
      }
  }
  archive_entry_free(e);
  if (ret == 0 && S_ISDIR(st.st_mode)) {
    if (opaque(fd)) {
      struct archive_entry *o = archive_entry_new();
      cleanup_free char *opq = xasprintf("%s/.wh..wh..opq", rel);
      archive_entry_set_pathname(o, opq);
      archive_entry_set_filetype(o, AE_IFREG);
      archive_entry_set_perm(o, 0644);
      archive_entry_set_size(o, 0);
      if (archive_write_header(t->a, o) != ARCHIVE_OK) ret = berth_error(err, -EIO, "tar: %s", archive_error_string(t->a));
      archive_entry_free(o);
    }
    if (ret == 0) ret = add_dir(t, fd, rel, depth, err);
  }
  if (fd >= 0) close(fd);
  return ret;
}

static int write_blob(const char *dir, const char *data, size_t len, char digest[72], berth_error_t *err) {
  digest_of(data, len, digest);
  cleanup_free char *p = xasprintf("%s/blobs/sha256/%s", dir, digest_hex(digest));
  return write_file_atomic(p, data, len, 0644, err);
}

struct snap_args {
  const char *container, *name; /* name: a snapshot's (NULL for a commit) */
  const char *ref; /* the image it becomes, normalized */
};

struct snap_out {
  char layer[72];
  uint64_t size;
  unsigned skipped;
};

static void tarw_free(struct tarw *t) {
  if (t->a) archive_write_free(t->a);
  if (t->fd >= 0) close(t->fd);
  hasher_free(&t->h);
  json_decref(t->inodes);
}

/* the writable layer as an uncompressed tar in blobs/ (its digest is its diff_id) */
static int write_layer(int ufd, const char *work, const char *container, struct snap_out *so, berth_error_t *err) {
  if (lazylib_require_archive(err) < 0 || lazylib_require_crypto(err) < 0) return -1;
  cleanup_free char *tarp = xasprintf("%s/layer.tar", work);
  struct tarw t = {.fd = -1, .inodes = json_object()};
  t.fd = open(tarp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  int r = 0;
  if (t.fd < 0 || hasher_init(&t.h) < 0) r = berth_error(err, errno, "create `%s`", tarp);
  if (r == 0) {
    t.a = archive_write_new();
    archive_write_set_format_pax_restricted(t.a);
    archive_write_set_bytes_in_last_block(t.a, 1);
    if (archive_write_open(t.a, &t, NULL, tw_write, NULL) != ARCHIVE_OK) r = berth_error(err, -EIO, "tar: %s", archive_error_string(t.a));
  }
  if (r == 0) r = add_dir(&t, ufd, "", 0, err);
  if (r == 0 && archive_write_close(t.a) != ARCHIVE_OK) r = berth_error(err, -EIO, "tar: %s", archive_error_string(t.a));
  if (r == 0) {
    hasher_final(&t.h, so->layer);
    so->size = t.size;
    so->skipped = t.skipped_secrets;
    cleanup_free char *dst = xasprintf("%s/blobs/sha256/%s", work, digest_hex(so->layer));
    if (rename(tarp, dst) < 0) r = berth_error(err, errno, "store the snapshot layer of %s", container);
  }
  tarw_free(&t);
  return r;
}

/* Build an OCI layout in work/: base layers by reference, the new layer, config, manifest, index. */
static int build_layout(struct store *s, const struct snap_args *sa, const char *cdir, json_t *rec, const char *work, const char *ref,
                        struct snap_out *so, berth_error_t *err) {
  cleanup_free char *blobs = xasprintf("%s/blobs/sha256", work);
  if (mkdir_p(blobs, 0700, err) < 0) return -1;
  cleanup_free char *upper = xasprintf("%s/upper", cdir);
  cleanup_close int ufd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (ufd < 0) return berth_error(err, errno, "open the writable layer of %s", sa->container);
  cleanup_free char *lp = xasprintf("%s/layers.json", cdir);
  json_t *layers = json_load_file(lp, 0, NULL);
  json_t *mlayers = json_array();
  size_t i;
  json_t *v;
  int r = 0;
  json_array_foreach(layers, i, v) {
    const char *d = json_string_value(v);
    if (!d || !digest_valid(d)) continue;
    cleanup_free char *ip = store_path(s, "layers/%s/layer.json", digest_hex(d));
    json_t *info = json_load_file(ip, 0, NULL);
    if (!info) {
      r = berth_error(err, -ENOENT, "layer %s of container %s is no longer in the store", d, sa->container);
      break;
    }
    json_array_append_new(mlayers, json_pack("{s:O, s:s, s:O}", "mediaType", json_object_get(info, "media_type"), "digest", d, "size",
                                             json_object_get(info, "size")));
    json_decref(info);
  }
  json_decref(layers);
  if (r == 0) r = write_layer(ufd, work, sa->container, so, err);
  if (r < 0) {
    json_decref(mlayers);
    return -1;
  }
  json_array_append_new(mlayers, json_pack("{s:s, s:s, s:I}", "mediaType", "application/vnd.oci.image.layer.v1.tar", "digest", so->layer,
                                           "size", (json_int_t)so->size));
  /* config: the image's, plus the new diff_id and a history entry */
  const char *cd = json_string_value(json_object_get(rec, "config"));
  cleanup_free char *cbody = NULL;
  size_t clen = 0;
  json_t *config = NULL;
  if (cd && store_get_blob(s, cd, 8 << 20, &cbody, &clen, NULL) == 0) config = json_loadb(cbody, clen, 0, NULL);
  if (!config) config = json_pack("{s:s, s:s}", "architecture", "amd64", "os", "linux");
  json_t *rootfs = json_object_get(config, "rootfs");
  if (!json_is_array(json_object_get(rootfs, "diff_ids"))) {
    json_object_set_new(config, "rootfs", json_pack("{s:s, s:[]}", "type", "layers", "diff_ids"));
    rootfs = json_object_get(config, "rootfs");
  }
  json_array_append_new(json_object_get(rootfs, "diff_ids"), json_string(so->layer));
  if (!json_is_array(json_object_get(config, "history"))) json_object_set_new(config, "history", json_array());
  char when[32];
  time_t now = time(NULL);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  cleanup_free char *by = xasprintf("berth %s of container %s", sa->name ? "snapshot" : "commit", sa->container);
  json_array_append_new(json_object_get(config, "history"), json_pack("{s:s, s:s}", "created", when, "created_by", by));
  cleanup_free char *ctxt = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(config);
  char cdig[72], mdig[72];
  if (write_blob(work, ctxt, strlen(ctxt), cdig, err) < 0) {
    json_decref(mlayers);
    return -1;
  }
  json_t *man = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", 2, "mediaType", MT_OCI_MANIFEST, "config", "mediaType",
                          "application/vnd.oci.image.config.v1+json", "digest", cdig, "size", (json_int_t)strlen(ctxt), "layers", mlayers);
  cleanup_free char *mtxt = json_dumps(man, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(man);
  if (write_blob(work, mtxt, strlen(mtxt), mdig, err) < 0) return -1;
  json_t *idx = json_pack("{s:i, s:[{s:s, s:s, s:I, s:{s:s}}]}", "schemaVersion", 2, "manifests", "mediaType", MT_OCI_MANIFEST, "digest",
                          mdig, "size", (json_int_t)strlen(mtxt), "annotations", "org.opencontainers.image.ref.name", ref);
  cleanup_free char *itxt = json_dumps(idx, JSON_COMPACT);
  json_decref(idx);
  cleanup_free char *ip = xasprintf("%s/index.json", work);
  cleanup_free char *op = xasprintf("%s/oci-layout", work);
  if (write_file_atomic(ip, itxt, strlen(itxt), 0644, err) < 0) return -1;
  return write_file_atomic(op, "{\"imageLayoutVersion\":\"1.0.0\"}", 30, 0644, err);
}

/* a snapshot name taken again: the image it had goes, unless another name
 * still points at it or a container uses it (then it stays, unnamed, for
 * `berth system prune` once that container is gone) */
static void drop_if_unnamed(const char *digest) {
  struct store s;
  if (store_open(&s, true, NULL) < 0) return;
  json_t *refs = store_refs(&s, NULL);
  bool named = !refs;
  const char *k;
  json_t *v;
  json_object_foreach(refs, k, v) if (!strcmp(json_string_value(v) ?: "", digest)) named = true;
  json_decref(refs);
  json_t *users = named ? NULL : store_image_users(&s, digest);
  if (json_array_size(users)) named = true;
  json_decref(users);
  if (!named) {
    json_t *removed = json_array();
    store_remove_image(&s, digest, removed);
    json_decref(removed);
  }
  store_close(&s);
}

static void collect_dead_snapshots(struct store *s) {
  cleanup_free char *tmp = store_path(s, "tmp");
  DIR *d = opendir(tmp);
  if (!d) return;
  struct dirent *de;
  int lk;
  while ((de = readdir(d)))
    if (str_has_prefix(de->d_name, "snap-") && store_tmp_stale(s, de->d_name, &lk)) rm_rf_at(dirfd(d), de->d_name, NULL);
  closedir(d);
}

static int snapshot_in_ns(void *arg, char **result, berth_error_t *err) {
  struct snap_args *sa = arg;
  struct berth_config *cfg = config_get(err);
  if (!cfg) return -1;
  cleanup_free char *cdir = xasprintf("%s/containers/%s", cfg->data_dir, sa->container);
  cleanup_free char *sp = xasprintf("%s/state.json", cdir);
  json_t *st = json_load_file(sp, 0, NULL);
  if (!st) return berth_error(err, -ENOENT, "Container not found: %s", sa->container);
  const char *idig = json_string_value(json_object_get(st, "image_digest"));
  struct store s;
  if (store_open(&s, false, err) < 0) {
    json_decref(st);
    return -1;
  }
  json_t *rec = idig ? store_read_image(&s, idig, NULL) : NULL;
  /* the image this name had: replaced below, then freed unless named otherwise */
  char old_digest[72] = "";
  {
    json_t *refs = store_refs(&s, NULL);
    const char *od = json_string_value(json_object_get(refs, sa->ref));
    if (od) snprintf(old_digest, sizeof old_digest, "%s", od);
    json_decref(refs);
  }
  /* named by the process that made it: what a killed snapshot left is
   * collected by the next one */
  collect_dead_snapshots(&s);
  cleanup_free char *rnd = random_hex(6);
  cleanup_free char *work = store_path(&s, "tmp/snap-%d-%llu-%s", (int)getpid(), proc_starttime(getpid()), rnd);
  const char *ref = sa->ref;
  struct snap_out so = {0};
  int r = build_layout(&s, sa, cdir, rec, work, ref, &so, err);
  store_close(&s); /* the import takes the store itself */
  json_decref(rec);
  json_decref(st);
  char *res = NULL;
  if (r == 0) r = image_import_layout(work, ref, &res, err);
  json_t *imported = res ? json_loads(res, 0, NULL) : NULL;
  free(res);
  rm_rf(work, NULL);
  if (r < 0) return -1;
  if (*old_digest) drop_if_unnamed(old_digest);
  cleanup_free char *detail = xasprintf("writable layer of %s saved (%llu bytes)%s", sa->container, (unsigned long long)so.size,
                                        so.skipped ? "; private ssh keys left out" : "");
  json_t *o = json_pack("{s:b, s:s, s:s, s:s}", "success", 1, "image", ref, "layer", so.layer, "detail", detail);
  if (sa->name) json_object_set_new(o, "snapshot", json_string(sa->name));
  json_object_set(o, "digest", json_object_get(json_array_get(imported, 0), "digest"));
  json_decref(imported);
  *result = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return 0;
}

bool berth_snapshot_name_valid(const char *n) {
  if (!n || !*n || strlen(n) > 63) return false;
  for (const char *p = n; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || (p != n && (*p == '-' || *p == '_' || *p == '.')))) return false;
  return true;
}

int berth_snapshot(const char *container, const char *name, char **result, berth_error_t *err) {
  if (!berth_snapshot_name_valid(name))
    return berth_error(err, -EINVAL, "snapshot name `%.80s`: use 1-63 lowercase letters, digits, `-`, `_` or `.`", name ? name : "");
  cleanup_free char *ref = berth_snapshot_ref(name);
  struct snap_args a = {container, name, ref};
  return userns_run(snapshot_in_ns, &a, result, err);
}

int berth_commit(const char *container, const char *ref, char **result, berth_error_t *err) {
  if (!name_valid(container)) return berth_error(err, -ENOENT, "Container not found: %.80s", container ? container : "");
  cleanup_free char *dflt = NULL;
  if (!ref || !*ref) { /* localhost/NAME:latest, as load names what has no name */
    dflt = xasprintf("localhost/%s:latest", container);
    for (char *p = dflt; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    ref = dflt;
  }
  struct image_ref r;
  if (ref_parse(ref, &r, err) < 0) return berth_error_wrap(err, "commit %s", container);
  if (!r.tag || r.digest) {
    ref_free(&r);
    return berth_error(err, -EINVAL,
                       "commit %s: `%s` names a digest; give a name with a tag (NAME[:TAG]): the digest is the new image's own", container,
                       ref);
  }
  cleanup_free char *name = ref_name(&r);
  cleanup_free char *key = xasprintf("%s:%s", name, r.tag);
  ref_free(&r);
  struct snap_args a = {container, NULL, key};
  return userns_run(snapshot_in_ns, &a, result, err);
}

char *berth_snapshot_ref(const char *name) { return xasprintf("berth.local/snapshot/%s:latest", name); }
