// Byte layout of a queue file, and the encodings of its atomic words.
// docs/format.md describes the same layout for readers of the file; keep the
// two in step (the static_asserts below pin every offset the doc gives).
//
//  0          4096                                      (all regions 64-byte aligned)
//  ┌──────────┬────────────┬──────────────────────┬──────────────────────┬─────────────┐
//  │ header   │ producers  │ groups               │ lease words          │ slots       │
//  │ FileHeader│ P × 128 B │ G × (9 + 5M) × 64 B  │ G × capacity × 8 B   │ capacity ×  │
//  │          │            │ GroupEntry + members │ one per group & slot │ slot_size   │
//  └──────────┴────────────┴──────────────────────┴──────────────────────┴─────────────┘
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shm/redelivery.hpp"

namespace ackring::detail {

inline constexpr std::size_t kCacheLine = 64;
inline constexpr char kMagic[8] = {'A', 'C', 'K', 'R', 'I', 'N', 'G', '\0'};
// 2: durability fields (Layout, FileHeader line 9). 3: producers' in-flight
// words (ProducerEntry::in_flight) hold slots back from reuse, members count
// lease expiries: a version-2 process would not honour either. 4: a settled
// lease word carries its whole seq (settled_word): a version-3 process would
// read it as a settled word of another lap. 5: members and groups carry the
// redelivery policy, the redelivery causes and the ack latency histogram,
// producers count keyed publishes (longer entries: a version-4 process would
// find members at the wrong offsets). 6: a key's bloom bits are 8 bits of one
// 64-bit word of its block (they were one bit in each 32-bit word): a
// version-5 process would miss keys a version-6 one inserted. 7: producers
// no longer mark a slot claimed before writing it (readers validate a copy by
// their lease word or the tail, docs/protocol.md §1): a version-6 reader,
// which validates by the slot state, would accept a copy a version-7
// producer tore.
inline constexpr std::uint32_t kFormatVersion = 7;
// Layout::flags (format 4): publishes stamp messages with the coarse realtime clock.
inline constexpr std::uint32_t kLayoutCoarsePublishTime = 1;
inline constexpr std::uint32_t kLayoutKnownFlags = kLayoutCoarsePublishTime;
inline constexpr std::size_t kHeaderRegion = 4096;
// The journal directory (of <journal_dir>/<queue file name>/, the parent)
// is stored as bytes in the header region, covered by Layout::journal_dir_hash.
inline constexpr std::size_t kJournalDirOffset = 2048;
inline constexpr std::size_t kJournalDirMax = 2047;
inline constexpr std::size_t kGroupNameMax = 47;   // bytes, plus a NUL
inline constexpr std::size_t kQueueNameMax = 200;  // bytes of a queue name
inline constexpr std::uint32_t kMaxCapacityLog2 = 30;
inline constexpr std::uint32_t kMaxMessageSize = 16u << 20;
// Slots may be a little larger than user messages: a dead-letter queue adds
// an origin record to messages of up to kMaxMessageSize.
inline constexpr std::uint32_t kMaxSlotPayload = kMaxMessageSize + 4096;
inline constexpr std::uint32_t kMaxGroups = 1024;
inline constexpr std::uint32_t kMaxMembers = 250;     // owner values 250-255 of a lease word are not members
inline constexpr std::uint32_t kMaxProducers = 65535;
inline constexpr std::uint32_t kMaxDeliveries = 254;  // the delivery count has 8 bits
inline constexpr std::uint32_t kMinDedupEntries = 16;  // one probe window
inline constexpr std::uint32_t kMaxDedupEntries = 1u << 28;
// Sequence numbers live in 56 bits of the slot state word and the floor word:
// 7.2e16 messages, 22 years at 100 M msgs/s.
inline constexpr std::uint64_t kSeqMask = (1ull << 56) - 1;

// Layout parameters: written once by the creator, covered by the header
// checksum, never changed. Readers recompute every offset from the
// parameters and refuse the file if the stored ones differ.
//
//   0        8        12       16               24       28       32
//   ┌────────┬────────┬────────┬────────────────┬────────┬────────┐
//   │ magic  │version │hdr size│ file size      │capacity│cap log2│ ...
//   └────────┴────────┴────────┴────────────────┴────────┴────────┘
struct Layout {
  char magic[8];
  std::uint32_t version;
  std::uint32_t header_size;        // sizeof(FileHeader)
  std::uint64_t file_size;
  std::uint32_t capacity;
  std::uint32_t capacity_log2;
  std::uint32_t max_message_size;
  std::uint32_t slot_size;          // 64 + max_message_size rounded up to 64
  std::uint32_t max_groups;
  std::uint32_t max_members;
  std::uint32_t max_producers;
  std::uint32_t max_deliveries;
  std::uint32_t default_lease_ms;
  std::uint32_t claim_timeout_ms;
  std::uint32_t group_stride;       // bytes per group entry, members included
  std::uint32_t flags;              // kLayout* bits; others are refused
  std::uint64_t producers_offset;
  std::uint64_t groups_offset;
  std::uint64_t leases_offset;
  std::uint64_t slots_offset;
  std::uint64_t created_realtime_ns;
  std::uint32_t creator_pid;
  std::uint32_t journal_retain_mib;  // retention of settled journal segments: newest MiB kept; 0 none
  std::uint64_t creator_start_time;  // clock ticks since boot, /proc/<pid>/stat field 22
  std::uint64_t dedup_offset;        // dedup hash table: dedup_entries × DedupEntry
  std::uint64_t bloom_offset;        // bloom filter: 2 generations × bloom_blocks × 32 bytes
  std::uint32_t dedup_entries;       // power of two, or 0: no dedup table
  std::uint32_t dedup_window_ms;
  std::uint32_t bloom_blocks;        // per generation; power of two
  std::uint32_t dedup_policy;        // DedupFullPolicy
  char name[32];                     // queue file name (informational; NUL-terminated, may be cut)
  // Durability (format version 2): the journal of this queue.
  std::uint32_t durability;          // ackring::Durability: 0 none, 1 async, 2 sync
  std::uint32_t async_flush_ms;      // async: flush interval (the loss window); 0 unless async
  std::uint64_t journal_id;          // queue id in the journal's segment headers; 0 when none
  std::uint64_t journal_dir_hash;    // XXH3-64 of the journal_dir_len bytes at kJournalDirOffset
  std::uint32_t journal_dir_len;     // bytes of the journal directory path; 0 when none
  std::uint32_t journal_retain_s;    // ... and those younger than this many seconds; 0 none
};
static_assert(sizeof(Layout) == 224);
static_assert(offsetof(Layout, durability) == 192);
static_assert(offsetof(Layout, journal_id) == 200);
static_assert(offsetof(Layout, journal_dir_len) == 216);
static_assert(offsetof(Layout, version) == 8);
static_assert(offsetof(Layout, file_size) == 16);
static_assert(offsetof(Layout, capacity) == 24);
static_assert(offsetof(Layout, producers_offset) == 72);
static_assert(offsetof(Layout, dedup_offset) == 128);
static_assert(offsetof(Layout, name) == 160);

// The file header: the layout, its checksum, then the shared cursors, each on
// its own cache line so producers' tail CASes do not invalidate the line the
// consumers poll for the floor, and vice versa.
//
//   0      224      232     256        320         384                    448       512     576       640
//   ┌──────┬────────┬───────┬──────────┬───────────┬──────────────────────┬─────────┬───────┬─────────┐
//   │layout│checksum│ pad   │ tail     │ floor word│ commit/space futexes │counters │ dedup │durable  │
//   └──────┴────────┴───────┴──────────┴───────────┴──────────────────────┴─────────┴───────┴─────────┘
struct FileHeader {
  Layout layout;
  std::uint64_t header_checksum;  // XXH3-64 of `layout`
  char pad0[256 - sizeof(Layout) - 8];

  // Next sequence number to claim. Producers CAS it forward; it never goes back.
  alignas(kCacheLine) std::atomic<std::uint64_t> tail;
  // (min floor << 8) | version: the lowest floor of any group, as last
  // computed. Producers check claims against it; group creation bumps the
  // version so a refresh that scanned before the group existed cannot land.
  alignas(kCacheLine) std::atomic<std::uint64_t> floor_word;
  // Futex words (32-bit, shared): bumped when there is something to wake for,
  // and waiter counts so the wakers make no syscall when nobody sleeps.
  alignas(kCacheLine) std::atomic<std::uint32_t> commit_futex;
  std::atomic<std::uint32_t> commit_waiters;
  std::atomic<std::uint32_t> space_futex;
  std::atomic<std::uint32_t> space_waiters;
  // Rarely written counters.
  alignas(kCacheLine) std::atomic<std::uint64_t> aborted;            // claims aborted by consumers
  std::atomic<std::uint64_t> retired_published;                      // from freed producer entries
  std::atomic<std::uint32_t> group_epoch;                            // bumped on group create/remove
  std::atomic<std::uint32_t> reserved1;
  std::atomic<std::uint64_t> retired_keyed_published;                // from freed producer entries
  // Dedup: (bloom epoch << 1) | clearing, and its rare counters.
  alignas(kCacheLine) std::atomic<std::uint64_t> bloom_epoch;
  std::atomic<std::uint64_t> dedup_evicted;       // live entries evicted (evict_oldest policy)
  std::atomic<std::uint64_t> dedup_full;          // publishes refused with dedup_full
  std::atomic<std::uint64_t> retired_dedup_hits;  // counters of freed producer entries
  std::atomic<std::uint64_t> retired_bloom_negatives;
  std::atomic<std::uint64_t> retired_expired_reused;
  // Durability (src/queue/durability.hpp): every seq below durable_seq has its
  // journal record on disk. Written by the journal thread of the process
  // holding the journal lock (monotonic CAS-max), read by producers (sync
  // publish waits, slot reuse) and consumers (sync: dispatch bound).
  alignas(kCacheLine) std::atomic<std::uint64_t> durable_seq;
  std::atomic<std::uint32_t> durable_futex;    // bumped when durable_seq moves and someone waits
  std::atomic<std::uint32_t> durable_waiters;
  std::atomic<std::uint32_t> journal_pid;      // pid of the journal writer (informational), 0 none
  std::atomic<std::uint32_t> reserved3;
  std::atomic<std::uint64_t> journal_flushes;  // flushes made by journal writers (statistics)
};
static_assert(sizeof(FileHeader) == 640);
static_assert(offsetof(FileHeader, durable_seq) == 576);
static_assert(offsetof(FileHeader, bloom_epoch) == 512);
static_assert(offsetof(FileHeader, header_checksum) == 224);
static_assert(offsetof(FileHeader, tail) == 256);
static_assert(offsetof(FileHeader, floor_word) == 320);
static_assert(offsetof(FileHeader, commit_futex) == 384);
static_assert(offsetof(FileHeader, aborted) == 448);
static_assert(offsetof(FileHeader, retired_keyed_published) == 472);
static_assert(sizeof(FileHeader) <= kJournalDirOffset);

// One registered producer.
//   0     4      8            16          24            32
//   ┌─────┬──────┬────────────┬───────────┬─────────────┬──── pad to 64
//   │ pid │ pad  │ start time │ published │ last active │
//   32          40               48               56          64
//   ┌───────────┬────────────────┬────────────────┬───────────┐
//   │ dedup hits│ bloom negatives│ expired reused │ in flight │
struct ProducerEntry {
  std::atomic<std::uint32_t> pid;               // 0: free. CAS 0 -> pid claims the entry
  std::atomic<std::uint32_t> incarnation;       // bumped per registration: dedup owners name (index, incarnation)
  std::atomic<std::uint64_t> start_time;        // 0 while the owner is still writing it
  std::atomic<std::uint64_t> published;         // written by the owner only
  std::atomic<std::uint64_t> last_active_ms;    // monotonic ms, owner only
  std::atomic<std::uint64_t> dedup_hits;        // owner only: keyed publishes found duplicate
  // owner only: keys the bloom filter ruled out. Keyed publishes no longer
  // read the filter (docs/dedup.md §6): what producers of earlier versions counted.
  std::atomic<std::uint64_t> bloom_negatives;
  std::atomic<std::uint64_t> expired_reused;    // owner only: expired dedup entries reused
  // 0, or 1 + the lowest seq this producer may still store into: set before
  // its tail CAS, cleared after its last commit. No slot at or after it is
  // reused while the producer lives, however long it stalls (protocol.md §1).
  std::atomic<std::uint64_t> in_flight;
  // Line 1: keyed publishes attempted (hits included): the dedup hit ratio's denominator.
  alignas(kCacheLine) std::atomic<std::uint64_t> keyed_published;  // owner only
};
static_assert(sizeof(ProducerEntry) == 2 * kCacheLine);
static_assert(offsetof(ProducerEntry, keyed_published) == 64);
static_assert(offsetof(ProducerEntry, in_flight) == 56);

// Why a message came back to its group (redeliveries by cause).
enum class RedeliveryCause : std::uint8_t {
  expiry = 0,    // its lease ran out in a live holder's hands
  death = 1,     // its holder's process died
  nack = 2,      // its holder nacked it
  released = 3,  // its holder closed its Consumer without settling it
};
inline constexpr std::uint32_t kRedeliveryCauses = 4;

// One member of a group: 5 cache lines. Counters are written by the owning
// process only (load + store, no RMW), read by anyone.
//   line 0: identity, lease, counters      line 1: redeliveries by cause, process-once skips
//   lines 2-4: delivery-to-ack latency histogram (redelivery.hpp)
struct MemberEntry {
  std::atomic<std::uint32_t> pid;               // 0 free; kReclaiming | reclaimer pid while being freed
  std::atomic<std::uint32_t> lease_ms;          // the member's lease (for the stat warning against p99)
  std::atomic<std::uint64_t> start_time;
  std::atomic<std::uint64_t> last_active_ms;
  std::atomic<std::uint64_t> delivered;
  std::atomic<std::uint64_t> acked;
  std::atomic<std::uint64_t> redelivered;
  std::atomic<std::uint64_t> nacked;
  std::atomic<std::uint64_t> lease_expiries;    // leases this member took over after they ran out
  alignas(kCacheLine) std::atomic<std::uint64_t> redelivered_by[kRedeliveryCauses];  // by RedeliveryCause
  std::atomic<std::uint64_t> process_once_skips;  // is_processed answered true
  std::atomic<std::uint64_t> ack_latency_sum_ms;  // of the acks counted in ack_latency
  // Process-once lookups (is_processed, process_once) the bloom filter
  // answered alone. Was padding, zero, before this field: no format change.
  std::atomic<std::uint64_t> bloom_negatives;
  alignas(kCacheLine) std::atomic<std::uint64_t> ack_latency[kLatencyBuckets];
};
static_assert(sizeof(MemberEntry) == 5 * kCacheLine);
static_assert(offsetof(MemberEntry, lease_expiries) == 56);
static_assert(offsetof(MemberEntry, redelivered_by) == 64);
static_assert(offsetof(MemberEntry, ack_latency) == 128);
static_assert(offsetof(MemberEntry, bloom_negatives) == 112);
// A member slot being freed holds kReclaiming | (pid of the reclaimer): the
// reclaimer's identity is in the word the CAS writes, so a takeover from a
// dead reclaimer is one CAS from that exact value (pids fit in 22 bits).
inline constexpr std::uint32_t kReclaiming = 0x80000000u;
[[nodiscard]] constexpr bool is_reclaiming(std::uint32_t pid_word) noexcept { return (pid_word & kReclaiming) != 0; }

enum class GroupState : std::uint32_t { free = 0, creating = 1, active = 2 };

// A consumer group: 9 cache lines, then max_members MemberEntry.
//   line 0: state, incarnation, policy, name
//   line 1: next (dispatch cursor)      line 2: floor (all below settled)
//   line 3: deadline hint, retired lease expiries    line 4: group counters
//   line 5: redelivery policy, retired redeliveries by cause and skips
//   lines 6-8: retired ack latency histogram (of freed members)
struct GroupEntry {
  std::atomic<std::uint32_t> state;         // GroupState
  std::atomic<std::uint32_t> incarnation;   // bumped per create: a handle of a removed group notices
  std::uint8_t overflow;                    // OverflowPolicy
  std::uint8_t reserved[7];
  char name[kGroupNameMax + 1];

  // Next seq to hand out. Advanced by CAS after the lease word of that seq is
  // taken, by the taker or by any member that sees the lease taken (helping).
  alignas(kCacheLine) std::atomic<std::uint64_t> next;
  // Every seq below floor is settled (acked, dead-lettered or skipped).
  // Advanced by CAS over a contiguous run of settled lease words.
  alignas(kCacheLine) std::atomic<std::uint64_t> floor;
  // No lease of this group expires before this monotonic ms (a hint: receive
  // scans for expired leases only once it has passed).
  alignas(kCacheLine) std::atomic<std::uint64_t> deadline_hint_ms;
  std::atomic<std::uint64_t> retired_lease_expiries;  // MemberEntry::lease_expiries of freed members
  alignas(kCacheLine) std::atomic<std::uint64_t> dead_lettered;
  std::atomic<std::uint64_t> dropped;
  std::atomic<std::uint64_t> aborted_skipped;
  std::atomic<std::uint64_t> corrupt_skipped;
  std::atomic<std::uint64_t> retired_delivered;   // counters of freed members
  std::atomic<std::uint64_t> retired_acked;
  std::atomic<std::uint64_t> retired_redelivered;
  std::atomic<std::uint64_t> retired_nacked;
  // RedeliveryWord (redelivery.hpp); 0: no back-off. Written under the admin lock, read by members.
  alignas(kCacheLine) std::atomic<std::uint64_t> redelivery;
  std::atomic<std::uint64_t> retired_redelivered_by[kRedeliveryCauses];
  std::atomic<std::uint64_t> retired_process_once_skips;
  std::atomic<std::uint64_t> retired_ack_latency_sum_ms;
  std::atomic<std::uint64_t> retired_bloom_negatives;  // MemberEntry::bloom_negatives of freed members (was padding)
  alignas(kCacheLine) std::atomic<std::uint64_t> retired_ack_latency[kLatencyBuckets];
};
static_assert(sizeof(GroupEntry) == 9 * kCacheLine);
static_assert(offsetof(GroupEntry, redelivery) == 320);
static_assert(offsetof(GroupEntry, retired_ack_latency) == 384);
static_assert(offsetof(GroupEntry, retired_bloom_negatives) == 376);
static_assert(offsetof(GroupEntry, name) == 16);
static_assert(offsetof(GroupEntry, next) == 64);
static_assert(offsetof(GroupEntry, floor) == 128);
static_assert(offsetof(GroupEntry, deadline_hint_ms) == 192);
static_assert(offsetof(GroupEntry, dead_lettered) == 256);

// Slot header, followed by up to max_message_size payload bytes.
//   0        8      12     16         24        40            48
//   ┌────────┬──────┬──────┬──────────┬─────────┬─────────────┬────────────────┐
//   │ state  │length│flags │ checksum │ key fp  │publish time │ reserved (0)   │
//   │seq<<8|s│      │      │ XXH3-64  │ 128 bit │ realtime ns │                │
//   └────────┴──────┴──────┴──────────┴─────────┴─────────────┴────────────────┘
struct SlotHeader {
  std::atomic<std::uint64_t> state;  // SlotWord: the commit marker
  std::uint32_t length;
  std::uint32_t flags;
  std::uint64_t checksum;
  std::uint64_t key_lo;
  std::uint64_t key_hi;
  std::uint64_t publish_time_ns;
  // Zero. Until format 6 the claimer's pid, claim time and start time, which
  // the mark wrote; a claim's liveness is now judged by the producers'
  // in-flight words (docs/protocol.md §1).
  std::uint64_t reserved[2];
};
static_assert(sizeof(SlotHeader) == kCacheLine);
inline constexpr std::uint32_t kSlotHasKey = 1;  // SlotHeader::flags: key_lo/key_hi hold the key fingerprint
// SlotHeader::flags: a keyed publish whose dedup entry is not committed yet.
// Set with the fields, cleared by the publisher after its entry commit
// (before its in-flight word), so a slot that still has it when its next lap
// begins lost its publisher in between: remember_key_before_reuse (dedup.hpp).
inline constexpr std::uint32_t kSlotKeyUnrecorded = 4;
// SlotHeader::flags: a copy published by Queue::rewind_group for one group
// (bits 8-23: its index, bits 24-31: the low bits of its incarnation, so a
// group removed and created again under the index is not the target).
// Without kSlotHasKey, key_lo holds the seq of the message it copies.
inline constexpr std::uint32_t kSlotReplay = 2;

[[nodiscard]] constexpr std::uint32_t replay_slot_flags(std::uint32_t group, std::uint32_t incarnation) noexcept {
  return kSlotReplay | ((group & 0xffffu) << 8) | ((incarnation & 0xffu) << 24);
}
[[nodiscard]] constexpr std::uint32_t replay_target_group(std::uint32_t flags) noexcept { return (flags >> 8) & 0xffffu; }
// True if a slot with `flags` is for every group, or a replay for this one.
[[nodiscard]] constexpr bool slot_is_for(std::uint32_t flags, std::uint32_t group, std::uint32_t incarnation) noexcept {
  return (flags & kSlotReplay) == 0 ||
         (replay_target_group(flags) == group && (flags >> 24) == (incarnation & 0xffu));
}

// The slot header fields after the state word. Writers and readers access
// them as relaxed atomics (std::atomic_ref): they are published by the state
// word's release/acquire, but a reader whose lease ran out, a peek, or a
// drop-group member may read them while a producer rewrites the slot, and
// validates by re-reading the state word. Relaxed atomics make that race
// defined behaviour (and visible to ThreadSanitizer as intended).
struct SlotFields {
  std::uint32_t length = 0;
  std::uint32_t flags = 0;
  std::uint64_t checksum = 0;
  std::uint64_t key_lo = 0;
  std::uint64_t key_hi = 0;
  std::uint64_t publish_time_ns = 0;
};

template <typename T>
[[nodiscard]] inline T relaxed_load(const T& field) noexcept {
  return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_relaxed);
}
template <typename T>
inline void relaxed_store(T& field, T value) noexcept {
  std::atomic_ref<T>(field).store(value, std::memory_order_relaxed);
}

// Bumps a counter only its owner (one producer handle, one member) writes: a
// load and a store, no RMW; readers (stats) use relaxed loads. A zero bump
// stores nothing. Forced inline: GCC kept it out of line, a call per publish,
// receive and ack on the hot path.
[[gnu::always_inline]] inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) noexcept {
  if (by != 0) counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

[[nodiscard]] inline SlotFields read_fields(const SlotHeader& slot) noexcept {
  return {relaxed_load(slot.length), relaxed_load(slot.flags),  relaxed_load(slot.checksum),
          relaxed_load(slot.key_lo), relaxed_load(slot.key_hi), relaxed_load(slot.publish_time_ns)};
}

inline void write_fields(SlotHeader& slot, const SlotFields& f) noexcept {
  relaxed_store(slot.length, f.length);
  relaxed_store(slot.flags, f.flags);
  relaxed_store(slot.checksum, f.checksum);
  relaxed_store(slot.key_lo, f.key_lo);
  relaxed_store(slot.key_hi, f.key_hi);
  relaxed_store(slot.publish_time_ns, f.publish_time_ns);
}
static_assert(offsetof(SlotHeader, checksum) == 16);
static_assert(offsetof(SlotHeader, publish_time_ns) == 40);
static_assert(offsetof(SlotHeader, reserved) == 48);

static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

// ---- slot state word: (seq << 8) | SlotState -------------------------------
// A slot holding seq s goes free(s) -> committed(s) | aborted(s), then, once
// every floor passed s, committed(s + capacity) | aborted(s + capacity) ...
// A claim is not written into the slot: a claimed, uncommitted seq s is one
// below the tail whose slot still holds free(s) or an earlier lap's word.
// Every transition is a CAS from the exact word the claimer read after its
// claim, so a consumer aborting a stuck claim and the producer committing it
// cannot both win. (State 1, `claimed(s)`, was the mark of formats up to 6.)
enum class SlotState : std::uint8_t { free = 0, committed = 2, aborted = 3 };

struct SlotWord {
  std::uint64_t seq;
  SlotState state;
  [[nodiscard]] static constexpr SlotWord decode(std::uint64_t w) noexcept {
    return {w >> 8, static_cast<SlotState>(w & 0xff)};
  }
  [[nodiscard]] constexpr std::uint64_t encode() const noexcept {
    return ((seq & kSeqMask) << 8) | static_cast<std::uint8_t>(state);
  }
  // Read from the slot of `s`: the slot has not left an earlier lap for s yet
  // (free(s), or a word of a lower seq). While s is claimed, an uncommitted,
  // unaborted claim: a claim is not written into the slot.
  [[nodiscard]] constexpr bool before_lap_of(std::uint64_t s) const noexcept {
    const std::uint64_t mine = s & kSeqMask;
    return seq < mine || (seq == mine && state == SlotState::free);
  }
};

// ---- lease word: one per (group, slot) -------------------------------------
// Empty and leased words:
//  63 62 61            48 47      40 39        32 31                      0
//  ┌─────┬───────────────┬──────────┬────────────┬─────────────────────────┐
//  │state│ generation    │ owner    │ deliveries │ deadline (monotonic ms) │
//  └─────┴───────────────┴──────────┴────────────┴─────────────────────────┘
// generation = (seq >> capacity_log2) mod 2^14: a leased word of another lap
// of the ring does not match within 16384 laps; the group floor fences
// receipts for any number of laps (protocol.md §3). The delivery count fences
// off a stale receipt of an earlier delivery.
//
// Settled words carry the whole seq instead (settled_word):
//  63 62 61    59 58 56 55                                              0
//  ┌─────┬────────┬─────┬─────────────────────────────────────────────────┐
//  │ 10  │ reason │  0  │ seq (56 bits)                                   │
//  └─────┴────────┴─────┴─────────────────────────────────────────────────┘
// A take of a new lap, the skip of an aborted head and the drop push CAS
// from an empty word or from the settled word of an earlier lap. Neither
// value ever comes back in the slot (seqs only grow), so a process stalled
// before such a CAS for any number of laps cannot land on a later lap's word
// (protocol.md §2; the model's `model_take_aba_fixed`).
enum class LeaseState : std::uint8_t { empty = 0, leased = 1, settled = 2 };
enum class SettleReason : std::uint8_t {
  acked = 0,
  dead_lettered = 1,
  aborted = 2,
  corrupt = 3,
  dropped = 4,
  not_for_group = 5,  // a replay copy for another group
};
// Owners of a leased word that are not members (those are below kMaxMembers),
// so no member's receipt matches them. A word given back to the group names
// why in its owner; it is taken over once its deadline passes.
inline constexpr std::uint32_t kNoOwner = 255;        // nacked
// Owner of a lease a drop push is settling (push_group_forward).
inline constexpr std::uint32_t kDroppingOwner = 254;
inline constexpr std::uint32_t kReleasedOwner = 253;  // its holder closed its Consumer
inline constexpr std::uint32_t kDeadOwner = 252;      // its holder died
inline constexpr std::uint32_t kExpiredOwner = 251;   // its lease ran out; waiting out the back-off
static_assert(kExpiredOwner >= kMaxMembers);

// Why a word taken over came back: from its owner field.
[[nodiscard]] constexpr RedeliveryCause redelivery_cause_of(std::uint32_t owner) noexcept {
  switch (owner) {
    case kNoOwner: return RedeliveryCause::nack;
    case kReleasedOwner: return RedeliveryCause::released;
    case kDeadOwner: return RedeliveryCause::death;
    default: return RedeliveryCause::expiry;  // a member's own word, or kExpiredOwner
  }
}
inline constexpr std::uint32_t kGenerationBits = 14;

[[nodiscard]] constexpr LeaseState lease_state_of(std::uint64_t w) noexcept {
  return static_cast<LeaseState>(w >> 62);
}

// The fields of an empty or leased word. (A settled word decodes to state
// `settled` and meaningless other fields: test it with is_settled_for.)
struct LeaseWord {
  LeaseState state;
  std::uint32_t generation;
  std::uint32_t owner;
  std::uint32_t deliveries;
  std::uint32_t deadline_ms;

  [[nodiscard]] static constexpr LeaseWord decode(std::uint64_t w) noexcept {
    return {lease_state_of(w), static_cast<std::uint32_t>((w >> 48) & 0x3fff),
            static_cast<std::uint32_t>((w >> 40) & 0xff), static_cast<std::uint32_t>((w >> 32) & 0xff),
            static_cast<std::uint32_t>(w)};
  }
  [[nodiscard]] constexpr std::uint64_t encode() const noexcept {
    return (std::uint64_t{static_cast<std::uint8_t>(state)} << 62) |
           (std::uint64_t{generation & 0x3fff} << 48) | (std::uint64_t{owner & 0xff} << 40) |
           (std::uint64_t{deliveries & 0xff} << 32) | deadline_ms;
  }
};

[[nodiscard]] constexpr std::uint32_t generation_of(std::uint64_t seq, std::uint32_t capacity_log2) noexcept {
  return static_cast<std::uint32_t>((seq >> capacity_log2) & ((1u << kGenerationBits) - 1));
}

// The word of seq `seq` settled for `reason`.
[[nodiscard]] constexpr std::uint64_t settled_word(std::uint64_t seq, SettleReason reason) noexcept {
  return (std::uint64_t{static_cast<std::uint8_t>(LeaseState::settled)} << 62) |
         (std::uint64_t{static_cast<std::uint8_t>(reason) & 0x7u} << 59) | (seq & kSeqMask);
}
// Whether `w` is the settled word of `seq` (any reason).
[[nodiscard]] constexpr bool is_settled_for(std::uint64_t w, std::uint64_t seq) noexcept {
  return lease_state_of(w) == LeaseState::settled && (w & kSeqMask) == (seq & kSeqMask);
}
[[nodiscard]] constexpr SettleReason settle_reason_of(std::uint64_t w) noexcept {
  return static_cast<SettleReason>((w >> 59) & 0x7u);
}

// Deadlines are 32-bit monotonic milliseconds compared with serial-number
// arithmetic: correct while leases are shorter than 24 days.
[[nodiscard]] constexpr bool deadline_passed(std::uint32_t deadline_ms, std::uint64_t now_ms) noexcept {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(now_ms) - deadline_ms) >= 0;
}

// ---- floor word: (min floor << 8) | version ---------------------------------
[[nodiscard]] constexpr std::uint64_t floor_of(std::uint64_t floor_word) noexcept { return floor_word >> 8; }
[[nodiscard]] constexpr std::uint64_t make_floor_word(std::uint64_t floor, std::uint64_t version) noexcept {
  return ((floor & kSeqMask) << 8) | (version & 0xff);
}

}  // namespace ackring::detail
