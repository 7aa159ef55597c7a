#include "shm/tsc_clock.hpp"

#include <atomic>
#include <fstream>
#include <string>

namespace ackring::detail {

namespace {

// A pair of clock readings taken between two TSC reads further apart than
// this was interrupted (preempted, or a VM exit) and says nothing precise.
// The undisturbed pair takes ~150-300 ticks; 4096 ticks is 1-4 us.
constexpr std::uint64_t kTightPairTicks = 4096;
// The scale is measured over at least this much CLOCK_MONOTONIC time (the
// pair's width is then at most ~0.1-0.4 % of the span, typically 0.01 %),
// and from a base no older than kRebaseNs, so that it follows NTP's slewing.
constexpr std::uint64_t kMinCalibrationNs = 1'000'000;
constexpr std::uint64_t kRebaseNs = 1'000'000'000;
constexpr std::uint64_t kAnchorLifeNs = 1'000'000;  // also the coarse ms's largest age
// Sanity bounds on ns per tick: TSCs tick at 0.0625 .. 16 GHz.
constexpr std::uint64_t kMinScaleQ32 = std::uint64_t{1} << 28;
constexpr std::uint64_t kMaxScaleQ32 = std::uint64_t{1} << 36;

// The last scale any clock of this process measured; 0: none yet. relaxed:
// a plain value, read once by each new clock (any plausible scale will do:
// the clock measures its own within a millisecond).
std::atomic<std::uint64_t> process_scale_q32{0};

}  // namespace

TscClock::TscClock(bool use_tsc) noexcept : use_tsc_(use_tsc) {
  if (use_tsc_) set_scale(process_scale_q32.load(std::memory_order_relaxed));
}

void TscClock::set_scale(std::uint64_t scale_q32) noexcept {
  scale_q32_ = scale_q32;
  reanchor_ticks_ = scale_q32 == 0 ? 0 : static_cast<std::uint64_t>((static_cast<uint128>(kAnchorLifeNs) << 32) / scale_q32);
}

bool kernel_clocksource_is_tsc() noexcept {
#if defined(__x86_64__)
  static const bool is_tsc = [] {
    std::ifstream f("/sys/devices/system/clocksource/clocksource0/current_clocksource");
    std::string name;
    return static_cast<bool>(f >> name) && name == "tsc";
  }();
  return is_tsc;
#else
  return false;
#endif
}

ClockReading TscClock::reanchor() noexcept {
  // The coarse reading before the pair: every reading this anchor serves
  // comes after it, so the coarse ms it hands out is never ahead of the
  // coarse clock.
  const std::uint64_t coarse_ms = coarse_monotonic_ms();
  // Each clock reading is matched with the midpoint of the TSC reads around it.
  const std::uint64_t t0 = read_tsc();
  const std::uint64_t real = realtime_ns();
  const std::uint64_t t1 = read_tsc();
  const std::uint64_t mono = monotonic_ns();
  const std::uint64_t t2 = read_tsc();
  const ClockReading fresh{coarse_ms, real};
  if (t2 < t0 || t2 - t0 > kTightPairTicks) return fresh;  // disturbed: anchor at the next reading
  const std::uint64_t mono_tsc = t1 + (t2 - t1) / 2;
  if (base_tsc_ == 0 || mono_tsc <= base_tsc_ || mono <= base_mono_ns_) {
    base_tsc_ = mono_tsc;
    base_mono_ns_ = mono;
  } else if (const std::uint64_t span_ns = mono - base_mono_ns_; span_ns >= kMinCalibrationNs) {
    const auto scale = static_cast<std::uint64_t>((static_cast<uint128>(span_ns) << 32) / (mono_tsc - base_tsc_));
    if (scale < kMinScaleQ32 || scale > kMaxScaleQ32) {
      // The TSC is not what the kernel said it is: clock_gettime from now on.
      use_tsc_ = false;
      set_scale(0);
      return fresh;
    }
    set_scale(scale);
    process_scale_q32.store(scale, std::memory_order_relaxed);
    if (span_ns >= kRebaseNs) {
      base_tsc_ = mono_tsc;
      base_mono_ns_ = mono;
    }
  }
  anchor_tsc_ = t0 + (t1 - t0) / 2;
  anchor_ms_ = coarse_ms;
  anchor_ns_ = real;
  return fresh;
}

}  // namespace ackring::detail
