// What the parts of ackring-bench share: the configuration, the scenario
// matrix (topologies, delivery and durability modes), and one row of results.
//   ackring_bench.cpp    command line, machine info, the pass loop
//   bench_scenarios.cpp  what each scenario measures
//   bench_procs.cpp      the forked processes: fork, pin, release together, reap
//   bench_sweep.cpp      --sweep: throughput against groups, members, capacity, leases held
//   bench_report.cpp     terminal tables, JSON, gnuplot plots
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ackring_modes.hpp"
#include "common.hpp"
#include "latency_histogram.hpp"
#include "transports.hpp"

namespace ackring_bench {

using json = nlohmann::json;

struct Config {
  std::uint64_t count = 200'000;      // measured messages per throughput run (all producers together)
  std::uint64_t warmup = 0;           // 0: count / 10
  std::uint64_t sync_count = 200;     // the same for durability=sync, which waits for the journal per publish
  std::uint64_t rtt_samples = 50'000;
  std::uint64_t rtt_warmup = 5'000;
  std::uint64_t lat_samples = 200'000;  // one-way latency: messages measured at --rate
  std::uint64_t lat_warmup = 20'000;
  double rate = 100'000;              // one-way latency: messages per second, evenly spaced
  int repeat = 3;
  std::vector<std::uint32_t> sizes{16, 64, 1024, 4096};
  std::uint32_t matrix_size = 64;     // the size the default run measures topologies and modes at
  int cpu_a = -1, cpu_b = -1;         // producers/pinger, consumers/ponger; -1 unpinned
  std::uint32_t capacity = 4096;
  std::uint32_t batch = 32;
  long mq_maxmsg = 0;                 // 0: the system's msg_max
  bool do_tp = true, do_rtt = true, do_lat = true;
  bool full = false;                  // every size x topology x delivery x durability
  bool quick = false;                 // smoke test: the full matrix with tiny counts
  bool use_git = true;                // ask git for the commit at run time (read-only)
  std::vector<std::string> only;      // transports to run; empty = all
  std::string json_path;
  std::string plot_prefix;            // <prefix>-throughput.png, <prefix>-latency.png
  std::filesystem::path journal_root; // durability async/sync: journals under here (a real disk)
  int timeout_s = 300;                // per scenario run
  double max_run_s = 3;               // producers stop sending after this long (0: never)
  std::vector<std::string> sweep;     // --sweep: groups, members, capacity, inflight, all
  double sweep_window_s = 0.3;        // measured window of one sweep point
  double sweep_warmup_s = 0.05;       // before it
};

// Who sends to whom. Producers are pinned to cpu A, consumers to cpu B.
struct Topology {
  std::string name;  // "1->1", "2->1", "1->2 competing", "1->2 groups"
  int producers = 1;
  int consumers = 1;
  bool fanout = false;  // every consumer gets every message (else: they share the messages)
};
[[nodiscard]] std::vector<Topology> all_topologies();

// One run of one row.
struct Run {
  double msgs_per_s = 0, mb_per_s = 0, seconds = 0;  // throughput (distinct messages)
  Percentiles p;                                     // rtt, latency
  std::shared_ptr<LatencyHistogram> hist;            // latency
  std::uint64_t measured = 0;                        // messages or samples actually measured
  std::uint64_t late_sends = 0;                      // latency: sends more than 1 us behind schedule
  std::vector<int> cpu_seen;                         // sched_getcpu() of each process at its end
  double load1 = 0;
  double c2c_ns = 0;  // core-to-core cache-line RTT probed just before the run
  double wall_s = 0;  // the whole run: set-up, fork, measure, tear-down (what --full costs)
};

// A row of a table: one transport in one configuration, run --repeat times.
struct Variant {
  std::string scenario;   // "throughput" | "rtt" | "latency"
  Topology topology;      // rtt and latency: 1->1
  std::string transport;  // "ackring", "spsc", "uds", "pipe", "mq", "boost"
  std::string label;      // shown in the table
  std::string receiver;   // how the consumer waits
  std::string depth;      // what bounds the messages in flight
  std::string delivery;   // ackring rows: at-most-once | at-least-once | effectively-once
  std::string durability; // ackring rows: none | async | sync
  std::string fanout;     // 1->2 groups: "native" or how it is emulated
  std::string not_applicable;  // why this peer cannot run this topology (row shown as n/a)
  std::uint32_t size = 0;
  std::uint64_t count = 0, warmup = 0;  // throughput: per run, all producers together
  Params params;
  std::function<Run(const Config&, const Variant&, const Params&)> run;
  std::vector<Run> runs;
  std::string error;
  bool reference = false;  // the ackring row the others' ratios are taken against
};

// bench_scenarios.cpp
[[nodiscard]] std::vector<Variant> build_variants(const Config& cfg, const std::string& tag);
[[nodiscard]] double core_to_core_rtt_ns(const Config& cfg);

// bench_procs.cpp
void kill_children_from_signal_handler() noexcept;

// bench_sweep.cpp: prints each sweep's table and bars; returns every run.
[[nodiscard]] json run_sweeps(const Config& cfg, const std::string& tag);

// bench_report.cpp
[[nodiscard]] std::string placement(const Config& cfg, const Variant& v);
void print_tables(const Config& cfg, const std::vector<Variant>& all);
[[nodiscard]] json results_json(const Config& cfg, const std::vector<Variant>& all);
void write_plots(const Config& cfg, const std::vector<Variant>& all);

}  // namespace ackring_bench
