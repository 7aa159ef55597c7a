// The C API (include/ackring/ackring.h) over the public C++ API. It owns
// nothing of the protocol: every call checks its arguments, calls the C++
// API and turns its outcome into a return code. Rules kept here:
//  - no exception leaves an extern "C" function: each cold call runs inside
//    guard(), which maps ackring::Error codes, bad_alloc and anything else;
//  - no abort() on bad input: NULL handles, wrong struct sizes and messages
//    that this consumer did not fill give ACKRING_E_INVALID_ARGUMENT with a
//    message naming the function and the argument;
//  - the hot path (publish, receive, settle) allocates nothing and formats
//    nothing on its ordinary outcomes: ackring_last_error then points at the
//    status's static name.
#include "ackring/ackring.h"

#include <cstdarg>
#include <cstdio>
#include <cstddef>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "ackring/ackring.hpp"

namespace {

using namespace ackring;

// Handles start with a magic word so that a pointer of the wrong kind, or a
// handle closed and zeroed, is reported instead of used (a freed handle is
// still undefined behaviour, as for any C library).
constexpr std::uint32_t kQueueMagic = 0x51554555;     // "QUEU"
constexpr std::uint32_t kProducerMagic = 0x50524f44;  // "PROD"
constexpr std::uint32_t kConsumerMagic = 0x434f4e53;  // "CONS"
constexpr std::uint64_t kMessageMagic = 0x61636b6d73673031ull;  // "ackmsg01"

thread_local const char* t_last_error = "";
thread_local char t_error_buffer[1024];

ackring_status fail_status(ackring_status s) noexcept {
  t_last_error = ackring_status_string(s);
  return s;
}

[[gnu::format(printf, 2, 3)]] ackring_status fail(ackring_status s, const char* format, ...) noexcept {
  va_list args;
  va_start(args, format);
  std::vsnprintf(t_error_buffer, sizeof t_error_buffer, format, args);
  va_end(args);
  t_last_error = t_error_buffer;
  return s;
}

ackring_status from_status(Status s) noexcept {
  return s == Status::ok ? ACKRING_OK : fail_status(static_cast<ackring_status>(static_cast<int>(s)));
}

ackring_status from_error_code(ErrorCode c) noexcept {
  return static_cast<ackring_status>(100 + static_cast<int>(c));
}

// Runs a cold-path body; every exception becomes a return code and message.
template <class F>
ackring_status guard(const char* function, F&& body) noexcept {
  try {
    return body();
  } catch (const Error& e) {
    return fail(from_error_code(e.code()), "%s: %s", function, e.what());
  } catch (const std::bad_alloc&) {
    return fail(ACKRING_E_NO_MEMORY, "%s: out of memory", function);
  } catch (const std::exception& e) {
    return fail(ACKRING_E_INTERNAL, "%s: %s", function, e.what());
  } catch (...) {
    return fail(ACKRING_E_INTERNAL, "%s: unknown exception", function);
  }
}

// Options structs: `size` says how much of the struct the caller's header
// knew. Known fields are copied over the defaults; a larger struct comes from
// a newer header than this library and is refused (its new fields would be
// silently ignored). kMinSize grows never: it is the size of the first
// published version of each struct.
template <class T>
constexpr std::size_t kMinSize = sizeof(T);
// Grown since their first version (the redelivery back-off and its signals,
// the consumer's linger): a caller built against the older header passes the
// older size.
template <>
constexpr std::size_t kMinSize<ackring_group_options> = offsetof(ackring_group_options, redelivery_initial_ms);
template <>
constexpr std::size_t kMinSize<ackring_queue_info> = offsetof(ackring_queue_info, dedup_keyed_published);
template <>
constexpr std::size_t kMinSize<ackring_group_info> = offsetof(ackring_group_info, waiting_redelivery);
template <>
constexpr std::size_t kMinSize<ackring_consumer_options> = offsetof(ackring_consumer_options, linger_us);

template <class T>
ackring_status read_sized(const char* function, const char* what, const T* in, T& out) noexcept {
  if (in == nullptr) return ACKRING_OK;  // out holds the defaults
  if (in->size < kMinSize<T> || in->size > sizeof(T))
    return fail(ACKRING_E_INVALID_ARGUMENT,
                "%s: %s size is %zu, this library accepts %zu..%zu (fill it with the matching _init function)",
                function, what, in->size, kMinSize<T>, sizeof(T));
  std::memcpy(static_cast<void*>(&out), in, in->size);
  return ACKRING_OK;
}

template <class T>
ackring_status check_out_size(const char* function, const char* what, const T* out) noexcept {
  if (out == nullptr) return fail(ACKRING_E_INVALID_ARGUMENT, "%s: %s is NULL", function, what);
  if (out->size < kMinSize<T> || out->size > sizeof(T))
    return fail(ACKRING_E_INVALID_ARGUMENT, "%s: %s size is %zu, this library accepts %zu..%zu (set it to sizeof)",
                function, what, out->size, kMinSize<T>, sizeof(T));
  return ACKRING_OK;
}

// Writes the fields the caller's struct has room for.
template <class T>
void write_sized(T* out, const T& full) noexcept {
  const std::size_t n = out->size;
  std::memcpy(static_cast<void*>(out), &full, n);
  out->size = n;
}

std::chrono::nanoseconds to_timeout(std::int64_t ns) noexcept {
  return ns < 0 ? std::chrono::nanoseconds::max() : std::chrono::nanoseconds(ns);
}

ackring_status to_queue_options(const char* function, const ackring_queue_options* in, QueueOptions& out) {
  ackring_queue_options o{};
  ackring_queue_options_init(&o);
  if (auto s = read_sized(function, "options", in, o); s != ACKRING_OK) return s;
  if (o.dedup_full_policy > ACKRING_DEDUP_FULL_EVICT_OLDEST)
    return fail(ACKRING_E_INVALID_ARGUMENT, "%s: dedup_full_policy %u is not a ACKRING_DEDUP_FULL_* value", function,
                o.dedup_full_policy);
  if (o.durability > ACKRING_DURABILITY_SYNC)
    return fail(ACKRING_E_INVALID_ARGUMENT, "%s: durability %u is not a ACKRING_DURABILITY_* value", function,
                o.durability);
  if (o.publish_timestamp > ACKRING_PUBLISH_TIMESTAMP_COARSE)
    return fail(ACKRING_E_INVALID_ARGUMENT, "%s: publish_timestamp %u is not a ACKRING_PUBLISH_TIMESTAMP_* value",
                function, o.publish_timestamp);
  out.capacity = o.capacity;
  out.max_message_size = o.max_message_size;
  out.default_lease = Millis(o.default_lease_ms);
  out.max_deliveries = o.max_deliveries;
  out.max_groups = o.max_groups;
  out.max_members = o.max_members;
  out.max_producers = o.max_producers;
  out.claim_timeout = Millis(o.claim_timeout_ms);
  out.mode = static_cast<mode_t>(o.mode);
  out.dedup = o.dedup != 0;
  out.dedup_entries = o.dedup_entries;
  out.dedup_window = Millis(o.dedup_window_ms);
  out.dedup_full_policy = static_cast<DedupFullPolicy>(o.dedup_full_policy);
  out.dedup_bloom = o.dedup_bloom != 0;
  out.durability = static_cast<Durability>(o.durability);
  out.journal_dir = o.journal_dir != nullptr ? o.journal_dir : "";
  out.async_flush_interval = Millis(o.async_flush_interval_ms);
  out.journal_retain_bytes = o.journal_retain_bytes;
  out.journal_retain_age = std::chrono::seconds(o.journal_retain_age_s);
  out.publish_timestamp = static_cast<PublishTimestamp>(o.publish_timestamp);
  return ACKRING_OK;
}

ackring_status check_group_policy(const char* function, std::uint32_t overflow, std::uint32_t start) noexcept {
  if (overflow > ACKRING_OVERFLOW_DROP)
    return fail(ACKRING_E_INVALID_ARGUMENT, "%s: overflow %u is not a ACKRING_OVERFLOW_* value", function, overflow);
  if (start > ACKRING_START_LATEST)
    return fail(ACKRING_E_INVALID_ARGUMENT, "%s: start %u is not a ACKRING_START_* value", function, start);
  return ACKRING_OK;
}

ackring_status check_jitter(const char* function, std::uint32_t jitter) noexcept {
  if (jitter > ACKRING_JITTER_FULL)
    return fail(ACKRING_E_INVALID_ARGUMENT, "%s: redelivery_jitter %u is not a ACKRING_JITTER_* value", function,
                jitter);
  return ACKRING_OK;
}

// The C++ policy of checked C options; out-of-range times are passed on
// (clamped to the int64 range) for Queue to refuse with its message.
RedeliveryPolicy redelivery_of(const ackring_group_options& o) noexcept {
  auto ms = [](std::uint64_t v) { return Millis{static_cast<std::int64_t>(std::min<std::uint64_t>(v, INT64_MAX))}; };
  return {ms(o.redelivery_initial_ms), o.redelivery_multiplier, ms(o.redelivery_max_ms),
          static_cast<Jitter>(o.redelivery_jitter)};
}

// What a message's `internal` words hold: who received it and the C++
// Delivery itself (its receipt and key fingerprint, which process-once needs
// and which the C++ API does not let us rebuild from public fields).
struct MessageInternal {
  std::uint64_t magic;
  const void* owner;
  Delivery delivery;
};
static_assert(std::is_trivially_copyable_v<Delivery>);
static_assert(sizeof(MessageInternal) <= sizeof(ackring_message::internal),
              "ackring_message::internal is part of the C ABI: it cannot grow");

}  // namespace

struct ackring_queue {
  std::uint32_t magic = kQueueMagic;
  Queue queue;
};
struct ackring_producer {
  std::uint32_t magic = kProducerMagic;
  Producer producer;
};
struct ackring_consumer {
  std::uint32_t magic = kConsumerMagic;
  Consumer consumer;
  std::vector<Delivery> scratch;  // batch receive / ack: grows once, reused (one thread per consumer)
};
struct ackring_stats {
  QueueStats stats;
};

namespace {

#define ACKRING_CHECK_HANDLE(h, kind, magic_value)                                                       \
  do {                                                                                                   \
    if ((h) == nullptr) return fail(ACKRING_E_INVALID_ARGUMENT, "%s: %s is NULL", __func__, kind);       \
    if ((h)->magic != (magic_value))                                                                     \
      return fail(ACKRING_E_INVALID_ARGUMENT, "%s: %s is not an open %s handle", __func__, kind, kind);  \
  } while (0)

#define ACKRING_CHECK_ARG(cond, what)                                                                 \
  do {                                                                                                \
    if (!(cond)) return fail(ACKRING_E_INVALID_ARGUMENT, "%s: %s", __func__, what);                  \
  } while (0)

void fill_message(const ackring_consumer* owner, const Delivery& d, ackring_message& m) noexcept {
  m.seq = d.seq();
  m.deliveries = d.deliveries();
  m.flags = (d.has_key() ? std::uint32_t{ACKRING_MESSAGE_HAS_KEY} : 0u) |
            (d.replayed() ? std::uint32_t{ACKRING_MESSAGE_REPLAYED} : 0u);
  m.publish_time_ns = d.publish_time_ns();
  m.payload = d.payload().data();
  m.length = d.payload().size();
  std::memset(m.key_fingerprint, 0, sizeof m.key_fingerprint);
  if (d.has_key()) {
    const auto fp = d.key_fingerprint();
    for (std::size_t i = 0; i < 16; ++i) m.key_fingerprint[i] = static_cast<std::uint8_t>(fp[i / 8] >> (8 * (i % 8)));
  }
  MessageInternal in{kMessageMagic, owner, d};
  std::memset(m.internal, 0, sizeof m.internal);
  std::memcpy(m.internal, &in, sizeof in);
}

// The Delivery inside a message this consumer filled, or an error.
ackring_status delivery_of(const char* function, const ackring_consumer* c, const ackring_message* m,
                           Delivery& out) noexcept {
  if (m == nullptr) return fail(ACKRING_E_INVALID_ARGUMENT, "%s: message is NULL", function);
  MessageInternal in;
  std::memcpy(static_cast<void*>(&in), m->internal, sizeof in);
  if (in.magic != kMessageMagic)
    return fail(ACKRING_E_INVALID_ARGUMENT, "%s: the message was not filled by ackring_receive", function);
  if (in.owner != c)
    return fail(ACKRING_E_INVALID_ARGUMENT, "%s: the message was received by another consumer handle", function);
  out = in.delivery;
  return ACKRING_OK;
}

template <class Out>
ackring_status open_queue(const char* function, const char* name, Out** out, auto&& make) noexcept {
  if (out == nullptr) return fail(ACKRING_E_INVALID_ARGUMENT, "%s: out is NULL", function);
  *out = nullptr;
  if (name == nullptr) return fail(ACKRING_E_INVALID_ARGUMENT, "%s: name is NULL", function);
  return guard(function, [&] {
    auto* h = new ackring_queue{kQueueMagic, make()};
    *out = h;
    return ACKRING_OK;
  });
}

}  // namespace

extern "C" {

const char* ackring_last_error(void) { return t_last_error; }

const char* ackring_status_string(ackring_status status) {
  switch (status) {
    case ACKRING_OK: return "ok";
    case ACKRING_QUEUE_FULL: return "queue full";
    case ACKRING_TIMEOUT: return "timeout";
    case ACKRING_LEASE_LOST: return "lease lost";
    case ACKRING_DUPLICATE: return "duplicate";
    case ACKRING_TOO_LARGE: return "message too large";
    case ACKRING_EMPTY: return "empty";
    case ACKRING_CORRUPT: return "corrupt queue file";
    case ACKRING_NO_SUCH_GROUP: return "no such group";
    case ACKRING_DEDUP_FULL: return "dedup table full";
    case ACKRING_NO_DEDUP: return "queue has no dedup table";
    case ACKRING_HANDLER_FAILED: return "handler failed";
    case ACKRING_E_INVALID_ARGUMENT: return "invalid argument";
    case ACKRING_E_NOT_FOUND: return "not found";
    case ACKRING_E_ALREADY_EXISTS: return "already exists";
    case ACKRING_E_PERMISSION_DENIED: return "permission denied";
    case ACKRING_E_INCOMPATIBLE: return "incompatible";
    case ACKRING_E_CORRUPT: return "corrupt";
    case ACKRING_E_RESOURCE_EXHAUSTED: return "resource exhausted";
    case ACKRING_E_SYSTEM: return "system error";
    case ACKRING_E_TIMEOUT: return "operation timed out";
    case ACKRING_E_NO_MEMORY: return "out of memory";
    case ACKRING_E_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char* ackring_version(void) { return ACKRING_VERSION_STRING; }

void ackring_queue_options_init(ackring_queue_options* options) {
  if (options == nullptr) return;
  const QueueOptions d;
  *options = ackring_queue_options{};
  options->size = sizeof *options;
  options->capacity = d.capacity;
  options->max_message_size = d.max_message_size;
  options->default_lease_ms = static_cast<std::uint64_t>(d.default_lease.count());
  options->max_deliveries = d.max_deliveries;
  options->max_groups = d.max_groups;
  options->max_members = d.max_members;
  options->max_producers = d.max_producers;
  options->claim_timeout_ms = static_cast<std::uint64_t>(d.claim_timeout.count());
  options->mode = d.mode;
  options->dedup = d.dedup ? 1 : 0;
  options->dedup_entries = d.dedup_entries;
  options->dedup_full_policy = static_cast<std::uint32_t>(d.dedup_full_policy);
  options->dedup_window_ms = static_cast<std::uint64_t>(d.dedup_window.count());
  options->dedup_bloom = d.dedup_bloom ? 1 : 0;
  options->durability = static_cast<std::uint32_t>(d.durability);
  options->journal_dir = nullptr;
  options->async_flush_interval_ms = static_cast<std::uint64_t>(d.async_flush_interval.count());
  options->journal_retain_bytes = d.journal_retain_bytes;
  options->journal_retain_age_s = static_cast<std::uint64_t>(d.journal_retain_age.count());
  options->publish_timestamp = static_cast<std::uint32_t>(d.publish_timestamp);
}

void ackring_group_options_init(ackring_group_options* options) {
  if (options == nullptr) return;
  *options = ackring_group_options{sizeof *options, ACKRING_OVERFLOW_BLOCK, ACKRING_START_EARLIEST, 0, 2.0, 60'000,
                                   ACKRING_JITTER_EQUAL, 0};
}

void ackring_consumer_options_init(ackring_consumer_options* options) {
  if (options == nullptr) return;
  const ConsumerOptions d;
  *options = ackring_consumer_options{};
  options->size = sizeof *options;
  options->mode = ACKRING_AT_LEAST_ONCE;
  options->create_group = d.create_group ? 1 : 0;
  options->lease_ms = static_cast<std::uint64_t>(d.lease.count());
  options->spin_us = static_cast<std::uint64_t>(d.spin.count());
  options->linger_us = static_cast<std::uint64_t>(d.linger.count());
  options->group_overflow = ACKRING_OVERFLOW_BLOCK;
  options->group_start = ACKRING_START_EARLIEST;
}

// ---- queues ----

ackring_status ackring_queue_create(const char* name_or_path, const ackring_queue_options* options,
                                    ackring_queue** out) {
  QueueOptions o;
  if (out != nullptr) *out = nullptr;
  if (auto s = guard(__func__, [&] { return to_queue_options(__func__, options, o); }); s != ACKRING_OK) return s;
  return open_queue(__func__, name_or_path, out, [&] { return Queue::create(name_or_path, o); });
}

ackring_status ackring_queue_open(const char* name_or_path, ackring_queue** out) {
  return open_queue(__func__, name_or_path, out, [&] { return Queue::open(name_or_path); });
}

ackring_status ackring_queue_open_or_create(const char* name_or_path, const ackring_queue_options* options,
                                            ackring_queue** out) {
  QueueOptions o;
  if (out != nullptr) *out = nullptr;
  if (auto s = guard(__func__, [&] { return to_queue_options(__func__, options, o); }); s != ACKRING_OK) return s;
  return open_queue(__func__, name_or_path, out, [&] { return Queue::open_or_create(name_or_path, o); });
}

void ackring_queue_close(ackring_queue* queue) {
  if (queue == nullptr || queue->magic != kQueueMagic) return;
  queue->magic = 0;
  delete queue;  // ~Queue is noexcept
}

ackring_status ackring_queue_destroy(const char* name_or_path) {
  ACKRING_CHECK_ARG(name_or_path != nullptr, "name is NULL");
  return guard(__func__, [&] {
    if (!Queue::destroy(name_or_path))
      return fail(ACKRING_E_NOT_FOUND, "%s: no queue '%s'", "ackring_queue_destroy", name_or_path);
    return ACKRING_OK;
  });
}

ackring_status ackring_queue_recover(const char* name_or_path, const char* journal_dir,
                                     const ackring_queue_options* options, ackring_recovery_report* report,
                                     ackring_queue** out) {
  if (out != nullptr) *out = nullptr;
  if (report != nullptr)
    if (auto s = check_out_size(__func__, "report", report); s != ACKRING_OK) return s;
  RecoverOptions ro;
  if (journal_dir != nullptr) ro.journal_dir = journal_dir;
  if (options != nullptr) {
    QueueOptions o;
    if (auto s = guard(__func__, [&] { return to_queue_options(__func__, options, o); }); s != ACKRING_OK) return s;
    ro.options = o;
  }
  RecoveryReport r;
  auto s = open_queue(__func__, name_or_path, out, [&] { return Queue::recover(name_or_path, ro, &r); });
  if (s == ACKRING_OK && report != nullptr) {
    ackring_recovery_report full{};
    full.journal_first_seq = r.journal_first_seq;
    full.journal_next_seq = r.journal_next_seq;
    full.floor = r.floor;
    full.messages = r.messages;
    full.skipped = r.skipped;
    full.dedup_keys = r.dedup_keys;
    full.torn_tail = r.journal_end == JournalEnd::torn_tail ? 1 : 0;
    full.options_from_journal = r.options_from_journal ? 1 : 0;
    write_sized(report, full);
  }
  return s;
}

// ---- groups ----

ackring_status ackring_queue_create_group(ackring_queue* queue, const char* group,
                                          const ackring_group_options* options) {
  ACKRING_CHECK_HANDLE(queue, "queue", kQueueMagic);
  ACKRING_CHECK_ARG(group != nullptr, "group is NULL");
  ackring_group_options o;
  ackring_group_options_init(&o);
  if (auto s = read_sized(__func__, "options", options, o); s != ACKRING_OK) return s;
  if (auto s = check_group_policy(__func__, o.overflow, o.start); s != ACKRING_OK) return s;
  if (auto s = check_jitter(__func__, o.redelivery_jitter); s != ACKRING_OK) return s;
  return guard(__func__, [&] {
    queue->queue.create_group(group, {.overflow = static_cast<OverflowPolicy>(o.overflow),
                                      .start = static_cast<StartPosition>(o.start),
                                      .redelivery = redelivery_of(o)});
    return ACKRING_OK;
  });
}

ackring_status ackring_queue_set_redelivery(ackring_queue* queue, const char* group,
                                            const ackring_group_options* options) {
  ACKRING_CHECK_HANDLE(queue, "queue", kQueueMagic);
  ACKRING_CHECK_ARG(group != nullptr, "group is NULL");
  ACKRING_CHECK_ARG(options != nullptr, "options is NULL");
  ackring_group_options o;
  ackring_group_options_init(&o);
  if (auto s = read_sized(__func__, "options", options, o); s != ACKRING_OK) return s;
  if (auto s = check_jitter(__func__, o.redelivery_jitter); s != ACKRING_OK) return s;
  return guard(__func__, [&] {
    queue->queue.set_redelivery(group, redelivery_of(o));
    return ACKRING_OK;
  });
}

ackring_status ackring_queue_remove_group(ackring_queue* queue, const char* group) {
  ACKRING_CHECK_HANDLE(queue, "queue", kQueueMagic);
  ACKRING_CHECK_ARG(group != nullptr, "group is NULL");
  return guard(__func__, [&] {
    if (!queue->queue.remove_group(group))
      return fail(ACKRING_E_NOT_FOUND, "ackring_queue_remove_group: no group '%s'", group);
    return ACKRING_OK;
  });
}

ackring_status ackring_queue_purge(ackring_queue* queue, const char* group, uint64_t* purged) {
  ACKRING_CHECK_HANDLE(queue, "queue", kQueueMagic);
  return guard(__func__, [&] {
    const std::uint64_t n = queue->queue.purge(group != nullptr ? std::string_view(group) : std::string_view());
    if (purged != nullptr) *purged = n;
    return ACKRING_OK;
  });
}

// ---- producers ----

ackring_status ackring_queue_producer(ackring_queue* queue, ackring_producer** out) {
  ACKRING_CHECK_ARG(out != nullptr, "out is NULL");
  *out = nullptr;
  ACKRING_CHECK_HANDLE(queue, "queue", kQueueMagic);
  return guard(__func__, [&] {
    *out = new ackring_producer{kProducerMagic, queue->queue.producer()};
    return ACKRING_OK;
  });
}

void ackring_producer_close(ackring_producer* producer) {
  if (producer == nullptr || producer->magic != kProducerMagic) return;
  producer->magic = 0;
  delete producer;
}

static ackring_status publish_outcome(const PublishResult& r, ackring_publish_result* result) noexcept {
  if (result != nullptr && r.ok()) *result = ackring_publish_result{r.seq, r.duplicate ? 1 : 0, 0};
  return from_status(r.status);
}

ackring_status ackring_publish(ackring_producer* producer, const void* data, size_t length, int64_t timeout_ns,
                               ackring_publish_result* result) {
  ACKRING_CHECK_HANDLE(producer, "producer", kProducerMagic);
  ACKRING_CHECK_ARG(data != nullptr || length == 0, "data is NULL and length is not 0");
  const Bytes payload(static_cast<const std::byte*>(data), length);
  const PublishResult r = timeout_ns == 0 ? producer->producer.try_publish(payload)
                                          : producer->producer.publish(payload, to_timeout(timeout_ns));
  return publish_outcome(r, result);
}

ackring_status ackring_publish_keyed(ackring_producer* producer, const void* data, size_t length, const void* key,
                                     size_t key_length, int64_t timeout_ns, ackring_publish_result* result) {
  ACKRING_CHECK_HANDLE(producer, "producer", kProducerMagic);
  ACKRING_CHECK_ARG(data != nullptr || length == 0, "data is NULL and length is not 0");
  ACKRING_CHECK_ARG(key != nullptr && key_length > 0, "key is NULL or empty (use ackring_publish)");
  const Bytes payload(static_cast<const std::byte*>(data), length);
  const PublishOptions po{.key = std::string_view(static_cast<const char*>(key), key_length)};
  const PublishResult r = timeout_ns == 0 ? producer->producer.try_publish(payload, po)
                                          : producer->producer.publish(payload, po, to_timeout(timeout_ns));
  return publish_outcome(r, result);
}

ackring_status ackring_publish_keyed_batch(ackring_producer* producer, const ackring_keyed_buffer* messages,
                                           size_t count, int64_t timeout_ns, ackring_publish_result* results,
                                           size_t* published) {
  ACKRING_CHECK_ARG(published != nullptr, "published is NULL");
  *published = 0;
  ACKRING_CHECK_HANDLE(producer, "producer", kProducerMagic);
  ACKRING_CHECK_ARG(messages != nullptr || count == 0, "messages is NULL and count is not 0");
  for (size_t i = 0; i < count; ++i) {
    if (messages[i].data == nullptr && messages[i].length != 0)
      return fail(ACKRING_E_INVALID_ARGUMENT, "%s: messages[%zu].data is NULL and its length is not 0", __func__, i);
    if (messages[i].key == nullptr && messages[i].key_length != 0)
      return fail(ACKRING_E_INVALID_ARGUMENT, "%s: messages[%zu].key is NULL and its key_length is not 0", __func__, i);
  }
  std::vector<KeyedPublish> batch;
  if (auto s = guard(__func__, [&] { batch.resize(count); return ACKRING_OK; }); s != ACKRING_OK) return s;
  for (size_t i = 0; i < count; ++i)
    batch[i] = {Bytes(static_cast<const std::byte*>(messages[i].data), messages[i].length),
                std::string_view(static_cast<const char*>(messages[i].key), messages[i].key_length)};
  // timeout_ns 0 as in ackring_publish_keyed (try_publish with a key): a
  // racing publisher of the same key gets 1 ms.
  const auto timeout = timeout_ns == 0 ? std::chrono::nanoseconds(std::chrono::milliseconds(1)) : to_timeout(timeout_ns);
  const std::size_t ok = producer->producer.publish_keyed_batch(batch, timeout);
  *published = ok;
  if (results != nullptr)
    for (size_t i = 0; i < ok; ++i) (void)publish_outcome(batch[i].result, &results[i]);
  return ok == count ? ACKRING_OK : from_status(batch[ok].result.status);
}

ackring_status ackring_publish_batch(ackring_producer* producer, const ackring_buffer* messages, size_t count,
                                     int64_t timeout_ns, ackring_publish_result* result) {
  ACKRING_CHECK_HANDLE(producer, "producer", kProducerMagic);
  ACKRING_CHECK_ARG(messages != nullptr, "messages is NULL");
  ACKRING_CHECK_ARG(count > 0, "count is 0");
  for (size_t i = 0; i < count; ++i)
    if (messages[i].data == nullptr && messages[i].length != 0)
      return fail(ACKRING_E_INVALID_ARGUMENT, "%s: messages[%zu].data is NULL and its length is not 0", __func__, i);
  // ackring_buffer and Bytes are both (pointer, length); the span is built
  // per batch (small batches on the stack, larger ones on the heap).
  constexpr size_t kStack = 64;
  Bytes stack[kStack];
  std::vector<Bytes> heap;
  Bytes* spans = stack;
  if (count > kStack) {
    if (auto s = guard(__func__, [&] { heap.resize(count); return ACKRING_OK; }); s != ACKRING_OK) return s;
    spans = heap.data();
  }
  for (size_t i = 0; i < count; ++i)
    spans[i] = Bytes(static_cast<const std::byte*>(messages[i].data), messages[i].length);
  const std::span<const Bytes> all(spans, count);
  const PublishResult r = timeout_ns == 0 ? producer->producer.try_publish_batch(all)
                                          : producer->producer.publish_batch(all, to_timeout(timeout_ns));
  return publish_outcome(r, result);
}

// ---- consumers ----

ackring_status ackring_queue_consumer(ackring_queue* queue, const char* group, const ackring_consumer_options* options,
                                      ackring_consumer** out) {
  ACKRING_CHECK_ARG(out != nullptr, "out is NULL");
  *out = nullptr;
  ACKRING_CHECK_HANDLE(queue, "queue", kQueueMagic);
  ACKRING_CHECK_ARG(group != nullptr, "group is NULL");
  ackring_consumer_options o;
  ackring_consumer_options_init(&o);
  if (auto s = read_sized(__func__, "options", options, o); s != ACKRING_OK) return s;
  if (o.mode > ACKRING_AT_MOST_ONCE)
    return fail(ACKRING_E_INVALID_ARGUMENT, "%s: mode %u is not ACKRING_AT_LEAST_ONCE or ACKRING_AT_MOST_ONCE",
                __func__, o.mode);
  if (auto s = check_group_policy(__func__, o.group_overflow, o.group_start); s != ACKRING_OK) return s;
  ConsumerOptions co;
  co.mode = static_cast<DeliveryMode>(o.mode);
  co.lease = Millis(o.lease_ms);
  co.spin = std::chrono::microseconds(o.spin_us);
  // Out of range (above 1 s, or above INT64_MAX and so negative here): Queue::consumer refuses it.
  co.linger = std::chrono::microseconds(o.linger_us);
  co.create_group = o.create_group != 0;
  co.group = {.overflow = static_cast<OverflowPolicy>(o.group_overflow),
              .start = static_cast<StartPosition>(o.group_start)};
  return guard(__func__, [&] {
    *out = new ackring_consumer{kConsumerMagic, queue->queue.consumer(group, co), {}};
    return ACKRING_OK;
  });
}

void ackring_consumer_close(ackring_consumer* consumer) {
  if (consumer == nullptr || consumer->magic != kConsumerMagic) return;
  consumer->magic = 0;
  delete consumer;
}

ackring_status ackring_receive(ackring_consumer* consumer, ackring_message* out, int64_t timeout_ns) {
  ACKRING_CHECK_HANDLE(consumer, "consumer", kConsumerMagic);
  ACKRING_CHECK_ARG(out != nullptr, "out is NULL");
  const std::optional<Delivery> d =
      timeout_ns == 0 ? consumer->consumer.try_receive() : consumer->consumer.receive(to_timeout(timeout_ns));
  if (!d) return fail_status(timeout_ns == 0 ? ACKRING_EMPTY : ACKRING_TIMEOUT);
  fill_message(consumer, *d, *out);
  return ACKRING_OK;
}

ackring_status ackring_receive_batch(ackring_consumer* consumer, ackring_message* out, size_t capacity,
                                     int64_t timeout_ns, size_t* received) {
  ACKRING_CHECK_HANDLE(consumer, "consumer", kConsumerMagic);
  ACKRING_CHECK_ARG(received != nullptr, "received is NULL");
  *received = 0;
  ACKRING_CHECK_ARG(out != nullptr, "out is NULL");
  ACKRING_CHECK_ARG(capacity > 0, "capacity is 0");
  if (consumer->scratch.size() < capacity)
    if (auto s = guard(__func__, [&] { consumer->scratch.resize(capacity); return ACKRING_OK; }); s != ACKRING_OK)
      return s;
  const std::span<Delivery> batch(consumer->scratch.data(), capacity);
  const std::size_t n = timeout_ns == 0 ? consumer->consumer.try_receive_batch(batch)
                                        : consumer->consumer.receive_batch(batch, to_timeout(timeout_ns));
  for (std::size_t i = 0; i < n; ++i) fill_message(consumer, batch[i], out[i]);
  *received = n;
  if (n == 0) return fail_status(timeout_ns == 0 ? ACKRING_EMPTY : ACKRING_TIMEOUT);
  return ACKRING_OK;
}

ackring_status ackring_ack(ackring_consumer* consumer, const ackring_message* message) {
  ACKRING_CHECK_HANDLE(consumer, "consumer", kConsumerMagic);
  Delivery d;
  if (auto s = delivery_of(__func__, consumer, message, d); s != ACKRING_OK) return s;
  return from_status(consumer->consumer.ack(d));
}

ackring_status ackring_ack_batch(ackring_consumer* consumer, const ackring_message* messages, size_t count,
                                 size_t* acked) {
  if (acked != nullptr) *acked = 0;
  ACKRING_CHECK_HANDLE(consumer, "consumer", kConsumerMagic);
  ACKRING_CHECK_ARG(messages != nullptr || count == 0, "messages is NULL and count is not 0");
  if (consumer->scratch.size() < count)
    if (auto s = guard(__func__, [&] { consumer->scratch.resize(count); return ACKRING_OK; }); s != ACKRING_OK)
      return s;
  // Every message is checked before anything is acked: all or none of the
  // arguments are used.
  for (size_t i = 0; i < count; ++i)
    if (auto s = delivery_of(__func__, consumer, &messages[i], consumer->scratch[i]); s != ACKRING_OK) return s;
  const std::size_t n = consumer->consumer.ack_batch(std::span<const Delivery>(consumer->scratch.data(), count));
  if (acked != nullptr) *acked = n;
  return n == count ? ACKRING_OK : fail_status(ACKRING_LEASE_LOST);
}

ackring_status ackring_nack(ackring_consumer* consumer, const ackring_message* message, uint64_t delay_ms) {
  ACKRING_CHECK_HANDLE(consumer, "consumer", kConsumerMagic);
  Delivery d;
  if (auto s = delivery_of(__func__, consumer, message, d); s != ACKRING_OK) return s;
  return from_status(consumer->consumer.nack(d.receipt(), Millis(delay_ms)));
}

ackring_status ackring_extend(ackring_consumer* consumer, const ackring_message* message, uint64_t lease_ms) {
  ACKRING_CHECK_HANDLE(consumer, "consumer", kConsumerMagic);
  ACKRING_CHECK_ARG(lease_ms > 0, "lease_ms is 0");
  Delivery d;
  if (auto s = delivery_of(__func__, consumer, message, d); s != ACKRING_OK) return s;
  return from_status(consumer->consumer.extend(d.receipt(), Millis(lease_ms)));
}

ackring_status ackring_reject(ackring_consumer* consumer, const ackring_message* message) {
  ACKRING_CHECK_HANDLE(consumer, "consumer", kConsumerMagic);
  Delivery d;
  if (auto s = delivery_of(__func__, consumer, message, d); s != ACKRING_OK) return s;
  return from_status(consumer->consumer.reject(d.receipt()));
}

// The same steps as Consumer::process_once, with a C handler whose non-zero
// return stands for the C++ handler's exception.
ackring_status ackring_process_once(ackring_consumer* consumer, const ackring_message* message,
                                    ackring_handler handler, void* user) {
  ACKRING_CHECK_HANDLE(consumer, "consumer", kConsumerMagic);
  ACKRING_CHECK_ARG(handler != nullptr, "handler is NULL");
  Delivery d;
  if (auto s = delivery_of(__func__, consumer, message, d); s != ACKRING_OK) return s;
  if (consumer->consumer.is_processed(d)) {
    (void)consumer->consumer.ack(d);
    return fail_status(ACKRING_DUPLICATE);
  }
  if (handler(message, user) != 0) return fail_status(ACKRING_HANDLER_FAILED);
  (void)consumer->consumer.mark_processed(d);  // if the table is full, the ack still settles it
  return from_status(consumer->consumer.ack(d));
}

ackring_status ackring_process_once_batch(ackring_consumer* consumer, const ackring_message* messages, size_t count,
                                          ackring_handler handler, void* user, ackring_process_counts* counts) {
  if (counts != nullptr) *counts = ackring_process_counts{};
  ACKRING_CHECK_HANDLE(consumer, "consumer", kConsumerMagic);
  ACKRING_CHECK_ARG(handler != nullptr, "handler is NULL");
  ACKRING_CHECK_ARG(messages != nullptr || count == 0, "messages is NULL and count is not 0");
  // Not the consumer's scratch: a handler may receive or ack with this consumer meanwhile.
  std::vector<Delivery> deliveries;
  if (auto s = guard(__func__, [&] { deliveries.resize(count); return ACKRING_OK; }); s != ACKRING_OK) return s;
  // Every message is checked before any handler runs: all or none of the arguments are used.
  for (size_t i = 0; i < count; ++i)
    if (auto s = delivery_of(__func__, consumer, &messages[i], deliveries[i]); s != ACKRING_OK) return s;
  const std::span<const Delivery> batch(deliveries.data(), count);
  // The handler gets the caller's message for the delivery in hand: same index.
  Consumer::ProcessedBatch r;
  // guard: the only exception possible is the key buffer's allocation, before any handler runs.
  if (auto s = guard(__func__, [&] {
        r = consumer->consumer.process_once_batch(
            batch, [&](const Delivery& d) { return handler(&messages[&d - batch.data()], user) == 0; });
        return ACKRING_OK;
      });
      s != ACKRING_OK)
    return s;
  if (counts != nullptr) *counts = ackring_process_counts{r.handled, r.duplicates, r.acked, r.unrecorded};
  if (r.stopped) return fail_status(ACKRING_HANDLER_FAILED);
  return r.acked == count ? ACKRING_OK : fail_status(ACKRING_LEASE_LOST);
}

ackring_status ackring_is_processed(ackring_consumer* consumer, const ackring_message* message, int* processed) {
  ACKRING_CHECK_HANDLE(consumer, "consumer", kConsumerMagic);
  ACKRING_CHECK_ARG(processed != nullptr, "processed is NULL");
  Delivery d;
  if (auto s = delivery_of(__func__, consumer, message, d); s != ACKRING_OK) return s;
  *processed = consumer->consumer.is_processed(d) ? 1 : 0;
  return ACKRING_OK;
}

ackring_status ackring_mark_processed(ackring_consumer* consumer, const ackring_message* message) {
  ACKRING_CHECK_HANDLE(consumer, "consumer", kConsumerMagic);
  Delivery d;
  if (auto s = delivery_of(__func__, consumer, message, d); s != ACKRING_OK) return s;
  return from_status(consumer->consumer.mark_processed(d));
}

// ---- stats ----

ackring_status ackring_queue_stats(ackring_queue* queue, ackring_stats** out) {
  ACKRING_CHECK_ARG(out != nullptr, "out is NULL");
  *out = nullptr;
  ACKRING_CHECK_HANDLE(queue, "queue", kQueueMagic);
  return guard(__func__, [&] {
    *out = new ackring_stats{queue->queue.stats()};
    return ACKRING_OK;
  });
}

void ackring_stats_free(ackring_stats* stats) { delete stats; }

ackring_status ackring_stats_queue(const ackring_stats* stats, ackring_queue_info* out) {
  ACKRING_CHECK_ARG(stats != nullptr, "stats is NULL");
  if (auto s = check_out_size(__func__, "out", out); s != ACKRING_OK) return s;
  const QueueStats& q = stats->stats;
  ackring_queue_info full{};
  full.path = q.path.c_str();
  full.capacity = q.capacity;
  full.max_message_size = q.max_message_size;
  full.tail = q.tail;
  full.published = q.published;
  full.aborted = q.aborted;
  full.min_floor = q.min_floor;
  full.depth = q.depth;
  full.durable_seq = q.durable_seq;
  full.dedup_hits = q.dedup.hits;
  full.dedup_live = q.dedup.live;
  full.dedup_keyed_published = q.dedup.keyed_published;
  full.dedup_hit_ratio = q.dedup.hit_ratio;
  full.groups = q.groups.size();
  full.producers = q.producers.size();
  write_sized(out, full);
  return ACKRING_OK;
}

ackring_status ackring_stats_group(const ackring_stats* stats, size_t group, ackring_group_info* out) {
  ACKRING_CHECK_ARG(stats != nullptr, "stats is NULL");
  if (auto s = check_out_size(__func__, "out", out); s != ACKRING_OK) return s;
  if (group >= stats->stats.groups.size())
    return fail(ACKRING_E_INVALID_ARGUMENT, "%s: group index %zu out of range (%zu groups)", __func__, group,
                stats->stats.groups.size());
  const GroupStats& g = stats->stats.groups[group];
  ackring_group_info full{};
  full.name = g.name.c_str();
  full.overflow = static_cast<std::uint32_t>(g.overflow);
  full.members = static_cast<std::uint32_t>(g.members.size());
  full.floor = g.floor;
  full.next = g.next;
  full.in_flight = g.in_flight;
  full.lag = g.lag;
  full.delivered = g.delivered;
  full.acked = g.acked;
  full.redelivered = g.redelivered;
  full.nacked = g.nacked;
  full.dead_lettered = g.dead_lettered;
  full.dropped = g.dropped;
  full.lease_expiries = g.lease_expiries;
  full.oldest_unacked_seq = g.oldest_unacked_seq;
  full.oldest_unacked_age_ms = g.oldest_unacked_age_ms;
  full.waiting_redelivery = g.waiting_redelivery;
  full.redelivered_expiry = g.redelivered_by.expiry;
  full.redelivered_death = g.redelivered_by.death;
  full.redelivered_nack = g.redelivered_by.nack;
  full.redelivered_released = g.redelivered_by.released;
  full.process_once_skips = g.process_once_skips;
  full.ack_latency_count = g.ack_latency.count;
  full.ack_latency_p50_ms = g.ack_latency.p50_ms;
  full.ack_latency_p99_ms = g.ack_latency.p99_ms;
  full.min_member_lease_ms = g.min_member_lease_ms;
  full.lease_below_p99 = g.lease_below_p99 ? 1 : 0;
  full.redelivery_jitter = static_cast<std::uint32_t>(g.redelivery.jitter);
  full.redelivery_initial_ms = static_cast<std::uint64_t>(g.redelivery.initial.count());
  full.redelivery_multiplier = g.redelivery.multiplier;
  full.redelivery_max_ms = static_cast<std::uint64_t>(g.redelivery.max.count());
  write_sized(out, full);
  return ACKRING_OK;
}

ackring_status ackring_stats_member(const ackring_stats* stats, size_t group, size_t member,
                                    ackring_member_info* out) {
  ACKRING_CHECK_ARG(stats != nullptr, "stats is NULL");
  if (auto s = check_out_size(__func__, "out", out); s != ACKRING_OK) return s;
  if (group >= stats->stats.groups.size())
    return fail(ACKRING_E_INVALID_ARGUMENT, "%s: group index %zu out of range (%zu groups)", __func__, group,
                stats->stats.groups.size());
  const GroupStats& g = stats->stats.groups[group];
  if (member >= g.members.size())
    return fail(ACKRING_E_INVALID_ARGUMENT, "%s: member index %zu out of range (%zu members)", __func__, member,
                g.members.size());
  const MemberStats& m = g.members[member];
  ackring_member_info full{};
  full.index = m.index;
  full.pid = m.pid;
  full.alive = m.alive ? 1 : 0;
  full.delivered = m.delivered;
  full.acked = m.acked;
  full.in_flight = m.in_flight;
  full.idle_ms = m.idle_ms;
  full.redelivered = m.redelivered;
  full.nacked = m.nacked;
  write_sized(out, full);
  return ACKRING_OK;
}

// ---- dead letters ----

ackring_status ackring_redrive_dead_letters(const char* name_or_path, uint64_t* moved) {
  ACKRING_CHECK_ARG(name_or_path != nullptr, "name is NULL");
  return guard(__func__, [&] {
    const std::size_t n = redrive_dead_letters(name_or_path);
    if (moved != nullptr) *moved = n;
    return ACKRING_OK;
  });
}

}  // extern "C"
