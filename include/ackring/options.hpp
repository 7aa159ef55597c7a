// Parameters of a queue, a group and a consumer. Defaults are what a user of
// a broker would expect: leases of 30 s, 5 deliveries before dead-lettering,
// mode 0600 files, groups that start at the oldest retained message.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace ackring {

using Millis = std::chrono::milliseconds;

// What a keyed publish does when every entry of its key's window in the
// dedup table holds a live key.
enum class DedupFullPolicy : std::uint8_t {
  refuse = 0,        // the publish fails with Status::dedup_full (the guarantee is never silently lost)
  evict_oldest = 1,  // the oldest live key of the window is forgotten (counted as evicted)
};

// What survives a crash of the machine (the queue file lives in memory).
// docs/journal.md, "Integration", says how each mode works.
enum class Durability : std::uint8_t {
  none = 0,   // nothing is written to disk: a reboot loses the queue
  async = 1,  // a journal is written in the background, flushed every
              // async_flush_interval: a reboot loses at most that window
  sync = 2,   // a message is delivered only once its journal record is on
              // disk (write-ahead); Queue::recover rebuilds the queue from it
};

// The clock a publish stamps its message with: Delivery::publish_time_ns,
// the age of the oldest unacked message in stats, replay by time, dead letters.
enum class PublishTimestamp : std::uint8_t {
  precise = 0,  // CLOCK_REALTIME in ns, to within ~0.1 us: extrapolated from one TSC read per
                // publish and a clock_gettime once a ms, where the kernel's clocksource is the
                // TSC; elsewhere a clock_gettime per publish (20-30 ns)
  coarse = 1,   // CLOCK_REALTIME at most a few ms old (the clock's last anchor, or the kernel's
                // tick where there is no TSC clock); enough for ages and replay, not for
                // measuring latency below a few ms. Saves a multiply with the TSC, ~20 ns without
};

// Fixed when the queue is created; stored in the file header.
struct QueueOptions {
  std::uint32_t capacity = 4096;          // slots; a power of two, 2 .. 2^30
  std::uint32_t max_message_size = 1024;  // payload bytes per slot, 1 .. 16 MiB
  Millis default_lease{30'000};           // lease of a receive that does not choose one
  std::uint32_t max_deliveries = 5;       // past this a message goes to <name>.dlq (1..254)
  std::uint32_t max_groups = 8;           // consumer groups (1..1024)
  std::uint32_t max_members = 16;         // competing members per group (1..250)
  std::uint32_t max_producers = 64;       // producer handles attached at once (1..65535)
  // A claim of a live producer still uncommitted this long after a consumer
  // found it in the way is aborted (a dead producer's claims are aborted at once).
  Millis claim_timeout{2'000};
  mode_t mode = 0600;                     // permission bits of the queue file
  PublishTimestamp publish_timestamp = PublishTimestamp::precise;
  // Dedup table (idempotent publish, process-once). Entries: a power of two,
  // at least 16; 0 picks max(1024, 2 × capacity). 32 bytes each, plus 2 bytes
  // of bloom filter per entry.
  bool dedup = true;
  std::uint32_t dedup_entries = 0;
  Millis dedup_window{300'000};           // a key is remembered this long (like SQS FIFO's 5 minutes)
  DedupFullPolicy dedup_full_policy = DedupFullPolicy::refuse;
  // Bloom filter in front of the dedup table's process-once records: it
  // answers process_once / is_processed of a new message without probing the
  // table. Keyed publishes do not use it (they scan the key's window anyway).
  // Turn it off when no consumer uses process-once, to save its 2 bytes per entry.
  bool dedup_bloom = true;
  // Journal (write-ahead log) on a real file system: with async or sync,
  // every process that opens the queue runs a journal thread; the one that
  // holds the journal lock writes <journal_dir>/<queue file name>/*.wal.
  // An empty journal_dir means $ACKRING_JOURNAL_DIR, else /var/tmp/ackring.
  Durability durability = Durability::none;
  std::string journal_dir{};
  Millis async_flush_interval{10};        // async: the loss window (1 ms .. 60 s)
  // Retention, for replay (Queue::rewind_group): journal segments that every
  // group has settled are kept while they are among the newest
  // journal_retain_bytes (whole MiB) or younger than journal_retain_age.
  // Both 0: a segment is deleted as soon as every group's floor passed it.
  std::uint64_t journal_retain_bytes = 0;
  std::chrono::seconds journal_retain_age{0};
};

// Options of one publish.
struct PublishOptions {
  // Idempotency key: a second publish with the same key within the queue's
  // dedup window enqueues nothing and returns the first message's seq with
  // duplicate = true. Empty: no dedup.
  std::string_view key{};
};

// What a group does when it is a full ring behind the producers.
enum class OverflowPolicy : std::uint8_t {
  block = 0,  // producers wait or get queue_full (at-least-once; the default)
  drop = 1,   // producers skip the group past; every message it misses is counted
};

enum class StartPosition : std::uint8_t {
  earliest = 0,  // the oldest message still retained by the queue
  latest = 1,    // only messages published after the group exists
};

// How a redelivery delay is spread. Equal jitter (the default) waits
// between half and all of the computed delay: the spread breaks up retries
// that would otherwise come back in step, and the guaranteed half keeps the
// back-off a back-off (full jitter may retry at once). Full jitter, anywhere
// from 0 to the delay, spreads most, for many messages failing together.
enum class Jitter : std::uint8_t { none = 0, equal = 1, full = 2 };

// Redelivery back-off of a group. A message that comes back without an
// explicit delay — its lease ran out, its holder died, or it was nacked with
// delay 0 — becomes visible again only after
//   min(max, initial × multiplier^(deliveries − 1)), spread by jitter,
// counted from when its lease ran out (expiry) or when it was given back
// (death, nack). nack(delay > 0) still wins; a consumer that closes gives its
// messages back at once. initial 0 (the default): no back-off, as before.
// Limits: initial and max up to 2^26 - 1 ms (18.6 h); multiplier 1.0 .. 25.5
// in steps of 0.1.
struct RedeliveryPolicy {
  Millis initial{0};
  double multiplier = 2.0;
  Millis max{60'000};
  Jitter jitter = Jitter::equal;
  bool operator==(const RedeliveryPolicy&) const = default;
};

struct GroupOptions {
  OverflowPolicy overflow = OverflowPolicy::block;
  StartPosition start = StartPosition::earliest;
  RedeliveryPolicy redelivery{};
};

enum class DeliveryMode : std::uint8_t {
  at_least_once = 0,  // leases, acks, redelivery, dead-lettering
  at_most_once = 1,   // receive counts as ack: never redelivered, a crash may lose it
};

struct ConsumerOptions {
  DeliveryMode mode = DeliveryMode::at_least_once;
  Millis lease{0};  // 0: the queue's default_lease
  // Time a blocking receive spins before sleeping on a futex. Spinning keeps
  // latency low when messages are frequent; sleeping frees the CPU.
  std::chrono::microseconds spin{50};
  // Throughput against latency: when receive_batch finds fewer messages than
  // its batch holds, it waits this long without reading anything producers
  // write, then takes what has come meanwhile into the rest of the batch.
  // A consumer that keeps up with its producer otherwise polls the slot being
  // written, and each poll costs that producer a cache-line round trip: in
  // the README's 1->1 benchmark 2 us took 3-4x the messages per second.
  // It delays a receive_batch that found few messages by up to this
  // much; receive, try_receive and try_receive_batch never linger. The
  // leases of what it took first run meanwhile: keep it well below the
  // lease. 0 (the default) to 1 s.
  std::chrono::microseconds linger{0};
  // Create the group if it does not exist (with these options).
  bool create_group = true;
  GroupOptions group{};
};

}  // namespace ackring
