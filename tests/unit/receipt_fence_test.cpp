// Receipts are fenced for any number of laps: the lease word's generation has
// 14 bits, so on a 2-slot ring seq s and seq s + 32768 share slot and
// generation. A receipt settles only the delivery it was issued for
// (failure 5 of the stall/wrap-around review: before the floor fence,
// ack(seq 0, deliveries 1) settled the delivery of seq 32768).
#include <gtest/gtest.h>

#include <chrono>
#include <optional>

#include "ackring/ackring.hpp"
#include "shm/layout.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

constexpr std::uint64_t kWrap = std::uint64_t{2} << detail::kGenerationBits;  // seqs per generation wrap, capacity 2

// Publishes and acks messages until the next one to be delivered is `seq`.
void run_until(Producer& prod, Consumer& cons, std::uint64_t seq) {
  for (;;) {
    const PublishResult r = prod.try_publish("filler");
    ASSERT_TRUE(r.ok()) << to_string(r.status);
    auto d = cons.try_receive();
    ASSERT_TRUE(d);
    ASSERT_EQ(cons.ack(*d), Status::ok);
    if (d->seq() + 1 == seq) return;
  }
}

// Each test runs on a fresh queue path and opens what it needs (QueueTest).
using ReceiptFence = ackring::testing::QueueTest;

TEST_F(ReceiptFence, should_not_let_an_acked_receipt_settle_the_delivery_of_the_same_slot_and_generation_laps_later) {
  auto& [q, cons, prod] = open(small_options(2));
  ASSERT_TRUE(prod.try_publish("first").ok());
  auto first = cons.try_receive();
  ASSERT_TRUE(first);
  ASSERT_EQ(first->seq(), 0u);
  const Receipt stale = first->receipt();
  ASSERT_EQ(cons.ack(stale), Status::ok);
  run_until(prod, cons, kWrap);
  ASSERT_TRUE(prod.try_publish("wrapped").ok());
  auto wrapped = cons.try_receive();
  ASSERT_TRUE(wrapped);
  ASSERT_EQ(wrapped->seq(), kWrap);
  ASSERT_EQ(wrapped->deliveries(), stale.deliveries);
  // Same slot, same generation, same member, same delivery count: only the floor tells them apart.
  EXPECT_EQ(cons.ack(stale), Status::lease_lost);
  EXPECT_EQ(cons.nack(stale), Status::lease_lost);
  EXPECT_EQ(cons.extend(stale, 10s), Status::lease_lost);
  EXPECT_EQ(cons.reject(stale), Status::lease_lost);
  EXPECT_EQ(cons.ack(*wrapped), Status::ok);  // its real holder still holds it
}

TEST_F(ReceiptFence, should_not_let_an_expired_and_redelivered_receipt_settle_a_delivery_laps_later) {
  auto& q = create(small_options(2));
  ConsumerOptions short_lease;
  short_lease.lease = 20ms;
  auto holder = q.consumer("g", short_lease);
  auto other = q.consumer("g");
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("first").ok());
  auto first = holder.try_receive();
  ASSERT_TRUE(first);
  const Receipt stale = first->receipt();
  // The lease runs out; the other member takes it over and acks it.
  std::optional<Delivery> again;
  for (int i = 0; i < 1000 && !again; ++i) again = other.receive(10ms);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->seq(), stale.seq);
  ASSERT_EQ(other.ack(*again), Status::ok);
  // The holder itself consumes the ring round to the wrap, then holds seq 32768.
  run_until(prod, holder, kWrap);
  ASSERT_TRUE(prod.try_publish("wrapped").ok());
  auto wrapped = holder.try_receive();
  ASSERT_TRUE(wrapped);
  ASSERT_EQ(wrapped->seq(), kWrap);
  EXPECT_EQ(holder.ack(stale), Status::lease_lost);
  EXPECT_EQ(holder.ack(*wrapped), Status::ok);
}

TEST_F(ReceiptFence, should_not_let_another_member_settle_a_lease_with_a_copied_receipt) {
  auto& q = create(small_options());
  auto a = q.consumer("g");
  auto b = q.consumer("g");
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("m").ok());
  auto d = a.try_receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(b.ack(*d), Status::lease_lost);  // b holds no lease on it
  EXPECT_EQ(a.ack(*d), Status::ok);
}

}  // namespace
}  // namespace ackring::testing
