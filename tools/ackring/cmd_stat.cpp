// stat: a queue's counters, groups and members, human readable or JSON.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bridge_view.hpp"
#include "commands.hpp"
#include "format.hpp"
#include "stats_view.hpp"

namespace ackring::cli {

namespace {

// ----------------------------------------------------------------- stat --

struct StatOptions {
  std::string name;
  bool json = false;
};

std::string render_group(const GroupStats& g) {
  std::ostringstream out;
  const Liveness l = liveness(g.members);
  out << "group " << g.name << " (overflow " << to_string(g.overflow) << ")\n"
      << "  floor " << g.floor << "  next " << g.next << "  lag " << g.lag << "  in flight " << g.in_flight << '\n'
      << "  delivered " << g.delivered << "  acked " << g.acked << "  redelivered " << g.redelivered << "  nacked "
      << g.nacked << "  dead-lettered " << g.dead_lettered << "  dropped " << g.dropped << '\n'
      << "  skipped: aborted " << g.aborted_skipped << ", corrupt " << g.corrupt_skipped << "  lease expiries "
      << g.lease_expiries << '\n'
      << "  oldest unacked: "
      << (g.oldest_unacked_publish_ns == 0
              ? std::string("none")
              : "seq " + std::to_string(g.oldest_unacked_seq) + ", published " + format_duration(g.oldest_unacked_age_ms) +
                    " ago")
      << '\n'
      << "  redelivery back-off: " << describe(g.redelivery) << "; waiting " << g.waiting_redelivery << '\n'
      << "  redelivered by cause: expiry " << g.redelivered_by.expiry << ", death " << g.redelivered_by.death
      << ", nack " << g.redelivered_by.nack << ", released " << g.redelivered_by.released
      << "  process-once skips " << g.process_once_skips << '\n'
      << "  delivery to ack: " << describe(g.ack_latency)
      << (g.min_member_lease_ms != 0 ? "; shortest lease " + format_duration(g.min_member_lease_ms) : std::string())
      << '\n'
      << "  members: " << l.alive << " alive, " << l.dead << " dead\n";
  for (const auto& w : warnings_of(g)) out << "  warning: " << w << '\n';
  if (!g.members.empty()) {
    Table t{{"MEMBER", true},    {"PID", true},   {"STATE"}, {"IN FLIGHT", true},
            {"DELIVERED", true}, {"ACKED", true}, {"IDLE"}};
    for (const auto& m : g.members)
      t.add({std::to_string(m.index), std::to_string(m.pid), state_of(m), std::to_string(m.in_flight),
             std::to_string(m.delivered), std::to_string(m.acked), format_duration(m.idle_ms)});
    out << t.render(4);
  }
  return out.str();
}

std::string describe_dedup(const DedupStats& d) {
  if (!d.enabled) return "dedup: off";
  char load[32];
  std::snprintf(load, sizeof load, "%.1f%%", d.load_factor * 100.0);
  return "dedup: window " + format_duration(d.window_ms) + ", " + std::to_string(d.live) + " live keys of " +
         std::to_string(d.entries) + " (" + load + "), keyed publishes " + std::to_string(d.keyed_published) +
         ", duplicates " + std::to_string(d.hits) + " (" + format_percent(d.hit_ratio) + "), evicted " +
         std::to_string(d.evicted) + ", refused (full) " + std::to_string(d.full);
}

int run_stat(const StatOptions& o) {
  const Queue q = open_queue(o.name);
  const QueueStats s = q.stats();
  const QueueOptions opts = q.options();
  const auto bridges = bridges_of(s.path);
  if (o.json) {
    Json j = to_json(o.name, s, opts);
    if (!bridges.empty()) {
      j["bridges"] = Json::array();
      for (const auto& b : bridges) j["bridges"].push_back(to_json(b));
    }
    std::cout << dump(j) << '\n';
    return 0;
  }
  const Liveness producers = liveness(s.producers);
  std::cout << "queue " << o.name << " (" << s.path << ")\n"
            << "  capacity " << s.capacity << ", max message size " << s.max_message_size << " B, lease "
            << opts.default_lease.count() << " ms, max deliveries " << opts.max_deliveries << ", mode "
            << octal_mode(opts.mode)
            << (opts.publish_timestamp == PublishTimestamp::coarse ? ", coarse publish times (1-4 ms)" : "") << '\n'
            << "  " << describe(journal_view(s, opts)) << '\n'
            << "  published " << s.published << "  aborted " << s.aborted << "  tail " << s.tail << "  depth "
            << s.depth << '/' << s.capacity << '\n'
            << "  " << describe_dedup(s.dedup) << '\n'
            << "  producers: " << producers.alive << " alive, " << producers.dead << " dead\n";
  if (!s.producers.empty()) {
    Table t{{"PRODUCER", true}, {"PID", true}, {"STATE"}, {"PUBLISHED", true}};
    for (const auto& p : s.producers)
      t.add({std::to_string(p.index), std::to_string(p.pid), state_of(p), std::to_string(p.published)});
    std::cout << t.render(4);
  }
  if (s.groups.empty()) {
    std::cout << "no consumer groups: nothing holds messages for anyone; add one with 'ackring group add " << o.name
              << " GROUP'\n";
    return 0;
  }
  if (const auto slow = slowest(s); slow && slow->lag > 0)
    std::cout << "slowest: " << describe(*slow) << '\n';
  else
    std::cout << "every group is caught up\n";
  for (const GroupStats* g : groups_by_lag(s)) std::cout << '\n' << render_group(*g);
  if (!bridges.empty()) std::cout << "\nbridges (NATS JetStream):\n" << render_bridges(bridges);
  bool elsewhere = false;
  for (const auto& p : s.producers) elsewhere = elsewhere || active_elsewhere(p);
  for (const auto& g : s.groups)
    for (const auto& m : g.members) elsewhere = elsewhere || active_elsewhere(m);
  if (elsewhere)
    std::cout << "\ndead?: no such process in this pid namespace, yet active in the last "
              << kActiveElsewhereMs / 1000 << " s: it probably runs in another container (pid namespace), where "
              << "liveness by pid cannot see it; see 'Containers' in the README\n";
  return 0;
}

}  // namespace

void add_stat_command(CLI::App& app, Globals& globals, Action& action) {
  auto o = std::make_shared<StatOptions>();
  auto* cmd = app.add_subcommand("stat", "Show a queue's counters, groups and members");
  cmd->add_option("NAME", o->name, "Queue name or path")->required();
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->footer(
      "Groups are listed most lagging first (lag = tail - floor); the first line names the\n"
      "slowest member: the one holding the most leases in the most lagging group.");
  add_common_options(*cmd, globals);
  cmd->callback([o, &action] { set_action(action, [o] { return run_stat(*o); }); });
}

}  // namespace ackring::cli
