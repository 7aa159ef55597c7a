// ConsumerOptions::linger: a receive_batch that came back short waits, then
// takes more. The consumer process is stopped (SIGSTOP) or killed at
// receive.linger — holding the leases of the short batch — and the test makes
// what the step allows happen meanwhile, on purpose: messages published while
// it lingers (they join its batch), its leases running out and being taken
// over (its late acks are refused), its death (its leases come back). Checked
// by content: each message is the one published, acked once.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <vector>

#include "failpoint_util.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

constexpr std::size_t kMaxSize = 64;
constexpr std::size_t kBatch = 8;

// What the lingering consumer reports: the ids it received, in order, and how
// many of them its ack_batch settled.
struct BatchReport {
  std::atomic<std::uint32_t> received{0};
  std::atomic<std::uint32_t> acked{0};
  std::atomic<std::uint32_t> malformed{0};
  std::array<std::atomic<std::uint64_t>, 64> ids{};  // producer << 32 | counter
};

std::uint64_t packed(MessageId id) { return (std::uint64_t{id.producer} << 32) | id.counter; }

class LingerStep : public ::testing::Test {
 protected:
  LingerStep() {
    QueueOptions options;
    options.capacity = 256;
    options.max_message_size = kMaxSize;
    q_.emplace(Queue::create(tq_.path(), options));
    q_->create_group("g");
    prod_.emplace(q_->producer());
  }
  void publish(MessageId id) {
    make_payload(id, kMaxSize, bytes_);
    ASSERT_TRUE(prod_->publish(Bytes(bytes_), 1s).ok());
  }
  // A member of "g" in a child process: one receive_batch of `batch` with
  // `options` (linger set), armed to `action` at receive.linger, then one
  // ack_batch of what it got; reports into report_.
  Child start_consumer(ConsumerOptions options, fp::Action action, std::size_t batch = kBatch) {
    return fork_child([this, options, action, batch] {
      auto qq = Queue::open(tq_.path());
      auto c = qq.consumer("g", options);
      std::vector<Delivery> buf(batch);
      fp::arm("receive.linger", action);
      const std::size_t n = c.receive_batch(buf, 10s);
      for (std::size_t i = 0; i < n; ++i) {
        const auto id = check_payload(buf[i].payload(), kMaxSize);
        if (!id) report_->malformed.fetch_add(1);
        else report_->ids[i].store(packed(*id));
      }
      report_->received.store(static_cast<std::uint32_t>(n));
      report_->acked.store(static_cast<std::uint32_t>(c.ack_batch(std::span(buf.data(), n))));
      return 0;
    });
  }

  TempQueue tq_;
  std::optional<Queue> q_;
  std::optional<Producer> prod_;
  std::vector<std::byte> bytes_;
  SharedBlock<BatchReport> report_;
};

TEST_F(LingerStep, should_take_into_its_batch_what_was_published_while_it_lingered) {
  publish({1, 0});
  Child consumer = start_consumer({.linger = 1ms}, fp::Action::stall);
  ASSERT_EQ(wait_stopped_or_dead(consumer, 10s), "stopped");  // it holds {1,0}'s lease, lingering
  for (std::uint32_t i = 1; i < 4; ++i) publish({1, i});
  consumer.kill(SIGCONT);
  ASSERT_TRUE(consumer.wait_for(10s));
  ASSERT_TRUE(consumer.exited_ok()) << consumer.describe();
  ASSERT_EQ(report_->received.load(), 4u);  // one batch: the message it had and the three that came
  for (std::uint32_t i = 0; i < 4; ++i) EXPECT_EQ(report_->ids[i].load(), packed({1, i})) << "position " << i;
  EXPECT_EQ(report_->malformed.load(), 0u);
  EXPECT_EQ(report_->acked.load(), 4u);
  EXPECT_EQ(q_->stats().groups.at(0).acked, 4u);
}

TEST_F(LingerStep, should_lose_to_a_takeover_the_leases_it_held_while_stalled_past_them) {
  publish({2, 0});
  Child consumer = start_consumer({.lease = 100ms, .linger = 1ms}, fp::Action::stall);
  ASSERT_EQ(wait_stopped_or_dead(consumer, 10s), "stopped");
  // Another member takes the message back once the stalled one's lease ran out.
  auto other = q_->consumer("g");
  auto d = other.receive(10s);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(check_payload(d->payload(), kMaxSize), std::optional<MessageId>({2, 0}));
  EXPECT_EQ(d->deliveries(), 2u);
  ASSERT_EQ(other.ack(*d), Status::ok);
  consumer.kill(SIGCONT);
  ASSERT_TRUE(consumer.wait_for(10s));
  ASSERT_TRUE(consumer.exited_ok()) << consumer.describe();
  EXPECT_EQ(report_->received.load(), 1u);
  EXPECT_EQ(report_->ids[0].load(), packed({2, 0}));
  EXPECT_EQ(report_->acked.load(), 0u);  // its receipt names the first delivery: lease_lost
  EXPECT_EQ(q_->stats().groups.at(0).acked, 1u);
}

TEST_F(LingerStep, should_give_back_the_leases_of_a_consumer_that_died_lingering) {
  publish({3, 0});
  publish({3, 1});
  Child consumer = start_consumer({.lease = 60s, .linger = 1ms}, fp::Action::die);
  ASSERT_EQ(wait_stopped_or_dead(consumer, 10s), "dead");
  EXPECT_EQ(report_->received.load(), 0u);  // it died before reporting
  auto other = q_->consumer("g");
  std::vector<Delivery> buf(kBatch);
  std::size_t got = 0;
  while (got < 2) {
    const std::size_t n = other.receive_batch(std::span(buf.data() + got, buf.size() - got), 10s);
    ASSERT_NE(n, 0u) << "the dead consumer's leases did not come back";
    got += n;
  }
  ASSERT_EQ(got, 2u);
  for (std::uint32_t i = 0; i < 2; ++i) {
    EXPECT_EQ(check_payload(buf[i].payload(), kMaxSize), std::optional<MessageId>({3, i}));
    EXPECT_EQ(buf[i].deliveries(), 2u);
  }
  EXPECT_EQ(other.ack_batch(std::span(buf.data(), got)), 2u);
}

// A copying consumer (at-most-once) owns 64 payload copies: a batch that
// lingers must not hold more, or the last copies would overwrite the first.
TEST_F(LingerStep, should_keep_a_copying_consumers_lingered_batch_within_its_copies) {
  for (std::uint32_t i = 0; i < 10; ++i) publish({4, i});
  Child consumer =
      start_consumer({.mode = DeliveryMode::at_most_once, .linger = 1ms}, fp::Action::stall, /*batch=*/100);
  ASSERT_EQ(wait_stopped_or_dead(consumer, 10s), "stopped");  // it holds copies of the first 10
  for (std::uint32_t i = 10; i < 100; ++i) publish({4, i});
  consumer.kill(SIGCONT);
  ASSERT_TRUE(consumer.wait_for(10s));
  ASSERT_TRUE(consumer.exited_ok()) << consumer.describe();
  ASSERT_EQ(report_->received.load(), 64u);
  for (std::uint32_t i = 0; i < 64; ++i) EXPECT_EQ(report_->ids[i].load(), packed({4, i})) << "position " << i;
  EXPECT_EQ(report_->malformed.load(), 0u);
}

}  // namespace
}  // namespace ackring::testing
