/* The C side of the cross-language test: a member of a group that either
 *   hold <n>:            receives n messages, prints "held <seq> <deliveries>"
 *                        for each, then "holding", and waits to be killed
 *                        (leases of 120 s: they come back only because it dies);
 *   drain <n> <secs>:    receives and acks until n messages were acked,
 *                        printing "acked <seq> <deliveries> <payload>" for each;
 *                        exit 2 if the deadline (which only detects a hang) passes.
 * Usage: cross_consumer <queue path> <group> hold <n> | drain <n> <deadline s> */
#define _GNU_SOURCE
#include <ackring/ackring.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: cross_consumer <queue> <group> hold <n> | drain <n> <deadline s>\n");
    return 2;
  }
  /* Never outlive the test: die with the parent, and after a safety alarm. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  alarm(90);
  const char* path = argv[1];
  const char* group = argv[2];
  const char* mode = argv[3];
  const long n = strtol(argv[4], NULL, 10);

  ackring_queue* q = NULL;
  ackring_consumer* c = NULL;
  ackring_consumer_options o;
  ackring_consumer_options_init(&o);
  o.lease_ms = 120000;
  if (ackring_queue_open(path, &q) != ACKRING_OK || ackring_queue_consumer(q, group, &o, &c) != ACKRING_OK) {
    fprintf(stderr, "cross_consumer: %s\n", ackring_last_error());
    return 1;
  }
  ackring_message m;
  if (strcmp(mode, "hold") == 0) {
    for (long i = 0; i < n; ++i) {
      if (ackring_receive(c, &m, 30LL * 1000000000LL) != ACKRING_OK) {
        fprintf(stderr, "cross_consumer: receive: %s\n", ackring_last_error());
        return 1;
      }
      printf("held %llu %u\n", (unsigned long long)m.seq, m.deliveries);
    }
    printf("holding\n");
    fflush(stdout);
    for (;;) pause();
  }
  if (strcmp(mode, "drain") != 0 || argc != 6) {
    fprintf(stderr, "cross_consumer: unknown mode\n");
    return 2;
  }
  const double deadline = now_s() + strtod(argv[5], NULL);
  long acked = 0;
  while (acked < n) {
    if (now_s() > deadline) {
      fprintf(stderr, "cross_consumer: only %ld of %ld acked before the deadline\n", acked, n);
      return 2;
    }
    const ackring_status s = ackring_receive(c, &m, 200000000LL);
    if (s == ACKRING_TIMEOUT) continue;
    if (s != ACKRING_OK) {
      fprintf(stderr, "cross_consumer: receive: %s\n", ackring_last_error());
      return 1;
    }
    printf("acked %llu %u %.*s\n", (unsigned long long)m.seq, m.deliveries, (int)m.length, (const char*)m.payload);
    if (ackring_ack(c, &m) != ACKRING_OK) {
      fprintf(stderr, "cross_consumer: ack of seq %llu: %s\n", (unsigned long long)m.seq, ackring_last_error());
      return 1;
    }
    ++acked;
  }
  fflush(stdout);
  ackring_consumer_close(c);
  ackring_queue_close(q);
  return 0;
}
