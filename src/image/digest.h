/* Content digests: validation and streaming SHA-256 (OpenSSL). */
#ifndef BERTH_DIGEST_H
#define BERTH_DIGEST_H
#include <openssl/evp.h>
#include "util/util.h"

/* "sha256:" + 64 lowercase hex; anything else is rejected before the string
 * touches a path or URL. */
bool digest_valid(const char *d);
int digest_check(const char *d, berth_error_t *err);
/* pointer to the hex part of a valid digest */
const char *digest_hex(const char *d);

struct hasher {
  EVP_MD_CTX *ctx;
};
int hasher_init(struct hasher *h);
void hasher_update(struct hasher *h, const void *data, size_t len);
/* writes "sha256:<hex>" into out[72] */
void hasher_final(struct hasher *h, char out[72]);
void hasher_free(struct hasher *h);
void digest_of(const void *data, size_t len, char out[72]);

#endif
