// The takeover fence (docs/protocol.md §3). A taker reads an expired lease,
// stalls just before its takeover CAS, and the slot goes round 2^14 laps of a
// 2-slot ring while the holder acks everything. The later lap's lease then
// has the bits the taker expects: same holder, delivery count and 14-bit
// generation; the deadline is set equal here, as the clock can make it. The
// taker's CAS succeeds on a message it never read. The floor, read after the
// CAS, is past the seq it meant: it gives the lease back, and the holder's
// ack of the later message succeeds. Without the fence the taker kept the
// lease (it discarded the read: the slot held another seq) and the holder's
// ack answered lease_lost.
//
// With a redelivery back-off the taker's first CAS is the back-off step
// (the expired word to leased(expired, same count)) at the same failpoint,
// fenced the same way: the second test runs the scenario through it.
//
// The situation is made on purpose: the taker stops itself at the failpoint
// (`takeover.before_lease_cas`), the parent drives every lap while it is
// stopped and resumes it only then. No verdict depends on timing.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>

#include "failpoint_util.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

constexpr std::uint64_t kCapacity = 2;
// 2^14 laps of the ring: the lease generation (14 bits) is the same again.
constexpr std::uint64_t kLaterLap = kCapacity << detail::kGenerationBits;

struct Shared {
  std::atomic<int> resumed{0};
};

void stalled_taker_lands_on_a_later_lap(const RedeliveryPolicy& redelivery) {
  TempQueue tq;
  QueueOptions options;
  options.capacity = kCapacity;
  options.max_message_size = 64;
  auto q = Queue::create(tq.path(), options);
  q.create_group("g", GroupOptions{.redelivery = redelivery});
  auto holder = q.consumer("g", {.lease = 100ms});
  auto producer = q.producer();
  ASSERT_TRUE(producer.publish("seq 0", 1s).ok());
  auto first = holder.receive(1s);
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->seq(), 0u);

  RawQueueFile raw(tq.path());
  const int g = raw.group_index("g");
  ASSERT_GE(g, 0);
  const auto group = static_cast<std::uint32_t>(g);
  // The word the taker will read: the holder's lease of seq 0.
  const std::uint64_t seq0_lease = raw.lease(group, 0).load();
  ASSERT_EQ(detail::LeaseWord::decode(seq0_lease).state, detail::LeaseState::leased);

  SharedBlock<Shared> shared;
  Child taker = fork_child([&] {
    auto cq = Queue::open(tq.path());
    auto c = cq.consumer("g", {.lease = 100ms});
    fp::arm("takeover.before_lease_cas", fp::Action::stall);
    // Poll until seq 0's lease has run out and the takeover reaches the
    // failpoint (the process stops there); the call that stopped returns
    // once resumed. Nothing may be delivered to us.
    for (;;) {
      const bool resumed_before = shared->resumed.load() != 0;
      if (auto d = c.try_receive()) return 10 + static_cast<int>(d->seq() & 0xf);
      if (resumed_before || shared->resumed.load() != 0) return 0;
      ::usleep(1000);
    }
  });
  ASSERT_EQ(wait_stopped_or_dead(taker, 20s), "stopped") << taker.describe();

  // The taker stopped before its CAS: the holder still holds seq 0.
  ASSERT_EQ(holder.ack(*first), Status::ok);
  // Go round the ring 2^14 times; keep the lease of seq kLaterLap.
  std::optional<Delivery> later;
  for (std::uint64_t seq = 1; seq <= kLaterLap; ++seq) {
    const std::string text = "seq " + std::to_string(seq);
    ASSERT_EQ(producer.publish(text, 1s).seq, seq);
    auto d = holder.receive(1s);
    ASSERT_TRUE(d.has_value() && d->seq() == seq) << "seq " << seq;
    if (seq == kLaterLap) {
      later = std::move(d);
    } else {
      ASSERT_EQ(holder.ack(*d), Status::ok) << "seq " << seq;
    }
  }
  // Same slot, member, count and generation; give it seq 0's deadline too.
  auto& word = raw.lease(group, kLaterLap);
  std::uint64_t later_lease = word.load();
  auto a = detail::LeaseWord::decode(later_lease);
  const auto b = detail::LeaseWord::decode(seq0_lease);
  ASSERT_EQ(a.state, b.state);
  ASSERT_EQ(a.generation, b.generation);
  ASSERT_EQ(a.owner, b.owner);
  ASSERT_EQ(a.deliveries, b.deliveries);
  ASSERT_TRUE(word.compare_exchange_strong(later_lease, seq0_lease));

  shared->resumed.store(1);
  taker.kill(SIGCONT);
  ASSERT_TRUE(taker.wait_for(20s)) << "the resumed taker did not return";
  EXPECT_TRUE(taker.exited_ok()) << "the taker was handed a message: " << taker.describe();

  EXPECT_EQ(detail::LeaseWord::decode(word.load()).owner, b.owner)
      << "the lease of seq " << kLaterLap << " is not its holder's any more";
  EXPECT_EQ(holder.ack(*later), Status::ok) << "a stale takeover took the later lap's lease";
  EXPECT_EQ(q.stats().groups.at(0).floor, kLaterLap + 1);
}

TEST(TakeoverFence, should_give_back_a_later_laps_lease_that_a_stalled_taker_took_over) {
  stalled_taker_lands_on_a_later_lap(RedeliveryPolicy{});
}

TEST(TakeoverFence, should_give_back_a_later_laps_lease_that_a_stalled_back_off_step_took) {
  // A back-off far longer than the test: the taker's CAS is always the back-off step.
  stalled_taker_lands_on_a_later_lap(RedeliveryPolicy{.initial = Millis{3'600'000}, .max = Millis{3'600'000}});
}

}  // namespace
}  // namespace ackring::testing
