// journal dump: decodes the records of a queue's journal (its write-ahead
// log) with ackring::read_journal, which verifies every record and reports
// how the log ends. Read-only; safe while a writer runs.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "commands.hpp"
#include "format.hpp"
#include "stats_view.hpp"

namespace ackring::cli {

namespace {

constexpr std::size_t kPreviewChars = 60;  // body shown per line without --payload
constexpr std::size_t kPreviewBytes = 64;  // body kept per record in JSON without --payload

struct DumpOptions {
  std::string name;
  std::string journal_dir;
  std::uint64_t from = 0;
  std::uint64_t count = 0;  // 0: every record
  bool json = false;
  bool payload = false;
};

const char* kind_name(JournalRecordKind kind) noexcept {
  switch (kind) {
    case JournalRecordKind::message:
      return "message";
    case JournalRecordKind::skip:
      return "skip";
    case JournalRecordKind::checkpoint:
      return "checkpoint";
    case JournalRecordKind::group_create:
      return "group_create";
    case JournalRecordKind::group_remove:
      return "group_remove";
  }
  return "unknown";
}

std::string key_hex(const JournalEntry& e) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 "%016" PRIx64, e.key_hi, e.key_lo);
  return buf;
}

std::string hash_hex(std::uint64_t h) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
  return buf;
}

// The journal of a queue whose file still exists is where that file says
// (its journal_dir is fixed at creation); otherwise the default, or --journal-dir.
std::string journal_dir_for(const DumpOptions& o) {
  if (!o.journal_dir.empty()) return o.journal_dir;
  try {
    const Queue q = Queue::open(o.name);  // main() turned the journal thread off: this only reads
    const QueueOptions opts = q.options();
    if (opts.durability != Durability::none) return opts.journal_dir;
  } catch (const Error&) {
    // Gone (a reboot), damaged, or not readable: the journal may still be.
  }
  return {};
}

std::string describe_groups(const std::vector<JournalGroupInfo>& groups, bool with_positions) {
  if (groups.empty()) return "(no groups)";
  std::string out;
  for (const auto& g : groups) {
    out += (out.empty() ? "" : ", ") + g.name;
    if (with_positions) out += " floor " + std::to_string(g.floor) + " next " + std::to_string(g.next);
  }
  return out;
}

std::string text_line(const JournalEntry& e, bool full_payload) {
  char head[96];
  std::snprintf(head, sizeof head, "%-10" PRIu64 " %-12s %6" PRIu64 ":%-10" PRIu64, e.seq, kind_name(e.kind),
                e.segment_index, e.offset);
  std::string line = head;
  switch (e.kind) {
    case JournalRecordKind::message: {
      line += " " + std::to_string(e.body.size()) + " B";
      if (e.has_key) line += " key " + key_hex(e).substr(0, 12);
      if (e.replay) line += " replay of " + std::to_string(e.original_seq) + " for group " +
                            hash_hex(e.target_group_hash).substr(0, 8);
      line += "  " + (full_payload ? (is_printable_text(e.body) ? std::string(reinterpret_cast<const char*>(
                                                                                e.body.data()),
                                                                            e.body.size())
                                                                : "hex:" + to_hex(e.body))
                                   : preview(e.body, kPreviewChars));
      break;
    }
    case JournalRecordKind::skip:
      line += " " + std::to_string(e.count) + " aborted seq" + (e.count == 1 ? "" : "s") + " " +
              std::to_string(e.seq) + ".." + std::to_string(e.seq + e.count - 1);
      break;
    case JournalRecordKind::checkpoint:
      line += " " + describe_groups(e.groups, true);
      break;
    case JournalRecordKind::group_create:
    case JournalRecordKind::group_remove:
      line += " " + describe_groups(e.groups, e.kind == JournalRecordKind::group_create);
      break;
  }
  if (e.batch_start) line += "  [batch]";
  return line;
}

Json group_json(const JournalGroupInfo& g) {
  return {{"name", g.name},
          {"floor", g.floor},
          {"next", g.next},
          {"overflow", to_string(g.overflow)},
          {"start", g.start == StartPosition::latest ? "latest" : "earliest"}};
}

Json record_json(const JournalEntry& e, bool full_payload) {
  Json j{{"seq", e.seq},
         {"kind", kind_name(e.kind)},
         {"segment", e.segment_index},
         {"offset", e.offset},
         {"batch_start", e.batch_start}};
  switch (e.kind) {
    case JournalRecordKind::message: {
      j["publish_time"] = format_time(e.publish_time_ns);
      j["publish_time_ns"] = e.publish_time_ns;
      j["key"] = e.has_key ? Json(key_hex(e)) : Json(nullptr);
      j["replay"] = e.replay;
      j["original_seq"] = e.replay ? Json(e.original_seq) : Json(nullptr);
      j["target_group_hash"] = e.replay ? Json(hash_hex(e.target_group_hash)) : Json(nullptr);
      const bool cut = !full_payload && e.body.size() > kPreviewBytes;
      std::size_t keep = std::min(e.body.size(), kPreviewBytes);
      // Cut at a character boundary, so cut text stays text (not hex).
      while (cut && keep > 0 && (static_cast<unsigned>(e.body[keep]) & 0xc0u) == 0x80u) --keep;
      put_payload(j, e.body.first(keep));
      j["size"] = e.body.size();  // the whole body's, also when the payload shown is cut
      j["truncated"] = cut;
      break;
    }
    case JournalRecordKind::skip:
      j["count"] = e.count;
      break;
    case JournalRecordKind::checkpoint:
    case JournalRecordKind::group_create:
    case JournalRecordKind::group_remove: {
      Json groups = Json::array();
      for (const auto& g : e.groups) groups.push_back(group_json(g));
      j["groups"] = std::move(groups);
      break;
    }
  }
  return j;
}

Json summary_json(const JournalSummary& s) {
  Json segments = Json::array();
  for (const auto& seg : s.segments)
    segments.push_back({{"name", seg.name},
                        {"index", seg.index},
                        {"first_seq", seg.first_seq},
                        {"end_seq", seg.end_seq},
                        {"records", seg.records},
                        {"bytes_used", seg.bytes_used},
                        {"size", seg.size}});
  Json j{{"end", to_string(s.end)},
         {"message", s.message},
         {"first_seq", s.first_seq},
         {"next_seq", s.next_seq},
         {"records", s.records},
         {"stopped", s.stopped},
         {"segments", std::move(segments)}};
  if (s.options)
    j["options"] = {{"capacity", s.options->capacity},
                    {"max_message_size", s.options->max_message_size},
                    {"durability", to_string(s.options->durability)}};
  else
    j["options"] = nullptr;
  return j;
}

int run_dump(const DumpOptions& o) {
  const std::string dir = journal_dir_for(o);
  std::string where;
  try {
    where = journal_directory(o.name, dir).string();
  } catch (const Error& e) {
    throw Failure(exit_code_of(e.code()), std::string(e.what()) + "; " + advice_for(e.code(), o.name));
  }
  std::uint64_t shown = 0;
  bool first = true;
  if (o.json) std::cout << "{\"directory\": " << dump(Json(where), false) << ",\n\"records\": [";
  auto visit = [&](const JournalEntry& e) {
    if (e.seq < o.from) return true;
    if (o.json) {
      std::cout << (first ? "\n" : ",\n") << dump(record_json(e, o.payload), false);
    } else {
      if (first) std::cout << "SEQ        KIND         SEGMENT:OFFSET    RECORD\n";
      std::cout << text_line(e, o.payload) << '\n';
    }
    first = false;
    return o.count == 0 || ++shown < o.count;
  };
  JournalSummary s;
  try {
    s = read_journal(o.name, dir, visit);
  } catch (const Error& e) {
    if (o.json) std::cout << "\n]}\n";  // keep what was printed parseable; the error goes to stderr
    std::cout.flush();
    if (e.code() == ErrorCode::not_found)
      throw Failure(Exit::not_found, std::string(e.what()) +
                                         "; only queues created with --durability async or sync have a journal "
                                         "(check --journal-dir, default $ACKRING_JOURNAL_DIR, else /var/tmp/ackring)");
    throw Failure(exit_code_of(e.code()), std::string(e.what()) + "; the journal cannot be read by this build");
  }
  if (o.json) {
    std::cout << (first ? "]" : "\n]") << ",\n\"summary\": " << dump(summary_json(s), false) << "}\n";
  } else {
    std::cout << "end: " << to_string(s.end);
    if (!s.message.empty()) std::cout << " (" << s.message << ")";
    std::cout << "; " << s.segments.size() << " segment" << (s.segments.size() == 1 ? "" : "s") << ", first seq "
              << s.first_seq << ", next seq " << s.next_seq << ", " << s.records << " records read";
    if (s.stopped) std::cout << " (stopped after " << shown << " shown: -n)";
    std::cout << '\n';
  }
  if (s.end != JournalEnd::corrupt) return 0;
  std::cout.flush();
  throw Failure(Exit::corrupt, "the journal of '" + o.name + "' is damaged before its end: " + s.message +
                                   "; records after the damage are not shown and recovery stops there (move "
                                   "the damaged segment and later ones away to accept the loss)");
}

}  // namespace

void add_journal_commands(CLI::App& app, Globals& globals, Action& action) {
  auto* journal = app.add_subcommand("journal", "Inspect the journal (write-ahead log) of a durable queue");
  journal->require_subcommand(1);
  auto o = std::make_shared<DumpOptions>();
  auto* cmd = journal->add_subcommand("dump", "Print the records of a queue's journal, verified, and how it ends");
  cmd->add_option("NAME", o->name, "Queue name or path (the queue file need not exist)")->required();
  cmd->add_option("--journal-dir", o->journal_dir,
                  "Journal directory (default: the queue's, else $ACKRING_JOURNAL_DIR, else /var/tmp/ackring)")
      ->type_name("DIR");
  cmd->add_option("--from", o->from, "Skip records below this seq")->type_name("SEQ");
  cmd->add_option("-n,--count", o->count, "Show at most N records")->type_name("N")->check(CLI::PositiveNumber);
  cmd->add_flag("--json", o->json, "One JSON object: {directory, records: [...], summary: {...}}");
  cmd->add_flag("--payload", o->payload, "Show whole bodies (default: the first 60 characters)");
  cmd->footer(
      "Columns: seq, kind (message, skip, checkpoint, group_create, group_remove), segment:offset, then\n"
      "size, key fingerprint and replay origin of a message, or the groups of a control record.\n"
      "The last line says how the log ends: clean, torn_tail (a crash cut the last batch; nothing\n"
      "acknowledged was lost), corrupt (damage before the end; exit 3) or empty. Exit 2 without a journal.");
  add_common_options(*cmd, globals);
  cmd->callback([o, &action] { set_action(action, [o] { return run_dump(*o); }); });
}

}  // namespace ackring::cli
