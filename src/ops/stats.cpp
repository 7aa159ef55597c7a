// Stats: relaxed reads of counters and cursors, plus a scan of lease words
// for in-flight counts. Never writes; takes no lock.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "ackring/queue.hpp"
#include "shm/clock.hpp"
#include "dedup/dedup.hpp"
#include "queue/group.hpp"
#include "shm/liveness.hpp"
#include "shm/queue_state.hpp"

namespace ackring {

using namespace detail;

namespace {

struct Oldest {
  std::uint64_t seq = 0;
  std::uint64_t publish_ns = 0;  // 0: nothing pending
};

// The first seq of [floor, tail) that group g has not settled and that holds
// a committed message meant for it. Reads the slot like a seqlock reader:
// the publish time counts only if the slot was not reused meanwhile.
Oldest oldest_unsettled(const QueueState& q, std::uint32_t g, std::uint64_t floor, std::uint64_t next,
                        std::uint64_t tail) noexcept {
  const auto& G = q.group(g);
  const std::uint32_t incarnation = G.incarnation.load(std::memory_order_relaxed);
  for (std::uint64_t seq = floor; seq < tail && seq - floor < q.layout.capacity; ++seq) {
    if (seq < next) {
      // acquire: pairs with the settling CAS (release); other seqs are read as a seqlock reader below.
      if (is_settled_for(q.lease(g, seq).load(std::memory_order_acquire), seq)) continue;
    }
    const SlotHeader& slot = q.slot(seq);
    // acquire: pairs with the commit CAS; the fields read below are then those of this seq (re-checked).
    const SlotWord sw = SlotWord::decode(slot.state.load(std::memory_order_acquire));
    if (sw.seq != (seq & kSeqMask) || sw.state != SlotState::committed) continue;  // uncommitted, aborted or lapped
    const std::uint32_t flags = relaxed_load(slot.flags);
    const std::uint64_t published = relaxed_load(slot.publish_time_ns);
    if (!copy_not_overwritten(q, seq)) continue;
    if (seq >= next && !slot_is_for(flags, g, incarnation)) continue;  // a replay copy for another group
    return {seq, published};
  }
  return {};
}

// The q-quantile of a bucketed histogram (AckLatency), interpolated linearly
// inside the bucket it falls in; the last bucket has no upper bound, so a
// quantile there is reported as its lower bound.
double latency_quantile(const AckLatency& h, double q) noexcept {
  if (h.count == 0) return 0;
  const double rank = q * static_cast<double>(h.count);
  double below = 0;
  for (std::size_t b = 0; b < AckLatency::kBuckets; ++b) {
    const auto n = static_cast<double>(h.buckets[b]);
    if (n == 0 || below + n < rank) {
      below += n;
      continue;
    }
    const auto lo = static_cast<double>(AckLatency::bucket_floor_ms(b));
    if (b + 1 == AckLatency::kBuckets) return lo;
    const auto hi = static_cast<double>(AckLatency::bucket_floor_ms(b + 1));
    return lo + (hi - lo) * ((rank - below) / n);
  }
  return static_cast<double>(AckLatency::bucket_floor_ms(AckLatency::kBuckets - 1));
}

static_assert(AckLatency::kBuckets == kLatencyBuckets);
static_assert(AckLatency::bucket_floor_ms(5) == latency_bucket_floor(5));

void add_causes(RedeliveriesByCause& to, const std::atomic<std::uint64_t> (&from)[kRedeliveryCauses]) noexcept {
  to.expiry += from[static_cast<std::uint8_t>(RedeliveryCause::expiry)].load(std::memory_order_relaxed);
  to.death += from[static_cast<std::uint8_t>(RedeliveryCause::death)].load(std::memory_order_relaxed);
  to.nack += from[static_cast<std::uint8_t>(RedeliveryCause::nack)].load(std::memory_order_relaxed);
  to.released += from[static_cast<std::uint8_t>(RedeliveryCause::released)].load(std::memory_order_relaxed);
}

void add_latency(AckLatency& to, const std::atomic<std::uint64_t> (&from)[kLatencyBuckets],
                 const std::atomic<std::uint64_t>& sum_ms) noexcept {
  to.sum_ms += sum_ms.load(std::memory_order_relaxed);
  for (std::size_t b = 0; b < AckLatency::kBuckets; ++b) {
    const std::uint64_t n = from[b].load(std::memory_order_relaxed);
    to.buckets[b] += n;
    to.count += n;
  }
}

// Queue-level figures: geometry, the header's cursors and retired counters.
void read_queue_counters(const QueueState& q, QueueStats& s) {
  const auto& h = q.header();
  s.path = q.path.string();
  s.capacity = q.layout.capacity;
  s.max_message_size = q.layout.max_message_size;
  s.tail = h.tail.load(std::memory_order_relaxed);
  s.aborted = h.aborted.load(std::memory_order_relaxed);
  s.published = h.retired_published.load(std::memory_order_relaxed);
}

// The dedup table's load and the counters retired into the header; the live
// producers' shares are added by add_producers.
void read_dedup_stats(const QueueState& q, std::uint64_t now, DedupStats& d) {
  const auto& h = q.header();
  DedupTable table(q);
  d.enabled = table.enabled();
  if (table.enabled()) {
    const auto load = table.load(now);
    d.window_ms = q.layout.dedup_window_ms;
    d.entries = load.entries;
    d.live = load.live;
    d.load_factor = static_cast<double>(load.live) / static_cast<double>(load.entries);
  }
  d.hits = h.retired_dedup_hits.load(std::memory_order_relaxed);
  d.keyed_published = h.retired_keyed_published.load(std::memory_order_relaxed);
  d.bloom_negatives = h.retired_bloom_negatives.load(std::memory_order_relaxed);
  d.expired_reused = h.retired_expired_reused.load(std::memory_order_relaxed);
  d.evicted = h.dedup_evicted.load(std::memory_order_relaxed);
  d.full = h.dedup_full.load(std::memory_order_relaxed);
}

// Adds every producer entry's counters, registered or not, to the queue's
// and dedup's, and one ProducerStats per registered producer.
void add_producers(const QueueState& q, std::uint64_t now, QueueStats& s) {
  for (std::uint32_t i = 0; i < q.layout.max_producers; ++i) {
    const auto& e = q.producer(i);
    const std::uint32_t pid = e.pid.load(std::memory_order_relaxed);
    const std::uint64_t published = e.published.load(std::memory_order_relaxed);
    s.published += published;
    s.dedup.hits += e.dedup_hits.load(std::memory_order_relaxed);
    s.dedup.keyed_published += e.keyed_published.load(std::memory_order_relaxed);
    s.dedup.bloom_negatives += e.bloom_negatives.load(std::memory_order_relaxed);
    s.dedup.expired_reused += e.expired_reused.load(std::memory_order_relaxed);
    if (pid == 0) continue;
    const std::uint64_t last = e.last_active_ms.load(std::memory_order_relaxed);
    s.producers.push_back({i, static_cast<pid_t>(pid),
                           is_alive(static_cast<pid_t>(pid), e.start_time.load(std::memory_order_relaxed)),
                           published, now > last ? now - last : 0});
  }
}

// The oldest floor, the depth and the journal's position (needs s.tail).
void read_floor_and_durability(const QueueState& q, QueueStats& s) {
  s.min_floor = scan_min_floor(q, s.tail);
  s.depth = s.tail > s.min_floor ? s.tail - s.min_floor : 0;
  if (q.layout.durability != 0) {
    // acquire: pairs with publish_durable's CAS; a value for the report only.
    s.durable_seq = q.header().durable_seq.load(std::memory_order_acquire);
    s.journal_pid = q.header().journal_pid.load(std::memory_order_relaxed);
    s.journal_flushes = q.header().journal_flushes.load(std::memory_order_relaxed);
  } else {
    s.durable_seq = s.tail;
  }
}

// The group entry's own fields: name, policy, cursors and retired counters.
void read_group_counters(const GroupEntry& G, std::uint64_t tail, GroupStats& gs) {
  gs.name.assign(G.name, strnlen(G.name, sizeof G.name));
  gs.overflow = static_cast<OverflowPolicy>(G.overflow);
  gs.floor = G.floor.load(std::memory_order_relaxed);
  gs.next = G.next.load(std::memory_order_relaxed);
  gs.lag = tail > gs.floor ? tail - gs.floor : 0;
  gs.dead_lettered = G.dead_lettered.load(std::memory_order_relaxed);
  gs.dropped = G.dropped.load(std::memory_order_relaxed);
  gs.aborted_skipped = G.aborted_skipped.load(std::memory_order_relaxed);
  gs.corrupt_skipped = G.corrupt_skipped.load(std::memory_order_relaxed);
  gs.delivered = G.retired_delivered.load(std::memory_order_relaxed);
  gs.acked = G.retired_acked.load(std::memory_order_relaxed);
  gs.redelivered = G.retired_redelivered.load(std::memory_order_relaxed);
  gs.nacked = G.retired_nacked.load(std::memory_order_relaxed);
  gs.lease_expiries = G.retired_lease_expiries.load(std::memory_order_relaxed);
  gs.redelivery = decode_redelivery(G.redelivery.load(std::memory_order_relaxed));
  add_causes(gs.redelivered_by, G.retired_redelivered_by);
  gs.process_once_skips = G.retired_process_once_skips.load(std::memory_order_relaxed);
  add_latency(gs.ack_latency, G.retired_ack_latency, G.retired_ack_latency_sum_ms);
}

void read_oldest_unacked(const QueueState& q, std::uint32_t g, std::uint64_t tail, GroupStats& gs) {
  if (const Oldest o = oldest_unsettled(q, g, gs.floor, gs.next, tail); o.publish_ns != 0) {
    const std::uint64_t wall = realtime_ns();
    gs.oldest_unacked_seq = o.seq;
    gs.oldest_unacked_publish_ns = o.publish_ns;
    gs.oldest_unacked_age_ms = wall > o.publish_ns ? (wall - o.publish_ns) / 1'000'000 : 0;
  }
}

// Scans the leases of [floor, next): counts in-flight and back-off waiting
// messages into gs and returns how many each member holds (by member index).
std::vector<std::uint64_t> scan_leases(const QueueState& q, std::uint32_t g, std::uint64_t now, GroupStats& gs) {
  std::vector<std::uint64_t> held(q.layout.max_members + 1, 0);
  for (std::uint64_t seq = gs.floor; seq < gs.next && seq - gs.floor < q.layout.capacity; ++seq) {
    const LeaseWord lw = LeaseWord::decode(q.lease(g, seq).load(std::memory_order_relaxed));
    if (lw.state != LeaseState::leased || lw.generation != q.generation(seq)) continue;
    ++gs.in_flight;
    if (lw.owner < q.layout.max_members) ++held[lw.owner];
    else if (lw.owner != kDroppingOwner && !deadline_passed(lw.deadline_ms, now)) ++gs.waiting_redelivery;
  }
  return held;
}

// Adds every member entry's counters, registered or not, to the group's,
// and one MemberStats per registered member not being reclaimed.
void add_members(const QueueState& q, std::uint32_t g, std::uint64_t now, const std::vector<std::uint64_t>& held,
                 GroupStats& gs) {
  for (std::uint32_t m = 0; m < q.layout.max_members; ++m) {
    const auto& e = q.member(g, m);
    const std::uint32_t pid = e.pid.load(std::memory_order_relaxed);
    MemberStats ms;
    ms.delivered = e.delivered.load(std::memory_order_relaxed);
    ms.acked = e.acked.load(std::memory_order_relaxed);
    ms.redelivered = e.redelivered.load(std::memory_order_relaxed);
    ms.nacked = e.nacked.load(std::memory_order_relaxed);
    ms.lease_expiries = e.lease_expiries.load(std::memory_order_relaxed);
    gs.delivered += ms.delivered;
    gs.acked += ms.acked;
    gs.redelivered += ms.redelivered;
    gs.nacked += ms.nacked;
    gs.lease_expiries += ms.lease_expiries;
    add_causes(gs.redelivered_by, e.redelivered_by);
    gs.process_once_skips += e.process_once_skips.load(std::memory_order_relaxed);
    add_latency(gs.ack_latency, e.ack_latency, e.ack_latency_sum_ms);
    if (pid == 0 || is_reclaiming(pid)) continue;
    ms.lease_ms = e.lease_ms.load(std::memory_order_relaxed);
    ms.index = m;
    ms.pid = static_cast<pid_t>(pid);
    ms.alive = is_alive(ms.pid, e.start_time.load(std::memory_order_relaxed));
    ms.in_flight = held[m];
    const std::uint64_t last = e.last_active_ms.load(std::memory_order_relaxed);
    ms.idle_ms = now > last ? now - last : 0;
    if (ms.alive && ms.lease_ms != 0)
      gs.min_member_lease_ms = gs.min_member_lease_ms == 0 ? ms.lease_ms : std::min(gs.min_member_lease_ms, ms.lease_ms);
    gs.members.push_back(ms);
  }
}

// The quantities derived from the counters: latency quantiles and the
// lease-below-p99 warning.
void derive_latency(GroupStats& gs) noexcept {
  gs.ack_latency.p50_ms = latency_quantile(gs.ack_latency, 0.50);
  gs.ack_latency.p99_ms = latency_quantile(gs.ack_latency, 0.99);
  gs.lease_below_p99 = gs.min_member_lease_ms != 0 && gs.ack_latency.count != 0 &&
                       static_cast<double>(gs.min_member_lease_ms) < gs.ack_latency.p99_ms;
}

GroupStats group_stats(const QueueState& q, std::uint32_t g, std::uint64_t tail, std::uint64_t now) {
  GroupStats gs;
  read_group_counters(q.group(g), tail, gs);
  read_oldest_unacked(q, g, tail, gs);
  const std::vector<std::uint64_t> held = scan_leases(q, g, now, gs);
  add_members(q, g, now, held, gs);
  derive_latency(gs);
  return gs;
}

}  // namespace

QueueStats Queue::stats() const {
  const QueueState& q = *state_;
  const std::uint64_t now = coarse_monotonic_ms();
  QueueStats s;
  read_queue_counters(q, s);
  read_dedup_stats(q, now, s.dedup);
  add_producers(q, now, s);
  if (s.dedup.keyed_published != 0)
    s.dedup.hit_ratio = static_cast<double>(s.dedup.hits) / static_cast<double>(s.dedup.keyed_published);
  read_floor_and_durability(q, s);
  for (std::uint32_t g = 0; g < q.layout.max_groups; ++g) {
    // acquire: pairs with create's release of `active`; the name and overflow read below are complete.
    if (q.group(g).state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(GroupState::active)) continue;
    s.groups.push_back(group_stats(q, g, s.tail, now));
    s.dedup.bloom_negatives += group_bloom_negatives(q, g);
  }
  return s;
}

}  // namespace ackring
