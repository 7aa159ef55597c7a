// The clock behind every publish's claim time and publish time
// (src/shm/tsc_clock.hpp). Every reading is checked against the kernel's
// clocks read just before and just after it: a preemption in between only
// widens that bracket, so no verdict here depends on timing. The tolerances
// are the clock's error budget with room for a slow VM: the publish time is
// within ~0.1 us of clock_gettime (the anchor pair's width plus the scale's
// error over one ms), the claim time at most 1 ms older than the coarse
// clock plus one of its ticks, and never ahead of it.
#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <cstdint>

#include "shm/clock.hpp"
#include "shm/tsc_clock.hpp"

namespace ackring::testing {
namespace {

using detail::ClockReading;
using detail::coarse_monotonic_ms;
using detail::realtime_ns;
using detail::TscClock;

constexpr std::uint64_t kRealtimeToleranceNs = 200'000;
constexpr std::uint64_t kClaimAgeToleranceMs = 1 + 10;  // anchor life + a coarse tick (1-4 ms) with room

// Reads the clock until it has calibrated itself (or 2 s passed).
bool calibrate(TscClock& clock) {
  const std::uint64_t give_up = coarse_monotonic_ms() + 2000;
  while (clock.scale_q32() == 0 && coarse_monotonic_ms() < give_up) (void)clock.now();
  return clock.scale_q32() != 0;
}

// One reading between two of the kernel's, with the worst deviations seen.
struct Bracket {
  std::uint64_t realtime_early = 0, realtime_late = 0;  // ns the reading fell outside [before, after]
  std::uint64_t claim_age = 0;                          // ms the claim time is behind the coarse clock before
  std::uint64_t claim_ahead = 0;                        // ms the claim time is ahead of the coarse clock after

  void read(TscClock& clock) {
    const std::uint64_t ms_before = coarse_monotonic_ms();
    const std::uint64_t before = realtime_ns();
    const ClockReading r = clock.now();
    const std::uint64_t after = realtime_ns();
    const std::uint64_t ms_after = coarse_monotonic_ms();
    if (r.realtime_ns < before) realtime_early = std::max(realtime_early, before - r.realtime_ns);
    if (r.realtime_ns > after) realtime_late = std::max(realtime_late, r.realtime_ns - after);
    if (r.coarse_ms < ms_before) claim_age = std::max(claim_age, ms_before - r.coarse_ms);
    if (r.coarse_ms > ms_after) claim_ahead = std::max(claim_ahead, r.coarse_ms - ms_after);
  }
  void expect_within_budget() const {
    EXPECT_LE(realtime_early, kRealtimeToleranceNs);
    EXPECT_LE(realtime_late, kRealtimeToleranceNs);
    EXPECT_LE(claim_age, kClaimAgeToleranceMs);
    EXPECT_EQ(claim_ahead, 0u) << "a claim time ahead of the coarse clock makes a fresh claim look timed out";
  }
};

class TscClockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!detail::kernel_clocksource_is_tsc()) GTEST_SKIP() << "the kernel's clocksource is not the TSC";
  }
};

TEST_F(TscClockTest, should_calibrate_within_a_few_ms_to_a_plausible_rate) {
  TscClock clock;
  ASSERT_TRUE(calibrate(clock));
  // 0.0625 .. 16 ns per tick, in 32.32 fixed point.
  EXPECT_GE(clock.scale_q32(), std::uint64_t{1} << 28);
  EXPECT_LE(clock.scale_q32(), std::uint64_t{1} << 36);
}

TEST_F(TscClockTest, should_start_with_the_scale_another_clock_of_the_process_measured) {
  TscClock first;
  ASSERT_TRUE(calibrate(first));
  TscClock second;  // a new Producer handle's clock: no millisecond of calibrating
  EXPECT_NE(second.scale_q32(), 0u);
  Bracket b;
  for (int i = 0; i < 1000; ++i) b.read(second);
  b.expect_within_budget();
}

TEST_F(TscClockTest, should_agree_with_the_kernels_clocks_across_many_anchors) {
  TscClock clock;
  ASSERT_TRUE(calibrate(clock));
  // 200000 readings span many anchors (one per ms): most are extrapolations.
  Bracket b;
  for (int i = 0; i < 200'000; ++i) b.read(clock);
  b.expect_within_budget();
}

TEST_F(TscClockTest, should_anchor_again_after_a_gap_longer_than_an_anchors_life) {
  TscClock clock;
  ASSERT_TRUE(calibrate(clock));
  (void)clock.now();
  timespec pause{0, 50'000'000};
  nanosleep(&pause, nullptr);  // the anchor is now 50 ms old: the next reading must not extrapolate its claim time
  const std::uint64_t ms_before = coarse_monotonic_ms();
  Bracket b;
  b.read(clock);
  b.expect_within_budget();
  EXPECT_GE(clock.now().coarse_ms, ms_before);
}

TEST_F(TscClockTest, should_stamp_the_anchors_wall_clock_reading_for_a_coarse_publish_time) {
  // publish_timestamp = coarse: the anchor's CLOCK_REALTIME reading, at most one anchor life old.
  TscClock clock;
  ASSERT_TRUE(calibrate(clock));
  for (int i = 0; i < 100'000; ++i) {
    const std::uint64_t before = realtime_ns();
    const std::uint64_t t = clock.now(/*precise_time=*/false).realtime_ns;
    const std::uint64_t after = realtime_ns();
    ASSERT_LE(t, after);
    ASSERT_GE(t + 1'000'000 + kRealtimeToleranceNs, before);
  }
}

TEST(TscClockFallback, should_read_the_kernels_coarse_wall_clock_for_a_coarse_publish_time) {
  TscClock clock(/*use_tsc=*/false);
  for (int i = 0; i < 1000; ++i) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    const std::uint64_t coarse_before = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
                                        static_cast<std::uint64_t>(ts.tv_nsec);
    const std::uint64_t t = clock.now(/*precise_time=*/false).realtime_ns;
    const std::uint64_t after = realtime_ns();
    EXPECT_GE(t, coarse_before);
    EXPECT_LE(t, after);
  }
}

TEST(TscClockFallback, should_read_the_kernels_clocks_every_time_without_a_usable_tsc) {
  TscClock clock(/*use_tsc=*/false);
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t ms_before = coarse_monotonic_ms();
    const std::uint64_t before = realtime_ns();
    const ClockReading r = clock.now();
    const std::uint64_t after = realtime_ns();
    EXPECT_GE(r.realtime_ns, before);
    EXPECT_LE(r.realtime_ns, after);
    EXPECT_GE(r.coarse_ms, ms_before);
  }
  EXPECT_EQ(clock.scale_q32(), 0u);
}

}  // namespace
}  // namespace ackring::testing
