// Retention: delete_below removes whole segments whose records are all below
// a seq, oldest first, never the active one, and the keep options hold some
// back. What remains is a journal that reads, and reopens, on its own.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "journal_test_util.hpp"

namespace ackring::testing {

using namespace ackring::detail;

namespace {

std::unique_ptr<JournalWriter> writer_with_segments(const std::filesystem::path& dir, const JournalOptions& o,
                                                    std::uint64_t messages) {
  auto w = JournalWriter::try_acquire(dir, o);
  EXPECT_NE(w, nullptr);
  (void)w->append_group_create({"g", 0, 0, 0, 0});
  for (std::uint64_t seq = 0; seq < messages; ++seq) {
    (void)w->append_message(body_for(seq), time_for(seq));
    if (seq % 8 == 7) (void)w->flush();
  }
  (void)w->flush();
  return w;
}

}  // namespace

// Each test has a fresh journal directory d (JournalTest).
using JournalRetention = JournalTest;

TEST_F(JournalRetention, should_delete_only_segments_whose_records_are_all_below_the_seq) {
  auto w = writer_with_segments(d.dir(), small_journal(4096), 250);
  const auto before = read_journal(d.dir()).result.segments;
  ASSERT_GE(before.size(), 5u);
  // A seq inside segment 3: segments 0..2 end below it... but only those
  // whose *successor* starts at or below it hold nothing at or above it.
  const std::uint64_t seq = before[3].first_seq + 1;
  std::size_t expect = 0;
  while (expect + 1 < before.size() && before[expect + 1].first_seq <= seq) ++expect;
  ASSERT_EQ(expect, 3u);
  EXPECT_EQ(w->delete_below(seq), expect);
  EXPECT_EQ(w->stats().segments_deleted, expect);
  const auto paths = segment_paths(d.dir());
  ASSERT_EQ(paths.size(), before.size() - expect);
  EXPECT_EQ(paths.front().filename(), before[expect].name);

  // Asking again, or for a seq below what is left, deletes nothing.
  EXPECT_EQ(w->delete_below(seq), 0u);
  EXPECT_EQ(w->delete_below(0), 0u);

  // The rest reads on its own: it starts at the first kept segment, and its
  // opening checkpoint still knows the group created in segment 0.
  const auto rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::clean) << rb.result.message;
  EXPECT_EQ(rb.result.first_seq, before[expect].first_seq);
  EXPECT_TRUE(messages_are_contiguous(rb.records, before[expect].first_seq, 250));
  JournalGroupTable table;
  for (const auto& r : rb.records) table.apply(JournalRecordView{r.type, r.flags, r.seq, r.payload});
  ASSERT_EQ(table.groups().size(), 1u);
  EXPECT_EQ(table.groups()[0].name, "g");
}

TEST_F(JournalRetention, should_never_delete_the_segment_being_written) {
  auto w = writer_with_segments(d.dir(), small_journal(4096), 250);
  const auto n = segment_paths(d.dir()).size();
  EXPECT_EQ(w->delete_below(UINT64_MAX), n - 1);
  ASSERT_EQ(segment_paths(d.dir()).size(), 1u);
  (void)w->append_message(body_for(250), time_for(250));
  EXPECT_EQ(w->flush(), 251u);
  w->close();
  w.reset();
  // Reopening a journal whose older segments are gone continues it.
  auto again = JournalWriter::try_acquire(d.dir(), small_journal(4096));
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->next_seq(), 251u);
  ASSERT_EQ(again->groups().size(), 1u);
}

TEST_F(JournalRetention, should_keep_the_newest_settled_segments_within_keep_bytes) {
  auto o = small_journal(4096);
  o.keep_bytes = 2 * 4096;
  auto w = writer_with_segments(d.dir(), o, 250);
  const auto n = segment_paths(d.dir()).size();
  ASSERT_GE(n, 5u);
  // n - 1 settled segments; the newest two of them are kept.
  EXPECT_EQ(w->delete_below(UINT64_MAX), n - 1 - 2);
  EXPECT_EQ(segment_paths(d.dir()).size(), 3u);
}

TEST_F(JournalRetention, should_keep_settled_segments_younger_than_keep_age) {
  auto o = small_journal(4096);
  o.keep_age = std::chrono::hours(1);
  auto w = writer_with_segments(d.dir(), o, 250);
  const auto n = segment_paths(d.dir()).size();
  EXPECT_EQ(w->delete_below(UINT64_MAX), 0u);
  EXPECT_EQ(segment_paths(d.dir()).size(), n);
}

}  // namespace ackring::testing
