// Encoding and bounds-checked decoding of journal record payloads.
#include "journal/journal_records.hpp"

#include <algorithm>
#include <cstring>

#include "shm/layout.hpp"

namespace ackring::detail {

namespace {

template <class T>
[[nodiscard]] T load(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

[[nodiscard]] bool all_zero(std::span<const std::byte> bytes) noexcept {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

// Validates one group entry at the front of `bytes`; returns its encoded
// size, or 0 if it is malformed or does not fit. `removal`: an entry of a
// group_remove record (floor and next are 0, config is 0).
[[nodiscard]] std::uint64_t group_entry_valid(std::span<const std::byte> bytes, bool removal) noexcept {
  if (bytes.size() < sizeof(JournalGroupEntryHeader)) return 0;
  const auto h = load<JournalGroupEntryHeader>(bytes.data());
  if (h.name_length == 0 || h.name_length > kGroupNameMax) return 0;
  if (h.overflow > 1 || h.start > 1) return 0;
  for (const auto r : h.reserved)
    if (r != 0) return 0;
  if (removal && (h.floor != 0 || h.next != 0 || h.overflow != 0 || h.start != 0)) return 0;
  if (!removal && h.floor > h.next) return 0;  // floor <= next always holds in a group
  const std::uint64_t size = sizeof(JournalGroupEntryHeader) + journal_align(h.name_length);
  if (size > bytes.size()) return 0;
  // The padding after the name is zero (the writer zeroes it).
  const auto pad = bytes.subspan(sizeof(JournalGroupEntryHeader) + h.name_length,
                                 size - sizeof(JournalGroupEntryHeader) - h.name_length);
  if (!all_zero(pad)) return 0;
  // A NUL in the name would make it unrepresentable in the queue file.
  const auto name = bytes.subspan(sizeof(JournalGroupEntryHeader), h.name_length);
  if (std::find(name.begin(), name.end(), std::byte{0}) != name.end()) return 0;
  return size;
}

[[nodiscard]] bool checkpoint_valid(std::span<const std::byte> payload) noexcept {
  if (payload.size() < sizeof(JournalCheckpointHeader)) return false;
  const auto h = load<JournalCheckpointHeader>(payload.data());
  if (h.reserved != 0 || h.group_count > kMaxGroups) return false;
  auto rest = payload.subspan(sizeof(JournalCheckpointHeader));
  for (std::uint32_t i = 0; i < h.group_count; ++i) {
    const std::uint64_t n = group_entry_valid(rest, false);
    if (n == 0) return false;
    rest = rest.subspan(n);
  }
  return rest.empty();
}

}  // namespace

std::uint64_t journal_group_entry_size(std::string_view name) noexcept {
  return sizeof(JournalGroupEntryHeader) + journal_align(name.size());
}

std::uint64_t journal_checkpoint_size(std::span<const JournalGroupState> groups) noexcept {
  std::uint64_t n = sizeof(JournalCheckpointHeader);
  for (const auto& g : groups) n += journal_group_entry_size(g.name);
  return n;
}

std::string journal_group_problem(const JournalGroupState& g) {
  if (g.name.empty()) return "the group name is empty";
  if (g.name.size() > kGroupNameMax)
    return "the group name '" + g.name + "' is longer than " + std::to_string(kGroupNameMax) + " bytes";
  if (g.name.find('\0') != std::string::npos) return "the group name contains a NUL byte";
  if (g.overflow > 1) return "overflow policy " + std::to_string(g.overflow) + " is unknown";
  if (g.start > 1) return "start position " + std::to_string(g.start) + " is unknown";
  if (g.floor > g.next)
    return "floor " + std::to_string(g.floor) + " is above next " + std::to_string(g.next);
  return {};
}

void encode_message(std::byte* dst, std::uint64_t publish_time_ns, const JournalKey& key,
                    std::span<const std::byte> body) noexcept {
  const JournalMessageHeader h{publish_time_ns, key.lo, key.hi};
  std::memcpy(dst, &h, sizeof h);
  if (!body.empty()) std::memcpy(dst + sizeof h, body.data(), body.size());
}

void encode_replay(std::byte* dst, std::uint64_t publish_time_ns, const JournalKey& key,
                   std::uint64_t target_group_hash, std::span<const std::byte> body) noexcept {
  const JournalMessageHeader h{publish_time_ns, key.lo, key.hi};
  const JournalReplayHeader r{target_group_hash};
  std::memcpy(dst, &h, sizeof h);
  std::memcpy(dst + sizeof h, &r, sizeof r);
  if (!body.empty()) std::memcpy(dst + sizeof h + sizeof r, body.data(), body.size());
}

void encode_skip(std::byte* dst, std::uint64_t count) noexcept {
  const JournalSkipPayload p{count};
  std::memcpy(dst, &p, sizeof p);
}

void encode_group_entry(std::byte* dst, const JournalGroupState& g) noexcept {
  JournalGroupEntryHeader h{};
  h.floor = g.floor;
  h.next = g.next;
  h.overflow = g.overflow;
  h.start = g.start;
  h.name_length = static_cast<std::uint8_t>(g.name.size());
  std::memcpy(dst, &h, sizeof h);
  std::memcpy(dst + sizeof h, g.name.data(), g.name.size());
  const std::uint64_t pad = journal_align(g.name.size()) - g.name.size();
  std::memset(dst + sizeof h + g.name.size(), 0, pad);
}

void encode_checkpoint(std::byte* dst, std::span<const JournalGroupState> groups) noexcept {
  const JournalCheckpointHeader h{static_cast<std::uint32_t>(groups.size()), 0};
  std::memcpy(dst, &h, sizeof h);
  dst += sizeof h;
  for (const auto& g : groups) {
    encode_group_entry(dst, g);
    dst += journal_group_entry_size(g.name);
  }
}

bool decode_message(std::span<const std::byte> payload, std::uint16_t flags, JournalMessageView& out) noexcept {
  out.replay = (flags & kJournalFlagReplay) != 0;
  if (payload.size() < journal_message_payload_size(0, out.replay)) return false;
  const auto h = load<JournalMessageHeader>(payload.data());
  out.publish_time_ns = h.publish_time_ns;
  out.has_key = (flags & kJournalFlagHasKey) != 0;
  out.key = {h.key_lo, h.key_hi};
  out.target_group_hash = out.replay ? load<JournalReplayHeader>(payload.data() + sizeof h).target_group_hash : 0;
  out.body = payload.subspan(journal_message_payload_size(0, out.replay));
  return true;
}

std::uint64_t journal_group_hash(std::string_view name) noexcept { return XXH3_64bits(name.data(), name.size()); }

bool decode_skip(std::span<const std::byte> payload, std::uint64_t& count) noexcept {
  if (payload.size() != sizeof(JournalSkipPayload)) return false;
  count = load<JournalSkipPayload>(payload.data()).count;
  return count != 0;
}

bool decode_group_entry(std::span<const std::byte> payload, JournalGroupState& out) {
  // A removal entry (all zero but the name) also passes the rules of a
  // state entry, so one check decodes both kinds.
  const std::uint64_t n = group_entry_valid(payload, false);
  if (n == 0 || n != payload.size()) return false;
  const auto h = load<JournalGroupEntryHeader>(payload.data());
  out.floor = h.floor;
  out.next = h.next;
  out.overflow = h.overflow;
  out.start = h.start;
  out.name.assign(reinterpret_cast<const char*>(payload.data() + sizeof h), h.name_length);
  return true;
}

bool decode_checkpoint(std::span<const std::byte> payload, std::vector<JournalGroupState>& out) {
  if (!checkpoint_valid(payload)) return false;
  const auto h = load<JournalCheckpointHeader>(payload.data());
  out.clear();
  out.reserve(h.group_count);
  auto rest = payload.subspan(sizeof(JournalCheckpointHeader));
  for (std::uint32_t i = 0; i < h.group_count; ++i) {
    const auto e = load<JournalGroupEntryHeader>(rest.data());
    const std::uint64_t n = sizeof e + journal_align(e.name_length);
    JournalGroupState g;
    if (!decode_group_entry(rest.first(n), g)) return false;
    out.push_back(std::move(g));
    rest = rest.subspan(n);
  }
  return true;
}

bool journal_payload_valid(JournalRecordType type, std::uint16_t flags, std::uint64_t seq,
                           std::span<const std::byte> payload) noexcept {
  if ((flags & ~kJournalKnownFlags) != 0) return false;
  if ((flags & (kJournalFlagHasKey | kJournalFlagReplay)) != 0 && type != JournalRecordType::message) return false;
  switch (type) {
    case JournalRecordType::message:
      return payload.size() >= journal_message_payload_size(0, (flags & kJournalFlagReplay) != 0) && seq != UINT64_MAX;
    case JournalRecordType::skip: {
      if (payload.size() != sizeof(JournalSkipPayload)) return false;
      const std::uint64_t count = load<JournalSkipPayload>(payload.data()).count;
      return count != 0 && count <= UINT64_MAX - seq;
    }
    case JournalRecordType::checkpoint:
      return checkpoint_valid(payload);
    case JournalRecordType::group_create:
      return group_entry_valid(payload, false) == payload.size() && !payload.empty();
    case JournalRecordType::group_remove:
      return group_entry_valid(payload, true) == payload.size() && !payload.empty();
  }
  return false;  // an unknown type
}

std::uint64_t journal_seqs_consumed(JournalRecordType type, std::span<const std::byte> payload) noexcept {
  switch (type) {
    case JournalRecordType::message:
      return 1;
    case JournalRecordType::skip:
      return payload.size() == sizeof(JournalSkipPayload) ? load<JournalSkipPayload>(payload.data()).count : 0;
    default:
      return 0;
  }
}

void JournalGroupTable::apply(const JournalRecordView& record) {
  switch (record.type) {
    case JournalRecordType::group_create: {
      JournalGroupState g;
      if (decode_group_entry(record.payload, g)) create(g);
      break;
    }
    case JournalRecordType::group_remove: {
      JournalGroupState g;
      if (decode_group_entry(record.payload, g)) remove(g.name);
      break;
    }
    case JournalRecordType::checkpoint: {
      std::vector<JournalGroupState> gs;
      if (decode_checkpoint(record.payload, gs)) replace(gs);
      break;
    }
    default:
      break;
  }
}

void JournalGroupTable::create(const JournalGroupState& g) {
  for (auto& existing : groups_)
    if (existing.name == g.name) {
      existing = g;
      return;
    }
  groups_.push_back(g);
}

void JournalGroupTable::remove(std::string_view name) {
  std::erase_if(groups_, [&](const JournalGroupState& g) { return g.name == name; });
}

void JournalGroupTable::replace(std::span<const JournalGroupState> groups) {
  groups_.assign(groups.begin(), groups.end());
}

}  // namespace ackring::detail
