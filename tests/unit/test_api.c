/* Request validation of the containers tool contract: every bad request is
 * a structured error naming the field; nothing here has side effects. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <string.h>

#include "api/api.h"
#include "runtime/cgroup.h"
#include "bundle/spec.h"

static json_t *bad(const char *req, const char *code, const char *field) {
  json_t *r = NULL, *reply = NULL;
  cr_assert_lt(api_validate(req, strlen(req), &r, &reply), 0, "`%s` must be refused", req);
  cr_assert_null(r);
  cr_assert_str_eq(json_string_value(json_object_get(reply, "code")), code, "`%s`: %s", req,
                   json_string_value(json_object_get(reply, "error")));
  if (field) cr_assert_str_eq(json_string_value(json_object_get(reply, "field")), field, "`%s`", req);
  return reply;
}

static void good(const char *req) {
  json_t *r = NULL, *reply = NULL;
  cr_assert_eq(api_validate(req, strlen(req), &r, &reply), 0, "`%s` must validate: %s", req,
               reply ? json_string_value(json_object_get(reply, "error")) : "");
  json_decref(r);
}

Test(api, valid_requests) {
  good("{\"operation\":\"list\"}");
  good(
      "{\"operation\":\"create\",\"name\":\"a-1.b_c\",\"image\":\"busybox\",\"mounts\":[{\"host\":\"/a\",\"container\":\"/b\",\"mode\":\"ro\"}],"
      "\"env\":{\"A\":\"b\"},\"env_passthrough\":[\"X\"],\"memory_limit\":\"512m\",\"cpu_limit\":1.5,\"pids_limit\":64,"
      "\"ports\":[{\"host\":8080,\"container\":80,\"protocol\":\"udp\"}],\"setup_commands\":[\"ls\"],\"persistent\":true}");
  good("{\"operation\":\"exec\",\"container\":\"c\",\"command\":\"ls\",\"timeout\":5}");
  good("{\"operation\":\"destroy_all\",\"confirm\":true,\"force\":null}");
}

Test(api, structured_errors_name_the_field) {
  json_decref(bad("", "invalid_json", NULL));
  json_decref(bad("[1]", "invalid_request", NULL));
  json_decref(bad("{}", "missing_parameter", "operation"));
  json_decref(bad("{\"operation\":1}", "invalid_type", "operation"));
  json_decref(bad("{\"operation\":\"fly\"}", "unknown_operation", "operation"));
  json_decref(bad("{\"operation\":\"list\",\"x\":1}", "unknown_parameter", "x"));
  json_decref(bad("{\"operation\":\"exec\",\"container\":\"c\"}", "missing_parameter", "command"));
  json_decref(bad("{\"operation\":\"exec\",\"container\":\"../x\",\"command\":\"ls\"}", "invalid_value", "container"));
  json_decref(bad("{\"operation\":\"exec\",\"container\":\"c\",\"command\":\"ls\",\"timeout\":0}", "invalid_value", "timeout"));
  json_decref(bad("{\"operation\":\"create\",\"memory_limit\":\"4x\"}", "invalid_value", "memory_limit"));
  json_decref(bad("{\"operation\":\"create\",\"memory_limit\":4}", "invalid_type", "memory_limit"));
  json_decref(bad("{\"operation\":\"create\",\"cpu_limit\":0}", "invalid_value", "cpu_limit"));
  json_decref(bad("{\"operation\":\"create\",\"env\":{\"A\":1}}", "invalid_type", "env"));
  json_decref(bad("{\"operation\":\"create\",\"env_passthrough\":\"some\"}", "invalid_value", "env_passthrough"));
  json_decref(bad("{\"operation\":\"create\",\"mounts\":[{\"host\":\"a\",\"container\":\"/b\"}]}", "invalid_value", "mounts"));
  json_decref(bad("{\"operation\":\"create\",\"mounts\":[{\"host\":\"/a\",\"container\":\"/b\",\"x\":1}]}", "unknown_parameter", "mounts"));
  json_decref(bad("{\"operation\":\"create\",\"ports\":[{\"host\":0,\"container\":80}]}", "invalid_value", "ports"));
  json_decref(bad("{\"operation\":\"create\",\"name\":\"a\",\"name\":\"b\"}", "invalid_json", NULL));
  json_decref(bad("{\"operation\":\"create\",\"image\":\"a\\u0000b\"}", "invalid_json", NULL));
}

Test(api, huge_strings_refused) {
  size_t n = 300000;
  char *req = malloc(n + 64);
  strcpy(req, "{\"operation\":\"create\",\"image\":\"");
  size_t l = strlen(req);
  memset(req + l, 'a', n);
  strcpy(req + l + n, "\"}");
  json_decref(bad(req, "invalid_value", "image"));
  free(req);
}

Test(api, schema_lists_every_parameter) {
  json_t *s = api_input_schema();
  json_t *props = json_object_get(s, "properties");
  const char *names[] = {
      "operation",       "container",       "command",        "timeout", "image",     "mounts",         "ports",    "env",
      "env_passthrough", "dotfiles_inline", "setup_commands", "confirm", "host_path", "container_path", "snapshot", NULL};
  for (int i = 0; names[i]; i++) cr_assert_not_null(json_object_get(props, names[i]), "schema lacks %s", names[i]);
  cr_assert(json_is_false(json_object_get(s, "additionalProperties")));
  json_decref(s);
}

Test(api, sizes) {
  int64_t b;
  berth_error_t e = NULL;
  cr_assert_eq(parse_size("4g", &b, &e), 0);
  cr_assert_eq(b, 4LL << 30);
  cr_assert_eq(parse_size("512m", &b, &e), 0);
  cr_assert_eq(b, 512LL << 20);
  cr_assert_eq(parse_size("1.5G", &b, &e), 0);
  cr_assert_eq(b, 3LL << 29);
  cr_assert_eq(parse_size("67108864b", &b, &e), 0);
  cr_assert_lt(parse_size("1k", &b, &e), 0, "below 6m");
  berth_error_clear(&e);
  cr_assert_lt(parse_size("-4g", &b, &e), 0);
  berth_error_clear(&e);
  cr_assert_lt(parse_size("4gb4", &b, &e), 0);
  berth_error_clear(&e);
}

Test(api, env_helpers) {
  json_t *env = json_pack("[s, s]", "A=1", "PATH=/bin");
  env_set(env, "A", "2");
  env_set(env, "B", "x=y");
  cr_assert_str_eq(env_get(env, "A"), "2");
  cr_assert_str_eq(env_get(env, "B"), "x=y");
  cr_assert_null(env_get(env, "PAT"));
  cr_assert_eq(json_array_size(env), 3);
  json_decref(env);
}

/* found by the fuzzer: a bad \u escape followed by bytes that are not
 * UTF-8 made jansson's error text invalid UTF-8, and the error reply NULL */
Test(api, error_text_that_is_not_utf8) {
  const char req[] = "{\"operation\":\"cre\\u000\xd0\x93\x96\x92it\"\xd4mit}";
  json_decref(bad(req, "invalid_json", NULL));
  const char req2[] = "{\"operation\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x\"}";
  json_decref(bad(req2, "unknown_operation", "operation")); /* `%.60s` cuts a character in half */
}

Test(api, egress_policies) {
  good("{\"operation\":\"create\",\"egress\":{\"allow\":[\"deb.debian.org\",\"*.pypi.org:443/tcp\",\"10.1.2.0/24:5432\","
       "\"[2001:db8::/32]:443\"],\"deny_host\":false,\"log\":true,\"profile\":false}}");
  good("{\"operation\":\"create\",\"egress\":{}}");
  good("{\"operation\":\"egress_test\",\"container\":\"c\",\"destination\":\"x.org:443\"}");
  json_t *r = bad("{\"operation\":\"create\",\"egress\":{\"allow\":[\"x.org:0\"]}}", "invalid_value", "egress");
  cr_assert(strstr(json_string_value(json_object_get(r, "error")), "x.org:0"), "the error names the entry");
  json_decref(r);
  json_decref(bad("{\"operation\":\"create\",\"egress\":{\"allow\":[\"*\"]}}", "invalid_value", "egress"));
  json_decref(bad("{\"operation\":\"create\",\"egress\":{\"allows\":[]}}", "invalid_value", "egress"));
  json_decref(bad("{\"operation\":\"create\",\"egress\":{\"log\":\"yes\"}}", "invalid_value", "egress"));
  json_decref(bad("{\"operation\":\"create\",\"egress\":[\"x.org\"]}", "invalid_type", "egress"));
  json_decref(bad("{\"operation\":\"egress_test\",\"container\":\"c\"}", "missing_parameter", "destination"));
  json_t *s = api_input_schema();
  json_t *e = json_object_get(json_object_get(s, "properties"), "egress");
  cr_assert_str_eq(json_string_value(json_object_get(e, "type")), "object");
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(e, "properties"), "allow"), "type")), "array");
  cr_assert(json_is_false(json_object_get(e, "additionalProperties")));
  cr_assert_not_null(json_object_get(json_object_get(s, "properties"), "destination"));
  json_decref(s);
}
