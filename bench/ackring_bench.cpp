// ackring-bench: multi-process benchmark of ackring next to its peers.
//
// Every figure comes from two forked processes (producer/consumer, or
// pinger/ponger), optionally pinned with --cpus A,B. Scenarios:
//   throughput 1->1: W warm-up + N measured messages; the consumer times the
//                    N measured ones (first to last arrival) and checks the
//                    index each message carries (order, completeness).
//   ping-pong RTT:   two channels, one message in flight; the pinger stamps
//                    each round trip into a preallocated vector, sorts it,
//                    and reports min/p50/p90/p99/p99.9/max.
// Each scenario runs --repeat times (interleaved: one pass over all scenarios,
// then the next pass, so a burst of noise hits every transport alike) and the
// median is reported. See bench/README.md for the methodology.
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"
#include "transports.hpp"

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

using json = nlohmann::json;

// ------------------------------------------------------------------ config --
struct Config {
  std::uint64_t count = 1'000'000;    // measured messages per throughput run
  std::uint64_t warmup = 0;           // 0: count / 10
  std::uint64_t rtt_samples = 100'000;
  std::uint64_t rtt_warmup = 10'000;
  int repeat = 3;
  std::vector<std::uint32_t> sizes{64};
  int cpu_a = -1, cpu_b = -1;         // producer/pinger, consumer/ponger; -1 unpinned
  std::uint32_t capacity = 4096;
  std::uint32_t batch = 32;
  long mq_maxmsg = 0;                 // 0: the system's msg_max
  bool do_tp = true, do_rtt = true;
  std::vector<std::string> only;      // transports to run; empty = all
  std::string json_path;
  int timeout_s = 300;                // per scenario run
  double max_run_s = 5;               // stop measuring a run after this long (0: never)
};

[[nodiscard]] std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

[[nodiscard]] long system_mq_msg_max() {
  const std::string s = read_first_line("/proc/sys/fs/mqueue/msg_max");
  return s.empty() ? 10 : std::stol(s);
}

// ---------------------------------------------------------- child processes --
// The control block the parent maps (shared, anonymous) before each fork.
struct Ctrl {
  std::atomic<int> ready{0};
  std::atomic<int> go{0};
  std::atomic<int> cpu_seen[2]{-1, -1};  // sched_getcpu() of A and B at the end
  // Throughput: consumer's arrival times of the first and last measured message.
  std::uint64_t t_first = 0, t_last = 0, bad = 0;
  std::uint64_t measured = 0;            // messages (throughput) or samples (RTT) actually measured
  std::atomic<int> capped{0};            // the measuring child stopped at --max-run-seconds
  Percentiles rtt;
  char error[2][512]{};
};

std::atomic<pid_t> g_children[2]{0, 0};

void on_signal(int sig) {
  for (auto& c : g_children)
    if (const pid_t p = c.load(); p > 0) ::kill(p, SIGKILL);
  Cleanup::remove_all();
  const char msg[] = "\nackring-bench: interrupted; removed its queue files\n";
  [[maybe_unused]] auto r = ::write(2, msg, sizeof msg - 1);
  ::_exit(128 + sig);
}

class SharedCtrl {
 public:
  SharedCtrl() {
    void* p = ::mmap(nullptr, sizeof(Ctrl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw_errno("mmap control block");
    ctrl_ = new (p) Ctrl;
  }
  ~SharedCtrl() { ::munmap(ctrl_, sizeof(Ctrl)); }
  SharedCtrl(const SharedCtrl&) = delete;
  SharedCtrl& operator=(const SharedCtrl&) = delete;
  Ctrl* operator->() const noexcept { return ctrl_; }
  Ctrl* get() const noexcept { return ctrl_; }

 private:
  Ctrl* ctrl_;
};

// Both children wait here until the parent sees both ready; setup (open,
// map, join, pin) is thus outside every timed region.
void barrier(Ctrl* c) {
  c->ready.fetch_add(1, std::memory_order_acq_rel);
  while (c->go.load(std::memory_order_acquire) == 0) ::usleep(50);
}

template <class F>
pid_t spawn(Ctrl* c, int role, int cpu, F&& body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    int rc = 0;
    try {
      pin_to(cpu);
      body();
      c->cpu_seen[role].store(::sched_getcpu());
    } catch (const std::exception& e) {
      std::snprintf(c->error[role], sizeof c->error[role], "%s", e.what());
      rc = 2;
    }
    ::_exit(rc);  // no destructors of the parent's objects: the parent owns the files
  }
  g_children[role].store(pid);
  return pid;
}

// Starts both children (A = producer/pinger, B = consumer/ponger), releases
// them together, waits for them; throws with the children's errors.
// `primary` is the child that measures (0 = A, 1 = B). If it stopped early at
// --max-run-seconds, its partner may be blocked (a producer on a full queue,
// a ponger waiting for a ping) and is killed once the primary has reported.
template <class A, class B>
void run_pair(const Config& cfg, Ctrl* c, int primary, A&& a, B&& b) {
  const pid_t pb = spawn(c, 1, cfg.cpu_b, std::forward<B>(b));
  const pid_t pa = spawn(c, 0, cfg.cpu_a, std::forward<A>(a));
  pid_t pids[2] = {pa, pb};
  int status[2] = {0, 0};
  bool done[2] = {false, false};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(cfg.timeout_s);
  bool released = false;
  while (!(done[0] && done[1])) {
    for (int i = 0; i < 2; ++i)
      if (!done[i] && ::waitpid(pids[i], &status[i], WNOHANG) == pids[i]) done[i] = true;
    if (!released && c->ready.load() == 2) {
      c->go.store(1, std::memory_order_release);
      released = true;
    }
    if (done[primary] && status[primary] == 0 && c->capped.load() != 0) {
      const int other = 1 - primary;
      if (!done[other]) ::kill(pids[other], SIGKILL), ::waitpid(pids[other], nullptr, 0), done[other] = true;
      break;
    }
    const bool failed = (done[0] && status[0] != 0) || (done[1] && status[1] != 0);
    if (failed || std::chrono::steady_clock::now() > deadline) {
      for (int i = 0; i < 2; ++i)
        if (!done[i]) ::kill(pids[i], SIGKILL), ::waitpid(pids[i], nullptr, 0), done[i] = true;
      g_children[0] = g_children[1] = 0;
      std::string why = failed ? "child failed" : "timed out after " + std::to_string(cfg.timeout_s) + " s";
      for (int i = 0; i < 2; ++i)
        if (c->error[i][0]) why += std::string("; ") + (i == 0 ? "A: " : "B: ") + c->error[i];
      throw std::runtime_error(why);
    }
    ::usleep(released ? 2000 : 100);
  }
  g_children[0] = g_children[1] = 0;
}

// ---------------------------------------------------------------- scenarios --
struct TpRun {
  double msgs_per_s = 0, mb_per_s = 0, seconds = 0;
  std::uint64_t measured = 0;
  int cpu_a = -1, cpu_b = -1;
  double load1 = 0;
  double c2c_ns = 0;  // core-to-core cache-line RTT probed just before the run
};

struct RttRun {
  Percentiles p;
  std::uint64_t measured = 0;
  int cpu_a = -1, cpu_b = -1;
  double load1 = 0;
  double c2c_ns = 0;  // core-to-core cache-line RTT probed just before the run
};

[[nodiscard]] double load1() {
  double l = 0;
  std::istringstream(read_first_line("/proc/loadavg")) >> l;
  return l;
}

double core_to_core_rtt_ns(const Config& cfg);

template <class T>
TpRun run_throughput(const Config& cfg, const Params& p) {
  T t(p, 1);
  SharedCtrl c;
  const std::uint64_t warm = cfg.warmup ? cfg.warmup : cfg.count / 10;
  const std::uint64_t total = warm + cfg.count;
  TpRun out;
  out.load1 = load1();
  out.c2c_ns = core_to_core_rtt_ns(cfg);
  const std::uint64_t cap_ns = static_cast<std::uint64_t>(cfg.max_run_s * 1e9);
  run_pair(
      cfg, c.get(), /*primary=*/1,
      [&] {  // producer
        typename T::Tx tx(t, 0);
        std::vector<std::byte> buf(p.size, std::byte{0x5a});
        barrier(c.get());
        for (std::uint64_t i = 0; i < total; ++i) {
          stamp(buf.data(), i);
          tx.send(buf.data(), p.size);
        }
      },
      [&] {  // consumer
        typename T::Rx rx(t, 0);
        barrier(c.get());
        std::uint64_t expect = 0, bad = 0, t_first = 0;
        bool capped = false;
        while (expect < total && !capped) {
          rx.recv([&](const std::byte* d, std::uint32_t n) {
            bad += (n != p.size) | (index_of(d) != expect);
            if (expect == warm) t_first = now_ns();
            // Every 64 Ki messages: stop early if the run is taking too long.
            if ((expect & 0xffff) == 0 && expect > warm && cap_ns != 0 && now_ns() - t_first > cap_ns) capped = true;
            ++expect;
          });
        }
        c->t_last = now_ns();
        c->t_first = t_first;
        c->bad = bad;
        c->measured = expect - warm;
        if (capped) c->capped.store(1);
      });
  if (c->bad != 0) throw std::runtime_error(std::to_string(c->bad) + " messages out of order, lost or mangled");
  out.seconds = static_cast<double>(c->t_last - c->t_first) * 1e-9;
  out.measured = c->measured;
  out.msgs_per_s = static_cast<double>(c->measured - 1) / out.seconds;
  out.mb_per_s = out.msgs_per_s * p.size / 1e6;
  out.cpu_a = c->cpu_seen[0];
  out.cpu_b = c->cpu_seen[1];
  return out;
}

template <class T>
RttRun run_rtt(const Config& cfg, const Params& p) {
  T t(p, 2);
  SharedCtrl c;
  RttRun out;
  out.load1 = load1();
  out.c2c_ns = core_to_core_rtt_ns(cfg);
  const std::uint64_t total = cfg.rtt_warmup + cfg.rtt_samples;
  const std::uint64_t cap_ns = static_cast<std::uint64_t>(cfg.max_run_s * 1e9);
  run_pair(
      cfg, c.get(), /*primary=*/0,
      [&] {  // pinger
        typename T::Tx tx(t, 0);
        typename T::Rx rx(t, 1);
        std::vector<std::uint64_t> samples(cfg.rtt_samples);  // preallocated: no allocation while timing
        std::vector<std::byte> buf(p.size, std::byte{0x5a});
        barrier(c.get());
        std::uint64_t bad = 0, t_start = 0, i = 0;
        for (; i < total; ++i) {
          if (i == cfg.rtt_warmup) t_start = now_ns();
          // Every 1024 round trips: stop early if the run is taking too long.
          if ((i & 1023) == 0 && i > cfg.rtt_warmup && cap_ns != 0 && now_ns() - t_start > cap_ns) {
            c->capped.store(1);
            break;
          }
          stamp(buf.data(), i);
          const std::uint64_t t0 = now_ns();
          tx.send(buf.data(), p.size);
          std::size_t got = 0;
          while (got == 0)
            got = rx.recv([&](const std::byte* d, std::uint32_t n) { bad += (n != p.size) | (index_of(d) != i); });
          const std::uint64_t t1 = now_ns();
          bad += got != 1;
          if (i >= cfg.rtt_warmup) samples[i - cfg.rtt_warmup] = t1 - t0;
        }
        if (bad != 0) throw std::runtime_error(std::to_string(bad) + " bad pongs");
        samples.resize(i > cfg.rtt_warmup ? i - cfg.rtt_warmup : 0);
        c->measured = samples.size();
        c->rtt = percentiles(samples);
      },
      [&] {  // ponger: echoes every ping on channel 1
        typename T::Tx tx(t, 1);
        typename T::Rx rx(t, 0);
        barrier(c.get());
        std::uint64_t seen = 0;
        while (seen < total)
          seen += rx.recv([&](const std::byte* d, std::uint32_t n) { tx.send(d, n); });
      });
  out.p = c->rtt;
  out.measured = c->measured;
  out.cpu_a = c->cpu_seen[0];
  out.cpu_b = c->cpu_seen[1];
  return out;
}

// A row of a table: one transport in one configuration, run --repeat times.
struct Variant {
  std::string scenario;   // "throughput" | "rtt"
  std::string transport;  // "ackring", "spsc", "uds", "pipe", "mq", "boost"
  std::string label;      // shown in the table
  std::string receiver;   // rtt: "busy-poll" | "blocking"; throughput: how the consumer waits
  std::string depth;      // what bounds the messages in flight
  std::uint32_t size = 0;
  Params params;
  std::function<TpRun(const Config&, const Params&)> tp;
  std::function<RttRun(const Config&, const Params&)> rtt;
  std::vector<TpRun> tp_runs;
  std::vector<RttRun> rtt_runs;
  std::string error;
  bool reference = false;  // the ackring row the others' ratios are taken against
};

template <class T>
void add_variant(std::vector<Variant>& out, std::string scenario, std::string transport, std::string label,
                 std::string receiver, std::string depth, const Params& p) {
  Variant v;
  v.scenario = std::move(scenario);
  v.transport = std::move(transport);
  v.label = std::move(label);
  v.receiver = std::move(receiver);
  v.depth = std::move(depth);
  v.size = p.size;
  v.params = p;
  if (v.scenario == "throughput") v.tp = &run_throughput<T>;
  else v.rtt = &run_rtt<T>;
  out.push_back(std::move(v));
}

std::vector<Variant> build_variants(const Config& cfg, const std::string& tag) {
  std::vector<Variant> v;
  const auto want = [&](const char* t) {
    return cfg.only.empty() || std::find(cfg.only.begin(), cfg.only.end(), t) != cfg.only.end();
  };
  const std::string cap = std::to_string(cfg.capacity) + " slots";
  const std::string mqd = std::to_string(cfg.mq_maxmsg) + " msgs";
  int n = 0;
  for (const std::uint32_t size : cfg.sizes) {
    Params base;
    base.size = size;
    base.capacity = cfg.capacity;
    base.batch = cfg.batch;
    base.mq_maxmsg = cfg.mq_maxmsg;
    const auto mk = [&](auto&& tweak) {
      Params p = base;
      p.tag = tag + "." + std::to_string(n++);
      tweak(p);
      return p;
    };
    const auto none = [](Params&) {};
    const std::string b = std::to_string(cfg.batch);
    if (cfg.do_tp) {
      if (want("ackring")) {
        // The headline row (library defaults: spin 50 us, then futex), the
        // same with a consumer that never sleeps, and at-most-once.
        add_variant<AckringTransport>(v, "throughput", "ackring", "ackring at-least-once batch" + b + "+ack_batch",
                                      "spin 50us, futex", cap, mk(none));
        v.back().reference = true;
        add_variant<AckringTransport>(v, "throughput", "ackring", "ackring at-least-once batch" + b + "+ack_batch",
                                      "busy-poll", cap, mk([](Params& p) { p.spin = std::chrono::hours(1); }));
        add_variant<AckringTransport>(v, "throughput", "ackring", "ackring at-most-once batch" + b,
                                      "spin 50us, futex", cap,
                                      mk([](Params& p) { p.mode = ackring::DeliveryMode::at_most_once; }));
      }
      if (want("spsc")) add_variant<SpscTransport>(v, "throughput", "spsc", "bare SPSC ring (floor)", "busy-poll", cap, mk(none));
      if (want("uds")) add_variant<UdsTransport>(v, "throughput", "uds", "unix socket SEQPACKET", "blocking", "socket buffers", mk(none));
      if (want("pipe")) add_variant<PipeTransport>(v, "throughput", "pipe", "pipe (framed stream)", "blocking", "64 KiB pipe", mk(none));
      if (want("mq")) add_variant<MqTransport>(v, "throughput", "mq", "POSIX mq", "blocking", mqd, mk(none));
      if (want("boost")) add_variant<BoostMqTransport>(v, "throughput", "boost", "boost::interprocess mq", "blocking", cap, mk(none));
    }
    if (cfg.do_rtt) {
      const auto poll = [](Params& p) { p.poll = true; p.batch = 1; p.spin = std::chrono::hours(1); };
      const auto block = [](Params& p) { p.poll = false; p.batch = 1; p.spin = std::chrono::microseconds(0); };
      if (want("ackring")) add_variant<AckringTransport>(v, "rtt", "ackring", "ackring at-least-once receive+ack", "busy-poll", cap, mk(poll));
      if (want("spsc")) add_variant<SpscTransport>(v, "rtt", "spsc", "bare SPSC ring (floor)", "busy-poll", cap, mk(poll));
      if (want("uds")) add_variant<UdsTransport>(v, "rtt", "uds", "unix socket SEQPACKET", "busy-poll", "socket buffers", mk(poll));
      if (want("pipe")) add_variant<PipeTransport>(v, "rtt", "pipe", "pipe (framed stream)", "busy-poll", "64 KiB pipe", mk(poll));
      if (want("mq")) add_variant<MqTransport>(v, "rtt", "mq", "POSIX mq", "busy-poll", mqd, mk(poll));
      if (want("boost")) add_variant<BoostMqTransport>(v, "rtt", "boost", "boost::interprocess mq", "busy-poll", cap, mk(poll));
      if (want("ackring")) add_variant<AckringTransport>(v, "rtt", "ackring", "ackring at-least-once receive+ack", "blocking", cap, mk(block));
      if (want("uds")) add_variant<UdsTransport>(v, "rtt", "uds", "unix socket SEQPACKET", "blocking", "socket buffers", mk(block));
      if (want("pipe")) add_variant<PipeTransport>(v, "rtt", "pipe", "pipe (framed stream)", "blocking", "64 KiB pipe", mk(block));
      if (want("mq")) add_variant<MqTransport>(v, "rtt", "mq", "POSIX mq", "blocking", mqd, mk(block));
      if (want("boost")) add_variant<BoostMqTransport>(v, "rtt", "boost", "boost::interprocess mq", "blocking", cap, mk(block));
    }
  }
  return v;
}

// Core-to-core round trip of one cache line between the two placements
// (two pinned threads bouncing a counter): the hardware floor under every
// shared-memory figure. On a VM the host may move the vCPUs between cores
// that share a cache and cores that do not, between passes; this probe,
// taken before each pass, shows it.
double core_to_core_rtt_ns(const Config& cfg) {
  struct alignas(64) Line {
    std::atomic<std::uint64_t> v{0};
  };
  Line line;
  constexpr std::uint64_t kWarm = 5'000, kRounds = 20'000;
  std::vector<std::uint64_t> rtt(kRounds);
  std::thread echo([&] {
    pin_to(cfg.cpu_b);
    for (std::uint64_t i = 1; i < 2 * (kWarm + kRounds); i += 2) {
      while (line.v.load(std::memory_order_acquire) != i) cpu_relax();
      line.v.store(i + 1, std::memory_order_release);
    }
  });
  std::thread ping([&] {
    pin_to(cfg.cpu_a);
    for (std::uint64_t r = 0; r < kWarm + kRounds; ++r) {
      const std::uint64_t t0 = now_ns();
      line.v.store(2 * r + 1, std::memory_order_release);
      while (line.v.load(std::memory_order_acquire) != 2 * r + 2) cpu_relax();
      if (r >= kWarm) rtt[r - kWarm] = now_ns() - t0;
    }
  });
  ping.join();
  echo.join();
  return percentiles(rtt).p50;
}

// ------------------------------------------------------------------ results --
struct TpMedian {
  double msgs_per_s = 0, mb_per_s = 0, lo = 0, hi = 0;
};
TpMedian tp_median(const Variant& v) {
  std::vector<double> m, mb;
  for (const auto& r : v.tp_runs) m.push_back(r.msgs_per_s), mb.push_back(r.mb_per_s);
  if (m.empty()) return {};
  return {median(m), median(mb), *std::min_element(m.begin(), m.end()), *std::max_element(m.begin(), m.end())};
}

// Per-percentile median over the runs.
Percentiles rtt_median(const Variant& v) {
  Percentiles out;
  if (v.rtt_runs.empty()) return out;
  const auto med = [&](double Percentiles::*f) {
    std::vector<double> x;
    for (const auto& r : v.rtt_runs) x.push_back(r.p.*f);
    return median(x);
  };
  out.min = med(&Percentiles::min);
  out.p50 = med(&Percentiles::p50);
  out.p90 = med(&Percentiles::p90);
  out.p99 = med(&Percentiles::p99);
  out.p999 = med(&Percentiles::p999);
  out.max = med(&Percentiles::max);
  out.mean = med(&Percentiles::mean);
  return out;
}

// Median of what the runs measured, "1.00M" / "50.0k", with '*' when some
// run stopped at --max-run-seconds before the configured count.
std::string measured_text(const Variant& v, std::uint64_t configured) {
  std::vector<std::uint64_t> m;
  for (const auto& r : v.tp_runs) m.push_back(r.measured);
  for (const auto& r : v.rtt_runs) m.push_back(r.measured);
  if (m.empty()) return "-";
  const bool capped = *std::min_element(m.begin(), m.end()) < configured;
  const double x = static_cast<double>(median(m));
  char b[32];
  if (x >= 1e6) std::snprintf(b, sizeof b, "%.2fM%s", x / 1e6, capped ? "*" : "");
  else std::snprintf(b, sizeof b, "%.1fk%s", x / 1e3, capped ? "*" : "");
  return b;
}

double c2c_median(const Variant& v) {
  std::vector<double> x;
  for (const auto& r : v.tp_runs) x.push_back(r.c2c_ns);
  for (const auto& r : v.rtt_runs) x.push_back(r.c2c_ns);
  return median(x);
}

std::string placement(const Config& cfg, bool rtt) {
  const char* a = rtt ? "pinger" : "producer";
  const char* b = rtt ? "ponger" : "consumer";
  std::ostringstream s;
  if (cfg.cpu_a < 0) s << "unpinned (scheduler places " << a << " and " << b << ")";
  else s << a << " pinned to cpu" << cfg.cpu_a << ", " << b << " pinned to cpu" << cfg.cpu_b
         << (cfg.cpu_a == cfg.cpu_b ? " (same cpu)" : " (different cpus)");
  return s.str();
}

std::string observed(const Variant& v) {
  std::ostringstream s;
  std::map<std::pair<int, int>, int> seen;
  for (const auto& r : v.tp_runs) ++seen[{r.cpu_a, r.cpu_b}];
  for (const auto& r : v.rtt_runs) ++seen[{r.cpu_a, r.cpu_b}];
  bool first = true;
  for (const auto& [k, n] : seen) {
    const auto cpu = [](int c) { return c < 0 ? std::string("?") : std::to_string(c); };  // ?: killed after a capped run
    s << (first ? "" : ", ") << "A" << cpu(k.first) << " B" << cpu(k.second) << (n > 1 ? " x" + std::to_string(n) : "");
    first = false;
  }
  return s.str();
}

std::string fmt(const char* f, double x) {
  char b[64];
  std::snprintf(b, sizeof b, f, x);
  return b;
}

// Throughput: the headline ackring row (at-least-once, library defaults).
// RTT: the ackring row with the same kind of receiver (busy-poll/blocking).
const Variant* ackring_ref(const std::vector<Variant>& all, const Variant& v) {
  for (const auto& r : all)
    if (r.scenario == v.scenario && r.size == v.size && r.transport == "ackring" && r.error.empty() &&
        (v.scenario == "throughput" ? r.reference : r.receiver == v.receiver))
      return &r;
  return nullptr;
}

// ackring/peer: throughput ratio (>1: ackring moves more), or RTT p50 ratio (<1: ackring is quicker).
double ratio(const std::vector<Variant>& all, const Variant& v) {
  const Variant* a = ackring_ref(all, v);
  if (!a || !v.error.empty()) return 0;
  if (v.scenario == "throughput") {
    const double peer = tp_median(v).msgs_per_s;
    return peer > 0 ? tp_median(*a).msgs_per_s / peer : 0;
  }
  const double peer = rtt_median(v).p50;
  return peer > 0 ? rtt_median(*a).p50 / peer : 0;
}

void print_tables(const Config& cfg, const std::vector<Variant>& all) {
  const std::uint64_t warm = cfg.warmup ? cfg.warmup : cfg.count / 10;
  for (const std::uint32_t size : cfg.sizes) {
    bool header = false;
    for (const auto& v : all) {
      if (v.scenario != "throughput" || v.size != size) continue;
      if (!header) {
        std::printf("\n== throughput 1->1, %u B payloads, %llu msgs after %llu warm-up, median of %d ==\n", size,
                    static_cast<unsigned long long>(cfg.count), static_cast<unsigned long long>(warm), cfg.repeat);
        std::printf("   placement: %s\n", placement(cfg, false).c_str());
        std::printf("   %-40s %-17s %-15s %10s %9s %13s %16s %9s %7s %s\n", "transport", "consumer waits", "depth",
                    "msgs/s", "MB/s", "ackring/peer", "runs min..max", "measured", "c2c ns", "cpus seen");
        header = true;
      }
      if (!v.error.empty()) {
        std::printf("   %-40s FAILED: %s\n", v.label.c_str(), v.error.c_str());
        continue;
      }
      const TpMedian m = tp_median(v);
      const double r = ratio(all, v);
      std::printf("   %-40s %-17s %-15s %9.2fM %9.1f %12s %16s %9s %7s %s\n", v.label.c_str(), v.receiver.c_str(),
                  v.depth.c_str(), m.msgs_per_s / 1e6, m.mb_per_s, r > 0 ? fmt("%.2fx", r).c_str() : "-",
                  (fmt("%.2f", m.lo / 1e6) + ".." + fmt("%.2fM", m.hi / 1e6)).c_str(),
                  measured_text(v, cfg.count).c_str(), fmt("%.0f", c2c_median(v)).c_str(), observed(v).c_str());
    }
    for (const char* recv : {"busy-poll", "blocking"}) {
      header = false;
      for (const auto& v : all) {
        if (v.scenario != "rtt" || v.size != size || v.receiver != recv) continue;
        if (!header) {
          std::printf("\n== ping-pong RTT, %s receiver, %u B, %llu samples after %llu warm-up, median of %d (ns) ==\n",
                      recv, size, static_cast<unsigned long long>(cfg.rtt_samples),
                      static_cast<unsigned long long>(cfg.rtt_warmup), cfg.repeat);
          std::printf("   placement: %s\n", placement(cfg, true).c_str());
          std::printf("   %-40s %8s %8s %8s %8s %8s %9s %13s %9s %7s %s\n", "transport", "min", "p50", "p90", "p99",
                      "p99.9", "max", "ackring/peer", "samples", "c2c ns", "cpus seen");
          header = true;
        }
        if (!v.error.empty()) {
          std::printf("   %-40s FAILED: %s\n", v.label.c_str(), v.error.c_str());
          continue;
        }
        const Percentiles p = rtt_median(v);
        const double r = ratio(all, v);
        std::printf("   %-40s %8.0f %8.0f %8.0f %8.0f %8.0f %9.0f %12s %9s %7s %s\n", v.label.c_str(), p.min, p.p50, p.p90,
                    p.p99, p.p999, p.max, r > 0 ? fmt("%.2fx", r).c_str() : "-",
                    measured_text(v, cfg.rtt_samples).c_str(), fmt("%.0f", c2c_median(v)).c_str(), observed(v).c_str());
      }
    }
  }
  std::printf("\n   ackring/peer: throughput against the first ackring row, >1 means ackring moves more;\n"
              "   RTT p50 against the ackring row of the same receiver kind, <1 means ackring is quicker.\n");
  std::printf("   *: some run stopped at --max-run-seconds (%g s) and measured fewer (median shown).\n", cfg.max_run_s);
  std::printf("   Shared 2-core machine: figures are noisy; see loadavg in the JSON and the runs' min..max.\n");
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

json git_info() {
  json g;
  const std::string dir = ACKRING_BENCH_SOURCE_DIR;
  std::string commit;
  if (!dir.empty()) commit = run_cmd("git -C '" + dir + "' rev-parse HEAD 2>/dev/null");
  if (commit.size() == 40) {
    g["commit"] = commit;
    g["source"] = "git rev-parse HEAD at run time";
    // Dirty: the tree differs from the commit (other work in progress);
    // the hash of that diff tells such runs apart.
    const bool dirty = !run_cmd("git -C '" + dir + "' status --porcelain --untracked-files=no 2>/dev/null").empty();
    g["dirty"] = dirty;
    if (dirty) g["diff_sha1"] = run_cmd("git -C '" + dir + "' diff HEAD 2>/dev/null | sha1sum | cut -c1-40");
  } else {
    g["commit"] = ACKRING_BENCH_GIT_COMMIT;
    g["source"] = "configure time";
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
  j["schema"] = "ackring-bench/1";
  j["machine"] = std::move(machine);
  j["git"] = std::move(git);
  j["config"] = {{"count", cfg.count},
                 {"warmup", cfg.warmup ? cfg.warmup : cfg.count / 10},
                 {"rtt_samples", cfg.rtt_samples},
                 {"rtt_warmup", cfg.rtt_warmup},
                 {"repeat", cfg.repeat},
                 {"sizes", cfg.sizes},
                 {"capacity", cfg.capacity},
                 {"batch", cfg.batch},
                 {"mq_maxmsg", cfg.mq_maxmsg},
                 {"max_run_seconds", cfg.max_run_s},
                 {"cpus", cfg.cpu_a < 0 ? json(nullptr) : json::array({cfg.cpu_a, cfg.cpu_b})},
                 {"placement_throughput", placement(cfg, false)},
                 {"placement_rtt", placement(cfg, true)}};
  json res = json::array();
  for (const auto& v : all) {
    json r;
    r["scenario"] = v.scenario;
    r["transport"] = v.transport;
    r["label"] = v.label;
    r["receiver"] = v.receiver;
    r["depth"] = v.depth;
    r["size"] = v.size;
    r["placement"] = placement(cfg, v.scenario == "rtt");
    if (!v.error.empty()) r["error"] = v.error;
    json runs = json::array();
    if (v.scenario == "throughput") {
      for (const auto& t : v.tp_runs)
        runs.push_back({{"msgs_per_s", t.msgs_per_s}, {"mb_per_s", t.mb_per_s}, {"seconds", t.seconds},
                        {"measured", t.measured},
                        {"cpu_seen", {t.cpu_a, t.cpu_b}}, {"loadavg1", t.load1}, {"core_to_core_rtt_ns", t.c2c_ns}});
      const TpMedian m = tp_median(v);
      r["median"] = {{"msgs_per_s", m.msgs_per_s}, {"mb_per_s", m.mb_per_s}};
    } else {
      for (const auto& t : v.rtt_runs)
        runs.push_back({{"min_ns", t.p.min}, {"p50_ns", t.p.p50}, {"p90_ns", t.p.p90}, {"p99_ns", t.p.p99},
                        {"p999_ns", t.p.p999}, {"max_ns", t.p.max}, {"mean_ns", t.p.mean}, {"measured", t.measured},
                        {"cpu_seen", {t.cpu_a, t.cpu_b}}, {"loadavg1", t.load1}, {"core_to_core_rtt_ns", t.c2c_ns}});
      const Percentiles p = rtt_median(v);
      r["median"] = {{"min_ns", p.min}, {"p50_ns", p.p50}, {"p90_ns", p.p90}, {"p99_ns", p.p99},
                     {"p999_ns", p.p999}, {"max_ns", p.max}, {"mean_ns", p.mean}};
    }
    r["runs"] = std::move(runs);
    if (const double x = ratio(all, v); x > 0) r["ackring_over_peer"] = x;
    res.push_back(std::move(r));
  }
  j["results"] = std::move(res);
  return j;
}

// ---------------------------------------------------------------------- cli --
void usage() {
  std::puts(
      "usage: ackring-bench [options]\n"
      "  --count N         measured messages per throughput run (default 1000000)\n"
      "  --warmup N        warm-up messages before them (default count/10)\n"
      "  --rtt-samples N   measured round trips per ping-pong run (default 100000)\n"
      "  --rtt-warmup N    warm-up round trips (default 10000)\n"
      "  --size LIST       payload bytes, e.g. 16,64,1024,4096 (default 64; at least 8)\n"
      "  --repeat N        runs per scenario; the median is reported (default 3)\n"
      "  --cpus A,B        pin producer/pinger to A and consumer/ponger to B (default: unpinned)\n"
      "  --capacity N      slots of ackring, the SPSC ring and boost mq (default 4096)\n"
      "  --batch N         receive batch of the throughput consumers (default 32)\n"
      "  --mq-maxmsg N     POSIX mq depth (default /proc/sys/fs/mqueue/msg_max; more needs root)\n"
      "  --only LIST       transports: ackring,spsc,uds,pipe,mq,boost (default all)\n"
      "  --scenarios LIST  throughput,rtt (default both)\n"
      "  --json FILE       write every run, the medians and machine info as JSON\n"
      "  --max-run-seconds S  stop measuring a run after S s, keeping what it measured (default 5; 0: never)\n"
      "  --timeout S       abort a scenario run after S seconds (default 300)\n"
      "  --quick           tiny counts, one run: a smoke test\n");
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
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--count") c.count = std::stoull(val());
    else if (a == "--warmup") c.warmup = std::stoull(val());
    else if (a == "--rtt-samples") c.rtt_samples = std::stoull(val());
    else if (a == "--rtt-warmup") c.rtt_warmup = std::stoull(val());
    else if (a == "--repeat") c.repeat = std::stoi(val());
    else if (a == "--capacity") c.capacity = static_cast<std::uint32_t>(std::stoul(val()));
    else if (a == "--batch") c.batch = static_cast<std::uint32_t>(std::stoul(val()));
    else if (a == "--mq-maxmsg") c.mq_maxmsg = std::stol(val());
    else if (a == "--json") c.json_path = val();
    else if (a == "--timeout") c.timeout_s = std::stoi(val());
    else if (a == "--max-run-seconds") c.max_run_s = std::stod(val());
    else if (a == "--only") c.only = split(val());
    else if (a == "--size") {
      c.sizes.clear();
      for (const auto& s : split(val())) c.sizes.push_back(static_cast<std::uint32_t>(std::stoul(s)));
    } else if (a == "--cpus") {
      const auto v = split(val());
      if (v.size() != 2) throw std::invalid_argument("--cpus wants A,B");
      c.cpu_a = std::stoi(v[0]);
      c.cpu_b = std::stoi(v[1]);
    } else if (a == "--scenarios") {
      c.do_tp = c.do_rtt = false;
      for (const auto& s : split(val())) {
        if (s == "throughput" || s == "tp") c.do_tp = true;
        else if (s == "rtt" || s == "pingpong") c.do_rtt = true;
        else throw std::invalid_argument("unknown scenario " + s);
      }
    } else if (a == "--quick") {
      c.count = 20'000, c.warmup = 2'000, c.rtt_samples = 2'000, c.rtt_warmup = 200, c.repeat = 1, c.max_run_s = 2;
    } else if (a == "-h" || a == "--help") {
      usage();
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown option " + a + " (see --help)");
    }
  }
  for (auto s : c.sizes)
    if (s < 8) throw std::invalid_argument("--size: payloads carry an 8-byte index, so at least 8");
  if (c.count < 2 || c.rtt_samples < 1 || c.repeat < 1 || c.batch < 1) throw std::invalid_argument("bad counts");
  if (c.capacity < 2 || (c.capacity & (c.capacity - 1)) != 0) throw std::invalid_argument("--capacity: power of two");
  for (const auto& t : c.only)
    if (t != "ackring" && t != "spsc" && t != "uds" && t != "pipe" && t != "mq" && t != "boost")
      throw std::invalid_argument("--only: unknown transport " + t);
  if (c.mq_maxmsg == 0) c.mq_maxmsg = system_mq_msg_max();
  return c;
}

int main_impl(int argc, char** argv) {
  const Config cfg = parse(argc, argv);
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);

  json machine = machine_info();
  machine["loadavg_start"] = read_first_line("/proc/loadavg");
  machine["date"] = iso_now();
  const json git = git_info();
  std::printf("ackring-bench  commit %s%s  %s, %ld cpus, %s\n", git["commit"].get<std::string>().substr(0, 12).c_str(),
              git.value("dirty", false) ? " (dirty tree)" : "", machine.value("cpu_model", "?").c_str(),
              machine["nproc"].get<long>(), machine.value("kernel", "?").c_str());
  std::printf("loadavg at start: %s   syscall %.0f ns, clock_gettime %.0f ns\n",
              machine["loadavg_start"].get<std::string>().c_str(), machine["syscall_ns"].get<double>(),
              machine["clock_gettime_ns"].get<double>());

  std::fflush(stdout);
  const bool progress = ::isatty(2) != 0;
  const std::string tag = "ackring-bench." + std::to_string(::getpid());
  std::vector<Variant> all = build_variants(cfg, tag);
  const auto t0 = std::chrono::steady_clock::now();
  json passes = json::array();
  for (int rep = 0; rep < cfg.repeat; ++rep) {
    passes.push_back({{"core_to_core_rtt_ns", core_to_core_rtt_ns(cfg)}, {"loadavg1", load1()}});
    for (auto& v : all) {
      if (!v.error.empty()) continue;
      if (progress)
        std::fprintf(stderr, "\r[%d/%d] %-10s %-40s %-17s %5u B ", rep + 1, cfg.repeat, v.scenario.c_str(),
                     v.label.c_str(), v.receiver.c_str(), v.size);
      try {
        // Fresh resources (new names) per run: no run inherits another's state.
        Params p = v.params;
        p.tag += ".r" + std::to_string(rep);
        if (v.tp) v.tp_runs.push_back(v.tp(cfg, p));
        else v.rtt_runs.push_back(v.rtt(cfg, p));
      } catch (const std::exception& e) {
        v.error = e.what();
        std::fprintf(stderr, "\n%s %s: %s\n", v.scenario.c_str(), v.label.c_str(), e.what());
      }
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (progress) std::fprintf(stderr, "\r%100s\r", "");
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
  Cleanup::remove_all();
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
    std::fprintf(stderr, "ackring-bench: %s\n", e.what());
    return 2;
  }
}
