/* the parsers behind berth stats and berth top: cgroup files, /proc/PID/net/dev,
 * /proc/PID/status, a container's /etc/passwd (sample texts from real hosts) */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cgroup.h"
#include "runtime/inspect.h"

Test(cgroup_parse, stat_field_matches_whole_keys_at_line_start) {
  const char *v1 = "cache 1048576\nrss 20480\ninactive_file 4096\nhierarchical_memory_limit 67108864\n"
                   "total_cache 2097152\ntotal_inactive_file 8192\n";
  cr_assert_eq(cgroup_stat_field(v1, "inactive_file"), 4096);
  cr_assert_eq(cgroup_stat_field(v1, "total_inactive_file"), 8192, "not inactive_file's value");
  cr_assert_eq(cgroup_stat_field(v1, "hierarchical_memory_limit"), 67108864);
  cr_assert_eq(cgroup_stat_field(v1, "cache"), 1048576, "not total_cache");
  cr_assert_eq(cgroup_stat_field(v1, "rs"), -1, "a prefix of a key is no key");
  cr_assert_eq(cgroup_stat_field(v1, "swap"), -1);
  const char *v2 = "usage_usec 2512345\nuser_usec 2000000\nsystem_usec 512345\nnr_periods 0\n";
  cr_assert_eq(cgroup_stat_field(v2, "usage_usec"), 2512345);
  cr_assert_eq(cgroup_stat_field("", "usage_usec"), -1);
}

Test(cgroup_parse, limits) {
  cr_assert_eq(cgroup_parse_limit("max\n"), -1, "v2: no limit");
  cr_assert_eq(cgroup_parse_limit("9223372036854771712\n"), -1, "v1: no limit");
  cr_assert_eq(cgroup_parse_limit("67108864\n"), 67108864);
  cr_assert_eq(cgroup_parse_limit("50\n"), 50);
  cr_assert_eq(cgroup_parse_limit(""), -1);
  cr_assert_eq(cgroup_parse_limit("garbage"), -1);
}

Test(cgroup_parse, v2_io_stat_sums_every_device) {
  int64_t r, w;
  cgroup_parse_io_stat("254:0 rbytes=1048576 wbytes=4096 rios=10 wios=1 dbytes=0 dios=0\n"
                       "7:3 rbytes=512 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
                       &r, &w);
  cr_assert_eq(r, 1048576 + 512);
  cr_assert_eq(w, 4096 + 8192);
  cgroup_parse_io_stat("", &r, &w);
  cr_assert(r == 0 && w == 0, "no I/O yet: an empty io.stat is zero, not unknown");
}

Test(cgroup_parse, v1_blkio_reads_and_writes_not_totals) {
  int64_t r, w;
  cgroup_parse_blkio("254:0 Read 2048\n254:0 Write 1024\n254:0 Sync 3072\n254:0 Async 0\n254:0 Discard 0\n"
                     "254:0 Total 3072\n8:0 Read 100\n8:0 Write 0\nTotal 3172\n",
                     &r, &w);
  cr_assert_eq(r, 2148);
  cr_assert_eq(w, 1024);
  cgroup_parse_blkio("Total 0\n", &r, &w);
  cr_assert(r == 0 && w == 0);
}

Test(proc_parse, net_dev_leaves_out_lo) {
  const char *t =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
      "    lo:  123456     100    0    0    0     0          0         0   123456     100    0    0    0     0       0          0\n"
      "  eth0: 9876543   12345    0    0    0     0          0         0   654321    2345    0    0    0     0       0          0\n"
      "  tap0:     100       1    0    0    0     0          0         0       50       1    0    0    0     0       0          0\n";
  int64_t rx, tx;
  cr_assert_eq(proc_net_dev_parse(t, &rx, &tx), 2);
  cr_assert_eq(rx, 9876543 + 100);
  cr_assert_eq(tx, 654321 + 50);
  /* a name glued to its first number (older kernels), no trailing newline */
  cr_assert_eq(proc_net_dev_parse("eth0:42 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0", &rx, &tx), 1);
  cr_assert(rx == 42 && tx == 7);
  /* only lo (--network none): zero, counted */
  cr_assert_eq(proc_net_dev_parse("    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n", &rx, &tx), 0);
  cr_assert(rx == 0 && tx == 0);
  /* a truncated line is left out, the next one not swallowed */
  cr_assert_eq(proc_net_dev_parse("  eth0: 1 2 3\n  eth1: 10 0 0 0 0 0 0 0 20 0 0 0 0 0 0 0\n", &rx, &tx), 1);
  cr_assert(rx == 10 && tx == 20);
}

Test(proc_parse, nspid_is_the_innermost) {
  cr_assert_eq(proc_status_nspid("Name:\tsleep\nTgid:\t4242\nNSpid:\t4242\t7\nNSpgid:\t4242\t7\n"), 7);
  cr_assert_eq(proc_status_nspid("Name:\tx\nNSpid:\t4242\t300\t1\n"), 1, "nested: the last field");
  cr_assert_eq(proc_status_nspid("Name:\tx\nNSpid:\t99\n"), 99, "the host's own namespace");
  cr_assert_eq(proc_status_nspid("Name:\tx\n"), -1);
}

Test(passwd, names_by_uid) {
  const char *t = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\n# comment\n\nnobody:x:65534:65534:n:/:/bin/false\n"
                  "dev-user.1:x:1000:1000::/home/dev:/bin/sh\n";
  char *n = passwd_name(t, 0);
  cr_assert_str_eq(n, "root");
  free(n);
  n = passwd_name(t, 65534);
  cr_assert_str_eq(n, "nobody");
  free(n);
  n = passwd_name(t, 1000);
  cr_assert_str_eq(n, "dev-user.1");
  free(n);
  cr_assert_null(passwd_name(t, 1001));
  cr_assert_null(passwd_name(t, 100), "uid 100 is not the prefix of 1000");
}

Test(passwd, hostile_entries_give_no_name) {
  /* a terminal escape in a name, a missing uid, a uid with junk after it */
  cr_assert_null(passwd_name("evil\033]0;pwned\a:x:0:0::/:/bin/sh\n", 0));
  cr_assert_null(passwd_name("a:x::0::/:/bin/sh\n", 0));
  cr_assert_null(passwd_name("b:x:0abc:0::/:/bin/sh\n", 0));
  cr_assert_null(passwd_name(":x:0:0::/:/bin/sh\n", 0), "an empty name");
  cr_assert_null(passwd_name("noColons\n", 0));
}
