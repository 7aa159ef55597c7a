// A sync publisher in the process that holds the journal writes its own
// message to disk (durability.cpp, lead_flush): that process stalls or dies
// at "journal.lead_before_flush", holding the writer with records staged
// but not written. Nothing may be lost or handed out before it is durable.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>

#include "journal_fixture.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

constexpr int kMaxLeadPublishes = 1000;

// The child that holds the journal is the leader (fork_leader).
class JournalLead : public JournalProcessTest {
 protected:
  // A child that takes the journal, arms `action` at the leader's step and
  // publishes "a<i>" until one of its publishes has led a flush through the
  // step (the journal thread may flush a few itself first). Exit 0: every
  // publish that returned was durable.
  [[nodiscard]] Child fork_leader(fp::Action action) {
    return fork_child([this, action] {
      fp::reset_counts();  // counts of this child's own passes only
      set_journal_writer_enabled(true);
      auto q = Queue::open(tq_.path());
      if (!holds_journal(q)) return 4;
      auto p = q.producer();
      fp::arm("journal.lead_before_flush", action);
      for (int i = 0; i < kMaxLeadPublishes && fp::passes("journal.lead_before_flush") == 0; ++i) {
        const auto r = p.publish("a" + std::to_string(i), 30s);
        if (!r.ok() || q.stats().durable_seq <= r.seq) return 3;
      }
      return fp::passes("journal.lead_before_flush") != 0 ? 0 : 5;
    });
  }

  // "a0" .. "a<n-1>", the leader's messages in the order it published them.
  static std::set<std::string> leader_texts(std::size_t n) {
    std::set<std::string> want;
    for (std::size_t i = 0; i < n; ++i) want.insert("a" + std::to_string(i));
    return want;
  }
  static std::set<std::string> expected(std::size_t n, const std::string& extra) {
    std::set<std::string> want = leader_texts(n);
    want.insert(extra);
    return want;
  }
};

TEST_F(JournalLead, should_hand_out_nothing_staged_by_a_stalled_leader_and_lose_nothing_when_it_resumes) {
  auto q = Queue::create(tq_.path(), sync_options());
  auto c = q.consumer("g");
  Child leader = fork_leader(fp::Action::stall);
  ASSERT_EQ(wait_stopped_or_dead(leader, 20s), "stopped") << leader.describe();
  // The leader's message is committed in the ring but not on disk: the
  // messages before it come out, it does not.
  const std::uint64_t tail = q.stats().tail;
  const std::uint64_t durable = q.stats().durable_seq;
  ASSERT_EQ(durable + 1, tail) << "exactly the leader's own message is waiting for its flush";
  const auto before = receive_texts(c, q, durable);
  EXPECT_EQ(before, leader_texts(durable));
  EXPECT_FALSE(c.receive(50ms)) << "a message staged but not written was handed out";
  // Another process's sync publish is committed but cannot become durable
  // while the holder is stopped: it times out (after the 5 s a sync publish
  // waits at least), and is still delivered later.
  auto p = q.producer();
  EXPECT_EQ(p.publish("b", 200ms).status, Status::timeout);
  EXPECT_FALSE(c.receive(50ms));
  leader.kill(SIGCONT);
  ASSERT_TRUE(leader.wait_for(30s));
  EXPECT_TRUE(leader.exited_ok()) << leader.describe();
  const auto after = receive_texts(c, q, 2);
  std::set<std::string> all = before;
  all.insert(after.begin(), after.end());
  EXPECT_EQ(all, expected(tail, "b"));
}

TEST_F(JournalLead, should_journal_what_a_leader_that_died_before_its_write_left_committed) {
  auto q = Queue::create(tq_.path(), sync_options());
  auto c = q.consumer("g");
  Child leader = fork_leader(fp::Action::die);
  ASSERT_EQ(wait_stopped_or_dead(leader, 20s), "dead") << leader.describe();
  const std::uint64_t tail = q.stats().tail;
  ASSERT_EQ(q.stats().durable_seq + 1, tail) << "the dead leader's message was not written";
  // A process with a journal thread takes the lock over and journals the
  // committed message the leader staged but never wrote.
  set_journal_writer_enabled(true);
  auto takeover = Queue::open(tq_.path());
  auto p = takeover.producer();
  const auto b = p.publish("b", 10s);
  ASSERT_TRUE(b.ok()) << to_string(b.status);
  EXPECT_GT(q.stats().durable_seq, b.seq);
  EXPECT_EQ(receive_texts(c, q, tail + 1), expected(tail, "b"));
}

// A child forked from the process that holds the journal inherits a copy of
// its writer (and its lock's file description) but not its journal thread:
// its sync publishes must leave the journal to the parent, never write it
// beside the parent's thread.
TEST_F(JournalLead, should_leave_the_journal_to_the_parent_in_a_forked_child) {
  set_journal_writer_enabled(true);
  auto q = Queue::create(tq_.path(), sync_options());
  auto c = q.consumer("g");
  ASSERT_TRUE(holds_journal(q));
  auto p = q.producer();
  ASSERT_TRUE(p.publish("a0", 10s).ok());
  Child child = fork_child([&] {
    fp::reset_counts();  // the parent's own leads (a0) are in the copied counters
    auto cp = q.producer();
    for (int i = 0; i < 20; ++i) {
      const auto r = cp.publish("c" + std::to_string(i), 10s);
      if (!r.ok() || q.stats().durable_seq <= r.seq) return 3;
    }
    return fp::passes("journal.lead_before_flush") == 0 ? 0 : 6;  // 6: the child wrote the journal
  });
  ASSERT_TRUE(child.wait_for(60s));
  EXPECT_TRUE(child.exited_ok()) << child.describe();
  std::set<std::string> want{"a0"};
  for (int i = 0; i < 20; ++i) want.insert("c" + std::to_string(i));
  EXPECT_EQ(receive_texts(c, q, want.size()), want);
}

}  // namespace
}  // namespace ackring::testing
