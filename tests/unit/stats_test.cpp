// Stats: queue totals, per-group cursors and counters, members and producers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "ackring/ackring.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {

// Each test runs on a fresh queue path and opens what it needs (QueueTest).
using Stats = QueueTest;

TEST_F(Stats, should_report_the_path_capacity_and_max_message_size) {
  auto& q = create(small_options(32, 100));
  const auto s = q.stats();
  EXPECT_EQ(s.path, tq.path());
  EXPECT_EQ(s.capacity, 32u);
  EXPECT_EQ(s.max_message_size, 100u);
  EXPECT_EQ(s.tail, 0u);
  EXPECT_EQ(s.published, 0u);
  EXPECT_EQ(s.depth, 0u);
  EXPECT_EQ(s.aborted, 0u);
  EXPECT_TRUE(s.groups.empty());
}

TEST_F(Stats, should_report_published_tail_depth_and_min_floor) {
  auto& q = create(small_options(16));
  auto a = q.consumer("a");
  auto b = q.consumer("b");
  auto prod = q.producer();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(prod.try_publish("m").ok());
  auto s = q.stats();
  EXPECT_EQ(s.published, 5u);
  EXPECT_EQ(s.tail, 5u);
  EXPECT_EQ(s.min_floor, 0u);
  EXPECT_EQ(s.depth, 5u);

  auto ga = receive_n(a, 5, 30ms);
  ASSERT_EQ(ga.size(), 5u);
  EXPECT_EQ(a.ack_batch(ga), 5u);
  auto gb = receive_n(b, 2, 30ms);
  ASSERT_EQ(gb.size(), 2u);
  EXPECT_EQ(b.ack_batch(gb), 2u);
  s = q.stats();
  EXPECT_EQ(s.min_floor, 2u);  // b is the one behind
  EXPECT_EQ(s.depth, 3u);
  EXPECT_EQ(s.tail, 5u);
}

TEST_F(Stats, should_report_zero_depth_when_no_group_exists) {
  auto& q = create(small_options(16));
  auto prod = q.producer();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(prod.try_publish("m").ok());
  const auto s = q.stats();
  EXPECT_EQ(s.tail, 3u);
  EXPECT_EQ(s.published, 3u);
  EXPECT_EQ(s.depth, 0u);
}

TEST_F(Stats, should_report_floor_next_in_flight_lag_delivered_and_acked_per_group) {
  auto& [q, cons, prod] = open(small_options(16));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(prod.try_publish("m").ok());
  auto got = receive_n(cons, 3, 30ms);
  ASSERT_EQ(got.size(), 3u);
  ASSERT_EQ(cons.ack(got[0]), Status::ok);
  ASSERT_EQ(cons.ack(got[1]), Status::ok);
  const auto gs = group_stats(q, "g");
  EXPECT_EQ(gs.name, "g");
  EXPECT_EQ(gs.overflow, OverflowPolicy::block);
  EXPECT_EQ(gs.floor, 2u);
  EXPECT_EQ(gs.next, 3u);
  EXPECT_EQ(gs.in_flight, 1u);
  EXPECT_EQ(gs.lag, 3u);
  EXPECT_EQ(gs.delivered, 3u);
  EXPECT_EQ(gs.acked, 2u);
  EXPECT_EQ(gs.redelivered, 0u);
  EXPECT_EQ(gs.nacked, 0u);
  EXPECT_EQ(gs.dead_lettered, 0u);
  EXPECT_EQ(gs.dropped, 0u);
}

TEST_F(Stats, should_count_redeliveries_among_deliveries) {
  auto& [q, cons, prod] = open(small_options(), {.lease = 30ms});
  ASSERT_TRUE(prod.try_publish("m").ok());
  auto d1 = cons.try_receive();
  ASSERT_TRUE(d1);
  auto d2 = cons.receive(5s);
  ASSERT_TRUE(d2);
  ASSERT_EQ(d2->deliveries(), 2u);
  ASSERT_EQ(cons.ack(*d2), Status::ok);
  const auto gs = group_stats(q, "g");
  EXPECT_EQ(gs.delivered, 2u);
  EXPECT_EQ(gs.redelivered, 1u);
  EXPECT_EQ(gs.acked, 1u);
  EXPECT_EQ(gs.in_flight, 0u);
}

TEST_F(Stats, should_count_nacks) {
  auto& [q, cons, prod] = open(small_options());
  ASSERT_TRUE(prod.try_publish("m").ok());
  for (int i = 0; i < 2; ++i) {
    auto d = cons.try_receive();
    ASSERT_TRUE(d);
    ASSERT_EQ(cons.nack(d->receipt()), Status::ok);
  }
  EXPECT_EQ(cons.nack(ackring::Receipt{0, 1}), Status::lease_lost);  // not counted
  const auto gs = group_stats(q, "g");
  EXPECT_EQ(gs.nacked, 2u);
  EXPECT_EQ(gs.delivered, 2u);
  EXPECT_EQ(gs.redelivered, 1u);
}

TEST_F(Stats, should_count_dead_letters) {
  auto& [q, cons, prod] = open(small_options());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(prod.try_publish("m").ok());
  for (int i = 0; i < 2; ++i) {
    auto d = cons.try_receive();
    ASSERT_TRUE(d);
    ASSERT_EQ(cons.reject(d->receipt()), Status::ok);
  }
  const auto gs = group_stats(q, "g");
  EXPECT_EQ(gs.dead_lettered, 2u);
  EXPECT_EQ(gs.acked, 0u);
  EXPECT_EQ(gs.floor, 2u);
  EXPECT_EQ(gs.in_flight, 0u);
  // The dead-letter queue has its own stats.
  const auto dlq = Queue::open(tq.dlq_path()).stats();
  EXPECT_EQ(dlq.published, 2u);
  EXPECT_EQ(dlq.depth, 2u);
}

TEST_F(Stats, should_list_members_with_their_pid_liveness_and_leases) {
  auto& q = create(small_options(16));
  auto m1 = q.consumer("g");
  auto m2 = q.consumer("g");
  auto prod = q.producer();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(prod.try_publish("m").ok());
  auto by1 = receive_n(m1, 2, 30ms);
  auto by2 = receive_n(m2, 1, 30ms);
  ASSERT_EQ(by1.size(), 2u);
  ASSERT_EQ(by2.size(), 1u);
  ASSERT_EQ(m1.ack(by1[0]), Status::ok);
  const auto gs = group_stats(q, "g");
  ASSERT_EQ(gs.members.size(), 2u);
  for (const auto& m : gs.members) {
    EXPECT_EQ(m.pid, ::getpid());
    EXPECT_TRUE(m.alive);
    if (m.index == m1.member_index()) {
      EXPECT_EQ(m.delivered, 2u);
      EXPECT_EQ(m.acked, 1u);
      EXPECT_EQ(m.in_flight, 1u);
    } else {
      EXPECT_EQ(m.index, m2.member_index());
      EXPECT_EQ(m.delivered, 1u);
      EXPECT_EQ(m.acked, 0u);
      EXPECT_EQ(m.in_flight, 1u);
    }
  }
  EXPECT_EQ(gs.in_flight, 2u);
}

TEST_F(Stats, should_keep_the_group_counters_of_a_member_that_left) {
  auto& [q, stay, prod] = open(small_options(16));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(prod.try_publish("m").ok());
  {
    auto leave = q.consumer("g");
    auto got = receive_n(leave, 2, 30ms);
    ASSERT_EQ(got.size(), 2u);
    ASSERT_EQ(leave.ack_batch(got), 2u);
  }
  auto d = stay.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(stay.ack(*d), Status::ok);
  const auto gs = group_stats(q, "g");
  EXPECT_EQ(gs.members.size(), 1u);
  EXPECT_EQ(gs.delivered, 3u);
  EXPECT_EQ(gs.acked, 3u);
}

TEST_F(Stats, should_list_producers_with_their_pid_liveness_and_published_count) {
  auto& q = create(small_options(16));
  auto p1 = q.producer();
  std::optional<ackring::Producer> p2(q.producer());
  EXPECT_NE(p1.index(), p2->index());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p1.try_publish("a").ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(p2->try_publish("b").ok());
  auto s = q.stats();
  ASSERT_EQ(s.producers.size(), 2u);
  for (const auto& p : s.producers) {
    EXPECT_EQ(p.pid, ::getpid());
    EXPECT_TRUE(p.alive);
    EXPECT_EQ(p.published, p.index == p1.index() ? 3u : 2u);
  }
  EXPECT_EQ(s.published, 5u);
  p2.reset();
  s = q.stats();
  ASSERT_EQ(s.producers.size(), 1u);
  EXPECT_EQ(s.producers[0].index, p1.index());
  EXPECT_EQ(s.published, 5u);
}

TEST_F(Stats, should_not_count_failed_publishes) {
  auto& q = create(small_options(2, 4));
  q.create_group("g");
  auto prod = q.producer();
  EXPECT_EQ(prod.try_publish("too long").status, Status::too_large);
  ASSERT_TRUE(prod.try_publish("a").ok());
  ASSERT_TRUE(prod.try_publish("b").ok());
  EXPECT_EQ(prod.try_publish("c").status, Status::queue_full);
  EXPECT_EQ(prod.publish("c", 10ms).status, Status::timeout);
  const auto s = q.stats();
  EXPECT_EQ(s.published, 2u);
  EXPECT_EQ(s.tail, 2u);
}

TEST_F(Stats, should_read_the_same_figures_through_another_handle) {
  auto& [q, cons, prod] = open(small_options(16));
  ASSERT_TRUE(prod.try_publish("m").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  const auto other = Queue::open(tq.path()).stats();
  EXPECT_EQ(other.published, 1u);
  ASSERT_EQ(other.groups.size(), 1u);
  EXPECT_EQ(other.groups[0].in_flight, 1u);
  EXPECT_EQ(other.groups[0].delivered, 1u);
}

}  // namespace ackring::testing
