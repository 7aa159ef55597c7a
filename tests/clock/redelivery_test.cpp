// Redelivery back-off with jitter, and the signals an operator reads about
// leases, retries and dedup — on the test build's controlled clock
// (src/shm/clock.hpp): every deadline is reached by setting the clock, never by
// sleeping, so no verdict depends on timing.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ackring/ackring.hpp"
#include "shm/clock.hpp"
#include "shm/redelivery.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using ackring::ConsumerOptions;
using ackring::Delivery;
using ackring::GroupOptions;
using ackring::Jitter;
using ackring::Millis;
using ackring::Queue;
using ackring::QueueOptions;
using ackring::RedeliveryPolicy;
using ackring::Status;
using ackring::testing::group_stats;
using ackring::testing::small_options;
using ackring::testing::TempQueue;
namespace detail = ackring::detail;

namespace {

// Freezes the coarse monotonic clock for the test and moves it on demand.
class ControlledClock : public ::testing::Test {
 protected:
  void SetUp() override {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    start_ = static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
    set(0);
  }
  void TearDown() override { detail::test_clock::frozen_ms.store(0); }
  // The clock reads start + ms from now on.
  void set(std::uint64_t ms) { detail::test_clock::frozen_ms.store(start_ + ms); }

  [[nodiscard]] static QueueOptions options(std::uint32_t max_deliveries = 20) {
    QueueOptions o = small_options(64);
    o.max_deliveries = max_deliveries;
    o.default_lease = Millis{50};
    return o;
  }
  [[nodiscard]] static ConsumerOptions with_policy(RedeliveryPolicy p) {
    ConsumerOptions c;
    c.group.redelivery = p;
    return c;
  }

  std::uint64_t start_ = 0;
};

RedeliveryPolicy policy(std::int64_t initial, double multiplier, std::int64_t max, Jitter jitter) {
  return RedeliveryPolicy{Millis{initial}, multiplier, Millis{max}, jitter};
}

}  // namespace

// ---- the arithmetic ------------------------------------------------------------

TEST(RedeliveryPolicy, should_grow_by_the_multiplier_up_to_the_max) {
  const auto w = detail::RedeliveryWord::decode(detail::encode_redelivery(policy(100, 2.0, 1000, Jitter::none)));
  const std::vector<std::uint64_t> want = {100, 200, 400, 800, 1000, 1000, 1000};
  for (std::uint32_t d = 1; d <= want.size(); ++d) {
    SCOPED_TRACE(d);
    EXPECT_EQ(detail::backoff_base_ms(w, d), want[d - 1]);
    EXPECT_EQ(detail::backoff_ms(w, d, 12345), want[d - 1]);  // no jitter: the random value is unused
  }
  // A fractional multiplier, and the largest delivery count (no overflow).
  const auto slow = detail::RedeliveryWord::decode(detail::encode_redelivery(policy(1000, 1.5, 5000, Jitter::none)));
  EXPECT_EQ(detail::backoff_base_ms(slow, 2), 1500u);
  EXPECT_EQ(detail::backoff_base_ms(slow, 3), 2250u);
  EXPECT_EQ(detail::backoff_base_ms(slow, 254), 5000u);
}

TEST(RedeliveryPolicy, should_keep_equal_jitter_in_the_upper_half_and_full_jitter_below_the_delay) {
  const auto equal = detail::RedeliveryWord::decode(detail::encode_redelivery(policy(1000, 1.0, 1000, Jitter::equal)));
  const auto full = detail::RedeliveryWord::decode(detail::encode_redelivery(policy(1000, 1.0, 1000, Jitter::full)));
  std::uint64_t state = 42;
  std::set<std::uint64_t> equal_seen, full_seen;
  for (int i = 0; i < 2000; ++i) {
    const std::uint64_t e = detail::backoff_ms(equal, 1, detail::splitmix64(state));
    const std::uint64_t f = detail::backoff_ms(full, 1, detail::splitmix64(state));
    ASSERT_GE(e, 500u);
    ASSERT_LE(e, 1000u);
    ASSERT_LE(f, 1000u);
    equal_seen.insert(e);
    full_seen.insert(f);
  }
  // Spread over the range (a fixed seed: the same values every run).
  EXPECT_GT(equal_seen.size(), 300u);
  EXPECT_GT(full_seen.size(), 600u);
  EXPECT_LT(*full_seen.begin(), 100u);
  EXPECT_LT(*equal_seen.begin(), 550u);
  EXPECT_GT(*equal_seen.rbegin(), 950u);
}

TEST(RedeliveryPolicy, should_round_trip_through_its_word_and_refuse_bad_values) {
  const RedeliveryPolicy p = policy(250, 1.5, 60'000, Jitter::full);
  EXPECT_EQ(detail::decode_redelivery(detail::encode_redelivery(p)), p);
  EXPECT_EQ(detail::encode_redelivery(RedeliveryPolicy{}), 0u);  // off by default
  EXPECT_FALSE(detail::redelivery_policy_error(p));
  EXPECT_TRUE(detail::redelivery_policy_error(policy(-1, 2, 100, Jitter::none)));
  EXPECT_TRUE(detail::redelivery_policy_error(policy(100, 0.5, 1000, Jitter::none)));
  EXPECT_TRUE(detail::redelivery_policy_error(policy(100, 26, 1000, Jitter::none)));
  EXPECT_TRUE(detail::redelivery_policy_error(policy(100, 2, 50, Jitter::none)));  // max below initial
  EXPECT_TRUE(detail::redelivery_policy_error(policy(100, 2, 1ll << 26, Jitter::none)));
  EXPECT_TRUE(detail::redelivery_policy_error(policy(100, 2, 1000, static_cast<Jitter>(7))));
}

TEST(RedeliveryPolicy, should_put_ack_latencies_in_power_of_two_buckets) {
  EXPECT_EQ(detail::latency_bucket(0), 0u);
  EXPECT_EQ(detail::latency_bucket(1), 1u);
  EXPECT_EQ(detail::latency_bucket(3), 2u);
  EXPECT_EQ(detail::latency_bucket(300), 9u);  // [256, 512)
  EXPECT_EQ(detail::latency_bucket(1ull << 40), detail::kLatencyBuckets - 1);
  for (std::uint32_t b = 1; b < detail::kLatencyBuckets; ++b) EXPECT_EQ(detail::latency_bucket(detail::latency_bucket_floor(b)), b);
}

// ---- the queue, on the controlled clock --------------------------------------

TEST_F(ControlledClock, should_redeliver_a_nacked_message_on_the_policys_schedule) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), options());
  auto cons = q.consumer("g", with_policy(policy(100, 2.0, 1000, Jitter::none)));
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("poison").ok());
  std::uint64_t t = 0;
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  const std::vector<std::uint64_t> delays = {100, 200, 400, 800, 1000, 1000};
  for (std::size_t i = 0; i < delays.size(); ++i) {
    SCOPED_TRACE(i);
    ASSERT_EQ(d->text(), "poison");
    ASSERT_EQ(d->deliveries(), i + 1);
    ASSERT_EQ(cons.nack(d->receipt()), Status::ok);  // delay 0: the group's back-off decides
    EXPECT_EQ(group_stats(q, "g").waiting_redelivery, 1u);
    set(t + delays[i] - 1);
    EXPECT_FALSE(cons.try_receive()) << "visible before its back-off ran out";
    t += delays[i];
    set(t);
    d = cons.try_receive();
    ASSERT_TRUE(d) << "not visible when its back-off ran out";
  }
  const auto g = group_stats(q, "g");
  EXPECT_EQ(g.redelivered_by.nack, delays.size());
  EXPECT_EQ(g.redelivered_by.expiry + g.redelivered_by.death + g.redelivered_by.released, 0u);
  EXPECT_EQ(g.waiting_redelivery, 0u);
  EXPECT_EQ(g.redelivery, policy(100, 2.0, 1000, Jitter::none));
}

TEST_F(ControlledClock, should_let_an_explicit_nack_delay_win_over_the_back_off) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), options());
  auto cons = q.consumer("g", with_policy(policy(10'000, 2.0, 60'000, Jitter::none)));
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("m").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(cons.nack(d->receipt(), Millis{5}), Status::ok);
  set(4);
  EXPECT_FALSE(cons.try_receive());
  set(5);
  auto again = cons.try_receive();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->text(), "m");
  EXPECT_EQ(again->deliveries(), 2u);
}

TEST_F(ControlledClock, should_back_off_an_expired_lease_from_its_deadline) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), options());
  auto holder = q.consumer("g", with_policy(policy(100, 2.0, 1000, Jitter::none)));
  auto other = q.consumer("g");
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("slow").ok());
  auto d = holder.try_receive();  // lease 50 ms: deadline 50
  ASSERT_TRUE(d);
  set(60);  // ran out at 50; back in the group at 50 + 100
  EXPECT_FALSE(other.try_receive());
  EXPECT_EQ(group_stats(q, "g").waiting_redelivery, 1u);
  EXPECT_EQ(holder.ack(*d), Status::lease_lost) << "the holder's receipt must not survive the back-off step";
  set(149);
  EXPECT_FALSE(other.try_receive());
  set(150);
  auto again = other.try_receive();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->text(), "slow");
  EXPECT_EQ(again->deliveries(), 2u);
  // It expires again at 200 (lease 50): the second back-off is 200 ms.
  set(250);
  EXPECT_FALSE(holder.try_receive());
  set(399);
  EXPECT_FALSE(holder.try_receive());
  set(400);
  auto third = holder.try_receive();
  ASSERT_TRUE(third);
  EXPECT_EQ(third->deliveries(), 3u);
  EXPECT_EQ(holder.ack(*third), Status::ok);
  const auto g = group_stats(q, "g");
  EXPECT_EQ(g.redelivered_by.expiry, 2u);
  EXPECT_EQ(g.acked, 1u);
}

TEST_F(ControlledClock, should_take_an_expired_lease_at_once_when_its_back_off_has_passed) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), options());
  auto cons = q.consumer("g", with_policy(policy(100, 2.0, 1000, Jitter::none)));
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("late").ok());
  ASSERT_TRUE(cons.try_receive());
  set(500);  // deadline 50 + back-off 100 passed long ago: no intermediate step
  auto again = cons.try_receive();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->deliveries(), 2u);
}

TEST_F(ControlledClock, should_back_off_the_messages_of_a_member_that_died) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), options());
  q.create_group("g", GroupOptions{.redelivery = policy(300, 2.0, 1000, Jitter::none)});
  {
    auto prod = q.producer();
    ASSERT_TRUE(prod.try_publish("orphan").ok());
  }
  const pid_t child = fork();
  if (child == 0) {
    auto mine = Queue::open(tq.path());
    auto c = mine.consumer("g", ConsumerOptions{.lease = Millis{60'000}});
    _exit(c.try_receive() ? 0 : 1);  // dies holding the lease (no destructor runs)
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto cons = q.consumer("g");  // joining reclaims nothing while a free slot exists
  set(1000);                    // housekeeping is due: the dead member is reclaimed now
  EXPECT_FALSE(cons.try_receive()) << "a dead member's message must wait out the back-off";
  EXPECT_EQ(group_stats(q, "g").waiting_redelivery, 1u);
  set(1299);
  EXPECT_FALSE(cons.try_receive());
  set(1300);
  auto again = cons.try_receive();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->text(), "orphan");
  EXPECT_EQ(again->deliveries(), 2u);
  EXPECT_EQ(group_stats(q, "g").redelivered_by.death, 1u);
}

TEST_F(ControlledClock, should_give_a_closing_members_messages_back_at_once) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), options());
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("handed back").ok());
  {
    auto leaving = q.consumer("g", with_policy(policy(10'000, 2.0, 60'000, Jitter::none)));
    ASSERT_TRUE(leaving.try_receive());
  }
  auto cons = q.consumer("g");
  auto again = cons.try_receive();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->text(), "handed back");
  EXPECT_EQ(group_stats(q, "g").redelivered_by.released, 1u);
}

TEST_F(ControlledClock, should_spread_many_failing_messages_with_jitter) {
  constexpr int kMessages = 40;
  for (const Jitter jitter : {Jitter::equal, Jitter::full}) {
    SCOPED_TRACE(static_cast<int>(jitter));
    set(0);
    TempQueue tq;
    auto q = Queue::create(tq.path(), options());
    auto cons = q.consumer("g", with_policy(policy(1000, 1.0, 1000, jitter)));
    auto prod = q.producer();
    for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
    std::vector<Delivery> batch(kMessages);
    ASSERT_EQ(cons.try_receive_batch(batch), static_cast<std::size_t>(kMessages));
    for (const auto& d : batch) ASSERT_EQ(cons.nack(d.receipt()), Status::ok);
    // Walk the clock 1 ms at a time and note when each message comes back.
    std::map<std::string, std::uint64_t> back_at;
    std::vector<Delivery> got(kMessages);
    for (std::uint64_t t = 0; t <= 1000 && back_at.size() < kMessages; ++t) {
      set(t);
      const std::size_t n = cons.try_receive_batch(got);
      for (std::size_t i = 0; i < n; ++i) {
        EXPECT_EQ(got[i].deliveries(), 2u);
        back_at.emplace(std::string(got[i].text()), t);
      }
      EXPECT_EQ(cons.ack_batch(std::span<const Delivery>(got).first(n)), n);
    }
    ASSERT_EQ(back_at.size(), static_cast<std::size_t>(kMessages)) << "every message is back within max";
    std::set<std::uint64_t> distinct;
    std::uint64_t earliest = ~0ull;
    for (const auto& [text, t] : back_at) {
      distinct.insert(t);
      earliest = std::min(earliest, t);
    }
    if (jitter == Jitter::equal) EXPECT_GE(earliest, 500u) << "equal jitter waits at least half";
    // 40 uniform draws over 500 (equal) or 1000 (full) ms: a fixed spread this
    // small has odds far below 1e-12; in step they would all share one time.
    EXPECT_GE(distinct.size(), 20u);
  }
}

TEST_F(ControlledClock, should_change_the_policy_of_a_live_group) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), options());
  auto cons = q.consumer("g");
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("m").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  q.set_redelivery("g", policy(40, 2.0, 100, Jitter::none));
  EXPECT_EQ(group_stats(q, "g").redelivery, policy(40, 2.0, 100, Jitter::none));
  ASSERT_EQ(cons.nack(d->receipt()), Status::ok);
  set(39);
  EXPECT_FALSE(cons.try_receive());
  set(40);
  EXPECT_TRUE(cons.try_receive());
  EXPECT_THROW(q.set_redelivery("nope", policy(40, 2.0, 100, Jitter::none)), ackring::Error);
  EXPECT_THROW(q.set_redelivery("g", policy(40, 0.5, 100, Jitter::none)), ackring::Error);
  EXPECT_THROW(q.create_group("h", GroupOptions{.redelivery = policy(10, 2.0, 5, Jitter::none)}), ackring::Error);
}

TEST_F(ControlledClock, should_dead_letter_an_exhausted_message_without_backing_off) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), options(/*max_deliveries=*/2));
  auto cons = q.consumer("g", with_policy(policy(10'000, 2.0, 60'000, Jitter::none)));
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("bad").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(cons.nack(d->receipt()), Status::ok);
  set(10'000);
  d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(d->deliveries(), 2u);
  ASSERT_EQ(cons.nack(d->receipt()), Status::ok);  // the last delivery: no back-off before the DLQ
  set(10'001);
  EXPECT_FALSE(cons.try_receive());
  EXPECT_EQ(group_stats(q, "g").dead_lettered, 1u);
}

// ---- the signals ------------------------------------------------------------------

TEST_F(ControlledClock, should_measure_delivery_to_ack_time_and_warn_when_the_lease_is_below_its_p99) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), options());
  auto cons = q.consumer("g", ConsumerOptions{.lease = Millis{200}});
  auto prod = q.producer();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
  // Nine acked after 10 ms, one after 300 ms (past the 200 ms lease, but
  // nobody took it over, so the ack still settles it).
  std::vector<Delivery> batch(10);
  ASSERT_EQ(cons.try_receive_batch(batch), 10u);
  set(10);
  EXPECT_EQ(cons.ack_batch(std::span<const Delivery>(batch).first(9)), 9u);
  set(300);
  EXPECT_EQ(cons.ack(batch[9]), Status::ok);
  auto g = group_stats(q, "g");
  EXPECT_EQ(g.ack_latency.count, 10u);
  EXPECT_EQ(g.ack_latency.sum_ms, 9u * 10 + 300);
  EXPECT_EQ(g.ack_latency.buckets[detail::latency_bucket(10)], 9u);
  EXPECT_EQ(g.ack_latency.buckets[detail::latency_bucket(300)], 1u);
  EXPECT_GE(g.ack_latency.p50_ms, 8.0);
  EXPECT_LT(g.ack_latency.p50_ms, 16.0);
  EXPECT_GE(g.ack_latency.p99_ms, 256.0);
  EXPECT_LT(g.ack_latency.p99_ms, 512.0);
  EXPECT_EQ(g.min_member_lease_ms, 200u);
  EXPECT_TRUE(g.lease_below_p99);
  ASSERT_EQ(g.members.size(), 1u);
  EXPECT_EQ(g.members[0].lease_ms, 200u);
  // A receipt the caller made up is not timed.
  ASSERT_TRUE(prod.try_publish("x").ok());
  auto x = cons.try_receive();
  ASSERT_TRUE(x);
  EXPECT_EQ(cons.ack(ackring::Receipt{x->seq(), x->deliveries()}), Status::ok);
  EXPECT_EQ(group_stats(q, "g").ack_latency.count, 10u);
}

TEST_F(ControlledClock, should_keep_the_signals_of_a_member_that_left) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), options());
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("a").ok());
  ASSERT_TRUE(prod.try_publish("b").ok());
  {
    auto c = q.consumer("g");
    auto d = c.try_receive();
    ASSERT_TRUE(d);
    ASSERT_EQ(c.nack(d->receipt()), Status::ok);
    auto again = c.try_receive();
    ASSERT_TRUE(again);
    set(3);
    ASSERT_EQ(c.ack(*again), Status::ok);
  }
  const auto g = group_stats(q, "g");
  EXPECT_EQ(g.redelivered_by.nack, 1u);
  EXPECT_EQ(g.ack_latency.count, 1u);
  EXPECT_EQ(g.ack_latency.buckets[detail::latency_bucket(3)], 1u);
  EXPECT_EQ(g.min_member_lease_ms, 0u);  // nobody lives: no warning either way
  EXPECT_FALSE(g.lease_below_p99);
}

TEST_F(ControlledClock, should_count_dedup_hits_against_keyed_publishes_and_process_once_skips) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), options());
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("one", {.key = "k1"}).ok());
  auto dup = prod.try_publish("one again", {.key = "k1"});
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup.duplicate);
  ASSERT_TRUE(prod.try_publish("two", {.key = "k2"}).ok());
  ASSERT_TRUE(prod.try_publish("unkeyed").ok());
  auto s = q.stats();
  EXPECT_EQ(s.dedup.keyed_published, 3u);
  EXPECT_EQ(s.dedup.hits, 1u);
  EXPECT_DOUBLE_EQ(s.dedup.hit_ratio, 1.0 / 3.0);

  // Processed, then given back before its ack: the redelivery is skipped.
  auto cons = q.consumer("g");
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(d->text(), "one");
  ASSERT_EQ(cons.mark_processed(*d), Status::ok);
  ASSERT_EQ(cons.nack(d->receipt()), Status::ok);
  auto again = cons.try_receive();
  ASSERT_TRUE(again);
  ASSERT_EQ(again->text(), "one");
  int calls = 0;
  EXPECT_EQ(cons.process_once(*again, [&](const Delivery&) { ++calls; }), Status::duplicate);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(group_stats(q, "g").process_once_skips, 1u);
  // The producer handle closing keeps its counts (retired into the header).
  prod = q.producer();
  s = q.stats();
  EXPECT_EQ(s.dedup.keyed_published, 3u);
  EXPECT_EQ(s.dedup.hits, 1u);
}
