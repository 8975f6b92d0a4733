/* Public entry points of libberth for embedding. */
#define _GNU_SOURCE
#include <string.h>

#include "api/api.h"
#include "berth.h"
#include "util/util.h"

char *berth_call(const char *request_json) {
  if (!request_json) request_json = "";
  berth_for_agents = true;
  json_t *r = api_call_text(request_json, strlen(request_json));
  char *t = json_dumps(r, JSON_COMPACT);
  json_decref(r);
  return t;
}

void berth_free(void *p) { free(p); }
