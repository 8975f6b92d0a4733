#define _GNU_SOURCE
#include "network/network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

static const char *helper_path(void) {
  static const char *c[] = {"/usr/bin/slirp4netns", "/usr/local/bin/slirp4netns", "/bin/slirp4netns", NULL};
  for (int i = 0; c[i]; i++)
    if (access(c[i], X_OK) == 0) return c[i];
  return NULL;
}

/* slirp4netns needs its binary and a tun device this user may open */
bool net_helper_available(void) {
  if (!helper_path()) return false;
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  close(fd);
  return true;
}

int net_start(pid_t init_pid, bool rootless, int exit_fd, pid_t *helper, berth_error_t *err) {
  const char *bin = helper_path();
  if (!bin || !net_helper_available())
    return berth_error(err, -ENOENT,
                       "the bridge network needs slirp4netns and a usable /dev/net/tun (see `berth preflight`: "
                       "sudo apt-get install slirp4netns; sudo chmod 0666 /dev/net/tun), or use network \"none\" or \"host\"");
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) return berth_error(err, errno, "pipe");
  pid_t p = fork();
  if (p < 0) return berth_error(err, errno, "fork");
  if (p == 0) {
    /* fds 3 and 4 for the helper: ready and exit */
    int r = fcntl(ready[1], F_DUPFD, 10), e = fcntl(exit_fd, F_DUPFD, 10);
    dup2(r, 3);
    dup2(e, 4);
    syscall(SYS_close_range, 5U, ~0U, 0);
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) dup2(nul, 0), dup2(nul, 1), dup2(nul, 2); /* it chats on stderr */
    setsid();
    char netns[64], userns[64];
    snprintf(netns, sizeof netns, "/proc/%d/ns/net", (int)init_pid);
    snprintf(userns, sizeof userns, "--userns-path=/proc/%d/ns/user", (int)init_pid);
    char *argv[16];
    int a = 0;
    argv[a++] = "slirp4netns";
    argv[a++] = "--configure";
    argv[a++] = "--mtu=65520";
    argv[a++] = "--ready-fd=3";
    argv[a++] = "--exit-fd=4";
    argv[a++] = "--netns-type=path";
    if (rootless) argv[a++] = userns;
    argv[a++] = netns;
    argv[a++] = "tap0";
    argv[a] = NULL;
    execv(bin, argv);
    _exit(127);
  }
  close(ready[1]);
  struct pollfd pf = {.fd = ready[0], .events = POLLIN};
  int r;
  while ((r = poll(&pf, 1, 10000)) < 0 && errno == EINTR) {}
  char c = 0;
  bool ok = r > 0 && read(ready[0], &c, 1) == 1 && c == '1';
  close(ready[0]);
  if (!ok) {
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    return berth_error(err, -EIO, "slirp4netns did not set up the container's network (is /dev/net/tun usable? see `berth preflight`)");
  }
  *helper = p;
  return 0;
}

int net_ports_check(json_t *ports, berth_error_t *err) {
  size_t i;
  json_t *p;
  if (json_array_size(ports) > PF_MAX_PORTS) return berth_error(err, -EINVAL, "at most %d published ports per container", PF_MAX_PORTS);
  json_array_foreach(ports, i, p) {
    json_int_t h = json_integer_value(json_object_get(p, "host")), c = json_integer_value(json_object_get(p, "container"));
    const char *proto = json_string_value(json_object_get(p, "protocol"));
    const char *ip = json_string_value(json_object_get(p, "host_ip"));
    if (h < 1 || h > 65535 || c < 1 || c > 65535) return berth_error(err, -EINVAL, "ports[%zu]: host and container must be 1-65535", i);
    if (proto && strcmp(proto, "tcp") && strcmp(proto, "udp"))
      return berth_error(err, -EINVAL, "ports[%zu]: protocol must be tcp or udp", i);
    struct in_addr a;
    if (ip && inet_pton(AF_INET, ip, &a) != 1)
      return berth_error(err, -EINVAL, "ports[%zu]: host_ip `%.40s` is not an IPv4 address", i, ip);
  }
  return 0;
}
