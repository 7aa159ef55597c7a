// Queue::rewind_group: replay from the journal (docs/journal.md, "Replay").
//
// The ring cannot take a group back below the producers' floor: those slots
// may already hold newer messages. So a rewind publishes the journaled
// messages again, in their order, as copies addressed to one group (slot
// flag kSlotReplay with the group's index and incarnation); every other group
// settles such a copy unseen (Consumer::fill). The copies are ordinary
// messages otherwise: leased, acked, redelivered, dead-lettered, journaled
// (naming their group by a hash of its name) and recovered.
#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "ackring/error.hpp"
#include "ackring/queue.hpp"
#include "shm/clock.hpp"
#include "queue/durability.hpp"
#include "queue/group.hpp"
#include "journal/journal_reader.hpp"
#include "journal/journal_records.hpp"
#include "shm/queue_state.hpp"

namespace ackring {

using namespace detail;

namespace {

constexpr std::uint64_t kProgressEvery = 1024;  // records between progress reports

std::uint64_t deadline_in(std::chrono::milliseconds d) noexcept {
  return monotonic_ns() + static_cast<std::uint64_t>(std::max<std::int64_t>(d.count(), 0)) * 1'000'000;
}

// The journal must hold every seq below `until` before it is read: wait for
// the writer (async: up to its flush interval; sync: the batch in flight),
// as long as the caller waits for room, but at least a second.
void wait_journaled(const QueueState& q, std::uint64_t until, const RewindOptions& options, const std::string& op) {
  const std::uint64_t deadline_ns = deadline_in(std::max(options.room_timeout, std::chrono::milliseconds(1000)));
  // acquire: pairs with publish_durable; the records below durable_seq are on disk.
  while (q.header().durable_seq.load(std::memory_order_acquire) < until) {
    if (monotonic_ns() >= deadline_ns)
      // acquire: as the loop's load; the value for the message only.
      throw Error(ErrorCode::timeout,
                  op + ": the journal holds seqs below " +
                      std::to_string(q.header().durable_seq.load(std::memory_order_acquire)) + " only, not yet " +
                      std::to_string(until) + " (is a process with the journal writer running?)");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

struct Target {
  std::uint32_t index = 0;
  std::uint32_t incarnation = 0;
  std::uint64_t name_hash = 0;
};

Target find_target(const QueueState& q, std::string_view group, const std::string& op) {
  if (q.layout.durability == kDurabilityNone)
    throw Error(ErrorCode::invalid_argument,
                op + ": the queue has no journal (durability none), so there is nothing to replay from");
  const std::uint32_t g = find_group(q, group);
  if (g == kNoGroup) throw Error(ErrorCode::not_found, op + ": no such group");
  return {g, q.group(g).incarnation.load(std::memory_order_relaxed), journal_group_hash(group)};
}

// A message the group saw (or would have seen): not a copy for another group.
bool visible_to(const JournalMessageView& m, const Target& t) noexcept {
  return !m.replay || m.target_group_hash == t.name_hash;
}

}  // namespace

RewindReport Queue::rewind_group(std::string_view group, std::uint64_t from_seq, const RewindOptions& options) {
  const QueueState& q = *state_;
  const std::string op = "rewind group '" + std::string(group) + "' of '" + q.path.string() + "'";
  const Target target = find_target(q, group, op);
  // acquire: every seq below it was claimed; the journal will hold them once durable.
  const std::uint64_t until = q.header().tail.load(std::memory_order_acquire);
  if (from_seq > until)
    throw Error(ErrorCode::invalid_argument,
                op + ": seq " + std::to_string(from_seq) + " is past the tail " + std::to_string(until));
  wait_journaled(q, until, options, op);

  RewindReport rep;
  rep.from_seq = from_seq;
  rep.until_seq = until;
  Producer producer = this->producer();
  const std::uint32_t copy_flags = replay_slot_flags(target.index, target.incarnation);
  const std::uint64_t total = until - from_seq;
  std::uint64_t visited = 0;
  std::uint64_t last_copy = 0;
  bool first_record = true;
  const JournalScanResult scan = JournalReader::read(journal_directory(q), {q.layout.journal_id, false},
                                                     [&](const JournalRecordView& r) {
    if (first_record) {
      first_record = false;
      rep.from_seq = std::max(from_seq, r.seq);  // retention removed what came before
    }
    if (r.seq >= until) return;  // our own copies, and whatever came after the rewind began
    if (r.type != JournalRecordType::message || r.seq < from_seq) return;
    JournalMessageView m;
    if (!decode_message(r.payload, r.flags, m) || !visible_to(m, target)) return;
    // A copy without key carries the seq it copies in key lo (process_once
    // names it by that seq); a copy of a copy keeps the original's.
    const bool copy_of_copy = m.replay && !m.has_key;
    const std::uint64_t key_lo = m.has_key || copy_of_copy ? m.key.lo : r.seq;
    const std::uint64_t key_hi = m.has_key ? m.key.hi : 0;
    const PublishResult p = producer.publish_copy(m.body, copy_flags | (m.has_key ? kSlotHasKey : 0u), key_lo, key_hi,
                                                  m.publish_time_ns, deadline_in(options.room_timeout));
    if (!p.ok())
      throw Error(p.status == Status::timeout ? ErrorCode::timeout : ErrorCode::system,
                  op + ": publishing the copy of seq " + std::to_string(r.seq) + " failed (" + std::string(to_string(p.status)) +
                      ") after " + std::to_string(rep.replayed) +
                      " copies; the group gets those (run the rewind again for the rest: at-least-once)");
    if (rep.replayed++ == 0) rep.first_replay_seq = p.seq;
    last_copy = p.seq;
    if (options.progress && ++visited % kProgressEvery == 0) options.progress(r.seq - from_seq, total);
  });
  if (scan.next_seq < until)
    throw Error(ErrorCode::corrupt, op + ": the journal ends at seq " + std::to_string(scan.next_seq) + " before " +
                                        std::to_string(until) + (scan.message.empty() ? "" : ": " + scan.message) +
                                        "; replayed " + std::to_string(rep.replayed) + " copies before it");
  // Sync: the rewind returns once its copies would survive a crash too.
  if (rep.replayed != 0 && q.layout.durability == kDurabilitySync)
    wait_journaled(q, last_copy + 1, options, op);
  if (options.progress) options.progress(total, total);
  return rep;
}

RewindReport Queue::rewind_group(std::string_view group, std::chrono::system_clock::time_point since,
                                 const RewindOptions& options) {
  const QueueState& q = *state_;
  const std::string op = "rewind group '" + std::string(group) + "' of '" + q.path.string() + "'";
  const Target target = find_target(q, group, op);
  const auto since_ns = static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(since.time_since_epoch()).count()));
  // acquire: pairs with the producers' tail CAS; the journal is searched below every seq claimed so far.
  const std::uint64_t tail = q.header().tail.load(std::memory_order_acquire);
  wait_journaled(q, tail, options, op);
  // The first message published at or after `since`. Publish times follow
  // claims only roughly (clocks of racing producers), so take the first one.
  std::uint64_t from = tail;
  (void)JournalReader::read(journal_directory(q), {q.layout.journal_id, false}, [&](const JournalRecordView& r) {
    if (from != tail || r.type != JournalRecordType::message || r.seq >= tail) return;
    JournalMessageView m;
    if (decode_message(r.payload, r.flags, m) && visible_to(m, target) && m.publish_time_ns >= since_ns) from = r.seq;
  });
  return rewind_group(group, from, options);
}

}  // namespace ackring
