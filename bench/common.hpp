// Shared helpers of the benchmark programs: clock, CPU pinning, percentiles,
// /proc readings, a shared control block for forked children, and the
// registry of files to remove on exit or on SIGINT.
#pragma once

#include <mqueue.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <fstream>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "shm/cpu_relax.hpp"  // src/: the library's spin-wait hint

namespace ackring_bench {

[[nodiscard]] inline std::uint64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

using ackring::detail::cpu_relax;

// Sleeps until CLOCK_MONOTONIC reaches t (now_ns() time), through signals.
inline void sleep_until_ns(std::uint64_t t) noexcept {
  const timespec ts{static_cast<time_t>(t / 1'000'000'000ull), static_cast<long>(t % 1'000'000'000ull)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

[[noreturn]] inline void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// Pins the calling process to `cpu` (-1: leave it to the scheduler).
inline void pin_to(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) throw_errno("sched_setaffinity(cpu " + std::to_string(cpu) + ")");
}

[[nodiscard]] inline std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The 1-minute load average, recorded beside every figure.
[[nodiscard]] inline double read_load1() {
  std::ifstream in("/proc/loadavg");
  double l = 0;
  in >> l;
  return l;
}

// A zeroed control block of type T in a shared anonymous mapping, made
// before a fork: the children write their reports into it, the parent reads
// them after reaping. A fresh one per run, so no report leaks into the next.
template <class T>
class Shared {
 public:
  Shared() {
    void* p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw_errno("mmap control block");
    block_ = new (p) T();
  }
  ~Shared() {
    block_->~T();
    ::munmap(block_, sizeof(T));
  }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;
  T* operator->() const noexcept { return block_; }
  T* get() const noexcept { return block_; }

 private:
  T* block_;
};

// Message payloads carry their index in the first 8 bytes so every receiver
// checks order and completeness (a benchmark that loses messages is no
// benchmark), and ping-pong payloads carry the send time in the next 8.
inline void stamp(std::byte* buf, std::uint64_t index) noexcept { std::memcpy(buf, &index, 8); }
[[nodiscard]] inline std::uint64_t index_of(const std::byte* buf) noexcept {
  std::uint64_t v;
  std::memcpy(&v, buf, 8);
  return v;
}

// Reads every byte of a payload, as an application consuming the message
// would. Without it the transports that hand out a view into shared memory
// (ackring, the bare ring) would move only the cache line holding the index,
// while the copying ones (pipe, sockets, mq) move every byte.
[[nodiscard]] inline std::uint64_t fold_payload(const std::byte* d, std::size_t n) noexcept {
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, d + i, 8);
    acc ^= w;
  }
  return acc;
}

// Percentiles of a set of samples (sorted in place). Nearest-rank.
struct Percentiles {
  double min = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};

[[nodiscard]] inline Percentiles percentiles(std::vector<std::uint64_t>& v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  const auto at = [&](double q) {
    auto i = static_cast<std::size_t>(q * static_cast<double>(v.size()));
    return static_cast<double>(v[std::min(i, v.size() - 1)]);
  };
  double sum = 0;
  for (auto x : v) sum += static_cast<double>(x);
  p.min = static_cast<double>(v.front());
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  p.p999 = at(0.999);
  p.max = static_cast<double>(v.back());
  p.mean = sum / static_cast<double>(v.size());
  return p;
}

template <class T>
[[nodiscard]] T median(std::vector<T> v) {
  if (v.empty()) return T{};
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];  // odd repeat counts (the default 3) give the true median
}

// Files, POSIX message queues and shm objects made by this run. Fixed-size
// storage so the SIGINT handler can walk it without allocating.
class Cleanup {
 public:
  enum class Kind : char { file = 'f', mqueue = 'q', shm = 's' };
  static constexpr std::size_t kMax = 64;

  // Single-threaded (the parent's main thread); the signal handler only reads.
  static void add(Kind kind, const std::string& name) {
    if (name.size() >= sizeof(Entry::name)) throw std::runtime_error("name too long: " + name);
    std::size_t i = 0;
    const std::size_t n = count_.load(std::memory_order_relaxed);
    while (i < n && entries_[i].live.load(std::memory_order_relaxed)) ++i;  // reuse a removed entry
    if (i == kMax) throw std::runtime_error("cleanup registry full: " + name);
    entries_[i].kind = kind;  // not live yet: the handler skips it while we write
    std::memcpy(entries_[i].name, name.c_str(), name.size() + 1);
    entries_[i].live.store(true, std::memory_order_release);
    if (i == n) count_.store(n + 1, std::memory_order_release);
  }
  // Removes one now (normal teardown); unknown names are removed anyway.
  static void remove(Kind kind, const std::string& name) noexcept {
    for (std::size_t i = 0; i < count_.load(std::memory_order_acquire); ++i)
      if (entries_[i].kind == kind && std::strcmp(entries_[i].name, name.c_str()) == 0)
        entries_[i].live.store(false, std::memory_order_release);
    unlink_one(kind, name.c_str());
  }
  // Async-signal-safe: unlink(2) / mq_unlink(3) only.
  static void remove_all() noexcept {
    for (std::size_t i = 0; i < count_.load(std::memory_order_acquire); ++i)
      if (entries_[i].live.exchange(false, std::memory_order_acq_rel)) unlink_one(entries_[i].kind, entries_[i].name);
  }

 private:
  struct Entry {
    Kind kind;
    std::atomic<bool> live;
    char name[240];
  };
  static void unlink_one(Kind kind, const char* name) noexcept {
    if (kind == Kind::mqueue) ::mq_unlink(name);
    else if (kind == Kind::shm) ::shm_unlink(name);
    else ::unlink(name);
  }
  static inline Entry entries_[kMax];
  static inline std::atomic<std::size_t> count_{0};
};

}  // namespace ackring_bench
