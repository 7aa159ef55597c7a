// Publishing and receiving: order, queue_full, too_large, batches, blocking
// publish and receive with timeouts, producers on several threads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "ackring/ackring.hpp"
#include "shm/clock.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {

namespace {

using Clock = std::chrono::steady_clock;

std::vector<Bytes> as_byte_spans(const std::vector<std::string>& texts) {
  std::vector<Bytes> out;
  for (const auto& t : texts) out.push_back(ackring::as_bytes(t));
  return out;
}

}  // namespace

// Each test runs on a fresh queue path and opens what it needs (QueueTest).
using Publish = QueueTest;

TEST_F(Publish, should_deliver_messages_to_a_single_consumer_in_publish_order_with_consecutive_seqs) {
  auto& [q, cons, prod] = open(small_options(16));
  for (int i = 0; i < 10; ++i) {
    const auto r = prod.try_publish("m" + std::to_string(i));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.seq, static_cast<std::uint64_t>(i));
  }
  for (int i = 0; i < 10; ++i) {
    auto d = cons.try_receive();
    ASSERT_TRUE(d) << i;
    EXPECT_EQ(d->seq(), static_cast<std::uint64_t>(i));
    EXPECT_EQ(d->text(), "m" + std::to_string(i));
    EXPECT_EQ(d->deliveries(), 1u);
    EXPECT_FALSE(d->redelivered());
    EXPECT_EQ(cons.ack(*d), Status::ok);
  }
  EXPECT_FALSE(cons.try_receive());
}

TEST_F(Publish, should_deliver_binary_payloads_byte_for_byte) {
  auto& [q, cons, prod] = open(small_options(8, 256));
  std::vector<std::byte> payload(256);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::byte>(i);
  ASSERT_TRUE(prod.try_publish(Bytes(payload)).ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(d->payload().size(), payload.size());
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), d->payload().begin()));
}

TEST_F(Publish, should_deliver_an_empty_payload) {
  auto& [q, cons, prod] = open(small_options());
  ASSERT_TRUE(prod.try_publish("").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload().size(), 0u);
}

TEST_F(Publish, should_stamp_each_message_with_its_wall_clock_publish_time) {
  auto& [q, cons, prod] = open(small_options());
  const auto before = ackring::detail::realtime_ns();
  ASSERT_TRUE(prod.try_publish("t").ok());
  const auto after = ackring::detail::realtime_ns();
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  EXPECT_GE(d->publish_time_ns(), before);
  EXPECT_LE(d->publish_time_ns(), after);
}

TEST_F(Publish, should_return_queue_full_at_once_from_try_publish_when_a_group_has_not_acked_a_full_ring) {
  auto& q = create(small_options(4));
  q.create_group("g");
  auto prod = q.producer();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(prod.try_publish("x").ok()) << i;
  const auto start = Clock::now();
  const auto r = prod.try_publish("one too many");
  EXPECT_EQ(r.status, Status::queue_full);
  EXPECT_FALSE(r.ok());
  EXPECT_LT(Clock::now() - start, 1s);  // "at once": no waiting for room
  const auto s = q.stats();
  EXPECT_EQ(s.tail, 4u);
  EXPECT_EQ(s.published, 4u);
}

TEST_F(Publish, should_never_be_full_when_no_group_exists) {
  auto& q = create(small_options(4));
  auto prod = q.producer();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(prod.try_publish("x").ok()) << i;
  EXPECT_EQ(q.stats().tail, 20u);
}

TEST_F(Publish, should_return_too_large_for_an_oversized_payload_and_write_nothing) {
  auto& [q, cons, prod] = open(small_options(8, 16));
  const std::string big(17, 'b');
  const auto r = prod.try_publish(big);
  EXPECT_EQ(r.status, Status::too_large);
  EXPECT_EQ(prod.publish(big, 10ms).status, Status::too_large);
  auto s = q.stats();
  EXPECT_EQ(s.tail, 0u);
  EXPECT_EQ(s.published, 0u);
  EXPECT_FALSE(cons.try_receive());

  // Exactly max_message_size fits and arrives intact.
  const std::string fits(16, 'f');
  ASSERT_TRUE(prod.try_publish(fits).ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text(), fits);
  EXPECT_EQ(d->seq(), 0u);
}

TEST_F(Publish, should_publish_a_batch_at_consecutive_seqs_and_deliver_it_in_order) {
  auto& [q, cons, prod] = open(small_options(8));
  ASSERT_TRUE(prod.try_publish("first").ok());
  const std::vector<std::string> texts = {"a", "b", "c", "d"};
  const auto spans = as_byte_spans(texts);
  const auto r = prod.try_publish_batch(spans);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.seq, 1u);
  auto all = receive_n(cons, 5, 100ms);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].text(), "first");
  for (std::size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(all[i + 1].seq(), 1 + i);
    EXPECT_EQ(all[i + 1].text(), texts[i]);
  }
  EXPECT_EQ(q.stats().published, 5u);
}

TEST_F(Publish, should_reject_a_batch_larger_than_the_free_space_and_write_none_of_it) {
  auto& [q, cons, prod] = open(small_options(8));
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
  const std::vector<std::string> three = {"x", "y", "z"};
  const auto r = prod.try_publish_batch(as_byte_spans(three));
  EXPECT_EQ(r.status, Status::queue_full);
  EXPECT_EQ(q.stats().tail, 6u);
  EXPECT_EQ(q.stats().published, 6u);

  // Exactly the free space fits.
  const std::vector<std::string> two = {"x", "y"};
  const auto ok = prod.try_publish_batch(as_byte_spans(two));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.seq, 6u);
  auto all = receive_n(cons, 9, 50ms);
  ASSERT_EQ(all.size(), 8u);
  EXPECT_EQ(all[6].text(), "x");
  EXPECT_EQ(all[7].text(), "y");
}

TEST_F(Publish, should_reject_a_batch_holding_one_oversized_payload_and_write_none_of_it) {
  auto& [q, cons, prod] = open(small_options(8, 4));
  const std::vector<std::string> texts = {"ok", "fine", "too long", "ok"};
  EXPECT_EQ(prod.try_publish_batch(as_byte_spans(texts)).status, Status::too_large);
  EXPECT_EQ(q.stats().tail, 0u);
  EXPECT_FALSE(cons.try_receive());
}

TEST_F(Publish, should_return_timeout_from_publish_when_the_ring_stays_full) {
  auto& q = create(small_options(4));
  q.create_group("g");
  auto prod = q.producer();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(prod.try_publish("x").ok());
  const auto start = Clock::now();
  const auto r = prod.publish("blocked", 60ms);
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(r.status, Status::timeout);
  EXPECT_GE(elapsed, 55ms);
  EXPECT_LT(elapsed, 5s);
  EXPECT_EQ(q.stats().tail, 4u);
}

TEST_F(Publish, should_complete_a_waiting_publish_once_a_consumer_acks) {
  auto& [q, cons, prod] = open(small_options(4));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(d->seq(), 0u);
  ASSERT_EQ(prod.try_publish("no room yet").status, Status::queue_full);

  Status acked = Status::empty;
  std::thread acker([&] {
    std::this_thread::sleep_for(30ms);
    acked = cons.ack(*d);  // the main thread does not touch `cons` meanwhile
  });
  const auto r = prod.publish("after the ack", 10s);
  acker.join();
  EXPECT_EQ(acked, Status::ok);
  ASSERT_TRUE(r.ok()) << ackring::to_string(r.status);
  EXPECT_EQ(r.seq, 4u);
}

TEST_F(Publish, should_complete_a_waiting_batch_publish_once_enough_room_is_acked) {
  auto& [q, cons, prod] = open(small_options(4));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(prod.try_publish("m").ok());
  auto got = receive_n(cons, 2, 50ms);
  ASSERT_EQ(got.size(), 2u);
  std::thread acker([&] {
    std::this_thread::sleep_for(20ms);
    (void)cons.ack(got[0]);
    std::this_thread::sleep_for(20ms);
    (void)cons.ack(got[1]);
  });
  const std::vector<std::string> two = {"p", "q"};
  const auto r = prod.publish_batch(as_byte_spans(two), 10s);
  acker.join();
  ASSERT_TRUE(r.ok()) << ackring::to_string(r.status);
  EXPECT_EQ(r.seq, 4u);
  EXPECT_EQ(q.stats().tail, 6u);
}

TEST_F(Publish, should_return_nullopt_from_receive_after_roughly_the_timeout_when_empty) {
  auto& q = create(small_options());
  auto cons = q.consumer("g");
  const auto start = Clock::now();
  auto d = cons.receive(80ms);
  const auto elapsed = Clock::now() - start;
  EXPECT_FALSE(d);
  EXPECT_GE(elapsed, 75ms);
  EXPECT_LT(elapsed, 5s);
}

TEST_F(Publish, should_return_nullopt_at_once_from_try_receive_when_empty) {
  auto& q = create(small_options());
  auto cons = q.consumer("g");
  EXPECT_FALSE(cons.try_receive());
  EXPECT_FALSE(cons.receive(0ms));
}

TEST_F(Publish, should_wake_a_blocked_receive_when_a_message_is_published) {
  auto& q = create(small_options());
  auto cons = q.consumer("g", {.spin = std::chrono::microseconds(0)});
  std::thread producer([&] {
    auto prod = q.producer();
    std::this_thread::sleep_for(30ms);
    (void)prod.try_publish("wake up");
  });
  auto d = cons.receive(10s);
  producer.join();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text(), "wake up");
}

TEST_F(Publish, should_keep_each_producers_order_when_two_threads_publish_at_once) {
  constexpr int kPerProducer = 500;
  auto& q = create(small_options(2048, 32));
  auto cons = q.consumer("g");
  auto run = [&](int id) {
    auto prod = q.producer();
    for (int i = 0; i < kPerProducer; ++i)
      ASSERT_TRUE(prod.publish(std::to_string(id) + ":" + std::to_string(i), 10s).ok());
  };
  std::thread a(run, 0), b(run, 1);
  a.join();
  b.join();
  std::map<int, int> next_of;  // producer id -> next expected index
  std::vector<bool> seen(2 * kPerProducer, false);
  for (int n = 0; n < 2 * kPerProducer; ++n) {
    auto d = cons.try_receive();
    ASSERT_TRUE(d) << n;
    ASSERT_LT(d->seq(), seen.size());
    EXPECT_FALSE(seen[d->seq()]);
    seen[d->seq()] = true;
    const std::string t(d->text());
    const auto colon = t.find(':');
    ASSERT_NE(colon, std::string::npos);
    const int id = std::stoi(t.substr(0, colon));
    const int index = std::stoi(t.substr(colon + 1));
    EXPECT_EQ(index, next_of[id]) << "producer " << id << " out of order";
    next_of[id] = index + 1;
    ASSERT_EQ(cons.ack(*d), Status::ok);
  }
  EXPECT_FALSE(cons.try_receive());
  EXPECT_EQ(next_of[0], kPerProducer);
  EXPECT_EQ(next_of[1], kPerProducer);
  EXPECT_EQ(q.stats().published, 2u * kPerProducer);
}

TEST_F(Publish, should_refuse_a_producer_when_all_producer_slots_are_held_and_free_the_slot_on_destruction) {
  auto o = small_options();
  o.max_producers = 1;
  auto& q = create(o);
  {
    auto first = q.producer();
    EXPECT_TRUE(ackring::testing::throws_error([&] { (void)q.producer(); }, ackring::ErrorCode::resource_exhausted));
  }
  EXPECT_NO_THROW((void)q.producer());
}

TEST_F(Publish, should_still_count_messages_of_a_producer_that_is_gone) {
  auto& q = create(small_options());
  {
    auto prod = q.producer();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(prod.try_publish("x").ok());
  }
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("y").ok());
  EXPECT_EQ(q.stats().published, 4u);
}

}  // namespace ackring::testing
