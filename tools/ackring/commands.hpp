// Registration of the ackring subcommands. Each function adds its commands
// (with their options and --help texts) to the top-level app; the callback of
// the chosen command stores what to run in `action`.
#pragma once

#include "cli.hpp"

namespace CLI {
class App;
}

namespace ackring::cli {

void add_queue_commands(CLI::App& app, Globals& globals, Action& action);      // ls, create, rm, purge
void add_stat_command(CLI::App& app, Globals& globals, Action& action);        // stat
void add_metrics_command(CLI::App& app, Globals& globals, Action& action);     // metrics
void add_top_command(CLI::App& app, Globals& globals, Action& action);         // top
void add_peek_command(CLI::App& app, Globals& globals, Action& action);        // peek
void add_pub_command(CLI::App& app, Globals& globals, Action& action);         // pub
void add_sub_command(CLI::App& app, Globals& globals, Action& action);         // sub
void add_group_commands(CLI::App& app, Globals& globals, Action& action);      // group add|rm|ls|rewind
void add_dlq_commands(CLI::App& app, Globals& globals, Action& action);        // dlq, dlq redrive
void add_integrity_commands(CLI::App& app, Globals& globals, Action& action);  // verify
void add_recover_command(CLI::App& app, Globals& globals, Action& action);     // recover
void add_journal_commands(CLI::App& app, Globals& globals, Action& action);    // journal dump
void add_journald_command(CLI::App& app, Globals& globals, Action& action);    // journald
void add_bridge_commands(CLI::App& app, Globals& globals, Action& action);     // bridge out|in

}  // namespace ackring::cli
