// ackring: the operator's tool for ackring queues. Parses the command line
// with CLI11, runs the chosen command, and turns every failure into one line
// on stderr and an exit code (docs/cli.md has the table).
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

#include "cli.hpp"
#include "commands.hpp"

#ifndef ACKRING_CLI_VERSION
#define ACKRING_CLI_VERSION "unknown"
#endif

namespace {

using namespace ackring::cli;

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

int fail(Exit code, const std::string& message) {
  std::cerr << "ackring: " << one_line(message) << '\n';
  return static_cast<int>(code);
}

// "ackring group add" for the innermost subcommand the parser got to.
std::string command_path(const CLI::App& app) {
  std::string path = "ackring";
  const CLI::App* at = &app;
  for (;;) {
    const auto subs = at->get_subcommands();
    if (subs.empty()) return path;
    at = subs.front();
    path += " " + at->get_name();
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ackring: inspect and operate ackring shared-memory message queues.", "ackring"};
  app.footer(
      "A queue NAME is the file ackring.NAME in the queue directory ($ACKRING_SHM_DIR, default /dev/shm);\n"
      "anything containing a '/' is a path.\n"
      "Exit codes: 0 ok, 1 usage or bad input, 2 not found or permission denied, 3 corrupt or\n"
      "incompatible file (or journal), 4 busy, 6 timeout.\n"
      "Run 'ackring COMMAND --help' for the options of a command.");
  app.set_version_flag("--version", "ackring " ACKRING_CLI_VERSION);
  app.get_formatter()->column_width(34);

  Globals globals;
  Action action;
  add_common_options(app, globals);
  add_queue_commands(app, globals, action);
  add_stat_command(app, globals, action);
  add_metrics_command(app, globals, action);
  add_top_command(app, globals, action);
  add_peek_command(app, globals, action);
  add_pub_command(app, globals, action);
  add_sub_command(app, globals, action);
  add_group_commands(app, globals, action);
  add_dlq_commands(app, globals, action);
  add_integrity_commands(app, globals, action);
  add_recover_command(app, globals, action);
  add_journal_commands(app, globals, action);
  add_journald_command(app, globals, action);
  add_bridge_commands(app, globals, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return fail(Exit::usage, std::string(e.what()) + "; see '" + command_path(app) + " --help'");
  }
  if (!action) {
    // A command group without its subcommand ("ackring group"), or nothing at all.
    std::cerr << (app.get_subcommands().empty() ? app.help() : app.get_subcommands().front()->help());
    return static_cast<int>(Exit::usage);
  }
  if (!globals.dir.empty()) ::setenv("ACKRING_SHM_DIR", globals.dir.c_str(), 1);
  // Looking at a durable queue must not make this process its journal writer
  // (see stand_by_as_journal_writer); commands that need one turn it back on.
  ackring::set_journal_writer_enabled(false);

  int code = 0;
  try {
    code = action();
  } catch (const Failure& f) {
    return fail(f.code(), f.what());
  } catch (const ackring::Error& e) {
    return fail(exit_code_of(e.code()), std::string(e.what()) + "; " + advice_for(e.code(), {}));
  } catch (const std::exception& e) {
    return fail(Exit::usage, std::string("unexpected error: ") + e.what());
  } catch (...) {
    return fail(Exit::usage, "unexpected error");
  }
  std::cout.flush();
  if (!std::cout) return fail(Exit::usage, "cannot write to standard output");
  return code;
}
