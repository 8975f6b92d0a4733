/* Pulling images: resolve the manifest, then download, verify and unpack
 * layers in parallel, one thread per layer in flight, each streaming
 * network -> sha256 -> decompression -> tar in one pass. */
#define _GNU_SOURCE
#include "image/pull.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>

#include "berth.h"
#include "image/digest.h"
#include "image/ref.h"
#include "image/registry.h"
#include "util/userns.h"

/* ---------- progress display ---------- */
enum { L_WAIT, L_RUN, L_DONE, L_EXISTS, L_FAIL };
struct lstate {
  const struct layer_desc *l;
  _Atomic uint64_t bytes;
  _Atomic int state;
  double t0, t1;
};

struct job_queue {
  struct store *s;
  const struct manifest *m;
  struct layer_source *src;
  struct lstate *ls;
  size_t next;
  pthread_mutex_t mu;
  berth_error_t first_err;
  json_t *notes;
  _Atomic bool stop;
  bool tty, quiet;
};

/* the terminal's width (80 when it will not say) */
static int term_cols(void) {
  struct winsize ws;
  return ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20 ? ws.ws_col : 80;
}

/* One line per layer, redrawn in place: every line is cut to the
 * terminal's width (a line that wraps takes two rows, and the cursor-up
 * that redraws would then land in the wrong place), the bar shrinks first. */
static void render(struct job_queue *q, bool final, bool *drawn) {
  if (q->quiet) return;
  if (!q->tty) return;
  size_t n = q->m->n_layers;
  int cols = term_cols();
  if (*drawn) fprintf(stderr, "\033[%zuA", n);
  for (size_t i = 0; i < n; i++) {
    struct lstate *l = &q->ls[i];
    uint64_t b = atomic_load(&l->bytes), tot = l->l->size;
    char hb[32], ht[32], tail[128], line[512];
    human_size(b, hb, sizeof hb);
    human_size(tot, ht, sizeof ht);
    int st = atomic_load(&l->state);
    int bar = -1;
    if (st == L_EXISTS) snprintf(tail, sizeof tail, "already present");
    else if (st == L_DONE) snprintf(tail, sizeof tail, "done %s in %.1fs", ht, l->t1 - l->t0);
    else if (st == L_FAIL) snprintf(tail, sizeof tail, "failed");
    else if (st == L_WAIT) snprintf(tail, sizeof tail, "waiting");
    else {
      double el = now_seconds() - l->t0, rate = el > 0 ? b / el : 0;
      char hr[32];
      human_size((uint64_t)rate, hr, sizeof hr);
      int k = snprintf(tail, sizeof tail, "%s/%s %s/s", hb, ht, hr);
      if (rate > 0 && tot > b && k > 0 && (size_t)k < sizeof tail)
        snprintf(tail + k, sizeof tail - (size_t)k, " ETA %.0fs", (tot - b) / rate);
      /* digest (19), a space, [bar], a space, the figures; one column spare */
      bar = cols - 1 - 20 - 3 - (int)strlen(tail);
      if (bar > 30) bar = 30;
    }
    if (bar >= 5) {
      int fill = tot ? (int)(bar * (double)b / (double)tot) : 0;
      if (fill > bar) fill = bar;
      snprintf(line, sizeof line, "%.19s [%.*s%*s] %s", l->l->digest, fill, "==============================", bar - fill, "", tail);
    } else snprintf(line, sizeof line, "%.19s %s", l->l->digest, tail);
    if ((int)strlen(line) > cols - 1) line[cols - 1] = '\0';
    fprintf(stderr, "\r\033[2K%s\n", line);
  }
  (void) final;
  *drawn = true;
  fflush(stderr);
}

static void line_report(struct job_queue *q, struct lstate *l) {
  if (q->quiet || q->tty) return;
  int st = atomic_load(&l->state);
  char ht[32];
  human_size(l->l->size, ht, sizeof ht);
  if (st == L_EXISTS) fprintf(stderr, "%.19s: already present\n", l->l->digest);
  else if (st == L_DONE) fprintf(stderr, "%.19s: pulled %s in %.2fs\n", l->l->digest, ht, l->t1 - l->t0);
  else if (st == L_FAIL) fprintf(stderr, "%.19s: failed\n", l->l->digest);
}

/* ---------- one layer ---------- */
static void add_notes(struct job_queue *q, const struct layer_desc *l, const struct unpack_stats *st) {
  pthread_mutex_lock(&q->mu);
  if (st->devices_skipped)
    json_array_append_new(
        q->notes, json_sprintf("layer %.19s: %u device node(s) skipped (containers get /dev from berth)", l->digest, st->devices_skipped));
  if (st->chown_failed)
    json_array_append_new(q->notes, json_sprintf("layer %.19s: %u file(s) kept your ownership: no subordinate id range maps "
                                                 "their owners (see `berth preflight`)",
                                                 l->digest, st->chown_failed));
  if (st->neutralized)
    json_array_append_new(q->notes,
                          json_sprintf("layer %.19s: %u absolute or root entry name(s) confined to the layer", l->digest, st->neutralized));
  pthread_mutex_unlock(&q->mu);
}

/* Download and unpack into tmp/<work>; the caller renames or discards. */
static int unpack_to_tmp(struct job_queue *q, struct lstate *ls, int tmpfd, const char *work, struct unpack_stats *st, berth_error_t *err) {
  const struct layer_desc *l = ls->l;
  if (mkdirat(tmpfd, work, 0700) < 0) return berth_error(err, errno, "create `%s` in the store's tmp", work);
  cleanup_free char *diffrel = xasprintf("%s/diff", work);
  if (mkdirat(tmpfd, diffrel, 0755) < 0) return berth_error(err, errno, "create `%s`", diffrel);
  cleanup_close int dfd = openat(tmpfd, diffrel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return berth_error(err, errno, "open `%s`", diffrel);
  void *stream = NULL;
  if (q->src->open(q->src->ctx, l, &ls->bytes, &stream, err) < 0) return -1;
  struct unpack_opts uo = {.user_xattrs = q->s->user_xattrs};
  int r = unpack_layer(dfd, q->src->read, stream, l->digest, l->size, &uo, st, err);
  q->src->close(stream);
  if (r < 0) return -1;
  json_t *info = json_pack("{s:s, s:s, s:I, s:I, s:I}", "digest", l->digest, "media_type", l->media_type, "size", (json_int_t)l->size,
                           "unpacked_bytes", (json_int_t)st->bytes, "entries", (json_int_t)st->entries);
  cleanup_free char *itxt = json_dumps(info, JSON_COMPACT);
  json_decref(info);
  cleanup_free char *irel = xasprintf("%s/layer.json", work);
  cleanup_close int ifd = openat(tmpfd, irel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (ifd < 0 || !itxt || write(ifd, itxt, strlen(itxt)) < 0) return berth_error(err, errno, "write layer info");
  /* durable before it becomes visible */
  if (syncfs(dfd) < 0) return berth_error(err, errno, "sync layer");
  return 0;
}

static int do_layer(struct job_queue *q, struct lstate *ls, berth_error_t *err) {
  struct store *s = q->s;
  const struct layer_desc *l = ls->l;
  const char *hex = digest_hex(l->digest);
  cleanup_free char *lockp = store_path(s, "locks/layer-%s.lock", hex);
  cleanup_close int lk = lock_file(lockp, true, err);
  if (lk < 0) return -1;
  if (store_has_layer(s, l->digest)) {
    atomic_store(&ls->state, L_EXISTS);
    return 0;
  }
  cleanup_free char *tmpdir = store_path(s, "tmp");
  cleanup_close int tmpfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tmpfd < 0) return berth_error(err, errno, "open `%s`", tmpdir);
  /* leftovers of a killed pull of this layer: we hold its lock, so they are dead */
  cleanup_free char *work = xasprintf("layer-%s", hex);
  rm_rf_at(tmpfd, work, NULL);
  ls->t0 = now_seconds();
  atomic_store(&ls->state, L_RUN);
  struct unpack_stats st = {0};
  int r = unpack_to_tmp(q, ls, tmpfd, work, &st, err);
  if (r == 0) {
    cleanup_free char *dest = store_path(s, "layers/%s", hex);
    cleanup_free char *src = store_path(s, "tmp/%s", work);
    if (rename(src, dest) < 0) r = berth_error(err, errno, "move layer into `%s`", dest);
  }
  if (r < 0) {
    atomic_store(&ls->state, L_FAIL);
    rm_rf_at(tmpfd, work, NULL);
    return -1;
  }
  ls->t1 = now_seconds();
  atomic_store(&ls->state, L_DONE);
  add_notes(q, l, &st);
  return 0;
}

static void *worker(void *arg) {
  struct job_queue *q = arg;
  for (;;) {
    pthread_mutex_lock(&q->mu);
    size_t i = q->next++;
    pthread_mutex_unlock(&q->mu);
    if (i >= q->m->n_layers || atomic_load(&q->stop)) break;
    berth_error_t e = NULL;
    if (do_layer(q, &q->ls[i], &e) < 0) {
      atomic_store(&q->stop, true);
      pthread_mutex_lock(&q->mu);
      if (!q->first_err) q->first_err = e, e = NULL;
      pthread_mutex_unlock(&q->mu);
      berth_error_free(e);
    }
    line_report(q, &q->ls[i]);
  }
  return NULL;
}

int fetch_layers(struct store *s, const struct manifest *m, struct layer_source *src, bool quiet, json_t *notes, berth_error_t *err) {
  struct job_queue q = {.s = s, .m = m, .src = src, .notes = notes, .quiet = quiet};
  q.tty = !quiet && isatty(STDERR_FILENO) && !getenv("NO_PROGRESS");
  q.ls = xmalloc0(sizeof *q.ls * (m->n_layers ? m->n_layers : 1));
  pthread_mutex_init(&q.mu, NULL);
  for (size_t i = 0; i < m->n_layers; i++) q.ls[i].l = &m->layers[i];
  struct berth_config *cfg = config_get(NULL);
  long nthreads = cfg ? config_int(cfg, "max_concurrent_downloads", 3) : 3;
  if (nthreads < 1) nthreads = 1;
  if ((size_t)nthreads > m->n_layers) nthreads = (long)m->n_layers;
  pthread_t th[16];
  if (nthreads > 16) nthreads = 16;
  long started = 0;
  for (long i = 0; i < nthreads; i++)
    if (pthread_create(&th[i], NULL, worker, &q) == 0) started++;
  if (started == 0 && m->n_layers) worker(&q);
  bool drawn = false;
  if (q.tty) {
    for (;;) {
      bool all = true;
      for (size_t i = 0; i < m->n_layers; i++) {
        int st = atomic_load(&q.ls[i].state);
        if (st == L_WAIT || st == L_RUN) all = false;
      }
      if (all || atomic_load(&q.stop)) break;
      render(&q, false, &drawn);
      struct timespec ts = {0, 150 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  for (long i = 0; i < started; i++) pthread_join(th[i], NULL);
  render(&q, true, &drawn);
  free(q.ls);
  pthread_mutex_destroy(&q.mu);
  if (q.first_err) {
    if (err) *err = q.first_err;
    else berth_error_free(q.first_err);
    return -1;
  }
  return 0;
}

int check_config(const char *digest, const char *data, size_t len, json_t **out, berth_error_t *err) {
  char got[72];
  digest_of(data, len, got);
  if (strcmp(got, digest)) return berth_error(err, -EBADMSG, "image config %s has digest %s; discarded", digest, got);
  json_error_t je;
  json_t *j = json_loadb(data, len, 0, &je);
  if (!j || !json_is_object(j)) {
    json_decref(j);
    return berth_error(err, -EINVAL, "image config %s is not a JSON object", digest);
  }
  *out = j;
  return 0;
}

int commit_image(struct store *s, const char *name, const char *manifest_digest, const char *index_digest, const struct manifest *m,
                 json_t *config, json_t *notes, json_t **out, berth_error_t *err) {
  json_t *layers = json_array();
  for (size_t i = 0; i < m->n_layers; i++)
    json_array_append_new(layers, json_pack("{s:s, s:s, s:I}", "digest", m->layers[i].digest, "media_type", m->layers[i].media_type, "size",
                                            (json_int_t)m->layers[i].size));
  const char *os = json_string_value(json_object_get(config, "os"));
  const char *arch = json_string_value(json_object_get(config, "architecture"));
  const char *var = json_string_value(json_object_get(config, "variant"));
  cleanup_free char *plat = xasprintf("%s/%s%s%s", os ? os : "linux", arch ? arch : "unknown", var ? "/" : "", var ? var : "");
  json_t *rec = json_pack("{s:s, s:s, s:s, s:o, s:s, s:I}", "digest", manifest_digest, "media_type", m->media_type, "config",
                          m->config_digest, "layers", layers, "platform", plat, "created", (json_int_t)time(NULL));
  if (index_digest) json_object_set_new(rec, "index", json_string(index_digest));
  if (store_write_image(s, manifest_digest, rec, err) < 0) {
    json_decref(rec);
    return -1;
  }
  if (name && store_ref_set(s, name, manifest_digest, err) < 0) {
    json_decref(rec);
    return -1;
  }
  json_t *res = json_pack("{s:s*, s:s, s:s, s:s, s:O, s:O}", "name", name, "digest", manifest_digest, "config", m->config_digest,
                          "platform", plat, "layers", layers, "notes", notes);
  json_decref(rec);
  *out = res;
  return 0;
}

/* ---------- registry source ---------- */
static int reg_open(void *ctx, const struct layer_desc *l, _Atomic uint64_t *progress, void **stream, berth_error_t *err) {
  return blob_stream_open(ctx, l->digest, l->size, progress, (struct blob_stream **)stream, err);
}
static ssize_t reg_read(void *stream, const void **data, berth_error_t *err) { return blob_stream_read(stream, data, err); }
static void reg_close(void *stream) { blob_stream_close(stream); }

/* Resolve ref on one endpoint into a manifest (following an index). */
static int resolve(struct registry *r, const struct image_ref *ref, const struct platform *p, struct buf *mbody, char mdigest[72],
                   char **index_digest, berth_error_t *err) {
  const char *want = ref->digest ? ref->digest : ref->tag;
  cleanup_free char *ct = NULL, *hd = NULL;
  struct buf body = {0};
  if (registry_get_manifest(r, want, &body, &ct, &hd, err) < 0) return -1;
  /* classify first: a schema 1 manifest gets its own message (its digest
   * is over a payload without signatures, so it would never match) */
  int kind;
  json_t *j = NULL;
  if (manifest_classify(body.data ? body.data : "", body.len, ct, &kind, &j, err) < 0) {
    buf_free(&body);
    return -1;
  }
  char got[72];
  digest_of(body.data ? body.data : "", body.len, got);
  if (ref->digest && strcmp(got, ref->digest)) {
    buf_free(&body);
    json_decref(j);
    return berth_error(err, -EBADMSG, "manifest for %s has digest %s; refusing it", ref->digest, got);
  }
  if (!ref->digest && hd && digest_valid(hd) && strcmp(hd, got)) {
    buf_free(&body);
    json_decref(j);
    return berth_error(err, -EBADMSG,
                       "manifest for tag %s: body digest %s differs from the registry's Docker-Content-Digest %s; refusing it", ref->tag,
                       got, hd);
  }
  if (kind == MANIFEST_INDEX) {
    *index_digest = strdup(got);
    cleanup_free char *child = NULL;
    uint64_t csize;
    int r2 = index_select(j, p, &child, &csize, err);
    json_decref(j);
    buf_free(&body);
    if (r2 < 0) return -1;
    cleanup_free char *ct2 = NULL, *hd2 = NULL;
    if (registry_get_manifest(r, child, &body, &ct2, &hd2, err) < 0) return -1;
    digest_of(body.data ? body.data : "", body.len, got);
    if (strcmp(got, child) || body.len != csize) {
      buf_free(&body);
      return berth_error(err, -EBADMSG, "platform manifest %s: content has digest %s (%zu bytes); refusing it", child, got, body.len);
    }
    if (manifest_classify(body.data, body.len, ct2, &kind, &j, err) < 0) {
      buf_free(&body);
      return -1;
    }
    if (kind != MANIFEST_IMAGE) {
      json_decref(j);
      buf_free(&body);
      return berth_error(err, -EINVAL, "index entry %s is itself an index; nested indexes are not supported", child);
    }
  }
  json_decref(j);
  *mbody = body;
  strcpy(mdigest, got);
  return 0;
}

struct pull_args {
  const char *ref;
  const struct berth_pull_options *opts;
};

static int pull_in_ns(void *arg, char **result, berth_error_t *err) {
  struct pull_args *a = arg;
  struct image_ref ref;
  if (ref_parse(a->ref, &ref, err) < 0) return -1;
  struct platform p;
  if (a->opts && a->opts->platform) {
    if (platform_parse(a->opts->platform, &p, err) < 0) {
      ref_free(&ref);
      return -1;
    }
  } else platform_host(&p);
  struct berth_config *cfg = config_get(err);
  if (!cfg) {
    ref_free(&ref);
    return -1;
  }
  bool quiet = a->opts && (a->opts->quiet || a->opts->json_progress);
  int ret = -1;
  struct store s;
  struct registry reg;
  bool reg_open_ok = false;
  struct buf mbody = {0};
  char mdigest[72];
  cleanup_free char *index_digest = NULL;
  struct manifest m = {0};
  json_t *config = NULL, *notes = json_array(), *out = NULL;
  cleanup_free char *name = ref_name(&ref);
  cleanup_free char *refstr = ref_string(&ref);
  cleanup_free char *tagged = NULL;
  json_t *mirrors = config_mirrors(cfg, ref.domain);
  size_t nm = json_array_size(mirrors);
  berth_error_t last = NULL;
  struct layer_source src = {.ctx = &reg, .open = reg_open, .read = reg_read, .close = reg_close};
  if (store_open(&s, false, err) < 0) goto done;

  /* mirrors first, then the origin */
  for (size_t i = 0; i <= nm; i++) {
    const char *ep = i < nm ? json_string_value(json_array_get(mirrors, i)) : ref_registry_host(&ref);
    if (!ep) continue;
    berth_error_clear(&last);
    if (registry_open(&reg, ep, ref.domain, ref.path, &last) < 0) {
      registry_close(&reg);
      if (i < nm) berth_warn("mirror %s: %s; trying the next source", ep, last->msg);
      continue;
    }
    free(index_digest);
    index_digest = NULL;
    if (resolve(&reg, &ref, &p, &mbody, mdigest, &index_digest, &last) < 0) {
      registry_close(&reg);
      if (i < nm) berth_warn("mirror %s: %s; trying the next source", ep, last->msg);
      continue;
    }
    reg_open_ok = true;
    break;
  }
  if (!reg_open_ok) {
    if (err) *err = last;
    else berth_error_free(last);
    berth_error_wrap(err, "pull %s", refstr);
    goto done;
  }
  berth_error_clear(&last);
  {
    json_t *mj = json_loadb(mbody.data, mbody.len, 0, NULL);
    int r = manifest_parse(mj, &m, err);
    json_decref(mj);
    if (r < 0) goto done_reg;
  }
  {
    struct buf cb = {0};
    if (registry_get_blob(&reg, m.config_digest, m.config_size + 1, &cb, err) < 0) {
      berth_error_wrap(err, "pull %s: image config", refstr);
      goto done_reg;
    }
    int r = check_config(m.config_digest, cb.data ? cb.data : "", cb.len, &config, err);
    if (r == 0) r = store_put_blob(&s, m.config_digest, cb.data ? cb.data : "", cb.len, err);
    buf_free(&cb);
    if (r < 0) goto done_reg;
  }
  if (!quiet && !(isatty(STDERR_FILENO))) fprintf(stderr, "pulling %s (%s, %zu layers)\n", refstr, mdigest, m.n_layers);
  if (fetch_layers(&s, &m, &src, quiet, notes, err) < 0) {
    berth_error_wrap(err, "pull %s", refstr);
    goto done_reg;
  }
  if (store_put_blob(&s, mdigest, mbody.data, mbody.len, err) < 0) goto done_reg;
  if (ref.tag) tagged = xasprintf("%s:%s", name, ref.tag);
  else tagged = xasprintf("%s@%s", name, ref.digest);
  if (commit_image(&s, tagged, mdigest, index_digest, &m, config, notes, &out, err) < 0) goto done_reg;
  *result = json_dumps(out, JSON_INDENT(2));
  ret = 0;
done_reg:
  registry_close(&reg);
done:
  json_decref(out);
  json_decref(config);
  json_decref(notes);
  manifest_free(&m);
  buf_free(&mbody);
  if (s.root) store_close(&s);
  ref_free(&ref);
  return ret;
}

int berth_image_pull(const char *ref, const struct berth_pull_options *opts, char **result, berth_error_t *err) {
  struct pull_args a = {ref, opts};
  return userns_run(pull_in_ns, &a, result, err);
}

static int list_fn(void *arg, char **result, berth_error_t *err) {
  (void)arg;
  struct store s;
  if (store_open(&s, false, err) < 0) return -1;
  json_t *arr = NULL;
  int r = store_list(&s, &arr, err);
  store_close(&s);
  if (r < 0) return -1;
  *result = json_dumps(arr, JSON_INDENT(2));
  json_decref(arr);
  return 0;
}

int berth_image_list(char **result, berth_error_t *err) { return list_fn(NULL, result, err); }

/* `sha256:HEX...`, or bare hex digits (a name of that spelling wins) */
static bool digest_like(const char *r) {
  const char *h = str_has_prefix(r, "sha256:") ? r + 7 : r;
  size_t n = strlen(h);
  return n >= 4 && n <= 64 && strspn(h, "0123456789abcdef") == n;
}

struct rmi_args {
  const char *ref;
  bool force;
};

static int rmi_fn(void *arg, char **result, berth_error_t *err) {
  const struct rmi_args *a = arg;
  const char *refs = a->ref;
  struct store s;
  if (store_open(&s, true, err) < 0) return -1;
  json_t *out = NULL;
  int r;
  cleanup_free char *tagged = NULL;
  struct image_ref ref;
  berth_error_t pe = NULL;
  if (!str_has_prefix(refs, "sha256:") && ref_parse(refs, &ref, &pe) == 0) {
    cleanup_free char *name = ref_name(&ref);
    tagged = ref.tag ? xasprintf("%s:%s", name, ref.tag) : xasprintf("%s@%s", name, ref.digest);
    ref_free(&ref);
  }
  json_t *names = tagged ? store_refs(&s, NULL) : NULL;
  bool is_name = names && json_object_get(names, tagged);
  json_decref(names);
  if (!is_name && digest_like(refs)) {
    berth_error_free(pe);
    r = store_remove_digest(&s, refs, a->force, &out, err);
  } else if (!tagged) {
    store_close(&s);
    if (!pe)
      return berth_error(err, -EINVAL, "`%s` is neither an image name nor a digest (sha256:HEX, or 4 or more of its first hex digits)",
                         refs);
    if (err) *err = pe;
    else berth_error_free(pe);
    return -1;
  } else {
    berth_error_free(pe);
    r = store_remove(&s, tagged, a->force, &out, err);
  }
  store_close(&s);
  if (r < 0) return -1;
  *result = json_dumps(out, JSON_INDENT(2));
  json_decref(out);
  return 0;
}

int berth_rmi(const char *ref, bool force, char **result, berth_error_t *err) {
  struct rmi_args a = {ref, force};
  return userns_run(rmi_fn, &a, result, err);
}

/* the tool's delete_snapshot: the name goes; an image a container runs on
 * stays, unnamed, until that container is gone */
int berth_image_remove(const char *ref, char **result, berth_error_t *err) { return berth_rmi(ref, true, result, err); }
