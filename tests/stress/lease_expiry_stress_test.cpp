// Members with 2 ms leases let some of the messages they receive run out
// their lease untouched; other members take them over and ack them; a
// producer keeps refilling a small ring, so the slots of those messages are
// soon rewritten. Every message must be acked exactly once.
//
// Which leases are left to expire does not depend on the schedule: every
// member abandons the first delivery of every kAbandonFirst-th seq and the
// second delivery of every kAbandonSecond-th, whoever receives it, so
// exactly the same messages are abandoned in every run (and each of them is
// checked to have been acked as a later delivery). Only the member that
// happens to get a message, and which extra leases run out because a member
// was descheduled before it extended one, vary.
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
// Deliberately abandoned: the first delivery of seqs divisible by
// kAbandonFirst and the second delivery of seqs divisible by kAbandonSecond
// (so both new and taken-over messages run out untouched).
constexpr std::uint64_t kAbandonFirst = 16;
constexpr std::uint64_t kAbandonSecond = 64;
static_assert(kAbandonSecond % kAbandonFirst == 0, "a second delivery is abandoned only if the first was");

// How many times the message of this seq is abandoned on purpose.
constexpr std::uint32_t abandonments(std::uint64_t seq) {
  return (seq % kAbandonFirst == 0 ? 1u : 0u) + (seq % kAbandonSecond == 0 ? 1u : 0u);
}
// Decided from the seq and the delivery count only: never from the payload,
// which must not be read before extend has made the lease safe.
constexpr bool abandon(std::uint64_t seq, std::uint32_t deliveries) {
  return (deliveries == 1 && seq % kAbandonFirst == 0) || (deliveries == 2 && seq % kAbandonSecond == 0);
}

TEST(LeaseExpiryStress, should_take_over_and_ack_once_messages_whose_lease_ran_out_untouched_while_slots_are_reused) {
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
  std::unique_ptr<std::atomic<std::uint32_t>[]> acked_delivery(new std::atomic<std::uint32_t>[kMessages]);
  for (std::uint32_t i = 0; i < kMessages; ++i) acks[i].store(0), acked_delivery[i].store(0);
  std::atomic<std::uint32_t> acked{0}, abandoned{0}, errors{0}, lost_before_extend{0};
  std::atomic<bool> stop{false};

  auto id_of = [](const Delivery& d) -> std::uint32_t {
    std::uint32_t id = ~0u;
    if (d.payload().size() == 64) std::memcpy(&id, d.payload().data(), 4);
    return id;
  };
  auto record = [&](std::uint32_t id, const Delivery& d) {
    if (id >= kMessages || id != d.seq() || acks[id].fetch_add(1) != 0) errors.fetch_add(1);
    else acked_delivery[id].store(d.deliveries());
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
  // Four members with 2 ms leases compete for new messages: three take
  // batches of up to 4 (so members often help each other move the group's
  // dispatch cursor), one takes them one by one. Each abandons what the
  // rule says and takes on the rest.
  std::vector<std::thread> members;
  for (int t = 0; t < 4; ++t) {
    members.emplace_back([&, t] {
      ConsumerOptions co;
      co.create_group = false;
      co.lease = 2ms;
      co.spin = 0us;
      auto c = q.consumer("g", co);
      std::mt19937_64 rng(seed + static_cast<std::uint64_t>(t));
      Delivery batch[4];
      while (!stop.load() && acked.load() < kMessages) {
        const std::size_t n = c.receive_batch(std::span(batch, t == 3 ? 1 : 1 + rng() % 4), 5ms);
        for (std::size_t i = 0; i < n; ++i) {
          const Delivery& d = batch[i];
          if (abandon(d.seq(), d.deliveries())) {
            abandoned.fetch_add(1);
            continue;  // never touched again: the lease runs out
          }
          // Take the message on for real first: extend (fails if the 2 ms
          // lease already ran out and was taken over), then read it, then ack.
          if (c.extend(d.receipt(), 10s) != Status::ok) {
            lost_before_extend.fetch_add(1);
            continue;
          }
          const std::uint32_t id = id_of(d);
          if (c.ack(d) == Status::ok) record(id, d);
          else errors.fetch_add(1);  // a 10 s lease cannot be lost here
        }
      }
    });
  }

  const auto start = std::chrono::steady_clock::now();
  while (acked.load() < kMessages && std::chrono::steady_clock::now() - start < 60s) std::this_thread::sleep_for(5ms);
  stop.store(true);
  producer.join();
  for (auto& t : members) t.join();

  std::uint32_t expected_abandoned = 0;
  for (std::uint32_t i = 0; i < kMessages; ++i) expected_abandoned += abandonments(i);
  std::printf("%u acked, %u abandoned to expiry on purpose, %u more ran out before their extend, %.2f s\n",
              acked.load(), abandoned.load(), lost_before_extend.load(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  ASSERT_EQ(acked.load(), kMessages) << "not every message was acked within 60 s (seed " << seed << ")";
  EXPECT_EQ(errors.load(), 0u) << "a message was acked twice, under another seq, or a held lease was lost (seed "
                               << seed << ")";
  for (std::uint32_t i = 0; i < kMessages; ++i) ASSERT_EQ(acks[i].load(), 1u) << "message " << i;
  EXPECT_EQ(abandoned.load(), expected_abandoned) << "the abandonment rule is deterministic";
  // Each abandoned message was taken over after its lease ran out and acked
  // as a later delivery (later still if a taker lost it before extending).
  for (std::uint32_t i = 0; i < kMessages; ++i)
    ASSERT_GE(acked_delivery[i].load(), 1 + abandonments(i)) << "message " << i << " (seed " << seed << ")";
  const auto g = group_stats(q, "g");
  EXPECT_GE(g.redelivered, expected_abandoned);
  EXPECT_EQ(g.floor, kMessages);
  EXPECT_EQ(g.corrupt_skipped, 0u);
  EXPECT_EQ(g.dead_lettered, 0u);
}

}  // namespace
}  // namespace ackring::testing
