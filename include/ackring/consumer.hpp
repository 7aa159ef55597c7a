// Consumer: a member of one consumer group. Every group sees every message;
// members of one group compete for them. Thread-safety: one Consumer per
// thread; any number of Consumers per process (each is its own member).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ackring/options.hpp"
#include "ackring/producer.hpp"
#include "ackring/status.hpp"

namespace ackring {

namespace detail {
struct QueueState;
struct GroupEntry;
struct MemberEntry;
struct Fingerprint;
struct LeaseWord;
enum class SettleReason : std::uint8_t;
}  // namespace detail

// What ack/nack/extend need: the seq and the delivery count it was handed out
// with. A receipt from an earlier delivery of the same message is stale.
struct Receipt {
  std::uint64_t seq = 0;
  std::uint32_t deliveries = 0;
  // Low 32 bits of the monotonic ms it was delivered at, for the
  // delivery-to-ack latency statistics; 0: unknown (not counted).
  std::uint32_t delivered_ms = 0;
};

// One delivered message. The payload view points into the shared mapping and
// stays valid until the message is acked, nacked or rejected, or its lease
// runs out. In a drop-policy group and in at-most-once mode (where the slot
// may be reused at any time) it points into a copy owned by the Consumer,
// valid until acked or until 64 more messages were received by that Consumer.
class Delivery {
 public:
  Delivery() = default;
  [[nodiscard]] std::uint64_t seq() const noexcept { return seq_; }
  [[nodiscard]] std::uint32_t deliveries() const noexcept { return deliveries_; }
  [[nodiscard]] bool redelivered() const noexcept { return deliveries_ > 1; }
  [[nodiscard]] Bytes payload() const noexcept { return payload_; }
  [[nodiscard]] std::string_view text() const noexcept {
    return {reinterpret_cast<const char*>(payload_.data()), payload_.size()};
  }
  // Wall-clock time of publish, nanoseconds since the Unix epoch.
  [[nodiscard]] std::uint64_t publish_time_ns() const noexcept { return publish_time_ns_; }
  [[nodiscard]] Receipt receipt() const noexcept { return {seq_, deliveries_, delivered_ms_}; }
  // True if the message was published with an idempotency key.
  [[nodiscard]] bool has_key() const noexcept { return has_key_; }
  // What the queue keeps of the publish key (when has_key()): its 128-bit
  // XXH3 fingerprint as {low, high} 64-bit halves, not the key itself. Equal
  // keys give equal fingerprints, in every process and language.
  [[nodiscard]] std::array<std::uint64_t, 2> key_fingerprint() const noexcept { return {key_lo_, key_hi_}; }
  // True for a copy published by Queue::rewind_group (a replay).
  [[nodiscard]] bool replayed() const noexcept { return replayed_; }

 private:
  friend class Consumer;
  std::uint64_t seq_ = 0;
  std::uint32_t deliveries_ = 0;
  std::uint32_t delivered_ms_ = 0;  // Receipt::delivered_ms
  bool has_key_ = false;
  bool replayed_ = false;
  std::uint64_t publish_time_ns_ = 0;
  std::uint64_t key_lo_ = 0;  // key fingerprint, for process-once
  std::uint64_t key_hi_ = 0;
  Bytes payload_{};
};

class Consumer {
 public:
  Consumer(Consumer&&) noexcept;
  Consumer& operator=(Consumer&&) noexcept;
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  // Leaving releases this member's unacked leases at once (they are
  // redelivered to the other members) and frees the member slot.
  ~Consumer();

  // Returns a message if one is ready now, else nullopt (no waiting).
  [[nodiscard]] std::optional<Delivery> try_receive() noexcept;
  // Waits up to `timeout`: spins for options.spin, then sleeps on a futex.
  [[nodiscard]] std::optional<Delivery> receive(std::chrono::nanoseconds timeout) noexcept;
  // Fills up to out.size() deliveries; returns how many.
  [[nodiscard]] std::size_t try_receive_batch(std::span<Delivery> out) noexcept;
  // Waits up to `timeout` for a first message, as receive() does; with
  // options.linger, a batch that came back short is filled further after
  // that wait (ConsumerOptions::linger).
  [[nodiscard]] std::size_t receive_batch(std::span<Delivery> out, std::chrono::nanoseconds timeout) noexcept;

  // Settles the message in this group. lease_lost if the receipt is stale.
  Status ack(const Receipt& receipt) noexcept;
  Status ack(const Delivery& d) noexcept { return ack(d.receipt()); }
  // Cumulative ack of a batch: settles each and advances the floor once.
  // Returns how many were acked; the others had lost their lease.
  std::size_t ack_batch(std::span<const Delivery> batch) noexcept;
  // Gives the message back, to be redelivered after `delay`. 0 (the
  // default): after the group's redelivery back-off (GroupOptions::
  // redelivery), which is none unless the group has one: at once.
  Status nack(const Receipt& receipt, Millis delay = Millis{0}) noexcept;
  // Pushes the lease deadline to now + `lease`.
  Status extend(const Receipt& receipt, Millis lease) noexcept;
  // Sends the message to the dead-letter queue now (reason: rejected).
  Status reject(const Receipt& receipt) noexcept;

  // ---- effectively-once (process-once) ----
  // The group's processed-key record lives in the queue's dedup table, keyed
  // by the message's publish key (or its seq if it had none), namespaced by
  // group, and kept for the dedup window.
  //
  // process_once: if the message was processed before, acks it and returns
  // Status::duplicate without calling `handler`. Otherwise calls
  // handler(delivery), records the message as processed, then acks it.
  // If handler throws, nothing is recorded, the exception propagates and the
  // message is redelivered later (at-least-once).
  //
  // What it does NOT give: if the process dies after handler's side effect
  // and before the record is written, the message is processed again. For
  // effects outside the queue, make them idempotent or commit them together
  // with the key in your own store (see examples/sqlite_inbox).
  template <typename Handler>
  Status process_once(const Delivery& delivery, Handler&& handler) {
    if (is_processed(delivery)) {
      (void)ack(delivery);
      return Status::duplicate;
    }
    std::forward<Handler>(handler)(delivery);
    (void)mark_processed(delivery);  // if the table is full, the ack still settles it
    return ack(delivery);
  }
  // process_once over a received batch, acked at the end with one ack_batch.
  // Skips the deliveries processed before; calls handler(delivery) for the
  // others, in order, and records each as processed when its handler
  // returns. The table lines of every delivery in the batch are requested
  // before the first lookup, so with a dedup table larger than the caches the
  // batch waits about once for memory instead of once or twice per message.
  // If handler throws, the deliveries before that one (handled or skipped)
  // are acked, the one that threw and those after it are not (they are
  // redelivered after their lease), and the exception propagates. A handler
  // that returns bool may say false instead: the same happens, without the
  // exception, and the result says `stopped`.
  struct ProcessedBatch {
    std::size_t handled = 0;     // handler called and returned (true)
    std::size_t duplicates = 0;  // processed before: skipped
    std::size_t acked = 0;       // the others had lost their lease (they come back, and are then skipped)
    std::size_t unrecorded = 0;  // handled, but not recorded: the key's window was full (dedup_full) or
                                 // the queue has no dedup table (no_dedup); a redelivery would run them again
    bool stopped = false;        // a handler returned false: it and the deliveries after it were not acked
  };
  template <typename Handler>
  ProcessedBatch process_once_batch(std::span<const Delivery> batch, Handler&& handler) {
    using H = std::remove_reference_t<Handler>;
    return process_once_batch(batch, const_cast<void*>(static_cast<const void*>(std::addressof(handler))),
                              [](void* h, const Delivery& d) -> bool {
                                if constexpr (std::is_same_v<std::invoke_result_t<H&, const Delivery&>, bool>) {
                                  return (*static_cast<H*>(h))(d);
                                } else {
                                  (*static_cast<H*>(h))(d);
                                  return true;
                                }
                              });
  }

  // The building blocks of process_once, for callers that ack themselves.
  [[nodiscard]] bool is_processed(const Delivery& delivery) noexcept;
  // ok, dedup_full (the key's window holds only live keys), or no_dedup.
  Status mark_processed(const Delivery& delivery) noexcept;

  [[nodiscard]] const std::string& group() const noexcept { return group_name_; }
  [[nodiscard]] std::uint32_t member_index() const noexcept { return member_; }

 private:
  friend class Queue;
  Consumer(std::shared_ptr<detail::QueueState> state, std::uint32_t group, std::uint32_t incarnation,
           std::uint32_t member, std::string group_name, const ConsumerOptions& options);

  // receive_batch's two waits: for a first message (spin, then futex), and
  // ConsumerOptions::linger's for the rest of a short batch.
  [[nodiscard]] std::size_t wait_for_first(std::span<Delivery> out, std::chrono::nanoseconds timeout) noexcept;
  [[nodiscard]] std::size_t linger_and_take(std::span<Delivery> rest) noexcept;
  [[nodiscard]] std::span<Delivery> within_copies(std::span<Delivery> out) const noexcept;
  enum class Take : std::uint8_t { got, nothing, retry };
  [[nodiscard]] Take take_expired(Delivery& out, std::uint64_t now_ms) noexcept;
  struct Takeover;
  [[nodiscard]] Takeover plan_takeover(const detail::LeaseWord& expired, std::uint64_t now_ms) noexcept;
  [[nodiscard]] bool deliver_taken_over(Delivery& out, std::uint64_t seq, const Takeover& takeover,
                                        std::uint32_t from_owner, std::uint64_t now_ms,
                                        std::uint64_t& earliest_ms) noexcept;
  [[nodiscard]] Take take_new_batch(std::span<Delivery> out, std::size_t& got, std::uint64_t now_ms) noexcept;
  [[nodiscard]] bool skip_unusable(std::uint64_t seq, std::uint64_t lease_word, detail::SettleReason why) noexcept;
  void finish_take(std::uint64_t first, std::uint64_t consumed, std::size_t got_before, std::size_t got,
                   std::uint64_t now_ms) noexcept;
  [[nodiscard]] bool fill(Delivery& out, std::uint64_t seq, std::uint64_t held_word, std::uint64_t now_ms) noexcept;
  [[nodiscard]] bool still_held(std::uint64_t seq, std::uint64_t held_word) const noexcept;
  void record_ack_latency(std::uint32_t delivered_ms, std::uint64_t acks, std::uint64_t now_ms) noexcept;
  bool settle(std::uint64_t seq, std::uint64_t expected_word, detail::SettleReason reason) noexcept;
  // Settles seq if we still hold the lease of this delivery.
  void settle_own(std::uint64_t seq, std::uint32_t deliveries, detail::SettleReason reason) noexcept;
  [[nodiscard]] detail::Fingerprint processed_key_of(const Delivery& d) const noexcept;
  // false from `call`: the handler failed (ProcessedBatch::stopped).
  ProcessedBatch process_once_batch(std::span<const Delivery> batch, void* handler,
                                    bool (*call)(void* handler, const Delivery& delivery));
  [[nodiscard]] bool check_receipt(const Receipt& receipt, std::uint64_t lease_word) const noexcept;
  [[nodiscard]] Status settle_receipt(const Receipt& receipt, detail::SettleReason reason) noexcept;
  [[nodiscard]] Status modify_lease(const Receipt& receipt, std::uint64_t deadline_ms, bool give_up) noexcept;
  [[nodiscard]] bool dead_letter(std::uint64_t seq, std::uint64_t held_word, std::uint8_t reason) noexcept;
  void housekeep(std::uint64_t now_ms) noexcept;
  void handle_stalled_head(std::uint64_t seq, std::uint64_t now_ms) noexcept;
  void advance_floor() noexcept;
  void release() noexcept;
  [[nodiscard]] bool group_gone() const noexcept;
  [[nodiscard]] std::atomic<std::uint64_t>& lease_word(std::uint64_t seq) const noexcept {
    return leases_[seq & lease_mask_];
  }

  std::shared_ptr<detail::QueueState> state_;
  std::uint32_t group_ = 0;
  std::uint32_t incarnation_ = 0;
  std::uint32_t member_ = 0;
  // This group's entry, this member's entry and this group's lease words in
  // the mapping, found once: every receive and ack reads them, and the
  // mapping (state_) outlives this handle. A group removed and created again
  // under the same index reuses the same entry; group_gone() tells them apart.
  detail::GroupEntry* group_entry_ = nullptr;
  detail::MemberEntry* member_entry_ = nullptr;
  std::atomic<std::uint64_t>* leases_ = nullptr;
  std::uint64_t lease_mask_ = 0;  // capacity - 1
  std::string group_name_;
  std::uint64_t processed_seed_ = 0;  // processed_key_seed(group_name_): hashed once, used per message
  ConsumerOptions options_;
  std::uint32_t lease_ms_ = 0;
  bool drop_group_ = false;
  std::uint64_t next_housekeep_ms_ = 0;
  std::uint64_t jitter_state_ = 0;        // redelivery jitter (splitmix64)
  std::uint64_t stalled_seq_ = ~0ull;     // head seq seen claimed-but-uncommitted, and since when
  std::uint64_t stalled_since_ms_ = ~0ull;  // ~0: the head is not known to be claimed
  std::uint64_t stalled_tail_ = 0;        // the tail when that stall began
  std::uint64_t next_stall_check_ms_ = 0;
  // The look for expired leases under way (take_expired): it resumes where
  // the previous receive stopped instead of at the floor, so taking back N
  // leases reads each lease word once, not N times.
  struct ExpiryPass {
    bool active = false;
    std::uint64_t next_seq = 0;        // where it goes on
    std::uint64_t earliest = ~0ull;    // earliest live deadline seen so far (ms)
    std::uint64_t started_hint = 0;    // the group's hint when it began: raised only if still that
    std::uint64_t started_ms = 0;      // a look older than kRescanMs starts over at the floor
  };
  ExpiryPass expiry_pass_;
  std::vector<std::byte> copies_;         // drop groups: payload copies, one per batch position
  std::size_t copy_cursor_ = 0;
  std::unique_ptr<Producer> dlq_;         // producer into <queue>.dlq, opened on the first dead letter
  std::vector<std::byte> dlq_buffer_;     // origin record + payload being dead-lettered
};

}  // namespace ackring
