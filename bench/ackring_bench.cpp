// ackring-bench: multi-process benchmark of ackring next to its peers (a
// bare SPSC ring, Unix sockets, pipes, POSIX mq, Boost.Interprocess mq).
//
// Every figure comes from forked processes, producers pinned to one cpu and
// consumers to another with --cpus A,B. Scenarios (bench_scenarios.cpp):
//   throughput  16 B .. 4 KiB; 1->1, 2->1, 1->2 competing, 1->2 groups
//               (fan-out); ackring in every delivery mode (at-most-once,
//               at-least-once, effectively-once) and durability (none,
//               async, sync journal)
//   latency     one-way, at a steady --rate, busy-polling consumer, into an
//               HDR-style histogram
//   rtt         ping-pong, busy-poll and blocking receivers
// --sweep (bench_sweep.cpp) runs instead the cost-growth sweeps: 1 producer
// -> consumers against groups, members, capacity and leases held.
// Each scenario runs --repeat times (interleaved: one pass over all scenarios,
// then the next pass, so a burst of noise hits every transport alike) and the
// median is reported. The default run covers every size at 1->1 and every
// topology and mode at 64 B in about 3 minutes; --full runs the whole matrix.
// See bench/README.md for the methodology.
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_types.hpp"

#ifndef ACKRING_BENCH_SOURCE_DIR
#define ACKRING_BENCH_SOURCE_DIR ""
#endif
#ifndef ACKRING_BENCH_GIT_COMMIT
#define ACKRING_BENCH_GIT_COMMIT "unknown"
#endif
#ifndef ACKRING_BENCH_BUILD_TYPE
#define ACKRING_BENCH_BUILD_TYPE "unknown"
#endif

namespace ackring_bench {
namespace {

[[nodiscard]] long system_mq_msg_max() {
  const std::string s = read_first_line("/proc/sys/fs/mqueue/msg_max");
  return s.empty() ? 10 : std::stol(s);
}

// Removed at exit. Not by the signal handler: walking a directory is not
// async-signal-safe, so an interrupted run leaves it (bench/README.md, Clean-up).
std::filesystem::path g_journal_root;

void on_signal(int sig) {
  kill_children_from_signal_handler();
  Cleanup::remove_all();
  const char msg[] = "\nackring-bench: interrupted; removed its queue files\n";
  [[maybe_unused]] auto r = ::write(2, msg, sizeof msg - 1);
  ::_exit(128 + sig);
}

void remove_journals() noexcept {
  std::error_code ignored;
  if (!g_journal_root.empty()) std::filesystem::remove_all(g_journal_root, ignored);
}

// -------------------------------------------------------------- machine info --
std::string run_cmd(const std::string& cmd) {
  std::string out;
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    ::pclose(f);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

json machine_info() {
  json m;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0 && !m.contains("cpu_model")) m["cpu_model"] = line.substr(line.find(':') + 2);
    if (line.rfind("siblings", 0) == 0 && !m.contains("siblings")) m["siblings"] = line.substr(line.find(':') + 2);
    if (line.rfind("cpu cores", 0) == 0 && !m.contains("cpu_cores")) m["cpu_cores"] = line.substr(line.find(':') + 2);
  }
  m["nproc"] = ::sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) m["cpus_allowed"] = CPU_COUNT(&set);
  utsname u{};
  if (::uname(&u) == 0) {
    m["kernel"] = std::string(u.sysname) + " " + u.release + " " + u.version;
    m["arch"] = u.machine;
    m["hostname"] = u.nodename;
  }
  m["clocksource"] = read_first_line("/sys/devices/system/clocksource/clocksource0/current_clocksource");
  m["mq_msg_max"] = system_mq_msg_max();
  m["compiler"] =
#if defined(__clang__)
      std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
      std::string("g++ ") + __VERSION__;
#else
      "unknown";
#endif
  m["build_type"] = ACKRING_BENCH_BUILD_TYPE;
  // What a system call and a clock read cost here: under a hypervisor these
  // set the floor of every kernel-based peer (and of ackring's futex path).
  constexpr int kProbe = 20'000;
  std::uint64_t t0 = now_ns();
  for (int i = 0; i < kProbe; ++i) ::syscall(SYS_getppid);
  std::uint64_t t1 = now_ns();
  for (int i = 0; i < kProbe; ++i) (void)now_ns();
  std::uint64_t t2 = now_ns();
  m["syscall_ns"] = static_cast<double>(t1 - t0) / kProbe;
  m["clock_gettime_ns"] = static_cast<double>(t2 - t1) / kProbe;
  return m;
}

json git_info(bool use_git) {
  json g;
  const std::string dir = ACKRING_BENCH_SOURCE_DIR;
  std::string commit;
  if (use_git && !dir.empty()) commit = run_cmd("git -C '" + dir + "' rev-parse HEAD 2>/dev/null");
  if (commit.size() == 40) {
    g["commit"] = commit;
    g["source"] = "git rev-parse HEAD at run time";
    // Dirty: the tree differs from the commit (other work in progress);
    // the hash of that diff tells such runs apart.
    // --no-optional-locks: never take the index lock from someone committing.
    const bool dirty = !run_cmd("git --no-optional-locks -C '" + dir + "' status --porcelain --untracked-files=no 2>/dev/null").empty();
    g["dirty"] = dirty;
    if (dirty) g["diff_sha1"] = run_cmd("git --no-optional-locks -C '" + dir + "' diff HEAD 2>/dev/null | sha1sum | cut -c1-40");
  } else {
    g["commit"] = ACKRING_BENCH_GIT_COMMIT;
    g["source"] = use_git ? "configure time" : "configure time (--no-git)";
  }
  g["build_commit"] = ACKRING_BENCH_GIT_COMMIT;
  return g;
}

std::string iso_now() {
  const std::time_t t = std::time(nullptr);
  char b[64];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S%z", std::localtime(&t));
  return b;
}


json to_json(const Config& cfg, const std::vector<Variant>& all, json machine, json git) {
  json j;
  // 2: rows gained topology, delivery, durability, fanout, not_applicable,
  // and the "latency" scenario with its histogram; 1 had 1->1 and rtt only.
  j["schema"] = "ackring-bench/2";
  j["machine"] = std::move(machine);
  j["git"] = std::move(git);
  json topologies = json::array();
  for (const auto& t : all_topologies()) topologies.push_back(t.name);
  j["config"] = {{"count", cfg.count},
                 {"warmup", cfg.warmup ? cfg.warmup : cfg.count / 10},
                 {"sync_count", cfg.sync_count},
                 {"rtt_samples", cfg.rtt_samples},
                 {"rtt_warmup", cfg.rtt_warmup},
                 {"latency_samples", cfg.lat_samples},
                 {"latency_warmup", cfg.lat_warmup},
                 {"latency_rate", cfg.rate},
                 {"repeat", cfg.repeat},
                 {"sizes", cfg.sizes},
                 {"matrix_size", cfg.matrix_size},
                 {"full", cfg.full},
                 {"topologies", topologies},
                 {"capacity", cfg.capacity},
                 {"batch", cfg.batch},
                 {"mq_maxmsg", cfg.mq_maxmsg},
                 {"max_run_seconds", cfg.max_run_s},
                 {"journal_root", cfg.journal_root.string()},
                 {"dedup_entries", kBenchDedupEntries},
                 {"dedup_window_ms", kBenchDedupWindow.count()},
                 {"cpus", cfg.cpu_a < 0 ? json(nullptr) : json::array({cfg.cpu_a, cfg.cpu_b})}};
  j["results"] = results_json(cfg, all);
  return j;
}

// ---------------------------------------------------------------------- cli --
void usage() {
  std::puts(
      "usage: ackring-bench [options]\n"
      "  --full            the whole matrix: every size x topology x delivery x durability,\n"
      "                    latency and RTT of every peer (default: sizes at 1->1, topologies and\n"
      "                    modes at 64 B, latency of ackring/spsc/boost; about 3 minutes)\n"
      "  --count N         measured messages per throughput run (default 200000)\n"
      "  --warmup N        warm-up messages before them (default count/10)\n"
      "  --sync-count N    measured messages of durability=sync runs (default 200: one journal flush each)\n"
      "  --rate R          one-way latency: messages per second (default 100000)\n"
      "  --lat-samples N   one-way latency: measured messages (default 200000)\n"
      "  --lat-warmup N    one-way latency: warm-up messages (default 20000)\n"
      "  --rtt-samples N   measured round trips per ping-pong run (default 50000)\n"
      "  --rtt-warmup N    warm-up round trips (default 5000)\n"
      "  --size LIST       payload bytes (default 16,64,1024,4096; at least 16)\n"
      "  --matrix-size N   the size topologies, modes, latency and RTT use without --full (default 64)\n"
      "  --repeat N        runs per scenario; the median is reported (default 3)\n"
      "  --cpus A,B        pin producers/pinger to A and consumers/ponger to B (default: unpinned)\n"
      "  --capacity N      slots of ackring, the SPSC ring and boost mq (default 4096)\n"
      "  --batch N         receive batch of the ackring and SPSC consumers (default 32)\n"
      "  --mq-maxmsg N     POSIX mq depth (default /proc/sys/fs/mqueue/msg_max; more needs root)\n"
      "  --only LIST       transports: ackring,spsc,uds,pipe,mq,boost (default all)\n"
      "  --scenarios LIST  throughput,latency,rtt (default all)\n"
      "  --journal-dir D   journals of the async/sync rows go under D/ackring-bench.<pid>\n"
      "                    (default /var/tmp: a real disk, not tmpfs)\n"
      "  --json FILE       write every run, the medians and machine info as JSON\n"
      "  --plot PREFIX     write PREFIX-throughput.png and PREFIX-latency.png (needs gnuplot)\n"
      "  --no-git          do not ask git for the commit (use the one recorded at configure time)\n"
      "  --max-run-seconds S  producers stop sending after S s, keeping what was measured (default 3; 0: never)\n"
      "  --timeout S       abort a scenario run after S seconds (default 300)\n"
      "  --quick           the full matrix with tiny counts, one run: the smoke test\n"
      "  --sweep LIST      instead of the scenarios, cost growth: throughput of 1 producer ->\n"
      "                    consumers, 64 B, at-least-once, against any of\n"
      "                      groups    consumer groups 1,2,4,8,16 (one member each)\n"
      "                      members   members of one group 1,2,4,8\n"
      "                      capacity  ring slots 2^10 .. 2^20\n"
      "                      inflight  leases each member holds unacked 0,1024,...,24576\n"
      "                      all       every one of them\n"
      "                    one consumer process polls every member; each point is a\n"
      "                    --sweep-ms window (default 300) after 50 ms, median of --repeat;\n"
      "                    a table and a bar per point (about 1 minute with --repeat 3)\n"
      "  --sweep-ms MS     measured window of one sweep point (default 300)\n");
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

Config parse(int argc, char** argv) {
  Config c;
  std::string journal_dir = "/var/tmp";
  bool matrix_size_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--count") c.count = std::stoull(val());
    else if (a == "--warmup") c.warmup = std::stoull(val());
    else if (a == "--sync-count") c.sync_count = std::stoull(val());
    else if (a == "--rate") c.rate = std::stod(val());
    else if (a == "--lat-samples") c.lat_samples = std::stoull(val());
    else if (a == "--lat-warmup") c.lat_warmup = std::stoull(val());
    else if (a == "--rtt-samples") c.rtt_samples = std::stoull(val());
    else if (a == "--rtt-warmup") c.rtt_warmup = std::stoull(val());
    else if (a == "--repeat") c.repeat = std::stoi(val());
    else if (a == "--capacity") c.capacity = static_cast<std::uint32_t>(std::stoul(val()));
    else if (a == "--batch") c.batch = static_cast<std::uint32_t>(std::stoul(val()));
    else if (a == "--mq-maxmsg") c.mq_maxmsg = std::stol(val());
    else if (a == "--json") c.json_path = val();
    else if (a == "--plot") c.plot_prefix = val();
    else if (a == "--journal-dir") journal_dir = val();
    else if (a == "--no-git") c.use_git = false;
    else if (a == "--full") c.full = true;
    else if (a == "--timeout") c.timeout_s = std::stoi(val());
    else if (a == "--max-run-seconds") c.max_run_s = std::stod(val());
    else if (a == "--only") c.only = split(val());
    else if (a == "--sweep") c.sweep = split(val());
    else if (a == "--sweep-ms") c.sweep_window_s = std::stod(val()) / 1e3;
    else if (a == "--matrix-size") c.matrix_size = static_cast<std::uint32_t>(std::stoul(val())), matrix_size_set = true;
    else if (a == "--size") {
      c.sizes.clear();
      for (const auto& s : split(val())) c.sizes.push_back(static_cast<std::uint32_t>(std::stoul(s)));
    } else if (a == "--cpus") {
      const auto v = split(val());
      if (v.size() != 2) throw std::invalid_argument("--cpus wants A,B");
      c.cpu_a = std::stoi(v[0]);
      c.cpu_b = std::stoi(v[1]);
    } else if (a == "--scenarios") {
      c.do_tp = c.do_rtt = c.do_lat = false;
      for (const auto& s : split(val())) {
        if (s == "throughput" || s == "tp") c.do_tp = true;
        else if (s == "rtt" || s == "pingpong") c.do_rtt = true;
        else if (s == "latency" || s == "lat") c.do_lat = true;
        else throw std::invalid_argument("unknown scenario " + s);
      }
    } else if (a == "--quick") {
      c.quick = c.full = true;
      c.count = 10'000, c.warmup = 1'000, c.sync_count = 20, c.rtt_samples = 2'000, c.rtt_warmup = 200;
      c.lat_samples = 5'000, c.lat_warmup = 500, c.repeat = 1, c.max_run_s = 2;
      c.sweep_window_s = 0.02, c.sweep_warmup_s = 0.005;
    } else if (a == "-h" || a == "--help") {
      usage();
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown option " + a + " (see --help)");
    }
  }
  // Latency payloads carry the index and the send time: 16 bytes at least.
  for (auto s : c.sizes)
    if (s < 16) throw std::invalid_argument("--size: payloads carry an index and a timestamp, so at least 16");
  if (!matrix_size_set && std::find(c.sizes.begin(), c.sizes.end(), c.matrix_size) == c.sizes.end())
    c.matrix_size = c.sizes.front();
  if (c.matrix_size < 16) throw std::invalid_argument("--matrix-size: at least 16");
  if (c.count < 4 || c.sync_count < 4 || c.rtt_samples < 1 || c.lat_samples < 1 || c.repeat < 1 || c.batch < 1 ||
      !(c.rate > 0))
    throw std::invalid_argument("bad counts");
  if (c.capacity < 2 || (c.capacity & (c.capacity - 1)) != 0) throw std::invalid_argument("--capacity: power of two");
  for (const auto& t : c.only)
    if (t != "ackring" && t != "spsc" && t != "uds" && t != "pipe" && t != "mq" && t != "boost")
      throw std::invalid_argument("--only: unknown transport " + t);
  for (const auto& s : c.sweep)
    if (s != "groups" && s != "members" && s != "capacity" && s != "inflight" && s != "all")
      throw std::invalid_argument("--sweep: unknown sweep " + s + " (groups, members, capacity, inflight, all)");
  if (!(c.sweep_window_s > 0)) throw std::invalid_argument("--sweep-ms: positive");
  if (c.mq_maxmsg == 0) c.mq_maxmsg = system_mq_msg_max();
  c.journal_root = std::filesystem::path(journal_dir) / ("ackring-bench." + std::to_string(::getpid()));
  return c;
}

int run_sweep_mode(const Config& cfg, const std::string& tag, json machine, const json& git) {
  std::printf("placement: producer on cpu %s, consumer process on cpu %s\n",
              cfg.cpu_a < 0 ? "any" : std::to_string(cfg.cpu_a).c_str(),
              cfg.cpu_b < 0 ? "any" : std::to_string(cfg.cpu_b).c_str());
  const auto t0 = std::chrono::steady_clock::now();
  const double c2c = core_to_core_rtt_ns(cfg);
  json sweeps = run_sweeps(cfg, tag);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  machine["loadavg_end"] = read_first_line("/proc/loadavg");
  std::printf("\n   core-to-core cache-line RTT (p50) before the sweeps: %.0f ns\n", c2c);
  std::printf("   loadavg start: %s   end: %s   wall time %.0f s\n", machine["loadavg_start"].get<std::string>().c_str(),
              machine["loadavg_end"].get<std::string>().c_str(), secs);
  if (!cfg.json_path.empty()) {
    json j = {{"schema", "ackring-bench-sweep/1"},
              {"machine", std::move(machine)},
              {"git", git},
              {"config", {{"repeat", cfg.repeat},
                          {"window_s", cfg.sweep_window_s},
                          {"warmup_s", cfg.sweep_warmup_s},
                          {"cpus", cfg.cpu_a < 0 ? json(nullptr) : json::array({cfg.cpu_a, cfg.cpu_b})}}},
              {"core_to_core_rtt_ns", c2c},
              {"wall_seconds", secs},
              {"sweeps", std::move(sweeps)}};
    std::ofstream out(cfg.json_path);
    out << j.dump(2) << '\n';
    if (!out) throw std::runtime_error("cannot write " + cfg.json_path);
    std::printf("   results written to %s\n", cfg.json_path.c_str());
  }
  Cleanup::remove_all();
  return 0;
}

int main_impl(int argc, char** argv) {
  const Config cfg = parse(argc, argv);
  g_journal_root = cfg.journal_root;
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);

  json machine = machine_info();
  machine["loadavg_start"] = read_first_line("/proc/loadavg");
  machine["date"] = iso_now();
  const json git = git_info(cfg.use_git);
  std::printf("ackring-bench  commit %s%s  %s, %ld cpus, %s\n", git["commit"].get<std::string>().substr(0, 12).c_str(),
              git.value("dirty", false) ? " (dirty tree)" : "", machine.value("cpu_model", "?").c_str(),
              machine["nproc"].get<long>(), machine.value("kernel", "?").c_str());
  std::printf("loadavg at start: %s   syscall %.0f ns, clock_gettime %.0f ns\n",
              machine["loadavg_start"].get<std::string>().c_str(), machine["syscall_ns"].get<double>(),
              machine["clock_gettime_ns"].get<double>());

  std::fflush(stdout);
  const bool progress = ::isatty(2) != 0;
  const std::string tag = "ackring-bench." + std::to_string(::getpid());
  if (!cfg.sweep.empty()) return run_sweep_mode(cfg, tag, std::move(machine), git);
  std::vector<Variant> all = build_variants(cfg, tag);
  const auto t0 = std::chrono::steady_clock::now();
  json passes = json::array();
  for (int rep = 0; rep < cfg.repeat; ++rep) {
    passes.push_back({{"core_to_core_rtt_ns", core_to_core_rtt_ns(cfg)}, {"loadavg1", read_load1()}});
    for (auto& v : all) {
      if (!v.error.empty() || !v.not_applicable.empty()) continue;
      if (progress)
        std::fprintf(stderr, "\r[%d/%d] %-10s %-14s %-44s %-17s %5u B ", rep + 1, cfg.repeat, v.scenario.c_str(),
                     v.topology.name.c_str(), v.label.c_str(), v.receiver.c_str(), v.size);
      try {
        // Fresh resources (new names) per run: no run inherits another's state.
        Params p = v.params;
        p.tag += ".r" + std::to_string(rep);
        const auto start = std::chrono::steady_clock::now();
        v.runs.push_back(v.run(cfg, v, p));
        v.runs.back().wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      } catch (const std::exception& e) {
        v.error = e.what();
        std::fprintf(stderr, "\n%s %s %s %u B: %s\n", v.scenario.c_str(), v.topology.name.c_str(), v.label.c_str(),
                     v.size, e.what());
      }
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (progress) std::fprintf(stderr, "\r%140s\r", "");
  machine["loadavg_end"] = read_first_line("/proc/loadavg");
  print_tables(cfg, all);
  std::printf("   c2c ns: median over the runs of the core-to-core cache-line RTT probed before each run\n"
              "   (the host moves this VM's vCPUs between near and far cores; compare rows of similar c2c).\n");
  std::printf("   core-to-core cache-line RTT (p50) before each pass:");
  for (const auto& p : passes) std::printf(" %.0f ns (load %.2f)", p["core_to_core_rtt_ns"].get<double>(), p["loadavg1"].get<double>());
  std::printf("\n");
  std::printf("   loadavg start: %s   end: %s   wall time %.0f s\n", machine["loadavg_start"].get<std::string>().c_str(),
              machine["loadavg_end"].get<std::string>().c_str(), secs);
  if (!cfg.json_path.empty()) {
    json j = to_json(cfg, all, machine, git);
    j["wall_seconds"] = secs;
    j["passes"] = passes;
    std::ofstream out(cfg.json_path);
    out << j.dump(2) << '\n';
    if (!out) throw std::runtime_error("cannot write " + cfg.json_path);
    std::printf("   results written to %s\n", cfg.json_path.c_str());
  }
  write_plots(cfg, all);
  Cleanup::remove_all();
  remove_journals();
  for (const auto& v : all)
    if (!v.error.empty()) return 1;
  return 0;
}

}  // namespace
}  // namespace ackring_bench

int main(int argc, char** argv) {
  try {
    return ackring_bench::main_impl(argc, argv);
  } catch (const std::exception& e) {
    ackring_bench::Cleanup::remove_all();
    ackring_bench::remove_journals();
    std::fprintf(stderr, "ackring-bench: %s\n", e.what());
    return 2;
  }
}
