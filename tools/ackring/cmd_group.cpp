// group add | rm | ls | rewind: consumer group management.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>

#include "commands.hpp"
#include "format.hpp"
#include "stats_view.hpp"

namespace ackring::cli {

namespace {

struct GroupOptionsCli {
  std::string name;
  std::string group;
  std::string start = "earliest";
  std::string overflow = "block";
  bool force = false;
  bool json = false;
};

const GroupStats* find(const QueueStats& s, const std::string& group) {
  for (const auto& g : s.groups)
    if (g.name == group) return &g;
  return nullptr;
}

int run_add(const GroupOptionsCli& o) {
  Queue q = open_queue(o.name);
  GroupOptions go;
  go.start = o.start == "latest" ? StartPosition::latest : StartPosition::earliest;
  go.overflow = o.overflow == "drop" ? OverflowPolicy::drop : OverflowPolicy::block;
  try {
    q.create_group(o.group, go);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::already_exists)
      throw Failure(Exit::usage, "group '" + o.group + "' already exists in queue '" + o.name +
                                     "'; see 'ackring group ls " + o.name + "'");
    if (e.code() == ErrorCode::resource_exhausted)
      throw Failure(Exit::busy, std::string(e.what()) + "; remove an unused group ('ackring group rm " + o.name +
                                    " G') or recreate the queue with a larger --max-groups");
    throw Failure(exit_code_of(e.code()), e.what());
  }
  const QueueStats s = q.stats();
  const GroupStats* g = find(s, o.group);
  std::cout << "added group " << o.group << " to '" << o.name << "' (start " << o.start << ", overflow " << o.overflow;
  if (g) std::cout << ", first seq " << g->floor;
  std::cout << ")\n";
  return 0;
}

int run_rm(const GroupOptionsCli& o) {
  Queue q = open_queue(o.name);
  const QueueStats s = q.stats();
  const GroupStats* g = find(s, o.group);
  if (!g) throw group_not_found(o.name, o.group);
  const Liveness l = liveness(g->members);
  if (l.alive != 0 && !o.force)
    throw Failure(Exit::busy, "group '" + o.group + "' has " + std::to_string(l.alive) +
                                  " live member(s); stop them first, or remove it anyway with 'ackring group rm " +
                                  o.name + ' ' + o.group + " --force'");
  const std::uint64_t lag = g->lag;
  if (!q.remove_group(o.group)) throw group_not_found(o.name, o.group);
  std::cout << "removed group " << o.group << " from '" << o.name << "' (" << lag << " unsettled messages dropped)\n";
  return 0;
}

int run_ls(const GroupOptionsCli& o) {
  const Queue q = open_queue(o.name);
  const QueueStats s = q.stats();
  if (o.json) {
    Json list = Json::array();
    for (const GroupStats* g : groups_by_lag(s)) list.push_back(to_json(*g));
    std::cout << dump(list) << '\n';
    return 0;
  }
  if (s.groups.empty()) {
    std::cout << "no groups in '" << o.name << "'; add one with 'ackring group add " << o.name << " G'\n";
    return 0;
  }
  Table t{{"GROUP"}, {"OVERFLOW"}, {"FLOOR", true}, {"NEXT", true}, {"LAG", true}, {"IN FLIGHT", true}, {"MEMBERS"}};
  for (const GroupStats* g : groups_by_lag(s)) {
    const Liveness l = liveness(g->members);
    t.add({g->name, std::string(to_string(g->overflow)), std::to_string(g->floor), std::to_string(g->next),
           std::to_string(g->lag), std::to_string(g->in_flight),
           std::to_string(l.alive) + " alive, " + std::to_string(l.dead) + " dead"});
  }
  std::cout << t.render();
  return 0;
}

}  // namespace

void add_group_commands(CLI::App& app, Globals& globals, Action& action) {
  auto* group = app.add_subcommand("group", "Manage consumer groups: add, rm, ls, rewind");
  group->require_subcommand(1);
  {
    auto o = std::make_shared<GroupOptionsCli>();
    auto* cmd = group->add_subcommand("add", "Create a consumer group");
    cmd->add_option("NAME", o->name, "Queue name or path")->required();
    cmd->add_option("GROUP", o->group, "Group name (1-47 printable ASCII characters, no spaces)")->required();
    cmd->add_option("--start", o->start, "earliest: the oldest retained message; latest: only new messages")
        ->check(CLI::IsMember({"earliest", "latest"}))
        ->capture_default_str();
    cmd->add_option("--overflow", o->overflow,
                    "block: producers wait for the group; drop: the group misses what it falls a ring behind on")
        ->check(CLI::IsMember({"block", "drop"}))
        ->capture_default_str();
    add_common_options(*cmd, globals);
    cmd->callback([o, &action] { set_action(action, [o] { return run_add(*o); }); });
  }
  {
    auto o = std::make_shared<GroupOptionsCli>();
    auto* cmd = group->add_subcommand("rm", "Remove a consumer group (refused while it has live members)");
    cmd->add_option("NAME", o->name, "Queue name or path")->required();
    cmd->add_option("GROUP", o->group, "Group name")->required();
    cmd->add_flag("--force", o->force, "Remove even with live members (their receives then return nothing)");
    add_common_options(*cmd, globals);
    cmd->callback([o, &action] { set_action(action, [o] { return run_rm(*o); }); });
  }
  {
    auto o = std::make_shared<GroupOptionsCli>();
    auto* cmd = group->add_subcommand("ls", "List the groups of a queue, most lagging first");
    cmd->add_option("NAME", o->name, "Queue name or path")->required();
    cmd->add_flag("--json", o->json, "Print JSON");
    add_common_options(*cmd, globals);
    cmd->callback([o, &action] { set_action(action, [o] { return run_ls(*o); }); });
  }
  {
    auto* cmd = group->add_subcommand("rewind", "Move a group back to an earlier position (needs the journal)");
    cmd->allow_extras();
    cmd->footer("Not available in this build: exits 5.");
    add_common_options(*cmd, globals);
    cmd->callback([&action] {
      set_action(action, []() -> int {
        throw Failure(Exit::unavailable, "rewind needs the journal (durability), not available in this build yet");
      });
    });
  }
}

}  // namespace ackring::cli
