/* Becoming the container's process: signals, ids, working directory
 * (process.h). Shared by exec.c and oci_linux.c. */
#define _GNU_SOURCE
#include "runtime/process.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

const struct ns_kind NS_KINDS[N_NS_KINDS] = {
    {"user", CLONE_NEWUSER, "user"}, {"pid", CLONE_NEWPID, "pid"},  {"network", CLONE_NEWNET, "net"},      {"ipc", CLONE_NEWIPC, "ipc"},
    {"uts", CLONE_NEWUTS, "uts"},    {"mount", CLONE_NEWNS, "mnt"}, {"cgroup", CLONE_NEWCGROUP, "cgroup"}, {"time", CLONE_NEWTIME, "time"}};

int ns_kind_index(const char *type) {
  for (int i = 0; type && i < N_NS_KINDS; i++)
    if (!strcmp(type, NS_KINDS[i].type)) return i;
  return -1;
}

int ns_new_flags(json_t *linux_, unsigned long *flags, berth_error_t *err) {
  *flags = 0;
  json_t *list = json_object_get(linux_, "namespaces"), *ns;
  if (list && !json_is_array(list)) return berth_error(err, -EINVAL, "config.json: linux.namespaces must be an array");
  unsigned seen = 0;
  size_t i;
  json_array_foreach(list, i, ns) {
    const char *type = json_string_value(json_object_get(ns, "type"));
    int k = ns_kind_index(type);
    if (k < 0)
      return berth_error(err, -EINVAL,
                         "config.json: linux.namespaces[%zu]: unknown type `%s` (user, pid, network, ipc, uts, mount, cgroup or time)", i,
                         type ? type : "");
    if (seen & (1u << k)) return berth_error(err, -EINVAL, "config.json: linux.namespaces: `%s` is listed twice", type);
    seen |= 1u << k;
    const char *path = json_string_value(json_object_get(ns, "path"));
    if (!path || !*path) *flags |= (unsigned long)NS_KINDS[k].flag;
  }
  return 0;
}

void process_reset_signals(void) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  struct {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
  } dfl = {.handler = SIG_DFL};
  for (int sig = 1; sig <= 64; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
}

bool process_setgroups_denied(void) {
  cleanup_free char *v = NULL;
  return read_file("/proc/self/setgroups", 64, &v, NULL, NULL) == 0 && !strncmp(v, "deny", 4);
}

int process_set_ids(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups, bool groups_required, bool keep_caps, const char *who,
                    bool *single, berth_error_t *err) {
  bool denied = false;
  if (setgroups(ngroups, groups) < 0) {
    int e = errno;
    /* a user namespace that denies setgroups (a single-id mapping): the
     * groups stay as they are, unless the caller must have them */
    bool tolerated = e == EPERM && (groups_required ? ngroups == 0 : process_setgroups_denied());
    if (!tolerated) return berth_error(err, e, "%s: supplementary groups", who);
    denied = true;
  }
  if (single) *single = denied;
  if (keep_caps) prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
  int r = 0, e = 0;
  const char *which = NULL;
  unsigned id = 0;
  if (setresgid(gid, gid, gid) < 0) e = errno, which = "gid", id = (unsigned)gid;
  else if (setresuid(uid, uid, uid) < 0) e = errno, which = "uid", id = (unsigned)uid;
  if (which && e != EINVAL) r = berth_error(err, e, "%s: become %u:%u", who, (unsigned)uid, (unsigned)gid);
  else if (which && denied && !groups_required)
    r = berth_error(err, -EINVAL,
                    "%s: become %u:%u: only root exists in this container (a single-id mapping: the user has no subordinate ids); "
                    "`berth preflight` shows the fix",
                    who, (unsigned)uid, (unsigned)gid);
  else if (which) r = berth_error(err, -EINVAL, "%s: %s %u is not mapped in the container's user namespace", who, which, id);
  if (keep_caps) prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  return r;
}

int process_enter_cwd(const char *cwd, berth_error_t *err) {
  if (chdir(cwd) < 0) return berth_error(err, errno, "working directory %s", cwd);
  char here[PATH_MAX];
  if (!getcwd(here, sizeof here) || here[0] != '/')
    return berth_error(err, -EPERM, "working directory %s is outside the container's root filesystem; refusing", cwd);
  return 0;
}
