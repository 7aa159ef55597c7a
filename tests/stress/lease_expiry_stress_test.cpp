// Members with 2 ms leases let many of the messages they receive run out
// their lease untouched; other members take them over and ack them; a
// producer keeps refilling a small ring, so the slots of those messages are
// soon rewritten. Every message must be acked exactly once.
//
// This is the narrowest form of the "lease expiry" part of the threads
// stress test. Under ThreadSanitizer it also checks that what a receive
// reads from the slot (Consumer::fill: header fields and the payload it
// checksums) is ordered before the slot is rewritten when the receiver never
// touches the lease again: nothing but the lease's deadline separates the
// two, and a deadline is not a happens-before edge. Prints its seed;
// ACKRING_SEED=<n> runs it again.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "ackring/ackring.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

#if defined(__SANITIZE_THREAD__)
constexpr std::uint32_t kMessages = 20000;  // more chances for ThreadSanitizer to see an interleaving
#else
constexpr std::uint32_t kMessages = 10000;
#endif

TEST(LeaseExpiryStress, messages_whose_lease_ran_out_untouched_are_taken_over_and_acked_once_while_slots_are_reused) {
  std::uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("ACKRING_SEED"); s != nullptr && *s != '\0') seed = std::strtoull(s, nullptr, 0);
  std::printf("ACKRING_SEED=%" PRIu64 "\n", seed);

  TempQueue tq;
  QueueOptions qo;
  qo.capacity = 8;
  qo.max_message_size = 64;
  qo.max_deliveries = 50;
  auto q = Queue::create(tq.path(), qo);
  q.create_group("g");

  std::unique_ptr<std::atomic<std::uint32_t>[]> acks(new std::atomic<std::uint32_t>[kMessages]);
  for (std::uint32_t i = 0; i < kMessages; ++i) acks[i].store(0);
  std::atomic<std::uint32_t> acked{0}, abandoned{0}, errors{0};
  std::atomic<bool> stop{false};

  auto id_of = [](const Delivery& d) -> std::uint32_t {
    std::uint32_t id = ~0u;
    if (d.payload().size() == 64) std::memcpy(&id, d.payload().data(), 4);
    return id;
  };
  auto record = [&](std::uint32_t id) {
    if (id >= kMessages || acks[id].fetch_add(1) != 0) errors.fetch_add(1);
    acked.fetch_add(1);
  };

  std::thread producer([&] {
    auto p = q.producer();
    std::vector<std::byte> buf(64);
    for (std::uint32_t i = 0; i < kMessages && !stop.load(); ++i) {
      std::memcpy(buf.data(), &i, 4);
      std::memset(buf.data() + 4, static_cast<int>(i & 0xff), 60);
      while (!stop.load() && !p.publish(Bytes(buf), 100ms).ok()) {
      }
    }
  });
  // Abandoners compete for new messages (batches of up to 4, so members
  // often help each other move the group's dispatch cursor) and abandon
  // first and second deliveries with probability 1/2 (so both new messages
  // and taken-over ones are abandoned); they take on the rest.
  std::vector<std::thread> abandoners;
  for (int t = 0; t < 3; ++t) {
    abandoners.emplace_back([&, t] {
      ConsumerOptions co;
      co.create_group = false;
      co.lease = 2ms;
      co.spin = 0us;
      auto c = q.consumer("g", co);
      std::mt19937_64 rng(seed + static_cast<std::uint64_t>(t));
      Delivery batch[4];
      while (!stop.load() && acked.load() < kMessages) {
        const std::size_t n = c.receive_batch(std::span(batch, 1 + rng() % 4), 5ms);
        for (std::size_t i = 0; i < n; ++i) {
          const Delivery& d = batch[i];
          if (d.deliveries() <= 2 && (rng() & 1) != 0) {
            abandoned.fetch_add(1);
            continue;  // never touched again: the lease runs out
          }
          // Take the message on for real first: extend (fails if the 2 ms
          // lease already ran out and was taken over), then read it, then ack.
          if (c.extend(d.receipt(), 10s) != Status::ok) continue;
          const std::uint32_t id = id_of(d);
          if (c.ack(d) == Status::ok) record(id);
          else errors.fetch_add(1);
        }
      }
    });
  }
  std::thread rescuer([&] {
    ConsumerOptions co;
    co.create_group = false;
    co.lease = 10s;
    co.spin = 0us;
    auto c = q.consumer("g", co);
    while (!stop.load() && acked.load() < kMessages) {
      auto d = c.receive(5ms);
      if (!d) continue;
      const std::uint32_t id = id_of(*d);
      if (c.ack(*d) == Status::ok) record(id);
      else errors.fetch_add(1);  // a 10 s lease cannot be lost here
    }
  });

  const auto start = std::chrono::steady_clock::now();
  while (acked.load() < kMessages && std::chrono::steady_clock::now() - start < 60s) std::this_thread::sleep_for(5ms);
  stop.store(true);
  producer.join();
  for (auto& t : abandoners) t.join();
  rescuer.join();

  std::printf("%u acked, %u abandoned to expiry, %.2f s\n", acked.load(), abandoned.load(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  ASSERT_EQ(acked.load(), kMessages) << "not every message was acked within 60 s (seed " << seed << ")";
  EXPECT_EQ(errors.load(), 0u) << "a message was acked twice or a held lease was lost (seed " << seed << ")";
  for (std::uint32_t i = 0; i < kMessages; ++i) ASSERT_EQ(acks[i].load(), 1u) << "message " << i;
  EXPECT_GT(abandoned.load(), kMessages / 50) << "too few leases were left to expire to mean much";
  const auto g = group_stats(q, "g");
  EXPECT_EQ(g.floor, kMessages);
  EXPECT_EQ(g.corrupt_skipped, 0u);
  EXPECT_EQ(g.dead_lettered, 0u);
}

}  // namespace
}  // namespace ackring::testing
