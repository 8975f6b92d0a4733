/* Bulk TCP throughput probe for bench/net.sh, built static so it runs in
 * any container:
 *   netpipe sink PORT          accept one connection, read to EOF, print
 *                              "bytes seconds"
 *   netpipe send HOST PORT MB  connect (HOST: IPv4 or a name from
 *                              /etc/hosts), write MB MiB, print Gbit/s */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 18];

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

/* a name from /etc/hosts (static binaries cannot use NSS) */
static int resolve(const char *host, struct in_addr *a) {
  if (inet_pton(AF_INET, host, a) == 1) return 0;
  FILE *f = fopen("/etc/hosts", "r");
  char line[512], ip[64], name[256];
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "%63s %255s", ip, name) == 2 && !strcmp(name, host) && inet_pton(AF_INET, ip, a) == 1) {
      fclose(f);
      return 0;
    }
  if (f) fclose(f);
  return -1;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "sink")) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 1) < 0) return perror("bind"), 1;
    int c = accept(s, NULL, NULL);
    if (c < 0) return perror("accept"), 1;
    double t0 = now();
    long long total = 0;
    ssize_t n;
    while ((n = read(c, buf, sizeof buf)) > 0) total += n;
    printf("%lld %.4f\n", total, now() - t0);
    return 0;
  }
  if (argc == 5 && !strcmp(argv[1], "send")) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[3]))};
    if (resolve(argv[2], &a.sin_addr) < 0) return fprintf(stderr, "netpipe: cannot resolve %s\n", argv[2]), 1;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    for (int i = 0; i < 50 && connect(s, (struct sockaddr *)&a, sizeof a) < 0; i++) {
      close(s);
      s = socket(AF_INET, SOCK_STREAM, 0);
      usleep(100000);
    }
    long long want = atoll(argv[4]) << 20, sent = 0;
    double t0 = now();
    while (sent < want) {
      ssize_t n = write(s, buf, sizeof buf);
      if (n <= 0) return perror("write"), 1;
      sent += n;
    }
    shutdown(s, SHUT_WR);
    while (read(s, buf, sizeof buf) > 0) {}
    double dt = now() - t0;
    printf("%.2f\n", sent * 8 / dt / 1e9);
    return 0;
  }
  fprintf(stderr, "usage: netpipe sink PORT | netpipe send HOST PORT MB\n");
  return 2;
}
