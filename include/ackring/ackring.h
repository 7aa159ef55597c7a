/* ackring C API (C11; usable from C++ and through any FFI).
 *
 * A stable C interface over the C++ library: opaque handles, plain structs,
 * return codes. Link with -lackring_c (libackring_c.so.1, which exports only
 * the ackring_* symbols below; it carries the C++ library inside, or needs
 * libackring.so when ackring was built shared).
 *
 * Conventions
 *  - Every function that can fail returns an ackring_status. ACKRING_OK is 0.
 *    Hot-path outcomes (queue full, timeout, lease lost, ...) are small
 *    positive codes; cold-path errors (create, open, join, bad arguments)
 *    are ACKRING_E_* codes >= 100. No C++ exception ever crosses this
 *    boundary and no call aborts the process on bad input.
 *  - ackring_last_error() describes the last call on this thread that did
 *    not return ACKRING_OK: for cold-path errors the file, the operation and
 *    the reason; for hot-path outcomes the status name.
 *  - Timeouts are nanoseconds: 0 tries once without waiting, a negative value
 *    (ACKRING_FOREVER) waits without limit.
 *  - Options structs carry their own size in their first field: fill them
 *    with the matching *_init() function, which sets the size and every
 *    default, then change the fields you need. A library that knows more
 *    fields than the caller's header gives the missing ones their defaults,
 *    so fields can be added without breaking callers built against an older
 *    header. Passing NULL for options means "all defaults".
 *  - Thread safety: as in C++. One producer or consumer handle per thread;
 *    any number of handles per process; a queue handle may be shared.
 *    Closing a queue handle while its producers and consumers are still open
 *    is allowed: they keep the mapping alive until they are closed.
 */
#ifndef ACKRING_ACKRING_H
#define ACKRING_ACKRING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ACKRING_API __attribute__((visibility("default")))
#else
#define ACKRING_API
#endif

/* Bumped only when the C ABI breaks (it is also the SONAME's number). */
#define ACKRING_C_ABI_VERSION 1
#define ACKRING_FOREVER ((int64_t)-1)

typedef enum ackring_status {
  ACKRING_OK = 0,
  /* Hot-path outcomes: the values of ackring::Status. */
  ACKRING_QUEUE_FULL = 1,     /* no free slot (publish with timeout 0) */
  ACKRING_TIMEOUT = 2,        /* nothing happened before the deadline */
  ACKRING_LEASE_LOST = 3,     /* the message was settled already, or its lease expired and it was handed out again */
  ACKRING_DUPLICATE = 4,      /* process-once: processed before; acked, handler not called */
  ACKRING_TOO_LARGE = 5,      /* payload longer than the queue's max_message_size */
  ACKRING_EMPTY = 6,          /* receive with timeout 0 found nothing */
  ACKRING_CORRUPT = 7,        /* the shared file holds a value that cannot be right */
  ACKRING_NO_SUCH_GROUP = 8,  /* the consumer's group was removed */
  ACKRING_DEDUP_FULL = 9,     /* keyed publish: the key's dedup window is full of live keys */
  ACKRING_NO_DEDUP = 10,      /* keyed publish or process-once on a queue without a dedup table */
  ACKRING_HANDLER_FAILED = 11, /* process-once: the handler returned non-zero; nothing recorded or acked */
  /* Cold-path errors: the values of ackring::ErrorCode, plus 100. */
  ACKRING_E_INVALID_ARGUMENT = 100, /* NULL handle, wrong struct size, bad name or option, foreign message */
  ACKRING_E_NOT_FOUND = 101,
  ACKRING_E_ALREADY_EXISTS = 102,
  ACKRING_E_PERMISSION_DENIED = 103,
  ACKRING_E_INCOMPATIBLE = 104,
  ACKRING_E_CORRUPT = 105,
  ACKRING_E_RESOURCE_EXHAUSTED = 106,
  ACKRING_E_SYSTEM = 107,
  ACKRING_E_TIMEOUT = 108,
  ACKRING_E_NO_MEMORY = 120,
  ACKRING_E_INTERNAL = 121          /* an unexpected C++ exception; the message says which */
} ackring_status;

typedef struct ackring_queue ackring_queue;
typedef struct ackring_producer ackring_producer;
typedef struct ackring_consumer ackring_consumer;
typedef struct ackring_stats ackring_stats;

/* The message of the last call on this thread that returned non-OK ("" if
 * none). Valid until the next ackring call on this thread. */
ACKRING_API const char* ackring_last_error(void);
/* A static name for a status ("ok", "queue full", "lease lost", ...). */
ACKRING_API const char* ackring_status_string(ackring_status status);
/* "0.1.0": the version of the library inside. */
ACKRING_API const char* ackring_version(void);

/* ---- options ---------------------------------------------------------- */

enum { ACKRING_DURABILITY_NONE = 0, ACKRING_DURABILITY_ASYNC = 1, ACKRING_DURABILITY_SYNC = 2 };
/* The clock a publish stamps its message with: nanoseconds, or the kernel tick (1-4 ms) for a cheaper publish. */
enum { ACKRING_PUBLISH_TIMESTAMP_PRECISE = 0, ACKRING_PUBLISH_TIMESTAMP_COARSE = 1 };
enum { ACKRING_DEDUP_FULL_REFUSE = 0, ACKRING_DEDUP_FULL_EVICT_OLDEST = 1 };
enum { ACKRING_OVERFLOW_BLOCK = 0, ACKRING_OVERFLOW_DROP = 1 };
enum { ACKRING_START_EARLIEST = 0, ACKRING_START_LATEST = 1 };
/* Redelivery back-off jitter (GroupOptions::redelivery in C++). */
enum { ACKRING_JITTER_NONE = 0, ACKRING_JITTER_EQUAL = 1, ACKRING_JITTER_FULL = 2 };
enum { ACKRING_AT_LEAST_ONCE = 0, ACKRING_AT_MOST_ONCE = 1 };

/* Fixed when the queue is created (ackring::QueueOptions). */
typedef struct ackring_queue_options {
  size_t size; /* sizeof(ackring_queue_options), set by ackring_queue_options_init */
  uint32_t capacity;         /* slots, a power of two (default 4096) */
  uint32_t max_message_size; /* payload bytes per slot (default 1024) */
  uint64_t default_lease_ms; /* default 30000 */
  uint32_t max_deliveries;   /* then dead-lettered to <name>.dlq (default 5) */
  uint32_t max_groups;       /* default 8 */
  uint32_t max_members;      /* per group (default 16) */
  uint32_t max_producers;    /* default 64 */
  uint64_t claim_timeout_ms; /* default 2000 */
  uint32_t mode;             /* file permission bits (default 0600) */
  int32_t dedup;             /* non-zero: a dedup table (default 1) */
  uint32_t dedup_entries;    /* 0: max(1024, 2 x capacity) */
  uint32_t dedup_full_policy; /* ACKRING_DEDUP_FULL_* */
  uint64_t dedup_window_ms;  /* default 300000 */
  int32_t dedup_bloom;       /* default 1 */
  uint32_t durability;       /* ACKRING_DURABILITY_* (default none) */
  const char* journal_dir;   /* NULL or "": $ACKRING_JOURNAL_DIR, else /var/tmp/ackring */
  uint64_t async_flush_interval_ms; /* default 10 */
  uint64_t journal_retain_bytes;
  uint64_t journal_retain_age_s;
  uint32_t publish_timestamp; /* ACKRING_PUBLISH_TIMESTAMP_* (default precise) */
} ackring_queue_options;

typedef struct ackring_group_options {
  size_t size;       /* sizeof(ackring_group_options) */
  uint32_t overflow; /* ACKRING_OVERFLOW_* */
  uint32_t start;    /* ACKRING_START_* */
  /* Redelivery back-off: a message that comes back waits
   * min(max, initial * multiplier^(deliveries - 1)) ms, spread by jitter.
   * initial 0 (the default): none. Defaults: multiplier 2.0, max 60000,
   * ACKRING_JITTER_EQUAL. */
  uint64_t redelivery_initial_ms;
  double redelivery_multiplier;
  uint64_t redelivery_max_ms;
  uint32_t redelivery_jitter;
  uint32_t reserved;
} ackring_group_options;

typedef struct ackring_consumer_options {
  size_t size;           /* sizeof(ackring_consumer_options) */
  uint32_t mode;         /* ACKRING_AT_LEAST_ONCE (default) or ACKRING_AT_MOST_ONCE */
  int32_t create_group;  /* create the group if missing (default 1), with group_overflow/start */
  uint64_t lease_ms;     /* 0: the queue's default_lease */
  uint64_t spin_us;      /* a blocking receive spins this long before sleeping (default 50) */
  uint32_t group_overflow;
  uint32_t group_start;
  uint64_t linger_us;    /* a receive_batch that found fewer messages than it holds waits this long
                            (reading nothing of the queue), then takes more: throughput for latency
                            (ConsumerOptions::linger; default 0, at most 1,000,000) */
} ackring_consumer_options;

ACKRING_API void ackring_queue_options_init(ackring_queue_options* options);
ACKRING_API void ackring_group_options_init(ackring_group_options* options);
ACKRING_API void ackring_consumer_options_init(ackring_consumer_options* options);

/* ---- queues ------------------------------------------------------------ */
/* A name maps to /dev/shm/ackring.<name> (or $ACKRING_SHM_DIR); anything
 * containing '/' is a path. On success *out is a new handle; on failure it
 * is set to NULL. */
ACKRING_API ackring_status ackring_queue_create(const char* name_or_path, const ackring_queue_options* options,
                                                ackring_queue** out);
ACKRING_API ackring_status ackring_queue_open(const char* name_or_path, ackring_queue** out);
ACKRING_API ackring_status ackring_queue_open_or_create(const char* name_or_path, const ackring_queue_options* options,
                                                        ackring_queue** out);
/* Closes the handle (NULL is a no-op). The queue itself stays. */
ACKRING_API void ackring_queue_close(ackring_queue* queue);
/* Unlinks the queue file (Queue::destroy); processes that have it mapped go
 * on. ACKRING_E_NOT_FOUND if there was no such queue. */
ACKRING_API ackring_status ackring_queue_destroy(const char* name_or_path);

/* What ackring_queue_recover rebuilt (RecoveryReport). */
typedef struct ackring_recovery_report {
  size_t size; /* set by the caller: sizeof(ackring_recovery_report) */
  uint64_t journal_first_seq;
  uint64_t journal_next_seq;
  uint64_t floor;
  uint64_t messages;
  uint64_t skipped;
  uint64_t dedup_keys;
  int32_t torn_tail;            /* the last batch was cut by a crash (nothing acknowledged lost) */
  int32_t options_from_journal;
} ackring_recovery_report;

/* Rebuilds a queue whose file is gone from its journal (Queue::recover).
 * journal_dir NULL: the default; options NULL: those recorded at creation.
 * report may be NULL. */
ACKRING_API ackring_status ackring_queue_recover(const char* name_or_path, const char* journal_dir,
                                                 const ackring_queue_options* options,
                                                 ackring_recovery_report* report, ackring_queue** out);

/* ---- groups ------------------------------------------------------------ */
ACKRING_API ackring_status ackring_queue_create_group(ackring_queue* queue, const char* group,
                                                      const ackring_group_options* options);
/* ACKRING_E_NOT_FOUND if there was no such group. */
ACKRING_API ackring_status ackring_queue_remove_group(ackring_queue* queue, const char* group);
/* Sets a group's redelivery back-off from the redelivery_* fields of
 * `options` (the others are ignored); it takes effect at once. */
ACKRING_API ackring_status ackring_queue_set_redelivery(ackring_queue* queue, const char* group,
                                                        const ackring_group_options* options);
/* Settles every unsettled message of `group` (every group if NULL or "");
 * *purged (may be NULL) receives how many. */
ACKRING_API ackring_status ackring_queue_purge(ackring_queue* queue, const char* group, uint64_t* purged);

/* ---- producers ----------------------------------------------------------- */
ACKRING_API ackring_status ackring_queue_producer(ackring_queue* queue, ackring_producer** out);
ACKRING_API void ackring_producer_close(ackring_producer* producer);

typedef struct ackring_publish_result {
  uint64_t seq;      /* the (first) message's seq */
  int32_t duplicate; /* keyed publish: the key was published before; seq is that message's */
  int32_t reserved;
} ackring_publish_result;

typedef struct ackring_buffer {
  const void* data;
  size_t length;
} ackring_buffer;

/* Publishes one message. timeout_ns 0: fails at once with ACKRING_QUEUE_FULL
 * when there is no room; otherwise waits for room up to the timeout
 * (ACKRING_TIMEOUT). result may be NULL. data may be NULL if length is 0. */
ACKRING_API ackring_status ackring_publish(ackring_producer* producer, const void* data, size_t length,
                                           int64_t timeout_ns, ackring_publish_result* result);
/* Idempotent publish: a second publish of the same key within the dedup
 * window enqueues nothing and returns ACKRING_OK with result->duplicate = 1
 * and the first message's seq. key_length must be > 0. */
ACKRING_API ackring_status ackring_publish_keyed(ackring_producer* producer, const void* data, size_t length,
                                                 const void* key, size_t key_length, int64_t timeout_ns,
                                                 ackring_publish_result* result);
/* All or nothing: count consecutive seqs from result->seq. count >= 1. */
ACKRING_API ackring_status ackring_publish_batch(ackring_producer* producer, const ackring_buffer* messages,
                                                 size_t count, int64_t timeout_ns, ackring_publish_result* result);

/* One message of ackring_publish_keyed_batch. key_length 0: that message is
 * published without a key. */
typedef struct ackring_keyed_buffer {
  const void* data;
  size_t length;
  const void* key;
  size_t key_length;
} ackring_keyed_buffer;
/* Keyed publish of count messages, in order, each as ackring_publish_keyed
 * with timeout_ns (which bounds each message's waits, not the call). Not all
 * or nothing: *published (required) is how many, from the first, came back
 * ACKRING_OK, and results[i] (results may be NULL; else count entries) their
 * seq and duplicate flag. If that is fewer than count, the call returns the
 * status of messages[*published], which was not published, and the rest were
 * not tried; publishing them again is safe (the keys dedup). With a dedup
 * table larger than the caches it is faster than one call per message: the
 * table lines of the keys further on are fetched meanwhile. */
ACKRING_API ackring_status ackring_publish_keyed_batch(ackring_producer* producer, const ackring_keyed_buffer* messages,
                                                       size_t count, int64_t timeout_ns,
                                                       ackring_publish_result* results, size_t* published);

/* ---- consumers ----------------------------------------------------------- */
ACKRING_API ackring_status ackring_queue_consumer(ackring_queue* queue, const char* group,
                                                  const ackring_consumer_options* options, ackring_consumer** out);
/* Leaves the group: this member's unacked leases are released at once (they
 * are redelivered to the other members). NULL is a no-op. */
ACKRING_API void ackring_consumer_close(ackring_consumer* consumer);

enum { ACKRING_MESSAGE_HAS_KEY = 1u, ACKRING_MESSAGE_REPLAYED = 2u };

/* One received message. The payload points into the shared mapping and is
 * valid until the message is settled (acked, nacked, rejected), its lease
 * runs out, or the consumer is closed. (In a drop-policy group or
 * at-most-once mode it points into a copy owned by the consumer, valid until
 * acked or until 64 more messages were received by that consumer.) Copy it
 * if you need it longer. The struct itself is plain data: copy it freely;
 * settle with the consumer that received it. */
typedef struct ackring_message {
  uint64_t seq;
  uint32_t deliveries; /* 1 on the first delivery */
  uint32_t flags;      /* ACKRING_MESSAGE_* */
  uint64_t publish_time_ns; /* wall clock, ns since the Unix epoch */
  const void* payload;
  size_t length;
  /* With ACKRING_MESSAGE_HAS_KEY: the 128-bit XXH3 fingerprint of the publish
   * key, low 64 bits first, each little-endian (the queue keeps this, not the
   * key); zero otherwise. */
  uint8_t key_fingerprint[16];
  /* The library's own record of the delivery (receipt, key fingerprint):
   * opaque, do not change. */
  uint64_t internal[12];
} ackring_message;

/* Receives one message into *out. timeout_ns 0: ACKRING_EMPTY when nothing
 * is ready; otherwise ACKRING_TIMEOUT after the timeout. */
ACKRING_API ackring_status ackring_receive(ackring_consumer* consumer, ackring_message* out, int64_t timeout_ns);
/* Fills up to `capacity` messages; *received (required) is how many. Returns
 * ACKRING_OK when at least one arrived, else ACKRING_EMPTY / ACKRING_TIMEOUT. */
ACKRING_API ackring_status ackring_receive_batch(ackring_consumer* consumer, ackring_message* out, size_t capacity,
                                                 int64_t timeout_ns, size_t* received);

/* Settles the message in this group. ACKRING_LEASE_LOST if it was settled
 * already or its lease expired and it was handed out again. */
ACKRING_API ackring_status ackring_ack(ackring_consumer* consumer, const ackring_message* message);
/* Cumulative ack: *acked (may be NULL) is how many were still held and are
 * now acked. ACKRING_OK if all were, ACKRING_LEASE_LOST if some were not. */
ACKRING_API ackring_status ackring_ack_batch(ackring_consumer* consumer, const ackring_message* messages, size_t count,
                                             size_t* acked);
/* Gives the message back, redelivered after delay_ms (0: at once). */
ACKRING_API ackring_status ackring_nack(ackring_consumer* consumer, const ackring_message* message, uint64_t delay_ms);
/* Pushes the lease deadline to now + lease_ms (> 0). */
ACKRING_API ackring_status ackring_extend(ackring_consumer* consumer, const ackring_message* message,
                                          uint64_t lease_ms);
/* Sends the message to the dead-letter queue <name>.dlq now. */
ACKRING_API ackring_status ackring_reject(ackring_consumer* consumer, const ackring_message* message);

/* Effectively-once (Consumer::process_once): if the message's key (or seq)
 * was processed in this group within the dedup window, acks it and returns
 * ACKRING_DUPLICATE without calling handler. Otherwise calls
 * handler(message, user); if it returns 0, records the message as processed
 * and acks it (returns the ack's status); if it returns non-zero, records and
 * acks nothing and returns ACKRING_HANDLER_FAILED (redelivered later). */
typedef int (*ackring_handler)(const ackring_message* message, void* user);
ACKRING_API ackring_status ackring_process_once(ackring_consumer* consumer, const ackring_message* message,
                                                ackring_handler handler, void* user);
/* What ackring_process_once_batch did. */
typedef struct ackring_process_counts {
  size_t handled;    /* handler returned 0 */
  size_t duplicates; /* processed before: skipped (and acked) */
  size_t acked;      /* the others had lost their lease: they come back, and are then skipped */
  size_t unrecorded; /* handled, but not recorded (the key's window was full, or no dedup table) */
} ackring_process_counts;
/* ackring_process_once over count received messages with one cumulative ack
 * (Consumer::process_once_batch): skips the ones processed before, calls
 * handler(message, user) for the others in order and records each whose
 * handler returned 0; the table lines of every message are fetched first.
 * Returns ACKRING_OK if all were acked, ACKRING_LEASE_LOST if some had lost
 * their lease. If a handler returns non-zero, the messages before it are
 * acked, it and the rest are not (they are redelivered later), and
 * ACKRING_HANDLER_FAILED is returned. counts may be NULL. */
ACKRING_API ackring_status ackring_process_once_batch(ackring_consumer* consumer, const ackring_message* messages,
                                                      size_t count, ackring_handler handler, void* user,
                                                      ackring_process_counts* counts);
/* The building blocks: *processed = 1 if processed before. */
ACKRING_API ackring_status ackring_is_processed(ackring_consumer* consumer, const ackring_message* message,
                                                int* processed);
ACKRING_API ackring_status ackring_mark_processed(ackring_consumer* consumer, const ackring_message* message);

/* ---- stats --------------------------------------------------------------- */
/* A snapshot of the queue's counters (approximate: each counter is exact,
 * the set is not taken at one instant). Free it with ackring_stats_free. */
ACKRING_API ackring_status ackring_queue_stats(ackring_queue* queue, ackring_stats** out);
ACKRING_API void ackring_stats_free(ackring_stats* stats);

typedef struct ackring_queue_info {
  size_t size; /* set by the caller */
  const char* path; /* valid while the snapshot lives */
  uint32_t capacity;
  uint32_t max_message_size;
  uint64_t tail;
  uint64_t published;
  uint64_t aborted;
  uint64_t min_floor;
  uint64_t depth;
  uint64_t durable_seq;
  uint64_t dedup_hits;
  uint64_t dedup_live;
  size_t groups;    /* ackring_stats_group index range */
  size_t producers; /* registered producer slots in the snapshot */
  uint64_t dedup_keyed_published; /* keyed publishes, duplicates included */
  double dedup_hit_ratio;         /* dedup_hits / dedup_keyed_published (0 when none) */
} ackring_queue_info;

typedef struct ackring_group_info {
  size_t size; /* set by the caller */
  const char* name; /* valid while the snapshot lives */
  uint32_t overflow;
  uint32_t members; /* ackring_stats_member index range */
  uint64_t floor;
  uint64_t next;
  uint64_t in_flight;
  uint64_t lag;
  uint64_t delivered;
  uint64_t acked;
  uint64_t redelivered;
  uint64_t nacked;
  uint64_t dead_lettered;
  uint64_t dropped;
  uint64_t lease_expiries;
  uint64_t oldest_unacked_seq;
  uint64_t oldest_unacked_age_ms;
  /* The operator's signals (README, "Retries, back-off and the signals to watch"). */
  uint64_t waiting_redelivery; /* given back, waiting out a back-off or nack delay */
  uint64_t redelivered_expiry; /* redeliveries by why the message came back */
  uint64_t redelivered_death;
  uint64_t redelivered_nack;
  uint64_t redelivered_released;
  uint64_t process_once_skips;
  uint64_t ack_latency_count; /* acks timed from delivery */
  double ack_latency_p50_ms;
  double ack_latency_p99_ms;
  uint64_t min_member_lease_ms; /* shortest lease of a live member; 0: none */
  int32_t lease_below_p99;      /* 1: min_member_lease_ms < ack_latency_p99_ms */
  uint32_t redelivery_jitter;   /* the group's back-off (ACKRING_JITTER_*) */
  uint64_t redelivery_initial_ms;
  double redelivery_multiplier;
  uint64_t redelivery_max_ms;
} ackring_group_info;

typedef struct ackring_member_info {
  size_t size; /* set by the caller */
  uint32_t index;
  int32_t pid;
  int32_t alive;
  int32_t reserved;
  uint64_t delivered;
  uint64_t acked;
  uint64_t in_flight;
  uint64_t idle_ms;
  uint64_t redelivered;
  uint64_t nacked;
} ackring_member_info;

ACKRING_API ackring_status ackring_stats_queue(const ackring_stats* stats, ackring_queue_info* out);
ACKRING_API ackring_status ackring_stats_group(const ackring_stats* stats, size_t group, ackring_group_info* out);
ACKRING_API ackring_status ackring_stats_member(const ackring_stats* stats, size_t group, size_t member,
                                                ackring_member_info* out);

/* ---- dead letters -------------------------------------------------------- */
/* Publishes every dead letter of <name>.dlq back into the queue (Queue
 * redrive_dead_letters); *moved (may be NULL) is how many. */
ACKRING_API ackring_status ackring_redrive_dead_letters(const char* name_or_path, uint64_t* moved);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* ACKRING_ACKRING_H */
