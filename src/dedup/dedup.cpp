#include "dedup/dedup.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>
#include <utility>

#include "shm/clock.hpp"
#include "shm/cpu_relax.hpp"
#include "shm/failpoint.hpp"
#include "shm/liveness.hpp"
#include "shm/xxhash_inline.hpp"

namespace ackring::detail {

namespace {

enum Kind : std::uint64_t { kEmpty = 0, kBusy = 1, kReserved = 2, kCommitted = 3 };
constexpr std::uint64_t kTimeMask = (1ull << 40) - 1;
constexpr std::uint64_t kOwnerMask = (1ull << 48) - 1;
constexpr std::uint64_t kBusyByProducer = 1ull << 61;
constexpr std::uint64_t kPidMask = (1ull << 22) - 1;  // pids are below 2^22 (PID_MAX_LIMIT)
constexpr std::uint64_t kClearStaleMs = 20;   // a bloom clear older than this: its clearer is dead or stalled

constexpr std::uint64_t kind_of(std::uint64_t s) noexcept { return s >> 62; }
constexpr std::uint64_t time_of(std::uint64_t s) noexcept { return s & kTimeMask; }
constexpr std::uint64_t owner_of(std::uint64_t s) noexcept { return s & kOwnerMask; }
constexpr std::uint64_t age(std::uint64_t now, std::uint64_t then) noexcept { return now > then ? now - then : 0; }

constexpr std::uint64_t reserved_state(std::uint64_t owner) noexcept { return (kReserved << 62) | (owner & kOwnerMask); }
constexpr std::uint64_t busy_by_owner(std::uint64_t owner) noexcept {
  return (kBusy << 62) | kBusyByProducer | (owner & kOwnerMask);
}
constexpr std::uint64_t busy_by_pid(std::uint32_t pid) noexcept { return (kBusy << 62) | (pid & kPidMask); }
// tag: 22 low bits naming the committer (owner: index and incarnation mixed;
// process-once: pid). Not read by the protocol; it only makes a committed
// word rarely equal to an earlier one of the same entry (ABA of a stalled CAS).
constexpr std::uint64_t committed_state(std::uint64_t tag, std::uint64_t time_ms) noexcept {
  return (kCommitted << 62) | ((tag & 0x3fffff) << 40) | (time_ms & kTimeMask);
}
constexpr std::uint64_t owner_tag(std::uint64_t owner) noexcept { return (owner >> 32) * 64 + (owner & 63); }

// The bloom filter's bit selection: all of a key's 8 bits in one 64-bit word
// of its 256-bit block (the word chosen by fp.lo's top 2 bits, which the
// table index never uses; each bit by (x * salt_i) >> 26, Parquet's salts).
// Setting a fresh key's bits is then one atomic OR instead of four (a full
// barrier each on x86, ~5 ns on an Intel host: the four were most of a
// keyed publish's filter cost), and a lookup loads one word per generation.
// The price is a higher false-positive rate than the split block's (one bit
// per 32-bit word): at one key per table entry, 0.45 % against 0.13 %
// (docs/dedup.md §6); a false positive costs one scan of the key's window.
constexpr std::uint32_t kSalt[8] = {0x47b6137bU, 0x44974d91U, 0x8824ad5bU, 0xa2b7289dU,
                                    0x705495c7U, 0x2df1424bU, 0x9efc4947U, 0x5c6bfb31U};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
std::uint64_t bloom_mask(Fingerprint key) noexcept {
  const auto x = static_cast<std::uint32_t>(key.hi >> 32);
  std::uint64_t m = 0;
  for (const std::uint32_t salt : kSalt) m |= std::uint64_t{1} << ((x * salt) >> 26);
  return m;
}
std::uint32_t bloom_word(Fingerprint key) noexcept { return static_cast<std::uint32_t>(key.lo >> 62); }

// A keyed publish reads its key's whole window (the scans of reserve()):
// 8-9 table lines; a process-once lookup its bloom block in both generations
// (2 lines) and, unless the filter answers, the window too: each line a
// cache miss in a table larger than the caches. Asking for all of them up front lets the
// misses overlap (one memory latency instead of one per line). Prefetches
// are hints: they change no value and need no ordering.
void prefetch_window(const DedupEntry* entries, std::uint64_t mask, std::uint64_t base) noexcept {
  for (std::uint64_t i = 0; i < kDedupProbe; i += 2) __builtin_prefetch(entries + ((base + i) & mask), 0, 3);
  __builtin_prefetch(entries + ((base + kDedupProbe - 1) & mask), 0, 3);  // the 9th line of an odd base
}

// The pre-check of the scans that act only on a match (and on busy entries,
// whose key is unknown): the lookup and validation scans of reserve(), and
// contains(). Most entries of a window hold other keys or nothing, and a
// full examine() of each (a seqlock read of four words) was half of a keyed
// publish's work. One pass without branches reads every entry's state word
// (the seq_cst load examine() starts with) and key low word: bit i of
// `candidates` if entry base + i may hold the key (busy, or its key's low
// word is ours), bit i of `empty` if it was empty (reusable: a claim needs no
// examine()). The callers examine() only the candidates. A mismatch seen here
// is the key the entry held at that load, or the one a writer is putting in
// (not ours either), which is what examine() would conclude; each entry's
// verdict rests on its own seq_cst load, in window order, so the reservation
// handshake is unchanged; a key_lo read of an empty entry is ignored. The
// branchy loop this replaced, interleaved with examine() and its waits, kept
// its state on the stack and mispredicted the window's random pattern of
// used and empty entries at mid load: its two scans were a fifth of a publish.
constexpr std::uint32_t kLookupPart = 4;  // entries per step of the lookup scan: two cache lines
struct WindowScan {
  std::uint32_t candidates = 0;
  std::uint32_t empty = 0;
};
// Positions [First, First + Count) of the window; bits at their positions.
// The bounds are constants so that the loop unrolls into straight code with
// constant shifts; a window that does not wrap past the table's end (all
// but kDedupProbe - 1 of the mask + 1 bases) is read at constant offsets
// from its first entry. The loop with run-time bounds and an index mask per
// entry took ~22 instructions an entry, ~700 of a keyed publish's ~1,520;
// unrolled and inlined, ~14 and ~1,290 (bench/count_instructions.sh;
// docs/performance.md, "What a keyed publish costs"). The loads and their
// order are the same either way.
template <std::uint32_t First = 0, std::uint32_t Count = kDedupProbe>
[[gnu::always_inline]] inline WindowScan scan_window(const DedupEntry* entries, std::uint64_t mask, std::uint32_t base,
                                                     Fingerprint key) noexcept {
  static_assert(First + Count <= kDedupProbe);
  WindowScan w;
  auto scan = [&](auto entry_at) {
#pragma GCC unroll 16
    for (std::uint32_t i = First; i < First + Count; ++i) {
      const DedupEntry& e = entry_at(i);
      // seq_cst: the reservation handshake's loads (examine()); acquire for the key word.
      const std::uint64_t kind = kind_of(e.state.load(std::memory_order_seq_cst));
      // relaxed: after the seq_cst load above.
      const bool same_lo = e.key_lo.load(std::memory_order_relaxed) == key.lo;
      w.empty |= std::uint32_t{kind == kEmpty} << i;
      w.candidates |= std::uint32_t{kind == kBusy || (kind != kEmpty && same_lo)} << i;
    }
  };
  if (std::uint64_t{base} + First + Count <= mask + 1) {
    const DedupEntry* run = entries + base;  // the window's entries in a row
    scan([run](std::uint32_t i) -> const DedupEntry& { return run[i]; });
  } else {
    scan([=](std::uint32_t i) -> const DedupEntry& { return entries[(base + i) & mask]; });
  }
  return w;
}

// The lookup's walk of a window (reserve()'s phase 1, contains()):
// scan_window() a stretch of kLookupPart entries at a time and call
// visit(index) for each candidate, in window order, until it returns true. A
// published key mostly sits near the start of its window, so a lookup that
// finds it waits for those lines only (out of cache, one scan of the whole
// window cost a retried publish 50 ns more). Returns the positions seen empty.
template <typename Visit>
std::uint32_t scan_candidates(const DedupEntry* entries, std::uint64_t mask, std::uint32_t base, Fingerprint key,
                              Visit&& visit) {
  static_assert(kDedupProbe % kLookupPart == 0);
  std::uint32_t empty = 0;
  // Part `Part` of the window: false to go on, true once visit() said stop.
  auto part = [&]<std::uint32_t Part>() {
    const WindowScan seen = scan_window<Part * kLookupPart, kLookupPart>(entries, mask, base, key);
    empty |= seen.empty;
    for (std::uint32_t c = seen.candidates; c != 0; c &= c - 1)
      if (visit(static_cast<std::uint32_t>((base + std::countr_zero(c)) & mask))) return true;
    return false;
  };
  // The parts in window order, each with constant bounds; || stops at the first that says stop.
  [&]<std::uint32_t... Parts>(std::integer_sequence<std::uint32_t, Parts...>) {
    (void)(part.template operator()<Parts>() || ...);
  }(std::make_integer_sequence<std::uint32_t, kDedupProbe / kLookupPart>{});
  return empty;
}

// This process's pid without a syscall per call: cached, and re-read in a
// forked child (pthread_atfork bumps the generation).
std::atomic<std::uint32_t> fork_generation{0};

std::uint32_t own_pid() noexcept {
  static const bool registered = [] {
    ::pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });
    return true;
  }();
  (void)registered;
  static thread_local std::uint32_t pid = 0;
  static thread_local std::uint32_t generation = 0;
  const std::uint32_t now = fork_generation.load(std::memory_order_relaxed);
  if (pid == 0 || generation != now) pid = static_cast<std::uint32_t>(::getpid()), generation = now;
  return pid;
}

}  // namespace

Fingerprint fingerprint(std::string_view key) noexcept {
  const XXH128_hash_t h = XXH3_128bits(key.data(), key.size());
  return {h.low64, h.high64};
}

std::uint64_t processed_key_seed(std::string_view group) noexcept { return XXH3_64bits(group.data(), group.size()); }

Fingerprint processed_key(Fingerprint message_key, bool has_key, std::uint64_t seq, std::uint64_t seed) noexcept {
  std::uint64_t words[3] = {message_key.lo, message_key.hi, has_key ? 1u : 2u};
  if (!has_key) words[0] = seq, words[1] = 0;
  const XXH128_hash_t h = XXH3_128bits_withSeed(words, sizeof words, seed);
  return {h.low64, h.high64};
}

DedupTable::DedupTable(const QueueState& q) noexcept : q_(&q) {
  const Layout& l = q.layout;
  if (l.dedup_entries == 0) return;
  entries_ = reinterpret_cast<DedupEntry*>(q.base + l.dedup_offset);
  mask_ = l.dedup_entries - 1;
  bloom_ = reinterpret_cast<std::atomic<std::uint64_t>*>(q.base + l.bloom_offset);
  bloom_blocks_ = l.bloom_blocks;
  window_ms_ = l.dedup_window_ms;
}

// ------------------------------------------------------------------ bloom --

std::atomic<std::uint64_t>* DedupTable::block(std::uint32_t generation, Fingerprint key) const noexcept {
  const std::uint64_t index = key.hi & (bloom_blocks_ - 1);
  return bloom_ + (std::uint64_t{generation} * bloom_blocks_ + index) * 4;
}

// The header's bloom epoch word:
//   epoch (bits 63-26) | clearer pid (25-4) | cleared generation (3) | untrusted gen 1 (2) | untrusted gen 0 (1) | clearing (0)
// epoch: the filter is rotated to it (its generation, epoch & 1, was cleared
// for it, or is being cleared while "clearing" is set and the cleared
// generation is epoch & 1). "clearing": process `pid` clears generation
// `cleared generation` and may still store zeros into it (it is alive, maybe
// stalled). "untrusted g": generation g may lack bits of keys still inside
// their window; lookups ignore the filter for it until its next clean clear.
namespace {
constexpr std::uint64_t kEpochShift = 26;
constexpr std::uint64_t kClearing = 1;
constexpr std::uint64_t kClearedGen = 8;
constexpr std::uint64_t untrusted_bit(std::uint64_t generation) noexcept { return 2ull << (generation & 1); }
constexpr std::uint64_t kUntrusted = untrusted_bit(0) | untrusted_bit(1);
constexpr std::uint64_t epoch_of(std::uint64_t b) noexcept { return b >> kEpochShift; }
constexpr std::uint32_t clearer_of(std::uint64_t b) noexcept { return static_cast<std::uint32_t>((b >> 4) & kPidMask); }
constexpr std::uint64_t cleared_gen_of(std::uint64_t b) noexcept { return (b & kClearedGen) != 0 ? 1 : 0; }
constexpr std::uint64_t clearing_word(std::uint64_t epoch, std::uint32_t pid, std::uint64_t generation,
                                      std::uint64_t flags) noexcept {
  return (epoch << kEpochShift) | (std::uint64_t{pid & kPidMask} << 4) | ((generation & 1) != 0 ? kClearedGen : 0) |
         (flags & kUntrusted) | kClearing;
}
constexpr std::uint64_t done_word(std::uint64_t epoch, std::uint64_t flags) noexcept {
  return (epoch << kEpochShift) | (flags & kUntrusted);
}
}  // namespace

bool DedupTable::bloom_may_contain(Fingerprint key) const noexcept {
  if (bloom_blocks_ == 0) return true;  // no filter (QueueOptions::dedup_bloom off): every key may be there
  __builtin_prefetch(block(1, key), 0, 3);  // both generations' misses at once (a hint, no ordering)
  // seq_cst: an inserter marks a generation untrusted before setting its bits.
  const std::uint64_t word = q_->header().bloom_epoch.load(std::memory_order_seq_cst);
  // Both generations, whatever the epoch: a key inside the window has its
  // bits in one of them; bits of older keys only add false positives.
  const std::uint64_t m = bloom_mask(key);
  const std::uint32_t w = bloom_word(key);
  for (std::uint32_t gen = 0; gen < 2; ++gen) {
    if ((word & untrusted_bit(gen)) != 0) return true;  // may have lost bits: ask the table
    // seq_cst: pairs with bloom_insert's seq_cst fetch_or.
    if ((block(gen, key)[w].load(std::memory_order_seq_cst) & m) == m) return true;
  }
  return false;
}

// Makes generation (epoch & 1) ready for the inserts of `epoch`: cleared
// once, by the first inserter of the epoch. A clearer's stores are plain
// stores in a loop: one that stalls may zero words at any later time, so
// nothing it clears is trusted while it lives. Inserters never wait more
// than kClearStaleMs for it: they mark its generation untrusted and go on
// (docs/dedup.md §6).
void DedupTable::ensure_rotated(std::uint64_t epoch) noexcept {
  auto& word = q_->header().bloom_epoch;
  // acquire: pairs with the clearer's release of the done word: the cleared words are visible.
  std::uint64_t b = word.load(std::memory_order_acquire);
  if (b == done_word(epoch, b)) return;  // rotated and cleared: the common case, no clock read
  std::uint64_t started = 0;
  for (;;) {
    if (epoch_of(b) > epoch) return;  // a later epoch began: our bits only add false positives
    if ((b & kClearing) == 0) {
      if (epoch_of(b) == epoch) return;
      // An older epoch, no clearer: clear our generation. Its untrusted flag,
      // if set, is about keys of epoch - 2 or older (generation epoch & 1
      // took no insert since), out of their window: the clear drops it.
      const std::uint64_t mine = clearing_word(epoch, own_pid(), epoch, b & ~untrusted_bit(epoch));
      // acq_rel: one process wins the right to clear this epoch's generation.
      if (!word.compare_exchange_strong(b, mine, std::memory_order_acq_rel)) continue;
      clear_generation(mine);
      b = word.load(std::memory_order_acquire);
      continue;
    }
    // A clearer is recorded.
    const std::uint64_t gen = cleared_gen_of(b);
    const bool flagged = (b & untrusted_bit(gen)) != 0;
    if (!flagged && epoch_of(b) == epoch) {
      // A clear of our own generation in progress: it takes microseconds;
      // wait for it, but only so long.
      if (started == 0) started = coarse_monotonic_ms();
      if (age(coarse_monotonic_ms(), started) < kClearStaleMs) {
        cpu_relax();
        // acquire: as above: pairs with the clearer's release of the done word (its zeroing before our bits).
        b = word.load(std::memory_order_acquire);
        continue;
      }
    }
    // Already found stalled: go on at once, and look it up again only now and then.
    static thread_local std::uint32_t calls = 0;
    if ((!flagged || (++calls & 63) == 0) && !is_alive(static_cast<pid_t>(clearer_of(b)), 0)) {
      // Dead: it stores nothing more. Its generation keeps the bits it did not
      // clear (false positives only) and its flags (keys inserted meanwhile).
      if (!word.compare_exchange_strong(b, done_word(epoch_of(b), b), std::memory_order_acq_rel)) continue;
      b = word.load(std::memory_order_acquire);
      continue;
    }
    // The clearer is alive and slow, or stalled, or clearing for an older
    // epoch: mark the generation it clears untrusted (its late stores may
    // zero bits set from now on), and rotate to our epoch without a clear
    // (our generation keeps old bits: false positives only; nobody clears it
    // for this epoch later, so the bits we set stay). seq_cst: before our bits.
    const std::uint64_t next = clearing_word(std::max(epoch_of(b), epoch), clearer_of(b), gen, b | untrusted_bit(gen));
    if (next == b || word.compare_exchange_strong(b, next, std::memory_order_seq_cst)) return;
  }
}

// Clears the generation named in `mine`, the clearing word we installed.
void DedupTable::clear_generation(std::uint64_t mine) noexcept {
  auto& word = q_->header().bloom_epoch;
  const std::uint64_t gen = cleared_gen_of(mine);
  auto* words = bloom_ + gen * bloom_blocks_ * 4;
  // relaxed: published by the release CAS below; inserters of this epoch wait for it.
  for (std::uint64_t i = 0; i < std::uint64_t{bloom_blocks_} * 4; ++i) words[i].store(0, std::memory_order_relaxed);
  // Done: drop the clearer, keep the epoch (others may have moved it on, if
  // they found us slow) and every flag (one set for our generation while we
  // cleared is about bits we may have zeroed).
  std::uint64_t b = mine;
  for (;;) {
    if ((b & kClearing) == 0 || clearer_of(b) != (own_pid() & kPidMask) || cleared_gen_of(b) != gen) return;
    // release: the cleared words before the done word (inserters acquire it).
    if (word.compare_exchange_weak(b, done_word(epoch_of(b), b), std::memory_order_release, std::memory_order_relaxed))
      return;
  }
}

void DedupTable::bloom_insert(Fingerprint key, std::uint64_t now_ms) noexcept {
  if (bloom_blocks_ == 0) return;  // no filter: lookups always probe the table
  const std::uint64_t epoch = now_ms / window_ms_;
  ensure_rotated(epoch);
  auto& word = block(static_cast<std::uint32_t>(epoch & 1), key)[bloom_word(key)];
  const std::uint64_t m = bloom_mask(key);
  // seq_cst: one order with the lookups' seq_cst loads, and before the
  // record's claim CAS (insert()): a lookup that misses these bits comes
  // before the record exists, and is concurrent with its insert.
  if ((word.load(std::memory_order_relaxed) & m) != m) word.fetch_or(m, std::memory_order_seq_cst);
}

void DedupTable::prefetch_for_publish(Fingerprint key) const noexcept {
  if (enabled()) prefetch_window(entries_, mask_, key.lo & mask_);  // a keyed publish reads no filter
}

void DedupTable::prefetch(Fingerprint key) const noexcept {
  if (!enabled()) return;
  if (bloom_blocks_ != 0) {
    __builtin_prefetch(block(0, key), 0, 3);
    __builtin_prefetch(block(1, key), 0, 3);
  }
  prefetch_window(entries_, mask_, key.lo & mask_);
}

// ------------------------------------------------------------------ table --

bool DedupTable::owner_alive(std::uint64_t owner) const noexcept {
  const std::uint32_t index = dedup_owner_index(owner);
  if (index >= q_->layout.max_producers) return false;
  const auto& e = q_->producer(index);
  // acquire: pairs with registration's release of start_time. The owner is
  // the registration with this exact incarnation (32 bits: a re-registered
  // entry names another owner); while it lives, its entry does not change.
  const std::uint32_t pid = e.pid.load(std::memory_order_acquire);
  if (pid == 0 || e.incarnation.load(std::memory_order_acquire) != dedup_owner_incarnation(owner)) return false;
  return is_alive(static_cast<pid_t>(pid), e.start_time.load(std::memory_order_acquire));
}

bool DedupTable::busy_writer_alive(std::uint64_t state) const noexcept {
  if ((state & kBusyByProducer) != 0) return owner_alive(owner_of(state));
  // A process-once writer is named by its pid alone: a reused pid makes a
  // dead writer look alive (its entry stays busy, never wrongly taken).
  return is_alive(static_cast<pid_t>(state & kPidMask), 0);
}

// True if the seq a reservation recorded (value = 1 + seq) is a committed
// slot carrying `key`: the publish happened, whatever its owner does next.
// False if the slot holds anything else — for a dead owner that means it
// never committed, unless the slot was reused since (docs/dedup.md, "the
// slot was reused").
bool DedupTable::slot_committed_with(Fingerprint key, std::uint64_t value) const noexcept {
  if (value == 0) return false;  // no seq claimed yet: nothing was published
  const std::uint64_t seq = value - 1;
  const SlotHeader& slot = q_->slot(seq);
  // acquire: pairs with the commit CAS; then the key fields are complete (re-checked below).
  const std::uint64_t before = slot.state.load(std::memory_order_acquire);
  const SlotWord sw = SlotWord::decode(before);
  if (sw.seq != (seq & kSeqMask) || sw.state != SlotState::committed) return false;
  const SlotFields f = read_fields(slot);
  const std::uint32_t flags = f.flags;
  const Fingerprint stored{f.key_lo, f.key_hi};
  // The state word changes only at the next lap's commit or abort, after the
  // fields are rewritten (protocol.md §1), so an unchanged word does not
  // prove the fields were not. It need not: whoever rewrites or aborts the
  // slot's next lap first records this key (remember_key_before_reuse, then
  // its first store), so a read that saw a rewritten field comes after the
  // entry was committed, and what the caller does on its older view of the
  // entry (a CAS from the reserved state) fails. The caller that records the
  // key is the one rewriting the slot, which needs the answer before any
  // store: the tail, already past this lap for it, cannot be the check.
  std::atomic_thread_fence(std::memory_order_acquire);  // the field reads happen before the re-check
  return slot.state.load(std::memory_order_relaxed) == before && (flags & kSlotHasKey) != 0 && stored == key;
}

// A reservation whose recorded slot is committed with its key: make the
// entry a committed record (value already 1 + seq; only the state word
// changes), so that the key is remembered even after that slot is reused.
// Anyone may do it; the owner's own commit() then finds it done.
bool DedupTable::help_commit(std::uint32_t index, std::uint64_t reserved_word, std::uint64_t now_ms) noexcept {
  std::uint64_t expected = reserved_word;
  // seq_cst: a state transition like every other (the validation handshake reads them seq_cst).
  return entries_[index].state.compare_exchange_strong(
      expected, committed_state(owner_tag(owner_of(reserved_word)), now_ms), std::memory_order_seq_cst);
}

// Long on purpose: one seqlock read of an entry and the case analysis of its
// state word (busy / reserved / committed), each case next to the others.
DedupTable::Seen DedupTable::examine(std::uint32_t index, Fingerprint key, std::uint64_t now_ms,
                                     bool check_liveness) noexcept {
  DedupEntry& e = entries_[index];
  Seen x;
  for (;;) {
    // seq_cst: the reservation handshake (reserve() phase 3) needs a single order of
    // reservation stores and validation loads. Acquire for the key fields below.
    x.state = e.state.load(std::memory_order_seq_cst);
    if (kind_of(x.state) == kEmpty) {  // reusable, and no key to compare: skip the field reads
      x.cls = Class::reusable;
      return x;
    }
    const std::uint64_t lo = e.key_lo.load(std::memory_order_relaxed);
    const std::uint64_t hi = e.key_hi.load(std::memory_order_relaxed);
    const std::uint64_t value = e.value.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);  // a seqlock read: fields before the re-check
    if (e.state.load(std::memory_order_relaxed) != x.state) continue;
    x.time = time_of(x.state);
    x.match = lo == key.lo && hi == key.hi;
    const Fingerprint stored{lo, hi};
    switch (kind_of(x.state)) {
      case kBusy:
        // Being re-keyed: its key is unknown. Taken only once its writer is
        // dead: a stalled writer resumes with stores into the fields.
        x.match = false;
        x.cls = check_liveness && !busy_writer_alive(x.state) ? Class::reusable : Class::busy;
        break;
      case kReserved: {
        // 1. Published, whoever the owner: its recorded slot is committed with the key.
        if (slot_committed_with(stored, value)) {
          help_commit(index, x.state, now_ms);
          x.cls = Class::live_committed;
          x.seq = value - 1;
          x.time = now_ms;
          break;
        }
        // 2. A publish in progress: a live owner's reservation is never taken, however old.
        if ((!check_liveness && !x.match) || owner_alive(owner_of(x.state))) {
          x.cls = Class::live_reserved;
          break;
        }
        // 3. Its owner is dead: it stores nothing more. Read the value again
        // (it may have recorded a seq, and committed it, after our first read
        // and before dying) and look at that slot once more.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        const std::uint64_t final_value = e.value.load(std::memory_order_acquire);
        if (e.state.load(std::memory_order_seq_cst) != x.state) continue;  // changed meanwhile: read it again
        if (slot_committed_with(stored, final_value)) {
          help_commit(index, x.state, now_ms);
          x.cls = Class::live_committed;
          x.seq = final_value - 1;
          x.time = now_ms;
        } else {
          x.cls = Class::reusable;  // an orphan that published nothing
        }
        break;
      }
      default:  // committed
        x.cls = age(now_ms, x.time) >= window_ms_ ? Class::reusable : Class::live_committed;
        x.seq = value - 1;
        break;
    }
    return x;
  }
}

DedupTable::Pick DedupTable::pick_reusable(std::uint32_t base, Fingerprint key, std::uint64_t now_ms,
                                           DedupCounters& counters) noexcept {
  // One scan finds the first reusable entry and, in case there is none, the
  // oldest committed key to evict (at high load every scan of the window is
  // a large part of a keyed publish's cost).
  bool saw_blocked = false;
  Pick oldest;
  std::uint64_t oldest_time = ~0ull;
  for (std::uint32_t i = 0; i < kDedupProbe; ++i) {
    const auto index = static_cast<std::uint32_t>((base + i) & mask_);
    const Seen x = examine(index, key, now_ms, /*check_liveness=*/false);
    if (x.cls == Class::reusable) {
      if (kind_of(x.state) != kEmpty) ++counters.expired_reused;
      return {index, x.state};
    }
    saw_blocked |= x.cls == Class::live_reserved || x.cls == Class::busy;
    // Never our own key as the victim: it was committed by a racer since our
    // lookup, and the validation scan must find it there and answer
    // duplicate, not see it overwritten.
    if (x.cls == Class::live_committed && !x.match && kind_of(x.state) == kCommitted && x.time < oldest_time)
      oldest = {index, x.state}, oldest_time = x.time;
  }
  // A reservation whose owner is dead (or a busy entry whose writer is) is
  // reusable too; finding out reads /proc, so only when the window holds
  // such entries and nothing else is free. The entry is claimed from exactly
  // the word judged here: a dead owner changes nothing, so if the word is
  // unchanged at the CAS, so is the verdict.
  for (std::uint32_t i = 0; i < kDedupProbe && saw_blocked; ++i) {
    const auto index = static_cast<std::uint32_t>((base + i) & mask_);
    const Seen x = examine(index, key, now_ms, /*check_liveness=*/true);
    if (x.cls != Class::reusable) continue;
    if (kind_of(x.state) != kEmpty) ++counters.expired_reused;
    return {index, x.state};
  }
  if (q_->layout.dedup_policy == static_cast<std::uint32_t>(DedupFullPolicy::evict_oldest) && oldest.index >= 0) {
    q_->header().dedup_evicted.fetch_add(1, std::memory_order_relaxed);
    return oldest;
  }
  q_->header().dedup_full.fetch_add(1, std::memory_order_relaxed);
  return {};
}

bool DedupTable::claim(std::uint32_t index, std::uint64_t observed, Fingerprint key, std::uint64_t busy_state,
                       std::uint64_t final_state, std::uint64_t value) noexcept {
  DedupEntry& e = entries_[index];
  // seq_cst (acq_rel at least): one claimer wins; the acquire half keeps the field
  // stores below after it, which the readers' seqlock check relies on.
  if (!e.state.compare_exchange_strong(observed, busy_state, std::memory_order_seq_cst)) return false;
  e.key_lo.store(key.lo, std::memory_order_relaxed);
  e.key_hi.store(key.hi, std::memory_order_relaxed);
  e.value.store(value, std::memory_order_relaxed);
  // seq_cst: publishes the fields (release) and takes part in the reservation
  // handshake. A CAS, not a store: a busy entry is taken from its writer only
  // once the writer is dead, so this fails only if we were judged dead.
  std::uint64_t busy = busy_state;
  return e.state.compare_exchange_strong(busy, final_state, std::memory_order_seq_cst);
}

namespace {

// Spins (then yields) until the entry's state word changes, `unblocked()`
// says the entry no longer holds us up (checked every ms: it may read
// /proc), or the deadline passes. Returns false on the deadline.
template <typename Unblocked>
bool wait_for_change(const std::atomic<std::uint64_t>& state, std::uint64_t seen, std::uint64_t deadline_ns,
                     Unblocked&& unblocked) {
  std::uint64_t next_check_ns = monotonic_ns() + 1'000'000;
  for (std::uint32_t spin = 0;; ++spin) {
    // acquire: pairs with the entry's seq_cst state CASes; only says when to re-examine (which reads seq_cst).
    if (state.load(std::memory_order_acquire) != seen) return true;
    if ((spin & 63) != 0) {
      cpu_relax();
      continue;
    }
    const std::uint64_t now = monotonic_ns();
    if (now >= deadline_ns) return false;
    if (now >= next_check_ns) {
      if (unblocked()) return true;  // the caller re-examines and finds it reusable or published
      next_check_ns = now + 1'000'000;
    }
    if (spin > 4096) sched_yield();
  }
}

}  // namespace

// Long on purpose: the phases of the dedup insert (docs/dedup.md) and the
// loop that restarts them read as one sequence, top to bottom; split into
// helpers, each would need the loop's whole state passed in and out.
Reservation DedupTable::reserve(Fingerprint key, std::uint64_t owner, std::uint64_t now_ms, std::uint64_t timeout_ns,
                                DedupCounters& counters) noexcept {
  mine_ = 0;
  // The deadline costs a precise clock read: only a publisher that has to
  // wait, or to start over, pays it (from then on).
  std::uint64_t deadline_ns = 0;
  auto deadline = [&] {
    if (deadline_ns == 0) {
      const std::uint64_t now = monotonic_ns();
      deadline_ns = timeout_ns > ~0ull - now ? ~0ull : now + timeout_ns;
    }
    return deadline_ns;
  };
  const auto base = static_cast<std::uint32_t>(key.lo & mask_);
  prefetch_window(entries_, mask_, base);
  // Waits for entry `index`, seen as `x` (a live reservation of our key), to
  // change: it commits, is released, or its owner turns out dead.
  auto wait = [&](std::uint32_t index, const Seen& x) {
    return wait_for_change(entries_[index].state, x.state, deadline(), [&] {
      const Seen now = examine(index, key, std::max(now_ms, coarse_monotonic_ms()), /*check_liveness=*/true);
      return now.state != x.state || now.cls != Class::live_reserved;
    });
  };
  auto give_up = [&](std::uint32_t index, std::uint64_t reserved_word) {
    std::uint64_t expected = reserved_word;
    // seq_cst: waiters on this entry see the change and re-examine.
    entries_[index].state.compare_exchange_strong(expected, 0, std::memory_order_seq_cst);
  };
  auto index_at = [&](std::uint32_t position) { return static_cast<std::uint32_t>((base + position) & mask_); };
  const std::uint64_t reserved_word = reserved_state(owner);
  for (std::uint32_t attempt = 0;; ++attempt) {
    if (attempt != 0) {
      // Every new attempt is bounded by the deadline, whatever made us start over.
      if (monotonic_ns() >= deadline()) return {ReserveOutcome::timeout, 0, 0};
      now_ms = std::max(now_ms, coarse_monotonic_ms());  // the caller's reading is fresh the first time
    }
    // Phase 1: is the key already published, or being published? The bloom
    // filter is not asked: the scan costs about what its lookup and insert
    // did, and it also finds the entry to claim (docs/dedup.md §6).
    Pick orphan;  // an entry the lookup examined and found reusable: an orphan of our key, say
    std::optional<Reservation> answer;  // duplicate, or timeout behind a racer
    bool restart = false;
    const std::uint32_t empty_seen = scan_candidates(entries_, mask_, base, key, [&](std::uint32_t index) {
      const Seen x = examine(index, key, now_ms, false);
      if (x.cls == Class::reusable && orphan.index < 0) orphan = {index, x.state};
      if (!x.match) return false;
      if (x.cls == Class::live_committed) {
        ++counters.hits;
        answer = Reservation{ReserveOutcome::duplicate, 0, x.seq};
        return true;
      }
      if (x.cls != Class::live_reserved) return false;
      if (wait(index, x)) restart = true;
      else answer = Reservation{ReserveOutcome::timeout, 0, 0};
      return true;
    });
    if (answer) return *answer;
    if (restart) continue;
    // Phase 2: reserve a reusable entry of the window, claimed from exactly
    // the state word that was judged reusable (no second judgement): one the
    // lookup examined (an orphan of our key is taken back at once, as the
    // search below would), else the first it saw empty, else the search.
    const Pick picked = orphan.index >= 0  ? orphan
                        : empty_seen != 0 ? Pick{index_at(static_cast<std::uint32_t>(std::countr_zero(empty_seen))), 0}
                                            : pick_reusable(base, key, now_ms, counters);
    if (picked.index < 0) return {ReserveOutcome::full, 0, 0};
    if (orphan.index >= 0 && kind_of(orphan.observed) != kEmpty) ++counters.expired_reused;
    const auto mine = static_cast<std::uint32_t>(picked.index);
    if (!claim(mine, picked.observed, key, busy_by_owner(owner), reserved_word, 0)) continue;
    ACKRING_FAILPOINT("dedup.after_reserve");
    // Phase 3: validate against racers. Both we and any racer stored a
    // reservation (seq_cst) before scanning (seq_cst), so at least one of us
    // sees the other. Rule: a live match at a lower position wins and we back
    // off; one at a higher position backs off when it sees us, so we wait for
    // it to resolve; a committed match anywhere means the key is published.
    // A busy entry is skipped: if it is a racer of our key, its reservation
    // store comes after our load, so its scan sees ours (docs/dedup.md).
    const std::uint32_t my_pos = (mine - base) & static_cast<std::uint32_t>(mask_);
    const WindowScan validation = scan_window(entries_, mask_, base, key);
    for (std::uint32_t c = validation.candidates; c != 0 && !restart; c &= c - 1) {
      const auto i = static_cast<std::uint32_t>(std::countr_zero(c));
      const std::uint32_t index = index_at(i);
      if (index == mine) continue;
      for (;;) {
        const Seen x = examine(index, key, now_ms, false);
        if (!x.match) break;
        if (x.cls == Class::live_committed) {
          give_up(mine, reserved_word);
          ++counters.hits;
          return {ReserveOutcome::duplicate, 0, x.seq};
        }
        if (x.cls != Class::live_reserved) break;  // an orphan of our key that published nothing
        if (i < my_pos) {
          give_up(mine, reserved_word);
          if (!wait(index, x)) return {ReserveOutcome::timeout, 0, 0};
          restart = true;
          break;
        }
        if (!wait(index, x)) {
          give_up(mine, reserved_word);
          return {ReserveOutcome::timeout, 0, 0};
        }
      }
    }
    if (restart) continue;
    mine_ = reserved_word;
    mine_ms_ = now_ms;
    ACKRING_FAILPOINT("dedup.after_validate");
    return {ReserveOutcome::reserved, mine, 0};
  }
}

bool DedupTable::set_claimed(std::uint32_t entry, std::uint64_t seq) noexcept {
  DedupEntry& e = entries_[entry];
  // A live owner's reservation is never taken (docs/dedup.md), so this holds;
  // checked anyway, so that a broken promise cannot write into another's entry.
  const std::uint64_t s = e.state.load(std::memory_order_acquire);
  const bool mine = kind_of(s) == kReserved && (mine_ == 0 || s == mine_);
  // release: ordered before the slot's commit, so whoever finds this
  // reservation orphaned can look the message up.
  if (mine) e.value.store(seq + 1, std::memory_order_release);
  ACKRING_FAILPOINT("dedup.after_set_claimed");
  return mine;
}

bool DedupTable::commit(std::uint32_t entry, std::uint64_t seq) noexcept {
  ACKRING_FAILPOINT("dedup.before_entry_commit");
  DedupEntry& e = entries_[entry];
  // seq_cst: a state read of the reservation protocol like examine(); its acquire half covers `value` below.
  std::uint64_t s = e.state.load(std::memory_order_seq_cst);
  for (;;) {
    // relaxed: after the seq_cst load (which acquires); the CAS below checks
    // that the state did not change, and with it the value (only our own
    // set_claimed, or a claim, which changes the state first, writes it).
    const std::uint64_t value = e.value.load(std::memory_order_relaxed);
    if (kind_of(s) == kCommitted) return value == seq + 1;  // someone found our slot committed and did it for us
    if (kind_of(s) != kReserved || (mine_ != 0 && s != mine_)) return false;
    if (value != seq + 1) {
      if (value != 0 || s != mine_) return false;  // another seq recorded: not our reservation
      e.value.store(seq + 1, std::memory_order_release);  // set_claimed was skipped (tests do)
    }
    // The window starts now, when the key is known published (not at the
    // reservation, which may be long before after a stall).
    const std::uint64_t now_ms = std::max(coarse_monotonic_ms(), mine_ms_);
    // seq_cst: publishes the record; a waiter on this entry sees it change.
    if (e.state.compare_exchange_strong(s, committed_state(owner_tag(owner_of(s)), now_ms), std::memory_order_seq_cst))
      return true;
  }
}

bool DedupTable::release(std::uint32_t entry) noexcept {
  DedupEntry& e = entries_[entry];
  // seq_cst: a state read of the reservation protocol like examine(); its acquire half covers value and key.
  std::uint64_t s = e.state.load(std::memory_order_seq_cst);
  if (kind_of(s) != kReserved || (mine_ != 0 && s != mine_)) return false;
  const std::uint64_t value = e.value.load(std::memory_order_relaxed);
  const Fingerprint key{e.key_lo.load(std::memory_order_relaxed), e.key_hi.load(std::memory_order_relaxed)};
  if (slot_committed_with(key, value)) {  // the message is in the queue: keep the key
    help_commit(entry, s, std::max(coarse_monotonic_ms(), mine_ms_));
    return false;
  }
  // seq_cst: waiters on this entry see the change and re-examine.
  return e.state.compare_exchange_strong(s, 0, std::memory_order_seq_cst);
}

void DedupTable::remember_published(Fingerprint key, std::uint64_t seq, std::uint64_t now_ms) noexcept {
  const auto base = static_cast<std::uint32_t>(key.lo & mask_);
  for (std::uint32_t i = 0; i < kDedupProbe; ++i) {
    const auto index = static_cast<std::uint32_t>((base + i) & mask_);
    DedupEntry& e = entries_[index];
    // seq_cst: like every state read of the reservation protocol (examine).
    const std::uint64_t s = e.state.load(std::memory_order_seq_cst);
    if (kind_of(s) != kReserved) continue;
    const Fingerprint stored{e.key_lo.load(std::memory_order_relaxed), e.key_hi.load(std::memory_order_relaxed)};
    const std::uint64_t value = e.value.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);  // a seqlock read: fields before the re-check
    if (e.state.load(std::memory_order_relaxed) != s || stored != key || value != seq + 1) continue;
    // The slot check again (it is what proves the publish), then one CAS.
    if (slot_committed_with(stored, value)) help_commit(index, s, now_ms);
  }
}

// The slow path of remember_key_before_reuse (dedup.hpp).
void remember_unrecorded_key(const QueueState& q, const SlotHeader& slot, std::uint64_t committed_seq) noexcept {
  DedupTable table(q);
  if (!table.enabled()) return;
  table.remember_published(Fingerprint{relaxed_load(slot.key_lo), relaxed_load(slot.key_hi)}, committed_seq,
                           coarse_monotonic_ms());
}

bool DedupTable::contains(Fingerprint key, std::uint64_t now_ms, DedupCounters& counters) noexcept {
  if (!bloom_may_contain(key)) {
    ++counters.bloom_negatives;
    return false;
  }
  const auto base = static_cast<std::uint32_t>(key.lo & mask_);
  bool found = false;
  (void)scan_candidates(entries_, mask_, base, key, [&](std::uint32_t index) {
    const Seen x = examine(index, key, now_ms, false);
    return found = x.match && x.cls == Class::live_committed;
  });
  if (found) ++counters.hits;
  return found;
}

bool DedupTable::insert(Fingerprint key, std::uint64_t seq, std::uint64_t now_ms) noexcept {
  DedupCounters ignored;
  if (contains(key, now_ms, ignored)) return true;
  const auto base = static_cast<std::uint32_t>(key.lo & mask_);
  const std::uint32_t pid = own_pid();
  for (int attempt = 0; attempt < 8; ++attempt) {
    const Pick picked = pick_reusable(base, key, now_ms, ignored);
    if (picked.index < 0) return false;
    const auto index = static_cast<std::uint32_t>(picked.index);
    bloom_insert(key, now_ms);
    if (claim(index, picked.observed, key, busy_by_pid(pid), committed_state(pid, now_ms), seq + 1)) return true;
  }
  return false;
}

DedupTable::Load DedupTable::load(std::uint64_t now_ms) const noexcept {
  Load l;
  if (!enabled()) return l;
  l.entries = mask_ + 1;
  for (std::uint64_t i = 0; i <= mask_; ++i) {
    const std::uint64_t s = entries_[i].state.load(std::memory_order_relaxed);
    const std::uint64_t kind = kind_of(s);
    if (kind == kReserved || (kind == kCommitted && age(now_ms, time_of(s)) < window_ms_)) ++l.live;
  }
  return l;
}

}  // namespace ackring::detail
