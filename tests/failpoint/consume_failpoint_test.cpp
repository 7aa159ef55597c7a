// A worker process — a member of a block group that also publishes — stalled
// (SIGSTOP) or killed at each named step of the receive, lease, ack, floor,
// abort, drop and dead-letter protocols, while the others go on for eight
// laps of a 4-slot ring. Checked by content: every message whose publish
// returned ok is acked in the block group (or dead-lettered, with its bytes),
// no group ever delivers a malformed payload or a corrupt slot, every
// delivery is the message published at its seq, and a dead worker blocks no
// one. A stale receipt that settled a newer delivery would show as a message
// that nobody acked.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "failpoint_util.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

constexpr std::size_t kMaxSize = 64;
constexpr std::uint32_t kCapacity = 4;
constexpr std::uint32_t kParentMessages = 8 * kCapacity;

struct StepCase {
  const char* step;
  fp::Action action;
};

std::string case_name(const ::testing::TestParamInfo<StepCase>& info) {
  std::string name = info.param.step;
  for (char& c : name)
    if (c == '.') c = '_';
  return name + (info.param.action == fp::Action::stall ? "_stalled" : "_killed");
}

struct WorkerState {
  std::atomic<bool> stop{false};
  std::atomic<std::uint32_t> malformed{0};
};

class ConsumeStep : public ::testing::TestWithParam<StepCase> {};

TEST_P(ConsumeStep, should_settle_every_acknowledged_publish_once_processed_whatever_a_member_does_there) {
  const StepCase c = GetParam();
  const std::string step = c.step;
  const bool needs_takeover = step == "takeover.before_lease_cas" || step == "takeover.after_lease_cas" ||
                              step == "deadletter.after_publish";
  TempQueue tq;
  QueueOptions options;
  options.capacity = kCapacity;
  options.max_message_size = kMaxSize;
  options.claim_timeout = 50ms;
  options.max_deliveries = step == "deadletter.after_publish" ? 1 : 5;
  auto q = Queue::create(tq.path(), options);
  q.create_group("work");
  q.create_group("lossy", {.overflow = OverflowPolicy::drop});
  std::map<MessageId, std::uint64_t> published;  // id -> seq its publish returned
  std::vector<std::byte> bytes;
  auto prod = q.producer();

  // Situations the step needs, made on purpose before the worker starts:
  // a lease whose holder died (takeover, dead-letter) and a claim whose
  // producer is stopped after marking it (abort).
  Child holder;
  if (needs_takeover) {
    make_payload({4, 0}, kMaxSize, bytes);
    const PublishResult r = prod.publish(Bytes(bytes), 1s);
    ASSERT_TRUE(r.ok());
    published[{4, 0}] = r.seq;
    holder = fork_child([&] {
      auto qq = Queue::open(tq.path());
      ConsumerOptions long_lease;
      long_lease.lease = 60s;
      auto cc = qq.consumer("work", long_lease);
      auto d = cc.receive(5s);
      ACKRING_CHILD_CHECK(d.has_value(), 3);
      ::raise(SIGKILL);  // dies holding the lease
      return 0;
    });
    ASSERT_TRUE(holder.wait_for(10s));
  }
  SharedBlock<StalledClaim> stuck_result;
  Child stuck;
  if (step == "abort.after_judge") {
    stuck = fork_child([&] {
      auto qq = Queue::open(tq.path());
      auto pub = qq.producer();
      std::vector<std::byte> b;
      make_payload({5, 0}, kMaxSize, b);
      fp::arm("publish.after_slot_read", fp::Action::stall);
      const PublishResult r = pub.publish(Bytes(b), 30s);
      stuck_result->seq.store(r.seq);
      stuck_result->status.store(static_cast<int>(r.status));
      return 0;
    });
    ASSERT_EQ(wait_stopped_or_dead(stuck, 10s), "stopped");
  }

  // The worker: publishes its own messages and receives/acks "work" with a
  // short lease, logging what it published and acked (the log survives its
  // death), until told to stop. Nobody reads "lossy" yet, so its publishes
  // find the ring full and push the drop group (refresh, drop steps).
  SharedBlock<WorkerState> worker_state;
  RecordLog log;
  Child worker = fork_child([&] {
    auto qq = Queue::open(tq.path());
    ConsumerOptions short_lease;
    short_lease.lease = 100ms;
    auto cc = qq.consumer("work", short_lease);
    auto pub = qq.producer();
    std::vector<std::byte> b;
    std::uint32_t n = 0;
    fp::arm(step, c.action);
    while (!worker_state->stop.load()) {
      if (n < 64) {
        make_payload({3, n}, kMaxSize, b);
        const PublishResult r = pub.publish(Bytes(b), 2ms);
        if (r.ok()) log.append(Event{r.seq, now_ns(), {3, n++}, 0, 0, 0, EventKind::published});
      }
      if (auto d = cc.receive(2ms)) {
        const auto id = check_payload(d->payload(), kMaxSize);
        if (!id) {
          worker_state->malformed.fetch_add(1);
          continue;
        }
        log.append(Event{d->seq(), now_ns(), *id, d->deliveries(), 0, 0, EventKind::received});
        // Logged before the ack: a worker killed inside ack may have settled it.
        log.append(Event{d->seq(), now_ns(), *id, d->deliveries(), 0, 0, EventKind::attempt});
        const Status s = cc.ack(*d);
        log.append(Event{d->seq(), now_ns(), *id, d->deliveries(), 0, 0,
                         s == Status::ok ? EventKind::acked : EventKind::lease_lost});
      }
    }
    return 0;
  });
  ASSERT_EQ(wait_stopped_or_dead(worker, 20s), c.action == fp::Action::stall ? "stopped" : "dead")
      << "the worker never reached " << step << ": " << worker.describe();

  // A stopped producer holds every producer once the ring is a lap ahead of
  // its claim (protocol.md §1): let it finish now that the worker is where
  // it should be (its claim may or may not have been aborted).
  auto work = q.consumer("work");
  auto lossy = q.consumer("lossy");
  GroupLedger work_seen;
  GroupLedger lossy_seen;
  auto drain_all = [&] {
    return drain(work, work_seen, kMaxSize, 64) + drain(lossy, lossy_seen, kMaxSize, 64);
  };
  const std::uint64_t until = now_ns() + 20'000'000'000ull;
  if (stuck.valid()) {
    stuck.kill(SIGCONT);
    while (!stuck.poll() && now_ns() < until) drain_all();
    ASSERT_TRUE(stuck.wait_for(10s));
    ASSERT_EQ(stuck_result->status.load(), static_cast<int>(Status::ok));
    published[{5, 0}] = stuck_result->seq.load();
  }

  // The others go on: eight laps while a second member of "work" and a
  // member of "lossy" consume.
  std::uint32_t next = 0;
  while (next < kParentMessages && now_ns() < until) {
    make_payload({2, next}, kMaxSize, bytes);
    const PublishResult r = prod.publish(Bytes(bytes), 2ms);
    if (r.ok()) published[{2, next++}] = r.seq;
    drain_all();
  }
  ASSERT_EQ(next, kParentMessages) << "a worker " << (c.action == fp::Action::stall ? "stalled" : "killed") << " at "
                                   << step << " held the others";
  if (c.action == fp::Action::stall) {
    // Resume it: it finishes the step it was in and works on for a while.
    worker.kill(SIGCONT);
    const std::uint64_t work_until = now_ns() + 300'000'000ull;
    while (now_ns() < work_until) drain_all();
    worker_state->stop.store(true);
    ASSERT_TRUE(worker.wait_for(20s)) << worker.describe();
    EXPECT_TRUE(worker.exited_ok()) << worker.describe();
  }

  // What the worker published counts as published; what it acked, as acked.
  std::map<MessageId, std::uint32_t> acked = work_seen.acked;
  std::optional<MessageId> acking_when_killed;  // the worker's last ack attempt, if it died in it
  for (const Event& e : log.read_all<Event>()) {
    if (e.kind == EventKind::published) published[e.id] = e.seq;
    if (e.kind == EventKind::acked) ++acked[e.id];
    acking_when_killed = e.kind == EventKind::attempt ? std::optional<MessageId>(e.id) : std::nullopt;
    if (e.kind == EventKind::received) {
      const auto [it, fresh] = work_seen.by_seq.emplace(e.seq, e.id);
      if (!fresh && it->second != e.id) ADD_FAILURE() << "seq " << e.seq << " delivered as two different messages";
    }
  }
  EXPECT_EQ(worker_state->malformed.load(), 0u);
  // Dead letters count as settled, with their bytes checked too.
  std::set<MessageId> dead_lettered;
  if (std::filesystem::exists(tq.dlq_path())) {
    auto dlq = Queue::open(tq.dlq_path());
    auto reader = dlq.consumer("dlq");
    while (auto d = reader.receive(50ms)) {
      const auto letter = parse_dead_letter(d->payload());
      ASSERT_TRUE(letter);
      const auto id = check_payload(letter->body, kMaxSize);
      ASSERT_TRUE(id) << "a dead letter with a malformed body";
      dead_lettered.insert(*id);
      (void)reader.ack(*d);
    }
  }
  // Drain "work" to the end: leases the worker left come back.
  const std::uint64_t drain_until = now_ns() + 20'000'000'000ull;
  // A worker killed inside its ack (ack.after_settle, floor.after_scan)
  // settled that message: it was delivered and processed once.
  if (c.action == fp::Action::die && acking_when_killed) ++acked[*acking_when_killed];
  auto settled = [&](const MessageId& id) { return acked.count(id) != 0 || dead_lettered.count(id) != 0; };
  for (;;) {
    drain_all();
    for (const auto& [id, n] : work_seen.acked) acked[id] = std::max(acked[id], n);
    bool all = true;
    for (const auto& [id, seq] : published) all = all && settled(id);
    if (all || now_ns() >= drain_until) break;
  }

  for (const auto& p : work_seen.problems) ADD_FAILURE() << "work group: " << p;
  for (const auto& p : lossy_seen.problems) ADD_FAILURE() << "drop group: " << p;
  for (const GroupLedger* seen : {&work_seen, &lossy_seen})
    for (const auto& [seq, id] : seen->by_seq) {
      const auto it = published.find(id);
      if (it == published.end()) {
        // The worker may die between a commit and its log record.
        EXPECT_TRUE(c.action == fp::Action::die && id.producer == 3) << "seq " << seq << " holds an unpublished id";
      } else {
        EXPECT_EQ(it->second, seq) << "(" << id.producer << ", " << id.counter << ") reported at seq " << it->second
                                   << ", delivered at " << seq;
      }
    }
  for (const auto& [id, seq] : published)
    EXPECT_TRUE(settled(id)) << "acknowledged publish (" << id.producer << ", " << id.counter << ") at seq " << seq
                             << " was never acked nor dead-lettered";
  for (const GroupStats& g : q.stats().groups) EXPECT_EQ(g.corrupt_skipped, 0u) << "group " << g.name;
}

std::vector<StepCase> step_cases() {
  std::vector<StepCase> cases;
  for (const char* step : {"receive.after_slot_check", "receive.after_lease_cas", "receive.mid_read",
                           "takeover.before_lease_cas", "takeover.after_lease_cas", "ack.after_floor_check", "ack.after_settle", "floor.after_scan",
                           "abort.after_judge", "drop.after_next", "drop.after_settle", "refresh.after_scan",
                           "deadletter.after_publish"})
    for (const fp::Action a : {fp::Action::stall, fp::Action::die}) cases.push_back({step, a});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(EveryStep, ConsumeStep, ::testing::ValuesIn(step_cases()), case_name);

// A member stopped in the middle of reading a message while its group is
// removed and the slot reused. A removed group's leases no longer hold the
// ring, so the member's lease word, which nobody changed, proves nothing: it
// must see its group gone and drop the copy (protocol.md §1, "Readers of the
// previous lap"). A block group reads without copying, so a delivery handed
// out here would show the bytes of the message that reused the slot.
TEST(RemovedGroupStall, should_not_hand_out_a_read_whose_group_was_removed_and_slot_reused_meanwhile) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), small_options(2));
  q.create_group("g");
  auto prod = q.producer();
  const std::string first(48, 'f');
  ASSERT_TRUE(prod.try_publish(first).ok());
  Child reader = fork_child([&] {
    auto qq = Queue::open(tq.path());
    ConsumerOptions o;
    o.create_group = false;
    auto c = qq.consumer("g", o);
    fp::arm("receive.mid_read", fp::Action::stall);
    const auto d = c.receive(2s);
    if (!d) return 0;  // its group is gone: nothing to deliver
    ACKRING_CHILD_CHECK(d->text() == first, 3);  // a torn or foreign read handed out
    return 4;                                    // seq 0 is no longer this group's to deliver
  });
  ASSERT_EQ(wait_stopped_or_dead(reader, 10s), "stopped");
  ASSERT_TRUE(q.remove_group("g"));
  const std::string later(48, 'x');
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(prod.try_publish(later).ok()) << i;  // seqs 2 and 4 reuse slot 0
  reader.kill(SIGCONT);
  ASSERT_TRUE(reader.wait_for(20s));
  EXPECT_TRUE(reader.exited_ok()) << reader.describe();
}

}  // namespace
}  // namespace ackring::testing
