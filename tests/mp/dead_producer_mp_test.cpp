// Producers that die between claim and commit (invariant 4 of DESIGN.md):
// the slot they leave is detected (no live producer's in-flight word holds
// it, or the claim timed out) and aborted; consumers skip it, never deliver
// it, and deliver what follows. And a producer SIGKILLed at a random point of
// a publish loop loses nothing whose publish returned ok (invariant 1).
//
// The release library has no hook to stop a producer between claim and
// commit, so a child registers as a producer, does the claim itself through
// the raw file (RawQueueFile repeats producer.cpp's steps on the documented
// layout) and then dies, or stops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cinttypes>
#include <map>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "ackring/ackring.hpp"
#include "mp_util.hpp"
#include "process_util.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

constexpr std::uint32_t kMaxMessageSize = 64;

struct Control {
  std::atomic<std::uint32_t> stop{0};
};

// Publishes `count` messages of producer `producer` in a child and waits for it.
void publish_in_child(const std::string& path, std::uint32_t producer, std::uint32_t first, std::uint32_t count) {
  Child c = fork_child([&] {
    auto q = Queue::open(path);
    auto p = q.producer();
    std::vector<std::byte> buf;
    for (std::uint32_t i = first; i < first + count; ++i) {
      make_payload({producer, i}, kMaxMessageSize, buf);
      ACKRING_CHILD_CHECK(p.publish(Bytes(buf), 5s).ok(), 10);
    }
    return 0;
  });
  ASSERT_TRUE(c.wait_for(10s)) << "producer child hung";
  ASSERT_TRUE(c.exited_ok()) << c.describe();
}

// Registers a producer in a child, claims `k` seqs on the tail as it (the
// in-flight word, then the tail CAS), and raises `sig`: SIGKILL, a producer
// dead between claim and commit, or SIGSTOP, one stalled there. Returns the
// first claimed seq.
std::uint64_t claim_in_child(const std::string& path, std::uint64_t k, int sig, Child& out) {
  SharedBlock<std::atomic<std::uint64_t>> first;
  first->store(~0ull);
  out = fork_child([&] {
    auto q = Queue::open(path);
    auto p = q.producer();
    RawQueueFile raw(path);
    const auto seq = raw.claim_on_tail(k, p.index());
    ACKRING_CHILD_CHECK(seq.has_value(), 30);
    first->store(*seq, std::memory_order_release);
    ::raise(sig);
    return 32;
  });
  // acquire: pairs with the child's release store, made before it raised the
  // signal. (Not reaped here: a caller may want the dead child as a zombie.)
  const std::uint64_t deadline = now_ns() + 10'000'000'000ull;
  while (first->load(std::memory_order_acquire) == ~0ull && now_ns() < deadline) sleep_ms(1);
  return first->load(std::memory_order_acquire);
}

// claim_in_child with SIGKILL; the child is left dead but unreaped (a
// zombie) unless `reap`.
std::uint64_t claim_and_die(const std::string& path, std::uint64_t k, bool reap, Child& out) {
  const std::uint64_t first = claim_in_child(path, k, SIGKILL, out);
  EXPECT_TRUE(out.wait_dead_unreaped(10s));
  if (reap) {
    EXPECT_TRUE(out.wait_for(1s));
    EXPECT_TRUE(out.killed_by(SIGKILL)) << out.describe();
  }
  return first;
}

struct Received {
  std::uint64_t seq;
  MessageId id;
  std::uint64_t time_ns;
};

// Consumes `expected` messages of `group` in a child, acking each; logs them.
Child consume_in_child(const std::string& path, const std::string& group, std::uint64_t expected, const RecordLog& log,
                       std::chrono::milliseconds budget) {
  return fork_child([&path, group, expected, &log, budget] {
    auto q = Queue::open(path);
    ConsumerOptions co;
    co.create_group = false;
    co.lease = 30s;
    auto c = q.consumer(group, co);
    const std::uint64_t deadline = now_ns() + static_cast<std::uint64_t>(budget.count()) * 1'000'000ull;
    for (std::uint64_t got = 0; got < expected;) {
      if (now_ns() > deadline) return 40;
      auto d = c.receive(50ms);
      if (!d) continue;
      const auto id = check_payload(d->payload(), kMaxMessageSize);
      if (!id) report_malformed(*d);
      ACKRING_CHILD_CHECK(id.has_value(), 41);
      log.append(Received{d->seq(), *id, now_ns()});
      ACKRING_CHILD_CHECK(c.ack(*d) == Status::ok, 42);
      ++got;
    }
    // Nothing more may come: the aborted slots must never be delivered.
    if (auto extra = c.receive(100ms)) {
      log.append(Received{extra->seq(), {~0u, ~0u}, now_ns()});
      return 43;
    }
    return 0;
  });
}

TEST(DeadProducer, should_skip_a_slot_claimed_by_a_producer_that_died_without_waiting_for_the_claim_timeout) {
  TempQueue tq;
  QueueOptions qo;
  qo.capacity = 64;
  qo.max_message_size = kMaxMessageSize;
  qo.claim_timeout = 30s;  // only dead-claimer detection can make this test pass in time
  auto q = Queue::create(tq.path(), qo);
  q.create_group("a");
  q.create_group("b");

  publish_in_child(tq.path(), 0, 0, 5);
  Child reaped_claimer;
  const std::uint64_t dead1 = claim_and_die(tq.path(), 1, /*reap=*/true, reaped_claimer);
  publish_in_child(tq.path(), 1, 0, 5);
  Child zombie_claimer;
  const std::uint64_t dead2 = claim_and_die(tq.path(), 1, /*reap=*/false, zombie_claimer);
  publish_in_child(tq.path(), 2, 0, 5);
  ASSERT_EQ(dead1, 5u);
  ASSERT_EQ(dead2, 11u);
  ASSERT_EQ(q.stats().tail, 17u);
  ASSERT_EQ(process_state(zombie_claimer.pid()), 'Z');
  EXPECT_EQ(q.verify().dead_claims, 2u) << "verify names the claims no live producer holds";

  const std::uint64_t start = now_ns();
  RecordLog log_a, log_b;
  Child ca = consume_in_child(tq.path(), "a", 15, log_a, 20s);
  Child cb = consume_in_child(tq.path(), "b", 15, log_b, 20s);
  ASSERT_TRUE(ca.wait_for(25s));
  ASSERT_TRUE(cb.wait_for(25s));
  const double elapsed_ms = static_cast<double>(now_ns() - start) / 1e6;
  EXPECT_TRUE(ca.exited_ok()) << ca.describe();
  EXPECT_TRUE(cb.exited_ok()) << cb.describe();
  std::printf("both groups got past two dead claims in %.1f ms (claim timeout 30 s)\n", elapsed_ms);
  EXPECT_LT(elapsed_ms, 10'000.0) << "the dead claims were not detected as dead (only the 30 s timeout would do it)";

  for (const RecordLog* log : {&log_a, &log_b}) {
    std::set<std::uint64_t> keys;
    std::uint64_t last_seq = 0;
    for (const auto& r : log->read_all<Received>()) {
      EXPECT_NE(r.seq, dead1);
      EXPECT_NE(r.seq, dead2);
      EXPECT_TRUE(keys.insert(key_of(r.id)).second) << "delivered twice: seq " << r.seq;
      EXPECT_GE(r.seq, last_seq) << "a single member receives in seq order";
      last_seq = r.seq;
    }
    EXPECT_EQ(keys.size(), 15u);
  }
  const QueueStats s = q.stats();
  EXPECT_EQ(s.aborted, 2u);
  for (const auto& g : s.groups) {
    EXPECT_EQ(g.aborted_skipped, 2u) << g.name;
    EXPECT_EQ(g.floor, 17u) << g.name;
  }
  EXPECT_EQ(q.stats().published, 15u);
  // The zombie stayed a zombie throughout: it was judged dead as a zombie.
  EXPECT_EQ(process_state(zombie_claimer.pid()), 'Z');
}

// A claimer that is alive but stopped (SIGSTOP) between claim and commit
// holds its claim: nobody can tell a stall from a slow publish, so consumers
// skip it only after claim_timeout, and not before.
TEST(DeadProducer, should_abort_the_claim_of_a_stopped_producer_after_the_claim_timeout_and_not_before) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), {.capacity = 64, .max_message_size = kMaxMessageSize, .claim_timeout = 200ms});
  q.create_group("a");
  q.create_group("b");

  publish_in_child(tq.path(), 0, 0, 3);
  Child claimer;
  const std::uint64_t stalled = claim_in_child(tq.path(), 1, SIGSTOP, claimer);
  ASSERT_EQ(stalled, 3u);
  ASSERT_EQ(process_state(claimer.pid()), 'T');
  EXPECT_EQ(q.verify().dead_claims, 0u) << "a stopped producer's claim is not a dead one";
  publish_in_child(tq.path(), 1, 0, 4);

  RecordLog log_a, log_b;
  Child ca = consume_in_child(tq.path(), "a", 7, log_a, 20s);
  Child cb = consume_in_child(tq.path(), "b", 7, log_b, 20s);
  ASSERT_TRUE(ca.wait_for(25s));
  ASSERT_TRUE(cb.wait_for(25s));
  EXPECT_TRUE(ca.exited_ok()) << ca.describe();
  EXPECT_TRUE(cb.exited_ok()) << cb.describe();
  EXPECT_EQ(process_state(claimer.pid()), 'T') << "the claimer must stay stopped (alive) throughout";
  claimer.kill_and_reap();
  // Seqs 0..2 come at once; seq 4 only after a consumer has watched the
  // stalled head for claim_timeout. The abort is shared: the group that met
  // the gap first aborts it for both, so the clock starts at the first
  // group's arrival at the gap.
  std::uint64_t reached_gap = ~0ull, past_gap = ~0ull;
  for (const RecordLog* log : {&log_a, &log_b}) {
    const auto rs = log->read_all<Received>();
    ASSERT_EQ(rs.size(), 7u);
    for (const auto& r : rs) EXPECT_NE(r.seq, stalled);
    ASSERT_EQ(rs[2].seq, 2u);
    ASSERT_EQ(rs[3].seq, 4u);
    reached_gap = std::min(reached_gap, rs[2].time_ns);
    past_gap = std::min(past_gap, rs[3].time_ns);
  }
  const double gap_ms = static_cast<double>(past_gap - reached_gap) / 1e6;
  std::printf("a stopped producer's claim skipped after %.1f ms (claim timeout 200 ms)\n", gap_ms);
  EXPECT_GE(gap_ms, 180.0) << "a live producer's claim was aborted before the claim timeout";
  EXPECT_LT(gap_ms, 3000.0);
  const QueueStats s = q.stats();
  EXPECT_EQ(s.aborted, 1u);
  for (const auto& g : s.groups) {
    EXPECT_EQ(g.aborted_skipped, 1u) << g.name;
    EXPECT_EQ(g.floor, 8u) << g.name;
  }
}

// Invariant 4 says a producer's death stops the others for at most its claim
// timeout. A producer that dies inside publish_batch leaves every slot of its
// claim uncommitted; its in-flight word shows them all dead at once, so they
// cost no timeout at all (the claim timeout here is 30 s).
TEST(DeadProducer, should_skip_every_slot_of_a_dead_batch_claim_at_once_without_waiting_for_the_claim_timeout) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), {.capacity = 64, .max_message_size = kMaxMessageSize, .claim_timeout = 30s});
  q.create_group("a");

  publish_in_child(tq.path(), 0, 0, 2);
  Child claimer;
  const std::uint64_t dead = claim_and_die(tq.path(), 8, /*reap=*/true, claimer);
  ASSERT_EQ(dead, 2u);
  publish_in_child(tq.path(), 1, 0, 3);

  RecordLog log;
  Child c = consume_in_child(tq.path(), "a", 5, log, 20s);
  ASSERT_TRUE(c.wait_for(25s));
  EXPECT_TRUE(c.exited_ok()) << c.describe();
  const auto rs = log.read_all<Received>();
  ASSERT_EQ(rs.size(), 5u);
  ASSERT_EQ(rs[1].seq, 1u);
  ASSERT_EQ(rs[2].seq, 10u);
  const double gap_ms = static_cast<double>(rs[2].time_ns - rs[1].time_ns) / 1e6;
  std::printf("8-slot dead batch skipped after %.1f ms (claim timeout 30 s)\n", gap_ms);
  EXPECT_LT(gap_ms, 10'000.0) << "the dead batch claim was not detected as dead (only the 30 s timeout would do it)";
  EXPECT_EQ(q.stats().aborted, 8u);
}

// ---- a producer SIGKILLed at a random moment of its publish loop ----------

struct Attempt {
  std::uint32_t first = 0;   // counter of the first message of the call
  std::uint32_t count = 0;   // messages in the call
  std::uint64_t seq = 0;     // when done: result seq
  std::uint32_t done = 0;    // 0: logged before the call, 1: after it returned ok
  std::uint32_t round = 0;
};

TEST(DeadProducer, should_lose_nothing_whose_publish_returned_ok_when_a_producer_is_killed_at_a_random_moment) {
  TempQueue tq;
  QueueOptions qo;
  qo.capacity = 32;  // small: producers also die while waiting for room
  qo.max_message_size = kMaxMessageSize;
  qo.claim_timeout = 400ms;
  auto q = Queue::create(tq.path(), qo);
  q.create_group("a");
  q.create_group("b");
  SharedBlock<Control> control;

  const std::uint32_t seed = 12345;
  std::mt19937 rng(seed);
  constexpr std::uint32_t kRounds = 24;

  // Consumers: one per group, alive throughout, logging every delivery.
  RecordLog consumer_logs[2];
  std::vector<Child> consumers;
  for (int g = 0; g < 2; ++g) {
    const RecordLog& log = consumer_logs[g];
    const std::string group = g == 0 ? "a" : "b";
    consumers.push_back(fork_child([&, group] {
      auto qq = Queue::open(tq.path());
      ConsumerOptions co;
      co.create_group = false;
      co.lease = 30s;
      auto c = qq.consumer(group, co);
      for (;;) {
        auto d = c.receive(20ms);
        if (!d) {
          if (control->stop.load(std::memory_order_acquire) != 0) return 0;
          continue;
        }
        const auto id = check_payload(d->payload(), kMaxMessageSize);
        if (!id) report_malformed(*d);
        ACKRING_CHILD_CHECK(id.has_value(), 50);
        ACKRING_CHILD_CHECK(d->deliveries() == 1, 51);
        log.append(Event{d->seq(), now_ns(), *id, d->deliveries(), 0, static_cast<std::uint8_t>(g), EventKind::received});
        ACKRING_CHILD_CHECK(c.ack(*d) == Status::ok, 52);
      }
    }));
  }

  std::vector<RecordLog> logs(kRounds);
  std::uint32_t killed = 0;
  for (std::uint32_t round = 0; round < kRounds; ++round) {
    const RecordLog& log = logs[round];
    const std::uint32_t child_seed = rng();
    Child p = fork_child([&, round, child_seed] {
      auto qq = Queue::open(tq.path());
      auto prod = qq.producer();
      std::mt19937 r(child_seed);
      std::vector<std::vector<std::byte>> bufs(4);
      std::vector<Bytes> views(4);
      for (std::uint32_t c = 0;;) {
        const std::uint32_t k = 1 + r() % 4;
        for (std::uint32_t i = 0; i < k; ++i) {
          make_payload({round, c + i}, kMaxMessageSize, bufs[i]);
          views[i] = Bytes(bufs[i]);
        }
        log.append(Attempt{c, k, 0, 0, round});
        const PublishResult res = k == 1 ? prod.publish(views[0], 10s) : prod.publish_batch(std::span(views.data(), k), 10s);
        ACKRING_CHILD_CHECK(res.ok(), 53);
        log.append(Attempt{c, k, res.seq, 1, round});
        c += k;
      }
      return 0;
    });
    sleep_ms(1 + rng() % 25);
    p.kill(SIGKILL);
    ASSERT_TRUE(p.wait_for(5s));
    if (p.killed_by(SIGKILL)) ++killed;
    else ADD_FAILURE() << "publishing child " << p.describe();
  }
  // A last producer that lives, so the tail moves past whatever the dead left.
  publish_in_child(tq.path(), kRounds, 0, 10);

  const std::uint64_t start = now_ms();
  bool settled = false;
  while (!settled && now_ms() - start < 30'000) {
    const QueueStats s = q.stats();
    settled = true;
    for (const auto& g : s.groups) settled = settled && g.floor == s.tail;
    if (!settled) sleep_ms(5);
  }
  control->stop.store(1, std::memory_order_release);
  for (auto& c : consumers) {
    ASSERT_TRUE(c.wait_for(10s));
    EXPECT_TRUE(c.exited_ok()) << c.describe();
  }
  const QueueStats s = q.stats();
  ASSERT_TRUE(settled) << "the groups did not get past what the killed producers left: tail " << s.tail
                       << ", floors " << s.groups[0].floor << " / " << s.groups[1].floor;

  // What the producers said: `ok` messages must be delivered; `attempted`
  // ones may be; nothing else may.
  std::set<std::uint64_t> ok, attempted;
  for (std::uint32_t i = 0; i < 10; ++i) ok.insert(key_of({kRounds, i}));
  attempted = ok;
  for (const auto& log : logs)
    for (const Attempt& a : log.read_all<Attempt>())
      for (std::uint32_t i = 0; i < a.count; ++i) {
        attempted.insert(key_of({a.round, a.first + i}));
        if (a.done) ok.insert(key_of({a.round, a.first + i}));
      }
  std::uint64_t delivered_unconfirmed = 0;
  for (int g = 0; g < 2; ++g) {
    std::set<std::uint64_t> got;
    for (const Event& e : consumer_logs[g].read_all<Event>()) {
      const std::uint64_t k = key_of(e.id);
      EXPECT_TRUE(got.insert(k).second) << "group " << g << ": delivered twice: " << e.id.producer << "/" << e.id.counter;
      EXPECT_TRUE(attempted.count(k)) << "group " << g << ": delivered a message nobody tried to publish";
      delivered_unconfirmed += !ok.count(k);
    }
    for (const std::uint64_t k : ok)
      EXPECT_TRUE(got.count(k)) << "group " << g << ": lost " << (k >> 32) << "/" << (k & 0xffffffff)
                                << " although its publish returned ok";
  }
  std::printf("%u producers killed; %zu publishes confirmed; %" PRIu64
              " deliveries of unconfirmed publishes; %" PRIu64 " claims aborted\n",
              killed, ok.size(), delivered_unconfirmed, s.aborted);
  for (const auto& g : s.groups) EXPECT_EQ(g.aborted_skipped, s.aborted) << g.name;
}

}  // namespace
}  // namespace ackring::testing
