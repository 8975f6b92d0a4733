/* libFuzzer target for the request parser and validator: any byte string
 * must give either a validated request or a structured error, never a
 * crash, a leak or an action (api_validate has no side effects). */
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *req = NULL, *reply = NULL;
  int r = api_validate((const char *)data, size, &req, &reply);
  if (r == 0 && (!req || reply)) __builtin_trap();
  if (r < 0 && (!reply || !json_object_get(reply, "error") || !json_object_get(reply, "code"))) __builtin_trap();
  json_decref(req);
  json_decref(reply);
  return 0;
}
