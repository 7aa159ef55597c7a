#include "queue/group.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

#include "ackring/error.hpp"
#include "shm/clock.hpp"
#include "dedup/dedup.hpp"
#include "shm/failpoint.hpp"
#include "shm/liveness.hpp"
#include "shm/wait.hpp"

namespace ackring::detail {

namespace {

std::mutex& admin_mutex() {
  static std::mutex m;
  return m;
}

bool is_live_group_state(std::uint32_t s) noexcept {
  return s == static_cast<std::uint32_t>(GroupState::creating) || s == static_cast<std::uint32_t>(GroupState::active);
}

std::string_view name_of(const GroupEntry& g) noexcept {
  return {g.name, strnlen(g.name, sizeof g.name)};
}

// Gives every lease of member m in group g back to the group, with the
// owner that says why (kReleasedOwner: it left; kDeadOwner: it died). A
// member that left gives its messages back at once; a dead member's come
// back after the group's redelivery back-off. Either way the next receive by
// any member takes them over once the deadline passes. Scans [floor, tail):
// a lease can sit just at or past `next` if its taker died before advancing next.
void release_leases_of(const QueueState& q, std::uint32_t g, std::uint32_t m, std::uint32_t why) noexcept {
  auto& G = q.group(g);
  const std::uint64_t now = coarse_monotonic_ms();
  std::uint64_t jitter_state = monotonic_ns() ^ (std::uint64_t{m} << 32);
  // acquire (floor, tail): pair with the floor CAS and the producers' tail CAS; they only bound the scan.
  const std::uint64_t floor = G.floor.load(std::memory_order_acquire);
  const std::uint64_t tail = q.header().tail.load(std::memory_order_acquire);
  const std::uint64_t end = std::min(tail, floor + q.layout.capacity);
  bool any = false;
  for (std::uint64_t s = floor; s < end; ++s) {
    auto& word = q.lease(g, s);
    // acquire: pairs with the member's take/extend CAS; the exact value the give-back CAS below expects.
    std::uint64_t w = word.load(std::memory_order_acquire);
    for (;;) {
      LeaseWord lw = LeaseWord::decode(w);
      if (lw.state != LeaseState::leased || lw.generation != q.generation(s) || lw.owner != m) break;
      lw.owner = why;
      const std::uint64_t wait = why == kDeadOwner ? redelivery_delay_ms(q, g, lw.deliveries, jitter_state) : 0;
      lw.deadline_ms = static_cast<std::uint32_t>(wait != 0 ? now + wait : now - 1);
      // acq_rel: the new owner's takeover CAS reads this value; nothing else is published.
      if (word.compare_exchange_weak(w, lw.encode(), std::memory_order_acq_rel, std::memory_order_acquire)) {
        any = true;
        break;
      }
    }
  }
  if (any) {
    // Due now (left) or after the shortest back-off (died): 0 makes the next
    // receive scan, and the scan sets the hint to the earliest deadline.
    lower_deadline_hint(q, g, 0);
    wake_waiters(q.header().commit_futex, q.header().commit_waiters);
  }
}

void clear_member_counters(MemberEntry& e) noexcept {
  for (auto* c : {&e.delivered, &e.acked, &e.redelivered, &e.nacked, &e.lease_expiries, &e.process_once_skips,
                  &e.ack_latency_sum_ms, &e.bloom_negatives})
    c->store(0, std::memory_order_relaxed);
  for (auto& c : e.redelivered_by) c.store(0, std::memory_order_relaxed);
  for (auto& c : e.ack_latency) c.store(0, std::memory_order_relaxed);
  e.lease_ms.store(0, std::memory_order_relaxed);
}

void fold_and_clear_counters(GroupEntry& G, MemberEntry& e) noexcept {
  G.retired_delivered.fetch_add(e.delivered.load(std::memory_order_relaxed), std::memory_order_relaxed);
  G.retired_acked.fetch_add(e.acked.load(std::memory_order_relaxed), std::memory_order_relaxed);
  G.retired_redelivered.fetch_add(e.redelivered.load(std::memory_order_relaxed), std::memory_order_relaxed);
  G.retired_nacked.fetch_add(e.nacked.load(std::memory_order_relaxed), std::memory_order_relaxed);
  G.retired_lease_expiries.fetch_add(e.lease_expiries.load(std::memory_order_relaxed), std::memory_order_relaxed);
  for (std::uint32_t c = 0; c < kRedeliveryCauses; ++c)
    G.retired_redelivered_by[c].fetch_add(e.redelivered_by[c].load(std::memory_order_relaxed), std::memory_order_relaxed);
  G.retired_process_once_skips.fetch_add(e.process_once_skips.load(std::memory_order_relaxed), std::memory_order_relaxed);
  G.retired_ack_latency_sum_ms.fetch_add(e.ack_latency_sum_ms.load(std::memory_order_relaxed), std::memory_order_relaxed);
  G.retired_bloom_negatives.fetch_add(e.bloom_negatives.load(std::memory_order_relaxed), std::memory_order_relaxed);
  for (std::uint32_t b = 0; b < kLatencyBuckets; ++b)
    G.retired_ack_latency[b].fetch_add(e.ack_latency[b].load(std::memory_order_relaxed), std::memory_order_relaxed);
  clear_member_counters(e);
}

}  // namespace

AdminLock::AdminLock(const QueueState& q) : in_process_(admin_mutex()) {
  fd_ = ::open(q.path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) {
    const int err = errno;
    if (fd_ >= 0) ::close(fd_);
    throw Error(ErrorCode::system, "lock queue '" + q.path.string() + "': " + std::strerror(err));
  }
}

AdminLock::~AdminLock() { ::close(fd_); }  // closing the descriptor drops the flock

std::uint64_t group_bloom_negatives(const QueueState& q, std::uint32_t g) noexcept {
  std::uint64_t n = q.group(g).retired_bloom_negatives.load(std::memory_order_relaxed);
  for (std::uint32_t m = 0; m < q.layout.max_members; ++m)
    n += q.member(g, m).bloom_negatives.load(std::memory_order_relaxed);
  return n;
}

std::uint32_t find_group(const QueueState& q, std::string_view name) noexcept {
  for (std::uint32_t g = 0; g < q.layout.max_groups; ++g) {
    const auto& G = q.group(g);
    // acquire: pairs with the creator's release store of `active`, so the name is complete.
    if (G.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(GroupState::active) &&
        name_of(G) == name)
      return g;
  }
  return kNoGroup;
}

namespace {

void check_group_request(std::string_view name, const GroupOptions& options, const std::string& where) {
  if (name.empty() || name.size() > kGroupNameMax)
    throw Error(ErrorCode::invalid_argument, where + "a group name has 1 to 47 bytes");
  if (const auto why = redelivery_policy_error(options.redelivery)) throw Error(ErrorCode::invalid_argument, where + *why);
  for (const char c : name)
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e)
      throw Error(ErrorCode::invalid_argument, where + "a group name is printable ASCII without spaces");
}

// Takes a free group entry (moving it to `creating`), or one a dead creator
// left `creating`. Called with the admin lock held.
std::uint32_t claim_group_entry(const QueueState& q, const std::string& where) {
  std::uint32_t g = kNoGroup;
  for (std::uint32_t i = 0; i < q.layout.max_groups && g == kNoGroup; ++i) {
    std::uint32_t expected = static_cast<std::uint32_t>(GroupState::free);
    // acq_rel: claims the entry; a crash of an earlier creator under the lock can leave
    // `creating`, which the lock holder may take over (checked below).
    if (q.group(i).state.compare_exchange_strong(expected, static_cast<std::uint32_t>(GroupState::creating),
                                                 std::memory_order_acq_rel))
      g = i;
    else if (expected == static_cast<std::uint32_t>(GroupState::creating))
      g = i;  // left by a creator that died holding the admin lock: we hold it now, so it is ours
  }
  if (g == kNoGroup)
    throw Error(ErrorCode::resource_exhausted,
                where + "all " + std::to_string(q.layout.max_groups) + " group slots are in use");
  return g;
}

// Writes the claimed entry g from scratch: name, policies, counters, members
// and leases (plain or relaxed writes: the release of `active` in
// start_and_publish_group publishes them).
void init_group_entry(const QueueState& q, std::uint32_t g, std::string_view name, const GroupOptions& options) {
  auto& G = q.group(g);
  // While `creating`, the entry is invisible to consumers but its floor
  // already counts for producers (scan_min_floor includes it).
  std::memset(G.name, 0, sizeof G.name);
  std::memcpy(G.name, name.data(), name.size());
  G.overflow = static_cast<std::uint8_t>(options.overflow);
  G.redelivery.store(encode_redelivery(options.redelivery), std::memory_order_relaxed);
  G.deadline_hint_ms.store(~0ull, std::memory_order_relaxed);
  for (auto* c : {&G.dead_lettered, &G.dropped, &G.aborted_skipped, &G.corrupt_skipped, &G.retired_delivered,
                  &G.retired_acked, &G.retired_redelivered, &G.retired_nacked, &G.retired_lease_expiries,
                  &G.retired_process_once_skips, &G.retired_ack_latency_sum_ms, &G.retired_bloom_negatives})
    c->store(0, std::memory_order_relaxed);
  for (auto& c : G.retired_redelivered_by) c.store(0, std::memory_order_relaxed);
  for (auto& c : G.retired_ack_latency) c.store(0, std::memory_order_relaxed);
  for (std::uint32_t m = 0; m < q.layout.max_members; ++m) {
    auto& e = q.member(g, m);
    e.pid.store(0, std::memory_order_relaxed);
    e.start_time.store(0, std::memory_order_relaxed);
    clear_member_counters(e);
  }
  for (std::uint64_t s = 0; s < q.layout.capacity; ++s) q.lease(g, s).store(0, std::memory_order_relaxed);
}

// Sets the start of the initialised entry g, then makes the group active.
void start_and_publish_group(const QueueState& q, std::uint32_t g, StartPosition start_at) {
  auto& G = q.group(g);
  // Choose the start so that no producer can already be overwriting it:
  // everything at or above the floor word's floor is intact (producers claim
  // seq t only when t < floor + capacity). Publishing the group and bumping
  // the word's version in one CAS makes any floor refresh that scanned the
  // groups before this one existed fail its own CAS, so the word can never
  // rise above our start without seeing us.
  auto& h = q.header();
  std::uint64_t w = h.floor_word.load(std::memory_order_acquire);
  for (;;) {
    const std::uint64_t floor = floor_of(w);
    // acquire: pairs with the producers' tail CAS; only the start of a `latest` group.
    const std::uint64_t tail = h.tail.load(std::memory_order_acquire);
    const std::uint64_t start = start_at == StartPosition::latest ? std::max(tail, floor) : floor;
    G.next.store(start, std::memory_order_relaxed);
    // release: a refresher that reads the new floor word (acquire) sees this floor.
    G.floor.store(start, std::memory_order_release);
    // acq_rel: publishes the floor above to refreshers that load the word afterwards.
    if (h.floor_word.compare_exchange_weak(w, make_floor_word(floor, (w & 0xff) + 1), std::memory_order_acq_rel,
                                           std::memory_order_acquire))
      break;
  }
  G.incarnation.fetch_add(1, std::memory_order_relaxed);
  // release: consumers that find the group active (acquire) see name, cursors and cleared leases.
  G.state.store(static_cast<std::uint32_t>(GroupState::active), std::memory_order_release);
  h.group_epoch.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

std::uint32_t create_group(const QueueState& q, std::string_view name, const GroupOptions& options) {
  const std::string where = "create group '" + std::string(name) + "' in '" + q.path.string() + "': ";
  check_group_request(name, options, where);
  AdminLock lock(q);
  if (find_group(q, name) != kNoGroup) throw Error(ErrorCode::already_exists, where + "the group exists");
  const std::uint32_t g = claim_group_entry(q, where);
  init_group_entry(q, g, name, options);
  start_and_publish_group(q, g, options.start);
  return g;
}

std::uint64_t redelivery_delay_ms(const QueueState& q, std::uint32_t g, std::uint32_t deliveries,
                                  std::uint64_t& jitter_state) noexcept {
  if (deliveries >= q.layout.max_deliveries) return 0;
  // relaxed: the policy word is self-contained; any recent value will do.
  const RedeliveryWord policy = RedeliveryWord::decode(q.group(g).redelivery.load(std::memory_order_relaxed));
  return policy.enabled() ? backoff_ms(policy, deliveries, splitmix64(jitter_state)) : 0;
}

void set_group_redelivery(const QueueState& q, std::uint32_t g, const RedeliveryPolicy& policy) {
  if (const auto why = redelivery_policy_error(policy))
    throw Error(ErrorCode::invalid_argument,
                "set redelivery of group '" + std::string(name_of(q.group(g))) + "' in '" + q.path.string() + "': " + *why);
  // relaxed: members read the word when a message comes back; one word, so never a mix.
  q.group(g).redelivery.store(encode_redelivery(policy), std::memory_order_relaxed);
}

bool remove_group(const QueueState& q, std::string_view name) {
  AdminLock lock(q);
  const std::uint32_t g = find_group(q, name);
  if (g == kNoGroup) return false;
  auto& G = q.group(g);
  // The queue's dedup statistics keep the group's process-once filter answers.
  q.header().retired_bloom_negatives.fetch_add(group_bloom_negatives(q, g), std::memory_order_relaxed);
  G.incarnation.fetch_add(1, std::memory_order_relaxed);
  // release: a member that sees `free` stops; producers stop counting its floor
  // at their next refresh, which can only free more room.
  G.state.store(static_cast<std::uint32_t>(GroupState::free), std::memory_order_release);
  q.header().group_epoch.fetch_add(1, std::memory_order_relaxed);
  // Producers may be asleep waiting for this group to move.
  wake_waiters(q.header().space_futex, q.header().space_waiters);
  return true;
}

std::uint32_t join_group(const QueueState& q, std::uint32_t g) {
  const ProcessIdentity self = self_identity();
  for (int attempt = 0; attempt < 2; ++attempt) {
    for (std::uint32_t m = 0; m < q.layout.max_members; ++m) {
      auto& e = q.member(g, m);
      std::uint32_t expected = 0;
      // acq_rel: the slot becomes ours; a previous owner's counter clears happened before its pid=0 store.
      if (e.pid.load(std::memory_order_relaxed) == 0 &&
          e.pid.compare_exchange_strong(expected, static_cast<std::uint32_t>(self.pid), std::memory_order_acq_rel)) {
        e.last_active_ms.store(coarse_monotonic_ms(), std::memory_order_relaxed);
        // release: readers that see the start time (acquire) judge liveness by pid + start time.
        e.start_time.store(self.start_time, std::memory_order_release);
        return m;
      }
    }
    if (reclaim_dead_members(q, g) == 0) break;
  }
  throw Error(ErrorCode::resource_exhausted,
              "join group '" + std::string(name_of(q.group(g))) + "' in '" + q.path.string() + "': all " +
                  std::to_string(q.layout.max_members) + " member slots are held by live processes");
}

void leave_group(const QueueState& q, std::uint32_t g, std::uint32_t m, bool died) noexcept {
  auto& e = q.member(g, m);
  release_leases_of(q, g, m, died ? kDeadOwner : kReleasedOwner);
  fold_and_clear_counters(q.group(g), e);
  e.start_time.store(0, std::memory_order_relaxed);
  // release: the counter clears above are visible to the next owner (its acq_rel CAS).
  e.pid.store(0, std::memory_order_release);
}

std::uint32_t reclaim_dead_members(const QueueState& q, std::uint32_t g) noexcept {
  std::uint32_t freed = 0;
  const auto me = kReclaiming | static_cast<std::uint32_t>(self_identity().pid);
  for (std::uint32_t m = 0; m < q.layout.max_members; ++m) {
    auto& e = q.member(g, m);
    // acquire: pairs with join's pid CAS and leave's release of 0; the reclaim CAS below re-checks it.
    std::uint32_t word = e.pid.load(std::memory_order_acquire);
    if (word == 0 || word == me) continue;
    if (is_reclaiming(word)) {
      // A reclaimer that died mid-way: take the job over from it.
      if (is_alive(static_cast<pid_t>(word & ~kReclaiming), 0)) continue;
    } else {
      // acquire: pairs with join's release of start_time.
      const std::uint64_t start = e.start_time.load(std::memory_order_acquire);
      if (is_alive(static_cast<pid_t>(word), start)) continue;
    }
    // acq_rel: exactly one reclaimer wins the slot (from this exact owner or reclaimer).
    if (!e.pid.compare_exchange_strong(word, me, std::memory_order_acq_rel)) continue;
    leave_group(q, g, m, /*died=*/true);
    ++freed;
  }
  return freed;
}

bool advance_group_floor(const QueueState& q, std::uint32_t g) noexcept {
  return advance_group_floor(q, q.group(g), &q.lease(g, 0));
}

bool advance_group_floor(const QueueState& q, GroupEntry& G, std::atomic<std::uint64_t>* leases) noexcept {
  // acquire: pairs with other advancers' floor CAS; the start of the scan (the CAS below re-checks it).
  std::uint64_t floor = G.floor.load(std::memory_order_acquire);
  for (;;) {
    // acquire: pairs with the next CAS (acq_rel): lease words below next were written before it moved.
    const std::uint64_t next = G.next.load(std::memory_order_acquire);
    std::uint64_t end = floor;
    while (end < next && end - floor < q.layout.capacity) {
      // acquire: pairs with the settling CAS (release).
      if (!is_settled_for(leases[end & q.mask].load(std::memory_order_acquire), end)) break;
      ++end;
    }
    if (end == floor) return false;
    ACKRING_FAILPOINT("floor.after_scan");
    // seq_cst: the waker side of wait.hpp for producers waiting on space.
    if (G.floor.compare_exchange_strong(floor, end, std::memory_order_seq_cst)) {
      wake_waiters(q.header().space_futex, q.header().space_waiters);
      return true;
    }
    // Someone else moved it: continue from theirs.
  }
}

std::uint64_t abort_stalled_claims(const QueueState& q, std::uint64_t seq, std::uint64_t now,
                                   std::uint64_t stalled_since_ms, std::uint64_t stalled_tail) noexcept {
  // Every seq of [seq, stalled_tail) was claimed when the stall began. After
  // claim_timeout all of them that are still uncommitted are aborted; before
  // that, those no live producer may still store into (below the lowest live
  // in-flight word: their claimers died). A claim is not written into its
  // slot, so the in-flight words are what names a claim's owner; they are
  // visible here because we learned of the claims from the tail (acquire),
  // which each claimer's CAS published after its word (protocol.md §1).
  const bool timed_out = now - stalled_since_ms >= q.layout.claim_timeout_ms;
  const std::uint64_t end = std::min(stalled_tail, seq + q.layout.capacity);
  const std::uint64_t dead_below = timed_out ? end : std::min(end, lowest_live_in_flight(q, end));
  if (dead_below <= seq) return 0;
  ACKRING_FAILPOINT("abort.after_judge");
  std::uint64_t aborted = 0;
  for (std::uint64_t s = seq; s < dead_below; ++s) {
    // acquire: pairs with the earlier lap's commit CAS; abort_claim reads that lap's key flags before reuse.
    const std::uint64_t w = q.slot(s).state.load(std::memory_order_acquire);
    if (SlotWord::decode(w).before_lap_of(s) && abort_claim(q, s, w)) ++aborted;
  }
  if (aborted != 0) {
    q.header().aborted.fetch_add(aborted, std::memory_order_relaxed);
    wake_waiters(q.header().commit_futex, q.header().commit_waiters);  // other groups' members may sleep on it
  }
  return aborted;
}

bool abort_claim(const QueueState& q, std::uint64_t seq, std::uint64_t observed) noexcept {
  SlotHeader& slot = q.slot(seq);
  remember_key_before_reuse(q, slot, observed);
  // acq_rel: exactly one of this CAS and the producer's mark/commit CAS wins.
  return slot.state.compare_exchange_strong(observed, SlotWord{seq, SlotState::aborted}.encode(),
                                            std::memory_order_acq_rel, std::memory_order_relaxed);
}

std::uint64_t push_group_forward(const QueueState& q, std::uint32_t g, std::uint64_t target,
                                 SettleReason reason) noexcept {
  auto& G = q.group(g);
  // 1. next first, so members stop taking seqs below target.
  std::uint64_t next = G.next.load(std::memory_order_acquire);
  // acq_rel: members that read the new next (acquire) re-validate before taking.
  while (next < target && !G.next.compare_exchange_weak(next, target, std::memory_order_acq_rel)) {
  }
  ACKRING_FAILPOINT("drop.after_next");
  // 2. settle everything unsettled below target.
  std::uint64_t floor = G.floor.load(std::memory_order_acquire);
  if (target > floor + q.layout.capacity) floor = target - q.layout.capacity;  // older slots are long reused
  std::uint64_t settled_count = 0;
  for (std::uint64_t s = floor; s < target; ++s) {
    auto& word = q.lease(g, s);
    // acquire: pairs with the members' take/settle CASes; the exact value the CASes below expect.
    std::uint64_t w = word.load(std::memory_order_acquire);
    for (;;) {
      if (is_settled_for(w, s)) break;
      const LeaseWord lw = LeaseWord::decode(w);
      if (lw.state == LeaseState::leased && lw.owner != kDroppingOwner) {
        // A member's lease: a value that can come back in a later lap of the
        // slot (generation and deadline wrap), so it is not settled straight
        // from what we read. First mark it ours (owner = dropping), then check
        // that the floor has not passed s: while the word is marked nobody
        // but a pusher settles s, and a later lap exists only once the floor
        // passed s. If it has, the word we marked was a later lap's lease
        // (we stalled while the slot went round): give it back.
        LeaseWord marked = lw;
        marked.owner = kDroppingOwner;
        // acq_rel: as the settle below; the holder's ack, nack or extend now fails.
        if (!word.compare_exchange_weak(w, marked.encode(), std::memory_order_acq_rel, std::memory_order_acquire))
          continue;
        // acquire: pairs with the floor CAS (a floor past s: s's lap was settled).
        if (G.floor.load(std::memory_order_acquire) > s) {
          std::uint64_t ours = marked.encode();
          (void)word.compare_exchange_strong(ours, w, std::memory_order_acq_rel, std::memory_order_relaxed);
          break;
        }
        w = marked.encode();
      }
      // Empty, an earlier lap's settled word (values that never come back:
      // layout.hpp), or a lease marked by a pusher. acq_rel: a member racing
      // to take or ack this seq loses (its CAS sees the settled word).
      if (word.compare_exchange_weak(w, settled_word(s, reason), std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
        ++settled_count;
        break;
      }
    }
  }
  if (reason == SettleReason::dropped && settled_count != 0)
    G.dropped.fetch_add(settled_count, std::memory_order_relaxed);
  ACKRING_FAILPOINT("drop.after_settle");
  // 3. floor, last: producers may reuse slots below it from now on.
  // seq_cst: publishes the settled words above before the producer's floor scan.
  floor = G.floor.load(std::memory_order_acquire);
  while (floor < target && !G.floor.compare_exchange_weak(floor, target, std::memory_order_seq_cst)) {
  }
  wake_waiters(q.header().space_futex, q.header().space_waiters);
  return settled_count;
}

std::uint64_t scan_min_floor(const QueueState& q, std::uint64_t tail) noexcept {
  std::uint64_t min_floor = tail;
  for (std::uint32_t g = 0; g < q.layout.max_groups; ++g) {
    const auto& G = q.group(g);
    // seq_cst: a producer that goes to sleep after this scan must be woken by a
    // floor CAS (seq_cst) it did not see (the futex protocol in wait.hpp).
    if (!is_live_group_state(G.state.load(std::memory_order_seq_cst))) continue;
    min_floor = std::min(min_floor, G.floor.load(std::memory_order_seq_cst));
  }
  // Invariant 6: a slot is reused only after its journal record is durable.
  // seq_cst: like the floors above (the journal thread's raise of durable_seq
  // is a seq_cst CAS followed by a wake of the space waiters).
  if (q.layout.durability != 0) min_floor = std::min(min_floor, q.header().durable_seq.load(std::memory_order_seq_cst));
  return min_floor;
}

std::uint64_t lowest_live_in_flight(const QueueState& q, std::uint64_t bound) noexcept {
  std::uint64_t lowest = bound;
  for (std::uint32_t i = 0; i < q.layout.max_producers; ++i) {
    const ProducerEntry& e = q.producer(i);
    // acquire: pairs with end_flight's release store of 0; the slot stores of
    // the publish it ends happen before a reuse we allow on seeing 0.
    const std::uint64_t word = e.in_flight.load(std::memory_order_acquire);
    if (word == 0 || word - 1 >= lowest) continue;
    // acquire: pairs with registration's release of start_time (Queue::producer).
    const std::uint32_t pid = e.pid.load(std::memory_order_acquire);
    if (pid == 0 || !is_alive(static_cast<pid_t>(pid), e.start_time.load(std::memory_order_acquire))) continue;
    lowest = word - 1;
  }
  return lowest;
}

std::uint64_t refresh_floor(const QueueState& q, std::uint64_t want_floor, bool help_settled_runs) noexcept {
  auto& h = q.header();
  for (int attempt = 0; attempt < 16; ++attempt) {
    // acquire: a word whose version a group creation bumped comes with that group's entry.
    std::uint64_t w = h.floor_word.load(std::memory_order_acquire);
    const std::uint64_t tail = h.tail.load(std::memory_order_acquire);
    std::uint64_t floor = scan_min_floor(q, tail);
    if (help_settled_runs && floor < want_floor) {
      // A member that died between settling and advancing a floor leaves it
      // behind a settled run: advance every group that holds us back.
      for (std::uint32_t g = 0; g < q.layout.max_groups; ++g)
        if (q.group(g).state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(GroupState::active) &&
            q.group(g).floor.load(std::memory_order_acquire) < want_floor)
          (void)advance_group_floor(q, g);
      floor = scan_min_floor(q, tail);
    }
    if (floor < want_floor) {
      // A drop group never holds producers back: push it forward by a bit
      // more than needed (capacity/16), so this is not paid on every publish.
      const std::uint64_t target = std::min(tail, want_floor + q.layout.capacity / 16);
      for (std::uint32_t g = 0; g < q.layout.max_groups; ++g) {
        const auto& G = q.group(g);
        // acquire (state, floor): pair with create's release of `active` (overflow is set) and the floor CAS.
        if (G.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(GroupState::active) &&
            G.overflow == static_cast<std::uint8_t>(OverflowPolicy::drop) &&
            G.floor.load(std::memory_order_acquire) < want_floor)
          (void)push_group_forward(q, g, target, SettleReason::dropped);
      }
      floor = scan_min_floor(q, tail);
    }
    // After the floors, never before: a claim that some group's floor has
    // passed was made (tail CAS, release) after its producer's in-flight
    // store, so reading the floors first makes that store visible here.
    floor = std::min(floor, lowest_live_in_flight(q, floor));
    ACKRING_FAILPOINT("refresh.after_scan");
    floor = std::max(floor, floor_of(w));  // the floor never moves back
    if (floor == floor_of(w)) return floor;
    // acq_rel: fails if a group was created since the load (version bump): rescan.
    if (h.floor_word.compare_exchange_strong(w, make_floor_word(floor, w & 0xff), std::memory_order_acq_rel,
                                             std::memory_order_acquire))
      return floor;
  }
  // acquire: as at the top of the loop; a floor word, however stale, is a safe lower bound.
  return floor_of(h.floor_word.load(std::memory_order_acquire));
}

}  // namespace ackring::detail
