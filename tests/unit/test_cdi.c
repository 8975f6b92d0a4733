/* The CDI spec reader: the published shapes parse, malformed specs fail
 * with the file, the line and the field; the registry's merge order and
 * conflicts; resolving requests into edits; the edits in an OCI spec. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/cdi.h"
#include "util/util.h"

#define FIX "tests/fixtures/cdi"

static json_t *load_ok(const char *name) {
  char p[256];
  snprintf(p, sizeof p, FIX "/good/%s", name);
  json_t *o = NULL;
  berth_error_t e = NULL;
  int r = cdi_spec_load(p, &o, &e);
  cr_assert_eq(r, 0, "%s: %s", p, e ? e->msg : "?");
  return o;
}

/* a value in a normalized spec by path, e.g. "devices/card0/edits/deviceNodes/0/major" */
static json_t *at(json_t *o, const char *path) {
  char *c = strdup(path), *save = NULL;
  for (char *t = strtok_r(c, "/", &save); t && o; t = strtok_r(NULL, "/", &save))
    o = json_is_array(o) ? json_array_get(o, strtoul(t, NULL, 10)) : json_object_get(o, t);
  free(c);
  return o;
}
static long long num(json_t *o, const char *path) {
  json_t *v = at(o, path);
  cr_assert(json_is_integer(v), "%s is not an integer", path);
  return json_integer_value(v);
}
static const char *str(json_t *o, const char *path) {
  json_t *v = at(o, path);
  cr_assert(json_is_string(v), "%s is not a string", path);
  return json_string_value(v);
}

Test(cdi_parse, json_spec_in_the_readme_shape) {
  json_t *s = load_ok("vendor-device.json");
  cr_expect_str_eq(str(s, "kind"), "acme.example/accel");
  cr_expect_str_eq(str(s, "vendor"), "acme.example");
  cr_expect_str_eq(str(s, "class"), "accel");
  cr_expect_str_eq(str(s, "version"), "0.6.0");
  cr_expect_eq(num(s, "devices/card0/edits/deviceNodes/0/major"), 240);
  cr_expect_eq(num(s, "devices/card0/edits/deviceNodes/0/fileMode"), 0660);
  cr_expect_str_eq(str(s, "devices/card0/edits/deviceNodes/0/hostPath"), "/opt/acme/dev/card0");
  cr_expect_eq(num(s, "devices/render0/edits/deviceNodes/0/minor"), 128);
  cr_expect_str_eq(str(s, "edits/deviceNodes/0/type"), "b");
  cr_expect_str_eq(str(s, "edits/env/1"), "ACME_VISIBLE=1");
  cr_expect_str_eq(str(s, "edits/mounts/1/type"), "tmpfs");
  cr_expect_str_eq(str(s, "edits/hooks/0/hookName"), "createContainer");
  cr_expect_eq(num(s, "edits/hooks/0/timeout"), 10);
  cr_expect_str_eq(str(s, "edits/hooks/0/env/0"), "ACME_LOG=1");
  cr_expect_str_eq(str(s, "edits/hooks/1/path"), "/usr/sbin/ldconfig");
  json_decref(s);
}

Test(cdi_parse, yaml_spec_in_the_tutorial_shape) {
  json_t *s = load_ok("sensor.yaml");
  cr_expect_str_eq(str(s, "version"), "1.1.0");
  cr_expect_str_eq(str(s, "devices/read-only/edits/deviceNodes/0/permissions"), "r");
  cr_expect_eq(num(s, "devices/read-write/edits/deviceNodes/0/fileMode"), 432);
  cr_expect_str_eq(str(s, "edits/hooks/0/hookName"), "createRuntime");
  cr_expect_str_eq(str(s, "edits/hooks/0/args/2"), "sensor");
  cr_expect_str_eq(str(s, "edits/mounts/0/options/3"), "bind");
  json_decref(s);
}

Test(cdi_parse, generated_gpu_spec_shape) {
  json_t *s = load_ok("gpu-vendor.yaml");
  cr_expect_str_eq(str(s, "kind"), "nvidia.com/gpu");
  /* `name: "0"` and `name: 1` are both names (strings), not numbers */
  cr_expect_not_null(at(s, "devices/0"));
  cr_expect_not_null(at(s, "devices/1"));
  cr_expect_not_null(at(s, "devices/all"));
  cr_expect_not_null(at(s, "devices/GPU-4b1c2a0e-1111-2222-3333-444455556666"));
  cr_expect_str_eq(str(s, "edits/hooks/0/args/4"), "/usr/lib/x86_64-linux-gnu");
  cr_expect_str_eq(str(s, "edits/mounts/1/options/4"), "noexec");
  cr_expect_eq(json_array_size(at(s, "edits/deviceNodes")), 3);
  json_decref(s);
}

Test(cdi_parse, every_field_of_1_1_and_yaml_spellings) {
  json_t *s = load_ok("everything.yaml");
  cr_expect_str_eq(str(s, "version"), "1.1.0"); /* `v1.1.0` */
  cr_expect_str_eq(str(s, "class"), "foo-bar123.B_az");
  cr_expect_str_eq(json_string_value(json_object_get(json_object_get(s, "annotations"), "example.org/owner")), "lab");
  json_t *d = json_object_get(json_object_get(s, "devices"), "dev.1:a");
  cr_assert_not_null(d);
  cr_expect_eq(num(d, "edits/deviceNodes/0/major"), 0xf0); /* 0xf0 */
  cr_expect_eq(num(d, "edits/deviceNodes/0/fileMode"), 0660); /* YAML 1.1 octal */
  cr_expect_eq(num(d, "edits/deviceNodes/0/gid"), 44);
  cr_expect_eq(num(d, "edits/additionalGids/0"), 44);
  cr_expect_str_eq(str(d, "edits/netDevices/0/name"), "foo0");
  cr_expect_str_eq(json_string_value(json_object_get(json_object_get(d, "annotations"), "example.org/slot")), "1");
  cr_expect(json_is_true(at(s, "devices/plain/edits/intelRdt/enableMonitoring")), "`yes` is true");
  cr_expect_str_eq(str(s, "devices/plain/edits/intelRdt/schemata/0"), "L2:0=f");
  cr_expect_str_eq(str(s, "edits/env/0"), "FOO=bar=baz"); /* through the alias */
  cr_expect_eq(num(s, "edits/hooks/0/timeout"), 5);
  cr_expect_str_eq(str(s, "edits/hooks/1/hookName"), "prestart");
  json_decref(s);
}

Test(cdi_parse, oldest_version) {
  json_t *s = load_ok("oldest.yaml");
  cr_expect_str_eq(str(s, "version"), "0.3.0");
  cr_expect_str_eq(str(s, "devices/myDevice/edits/env/0"), "A=1");
  json_decref(s);
}

/* each malformed spec: the error names the file, the line (0: none is
 * given, as for jansson's semantic errors) and the field */
static const struct {
  const char *file;
  int line;
  const char *want[3];
} BAD[] = {
    {"syntax.yaml", 7, {"not valid YAML", "flow sequence"}},
    {"syntax.json", 4, {"not valid JSON"}},
    {"unknown-field.yaml", 8, {"devices[0].containerEdits.deviceNodes[0].hostpath", "unknown field", "hostPath"}},
    {"kind-no-class.yaml", 2, {"kind:", "`vendor/class`"}},
    {"kind-two-slashes.json", 0, {"kind:", "one `/` only"}},
    {"device-name.yaml", 6, {"devices[1].name", "`card 1`", "letters, digits"}},
    {"duplicate-device.yaml", 6, {"devices[1].name", "listed twice"}},
    {"no-devices.yaml", 3, {"devices:", "at least one device"}},
    {"version-unknown.yaml", 1, {"cdiVersion", "`0.9.0` is not a published CDI version"}},
    {"version-too-old.yaml", 1, {"cdiVersion", "`hostPath` in deviceNodes (line 8) needs CDI 0.5.0", "0.4.0"}},
    {"annotations-too-old.yaml", 1, {"`annotations` (line 4) needs CDI 0.6.0"}},
    {"major-quoted.yaml", 9, {"deviceNodes[0].major", "the string `226`", "drop the quotes"}},
    {"minor-word.json", 0, {"deviceNodes[0].minor", "expected an integer", "`zero`"}},
    {"env.yaml", 8, {"devices[0].containerEdits.env[1]", "`=NONAME` is not NAME=VALUE"}},
    {"hook-name.yaml", 8, {"containerEdits.hooks[0].hookName", "`preStart` is not a hook"}},
    {"empty-edits.yaml", 5, {"devices[0].containerEdits", "at least one edit"}},
    {"duplicate-key.yaml", 3, {"`kind` is given twice"}},
    {"two-documents.yaml", 6, {"a second YAML document"}},
    {"empty.yaml", 0, {"the file is empty"}},
    {"permissions.json", 0, {"deviceNodes[0].permissions", "`rwx`"}},
    {"device-type.yaml", 7, {"deviceNodes[0].type", "`x` is not a device type"}},
    {"timeout.yaml", 9, {"hooks[0].timeout", "out of range"}},
    {"not-a-mapping.yaml", 1, {"a spec is a mapping", "got a list"}},
};

Test(cdi_parse, malformed_specs_name_file_line_and_field) {
  for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
    char p[256];
    snprintf(p, sizeof p, FIX "/bad/%s", BAD[i].file);
    json_t *o = NULL;
    berth_error_t e = NULL;
    int r = cdi_spec_load(p, &o, &e);
    cr_expect_lt(r, 0, "%s parsed", BAD[i].file);
    if (r >= 0) {
      json_decref(o);
      continue;
    }
    cr_expect_eq(e->status, EINVAL, "%s: status %d", BAD[i].file, e->status);
    cr_expect(strstr(e->msg, p) != NULL, "%s: the message names the file: %s", BAD[i].file, e->msg);
    char line[32];
    snprintf(line, sizeof line, ", line %d:", BAD[i].line);
    if (BAD[i].line) cr_expect(strstr(e->msg, line) != NULL, "%s: the message names line %d: %s", BAD[i].file, BAD[i].line, e->msg);
    else cr_expect(strstr(e->msg, ", line ") == NULL || strstr(BAD[i].file, ".json"), "%s: %s", BAD[i].file, e->msg);
    for (int k = 0; k < 3 && BAD[i].want[k]; k++)
      cr_expect(strstr(e->msg, BAD[i].want[k]) != NULL, "%s: `%s` not in: %s", BAD[i].file, BAD[i].want[k], e->msg);
    berth_error_free(e);
  }
}

static int parse_text(const char *name, const char *text, berth_error_t *e) {
  json_t *o = NULL;
  int r = cdi_spec_parse(name, text, strlen(text), &o, e);
  json_decref(o);
  return r;
}

Test(cdi_parse, yaml_bombs_and_bad_bytes_are_refused) {
  /* aliases that expand exponentially: refused, not expanded */
  struct buf b = {0};
  const char *head = "cdiVersion: 0.6.0\nkind: v.com/d\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  buf_append(&b, head, strlen(head));
  for (int i = 1; i < 9; i++) {
    char l[256];
    snprintf(l, sizeof l, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i - 1, i - 1, i - 1, i - 1,
             i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    buf_append(&b, l, strlen(l));
  }
  buf_append(&b, "", 1);
  berth_error_t e = NULL;
  cr_expect_lt(parse_text("bomb.yaml", b.data, &e), 0);
  cr_expect(e && strstr(e->msg, "aliases expand to more than"), "%s", e ? e->msg : "");
  berth_error_free(e);
  buf_free(&b);
  /* nesting */
  struct buf d = {0};
  buf_append(&d, "cdiVersion: 0.6.0\nx: ", 21);
  for (int i = 0; i < 100; i++) buf_append(&d, "[", 1);
  for (int i = 0; i < 100; i++) buf_append(&d, "]", 1);
  buf_append(&d, "\n", 2);
  e = NULL;
  cr_expect_lt(parse_text("deep.yaml", d.data, &e), 0);
  cr_expect(e && strstr(e->msg, "nested deeper"), "%s", e ? e->msg : "");
  berth_error_free(e);
  buf_free(&d);
  e = NULL;
  cr_expect_lt(parse_text("nul.yaml", "cdiVersion: \"0.6.0\\0\"\n", &e), 0);
  cr_expect(e && strstr(e->msg, "NUL"), "%s", e ? e->msg : "");
  berth_error_free(e);
  e = NULL;
  cr_expect_lt(parse_text("alias.yaml", "cdiVersion: *nothing\n", &e), 0);
  cr_expect(e && strstr(e->msg, "names no anchor"), "%s", e ? e->msg : "");
  berth_error_free(e);
}

Test(cdi_names, qualified_names_and_host_paths) {
  const char *ok[] = {"nvidia.com/gpu=0",
                      "nvidia.com/gpu=all",
                      "vendor.com/device=myDevice",
                      "foo.bar.baz/foo-bar123.B_az=a:b.c",
                      "nvidia.com/gpu=GPU-4b1c2a0e-1111",
                      "/dev/fuse",
                      "/dev/fuse:rw",
                      "/dev/sda:/dev/xvda:r",
                      "/dev/null:/dev/x"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    berth_error_t e = NULL;
    cr_expect_eq(cdi_request_check(ok[i], &e), 0, "%s: %s", ok[i], e ? e->msg : "");
    berth_error_free(e);
  }
  const char *bad[] = {"nvidia.com/gpu",     "gpu=0",
                       "nvidia.com/=0",      "nvidia.com/gpu/x=0",
                       "nvidia.com/gpu=",    "nvidia.com/gpu=-0",
                       "nvidia.com/gpu=a b", "1vendor.com/gpu=0",
                       "vendor.com/gpu-=0",  "dev/fuse",
                       "/dev/fuse:rwx",      "/dev/a:b:c",
                       "/dev/a:/b:/c:rw",    ""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    berth_error_t e = NULL;
    cr_expect_lt(cdi_request_check(bad[i], &e), 0, "`%s` must be refused", bad[i]);
    cr_expect(e && e->msg && *e->msg, "%s: a message", bad[i]);
    berth_error_free(e);
  }
}

Test(cdi_names, gpus_argument) {
  berth_error_t e = NULL;
  json_t *g = cdi_gpus_arg("all", &e);
  cr_expect(json_is_true(g));
  json_t *n = cdi_gpu_names(g);
  cr_expect_str_eq(json_string_value(json_array_get(n, 0)), "nvidia.com/gpu=all");
  json_decref(g), json_decref(n);
  g = cdi_gpus_arg("2", &e);
  cr_expect_eq(json_array_size(g), 2);
  n = cdi_gpu_names(g);
  cr_expect_str_eq(json_string_value(json_array_get(n, 1)), "nvidia.com/gpu=1");
  json_decref(g), json_decref(n);
  g = cdi_gpus_arg("\"device=0,GPU-abc\"", &e);
  cr_expect_eq(json_array_size(g), 2);
  n = cdi_gpu_names(g);
  cr_expect_str_eq(json_string_value(json_array_get(n, 1)), "nvidia.com/gpu=GPU-abc");
  json_decref(g), json_decref(n);
  json_t *ids = json_pack("[i, s]", 3, "MIG-1");
  n = cdi_gpu_names(ids);
  cr_expect_str_eq(json_string_value(json_array_get(n, 0)), "nvidia.com/gpu=3");
  cr_expect_str_eq(json_string_value(json_array_get(n, 1)), "nvidia.com/gpu=MIG-1");
  json_decref(ids), json_decref(n);
  const char *bad[] = {"0", "none", "device=", "device=a b", "capabilities=compute", "-1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    e = NULL;
    cr_expect_null(cdi_gpus_arg(bad[i], &e), "--gpus %s must be refused", bad[i]);
    cr_expect(e && strstr(e->msg, "--gpus"), "%s", e ? e->msg : "");
    berth_error_free(e);
  }
}

/* ---------- spec directories ---------- */
static char tmp[64];
static void mk_tmp(void) {
  strcpy(tmp, "/tmp/berth-unit-cdi.XXXXXX");
  cr_assert_not_null(mkdtemp(tmp));
  chmod(tmp, 0755);
}
static void rm_tmp(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  if (system(cmd)) {}
}
static void put(const char *rel, const char *text, mode_t mode) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", tmp, rel);
  char *slash = strrchr(p, '/');
  *slash = '\0';
  mkdir(p, 0755);
  *slash = '/';
  FILE *f = fopen(p, "w");
  cr_assert_not_null(f, "%s", p);
  fputs(text, f);
  fclose(f);
  chmod(p, mode);
}
static json_t *dirs2(void) {
  json_t *d = json_array();
  json_array_append_new(d, json_sprintf("%s/a", tmp));
  json_array_append_new(d, json_sprintf("%s/missing", tmp));
  json_array_append_new(d, json_sprintf("%s/b", tmp));
  return d;
}
#define SPEC(kind, dev, env) "cdiVersion: 0.6.0\nkind: " kind "\ndevices:\n- name: " dev "\n  containerEdits: {env: [" env "]}\n"

Test(cdi_registry, later_dirs_win_same_dir_conflicts_and_bad_specs_are_named, .init = mk_tmp, .fini = rm_tmp) {
  put("a/one.yaml", SPEC("x.com/y", "d1", "WHO=a"), 0644);
  put("b/two.yaml", SPEC("x.com/y", "d1", "WHO=b"), 0644);
  put("a/three.json",
      "{\"cdiVersion\": \"0.6.0\", \"kind\": \"x.com/y\", \"devices\": [{\"name\": \"d2\", \"containerEdits\": "
      "{\"env\": [\"C=1\"]}}]}",
      0644);
  put("a/four.yaml", SPEC("x.com/y", "d2", "C=2"), 0644);
  put("a/broken.yaml", "cdiVersion: [\n", 0644);
  put("a/notes.txt", "not a spec", 0644);
  put("a/open.yaml", SPEC("x.com/z", "d9", "Z=1"), 0666);
  json_t *dirs = dirs2();
  struct cdi_registry r;
  cr_assert_eq(cdi_registry_load(dirs, &r, NULL), 0);
  /* b/two.yaml is in a later directory: it wins */
  json_t *edits = NULL;
  berth_error_t e = NULL;
  json_t *req = json_pack("[s]", "x.com/y=d1");
  cr_assert_eq(cdi_resolve(&r, req, false, &edits, NULL, &e), 0, "%s", e ? e->msg : "");
  cr_expect_str_eq(str(edits, "env/0"), "WHO=b");
  json_decref(edits), json_decref(req);
  /* d2 in two files of one directory: neither is used, and the error names both */
  req = json_pack("[s]", "x.com/y=d2");
  cr_expect_lt(cdi_resolve(&r, req, false, &edits, NULL, &e), 0);
  cr_expect(e && strstr(e->msg, "not found") && strstr(e->msg, "defined by both") && strstr(e->msg, "three.json") &&
                strstr(e->msg, "four.yaml"),
            "%s", e ? e->msg : "");
  berth_error_free(e);
  e = NULL;
  json_decref(req);
  char *errs = json_dumps(r.errors, 0);
  cr_expect(strstr(errs, "broken.yaml") && strstr(errs, "line 2"), "the broken spec is named with its line: %s", errs);
  cr_expect(strstr(errs, "open.yaml") && strstr(errs, "writable by group or others"), "a spec others may write is refused: %s", errs);
  cr_expect(!strstr(errs, "notes.txt"), "other files are not specs: %s", errs);
  free(errs);
  /* an unknown kind names the directories */
  req = json_pack("[s]", "nvidia.com/gpu=all");
  cr_expect_lt(cdi_resolve(&r, req, false, &edits, NULL, &e), 0);
  cr_expect(e && strstr(e->msg, "no spec in") && strstr(e->msg, "names kind nvidia.com/gpu") && e->status == ENOENT, "%s", e ? e->msg : "");
  berth_error_free(e);
  json_decref(req);
  cdi_registry_free(&r);
  json_decref(dirs);
}

Test(cdi_resolve, nodes_from_the_host_conflicts_and_checks, .init = mk_tmp, .fini = rm_tmp) {
  char spec[4096];
  snprintf(
      spec, sizeof spec,
      "cdiVersion: 0.7.0\nkind: example.com/gpu\n"
      "containerEdits:\n  env: [VENDOR=1]\n  deviceNodes: [{path: /dev/gpuctl, hostPath: /dev/zero}]\n"
      "  mounts: [{hostPath: %s/a, containerPath: /opt/gpu/lib, options: [ro, nosuid, nodev, bind]}]\n"
      "  hooks: [{hookName: createContainer, path: /bin/true, args: [true, x]}]\n"
      "devices:\n"
      "- name: \"0\"\n  containerEdits: {deviceNodes: [{path: /dev/gpu0, hostPath: /dev/null, permissions: rw}], env: [GPU=0]}\n"
      "- name: \"1\"\n  containerEdits: {deviceNodes: [{path: /dev/gpu0, hostPath: /dev/full}]}\n"
      "- name: same\n  containerEdits: {deviceNodes: [{path: /dev/gpu0, hostPath: /dev/null, permissions: rw}]}\n"
      "- name: envclash\n  containerEdits: {env: [GPU=1]}\n"
      "- name: outside\n  containerEdits: {deviceNodes: [{path: /opt/gpu0, hostPath: /dev/null}]}\n"
      "- name: own\n  containerEdits: {deviceNodes: [{path: /dev/null}]}\n"
      "- name: nohook\n  containerEdits: {hooks: [{hookName: poststart, path: /nonexistent/hook}]}\n"
      "- name: ro\n  containerEdits: {deviceNodes: [{path: /dev/gpuro, hostPath: /dev/null, permissions: r}]}\n"
      "- name: rdt\n  containerEdits: {intelRdt: {closID: x}}\n"
      "- name: tmp\n  containerEdits: {mounts: [{hostPath: tmpfs, containerPath: /scratch, type: tmpfs, options: [nosuid, size=1m]}]}\n"
      "- name: overproc\n  containerEdits: {mounts: [{hostPath: /tmp, containerPath: /proc/x}]}\n"
      "- name: ghost\n  containerEdits: {deviceNodes: [{path: /dev/ghost, hostPath: /dev/nonexistent-berth}]}\n",
      tmp);
  cr_assert_eq(chdir(tmp), 0);
  mkdir("a", 0755);
  put("a/gpu.yaml", spec, 0644);
  json_t *dirs = json_pack("[s+]", tmp, "/a");
  struct cdi_registry r;
  cdi_registry_load(dirs, &r, NULL);
  cr_assert_eq(json_array_size(r.errors), 0, "%s", json_string_value(json_array_get(r.errors, 0)));
  json_t *edits = NULL, *notes = json_array();
  berth_error_t e = NULL;
  /* spec-level edits once, a device asked for twice once, the same node from two devices once */
  json_t *req = json_pack("[s, s, s, s, s]", "example.com/gpu=0", "example.com/gpu=same", "example.com/gpu=0", "/dev/full:/dev/myfull:r",
                          "example.com/gpu=tmp");
  cr_assert_eq(cdi_resolve(&r, req, false, &edits, notes, &e), 0, "%s", e ? e->msg : "");
  cr_expect_eq(json_array_size(at(edits, "env")), 2);
  cr_expect_eq(json_array_size(at(edits, "deviceNodes")), 3);
  cr_expect_str_eq(str(edits, "deviceNodes/0/path"), "/dev/gpuctl");
  cr_expect_eq(num(edits, "deviceNodes/0/major"), 1);
  cr_expect_eq(num(edits, "deviceNodes/0/minor"), 5); /* filled from /dev/zero */
  cr_expect_str_eq(str(edits, "deviceNodes/0/access"), "rw");
  cr_expect_eq(num(edits, "deviceNodes/1/minor"), 3);
  cr_expect_str_eq(str(edits, "deviceNodes/2/path"), "/dev/myfull");
  cr_expect_eq(num(edits, "deviceNodes/2/minor"), 7);
  cr_expect_str_eq(str(edits, "deviceNodes/2/access"), "r");
  cr_expect_eq(json_array_size(at(edits, "hooks")), 1);
  cr_expect_str_eq(str(edits, "mounts/0/options/0"), "bind");
  cr_expect_str_eq(str(edits, "mounts/0/options/1"), "ro");
  cr_expect_str_eq(str(edits, "mounts/0/options/2"), "nosuid");
  cr_expect_str_eq(str(edits, "mounts/1/type"), "tmpfs");

  /* into an OCI spec */
  json_t *oci = json_pack("{s:{s:[s], s:{s:i, s:i}}, s:{s:{s:[]}}, s:[{s:s, s:s}], s:{}}", "process", "env", "PATH=/bin", "user", "uid", 0,
                          "gid", 0, "linux", "resources", "devices", "mounts", "destination", "/workspace", "type", "bind", "annotations");
  cr_assert_eq(cdi_apply(oci, edits, &e), 0, "%s", e ? e->msg : "");
  cr_expect_str_eq(str(oci, "process/env/1"), "VENDOR=1");
  cr_expect_str_eq(str(oci, "linux/devices/1/path"), "/dev/gpu0");
  cr_expect_str_eq(str(oci, "linux/devices/1/type"), "c");
  cr_expect_eq(num(oci, "linux/devices/1/minor"), 3);
  cr_expect_eq(num(oci, "linux/devices/1/fileMode"), 0666);
  cr_expect(json_is_true(at(oci, "linux/resources/devices/2/allow")));
  cr_expect_str_eq(str(oci, "linux/resources/devices/2/access"), "r");
  cr_expect_str_eq(str(oci, "mounts/1/destination"), "/opt/gpu/lib");
  cr_expect_str_eq(str(oci, "mounts/2/type"), "tmpfs");
  cr_expect_str_eq(str(oci, "hooks/createContainer/0/path"), "/bin/true");
  cr_expect_str_eq(str(oci, "hooks/createContainer/0/args/1"), "x");
  cr_expect(strstr(str(oci, "annotations/berth.device_sources"), "\"/dev/gpu0\":\"/dev/null\""), "%s",
            str(oci, "annotations/berth.device_sources"));
  cr_expect(strstr(str(oci, "annotations/berth.devices"), "example.com/gpu=same"));
  json_decref(oci);
  json_decref(edits), json_decref(req);

  /* what must be refused, and how it is said */
  static const struct {
    const char *req[2];
    const char *want[2];
  } refuse[] = {
      {{"example.com/gpu=0", "example.com/gpu=1"}, {"conflicting edits: device node /dev/gpu0", "example.com/gpu=1"}},
      {{"example.com/gpu=0", "example.com/gpu=envclash"}, {"conflicting edits: GPU=0", "GPU=1"}},
      {{"example.com/gpu=outside"}, {"/opt/gpu0", "must lie under /dev"}},
      {{"example.com/gpu=own"}, {"/dev/null", "berth makes itself"}},
      {{"example.com/gpu=nohook"}, {"poststart hook `/nonexistent/hook`", "not an executable"}},
      {{"example.com/gpu=rdt"}, {"intelRdt", "does not apply"}},
      {{"example.com/gpu=overproc"}, {"/proc/x", "mount target"}},
      {{"example.com/gpu=ghost"}, {"/dev/nonexistent-berth", "driver loaded"}},
      {{"example.com/gpu=nope"}, {"not found: kind example.com/gpu has 0, 1", "ghost"}},
      {{"/dev/nonexistent-berth"}, {"device `/dev/nonexistent-berth`", "No such file"}},
      {{"/etc/passwd"}, {"not a device node", "-v"}},
      {{"/dev/null:/opt/x"}, {"/opt/x", "under /dev"}},
  };
  for (size_t i = 0; i < sizeof refuse / sizeof *refuse; i++) {
    req = json_array();
    for (int k = 0; k < 2 && refuse[i].req[k]; k++) json_array_append_new(req, json_string(refuse[i].req[k]));
    e = NULL;
    edits = NULL;
    cr_expect_lt(cdi_resolve(&r, req, false, &edits, NULL, &e), 0, "%s must be refused", refuse[i].req[0]);
    for (int k = 0; k < 2 && e; k++)
      cr_expect(strstr(e->msg, refuse[i].want[k]), "%s: `%s` not in: %s", refuse[i].req[0], refuse[i].want[k], e->msg);
    berth_error_free(e);
    json_decref(edits);
    json_decref(req);
  }
  /* a mount where the create mounts something already */
  req = json_pack("[s]", "example.com/gpu=0");
  cr_assert_eq(cdi_resolve(&r, req, false, &edits, NULL, &e), 0, "%s", e ? e->msg : "");
  json_t *oci2 = json_pack("{s:[{s:s, s:s, s:s}]}", "mounts", "destination", "/opt/gpu//lib", "type", "bind", "source", "/srv");
  e = NULL;
  cr_expect_lt(cdi_apply(oci2, edits, &e), 0);
  cr_expect(e && strstr(e->msg, "already mounts something"), "%s", e ? e->msg : "");
  berth_error_free(e);
  json_decref(oci2), json_decref(edits), json_decref(req), json_decref(notes);
  cdi_registry_free(&r);
  json_decref(dirs);
}
