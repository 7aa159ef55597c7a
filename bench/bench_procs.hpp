// The forked processes of ackring-bench: the part of the shared control
// block every run needs (start barrier, errors, where each process ran), and
// run_procs, which forks the processes, releases them together and reaps them.
#pragma once

#include <atomic>
#include <functional>
#include <vector>

#include "bench_types.hpp"

namespace ackring_bench {

inline constexpr int kMaxProcs = 3;  // 2 producers + 1 consumer, or 1 + 2

// The head of every control block the parent maps (shared, anonymous)
// before a fork; a scenario's block derives from it and adds its reports.
struct ProcSync {
  std::atomic<int> ready{0};
  std::atomic<int> go{0};
  std::atomic<int> cpu_seen[kMaxProcs]{-1, -1, -1};
  std::atomic<int> capped{0};  // a producer (or the pinger) stopped at --max-run-seconds
  char error[kMaxProcs][512]{};
};

// Every child waits here until the parent sees all ready; set-up (open, map,
// join, pin) is thus outside every timed region.
inline void barrier(ProcSync* c) {
  c->ready.fetch_add(1, std::memory_order_acq_rel);
  // acquire: pairs with run_procs' release of go.
  while (c->go.load(std::memory_order_acquire) == 0) ::usleep(50);
}

struct Proc {
  int cpu = -1;  // pinned before body runs; -1: unpinned
  std::function<void()> body;
};

// Starts the processes, releases them together, waits for them; throws with
// the children's errors. If process `primary` (>= 0) ends after stopping at
// --max-run-seconds, the others may be blocked (a ponger waiting for a ping)
// and are killed once it has reported.
void run_procs(const Config& cfg, ProcSync* c, const std::vector<Proc>& procs, int primary = -1);

// sched_getcpu() of the first n processes at their end.
[[nodiscard]] std::vector<int> cpus_seen(const ProcSync* c, int n);

}  // namespace ackring_bench
