#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <string.h>

#include "image/digest.h"

Test(digest, validation) {
  cr_assert(digest_valid("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  cr_assert_not(digest_valid("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
  cr_assert_not(digest_valid("sha256:../../../../etc/passwd"));
  cr_assert_not(digest_valid("sha256:e3b0"));
  cr_assert_not(digest_valid("sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  cr_assert_not(digest_valid(NULL));
  cr_assert_not(digest_valid("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/x"));
}

Test(digest, sha256_of_known_inputs) {
  char out[72];
  digest_of("", 0, out);
  cr_assert_str_eq(out, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  digest_of("abc", 3, out);
  cr_assert_str_eq(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(digest, streaming_equals_one_shot) {
  struct hasher h;
  cr_assert_eq(hasher_init(&h), 0);
  hasher_update(&h, "a", 1);
  hasher_update(&h, "bc", 2);
  char a[72], b[72];
  hasher_final(&h, a);
  hasher_free(&h);
  digest_of("abc", 3, b);
  cr_assert_str_eq(a, b);
}

/* libcrypto is loaded on first use (lazylib.c): base64 goes through the shims too */
Test(digest, base64_through_lazy_libcrypto) {
  cr_assert_eq(lazylib_require_crypto(NULL), 0);
  unsigned char enc[16] = {0}, dec[16] = {0};
  cr_assert_eq(EVP_EncodeBlock(enc, (const unsigned char *)"user:pw", 7), 12);
  cr_assert_str_eq((char *)enc, "dXNlcjpwdw==");
  cr_assert_eq(EVP_DecodeBlock(dec, enc, 12), 9); /* counts the padding */
  cr_assert_eq(memcmp(dec, "user:pw", 7), 0);
}
