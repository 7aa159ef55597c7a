// A progress bar on stderr for the long operations (recover, group rewind).
// It is drawn only when stderr is a terminal and the work has already taken
// a while, so pipes, logs and quick runs see nothing but the summary.
#pragma once

#include <ackring/ackring.hpp>
#include <chrono>
#include <cstdint>
#include <string>

namespace ackring::cli {

class ProgressBar {
 public:
  // `label` starts the line ("recovering orders"); nothing is drawn before
  // `show_after` has passed.
  explicit ProgressBar(std::string label, std::chrono::milliseconds show_after = std::chrono::milliseconds(300));
  // Calls finish().
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Redraws at most every 100 ms. Never throws: it runs inside library calls.
  void update(std::uint64_t done, std::uint64_t total) noexcept;
  // Erases the bar and draws no more: call it before printing the summary,
  // which shares the terminal with stderr.
  void finish() noexcept;
  // A ProgressFn that updates this bar (which must outlive its use).
  [[nodiscard]] ProgressFn callback();

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  Clock::time_point start_;
  Clock::time_point show_at_;
  Clock::time_point last_draw_{};
};

}  // namespace ackring::cli
