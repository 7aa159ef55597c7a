// verify: a read-only consistency check of a queue file and, for a durable
// queue, of its journal.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>

#include "commands.hpp"
#include "format.hpp"

namespace ackring::cli {

namespace {

struct VerifyOptions {
  std::string name;
  bool json = false;
};

// A corrupt journal breaks recovery even when the file itself is fine; a torn
// tail does not (a crash cut a batch nobody was told was durable).
bool journal_broken(const VerifyReport& r) { return r.journal_checked && r.journal_end == JournalEnd::corrupt; }

int run_verify(const VerifyOptions& o) {
  const Queue q = open_queue(o.name);  // a broken header already fails here, with exit 3
  const VerifyReport r = q.verify();
  const bool healthy = r.healthy() && !journal_broken(r);
  if (o.json) {
    Json journal = nullptr;
    if (r.journal_checked) journal = Json{{"end", to_string(r.journal_end)}, {"records", r.journal_records}};
    std::cout << dump(Json{{"name", o.name},
                           {"path", q.path().string()},
                           {"healthy", healthy},
                           {"slots_checked", r.slots_checked},
                           {"corrupt_slots", r.corrupt_slots},
                           {"dead_claims", r.dead_claims},
                           {"journal", std::move(journal)},
                           {"problems", r.problems}})
              << '\n';
  } else {
    std::cout << "queue " << o.name << " (" << q.path().string() << "): " << r.slots_checked << " slots checked, "
              << r.corrupt_slots << " corrupt, " << r.dead_claims
              << " claims of dead producers (consumers abort them)\n";
    if (r.journal_checked) {
      std::cout << "journal: " << to_string(r.journal_end) << ", " << r.journal_records << " records";
      if (r.journal_end == JournalEnd::torn_tail) std::cout << " (a crash cut the last batch; nothing acknowledged was lost)";
      std::cout << '\n';
    } else if (q.options().durability == Durability::none) {
      std::cout << "journal: none (durability none)\n";
    } else {
      std::cout << "journal: not checked\n";
    }
    for (const auto& p : r.problems) std::cout << "  problem: " << p << '\n';
    if (journal_broken(r) && r.problems.empty())
      std::cout << "  problem: the journal is damaged before its end (see 'ackring journal dump " << o.name << "')\n";
    std::cout << (healthy ? "healthy\n" : "BROKEN\n");
  }
  if (healthy) return 0;
  std::cout.flush();
  if (r.healthy())
    throw Failure(Exit::corrupt, "the journal of queue '" + o.name +
                                     "' is damaged: 'ackring journal dump " + o.name +
                                     "' shows where; the queue works, but recovery after a reboot would stop there");
  throw Failure(Exit::corrupt, "queue '" + o.name + "' failed verification with " + std::to_string(r.problems.size()) +
                                   " problem(s)" + (o.json ? "" : " (listed above)") +
                                   "; consumers skip corrupt slots, anything else means the file was damaged: "
                                   "drain what you can, then recreate the queue");
}

}  // namespace

void add_integrity_commands(CLI::App& app, Globals& globals, Action& action) {
  auto o = std::make_shared<VerifyOptions>();
  auto* cmd = app.add_subcommand("verify", "Check every slot, group and member of a queue (and its journal)");
  cmd->add_option("NAME", o->name, "Queue name or path")->required();
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->footer(
      "Reads only. For a durable queue the journal is read and verified too (a torn tail is reported, not a\n"
      "problem). Exit 0 when healthy, 3 when problems were found or the file cannot be opened.");
  add_common_options(*cmd, globals);
  cmd->callback([o, &action] { set_action(action, [o] { return run_verify(*o); }); });
}

}  // namespace ackring::cli
