// The dedup table: a split-block bloom filter in front of an open-addressing
// hash table of 128-bit XXH3 fingerprints -> (seq, time), both in the queue
// file. Used by idempotent publish (keys) and by process-once (per-group
// processed keys). docs/protocol.md §8 argues the protocol.
//
// Hash table: a key's entries live in a window of kDedupProbe consecutive
// entries starting at (fp.lo mod entries); every operation scans the whole
// window, so expired entries can be reused anywhere in it.
//
//   DedupEntry (32 bytes)
//   0        8        16       24       32
//   ┌────────┬────────┬────────┬────────┐
//   │ state  │ key lo │ key hi │ value  │
//   └────────┴────────┴────────┴────────┘
//   state = kind (bits 63-62) | owner (61-40) | time ms (39-0)
//   kind:  empty | busy (being re-keyed) | reserved (publish in progress) | committed
//   owner: producer index (16 bits) + its incarnation (6 bits); 0 for process-once
//   value: committed -> seq; reserved -> claimed seq + 1, or 0 before the claim
//
// Bloom filter: two generations of 256-bit blocks (8 × 32-bit words, one bit
// set per word, as in Parquet's split-block filter). Generation (epoch & 1)
// takes the inserts of epoch = time / window and is cleared when its epoch
// begins, so a key inside the window always has its bits in one of the two.
// A block is accessed as 4 × 64-bit atomics (same bytes, half the atomic ORs).
// With QueueOptions::dedup_bloom off the file has no filter (bloom_blocks 0):
// every key "may be present" and every lookup probes the table.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "ackring/options.hpp"
#include "queue_state.hpp"

namespace ackring::detail {

inline constexpr std::uint32_t kDedupProbe = 16;

struct DedupEntry {
  std::atomic<std::uint64_t> state;
  std::atomic<std::uint64_t> key_lo;
  std::atomic<std::uint64_t> key_hi;
  std::atomic<std::uint64_t> value;
};
static_assert(sizeof(DedupEntry) == 32);

struct Fingerprint {
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
  friend bool operator==(const Fingerprint&, const Fingerprint&) = default;
};

[[nodiscard]] Fingerprint fingerprint(std::string_view key) noexcept;
// The key a group's process-once record uses for a message: its publish key
// if it had one, else its seq; namespaced by the group so groups never collide.
[[nodiscard]] Fingerprint processed_key(Fingerprint message_key, bool has_key, std::uint64_t seq,
                                        std::string_view group) noexcept;

// Owner of a reservation: a producer table entry and its incarnation.
[[nodiscard]] constexpr std::uint32_t dedup_owner(std::uint32_t producer_index, std::uint32_t incarnation) noexcept {
  return ((producer_index & 0xffff) << 6) | (incarnation & 0x3f);
}

struct DedupCounters {  // the caller's own counters (owner-only atomics in its producer entry)
  std::uint64_t hits = 0;
  std::uint64_t bloom_negatives = 0;
  std::uint64_t expired_reused = 0;
};

enum class ReserveOutcome : std::uint8_t { reserved, duplicate, full, timeout };

struct Reservation {
  ReserveOutcome outcome = ReserveOutcome::full;
  std::uint32_t entry = 0;  // reserved: the entry to commit or release
  std::uint64_t seq = 0;    // duplicate: the seq of the message already published
};

class DedupTable {
 public:
  explicit DedupTable(const QueueState& q) noexcept;
  [[nodiscard]] bool enabled() const noexcept { return entries_ != nullptr; }

  // Publish side. Waits (spinning) up to `timeout_ns` for a racing
  // publisher of the same key to finish.
  [[nodiscard]] Reservation reserve(Fingerprint key, std::uint32_t owner, std::uint64_t now_ms,
                                    std::uint64_t timeout_ns, DedupCounters& counters) noexcept;
  // Records the seq a reservation claimed, before its slot is committed, so a
  // publisher that dies after committing still makes its key look published.
  void set_claimed(std::uint32_t entry, std::uint64_t seq) noexcept;
  void commit(std::uint32_t entry, std::uint64_t seq) noexcept;
  void release(std::uint32_t entry) noexcept;

  // Process-once side (no reservations: a committed record or nothing).
  [[nodiscard]] bool contains(Fingerprint key, std::uint64_t now_ms, DedupCounters& counters) noexcept;
  // False if the window is full of live entries and the policy is refuse.
  [[nodiscard]] bool insert(Fingerprint key, std::uint64_t seq, std::uint64_t now_ms) noexcept;

  struct Load {
    std::uint64_t live = 0;      // committed within the window, or reserved
    std::uint64_t entries = 0;
  };
  [[nodiscard]] Load load(std::uint64_t now_ms) const noexcept;

  // Bloom filter alone, exposed for tests and benchmarks.
  [[nodiscard]] bool bloom_may_contain(Fingerprint key, std::uint64_t now_ms) const noexcept;
  void bloom_insert(Fingerprint key, std::uint64_t now_ms) noexcept;

 private:
  enum class Class : std::uint8_t { reusable, live_reserved, live_committed, busy, other };
  struct Seen {
    Class cls = Class::other;
    bool match = false;      // key equals ours
    std::uint64_t state = 0;
    std::uint64_t seq = 0;   // live_committed: its seq
    std::uint64_t time = 0;
  };
  [[nodiscard]] Seen examine(std::uint32_t index, Fingerprint key, std::uint64_t now_ms, bool check_liveness) const noexcept;
  [[nodiscard]] bool owner_alive(std::uint32_t owner) const noexcept;
  [[nodiscard]] bool claimed_and_committed(Fingerprint key, std::uint64_t value) const noexcept;
  [[nodiscard]] std::int64_t pick_reusable(std::uint32_t base, Fingerprint key, std::uint64_t now_ms,
                                           DedupCounters& counters) noexcept;
  bool claim(std::uint32_t index, std::uint64_t observed, Fingerprint key, std::uint64_t final_state,
             std::uint64_t value) noexcept;
  void ensure_rotated(std::uint64_t epoch) noexcept;
  [[nodiscard]] std::atomic<std::uint64_t>* block(std::uint32_t generation, Fingerprint key) const noexcept;

  const QueueState* q_;
  DedupEntry* entries_ = nullptr;
  std::uint64_t mask_ = 0;
  std::atomic<std::uint64_t>* bloom_ = nullptr;  // 4 × 64 bits per block (see bloom_mask64); null when off
  std::uint32_t bloom_blocks_ = 0;               // per generation; 0: no filter (QueueOptions::dedup_bloom)
  std::uint64_t window_ms_ = 0;
};

}  // namespace ackring::detail
