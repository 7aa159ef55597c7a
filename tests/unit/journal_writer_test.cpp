// The journal writer in one process: round trips across segments, group
// commit, roll-over, reopening, the lock within a process, the io_uring and
// pwrite paths, options and limits.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "journal_test_util.hpp"

namespace ackring::testing {

using namespace ackring::detail;

namespace {

// Appends messages up to end-1 (bodies from body_for), flushing every
// `batch` messages; returns the durable end after a final flush.
std::uint64_t append_messages(JournalWriter& w, std::uint64_t end, std::uint64_t batch) {
  while (w.next_seq() < end) {
    const std::uint64_t seq = w.next_seq();
    EXPECT_EQ(w.append_message(body_for(seq), time_for(seq)), seq);
    if ((seq + 1) % batch == 0) EXPECT_EQ(w.flush(), seq + 1);
  }
  return w.flush();
}

template <class F>
::testing::AssertionResult throws_code(F&& f, ErrorCode code, const std::string& mentions = {}) {
  try {
    f();
  } catch (const Error& e) {
    if (e.code() != code)
      return ::testing::AssertionFailure() << "code " << static_cast<int>(e.code()) << ": " << e.what();
    if (!mentions.empty() && std::string(e.what()).find(mentions) == std::string::npos)
      return ::testing::AssertionFailure() << "message does not mention '" << mentions << "': " << e.what();
    return ::testing::AssertionSuccess() << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

}  // namespace

// Each test has a fresh journal directory d (JournalTest).
using JournalWriting = JournalTest;

TEST_F(JournalWriting, should_round_trip_many_records_across_several_segments) {
  std::vector<JournalGroupState> groups = {{"billing", 0, 0, 0, 0}, {"audit", 0, 0, 1, 1}};
  {
    auto w = JournalWriter::try_acquire(d.dir(), small_journal(8192));
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->append_group_create(groups[0]), 0u);
    EXPECT_EQ(w->append_group_create(groups[1]), 0u);
    for (std::uint64_t i = 0; i < 600; ++i) {
      const std::uint64_t seq = w->next_seq();
      if (i % 97 == 50) {
        EXPECT_EQ(w->append_skip(3), seq);  // three aborted claims
        continue;
      }
      EXPECT_EQ(w->append_message(body_for(seq), time_for(seq), JournalKey{seq, ~seq}), seq);
      if (i % 151 == 0) {
        groups[0].floor = groups[0].next = seq;
        EXPECT_EQ(w->append_checkpoint(groups), seq + 1);
      }
      if (i % 13 == 0) {
        EXPECT_EQ(w->flush(), seq + 1);
      }
    }
    EXPECT_EQ(w->append_group_remove("audit"), w->next_seq());
    const std::uint64_t end = w->flush();
    EXPECT_EQ(end, w->next_seq());
    EXPECT_GE(w->stats().segments_created, 4u);
    w->close();
  }
  const auto rb = read_journal(d.dir(), {.queue_id = kTestQueueId});
  EXPECT_EQ(rb.result.end, JournalEnd::clean) << rb.result.message;
  EXPECT_GE(rb.result.segments.size(), 4u);
  EXPECT_EQ(rb.result.records, rb.records.size());
  EXPECT_TRUE(messages_are_contiguous(rb.records, 0, rb.result.next_seq));

  // Every segment opens with a checkpoint of the groups as of that point, and
  // every message kept its key.
  std::uint64_t last_index = UINT64_MAX;
  for (const auto& r : rb.records) {
    if (r.segment_index != last_index) {
      EXPECT_EQ(r.type, JournalRecordType::checkpoint) << "segment " << r.segment_index;
      EXPECT_EQ(r.offset, kJournalSegmentHeaderSize);
      EXPECT_NE(r.flags & kJournalFlagBatchStart, 0) << "the first record of a segment starts a batch";
      last_index = r.segment_index;
    }
    if (r.type == JournalRecordType::message) {
      JournalMessageView m;
      ASSERT_TRUE(decode_message(r.payload, r.flags, m));
      EXPECT_TRUE(m.has_key);
      EXPECT_EQ(m.key.lo, r.seq);
      EXPECT_EQ(m.key.hi, ~r.seq);
    }
  }
  JournalGroupTable table;
  for (const auto& r : rb.records) table.apply(JournalRecordView{r.type, r.flags, r.seq, r.payload});
  ASSERT_EQ(table.groups().size(), 1u);
  EXPECT_EQ(table.groups()[0].name, "billing");
}

TEST_F(JournalWriting, should_make_appended_records_durable_only_at_flush_and_return_the_durable_end) {
  auto w = JournalWriter::try_acquire(d.dir(), small_journal());
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->durable_end(), 0u);
  (void)w->append_message(body_for(0), time_for(0));
  (void)w->append_message(body_for(1), time_for(1));
  EXPECT_EQ(w->durable_end(), 0u) << "appending alone makes nothing durable";
  EXPECT_GT(w->staged_bytes(), 0u);
  const auto before = w->stats().flushes;
  EXPECT_EQ(w->flush(), 2u);
  EXPECT_EQ(w->staged_bytes(), 0u);
  EXPECT_EQ(w->stats().flushes, before + 1);
  EXPECT_EQ(w->flush(), 2u) << "a flush with nothing staged returns the same end";
  EXPECT_EQ(w->stats().flushes, before + 1) << "and does no I/O";
  // The reader sees exactly the flushed records while the writer lives.
  (void)w->append_message(body_for(2), time_for(2));
  const auto rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::clean) << rb.result.message;
  EXPECT_EQ(rb.result.next_seq, 2u);
  EXPECT_TRUE(messages_are_contiguous(rb.records, 0, 2));
}

TEST_F(JournalWriting, should_continue_after_reopening_without_gap_or_duplicate) {
  for (int round = 0; round < 4; ++round) {
    auto w = JournalWriter::try_acquire(d.dir(), small_journal(8192));
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->next_seq(), static_cast<std::uint64_t>(round) * 50);
    EXPECT_EQ(w->recovery().end, round == 0 ? JournalEnd::empty : JournalEnd::clean) << w->recovery().message;
    append_messages(*w, (round + 1) * 50u, 7);
    w->close();
  }
  const auto rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::clean) << rb.result.message;
  EXPECT_TRUE(messages_are_contiguous(rb.records, 0, 200));
  EXPECT_GE(rb.result.segments.size(), 4u) << "each writer starts a segment of its own";
}

TEST_F(JournalWriting, should_discard_staged_records_when_destroyed_without_flush) {
  {
    auto w = JournalWriter::try_acquire(d.dir(), small_journal());
    append_messages(*w, 10, 100);
    (void)w->append_message(body_for(10), time_for(10));  // staged only
  }
  auto w = JournalWriter::try_acquire(d.dir(), small_journal());
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->next_seq(), 10u);
}

TEST_F(JournalWriting, should_refuse_a_second_writer_while_the_first_holds_the_lock_and_allow_one_after) {
  auto first = JournalWriter::try_acquire(d.dir(), small_journal());
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(JournalWriter::try_acquire(d.dir(), small_journal()), nullptr);
  first.reset();
  auto second = JournalWriter::try_acquire(d.dir(), small_journal());
  EXPECT_NE(second, nullptr);
}

TEST_F(JournalWriting, should_write_the_same_bytes_through_io_uring_and_through_the_pwrite_fallback) {
  TempJournalDir a, b;
  auto oa = small_journal();
  auto ob = small_journal();
  ob.force_pwrite = true;
  {
    auto wa = JournalWriter::try_acquire(a.dir(), oa);
    auto wb = JournalWriter::try_acquire(b.dir(), ob);
    EXPECT_EQ(wb->stats().io_path, JournalIoPath::pwrite);
    EXPECT_EQ(wb->io_fallback_reason(), "pwrite forced by the options");
    std::printf("[ journal  ] I/O path here: %s%s%s (registered buffers: %s)\n", to_string(wa->stats().io_path),
                wa->io_fallback_reason().empty() ? "" : ", because ", wa->io_fallback_reason().c_str(),
                wa->stats().registered_buffers ? "yes" : "no");
    append_messages(*wa, 300, 11);
    append_messages(*wb, 300, 11);
    EXPECT_EQ(wa->stats().flushes, wb->stats().flushes);
    wa->close();
    wb->close();
  }
  const auto pa = segment_paths(a.dir());
  const auto pb = segment_paths(b.dir());
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].filename(), pb[i].filename());
    EXPECT_TRUE(file_bytes(pa[i]) == file_bytes(pb[i])) << pa[i].filename() << " differs";
  }
}

TEST_F(JournalWriting, should_flush_by_itself_when_the_staging_buffer_is_full) {
  auto o = small_journal(1 << 20);
  o.staging_size = 4096;
  auto w = JournalWriter::try_acquire(d.dir(), o);
  for (std::uint64_t seq = 0; seq < 200; ++seq) (void)w->append_message(body_for(seq), time_for(seq));
  const auto s = w->stats();
  EXPECT_GT(s.auto_flushes, 0u);
  EXPECT_GT(w->durable_end(), 0u) << "an automatic flush makes what it wrote durable";
  EXPECT_LT(w->durable_end(), 200u);
  EXPECT_EQ(w->flush(), 200u);
  const auto rb = read_journal(d.dir());
  EXPECT_TRUE(messages_are_contiguous(rb.records, 0, 200));
}

TEST_F(JournalWriting, should_stage_a_record_larger_than_the_staging_buffer) {
  auto o = small_journal(1 << 20);
  o.staging_size = 4096;
  auto w = JournalWriter::try_acquire(d.dir(), o);
  const std::vector<std::byte> big(100'000, std::byte{0x5a});
  (void)w->append_message(big, 1);
  EXPECT_EQ(w->flush(), 1u);
  const auto rb = read_journal(d.dir());
  ASSERT_EQ(rb.records.size(), 2u);  // opening checkpoint, message
  JournalMessageView m;
  ASSERT_TRUE(decode_message(rb.records[1].payload, rb.records[1].flags, m));
  EXPECT_EQ(m.body.size(), big.size());
}

TEST_F(JournalWriting, should_refuse_a_record_that_cannot_fit_a_segment_and_stay_usable) {
  auto w = JournalWriter::try_acquire(d.dir(), small_journal(4096));
  const std::vector<std::byte> big(5000);
  EXPECT_TRUE(throws_code([&] { (void)w->append_message(big, 1); }, ErrorCode::invalid_argument, "does not fit"));
  (void)w->append_message(body_for(0), time_for(0));
  EXPECT_EQ(w->flush(), 1u);
}

TEST_F(JournalWriting, should_refuse_invalid_options_and_bad_groups) {
  auto o = small_journal();
  o.queue_id = 0;
  EXPECT_TRUE(throws_code([&] { (void)JournalWriter::try_acquire(d.dir(), o); }, ErrorCode::invalid_argument,
                          "queue id"));
  o = small_journal();
  o.segment_size = 5000;
  EXPECT_TRUE(throws_code([&] { (void)JournalWriter::try_acquire(d.dir(), o); }, ErrorCode::invalid_argument,
                          "segment size"));
  auto w = JournalWriter::try_acquire(d.dir(), small_journal());
  EXPECT_TRUE(throws_code([&] { (void)w->append_group_create({"", 0, 0, 0, 0}); }, ErrorCode::invalid_argument));
  EXPECT_TRUE(throws_code([&] { (void)w->append_group_create({std::string(48, 'g'), 0, 0, 0, 0}); },
                          ErrorCode::invalid_argument));
  EXPECT_TRUE(throws_code([&] { (void)w->append_group_create({"g", 5, 4, 0, 0}); }, ErrorCode::invalid_argument,
                          "floor"));
  EXPECT_TRUE(throws_code([&] { (void)w->append_skip(0); }, ErrorCode::invalid_argument));
  EXPECT_EQ(w->flush(), 0u);
}

TEST_F(JournalWriting, should_refuse_the_journal_of_another_queue) {
  auto w = JournalWriter::try_acquire(d.dir(), small_journal());
  append_messages(*w, 3, 10);
  w->close();
  w.reset();
  auto other = small_journal();
  other.queue_id = kTestQueueId + 1;
  EXPECT_TRUE(throws_code([&] { (void)JournalWriter::try_acquire(d.dir(), other); }, ErrorCode::incompatible,
                          "belongs to queue id"));
}

TEST_F(JournalWriting, should_start_a_new_journal_at_the_first_seq_it_is_given) {
  auto o = small_journal();
  o.first_seq = 1000;
  auto w = JournalWriter::try_acquire(d.dir(), o);
  EXPECT_EQ(w->next_seq(), 1000u);
  EXPECT_EQ(w->append_message(body_for(1000), time_for(1000)), 1000u);
  EXPECT_EQ(w->flush(), 1001u);
  const auto rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.first_seq, 1000u);
  EXPECT_TRUE(messages_are_contiguous(rb.records, 1000, 1001));
  EXPECT_TRUE(std::filesystem::exists(d.dir() / "00000000000000001000-0000000000.wal"));
  EXPECT_TRUE(std::filesystem::exists(d.dir() / "LOCK"));
}

TEST_F(JournalWriting, should_roll_over_with_and_without_the_helper_thread_and_with_zero_filled_segments) {
  for (const bool ahead : {true, false}) {
    for (const bool zero_fill : {false, true}) {
      SCOPED_TRACE(std::string("prepare_ahead=") + (ahead ? "1" : "0") + " zero_fill=" + (zero_fill ? "1" : "0"));
      TempJournalDir fresh;  // one journal per combination
      auto o = small_journal(4096);
      o.prepare_ahead = ahead;
      o.zero_fill = zero_fill;
      auto w = JournalWriter::try_acquire(fresh.dir(), o);
      append_messages(*w, 200, 20);
      EXPECT_GE(w->stats().segments_created, 3u);
      w->close();
      for (const auto& p : segment_paths(fresh.dir())) EXPECT_EQ(std::filesystem::file_size(p), 4096u) << p;
      EXPECT_FALSE(std::filesystem::exists(fresh.dir() / "spare.wal.tmp")) << "an unused spare is removed";
      const auto rb = read_journal(fresh.dir());
      EXPECT_EQ(rb.result.end, JournalEnd::clean) << rb.result.message;
      EXPECT_TRUE(messages_are_contiguous(rb.records, 0, 200));
    }
  }
}

TEST_F(JournalWriting, should_fill_segments_to_the_last_record_that_fits_a_segment_full_of_control_records) {
  // Control records consume no seq: segments can start at the same seq,
  // which is why the index is part of the file name.
  auto w = JournalWriter::try_acquire(d.dir(), small_journal(4096));
  for (int i = 0; i < 300; ++i) (void)w->append_group_create({"g" + std::to_string(i % 3), 0, 0, 0, 0});
  EXPECT_EQ(w->flush(), 0u);
  EXPECT_GE(w->stats().segments_created, 3u);
  w->close();
  const auto rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::clean) << rb.result.message;
  EXPECT_EQ(rb.result.next_seq, 0u);
  for (const auto& s : rb.result.segments) EXPECT_EQ(s.first_seq, 0u);
}

TEST_F(JournalWriting, should_keep_counting_in_its_stats) {
  auto w = JournalWriter::try_acquire(d.dir(), small_journal());
  append_messages(*w, 40, 10);
  const auto s = w->stats();
  EXPECT_EQ(s.next_seq, 40u);
  EXPECT_EQ(s.durable_end, 40u);
  EXPECT_EQ(s.records, 41u);  // 40 messages + the opening checkpoint
  EXPECT_GE(s.flushes, 5u);   // the opening flush + one per 10 messages
  EXPECT_GT(s.bytes, 40u * kJournalRecordHeaderSize);
  EXPECT_GT(s.last_flush_ns, 0u);
  EXPECT_GE(s.max_flush_ns, s.last_flush_ns);
  EXPECT_GE(s.total_flush_ns, s.max_flush_ns);
  EXPECT_EQ(s.short_writes, 0u);
}

TEST_F(JournalWriting, should_refuse_calls_after_close) {
  auto w = JournalWriter::try_acquire(d.dir(), small_journal());
  w->close();
  EXPECT_TRUE(throws_code([&] { (void)w->append_message(body_for(0), 0); }, ErrorCode::invalid_argument, "closed"));
  EXPECT_NE(JournalWriter::try_acquire(d.dir(), small_journal()), nullptr) << "close releases the lock";
}

}  // namespace ackring::testing
