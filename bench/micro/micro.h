/* what bench/micro's programs share: a clock and a sort for medians */
#ifndef BERTH_MICRO_H
#define BERTH_MICRO_H
#include <stdlib.h>
#include <time.h>

static inline double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static inline int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static inline void sort_ms(double *s, int n) { qsort(s, (size_t)n, sizeof *s, cmp_double); }
#endif
