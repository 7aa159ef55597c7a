// metrics: every counter of one or more queues in the Prometheus text
// exposition format (version 0.0.4).
#include <CLI/CLI.hpp>

#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "format.hpp"
#include "stats_view.hpp"

namespace ackring::cli {

namespace {

// Samples grouped by metric name, in first-seen order, so each family gets
// one HELP and one TYPE line as the text exposition format requires.
class Exposition {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  void add(const std::string& name, const char* type, const char* help, const Labels& labels,
           const std::string& value) {
    auto [it, fresh] = index_.try_emplace(name, families_.size());
    if (fresh) families_.push_back({name, type, help, {}});
    std::string line = name;
    if (!labels.empty()) {
      line += '{';
      for (std::size_t i = 0; i < labels.size(); ++i)
        line += (i ? "," : "") + labels[i].first + "=\"" + prometheus_label(labels[i].second) + '"';
      line += '}';
    }
    families_[it->second].lines.push_back(line + ' ' + value);
  }

  [[nodiscard]] std::string render() const {
    std::string out;
    for (const auto& f : families_) {
      out += "# HELP " + f.name + ' ' + f.help + "\n# TYPE " + f.name + ' ' + f.type + '\n';
      for (const auto& l : f.lines) out += l + '\n';
    }
    return out;
  }

 private:
  struct Family {
    std::string name, type, help;
    std::vector<std::string> lines;
  };
  std::vector<Family> families_;
  std::map<std::string, std::size_t> index_;
};

std::string seconds(std::uint64_t ms) {
  return std::to_string(ms / 1000) + '.' + std::string(ms % 1000 < 100 ? (ms % 1000 < 10 ? "00" : "0") : "") +
         std::to_string(ms % 1000);
}

// Only for durable queues: a queue without a journal has no journal series
// (an absent series, not a misleading 0 lag).
void add_journal_metrics(Exposition& m, const std::string& queue, const JournalView& j) {
  const Exposition::Labels q{{"queue", queue}};
  auto d = [](std::uint64_t v) { return std::to_string(v); };
  for (const char* mode : {"none", "async", "sync"})
    m.add("ackring_durability", "gauge", "1 for the queue's durability mode.", {{"queue", queue}, {"mode", mode}},
          to_string(j.durability) == mode ? "1" : "0");
  if (!j.durable) return;
  m.add("ackring_journal_durable_seq", "gauge", "Every sequence number below this is in the journal on disk.", q,
        d(j.durable_seq));
  m.add("ackring_journal_lag", "gauge", "Messages claimed but not yet on disk (tail - durable seq).", q, d(j.lag));
  m.add("ackring_journal_writer_pid", "gauge", "Process writing the journal now; 0 when none does.", q,
        d(j.writer_pid));
  m.add("ackring_journal_flushes_total", "counter", "Journal write + fdatasync rounds.", q, d(j.flushes));
}

void add_queue_metrics(Exposition& m, const std::string& queue, const QueueStats& s) {
  const Exposition::Labels q{{"queue", queue}};
  auto d = [](std::uint64_t v) { return std::to_string(v); };
  m.add("ackring_capacity_slots", "gauge", "Slots in the queue's ring.", q, d(s.capacity));
  m.add("ackring_max_message_size_bytes", "gauge", "Largest payload the queue accepts.", q, d(s.max_message_size));
  m.add("ackring_published_total", "counter", "Publishes that returned ok.", q, d(s.published));
  m.add("ackring_aborted_total", "counter", "Claims aborted because their producer died or stalled.", q, d(s.aborted));
  m.add("ackring_tail", "gauge", "Next sequence number to be claimed.", q, d(s.tail));
  m.add("ackring_depth", "gauge", "Messages retained for the slowest group (tail - min floor).", q, d(s.depth));
  if (s.dedup.enabled) {
    char load[32];
    std::snprintf(load, sizeof load, "%.6f", s.dedup.load_factor);
    m.add("ackring_dedup_entries", "gauge", "Entries of the dedup table.", q, d(s.dedup.entries));
    m.add("ackring_dedup_live_keys", "gauge", "Keys inside the dedup window.", q, d(s.dedup.live));
    m.add("ackring_dedup_load_factor", "gauge", "Live keys / entries.", q, load);
    m.add("ackring_dedup_window_seconds", "gauge", "How long a key is remembered.", q, seconds(s.dedup.window_ms));
    m.add("ackring_dedup_hits_total", "counter", "Keyed publishes answered duplicate.", q, d(s.dedup.hits));
    m.add("ackring_dedup_bloom_negatives_total", "counter", "Lookups the bloom filter answered alone.", q,
          d(s.dedup.bloom_negatives));
    m.add("ackring_dedup_expired_reused_total", "counter", "Entries of expired keys reused.", q,
          d(s.dedup.expired_reused));
    m.add("ackring_dedup_evicted_total", "counter", "Live keys evicted (evict-oldest policy).", q, d(s.dedup.evicted));
    m.add("ackring_dedup_full_total", "counter", "Keyed publishes refused because the key's window was full.", q,
          d(s.dedup.full));
  }
  const Liveness p = liveness(s.producers);
  m.add("ackring_producers", "gauge", "Registered producers by liveness.", {{"queue", queue}, {"state", "alive"}},
        d(p.alive));
  m.add("ackring_producers", "gauge", "Registered producers by liveness.", {{"queue", queue}, {"state", "dead"}},
        d(p.dead));
  for (const auto& pr : s.producers)
    m.add("ackring_producer_published_total", "counter", "Messages published by one registered producer.",
          {{"queue", queue}, {"producer", std::to_string(pr.index)}, {"pid", std::to_string(pr.pid)}}, d(pr.published));
  for (const auto& g : s.groups) {
    const Exposition::Labels gl{{"queue", queue}, {"group", g.name}};
    m.add("ackring_group_floor", "gauge", "Every sequence number below this is settled in the group.", gl, d(g.floor));
    m.add("ackring_group_next", "gauge", "Next sequence number the group dispatches.", gl, d(g.next));
    m.add("ackring_group_lag", "gauge", "Messages the group has not settled yet (tail - floor).", gl, d(g.lag));
    m.add("ackring_group_in_flight", "gauge", "Messages leased and not yet settled.", gl, d(g.in_flight));
    m.add("ackring_group_delivered_total", "counter", "Deliveries, redeliveries included.", gl, d(g.delivered));
    m.add("ackring_group_acked_total", "counter", "Messages acked.", gl, d(g.acked));
    m.add("ackring_group_redelivered_total", "counter", "Deliveries after the first.", gl, d(g.redelivered));
    m.add("ackring_group_nacked_total", "counter", "Messages given back with nack.", gl, d(g.nacked));
    m.add("ackring_group_dead_lettered_total", "counter", "Messages moved to the dead-letter queue.", gl,
          d(g.dead_lettered));
    m.add("ackring_group_dropped_total", "counter", "Messages missed under the drop overflow policy.", gl,
          d(g.dropped));
    m.add("ackring_group_aborted_skipped_total", "counter", "Aborted slots passed over.", gl, d(g.aborted_skipped));
    m.add("ackring_group_corrupt_skipped_total", "counter", "Slots skipped because their checksum or length failed.",
          gl, d(g.corrupt_skipped));
    const Liveness l = liveness(g.members);
    m.add("ackring_group_members", "gauge", "Group members by liveness.",
          {{"queue", queue}, {"group", g.name}, {"state", "alive"}}, d(l.alive));
    m.add("ackring_group_members", "gauge", "Group members by liveness.",
          {{"queue", queue}, {"group", g.name}, {"state", "dead"}}, d(l.dead));
    for (const auto& mem : g.members) {
      const Exposition::Labels ml{
          {"queue", queue}, {"group", g.name}, {"member", std::to_string(mem.index)}, {"pid", std::to_string(mem.pid)}};
      m.add("ackring_member_up", "gauge", "1 if the member's process is alive.", ml, mem.alive ? "1" : "0");
      m.add("ackring_member_delivered_total", "counter", "Deliveries to the member.", ml, d(mem.delivered));
      m.add("ackring_member_acked_total", "counter", "Acks by the member.", ml, d(mem.acked));
      m.add("ackring_member_in_flight", "gauge", "Leases the member holds.", ml, d(mem.in_flight));
      m.add("ackring_member_idle_seconds", "gauge", "Time since the member's last receive or ack.", ml,
            seconds(mem.idle_ms));
    }
  }
}

struct MetricsOptions {
  std::vector<std::string> names;
};

int run_metrics(const MetricsOptions& o) {
  Exposition m;
  int code = 0;
  for (const auto& name : o.names) {
    try {
      const Queue q = open_queue(name);
      const QueueStats s = q.stats();
      m.add("ackring_up", "gauge", "1 if the queue could be opened and read.", {{"queue", name}}, "1");
      add_queue_metrics(m, name, s);
      add_journal_metrics(m, name, journal_view(s, q.options()));
    } catch (const Failure& f) {
      // The others are still exported; the queue that failed reads ackring_up 0.
      m.add("ackring_up", "gauge", "1 if the queue could be opened and read.", {{"queue", name}}, "0");
      std::cerr << "ackring: " << f.what() << '\n';
      if (code == 0) code = static_cast<int>(f.code());
    }
  }
  std::cout << m.render();
  return code;
}

}  // namespace

void add_metrics_command(CLI::App& app, Globals& globals, Action& action) {
  auto o = std::make_shared<MetricsOptions>();
  auto* cmd = app.add_subcommand("metrics", "Print all counters in the Prometheus text exposition format");
  cmd->add_option("NAME", o->names, "Queue names or paths")->required();
  cmd->footer(
      "Labels: queue, group, member (index) and pid. A queue that cannot be read is exported as\n"
      "ackring_up{queue=...} 0, reported on stderr, and sets the exit code.");
  add_common_options(*cmd, globals);
  cmd->callback([o, &action] { set_action(action, [o] { return run_metrics(*o); }); });
}

}  // namespace ackring::cli
