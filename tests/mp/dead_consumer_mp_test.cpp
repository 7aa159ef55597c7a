// Consumers that die at awkward moments (invariant 4 of DESIGN.md: no
// process's death stops the others for longer than its lease/claim timeout).
// Leases here are 30 s, so anything that comes back within a few seconds
// came back because its holder was seen dead.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
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

void publish_in_child(const std::string& path, std::uint32_t producer, std::uint32_t count) {
  Child c = fork_child([&] {
    auto q = Queue::open(path);
    auto p = q.producer();
    std::vector<std::byte> buf;
    for (std::uint32_t i = 0; i < count; ++i) {
      make_payload({producer, i}, kMaxMessageSize, buf);
      ACKRING_CHILD_CHECK(p.publish(Bytes(buf), 5s).ok(), 10);
    }
    return 0;
  });
  ASSERT_TRUE(c.wait_for(10s)) << "producer child hung";
  ASSERT_TRUE(c.exited_ok()) << c.describe();
}

ConsumerOptions long_lease() {
  ConsumerOptions co;
  co.create_group = false;
  co.lease = 30s;
  return co;
}

struct Held {
  std::atomic<std::uint32_t> count{0};
  std::atomic<std::uint64_t> seqs[4]{};
  std::atomic<std::uint32_t> member{0};
  std::atomic<std::uint32_t> go{0};
};

TEST(DeadConsumer, should_count_a_killed_consumer_that_is_not_yet_reaped_as_dead_and_give_back_its_leases) {
  TempQueue tq;
  QueueOptions qo;
  qo.capacity = 16;
  qo.max_message_size = kMaxMessageSize;
  qo.max_members = 1;  // the next member can only join if the zombie's slot is reclaimed
  qo.default_lease = 30s;
  auto q = Queue::create(tq.path(), qo);
  q.create_group("g");
  publish_in_child(tq.path(), 0, 3);

  SharedBlock<Held> held;
  Child victim = fork_child([&] {
    auto qq = Queue::open(tq.path());
    auto c = qq.consumer("g", long_lease());
    Delivery batch[2];
    std::size_t n = 0;
    while (n < 2) n += c.receive_batch(std::span(batch + n, 2 - n), 1s);
    for (std::size_t i = 0; i < n; ++i) held->seqs[i].store(batch[i].seq());
    held->count.store(static_cast<std::uint32_t>(n), std::memory_order_release);
    ::raise(SIGKILL);  // holding two leases
    return 1;
  });
  ASSERT_TRUE(victim.wait_dead_unreaped(10s));
  ASSERT_EQ(held->count.load(std::memory_order_acquire), 2u);
  ASSERT_EQ(process_state(victim.pid()), 'Z') << "the victim should be a zombie: dead, not reaped";
  {
    const auto g = group_stats(q, "g");
    ASSERT_EQ(g.members.size(), 1u);
    EXPECT_EQ(g.members[0].pid, victim.pid());
    EXPECT_FALSE(g.members[0].alive) << "stats call a zombie member alive";
    EXPECT_EQ(g.in_flight, 2u);
  }

  // This process joins the group (only possible once the zombie's slot is
  // reclaimed) and must get the zombie's two messages again, long before
  // their 30 s leases run out, then the third.
  const std::uint64_t start = now_ns();
  Consumer c = q.consumer("g", long_lease());
  std::map<std::uint64_t, std::uint32_t> deliveries;
  while (deliveries.size() < 3 && now_ns() - start < 5'000'000'000ull) {
    if (auto d = c.receive(100ms)) {
      deliveries[d->seq()] = d->deliveries();
      EXPECT_EQ(c.ack(*d), Status::ok);
    }
  }
  const double ms = static_cast<double>(now_ns() - start) / 1e6;
  ASSERT_EQ(deliveries.size(), 3u) << "the zombie's leases did not come back within 5 s (lease 30 s)";
  std::printf("zombie's leases came back within %.3f ms\n", ms);
  EXPECT_EQ(deliveries[held->seqs[0].load()], 2u);
  EXPECT_EQ(deliveries[held->seqs[1].load()], 2u);
  EXPECT_EQ(process_state(victim.pid()), 'Z') << "the victim was reaped during the test: the check proves nothing";
  const auto g = group_stats(q, "g");
  ASSERT_EQ(g.members.size(), 1u);
  EXPECT_EQ(g.members[0].pid, ::getpid());
  EXPECT_EQ(g.floor, 3u);
  victim.kill_and_reap();
}

// ack = settle the lease word, then advance the floor. A member killed
// between the two leaves a settled word below a floor nobody moves if every
// later message was already acked: the ring looks full forever.
TEST(DeadConsumer, should_not_block_producers_when_a_consumer_is_killed_between_settling_its_ack_and_advancing_the_floor) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), {.capacity = 4, .max_message_size = kMaxMessageSize, .default_lease = 30s});
  q.create_group("g");
  publish_in_child(tq.path(), 0, 4);  // the ring is full

  SharedBlock<Held> held;
  // X takes seq 0 and waits; Y takes and acks 1..3 (the floor stays at 0);
  // then X settles seq 0 exactly as Consumer::ack does and dies before the
  // floor CAS.
  Child x = fork_child([&] {
    auto qq = Queue::open(tq.path());
    auto c = qq.consumer("g", long_lease());
    auto d = c.receive(2s);
    ACKRING_CHILD_CHECK(d && d->seq() == 0, 70);
    held->member.store(c.member_index());
    held->count.store(1, std::memory_order_release);
    while (held->go.load(std::memory_order_acquire) == 0) sleep_ms(1);
    RawQueueFile raw(tq.path());
    const int g = raw.group_index("g");
    ACKRING_CHILD_CHECK(g >= 0, 71);
    auto& word = raw.lease(static_cast<std::uint32_t>(g), 0);
    std::uint64_t w = word.load(std::memory_order_acquire);
    const auto lw = detail::LeaseWord::decode(w);
    ACKRING_CHILD_CHECK(lw.state == detail::LeaseState::leased && lw.deliveries == d->deliveries() &&
                            lw.owner == c.member_index(), 72);
    ACKRING_CHILD_CHECK(word.compare_exchange_strong(w, detail::settled_word(0, detail::SettleReason::acked),
                                                     std::memory_order_release),
                        73);
    ::raise(SIGKILL);  // before advance_floor
    return 74;
  });
  const std::uint64_t t0 = now_ms();
  while (held->count.load(std::memory_order_acquire) == 0 && now_ms() - t0 < 5000) sleep_ms(1);
  ASSERT_EQ(held->count.load(), 1u);
  Child y = fork_child([&] {
    auto qq = Queue::open(tq.path());
    auto c = qq.consumer("g", long_lease());
    for (int i = 0; i < 3; ++i) {
      auto d = c.receive(2s);
      ACKRING_CHILD_CHECK(d && d->seq() == static_cast<std::uint64_t>(i + 1), 75);
      ACKRING_CHILD_CHECK(c.ack(*d) == Status::ok, 76);
    }
    return 0;
  });
  ASSERT_TRUE(y.wait_for(10s));
  ASSERT_TRUE(y.exited_ok()) << y.describe();
  EXPECT_EQ(group_stats(q, "g").floor, 0u);
  held->go.store(1, std::memory_order_release);
  ASSERT_TRUE(x.wait_for(10s));
  ASSERT_TRUE(x.killed_by(SIGKILL)) << x.describe();

  // Every message is settled. A member keeps receiving (so any housekeeping
  // the library does gets its chance) while a producer wants room.
  Child member = fork_child([&] {
    auto qq = Queue::open(tq.path());
    auto c = qq.consumer("g", long_lease());
    const std::uint64_t end = now_ms() + 6000;
    while (now_ms() < end) {
      if (auto d = c.receive(50ms)) {
        ACKRING_CHILD_CHECK(c.ack(*d) == Status::ok, 77);
        return 0;
      }
    }
    return 78;  // the new message never came
  });
  Child producer = fork_child([&] {
    auto qq = Queue::open(tq.path());
    auto p = qq.producer();
    std::vector<std::byte> buf;
    make_payload({1, 0}, kMaxMessageSize, buf);
    const auto r = p.publish(Bytes(buf), 5s);
    return r.ok() ? 0 : 79;
  });
  ASSERT_TRUE(producer.wait_for(10s));
  ASSERT_TRUE(member.wait_for(10s));
  const auto g = group_stats(q, "g");
  EXPECT_TRUE(producer.exited_ok()) << "publish into a ring whose every message is acked: producer "
                                    << producer.describe() << " (exit 79 = timed out after 5 s); group floor "
                                    << g.floor << ", tail " << q.stats().tail;
  EXPECT_TRUE(member.exited_ok()) << "member " << member.describe();
}

// A reclaimer marks a dead member's slot kReclaiming with a CAS and then
// records its own pid in `reserved`, so that a reclaimer that dies half-way
// is noticed and its job finished. Killed between the two steps, it leaves
// in `reserved` whatever pid an earlier reclaim of that slot wrote.
TEST(DeadConsumer, should_not_strand_the_dead_members_leases_when_a_reclaimer_is_killed_before_recording_itself) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), {.capacity = 16, .max_message_size = kMaxMessageSize, .default_lease = 30s,
                                     .max_members = 4});
  q.create_group("g");

  // 1. C0 joins (slot 0) and dies; A joins (slot 1), reclaims slot 0 (so
  //    slot 0's `reserved` holds A's pid), then stays alive but idle.
  Child c0 = fork_child([&] {
    auto qq = Queue::open(tq.path());
    auto c = qq.consumer("g", long_lease());
    ::raise(SIGKILL);
    return 1;
  });
  ASSERT_TRUE(c0.wait_for(5s));
  SharedBlock<Held> control;
  Child a = fork_child([&] {
    auto qq = Queue::open(tq.path());
    auto c = qq.consumer("g", long_lease());
    ACKRING_CHILD_CHECK(c.member_index() == 1, 80);
    (void)c.try_receive();  // first receive housekeeps: reclaims slot 0
    control->count.store(1, std::memory_order_release);
    while (control->go.load(std::memory_order_acquire) == 0) sleep_ms(5);
    return 0;
  });
  const std::uint64_t t0 = now_ms();
  while (control->count.load(std::memory_order_acquire) == 0 && now_ms() - t0 < 5000) sleep_ms(1);
  ASSERT_EQ(control->count.load(), 1u);
  ASSERT_EQ(group_stats(q, "g").members.size(), 1u) << "A did not reclaim C0's slot";

  // 2. C1 joins (slot 0 again), takes a message and dies holding it.
  publish_in_child(tq.path(), 0, 1);
  Child c1 = fork_child([&] {
    auto qq = Queue::open(tq.path());
    auto c = qq.consumer("g", long_lease());
    ACKRING_CHILD_CHECK(c.member_index() == 0, 81);
    auto d = c.receive(2s);
    ACKRING_CHILD_CHECK(d.has_value(), 82);
    ::raise(SIGKILL);
    return 1;
  });
  ASSERT_TRUE(c1.wait_for(5s));
  ASSERT_TRUE(c1.killed_by(SIGKILL)) << c1.describe();

  // 3. B starts reclaiming slot 0 (the CAS to kReclaiming, as
  //    reclaim_dead_members does) and is killed before it stores its pid.
  Child b = fork_child([&] {
    RawQueueFile raw(tq.path());
    auto& e = raw.member(static_cast<std::uint32_t>(raw.group_index("g")), 0);
    std::uint32_t pid = static_cast<std::uint32_t>(c1.pid());
    ACKRING_CHILD_CHECK(e.pid.compare_exchange_strong(pid, detail::kReclaiming, std::memory_order_acq_rel), 83);
    ::raise(SIGKILL);
    return 1;
  });
  ASSERT_TRUE(b.wait_for(5s));
  ASSERT_TRUE(b.killed_by(SIGKILL)) << b.describe();

  // 4. A new member must get C1's message back well before its 30 s lease.
  Child d = fork_child([&] {
    auto qq = Queue::open(tq.path());
    auto c = qq.consumer("g", long_lease());
    auto m = c.receive(5s);
    if (!m) return 84;
    ACKRING_CHILD_CHECK(m->deliveries() == 2, 85);
    ACKRING_CHILD_CHECK(c.ack(*m) == Status::ok, 86);
    return 0;
  });
  ASSERT_TRUE(d.wait_for(10s));
  EXPECT_TRUE(d.exited_ok()) << "the dead member's lease was not returned within 5 s: " << d.describe()
                             << " (exit 84 = nothing received); the slot's reserved pid is A's, who is alive";
  control->go.store(1, std::memory_order_release);
  ASSERT_TRUE(a.wait_for(5s));
  EXPECT_TRUE(a.exited_ok()) << a.describe();
}

}  // namespace
}  // namespace ackring::testing
