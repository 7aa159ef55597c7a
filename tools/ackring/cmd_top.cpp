// top: a live view of one queue, redrawn every interval. Rates come from the
// difference of two successive stats snapshots.
#include <CLI/CLI.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "commands.hpp"
#include "format.hpp"
#include "bridge_view.hpp"
#include "stats_view.hpp"
#include "terminal.hpp"

namespace ackring::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct TopOptions {
  std::string name;
  std::uint32_t interval_ms = 1000;
  std::uint64_t iterations = 0;  // 0: until 'q' or a signal
};

struct Sample {
  QueueStats stats;
  JournalView journal;
  Clock::time_point at;
  std::vector<bridge::BridgeStatus> bridges{};
};

// Per-second rate of a counter between two samples; -1 when unknown.
double rate(std::uint64_t now, std::uint64_t before, double seconds) {
  if (seconds <= 0 || now < before) return -1;
  return static_cast<double>(now - before) / seconds;
}

const GroupStats* find_group(const QueueStats& s, const std::string& name) {
  for (const auto& g : s.groups)
    if (g.name == name) return &g;
  return nullptr;
}

// Cuts every line to the terminal width so nothing wraps, and stops at its height.
std::string fit(const std::string& text, int columns, int rows) {
  if (columns <= 0) return text;
  std::istringstream in(text);
  std::string out, line;
  int n = 0;
  while (std::getline(in, line) && (rows <= 0 || n < rows - 1)) {
    if (line.size() >= static_cast<std::size_t>(columns)) line.resize(static_cast<std::size_t>(columns) - 1);
    out += line + '\n';
    ++n;
  }
  return out;
}

std::string render(const TopOptions& o, const Sample& now, const std::optional<Sample>& before, bool file_gone) {
  const QueueStats& s = now.stats;
  const double dt = before ? std::chrono::duration<double>(now.at - before->at).count() : 0.0;
  auto r = [&](std::uint64_t cur, std::uint64_t old) { return before ? rate(cur, old, dt) : -1.0; };
  const Liveness producers = liveness(s.producers);
  std::ostringstream out;
  out << "ackring top: " << o.name << " (" << s.path << ")   every " << o.interval_ms << " ms   press q to quit\n";
  if (file_gone) out << "the queue file has been removed; showing the last mapping\n";
  out << "published " << s.published << "  " << format_rate(r(s.published, before ? before->stats.published : 0))
      << "   depth " << s.depth << '/' << s.capacity << "   tail " << s.tail << "   aborted " << s.aborted
      << "   producers " << producers.alive << " alive, " << producers.dead << " dead\n";
  if (const JournalView& j = now.journal; j.durable) {
    out << "journal (" << to_string(j.durability) << ") lag " << j.lag << "   durable seq " << j.durable_seq
        << "   writer " << (j.writer_pid != 0 ? "pid " + std::to_string(j.writer_pid) : std::string("none"))
        << "   flushes " << j.flushes << "  "
        << format_rate(r(j.flushes, before ? before->journal.flushes : 0)) << '\n';
  }
  if (s.dedup.enabled) {
    out << "dedup: keyed " << s.dedup.keyed_published << "  duplicates " << s.dedup.hits << " ("
        << format_percent(s.dedup.hit_ratio) << ")  " << format_rate(r(s.dedup.hits, before ? before->stats.dedup.hits : 0))
        << "   live keys " << s.dedup.live << '/' << s.dedup.entries << "   refused (full) " << s.dedup.full << '\n';
  }
  out << '\n';
  if (s.groups.empty()) {
    out << "no consumer groups\n";
    return out.str();
  }
  Table groups{{"GROUP"},
               {"LAG", true},
               {"IN FLIGHT", true},
               {"ACKED/S", true},
               {"DELIVERED/S", true},
               {"REDELIVERED", true},
               {"DEAD-LETTERED", true},
               {"DROPPED", true},
               {"MEMBERS"}};
  // Are leases, retries and dedup healthy? One row per group.
  Table health{{"GROUP"},          {"BACKING OFF", true}, {"REDELIVERED expiry/death/nack/left"},
               {"DLQ/S", true},    {"SKIPS", true},       {"ACK P99"},
               {"LEASE"},          {"OLDEST UNACKED"}};
  std::vector<std::string> warnings;
  Table members{{"GROUP"},           {"MEMBER", true},  {"PID", true}, {"STATE"},
                {"IN FLIGHT", true}, {"ACKED/S", true}, {"IDLE"}};
  for (const GroupStats* g : groups_by_lag(s)) {
    const GroupStats* old = before ? find_group(before->stats, g->name) : nullptr;
    const Liveness l = liveness(g->members);
    groups.add({g->name, std::to_string(g->lag), std::to_string(g->in_flight),
                format_rate(old ? rate(g->acked, old->acked, dt) : -1),
                format_rate(old ? rate(g->delivered, old->delivered, dt) : -1), std::to_string(g->redelivered),
                std::to_string(g->dead_lettered), std::to_string(g->dropped),
                std::to_string(l.alive) + " alive, " + std::to_string(l.dead) + " dead"});
    const auto& by = g->redelivered_by;
    health.add({g->name, std::to_string(g->waiting_redelivery),
                std::to_string(by.expiry) + '/' + std::to_string(by.death) + '/' + std::to_string(by.nack) + '/' +
                    std::to_string(by.released),
                format_rate(old ? rate(g->dead_lettered, old->dead_lettered, dt) : -1),
                std::to_string(g->process_once_skips),
                g->ack_latency.count == 0 ? std::string("-") : format_latency_ms(g->ack_latency.p99_ms),
                g->min_member_lease_ms != 0 ? format_duration(g->min_member_lease_ms) : std::string("-"),
                g->oldest_unacked_publish_ns != 0 ? format_duration(g->oldest_unacked_age_ms) : std::string("-")});
    for (const auto& w : warnings_of(*g)) warnings.push_back(g->name + ": " + w);
    for (const auto& m : g->members) {
      double acked_rate = -1;
      if (old)
        for (const auto& om : old->members)
          if (om.index == m.index && om.pid == m.pid) acked_rate = rate(m.acked, om.acked, dt);
      members.add({g->name, std::to_string(m.index), std::to_string(m.pid), state_of(m),
                   std::to_string(m.in_flight), format_rate(acked_rate), format_duration(m.idle_ms)});
    }
  }
  out << groups.render();
  if (const auto slow = slowest(s); slow && slow->lag > 0) out << "slowest: " << describe(*slow) << '\n';
  out << '\n' << health.render();
  for (const auto& w : warnings) out << "warning: " << w << '\n';
  if (!members.empty()) out << '\n' << members.render();
  if (!now.bridges.empty())
    out << '\n' << render_bridges(now.bridges, before ? &before->bridges : nullptr, dt);
  return out.str();
}

int run_top(const TopOptions& o) {
  const Queue q = open_queue(o.name);
  const auto interval = std::chrono::milliseconds(std::max<std::uint32_t>(o.interval_ms, 10));
  const QueueOptions options = q.options();
  TerminalSession term;
  std::optional<Sample> before;
  for (std::uint64_t frame = 1;; ++frame) {
    QueueStats stats = q.stats();
    JournalView journal = journal_view(stats, options);
    auto bridges = bridges_of(stats.path);
    Sample now{std::move(stats), std::move(journal), Clock::now(), std::move(bridges)};
    std::error_code ec;
    const bool gone = !std::filesystem::exists(q.path(), ec);
    term.draw(fit(render(o, now, before, gone), TerminalSession::columns(), TerminalSession::rows()));
    before = std::move(now);
    if (o.iterations != 0 && frame >= o.iterations) break;
    const auto key = term.wait_key(interval);
    if (term.stop_requested() || (key && (*key == 'q' || *key == 'Q' || *key == '\x03'))) break;
  }
  return 0;
}

}  // namespace

void add_top_command(CLI::App& app, Globals& globals, Action& action) {
  auto o = std::make_shared<TopOptions>();
  auto* cmd = app.add_subcommand("top", "Live view of a queue: rates, depth, lag, leases, dead letters, members");
  cmd->add_option("NAME", o->name, "Queue name or path")->required();
  cmd->add_option("--interval", o->interval_ms, "Refresh every MS milliseconds")
      ->type_name("MS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--iterations", o->iterations, "Exit after N refreshes (default: run until q)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  cmd->footer("Keys: q quits (so does Ctrl-C). Rates are differences of successive snapshots.");
  add_common_options(*cmd, globals);
  cmd->callback([o, &action] { set_action(action, [o] { return run_top(*o); }); });
}

}  // namespace ackring::cli
