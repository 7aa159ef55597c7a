// The sync journal thread, idle, spins for the next commit before it sleeps
// (durability.cpp, spin_for_commit). The process that holds the journal
// stalls or dies at "journal.idle_spin"; and publishers of another process
// are journaled, each message once and durable, while the thread spins.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>

#include "journal_fixture.hpp"
#include "queue/durability.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

// The child that holds the journal spins (fork_holder).
class JournalSpin : public JournalProcessTest {
 protected:
  void TearDown() override {
    JournalProcessTest::TearDown();
    detail::set_journal_spin_ns(250'000);
  }

  // A child that takes the journal with `action` armed at the spin's first
  // pass, then waits until the parent's message ("b", seq 0) is durable.
  [[nodiscard]] Child fork_holder(fp::Action action) {
    return fork_child([this, action] {
      fp::reset_counts();
      detail::set_journal_spin_ns(250'000);
      fp::arm("journal.idle_spin", action);  // before the journal thread starts: its first idle spell spins
      set_journal_writer_enabled(true);
      auto q = Queue::open(tq_.path());
      if (!holds_journal(q)) return 4;
      for (int i = 0; i < 30'000 && q.stats().durable_seq == 0; ++i) ::usleep(1000);
      return q.stats().durable_seq == 1 ? 0 : 3;
    });
  }

  // With the holder stopped or dead nothing becomes durable: a sync publish
  // of "b" times out (committed, not durable) and nothing is handed out.
  static void publish_b_while_nobody_journals(Queue& q, Consumer& c) {
    auto p = q.producer();
    EXPECT_EQ(p.publish("b", std::chrono::milliseconds(200)).status, Status::timeout);
    EXPECT_EQ(q.stats().durable_seq, 0u);
    EXPECT_FALSE(c.receive(std::chrono::milliseconds(50)));
  }
};

// A spin of a whole second, so that the journal thread spins through the
// publisher's run (were the machine to stall it longer, it sleeps and is
// woken as before: the verdict is the same either way).
TEST_F(JournalSpin, should_journal_every_commit_of_another_process_while_the_journal_thread_spins) {
  fp::reset_counts();
  detail::set_journal_spin_ns(1'000'000'000);
  set_journal_writer_enabled(true);
  auto q = Queue::create(tq_.path(), sync_options());
  auto c = q.consumer("g");
  ASSERT_TRUE(holds_journal(q));
  constexpr int kMessages = 200;
  Child publisher = fork_child([this] {
    set_journal_writer_enabled(false);  // the parent keeps the journal
    auto pq = Queue::open(tq_.path());
    auto p = pq.producer();
    for (int i = 0; i < kMessages; ++i) {
      const auto r = p.publish("c" + std::to_string(i), 10s);
      if (!r.ok() || pq.stats().durable_seq <= r.seq) return 3;
    }
    return 0;
  });
  std::set<std::string> want;
  for (int i = 0; i < kMessages; ++i) want.insert("c" + std::to_string(i));
  EXPECT_EQ(receive_texts(c, q, want.size()), want);
  ASSERT_TRUE(publisher.wait_for(60s));
  EXPECT_TRUE(publisher.exited_ok()) << publisher.describe();
  EXPECT_GT(fp::passes("journal.idle_spin"), 0u) << "the journal thread never spun";
}

TEST_F(JournalSpin, should_journal_a_commit_made_while_the_spinning_holder_was_stalled_once_it_resumes) {
  auto q = Queue::create(tq_.path(), sync_options());
  auto c = q.consumer("g");
  Child holder = fork_holder(fp::Action::stall);
  ASSERT_EQ(wait_stopped_or_dead(holder, 20s), "stopped") << holder.describe();
  publish_b_while_nobody_journals(q, c);
  holder.kill(SIGCONT);
  EXPECT_EQ(receive_texts(c, q, 1), std::set<std::string>{"b"});
  ASSERT_TRUE(holder.wait_for(60s));
  EXPECT_TRUE(holder.exited_ok()) << holder.describe();
}

TEST_F(JournalSpin, should_journal_a_commit_that_a_holder_dead_while_spinning_left_once_another_takes_over) {
  auto q = Queue::create(tq_.path(), sync_options());
  auto c = q.consumer("g");
  Child holder = fork_holder(fp::Action::die);
  ASSERT_EQ(wait_stopped_or_dead(holder, 20s), "dead") << holder.describe();
  publish_b_while_nobody_journals(q, c);
  // A process with a journal thread takes the lock over and journals "b".
  set_journal_writer_enabled(true);
  auto takeover = Queue::open(tq_.path());
  EXPECT_EQ(receive_texts(c, q, 1), std::set<std::string>{"b"});
  EXPECT_GT(q.stats().durable_seq, 0u);
}

}  // namespace
}  // namespace ackring::testing
