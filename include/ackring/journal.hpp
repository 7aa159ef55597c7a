// Reading a queue's journal (write-ahead log) from outside the queue: for
// operators (`ackring journal dump`, `ackring verify`) and for tools that
// want the history of a durable queue. Read-only; safe while a writer runs
// (it reads what is durable at the time, and may report a torn tail at the
// very end where a batch is being written).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ackring/options.hpp"

namespace ackring {

enum class JournalRecordKind : std::uint8_t { message, skip, checkpoint, group_create, group_remove };

[[nodiscard]] const char* to_string(JournalRecordKind kind) noexcept;

// How a journal ends, as a reader found it.
enum class JournalEnd : std::uint8_t {
  empty,       // no segment holds a valid header: a journal not yet written
  clean,       // the log ends in zeros (or at the end of its last segment)
  torn_tail,   // a crash cut the last batch: its bytes are discarded, nothing acknowledged was lost
  corrupt,     // damage before the end: the records after it are not handed out
  unreadable,  // Queue::verify only: the journal could not be read at all (VerifyReport::problems says why)
};

// "empty", "clean", "torn_tail", "corrupt", "unreadable" (the CLI's and the JSON output's words).
[[nodiscard]] const char* to_string(JournalEnd end) noexcept;

// A group as a checkpoint or group record names it.
struct JournalGroupInfo {
  std::string name;
  std::uint64_t floor = 0;  // every seq below it was settled in the group
  std::uint64_t next = 0;   // its dispatch cursor
  OverflowPolicy overflow = OverflowPolicy::block;
  StartPosition start = StartPosition::earliest;
};

// One verified record. Views point into the reader's buffer: valid during
// the callback only.
struct JournalEntry {
  JournalRecordKind kind = JournalRecordKind::message;
  std::uint64_t seq = 0;            // message: its seq; skip: the first seq; control: takes effect before seq
  std::uint64_t segment_index = 0;  // where it is: segment and byte offset
  std::uint64_t offset = 0;
  bool batch_start = false;         // the first record of a flush (write + fdatasync)
  // message
  std::uint64_t publish_time_ns = 0;
  bool has_key = false;
  std::uint64_t key_lo = 0, key_hi = 0;  // the key's 128-bit fingerprint
  bool replay = false;                   // a copy published by Queue::rewind_group
  std::uint64_t original_seq = 0;        // replay: the seq it copies
  std::uint64_t target_group_hash = 0;   // replay: which group it is for (hash of its name)
  std::span<const std::byte> body;
  // skip: seqs [seq, seq + count) hold no message (aborted claims)
  std::uint64_t count = 0;
  // checkpoint: every group; group_create / group_remove: the one group
  std::vector<JournalGroupInfo> groups;
};

struct JournalSegmentSummary {
  std::string name;
  std::uint64_t index = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t end_seq = 0;    // seq after its last good record
  std::uint64_t records = 0;
  std::uint64_t bytes_used = 0;  // where its good records end
  std::uint64_t size = 0;        // allocated
};

struct JournalSummary {
  std::filesystem::path directory;
  JournalEnd end = JournalEnd::empty;  // clean, torn_tail, corrupt or empty
  std::string message;            // what and where, for torn_tail and corrupt
  std::uint64_t first_seq = 0;
  std::uint64_t next_seq = 0;     // seq after the last good record
  std::uint64_t records = 0;      // records handed out (all, if not stopped early)
  std::vector<JournalSegmentSummary> segments;
  std::optional<QueueOptions> options;  // as recorded at creation (QUEUE file), if readable
  bool stopped = false;                 // the visitor asked to stop
};

// The journal directory of a queue: <journal_dir>/<queue file name>
// (journal_dir empty: $ACKRING_JOURNAL_DIR, else /var/tmp/ackring).
[[nodiscard]] std::filesystem::path journal_directory(std::string_view name_or_path,
                                                      const std::filesystem::path& journal_dir = {});

// Verifies the journal of a queue and calls `visit` with every good record
// in order, until it returns false. Throws ackring::Error: not_found without
// a journal, incompatible for files of another format or queue; damage is
// reported in the summary, never thrown.
JournalSummary read_journal(std::string_view name_or_path, const std::filesystem::path& journal_dir = {},
                            const std::function<bool(const JournalEntry&)>& visit = {});

}  // namespace ackring
