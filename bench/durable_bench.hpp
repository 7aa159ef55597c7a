// What the parts of ackring-durable-bench share (durable_bench.cpp has the
// method): the configuration, the variants of a case, one run's result, and
// the Bench that runs them.
//   durable_bench.cpp   command line and the case loop (rounds, rotation)
//   durable_run.cpp     an ackring run: forked producers, consumer, journal holder
//   durable_raw.cpp     the raw limit: the journal's bytes, write + fdatasync
//   durable_report.cpp  machine and file system, tables, JSON
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common.hpp"
#include "latency_histogram.hpp"

#ifndef ACKRING_BENCH_GIT_COMMIT
#define ACKRING_BENCH_GIT_COMMIT "unknown"
#endif
#ifndef ACKRING_BENCH_BUILD_TYPE
#define ACKRING_BENCH_BUILD_TYPE "unknown"
#endif

namespace ackring_bench::durable {

namespace fs = std::filesystem;
using json = nlohmann::json;

// sync: the journal lock is held by a process of its own (as with `ackring
// journald`); sync_local: by the first producer's process, whose publishing
// thread then flushes its own messages (the journal thread's wake-ups skipped).
enum class Variant { sync, sync_local, raw_pwrite, raw_uring, raw_full, async, none };
inline constexpr Variant kVariants[] = {Variant::sync,      Variant::sync_local, Variant::raw_pwrite, Variant::raw_uring,
                                        Variant::raw_full,  Variant::async,      Variant::none};
inline constexpr std::size_t kVariantCount = std::size(kVariants);

[[nodiscard]] inline const char* name_of(Variant v) {
  switch (v) {
    case Variant::sync: return "sync";
    case Variant::sync_local: return "sync_local";
    case Variant::raw_pwrite: return "raw_pwrite";
    case Variant::raw_uring: return "raw_uring";
    case Variant::raw_full: return "raw_full";
    case Variant::async: return "async";
    case Variant::none: return "none";
  }
  return "?";
}

struct Config {
  fs::path dir = "/var/tmp/ackring-durable-bench";
  double seconds = 1.5;  // measured window per run
  double warmup = 0.3;   // before the window (journal holder settled, batches grown)
  int rounds = 3;
  std::vector<std::uint32_t> sizes{64, 1024};
  std::vector<std::uint32_t> producers{1, 2, 8};
  std::vector<std::uint32_t> batches{1, 32};
  bool sync = true, async = true, none = true;
  std::uint32_t capacity = 16384;
  std::uint32_t async_interval_ms = 10;
  int cpu_producers = -1, cpu_consumer = -1;  // --cpus P,C; -1: unpinned
  std::string json_path;
  std::string label;  // --label: what tree or setting this run measured, kept in the JSON
  int run_timeout_s = 60;
  bool quick = false;
};

inline constexpr std::uint32_t kMaxProducers = 64;
inline constexpr std::size_t kReceiveBatch = 64;
inline constexpr const char* kGroup = "drain";

// Latencies go into the HDR-style histogram ackring-bench uses (fixed size,
// so each producer records every call without allocating and the parent
// merges them from the shared control block).
[[nodiscard]] inline double percentile_us(const LatencyHistogram& h, double q) {
  return static_cast<double>(h.value_at(q)) / 1000.0;
}

struct RunResult {
  Variant variant = Variant::sync;
  double msgs_per_s = 0;
  double mb_per_s = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;  // per call (ackring) or per batch (raw)
  double records_per_flush = 0;                            // ackring: durable seqs / journal flushes
  double batch = 0;                                        // raw: records per pwrite + fdatasync
  std::uint64_t flushes = 0;                               // in the window
  std::uint64_t messages = 0;                              // in the window
  double load = 0;                                         // 1-minute load average at the start
  std::string cpus;                                        // where the processes ended (sched_getcpu)
};

struct Case {
  std::uint32_t size = 0, producers = 0, batch = 0;
  [[nodiscard]] std::uint32_t in_flight() const { return producers * batch; }
};

struct Control;  // durable_run.cpp: the shared control block of one ackring run

// The runs of every case share one work directory, DIR/run-<pid>, removed at the end.
class Bench {
 public:
  explicit Bench(Config c) : cfg_(std::move(c)) {
    max_size_ = *std::max_element(cfg_.sizes.begin(), cfg_.sizes.end());
    work_ = cfg_.dir / ("run-" + std::to_string(::getpid()));
    fs::create_directories(work_);
  }
  ~Bench() {
    std::error_code ec;
    fs::remove_all(work_, ec);
    fs::remove(cfg_.dir, ec);  // only if empty: never another run's files
  }
  Bench(const Bench&) = delete;
  Bench& operator=(const Bench&) = delete;

  RunResult run_ackring(Variant v, const Case& cs);
  RunResult run_raw(Variant v, const Case& cs, double batch);

 private:
  void wait_children(Control* c, std::vector<pid_t>& pids, std::size_t first, std::size_t count, std::uint64_t deadline);
  void kill_children(std::vector<pid_t>& pids);

  Config cfg_;
  std::uint32_t max_size_ = 0;
  fs::path work_;
  int runs_ = 0;
};

// Every round of one case, by variant.
struct CaseResult {
  Case cs;
  std::vector<RunResult> runs[kVariantCount];  // by Variant
  // sync / raw, per round (paired, so that a slow minute of the disk cancels out)
  std::vector<double> over_pwrite, over_uring, over_limit, over_full;
  std::vector<double> local_over_limit, local_over_full;  // sync_local / raw, likewise
};

// durable_run.cpp: SIGINT / SIGTERM / SIGHUP kill the current run's children
// and remove its queue file.
void install_signal_handlers();

// durable_raw.cpp: the journal's segment size for these queues.
[[nodiscard]] std::uint64_t journal_segment_size(const Config& c, std::uint32_t max_message_size);

// durable_report.cpp
struct FsInfo {
  std::string type, device;
  bool memory = false;  // tmpfs / ramfs: fdatasync is free, no disk is measured
};
[[nodiscard]] FsInfo fs_info(const fs::path& p);
[[nodiscard]] json machine_info(const Config& cfg, const FsInfo& fsi);
void print_header();
void print_case(const CaseResult& r, std::uint32_t async_ms);
[[nodiscard]] json results_json(const Config& cfg, const json& machine, const std::vector<CaseResult>& results,
                                double wall_s);

}  // namespace ackring_bench::durable
