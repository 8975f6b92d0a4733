#define _GNU_SOURCE
#include "image/digest.h"

#include <errno.h>
#include <string.h>

bool digest_valid(const char *d) {
  if (!d || strncmp(d, "sha256:", 7) != 0) return false;
  const char *h = d + 7;
  size_t n = 0;
  for (; h[n]; n++)
    if (!((h[n] >= '0' && h[n] <= '9') || (h[n] >= 'a' && h[n] <= 'f'))) return false;
  return n == 64;
}

int digest_check(const char *d, berth_error_t *err) {
  if (digest_valid(d)) return 0;
  if (d && strchr(d, ':') && strncmp(d, "sha256:", 7) != 0)
    return berth_error(err, -EINVAL, "unsupported digest algorithm in `%.80s`: berth verifies sha256 only", d);
  return berth_error(err, -EINVAL, "invalid digest `%.80s`: expected sha256: followed by 64 lowercase hex digits", d ? d : "(null)");
}

const char *digest_hex(const char *d) { return d + 7; }

/* libcrypto is loaded on first use (lazylib.c): operations that hash call
 * lazylib_require_crypto() first; without it this fails instead of exiting */
int hasher_init(struct hasher *h) {
  h->ctx = NULL;
  if (lazylib_require_crypto(NULL) < 0) return -1;
  h->ctx = EVP_MD_CTX_new();
  if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) return -1;
  return 0;
}

void hasher_update(struct hasher *h, const void *data, size_t len) { EVP_DigestUpdate(h->ctx, data, len); }

void hasher_final(struct hasher *h, char out[72]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(h->ctx, md, &n);
  strcpy(out, "sha256:");
  for (unsigned i = 0; i < n && i < 32; i++) sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

void hasher_free(struct hasher *h) {
  if (h->ctx) EVP_MD_CTX_free(h->ctx);
  h->ctx = NULL;
}

void digest_of(const void *data, size_t len, char out[72]) {
  struct hasher h;
  if (hasher_init(&h) < 0) {
    out[0] = '\0';
    return;
  }
  hasher_update(&h, data, len);
  hasher_final(&h, out);
  hasher_free(&h);
}
