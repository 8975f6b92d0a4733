#define _GNU_SOURCE
/* Named networks. Each one is a network namespace berth owns, held open by
 * a small process (`berth-net NAME`), with a Linux bridge br0 at
 * 10.89.K.1/24. A container on the network gets a veth pair: one end
 * plugged into br0, the other inside the container as eth0 with its own
 * address; its /etc/hosts lists the other members by name. Outbound
 * traffic goes through the container's own slirp4netns and published ports
 * through berth's forwarder, as on the default network, so a named network
 * adds nothing to the host: no interface, no firewall rule.
 *
 * Rootless, the namespace belongs to a user namespace of its own, mapped
 * with the user's subordinate ids. Containers on the network are cloned
 * from inside that user namespace, so the process that plugs them in holds
 * CAP_NET_ADMIN over both ends of the pair (as Podman's rootless netns).
 *
 * Isolation comes from the layout: every network has its own namespace and
 * bridge, and each member has an `unreachable` route for 10.89.0.0/16, so
 * other networks' addresses fail at once inside the container. */
#include "network/network.h"
#include "network/netlink.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/config.h"
#include "util/userns.h"

#define NET_BRIDGE "br0"

bool net_is_named(const char *network) {
  return network && strcmp(network, "bridge") && strcmp(network, "none") && strcmp(network, "host");
}

static char *net_dir(const char *name, berth_error_t *err) {
  struct berth_config *cfg = config_get(err);
  if (!cfg) return NULL;
  return name ? xasprintf("%s/networks/%s", cfg->data_dir, name) : xasprintf("%s/networks", cfg->data_dir);
}

static json_t *net_state(const char *name) {
  cleanup_free char *d = net_dir(name, NULL);
  cleanup_free char *p = d ? xasprintf("%s/network.json", d) : NULL;
  return p ? json_load_file(p, 0, NULL) : NULL;
}

static int net_state_write(const char *name, json_t *st, berth_error_t *err) {
  cleanup_free char *d = net_dir(name, err);
  if (!d) return -1;
  cleanup_free char *p = xasprintf("%s/network.json", d);
  cleanup_free char *txt = json_dumps(st, JSON_INDENT(2) | JSON_SORT_KEYS);
  return write_file_atomic(p, txt, strlen(txt), 0600, err);
}

/* The network's lock: creates, removals and /etc/hosts rewrites of its
 * members are serialized under it. */
static int net_lock(const char *name, berth_error_t *err) {
  cleanup_free char *d = net_dir(name, err);
  if (!d) return -1;
  cleanup_free char *p = xasprintf("%s/lock", d);
  int fd = open(p, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return berth_error(err, -ENOENT, "network `%s` does not exist: create it with `berth network create %s`", name, name);
    return berth_error(err, errno, "open `%s`", p);
  }
  if (flock(fd, LOCK_EX) < 0) {
    int e = errno;
    close(fd);
    return berth_error(err, e, "lock network %s", name);
  }
  return fd;
}

static bool holder_alive(json_t *st) {
  json_t *h = json_object_get(st, "holder");
  pid_t pid = (pid_t)json_integer_value(json_object_get(h, "pid"));
  unsigned long long t = (unsigned long long)json_integer_value(json_object_get(h, "starttime"));
  cleanup_free char *b = boot_id_read();
  if (strcmp(jstr(st, "boot_id") ?: "", b)) return false;
  return pid > 0 && t && proc_starttime(pid) == t;
}

static void sleep_forever(void) {
  for (;;) pause();
}

/* Holder: new network namespace (and, rootless, user namespace), br0 up
 * with the gateway address, then nothing but waiting. Returns its pid. */
static pid_t holder_start(const char *name, int k, bool rootless, bool *single, berth_error_t *err) {
  int up[2], go[2], rep[2];
  if (pipe2(up, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  if (pipe2(go, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
    close(up[0]), close(up[1]);
    return berth_error(err, errno, "pipe");
  }
  fflush(stdout);
  fflush(stderr);
  pid_t a = fork();
  if (a < 0) return berth_error(err, errno, "fork");
  if (a == 0) {
    /* double fork: the holder is nobody's child and survives the CLI */
    setsid();
    pid_t b = fork();
    if (b != 0) {
      if (write(up[1], &b, sizeof b) != sizeof b) {}
      _exit(b < 0);
    }
    char msg[256] = "";
    char c = 0;
    if (unshare(CLONE_NEWNET | (rootless ? CLONE_NEWUSER : 0)) < 0)
      snprintf(msg, sizeof msg, "create the network's namespace: %s%s", strerror(errno), rootless ? " (run `berth preflight`)" : "");
    if (write(rep[1], "u", 1) != 1 || read(go[0], &c, 1) != 1 || c != 1) _exit(1);
    berth_error_t e = NULL;
    int nl = msg[0] ? -1 : nl_open(&e);
    struct in_addr gw = {htonl((10u << 24) | (89u << 16) | ((unsigned)k << 8) | 1)};
    if (nl >= 0 && (nl_link_up(nl, "lo", 0, &e) < 0 || nl_bridge_add(nl, NET_BRIDGE, &e) < 0 ||
                    nl_addr_add(nl, NET_BRIDGE, gw, 24, &e) < 0 || nl_link_up(nl, NET_BRIDGE, 0, &e) < 0)) {}
    if (e) snprintf(msg, sizeof msg, "set up the network's bridge: %s", e->msg);
    if (nl >= 0) close(nl);
    if (write(rep[1], msg, strlen(msg) + 1) < 0) {}
    if (msg[0]) _exit(1);
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
    syscall(SYS_close_range, 3U, ~0U, 0);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    if (chdir("/") < 0) {}
    cleanup_free char *title = xasprintf("berth-net %s", name);
    proc_set_title(title);
    prctl(PR_SET_NAME, "berth-net");
    sleep_forever();
  }
  close(up[1]), close(go[0]), close(rep[1]);
  pid_t b = -1;
  ssize_t n = read(up[0], &b, sizeof b);
  close(up[0]);
  waitpid(a, NULL, 0);
  int ret = 0;
  char c;
  if (n != sizeof b || b <= 0 || read(rep[0], &c, 1) != 1) {
    ret = berth_error(err, -EIO, "the network's holder process failed to start");
  } else {
    char ok = 1;
    *single = false;
    if (rootless && userns_map(b, single) < 0) {
      ok = 0;
      ret = berth_error(err, -EPERM, "cannot map user ids for the network's namespace: run `berth preflight`");
    }
    if (write(go[1], &ok, 1) != 1) {}
    char msg[256] = "";
    ssize_t m = ret < 0 ? 0 : read(rep[0], msg, sizeof msg - 1);
    if (ret == 0 && (m <= 0 || msg[0])) ret = berth_error(err, -EIO, "%s", m > 0 ? msg : "the network's holder process died");
  }
  close(go[1]);
  close(rep[0]);
  if (ret < 0) {
    if (b > 0) kill(b, SIGKILL);
    return -1;
  }
  return b;
}

static int holder_ensure(const char *name, json_t *st, berth_error_t *err) {
  if (holder_alive(st)) return 0;
  struct berth_config *cfg = config_get(err);
  if (!cfg) return -1;
  bool single = false;
  pid_t h = holder_start(name, (int)json_integer_value(json_object_get(st, "index")), cfg->rootless, &single, err);
  if (h < 0) return -1;
  cleanup_free char *bid = boot_id_read();
  json_object_set_new(st, "holder", json_pack("{s:i, s:I}", "pid", (int)h, "starttime", (json_int_t)proc_starttime(h)));
  json_object_set_new(st, "boot_id", json_string(bid));
  json_object_set_new(st, "single_id_mapping", json_boolean(single));
  return net_state_write(name, st, err);
}

int net_named_create(const char *name, json_t **out, berth_error_t *err) {
  if (!name_valid(name) || !net_is_named(name) || !strcmp(name, "default"))
    return berth_error(err, -EINVAL,
                       "invalid network name `%.80s`: use 1-63 letters, digits, `_`, `.` or `-` "
                       "(not `bridge`, `host`, `none` or `default`)",
                       name);
  cleanup_free char *top = net_dir(NULL, err);
  if (!top || mkdir_p(top, 0700, err) < 0) return -1;
  /* the subnet index is chosen under one lock for all networks */
  cleanup_free char *glp = xasprintf("%s/.lock", top);
  cleanup_close int gl = lock_file(glp, true, err);
  if (gl < 0) return -1;
  cleanup_free char *d = xasprintf("%s/%s", top, name);
  if (mkdir(d, 0700) < 0) {
    if (errno == EEXIST) return berth_error(err, -EEXIST, "network `%s` already exists (remove it with `berth network rm %s`)", name, name);
    return berth_error(err, errno, "create `%s`", d);
  }
  bool used[256] = {false};
  DIR *dd = opendir(top);
  struct dirent *de;
  while (dd && (de = readdir(dd))) {
    if (de->d_name[0] == '.' || !strcmp(de->d_name, name)) continue;
    json_t *o = net_state(de->d_name);
    json_int_t i = json_integer_value(json_object_get(o, "index"));
    if (o && i >= 0 && i < 256) used[i] = true;
    json_decref(o);
  }
  if (dd) closedir(dd);
  int k = -1;
  for (int i = 0; i < 256 && k < 0; i++)
    if (!used[i]) k = i;
  int ret = -1;
  cleanup_free char *lp = xasprintf("%s/lock", d);
  int lf = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  char subnet[32];
  snprintf(subnet, sizeof subnet, "10.89.%d.0/24", k);
  json_t *st =
      json_pack("{s:s, s:i, s:s, s:s, s:I}", "name", name, "index", k, "subnet", subnet, "gateway", "", "created", (json_int_t)time(NULL));
  char gw[20];
  snprintf(gw, sizeof gw, "10.89.%d.1", k);
  json_object_set_new(st, "gateway", json_string(gw));
  if (k < 0) berth_error(err, -ENOSPC, "all 256 network subnets (10.89.0.0/16) are in use: remove a network first");
  else if (lf < 0) berth_error(err, errno, "create `%s`", lp);
  else if (holder_ensure(name, st, err) == 0) ret = 0;
  if (lf >= 0) close(lf);
  if (ret < 0) {
    json_t *h = json_object_get(json_object_get(st, "holder"), "pid");
    if (h) kill((pid_t)json_integer_value(h), SIGKILL);
    berth_error_t e2 = NULL;
    if (rm_rf(d, &e2) < 0) berth_error_free(e2);
    json_decref(st);
    return berth_error_wrap(err, "Failed to create network %s", name);
  }
  cleanup_free char *detail = xasprintf("Network %s created (%s)", name, subnet);
  *out = json_pack("{s:b, s:s, s:s, s:s, s:s}", "success", 1, "network", name, "subnet", subnet, "gateway", gw, "detail", detail);
  json_decref(st);
  return 0;
}

int net_named_destroy(const char *name, net_members_fn *members_of, json_t **out, berth_error_t *err) {
  if (!name_valid(name) || !net_is_named(name)) return berth_error(err, -ENOENT, "network `%.80s` does not exist", name);
  cleanup_close int lk = net_lock(name, err);
  if (lk < 0) return -1;
  json_t *members = members_of(name, false);
  if (json_array_size(members)) {
    struct buf b = {0};
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
      if (i) buf_append(&b, " ", 1);
      buf_append(&b, jstr(m, "name"), strlen(jstr(m, "name")));
    }
    buf_append(&b, "", 1);
    berth_error(err, -EBUSY, "network `%s` still has containers attached: %s; remove them first (`berth rm -f %s`)", name, b.data, b.data);
    buf_free(&b);
    json_decref(members);
    return -1;
  }
  json_decref(members);
  json_t *st = net_state(name);
  if (st && holder_alive(st)) {
    /* the namespace, its bridge and any veth end die with their last holder */
    pid_t h = (pid_t)json_integer_value(json_object_get(json_object_get(st, "holder"), "pid"));
    int pfd = (int)syscall(SYS_pidfd_open, h, 0);
    kill(h, SIGKILL);
    if (pfd >= 0) {
      struct pollfd p = {.fd = pfd, .events = POLLIN};
      while (poll(&p, 1, 2000) < 0 && errno == EINTR) {}
      close(pfd);
    }
  }
  json_decref(st);
  cleanup_free char *d = net_dir(name, err);
  if (!d || rm_rf(d, err) < 0) return berth_error_wrap(err, "Failed to remove network %s", name);
  cleanup_free char *detail = xasprintf("Network %s removed", name);
  *out = json_pack("{s:b, s:s, s:s}", "success", 1, "network", name, "detail", detail);
  return 0;
}

int net_named_list(net_members_fn *members_of, json_t **out, berth_error_t *err) {
  cleanup_free char *top = net_dir(NULL, err);
  if (!top) return -1;
  json_t *arr = json_array();
  DIR *dd = opendir(top);
  struct dirent *de;
  while (dd && (de = readdir(dd))) {
    if (de->d_name[0] == '.') continue;
    json_t *st = net_state(de->d_name);
    if (!st) continue;
    json_t *members = members_of(de->d_name, false), *names = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) json_array_append(names, json_object_get(m, "name"));
    json_decref(members);
    json_array_append_new(arr, json_pack("{s:s, s:O, s:O, s:o, s:b}", "name", de->d_name, "subnet", json_object_get(st, "subnet"),
                                         "gateway", json_object_get(st, "gateway"), "containers", names, "active", holder_alive(st)));
    json_decref(st);
  }
  if (dd) closedir(dd);
  *out = json_pack("{s:o, s:I}", "networks", arr, "count", (json_int_t)json_array_size(arr));
  return 0;
}

int net_named_lease(const char *name, net_members_fn *members_of, struct net_lease *l, berth_error_t *err) {
  l->lock_fd = l->userns_fd = l->netns_fd = -1;
  int lk = net_lock(name, err);
  if (lk < 0) return -1;
  json_t *st = net_state(name);
  if (!st || holder_ensure(name, st, err) < 0) {
    if (!st) berth_error(err, -ENOENT, "network `%s` has no state: remove and create it again", name);
    json_decref(st);
    close(lk);
    return -1;
  }
  int k = (int)json_integer_value(json_object_get(st, "index"));
  l->holder = (pid_t)json_integer_value(json_object_get(json_object_get(st, "holder"), "pid"));
  l->single = json_is_true(json_object_get(st, "single_id_mapping"));
  /* the namespaces themselves, taken now and checked against the holder's
   * start time after: a pid reused later cannot redirect the attach */
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/ns/user", (int)l->holder);
  l->userns_fd = open(p, O_RDONLY | O_CLOEXEC);
  snprintf(p, sizeof p, "/proc/%d/ns/net", (int)l->holder);
  l->netns_fd = open(p, O_RDONLY | O_CLOEXEC);
  bool same = holder_alive(st);
  json_decref(st);
  if (l->userns_fd < 0 || l->netns_fd < 0 || !same) {
    close(lk);
    net_lease_close(l);
    return berth_error(err, -ESRCH, "network `%s`: its holder process went away; try again", name);
  }
  bool used[256] = {false};
  json_t *members = members_of(name, true);
  size_t i;
  json_t *m;
  json_array_foreach(members, i, m) {
    struct in_addr a;
    if (jstr(m, "ip") && inet_pton(AF_INET, jstr(m, "ip"), &a) == 1) used[ntohl(a.s_addr) & 0xff] = true;
  }
  json_decref(members);
  int host = -1;
  for (int h = 2; h < 255 && host < 0; h++)
    if (!used[h]) host = h;
  if (host < 0) {
    close(lk);
    net_lease_close(l);
    return berth_error(err, -ENOSPC, "network `%s` is full (253 containers)", name);
  }
  snprintf(l->ip, sizeof l->ip, "10.89.%d.%d", k, host);
  l->lock_fd = lk;
  return 0;
}

int net_named_attach(const struct net_lease *l, pid_t init_pid, const char *id, berth_error_t *err) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/ns/net", (int)init_pid);
  cleanup_close int cfd = open(p, O_RDONLY | O_CLOEXEC);
  if (l->netns_fd < 0 || cfd < 0) return berth_error(err, errno, "open the network namespaces");
  char veth[16];
  snprintf(veth, sizeof veth, "vb%.12s", id);
  return net_veth_plug(l->netns_fd, cfd, veth, NET_BRIDGE, l->ip, 24, NULL, true, false, err);
}

void net_lease_close(struct net_lease *l) {
  if (l->lock_fd >= 0) close(l->lock_fd);
  if (l->userns_fd >= 0) close(l->userns_fd);
  if (l->netns_fd >= 0) close(l->netns_fd);
  l->lock_fd = l->userns_fd = l->netns_fd = -1;
}

/* Rewrite every member's /etc/hosts in place (it is bind-mounted: a rename
 * would leave the container on the old file). */
static void hosts_rewrite(json_t *members) {
  size_t i, j;
  json_t *m, *o;
  json_array_foreach(members, i, m) {
    const char *hp = jstr(m, "hosts");
    if (!hp) continue;
    struct buf b = {0};
    const char *head = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
    buf_append(&b, head, strlen(head));
    json_array_foreach(members, j, o) {
      char l[128];
      int n = snprintf(l, sizeof l, "%s\t%s\n", jstr(o, "ip"), jstr(o, "name"));
      buf_append(&b, l, (size_t)n);
    }
    const char *tail = NET_HOST_ADDR "\thost.berth.internal\n";
    buf_append(&b, tail, strlen(tail));
    int fd = open(hp, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
      if (pwrite(fd, b.data, b.len, 0) != (ssize_t)b.len || ftruncate(fd, (off_t)b.len) < 0)
        berth_warn("update %s: %s", hp, strerror(errno));
      close(fd);
    }
    buf_free(&b);
  }
}

void net_named_refresh(const char *name, net_members_fn *members_of) {
  cleanup_error berth_error_t e = NULL;
  cleanup_close int lk = net_lock(name, &e);
  if (lk < 0) return;
  json_t *members = members_of(name, true);
  hosts_rewrite(members);
  json_decref(members);
}
