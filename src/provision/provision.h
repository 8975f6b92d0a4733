/* The provisioning pipeline of `create`: environment, git, gh, ssh,
 * dotfiles, purpose profile (packages, setup, try-repo), setup commands.
 * Each step lands in a report entry {name, status, duration_ms, detail, error}. */
#ifndef BERTH_PROVISION_H
#define BERTH_PROVISION_H
#include <jansson.h>
#include "util/util.h"

struct prov {
  json_t *req;
  json_t *profile; /* borrowed from the profile set, or NULL */
  json_t *profiles; /* owned */
  const char *purpose; /* requested purpose (or NULL) */
  const char *lang; /* try-repo: detected language profile */
  bool credentials, dotfiles;
  const char *image;
  bool mount_cwd;
  json_t *env; /* name -> value, secret values included (memory only) */
  json_t *mounts; /* request mounts + the ssh agent socket */
  json_t *report;
  char *repo_dir; /* try-repo: host-side clone in a private temp dir */
  char *repo_name;
  /* early findings, reported in order after the container exists */
  json_t *env_step, *gh_step;
  bool ssh_agent;
};

/* Before the container exists: profile, image, environment, gh token,
 * try-repo clone. On a request problem returns -1 with *error_reply set. */
int provision_prepare(struct prov *p, json_t *req, json_t **error_reply);
/* After create: the steps that need the container. *failed on the first
 * failed step (later steps still report, as skipped). */
void provision_run(struct prov *p, const char *container, bool *failed);
void provision_free(struct prov *p);
/* Whether provision_run would do anything inside the container (a purpose,
 * setup commands, a repo, credentials or dotfiles to carry in): `berth run`
 * then takes the long way (create, provision, exec). */
bool provision_needs_container(const struct prov *p);
/* a purpose, a repo, setup commands or dotfiles: the request wants a dev container */
bool provision_wants_dev(const struct prov *p);
/* told the name of each command step as it starts (progress) */
extern void (*provision_on_step)(const char *name);
/* the report of a service container: its variables, nothing else */
void provision_run_service(struct prov *p);
/* the JSON step entry */
json_t *prov_step(const char *name, const char *status, double ms, const char *detail, const char *error);

#endif
