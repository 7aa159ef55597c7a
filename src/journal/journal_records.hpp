// Payloads of journal records (journal_format.hpp draws them): encoding into
// a staging buffer, bounds-checked decoding, and the group table a writer
// keeps so that every segment can start with a checkpoint of all groups.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "journal/journal_format.hpp"

namespace ackring::detail {

// A record that verified (checksum, seq, structure), as the reader hands it
// out. The payload points into the reader's buffer: valid during the
// callback only.
struct JournalRecordView {
  JournalRecordType type{};
  std::uint16_t flags = 0;
  std::uint64_t seq = 0;
  std::span<const std::byte> payload;
  std::uint64_t segment_index = 0;  // where it was found
  std::uint64_t offset = 0;         // byte offset of its header in that segment
};

// A 128-bit key fingerprint (the dedup key of a message).
struct JournalKey {
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
};

// The fields of a message record; body points into the payload.
struct JournalMessageView {
  std::uint64_t publish_time_ns = 0;
  bool has_key = false;
  JournalKey key{};
  bool replay = false;                  // a copy for one group (Queue::rewind_group)
  std::uint64_t target_group_hash = 0;  // replay: journal_group_hash of its group's name
  std::span<const std::byte> body;
};

// How a replay copy names its group in the journal.
[[nodiscard]] std::uint64_t journal_group_hash(std::string_view name) noexcept;

// A group as recorded by group_create, group_remove (name only) and checkpoint.
struct JournalGroupState {
  std::string name;        // 1 .. kGroupNameMax bytes
  std::uint64_t floor = 0; // every seq below it is settled in the group
  std::uint64_t next = 0;  // dispatch cursor
  std::uint8_t overflow = 0;  // OverflowPolicy (0 block, 1 drop)
  std::uint8_t start = 0;     // StartPosition (0 earliest, 1 latest)
  bool operator==(const JournalGroupState&) const = default;
};

// ---- sizes (payload bytes, before the record's own padding) -----------------
[[nodiscard]] constexpr std::uint64_t journal_message_payload_size(std::uint64_t body, bool replay = false) noexcept {
  return sizeof(JournalMessageHeader) + (replay ? sizeof(JournalReplayHeader) : 0) + body;
}
[[nodiscard]] std::uint64_t journal_group_entry_size(std::string_view name) noexcept;
[[nodiscard]] std::uint64_t journal_checkpoint_size(std::span<const JournalGroupState> groups) noexcept;

// Empty if the group can be journaled, otherwise why not.
[[nodiscard]] std::string journal_group_problem(const JournalGroupState& g);

// ---- encoding: write exactly the size above at dst (caller checked room) ---
// JournalWriter encodes every payload with these, in place in its staging
// buffer; tests, fuzzers and benchmarks build journals with the same calls.
void encode_message(std::byte* dst, std::uint64_t publish_time_ns, const JournalKey& key,
                    std::span<const std::byte> body) noexcept;
// A replay copy (kJournalFlagReplay): message header, replay header, body.
void encode_replay(std::byte* dst, std::uint64_t publish_time_ns, const JournalKey& key,
                   std::uint64_t target_group_hash, std::span<const std::byte> body) noexcept;
void encode_skip(std::byte* dst, std::uint64_t count) noexcept;
void encode_group_entry(std::byte* dst, const JournalGroupState& g) noexcept;
void encode_checkpoint(std::byte* dst, std::span<const JournalGroupState> groups) noexcept;

// ---- decoding: false if the payload is malformed (never reads outside it) --
[[nodiscard]] bool decode_message(std::span<const std::byte> payload, std::uint16_t flags,
                                  JournalMessageView& out) noexcept;
[[nodiscard]] bool decode_skip(std::span<const std::byte> payload, std::uint64_t& count) noexcept;
[[nodiscard]] bool decode_group_entry(std::span<const std::byte> payload, JournalGroupState& out);
[[nodiscard]] bool decode_checkpoint(std::span<const std::byte> payload, std::vector<JournalGroupState>& out);

// The structural check the reader applies to every record whose checksum
// verified: type known, flags known, payload well-formed for its type, and
// the seqs it consumes do not overflow. Allocation-free.
[[nodiscard]] bool journal_payload_valid(JournalRecordType type, std::uint16_t flags, std::uint64_t seq,
                                         std::span<const std::byte> payload) noexcept;

// How many seqs a (valid) record consumes: 1 for a message, count for a
// skip, 0 for control records.
[[nodiscard]] std::uint64_t journal_seqs_consumed(JournalRecordType type, std::span<const std::byte> payload) noexcept;

// The groups as the records so far describe them: group_create adds (or
// replaces) one, group_remove drops one, checkpoint replaces all. Cold path.
class JournalGroupTable {
 public:
  // Applies a record that the reader verified; other record types are ignored.
  void apply(const JournalRecordView& record);
  void create(const JournalGroupState& g);
  void remove(std::string_view name);
  void replace(std::span<const JournalGroupState> groups);
  [[nodiscard]] const std::vector<JournalGroupState>& groups() const noexcept { return groups_; }

 private:
  std::vector<JournalGroupState> groups_;  // in creation order
};

}  // namespace ackring::detail
