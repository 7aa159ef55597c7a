// journald: runs the journal writer of a durable queue as a process of its
// own. Opening a durable queue starts the library's journal thread, which
// writes the journal while it holds the journal's lock (one writer at a time;
// the others stand by and take over within ~100 ms when it dies). A
// deployment can turn that thread off in its producers and consumers
// (ackring::set_journal_writer_enabled(false), or ACKRING_JOURNAL_WRITER=0) and
// run this instead, so no application process spends time on fdatasync.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "commands.hpp"
#include "format.hpp"
#include "stats_view.hpp"

namespace ackring::cli {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct JournaldOptions {
  std::string name;
  std::string journal_dir;
  bool verbose = false;
  std::uint32_t interval_ms = 10'000;
};

// SIGINT, SIGTERM and SIGHUP are blocked before the queue is opened, so the
// library's journal thread inherits the mask and never takes them; the main
// thread takes them with sigtimedwait. A handler-less stop: nothing runs in
// signal context, and the Queue is destroyed normally, which stops and joins
// the journal thread after its current flush.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&set_);
    for (const int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set_, s);
    ::pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~StopSignals() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Waits up to `timeout`; returns the signal that came, or 0.
  int wait(milliseconds timeout) {
    timespec ts{static_cast<time_t>(timeout.count() / 1000), static_cast<long>(timeout.count() % 1000) * 1'000'000};
    const int s = ::sigtimedwait(&set_, nullptr, &ts);
    return s > 0 ? s : 0;
  }

 private:
  sigset_t set_{};
  sigset_t old_{};
};

void check_journal_dir(const JournaldOptions& o, const QueueOptions& opts) {
  if (o.journal_dir.empty()) return;
  std::error_code ec1, ec2;
  const auto given = std::filesystem::weakly_canonical(o.journal_dir, ec1);
  const auto recorded = std::filesystem::weakly_canonical(opts.journal_dir, ec2);
  if (!ec1 && !ec2 && given == recorded) return;
  throw Failure(Exit::usage, "queue '" + o.name + "' journals to " + opts.journal_dir +
                                 " (fixed when it was created), not " + o.journal_dir +
                                 "; leave out --journal-dir, or pass that directory");
}

std::string status(const JournalView& j) {
  return "durable seq " + std::to_string(j.durable_seq) + ", lag " + std::to_string(j.lag) + ", " +
         std::to_string(j.flushes) + " flushes";
}

int run_journald(const JournaldOptions& o) {
  // This process is the journal writer by definition, whatever
  // $ACKRING_JOURNAL_WRITER says for the others.
  set_journal_writer_enabled(true);
  StopSignals signals;  // before the open: the journal thread inherits the blocked mask
  Queue q = open_queue(o.name);
  const QueueOptions opts = q.options();
  if (opts.durability == Durability::none)
    throw Failure(Exit::usage, "queue '" + o.name +
                                   "' has durability none: it has no journal to write; create it with "
                                   "'ackring create " + o.name + " --durability sync' (or async)");
  check_journal_dir(o, opts);

  const auto me = static_cast<std::uint32_t>(::getpid());
  const std::string who = "journald[" + std::to_string(me) + "] " + o.name;
  bool writing = false;
  bool said_standby = false;
  bool said_no_writer = false;
  const auto started = Clock::now();
  auto next_report = started + milliseconds(o.interval_ms);
  for (;;) {
    const JournalView j = journal_view(q.stats(), opts);
    if (j.writer_pid == me && !writing) {
      writing = true;
      std::cout << who << ": writing the journal " << j.directory << " (" << to_string(j.durability) << "): "
                << status(j) << std::endl;
    } else if (j.writer_pid != me && writing) {
      // Only a journal error makes the thread let go (the library reports it on stderr); it retries.
      writing = false;
      std::cout << who << ": no longer writing the journal; retrying" << std::endl;
    } else if (!writing && j.writer_pid != 0 && !said_standby) {
      said_standby = true;
      std::cout << who << ": pid " << j.writer_pid << " writes the journal; standing by to take over when it exits"
                << std::endl;
    } else if (!writing && j.writer_pid == 0 && !said_no_writer && Clock::now() - started > milliseconds(2000)) {
      said_no_writer = true;
      std::cerr << "ackring: " << who
                << ": nobody writes the journal after 2 s; the reason was printed above by the journal thread "
                   "(it retries every second)"
                << std::endl;
    }
    if (o.verbose && Clock::now() >= next_report) {
      next_report += milliseconds(o.interval_ms);
      std::cout << who << ": " << status(j) << ", writer "
                << (j.writer_pid == 0 ? std::string("none") : "pid " + std::to_string(j.writer_pid)) << std::endl;
    }
    if (const int s = signals.wait(milliseconds(100)); s != 0) {
      if (o.verbose) std::cout << who << ": stopping on signal " << s << std::endl;
      break;
    }
  }
  return 0;  // ~Queue stops the journal thread after its current flush and releases the lock
}

}  // namespace

void add_journald_command(CLI::App& app, Globals& globals, Action& action) {
  auto o = std::make_shared<JournaldOptions>();
  auto* cmd = app.add_subcommand("journald", "Run the journal writer of a durable queue as its own process");
  cmd->add_option("NAME", o->name, "Queue name or path")->required();
  cmd->add_option("--journal-dir", o->journal_dir,
                  "Check that the queue journals to DIR (the directory is fixed when the queue is created)")
      ->type_name("DIR");
  cmd->add_flag("--verbose,-v", o->verbose, "Also print the journal's state every --interval");
  cmd->add_option("--interval", o->interval_ms, "With --verbose: print every MS ms")
      ->type_name("MS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->footer(
      "Prints one line when it becomes the writer (it waits while another process writes; only one\n"
      "writer at a time, the next takes over within ~100 ms when it dies). Runs until SIGINT or SIGTERM,\n"
      "then exits 0. Deployment: turn the journal thread off in producers and consumers with\n"
      "ackring::set_journal_writer_enabled(false) or ACKRING_JOURNAL_WRITER=0, and run one journald per\n"
      "queue (under systemd, say). A sync publish waits until some process writes the journal.");
  add_common_options(*cmd, globals);
  cmd->callback([o, &action] { set_action(action, [o] { return run_journald(*o); }); });
}

}  // namespace ackring::cli
