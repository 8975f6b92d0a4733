/* util: cpu_aside / cpu_restore, write_file_swap, name_valid */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

static pid_t sleeper(void) {
  pid_t p = fork();
  cr_assert(p >= 0);
  if (p == 0) {
    pause();
    _exit(0);
  }
  return p;
}

static void reap(pid_t p) {
  kill(p, SIGKILL);
  waitpid(p, NULL, 0);
}

Test(util, cpu_aside_moves_the_child_off_this_cpu_and_restores_it) {
  cpu_set_t mine, saved, now;
  cr_assert_eq(sched_getaffinity(0, sizeof mine, &mine), 0);
  pid_t p = sleeper();
  int here = sched_getcpu();
  /* held on this CPU while cpu_aside looks where it runs (a migration in
   * between would make "here" another CPU than cpu_aside's) */
  cpu_set_t pin;
  CPU_ZERO(&pin);
  CPU_SET(here, &pin);
  cr_assert_eq(sched_setaffinity(0, sizeof pin, &pin), 0);
  bool moved = cpu_aside(p, &saved);
  sched_setaffinity(0, sizeof mine, &mine);
  cr_assert(CPU_EQUAL(&saved, &mine), "saved mask is the child's own (inherited) one");
  cr_assert_eq(sched_getaffinity(p, sizeof now, &now), 0);
  if (CPU_COUNT(&mine) > 1) {
    cr_assert(moved);
    cr_assert_not(CPU_ISSET(here, &now), "the child may not run on CPU %d", here);
    cr_assert_eq(CPU_COUNT(&now), CPU_COUNT(&mine) - (CPU_ISSET(here, &mine) ? 1 : 0));
  } else {
    cr_assert_not(moved, "one CPU: nowhere else to go");
    cr_assert(CPU_EQUAL(&now, &mine));
  }
  cpu_restore(p, &saved);
  cr_assert_eq(sched_getaffinity(p, sizeof now, &now), 0);
  cr_assert(CPU_EQUAL(&now, &mine), "restored");
  reap(p);
}

Test(util, cpu_aside_of_a_gone_process_is_false) {
  pid_t p = sleeper();
  reap(p);
  cpu_set_t saved;
  cr_assert_not(cpu_aside(p, &saved));
}

Test(util, cpu_aside_with_a_single_allowed_cpu_is_false) {
  pid_t p = sleeper();
  cpu_set_t one, saved, now, mine;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  /* this process stays on that CPU too, or cpu_aside's own "here" could be
   * another one (a migration in between made this test flaky) */
  cr_assert_eq(sched_getaffinity(0, sizeof mine, &mine), 0);
  cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
  cr_assert_eq(sched_setaffinity(p, sizeof one, &one), 0);
  /* the child may only run here: moving it off would leave it no CPU */
  bool moved = cpu_aside(p, &saved);
  sched_setaffinity(0, sizeof mine, &mine);
  cr_assert_not(moved);
  cr_assert_eq(sched_getaffinity(p, sizeof now, &now), 0);
  cr_assert(CPU_EQUAL(&now, &one), "left as it was");
  reap(p);
}

/* entries in DIR besides . and .. */
static int entries(const char *dir) {
  DIR *d = opendir(dir);
  cr_assert_not_null(d);
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
  closedir(d);
  return n;
}

Test(util, write_file_swap_replaces_creates_and_leaves_no_temporary) {
  char dir[] = "/tmp/berth-swap-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char *p = NULL, *have = NULL;
  size_t n = 0;
  cr_assert(asprintf(&p, "%s/state.json", dir) > 0);
  /* absent: created (RENAME_EXCHANGE needs both, so a plain rename) */
  cr_assert_eq(write_file_swap(p, "{\"a\": 1}", 8, 0600, NULL), 0);
  cr_assert_eq(read_file(p, 4096, &have, &n, NULL), 0);
  cr_assert_str_eq(have, "{\"a\": 1}");
  free(have);
  /* present: the new content, shorter than the old, and the mode asked for */
  cr_assert_eq(write_file_swap(p, "{}", 2, 0640, NULL), 0);
  cr_assert_eq(read_file(p, 4096, &have, &n, NULL), 0);
  cr_assert_eq(n, 2);
  cr_assert_str_eq(have, "{}");
  free(have);
  struct stat st;
  cr_assert_eq(stat(p, &st), 0);
  cr_assert_eq(st.st_mode & 07777, 0640);
  cr_assert_eq(entries(dir), 1, "the old file and the temporary are gone");
  /* a directory that is not there: an error, nothing made */
  char *q = NULL;
  cr_assert(asprintf(&q, "%s/none/state.json", dir) > 0);
  berth_error_t err = NULL;
  cr_assert_lt(write_file_swap(q, "{}", 2, 0600, &err), 0);
  cr_assert_not_null(err);
  berth_error_free(err);
  unlink(p);
  rmdir(dir);
  free(p);
  free(q);
}

Test(util, name_valid_is_the_container_and_network_name_rule) {
  cr_assert(name_valid("web"));
  cr_assert(name_valid("a.b_c-1"));
  cr_assert(name_valid("A"));
  char n63[64], n64[65];
  memset(n63, 'x', 63), n63[63] = 0;
  memset(n64, 'x', 64), n64[64] = 0;
  cr_assert(name_valid(n63));
  cr_assert_not(name_valid(n64));
  cr_assert_not(name_valid(NULL));
  cr_assert_not(name_valid(""));
  cr_assert_not(name_valid(".hidden"));
  cr_assert_not(name_valid("-x"));
  cr_assert_not(name_valid("a/b"));
  cr_assert_not(name_valid("a b"));
}

/* signal names as runc, podman and `berth kill` take them */
Test(util, signal_parse_names_numbers_and_realtime) {
  cr_expect_eq(signal_parse("TERM"), SIGTERM);
  cr_expect_eq(signal_parse("SIGKILL"), SIGKILL);
  cr_expect_eq(signal_parse("sigusr1"), SIGUSR1);
  cr_expect_eq(signal_parse("9"), 9);
  cr_expect_eq(signal_parse("64"), 64);
  cr_expect_eq(signal_parse("RTMIN"), SIGRTMIN);
  cr_expect_eq(signal_parse("RTMIN+3"), SIGRTMIN + 3);
  cr_expect_eq(signal_parse("SIGRTMAX-1"), SIGRTMAX - 1);
  cr_expect_eq(signal_parse("RTMIN+99"), -1);
  cr_expect_eq(signal_parse("RTMIN+3x"), -1);
  cr_expect_eq(signal_parse("RTMIN-1"), -1);
  cr_expect_eq(signal_parse("0"), -1);
  cr_expect_eq(signal_parse("65"), -1);
  cr_expect_eq(signal_parse("NOPE"), -1);
  cr_expect_eq(signal_parse(""), -1);
}
