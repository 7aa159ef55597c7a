// Time sources. CLOCK_MONOTONIC is system-wide, so deadlines written by one
// process mean the same to every other process on the host; wall-clock time
// is only for display.
#pragma once

#include <cstdint>
#include <ctime>

namespace ackring::detail {

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
