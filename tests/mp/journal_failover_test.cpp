// The journal across processes: one writer at a time by flock, handed over
// when the holder is SIGKILLed, and a takeover that continues from the
// durable end with no gap and no duplicate seq, whether the dead writer was
// between batches, holding staged records, or in the middle of a flush.
//
// Writers run only in forked children (a writer owns a helper thread, and a
// fork of a threaded parent is not something to build on); the parent reads
// the journal and the children's reports from a pipe.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "journal_test_util.hpp"

using namespace ackring::detail;
using ackring::testing::body_for;
using ackring::testing::messages_are_contiguous;
using ackring::testing::read_journal;
using ackring::testing::small_journal;
using ackring::testing::TempJournalDir;
using ackring::testing::time_for;

namespace {

constexpr std::uint64_t kMarker = UINT64_MAX;

// A pipe the child reports 8-byte values on.
class Reports {
 public:
  Reports() {
    if (::pipe(fds_) != 0) throw std::runtime_error("pipe failed");
  }
  ~Reports() {
    close_read();
    close_write();
  }
  void close_read() {
    if (fds_[0] >= 0) ::close(fds_[0]);
    fds_[0] = -1;
  }
  void close_write() {
    if (fds_[1] >= 0) ::close(fds_[1]);
    fds_[1] = -1;
  }
  // Child side.
  void send(std::uint64_t v) const { (void)!::write(fds_[1], &v, sizeof v); }
  // Parent side: the next value, or nothing at end of file or after `timeout`.
  std::optional<std::uint64_t> next(std::chrono::milliseconds timeout = std::chrono::seconds(20)) const {
    pollfd p{fds_[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    std::uint64_t v;
    std::size_t got = 0;
    while (got < sizeof v) {
      const ssize_t n = ::read(fds_[0], reinterpret_cast<char*>(&v) + got, sizeof v - got);
      if (n <= 0) return std::nullopt;
      got += static_cast<std::size_t>(n);
    }
    return v;
  }

 private:
  int fds_[2] = {-1, -1};
};

// Runs `body` in a child; its return value is the exit code (exceptions: 99).
pid_t spawn(Reports* reports, const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (reports != nullptr) reports->close_read();
    int rc = 99;
    try {
      rc = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child %d: %s\n", ::getpid(), e.what());
    }
    ::_exit(rc);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
  return -2;
}

void kill_hard(pid_t pid) {
  ::kill(pid, SIGKILL);
  EXPECT_EQ(wait_exit(pid), 1000 + SIGKILL);
}

// Appends messages seq .. seq + n - 1 (bodies from body_for).
void append_n(JournalWriter& w, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t seq = w.next_seq();
    (void)w.append_message(body_for(seq), time_for(seq));
  }
}

}  // namespace

TEST(JournalFailover, should_refuse_a_second_writer_in_another_process_until_the_holder_is_SIGKILLed) {
  TempJournalDir d;
  const auto dir = d.dir();
  Reports r;
  const pid_t holder = spawn(&r, [&] {
    auto w = JournalWriter::try_acquire(dir, small_journal());
    r.send(w ? 1 : 0);
    for (;;) ::pause();
    return 0;
  });
  r.close_write();
  ASSERT_EQ(r.next(), std::optional<std::uint64_t>(1)) << "the first writer did not get the lock";

  const pid_t second = spawn(nullptr, [&] { return JournalWriter::try_acquire(dir, small_journal()) ? 1 : 0; });
  EXPECT_EQ(wait_exit(second), 0) << "a second process got the lock while the holder lives";

  kill_hard(holder);
  const pid_t third = spawn(nullptr, [&] { return JournalWriter::try_acquire(dir, small_journal()) ? 0 : 1; });
  EXPECT_EQ(wait_exit(third), 0) << "the lock was not released when its holder died";
}

TEST(JournalFailover, should_continue_from_the_durable_end_when_the_writer_dies_with_staged_records) {
  TempJournalDir d;
  const auto dir = d.dir();
  Reports r;
  const pid_t a = spawn(&r, [&] {
    auto w = JournalWriter::try_acquire(dir, small_journal(16 * 1024));
    if (!w) return 2;
    for (int batch = 0; batch < 30; ++batch) {
      append_n(*w, 10);
      r.send(w->flush());
    }
    append_n(*w, 7);  // staged, never flushed
    r.send(kMarker);
    for (;;) ::pause();
    return 0;
  });
  r.close_write();
  std::uint64_t durable = 0;
  for (;;) {
    const auto v = r.next();
    ASSERT_TRUE(v.has_value()) << "writer A stopped reporting";
    if (*v == kMarker) break;
    durable = *v;
  }
  ASSERT_EQ(durable, 300u);
  kill_hard(a);

  const pid_t b = spawn(nullptr, [&] {
    auto w = JournalWriter::try_acquire(dir, small_journal(16 * 1024));
    if (!w) return 2;
    if (w->next_seq() != durable) return 3;  // staged records of A never reached the file
    if (w->recovery().end != JournalEnd::clean) return 4;
    append_n(*w, 50);
    if (w->flush() != durable + 50) return 5;
    w->close();
    return 0;
  });
  ASSERT_EQ(wait_exit(b), 0);

  const auto rb = read_journal(dir);
  EXPECT_EQ(rb.result.end, JournalEnd::clean) << rb.result.message;
  EXPECT_TRUE(messages_are_contiguous(rb.records, 0, durable + 50));
}

TEST(JournalFailover, should_have_no_gap_and_no_duplicate_after_writers_are_SIGKILLed_mid_flush) {
  TempJournalDir d;
  const auto dir = d.dir();
  const std::uint32_t seed = 777;
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::uint64_t durable = 0;  // highest end any dead writer reported durable
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Reports r;
    const auto child_seed = static_cast<std::uint32_t>(rng());
    const pid_t w_pid = spawn(&r, [&] {
      auto w = JournalWriter::try_acquire(dir, small_journal(32 * 1024));
      if (!w) return 2;
      r.send(w->next_seq());
      std::mt19937 crng(child_seed);
      for (;;) {
        append_n(*w, 1 + crng() % 120);  // batches of 1 .. 120 records
        r.send(w->flush());
      }
      return 0;
    });
    r.close_write();
    const auto start = r.next();
    ASSERT_TRUE(start.has_value());
    // The new writer starts at or past everything reported durable; it may
    // start past it (a batch written but not yet reported when its writer
    // died is in the file, and the new writer makes it durable).
    EXPECT_GE(*start, durable);
    durable = *start;
    // Let it flush a few times, then kill it at a random moment.
    const int flushes = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < flushes; ++i) {
      const auto v = r.next();
      ASSERT_TRUE(v.has_value());
      durable = *v;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    kill_hard(w_pid);
    while (const auto v = r.next(std::chrono::milliseconds(0))) durable = std::max(durable, *v);
  }
  // A last writer closes the journal cleanly.
  Reports last;
  const pid_t closer = spawn(&last, [&] {
    auto w = JournalWriter::try_acquire(dir, small_journal(32 * 1024));
    if (!w) return 2;
    last.send(w->next_seq());
    w->close();
    return 0;
  });
  last.close_write();
  const auto end = last.next();
  ASSERT_EQ(wait_exit(closer), 0);
  ASSERT_TRUE(end.has_value());
  EXPECT_GE(*end, durable) << "a record reported durable was lost";

  const auto rb = read_journal(dir);
  EXPECT_EQ(rb.result.end, JournalEnd::clean) << rb.result.message;
  EXPECT_EQ(rb.result.next_seq, *end);
  EXPECT_TRUE(messages_are_contiguous(rb.records, 0, *end));
  std::printf("[ journal  ] 6 writers killed mid-flush; %llu messages in %zu segments survive, none twice\n",
              static_cast<unsigned long long>(*end), rb.result.segments.size());
}
