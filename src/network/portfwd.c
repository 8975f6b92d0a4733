#define _GNU_SOURCE
/* Published ports. The host side is bound by `create` itself, before any
 * namespace exists, so a port in use fails at once and leaves nothing. The
 * forwarder, one process per container with ports, keeps those host
 * sockets and then joins the container's (user and) network namespace:
 * every socket it opens afterwards lives there, so it accepts on the host
 * and connects to 127.0.0.1:PORT inside the container. TCP bytes move with
 * splice() through a pipe (no copy to user space), which is what makes
 * this several times faster than slirp4netns's user-space TCP stack. It
 * ends when the container's init does (a pidfd). */
#include "network/network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static bool is_udp(json_t *p) { return !strcmp(jstr(p, "protocol") ?: "tcp", "udp"); }

int pf_bind(json_t *ports, int *fds, berth_error_t *err) {
  size_t i;
  json_t *p;
  json_array_foreach(ports, i, p) fds[i] = -1;
  json_array_foreach(ports, i, p) {
    bool udp = is_udp(p);
    const char *ip = jstr(p, "host_ip") ?: "127.0.0.1";
    int port = (int)json_integer_value(json_object_get(p, "host"));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    int s = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0), one = 1;
    if (s >= 0 && !udp) setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || (!udp && listen(s, 128) < 0)) {
      int e = errno;
      if (s >= 0) close(s);
      pf_close(ports, fds);
      if (e == EADDRINUSE)
        return berth_error(err, -EADDRINUSE, "publish %s %s:%d: the port is already in use on the host (pick another host port)",
                           udp ? "udp" : "tcp", ip, port);
      return berth_error(err, e, "publish %s %s:%d", udp ? "udp" : "tcp", ip, port);
    }
    fds[i] = s;
  }
  return 0;
}

void pf_close(json_t *ports, int *fds) {
  for (size_t i = 0; i < json_array_size(ports); i++)
    if (fds[i] >= 0) close(fds[i]), fds[i] = -1;
}

/* ---- TCP: one thread per direction, each a splice loop ---- */
struct conn {
  int a, b; /* host side, container side */
  int refs;
  pthread_mutex_t mu;
};

struct flow {
  struct conn *c;
  int from, to;
};

/* open TCP connections: capped, so a flood of connections to a published
 * port cannot make the forwarder (which lives outside the container's
 * cgroup) start threads without end */
#define PF_MAX_CONNS 512
static int open_conns, max_conns = PF_MAX_CONNS;
static pthread_mutex_t conns_mu = PTHREAD_MUTEX_INITIALIZER;

static void conn_unref(struct conn *c) {
  pthread_mutex_lock(&c->mu);
  bool last = --c->refs == 0;
  pthread_mutex_unlock(&c->mu);
  if (last) {
    pthread_mutex_lock(&conns_mu);
    open_conns--;
    pthread_mutex_unlock(&conns_mu);
    close(c->a);
    close(c->b);
    pthread_mutex_destroy(&c->mu);
    free(c);
  }
}

static void *pump(void *arg) {
  struct flow *f = arg;
  int pp[2];
  if (pipe2(pp, O_CLOEXEC) == 0) {
    fcntl(pp[1], F_SETPIPE_SZ, 1 << 20);
    for (;;) {
      ssize_t n = splice(f->from, NULL, pp[1], NULL, 1 << 20, SPLICE_F_MOVE);
      if (n <= 0) break;
      while (n > 0) {
        ssize_t w = splice(pp[0], NULL, f->to, NULL, (size_t)n, SPLICE_F_MOVE);
        if (w <= 0) goto out;
        n -= w;
      }
    }
  out:
    close(pp[0]);
    close(pp[1]);
  }
  /* half-close: the other direction may still be talking */
  shutdown(f->to, SHUT_WR);
  shutdown(f->from, SHUT_RD);
  conn_unref(f->c);
  free(f);
  return NULL;
}

static void tcp_accept(int lfd, int cport) {
  int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (a < 0) {
    if (errno == EMFILE || errno == ENFILE) { /* the listener stays readable: do not spin */
      struct timespec ts = {0, 20 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    return;
  }
  pthread_mutex_lock(&conns_mu);
  bool full = open_conns >= max_conns;
  if (!full) open_conns++;
  pthread_mutex_unlock(&conns_mu);
  if (full) {
    close(a);
    return;
  }
  /* created after setns: this socket is in the container's namespace */
  int b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((unsigned short)cport), .sin_addr = {htonl(INADDR_LOOPBACK)}};
  if (b < 0 || connect(b, (struct sockaddr *)&to, sizeof to) < 0) {
    close(a);
    if (b >= 0) close(b);
    pthread_mutex_lock(&conns_mu);
    open_conns--;
    pthread_mutex_unlock(&conns_mu);
    return;
  }
  struct conn *c = xmalloc0(sizeof *c);
  *c = (struct conn){.a = a, .b = b, .refs = 2};
  pthread_mutex_init(&c->mu, NULL);
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  /* room for berth's static TLS (load.c keeps a 256 KiB buffer there);
   * only the pages touched become resident */
  pthread_attr_setstacksize(&at, 1 << 20);
  for (int d = 0; d < 2; d++) {
    struct flow *f = xmalloc0(sizeof *f);
    *f = (struct flow){.c = c, .from = d ? b : a, .to = d ? a : b};
    pthread_t t;
    if (pthread_create(&t, &at, pump, f) != 0) {
      free(f);
      shutdown(a, SHUT_RDWR);
      shutdown(b, SHUT_RDWR);
      conn_unref(c);
    }
  }
  pthread_attr_destroy(&at);
}

/* ---- UDP: a connected socket inside per client address ---- */
#define UDP_PEERS 64
struct udp_peer {
  int listen_idx;
  struct sockaddr_in client;
  int fd; /* in the container's namespace, connected to 127.0.0.1:cport */
};

static void udp_forward(int lfd, int idx, int cport, struct udp_peer *peers) {
  char buf[65536];
  struct sockaddr_in from;
  socklen_t fl = sizeof from;
  ssize_t n = recvfrom(lfd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
  if (n < 0) return;
  struct udp_peer *p = NULL, *free_slot = NULL;
  for (int i = 0; i < UDP_PEERS; i++) {
    if (peers[i].fd >= 0 && peers[i].listen_idx == idx && peers[i].client.sin_port == from.sin_port &&
        peers[i].client.sin_addr.s_addr == from.sin_addr.s_addr)
      p = &peers[i];
    else if (peers[i].fd < 0 && !free_slot) free_slot = &peers[i];
  }
  if (!p) {
    if (!free_slot) { /* full: recycle the first */
      free_slot = &peers[0];
      close(free_slot->fd);
    }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((unsigned short)cport), .sin_addr = {htonl(INADDR_LOOPBACK)}};
    if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof to) < 0) {
      if (s >= 0) close(s);
      free_slot->fd = -1;
      return;
    }
    *free_slot = (struct udp_peer){.listen_idx = idx, .client = from, .fd = s};
    p = free_slot;
  }
  if (send(p->fd, buf, (size_t)n, MSG_DONTWAIT) < 0) {}
}

static __attribute__((noreturn)) void serve(json_t *ports, int *fds, int pidfd) {
  size_t np = json_array_size(ports);
  struct udp_peer peers[UDP_PEERS];
  for (int i = 0; i < UDP_PEERS; i++) peers[i].fd = -1;
  struct pollfd pf[1 + PF_MAX_PORTS + UDP_PEERS];
  for (;;) {
    size_t n = 0;
    pf[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
    for (size_t i = 0; i < np && i < PF_MAX_PORTS; i++) pf[n++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    size_t pbase = n;
    for (int i = 0; i < UDP_PEERS; i++) pf[n++] = (struct pollfd){.fd = peers[i].fd, .events = POLLIN};
    if (poll(pf, n, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    if (pf[0].revents) _exit(0); /* the container's init is gone */
    for (size_t i = 0; i < np && i < PF_MAX_PORTS; i++) {
      if (!pf[1 + i].revents) continue;
      json_t *p = json_array_get(ports, i);
      int cport = (int)json_integer_value(json_object_get(p, "container"));
      if (is_udp(p)) udp_forward(fds[i], (int)i, cport, peers);
      else tcp_accept(fds[i], cport);
    }
    /* replies from inside go back to the client they belong to */
    for (int i = 0; i < UDP_PEERS; i++) {
      if (peers[i].fd < 0 || !pf[pbase + (size_t)i].revents) continue;
      char buf[65536];
      ssize_t r = recv(peers[i].fd, buf, sizeof buf, MSG_DONTWAIT);
      if (r >= 0)
        sendto(fds[peers[i].listen_idx], buf, (size_t)r, MSG_DONTWAIT, (struct sockaddr *)&peers[i].client, sizeof peers[i].client);
    }
  }
}

pid_t pf_start(pid_t init_pid, bool rootless, json_t *ports, int *fds, berth_error_t *err) {
  if (json_array_size(ports) > PF_MAX_PORTS) return berth_error(err, -EINVAL, "at most %d published ports per container", PF_MAX_PORTS);
  int pidfd = (int)syscall(SYS_pidfd_open, init_pid, 0);
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/ns/user", (int)init_pid);
  int ufd = rootless ? open(p, O_RDONLY | O_CLOEXEC) : -1;
  snprintf(p, sizeof p, "/proc/%d/ns/net", (int)init_pid);
  int nfd = open(p, O_RDONLY | O_CLOEXEC);
  if (pidfd < 0 || nfd < 0 || (rootless && ufd < 0)) {
    int e = errno;
    if (pidfd >= 0) close(pidfd);
    if (ufd >= 0) close(ufd);
    if (nfd >= 0) close(nfd);
    return berth_error(err, e, "open the container's namespaces for the port forwarder");
  }
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  pid_t f = fork();
  if (f == 0) {
    close(ready[0]);
    char ok = 1;
    if ((ufd >= 0 && setns(ufd, CLONE_NEWUSER) < 0) || setns(nfd, CLONE_NEWNET) < 0) ok = 0;
    if (write(ready[1], &ok, 1) != 1 || !ok) _exit(1);
    /* keep only the host sockets and the pidfd: a stray copy of the
     * monitor's pipes would keep its readers waiting */
    for (int fd = 3; fd < 1024; fd++) {
      bool keep = fd == pidfd;
      for (size_t i = 0; i < json_array_size(ports); i++) keep = keep || fd == fds[i];
      if (!keep) close(fd);
    }
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul >= 0) dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
    signal(SIGPIPE, SIG_IGN);
    /* six descriptors per connection (two sockets, two pipes): as many as
     * the hard limit allows, and no more connections than fit */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
      getrlimit(RLIMIT_NOFILE, &rl);
      long fit = ((long)rl.rlim_cur - 64 - PF_MAX_PORTS - UDP_PEERS) / 6;
      if (fit < max_conns) max_conns = fit > 1 ? (int)fit : 1;
    }
    prctl(PR_SET_NAME, "berth-ports");
    proc_set_title("berth-ports");
    serve(ports, fds, pidfd);
  }
  close(ready[1]);
  close(pidfd);
  if (ufd >= 0) close(ufd);
  close(nfd);
  char ok = 0;
  bool good = f > 0 && read(ready[0], &ok, 1) == 1 && ok == 1;
  close(ready[0]);
  if (!good) {
    if (f > 0) {
      kill(f, SIGKILL);
      waitpid(f, NULL, 0);
    }
    return berth_error(err, -EPERM, "the port forwarder could not enter the container's network namespace");
  }
  return f;
}
