// ackring-durable-bench: one ackring run. P producer processes publish for
// a fixed window, one consumer drains, and (async, sync) one journal holder
// owns the journal writer and reads its counters at the window's edges.
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ackring/ackring.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "durable_bench.hpp"

namespace ackring_bench::durable {

struct ProducerReport {
  std::uint64_t measured_messages = 0;  // whose call returned inside the window
  std::uint64_t published = 0;          // all, warm-up included (the consumer must see them all)
  int cpu = -1;
  LatencyHistogram latency;  // calls that started and returned inside the window
};

// What the parent and the children of one run share (a fresh zeroed
// mapping per run: no report leaks from one run into the next).
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

namespace {

using ackring::Bytes;

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

// Returns once this process holds the journal lock (its journal thread took it).
void wait_for_journal_lock(const ackring::Queue& q, const char* who) {
  const std::uint64_t give_up = now_ns() + 5'000'000'000ull;
  while (q.stats().journal_pid != static_cast<std::uint32_t>(::getpid())) {
    if (now_ns() > give_up) throw std::runtime_error(std::string(who) + " did not get the journal lock within 5 s");
    ::usleep(2000);
  }
}

// Reads the journal counters at the edges of the window. Variant sync: it
// also holds the journal lock, so the writer thread lives in its own process
// (as with `ackring journald`) rather than in whichever producer opened
// first. sync_local: it runs no journal thread; the first producer holds it.
void journal_holder(Control* c, const std::string& queue, bool hold) {
  if (!hold) ackring::set_journal_writer_enabled(false);
  auto q = ackring::Queue::open(queue);
  if (hold) wait_for_journal_lock(q, "the journal holder");
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

void consumer(Control* c, const std::string& queue, bool journal) {
  if (!journal) ackring::set_journal_writer_enabled(false);
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

void producer(Control* c, int index, const std::string& queue, std::uint32_t size, std::uint32_t k, bool hold_journal) {
  auto q = ackring::Queue::open(queue);
  if (hold_journal) wait_for_journal_lock(q, "the first producer");
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

}  // namespace

void install_signal_handlers() {
  ::signal(SIGINT, on_signal);
  ::signal(SIGTERM, on_signal);
  ::signal(SIGHUP, on_signal);
}

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
  out.load = read_load1();
  const std::string queue = "durbench." + std::to_string(::getpid()) + "." + std::to_string(runs_++);
  ackring::QueueOptions o;
  o.capacity = cfg_.capacity;
  o.max_message_size = max_size_;
  o.dedup = false;  // not exercised: unkeyed publishes
  const bool local = v == Variant::sync_local;
  o.durability = v == Variant::sync || local ? ackring::Durability::sync
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
  Shared<Control> ctrl;
  Control* c = ctrl.get();
  std::vector<pid_t> pids;  // [holder], consumer, producers
  const std::uint64_t deadline = now_ns() + std::uint64_t(cfg_.run_timeout_s) * 1'000'000'000ull;
  try {
    if (journaled) {
      // First, and alone, so that its journal thread is the one that takes the lock.
      pids.push_back(spawn(c, 0, cfg_.cpu_consumer, [&] { journal_holder(c, queue, !local); }));
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
    pids.push_back(spawn(c, 1, cfg_.cpu_consumer, [&] { consumer(c, queue, !local); }));
    for (std::uint32_t i = 0; i < cs.producers; ++i) {
      const bool hold = local && i == 0;
      pids.push_back(spawn(c, static_cast<int>(2 + i), cfg_.cpu_producers,
                           [&, i, hold] { producer(c, static_cast<int>(i), queue, cs.size, cs.batch, hold); }));
      // sync_local: the first producer takes the journal lock before the others open the queue.
      while (hold && c->ready.load(std::memory_order_acquire) < static_cast<int>(pids.size())) {
        if (now_ns() > deadline) throw std::runtime_error("the first producer did not take the journal lock");
        ::usleep(1000);
      }
    }
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

}  // namespace ackring_bench::durable
