/* runtime/ pieces below the container: the launcher <-> init messages
 * (init.c) on a real pipe, and a spec's mounts and devices (rootfs.c) in a
 * private mount namespace, as berth's init and berth-oci both run them. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/container.h"
#include "runtime/container_internal.h"
#include "runtime/process.h"
#include "runtime/rootfs.h"

/* ---------- messages ---------- */
Test(init_msg, round_trip_with_and_without_payload) {
  int p[2];
  cr_assert_eq(pipe(p), 0);
  cr_assert_eq(init_msg_send(p[1], INIT_MSG_GO, 1, NULL), 0);
  cr_assert_eq(init_msg_send(p[1], INIT_MSG_CGROUP, 1, "{\"version\":1}"), 0);
  cr_assert_eq(init_msg_send(p[1], INIT_MSG_READY, 0, ""), 0); /* an empty remark is none */
  cr_assert_eq(init_msg_expect(p[0], INIT_MSG_GO, NULL), 1);
  char *pl = NULL;
  cr_assert_eq(init_msg_expect(p[0], INIT_MSG_CGROUP, &pl), 1);
  cr_assert_str_eq(pl, "{\"version\":1}");
  free(pl);
  struct init_msg_hdr h;
  cr_assert_eq(init_msg_recv(p[0], &h, &pl), 0);
  cr_assert_eq(h.type, INIT_MSG_READY);
  cr_assert_null(pl);
  close(p[1]);
  cr_assert_eq(init_msg_recv(p[0], &h, &pl), -1, "EOF is no message");
  close(p[0]);
}

Test(init_msg, a_payload_larger_than_a_pipe_write_arrives_whole) {
  int p[2];
  cr_assert_eq(pipe(p), 0);
  size_t n = 200000; /* more than the pipe holds: a reader must run meanwhile */
  char *big = malloc(n + 1);
  for (size_t i = 0; i < n; i++) big[i] = (char)('a' + i % 26);
  big[n] = '\0';
  pid_t c = fork();
  if (c == 0) _exit(init_msg_send(p[1], INIT_MSG_ERROR, 5, big) == 0 ? 0 : 1);
  close(p[1]);
  char *pl = NULL;
  struct init_msg_hdr h;
  cr_assert_eq(init_msg_recv(p[0], &h, &pl), 0);
  cr_assert_eq(h.type, INIT_MSG_ERROR);
  cr_assert_eq(h.value, 5);
  cr_assert_eq(strlen(pl), n);
  cr_assert_eq(memcmp(pl, big, n), 0);
  int st;
  waitpid(c, &st, 0);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  free(pl);
  free(big);
  close(p[0]);
}

Test(init_msg, unexpected_unknown_or_truncated_messages_are_refused) {
  int p[2];
  cr_assert_eq(pipe(p), 0);
  cr_assert_eq(init_msg_send(p[1], INIT_MSG_READY, 0, NULL), 0);
  cr_assert_eq(init_msg_expect(p[0], INIT_MSG_GO, NULL), -1, "not the message waited for");
  struct init_msg_hdr bad = {.type = 99, .value = 1, .len = 0};
  cr_assert_eq(write(p[1], &bad, sizeof bad), (ssize_t)sizeof bad);
  struct init_msg_hdr h;
  char *pl = NULL;
  cr_assert_eq(init_msg_recv(p[0], &h, &pl), -1, "unknown type");
  struct init_msg_hdr huge = {.type = INIT_MSG_ERROR, .len = 1U << 30};
  cr_assert_eq(write(p[1], &huge, sizeof huge), (ssize_t)sizeof huge);
  cr_assert_eq(init_msg_recv(p[0], &h, &pl), -1, "a payload over 1 MiB");
  struct init_msg_hdr cut = {.type = INIT_MSG_ERROR, .len = 100};
  cr_assert_eq(write(p[1], &cut, sizeof cut), (ssize_t)sizeof cut);
  cr_assert_eq(write(p[1], "short", 5), 5);
  close(p[1]);
  cr_assert_eq(init_msg_recv(p[0], &h, &pl), -1, "a payload cut short");
  cr_assert_null(pl);
  close(p[0]);
  cr_assert_eq(init_msg_send(-1, INIT_MSG_GO, 1, NULL), -1);
}

/* ---------- a spec's mounts ---------- */
/* run fn in a child with a private mount namespace (root only); its exit
 * status: 0 ok, 2 skipped, else the failed step */
static int in_mount_ns(int (*fn)(const char *root), char *why, size_t whylen) {
  if (geteuid() != 0) {
    snprintf(why, whylen, "needs root (a mount namespace of its own)");
    return 2;
  }
  char tmpl[] = "/tmp/berth-rootfs-XXXXXX";
  cr_assert_not_null(mkdtemp(tmpl));
  pid_t c = fork();
  if (c == 0) {
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) _exit(3);
    _exit(fn(tmpl));
  }
  int st;
  waitpid(c, &st, 0);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpl);
  if (system(cmd) != 0) {}
  return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

/* a Test's body: fn in its own mount namespace, its failed step reported
 * (skipped, with the reason, only where this is not root) */
static void run_in_mount_ns(int (*fn)(const char *root)) {
  char why[128] = "";
  int r = in_mount_ns(fn, why, sizeof why);
  if (r == 2) cr_skip_test("%s", why);
  cr_assert_eq(r, 0, "step %d failed", r);
}

static json_t *mount_of(const char *dest, const char *type, const char *src, const char *opts) {
  json_t *o = json_array();
  char *copy = strdup(opts), *save = NULL;
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) json_array_append_new(o, json_string(t));
  free(copy);
  return json_pack("{s:s, s:s, s:s, s:o}", "destination", dest, "type", type, "source", src, "options", o);
}

/* a bind through the image's symlink into /proc is refused; the same bind
 * at an ordinary path works and, under berth's policy, is nodev */
static int redirect_and_nodev(const char *root) {
  char p[512], hostdir[512];
  snprintf(p, sizeof p, "%s/root", root);
  snprintf(hostdir, sizeof hostdir, "%s/host", root);
  if (mkdir(p, 0755) < 0 || mkdir(hostdir, 0755) < 0) return 4;
  snprintf(p, sizeof p, "%s/root/proc", root);
  if (mkdir(p, 0755) < 0 || mount("proc", p, "proc", 0, NULL) < 0) return 5;
  snprintf(p, sizeof p, "%s/root/data", root);
  if (symlink("/proc/sys", p) < 0) return 6; /* absolute: resolved in the root */
  snprintf(p, sizeof p, "%s/root", root);
  int rootfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  json_t *spec = json_pack("{s:[o, o]}", "mounts", mount_of("/data", "bind", hostdir, "rbind,rw"),
                           mount_of("/devices/mnt", "bind", hostdir, "rbind,ro"));
  struct rootfs_spec rs = {.spec = spec, .nodev = true};
  berth_error_t e = NULL;
  if (rootfs_spec_mount(&rs, rootfd, json_array_get(json_object_get(spec, "mounts"), 0), 0, &e) != -1) return 7;
  if (!e || !strstr(e->msg, "leads (through the image's symlinks)")) return 8;
  berth_error_free(e);
  e = NULL;
  /* /devices is not /dev: an ordinary target (and checked like one) */
  if (rootfs_spec_mount(&rs, rootfd, json_array_get(json_object_get(spec, "mounts"), 1), 1, &e) < 0) return 9;
  snprintf(p, sizeof p, "%s/root/devices/mnt", root);
  struct statvfs sv;
  if (statvfs(p, &sv) < 0) return 10;
  if (!(sv.f_flag & ST_NODEV)) return 11;
  if (!(sv.f_flag & ST_RDONLY)) return 12;
  json_decref(spec);
  return 0;
}

Test(rootfs_spec, symlink_redirect_refused_and_binds_nodev) { run_in_mount_ns(redirect_and_nodev); }

/* the default nodes and the /dev links; a device that cannot be made in a
 * user namespace is bound only when the host's node is that device */
static int devices(const char *root) {
  char p[512];
  snprintf(p, sizeof p, "%s/dev", root);
  if (mkdir(p, 0755) < 0 || mount("tmpfs", p, "tmpfs", 0, "mode=755") < 0) return 4;
  int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  json_t *spec = json_pack("{s:{s:[{s:s, s:s, s:i, s:i, s:i}]}}", "linux", "devices", "path", "/dev/sub/mynull", "type", "c", "major", 1,
                           "minor", 3, "fileMode", 0600);
  struct rootfs_spec rs = {.spec = spec};
  berth_error_t e = NULL;
  if (rootfs_spec_devices(&rs, rootfd, &e) < 0) return 5;
  struct stat st;
  const char *want[] = {"null", "zero", "full", "random", "urandom", "tty", "sub/mynull"};
  for (int i = 0; i < 7; i++) {
    snprintf(p, sizeof p, "%s/dev/%s", root, want[i]);
    if (lstat(p, &st) < 0 || !S_ISCHR(st.st_mode)) return 10 + i;
  }
  if ((st.st_mode & 07777) != 0600 || st.st_rdev != makedev(1, 3)) return 20;
  char l[64] = "";
  snprintf(p, sizeof p, "%s/dev/fd", root);
  if (readlink(p, l, sizeof l - 1) < 0 || strcmp(l, "/proc/self/fd")) return 21;
  json_decref(spec);
  /* in a user namespace: /dev/null's host node is bound; a node whose host
   * path is another device is refused */
  umount2(p, MNT_DETACH);
  snprintf(p, sizeof p, "%s/dev", root);
  if (umount2(p, MNT_DETACH) < 0 || mount("tmpfs", p, "tmpfs", 0, "mode=755") < 0) return 22;
  spec = json_pack("{s:{s:[{s:s, s:s, s:i, s:i}]}}", "linux", "devices", "path", "/dev/zero", "type", "c", "major", 1, "minor", 3);
  json_t *src = json_pack("{s:s}", "/dev/zero", "/dev/zero"); /* 1:5 on the host, not 1:3 */
  struct rootfs_spec ru = {.spec = spec, .in_userns = true, .device_sources = src};
  if (rootfs_spec_devices(&ru, rootfd, &e) != -1 || !e || !strstr(e->msg, "is not that device")) return 23;
  berth_error_free(e);
  json_object_set_new(src, "/dev/zero", json_string("/dev/null"));
  e = NULL;
  if (rootfs_spec_devices(&ru, rootfd, &e) < 0) return 24;
  snprintf(p, sizeof p, "%s/dev/zero", root);
  if (stat(p, &st) < 0 || st.st_rdev != makedev(1, 3)) return 25; /* the host's /dev/null, bound */
  json_decref(spec);
  json_decref(src);
  return 0;
}

Test(rootfs_spec, default_nodes_spec_devices_and_host_binds) { run_in_mount_ns(devices); }

/* ---------- becoming the container's process (process.c) ---------- */
static int ids_as_root(const char *unused) {
  (void)unused;
  berth_error_t e = NULL;
  gid_t want[] = {1000, 5};
  if (process_set_ids(1000, 1000, want, 2, true, false, "test", NULL, &e) < 0) return 4;
  if (getuid() != 1000 || geteuid() != 1000 || getgid() != 1000) return 5;
  gid_t got[8];
  int n = getgroups(8, got);
  if (n != 2 || !((got[0] == 1000 && got[1] == 5) || (got[0] == 5 && got[1] == 1000))) return 6; /* the kernel sorts them */
  return 0;
}

Test(process, set_ids_with_groups) { run_in_mount_ns(ids_as_root); }

/* a user namespace that maps only root and denies setgroups, as a
 * rootless container without subordinate ids has it */
static int single_map(const char *unused) {
  (void)unused;
  uid_t u = geteuid();
  gid_t g = getegid();
  if (unshare(CLONE_NEWUSER) < 0) return 20;
  char m[64];
  snprintf(m, sizeof m, "0 %u 1", (unsigned)u);
  if (write_value("/proc/self/uid_map", m) < 0 || write_value("/proc/self/setgroups", "deny") < 0) return 21;
  snprintf(m, sizeof m, "0 %u 1", (unsigned)g);
  if (write_value("/proc/self/gid_map", m) < 0) return 22;
  berth_error_t e = NULL;
  bool single = false;
  gid_t root_groups[] = {0};
  /* berth's exec: the groups stay, root is become */
  if (process_set_ids(0, 0, root_groups, 1, false, false, "exec", &single, &e) < 0 || !single) return 23;
  /* an unmapped user: refused, and the message says why */
  if (process_set_ids(1000, 1000, NULL, 0, false, false, "exec", &single, &e) >= 0 || e->status != EINVAL) return 24;
  if (!strstr(e->msg, "only root exists in this container")) return 25;
  berth_error_free(e);
  e = NULL;
  /* berth-oci's: groups the config names cannot be dropped silently */
  gid_t named[] = {0, 7};
  if (process_set_ids(0, 0, named, 2, true, false, "process.user", NULL, &e) >= 0) return 26;
  berth_error_free(e);
  e = NULL;
  if (process_set_ids(1000, 0, NULL, 0, true, false, "process.user", NULL, &e) >= 0 || e->status != EINVAL) return 27;
  if (!strstr(e->msg, "uid 1000 is not mapped in the container's user namespace")) return 28;
  return 0;
}

Test(process, set_ids_in_a_single_id_user_namespace) {
  pid_t c = fork();
  if (c == 0) _exit(single_map(NULL));
  int st;
  waitpid(c, &st, 0);
  cr_assert(WIFEXITED(st));
  cr_assert_eq(WEXITSTATUS(st), 0, "step %d failed", WEXITSTATUS(st));
}

/* a working directory reached through a host directory's fd lies outside
 * the root: refused (CVE-2024-21626) */
static int cwd_escape(const char *root) {
  char p[512];
  snprintf(p, sizeof p, "%s/r", root);
  if (mkdir(p, 0755) < 0) return 4;
  snprintf(p, sizeof p, "%s/r/proc", root);
  if (mkdir(p, 0755) < 0 || mount("proc", p, "proc", 0, NULL) < 0) return 5;
  snprintf(p, sizeof p, "%s/r/inside", root);
  if (mkdir(p, 0755) < 0) return 6;
  int leaked = open(root, O_RDONLY | O_DIRECTORY); /* the host's, not close-on-exec */
  snprintf(p, sizeof p, "%s/r", root);
  if (leaked < 0 || chroot(p) < 0 || chdir("/") < 0) return 7;
  berth_error_t e = NULL;
  if (process_enter_cwd("/inside", &e) < 0) return 8;
  snprintf(p, sizeof p, "/proc/self/fd/%d", leaked);
  if (process_enter_cwd(p, &e) >= 0 || e->status != EPERM || !strstr(e->msg, "outside the container's root filesystem")) return 9;
  return 0;
}

Test(process, cwd_through_a_leaked_fd_is_refused) { run_in_mount_ns(cwd_escape); }

/* linux.namespaces read once, for berth's launch and berth-oci's alike */
Test(process, namespaces_of_a_config) {
  unsigned long f = 1;
  berth_error_t e = NULL;
  json_t *l = json_pack("{s:[{s:s}, {s:s}, {s:s, s:s}, {s:s}]}", "namespaces", "type", "pid", "type", "mount", "type", "network", "path",
                        "/proc/1/ns/net", "type", "user");
  cr_assert_eq(ns_new_flags(l, &f, &e), 0);
  cr_assert_eq(f, (unsigned long)(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUSER), "a namespace with a path is joined, not made: %#lx", f);
  json_decref(l);
  cr_assert_eq(ns_new_flags(NULL, &f, &e), 0);
  cr_assert_eq(f, 0, "no linux object: nothing new");
  const char *bad[] = {"{\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"pid\"}]}", "{\"namespaces\": [{\"type\": \"pidd\"}]}",
                       "{\"namespaces\": [{}]}", "{\"namespaces\": {\"type\": \"pid\"}}"};
  const char *says[] = {"listed twice", "unknown type `pidd`", "unknown type ``", "must be an array"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    l = json_loads(bad[i], 0, NULL);
    cr_assert(l);
    cr_assert_eq(ns_new_flags(l, &f, &e), -1, "%s", bad[i]);
    cr_assert(strstr(e->msg, says[i]), "%s: %s", bad[i], e->msg);
    berth_error_clear(&e);
    json_decref(l);
  }
}

/* ---------- the record's processes (state.c) ---------- */
Test(state, proc_refs_are_read_safely) {
  json_t *st = json_pack("{s:{s:i, s:I}, s:{s:i}, s:{s:I, s:I}, s:s}", "init", "pid", (int)getpid(), "starttime",
                         (json_int_t)proc_starttime(getpid()), "monitor", "pid", -5, "other", "pid", (json_int_t)1 << 40, "starttime",
                         (json_int_t)7, "boot_id", "not-this-boot");
  struct state_proc p = state_proc(st, "init");
  cr_assert_eq(p.pid, getpid());
  cr_assert_eq(p.start, proc_starttime(getpid()));
  /* a negative pid (kill(-5) would signal a group), one past pid_t, none at all: no process */
  cr_assert_eq(state_proc(st, "monitor").pid, 0);
  cr_assert_eq(state_proc(st, "other").pid, 0);
  cr_assert_eq(state_proc(st, "missing").pid, 0);
  /* recorded in another boot: not alive, whatever the pid */
  cr_assert(!state_proc_alive(st, "init"));
  cleanup_free char *bid = boot_id_read();
  json_object_set_new(st, "boot_id", json_string(bid));
  cr_assert(state_proc_alive(st, "init"));
  cr_assert(!state_proc_alive(st, "monitor"));
  json_decref(st);
}

/* the record's status, typed, and its transitions: each sets every field
 * it owns and drops what belongs to the run before */
Test(state, status_is_typed_and_transitions_own_their_fields) {
  json_t *st = json_pack("{s:i}", "status", 5);
  cr_assert_eq(state_status(st), STATUS_UNKNOWN, "a damaged status is unknown, not a guess");
  json_object_set_new(st, "status", json_string("paused")); /* a status this berth does not know */
  cr_assert_eq(state_status(st), STATUS_UNKNOWN);
  cr_assert_str_eq(container_live_status(st), "paused", "shown as recorded");
  json_object_set_new(st, "status", json_string("creating"));
  cr_assert_eq(state_live(st), STATUS_CREATING);
  /* a run that ended: its end is recorded */
  json_object_set_new(st, "exit_code", json_integer(3));
  json_object_set_new(st, "finished_at", json_integer(1));
  json_object_set_new(st, "oom_killed", json_true());
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, NULL, 0); /* a pid whose process is gone */
  struct launched L = {.pid = getpid(), .single = true, .note = "a remark"};
  state_to_running(st, &L, getppid());
  cr_assert_eq(state_status(st), STATUS_RUNNING);
  cr_assert_eq(state_live(st), STATUS_RUNNING, "init (this process) runs, in this boot");
  cr_assert_str_eq(container_live_status(st), "running");
  cr_assert_null(json_object_get(st, "exit_code"), "the last run's end goes with a new run");
  cr_assert_null(json_object_get(st, "finished_at"));
  cr_assert_null(json_object_get(st, "oom_killed"));
  cr_assert_eq(state_proc(st, "monitor").pid, getppid());
  cr_assert(json_is_true(json_object_get(st, "single_id_mapping")));
  cr_assert_str_eq(json_string_value(json_array_get(json_object_get(st, "notes"), 0)), "a remark");
  cr_assert_null(json_object_get(st, "network_helper"), "no helper recorded when none was started");
  /* init gone (killed from outside): reads exited, though recorded running */
  json_object_set_new(st, "init", proc_ref(child));
  cr_assert_eq(state_status(st), STATUS_RUNNING);
  cr_assert_eq(state_live(st), STATUS_EXITED);
  state_to_exited(st, 137, true);
  cr_assert_eq(state_status(st), STATUS_EXITED);
  cr_assert_eq(json_integer_value(json_object_get(st, "exit_code")), 137);
  cr_assert(json_is_true(json_object_get(st, "oom_killed")));
  cr_assert_gt(json_integer_value(json_object_get(st, "finished_at")), 0);
  state_to_restarting(st, 400, getpid());
  cr_assert_eq(state_live(st), STATUS_RESTARTING);
  cr_assert_eq(json_integer_value(json_object_get(st, "restart_backoff_ms")), 400);
  cr_assert_eq(state_proc(st, "monitor").pid, getpid());
  state_restart_failed(st, 2, "image gone");
  cr_assert_eq(state_status(st), STATUS_EXITED);
  cr_assert_eq(json_integer_value(json_object_get(st, "restart_count")), 2);
  cr_assert_str_eq(json_string_value(json_object_get(st, "restart_error")), "image gone");
  cr_assert_eq(json_integer_value(json_object_get(st, "exit_code")), 137, "the last run's end stays");
  json_decref(st);
}

/* a config that binds a directory at /dev: nothing is made or unlinked in
 * it (it may be the host's /dev) */
static int bound_dev(const char *root) {
  char p[512], hostdev[512];
  snprintf(hostdev, sizeof hostdev, "%s/hostdev", root);
  snprintf(p, sizeof p, "%s/r", root);
  if (mkdir(hostdev, 0755) < 0 || mkdir(p, 0755) < 0) return 4;
  snprintf(p, sizeof p, "%s/hostdev/null", root);
  int f = open(p, O_CREAT | O_WRONLY, 0644); /* a plain file standing in for a node */
  if (f < 0) return 5;
  close(f);
  snprintf(p, sizeof p, "%s/r", root);
  int rootfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  json_t *spec =
      json_pack("{s:[{s:s, s:s, s:s, s:[s]}]}", "mounts", "destination", "/dev", "type", "bind", "source", hostdev, "options", "rbind");
  struct rootfs_spec rs = {.spec = spec};
  berth_error_t e = NULL;
  if (rootfs_spec_mounts(&rs, rootfd, &e) < 0) return 6;
  if (rootfs_spec_devices(&rs, rootfd, &e) < 0) return 7;
  struct stat st;
  snprintf(p, sizeof p, "%s/hostdev/null", root);
  if (stat(p, &st) < 0 || !S_ISREG(st.st_mode)) return 8; /* not replaced by a node */
  snprintf(p, sizeof p, "%s/hostdev/zero", root);
  if (lstat(p, &st) == 0) return 9;
  json_decref(spec);
  return 0;
}

Test(rootfs_spec, a_bound_dev_is_left_alone) { run_in_mount_ns(bound_dev); }
