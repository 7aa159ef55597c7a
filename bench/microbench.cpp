// ackring_microbench: single-process costs of the hot-path calls (Google
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
#include <string>
#include <thread>
#include <vector>

#include "ackring/ackring.hpp"

namespace {

using namespace std::chrono_literals;
constexpr std::size_t kRefill = 1024;  // operations between paused refills/drains

// A queue file in /dev/shm for one benchmark; removed (with its DLQ) after.
class TempQueue {
 public:
  explicit TempQueue(const char* what, std::uint32_t capacity = 4096, std::uint32_t max_size = 4096)
      : path_("/dev/shm/ackring-micro." + std::to_string(::getpid()) + "." + std::to_string(counter_++) + "." + what),
        q_(create(path_, capacity, max_size)) {}
  ~TempQueue() {
    ackring::Queue::destroy(ackring::dead_letter_queue_of(path_));
    ackring::Queue::destroy(path_);
  }
  TempQueue(const TempQueue&) = delete;
  TempQueue& operator=(const TempQueue&) = delete;
  ackring::Queue& operator*() noexcept { return q_; }
  ackring::Queue* operator->() noexcept { return &q_; }

 private:
  static ackring::Queue create(const std::string& path, std::uint32_t capacity, std::uint32_t max_size) {
    ackring::QueueOptions o;
    o.capacity = capacity;
    o.max_message_size = max_size;
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

// try_publish of one message; a consumer of the same thread drains the queue
// (paused) every kRefill publishes, so it never fills.
void BM_TryPublish(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  TempQueue q("publish");
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
BENCHMARK(BM_TryPublish)->Arg(16)->Arg(64)->Arg(1024)->Arg(4096);

// try_publish_batch of 32 messages (one CAS on the tail for all 32).
void BM_TryPublishBatch(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t size = 64;
  TempQueue q("publish-batch");
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
BENCHMARK(BM_TryPublishBatch)->Arg(32);

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
void BM_ReceiveAck(benchmark::State& state) {
  constexpr std::size_t size = 64;
  TempQueue q("receive-ack");
  auto prod = q->producer();
  auto cons = q->consumer("g", consumer_options());
  std::vector<std::byte> msg(size, std::byte{1});
  std::size_t left = 0;
  for (auto _ : state) {
    if (left == 0) {
      state.PauseTiming();
      if (!fill(prod, kRefill, ackring::Bytes(msg))) state.SkipWithError("fill failed");
      left = kRefill;
      state.ResumeTiming();
    }
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

// Lease takeover: member A receives kTakeover messages with a 2 ms lease and
// never acks; after 4 ms (paused) member B's try_receive redelivers each
// expired lease (delivery 2) and acks it. Timed: B's receive + ack. (Leases
// are whole ms: a 1 ms lease can expire while A is still receiving.)
constexpr std::size_t kTakeover = 4096;  // a full ring of expired leases per refill

void BM_LeaseTakeover(benchmark::State& state) {
  constexpr std::size_t size = 64;
  TempQueue q("takeover");
  auto prod = q->producer();
  auto a = q->consumer("g", consumer_options(ackring::Millis{2}));
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
      std::this_thread::sleep_for(4ms);
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
// Fixed iterations: each refill sleeps 4 ms, which Google Benchmark does not count.
BENCHMARK(BM_LeaseTakeover)->Iterations(50 * kTakeover);

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

}  // namespace

BENCHMARK_MAIN();
