// durable_bench: sync-durable publish through ackring, next to the raw limit
// of the same disk measured in the same run (issue #4).
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
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <liburing.h>

#include <ackring/ackring.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "journal_format.hpp"  // the record framing, so the raw limit writes the journal's bytes
#include "latency_histogram.hpp"

#ifndef ACKRING_BENCH_GIT_COMMIT
#define ACKRING_BENCH_GIT_COMMIT "unknown"
#endif
#ifndef ACKRING_BENCH_BUILD_TYPE
#define ACKRING_BENCH_BUILD_TYPE "unknown"
#endif

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ackring::Bytes;

[[nodiscard]] std::uint64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

void sleep_until_ns(std::uint64_t t) noexcept {
  const timespec ts{static_cast<time_t>(t / 1'000'000'000ull), static_cast<long>(t % 1'000'000'000ull)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

double load1() {
  double l = 0;
  std::istringstream(read_first_line("/proc/loadavg")) >> l;
  return l;
}

template <class T>
T median(std::vector<T> v) {
  if (v.empty()) return T{};
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];  // odd round counts (the default 3) give the true median
}

// Latencies: the HDR-style histogram ackring-bench uses (fixed size, so
// each producer records every call without allocating and the parent merges
// them from the shared control block).
using ackring_bench::LatencyHistogram;

double percentile_us(const LatencyHistogram& h, double q) { return static_cast<double>(h.value_at(q)) / 1000.0; }

// ---- configuration ------------------------------------------------------------
enum class Variant { sync, raw_pwrite, raw_uring, raw_full, async, none };
constexpr Variant kVariants[] = {Variant::sync,     Variant::raw_pwrite, Variant::raw_uring,
                                 Variant::raw_full, Variant::async,      Variant::none};
constexpr std::size_t kVariantCount = std::size(kVariants);

const char* name_of(Variant v) {
  switch (v) {
    case Variant::sync: return "sync";
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

constexpr std::uint32_t kMaxProducers = 64;
constexpr std::size_t kReceiveBatch = 64;
const char* const kGroup = "drain";

// The journal's segment size for a queue (durability.cpp, segment_size_for:
// about two rings of records, 1 .. 64 MiB), so that the raw writer rolls to a
// new file as often as the journal does.
std::uint64_t journal_segment_size(const Config& c, std::uint32_t max_message_size) {
  const std::uint64_t ring = std::uint64_t{c.capacity} * (std::uint64_t{max_message_size} + 64);
  return std::clamp<std::uint64_t>((2 * ring + 4095) / 4096 * 4096, 1ull << 20, 64ull << 20);
}

// ---- shared control block of one ackring run -----------------------------------
struct ProducerReport {
  std::uint64_t measured_messages = 0;  // whose call returned inside the window
  std::uint64_t published = 0;          // all, warm-up included (the consumer must see them all)
  int cpu = -1;
  LatencyHistogram latency;  // calls that started and returned inside the window
};

struct Control {
  std::atomic<int> ready{0};
  std::atomic<int> go{0};
  std::atomic<int> producers_done{0};
  std::atomic<int> finish{0};
  std::uint64_t window_start = 0, window_end = 0;  // CLOCK_MONOTONIC; written before go
  std::uint64_t expected = 0;                      // written before producers_done
  // The journal holder's readings of QueueStats at the window's edges.
  std::uint64_t durable_at_start = 0, durable_at_end = 0;
  std::uint64_t flushes_at_start = 0, flushes_at_end = 0;
  std::uint64_t consumed = 0;
  int consumer_cpu = -1, holder_cpu = -1;
  char error[512]{};
  ProducerReport producers[kMaxProducers];
};

class SharedControl {
 public:
  SharedControl() {
    // A fresh zeroed mapping per run: no report leaks from one run into the next.
    void* p = ::mmap(nullptr, sizeof(Control), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw_errno("mmap control block");
    ctrl_ = new (p) Control();
  }
  ~SharedControl() { ::munmap(ctrl_, sizeof(Control)); }
  SharedControl(const SharedControl&) = delete;
  SharedControl& operator=(const SharedControl&) = delete;
  Control* operator->() const noexcept { return ctrl_; }
  Control* get() const noexcept { return ctrl_; }

 private:
  Control* ctrl_;
};

// Children of the current run, for the SIGINT handler.
std::atomic<pid_t> g_children[kMaxProducers + 2];
char g_queue_path[256];

void on_signal(int sig) {
  for (auto& c : g_children)
    if (const pid_t p = c.load(); p > 0) ::kill(p, SIGKILL);
  if (g_queue_path[0] != '\0') ::unlink(g_queue_path);
  const char msg[] = "\nackring-durable-bench: interrupted (journal files stay under --dir/run-<pid>)\n";
  [[maybe_unused]] auto r = ::write(2, msg, sizeof msg - 1);
  ::_exit(128 + sig);
}

void wait_for_go(Control* c) {
  c->ready.fetch_add(1, std::memory_order_acq_rel);
  // acquire: pairs with the parent's release of go; window_start/end are set.
  while (c->go.load(std::memory_order_acquire) == 0) ::usleep(100);
}

void pin_to(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) throw_errno("sched_setaffinity(cpu " + std::to_string(cpu) + ")");
}

template <class F>
pid_t spawn(Control* c, int slot, int cpu, F&& body) {
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
    } catch (const std::exception& e) {
      std::snprintf(c->error, sizeof c->error, "%s", e.what());
      rc = 2;
    }
    std::fflush(nullptr);
    ::_exit(rc);  // the parent owns the queue file and the journal directory
  }
  g_children[slot].store(pid);
  return pid;
}

// ---- the processes of an ackring run -----------------------------------------------

// Holds the journal lock, so the writer thread lives in its own process (as
// with `ackring journald`) rather than in whichever producer opened first,
// and reads the journal counters at the edges of the window.
void journal_holder(Control* c, const std::string& queue) {
  auto q = ackring::Queue::open(queue);
  const std::uint64_t give_up = now_ns() + 5'000'000'000ull;
  while (q.stats().journal_pid != static_cast<std::uint32_t>(::getpid())) {
    if (now_ns() > give_up) throw std::runtime_error("the journal holder did not get the journal lock within 5 s");
    ::usleep(2000);
  }
  wait_for_go(c);
  sleep_until_ns(c->window_start);
  auto s = q.stats();
  c->durable_at_start = s.durable_seq;
  c->flushes_at_start = s.journal_flushes;
  sleep_until_ns(c->window_end);
  s = q.stats();
  c->durable_at_end = s.durable_seq;
  c->flushes_at_end = s.journal_flushes;
  c->holder_cpu = sched_getcpu();
  // acquire: pairs with the parent's release; the consumer has drained.
  while (c->finish.load(std::memory_order_acquire) == 0) ::usleep(1000);
  // ~Queue: the writer journals what is left, flushes and hands the lock back.
}

void consumer(Control* c, const std::string& queue) {
  auto q = ackring::Queue::open(queue);
  auto member = q.consumer(kGroup);
  std::vector<ackring::Delivery> batch(kReceiveBatch);
  wait_for_go(c);
  const std::uint64_t give_up = c->window_end + 30'000'000'000ull;
  std::uint64_t received = 0;
  for (;;) {
    const std::size_t n = member.receive_batch(batch, std::chrono::milliseconds(20));
    if (n != 0) {
      const std::size_t acked = member.ack_batch(std::span(batch.data(), n));
      if (acked != n) throw std::runtime_error("ack_batch acked " + std::to_string(acked) + " of " + std::to_string(n));
      received += n;
    }
    // acquire: pairs with the parent's release of producers_done; `expected` is set.
    if (c->producers_done.load(std::memory_order_acquire) != 0 && received >= c->expected) break;
    if (now_ns() > give_up)
      throw std::runtime_error("consumer: " + std::to_string(received) + " of " + std::to_string(c->expected) +
                               " messages after 30 s past the window");
  }
  c->consumed = received;
  c->consumer_cpu = sched_getcpu();
}

void producer(Control* c, int index, const std::string& queue, std::uint32_t size, std::uint32_t k) {
  auto q = ackring::Queue::open(queue);
  auto p = q.producer();
  std::vector<std::byte> bytes(std::size_t{size} * k, std::byte{0x5a});
  std::vector<Bytes> payloads;
  for (std::uint32_t i = 0; i < k; ++i) payloads.emplace_back(bytes.data() + std::size_t{i} * size, size);
  ProducerReport& report = c->producers[index];
  wait_for_go(c);
  const std::uint64_t start = c->window_start, end = c->window_end;
  for (;;) {
    const std::uint64_t t0 = now_ns();
    const ackring::PublishResult r = k == 1 ? p.publish(payloads[0]) : p.publish_batch(payloads);
    const std::uint64_t t1 = now_ns();
    if (!r.ok()) throw std::runtime_error("publish: " + std::string(ackring::to_string(r.status)));
    report.published += k;
    if (t1 >= start && t1 < end) report.measured_messages += k;
    if (t0 >= start && t1 < end) report.latency.record(t1 - t0);
    if (t1 >= end) break;
  }
  report.cpu = sched_getcpu();
}

// ---- one measurement --------------------------------------------------------------
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

void Bench::kill_children(std::vector<pid_t>& pids) {
  for (pid_t& p : pids)
    if (p > 0) ::kill(p, SIGKILL), ::waitpid(p, nullptr, 0), p = 0;
  for (auto& c : g_children) c.store(0);
}

// Waits for pids[first .. first + count); throws with the children's error
// if one fails or the deadline passes (after killing every child).
void Bench::wait_children(Control* c, std::vector<pid_t>& pids, std::size_t first, std::size_t count,
                          std::uint64_t deadline) {
  std::size_t left = count;
  while (left != 0) {
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (pids[i] <= 0) continue;
      int status = 0;
      if (::waitpid(pids[i], &status, WNOHANG) != pids[i]) continue;
      pids[i] = 0;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        kill_children(pids);
        throw std::runtime_error(std::string("a child process failed: ") +
                                 (c->error[0] != '\0' ? c->error : "killed by a signal"));
      }
      if (i >= first && i < first + count) --left;
    }
    if (left != 0 && now_ns() > deadline) {
      kill_children(pids);
      throw std::runtime_error("run timed out after " + std::to_string(cfg_.run_timeout_s) + " s");
    }
    if (left != 0) ::usleep(2000);
  }
}

RunResult Bench::run_ackring(Variant v, const Case& cs) {
  RunResult out;
  out.variant = v;
  out.load = load1();
  const std::string queue = "durbench." + std::to_string(::getpid()) + "." + std::to_string(runs_++);
  ackring::QueueOptions o;
  o.capacity = cfg_.capacity;
  o.max_message_size = max_size_;
  o.dedup = false;  // not exercised: unkeyed publishes
  o.durability = v == Variant::sync ? ackring::Durability::sync
               : v == Variant::async ? ackring::Durability::async : ackring::Durability::none;
  o.journal_dir = work_.string();
  o.async_flush_interval = std::chrono::milliseconds(cfg_.async_interval_ms);
  const fs::path queue_path = ackring::Queue::resolve(queue);
  std::snprintf(g_queue_path, sizeof g_queue_path, "%s", queue_path.c_str());
  {
    // Created and closed before any fork: a parent with a journal thread would
    // hand its lock's file description to every child.
    auto q = ackring::Queue::create(queue, o);
    q.create_group(kGroup);
  }
  const bool journaled = v != Variant::none;
  SharedControl ctrl;
  Control* c = ctrl.get();
  std::vector<pid_t> pids;  // [holder], consumer, producers
  const std::uint64_t deadline = now_ns() + std::uint64_t(cfg_.run_timeout_s) * 1'000'000'000ull;
  try {
    if (journaled) {
      // First, and alone, so that its journal thread is the one that takes the lock.
      pids.push_back(spawn(c, 0, cfg_.cpu_consumer, [&] { journal_holder(c, queue); }));
      while (c->ready.load(std::memory_order_acquire) < 1) {
        if (now_ns() > deadline) throw std::runtime_error("journal holder not ready");
        int st = 0;
        if (::waitpid(pids[0], &st, WNOHANG) == pids[0]) {
          pids[0] = 0;
          throw std::runtime_error(std::string("journal holder failed: ") + c->error);
        }
        ::usleep(1000);
      }
    }
    const std::size_t first_producer = pids.size() + 1;
    pids.push_back(spawn(c, 1, cfg_.cpu_consumer, [&] { consumer(c, queue); }));
    for (std::uint32_t i = 0; i < cs.producers; ++i)
      pids.push_back(spawn(c, static_cast<int>(2 + i), cfg_.cpu_producers,
                           [&, i] { producer(c, static_cast<int>(i), queue, cs.size, cs.batch); }));
    while (c->ready.load(std::memory_order_acquire) < static_cast<int>(pids.size())) {
      if (now_ns() > deadline) throw std::runtime_error("children not ready");
      ::usleep(1000);
    }
    c->window_start = now_ns() + static_cast<std::uint64_t>(cfg_.warmup * 1e9);
    c->window_end = c->window_start + static_cast<std::uint64_t>(cfg_.seconds * 1e9);
    // release: pairs with the children's acquire of go (wait_for_go).
    c->go.store(1, std::memory_order_release);
    wait_children(c, pids, first_producer, cs.producers, deadline);
    for (std::uint32_t i = 0; i < cs.producers; ++i) c->expected += c->producers[i].published;
    // release: pairs with the consumer's acquire; it may stop once it has `expected`.
    c->producers_done.store(1, std::memory_order_release);
    wait_children(c, pids, first_producer - 1, 1, deadline);
    c->finish.store(1, std::memory_order_release);
    if (journaled) wait_children(c, pids, 0, 1, deadline);
  } catch (...) {
    kill_children(pids);
    (void)ackring::Queue::destroy(queue);
    g_queue_path[0] = '\0';
    throw;
  }
  for (auto& p : g_children) p.store(0);
  (void)ackring::Queue::destroy(queue);
  g_queue_path[0] = '\0';
  std::error_code ec;
  fs::remove_all(work_ / queue_path.filename(), ec);

  if (c->consumed < c->expected)
    throw std::runtime_error("consumer received " + std::to_string(c->consumed) + " of " + std::to_string(c->expected));
  LatencyHistogram& all = c->producers[0].latency;
  std::ostringstream cpus;
  cpus << "c" << c->consumer_cpu;
  if (journaled) cpus << " j" << c->holder_cpu;
  cpus << " p";
  for (std::uint32_t i = 0; i < cs.producers; ++i) {
    out.messages += c->producers[i].measured_messages;
    if (i != 0) all.merge(c->producers[i].latency);
    cpus << (i != 0 ? "," : "") << c->producers[i].cpu;
  }
  out.cpus = cpus.str();
  const double window_s = cfg_.seconds;
  out.msgs_per_s = static_cast<double>(out.messages) / window_s;
  out.mb_per_s = out.msgs_per_s * cs.size / 1e6;
  out.p50_us = percentile_us(all, 0.50);
  out.p99_us = percentile_us(all, 0.99);
  out.p999_us = percentile_us(all, 0.999);
  out.max_us = percentile_us(all, 1.0);
  if (journaled) {
    out.flushes = c->flushes_at_end - c->flushes_at_start;
    const std::uint64_t records = c->durable_at_end - c->durable_at_start;
    out.records_per_flush = out.flushes != 0 ? static_cast<double>(records) / static_cast<double>(out.flushes) : 0;
  }
  return out;
}

// The disk's side of one raw batch: pwrite + fdatasync, or the journal's
// io_uring path (a write from a registered buffer linked to an
// fsync(DATASYNC), one submission, both completions reaped).
class RawSink {
 public:
  RawSink(bool uring, std::vector<std::byte>& buf) : uring_(uring) {
    if (!uring_) return;
    if (const int rc = io_uring_queue_init(8, &ring_, 0); rc < 0) {
      errno = -rc;
      throw_errno("io_uring_queue_init");
    }
    const iovec iov{buf.data(), buf.size()};
    registered_ = io_uring_register_buffers(&ring_, &iov, 1) == 0;  // as the journal: fixed if allowed
  }
  ~RawSink() {
    if (uring_) io_uring_queue_exit(&ring_);
  }
  RawSink(const RawSink&) = delete;
  RawSink& operator=(const RawSink&) = delete;

  void write_and_sync(int fd, const std::byte* data, std::size_t n, std::uint64_t off) {
    if (!uring_) {
      for (std::size_t done = 0; done < n;) {
        const ssize_t w = ::pwrite(fd, data + done, n - done, static_cast<off_t>(off + done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) throw_errno("pwrite");
        done += static_cast<std::size_t>(w);
      }
      if (::fdatasync(fd) != 0) throw_errno("fdatasync");
      return;
    }
    io_uring_sqe* w = io_uring_get_sqe(&ring_);
    if (registered_)
      io_uring_prep_write_fixed(w, fd, data, static_cast<unsigned>(n), off, 0);
    else
      io_uring_prep_write(w, fd, data, static_cast<unsigned>(n), off);
    w->flags |= IOSQE_IO_LINK;  // the fsync runs only after the whole write
    io_uring_sqe* f = io_uring_get_sqe(&ring_);
    io_uring_prep_fsync(f, fd, IORING_FSYNC_DATASYNC);
    if (const int rc = io_uring_submit(&ring_); rc != 2) {
      errno = rc < 0 ? -rc : EIO;
      throw_errno("io_uring_submit");
    }
    for (int i = 0; i < 2; ++i) {
      io_uring_cqe* cqe = nullptr;
      int rc;
      while ((rc = io_uring_wait_cqe(&ring_, &cqe)) == -EINTR) {
      }
      if (rc < 0) errno = -rc, throw_errno("io_uring_wait_cqe");
      const int res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      // A short write would cancel the fsync: a limit that silently synced less would be no limit.
      if (res < 0) errno = -res, throw_errno("io_uring write / fsync");
    }
  }
  [[nodiscard]] bool registered() const noexcept { return registered_; }

 private:
  bool uring_;
  bool registered_ = false;
  io_uring ring_{};
};

// The limit: one writer appending the journal's bytes for `batch` records
// (on average: batches of floor/ceil alternate to hit a fractional average)
// with one write + fdatasync each, into pre-allocated files of the
// journal's segment size. The rate is records over the time spent inside
// write + sync, so nothing between batches counts against it.
RunResult Bench::run_raw(Variant v, const Case& cs, double batch) {
  RunResult out;
  out.variant = v;
  out.load = load1();
  out.batch = batch = std::max(1.0, batch);
  const fs::path dir = work_ / ("raw-" + std::to_string(runs_++));
  fs::create_directories(dir);
  const std::uint64_t segment = journal_segment_size(cfg_, max_size_);
  const std::size_t max_batch = static_cast<std::size_t>(std::ceil(batch));
  namespace jf = ackring::detail;
  const std::size_t record = jf::journal_record_size(sizeof(jf::JournalMessageHeader) + cs.size);
  // Real framed message records, checksums included: the same bytes the journal writes.
  std::vector<std::byte> buf(record * max_batch, std::byte{0});
  for (std::size_t i = 0; i < max_batch; ++i) {
    std::byte* r = buf.data() + i * record;
    jf::JournalRecordHeader h{};
    h.length = static_cast<std::uint32_t>(sizeof(jf::JournalMessageHeader) + cs.size);
    h.type = static_cast<std::uint16_t>(jf::JournalRecordType::message);
    h.flags = i == 0 ? jf::kJournalFlagBatchStart : 0;
    h.seq = i;
    std::memcpy(r, &h, sizeof h);
    std::memset(r + sizeof h + sizeof(jf::JournalMessageHeader), 0x5a, cs.size);
    h.checksum = jf::journal_record_checksum(r, h.length);
    std::memcpy(r, &h, sizeof h.checksum);
  }
  RawSink sink(v != Variant::raw_pwrite, buf);
  int fd = -1;
  int file_no = 0;
  std::uint64_t off = segment;  // forces the first file
  // Outside the timing: the journal prepares its next segment on a helper thread.
  auto next_file = [&] {
    if (fd >= 0) ::close(fd), fs::remove(dir / ("seg" + std::to_string(file_no - 1)));
    const fs::path p = dir / ("seg" + std::to_string(file_no++));
    fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw_errno("open " + p.string());
    if (::fallocate(fd, 0, 0, static_cast<off_t>(segment)) != 0) throw_errno("fallocate " + p.string());
    if (::fsync(fd) != 0) throw_errno("fsync " + p.string());
    off = jf::kJournalSegmentHeaderSize;
  };
  auto hist = std::make_unique<LatencyHistogram>();  // 15 KiB, zeroed: not on the stack
  const std::uint64_t warm_until = now_ns() + static_cast<std::uint64_t>(cfg_.warmup * 1e9);
  const std::uint64_t end = warm_until + static_cast<std::uint64_t>(cfg_.seconds * 1e9);
  std::uint64_t busy_ns = 0, records = 0, batches = 0;
  for (std::uint64_t i = 0;; ++i) {
    const auto n = static_cast<std::size_t>(std::floor(static_cast<double>(i + 1) * batch) -
                                            std::floor(static_cast<double>(i) * batch));
    const std::size_t bytes = n * record;
    if (off + bytes > segment) next_file();
    const std::uint64_t t0 = now_ns();
    sink.write_and_sync(fd, buf.data(), bytes, off);
    const std::uint64_t t1 = now_ns();
    off += bytes;
    if (t0 >= warm_until) {
      busy_ns += t1 - t0;
      records += n;
      ++batches;
      hist->record(t1 - t0);
    }
    if (t1 >= end) break;
  }
  if (fd >= 0) ::close(fd);
  std::error_code ec;
  fs::remove_all(dir, ec);
  out.messages = records;
  out.flushes = batches;
  out.records_per_flush = batches != 0 ? static_cast<double>(records) / static_cast<double>(batches) : 0;
  out.msgs_per_s = busy_ns != 0 ? static_cast<double>(records) * 1e9 / static_cast<double>(busy_ns) : 0;
  out.mb_per_s = out.msgs_per_s * cs.size / 1e6;
  out.p50_us = percentile_us(*hist, 0.50);
  out.p99_us = percentile_us(*hist, 0.99);
  out.p999_us = percentile_us(*hist, 0.999);
  out.max_us = percentile_us(*hist, 1.0);
  out.cpus = "parent " + std::to_string(sched_getcpu());
  return out;
}

// ---- machine ------------------------------------------------------------------------
struct FsInfo {
  std::string type, device;
  bool memory = false;  // tmpfs / ramfs: fdatasync is free, no disk is measured
};

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

// ---- results ---------------------------------------------------------------------------
json run_json(const RunResult& r) {
  return {{"msgs_per_s", r.msgs_per_s},  {"mb_per_s", r.mb_per_s},   {"p50_us", r.p50_us},
          {"p99_us", r.p99_us},          {"p999_us", r.p999_us},     {"max_us", r.max_us},
          {"records_per_flush", r.records_per_flush}, {"flushes", r.flushes}, {"messages", r.messages},
          {"loadavg1", r.load},          {"cpus", r.cpus}};
}

struct CaseResult {
  Case cs;
  std::vector<RunResult> runs[kVariantCount];  // by Variant
  // sync / raw, per round (paired, so that a slow minute of the disk cancels out)
  std::vector<double> over_pwrite, over_uring, over_limit, over_full;
};

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

void print_header() {
  std::printf("%5s %4s %5s %6s  %-15s %10s %8s %9s %9s %9s %7s %6s %5s\n", "size", "prod", "batch", "flight", "variant",
              "msgs/s", "MB/s", "p50 us", "p99 us", "rec/sync", "% limit", "% full", "load");
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

void print_case(const CaseResult& r, std::uint32_t async_ms) {
  const auto& runs = r.runs;
  const auto at = [](Variant v) { return static_cast<std::size_t>(v); };
  char b[32];
  print_row(r.cs, "sync", runs[at(Variant::sync)], pct_text(r.over_limit), pct_text(r.over_full));
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

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  try {
    cfg = parse_args(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ackring-durable-bench: %s\n", e.what());
    return 2;
  }
  ::signal(SIGINT, on_signal);
  ::signal(SIGTERM, on_signal);
  ::signal(SIGHUP, on_signal);
  try {
    Bench bench(cfg);
    const FsInfo fsi = fs_info(cfg.dir);
    json machine = machine_info(cfg, fsi);
    machine["loadavg_start"] = read_first_line("/proc/loadavg");
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

    std::vector<CaseResult> results;
    const std::uint64_t started = now_ns();
    for (const auto size : cfg.sizes)
      for (const auto producers : cfg.producers)
        for (const auto batch : cfg.batches) {
          CaseResult r;
          r.cs = {size, producers, batch};
          // Units of a round, rotated each round. The raw runs at the
          // achieved batch follow sync because they take the batch sync
          // achieved in the same round.
          auto& runs = r.runs;
          const auto at = [](Variant v) { return static_cast<std::size_t>(v); };
          std::vector<std::function<void()>> units;
          if (cfg.sync) {
            units.push_back([&] {
              const RunResult s = bench.run_ackring(Variant::sync, r.cs);
              const RunResult p = bench.run_raw(Variant::raw_pwrite, r.cs, s.records_per_flush);
              const RunResult u = bench.run_raw(Variant::raw_uring, r.cs, s.records_per_flush);
              if (p.msgs_per_s > 0) r.over_pwrite.push_back(s.msgs_per_s / p.msgs_per_s);
              if (u.msgs_per_s > 0) r.over_uring.push_back(s.msgs_per_s / u.msgs_per_s);
              if (const double lim = std::max(p.msgs_per_s, u.msgs_per_s); lim > 0)
                r.over_limit.push_back(s.msgs_per_s / lim);
              runs[at(Variant::sync)].push_back(s);
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
          for (std::size_t i = 0; i < S.size() && i < F.size(); ++i)
            if (F[i].msgs_per_s > 0) r.over_full.push_back(S[i].msgs_per_s / F[i].msgs_per_s);
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
        cases.push_back(std::move(c));
      }
      j["cases"] = std::move(cases);
      std::ofstream out(cfg.json_path);
      out << j.dump(2) << "\n";
      if (!out) throw std::runtime_error("cannot write " + cfg.json_path);
      std::printf("results written to %s\n", cfg.json_path.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ackring-durable-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
