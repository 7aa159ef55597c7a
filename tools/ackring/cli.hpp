// Shared plumbing of the ackring command-line tool: exit codes, the one-line
// failure type every command throws, and opening queues with messages that
// tell the operator what to do next.
//
// Only the public API (<ackring/ackring.hpp>) is used here and in every
// command file: the CLI is a client of the library like any other.
#pragma once

#include <ackring/ackring.hpp>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace CLI {
class App;
}

namespace ackring::cli {

// Process exit codes; docs/cli.md documents the same table.
enum class Exit : int {
  ok = 0,
  usage = 1,        // bad arguments, bad input, or a request that conflicts with the queue (exists, ...)
  not_found = 2,    // no such queue / group / directory, or permission denied
  corrupt = 3,      // corrupt or incompatible (other format version) file; verify found problems
  busy = 4,         // live processes are attached (rm, group rm), or no free slot
  // 5 is retired: it meant "not available in this build" before the journal commands existed.
  timeout = 6,      // nothing (or not enough) arrived before the timeout; queue stayed full
};

// A failure with its exit code. The message is ONE line that says what went
// wrong and what to do; main() prints it as "ackring: <message>".
class Failure : public std::runtime_error {
 public:
  Failure(Exit code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] Exit code() const noexcept { return code_; }

 private:
  Exit code_;
};

// The exit code for a library error, and advice to append to its message.
[[nodiscard]] Exit exit_code_of(ErrorCode code) noexcept;
[[nodiscard]] std::string advice_for(ErrorCode code, std::string_view queue);

// Opens a queue named by the user. Errors become Failures whose message names
// the queue and the next step, e.g.
//   queue 'orders' not found (/dev/shm/ackring.orders); list queues with 'ackring ls'
[[nodiscard]] Queue open_queue(std::string_view name);

// "group 'g' not found in queue 'q'; list groups with 'ackring group ls q'" (exit 2).
[[nodiscard]] Failure group_not_found(std::string_view queue, std::string_view group);

// The directory named queues live in (--dir / $ACKRING_SHM_DIR / /dev/shm).
[[nodiscard]] std::filesystem::path queue_directory();

// The journal writer. Every process that opens a durable queue runs a journal
// thread, and the first to take the journal's lock writes it. A command that
// only looks (stat, ls, verify, journal dump, ...) must not become that
// writer: it would take over the journal for a moment and open a new segment
// each time it runs. main() turns the thread off for every command; commands
// that publish or consume call this first, because a sync publish waits for
// its record to be on disk and a sync consumer sees only durable messages, so
// somebody must write the journal. $ACKRING_JOURNAL_WRITER=0 (a deployment
// where `ackring journald` writes it) keeps it off.
void stand_by_as_journal_writer();

// What the chosen subcommand will do once parsing has succeeded. Returns the
// exit code. Commands register their subcommands with CLI11 and set this from
// their callback; main() runs it outside of CLI11's parse.
using Action = std::function<int()>;

// Options every command accepts, wherever they appear on the command line.
struct Globals {
  std::string dir;  // --dir: queue directory, exported as ACKRING_SHM_DIR
};

// Adds the options every leaf command takes (--dir) to `sub`.
void add_common_options(CLI::App& sub, Globals& globals);

// Sets `action` unless a nested subcommand's callback (which CLI11 runs first)
// already did.
void set_action(Action& action, Action what);

}  // namespace ackring::cli
