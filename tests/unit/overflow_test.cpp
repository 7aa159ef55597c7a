// Space (a slot is reused only when every block group has settled it), the
// drop overflow policy, and at-most-once delivery.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ackring/ackring.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {

namespace {
const ConsumerOptions kDrop{.group = {.overflow = OverflowPolicy::drop}};
const ConsumerOptions kAtMostOnce{.mode = DeliveryMode::at_most_once, .lease = 30ms};
}  // namespace

// ------------------------------------------------------------------ space --

// Each test runs on a fresh queue path and opens what it needs (QueueTest).
using Space = QueueTest;
using Drop = QueueTest;
using AtMostOnce = QueueTest;

TEST_F(Space, should_not_reuse_a_slot_before_the_group_acked_it) {
  auto& [q, cons, prod] = open(small_options(4));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
  EXPECT_EQ(prod.try_publish("x").status, Status::queue_full);
  auto got = receive_n(cons, 4, 30ms);
  ASSERT_EQ(got.size(), 4u);
  // Received but not acked is still not free.
  EXPECT_EQ(prod.try_publish("x").status, Status::queue_full);
  ASSERT_EQ(cons.ack(got[0]), Status::ok);
  EXPECT_TRUE(prod.try_publish("fits").ok());
  EXPECT_EQ(prod.try_publish("x").status, Status::queue_full);
  // The unacked messages are intact.
  for (int i = 1; i < 4; ++i) EXPECT_EQ(got[i].text(), "m" + std::to_string(i));
}

TEST_F(Space, should_not_free_a_slot_when_only_later_messages_are_acked) {
  auto& [q, cons, prod] = open(small_options(4));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(prod.try_publish("m").ok());
  auto got = receive_n(cons, 4, 30ms);
  ASSERT_EQ(got.size(), 4u);
  for (int i = 1; i < 4; ++i) ASSERT_EQ(cons.ack(got[i]), Status::ok);
  EXPECT_EQ(prod.try_publish("x").status, Status::queue_full);
  ASSERT_EQ(cons.ack(got[0]), Status::ok);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(prod.try_publish("y").ok()) << i;
  EXPECT_EQ(prod.try_publish("x").status, Status::queue_full);
}

TEST_F(Space, should_not_reuse_a_slot_until_every_block_group_acked_it) {
  auto& q = create(small_options(4));
  auto fast = q.consumer("fast");
  auto slow = q.consumer("slow");
  auto prod = q.producer();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
  auto f = receive_n(fast, 4, 30ms);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(fast.ack_batch(f), 4u);
  EXPECT_EQ(prod.try_publish("x").status, Status::queue_full);
  auto s = receive_n(slow, 4, 30ms);
  ASSERT_EQ(s.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(s[i].text(), "m" + std::to_string(i));  // nothing overwritten
  ASSERT_EQ(slow.ack(s[0]), Status::ok);
  EXPECT_TRUE(prod.try_publish("one more").ok());
  EXPECT_EQ(prod.try_publish("x").status, Status::queue_full);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(s[i].text(), "m" + std::to_string(i));
}

// ------------------------------------------------------------------- drop --

TEST_F(Drop, should_never_make_producers_get_queue_full_because_of_a_slow_drop_group) {
  auto& q = create(small_options(8));
  auto slow = q.consumer("slow", kDrop);
  auto prod = q.producer();
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok()) << i;
  const auto gs = group_stats(q, "slow");
  EXPECT_GE(gs.floor, 40u - 8u);
  EXPECT_GE(gs.dropped, 40u - 8u);
  EXPECT_EQ(q.stats().published, 40u);
}

TEST_F(Drop, should_still_deliver_every_message_to_a_block_group_beside_a_slow_drop_group) {
  auto& q = create(small_options(8));
  auto slow = q.consumer("slow", kDrop);
  auto steady = q.consumer("steady");
  auto prod = q.producer();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok()) << i;
    auto d = steady.try_receive();
    ASSERT_TRUE(d) << i;
    EXPECT_EQ(d->seq(), static_cast<std::uint64_t>(i));
    EXPECT_EQ(d->text(), "m" + std::to_string(i));
    ASSERT_EQ(steady.ack(*d), Status::ok);
  }
  EXPECT_GT(group_stats(q, "slow").dropped, 0u);
  EXPECT_EQ(group_stats(q, "steady").dropped, 0u);
  EXPECT_EQ(group_stats(q, "steady").acked, 50u);

  // What the drop group still gets is the newest messages, in order, intact
  // (one batch call, so each payload has its own copy).
  std::vector<ackring::Delivery> rest(9);
  const std::size_t n = slow.try_receive_batch(rest);
  ASSERT_GT(n, 0u);
  EXPECT_LE(n, 8u);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(rest[i].text(), "m" + std::to_string(rest[i].seq()));
    if (i > 0) EXPECT_EQ(rest[i].seq(), rest[i - 1].seq() + 1);
  }
  EXPECT_EQ(rest[n - 1].seq(), 49u);
}

TEST_F(Drop, should_return_queue_full_when_a_block_group_beside_a_drop_group_has_not_acked) {
  auto& q = create(small_options(4));
  auto dropper = q.consumer("dropper", kDrop);
  q.create_group("blocker");
  auto prod = q.producer();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(prod.try_publish("m").ok());
  EXPECT_EQ(prod.try_publish("x").status, Status::queue_full);
  EXPECT_EQ(q.stats().tail, 4u);
}

TEST_F(Drop, should_answer_lease_lost_for_a_message_the_producers_pushed_the_group_past) {
  auto& q = create(small_options(4));
  auto slow = q.consumer("slow", kDrop);
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("old").ok());
  auto d = slow.try_receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text(), "old");
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(prod.try_publish("new").ok());
  EXPECT_EQ(slow.ack(*d), Status::lease_lost);
  EXPECT_GE(group_stats(q, "slow").dropped, 1u);
}

TEST_F(Drop, should_settle_a_drop_group_message_normally_when_it_is_acked_in_time) {
  auto& q = create(small_options(4));
  auto cons = q.consumer("d", kDrop);
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("a").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text(), "a");
  EXPECT_EQ(cons.ack(*d), Status::ok);
  const auto gs = group_stats(q, "d");
  EXPECT_EQ(gs.floor, 1u);
  EXPECT_EQ(gs.acked, 1u);
  EXPECT_EQ(gs.dropped, 0u);
}

// consumer.hpp: the payload "in a drop-policy group, [points] into the
// consumer's own copy and stays valid until the message is acked, nacked or
// rejected, or its lease runs out".
TEST_F(Drop, should_keep_a_delivered_payload_valid_until_it_is_acked) {
  auto& q = create(small_options(8));
  auto cons = q.consumer("d", kDrop);
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("aaaa").ok());
  ASSERT_TRUE(prod.try_publish("bbbb").ok());
  auto first = cons.try_receive();
  ASSERT_TRUE(first);
  auto second = cons.try_receive();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->text(), "bbbb");
  EXPECT_EQ(first->text(), "aaaa");  // not yet acked: still its own bytes
  EXPECT_EQ(cons.ack(*first), Status::ok);
  EXPECT_EQ(cons.ack(*second), Status::ok);
}

// --------------------------------------------------------- at-most-once --

TEST_F(AtMostOnce, should_never_redeliver_a_received_message_even_after_the_lease_time) {
  auto& q = create(small_options());
  auto cons = q.consumer("g", kAtMostOnce);
  auto other = q.consumer("g", kAtMostOnce);
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("once").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text(), "once");
  EXPECT_EQ(d->deliveries(), 1u);
  EXPECT_FALSE(cons.receive(150ms));  // five lease times
  EXPECT_FALSE(other.try_receive());
}

TEST_F(AtMostOnce, should_settle_on_receive_and_advance_the_floor) {
  auto& [q, cons, prod] = open(small_options(4), kAtMostOnce);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
  std::vector<ackring::Delivery> got;
  for (int i = 0; i < 3; ++i) {
    auto d = cons.try_receive();
    ASSERT_TRUE(d) << i;
    EXPECT_EQ(d->text(), "m" + std::to_string(i));  // read at once: receive settled it
    got.push_back(*d);
  }
  const auto gs = group_stats(q, "g");
  EXPECT_EQ(gs.floor, 3u);
  EXPECT_EQ(gs.in_flight, 0u);
  EXPECT_EQ(gs.delivered, 3u);
  // Already settled: an ack has nothing to do.
  EXPECT_EQ(cons.ack(got[0]), Status::lease_lost);
  // The ring is free again without any ack.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(prod.try_publish("more").ok()) << i;
}

TEST_F(AtMostOnce, should_not_redeliver_to_another_member_when_the_receiver_leaves) {
  auto& [q, other, prod] = open(small_options());
  ASSERT_TRUE(prod.try_publish("m").ok());
  {
    auto cons = q.consumer("g", kAtMostOnce);
    ASSERT_TRUE(cons.try_receive());
  }
  EXPECT_FALSE(other.try_receive());
  EXPECT_EQ(group_stats(q, "g").floor, 1u);
}

TEST_F(AtMostOnce, should_settle_every_message_of_a_batch_on_receive) {
  auto& [q, cons, prod] = open(small_options(8), kAtMostOnce);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
  std::vector<ackring::Delivery> batch(8);
  const auto n = cons.try_receive_batch(batch);
  ASSERT_EQ(n, 5u);
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(batch[i].text(), "m" + std::to_string(i));
  EXPECT_EQ(group_stats(q, "g").floor, 5u);
  EXPECT_EQ(group_stats(q, "g").in_flight, 0u);
}

}  // namespace ackring::testing
