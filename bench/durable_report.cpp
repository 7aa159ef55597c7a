// ackring-durable-bench: what it prints and writes. The machine and the
// journal directory's file system, the table of medians (one block per
// case), and the JSON with every run.
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "durable_bench.hpp"

namespace ackring_bench::durable {
namespace {

json run_json(const RunResult& r) {
  return {{"msgs_per_s", r.msgs_per_s},  {"mb_per_s", r.mb_per_s},   {"p50_us", r.p50_us},
          {"p99_us", r.p99_us},          {"p999_us", r.p999_us},     {"max_us", r.max_us},
          {"records_per_flush", r.records_per_flush}, {"flushes", r.flushes}, {"messages", r.messages},
          {"loadavg1", r.load},          {"cpus", r.cpus}};
}

double med(const std::vector<RunResult>& runs, double RunResult::*f) {
  std::vector<double> x;
  for (const auto& r : runs) x.push_back(r.*f);
  return median(x);
}

std::string fmt_rate(double x) {
  char b[32];
  if (x >= 1e6) std::snprintf(b, sizeof b, "%.2f M", x / 1e6);
  else if (x >= 1e4) std::snprintf(b, sizeof b, "%.1f k", x / 1e3);
  else std::snprintf(b, sizeof b, "%.0f", x);
  return b;
}

std::string pct_text(const std::vector<double>& v) {
  if (v.empty()) return "-";
  char b[16];
  std::snprintf(b, sizeof b, "%.0f", 100 * median(v));
  return b;
}

void print_row(const Case& cs, const std::string& label, const std::vector<RunResult>& runs, const std::string& pct,
               const std::string& pct_full) {
  if (runs.empty()) return;
  const double rps = med(runs, &RunResult::records_per_flush);
  char rec[16] = "-";
  if (rps > 0) std::snprintf(rec, sizeof rec, "%.1f", rps);
  std::printf("%5u %4u %5u %6u  %-15s %10s %8.2f %9.1f %9.1f %9s %7s %6s %5.2f\n", cs.size, cs.producers, cs.batch,
              cs.in_flight(), label.c_str(), fmt_rate(med(runs, &RunResult::msgs_per_s)).c_str(),
              med(runs, &RunResult::mb_per_s), med(runs, &RunResult::p50_us), med(runs, &RunResult::p99_us), rec,
              pct.c_str(), pct_full.c_str(), med(runs, &RunResult::load));
}

}  // namespace

FsInfo fs_info(const fs::path& p) {
  FsInfo f;
  struct statfs s{};
  if (::statfs(p.c_str(), &s) == 0) {
    switch (static_cast<unsigned long>(s.f_type)) {
      case 0xEF53: f.type = "ext4"; break;
      case 0x58465342: f.type = "xfs"; break;
      case 0x9123683E: f.type = "btrfs"; break;
      case 0x794c7630: f.type = "overlayfs"; break;
      case 0x01021994: f.type = "tmpfs", f.memory = true; break;
      case 0x858458f6: f.type = "ramfs", f.memory = true; break;
      default: {
        char b[32];
        std::snprintf(b, sizeof b, "0x%lx", static_cast<unsigned long>(s.f_type));
        f.type = b;
      }
    }
  }
  // The device: the mount point that is the longest prefix of the path.
  std::ifstream mounts("/proc/self/mounts");
  std::string dev, mnt, rest;
  std::size_t best = 0;
  const std::string abs = fs::weakly_canonical(p).string();
  while (mounts >> dev >> mnt && std::getline(mounts, rest)) {
    if (abs.rfind(mnt, 0) == 0 && (abs.size() == mnt.size() || mnt == "/" || abs[mnt.size()] == '/') &&
        mnt.size() >= best)
      best = mnt.size(), f.device = dev + " on " + mnt;
  }
  return f;
}

json machine_info(const Config& cfg, const FsInfo& fsi) {
  json m;
  std::ifstream cpu("/proc/cpuinfo");
  for (std::string line; std::getline(cpu, line);)
    if (line.rfind("model name", 0) == 0) {
      m["cpu_model"] = line.substr(line.find(':') + 2);
      break;
    }
  utsname u{};
  ::uname(&u);
  m["kernel"] = u.release;
  m["cpus"] = sysconf(_SC_NPROCESSORS_ONLN);
  m["compiler"] = __VERSION__;
  m["build_type"] = ACKRING_BENCH_BUILD_TYPE;
  m["journal_dir"] = cfg.dir.string();
  m["fs_type"] = fsi.type;
  m["fs_device"] = fsi.device;
  return m;
}

void print_header() {
  std::printf("%5s %4s %5s %6s  %-15s %10s %8s %9s %9s %9s %7s %6s %5s\n", "size", "prod", "batch", "flight", "variant",
              "msgs/s", "MB/s", "p50 us", "p99 us", "rec/sync", "% limit", "% full", "load");
}

void print_case(const CaseResult& r, std::uint32_t async_ms) {
  const auto& runs = r.runs;
  const auto at = [](Variant v) { return static_cast<std::size_t>(v); };
  char b[32];
  print_row(r.cs, "sync", runs[at(Variant::sync)], pct_text(r.over_limit), pct_text(r.over_full));
  print_row(r.cs, "sync, local", runs[at(Variant::sync_local)], pct_text(r.local_over_limit), pct_text(r.local_over_full));
  // The raw rows' own share of the limit shows which path set it.
  std::vector<double> pw, ur;
  const auto& P = runs[at(Variant::raw_pwrite)];
  const auto& U = runs[at(Variant::raw_uring)];
  for (std::size_t i = 0; i < P.size() && i < U.size(); ++i) {
    const double lim = std::max(P[i].msgs_per_s, U[i].msgs_per_s);
    if (lim > 0) pw.push_back(P[i].msgs_per_s / lim), ur.push_back(U[i].msgs_per_s / lim);
  }
  std::snprintf(b, sizeof b, "pwrite @%.1f", med(P, &RunResult::batch));
  print_row(r.cs, b, P, pct_text(pw), "-");
  std::snprintf(b, sizeof b, "uring @%.1f", med(U, &RunResult::batch));
  print_row(r.cs, b, U, pct_text(ur), "-");
  std::snprintf(b, sizeof b, "uring @%u full", r.cs.in_flight());
  print_row(r.cs, b, runs[at(Variant::raw_full)], "-", "100");
  std::snprintf(b, sizeof b, "async %ums", async_ms);
  print_row(r.cs, b, runs[at(Variant::async)], "-", "-");
  print_row(r.cs, "none", runs[at(Variant::none)], "-", "-");
  std::fflush(stdout);
}

json results_json(const Config& cfg, const json& machine, const std::vector<CaseResult>& results, double wall_s) {
  json j;
  j["benchmark"] = "ackring-durable-bench";
  j["git"] = {{"build_commit", ACKRING_BENCH_GIT_COMMIT}};
  j["label"] = cfg.label;
  j["date_utc"] = [] {
    char b[32];
    const std::time_t t = std::time(nullptr);
    std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return std::string(b);
  }();
  j["machine"] = machine;
  j["config"] = {{"seconds", cfg.seconds},
                 {"warmup_s", cfg.warmup},
                 {"rounds", cfg.rounds},
                 {"capacity", cfg.capacity},
                 {"async_flush_interval_ms", cfg.async_interval_ms},
                 {"receive_batch", kReceiveBatch},
                 {"cpus", cfg.cpu_producers < 0 ? json(nullptr) : json::array({cfg.cpu_producers, cfg.cpu_consumer})},
                 {"wall_s", wall_s}};
  json cases = json::array();
  for (const auto& r : results) {
    json c = {{"size", r.cs.size}, {"producers", r.cs.producers}, {"batch", r.cs.batch}, {"in_flight", r.cs.in_flight()}};
    for (const Variant v : kVariants) {
      const auto& runs = r.runs[static_cast<int>(v)];
      if (runs.empty()) continue;
      json rs = json::array();
      for (const auto& x : runs) rs.push_back(run_json(x));
      json m = {{"msgs_per_s", med(runs, &RunResult::msgs_per_s)}, {"mb_per_s", med(runs, &RunResult::mb_per_s)},
                {"p50_us", med(runs, &RunResult::p50_us)},         {"p99_us", med(runs, &RunResult::p99_us)},
                {"p999_us", med(runs, &RunResult::p999_us)},       {"records_per_flush", med(runs, &RunResult::records_per_flush)}};
      c[name_of(v)] = {{"median", m}, {"runs", rs}};
    }
    // sync / raw, paired per round; "limit" is the faster raw path of the round.
    const auto ratio = [&](const char* key, const std::vector<double>& v) {
      if (!v.empty()) c[key] = {{"median", median(v)}, {"rounds", v}};
    };
    ratio("sync_over_limit", r.over_limit);
    ratio("sync_over_raw_pwrite", r.over_pwrite);
    ratio("sync_over_raw_uring", r.over_uring);
    ratio("sync_over_raw_full", r.over_full);
    ratio("sync_local_over_limit", r.local_over_limit);
    ratio("sync_local_over_raw_full", r.local_over_full);
    cases.push_back(std::move(c));
  }
  j["cases"] = std::move(cases);
  return j;
}

}  // namespace ackring_bench::durable
