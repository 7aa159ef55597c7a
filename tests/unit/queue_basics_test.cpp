#include <gtest/gtest.h>

#include "ackring/ackring.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

// Each test runs on a fresh queue path and opens what it needs (QueueTest).
using QueueBasics = ackring::testing::QueueTest;

TEST_F(QueueBasics, should_deliver_a_published_message_and_accept_its_ack) {
  auto& q = create({.capacity = 8, .max_message_size = 64});
  auto prod = q.producer();
  auto cons = q.consumer("g");
  auto r = prod.try_publish("hello");
  ASSERT_TRUE(r.ok());
  auto d = cons.receive(100ms);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text(), "hello");
  EXPECT_EQ(d->seq(), r.seq);
  EXPECT_EQ(cons.ack(*d), ackring::Status::ok);
  EXPECT_EQ(cons.ack(*d), ackring::Status::lease_lost);
}
