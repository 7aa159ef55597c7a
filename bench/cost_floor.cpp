// The floor under ackring-microbench's figures: what each primitive of the
// hot path costs alone on this machine, in the same run. A publish is at
// least its locked read-modify-writes, its clock readings and its checksum;
// these say how much of BM_TryPublish/64 and BM_ReceiveAck is that floor and
// how much is ackring's own code. BM_Floor_BareRingPushPop is the bare SPSC
// ring (spsc_ring.hpp) pushing and popping one 64 B message in one thread:
// the cost of a shared-memory queue with no protocol at all.
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "shm/clock.hpp"
#include "shm/tsc_clock.hpp"
#include "shm/xxhash_inline.hpp"
#include "spsc_ring.hpp"

namespace {

// One locked CAS on a line this core owns, each depending on the last (as
// the mark and the commit of one slot do): the price of a lock prefix
// without any cross-core transfer.
void BM_Floor_LockedCas(benchmark::State& state) {
  alignas(64) std::atomic<std::uint64_t> word{0};
  std::uint64_t expected = 0;
  for (auto _ : state) {
    word.compare_exchange_strong(expected, expected + 1, std::memory_order_seq_cst);
    ++expected;
  }
  benchmark::DoNotOptimize(word.load());
}
BENCHMARK(BM_Floor_LockedCas);

void BM_Floor_ReleaseStore(benchmark::State& state) {
  alignas(64) std::atomic<std::uint64_t> word{0};
  std::uint64_t v = 0;
  for (auto _ : state) {
    word.store(++v, std::memory_order_release);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Floor_ReleaseStore);

void BM_Floor_ClockRealtime(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(ackring::detail::realtime_ns());
}
BENCHMARK(BM_Floor_ClockRealtime);

void BM_Floor_ClockCoarseMonotonic(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(ackring::detail::coarse_monotonic_ms());
}
BENCHMARK(BM_Floor_ClockCoarseMonotonic);

#if defined(__x86_64__)
void BM_Floor_Rdtsc(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(__rdtsc());
}
BENCHMARK(BM_Floor_Rdtsc);
#endif

// What a publish pays for its claim time and publish time now (shm/tsc_clock.hpp);
// before, it was one coarse monotonic and one realtime clock_gettime.
void BM_Floor_ClockTsc(benchmark::State& state) {
  ackring::detail::TscClock clock;
  for (auto _ : state) benchmark::DoNotOptimize(clock.now());
  state.counters["calibrated"] = clock.scale_q32() != 0 ? 1 : 0;
  // Its error, untimed: each reading against the midpoint of clock_gettime
  // calls just before and after it, kept only when those two are < 200 ns
  // apart (nothing interrupted the bracket).
  std::vector<std::int64_t> error_ns;
  while (error_ns.size() < 200'000) {
    const std::uint64_t before = ackring::detail::realtime_ns();
    const std::uint64_t t = clock.now().realtime_ns;
    const std::uint64_t after = ackring::detail::realtime_ns();
    if (after - before < 200)
      error_ns.push_back(static_cast<std::int64_t>(t) - static_cast<std::int64_t>(before + (after - before) / 2));
  }
  for (auto& e : error_ns) e = e < 0 ? -e : e;
  std::sort(error_ns.begin(), error_ns.end());
  state.counters["err_p50_ns"] = static_cast<double>(error_ns[error_ns.size() / 2]);
  state.counters["err_p99_ns"] = static_cast<double>(error_ns[error_ns.size() * 99 / 100]);
  state.counters["err_max_ns"] = static_cast<double>(error_ns.back());
}
BENCHMARK(BM_Floor_ClockTsc);

// XXH3-64 of a 64 B payload whose first word changes every time, so the
// compiler cannot hoist it out of the loop.
void BM_Floor_Xxh3(benchmark::State& state) {
  std::array<std::uint64_t, 8> payload{};
  for (auto _ : state) {
    ++payload[0];
    benchmark::DoNotOptimize(XXH3_64bits(payload.data(), sizeof payload));
  }
}
BENCHMARK(BM_Floor_Xxh3);

void BM_Floor_BareRingPushPop(benchmark::State& state) {
  constexpr std::size_t capacity = 4096;
  constexpr std::size_t size = 64;
  alignas(64) static std::byte memory[ackring_bench::spsc_bytes(capacity, size)];
  ackring_bench::SpscProducer producer(memory, capacity, size);
  ackring_bench::SpscConsumer consumer(memory, capacity, size);
  std::vector<std::byte> msg(size, std::byte{1});
  std::array<std::byte, size> out{};
  for (auto _ : state) {
    if (!producer.try_push(msg.data(), size)) {
      state.SkipWithError("bare ring full");
      break;
    }
    std::uint32_t got = 0;
    const std::byte* p = consumer.front(&got);
    if (p == nullptr) {
      state.SkipWithError("bare ring empty");
      break;
    }
    std::memcpy(out.data(), p, got);  // a consumer copies what it reads, as ackring's does
    consumer.pop();
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_Floor_BareRingPushPop);

// One cache line at a random place in a region of `MiB` (Arg), each load's
// address depending on the one before (a pointer chase through a random
// cycle of every line): what a keyed publish or a process-once record waits
// for when its key's lines are not cached, as the first load of a key that
// it only learns at the call. 4 KiB pages (transparent huge pages refused,
// as they are for the queue file on tmpfs by default), so the chase also
// pays the TLB misses a large dedup table costs. 64 MiB is ackring-bench's
// table (2^21 entries); 1 MiB fits the L2.
void BM_Floor_RandomLineMiss(benchmark::State& state) {
  const std::size_t bytes = static_cast<std::size_t>(state.range(0)) << 20;
  const std::size_t lines = bytes / 64;
  void* region = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) {
    state.SkipWithError("mmap failed");
    return;
  }
  (void)::madvise(region, bytes, MADV_NOHUGEPAGE);
  auto* line = static_cast<std::uint64_t*>(region);  // word 0 of line i: the next line's index
  // Every line once, in a random order, chained into one cycle.
  std::vector<std::uint32_t> order(lines);
  for (std::size_t i = 0; i < lines; ++i) order[i] = static_cast<std::uint32_t>(i);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(42));
  for (std::size_t i = 0; i < lines; ++i) line[std::size_t{order[i]} * 8] = order[(i + 1) % lines];
  std::uint64_t at = order[0];
  for (auto _ : state) {
    at = line[at * 8];
    benchmark::DoNotOptimize(at);
  }
  ::munmap(region, bytes);
}
BENCHMARK(BM_Floor_RandomLineMiss)->ArgName("MiB")->Arg(1)->Arg(64);

}  // namespace
