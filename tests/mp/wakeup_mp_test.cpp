// Sleeping across processes: a publish blocked on a full ring is woken by an
// ack in another process, and a receive asleep on an empty ring is woken by a
// commit in another process (shared futexes, wait.hpp).
//
// Both sleepers also re-check on their own (a producer at least every 10 ms,
// an idle consumer every 50 ms), so "it returned" alone would not prove a
// wake-up. Each round therefore first sees the sleeper registered as a
// waiter (the waiter count in the file header) and asleep for a while, then
// acts, and the test looks at how long the sleeper took to return: with a
// wake-up that is well under a millisecond; relying on the re-checks it
// would be several milliseconds on average.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ackring/ackring.hpp"
#include "mp_util.hpp"
#include "process_util.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

constexpr std::uint32_t kMaxMessageSize = 64;
constexpr int kRounds = 15;

struct Rounds {
  std::atomic<std::uint32_t> done{0};  // rounds the sleeper has finished
  std::atomic<std::uint64_t> act_ns[kRounds]{};     // when the waker acted (just before the call)
  std::atomic<std::uint64_t> return_ns[kRounds]{};  // when the sleeper's call returned
  std::atomic<std::uint32_t> ok[kRounds]{};
};

double median_ms(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void wait_for_waiter(const std::atomic<std::uint32_t>& waiters) {
  const std::uint64_t deadline = now_ms() + 5000;
  while (waiters.load(std::memory_order_acquire) == 0 && now_ms() < deadline) ::usleep(100);
  ACKRING_CHILD_CHECK(waiters.load(std::memory_order_acquire) != 0, 60);
  sleep_ms(25);  // the sleeper re-checks every 10 ms: let it settle into a sleep
}

std::vector<double> latencies(const Rounds& r) {
  std::vector<double> out;
  for (int i = 0; i < kRounds; ++i) {
    EXPECT_EQ(r.ok[i].load(), 1u) << "round " << i;
    const std::uint64_t act = r.act_ns[i].load();
    const std::uint64_t ret = r.return_ns[i].load();
    EXPECT_GT(ret, act) << "round " << i << ": the sleeper returned before the other process acted";
    out.push_back(static_cast<double>(ret - act) / 1e6);
  }
  return out;
}

TEST(CrossProcessWakeup, should_wake_a_publish_blocked_on_a_full_queue_by_an_ack_in_another_process) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), {.capacity = 4, .max_message_size = kMaxMessageSize});
  q.create_group("g");
  SharedBlock<Rounds> rounds;

  Child producer = fork_child([&] {
    auto qq = Queue::open(tq.path());
    auto p = qq.producer();
    std::vector<std::byte> buf;
    for (std::uint32_t i = 0; i < 4; ++i) {
      make_payload({0, i}, kMaxMessageSize, buf);
      ACKRING_CHILD_CHECK(p.try_publish(Bytes(buf)).ok(), 61);
    }
    make_payload({0, 4}, kMaxMessageSize, buf);
    ACKRING_CHILD_CHECK(p.try_publish(Bytes(buf)).status == Status::queue_full, 62);
    for (int r = 0; r < kRounds; ++r) {
      make_payload({0, 4u + r}, kMaxMessageSize, buf);
      const auto res = p.publish(Bytes(buf), 10s);
      rounds->return_ns[r].store(now_ns());
      rounds->ok[r].store(res.ok() ? 1 : 0);
      rounds->done.store(static_cast<std::uint32_t>(r + 1), std::memory_order_release);
    }
    return 0;
  });
  Child consumer = fork_child([&] {
    RawQueueFile raw(tq.path());
    auto qq = Queue::open(tq.path());
    ConsumerOptions co;
    co.create_group = false;
    auto c = qq.consumer("g", co);
    for (int r = 0; r < kRounds; ++r) {
      while (rounds->done.load(std::memory_order_acquire) != static_cast<std::uint32_t>(r)) ::usleep(100);
      auto d = c.receive(5s);
      ACKRING_CHILD_CHECK(d.has_value(), 63);
      wait_for_waiter(raw.header().space_waiters);  // the producer sleeps for room
      rounds->act_ns[r].store(now_ns());
      ACKRING_CHILD_CHECK(c.ack(*d) == Status::ok, 64);
    }
    return 0;
  });
  ASSERT_TRUE(producer.wait_for(30s)) << "producer hung";
  ASSERT_TRUE(consumer.wait_for(10s)) << "consumer hung";
  ASSERT_TRUE(producer.exited_ok()) << producer.describe();
  ASSERT_TRUE(consumer.exited_ok()) << consumer.describe();
  const auto l = latencies(*rounds);
  const double med = median_ms(l);
  std::printf("ack -> blocked publish returned: median %.3f ms, max %.3f ms\n", med, *std::max_element(l.begin(), l.end()));
  // Without a cross-process wake-up the producer notices room on its 10 ms
  // re-check: a median of ~5 ms.
  EXPECT_LT(med, 2.0) << "a blocked publish was not woken by the ack (it found room on its own re-check)";
}

TEST(CrossProcessWakeup, should_wake_a_receive_asleep_on_an_empty_queue_by_a_publish_in_another_process) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), {.capacity = 16, .max_message_size = kMaxMessageSize});
  q.create_group("g");
  SharedBlock<Rounds> rounds;

  Child consumer = fork_child([&] {
    auto qq = Queue::open(tq.path());
    ConsumerOptions co;
    co.create_group = false;
    co.spin = 0us;
    auto c = qq.consumer("g", co);
    for (int r = 0; r < kRounds; ++r) {
      auto d = c.receive(10s);
      rounds->return_ns[r].store(now_ns());
      rounds->ok[r].store(d.has_value() ? 1 : 0);
      if (d) ACKRING_CHILD_CHECK(c.ack(*d) == Status::ok, 65);
      rounds->done.store(static_cast<std::uint32_t>(r + 1), std::memory_order_release);
    }
    return 0;
  });
  Child producer = fork_child([&] {
    RawQueueFile raw(tq.path());
    auto qq = Queue::open(tq.path());
    auto p = qq.producer();
    std::vector<std::byte> buf;
    for (int r = 0; r < kRounds; ++r) {
      while (rounds->done.load(std::memory_order_acquire) != static_cast<std::uint32_t>(r)) ::usleep(100);
      wait_for_waiter(raw.header().commit_waiters);  // the consumer sleeps for a message
      make_payload({0, static_cast<std::uint32_t>(r)}, kMaxMessageSize, buf);
      rounds->act_ns[r].store(now_ns());
      ACKRING_CHILD_CHECK(p.try_publish(Bytes(buf)).ok(), 66);
    }
    return 0;
  });
  ASSERT_TRUE(consumer.wait_for(30s)) << "consumer hung";
  ASSERT_TRUE(producer.wait_for(10s)) << "producer hung";
  ASSERT_TRUE(consumer.exited_ok()) << consumer.describe();
  ASSERT_TRUE(producer.exited_ok()) << producer.describe();
  const auto l = latencies(*rounds);
  const double med = median_ms(l);
  std::printf("publish -> sleeping receive returned: median %.3f ms, max %.3f ms\n", med,
              *std::max_element(l.begin(), l.end()));
  // An idle consumer re-checks every 50 ms on its own: ~25 ms without a wake-up.
  EXPECT_LT(med, 5.0) << "a sleeping receive was not woken by the publish";
}

}  // namespace
}  // namespace ackring::testing
