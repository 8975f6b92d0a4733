/* Container create and run: the container's directory, record and
 * generated files, its spec, cgroup and network, then the monitor (create)
 * or the launch in the CLI (run: berth run waits for the command). The
 * process diagram is in launch.c. */
#define _GNU_SOURCE
#include "runtime/container.h"
#include "runtime/container_internal.h"
#include "network/network.h"
#include "network/egress.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "berth.h"
#include "bundle/cdi.h"
#include "util/config.h"
#include "runtime/disk.h"
#include "preflight/preflight.h"
#include "util/security.h"
#include "bundle/spec.h"
#include "image/store.h"

/* ---------- create ---------- */
/* resolv.conf on berth0: the host's, with a loopback resolver on
 * 127.0.0.1 (a local caching daemon) reached through the gateway address */
char *hostbr_resolv(void) {
  cleanup_free char *hv = NULL;
  struct buf b = {0};
  /* systemd-resolved's stub listens on 127.0.0.53 only, which the gateway
   * does not reach: take the upstream servers it uses (as Docker does) */
  if (read_file("/etc/resolv.conf", 1 << 16, &hv, NULL, NULL) == 0 && strstr(hv, "nameserver 127.0.0.53")) {
    cleanup_free char *up = NULL;
    if (read_file("/run/systemd/resolve/resolv.conf", 1 << 16, &up, NULL, NULL) == 0 && strstr(up, "nameserver")) {
      free(hv);
      hv = up;
      up = NULL;
    }
  }
  if (hv) {
    char *save = NULL;
    for (char *l = strtok_r(hv, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
      char ns[64];
      cleanup_free char *line = (sscanf(l, "nameserver %63s", ns) == 1 && (str_has_prefix(ns, "127.") || !strcmp(ns, "::1")))
                                    ? xstrdup("nameserver " HB_GATEWAY)
                                    : xstrdup(l);
      buf_append(&b, line, strlen(line));
      buf_append(&b, "\n", 1);
    }
  }
  if (!b.len) buf_append(&b, "nameserver " HB_GATEWAY "\n", strlen("nameserver " HB_GATEWAY "\n"));
  buf_append(&b, "", 1);
  return b.data;
}

/* into a new container directory (written in place: nothing reads them yet) */
/* again: a start of a stopped container (the files are there) */
static int gen_write(const char *p, const char *v, bool again, berth_error_t *err) {
  return again ? write_file_replace(p, v, strlen(v), 0644, false, err) : write_file_new(p, v, strlen(v), 0644, err);
}

/* egress: a policy's resolver answers the container's DNS */
int write_gen_files(const char *cdir, const char *name, const char *network, const char *ip, bool hostbr, bool egress, bool again,
                    berth_error_t *err) {
  /* a named network's members also go through slirp4netns for the outside */
  bool host_net = !strcmp(network, "host"), bridge = !strcmp(network, "bridge") || net_is_named(network);
  cleanup_free char *etc = xasprintf("%s/etc", cdir);
  if (mkdir(etc, 0755) < 0 && errno != EEXIST) return berth_error(err, errno, "create `%s`", etc);
  cleanup_free char *hn = xasprintf("%s/hostname", etc);
  cleanup_free char *hnv = xasprintf("%s\n", name);
  if (gen_write(hn, hnv, again, err) < 0) return -1;
  cleanup_free char *hosts = xasprintf("%s/hosts", etc);
  cleanup_free char *hv = xasprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n%s",
                                    ip       ? ip
                                    : bridge ? NET_GUEST_ADDR
                                             : "127.0.1.1",
                                    name,
                                    hostbr   ? HB_GATEWAY "\thost.berth.internal\n"
                                    : bridge ? NET_HOST_ADDR "\thost.berth.internal\n"
                                             : "");
  if (gen_write(hosts, hv, again, err) < 0) return -1;
  cleanup_free char *rc = xasprintf("%s/resolv.conf", etc);
  cleanup_free char *rv = NULL;
  if (host_net && read_file("/etc/resolv.conf", 1 << 16, &rv, NULL, NULL) == 0) {
  } else if (egress && bridge) {
    rv = strdup("# berth: an egress policy: berth's resolver answers the names it allows\nnameserver " EGRESS_RESOLVER "\n");
  } else if (hostbr) {
    rv = hostbr_resolv();
  } else if (bridge) {
    rv = strdup("nameserver " NET_DNS_ADDR "\n");
  } else {
    free(rv);
    rv = strdup("# berth: this container has no external network (network: none)\n");
  }
  return gen_write(rc, rv, again, err);
}

/* The image's record and config. On success *held is the store, open
 * shared: a prune or rmi (exclusive) waits until the container's
 * layers.json names the layers, and then keeps them (store_close it). */
static int pull_if_absent(const struct create_opts *o, json_t **rec, json_t **cfg, struct store *held, berth_error_t *err) {
  if (store_open(held, false, err) < 0) return -1;
  int r = store_lookup(held, o->image, rec, cfg, err);
  if (r == 0) return 0;
  store_close(held);
  if (!err || !*err || (*err)->status != ENOENT) return r;
  berth_error_clear(err);
  struct berth_pull_options po = {.platform = o->platform, .quiet = o->quiet};
  char *res = NULL;
  if (berth_image_pull(o->image, &po, &res, err) < 0) return -1;
  free(res);
  if (store_open(held, false, err) < 0) return -1;
  r = store_lookup(held, o->image, rec, cfg, err);
  if (r < 0) store_close(held);
  return r;
}

/* The caller's environment values, sealed in a memfd (never on disk). */
static json_t *env_array(json_t *env) {
  json_t *arr = json_array();
  const char *k;
  json_t *v;
  json_object_foreach(env, k, v) if (json_is_string(v)) {
    cleanup_free char *kv = xasprintf("%s=%s", k, json_string_value(v));
    json_array_append_new(arr, json_string(kv));
  }
  return arr;
}

int env_memfd(json_t *env, berth_error_t *err) {
  json_t *arr = env_array(env);
  char *txt = json_dumps(arr, JSON_COMPACT);
  json_decref(arr);
  int fd = memfd_create("berth-env", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || !txt) {
    free(txt);
    return berth_error(err, errno, "memfd for the environment");
  }
  size_t len = strlen(txt);
  bool ok = write(fd, txt, len) == (ssize_t)len;
  explicit_bzero(txt, len);
  free(txt);
  if (!ok || fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
    close(fd);
    return berth_error(err, errno, "seal the environment memfd");
  }
  return fd;
}

/* the name is taken by a create that died: free it */
static bool reap_named(const char *dir, const char *name) {
  json_t *st = state_read(name);
  bool r = reap_stale_create(dir, name, st);
  json_decref(st);
  errno = EEXIST;
  return r;
}

/* the monitor's arguments for this create */
static struct monitor_args monitor_args_of(struct create_ctx *c) {
  return (struct monitor_args){.name = c->name,
                               .cdir = c->cdir,
                               .spec = c->spec,
                               .cgname = c->cgname,
                               .rootless = c->cfg->rootless,
                               .own_net = strcmp(c->network, "host") != 0,
                               .report_fd = -1,
                               .lock_fd = -1,
                               .env_fd = c->env_fd,
                               .bridge = c->slirp,
                               .port_fds = c->port_fds,
                               .id = c->id,
                               .ports = c->o->ports,
                               .named = net_is_named(c->network),
                               .lease = &c->lease,
                               .net_single = c->lease.single,
                               .ip = c->hostbr ? c->hb_ip : c->lease.ip,
                               .hostbr = c->hostbr,
                               .run_go = -1,
                               .pty_sock = -1,
                               .out_fd = -1,
                               .err_fd = -1,
                               .egress = c->o->egress};
}

/* Spawn the monitor and wait for its verdict on the container's setup. */
int start_monitor(struct create_ctx *c, berth_error_t *err) {
  int rp[2];
  if (pipe2(rp, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  fflush(stdout);
  fflush(stderr);
  pid_t mid = fork();
  if (mid < 0) {
    close(rp[0]), close(rp[1]);
    return berth_error(err, errno, "fork");
  }
  if (mid == 0) {
    close(rp[0]);
    close(c->lock_fd); /* the monitor must not hold the create's lock */
    setsid();
    pid_t m2 = fork();
    if (m2 != 0) _exit(m2 < 0);
    struct monitor_args ma = monitor_args_of(c);
    ma.report_fd = rp[1];
    ma.cg_made = c->cg;
    ma.service = c->svc_argv ? &c->svc : NULL;
    ma.resident = c->resident;
    ma.expires_at = c->expires_at;
    monitor_main(&ma);
    _exit(0);
  }
  close(rp[1]);
  waitpid(mid, NULL, 0);
  struct buf rb = {0};
  char tmp[4096];
  ssize_t n;
  while ((n = read(rp[0], tmp, sizeof tmp)) > 0) {
    buf_append(&rb, tmp, (size_t)n);
    if (tmp[n - 1] == '\n') break; /* the whole verdict (JSON has no raw newline) */
  }
  close(rp[0]);
  json_t *rep = rb.data ? json_loads(rb.data, 0, NULL) : NULL;
  buf_free(&rb);
  int r = 0;
  if (!rep) r = berth_error(err, -EIO, "container monitor died during setup");
  else if (!json_is_true(json_object_get(rep, "ok")))
    r = berth_error(err, -EIO, "%s", json_string_value(json_object_get(rep, "error")) ?: "container failed to start");
  else {
    if (json_object_get(rep, "note")) c->note = strdup(json_string_value(json_object_get(rep, "note")));
  }
  json_decref(rep);
  return r;
}

/* berth run: launch from here; this process is the container's monitor
 * until its command ends (run_finish). */
static int run_start(struct create_ctx *c, berth_error_t *err) {
  const struct exec_opts *eo = c->o->run;
  int go[2] = {-1, -1}, sock[2] = {-1, -1}, op[2] = {-1, -1}, ep[2] = {-1, -1};
  int r = 0;
  if (pipe2(go, O_CLOEXEC) < 0 || (eo->tty && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock) < 0) ||
      (eo->capture && !eo->tty && (pipe2(op, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0)))
    r = berth_error(err, errno, "pipe");
  json_t *envkv = env_array(c->o->env);
  if (r == 0) {
    struct monitor_args ma = monitor_args_of(c);
    ma.lock_fd = c->lock_fd;
    ma.run = eo;
    ma.run_env = envkv;
    ma.run_go = go[0], ma.pty_sock = sock[1], ma.out_fd = op[1], ma.err_fd = ep[1];
    ma.volatile_upper = c->o->remove_on_exit;
    fflush(stdout);
    fflush(stderr);
    /* a pipe to an init that failed must not kill us */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGPIPE, &ign, &old);
    r = launch(&ma, &c->L, err);
    sigaction(SIGPIPE, &old, NULL);
  }
  json_decref(envkv);
  int *theirs[] = {&go[0], &sock[1], &op[1], &ep[1]}, *ours[] = {&go[1], &sock[0], &op[0], &ep[0]};
  for (int i = 0; i < 4; i++) {
    if (*theirs[i] >= 0) close(*theirs[i]);
    if (r < 0 && *ours[i] >= 0) close(*ours[i]), *ours[i] = -1;
  }
  c->run_go_w = go[1], c->pty_sock = sock[0], c->out_r = op[0], c->err_r = ep[0];
  if (r < 0) return -1;
  /* the command may start: the bookkeeping below overlaps it */
  char g = 1;
  if (write(c->run_go_w, &g, 1) != 1) {}
  close(c->run_go_w);
  c->run_go_w = -1;
  berth_trace("run: go");
  {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/ns/mnt", (int)c->L.pid);
    c->mnt_fd = open(p, O_RDONLY | O_CLOEXEC);
  }
  if (c->cfg->rootless) { /* outlives init: the removal runs in it, no newuidmap round */
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/ns/user", (int)c->L.pid);
    c->userns_fd = open(p, O_RDONLY | O_CLOEXEC);
  }
  poststart(c->spec, c->name, c->cdir, c->L.pid, &c->L.note);
  record_running(c->name, &c->L, getpid());
  c->cg = json_incref(c->L.cg);
  if (c->L.note) c->note = strdup(c->L.note);
  return 0;
}

/* Everything after the container directory exists; the caller undoes it all on failure. */
/* A seccomp profile of the user's own for the workloads: compiled now (a
 * bad one fails the create before anything runs), kept as
 * <cdir>/seccomp.bpf, and written into the spec (linux.seccomp) with the
 * program's path (annotation berth.seccomp) for init and exec to load.
 * Init itself keeps berth's filter. */
static int seccomp_for_container(struct create_ctx *c, const char *path, berth_error_t *err) {
  cleanup_free char *txt = NULL;
  size_t len = 0;
  if (read_file(path, 1 << 20, &txt, &len, err) < 0) return berth_error_wrap(err, "seccomp profile `%s`", path);
  json_error_t je;
  json_t *p = json_loadb(txt, len, JSON_REJECT_DUPLICATES, &je);
  if (!p) return berth_error(err, -EINVAL, "seccomp profile `%s`: line %d: %s", path, je.line, je.text);
  cleanup_free char *bpf = NULL;
  size_t n = 0;
  cleanup_free char *bp = xasprintf("%s/seccomp.bpf", c->cdir);
  if (security_seccomp_bpf(p, &bpf, &n, err) < 0 || write_file_new(bp, bpf, n, 0600, err) < 0) {
    json_decref(p);
    return berth_error_wrap(err, "`%s`", path);
  }
  json_t *linux_ = json_object_get(c->spec, "linux"), *ann = json_object_get(c->spec, "annotations");
  if (!json_is_object(linux_) || !json_is_object(ann)) {
    json_decref(p);
    return berth_error(err, -EINVAL, "container spec lacks linux or annotations");
  }
  json_object_set_new(linux_, "seccomp", p);
  json_object_set_new(ann, "berth.seccomp", json_string(bp));
  return 0;
}

/* ---------- the main process ---------- */
/* A shell alone (flags at most, no -c): what an image gives when it is
 * meant to be entered, not run. */
static bool bare_shell(json_t *argv) {
  size_t n = json_array_size(argv);
  const char *a0 = n ? json_string_value(json_array_get(argv, 0)) : NULL;
  if (!a0) return true;
  const char *b = strrchr(a0, '/') ? strrchr(a0, '/') + 1 : a0;
  static const char *shells[] = {"sh", "bash", "zsh", "ash", "dash", "ksh", "mksh", "fish", NULL};
  bool sh = false;
  for (int i = 0; shells[i]; i++) sh |= !strcmp(b, shells[i]);
  if (!sh) return false;
  for (size_t i = 1; i < n; i++) {
    const char *x = json_string_value(json_array_get(argv, i));
    if (!x || x[0] != '-' || !strcmp(x, "-c")) return false;
  }
  return true;
}

static void append_strings(json_t *to, json_t *from) {
  size_t i;
  json_t *v;
  json_array_foreach(from, i, v) if (json_is_string(v)) json_array_append(to, v);
}

/* The service's command, or NULL for a dev container (see create_opts). */
static int resolve_main(const struct create_opts *o, json_t *icc, json_t **argv, berth_error_t *err) {
  *argv = NULL;
  bool given = o->command || o->entrypoint;
  if (given && o->keep_alive)
    return berth_error(err, -EINVAL,
                       "keep_alive and a command exclude each other: a command given runs as the main "
                       "process, keep_alive keeps berth's init alone; drop one");
  if (!given && (o->keep_alive || o->dev_needed)) return 0;
  json_t *a = json_array();
  append_strings(a, o->entrypoint ? o->entrypoint : json_object_get(icc, "Entrypoint"));
  /* Docker's rule: a new entrypoint drops the image's Cmd */
  append_strings(a, o->command ? o->command : o->entrypoint ? NULL : json_object_get(icc, "Cmd"));
  if (!given && bare_shell(a)) {
    json_decref(a);
    return 0;
  }
  if (!json_array_size(a) || !*json_string_value(json_array_get(a, 0))) {
    json_decref(a);
    return berth_error(err, -EINVAL, "no command to run: the entrypoint and command are empty");
  }
  *argv = a;
  return 0;
}

int container_parse_restart(const char *s, char *policy, size_t plen, int *max, berth_error_t *err) {
  *max = 0;
  const char *r = s && *s ? s : "no";
  static const char *ok[] = {"no", "always", "unless-stopped", NULL};
  for (int i = 0; ok[i]; i++)
    if (!strcmp(r, ok[i])) return snprintf(policy, plen, "%s", r), 0;
  if (str_has_prefix(r, "on-failure") && (!r[10] || r[10] == ':')) {
    if (r[10]) {
      char *end;
      long n = strtol(r + 11, &end, 10);
      if (!r[11] || *end || n < 0 || n > 1000000)
        return berth_error(err, -EINVAL, "restart policy `%.60s`: on-failure:N takes a count of restarts (0: no limit)", s);
      *max = (int)n;
    }
    return snprintf(policy, plen, "on-failure"), 0;
  }
  return berth_error(err, -EINVAL, "restart policy `%.60s`: use no, on-failure[:N], always or unless-stopped", s);
}

/* The variables kept for a later start: the ones named in env_keep (all
 * when NULL), in <cdir>/env.json, 0600 in the 0700 container directory. */
static int env_keep_write(struct create_ctx *c, berth_error_t *err) {
  json_t *kept = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(c->o->env, k, v) {
    bool keep = !c->o->env_keep;
    size_t i;
    json_t *n;
    json_array_foreach(c->o->env_keep, i, n) keep |= !strcmp(json_string_value(n) ?: "", k);
    if (keep && json_is_string(v)) json_object_set(kept, k, v);
  }
  int r = 0;
  if (json_object_size(kept)) {
    cleanup_free char *p = xasprintf("%s/env.json", c->cdir);
    char *txt = json_dumps(kept, JSON_COMPACT);
    r = txt ? write_file_new(p, txt, strlen(txt), 0600, err) : berth_error(err, -ENOMEM, "env");
    if (txt) explicit_bzero(txt, strlen(txt)), free(txt);
  }
  json_decref(kept);
  return r;
}

/* the main process's record, and its start options */
static int main_state(struct create_ctx *c, json_t *st, berth_error_t *err) {
  const struct create_opts *o = c->o;
  json_t *icc = json_object_get(c->icfg, "config");
  json_t *cmd = c->svc_argv ? json_incref(c->svc_argv) : NULL;
  if (!cmd && o->run && !o->remove_on_exit) { /* `berth run`: a start runs the command again, detached */
    cmd = json_array();
    for (char *const *a = o->run->argv; a && *a; a++) json_array_append_new(cmd, json_string(*a));
  }
  json_object_set_new(st, "mode", json_string(cmd ? "service" : "dev"));
  if (cmd) json_object_set_new(st, "command", cmd);
  const char *user = o->user ? o->user : o->run ? o->run->user : NULL;
  if (user) json_object_set_new(st, "user", json_string(user));
  if (jstr(icc, "StopSignal")) json_object_set_new(st, "stop_signal", json_string(jstr(icc, "StopSignal")));
  char policy[32];
  int max = 0;
  if (container_parse_restart(o->restart, policy, sizeof policy, &max, err) < 0) return -1;
  if (o->run && strcmp(policy, "no")) return berth_error(err, -EINVAL, "a restart policy needs a detached container (create, or run -d)");
  json_object_set_new(st, "restart", json_pack("{s:s, s:i}", "policy", policy, "max", max));
  json_object_set_new(st, "restart_count", json_integer(0));
  if (o->ttl > 0 && o->persistent)
    return berth_error(err, -EINVAL, "a ttl and persistent exclude each other: a persistent container is kept until removed");
  if (o->ttl > 0) {
    c->expires_at = (double)time(NULL) + (double)o->ttl;
    json_object_set_new(st, "expires_at", json_integer((json_int_t)c->expires_at));
  }
  if (o->session) json_object_set(st, "session", o->session);
  c->resident = c->svc_argv || strcmp(policy, "no") || o->ttl > 0;
  if (env_keep_write(c, err) < 0) return -1;
  if (c->svc_argv) {
    size_t n = json_array_size(c->svc_argv);
    c->svc_cargv = xmalloc0(sizeof(char *) * (n + 1));
    for (size_t i = 0; i < n; i++) c->svc_cargv[i] = (char *)json_string_value(json_array_get(c->svc_argv, i));
    /* a service's own process gets what setup steps get (Docker's default
     * set less CAP_MKNOD): an image's entrypoint may chown its data and
     * drop to its user; execs into it still get none */
    c->svc = (struct exec_opts){.name = c->name, .argv = c->svc_cargv, .user = o->user, .keep_caps = container_setup_caps(st)};
  }
  return 0;
}

static int create_in_dir(struct create_ctx *c, json_t **result, berth_error_t *err) {
  const struct create_opts *o = c->o;
  /* published ports first: one in use fails before anything runs */
  c->port_fds = xmalloc0(sizeof(int) * (json_array_size(o->ports) + 1));
  if (pf_bind(o->ports, c->port_fds, err) < 0) return -1;
  berth_trace("create: in dir");
  /* held for the whole create: a "creating" container whose lock is free
   * was left by a create that died (see reap_stale_create) */
  cleanup_free char *lockp = xasprintf("%s/lock", c->cdir);
  c->lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (c->lock_fd < 0) return berth_error(err, errno, "create `%s`", lockp);
  if (flock(c->lock_fd, LOCK_EX) < 0) return berth_error(err, errno, "lock `%s`", lockp);
  /* a size limit for the writable layer: upper/ and work/ on a filesystem of that size */
  const char *why = NULL;
  if (o->disk_limit > 0 && disk_limit_supported(&why)) {
    if (disk_setup(c->cdir, o->disk_limit, err) < 0) return -1;
    c->disk_on = true;
  } else if (o->disk_limit > 0)
    c->disk_note = xasprintf("disk limit not enforced: %s; the writable layer can grow to the free space of %s", why, c->cfg->data_dir);
  const char *sub[] = {"upper", "work", "rootfs"};
  for (int i = c->disk_on ? 2 : 0; i < 3; i++) {
    cleanup_free char *p = xasprintf("%s/%s", c->cdir, sub[i]);
    if (mkdir(p, 0755) < 0) return berth_error(err, errno, "create `%s`", p);
  }
  json_t *icc = json_object_get(c->icfg, "config");
  if (!o->run && resolve_main(o, icc, &c->svc_argv, err) < 0) return -1;
  /* a service works where its image says (Docker's default: /); the
   * caller's directory is bound only when asked for */
  const char *wdir = o->workdir;
  if (c->svc_argv && !wdir) wdir = jstr(icc, "WorkingDir") && *jstr(icc, "WorkingDir") ? jstr(icc, "WorkingDir") : "/";
  cleanup_free char *cwd = o->mount_cwd && (!c->svc_argv || o->mount_cwd_explicit) ? getcwd(NULL, 0) : NULL;
  struct spec_input si = {.name = c->name,
                          .cdir = c->cdir,
                          .image_record = c->img,
                          .image_config = c->icfg,
                          .workdir = wdir,
                          .mounts = o->mounts,
                          .env = o->env,
                          .cwd_mount = cwd,
                          .network = c->network,
                          .limits = o->limits,
                          .rootless = c->cfg->rootless};
  if (spec_generate(&si, &c->spec, err) < 0) return -1;
  if (c->cdi_edits && cdi_apply(c->spec, c->cdi_edits, err) < 0) return -1;
  const char *prof = o->seccomp_profile ? o->seccomp_profile : jstr(c->cfg->root, "seccomp_profile");
  if (prof && *prof && seccomp_for_container(c, prof, err) < 0) return -1;
  cleanup_free char *sp = xasprintf("%s/config.json", c->cdir);
  cleanup_free char *txt = json_dumps(c->spec, JSON_INDENT(2));
  if (write_file_new(sp, txt, strlen(txt), 0600, err) < 0) return -1;
  json_t *layers = json_array();
  size_t i;
  json_t *l;
  json_array_foreach(json_object_get(c->img, "layers"), i, l) json_array_append(layers, json_object_get(l, "digest"));
  cleanup_free char *lp = xasprintf("%s/layers.json", c->cdir);
  cleanup_free char *lt = json_dumps(layers, JSON_COMPACT);
  json_decref(layers);
  if (write_file_new(lp, lt, strlen(lt), 0600, err) < 0) return -1;
  store_close(&c->store); /* the layers are named: a prune keeps them now */
  c->store_held = false;
  /* the cgroup is named by instance: names repeat across users and data dirs */
  c->id = random_hex(6);
  const char *id = c->id;
  bool named = net_is_named(c->network);
  /* the address is recorded in the state below, under the network's lock */
  if (named && net_named_lease(c->network, container_network_members, &c->lease, err) < 0) return -1;
  c->hostbr = !strcmp(c->network, "bridge") && hb_usable();
  if (c->hostbr && hb_lease(id, c->hb_ip, err) < 0) return -1;
  const char *ip = named ? c->lease.ip : c->hostbr ? c->hb_ip : NULL;
  if (write_gen_files(c->cdir, c->name, c->network, ip, c->hostbr, o->egress != NULL, false, err) < 0) return -1;
  c->cgname = xasprintf("%s-%s", c->name, id);
  if (!o->run && cgroup_create(c->cgname, json_object_get(c->spec, "linux"), &c->cg, err) < 0) return -1;
  c->env_fd = env_memfd(o->env, err);
  if (c->env_fd < 0) return -1;
  c->slirp = (!strcmp(c->network, "bridge") && !c->hostbr) || named;
  const char *workdir = json_string_value(json_object_get(json_object_get(c->spec, "process"), "cwd"));
  json_t *st = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:b, s:s, s:s*, s:O, s:I, s:{s:I, s:I, s:f}, s:s}", "id", id, "name", c->name,
                         "status", state_status_name(STATUS_CREATING), "image", json_string_value(json_object_get(c->img, "name")),
                         "image_digest", json_string_value(json_object_get(c->img, "digest")), "mounts", json_object_get(c->spec, "mounts"),
                         "persistent", o->persistent, "network", c->network, "purpose", o->purpose, "cgroup", c->cg ? c->cg : json_null(),
                         "created", (json_int_t)time(NULL), "limits", "memory", (json_int_t)o->limits.memory, "pids",
                         (json_int_t)o->limits.pids, "cpus", o->limits.cpus, "workdir", workdir);
  if (!st) return berth_error(err, -ENOMEM, "state");
  if (ip) json_object_set_new(st, "ip", json_string(ip));
  if (o->disk_limit > 0)
    json_object_set_new(st, "disk",
                        json_pack("{s:I, s:b, s:s*}", "limit", (json_int_t)o->disk_limit, "enforced", c->disk_on, "note", c->disk_note));
  if (json_array_size(o->ports)) json_object_set(st, "ports", o->ports);
  if (o->egress) json_object_set(st, "egress", o->egress);
  if (json_array_size(o->devices)) json_object_set(st, "devices", o->devices);
  if (main_state(c, st, err) < 0) {
    json_decref(st);
    return -1;
  }
  /* a `berth run` one-shot: gone when its command ends (even if its launcher is killed) */
  if (o->run) json_object_set_new(st, "one_shot", json_true());
  if (o->run && o->remove_on_exit) json_object_set_new(st, "remove_on_exit", json_true());
  /* the first record in place (no temporary file and rename): a reader
   * that sees it half-written finds "creating" or nothing, and our lock
   * held (see reap_stale_create) */
  cleanup_free char *stp = xasprintf("%s/state.json", c->cdir);
  cleanup_free char *stt = json_dumps(st, JSON_INDENT(2) | JSON_SORT_KEYS);
  int r = stt ? write_file_new(stp, stt, strlen(stt), 0600, err) : berth_error(err, -ENOMEM, "state");
  json_decref(st);
  if (c->lease.lock_fd >= 0) close(c->lease.lock_fd); /* the namespace fds stay for the monitor */
  c->lease.lock_fd = -1;
  berth_trace("create: state written");
  if (r < 0 || (o->run ? run_start(c, err) : start_monitor(c, err)) < 0) return -1;
  berth_trace("create: monitor verdict");
  if (named) net_named_refresh(c->network, container_network_members); /* the others learn our name, we theirs */
  json_t *res = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:O, s:s}", "container", c->name, "container_id", id, "image",
                          json_string_value(json_object_get(c->img, "name")), "workdir", workdir, "network", c->network, "persistent",
                          o->persistent, "cgroup", c->cg, "mode", c->svc_argv ? "service" : "dev");
  if (c->svc_argv) json_object_set(res, "command", c->svc_argv);
  if (c->expires_at > 0) json_object_set_new(res, "expires_at", json_integer((json_int_t)c->expires_at));
  cleanup_free char *cc = xasprintf("berth exec -it %s /bin/sh", c->name);
  json_object_set_new(res, "connect_command", json_string(cc));
  if (c->note) json_object_set_new(res, "notes", json_pack("[s]", c->note));
  if (o->egress) json_object_set(res, "egress", o->egress);
  if (json_array_size(o->devices)) json_object_set(res, "devices", o->devices);
  if (json_array_size(c->cdi_notes)) {
    if (!json_object_get(res, "notes")) json_object_set_new(res, "notes", json_array());
    json_array_extend(json_object_get(res, "notes"), c->cdi_notes);
  }
  if (o->disk_limit > 0) {
    json_object_set_new(res, "disk", json_pack("{s:I, s:b}", "limit", (json_int_t)o->disk_limit, "enforced", c->disk_on));
    if (c->disk_note) {
      if (!json_object_get(res, "notes")) json_object_set_new(res, "notes", json_array());
      json_array_append_new(json_object_get(res, "notes"), json_string(c->disk_note));
    }
  }
  *result = res;
  return 0;
}

static volatile sig_atomic_t run_sig;
static void run_on_sig(int s) { run_sig = s; }

/* berth run: let the command go, pass its stdio and signals, wait for the
 * container's end (init exits with the command's status), then remove or
 * record it. */
static void run_finish(struct create_ctx *c, struct exec_result *res) {
  const struct exec_opts *eo = c->o->run;
  pid_t pid = c->L.pid;
  int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  struct sigaction old[6], sa = {.sa_handler = run_on_sig};
  /* a terminal's ^C reaches the command as a byte (raw mode); captured
   * output is for programs: a signal ends us, and init with us */
  bool fwd = !eo->tty && !eo->capture;
  for (int i = 0; fwd && i < 6; i++) sigaction(sigs[i], &sa, &old[i]);
  if (eo->tty) {
    int master = exec_recv_fd(c->pty_sock);
    if (master >= 0) {
      exec_relay_pty(master, pid);
      close(master);
    }
  } else if (eo->capture) {
    exec_collect(c->out_r, c->err_r, res, eo->capture_max);
    c->out_r = c->err_r = -1;
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) {
      st = 125 << 8;
      break;
    }
    if (run_sig) kill(pid, run_sig), run_sig = 0;
  }
  for (int i = 0; fwd && i < 6; i++) sigaction(sigs[i], &old[i], NULL);
  res->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  berth_trace("run: exited %d", res->exit_code);
  if (c->o->remove_on_exit) {
    poststop(c->name, c->cdir, c->spec); /* the spec in hand: no read of config.json per run */
    /* the name is free when we return; the unmounts, the cgroup and the
     * files go with a detached child */
    json_t *out = NULL;
    berth_error_t e = NULL;
    struct rm_later later = {.hold_fd = c->mnt_fd};
    if (remove_container(c->name, c->id, c->userns_fd, true, &later, &out, &e) < 0) {
      berth_warn("removing %s: %s", c->name, e->msg);
      berth_error_free(e);
    }
    if (later.hold_fd < 0) c->mnt_fd = -1; /* handed over */
    json_decref(later.cg);
    json_decref(out);
  } else {
    cleanup_free char *who = xasprintf("%s:%s", c->name, c->id);
    container_monitor_exit(who, res->exit_code);
  }
  if (c->mnt_fd >= 0) close(c->mnt_fd);
  c->mnt_fd = -1;
  berth_trace("run: cleaned up");
}

static int create_or_run(const struct create_opts *o, struct exec_result *res, json_t **result, berth_error_t *err);

/* `gpu` asked for GPUs that CDI cannot give: what preflight's gpu check
 * says about this host (none at all, or no spec, and the command that
 * writes one) leads the message */
static void gpu_explain(berth_error_t *err) {
  json_t *chk = preflight_gpu_check();
  if (!json_is_true(json_object_get(chk, "passed")) && err && *err) {
    const char *fix = jstr(chk, "fix");
    cleanup_free char *was = strdup((*err)->msg);
    int status = (*err)->status;
    berth_error_clear(err);
    berth_error(err, status == EINVAL ? -EINVAL : -ENOENT, "gpu: %s; %s%s%s (%s)", jstr(chk, "detail") ?: "", jstr(chk, "guidance") ?: "",
                fix ? "; run: " : "", fix ? fix : "", was);
  }
  json_decref(chk);
}

int container_create(const struct create_opts *o, json_t **result, berth_error_t *err) {
  if (o->run) return berth_error(err, -EINVAL, "Failed to create container: a command to run needs container_run");
  return create_or_run(o, NULL, result, err);
}

int container_run(const struct create_opts *o, struct exec_result *res, json_t **result, berth_error_t *err) {
  memset(res, 0, sizeof *res);
  if (!o->run || !o->run->argv || !o->run->argv[0]) return berth_error(err, -EINVAL, "Failed to create container: a command is required");
  return create_or_run(o, res, result, err);
}

static int create_or_run(const struct create_opts *o, struct exec_result *res, json_t **result, berth_error_t *err) {
  struct berth_config *cfg = config_get(err);
  if (!cfg) return -1;
  if (!o->image || !*o->image) return berth_error(err, -EINVAL, "Failed to create container: an image is required");
  cleanup_free char *name = o->name ? strdup(o->name) : container_random_name(o->purpose);
  if (!container_name_valid(name))
    return berth_error(err, -EINVAL,
                       "Failed to create container: invalid container name `%.80s`: use 1-63 letters, "
                       "digits, `_`, `.` or `-`, not starting with `.` or `-`",
                       name);
  const char *network = o->network ? o->network : "none";
  if (net_is_named(network) && !container_name_valid(network))
    return berth_error(err, -EINVAL, "Failed to create container: invalid network name `%.80s`", network);
  if (json_array_size(o->ports) && (!strcmp(network, "none") || !strcmp(network, "host")))
    return berth_error(err, -EINVAL, "Failed to create container: published ports need the bridge network or a named network");
  if (net_ports_check(o->ports, err) < 0) return berth_error_wrap(err, "Failed to create container");
  /* probed only for a network that needs it (it opens /dev/net/tun) */
  if (strcmp(network, "none") && strcmp(network, "host") &&
      !(!strcmp(network, "bridge") ? hb_usable() || net_helper_available() : net_helper_available()))
    return berth_error(err, -ENOENT,
                       "Failed to create container: network `%s` needs slirp4netns and a usable "
                       "/dev/net/tun (%s), or use network \"none\" or \"host\"",
                       network, advice("see `berth preflight`", "see the preflight operation"));
  struct create_ctx c = {.o = o, .cfg = cfg, .name = name, .network = network, CREATE_CTX_NO_FDS};
  berth_trace("create: start");
  /* devices first: a name that does not resolve, or a node that cannot be
   * given, fails the create before anything exists */
  if (json_array_size(o->devices)) {
    struct cdi_registry reg;
    cdi_registry_load(NULL, &reg, NULL);
    c.cdi_notes = json_array();
    int r = cdi_resolve(&reg, o->devices, cfg->rootless, &c.cdi_edits, c.cdi_notes, err);
    cdi_registry_free(&reg);
    berth_trace("create: devices resolved");
    if (r < 0) {
      if (o->gpu) gpu_explain(err);
      json_decref(c.cdi_notes);
      return berth_error_wrap(err, "Failed to create container");
    }
  }
  if (pull_if_absent(o, &c.img, &c.icfg, &c.store, err) < 0) {
    json_decref(c.cdi_edits), json_decref(c.cdi_notes);
    return berth_error_wrap(err, "Failed to create container");
  }
  c.store_held = true;
  berth_trace("create: image found");
  cleanup_free char *parent = containers_dir(err);
  cleanup_free char *cdir = parent ? xasprintf("%s/%s", parent, name) : NULL;
  c.cdir = cdir;
  int ret = -1;
  if (!parent || mkdir_p(parent, 0700, err) < 0) {
  } else if (mkdir(cdir, 0700) < 0 && !(errno == EEXIST && reap_named(parent, name) && mkdir(cdir, 0700) == 0)) {
    if (errno == EEXIST) {
      cleanup_free char *how = berth_for_agents ? xasprintf("the destroy operation with container=\"%s\", or choose another name", name)
                                                : xasprintf("`berth rm -f %s`, or choose another name", name);
      berth_error(err, -EEXIST, "container name `%s` is already in use (remove it with %s)", name, how);
    } else berth_error(err, errno, "create `%s`", cdir);
  } else {
    ret = create_in_dir(&c, result, err);
    if (ret < 0) {
      /* a failed create leaves nothing: no cgroup, no directory, the name free */
      if (c.cg) cgroup_destroy(c.cg);
      berth_error_t e2 = NULL;
      if (remove_container_dir(cdir, &e2) < 0) {
        berth_warn("cleaning up `%s`: %s", cdir, e2->msg);
        berth_error_free(e2);
      }
    }
  }
  if (ret < 0) berth_error_wrap(err, "Failed to create container");
  if (c.store_held) store_close(&c.store);
  if (c.env_fd >= 0) close(c.env_fd);
  if (c.lock_fd >= 0) close(c.lock_fd);
  net_lease_close(&c.lease);
  pf_close(o->ports, c.port_fds);
  free(c.port_fds);
  if (ret < 0 && c.hostbr) hb_release(c.id);
  if (ret == 0 && o->run) run_finish(&c, res);
  int *fds[] = {&c.userns_fd, &c.run_go_w, &c.pty_sock, &c.out_r, &c.err_r, &c.mnt_fd};
  for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
    if (*fds[i] >= 0) close(*fds[i]);
  free(c.L.note);
  free(c.svc_cargv);
  json_decref(c.svc_argv);
  json_decref(c.L.cg);
  free(c.cgname);
  free(c.id);
  free(c.note);
  free(c.disk_note);
  json_decref(c.cg);
  json_decref(c.spec);
  json_decref(c.img);
  json_decref(c.icfg);
  json_decref(c.cdi_edits);
  json_decref(c.cdi_notes);
  return ret;
}
