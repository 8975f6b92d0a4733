/* The Container Device Interface (CDI): device specs that vendor tools
 * write under /etc/cdi and /var/run/cdi (`nvidia-ctk cdi generate`), read
 * here (JSON, or YAML through libyaml), validated as the CDI project's
 * reference implementation does, and turned into containerEdits that are
 * applied to a container's OCI spec (config.json). Host device paths
 * (`/dev/fuse[:CTR][:rwm]`) become the same kind of edits. */
#ifndef BERTH_CDI_H
#define BERTH_CDI_H
#include <jansson.h>
#include "util/util.h"

/* Every spec found in the spec dirs, by priority (a later dir wins). */
struct cdi_registry {
  json_t *dirs; /* the directories read, in order */
  json_t *specs; /* [{path, priority, version, kind, vendor, class, edits, devices: {name: {edits, annotations}}}] */
  json_t *devices; /* {"vendor/class=name": index into specs} */
  json_t *errors; /* ["FILE: why"]: specs that could not be used, devices in conflict */
};

/* config `cdi_spec_dirs`, else /etc/cdi and /var/run/cdi (new reference) */
json_t *cdi_spec_dirs(void);
/* Read every *.json and *.yaml file of dirs (NULL: cdi_spec_dirs()).
 * A spec that does not parse or validate is left out and named in
 * r->errors; so is a device two specs of one directory both define. */
int cdi_registry_load(json_t *dirs, struct cdi_registry *r, berth_error_t *err);
void cdi_registry_free(struct cdi_registry *r);

/* One spec's text (path names it in messages; a `.json` path is parsed
 * as JSON, anything else as YAML), validated: *out is the normalized
 * spec as in cdi_registry.specs. Errors name the file, the line (YAML:
 * libyaml's; JSON: jansson's, for syntax errors) and the field. */
int cdi_spec_parse(const char *path, const char *text, size_t len, json_t **out, berth_error_t *err);
int cdi_spec_load(const char *path, json_t **out, berth_error_t *err);

/* "vendor/class=name": the CDI rules for each part. Returns 0, or -1 with
 * a message in *err. */
int cdi_name_check(const char *qualified, berth_error_t *err);
/* a device request: a qualified CDI name, or a host device path
 * `/dev/x[:/dev/y][:rwm]` (syntax only) */
int cdi_request_check(const char *request, berth_error_t *err);

/* The merged containerEdits for requests (qualified names or host device
 * paths), each device once, with every device node's type, numbers and
 * mode filled from the host, every path checked for use in a container
 * (nodes under /dev, mounts absolute and not over /proc, /sys or /dev,
 * hooks absolute and present), and conflicting edits refused. rootless:
 * nodes must exist on the host (they are bound) and be open to the
 * container's processes. notes (may be NULL) gets remarks for the
 * create's result. */
int cdi_resolve(struct cdi_registry *r, json_t *requests, bool rootless, json_t **edits, json_t *notes, berth_error_t *err);
/* Apply merged edits to a container's OCI spec: process.env,
 * linux.devices, linux.resources.devices, mounts, hooks,
 * process.user.additionalGids; the host paths of device nodes go into
 * annotation berth.device_sources (rootless binds them). */
int cdi_apply(json_t *spec, json_t *edits, berth_error_t *err);

/* `--gpus` (Docker's syntax: all, N, device=ID[,ID...]) as the request's
 * `gpu`: true or an array of ids; NULL with *err when it does not parse */
json_t *cdi_gpus_arg(const char *s, berth_error_t *err);
/* the request's `gpu` (true, or ids) as NVIDIA CDI names */
json_t *cdi_gpu_names(json_t *gpu);

#endif
