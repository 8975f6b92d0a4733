/* The next container's network namespace, made ahead.
 *
 * Making a network namespace is most of what cloning a container's init
 * costs: ~0.5-0.9 ms of the kernel registering every protocol's sysctls
 * and devices for it (docs/performance.md). When a `berth run --rm` ends,
 * the background child that deletes its files also makes one spare
 * namespace, loopback up and sysctls set as a container's are, and the
 * next container's launcher clones init into it instead of making one on
 * its start path. A first run, or one that comes before the spare is
 * ready, makes its own as before. One spare at most.
 *
 * Root pins the spare with a bind mount at <run_dir>/netns/spare, as `ip
 * netns add` does. A taker marks it taken under spare.lock (the lock
 * file's first byte), and unpins it once init is in it, off the start
 * path; after a crash the next offer does.
 *
 * Rootless cannot mount: a holder (`berth-spare`) keeps a pair, a user
 * namespace that is a child of the user namespace keeper's (userns.h),
 * mapped as a container's, and the network namespace it owns, and hands it
 * over a socket (<run_dir>/netns/spare.sock) to the first launcher that
 * connects; then it makes the next, and exits once SPARE_LINGER seconds
 * pass with no taker. Its lock (spare.lock, held while it lives) tells a
 * second offer that one is there.
 *
 * A spare serves one container. What a taker gets is checked: the types
 * and owners of the namespaces, never the taker's own network namespace,
 * and rootless a holder of the taker's own uid. Config `netns_spare:
 * false` turns it off; `berth rm --all` removes it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "config.h"
#include "network.h"
#include "userns.h"
#include "util.h"

#define SPARE_LINGER 20 /* seconds a rootless holder waits for a taker */

struct spare_paths {
  char *dir, *ns, *sock, *lock;
  bool rootless;
};

static void spare_paths_free(struct spare_paths *p) { free(p->dir), free(p->ns), free(p->sock), free(p->lock); }

/* false when there is no spare to use (turned off; any: the paths even
 * so, to remove one) */
static bool spare_paths(struct spare_paths *p, bool any) {
  memset(p, 0, sizeof *p);
  struct berth_config *cfg = config_get(NULL);
  if (!cfg || (!any && json_is_false(json_object_get(cfg->root, "netns_spare")))) return false;
  p->rootless = cfg->rootless;
  p->dir = xasprintf("%s/netns", cfg->run_dir);
  p->ns = xasprintf("%s/spare", p->dir);
  p->sock = xasprintf("%s/spare.sock", p->dir);
  p->lock = xasprintf("%s/spare.lock", p->dir);
  return true;
}

static int spare_lock(const struct spare_paths *p, bool wait) {
  int fd = open(p->lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static ino_t ino_of(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static ino_t ino_at(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_ino : 0;
}

static bool is_ns(int fd, int type) {
  struct statfs sf;
  return fd >= 0 && fstatfs(fd, &sf) == 0 && sf.f_type == NSFS_MAGIC && ioctl(fd, NS_GET_NSTYPE) == type;
}

/* the inode of the user namespace that owns namespace fd, 0 if unknown */
static ino_t owner_ino(int fd) {
  int u = ioctl(fd, NS_GET_USERNS);
  if (u < 0) return 0;
  ino_t i = ino_of(u);
  close(u);
  return i;
}

/* root: a network namespace of our user namespace, not the one we are in;
 * rootless: a user namespace of ours and the network namespace it owns */
static bool spare_valid(const struct netns_spare *s) {
  if (!is_ns(s->net, CLONE_NEWNET) || ino_of(s->net) == ino_at("/proc/self/ns/net")) return false;
  if (s->user < 0) return owner_ino(s->net) == ino_at("/proc/self/ns/user");
  uid_t owner = (uid_t)-1;
  return is_ns(s->user, CLONE_NEWUSER) && ioctl(s->user, NS_GET_OWNER_UID, &owner) == 0 && owner == geteuid() &&
         owner_ino(s->net) == ino_of(s->user);
}

void netns_spare_close(struct netns_spare *s) {
  if (s->user >= 0) close(s->user);
  if (s->net >= 0) close(s->net);
  s->user = s->net = -1;
}

/* ---- root: pinned by a bind mount ---- */

/* the lock file's first byte: '1' while a spare that was taken is still pinned */
static bool spare_taken(int lk) {
  char b = 0;
  return pread(lk, &b, 1, 0) == 1 && b == '1';
}

static void spare_mark(int lk, bool taken) {
  if (pwrite(lk, taken ? "1" : "0", 1, 0) != 1) berth_debug("spare network namespace: mark: %s", strerror(errno));
}

static void spare_unpin(const struct spare_paths *p) {
  if (umount2(p->ns, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
    berth_debug("unmount the spare network namespace: %s", strerror(errno));
  unlink(p->ns);
}

static bool take_pinned(const struct spare_paths *p, struct netns_spare *s) {
  int lk = spare_lock(p, false);
  if (lk < 0) return false;
  if (!spare_taken(lk)) {
    s->net = open(p->ns, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (s->net >= 0 && spare_valid(s)) spare_mark(lk, true);
    else if (s->net >= 0 || errno != ENOENT) {
      berth_debug("%s is not a spare network namespace: removed", p->ns);
      netns_spare_close(s);
      spare_unpin(p);
    }
  }
  close(lk);
  return s->net >= 0;
}

void netns_spare_release(void) {
  struct spare_paths p;
  if (!spare_paths(&p, true) || p.rootless) {
    spare_paths_free(&p);
    return;
  }
  int lk = spare_lock(&p, true);
  if (lk >= 0 && spare_taken(lk)) {
    spare_unpin(&p);
    spare_mark(lk, false);
  }
  if (lk >= 0) close(lk);
  spare_paths_free(&p);
}

/* under the lock: a fresh namespace pinned at p->ns, unless a good one is there */
static void offer_pinned(const struct spare_paths *p, int lk) {
  if (spare_taken(lk)) { /* its taker has not unpinned it yet, or died */
    spare_unpin(p);
    spare_mark(lk, false);
  }
  struct netns_spare s = {-1, open(p->ns, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)};
  bool ok = s.net >= 0 && spare_valid(&s);
  netns_spare_close(&s);
  if (ok) return; /* one is enough */
  spare_unpin(p);
  int f = open(p->ns, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (f < 0) return;
  close(f);
  /* made by us and pinned; we go back: nothing of ours stays in it */
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home >= 0 && unshare(CLONE_NEWNET) == 0) {
    net_loopback_up();
    if (mount("/proc/thread-self/ns/net", p->ns, NULL, MS_BIND, NULL) < 0) {
      berth_debug("pin a spare network namespace: %s", strerror(errno));
      unlink(p->ns);
    }
    if (setns(home, CLONE_NEWNET) < 0) berth_debug("back to our network namespace: %s", strerror(errno));
  } else {
    unlink(p->ns);
  }
  if (home >= 0) close(home);
}

/* ---- rootless: handed over by a holder ---- */

static int sock_connect(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) return -1;
  strcpy(a.sun_path, path);
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
    close(s);
    return -1;
  }
  return s;
}

/* the pair sent on c by a process of our own uid (a holder, or its maker) */
static void take_from(int c, struct netns_spare *s) {
  struct ucred cr;
  socklen_t crl = sizeof cr;
  char got = 0;
  int fds[2] = {-1, -1};
  struct iovec io = {.iov_base = &got, .iov_len = 1};
  char cbuf[CMSG_SPACE(sizeof fds)];
  memset(cbuf, 0, sizeof cbuf);
  struct msghdr mh = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0 || recvmsg(c, &mh, MSG_CMSG_CLOEXEC) != 1) return;
  struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
  if (!h || h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) return;
  size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
  memcpy(fds, CMSG_DATA(h), (n < 2 ? n : 2) * sizeof(int));
  for (size_t i = 2; i < n; i++) { /* more than asked for: not ours */
    int x;
    memcpy(&x, CMSG_DATA(h) + i * sizeof(int), sizeof x);
    close(x);
  }
  s->user = fds[0], s->net = fds[1];
  if (n != 2 || cr.uid != geteuid()) netns_spare_close(s);
}

/* connected to a holder: it sends a pair at once (a connection is a take) */
static bool take_held(const struct spare_paths *p, struct netns_spare *s) {
  int c = sock_connect(p->sock);
  if (c < 0) return false;
  struct timeval tv = {.tv_sec = 0, .tv_usec = 200000}; /* a stuck holder must not stall a start */
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  take_from(c, s);
  close(c);
  return s->net >= 0;
}

/* a new user namespace under the keeper's, mapped as a container's is
 * (userns_map_identity, by a helper in the keeper's), with the network
 * namespace it owns: the caller is in both */
static int enter_spare_userns(int keeper) {
  int go[2];
  if (pipe2(go, O_CLOEXEC) < 0) return -1;
  pid_t self = getpid(), w = fork();
  if (w < 0) {
    close(go[0]), close(go[1]);
    return -1;
  }
  if (w == 0) {
    close(go[1]);
    char b = 0;
    if (setns(keeper, CLONE_NEWUSER) < 0 || read(go[0], &b, 1) != 1 || b != 'g') _exit(1);
    _exit(userns_map_identity(self) < 0 ? 1 : 0);
  }
  close(go[0]);
  bool ok = setns(keeper, CLONE_NEWUSER) == 0 && unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0;
  if (write(go[1], ok ? "g" : "x", 1) != 1) ok = false;
  close(go[1]);
  int st = 1;
  while (waitpid(w, &st, 0) < 0 && errno == EINTR) {}
  return ok && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int send_fds(int sock, const int fds[2]) {
  char one = 's';
  struct iovec io = {.iov_base = &one, .iov_len = 1};
  char cbuf[CMSG_SPACE(sizeof(int) * 2)];
  memset(cbuf, 0, sizeof cbuf);
  struct msghdr mh = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
  h->cmsg_level = SOL_SOCKET;
  h->cmsg_type = SCM_RIGHTS;
  h->cmsg_len = CMSG_LEN(sizeof(int) * 2);
  memcpy(CMSG_DATA(h), fds, sizeof(int) * 2);
  return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* a pair made by a child of ours (we cannot leave a user namespace we
 * enter): 0, or -1 */
static int make_pair(int keeper, struct netns_spare *s) {
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) return -1;
  pid_t m = fork();
  if (m == 0) {
    close(sp[0]);
    if (enter_spare_userns(keeper) < 0) _exit(1);
    net_loopback_up(); /* as the container's would be: init need not */
    int fds[2] = {open("/proc/thread-self/ns/user", O_RDONLY | O_CLOEXEC), open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)};
    _exit(fds[0] >= 0 && fds[1] >= 0 && send_fds(sp[1], fds) == 0 ? 0 : 1);
  }
  close(sp[1]);
  struct netns_spare got = {-1, -1};
  if (m > 0) {
    /* a holder of one's own uid: take_held's check, here on our maker */
    take_from(sp[0], &got);
    while (waitpid(m, NULL, 0) < 0 && errno == EINTR) {}
  }
  close(sp[0]);
  *s = got;
  return s->net >= 0 && s->user >= 0 ? 0 : -1;
}

/* the holder: one spare ready at a time, each handed to the first taker,
 * until SPARE_LINGER seconds pass without one */
static void hold(const struct spare_paths *p, int (*keeper_open)(void)) {
  int keeper = keeper_open();
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (keeper < 0 || l < 0 || strlen(p->sock) >= sizeof a.sun_path) return;
  struct netns_spare s;
  if (make_pair(keeper, &s) < 0) return;
  strcpy(a.sun_path, p->sock);
  unlink(p->sock); /* a dead holder's: we hold the lock */
  mode_t old = umask(077);
  int b = bind(l, (struct sockaddr *)&a, sizeof a);
  umask(old);
  if (b < 0 || listen(l, 4) < 0) return;
  time_t until = time(NULL) + SPARE_LINGER;
  for (time_t now; (now = time(NULL)) < until;) {
    struct pollfd pf = {.fd = l, .events = POLLIN};
    if (poll(&pf, 1, (int)(until - now) * 1000) <= 0) continue;
    int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) continue;
    struct ucred cr;
    socklen_t crl = sizeof cr;
    bool ours = getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &crl) == 0 && cr.uid == geteuid();
    int fds[2] = {s.user, s.net};
    if (ours && send_fds(c, fds) < 0) berth_debug("hand over the spare: %s", strerror(errno));
    /* a taker just closes; rm --all answers 'q': we go */
    char q = 0;
    struct timeval tv = {.tv_sec = 1};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    bool quit = ours && read(c, &q, 1) == 1 && q == 'q';
    close(c);
    if (!ours) continue; /* a stranger */
    if (quit) break;
    netns_spare_close(&s);
    /* the next one, on what the container just started leaves idle */
    struct sched_param sp = {0};
    sched_setscheduler(0, SCHED_IDLE, &sp);
    if (make_pair(keeper, &s) < 0) break;
    until = time(NULL) + SPARE_LINGER;
  }
  unlink(p->sock);
}

/* ---- both ---- */

bool netns_spare_take(bool rootless, struct netns_spare *s) {
  s->user = s->net = -1;
  struct spare_paths p;
  bool ok = spare_paths(&p, false) && p.rootless == rootless && (rootless ? take_held(&p, s) : take_pinned(&p, s));
  spare_paths_free(&p);
  if (ok && (s->user >= 0) == rootless && spare_valid(s)) return true;
  if (s->net >= 0) berth_debug("a spare network namespace was refused: not of this user, or not fresh");
  netns_spare_close(s);
  return false;
}

void netns_spare_offer(int (*keeper_open)(void)) {
  struct spare_paths p;
  if (!spare_paths(&p, false) || (mkdir(p.dir, 0700) < 0 && errno != EEXIST)) {
    spare_paths_free(&p);
    return;
  }
  int lk = spare_lock(&p, false); /* rootless: held by a waiting holder */
  if (lk >= 0 && !p.rootless) offer_pinned(&p, lk);
  if (lk >= 0 && p.rootless) {
    fflush(stdout);
    fflush(stderr);
    pid_t h = fork();
    if (h == 0) { /* the holder: its own session, nothing of the caller's but the lock */
      setsid();
      if (lk > 3) syscall(SYS_close_range, 3U, (unsigned)lk - 1, 0U);
      syscall(SYS_close_range, lk >= 3 ? (unsigned)lk + 1 : 3U, ~0U, 0U);
      proc_set_title("berth-spare");
      hold(&p, keeper_open);
      _exit(0);
    }
  }
  if (lk >= 0) close(lk);
  spare_paths_free(&p);
}

void netns_spare_drop(void) {
  struct spare_paths p;
  if (spare_paths(&p, true)) {
    if (p.rootless) { /* take it, and send the holder away */
      struct netns_spare s = {-1, -1};
      int c = sock_connect(p.sock);
      if (c >= 0) {
        struct timeval tv = {.tv_sec = 1};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        take_from(c, &s);
        if (write(c, "q", 1) != 1) {}
        close(c);
      }
      netns_spare_close(&s);
    } else {
      int lk = spare_lock(&p, true);
      if (lk >= 0) {
        spare_unpin(&p);
        spare_mark(lk, false);
        close(lk);
      }
    }
  }
  spare_paths_free(&p);
}
