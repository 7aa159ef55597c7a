// ackring-durable-bench: sync-durable publish through ackring, next to the
// raw limit of the same disk measured in the same run.
//
// A case is (message size, producer processes P, messages per publish call
// k). Each case runs these variants in R interleaved rounds (the order
// rotates every round, so a drifting shared disk hits them alike):
//
//   sync        P forked producers, each calling Producer::publish (k = 1) or
//               publish_batch (k > 1) on a durability=sync queue: a call
//               returns once its records are on disk. A consumer process
//               drains (at-least-once, receive_batch + ack_batch) so the ring
//               never fills, and one more process holds the journal lock (it
//               plays `ackring journald`: the writer thread runs there, not
//               in a producer). Throughput over a fixed window, latency of
//               every call (call to return), and the journal's records per
//               fdatasync = durable seqs / journal_flushes over the window.
//   raw-pwrite  the disk without ackring: the bytes the journal writes for
//               those records (same framing, journal_format.hpp), appended to
//               fallocate()d files of the journal's segment size with one
//               pwrite + fdatasync per batch, the batch being the average the
//               journal achieved in this round's sync run ("batched the same
//               way"). One writer, one batch in flight: that is what the
//               journal does (a flush waits for its fdatasync before the next
//               write). Its rate counts only the time inside the write and
//               the sync: the limit, with no gaps between batches.
//   raw-uring   the same batches through io_uring: a write linked to an
//               fsync(DATASYNC) in one submission, from a registered buffer
//               (the journal's own I/O path, without ackring). Which of the
//               two is faster depends on the machine and its load (both have
//               won on the development VM), so the limit is the faster of
//               the two, per round: "% limit" = sync / max(pwrite, uring).
//   raw-full    raw-uring with the batch every call in flight could make,
//               P x k: what perfect group commit would reach.
//   async       the same producers on a durability=async queue (the journal
//               trails by at most async_flush_interval: the loss window).
//   none        no journal: what the ring itself does with these producers.
//
// "High load" for a blocking API: a sync publish has one call in flight per
// producer, so the journal can batch at most P x k records; load is raised
// by more producers (P) and by publish_batch (k), and P x k is printed as
// "in flight".
//
//   ackring-durable-bench [--dir DIR] [--seconds S] [--sizes 64,1024]
//       [--producers 1,2,8] [--batches 1,32] [--rounds R] [--modes sync,async,none]
//       [--capacity N] [--async-interval-ms MS] [--cpus P,C] [--json FILE] [--label TEXT] [--quick]
//
// DIR (default /var/tmp/ackring-durable-bench) must be on the disk under
// test: /tmp or /dev/shm may be tmpfs, where fdatasync costs nothing (the
// bench detects that with statfs and warns). The bench works in DIR/run-<pid>
// and removes it. Queue files go to /dev/shm as usual.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "durable_bench.hpp"

namespace ackring_bench::durable {
namespace {

std::vector<std::uint32_t> parse_list(const std::string& s, const char* what) {
  std::vector<std::uint32_t> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v == 0 || v > (1u << 24))
      throw std::invalid_argument(std::string(what) + ": bad value '" + item + "'");
    out.push_back(static_cast<std::uint32_t>(v));
  }
  if (out.empty()) throw std::invalid_argument(std::string(what) + ": empty list");
  return out;
}

void usage(const char* argv0) {
  std::printf(
      "usage: %s [options]\n"
      "  --dir DIR              journal and raw files (default /var/tmp/ackring-durable-bench; a real disk)\n"
      "  --seconds S            measured window per run (default 1.5), after a 0.3 s warm-up\n"
      "  --sizes LIST           message bytes (default 64,1024)\n"
      "  --producers LIST       producer processes (default 1,2,8; at most 64)\n"
      "  --batches LIST         messages per publish call: 1 = publish, k > 1 = publish_batch (default 1,32)\n"
      "  --rounds R             interleaved rounds per case; medians are reported (default 3)\n"
      "  --modes LIST           of sync,async,none (default all; raw runs with sync)\n"
      "  --capacity N           ring slots (default 16384)\n"
      "  --async-interval-ms MS async_flush_interval, the async loss window (default 10)\n"
      "  --cpus P,C             pin producers to cpu P, consumer and journal holder to cpu C (default unpinned)\n"
      "  --json FILE            write every run, the medians and the machine as JSON\n"
      "  --label TEXT           a note kept in the JSON (e.g. what the tree under test differs in)\n"
      "  --quick                smoke test: 64 B, 1 and 2 producers, batches 1 and 8, one short round\n",
      argv0);
}

Config parse_args(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--dir") c.dir = val();
    else if (a == "--seconds") c.seconds = std::stod(val());
    else if (a == "--sizes") c.sizes = parse_list(val(), "--sizes");
    else if (a == "--producers") c.producers = parse_list(val(), "--producers");
    else if (a == "--batches") c.batches = parse_list(val(), "--batches");
    else if (a == "--rounds") c.rounds = std::stoi(val());
    else if (a == "--capacity") c.capacity = static_cast<std::uint32_t>(std::stoul(val()));
    else if (a == "--async-interval-ms") c.async_interval_ms = static_cast<std::uint32_t>(std::stoul(val()));
    else if (a == "--json") c.json_path = val();
    else if (a == "--label") c.label = val();
    else if (a == "--modes") {
      const std::string m = "," + val() + ",";
      c.sync = m.find(",sync,") != std::string::npos;
      c.async = m.find(",async,") != std::string::npos;
      c.none = m.find(",none,") != std::string::npos;
      if (!c.sync && !c.async && !c.none) throw std::invalid_argument("--modes: none of sync, async, none");
    } else if (a == "--cpus") {
      const auto v = val();
      const auto comma = v.find(',');
      if (comma == std::string::npos) throw std::invalid_argument("--cpus wants P,C");
      c.cpu_producers = std::stoi(v.substr(0, comma));
      c.cpu_consumer = std::stoi(v.substr(comma + 1));
    } else if (a == "--quick") {
      c.quick = true;
      c.seconds = 0.2;
      c.warmup = 0.05;
      c.rounds = 1;
      c.sizes = {64};
      c.producers = {1, 2};
      c.batches = {1, 8};
      c.capacity = 4096;
    } else if (a == "--help" || a == "-h") {
      usage(argv[0]);
      std::exit(0);
    } else {
      usage(argv[0]);
      throw std::invalid_argument("unknown option " + a);
    }
  }
  if (c.seconds <= 0 || c.rounds < 1) throw std::invalid_argument("--seconds and --rounds must be positive");
  for (const auto p : c.producers)
    if (p > kMaxProducers) throw std::invalid_argument("--producers: at most " + std::to_string(kMaxProducers));
  for (const auto b : c.batches)
    if (b > c.capacity / 4) throw std::invalid_argument("--batches: at most capacity / 4");
  return c;
}

// One case: its units in R rounds, the order rotating every round. The raw
// runs at the achieved batch follow sync because they take the batch sync
// achieved in the same round.
CaseResult run_case(Bench& bench, const Config& cfg, const Case& cs) {
  CaseResult r;
  r.cs = cs;
  auto& runs = r.runs;
  const auto at = [](Variant v) { return static_cast<std::size_t>(v); };
  std::vector<std::function<void()>> units;
  if (cfg.sync) {
    units.push_back([&] {
      const RunResult s = bench.run_ackring(Variant::sync, r.cs);
      const RunResult l = bench.run_ackring(Variant::sync_local, r.cs);
      const RunResult p = bench.run_raw(Variant::raw_pwrite, r.cs, s.records_per_flush);
      const RunResult u = bench.run_raw(Variant::raw_uring, r.cs, s.records_per_flush);
      if (p.msgs_per_s > 0) r.over_pwrite.push_back(s.msgs_per_s / p.msgs_per_s);
      if (u.msgs_per_s > 0) r.over_uring.push_back(s.msgs_per_s / u.msgs_per_s);
      if (const double lim = std::max(p.msgs_per_s, u.msgs_per_s); lim > 0) {
        r.over_limit.push_back(s.msgs_per_s / lim);
        // Against the raw runs at sync's batch: sync_local's own batch is in its row.
        r.local_over_limit.push_back(l.msgs_per_s / lim);
      }
      runs[at(Variant::sync)].push_back(s);
      runs[at(Variant::sync_local)].push_back(l);
      runs[at(Variant::raw_pwrite)].push_back(p);
      runs[at(Variant::raw_uring)].push_back(u);
    });
    units.push_back([&] { runs[at(Variant::raw_full)].push_back(bench.run_raw(Variant::raw_full, r.cs, r.cs.in_flight())); });
  }
  if (cfg.async) units.push_back([&] { runs[at(Variant::async)].push_back(bench.run_ackring(Variant::async, r.cs)); });
  if (cfg.none) units.push_back([&] { runs[at(Variant::none)].push_back(bench.run_ackring(Variant::none, r.cs)); });
  for (int round = 0; round < cfg.rounds; ++round)
    for (std::size_t k = 0; k < units.size(); ++k) units[(k + static_cast<std::size_t>(round)) % units.size()]();
  const auto& S = runs[at(Variant::sync)];
  const auto& F = runs[at(Variant::raw_full)];
  const auto& L = runs[at(Variant::sync_local)];
  for (std::size_t i = 0; i < S.size() && i < F.size(); ++i)
    if (F[i].msgs_per_s > 0) r.over_full.push_back(S[i].msgs_per_s / F[i].msgs_per_s);
  for (std::size_t i = 0; i < L.size() && i < F.size(); ++i)
    if (F[i].msgs_per_s > 0) r.local_over_full.push_back(L[i].msgs_per_s / F[i].msgs_per_s);
  return r;
}

void print_preamble(const Config& cfg, const FsInfo& fsi, const json& machine) {
  std::printf("ackring-durable-bench  commit %.12s  %s, %ld cpus, kernel %s\n", ACKRING_BENCH_GIT_COMMIT,
              machine.value("cpu_model", "?").c_str(), sysconf(_SC_NPROCESSORS_ONLN),
              machine["kernel"].get<std::string>().c_str());
  std::printf("journal dir %s: %s (%s)\n", cfg.dir.c_str(), fsi.type.c_str(), fsi.device.c_str());
  if (fsi.memory)
    std::printf("WARNING: %s is %s: fdatasync costs nothing there, so these figures do not measure a disk.\n"
                "         Use --dir on a real disk (e.g. /var/tmp).\n",
                cfg.dir.c_str(), fsi.type.c_str());
  std::printf("loadavg at start: %s; %.1f s window after %.1f s warm-up, %d round(s), capacity %u, %s\n\n",
              machine["loadavg_start"].get<std::string>().c_str(), cfg.seconds, cfg.warmup, cfg.rounds, cfg.capacity,
              cfg.cpu_producers < 0 ? "unpinned"
                                    : ("producers on cpu" + std::to_string(cfg.cpu_producers) + ", consumer + journal on cpu" +
                                       std::to_string(cfg.cpu_consumer)).c_str());
}

void run(const Config& cfg) {
  Bench bench(cfg);
  const FsInfo fsi = fs_info(cfg.dir);
  json machine = machine_info(cfg, fsi);
  machine["loadavg_start"] = read_first_line("/proc/loadavg");
  print_preamble(cfg, fsi, machine);
  std::vector<CaseResult> results;
  const std::uint64_t started = now_ns();
  for (const auto size : cfg.sizes)
    for (const auto producers : cfg.producers)
      for (const auto batch : cfg.batches) {
        CaseResult r = run_case(bench, cfg, {size, producers, batch});
        if (results.empty()) print_header();
        print_case(r, cfg.async_interval_ms);
        results.push_back(std::move(r));
      }
  const double wall_s = static_cast<double>(now_ns() - started) / 1e9;
  machine["loadavg_end"] = read_first_line("/proc/loadavg");
  std::printf(
      "\nmsgs/s, p50/p99 (per publish call; raw: per write + sync): medians of %d round(s). rec/sync: records\n"
      "per fdatasync. %% limit: sync / the faster raw path (pwrite + fdatasync, or io_uring write -> fsync) at\n"
      "the batch the journal achieved in the same round; %% full: sync / io_uring raw at producers x batch\n"
      "(every call in flight in one fdatasync). async: loss window %u ms.\n"
      "loadavg start: %s   end: %s   wall time %.0f s\n",
      cfg.rounds, cfg.async_interval_ms, machine["loadavg_start"].get<std::string>().c_str(),
      machine["loadavg_end"].get<std::string>().c_str(), wall_s);
  if (!cfg.json_path.empty()) {
    std::ofstream out(cfg.json_path);
    out << results_json(cfg, machine, results, wall_s).dump(2) << "\n";
    if (!out) throw std::runtime_error("cannot write " + cfg.json_path);
    std::printf("results written to %s\n", cfg.json_path.c_str());
  }
}

}  // namespace
}  // namespace ackring_bench::durable

int main(int argc, char** argv) {
  using namespace ackring_bench::durable;
  Config cfg;
  try {
    cfg = parse_args(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ackring-durable-bench: %s\n", e.what());
    return 2;
  }
  install_signal_handlers();
  try {
    run(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ackring-durable-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
