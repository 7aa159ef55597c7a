// Producer: publishes into a queue from any number of processes at once.
// Lock-free: a claim is one CAS on the queue tail, a commit is one CAS on the
// slot's state word. Thread-safety: one Producer per thread (it holds the
// producer's counters); any number of Producers per process.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "ackring/options.hpp"
#include "ackring/status.hpp"

namespace ackring {

namespace detail {
struct QueueState;
class TscClock;
struct ClockReading;
struct Fingerprint;
class DedupTable;
}

struct PublishResult {
  Status status = Status::ok;
  std::uint64_t seq = 0;   // sequence number of the (first) message when status is ok
  bool duplicate = false;  // keyed publish: the key was published before; seq is that message's
  [[nodiscard]] bool ok() const noexcept { return status == Status::ok; }
};

using Bytes = std::span<const std::byte>;

[[nodiscard]] inline Bytes as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// One message of Producer::publish_keyed_batch: what to publish, and what
// became of it.
struct KeyedPublish {
  Bytes payload;
  std::string_view key;    // the idempotency key; empty: published unkeyed
  PublishResult result{};  // written by publish_keyed_batch
};

class Producer {
 public:
  Producer(Producer&&) noexcept;
  Producer& operator=(Producer&&) noexcept;
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;
  ~Producer();

  // Publishes one message or fails at once with queue_full / too_large.
  [[nodiscard]] PublishResult try_publish(Bytes payload) noexcept;
  // Waits (spin, then futex) up to `timeout` for room.
  [[nodiscard]] PublishResult publish(Bytes payload,
                                      std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max()) noexcept;
  [[nodiscard]] PublishResult try_publish(std::string_view text) noexcept { return try_publish(as_bytes(text)); }
  [[nodiscard]] PublishResult publish(std::string_view text,
                                      std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max()) noexcept {
    return publish(as_bytes(text), timeout);
  }

  // Idempotent publish: with a key, a second publish of the same key within
  // the dedup window enqueues nothing and returns the first message's seq
  // with duplicate = true. A racing publish of the same key by another
  // producer is waited for (up to the timeout) and then answered the same way.
  [[nodiscard]] PublishResult try_publish(Bytes payload, const PublishOptions& options) noexcept;
  [[nodiscard]] PublishResult publish(Bytes payload, const PublishOptions& options,
                                      std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max()) noexcept;
  [[nodiscard]] PublishResult try_publish(std::string_view text, const PublishOptions& options) noexcept {
    return try_publish(as_bytes(text), options);
  }
  [[nodiscard]] PublishResult publish(std::string_view text, const PublishOptions& options,
                                      std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max()) noexcept {
    return publish(as_bytes(text), options, timeout);
  }

  // Keyed publish of many messages, in order, each exactly as
  // publish(m.payload, {.key = m.key}, timeout) (so `timeout` bounds each
  // message's waits, not the call). Not all or nothing: returns how many,
  // from the first, came back ok (published, or duplicate); if that is fewer
  // than messages.size(), the next one's result says why it was not published
  // and the rest were not tried (their results are not written). Publishing
  // the rest again is safe: the keys dedup. Faster than one call per message
  // with a dedup table larger than the caches: the keys further on have
  // their table lines requested while a message is being published.
  [[nodiscard]] std::size_t publish_keyed_batch(
      std::span<KeyedPublish> messages, std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max()) noexcept;

  // All or nothing: claims payloads.size() consecutive slots in one CAS.
  // (Keys are per message: publish_keyed_batch publishes keyed messages.)
  // On ok, the messages have seqs result.seq .. result.seq + size - 1 —
  // unless this producer stalled past the queue's claim_timeout mid-batch and
  // a consumer aborted its claim: then the messages from the first aborted
  // one on were published again, in order, at later seqs (result.seq is
  // still the first message's seq).
  [[nodiscard]] PublishResult try_publish_batch(std::span<const Bytes> payloads) noexcept;
  [[nodiscard]] PublishResult publish_batch(std::span<const Bytes> payloads,
                                            std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max()) noexcept;

  [[nodiscard]] std::uint32_t index() const noexcept { return index_; }

 private:
  friend class Queue;
  Producer(std::shared_ptr<detail::QueueState> state, std::uint32_t index, std::uint32_t incarnation) noexcept;
  void release() noexcept;
  [[nodiscard]] Status claim(std::uint64_t count, std::uint64_t& first) noexcept;
  [[nodiscard]] Status claim_wait(std::uint64_t count, std::uint64_t deadline_ns, std::uint64_t& first) noexcept;
  void end_flight() noexcept;
  [[nodiscard]] bool floor_help_due() noexcept;
  void abort_own_claims(std::uint64_t from, std::uint64_t to) noexcept;
  [[nodiscard]] PublishResult write_claimed(std::uint64_t first, std::span<const Bytes> payloads,
                                            std::uint64_t durable_deadline_ns) noexcept;
  [[nodiscard]] PublishResult publish_one(Bytes payload, std::chrono::nanoseconds timeout) noexcept;
  [[nodiscard]] PublishResult publish_keyed(Bytes payload, std::string_view key, std::chrono::nanoseconds timeout) noexcept;
  [[nodiscard]] PublishResult publish_keyed(Bytes payload, const detail::Fingerprint& key, detail::DedupTable& table,
                                            std::chrono::nanoseconds timeout) noexcept;
  // Queue::rewind_group: one message with the slot flags, key fields and
  // publish time given (a replay copy). Waits for room until deadline_ns;
  // does not wait for durability (the caller waits once for the last copy).
  [[nodiscard]] PublishResult publish_copy(Bytes payload, std::uint32_t flags, std::uint64_t key_lo, std::uint64_t key_hi,
                                           std::uint64_t publish_time_ns, std::uint64_t deadline_ns) noexcept;

  std::shared_ptr<detail::QueueState> state_;
  std::uint32_t index_ = 0;
  std::uint32_t incarnation_ = 0;    // of our producer entry: names us as a dedup reservation owner
  std::uint64_t cached_floor_ = 0;  // local copy of the queue's min floor: refreshed only when the ring looks full
  std::uint64_t next_floor_help_ns_ = 0;  // monotonic ns before which a full ring does not help floors (floor_help_due)
  // The publish time and coarse ms of the next message (shm/tsc_clock.hpp).
  [[nodiscard]] detail::ClockReading read_clock() noexcept;
  std::unique_ptr<detail::TscClock> clock_;  // null only if its allocation failed
};

}  // namespace ackring
