// recover: rebuilds a queue whose file is gone (after a reboot, /dev/shm is
// empty) from its journal, with a progress bar on long work and a summary of
// what came back.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>

#include "commands.hpp"
#include "format.hpp"
#include "progress.hpp"

namespace ackring::cli {

namespace {

// Options that replace what the journal recorded at creation; each is applied
// only if given (CLI11 counts it), so unset ones keep the recorded value.
struct Overrides {
  std::uint32_t capacity = 0, max_message_size = 0, lease_ms = 0, max_deliveries = 0, max_groups = 0,
                max_members = 0, max_producers = 0, claim_timeout_ms = 0, flush_interval_ms = 0;
  std::string durability;
  std::vector<std::pair<CLI::Option*, std::function<void(QueueOptions&)>>> given;
};

struct RecoverOptionsCli {
  std::string name;
  std::string journal_dir;
  bool json = false;
  Overrides overrides;
};

[[nodiscard]] std::string journal_dir_of(const RecoverOptionsCli& o) {
  try {
    return journal_directory(o.name, o.journal_dir).string();
  } catch (const Error&) {
    return o.journal_dir.empty() ? "the journal directory" : o.journal_dir;
  }
}

// The failures of Queue::recover and read_journal, with what to do next.
[[noreturn]] void fail_recover(const Error& e, const RecoverOptionsCli& o) {
  const std::string what = e.what();
  switch (e.code()) {
    case ErrorCode::already_exists:
      throw Failure(Exit::usage, "queue '" + o.name + "' exists (" + Queue::resolve(o.name).string() +
                                     "): it is not missing, so there is nothing to recover; check it with 'ackring "
                                     "verify " + o.name + "'");
    case ErrorCode::not_found:
      throw Failure(Exit::not_found,
                    what + "; a journal exists only for a queue created with --durability async or sync: "
                           "check --journal-dir (default $ACKRING_JOURNAL_DIR, else /var/tmp/ackring)");
    case ErrorCode::corrupt:
      throw Failure(Exit::corrupt,
                    what + "; 'ackring journal dump " + o.name + "' shows the damage; to recover what comes before "
                           "it, move the damaged segment and every later one out of " + journal_dir_of(o) +
                           " and run recover again (their messages are lost)");
    case ErrorCode::incompatible:
      throw Failure(Exit::corrupt, what + "; recover with the ackring build that wrote the journal");
    case ErrorCode::resource_exhausted:
      throw Failure(Exit::usage, what + "; pass a larger --capacity (a power of two) or --max-groups");
    case ErrorCode::invalid_argument:
      throw Failure(Exit::usage, what + "; see 'ackring recover --help'");
    default:
      throw Failure(exit_code_of(e.code()), what + "; " + advice_for(e.code(), o.name));
  }
}

// The options to rebuild with: none given, the journal's own (nullopt lets the
// library read them); some given, those over the journal's.
std::optional<QueueOptions> options_for(const RecoverOptionsCli& o, bool& base_from_journal) {
  base_from_journal = false;
  bool any = false;
  for (const auto& [option, apply] : o.overrides.given) any = any || option->count() != 0;
  if (!any) return std::nullopt;
  QueueOptions base;
  try {
    // Stop at the first record: only the recorded options are wanted here.
    const JournalSummary summary = read_journal(o.name, o.journal_dir, [](const JournalEntry&) { return false; });
    if (summary.options) {
      base = *summary.options;
      base_from_journal = true;
    }
  } catch (const Error& e) {
    fail_recover(e, o);
  }
  for (const auto& [option, apply] : o.overrides.given)
    if (option->count() != 0) apply(base);
  return base;
}

Json to_json(const QueueOptions& q) {
  return {{"capacity", q.capacity},
          {"max_message_size", q.max_message_size},
          {"default_lease_ms", q.default_lease.count()},
          {"max_deliveries", q.max_deliveries},
          {"max_groups", q.max_groups},
          {"max_members", q.max_members},
          {"max_producers", q.max_producers},
          {"durability", to_string(q.durability)}};
}

int run_recover(const RecoverOptionsCli& o) {
  bool base_from_journal = false;
  RecoverOptions ro;
  ro.journal_dir = o.journal_dir;
  ro.options = options_for(o, base_from_journal);
  ProgressBar bar("recovering " + o.name);
  ro.progress = bar.callback();
  RecoveryReport r;
  std::optional<Queue> q;
  try {
    q.emplace(Queue::recover(o.name, ro, &r));
  } catch (const Error& e) {
    bar.finish();
    fail_recover(e, o);
  }
  bar.finish();
  const QueueOptions made = q->options();
  if (o.json) {
    std::cout << dump(Json{{"name", o.name},
                           {"path", q->path().string()},
                           {"journal_directory", journal_dir_of(o)},
                           {"journal_end", to_string(r.journal_end)},
                           {"journal_message", r.journal_message},
                           {"journal_first_seq", r.journal_first_seq},
                           {"journal_next_seq", r.journal_next_seq},
                           {"floor", r.floor},
                           {"messages", r.messages},
                           {"skipped", r.skipped},
                           {"groups", r.groups},
                           {"options_from_journal", r.options_from_journal},
                           {"dedup_keys", r.dedup_keys},
                           {"options", to_json(made)}})
              << '\n';
    return 0;
  }
  std::cout << "recovered queue '" << o.name << "' at " << q->path().string() << " from " << journal_dir_of(o) << '\n'
            << "  journal: " << to_string(r.journal_end) << ", seqs " << r.journal_first_seq << " to " << r.journal_next_seq
            << " (exclusive)\n";
  if (!r.journal_message.empty())
    std::cout << "  " << r.journal_message << " (a crash cut the last batch; nothing acknowledged was lost)\n";
  std::cout << "  restored " << r.messages << (r.messages == 1 ? " message" : " messages") << " from seq " << r.floor
            << " (the lowest group floor) on, " << r.skipped << " aborted seqs; tail " << r.journal_next_seq << '\n'
            << "  groups:";
  if (r.groups.empty()) std::cout << " none";
  for (const auto& g : r.groups) std::cout << ' ' << g;
  std::cout << '\n'
            << "  options " << (r.options_from_journal ? "recorded in the journal" : "given") << ": capacity "
            << made.capacity << ", max message size " << made.max_message_size << " B, durability "
            << to_string(made.durability) << '\n';
  if (r.dedup_keys != 0) std::cout << "  dedup keys still inside the window: " << r.dedup_keys << '\n';
  if (ro.options && !base_from_journal)
    std::cout << "  note: the journal recorded no options; the ones not given are the defaults\n";
  std::cout << "Messages acked after the last checkpoint are delivered once more (at-least-once); leases and\n"
               "delivery counts start afresh. The journal continues once a process opens the queue (or run\n"
               "'ackring journald "
            << o.name << "').\n";
  return 0;
}

void add_override(CLI::App& cmd, Overrides& ov, const std::string& flag, std::uint32_t& field,
                  const std::string& help, std::function<void(QueueOptions&)> apply, const std::string& type = "N") {
  auto* option = cmd.add_option(flag, field, help)->type_name(type);
  ov.given.emplace_back(option, std::move(apply));
}

}  // namespace

void add_recover_command(CLI::App& app, Globals& globals, Action& action) {
  auto o = std::make_shared<RecoverOptionsCli>();
  Overrides& ov = o->overrides;
  auto* cmd = app.add_subcommand("recover", "Rebuild a missing queue file from its journal (after a reboot)");
  cmd->add_option("NAME", o->name, "Queue name or path")->required();
  cmd->add_option("--journal-dir", o->journal_dir,
                  "Journal directory the queue was created with (default $ACKRING_JOURNAL_DIR, else /var/tmp/ackring)")
      ->type_name("DIR");
  cmd->add_flag("--json", o->json, "Print the summary as JSON");
  add_override(*cmd, ov, "--capacity", ov.capacity, "Slots (a power of two): larger than recorded, say",
               [&ov](QueueOptions& q) { q.capacity = ov.capacity; });
  add_override(*cmd, ov, "--max-message-size", ov.max_message_size, "Largest payload in bytes",
               [&ov](QueueOptions& q) { q.max_message_size = ov.max_message_size; });
  add_override(*cmd, ov, "--lease", ov.lease_ms, "Default lease in ms",
               [&ov](QueueOptions& q) { q.default_lease = Millis(ov.lease_ms); }, "MS");
  add_override(*cmd, ov, "--max-deliveries", ov.max_deliveries, "Deliveries before dead-lettering (1..254)",
               [&ov](QueueOptions& q) { q.max_deliveries = ov.max_deliveries; });
  add_override(*cmd, ov, "--max-groups", ov.max_groups, "Consumer groups",
               [&ov](QueueOptions& q) { q.max_groups = ov.max_groups; });
  add_override(*cmd, ov, "--max-members", ov.max_members, "Competing members per group",
               [&ov](QueueOptions& q) { q.max_members = ov.max_members; });
  add_override(*cmd, ov, "--max-producers", ov.max_producers, "Producers attached at once",
               [&ov](QueueOptions& q) { q.max_producers = ov.max_producers; });
  add_override(*cmd, ov, "--claim-timeout", ov.claim_timeout_ms, "Live producers' claims stuck this long are aborted",
               [&ov](QueueOptions& q) { q.claim_timeout = Millis(ov.claim_timeout_ms); }, "MS");
  add_override(*cmd, ov, "--flush-interval", ov.flush_interval_ms, "async: journal flush interval",
               [&ov](QueueOptions& q) { q.async_flush_interval = Millis(ov.flush_interval_ms); }, "MS");
  auto* durability = cmd->add_option("--durability", ov.durability, "async or sync (a recovered queue keeps a journal)")
                         ->check(CLI::IsMember({"async", "sync"}))
                         ->type_name("async|sync");
  ov.given.emplace_back(durability, [&ov](QueueOptions& q) {
    q.durability = ov.durability == "async" ? Durability::async : Durability::sync;
  });
  cmd->footer(
      "Only a missing queue file is rebuilt: every journaled message at or above the lowest group floor\n"
      "comes back at its own seq, groups come back from the last checkpoint. Options are the ones the\n"
      "journal recorded at creation; the options above replace single ones.\n"
      "Exit 0 recovered, 1 the queue file exists (use 'ackring verify') or the options do not fit,\n"
      "2 no journal, 3 corrupt or incompatible journal.");
  add_common_options(*cmd, globals);
  cmd->callback([o, &action] { set_action(action, [o] { return run_recover(*o); }); });
}

}  // namespace ackring::cli
