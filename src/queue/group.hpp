// Consumer groups: creation and removal (under the queue's admin lock),
// member slots (lock-free), dead-member reclamation, and the floor that
// tells producers which slots they may reuse.
#pragma once

#include <cstdint>
#include <mutex>
#include <string_view>

#include "ackring/options.hpp"
#include "shm/queue_state.hpp"

namespace ackring::detail {

inline constexpr std::uint32_t kNoGroup = 0xffffffffu;

// Serialises group creation and removal across threads and processes: an
// in-process mutex plus flock(2) on the queue file. flock, not fcntl locks
// (boost::interprocess::file_lock), because fcntl locks vanish when the
// process closes *any* descriptor of the file, and do not exclude threads.
// The kernel drops the lock when its holder dies.
class AdminLock {
 public:
  explicit AdminLock(const QueueState& q);
  ~AdminLock();
  AdminLock(const AdminLock&) = delete;
  AdminLock& operator=(const AdminLock&) = delete;

 private:
  std::unique_lock<std::mutex> in_process_;
  int fd_ = -1;
};

// Index of the active group called `name`, or kNoGroup.
[[nodiscard]] std::uint32_t find_group(const QueueState& q, std::string_view name) noexcept;
// Creates a group; throws ackring::Error (already_exists, invalid_argument,
// resource_exhausted). Returns its index.
std::uint32_t create_group(const QueueState& q, std::string_view name, const GroupOptions& options);
bool remove_group(const QueueState& q, std::string_view name);

// Takes a free member slot of group g for this process; reclaims slots of
// dead processes if none is free. Throws resource_exhausted.
std::uint32_t join_group(const QueueState& q, std::uint32_t g);
// Releases member m's leases (they are redelivered at once if it left, after
// the group's redelivery back-off if it died), folds its counters into the
// group's, and frees the slot.
void leave_group(const QueueState& q, std::uint32_t g, std::uint32_t m, bool died = false) noexcept;
// How long a message given back after its `deliveries`-th delivery waits
// before group g may deliver it again: the group's redelivery back-off
// (GroupOptions::redelivery), spread by jitter drawn from `jitter_state`.
// 0 without a policy, and 0 for a message at max_deliveries: its next take
// dead-letters it, so there is no point waiting.
[[nodiscard]] std::uint64_t redelivery_delay_ms(const QueueState& q, std::uint32_t g, std::uint32_t deliveries,
                                                std::uint64_t& jitter_state) noexcept;
// Changes group g's redelivery policy (GroupOptions::redelivery); members
// apply it from their next redelivery. Throws invalid_argument.
void set_group_redelivery(const QueueState& q, std::uint32_t g, const RedeliveryPolicy& policy);
// Frees the slots of members whose process is dead. Returns how many.
std::uint32_t reclaim_dead_members(const QueueState& q, std::uint32_t g) noexcept;

// Moves group g's floor over the contiguous run of settled lease words after
// it (one CAS), and wakes producers waiting for space. Returns true if it moved.
bool advance_group_floor(const QueueState& q, std::uint32_t g) noexcept;
// The same for a consumer that holds its group's entry and lease words.
bool advance_group_floor(const QueueState& q, GroupEntry& G, std::atomic<std::uint64_t>* leases) noexcept;

// The head seq `seq` has been claimed but not committed since
// `stalled_since_ms` (when the tail was `stalled_tail`). Aborts the
// uncommitted claims of [seq, stalled_tail) that no live producer may still
// store into (their claimers died: a death inside a batch leaves several),
// and after claim_timeout all of them. Used by consumers and by the journal
// thread (a queue may have no consumer). Returns how many.
std::uint64_t abort_stalled_claims(const QueueState& q, std::uint64_t seq, std::uint64_t now_ms,
                                   std::uint64_t stalled_since_ms, std::uint64_t stalled_tail) noexcept;

// The lowest seq a live producer may still store into, if below `bound`
// (else `bound`): 1 less than the lowest in-flight word of a live producer.
// A producer stalled anywhere inside a publish — even one whose claim a
// consumer aborted — keeps its in-flight word, so no slot it may still write
// is handed to another producer (invariant 1), and no claim of it below the
// word is taken for dead. A dead producer stores nothing more: its word is
// ignored (pid + start time; a process is dead when none of its threads runs).
std::uint64_t lowest_live_in_flight(const QueueState& q, std::uint64_t bound) noexcept;

// Process-once lookups of group g that the bloom filter answered alone: its
// members' counters and those of its freed members (for the queue's dedup
// statistics; folded into the header's when the group is removed).
std::uint64_t group_bloom_negatives(const QueueState& q, std::uint32_t g) noexcept;

// Aborts the claim of `seq` by one CAS from `observed`, the slot state word
// it was judged by (free(seq) or a state of an earlier lap). The slot
// leaves its previous lap here, so a keyed message committed there whose
// publisher died before recording its key has the key recorded first
// (remember_key_before_reuse, dedup.hpp). True if this CAS aborted it.
bool abort_claim(const QueueState& q, std::uint64_t seq, std::uint64_t observed) noexcept;

// Lowers the group's expired-lease hint to `deadline_ms` if it is earlier.
inline void lower_deadline_hint(GroupEntry& G, std::uint64_t deadline_ms) noexcept {
  auto& hint = G.deadline_hint_ms;
  std::uint64_t cur = hint.load(std::memory_order_relaxed);
  // relaxed: the hint only decides when to scan; the scan reads lease words with acquire.
  while (deadline_ms < cur && !hint.compare_exchange_weak(cur, deadline_ms, std::memory_order_relaxed)) {
  }
}
inline void lower_deadline_hint(const QueueState& q, std::uint32_t g, std::uint64_t deadline_ms) noexcept {
  lower_deadline_hint(q.group(g), deadline_ms);
}

// Moves a group's next and floor up to `target`, settling every unsettled
// message below with `reason` (leases held on them are lost). Used for the
// drop overflow policy and for purge. Returns how many it settled.
std::uint64_t push_group_forward(const QueueState& q, std::uint32_t g, std::uint64_t target,
                                 SettleReason reason) noexcept;

}  // namespace ackring::detail
