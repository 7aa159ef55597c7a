// Durability: the queue's side of the journal (docs/journal.md, "Integration").
//
// A queue created with durability async or sync has a journal in
// <journal dir>/<queue file name>/. Every process that maps such a queue
// runs one journal thread (a DurabilityAgent owned by its QueueState); the
// thread that holds the journal lock follows the ring from the journal's
// durable end to the tail, appends every committed slot (message) and every
// aborted one (skip), flushes (one write + fdatasync per batch: group
// commit) and publishes the durable end in FileHeader::durable_seq. The
// others retry the lock every 100 ms and take over when its holder dies.
// In sync mode a publishing thread of the holder's process does the same
// for its own message instead of waking the journal thread (wait_durable;
// docs/journal.md, "Publishers lead in the holder's process").
//
// Hooks for the hot paths (the two functions below):
//   producer, sync mode: after the commit, before returning ok:
//       if (Status s = wait_durable(q, seq, deadline_ns); s != Status::ok) return s;
//   consumer, take_new_batch: take seq s only while s < durable_bound(q).
// Slot reuse (invariant 6) is enforced in scan_min_floor (group.cpp): the
// producers' floor is min(every group's floor, durable_seq).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "ackring/status.hpp"
#include "shm/queue_state.hpp"

namespace ackring::detail {

inline constexpr std::uint32_t kDurabilityNone = 0;
inline constexpr std::uint32_t kDurabilityAsync = 1;
inline constexpr std::uint32_t kDurabilitySync = 2;

// Consumers may take seq s only if s < durable_bound(q): in sync mode the
// durable end of the journal (acquire), otherwise no bound (UINT64_MAX).
[[nodiscard]] inline std::uint64_t durable_bound(const QueueState& q) noexcept {
  if (q.layout.durability != kDurabilitySync) return ~0ull;
  // acquire: pairs with the journal thread's release CAS (nothing else is published by it).
  return q.header().durable_seq.load(std::memory_order_acquire);
}

// Sync mode with a journal thread in this process: a producer need not wake
// the commit futex after its commit, because wait_durable does (or journals
// the message itself, and publish_durable wakes the consumers). In sync mode
// nothing but the journal thread can act on a commit before it is durable.
[[nodiscard]] inline bool commit_wake_deferred(const QueueState& q) noexcept {
  return q.layout.durability == kDurabilitySync && q.durability != nullptr;
}

// Producers in sync mode: returns ok once durable_seq > seq, timeout when
// the monotonic clock reaches deadline_ns first. ok at once in none/async
// modes. In the process that holds the journal it first tries to write the
// journal up to seq itself (a flush it starts is not cut short by the
// deadline); otherwise, or if that cannot be done now, it wakes the journal
// thread, spins briefly, then sleeps on the durability futex (wait.hpp protocol).
[[nodiscard]] Status wait_durable(const QueueState& q, std::uint64_t seq, std::uint64_t deadline_ns) noexcept;

// ---- cold path ---------------------------------------------------------------
// The journal directory a QueueOptions::journal_dir names: itself if not
// empty, else $ACKRING_JOURNAL_DIR, else /var/tmp/ackring.
[[nodiscard]] std::string resolve_journal_dir(const std::string& configured);
// Non-zero identity of a queue for the journal's segment headers.
[[nodiscard]] std::uint64_t make_journal_id(std::string_view file_name, std::uint64_t created_ns) noexcept;
// True if `dir` exists and holds a journal segment.
[[nodiscard]] bool journal_has_segments(const std::filesystem::path& dir);
// The journal directory stored in the header (QueueOptions::journal_dir as
// resolved at creation); empty when durability is none.
[[nodiscard]] std::string journal_root(const QueueState& q);
// journal_root(q)/<queue file name>; empty when durability is none.
[[nodiscard]] std::filesystem::path journal_directory(const QueueState& q);

// Starts the journal thread of a queue opened or created by this process
// (no-op for durability none, or when disabled below).
void start_durability(QueueState& q);
// Tests: a process that must fork without a journal thread turns them off.
void set_durability_threads_enabled(bool enabled) noexcept;
// Tests: the sync journal thread's spin before it sleeps, in ns (0: none),
// instead of $ACKRING_JOURNAL_SPIN_US or the default 250 µs.
void set_journal_spin_ns(std::uint64_t ns) noexcept;

// Raises durable_seq to `end` (never lowers it) and wakes who waits for it.
void publish_durable(const QueueState& q, std::uint64_t end) noexcept;

}  // namespace ackring::detail
