/* Provisioning. Credentials are taken on the host with the user's own
 * tools (git, gh, ssh-agent) and handed to the container without touching
 * argv, logs or state files: variables through the container's sealed
 * environment memfd, files written by the in-container helper (cfs.c) as
 * the container user. A dotfiles or try-repo clone happens on the host in
 * a private temp dir (so images without git work, and nothing lands in the
 * caller's current directory), then is copied in. */
#define _GNU_SOURCE
#include "provision/provision.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "util/config.h"
#include "runtime/container.h"
#include "util/security.h"
#include <openssl/evp.h>

extern const char _binary_profiles_purposes_json_start[];
extern const char _binary_profiles_purposes_json_end[];

json_t *prov_step(const char *name, const char *status, double ms, const char *detail, const char *error) {
  return json_pack("{s:s, s:s, s:i, s:s*, s:s*}", "name", name, "status", status, "duration_ms", (int)ms, "detail", detail, "error", error);
}

/* ---------- running host tools (never a shell, never secrets in argv) ---------- */
static int host_run(char *const argv[], json_t *extra_env, int timeout, struct buf *out, int *status, berth_error_t *err) {
  int op[2];
  if (pipe2(op, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  pid_t c = fork();
  if (c < 0) return berth_error(err, errno, "fork");
  if (c == 0) {
    dup2(op[1], 1);
    dup2(op[1], 2);
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0) dup2(nul, 0);
    setpgid(0, 0);
    const char *k;
    json_t *v;
    json_object_foreach(extra_env, k, v) setenv(k, json_string_value(v), 1);
    setenv("GIT_TERMINAL_PROMPT", "0", 1);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(op[1]);
  double end = now_seconds() + timeout;
  for (;;) {
    struct pollfd p = {.fd = op[0], .events = POLLIN};
    int left = (int)((end - now_seconds()) * 1000);
    if (left <= 0) {
      kill(-c, SIGKILL);
      break;
    }
    int r = poll(&p, 1, left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char tmp[4096];
    ssize_t n = read(op[0], tmp, sizeof tmp);
    if (n <= 0) break;
    if (out && out->len < (1 << 20)) buf_append(out, tmp, (size_t)n);
  }
  close(op[0]);
  int st = 0;
  while (waitpid(c, &st, 0) < 0 && errno == EINTR) {}
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return 0;
}

static bool on_path(const char *prog) {
  const char *path = getenv("PATH");
  cleanup_free char *copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
  for (char *save_ = NULL, *d = strtok_r(copy, ":", &save_); d; d = strtok_r(NULL, ":", &save_)) {
    cleanup_free char *p = xasprintf("%s/%s", d, prog);
    if (access(p, X_OK) == 0) return true;
  }
  return false;
}

static char *tail_of(const struct buf *b, size_t n) {
  if (!b->len) return strdup("");
  size_t l = b->len > n ? n : b->len;
  return strndup(b->data + b->len - l, l);
}

/* ---------- profiles ---------- */
static json_t *load_profiles(berth_error_t *err) {
  size_t len = (size_t)(_binary_profiles_purposes_json_end - _binary_profiles_purposes_json_start);
  json_t *all = json_loadb(_binary_profiles_purposes_json_start, len, 0, NULL);
  if (!all) {
    berth_error(err, -EINVAL, "built-in purpose profiles are not valid JSON");
    return NULL;
  }
  json_object_del(all, "comment");
  struct berth_config *cfg = config_get(NULL);
  json_t *extra = cfg ? json_object_get(cfg->root, "profiles") : NULL;
  const char *k;
  json_t *v;
  json_object_foreach(extra, k, v) if (json_is_object(v)) json_object_set(all, k, v);
  return all;
}

static bool pkg_name_ok(const char *s) {
  if (!s || !*s || strlen(s) > 128) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("+-._:=", *p))) return false;
  return true;
}

/* ---------- environment ---------- */
static const char *AUTO_PATTERNS[] = {"*_API_KEY",   "*_TOKEN",  "*_SECRET",   "ANTHROPIC_*", "OPENAI_*",    "AZURE_OPENAI_*",
                                      "GOOGLE_*",    "GEMINI_*", "OLLAMA_*",   "VLLM_*",      "AMPLIFIER_*", "HTTP_PROXY",
                                      "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",    NULL};
static const char *NEVER[] = {"PATH",
                              "HOME",
                              "SHELL",
                              "USER",
                              "LOGNAME",
                              "PWD",
                              "OLDPWD",
                              "TERM",
                              "DISPLAY",
                              "DBUS_SESSION_BUS_ADDRESS",
                              "XDG_RUNTIME_DIR",
                              "SSH_AUTH_SOCK",
                              "SSH_CONNECTION",
                              "SSH_CLIENT",
                              "SSH_TTY",
                              "LS_COLORS",
                              "LANG",
                              "LC_ALL",
                              "HOSTNAME",
                              "SHLVL",
                              "_",
                              NULL};

static bool in_list(const char **l, const char *s) {
  for (; *l; l++)
    if (!strcmp(*l, s)) return true;
  return false;
}

/* skipped: the names an explicit list gave that the container keeps its
 * own of (the host's HOME or PATH would break it), for the report */
static void passthrough_env(json_t *mode, bool allow, json_t *env, struct buf *skipped) {
  extern char **environ;
  if (json_is_array(mode)) { /* an explicit list passes exactly the named vars that exist */
    size_t i;
    json_t *v;
    json_array_foreach(mode, i, v) {
      const char *k = json_string_value(v);
      if (!k) continue;
      if (in_list(NEVER, k) || str_has_prefix(k, "BERTH_")) {
        if (skipped->len) buf_append(skipped, ", ", 2);
        buf_append(skipped, k, strlen(k));
        continue;
      }
      const char *val = getenv(k);
      if (val) json_object_set_new(env, k, json_string(val));
    }
    return;
  }
  const char *m = json_string_value(mode);
  if (!m) m = allow ? "auto" : "none";
  if (!strcmp(m, "none")) return;
  struct berth_config *cfg = config_get(NULL);
  json_t *pats = cfg ? config_array(cfg, "env_passthrough_patterns") : NULL;
  for (char **e = environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq || eq == *e) continue;
    cleanup_free char *k = strndup(*e, (size_t)(eq - *e));
    if (in_list(NEVER, k) || str_has_prefix(k, "BERTH_")) continue;
    bool pass = !strcmp(m, "all");
    if (!pass && pats) {
      size_t i;
      json_t *p;
      json_array_foreach(pats, i, p) if (json_is_string(p) && fnmatch(json_string_value(p), k, 0) == 0) pass = true;
    } else if (!pass)
      for (const char **p = AUTO_PATTERNS; *p && !pass; p++) pass = fnmatch(*p, k, 0) == 0;
    if (pass) json_object_set_new(env, k, json_string(eq + 1));
  }
}

/* ---------- try-repo: clone on the host ---------- */
static char *private_tmpdir(void) {
  struct berth_config *cfg = config_get(NULL);
  cleanup_free char *base = cfg ? xasprintf("%s/tmp", cfg->data_dir) : strdup("/tmp");
  mkdir_p(base, 0700, NULL);
  char *t = xasprintf("%s/provision-XXXXXX", base);
  if (!mkdtemp(t)) {
    free(t);
    return NULL;
  }
  return t;
}

static json_t *git_auth_env(const char *url, const char *token) {
  json_t *e = json_object();
  /* an HTTPS GitHub URL gets the token as a header through git's env config:
   * it never appears in argv or in the clone's .git/config */
  if (token && url && str_has_prefix(url, "https://github.com/")) {
    cleanup_free char *up = xasprintf("x-access-token:%s", token);
    size_t n = strlen(up);
    char *b = malloc(4 * ((n + 2) / 3) + 1);
    if (b) {
      EVP_EncodeBlock((unsigned char *)b, (unsigned char *)up, (int)n);
      cleanup_free char *h = xasprintf("AUTHORIZATION: basic %s", b);
      json_object_set_new(e, "GIT_CONFIG_COUNT", json_string("1"));
      json_object_set_new(e, "GIT_CONFIG_KEY_0", json_string("http.https://github.com/.extraheader"));
      json_object_set_new(e, "GIT_CONFIG_VALUE_0", json_string(h));
      explicit_bzero(b, strlen(b));
      free(b);
    }
    explicit_bzero(up, n);
  }
  return e;
}

static int host_clone(const char *url, const char *branch, const char *token, const char *dest, char **detail) {
  if (!on_path("git")) {
    *detail = strdup("git is not installed on the host (needed to clone; apt-get install git)");
    return -1;
  }
  char *argv[10];
  int a = 0;
  argv[a++] = "git";
  argv[a++] = "clone";
  argv[a++] = "--depth=1";
  if (branch) {
    argv[a++] = "--branch";
    argv[a++] = (char *)branch;
  }
  argv[a++] = "--";
  argv[a++] = (char *)url;
  argv[a++] = (char *)dest;
  argv[a] = NULL;
  berth_error_t e = NULL;
  /* the token goes to git base64-encoded (libcrypto, loaded on first use) */
  if (token && str_has_prefix(url, "https://github.com/") && lazylib_require_crypto(&e) < 0) {
    *detail = xasprintf("git clone with a token: %s", e->msg);
    berth_error_free(e);
    return -1;
  }
  json_t *env = git_auth_env(url, token);
  struct buf out = {0};
  int st = -1;
  host_run(argv, env, 300, &out, &st, &e);
  json_decref(env);
  if (st != 0) {
    cleanup_free char *t = tail_of(&out, 1500);
    *detail = xasprintf("git clone failed (exit %d): %s", st, e ? e->msg : t);
    berth_error_free(e);
    buf_free(&out);
    return -1;
  }
  buf_free(&out);
  return 0;
}

static const char *repo_base(const char *url, char *buf, size_t len) {
  const char *s = strrchr(url, '/');
  snprintf(buf, len, "%s", s && s[1] ? s + 1 : url);
  size_t n = strlen(buf);
  if (n > 4 && !strcmp(buf + n - 4, ".git")) buf[n - 4] = '\0';
  for (char *p = buf; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
      *p = '-';
  if (!*buf || buf[0] == '.') snprintf(buf, len, "repo");
  return buf;
}

/* ---------- prepare ---------- */
int provision_prepare(struct prov *p, json_t *req, json_t **error_reply) {
  memset(p, 0, sizeof *p);
  p->req = req;
  p->report = json_array();
  p->env = json_object();
  p->mounts = json_deep_copy(json_object_get(req, "mounts"));
  if (!p->mounts) p->mounts = json_array();
  berth_error_t e = NULL;
  p->profiles = load_profiles(&e);
  if (!p->profiles) {
    *error_reply = json_pack("{s:s, s:s}", "error", e->msg, "code", "failed");
    berth_error_free(e);
    return -1;
  }
  p->purpose = jstr(req, "purpose");
  if (p->purpose) {
    p->profile = json_object_get(p->profiles, p->purpose);
    if (!p->profile) {
      struct buf names = {0};
      const char *k;
      json_t *v;
      json_object_foreach(p->profiles, k, v) {
        if (names.len) buf_append(&names, ", ", 2);
        buf_append(&names, k, strlen(k));
      }
      *error_reply = json_pack("{s:s+, s:s, s:s}", "error", "unknown purpose; one of: ", names.data ? names.data : "", "code",
                               "invalid_value", "field", "purpose");
      buf_free(&names);
      return -1;
    }
  }
  p->credentials = jbool(p->profile, "credentials", true);
  p->dotfiles = jbool(p->profile, "dotfiles", true);
  p->mount_cwd = jbool(req, "mount_cwd", true);
  double t0 = now_seconds();

  /* try-repo: clone first, the language decides the profile and image */
  if (p->purpose && !strcmp(p->purpose, "try-repo")) {
    const char *url = jstr(req, "repo");
    if (!url) {
      *error_reply = json_pack("{s:s, s:s, s:s}", "error", "purpose try-repo needs `repo` (a git URL or path to clone)", "code",
                               "missing_parameter", "field", "repo");
      return -1;
    }
    p->mount_cwd = jbool(req, "mount_cwd", false); /* never write the clone into the caller's directory */
    p->repo_dir = private_tmpdir();
    char base[128];
    p->repo_name = strdup(repo_base(url, base, sizeof base));
    cleanup_free char *dest = p->repo_dir ? xasprintf("%s/%s", p->repo_dir, p->repo_name) : NULL;
    char *detail = NULL;
    const char *tok = getenv("GH_TOKEN");
    if (!dest || host_clone(url, jstr(req, "repo_branch"), tok, dest, &detail) < 0) {
      *error_reply =
          json_pack("{s:s+, s:s}", "error", "Failed to create container: try-repo: ", detail ? detail : "no temp dir", "code", "failed");
      free(detail);
      return -1;
    }
    json_t *tr = json_object_get(p->profiles, "try-repo");
    const char *lang = jstr(tr, "fallback");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(tr, "detect"), i, m) {
      cleanup_free char *mp = xasprintf("%s/%s", dest, json_string_value(json_array_get(m, 0)));
      if (access(mp, F_OK) == 0) {
        lang = json_string_value(json_array_get(m, 1));
        break;
      }
    }
    p->lang = lang;
    p->profile = json_object_get(p->profiles, lang);
  }
  p->image = jstr(req, "image");
  if (!p->image) p->image = jstr(p->profile, "image");
  struct berth_config *cfg = config_get(NULL);
  if (!p->image && cfg) p->image = json_string_value(json_object_get(cfg->root, "default_image"));
  if (!p->image) {
    *error_reply = json_pack("{s:s, s:s, s:s}", "error", "`image` is required (or a `purpose`, or `default_image` in berth's config)",
                             "code", "missing_parameter", "field", "image");
    return -1;
  }

  /* 1. environment: profile env, then passthrough, then explicit env */
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(p->profile, "env"), k, v) if (json_is_string(v)) json_object_set(p->env, k, v);
  struct buf skipped = {0};
  passthrough_env(json_object_get(req, "env_passthrough"), p->credentials, p->env, &skipped);
  /* 3. gh: the token from the host's gh, for every process */
  bool want_gh = jbool(req, "forward_gh", true) && p->credentials;
  double g0 = now_seconds();
  if (!want_gh) p->gh_step = prov_step("gh", "skipped", 0, p->credentials ? "forward_gh is false" : "purpose clean: no credentials", NULL);
  else if (!on_path("gh")) p->gh_step = prov_step("gh", "skipped", 0, "gh is not installed on the host", NULL);
  else {
    char *argv[] = {"gh", "auth", "token", NULL};
    struct buf out = {0};
    int st = -1;
    berth_error_t e2 = NULL;
    host_run(argv, NULL, 15, &out, &st, &e2);
    berth_error_free(e2);
    char *tok = out.data ? strndup(out.data, strcspn(out.data, "\r\n")) : NULL;
    if (st == 0 && tok && *tok && !strchr(tok, ' ')) {
      if (!json_object_get(p->env, "GH_TOKEN")) json_object_set_new(p->env, "GH_TOKEN", json_string(tok));
      if (!json_object_get(p->env, "GITHUB_TOKEN")) json_object_set_new(p->env, "GITHUB_TOKEN", json_string(tok));
      p->gh_step = prov_step("gh", "success", (now_seconds() - g0) * 1000,
                             "token from `gh auth token` set as GH_TOKEN and GITHUB_TOKEN for every process", NULL);
    } else p->gh_step = prov_step("gh", "skipped", (now_seconds() - g0) * 1000, "gh on the host is not logged in (`gh auth login`)", NULL);
    if (tok) explicit_bzero(tok, strlen(tok));
    free(tok);
    if (out.data) explicit_bzero(out.data, out.len);
    buf_free(&out);
  }
  json_object_foreach(json_object_get(req, "env"), k, v) json_object_set(p->env, k, v);
  /* 4. ssh: an agent socket must be mounted at create time */
  if (jbool(req, "forward_ssh", false) && p->credentials) {
    const char *sock = getenv("SSH_AUTH_SOCK");
    struct stat st;
    if (sock && stat(sock, &st) == 0 && S_ISSOCK(st.st_mode)) {
      json_array_append_new(p->mounts, json_pack("{s:s, s:s, s:s}", "host", sock, "container", "/run/berth/ssh-agent.sock", "mode", "rw"));
      json_object_set_new(p->env, "SSH_AUTH_SOCK", json_string("/run/berth/ssh-agent.sock"));
      p->ssh_agent = true;
    }
  }
  cleanup_free char *d = skipped.len ? xasprintf("%zu variable(s) injected; not passed through, the container keeps its own: %.*s",
                                                 json_object_size(p->env), (int)skipped.len, skipped.data)
                                     : xasprintf("%zu variable(s) injected", json_object_size(p->env));
  buf_free(&skipped);
  p->env_step = prov_step("environment", "success", (now_seconds() - t0) * 1000, d, NULL);
  return 0;
}

/* ---------- after create ---------- */
struct runner {
  struct prov *p;
  const char *name;
  bool failed;
};

static int exec_in(struct runner *r, const char *cmd, const char *cwd, uint64_t caps, int timeout, struct exec_result *res,
                   berth_error_t *err) {
  char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
  struct exec_opts eo = {
      .name = r->name, .argv = argv, .capture = true, .capture_max = 1 << 20, .timeout = timeout, .workdir = cwd, .keep_caps = caps};
  return container_exec(&eo, res, err);
}

/* run a shell step; report with exit code, duration and output tail (never the command: it may hold secrets) */
void (*provision_on_step)(const char *name);

static void shell_step(struct runner *r, const char *name, const char *cmd, const char *cwd, uint64_t caps, int timeout) {
  if (r->failed) {
    json_array_append_new(r->p->report, prov_step(name, "skipped", 0, "an earlier step failed", NULL));
    return;
  }
  if (provision_on_step) provision_on_step(name);
  struct exec_result res;
  berth_error_t e = NULL;
  double t0 = now_seconds();
  int rc = exec_in(r, cmd, cwd, caps, timeout, &res, &e);
  const struct buf *src = rc == 0 && res.err.len ? &res.err : &res.out;
  cleanup_free char *tail = rc == 0 ? tail_of(src, 2000) : strdup("");
  /* a failed profile step names its command (berth's own, from the
   * profile: no secret in it); the caller's setup commands are never shown */
  bool ours = str_has_prefix(name, "purpose_profile:");
  cleanup_free char *shown = ours && !(rc == 0 && res.exit_code == 0) ? xasprintf("; command: %.300s", cmd) : strdup("");
  cleanup_free char *d = rc < 0
                             ? xasprintf("%s%s", e->msg, shown)
                             : xasprintf("exit %d%s%s; output tail: %s", res.exit_code, res.timed_out ? " (timed out)" : "", shown, tail);
  bool ok = rc == 0 && res.exit_code == 0;
  json_array_append_new(r->p->report, prov_step(name, ok ? "success" : "failed", (now_seconds() - t0) * 1000, d,
                                                ok              ? NULL
                                                : rc < 0        ? "could not run"
                                                : res.timed_out ? "timed out"
                                                                : "non-zero exit"));
  if (!ok) r->failed = true;
  berth_error_free(e);
  if (rc == 0) {
    buf_free(&res.out);
    buf_free(&res.err);
  }
}

/* git config --global --list with includes, minus credential/include/includeif/http/safe */
static char *host_gitconfig(char **why) {
  if (!on_path("git")) {
    *why = strdup("git is not installed on the host");
    return NULL;
  }
  char *argv[] = {"git", "config", "--global", "--includes", "--list", "-z", NULL};
  struct buf out = {0};
  int st = -1;
  berth_error_t e = NULL;
  host_run(argv, NULL, 15, &out, &st, &e);
  berth_error_free(e);
  if (st != 0 || !out.len) {
    buf_free(&out);
    *why = strdup("no global git config on the host");
    return NULL;
  }
  static const char *drop[] = {"credential", "include", "includeif", "http", "safe", NULL};
  struct buf cfg = {0};
  char cur_section[512] = "";
  buf_append(&cfg, "# written by berth from the host's global git config (credentials and includes removed)\n", 88);
  for (size_t off = 0; off < out.len;) {
    char *entry = out.data + off;
    size_t el = strnlen(entry, out.len - off);
    off += el + 1;
    char *nl = memchr(entry, '\n', el);
    cleanup_free char *key = nl ? strndup(entry, (size_t)(nl - entry)) : strndup(entry, el);
    const char *val = nl ? nl + 1 : "true";
    char *dot1 = strchr(key, '.'), *dot2 = strrchr(key, '.');
    if (!dot1 || !dot2) continue;
    cleanup_free char *sect = strndup(key, (size_t)(dot1 - key));
    for (char *c = sect; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    bool skip = false;
    for (const char **d = drop; *d; d++) skip |= !strcmp(sect, *d);
    if (skip) continue;
    char header[512];
    if (dot1 == dot2) snprintf(header, sizeof header, "[%s]", sect);
    else {
      cleanup_free char *sub = strndup(dot1 + 1, (size_t)(dot2 - dot1 - 1));
      struct buf q = {0};
      for (char *c = sub; *c; c++) {
        if (*c == '"' || *c == '\\') buf_append(&q, "\\", 1);
        buf_append(&q, c, 1);
      }
      snprintf(header, sizeof header, "[%s \"%s\"]", sect, q.data ? q.data : "");
      buf_free(&q);
    }
    if (strcmp(header, cur_section)) {
      buf_append(&cfg, header, strlen(header));
      buf_append(&cfg, "\n", 1);
      snprintf(cur_section, sizeof cur_section, "%s", header);
    }
    struct buf line = {0};
    buf_append(&line, "\t", 1);
    buf_append(&line, dot2 + 1, strlen(dot2 + 1));
    buf_append(&line, " = \"", 4);
    for (const char *c = val; *c; c++) {
      if (*c == '"' || *c == '\\') buf_append(&line, "\\", 1);
      if (*c == '\n') buf_append(&line, "\\n", 2);
      else if (*c == '\t') buf_append(&line, "\\t", 2);
      else buf_append(&line, c, 1);
    }
    buf_append(&line, "\"\n", 2);
    buf_append(&cfg, line.data, line.len);
    buf_free(&line);
  }
  buf_free(&out);
  return cfg.data;
}

static void step_git(struct runner *r) {
  struct prov *p = r->p;
  if (!p->credentials || !jbool(p->req, "forward_git", true)) {
    json_array_append_new(p->report,
                          prov_step("git", "skipped", 0, p->credentials ? "forward_git is false" : "purpose clean: no credentials", NULL));
    return;
  }
  double t0 = now_seconds();
  char *why = NULL;
  cleanup_free char *cfgtxt = host_gitconfig(&why);
  struct cfs_op ops[3];
  size_t n = 0;
  cleanup_free char *home = xstrdup(getenv("HOME"));
  cleanup_close int hfd = home ? open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  cleanup_close int sshfd = home ? openat(hfd, ".ssh", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (cfgtxt)
    ops[n++] =
        (struct cfs_op){.kind = CFS_WRITE, .path = "~/.gitconfig", .data = cfgtxt, .len = strlen(cfgtxt), .mode = 0644, .replace = true};
  struct stat st;
  bool local = hfd >= 0 && fstatat(hfd, ".gitconfig.local", &st, 0) == 0 && S_ISREG(st.st_mode);
  if (local) ops[n++] = (struct cfs_op){.kind = CFS_COPY, .path = "~/.gitconfig.local", .host_dirfd = hfd, .host_name = ".gitconfig.local"};
  bool kh = sshfd >= 0 && fstatat(sshfd, "known_hosts", &st, 0) == 0 && S_ISREG(st.st_mode);
  if (kh) ops[n++] = (struct cfs_op){.kind = CFS_COPY, .path = "~/.ssh/known_hosts", .host_dirfd = sshfd, .host_name = "known_hosts"};
  if (!n) {
    json_array_append_new(p->report, prov_step("git", "skipped", (now_seconds() - t0) * 1000, why ? why : "nothing to forward", NULL));
    free(why);
    return;
  }
  free(why);
  berth_error_t e = NULL;
  if (container_fs_apply(r->name, NULL, ops, n, &e) < 0) {
    json_array_append_new(p->report, prov_step("git", "failed", (now_seconds() - t0) * 1000, "writing the git files", e->msg));
    berth_error_free(e);
    r->failed = true;
    return;
  }
  char d[256];
  snprintf(d, sizeof d, "%s%s%s written for the container user", cfgtxt ? "~/.gitconfig" : "", local ? ", ~/.gitconfig.local" : "",
           kh ? ", ~/.ssh/known_hosts" : "");
  json_array_append_new(p->report, prov_step("git", "success", (now_seconds() - t0) * 1000, d, NULL));
}

static void step_ssh(struct runner *r) {
  struct prov *p = r->p;
  if (!jbool(p->req, "forward_ssh", false) || !p->credentials) {
    json_array_append_new(p->report,
                          prov_step("ssh", "skipped", 0, !p->credentials ? "purpose clean: no credentials" : "forward_ssh is false", NULL));
    return;
  }
  if (p->ssh_agent) {
    json_array_append_new(p->report,
                          prov_step("ssh", "success", 0, "ssh-agent socket forwarded at /run/berth/ssh-agent.sock (SSH_AUTH_SOCK)", NULL));
    return;
  }
  double t0 = now_seconds();
  const char *home = getenv("HOME");
  cleanup_close int hfd = home ? open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  cleanup_close int sshfd = hfd >= 0 ? openat(hfd, ".ssh", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (sshfd < 0) {
    json_array_append_new(p->report, prov_step("ssh", "skipped", 0, "no ssh-agent and no ~/.ssh on the host", NULL));
    return;
  }
  /* copy the keys, then fix the modes ssh insists on */
  struct cfs_op ops[64];
  size_t n = 0;
  ops[n++] = (struct cfs_op){.kind = CFS_COPY, .path = "~/.ssh", .host_dirfd = hfd, .host_name = ".ssh"};
  ops[n++] = (struct cfs_op){.kind = CFS_MKDIR, .path = "~/.ssh", .mode = 0700};
  berth_error_t e = NULL;
  int rc = container_fs_apply(r->name, NULL, ops, n, &e);
  if (rc == 0) {
    cleanup_free char *fix = strdup(
        "cd ~/.ssh && for f in * .[!.]*; do [ -f \"$f\" ] || continue; case \"$f\" in *.pub|known_hosts*|config|authorized_keys) chmod 644 \"$f\";; *) chmod 600 \"$f\";; esac; done; chmod 700 ~/.ssh");
    shell_step(r, "ssh", fix, NULL, 0, 60);
    json_t *last = json_array_get(p->report, json_array_size(p->report) - 1);
    if (json_is_true(json_object_get(last, "status")) || !strcmp(json_string_value(json_object_get(last, "status")) ?: "", "success"))
      json_object_set_new(last, "detail", json_string("no agent: ~/.ssh copied to the container user's home (700/600/644)"));
    return;
  }
  json_array_append_new(p->report, prov_step("ssh", "failed", (now_seconds() - t0) * 1000, "copying ~/.ssh", e->msg));
  berth_error_free(e);
  r->failed = true;
}

static const char *SYMLINKABLE[] = {".bashrc",           ".bash_profile", ".bash_aliases", ".zshrc",   ".zprofile",     ".gitconfig",
                                    ".gitignore_global", ".vimrc",        ".tmux.conf",    ".inputrc", ".editorconfig", NULL};

static bool inline_path_ok(const char *k) { return k && *k && k[0] != '/' && k[0] != '~' && !strstr(k, "..") && strlen(k) < 1024; }

static void step_dotfiles(struct runner *r) {
  struct prov *p = r->p;
  json_t *req = p->req;
  if (jbool(req, "dotfiles_skip", false) || !p->dotfiles) {
    json_array_append_new(p->report,
                          prov_step("dotfiles", "skipped", 0, !p->dotfiles ? "purpose clean: no dotfiles" : "dotfiles_skip is true", NULL));
    return;
  }
  json_t *inl = json_object_get(req, "dotfiles_inline");
  const char *repo = jstr(req, "dotfiles_repo");
  if (!repo && !json_object_size(inl)) {
    json_array_append_new(p->report, prov_step("dotfiles", "skipped", 0, "no dotfiles_repo or dotfiles_inline", NULL));
    return;
  }
  if (r->failed) {
    json_array_append_new(p->report, prov_step("dotfiles", "skipped", 0, "an earlier step failed", NULL));
    return;
  }
  double t0 = now_seconds();
  struct buf detail = {0};
  if (repo) {
    cleanup_free char *tmp = private_tmpdir();
    char *why = NULL;
    cleanup_free char *dest = tmp ? xasprintf("%s/dotfiles", tmp) : NULL;
    const char *tok = jstr(json_object_get(p->env, "GH_TOKEN") ? p->env : NULL, "GH_TOKEN");
    if (!dest || host_clone(repo, jstr(req, "dotfiles_branch"), tok, dest, &why) < 0) {
      json_array_append_new(p->report,
                            prov_step("dotfiles", "failed", (now_seconds() - t0) * 1000, "clone on the host", why ? why : "no temp dir"));
      free(why);
      if (tmp) rm_rf(tmp, NULL);
      r->failed = true;
      return;
    }
    const char *target = jstr(req, "dotfiles_target");
    if (!target) target = "~/.dotfiles";
    if (!(str_has_prefix(target, "~/") || target[0] == '/') || strstr(target, "..")) {
      json_array_append_new(p->report,
                            prov_step("dotfiles", "failed", 0, "dotfiles_target", "must be ~/... or an absolute path without `..`"));
      rm_rf(tmp, NULL);
      r->failed = true;
      return;
    }
    cleanup_close int tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cleanup_close int dfd = openat(tfd, "dotfiles", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    rm_rf_at(dfd, ".git", NULL);
    struct cfs_op op = {.kind = CFS_COPY, .path = target, .host_dirfd = tfd, .host_name = "dotfiles"};
    berth_error_t e = NULL;
    int rc = container_fs_apply(r->name, NULL, &op, 1, &e);
    if (rc < 0) {
      json_array_append_new(p->report, prov_step("dotfiles", "failed", (now_seconds() - t0) * 1000, "copy into the container", e->msg));
      berth_error_free(e);
      rm_rf(tmp, NULL);
      r->failed = true;
      return;
    }
    /* the install script, in the guide's order */
    const char *script = jstr(req, "dotfiles_script");
    const char *cands[] = {"install.sh", "setup.sh", "bootstrap.sh", "script/setup", NULL};
    const char *chosen = NULL;
    struct stat st;
    if (script) {
      if (strstr(script, "..") || script[0] == '/' || fstatat(dfd, script, &st, 0) < 0) {
        json_array_append_new(
            p->report, prov_step("dotfiles", "failed", (now_seconds() - t0) * 1000, "dotfiles_script", "not found in the repository"));
        rm_rf(tmp, NULL);
        r->failed = true;
        return;
      }
      chosen = script;
    } else
      for (int i = 0; cands[i] && !chosen; i++)
        if (fstatat(dfd, cands[i], &st, 0) == 0 && S_ISREG(st.st_mode)) chosen = cands[i];
    bool has_make = !chosen && fstatat(dfd, "Makefile", &st, 0) == 0;
    cleanup_free char *tdir = str_has_prefix(target, "~/") ? xasprintf("$HOME/%s", target + 2) : strdup(target);
    if (chosen || has_make) {
      cleanup_free char *cmd =
          chosen ? xasprintf("cd \"%s\" && if [ -x './%s' ]; then './%s'; else sh './%s'; fi", tdir, chosen, chosen, chosen)
                 : xasprintf("cd \"%s\" && make", tdir);
      shell_step(r, "dotfiles", cmd, NULL, 0, 900);
      json_t *last = json_array_get(p->report, json_array_size(p->report) - 1);
      cleanup_free char *d = xasprintf("cloned %s into %s, ran %s; %s", repo, target, chosen ? chosen : "make",
                                       json_string_value(json_object_get(last, "detail")) ?: "");
      json_object_set_new(last, "detail", json_string(d));
      rm_rf(tmp, NULL);
      if (r->failed || !json_object_size(inl)) return;
      json_array_remove(p->report, json_array_size(p->report) - 1); /* merged below with the inline files */
      buf_append(&detail, d, strlen(d));
    } else {
      /* no script: link the known dotfiles into ~ */
      struct cfs_op links[16];
      size_t n = 0;
      struct buf names = {0};
      for (const char **f = SYMLINKABLE; *f && n < 16; f++) {
        if (fstatat(dfd, *f, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        char *path = xasprintf("~/%s", *f);
        char *tgt = xasprintf("%s/%s", str_has_prefix(target, "~/") ? target + 2 : target, *f);
        links[n++] = (struct cfs_op){.kind = CFS_SYMLINK, .path = path, .data = tgt, .replace = true};
        if (names.len) buf_append(&names, " ", 1);
        buf_append(&names, *f, strlen(*f));
      }
      int lr = n ? container_fs_apply(r->name, NULL, links, n, &e) : 0;
      for (size_t i = 0; i < n; i++) free((char *)links[i].path), free((char *)links[i].data);
      rm_rf(tmp, NULL);
      if (lr < 0) {
        json_array_append_new(p->report, prov_step("dotfiles", "failed", (now_seconds() - t0) * 1000, "symlinking dotfiles", e->msg));
        berth_error_free(e);
        buf_free(&names);
        r->failed = true;
        return;
      }
      cleanup_free char *d = xasprintf("cloned %s into %s; no install script: linked %s", repo, target, names.len ? names.data : "nothing");
      buf_append(&detail, d, strlen(d));
      buf_free(&names);
    }
  }
  if (json_object_size(inl)) {
    size_t n = json_object_size(inl), i = 0;
    struct cfs_op *ops = calloc(n, sizeof *ops);
    char **paths = calloc(n, sizeof *paths);
    const char *k;
    json_t *v;
    bool bad = false;
    json_object_foreach(inl, k, v) {
      if (!inline_path_ok(k)) bad = true;
      paths[i] = xasprintf("~/%s", k);
      ops[i] = (struct cfs_op){
          .kind = CFS_WRITE, .path = paths[i], .data = json_string_value(v), .len = json_string_length(v), .mode = 0644, .replace = true};
      i++;
    }
    berth_error_t e = NULL;
    int rc = bad ? berth_error(&e, -EINVAL, "dotfiles_inline paths are relative to ~ and may not contain `..`")
                 : container_fs_apply(r->name, NULL, ops, n, &e);
    for (i = 0; i < n; i++) free(paths[i]);
    free(paths);
    free(ops);
    if (rc < 0) {
      json_array_append_new(p->report, prov_step("dotfiles", "failed", (now_seconds() - t0) * 1000, "inline files", e->msg));
      berth_error_free(e);
      buf_free(&detail);
      r->failed = true;
      return;
    }
    cleanup_free char *d = xasprintf("%s%s%zu inline file(s) written", detail.len ? detail.data : "", detail.len ? "; " : "", n);
    buf_free(&detail);
    buf_append(&detail, d, strlen(d));
  }
  json_array_append_new(p->report, prov_step("dotfiles", "success", (now_seconds() - t0) * 1000, detail.data, NULL));
  buf_free(&detail);
}

static void step_profile(struct runner *r) {
  struct prov *p = r->p;
  if (!p->profile) {
    json_array_append_new(p->report, prov_step("purpose_profile", "skipped", 0, "no purpose", NULL));
    return;
  }
  bool failed_before = r->failed;
  /* try-repo: the repository goes in first, so that a failed step later
   * never leaves the agent an empty workspace */
  const char *repo_setup = NULL;
  cleanup_free char *repo_dst = NULL;
  if (p->repo_dir) {
    double t0 = now_seconds();
    cleanup_close int tfd = open(p->repo_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const char *wd = jstr(p->req, "workdir") ? jstr(p->req, "workdir") : "/workspace";
    repo_dst = xasprintf("%s/%s", wd, p->repo_name);
    struct cfs_op op = {.kind = CFS_COPY, .path = repo_dst, .host_dirfd = tfd, .host_name = p->repo_name};
    berth_error_t e = NULL;
    if (container_fs_apply(r->name, NULL, &op, 1, &e) < 0) {
      json_array_append_new(p->report,
                            prov_step("purpose_profile:repo", "failed", (now_seconds() - t0) * 1000, "copy the clone in", e->msg));
      berth_error_free(e);
      r->failed = true;
    } else {
      repo_setup = jstr(json_object_get(json_object_get(p->profiles, "try-repo"), "repo_setup"), p->lang);
      cleanup_free char *d = xasprintf("%s (detected %s) in %s", p->repo_name, p->lang, repo_dst);
      json_array_append_new(p->report, prov_step("purpose_profile:repo", "success", (now_seconds() - t0) * 1000, d, NULL));
    }
  }
  if (failed_before) {
    json_array_append_new(p->report, prov_step("purpose_profile", "skipped", 0, "an earlier step failed", NULL));
    return;
  }
  json_t *pk = json_object_get(p->profile, "packages");
  struct buf pkgs = {0};
  size_t i;
  json_t *v;
  json_array_foreach(pk, i, v) {
    if (!pkg_name_ok(json_string_value(v))) continue;
    buf_append(&pkgs, " ", 1);
    buf_append(&pkgs, json_string_value(v), json_string_length(v));
  }
  /* package installs hold Docker's default capability set (inside the
   * container's user namespace when rootless); workloads do not */
  uint64_t caps = security_setup_caps();
  if (pkgs.len) {
    cleanup_free char *cmd = xasprintf(
        "if command -v apt-get >/dev/null; then export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q --no-install-recommends%s; "
        "elif command -v apk >/dev/null; then apk add --no-cache%s; "
        "elif command -v dnf >/dev/null; then dnf install -y%s; "
        "elif command -v microdnf >/dev/null; then microdnf install -y%s; "
        "else echo 'no supported package manager (apt-get, apk, dnf) in this image' >&2; exit 100; fi",
        pkgs.data, pkgs.data, pkgs.data, pkgs.data);
    shell_step(r, "purpose_profile:packages", cmd, "/", caps, 1800);
  }
  bool had_pkgs = pkgs.len > 0;
  buf_free(&pkgs);
  json_array_foreach(json_object_get(p->profile, "setup"), i, v) {
    char nm[64];
    snprintf(nm, sizeof nm, "purpose_profile:setup[%zu]", i);
    shell_step(r, nm, json_string_value(v), NULL, caps, 1800);
  }
  /* the repository's setup runs as the workload does: no capabilities
   * for code berth did not write */
  if (repo_setup) shell_step(r, "purpose_profile:repo_setup", repo_setup, repo_dst, 0, 1800);
  if (!had_pkgs && !json_array_size(json_object_get(p->profile, "setup")) && !p->repo_dir) {
    char d[128];
    snprintf(d, sizeof d, "profile `%s`: nothing to install", p->lang ? p->lang : p->purpose);
    json_array_append_new(p->report, prov_step("purpose_profile", "success", 0, d, NULL));
  }
}

void provision_run(struct prov *p, const char *container, bool *failed) {
  struct runner r = {.p = p, .name = container};
  json_array_append(p->report, p->env_step);
  step_git(&r);
  json_array_append(p->report, p->gh_step);
  step_ssh(&r);
  step_dotfiles(&r);
  step_profile(&r);
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(p->req, "setup_commands"), i, v) {
    char nm[64];
    snprintf(nm, sizeof nm, "setup_command[%zu]", i);
    /* the caller's own commands: the setup set, so that `apt-get install` works */
    shell_step(&r, nm, json_string_value(v), NULL, security_setup_caps(), 1800);
  }
  *failed = r.failed;
}

void provision_run_service(struct prov *p) {
  json_array_append(p->report, p->env_step);
  json_array_append_new(p->report, prov_step("provisioning", "skipped", 0,
                                             "a service container runs its image's command: "
                                             "no credentials, dotfiles or profile are carried in (a purpose, setup_commands "
                                             "or keep_alive make a dev container)",
                                             NULL));
}

bool provision_wants_dev(const struct prov *p) {
  json_t *req = p->req;
  return p->profile || p->repo_dir || json_array_size(json_object_get(req, "setup_commands")) || jstr(req, "dotfiles_repo") ||
         json_object_size(json_object_get(req, "dotfiles_inline"));
}

bool provision_needs_container(const struct prov *p) {
  json_t *req = p->req;
  if (p->profile || p->repo_dir || json_array_size(json_object_get(req, "setup_commands"))) return true;
  if (p->credentials && (jbool(req, "forward_git", true) || jbool(req, "forward_ssh", false))) return true;
  return p->dotfiles && !jbool(req, "dotfiles_skip", false) &&
         (jstr(req, "dotfiles_repo") || json_object_size(json_object_get(req, "dotfiles_inline")));
}

void provision_free(struct prov *p) {
  if (p->repo_dir) rm_rf(p->repo_dir, NULL);
  free(p->repo_dir);
  free(p->repo_name);
  const char *k;
  json_t *v;
  json_object_foreach(p->env, k, v) if (json_is_string(v)) explicit_bzero((char *)json_string_value(v), json_string_length(v));
  json_decref(p->env);
  json_decref(p->mounts);
  json_decref(p->report);
  json_decref(p->profiles);
  json_decref(p->env_step);
  json_decref(p->gh_step);
}
