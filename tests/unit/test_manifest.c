#define _GNU_SOURCE
/* Manifest classification, parsing and platform selection. */
#include <criterion/criterion.h>
#include <string.h>

#include "image/manifest.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static const char *OCI_NO_MT = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
                               "\"digest\":\"" D1 "\",\"size\":10},\"layers\":[{\"mediaType\":"
                               "\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2 "\",\"size\":20}]}";

static int classify(const char *body, const char *ct, berth_error_t *err) {
  int kind = 0;
  json_t *j = NULL;
  if (manifest_classify(body, strlen(body), ct, &kind, &j, err) < 0) return -1;
  json_decref(j);
  return kind;
}

Test(manifest, no_media_type_goes_by_content_type_then_structure) {
  berth_error_t err = NULL;
  cr_assert_eq(classify(OCI_NO_MT, MT_OCI_MANIFEST, &err), MANIFEST_IMAGE);
  cr_assert_eq(classify(OCI_NO_MT, "text/plain", &err), MANIFEST_IMAGE);
  cr_assert_eq(classify(OCI_NO_MT, NULL, &err), MANIFEST_IMAGE);
  cr_assert_eq(classify("{\"schemaVersion\":2,\"manifests\":[]}", "application/octet-stream", &err), MANIFEST_INDEX);
}

Test(manifest, body_media_type_wins_over_content_type) {
  berth_error_t err = NULL;
  const char *idx = "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_LIST "\",\"manifests\":[]}";
  cr_assert_eq(classify(idx, MT_OCI_MANIFEST, &err), MANIFEST_INDEX);
}

Test(manifest, schema1_refused_with_reason) {
  berth_error_t err = NULL;
  cr_assert_lt(classify("{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}", MT_DOCKER_V1_SIGNED, &err), 0);
  cr_assert(strstr(err->msg, "schema 1"), "%s", err->msg);
  berth_error_free(err);
}

Test(manifest, malformed_json_is_an_error) {
  const char *bad[] = {"", "{", "[]", "{\"schemaVersion\":\"2\"}", "{\"schemaVersion\":2,\"a\":1,\"a\":2}", "null"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    berth_error_t err = NULL;
    cr_assert_lt(classify(bad[i], NULL, &err), 0, "`%s` must be rejected", bad[i]);
    berth_error_free(err);
  }
}

static int parse(const char *body, berth_error_t *err) {
  json_t *j = json_loads(body, 0, NULL);
  struct manifest m;
  int r = manifest_parse(j, &m, err);
  if (r == 0) manifest_free(&m);
  json_decref(j);
  return r;
}

Test(manifest, parse_valid) {
  json_t *j = json_loads(OCI_NO_MT, 0, NULL);
  struct manifest m;
  berth_error_t err = NULL;
  cr_assert_eq(manifest_parse(j, &m, &err), 0);
  cr_assert_eq(m.n_layers, 1);
  cr_assert_str_eq(m.layers[0].digest, D2);
  cr_assert_eq(m.layers[0].size, 20);
  cr_assert_str_eq(m.config_digest, D1);
  manifest_free(&m);
  json_decref(j);
}

Test(manifest, parse_rejects_bad_descriptors) {
  berth_error_t err = NULL;
  cr_assert_lt(parse("{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:../../etc\",\"size\":1},\"layers\":[]}", &err), 0);
  cr_assert(strstr(err->msg, "invalid digest"), "%s", err->msg);
  berth_error_clear(&err);
  cr_assert_lt(parse("{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\",\"size\":-5},\"layers\":[]}", &err), 0);
  berth_error_clear(&err);
  cr_assert_lt(parse("{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\",\"size\":1},\"layers\":[{\"mediaType\":"
                     "\"application/vnd.cncf.helm.chart.content.v1.tar+gzip\",\"digest\":\"" D2 "\",\"size\":1}]}",
                     &err),
               0);
  cr_assert(strstr(err->msg, "not a container filesystem layer"), "%s", err->msg);
  berth_error_clear(&err);
  cr_assert_lt(parse("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.cncf.helm.config.v1+json\",\"digest\":\"" D1
                     "\",\"size\":1},\"layers\":[]}",
                     &err),
               0);
  cr_assert(strstr(err->msg, "artifact"), "%s", err->msg);
  berth_error_clear(&err);
}

static const char *INDEX =
    "{\"schemaVersion\":2,\"manifests\":["
    "{\"digest\":\"" D1 "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
    "{\"digest\":\"" D2 "\",\"size\":2,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
    "{\"digest\":\"" D2 "\",\"size\":3,\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}}]}";

static char *select_for(const char *plat, berth_error_t *err) {
  struct platform p;
  if (platform_parse(plat, &p, err) < 0) return NULL;
  json_t *j = json_loads(INDEX, 0, NULL);
  char *d = NULL;
  uint64_t size;
  index_select(j, &p, &d, &size, err);
  json_decref(j);
  return d;
}

Test(manifest, platform_selection) {
  berth_error_t err = NULL;
  char *d = select_for("linux/amd64", &err);
  cr_assert_str_eq(d, D1);
  free(d);
  d = select_for("linux/arm64", &err);
  cr_assert_str_eq(d, D2);
  free(d);
  d = select_for("linux/arm64/v8", &err);
  cr_assert_str_eq(d, D2);
  free(d);
  d = select_for("linux/aarch64", &err);
  cr_assert_str_eq(d, D2);
  free(d);
  cr_assert_null(select_for("linux/s390x", &err));
  cr_assert(strstr(err->msg, "linux/amd64, linux/arm64/v8"), "%s", err->msg);
  berth_error_clear(&err);
  cr_assert_null(select_for("linux", &err));
  cr_assert(strstr(err->msg, "os/arch"), "%s", err->msg);
  berth_error_clear(&err);
}
