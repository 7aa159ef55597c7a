// Recovery: what the reader returns from journals cut short, damaged,
// zero-filled, or of another queue or version. The reader must hand out
// exactly the good prefix, never a record that does not verify, say where and
// why it stopped, and tell a torn tail (a crash) from corruption.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "journal/journal_scan.hpp"
#include "journal_test_util.hpp"

namespace ackring::testing {

using namespace ackring::detail;

namespace {

// The segment files of a journal, held in memory.
struct Images {
  std::vector<std::string> names;
  std::vector<std::vector<std::byte>> bytes;
};

Images load_images(const std::filesystem::path& dir) {
  Images im;
  for (const auto& p : segment_paths(dir)) {
    im.names.push_back(p.filename().string());
    im.bytes.push_back(file_bytes(p));
  }
  return im;
}

struct Scan {
  JournalScanResult result;
  std::vector<ReadRecord> records;
  bool threw = false;
  std::string error;
};

Scan scan(const Images& im, std::uint64_t queue_id = 0) {
  std::vector<JournalMemorySource::Segment> segs;
  for (std::size_t i = 0; i < im.names.size(); ++i) segs.push_back({im.names[i], im.bytes[i]});
  JournalMemorySource source(std::move(segs));
  Scan s;
  try {
    s.result = scan_journal(source, queue_id, [&](const JournalRecordView& r) { s.records.push_back(copy_record(r)); });
  } catch (const Error& e) {
    s.threw = true;
    s.error = e.what();
    EXPECT_EQ(e.code(), ErrorCode::incompatible) << e.what();
  }
  return s;
}

// Writes messages 0..count-1, flushing every `batch`; segments of `segment_size`.
void build(const std::filesystem::path& dir, std::uint64_t count, std::uint64_t batch,
           std::uint64_t segment_size = 4096) {
  auto w = JournalWriter::try_acquire(dir, small_journal(segment_size));
  ASSERT_NE(w, nullptr);
  (void)w->append_group_create({"g", 0, 0, 0, 0});
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    (void)w->append_message(body_for(seq), time_for(seq));
    if ((seq + 1) % batch == 0) (void)w->flush();
  }
  w->close();
}

std::uint64_t record_end(const ReadRecord& r) { return r.offset + journal_record_size(r.payload.size()); }

// Index of the last nonzero byte of [from, to) in `b`, plus one (0 if none).
std::uint64_t nonzero_end(const std::vector<std::byte>& b, std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t i = std::min<std::uint64_t>(to, b.size()); i > from; --i)
    if (b[i - 1] != std::byte{0}) return i;
  return 0;
}

std::uint64_t seq_after(const ReadRecord& r) {
  return r.seq + journal_seqs_consumed(r.type, r.payload);
}

// Overwrites a header field of segment `i` and fixes its checksum.
template <class F>
void patch_header(const std::filesystem::path& path, F&& f) {
  auto b = file_bytes(path);
  JournalSegmentHeader h;
  std::memcpy(&h, b.data(), sizeof h);
  f(h);
  h.checksum = journal_header_checksum(h);
  std::memcpy(b.data(), &h, sizeof h);
  write_file(path, b);
}

}  // namespace

// ------------------------------------------------------------ truncation --

// Each test has a fresh journal directory d (JournalTest).
using JournalRecovery = JournalTest;

TEST_F(JournalRecovery, should_return_exactly_the_complete_record_prefix_when_truncated_at_every_byte_offset) {
  build(d.dir(), 60, 3);
  const Images full = load_images(d.dir());
  ASSERT_GE(full.names.size(), 2u) << "the test needs a segment before the last one";
  const Scan orig = scan(full);
  ASSERT_EQ(orig.result.end, JournalEnd::clean);
  const std::size_t last = full.names.size() - 1;
  const std::uint64_t last_index = orig.result.segments.back().index;
  const auto& img = full.bytes[last];

  std::size_t before_last = 0;  // records in earlier segments
  while (orig.records[before_last].segment_index != last_index) ++before_last;
  const std::uint64_t header_nz = nonzero_end(img, 0, kJournalSegmentHeaderSize);
  const std::uint64_t data_end = record_end(orig.records.back());
  ASSERT_GT(orig.records.size() - before_last, 5u) << "the last segment needs several records";

  for (std::uint64_t c = 0; c <= data_end + 16; ++c) {
    for (const bool shorten : {false, true}) {
      SCOPED_TRACE("cut at byte " + std::to_string(c) + (shorten ? " (file shortened)" : " (tail zeroed)"));
      Images cut = full;
      auto& b = cut.bytes[last];
      if (shorten) b.resize(c);
      else std::fill(b.begin() + static_cast<std::ptrdiff_t>(c), b.end(), std::byte{0});

      // What must survive: the header, then each record whose bytes are all
      // still there (shortened: its whole frame; zeroed: every byte that was
      // not already zero).
      const bool header_ok = shorten ? c >= kJournalSegmentHeaderSize : c >= header_nz;
      std::size_t expect = before_last;
      if (header_ok)
        while (expect < orig.records.size()) {
          const auto& r = orig.records[expect];
          const std::uint64_t need = shorten ? record_end(r) : nonzero_end(img, r.offset, record_end(r));
          if (c < need) break;
          ++expect;
        }
      const Scan s = scan(cut);
      ASSERT_FALSE(s.threw) << s.error;
      ASSERT_EQ(s.records.size(), expect) << s.result.message;
      for (std::size_t k = 0; k < expect; ++k) ASSERT_EQ(s.records[k], orig.records[k]) << "record " << k;
      EXPECT_EQ(s.result.next_seq, seq_after(orig.records[expect - 1]));

      // Clean exactly when nothing but zeros follows the good records.
      const std::uint64_t good_end = header_ok ? (expect > before_last ? record_end(orig.records[expect - 1])
                                                                       : kJournalSegmentHeaderSize)
                                               : 0;
      const bool leftovers = nonzero_end(b, good_end, b.size()) != 0;
      EXPECT_EQ(s.result.end, leftovers ? JournalEnd::torn_tail : JournalEnd::clean) << s.result.message;
      if (leftovers) {
        EXPECT_NE(s.result.message.find(full.names[last]), std::string::npos) << s.result.message;
        EXPECT_GT(s.result.discarded_bytes, 0u);
      }
      EXPECT_EQ(s.result.ignored.size(), header_ok ? 0u : 1u);
    }
  }
}

TEST_F(JournalRecovery, should_read_a_cut_file_through_the_reader_the_same_way_as_from_memory) {
  build(d.dir(), 30, 4, 8192);
  const auto path = segment_paths(d.dir()).back();
  const auto orig = read_journal(d.dir());
  const std::uint64_t end = record_end(orig.records.back());
  // Cut inside the last record, then at its start.
  std::filesystem::resize_file(path, end - 3);
  auto rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::torn_tail);
  EXPECT_EQ(rb.records.size(), orig.records.size() - 1);
  EXPECT_EQ(rb.result.damaged_segment, path.string());
  EXPECT_EQ(rb.result.damage_offset, orig.records.back().offset);
  std::filesystem::resize_file(path, orig.records.back().offset);
  rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::clean) << rb.result.message;
  EXPECT_EQ(rb.records.size(), orig.records.size() - 1);
}

// --------------------------------------------------------------- damage --

TEST_F(JournalRecovery, should_never_return_a_bad_record_nor_crash_when_random_bytes_are_flipped) {
  build(d.dir(), 80, 5);
  const Images full = load_images(d.dir());
  ASSERT_GE(full.names.size(), 3u);
  const Scan orig = scan(full);
  ASSERT_EQ(orig.result.end, JournalEnd::clean);
  // The bytes that matter: each segment's header and records.
  std::vector<std::uint64_t> live_end(full.names.size(), kJournalSegmentHeaderSize);
  for (const auto& r : orig.records) {
    for (std::size_t i = 0; i < orig.result.segments.size(); ++i)
      if (orig.result.segments[i].index == r.segment_index) live_end[i] = record_end(r);
  }

  const std::uint32_t seed = 20240611;
  std::mt19937_64 rng(seed);
  int corrupt = 0, torn = 0, clean = 0, refused = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    Images bad = full;
    bool hit_live = false, hit_last_tail = false;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      const std::size_t seg = rng() % bad.names.size();
      auto& b = bad.bytes[seg];
      // Half the flips land in the live bytes, half anywhere in the file.
      const std::uint64_t pos = (rng() % 2 == 0) ? rng() % live_end[seg] : rng() % b.size();
      b[pos] ^= static_cast<std::byte>(1 + rng() % 255);
      if (pos < live_end[seg]) hit_live = true;
      else if (seg + 1 == bad.names.size()) hit_last_tail = true;
    }
    SCOPED_TRACE("seed " + std::to_string(seed) + ", iteration " + std::to_string(iter));
    const Scan s = scan(bad);
    // Whatever happened, what came out is a prefix of what went in.
    ASSERT_LE(s.records.size(), orig.records.size());
    for (std::size_t k = 0; k < s.records.size(); ++k) ASSERT_EQ(s.records[k], orig.records[k]) << "record " << k;
    if (s.threw) {
      ++refused;
      ASSERT_TRUE(s.records.empty()) << "a refused journal hands out nothing";
      continue;
    }
    if (hit_live) {
      ASSERT_LT(s.records.size(), orig.records.size()) << "damage went unnoticed";
      ASSERT_NE(s.result.end, JournalEnd::clean);
      ASSERT_FALSE(s.result.message.empty());
    } else {
      // Bytes past a bounded segment's end are superseded; bytes past the
      // last segment's end are a torn tail.
      ASSERT_EQ(s.records.size(), orig.records.size()) << s.result.message;
      ASSERT_EQ(s.result.end, hit_last_tail ? JournalEnd::torn_tail : JournalEnd::clean) << s.result.message;
    }
    corrupt += s.result.end == JournalEnd::corrupt;
    torn += s.result.end == JournalEnd::torn_tail;
    clean += s.result.end == JournalEnd::clean;
  }
  std::printf("[ journal  ] 3000 damaged journals: %d corrupt, %d torn tail, %d clean, %d refused\n", corrupt, torn,
              clean, refused);
  EXPECT_GT(corrupt, 0);
  EXPECT_GT(torn, 0);
}

TEST_F(JournalRecovery, should_stop_at_a_bad_record_in_a_middle_segment_and_say_which_segment_and_offset) {
  build(d.dir(), 80, 5);
  const auto paths = segment_paths(d.dir());
  ASSERT_GE(paths.size(), 3u);
  const auto orig = read_journal(d.dir());
  // The third record of the second segment.
  std::size_t k = 0;
  while (orig.records[k].segment_index != orig.result.segments[1].index) ++k;
  k += 2;
  auto b = file_bytes(paths[1]);
  b[orig.records[k].offset + kJournalRecordHeaderSize] ^= std::byte{0x10};
  write_file(paths[1], b);

  const auto rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::corrupt);
  EXPECT_EQ(rb.records.size(), k);
  EXPECT_EQ(rb.result.damaged_segment, paths[1].string());
  EXPECT_EQ(rb.result.damage_offset, orig.records[k].offset);
  EXPECT_NE(rb.result.message.find(paths[1].filename().string()), std::string::npos) << rb.result.message;
  EXPECT_NE(rb.result.message.find("offset " + std::to_string(orig.records[k].offset)), std::string::npos)
      << rb.result.message;
  EXPECT_NE(rb.result.message.find("checksum"), std::string::npos) << rb.result.message;
  EXPECT_NE(rb.result.message.find("later segment"), std::string::npos) << rb.result.message;
  EXPECT_EQ(rb.result.next_seq, orig.records[k].seq);

  // And the writer does not build on a damaged log.
  try {
    (void)JournalWriter::try_acquire(d.dir(), small_journal());
    ADD_FAILURE() << "the writer continued a corrupt journal";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::corrupt);
    EXPECT_NE(std::string(e.what()).find(paths[1].filename().string()), std::string::npos) << e.what();
  }
}

TEST_F(JournalRecovery, should_report_a_missing_middle_segment) {
  build(d.dir(), 80, 5);
  const auto paths = segment_paths(d.dir());
  ASSERT_GE(paths.size(), 3u);
  std::filesystem::remove(paths[1]);
  const auto rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::corrupt);
  EXPECT_NE(rb.result.message.find("missing"), std::string::npos) << rb.result.message;
  ASSERT_EQ(rb.result.segments.size(), 1u);
}

TEST_F(JournalRecovery, should_report_a_damaged_header_of_a_middle_segment_as_corruption) {
  build(d.dir(), 80, 5);
  const auto paths = segment_paths(d.dir());
  ASSERT_GE(paths.size(), 3u);
  auto b = file_bytes(paths[1]);
  b[30] ^= std::byte{1};  // inside "first seq"
  write_file(paths[1], b);
  const auto rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::corrupt);
  EXPECT_NE(rb.result.message.find("checksum"), std::string::npos) << rb.result.message;
  EXPECT_NE(rb.result.message.find(paths[1].filename().string()), std::string::npos) << rb.result.message;
}

TEST_F(JournalRecovery, should_call_damage_followed_by_a_later_batch_corruption_and_damage_in_the_last_batch_a_torn_tail) {
  {
    auto w = JournalWriter::try_acquire(d.dir(), small_journal(1 << 16));
    for (std::uint64_t seq = 0; seq < 30; ++seq) {
      (void)w->append_message(body_for(seq), time_for(seq));
      if (seq % 10 == 9) (void)w->flush();  // batches 0..9, 10..19, 20..29
    }
    w->close();
  }
  const auto path = segment_paths(d.dir()).back();
  const auto orig = read_journal(d.dir());
  const auto msg = [&](std::uint64_t seq) {
    for (const auto& r : orig.records)
      if (r.type == JournalRecordType::message && r.seq == seq) return r;
    throw std::runtime_error("no message " + std::to_string(seq));
  };
  const auto original = file_bytes(path);

  // Message 15 is in the middle batch: a later batch proves it was acknowledged.
  auto b = original;
  b[msg(15).offset + 9] ^= std::byte{0x01};
  write_file(path, b);
  auto rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::corrupt);
  EXPECT_NE(rb.result.message.find("later batch"), std::string::npos) << rb.result.message;
  EXPECT_EQ(rb.result.next_seq, 15u);

  // Message 25 is in the last batch: its survivors 26..29 are discarded as a torn tail.
  b = original;
  b[msg(25).offset + 30] ^= std::byte{0x01};
  write_file(path, b);
  rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::torn_tail) << rb.result.message;
  EXPECT_EQ(rb.result.next_seq, 25u);
  EXPECT_EQ(rb.result.discarded_records, 4u);
  EXPECT_EQ(rb.result.damage_offset, msg(25).offset);
  EXPECT_EQ(rb.result.discarded_bytes, nonzero_end(original, msg(25).offset, record_end(msg(29))) - msg(25).offset);
  EXPECT_NE(rb.result.message.find("torn tail"), std::string::npos) << rb.result.message;

  // A hole (a page of the last batch never written) before survivors: torn too.
  b = original;
  std::fill(b.begin() + static_cast<std::ptrdiff_t>(msg(22).offset),
            b.begin() + static_cast<std::ptrdiff_t>(msg(24).offset), std::byte{0});
  write_file(path, b);
  rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::torn_tail) << rb.result.message;
  EXPECT_EQ(rb.result.next_seq, 22u);
  EXPECT_EQ(rb.result.discarded_records, 6u);  // 24..29
}

TEST_F(JournalRecovery, should_read_a_zero_filled_preallocated_tail_as_the_end_of_the_log) {
  auto o = small_journal(64 * 1024);
  o.zero_fill = true;
  {
    auto w = JournalWriter::try_acquire(d.dir(), o);
    for (std::uint64_t seq = 0; seq < 20; ++seq) (void)w->append_message(body_for(seq), time_for(seq));
    w->close();
  }
  const auto path = segment_paths(d.dir()).back();
  EXPECT_EQ(std::filesystem::file_size(path), 64u * 1024);
  const auto rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::clean) << rb.result.message;
  EXPECT_TRUE(messages_are_contiguous(rb.records, 0, 20));
  const auto b = file_bytes(path);
  EXPECT_EQ(nonzero_end(b, rb.result.segments.back().end_offset, b.size()), 0u) << "the tail is zeros";
}

TEST_F(JournalRecovery, should_report_zeros_in_the_middle_of_a_bounded_segment_as_corruption) {
  build(d.dir(), 80, 5);
  const auto paths = segment_paths(d.dir());
  const auto orig = read_journal(d.dir());
  auto b = file_bytes(paths[0]);
  const auto& seg0 = orig.result.segments[0];
  // Zero the last record of the first segment.
  const ReadRecord* lastrec = nullptr;
  for (const auto& r : orig.records)
    if (r.segment_index == seg0.index) lastrec = &r;
  std::fill(b.begin() + static_cast<std::ptrdiff_t>(lastrec->offset), b.begin() + static_cast<std::ptrdiff_t>(seg0.end_offset),
            std::byte{0});
  write_file(paths[0], b);
  const auto rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::corrupt);
  EXPECT_NE(rb.result.message.find("end early"), std::string::npos) << rb.result.message;
}

// ------------------------------------------------- identity and version --

TEST_F(JournalRecovery, should_refuse_a_segment_with_the_wrong_magic) {
  build(d.dir(), 10, 5);
  const auto path = segment_paths(d.dir()).front();
  auto b = file_bytes(path);
  std::memcpy(b.data(), "NOTAWAL!", 8);
  write_file(path, b);
  try {
    (void)read_journal(d.dir());
    ADD_FAILURE() << "read a segment with the wrong magic";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::incompatible);
    EXPECT_NE(std::string(e.what()).find("ACKWAL01"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path.filename().string()), std::string::npos) << e.what();
  }
}

TEST_F(JournalRecovery, should_refuse_a_segment_of_another_format_version) {
  build(d.dir(), 10, 5);
  patch_header(segment_paths(d.dir()).front(), [](JournalSegmentHeader& h) { h.version = 2; });
  try {
    (void)read_journal(d.dir());
    ADD_FAILURE() << "read a segment of version 2";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::incompatible);
    EXPECT_NE(std::string(e.what()).find("version 2 is not supported"), std::string::npos) << e.what();
  }
}

TEST_F(JournalRecovery, should_refuse_the_journal_of_another_queue_and_a_mix_of_two_queues) {
  build(d.dir(), 80, 5);
  EXPECT_NO_THROW((void)read_journal(d.dir(), {.queue_id = kTestQueueId}));
  try {
    (void)read_journal(d.dir(), {.queue_id = 42});
    ADD_FAILURE() << "read the journal of another queue";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::incompatible);
    EXPECT_NE(std::string(e.what()).find("not to queue id 42"), std::string::npos) << e.what();
  }
  patch_header(segment_paths(d.dir())[1], [](JournalSegmentHeader& h) { h.queue_id = 7; });
  int visited = 0;
  try {
    (void)JournalReader::read(d.dir(), {}, [&](const JournalRecordView&) { ++visited; });
    ADD_FAILURE() << "read a journal mixing two queues";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::incompatible);
    EXPECT_NE(std::string(e.what()).find("queue id 7"), std::string::npos) << e.what();
  }
  EXPECT_EQ(visited, 0) << "headers are checked before any record is handed out";
}

TEST_F(JournalRecovery, should_say_so_when_the_journal_directory_does_not_exist) {
  try {
    (void)read_journal(d.dir() / "nope");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::not_found);
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos);
  }
}

// ------------------------------------------------ takeover and repair --

TEST_F(JournalRecovery, should_continue_after_a_torn_tail_in_a_new_segment_that_supersedes_it) {
  build(d.dir(), 30, 10, 1 << 16);
  const auto path = segment_paths(d.dir()).back();
  const auto orig = read_journal(d.dir());
  // Tear the last batch (messages 20..29): garbage from message 27 on.
  auto b = file_bytes(path);
  std::uint64_t at = 0;
  for (const auto& r : orig.records)
    if (r.type == JournalRecordType::message && r.seq == 27) at = r.offset;
  for (std::uint64_t i = at + 5; i < at + 300; ++i) b[i] = static_cast<std::byte>(i * 13);
  write_file(path, b);

  auto w = JournalWriter::try_acquire(d.dir(), small_journal(1 << 16));
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->recovery().end, JournalEnd::torn_tail) << w->recovery().message;
  EXPECT_EQ(w->next_seq(), 27u);
  for (std::uint64_t seq = 27; seq < 40; ++seq) (void)w->append_message(body_for(seq), time_for(seq));
  EXPECT_EQ(w->flush(), 40u);
  w->close();

  const auto rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::clean) << rb.result.message;
  EXPECT_TRUE(messages_are_contiguous(rb.records, 0, 40));
  EXPECT_EQ(file_bytes(path), b) << "the torn bytes were superseded, not rewritten";
}

TEST_F(JournalRecovery, should_ignore_a_last_segment_whose_header_was_never_written) {
  build(d.dir(), 20, 5);
  const auto paths = segment_paths(d.dir());
  const auto rb0 = read_journal(d.dir());
  // A roll-over that crashed after the rename, before its first flush.
  const auto& last = rb0.result.segments.back();
  const auto ghost = d.dir() / journal_segment_name(rb0.result.next_seq, last.index + 1);
  write_file(ghost, std::vector<std::byte>(4096));
  auto rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::clean) << rb.result.message;
  ASSERT_EQ(rb.result.ignored.size(), 1u);
  EXPECT_EQ(rb.records.size(), rb0.records.size());

  auto w = JournalWriter::try_acquire(d.dir(), small_journal());
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->next_seq(), 20u);
  (void)w->append_message(body_for(20), time_for(20));
  EXPECT_EQ(w->flush(), 21u);
  w->close();
  rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::clean) << rb.result.message;
  EXPECT_TRUE(rb.result.ignored.empty());
  EXPECT_TRUE(messages_are_contiguous(rb.records, 0, 21));
}

TEST_F(JournalRecovery, should_zero_a_torn_tail_on_repair_and_only_when_no_writer_holds_the_lock) {
  build(d.dir(), 30, 10, 1 << 16);
  const auto path = segment_paths(d.dir()).back();
  const auto orig = read_journal(d.dir());
  const std::uint64_t end = orig.result.segments.back().end_offset;
  auto b = file_bytes(path);
  for (std::uint64_t i = end + 16; i < end + 40; ++i) b[i] = std::byte{0x77};
  write_file(path, b);
  {
    const JournalFd holder = journal_try_lock(d.dir(), 0600);  // as a live writer would
    ASSERT_TRUE(holder);
    try {
      (void)read_journal(d.dir(), {.repair = true});
      ADD_FAILURE() << "repaired under a live writer";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("live writer"), std::string::npos) << e.what();
    }
  }
  auto rb = read_journal(d.dir(), {.repair = true});
  EXPECT_EQ(rb.result.end, JournalEnd::torn_tail);
  EXPECT_TRUE(rb.result.repaired);
  EXPECT_EQ(rb.result.damage_offset, end);
  EXPECT_EQ(rb.result.discarded_bytes, 40u);
  rb = read_journal(d.dir());
  EXPECT_EQ(rb.result.end, JournalEnd::clean) << rb.result.message;
  EXPECT_TRUE(messages_are_contiguous(rb.records, 0, 30));
  EXPECT_EQ(std::filesystem::file_size(path), 1u << 16) << "repair zeroes, it does not truncate";
}

}  // namespace ackring::testing
