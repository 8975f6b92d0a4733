/* berth-oci's cgroups (oci_cgroup.c) on real cgroups, as root: a forked
 * child moved into the groups a config asks for, the files checked the way
 * the OCI validation suite reads them (runtime-tools cgroups_v1.go), then
 * everything removed again. The v1 tests run on v1/hybrid hosts, the v2
 * ones on pure v2 (the VM suite); each skips with the reason elsewhere. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

/* the static helpers (cgroupsPath and systemd mapping) are tested too */
#include "../../src/runtime/oci_cgroup.c"

static void need_root_v1(void) {
  if (geteuid() != 0) cr_skip_test("needs root: it creates cgroups");
  if (cgroup_is_v2()) cr_skip_test("cgroup v1/hybrid test; this host is pure cgroup v2 (see the v2 tests)");
  if (access("/sys/fs/cgroup/memory/cgroup.procs", F_OK) || access("/sys/fs/cgroup/pids/cgroup.procs", F_OK))
    cr_skip_test("no v1 memory or pids hierarchy at /sys/fs/cgroup/{memory,pids}");
}

static void need_root_v2(void) {
  if (geteuid() != 0) cr_skip_test("needs root: it creates cgroups");
  if (!cgroup_is_v2()) cr_skip_test("pure cgroup v2 test; this host has cgroup v1/hybrid (run the VM suite: make test-vm)");
}

/* our own path in a hierarchy ("" for v2), "/" rendered as "" */
static char *own(const char *ctrl) {
  char *cgs = NULL;
  cr_assert_eq(read_file("/proc/self/cgroup", 1 << 16, &cgs, NULL, NULL), 0);
  char *p = cgroup_own_path(cgs, ctrl);
  free(cgs);
  cr_assert(p, "not in a %s cgroup", ctrl);
  if (!strcmp(p, "/")) p[0] = '\0';
  return p;
}

static char *rd(const char *fmt, ...) {
  char path[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(path, sizeof path, fmt, ap);
  va_end(ap);
  char *s = NULL;
  if (read_file(path, 1 << 16, &s, NULL, NULL) < 0) return strdup("<absent>");
  size_t n = strlen(s);
  while (n && s[n - 1] == '\n') s[--n] = '\0';
  return s;
}

/* a cgroup file reads want */
#define EXPECT_FILE(want, ...)                                                    \
  do {                                                                            \
    char *got_ = rd(__VA_ARGS__);                                                 \
    cr_expect_str_eq(got_, want, "%s: `%s`, not `%s`", #__VA_ARGS__, got_, want); \
    free(got_);                                                                   \
  } while (0)

static bool exists(const char *fmt, ...) {
  char path[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(path, sizeof path, fmt, ap);
  va_end(ap);
  return access(path, F_OK) == 0;
}

/* a child that waits to be killed (and dies with us) */
static pid_t spawn(void) {
  pid_t p = fork();
  cr_assert_geq(p, 0);
  if (p == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (;;) pause();
  }
  return p;
}

static int reap(pid_t p) {
  kill(p, SIGKILL);
  int st = 0;
  waitpid(p, &st, 0);
  return st;
}

static json_t *config(const char *path, const char *resources) {
  json_t *l = json_object();
  if (path) json_object_set_new(l, "cgroupsPath", json_string(path));
  if (resources) {
    json_error_t je;
    json_t *r = json_loads(resources, 0, &je);
    cr_assert(r, "test resources: %s", je.text);
    json_object_set_new(l, "resources", r);
  }
  return l;
}

/* the line of /proc/pid/cgroup for ctrl ends with path */
static bool in_cgroup(pid_t pid, const char *ctrl, const char *path) {
  char *cgs = rd("/proc/%d/cgroup", (int)pid);
  char *p = cgroup_own_path(cgs, ctrl);
  bool ok = p && str_has_suffix(p, path);
  free(cgs), free(p);
  return ok;
}

static const char *path_of(json_t *info, const char *ctrl) {
  return json_string_value(json_object_get(json_object_get(info, "paths"), ctrl));
}

Test(oci_cgroup_paths, clean_and_systemd) {
  char *out = NULL;
  bool abs;
  berth_error_t err = NULL;
  cr_assert_eq(clean_path("a//b/./c/", &out, &abs, &err), 0);
  cr_expect_str_eq(out, "/a/b/c");
  cr_expect(!abs);
  free(out);
  cr_assert_eq(clean_path("/cgrouptest", &out, &abs, &err), 0);
  cr_expect_str_eq(out, "/cgrouptest");
  cr_expect(abs);
  free(out);
  cr_expect_eq(clean_path("a/../../b", &out, &abs, &err), -1);
  cr_expect(err && strstr(err->msg, "linux.cgroupsPath") && strstr(err->msg, ".."), "%s", err ? err->msg : "");
  berth_error_clear(&err);
  cr_expect_eq(clean_path("/", &out, &abs, &err), -1);
  berth_error_clear(&err);

  /* systemd's nesting of slices, then <prefix>-<name>.scope */
  cr_assert_eq(systemd_path("machine-test.slice:crio:abc", false, &out, &err), 0);
  cr_expect_str_eq(out, "/machine.slice/machine-test.slice/crio-abc.scope");
  free(out);
  cr_assert_eq(systemd_path(":runc:x", false, &out, &err), 0);
  cr_expect_str_eq(out, "/system.slice/runc-x.scope");
  free(out);
  cr_assert_eq(systemd_path(":runc:x", true, &out, &err), 0);
  cr_expect_str_eq(out, "/user.slice/runc-x.scope");
  free(out);
  cr_assert_eq(systemd_path("-.slice::x", false, &out, &err), 0);
  cr_expect_str_eq(out, "/x.scope");
  free(out);
  cr_expect_eq(systemd_path("just/a/path", false, &out, &err), -1);
  cr_expect(err && strstr(err->msg, "slice:prefix:name"), "%s", err ? err->msg : "");
  berth_error_clear(&err);
  cr_expect_eq(systemd_path("foo:p:n", false, &out, &err), -1);
  cr_expect(err && strstr(err->msg, ".slice"), "%s", err ? err->msg : "");
  berth_error_clear(&err);
  cr_expect_eq(systemd_path("a--b.slice:p:n", false, &out, &err), -1);
  berth_error_clear(&err);
}

/* memory, pids, cpu and cpuset through a relative cgroupsPath (below our
 * own cgroup in each hierarchy, as linux_cgroups_relative_* reads them) */
Test(oci_cgroup_v1, relative_path_memory_pids_cpu_cpuset) {
  need_root_v1();
  char rel[256], top[128];
  snprintf(top, sizeof top, "berth-unit-rel-%d", (int)getpid());
  snprintf(rel, sizeof rel, "%s/cgrouptest/container", top);
  json_t *l = config(rel, "{\"memory\": {\"limit\": 50593792, \"reservation\": 50593792, \"swap\": 50593792, \"kernel\": 50593792,"
                          " \"kernelTCP\": 50593792, \"swappiness\": 10, \"disableOOMKiller\": true},"
                          " \"pids\": {\"limit\": 1000},"
                          " \"cpu\": {\"shares\": 2048, \"quota\": 50000, \"period\": 500000, \"cpus\": \"0\", \"mems\": \"0\"}}");
  pid_t child = spawn();
  json_t *info = NULL;
  berth_error_t err = NULL;
  int r = oci_cgroup_create("ctr", l, child, false, false, &info, &err);
  if (r < 0) reap(child);
  cr_assert_eq(r, 0, "create: %s", err ? err->msg : "");
  char *om = own("memory"), *op = own("pids"), *oc = own("cpu"), *os = own("cpuset");
  char want[4096];
  snprintf(want, sizeof want, "/sys/fs/cgroup/memory%s/%s", om, rel);
  cr_expect_str_eq(path_of(info, "memory"), want);
  cr_expect_eq(json_integer_value(json_object_get(info, "version")), 1);
  cr_expect(json_is_true(json_object_get(info, "applied")));
  const char *m = path_of(info, "memory");
  char *s;
  EXPECT_FILE("50593792", "%s/memory.limit_in_bytes", m);
  EXPECT_FILE("50593792", "%s/memory.soft_limit_in_bytes", m);
  if (exists("%s/memory.memsw.limit_in_bytes", m)) EXPECT_FILE("50593792", "%s/memory.memsw.limit_in_bytes", m);
  EXPECT_FILE("50593792", "%s/memory.kmem.tcp.limit_in_bytes", m);
  EXPECT_FILE("10", "%s/memory.swappiness", m);
  s = rd("%s/memory.oom_control", m);
  cr_expect(strstr(s, "oom_kill_disable 1") != NULL, "%s", s);
  free(s);
  EXPECT_FILE("1000", "/sys/fs/cgroup/pids%s/%s/pids.max", op, rel);
  EXPECT_FILE("2048", "/sys/fs/cgroup/cpu%s/%s/cpu.shares", oc, rel);
  EXPECT_FILE("50000", "/sys/fs/cgroup/cpu%s/%s/cpu.cfs_quota_us", oc, rel);
  EXPECT_FILE("500000", "/sys/fs/cgroup/cpu%s/%s/cpu.cfs_period_us", oc, rel);
  EXPECT_FILE("0", "/sys/fs/cgroup/cpuset%s/%s/cpuset.cpus", os, rel);
  EXPECT_FILE("0", "/sys/fs/cgroup/cpuset%s/%s/cpuset.mems", os, rel);
  /* the child is in them all: what the suite checks with strings.Contains */
  const char *ctrls[] = {"memory", "pids", "cpu", "cpuset", "devices", "freezer", "blkio", "cpuacct"};
  for (size_t i = 0; i < sizeof ctrls / sizeof *ctrls; i++)
    if (path_of(info, ctrls[i])) cr_expect(in_cgroup(child, ctrls[i], rel), "child not in its %s cgroup", ctrls[i]);
  reap(child);
  oci_cgroup_destroy(info);
  cr_expect(!exists("/sys/fs/cgroup/memory%s/%s", om, top), "memory group left behind");
  cr_expect(!exists("/sys/fs/cgroup/pids%s/%s", op, top), "pids group left behind");
  cr_expect(!exists("/sys/fs/cgroup/cpuset%s/%s", os, top), "cpuset group left behind");
  if (path_of(info, "unified")) cr_expect(!exists("%s", path_of(info, "unified")), "unified group left behind");
  json_decref(info), json_decref(l);
  free(om), free(op), free(oc), free(os);
}

/* An absolute cgroupsPath is relative to each hierarchy's mount point (as
 * linux_cgroups_* read /sys/fs/cgroup/<ctrl>/cgrouptest). To stay below
 * our own cgroups here, the path begins with our memory cgroup's. */
Test(oci_cgroup_v1, absolute_path_and_devices_in_order) {
  need_root_v1();
  char *om = own("memory");
  char abs[4096];
  snprintf(abs, sizeof abs, "%s/berth-unit-abs-%d", om, (int)getpid());
  json_t *l = config(abs, "{\"devices\": [{\"allow\": false, \"access\": \"rwm\"},"
                          " {\"allow\": true, \"type\": \"c\", \"major\": 10, \"minor\": 229, \"access\": \"rwm\"},"
                          " {\"allow\": true, \"type\": \"b\", \"major\": 8, \"minor\": 20, \"access\": \"rw\"},"
                          " {\"allow\": true, \"type\": \"b\", \"major\": 10, \"minor\": 200, \"access\": \"r\"}],"
                          " \"pids\": {\"limit\": 1000}}");
  pid_t child = spawn();
  json_t *info = NULL;
  berth_error_t err = NULL;
  int r = oci_cgroup_create("abs", l, child, false, false, &info, &err);
  if (r < 0) reap(child);
  cr_assert_eq(r, 0, "create: %s", err ? err->msg : "");

  EXPECT_FILE("1000", "/sys/fs/cgroup/pids%s/pids.max", abs);
  EXPECT_FILE("c 10:229 rwm\nb 8:20 rw\nb 10:200 r", "/sys/fs/cgroup/devices%s/devices.list", abs);
  cr_expect(in_cgroup(child, "pids", abs));
  cr_expect(in_cgroup(child, "devices", abs));
  reap(child);
  oci_cgroup_destroy(info);
  cr_expect(!exists("/sys/fs/cgroup/pids%s", abs));
  cr_expect(!exists("/sys/fs/cgroup/devices%s", abs));
  /* the parents made on the way (our memory cgroup's path in the other
   * hierarchies) went too */
  size_t i;
  json_t *d;
  json_array_foreach(json_object_get(info, "created"), i, d)
      cr_expect(!exists("%s", json_string_value(d)), "%s left", json_string_value(d));
  json_decref(info), json_decref(l);
  free(om);
}

/* no cgroupsPath: berth-oci/<id> below our own cgroup; freeze and thaw;
 * the pids (a grandchild too); update */
Test(oci_cgroup_v1, default_path_freeze_pids_update) {
  need_root_v1();
  char id[64];
  snprintf(id, sizeof id, "berth-unit-def-%d", (int)getpid());
  json_t *l = config(NULL, "{\"memory\": {\"limit\": 104857600}, \"pids\": {\"limit\": 100}}");
  pid_t child = fork();
  cr_assert_geq(child, 0);
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    usleep(100 * 1000); /* moved by then */
    if (fork() == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (;;) pause();
    }
    for (;;) pause();
  }
  json_t *info = NULL;
  berth_error_t err = NULL;
  char *op = own("pids");
  char want[4096];
  /* the shared parent is removed only when this test made it (a running
   * berth-oci container elsewhere keeps it) */
  snprintf(want, sizeof want, "/sys/fs/cgroup/pids%s/berth-oci", op);
  bool parent_before = exists("%s", want);
  int r = oci_cgroup_create(id, l, child, false, false, &info, &err);
  if (r < 0) reap(child);
  cr_assert_eq(r, 0, "create: %s", err ? err->msg : "");
  snprintf(want, sizeof want, "/sys/fs/cgroup/pids%s/berth-oci/%s", op, id);
  cr_expect_str_eq(path_of(info, "pids"), want);
  usleep(300 * 1000);
  pid_t *pids = NULL;
  size_t n = 0;
  cr_expect_eq(oci_cgroup_pids(info, &pids, &n, &err), 0, "%s", err ? err->msg : "");
  cr_expect_eq(n, 2, "child and grandchild, got %zu", n);
  bool has_child = false;
  for (size_t i = 0; i < n; i++) has_child = has_child || pids[i] == child;
  cr_expect(has_child);
  free(pids);

  cr_expect(!oci_cgroup_frozen(info));
  cr_expect_eq(oci_cgroup_freeze(info, true, &err), 0, "%s", err ? err->msg : "");
  cr_expect(oci_cgroup_frozen(info));
  EXPECT_FILE("FROZEN", "%s/freezer.state", path_of(info, "freezer"));
  cr_expect_eq(oci_cgroup_freeze(info, false, &err), 0, "%s", err ? err->msg : "");
  cr_expect(!oci_cgroup_frozen(info));
  EXPECT_FILE("THAWED", "%s/freezer.state", path_of(info, "freezer"));

  json_error_t je;
  json_t *upd = json_loads(
      "{\"pids\": {\"limit\": 50}, \"memory\": {\"limit\": 209715200}, \"cpu\": {\"quota\": 20000, \"period\": 100000}}", 0, &je);
  cr_expect_eq(oci_cgroup_update(info, upd, &err), 0, "%s", err ? err->msg : "");
  EXPECT_FILE("50", "%s/pids.max", path_of(info, "pids"));
  EXPECT_FILE("209715200", "%s/memory.limit_in_bytes", path_of(info, "memory"));
  EXPECT_FILE("20000", "%s/cpu.cfs_quota_us", path_of(info, "cpu"));
  json_decref(upd);
  /* a bad update names the field and changes nothing before it */
  upd = json_loads("{\"pids\": {\"limit\": \"many\"}}", 0, &je);
  cr_expect_eq(oci_cgroup_update(info, upd, &err), -1);
  cr_expect(err && strstr(err->msg, "linux.resources.pids.limit"), "%s", err ? err->msg : "");
  berth_error_clear(&err);
  json_decref(upd);

  /* destroy kills what is left (the grandchild too) */
  oci_cgroup_destroy(info);
  int st = 0;
  cr_expect_eq(waitpid(child, &st, 0), child);
  cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the child was killed");
  cr_expect(!exists("%s", want), "group left behind");
  snprintf(want, sizeof want, "/sys/fs/cgroup/pids%s/berth-oci", op);
  if (!parent_before) cr_expect(!exists("%s", want), "berth-oci parent left behind");
  json_decref(info), json_decref(l);
  free(op);
}

/* kill_all: a signal other than SIGKILL goes to each process (the list);
 * SIGKILL through the hybrid unified cgroup.kill where present */
Test(oci_cgroup_v1, kill_all) {
  need_root_v1();
  for (int round = 0; round < 3; round++) {
    int sig = round ? SIGKILL : SIGUSR1;
    char rel[128];
    snprintf(rel, sizeof rel, "berth-unit-kill-%d-%d", (int)getpid(), round);
    json_t *l = config(rel, NULL);
    pid_t a = spawn(), b = spawn();
    json_t *info = NULL;
    berth_error_t err = NULL;
    int r = oci_cgroup_create("k", l, a, false, false, &info, &err);
    if (r == 0) { /* b joins a in every group (cgroup.c's mover takes a list) */
      json_t *all = json_pack("{s:[]}", "paths"), *v;
      const char *k;
      json_object_foreach(json_object_get(info, "paths"), k, v) json_array_append(json_object_get(all, "paths"), v);
      r = cgroup_enter(all, b, &err);
      json_decref(all);
    }
    if (r < 0) reap(a), reap(b);
    cr_assert_eq(r, 0, "create: %s", err ? err->msg : "");
    /* round 2: as on a v1 host without the unified hierarchy (freeze, kill
     * each, thaw) */
    json_t *k = json_deep_copy(info);
    if (round == 2) json_object_del(json_object_get(k, "paths"), "unified");
    cr_expect_eq(oci_cgroup_kill_all(k, sig, &err), 0, "%s", err ? err->msg : "");
    json_decref(k);
    int sa = 0, sb = 0;
    waitpid(a, &sa, 0);
    waitpid(b, &sb, 0);
    cr_expect(WIFSIGNALED(sa) && WTERMSIG(sa) == sig, "first process killed by %d", sig);
    cr_expect(WIFSIGNALED(sb) && WTERMSIG(sb) == sig, "second process killed by %d", sig);
    oci_cgroup_destroy(info);
    cr_expect(!exists("%s", path_of(info, "pids")));
    json_decref(info), json_decref(l);
  }
}

/* bad values: a clear error naming the field, and no cgroup left */
Test(oci_cgroup_v1, bad_input_leaves_nothing) {
  need_root_v1();
  static const struct {
    const char *res, *want;
  } C[] = {
      {"{\"memory\": {\"limit\": \"lots\"}}", "linux.resources.memory.limit must be an integer"},
      {"{\"cpu\": {\"shares\": -5}}", "linux.resources.cpu.shares is -5"},
      {"{\"memory\": {\"swappiness\": 200}}", "linux.resources.memory.swappiness"},
      {"{\"unified\": {\"memory.max\": \"100M\"}}", "needs cgroup v2"},
      {"{\"pids\": {\"limit\": 10}, \"cpu\": {\"cpus\": \"99999\"}}", "linux.resources.cpu.cpus"},
      {"{\"devices\": [{\"allow\": true, \"type\": \"x\"}]}", "linux.resources.devices[0].type"},
      {"{\"hugepageLimits\": [{\"pageSize\": \"3MB\", \"limit\": 1}]}", "hugepageLimits[0]"},
      {"{\"blockIO\": {\"throttleReadBpsDevice\": [{\"major\": 8, \"rate\": 1}]}}", "throttleReadBpsDevice[0] needs both major and minor"},
      {"{\"memory\": []}", "linux.resources.memory must be an object"},
  };
  char *op = own("pids"), *om = own("memory");
  for (size_t i = 0; i < sizeof C / sizeof *C; i++) {
    char rel[128];
    snprintf(rel, sizeof rel, "berth-unit-bad-%d", (int)getpid());
    json_t *l = config(rel, C[i].res);
    pid_t child = spawn();
    json_t *info = NULL;
    berth_error_t err = NULL;
    int r = oci_cgroup_create("bad", l, child, false, false, &info, &err);
    cr_expect_eq(r, -1, "case %zu accepted", i);
    cr_expect(info == NULL);
    cr_expect(err && strstr(err->msg, C[i].want), "case %zu: want `%s`, got `%s`", i, C[i].want, err ? err->msg : "(none)");
    cr_expect(!exists("/sys/fs/cgroup/pids%s/%s", op, rel), "case %zu left a pids cgroup", i);
    cr_expect(!exists("/sys/fs/cgroup/memory%s/%s", om, rel), "case %zu left a memory cgroup", i);
    berth_error_clear(&err);
    reap(child);
    json_decref(l);
    if (r == 0) oci_cgroup_destroy(info), json_decref(info);
  }
  /* a cgroupsPath with .. */
  json_t *l = config("a/../../etc", NULL);
  json_t *info = NULL;
  berth_error_t err = NULL;
  cr_expect_eq(oci_cgroup_create("bad", l, 0, false, false, &info, &err), -1);
  cr_expect(err && strstr(err->msg, "linux.cgroupsPath"), "%s", err ? err->msg : "");
  berth_error_clear(&err);
  json_decref(l);
  free(op), free(om);
}

/* blkio: throttling as the suite reads it; the weight goes to BFQ's file
 * where CFQ's blkio.weight is gone (current kernels); a field whose file
 * this kernel lacks (CFQ's leaf weight) fails clearly, leaving nothing */
Test(oci_cgroup_v1, blkio_throttle_weight_and_missing_leaf_weight) {
  need_root_v1();
  if (access("/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device", F_OK)) cr_skip_test("no v1 blkio throttling on this host");
  struct stat st;
  if (stat("/sys/dev/block/7:0", &st)) cr_skip_test("no loop0 (7:0) device to throttle");
  char rel[128];
  snprintf(rel, sizeof rel, "berth-unit-blkio-%d", (int)getpid());
  json_t *l = config(rel, "{\"blockIO\": {\"throttleReadBpsDevice\": [{\"major\": 7, \"minor\": 0, \"rate\": 102400}],"
                          " \"throttleWriteIOPSDevice\": [{\"major\": 7, \"minor\": 0, \"rate\": 300}]}}");
  pid_t child = spawn();
  json_t *info = NULL;
  berth_error_t err = NULL;
  int r = oci_cgroup_create("b", l, child, false, false, &info, &err);
  if (r < 0) reap(child);
  cr_assert_eq(r, 0, "create: %s", err ? err->msg : "");
  const char *b = path_of(info, "blkio");
  EXPECT_FILE("7:0 102400", "%s/blkio.throttle.read_bps_device", b);
  EXPECT_FILE("7:0 300", "%s/blkio.throttle.write_iops_device", b);
  bool cfq = exists("%s/blkio.weight", b), bfq = exists("%s/blkio.bfq.weight", b), leaf = exists("%s/blkio.leaf_weight", b);
  json_t *upd = json_loads("{\"blockIO\": {\"weight\": 500}}", 0, NULL);
  if (cfq || bfq) {
    cr_expect_eq(oci_cgroup_update(info, upd, &err), 0, "%s", err ? err->msg : "");
    EXPECT_FILE("500", "%s/%s", b, cfq ? "blkio.weight" : "blkio.bfq.weight");
  } else {
    cr_expect_eq(oci_cgroup_update(info, upd, &err), -1);
    cr_expect(err && strstr(err->msg, "linux.resources.blockIO.weight"), "%s", err ? err->msg : "");
  }
  berth_error_clear(&err);
  json_decref(upd);
  reap(child);
  oci_cgroup_destroy(info);
  cr_expect(!exists("%s", b));
  json_decref(info), json_decref(l);
  if (leaf) return;
  l = config(rel, "{\"blockIO\": {\"leafWeight\": 300}}");
  cr_expect_eq(oci_cgroup_create("b", l, 0, false, false, &info, &err), -1);
  cr_expect(err && strstr(err->msg, "linux.resources.blockIO.leafWeight") && strstr(err->msg, "does not exist"), "%s", err ? err->msg : "");
  cr_expect(!exists("/sys/fs/cgroup/blkio/%s", rel));
  cr_expect(!exists("/sys/fs/cgroup/pids/%s", rel));
  berth_error_clear(&err);
  json_decref(l);
}

/* rootless without write access: no cgroup and success when nothing is
 * asked; a clear error about delegation when limits are */
Test(oci_cgroup_v1, rootless_without_access) {
  need_root_v1();
  char rel[128];
  snprintf(rel, sizeof rel, "berth-unit-rootless-%d", (int)getpid());
  int pfd[2];
  cr_assert_eq(pipe(pfd), 0);
  pid_t c = fork();
  cr_assert_geq(c, 0);
  if (c == 0) {
    close(pfd[0]);
    if (setgid(65534) || setuid(65534)) _exit(99);
    char out[1024] = "";
    json_t *info = NULL;
    berth_error_t err = NULL;
    json_t *l = json_pack("{s:s, s:{s:[{s:b, s:s}]}}", "cgroupsPath", rel, "resources", "devices", "allow", 0, "access", "rwm");
    int r1 = oci_cgroup_create("r", l, getpid(), true, false, &info, &err);
    bool ok1 = r1 == 0 && json_is_false(json_object_get(info, "applied")) && json_object_size(json_object_get(info, "paths")) == 0;
    json_object_set_new(json_object_get(l, "resources"), "pids", json_pack("{s:i}", "limit", 10));
    int r2 = oci_cgroup_create("r", l, getpid(), true, false, &info, &err);
    snprintf(out, sizeof out, "%d %d %s", ok1, r2, err ? err->msg : "");
    if (write(pfd[1], out, strlen(out)) < 0) _exit(98);
    _exit(0);
  }
  close(pfd[1]);
  char buf[1024] = "";
  ssize_t n = read(pfd[0], buf, sizeof buf - 1);
  close(pfd[0]);
  int st;
  waitpid(c, &st, 0);
  cr_assert(n > 0, "child reported nothing (status %d)", st);
  cr_expect(!strncmp(buf, "1 -1 ", 5), "empty resources succeed with no cgroup, limits fail: %s", buf);
  cr_expect(strstr(buf, "delegated") != NULL, "the error says how to get a delegated cgroup: %s", buf);
  char *op = own("pids");
  cr_expect(!exists("/sys/fs/cgroup/pids%s/%s", op, rel));
  free(op);
}

/* The v2 code paths that need no controller (cgroup.freeze, cgroup.kill,
 * cgroup.procs, unified files, the devices program, removal) on the v2
 * hierarchy of a hybrid host, through an info record of version 2 */
Test(oci_cgroup_v1, v2_paths_on_the_hybrid_unified_hierarchy) {
  need_root_v1();
  if (access("/sys/fs/cgroup/unified/cgroup.procs", F_OK)) cr_skip_test("no v2 hierarchy at /sys/fs/cgroup/unified");
  char *ou = own("");
  char dir[4096];
  snprintf(dir, sizeof dir, "/sys/fs/cgroup/unified%s/berth-unit-u2-%d", ou, (int)getpid());
  cr_assert_eq(mkdir(dir, 0755), 0, "%s: %s", dir, strerror(errno));
  json_t *info = json_pack("{s:i, s:{s:s}, s:[s], s:b}", "version", 2, "paths", "unified", dir, "created", dir, "owned", 1);
  pid_t child = fork();
  cr_assert_geq(child, 0);
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (;;) pause();
  }
  berth_error_t err = NULL;
  struct cg c = {.version = 2, .paths = json_object_get(info, "paths")};
  /* a deny that only narrows an allow cannot be an allow-list: refused */
  json_t *devs = json_loads(
      "[{\"allow\": true, \"type\": \"c\", \"major\": 1, \"access\": \"rw\"}, {\"allow\": false, \"type\": \"c\", \"major\": 1, \"minor\": 3, \"access\": \"r\"}]",
      0, NULL);
  cr_expect_eq(apply_devices(&c, devs, false, &err), -1);
  cr_expect(err && strstr(err->msg, "linux.resources.devices[1]"), "%s", err ? err->msg : "");
  berth_error_clear(&err);
  json_decref(devs);
  /* deny all; /dev/null rwm, less rm, r again; mknod of any 1:x; c 1:5 allowed, then denied again */
  devs = json_loads(
      "[{\"allow\": false, \"access\": \"rwm\"}, {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 3, \"access\": \"rwm\"},"
      " {\"allow\": false, \"type\": \"c\", \"major\": 1, \"minor\": 3, \"access\": \"rm\"},"
      " {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 3, \"access\": \"r\"},"
      " {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": -1, \"access\": \"m\"},"
      " {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 5, \"access\": \"r\"},"
      " {\"allow\": false, \"type\": \"c\", \"major\": 1, \"minor\": 5, \"access\": \"rw\"}]",
      0, NULL);
  cr_expect_eq(apply_devices(&c, devs, false, &err), 0, "devices program: %s", err ? err->msg : "");
  berth_error_clear(&err);
  json_decref(devs);
  char pid[24];
  snprintf(pid, sizeof pid, "%d", (int)child);
  char procs[4200];
  snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
  cr_expect_eq(write_value(procs, pid), 0);
  /* a grandchild in there: /dev/null allowed, /dev/zero not */
  pid_t g = fork();
  if (g == 0) {
    if (write_value(procs, "0") < 0) _exit(100);
    int ok = 0, fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) ok |= 1, close(fd);
    fd = open("/dev/zero", O_RDONLY);
    if (fd < 0 && errno == EPERM) ok |= 2;
    char node[64];
    snprintf(node, sizeof node, "/tmp/berth-unit-node-%d", (int)getpid());
    if (mknod(node, S_IFCHR | 0600, makedev(1, 7)) == 0) ok |= 4, unlink(node);
    if (mknod(node, S_IFCHR | 0600, makedev(5, 0)) < 0 && errno == EPERM) ok |= 8;
    else unlink(node);
    _exit(ok);
  }
  int st = 0;
  waitpid(g, &st, 0);
  cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 15,
            "devices program: /dev/null open (1), /dev/zero refused (2), mknod 1:7 allowed (4), mknod 5:0 refused (8): status %d",
            WEXITSTATUS(st));
  json_t *upd = json_loads("{\"unified\": {\"cgroup.max.descendants\": \"5\"}}", 0, NULL);
  cr_expect_eq(oci_cgroup_update(info, upd, &err), 0, "%s", err ? err->msg : "");
  EXPECT_FILE("5", "%s/cgroup.max.descendants", dir);
  json_decref(upd);
  /* no memory controller in this hierarchy: the field is named */
  upd = json_loads("{\"memory\": {\"limit\": 104857600}}", 0, NULL);
  cr_expect_eq(oci_cgroup_update(info, upd, &err), -1);
  cr_expect(err && strstr(err->msg, "linux.resources.memory.limit") && strstr(err->msg, "memory.max"), "%s", err ? err->msg : "");
  berth_error_clear(&err);
  json_decref(upd);
  pid_t *pids = NULL;
  size_t n = 0;
  cr_expect_eq(oci_cgroup_pids(info, &pids, &n, &err), 0);
  cr_expect(n == 1 && pids[0] == child, "pids: %zu", n);
  free(pids);
  cr_expect_eq(oci_cgroup_freeze(info, true, &err), 0, "%s", err ? err->msg : "");
  cr_expect(oci_cgroup_frozen(info));
  EXPECT_FILE("1", "%s/cgroup.freeze", dir);
  cr_expect_eq(oci_cgroup_freeze(info, false, &err), 0, "%s", err ? err->msg : "");
  cr_expect(!oci_cgroup_frozen(info));
  cr_expect_eq(oci_cgroup_kill_all(info, SIGKILL, &err), 0, "%s", err ? err->msg : "");
  waitpid(child, &st, 0);
  cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  oci_cgroup_destroy(info);
  cr_expect(!exists("%s", dir), "%s left", dir);
  rmdir(dir);
  json_decref(info);
  free(ou);
}

/* ---- pure cgroup v2 (not on a hybrid host: the VM suite runs these) ---- */

Test(oci_cgroup_v2, limits_converted_freeze_kill) {
  need_root_v2();
  char abs[256];
  snprintf(abs, sizeof abs, "/berth-unit-v2-%d/ctr", (int)getpid());
  json_t *l = config(
      abs,
      "{\"memory\": {\"limit\": 104857600, \"swap\": 209715200, \"reservation\": 52428800},"
      " \"pids\": {\"limit\": 64}, \"cpu\": {\"shares\": 1024, \"quota\": 50000, \"period\": 100000},"
      " \"unified\": {\"memory.high\": \"94371840\"},"
      " \"devices\": [{\"allow\": false, \"access\": \"rwm\"}, {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 3, \"access\": \"rw\"}]}");
  pid_t child = spawn();
  json_t *info = NULL;
  berth_error_t err = NULL;
  int r = oci_cgroup_create("v2", l, child, false, false, &info, &err);
  if (r < 0) reap(child);
  cr_assert_eq(r, 0, "create: %s", err ? err->msg : "");
  const char *d = path_of(info, "unified");
  char want[512];
  snprintf(want, sizeof want, "/sys/fs/cgroup%s", abs);
  cr_expect_str_eq(d, want);
  EXPECT_FILE("104857600", "%s/memory.max", d);
  EXPECT_FILE("52428800", "%s/memory.low", d);
  EXPECT_FILE("94371840", "%s/memory.high", d);
  if (exists("%s/memory.swap.max", d)) EXPECT_FILE("104857600", "%s/memory.swap.max", d);
  EXPECT_FILE("64", "%s/pids.max", d);
  EXPECT_FILE("39", "%s/cpu.weight", d); /* 1 + (1022 * 9999) / 262142 */
  EXPECT_FILE("50000 100000", "%s/cpu.max", d);
  cr_expect(in_cgroup(child, "", abs));
  cr_expect_eq(oci_cgroup_freeze(info, true, &err), 0, "%s", err ? err->msg : "");
  cr_expect(oci_cgroup_frozen(info));
  cr_expect_eq(oci_cgroup_freeze(info, false, &err), 0, "%s", err ? err->msg : "");
  cr_expect(!oci_cgroup_frozen(info));
  cr_expect_eq(oci_cgroup_kill_all(info, SIGKILL, &err), 0, "%s", err ? err->msg : "");
  int st = 0;
  waitpid(child, &st, 0);
  cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  oci_cgroup_destroy(info);
  snprintf(want, sizeof want, "/sys/fs/cgroup/berth-unit-v2-%d", (int)getpid());
  cr_expect(!exists("%s", want), "group left behind");
  json_decref(info), json_decref(l);
}

Test(oci_cgroup_v2, bad_input_leaves_nothing) {
  need_root_v2();
  char abs[256];
  snprintf(abs, sizeof abs, "/berth-unit-v2bad-%d", (int)getpid());
  json_t *l = config(abs, "{\"cpu\": {\"realtimeRuntime\": 1000}}");
  json_t *info = NULL;
  berth_error_t err = NULL;
  cr_expect_eq(oci_cgroup_create("v2", l, 0, false, false, &info, &err), -1);
  cr_expect(err && strstr(err->msg, "realtime"), "%s", err ? err->msg : "");
  cr_expect(!exists("/sys/fs/cgroup%s", abs));
  berth_error_clear(&err);
  json_decref(l);
  l = config(abs, "{\"unified\": {\"../escape\": \"1\"}}");
  cr_expect_eq(oci_cgroup_create("v2", l, 0, false, false, &info, &err), -1);
  cr_expect(err && strstr(err->msg, "unified"), "%s", err ? err->msg : "");
  cr_expect(!exists("/sys/fs/cgroup%s", abs));
  berth_error_clear(&err);
  json_decref(l);
}

/* berth's own containers go through the same code (cgroup_create calls
 * oci_cgroup_make): berth's layout <own>/berth/NAME, groups only where
 * berth's controllers or the resources need them, the spec's resources
 * applied by the runtime's writers, the allow-list as berth applies it
 * (no wildcard without a major, never mknod). */
Test(berth_cgroup_v1, spec_resources_in_berths_layout) {
  need_root_v1();
  char name[64];
  snprintf(name, sizeof name, "unit-berth-%d", (int)getpid());
  json_t *l = config(NULL, "{\"memory\": {\"limit\": 67108864, \"swap\": 67108864}, \"pids\": {\"limit\": 40},"
                           " \"cpu\": {\"quota\": 50000, \"period\": 100000},"
                           " \"devices\": [{\"allow\": false, \"access\": \"rwm\"},"
                           " {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 3, \"access\": \"rwm\"},"
                           " {\"allow\": true, \"type\": \"c\", \"access\": \"rw\"}]}");
  json_object_set_new(l, "cgroupsPath", json_string("/not-berths")); /* berth's layout wins */
  json_t *info = NULL;
  berth_error_t err = NULL;
  cr_assert_eq(cgroup_create(name, l, &info, &err), 0, "%s", err ? err->msg : "");
  json_decref(l);
  cr_expect(json_is_true(json_object_get(info, "limits_applied")), "limits applied: %s",
            json_string_value(json_object_get(info, "note")) ?: "");
  json_t *paths = json_object_get(info, "paths");
  cr_assert(json_is_array(paths), "berth's record lists directories");
  size_t i;
  json_t *p;
  bool mem = false, pids = false, cpu = false, dev = false;
  json_array_foreach(paths, i, p) {
    const char *d = json_string_value(p);
    char want[128];
    snprintf(want, sizeof want, "/berth/%s", name);
    cr_expect(str_has_suffix(d, want), "%s is in berth's layout", d);
    cr_expect(!strstr(d, "/freezer/") && !strstr(d, "/blkio/") && !strstr(d, "/net_cls"), "%s: a group berth does not use", d);
    if (strstr(d, "/memory/")) {
      mem = true;
      EXPECT_FILE("67108864", "%s/memory.limit_in_bytes", d);
    }
    if (strstr(d, "/memory/") && exists("%s/memory.memsw.limit_in_bytes", d)) EXPECT_FILE("67108864", "%s/memory.memsw.limit_in_bytes", d);
    if (strstr(d, "/pids/")) {
      pids = true;
      EXPECT_FILE("40", "%s/pids.max", d);
    }
    if (exists("%s/cpu.cfs_quota_us", d)) {
      cpu = true;
      EXPECT_FILE("50000", "%s/cpu.cfs_quota_us", d);
    }
    if (exists("%s/devices.list", d)) {
      dev = true;
      EXPECT_FILE("c 1:3 rw", "%s/devices.list", d);
    }
  }
  cr_expect(mem && pids && cpu && dev, "memory %d, pids %d, cpu %d, devices %d groups", mem, pids, cpu, dev);
  cgroup_destroy(info);
  json_array_foreach(paths, i, p) cr_expect(!exists("%s", json_string_value(p)), "%s removed", json_string_value(p));
  json_decref(info);
}

/* lenient: a field the kernel refuses is said in the note, the create goes
 * on, and the fields after it are still applied */
Test(berth_cgroup_v1, a_refused_field_is_a_note) {
  need_root_v1();
  if (access("/sys/fs/cgroup/cpuset/cgroup.procs", F_OK)) cr_skip_test("no v1 cpuset hierarchy");
  char name[64];
  snprintf(name, sizeof name, "unit-berth-lenient-%d", (int)getpid());
  json_t *l = config(NULL, "{\"cpu\": {\"cpus\": \"4095\"}, \"pids\": {\"limit\": 30}}");
  json_t *info = NULL;
  berth_error_t err = NULL;
  cr_assert_eq(cgroup_create(name, l, &info, &err), 0, "%s", err ? err->msg : "");
  json_decref(l);
  cr_expect(json_is_false(json_object_get(info, "limits_applied")));
  const char *note = json_string_value(json_object_get(info, "note"));
  cr_assert(note, "a note");
  cr_expect(strstr(note, "linux.resources.cpu.cpus") && strstr(note, "running without"), "the note names the field: %s", note);
  size_t i;
  json_t *p;
  bool pids = false, cpuset = false;
  json_array_foreach(json_object_get(info, "paths"), i, p) {
    const char *d = json_string_value(p);
    if (strstr(d, "/pids/")) {
      pids = true;
      EXPECT_FILE("30", "%s/pids.max", d);
    }
    cpuset = cpuset || strstr(d, "/cpuset/");
  }
  cr_expect(pids, "the pids limit is applied after the refused field");
  cr_expect(cpuset, "the resources' cpuset group is made");
  cgroup_destroy(info);
  json_array_foreach(json_object_get(info, "paths"), i, p)
      cr_expect(!exists("%s", json_string_value(p)), "%s removed", json_string_value(p));
  json_decref(info);
}

/* v2 memory without swap support (no memory.swap.max): "no swap beyond
 * memory" (swap == limit, what berth writes) and unlimited swap hold as
 * they are, as runc takes them; only a swap allowance is refused. On
 * files in a plain directory: the writers do not care what holds them. */
Test(oci_cgroup_paths, v2_memory_without_swap_support) {
  char dir[] = "/tmp/berth-unit-noswap-XXXXXX";
  cr_assert(mkdtemp(dir));
  char p[128];
  snprintf(p, sizeof p, "%s/memory.max", dir);
  int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  cr_assert_geq(fd, 0);
  close(fd);
  json_t *paths = json_pack("{s:s}", "unified", dir);
  struct cg c = {.version = 2, .paths = paths};
  berth_error_t err = NULL;
  json_t *m = json_pack("{s:I, s:I}", "limit", (json_int_t)67108864, "swap", (json_int_t)67108864);
  cr_expect_eq(apply_memory(&c, m, &err), 0, "%s", err ? err->msg : "");
  EXPECT_FILE("67108864", "%s/memory.max", dir);
  cr_expect(!exists("%s/memory.swap.max", dir), "no swap file made up");
  json_decref(m);
  m = json_pack("{s:I, s:I}", "limit", (json_int_t)67108864, "swap", (json_int_t)-1);
  cr_expect_eq(apply_memory(&c, m, &err), 0, "%s", err ? err->msg : "");
  json_decref(m);
  m = json_pack("{s:I, s:I}", "limit", (json_int_t)67108864, "swap", (json_int_t)134217728);
  cr_expect_eq(apply_memory(&c, m, &err), -1);
  cr_expect(err && strstr(err->msg, "no swap accounting"), "%s", err ? err->msg : "");
  berth_error_clear(&err);
  json_decref(m);
  json_decref(paths);
  unlink(p);
  rmdir(dir);
}
