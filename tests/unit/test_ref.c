#define _GNU_SOURCE
/* Image reference normalization, as Docker does it. */
#include <criterion/criterion.h>
#include <string.h>

#include "image/ref.h"

static char *norm(const char *in) {
  struct image_ref r;
  berth_error_t err = NULL;
  if (ref_parse(in, &r, &err) < 0) {
    berth_error_free(err);
    return NULL;
  }
  char *s = ref_string(&r);
  ref_free(&r);
  return s;
}

static void expect(const char *in, const char *want) {
  char *got = norm(in);
  cr_assert_not_null(got, "`%s` should parse", in);
  cr_assert_str_eq(got, want, "`%s` -> `%s`, want `%s`", in, got, want);
  free(got);
}

static void expect_error(const char *in, const char *needle) {
  struct image_ref r;
  berth_error_t err = NULL;
  cr_assert_lt(ref_parse(in, &r, &err), 0, "`%s` should be rejected", in);
  cr_assert_not_null(err);
  cr_assert(strstr(err->msg, needle), "error for `%s` should mention `%s`: %s", in, needle, err->msg);
  berth_error_free(err);
}

Test(ref, docker_hub_short_names) {
  expect("busybox", "docker.io/library/busybox:latest");
  expect("python:3.12-slim", "docker.io/library/python:3.12-slim");
  expect("user/app", "docker.io/user/app:latest");
  expect("docker.io/busybox", "docker.io/library/busybox:latest");
  expect("index.docker.io/library/busybox:1", "docker.io/library/busybox:1");
}

Test(ref, registries_ports_and_digests) {
  expect("127.0.0.1:5000/test/busybox", "127.0.0.1:5000/test/busybox:latest");
  expect("localhost/app:v1", "localhost/app:v1");
  expect("ghcr.io/a/b/c:1.0", "ghcr.io/a/b/c:1.0");
  const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  char in[200], want[200];
  snprintf(in, sizeof in, "busybox@%s", d);
  snprintf(want, sizeof want, "docker.io/library/busybox@%s", d);
  expect(in, want);
  snprintf(in, sizeof in, "busybox:1.36@%s", d);
  snprintf(want, sizeof want, "docker.io/library/busybox:1.36@%s", d);
  expect(in, want);
}

Test(ref, registry_host_for_docker_hub) {
  struct image_ref r;
  berth_error_t err = NULL;
  cr_assert_eq(ref_parse("busybox", &r, &err), 0);
  cr_assert_str_eq(ref_registry_host(&r), "registry-1.docker.io");
  ref_free(&r);
  cr_assert_eq(ref_parse("quay.io/x/y", &r, &err), 0);
  cr_assert_str_eq(ref_registry_host(&r), "quay.io");
  ref_free(&r);
}

Test(ref, invalid_names_the_bad_part) {
  expect_error("", "empty");
  expect_error("Foo/Bar", "`Bar` must be lowercase");
  expect_error("busybox:-bad", "tag `-bad`");
  expect_error("busybox@sha256:123", "invalid digest");
  expect_error("busybox@md5:0123", "unsupported digest algorithm");
  expect_error("a//b", "may only contain");
  expect_error("busy box", "whitespace");
  expect_error("host:port/x", "not a valid host");
  expect_error("repo/", "trailing");
  expect_error("ex..ample/app", "not a valid host");
}

Test(ref, huge_input_is_refused_not_crashed) {
  char *big = malloc(5000);
  memset(big, 'a', 4999);
  big[4999] = '\0';
  expect_error(big, "longer than");
  free(big);
}
