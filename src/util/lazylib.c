/* libcurl, libarchive, libcrypto, libseccomp and libyaml, loaded on first use.
 *
 * Linked directly they cost every berth process their loading and
 * relocation at start-up (libcurl pulls in ~30 libraries: krb5, ldap,
 * nghttp2, ssh2...; libarchive pulls libxml2 and ICU), although only pulls,
 * loads and snapshots use them. libcrypto (SHA-256 of blobs, base64 of
 * registry and git credentials) alone is 4.7 MB and ~20,000 relocations
 * before main() in every process, for the same few operations. libseccomp
 * only builds the filter where the one compiled at build time is missing
 * (gen-seccomp itself, the fuzzer). The figures are in docs/performance.md
 * (timing notes moved from code comments). These
 * shims carry the libraries' own names and prototypes (the headers check
 * them), so call sites are unchanged; the first call dlopen()s the
 * library. lazylib_require() lets an operation fail cleanly when a library
 * is missing instead of failing in a shim. libyaml (CDI specs, only for
 * creates that ask for devices) is small, but linked it would cost every
 * berth process another library load. */
#define _GNU_SOURCE
#define CURL_DISABLE_TYPECHECK /* curl.h would turn setopt/getinfo into macros */
#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <seccomp.h>
#include <stdarg.h>
#include <yaml.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/util.h"

static void *libs[5];
/* libcrypto: the OpenSSL 3 ABI only (the shims below carry its prototypes) */
static const char *const sonames[5][3] = {{"libcurl.so.4", "libcurl-gnutls.so.4", NULL},
                                          {"libarchive.so.13", "libarchive.so", NULL},
                                          {"libcrypto.so.3", NULL, NULL},
                                          {"libseccomp.so.2", NULL, NULL},
                                          {"libyaml-0.so.2", NULL, NULL}};
static const char *const pkgs[5] = {"libcurl4", "libarchive13", "libssl3", "libseccomp2", "libyaml-0-2"};
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

enum { LIB_CURL, LIB_ARCHIVE, LIB_CRYPTO, LIB_SECCOMP, LIB_YAML };

static void *open_lib(int which) {
  pthread_mutex_lock(&mu);
  if (!libs[which])
    for (int i = 0; sonames[which][i] && !libs[which]; i++) libs[which] = dlopen(sonames[which][i], RTLD_NOW | RTLD_LOCAL);
  void *h = libs[which];
  pthread_mutex_unlock(&mu);
  return h;
}

int lazylib_require(int which, berth_error_t *err) {
  if (open_lib(which)) return 0;
  return berth_error(err, -ENOENT, "cannot load %s (%s): install it with `sudo apt-get install %s`", sonames[which][0], dlerror(),
                     pkgs[which]);
}

int lazylib_require_curl(berth_error_t *err) { return lazylib_require(LIB_CURL, err); }
int lazylib_require_archive(berth_error_t *err) { return lazylib_require(LIB_ARCHIVE, err); }
int lazylib_require_crypto(berth_error_t *err) { return lazylib_require(LIB_CRYPTO, err); }
int lazylib_require_seccomp(berth_error_t *err) { return lazylib_require(LIB_SECCOMP, err); }
int lazylib_require_yaml(berth_error_t *err) { return lazylib_require(LIB_YAML, err); }

/* Only reached when an operation skipped lazylib_require: say what is
 * missing rather than crash. */
static void *sym(int which, const char *name) {
  void *h = open_lib(which);
  void *f = h ? dlsym(h, name) : NULL;
  if (!f) {
    fprintf(stderr, "berth: error: cannot load %s from %s; install %s\n", name, sonames[which][0], pkgs[which]);
    _exit(125);
  }
  return f;
}

#define SHIM(lib, ret, name, params, args)          \
  ret name params {                                 \
    static ret(*fn_) params;                        \
    if (!fn_) fn_ = (ret(*) params)sym(lib, #name); \
    return fn_ args;                                \
  }
#define VSHIM(lib, name, params, args)               \
  void name params {                                 \
    static void(*fn_) params;                        \
    if (!fn_) fn_ = (void(*) params)sym(lib, #name); \
    fn_ args;                                        \
  }

/* ---- libcurl ---- */
SHIM(LIB_CURL, CURLcode, curl_global_init, (long flags), (flags))
SHIM(LIB_CURL, CURL *, curl_easy_init, (void), ())
SHIM(LIB_CURL, CURLcode, curl_easy_perform, (CURL * c), (c))
VSHIM(LIB_CURL, curl_easy_cleanup, (CURL * c), (c))
SHIM(LIB_CURL, const char *, curl_easy_strerror, (CURLcode c), (c))
SHIM(LIB_CURL, char *, curl_easy_escape, (CURL * c, const char *s, int n), (c, s, n))
VSHIM(LIB_CURL, curl_free, (void *p), (p))
SHIM(LIB_CURL, struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *d), (l, d))
VSHIM(LIB_CURL, curl_slist_free_all, (struct curl_slist * l), (l))
SHIM(LIB_CURL, CURLM *, curl_multi_init, (void), ())
SHIM(LIB_CURL, CURLMcode, curl_multi_add_handle, (CURLM * m, CURL *c), (m, c))
SHIM(LIB_CURL, CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL *c), (m, c))
SHIM(LIB_CURL, CURLMcode, curl_multi_perform, (CURLM * m, int *r), (m, r))
SHIM(LIB_CURL, CURLMcode, curl_multi_poll, (CURLM * m, struct curl_waitfd e[], unsigned int n, int t, int *r), (m, e, n, t, r))
SHIM(LIB_CURL, CURLMcode, curl_multi_cleanup, (CURLM * m), (m))
SHIM(LIB_CURL, CURLMsg *, curl_multi_info_read, (CURLM * m, int *q), (m, q))
SHIM(LIB_CURL, const char *, curl_multi_strerror, (CURLMcode c), (c))
SHIM(LIB_CURL, CURLU *, curl_url, (void), ())
VSHIM(LIB_CURL, curl_url_cleanup, (CURLU * u), (u))
SHIM(LIB_CURL, CURLUcode, curl_url_get, (CURLU * u, CURLUPart p, char **o, unsigned int fl), (u, p, o, fl))
SHIM(LIB_CURL, CURLUcode, curl_url_set, (CURLU * u, CURLUPart p, const char *c, unsigned int fl), (u, p, c, fl))

/* the variadic two: pass the argument on with the type curl reads for the option */
CURLcode curl_easy_setopt(CURL *c, CURLoption o, ...) {
  static CURLcode (*f)(CURL *, CURLoption, ...);
  if (!f) f = (CURLcode(*)(CURL *, CURLoption, ...))sym(LIB_CURL, "curl_easy_setopt");
  va_list ap;
  va_start(ap, o);
  CURLcode r;
  if (o < CURLOPTTYPE_OBJECTPOINT) r = f(c, o, va_arg(ap, long));
  else if (o < CURLOPTTYPE_OFF_T) r = f(c, o, va_arg(ap, void *)); /* object and function pointers */
  else if (o < CURLOPTTYPE_BLOB) r = f(c, o, va_arg(ap, curl_off_t));
  else r = f(c, o, va_arg(ap, void *));
  va_end(ap);
  return r;
}

CURLcode curl_easy_getinfo(CURL *c, CURLINFO i, ...) {
  static CURLcode (*f)(CURL *, CURLINFO, ...);
  if (!f) f = (CURLcode(*)(CURL *, CURLINFO, ...))sym(LIB_CURL, "curl_easy_getinfo");
  va_list ap;
  va_start(ap, i);
  void *p = va_arg(ap, void *);
  va_end(ap);
  return f(c, i, p);
}

/* ---- libarchive ---- */
#define A LIB_ARCHIVE
SHIM(A, struct archive *, archive_read_new, (void), ())
SHIM(A, int, archive_read_support_filter_gzip, (struct archive * a), (a))
SHIM(A, int, archive_read_support_filter_zstd, (struct archive * a), (a))
SHIM(A, int, archive_read_support_filter_none, (struct archive * a), (a))
SHIM(A, int, archive_read_support_format_tar, (struct archive * a), (a))
SHIM(A, int, archive_read_support_format_empty, (struct archive * a), (a))
SHIM(A, int, archive_read_open,
     (struct archive * a, void *d, archive_open_callback *o, archive_read_callback *r, archive_close_callback *c), (a, d, o, r, c))
SHIM(A, int, archive_read_next_header, (struct archive * a, struct archive_entry **e), (a, e))
SHIM(A, int, archive_read_data_block, (struct archive * a, const void **b, size_t *s, la_int64_t *o), (a, b, s, o))
SHIM(A, int, archive_read_free, (struct archive * a), (a))
SHIM(A, const char *, archive_error_string, (struct archive * a), (a))
SHIM(A, struct archive *, archive_write_new, (void), ())
SHIM(A, int, archive_write_add_filter_gzip, (struct archive * a), (a))
SHIM(A, int, archive_write_set_format_pax_restricted, (struct archive * a), (a))
SHIM(A, int, archive_write_set_bytes_in_last_block, (struct archive * a, int n), (a, n))
SHIM(A, int, archive_write_open,
     (struct archive * a, void *d, archive_open_callback *o, archive_write_callback *w, archive_close_callback *c), (a, d, o, w, c))
SHIM(A, int, archive_write_open_memory, (struct archive * a, void *b, size_t n, size_t *u), (a, b, n, u))
SHIM(A, int, archive_write_header, (struct archive * a, struct archive_entry *e), (a, e))
SHIM(A, la_ssize_t, archive_write_data, (struct archive * a, const void *b, size_t n), (a, b, n))
SHIM(A, int, archive_write_close, (struct archive * a), (a))
SHIM(A, int, archive_write_free, (struct archive * a), (a))
SHIM(A, struct archive_entry *, archive_entry_new, (void), ())
VSHIM(A, archive_entry_free, (struct archive_entry * e), (e))
SHIM(A, const char *, archive_entry_pathname, (struct archive_entry * e), (e))
SHIM(A, const char *, archive_entry_hardlink, (struct archive_entry * e), (e))
SHIM(A, const char *, archive_entry_symlink, (struct archive_entry * e), (e))
SHIM(A, __LA_MODE_T, archive_entry_filetype, (struct archive_entry * e), (e))
SHIM(A, __LA_MODE_T, archive_entry_perm, (struct archive_entry * e), (e))
SHIM(A, la_int64_t, archive_entry_uid, (struct archive_entry * e), (e))
SHIM(A, la_int64_t, archive_entry_gid, (struct archive_entry * e), (e))
SHIM(A, la_int64_t, archive_entry_size, (struct archive_entry * e), (e))
SHIM(A, time_t, archive_entry_mtime, (struct archive_entry * e), (e))
SHIM(A, long, archive_entry_mtime_nsec, (struct archive_entry * e), (e))
SHIM(A, time_t, archive_entry_atime, (struct archive_entry * e), (e))
SHIM(A, long, archive_entry_atime_nsec, (struct archive_entry * e), (e))
SHIM(A, int, archive_entry_atime_is_set, (struct archive_entry * e), (e))
SHIM(A, dev_t, archive_entry_rdevmajor, (struct archive_entry * e), (e))
SHIM(A, dev_t, archive_entry_rdevminor, (struct archive_entry * e), (e))
SHIM(A, int, archive_entry_xattr_reset, (struct archive_entry * e), (e))
SHIM(A, int, archive_entry_xattr_next, (struct archive_entry * e, const char **n, const void **v, size_t *s), (e, n, v, s))
VSHIM(A, archive_entry_xattr_add_entry, (struct archive_entry * e, const char *n, const void *v, size_t s), (e, n, v, s))
VSHIM(A, archive_entry_copy_stat, (struct archive_entry * e, const struct stat *s), (e, s))
VSHIM(A, archive_entry_set_pathname, (struct archive_entry * e, const char *p), (e, p))
VSHIM(A, archive_entry_set_filetype, (struct archive_entry * e, unsigned int t), (e, t))
VSHIM(A, archive_entry_set_perm, (struct archive_entry * e, __LA_MODE_T m), (e, m))
VSHIM(A, archive_entry_set_size, (struct archive_entry * e, la_int64_t s), (e, s))
VSHIM(A, archive_entry_set_mtime, (struct archive_entry * e, time_t t, long n), (e, t, n))
VSHIM(A, archive_entry_set_symlink, (struct archive_entry * e, const char *l), (e, l))
VSHIM(A, archive_entry_set_hardlink, (struct archive_entry * e, const char *l), (e, l))
VSHIM(A, archive_entry_set_rdev, (struct archive_entry * e, dev_t d), (e, d))
VSHIM(A, archive_entry_sparse_add_entry, (struct archive_entry * e, la_int64_t o, la_int64_t l), (e, o, l))

/* ---- libcrypto (src/image/digest.c, base64 in registry.c and provision.c) ---- */
#define C LIB_CRYPTO
SHIM(C, EVP_MD_CTX *, EVP_MD_CTX_new, (void), ())
VSHIM(C, EVP_MD_CTX_free, (EVP_MD_CTX * c), (c))
SHIM(C, const EVP_MD *, EVP_sha256, (void), ())
SHIM(C, int, EVP_DigestInit_ex, (EVP_MD_CTX * c, const EVP_MD *t, ENGINE *e), (c, t, e))
SHIM(C, int, EVP_DigestUpdate, (EVP_MD_CTX * c, const void *d, size_t n), (c, d, n))
SHIM(C, int, EVP_DigestFinal_ex, (EVP_MD_CTX * c, unsigned char *md, unsigned int *n), (c, md, n))
SHIM(C, int, EVP_EncodeBlock, (unsigned char *t, const unsigned char *f, int n), (t, f, n))
SHIM(C, int, EVP_DecodeBlock, (unsigned char *t, const unsigned char *f, int n), (t, f, n))

/* ---- libseccomp (src/util/security.c's run-time filter, gen-seccomp) ---- */
#define S LIB_SECCOMP
SHIM(S, scmp_filter_ctx, seccomp_init, (uint32_t a), (a))
VSHIM(S, seccomp_release, (scmp_filter_ctx c), (c))
SHIM(S, int, seccomp_syscall_resolve_name, (const char *n), (n))
SHIM(S, int, seccomp_rule_add_array, (scmp_filter_ctx c, uint32_t a, int s, unsigned int n, const struct scmp_arg_cmp *v), (c, a, s, n, v))
SHIM(S, int, seccomp_attr_set, (scmp_filter_ctx c, enum scmp_filter_attr a, uint32_t v), (c, a, v))
SHIM(S, int, seccomp_load, (const scmp_filter_ctx c), (c))
SHIM(S, int, seccomp_export_bpf, (const scmp_filter_ctx c, int fd), (c, fd))
SHIM(S, int, seccomp_arch_add, (scmp_filter_ctx c, uint32_t a), (c, a))
SHIM(S, uint32_t, seccomp_arch_resolve_name, (const char *n), (n))

/* the variadic one: gather the comparisons as libseccomp's own does */
int seccomp_rule_add(scmp_filter_ctx c, uint32_t a, int s, unsigned int n, ...) {
  struct scmp_arg_cmp v[6]; /* the most a syscall has */
  if (n > 6) return -EINVAL;
  va_list ap;
  va_start(ap, n);
  for (unsigned int i = 0; i < n; i++) v[i] = va_arg(ap, struct scmp_arg_cmp);
  va_end(ap);
  return seccomp_rule_add_array(c, a, s, n, v);
}

/* ---- libyaml (src/bundle/cdi.c) ---- */
#define Y LIB_YAML
SHIM(Y, int, yaml_parser_initialize, (yaml_parser_t * p), (p))
VSHIM(Y, yaml_parser_delete, (yaml_parser_t * p), (p))
VSHIM(Y, yaml_parser_set_input_string, (yaml_parser_t * p, const unsigned char *s, size_t n), (p, s, n))
SHIM(Y, int, yaml_parser_parse, (yaml_parser_t * p, yaml_event_t *e), (p, e))
VSHIM(Y, yaml_event_delete, (yaml_event_t * e), (e))
