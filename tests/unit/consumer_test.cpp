// Consumer handles: batch receive, cumulative ack, move semantics and
// member slots.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ackring/ackring.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

// Each test runs on a fresh queue path and opens what it needs (QueueTest).
using ConsumerHandle = QueueTest;

TEST_F(ConsumerHandle, should_return_up_to_n_messages_from_a_batch_receive) {
  auto& [q, cons, prod] = open(small_options(16));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
  std::vector<Delivery> batch(4);
  std::uint64_t expected = 0;
  for (const std::size_t want : {4u, 4u, 2u}) {
    const std::size_t n = cons.receive_batch(batch, 1s);
    ASSERT_EQ(n, want);
    for (std::size_t i = 0; i < n; ++i, ++expected) {
      EXPECT_EQ(batch[i].seq(), expected);
      EXPECT_EQ(batch[i].text(), "m" + std::to_string(expected));
    }
  }
  EXPECT_EQ(cons.try_receive_batch(batch), 0u);
  EXPECT_EQ(cons.receive_batch(batch, 30ms), 0u);
}

TEST_F(ConsumerHandle, should_return_what_is_there_from_a_batch_receive_without_waiting_for_a_full_batch) {
  auto& [q, cons, prod] = open(small_options(16));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(prod.try_publish("m").ok());
  std::vector<Delivery> batch(8);
  const auto start = Clock::now();
  EXPECT_EQ(cons.receive_batch(batch, 20s), 3u);
  EXPECT_LT(Clock::now() - start, 10s);
}

TEST_F(ConsumerHandle, should_return_a_short_batch_after_lingering_when_nothing_more_came) {
  auto& q = create(small_options(16));
  auto cons = q.consumer("g", {.linger = 1ms});
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("only").ok());
  std::vector<Delivery> batch(8);
  ASSERT_EQ(cons.receive_batch(batch, 10s), 1u);
  EXPECT_EQ(batch[0].text(), "only");
  EXPECT_EQ(cons.ack_batch(std::span(batch.data(), 1)), 1u);
  EXPECT_EQ(cons.receive_batch(batch, 1ms), 0u);  // nothing at all: no linger, the timeout as before
}

TEST_F(ConsumerHandle, should_refuse_a_linger_below_zero_or_above_one_second) {
  auto& q = create(small_options(16));
  for (const auto linger : {std::chrono::microseconds(-1), std::chrono::microseconds(1'000'001)}) {
    try {
      (void)q.consumer("g", {.linger = linger});
      ADD_FAILURE() << "linger " << linger.count() << " us was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("linger must be between 0 and 1 s"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW((void)q.consumer("g", {.linger = 1s}));
}

TEST_F(ConsumerHandle, should_wait_in_a_batch_receive_until_a_message_arrives) {
  auto& q = create(small_options(16));
  auto cons = q.consumer("g", {.spin = std::chrono::microseconds(0)});
  std::thread producer([&] {
    auto prod = q.producer();
    std::this_thread::sleep_for(30ms);
    (void)prod.try_publish("late");
  });
  std::vector<Delivery> batch(4);
  const std::size_t n = cons.receive_batch(batch, 10s);
  producer.join();
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(batch[0].text(), "late");
}

TEST_F(ConsumerHandle, should_return_nothing_into_an_empty_batch) {
  auto& [q, cons, prod] = open(small_options());
  ASSERT_TRUE(prod.try_publish("m").ok());
  std::vector<Delivery> none;
  EXPECT_EQ(cons.try_receive_batch(none), 0u);
  auto d = cons.try_receive();  // the message was not taken by the empty batch
  ASSERT_TRUE(d);
  EXPECT_EQ(d->deliveries(), 1u);
}

TEST_F(ConsumerHandle, should_ack_a_batch_cumulatively_and_advance_the_floor) {
  auto& [q, cons, prod] = open(small_options(8));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(prod.try_publish("m").ok());
  std::vector<Delivery> batch(4);
  ASSERT_EQ(cons.try_receive_batch(batch), 4u);
  EXPECT_EQ(cons.ack_batch(batch), 4u);
  const auto gs = group_stats(q, "g");
  EXPECT_EQ(gs.floor, 4u);
  EXPECT_EQ(gs.acked, 4u);
  EXPECT_EQ(gs.in_flight, 0u);
  for (const auto& d : batch) EXPECT_EQ(cons.ack(d), Status::lease_lost);
  EXPECT_EQ(cons.ack_batch(batch), 0u);
}

TEST_F(ConsumerHandle, should_count_only_still_leased_messages_in_a_batch_ack) {
  auto& [q, cons, prod] = open(small_options(8));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(prod.try_publish("m").ok());
  std::vector<Delivery> batch(4);
  ASSERT_EQ(cons.try_receive_batch(batch), 4u);
  ASSERT_EQ(cons.ack(batch[1]), Status::ok);
  EXPECT_EQ(cons.ack_batch(batch), 3u);
  EXPECT_EQ(group_stats(q, "g").floor, 4u);
  EXPECT_EQ(group_stats(q, "g").acked, 4u);
}

TEST_F(ConsumerHandle, should_leave_unacked_the_messages_left_out_of_a_batch_ack) {
  auto& [q, cons, prod] = open(small_options(8));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(prod.try_publish("m").ok());
  std::vector<Delivery> batch(4);
  ASSERT_EQ(cons.try_receive_batch(batch), 4u);
  const std::vector<Delivery> later(batch.begin() + 1, batch.end());
  EXPECT_EQ(cons.ack_batch(later), 3u);
  const auto gs = group_stats(q, "g");
  EXPECT_EQ(gs.floor, 0u);  // seq 0 is still leased
  EXPECT_EQ(gs.in_flight, 1u);
  EXPECT_EQ(cons.ack(batch[0]), Status::ok);
  EXPECT_EQ(group_stats(q, "g").floor, 4u);
}

TEST_F(ConsumerHandle, should_fill_a_batch_with_a_redelivery_and_new_messages) {
  auto& [q, cons, prod] = open(small_options(8));
  ASSERT_TRUE(prod.try_publish("again").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(cons.nack(d->receipt()), Status::ok);
  ASSERT_TRUE(prod.try_publish("new1").ok());
  ASSERT_TRUE(prod.try_publish("new2").ok());
  std::vector<Delivery> batch(8);
  const std::size_t n = cons.try_receive_batch(batch);
  ASSERT_EQ(n, 3u);
  std::set<std::string> texts;
  for (std::size_t i = 0; i < n; ++i) {
    texts.insert(std::string(batch[i].text()));
    EXPECT_EQ(batch[i].deliveries(), batch[i].seq() == 0 ? 2u : 1u);
  }
  EXPECT_EQ(texts, (std::set<std::string>{"again", "new1", "new2"}));
}

TEST_F(ConsumerHandle, should_hand_out_a_receipt_naming_the_seq_and_delivery_count) {
  auto& [q, cons, prod] = open(small_options());
  ASSERT_TRUE(prod.try_publish("a").ok());
  ASSERT_TRUE(prod.try_publish("b").ok());
  (void)cons.try_receive();
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->receipt().seq, 1u);
  EXPECT_EQ(d->receipt().deliveries, 1u);
  const Delivery empty;
  EXPECT_EQ(empty.seq(), 0u);
  EXPECT_EQ(empty.deliveries(), 0u);
  EXPECT_TRUE(empty.payload().empty());
}

TEST_F(ConsumerHandle, should_report_its_group_and_member_index) {
  auto& q = create(small_options());
  auto a = q.consumer("orders");
  auto b = q.consumer("orders");
  EXPECT_EQ(a.group(), "orders");
  EXPECT_EQ(b.group(), "orders");
  EXPECT_NE(a.member_index(), b.member_index());
  std::set<std::uint32_t> indices;
  for (const auto& m : group_stats(q, "orders").members) indices.insert(m.index);
  EXPECT_EQ(indices, (std::set<std::uint32_t>{a.member_index(), b.member_index()}));
}

TEST_F(ConsumerHandle, should_keep_working_after_being_moved) {
  auto& q = create(small_options());
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("m").ok());
  Consumer a = q.consumer("g");
  auto d = a.try_receive();
  ASSERT_TRUE(d);
  Consumer b = std::move(a);
  EXPECT_EQ(b.group(), "g");
  EXPECT_EQ(b.ack(*d), Status::ok);
  EXPECT_EQ(group_stats(q, "g").members.size(), 1u);
  EXPECT_EQ(group_stats(q, "g").floor, 1u);
}

TEST_F(ConsumerHandle, should_release_the_old_member_when_move_assigned_over) {
  auto& q = create(small_options());
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("m").ok());
  Consumer target = q.consumer("g");
  Consumer source = q.consumer("g");
  auto d = target.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(group_stats(q, "g").members.size(), 2u);
  target = std::move(source);  // target's member leaves: its lease comes back
  EXPECT_EQ(group_stats(q, "g").members.size(), 1u);
  auto again = target.try_receive();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->seq(), d->seq());
  EXPECT_EQ(again->deliveries(), 2u);
}

TEST_F(ConsumerHandle, should_free_its_member_slot_when_destroyed) {
  auto o = small_options();
  o.max_members = 1;
  auto& q = create(o);
  for (int i = 0; i < 5; ++i) {
    auto cons = q.consumer("g");
    EXPECT_EQ(group_stats(q, "g").members.size(), 1u);
  }
  EXPECT_TRUE(group_stats(q, "g").members.empty());
}

}  // namespace ackring::testing
