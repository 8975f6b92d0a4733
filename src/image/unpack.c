/* Layer unpacking.
 *
 * libarchive only parses; every filesystem change is made here with *at()
 * calls on a parent directory opened by openat2(RESOLVE_IN_ROOT), so no
 * entry name, symlink or hardlink in a layer can reach outside it. Names
 * that climb above the root ("../x") fail the layer; a leading "/" is
 * dropped (tar does the same); an entry for the root itself is ignored. */
#define _GNU_SOURCE
#include "image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "image/digest.h"

struct src {
  blob_read_fn rd;
  void *ctx;
  struct hasher h;
  uint64_t n;
  berth_error_t err;
};

static la_ssize_t la_read(struct archive *a, void *ud, const void **buf) {
  (void)a;
  struct src *s = ud;
  ssize_t n = s->rd(s->ctx, buf, &s->err);
  if (n < 0) return -1;
  if (n > 0) {
    hasher_update(&s->h, *buf, (size_t)n);
    s->n += (uint64_t)n;
  }
  return n;
}

struct dir_time {
  char *path;
  struct timespec ts[2];
};

struct ctx {
  int root;
  const struct unpack_opts *o;
  struct unpack_stats *st;
  struct dir_time *dirs;
  size_t n_dirs, cap_dirs;
  const char *digest;
};

/* Lexically clean an entry name. Returns 0 and the cleaned relative path
 * ("" for the root), or -1 if it climbs out. *abs is set for a leading "/". */
static int clean_path(const char *in, char **out, bool *abs) {
  *abs = in[0] == '/';
  size_t n = strlen(in);
  char *res = malloc(n + 1);
  if (!res) return -1;
  size_t rl = 0;
  const char *p = in;
  while (*p) {
    while (*p == '/') p++;
    const char *e = p + strcspn(p, "/");
    size_t cl = e - p;
    if (cl == 0) break;
    if (cl == 1 && p[0] == '.') {
    } else if (cl == 2 && p[0] == '.' && p[1] == '.') {
      if (rl == 0) {
        free(res);
        *out = NULL;
        return -2;
      }
      while (rl > 0 && res[rl - 1] != '/') rl--;
      if (rl > 0) rl--;
    } else {
      if (rl) res[rl++] = '/';
      memcpy(res + rl, p, cl);
      rl += cl;
    }
    p = e;
  }
  res[rl] = '\0';
  *out = res;
  return 0;
}

static void split(char *path, char **dir, char **base) {
  char *s = strrchr(path, '/');
  if (s) {
    *s = '\0';
    *dir = path;
    *base = s + 1;
  } else {
    *dir = (char *)"";
    *base = path;
  }
}

/* Open directory `dir` inside the root, creating missing components. */
static int open_dir(struct ctx *c, const char *dir, bool create, berth_error_t *err) {
  if (create) return mkdir_in_root(c->root, dir, 0755, 0, err);
  int fd = openat_in_root(c->root, dir, O_PATH | O_DIRECTORY, 0, 0);
  if (fd < 0) return berth_error(err, errno, "open directory `%s` in layer", dir);
  return fd;
}

/* Make room for a new entry `base` in parent: a directory stays when a
 * directory comes again; anything else is replaced. */
static int clear_slot(int parent, const char *base, bool keep_dir, bool *was_dir, berth_error_t *err) {
  struct stat st;
  *was_dir = false;
  if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return 0;
    return berth_error(err, errno, "stat `%s`", base);
  }
  if (S_ISDIR(st.st_mode) && keep_dir) {
    *was_dir = true;
    return 0;
  }
  return rm_rf_at(parent, base, err);
}

static void set_owner(struct ctx *c, int fd, const char *name, uid_t u, gid_t g) {
  int r = name ? fchownat(fd, name, u, g, AT_SYMLINK_NOFOLLOW) : fchown(fd, u, g);
  if (r < 0) c->st->chown_failed++; /* unmapped id when rootless without subuids */
}

static int set_xattrs(struct ctx *c, int fd, struct archive_entry *e, berth_error_t *err) {
  (void)err;
  const char *name;
  const void *val;
  size_t size;
  archive_entry_xattr_reset(e);
  while (archive_entry_xattr_next(e, &name, &val, &size) == ARCHIVE_OK) {
    /* overlay's own attributes would let a layer forge whiteouts or
     * redirects; other namespaces are not the image's to set */
    bool ok = (str_has_prefix(name, "user.") && !str_has_prefix(name, "user.overlay.")) || !strcmp(name, "security.capability");
    if (!ok || fsetxattr(fd, name, val, size, 0) < 0) c->st->xattrs_skipped++;
  }
  return 0;
}

static int remember_dir(struct ctx *c, const char *path, struct archive_entry *e) {
  if (c->n_dirs == c->cap_dirs) {
    size_t n = c->cap_dirs ? c->cap_dirs * 2 : 64;
    struct dir_time *d = realloc(c->dirs, n * sizeof *d);
    if (!d) return -1;
    c->dirs = d;
    c->cap_dirs = n;
  }
  struct dir_time *d = &c->dirs[c->n_dirs++];
  d->path = strdup(path);
  d->ts[0].tv_sec = archive_entry_atime_is_set(e) ? archive_entry_atime(e) : archive_entry_mtime(e);
  d->ts[0].tv_nsec = archive_entry_atime_is_set(e) ? archive_entry_atime_nsec(e) : archive_entry_mtime_nsec(e);
  d->ts[1].tv_sec = archive_entry_mtime(e);
  d->ts[1].tv_nsec = archive_entry_mtime_nsec(e);
  return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2]) {
  ts[1].tv_sec = archive_entry_mtime(e);
  ts[1].tv_nsec = archive_entry_mtime_nsec(e);
  if (archive_entry_atime_is_set(e)) {
    ts[0].tv_sec = archive_entry_atime(e);
    ts[0].tv_nsec = archive_entry_atime_nsec(e);
  } else ts[0] = ts[1];
}

static int write_regular(struct ctx *c, struct archive *a, struct archive_entry *e, int parent, const char *base, const char *path,
                         berth_error_t *err) {
  cleanup_close int fd = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return berth_error(err, errno, "create `%s`", path);
  const void *buf;
  size_t size;
  la_int64_t off;
  int r;
  while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
    const char *p = buf;
    while (size) {
      ssize_t w = pwrite(fd, p, size, off);
      if (w < 0) {
        if (errno == EINTR) continue;
        return berth_error(err, errno, "write `%s`", path);
      }
      p += w;
      size -= (size_t)w;
      off += w;
      c->st->bytes += (uint64_t)w;
    }
  }
  if (r != ARCHIVE_EOF) return berth_error(err, -EIO, "read data of `%s`: %s", path, archive_error_string(a));
  /* holes of sparse entries stay holes */
  if (ftruncate(fd, archive_entry_size(e)) < 0) return berth_error(err, errno, "size `%s`", path);
  set_owner(c, fd, NULL, archive_entry_uid(e), archive_entry_gid(e));
  if (fchmod(fd, archive_entry_perm(e) & 07777) < 0) return berth_error(err, errno, "chmod `%s`", path);
  set_xattrs(c, fd, e, err);
  struct timespec ts[2];
  entry_times(e, ts);
  futimens(fd, ts);
  return 0;
}

static int whiteout(struct ctx *c, const char *dir, const char *wbase, const char *path, berth_error_t *err) {
  const char *opq_name = c->o->user_xattrs ? "user.overlay.opaque" : "trusted.overlay.opaque";
  if (!strcmp(wbase, ".wh..wh..opq")) {
    int dfd = openat_in_root(c->root, dir, O_PATH | O_DIRECTORY, 0, 0);
    if (dfd < 0 && errno == ENOENT) {
      dfd = open_dir(c, dir, true, err);
      if (dfd < 0) return -1;
    }
    if (dfd < 0) return berth_error(err, errno, "open `%s` for opaque marker", dir);
    close(dfd);
    cleanup_close int fd = openat_in_root(c->root, dir, O_RDONLY | O_DIRECTORY, 0, RESOLVE_NO_SYMLINKS);
    if (fd < 0) return berth_error(err, errno, "open `%s` for opaque marker", dir);
    if (fsetxattr(fd, opq_name, "y", 1, 0) < 0)
      return berth_error(err, errno, "mark `%s` opaque (%s); the store's filesystem needs xattr support", dir, opq_name);
    return 0;
  }
  if (str_has_prefix(wbase, ".wh..wh.")) return 0; /* aufs bookkeeping (.wh..wh.plnk etc.) */
  const char *name = wbase + 4;
  if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
    return berth_error(err, -EINVAL, "layer %s: invalid whiteout entry `%s`", c->digest, path);
  cleanup_close int parent = open_dir(c, dir, true, err);
  if (parent < 0) return -1;
  struct stat st;
  if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0) return 0; /* this layer's own file wins */
  if (mknodat(parent, name, S_IFCHR | 0, makedev(0, 0)) < 0) return berth_error(err, errno, "create whiteout for `%s/%s`", dir, name);
  return 0;
}

static int handle_entry(struct ctx *c, struct archive *a, struct archive_entry *e, berth_error_t *err) {
  const char *raw = archive_entry_pathname(e);
  if (!raw) return berth_error(err, -EINVAL, "layer %s: entry without a name", c->digest);
  cleanup_free char *path = NULL;
  bool abs;
  int cr = clean_path(raw, &path, &abs);
  if (cr == -2)
    return berth_error(err, -EPERM, "layer %s: entry `%.200s` climbs out of the layer root; refusing the layer", c->digest, raw);
  if (cr < 0) return berth_error(err, -ENOMEM, "clean path");
  if (strlen(path) > 4000) return berth_error(err, -ENAMETOOLONG, "layer %s: entry name too long", c->digest);
  if (abs) c->st->neutralized++;
  mode_t type = archive_entry_filetype(e);
  const char *hl = archive_entry_hardlink(e);
  c->st->entries++;

  if (!*path) { /* the root itself: keep its mode, never replace it */
    if (type != AE_IFDIR || hl) {
      berth_warn("layer %.19s: entry `%.100s` would replace the layer root; ignored", c->digest, raw);
      c->st->neutralized++;
    }
    return 0;
  }
  cleanup_free char *dcopy = strdup(path);
  char *dir, *base;
  split(dcopy, &dir, &base);
  if (str_has_prefix(base, ".wh.")) return whiteout(c, dir, base, path, err);

  cleanup_close int parent = open_dir(c, dir, true, err);
  if (parent < 0) return -1;
  bool was_dir;
  if (clear_slot(parent, base, type == AE_IFDIR && !hl, &was_dir, err) < 0) return -1;

  if (hl) {
    cleanup_free char *target = NULL;
    bool tabs;
    if (clean_path(hl, &target, &tabs) != 0 || !*target)
      return berth_error(err, -EPERM, "layer %s: hardlink `%.200s` points outside the layer (`%.200s`); refusing the layer", c->digest, raw,
                         hl);
    cleanup_free char *tcopy = strdup(target);
    char *tdir, *tbase;
    split(tcopy, &tdir, &tbase);
    cleanup_close int tparent = open_dir(c, tdir, false, err);
    if (tparent < 0) return berth_error_wrap(err, "layer %s: hardlink `%.200s` to missing `%.200s`", c->digest, raw, hl);
    /* linkat without AT_SYMLINK_FOLLOW links the name itself, never what a symlink points to */
    if (linkat(tparent, tbase, parent, base, 0) < 0)
      return berth_error(err, errno, "layer %s: hardlink `%.200s` -> `%.200s`", c->digest, raw, hl);
    return 0;
  }

  struct timespec ts[2];
  entry_times(e, ts);
  switch (type) {
  case AE_IFREG: return write_regular(c, a, e, parent, base, path, err);
  case AE_IFDIR: {
    if (!was_dir && mkdirat(parent, base, 0700) < 0) return berth_error(err, errno, "create directory `%s`", path);
    cleanup_close int fd = openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return berth_error(err, errno, "open directory `%s`", path);
    set_owner(c, fd, NULL, archive_entry_uid(e), archive_entry_gid(e));
    if (fchmod(fd, archive_entry_perm(e) & 07777) < 0) return berth_error(err, errno, "chmod `%s`", path);
    set_xattrs(c, fd, e, err);
    if (remember_dir(c, path, e) < 0) return berth_error(err, -ENOMEM, "unpack");
    return 0;
  }
  case AE_IFLNK: {
    const char *t = archive_entry_symlink(e);
    if (!t) return berth_error(err, -EINVAL, "layer %s: symlink `%.200s` without a target", c->digest, raw);
    if (symlinkat(t, parent, base) < 0) return berth_error(err, errno, "create symlink `%s`", path);
    set_owner(c, parent, base, archive_entry_uid(e), archive_entry_gid(e));
    utimensat(parent, base, ts, AT_SYMLINK_NOFOLLOW);
    return 0;
  }
  case AE_IFIFO: {
    if (mknodat(parent, base, S_IFIFO | (archive_entry_perm(e) & 0777), 0) < 0) return berth_error(err, errno, "create fifo `%s`", path);
    set_owner(c, parent, base, archive_entry_uid(e), archive_entry_gid(e));
    utimensat(parent, base, ts, AT_SYMLINK_NOFOLLOW);
    return 0;
  }
  case AE_IFCHR:
    if (archive_entry_rdevmajor(e) == 0 && archive_entry_rdevminor(e) == 0) {
      /* already in overlay's whiteout form */
      if (mknodat(parent, base, S_IFCHR, makedev(0, 0)) < 0) return berth_error(err, errno, "create whiteout `%s`", path);
      return 0;
    }
    /* fallthrough */
  case AE_IFBLK:
    /* A container gets its /dev from berth; device nodes from an image are
     * never created (they would be a way to the host's hardware). */
    berth_debug("layer %.19s: device node `%s` skipped", c->digest, path);
    c->st->devices_skipped++;
    return 0;
  default: berth_debug("layer %.19s: `%s` of type 0%o skipped", c->digest, path, (unsigned)type); return 0;
  }
}

int unpack_layer(int destfd, blob_read_fn rd, void *rdctx, const char *digest, uint64_t size, const struct unpack_opts *o,
                 struct unpack_stats *st, berth_error_t *err) {
  struct src s = {.rd = rd, .ctx = rdctx};
  if (hasher_init(&s.h) < 0) return berth_error(err, -ENOMEM, "sha256");
  struct ctx c = {.root = destfd, .o = o, .st = st, .digest = digest ? digest : "archive"};
  memset(st, 0, sizeof *st);
  int ret = 0;
  struct archive *a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_filter_none(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_empty(a);
  if (archive_read_open(a, &s, NULL, la_read, NULL) != ARCHIVE_OK) {
    if (s.err) {
      if (err) *err = s.err, s.err = NULL;
      ret = berth_error_wrap(err, "layer %s", c.digest);
    } else ret = berth_error(err, -EINVAL, "layer %s: not a tar stream: %s", c.digest, archive_error_string(a));
    goto out;
  }
  struct archive_entry *e;
  for (;;) {
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      if (s.err) {
        if (err) *err = s.err, s.err = NULL;
        ret = berth_error_wrap(err, "layer %s", c.digest);
      } else ret = berth_error(err, -EINVAL, "layer %s: corrupt tar stream: %s", c.digest, archive_error_string(a));
      goto out;
    }
    if (handle_entry(&c, a, e, err) < 0) {
      if (s.err) { /* the download failed underneath libarchive: say that */
        berth_error_clear(err);
        if (err) *err = s.err, s.err = NULL;
        berth_error_wrap(err, "layer %s", c.digest);
      } else if (err && *err && !str_has_prefix((*err)->msg, "layer ")) {
        const char *raw = archive_entry_pathname(e);
        berth_error_wrap(err, "layer %s: entry `%.200s` refused (the whole layer is refused)", c.digest, raw ? raw : "?");
      }
      ret = -1;
      goto out;
    }
  }
  /* the digest covers the whole blob, including padding after the tar end */
  for (; digest;) {
    const void *buf;
    ssize_t n = rd(rdctx, &buf, &s.err);
    if (n < 0) {
      if (err) *err = s.err, s.err = NULL;
      ret = berth_error_wrap(err, "layer %s", c.digest);
      goto out;
    }
    if (n == 0) break;
    hasher_update(&s.h, buf, (size_t)n);
    s.n += (uint64_t)n;
    if (s.n > size) break;
  }
  char got[72];
  hasher_final(&s.h, got);
  st->compressed = s.n;
  if (!digest) { /* a local archive with nothing to verify against */
  } else if (s.n != size) {
    ret = berth_error(err, -EBADMSG, "layer %s: got %llu bytes, the manifest says %llu; the data was discarded", digest,
                      (unsigned long long)s.n, (unsigned long long)size);
    goto out;
  } else if (strcmp(got, digest)) {
    ret = berth_error(err, -EBADMSG, "layer %s: content digest is %s; the data was discarded (corrupt or tampered blob)", digest, got);
    goto out;
  }
  /* directories last, so their children did not bump the mtimes */
  for (size_t i = c.n_dirs; i-- > 0;) {
    int fd = openat_in_root(destfd, c.dirs[i].path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS);
    if (fd >= 0) {
      futimens(fd, c.dirs[i].ts);
      close(fd);
    }
  }
out:
  archive_read_free(a);
  hasher_free(&s.h);
  berth_error_clear(&s.err);
  for (size_t i = 0; i < c.n_dirs; i++) free(c.dirs[i].path);
  free(c.dirs);
  return ret;
}
