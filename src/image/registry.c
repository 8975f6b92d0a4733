/* OCI distribution client.
 *
 * Redirects are followed by hand, not by curl, so the rule "credentials go
 * only to the registry host itself" is ours and visible: a 307 to a CDN on
 * another host or port gets a request without Authorization. */
#define _GNU_SOURCE
#include "image/registry.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <string.h>
#include <time.h>

#include "image/digest.h"

#define MANIFEST_ACCEPT                                                                           \
  "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " \
  "application/vnd.docker.distribution.manifest.list.v2+json, "                                   \
  "application/vnd.docker.distribution.manifest.v2+json, "                                        \
  "application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5, application/json;q=0.1"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

bool host_is_loopback(const char *hostport) {
  char host[256];
  const char *h = hostport;
  if (str_has_prefix(h, "https://")) h += 8;
  else if (str_has_prefix(h, "http://")) h += 7;
  if (*h == '[') {
    const char *e = strchr(h, ']');
    if (!e || (size_t)(e - h - 1) >= sizeof host) return false;
    memcpy(host, h + 1, e - h - 1);
    host[e - h - 1] = '\0';
  } else {
    size_t n = strcspn(h, ":/");
    if (n >= sizeof host) return false;
    memcpy(host, h, n);
    host[n] = '\0';
  }
  if (!strcmp(host, "localhost") || !strcmp(host, "::1")) return true;
  struct in_addr a;
  return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* ---------- response bookkeeping ---------- */
struct resp {
  long status;
  char *content_type, *docker_digest, *www_auth, *location, *content_range;
  long retry_after;
  CURLcode curl_code;
  double last_data; /* stall watch */
  curl_off_t last_now;
  long stall_limit;
  bool stalled;
  struct buf body;
  size_t max;
  bool too_big;
};

static void resp_reset(struct resp *rs) {
  free(rs->content_type);
  free(rs->docker_digest);
  free(rs->www_auth);
  free(rs->location);
  free(rs->content_range);
  buf_free(&rs->body);
  size_t max = rs->max;
  memset(rs, 0, sizeof *rs);
  rs->max = max;
}

static char *header_value(const char *line, size_t n, const char *name) {
  size_t nl = strlen(name);
  if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':') return NULL;
  const char *v = line + nl + 1;
  const char *end = line + n;
  while (v < end && isspace((unsigned char)*v)) v++;
  while (end > v && isspace((unsigned char)end[-1])) end--;
  return strndup(v, end - v);
}

static size_t on_header(char *line, size_t size, size_t n, void *ud) {
  struct resp *rs = ud;
  size_t len = size * n;
  char *v;
  if (len >= 5 && !strncmp(line, "HTTP/", 5)) {
    /* a new response (e.g. after 100-continue): forget earlier headers */
    free(rs->www_auth);
    rs->www_auth = NULL;
    return len;
  }
  if ((v = header_value(line, len, "Content-Type"))) free(rs->content_type), rs->content_type = v;
  else if ((v = header_value(line, len, "Docker-Content-Digest"))) free(rs->docker_digest), rs->docker_digest = v;
  else if ((v = header_value(line, len, "WWW-Authenticate"))) {
    /* prefer a Bearer challenge when several are offered */
    if (!rs->www_auth || !strncasecmp(v, "Bearer", 6)) free(rs->www_auth), rs->www_auth = v;
    else free(v);
  } else if ((v = header_value(line, len, "Location"))) free(rs->location), rs->location = v;
  else if ((v = header_value(line, len, "Content-Range"))) free(rs->content_range), rs->content_range = v;
  else if ((v = header_value(line, len, "Retry-After"))) {
    rs->retry_after = strtol(v, NULL, 10);
    free(v);
  }
  return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  struct resp *rs = ud;
  size_t len = size * n;
  if (rs->body.len + len > rs->max) {
    rs->too_big = true;
    return 0; /* abort transfer */
  }
  if (buf_append(&rs->body, data, len) < 0) return 0;
  return len;
}

/* ---------- auth ---------- */
static char *b64decode(const char *in) {
  size_t n = strlen(in);
  unsigned char *out = malloc(n + 1);
  if (!out) return NULL;
  int m = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
  if (m < 0) {
    free(out);
    return NULL;
  }
  while (n > 0 && in[n - 1] == '=') n--, m--; /* DecodeBlock counts padding */
  out[m < 0 ? 0 : m] = '\0';
  return (char *)out;
}

static bool auth_from_entry(json_t *e, char **user, char **pass) {
  const char *a = json_string_value(json_object_get(e, "auth"));
  if (a && *a) {
    char *dec = b64decode(a);
    char *colon = dec ? strchr(dec, ':') : NULL;
    if (!colon) {
      free(dec);
      return false;
    }
    *colon = '\0';
    *user = strdup(dec);
    *pass = strdup(colon + 1);
    free(dec);
    return true;
  }
  const char *u = json_string_value(json_object_get(e, "username"));
  const char *p = json_string_value(json_object_get(e, "password"));
  if (u && p) {
    *user = strdup(u);
    *pass = strdup(p);
    return true;
  }
  return false;
}

/* Credentials in the ecosystem's files, first match wins. Keys may be
 * "host", "host/repo" (containers-auth.json, most specific first) or
 * Docker's "https://index.docker.io/v1/" for docker.io. */
static void lookup_credentials(struct registry *r, const char *domain) {
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  const char *env = getenv("REGISTRY_AUTH_FILE");
  cleanup_free char *f1 = xdg && *xdg ? xasprintf("%s/containers/auth.json", xdg) : NULL;
  cleanup_free char *f2 = xasprintf("%s/.config/containers/auth.json", r->cfg->home);
  cleanup_free char *f3 = xasprintf("%s/.docker/config.json", r->cfg->home);
  const char *files[] = {env && *env ? env : NULL, f1, f2, f3};
  for (size_t i = 0; i < 4; i++) {
    if (!files[i]) continue;
    json_t *j = json_load_file(files[i], 0, NULL);
    json_t *auths = json_object_get(j, "auths");
    if (!json_is_object(auths)) {
      json_decref(j);
      continue;
    }
    /* candidate keys, most specific first */
    char *keys[8] = {0};
    int nk = 0;
    cleanup_free char *full = xasprintf("%s/%s", domain, r->repo);
    for (char *p = full; p && *p;) {
      keys[nk++] = strdup(p == full ? full : full);
      char *slash = strrchr(full, '/');
      if (!slash || nk >= 4) break;
      *slash = '\0';
    }
    if (!strcmp(domain, "docker.io")) {
      keys[nk++] = strdup("https://index.docker.io/v1/");
      keys[nk++] = strdup("index.docker.io");
      keys[nk++] = strdup("registry-1.docker.io");
    } else {
      keys[nk++] = xasprintf("https://%s", domain);
    }
    bool found = false;
    for (int k = 0; k < nk && !found; k++)
      if (keys[k]) found = auth_from_entry(json_object_get(auths, keys[k]), &r->user, &r->pass);
    for (int k = 0; k < nk; k++) free(keys[k]);
    json_decref(j);
    if (found) {
      berth_debug("credentials for %s from %s", domain, files[i]);
      return;
    }
  }
}

static void lookup_ca(struct registry *r) {
  json_t *extra = config_array(r->cfg, "certs_dirs");
  cleanup_free char *user = xasprintf("%s/.config/containers/certs.d", r->cfg->home);
  const char *defaults[] = {"/etc/containers/certs.d", "/etc/docker/certs.d", user};
  size_t n_extra = json_array_size(extra);
  for (size_t i = 0; i < n_extra + 3; i++) {
    const char *dir = i < n_extra ? json_string_value(json_array_get(extra, i)) : defaults[i - n_extra];
    if (!dir) continue;
    cleanup_free char *d = xasprintf("%s/%s", dir, r->host);
    cleanup_free char *ca = xasprintf("%s/ca.crt", d);
    if (path_exists(ca)) {
      r->cafile = strdup(ca);
      return;
    }
    DIR *dd = opendir(d);
    if (!dd) continue;
    struct dirent *de;
    while ((de = readdir(dd)))
      if (str_has_suffix(de->d_name, ".crt")) {
        r->cafile = xasprintf("%s/%s", d, de->d_name);
        break;
      }
    closedir(dd);
    if (r->cafile) return;
  }
}

/* Parse `Bearer realm="x",service="y",scope="z"` into a lookup. */
static char *challenge_param(const char *ch, const char *key) {
  const char *p = strchr(ch, ' ');
  if (!p) return NULL;
  size_t kl = strlen(key);
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    const char *eq = strchr(p, '=');
    if (!eq) return NULL;
    bool match = (size_t)(eq - p) == kl && !strncasecmp(p, key, kl);
    const char *v = eq + 1;
    struct buf val = {0};
    if (*v == '"') {
      v++;
      while (*v && *v != '"') {
        if (*v == '\\' && v[1]) v++;
        buf_append(&val, v, 1);
        v++;
      }
      if (*v == '"') v++;
    } else {
      const char *e = v + strcspn(v, ",");
      buf_append(&val, v, e - v);
      v = e;
    }
    if (match) return val.data ? val.data : strdup("");
    buf_free(&val);
    p = v;
  }
  return NULL;
}

static void apply_tls(struct registry *r, CURL *c) {
  if (r->cafile) {
    curl_easy_setopt(c, CURLOPT_CAINFO, r->cafile);
    curl_easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs"); /* system CAs as well */
  }
}

/* A transfer that receives nothing for stall_timeout seconds is aborted
 * (curl's low-speed check averages and reacts several seconds late). */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  (void)dltotal, (void)ultotal, (void)ulnow;
  struct resp *rs = ud;
  double now = now_seconds();
  if (rs->last_data == 0 || dlnow != rs->last_now) {
    rs->last_data = now;
    rs->last_now = dlnow;
    return 0;
  }
  if (now - rs->last_data > (double)rs->stall_limit) {
    rs->stalled = true;
    return 1;
  }
  return 0;
}

static void setup_common(struct registry *r, CURL *c, struct resp *rs) {
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, r->stall_timeout < 30 ? r->stall_timeout : 30L);
  rs->stall_limit = r->stall_timeout;
  rs->last_data = 0;
  rs->stalled = false;
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, rs);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "identity");
  apply_tls(r, c);
}

/* host:port of a URL, for the same-origin check on credentials */
static char *url_origin(const char *url) {
  CURLU *u = curl_url();
  char *host = NULL, *port = NULL, *scheme = NULL, *out = NULL;
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK && curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK && curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
    out = xasprintf("%s://%s:%s", scheme, host, port);
  curl_free(host);
  curl_free(port);
  curl_free(scheme);
  curl_url_cleanup(u);
  return out;
}

static bool same_origin(struct registry *r, const char *url) {
  cleanup_free char *base = xasprintf("%s://%s/", r->scheme, r->host);
  cleanup_free char *a = url_origin(base);
  cleanup_free char *b = url_origin(url);
  return a && b && !strcmp(a, b);
}

static struct curl_slist *auth_headers(struct registry *r, const char *url, struct curl_slist *h) {
  if (!same_origin(r, url)) return h; /* never forward credentials to another host */
  pthread_mutex_lock(&r->lock);
  char *line = NULL;
  if (r->token) line = xasprintf("Authorization: Bearer %s", r->token);
  else if (r->use_basic && r->user) {
    cleanup_free char *up = xasprintf("%s:%s", r->user, r->pass);
    size_t n = strlen(up);
    char *b = malloc(4 * ((n + 2) / 3) + 1);
    if (b) {
      EVP_EncodeBlock((unsigned char *)b, (unsigned char *)up, (int)n);
      line = xasprintf("Authorization: Basic %s", b);
      free(b);
    }
  }
  pthread_mutex_unlock(&r->lock);
  if (line) {
    h = curl_slist_append(h, line);
    explicit_bzero(line, strlen(line));
    free(line);
  }
  return h;
}

static bool creds_may_travel(const char *url) { return str_has_prefix(url, "https://") || host_is_loopback(url); }

/* Answer a 401 challenge: get a bearer token or switch to basic auth. */
static int authenticate(struct registry *r, const char *challenge, berth_error_t *err) {
  if (!challenge) return berth_error(err, -EACCES, "registry %s answered 401 without a WWW-Authenticate challenge", r->host);
  if (!strncasecmp(challenge, "Basic", 5)) {
    if (!r->user)
      return berth_error(err, -EACCES,
                         "registry %s requires a login: add credentials for it to $REGISTRY_AUTH_FILE, "
                         "~/.config/containers/auth.json or ~/.docker/config.json",
                         r->host);
    pthread_mutex_lock(&r->lock);
    bool already = r->use_basic;
    r->use_basic = true;
    pthread_mutex_unlock(&r->lock);
    if (already) return berth_error(err, -EACCES, "registry %s rejected the credentials for user `%s`", r->host, r->user);
    return 0;
  }
  if (strncasecmp(challenge, "Bearer", 6))
    return berth_error(err, -EACCES, "registry %s asked for unsupported authentication `%.40s`", r->host, challenge);
  cleanup_free char *realm = challenge_param(challenge, "realm");
  cleanup_free char *service = challenge_param(challenge, "service");
  cleanup_free char *scope = challenge_param(challenge, "scope");
  if (!realm || !(str_has_prefix(realm, "https://") || str_has_prefix(realm, "http://")))
    return berth_error(err, -EACCES, "registry %s sent a bearer challenge without a usable realm", r->host);
  if (str_has_prefix(realm, "http://") && !host_is_loopback(realm) && !config_registry_insecure(r->cfg, r->host))
    return berth_error(err, -EACCES, "token realm `%s` is plain HTTP; refusing (mark %s insecure in berth's config to allow)", realm,
                       r->host);
  CURL *c = curl_easy_init();
  if (!c) return berth_error(err, -ENOMEM, "curl");
  char *esc_service = service ? curl_easy_escape(c, service, 0) : NULL;
  cleanup_free char *want_scope = xasprintf("repository:%s:pull", r->repo);
  char *esc_scope = curl_easy_escape(c, scope ? scope : want_scope, 0);
  cleanup_free char *url = xasprintf("%s%sscope=%s%s%s", realm, strchr(realm, '?') ? "&" : "?", esc_scope, esc_service ? "&service=" : "",
                                     esc_service ? esc_service : "");
  curl_free(esc_service);
  curl_free(esc_scope);
  struct resp rs = {.max = 1 << 20};
  setup_common(r, c, &rs);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &rs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &rs);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  if (r->user && creds_may_travel(url)) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, r->user);
    curl_easy_setopt(c, CURLOPT_PASSWORD, r->pass);
  }
  CURLcode cc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs.status);
  curl_easy_cleanup(c);
  int ret = 0;
  if (cc != CURLE_OK) ret = berth_error(err, -EIO, "token request to %s failed: %s", realm, curl_easy_strerror(cc));
  else if (rs.status == 401 || rs.status == 403)
    ret = berth_error(err, -EACCES, "token server %s refused access to %s (HTTP %ld): %s", realm, r->repo, rs.status,
                      r->user ? "check the credentials for this registry"
                              : "the repository may be private: add credentials to ~/.docker/config.json or $REGISTRY_AUTH_FILE");
  else if (rs.status != 200) ret = berth_error(err, -EIO, "token server %s answered HTTP %ld", realm, rs.status);
  else {
    json_t *j = json_loadb(rs.body.data ? rs.body.data : "", rs.body.len, 0, NULL);
    const char *tok = json_string_value(json_object_get(j, "token"));
    if (!tok || !*tok) tok = json_string_value(json_object_get(j, "access_token"));
    if (!tok || !*tok) ret = berth_error(err, -EIO, "token server %s returned no `token` or `access_token`", realm);
    else {
      pthread_mutex_lock(&r->lock);
      free(r->token);
      r->token = strdup(tok);
      pthread_mutex_unlock(&r->lock);
    }
    json_decref(j);
  }
  if (rs.body.data) explicit_bzero(rs.body.data, rs.body.len);
  resp_reset(&rs);
  return ret;
}

/* ---------- retry policy ---------- */
static bool status_retryable(long s) { return s == 429 || s == 408 || (s >= 500 && s <= 599); }

static void backoff_sleep(int attempt, long retry_after) {
  double secs = 0.25 * (1 << (attempt < 6 ? attempt : 6));
  if (retry_after > 0) secs = retry_after > 60 ? 60 : (double)retry_after;
  struct timespec ts = {(time_t)secs, (long)((secs - (time_t)secs) * 1e9)};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

static char *distribution_error(const struct buf *b) {
  if (!b->data || !b->len) return NULL;
  json_t *j = json_loadb(b->data, b->len, 0, NULL);
  json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
  const char *code = json_string_value(json_object_get(e0, "code"));
  const char *msg = json_string_value(json_object_get(e0, "message"));
  char *out = code ? xasprintf("%s%s%s", code, msg ? ": " : "", msg ? msg : "") : NULL;
  json_decref(j);
  return out;
}

/* GET (or HEAD) with auth, manual redirects and retries, body in memory. */
static int request(struct registry *r, const char *path, const char *accept, size_t max, bool answer_401, struct resp *rs,
                   berth_error_t *err) {
  cleanup_free char *url = xasprintf("%s://%s%s", r->scheme, r->host, path);
  int attempt = 0, redirects = 0, auths = 0;
  rs->max = max;
  for (;;) {
    resp_reset(rs);
    CURL *c = curl_easy_init();
    if (!c) return berth_error(err, -ENOMEM, "curl");
    struct curl_slist *h = NULL;
    if (accept) h = curl_slist_append(h, accept);
    h = auth_headers(r, url, h);
    setup_common(r, c, rs);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, rs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, rs);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
    char *redir = NULL;
    curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &redir);
    char *next = redir ? strdup(redir) : NULL;
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    rs->curl_code = cc;

    if (rs->too_big) {
      free(next);
      return berth_error(err, -EFBIG, "%s: response larger than %zu bytes; refusing", url, max);
    }
    if (cc != CURLE_OK) {
      free(next);
      if (cc == CURLE_PEER_FAILED_VERIFICATION)
        return berth_error(err, -EACCES,
                           "%s: the registry's TLS certificate is not trusted (%s); put its CA certificate at "
                           "/etc/containers/certs.d/%s/ca.crt (or ~/.config/containers/certs.d/%s/ca.crt)",
                           url, curl_easy_strerror(cc), r->host, r->host);
      bool permanent = cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT;
      if (attempt < r->retries && !permanent) {
        berth_debug("%s: %s; retrying", url, curl_easy_strerror(cc));
        backoff_sleep(attempt++, 0);
        continue;
      }
      if (rs->stalled || cc == CURLE_OPERATION_TIMEDOUT)
        return berth_error(err, -ETIMEDOUT, "%s: stalled, no data for %ld s (after %d attempts)", url, r->stall_timeout, attempt + 1);
      return berth_error(err, -EIO, "%s: %s (after %d attempts)", url, curl_easy_strerror(cc), attempt + 1);
    }
    if (rs->status == 401 && answer_401 && auths < 2) {
      free(next);
      auths++;
      if (authenticate(r, rs->www_auth, err) < 0) return -1;
      continue;
    }
    if (rs->status >= 300 && rs->status < 400 && next) {
      if (++redirects > 5) {
        free(next);
        return berth_error(err, -ELOOP, "%s: too many redirects", url);
      }
      free(url);
      url = next;
      continue;
    }
    free(next);
    if (status_retryable(rs->status) && attempt < r->retries) {
      berth_debug("%s: HTTP %ld; retrying", url, rs->status);
      backoff_sleep(attempt++, rs->retry_after);
      continue;
    }
    return 0;
  }
}

static int status_error(struct registry *r, const char *what, struct resp *rs, berth_error_t *err) {
  cleanup_free char *detail = distribution_error(&rs->body);
  /* negative: the message says everything (no strerror after "HTTP 404") */
  int e = -(rs->status == 404 ? ENOENT : (rs->status == 401 || rs->status == 403) ? EACCES : EIO);
  const char *hint = rs->status == 404                          ? " (check the name and tag)"
                     : (rs->status == 401 || rs->status == 403) ? " (check credentials and that the repository exists)"
                                                                : "";
  return berth_error(err, e, "%s from %s/%s: HTTP %ld%s%s%s", what, r->host, r->repo, rs->status, detail ? " " : "", detail ? detail : "",
                     hint);
}

/* ---------- open ---------- */
int registry_open(struct registry *r, const char *endpoint, const char *auth_domain, const char *repo, berth_error_t *err) {
  memset(r, 0, sizeof *r);
  if (lazylib_require_curl(err) < 0 || lazylib_require_crypto(err) < 0) return -1;
  pthread_once(&curl_once, curl_init_once);
  pthread_mutex_init(&r->lock, NULL);
  r->cfg = config_get(err);
  if (!r->cfg) return -1;
  const char *host = endpoint;
  const char *forced = NULL;
  if (str_has_prefix(host, "https://")) forced = "https", host += 8;
  else if (str_has_prefix(host, "http://")) forced = "http", host += 7;
  r->host = strndup(host, strcspn(host, "/"));
  r->repo = strdup(repo);
  r->stall_timeout = config_int(r->cfg, "stall_timeout_seconds", 30);
  r->retries = config_int(r->cfg, "retries", 4);
  lookup_credentials(r, auth_domain);
  lookup_ca(r);
  bool plain_ok = host_is_loopback(r->host) || config_registry_insecure(r->cfg, r->host);
  if (forced && !strcmp(forced, "http") && !plain_ok)
    return berth_error(err, -EPERM,
                       "registry %s: plain HTTP is only used for loopback or registries listed in "
                       "`insecure_registries` of berth's config",
                       r->host);

  const char *schemes[2] = {forced ? forced : "https", NULL};
  if (!forced && plain_ok) schemes[1] = "http";
  struct resp rs = {0};
  for (int i = 0; i < 2 && schemes[i]; i++) {
    free(r->scheme);
    r->scheme = strdup(schemes[i]);
    berth_error_t e2 = NULL;
    long saved = r->retries;
    r->retries = schemes[1] && i == 0 ? 0 : saved; /* probe https once before falling back */
    int ret = request(r, "/v2/", NULL, 1 << 16, false, &rs, &e2);
    r->retries = saved;
    if (ret == 0 && (rs.status == 200 || rs.status == 401)) {
      berth_error_free(e2);
      resp_reset(&rs);
      return 0;
    }
    if (ret == 0 && rs.status != 200) {
      resp_reset(&rs);
      berth_error_free(e2);
      if (schemes[1] && i == 0) continue;
      return berth_error(err, -EIO, "%s://%s/v2/ answered HTTP %ld: not an OCI registry?", r->scheme, r->host, rs.status);
    }
    /* fall back to plain http only when the server does not speak TLS */
    if (schemes[1] && i == 0 && rs.curl_code != CURLE_PEER_FAILED_VERIFICATION) {
      berth_debug("https to %s failed (%s); trying plain http", r->host, e2->msg);
      berth_error_free(e2);
      continue;
    }
    if (err) *err = e2;
    else berth_error_free(e2);
    resp_reset(&rs);
    return berth_error_wrap(err, "cannot reach registry %s", r->host);
  }
  resp_reset(&rs);
  return berth_error(err, -EIO, "cannot reach registry %s", r->host);
}

void registry_close(struct registry *r) {
  free(r->host);
  free(r->scheme);
  free(r->repo);
  free(r->cafile);
  free(r->user);
  if (r->pass) explicit_bzero(r->pass, strlen(r->pass));
  free(r->pass);
  if (r->token) explicit_bzero(r->token, strlen(r->token));
  free(r->token);
  free(r->challenge);
  pthread_mutex_destroy(&r->lock);
  memset(r, 0, sizeof *r);
}

int registry_get_manifest(struct registry *r, const char *reference, struct buf *body, char **content_type, char **header_digest,
                          berth_error_t *err) {
  cleanup_free char *path = xasprintf("/v2/%s/manifests/%s", r->repo, reference);
  struct resp rs = {0};
  if (request(r, path, MANIFEST_ACCEPT, 4 << 20, true, &rs, err) < 0) {
    resp_reset(&rs);
    return -1;
  }
  if (rs.status != 200) {
    int ret = status_error(r, "manifest", &rs, err);
    resp_reset(&rs);
    return ret;
  }
  *body = rs.body;
  rs.body = (struct buf){0};
  *content_type = rs.content_type;
  rs.content_type = NULL;
  *header_digest = rs.docker_digest;
  rs.docker_digest = NULL;
  resp_reset(&rs);
  return 0;
}

int registry_get_blob(struct registry *r, const char *digest, size_t max, struct buf *out, berth_error_t *err) {
  if (digest_check(digest, err) < 0) return -1;
  cleanup_free char *path = xasprintf("/v2/%s/blobs/%s", r->repo, digest);
  struct resp rs = {0};
  if (request(r, path, NULL, max, true, &rs, err) < 0) {
    resp_reset(&rs);
    return -1;
  }
  if (rs.status != 200) {
    int ret = status_error(r, digest, &rs, err);
    resp_reset(&rs);
    return ret;
  }
  *out = rs.body;
  rs.body = (struct buf){0};
  resp_reset(&rs);
  return 0;
}

/* ---------- streaming blobs ----------
 * Pull model for libarchive: each read drives a private curl multi handle
 * until bytes arrive, so one thread per layer downloads, hashes and unpacks
 * in a single pass with no temporary file. */
struct blob_stream {
  struct registry *r;
  char *digest, *url;
  uint64_t size; /* expected, from the manifest */
  uint64_t received; /* bytes handed to the caller */
  uint64_t skip; /* bytes to drop (server ignored our Range) */
  _Atomic uint64_t *progress;
  CURLM *multi;
  CURL *easy;
  struct curl_slist *hdrs;
  struct resp rs;
  struct buf fill, out;
  bool running, checked, bad_status, range_bad;
  int attempt, redirects, auths;
  char errbuf[CURL_ERROR_SIZE];
};

static size_t stream_write(char *data, size_t size, size_t n, void *ud) {
  struct blob_stream *s = ud;
  size_t len = size * n;
  if (!s->checked) {
    s->checked = true;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->rs.status);
    if (s->rs.status == 200 && s->received > 0) s->skip = s->received; /* full body again */
    s->bad_status = !(s->rs.status == 200 || s->rs.status == 206);
    if (s->rs.status == 206) {
      /* the range must start where we are, or at least not after it */
      unsigned long long start = 0;
      if (!s->rs.content_range || sscanf(s->rs.content_range, "bytes %llu-", &start) != 1 || start > s->received) {
        s->range_bad = true;
        return 0;
      }
      s->skip = s->received - start;
    }
  }
  if (s->bad_status) { /* keep a little of the error body for the message */
    if (s->rs.body.len < 4096) buf_append(&s->rs.body, data, len < 4096 ? len : 4096);
    return len;
  }
  size_t off = 0;
  if (s->skip) {
    off = s->skip < len ? s->skip : len;
    s->skip -= off;
  }
  if (buf_append(&s->fill, data + off, len - off) < 0) return 0;
  return len;
}

static int stream_start(struct blob_stream *s, berth_error_t *err) {
  if (s->easy) {
    curl_multi_remove_handle(s->multi, s->easy);
    curl_easy_cleanup(s->easy);
    curl_slist_free_all(s->hdrs);
    s->hdrs = NULL;
  }
  resp_reset(&s->rs);
  s->rs.max = 4096;
  s->checked = s->bad_status = s->range_bad = false;
  s->skip = 0;
  s->easy = curl_easy_init();
  if (!s->easy) return berth_error(err, -ENOMEM, "curl");
  s->hdrs = auth_headers(s->r, s->url, NULL);
  if (s->received > 0) {
    cleanup_free char *range = xasprintf("Range: bytes=%llu-", (unsigned long long)s->received);
    s->hdrs = curl_slist_append(s->hdrs, range);
  }
  setup_common(s->r, s->easy, &s->rs);
  curl_easy_setopt(s->easy, CURLOPT_URL, s->url);
  curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hdrs);
  curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, &s->rs);
  curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, stream_write);
  curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(s->easy, CURLOPT_BUFFERSIZE, 256L * 1024);
  curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->errbuf);
  s->errbuf[0] = '\0';
  curl_multi_add_handle(s->multi, s->easy);
  s->running = true;
  return 0;
}

int blob_stream_open(struct registry *r, const char *digest, uint64_t size, _Atomic uint64_t *progress, struct blob_stream **out,
                     berth_error_t *err) {
  if (digest_check(digest, err) < 0) return -1;
  struct blob_stream *s = xmalloc0(sizeof *s);
  if (!s) return berth_error(err, -ENOMEM, "blob stream");
  s->r = r;
  s->digest = strdup(digest);
  s->size = size;
  s->progress = progress;
  s->url = xasprintf("%s://%s/v2/%s/blobs/%s", r->scheme, r->host, r->repo, digest);
  s->multi = curl_multi_init();
  if (!s->multi || stream_start(s, err) < 0) {
    blob_stream_close(s);
    return -1;
  }
  *out = s;
  return 0;
}

/* A transfer ended: decide between done, follow, re-auth, retry or fail. */
static int stream_finished(struct blob_stream *s, CURLcode cc, bool *again, berth_error_t *err) {
  *again = false;
  if (s->range_bad)
    return berth_error(err, -EIO, "blob %s: the server answered a resume request with an unusable Content-Range `%s`", s->digest,
                       s->rs.content_range ? s->rs.content_range : "(none)");
  long status = s->rs.status;
  if (!s->checked) curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
  char *redir = NULL;
  curl_easy_getinfo(s->easy, CURLINFO_REDIRECT_URL, &redir);
  if (cc == CURLE_OK && status >= 300 && status < 400 && redir) {
    if (++s->redirects > 5) return berth_error(err, -ELOOP, "blob %s: too many redirects", s->digest);
    free(s->url);
    s->url = strdup(redir);
    *again = true;
    return 0;
  }
  if (cc == CURLE_OK && status == 401 && s->auths++ < 2) {
    if (authenticate(s->r, s->rs.www_auth, err) < 0) return -1;
    *again = true;
    return 0;
  }
  if (cc == CURLE_OK && (status == 200 || status == 206) && s->received >= s->size) return 0; /* complete */
  bool retryable = cc != CURLE_OK || status_retryable(status) || status == 200 || status == 206;
  if (cc == CURLE_WRITE_ERROR && !s->bad_status) retryable = false;
  if (retryable && s->attempt < s->r->retries) {
    berth_info("blob %.19s: %s at %llu of %llu bytes; resuming", s->digest, cc != CURLE_OK ? curl_easy_strerror(cc) : "short transfer",
               (unsigned long long)s->received, (unsigned long long)s->size);
    backoff_sleep(s->attempt++, s->rs.retry_after);
    /* restart from the registry (a CDN URL may have expired), asking for the rest */
    free(s->url);
    s->url = xasprintf("%s://%s/v2/%s/blobs/%s", s->r->scheme, s->r->host, s->r->repo, s->digest);
    s->redirects = 0;
    *again = true;
    return 0;
  }
  if (cc == CURLE_OPERATION_TIMEDOUT || s->rs.stalled)
    return berth_error(err, -ETIMEDOUT, "blob %s stalled: no data for %ld s (after %d attempts)", s->digest, s->r->stall_timeout,
                       s->attempt + 1);
  if (cc != CURLE_OK)
    return berth_error(err, -EIO, "blob %s: %s (after %d attempts)", s->digest, s->errbuf[0] ? s->errbuf : curl_easy_strerror(cc),
                       s->attempt + 1);
  if (status == 200 || status == 206)
    return berth_error(err, -EIO, "blob %s: transfer ended at %llu of %llu bytes (after %d attempts)", s->digest,
                       (unsigned long long)s->received, (unsigned long long)s->size, s->attempt + 1);
  s->rs.status = status;
  return status_error(s->r, s->digest, &s->rs, err);
}

ssize_t blob_stream_read(struct blob_stream *s, const void **data, berth_error_t *err) {
  for (;;) {
    if (s->fill.len) {
      struct buf t = s->out;
      s->out = s->fill;
      s->fill = t;
      s->fill.len = 0;
      if (s->received + s->out.len > s->size)
        return berth_error(err, -EIO, "blob %s is larger than the %llu bytes its manifest declares", s->digest,
                           (unsigned long long)s->size);
      s->received += s->out.len;
      if (s->progress) atomic_store(s->progress, s->received);
      *data = s->out.data;
      return (ssize_t)s->out.len;
    }
    if (!s->running) return 0;
    int still = 0;
    CURLMcode mc = curl_multi_perform(s->multi, &still);
    if (mc != CURLM_OK) return berth_error(err, -EIO, "curl: %s", curl_multi_strerror(mc));
    if (s->fill.len) continue;
    CURLMsg *m;
    int left;
    bool finished = false;
    CURLcode cc = CURLE_OK;
    while ((m = curl_multi_info_read(s->multi, &left)))
      if (m->msg == CURLMSG_DONE) {
        finished = true;
        cc = m->data.result;
      }
    if (finished) {
      bool again;
      if (stream_finished(s, cc, &again, err) < 0) return -1;
      if (!again) {
        s->running = false;
        continue;
      }
      if (stream_start(s, err) < 0) return -1;
      continue;
    }
    curl_multi_poll(s->multi, NULL, 0, 1000, NULL);
  }
}

void blob_stream_close(struct blob_stream *s) {
  if (!s) return;
  if (s->easy) {
    curl_multi_remove_handle(s->multi, s->easy);
    curl_easy_cleanup(s->easy);
  }
  if (s->multi) curl_multi_cleanup(s->multi);
  curl_slist_free_all(s->hdrs);
  resp_reset(&s->rs);
  buf_free(&s->fill);
  buf_free(&s->out);
  free(s->digest);
  free(s->url);
  free(s);
}
