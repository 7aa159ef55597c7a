#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ackring/ackring.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {

// A queue whose publishes return once their records are on disk; its
// journal is in journal().
class SyncDurability : public QueueTest {
 protected:
  [[nodiscard]] QueueOptions sync_options() {
    return {.capacity = 64, .max_message_size = 64, .durability = Durability::sync,
            .journal_dir = journal().root().string()};
  }
};

TEST_F(SyncDurability, should_return_from_publish_only_after_the_record_is_durable) {
  auto& q = create(sync_options());
  q.create_group("g");
  auto p = q.producer();
  for (int i = 0; i < 20; ++i) {
    const auto r = p.publish("m" + std::to_string(i), 5s);
    ASSERT_TRUE(r.ok()) << ackring::to_string(r.status);
    EXPECT_GT(q.stats().durable_seq, r.seq);  // write-ahead: on disk before publish returned
  }
  const auto t = p.try_publish("last");
  ASSERT_TRUE(t.ok());
  EXPECT_GT(q.stats().durable_seq, t.seq);
}

TEST_F(SyncDurability, should_hand_consumers_only_durable_messages) {
  auto& [q, c, p] = open(sync_options());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(p.publish("m", 5s).ok());
    auto d = c.receive(2s);
    ASSERT_TRUE(d);
    EXPECT_LT(d->seq(), q.stats().durable_seq);
    EXPECT_EQ(c.ack(*d), ackring::Status::ok);
  }
}

// A keyed publish goes the same way (its commit wake left to wait_durable,
// which flushes in this thread): durable on return, and its retry is a
// duplicate of the same seq.
TEST_F(SyncDurability, should_return_from_a_keyed_publish_only_after_the_record_is_durable) {
  auto& q = create(sync_options());
  auto c = q.consumer("g");
  ASSERT_TRUE(holds_journal(q));
  auto p = q.producer();
  for (int i = 0; i < 10; ++i) {
    const auto r = p.publish("m" + std::to_string(i), PublishOptions{.key = "k" + std::to_string(i)}, 5s);
    ASSERT_TRUE(r.ok()) << ackring::to_string(r.status);
    EXPECT_FALSE(r.duplicate);
    EXPECT_GT(q.stats().durable_seq, r.seq);
  }
  const auto again = p.publish("m0", PublishOptions{.key = "k0"}, 5s);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, 0u);
  for (int i = 0; i < 10; ++i) {
    auto d = c.receive(2s);
    ASSERT_TRUE(d);
    EXPECT_EQ(text_of(d->payload()), "m" + std::to_string(i));
    EXPECT_EQ(c.ack(*d), Status::ok);
  }
}

// In the process that holds the journal, a sync publisher writes its own
// message to disk unless a flush is under way (then it waits for that one):
// threads publishing at once each return only once their message is durable,
// and every message arrives once, by content.
TEST_F(SyncDurability, should_make_each_message_of_concurrent_publishers_in_the_journal_process_durable) {
  auto& q = create({.capacity = 256, .max_message_size = 64, .durability = Durability::sync,
                    .journal_dir = journal().root().string()});
  auto c = q.consumer("g");
  ASSERT_TRUE(holds_journal(q));
  constexpr int kThreads = 4, kEach = 40;
  std::atomic<int> not_durable{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      auto p = q.producer();
      for (int i = 0; i < kEach; ++i) {
        const auto r = p.publish("t" + std::to_string(t) + "-" + std::to_string(i), 10s);
        if (!r.ok()) ++failed;
        else if (q.stats().durable_seq <= r.seq) ++not_durable;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(not_durable.load(), 0) << "a publish returned before its record was durable";
  std::set<std::string> want, got;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kEach; ++i) want.insert("t" + std::to_string(t) + "-" + std::to_string(i));
  for (auto& d : receive_n(c, want.size())) {
    EXPECT_TRUE(got.insert(text_of(d.payload())).second) << "delivered twice: " << text_of(d.payload());
    EXPECT_EQ(c.ack(d), Status::ok);
  }
  EXPECT_EQ(got, want);
}

}  // namespace ackring::testing
