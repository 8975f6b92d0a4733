/* gc: du_at (disk use as du -x counts it), the tmp/ entry kinds, and the
 * store's rules for what in tmp/ is a leftover (store_tmp_stale) */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/gc.h"
#include "image/store.h"
#include "util/util.h"

static char *tmpdir(void) {
  char *d = strdup("/tmp/berth-gc-test.XXXXXX");
  cr_assert(mkdtemp(d));
  return d;
}

static uint64_t blocks_of(const char *p) {
  struct stat st;
  cr_assert_eq(lstat(p, &st), 0, "%s", p);
  return (uint64_t)st.st_blocks * 512;
}

static void write_bytes(const char *p, size_t n) {
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  cr_assert(fd >= 0);
  char buf[4096];
  memset(buf, 'x', sizeof buf);
  for (size_t off = 0; off < n;) {
    size_t k = n - off < sizeof buf ? n - off : sizeof buf;
    cr_assert_eq(write(fd, buf, k), (ssize_t)k);
    off += k;
  }
  close(fd);
}

Test(gc, du_counts_blocks_each_inode_once_and_follows_no_link) {
  char *d = tmpdir();
  char *sub = xasprintf("%s/t", d), *a = xasprintf("%s/t/a", d), *b = xasprintf("%s/t/b", d), *ln = xasprintf("%s/t/ln", d),
       *sym = xasprintf("%s/t/sym", d), *big = xasprintf("%s/big", d);
  cr_assert_eq(mkdir(sub, 0755), 0);
  write_bytes(a, 100000);
  write_bytes(b, 1);
  cr_assert_eq(link(a, ln), 0); /* a second name: counted once */
  write_bytes(big, 3 << 20);
  cr_assert_eq(symlink(big, sym), 0); /* a link to 3 MiB outside: not followed */
  uint64_t want = blocks_of(sub) + blocks_of(a) + blocks_of(b) + blocks_of(sym);
  struct du_seen seen = {0};
  cr_assert_eq(du_at(AT_FDCWD, sub, &seen), want);
  /* with the same set, the linked file counts nothing a second time */
  cr_assert_eq(du_at(AT_FDCWD, a, &seen), 0);
  du_seen_free(&seen);
  cr_assert_eq(du_at(AT_FDCWD, a, &seen), blocks_of(a), "a fresh set counts it again");
  du_seen_free(&seen);
  char *missing = xasprintf("%s/nope", d);
  cr_assert_eq(du_at(AT_FDCWD, missing, &seen), 0);
  rm_rf(d, NULL);
  free(sub), free(a), free(b), free(ln), free(sym), free(big), free(missing), free(d);
}

Test(gc, du_of_a_sparse_file_is_what_it_holds) {
  char *d = tmpdir();
  char *img = xasprintf("%s/disk.img", d);
  int fd = open(img, O_WRONLY | O_CREAT, 0600);
  cr_assert(fd >= 0);
  cr_assert_eq(ftruncate(fd, 1LL << 30), 0); /* 1 GiB apparent, nothing allocated */
  cr_assert_eq(pwrite(fd, "x", 1, 4096 * 10), 1);
  close(fd);
  struct du_seen seen = {0};
  uint64_t n = du_at(AT_FDCWD, img, &seen);
  cr_assert_eq(n, blocks_of(img));
  cr_assert_lt(n, 1 << 20, "a sparse image counts its allocated blocks, not its length (%llu)", (unsigned long long)n);
  du_seen_free(&seen);
  rm_rf(d, NULL);
  free(img), free(d);
}

Test(gc, du_seen_grows_past_many_links) {
  char *d = tmpdir();
  struct du_seen seen = {0};
  uint64_t want = 0;
  for (int i = 0; i < 600; i++) {
    char *p = xasprintf("%s/f%d", d, i), *q = xasprintf("%s/g%d", d, i);
    write_bytes(p, 10);
    cr_assert_eq(link(p, q), 0);
    want += blocks_of(p);
    free(p), free(q);
  }
  cr_assert_eq(du_at(AT_FDCWD, d, &seen), want + blocks_of(d), "600 files with two names each: each counted once");
  cr_assert_eq(seen.n, 600);
  du_seen_free(&seen);
  rm_rf(d, NULL);
  free(d);
}

Test(gc, tmp_kinds) {
  cr_assert_eq(gc_tmp_kind("layer-abc", true), GC_TMP_LAYER);
  cr_assert_eq(gc_tmp_kind("load-1f2e", true), GC_TMP_LOAD);
  cr_assert_eq(gc_tmp_kind("snap-12-34-ab", true), GC_TMP_SNAPSHOT);
  cr_assert_eq(gc_tmp_kind("rm-abc-12", true), GC_TMP_REMOVAL);
  cr_assert_eq(gc_tmp_kind("whatever", true), GC_TMP_UNKNOWN);
  cr_assert_eq(gc_tmp_kind("layer-abc", false), GC_TMP_UNKNOWN, "the data dir's tmp has no layers");
  cr_assert_eq(gc_tmp_kind("overlay-ok-6.1.0", false), GC_TMP_CACHE);
  cr_assert_eq(gc_tmp_kind("overlay-probe-ab12", false), GC_TMP_NO_OWNER);
  cr_assert_eq(gc_tmp_kind("provision-Xy12ab", false), GC_TMP_NO_OWNER);
  cr_assert(strstr(gc_tmp_why(GC_TMP_NO_OWNER, false), "kept"));
}

/* a store root of our own, with locks/ (store_open needs a config) */
static struct store fake_store(char **dir) {
  *dir = tmpdir();
  struct store s = {.root = xstrdup(*dir), .gc_lock = -1};
  char *l = xasprintf("%s/locks", *dir);
  cr_assert_eq(mkdir(l, 0700), 0);
  free(l);
  return s;
}

Test(gc, tmp_stale_by_each_writers_rule) {
  char *dir;
  struct store s = fake_store(&dir);
  int lk;
  /* a snapshot: named by its process (pid and start time) */
  char *mine = xasprintf("snap-%d-%llu-ab", (int)getpid(), proc_starttime(getpid()));
  cr_assert_eq(store_tmp_stale(&s, mine, &lk), 0, "our own snapshot is being made");
  cr_assert_eq(lk, -1);
  pid_t p = fork();
  if (p == 0) _exit(0);
  unsigned long long t = proc_starttime(p);
  waitpid(p, NULL, 0);
  char *dead = xasprintf("snap-%d-%llu-ab", (int)p, t ? t : 1ULL);
  cr_assert_eq(store_tmp_stale(&s, dead, &lk), 1, "a snapshot whose process is gone");
  char *reused = xasprintf("snap-%d-%llu-ab", (int)getpid(), proc_starttime(getpid()) + 1);
  cr_assert_eq(store_tmp_stale(&s, reused, &lk), 1, "a live pid with another start time is another process");
  /* a removal: the caller holds the gc lock, so none runs */
  cr_assert_eq(store_tmp_stale(&s, "rm-abc-12", &lk), 1);
  cr_assert_eq(lk, -1);
  /* a pull's layer: its lock held means in use; free, it is ours until we close it */
  char *lp = xasprintf("%s/locks/layer-abc.lock", dir);
  int holder = open(lp, O_RDWR | O_CREAT, 0600);
  cr_assert_eq(flock(holder, LOCK_EX), 0);
  cr_assert_eq(store_tmp_stale(&s, "layer-abc", &lk), 0, "a pull holds its lock");
  close(holder);
  cr_assert_eq(store_tmp_stale(&s, "layer-abc", &lk), 1);
  cr_assert(lk >= 0, "the lock is kept while the caller removes it");
  int other = open(lp, O_RDWR);
  cr_assert_neq(flock(other, LOCK_EX | LOCK_NB), 0, "no new pull of that layer starts meanwhile");
  close(other);
  close(lk);
  /* a load's dir without a lock file at all: its writer is gone */
  cr_assert_eq(store_tmp_stale(&s, "load-77", &lk), 1);
  close(lk);
  cr_assert_eq(store_tmp_stale(&s, "something-else", &lk), 0, "not berth's: kept");
  free(mine), free(dead), free(reused), free(lp);
  rm_rf(dir, NULL);
  free(s.root);
  free(dir);
}
