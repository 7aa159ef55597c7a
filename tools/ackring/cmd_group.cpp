// group add | rm | ls | rewind: consumer group management.
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.hpp"
#include "format.hpp"
#include "progress.hpp"
#include "stats_view.hpp"
#include "time_spec.hpp"

namespace ackring::cli {

namespace {

struct GroupOptionsCli {
  std::string name;
  std::string group;
  std::string start = "earliest";
  std::string overflow = "block";
  bool force = false;
  bool json = false;
  // Redelivery back-off (GroupOptions::redelivery); initial 0: none.
  std::uint32_t backoff_initial_ms = 0;
  double backoff_multiplier = 2.0;
  std::uint32_t backoff_max_ms = 60'000;
  std::string backoff_jitter = "equal";
  // Which --backoff-* options were given (group redelivery keeps the others as they are).
  std::vector<const CLI::Option*> backoff_given{};

  [[nodiscard]] RedeliveryPolicy redelivery() const {
    const Jitter jitter = backoff_jitter == "none" ? Jitter::none : backoff_jitter == "full" ? Jitter::full : Jitter::equal;
    return {Millis{backoff_initial_ms}, backoff_multiplier, Millis{backoff_max_ms}, jitter};
  }
  // `current` with the options given on the command line applied.
  [[nodiscard]] RedeliveryPolicy redelivery_over(RedeliveryPolicy current) const {
    const RedeliveryPolicy given = redelivery();
    auto set = [](const CLI::Option* opt) { return opt->count() != 0; };
    if (set(backoff_given[0])) current.initial = given.initial;
    if (set(backoff_given[1])) current.multiplier = given.multiplier;
    if (set(backoff_given[2])) current.max = given.max;
    if (set(backoff_given[3])) current.jitter = given.jitter;
    return current;
  }
};

void add_backoff_options(CLI::App& cmd, GroupOptionsCli& o) {
  o.backoff_given.clear();
  o.backoff_given.push_back(cmd.add_option("--backoff-initial", o.backoff_initial_ms,
                 "Redelivery back-off after the first failed delivery, in ms (0: none, redelivered at once)")
      ->type_name("MS")
      ->capture_default_str());
  o.backoff_given.push_back(
      cmd.add_option("--backoff-multiplier", o.backoff_multiplier, "Each further failure multiplies the back-off (1.0-25.5)")
          ->type_name("X")
          ->capture_default_str());
  o.backoff_given.push_back(
      cmd.add_option("--backoff-max", o.backoff_max_ms, "Longest back-off, in ms")->type_name("MS")->capture_default_str());
  o.backoff_given.push_back(
      cmd.add_option("--backoff-jitter", o.backoff_jitter,
                     "equal: wait between half and all of the back-off; full: between 0 and all; none: exactly it")
          ->check(CLI::IsMember({"none", "equal", "full"}))
          ->capture_default_str());
}

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
  go.redelivery = o.redelivery();
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
  std::cout << ", redelivery back-off " << describe(go.redelivery) << ")\n";
  return 0;
}

int run_redelivery(const GroupOptionsCli& o) {
  Queue q = open_queue(o.name);
  const QueueStats s = q.stats();
  const GroupStats* g = find(s, o.group);
  if (!g) throw group_not_found(o.name, o.group);
  // Options not given keep the group's current values (a group without a
  // back-off has the defaults there).
  const RedeliveryPolicy policy = o.redelivery_over(g->redelivery);
  try {
    q.set_redelivery(o.group, policy);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::not_found) throw group_not_found(o.name, o.group);
    throw Failure(exit_code_of(e.code()), e.what());
  }
  std::cout << "group " << o.group << " of '" << o.name << "': redelivery back-off " << describe(policy) << '\n';
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

// --------------------------------------------------------------- rewind --

struct RewindOptionsCli {
  std::string name;
  std::string group;
  std::uint64_t to_seq = 0;
  bool has_to_seq = false;
  std::string to_time;
  bool json = false;
};

[[noreturn]] void fail_rewind(const std::string& why) { throw Failure(Exit::usage, why); }

int run_rewind(const RewindOptionsCli& o) {
  std::optional<WallClock::time_point> since;
  if (!o.has_to_seq) {
    std::string error;
    since = parse_time_spec(o.to_time, WallClock::now(), error);
    if (!since) fail_rewind("--to-time: " + error);
    if (*since > WallClock::now())
      fail_rewind("--to-time '" + o.to_time + "' is in the future; nothing was published after it yet");
  }
  // Replayed copies are published: on a sync queue each waits for the journal.
  stand_by_as_journal_writer();
  Queue q = open_queue(o.name);
  if (q.options().durability == Durability::none)
    fail_rewind("queue '" + o.name +
                "' has no journal (durability none), and a rewind replays from the journal; only queues created "
                "with --durability async or sync can be rewound (to re-read what is still in the ring, use "
                "'ackring peek " + o.name + " --from SEQ')");
  const QueueStats before = q.stats();
  if (find(before, o.group) == nullptr) throw group_not_found(o.name, o.group);
  if (o.has_to_seq && o.to_seq > before.tail)
    fail_rewind("--to-seq " + std::to_string(o.to_seq) + " is past the tail of queue '" + o.name + "' (" +
                std::to_string(before.tail) + "): nothing was published there yet; see 'ackring stat " + o.name + "'");

  ProgressBar bar("rewinding " + o.group);
  RewindOptions ro;
  ro.progress = bar.callback();
  RewindReport r;
  try {
    r = o.has_to_seq ? q.rewind_group(o.group, o.to_seq, ro) : q.rewind_group(o.group, *since, ro);
    bar.finish();
  } catch (const Error& e) {
    bar.finish();
    switch (e.code()) {
      case ErrorCode::not_found:
        throw group_not_found(o.name, o.group);
      case ErrorCode::invalid_argument:
        fail_rewind(std::string(e.what()) + "; only a durable queue (created with --durability async or sync) can be "
                                            "rewound");
      case ErrorCode::corrupt:
        throw Failure(Exit::corrupt, std::string(e.what()) + "; see 'ackring journal dump " + o.name +
                                         "' for where the journal is damaged");
      default:
        throw Failure(exit_code_of(e.code()),
                      std::string(e.what()) + "; what was replayed stays replayed: run the rewind again to finish "
                                              "it (the group may then see some messages twice)");
    }
  } catch (const std::out_of_range& e) {
    bar.finish();
    fail_rewind(std::string(e.what()) + "; see 'ackring stat " + o.name + "' for the tail");
  }
  if (o.json) {
    Json j{{"queue", o.name},    {"group", o.group},       {"from_seq", r.from_seq},
           {"until_seq", r.until_seq}, {"replayed", r.replayed}};
    j["first_replay_seq"] = r.replayed != 0 ? Json(r.first_replay_seq) : Json(nullptr);
    std::cout << dump(j) << '\n';
    return 0;
  }
  std::cout << "rewound group " << o.group << " of '" << o.name << "': replayed " << r.replayed
            << (r.replayed == 1 ? " message" : " messages");
  if (r.until_seq > r.from_seq) std::cout << " of seqs " << r.from_seq << ".." << r.until_seq - 1;
  if (r.replayed != 0)
    std::cout << " as new seqs from " << r.first_replay_seq << ", for group " << o.group
              << " only; it still receives what it had not consumed before";
  std::cout << '\n';
  if (o.has_to_seq && r.from_seq > o.to_seq)
    std::cout << "note: the journal starts at seq " << r.from_seq << "; seqs " << o.to_seq << " to "
              << r.from_seq - 1 << " are no longer retained\n";
  return 0;
}

}  // namespace

void add_group_commands(CLI::App& app, Globals& globals, Action& action) {
  auto* group = app.add_subcommand("group", "Manage consumer groups: add, rm, ls, redelivery, rewind");
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
    add_backoff_options(*cmd, *o);
    cmd->footer(
        "With --backoff-initial, a message that comes back (its lease ran out, its holder died, or it was\n"
        "nacked without a delay) is visible again only after min(max, initial x multiplier^(deliveries-1)),\n"
        "spread by the jitter. A consumer that closes gives its messages back at once.");
    add_common_options(*cmd, globals);
    cmd->callback([o, &action] { set_action(action, [o] { return run_add(*o); }); });
  }
  {
    auto o = std::make_shared<GroupOptionsCli>();
    auto* cmd = group->add_subcommand("redelivery", "Set a group's redelivery back-off (takes effect at once)");
    cmd->add_option("NAME", o->name, "Queue name or path")->required();
    cmd->add_option("GROUP", o->group, "Group name")->required();
    add_backoff_options(*cmd, *o);
    cmd->footer(
        "Example: ackring group redelivery orders billing --backoff-initial 500 --backoff-max 60000\n"
        "Options not given keep the group's current values; --backoff-initial 0 turns the back-off\n"
        "off. The policy lives in the queue file, not in the journal: after 'ackring recover', set it again.");
    add_common_options(*cmd, globals);
    cmd->callback([o, &action] { set_action(action, [o] { return run_redelivery(*o); }); });
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
    auto o = std::make_shared<RewindOptionsCli>();
    auto* cmd = group->add_subcommand(
        "rewind", "Replay a group's messages from the journal, from a seq or a time on (durable queues)");
    cmd->add_option("NAME", o->name, "Queue name or path")->required();
    cmd->add_option("GROUP", o->group, "Group to replay to")->required();
    auto* seq = cmd->add_option("--to-seq", o->to_seq, "Replay from this seq on")->type_name("SEQ");
    auto* time = cmd->add_option("--to-time", o->to_time,
                                 "Replay what was published at or after TIME: 2026-11-23T10:00:00Z, or -5m, -2h")
                     ->type_name("TIME");
    seq->excludes(time);
    cmd->add_flag("--json", o->json, "Print the summary as JSON");
    cmd->footer(
        "Every journaled message from the point given up to the current tail is published again, in order,\n"
        "as a copy addressed to GROUP only: other groups skip the copies. The group keeps its place, so\n"
        "what it had not consumed yet arrives twice (original and copy). Copies keep their publish time\n"
        "and key (process-once skips those already processed); 'sub --json' marks them \"replayed\": true.\n"
        "Blocks while the ring is full. Exit 1 for a queue without a journal or a seq past the tail.");
    add_common_options(*cmd, globals);
    cmd->callback([o, seq, time, &action] {
      if (seq->count() == 0 && time->count() == 0)
        throw CLI::ValidationError("--to-seq or --to-time", "give one of --to-seq SEQ or --to-time TIME");
      o->has_to_seq = seq->count() != 0;
      set_action(action, [o] { return run_rewind(*o); });
    });
  }
}

}  // namespace ackring::cli
