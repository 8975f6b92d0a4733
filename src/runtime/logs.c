/* Service logs: written by the container's monitor, read by `berth logs`.
 *
 *   main process ── stdout pipe ──┐
 *                └─ stderr pipe ──┴─> monitor: log_feed ──> ctr.log (ctr.log.1 ...)
 *
 * One record per line, in the CRI format ("TIME STREAM F|P TEXT"): a line
 * longer than LOG_RECORD_MAX is cut into P(artial) records ending with an
 * F(ull) one. When the file would pass max_size it is renamed to ctr.log.1
 * (the older ones shift up, the oldest goes), so the log never holds more
 * than max_size * max_files bytes. */
#define _GNU_SOURCE
#include "runtime/logs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "util/config.h"

#define LOG_RECORD_MAX (16 * 1024)

static char *rotated(const char *path, int n) { return n ? xasprintf("%s.%d", path, n) : xstrdup(path); }

/* the writer works relative to the container's directory as it was when
 * the log was opened: a directory removed and made again under the same
 * name (rm -f, create) is never written into */
#define LOG_NAME "ctr.log"

int log_open(struct log_writer *w, const char *cdir, berth_error_t *err) {
  memset(w, 0, sizeof *w);
  w->dirfd = -1;
  struct berth_config *cfg = config_get(NULL);
  w->max_size = LOG_DEFAULT_MAX_SIZE;
  w->max_files = LOG_DEFAULT_MAX_FILES;
  if (cfg) {
    /* "10m", "512k", or a number of bytes; below 64 KiB is taken as 64 KiB */
    json_t *ms = json_object_get(cfg->root, "log_max_size");
    double v = json_is_number(ms) ? json_number_value(ms) : 0;
    if (json_is_string(ms)) {
      char *end;
      v = strtod(json_string_value(ms), &end);
      v *= *end == 'k' || *end == 'K' ? 1024 : *end == 'm' || *end == 'M' ? 1 << 20 : *end == 'g' || *end == 'G' ? 1 << 30 : 1;
    }
    if (v > 0) w->max_size = v < 65536 ? 65536 : v > 1e12 ? (int64_t)1e12 : (int64_t)v;
    long mf = config_int(cfg, "log_max_files", LOG_DEFAULT_MAX_FILES);
    if (mf >= 1 && mf <= 100) w->max_files = (int)mf;
  }
  w->path = xasprintf("%s/ctr.log", cdir);
  w->dirfd = open(cdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  w->fd = w->dirfd < 0 ? -1 : openat(w->dirfd, LOG_NAME, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (w->fd < 0) return berth_error(err, errno, "open the log `%s`", w->path);
  struct stat sb;
  w->size = fstat(w->fd, &sb) == 0 ? sb.st_size : 0;
  return 0;
}

static void log_rotate(struct log_writer *w) {
  if (w->max_files > 1) {
    for (int i = w->max_files - 1; i >= 1; i--) {
      cleanup_free char *from = rotated(LOG_NAME, i - 1), *to = rotated(LOG_NAME, i);
      if (renameat(w->dirfd, from, w->dirfd, to) < 0 && errno != ENOENT) {}
    }
    close(w->fd);
    w->fd = openat(w->dirfd, LOG_NAME, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  } else if (ftruncate(w->fd, 0) < 0) {
  }
  w->size = 0;
}

/* the records gathered by one feed, written at once (a reader may see
 * a record cut at the end of the file, never a torn one in the middle) */
static void log_drain(struct log_writer *w) {
  size_t off = 0;
  while (w->fd >= 0 && off < w->out.len) {
    ssize_t n = write(w->fd, w->out.data + off, w->out.len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; /* a full disk: the output is dropped, the service goes on */
    off += (size_t)n;
  }
  w->size += (int64_t)off;
  w->out.len = 0;
}

static void log_record(struct log_writer *w, int stream, bool full, const char *data, size_t len) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char head[80];
  int h = snprintf(head, sizeof head, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ %s %c ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                   tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec, stream ? "stderr" : "stdout", full ? 'F' : 'P');
  int64_t need = h + (int64_t)len + 1;
  if (w->size + (int64_t)w->out.len > 0 && w->size + (int64_t)w->out.len + need > w->max_size) {
    log_drain(w);
    log_rotate(w);
  }
  buf_append(&w->out, head, (size_t)h);
  buf_append(&w->out, data, len);
  buf_append(&w->out, "\n", 1);
}

void log_feed(struct log_writer *w, int stream, const char *data, size_t len) {
  struct buf *p = &w->partial[stream ? 1 : 0];
  while (len) {
    const char *nl = memchr(data, '\n', len);
    size_t take = nl ? (size_t)(nl - data) : len;
    if (p->len + take >= LOG_RECORD_MAX) { /* a long line: cut it */
      size_t room = LOG_RECORD_MAX - p->len;
      buf_append(p, data, room);
      log_record(w, stream, false, p->data, p->len);
      p->len = 0;
      data += room, len -= room;
      continue;
    }
    if (!nl) {
      buf_append(p, data, take);
      break;
    }
    if (p->len) {
      buf_append(p, data, take);
      log_record(w, stream, true, p->data, p->len);
      p->len = 0;
    } else log_record(w, stream, true, data, take);
    data += take + 1, len -= take + 1;
  }
  log_drain(w);
}

void log_flush(struct log_writer *w, int stream) {
  struct buf *p = &w->partial[stream ? 1 : 0];
  if (p->len) log_record(w, stream, true, p->data, p->len);
  p->len = 0;
  log_drain(w);
}

void log_close(struct log_writer *w) {
  log_flush(w, 0);
  log_flush(w, 1);
  if (w->fd >= 0) close(w->fd);
  if (w->dirfd >= 0) close(w->dirfd);
  w->fd = w->dirfd = -1;
  buf_free(&w->out);
  buf_free(&w->partial[0]);
  buf_free(&w->partial[1]);
  free(w->path);
  w->path = NULL;
}

/* ---------- reading ---------- */

/* "2026-12-03T12:00:00.123456789Z" -> unix seconds; -1 if not that */
static double parse_rfc3339(const char *s, size_t n, const char **end) {
  struct tm tm = {0};
  int frac_digits = 0;
  double frac = 0;
  if (n < 20 || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6 ||
      s[4] != '-' || s[10] != 'T')
    return -1;
  size_t i = 19;
  if (i < n && s[i] == '.')
    for (i++; i < n && isdigit((unsigned char)s[i]); i++, frac_digits++)
      if (frac_digits < 9) frac = frac * 10 + (s[i] - '0');
  for (int k = frac_digits < 9 ? frac_digits : 9; k > 0; k--) frac /= 10;
  double off = 0;
  if (i < n && s[i] == 'Z') i++;
  else if (i + 6 <= n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    int oh = atoi(s + i + 1), om = atoi(s + i + 4);
    off = (s[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    i += 6;
  } else return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  time_t t = timegm(&tm);
  if (end) *end = s + i;
  return (double)t + frac - off;
}

int log_parse_time(const char *s, double *out, berth_error_t *err) {
  if (!s || !*s) return berth_error(err, -EINVAL, "an empty time: use 2026-12-03T12:00:00Z, unix seconds, or 10m");
  const char *end = NULL;
  double t = parse_rfc3339(s, strlen(s), &end);
  if (t >= 0 && end && !*end) return *out = t, 0;
  char *e = NULL;
  double v = strtod(s, &e);
  if (e != s && !*e && v >= 0) return *out = v, 0;
  /* a duration back from now: 90s, 10m, 2h, 1h30m, 1d */
  double total = 0;
  const char *p = s;
  while (*p) {
    double n = strtod(p, &e);
    if (e == p || n < 0) break;
    double unit = *e == 's' ? 1 : *e == 'm' ? 60 : *e == 'h' ? 3600 : *e == 'd' ? 86400 : 0;
    if (!unit) break;
    total += n * unit;
    p = e + 1;
  }
  if (*p || p == s)
    return berth_error(err, -EINVAL, "`%.60s` is not a time: use 2026-12-03T12:00:00Z, unix seconds, or a duration such as 10m or 1h30m",
                       s);
  *out = wall_seconds() - total;
  return 0;
}

struct emit {
  int out_fd, err_fd;
  struct buf *text; /* or into this */
  const struct log_query *q;
  bool mid[2]; /* inside a cut line (after P records) */
};

static void emit_write(int fd, const char *d, size_t n) {
  while (n) {
    ssize_t w = write(fd, d, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    d += w, n -= (size_t)w;
  }
}

/* one record "TIME STREAM F|P TEXT" (without its newline) */
static void emit_record(struct emit *e, const char *r, size_t n) {
  const char *sp1 = memchr(r, ' ', n);
  if (!sp1) return;
  const char *sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - r));
  if (!sp2 || (size_t)(sp2 + 3 - r) > n) return;
  double t = parse_rfc3339(r, (size_t)(sp1 - r), NULL);
  if (e->q->since > 0 && t < e->q->since) return;
  if (e->q->until > 0 && t >= e->q->until) return;
  int stream = !strncmp(sp1 + 1, "stderr", 6) ? 1 : 0;
  bool full = sp2[1] != 'P';
  const char *text = sp2 + 3;
  size_t tlen = n - (size_t)(text - r);
  struct buf line = {0};
  if (e->q->timestamps && !e->mid[stream]) {
    buf_append(&line, r, (size_t)(sp1 - r));
    buf_append(&line, " ", 1);
  }
  buf_append(&line, text, tlen);
  if (full) buf_append(&line, "\n", 1);
  e->mid[stream] = !full;
  if (e->text) buf_append(e->text, line.data, line.len);
  else emit_write(stream ? e->err_fd : e->out_fd, line.data, line.len);
  buf_free(&line);
}

/* the records in data[0..n), whole ones; returns the bytes used */
static size_t emit_records(struct emit *e, const char *data, size_t n) {
  size_t used = 0;
  while (used < n) {
    const char *nl = memchr(data + used, '\n', n - used);
    if (!nl) break;
    emit_record(e, data + used, (size_t)(nl - (data + used)));
    used = (size_t)(nl - data) + 1;
  }
  return used;
}

/* the log's files, oldest first */
static int log_files(const char *cdir, char ***out) {
  cleanup_free char *base = xasprintf("%s/ctr.log", cdir);
  int n = 0;
  while (n < 1000) {
    cleanup_free char *p = rotated(base, n + 1);
    if (access(p, F_OK) < 0) break;
    n++;
  }
  char **v = xmalloc0(sizeof(char *) * (size_t)(n + 2));
  for (int i = 0; i < n; i++) v[i] = rotated(base, n - i);
  v[n] = xstrdup(base);
  *out = v;
  return n + 1;
}

static void files_free(char **v) {
  for (char **p = v; p && *p; p++) free(*p);
  free(v);
}

/* Where the last `want` records start: walks back from the end of the
 * newest file in 64 KiB steps, without reading what comes before. Fills
 * *file and *off; returns false if the whole log has fewer records. */
static bool tail_start(char **files, int nfiles, int64_t want, int *file, off_t *off) {
  int64_t seen = 0;
  char chunk[65536];
  for (int f = nfiles - 1; f >= 0; f--) {
    cleanup_close int fd = open(files[f], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) continue;
    off_t end = sb.st_size;
    bool first_byte = true; /* the file's last byte is a record's newline, not a start */
    while (end > 0) {
      size_t n = end > (off_t)sizeof chunk ? sizeof chunk : (size_t)end;
      off_t at = end - (off_t)n;
      if (pread(fd, chunk, n, at) != (ssize_t)n) break;
      for (size_t i = n; i-- > 0;) {
        if (chunk[i] != '\n') continue;
        if (first_byte && at + (off_t)i == sb.st_size - 1) {
          first_byte = false;
          continue;
        }
        first_byte = false;
        if (++seen == want) {
          *file = f;
          *off = at + (off_t)i + 1;
          return true;
        }
      }
      first_byte = false;
      end = at;
    }
    /* the file's first record counts too */
    if (sb.st_size > 0 && ++seen == want) {
      *file = f;
      *off = 0;
      return true;
    }
  }
  return false;
}

static void emit_file_from(struct emit *e, const char *path, off_t from) {
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 || lseek(fd, from, SEEK_SET) < 0) return;
  struct buf pend = {0};
  char tmp[65536];
  ssize_t n;
  while ((n = read(fd, tmp, sizeof tmp)) > 0) {
    buf_append(&pend, tmp, (size_t)n);
    size_t used = emit_records(e, pend.data, pend.len);
    memmove(pend.data, pend.data + used, pend.len - used);
    pend.len -= used;
  }
  buf_free(&pend);
}

static int log_run(const char *cdir, const struct log_query *q, struct emit *e, bool (*alive)(void *), void *arg, berth_error_t *err) {
  char **files = NULL;
  int n = log_files(cdir, &files);
  int f0 = 0;
  off_t off0 = 0;
  if (q->tail == 0) f0 = n - 1, off0 = -1; /* nothing old: only what follows */
  else if (q->tail > 0 && !tail_start(files, n, q->tail, &f0, &off0)) f0 = 0, off0 = 0;
  cleanup_close int cur = -1;
  for (int f = f0; f < n; f++) {
    if (off0 < 0) break;
    emit_file_from(e, files[f], f == f0 ? off0 : 0);
  }
  if (!q->follow) {
    files_free(files);
    return 0;
  }
  /* follow the newest file: read what is appended; a rotation renames it
   * away (a new inode at the path): finish the old one, go on with the new */
  cur = open(files[n - 1], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (cur < 0 && errno != ENOENT) {
    int e2 = errno;
    files_free(files);
    return berth_error(err, e2, "open the log");
  }
  if (cur >= 0) lseek(cur, 0, SEEK_END);
  struct buf pend = {0};
  char tmp[65536];
  int idle_checks = 0;
  for (;;) {
    bool got = false;
    ssize_t r;
    while (cur >= 0 && (r = read(cur, tmp, sizeof tmp)) > 0) {
      got = true;
      buf_append(&pend, tmp, (size_t)r);
      size_t used = emit_records(e, pend.data, pend.len);
      memmove(pend.data, pend.data + used, pend.len - used);
      pend.len -= used;
    }
    struct stat a, b;
    if (stat(files[n - 1], &a) == 0 &&
        (cur < 0 || (fstat(cur, &b) == 0 && (a.st_ino != b.st_ino || a.st_size < lseek(cur, 0, SEEK_CUR))))) {
      if (cur >= 0) close(cur);
      cur = open(files[n - 1], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      pend.len = 0;
      continue;
    }
    if (got) {
      idle_checks = 0;
      continue;
    }
    /* nothing new: is the container still there to write more? asked every
     * few rounds (it reads its record); a last read after it has stopped */
    if (++idle_checks % 4 == 0 && alive && !alive(arg)) {
      while (cur >= 0 && (r = read(cur, tmp, sizeof tmp)) > 0) {
        buf_append(&pend, tmp, (size_t)r);
        size_t used = emit_records(e, pend.data, pend.len);
        memmove(pend.data, pend.data + used, pend.len - used);
        pend.len -= used;
      }
      break;
    }
    poll(NULL, 0, 50);
  }
  buf_free(&pend);
  files_free(files);
  return 0;
}

int log_read(const char *cdir, const struct log_query *q, int out_fd, int err_fd, bool (*alive)(void *), void *arg, berth_error_t *err) {
  struct emit e = {.out_fd = out_fd, .err_fd = err_fd, .q = q};
  return log_run(cdir, q, &e, alive, arg, err);
}

int log_read_text(const char *cdir, const struct log_query *q, size_t max, struct buf *out, bool *truncated, berth_error_t *err) {
  struct log_query q2 = *q;
  q2.follow = false;
  struct emit e = {.out_fd = -1, .err_fd = -1, .text = out, .q = &q2};
  *truncated = false;
  if (log_run(cdir, &q2, &e, NULL, NULL, err) < 0) return -1;
  if (out->len > max) { /* the newest part, from a line's start */
    size_t cut = out->len - max;
    const char *nl = memchr(out->data + cut, '\n', out->len - cut);
    if (nl) cut = (size_t)(nl - out->data) + 1;
    memmove(out->data, out->data + cut, out->len - cut);
    out->len -= cut;
    *truncated = true;
  }
  buf_append(out, "", 1); /* NUL-terminated */
  out->len--;
  return 0;
}
