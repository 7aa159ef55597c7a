// Hostile shared state outside the slots: group cursors (next, floor), lease
// words, member and group entries, the queue tail. None of it is covered by
// the header checksum, so any process with write access can scribble on it.
// The library may then return errors or nothing, but must not crash, read
// outside the mapping, hang, or hand out a message that does not verify.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "hostile_util.hpp"
#include "test_util.hpp"

namespace {

using namespace ackring;
using namespace ackring::hostile;
using namespace std::chrono_literals;
using ackring::testing::TempQueue;

constexpr std::uint32_t kCapacity = 16;
constexpr std::uint32_t kMaxMessage = 48;

QueueOptions small_options() {
  return {.capacity = kCapacity, .max_message_size = kMaxMessage, .max_deliveries = 3, .max_groups = 3,
          .max_members = 3, .max_producers = 2, .claim_timeout = Millis{1}};
}

std::string message(std::uint64_t i) { return "cursor test message " + std::to_string(i); }

std::set<std::string> publish(Queue& q, std::uint64_t n) {
  std::set<std::string> sent;
  auto p = q.producer();
  for (std::uint64_t i = 0; i < n; ++i) {
    EXPECT_TRUE(p.try_publish(message(i)).ok());
    sent.insert(message(i));
  }
  return sent;
}

// A fresh queue with group "g" (its member c) and n messages published, and
// its layout to find things in the file by: where most of the damage below
// starts. Tests take it apart: auto& [tq, q, c, sent, l] = published;
struct PublishedQueue {
  explicit PublishedQueue(std::uint64_t n, const ConsumerOptions& co = {})
      : q(Queue::create(tq.path(), small_options())), c(q.consumer("g", co)), sent(publish(q, n)), l(read_layout(tq.path())) {}
  TempQueue tq;
  Queue q;
  Consumer c;
  std::set<std::string> sent;
  Layout l;
};

// Exercises a consumer for a bounded number of steps with a mix of acks,
// nacks, extends, rejects and stale receipts; checks that every delivery is
// one of the published messages, byte for byte.
void exercise(Consumer& c, const std::set<std::string>& sent, std::mt19937_64& rng, int steps = 60) {
  std::vector<Receipt> held;
  for (int i = 0; i < steps; ++i) {
    Delivery batch[3];
    std::size_t n = 0;
    if (i % 2 == 0) {
      n = c.try_receive_batch(batch);
    } else if (auto d = c.try_receive()) {
      batch[0] = *d;
      n = 1;
    }
    for (std::size_t k = 0; k < n; ++k) {
      ASSERT_LE(batch[k].payload().size(), kMaxMessage);
      EXPECT_TRUE(sent.contains(text_of(batch[k]))) << "delivered a message nobody published: '"
                                                    << text_of(batch[k]) << "'";
      held.push_back(batch[k].receipt());
    }
    if (!held.empty()) {
      const Receipt r = held[rng() % held.size()];
      switch (rng() % 6) {
        case 0: (void)c.ack(r); break;
        case 1: (void)c.nack(r); break;
        case 2: (void)c.extend(r, Millis{1}); break;
        case 3: (void)c.reject(r); break;
        case 4: (void)c.ack(Receipt{r.seq + kCapacity, r.deliveries}); break;  // stale lap
        default: (void)c.ack(Receipt{rng(), static_cast<std::uint32_t>(rng())}); break;  // garbage receipt
      }
    }
    if (i % 10 == 9) std::this_thread::sleep_for(1ms);  // let 1 ms leases expire
  }
  for (const Receipt& r : held) (void)c.ack(r);
}

// The read-only operator calls on a damaged file: they must stay in bounds
// and finish; verify should have something to say.
void inspect(const Queue& q) {
  (void)q.stats();
  (void)q.group_names();
  for (const PeekedMessage& m : q.peek(0, 64)) EXPECT_LE(m.payload.size(), kMaxMessage);
  (void)q.peek(~0ull - 4, 8);
  (void)q.verify();
}

bool mentions(const VerifyReport& r, const std::string& word) {
  for (const auto& line : r.problems)
    if (line.find(word) != std::string::npos) return true;
  return false;
}

// Runs `body` in a child process and fails if it does not finish in time,
// so that a hang in the library is reported as a failure instead of
// blocking the test run. The child's own assertions go to its exit code.
::testing::AssertionResult finishes_within(std::chrono::seconds limit, void (*body)(const std::string&),
                                           const std::string& arg) {
  const pid_t child = ::fork();
  if (child < 0) return ::testing::AssertionFailure() << "fork failed";
  if (child == 0) {
    body(arg);
    ::_exit(0);
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (::waitpid(child, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      return ::testing::AssertionFailure() << "still running after " << limit.count() << " s (hang)";
    }
    std::this_thread::sleep_for(5ms);
  }
  if (WIFSIGNALED(status)) return ::testing::AssertionFailure() << "killed by signal " << WTERMSIG(status);
  if (WEXITSTATUS(status) != 0) return ::testing::AssertionFailure() << "exit status " << WEXITSTATUS(status);
  return ::testing::AssertionSuccess();
}

TEST(HostileCursors, should_deliver_nothing_and_not_crash_when_next_is_far_beyond_the_tail) {
  for (const std::uint64_t next : std::initializer_list<std::uint64_t>{17, std::uint64_t{1} << 40, detail::kSeqMask, ~0ull - 2}) {
    SCOPED_TRACE("next = " + std::to_string(next));
    PublishedQueue published(5);
    auto& [tq, q, c, sent, l] = published;
    const std::uint32_t g = group_index(tq.path(), l, "g");
    ASSERT_NE(g, ~0u);
    poke<std::uint64_t>(tq.path(), next_offset(l, g), next);
    std::mt19937_64 rng(kSeed + 20);
    exercise(c, sent, rng);
    EXPECT_EQ(c.ack(Receipt{0, 1}), Status::lease_lost);
    EXPECT_EQ(c.nack(Receipt{next, 1}), Status::lease_lost);
    inspect(q);
    const VerifyReport v = q.verify();
    EXPECT_TRUE(mentions(v, "next")) << "verify did not report next past the tail";
    const auto s = q.stats();
    ASSERT_EQ(s.groups.size(), 1u);
    EXPECT_LE(s.groups[0].in_flight, kCapacity);
  }
}

TEST(HostileCursors, should_not_crash_when_the_floor_is_above_next) {
  for (const std::uint64_t floor : std::initializer_list<std::uint64_t>{4, 100, detail::kSeqMask, ~0ull}) {
    SCOPED_TRACE("floor = " + std::to_string(floor));
    PublishedQueue published(6);
    auto& [tq, q, c, sent, l] = published;
    const std::uint32_t g = group_index(tq.path(), l, "g");
    poke<std::uint64_t>(tq.path(), floor_offset(l, g), floor);
    std::mt19937_64 rng(kSeed + 21);
    EXPECT_TRUE(mentions(q.verify(), "floor")) << "verify did not report the floor past next";
    exercise(c, sent, rng);
    inspect(q);
    const auto s = q.stats();
    ASSERT_EQ(s.groups.size(), 1u);
    EXPECT_LE(s.groups[0].in_flight, kCapacity);
  }
}

TEST(HostileCursors, should_scan_at_most_one_ring_when_next_is_far_above_the_floor) {
  PublishedQueue published(6, {.lease = Millis{1}});
  auto& [tq, q, c, sent, l] = published;
  const std::uint32_t g = group_index(tq.path(), l, "g");
  poke<std::uint64_t>(tq.path(), floor_offset(l, g), 0);
  poke<std::uint64_t>(tq.path(), next_offset(l, g), std::uint64_t{1} << 50);
  std::mt19937_64 rng(kSeed + 22);
  const auto start = std::chrono::steady_clock::now();
  exercise(c, sent, rng);
  inspect(q);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(HostileCursors, should_never_deliver_unverified_data_whatever_the_lease_words_hold) {
  std::mt19937_64 rng(kSeed + 23);
  for (int round = 0; round < 30; ++round) {
    SCOPED_TRACE("seed " + std::to_string(kSeed + 23) + " round " + std::to_string(round));
    TempQueue tq;
    auto q = Queue::create(tq.path(), small_options());
    auto c = q.consumer("g", {.lease = Millis{1}});
    auto c2 = q.consumer("g", {.lease = Millis{1}});
    auto sent = publish(q, 12);
    // Take a few, so some words are leased for real before the scribbling.
    for (int i = 0; i < 3; ++i) (void)c.try_receive();
    const Layout l = read_layout(tq.path());
    const std::uint32_t g = group_index(tq.path(), l, "g");
    for (std::uint64_t s = 0; s < kCapacity; ++s) {
      std::uint64_t w = rng();
      if (round % 3 == 1) {
        // Plausible words: right generation, random state/owner/deliveries/deadline.
        w = (w & ~(0x3fffull << 48));
      }
      poke<std::uint64_t>(tq.path(), lease_offset(l, g, s), w);
    }
    exercise(c, sent, rng);
    exercise(c2, sent, rng);
    inspect(q);
    const auto st = q.stats();
    ASSERT_EQ(st.groups.size(), 1u);
    EXPECT_LE(st.groups[0].in_flight, kCapacity);
  }
}

TEST(HostileCursors, should_not_crash_when_group_and_member_entries_hold_random_bytes) {
  std::mt19937_64 rng(kSeed + 24);
  for (int round = 0; round < 30; ++round) {
    SCOPED_TRACE("seed " + std::to_string(kSeed + 24) + " round " + std::to_string(round));
    TempQueue tq;
    auto q = Queue::create(tq.path(), small_options());
    q.create_group("a");
    q.create_group("b", {.overflow = OverflowPolicy::drop});
    auto sent = publish(q, 10);
    const Layout l = read_layout(tq.path());
    // Scribble over the whole groups region (entries, cursors, counters,
    // members), but keep each entry's state word so some groups stay active.
    auto junk = random_bytes(rng, std::uint64_t{l.max_groups} * l.group_stride);
    for (std::uint32_t g = 0; g < l.max_groups; ++g) {
      const std::uint32_t state = round % 2 == 0 ? static_cast<std::uint32_t>(detail::GroupState::active)
                                                 : static_cast<std::uint32_t>(rng() % 4);
      std::memcpy(junk.data() + std::uint64_t{g} * l.group_stride, &state, sizeof state);
      if (rng() % 2 == 0) {  // a NUL-less name
        std::memset(junk.data() + std::uint64_t{g} * l.group_stride + offsetof(detail::GroupEntry, name), 'x',
                    detail::kGroupNameMax + 1);
      }
    }
    patch(tq.path(), l.groups_offset, junk.data(), junk.size());
    inspect(q);
    for (const std::string name : {"a", "b", "new"}) {
      try {
        auto c = q.consumer(name, {.lease = Millis{1}});
        exercise(c, sent, rng, 20);
      } catch (const Error& e) {
        // A full member table of garbage pids, or no free group: an answer.
        EXPECT_TRUE(e.code() == ErrorCode::resource_exhausted || e.code() == ErrorCode::not_found) << e.what();
      }
    }
    inspect(q);
    try {
      (void)q.purge();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::not_found) << e.what();
    }
    (void)q.remove_group("a");
  }
}

TEST(HostileCursors, should_not_crash_when_the_tail_is_garbage) {
  for (const std::uint64_t tail : std::initializer_list<std::uint64_t>{0, 3, std::uint64_t{1} << 40, ~0ull}) {
    SCOPED_TRACE("tail = " + std::to_string(tail));
    PublishedQueue published(6, {.lease = Millis{1}});
    auto& [tq, q, c, sent, l] = published;
    poke<std::uint64_t>(tq.path(), tail_offset(), tail);
    std::mt19937_64 rng(kSeed + 25);
    exercise(c, sent, rng);
    inspect(q);
    const auto s = q.stats();
    EXPECT_EQ(s.tail, tail);
  }
}

// purge pushes every group to the tail; with the tail and cursors scribbled
// far apart it must settle at most one ring of lease words per group.
TEST(HostileCursors, should_purge_in_bounded_time_when_the_tail_is_far_from_the_cursors) {
  const std::uint64_t cases[][3] = {// tail, floor, next
                                    {std::uint64_t{1} << 40, 0, 0},
                                    {std::uint64_t{1} << 40, ~0ull - 3, 5},
                                    {~0ull, 0, ~0ull},
                                    {5, std::uint64_t{1} << 50, 0}};
  for (const auto& c : cases) {
    SCOPED_TRACE("tail " + std::to_string(c[0]) + " floor " + std::to_string(c[1]) + " next " + std::to_string(c[2]));
    TempQueue tq;
    {
      auto q = Queue::create(tq.path(), small_options());
      q.create_group("g");
      q.create_group("d", {.overflow = OverflowPolicy::drop});
      (void)publish(q, 4);
      const Layout l = read_layout(tq.path());
      poke<std::uint64_t>(tq.path(), tail_offset(), c[0]);
      for (const char* name : {"g", "d"}) {
        const std::uint32_t g = group_index(tq.path(), l, name);
        poke<std::uint64_t>(tq.path(), floor_offset(l, g), c[1]);
        poke<std::uint64_t>(tq.path(), next_offset(l, g), c[2]);
      }
    }
    EXPECT_TRUE(finishes_within(10s, [](const std::string& path) {
      auto q = Queue::open(path);
      const std::uint64_t purged = q.purge();
      if (purged > 2 * kCapacity) ::_exit(3);  // at most one ring per group
      inspect(q);
    }, tq.path()));
  }
}

// A producer that finds the ring full pushes drop-policy groups forward. With
// the drop group's floor scribbled far below a scribbled tail, that push must
// still be bounded (at most one ring of lease words), not walk every seq in
// between.
TEST(HostileCursors, should_not_hang_a_producer_when_a_drop_group_floor_is_far_below_the_tail) {
  TempQueue tq;
  {
    auto q = Queue::create(tq.path(), small_options());
    q.create_group("d", {.overflow = OverflowPolicy::drop});
    (void)publish(q, kCapacity);  // full ring: the next publish must make room
    const Layout l = read_layout(tq.path());
    const std::uint32_t g = group_index(tq.path(), l, "d");
    poke<std::uint64_t>(tq.path(), tail_offset(), std::uint64_t{1} << 40);
    poke<std::uint64_t>(tq.path(), floor_offset(l, g), 0);
    poke<std::uint64_t>(tq.path(), next_offset(l, g), 0);
  }
  EXPECT_TRUE(finishes_within(10s, [](const std::string& path) {
    auto q = Queue::open(path);
    auto p = q.producer();
    for (int i = 0; i < 4; ++i) (void)p.try_publish("after the scribble");
    (void)q.stats();
  }, tq.path()));
}

TEST(HostileCursors, should_not_crash_a_producer_when_slot_markers_and_floors_are_garbage) {
  std::mt19937_64 rng(kSeed + 26);
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE("seed " + std::to_string(kSeed + 26) + " round " + std::to_string(round));
    PublishedQueue published(8, {.lease = Millis{1}});
    auto& [tq, q, c, sent, l] = published;
    for (std::uint64_t s = 0; s < kCapacity; ++s)
      if (rng() % 2) poke<std::uint64_t>(tq.path(), slot_offset(l, s), rng() & ~(0xffull << 56));
    const std::uint32_t g = group_index(tq.path(), l, "g");
    poke<std::uint64_t>(tq.path(), floor_offset(l, g), rng() % 64);
    auto p = q.producer();
    for (int i = 0; i < 20; ++i) {
      const auto r = p.try_publish(message(100 + i));
      if (r.ok()) sent.insert(message(100 + i));
    }
    exercise(c, sent, rng);
    (void)q.stats();
  }
}

}  // namespace
