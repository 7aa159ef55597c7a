/* Built against an installed ackring by tests/install/install_test.sh: the C
 * API from the installed header and library publishes, receives and acks
 * one message. Exit 0 and "c: received hello from <pid>" when it works. */
#include <ackring/ackring.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  char path[128], text[64];
  snprintf(path, sizeof path, "/dev/shm/ackring.c-install-smoke.%d", (int)getpid());
  snprintf(text, sizeof text, "hello from %d", (int)getpid());
  ackring_queue_options o;
  ackring_queue_options_init(&o);
  o.capacity = 16;
  o.max_message_size = 256;
  ackring_queue* q = NULL;
  ackring_producer* p = NULL;
  ackring_consumer* c = NULL;
  ackring_message m;
  int rc = 1;
  if (ackring_queue_create(path, &o, &q) == ACKRING_OK && ackring_queue_create_group(q, "smoke", NULL) == ACKRING_OK &&
      ackring_queue_consumer(q, "smoke", NULL, &c) == ACKRING_OK && ackring_queue_producer(q, &p) == ACKRING_OK &&
      ackring_publish(p, text, strlen(text), 1000000000LL, NULL) == ACKRING_OK &&
      ackring_receive(c, &m, 5000000000LL) == ACKRING_OK && m.length == strlen(text) &&
      memcmp(m.payload, text, m.length) == 0 && ackring_ack(c, &m) == ACKRING_OK) {
    printf("c: received %.*s (libackring_c %s)\n", (int)m.length, (const char*)m.payload, ackring_version());
    rc = 0;
  } else {
    fprintf(stderr, "install_smoke.c: %s\n", ackring_last_error());
  }
  ackring_consumer_close(c);
  ackring_producer_close(p);
  ackring_queue_close(q);
  ackring_queue_destroy(path);
  return rc;
}
