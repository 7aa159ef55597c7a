// The terminal session of `ackring top`: raw keyboard input (no line
// buffering, no echo) so a single 'q' quits, an alternate screen redrawn with
// ANSI escapes, and signal handling that always gives the terminal back.
#pragma once

#include <termios.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <string_view>

namespace ackring::cli {

class TerminalSession {
 public:
  // Blocks SIGINT/SIGTERM/SIGHUP (they are taken only while waiting, so no
  // signal is lost between a check and a wait), and, if stdin is a terminal,
  // switches it to raw mode. If stdout is a terminal, enters the alternate
  // screen and hides the cursor.
  TerminalSession();
  // Restores the terminal settings, the screen, the cursor and the signal mask.
  ~TerminalSession();
  TerminalSession(const TerminalSession&) = delete;
  TerminalSession& operator=(const TerminalSession&) = delete;

  // Waits up to `timeout` for a key press or a signal. Returns the key if one came.
  [[nodiscard]] std::optional<char> wait_key(std::chrono::milliseconds timeout);
  // True once SIGINT, SIGTERM or SIGHUP arrived.
  [[nodiscard]] bool stop_requested() const noexcept;
  // Replaces the screen with `frame` (clear + redraw on a terminal; frames
  // separated by a blank line otherwise).
  void draw(std::string_view frame);
  // Terminal size, or 0 when not known (not a terminal).
  [[nodiscard]] static int columns() noexcept;
  [[nodiscard]] static int rows() noexcept;

 private:
  bool raw_ = false;          // stdin switched to raw mode (saved_ holds the old settings)
  bool watch_input_ = false;  // poll stdin for keys
  bool screen_ = false;       // stdout is a terminal: alternate screen + redraw
  bool first_frame_ = true;
  termios saved_{};
  sigset_t old_mask_{};
  struct sigaction old_actions_[3]{};
};

}  // namespace ackring::cli
