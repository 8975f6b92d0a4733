/* The service log: records, cut lines, rotation, tail and since. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/logs.h"
#include "util/util.h"

static char dir[] = "/tmp/berth-logs-XXXXXX";

static void setup(void) {
  cr_assert_not_null(mkdtemp(dir));
  char cfg[128];
  snprintf(cfg, sizeof cfg, "%s/config.json", dir);
  FILE *f = fopen(cfg, "w");
  fputs("{\"log_max_size\": \"64k\", \"log_max_files\": 3}", f);
  fclose(f);
  setenv("BERTH_CONFIG", cfg, 1);
  setenv("BERTH_ROOT", dir, 1);
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
  strcpy(dir, "/tmp/berth-logs-XXXXXX");
}

static char *text(const struct log_query *q) {
  struct buf b = {0};
  bool trunc = false;
  berth_error_t e = NULL;
  cr_assert_eq(log_read_text(dir, q, 1 << 20, &b, &trunc, &e), 0);
  return b.data ? b.data : strdup("");
}

TestSuite(logs, .init = setup, .fini = teardown);

Test(logs, lines_split_across_reads_and_streams) {
  struct log_writer w;
  berth_error_t e = NULL;
  cr_assert_eq(log_open(&w, dir, &e), 0);
  log_feed(&w, 0, "hel", 3);
  log_feed(&w, 1, "oops\n", 5);
  log_feed(&w, 0, "lo\nwor", 6);
  log_feed(&w, 0, "ld\nno newline", 13);
  log_close(&w); /* the unfinished line is written at the end */
  struct log_query q = {.tail = -1};
  char *t = text(&q);
  cr_assert_str_eq(t, "oops\nhello\nworld\nno newline\n");
  free(t);
  q.tail = 2;
  t = text(&q);
  cr_assert_str_eq(t, "world\nno newline\n");
  free(t);
  q.tail = 0;
  t = text(&q);
  cr_assert_str_eq(t, "");
  free(t);
}

Test(logs, a_long_line_is_cut_into_partial_records_and_joined_back) {
  struct log_writer w;
  berth_error_t e = NULL;
  cr_assert_eq(log_open(&w, dir, &e), 0);
  size_t n = 40000;
  char *big = malloc(n + 1);
  memset(big, 'x', n);
  big[n] = '\n';
  log_feed(&w, 0, big, n + 1);
  log_close(&w);
  char p[256];
  snprintf(p, sizeof p, "%s/ctr.log", dir);
  char *raw = NULL;
  size_t len = 0;
  cr_assert_eq(read_file(p, 1 << 20, &raw, &len, NULL), 0);
  cr_assert_not_null(strstr(raw, " stdout P "), "cut into P records");
  cr_assert_not_null(strstr(raw, " stdout F "), "ending with an F record");
  struct log_query q = {.tail = -1};
  char *t = text(&q);
  cr_assert_eq(strlen(t), n + 1, "joined back into one line");
  free(t);
  free(raw);
  free(big);
}

Test(logs, rotation_keeps_at_most_max_files_of_max_size) {
  struct log_writer w;
  berth_error_t e = NULL;
  cr_assert_eq(log_open(&w, dir, &e), 0);
  cr_assert_eq(w.max_size, 65536);
  char line[128];
  for (int i = 0; i < 20000; i++) {
    int l = snprintf(line, sizeof line, "line %05d of some length to fill the files\n", i);
    log_feed(&w, i % 2, line, (size_t)l);
  }
  log_close(&w);
  struct stat sb;
  off_t total = 0;
  for (int i = 0; i < 4; i++) {
    char p[256];
    snprintf(p, sizeof p, i ? "%s/ctr.log.%d" : "%s/ctr.log", dir, i);
    if (i == 3) {
      cr_assert_neq(stat(p, &sb), 0, "no fourth file");
      continue;
    }
    cr_assert_eq(stat(p, &sb), 0, "%s", p);
    cr_assert_leq(sb.st_size, 65536);
    total += sb.st_size;
  }
  cr_assert_leq(total, 3 * 65536);
  struct log_query q = {.tail = 3};
  char *t = text(&q);
  cr_assert_str_eq(t, "line 19997 of some length to fill the files\nline 19998 of some length to fill the files\n"
                      "line 19999 of some length to fill the files\n");
  free(t);
  /* a tail longer than the newest file reaches into the rotated ones, in order */
  q.tail = 2000;
  t = text(&q);
  cr_assert(!strncmp(t, "line 18000 ", 11), "%.20s", t);
  free(t);
}

Test(logs, times_parse_and_since_filters) {
  double t = 0;
  berth_error_t e = NULL;
  cr_assert_eq(log_parse_time("2026-12-03T12:00:00Z", &t, &e), 0);
  cr_assert_float_eq(t, 1796299200.0, 0.001);
  cr_assert_eq(log_parse_time("2026-12-03T13:00:00.5+01:00", &t, &e), 0);
  cr_assert_float_eq(t, 1796299200.5, 0.001);
  cr_assert_eq(log_parse_time("1796299200", &t, &e), 0);
  cr_assert_float_eq(t, 1796299200.0, 0.001);
  double now = wall_seconds();
  cr_assert_eq(log_parse_time("1h30m", &t, &e), 0);
  cr_assert_float_eq(t, now - 5400, 2);
  cr_assert_lt(log_parse_time("yesterday", &t, &e), 0);
  cr_assert_not_null(strstr(e->msg, "10m"), "the error shows the forms: %s", e->msg);
  berth_error_free(e);
  e = NULL;
  cr_assert_lt(log_parse_time("", &t, &e), 0);
  berth_error_free(e);
  /* since: records before it are left out */
  char p[256];
  snprintf(p, sizeof p, "%s/ctr.log", dir);
  FILE *f = fopen(p, "w");
  fputs("2026-12-03T11:00:00.000000000Z stdout F old\n2026-12-03T12:30:00.000000000Z stderr F new\ngarbage line\n", f);
  fclose(f);
  struct log_query q = {.tail = -1, .since = 1796299200.0};
  char *s = text(&q);
  cr_assert_str_eq(s, "new\n");
  free(s);
  q.since = 0;
  q.timestamps = true;
  s = text(&q);
  cr_assert_str_eq(s, "2026-12-03T11:00:00.000000000Z old\n2026-12-03T12:30:00.000000000Z new\n");
  free(s);
}
