// The two clock readings every publish takes — the coarse monotonic ms (the
// producer's last_active_ms) and the publish time (CLOCK_REALTIME ns) — from
// one TSC read.
//
// clock_gettime(CLOCK_REALTIME) costs 20-30 ns even through the vDSO (a TSC
// read, a seqlock on the kernel's time data, a multiply) and the coarse
// monotonic clock 5-7 ns on a KVM guest: together they were the largest cost
// of a 64 B publish. This clock reads the TSC alone and converts it with a
// scale it learns from the kernel's clock. Once a millisecond (by the TSC) it
// takes a fresh anchor: a coarse monotonic reading and a (TSC,
// CLOCK_REALTIME) pair. So
//   - the coarse ms is the anchor's coarse reading: a real reading of the
//     system-wide clock, never ahead of what any other process reads after
//     it, and at most 1 ms old (the coarse clock itself lags by a tick);
//   - the publish time is extrapolated from the anchor over at most 1 ms of
//     TSC ticks: within about 0.1 us of clock_gettime (bench/README.md), and
//     NTP slewing or a clock step is followed within that millisecond.
// Where the kernel does not keep time with the TSC (its clocksource is not
// "tsc", or the CPU is not x86-64) every reading is two clock_gettime calls,
// as before.
//
// Not thread-safe: one per Producer handle, which one thread uses at a time.
#pragma once

#include <cstdint>

#include "shm/clock.hpp"

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace ackring::detail {

// 128-bit products: ticks × scale overflows 64 bits after about a second.
__extension__ using uint128 = unsigned __int128;

// True when the kernel's current clocksource is the TSC: the kernel then has
// checked that it ticks at a constant rate and agrees across CPUs. Read from
// sysfs once per process.
[[nodiscard]] bool kernel_clocksource_is_tsc() noexcept;

struct ClockReading {
  std::uint64_t coarse_ms;    // CLOCK_MONOTONIC_COARSE, ms (coarse_monotonic_ms())
  std::uint64_t realtime_ns;  // CLOCK_REALTIME, ns
};

class TscClock {
 public:
  // use_tsc false: every reading is clock_gettime (tests force it). A clock
  // starts with the scale another clock of this process measured, if any: a
  // short-lived Producer handle should not pay for calibrating (about 80 ns a
  // reading for its first millisecond).
  explicit TscClock(bool use_tsc = kernel_clocksource_is_tsc()) noexcept;

  // precise_time false (publish_timestamp = coarse): the publish time is the
  // anchor's CLOCK_REALTIME reading, at most 1 ms old, with no arithmetic.
  [[nodiscard]] ClockReading now(bool precise_time = true) noexcept {
#if defined(ACKRING_FAILPOINTS)
    // The test build's controlled clock rules the coarse ms, as it rules every other coarse reading.
    if (test_clock::frozen_ms.load(std::memory_order_relaxed) != 0) return kernel_reading(precise_time);
#endif
    if (!use_tsc_) return kernel_reading(precise_time);  // no TSC read at all: it may cost 10-25 ns
    // Signed: on another CPU the TSC may read a few ticks behind the anchor's; anchor again then.
    const auto ticks = static_cast<std::int64_t>(read_tsc() - anchor_tsc_);
    if (ticks < 0 || static_cast<std::uint64_t>(ticks) >= reanchor_ticks_) return reanchor();
    if (!precise_time) return {anchor_ms_, anchor_ns_};
    return {anchor_ms_, anchor_ns_ + static_cast<std::uint64_t>((static_cast<uint128>(ticks) * scale_q32_) >> 32)};
  }

  // Both clocks from the kernel, as before this clock existed.
  [[nodiscard]] static ClockReading kernel_reading(bool precise_time) noexcept {
    return {coarse_monotonic_ms(), precise_time ? realtime_ns() : coarse_realtime_ns()};
  }

  // ns per TSC tick, in 32.32 fixed point; 0 while not calibrated (and always
  // without a usable TSC). For tests and the benchmark.
  [[nodiscard]] std::uint64_t scale_q32() const noexcept { return scale_q32_; }

 private:
  [[nodiscard]] static std::uint64_t read_tsc() noexcept {
#if defined(__x86_64__)
    return __rdtsc();
#else
    return 0;
#endif
  }

  // Out of line: once a millisecond, and on every reading until calibrated.
  ClockReading reanchor() noexcept;
  void set_scale(std::uint64_t scale_q32) noexcept;

  bool use_tsc_;  // cleared for good if the TSC's rate looks implausible
  // Until calibrated, 0: every reading anchors (and is a pair of clock_gettime).
  std::uint64_t reanchor_ticks_ = 0;  // TSC ticks in one ms: an anchor is used this long
  std::uint64_t anchor_tsc_ = 0;
  std::uint64_t anchor_ms_ = 0;  // coarse monotonic ms read at the anchor
  std::uint64_t anchor_ns_ = 0;  // CLOCK_REALTIME at anchor_tsc_
  std::uint64_t scale_q32_ = 0;
  std::uint64_t base_tsc_ = 0;  // calibration base: a (TSC, CLOCK_MONOTONIC) pair
  std::uint64_t base_mono_ns_ = 0;
};

}  // namespace ackring::detail
