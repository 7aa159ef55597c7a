// A message taken over at max_deliveries goes to the dead-letter queue once,
// even when the member that dead-letters it stalls between the DLQ publish
// and the settle and the expired holder acts on its old receipt meanwhile
// (failure 9: that holder's nack reset the lease, the settle failed, and the
// message was dead-lettered a second time).
#include <gtest/gtest.h>

#include <chrono>

#include "failpoint_util.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

TEST(DeadLetterStall, should_dead_letter_once_when_the_expired_holder_nacks_while_the_taker_stalls_before_settling) {
  TempQueue tq;
  QueueOptions options = small_options(8);
  options.max_deliveries = 1;
  auto q = Queue::create(tq.path(), options);
  ConsumerOptions short_lease;
  short_lease.lease = 50ms;
  auto holder = q.consumer("g", short_lease);
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("poison").ok());
  auto d = holder.try_receive();
  ASSERT_TRUE(d);
  // Another member takes it over once the lease runs out; at max_deliveries
  // it publishes it to the DLQ and stops before settling.
  Child taker = fork_child([&] {
    auto qq = Queue::open(tq.path());
    auto c = qq.consumer("g");
    fp::arm("deadletter.after_publish", fp::Action::stall);
    for (int i = 0; i < 100; ++i) (void)c.receive(10ms);
    return 0;
  });
  ASSERT_EQ(wait_stopped_or_dead(taker, 20s), "stopped");
  EXPECT_EQ(holder.nack(d->receipt()), Status::lease_lost) << "the expired holder still controls a lease taken over";
  EXPECT_EQ(holder.ack(d->receipt()), Status::lease_lost);
  taker.kill(SIGCONT);
  ASSERT_TRUE(taker.wait_for(30s));
  EXPECT_TRUE(taker.exited_ok()) << taker.describe();
  // The holder keeps receiving for a while too: nothing comes back.
  EXPECT_FALSE(holder.receive(200ms));
  auto dlq = Queue::open(tq.dlq_path());
  auto reader = dlq.consumer("dlq");
  std::size_t copies = 0;
  while (auto letter = reader.receive(50ms)) {
    ++copies;
    (void)reader.ack(*letter);
  }
  EXPECT_EQ(copies, 1u);
  EXPECT_EQ(group_stats(q, "g").dead_lettered, 1u);
}

}  // namespace
}  // namespace ackring::testing

namespace ackring::testing {
namespace {

// A drop-group member stopped in the middle of reading a message while
// producers push its group past it and reuse the slot: the message is
// counted dropped once (by the push), not a second time when the member
// resumes and finds the slot moved on (failure 9). Every seq of the group
// ends acked or dropped, exactly once.
TEST(DropStall, should_count_a_message_dropped_once_when_its_reader_stalls_mid_read_and_the_group_is_pushed_past) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), small_options(4));
  q.create_group("lossy", {.overflow = OverflowPolicy::drop});
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("first").ok());
  Child reader = fork_child([&] {
    auto qq = Queue::open(tq.path());
    ConsumerOptions o;
    o.create_group = false;
    auto c = qq.consumer("lossy", o);
    fp::arm("receive.mid_read", fp::Action::stall);
    // Stops inside; after resuming, that read is discarded and the receive
    // goes on to a later message, which it acks.
    if (auto d = c.receive(5s)) ACKRING_CHILD_CHECK(c.ack(*d) == Status::ok, 3);
    return 0;
  });
  ASSERT_EQ(wait_stopped_or_dead(reader, 10s), "stopped");
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(prod.try_publish("more").ok()) << i;  // pushes the group, reuses slot 0
  reader.kill(SIGCONT);
  ASSERT_TRUE(reader.wait_for(20s));
  EXPECT_TRUE(reader.exited_ok()) << reader.describe();
  ConsumerOptions o;
  o.create_group = false;
  auto drain = q.consumer("lossy", o);
  while (auto d = drain.receive(50ms)) ASSERT_EQ(drain.ack(*d), Status::ok);
  const GroupStats g = group_stats(q, "lossy");
  EXPECT_EQ(g.floor, 13u);
  EXPECT_EQ(g.acked + g.dropped, 13u) << "acked " << g.acked << ", dropped " << g.dropped;
}

}  // namespace
}  // namespace ackring::testing
