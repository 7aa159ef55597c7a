// A small HDR-style histogram of nanosecond latencies: log-linear buckets,
// exact below 128 ns and 64 buckets per power of two above, so every value is
// kept to within 1/64 (1.6 %, two significant digits) up to 2^40 ns (18 min).
// Debian packages HdrHistogram only for Java and Go, hence this one.
//
// Recording is one count_leading_zeros and one increment: cheap enough for a
// busy-polling consumer to stamp every message. Fixed size and trivially
// copyable, so a child process can hand it to the parent through the shared
// control block.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace ackring_bench {

class LatencyHistogram {
 public:
  static constexpr unsigned kLinearBits = 7;                // values below 128 are exact
  static constexpr std::uint64_t kLinear = 1u << kLinearBits;
  static constexpr std::uint64_t kPerOctave = kLinear / 2;  // 64 buckets per power of two
  static constexpr unsigned kMaxBits = 40;                  // larger values are clamped
  static constexpr std::size_t kBuckets = kLinear + (kMaxBits - kLinearBits) * kPerOctave;

  void record(std::uint64_t ns) noexcept {
    ++counts_[index_of(std::min<std::uint64_t>(ns, (std::uint64_t{1} << kMaxBits) - 1))];
    ++total_;
    min_ = std::min(min_, ns);
    max_ = std::max(max_, ns);
  }

  void merge(const LatencyHistogram& o) noexcept {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    min_ = std::min(min_, o.min_);
    max_ = std::max(max_, o.max_);
  }

  [[nodiscard]] std::uint64_t count() const noexcept { return total_; }
  [[nodiscard]] std::uint64_t min() const noexcept { return total_ ? min_ : 0; }
  [[nodiscard]] std::uint64_t max() const noexcept { return max_; }

  // The value at quantile q (0..1): the highest value of the bucket that
  // holds the ceil(q × count)-th smallest sample (HdrHistogram's "highest
  // equivalent value"), never above the exact max.
  [[nodiscard]] std::uint64_t value_at(double q) const noexcept {
    if (total_ == 0) return 0;
    const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(highest_in(i), max_);
    }
    return max_;
  }

  // (latency ns, fraction of samples <= it) at each non-empty bucket: the
  // percentile curve the plot draws.
  [[nodiscard]] std::vector<std::pair<std::uint64_t, double>> cumulative() const {
    std::vector<std::pair<std::uint64_t, double>> out;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      if (counts_[i] == 0) continue;
      seen += counts_[i];
      out.emplace_back(std::min(highest_in(i), max_), static_cast<double>(seen) / static_cast<double>(total_));
    }
    return out;
  }

  [[nodiscard]] static constexpr std::size_t index_of(std::uint64_t v) noexcept {
    if (v < kLinear) return static_cast<std::size_t>(v);
    const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v));  // >= kLinearBits
    const unsigned shift = msb - (kLinearBits - 1);                        // keeps the top 7 bits
    return static_cast<std::size_t>(kLinear + (msb - kLinearBits) * kPerOctave + ((v >> shift) - kPerOctave));
  }
  [[nodiscard]] static constexpr std::uint64_t lowest_in(std::size_t i) noexcept {
    if (i < kLinear) return i;
    const std::uint64_t octave = (i - kLinear) / kPerOctave, sub = (i - kLinear) % kPerOctave + kPerOctave;
    return sub << (octave + 1);
  }
  [[nodiscard]] static constexpr std::uint64_t highest_in(std::size_t i) noexcept {
    return i + 1 < kBuckets ? lowest_in(i + 1) - 1 : lowest_in(i);
  }

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t min_ = ~std::uint64_t{0};
  std::uint64_t max_ = 0;
};

// The bucket walk must agree with the index: each bucket starts where the
// previous one ended, and the relative width stays within 1/64.
static_assert(LatencyHistogram::index_of(127) == 127 && LatencyHistogram::index_of(128) == 128);
static_assert(LatencyHistogram::lowest_in(LatencyHistogram::index_of(1000)) <= 1000 &&
              LatencyHistogram::highest_in(LatencyHistogram::index_of(1000)) >= 1000);
static_assert(LatencyHistogram::highest_in(LatencyHistogram::index_of(1'000'000)) -
                  LatencyHistogram::lowest_in(LatencyHistogram::index_of(1'000'000)) + 1 <= 1'000'000 / 64 + 1);
static_assert(LatencyHistogram::lowest_in(LatencyHistogram::kBuckets - 1) < (std::uint64_t{1} << LatencyHistogram::kMaxBits));

}  // namespace ackring_bench
