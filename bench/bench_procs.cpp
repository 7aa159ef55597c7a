// run_procs: fork, pin, release together, reap (bench_procs.hpp).
#include "bench_procs.hpp"

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace ackring_bench {
namespace {

// The children of the run in progress, for the signal handler.
std::atomic<pid_t> g_children[kMaxProcs]{0, 0, 0};

// SIGCHLD, blocked in the parent for its whole life so that run_procs can
// wait for it with sigtimedwait (a pending SIGCHLD is never lost).
const sigset_t& chld_set() {
  static const sigset_t set = [] {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &s, nullptr);
    return s;
  }();
  return set;
}

pid_t spawn(ProcSync* c, int role, const Proc& proc) {
  std::fflush(nullptr);
  (void)chld_set();  // blocked before the first fork: no SIGCHLD can slip by
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    ::sigprocmask(SIG_UNBLOCK, &chld_set(), nullptr);  // the child's library code sees a normal mask
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    int rc = 0;
    try {
      pin_to(proc.cpu);
      proc.body();
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

}  // namespace

void run_procs(const Config& cfg, ProcSync* c, const std::vector<Proc>& procs, int primary) {
  const int n = static_cast<int>(procs.size());
  std::vector<pid_t> pids(n);
  std::vector<int> status(n, 0);
  std::vector<bool> done(n, false);
  for (int i = n - 1; i >= 0; --i) pids[i] = spawn(c, i, procs[i]);  // consumers first: they wait longest
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(cfg.timeout_s);
  bool released = false;
  const auto kill_rest = [&] {
    for (int i = 0; i < n; ++i)
      if (!done[i]) ::kill(pids[i], SIGKILL), ::waitpid(pids[i], nullptr, 0), done[i] = true;
  };
  for (;;) {
    bool all = true, failed = false;
    for (int i = 0; i < n; ++i) {
      if (!done[i] && ::waitpid(pids[i], &status[i], WNOHANG) == pids[i]) done[i] = true;
      all = all && done[i];
      failed = failed || (done[i] && status[i] != 0);
    }
    if (all && !failed) break;
    if (!released && c->ready.load() == n) {
      c->go.store(1, std::memory_order_release);
      released = true;
    }
    if (primary >= 0 && done[primary] && status[primary] == 0 && c->capped.load() != 0) {
      kill_rest();
      break;
    }
    if (failed || std::chrono::steady_clock::now() > deadline) {
      kill_rest();
      for (auto& p : g_children) p = 0;
      std::string why = failed ? "child failed" : "timed out after " + std::to_string(cfg.timeout_s) + " s";
      for (int i = 0; i < n; ++i)
        if (c->error[i][0]) why += "; process " + std::to_string(i) + ": " + c->error[i];
      throw std::runtime_error(why);
    }
    if (!released) {
      ::usleep(100);  // set-up: release the children as soon as all are ready
    } else {
      // Measuring: sleep until a child ends (SIGCHLD, blocked so it queues)
      // or 500 ms pass (the timeout check). The parent is not pinned, so a
      // 2 ms polling loop here landed on the consumer's cpu ~500 times a
      // second and showed up as 0.2-1.5 ms one-way latency tails.
      const timespec wait{0, 500'000'000};
      ::sigtimedwait(&chld_set(), nullptr, &wait);
    }
  }
  for (auto& p : g_children) p = 0;
}

std::vector<int> cpus_seen(const ProcSync* c, int n) {
  std::vector<int> out;
  for (int i = 0; i < n; ++i) out.push_back(c->cpu_seen[i].load());
  return out;
}

void kill_children_from_signal_handler() noexcept {
  for (auto& c : g_children)
    if (const pid_t p = c.load(); p > 0) ::kill(p, SIGKILL);
}

}  // namespace ackring_bench
