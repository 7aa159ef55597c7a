// Queue::recover: rebuilding a queue file from its journal (docs/journal.md,
// "Integration" / "Recovery of a queue").
//
// Two passes over the journal: the first learns the groups (last checkpoint,
// creates and removes after it) and where the log ends; the second writes
// every message at or above the lowest group floor into its slot, at its own
// seq, as committed (checksum recomputed), and every skip as an aborted slot.
// All of it happens while the new file is still under its temporary name
// (create_file's before_link), so no process maps a half-rebuilt queue.
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ackring/error.hpp"
#include "ackring/queue.hpp"
#include "durability.hpp"
#include "journal_reader.hpp"
#include "journal_records.hpp"
#include "queue_file.hpp"
#include "queue_state.hpp"

namespace ackring {

using namespace detail;

Queue Queue::recover(std::string_view name_or_path, const std::filesystem::path& journal_dir,
                     const QueueOptions& options, RecoveryReport* report) {
  const auto path = resolve_path(name_or_path);
  const std::string op = "recover queue '" + path.string() + "'";
  std::error_code ec;
  if (std::filesystem::exists(path, ec))
    throw Error(ErrorCode::already_exists, op + ": the queue file exists; recovery only rebuilds a missing queue");
  const std::string base_dir = resolve_journal_dir(journal_dir.string());
  const std::filesystem::path jdir = std::filesystem::path(base_dir) / path.filename();
  if (!journal_has_segments(jdir))
    throw Error(ErrorCode::not_found, op + ": no journal in '" + jdir.string() + "'");

  // Pass 1: groups and the extent of the log.
  JournalGroupTable table;
  const JournalScanResult scan = JournalReader::read(jdir, {}, [&](const JournalRecordView& r) { table.apply(r); });
  if (scan.end == JournalEnd::corrupt)
    throw Error(ErrorCode::corrupt, op + ": " + scan.message +
                                        " (to accept the loss, move the damaged segment and those after it away)");
  if (scan.end == JournalEnd::empty)
    throw Error(ErrorCode::not_found, op + ": the journal in '" + jdir.string() + "' holds no records");
  const std::uint64_t first = scan.first_seq;
  const std::uint64_t end = scan.next_seq;
  std::vector<JournalGroupState> groups = table.groups();
  std::uint64_t floor = end;
  for (auto& g : groups) {
    // Retention may have removed records below a floor a group was created
    // at later; a floor past the journal's end (async) has nothing to restore.
    g.floor = std::clamp(g.floor, first, end);
    g.next = g.floor;  // everything unacked is delivered again (at-least-once)
    floor = std::min(floor, g.floor);
  }
  QueueOptions o = options;
  if (o.durability == Durability::none) o.durability = Durability::sync;
  o.journal_dir = base_dir;
  if (end - floor > o.capacity)
    throw Error(ErrorCode::resource_exhausted,
                op + ": the journal holds " + std::to_string(end - floor) + " seqs above the lowest group floor " +
                    std::to_string(floor) + ", more than the capacity " + std::to_string(o.capacity) +
                    " given; recover with a larger capacity");
  if (groups.size() > o.max_groups)
    throw Error(ErrorCode::resource_exhausted, op + ": the journal has " + std::to_string(groups.size()) +
                                                   " groups, more than max_groups " + std::to_string(o.max_groups));

  RecoveryReport rep;
  rep.journal_end = to_string(scan.end);
  rep.journal_message = scan.message;
  rep.journal_first_seq = first;
  rep.journal_next_seq = end;
  rep.floor = floor;

  CreateExtras extras;
  extras.journal_id = scan.queue_id;
  extras.recovering = true;
  extras.before_link = [&](QueueState& q) {
    // Groups, as of the journal.
    for (std::uint32_t i = 0; i < groups.size(); ++i) {
      const auto& g = groups[i];
      GroupEntry& G = q.group(i);
      std::memset(G.name, 0, sizeof G.name);
      std::memcpy(G.name, g.name.data(), std::min(g.name.size(), kGroupNameMax));
      G.overflow = g.overflow;
      G.next.store(g.next, std::memory_order_relaxed);
      G.floor.store(g.floor, std::memory_order_relaxed);
      G.deadline_hint_ms.store(~0ull, std::memory_order_relaxed);
      G.incarnation.store(1, std::memory_order_relaxed);
      G.state.store(static_cast<std::uint32_t>(GroupState::active), std::memory_order_relaxed);
      rep.groups.push_back(g.name);
    }
    // Slots [floor, end) from the journal; the rest free for their next seq.
    for (std::uint64_t s = floor; s < floor + q.layout.capacity; ++s)
      q.slot(s).state.store(SlotWord{s, s < end ? SlotState::aborted : SlotState::free}.encode(),
                            std::memory_order_relaxed);
    const JournalScanResult again = JournalReader::read(jdir, {}, [&](const JournalRecordView& r) {
      if (r.type == JournalRecordType::message) {
        if (r.seq < floor || r.seq >= end) return;
        JournalMessageView m;
        if (!decode_message(r.payload, r.flags, m) || m.body.size() > q.layout.max_message_size)
          throw Error(ErrorCode::resource_exhausted,
                      op + ": the message at seq " + std::to_string(r.seq) + " is larger than max_message_size " +
                          std::to_string(q.layout.max_message_size));
        SlotHeader& slot = q.slot(r.seq);
        write_fields(slot, {static_cast<std::uint32_t>(m.body.size()), m.has_key ? kSlotHasKey : 0u,
                            XXH3_64bits(m.body.data(), m.body.size()), m.key.lo, m.key.hi, m.publish_time_ns});
        if (!m.body.empty()) std::memcpy(q.payload(r.seq), m.body.data(), m.body.size());
        slot.state.store(SlotWord{r.seq, SlotState::committed}.encode(), std::memory_order_relaxed);
        ++rep.messages;
      } else if (r.type == JournalRecordType::skip) {
        std::uint64_t count = 0;
        if (decode_skip(r.payload, count))
          for (std::uint64_t s = std::max(r.seq, floor); s < r.seq + count && s < end; ++s) ++rep.skipped;
      }
    });
    if (again.next_seq != end || again.end == JournalEnd::corrupt)
      throw Error(ErrorCode::corrupt, op + ": the journal changed while it was read (a writer running?)");
    auto& h = q.header();
    h.tail.store(end, std::memory_order_relaxed);
    h.durable_seq.store(end, std::memory_order_relaxed);
    h.floor_word.store(make_floor_word(floor, 0), std::memory_order_relaxed);
    h.group_epoch.store(1, std::memory_order_relaxed);
  };
  (void)create_file(path, o, extras);
  if (report != nullptr) *report = std::move(rep);
  return Queue::open(path.string());
}

}  // namespace ackring
