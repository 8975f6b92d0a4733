#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/config.h"
#include "preflight/preflight.h"
#include "util/util.h"

/* each test runs in a process of its own: config_get() loads this fresh */
static char dir[64];
static void setup_dirs(void) {
  strcpy(dir, "/tmp/berth-unit-pf.XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  char p[128];
  snprintf(p, sizeof p, "%s/config.json", dir);
  FILE *f = fopen(p, "w");
  cr_assert_not_null(f);
  fputs("{}\n", f);
  fclose(f);
  setenv("BERTH_CONFIG", p, 1);
  snprintf(p, sizeof p, "%s/root", dir);
  setenv("BERTH_ROOT", p, 1);
  snprintf(p, sizeof p, "%s/run", dir);
  setenv("BERTH_RUNROOT", p, 1);
}
static void teardown_dirs(void) { rm_rf(dir, NULL); }

TestSuite(preflight, .init = setup_dirs, .fini = teardown_dirs);

static char *key_now(void) {
  berth_error_t e = NULL;
  struct berth_config *cfg = config_get(&e);
  cr_assert_not_null(cfg, "%s", e ? e->msg : "");
  return preflight_cache_key(cfg);
}

Test(preflight, key_names_what_the_verdict_rests_on) {
  cleanup_free char *k = key_now();
  cr_assert_not_null(k);
  cleanup_free char *boot = NULL;
  cr_assert_eq(read_file("/proc/sys/kernel/random/boot_id", 64, &boot, NULL, NULL), 0);
  boot[strcspn(boot, "\n")] = '\0';
  cleanup_free char *b = xasprintf("boot %s\n", boot);
  cr_assert(strstr(k, b), "%s", k);
  cr_assert(strstr(k, "\nkernel "), "%s", k);
  cr_assert(strstr(k, "\n/proc/self/exe "), "%s", k);
  cr_assert(strstr(k, "\n/etc/subuid "), "%s", k);
  cr_assert(strstr(k, "\n/etc/subgid "), "%s", k);
  cr_assert(strstr(k, "/config.json "), "the config file: %s", k);
  cleanup_free char *k2 = key_now();
  cr_assert_str_eq(k, k2, "the key is stable");
}

Test(preflight, key_changes_with_the_config_files_mtime) {
  cleanup_free char *k1 = key_now();
  cleanup_free char *p = xasprintf("%s/config.json", dir);
  struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
  cr_assert_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
  cleanup_free char *k2 = key_now();
  cr_assert_str_neq(k1, k2);
}

static ino_t ino_of(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 ? st.st_ino : 0;
}

/* needs a host where preflight passes (as the integration suites do) */
Test(preflight, ready_keeps_a_passing_verdict_and_reuses_it) {
  json_t *rep = NULL;
  cr_assert(preflight_ready(&rep), "this host is not ready: %s", rep ? json_dumps(rep, 0) : "");
  cleanup_free char *v = xasprintf("%s/run/preflight-verdict", dir);
  cleanup_free char *k = key_now();
  cleanup_free char *have = NULL;
  cr_assert_eq(read_file(v, 1 << 16, &have, NULL, NULL), 0, "a passing verdict is kept");
  cr_assert_str_eq(have, k);
  ino_t i1 = ino_of(v);
  cr_assert(preflight_ready(&rep));
  cr_assert_eq(ino_of(v), i1, "reused as it is (not written again)");
  /* a verdict kept under another key is not trusted: checks run, verdict rewritten */
  cr_assert_eq(write_file_atomic(v, "berth preflight verdict 1\nboot other\n", 38, 0600, NULL), 0);
  cr_assert(preflight_ready(&rep));
  free(have);
  have = NULL;
  cr_assert_eq(read_file(v, 1 << 16, &have, NULL, NULL), 0);
  cr_assert_str_eq(have, k);
}

Test(preflight, no_verdict_kept_when_not_ready) {
  /* a broken config makes the host not ready */
  cleanup_free char *p = xasprintf("%s/config.json", dir);
  cr_assert_eq(write_file_atomic(p, "{", 1, 0600, NULL), 0);
  json_t *rep = NULL;
  cr_assert_not(preflight_ready(&rep));
  cr_assert_not_null(rep);
  cr_assert(json_is_false(json_object_get(rep, "ready")));
  json_decref(rep);
  cleanup_free char *v = xasprintf("%s/run/preflight-verdict", dir);
  cr_assert_not(path_exists(v));
}

/* the optional gpu check: optional, and on a host without GPU nodes it
 * says so (this VM has none); in preflight's report as "gpu" */
Test(preflight, gpu_check_says_what_the_host_has) {
  bool gpu = access("/dev/nvidia0", F_OK) == 0 || access("/dev/kfd", F_OK) == 0 || access("/dev/dri", F_OK) == 0;
  json_t *c = preflight_gpu_check();
  cr_assert_not_null(c);
  cr_expect_str_eq(json_string_value(json_object_get(c, "name")), "gpu");
  cr_expect(json_is_false(json_object_get(c, "required")), "the gpu check is optional");
  const char *d = json_string_value(json_object_get(c, "detail"));
  cr_assert_not_null(d);
  if (!gpu) {
    cr_expect(json_is_false(json_object_get(c, "passed")));
    cr_expect(strstr(d, "no GPU on this host") != NULL, "%s", d);
    cr_expect(json_string_value(json_object_get(c, "guidance")) != NULL, "guidance for a person");
  }
  json_decref(c);
  json_t *r = preflight_run();
  bool found = false;
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(r, "checks"), i, x) found |= !strcmp(json_string_value(json_object_get(x, "name")), "gpu");
  cr_expect(found, "preflight's report has the gpu check");
  json_decref(r);
}
