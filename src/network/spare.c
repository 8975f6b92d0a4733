/* A spare network namespace (root only).
 *
 * Making a network namespace is most of what cloning a container's init
 * costs: ~0.5-0.9 ms of the kernel registering every protocol's sysctls
 * and devices for it (docs/performance.md). When a `berth run --rm` ends,
 * the background child that deletes its files (the trash child) also makes
 * one fresh namespace and pins it with a bind mount, as `ip netns add`
 * does; the next container's launcher takes it and clones init into it
 * instead of making one on its start path. A first run, or one that comes
 * before the spare is ready, makes its own as before.
 *
 * A spare is never shared or reused: it is marked taken under a lock
 * before anyone enters it (and unpinned soon after), and a namespace that is not a
 * network namespace owned by our user namespace, or is our own, is
 * refused. Config `netns_spare: false` turns it off; `berth rm --all`
 * removes it. Rootless containers cannot use one: a namespace made outside
 * the container's user namespace would not be the container root's to
 * configure. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include "config.h"
#include "network.h"
#include "util.h"

struct spare_paths {
  char *dir, *ns, *lock;
};

static void spare_paths_free(struct spare_paths *p) {
  free(p->dir), free(p->ns), free(p->lock);
}

/* false when there is no spare to use (rootless, or turned off; any: the
 * paths even so, to remove one) */
static bool spare_paths(struct spare_paths *p, bool any) {
  memset(p, 0, sizeof *p);
  struct berth_config *cfg = config_get(NULL);
  if (!cfg || cfg->rootless || geteuid() != 0) return false;
  if (!any && json_is_false(json_object_get(cfg->root, "netns_spare"))) return false;
  p->dir = xasprintf("%s/netns", cfg->run_dir);
  p->ns = xasprintf("%s/spare", p->dir);
  p->lock = xasprintf("%s/spare.lock", p->dir);
  return true;
}

/* the lock over the spare, or -1 (someone else holds it: no waiting) */
static int spare_lock(const struct spare_paths *p, bool wait) {
  int fd = open(p->lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static ino_t ns_ino(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static ino_t ns_ino_path(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* a network namespace of our user namespace, and not the one we are in */
static bool spare_valid(int fd) {
  struct statfs sf;
  if (fstatfs(fd, &sf) < 0 || sf.f_type != NSFS_MAGIC) return false;
  if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) return false;
  ino_t ino = ns_ino(fd);
  if (!ino || ino == ns_ino_path("/proc/self/ns/net") || ino == ns_ino_path("/proc/1/ns/net")) return false;
  int u = ioctl(fd, NS_GET_USERNS);
  if (u < 0) return false;
  bool ours = ns_ino(u) == ns_ino_path("/proc/self/ns/user");
  close(u);
  return ours;
}

/* unpin it (it lives on while a process or an fd holds it) */
static void spare_unpin(const struct spare_paths *p) {
  if (umount2(p->ns, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
    berth_debug("unmount the spare network namespace: %s", strerror(errno));
  unlink(p->ns);
}

/* The lock file's first byte is '1' while a spare that was taken is still
 * pinned: its taker unpins it once init is born (netns_spare_release), off
 * the start path; after a crash the next fill does. No one takes a spare
 * while the byte says so. */
static bool spare_taken(int lk) {
  char b = 0;
  return pread(lk, &b, 1, 0) == 1 && b == '1';
}

static void spare_mark(int lk, bool taken) {
  if (pwrite(lk, taken ? "1" : "0", 1, 0) != 1) berth_debug("spare network namespace: mark: %s", strerror(errno));
}

int netns_spare_take(void) {
  struct spare_paths p;
  if (!spare_paths(&p, false)) return -1;
  int ret = -1;
  int lk = spare_lock(&p, false);
  if (lk >= 0 && !spare_taken(lk)) {
    int fd = open(p.ns, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && spare_valid(fd)) {
      spare_mark(lk, true);
      ret = fd;
    } else if (fd >= 0 || errno != ENOENT) {
      berth_debug("%s is not a spare network namespace: removed", p.ns);
      if (fd >= 0) close(fd);
      spare_unpin(&p);
    }
  }
  if (lk >= 0) close(lk);
  spare_paths_free(&p);
  return ret;
}

void netns_spare_release(void) {
  struct spare_paths p;
  if (!spare_paths(&p, true)) return;
  int lk = spare_lock(&p, true);
  if (lk >= 0 && spare_taken(lk)) {
    spare_unpin(&p);
    spare_mark(lk, false);
  }
  if (lk >= 0) close(lk);
  spare_paths_free(&p);
}

/* under the lock: a fresh namespace pinned at p->ns, unless a good one is there */
static void spare_make(const struct spare_paths *p, int lk) {
  if (spare_taken(lk)) { /* its taker has not unpinned it yet, or died */
    spare_unpin(p);
    spare_mark(lk, false);
  }
  struct stat st;
  if (lstat(p->ns, &st) == 0) {
    int fd = open(p->ns, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    bool ok = fd >= 0 && spare_valid(fd);
    if (fd >= 0) close(fd);
    if (ok) return; /* one is enough */
    spare_unpin(p);
  }
  int f = open(p->ns, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (f < 0) return;
  close(f);
  /* made by us, pinned, and we go back: nothing of ours stays in it */
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0 || unshare(CLONE_NEWNET) < 0 || mount("/proc/thread-self/ns/net", p->ns, NULL, MS_BIND, NULL) < 0) {
    berth_debug("make a spare network namespace: %s", strerror(errno));
    unlink(p->ns);
  }
  if (home >= 0 && setns(home, CLONE_NEWNET) < 0) berth_debug("back to our network namespace: %s", strerror(errno));
  if (home >= 0) close(home);
}

void netns_spare_fill(void) {
  struct spare_paths p;
  if (!spare_paths(&p, false)) return;
  int lk = mkdir(p.dir, 0700) == 0 || errno == EEXIST ? spare_lock(&p, false) : -1;
  if (lk >= 0) {
    spare_make(&p, lk);
    close(lk);
  }
  spare_paths_free(&p);
}

void netns_spare_drop(void) {
  struct spare_paths p;
  if (!spare_paths(&p, true)) return;
  int lk = spare_lock(&p, true);
  if (lk >= 0) {
    spare_unpin(&p);
    spare_mark(lk, false);
    close(lk);
  }
  spare_paths_free(&p);
}
