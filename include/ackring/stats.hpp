// Counters readable by any process without disturbing the hot path: reading
// them is a series of relaxed loads, so figures are approximate snapshots
// (each counter is exact, the set is not taken at one instant).
#pragma once

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
  std::uint64_t hits = 0;               // keyed publishes answered "duplicate"
  std::uint64_t bloom_negatives = 0;    // lookups the bloom filter answered alone
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
