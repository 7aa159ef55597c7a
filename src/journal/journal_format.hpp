// Byte layout of the journal (write-ahead log): segment files, their header,
// and the record frame. docs/journal.md describes the same layout for
// readers of the files and argues the protocol; keep the two in step (the
// static_asserts below pin every offset the doc gives).
//
// A journal is a directory `<journal_dir>/<queue name>/` holding
//
//   LOCK                                   flock()ed by the one live writer
//   QUEUE                                  the queue's creation options (journal_meta.hpp)
//   00000000000000000000-0000000000.wal    segment 0, first seq 0
//   00000000000000004711-0000000001.wal    segment 1, first seq 4711
//   spare.wal.tmp                          the next segment, being pre-allocated
//
// A segment is pre-allocated to its full size, so its unwritten tail reads as
// zeros; a zero record header means "end of log".
//
//   0        64                                                segment_size
//   ┌────────┬────────┬────────┬─────┬────────┬──────────────────────────┐
//   │ header │ record │ record │ ... │ record │ 0 0 0 0 0 0 0 0 0 0 0 0  │
//   └────────┴────────┴────────┴─────┴────────┴──────────────────────────┘
//            ▲ 8-byte aligned records          ▲ end of log
//
// All integers are little-endian (the host's order; the journal is read on
// the host that wrote it).
#pragma once

#include <xxhash.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace ackring::detail {

static_assert(std::endian::native == std::endian::little, "the journal format is little-endian");

inline constexpr char kJournalMagic[8] = {'A', 'C', 'K', 'W', 'A', 'L', '0', '1'};
inline constexpr std::uint32_t kJournalFormatVersion = 1;
inline constexpr std::size_t kJournalSegmentHeaderSize = 64;
inline constexpr std::size_t kJournalRecordHeaderSize = 24;
inline constexpr std::size_t kJournalAlign = 8;
// Segment sizes: a multiple of 4096 between 4 KiB (tests) and 4 GiB.
inline constexpr std::uint64_t kJournalMinSegmentSize = 4096;
inline constexpr std::uint64_t kJournalMaxSegmentSize = 1ull << 32;
inline constexpr std::uint64_t kJournalDefaultSegmentSize = 64ull << 20;
// Largest payload of one record: a message of the largest slot payload
// (16 MiB + 4 KiB, layout.hpp) plus its message header fits with room to spare.
inline constexpr std::uint32_t kJournalMaxPayload = 32u << 20;

// ---- segment header ---------------------------------------------------------
//
//   0        8        12       16         24          32          40             48              56         64
//   ┌────────┬────────┬────────┬──────────┬───────────┬───────────┬──────────────┬───────────────┬──────────┐
//   │ magic  │version │hdr size│ queue id │ seg index │ first seq │ segment size │ prev seg end  │ checksum │
//   │ACKWAL01│   1    │   64   │          │           │           │ (allocated)  │ (byte offset) │ XXH3-64  │
//   └────────┴────────┴────────┴──────────┴───────────┴───────────┴──────────────┴───────────────┴──────────┘
//
// queue id      identity of the queue the journal belongs to; a journal of
//               another queue is refused.
// seg index     0, 1, 2, ... without gaps (a missing file is detected).
// first seq     seq of the segment's first record (also in the file name).
// prev seg end  where the records of the previous segment end (its byte
//               offset); bytes past it in the previous segment are ignored,
//               which is how a new writer supersedes a dead writer's torn
//               tail without rewriting it (docs/journal.md, "Takeover").
//               0 for the first segment of a journal.
// checksum      XXH3-64 of bytes 0..55.
struct JournalSegmentHeader {
  char magic[8];
  std::uint32_t version;
  std::uint32_t header_size;
  std::uint64_t queue_id;
  std::uint64_t segment_index;
  std::uint64_t first_seq;
  std::uint64_t segment_size;
  std::uint64_t prev_segment_end;
  std::uint64_t checksum;
};
static_assert(sizeof(JournalSegmentHeader) == kJournalSegmentHeaderSize);
static_assert(alignof(JournalSegmentHeader) == 8);
static_assert(offsetof(JournalSegmentHeader, version) == 8);
static_assert(offsetof(JournalSegmentHeader, header_size) == 12);
static_assert(offsetof(JournalSegmentHeader, queue_id) == 16);
static_assert(offsetof(JournalSegmentHeader, segment_index) == 24);
static_assert(offsetof(JournalSegmentHeader, first_seq) == 32);
static_assert(offsetof(JournalSegmentHeader, segment_size) == 40);
static_assert(offsetof(JournalSegmentHeader, prev_segment_end) == 48);
static_assert(offsetof(JournalSegmentHeader, checksum) == 56);

[[nodiscard]] inline std::uint64_t journal_header_checksum(const JournalSegmentHeader& h) noexcept {
  return XXH3_64bits(&h, offsetof(JournalSegmentHeader, checksum));
}

// ---- record frame -----------------------------------------------------------
//
//   0          8        12     14      16        24                    24 + length   align 8
//   ┌──────────┬────────┬──────┬───────┬─────────┬─────────────────────┬─────────────┐
//   │ checksum │ length │ type │ flags │ seq     │ payload             │ zero pad    │
//   │ XXH3-64  │ u32    │ u16  │ u16   │ u64     │ (length bytes)      │             │
//   └──────────┴────────┴──────┴───────┴─────────┴─────────────────────┴─────────────┘
//   checksum = XXH3-64 of bytes [8, 24 + align8(length)): the rest of the
//   header, the payload and the padding, one contiguous range (so the
//   checksum comes first; every byte of a record is covered).
struct JournalRecordHeader {
  std::uint64_t checksum;
  std::uint32_t length;  // payload bytes, without header and padding
  std::uint16_t type;    // JournalRecordType
  std::uint16_t flags;   // kJournalFlag*
  std::uint64_t seq;
};
static_assert(sizeof(JournalRecordHeader) == kJournalRecordHeaderSize);
static_assert(offsetof(JournalRecordHeader, length) == 8);
static_assert(offsetof(JournalRecordHeader, type) == 12);
static_assert(offsetof(JournalRecordHeader, flags) == 14);
static_assert(offsetof(JournalRecordHeader, seq) == 16);

// Record types. `seq` is a position in the queue's sequence: a message
// record *consumes* its seq (the next record has seq + 1), a skip record
// consumes `count` seqs, and control records (checkpoint, group create and
// remove) take effect *before* the message of their seq and consume none.
// So every seq of the queue is accounted for exactly once, and the reader can
// check that nothing is missing or repeated.
enum class JournalRecordType : std::uint16_t {
  message = 1,       // a committed message
  skip = 2,          // seqs [seq, seq + count) carry no message (claims aborted)
  checkpoint = 3,    // every group's name, config, floor and next
  group_create = 4,  // one group (its config and start floor)
  group_remove = 5,  // one group, by name
};
inline constexpr std::uint16_t kJournalMaxRecordType = 5;

// Record flags.
// batch start: the first record of a flush. A flush is written only after
// the previous one's fdatasync returned, so a record that verifies *and*
// starts a batch proves every earlier batch was acknowledged durable: damage
// before it is corruption, not a torn tail (docs/journal.md, "Recovery").
inline constexpr std::uint16_t kJournalFlagBatchStart = 1;
inline constexpr std::uint16_t kJournalFlagHasKey = 2;  // message: the key fingerprint is set
// message: a copy published by Queue::rewind_group for one group; a
// JournalReplayHeader follows the message header. Without a key, key lo
// holds the seq of the message it copies.
inline constexpr std::uint16_t kJournalFlagReplay = 4;
inline constexpr std::uint16_t kJournalKnownFlags = kJournalFlagBatchStart | kJournalFlagHasKey | kJournalFlagReplay;

[[nodiscard]] constexpr std::uint64_t journal_align(std::uint64_t n) noexcept {
  return (n + kJournalAlign - 1) & ~std::uint64_t{kJournalAlign - 1};
}

// Bytes a record with `payload` bytes of payload takes in a segment.
[[nodiscard]] constexpr std::uint64_t journal_record_size(std::uint64_t payload) noexcept {
  return kJournalRecordHeaderSize + journal_align(payload);
}

// Checksum of the record framed at `record` (header followed by the padded
// payload, contiguous).
[[nodiscard]] inline std::uint64_t journal_record_checksum(const std::byte* record, std::uint32_t length) noexcept {
  return XXH3_64bits(record + offsetof(JournalRecordHeader, length),
                     kJournalRecordHeaderSize - offsetof(JournalRecordHeader, length) + journal_align(length));
}

// Seals a record whose payload (`h.length` bytes) already sits at
// `record + kJournalRecordHeaderSize`: zeroes the padding, writes the header
// and then its checksum over all of it. Returns the record's size.
inline std::uint64_t seal_journal_record(std::byte* record, JournalRecordHeader h) noexcept {
  std::byte* payload = record + kJournalRecordHeaderSize;
  std::memset(payload + h.length, 0, journal_align(h.length) - h.length);
  h.checksum = 0;
  std::memcpy(record, &h, sizeof h);
  h.checksum = journal_record_checksum(record, h.length);
  std::memcpy(record, &h.checksum, sizeof h.checksum);
  return journal_record_size(h.length);
}

// ---- record payloads ----------------------------------------------------------
//
// message:      0               8        16       24
//               ┌───────────────┬────────┬────────┬──────────────┐
//               │ publish time  │ key lo │ key hi │ body ...     │
//               │ wall clock ns │ (128-bit fingerprint)│          │
//               └───────────────┴────────┴────────┴──────────────┘
struct JournalMessageHeader {
  std::uint64_t publish_time_ns;
  std::uint64_t key_lo;
  std::uint64_t key_hi;
};
static_assert(sizeof(JournalMessageHeader) == 24);
static_assert(offsetof(JournalMessageHeader, key_lo) == 8);

// replay message (flag kJournalFlagReplay): between the message header and
// the body,
//               24                 32
//               ┌──────────────────┬──────────────┐
//               │ target group     │ body ...     │
//               │ XXH3-64 of name  │              │
//               └──────────────────┴──────────────┘
// The group is named by a hash of its name, not its index in the queue file:
// a recovered queue numbers its groups anew.
struct JournalReplayHeader {
  std::uint64_t target_group_hash;
};
static_assert(sizeof(JournalReplayHeader) == 8);

// skip:         0
//               ┌───────────┐
//               │ count ≥ 1 │
//               └───────────┘
struct JournalSkipPayload {
  std::uint64_t count;
};
static_assert(sizeof(JournalSkipPayload) == 8);

// group entry (group_create and group_remove payloads; repeated in a
// checkpoint):
//               0        8        16      17     18         19        24
//               ┌────────┬────────┬───────┬──────┬──────────┬─────────┬─────────────────┐
//               │ floor  │ next   │overflow│start │ name len │ reserved│ name, pad to 8  │
//               └────────┴────────┴───────┴──────┴──────────┴─────────┴─────────────────┘
// overflow and start are OverflowPolicy and StartPosition (options.hpp).
// A group_remove entry has floor = next = 0.
struct JournalGroupEntryHeader {
  std::uint64_t floor;
  std::uint64_t next;
  std::uint8_t overflow;
  std::uint8_t start;
  std::uint8_t name_length;
  std::uint8_t reserved[5];
};
static_assert(sizeof(JournalGroupEntryHeader) == 24);
static_assert(offsetof(JournalGroupEntryHeader, overflow) == 16);
static_assert(offsetof(JournalGroupEntryHeader, name_length) == 18);

// checkpoint:   0             4          8
//               ┌─────────────┬──────────┬─────────────────────────────┐
//               │ group count │ reserved │ group entries, back to back │
//               └─────────────┴──────────┴─────────────────────────────┘
struct JournalCheckpointHeader {
  std::uint32_t group_count;
  std::uint32_t reserved;
};
static_assert(sizeof(JournalCheckpointHeader) == 8);

// ---- file names ---------------------------------------------------------------
// `<first seq, 20 digits>-<segment index, 10 digits>.wal`. The index is in the
// name because two segments can start at the same seq (control records
// consume no seq, so a segment full of checkpoints ends where it began).
inline constexpr std::string_view kJournalSegmentSuffix = ".wal";
inline constexpr std::string_view kJournalLockName = "LOCK";
inline constexpr std::string_view kJournalSpareName = "spare.wal.tmp";

[[nodiscard]] inline std::string journal_segment_name(std::uint64_t first_seq, std::uint64_t index) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%020llu-%010llu.wal", static_cast<unsigned long long>(first_seq),
                static_cast<unsigned long long>(index));
  return buf;
}

// Parses a segment file name; false for any other name.
[[nodiscard]] inline bool parse_journal_segment_name(std::string_view name, std::uint64_t& first_seq,
                                                     std::uint64_t& index) noexcept {
  if (name.size() < 4 + 3 || name.substr(name.size() - 4) != kJournalSegmentSuffix) return false;
  name.remove_suffix(4);
  const auto dash = name.find('-');
  if (dash == std::string_view::npos) return false;
  const auto parse = [](std::string_view digits, std::uint64_t& out) {
    if (digits.empty() || digits.size() > 20) return false;
    std::uint64_t v = 0;
    for (const char c : digits) {
      if (c < '0' || c > '9') return false;
      const auto d = static_cast<std::uint64_t>(c - '0');
      if (v > (UINT64_MAX - d) / 10) return false;
      v = v * 10 + d;
    }
    out = v;
    return true;
  };
  return parse(name.substr(0, dash), first_seq) && parse(name.substr(dash + 1), index);
}

}  // namespace ackring::detail
