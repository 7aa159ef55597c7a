// Time sources. CLOCK_MONOTONIC is system-wide, so deadlines written by one
// process mean the same to every other process on the host; wall-clock time
// is only for display.
#pragma once

#include <cstdint>
#include <ctime>

#if defined(ACKRING_FAILPOINTS)
#include <atomic>
#endif

namespace ackring::detail {

#if defined(ACKRING_FAILPOINTS)
// The test build's controlled clock: while set (non-zero), the coarse
// monotonic clock — every lease, back-off and housekeeping deadline — reads
// this value in this process, so a test moves time on purpose instead of
// sleeping. Defined in failpoint.cpp; absent from every other build.
namespace test_clock {
extern std::atomic<std::uint64_t> frozen_ms;
}
#endif

[[nodiscard]] inline std::uint64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

[[nodiscard]] inline std::uint64_t monotonic_ms() noexcept { return monotonic_ns() / 1'000'000ull; }

// Millisecond deadlines (leases, claims, housekeeping) need no more than the
// coarse clock, which is several times cheaper to read (no TSC read, no
// vDSO arithmetic). It lags the precise clock by at most one tick (1-4 ms).
[[nodiscard]] inline std::uint64_t coarse_monotonic_ms() noexcept {
#if defined(ACKRING_FAILPOINTS)
  // relaxed: a test sets it between steps of one thread (or before fork).
  if (const std::uint64_t frozen = test_clock::frozen_ms.load(std::memory_order_relaxed); frozen != 0) return frozen;
#endif
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000ull + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000ull;
}

[[nodiscard]] inline std::uint64_t realtime_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

// The kernel's last tick of CLOCK_REALTIME (QueueOptions::publish_timestamp
// coarse): a memory read in the vDSO, no TSC read and no arithmetic on it.
[[nodiscard]] inline std::uint64_t coarse_realtime_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace ackring::detail
