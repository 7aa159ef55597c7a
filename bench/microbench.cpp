// ackring-microbench: single-process costs of the hot-path calls (Google
// Benchmark). Producer and consumer live in one thread, so these figures are
// the instructions and cache-resident atomics of each call, without the
// cross-core transfers the multi-process ackring-bench measures.
//
// Setup stays out of the timed loop: queues are created before the loop, and
// refills/drains that keep the queue in a steady state run between
// PauseTiming/ResumeTiming once every kRefill operations (the pause costs
// about a microsecond, which is < 1 ns per operation at that spacing).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "ackring/ackring.hpp"
#include "journal/journal_format.hpp"
#include "journal/journal_records.hpp"
#include "journal/journal_writer.hpp"

namespace {

using namespace std::chrono_literals;
constexpr std::size_t kRefill = 1024;  // operations between paused refills/drains

// A queue file in /dev/shm for one benchmark; removed (with its DLQ) after.
class TempQueue {
 public:
  explicit TempQueue(const char* what, std::uint32_t capacity = 4096, std::uint32_t max_size = 4096)
      : TempQueue(what, options(capacity, max_size)) {}
  TempQueue(const char* what, const ackring::QueueOptions& o)
      : path_("/dev/shm/ackring-micro." + std::to_string(::getpid()) + "." + std::to_string(counter_++) + "." + what),
        q_(create(path_, o)) {}
  ~TempQueue() {
    ackring::Queue::destroy(ackring::dead_letter_queue_of(path_));
    ackring::Queue::destroy(path_);
  }
  TempQueue(const TempQueue&) = delete;
  TempQueue& operator=(const TempQueue&) = delete;
  ackring::Queue& operator*() noexcept { return q_; }
  ackring::Queue* operator->() noexcept { return &q_; }

 private:
  static ackring::QueueOptions options(std::uint32_t capacity, std::uint32_t max_size) {
    ackring::QueueOptions o;
    o.capacity = capacity;
    o.max_message_size = max_size;
    return o;
  }
  static ackring::Queue create(const std::string& path, const ackring::QueueOptions& o) {
    auto q = ackring::Queue::create(path, o);
    q.create_group("g");
    return q;
  }
  static inline std::atomic<int> counter_{0};
  std::string path_;
  ackring::Queue q_;
};

ackring::ConsumerOptions consumer_options(ackring::Millis lease = ackring::Millis{0}) {
  ackring::ConsumerOptions o;
  o.create_group = false;
  o.lease = lease;
  return o;
}

void drain(ackring::Consumer& c) {
  std::array<ackring::Delivery, 64> buf;
  while (const std::size_t n = c.try_receive_batch(buf)) (void)c.ack_batch(std::span(buf.data(), n));
}

bool fill(ackring::Producer& p, std::size_t n, ackring::Bytes msg) {
  for (std::size_t i = 0; i < n; ++i)
    if (!p.try_publish(msg).ok()) return false;
  return true;
}

void set_counters(benchmark::State& state, std::int64_t messages, std::size_t size) {
  state.SetItemsProcessed(messages);
  state.SetBytesProcessed(messages * static_cast<std::int64_t>(size));
}

// try_publish of one message into `q`; a consumer of the same thread drains
// the queue (paused) every kRefill publishes, so it never fills.
void try_publish_loop(benchmark::State& state, TempQueue& q, std::size_t size) {
  auto prod = q->producer();
  auto cons = q->consumer("g", consumer_options());
  std::vector<std::byte> msg(size, std::byte{1});
  std::size_t since = 0;
  for (auto _ : state) {
    const auto r = prod.try_publish(ackring::Bytes(msg));
    if (!r.ok()) {
      state.SkipWithError("try_publish failed");
      break;
    }
    if (++since == kRefill) {
      state.PauseTiming();
      drain(cons);
      since = 0;
      state.ResumeTiming();
    }
  }
  set_counters(state, state.iterations(), size);
}

void BM_TryPublish(benchmark::State& state) {
  TempQueue q("publish");
  try_publish_loop(state, q, static_cast<std::size_t>(state.range(0)));
}
BENCHMARK(BM_TryPublish)->Arg(16)->Arg(64)->Arg(1024)->Arg(4096);

// The same at 64 B on a queue created with publish_timestamp = coarse: no
// precise realtime clock read (compare with BM_TryPublish/64 of the same run).
void BM_TryPublishCoarseTime(benchmark::State& state) {
  ackring::QueueOptions o;
  o.max_message_size = 4096;
  o.publish_timestamp = ackring::PublishTimestamp::coarse;
  TempQueue q("publish-coarse", o);
  try_publish_loop(state, q, 64);
}
BENCHMARK(BM_TryPublishCoarseTime);

// try_publish_batch of 32 messages (one CAS on the tail for all 32), into a
// queue of max_message_size `max_size`.
void try_publish_batch_loop(benchmark::State& state, std::uint32_t max_size) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t size = 64;
  TempQueue q("publish-batch", 4096, max_size);
  auto prod = q->producer();
  auto cons = q->consumer("g", consumer_options());
  std::vector<std::byte> msg(size, std::byte{1});
  std::vector<ackring::Bytes> payloads(batch, ackring::Bytes(msg));
  std::size_t since = 0;
  for (auto _ : state) {
    const auto r = prod.try_publish_batch(payloads);
    if (!r.ok()) {
      state.SkipWithError("try_publish_batch failed");
      break;
    }
    if ((since += batch) >= 2048) {
      state.PauseTiming();
      drain(cons);
      since = 0;
      state.ResumeTiming();
    }
  }
  set_counters(state, state.iterations() * static_cast<std::int64_t>(batch), size);
}

// The queues of these benchmarks allow 4 KiB messages: 4,096 slots of 4,160
// bytes, 16 MB, so every publish writes lines that left the cache.
void BM_TryPublishBatch(benchmark::State& state) { try_publish_batch_loop(state, 4096); }
BENCHMARK(BM_TryPublishBatch)->Arg(32);

// The same into a queue sized for its messages (max_message_size 64: 512 KB
// of slots, which stay in the L2 cache).
void BM_TryPublishBatchFitted(benchmark::State& state) { try_publish_batch_loop(state, 64); }
BENCHMARK(BM_TryPublishBatchFitted)->Arg(32);

// try_publish of 64 B into a queue sized for its messages (max_message_size 64).
void BM_TryPublishFitted(benchmark::State& state) {
  TempQueue q("publish-fitted", 4096, 64);
  try_publish_loop(state, q, 64);
}
BENCHMARK(BM_TryPublishFitted);

// try_publish on a full queue: the queue_full answer, with its floor refresh.
void BM_TryPublishFull(benchmark::State& state) {
  constexpr std::size_t size = 64;
  TempQueue q("full", 1024);
  auto prod = q->producer();
  auto cons = q->consumer("g", consumer_options());  // holds the floor at 0
  std::vector<std::byte> msg(size, std::byte{1});
  if (!fill(prod, 1024, ackring::Bytes(msg))) state.SkipWithError("fill failed");
  for (auto _ : state) {
    const auto r = prod.try_publish(ackring::Bytes(msg));
    if (r.status != ackring::Status::queue_full) {
      state.SkipWithError("expected queue_full");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TryPublishFull);

// try_receive + ack of one message (at-least-once), queue refilled (paused).
// kRefill publishes of `msg`, paused, once `left` (messages still to take) is 0.
void refill_when_empty(benchmark::State& state, ackring::Producer& prod, ackring::Bytes msg, std::size_t& left) {
  if (left != 0) return;
  state.PauseTiming();
  if (!fill(prod, kRefill, msg)) state.SkipWithError("fill failed");
  left = kRefill;
  state.ResumeTiming();
}

void BM_ReceiveAck(benchmark::State& state) {
  constexpr std::size_t size = 64;
  TempQueue q("receive-ack");
  auto prod = q->producer();
  auto cons = q->consumer("g", consumer_options());
  std::vector<std::byte> msg(size, std::byte{1});
  std::size_t left = 0;
  for (auto _ : state) {
    refill_when_empty(state, prod, ackring::Bytes(msg), left);
    auto d = cons.try_receive();
    if (!d || cons.ack(*d) != ackring::Status::ok) {
      state.SkipWithError("receive/ack failed");
      break;
    }
    --left;
  }
  set_counters(state, state.iterations(), size);
}
BENCHMARK(BM_ReceiveAck);

// try_receive + ack of the delivery received N messages before (N leases in
// flight, as ackring-bench --sweep inflight holds them), 2^16 slots of 64 B.
// The design says a receive and an ack cost the same whatever N, and they
// do (README, "Cost growth").
void BM_ReceiveAckHolding(benchmark::State& state) {
  const auto holding = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t size = 64;
  TempQueue q("receive-holding", 1u << 16, size);
  auto prod = q->producer();
  auto cons = q->consumer("g", consumer_options());
  std::vector<std::byte> msg(size, std::byte{1});
  std::vector<ackring::Delivery> held(holding + 1);  // a ring: the oldest is acked once it holds holding + 1
  std::size_t oldest = 0, count = 0, left = 0;
  for (auto _ : state) {
    refill_when_empty(state, prod, ackring::Bytes(msg), left);
    auto d = cons.try_receive();
    if (!d) {
      state.SkipWithError("receive failed");
      break;
    }
    held[(oldest + count) % held.size()] = *d;
    if (++count == held.size()) {
      if (cons.ack(held[oldest]) != ackring::Status::ok) {
        state.SkipWithError("ack failed");
        break;
      }
      oldest = (oldest + 1) % held.size();
      --count;
    }
    --left;
  }
  set_counters(state, state.iterations(), size);
}
BENCHMARK(BM_ReceiveAckHolding)->ArgName("held")->Arg(0)->Arg(1024)->Arg(4096)->Arg(8192)->Arg(16384)->Arg(24576);

// try_receive_batch(32) + ack_batch (cumulative ack: one floor advance).
void BM_ReceiveBatchAck(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t size = 64;
  TempQueue q("receive-batch");
  auto prod = q->producer();
  auto cons = q->consumer("g", consumer_options());
  std::vector<std::byte> msg(size, std::byte{1});
  std::vector<ackring::Delivery> buf(batch);
  std::size_t left = 0;
  for (auto _ : state) {
    if (left < batch) {
      state.PauseTiming();
      drain(cons);
      if (!fill(prod, 2048, ackring::Bytes(msg))) state.SkipWithError("fill failed");
      left = 2048;
      state.ResumeTiming();
    }
    const std::size_t n = cons.try_receive_batch(buf);
    if (n != batch || cons.ack_batch(std::span(buf.data(), n)) != n) {
      state.SkipWithError("receive_batch/ack_batch failed");
      break;
    }
    left -= n;
  }
  set_counters(state, state.iterations() * static_cast<std::int64_t>(batch), size);
}
BENCHMARK(BM_ReceiveBatchAck)->Arg(32);

// At-most-once batch receive (copies each payload out; no ack).
void BM_ReceiveBatchAtMostOnce(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t size = 64;
  TempQueue q("receive-amo");
  auto prod = q->producer();
  auto o = consumer_options();
  o.mode = ackring::DeliveryMode::at_most_once;
  auto cons = q->consumer("g", o);
  std::vector<std::byte> msg(size, std::byte{1});
  std::vector<ackring::Delivery> buf(batch);
  std::size_t left = 0;
  for (auto _ : state) {
    if (left < batch) {
      state.PauseTiming();
      while (cons.try_receive_batch(buf) != 0) {
      }
      if (!fill(prod, 2048, ackring::Bytes(msg))) state.SkipWithError("fill failed");
      left = 2048;
      state.ResumeTiming();
    }
    const std::size_t n = cons.try_receive_batch(buf);
    if (n != batch) {
      state.SkipWithError("receive_batch failed");
      break;
    }
    left -= n;
  }
  set_counters(state, state.iterations() * static_cast<std::int64_t>(batch), size);
}
BENCHMARK(BM_ReceiveBatchAtMostOnce)->Arg(32);

// The whole life of one message in one thread: try_publish, try_receive, ack.
void BM_PublishReceiveAck(benchmark::State& state) {
  constexpr std::size_t size = 64;
  TempQueue q("cycle");
  auto prod = q->producer();
  auto cons = q->consumer("g", consumer_options());
  std::vector<std::byte> msg(size, std::byte{1});
  for (auto _ : state) {
    if (!prod.try_publish(ackring::Bytes(msg)).ok()) {
      state.SkipWithError("publish failed");
      break;
    }
    auto d = cons.try_receive();
    if (!d || cons.ack(*d) != ackring::Status::ok) {
      state.SkipWithError("receive/ack failed");
      break;
    }
  }
  set_counters(state, state.iterations(), size);
}
BENCHMARK(BM_PublishReceiveAck);

// try_receive on an empty queue: one turn of a busy-polling receiver.
void BM_TryReceiveEmpty(benchmark::State& state) {
  TempQueue q("empty");
  auto cons = q->consumer("g", consumer_options());
  for (auto _ : state) {
    auto d = cons.try_receive();
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TryReceiveEmpty);

// Lease takeover: member A receives kTakeover messages with a 20 ms lease and
// never acks; after 30 ms (paused) member B's try_receive redelivers each
// expired lease (delivery 2) and acks it. Timed: B's receive + ack. Leases
// run on the coarse clock, whose tick is 4 ms here (CONFIG_HZ=250): a lease
// shorter than a tick can expire while A is still receiving, and A then
// takes its own expired leases back (delivery 2, B sees 3).
constexpr std::size_t kTakeover = 4096;  // a full ring of expired leases per refill

void BM_LeaseTakeover(benchmark::State& state) {
  constexpr std::size_t size = 64;
  TempQueue q("takeover");
  auto prod = q->producer();
  auto a = q->consumer("g", consumer_options(ackring::Millis{20}));
  auto b = q->consumer("g", consumer_options());
  std::vector<std::byte> msg(size, std::byte{1});
  std::array<ackring::Delivery, 64> buf;
  std::size_t left = 0;
  for (auto _ : state) {
    if (left == 0) {
      state.PauseTiming();
      if (!fill(prod, kTakeover, ackring::Bytes(msg))) state.SkipWithError("fill failed");
      std::size_t taken = 0;
      while (taken < kTakeover) taken += a.try_receive_batch(buf);
      std::this_thread::sleep_for(30ms);
      left = kTakeover;
      state.ResumeTiming();
    }
    auto d = b.try_receive();
    if (!d || d->deliveries() != 2 || b.ack(*d) != ackring::Status::ok) {
      state.SkipWithError("expected a redelivery");
      break;
    }
    --left;
  }
  state.SetItemsProcessed(state.iterations());
}
// Fixed iterations: each refill sleeps 30 ms, which Google Benchmark does not count.
BENCHMARK(BM_LeaseTakeover)->Iterations(50 * kTakeover);

// A member holding N leases closes (its leases come back at once: owner
// released, no back-off); another member receives all N with
// try_receive_batch(32), holding them, then acks them. Timed: the second
// member's receives and acks, per message. Each receive looks for expired
// leases from where its previous look stopped, so the cost per message does
// not grow with N (a look that started over at the group's floor walked past
// every lease already taken over: N^2 / 2 word reads in all).
void BM_TakeoverHeld(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t size = 64;
  TempQueue q("takeover-held", 1u << 16, size);
  auto prod = q->producer();
  auto b = q->consumer("g", consumer_options());
  std::vector<std::byte> msg(size, std::byte{1});
  std::vector<ackring::Delivery> held(n);
  for (auto _ : state) {
    state.PauseTiming();
    if (!fill(prod, n, ackring::Bytes(msg))) state.SkipWithError("fill failed");
    {
      auto a = q->consumer("g", consumer_options());
      for (std::size_t taken = 0; taken < n;) taken += a.try_receive_batch(std::span(held).subspan(taken));
    }  // a closes: its n leases come back
    state.ResumeTiming();
    std::size_t got = 0;
    while (got < n) {
      const std::size_t k = b.try_receive_batch(std::span(held).subspan(got, std::min<std::size_t>(32, n - got)));
      if (k == 0) break;
      got += k;
    }
    if (got != n || held[n - 1].deliveries() != 2 || b.ack_batch(held) != n) {
      state.SkipWithError("expected every lease back");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK(BM_TakeoverHeld)->ArgName("leases")->Arg(1024)->Arg(4096)->Arg(16384);

// Queue::stats(): one producer, one group with one member (default max_groups 8).
void BM_Stats(benchmark::State& state) {
  TempQueue q("stats");
  auto prod = q->producer();
  auto cons = q->consumer("g", consumer_options());
  for (auto _ : state) {
    auto s = q->stats();
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Stats);

// ------------------------------------------------------ effectively-once --
//
// Keyed publish against unkeyed, with the bloom filter on and off, at dedup
// table loads of 10%, 50% and 90%, for two table sizes: 2^13 entries (the
// default for this 4096-slot ring: 256 KiB, cache-resident) and 2^20 entries
// (32 MiB plus 4 MiB of filter: larger than the caches, as a table holding
// a few minutes of a busy producer's keys would be). A table is pre-filled
// (untimed) with live keys to the load; the timed publishes all use fresh
// keys (misses), each adding a live entry, so after entries / 32 of them
// (load + 3.1 points at most) the table is replaced by a freshly filled one,
// paused. The ring is drained (paused) every kRefill publishes, as in
// BM_TryPublish, so no publish waits for room. Policy evict_oldest: at 90%
// some windows are full and a fresh key then evicts (the honest cost at that
// load; refuse would answer dedup_full instead, without publishing).

constexpr std::int64_t kDedupIterations = 1 << 15;

ackring::QueueOptions dedup_options(bool bloom, std::uint32_t entries) {
  ackring::QueueOptions o;
  o.capacity = 4096;
  o.max_message_size = 64;
  o.dedup_entries = entries;
  o.dedup_full_policy = ackring::DedupFullPolicy::evict_oldest;
  o.dedup_bloom = bloom;
  return o;
}

// What fills a DedupRig's table: keys of keyed publishes, or process-once
// records of unkeyed messages (what a consumer's table holds; they also set
// bloom filter bits, which keyed publishes do not).
enum class Prefill : std::uint8_t { published_keys, processed };

// A queue with a dedup table pre-filled to a load, its producer and a consumer that drains it.
struct DedupRig {
  TempQueue q;
  ackring::Producer p;
  ackring::Consumer c;
  bool ok = true;

  DedupRig(bool bloom, std::uint32_t entries, std::int64_t percent, Prefill how = Prefill::published_keys)
      : q("dedup", dedup_options(bloom, entries)), p(q->producer()), c(q->consumer("g", consumer_options())) {
    const std::vector<std::byte> msg(64, std::byte{2});
    // Every slot written once (unkeyed: the table is untouched), so that no
    // timed publish takes the first-touch page fault of a fresh queue file's
    // ring page. BM_PublishDedup makes a new rig every entries / 32
    // publishes; without this its keyed rows (a new rig every 256 publishes
    // at 2^13 entries) paid a fault every 32 publishes, ~55 ns a publish on
    // the AMD host, which its unkeyed row (one rig) did not.
    ok = fill(p, dedup_options(bloom, entries).capacity, ackring::Bytes(msg));
    drain(c);
    // Keys "fill-<n>" (or records) until `percent` of the entries hold live
    // keys (evictions at high load make it take a few more).
    const std::uint64_t target = std::uint64_t{entries} * static_cast<std::uint64_t>(percent) / 100;
    std::uint64_t n = 0;
    for (std::uint64_t live = q->stats().dedup.live; live < target && ok; live = q->stats().dedup.live) {
      for (std::uint64_t i = live; i < target && ok; ++i) {
        if (how == Prefill::published_keys) {
          ok = p.try_publish(ackring::Bytes(msg), {.key = "fill-" + std::to_string(n++)}).ok();
          if ((n & 1023) == 0) drain(c);
          continue;
        }
        ok = p.try_publish(ackring::Bytes(msg)).ok();
        const auto d = c.try_receive();
        ok = ok && d && c.mark_processed(*d) == ackring::Status::ok && c.ack(*d) == ackring::Status::ok;
      }
    }
    drain(c);
  }
};

std::vector<std::string> fresh_keys(std::size_t n) {
  std::vector<std::string> keys(n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = "order-" + std::to_string(1'000'000'000 + i);
  return keys;
}

// Args: keyed (0/1), bloom (0/1), table load in percent, log2 of the table's entries.
void BM_PublishDedup(benchmark::State& state) {
  const bool keyed = state.range(0) != 0;
  const bool bloom = state.range(1) != 0;
  const std::int64_t load = state.range(2);
  const auto entries = std::uint32_t{1} << state.range(3);
  const std::size_t per_table = keyed ? entries / 32 : ~std::size_t{0};
  constexpr std::size_t size = 64;
  auto rig = std::make_unique<DedupRig>(bloom, entries, keyed ? load : 0);
  if (!rig->ok) state.SkipWithError("prefill failed");
  const auto keys = fresh_keys(static_cast<std::size_t>(state.max_iterations));
  double load_sum = 0;
  std::uint64_t tables = 0;
  std::uint64_t evicted = 0;
  auto retire = [&] {  // statistics of a table, before it is replaced (untimed)
    const auto d = rig->q->stats().dedup;
    load_sum += static_cast<double>(d.live) / entries;
    evicted += d.evicted;
    ++tables;
  };
  std::uint64_t prefill_evictions = rig->q->stats().dedup.evicted;
  std::vector<std::byte> msg(size, std::byte{1});
  std::size_t i = 0;
  std::size_t since_drain = 0;
  std::size_t since_table = 0;
  for (auto _ : state) {
    const auto r = keyed ? rig->p.try_publish(ackring::Bytes(msg), {.key = keys[i++]})
                         : rig->p.try_publish(ackring::Bytes(msg));
    if (!r.ok() || r.duplicate) {
      state.SkipWithError("publish failed or found a fresh key duplicate");
      break;
    }
    if (++since_table == per_table && i < keys.size()) {
      state.PauseTiming();
      retire();
      rig.reset();
      rig = std::make_unique<DedupRig>(bloom, entries, load);
      if (!rig->ok) state.SkipWithError("prefill failed");
      prefill_evictions += rig->q->stats().dedup.evicted;
      since_table = since_drain = 0;
      state.ResumeTiming();
    } else if (++since_drain == kRefill) {
      state.PauseTiming();
      drain(rig->c);
      since_drain = 0;
      state.ResumeTiming();
    }
  }
  retire();
  const auto iterations = static_cast<double>(state.iterations());
  state.counters["load_end"] = load_sum / static_cast<double>(tables);  // mean over the tables used
  state.counters["evicted/op"] = static_cast<double>(evicted - prefill_evictions) / iterations;
  state.counters["tables"] = static_cast<double>(tables);
  set_counters(state, state.iterations(), size);
}
BENCHMARK(BM_PublishDedup)
    ->ArgNames({"keyed", "bloom", "load", "log2_entries"})
    ->Args({0, 1, 0, 13})
    ->Args({1, 1, 10, 13})->Args({1, 0, 10, 13})
    ->Args({1, 1, 50, 13})->Args({1, 0, 50, 13})
    ->Args({1, 1, 90, 13})->Args({1, 0, 90, 13})
    ->Args({1, 1, 10, 20})->Args({1, 0, 10, 20})
    ->Args({1, 1, 50, 20})->Args({1, 0, 50, 20})
    ->Args({1, 1, 90, 20})->Args({1, 0, 90, 20})
    ->Iterations(kDedupIterations);

// A retried keyed publish (the key is live: answered duplicate, nothing
// enqueued), 2^20-entry table at 50%. Args: bloom (0/1).
void BM_PublishDuplicate(benchmark::State& state) {
  const bool bloom = state.range(0) != 0;
  DedupRig rig(bloom, 1u << 20, 50);
  if (!rig.ok) state.SkipWithError("prefill failed");
  auto& prod = rig.p;
  std::vector<std::string> keys(4096);
  for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = "fill-" + std::to_string(i * 97);
  std::vector<std::byte> msg(64, std::byte{1});
  // Untimed: publish each once more, so that a key the prefill evicted is live again.
  for (int pass = 0; pass < 2; ++pass)
    for (const auto& key : keys)
      if (!prod.try_publish(ackring::Bytes(msg), {.key = key}).ok()) state.SkipWithError("warm-up failed");
  drain(rig.c);
  std::size_t i = 0;
  for (auto _ : state) {
    const auto r = prod.try_publish(ackring::Bytes(msg), {.key = keys[i++ & 4095]});
    if (!r.ok() || !r.duplicate) {
      state.SkipWithError("expected a duplicate");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PublishDuplicate)->ArgName("bloom")->Arg(1)->Arg(0);

// Consumer::is_processed over 4096 held deliveries, 2^20-entry table at 50%.
// Arg 0: hit (each was marked processed); 1: miss with the bloom filter on
// (almost all answered by the filter alone: bloom-negative); 2: miss with the
// filter off (the key's 16-entry window is probed).
void BM_DedupLookup(benchmark::State& state) {
  const int kind = static_cast<int>(state.range(0));
  DedupRig rig(kind != 2, 1u << 20, 50);
  if (!rig.ok) state.SkipWithError("prefill failed");
  auto& prod = rig.p;
  auto& cons = rig.c;
  std::vector<std::byte> msg(64, std::byte{1});
  if (!fill(prod, 4096, ackring::Bytes(msg))) state.SkipWithError("fill failed");
  std::vector<ackring::Delivery> held(4096);
  std::size_t got = 0;
  while (got < held.size()) {
    const std::size_t n = cons.try_receive_batch(std::span(held.data() + got, held.size() - got));
    if (n == 0) break;
    got += n;
  }
  if (got != held.size()) state.SkipWithError("receive failed");
  if (kind == 0)
    for (const auto& d : held)
      if (cons.mark_processed(d) != ackring::Status::ok) state.SkipWithError("mark_processed failed");
  std::size_t i = 0;
  for (auto _ : state) {
    const bool processed = cons.is_processed(held[i++ & 4095]);
    if (processed != (kind == 0)) {
      state.SkipWithError("unexpected answer");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DedupLookup)->ArgName("kind")->Arg(0)->Arg(1)->Arg(2);

// Keyed publish of fresh keys, 32 per call, 2^20-entry table (32 MiB: out
// of cache) at 10% load, filter on; per message. batched 0: one
// try_publish(bytes, {.key}) per message; 1: publish_keyed_batch, which
// requests the table lines of the keys further on while it publishes.
void BM_PublishKeyedBatch(benchmark::State& state) {
  const bool batched = state.range(0) != 0;
  constexpr std::size_t kBatch = 32;
  DedupRig rig(true, 1u << 20, 10);
  if (!rig.ok) state.SkipWithError("prefill failed");
  const auto keys = fresh_keys(static_cast<std::size_t>(state.max_iterations) * kBatch);
  std::vector<std::byte> msg(64, std::byte{1});
  std::vector<ackring::KeyedPublish> batch(kBatch);
  std::size_t next_key = 0;
  std::size_t since_drain = 0;
  for (auto _ : state) {
    bool ok = true;
    if (batched) {
      for (auto& m : batch) m = {ackring::Bytes(msg), keys[next_key++]};
      ok = rig.p.publish_keyed_batch(batch, std::chrono::milliseconds(1)) == kBatch;
      for (const auto& m : batch) ok = ok && !m.result.duplicate;
    } else {
      for (std::size_t i = 0; i < kBatch; ++i) {
        const auto r = rig.p.try_publish(ackring::Bytes(msg), {.key = keys[next_key++]});
        ok = ok && r.ok() && !r.duplicate;
      }
    }
    if (!ok) {
      state.SkipWithError("publish failed or found a fresh key duplicate");
      break;
    }
    if ((since_drain += kBatch) >= 2048) {
      state.PauseTiming();
      drain(rig.c);
      since_drain = 0;
      state.ResumeTiming();
    }
  }
  set_counters(state, state.iterations() * static_cast<std::int64_t>(kBatch), 64);
}
BENCHMARK(BM_PublishKeyedBatch)->ArgName("batched")->Arg(0)->Arg(1)->Iterations(1024);

// Process-once of received batches of 32 new messages (unkeyed: each record
// is the message's seq), 2^20-entry table (32 MiB: out of cache) at 10% load
// of process-once records (which, unlike keyed publishes, also set the
// filter's bits: its lines are as warm as a consumer's own records keep
// them), filter on; per message, the ack of the batch included. batched 0:
// is_processed + mark_processed per message, then ack_batch; 1:
// process_once_batch, which requests every key's lines before the first lookup.
void BM_ProcessOnce(benchmark::State& state) {
  const bool batched = state.range(0) != 0;
  constexpr std::size_t kBatch = 32;
  DedupRig rig(true, 1u << 20, 10, Prefill::processed);
  if (!rig.ok) state.SkipWithError("prefill failed");
  std::vector<std::byte> msg(64, std::byte{1});
  std::vector<ackring::Delivery> buf(kBatch);
  std::size_t left = 0;
  std::int64_t handled = 0;
  for (auto _ : state) {
    if (left < kBatch) {
      state.PauseTiming();
      drain(rig.c);
      if (!fill(rig.p, 2048, ackring::Bytes(msg))) state.SkipWithError("fill failed");
      left = 2048;
      state.ResumeTiming();
    }
    const std::size_t n = rig.c.try_receive_batch(buf);
    const std::span<const ackring::Delivery> got(buf.data(), n);
    std::size_t acked = 0;
    if (batched) {
      acked = rig.c.process_once_batch(got, [&](const ackring::Delivery&) { ++handled; }).acked;
    } else {
      for (const auto& d : got) {
        if (rig.c.is_processed(d)) continue;
        ++handled;
        if (rig.c.mark_processed(d) != ackring::Status::ok) state.SkipWithError("mark_processed failed");
      }
      acked = rig.c.ack_batch(got);
    }
    if (n != kBatch || acked != n) {
      state.SkipWithError("receive or ack failed");
      break;
    }
    left -= n;
  }
  if (handled != state.iterations() * static_cast<std::int64_t>(kBatch)) state.SkipWithError("a new message was skipped");
  set_counters(state, state.iterations() * static_cast<std::int64_t>(kBatch), 64);
}
BENCHMARK(BM_ProcessOnce)->ArgName("batched")->Arg(0)->Arg(1)->Iterations(1024);

// Journal records (src/journal/journal_format.hpp), without the disk: what the
// writer's thread spends framing one message record in its staging buffer
// (payload encoded in place, padding, header, XXH3 checksum), and what a
// reader spends on one: the checksum test of journal_scan.cpp's check_record
// and decode_message (check_record's structural journal_payload_valid pass is
// not included). Arg: body bytes.
constexpr std::uint64_t kJournalTime = 1'700'000'000'000'000'000ull;

std::uint64_t encode_journal_message(std::byte* record, std::uint64_t seq, std::span<const std::byte> body) {
  using namespace ackring::detail;
  const std::uint64_t length = journal_message_payload_size(body.size());
  encode_message(record + kJournalRecordHeaderSize, kJournalTime, JournalKey{seq, ~seq}, body);
  JournalRecordHeader h{};
  h.length = static_cast<std::uint32_t>(length);
  h.type = static_cast<std::uint16_t>(JournalRecordType::message);
  h.flags = kJournalFlagHasKey;
  h.seq = seq;
  return seal_journal_record(record, h);
}

void BM_JournalRecordEncode(benchmark::State& state) {
  using namespace ackring::detail;
  const std::vector<std::byte> body(static_cast<std::size_t>(state.range(0)), std::byte{7});
  std::vector<std::byte> staging(journal_record_size(journal_message_payload_size(body.size())) * 64);
  std::uint64_t seq = 0, off = 0;
  for (auto _ : state) {
    // 64 records, then start over: the staging buffer stays in L1/L2, as the
    // writer's does between flushes.
    if ((seq & 63) == 0) off = 0;
    off += encode_journal_message(staging.data() + off, seq++, body);
    benchmark::DoNotOptimize(staging.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_JournalRecordEncode)->Arg(16)->Arg(64)->Arg(1024)->Arg(4096);

void BM_JournalRecordVerify(benchmark::State& state) {
  using namespace ackring::detail;
  const std::vector<std::byte> body(static_cast<std::size_t>(state.range(0)), std::byte{7});
  std::vector<std::byte> record(journal_record_size(journal_message_payload_size(body.size())));
  encode_journal_message(record.data(), 42, body);
  for (auto _ : state) {
    JournalRecordHeader h;
    std::memcpy(&h, record.data(), sizeof h);
    JournalMessageView m;
    const std::span<const std::byte> payload(record.data() + kJournalRecordHeaderSize, h.length);
    if (h.checksum != journal_record_checksum(record.data(), h.length) || !decode_message(payload, h.flags, m) ||
        m.body.size() != body.size()) {
      state.SkipWithError("record did not verify");
      break;
    }
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_JournalRecordVerify)->Arg(16)->Arg(64)->Arg(1024)->Arg(4096);

// JournalWriter::append_message: the whole staging step of one keyed message
// (checks, room, encode in place, seal), as the journal thread runs it. The
// writer's files are on /dev/shm; the flush (and the retention that keeps
// tmpfs from filling) runs paused every kRefill appends, so the figure is
// the append alone. Arg: body bytes.
void BM_JournalWriterAppend(benchmark::State& state) {
  using namespace ackring::detail;
  const std::string dir = "/dev/shm/ackring-micro-journal." + std::to_string(::getpid());
  const std::vector<std::byte> body(static_cast<std::size_t>(state.range(0)), std::byte{7});
  {
    auto w = JournalWriter::try_acquire(dir, {.queue_id = 1, .segment_size = 64u << 20});
    if (!w) state.SkipWithError("journal lock taken");
    std::uint64_t n = 0;
    for (auto _ : state) {
      w->append_message(body, kJournalTime, JournalKey{n, ~n});
      if (++n % kRefill == 0) {
        state.PauseTiming();
        w->flush();
        w->delete_below(w->next_seq());
        state.ResumeTiming();
      }
    }
    if (w) w->close();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_JournalWriterAppend)->Arg(16)->Arg(64)->Arg(1024)->Arg(4096);

}  // namespace

BENCHMARK_MAIN();
