// The publish path: in-flight word -> claim (CAS on tail) -> read the slot
// word -> write -> commit (CAS on the slot state from the word read) -> clear
// the in-flight word. docs/protocol.md §1 argues why each step is safe when
// the process stalls there for any time, or dies there.
#include "ackring/producer.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <new>

#include "shm/clock.hpp"
#include "shm/cpu_relax.hpp"
#include "dedup/dedup.hpp"
#include "shm/failpoint.hpp"
#include "queue/durability.hpp"
#include "queue/group.hpp"
#include "shm/queue_state.hpp"
#include "shm/tsc_clock.hpp"
#include "shm/wait.hpp"
#include "shm/xxhash_inline.hpp"

namespace ackring {

using namespace detail;

namespace {

enum class Write : std::uint8_t { committed, aborted, corrupt };

// The slot fields a publish chooses: plain (0), keyed (kSlotHasKey + key),
// or a replay copy (kSlotReplay ..., see layout.hpp).
struct Stamp {
  std::uint32_t flags = 0;
  std::uint64_t key_lo = 0;
  std::uint64_t key_hi = 0;
};

// Asks for write ownership of a slot's header line and first payload line
// ahead of use. Consumers read every slot a lap earlier, so its lines sit in
// their cores' caches; without this, the first store (and the commit CAS)
// waits for the other core to give the line up — a cross-core round trip per
// message. Two slots
// ahead: the transfer takes longer than one publish, so one slot ahead is
// still in flight when the write comes; three ahead is no better than two,
// and four is slower than none (bench/README.md, "The producer's PREFETCHW
// distance", has the runs, including vCPUs that share a cache). A
// hint, never a write: when the ring is full the slot ahead still holds a
// message a consumer is about to read, and the cost is that consumer
// fetching the line back.
constexpr std::uint64_t kPrefetchAhead = 2;

inline void prefetch_for_write(const void* line) noexcept {
#if defined(__x86_64__)
  // PREFETCHW by hand: GCC emits it for __builtin_prefetch(p, 1) only with
  // -mprfchw; CPUs without it execute the opcode as a NOP.
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(line)));
#else
  __builtin_prefetch(line, /*rw=*/1);
#endif
}

// Writes one claimed seq. `aborted` means a consumer gave up on this claim
// (we stalled longer than claim_timeout, or were judged dead): nothing was
// published and the caller publishes the message again at a new seq. The
// slot cannot have been reused meanwhile: our in-flight word holds every
// seq from our claim on back from reuse until we clear it (protocol.md §1).
// No mark: the slot word read here is what the commit CAS expects, so a
// consumer's abort (a CAS from the same word) and our commit exclude each
// other, and readers of the slot's previous lap validate by their lease word
// or the tail instead of by the slot state (protocol.md §1).
// Inlined into each caller: it is most of a publish, and the call itself
// (argument set-up, saved and restored registers) showed in every profile.
[[gnu::always_inline]] inline Write write_slot(const QueueState& q, std::uint64_t seq, Bytes payload,
                                               std::uint64_t publish_time_ns, const Stamp& stamp) noexcept {
  SlotHeader& slot = q.slot(seq);
  // Addresses computed once: the atomics below make the compiler reload the
  // layout for every q.slot()/q.payload() it would otherwise compute again.
  std::byte* const payload_dst = q.payload(seq);
  const SlotHeader& ahead = q.slot(seq + kPrefetchAhead);
  prefetch_for_write(&ahead);
  prefetch_for_write(&ahead + 1);  // its first payload line (q.payload of that seq)
  // acquire: pairs with the last lap's commit or abort CAS; its fields (the key
  // remember_key_before_reuse may read) are visible. The commit CAS expects
  // exactly this value: seqs only grow and our in-flight word keeps other
  // producers out, so the word cannot change and come back; only a
  // consumer's abort (to aborted(seq)) can change it before our commit.
  std::uint64_t observed = slot.state.load(std::memory_order_acquire);
  const SlotWord prior = SlotWord::decode(observed);
  const std::uint64_t mine = seq & kSeqMask;
  if (prior.seq == mine && prior.state == SlotState::aborted) return Write::aborted;
  // The floor check let us claim `seq`, so every group is done with whatever
  // an earlier lap left here, and no live producer still writes it: normally
  // committed/aborted seq - capacity, but with no group at all also a claim
  // of a producer that died (never committed).
  if (!prior.before_lap_of(seq) || ((mine - prior.seq) & q.mask) != 0) return Write::corrupt;
  // The previous lap's keyed publisher may have died before committing its
  // dedup entry: record the key while this slot still proves the publish.
  // (One load of a line we hold; a scan only after such a death.)
  remember_key_before_reuse(q, slot, observed);
  ACKRING_FAILPOINT("publish.after_slot_read");
  const std::uint64_t checksum = XXH3_64bits(payload.data(), payload.size());
  // release fence: the field and payload stores below stay after our claim
  // and after the acquire of the floor word that allowed it. A reader still
  // copying the previous lap's message here (its lease ran out mid-read, a
  // peek) that sees any of them then also sees, after its acquire fence, its
  // lease word changed or the tail past this lap, and discards what it read.
  // (Free on x86; needed on ARM.)
  std::atomic_thread_fence(std::memory_order_release);
  write_fields(slot, {static_cast<std::uint32_t>(payload.size()), stamp.flags, checksum, stamp.key_lo, stamp.key_hi,
                      publish_time_ns});
#if defined(ACKRING_FAILPOINTS)
  // Test build: stop half way through the payload.
  const std::size_t half = payload.size() / 2;
  if (half != 0) std::memcpy(payload_dst, payload.data(), half);
  ACKRING_FAILPOINT("publish.mid_payload");
  if (payload.size() != half) std::memcpy(payload_dst + half, payload.data() + half, payload.size() - half);
  ACKRING_FAILPOINT("publish.before_commit");
#else
  if (!payload.empty()) std::memcpy(payload_dst, payload.data(), payload.size());
#endif
  // seq_cst: release publishes header and payload to consumers (their acquire/seq_cst
  // load of the state); seq_cst orders it before our read of commit_waiters (wait.hpp).
  if (!slot.state.compare_exchange_strong(observed, SlotWord{seq, SlotState::committed}.encode(),
                                          std::memory_order_seq_cst))
    return Write::aborted;  // a consumer aborted us between claim and commit
  ACKRING_FAILPOINT("publish.after_commit");
  return Write::committed;
}

std::uint64_t deadline_after(std::chrono::nanoseconds timeout) noexcept;

// How long a publish waits for its record to be durable (sync mode): its own
// timeout, but at least kMinDurableWait even for try_publish, whose
// non-blocking promise is about room in the ring, not about the disk.
constexpr std::chrono::seconds kMinDurableWait{5};

std::uint64_t durable_floor_deadline(const QueueState& q) noexcept {
  return q.layout.durability == kDurabilitySync ? deadline_after(kMinDurableWait) : 0;
}

std::uint64_t durability_deadline(const QueueState& q, std::chrono::nanoseconds timeout) noexcept {
  if (q.layout.durability != kDurabilitySync) return 0;
  return std::max(deadline_after(timeout), durable_floor_deadline(q));
}

std::uint64_t deadline_after(std::chrono::nanoseconds timeout) noexcept {
  const std::uint64_t now = monotonic_ns();
  if (timeout.count() <= 0) return now;
  const auto t = static_cast<std::uint64_t>(timeout.count());
  return t > ~0ull - now ? ~0ull : now + t;
}

}  // namespace

Producer::Producer(std::shared_ptr<QueueState> state, std::uint32_t index, std::uint32_t incarnation) noexcept
    : state_(std::move(state)),
      index_(index),
      incarnation_(incarnation),
      clock_(new(std::nothrow) TscClock()) {}

Producer::Producer(Producer&& o) noexcept { *this = std::move(o); }

Producer& Producer::operator=(Producer&& o) noexcept {
  if (this != &o) {
    release();
    state_ = std::move(o.state_);
    index_ = o.index_;
    incarnation_ = o.incarnation_;
    cached_floor_ = o.cached_floor_;
    next_floor_help_ns_ = o.next_floor_help_ns_;
    clock_ = std::move(o.clock_);
  }
  return *this;
}

Producer::~Producer() { release(); }

// The message's publish time (QueueOptions::publish_timestamp) and the
// coarse ms of the producer's last_active_ms, from one TSC read;
// clock_gettime only once a millisecond. Forced inline, as claim is: GCC kept
// both out of line, and with bump (layout.hpp) the calls cost
// BM_TryPublish/64 2-3 ns of ~56 on the Intel host.
[[gnu::always_inline]] inline ClockReading Producer::read_clock() noexcept {
  const bool precise = (state_->layout.flags & kLayoutCoarsePublishTime) == 0;
  return clock_ ? clock_->now(precise) : TscClock::kernel_reading(precise);
}

void Producer::release() noexcept {
  if (!state_) return;
  auto& e = state_->producer(index_);
  retire_producer_counters(*state_, e);
  e.in_flight.store(0, std::memory_order_relaxed);  // no publish runs while the handle is released
  e.start_time.store(0, std::memory_order_relaxed);
  // release: the cleared counters are visible to whoever claims the entry next.
  e.pid.store(0, std::memory_order_release);
  state_.reset();
}

// ------------------------------------------------------------------ claim --

// Before the tail CAS the producer stores 1 + the tail it saw into its
// in-flight word; its claim is at or after that seq. refresh_floor never lets
// the ring reuse a slot at or after a live producer's in-flight seq, so
// whatever this producer does next — write, stall for an hour, be aborted —
// no other producer rewrites the slots it may still store into. The word is
// cleared (end_flight) once every store of the publish is done.
[[gnu::always_inline]] inline Status Producer::claim(std::uint64_t k, std::uint64_t& first) noexcept {
  const QueueState& q = *state_;
  auto& h = q.header();
  auto& in_flight = q.producer(index_).in_flight;
  const std::uint64_t capacity = q.layout.capacity;
  bool flagged = false;
  // relaxed load: the CAS below re-validates it.
  std::uint64_t tail = h.tail.load(std::memory_order_relaxed);
  for (;;) {
    if (tail + k > cached_floor_ + capacity) {
      // acquire: pairs with refresh_floor's CAS; the floor it names was read from the groups.
      cached_floor_ = floor_of(h.floor_word.load(std::memory_order_acquire));
      if (tail + k > cached_floor_ + capacity) {
        // Our own word must not hold the ring back while we look for room.
        if (flagged) in_flight.store(0, std::memory_order_relaxed);
        flagged = false;
        cached_floor_ = refresh_floor(q, tail + k - capacity, floor_help_due());
        if (tail + k > cached_floor_ + capacity) {
          tail = h.tail.load(std::memory_order_relaxed);
          if (tail + k > cached_floor_ + capacity) return Status::queue_full;
          continue;
        }
      }
    }
    // relaxed: published by the tail CAS below (release), which every
    // process that learns of our claim synchronises with (protocol.md §1).
    // Stored again before every attempt: a word left at the tail of a failed
    // attempt would hold the ring at a seq we no longer claim (the model
    // found such a wedge when the retry then waits for room). Raising it is
    // safe: we hold no claim yet.
    in_flight.store(tail + 1, std::memory_order_relaxed);
    if (!flagged) {
      flagged = true;
      ACKRING_FAILPOINT("publish.after_intent");
    }
    // acq_rel: release publishes the in-flight word with the claim; acquire orders our
    // later slot reads after the floor check (the slot's previous occupant is settled).
    if (h.tail.compare_exchange_weak(tail, tail + k, std::memory_order_acq_rel, std::memory_order_relaxed)) {
      first = tail;
      ACKRING_FAILPOINT("publish.after_tail_cas");
      return Status::ok;
    }
  }
}

// Whether a producer waiting for room should also move group floors over
// settled runs (refresh_floor): at most once a millisecond. Done on every
// attempt, its scan of a group's lease words and CAS on the group's floor
// contend with the live consumer that is writing both: the producer-batched
// two-process row ran at 14 M/s with it against 31 M/s without
// (bench/README.md, "A producer waiting for room"). Live members move their
// own floors; the help is for a member that died between its settle and its
// floor CAS, and a millisecond is soon enough for that.
bool Producer::floor_help_due() noexcept {
  const std::uint64_t now = monotonic_ns();  // not the coarse clock: a test may freeze that one
  if (now < next_floor_help_ns_) return false;
  next_floor_help_ns_ = now + 1'000'000;
  return true;
}

void Producer::end_flight() noexcept {
  // release: our stores into the claimed slots happen before a refresher that
  // reads 0 here (acquire) lets another producer reuse them.
  state_->producer(index_).in_flight.store(0, std::memory_order_release);
}

Status Producer::claim_wait(std::uint64_t k, std::uint64_t deadline_ns, std::uint64_t& first) noexcept {
  Status s = claim(k, first);
  if (s != Status::queue_full) return s;
  const QueueState& q = *state_;
  auto& h = q.header();
  const std::uint64_t spin_until = monotonic_ns() + 20'000;
  for (;;) {
    const std::uint64_t now = monotonic_ns();
    if (now >= deadline_ns) return Status::timeout;
    if (now < spin_until) {
      cpu_relax();
    } else {
      // seq_cst: pairs with the floor CAS + wake_waiters of consumers (wait.hpp protocol).
      h.space_waiters.fetch_add(1, std::memory_order_seq_cst);
      const std::uint32_t seen = arm(h.space_futex);
      const std::uint64_t tail = h.tail.load(std::memory_order_relaxed);
      const std::uint64_t floor = refresh_floor(q, tail + k - q.layout.capacity, floor_help_due());
      if (tail + k > floor + q.layout.capacity)
        futex_wait(h.space_futex, seen, std::min<std::uint64_t>(deadline_ns - now, 10'000'000));
      h.space_waiters.fetch_sub(1, std::memory_order_relaxed);
    }
    s = claim(k, first);
    if (s != Status::queue_full) return s;
  }
}

// ------------------------------------------------------------------ write --

PublishResult Producer::write_claimed(std::uint64_t first, std::span<const Bytes> payloads,
                                      std::uint64_t durable_deadline_ns) noexcept {
  const QueueState& q = *state_;
  const std::uint64_t k = payloads.size();
  // One clock read for the batch: the publish time of every message in it.
  const ClockReading now = read_clock();
  const std::uint64_t now_ms = now.coarse_ms;
  std::uint64_t committed = 0;
  std::uint64_t first_lost = k;  // index of the first payload a consumer aborted, if any
  bool corrupt = false;
  for (std::uint64_t i = 0; i < k && first_lost == k; ++i) {
    switch (write_slot(q, first + i, payloads[i], now.realtime_ns, Stamp{})) {
      case Write::committed: ++committed; break;
      case Write::aborted: first_lost = i; break;
      case Write::corrupt: corrupt = true; break;
    }
  }
  // A consumer aborted one of our claims: abort the rest of the batch too, so
  // that what must be published again is exactly payloads[first_lost..k).
  if (first_lost != k) abort_own_claims(first + first_lost + 1, first + k);
  end_flight();  // every store into our slots is done
  auto& e = q.producer(index_);
  bump(e.published, committed);
  e.last_active_ms.store(now_ms, std::memory_order_relaxed);
  // Sync mode, straight on to wait_durable: it wakes the commit futex itself
  // unless this thread journals the batch (commit_wake_deferred).
  if (corrupt || first_lost != k || !commit_wake_deferred(q)) wake_waiters(q.header().commit_futex, q.header().commit_waiters);
  if (corrupt) return {Status::corrupt, 0};
  if (first_lost != k) {
    // Rare: we stalled past claim_timeout (or were taken for dead) and a
    // consumer aborted our claim. Publish the rest again, in order, at new
    // seqs; waiting is acceptable here, this producer was stuck that long.
    const auto wait = std::chrono::milliseconds(q.layout.claim_timeout_ms) * 4;
    const PublishResult again = publish_batch(payloads.subspan(first_lost), wait);
    if (!again.ok() || first_lost == 0) return again;
    return {Status::ok, first};
  }
  // durability = sync: return only once the records are on disk (write-ahead;
  // consumers do not see them before either). A timeout here means committed
  // but not yet confirmed durable: the message stays queued.
  if (const Status d = wait_durable(q, first + k - 1, durable_deadline_ns); d != Status::ok) return {d, first};
  return {Status::ok, first};
}

void Producer::abort_own_claims(std::uint64_t from, std::uint64_t to) noexcept {
  const QueueState& q = *state_;
  std::uint64_t aborted = 0;
  for (std::uint64_t s = from; s < to; ++s) {
    auto& state = q.slot(s).state;
    // acquire: pairs with a consumer's abort CAS; abort_claim then expects exactly this value.
    std::uint64_t w = state.load(std::memory_order_acquire);
    const SlotWord sw = SlotWord::decode(w);
    if (sw.seq == (s & kSeqMask) && sw.state == SlotState::aborted) continue;  // a consumer was first
    // Like a consumer's abort; we have not written these, so no commit of ours races it.
    if (abort_claim(q, s, w)) ++aborted;
  }
  if (aborted != 0) q.header().aborted.fetch_add(aborted, std::memory_order_relaxed);
}

PublishResult Producer::try_publish_batch(std::span<const Bytes> payloads) noexcept {
  return publish_batch(payloads, std::chrono::nanoseconds::zero());
}

PublishResult Producer::publish_batch(std::span<const Bytes> payloads, std::chrono::nanoseconds timeout) noexcept {
  const QueueState& q = *state_;
  const std::uint64_t k = payloads.size();
  if (k == 0) return {Status::ok, q.header().tail.load(std::memory_order_relaxed)};
  if (k > q.layout.capacity) return {Status::too_large, 0};
  for (const Bytes& p : payloads)
    if (p.size() > q.layout.max_message_size) return {Status::too_large, 0};
  std::uint64_t first = 0;
  Status s = claim(k, first);
  // The deadline (a clock read) only matters once the ring is full.
  if (s == Status::queue_full && timeout.count() > 0) s = claim_wait(k, deadline_after(timeout), first);
  if (s != Status::ok) return {s, 0};
  return write_claimed(first, payloads, durability_deadline(q, timeout));
}

// publish_batch for one message, without its loops over the batch. Inlined
// into try_publish and publish: a call more is measurable on this path.
[[gnu::always_inline]] inline PublishResult Producer::publish_one(Bytes payload, std::chrono::nanoseconds timeout) noexcept {
  const QueueState& q = *state_;
  if (payload.size() > q.layout.max_message_size) return {Status::too_large, 0};
  std::uint64_t seq = 0;
  Status s = claim(1, seq);
  // The deadline (a clock read) only matters once the ring is full.
  if (s == Status::queue_full && timeout.count() > 0) s = claim_wait(1, deadline_after(timeout), seq);
  if (s != Status::ok) return {s, 0};
  return write_claimed(seq, {&payload, 1}, durability_deadline(q, timeout));
}

PublishResult Producer::try_publish(Bytes payload) noexcept { return publish_one(payload, {}); }

PublishResult Producer::publish(Bytes payload, std::chrono::nanoseconds timeout) noexcept {
  return publish_one(payload, timeout);
}

// ------------------------------------------------------------------ keyed --

PublishResult Producer::try_publish(Bytes payload, const PublishOptions& options) noexcept {
  if (options.key.empty()) return try_publish(payload);
  // A racing publisher of the same key finishes within microseconds unless
  // its queue is full; give it 1 ms before answering timeout.
  return publish_keyed(payload, options.key, std::chrono::milliseconds(1));
}

PublishResult Producer::publish(Bytes payload, const PublishOptions& options, std::chrono::nanoseconds timeout) noexcept {
  if (options.key.empty()) return publish(payload, timeout);
  return publish_keyed(payload, options.key, timeout);
}

PublishResult Producer::publish_keyed(Bytes payload, std::string_view key, std::chrono::nanoseconds timeout) noexcept {
  DedupTable table(*state_);
  return publish_keyed(payload, fingerprint(key), table, timeout);
}

// Each message exactly as publish(payload, {.key}, timeout) would publish it;
// the keys kKeysAhead messages on have their table lines requested before
// the message in hand is published, so their misses overlap its work. Each
// key is ~11 lines (its window and two filter blocks): 4 ahead and 8 ahead
// measured the same (BM_PublishKeyedBatch), 16 ahead 1.6x slower.
std::size_t Producer::publish_keyed_batch(std::span<KeyedPublish> messages, std::chrono::nanoseconds timeout) noexcept {
  constexpr std::size_t kKeysAhead = 4;
  DedupTable table(*state_);
  std::array<Fingerprint, kKeysAhead> ahead{};
  auto prepare = [&](std::size_t i) {
    if (messages[i].key.empty()) return;
    ahead[i % kKeysAhead] = fingerprint(messages[i].key);
    table.prefetch_for_publish(ahead[i % kKeysAhead]);
  };
  for (std::size_t i = 0; i < std::min(kKeysAhead, messages.size()); ++i) prepare(i);
  for (std::size_t i = 0; i < messages.size(); ++i) {
    KeyedPublish& m = messages[i];
    const Fingerprint key = ahead[i % kKeysAhead];
    if (i + kKeysAhead < messages.size()) prepare(i + kKeysAhead);
    m.result = m.key.empty() ? publish_one(m.payload, timeout) : publish_keyed(m.payload, key, table, timeout);
    if (!m.result.ok()) return i;
  }
  return messages.size();
}

// Long on purpose: reserve the key, claim, record the claim in the entry,
// write, commit the entry, end the flight — the order is the keyed publish
// protocol (docs/dedup.md) and reads best as one sequence.
PublishResult Producer::publish_keyed(Bytes payload, const Fingerprint& fp, DedupTable& table,
                                      std::chrono::nanoseconds timeout) noexcept {
  const QueueState& q = *state_;
  if (payload.size() > q.layout.max_message_size) return {Status::too_large, 0};
  if (!table.enabled()) return {Status::no_dedup, 0};
  DedupCounters counters;
  // No precise clock read unless something has to wait (a racing publisher,
  // a full ring, the disk): the deadline is computed then.
  const std::uint64_t timeout_ns = timeout.count() <= 0 ? 0 : static_cast<std::uint64_t>(timeout.count());
  std::uint64_t deadline = 0;
  auto deadline_ns = [&] {
    if (deadline == 0) deadline = deadline_after(timeout);
    return deadline;
  };
  const Reservation r =
      table.reserve(fp, dedup_owner(index_, incarnation_), coarse_monotonic_ms(), timeout_ns, counters);
  auto& e = q.producer(index_);
  bump(e.keyed_published, 1);
  bump(e.dedup_hits, counters.hits);
  bump(e.expired_reused, counters.expired_reused);
  switch (r.outcome) {
    case ReserveOutcome::duplicate: return {Status::ok, r.seq, true};
    case ReserveOutcome::full: return {Status::dedup_full, 0};
    case ReserveOutcome::timeout: return {Status::timeout, 0};
    case ReserveOutcome::reserved: break;
  }
  std::uint64_t claim_deadline = 0;  // set once a claim was aborted: the retries' deadline
  for (;;) {
    std::uint64_t seq = 0;
    Status s = claim(1, seq);
    if (s == Status::queue_full) s = claim_wait(1, claim_deadline != 0 ? claim_deadline : deadline_ns(), seq);
    if (s != Status::ok) {
      (void)table.release(r.entry);
      return {s, 0};
    }
    if (!table.set_claimed(r.entry, seq)) {
      // The reservation is not ours any more (never for a live owner): the
      // key must not be enqueued without it. Give the claim up.
      abort_own_claims(seq, seq + 1);
      end_flight();
      return {Status::corrupt, 0};
    }
    const ClockReading now = read_clock();
    const std::uint64_t now_ms = now.coarse_ms;
    const Write w = write_slot(q, seq, payload, now.realtime_ns, Stamp{kSlotHasKey | kSlotKeyUnrecorded, fp.lo, fp.hi});
    // The entry is committed first, before anything else: between the slot's
    // commit and the entry's, a death leaves the key's fate to be read from
    // the slot (docs/dedup.md), so that window is kept as short as possible.
    // A commit that finds the reservation no longer ours still published the
    // message: the slot is committed, and keeps kSlotKeyUnrecorded.
    if (w == Write::committed && table.commit(r.entry, seq)) {
      // relaxed: only we store into this slot in this lap; end_flight's
      // release below orders it before anyone may claim the slot's next lap.
      relaxed_store(q.slot(seq).flags, kSlotHasKey);
    }
    end_flight();
    // As in write_claimed: a committed message goes straight on to
    // wait_durable, which wakes the commit futex unless this thread journals it.
    if (w != Write::committed || !commit_wake_deferred(q)) wake_waiters(q.header().commit_futex, q.header().commit_waiters);
    if (w == Write::committed) {
      bump(e.published, 1);
      e.last_active_ms.store(now_ms, std::memory_order_relaxed);
      if (q.layout.durability == kDurabilitySync)
        if (const Status d = wait_durable(q, seq, std::max(deadline_ns(), durable_floor_deadline(q))); d != Status::ok)
          return {d, seq};
      return {Status::ok, seq};
    }
    if (w == Write::corrupt) {
      (void)table.release(r.entry);
      return {Status::corrupt, 0};
    }
    // Aborted by a consumer while we were stalled: claim again (our
    // reservation still holds the key), with as long to wait for room as an
    // unkeyed publish gets after an abort.
    if (claim_deadline == 0)
      claim_deadline = std::max(deadline_ns(), deadline_after(std::chrono::milliseconds(q.layout.claim_timeout_ms) * 4));
  }
}

// ----------------------------------------------------------------- replay --

PublishResult Producer::publish_copy(Bytes payload, std::uint32_t flags, std::uint64_t key_lo, std::uint64_t key_hi,
                                     std::uint64_t publish_time_ns, std::uint64_t deadline_ns) noexcept {
  const QueueState& q = *state_;
  if (payload.size() > q.layout.max_message_size) return {Status::too_large, 0};
  for (;;) {
    std::uint64_t seq = 0;
    if (const Status s = claim_wait(1, deadline_ns, seq); s != Status::ok) return {s, 0};
    const std::uint64_t now_ms = coarse_monotonic_ms();
    // A copy has no dedup entry of its own to record.
    const Write w = write_slot(q, seq, payload, publish_time_ns, Stamp{flags & ~kSlotKeyUnrecorded, key_lo, key_hi});
    end_flight();
    wake_waiters(q.header().commit_futex, q.header().commit_waiters);
    if (w == Write::committed) {
      auto& e = q.producer(index_);
      bump(e.published, 1);
      e.last_active_ms.store(now_ms, std::memory_order_relaxed);
      return {Status::ok, seq};
    }
    if (w == Write::corrupt) return {Status::corrupt, 0};
    // Aborted by a consumer while we were stalled: claim again.
  }
}

}  // namespace ackring
