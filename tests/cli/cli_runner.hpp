// Running the built `ackring` binary from tests: each test gets its own queue
// directory (mkdtemp, removed afterwards) passed as ACKRING_SHM_DIR, with the
// journal directory <dir>/journal in it passed as ACKRING_JOURNAL_DIR; commands
// run with posix_spawn, stdin fed and stdout/stderr captured; `top` runs under
// a pseudo-terminal.
#pragma once

#include <sys/types.h>
#include <termios.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ackring::cli_test {

struct Result {
  int code = -1;  // exit status, or 128 + signal
  std::string out;
  std::string err;
};

// A process started in the background (sub holding a group membership).
class Background {
 public:
  explicit Background(pid_t pid) noexcept : pid_(pid) {}
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  Background(Background&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
  Background& operator=(Background&&) = delete;
  Background(const Background&) = delete;
  ~Background();  // kills it if still running
  // Sends `sig` and waits; returns the exit status (128 + signal if killed).
  int stop(int sig);
  // Waits up to `limit` for it to exit by itself; returns its exit status, or
  // -1 if it was still running (then it is killed).
  int wait(std::chrono::milliseconds limit);

 private:
  pid_t pid_;
};

class Cli {
 public:
  Cli();   // creates the queue directory
  ~Cli();  // removes it and everything in it
  Cli(const Cli&) = delete;
  Cli& operator=(const Cli&) = delete;

  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }
  // <dir>/journal: ACKRING_JOURNAL_DIR of every command run.
  [[nodiscard]] std::string journal_dir() const { return dir_ + "/journal"; }
  // Adds NAME=VALUE to the environment of every command started from now on.
  void set_env(const std::string& name, const std::string& value) { extra_env_.push_back(name + "=" + value); }
  // <dir>/ackring.<name>
  [[nodiscard]] std::string path_of(const std::string& name) const { return dir_ + "/ackring." + name; }

  // Runs `ackring args...` with ACKRING_SHM_DIR=dir() (unless with_env is
  // false), feeding `input` to its stdin. Fails the test (and kills it) if it
  // runs longer than `limit`.
  Result run(const std::vector<std::string>& args, const std::string& input = {}, bool with_env = true,
             std::chrono::milliseconds limit = std::chrono::seconds(30)) const;
  // Like run(), as user (and group) `uid` (the test must be root).
  Result run_as(uid_t uid, const std::vector<std::string>& args, const std::string& input = {}, bool with_env = true,
                std::chrono::milliseconds limit = std::chrono::seconds(30)) const;
  // Like run(), and expects exit 0; returns stdout.
  std::string ok(const std::vector<std::string>& args, const std::string& input = {}) const;
  // Runs and parses stdout as JSON (expects exit 0).
  nlohmann::json json(const std::vector<std::string>& args) const;
  // Starts `ackring args...` without waiting; stdout/stderr go to /dev/null.
  [[nodiscard]] Background start(const std::vector<std::string>& args) const;
  // Same, with stdout on a pipe whose read end is put in `stdout_fd` (the caller closes it).
  [[nodiscard]] Background start_with_output(const std::vector<std::string>& args, int& stdout_fd) const;

  // Result of running `ackring args...` on a pseudo-terminal: waits until the
  // screen shows `wait_for`, types `keys`, then waits for the exit.
  struct TerminalRun {
    int code = -1;
    std::string screen;     // everything written to the terminal
    bool saw_text = false;  // `wait_for` appeared
    termios after{};        // terminal settings once it exited
    termios before{};       // ... and before it started
  };
  TerminalRun run_on_terminal(const std::vector<std::string>& args, const std::string& wait_for,
                              const std::string& keys) const;

 private:
  std::vector<std::string> environment(bool with_env) const;
  Background spawn_background(const std::vector<std::string>& args, int* stdout_fd) const;
  std::string dir_;
  std::vector<std::string> extra_env_;
};

// Reads `fd` until the text read contains `wanted` or `limit` passes; returns
// everything read (check with find).
std::string read_until(int fd, const std::string& wanted, std::chrono::milliseconds limit);

// The path of the binary under test (set by CMake).
[[nodiscard]] const char* binary() noexcept;

}  // namespace ackring::cli_test
