// Operator tools on a live queue: peek (read without taking), purge, verify.
// peek and verify only read: a slot is copied and then the tail is read (a
// seqlock read whose sequence word is the tail: copy_not_overwritten), so a
// slot reused meanwhile is left out.
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "ackring/error.hpp"
#include "ackring/queue.hpp"
#include "queue/durability.hpp"
#include "queue/group.hpp"
#include "journal/journal_reader.hpp"
#include "shm/liveness.hpp"
#include "shm/queue_state.hpp"

namespace ackring {

using namespace detail;

namespace {

enum class SlotRead : std::uint8_t { ok, not_committed, corrupt, overwritten };

// Copies the committed message `seq` into `out`.
SlotRead read_slot(const QueueState& q, std::uint64_t seq, PeekedMessage& out) {
  const SlotHeader& slot = q.slot(seq);
  // acquire: pairs with the producer's commit CAS; header and payload are then complete.
  const std::uint64_t before = slot.state.load(std::memory_order_acquire);
  const SlotWord sw = SlotWord::decode(before);
  if (sw.seq != (seq & kSeqMask) || sw.state != SlotState::committed) return SlotRead::not_committed;
  const SlotFields f = read_fields(slot);
  const std::uint32_t length = f.length;
  const std::uint64_t checksum = f.checksum;
  const std::uint64_t published = f.publish_time_ns;
  if (length > q.layout.max_message_size) return SlotRead::corrupt;
  out.payload.resize(length);
  if (length != 0) std::memcpy(out.payload.data(), q.payload(seq), length);
  if (!copy_not_overwritten(q, seq)) return SlotRead::overwritten;
  if (XXH3_64bits(out.payload.data(), length) != checksum) return SlotRead::corrupt;
  out.seq = seq;
  out.publish_time_ns = published;
  return SlotRead::ok;
}

}  // namespace

std::vector<PeekedMessage> Queue::peek(std::uint64_t from, std::size_t max) const {
  const QueueState& q = *state_;
  // acquire: pairs with the producers' tail CAS; bounds the scan (each slot is read as a seqlock reader).
  const std::uint64_t tail = q.header().tail.load(std::memory_order_acquire);
  const std::uint64_t oldest = tail > q.layout.capacity ? tail - q.layout.capacity : 0;
  std::vector<PeekedMessage> out;
  PeekedMessage m;
  for (std::uint64_t seq = std::max(from, oldest); seq < tail && out.size() < max; ++seq)
    if (read_slot(q, seq, m) == SlotRead::ok) out.push_back(std::move(m));
  return out;
}

std::uint64_t Queue::purge(std::string_view group) {
  const QueueState& q = *state_;
  std::uint64_t purged = 0;
  bool found = group.empty();
  for (std::uint32_t g = 0; g < q.layout.max_groups; ++g) {
    const auto& G = q.group(g);
    // acquire: pairs with create's release of `active`; the name compared below is complete.
    if (G.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(GroupState::active)) continue;
    if (!group.empty() && std::string_view(G.name, strnlen(G.name, sizeof G.name)) != group) continue;
    found = true;
    // acquire: pairs with the producers' tail CAS; the target is every seq claimed so far.
    purged += push_group_forward(q, g, q.header().tail.load(std::memory_order_acquire), SettleReason::acked);
  }
  if (!found)
    throw Error(ErrorCode::not_found, "purge group '" + std::string(group) + "' in '" + q.path.string() +
                                          "': no such group");
  return purged;
}

namespace {

// A durable queue's journal is part of it: read and verify every record. A
// torn tail is what a live writer's batch in flight looks like: not a problem.
void verify_journal(const QueueState& q, VerifyReport& r) {
  const auto dir = journal_directory(q);
  if (dir.empty() || !journal_has_segments(dir)) return;
  try {
    // acquire: pairs with publish_durable's CAS; a value only. Read before the
    // scan: the journal only grows after it, so on a live queue the scan's
    // end is at or past it unless files went missing.
    const std::uint64_t durable = q.header().durable_seq.load(std::memory_order_acquire);
    const JournalScanResult scan = JournalReader::read(dir, {q.layout.journal_id, false}, {});
    r.journal_checked = true;
    r.journal_end = scan.end;
    r.journal_records = scan.records;
    if (scan.end == JournalEnd::corrupt) r.problems.push_back("journal: " + scan.message);
    if (scan.end != JournalEnd::corrupt && scan.next_seq < durable)
      r.problems.push_back("journal: it ends at seq " + std::to_string(scan.next_seq) + " but the queue says seqs below " +
                           std::to_string(durable) + " are durable (journal files removed?)");
  } catch (const Error& e) {
    r.journal_checked = true;
    r.journal_end = JournalEnd::unreadable;
    r.problems.push_back(std::string("journal: ") + e.what());
  }
}

// Checks slot i: its state word names a seq that can live there, not ahead
// of the tail, with a committed message that verifies; counts dead claims
// (uncommitted claims below `dead_below`, where no live producer may store).
void check_slot(const QueueState& q, std::uint64_t i, std::uint64_t tail, std::uint64_t dead_below, PeekedMessage& m,
                VerifyReport& r) {
  auto problem = [&r](std::string line) { r.problems.push_back(std::move(line)); };
  const auto& h = q.header();
  ++r.slots_checked;
  const SlotHeader& slot = q.slot(i);
  // acquire: pairs with the producer's commit CAS; read_slot then does its own seqlock read.
  const SlotWord sw = SlotWord::decode(slot.state.load(std::memory_order_acquire));
  const auto state = static_cast<std::uint8_t>(sw.state);
  if ((sw.seq & q.mask) != i || state == 1 || state > 3) {  // 1: the claimed mark of formats up to 6
    problem("slot " + std::to_string(i) + ": state word names seq " + std::to_string(sw.seq) + " state " +
            std::to_string(static_cast<unsigned>(sw.state)) + ", which cannot live in this slot");
    ++r.corrupt_slots;
    return;
  }
  // acquire: as above. A live queue may have claimed past the tail read at
  // the start: only a slot ahead of the tail as it is now is damaged.
  // (A free slot is initialised a lap ahead: free(seq) is found up to a ring past the tail.)
  const std::uint64_t ahead = sw.state == SlotState::free ? q.layout.capacity : 0;
  if (sw.seq >= tail + ahead && sw.seq >= h.tail.load(std::memory_order_acquire) + ahead) {
    problem("slot " + std::to_string(i) + ": holds seq " + std::to_string(sw.seq) + " at or beyond the tail " +
            std::to_string(tail));
    ++r.corrupt_slots;
    return;
  }
  if (sw.state == SlotState::committed && read_slot(q, sw.seq, m) == SlotRead::corrupt) {
    problem("slot " + std::to_string(i) + " (seq " + std::to_string(sw.seq) +
            "): length or checksum does not verify; consumers will skip it");
    ++r.corrupt_slots;
  }
  // The seq of this slot's newest claim (the highest below the tail), if any:
  // while uncommitted, the slot still holds free(it) or an earlier lap's word.
  if (tail <= i) return;
  const std::uint64_t claimed = i + ((tail - 1 - i) & ~q.mask);
  if (sw.before_lap_of(claimed) && claimed < dead_below)
    ++r.dead_claims;  // consumers abort these on their own: reported, not a problem
}

// Checks group entry g: a known state and, when active, cursors in order
// and within reach of the tail.
void check_group(const QueueState& q, std::uint32_t g, std::uint64_t tail, VerifyReport& r) {
  auto problem = [&r](std::string line) { r.problems.push_back(std::move(line)); };
  const auto& h = q.header();
  const auto& G = q.group(g);
  // acquire: pairs with create's release of `active`; name, floor and next are then the group's.
  const auto state = G.state.load(std::memory_order_acquire);
  if (state > static_cast<std::uint32_t>(GroupState::active)) {
    problem("group slot " + std::to_string(g) + ": unknown state " + std::to_string(state));
    return;
  }
  if (state != static_cast<std::uint32_t>(GroupState::active)) return;
  const std::string name(G.name, strnlen(G.name, sizeof G.name));
  // acquire (floor, then next): pair with their CASes; both only rise, so floor <= next holds as read.
  const std::uint64_t floor = G.floor.load(std::memory_order_acquire);
  const std::uint64_t next = G.next.load(std::memory_order_acquire);
  if (floor > next) problem("group '" + name + "': floor " + std::to_string(floor) + " is past next " + std::to_string(next));
  // acquire: next was read after `tail`; on a live queue it may have passed that
  // value since, so compare with the tail as it is now.
  if (next > tail && next > h.tail.load(std::memory_order_acquire)) problem("group '" + name + "': next " + std::to_string(next) + " is past the tail " + std::to_string(tail));
  if (tail > floor + q.layout.capacity && G.overflow == static_cast<std::uint8_t>(OverflowPolicy::block))
    problem("group '" + name + "': floor " + std::to_string(floor) + " is more than a ring behind the tail " +
            std::to_string(tail) + " (messages were overwritten before it settled them)");
}

}  // namespace

VerifyReport Queue::verify() const {
  const QueueState& q = *state_;
  VerifyReport r;
  // acquire: pairs with the producers' tail CAS; slots and cursors below are checked against it.
  const std::uint64_t tail = q.header().tail.load(std::memory_order_acquire);
  if (tail > kSeqMask) r.problems.push_back("tail " + std::to_string(tail) + " is beyond the 56-bit sequence space");
  PeekedMessage m;
  // Claims below it have no live producer that may still write them.
  const std::uint64_t dead_below = lowest_live_in_flight(q, tail);
  for (std::uint64_t i = 0; i < q.layout.capacity; ++i) check_slot(q, i, tail, dead_below, m, r);
  for (std::uint32_t g = 0; g < q.layout.max_groups; ++g) check_group(q, g, tail, r);
  verify_journal(q, r);
  return r;
}

}  // namespace ackring
