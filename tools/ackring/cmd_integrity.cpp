// verify (a read-only consistency check of the whole file), and the commands
// that will need the journal: recover, journal dump, journald.
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

int run_verify(const VerifyOptions& o) {
  const Queue q = open_queue(o.name);  // a broken header already fails here, with exit 3
  const VerifyReport r = q.verify();
  if (o.json) {
    std::cout << dump(Json{{"name", o.name},
                           {"path", q.path().string()},
                           {"healthy", r.healthy()},
                           {"slots_checked", r.slots_checked},
                           {"corrupt_slots", r.corrupt_slots},
                           {"dead_claims", r.dead_claims},
                           {"problems", r.problems}})
              << '\n';
  } else {
    std::cout << "queue " << o.name << " (" << q.path().string() << "): " << r.slots_checked << " slots checked, "
              << r.corrupt_slots << " corrupt, " << r.dead_claims
              << " claims of dead producers (consumers abort them)\n";
    for (const auto& p : r.problems) std::cout << "  problem: " << p << '\n';
    std::cout << (r.healthy() ? "healthy\n" : "BROKEN\n");
  }
  if (r.healthy()) return 0;
  std::cout.flush();
  throw Failure(Exit::corrupt, "queue '" + o.name + "' failed verification with " + std::to_string(r.problems.size()) +
                                   " problem(s)" + (o.json ? "" : " (listed above)") +
                                   "; consumers skip corrupt slots, anything else means the file was damaged: "
                                   "drain what you can, then recreate the queue");
}

// A command that needs the journal (durability), which this build does not have.
void add_unavailable(CLI::App& parent, Globals& globals, Action& action, const std::string& name,
                     const std::string& description, const std::string& label) {
  auto* cmd = parent.add_subcommand(name, description + " (needs the journal; not in this build yet)");
  cmd->allow_extras();
  cmd->footer("Not available in this build: exits 5.");
  add_common_options(*cmd, globals);
  cmd->callback([&action, label] {
    set_action(action, [label]() -> int {
      throw Failure(Exit::unavailable, label + " needs the journal (not in this build yet)");
    });
  });
}

}  // namespace

void add_integrity_commands(CLI::App& app, Globals& globals, Action& action) {
  {
    auto o = std::make_shared<VerifyOptions>();
    auto* cmd = app.add_subcommand("verify", "Check every slot, group and member of a queue for consistency");
    cmd->add_option("NAME", o->name, "Queue name or path")->required();
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->footer("Reads only. Exit 0 when healthy, 3 when problems were found or the file cannot be opened.");
    add_common_options(*cmd, globals);
    cmd->callback([o, &action] { set_action(action, [o] { return run_verify(*o); }); });
  }
  add_unavailable(app, globals, action, "recover", "Rebuild a queue from its journal", "recover");
  add_unavailable(app, globals, action, "journald", "Run the journal writer for a queue", "journald");
  auto* journal = app.add_subcommand("journal", "Inspect a queue's journal (needs the journal; not in this build yet)");
  journal->require_subcommand(1);
  add_unavailable(*journal, globals, action, "dump", "Print the records of a queue's journal", "journal dump");
}

}  // namespace ackring::cli
