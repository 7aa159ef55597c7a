// QueueState: one process's view of a mapped queue file. Shared (via
// shared_ptr) by the Queue and every Producer/Consumer made from it, so the
// mapping outlives all of them. Accessors compute addresses from the
// validated layout; indices come from this process, or are masked, so no
// accessor can reach outside the mapping.
#pragma once

#include <boost/interprocess/mapped_region.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "shm/layout.hpp"

namespace ackring::detail {

// The journal thread of a durable queue (durability.cpp); stopped and joined
// by its deleter, which QueueState's destructor runs first.
struct DurabilityAgent;
struct DurabilityAgentDeleter {
  void operator()(DurabilityAgent* agent) const noexcept;
};

struct QueueState {
  std::filesystem::path path;
  boost::interprocess::mapped_region region;
  std::byte* base = nullptr;
  Layout layout{};  // private copy, validated at open: the file cannot change it under us
  std::uint64_t mask = 0;

  [[nodiscard]] FileHeader& header() const noexcept { return *reinterpret_cast<FileHeader*>(base); }

  [[nodiscard]] ProducerEntry& producer(std::uint32_t i) const noexcept {
    return reinterpret_cast<ProducerEntry*>(base + layout.producers_offset)[i];
  }
  [[nodiscard]] GroupEntry& group(std::uint32_t g) const noexcept {
    return *reinterpret_cast<GroupEntry*>(base + layout.groups_offset + std::size_t{g} * layout.group_stride);
  }
  [[nodiscard]] MemberEntry& member(std::uint32_t g, std::uint32_t m) const noexcept {
    return reinterpret_cast<MemberEntry*>(reinterpret_cast<std::byte*>(&group(g)) + sizeof(GroupEntry))[m];
  }
  [[nodiscard]] std::atomic<std::uint64_t>& lease(std::uint32_t g, std::uint64_t seq) const noexcept {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(
        base + layout.leases_offset + std::size_t{g} * layout.capacity * 8)[seq & mask];
  }
  [[nodiscard]] SlotHeader& slot(std::uint64_t seq) const noexcept {
    return *reinterpret_cast<SlotHeader*>(base + layout.slots_offset + (seq & mask) * layout.slot_size);
  }
  [[nodiscard]] std::byte* payload(std::uint64_t seq) const noexcept {
    return reinterpret_cast<std::byte*>(&slot(seq)) + sizeof(SlotHeader);
  }
  [[nodiscard]] std::uint32_t generation(std::uint64_t seq) const noexcept {
    return generation_of(seq, layout.capacity_log2);
  }

  // Last member: destroyed first, so the journal thread stops before the
  // mapping goes away. Null unless durability is async or sync.
  std::unique_ptr<DurabilityAgent, DurabilityAgentDeleter> durability;
};

// Folds a producer entry's counters into the queue's totals and zeroes
// them: done when the entry is freed or taken over from a dead producer.
inline void retire_producer_counters(const QueueState& q, ProducerEntry& e) noexcept {
  auto& h = q.header();
  // relaxed: statistics only.
  h.retired_published.fetch_add(e.published.exchange(0, std::memory_order_relaxed), std::memory_order_relaxed);
  h.retired_dedup_hits.fetch_add(e.dedup_hits.exchange(0, std::memory_order_relaxed), std::memory_order_relaxed);
  h.retired_keyed_published.fetch_add(e.keyed_published.exchange(0, std::memory_order_relaxed),
                                      std::memory_order_relaxed);
  h.retired_bloom_negatives.fetch_add(e.bloom_negatives.exchange(0, std::memory_order_relaxed),
                                      std::memory_order_relaxed);
  h.retired_expired_reused.fetch_add(e.expired_reused.exchange(0, std::memory_order_relaxed),
                                     std::memory_order_relaxed);
}

// For a reader that copied seq's slot without holding a lease (peek, verify,
// stats, dedup's slot check), after it saw the slot committed(seq) (acquire):
// true if the copy is seq's message. A producer writes a slot of seq +
// capacity or later only after its tail CAS past seq + capacity, and its
// stores into the slot follow a release fence; a copy that saw one of them
// sees, after the acquire fence here, the tail past seq + capacity. (The slot
// word itself changes only at the commit, after the payload: protocol.md §1.)
[[nodiscard]] inline bool copy_not_overwritten(const QueueState& q, std::uint64_t seq) noexcept {
  std::atomic_thread_fence(std::memory_order_acquire);  // the copy happens before the tail load
  // relaxed: ordered after the copy by the fence above.
  return q.header().tail.load(std::memory_order_relaxed) <= seq + q.layout.capacity;
}

// Layout arithmetic shared by create and open: fills offsets and sizes from
// the parameters. Returns false if they overflow or exceed limits.
[[nodiscard]] bool compute_layout(Layout& layout) noexcept;

// The lowest floor over live groups (block and drop alike), or `tail` if
// there are none. Reads each group's floor with acquire.
[[nodiscard]] std::uint64_t scan_min_floor(const QueueState& q, std::uint64_t tail) noexcept;

// Recomputes the shared floor word for a producer that finds the ring full,
// and makes room: drop-policy groups that hold the floor are pushed forward
// (counting what they miss), and with help_settled_runs the floor of every
// group that holds us back is first moved over the settled run after it (a
// member that died between its settle and its floor CAS leaves one).
// Returns the new min floor.
std::uint64_t refresh_floor(const QueueState& q, std::uint64_t want_floor, bool help_settled_runs) noexcept;

}  // namespace ackring::detail
