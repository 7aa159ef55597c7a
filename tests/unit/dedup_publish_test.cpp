#include <gtest/gtest.h>

#include <thread>

#include "ackring/ackring.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

// Each test runs on a fresh queue path and opens what it needs (QueueTest).
using DedupPublish = ackring::testing::QueueTest;
using ProcessOnce = ackring::testing::QueueTest;

TEST_F(DedupPublish, should_enqueue_a_keyed_message_once_and_answer_the_retry_with_its_seq) {
  auto& q = create({.capacity = 64, .max_message_size = 64});
  q.create_group("g");
  auto p = q.producer();
  const auto first = p.publish("payload", {.key = "order-42"});
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first.duplicate);
  const auto again = p.publish("payload", {.key = "order-42"});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, first.seq);
  EXPECT_EQ(q.stats().tail, 1u);
  EXPECT_EQ(q.stats().dedup.hits, 1u);
}

TEST_F(DedupPublish, should_still_answer_duplicate_after_the_first_message_was_acked) {
  auto& [q, c, p] = open({.capacity = 8, .max_message_size = 64});
  const auto first = p.publish("x", {.key = "k"});
  auto d = c.receive(100ms);
  ASSERT_TRUE(d);
  EXPECT_EQ(c.ack(*d), ackring::Status::ok);
  // Fill the ring past the slot so the original message is gone from it.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(p.publish("filler").ok());
    auto f = c.receive(100ms);
    ASSERT_TRUE(f);
    (void)c.ack(*f);
  }
  const auto again = p.publish("x", {.key = "k"});
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, first.seq);
}

TEST_F(DedupPublish, should_publish_again_once_the_window_has_passed) {
  auto& q = create({.capacity = 64, .max_message_size = 64, .dedup_window = 50ms});
  auto p = q.producer();
  ASSERT_FALSE(p.publish("x", {.key = "k"}).duplicate);
  std::this_thread::sleep_for(120ms);
  const auto again = p.publish("x", {.key = "k"});
  EXPECT_TRUE(again.ok());
  EXPECT_FALSE(again.duplicate);
}

TEST_F(DedupPublish, should_let_exactly_one_of_racing_threads_publish_a_key) {
  auto& q = create({.capacity = 1024, .max_message_size = 64});
  q.create_group("g");
  constexpr int kThreads = 4;
  constexpr int kKeys = 300;
  std::vector<std::thread> threads;
  std::atomic<int> fresh{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      auto p = q.producer();
      for (int k = 0; k < kKeys; ++k) {
        const std::string key = "key-" + std::to_string(k);
        const auto r = p.publish(key, {.key = key}, 5s);
        ASSERT_TRUE(r.ok()) << ackring::to_string(r.status);
        if (!r.duplicate) ++fresh;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(fresh.load(), kKeys);
  EXPECT_EQ(q.stats().tail, static_cast<std::uint64_t>(kKeys));
}

TEST_F(DedupPublish, should_refuse_with_dedup_full_when_every_entry_of_the_window_is_live) {
  auto& q = create({.capacity = 256, .max_message_size = 16, .dedup_entries = 16});
  auto p = q.producer();
  int refused = 0;
  for (int k = 0; k < 17; ++k)
    if (p.publish("x", {.key = "k" + std::to_string(k)}).status == ackring::Status::dedup_full) ++refused;
  EXPECT_EQ(refused, 1);  // a 16-entry table has one window: the 17th live key does not fit
  EXPECT_EQ(q.stats().dedup.full, 1u);
}

TEST_F(DedupPublish, should_evict_the_oldest_key_when_asked_to) {
  auto& q = create({.capacity = 256, .max_message_size = 16, .dedup_entries = 16,
                   .dedup_full_policy = ackring::DedupFullPolicy::evict_oldest});
  auto p = q.producer();
  ASSERT_TRUE(p.publish("x", {.key = "k0"}).ok());
  std::this_thread::sleep_for(12ms);  // entries keep coarse-clock ms (ticks up to 4 ms): make k0 strictly the oldest
  for (int k = 1; k < 17; ++k) ASSERT_TRUE(p.publish("x", {.key = "k" + std::to_string(k)}).ok());
  EXPECT_EQ(q.stats().dedup.evicted, 1u);
  EXPECT_FALSE(p.publish("x", {.key = "k0"}).duplicate);  // the evicted one is forgotten...
  EXPECT_EQ(q.stats().dedup.evicted, 2u);                  // ...and re-adding it evicted another
  EXPECT_EQ(q.stats().tail, 18u);
}

TEST_F(ProcessOnce, should_skip_a_redelivered_message_that_was_processed) {
  auto& [q, c, p] = open({.capacity = 64, .max_message_size = 64}, {.lease = 30ms});
  ASSERT_TRUE(p.publish("job", {.key = "job-1"}).ok());
  auto d = c.receive(100ms);
  ASSERT_TRUE(d);
  // Processed, but the ack is lost (we never send it): the lease expires.
  EXPECT_EQ(c.mark_processed(*d), ackring::Status::ok);
  std::this_thread::sleep_for(60ms);
  auto again = c.receive(200ms);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->deliveries(), 2u);
  int calls = 0;
  EXPECT_EQ(c.process_once(*again, [&](const ackring::Delivery&) { ++calls; }), ackring::Status::duplicate);
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(c.receive(50ms));  // acked by process_once
}

TEST_F(ProcessOnce, should_keep_records_of_different_groups_apart) {
  auto& q = create({.capacity = 64, .max_message_size = 64});
  auto a = q.consumer("a");
  auto b = q.consumer("b");
  auto p = q.producer();
  ASSERT_TRUE(p.publish("m").ok());
  auto da = a.receive(100ms);
  auto db = b.receive(100ms);
  ASSERT_TRUE(da && db);
  int calls = 0;
  EXPECT_EQ(a.process_once(*da, [&](const ackring::Delivery&) { ++calls; }), ackring::Status::ok);
  EXPECT_FALSE(b.is_processed(*db));
  EXPECT_EQ(b.process_once(*db, [&](const ackring::Delivery&) { ++calls; }), ackring::Status::ok);
  EXPECT_EQ(calls, 2);
}
