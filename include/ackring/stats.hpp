// Counters readable by any process without disturbing the hot path: reading
// them is a series of relaxed loads, so figures are approximate snapshots
// (each counter is exact, the set is not taken at one instant).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

#include "ackring/options.hpp"

namespace ackring {

struct MemberStats {
  std::uint32_t index = 0;
  pid_t pid = 0;
  bool alive = false;
  std::uint64_t delivered = 0;
  std::uint64_t acked = 0;
  std::uint64_t in_flight = 0;          // leases it holds now
  std::uint64_t idle_ms = 0;            // since its last receive/ack
  std::uint64_t redelivered = 0;        // deliveries to it after the first
  std::uint64_t nacked = 0;
  std::uint64_t lease_expiries = 0;     // leases it took over after they ran out (another member's or its own)
  std::uint64_t lease_ms = 0;           // the lease it takes messages with
};

// Delivery-to-ack time of acked messages (receive to ack, per delivery), in
// power-of-two buckets: buckets[0] counts acks under 1 ms, buckets[i] those
// in [2^(i-1), 2^i) ms, the last one everything from 2^22 ms (70 min) up.
// Measured with the coarse monotonic clock (1-4 ms ticks).
struct AckLatency {
  static constexpr std::size_t kBuckets = 24;
  std::array<std::uint64_t, kBuckets> buckets{};
  std::uint64_t count = 0;               // acks measured
  std::uint64_t sum_ms = 0;              // their delivery-to-ack times added up
  // Estimated quantiles in ms (interpolated inside their bucket, so within a
  // factor of two of the truth and usually much closer); 0 with no acks.
  double p50_ms = 0;
  double p99_ms = 0;
  // Lower bound (ms) of bucket i.
  [[nodiscard]] static constexpr std::uint64_t bucket_floor_ms(std::size_t i) noexcept {
    return i == 0 ? 0 : std::uint64_t{1} << (i - 1);
  }
};

// Why messages came back to the group (each redelivery counts once, when it
// is delivered again).
struct RedeliveriesByCause {
  std::uint64_t expiry = 0;    // the lease ran out while its holder lived
  std::uint64_t death = 0;     // the holder's process died
  std::uint64_t nack = 0;      // the holder nacked it
  std::uint64_t released = 0;  // the holder closed its Consumer without settling it
};

struct GroupStats {
  std::string name;
  OverflowPolicy overflow = OverflowPolicy::block;
  std::uint64_t floor = 0;              // every seq below is settled in this group
  std::uint64_t next = 0;               // next seq to dispatch
  std::uint64_t in_flight = 0;          // leased, not yet settled
  std::uint64_t lag = 0;                // tail - floor: how far behind the producers
  std::uint64_t delivered = 0;          // deliveries, redeliveries included
  std::uint64_t acked = 0;
  std::uint64_t redelivered = 0;        // deliveries after the first
  std::uint64_t nacked = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t dropped = 0;            // missed because of the drop overflow policy
  std::uint64_t aborted_skipped = 0;    // aborted slots passed over
  std::uint64_t corrupt_skipped = 0;    // slots whose checksum or length failed
  std::uint64_t lease_expiries = 0;     // leases taken over after they ran out (members gone included)
  RedeliveryPolicy redelivery{};        // the group's back-off (initial 0: none)
  // Given back and not visible yet: waiting out a redelivery back-off or a
  // nack delay.
  std::uint64_t waiting_redelivery = 0;
  RedeliveriesByCause redelivered_by{};
  std::uint64_t process_once_skips = 0;  // deliveries is_processed/process_once found processed already
  AckLatency ack_latency{};              // members gone included
  // The shortest lease of a live member (0: no live member). When it is
  // below ack_latency.p99_ms, more than 1% of messages outlive their lease
  // and are delivered twice: lease_below_p99 is set and `ackring stat` warns.
  std::uint64_t min_member_lease_ms = 0;
  bool lease_below_p99 = false;
  // The oldest message the group has not settled yet (leased or not yet
  // dispatched), as of the snapshot: its seq, its publish time (realtime ns)
  // and its age (now - publish time, in ms). All 0 when nothing is pending.
  // Slots claimed but not yet committed are passed over (no publish time yet).
  std::uint64_t oldest_unacked_seq = 0;
  std::uint64_t oldest_unacked_publish_ns = 0;
  std::uint64_t oldest_unacked_age_ms = 0;
  std::vector<MemberStats> members;
};

struct ProducerStats {
  std::uint32_t index = 0;
  pid_t pid = 0;
  bool alive = false;
  std::uint64_t published = 0;
  std::uint64_t idle_ms = 0;            // since its last publish (or registration)
};

struct DedupStats {
  bool enabled = false;
  std::uint64_t window_ms = 0;
  std::uint64_t entries = 0;            // table size
  std::uint64_t live = 0;               // keys inside the window
  double load_factor = 0;               // live / entries
  std::uint64_t keyed_published = 0;    // keyed publishes (duplicates included)
  double hit_ratio = 0;                 // hits / keyed_published (0 when none)
  std::uint64_t hits = 0;               // keyed publishes answered "duplicate"
  std::uint64_t bloom_negatives = 0;    // process-once lookups the bloom filter answered alone (publishes do not use it)
  std::uint64_t expired_reused = 0;     // entries of expired keys reused
  std::uint64_t evicted = 0;            // live keys evicted (evict_oldest policy)
  std::uint64_t full = 0;               // keyed publishes refused with dedup_full
};

struct QueueStats {
  std::string path;
  std::uint32_t capacity = 0;
  std::uint32_t max_message_size = 0;
  std::uint64_t tail = 0;               // next seq to be claimed = messages claimed so far
  std::uint64_t published = 0;          // publishes that returned ok
  std::uint64_t aborted = 0;            // claims aborted (dead or stuck producer)
  std::uint64_t min_floor = 0;          // the oldest seq some group still needs
  std::uint64_t depth = 0;              // tail - min_floor
  // Durability async/sync: every seq below durable_seq is in the journal on
  // disk; tail - durable_seq is the journal's lag. Equal to tail when none.
  std::uint64_t durable_seq = 0;
  std::uint32_t journal_pid = 0;        // process writing the journal now (0: none)
  std::uint64_t journal_flushes = 0;    // write + fdatasync rounds so far
  DedupStats dedup;
  std::vector<ProducerStats> producers;
  std::vector<GroupStats> groups;
};

}  // namespace ackring
