/* The C API compiled as C11: every function of include/ackring/ackring.h,
 * its ordinary outcomes and every error path with bad arguments (NULL
 * handles and pointers, wrong struct sizes, out-of-range enums, foreign and
 * settled messages). No verdict depends on timing: the only waits are
 * timeouts on a queue known to be full or empty.
 * Exit 0: all passed; 1: a check failed (it says which and why). */
#define _GNU_SOURCE
#include <ackring/ackring.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static int failures = 0;
static char g_path[128];     /* the test queue (its .dlq too) */
static char g_path2[256];    /* a queue without dedup */
static char g_path3[256];    /* the batch calls' queue */
static char g_durable[256];  /* a sync-durable queue, recovered from its journal */
static char g_journal[256];  /* its journal directory */

#define CHECK(cond)                                                                                     \
  do {                                                                                                  \
    if (!(cond)) {                                                                                      \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond,           \
              ackring_last_error());                                                                    \
      ++failures;                                                                                       \
    }                                                                                                   \
  } while (0)
/* The call returns `expected` and, for an argument error, says something. */
#define EXPECT(call, expected)                                                                         \
  do {                                                                                                 \
    ackring_status got_ = (call);                                                                      \
    if (got_ != (expected)) {                                                                          \
      fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s); last error: %s\n", __FILE__, __LINE__, \
              #call, (int)got_, ackring_status_string(got_), (int)(expected),                         \
              ackring_status_string(expected), ackring_last_error());                                  \
      ++failures;                                                                                      \
    } else if (got_ != ACKRING_OK && ackring_last_error()[0] == '\0') {                                \
      fprintf(stderr, "%s:%d: %s failed without a message\n", __FILE__, __LINE__, #call);              \
      ++failures;                                                                                      \
    }                                                                                                  \
  } while (0)
#define REQUIRE(cond)                                                     \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "%s:%d: REQUIRE(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond, \
              ackring_last_error());                                      \
      exit(1);                                                            \
    }                                                                     \
  } while (0)

static void cleanup(void) {
  char dlq[300];
  ackring_queue_destroy(g_path);
  snprintf(dlq, sizeof dlq, "%s.dlq", g_path);
  ackring_queue_destroy(dlq);
  ackring_queue_destroy(g_path2);
  ackring_queue_destroy(g_path3);
  ackring_queue_destroy(g_durable);
  snprintf(dlq, sizeof dlq, "%s.dlq", g_durable);
  ackring_queue_destroy(dlq);
  if (g_journal[0] != '\0') {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_journal);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_journal);
  }
}

static int message_is(const ackring_message* m, const char* text) {
  return m->length == strlen(text) && memcmp(m->payload, text, m->length) == 0;
}

static void test_status_strings_and_version(void) {
  static const ackring_status all[] = {
      ACKRING_OK, ACKRING_QUEUE_FULL, ACKRING_TIMEOUT, ACKRING_LEASE_LOST, ACKRING_DUPLICATE, ACKRING_TOO_LARGE,
      ACKRING_EMPTY, ACKRING_CORRUPT, ACKRING_NO_SUCH_GROUP, ACKRING_DEDUP_FULL, ACKRING_NO_DEDUP,
      ACKRING_HANDLER_FAILED, ACKRING_E_INVALID_ARGUMENT, ACKRING_E_NOT_FOUND, ACKRING_E_ALREADY_EXISTS,
      ACKRING_E_PERMISSION_DENIED, ACKRING_E_INCOMPATIBLE, ACKRING_E_CORRUPT, ACKRING_E_RESOURCE_EXHAUSTED,
      ACKRING_E_SYSTEM, ACKRING_E_TIMEOUT, ACKRING_E_NO_MEMORY, ACKRING_E_INTERNAL};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) {
    const char* s = ackring_status_string(all[i]);
    CHECK(s != NULL && s[0] != '\0' && strcmp(s, "unknown status") != 0);
  }
  CHECK(strcmp(ackring_status_string((ackring_status)77), "unknown status") == 0);
  CHECK(strcmp(ackring_status_string(ACKRING_LEASE_LOST), "lease lost") == 0);
  CHECK(ackring_version()[0] != '\0');
  CHECK(ackring_last_error() != NULL);
}

static void test_options_and_queue_errors(void) {
  ackring_queue_options o;
  ackring_queue* q = (ackring_queue*)0x1;
  ackring_queue_options_init(NULL); /* no-op, no crash */
  ackring_group_options_init(NULL);
  ackring_consumer_options_init(NULL);
  ackring_queue_options_init(&o);
  CHECK(o.size == sizeof o && o.capacity == 4096 && o.max_message_size == 1024 && o.default_lease_ms == 30000);
  CHECK(o.dedup == 1 && o.durability == ACKRING_DURABILITY_NONE && o.journal_dir == NULL);

  EXPECT(ackring_queue_create(NULL, NULL, &q), ACKRING_E_INVALID_ARGUMENT);
  CHECK(q == NULL); /* *out is cleared on failure */
  EXPECT(ackring_queue_create(g_path, NULL, NULL), ACKRING_E_INVALID_ARGUMENT);
  o.size = 0;
  EXPECT(ackring_queue_create(g_path, &o, &q), ACKRING_E_INVALID_ARGUMENT);
  CHECK(strstr(ackring_last_error(), "size") != NULL);
  o.size = sizeof o + 8; /* a struct from a newer header */
  EXPECT(ackring_queue_create(g_path, &o, &q), ACKRING_E_INVALID_ARGUMENT);
  ackring_queue_options_init(&o);
  o.durability = 9;
  EXPECT(ackring_queue_create(g_path, &o, &q), ACKRING_E_INVALID_ARGUMENT);
  ackring_queue_options_init(&o);
  CHECK(o.publish_timestamp == ACKRING_PUBLISH_TIMESTAMP_PRECISE);
  o.publish_timestamp = 2;
  EXPECT(ackring_queue_create(g_path, &o, &q), ACKRING_E_INVALID_ARGUMENT);
  ackring_queue_options_init(&o);
  o.dedup_full_policy = 9;
  EXPECT(ackring_queue_create(g_path, &o, &q), ACKRING_E_INVALID_ARGUMENT);
  ackring_queue_options_init(&o);
  o.capacity = 3; /* not a power of two: the C++ library's own check */
  EXPECT(ackring_queue_create(g_path, &o, &q), ACKRING_E_INVALID_ARGUMENT);
  CHECK(q == NULL);
  EXPECT(ackring_queue_open(g_path, &q), ACKRING_E_NOT_FOUND);
  CHECK(strstr(ackring_last_error(), g_path) != NULL); /* the message names the file */
  EXPECT(ackring_queue_open(NULL, &q), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_queue_open(g_path, NULL), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_queue_open_or_create(NULL, NULL, &q), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_queue_destroy(NULL), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_queue_destroy(g_path), ACKRING_E_NOT_FOUND);
  ackring_queue_close(NULL); /* no-op */
  ackring_producer_close(NULL);
  ackring_consumer_close(NULL);
  ackring_stats_free(NULL);
}

static int g_handler_calls = 0;
static int handler_ok(const ackring_message* m, void* user) {
  (void)m;
  ++*(int*)user;
  ++g_handler_calls;
  return 0;
}
static int handler_fails(const ackring_message* m, void* user) {
  (void)m;
  (void)user;
  ++g_handler_calls;
  return 1;
}

/* Fails on the message "m2", counts the others. */
static int handler_fails_on_m2(const ackring_message* m, void* user) {
  if (message_is(m, "m2")) return 1;
  ++*(int*)user;
  return 0;
}

static void test_keyed_batch_and_process_once_batch(void) {
  ackring_queue_options o;
  ackring_queue* q = NULL;
  ackring_queue_options_init(&o);
  o.capacity = 64;
  o.max_message_size = 8;
  EXPECT(ackring_queue_create(g_path3, &o, &q), ACKRING_OK);
  REQUIRE(q != NULL);
  ackring_consumer* c = NULL;
  ackring_producer* p = NULL;
  EXPECT(ackring_queue_consumer(q, "g", NULL, &c), ACKRING_OK); /* joins before the publishes */
  EXPECT(ackring_queue_producer(q, &p), ACKRING_OK);
  REQUIRE(c != NULL && p != NULL);

  /* keyed batch: m0 (k0), m1 (k0 again: duplicate of m0), m2 (no key), then one too long */
  ackring_keyed_buffer batch[4] = {{"m0", 2, "k0", 2}, {"m1", 2, "k0", 2}, {"m2", 2, NULL, 0},
                                   {"far too long", 12, "k3", 2}};
  ackring_publish_result results[4];
  memset(results, 0xff, sizeof results);
  size_t published = 99;
  EXPECT(ackring_publish_keyed_batch(p, batch, 4, 0, results, NULL), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_publish_keyed_batch(NULL, batch, 4, 0, results, &published), ACKRING_E_INVALID_ARGUMENT);
  CHECK(published == 0);
  ackring_keyed_buffer bad = {"x", 1, NULL, 3};
  EXPECT(ackring_publish_keyed_batch(p, &bad, 1, 0, results, &published), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_publish_keyed_batch(p, batch, 4, 0, results, &published), ACKRING_TOO_LARGE);
  CHECK(published == 3);
  CHECK(results[0].seq == 0 && results[0].duplicate == 0);
  CHECK(results[1].seq == 0 && results[1].duplicate == 1);
  CHECK(results[2].seq == 1 && results[2].duplicate == 0);
  CHECK(results[3].seq == ~0ull); /* not tried: not written */
  batch[3].length = 2;             /* "fa" */
  EXPECT(ackring_publish_keyed_batch(p, batch, 4, 1000000, NULL, &published), ACKRING_OK);
  CHECK(published == 4); /* m0, m1 duplicates again; m2 (unkeyed) published again; "fa" new */

  /* process-once batch: m0, m2, m2, fa; the handler fails on the first m2 */
  ackring_message msgs[8];
  size_t n = 0;
  EXPECT(ackring_receive_batch(c, msgs, 8, 0, &n), ACKRING_OK);
  REQUIRE(n == 4);
  CHECK(message_is(&msgs[0], "m0") && message_is(&msgs[1], "m2") && message_is(&msgs[2], "m2") &&
        message_is(&msgs[3], "fa"));
  int calls = 0;
  ackring_process_counts counts;
  EXPECT(ackring_process_once_batch(c, msgs, n, NULL, &calls, &counts), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_process_once_batch(c, msgs, n, handler_fails_on_m2, &calls, &counts), ACKRING_HANDLER_FAILED);
  CHECK(calls == 1 && counts.handled == 1 && counts.acked == 1 && counts.duplicates == 0);
  int processed = -1;
  EXPECT(ackring_is_processed(c, &msgs[1], &processed), ACKRING_OK);
  CHECK(processed == 0); /* the failed one is not recorded */
  EXPECT(ackring_ack(c, &msgs[0]), ACKRING_LEASE_LOST); /* m0 was acked */
  /* the three left (still leased to us), once "fa" was recorded as processed elsewhere */
  EXPECT(ackring_mark_processed(c, &msgs[3]), ACKRING_OK);
  calls = 0;
  EXPECT(ackring_process_once_batch(c, msgs + 1, 3, handler_ok, &calls, &counts), ACKRING_OK);
  CHECK(calls == 2 && counts.handled == 2 && counts.duplicates == 1 && counts.acked == 3 && counts.unrecorded == 0);
  EXPECT(ackring_receive(c, &msgs[0], 0), ACKRING_EMPTY); /* all settled */
  EXPECT(ackring_process_once_batch(c, msgs, 0, handler_ok, &calls, NULL), ACKRING_OK);

  ackring_producer_close(p);
  ackring_consumer_close(c);
  ackring_queue_close(q);
}

static void test_publish_receive_settle(void) {
  ackring_queue_options o;
  ackring_queue* q = NULL;
  ackring_queue* q_again = NULL;
  ackring_queue_options_init(&o);
  o.capacity = 128;
  o.max_message_size = 64;
  o.max_deliveries = 3;
  EXPECT(ackring_queue_create(g_path, &o, &q), ACKRING_OK);
  REQUIRE(q != NULL);
  EXPECT(ackring_queue_create(g_path, &o, &q_again), ACKRING_E_ALREADY_EXISTS);
  EXPECT(ackring_queue_open_or_create(g_path, NULL, &q_again), ACKRING_OK);
  ackring_queue_close(q_again);
  EXPECT(ackring_queue_open(g_path, &q_again), ACKRING_OK);

  /* groups */
  ackring_group_options go;
  ackring_group_options_init(&go);
  CHECK(go.size == sizeof go && go.overflow == ACKRING_OVERFLOW_BLOCK && go.start == ACKRING_START_EARLIEST);
  CHECK(go.redelivery_initial_ms == 0 && go.redelivery_multiplier == 2.0 && go.redelivery_max_ms == 60000 &&
        go.redelivery_jitter == ACKRING_JITTER_EQUAL);
  EXPECT(ackring_queue_create_group(NULL, "g", NULL), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_queue_create_group(q, NULL, NULL), ACKRING_E_INVALID_ARGUMENT);
  go.size = 1;
  EXPECT(ackring_queue_create_group(q, "g", &go), ACKRING_E_INVALID_ARGUMENT);
  ackring_group_options_init(&go);
  go.overflow = 5;
  EXPECT(ackring_queue_create_group(q, "g", &go), ACKRING_E_INVALID_ARGUMENT);
  ackring_group_options_init(&go);
  go.start = 5;
  EXPECT(ackring_queue_create_group(q, "g", &go), ACKRING_E_INVALID_ARGUMENT);
  ackring_group_options_init(&go);
  go.redelivery_jitter = 9;
  EXPECT(ackring_queue_create_group(q, "g", &go), ACKRING_E_INVALID_ARGUMENT);
  ackring_group_options_init(&go);
  go.redelivery_initial_ms = 100;
  go.redelivery_max_ms = 10; /* below initial */
  EXPECT(ackring_queue_create_group(q, "g", &go), ACKRING_E_INVALID_ARGUMENT);
  /* A caller built against the first header (no redelivery fields) still works. */
  ackring_group_options_init(&go);
  go.size = offsetof(ackring_group_options, redelivery_initial_ms);
  EXPECT(ackring_queue_create_group(q, "old_header", &go), ACKRING_OK);
  EXPECT(ackring_queue_remove_group(q, "old_header"), ACKRING_OK);
  ackring_group_options_init(&go);
  EXPECT(ackring_queue_create_group(q, "work", &go), ACKRING_OK);
  go.redelivery_initial_ms = 250;
  go.redelivery_max_ms = 1000;
  go.redelivery_jitter = ACKRING_JITTER_FULL;
  EXPECT(ackring_queue_set_redelivery(q, "work", &go), ACKRING_OK);
  EXPECT(ackring_queue_set_redelivery(q, "nope", &go), ACKRING_E_NOT_FOUND);
  EXPECT(ackring_queue_set_redelivery(q, "work", NULL), ACKRING_E_INVALID_ARGUMENT);
  go.redelivery_initial_ms = 0; /* off again: the rest of this test expects nacks back at once */
  EXPECT(ackring_queue_set_redelivery(q, "work", &go), ACKRING_OK);
  EXPECT(ackring_queue_create_group(q, "work", NULL), ACKRING_E_ALREADY_EXISTS);
  EXPECT(ackring_queue_create_group(q_again, "spare", NULL), ACKRING_OK);
  EXPECT(ackring_queue_remove_group(q, "spare"), ACKRING_OK);
  EXPECT(ackring_queue_remove_group(q, "spare"), ACKRING_E_NOT_FOUND);
  EXPECT(ackring_queue_remove_group(NULL, "spare"), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_queue_remove_group(q, NULL), ACKRING_E_INVALID_ARGUMENT);
  ackring_queue_close(q_again); /* the other handle stays usable */

  /* producer */
  ackring_producer* p = (ackring_producer*)0x1;
  EXPECT(ackring_queue_producer(NULL, &p), ACKRING_E_INVALID_ARGUMENT);
  CHECK(p == NULL);
  EXPECT(ackring_queue_producer(q, NULL), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_queue_producer(q, &p), ACKRING_OK);
  REQUIRE(p != NULL);

  ackring_publish_result r;
  EXPECT(ackring_publish(NULL, "x", 1, 0, &r), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_publish(p, NULL, 1, 0, &r), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_publish((ackring_producer*)q, "x", 1, 0, &r), ACKRING_E_INVALID_ARGUMENT); /* wrong handle kind */
  CHECK(strstr(ackring_last_error(), "not an open producer") != NULL);
  char big[65];
  memset(big, 'b', sizeof big);
  EXPECT(ackring_publish(p, big, sizeof big, 0, &r), ACKRING_TOO_LARGE);
  EXPECT(ackring_publish(p, "first", 5, ACKRING_FOREVER, &r), ACKRING_OK);
  CHECK(r.seq == 0 && r.duplicate == 0);
  EXPECT(ackring_publish(p, NULL, 0, 1000000000, NULL), ACKRING_OK); /* empty payload, result not wanted */
  EXPECT(ackring_publish_keyed(p, "keyed", 5, "k-1", 3, 0, &r), ACKRING_OK);
  CHECK(r.seq == 2 && r.duplicate == 0);
  EXPECT(ackring_publish_keyed(p, "keyed", 5, "k-1", 3, 0, &r), ACKRING_OK);
  CHECK(r.seq == 2 && r.duplicate == 1);
  EXPECT(ackring_publish_keyed(p, "keyed", 5, NULL, 3, 0, &r), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_publish_keyed(p, "keyed", 5, "k", 0, 0, &r), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_publish_keyed(NULL, "keyed", 5, "k", 1, 0, &r), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_publish_keyed(p, NULL, 5, "k", 1, 0, &r), ACKRING_E_INVALID_ARGUMENT);
  ackring_buffer batch[3] = {{"b0", 2}, {"b1", 2}, {"b2", 2}};
  EXPECT(ackring_publish_batch(p, batch, 3, 0, &r), ACKRING_OK);
  CHECK(r.seq == 3);
  EXPECT(ackring_publish_batch(NULL, batch, 3, 0, &r), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_publish_batch(p, NULL, 3, 0, &r), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_publish_batch(p, batch, 0, 0, &r), ACKRING_E_INVALID_ARGUMENT);
  ackring_buffer bad[2] = {{"ok", 2}, {NULL, 4}};
  EXPECT(ackring_publish_batch(p, bad, 2, 0, &r), ACKRING_E_INVALID_ARGUMENT);
  /* seqs 0..5 published: "first", "", "keyed", "b0", "b1", "b2" */

  /* consumer */
  ackring_consumer_options co;
  ackring_consumer* c = (ackring_consumer*)0x1;
  ackring_consumer_options_init(&co);
  CHECK(co.size == sizeof co && co.mode == ACKRING_AT_LEAST_ONCE && co.create_group == 1 && co.lease_ms == 0);
  EXPECT(ackring_queue_consumer(NULL, "work", &co, &c), ACKRING_E_INVALID_ARGUMENT);
  CHECK(c == NULL);
  EXPECT(ackring_queue_consumer(q, NULL, &co, &c), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_queue_consumer(q, "work", &co, NULL), ACKRING_E_INVALID_ARGUMENT);
  co.size = 3;
  EXPECT(ackring_queue_consumer(q, "work", &co, &c), ACKRING_E_INVALID_ARGUMENT);
  ackring_consumer_options_init(&co);
  co.mode = 7;
  EXPECT(ackring_queue_consumer(q, "work", &co, &c), ACKRING_E_INVALID_ARGUMENT);
  ackring_consumer_options_init(&co);
  co.group_overflow = 7;
  EXPECT(ackring_queue_consumer(q, "work", &co, &c), ACKRING_E_INVALID_ARGUMENT);
  ackring_consumer_options_init(&co);
  CHECK(co.linger_us == 0);
  co.linger_us = 1000001;
  EXPECT(ackring_queue_consumer(q, "work", &co, &c), ACKRING_E_INVALID_ARGUMENT);
  CHECK(c == NULL);
  co.linger_us = UINT64_MAX;
  EXPECT(ackring_queue_consumer(q, "work", &co, &c), ACKRING_E_INVALID_ARGUMENT);
  CHECK(c == NULL);
  /* A caller built before linger_us existed passes the shorter struct: accepted, no linger. */
  ackring_consumer_options_init(&co);
  co.size = offsetof(ackring_consumer_options, linger_us);
  EXPECT(ackring_queue_consumer(q, "work", &co, &c), ACKRING_OK);
  REQUIRE(c != NULL);
  ackring_consumer_close(c);
  c = NULL;
  ackring_consumer_options_init(&co);
  co.create_group = 0;
  EXPECT(ackring_queue_consumer(q, "missing", &co, &c), ACKRING_E_NOT_FOUND);
  ackring_consumer_options_init(&co);
  co.lease_ms = 60000;
  EXPECT(ackring_queue_consumer(q, "work", &co, &c), ACKRING_OK);
  REQUIRE(c != NULL);
  ackring_consumer* other = NULL;
  EXPECT(ackring_queue_consumer(q, "work", NULL, &other), ACKRING_OK);
  REQUIRE(other != NULL);

  ackring_message m, m2;
  EXPECT(ackring_receive(NULL, &m, 0), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_receive(c, NULL, 0), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_receive((ackring_consumer*)p, &m, 0), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_receive(c, &m, ACKRING_FOREVER), ACKRING_OK);
  CHECK(m.seq == 0 && m.deliveries == 1 && message_is(&m, "first") && m.flags == 0 && m.publish_time_ns > 0);

  /* settling: bad messages, foreign messages, settled receipts */
  ackring_message zeroed;
  memset(&zeroed, 0, sizeof zeroed);
  EXPECT(ackring_ack(c, NULL), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_ack(NULL, &m), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_ack(c, &zeroed), ACKRING_E_INVALID_ARGUMENT);
  CHECK(strstr(ackring_last_error(), "not filled by ackring_receive") != NULL);
  EXPECT(ackring_ack(other, &m), ACKRING_E_INVALID_ARGUMENT);
  CHECK(strstr(ackring_last_error(), "another consumer") != NULL);
  EXPECT(ackring_extend(c, &m, 0), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_extend(c, &m, 120000), ACKRING_OK);
  EXPECT(ackring_ack(c, &m), ACKRING_OK);
  EXPECT(ackring_ack(c, &m), ACKRING_LEASE_LOST);
  EXPECT(ackring_nack(c, &m, 0), ACKRING_LEASE_LOST);
  EXPECT(ackring_extend(c, &m, 1000), ACKRING_LEASE_LOST);
  EXPECT(ackring_reject(c, &m), ACKRING_LEASE_LOST);
  EXPECT(ackring_nack(NULL, &m, 0), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_nack(c, NULL, 0), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_extend(NULL, &m, 10), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_extend(c, NULL, 10), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_reject(NULL, &m), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_reject(c, &zeroed), ACKRING_E_INVALID_ARGUMENT);

  /* nack: redelivered at once with delivery count 2 (the empty payload, seq 1) */
  EXPECT(ackring_receive(c, &m, 0), ACKRING_OK);
  CHECK(m.seq == 1 && m.length == 0);
  EXPECT(ackring_nack(c, &m, 0), ACKRING_OK);
  EXPECT(ackring_receive(c, &m2, 0), ACKRING_OK);
  CHECK(m2.seq == 1 && m2.deliveries == 2);
  EXPECT(ackring_ack(c, &m), ACKRING_LEASE_LOST); /* the receipt of the first delivery is stale */
  EXPECT(ackring_ack(c, &m2), ACKRING_OK);

  /* process-once on the keyed message (seq 2): handler failure, success, duplicate */
  int calls = 0;
  EXPECT(ackring_receive(c, &m, 0), ACKRING_OK);
  CHECK(m.seq == 2 && (m.flags & ACKRING_MESSAGE_HAS_KEY) != 0);
  {
    int keyed = 0, unkeyed = 0;
    for (size_t i = 0; i < sizeof m.key_fingerprint; ++i) {
      keyed |= m.key_fingerprint[i];
      unkeyed |= m2.key_fingerprint[i];
    }
    CHECK(keyed != 0 && unkeyed == 0); /* the key's fingerprint, and none for seq 1 (no key) */
  }
  EXPECT(ackring_process_once(c, &m, NULL, NULL), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_process_once(NULL, &m, handler_ok, &calls), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_process_once(c, &zeroed, handler_ok, &calls), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_process_once(c, &m, handler_fails, NULL), ACKRING_HANDLER_FAILED);
  int processed = -1;
  EXPECT(ackring_is_processed(c, &m, &processed), ACKRING_OK);
  CHECK(processed == 0); /* a failed handler records nothing */
  EXPECT(ackring_is_processed(c, &m, NULL), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_is_processed(NULL, &m, &processed), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_is_processed(c, NULL, &processed), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_process_once(c, &m, handler_ok, &calls), ACKRING_OK);
  CHECK(calls == 1);
  EXPECT(ackring_is_processed(c, &m, &processed), ACKRING_OK);
  CHECK(processed == 1);
  EXPECT(ackring_process_once(c, &m, handler_ok, &calls), ACKRING_DUPLICATE); /* processed: not again */
  CHECK(calls == 1);

  /* mark_processed then nack: the redelivery is a duplicate (seq 3, "b0") */
  EXPECT(ackring_receive(c, &m, 0), ACKRING_OK);
  CHECK(m.seq == 3 && message_is(&m, "b0"));
  EXPECT(ackring_mark_processed(NULL, &m), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_mark_processed(c, NULL), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_mark_processed(c, &m), ACKRING_OK);
  EXPECT(ackring_nack(c, &m, 0), ACKRING_OK);
  EXPECT(ackring_receive(c, &m, 0), ACKRING_OK);
  CHECK(m.seq == 3 && m.deliveries == 2);
  g_handler_calls = 0;
  EXPECT(ackring_process_once(c, &m, handler_ok, &calls), ACKRING_DUPLICATE);
  CHECK(g_handler_calls == 0);
  EXPECT(ackring_ack(c, &m), ACKRING_LEASE_LOST); /* the duplicate was acked */

  /* batch receive and cumulative ack: "b1", "b2" */
  ackring_message msgs[8];
  size_t n = 99;
  EXPECT(ackring_receive_batch(c, msgs, 8, 0, NULL), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_receive_batch(NULL, msgs, 8, 0, &n), ACKRING_E_INVALID_ARGUMENT);
  CHECK(n == 99); /* untouched: the handle was checked first */
  EXPECT(ackring_receive_batch(c, NULL, 8, 0, &n), ACKRING_E_INVALID_ARGUMENT);
  CHECK(n == 0);
  EXPECT(ackring_receive_batch(c, msgs, 0, 0, &n), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_receive_batch(c, msgs, 8, 0, &n), ACKRING_OK);
  CHECK(n == 2 && message_is(&msgs[0], "b1") && message_is(&msgs[1], "b2"));
  size_t acked = 99;
  EXPECT(ackring_ack_batch(NULL, msgs, n, &acked), ACKRING_E_INVALID_ARGUMENT);
  CHECK(acked == 0);
  EXPECT(ackring_ack_batch(c, NULL, 2, &acked), ACKRING_E_INVALID_ARGUMENT);
  msgs[2] = zeroed;
  EXPECT(ackring_ack_batch(c, msgs, 3, &acked), ACKRING_E_INVALID_ARGUMENT); /* nothing acked */
  CHECK(acked == 0);
  EXPECT(ackring_ack(c, &msgs[0]), ACKRING_OK); /* one of the two settled already */
  EXPECT(ackring_ack_batch(c, msgs, 2, &acked), ACKRING_LEASE_LOST);
  CHECK(acked == 1);
  EXPECT(ackring_ack_batch(c, msgs, 0, NULL), ACKRING_OK);

  /* empty queue: try and timeout */
  EXPECT(ackring_receive(c, &m, 0), ACKRING_EMPTY);
  EXPECT(ackring_receive(c, &m, 1000000), ACKRING_TIMEOUT);
  EXPECT(ackring_receive_batch(c, msgs, 8, 0, &n), ACKRING_EMPTY);
  EXPECT(ackring_receive_batch(c, msgs, 8, 1000000, &n), ACKRING_TIMEOUT);
  CHECK(n == 0);

  /* a batch larger than 64 (the heap path), received in one call */
  ackring_buffer many[100];
  for (int i = 0; i < 100; ++i) many[i] = (ackring_buffer){"m", 1};
  EXPECT(ackring_publish_batch(p, many, 100, 0, &r), ACKRING_OK);
  CHECK(r.seq == 6);
  ackring_message got[100];
  EXPECT(ackring_receive_batch(c, got, 100, ACKRING_FOREVER, &n), ACKRING_OK);
  CHECK(n == 100 && got[99].seq == 105);
  /* seqs: 0..5 above, 6..105 this batch, 106 "poison", 107 its redrive */
  EXPECT(ackring_ack_batch(c, got, n, &acked), ACKRING_OK);
  CHECK(acked == 100);

  /* reject -> dead letter -> redrive */
  EXPECT(ackring_publish(p, "poison", 6, 0, &r), ACKRING_OK);
  EXPECT(ackring_receive(c, &m, 0), ACKRING_OK);
  CHECK(message_is(&m, "poison"));
  EXPECT(ackring_reject(c, &m), ACKRING_OK);
  uint64_t moved = 0;
  EXPECT(ackring_redrive_dead_letters(NULL, &moved), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_redrive_dead_letters(g_path, &moved), ACKRING_OK);
  CHECK(moved == 1);
  EXPECT(ackring_receive(c, &m, ACKRING_FOREVER), ACKRING_OK);
  CHECK(message_is(&m, "poison") && m.deliveries == 1);
  EXPECT(ackring_ack(c, &m), ACKRING_OK);

  /* stats */
  ackring_stats* s = (ackring_stats*)0x1;
  EXPECT(ackring_queue_stats(NULL, &s), ACKRING_E_INVALID_ARGUMENT);
  CHECK(s == NULL);
  EXPECT(ackring_queue_stats(q, NULL), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_queue_stats(q, &s), ACKRING_OK);
  REQUIRE(s != NULL);
  ackring_queue_info qi;
  memset(&qi, 0, sizeof qi);
  EXPECT(ackring_stats_queue(s, &qi), ACKRING_E_INVALID_ARGUMENT); /* size 0 */
  qi.size = sizeof qi + 1;
  EXPECT(ackring_stats_queue(s, &qi), ACKRING_E_INVALID_ARGUMENT);
  qi.size = sizeof qi;
  EXPECT(ackring_stats_queue(NULL, &qi), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_stats_queue(s, NULL), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_stats_queue(s, &qi), ACKRING_OK);
  CHECK(qi.capacity == 128 && qi.tail == 108 && qi.groups == 1 && strcmp(qi.path, g_path) == 0);
  CHECK(qi.dedup_hits == 1);
  ackring_group_info gi;
  memset(&gi, 0, sizeof gi);
  gi.size = sizeof gi;
  EXPECT(ackring_stats_group(s, 1, &gi), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_stats_group(NULL, 0, &gi), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_stats_group(s, 0, NULL), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_stats_group(s, 0, &gi), ACKRING_OK);
  CHECK(strcmp(gi.name, "work") == 0 && gi.floor == 108 && gi.in_flight == 0 && gi.members == 2);
  CHECK(gi.nacked == 2 && gi.dead_lettered == 1);
  CHECK(gi.redelivered_nack == 2 && gi.redelivery_initial_ms == 0);
  CHECK(gi.ack_latency_count > 0 && gi.ack_latency_p99_ms >= gi.ack_latency_p50_ms);
  CHECK(qi.dedup_keyed_published >= qi.dedup_hits && qi.dedup_hit_ratio > 0);
  ackring_member_info mi;
  memset(&mi, 0, sizeof mi);
  mi.size = sizeof mi;
  EXPECT(ackring_stats_member(s, 0, 2, &mi), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_stats_member(s, 1, 0, &mi), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_stats_member(NULL, 0, 0, &mi), ACKRING_E_INVALID_ARGUMENT);
  mi.size = 0;
  EXPECT(ackring_stats_member(s, 0, 0, &mi), ACKRING_E_INVALID_ARGUMENT);
  mi.size = sizeof mi;
  EXPECT(ackring_stats_member(s, 0, 0, &mi), ACKRING_OK);
  CHECK(mi.alive == 1 && mi.pid == (int32_t)getpid());
  ackring_stats_free(s);

  /* purge: messages published and never received are settled */
  EXPECT(ackring_publish(p, "x", 1, 0, NULL), ACKRING_OK);
  EXPECT(ackring_publish(p, "y", 1, 0, NULL), ACKRING_OK);
  uint64_t purged = 0;
  EXPECT(ackring_queue_purge(NULL, "work", &purged), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_queue_purge(q, "nope", &purged), ACKRING_E_NOT_FOUND);
  EXPECT(ackring_queue_purge(q, "work", &purged), ACKRING_OK);
  CHECK(purged == 2);
  EXPECT(ackring_queue_purge(q, NULL, NULL), ACKRING_OK);
  EXPECT(ackring_receive(c, &m, 0), ACKRING_EMPTY);

  /* a full queue: try fails at once, a timed publish times out */
  ackring_queue* small = NULL;
  ackring_queue_options so;
  ackring_queue_options_init(&so);
  so.capacity = 2;
  so.max_message_size = 16;
  so.dedup = 0;
  EXPECT(ackring_queue_create(g_path2, &so, &small), ACKRING_OK);
  REQUIRE(small != NULL);
  EXPECT(ackring_queue_create_group(small, "g", NULL), ACKRING_OK);
  ackring_producer* sp = NULL;
  EXPECT(ackring_queue_producer(small, &sp), ACKRING_OK);
  EXPECT(ackring_publish(sp, "1", 1, 0, NULL), ACKRING_OK);
  EXPECT(ackring_publish(sp, "2", 1, 0, NULL), ACKRING_OK);
  EXPECT(ackring_publish(sp, "3", 1, 0, NULL), ACKRING_QUEUE_FULL);
  EXPECT(ackring_publish(sp, "3", 1, 1000000, NULL), ACKRING_TIMEOUT);
  EXPECT(ackring_publish_batch(sp, batch, 1, 0, NULL), ACKRING_QUEUE_FULL);
  EXPECT(ackring_publish_keyed(sp, "k", 1, "key", 3, 0, NULL), ACKRING_NO_DEDUP);
  ackring_consumer* sc = NULL;
  EXPECT(ackring_queue_consumer(small, "g", NULL, &sc), ACKRING_OK);
  EXPECT(ackring_receive(sc, &m, 0), ACKRING_OK);
  EXPECT(ackring_mark_processed(sc, &m), ACKRING_NO_DEDUP);
  /* closing the queue handle first: producer and consumer keep the mapping */
  ackring_queue_close(small);
  EXPECT(ackring_ack(sc, &m), ACKRING_OK);
  EXPECT(ackring_publish(sp, "3", 1, 0, NULL), ACKRING_OK);
  ackring_consumer_close(sc);
  ackring_producer_close(sp);

  /* a removed group: its consumer says so */
  EXPECT(ackring_queue_remove_group(q, "work"), ACKRING_OK);
  EXPECT(ackring_publish(p, "after", 5, 0, NULL), ACKRING_OK);
  EXPECT(ackring_receive(c, &m, 0), ACKRING_EMPTY);

  ackring_consumer_close(other);
  ackring_consumer_close(c);
  ackring_producer_close(p);
  ackring_queue_close(q);
  EXPECT(ackring_queue_destroy(g_path), ACKRING_OK);
  EXPECT(ackring_queue_destroy(g_path2), ACKRING_OK);
}

static void test_recovery(void) {
  ackring_queue_options o;
  ackring_queue* q = NULL;
  ackring_queue_options_init(&o);
  o.capacity = 16;
  o.max_message_size = 32;
  o.durability = ACKRING_DURABILITY_SYNC;
  o.journal_dir = g_journal;
  EXPECT(ackring_queue_create(g_durable, &o, &q), ACKRING_OK);
  REQUIRE(q != NULL);
  EXPECT(ackring_queue_create_group(q, "g", NULL), ACKRING_OK);
  ackring_producer* p = NULL;
  EXPECT(ackring_queue_producer(q, &p), ACKRING_OK);
  for (int i = 0; i < 3; ++i) EXPECT(ackring_publish(p, "durable", 7, ACKRING_FOREVER, NULL), ACKRING_OK);
  ackring_producer_close(p);
  ackring_queue_close(q);
  EXPECT(ackring_queue_destroy(g_durable), ACKRING_OK); /* as after a reboot */

  ackring_recovery_report rep;
  memset(&rep, 0, sizeof rep);
  EXPECT(ackring_queue_recover(NULL, g_journal, NULL, NULL, &q), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_queue_recover(g_durable, g_journal, NULL, &rep, &q), ACKRING_E_INVALID_ARGUMENT); /* size 0 */
  rep.size = sizeof rep;
  ackring_queue_options bad;
  ackring_queue_options_init(&bad);
  bad.size = 1;
  EXPECT(ackring_queue_recover(g_durable, g_journal, &bad, &rep, &q), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_queue_recover(g_path, g_journal, NULL, &rep, &q), ACKRING_E_NOT_FOUND); /* no journal */
  EXPECT(ackring_queue_recover(g_durable, g_journal, NULL, &rep, NULL), ACKRING_E_INVALID_ARGUMENT);
  EXPECT(ackring_queue_recover(g_durable, g_journal, NULL, &rep, &q), ACKRING_OK);
  REQUIRE(q != NULL);
  CHECK(rep.messages == 3 && rep.journal_next_seq == 3 && rep.options_from_journal == 1);
  ackring_consumer* c = NULL;
  EXPECT(ackring_queue_consumer(q, "g", NULL, &c), ACKRING_OK);
  ackring_message m;
  for (int i = 0; i < 3; ++i) {
    EXPECT(ackring_receive(c, &m, ACKRING_FOREVER), ACKRING_OK);
    CHECK(message_is(&m, "durable") && m.seq == (uint64_t)i);
    EXPECT(ackring_ack(c, &m), ACKRING_OK);
  }
  ackring_consumer_close(c);
  ackring_queue_close(q);
}

int main(void) {
  unsigned long long nonce = 0;
  if (getrandom(&nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce) nonce = (unsigned long long)getpid();
  snprintf(g_path, sizeof g_path, "/dev/shm/ackring-test.c.%d.%llx", (int)getpid(), nonce);
  snprintf(g_path2, sizeof g_path2, "%s.small", g_path);
  snprintf(g_path3, sizeof g_path3, "%s.batch", g_path);
  snprintf(g_durable, sizeof g_durable, "%s.durable", g_path);
  char tmpl[] = "/tmp/ackring-c-journal.XXXXXX";
  REQUIRE(mkdtemp(tmpl) != NULL);
  snprintf(g_journal, sizeof g_journal, "%s", tmpl);
  atexit(cleanup);

  test_status_strings_and_version();
  test_options_and_queue_errors();
  test_publish_receive_settle();
  test_keyed_batch_and_process_once_batch();
  test_recovery();
  if (failures != 0) {
    fprintf(stderr, "c_api_test: %d check(s) failed\n", failures);
    return 1;
  }
  printf("c_api_test: all checks passed\n");
  return 0;
}
