/* A size limit for a container's writable layer (root): a sparse ext4
 * image in the container's directory, attached to a loop device and
 * mounted at <cdir>/disk, which holds the overlay's upper and work
 * directories (<cdir>/upper and <cdir>/work are links into it). Writing
 * past the limit fails with ENOSPC inside the container; the host's
 * filesystem holds at most the image's blocks. The loop device is set to
 * clear itself when the last mount of it goes (the container's mount
 * namespace holds the overlay, and with it the filesystem, until its end).
 *
 * Project quotas would need the data dir on ext4 with the project feature
 * or xfs with prjquota; an image works on any filesystem. Rootless, an
 * ext4 image cannot be mounted (not a filesystem a user namespace may
 * mount): create says the limit is not enforced. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/loop.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/disk.h"
#include "util/util.h"

#define DISK_MIN (16LL << 20)

static const char *mke2fs_path(void) {
  static const char *c[] = {"/usr/sbin/mke2fs", "/sbin/mke2fs", "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4", NULL};
  for (int i = 0; c[i]; i++)
    if (access(c[i], X_OK) == 0) return c[i];
  return NULL;
}

bool disk_limit_supported(const char **why) {
  if (geteuid() != 0) {
    *why = "rootless: an ext4 image cannot be mounted in a user namespace, and project quotas need root";
    return false;
  }
  if (!mke2fs_path()) {
    *why = "mke2fs is missing (apt-get install e2fsprogs)";
    return false;
  }
  if (access("/dev/loop-control", R_OK | W_OK) < 0) {
    *why = "/dev/loop-control cannot be opened (modprobe loop)";
    return false;
  }
  *why = NULL;
  return true;
}

/* mke2fs on the image, quietly; its own words on failure */
static int make_fs(const char *img, berth_error_t *err) {
  int ep[2];
  if (pipe2(ep, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  pid_t p = fork();
  if (p < 0) {
    close(ep[0]), close(ep[1]);
    return berth_error(err, errno, "fork");
  }
  if (p == 0) {
    int nul = open("/dev/null", O_RDWR);
    dup2(nul, 0), dup2(nul, 1), dup2(ep[1], 2);
    /* no journal: the layer is rebuilt or worthless after a crash, as
     * the rest of a container's files; no reserved blocks: all of it is
     * the container's */
    char *argv[] = {(char *)mke2fs_path(),          "-q",        "-F", "-t", "ext4", "-m", "0", "-O", "^has_journal", "-E",
                    "nodiscard,lazy_itable_init=1", (char *)img, NULL};
    char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    execve(argv[0], argv, envp);
    _exit(127);
  }
  close(ep[1]);
  char msg[512];
  ssize_t n, got = 0;
  while ((n = read(ep[0], msg + got, sizeof msg - 1 - (size_t)got)) > 0) got += n;
  close(ep[0]);
  msg[got > 0 ? got : 0] = '\0';
  int st;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR) {}
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return berth_error(err, -EIO, "make the writable layer's filesystem (mke2fs): %s", *msg ? msg : "failed");
  return 0;
}

/* a free loop device attached to fd, clearing itself at its last close */
static int loop_attach(int fd, char *dev, size_t devlen, berth_error_t *err) {
  cleanup_close int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) return berth_error(err, errno, "open /dev/loop-control");
  for (int tries = 0; tries < 16; tries++) {
    int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) return berth_error(err, errno, "find a free loop device");
    snprintf(dev, devlen, "/dev/loop%d", n);
    int lfd = open(dev, O_RDWR | O_CLOEXEC);
    if (lfd < 0) return berth_error(err, errno, "open %s", dev);
    struct loop_config lc = {.fd = (unsigned)fd, .info = {.lo_flags = LO_FLAGS_AUTOCLEAR}};
    if (ioctl(lfd, LOOP_CONFIGURE, &lc) == 0) return lfd;
    int e = errno;
    if (e == EINVAL || e == ENOTTY) { /* before 5.8: the two-step way */
      struct loop_info64 li = {.lo_flags = LO_FLAGS_AUTOCLEAR};
      if (ioctl(lfd, LOOP_SET_FD, fd) == 0) {
        if (ioctl(lfd, LOOP_SET_STATUS64, &li) == 0) return lfd;
        e = errno;
        ioctl(lfd, LOOP_CLR_FD, 0);
      } else e = errno;
    }
    close(lfd);
    if (e != EBUSY) return berth_error(err, e, "attach %s", dev);
    /* another process took it between GET_FREE and here: the next one */
  }
  return berth_error(err, -EBUSY, "no free loop device");
}

int disk_setup(const char *cdir, int64_t bytes, berth_error_t *err) {
  if (bytes < DISK_MIN) return berth_error(err, -EINVAL, "disk limit %lld bytes: at least 16m", (long long)bytes);
  cleanup_free char *img = xasprintf("%s/disk.img", cdir);
  cleanup_free char *mnt = xasprintf("%s/disk", cdir);
  {
    cleanup_close int fd = open(img, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return berth_error(err, errno, "create `%s`", img);
    if (ftruncate(fd, bytes) < 0) return berth_error(err, errno, "size `%s`", img);
  }
  if (make_fs(img, err) < 0) return -1;
  cleanup_close int fd = open(img, O_RDWR | O_CLOEXEC);
  if (fd < 0) return berth_error(err, errno, "open `%s`", img);
  char dev[64];
  int lfd = loop_attach(fd, dev, sizeof dev, err);
  if (lfd < 0) return -1;
  if (mkdir(mnt, 0700) < 0 && errno != EEXIST) {
    int e = errno;
    close(lfd);
    return berth_error(err, e, "create `%s`", mnt);
  }
  /* nodev: no device node in the layer can be opened (as the overlay) */
  int r = mount(dev, mnt, "ext4", MS_NODEV | MS_NOATIME, "");
  int e = errno;
  close(lfd); /* the mount holds the device now; it clears with the mount */
  if (r < 0) return berth_error(err, e, "mount the writable layer's filesystem (%s at `%s`)", dev, mnt);
  const char *sub[] = {"upper", "work"};
  for (int i = 0; i < 2; i++) {
    cleanup_free char *in = xasprintf("%s/%s", mnt, sub[i]);
    cleanup_free char *link = xasprintf("%s/%s", cdir, sub[i]);
    cleanup_free char *target = xasprintf("disk/%s", sub[i]);
    if (mkdir(in, 0755) < 0 || symlink(target, link) < 0) {
      e = errno;
      disk_release(cdir);
      return berth_error(err, e, "create `%s`", link);
    }
  }
  cleanup_free char *lf = xasprintf("%s/lost+found", mnt);
  rmdir(lf);
  return 0;
}

/* After a reboot the image is there and its mount is not: mount it again
 * (the layer's upper/ and work/ are inside, the links to them stay). */
int disk_mount(const char *cdir, berth_error_t *err) {
  cleanup_free char *img = xasprintf("%s/disk.img", cdir);
  cleanup_free char *mnt = xasprintf("%s/disk", cdir);
  struct stat a, b;
  if (stat(mnt, &a) == 0 && stat(cdir, &b) == 0 && a.st_dev != b.st_dev) return 0; /* mounted */
  cleanup_close int fd = open(img, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return berth_error(err, errno, "open the writable layer's image `%s`", img);
  char dev[64];
  int lfd = loop_attach(fd, dev, sizeof dev, err);
  if (lfd < 0) return -1;
  int r = mount(dev, mnt, "ext4", MS_NODEV | MS_NOATIME, "");
  int e = errno;
  close(lfd);
  if (r < 0) return berth_error(err, e, "mount the writable layer's filesystem (%s at `%s`)", dev, mnt);
  return 0;
}

void disk_release(const char *cdir) {
  cleanup_free char *mnt = xasprintf("%s/disk", cdir);
  /* detached: the container's mount namespace may still hold it (its loop
   * device clears when that goes too) */
  if (umount2(mnt, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
    berth_debug("release `%s`: %s", mnt, strerror(errno));
}

json_t *disk_usage(const char *cdir, int64_t limit) {
  if (limit <= 0) return NULL;
  cleanup_free char *mnt = xasprintf("%s/disk", cdir);
  struct statvfs sv;
  struct stat a, b;
  cleanup_free char *parent = strdup(cdir);
  /* mounted: a filesystem of its own below the container's directory */
  if (statvfs(mnt, &sv) < 0 || stat(mnt, &a) < 0 || stat(parent, &b) < 0 || a.st_dev == b.st_dev)
    return json_pack("{s:I, s:b}", "limit", (json_int_t)limit, "mounted", 0);
  uint64_t total = (uint64_t)sv.f_blocks * sv.f_frsize, avail = (uint64_t)sv.f_bavail * sv.f_frsize;
  return json_pack("{s:I, s:I, s:I, s:b}", "limit", (json_int_t)limit, "used", (json_int_t)(total - avail), "available", (json_int_t)avail,
                   "mounted", 1);
}
