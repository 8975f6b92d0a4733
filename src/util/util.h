/* berth: shared helpers — errors, cleanup attributes, file and string utilities. */
#ifndef BERTH_UTIL_H
#define BERTH_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#include "berth.h"

/* ---- errors (crun style): fallible calls return < 0 and fill *err ----
 * errno_ > 0: a system call failed and strerror is appended;
 * errno_ < 0 (e.g. -EINVAL): berth's own finding, classified by -errno_. */
int berth_error(berth_error_t *err, int errno_, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefix an existing error with more context; returns -1. */
int berth_error_wrap(berth_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void berth_error_clear(berth_error_t *err);

/* ---- cleanup helpers ---- */
void berth_freep(void *p);
void berth_closep(int *fd);
void berth_fclosep(FILE **f);
void berth_json_decrefp(json_t **j);
/* both ends of a pipe or socket pair; an end already closed must be -1 */
void berth_close_pairp(int (*p)[2]);
#define cleanup_free __attribute__((cleanup(berth_freep)))
#define cleanup_close __attribute__((cleanup(berth_closep)))
#define cleanup_fclose __attribute__((cleanup(berth_fclosep)))
#define cleanup_error __attribute__((cleanup(berth_error_clear)))
#define cleanup_json __attribute__((cleanup(berth_json_decrefp)))
/* int p[2] = {-1, -1}: closed when it goes out of scope */
#define cleanup_close_pair __attribute__((cleanup(berth_close_pairp)))

/* set by the berth command's main(): this process exits when its command
 * is done (a library caller may live on) */
extern bool berth_is_cli;
/* the caller is an agent or a program (berth tool, berth mcp, berth_call):
 * messages name tool operations and parameters, not CLI commands */
extern bool berth_for_agents;
/* the advice for this caller: CLI wording or tool wording */
static inline const char *advice(const char *cli, const char *tool) { return berth_for_agents ? tool : cli; }

/* ---- logging ---- */
enum { BERTH_LOG_ERROR, BERTH_LOG_WARN, BERTH_LOG_INFO, BERTH_LOG_DEBUG };
extern int berth_log_level;
void berth_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* when set, each message logged also goes here (berth-oci's --log file) */
extern void (*berth_log_hook)(int level, const char *msg);
#define berth_warn(...) berth_log(BERTH_LOG_WARN, __VA_ARGS__)
#define berth_info(...) berth_log(BERTH_LOG_INFO, __VA_ARGS__)
#define berth_debug(...) berth_log(BERTH_LOG_DEBUG, __VA_ARGS__)
/* BERTH_TRACE=1: "berth-trace PID MONOTONIC_MS what" lines on stderr, so the
 * steps of one start-up can be lined up across its processes (one write
 * each; a getenv the first time, nothing after when unset) */
void berth_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- strings ---- */
/* a signal by name (TERM, SIGTERM, RTMIN+3, RTMAX-1) or number 1-64; -1 if unknown */
int signal_parse(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xstrdup(const char *s);
void *xmalloc0(size_t n);
bool str_has_prefix(const char *s, const char *p);
bool str_has_suffix(const char *s, const char *p);
/* The rule for the names of containers and named networks (each one a
 * directory): 1-63 letters, digits, `_`, `.` or `-`, not starting with `.`
 * or `-`. */
bool name_valid(const char *name);

/* growable byte buffer */
struct buf {
  char *data;
  size_t len, cap;
};
int buf_append(struct buf *b, const void *data, size_t len);
void buf_free(struct buf *b);

/* ---- files ---- */
int mkdir_p(const char *path, mode_t mode, berth_error_t *err);
/* Read a whole file (at most max bytes, else EFBIG). */
int read_file(const char *path, size_t max, char **out, size_t *len, berth_error_t *err);
int read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len, berth_error_t *err);
/* Write via temp file + fsync + rename, so readers never see a partial file. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, berth_error_t *err);
/* The same, without the fsync when !durable: for files that are rebuilt
 * or worthless after a crash (a container's runtime files), where each
 * fsync costs milliseconds on the start path. */
int write_file_replace(const char *path, const void *data, size_t len, mode_t mode, bool durable, berth_error_t *err);
/* The same, not durable either, for a file that matters only while its
 * process runs (a one-shot container's state): the new file is swapped in
 * with RENAME_EXCHANGE and the old one unlinked. Renamed over an existing
 * file, ext4 (auto_da_alloc) writes the new one back at once; swapped, a
 * file removed a few milliseconds later never reaches the disk. */
int write_file_swap(const char *path, const void *data, size_t len, mode_t mode, berth_error_t *err);
/* A file that must not exist yet, written in place: for a directory no
 * one reads before it is complete (a container being created). */
int write_file_new(const char *path, const void *data, size_t len, mode_t mode, berth_error_t *err);
/* Remove a tree without following symlinks; missing is fine. */
int rm_rf_at(int dirfd, const char *name, berth_error_t *err);
int rm_rf(const char *path, berth_error_t *err);
bool path_exists(const char *path);
/* Allocate a unique name like "<prefix>.<random>" (no file is created). */
char *random_hex(size_t nbytes);

/* openat2 wrapper confined to dirfd as root (RESOLVE_IN_ROOT | NO_MAGICLINKS). */
int openat_in_root(int rootfd, const char *path, int flags, mode_t mode, uint64_t extra_resolve);

/* Open directory `dir` inside rootfd (O_PATH), creating missing
 * components; every lookup is confined to the root. */
int mkdir_in_root(int rootfd, const char *dir, mode_t mode, uint64_t resolve, berth_error_t *err);
/* the same; directories it creates belong to uid:gid */
int mkdir_in_root_owned(int rootfd, const char *dir, mode_t mode, uint64_t resolve, uid_t uid, gid_t gid, berth_error_t *err);

/* flock-based lock file; returns fd (>= 0) holding the lock */
int lock_file(const char *path, bool exclusive, berth_error_t *err);

/* libcurl / libarchive / libcrypto / libseccomp are loaded on first use; call these
 * before an operation that needs them, to fail with a clear message if
 * missing */
int lazylib_require_curl(berth_error_t *err);
int lazylib_require_archive(berth_error_t *err);
int lazylib_require_crypto(berth_error_t *err);
int lazylib_require_seccomp(berth_error_t *err);
int lazylib_require_yaml(berth_error_t *err);

/* Hide the host command line and environment of berth's helper processes. */
void proc_title_init(int argc, char **argv);
void proc_set_title(const char *title);

/* start time (ticks since boot) of a live process; 0 when gone or a zombie.
 * A pid plus its start time names one process even after pid reuse. */
unsigned long long proc_starttime(pid_t pid);
/* this boot's id ("" when unknown): state recorded in an earlier boot is stale */
char *boot_id_read(void);
/* fuse-overlayfs, where installed (the root filesystem where overlayfs
 * cannot be mounted), or NULL */
const char *fuse_overlayfs_path(void);
/* Keep a just-started child off the caller's CPU while the caller works on
 * in parallel: a new task is queued where its parent runs, and this
 * kernel's balancer leaves it waiting there (bench/micro.sh childwake)
 * while another CPU idles. Returns true and the child's old mask in *saved
 * when it moved it; cpu_restore gives it back. Best effort: false when
 * there is no other CPU to use or the kernel refuses. */
bool cpu_aside(pid_t child, cpu_set_t *saved);

/* Start fn(arg) in a child that shares our memory (CLONE_VM | flags, the
 * exit signal SIGCHLD) on a stack of its own: no copy of our page tables.
 * All signals are blocked around the clone, so no handler of ours runs on
 * that memory in the child (it starts with them blocked). With
 * CLONE_VFORK we sleep until it has exec'd or exited, and its stack is
 * unmapped; without, the stack stays for the child. -1 with errno set. */
pid_t clone_vm(int (*fn)(void *), void *arg, unsigned long flags, size_t stack_len);
void cpu_restore(pid_t child, const cpu_set_t *saved);
/* write a short value (a sysctl, a cgroup file): 0 or -1 with errno */
int write_value(const char *path, const char *val);

/* ---- /proc/PID/cgroup ----
 * One line a hierarchy, "ID:CONTROLLERS:PATH": v1 ones ("4:memory:/a",
 * "3:cpu,cpuacct:/a", "1:name=systemd:/a") and the v2 one ("0::/a"); a
 * hybrid host lists both. The path is all after the second ':', so a ':'
 * or a space in it stays; a line without two ':' is skipped. Matching a
 * line stays with the caller (a controller, a mount's options, the v2 line). */
struct cgroup_line {
  const char *id; /* the hierarchy's id as written: "0" for v2 */
  const char *ctrls; /* comma separated controllers (and name=...); "" for v2 */
  const char *path;
};
/* the lines of one text: a copy of it, cut in place (no allocation a line) */
struct cgroup_lines {
  char *text;
  char *next;
};
/* text may be NULL (no lines); the caller frees with cgroup_lines_free */
struct cgroup_lines cgroup_lines_begin(const char *text);
/* the next line, false at the end; *out points into it until it is freed */
bool cgroup_lines_next(struct cgroup_lines *it, struct cgroup_line *out);
void cgroup_lines_free(struct cgroup_lines *it);
#define cleanup_cgroup_lines __attribute__((cleanup(cgroup_lines_free)))
/* is word one of the items of list, separated by sep (a newline also ends
 * an item: files read whole keep theirs)? */
bool list_has_word(const char *list, const char *word, char sep);
/* does a comma separated list hold word? ("cpu" is not "cpuacct") */
bool cgroup_ctrls_has(const char *list, const char *word);
/* our path in the first hierarchy listing controller ctrl (or "name=..."),
 * or ctrl "" for the v2 line ("0::"); NULL when there is none */
char *cgroup_own_path(const char *text, const char *ctrl);

/* ---- /proc/PID/mountinfo ----
 * One line a mount (proc(5)): "ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS
 * [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS", fields split by one space
 * each (an empty source leaves two in a row). The kernel writes a space,
 * tab, newline or backslash of a path as \040, \011, \012, \134: the
 * paths come back decoded. The option lists stay as written, since a ','
 * inside an option is escaped too and decoding it would split the option.
 * A line without the six leading fields, a mount point starting with '/',
 * the lone "-" and the three fields after it is skipped. */
struct mountinfo_line {
  const char *root; /* the mount's root within its filesystem, decoded */
  const char *mnt; /* the mount point, decoded */
  const char *opts; /* the mount's own options: "rw,nosuid,relatime" */
  const char *fstype; /* "cgroup", "cgroup2", "fuse.fuse-overlayfs" */
  const char *source; /* decoded; may be "" */
  const char *super; /* the superblock's options: "rw,cpu,cpuacct" for a v1 cgroup */
};
/* the lines of one text: a copy of it, cut in place (no allocation a line) */
struct mountinfo_lines {
  char *text;
  char *next;
};
/* text may be NULL (no lines); the caller frees with mountinfo_lines_free */
struct mountinfo_lines mountinfo_lines_begin(const char *text);
/* the next mount, false at the end; *out points into it until it is freed */
bool mountinfo_lines_next(struct mountinfo_lines *it, struct mountinfo_line *out);
void mountinfo_lines_free(struct mountinfo_lines *it);
#define cleanup_mountinfo_lines __attribute__((cleanup(mountinfo_lines_free)))
/* this process's /proc/self/mountinfo, whole (the caller frees *out) */
int mountinfo_read(char **out, berth_error_t *err);

/* a string member of a JSON object (NULL when absent or not a string) */
static inline const char *jstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
/* a boolean member, def when absent or not a boolean */
static inline bool jbool(json_t *o, const char *k, bool def) {
  json_t *v = json_object_get(o, k);
  return json_is_boolean(v) ? json_is_true(v) : def;
}

/* a JSON string from text that may not be valid UTF-8 (bytes become '?') */
json_t *json_string_safe(const char *s);

/* format a byte count as "12.3 MB" into buf */
const char *human_size(uint64_t n, char *buf, size_t len);
double now_seconds(void);
/* the wall clock (unix seconds), for times recorded or compared with records */
double wall_seconds(void);

#endif
