#define _GNU_SOURCE
#include "runtime/cgroup.h"
#include "runtime/oci_cgroup.h"
#include <sys/syscall.h>
#include <linux/sched.h>

#include <errno.h>
#include <pthread.h>
#include <linux/bpf.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int parse_size(const char *s, int64_t *out, berth_error_t *err) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno || v <= 0) return berth_error(err, -EINVAL, "invalid size `%s`: use e.g. 512m, 4g, 1048576", s);
  int64_t mul = 1;
  switch (*end) {
  case 'k':
  case 'K':
    mul = 1LL << 10;
    end++;
    break;
  case 'm':
  case 'M':
    mul = 1LL << 20;
    end++;
    break;
  case 'g':
  case 'G':
    mul = 1LL << 30;
    end++;
    break;
  case 't':
  case 'T':
    mul = 1LL << 40;
    end++;
    break;
  case 'b':
  case 'B': end++; break;
  }
  if ((*end == 'b' || *end == 'B') && mul > 1) end++;
  if (*end) return berth_error(err, -EINVAL, "invalid size `%s`: use e.g. 512m, 4g, 1048576", s);
  if (v * mul < 6 * (1 << 20) || v * mul > 1e15) return berth_error(err, -ERANGE, "size `%s` out of range (at least 6m)", s);
  *out = (int64_t)(v * mul);
  return 0;
}

static int write_str(const char *dir, const char *file, const char *val) {
  cleanup_free char *p = xasprintf("%s/%s", dir, file);
  return write_value(p, val);
}

/* own path for a v1 controller, or the v2 path with ctrl == "", in the
 * text of /proc/self/cgroup (NULL: read it) */
static char *own_path_in(const char *text, const char *ctrl) {
  cleanup_free char *own = NULL;
  if (!text && read_file("/proc/self/cgroup", 1 << 16, &own, NULL, NULL) < 0) return NULL;
  return cgroup_own_path(text ? text : own, ctrl);
}

/* mount point of a v1 controller in the text of /proc/self/mountinfo */
static char *v1_mount_in(const char *text, const char *ctrl) {
  cleanup_mountinfo_lines struct mountinfo_lines it = mountinfo_lines_begin(text);
  struct mountinfo_line m;
  while (mountinfo_lines_next(&it, &m))
    if (!strcmp(m.fstype, "cgroup") && cgroup_ctrls_has(m.super, ctrl)) return xstrdup(m.mnt);
  return NULL;
}

static bool is_pure_v2(void) {
  struct stat st;
  return stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
}

/* does a space separated cgroup list (cgroup.controllers) hold WORD? ("cpu" is not "cpuset") */
static bool has_word(const char *list, const char *word) {
  size_t n = strlen(word);
  for (const char *p = list; p && (p = strstr(p, word)); p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ' || p[n] == '\n')) return true;
  return false;
}

/* enable memory, pids and cpu in DIR's subtree_control, those of them DIR
 * has, in one write: a controller DIR lacks must not stop the others, and
 * one at a time would let the threaded ones (pids, cpu) in while memory is
 * refused, which turns a cgroup with processes into a thread root whose
 * children can take no process (EOPNOTSUPP). 0 when all three are on.
 * io goes along where DIR has it (a domain controller like memory, so
 * refused only where memory is): accounting only, io.stat for berth stats. */
static int v2_enable(const char *dir) {
  static const char *const want[] = {"memory", "pids", "cpu", "io"};
  cleanup_free char *cur = NULL;
  cleanup_free char *avail = NULL;
  cleanup_free char *p = xasprintf("%s/cgroup.subtree_control", dir);
  cleanup_free char *pc = xasprintf("%s/cgroup.controllers", dir);
  read_file(p, 4096, &cur, NULL, NULL);
  read_file(pc, 4096, &avail, NULL, NULL);
  char v[64] = "";
  bool all = true;
  for (int i = 0; i < 4; i++) {
    if (has_word(cur, want[i])) continue;
    if (!has_word(avail, want[i])) {
      if (i < 3) all = false; /* io is not required */
      continue;
    }
    snprintf(v + strlen(v), sizeof v - strlen(v), "%s+%s", *v ? " " : "", want[i]);
  }
  if (*v && write_str(dir, "cgroup.subtree_control", v) < 0) return -1;
  if (!all) {
    errno = ENOENT;
    return -1;
  }
  return 0;
}

/* pids in DIR/cgroup.procs other than this process */
static bool v2_has_others(const char *dir) {
  cleanup_free char *procs = NULL;
  cleanup_free char *p = xasprintf("%s/cgroup.procs", dir);
  if (read_file(p, 1 << 20, &procs, NULL, NULL) < 0) return true;
  for (char *save, *s = strtok_r(procs, "\n", &save); s; s = strtok_r(NULL, "\n", &save))
    if (atoi(s) != getpid()) return true;
  return false;
}

/* The directory that holds the containers' cgroups: <own cgroup>/berth,
 * with memory, pids and cpu enabled in both levels. cgroup v2 lets a
 * non-root cgroup hand controllers to children only while it holds no
 * process itself ("no internal processes"), and berth runs in its own
 * cgroup: where berth is the only process there (a delegated scope made
 * for it, `systemd-run --user --scope -p Delegate=yes`), it moves itself
 * into the leaf <own>/berth/monitor first (the monitors it forks stay
 * there); where other processes share it (a login shell's session scope),
 * root uses /sys/fs/cgroup/berth instead, and others get NULL with the
 * reason in *why. */
static char *v2_parent(char **why) {
  cleanup_free char *own = own_path_in(NULL, "");
  /* moved there by an earlier create of this process (berth mcp, berth tool,
   * libberth): the containers' parent is the one that holds this leaf */
  size_t ol = own ? strlen(own) : 0;
  if (ol > strlen("/berth/monitor") && !strcmp(own + ol - strlen("/berth/monitor"), "/berth/monitor"))
    own[ol - strlen("/berth/monitor")] = '\0';
  bool top = !own || !strcmp(own, "/");
  cleanup_free char *base = xasprintf("/sys/fs/cgroup%s", top ? "" : own);
  cleanup_free char *parent = xasprintf("%s/berth", base);
  if (mkdir(parent, 0755) < 0 && errno != EEXIST) {
    *why = xasprintf("cannot create a cgroup under %s (%s)", base, strerror(errno));
    goto fallback;
  }
  if (v2_enable(base) < 0) {
    if (errno != EBUSY || top) {
      *why = xasprintf("cannot enable memory, pids and cpu in %s/cgroup.subtree_control (%s)", base, strerror(errno));
      goto fallback;
    }
    /* EBUSY: processes in base. Only berth itself? then step aside. */
    if (v2_has_others(base)) {
      *why = xasprintf("cgroup %s holds other processes besides berth, and cgroup v2 gives controllers only to cgroups "
                       "without processes of their own",
                       base);
      goto fallback;
    }
    cleanup_free char *leaf = xasprintf("%s/monitor", parent);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    if ((mkdir(leaf, 0755) < 0 && errno != EEXIST) || write_str(leaf, "cgroup.procs", pid) < 0) {
      *why = xasprintf("cannot move berth into %s (%s)", leaf, strerror(errno));
      goto fallback;
    }
    if (v2_enable(base) < 0) {
      *why = xasprintf("cannot enable memory, pids and cpu in %s/cgroup.subtree_control (%s)", base, strerror(errno));
      goto fallback;
    }
  }
  if (v2_enable(parent) < 0) {
    *why = xasprintf("cannot enable memory, pids and cpu in %s/cgroup.subtree_control (%s)", parent, strerror(errno));
    goto fallback;
  }
  return strdup(parent);
fallback:
  if (!top && geteuid() == 0) {
    /* root: the root cgroup is exempt from the rule (like Docker's cgroupfs driver) */
    if ((mkdir("/sys/fs/cgroup/berth", 0755) == 0 || errno == EEXIST) && v2_enable("/sys/fs/cgroup") == 0 &&
        v2_enable("/sys/fs/cgroup/berth") == 0) {
      free(*why);
      *why = NULL;
      return strdup("/sys/fs/cgroup/berth");
    }
  }
  return NULL;
}

/* One rule of the devices allow-list: type c or b, major, minor (-1:
 * any), read and write. mknod is never allowed: no workload holds
 * CAP_MKNOD, and a node made anyway must not open. */
struct dev_rule {
  char type;
  int32_t major, minor;
  bool r, w;
};

/* berth's own /dev: null, zero, full, random, urandom, tty, ptmx and the
 * pts range, read and write */
static const struct dev_rule DEVICE_ALLOW[] = {{'c', 1, 3, 1, 1}, {'c', 1, 5, 1, 1}, {'c', 1, 7, 1, 1}, {'c', 1, 8, 1, 1},
                                               {'c', 1, 9, 1, 1}, {'c', 5, 0, 1, 1}, {'c', 5, 2, 1, 1}, {'c', 136, -1, 1, 1}};
enum { N_DEVICE_ALLOW = sizeof DEVICE_ALLOW / sizeof *DEVICE_ALLOW };

json_t *cgroup_default_devices(void) {
  json_t *a = json_array();
  json_array_append_new(a, json_pack("{s:b, s:s}", "allow", 0, "access", "rwm"));
  for (int i = 0; i < N_DEVICE_ALLOW; i++) {
    json_t *e = json_pack("{s:b, s:s, s:i, s:s}", "allow", 1, "type", "c", "major", DEVICE_ALLOW[i].major, "access", "rw");
    if (DEVICE_ALLOW[i].minor >= 0) json_object_set_new(e, "minor", json_integer(DEVICE_ALLOW[i].minor));
    json_array_append_new(a, e);
  }
  return a;
}

/* The allow-list of a berth container's spec (what berth wrote: a
 * deny-all entry, then allow entries), as berth applies it: only allow
 * entries of type c or b with a major (an entry without one would allow
 * every device of its type), read and write as each says, never mknod.
 * Not an array (a container made before the list was written): berth's
 * own list. */
json_t *cgroup_berth_devices(json_t *devices) {
  if (!json_is_array(devices)) return cgroup_default_devices();
  json_t *out = json_array();
  json_array_append_new(out, json_pack("{s:b, s:s}", "allow", 0, "access", "rwm"));
  size_t i;
  json_t *d;
  json_array_foreach(devices, i, d) {
    const char *type = json_string_value(json_object_get(d, "type")), *acc = json_string_value(json_object_get(d, "access"));
    json_t *ma = json_object_get(d, "major"), *mi = json_object_get(d, "minor");
    if (!json_is_true(json_object_get(d, "allow")) || !type || (strcmp(type, "c") && strcmp(type, "b")) || !json_is_integer(ma) ||
        json_integer_value(ma) < 0 || json_integer_value(ma) > 0xfff || (mi && !json_is_integer(mi)) || !acc)
      continue;
    json_int_t minor = mi ? json_integer_value(mi) : -1;
    bool r = strchr(acc, 'r') != NULL, w = strchr(acc, 'w') != NULL;
    if (minor < -1 || minor > 0xfffff || (!r && !w)) continue;
    json_t *e = json_pack("{s:b, s:s, s:I, s:s}", "allow", 1, "type", type, "major", json_integer_value(ma), "access",
                          r && w ? "rw"
                          : r    ? "r"
                                 : "w");
    if (minor >= 0) json_object_set_new(e, "minor", json_integer(minor));
    json_array_append_new(out, e);
  }
  return out;
}

/* load a BPF_PROG_TYPE_CGROUP_DEVICE program and attach it to cgfd */
static int bpf_load_attach(int cgfd, struct bpf_insn *p, int n, berth_error_t *err) {
  union bpf_attr la = {0};
  la.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  la.insns = (uint64_t)(uintptr_t)p;
  la.insn_cnt = (uint32_t)n;
  la.license = (uint64_t)(uintptr_t) "GPL";
  int pfd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &la, sizeof la);
  if (pfd < 0 && errno == EINVAL) { /* what the verifier says, for the message */
    char log[4096] = "";
    la.log_level = 1;
    la.log_buf = (uint64_t)(uintptr_t)log;
    la.log_size = sizeof log;
    pfd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &la, sizeof la);
    if (pfd < 0) return berth_error(err, -EINVAL, "load the devices program: %.300s", log);
  }
  if (pfd < 0) return berth_error(err, errno, "load the devices program");
  union bpf_attr aa = {0};
  aa.target_fd = (uint32_t)cgfd;
  aa.attach_bpf_fd = (uint32_t)pfd;
  aa.attach_type = BPF_CGROUP_DEVICE;
  aa.attach_flags = BPF_F_ALLOW_MULTI;
  int r = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &aa, sizeof aa);
  int e = errno;
  close(pfd); /* the attachment holds it */
  return r < 0 ? berth_error(err, e, "attach the devices program") : 0;
}

/* cgroup v2 has no devices files: the same allow-list as a
 * BPF_PROG_TYPE_CGROUP_DEVICE program on the container's cgroup (as runc
 * and crun do). ctx is struct bpf_cgroup_dev_ctx {access_type (access <<
 * 16 | type), major, minor}; 1 allows, 0 refuses. */
#define INSN(c, d, sr, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (sr), .off = (o), .imm = (i)})
/* both programs start the same: r2 access, r3 type, r4 major, r5 minor */
static int load_dev_ctx(struct bpf_insn *p) {
  int n = 0;
  p[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_2, BPF_REG_1, 0, 0); /* r2 = access_type */
  p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_2, 0, 0);
  p[n++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_3, 0, 0, 0xffff); /* r3 = type */
  p[n++] = INSN(BPF_ALU64 | BPF_RSH | BPF_K, BPF_REG_2, 0, 0, 16); /* r2 = access */
  p[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_4, BPF_REG_1, 4, 0); /* r4 = major */
  p[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_5, BPF_REG_1, 8, 0); /* r5 = minor */
  return n;
}

/* The allow-list of an OCI runtime (berth-oci), its entries as the spec
 * has them: type a (any), b or c; major and minor -1 for any; read, write
 * and mknod each as allowed. What no entry allows is refused. */
int cgroup_devices_bpf_rules(int cgfd, const struct cgroup_dev_rule *rules, size_t nr, berth_error_t *err) {
  struct bpf_insn *p = calloc(10 + 6 * nr, sizeof *p);
  size_t *to_allow = calloc(nr + 1, sizeof *to_allow);
  if (!p || !to_allow) {
    free(p), free(to_allow);
    return berth_error(err, -ENOMEM, "devices program");
  }
  int n = load_dev_ctx(p);
  for (size_t i = 0; i < nr; i++) {
    const struct cgroup_dev_rule *x = &rules[i];
    if ((x->type != 'a' && x->type != 'b' && x->type != 'c') || x->major > INT32_MAX || x->minor > INT32_MAX) {
      free(p), free(to_allow);
      return berth_error(err, -EINVAL, "devices rule %zu: type %c, major %lld, minor %lld cannot be checked", i, x->type ? x->type : '?',
                         (long long)x->major, (long long)x->minor);
    }
    /* each test that fails jumps to the next rule; all pass: allow */
    int next_jumps[5], nj = 0;
    if (x->type != 'a') {
      next_jumps[nj++] = n;
      p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_3, 0, 0, x->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
    }
    if (x->major >= 0) {
      next_jumps[nj++] = n;
      p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, 0, (int32_t)x->major);
    }
    if (x->minor >= 0) {
      next_jumps[nj++] = n;
      p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, 0, (int32_t)x->minor);
    }
    int denied = (x->r ? 0 : BPF_DEVCG_ACC_READ) | (x->w ? 0 : BPF_DEVCG_ACC_WRITE) | (x->m ? 0 : BPF_DEVCG_ACC_MKNOD);
    if (denied) {
      next_jumps[nj++] = n;
      p[n++] = INSN(BPF_JMP | BPF_JSET | BPF_K, BPF_REG_2, 0, 0, denied);
    }
    to_allow[i] = (size_t)n;
    p[n++] = INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0);
    for (int j = 0; j < nj; j++) p[next_jumps[j]].off = (int16_t)(n - next_jumps[j] - 1);
  }
  p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0); /* deny */
  p[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  int allow = n;
  p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1);
  p[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  for (size_t i = 0; i < nr; i++) p[to_allow[i]].off = (int16_t)(allow - (int)to_allow[i] - 1);
  free(to_allow);
  int r = bpf_load_attach(cgfd, p, n, err);
  free(p);
  return r;
}

/* v1: the groups a berth container gets, the resources aside: its
 * limits', and cpuacct and devices (the CPU time `berth stats` reads, the
 * allow-list); no freezer, blkio and the rest (each group is a mkdir, a
 * `tasks` write at each start and an rmdir) */
static const char *const BERTH_V1_CTRLS[] = {"memory", "pids", "cpu", "cpuacct", "devices", NULL};

int cgroup_create(const char *name, json_t *spec_linux, json_t **info, berth_error_t *err) {
  *info = NULL;
  bool v2 = is_pure_v2();
  cleanup_free char *why = NULL;
  cleanup_free char *parent = v2 ? v2_parent(&why) : NULL;
  cleanup_free char *path = v2 ? NULL : xasprintf("berth/%s", name);
  /* the spec's linux with the allow-list as berth applies it */
  json_t *lin = json_is_object(spec_linux) ? json_copy(spec_linux) : json_object();
  json_t *res = json_object_get(lin, "resources");
  res = json_is_object(res) ? json_copy(res) : json_object();
  json_object_set_new(res, "devices", cgroup_berth_devices(json_object_get(res, "devices")));
  json_object_set_new(lin, "resources", res);
  json_object_del(lin, "cgroupsPath"); /* berth's layout, not the spec's */
  json_t *o = NULL;
  int r = 0;
  if (v2 && !parent) o = json_pack("{s:i, s:{}, s:b, s:s}", "version", 2, "paths", "applied", 0, "note", why ? why : "no cgroup");
  else {
    struct oci_cgroup_req q = {.id = name,
                               .linux_ = lin,
                               .rootless = geteuid() != 0,
                               .path = path,
                               .v2_base = parent,
                               .v1_ctrls = BERTH_V1_CTRLS,
                               .lenient = true};
    r = oci_cgroup_make(&q, &o, err);
  }
  json_decref(lin);
  if (r < 0) return -1;
  /* berth's record: the directories, each once (what `berth status` shows
   * and its readers take), whether the limits hold, and why not */
  const char *dirs[32];
  size_t n = oci_cgroup_dirs(o, dirs, 32);
  json_t *paths = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(paths, json_string(dirs[i]));
  bool applied = json_is_true(json_object_get(o, "applied"));
  json_t *out = json_pack("{s:O, s:o, s:b}", "version", json_object_get(o, "version"), "paths", paths, "limits_applied", applied);
  if (!applied) {
    const char *said = json_string_value(json_object_get(o, "note"));
    cleanup_free char *note = xasprintf(
        "%s; running without %s limits (%s)", said && *said ? said : "no cgroup controller berth uses is mounted", v2 ? "the" : "those",
        v2 ? "run berth in a delegated cgroup: `systemd-run --user --scope -p Delegate=yes berth ...`; `berth preflight` says "
             "what is missing"
           : "cgroup v1 needs root: rootless limits need cgroup v2 with delegation");
    json_object_set_new(out, "note", json_string(note));
  }
  json_decref(o);
  *info = out;
  return 0;
}

bool cgroup_is_v2(void) { return is_pure_v2(); }

int cgroup_enter(json_t *info, pid_t pid, berth_error_t *err) {
  size_t i;
  json_t *p;
  char v[32];
  snprintf(v, sizeof v, "%d", (int)pid);
  json_array_foreach(json_object_get(info, "paths"), i, p) {
    if (write_str(json_string_value(p), "cgroup.procs", v) < 0)
      return berth_error(err, errno, "move process %d into cgroup %s", (int)pid, json_string_value(p));
  }
  return 0;
}

/* Moving another process (or a whole thread group) takes the kernel's
 * global threadgroup lock for writing, and the first writer after a quiet
 * spell waits out an RCU grace period, on every start a person makes
 * (docs/performance.md). A thread that moves itself through v1's `tasks`
 * ("0") skips that lock. v2 has no such way (a thread cannot leave its
 * domain): there cgroup.procs, or better be born inside (cgroup_clone_into). */
int cgroup_enter_self(json_t *info, berth_error_t *err) {
  bool v1 = json_integer_value(json_object_get(info, "version")) == 1;
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(info, "paths"), i, p) {
    if (write_str(json_string_value(p), v1 ? "tasks" : "cgroup.procs", "0") < 0)
      return berth_error(err, errno, "move into cgroup %s", json_string_value(p));
  }
  return 0;
}

/* A raw clone3 child skips glibc's fork handlers (malloc's locks among
 * them): only safe while this process has a single thread. */
static bool single_threaded(void) {
  struct stat sb;
  return stat("/proc/self/task", &sb) == 0 && sb.st_nlink == 3;
}

pid_t cgroup_clone_into(json_t *info, uint64_t flags, bool *placed) {
  *placed = false;
  json_t *paths = json_object_get(info, "paths");
  if (json_integer_value(json_object_get(info, "version")) != 2 || json_array_size(paths) != 1 || !single_threaded()) {
    errno = EOPNOTSUPP;
    return -1;
  }
  int cfd = open(json_string_value(json_array_get(paths, 0)), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cfd < 0) return -1;
  /* CLONE_PARENT: the child's exit signal is ours to our parent (clone3 wants 0 here) */
  struct clone_args a = {.flags = flags | CLONE_INTO_CGROUP, .exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD, .cgroup = (uint64_t)cfd};
  long r = syscall(SYS_clone3, &a, sizeof a);
  int e = errno;
  close(cfd); /* in the child too: no handle on the host's cgroupfs */
  if (r >= 0) *placed = true;
  errno = e;
  return (pid_t)r;
}

bool cgroup_clone_refused(int e) {
  /* old kernel, or a cgroup the kernel will not clone into: fork and move */
  return e == ENOSYS || e == EINVAL || e == E2BIG || e == EOPNOTSUPP || e == EPERM || e == EACCES;
}

pid_t cgroup_fork_into(json_t *info) {
  bool placed;
  pid_t r = cgroup_clone_into(info, 0, &placed);
  if (r >= 0 || !cgroup_clone_refused(errno)) return r;
  pid_t p = fork();
  if (p == 0) {
    berth_error_t e = NULL;
    if (cgroup_enter_self(info, &e) < 0) berth_error_free(e);
    berth_trace("cgroup: entered (moved)");
  }
  return p;
}

static bool cgroup_empty(const char *dir) {
  cleanup_free char *procs = NULL;
  cleanup_free char *p = xasprintf("%s/cgroup.procs", dir);
  size_t n = 0;
  if (read_file(p, 1 << 20, &procs, &n, NULL) < 0) return true;
  return n == 0;
}

void cgroup_destroy(json_t *info) {
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(info, "paths"), i, p) {
    const char *dir = json_string_value(p);
    if (!dir || !path_exists(dir)) continue;
    for (int tries = 0; tries < 100; tries++) {
      if (rmdir(dir) == 0 || errno == ENOENT) break;
      if (errno != EBUSY) break;
      /* processes left (e.g. the container was killed from outside): kill them */
      if (json_integer_value(json_object_get(info, "version")) == 2) write_str(dir, "cgroup.kill", "1");
      else if (!cgroup_empty(dir)) {
        cleanup_free char *procs = NULL;
        cleanup_free char *pp = xasprintf("%s/cgroup.procs", dir);
        if (read_file(pp, 1 << 20, &procs, NULL, NULL) == 0)
          for (char *save_ = NULL, *s = strtok_r(procs, "\n", &save_); s; s = strtok_r(NULL, "\n", &save_)) kill((pid_t)atoi(s), SIGKILL);
      }
      struct timespec ts = {0, 20 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
}

/* ---- resource use (berth stats) ---- */

int64_t cgroup_stat_field(const char *text, const char *key) {
  size_t n = strlen(key);
  for (const char *l = text; l && *l;) {
    if (!strncmp(l, key, n) && l[n] == ' ') return strtoll(l + n + 1, NULL, 10);
    l = strchr(l, '\n');
    if (l) l++;
  }
  return -1;
}

int64_t cgroup_parse_limit(const char *text) {
  while (*text == ' ' || *text == '\t') text++;
  char *end;
  long long v = strtoll(text, &end, 10);
  /* "max" (v2), or v1's "no limit": the page counter's maximum, near INT64_MAX */
  if (end == text || v < 0 || v >= INT64_MAX / 2) return -1;
  return v;
}

void cgroup_parse_io_stat(const char *text, int64_t *rd, int64_t *wr) {
  *rd = *wr = 0;
  for (const char *t = text; t && *t;) {
    t += strspn(t, " \n");
    if (!strncmp(t, "rbytes=", 7)) *rd += strtoll(t + 7, NULL, 10);
    else if (!strncmp(t, "wbytes=", 7)) *wr += strtoll(t + 7, NULL, 10);
    t += strcspn(t, " \n");
  }
}

void cgroup_parse_blkio(const char *text, int64_t *rd, int64_t *wr) {
  *rd = *wr = 0;
  for (const char *l = text; l && *l;) {
    /* "MAJ:MIN Read N", "MAJ:MIN Write N", ...; the last line is "Total N" */
    char op[16];
    long long v;
    if (sscanf(l, "%*u:%*u %15s %lld", op, &v) == 2) {
      if (!strcmp(op, "Read")) *rd += v;
      else if (!strcmp(op, "Write")) *wr += v;
    }
    l = strchr(l, '\n');
    if (l) l++;
  }
}

/* a small file of the cgroup directory dfd, NUL-terminated; -1 when absent */
static ssize_t cg_read(int dfd, const char *file, char *buf, size_t len) {
  int fd = openat(dfd, file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t n = 0;
  ssize_t r;
  while (n < len - 1 && (r = read(fd, buf + n, len - 1 - n)) > 0) n += (size_t)r;
  close(fd);
  buf[n] = '\0';
  return (ssize_t)n;
}

/* cgroup v1: which hierarchy a path is in, from the mount points, read
 * once per process (a container's own name may be "memory-x": the path
 * text alone cannot tell) */
enum { CG_MEMORY = 1, CG_PIDS = 2, CG_CPUACCT = 4, CG_BLKIO = 8 };
static char *v1_mnt[4];
static pthread_once_t v1_mnt_once = PTHREAD_ONCE_INIT;
static void v1_mnt_load(void) {
  cleanup_free char *minfo = NULL;
  if (mountinfo_read(&minfo, NULL) < 0) return;
  const char *ctrls[] = {"memory", "pids", "cpuacct", "blkio"};
  for (int i = 0; i < 4; i++) v1_mnt[i] = v1_mount_in(minfo, ctrls[i]);
}
static unsigned v1_controllers(const char *path) {
  pthread_once(&v1_mnt_once, v1_mnt_load);
  unsigned has = 0;
  for (int i = 0; i < 4; i++) {
    size_t n = v1_mnt[i] ? strlen(v1_mnt[i]) : 0;
    if (n && !strncmp(path, v1_mnt[i], n) && path[n] == '/') has |= 1u << i;
  }
  return has;
}

int cgroup_stats(json_t *info, struct cgroup_stats *out) {
  *out = (struct cgroup_stats){.mem_usage = -1, .mem_limit = -1, .cpu_ns = -1, .pids = -1, .pids_max = -1, .io_read = -1, .io_write = -1};
  bool v2 = json_integer_value(json_object_get(info, "version")) == 2;
  json_t *paths = json_object_get(info, "paths");
  if (!json_array_size(paths)) return -1;
  char buf[16384];
  size_t i;
  json_t *p;
  json_array_foreach(paths, i, p) {
    const char *d = json_string_value(p);
    unsigned has = !d ? 0 : v2 ? ~0u : v1_controllers(d); /* v1: not the cpu and devices groups */
    cleanup_close int dfd = has ? open(d, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd < 0) continue;
    if (has & CG_MEMORY) {
      int64_t use = cg_read(dfd, v2 ? "memory.current" : "memory.usage_in_bytes", buf, sizeof buf) > 0 ? strtoll(buf, NULL, 10) : -1;
      bool stat = use >= 0 && cg_read(dfd, "memory.stat", buf, sizeof buf) > 0;
      if (use >= 0) {
        /* less the inactive page cache, which the kernel drops first: the
         * figure docker stats shows */
        int64_t inactive = stat ? cgroup_stat_field(buf, v2 ? "inactive_file" : "total_inactive_file") : -1;
        out->mem_usage = inactive > 0 && inactive < use ? use - inactive : use;
      }
      /* v1's memory.stat has the limit too, the lowest on the way up (one
       * file less to open per container) */
      int64_t hl = stat && !v2 ? cgroup_stat_field(buf, "hierarchical_memory_limit") : -1;
      if (hl >= 0) out->mem_limit = hl < INT64_MAX / 2 ? hl : -1; /* no limit: as in cgroup_parse_limit */
      else if (cg_read(dfd, v2 ? "memory.max" : "memory.limit_in_bytes", buf, sizeof buf) > 0) out->mem_limit = cgroup_parse_limit(buf);
    }
    if (has & CG_CPUACCT) {
      if (v2) {
        int64_t us = cg_read(dfd, "cpu.stat", buf, sizeof buf) > 0 ? cgroup_stat_field(buf, "usage_usec") : -1;
        if (us >= 0) out->cpu_ns = us * 1000;
      } else if (cg_read(dfd, "cpuacct.usage", buf, sizeof buf) > 0) out->cpu_ns = strtoll(buf, NULL, 10);
    }
    if (has & CG_PIDS) {
      if (cg_read(dfd, "pids.current", buf, sizeof buf) > 0) out->pids = strtoll(buf, NULL, 10);
      if (cg_read(dfd, "pids.max", buf, sizeof buf) > 0) out->pids_max = cgroup_parse_limit(buf);
    }
    /* v2: only where the io controller is on for the container's cgroup */
    if ((has & CG_BLKIO) && cg_read(dfd, v2 ? "io.stat" : "blkio.throttle.io_service_bytes", buf, sizeof buf) >= 0) {
      if (v2) cgroup_parse_io_stat(buf, &out->io_read, &out->io_write);
      else cgroup_parse_blkio(buf, &out->io_read, &out->io_write);
    }
  }
  return 0;
}

static int64_t read_num(const char *dir, const char *file) {
  cleanup_free char *p = xasprintf("%s/%s", dir, file);
  cleanup_free char *s = NULL;
  if (read_file(p, 4096, &s, NULL, NULL) < 0) return -1;
  return strtoll(s, NULL, 10);
}

void cgroup_usage(json_t *info, int64_t *mem, int64_t *pids) {
  *mem = *pids = -1;
  size_t i;
  json_t *p;
  bool v2 = json_integer_value(json_object_get(info, "version")) == 2;
  json_array_foreach(json_object_get(info, "paths"), i, p) {
    const char *d = json_string_value(p);
    if (v2) {
      *mem = read_num(d, "memory.current");
      *pids = read_num(d, "pids.current");
    } else if (strstr(d, "/memory/")) *mem = read_num(d, "memory.usage_in_bytes");
    else if (strstr(d, "/pids/")) *pids = read_num(d, "pids.current");
  }
}

/* How many times the kernel's OOM killer ended a process of this cgroup:
 * v2 memory.events `oom_kill`, v1 memory.oom_control `oom_kill` (read
 * before the cgroup goes, for the exit record). */
int64_t cgroup_oom_kills(json_t *info) {
  size_t i;
  json_t *p;
  bool v2 = json_integer_value(json_object_get(info, "version")) == 2;
  json_array_foreach(json_object_get(info, "paths"), i, p) {
    const char *d = json_string_value(p);
    if (!d || (!v2 && !strstr(d, "/memory/"))) continue;
    cleanup_free char *f = xasprintf("%s/%s", d, v2 ? "memory.events" : "memory.oom_control");
    cleanup_free char *txt = NULL;
    if (read_file(f, 4096, &txt, NULL, NULL) < 0) continue;
    const char *k = strstr(txt, "oom_kill ");
    if (k) return strtoll(k + 9, NULL, 10);
  }
  return 0;
}
