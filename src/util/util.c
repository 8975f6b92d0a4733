/* berth: shared helpers. */
#define _GNU_SOURCE
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

int berth_log_level = BERTH_LOG_WARN;
bool berth_is_cli;
bool berth_for_agents;

const char *berth_version(void) { return BERTH_VERSION; }

void berth_error_free(berth_error_t err) {
  if (!err) return;
  free(err->msg);
  free(err);
}

void berth_error_clear(berth_error_t *err) {
  if (err && *err) {
    berth_error_free(*err);
    *err = NULL;
  }
}

static int verror(berth_error_t *err, int errno_, const char *fmt, va_list ap) {
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  if (!err) {
    free(msg);
    return -1;
  }
  berth_error_clear(err);
  *err = calloc(1, sizeof(**err));
  if (!*err) {
    free(msg);
    return -1;
  }
  /* errno > 0: a system call failed, say why; < 0: berth's own finding
   * classified by that errno, the message already says everything */
  (*err)->status = errno_ < 0 ? -errno_ : errno_;
  if (msg && errno_ > 0) {
    char *full = NULL;
    if (asprintf(&full, "%s: %s", msg, strerror(errno_)) >= 0) {
      free(msg);
      msg = full;
    }
  }
  (*err)->msg = msg ? msg : strdup("out of memory");
  return -1;
}

int berth_error(berth_error_t *err, int errno_, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = verror(err, errno_, fmt, ap);
  va_end(ap);
  return r;
}

int berth_error_wrap(berth_error_t *err, const char *fmt, ...) {
  if (!err || !*err) return -1;
  char *prefix = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&prefix, fmt, ap) < 0) prefix = NULL;
  va_end(ap);
  if (prefix) {
    char *full = NULL;
    if (asprintf(&full, "%s: %s", prefix, (*err)->msg) >= 0) {
      free((*err)->msg);
      (*err)->msg = full;
    }
    free(prefix);
  }
  return -1;
}

void berth_freep(void *p) { free(*(void **)p); }
void berth_closep(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}
void berth_fclosep(FILE **f) {
  if (*f) fclose(*f);
  *f = NULL;
}
void berth_json_decrefp(json_t **j) {
  json_decref(*j);
  *j = NULL;
}
void berth_close_pairp(int (*p)[2]) {
  berth_closep(&(*p)[0]);
  berth_closep(&(*p)[1]);
}

void (*berth_log_hook)(int level, const char *msg);

void berth_log(int level, const char *fmt, ...) {
  if (level > berth_log_level) return;
  static const char *names[] = {"error", "warning", "info", "debug"};
  va_list ap;
  if (berth_log_hook) {
    char m[2048];
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    berth_log_hook(level, m);
  }
  va_start(ap, fmt);
  fprintf(stderr, "berth: %s: ", names[level]);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void berth_trace(const char *fmt, ...) {
  static int on = -1;
  if (on < 0) on = getenv("BERTH_TRACE") && *getenv("BERTH_TRACE") && strcmp(getenv("BERTH_TRACE"), "0");
  if (!on) return;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char line[256];
  int n = snprintf(line, sizeof line, "berth-trace %d %.3f ", (int)getpid(), ts.tv_sec * 1e3 + ts.tv_nsec / 1e6);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && n < (int)sizeof line - 2) n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  if (write(STDERR_FILENO, line, (size_t)n) < 0) {}
}

char *xasprintf(const char *fmt, ...) {
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  return s;
}

char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }
void *xmalloc0(size_t n) { return calloc(1, n ? n : 1); }

bool str_has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }
bool str_has_suffix(const char *s, const char *p) {
  size_t a = strlen(s), b = strlen(p);
  return a >= b && memcmp(s + a - b, p, b) == 0;
}

bool name_valid(const char *n) {
  size_t l = n ? strlen(n) : 0;
  if (l == 0 || l > 63 || n[0] == '.' || n[0] == '-') return false;
  for (size_t i = 0; i < l; i++) {
    char c = n[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

int buf_append(struct buf *b, const void *data, size_t len) {
  if (b->len + len + 1 > b->cap) {
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < b->len + len + 1) ncap *= 2;
    char *n = realloc(b->data, ncap);
    if (!n) return -1;
    b->data = n;
    b->cap = ncap;
  }
  memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

void buf_free(struct buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int mkdir_p(const char *path, mode_t mode, berth_error_t *err) {
  /* the common case first: the parents exist (one system call, not one
   * per component); anything else takes the walk below */
  if (mkdir(path, mode) == 0 || errno == EEXIST) return 0;
  cleanup_free char *p = strdup(path);
  if (!p) return berth_error(err, -ENOMEM, "mkdir %s", path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(p, mode) < 0 && errno != EEXIST) return berth_error(err, errno, "create directory `%s`", p);
    *s = '/';
  }
  if (mkdir(p, mode) < 0 && errno != EEXIST) return berth_error(err, errno, "create directory `%s`", p);
  return 0;
}

int read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len, berth_error_t *err) {
  /* an empty path reads dirfd itself (already opened, e.g. confined) */
  cleanup_close int fd = *path ? openat(dirfd, path, O_RDONLY | O_CLOEXEC) : fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return berth_error(err, errno, "open `%s`", path);
  struct buf b = {0};
  char tmp[65536];
  for (;;) {
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0) {
      if (errno == EINTR) continue;
      buf_free(&b);
      return berth_error(err, errno, "read `%s`", path);
    }
    if (n == 0) break;
    if (b.len + (size_t)n > max) {
      buf_free(&b);
      return berth_error(err, -EFBIG, "`%s` is larger than %zu bytes", path, max);
    }
    if (buf_append(&b, tmp, n) < 0) {
      buf_free(&b);
      return berth_error(err, -ENOMEM, "read `%s`", path);
    }
  }
  if (!b.data) b.data = strdup("");
  *out = b.data;
  if (len) *len = b.len;
  return 0;
}

int read_file(const char *path, size_t max, char **out, size_t *len, berth_error_t *err) {
  return read_file_at(AT_FDCWD, path, max, out, len, err);
}

char *random_hex(size_t nbytes) {
  unsigned char raw[32];
  if (nbytes > sizeof raw) nbytes = sizeof raw;
  if (getrandom(raw, nbytes, 0) != (ssize_t)nbytes) {
    for (size_t i = 0; i < nbytes; i++) raw[i] = (unsigned char)(rand() ^ getpid() ^ i);
  }
  char *s = malloc(nbytes * 2 + 1);
  if (!s) return NULL;
  for (size_t i = 0; i < nbytes; i++) sprintf(s + 2 * i, "%02x", raw[i]);
  return s;
}

enum { WF_DURABLE = 1, WF_SWAP = 2 };
static int write_file_as(const char *tmp, const char *path, const void *data, size_t len, mode_t mode, int flags, berth_error_t *err);

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, berth_error_t *err) {
  return write_file_replace(path, data, len, mode, true, err);
}

static int write_file_tmp(const char *path, const void *data, size_t len, mode_t mode, int flags, berth_error_t *err) {
  cleanup_free char *rnd = random_hex(6);
  cleanup_free char *tmp = xasprintf("%s.tmp-%s", path, rnd ? rnd : "x");
  if (!tmp) return berth_error(err, -ENOMEM, "write `%s`", path);
  return write_file_as(tmp, path, data, len, mode, flags, err);
}

int write_file_replace(const char *path, const void *data, size_t len, mode_t mode, bool durable, berth_error_t *err) {
  return write_file_tmp(path, data, len, mode, durable ? WF_DURABLE : 0, err);
}

int write_file_swap(const char *path, const void *data, size_t len, mode_t mode, berth_error_t *err) {
  return write_file_tmp(path, data, len, mode, WF_SWAP, err);
}

int write_file_new(const char *path, const void *data, size_t len, mode_t mode, berth_error_t *err) {
  return write_file_as(path, NULL, data, len, mode, 0, err);
}

/* write tmp (created, never there before), then rename it to path (NULL: none) */
static int write_file_as(const char *tmp, const char *path, const void *data, size_t len, mode_t mode, int flags, berth_error_t *err) {
  cleanup_close int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return berth_error(err, errno, "create `%s`", tmp);
  const char *p = data;
  size_t left = len;
  while (left) {
    ssize_t n = write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      unlink(tmp);
      return berth_error(err, e, "write `%s`", tmp);
    }
    p += n;
    left -= n;
  }
  if ((flags & WF_DURABLE) && fsync(fd) < 0) {
    int e = errno;
    unlink(tmp);
    return berth_error(err, e, "write `%s`", tmp);
  }
  if (!path) return 0;
  /* exchanged, the old file is left at tmp's name and unlinked (gone, it is
   * never written back); EINVAL: no RENAME_EXCHANGE here, ENOENT: no old file */
  if ((flags & WF_SWAP) && renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0) {
    unlink(tmp);
    return 0;
  }
  if (rename(tmp, path) < 0) {
    int e = errno;
    unlink(tmp);
    return berth_error(err, e, "write `%s`", path);
  }
  return 0;
}

static int rm_rf_fd(int dirfd, berth_error_t *err) {
  DIR *d = fdopendir(dirfd);
  if (!d) {
    close(dirfd);
    return berth_error(err, errno, "opendir");
  }
  int ret = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (rm_rf_at(dirfd, de->d_name, err) < 0) {
      ret = -1;
      break;
    }
  }
  closedir(d);
  return ret;
}

int rm_rf_at(int dirfd, const char *name, berth_error_t *err) {
  if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return 0;
  if (errno != EISDIR && errno != EPERM) return berth_error(err, errno, "remove `%s`", name);
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return 0;
    return berth_error(err, errno, "open `%s` for removal", name);
  }
  /* A directory we cannot list (mode 000) still needs emptying. */
  if (rm_rf_fd(fd, err) < 0) return -1;
  if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) return berth_error(err, errno, "remove directory `%s`", name);
  return 0;
}

int rm_rf(const char *path, berth_error_t *err) { return rm_rf_at(AT_FDCWD, path, err); }

bool path_exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

int openat_in_root(int rootfd, const char *path, int flags, mode_t mode, uint64_t extra_resolve) {
  struct open_how how = {
      .flags = (uint64_t)flags | O_CLOEXEC,
      .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
      .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra_resolve,
  };
  if (!*path) path = ".";
  int fd;
  do fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  return fd;
}

int lock_file(const char *path, bool exclusive, berth_error_t *err) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return berth_error(err, errno, "open lock `%s`", path);
  while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
    if (errno == EINTR) continue;
    int e = errno;
    close(fd);
    return berth_error(err, e, "lock `%s`", path);
  }
  return fd;
}

const char *human_size(uint64_t n, char *buf, size_t len) {
  const char *u[] = {"B", "kB", "MB", "GB", "TB"};
  double v = (double)n;
  int i = 0;
  while (v >= 1000 && i < 4) {
    v /= 1000;
    i++;
  }
  if (i == 0) snprintf(buf, len, "%llu B", (unsigned long long)n);
  else snprintf(buf, len, "%.1f %s", v, u[i]);
  return buf;
}

double wall_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int mkdir_in_root(int rootfd, const char *dir, mode_t mode, uint64_t resolve, berth_error_t *err) {
  return mkdir_in_root_owned(rootfd, dir, mode, resolve, (uid_t)-1, (gid_t)-1, err);
}

int mkdir_in_root_owned(int rootfd, const char *dir, mode_t mode, uint64_t resolve, uid_t uid, gid_t gid, berth_error_t *err) {
  int fd = openat_in_root(rootfd, dir, O_PATH | O_DIRECTORY, 0, resolve);
  if (fd >= 0 || errno != ENOENT) {
    if (fd < 0) return berth_error(err, errno, "open directory `%s`", dir);
    return fd;
  }
  /* create the missing components one by one, each resolved in the root again */
  cleanup_free char *p = strdup(dir);
  if (!p) return berth_error(err, -ENOMEM, "mkdir");
  for (char *s = p;; s++) {
    if (*s != '/' && *s != '\0') continue;
    char saved = *s;
    *s = '\0';
    if (*p) {
      int d = openat_in_root(rootfd, p, O_PATH | O_DIRECTORY, 0, resolve);
      if (d < 0 && errno == ENOENT) {
        char *slash = strrchr(p, '/');
        const char *name = slash ? slash + 1 : p;
        if (slash) *slash = '\0';
        int parent = openat_in_root(rootfd, slash ? p : "", O_PATH | O_DIRECTORY, 0, resolve);
        if (slash) *slash = '/';
        if (parent < 0) return berth_error(err, errno, "open parent of `%s`", p);
        int r = mkdirat(parent, name, mode);
        int e = errno;
        if (r == 0 && uid != (uid_t)-1) fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW);
        close(parent);
        if (r < 0 && e != EEXIST) return berth_error(err, e, "create directory `%s`", p);
        d = openat_in_root(rootfd, p, O_PATH | O_DIRECTORY, 0, resolve);
      }
      if (d < 0) return berth_error(err, errno, "open directory `%s`", p);
      if (saved == '\0') return d;
      close(d);
    } else if (saved == '\0') {
      return openat_in_root(rootfd, "", O_PATH | O_DIRECTORY, 0, resolve);
    }
    *s = saved;
  }
}

/* The process's argv and environment block, as the kernel shows them in
 * /proc/PID/cmdline and /proc/PID/environ. berth's monitor, init and exec
 * helpers are forks of the CLI: without this, a container could read the
 * host command line and environment (tokens included) of its PID 1. */
static char *title_start;
static size_t title_len;

void proc_title_init(int argc, char **argv) {
  if (argc < 1 || !argv[0]) return;
  char *end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
  extern char **environ;
  size_t n = 0;
  for (char **e = environ; e && *e; e++) n++;
  char **copy = calloc(n + 1, sizeof *copy);
  if (!copy) return;
  for (size_t i = 0; i < n; i++) {
    if (environ[i] == end) end += strlen(environ[i]) + 1; /* contiguous with argv */
    copy[i] = strdup(environ[i]);
  }
  environ = copy; /* getenv keeps working after the block is wiped */
  title_start = argv[0];
  title_len = (size_t)(end - argv[0]);
  for (int i = 0; i < argc; i++) argv[i] = strdup(argv[i]); /* and so do the arguments */
}

const char *fuse_overlayfs_path(void) {
  static const char *const paths[] = {"/usr/bin/fuse-overlayfs", "/usr/local/bin/fuse-overlayfs", "/bin/fuse-overlayfs"};
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
    if (access(paths[i], X_OK) == 0) return paths[i];
  return NULL;
}

bool cpu_aside(pid_t child, cpu_set_t *saved) {
  int here = sched_getcpu();
  if (here < 0 || here >= CPU_SETSIZE || sched_getaffinity(child, sizeof *saved, saved) < 0) return false;
  cpu_set_t away = *saved;
  CPU_CLR(here, &away);
  return CPU_COUNT(&away) > 0 && sched_setaffinity(child, sizeof away, &away) == 0;
}

void cpu_restore(pid_t child, const cpu_set_t *saved) {
  if (sched_setaffinity(child, sizeof *saved, saved) < 0) berth_debug("restore cpu affinity of %d: %s", (int)child, strerror(errno));
}

void proc_set_title(const char *title) {
  if (!title_start || title_len < 2) return;
  memset(title_start, 0, title_len);
  strncpy(title_start, title, title_len - 1);
  prctl(PR_SET_NAME, title, 0, 0, 0);
}

unsigned long long proc_starttime(pid_t pid) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
  cleanup_free char *s = NULL;
  if (pid <= 0 || read_file(p, 8192, &s, NULL, NULL) < 0) return 0;
  char *e = strrchr(s, ')');
  if (!e || e[1] != ' ' || e[2] == 'Z' || e[2] == 'X') return 0; /* a zombie is gone */
  /* fields after the command: state is field 3; starttime is field 22 */
  char *tok = e + 2;
  for (int f = 3; f < 22 && tok; f++) {
    tok = strchr(tok, ' ');
    if (tok) tok++;
  }
  return tok ? strtoull(tok, NULL, 10) : 0;
}

json_t *json_string_safe(const char *s) {
  json_t *j = json_string(s ? s : "");
  if (j) return j;
  /* not UTF-8 (e.g. a message quoting bytes of a bad request): keep ASCII */
  char *copy = strdup(s);
  if (!copy) return json_string("");
  for (char *p = copy; *p; p++)
    if ((unsigned char)*p >= 0x80 || ((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t')) *p = '?';
  j = json_string(copy);
  free(copy);
  return j;
}

char *boot_id_read(void) {
  char *s = NULL;
  if (read_file("/proc/sys/kernel/random/boot_id", 64, &s, NULL, NULL) < 0) return xstrdup("");
  s[strcspn(s, "\n")] = '\0';
  return s;
}

int write_value(const char *path, const char *val) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, val, strlen(val));
  int e = errno;
  close(fd);
  errno = e;
  return n == (ssize_t)strlen(val) ? 0 : -1;
}

/* ---- /proc/PID/cgroup ---- */
struct cgroup_lines cgroup_lines_begin(const char *text) {
  /* no copy (out of memory) reads as no lines: every caller treats a
   * hierarchy it cannot find as one it is not in */
  char *copy = xstrdup(text);
  return (struct cgroup_lines){.text = copy, .next = copy};
}

bool cgroup_lines_next(struct cgroup_lines *it, struct cgroup_line *out) {
  while (it->next && *it->next) {
    char *line = it->next, *e = strchrnul(line, '\n');
    it->next = *e ? e + 1 : e;
    *e = '\0';
    /* the first two ':' end the id and the controllers; the path keeps any further one */
    char *a = strchr(line, ':');
    char *b = a ? strchr(a + 1, ':') : NULL;
    if (!b) continue;
    *a = *b = '\0';
    *out = (struct cgroup_line){.id = line, .ctrls = a + 1, .path = b + 1};
    return true;
  }
  return false;
}

void cgroup_lines_free(struct cgroup_lines *it) {
  free(it->text);
  it->text = it->next = NULL;
}

bool list_has_word(const char *list, const char *word, char sep) {
  size_t n = strlen(word);
  const char stop[] = {sep, '\n', '\0'};
  for (const char *p = list; p && *p;) {
    size_t k = strcspn(p, stop);
    if (k == n && !strncmp(p, word, n)) return true;
    p += k;
    if (*p) p++;
  }
  return false;
}

bool cgroup_ctrls_has(const char *list, const char *word) { return list_has_word(list, word, ','); }

char *cgroup_own_path(const char *text, const char *ctrl) {
  cleanup_cgroup_lines struct cgroup_lines it = cgroup_lines_begin(text);
  struct cgroup_line l;
  while (cgroup_lines_next(&it, &l))
    if (*ctrl ? cgroup_ctrls_has(l.ctrls, ctrl) : !strcmp(l.id, "0") && !*l.ctrls) return xstrdup(l.path);
  return NULL;
}

/* ---- /proc/PID/mountinfo ---- */
struct mountinfo_lines mountinfo_lines_begin(const char *text) {
  /* no copy (out of memory) reads as no mounts, as for cgroup_lines */
  char *copy = xstrdup(text);
  return (struct mountinfo_lines){.text = copy, .next = copy};
}

/* the next field of a line, cut in place at the space after it; NULL past
 * the last one (one space each: an empty field is "") */
static char *mountinfo_field(char **rest) {
  char *f = *rest;
  if (!f) return NULL;
  char *sp = strchr(f, ' ');
  if (sp) *sp = '\0';
  *rest = sp ? sp + 1 : NULL;
  return f;
}

/* decode the kernel's \ooo escapes in place (the text only shrinks); a
 * backslash not followed by three octal digits stays as it is */
static char *mountinfo_unescape(char *s) {
  char *w = s;
  for (const char *r = s; *r;) {
    if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
      char c = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
      if (c) { /* \000 would cut the path short: keep it as written */
        *w++ = c;
        r += 4;
        continue;
      }
    }
    *w++ = *r++;
  }
  *w = '\0';
  return s;
}

bool mountinfo_lines_next(struct mountinfo_lines *it, struct mountinfo_line *out) {
  while (it->next && *it->next) {
    char *line = it->next, *e = strchrnul(line, '\n');
    it->next = *e ? e + 1 : e;
    *e = '\0';
    char *rest = line, *f[6];
    int n = 0;
    while (n < 6 && (f[n] = mountinfo_field(&rest))) n++;
    if (n < 6 || f[4][0] != '/') continue;
    /* the optional fields (shared:1, master:2, ...), as many as there
     * are, end at a lone "-" */
    char *sep;
    while ((sep = mountinfo_field(&rest)) && strcmp(sep, "-")) {}
    char *fstype = mountinfo_field(&rest), *source = mountinfo_field(&rest), *super = mountinfo_field(&rest);
    if (!sep || !super || !*fstype) continue;
    *out = (struct mountinfo_line){.root = mountinfo_unescape(f[3]),
                                   .mnt = mountinfo_unescape(f[4]),
                                   .opts = f[5],
                                   .fstype = fstype,
                                   .source = mountinfo_unescape(source),
                                   .super = super};
    return true;
  }
  return false;
}

void mountinfo_lines_free(struct mountinfo_lines *it) {
  free(it->text);
  it->text = it->next = NULL;
}

int mountinfo_read(char **out, berth_error_t *err) {
  /* room for the kernel's own bound (fs.mount-max, 100000 mounts by
   * default) at a few hundred bytes a line: a host with many containers
   * must not lose its cgroup hierarchies to a size limit */
  if (read_file("/proc/self/mountinfo", 64 << 20, out, NULL, err) == 0) return 0;
  if (err && *err)
    berth_error_wrap(err, "%s",
                     (*err)->status == EFBIG ? "cannot read the mount table; unmount what is no longer in use"
                                             : "cannot read the mount table; mount /proc, where berth finds the cgroup hierarchies");
  return -1;
}

pid_t clone_vm(int (*fn)(void *), void *arg, unsigned long flags, size_t stack_len) {
  void *stack = mmap(NULL, stack_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  pid_t p = clone(fn, (char *)stack + stack_len, CLONE_VM | flags | SIGCHLD, arg);
  int e = errno;
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (p < 0 || (flags & CLONE_VFORK)) munmap(stack, stack_len);
  errno = e;
  return p;
}

/* a signal by name (TERM, SIGTERM, RTMIN+3, RTMAX-1) or number; -1 if unknown */
int signal_parse(const char *s) {
  if (!s || !*s) return -1;
  char *end;
  long n = strtol(s, &end, 10);
  if (!*end) return n > 0 && n < 65 ? (int)n : -1;
  if (!strncasecmp(s, "SIG", 3)) s += 3;
  static const struct {
    const char *n;
    int v;
  } T[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},   {"TRAP", SIGTRAP},     {"ABRT", SIGABRT},
           {"IOT", SIGIOT},   {"BUS", SIGBUS},   {"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
           {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},
           {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
           {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},   {"IO", SIGIO},
           {"POLL", SIGPOLL}, {"PWR", SIGPWR},   {"SYS", SIGSYS}};
  for (size_t i = 0; i < sizeof T / sizeof *T; i++)
    if (!strcasecmp(s, T[i].n)) return T[i].v;
  if (!strncasecmp(s, "RTMIN", 5) || !strncasecmp(s, "RTMAX", 5)) {
    bool min = !strncasecmp(s, "RTMIN", 5);
    long off = 0;
    if (s[5]) {
      if (s[5] != (min ? '+' : '-')) return -1;
      off = strtol(s + 6, &end, 10);
      if (*end || end == s + 6 || off < 0) return -1;
    }
    long sig = min ? SIGRTMIN + off : SIGRTMAX - off;
    return sig >= SIGRTMIN && sig <= SIGRTMAX ? (int)sig : -1;
  }
  return -1;
}
