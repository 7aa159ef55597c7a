// A producer stalled (SIGSTOP) or killed at each named step of the publish
// protocol while another producer and the consumers of a block group and a
// drop group keep going on a 4-slot ring. Checked message by message, by
// content: a publish that returned ok is delivered to the block group with
// exactly its bytes at the seq it returned (invariant 1); no group ever sees
// a malformed payload or a corrupt slot; a dead producer blocks no one.
//
// Before the in-flight word (format 3), a producer stalled past
// claim_timeout after its tail CAS was aborted, the ring wrapped, and its
// resumed stores landed in another producer's acknowledged message.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "failpoint_util.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

constexpr std::size_t kMaxSize = 64;
constexpr std::uint32_t kCapacity = 4;
constexpr std::uint32_t kOthers = 6 * kCapacity;  // messages of the producer that keeps going: six laps

enum class Groups { block_and_drop, drop_only };

struct PublishCase {
  const char* step;
  fp::Action action;
  Groups groups;
  bool keyed;
};

std::string case_name(const ::testing::TestParamInfo<PublishCase>& info) {
  std::string name = info.param.step;
  for (char& c : name)
    if (c == '.') c = '_';
  name += info.param.action == fp::Action::stall ? "_stalled" : "_killed";
  name += info.param.groups == Groups::drop_only ? "_drop_group_only" : "_block_and_drop_groups";
  name += info.param.keyed ? "_keyed" : "_unkeyed";
  return name;
}

class PublishStep : public ::testing::TestWithParam<PublishCase> {};

TEST_P(PublishStep, should_deliver_every_acknowledged_publish_with_its_bytes_whatever_the_producer_does_there) {
  const PublishCase c = GetParam();
  TempQueue tq;
  QueueOptions options;
  options.capacity = kCapacity;
  options.max_message_size = kMaxSize;
  options.claim_timeout = 50ms;  // stalls below last far longer
  auto q = Queue::create(tq.path(), options);
  const bool has_block = c.groups == Groups::block_and_drop;
  if (has_block) q.create_group("block");
  q.create_group("lossy", {.overflow = OverflowPolicy::drop});

  // The producer under test: id (1, 0), stopped or killed at c.step.
  SharedBlock<StalledClaim> result;
  Child stalled = fork_child([&] {
    auto qq = Queue::open(tq.path());
    auto pub = qq.producer();
    std::vector<std::byte> bytes;
    make_payload({1, 0}, kMaxSize, bytes);
    fp::arm(c.step, c.action);
    const PublishResult r = c.keyed ? pub.publish(Bytes(bytes), PublishOptions{.key = "stalled-1"}, 30s)
                                    : pub.publish(Bytes(bytes), 30s);
    result->seq.store(r.seq);
    result->status.store(static_cast<int>(r.status));
    return 0;
  });
  const std::string where = wait_stopped_or_dead(stalled, 10s);
  ASSERT_EQ(where, c.action == fp::Action::stall ? "stopped" : "dead") << stalled.describe();

  std::optional<Consumer> block;
  if (has_block) block.emplace(q.consumer("block"));
  Consumer lossy = q.consumer("lossy");
  GroupLedger block_seen;
  GroupLedger lossy_seen;
  auto drain_all = [&] {
    std::size_t n = 0;
    if (block) n += drain(*block, block_seen, kMaxSize, 64);
    n += drain(lossy, lossy_seen, kMaxSize, 64);
    return n;
  };

  // The others keep going: a second producer publishes six laps' worth while
  // both groups consume. A stalled producer holds back reuse of its slots, so
  // this producer may be held at one lap (queue_full) until it resumes; a
  // dead one must not hold anyone for longer than claim_timeout.
  auto other = q.producer();
  std::map<MessageId, std::uint64_t> published;  // id -> seq its publish returned
  std::vector<std::byte> bytes;
  std::uint32_t next = 0;
  auto publish_some = [&](std::uint64_t for_ns, std::uint32_t up_to, bool consume) {
    const std::uint64_t until = now_ns() + for_ns;
    while (next < up_to && now_ns() < until) {
      make_payload({2, next}, kMaxSize, bytes);
      const std::string key = "other-" + std::to_string(next);
      const PublishResult r = c.keyed ? other.publish(Bytes(bytes), PublishOptions{.key = key}, 2ms)
                                      : other.publish(Bytes(bytes), 2ms);
      if (r.ok()) {
        ASSERT_FALSE(r.duplicate);
        published[{2, next++}] = r.seq;
      } else {
        ASSERT_TRUE(r.status == Status::timeout || r.status == Status::queue_full) << to_string(r.status);
        if (!consume) return;  // the ring is full
      }
      if (consume) drain_all();
    }
  };
  if (c.action == fp::Action::die) {
    publish_some(20'000'000'000ull, kOthers, true);
    // Progress (invariant 4): a dead producer holds no one back.
    ASSERT_EQ(next, kOthers) << "a producer killed at " << c.step << " held the ring";
  } else {
    // Three laps while both groups consume (the stalled claim is aborted
    // meanwhile, once claim_timeout has passed), then fill the ring and stop
    // consuming: if any slot the stalled producer may still store into had
    // been reused, it now holds a message nobody has read yet.
    publish_some(1'000'000'000ull, 3 * kCapacity, true);
    publish_some(1'000'000'000ull, kOthers, false);
    // Resume the stalled producer and let it do its stores: it either
    // returns, or sleeps waiting for room to publish again (its claim was
    // aborted). Only then do the groups read what the ring holds.
    stalled.kill(SIGCONT);
    const std::uint64_t settle_until = now_ns() + 10'000'000'000ull;
    while (!stalled.poll() && process_state(stalled.pid()) != 'S' && now_ns() < settle_until) sleep_ms(1);
    publish_some(20'000'000'000ull, kOthers, true);
    ASSERT_TRUE(stalled.wait_for(20s)) << stalled.describe();
    ASSERT_TRUE(stalled.exited_ok()) << stalled.describe();
    ASSERT_EQ(result->status.load(), static_cast<int>(Status::ok)) << to_string(static_cast<Status>(result->status.load()));
    published[{1, 0}] = result->seq.load();
    ASSERT_EQ(next, kOthers);
  }
  // Drain to the end: nothing left for a while once everything was acked.
  const std::uint64_t until = now_ns() + 20'000'000'000ull;
  while (now_ns() < until) {
    const std::size_t n = drain_all();
    if (n == 0 && (!block || block_seen.acked.size() >= published.size())) break;
  }

  for (const auto& p : block_seen.problems) ADD_FAILURE() << "block group: " << p;
  for (const auto& p : lossy_seen.problems) ADD_FAILURE() << "drop group: " << p;
  // Every delivery is the message published at that seq.
  for (const GroupLedger* seen : {&block_seen, &lossy_seen})
    for (const auto& [seq, id] : seen->by_seq) {
      const auto it = published.find(id);
      if (it == published.end()) {
        // Only the killed producer's message may be delivered unacknowledged (it died after committing).
        EXPECT_TRUE(c.action == fp::Action::die && (id == MessageId{1, 0})) << "seq " << seq << " holds an unpublished id";
      } else {
        EXPECT_EQ(it->second, seq) << "message (" << id.producer << ", " << id.counter << ") was reported at seq "
                                   << it->second << " but delivered at " << seq;
      }
    }
  if (block) {
    for (const auto& [id, seq] : published)
      EXPECT_EQ(block_seen.acked.count(id), 1u)
          << "acknowledged publish (" << id.producer << ", " << id.counter << ") at seq " << seq << " was lost";
  }
  const QueueStats stats = q.stats();
  for (const GroupStats& g : stats.groups) EXPECT_EQ(g.corrupt_skipped, 0u) << "group " << g.name;
}

std::vector<PublishCase> publish_cases() {
  std::vector<PublishCase> cases;
  for (const char* step : {"publish.after_intent", "publish.after_tail_cas", "publish.after_slot_read",
                           "publish.mid_payload", "publish.before_commit", "publish.after_commit"})
    for (const fp::Action a : {fp::Action::stall, fp::Action::die})
      for (const Groups g : {Groups::block_and_drop, Groups::drop_only})
        for (const bool keyed : {false, true}) cases.push_back({step, a, g, keyed});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(EveryStep, PublishStep, ::testing::ValuesIn(publish_cases()), case_name);

// Readers without a lease (peek, verify) while a producer is stopped half way
// through the payload of a slot's next lap. The slot word still says the old
// message is committed (a claim is not written into the slot, protocol.md
// §1), so only the tail tells these readers the slot is being rewritten:
// peek must leave the old seq out rather than hand out a mix of the two
// messages, and verify must not report the half-written slot as corrupt.
TEST(PublishStep, should_keep_peek_and_verify_off_a_slot_whose_next_lap_is_half_written) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), {.capacity = 2, .max_message_size = kMaxSize});
  auto p = q.producer();
  const std::string old_text(kMaxSize, 'o');
  const std::string new_text(kMaxSize, 'n');
  ASSERT_EQ(p.try_publish(old_text).seq, 0u);
  ASSERT_EQ(p.try_publish("seq 1").seq, 1u);
  // No group holds the ring: seq 2 may reuse slot 0 while seq 0 is still there to peek at.
  Child writer = fork_child([&] {
    auto qq = Queue::open(tq.path());
    auto pp = qq.producer();
    fp::arm("publish.mid_payload", fp::Action::stall);
    return pp.try_publish(new_text).seq == 2 ? 0 : 3;
  });
  ASSERT_EQ(wait_stopped_or_dead(writer, 10s), "stopped");
  for (const PeekedMessage& m : q.peek(0, 10))
    EXPECT_NE(m.seq, 0u) << "peek handed out seq 0 while its slot was half rewritten: " << m.payload.size() << " bytes";
  const VerifyReport r = q.verify();
  EXPECT_EQ(r.corrupt_slots, 0u);
  EXPECT_TRUE(r.problems.empty()) << r.problems.front();
  writer.kill(SIGCONT);
  ASSERT_TRUE(writer.wait_for(10s));
  EXPECT_TRUE(writer.exited_ok()) << writer.describe();
  const auto after = q.peek(2, 1);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(after[0].payload.data()), after[0].payload.size()), new_text);
}

}  // namespace
}  // namespace ackring::testing
