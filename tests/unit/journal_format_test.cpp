// The journal's byte format: segment names, record framing and checksums,
// and the encoding and bounds-checked decoding of record payloads.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "journal/journal_format.hpp"
#include "journal/journal_records.hpp"

using namespace ackring::detail;

namespace {

std::vector<std::byte> encode_group(const JournalGroupState& g) {
  std::vector<std::byte> out(journal_group_entry_size(g.name));
  encode_group_entry(out.data(), g);
  return out;
}

std::vector<std::byte> encode_checkpoint_of(const std::vector<JournalGroupState>& gs) {
  std::vector<std::byte> out(journal_checkpoint_size(gs));
  encode_checkpoint(out.data(), gs);
  return out;
}

}  // namespace

TEST(JournalFormat, should_name_segments_by_first_seq_and_index_and_parse_the_names_back) {
  const std::string name = journal_segment_name(4711, 3);
  EXPECT_EQ(name, "00000000000000004711-0000000003.wal");
  std::uint64_t seq = 0, index = 0;
  ASSERT_TRUE(parse_journal_segment_name(name, seq, index));
  EXPECT_EQ(seq, 4711u);
  EXPECT_EQ(index, 3u);
  ASSERT_TRUE(parse_journal_segment_name(journal_segment_name(UINT64_MAX, UINT64_MAX), seq, index));
  EXPECT_EQ(seq, UINT64_MAX);
  EXPECT_EQ(index, UINT64_MAX);
}

TEST(JournalFormat, should_not_take_other_files_for_segments) {
  std::uint64_t seq = 0, index = 0;
  for (const char* n : {"LOCK", "spare.wal.tmp", ".wal", "-.wal", "1-.wal", "-1.wal", "12.wal", "1-2.wa",
                        "1-2-3.wal", "a-1.wal", "1-x.wal", "99999999999999999999-1.wal" /* > 2^64 */,
                        "000000000000000000001-1.wal" /* 21 digits */})
    EXPECT_FALSE(parse_journal_segment_name(n, seq, index)) << n;
}

TEST(JournalFormat, should_cover_header_payload_and_padding_with_the_record_checksum) {
  // A record of 5 payload bytes takes 24 + 8 bytes; every byte but the
  // checksum itself changes the checksum.
  std::vector<std::byte> rec(journal_record_size(5));
  ASSERT_EQ(rec.size(), 32u);
  JournalRecordHeader h{};
  h.length = 5;
  h.type = static_cast<std::uint16_t>(JournalRecordType::message);
  h.seq = 9;
  std::memcpy(rec.data(), &h, sizeof h);
  const std::uint64_t base = journal_record_checksum(rec.data(), 5);
  for (std::size_t i = 8; i < rec.size(); ++i) {
    auto copy = rec;
    copy[i] ^= std::byte{0x40};
    EXPECT_NE(journal_record_checksum(copy.data(), 5), base) << "byte " << i << " is not covered";
  }
}

TEST(JournalFormat, should_round_trip_a_message_payload) {
  const std::vector<std::byte> body = {std::byte{1}, std::byte{2}, std::byte{3}};
  std::vector<std::byte> p(journal_message_payload_size(body.size()));
  encode_message(p.data(), 77, {5, 6}, body);
  JournalMessageView m;
  ASSERT_TRUE(decode_message(p, kJournalFlagHasKey, m));
  EXPECT_EQ(m.publish_time_ns, 77u);
  EXPECT_TRUE(m.has_key);
  EXPECT_EQ(m.key.lo, 5u);
  EXPECT_EQ(m.key.hi, 6u);
  ASSERT_EQ(m.body.size(), 3u);
  EXPECT_EQ(m.body[2], std::byte{3});
  EXPECT_FALSE(decode_message(std::span(p).first(23), 0, m)) << "shorter than the message header";
}

TEST(JournalFormat, should_round_trip_a_replay_payload) {
  const std::vector<std::byte> body = {std::byte{4}, std::byte{5}};
  std::vector<std::byte> p(journal_message_payload_size(body.size(), true));
  encode_replay(p.data(), 88, {41, 0}, journal_group_hash("billing"), body);
  EXPECT_TRUE(journal_payload_valid(JournalRecordType::message, kJournalFlagReplay, 0, p));
  JournalMessageView m;
  ASSERT_TRUE(decode_message(p, kJournalFlagReplay, m));
  EXPECT_TRUE(m.replay);
  EXPECT_FALSE(m.has_key);
  EXPECT_EQ(m.publish_time_ns, 88u);
  EXPECT_EQ(m.key.lo, 41u) << "a replay without a key carries the copied seq in key.lo";
  EXPECT_EQ(m.target_group_hash, journal_group_hash("billing"));
  ASSERT_EQ(m.body.size(), 2u);
  EXPECT_EQ(m.body[1], std::byte{5});
  EXPECT_FALSE(decode_message(std::span(p).first(31), kJournalFlagReplay, m)) << "shorter than both headers";
}

TEST(JournalFormat, should_round_trip_groups_and_checkpoints) {
  const std::vector<JournalGroupState> gs = {
      {"billing", 10, 12, 0, 0},
      {std::string(47, 'x'), 0, 0, 1, 1},
      {"a", 5, 5, 0, 1},
  };
  const auto cp = encode_checkpoint_of(gs);
  EXPECT_TRUE(journal_payload_valid(JournalRecordType::checkpoint, 0, 0, cp));
  std::vector<JournalGroupState> back;
  ASSERT_TRUE(decode_checkpoint(cp, back));
  EXPECT_EQ(back, gs);

  const auto one = encode_group(gs[0]);
  EXPECT_TRUE(journal_payload_valid(JournalRecordType::group_create, 0, 0, one));
  JournalGroupState g;
  ASSERT_TRUE(decode_group_entry(one, g));
  EXPECT_EQ(g, gs[0]);
  EXPECT_FALSE(journal_payload_valid(JournalRecordType::group_remove, 0, 0, one)) << "a removal carries no state";
  EXPECT_TRUE(journal_payload_valid(JournalRecordType::group_remove, 0, 0, encode_group({"billing"})));

  std::vector<JournalGroupState> none;
  EXPECT_TRUE(decode_checkpoint(encode_checkpoint_of({}), none));
  EXPECT_TRUE(none.empty());
}

TEST(JournalFormat, should_reject_malformed_group_entries_and_checkpoints) {
  auto entry = encode_group({"billing", 1, 2, 0, 0});
  const auto check = [](std::vector<std::byte> bytes) {
    return journal_payload_valid(JournalRecordType::group_create, 0, 0, bytes);
  };
  {
    auto e = entry;
    e[18] = std::byte{0};  // name length 0
    EXPECT_FALSE(check(e));
  }
  {
    auto e = entry;
    e[18] = std::byte{48};  // longer than the name limit (and than the payload)
    EXPECT_FALSE(check(e));
  }
  {
    auto e = entry;
    e[16] = std::byte{2};  // unknown overflow policy
    EXPECT_FALSE(check(e));
  }
  {
    auto e = entry;
    e[20] = std::byte{1};  // reserved
    EXPECT_FALSE(check(e));
  }
  {
    auto e = entry;
    e.back() = std::byte{'x'};  // padding after the name
    EXPECT_FALSE(check(e));
  }
  {
    auto e = entry;
    e[24] = std::byte{0};  // a NUL inside the name
    EXPECT_FALSE(check(e));
  }
  {
    auto e = entry;
    std::uint64_t floor = 3;  // floor above next
    std::memcpy(e.data(), &floor, 8);
    EXPECT_FALSE(check(e));
  }
  {
    auto e = entry;
    e.push_back(std::byte{0});  // trailing bytes
    EXPECT_FALSE(check(e));
  }
  EXPECT_FALSE(check(std::vector<std::byte>(entry.begin(), entry.begin() + 23)));

  auto cp = encode_checkpoint_of({{"a", 0, 0, 0, 0}, {"b", 0, 0, 0, 0}});
  std::uint32_t count = 3;  // says 3 groups, holds 2
  std::memcpy(cp.data(), &count, 4);
  std::vector<JournalGroupState> out;
  EXPECT_FALSE(decode_checkpoint(cp, out));
  EXPECT_FALSE(journal_payload_valid(JournalRecordType::checkpoint, 0, 0, cp));
  count = 2000;  // more groups than a queue can have
  std::memcpy(cp.data(), &count, 4);
  EXPECT_FALSE(journal_payload_valid(JournalRecordType::checkpoint, 0, 0, cp));
}

TEST(JournalFormat, should_reject_skips_of_zero_and_skips_past_the_last_seq) {
  std::vector<std::byte> p(8);
  encode_skip(p.data(), 0);
  EXPECT_FALSE(journal_payload_valid(JournalRecordType::skip, 0, 5, p));
  encode_skip(p.data(), 3);
  EXPECT_TRUE(journal_payload_valid(JournalRecordType::skip, 0, 5, p));
  EXPECT_EQ(journal_seqs_consumed(JournalRecordType::skip, p), 3u);
  EXPECT_FALSE(journal_payload_valid(JournalRecordType::skip, 0, UINT64_MAX - 1, p));
}

TEST(JournalFormat, should_reject_unknown_flags_and_a_key_flag_outside_messages) {
  std::vector<std::byte> p(journal_message_payload_size(0));
  EXPECT_TRUE(journal_payload_valid(JournalRecordType::message, kJournalFlagBatchStart | kJournalFlagHasKey, 0, p));
  EXPECT_FALSE(journal_payload_valid(JournalRecordType::message, 0x80, 0, p));
  std::vector<std::byte> s(8);
  encode_skip(s.data(), 1);
  EXPECT_FALSE(journal_payload_valid(JournalRecordType::skip, kJournalFlagHasKey, 0, s));
  EXPECT_FALSE(journal_payload_valid(static_cast<JournalRecordType>(9), 0, 0, s));
}

TEST(JournalFormat, should_keep_the_group_table_as_creates_removes_and_checkpoints_describe_it) {
  JournalGroupTable t;
  t.create({"a", 0, 0, 0, 0});
  t.create({"b", 0, 0, 1, 0});
  t.create({"a", 3, 4, 0, 0});  // re-create replaces
  ASSERT_EQ(t.groups().size(), 2u);
  EXPECT_EQ(t.groups()[0].floor, 3u);
  t.remove("a");
  ASSERT_EQ(t.groups().size(), 1u);
  EXPECT_EQ(t.groups()[0].name, "b");
  const std::vector<JournalGroupState> cp = {{"x", 1, 1, 0, 0}};
  const auto bytes = encode_checkpoint_of(cp);
  t.apply(JournalRecordView{JournalRecordType::checkpoint, 0, 0, bytes});
  EXPECT_EQ(t.groups(), cp);
}
