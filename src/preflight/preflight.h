/* preflight: diagnose the host, with the exact fix for each problem. */
#ifndef BERTH_PREFLIGHT_H
#define BERTH_PREFLIGHT_H
#include <jansson.h>

/* {ready, runtime:"berth", checks:[{name, passed, required, detail, guidance}], summary} */
json_t *preflight_run(void);

#endif
