// QueueOptions::publish_timestamp: the clock each publish stamps its message
// with, fixed at creation, stored in the header (and in the journal's QUEUE
// file, so a recovered queue keeps it).
#include <gtest/gtest.h>
#include <time.h>

#include <chrono>
#include <cstdint>

#include "ackring/ackring.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

std::uint64_t clock_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t publish_and_read_time(Queue& q) {
  auto c = q.consumer("g");
  auto p = q.producer();
  EXPECT_TRUE(p.publish("x", 1s).ok());
  auto d = c.receive(1s);
  EXPECT_TRUE(d.has_value());
  if (!d) return 0;
  EXPECT_EQ(c.ack(*d), Status::ok);
  return d->publish_time_ns();
}

// Each test runs on a fresh queue path and opens what it needs (QueueTest).
using PublishClock = ackring::testing::QueueTest;

TEST_F(PublishClock, should_default_to_the_precise_realtime_clock) {
  auto& q = create({});
  q.create_group("g");
  EXPECT_EQ(Queue::open(tq.path()).options().publish_timestamp, PublishTimestamp::precise);
  const std::uint64_t before = clock_ns(CLOCK_REALTIME);
  const std::uint64_t stamped = publish_and_read_time(q);
  const std::uint64_t after = clock_ns(CLOCK_REALTIME);
  EXPECT_GE(stamped, before);
  EXPECT_LE(stamped, after);
}

TEST_F(PublishClock, should_stamp_with_the_coarse_realtime_clock_when_created_so_and_keep_it_on_open) {
  QueueOptions o;
  o.publish_timestamp = PublishTimestamp::coarse;
  auto& q = create(o);
  q.create_group("g");
  EXPECT_EQ(Queue::open(tq.path()).options().publish_timestamp, PublishTimestamp::coarse);
  // The coarse clock is the kernel's last tick: never ahead of the precise
  // clock, and never behind what the coarse clock said before the publish.
  const std::uint64_t before = clock_ns(CLOCK_REALTIME_COARSE);
  const std::uint64_t stamped = publish_and_read_time(q);
  const std::uint64_t after = clock_ns(CLOCK_REALTIME);
  EXPECT_GE(stamped, before);
  EXPECT_LE(stamped, after);
}

TEST_F(PublishClock, should_refuse_a_value_outside_the_enum_as_invalid_argument) {
  QueueOptions o;
  o.publish_timestamp = static_cast<PublishTimestamp>(7);
  EXPECT_TRUE(throws_error([&] { (void)Queue::create(tq.path(), o); }, ErrorCode::invalid_argument));
}

}  // namespace
}  // namespace ackring::testing
