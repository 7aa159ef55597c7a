// The public reading of a journal (ackring/journal.hpp): the reader of
// journal_reader.hpp, with records decoded into JournalEntry.
#include "ackring/journal.hpp"

#include "ackring/error.hpp"
#include "queue/durability.hpp"
#include "queue/journal_meta.hpp"
#include "journal/journal_reader.hpp"
#include "journal/journal_records.hpp"
#include "queue/queue_file.hpp"

namespace ackring {

using namespace detail;

namespace {

JournalGroupInfo to_info(const JournalGroupState& g) {
  return {g.name, g.floor, g.next, static_cast<OverflowPolicy>(g.overflow), static_cast<StartPosition>(g.start)};
}

void decode_into(const JournalRecordView& r, JournalEntry& e) {
  e.seq = r.seq;
  e.segment_index = r.segment_index;
  e.offset = r.offset;
  e.batch_start = (r.flags & kJournalFlagBatchStart) != 0;
  e.groups.clear();
  switch (r.type) {
    case JournalRecordType::message: {
      e.kind = JournalRecordKind::message;
      JournalMessageView m;
      if (decode_message(r.payload, r.flags, m)) {
        e.publish_time_ns = m.publish_time_ns;
        e.has_key = m.has_key;
        e.key_lo = m.key.lo;
        e.key_hi = m.key.hi;
        e.replay = m.replay;
        e.original_seq = m.replay && !m.has_key ? m.key.lo : 0;
        e.target_group_hash = m.target_group_hash;
        e.body = m.body;
      }
      e.count = 1;
      break;
    }
    case JournalRecordType::skip:
      e.kind = JournalRecordKind::skip;
      (void)decode_skip(r.payload, e.count);
      break;
    case JournalRecordType::checkpoint: {
      e.kind = JournalRecordKind::checkpoint;
      std::vector<JournalGroupState> groups;
      if (decode_checkpoint(r.payload, groups))
        for (const auto& g : groups) e.groups.push_back(to_info(g));
      e.count = 0;
      break;
    }
    case JournalRecordType::group_create:
    case JournalRecordType::group_remove: {
      e.kind = r.type == JournalRecordType::group_create ? JournalRecordKind::group_create
                                                          : JournalRecordKind::group_remove;
      JournalGroupState g;
      if (decode_group_entry(r.payload, g)) e.groups.push_back(to_info(g));
      e.count = 0;
      break;
    }
  }
}

}  // namespace

const char* to_string(JournalRecordKind kind) noexcept {
  switch (kind) {
    case JournalRecordKind::message: return "message";
    case JournalRecordKind::skip: return "skip";
    case JournalRecordKind::checkpoint: return "checkpoint";
    case JournalRecordKind::group_create: return "group_create";
    case JournalRecordKind::group_remove: return "group_remove";
  }
  return "unknown";
}

const char* to_string(JournalEnd end) noexcept {
  switch (end) {
    case JournalEnd::empty: return "empty";
    case JournalEnd::clean: return "clean";
    case JournalEnd::torn_tail: return "torn_tail";
    case JournalEnd::corrupt: return "corrupt";
    case JournalEnd::unreadable: return "unreadable";
  }
  return "unknown";
}

std::filesystem::path journal_directory(std::string_view name_or_path, const std::filesystem::path& journal_dir) {
  return std::filesystem::path(resolve_journal_dir(journal_dir.string())) / resolve_path(name_or_path).filename();
}

JournalSummary read_journal(std::string_view name_or_path, const std::filesystem::path& journal_dir,
                            const std::function<bool(const JournalEntry&)>& visit) {
  JournalSummary out;
  out.directory = journal_directory(name_or_path, journal_dir);
  if (!journal_has_segments(out.directory))
    throw Error(ErrorCode::not_found, "read journal '" + out.directory.string() + "': no journal segments there");
  std::string problem;
  out.options = read_queue_meta(out.directory, &problem);
  // After the visitor says stop, the rest is still verified (without
  // decoding), so the summary describes the whole journal.
  JournalEntry entry;
  const JournalScanResult scan = JournalReader::read(out.directory, {}, [&](const JournalRecordView& r) {
    if (!visit || out.stopped) return;
    decode_into(r, entry);
    out.stopped = !visit(entry);
  });
  out.end = scan.end;
  out.message = scan.message;
  out.first_seq = scan.first_seq;
  out.next_seq = scan.next_seq;
  out.records = scan.records;
  for (const auto& s : scan.segments)
    out.segments.push_back({s.name, s.index, s.first_seq, s.end_seq, s.records, s.end_offset, s.segment_size});
  return out;
}

}  // namespace ackring
