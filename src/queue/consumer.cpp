// The receive/ack path of a group member. The lease word protocol:
//
//   take new:   read next = n; slot n committed; lease[n] not taken this lap;
//               re-read next == n; CAS lease[n] -> leased(me, 1, deadline);
//               then CAS next forward (any member that sees lease[n] taken
//               helps advance next, so a taker that dies here blocks no one).
//   take over:  lease[s] leased and past its deadline -> CAS leased(me, d+1, ...)
//               (with a redelivery back-off, a lease that ran out in its
//               holder's hands is first CASed to leased(expired, d, deadline
//               + back-off), and taken over once that passes)
//   ack:        lease[s] leased with the receipt's delivery count -> CAS settled
//   floor:      CAS floor over the contiguous run of settled words after it
//
// docs/protocol.md has the argument for each step.
#include "ackring/consumer.hpp"
#include "ackring/dead_letter.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>

#include "shm/clock.hpp"
#include "shm/cpu_relax.hpp"
#include "queue/consumer_inline.hpp"
#include "queue/dead_letter_codec.hpp"
#include "dedup/dedup.hpp"
#include "queue/durability.hpp"
#include "shm/failpoint.hpp"
#include "queue/group.hpp"
#include "shm/liveness.hpp"
#include "shm/queue_state.hpp"
#include "shm/seqlock_read.hpp"
#include "shm/wait.hpp"
#include "shm/xxhash_inline.hpp"

namespace ackring {

using namespace detail;

namespace {

constexpr std::uint64_t kHousekeepIdleMs = 50;    // dead-member sweep when idle
constexpr std::uint64_t kHousekeepBusyMs = 500;   // ... and at least this often when busy
constexpr std::uint64_t kStallCheckMs = 5;        // claimer liveness re-check of a stuck head
constexpr std::size_t kCopySlots = 64;            // copy-mode batch limit
constexpr std::uint64_t kRescanMs = 100;           // longest a scan may push the expired-lease hint ahead
constexpr std::uint64_t kNotStalled = ~0ull;       // stalled_since_ms_ when the head is not stuck

// The receipt still names the current lease: leased by this member, of the
// receipt's lap (generation) and delivery (count). Anything else is a stale
// receipt. The generation has 14 bits and wraps; the floor check in
// Consumer::check_receipt is the fence that holds across any number of laps.
inline bool holds_receipt(const QueueState& q, const LeaseWord& lw, const Receipt& r, std::uint32_t member) noexcept {
  return lw.state == LeaseState::leased && lw.generation == q.generation(r.seq) && lw.deliveries == r.deliveries &&
         lw.owner == member;
}

// Full 64-bit monotonic ms of a 32-bit deadline near `now`.
inline std::uint64_t widen_deadline(std::uint32_t deadline, std::uint64_t now) noexcept {
  return now + static_cast<std::int64_t>(static_cast<std::int32_t>(deadline - static_cast<std::uint32_t>(now)));
}

}  // namespace

Consumer::Consumer(std::shared_ptr<QueueState> state, std::uint32_t group, std::uint32_t incarnation,
                   std::uint32_t member, std::string group_name, const ConsumerOptions& options)
    : state_(std::move(state)),
      group_(group),
      incarnation_(incarnation),
      member_(member),
      group_name_(std::move(group_name)),
      processed_seed_(processed_key_seed(group_name_)),
      options_(options) {
  const auto& q = *state_;
  group_entry_ = &q.group(group);
  member_entry_ = &q.member(group, member);
  leases_ = &q.lease(group, 0);
  lease_mask_ = q.mask;
  lease_ms_ = options.lease.count() > 0 ? static_cast<std::uint32_t>(std::min<std::int64_t>(options.lease.count(), 1ll << 30))
                                        : q.layout.default_lease_ms;
  drop_group_ = q.group(group).overflow == static_cast<std::uint8_t>(OverflowPolicy::drop);
  // relaxed: statistics only (stat compares the p99 ack latency with it).
  q.member(group, member).lease_ms.store(lease_ms_, std::memory_order_relaxed);
  jitter_state_ = monotonic_ns() ^ (std::uint64_t{member} << 48) ^ static_cast<std::uint64_t>(self_identity().pid);
  if (drop_group_ || options_.mode == DeliveryMode::at_most_once)
    copies_.resize(kCopySlots * std::size_t{q.layout.max_message_size});
}

Consumer::Consumer(Consumer&& o) noexcept { *this = std::move(o); }

Consumer& Consumer::operator=(Consumer&& o) noexcept {
  if (this != &o) {
    release();
    state_ = std::move(o.state_);
    group_ = o.group_;
    incarnation_ = o.incarnation_;
    member_ = o.member_;
    group_entry_ = o.group_entry_;
    member_entry_ = o.member_entry_;
    leases_ = o.leases_;
    lease_mask_ = o.lease_mask_;
    group_name_ = std::move(o.group_name_);
    processed_seed_ = o.processed_seed_;
    options_ = o.options_;
    lease_ms_ = o.lease_ms_;
    drop_group_ = o.drop_group_;
    next_housekeep_ms_ = o.next_housekeep_ms_;
    jitter_state_ = o.jitter_state_;
    stalled_seq_ = o.stalled_seq_;
    stalled_since_ms_ = o.stalled_since_ms_;
    stalled_tail_ = o.stalled_tail_;
    next_stall_check_ms_ = o.next_stall_check_ms_;
    expiry_pass_ = o.expiry_pass_;
    copies_ = std::move(o.copies_);
    copy_cursor_ = o.copy_cursor_;
    dlq_ = std::move(o.dlq_);
    dlq_buffer_ = std::move(o.dlq_buffer_);
  }
  return *this;
}

Consumer::~Consumer() { release(); }

void Consumer::release() noexcept {
  if (!state_) return;
  dlq_.reset();
  if (!group_gone()) leave_group(*state_, group_, member_);
  state_.reset();
}

// ---------------------------------------------------------------- receive --

std::optional<Delivery> Consumer::try_receive() noexcept {
  Delivery d;
  return try_receive_batch({&d, 1}) == 1 ? std::optional<Delivery>(d) : std::nullopt;
}

std::optional<Delivery> Consumer::receive(std::chrono::nanoseconds timeout) noexcept {
  Delivery d;
  return receive_batch({&d, 1}, timeout) == 1 ? std::optional<Delivery>(d) : std::nullopt;
}

std::size_t Consumer::try_receive_batch(std::span<Delivery> out) noexcept {
  if (out.empty() || group_gone()) return 0;
  out = within_copies(out);
  const std::uint64_t now = coarse_monotonic_ms();
  if (now >= next_housekeep_ms_) housekeep(now);
  std::size_t got = 0;
  // Expired leases first: they are the oldest work. Before the group's hint
  // (the earliest deadline it knows of) there is nothing to scan for.
  const bool may_have_expired = now >= group_entry_->deadline_hint_ms.load(std::memory_order_relaxed);
  while (may_have_expired && got < out.size()) {
    const Take t = take_expired(out[got], now);
    if (t == Take::got) ++got;
    else if (t == Take::nothing) break;
  }
  for (int spins = 0; got < out.size() && spins < 64; ++spins) {
    std::span<Delivery> rest = out.subspan(got);
    std::size_t n = 0;
    const Take t = take_new_batch(rest, n, now);
    got += n;
    if (t == Take::nothing) break;
  }
  return got;
}

// Copying consumers (drop groups, at-most-once) own kCopySlots payload
// copies, used round robin: one call must not hand out more deliveries than
// that, or its last copies would overwrite its first.
std::span<Delivery> Consumer::within_copies(std::span<Delivery> out) const noexcept {
  return !copies_.empty() && out.size() > kCopySlots ? out.first(kCopySlots) : out;
}

std::size_t Consumer::receive_batch(std::span<Delivery> out, std::chrono::nanoseconds timeout) noexcept {
  out = within_copies(out);  // the whole batch, lingered or not
  std::size_t got = try_receive_batch(out);
  if (got == 0) got = wait_for_first(out, timeout);
  if (got == 0 || got == out.size() || options_.linger.count() <= 0) return got;
  return got + linger_and_take(out.subspan(got));
}

// A batch that came back short: let the producers get ahead before taking
// the rest. The wait reads only this process's clock: polling the queue
// meanwhile would pull the line of the slot being written away from its
// producer once per poll, the cost the linger exists to save. The leases
// already taken run meanwhile: one that runs out is taken over as after any
// stall, and the late ack answers lease_lost (ConsumerOptions::linger).
std::size_t Consumer::linger_and_take(std::span<Delivery> rest) noexcept {
  ACKRING_FAILPOINT("receive.linger");
  const std::uint64_t until =
      monotonic_ns() + static_cast<std::uint64_t>(std::chrono::nanoseconds(options_.linger).count());
  while (monotonic_ns() < until) cpu_relax();
  return try_receive_batch(rest);
}

std::size_t Consumer::wait_for_first(std::span<Delivery> out, std::chrono::nanoseconds timeout) noexcept {
  // The precise clock (~27 ns on a KVM guest) is read only once the first
  // poll came back empty: while messages are waiting it is never read.
  const std::uint64_t start = monotonic_ns();
  const std::uint64_t limit = timeout.count() <= 0 ? 0 : static_cast<std::uint64_t>(timeout.count());
  const std::uint64_t spin_ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(options_.spin).count());
  auto& h = state_->header();
  for (std::uint32_t polls = 2;; ++polls) {
    if (const std::size_t n = try_receive_batch(out); n != 0) return n;
    // While spinning, look at the clock (and the group) only every 64 polls.
    if ((polls & 63) != 0 && spin_ns != 0) {
      cpu_relax();
      continue;
    }
    if (group_gone()) return 0;
    const std::uint64_t now_ns = monotonic_ns();
    const std::uint64_t elapsed = now_ns - start;
    if (elapsed >= limit) return 0;
    if (elapsed < spin_ns) {
      cpu_relax();
      continue;
    }
    // seq_cst: the wait.hpp protocol; pairs with the producer's commit CAS and waiter load.
    h.commit_waiters.fetch_add(1, std::memory_order_seq_cst);
    const std::uint32_t seen = arm(h.commit_futex);
    std::size_t n = try_receive_batch(out);
    if (n == 0 && !group_gone()) {
      // Sleep until woken, the call's deadline, the earliest lease deadline,
      // the next housekeeping, or a re-check of a stuck head.
      const std::uint64_t now_ms = now_ns / 1'000'000;
      std::uint64_t wake_ms = std::min(next_housekeep_ms_, now_ms + 1000);
      const std::uint64_t hint = group_entry_->deadline_hint_ms.load(std::memory_order_relaxed);
      wake_ms = std::min(wake_ms, std::max(hint, now_ms + 1));
      if (stalled_since_ms_ != kNotStalled) wake_ms = std::min(wake_ms, now_ms + kStallCheckMs);
      const std::uint64_t sleep_ns =
          std::min(limit - elapsed, (wake_ms > now_ms ? wake_ms - now_ms : 1) * 1'000'000);
      futex_wait(h.commit_futex, seen, sleep_ns);
    }
    h.commit_waiters.fetch_sub(1, std::memory_order_relaxed);
    if (n != 0) return n;
  }
}

// The takeover CAS expected a leased word read before it: a word of another
// member, with a generation that wraps every 2^14 laps and a deadline that
// another lap can repeat. If this process stalled between the read and the
// CAS while the slot went round that often, the CAS may have taken a later
// lap's live lease. That is exactly when the group's floor has passed `seq`:
// while we hold seq's lease nobody but a drop push can settle it, and a later
// lap exists only once the floor passed seq. Then give the word back (if it
// is still ours): its holder keeps its lease, at worst it got lease_lost for
// an ack made in between and the message comes back when the lease expires.
// (protocol.md §3, "takeover")
namespace {
bool took_later_lap(const QueueState& q, std::uint32_t group, std::uint64_t seq, std::uint64_t before,
                    std::uint64_t ours) noexcept {
  // acquire: pairs with the floor CAS; a floor past seq means seq's lap is settled.
  if (q.group(group).floor.load(std::memory_order_acquire) <= seq) return false;
  // acq_rel: as the takeover CAS; fails harmlessly if the word moved on since.
  (void)q.lease(group, seq).compare_exchange_strong(ours, before, std::memory_order_acq_rel,
                                                    std::memory_order_relaxed);
  return true;
}
}  // namespace

// What a receive does with a lease found past its deadline: the word it
// CASes in (`mine`), and whether that is a takeover or the back-off step.
struct Consumer::Takeover {
  LeaseWord mine;
  bool exhausted;               // at max_deliveries: to the dead-letter queue
  std::uint64_t backoff_until;  // non-zero: the back-off step, visible again then
};

Consumer::Takeover Consumer::plan_takeover(const LeaseWord& lw, std::uint64_t now) noexcept {
  const bool exhausted = lw.deliveries >= state_->layout.max_deliveries;
  // A lease that ran out in its holder's hands comes back only after the
  // group's back-off, counted from its deadline. Words given back by a
  // nack, a death or a leave had theirs applied when they were given back.
  const std::uint64_t wait =
      lw.owner < kMaxMembers ? redelivery_delay_ms(*state_, group_, lw.deliveries, jitter_state_) : 0;
  if (wait != 0) {
    const std::uint64_t until = widen_deadline(lw.deadline_ms, now) + wait;
    // Backing off, the word keeps its delivery count and names no member:
    // the holder's receipt no longer matches, as after a takeover.
    if (until > now)
      return {{LeaseState::leased, lw.generation, kExpiredOwner, lw.deliveries, static_cast<std::uint32_t>(until)},
              false, until};
  }
  // Exhausted: held 1 s while it is dead-lettered (a full DLQ brings it back then).
  const std::uint32_t hold_ms = exhausted ? 1000 : lease_ms_;
  return {{LeaseState::leased, lw.generation, member_, exhausted ? lw.deliveries : lw.deliveries + 1,
           static_cast<std::uint32_t>(now + hold_ms)},
          exhausted, 0};
}

// After a takeover CAS of seq (from a word owned by `from_owner`): dead-letter
// it, or hand it out in `out`. True if `out` holds a delivery.
bool Consumer::deliver_taken_over(Delivery& out, std::uint64_t seq, const Takeover& t, std::uint32_t from_owner,
                                  std::uint64_t now, std::uint64_t& earliest) noexcept {
  auto& me = *member_entry_;
  bump(me.lease_expiries);
  if (t.exhausted) {
    if (!dead_letter(seq, t.mine.encode(), static_cast<std::uint8_t>(DeadLetterReason::max_deliveries)))
      earliest = std::min(earliest, widen_deadline(t.mine.deadline_ms, now));
    return false;
  }
  if (!fill(out, seq, t.mine.encode(), now)) return false;
  bump(me.delivered);
  bump(me.redelivered);
  bump(me.redelivered_by[static_cast<std::uint8_t>(redelivery_cause_of(from_owner))]);
  if (options_.mode == DeliveryMode::at_most_once) {
    settle(seq, t.mine.encode(), SettleReason::acked);
  } else {
    lower_deadline_hint(*group_entry_, now + lease_ms_);
  }
  return true;
}

Consumer::Take Consumer::take_expired(Delivery& out, std::uint64_t now) noexcept {
  const QueueState& q = *state_;
  auto& G = *group_entry_;
  ExpiryPass& pass = expiry_pass_;
  const std::uint64_t hint = G.deadline_hint_ms.load(std::memory_order_relaxed);
  if (now < hint) {
    pass.active = false;  // someone finished a look meanwhile and found nothing due before `hint`
    return Take::nothing;
  }
  // acquire: lease words below `next` were written before next moved past them.
  const std::uint64_t floor = G.floor.load(std::memory_order_acquire);
  const std::uint64_t next = G.next.load(std::memory_order_acquire);
  // One look runs from the floor to `next` over as many receives as it
  // takes: each takeover returns a delivery and the next receive goes on
  // after it, so taking back N leases reads each word once, not N times.
  // Below where it goes on, every lease was seen in this look (its deadline
  // is in `earliest`), or settled, or taken over. A lease given back there
  // meanwhile (a close, a nack, a member's death) may not have lowered the
  // hint (it was already <= its deadline): a look older than kRescanMs starts
  // over at the floor, so such a lease waits at most that long, as it would
  // behind a look that ran in one receive.
  if (!pass.active || pass.next_seq > next || now - pass.started_ms >= kRescanMs)
    pass = {.active = true, .next_seq = floor, .earliest = ~0ull, .started_hint = hint, .started_ms = now};
  for (std::uint64_t s = std::max(pass.next_seq, floor); s < next && s - floor < q.layout.capacity; ++s) {
    auto& word = lease_word(s);
    // acquire: pairs with the word's last CAS (take, nack, give-back); the takeover CAS below expects this value.
    std::uint64_t w = word.load(std::memory_order_acquire);
    const LeaseWord lw = LeaseWord::decode(w);
    if (lw.state != LeaseState::leased || lw.generation != q.generation(s)) continue;
    if (!deadline_passed(lw.deadline_ms, now)) {
      pass.earliest = std::min(pass.earliest, widen_deadline(lw.deadline_ms, now));
      continue;
    }
    const Takeover t = plan_takeover(lw, now);
    ACKRING_FAILPOINT("takeover.before_lease_cas");
    // acq_rel: we own this delivery now; pairs with the ack/nack CAS of the previous holder.
    if (!word.compare_exchange_strong(w, t.mine.encode(), std::memory_order_acq_rel, std::memory_order_acquire))
      continue;  // another member took it first
    ACKRING_FAILPOINT("takeover.after_lease_cas");
    if (took_later_lap(q, group_, s, w, t.mine.encode())) continue;
    if (t.backoff_until != 0) {
      pass.earliest = std::min(pass.earliest, t.backoff_until);
      continue;
    }
    // The hint stays where it was (<= now): the next receive goes on from s + 1.
    if (deliver_taken_over(out, s, t, lw.owner, now, pass.earliest)) {
      pass.next_seq = s + 1;
      return Take::got;
    }
  }
  // The look reached `next`: raise the hint to the earliest live deadline it
  // saw, unless the hint changed since the look began (a member lowered it —
  // a lease taken, nacked or given back by a death — and its value stands).
  // A lease taken or given back while we looked, behind our position, may
  // not have lowered it (the hint was already <= its deadline), so never
  // raise it more than kRescanMs ahead: such a lease is found at most that late.
  pass.active = false;
  std::uint64_t expected = pass.started_hint;
  G.deadline_hint_ms.compare_exchange_strong(expected, std::min(pass.earliest, now + kRescanMs),
                                             std::memory_order_relaxed);
  return Take::nothing;
}

// Settles the head seq `s` unseen (an aborted claim, or a slot holding
// garbage), from the lease word `w` read for it. False if the word moved.
bool Consumer::skip_unusable(std::uint64_t s, std::uint64_t w, SettleReason why) noexcept {
  // acq_rel: as the take-new lease CAS. `w` is empty or an earlier lap's
  // settled word: a value that never comes back in this slot.
  if (!lease_word(s).compare_exchange_strong(w, settled_word(s, why), std::memory_order_acq_rel,
                                             std::memory_order_acquire))
    return false;
  auto& G = *group_entry_;
  (why == SettleReason::corrupt ? G.corrupt_skipped : G.aborted_skipped).fetch_add(1, std::memory_order_relaxed);
  return true;
}

// Takes new messages from `next` on, up to out.size(). One loop on purpose:
// each step of take-new (protocol.md §2) re-checks what the step before it
// read (the slot's state, the lease word, `next` again) right before the CAS
// it guards, and split apart those checks would no longer sit beside it.
//
// Inlined, like the other helpers of one receive or one ack marked so here
// (group_gone, finish_take, check_receipt, settle_receipt,
// record_ack_latency): they are private and have one or a few callers in this
// file, but GCC keeps an external member function out of line. The calls cost
// BM_ReceiveAck 2-3 ns of ~42 on the Intel host (bench/README.md).
[[gnu::always_inline]] inline Consumer::Take Consumer::take_new_batch(std::span<Delivery> out, std::size_t& got,
                                                                      std::uint64_t now) noexcept {
  const QueueState& q = *state_;
  auto& G = *group_entry_;
  // acquire: pairs with the CAS that advanced next; lease words below it are visible.
  const std::uint64_t n = G.next.load(std::memory_order_acquire);
  const std::uint64_t bound = durable_bound(q);
  const bool at_most_once = options_.mode == DeliveryMode::at_most_once;
  const std::size_t got_before = got;
  std::uint64_t consumed = 0;
  bool hint_lowered = false;
  Take result = Take::retry;
  while (got < out.size()) {
    const std::uint64_t s = n + consumed;
    // durability = sync: write-ahead, a consumer sees only durable messages.
    if (s >= bound) {
      if (consumed == 0) result = Take::nothing;
      break;
    }
    // seq_cst: the waiting side of wait.hpp: a commit we miss here must see our waiter count.
    const std::uint64_t sw_raw = q.slot(s).state.load(std::memory_order_seq_cst);
    const SlotWord sw = SlotWord::decode(sw_raw);
    // A marker of a later lap cannot be in a healthy file (a slot is reused
    // only after every floor passed it, and drop groups move next first): the
    // slot is garbage. It is skipped below like an aborted one, as corrupt.
    const bool garbage = sw.seq > (s & kSeqMask) && s < q.header().tail.load(std::memory_order_acquire);
    if (!garbage && (sw.seq != (s & kSeqMask) || sw.state == SlotState::free)) {
      if (consumed == 0) {
        handle_stalled_head(s, now);
        result = Take::nothing;
      }
      break;
    }
    auto& word = lease_word(s);
    // acquire: pairs with a taker's lease CAS; keeps the re-read of next below after this load (protocol.md §2).
    std::uint64_t w = word.load(std::memory_order_acquire);
    const std::uint32_t gen = q.generation(s);
    const LeaseWord lw = LeaseWord::decode(w);
    if ((lw.state == LeaseState::leased && lw.generation == gen) || is_settled_for(w, s)) {
      // Taken already (by a member that has not advanced next yet): help.
      if (consumed == 0) {
        std::uint64_t expected = n;
        // acq_rel: pairs with other helpers/takers; the lease word we saw is published.
        G.next.compare_exchange_strong(expected, n + 1, std::memory_order_acq_rel);
        return Take::retry;
      }
      break;
    }
    // The word could only be from a later lap if next had moved past s since
    // we read it (floor <= next). Re-reading next rules that out.
    if (G.next.load(std::memory_order_acquire) != n) {
      result = Take::retry;
      break;
    }
    if (garbage || sw.state == SlotState::aborted) {
      if (!skip_unusable(s, w, garbage ? SettleReason::corrupt : SettleReason::aborted)) break;
      ++consumed;
      continue;
    }
    stalled_seq_ = ~0ull;
    stalled_since_ms_ = kNotStalled;
    ACKRING_FAILPOINT("receive.after_slot_check");
    // The group's expired-lease hint must cover our lease before the lease
    // exists: lowered after the take, a member that stalls in between would
    // leave a lease that nobody scans for until it resumes. (Once per batch;
    // a take that then fails only costs one early scan.)
    if (!at_most_once && !hint_lowered) {
      lower_deadline_hint(*group_entry_, now + lease_ms_);
      hint_lowered = true;
    }
    const LeaseWord mine{LeaseState::leased, gen, member_, 1, static_cast<std::uint32_t>(now + lease_ms_)};
    // acq_rel: the lease is ours; acquire also orders the payload reads after it.
    // `w` is empty or an earlier lap's settled word (layout.hpp): however long
    // we stalled since the re-check of next, the CAS cannot match a later lap.
    if (!word.compare_exchange_strong(w, mine.encode(), std::memory_order_acq_rel, std::memory_order_acquire)) break;
    ACKRING_FAILPOINT("receive.after_lease_cas");
    ++consumed;
    if (!fill(out[got], s, mine.encode(), now)) continue;
    if (at_most_once) settle(s, mine.encode(), SettleReason::acked);
    ++got;
  }
  if (consumed == 0) return result;
  finish_take(n, consumed, got_before, got, now);
  return Take::got;
}

// After a take of [n, n + consumed) that handed out got - got_before of
// them: advance next past it (helpers may have moved it part way), count,
// and move the floor if some were settled at once (at-most-once, skipped).
[[gnu::always_inline]] inline void Consumer::finish_take(std::uint64_t n, std::uint64_t consumed, std::size_t got_before,
                                                         std::size_t got, std::uint64_t now) noexcept {
  auto& G = *group_entry_;
  std::uint64_t cur = n;
  const std::uint64_t target = n + consumed;
  // acq_rel: publishes our lease words to members that read next (acquire).
  while (cur < target && !G.next.compare_exchange_weak(cur, target, std::memory_order_acq_rel)) {
  }
  const std::size_t delivered = got - got_before;
  if (delivered != 0) {
    auto& me = *member_entry_;
    bump(me.delivered, delivered);
    me.last_active_ms.store(now, std::memory_order_relaxed);
  }
  if (options_.mode == DeliveryMode::at_most_once || delivered != consumed) advance_floor();
}

bool Consumer::fill(Delivery& out, std::uint64_t seq, std::uint64_t held_word, std::uint64_t now) noexcept {
  const QueueState& q = *state_;
  const SlotHeader& slot = q.slot(seq);
  const std::uint32_t deliveries = LeaseWord::decode(held_word).deliveries;
  // We hold the lease, so the slot cannot be reused while it is valid; but a
  // lease can run out while we read (a stalled process), and then the slot
  // may be rewritten. So the header is read as relaxed atomics and the whole
  // read is validated afterwards by our lease word (a seqlock read whose
  // sequence word is the lease).
  const SlotFields f = read_fields(slot);
  const std::byte* src = q.payload(seq);
  const bool length_ok = f.length <= q.layout.max_message_size;
  bool checksum_ok = false;
  {
    // The payload is plain bytes, so a rewrite racing with these reads is a
    // data race by the letter; the re-check below discards whatever such a
    // read saw. ThreadSanitizer is told so (SeqlockReadScope); the user's
    // later reads stay checked.
    [[maybe_unused]] const SeqlockReadScope racy_reads;
    if (length_ok && !copies_.empty()) {
      // Copy mode (drop group / at-most-once): the slot may be reused once we
      // settle or are pushed past, so the payload handed out is a copy.
      std::byte* dst = copies_.data() + (copy_cursor_ % kCopySlots) * q.layout.max_message_size;
      std::memcpy(dst, src, f.length);
      src = dst;
    }
    checksum_ok = length_ok && XXH3_64bits(src, f.length) == f.checksum;
  }
  ACKRING_FAILPOINT("receive.mid_read");
  if (!still_held(seq, held_word)) {
    // Our lease ran out and was taken over (the slot may have been reused),
    // or a drop group was pushed past it (push_group_forward counted it
    // dropped). Not ours to deliver any more.
    return false;
  }
  if (checksum_ok && !slot_is_for(f.flags, group_, incarnation_)) {
    // A replay copy for another group (Queue::rewind_group): settle it unseen.
    settle_own(seq, deliveries, SettleReason::not_for_group);
    return false;
  }
  if (checksum_ok) {
    if (!copies_.empty()) ++copy_cursor_;
    out.seq_ = seq;
    out.deliveries_ = deliveries;
    out.delivered_ms_ = static_cast<std::uint32_t>(now);
    out.publish_time_ns_ = f.publish_time_ns;
    out.has_key_ = (f.flags & kSlotHasKey) != 0;
    out.replayed_ = (f.flags & kSlotReplay) != 0;
    out.key_lo_ = f.key_lo;
    out.key_hi_ = f.key_hi;
    out.payload_ = Bytes(src, f.length);
    return true;
  }
  // Length past the slot or checksum mismatch: never hand it out. Settle it
  // so the group moves on, and count it.
  settle_own(seq, deliveries, SettleReason::corrupt);
  group_entry_->corrupt_skipped.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void Consumer::settle_own(std::uint64_t seq, std::uint32_t deliveries, SettleReason reason) noexcept {
  const QueueState& q = *state_;
  // acquire: pairs with the word's last CAS (our take, a takeover, a drop push); settle() expects this value.
  std::uint64_t w = lease_word(seq).load(std::memory_order_acquire);
  if (holds_receipt(q, LeaseWord::decode(w), Receipt{seq, deliveries}, member_)) settle(seq, w, reason);
}

bool Consumer::settle(std::uint64_t seq, std::uint64_t expected, SettleReason reason) noexcept {
  // release: the floor advancer (acquire) sees it settled before it lets producers reuse the slot.
  return lease_word(seq).compare_exchange_strong(expected, settled_word(seq, reason), std::memory_order_release,
                                                 std::memory_order_relaxed);
}

void Consumer::handle_stalled_head(std::uint64_t seq, std::uint64_t now) noexcept {
  const QueueState& q = *state_;
  // The common case is an empty queue polled in a loop: touch no shared line
  // here (reading the tail would pull the producers' hottest line across
  // cores on every poll). Look at the tail at most once per check interval.
  if (stalled_seq_ != seq) {
    stalled_seq_ = seq;
    stalled_since_ms_ = kNotStalled;
    next_stall_check_ms_ = now + 1;
    return;
  }
  if (now < next_stall_check_ms_) return;
  next_stall_check_ms_ = now + kStallCheckMs;
  // acquire: if tail is past seq, someone claimed it.
  const std::uint64_t tail = q.header().tail.load(std::memory_order_acquire);
  if (tail <= seq) {
    stalled_since_ms_ = kNotStalled;
    return;  // simply empty
  }
  if (stalled_since_ms_ == kNotStalled) {
    // Claimed but not committed: a stall begins. Remember the tail too: every
    // seq below it has been claimed at least as long as this one.
    stalled_since_ms_ = now;
    stalled_tail_ = tail;
  }
  (void)abort_stalled_claims(q, seq, now, stalled_since_ms_, stalled_tail_);
}

void Consumer::housekeep(std::uint64_t now) noexcept {
  const QueueState& q = *state_;
  auto& me = *member_entry_;
  me.last_active_ms.store(now, std::memory_order_relaxed);
  // Only reclaims and expires leases (lock-free); wakes sleepers if it freed any.
  reclaim_dead_members(q, group_);
  // A member that died between settling and advancing the floor left a run
  // of settled words behind the floor: move over it for them.
  (void)advance_group_floor(q, group_);
  const bool idle = group_entry_->next.load(std::memory_order_relaxed) ==
                    q.header().tail.load(std::memory_order_relaxed);
  next_housekeep_ms_ = now + (idle ? kHousekeepIdleMs : kHousekeepBusyMs);
}

// -------------------------------------------------------------------- ack --

void Consumer::advance_floor() noexcept { (void)advance_group_floor(*state_, *group_entry_, leases_); }

// Whether `word` (loaded from lease[r.seq]) is the delivery `r` was issued
// for. The word must be leased by us with the receipt's generation and count,
// and this group's floor must not have passed r.seq: generation bits wrap
// every 2^14 laps, so a word equal in every field may belong to a later lap.
// It cannot get there while we look: a word owned by this member was taken
// by this Consumer (one thread), and taking a later lap of r.seq's slot needs
// the floor past r.seq first — so if the floor we read after loading the
// word is not past r.seq, the word was r.seq's, and the CAS that follows
// expects exactly it. (protocol.md §3)
[[gnu::always_inline]] inline bool Consumer::check_receipt(const Receipt& r, std::uint64_t word) const noexcept {
  const QueueState& q = *state_;
  if (!holds_receipt(q, LeaseWord::decode(word), r, member_)) return false;
  // acquire: pairs with the floor CAS; a floor past r.seq means its lap is settled.
  if (group_entry_->floor.load(std::memory_order_acquire) > r.seq) return false;
  // Last, right before the CAS: the group was not removed (and created again
  // under this index, where a new member may hold the same index) since.
  if (group_gone()) return false;
  ACKRING_FAILPOINT("ack.after_floor_check");
  return true;
}

[[gnu::always_inline]] inline Status Consumer::settle_receipt(const Receipt& r, SettleReason reason) noexcept {
  auto& word = lease_word(r.seq);
  // acquire: pairs with the word's last CAS; keeps check_receipt's floor read after it (fence, protocol.md §3).
  std::uint64_t w = word.load(std::memory_order_acquire);
  for (;;) {
    // check_receipt looks at the group last, right before the CAS; only a
    // failed check asks why (one look at the group per ack, not two).
    if (!check_receipt(r, w)) return group_gone() ? Status::no_such_group : Status::lease_lost;
    // release: pairs with advance_floor's acquire; our reads of the payload happen before reuse.
    if (word.compare_exchange_weak(w, settled_word(r.seq, reason), std::memory_order_release,
                                   std::memory_order_acquire)) {
      ACKRING_FAILPOINT("ack.after_settle");
      return Status::ok;
    }
  }
}

// Counts acked deliveries in this member's delivery-to-ack histogram: `n`
// acks of deliveries made at `delivered_ms`, now. Receipts made up by the
// caller (delivered_ms 0) are not counted.
[[gnu::always_inline]] inline void Consumer::record_ack_latency(std::uint32_t delivered_ms, std::uint64_t n,
                                                                std::uint64_t now) noexcept {
  if (delivered_ms == 0 || n == 0) return;
  const std::uint32_t ms = static_cast<std::uint32_t>(now) - delivered_ms;  // wraps like the deadlines
  auto& me = *member_entry_;
  bump(me.ack_latency[latency_bucket(ms)], n);
  bump(me.ack_latency_sum_ms, ms * n);
}

Status Consumer::ack(const Receipt& r) noexcept {
  const Status s = settle_receipt(r, SettleReason::acked);
  if (s != Status::ok) return s;
  auto& me = *member_entry_;
  bump(me.acked);
  record_ack_latency(r.delivered_ms, 1, coarse_monotonic_ms());
  advance_floor();
  return Status::ok;
}

std::size_t Consumer::ack_batch(std::span<const Delivery> batch) noexcept {
  std::size_t acked = 0;
  const std::uint64_t now = coarse_monotonic_ms();
  // A batch was mostly delivered at one coarse-clock reading: count runs of
  // equal delivery times at once rather than touching the histogram per ack.
  std::uint32_t run_ms = 0;
  std::uint64_t run = 0;
  for (const Delivery& d : batch) {
    if (settle_receipt(d.receipt(), SettleReason::acked) != Status::ok) continue;
    ++acked;
    if (d.delivered_ms_ != run_ms) {
      record_ack_latency(run_ms, run, now);
      run_ms = d.delivered_ms_;
      run = 0;
    }
    ++run;
  }
  record_ack_latency(run_ms, run, now);
  if (acked != 0) {
    bump(member_entry_->acked, acked);
    advance_floor();
  }
  return acked;
}

Status Consumer::modify_lease(const Receipt& r, std::uint64_t new_deadline_ms, bool give_up) noexcept {
  if (group_gone()) return Status::no_such_group;
  auto& word = lease_word(r.seq);
  // acquire: pairs with the word's last CAS; keeps check_receipt's floor read after it (fence, protocol.md §3).
  std::uint64_t w = word.load(std::memory_order_acquire);
  for (;;) {
    if (!check_receipt(r, w)) return Status::lease_lost;
    LeaseWord lw = LeaseWord::decode(w);
    lw.deadline_ms = static_cast<std::uint32_t>(new_deadline_ms);
    if (give_up) lw.owner = kNoOwner;
    // acq_rel: a takeover CAS racing with us either sees the new deadline or makes ours fail.
    if (word.compare_exchange_weak(w, lw.encode(), std::memory_order_acq_rel, std::memory_order_acquire)) break;
  }
  lower_deadline_hint(*group_entry_, new_deadline_ms);
  // Our own look for expired leases goes back to the message we gave back:
  // the hint (already <= now while a look runs) does not tell it, and a
  // nack(0) means "again at once". Back only to it, not to the floor, so a
  // member that nacks what it takes back still reads each word about once.
  if (give_up && expiry_pass_.active) expiry_pass_.next_seq = std::min(expiry_pass_.next_seq, r.seq);
  return Status::ok;
}

Status Consumer::nack(const Receipt& r, Millis delay) noexcept {
  const std::uint64_t now = coarse_monotonic_ms();
  auto d = static_cast<std::uint64_t>(std::clamp<std::int64_t>(delay.count(), 0, 1ll << 30));
  // No explicit delay: the group's back-off decides (none by default).
  if (d == 0) d = redelivery_delay_ms(*state_, group_, r.deliveries, jitter_state_);
  const Status s = modify_lease(r, now + d, /*give_up=*/true);
  if (s != Status::ok) return s;
  bump(member_entry_->nacked);
  // Sleeping members computed their wake-up from the old hint: let them
  // recompute it (no syscall unless someone sleeps).
  wake_waiters(state_->header().commit_futex, state_->header().commit_waiters);
  return Status::ok;
}

Status Consumer::extend(const Receipt& r, Millis lease) noexcept {
  const auto d = static_cast<std::uint64_t>(std::clamp<std::int64_t>(lease.count(), 1, 1ll << 30));
  return modify_lease(r, coarse_monotonic_ms() + d, /*give_up=*/false);
}

Status Consumer::reject(const Receipt& r) noexcept {
  if (group_gone()) return Status::no_such_group;
  // acquire: pairs with the word's last CAS; keeps check_receipt's floor read after it (fence, protocol.md §3).
  const std::uint64_t w = lease_word(r.seq).load(std::memory_order_acquire);
  if (!check_receipt(r, w)) return Status::lease_lost;
  return dead_letter(r.seq, w, static_cast<std::uint8_t>(DeadLetterReason::rejected)) ? Status::ok
                                                                                     : Status::queue_full;
}

// ---------------------------------------------------------- process-once --

bool Consumer::is_processed(const Delivery& d) noexcept {
  DedupTable table(*state_);
  if (!table.enabled()) return false;
  DedupCounters counters;
  const bool processed = table.contains(processed_key_of(d), coarse_monotonic_ms(), counters);
  bump(member_entry_->bloom_negatives, counters.bloom_negatives);
  if (!processed) return false;
  bump(member_entry_->process_once_skips);
  return true;
}

Status Consumer::mark_processed(const Delivery& d) noexcept {
  DedupTable table(*state_);
  if (!table.enabled()) return Status::no_dedup;
  return table.insert(processed_key_of(d), d.seq_, coarse_monotonic_ms()) ? Status::ok : Status::dedup_full;
}

detail::Fingerprint Consumer::processed_key_of(const Delivery& d) const noexcept {
  // A replay copy is the message it copies: its key, or (without one) the
  // original seq it carries in key_lo, so process_once skips it too.
  const std::uint64_t seq = d.replayed_ && !d.has_key_ ? d.key_lo_ : d.seq_;
  return processed_key({d.key_lo_, d.key_hi_}, d.has_key_, seq, processed_seed_);
}

// Two passes: every key's lines are requested first (prefetch: a hint, no
// ordering), then each delivery is looked up, handled and recorded as
// is_processed / mark_processed would, so the protocol is theirs
// (docs/dedup.md); only the waits for memory overlap.
Consumer::ProcessedBatch Consumer::process_once_batch(std::span<const Delivery> batch, void* handler,
                                                      bool (*call)(void*, const Delivery&)) {
  DedupTable table(*state_);
  // The keys live in this call (the stack for a receive_batch's usual size),
  // not in the Consumer: a handler may use this consumer, this call included.
  constexpr std::size_t kStackKeys = 64;
  std::array<Fingerprint, kStackKeys> stack_keys;
  std::vector<Fingerprint> heap_keys;
  Fingerprint* keys = stack_keys.data();
  if (table.enabled()) {
    if (batch.size() > kStackKeys) {
      heap_keys.resize(batch.size());
      keys = heap_keys.data();
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      keys[i] = processed_key_of(batch[i]);
      table.prefetch(keys[i]);
    }
  }
  ProcessedBatch result;
  std::size_t done = 0;
  try {
    for (; done < batch.size(); ++done) {
      const Delivery& d = batch[done];
      const Fingerprint key = table.enabled() ? keys[done] : Fingerprint{};
      DedupCounters counters;
      if (table.enabled() && table.contains(key, coarse_monotonic_ms(), counters)) {
        bump(member_entry_->process_once_skips);
        ++result.duplicates;
        continue;
      }
      bump(member_entry_->bloom_negatives, counters.bloom_negatives);
      if (!call(handler, d)) {
        result.stopped = true;
        result.acked = ack_batch(batch.first(done));
        return result;
      }
      ++result.handled;
      // A full window (dedup_full) records nothing; the ack below still settles it, as in process_once.
      if (!table.enabled() || !table.insert(key, d.seq_, coarse_monotonic_ms())) ++result.unrecorded;
    }
  } catch (...) {
    (void)ack_batch(batch.first(done));
    throw;
  }
  result.acked = ack_batch(batch);
  return result;
}

}  // namespace ackring
