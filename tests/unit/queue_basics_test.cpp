// What holds in every setting a queue and its consumer can have: the same
// test bodies run over delivery mode x overflow policy x durability.
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "ackring/ackring.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {

namespace {

using Setting = std::tuple<DeliveryMode, OverflowPolicy, Durability>;

class EverySetting : public ackring::testing::QueueTest, public ::testing::WithParamInterface<Setting> {
 protected:
  [[nodiscard]] DeliveryMode mode() const { return std::get<DeliveryMode>(GetParam()); }

  // small_options with the durability under test; a journal goes to journal().
  [[nodiscard]] QueueOptions options(std::uint32_t capacity, std::uint32_t max_message_size) {
    QueueOptions o = small_options(capacity, max_message_size);
    o.durability = std::get<Durability>(GetParam());
    if (o.durability != Durability::none) o.journal_dir = journal().root().string();
    return o;
  }
  [[nodiscard]] ConsumerOptions consumer_options() const {
    return {.mode = mode(), .group = {.overflow = std::get<OverflowPolicy>(GetParam())}};
  }
  // The answer to the first ack of a delivery: at-most-once settled it on receive already.
  [[nodiscard]] Status first_ack() const { return mode() == DeliveryMode::at_least_once ? Status::ok : Status::lease_lost; }
};

// The same, without async durability: there a slot is free again only once
// its record is on disk, up to a flush interval after the ack, so a
// try_publish into a ring that wraps at once meets queue_full by design.
class EveryWrappingSetting : public EverySetting {};

std::string setting_name(const ::testing::TestParamInfo<Setting>& info) {
  const auto [mode, overflow, durability] = info.param;
  std::string name = mode == DeliveryMode::at_least_once ? "at_least_once" : "at_most_once";
  name += overflow == OverflowPolicy::block ? "_block" : "_drop";
  name += durability == Durability::none ? "_memory" : durability == Durability::async ? "_async" : "_sync";
  return name;
}

const auto kModes = ::testing::Values(DeliveryMode::at_least_once, DeliveryMode::at_most_once);
const auto kOverflows = ::testing::Values(OverflowPolicy::block, OverflowPolicy::drop);

}  // namespace

TEST_P(EverySetting, should_deliver_a_published_message_and_accept_its_ack) {
  auto& [q, cons, prod] = open(options(8, 64), consumer_options());
  auto r = prod.try_publish("hello");
  ASSERT_TRUE(r.ok());
  auto d = cons.receive(100ms);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text(), "hello");
  EXPECT_EQ(d->seq(), r.seq);
  EXPECT_EQ(cons.ack(*d), first_ack());
  EXPECT_EQ(cons.ack(*d), Status::lease_lost);
}

TEST_P(EveryWrappingSetting, should_wrap_around_the_ring_many_times_without_losing_or_mixing_messages) {
  auto& [q, cons, prod] = open(options(4, 16), consumer_options());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(prod.try_publish("n" + std::to_string(i)).ok()) << i;
    auto d = cons.try_receive();
    ASSERT_TRUE(d) << i;
    EXPECT_EQ(d->seq(), static_cast<std::uint64_t>(i));
    EXPECT_EQ(d->text(), "n" + std::to_string(i));
    ASSERT_EQ(cons.ack(*d), first_ack());
  }
}

INSTANTIATE_TEST_SUITE_P(Queue, EverySetting,
                         ::testing::Combine(kModes, kOverflows,
                                            ::testing::Values(Durability::none, Durability::async, Durability::sync)),
                         setting_name);
INSTANTIATE_TEST_SUITE_P(Queue, EveryWrappingSetting,
                         ::testing::Combine(kModes, kOverflows, ::testing::Values(Durability::none, Durability::sync)),
                         setting_name);

}  // namespace ackring::testing
