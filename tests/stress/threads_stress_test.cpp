// Threads on one mapping: several producer threads and consumer threads in
// two groups share one Queue in one process (each thread its own Producer or
// Consumer), with random batch sizes, nacks with and without delay, leases
// left to expire, and members that leave and rejoin. Checks that every published message is acked
// exactly once in each group and that no payload is ever torn.
//
// Randomised: prints its seed; ACKRING_SEED=<n> runs that seed again (thread
// interleavings still differ from run to run). Built for ThreadSanitizer
// (-DACKRING_SANITIZE=thread) it runs shorter and must report nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "ackring/ackring.hpp"
#include "test_util.hpp"

#if defined(__SANITIZE_THREAD__)
#define ACKRING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ACKRING_TSAN 1
#endif
#endif
#ifndef ACKRING_TSAN
#define ACKRING_TSAN 0
#endif

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

constexpr bool kTsan = ACKRING_TSAN != 0;
constexpr std::uint32_t kProducers = 3;
constexpr std::uint32_t kGroups = 2;
constexpr std::uint32_t kNormalConsumersPerGroup = 2;  // 10 s leases, verify, then ack or nack
constexpr std::uint32_t kForgetfulConsumersPerGroup = 1;  // short leases, some messages left to expire
constexpr std::uint32_t kMaxMessageSize = 200;
// Publishing runs this long; then the consumers drain what is left.
constexpr auto kPublishFor = kTsan ? 20s : 12s;
constexpr auto kBudget = kTsan ? 90s : 60s;  // publish + drain, after which the test fails
constexpr std::uint32_t kMaxPerProducer = kTsan ? (1u << 20) : (1u << 23);
constexpr auto kShortLease = kTsan ? 60ms : 25ms;

std::uint64_t seed_from_env() {
  if (const char* s = std::getenv("ACKRING_SEED"); s != nullptr && *s != '\0') return std::strtoull(s, nullptr, 0);
  return std::random_device{}() ^ (static_cast<std::uint64_t>(std::random_device{}()) << 32);
}

// Payload: producer (4 bytes), counter (4 bytes), then bytes derived from
// both; the length too is a function of the id.
std::size_t length_of(std::uint32_t p, std::uint32_t c) {
  return 8 + (c * 2654435761u + p * 97u) % (kMaxMessageSize - 7);
}
std::uint8_t byte_of(std::uint32_t p, std::uint32_t c, std::size_t i) {
  return static_cast<std::uint8_t>((c >> (i % 4) * 8) ^ (p * 29u) ^ (i * 151u));
}
void fill(std::uint32_t p, std::uint32_t c, std::vector<std::byte>& out) {
  out.resize(length_of(p, c));
  std::memcpy(out.data(), &p, 4);
  std::memcpy(out.data() + 4, &c, 4);
  for (std::size_t i = 8; i < out.size(); ++i) out[i] = std::byte{byte_of(p, c, i)};
}

struct Shared {
  std::atomic<bool> publishing{true};       // producers keep going while set
  std::atomic<bool> producers_done{false};  // every producer thread has returned: `published` is final
  std::atomic<bool> abort{false};
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint32_t> produced[kProducers]{};  // per producer: counters [0, n) are published
  // acks[g][p][c]: successful acks of message (p, c) in group g.
  std::vector<std::unique_ptr<std::atomic<std::uint8_t>[]>> acks;
  std::atomic<std::uint64_t> acked[kGroups]{};
  std::atomic<std::uint64_t> deliveries{0}, redeliveries{0}, nacks{0}, forgotten{0}, lost_before_extend{0}, rejoins{0}, full{0};
  std::atomic<std::uint64_t> errors{0};
  std::mutex error_mutex;
  std::string first_error;

  std::atomic<std::uint8_t>& ack_count(std::uint32_t g, std::uint32_t p, std::uint32_t c) {
    return acks[g * kProducers + p][c];
  }
  void fail(const std::string& what) {
    if (errors.fetch_add(1) == 0) {
      std::lock_guard lock(error_mutex);
      first_error = what;
    }
    abort.store(true);
  }
  [[nodiscard]] bool group_done(std::uint32_t g) const {
    return producers_done.load(std::memory_order_acquire) &&
           acked[g].load(std::memory_order_acquire) == published.load(std::memory_order_acquire);
  }
};

void producer_thread(Queue& q, Shared& sh, std::uint32_t p, std::uint64_t seed) {
  auto prod = q.producer();
  std::mt19937_64 rng(seed);
  std::vector<std::vector<std::byte>> bufs(8);
  std::vector<Bytes> views(8);
  std::uint32_t c = 0;
  while (sh.publishing.load(std::memory_order_relaxed) && !sh.abort.load(std::memory_order_relaxed)) {
    const std::uint32_t k = std::min<std::uint32_t>((rng() % 3 == 0) ? 1 + rng() % 8 : 1, kMaxPerProducer - c);
    if (k == 0) break;
    for (std::uint32_t i = 0; i < k; ++i) {
      fill(p, c + i, bufs[i]);
      views[i] = Bytes(bufs[i]);
    }
    PublishResult r;
    switch (rng() % 3) {
      case 0:  // non-blocking, retry while full
        do {
          r = k == 1 ? prod.try_publish(views[0]) : prod.try_publish_batch(std::span(views.data(), k));
          if (r.status == Status::queue_full) {
            sh.full.fetch_add(1, std::memory_order_relaxed);
            std::this_thread::yield();
          }
        } while (r.status == Status::queue_full && !sh.abort.load(std::memory_order_relaxed));
        break;
      default:  // blocking with a timeout
        do {
          r = k == 1 ? prod.publish(views[0], 200ms) : prod.publish_batch(std::span(views.data(), k), 200ms);
        } while (r.status == Status::timeout && !sh.abort.load(std::memory_order_relaxed));
        break;
    }
    if (sh.abort.load(std::memory_order_relaxed)) return;
    if (!r.ok()) {
      sh.fail("producer " + std::to_string(p) + ": publish failed: " + std::string(to_string(r.status)));
      return;
    }
    c += k;
    sh.produced[p].store(c, std::memory_order_release);
    sh.published.fetch_add(k, std::memory_order_acq_rel);
  }
}

// Checks the payload against its id; false if length or bytes are wrong.
bool verify(const Delivery& d, std::uint32_t& p, std::uint32_t& c) {
  const Bytes b = d.payload();
  if (b.size() < 8) return false;
  std::memcpy(&p, b.data(), 4);
  std::memcpy(&c, b.data() + 4, 4);
  if (p >= kProducers || c >= kMaxPerProducer || b.size() != length_of(p, c)) return false;
  for (std::size_t i = 8; i < b.size(); ++i)
    if (b[i] != std::byte{byte_of(p, c, i)}) return false;
  return true;
}

void record_ack(Shared& sh, std::uint32_t g, std::uint32_t p, std::uint32_t c) {
  const auto before = sh.ack_count(g, p, c).fetch_add(1, std::memory_order_relaxed);
  if (before != 0)
    sh.fail("group " + std::to_string(g) + ": message " + std::to_string(p) + "/" + std::to_string(c) +
            " acked a second time");
  sh.acked[g].fetch_add(1, std::memory_order_acq_rel);
}

std::string describe(const Delivery& d) {
  return "seq " + std::to_string(d.seq()) + " (delivery " + std::to_string(d.deliveries()) + ", " +
         std::to_string(d.payload().size()) + " bytes)";
}

// Long leases: verify each message, then ack it (one by one or as a batch)
// or nack it (at once or after a short delay).
void normal_consumer_thread(Queue& q, Shared& sh, std::uint32_t g, std::uint64_t seed) {
  ConsumerOptions co;
  co.lease = 10s;
  co.create_group = false;
  co.spin = 5us;
  auto cons = q.consumer("g" + std::to_string(g), co);
  std::mt19937_64 rng(seed);
  std::vector<Delivery> batch(16);
  std::vector<Delivery> to_ack;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ids;
  while (!sh.abort.load(std::memory_order_relaxed) && !sh.group_done(g)) {
    const std::size_t want = 1 + rng() % batch.size();
    const std::size_t n = cons.receive_batch(std::span(batch.data(), want), 5ms);
    to_ack.clear();
    ids.clear();
    for (std::size_t i = 0; i < n; ++i) {
      const Delivery& d = batch[i];
      sh.deliveries.fetch_add(1, std::memory_order_relaxed);
      if (d.redelivered()) sh.redeliveries.fetch_add(1, std::memory_order_relaxed);
      std::uint32_t p = 0, c = 0;
      if (!verify(d, p, c)) {
        sh.fail("group " + std::to_string(g) + ": corrupt payload at " + describe(d));
        return;
      }
      // Misbehave only on early deliveries, so nothing reaches max_deliveries.
      if (d.deliveries() < 3 && rng() % 100 < 2) {
        const Millis delay{rng() % 2 == 0 ? 0 : static_cast<std::int64_t>(rng() % 3)};
        const Status s = cons.nack(d.receipt(), delay);
        if (s != Status::ok) sh.fail("nack of a held 10 s lease: " + std::string(to_string(s)) + " at " + describe(d));
        sh.nacks.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      to_ack.push_back(d);
      ids.emplace_back(p, c);
    }
    if (to_ack.empty()) continue;
    if (rng() % 2 == 0) {
      const std::size_t acked = cons.ack_batch(to_ack);
      if (acked != to_ack.size()) {
        sh.fail("ack_batch of held 10 s leases acked " + std::to_string(acked) + " of " + std::to_string(to_ack.size()));
        return;
      }
      for (const auto& [p, c] : ids) record_ack(sh, g, p, c);
    } else {
      for (std::size_t i = 0; i < to_ack.size(); ++i) {
        const Status s = cons.ack(to_ack[i]);
        if (s != Status::ok) {
          sh.fail("ack of a held 10 s lease: " + std::string(to_string(s)) + " at " + describe(to_ack[i]));
          return;
        }
        record_ack(sh, g, ids[i].first, ids[i].second);
      }
    }
  }
}

// Short leases: leaves some messages untouched to expire (taken over by the
// next receiver); for the rest, first extends the lease (a consumer about to
// work on a message), which fails if it already expired and was taken over,
// and only then reads the payload and acks. Now and then it leaves the group
// and joins again, which hands its forgotten leases back at once.
void forgetful_consumer_thread(Queue& q, Shared& sh, std::uint32_t g, std::uint64_t seed) {
  ConsumerOptions co;
  co.lease = kShortLease;
  co.create_group = false;
  co.spin = 5us;
  std::optional<Consumer> cons(q.consumer("g" + std::to_string(g), co));
  std::mt19937_64 rng(seed);
  std::vector<Delivery> batch(4);
  while (!sh.abort.load(std::memory_order_relaxed) && !sh.group_done(g)) {
    if (rng() % 512 == 0) {
      // Leave and join again: leaving hands the leases of forgotten messages
      // back at once (while other members race to take and ack messages).
      cons.reset();
      sh.rejoins.fetch_add(1, std::memory_order_relaxed);
      cons.emplace(q.consumer("g" + std::to_string(g), co));
    }
    const std::size_t want = 1 + rng() % batch.size();
    const std::size_t n = cons->receive_batch(std::span(batch.data(), want), 5ms);
    for (std::size_t i = 0; i < n; ++i) {
      const Delivery& d = batch[i];
      sh.deliveries.fetch_add(1, std::memory_order_relaxed);
      if (d.redelivered()) sh.redeliveries.fetch_add(1, std::memory_order_relaxed);
      if (d.deliveries() < 3 && rng() % 100 < 3) {
        sh.forgotten.fetch_add(1, std::memory_order_relaxed);
        continue;  // never touched again: its lease runs out
      }
      const Status e = cons->extend(d.receipt(), 10s);
      if (e == Status::lease_lost) {
        sh.lost_before_extend.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (e != Status::ok) {
        sh.fail("extend: " + std::string(to_string(e)));
        return;
      }
      std::uint32_t p = 0, c = 0;
      if (!verify(d, p, c)) {
        sh.fail("group " + std::to_string(g) + ": corrupt payload at " + describe(d) + " (forgetful consumer)");
        return;
      }
      const Status s = cons->ack(d);
      if (s != Status::ok) {
        sh.fail("ack after a successful extend: " + std::string(to_string(s)) + " at " + describe(d));
        return;
      }
      record_ack(sh, g, p, c);
    }
  }
}

TEST(ThreadsStress, should_ack_every_message_exactly_once_per_group_with_producers_and_consumers_on_one_mapping) {
  const std::uint64_t seed = seed_from_env();
  std::printf("ACKRING_SEED=%" PRIu64 " (tsan build: %s)\n", seed, kTsan ? "yes" : "no");
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 seeds(seed);

  TempQueue tq;
  QueueOptions qo;
  qo.capacity = 4096;
  qo.max_message_size = kMaxMessageSize;
  qo.max_deliveries = 50;  // misbehaviour is random; the test must not depend on no message being unlucky
  qo.default_lease = 10s;
  auto q = Queue::create(tq.path(), qo);
  for (std::uint32_t g = 0; g < kGroups; ++g) q.create_group("g" + std::to_string(g));

  Shared sh;
  for (std::uint32_t i = 0; i < kGroups * kProducers; ++i)
    sh.acks.push_back(std::make_unique<std::atomic<std::uint8_t>[]>(kMaxPerProducer));

  std::vector<std::thread> threads;
  for (std::uint32_t g = 0; g < kGroups; ++g) {
    for (std::uint32_t i = 0; i < kNormalConsumersPerGroup; ++i)
      threads.emplace_back(normal_consumer_thread, std::ref(q), std::ref(sh), g, seeds());
    for (std::uint32_t i = 0; i < kForgetfulConsumersPerGroup; ++i)
      threads.emplace_back(forgetful_consumer_thread, std::ref(q), std::ref(sh), g, seeds());
  }
  std::vector<std::thread> producers;
  for (std::uint32_t p = 0; p < kProducers; ++p)
    producers.emplace_back(producer_thread, std::ref(q), std::ref(sh), p, seeds());

  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < kPublishFor && !sh.abort.load()) std::this_thread::sleep_for(20ms);
  sh.publishing.store(false, std::memory_order_release);
  for (auto& t : producers) t.join();
  sh.producers_done.store(true, std::memory_order_release);
  const auto published_at = std::chrono::steady_clock::now();
  bool drained = false;
  while (!sh.abort.load()) {
    drained = true;
    for (std::uint32_t g = 0; g < kGroups; ++g) drained = drained && sh.group_done(g);
    if (drained || std::chrono::steady_clock::now() - start > kBudget) break;
    std::this_thread::sleep_for(10ms);
  }
  sh.abort.store(true);  // releases consumers of a group that cannot finish
  for (auto& t : threads) t.join();
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double drain_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - published_at).count();

  const std::uint64_t published = sh.published.load();
  std::printf("published %" PRIu64 " messages (%u/%u/%u), %" PRIu64 " deliveries, %" PRIu64 " redeliveries, %" PRIu64
              " nacks, %" PRIu64 " left to expire, %" PRIu64 " taken over before extend, %" PRIu64
              " rejoins, %" PRIu64 " queue_full; %.1f s (drain %.2f s)\n",
              published, sh.produced[0].load(), sh.produced[1].load(), sh.produced[2].load(), sh.deliveries.load(),
              sh.redeliveries.load(), sh.nacks.load(), sh.forgotten.load(), sh.lost_before_extend.load(), sh.rejoins.load(), sh.full.load(), total_s,
              drain_s);
  ASSERT_EQ(sh.errors.load(), 0u) << sh.first_error << " (seed " << seed << ")";
  ASSERT_TRUE(drained) << "not every message was acked in every group within the budget: acked " << sh.acked[0].load()
                       << " / " << sh.acked[1].load() << " of " << published << " (seed " << seed << ")";

  for (std::uint32_t g = 0; g < kGroups; ++g)
    for (std::uint32_t p = 0; p < kProducers; ++p) {
      const std::uint32_t n = sh.produced[p].load();
      std::uint64_t wrong = 0;
      std::uint32_t first_wrong = 0;
      for (std::uint32_t c = 0; c < kMaxPerProducer; ++c) {
        const unsigned want = c < n ? 1 : 0;
        if (sh.ack_count(g, p, c).load() != want && wrong++ == 0) first_wrong = c;
      }
      EXPECT_EQ(wrong, 0u) << "group " << g << ", producer " << p << ": " << wrong
                           << " messages not acked exactly once, first " << first_wrong << " (seed " << seed << ")";
    }

  const QueueStats s = q.stats();
  EXPECT_EQ(s.tail, published);
  EXPECT_EQ(s.published, published);
  EXPECT_EQ(s.aborted, 0u);
  for (const auto& g : s.groups) {
    EXPECT_EQ(g.floor, published) << g.name;
    EXPECT_EQ(g.in_flight, 0u) << g.name;
    EXPECT_EQ(g.dead_lettered, 0u) << g.name;
    EXPECT_EQ(g.corrupt_skipped, 0u) << g.name;
    EXPECT_EQ(g.aborted_skipped, 0u) << g.name;
    EXPECT_EQ(g.acked, published) << g.name;
    EXPECT_TRUE(g.members.empty()) << g.name;
  }
  EXPECT_GT(sh.redeliveries.load(), 0u) << "no redelivery happened: nacks and expiries were not exercised";
  if (!kTsan) {
    EXPECT_GT(published, 10'000u) << "suspiciously little throughput";
  }
}

// Sync durability with every thread in the process that holds the journal:
// each publishing thread writes its own message to disk when no flush is
// under way (durability.cpp, lead_flush), the journal thread when one is
// not taken, all through the one writer. Every publish returns only once it
// is durable; the consumer thread gets every message once, by content.
TEST(ThreadsStress, should_deliver_every_sync_publish_once_with_publishers_leading_journal_flushes) {
  TempJournalDir journal;
  TempQueue tq;
  QueueOptions qo;
  qo.capacity = 256;
  qo.max_message_size = 64;
  qo.durability = Durability::sync;
  qo.journal_dir = journal.root().string();
  auto q = Queue::create(tq.path(), qo);
  auto c = q.consumer("g");
  ASSERT_TRUE(holds_journal(q));
  constexpr int kThreads = 3, kEach = kTsan ? 150 : 400;
  std::atomic<int> failures{0};
  std::vector<std::thread> publishers;
  for (int t = 0; t < kThreads; ++t)
    publishers.emplace_back([&, t] {
      auto p = q.producer();
      for (int i = 0; i < kEach; ++i) {
        const auto r = p.publish("p" + std::to_string(t) + "-" + std::to_string(i), 30s);
        if (!r.ok() || q.stats().durable_seq <= r.seq) ++failures;
      }
    });
  std::vector<std::string> got;
  std::thread consumer([&] {
    while (got.size() < std::size_t{kThreads} * kEach) {
      auto d = c.receive(10s);
      if (!d) return;
      got.push_back(text_of(d->payload()));
      if (c.ack(*d) != Status::ok) ++failures;
    }
  });
  for (auto& t : publishers) t.join();
  consumer.join();
  EXPECT_EQ(failures.load(), 0) << "a publish failed or returned before it was durable, or an ack failed";
  std::vector<std::string> want;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kEach; ++i) want.push_back("p" + std::to_string(t) + "-" + std::to_string(i));
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace ackring::testing
