// Stats: relaxed reads of counters and cursors, plus a scan of lease words
// for in-flight counts. Never writes; takes no lock.
#include <cstring>

#include "ackring/queue.hpp"
#include "clock.hpp"
#include "dedup.hpp"
#include "group.hpp"
#include "liveness.hpp"
#include "queue_state.hpp"

namespace ackring {

using namespace detail;

QueueStats Queue::stats() const {
  const QueueState& q = *state_;
  const auto& h = q.header();
  const std::uint64_t now = coarse_monotonic_ms();
  QueueStats s;
  s.path = q.path.string();
  s.capacity = q.layout.capacity;
  s.max_message_size = q.layout.max_message_size;
  s.tail = h.tail.load(std::memory_order_relaxed);
  s.aborted = h.aborted.load(std::memory_order_relaxed);
  s.published = h.retired_published.load(std::memory_order_relaxed);
  DedupTable table(q);
  s.dedup.enabled = table.enabled();
  if (table.enabled()) {
    const auto load = table.load(now);
    s.dedup.window_ms = q.layout.dedup_window_ms;
    s.dedup.entries = load.entries;
    s.dedup.live = load.live;
    s.dedup.load_factor = static_cast<double>(load.live) / static_cast<double>(load.entries);
  }
  s.dedup.hits = h.retired_dedup_hits.load(std::memory_order_relaxed);
  s.dedup.bloom_negatives = h.retired_bloom_negatives.load(std::memory_order_relaxed);
  s.dedup.expired_reused = h.retired_expired_reused.load(std::memory_order_relaxed);
  s.dedup.evicted = h.dedup_evicted.load(std::memory_order_relaxed);
  s.dedup.full = h.dedup_full.load(std::memory_order_relaxed);
  for (std::uint32_t i = 0; i < q.layout.max_producers; ++i) {
    const auto& e = q.producer(i);
    const std::uint32_t pid = e.pid.load(std::memory_order_relaxed);
    const std::uint64_t published = e.published.load(std::memory_order_relaxed);
    s.published += published;
    s.dedup.hits += e.dedup_hits.load(std::memory_order_relaxed);
    s.dedup.bloom_negatives += e.bloom_negatives.load(std::memory_order_relaxed);
    s.dedup.expired_reused += e.expired_reused.load(std::memory_order_relaxed);
    if (pid == 0) continue;
    s.producers.push_back({i, static_cast<pid_t>(pid),
                           is_alive(static_cast<pid_t>(pid), e.start_time.load(std::memory_order_relaxed)),
                           published});
  }
  s.min_floor = scan_min_floor(q, s.tail);
  s.depth = s.tail > s.min_floor ? s.tail - s.min_floor : 0;
  if (q.layout.durability != 0) {
    s.durable_seq = q.header().durable_seq.load(std::memory_order_acquire);
    s.journal_pid = q.header().journal_pid.load(std::memory_order_relaxed);
    s.journal_flushes = q.header().journal_flushes.load(std::memory_order_relaxed);
  } else {
    s.durable_seq = s.tail;
  }
  for (std::uint32_t g = 0; g < q.layout.max_groups; ++g) {
    const auto& G = q.group(g);
    if (G.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(GroupState::active)) continue;
    GroupStats gs;
    gs.name.assign(G.name, strnlen(G.name, sizeof G.name));
    gs.overflow = static_cast<OverflowPolicy>(G.overflow);
    gs.floor = G.floor.load(std::memory_order_relaxed);
    gs.next = G.next.load(std::memory_order_relaxed);
    gs.lag = s.tail > gs.floor ? s.tail - gs.floor : 0;
    gs.dead_lettered = G.dead_lettered.load(std::memory_order_relaxed);
    gs.dropped = G.dropped.load(std::memory_order_relaxed);
    gs.aborted_skipped = G.aborted_skipped.load(std::memory_order_relaxed);
    gs.corrupt_skipped = G.corrupt_skipped.load(std::memory_order_relaxed);
    gs.delivered = G.retired_delivered.load(std::memory_order_relaxed);
    gs.acked = G.retired_acked.load(std::memory_order_relaxed);
    gs.redelivered = G.retired_redelivered.load(std::memory_order_relaxed);
    gs.nacked = G.retired_nacked.load(std::memory_order_relaxed);
    std::vector<std::uint64_t> held(q.layout.max_members + 1, 0);
    for (std::uint64_t seq = gs.floor; seq < gs.next && seq - gs.floor < q.layout.capacity; ++seq) {
      const LeaseWord lw = LeaseWord::decode(q.lease(g, seq).load(std::memory_order_relaxed));
      if (lw.state != LeaseState::leased || lw.generation != q.generation(seq)) continue;
      ++gs.in_flight;
      if (lw.owner < q.layout.max_members) ++held[lw.owner];
    }
    for (std::uint32_t m = 0; m < q.layout.max_members; ++m) {
      const auto& e = q.member(g, m);
      const std::uint32_t pid = e.pid.load(std::memory_order_relaxed);
      MemberStats ms;
      ms.delivered = e.delivered.load(std::memory_order_relaxed);
      ms.acked = e.acked.load(std::memory_order_relaxed);
      gs.delivered += ms.delivered;
      gs.acked += ms.acked;
      gs.redelivered += e.redelivered.load(std::memory_order_relaxed);
      gs.nacked += e.nacked.load(std::memory_order_relaxed);
      if (pid == 0 || is_reclaiming(pid)) continue;
      ms.index = m;
      ms.pid = static_cast<pid_t>(pid);
      ms.alive = is_alive(ms.pid, e.start_time.load(std::memory_order_relaxed));
      ms.in_flight = held[m];
      const std::uint64_t last = e.last_active_ms.load(std::memory_order_relaxed);
      ms.idle_ms = now > last ? now - last : 0;
      gs.members.push_back(ms);
    }
    s.groups.push_back(std::move(gs));
  }
  return s;
}

}  // namespace ackring
