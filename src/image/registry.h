/* OCI distribution client on libcurl: auth (bearer/basic), TLS per
 * registry, retries with backoff, resumable streaming blob reads. */
#ifndef BERTH_REGISTRY_H
#define BERTH_REGISTRY_H
#include <stdatomic.h>
#include <pthread.h>
#include "util/config.h"
#include "image/ref.h"
#include "util/util.h"

struct registry {
  char *host; /* host[:port] actually contacted */
  char *scheme; /* "https" or "http" */
  char *repo; /* repository path */
  char *cafile; /* from certs.d, or NULL */
  char *user, *pass;
  pthread_mutex_t lock; /* guards auth state shared by download threads */
  char *token;
  bool use_basic;
  char *challenge; /* last WWW-Authenticate */
  long stall_timeout, retries;
  struct berth_config *cfg;
};

/* Connect to `endpoint` (host[:port], optionally with scheme) for repository
 * `repo`: picks https, or http for loopback/insecure registries, and learns
 * the auth challenge. */
int registry_open(struct registry *r, const char *endpoint, const char *auth_domain, const char *repo, berth_error_t *err);
void registry_close(struct registry *r);

/* Fetch a manifest by tag or digest. Fills body, content type and the
 * Docker-Content-Digest header (may be NULL). */
int registry_get_manifest(struct registry *r, const char *reference, struct buf *body, char **content_type, char **header_digest,
                          berth_error_t *err);
/* Fetch a small blob entirely into memory (max bytes). Not verified here. */
int registry_get_blob(struct registry *r, const char *digest, size_t max, struct buf *out, berth_error_t *err);

/* Streaming blob read, resuming with Range after a broken transfer. */
struct blob_stream;
int blob_stream_open(struct registry *r, const char *digest, uint64_t size, _Atomic uint64_t *progress, struct blob_stream **out,
                     berth_error_t *err);
/* Returns bytes available at *data (valid until the next call), 0 at end. */
ssize_t blob_stream_read(struct blob_stream *s, const void **data, berth_error_t *err);
void blob_stream_close(struct blob_stream *s);

bool host_is_loopback(const char *hostport);

#endif
