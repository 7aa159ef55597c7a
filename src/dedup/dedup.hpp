// The dedup table: a split-block bloom filter in front of an open-addressing
// hash table of 128-bit XXH3 fingerprints -> (seq, time), both in the queue
// file. Used by idempotent publish (keys) and by process-once (per-group
// processed keys). docs/dedup.md argues the protocol.
//
// Hash table: a key's entries live in a window of kDedupProbe consecutive
// entries starting at (fp.lo mod entries); every operation scans the whole
// window, so reusable entries can be taken anywhere in it. docs/dedup.md
// argues the protocol step by step, for a process that stalls or dies.
//
//   DedupEntry (32 bytes)
//   0        8        16       24       32
//   ┌────────┬────────┬────────┬────────┐
//   │ state  │ key lo │ key hi │ value  │
//   └────────┴────────┴────────┴────────┘
//   state (kind in bits 63-62):
//     empty      0
//     busy       1 | P (bit 61) | P ? owner (bits 47-0) : writer pid (bits 21-0)   being re-keyed
//     reserved   2 | owner (bits 47-0)                                             publish in progress
//     committed  3 | tag (bits 61-40) | commit time, coarse ms (bits 39-0)
//   owner: producer table index (bits 47-32) + its full 32-bit incarnation
//          (ProducerEntry::incarnation): the registration that reserved
//   value: 1 + the seq the reservation claimed (0: none yet); committed: 1 + seq
//   tag:   low bits of the committer's owner or pid (only makes ABA rarer)
//
// Bloom filter: two generations of 256-bit blocks (4 × 64-bit words); a key
// sets 8 bits in one word of its block (one atomic OR). Generation (epoch & 1)
// takes the inserts of epoch = time / window and is cleared when its epoch
// begins, so a key inside the window always has its bits in one of the two.
// With QueueOptions::dedup_bloom off the file has no filter (bloom_blocks 0):
// every key "may be present" and every lookup probes the table. Only
// process-once (insert, contains) and recovery use the filter: a keyed
// publish scans its key's window twice whatever a filter would answer, and
// the lookup scan costs less than a filter lookup and insert (docs/dedup.md §6).
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "ackring/options.hpp"
#include "shm/queue_state.hpp"

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
// if it had one, else its seq; namespaced by the group (group_seed =
// processed_key_seed(group name), hashed once per Consumer) so groups never collide.
[[nodiscard]] std::uint64_t processed_key_seed(std::string_view group) noexcept;
[[nodiscard]] Fingerprint processed_key(Fingerprint message_key, bool has_key, std::uint64_t seq,
                                        std::uint64_t group_seed) noexcept;

// Owner of a reservation: a producer table entry and the full incarnation of
// the registration that holds it (a re-registration of the entry, however
// many, never names the same owner again until the 32-bit counter wraps).
[[nodiscard]] constexpr std::uint64_t dedup_owner(std::uint32_t producer_index, std::uint32_t incarnation) noexcept {
  return (std::uint64_t{producer_index & 0xffff} << 32) | incarnation;
}
[[nodiscard]] constexpr std::uint32_t dedup_owner_index(std::uint64_t owner) noexcept {
  return static_cast<std::uint32_t>((owner >> 32) & 0xffff);
}
[[nodiscard]] constexpr std::uint32_t dedup_owner_incarnation(std::uint64_t owner) noexcept {
  return static_cast<std::uint32_t>(owner);
}
// Kind of an entry's state word (0 empty, 1 busy, 2 reserved, 3 committed) and,
// for a reserved one, its owner: for tests and tools reading the table raw.
[[nodiscard]] constexpr std::uint64_t dedup_kind(std::uint64_t state) noexcept { return state >> 62; }
[[nodiscard]] constexpr std::uint64_t dedup_reserved_owner(std::uint64_t state) noexcept {
  return state & ((1ull << 48) - 1);
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

// Called by every process about to move a slot out of `committed` (a
// producer about to write a later lap, before its first store; a consumer's
// abort of a later claim), with the state word it will CAS from. If that word is committed(s)
// and the slot still carries kSlotKeyUnrecorded (its keyed publisher did not
// get to commit the dedup entry), the entry is committed first: once the
// slot is reused, the key's fate could no longer be read from it
// (docs/dedup.md, "the recorded slot is reused").
void remember_unrecorded_key(const QueueState& q, const SlotHeader& slot, std::uint64_t committed_seq) noexcept;
inline void remember_key_before_reuse(const QueueState& q, const SlotHeader& slot, std::uint64_t state_word) noexcept {
  const SlotWord sw = SlotWord::decode(state_word);
  if (sw.state != SlotState::committed) return;
  // relaxed: our caller loaded the state word with acquire; the flag was
  // cleared by the publisher before its in-flight word (release), which is
  // what let anyone claim this slot's next lap. A stale set flag only costs
  // a scan that finds the entry committed already.
  constexpr std::uint32_t kUnrecordedKey = kSlotHasKey | kSlotKeyUnrecorded;
  if ((relaxed_load(slot.flags) & kUnrecordedKey) == kUnrecordedKey) [[unlikely]]
    remember_unrecorded_key(q, slot, sw.seq);
}

class DedupTable {
 public:
  explicit DedupTable(const QueueState& q) noexcept;
  [[nodiscard]] bool enabled() const noexcept { return entries_ != nullptr; }

  // Publish side. Returns within about `timeout_ns` whatever the table holds
  // (outcome timeout): waits (spinning) for a racing publisher of the same
  // key, and for a stalled one, only that long.
  //
  // set_claimed, commit and release act on the reservation that this
  // object's last reserve() made (for `owner`; producer.cpp uses a table for
  // one keyed publish at a time: publish_keyed_batch reserves the next key
  // only once the last publish is over), and check that the entry still
  // holds it: each returns false if it does not (never expected while the
  // owner lives: a live owner's reservation is never taken; see docs/dedup.md).
  [[nodiscard]] Reservation reserve(Fingerprint key, std::uint64_t owner, std::uint64_t now_ms,
                                    std::uint64_t timeout_ns, DedupCounters& counters) noexcept;
  // Records the seq the reservation claimed, before its slot is committed, so
  // that a publisher that dies after committing still makes its key look
  // published. Called again with the new seq after a claim was aborted.
  bool set_claimed(std::uint32_t entry, std::uint64_t seq) noexcept;
  // The slot of `seq` is committed: the entry becomes a committed record
  // (value 1 + seq, time now). True also if someone who found the slot
  // committed did it first; false if the entry is not this reservation.
  bool commit(std::uint32_t entry, std::uint64_t seq) noexcept;
  // Gives the reservation up (its seq, if any, was not committed). If the
  // recorded seq's slot is in fact committed with the key, the entry is
  // committed instead (the key must not be forgotten) and false returned.
  bool release(std::uint32_t entry) noexcept;

  // Slot `seq` is committed with `key` and about to leave that state for a
  // later lap (remember_key_before_reuse). Makes a reservation of `key`'s window
  // that recorded `seq` a committed record, while the slot still proves the
  // publish: its publisher died between the slot commit and the entry commit.
  void remember_published(Fingerprint key, std::uint64_t seq, std::uint64_t now_ms) noexcept;

  // Process-once side (no reservations: a committed record or nothing).
  [[nodiscard]] bool contains(Fingerprint key, std::uint64_t now_ms, DedupCounters& counters) noexcept;
  // False if the window is full of live entries and the policy is refuse.
  [[nodiscard]] bool insert(Fingerprint key, std::uint64_t seq, std::uint64_t now_ms) noexcept;

  struct Load {
    std::uint64_t live = 0;      // committed within the window, or reserved
    std::uint64_t entries = 0;
  };
  [[nodiscard]] Load load(std::uint64_t now_ms) const noexcept;

  // Asks for the lines a lookup or insert of `key` reads (its bloom blocks
  // and its window) without waiting for them: a caller about to handle many
  // keys issues them all first, so their cache misses overlap.
  void prefetch(Fingerprint key) const noexcept;
  // The same for a keyed publish (reserve), which reads the window only.
  void prefetch_for_publish(Fingerprint key) const noexcept;

  // Bloom filter alone, exposed for tests and benchmarks.
  [[nodiscard]] bool bloom_may_contain(Fingerprint key) const noexcept;
  void bloom_insert(Fingerprint key, std::uint64_t now_ms) noexcept;

 private:
  enum class Class : std::uint8_t { reusable, live_reserved, live_committed, busy, other };
  struct Seen {
    Class cls = Class::other;
    bool match = false;      // key equals ours
    std::uint64_t state = 0;
    std::uint64_t seq = 0;   // live_committed: its seq
    std::uint64_t time = 0;  // committed: its time (a reservation found committed: now)
  };
  struct Pick {
    std::int64_t index = -1;  // -1: none
    std::uint64_t observed = 0;  // the state word judged reusable: the claim CASes from exactly it
  };
  // Reads entry `index` (a seqlock read) and classifies it for `key`. With
  // check_liveness, or for a reservation of `key` itself, the owner of a
  // reservation (and the writer of a busy entry) is looked up in /proc.
  [[nodiscard]] Seen examine(std::uint32_t index, Fingerprint key, std::uint64_t now_ms, bool check_liveness) noexcept;
  [[nodiscard]] bool owner_alive(std::uint64_t owner) const noexcept;
  [[nodiscard]] bool busy_writer_alive(std::uint64_t state) const noexcept;
  [[nodiscard]] bool slot_committed_with(Fingerprint key, std::uint64_t value) const noexcept;
  bool help_commit(std::uint32_t index, std::uint64_t reserved_state, std::uint64_t now_ms) noexcept;
  [[nodiscard]] Pick pick_reusable(std::uint32_t base, Fingerprint key, std::uint64_t now_ms,
                                   DedupCounters& counters) noexcept;
  bool claim(std::uint32_t index, std::uint64_t observed, Fingerprint key, std::uint64_t busy_state,
             std::uint64_t final_state, std::uint64_t value) noexcept;
  void ensure_rotated(std::uint64_t epoch) noexcept;
  void clear_generation(std::uint64_t mine) noexcept;
  [[nodiscard]] std::atomic<std::uint64_t>* block(std::uint32_t generation, Fingerprint key) const noexcept;

  const QueueState* q_;
  DedupEntry* entries_ = nullptr;
  std::uint64_t mask_ = 0;
  std::atomic<std::uint64_t>* bloom_ = nullptr;  // 4 × 64 bits per block (see bloom_mask); null when off
  std::uint32_t bloom_blocks_ = 0;               // per generation; 0: no filter (QueueOptions::dedup_bloom)
  std::uint64_t window_ms_ = 0;
  // The reservation the last reserve() made: its state word (0: none) and time.
  std::uint64_t mine_ = 0;
  std::uint64_t mine_ms_ = 0;
};

}  // namespace ackring::detail
