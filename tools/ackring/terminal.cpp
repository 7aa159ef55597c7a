#include "terminal.hpp"

#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace ackring::cli {

namespace {

constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};

// Shared with the signal handler, which may only touch these.
volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_raw = 0;
termios g_saved{};

extern "C" void on_stop_signal(int) {
  g_stop = 1;
  // tcsetattr is async-signal-safe: the terminal is sane again even before
  // the main loop notices the flag and unwinds.
  if (g_raw != 0) ::tcsetattr(STDIN_FILENO, TCSANOW, &g_saved);
}

void write_all(int fd, std::string_view s) noexcept {
  while (!s.empty()) {
    const ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

TerminalSession::TerminalSession() {
  g_stop = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigset_t block;
  sigemptyset(&block);
  for (int i = 0; i < 3; ++i) {
    ::sigaction(kSignals[i], &sa, &old_actions_[i]);
    sigaddset(&block, kSignals[i]);
  }
  ::sigprocmask(SIG_BLOCK, &block, &old_mask_);

  if (::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
    termios raw = saved_;
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));  // ISIG stays: Ctrl-C still sends SIGINT
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    g_saved = saved_;
    g_raw = 1;
    raw_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    if (!raw_) g_raw = 0;
    watch_input_ = raw_;
  }
  screen_ = ::isatty(STDOUT_FILENO) != 0;
  if (screen_) write_all(STDOUT_FILENO, "\x1b[?1049h\x1b[?25l");  // alternate screen, hide cursor
}

TerminalSession::~TerminalSession() {
  if (screen_) write_all(STDOUT_FILENO, "\x1b[?25h\x1b[?1049l");  // show cursor, main screen
  if (raw_) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    g_raw = 0;
  }
  for (int i = 0; i < 3; ++i) ::sigaction(kSignals[i], &old_actions_[i], nullptr);
  ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
}

std::optional<char> TerminalSession::wait_key(std::chrono::milliseconds timeout) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  // Signals are unblocked only inside ppoll: one that arrives earlier waits
  // for it and interrupts it at once.
  sigset_t during = old_mask_;
  for (const int s : kSignals) sigdelset(&during, s);
  while (g_stop == 0) {
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now());
    if (left.count() <= 0) return std::nullopt;
    const timespec ts{static_cast<time_t>(left.count() / 1'000'000'000),
                      static_cast<long>(left.count() % 1'000'000'000)};
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    const int n = ::ppoll(&pfd, watch_input_ ? 1 : 0, &ts, &during);
    if (n < 0 && errno != EINTR) return std::nullopt;
    if (n > 0 && (pfd.revents & POLLIN) != 0) {
      char c = 0;
      if (::read(STDIN_FILENO, &c, 1) == 1) return c;
    } else if (n > 0) {
      watch_input_ = false;  // hung up or error: stop watching it (no busy loop); SIGHUP ends us if meant
    }
  }
  return std::nullopt;
}

bool TerminalSession::stop_requested() const noexcept { return g_stop != 0; }

void TerminalSession::draw(std::string_view frame) {
  if (screen_) {
    write_all(STDOUT_FILENO, "\x1b[H\x1b[2J");  // home, clear
  } else if (!first_frame_) {
    write_all(STDOUT_FILENO, "\n");
  }
  first_frame_ = false;
  write_all(STDOUT_FILENO, frame);
}

int TerminalSession::columns() noexcept {
  winsize ws{};
  return ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0;
}

int TerminalSession::rows() noexcept {
  winsize ws{};
  return ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 ? ws.ws_row : 0;
}

}  // namespace ackring::cli
