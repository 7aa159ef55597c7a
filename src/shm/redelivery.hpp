// Redelivery back-off (GroupOptions::redelivery) and the delivery-to-ack
// latency histogram: the arithmetic both need, kept out of the lease code so
// that it can be tested on its own.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "ackring/options.hpp"

namespace ackring::detail {

// ---- the policy word: GroupEntry::redelivery ---------------------------------
//  63 62 61    52 51                       26 25                        0
//  ┌─────┬────────┬───────────────────────────┬───────────────────────────┐
//  │jitt.│ mult×10│ max ms (26 bits)          │ initial ms (26 bits)      │
//  └─────┴────────┴───────────────────────────┴───────────────────────────┘
// One word, so a member reading it while an operator changes it sees one
// policy or the other, never a mix. 0: no back-off.
inline constexpr std::uint64_t kMaxRedeliveryMs = (1ull << 26) - 1;
inline constexpr std::uint32_t kMaxMultiplierTenths = 255;

struct RedeliveryWord {
  std::uint32_t initial_ms = 0;
  std::uint32_t max_ms = 0;
  std::uint32_t multiplier_tenths = 10;
  Jitter jitter = Jitter::none;

  [[nodiscard]] static constexpr RedeliveryWord decode(std::uint64_t w) noexcept {
    return {static_cast<std::uint32_t>(w & kMaxRedeliveryMs), static_cast<std::uint32_t>((w >> 26) & kMaxRedeliveryMs),
            static_cast<std::uint32_t>((w >> 52) & 0xff), static_cast<Jitter>((w >> 60) & 0x3)};
  }
  [[nodiscard]] constexpr std::uint64_t encode() const noexcept {
    return (std::uint64_t{initial_ms} & kMaxRedeliveryMs) | ((std::uint64_t{max_ms} & kMaxRedeliveryMs) << 26) |
           (std::uint64_t{multiplier_tenths & 0xff} << 52) | (std::uint64_t{static_cast<std::uint8_t>(jitter) & 0x3u} << 60);
  }
  [[nodiscard]] constexpr bool enabled() const noexcept { return initial_ms != 0; }
};

// Why `p` cannot be a group's policy, or nullopt if it can.
[[nodiscard]] inline std::optional<std::string> redelivery_policy_error(const RedeliveryPolicy& p) {
  if (p.initial.count() < 0 || static_cast<std::uint64_t>(p.initial.count()) > kMaxRedeliveryMs)
    return "redelivery initial delay must be 0 .. " + std::to_string(kMaxRedeliveryMs) + " ms";
  if (p.initial.count() == 0) return std::nullopt;  // off: the other fields do not matter
  if (p.max < p.initial || static_cast<std::uint64_t>(p.max.count()) > kMaxRedeliveryMs)
    return "redelivery max delay must be initial .. " + std::to_string(kMaxRedeliveryMs) + " ms";
  if (!(p.multiplier >= 1.0 && p.multiplier <= 25.5))
    return "redelivery multiplier must be 1.0 .. 25.5";
  if (p.jitter != Jitter::none && p.jitter != Jitter::equal && p.jitter != Jitter::full)
    return "redelivery jitter must be none, equal or full";
  return std::nullopt;
}

// The policy word of a valid policy (see redelivery_policy_error).
[[nodiscard]] inline std::uint64_t encode_redelivery(const RedeliveryPolicy& p) noexcept {
  if (p.initial.count() <= 0) return 0;
  return RedeliveryWord{static_cast<std::uint32_t>(p.initial.count()), static_cast<std::uint32_t>(p.max.count()),
                        static_cast<std::uint32_t>(std::lround(p.multiplier * 10)), p.jitter}
      .encode();
}

[[nodiscard]] inline RedeliveryPolicy decode_redelivery(std::uint64_t w) noexcept {
  const RedeliveryWord r = RedeliveryWord::decode(w);
  if (!r.enabled()) return RedeliveryPolicy{Millis{0}, 2.0, Millis{60'000}, Jitter::equal};
  return {Millis{r.initial_ms}, r.multiplier_tenths / 10.0, Millis{r.max_ms}, r.jitter};
}

// The un-jittered delay after the `deliveries`-th delivery failed:
// min(max, initial × multiplier^(deliveries − 1)).
[[nodiscard]] inline std::uint64_t backoff_base_ms(const RedeliveryWord& r, std::uint32_t deliveries) noexcept {
  double delay = r.initial_ms;
  const double multiplier = r.multiplier_tenths / 10.0;
  for (std::uint32_t d = 1; d < deliveries && delay < r.max_ms; ++d) delay *= multiplier;
  return std::min<std::uint64_t>(r.max_ms, static_cast<std::uint64_t>(delay));
}

// The delay with jitter applied; `random` is a uniformly random 64-bit value.
[[nodiscard]] inline std::uint64_t backoff_ms(const RedeliveryWord& r, std::uint32_t deliveries,
                                              std::uint64_t random) noexcept {
  if (!r.enabled()) return 0;
  const std::uint64_t base = backoff_base_ms(r, deliveries);
  switch (r.jitter) {
    case Jitter::equal: return base - base / 2 + random % (base / 2 + 1);
    case Jitter::full: return random % (base + 1);
    case Jitter::none: break;
  }
  return base;
}

// A small, fast generator for jitter (SplitMix64): statistical quality is
// all jitter needs; nothing here is secret.
[[nodiscard]] inline std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// ---- delivery-to-ack latency histogram ----------------------------------------
// Bucket 0: under 1 ms; bucket i (1 .. 22): [2^(i-1), 2^i) ms; bucket 23: 2^22
// ms (70 min) and more. Powers of two keep the bump to a bit scan; the p99
// read from it is interpolated inside its bucket (stats.cpp), so it is exact
// to within a factor of two and usually much closer.
inline constexpr std::uint32_t kLatencyBuckets = 24;

[[nodiscard]] constexpr std::uint32_t latency_bucket(std::uint64_t ms) noexcept {
  if (ms == 0) return 0;
  const auto width = static_cast<std::uint32_t>(64 - __builtin_clzll(ms));  // ms in [2^(width-1), 2^width)
  return std::min(width, kLatencyBuckets - 1);
}
// Lower bound (ms) of bucket b.
[[nodiscard]] constexpr std::uint64_t latency_bucket_floor(std::uint32_t b) noexcept {
  return b == 0 ? 0 : 1ull << (b - 1);
}

}  // namespace ackring::detail
