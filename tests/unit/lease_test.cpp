// Leases: stale receipts, expiry and redelivery with fencing, nack with a
// delay, extend, and the release of a leaving member's leases.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <span>
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
using Lease = QueueTest;

TEST_F(Lease, should_answer_lease_lost_to_an_ack_with_a_stale_receipt) {
  auto& [q, cons, prod] = open(small_options());
  ASSERT_TRUE(prod.try_publish("a").ok());
  ASSERT_TRUE(prod.try_publish("b").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  // A receipt naming a delivery count this message was never handed out with.
  EXPECT_EQ(cons.ack(Receipt{d->seq(), d->deliveries() + 1}), Status::lease_lost);
  EXPECT_EQ(cons.ack(Receipt{d->seq(), 0}), Status::lease_lost);
  // A message that was never delivered (seq 1), and one never published (seq 5).
  EXPECT_EQ(cons.ack(Receipt{1, 1}), Status::lease_lost);
  EXPECT_EQ(cons.ack(Receipt{5, 1}), Status::lease_lost);
  // The right receipt works once, then is stale.
  EXPECT_EQ(cons.ack(*d), Status::ok);
  EXPECT_EQ(cons.ack(*d), Status::lease_lost);
  EXPECT_EQ(group_stats(q, "g").acked, 1u);
}

TEST_F(Lease, should_answer_lease_lost_to_an_ack_of_a_slot_reused_by_a_later_lap) {
  auto& [q, cons, prod] = open(small_options(2));
  ASSERT_TRUE(prod.try_publish("lap0").ok());
  auto first = cons.try_receive();
  ASSERT_TRUE(first);
  ASSERT_EQ(cons.ack(*first), Status::ok);
  ASSERT_TRUE(prod.try_publish("x").ok());
  ASSERT_TRUE(prod.try_publish("lap1").ok());  // seq 2: the slot of seq 0
  auto x = cons.try_receive();
  auto lap1 = cons.try_receive();
  ASSERT_TRUE(x && lap1);
  ASSERT_EQ(lap1->seq(), 2u);
  // The old receipt (seq 0, delivery 1) matches the slot but not the lap.
  EXPECT_EQ(cons.ack(*first), Status::lease_lost);
  EXPECT_EQ(cons.ack(*lap1), Status::ok);
}

TEST_F(Lease, should_redeliver_a_message_after_its_lease_expires_with_a_higher_delivery_count) {
  auto& [q, cons, prod] = open(small_options(), {.lease = 50ms});
  ASSERT_TRUE(prod.try_publish("payload").ok());
  auto d1 = cons.try_receive();
  ASSERT_TRUE(d1);
  EXPECT_EQ(d1->deliveries(), 1u);
  const auto received = Clock::now();
  EXPECT_FALSE(cons.try_receive());  // not before the lease runs out
  auto d2 = cons.receive(5s);
  const auto elapsed = Clock::now() - received;
  ASSERT_TRUE(d2);
  EXPECT_GE(elapsed, 45ms);
  EXPECT_EQ(d2->seq(), d1->seq());
  EXPECT_EQ(d2->deliveries(), 2u);
  EXPECT_TRUE(d2->redelivered());
  EXPECT_EQ(d2->text(), "payload");
  EXPECT_EQ(d2->publish_time_ns(), d1->publish_time_ns());
}

TEST_F(Lease, should_fence_off_the_old_receipt_once_the_message_is_redelivered) {
  auto& [q, cons, prod] = open(small_options(), {.lease = 40ms});
  ASSERT_TRUE(prod.try_publish("m").ok());
  auto d1 = cons.try_receive();
  ASSERT_TRUE(d1);
  auto d2 = cons.receive(5s);
  ASSERT_TRUE(d2);
  ASSERT_EQ(d2->deliveries(), 2u);
  EXPECT_EQ(cons.ack(*d1), Status::lease_lost);
  EXPECT_EQ(cons.nack(d1->receipt()), Status::lease_lost);
  EXPECT_EQ(cons.extend(d1->receipt(), 10'000ms), Status::lease_lost);
  EXPECT_EQ(cons.reject(d1->receipt()), Status::lease_lost);
  EXPECT_EQ(cons.ack(*d2), Status::ok);
  EXPECT_EQ(group_stats(q, "g").floor, 1u);
  EXPECT_FALSE(cons.receive(100ms));  // settled: no third delivery
}

TEST_F(Lease, should_redeliver_an_expired_lease_to_another_member_and_fence_the_first) {
  auto& q = create(small_options());
  auto m1 = q.consumer("g", {.lease = 50ms});
  auto m2 = q.consumer("g", {.lease = 10'000ms});
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("job").ok());
  auto d1 = m1.try_receive();
  ASSERT_TRUE(d1);
  EXPECT_FALSE(m2.try_receive());
  auto d2 = m2.receive(5s);
  ASSERT_TRUE(d2);
  EXPECT_EQ(d2->seq(), d1->seq());
  EXPECT_EQ(d2->deliveries(), 2u);
  EXPECT_EQ(m1.ack(*d1), Status::lease_lost);
  EXPECT_EQ(m2.ack(*d2), Status::ok);
}

TEST_F(Lease, should_keep_delivering_later_messages_while_an_earlier_one_is_leased) {
  auto& [q, cons, prod] = open(small_options());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
  auto got = receive_n(cons, 3, 30ms);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].text(), "m2");
}

TEST_F(Lease, should_not_advance_the_floor_past_an_unacked_message) {
  auto& [q, cons, prod] = open(small_options());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(prod.try_publish("m").ok());
  auto got = receive_n(cons, 3, 30ms);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(cons.ack(got[1]), Status::ok);
  EXPECT_EQ(cons.ack(got[2]), Status::ok);
  EXPECT_EQ(group_stats(q, "g").floor, 0u);
  EXPECT_EQ(cons.ack(got[0]), Status::ok);
  EXPECT_EQ(group_stats(q, "g").floor, 3u);
}

TEST_F(Lease, should_redeliver_a_nacked_message_at_once_when_the_delay_is_zero) {
  auto& [q, cons, prod] = open(small_options());  // default lease: 30 s, far away
  ASSERT_TRUE(prod.try_publish("retry me").ok());
  auto d1 = cons.try_receive();
  ASSERT_TRUE(d1);
  ASSERT_EQ(cons.nack(d1->receipt()), Status::ok);
  auto d2 = cons.try_receive();
  ASSERT_TRUE(d2);
  EXPECT_EQ(d2->seq(), d1->seq());
  EXPECT_EQ(d2->deliveries(), 2u);
  EXPECT_EQ(d2->text(), "retry me");
  EXPECT_EQ(cons.ack(*d1), Status::lease_lost);
  EXPECT_EQ(cons.nack(d1->receipt()), Status::lease_lost);
  EXPECT_EQ(cons.ack(*d2), Status::ok);
}

TEST_F(Lease, should_redeliver_a_nacked_message_to_another_member) {
  auto& q = create(small_options());
  auto m1 = q.consumer("g");
  auto m2 = q.consumer("g");
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("hand over").ok());
  auto d1 = m1.try_receive();
  ASSERT_TRUE(d1);
  ASSERT_EQ(m1.nack(d1->receipt()), Status::ok);
  auto d2 = m2.try_receive();
  ASSERT_TRUE(d2);
  EXPECT_EQ(d2->seq(), d1->seq());
  EXPECT_EQ(d2->deliveries(), 2u);
}

TEST_F(Lease, should_redeliver_a_nacked_message_after_its_delay_and_not_before) {
  auto& [q, cons, prod] = open(small_options());
  ASSERT_TRUE(prod.try_publish("later").ok());
  auto d1 = cons.try_receive();
  ASSERT_TRUE(d1);
  const auto nacked = Clock::now();
  ASSERT_EQ(cons.nack(d1->receipt(), 150ms), Status::ok);
  EXPECT_FALSE(cons.try_receive());
  auto d2 = cons.receive(5s);
  const auto elapsed = Clock::now() - nacked;
  ASSERT_TRUE(d2);
  EXPECT_GE(elapsed, 140ms);
  EXPECT_EQ(d2->seq(), d1->seq());
  EXPECT_EQ(d2->deliveries(), 2u);
}

TEST_F(Lease, should_deliver_other_messages_while_a_nacked_one_waits_out_its_delay) {
  auto& [q, cons, prod] = open(small_options());
  ASSERT_TRUE(prod.try_publish("first").ok());
  ASSERT_TRUE(prod.try_publish("second").ok());
  auto d1 = cons.try_receive();
  ASSERT_TRUE(d1);
  ASSERT_EQ(cons.nack(d1->receipt(), 10'000ms), Status::ok);
  auto d2 = cons.try_receive();
  ASSERT_TRUE(d2);
  EXPECT_EQ(d2->text(), "second");
  EXPECT_FALSE(cons.try_receive());
}

TEST_F(Lease, should_keep_an_extended_lease_from_being_redelivered) {
  auto& q = create(small_options());
  auto m1 = q.consumer("g", {.lease = 50ms});
  auto m2 = q.consumer("g", {.lease = 50ms});
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("long job").ok());
  auto d = m1.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(m1.extend(d->receipt(), 5'000ms), Status::ok);
  // Well past the original 50 ms lease, nobody gets the message again.
  EXPECT_FALSE(m2.receive(200ms));
  EXPECT_FALSE(m1.try_receive());
  EXPECT_EQ(m1.ack(*d), Status::ok);  // the receipt is still good
  EXPECT_EQ(group_stats(q, "g").redelivered, 0u);
}

TEST_F(Lease, should_set_the_deadline_to_now_plus_the_given_lease_on_extend_and_redeliver_after_it) {
  auto& [q, cons, prod] = open(small_options(), {.lease = 10'000ms});
  ASSERT_TRUE(prod.try_publish("m").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  // extend sets the deadline to now + lease: it may also shorten it.
  ASSERT_EQ(cons.extend(d->receipt(), 50ms), Status::ok);
  auto again = cons.receive(5s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->deliveries(), 2u);
}

TEST_F(Lease, should_answer_lease_lost_to_extend_and_nack_with_a_stale_receipt) {
  auto& [q, cons, prod] = open(small_options());
  ASSERT_TRUE(prod.try_publish("m").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(cons.ack(*d), Status::ok);
  EXPECT_EQ(cons.extend(d->receipt(), 1000ms), Status::lease_lost);
  EXPECT_EQ(cons.nack(d->receipt()), Status::lease_lost);
  EXPECT_EQ(cons.nack(d->receipt(), 10ms), Status::lease_lost);
  EXPECT_FALSE(cons.try_receive());  // the failed nack did not bring it back
}

TEST_F(Lease, should_redeliver_the_leases_of_a_destroyed_consumer_to_another_member_at_once) {
  auto& [q, survivor, prod] = open(small_options());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
  {
    auto leaver = q.consumer("g");  // default lease: 30 s
    auto got = receive_n(leaver, 2, 30ms);
    ASSERT_EQ(got.size(), 2u);
    ASSERT_EQ(leaver.ack(got[1]), Status::ok);  // acked: must not come back
  }
  std::set<std::string> texts;
  for (int i = 0; i < 2; ++i) {
    auto d = survivor.try_receive();  // no waiting: the leases were released
    ASSERT_TRUE(d) << i;
    texts.insert(std::string(d->text()));
    if (d->seq() == 0) EXPECT_EQ(d->deliveries(), 2u);
    else EXPECT_EQ(d->deliveries(), 1u);
    EXPECT_EQ(survivor.ack(*d), Status::ok);
  }
  EXPECT_EQ(texts, (std::set<std::string>{"m0", "m2"}));
  EXPECT_FALSE(survivor.try_receive());
  EXPECT_EQ(group_stats(q, "g").floor, 3u);
}

// A member that holds what it takes back: each receive goes on looking for
// expired leases where the previous one stopped (the look does not start
// over at the floor, which the held leases keep at seq 0).
TEST_F(Lease, should_take_back_every_lease_of_a_closed_member_once_and_in_order_while_holding_them) {
  constexpr std::size_t kCount = 2048;
  auto& [q, survivor, prod] = open(small_options(4096));
  for (std::size_t i = 0; i < kCount; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
  {
    auto leaver = q.consumer("g");  // default lease: 30 s
    std::vector<Delivery> taken(kCount);
    for (std::size_t got = 0; got < kCount;) {
      const std::size_t n = leaver.try_receive_batch(std::span(taken).subspan(got));
      ASSERT_NE(n, 0u) << got;
      got += n;
    }
  }  // closes: every lease comes back at once
  std::vector<Delivery> held(kCount);
  std::size_t got = 0;
  while (got < kCount) {
    const std::size_t n =
        survivor.try_receive_batch(std::span(held).subspan(got, std::min<std::size_t>(32, kCount - got)));
    ASSERT_NE(n, 0u) << got;  // no waiting: the leases were released
    got += n;
  }
  for (std::size_t i = 0; i < kCount; ++i) {
    ASSERT_EQ(held[i].seq(), i);
    ASSERT_EQ(held[i].text(), "m" + std::to_string(i));
    ASSERT_EQ(held[i].deliveries(), 2u) << i;
  }
  EXPECT_FALSE(survivor.try_receive());
  EXPECT_EQ(survivor.ack_batch(held), kCount);
  EXPECT_EQ(group_stats(q, "g").floor, kCount);
}

// A look for expired leases that is under way (it took back some of one
// member's leases) when another member, holding seqs below where it goes on,
// closes: those leases come back too, each once.
TEST_F(Lease, should_take_back_leases_given_back_behind_a_look_under_way) {
  auto& [q, survivor, prod] = open(small_options(128));
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
  std::optional<Consumer> early(q.consumer("g"));
  ASSERT_EQ(receive_n(*early, 10, 30ms).size(), 10u);  // seqs 0..9
  {
    auto leaver = q.consumer("g");
    ASSERT_EQ(receive_n(leaver, 90, 30ms).size(), 90u);  // seqs 10..99
  }
  std::array<Delivery, 8> first;
  ASSERT_EQ(survivor.try_receive_batch(first), first.size());
  for (std::size_t i = 0; i < first.size(); ++i) ASSERT_EQ(first[i].seq(), 10 + i);  // the look goes on at 18
  early.reset();  // seqs 0..9 come back behind it
  std::map<std::uint64_t, std::string> rest;
  std::array<Delivery, 32> buf;
  while (rest.size() < 92) {
    const std::size_t n = survivor.receive_batch(buf, 5s);
    ASSERT_NE(n, 0u) << rest.size() << " of 92";
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_EQ(buf[i].deliveries(), 2u) << buf[i].seq();
      EXPECT_TRUE(rest.emplace(buf[i].seq(), std::string(buf[i].text())).second) << "twice: " << buf[i].seq();
      EXPECT_EQ(survivor.ack(buf[i]), Status::ok);
    }
  }
  for (std::uint64_t s = 0; s < 100; ++s)
    if (s < 10 || s >= 18) EXPECT_EQ(rest[s], "m" + std::to_string(s));
  for (const Delivery& d : first) EXPECT_EQ(survivor.ack(d), Status::ok);
  EXPECT_FALSE(survivor.try_receive());
  EXPECT_EQ(group_stats(q, "g").floor, 100u);
}

// nack(0) means "again at once", also for a message this member just took
// back: its look for expired leases goes back to it.
TEST_F(Lease, should_redeliver_at_once_a_message_nacked_while_taking_back_others) {
  auto& [q, survivor, prod] = open(small_options(64));
  for (int i = 0; i < 32; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
  {
    auto leaver = q.consumer("g");
    ASSERT_EQ(receive_n(leaver, 32, 30ms).size(), 32u);
  }
  std::array<Delivery, 8> first;
  ASSERT_EQ(survivor.try_receive_batch(first), first.size());  // seqs 0..7, delivery 2
  ASSERT_EQ(survivor.nack(first[3].receipt()), Status::ok);
  std::array<Delivery, 8> second;
  ASSERT_EQ(survivor.try_receive_batch(second), second.size());  // no waiting
  EXPECT_EQ(second[0].seq(), 3u);
  EXPECT_EQ(second[0].text(), "m3");
  EXPECT_EQ(second[0].deliveries(), 3u);
  for (std::size_t i = 1; i < second.size(); ++i) EXPECT_EQ(second[i].seq(), 7 + i);
}

TEST_F(Lease, should_use_the_queue_default_lease_when_the_consumer_does_not_choose_one) {
  auto o = small_options();
  o.default_lease = 50ms;
  auto& [q, cons, prod] = open(o);
  ASSERT_TRUE(prod.try_publish("m").ok());
  auto d1 = cons.try_receive();
  ASSERT_TRUE(d1);
  auto d2 = cons.receive(5s);
  ASSERT_TRUE(d2);
  EXPECT_EQ(d2->deliveries(), 2u);
}

TEST_F(Lease, should_count_deliveries_up_across_repeated_expiries) {
  auto o = small_options();
  o.max_deliveries = 10;
  auto& [q, cons, prod] = open(o, {.lease = 30ms});
  ASSERT_TRUE(prod.try_publish("m").ok());
  for (std::uint32_t n = 1; n <= 4; ++n) {
    auto d = cons.receive(5s);
    ASSERT_TRUE(d) << n;
    EXPECT_EQ(d->deliveries(), n);
  }
}

}  // namespace ackring::testing
