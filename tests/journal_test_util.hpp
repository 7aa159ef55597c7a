// Helpers shared by the journal tests: a private journal directory on a real
// file system, deterministic message bodies, and a reader that copies the
// records out.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ackring/queue.hpp"
#include "journal/journal_reader.hpp"
#include "journal/journal_writer.hpp"
#include "test_util.hpp"

namespace ackring::testing {

// Polls until stats().durable_seq >= want or the timeout.
[[nodiscard]] inline bool wait_durable_seq(const Queue& q, std::uint64_t want,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (q.stats().durable_seq >= want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

inline constexpr std::uint64_t kTestQueueId = 0x5eed'0000'0000'0001ull;

// The fixture of the journal tests: a fresh journal directory, the journal
// itself in d.dir(), removed after the test.
class JournalTest : public ::testing::Test {
 protected:
  TempJournalDir d;
};

// Small segments so that a few hundred records span several of them.
inline detail::JournalOptions small_journal(std::uint64_t segment_size = 8192) {
  detail::JournalOptions o;
  o.queue_id = kTestQueueId;
  o.segment_size = segment_size;
  o.staging_size = 64 * 1024;
  return o;
}

// The body of message `seq`: its length (0 .. 96) and bytes follow from seq,
// so any process can check any record.
inline std::vector<std::byte> body_for(std::uint64_t seq) {
  std::vector<std::byte> b((seq * 37) % 97);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::byte>((seq * 131 + i * 7 + 1) & 0xff);
  return b;
}
inline std::uint64_t time_for(std::uint64_t seq) { return 1'700'000'000'000'000'000ull + seq; }

// A record as read back, with its payload copied.
struct ReadRecord {
  detail::JournalRecordType type{};
  std::uint16_t flags = 0;
  std::uint64_t seq = 0;
  std::vector<std::byte> payload;
  std::uint64_t segment_index = 0;
  std::uint64_t offset = 0;
  bool operator==(const ReadRecord&) const = default;
};

inline ReadRecord copy_record(const detail::JournalRecordView& r) {
  return {r.type, r.flags, r.seq, {r.payload.begin(), r.payload.end()}, r.segment_index, r.offset};
}

struct ReadBack {
  detail::JournalScanResult result;
  std::vector<ReadRecord> records;
};

inline ReadBack read_journal(const std::filesystem::path& dir, const detail::JournalReadOptions& o = {}) {
  ReadBack rb;
  rb.result = detail::JournalReader::read(dir, o, [&](const detail::JournalRecordView& r) {
    rb.records.push_back(copy_record(r));
  });
  return rb;
}

// Checks that `records` holds the messages first..end-1 (bodies from
// body_for), each exactly once and in order, with anything else (skips,
// control records) allowed in between only where it consumes no seq.
inline ::testing::AssertionResult messages_are_contiguous(const std::vector<ReadRecord>& records,
                                                          std::uint64_t first, std::uint64_t end) {
  std::uint64_t expect = first;
  for (const auto& r : records) {
    if (r.type == detail::JournalRecordType::skip) {
      std::uint64_t count = 0;
      if (!detail::decode_skip(r.payload, count)) return ::testing::AssertionFailure() << "bad skip";
      if (r.seq != expect) return ::testing::AssertionFailure() << "skip at seq " << r.seq << ", expected " << expect;
      expect += count;
      continue;
    }
    if (r.type != detail::JournalRecordType::message) continue;
    if (r.seq != expect)
      return ::testing::AssertionFailure() << "message seq " << r.seq << " where " << expect
                                           << " was expected (gap or duplicate)";
    detail::JournalMessageView m;
    if (!detail::decode_message(r.payload, r.flags, m)) return ::testing::AssertionFailure() << "bad message";
    const auto want = body_for(r.seq);
    if (m.body.size() != want.size() || !std::equal(want.begin(), want.end(), m.body.begin()))
      return ::testing::AssertionFailure() << "message " << r.seq << " has the wrong body";
    if (m.publish_time_ns != time_for(r.seq))
      return ::testing::AssertionFailure() << "message " << r.seq << " has the wrong publish time";
    ++expect;
  }
  if (expect != end) return ::testing::AssertionFailure() << "messages end before seq " << expect << ", not " << end;
  return ::testing::AssertionSuccess();
}

// The segment files of a journal, in order.
inline std::vector<std::filesystem::path> segment_paths(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& f : detail::journal_list_segments(dir)) out.push_back(dir / f.name);
  return out;
}

}  // namespace ackring::testing
