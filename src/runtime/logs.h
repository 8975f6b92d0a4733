/* A service container's log: its main process's stdout and stderr, one
 * record per line in the CRI format containerd and CRI-O write
 * ("2026-12-03T12:00:00.123456789Z stdout F text"), capped and rotated. */
#ifndef BERTH_LOGS_H
#define BERTH_LOGS_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/util.h"

/* the defaults (config `log_max_size`, `log_max_files`): at most
 * 3 files of 10 MiB on disk, Docker's common json-file setting */
#define LOG_DEFAULT_MAX_SIZE (10LL << 20)
#define LOG_DEFAULT_MAX_FILES 3

struct log_writer {
  char *path; /* <cdir>/ctr.log; rotated to ctr.log.1 ... */
  int fd, dirfd;
  int64_t size, max_size;
  int max_files;
  /* a line not finished yet, per stream (0 stdout, 1 stderr) */
  struct buf partial[2];
  struct buf out; /* records not written yet */
};

int log_open(struct log_writer *w, const char *cdir, berth_error_t *err);
/* the bytes a stream produced; whole lines are written, the rest kept */
void log_feed(struct log_writer *w, int stream, const char *data, size_t len);
/* the stream ended: its unfinished line is written */
void log_flush(struct log_writer *w, int stream);
void log_close(struct log_writer *w);

struct log_query {
  int64_t tail; /* the last N lines (-1: all) */
  double since; /* unix seconds, 0: from the start */
  double until; /* 0: no end */
  bool timestamps; /* prefix each line with its time */
  bool follow;
};
/* parse --since/--until: RFC 3339 (2026-12-03T12:00:00Z), unix seconds, or
 * a duration back from now (10s, 5m, 2h, 1h30m) */
int log_parse_time(const char *s, double *out, berth_error_t *err);
/* Write the container's log to out_fd / err_fd (each line to its stream's
 * fd; the same fd for both keeps their order). follow: keep writing what
 * comes until alive(arg) says the container has stopped. */
int log_read(const char *cdir, const struct log_query *q, int out_fd, int err_fd, bool (*alive)(void *), void *arg, berth_error_t *err);
/* The same as one text (for the tool), at most max bytes: the newest kept */
int log_read_text(const char *cdir, const struct log_query *q, size_t max, struct buf *out, bool *truncated, berth_error_t *err);

#endif
