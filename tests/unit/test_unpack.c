#define _GNU_SOURCE
/* The confined unpacker against crafted tar streams: each hostile case is
 * a test that would have caught an escape. */
#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "image/digest.h"
#include "image/unpack.h"

struct ent {
  char type; /* f file, d dir, l symlink, h hardlink, c chardev, b blockdev, p fifo */
  const char *name, *data;
  int mode;
  const char *xattr;
  int64_t sparse_size; /* >0: apparent size of a sparse file with `data` at the start */
};

struct blob {
  char *data;
  size_t len, pos;
  char digest[72];
};

static struct blob make_tar(const struct ent *e, size_t n, bool gzip) {
  struct blob b = {0};
  size_t cap = 1 << 22;
  b.data = malloc(cap);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  archive_write_set_bytes_in_last_block(a, 1);
  cr_assert_eq(archive_write_open_memory(a, b.data, cap, &b.len), ARCHIVE_OK);
  for (size_t i = 0; i < n; i++) {
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, e[i].name);
    archive_entry_set_mtime(ae, 1577836800, 0);
    size_t dl = e[i].data ? strlen(e[i].data) : 0;
    switch (e[i].type) {
    case 'f':
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_set_size(ae, e[i].sparse_size ? e[i].sparse_size : (int64_t)dl);
      if (e[i].sparse_size) archive_entry_sparse_add_entry(ae, 0, (int64_t)dl);
      break;
    case 'd': archive_entry_set_filetype(ae, AE_IFDIR); break;
    case 'l':
      archive_entry_set_filetype(ae, AE_IFLNK);
      archive_entry_set_symlink(ae, e[i].data);
      dl = 0;
      break;
    case 'h':
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_set_hardlink(ae, e[i].data);
      dl = 0;
      break;
    case 'c':
      archive_entry_set_filetype(ae, AE_IFCHR);
      archive_entry_set_rdev(ae, makedev(1, 1));
      dl = 0;
      break;
    case 'b':
      archive_entry_set_filetype(ae, AE_IFBLK);
      archive_entry_set_rdev(ae, makedev(8, 0));
      dl = 0;
      break;
    case 'p':
      archive_entry_set_filetype(ae, AE_IFIFO);
      dl = 0;
      break;
    }
    archive_entry_set_perm(ae, e[i].mode ? e[i].mode : (e[i].type == 'd' ? 0755 : 0644));
    if (e[i].xattr) archive_entry_xattr_add_entry(ae, e[i].xattr, "v", 1);
    cr_assert_eq(archive_write_header(a, ae), ARCHIVE_OK, "%s", archive_error_string(a));
    if (dl) archive_write_data(a, e[i].data, dl);
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  digest_of(b.data, b.len, b.digest);
  return b;
}

static ssize_t mem_read(void *ctx, const void **data, berth_error_t *err) {
  (void)err;
  struct blob *b = ctx;
  size_t n = b->len - b->pos;
  if (n > 7) n = 7 + (b->pos % 4096); /* odd chunk sizes exercise buffering */
  if (n > b->len - b->pos) n = b->len - b->pos;
  *data = b->data + b->pos;
  b->pos += n;
  return (ssize_t)n;
}

static char root[] = "/tmp/berth-unit-XXXXXX";
static char outside[] = "/tmp/berth-unit-outside-XXXXXX";
static int rootfd;

static void setup(void) {
  cr_assert_not_null(mkdtemp(root));
  cr_assert_not_null(mkdtemp(outside));
  mkdir(strcat(strcpy((char[256]){0}, root), "/layer"), 0755);
  char p[300];
  snprintf(p, sizeof p, "%s/layer", root);
  rootfd = open(p, O_RDONLY | O_DIRECTORY);
}

static void teardown(void) {
  close(rootfd);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s %s", root, outside);
  cr_assert_eq(system(cmd), 0);
}

static int unpack(struct blob *b, struct unpack_stats *st, berth_error_t *err) {
  struct unpack_opts o = {.user_xattrs = true};
  b->pos = 0;
  return unpack_layer(rootfd, mem_read, b, b->digest, b->len, &o, st, err);
}

static bool outside_empty(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", outside);
  return system(cmd) == 0;
}

static bool exists_in_layer(const char *rel) {
  struct stat st;
  return fstatat(rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

TestSuite(unpack, .init = setup, .fini = teardown);

Test(unpack, regular_tree_gzip_and_plain) {
  struct ent e[] = {{'d', "etc", NULL, 0755, NULL, 0},
                    {'f', "etc/hello", "hi\n", 0640, "user.berth", 0},
                    {'f', "usr/bin/tool", "#!/bin/sh\n", 04755, NULL, 0},
                    {'l', "etc/link", "hello", 0, NULL, 0},
                    {'h', "etc/hard", "etc/hello", 0, NULL, 0},
                    {'p', "fifo", NULL, 0600, NULL, 0}};
  for (int gz = 0; gz < 2; gz++) {
    struct blob b = make_tar(e, 6, gz);
    struct unpack_stats st;
    berth_error_t err = NULL;
    cr_assert_eq(unpack(&b, &st, &err), 0, "%s", err ? err->msg : "");
    struct stat a, h;
    cr_assert_eq(fstatat(rootfd, "etc/hello", &a, 0), 0);
    cr_assert_eq(fstatat(rootfd, "etc/hard", &h, 0), 0);
    cr_assert_eq(a.st_ino, h.st_ino, "hardlink must share the inode");
    cr_assert_eq(a.st_mode & 07777, 0640);
    cr_assert_eq(a.st_mtime, 1577836800);
    cr_assert_eq(fstatat(rootfd, "usr/bin/tool", &a, 0), 0);
    cr_assert_eq(a.st_mode & 07777, 04755, "setuid kept");
    char t[32] = {0};
    cr_assert_eq(readlinkat(rootfd, "etc/link", t, sizeof t), 5);
    cr_assert_str_eq(t, "hello");
    char cmd[400], v[8] = {0};
    snprintf(cmd, sizeof cmd, "%s/layer/etc/hello", root);
    cr_assert_eq(getxattr(cmd, "user.berth", v, sizeof v), 1);
    free(b.data);
    snprintf(cmd, sizeof cmd, "rm -rf %s/layer/*", root);
    cr_assert_eq(system(cmd), 0);
  }
}

Test(unpack, whiteouts_become_overlay_form) {
  struct ent e[] = {{'f', "a/.wh.gone", "", 0, NULL, 0}, {'f', "a/opq/.wh..wh..opq", "", 0, NULL, 0},
                    {'f', "a/opq/new", "n", 0, NULL, 0}, {'f', "keep", "k", 0, NULL, 0},
                    {'f', ".wh.keep", "", 0, NULL, 0},   {'f', ".wh..wh.plnk", "", 0, NULL, 0}};
  struct blob b = make_tar(e, 6, true);
  struct unpack_stats st;
  berth_error_t err = NULL;
  cr_assert_eq(unpack(&b, &st, &err), 0, "%s", err ? err->msg : "");
  struct stat s;
  cr_assert_eq(fstatat(rootfd, "a/gone", &s, AT_SYMLINK_NOFOLLOW), 0);
  cr_assert(S_ISCHR(s.st_mode) && s.st_rdev == makedev(0, 0), "whiteout is a 0/0 char device");
  char p[300], v[4] = {0};
  snprintf(p, sizeof p, "%s/layer/a/opq", root);
  cr_assert_eq(getxattr(p, "user.overlay.opaque", v, sizeof v), 1);
  cr_assert_eq(v[0], 'y');
  cr_assert(exists_in_layer("a/opq/new"));
  cr_assert_eq(fstatat(rootfd, "keep", &s, AT_SYMLINK_NOFOLLOW), 0);
  cr_assert(S_ISREG(s.st_mode), "a whiteout never hides a file of its own layer");
  cr_assert_not(exists_in_layer(".wh..wh.plnk"));
  free(b.data);
}

static void expect_refused(struct ent *e, size_t n, const char *needle) {
  struct blob b = make_tar(e, n, false);
  struct unpack_stats st;
  berth_error_t err = NULL;
  cr_assert_lt(unpack(&b, &st, &err), 0, "hostile layer must fail");
  cr_assert(strstr(err->msg, needle), "message `%s` should mention `%s`", err->msg, needle);
  cr_assert(outside_empty(), "nothing may be written outside");
  berth_error_free(err);
  free(b.data);
}

Test(unpack, dotdot_escape_refused) {
  char name[400];
  snprintf(name, sizeof name, "../../../../../../../../../..%s/pwned", outside);
  struct ent e[] = {{'f', name, "x", 0, NULL, 0}};
  expect_refused(e, 1, "climbs out");
  struct ent e2[] = {{'f', "a/../../x", "x", 0, NULL, 0}};
  expect_refused(e2, 1, "climbs out");
}

Test(unpack, hardlink_outside_refused) {
  struct ent e[] = {{'h', "hl", "../../../../../../etc/passwd", 0, NULL, 0}};
  expect_refused(e, 1, "outside the layer");
  /* an absolute target is confined: /etc/passwd means the layer's own, missing here */
  struct ent e2[] = {{'h', "hl", "/etc/passwd", 0, NULL, 0}};
  expect_refused(e2, 1, "missing");
}

Test(unpack, absolute_and_symlink_writes_stay_inside) {
  char abs[400], target[400];
  snprintf(abs, sizeof abs, "%s/pwned-abs", outside);
  snprintf(target, sizeof target, "%s", outside);
  struct ent e[] = {{'f', abs, "x", 0, NULL, 0},           {'l', "evil", target, 0, NULL, 0},
                    {'f', "evil/pwned", "x", 0, NULL, 0},  {'l', "up", "../../../../../../../../..", 0, NULL, 0},
                    {'f', "up/pwned-up", "x", 0, NULL, 0}, {'l', ".", "/", 0, NULL, 0},
                    {'f', "after", "x", 0, NULL, 0}};
  struct blob b = make_tar(e, 7, false);
  struct unpack_stats st;
  berth_error_t err = NULL;
  cr_assert_eq(unpack(&b, &st, &err), 0, "%s", err ? err->msg : "");
  cr_assert(outside_empty(), "writes through symlinks must stay in the layer");
  char inside[500];
  snprintf(inside, sizeof inside, "%s/pwned-abs", outside + 1);
  cr_assert(exists_in_layer(inside), "absolute names land inside the layer");
  cr_assert(exists_in_layer("pwned-up"), "`up` resolves to the layer root");
  cr_assert(exists_in_layer("after"));
  cr_assert_geq(st.neutralized, 2);
  free(b.data);
}

Test(unpack, device_nodes_skipped) {
  struct ent e[] = {{'c', "dev/mem", NULL, 0, NULL, 0}, {'b', "dev/sda", NULL, 0, NULL, 0}, {'f', "ok", "x", 0, NULL, 0}};
  struct blob b = make_tar(e, 3, false);
  struct unpack_stats st;
  berth_error_t err = NULL;
  cr_assert_eq(unpack(&b, &st, &err), 0, "%s", err ? err->msg : "");
  cr_assert_not(exists_in_layer("dev/mem"));
  cr_assert_not(exists_in_layer("dev/sda"));
  cr_assert_eq(st.devices_skipped, 2);
  free(b.data);
}

Test(unpack, overlay_xattrs_from_a_layer_are_dropped) {
  struct ent e[] = {{'d', "d", NULL, 0755, "user.overlay.redirect", 0}, {'f', "f", "x", 0, "trusted.overlay.opaque", 0}};
  struct blob b = make_tar(e, 2, false);
  struct unpack_stats st;
  berth_error_t err = NULL;
  cr_assert_eq(unpack(&b, &st, &err), 0, "%s", err ? err->msg : "");
  char p[300], v[8];
  snprintf(p, sizeof p, "%s/layer/d", root);
  cr_assert_lt(getxattr(p, "user.overlay.redirect", v, sizeof v), 0);
  snprintf(p, sizeof p, "%s/layer/f", root);
  cr_assert_lt(getxattr(p, "trusted.overlay.opaque", v, sizeof v), 0);
  cr_assert_geq(st.xattrs_skipped, 1);
  free(b.data);
}

Test(unpack, sparse_file_stays_sparse) {
  struct ent e[] = {{'f', "huge.img", "data", 0, NULL, 64LL << 30}, {'f', "after", "x", 0, NULL, 0}};
  struct blob b = make_tar(e, 2, true);
  struct unpack_stats st;
  berth_error_t err = NULL;
  cr_assert_eq(unpack(&b, &st, &err), 0, "%s", err ? err->msg : "");
  struct stat s;
  cr_assert_eq(fstatat(rootfd, "huge.img", &s, 0), 0);
  cr_assert_eq(s.st_size, 64LL << 30);
  cr_assert_lt(s.st_blocks * 512, 1 << 20, "holes must not be written out");
  cr_assert(exists_in_layer("after"));
  free(b.data);
}

Test(unpack, digest_and_size_mismatch_fail) {
  struct ent e[] = {{'f', "a", "x", 0, NULL, 0}};
  struct blob b = make_tar(e, 1, true);
  struct unpack_opts o = {.user_xattrs = true};
  struct unpack_stats st;
  berth_error_t err = NULL;
  b.pos = 0;
  const char *wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
  cr_assert_lt(unpack_layer(rootfd, mem_read, &b, wrong, b.len, &o, &st, &err), 0);
  cr_assert(strstr(err->msg, "content digest"), "%s", err->msg);
  berth_error_clear(&err);
  b.pos = 0;
  cr_assert_lt(unpack_layer(rootfd, mem_read, &b, b.digest, b.len + 1, &o, &st, &err), 0);
  cr_assert(strstr(err->msg, "manifest says"), "%s", err->msg);
  berth_error_clear(&err);
  free(b.data);
}

Test(unpack, garbage_is_not_a_tar) {
  struct blob b = {.data = strdup("this is not a tar archive at all, not even close........"), .pos = 0};
  b.len = strlen(b.data);
  digest_of(b.data, b.len, b.digest);
  struct unpack_stats st;
  berth_error_t err = NULL;
  cr_assert_lt(unpack(&b, &st, &err), 0);
  berth_error_free(err);
  free(b.data);
}
