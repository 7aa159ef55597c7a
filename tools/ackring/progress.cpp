#include "progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string_view>

namespace ackring::cli {

namespace {

void write_stderr(std::string_view s) noexcept {
  while (!s.empty()) {
    const ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

int stderr_columns() noexcept {
  winsize ws{};
  return ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
}

}  // namespace

ProgressBar::ProgressBar(std::string label, std::chrono::milliseconds show_after)
    : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) != 0), start_(Clock::now()),
      show_at_(start_ + show_after) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::finish() noexcept {
  if (drawn_) write_stderr("\r\033[K");
  drawn_ = false;
  enabled_ = false;
}

void ProgressBar::update(std::uint64_t done, std::uint64_t total) noexcept {
  if (!enabled_) return;
  const auto now = Clock::now();
  if (now < show_at_ || (drawn_ && now - last_draw_ < std::chrono::milliseconds(100) && done < total)) return;
  last_draw_ = now;
  drawn_ = true;
  const double fraction = total == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
  char figures[96];
  std::snprintf(figures, sizeof figures, " %3d%% %llu/%llu", static_cast<int>(fraction * 100.0),
                static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
  // label [#####.....] figures, fitted to the terminal so it never wraps.
  const int room = stderr_columns() - static_cast<int>(label_.size()) - static_cast<int>(std::string_view(figures).size()) - 4;
  const int width = std::clamp(room, 0, 50);
  std::string line = "\r" + label_;
  if (width >= 10) {
    const int filled = static_cast<int>(fraction * width);
    line += " [" + std::string(static_cast<std::size_t>(filled), '#') +
            std::string(static_cast<std::size_t>(width - filled), '.') + "]";
  }
  line += figures;
  line += "\033[K";
  write_stderr(line);
}

ProgressFn ProgressBar::callback() {
  return [this](std::uint64_t done, std::uint64_t total) { update(done, total); };
}

}  // namespace ackring::cli
