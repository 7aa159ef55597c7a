// Verification of a journal, segment by segment: the pure logic of the
// reader, without I/O, so that tests and the fuzzer can drive it from memory
// (journal_reader.hpp feeds it from files).
//
// What it guarantees (docs/journal.md, "Recovery"):
//  - it hands out only records whose checksum, structure and seq verify, in
//    seq order, with no seq missing or repeated;
//  - it stops at the first record that does not verify and says why, where,
//    and whether that is a torn tail (a crash while the last batch was being
//    written: expected, nothing acknowledged is lost) or corruption (damage
//    before the end of the log: the records after it are not handed out);
//  - it never reads outside the bytes it is given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "ackring/journal.hpp"
#include "journal/journal_format.hpp"
#include "journal/journal_records.hpp"

namespace ackring::detail {

// Where the scanner gets its segments from, in segment-index order.
class JournalSegmentSource {
 public:
  virtual ~JournalSegmentSource() = default;
  [[nodiscard]] virtual std::size_t count() const = 0;
  // The file name (it must match the header: first seq and index).
  [[nodiscard]] virtual std::string name(std::size_t i) const = 0;
  // How to name the segment in messages (the path); defaults to the name.
  [[nodiscard]] virtual std::string where(std::size_t i) const { return name(i); }
  // Up to the first 64 bytes of segment i (fewer if it is shorter). Valid
  // until the next call of header() or load().
  [[nodiscard]] virtual std::span<const std::byte> header(std::size_t i) = 0;
  // All bytes of segment i. Valid until the next call of header() or load().
  [[nodiscard]] virtual std::span<const std::byte> load(std::size_t i) = 0;
};

// The same, for segments held in memory.
class JournalMemorySource final : public JournalSegmentSource {
 public:
  struct Segment {
    std::string name;
    std::span<const std::byte> bytes;
  };
  explicit JournalMemorySource(std::vector<Segment> segments) : segments_(std::move(segments)) {}
  [[nodiscard]] std::size_t count() const override { return segments_.size(); }
  [[nodiscard]] std::string name(std::size_t i) const override { return segments_[i].name; }
  [[nodiscard]] std::span<const std::byte> header(std::size_t i) override {
    const auto b = segments_[i].bytes;
    return b.first(b.size() < kJournalSegmentHeaderSize ? b.size() : kJournalSegmentHeaderSize);
  }
  [[nodiscard]] std::span<const std::byte> load(std::size_t i) override { return segments_[i].bytes; }

 private:
  std::vector<Segment> segments_;
};

// The public enum (ackring/journal.hpp); a scan never reports `unreadable`.
using ackring::JournalEnd;

// One segment that is part of the log.
struct JournalSegmentInfo {
  std::string name;
  std::uint64_t index = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t end_seq = 0;       // seq after its last good record
  std::uint64_t end_offset = 0;    // byte offset where its good records end
  std::uint64_t records = 0;       // good records
  std::uint64_t segment_size = 0;  // as its header says
};

struct JournalScanResult {
  JournalEnd end = JournalEnd::empty;
  std::uint64_t queue_id = 0;   // from the headers (0 if empty)
  std::uint64_t first_seq = 0;  // seq of the first segment's first record
  std::uint64_t next_seq = 0;   // seq after the last good record: where a writer continues
  std::uint64_t records = 0;    // good records handed out
  // Segments whose records were read, in order. On `corrupt`, the damaged
  // segment is the last entry (with the records before the damage).
  std::vector<JournalSegmentInfo> segments;
  // The last segment, if its header is zero or does not verify: created by a
  // roll-over or a takeover that crashed before its first flush completed.
  // Not part of the log; a writer removes it.
  std::vector<std::string> ignored;
  // torn_tail and corrupt: the segment, the offset where good records end,
  // and what lies beyond it. discarded_records counts the records past the
  // damage that still verify (the torn batch's survivors).
  std::string damaged_segment;
  std::uint64_t damage_offset = 0;
  std::uint64_t discarded_bytes = 0;
  std::uint64_t discarded_records = 0;
  // Human-readable account of torn_tail and corrupt: what, where, why.
  std::string message;
  // Set by JournalReader::read with `repair`: the torn tail was zeroed and
  // the ignored segments removed.
  bool repaired = false;
  [[nodiscard]] bool ok() const noexcept { return end != JournalEnd::corrupt; }
};

using JournalVisitor = std::function<void(const JournalRecordView&)>;

// Verifies the journal `source` holds and calls `visit` (if set) with every
// good record, in order. Throws ackring::Error (incompatible), before
// handing out any record, if a segment is not a journal segment (magic), has
// another format version, or belongs to another queue (`expected_queue_id`,
// 0 accepts any); reports damage in the result instead, after handing out
// every record before it.
[[nodiscard]] JournalScanResult scan_journal(JournalSegmentSource& source, std::uint64_t expected_queue_id,
                                             const JournalVisitor& visit);

}  // namespace ackring::detail
