// Durability across processes: the journal writer is SIGKILLed mid-run and
// another process takes over (durable_seq keeps advancing, the journal has
// no gap), and a process that crashes after its messages became durable
// leaves a journal from which Queue::recover rebuilds the queue.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "ackring/ackring.hpp"
#include "queue/durability.hpp"
#include "durability_mp_util.hpp"
#include "journal/journal_reader.hpp"
#include "journal/journal_records.hpp"
#include "journal_test_util.hpp"
#include "process_util.hpp"
#include "test_util.hpp"

namespace ackring {
namespace {

using namespace std::chrono_literals;
using testing::TempJournalDir;
using testing::journal_holder;
using testing::NoThreadsInParent;
using testing::TempQueue;

std::string text_for(std::uint64_t i) { return "m" + std::to_string(i) + "-" + std::string(i % 23, 'z'); }

bool wait_until(const std::function<bool()>& f, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

TEST(DurabilityMp, should_let_another_process_take_over_the_journal_without_a_gap_when_the_writer_is_killed) {
  NoThreadsInParent guard;
  TempJournalDir jd;
  TempQueue tq;
  QueueOptions o = testing::small_options(64, 64);
  o.durability = Durability::sync;
  o.journal_dir = jd.root().string();
  auto q = Queue::create(tq.path(), o);
  q.create_group("g");
  auto c = q.consumer("g");
  auto p = q.producer();

  constexpr std::uint64_t kRounds = 4, kPerRound = 150;
  std::uint64_t published = 0;
  auto active = journal_holder(tq.path());
  ASSERT_TRUE(wait_until([&] { return q.stats().journal_pid == static_cast<std::uint32_t>(active.pid()); }, 10s));
  for (std::uint64_t round = 0; round < kRounds; ++round) {
    // A standby process retries the lock; the active writer is SIGKILLed in
    // the middle of the round and the standby must take over (the ring of 64
    // stops moving without a journal writer: slots wait for durability).
    auto standby = journal_holder(tq.path());
    for (std::uint64_t i = 0; i < kPerRound; ++i) {
      auto r = p.publish(text_for(published), 10s);
      ASSERT_TRUE(r.ok()) << published << ": " << to_string(r.status);
      ASSERT_EQ(r.seq, published);
      ++published;
      auto d = c.receive(5s);
      ASSERT_TRUE(d.has_value());
      ASSERT_EQ(c.ack(*d), Status::ok);
      if (i == kPerRound / 2) active.kill(SIGKILL);
    }
    ASSERT_TRUE(active.wait_for(10s));
    ASSERT_TRUE(wait_until([&] { return q.stats().journal_pid == static_cast<std::uint32_t>(standby.pid()); }, 10s))
        << "round " << round << ": the standby did not take the journal over";
    active = std::move(standby);
  }
  auto& last = active;
  ASSERT_TRUE(wait_until([&] { return q.stats().durable_seq >= published; }, 10s))
      << "durable_seq " << q.stats().durable_seq << " of " << published;
  last.kill(SIGKILL);
  ASSERT_TRUE(last.wait_for(10s));

  // Retention deleted segments below the group's floor (all acked): the
  // journal starts somewhere, and from there it must have no gap.
  std::uint64_t expect = ~0ull;
  std::uint64_t messages = 0;
  bool ok = true;
  auto res = detail::JournalReader::read(jd.root() / std::filesystem::path(tq.path()).filename(), {},
                                         [&](const detail::JournalRecordView& v) {
    if (v.type == detail::JournalRecordType::skip) {
      ADD_FAILURE() << "unexpected skip at " << v.seq;
      ok = false;
      return;
    }
    if (v.type != detail::JournalRecordType::message) return;
    detail::JournalMessageView m;
    ASSERT_TRUE(detail::decode_message(v.payload, v.flags, m));
    if (expect == ~0ull) expect = v.seq;
    ++messages;
    if (v.seq != expect) {
      ADD_FAILURE() << "message " << v.seq << " where " << expect << " was expected";
      ok = false;
    }
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.body.data()), m.body.size()), text_for(v.seq));
    expect = v.seq + 1;
  });
  EXPECT_TRUE(ok);
  EXPECT_EQ(expect, published);
  EXPECT_GT(messages, 0u);
  EXPECT_EQ(res.next_seq, published);
  EXPECT_NE(res.end, detail::JournalEnd::corrupt) << res.message;
}

TEST(DurabilityMp, should_recover_the_queue_of_a_crashed_process_from_the_journal) {
  NoThreadsInParent guard;
  TempJournalDir jd;
  TempQueue tq;
  QueueOptions o = testing::small_options(256, 64);
  o.durability = Durability::sync;
  o.journal_dir = jd.root().string();
  constexpr std::uint64_t n = 120;
  // The child creates the queue, publishes, waits until every publish is
  // durable (what a sync publish will wait for), then dies without cleanup.
  auto child = testing::fork_child([&] {
    detail::set_durability_threads_enabled(true);
    auto q = Queue::create(tq.path(), o);
    q.create_group("g");
    auto p = q.producer();
    for (std::uint64_t i = 0; i < n; ++i) ACKRING_CHILD_CHECK(p.publish(text_for(i), 5s).ok(), 2);
    ACKRING_CHILD_CHECK(wait_until([&] { return q.stats().durable_seq >= n; }, 10s), 3);
    ::kill(::getpid(), SIGKILL);
    return 4;
  });
  ASSERT_TRUE(child.wait_for(30s));
  ASSERT_TRUE(child.killed_by(SIGKILL)) << child.describe();
  ASSERT_TRUE(Queue::destroy(tq.path()));  // the reboot

  RecoveryReport rep;
  auto q = Queue::recover(tq.path(), RecoverOptions{.journal_dir = jd.root(), .options = o}, &rep);
  EXPECT_EQ(rep.journal_next_seq, n);
  ASSERT_EQ(rep.groups, std::vector<std::string>{"g"});
  auto c = q.consumer("g", {.create_group = false});
  for (std::uint64_t i = 0; i < n; ++i) {
    auto d = c.receive(2s);
    ASSERT_TRUE(d.has_value()) << i;
    EXPECT_EQ(d->seq(), i);
    EXPECT_EQ(testing::text_of(d->payload()), text_for(i));
  }
}

}  // namespace
}  // namespace ackring
