/* berth-oci: an OCI container's cgroup from linux.cgroupsPath and
 * linux.resources, on cgroup v1/hybrid (one group per mounted controller
 * hierarchy, plus the v2 "unified" hierarchy of a hybrid host for
 * cgroup.kill) and on pure cgroup v2 (one group, controllers enabled in the
 * parents' cgroup.subtree_control).
 *
 * info: {"version": 1|2, "paths": {controller: dir, ...; v2: "unified"},
 *        "created": [dirs made by us, top first], "owned": bool (the leaf
 *        was made by us), "applied": bool}
 *
 * Per-field choices follow runc/crun; where a value cannot be applied the
 * create fails naming the field, except where both of them skip it (noted
 * at each place). */
#define _GNU_SOURCE
#include "runtime/oci_cgroup.h"
#include "runtime/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* the v1 controllers a container gets a group in, where mounted */
static const char *const V1_CTRLS[] = {"memory",  "cpu",     "cpuacct", "cpuset",   "pids",       "blkio", "devices",
                                       "freezer", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma",  "misc"};
enum { N_V1_CTRLS = sizeof V1_CTRLS / sizeof *V1_CTRLS };

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static const char *json_kind(json_t *v) {
  switch (json_typeof(v)) {
  case JSON_STRING: return "a string";
  case JSON_REAL: return "a real number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_NULL: return "null";
  default: return "an integer";
  }
}

/* an integer member: 0 absent or null, 1 present (*out), -1 wrong type or
 * below min, with an error naming the field */
static int get_int(json_t *obj, const char *where, const char *key, int64_t min, int64_t *out, berth_error_t *err) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_integer(v)) return berth_error(err, -EINVAL, "%s.%s must be an integer, not %s", where, key, json_kind(v));
  *out = json_integer_value(v);
  if (*out < min)
    return berth_error(err, -EINVAL, "%s.%s is %lld: it must be %s", where, key, (long long)*out,
                       min == -1  ? "-1 (unlimited) or at least 0"
                       : min == 0 ? "at least 0"
                                  : "larger");
  return 1;
}

static int get_bool(json_t *obj, const char *where, const char *key, bool *out, berth_error_t *err) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_boolean(v)) return berth_error(err, -EINVAL, "%s.%s must be true or false, not %s", where, key, json_kind(v));
  *out = json_is_true(v);
  return 1;
}

static int get_str(json_t *obj, const char *where, const char *key, const char **out, berth_error_t *err) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v)) return berth_error(err, -EINVAL, "%s.%s must be a string, not %s", where, key, json_kind(v));
  *out = json_string_value(v);
  return 1;
}

/* ---- hierarchies ---- */

struct hier {
  char *mnt; /* mount point */
  char *own; /* our cgroup in it, from /proc/self/cgroup */
  char *ctrls; /* v1: the known controllers, comma separated; v2: NULL */
};

struct hiers {
  struct hier h[24];
  int n;
  bool v2; /* pure v2 */
};

static void hiers_free(struct hiers *hs) {
  for (int i = 0; i < hs->n; i++) free(hs->h[i].mnt), free(hs->h[i].own), free(hs->h[i].ctrls);
  hs->n = 0;
}

static int hiers_load(struct hiers *hs, berth_error_t *err) {
  memset(hs, 0, sizeof *hs);
  cleanup_free char *minfo = NULL, *cgs = NULL;
  if (mountinfo_read(&minfo, err) < 0 || read_file("/proc/self/cgroup", 1 << 16, &cgs, NULL, err) < 0) return -1;
  hs->v2 = cgroup_is_v2();
  cleanup_mountinfo_lines struct mountinfo_lines it = mountinfo_lines_begin(minfo);
  struct mountinfo_line m;
  while (hs->n < (int)(sizeof hs->h / sizeof *hs->h) && mountinfo_lines_next(&it, &m)) {
    bool v1 = !strcmp(m.fstype, "cgroup"), v2 = !strcmp(m.fstype, "cgroup2");
    if (!v1 && !v2) continue;
    if (v1 && hs->v2) continue;
    const char *mnt = m.mnt;
    bool dup = false;
    for (int i = 0; i < hs->n; i++) dup = dup || !strcmp(hs->h[i].mnt, mnt);
    if (dup) continue;
    struct hier h = {0};
    if (v2) {
      /* pure v2: the one at /sys/fs/cgroup. A hybrid host's unified
       * hierarchy (no controllers) is left alone: joining it means a
       * cgroup.procs write, which takes the kernel's global threadgroup
       * lock (an RCU grace period, 0.2-12 ms measured here) where the v1
       * groups are joined through `tasks` without it; kill_all uses the v1
       * freezer instead of its cgroup.kill */
      if (!hs->v2) continue;
      for (int i = 0; i < hs->n; i++) dup = dup || !hs->h[i].ctrls;
      if (dup || (hs->v2 && strcmp(mnt, "/sys/fs/cgroup"))) continue;
      h.own = cgroup_own_path(cgs, "");
    } else {
      const char *opts = m.super;
      struct buf b = {0};
      for (int i = 0; i < N_V1_CTRLS; i++)
        if (list_has_word(opts, V1_CTRLS[i], ',')) {
          if (b.len) buf_append(&b, ",", 1);
          buf_append(&b, V1_CTRLS[i], strlen(V1_CTRLS[i]));
        }
      if (!b.len) continue; /* a named hierarchy (name=systemd): no controller */
      buf_append(&b, "", 1);
      h.ctrls = b.data;
      cleanup_free char *first = strndup(h.ctrls, strcspn(h.ctrls, ","));
      h.own = cgroup_own_path(cgs, first);
    }
    if (!h.own) { /* mounted but not ours (another namespace's view): skip */
      free(h.ctrls);
      continue;
    }
    if (!(h.mnt = xstrdup(mnt))) { /* out of memory: as if not mounted */
      free(h.own), free(h.ctrls);
      continue;
    }
    hs->h[hs->n++] = h;
  }
  if (hs->v2 && !hs->n) return berth_error(err, -ENOENT, "no cgroup2 mount at /sys/fs/cgroup, although the host looks like cgroup v2");
  return 0;
}

/* ---- cgroupsPath ---- */

/* A cgroupsPath made clean: no "." or empty components; ".." refused (it
 * would name a cgroup outside the one the path is relative to). */
static int clean_path(const char *in, char **out, bool *absolute, berth_error_t *err) {
  *absolute = in[0] == '/';
  struct buf b = {0};
  cleanup_free char *copy = xstrdup(in);
  char *save;
  for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
    if (!strcmp(t, ".")) continue;
    if (!strcmp(t, "..")) {
      buf_free(&b);
      return berth_error(err, -EINVAL, "linux.cgroupsPath `%s` has a `..` component: name the cgroup without going up", in);
    }
    buf_append(&b, "/", 1);
    buf_append(&b, t, strlen(t));
  }
  if (!b.len) return berth_error(err, -EINVAL, "linux.cgroupsPath `%s` names no cgroup: give a path like /mygroup/ctr", in);
  buf_append(&b, "", 1);
  *out = b.data;
  return 0;
}

/* runc --systemd-cgroup's "slice:prefix:name". There is no systemd to ask
 * for a scope here, so the cgroupfs path systemd would have made is used
 * directly: the slice expanded the way systemd nests slices
 * ("a-b.slice" is a.slice/a-b.slice), then "<prefix>-<name>.scope"; an
 * empty slice is system.slice (user.slice rootless), as in runc. */
static int systemd_path(const char *in, bool rootless, char **out, berth_error_t *err) {
  const char *c1 = strchr(in, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
  if (!c2 || strchr(c2 + 1, ':') || !c2[1] || strchr(in, '/'))
    return berth_error(err, -EINVAL,
                       "linux.cgroupsPath `%s`: with --systemd-cgroup it must be \"slice:prefix:name\", e.g. system.slice:berth:ctr", in);
  cleanup_free char *slice = strndup(in, (size_t)(c1 - in));
  cleanup_free char *prefix = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
  if (!*slice) {
    free(slice);
    slice = xstrdup(rootless ? "user.slice" : "system.slice");
  }
  if (!str_has_suffix(slice, ".slice"))
    return berth_error(err, -EINVAL, "linux.cgroupsPath `%s`: the slice `%s` must end in .slice", in, slice);
  struct buf b = {0};
  if (strcmp(slice, "-.slice")) { /* -.slice is the root */
    const char *base = slice;
    size_t stem = strlen(slice) - strlen(".slice");
    for (size_t i = 0; i <= stem; i++) {
      if (i < stem && slice[i] != '-') continue;
      if (i == 0 || slice[i - 1] == '-')
        return buf_free(&b), berth_error(err, -EINVAL, "linux.cgroupsPath `%s`: invalid slice name `%s`", in, slice);
      cleanup_free char *part = xasprintf("/%.*s.slice", (int)i, base);
      buf_append(&b, part, strlen(part));
    }
  }
  cleanup_free char *scope = *prefix ? xasprintf("/%s-%s.scope", prefix, c2 + 1) : xasprintf("/%s.scope", c2 + 1);
  buf_append(&b, scope, strlen(scope) + 1);
  *out = b.data;
  return 0;
}

/* ---- writing files ---- */

struct cg {
  int version;
  json_t *paths;
  bool rootless;
};

static const char *dir_of(struct cg *c, const char *ctrl) {
  return json_string_value(json_object_get(c->paths, c->version == 2 ? "unified" : ctrl));
}

static bool has_file(struct cg *c, const char *ctrl, const char *file) {
  const char *d = dir_of(c, ctrl);
  cleanup_free char *p = d ? xasprintf("%s/%s", d, file) : NULL;
  return p && access(p, F_OK) == 0;
}

static int need(struct cg *c, const char *ctrl, const char *field, berth_error_t *err) {
  if (dir_of(c, ctrl)) return 0;
  if (c->version == 2) return berth_error(err, -ENOTSUP, "%s: the container has no cgroup", field);
  return berth_error(
      err, -ENOTSUP,
      "%s needs the cgroup v1 `%s` controller, which this host has not mounted: remove the setting, or mount it (/sys/fs/cgroup/%s)", field,
      ctrl, ctrl);
}

/* write val into the group of ctrl; field names the setting for messages */
static int put(struct cg *c, const char *ctrl, const char *file, const char *val, const char *field, berth_error_t *err) {
  if (need(c, ctrl, field, err) < 0) return -1;
  cleanup_free char *p = xasprintf("%s/%s", dir_of(c, ctrl), file);
  if (write_value(p, val) == 0) return 0;
  int e = errno;
  if (e == ENOENT)
    return berth_error(err, -ENOTSUP, "%s: %s does not exist: this kernel or cgroup does not support the setting%s", field, p,
                       c->version == 2 ? " (or the controller is not enabled for it)" : "");
  return berth_error(err, e, "%s: write `%s` to %s", field, val, p);
}

static int put_i(struct cg *c, const char *ctrl, const char *file, int64_t v, const char *field, berth_error_t *err) {
  char s[32];
  snprintf(s, sizeof s, "%lld", (long long)v);
  return put(c, ctrl, file, s, field, err);
}

/* "max" for v2's unlimited */
static int put_max(struct cg *c, const char *ctrl, const char *file, int64_t v, const char *field, berth_error_t *err) {
  if (v < 0) return put(c, ctrl, file, "max", field, err);
  return put_i(c, ctrl, file, v, field, err);
}

/* ---- linux.resources ---- */

static int apply_memory(struct cg *c, json_t *m, berth_error_t *err) {
  const char *W = "linux.resources.memory";
  int64_t limit = 0, resv = 0, swap = 0, kernel = 0, tcp = 0, swappiness = -1;
  bool noom = false, hier = false;
  int hl, hr, hs, hk, ht, hw, ho, hh;
  if ((hl = get_int(m, W, "limit", -1, &limit, err)) < 0 || (hr = get_int(m, W, "reservation", -1, &resv, err)) < 0 ||
      (hs = get_int(m, W, "swap", -1, &swap, err)) < 0 || (hk = get_int(m, W, "kernel", -1, &kernel, err)) < 0 ||
      (ht = get_int(m, W, "kernelTCP", -1, &tcp, err)) < 0 || (hw = get_int(m, W, "swappiness", -1, &swappiness, err)) < 0 ||
      (ho = get_bool(m, W, "disableOOMKiller", &noom, err)) < 0 || (hh = get_bool(m, W, "useHierarchy", &hier, err)) < 0)
    return -1;
  /* -1 is "unset" for swappiness (docker's default), as runc takes it */
  if (hw && swappiness > 100) return berth_error(err, -EINVAL, "%s.swappiness is %lld: it must be 0 to 100", W, (long long)swappiness);
  if (hl && hs && limit > 0 && swap > 0 && swap < limit)
    return berth_error(err, -EINVAL, "%s.swap (%lld) is memory plus swap: it must be at least memory.limit (%lld), or -1", W,
                       (long long)swap, (long long)limit);
  if (c->version == 2) {
    if (hl && limit) {
      if (put_max(c, "memory", "memory.max", limit, "linux.resources.memory.limit", err) < 0) return -1;
    }
    if (hr && resv) {
      if (put_max(c, "memory", "memory.low", resv, "linux.resources.memory.reservation", err) < 0) return -1;
    }
    /* v1's swap is memory+swap; v2's memory.swap.max is swap alone (runc's
     * ConvertMemorySwapToCgroupV2Value): unlimited memory without a swap
     * value means unlimited swap too */
    int64_t sw = 0;
    bool set_sw = false;
    if (hl && limit == -1 && (!hs || swap == 0)) sw = -1, set_sw = true;
    else if (hs && swap == -1) sw = -1, set_sw = true;
    else if (hs && swap > 0) {
      /* update with a swap value alone: the limit in force, as runc update
       * takes the one it keeps (a new group's memory.max is "max") */
      cleanup_free char *cur = NULL;
      cleanup_free char *mp = !hl && dir_of(c, "memory") ? xasprintf("%s/memory.max", dir_of(c, "memory")) : NULL;
      if (mp && read_file(mp, 64, &cur, NULL, NULL) == 0 && cur[0] >= '1' && cur[0] <= '9') hl = 1, limit = strtoll(cur, NULL, 10);
      if (!hl || limit <= 0) return berth_error(err, -EINVAL, "%s.swap needs memory.limit too: cgroup v2 limits swap as swap - limit", W);
      if (swap < limit)
        return berth_error(err, -EINVAL, "%s.swap (%lld) is memory plus swap: it must be at least the memory limit in force (%lld), or -1",
                           W, (long long)swap, (long long)limit);
      sw = swap - limit, set_sw = true;
    }
    if (set_sw) {
      if (!has_file(c, "memory", "memory.swap.max")) {
        /* no swap support: "no swap" and "any swap" hold as they are (runc
         * ignores both there too); a swap allowance cannot be given */
        if (sw > 0)
          return berth_error(err, -ENOTSUP,
                             "%s.swap: this kernel has no swap accounting (memory.swap.max): remove the setting or boot with swapaccount=1",
                             W);
      } else if (put_max(c, "memory", "memory.swap.max", sw, "linux.resources.memory.swap", err) < 0) return -1;
    }
    /* no v2 files for these: runc and crun ignore them there */
    if (hk || ht || hw || ho || hh)
      berth_debug("cgroup v2: memory kernel, kernelTCP, swappiness, disableOOMKiller and useHierarchy are ignored");
    return 0;
  }
  if ((hl || hr || hs || hk || ht || hw || ho || hh) && need(c, "memory", W, err) < 0) return -1;
  if (hh && hier) {
    /* always hierarchical on current kernels: write only if it reads 0 */
    cleanup_free char *p = xasprintf("%s/memory.use_hierarchy", dir_of(c, "memory"));
    cleanup_free char *cur = NULL;
    if (read_file(p, 64, &cur, NULL, NULL) == 0 && atoi(cur) != 1 &&
        put(c, "memory", "memory.use_hierarchy", "1", "linux.resources.memory.useHierarchy", err) < 0)
      return -1;
  } else if (hh && put(c, "memory", "memory.use_hierarchy", "0", "linux.resources.memory.useHierarchy", err) < 0) return -1;
  /* memsw must stay >= limit at every step: raising, memsw goes first;
   * lowering, the limit (runc's order); a swap without accounting fails */
  if (hs && swap && !has_file(c, "memory", "memory.memsw.limit_in_bytes"))
    return berth_error(
        err, -ENOTSUP,
        "%s.swap: this kernel has no swap accounting (memory.memsw.limit_in_bytes): remove the setting or boot with swapaccount=1", W);
  bool both = hl && limit && hs && swap;
  if (both) {
    berth_error_t first = NULL;
    if (put_i(c, "memory", "memory.limit_in_bytes", limit, "linux.resources.memory.limit", &first) < 0) {
      berth_error_free(first);
      if (put_i(c, "memory", "memory.memsw.limit_in_bytes", swap, "linux.resources.memory.swap", err) < 0 ||
          put_i(c, "memory", "memory.limit_in_bytes", limit, "linux.resources.memory.limit", err) < 0)
        return -1;
    } else if (put_i(c, "memory", "memory.memsw.limit_in_bytes", swap, "linux.resources.memory.swap", err) < 0) return -1;
  } else if (hl && limit) {
    if (put_i(c, "memory", "memory.limit_in_bytes", limit, "linux.resources.memory.limit", err) < 0) return -1;
    /* unlimited memory and no swap value: unlimited swap too (runc) */
    if (limit == -1 && !hs && has_file(c, "memory", "memory.memsw.limit_in_bytes") &&
        put(c, "memory", "memory.memsw.limit_in_bytes", "-1", "linux.resources.memory.swap", err) < 0)
      return -1;
  } else if (hs && swap && put_i(c, "memory", "memory.memsw.limit_in_bytes", swap, "linux.resources.memory.swap", err) < 0) return -1;
  if (hr && resv && put_i(c, "memory", "memory.soft_limit_in_bytes", resv, "linux.resources.memory.reservation", err) < 0) return -1;
  /* kernel memory limits are a no-op or gone on current kernels (runc
   * ignores them, crun writes where it can): written where the file takes
   * it, else skipped with a debug note */
  if (hk && kernel) {
    berth_error_t ke = NULL;
    if (put_i(c, "memory", "memory.kmem.limit_in_bytes", kernel, "linux.resources.memory.kernel", &ke) < 0)
      berth_debug("skipped: %s", ke->msg);
    berth_error_free(ke);
  }
  if (ht && tcp && put_i(c, "memory", "memory.kmem.tcp.limit_in_bytes", tcp, "linux.resources.memory.kernelTCP", err) < 0) return -1;
  if (hw && swappiness >= 0 && put_i(c, "memory", "memory.swappiness", swappiness, "linux.resources.memory.swappiness", err) < 0) return -1;
  if (ho && noom && put(c, "memory", "memory.oom_control", "1", "linux.resources.memory.disableOOMKiller", err) < 0) return -1;
  return 0;
}

static int apply_cpu(struct cg *c, json_t *cpu, berth_error_t *err) {
  const char *W = "linux.resources.cpu";
  int64_t shares = 0, quota = 0, period = 0, burst = 0, rtr = 0, rtp = 0, idle = 0;
  const char *cpus = NULL, *mems = NULL;
  int hs, hq, hp, hb, hrr, hrp, hi, hc, hm;
  if ((hs = get_int(cpu, W, "shares", 0, &shares, err)) < 0 || (hq = get_int(cpu, W, "quota", -1, &quota, err)) < 0 ||
      (hp = get_int(cpu, W, "period", 0, &period, err)) < 0 || (hb = get_int(cpu, W, "burst", 0, &burst, err)) < 0 ||
      (hrr = get_int(cpu, W, "realtimeRuntime", -1, &rtr, err)) < 0 || (hrp = get_int(cpu, W, "realtimePeriod", 0, &rtp, err)) < 0 ||
      (hi = get_int(cpu, W, "idle", 0, &idle, err)) < 0 || (hc = get_str(cpu, W, "cpus", &cpus, err)) < 0 ||
      (hm = get_str(cpu, W, "mems", &mems, err)) < 0)
    return -1;
  if (hi && idle > 1) return berth_error(err, -EINVAL, "%s.idle is %lld: it must be 0 or 1", W, (long long)idle);
  char v[64];
  if (c->version == 2) {
    if ((hrr && rtr) || (hrp && rtp))
      return berth_error(err, -ENOTSUP, "%s.realtimeRuntime/realtimePeriod: cgroup v2 has no real-time group scheduling: remove them", W);
    if (hs && shares) {
      /* runc's conversion of the v1 range [2, 262144] to [1, 10000] */
      int64_t w = 1 + ((shares - 2) * 9999) / 262142;
      if (w < 1) w = 1;
      if (w > 10000) w = 10000;
      if (put_i(c, "cpu", "cpu.weight", w, "linux.resources.cpu.shares", err) < 0) return -1;
    }
    if ((hq && quota) || (hp && period)) {
      char q[24] = "max";
      if (hq && quota > 0) snprintf(q, sizeof q, "%lld", (long long)quota);
      snprintf(v, sizeof v, "%s %lld", q, (long long)(hp && period ? period : 100000));
      if (put(c, "cpu", "cpu.max", v, "linux.resources.cpu.quota/period", err) < 0) return -1;
    }
    if (hb && put_i(c, "cpu", "cpu.max.burst", burst, "linux.resources.cpu.burst", err) < 0) return -1;
    if (hi && put_i(c, "cpu", "cpu.idle", idle, "linux.resources.cpu.idle", err) < 0) return -1;
    if (hc && *cpus && put(c, "cpuset", "cpuset.cpus", cpus, "linux.resources.cpu.cpus", err) < 0) return -1;
    if (hm && *mems && put(c, "cpuset", "cpuset.mems", mems, "linux.resources.cpu.mems", err) < 0) return -1;
    return 0;
  }
  if (hs && shares && put_i(c, "cpu", "cpu.shares", shares, "linux.resources.cpu.shares", err) < 0) return -1;
  /* a quota is checked against the period in place: if the new pair is
   * refused in one order (EINVAL), try the other */
  if ((hp && period) || (hq && quota)) {
    berth_error_t first = NULL;
    int r = 0;
    if (hp && period) r = put_i(c, "cpu", "cpu.cfs_period_us", period, "linux.resources.cpu.period", &first);
    if (r == 0 && hq && quota) r = put_i(c, "cpu", "cpu.cfs_quota_us", quota, "linux.resources.cpu.quota", &first);
    if (r < 0) {
      bool retry = first && first->status == EINVAL;
      if (!retry) {
        *err = first;
        return -1;
      }
      berth_error_free(first);
      if ((hq && quota && put_i(c, "cpu", "cpu.cfs_quota_us", quota, "linux.resources.cpu.quota", err) < 0) ||
          (hp && period && put_i(c, "cpu", "cpu.cfs_period_us", period, "linux.resources.cpu.period", err) < 0))
        return -1;
    }
  }
  if (hb && put_i(c, "cpu", "cpu.cfs_burst_us", burst, "linux.resources.cpu.burst", err) < 0) return -1;
  /* the runtime is checked against the period: period first */
  if (hrp && rtp && put_i(c, "cpu", "cpu.rt_period_us", rtp, "linux.resources.cpu.realtimePeriod", err) < 0) return -1;
  if (hrr && rtr && put_i(c, "cpu", "cpu.rt_runtime_us", rtr, "linux.resources.cpu.realtimeRuntime", err) < 0) return -1;
  if (hi && put_i(c, "cpu", "cpu.idle", idle, "linux.resources.cpu.idle", err) < 0) return -1;
  /* mems before cpus does not matter; both must be inside the parent's */
  if (hc && *cpus && put(c, "cpuset", "cpuset.cpus", cpus, "linux.resources.cpu.cpus", err) < 0) return -1;
  if (hm && *mems && put(c, "cpuset", "cpuset.mems", mems, "linux.resources.cpu.mems", err) < 0) return -1;
  return 0;
}

static int apply_pids(struct cg *c, json_t *p, berth_error_t *err) {
  int64_t limit = 0;
  int h = get_int(p, "linux.resources.pids", "limit", INT64_MIN, &limit, err);
  if (h <= 0) return h;
  /* runc: 0 leaves it, any negative is unlimited */
  if (!limit) return 0;
  if (c->version == 2 || limit < 0) return put_max(c, "pids", "pids.max", limit, "linux.resources.pids.limit", err);
  return put_i(c, "pids", "pids.max", limit, "linux.resources.pids.limit", err);
}

/* major and minor of a blockIO device entry */
static int dev_of(json_t *d, const char *where, int64_t *maj, int64_t *min, berth_error_t *err) {
  if (!json_is_object(d)) return berth_error(err, -EINVAL, "%s must be an object with major and minor", where);
  int a = get_int(d, where, "major", 0, maj, err);
  if (a < 0) return -1;
  int b = get_int(d, where, "minor", 0, min, err);
  if (b < 0) return -1;
  if (!a || !b) return berth_error(err, -EINVAL, "%s needs both major and minor", where);
  return 0;
}

static int apply_blkio(struct cg *c, json_t *b, berth_error_t *err) {
  const char *W = "linux.resources.blockIO";
  int64_t weight = 0, leaf = 0;
  int hw, hl;
  if ((hw = get_int(b, W, "weight", 0, &weight, err)) < 0 || (hl = get_int(b, W, "leafWeight", 0, &leaf, err)) < 0) return -1;
  if ((hw && weight && (weight < 10 || weight > 1000)) || (hl && leaf && (leaf < 10 || leaf > 1000)))
    return berth_error(err, -EINVAL, "%s.%s is %lld: it must be 10 to 1000", W,
                       hw && weight && (weight < 10 || weight > 1000) ? "weight" : "leafWeight",
                       (long long)(hw && weight && (weight < 10 || weight > 1000) ? weight : leaf));
  bool v2 = c->version == 2;
  /* BFQ's own weight file takes the v1 range as is; v2's io.weight is
   * [1, 10000] (runc's conversion) */
  bool bfq = v2 ? has_file(c, "blkio", "io.bfq.weight") : !has_file(c, "blkio", "blkio.weight") && has_file(c, "blkio", "blkio.bfq.weight");
  const char *wfile = v2 ? (bfq ? "io.bfq.weight" : "io.weight") : bfq ? "blkio.bfq.weight" : "blkio.weight";
#define CONV(w) (v2 && !bfq ? 1 + ((w)-10) * 9999 / 990 : (w))
  if (hw && weight && put_i(c, "blkio", wfile, CONV(weight), "linux.resources.blockIO.weight", err) < 0) return -1;
  if (hl && leaf) {
    /* crun refuses it on v2 (nothing like it there); v1 needs CFQ's file */
    if (v2) return berth_error(err, -ENOTSUP, "%s.leafWeight: cgroup v2 has no leaf weight: remove it", W);
    if (put_i(c, "blkio", "blkio.leaf_weight", leaf, "linux.resources.blockIO.leafWeight", err) < 0) return -1;
  }
  json_t *arr = json_object_get(b, "weightDevice"), *d;
  size_t i;
  if (arr && !json_is_array(arr) && !json_is_null(arr)) return berth_error(err, -EINVAL, "%s.weightDevice must be an array", W);
  json_array_foreach(arr, i, d) {
    char where[96], v[96];
    snprintf(where, sizeof where, "%s.weightDevice[%zu]", W, i);
    int64_t maj, min, w = 0, lw = 0;
    int a, l;
    if (dev_of(d, where, &maj, &min, err) < 0 || (a = get_int(d, where, "weight", 0, &w, err)) < 0 ||
        (l = get_int(d, where, "leafWeight", 0, &lw, err)) < 0)
      return -1;
    if (a && w) {
      if (w < 10 || w > 1000) return berth_error(err, -EINVAL, "%s.weight is %lld: it must be 10 to 1000", where, (long long)w);
      snprintf(v, sizeof v, "%lld:%lld %lld", (long long)maj, (long long)min, (long long)CONV(w));
      if (put(c, "blkio", v2 ? wfile : bfq ? "blkio.bfq.weight_device" : "blkio.weight_device", v, where, err) < 0) return -1;
    }
    if (l && lw) {
      if (v2) return berth_error(err, -ENOTSUP, "%s.leafWeight: cgroup v2 has no leaf weight: remove it", where);
      snprintf(v, sizeof v, "%lld:%lld %lld", (long long)maj, (long long)min, (long long)lw);
      if (put(c, "blkio", "blkio.leaf_weight_device", v, where, err) < 0) return -1;
    }
  }
#undef CONV
  static const struct {
    const char *key, *v1file, *v2key;
  } T[] = {{"throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"},
           {"throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"},
           {"throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"},
           {"throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"}};
  for (size_t t = 0; t < sizeof T / sizeof *T; t++) {
    arr = json_object_get(b, T[t].key);
    if (arr && !json_is_array(arr) && !json_is_null(arr)) return berth_error(err, -EINVAL, "%s.%s must be an array", W, T[t].key);
    json_array_foreach(arr, i, d) {
      char where[96], v[96];
      snprintf(where, sizeof where, "%s.%s[%zu]", W, T[t].key, i);
      int64_t maj, min, rate = 0;
      if (dev_of(d, where, &maj, &min, err) < 0 || get_int(d, where, "rate", 0, &rate, err) < 0) return -1;
      if (v2) {
        /* io.max: 0 is "no limit" in v1's files, "max" here */
        if (rate) snprintf(v, sizeof v, "%lld:%lld %s=%lld", (long long)maj, (long long)min, T[t].v2key, (long long)rate);
        else snprintf(v, sizeof v, "%lld:%lld %s=max", (long long)maj, (long long)min, T[t].v2key);
        if (put(c, "blkio", "io.max", v, where, err) < 0) return -1;
      } else {
        snprintf(v, sizeof v, "%lld:%lld %lld", (long long)maj, (long long)min, (long long)rate);
        if (put(c, "blkio", T[t].v1file, v, where, err) < 0) return -1;
      }
    }
  }
  return 0;
}

static int apply_hugetlb(struct cg *c, json_t *arr, berth_error_t *err) {
  if (!json_is_array(arr)) return berth_error(err, -EINVAL, "linux.resources.hugepageLimits must be an array");
  size_t i;
  json_t *h;
  json_array_foreach(arr, i, h) {
    char where[64];
    snprintf(where, sizeof where, "linux.resources.hugepageLimits[%zu]", i);
    const char *ps = NULL;
    int64_t limit = 0;
    if (get_str(h, where, "pageSize", &ps, err) < 0 || get_int(h, where, "limit", 0, &limit, err) < 0) return -1;
    if (!ps || !*ps || ps[strspn(ps, "0123456789KMGTPB")])
      return berth_error(err, -EINVAL, "%s.pageSize must be a size like 2MB or 1GB", where);
    if (need(c, "hugetlb", where, err) < 0) return -1;
    cleanup_free char *file = xasprintf("hugetlb.%s.%s", ps, c->version == 2 ? "max" : "limit_in_bytes");
    if (!has_file(c, "hugetlb", file))
      return berth_error(err, -ENOTSUP, "%s.pageSize `%s`: this host has no such huge page size (see /sys/kernel/mm/hugepages)%s", where,
                         ps, c->version == 2 ? " or the hugetlb controller is not enabled" : "");
    if (put_i(c, "hugetlb", file, limit, where, err) < 0) return -1;
    /* the reservation limit too, where the kernel has it (runc) */
    cleanup_free char *rsvd = xasprintf("hugetlb.%s.rsvd.%s", ps, c->version == 2 ? "max" : "limit_in_bytes");
    if (has_file(c, "hugetlb", rsvd) && put_i(c, "hugetlb", rsvd, limit, where, err) < 0) return -1;
  }
  return 0;
}

static int apply_network(struct cg *c, json_t *n, berth_error_t *err) {
  const char *W = "linux.resources.network";
  int64_t classid = 0;
  int hc = get_int(n, W, "classID", 0, &classid, err);
  if (hc < 0) return -1;
  json_t *prios = json_object_get(n, "priorities");
  if (prios && !json_is_array(prios) && !json_is_null(prios)) return berth_error(err, -EINVAL, "%s.priorities must be an array", W);
  if (c->version == 2) {
    /* net_cls/net_prio have no v2 counterpart; runc ignores them there */
    if (hc || json_array_size(prios)) berth_warn("%s is ignored: cgroup v2 has no net_cls or net_prio controller", W);
    return 0;
  }
  if (hc && put_i(c, "net_cls", "net_cls.classid", classid, "linux.resources.network.classID", err) < 0) return -1;
  size_t i;
  json_t *p;
  json_array_foreach(prios, i, p) {
    char where[64];
    snprintf(where, sizeof where, "%s.priorities[%zu]", W, i);
    const char *name = NULL;
    int64_t prio = 0;
    if (get_str(p, where, "name", &name, err) < 0 || get_int(p, where, "priority", 0, &prio, err) < 0) return -1;
    if (!name || !*name || strchr(name, ' ') || strchr(name, '\n'))
      return berth_error(err, -EINVAL, "%s.name must be an interface name", where);
    cleanup_free char *v = xasprintf("%s %lld", name, (long long)prio);
    if (put(c, "net_prio", "net_prio.ifpriomap", v, where, err) < 0) return -1;
  }
  return 0;
}

static int apply_rdma(struct cg *c, json_t *r, berth_error_t *err) {
  if (!json_is_object(r)) return berth_error(err, -EINVAL, "linux.resources.rdma must be an object");
  const char *dev;
  json_t *l;
  json_object_foreach(r, dev, l) {
    char where[128];
    snprintf(where, sizeof where, "linux.resources.rdma.%.80s", dev);
    int64_t hh = -1, ho = -1;
    if (get_int(l, where, "hcaHandles", 0, &hh, err) < 0 || get_int(l, where, "hcaObjects", 0, &ho, err) < 0) return -1;
    if (strchr(dev, ' ') || strchr(dev, '\n') || !*dev) return berth_error(err, -EINVAL, "%s: not a device name", where);
    char a[32] = "max", b[32] = "max";
    if (hh >= 0) snprintf(a, sizeof a, "%lld", (long long)hh);
    if (ho >= 0) snprintf(b, sizeof b, "%lld", (long long)ho);
    cleanup_free char *v = xasprintf("%s hca_handle=%s hca_object=%s", dev, a, b);
    if (put(c, "rdma", "rdma.max", v, where, err) < 0) return -1;
  }
  return 0;
}

/* One devices entry checked: type a, b or c (absent: a), major and minor
 * (absent or -1: any), access of r, w, m (absent: rwm). */
struct devent {
  bool allow;
  char type;
  int64_t major, minor;
  char access[4];
};

static int dev_entry(json_t *d, size_t i, struct devent *e, berth_error_t *err) {
  char where[64];
  snprintf(where, sizeof where, "linux.resources.devices[%zu]", i);
  if (!json_is_object(d)) return berth_error(err, -EINVAL, "%s must be an object", where);
  const char *type = "a", *acc = "rwm";
  e->allow = false;
  e->major = e->minor = -1;
  if (get_bool(d, where, "allow", &e->allow, err) < 0 || get_str(d, where, "type", &type, err) < 0 ||
      get_str(d, where, "access", &acc, err) < 0 || get_int(d, where, "major", -1, &e->major, err) < 0 ||
      get_int(d, where, "minor", -1, &e->minor, err) < 0)
    return -1;
  if (strlen(type) != 1 || !strchr("abc", type[0])) return berth_error(err, -EINVAL, "%s.type is `%s`: it must be a, b or c", where, type);
  if (!*acc) acc = "rwm";
  if (strlen(acc) > 3 || acc[strspn(acc, "rwm")]) return berth_error(err, -EINVAL, "%s.access is `%s`: use letters of rwm", where, acc);
  e->type = type[0];
  snprintf(e->access, sizeof e->access, "%s", acc);
  return 0;
}

/* v2: a BPF program holding the allow-list that remains after the
 * entries, in order (cgroup.c's cgroup_devices_bpf_rules). A wildcard
 * entry (type a, no major or minor) resets the list: allow-all means no
 * program at all. A deny entry removes the allow entries it covers
 * exactly; one that only narrows a wider allow (deny c 1:3 after allow
 * c 1:*, or anything after allow-all) cannot be said in an allow-list
 * and is refused. */
int oci_cgroup_devices_v2(int cgfd, json_t *devs, berth_error_t *err) {
  if (!json_is_array(devs)) return berth_error(err, -EINVAL, "linux.resources.devices must be an array");
  size_t n = json_array_size(devs);
  struct devent *es = calloc(n + 1, sizeof *es);
  if (!es) return berth_error(err, ENOMEM, "devices");
  for (size_t i = 0; i < n; i++)
    if (dev_entry(json_array_get(devs, i), i, &es[i], err) < 0) return free(es), -1;
  int r = 0;
  bool allow_all = false;
  struct cgroup_dev_rule *rules = calloc(n + 1, sizeof *rules);
  size_t nr = 0;
  if (!rules) return free(es), berth_error(err, ENOMEM, "devices");
  for (size_t i = 0; r == 0 && i < n; i++) {
    struct devent *e = &es[i];
    if (e->type == 'a' && e->major < 0 && e->minor < 0) {
      allow_all = e->allow;
      nr = 0;
      continue;
    }
    if (e->allow) {
      if (allow_all) continue;
      rules[nr++] = (struct cgroup_dev_rule){
          e->type, e->major, e->minor, strchr(e->access, 'r') != NULL, strchr(e->access, 'w') != NULL, strchr(e->access, 'm') != NULL};
      continue;
    }
    /* a deny: take its access from the allows it covers (they match no
     * more than it does), dropping those left with none; refuse when it
     * would only narrow a wider allow */
    for (size_t k = nr; k-- > 0;) {
      struct cgroup_dev_rule *a = &rules[k];
      bool covers =
          (e->type == 'a' || e->type == a->type) && (e->major < 0 || e->major == a->major) && (e->minor < 0 || e->minor == a->minor);
      bool overlaps = (e->type == 'a' || a->type == 'a' || e->type == a->type) && (e->major < 0 || a->major < 0 || e->major == a->major) &&
                      (e->minor < 0 || a->minor < 0 || e->minor == a->minor) &&
                      ((a->r && strchr(e->access, 'r')) || (a->w && strchr(e->access, 'w')) || (a->m && strchr(e->access, 'm')));
      if (covers) {
        a->r = a->r && !strchr(e->access, 'r');
        a->w = a->w && !strchr(e->access, 'w');
        a->m = a->m && !strchr(e->access, 'm');
        if (!a->r && !a->w && !a->m) memmove(a, a + 1, (nr - k - 1) * sizeof *a), nr--;
      } else if (overlaps)
        r = berth_error(err, -ENOTSUP,
                        "linux.resources.devices[%zu]: a deny that narrows an earlier allow cannot be expressed on cgroup v2: "
                        "list only what is allowed after the deny-all entry",
                        i);
    }
    if (r == 0 && allow_all)
      r = berth_error(err, -ENOTSUP,
                      "linux.resources.devices[%zu]: denying one device after allowing all is not supported on cgroup v2: "
                      "deny all, then allow what the container needs",
                      i);
  }
  free(es);
  if (r == 0 && !allow_all && cgroup_devices_bpf_rules(cgfd, rules, nr, err) < 0) r = berth_error_wrap(err, "linux.resources.devices");
  free(rules);
  return r;
}

static int apply_devices(struct cg *c, json_t *devs, bool update, berth_error_t *err) {
  if (!json_is_array(devs)) return berth_error(err, -EINVAL, "linux.resources.devices must be an array");
  size_t n = json_array_size(devs);
  struct devent *es = calloc(n + 1, sizeof *es);
  if (!es) return berth_error(err, ENOMEM, "devices");
  for (size_t i = 0; i < n; i++)
    if (dev_entry(json_array_get(devs, i), i, &es[i], err) < 0) return free(es), -1;
  int r = 0;
  /* runc update leaves the devices alone (rewriting them would deny every
   * device for a moment on v1, and v2's program cannot be swapped here) */
  if (update) {
    free(es);
    berth_debug("update: linux.resources.devices is not changed on a running container");
    return 0;
  }
  if (c->version == 1) {
    /* runc's order: deny everything, then each entry as listed. A rootless
     * runtime cannot write the devices files; runc ignores that, so do we. */
    if (!dir_of(c, "devices")) {
      free(es);
      return c->rootless ? 0 : need(c, "devices", "linux.resources.devices", err);
    }
    berth_error_t de = NULL;
    r = put(c, "devices", "devices.deny", "a", "linux.resources.devices", &de);
    for (size_t i = 0; r == 0 && i < n; i++) {
      /* a list's own leading deny-all (runc's default list has one) is the write just made */
      if (i == 0 && !es[i].allow && es[i].type == 'a' && es[i].major < 0 && es[i].minor < 0 && strlen(es[i].access) == 3) continue;
      char rule[96], where[64], ma[24] = "*", mi[24] = "*";
      if (es[i].major >= 0) snprintf(ma, sizeof ma, "%lld", (long long)es[i].major);
      if (es[i].minor >= 0) snprintf(mi, sizeof mi, "%lld", (long long)es[i].minor);
      if (es[i].type == 'a') snprintf(rule, sizeof rule, "a");
      else snprintf(rule, sizeof rule, "%c %s:%s %s", es[i].type, ma, mi, es[i].access);
      snprintf(where, sizeof where, "linux.resources.devices[%zu]", i);
      r = put(c, "devices", es[i].allow ? "devices.allow" : "devices.deny", rule, where, &de);
    }
    if (r < 0 && c->rootless) {
      berth_debug("rootless: devices cgroup not applied: %s", de->msg);
      berth_error_free(de);
      r = 0;
    } else if (r < 0) *err = de;
    free(es);
    return r;
  }
  /* v2: root only (bpf): a rootless runtime skips it, as runc */
  free(es);
  if (c->rootless) return 0;
  cleanup_close int cfd = open(dir_of(c, "devices"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cfd < 0) return berth_error(err, errno, "linux.resources.devices: open %s", dir_of(c, "devices"));
  return oci_cgroup_devices_v2(cfd, devs, err);
}

static int apply_unified(struct cg *c, json_t *u, berth_error_t *err) {
  if (!json_is_object(u)) return berth_error(err, -EINVAL, "linux.resources.unified must be an object of file: value");
  if (!json_object_size(u)) return 0;
  if (c->version != 2)
    return berth_error(
        err, -ENOTSUP,
        "linux.resources.unified needs cgroup v2, and this host has cgroup v1 (hybrid): use the v1 fields of linux.resources instead");
  const char *k;
  json_t *v;
  json_object_foreach(u, k, v) {
    char where[128];
    snprintf(where, sizeof where, "linux.resources.unified[\"%.80s\"]", k);
    if (!json_is_string(v)) return berth_error(err, -EINVAL, "%s must be a string, not %s", where, json_kind(v));
    if (!*k || strchr(k, '/') || !strchr(k, '.') || !strcmp(k, "cgroup.procs") || !strcmp(k, "cgroup.threads") ||
        !strcmp(k, "cgroup.subtree_control"))
      return berth_error(err, -EINVAL, "%s: not a cgroup interface file a container may set", where);
    if (put(c, "unified", k, json_string_value(v), where, err) < 0) return -1;
  }
  return 0;
}

/* does the resources object set anything (devices aside, which a rootless
 * runtime skips, as runc does)? */
static bool sets_something(json_t *v, int depth) {
  if (!v || json_is_null(v)) return false;
  if (json_is_array(v)) return json_array_size(v) > 0;
  if (!json_is_object(v)) return true;
  const char *k;
  json_t *x;
  json_object_foreach(v, k, x) {
    if (depth == 0 && !strcmp(k, "devices")) continue;
    if (sets_something(x, depth + 1)) return true;
  }
  return false;
}

/* lenient (note != NULL): a field that cannot be applied is said in note,
 * and the rest still are */
static void note_add(struct buf *note, const char *msg) {
  if (note->len) buf_append(note, "; ", 2);
  buf_append(note, msg, strlen(msg));
}

static int field_done(int r, struct buf *note, berth_error_t *err) {
  if (r == 0 || !note) return r;
  note_add(note, (*err)->msg);
  berth_error_clear(err);
  return 0;
}

static int apply_resources(struct cg *c, json_t *res, bool update, struct buf *note, berth_error_t *err) {
  if (!res || json_is_null(res)) return 0;
  if (!json_is_object(res)) return field_done(berth_error(err, -EINVAL, "linux.resources must be an object"), note, err);
  json_t *v;
  /* checked before anything is written */
  if ((v = json_object_get(res, "unified")) && json_object_size(v) && c->version != 2)
    return field_done(apply_unified(c, v, err), note, err);
  static const char *const OBJ[] = {"memory", "cpu", "pids", "blockIO", "network", "rdma"};
  for (size_t i = 0; i < sizeof OBJ / sizeof *OBJ; i++) {
    v = json_object_get(res, OBJ[i]);
    if (v && !json_is_null(v) && !json_is_object(v))
      return field_done(berth_error(err, -EINVAL, "linux.resources.%s must be an object", OBJ[i]), note, err);
  }
  if ((v = json_object_get(res, "devices")) && !json_is_null(v) && apply_devices(c, v, update, err) < 0) {
    if (!note) return -1;
    /* a manager's own allow-list is a layer behind nodev and no CAP_MKNOD,
     * not a limit its caller asked for */
    berth_debug("devices cgroup not applied: %s", (*err)->msg);
    berth_error_clear(err);
  }
  if ((v = json_object_get(res, "memory")) && json_object_size(v) && field_done(apply_memory(c, v, err), note, err) < 0) return -1;
  if ((v = json_object_get(res, "cpu")) && json_object_size(v) && field_done(apply_cpu(c, v, err), note, err) < 0) return -1;
  if ((v = json_object_get(res, "pids")) && json_object_size(v) && field_done(apply_pids(c, v, err), note, err) < 0) return -1;
  if ((v = json_object_get(res, "blockIO")) && json_object_size(v) && field_done(apply_blkio(c, v, err), note, err) < 0) return -1;
  if ((v = json_object_get(res, "hugepageLimits")) && !json_is_null(v) && field_done(apply_hugetlb(c, v, err), note, err) < 0) return -1;
  if ((v = json_object_get(res, "network")) && json_object_size(v) && field_done(apply_network(c, v, err), note, err) < 0) return -1;
  if ((v = json_object_get(res, "rdma")) && json_object_size(v) && field_done(apply_rdma(c, v, err), note, err) < 0) return -1;
  /* last: it may override what the fields above wrote (runc) */
  if ((v = json_object_get(res, "unified")) && !json_is_null(v) && field_done(apply_unified(c, v, err), note, err) < 0) return -1;
  return 0;
}

/* ---- creating ---- */

/* v2: turn on in dir's cgroup.subtree_control what it has, in one write
 * (one at a time could let the threaded controllers in while a domain one
 * is refused, making dir a thread root that takes no process below);
 * one at a time only where dir holds no process of its own. Best effort:
 * what the resources need is checked on the leaf afterwards. */
static void v2_enable_all(const char *dir, bool is_root) {
  static const char *const want[] = {"cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc"};
  cleanup_free char *avail = NULL, *cur = NULL, *procs = NULL;
  cleanup_free char *pa = xasprintf("%s/cgroup.controllers", dir);
  cleanup_free char *pc = xasprintf("%s/cgroup.subtree_control", dir);
  cleanup_free char *pp = xasprintf("%s/cgroup.procs", dir);
  if (read_file(pa, 4096, &avail, NULL, NULL) < 0) return;
  if (read_file(pc, 4096, &cur, NULL, NULL) < 0) cur = NULL;
  avail[strcspn(avail, "\n")] = '\0';
  if (cur) cur[strcspn(cur, "\n")] = '\0';
  char v[160] = "";
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    if (!list_has_word(avail, want[i], ' ') || list_has_word(cur, want[i], ' ')) continue;
    snprintf(v + strlen(v), sizeof v - strlen(v), "%s+%s", *v ? " " : "", want[i]);
  }
  if (!*v || write_value(pc, v) == 0) return;
  size_t n = 0;
  if (!is_root && (read_file(pp, 1 << 16, &procs, &n, NULL) < 0 || n > 0)) return;
  char *save;
  for (char *t = strtok_r(v, " ", &save); t; t = strtok_r(NULL, " ", &save)) write_value(pc, t);
}

/* v1 cpuset: a new group has no cpus or mems, and takes no process until
 * it has them: copy the parent's */
static void cpuset_init(const char *dir) {
  cleanup_free char *parent = xstrdup(dir);
  char *slash = strrchr(parent, '/');
  if (!slash) return;
  *slash = '\0';
  for (int i = 0; i < 2; i++) {
    const char *f = i ? "cpuset.mems" : "cpuset.cpus";
    cleanup_free char *mine = xasprintf("%s/%s", dir, f), *theirs = xasprintf("%s/%s", parent, f);
    cleanup_free char *cur = NULL, *val = NULL;
    if (read_file(mine, 4096, &cur, NULL, NULL) == 0 && cur[strspn(cur, " \n")]) continue;
    if (read_file(theirs, 4096, &val, NULL, NULL) == 0) write_value(mine, val);
  }
}

/* make base + rel, component by component, recording what is new */
static int mkdirs(const char *base, const char *rel, bool cpuset, bool v2, bool base_is_root, json_t *created, bool *leaf_new,
                  berth_error_t *err) {
  cleanup_free char *path = xstrdup(base);
  cleanup_free char *copy = xstrdup(rel);
  char *save;
  bool at_root = base_is_root;
  *leaf_new = false;
  for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
    if (v2) v2_enable_all(path, at_root);
    at_root = false;
    char *next = xasprintf("%s/%s", path, t);
    free(path);
    path = next;
    if (mkdir(path, 0755) == 0) {
      json_array_append_new(created, json_string(path));
      *leaf_new = true;
      if (cpuset) cpuset_init(path);
    } else if (errno == EEXIST) {
      *leaf_new = false;
    } else return berth_error(err, errno, "create cgroup %s", path);
  }
  return 0;
}

static void rmdirs_created(json_t *created) {
  for (size_t i = json_array_size(created); i-- > 0;) {
    const char *d = json_string_value(json_array_get(created, i));
    for (int t = 0; t < 50 && rmdir(d) < 0 && errno == EBUSY; t++) sleep_ms(10);
  }
}

static bool denied(int e) { return e == EACCES || e == EPERM || e == EROFS; }

size_t oci_cgroup_dirs(json_t *info, const char **out, size_t max) {
  size_t n = 0;
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(info, "paths"), k, v) {
    const char *d = json_string_value(v);
    bool dup = !d;
    for (size_t i = 0; !dup && i < n; i++) dup = !strcmp(out[i], d);
    if (!dup && n < max) out[n++] = d;
  }
  return n;
}

static const char *rootless_advice(void) {
  return "run it in a delegated cgroup v2 (`systemd-run --user --scope -p Delegate=yes berth-oci ...`, with the path below that scope), "
         "run as root, or remove linux.resources";
}

/* v1: does a manager's container get a group in this hierarchy? Those
 * of its controllers (req->v1_ctrls), and those the resources use: every
 * further group is a mkdir, a `tasks` write at each start and an rmdir */
static bool hier_wanted(const struct oci_cgroup_req *q, json_t *res, const char *ctrls) {
  if (!q->v1_ctrls || !ctrls) return true;
  for (const char *const *w = q->v1_ctrls; *w; w++)
    if (list_has_word(ctrls, *w, ',')) return true;
  static const struct {
    const char *key, *ctrl;
  } USE[] = {{"memory", "memory"},   {"pids", "pids"},        {"blockIO", "blkio"}, {"hugepageLimits", "hugetlb"},
             {"network", "net_cls"}, {"network", "net_prio"}, {"rdma", "rdma"},     {"devices", "devices"}};
  for (size_t i = 0; i < sizeof USE / sizeof *USE; i++)
    if (sets_something(json_object_get(res, USE[i].key), 1) && list_has_word(ctrls, USE[i].ctrl, ',')) return true;
  json_t *cpu = json_object_get(res, "cpu");
  static const char *const CPU[] = {"shares", "quota", "period", "burst", "realtimeRuntime", "realtimePeriod", "idle"};
  for (size_t i = 0; i < sizeof CPU / sizeof *CPU; i++)
    if (json_object_get(cpu, CPU[i]) && list_has_word(ctrls, "cpu", ',')) return true;
  return (json_object_get(cpu, "cpus") || json_object_get(cpu, "mems")) && list_has_word(ctrls, "cpuset", ',');
}

/* lenient: the container goes on without a cgroup, and note says why */
static int no_cgroup(int version, struct buf *note, json_t **info) {
  *info = json_pack("{s:i, s:o, s:o, s:b}", "version", version, "paths", json_object(), "created", json_array(), "applied", 0);
  if (note && note->len) json_object_set_new(*info, "note", json_string(note->data));
  if (note) buf_free(note);
  return 0;
}

int oci_cgroup_make(const struct oci_cgroup_req *q, json_t **info, berth_error_t *err) {
  *info = NULL;
  const char *id = q->id;
  bool rootless = q->rootless;
  json_t *res = json_object_get(q->linux_, "resources");
  json_t *cgp = json_object_get(q->linux_, "cgroupsPath");
  if (!q->path && cgp && !json_is_null(cgp) && !json_is_string(cgp))
    return berth_error(err, -EINVAL, "linux.cgroupsPath must be a string, not %s", json_kind(cgp));
  const char *given = q->path ? q->path : json_string_value(cgp);
  if (!id || !*id || strchr(id, '/') || !strcmp(id, ".") || !strcmp(id, ".."))
    return berth_error(err, -EINVAL, "container id `%s` cannot name a cgroup", id ? id : "");
  cleanup_free char *rel = NULL;
  bool absolute = false;
  if (given && *given && q->systemd_cgroup && !q->path) {
    cleanup_free char *sp = NULL;
    if (systemd_path(given, rootless, &sp, err) < 0 || clean_path(sp, &rel, &absolute, err) < 0) return -1;
  } else if (given && *given) {
    if (clean_path(given, &rel, &absolute, err) < 0) return -1;
  } else {
    rel = xasprintf("/berth-oci/%s", id);
  }
  struct buf note = {0}, *np = q->lenient ? &note : NULL;
  struct hiers hs;
  if (hiers_load(&hs, err) < 0) {
    if (!np) return -1;
    note_add(np, (*err)->msg);
    berth_error_clear(err);
    return no_cgroup(cgroup_is_v2() ? 2 : 1, np, info);
  }
  struct cg c = {.version = hs.v2 ? 2 : 1, .paths = json_object(), .rootless = rootless};
  json_t *created = json_array();
  json_t *o = json_pack("{s:i, s:o, s:o}", "version", c.version, "paths", c.paths, "created", created);
  bool owned = false, no_access = false;
  int r = 0;
  /* unified on v1 fails before anything is made */
  json_t *u = json_object_get(res, "unified");
  if (c.version == 1 && json_object_size(u)) r = field_done(apply_unified(&c, u, err), np, err);
  cleanup_free char *leaf = xasprintf("/%s", id);
  for (int i = 0; r == 0 && i < hs.n; i++) {
    struct hier *h = &hs.h[i];
    if (h->ctrls && !hier_wanted(q, res, h->ctrls)) continue;
    /* pure v2: our own cgroup holds us (and mostly the caller's shell), and
     * v2 enables no controller below a cgroup with processes of its own:
     * a relative path goes below its parent instead, as runc's does; a
     * manager names the parent it made ready (v2_base) */
    bool base_given = !h->ctrls && q->v2_base;
    cleanup_free char *own = xstrdup(h->own);
    if (c.version == 2 && !absolute && strrchr(own, '/')) *strrchr(own, '/') = '\0';
    bool top = !base_given && (absolute || !*own || !strcmp(own, "/"));
    cleanup_free char *base = base_given ? xstrdup(q->v2_base) : top ? xstrdup(h->mnt) : xasprintf("%s%s", h->mnt, own);
    const char *r_here = base_given ? leaf : rel;
    cleanup_free char *dir = xasprintf("%s%s", base, r_here);
    bool leaf_new = false;
    berth_error_t me = NULL;
    if (mkdirs(base, r_here, h->ctrls && list_has_word(h->ctrls, "cpuset", ','), !h->ctrls && !base_given, top, created, &leaf_new, &me) <
        0) {
      if (rootless && denied(me->status)) {
        berth_error_free(me);
        no_access = true;
        break;
      }
      if (np) { /* on without this hierarchy */
        note_add(np, me->msg);
        berth_error_free(me);
        continue;
      }
      *err = me;
      r = -1;
      break;
    }
    owned = owned || leaf_new;
    if (h->ctrls) {
      cleanup_free char *copy = xstrdup(h->ctrls);
      char *save;
      for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) json_object_set_new(c.paths, t, json_string(dir));
    } else json_object_set_new(c.paths, "unified", json_string(dir));
  }
  hiers_free(&hs);
  if (r == 0 && no_access) {
    rmdirs_created(created);
    if (np) {
      json_decref(o);
      cleanup_free char *m =
          xasprintf("cannot create cgroup `%s`%s (no write access to the cgroup hierarchy)", rel, absolute ? "" : " below its own cgroup");
      note_add(np, m);
      return no_cgroup(c.version, np, info);
    }
    if (sets_something(res, 0)) {
      json_decref(o);
      return berth_error(
          err, -EPERM,
          "linux.resources sets limits, but this rootless runtime cannot create cgroup `%s`%s (no write access to the cgroup hierarchy): %s",
          rel, absolute ? "" : " below its own cgroup", rootless_advice());
    }
    json_decref(o);
    return no_cgroup(c.version, NULL, info);
  }
  if (r == 0 && c.version == 2 && dir_of(&c, "unified") && sets_something(res, 0)) {
    /* what the resources ask for must be enabled for the leaf */
    static const struct {
      const char *key, *ctrl;
    } NEED[] = {{"memory", "memory"}, {"cpu", "cpu"}, {"pids", "pids"}, {"blockIO", "io"}, {"hugepageLimits", "hugetlb"}, {"rdma", "rdma"}};
    cleanup_free char *ctl = NULL;
    cleanup_free char *pf = xasprintf("%s/cgroup.controllers", dir_of(&c, "unified"));
    read_file(pf, 4096, &ctl, NULL, NULL);
    char *nl = ctl ? strchr(ctl, '\n') : NULL;
    if (nl) *nl = '\0';
    for (size_t i = 0; r == 0 && i < sizeof NEED / sizeof *NEED; i++) {
      json_t *x = json_object_get(res, NEED[i].key);
      if (!sets_something(x, 1)) continue;
      json_t *cpu = json_object_get(res, "cpu");
      /* cpus/mems alone need cpuset, the rest of cpu needs cpu */
      const char *ctrl = NEED[i].ctrl;
      if (!strcmp(NEED[i].key, "cpu") && !json_object_get(cpu, "shares") && !json_object_get(cpu, "quota") &&
          !json_object_get(cpu, "period") && !json_object_get(cpu, "burst") && !json_object_get(cpu, "idle"))
        ctrl = "cpuset";
      if (!list_has_word(ctl, ctrl, ' '))
        r = field_done(berth_error(err, -ENOTSUP,
                                   "linux.resources.%s needs the cgroup v2 `%s` controller, which is not enabled for %s: the parent must "
                                   "have it in cgroup.subtree_control, which cgroup v2 allows only while the parent holds no process; %s",
                                   NEED[i].key, ctrl, dir_of(&c, "unified"),
                                   rootless ? rootless_advice() : "use a cgroupsPath in a cgroup without processes of its own"),
                       np, err);
    }
  }
  if (r == 0 && rootless && c.version == 2 && dir_of(&c, "unified")) {
    /* a directory we could make, but files we may not write (not delegated) */
    cleanup_free char *p = xasprintf("%s/cgroup.procs", dir_of(&c, "unified"));
    if (access(p, W_OK) < 0) {
      rmdirs_created(created);
      json_decref(o);
      if (np) {
        cleanup_free char *m = xasprintf("cgroup %s is not delegated to this user", p);
        note_add(np, m);
        return no_cgroup(c.version, np, info);
      }
      if (sets_something(res, 0))
        return berth_error(err, -EPERM, "linux.resources sets limits, but cgroup %s is not delegated to this user: %s", p,
                           rootless_advice());
      return no_cgroup(c.version, NULL, info);
    }
  }
  if (r == 0) r = apply_resources(&c, res, false, np, err);
  if (r == 0 && q->pid > 0) {
    char v[24];
    snprintf(v, sizeof v, "%d", (int)q->pid);
    const char *dirs[32];
    size_t n = oci_cgroup_dirs(o, dirs, 32);
    for (size_t i = 0; r == 0 && i < n; i++) {
      cleanup_free char *p = xasprintf("%s/cgroup.procs", dirs[i]);
      if (write_value(p, v) < 0) r = berth_error(err, errno, "move process %d into cgroup %s", (int)q->pid, dirs[i]);
    }
  }
  if (r < 0) {
    /* nothing left behind (a process moved already keeps the group busy: it is the caller's to end) */
    rmdirs_created(created);
    json_decref(o);
    buf_free(&note);
    return -1;
  }
  json_object_set_new(o, "owned", json_boolean(owned));
  json_object_set_new(o, "applied", json_boolean(!note.len && json_object_size(c.paths)));
  if (note.len) json_object_set_new(o, "note", json_string(note.data));
  buf_free(&note);
  *info = o;
  return 0;
}

int oci_cgroup_create(const char *id, json_t *linux_, pid_t pid, bool rootless, bool systemd_cgroup, json_t **info, berth_error_t *err) {
  struct oci_cgroup_req q = {.id = id, .linux_ = linux_, .pid = pid, .rootless = rootless, .systemd_cgroup = systemd_cgroup};
  return oci_cgroup_make(&q, info, err);
}

char *oci_cgroup_self_files(json_t *info) {
  bool v1 = json_integer_value(json_object_get(info, "version")) == 1;
  const char *dirs[32];
  size_t n = oci_cgroup_dirs(info, dirs, 32);
  struct buf b = {0};
  for (size_t i = 0; i < n; i++) {
    cleanup_free char *f = xasprintf("%s/%s\n", dirs[i], v1 ? "tasks" : "cgroup.procs");
    buf_append(&b, f, strlen(f));
  }
  buf_append(&b, "", 1);
  return b.data;
}

int oci_cgroup_enter(json_t *info, pid_t pid, berth_error_t *err) {
  char v[24];
  snprintf(v, sizeof v, "%d", (int)pid);
  const char *dirs[32];
  size_t n = oci_cgroup_dirs(info, dirs, 32);
  for (size_t i = 0; i < n; i++) {
    cleanup_free char *p = xasprintf("%s/cgroup.procs", dirs[i]);
    if (write_value(p, v) < 0) return berth_error(err, errno, "move process %d into cgroup %s", (int)pid, dirs[i]);
  }
  return 0;
}

static int load_cg(json_t *info, struct cg *c, berth_error_t *err) {
  c->version = (int)json_integer_value(json_object_get(info, "version"));
  c->paths = json_object_get(info, "paths");
  c->rootless = false;
  if ((c->version != 1 && c->version != 2) || !json_is_object(c->paths))
    return berth_error(err, -EINVAL, "the container's cgroup record is damaged (no version or paths)");
  if (!json_object_size(c->paths))
    return berth_error(err, -ENOTSUP, "the container has no cgroup (a rootless runtime without a delegated cgroup): %s", rootless_advice());
  return 0;
}

int oci_cgroup_update(json_t *info, json_t *resources, berth_error_t *err) {
  struct cg c;
  if (load_cg(info, &c, err) < 0) return -1;
  return apply_resources(&c, resources, true, NULL, err);
}

/* ---- freezer ---- */

static char *read_small(const char *dir, const char *file) {
  cleanup_free char *p = xasprintf("%s/%s", dir, file);
  char *s = NULL;
  if (read_file(p, 8192, &s, NULL, NULL) < 0) return NULL;
  return s;
}

/* the freezer to use: v1's freezer group, else a v2 cgroup.freeze (pure
 * v2, or the unified group of a hybrid host) */
static const char *freezer(json_t *info, bool *v1) {
  json_t *paths = json_object_get(info, "paths");
  const char *d = json_integer_value(json_object_get(info, "version")) == 1 ? json_string_value(json_object_get(paths, "freezer")) : NULL;
  *v1 = d != NULL;
  if (d) return d;
  d = json_string_value(json_object_get(paths, "unified"));
  cleanup_free char *f = d ? xasprintf("%s/cgroup.freeze", d) : NULL;
  return f && access(f, F_OK) == 0 ? d : NULL;
}

static bool v2_events_frozen(const char *dir) {
  cleanup_free char *ev = read_small(dir, "cgroup.events");
  const char *f = ev ? strstr(ev, "frozen ") : NULL;
  return f && f[7] == '1';
}

int oci_cgroup_freeze(json_t *info, bool frozen, berth_error_t *err) {
  struct cg c;
  if (load_cg(info, &c, err) < 0) return -1;
  bool v1;
  const char *d = freezer(info, &v1);
  if (!d)
    return berth_error(err, -ENOTSUP, "cannot %s: this host has no cgroup freezer (mount the v1 freezer controller)",
                       frozen ? "pause" : "resume");
  cleanup_free char *p = xasprintf("%s/%s", d, v1 ? "freezer.state" : "cgroup.freeze");
  const char *want = v1 ? (frozen ? "FROZEN" : "THAWED") : frozen ? "1" : "0";
  /* v1 can stay FREEZING while a task is busy in the kernel: write again
   * now and then, as runc does; give up after ~5 s and thaw */
  for (int i = 0; i < 500; i++) {
    if ((i % 25 == 0) && write_value(p, want) < 0) return berth_error(err, errno, "write %s to %s", want, p);
    bool done;
    if (v1) {
      cleanup_free char *st = read_small(d, "freezer.state");
      done = st && !strncmp(st, want, strlen(want));
    } else done = v2_events_frozen(d) == frozen;
    if (done) return 0;
    sleep_ms(10);
  }
  if (frozen) write_value(p, v1 ? "THAWED" : "0");
  return berth_error(err, -ETIMEDOUT, "the container's processes did not %s within 5 seconds (%s)", frozen ? "freeze" : "thaw", p);
}

bool oci_cgroup_frozen(json_t *info) {
  bool v1;
  const char *d = freezer(info, &v1);
  if (!d) return false;
  if (!v1) return v2_events_frozen(d);
  cleanup_free char *st = read_small(d, "freezer.state");
  return st && !strncmp(st, "FROZEN", 6);
}

/* ---- processes ---- */

/* the group to list: v1 pids, freezer, memory or any; v2 the one */
static const char *procs_dir(json_t *info) {
  json_t *paths = json_object_get(info, "paths");
  if (json_integer_value(json_object_get(info, "version")) == 2) return json_string_value(json_object_get(paths, "unified"));
  static const char *const pref[] = {"pids", "freezer", "memory", "cpu", "devices", "unified"};
  for (size_t i = 0; i < sizeof pref / sizeof *pref; i++) {
    const char *d = json_string_value(json_object_get(paths, pref[i]));
    if (d) return d;
  }
  const char *k;
  json_t *v;
  json_object_foreach(paths, k, v) return json_string_value(v);
  return NULL;
}

static int add_pid(pid_t **a, size_t *n, size_t *cap, pid_t p) {
  for (size_t i = 0; i < *n; i++)
    if ((*a)[i] == p) return 0;
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 16;
    pid_t *na = realloc(*a, nc * sizeof *na);
    if (!na) return -1;
    *a = na, *cap = nc;
  }
  (*a)[(*n)++] = p;
  return 0;
}

/* cgroup.procs of dir and the groups the container made below it */
static int walk_procs(const char *dir, int depth, pid_t **a, size_t *n, size_t *cap, berth_error_t *err) {
  cleanup_free char *procs = read_small(dir, "cgroup.procs");
  if (!procs) {
    cleanup_free char *p = xasprintf("%s/cgroup.procs", dir);
    return depth ? 0 : berth_error(err, errno, "read %s", p);
  }
  char *save;
  for (char *s = strtok_r(procs, "\n", &save); s; s = strtok_r(NULL, "\n", &save))
    if (add_pid(a, n, cap, (pid_t)atoi(s)) < 0) return berth_error(err, ENOMEM, "pids");
  if (depth >= 16) return 0;
  DIR *dd = opendir(dir);
  if (!dd) return 0;
  struct dirent *de;
  int r = 0;
  while (r == 0 && (de = readdir(dd))) {
    if (de->d_type != DT_DIR || de->d_name[0] == '.') continue;
    cleanup_free char *sub = xasprintf("%s/%s", dir, de->d_name);
    r = walk_procs(sub, depth + 1, a, n, cap, err);
  }
  closedir(dd);
  return r;
}

int oci_cgroup_pids(json_t *info, pid_t **pids, size_t *n, berth_error_t *err) {
  *pids = NULL, *n = 0;
  struct cg c;
  if (load_cg(info, &c, err) < 0) return -1;
  const char *d = procs_dir(info);
  size_t cap = 0;
  if (!d || walk_procs(d, 0, pids, n, &cap, err) < 0) {
    free(*pids), *pids = NULL, *n = 0;
    return d ? -1 : berth_error(err, -ENOENT, "the container's cgroup record has no directory");
  }
  return 0;
}

int oci_cgroup_kill_all(json_t *info, int sig, berth_error_t *err) {
  struct cg c;
  if (load_cg(info, &c, err) < 0) return -1;
  if (sig == SIGKILL) {
    /* cgroup.kill: the kernel kills them all, forks in flight included */
    const char *u = json_string_value(json_object_get(c.paths, "unified"));
    cleanup_free char *k = u ? xasprintf("%s/cgroup.kill", u) : NULL;
    if (k && write_value(k, "1") == 0) {
      berth_debug("kill: wrote 1 to %s", k); /* the suite checks which way was taken */
      return 0;
    }
  }
  /* v1: freeze around a SIGKILL so nothing forks past the list (runc) */
  bool v1f = false, froze = sig == SIGKILL && freezer(info, &v1f) && !oci_cgroup_frozen(info);
  if (froze) {
    berth_error_t fe = NULL;
    if (oci_cgroup_freeze(info, true, &fe) < 0) froze = false;
    berth_error_free(fe);
  }
  pid_t *pids;
  size_t n;
  int r = oci_cgroup_pids(info, &pids, &n, err);
  for (size_t i = 0; r == 0 && i < n; i++)
    if (kill(pids[i], sig) < 0 && errno != ESRCH) r = berth_error(err, errno, "signal %d to process %d", sig, (int)pids[i]);
  free(pids);
  if (froze) {
    berth_error_t fe = NULL;
    oci_cgroup_freeze(info, false, &fe);
    berth_error_free(fe);
  }
  return r;
}

/* rmdir dir after the groups below it (made by the container), deepest first */
static int rmdir_tree(const char *dir, int depth) {
  DIR *dd = depth < 16 ? opendir(dir) : NULL;
  struct dirent *de;
  while (dd && (de = readdir(dd))) {
    if (de->d_type != DT_DIR || de->d_name[0] == '.') continue;
    cleanup_free char *sub = xasprintf("%s/%s", dir, de->d_name);
    rmdir_tree(sub, depth + 1);
  }
  if (dd) closedir(dd);
  return rmdir(dir) == 0 || errno == ENOENT ? 0 : -1;
}

void oci_cgroup_destroy(json_t *info) {
  struct cg c;
  berth_error_t e = NULL;
  if (load_cg(info, &c, &e) < 0) {
    berth_error_free(e);
    return;
  }
  /* a cgroup we joined but did not make is not ours to empty or remove */
  if (json_is_false(json_object_get(info, "owned"))) return;
  const char *dirs[32];
  size_t n = oci_cgroup_dirs(info, dirs, 32);
  for (int t = 0; t < 100; t++) {
    pid_t *pids = NULL;
    size_t np = 0;
    if (oci_cgroup_pids(info, &pids, &np, &e) < 0) {
      berth_error_free(e), e = NULL;
      break;
    }
    free(pids);
    if (!np) break;
    if (t % 10 == 0) {
      if (oci_cgroup_frozen(info) && oci_cgroup_freeze(info, false, &e) < 0) berth_error_free(e), e = NULL;
      if (oci_cgroup_kill_all(info, SIGKILL, &e) < 0) berth_error_free(e), e = NULL;
    }
    sleep_ms(10);
  }
  for (size_t i = 0; i < n; i++)
    for (int t = 0; t < 50 && rmdir_tree(dirs[i], 0) < 0 && errno == EBUSY; t++) sleep_ms(10);
  /* the parents we made (testdir/..., berth-oci): only when empty */
  json_t *created = json_object_get(info, "created");
  for (size_t i = json_array_size(created); i-- > 0;) rmdir(json_string_value(json_array_get(created, i)));
}
