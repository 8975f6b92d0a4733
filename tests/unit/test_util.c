/* util: cpu_aside / cpu_restore, write_file_swap, name_valid, signal_parse, the /proc/PID/cgroup and mountinfo parsers */
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

#include "util/util.h"

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

/* ---- /proc/PID/cgroup ---- */

/* every line the parser yields, as "id|ctrls|path;" */
static char *cg_lines(const char *text) {
  struct buf b = {0};
  cleanup_cgroup_lines struct cgroup_lines it = cgroup_lines_begin(text);
  struct cgroup_line l;
  while (cgroup_lines_next(&it, &l)) {
    cleanup_free char *s = xasprintf("%s|%s|%s;", l.id, l.ctrls, l.path);
    buf_append(&b, s, strlen(s));
  }
  buf_append(&b, "", 1);
  return b.data;
}

/* own path for ctrl, "(none)" for NULL (so cr_expect_str_eq can compare it) */
static char *cg_own(const char *text, const char *ctrl) {
  char *p = cgroup_own_path(text, ctrl);
  return p ? p : xstrdup("(none)");
}

#define EXPECT_OWN(text, ctrl, want)               \
  do {                                             \
    cleanup_free char *o_ = cg_own(text, ctrl);    \
    cr_expect_str_eq(o_, want, "ctrl `%s`", ctrl); \
  } while (0)

static const char CG_V1[] = "12:pids:/user.slice/u\n"
                            "11:memory:/user.slice\n"
                            "10:cpuset:/\n"
                            "4:cpu,cpuacct:/user.slice/cpu\n"
                            "3:net_cls,net_prio:/\n"
                            "1:name=systemd:/user.slice/session-1.scope\n";

Test(util, cgroup_lines_of_a_v1_host) {
  cleanup_free char *all = cg_lines(CG_V1);
  cr_expect_str_eq(all, "12|pids|/user.slice/u;11|memory|/user.slice;10|cpuset|/;4|cpu,cpuacct|/user.slice/cpu;"
                        "3|net_cls,net_prio|/;1|name=systemd|/user.slice/session-1.scope;");
  EXPECT_OWN(CG_V1, "memory", "/user.slice");
  EXPECT_OWN(CG_V1, "pids", "/user.slice/u");
  /* a controller mounted with another: either name finds the line; "cpu" is not "cpuset" */
  EXPECT_OWN(CG_V1, "cpu", "/user.slice/cpu");
  EXPECT_OWN(CG_V1, "cpuacct", "/user.slice/cpu");
  EXPECT_OWN(CG_V1, "cpuset", "/");
  EXPECT_OWN(CG_V1, "net_prio", "/");
  EXPECT_OWN(CG_V1, "cpuac", "(none)");
  EXPECT_OWN(CG_V1, "devices", "(none)");
  EXPECT_OWN(CG_V1, "", "(none)"); /* no v2 line */
}

Test(util, cgroup_lines_of_a_v2_host) {
  const char *t = "0::/user.slice/user-1000.slice/session-2.scope\n";
  cleanup_free char *all = cg_lines(t);
  cr_expect_str_eq(all, "0||/user.slice/user-1000.slice/session-2.scope;");
  EXPECT_OWN(t, "", "/user.slice/user-1000.slice/session-2.scope");
  EXPECT_OWN(t, "memory", "(none)");
  /* the last line without its newline */
  EXPECT_OWN("0::/", "", "/");
}

/* a hybrid host: v1 hierarchies and the unified one, "0::", last */
Test(util, cgroup_lines_of_a_hybrid_host) {
  const char *t = "9:name=systemd:/\n8:pids:/p\n4:memory:/process_api/1cba\n1:cpu:/\n0::/unified/x\n";
  cleanup_free char *all = cg_lines(t);
  cr_expect_str_eq(all, "9|name=systemd|/;8|pids|/p;4|memory|/process_api/1cba;1|cpu|/;0||/unified/x;");
  EXPECT_OWN(t, "", "/unified/x");
  EXPECT_OWN(t, "memory", "/process_api/1cba");
  EXPECT_OWN(t, "name=systemd", "/");
  EXPECT_OWN(t, "cpu", "/");
}

/* named hierarchies: name=... is one more entry of the list (with or
 * without controllers), not a controller called "systemd" */
Test(util, cgroup_lines_with_named_hierarchies) {
  const char *t = "2:name=systemd:/a\n3:cpu,name=mine:/b\n";
  EXPECT_OWN(t, "name=systemd", "/a");
  EXPECT_OWN(t, "name=mine", "/b");
  EXPECT_OWN(t, "cpu", "/b");
  EXPECT_OWN(t, "systemd", "(none)");
  EXPECT_OWN(t, "mine", "(none)");
  cr_expect(cgroup_ctrls_has("cpu,name=mine", "name=mine"));
  cr_expect(cgroup_ctrls_has("cpu,cpuacct", "cpu"));
  cr_expect(cgroup_ctrls_has("cpu,cpuacct", "cpuacct"));
  cr_expect_not(cgroup_ctrls_has("cpu,cpuacct", "cpua"));
  cr_expect_not(cgroup_ctrls_has("cpuset", "cpu"));
  cr_expect_not(cgroup_ctrls_has("", "cpu"));
  cr_expect_not(cgroup_ctrls_has(NULL, "cpu"));
}

/* a line without two ':' is skipped, the ones around it still read; no
 * line is made up of the pieces */
Test(util, cgroup_lines_skip_malformed_lines) {
  const char *t = "garbage\n\n4:memory\n:\n5:pids:/p\n\n\n0::/v2\nno colon at all /x\n";
  cleanup_free char *all = cg_lines(t);
  cr_expect_str_eq(all, "5|pids|/p;0||/v2;");
  EXPECT_OWN(t, "memory", "(none)");
  EXPECT_OWN(t, "pids", "/p");
  EXPECT_OWN(t, "", "/v2");
  /* the v2 line is hierarchy 0's: an empty controller list alone is not it */
  EXPECT_OWN("7::/odd\n", "", "(none)");
  cleanup_free char *odd = cg_lines("::\n7::/odd");
  cr_expect_str_eq(odd, "||;7||/odd;");
}

Test(util, cgroup_lines_of_an_empty_file) {
  cleanup_free char *none = cg_lines("");
  cr_expect_str_eq(none, "");
  cleanup_free char *blank = cg_lines("\n\n");
  cr_expect_str_eq(blank, "");
  cleanup_free char *null = cg_lines(NULL);
  cr_expect_str_eq(null, "");
  EXPECT_OWN("", "", "(none)");
  EXPECT_OWN(NULL, "memory", "(none)");
}

/* the path is all after the second ':': a ':' or a space in it stays */
Test(util, cgroup_lines_keep_colons_and_spaces_in_the_path) {
  const char *t = "4:memory:/a:b/c d\n0::/x:y: z\n";
  cleanup_free char *all = cg_lines(t);
  cr_expect_str_eq(all, "4|memory|/a:b/c d;0||/x:y: z;");
  EXPECT_OWN(t, "memory", "/a:b/c d");
  EXPECT_OWN(t, "", "/x:y: z");
}

/* the first line that lists the controller wins; the lines stay valid
 * until the iterator is freed, and the text given is not changed */
Test(util, cgroup_lines_first_match_and_lifetime) {
  EXPECT_OWN("4:memory:/first\n5:memory:/second\n", "memory", "/first");
  char text[] = "1:cpu:/a\n0::/b\n";
  struct cgroup_line got[2];
  int n = 0;
  cleanup_cgroup_lines struct cgroup_lines it = cgroup_lines_begin(text);
  while (n < 2 && cgroup_lines_next(&it, &got[n])) n++;
  cr_assert_eq(n, 2);
  cr_expect_not(cgroup_lines_next(&it, &got[0]), "no third line");
  cr_expect_not(cgroup_lines_next(&it, &got[0]), "still none after the end");
  cr_expect_str_eq(got[0].ctrls, "cpu");
  cr_expect_str_eq(got[0].path, "/a");
  cr_expect_str_eq(got[1].id, "0");
  cr_expect_str_eq(got[1].path, "/b");
  cr_expect_str_eq(text, "1:cpu:/a\n0::/b\n");
}

/* ---- /proc/PID/mountinfo ---- */

/* every mount the parser yields, as "mnt|fstype|super|opts|root|source;" */
static char *mi_lines(const char *text) {
  struct buf b = {0};
  cleanup_mountinfo_lines struct mountinfo_lines it = mountinfo_lines_begin(text);
  struct mountinfo_line m;
  while (mountinfo_lines_next(&it, &m)) {
    cleanup_free char *s = xasprintf("%s|%s|%s|%s|%s|%s;", m.mnt, m.fstype, m.super, m.opts, m.root, m.source);
    buf_append(&b, s, strlen(s));
  }
  buf_append(&b, "", 1);
  return b.data;
}

/* the mount points of fstype whose super options hold word ("" for any),
 * in order, as "a;b;" (what cgroup.c and oci_cgroup.c look for) */
static char *mi_find(const char *text, const char *fstype, const char *word) {
  struct buf b = {0};
  cleanup_mountinfo_lines struct mountinfo_lines it = mountinfo_lines_begin(text);
  struct mountinfo_line m;
  while (mountinfo_lines_next(&it, &m))
    if (!strcmp(m.fstype, fstype) && (!*word || cgroup_ctrls_has(m.super, word))) {
      buf_append(&b, m.mnt, strlen(m.mnt));
      buf_append(&b, ";", 1);
    }
  buf_append(&b, "", 1);
  return b.data;
}

#define EXPECT_FIND(text, fstype, word, want)                        \
  do {                                                               \
    cleanup_free char *f_ = mi_find(text, fstype, word);             \
    cr_expect_str_eq(f_, want, "%s mounts with `%s`", fstype, word); \
  } while (0)

/* this host's kind: v1 controllers under /sys/fs/cgroup/<ctrl>, a named
 * systemd hierarchy and a controller-less cgroup2 at .../unified */
static const char MI_HYBRID[] =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
    "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    "31 23 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate\n"
    "33 31 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd\n"
    "34 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpuset\n"
    "37 31 0:34 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids\n"
    "38 31 0:35 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,devices\n";

Test(util, mountinfo_of_a_hybrid_host) {
  cleanup_free char *all = mi_lines(MI_HYBRID);
  cr_expect_str_eq(all, "/|ext4|rw,errors=remount-ro|rw,relatime|/|/dev/sda1;"
                        "/proc|proc|rw|rw,nosuid,nodev,noexec,relatime|/|proc;"
                        "/sys/fs/cgroup|tmpfs|ro,mode=755|ro,nosuid,nodev,noexec|/|tmpfs;"
                        "/sys/fs/cgroup/unified|cgroup2|rw,nsdelegate|rw,nosuid,nodev,noexec,relatime|/|cgroup2;"
                        "/sys/fs/cgroup/systemd|cgroup|rw,xattr,name=systemd|rw,nosuid,nodev,noexec,relatime|/|cgroup;"
                        "/sys/fs/cgroup/cpu,cpuacct|cgroup|rw,cpu,cpuacct|rw,nosuid,nodev,noexec,relatime|/|cgroup;"
                        "/sys/fs/cgroup/memory|cgroup|rw,memory|rw,nosuid,nodev,noexec,relatime|/|cgroup;"
                        "/sys/fs/cgroup/cpuset|cgroup|rw,cpuset|rw,nosuid,nodev,noexec,relatime|/|cgroup;"
                        "/sys/fs/cgroup/pids|cgroup|rw,pids|rw,nosuid,nodev,noexec,relatime|/|cgroup;"
                        "/sys/fs/cgroup/devices|cgroup|rw,devices|rw,nosuid,nodev,noexec,relatime|/|cgroup;");
  /* a v1 controller by its super options: "cpu" is not "cpuset", either
   * name finds cpu,cpuacct, the named hierarchy is no "systemd" controller */
  EXPECT_FIND(MI_HYBRID, "cgroup", "memory", "/sys/fs/cgroup/memory;");
  EXPECT_FIND(MI_HYBRID, "cgroup", "cpu", "/sys/fs/cgroup/cpu,cpuacct;");
  EXPECT_FIND(MI_HYBRID, "cgroup", "cpuacct", "/sys/fs/cgroup/cpu,cpuacct;");
  EXPECT_FIND(MI_HYBRID, "cgroup", "cpuset", "/sys/fs/cgroup/cpuset;");
  EXPECT_FIND(MI_HYBRID, "cgroup", "name=systemd", "/sys/fs/cgroup/systemd;");
  EXPECT_FIND(MI_HYBRID, "cgroup", "systemd", "");
  EXPECT_FIND(MI_HYBRID, "cgroup", "blkio", "");
  /* the unified hierarchy is cgroup2, not one of the v1 ones */
  EXPECT_FIND(MI_HYBRID, "cgroup2", "", "/sys/fs/cgroup/unified;");
  EXPECT_FIND(MI_HYBRID, "cgroup", "",
              "/sys/fs/cgroup/systemd;/sys/fs/cgroup/cpu,cpuacct;/sys/fs/cgroup/memory;"
              "/sys/fs/cgroup/cpuset;/sys/fs/cgroup/pids;/sys/fs/cgroup/devices;");
}

/* pure v2: one cgroup2 at /sys/fs/cgroup, no v1 hierarchy; optional
 * fields in any number (none, one, two) before the "-" */
Test(util, mountinfo_of_a_pure_v2_host) {
  const char *t =
      "24 1 253:0 / / rw,relatime - ext4 /dev/vda rw\n"
      "28 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
      "40 24 0:40 / /run/user/0 rw,nosuid,nodev,relatime shared:20 master:3 - tmpfs tmpfs rw,size=1635k,mode=700";
  cleanup_free char *all = mi_lines(t);
  cr_expect_str_eq(all, "/|ext4|rw|rw,relatime|/|/dev/vda;"
                        "/sys/fs/cgroup|cgroup2|rw,nsdelegate,memory_recursiveprot|rw,nosuid,nodev,noexec,relatime|/|cgroup2;"
                        "/run/user/0|tmpfs|rw,size=1635k,mode=700|rw,nosuid,nodev,relatime|/|tmpfs;");
  EXPECT_FIND(t, "cgroup2", "", "/sys/fs/cgroup;");
  EXPECT_FIND(t, "cgroup", "", "");
  EXPECT_FIND(t, "cgroup", "memory", "");
}

/* the kernel's \ooo escapes are decoded in the paths (mount point, root,
 * source); the option lists stay as written; a backslash that starts no
 * escape, or one that would make a NUL or a value past 0377, stays */
Test(util, mountinfo_decodes_escaped_paths) {
  const char *t = "50 22 0:50 /a\\040b /mnt/my\\040disk rw shared:30 - tmpfs my\\040src rw,size=1k\n"
                  "51 22 0:51 / /mnt/tab\\011nl\\012bs\\134end rw - tmpfs tmpfs rw\n"
                  "52 22 0:52 / /mnt/odd\\9\\04\\400\\000\\ rw - tmpfs tmpfs rw\n"
                  "53 22 0:53 / /sys/fs/cgroup/my\\040ctrl rw - cgroup cgroup rw,name=a\\054b\n";
  cleanup_free char *all = mi_lines(t);
  cr_expect_str_eq(all, "/mnt/my disk|tmpfs|rw,size=1k|rw|/a b|my src;"
                        "/mnt/tab\tnl\nbs\\end|tmpfs|rw|rw|/|tmpfs;"
                        "/mnt/odd\\9\\04\\400\\000\\|tmpfs|rw|rw|/|tmpfs;"
                        "/sys/fs/cgroup/my ctrl|cgroup|rw,name=a\\054b|rw|/|cgroup;");
  EXPECT_FIND(t, "cgroup", "name=a\\054b", "/sys/fs/cgroup/my ctrl;");
  /* the text given is not changed */
  cr_expect(strstr(t, "/mnt/my\\040disk"));
}

/* a line missing a field is skipped, the ones around it still read; an
 * empty source is one field ("" between two spaces), not a shift */
Test(util, mountinfo_skips_malformed_lines) {
  const char *t = "garbage\n"
                  "\n"
                  "1 2 3:4 / /short\n"
                  "1 2 3:4 / /no-separator rw shared:1 cgroup cgroup rw,memory\n"
                  "1 2 3:4 / /nothing-after rw -\n"
                  "1 2 3:4 / /no-super rw - cgroup cgroup\n"
                  "1 2 3:4 / /no-fstype rw -  cgroup rw,memory\n"
                  "1 2 3:4 / relative/mnt rw - cgroup cgroup rw,memory\n"
                  "1 2 3:4 /  rw - cgroup cgroup rw,memory\n"
                  "1 2 3:4 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
                  "1 2 3:4 / /empty-source rw - tmpfs  rw,size=1k\n"
                  "1 2 3:4 / /x-separator rw shared:1 -x - cgroup cgroup rw,cpu\n"
                  "1 2 3:4 / /later-fields rw - cgroup2 cgroup2 rw future\n"
                  "\n\n";
  cleanup_free char *all = mi_lines(t);
  cr_expect_str_eq(all, "/sys/fs/cgroup/pids|cgroup|rw,pids|rw|/|cgroup;"
                        "/empty-source|tmpfs|rw,size=1k|rw|/|;"
                        "/x-separator|cgroup|rw,cpu|rw|/|cgroup;"
                        "/later-fields|cgroup2|rw|rw|/|cgroup2;");
  EXPECT_FIND(t, "cgroup", "memory", "");
  EXPECT_FIND(t, "cgroup", "pids", "/sys/fs/cgroup/pids;");
}

Test(util, mountinfo_of_an_empty_text) {
  cleanup_free char *none = mi_lines("");
  cr_expect_str_eq(none, "");
  cleanup_free char *blank = mi_lines("\n\n\n");
  cr_expect_str_eq(blank, "");
  cleanup_free char *null = mi_lines(NULL);
  cr_expect_str_eq(null, "");
  cleanup_mountinfo_lines struct mountinfo_lines it = mountinfo_lines_begin(NULL);
  struct mountinfo_line m;
  cr_expect_not(mountinfo_lines_next(&it, &m));
  cr_expect_not(mountinfo_lines_next(&it, &m), "still none after the end");
}

/* the lines stay valid until the iterator is freed; the table of this
 * process reads, with its root mount among the lines */
Test(util, mountinfo_lifetime_and_this_process) {
  struct mountinfo_line got[2];
  int n = 0;
  cleanup_mountinfo_lines struct mountinfo_lines it = mountinfo_lines_begin(MI_HYBRID);
  while (n < 2 && mountinfo_lines_next(&it, &got[n])) n++;
  cr_assert_eq(n, 2);
  cr_expect_str_eq(got[0].mnt, "/");
  cr_expect_str_eq(got[1].mnt, "/proc");
  cr_expect_str_eq(got[1].fstype, "proc");

  cleanup_free char *text = NULL;
  cleanup_error berth_error_t err = NULL;
  cr_assert_eq(mountinfo_read(&text, &err), 0, "%s", err ? err->msg : "");
  bool root = false;
  cleanup_mountinfo_lines struct mountinfo_lines own = mountinfo_lines_begin(text);
  struct mountinfo_line m;
  while (mountinfo_lines_next(&own, &m)) root = root || !strcmp(m.mnt, "/");
  cr_expect(root, "no mount at / in /proc/self/mountinfo");
}

Test(util, list_has_word_matches_whole_items) {
  cr_assert(list_has_word("cpuset cpu io memory pids\n", "pids", ' '), "a file's trailing newline ends the last item");
  cr_assert(list_has_word("cpuset cpu io", "cpu", ' '));
  cr_assert(!list_has_word("cpuset io", "cpu", ' '), "cpu is not cpuset");
  cr_assert(!list_has_word("cpu,cpuacct", "cpuacc", ','));
  cr_assert(list_has_word("rw,cpu,cpuacct", "cpuacct", ','));
  cr_assert(!list_has_word("", "cpu", ','));
  cr_assert(!list_has_word(NULL, "cpu", ','));
  cr_assert(!list_has_word("cpu io", "cpu io", ' '), "a word is one item");
}
