// Producers and consumers in separate processes: every committed message
// reaches every group and is acked there exactly once, also when consumers
// are SIGKILLed while they hold leases (invariants 1 and 4 of DESIGN.md).
//
// Each producer and each consumer is its own forked process that opens the
// queue itself. Children log what they did (published / received / acked)
// into memfd logs that survive their SIGKILL; the parent supervises (respawns
// killed consumers, waits until every group's floor reaches the tail) and
// then checks the logs against the invariants.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
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
constexpr auto kLongLease = 30s;  // expiry must never be what brings a lease back here

struct Control {
  std::atomic<std::uint32_t> stop{0};  // consumers leave once they find nothing more
};

enum class Kills { none, self_after_receive, parent_random };

struct ScenarioOptions {
  std::uint32_t producers = 2;
  std::uint32_t messages_per_producer = 4000;
  std::uint32_t producer_batch_max = 4;
  std::vector<std::pair<std::string, std::uint32_t>> groups{{"a", 2}, {"b", 1}};  // name, competing members
  std::uint32_t capacity = 128;
  std::uint32_t max_members = 4;
  std::uint32_t consumer_batch_max = 4;
  Kills kills = Kills::none;
  std::uint32_t max_kills = 0;
  std::uint32_t seed = 1;
  std::uint64_t budget_ms = 45'000;
};

int producer_main(const std::string& path, std::uint32_t producer, const ScenarioOptions& o, const RecordLog& log) {
  auto q = Queue::open(path);
  auto p = q.producer();
  std::mt19937 rng(o.seed * 7919u + producer);
  std::vector<std::vector<std::byte>> buffers(o.producer_batch_max);
  std::vector<Bytes> views(o.producer_batch_max);
  for (std::uint32_t c = 0; c < o.messages_per_producer;) {
    const std::uint32_t k = std::min<std::uint32_t>(1 + rng() % o.producer_batch_max, o.messages_per_producer - c);
    for (std::uint32_t i = 0; i < k; ++i) {
      make_payload({producer, c + i}, kMaxMessageSize, buffers[i]);
      views[i] = Bytes(buffers[i]);
    }
    const PublishResult r = k == 1 ? p.publish(views[0], 20s) : p.publish_batch(std::span(views.data(), k), 20s);
    if (!r.ok()) {
      std::fprintf(stderr, "producer %u: publish failed: %s\n", producer, std::string(to_string(r.status)).c_str());
      return 10;
    }
    for (std::uint32_t i = 0; i < k; ++i) {
      Event e;
      e.kind = EventKind::published;
      e.seq = r.seq + i;
      e.id = {producer, c + i};
      e.time_ns = now_ns();
      log.append(e);
    }
    c += k;
  }
  return 0;
}

// A group member. Receives batches, logs every receipt, and (if kill_after
// is set) SIGKILLs itself once it has received that many messages: after
// receive, before ack, holding the whole last batch.
int consumer_main(const std::string& path, const std::string& group, std::uint8_t group_index, std::uint16_t instance,
                  std::uint32_t kill_after, const ScenarioOptions& o, const RecordLog& log, const Control& control) {
  auto q = Queue::open(path);
  ConsumerOptions co;
  co.lease = kLongLease;
  co.create_group = false;
  co.spin = 20us;
  auto c = q.consumer(group, co);
  std::mt19937 rng(o.seed * 104729u + instance);
  std::vector<Delivery> batch(o.consumer_batch_max);
  std::vector<MessageId> ids(o.consumer_batch_max);  // the payload may be reused once acked: keep the ids
  std::uint64_t received = 0;
  for (;;) {
    const std::size_t want = 1 + rng() % o.consumer_batch_max;
    const std::size_t n = c.receive_batch(std::span(batch.data(), want), 20ms);
    if (n == 0) {
      if (control.stop.load(std::memory_order_acquire) != 0) return 0;
      continue;
    }
    for (std::size_t i = 0; i < n; ++i) {
      const auto id = check_payload(batch[i].payload(), kMaxMessageSize);
      if (!id) report_malformed(batch[i]);
      ACKRING_CHILD_CHECK(id.has_value(), 20);
      ids[i] = *id;
      Event e;
      e.kind = EventKind::received;
      e.seq = batch[i].seq();
      e.id = *id;
      e.deliveries = batch[i].deliveries();
      e.instance = instance;
      e.group = group_index;
      e.time_ns = now_ns();
      log.append(e);
    }
    received += n;
    if (kill_after != 0 && received >= kill_after) ::raise(SIGKILL);  // after receive, before ack
    const bool use_batch_ack = (rng() & 1) != 0;
    std::size_t acked = n;
    if (use_batch_ack) {
      acked = c.ack_batch(std::span<const Delivery>(batch.data(), n));
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        if (c.ack(batch[i]) != Status::ok) {
          acked = i;
          break;
        }
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      Event e;
      e.kind = i < acked ? EventKind::acked : EventKind::lease_lost;
      e.seq = batch[i].seq();
      e.id = ids[i];
      e.deliveries = batch[i].deliveries();
      e.instance = instance;
      e.group = group_index;
      e.time_ns = now_ns();
      log.append(e);
    }
    // With 30 s leases and no nacks a live member never loses a lease: if it
    // did, dead-member detection took the lease of a live process.
    if (acked != n) return 21;
  }
}

struct ConsumerInstance {
  std::uint32_t role = 0;  // index into roles: which group and member position
  std::uint16_t id = 0;
  std::uint32_t kill_after = 0;
  bool killed_by_parent = false;  // the parent sent it SIGKILL (Kills::parent_random)
  std::unique_ptr<RecordLog> log = std::make_unique<RecordLog>();
  Child child;
};

struct LoggedReceipt {
  std::uint16_t instance = 0;
  std::uint32_t deliveries = 0;
  std::uint64_t seq = 0;
  std::uint64_t time_ns = 0;
  bool acked = false;
};

// What the logs say about how the deliveries of a group went.
struct DeliveryTally {
  std::uint64_t max_return_ns = 0;   // longest time from a dead holder's receipt to the redelivery
  std::uint64_t redelivered = 0;
  std::uint64_t unlogged_prior = 0;  // first logged deliveries that were redeliveries
};

// One run of a scenario: the queue, the processes and their logs, and the
// checks made of them once every message is settled. Failures are gtest
// failures; a fatal one ends the run (run() stops at the step that had it).
class Scenario {
 public:
  explicit Scenario(ScenarioOptions options) : o_(with_env_seed(std::move(options))), rng_(o_.seed), producer_logs_(o_.producers) {
    QueueOptions qo;
    qo.capacity = o_.capacity;
    qo.max_message_size = kMaxMessageSize;
    qo.max_members = o_.max_members;
    qo.default_lease = kLongLease;
    q_.emplace(Queue::create(tq_.path(), qo));
    for (const auto& [name, members] : o_.groups) q_->create_group(name);
    std::printf("scenario seed %u (vary with ACKRING_SEED)\n", o_.seed);
    for (std::size_t g = 0; g < o_.groups.size(); ++g)
      for (std::uint32_t m = 0; m < o_.groups[g].second; ++m)
        roles_.push_back({o_.groups[g].first, static_cast<std::uint8_t>(g)});
  }

  void run() {
    start_processes();
    if (!supervise_until_settled()) return;
    expect_no_ghost_members();
    stop_consumers();
    if (::testing::Test::HasFatalFailure()) return;
    expect_stats_after_everyone_left();
    read_published();
    if (::testing::Test::HasFatalFailure()) return;
    DeliveryTally tally;
    for (std::size_t g = 0; g < o_.groups.size(); ++g) {
      check_group_log(g, tally);
      if (::testing::Test::HasFatalFailure()) return;
    }
    expect_leases_came_back_from_deaths(tally);
    check_member_slots_are_free();
  }

 private:
  struct Role {
    std::string group;
    std::uint8_t group_index;
  };

  // ACKRING_SEED=<n> varies the scenario (kill points, batch sizes).
  static ScenarioOptions with_env_seed(ScenarioOptions o) {
    if (const char* env = std::getenv("ACKRING_SEED"); env != nullptr && *env != '\0')
      o.seed ^= static_cast<std::uint32_t>(std::strtoul(env, nullptr, 0));
    return o;
  }

  [[nodiscard]] std::uint64_t total() const { return std::uint64_t{o_.producers} * o_.messages_per_producer; }
  // Messages settled so far, summed over the groups (each group's floor).
  [[nodiscard]] std::uint64_t settled_in_groups() const {
    std::uint64_t sum = 0;
    for (const auto& g : q_->stats().groups) sum += g.floor;
    return sum;
  }

  void spawn_consumer(std::uint32_t role) {
    ConsumerInstance inst;
    inst.role = role;
    inst.id = static_cast<std::uint16_t>(instances_.size());
    if (o_.kills == Kills::self_after_receive && planned_kills_ < o_.max_kills) {
      inst.kill_after = 20 + rng_() % 900;
      ++planned_kills_;
    }
    const RecordLog& log = *inst.log;
    const Role r = roles_[role];
    const std::uint16_t id = inst.id;
    const std::uint32_t kill_after = inst.kill_after;
    inst.child = fork_child([&, r, id, kill_after] {
      return consumer_main(tq_.path(), r.group, r.group_index, id, kill_after, o_, log, *control_);
    });
    instances_.push_back(std::move(inst));
  }

  void start_processes() {
    for (std::uint32_t r = 0; r < roles_.size(); ++r) spawn_consumer(r);
    for (std::uint32_t p = 0; p < o_.producers; ++p) {
      const RecordLog& log = producer_logs_[p];
      producers_.push_back(fork_child([&, p] { return producer_main(tq_.path(), p, o_, log); }));
    }
  }

  // Respawns the consumers that died, kills some (Kills::parent_random), and
  // returns once every group's floor reached the tail; false after a failure.
  bool supervise_until_settled() {
    const std::uint64_t start = now_ms();
    bool complete = false;
    while (!complete) {
      const std::uint64_t now = now_ms();
      if (now - start > o_.budget_ms) break;
      for (auto& p : producers_) {
        if (p.poll() && !p.exited_ok()) {
          ADD_FAILURE() << "producer " << p.describe();
          return false;
        }
      }
      const std::size_t live_instances = instances_.size();
      for (std::size_t i = 0; i < live_instances; ++i) {
        auto& inst = instances_[i];
        if (inst.child.reaped() || !inst.child.poll()) continue;
        if (!inst.child.killed_by(SIGKILL)) {
          ADD_FAILURE() << "consumer instance " << inst.id << " (" << roles_[inst.role].group << ") "
                        << inst.child.describe() << " before the stop signal";
          return false;
        }
        ++deaths_;
        spawn_consumer(inst.role);  // may reallocate `instances_`: `inst` is not used below
      }
      // Kills are spread over the run by progress, not by time: the k-th
      // (from 0) once the groups have settled (k + 1) / (max_kills + 2) of
      // what they will settle, so a machine that runs the scenario faster
      // still sees every kill (by time, a 150 ms run got only two).
      if (o_.kills == Kills::parent_random && parent_kills_ < o_.max_kills &&
          settled_in_groups() * (o_.max_kills + 2) >= total() * o_.groups.size() * (parent_kills_ + 1)) {
        std::vector<std::size_t> alive;
        for (std::size_t i = 0; i < instances_.size(); ++i)
          if (!instances_[i].child.reaped()) alive.push_back(i);
        auto& victim = instances_[alive[rng_() % alive.size()]];
        victim.child.kill(SIGKILL);
        victim.killed_by_parent = true;
        ++parent_kills_;
      }
      bool producers_done = true;
      for (auto& p : producers_) producers_done = producers_done && p.reaped();
      if (producers_done) {
        const QueueStats s = q_->stats();
        complete = s.tail == total() && s.groups.size() == o_.groups.size();
        for (const auto& g : s.groups) complete = complete && g.floor == s.tail;
      }
      if (!complete) sleep_ms(2);
    }
    const std::uint64_t elapsed_ms = now_ms() - start;
    if (!complete) {
      const QueueStats s = q_->stats();
      std::string where;
      for (const auto& g : s.groups)
        where += " group " + g.name + ": floor " + std::to_string(g.floor) + " next " + std::to_string(g.next) +
                 " in flight " + std::to_string(g.in_flight) + ";";
      ADD_FAILURE() << "not every message was settled in every group within " << o_.budget_ms << " ms: tail " << s.tail
                    << " of " << total() << ";" << where;
      return false;
    }
    std::printf("all %" PRIu64 " messages settled in every group after %" PRIu64 " ms, %u consumer deaths\n", total(),
                elapsed_ms, deaths_);
    return true;
  }

  // Dead members must have been reclaimed by the live ones: no ghost
  // (dead but registered) member may remain. Housekeeping runs every 50 ms
  // when idle, so give it a moment.
  void expect_no_ghost_members() {
    const std::uint64_t deadline = now_ms() + 3000;
    std::string ghosts;
    for (;;) {
      ghosts.clear();
      for (const auto& g : q_->stats().groups)
        for (const auto& m : g.members)
          if (!m.alive) ghosts += " " + g.name + "[" + std::to_string(m.index) + "] pid " + std::to_string(m.pid);
      if (ghosts.empty() || now_ms() > deadline) break;
      sleep_ms(10);
    }
    EXPECT_TRUE(ghosts.empty()) << "dead members still registered:" << ghosts;
  }

  void stop_consumers() {
    control_->stop.store(1, std::memory_order_release);
    for (auto& inst : instances_) {
      if (inst.child.reaped()) continue;
      ASSERT_TRUE(inst.child.wait_for(10s)) << "consumer instance " << inst.id << " did not leave after stop";
      // The parent's last kill can land in the round that found every message
      // settled: that instance was not reaped in the loop and dies of it here.
      if (inst.killed_by_parent && inst.child.killed_by(SIGKILL)) {
        killed_at_the_end_.insert(inst.child.pid());
        continue;
      }
      ASSERT_TRUE(inst.child.exited_ok()) << "consumer instance " << inst.id << " " << inst.child.describe();
    }
  }

  void expect_stats_after_everyone_left() {
    const QueueStats s = q_->stats();
    EXPECT_EQ(s.tail, total());
    EXPECT_EQ(s.published, total());
    EXPECT_EQ(s.aborted, 0u);
    for (const auto& g : s.groups) {
      EXPECT_EQ(g.floor, total()) << g.name;
      EXPECT_EQ(g.in_flight, 0u) << g.name;
      EXPECT_EQ(g.aborted_skipped, 0u) << g.name;
      EXPECT_EQ(g.corrupt_skipped, 0u) << g.name;
      EXPECT_EQ(g.dead_lettered, 0u) << g.name;
      // Everyone left, except an instance killed by the last kill: no live
      // member was left to reclaim its entry, so it may still be listed, dead.
      for (const auto& m : g.members)
        EXPECT_TRUE(!m.alive && killed_at_the_end_.count(m.pid) != 0)
            << g.name << " still lists member " << m.index << " (pid " << m.pid << ") after all left";
    }
  }

  // The producers' logs: every message published once, each at its own seq.
  void read_published() {
    for (const auto& log : producer_logs_)
      for (const Event& e : log.read_all<Event>()) {
        ASSERT_EQ(e.kind, EventKind::published);
        ASSERT_TRUE(published_.emplace(key_of(e.id), e.seq).second) << "message published twice";
      }
    ASSERT_EQ(published_.size(), total());
    std::vector<std::uint64_t> seqs;
    for (const auto& [key, seq] : published_) seqs.push_back(seq);
    std::sort(seqs.begin(), seqs.end());
    ASSERT_TRUE(std::adjacent_find(seqs.begin(), seqs.end()) == seqs.end()) << "two publishes reported one seq";
  }

  // The receipts the members of group `g` logged, by message key.
  void collect_receipts(std::size_t g, std::map<std::uint64_t, std::vector<LoggedReceipt>>& receipts) const {
    for (const auto& inst : instances_) {
      if (roles_[inst.role].group_index != g) continue;
      for (const Event& e : inst.log->read_all<Event>()) {
        ASSERT_NE(e.kind, EventKind::lease_lost) << "a live member lost a 30 s lease: seq " << e.seq;
        auto& rs = receipts[key_of(e.id)];
        if (e.kind == EventKind::received) {
          rs.push_back({inst.id, e.deliveries, e.seq, e.time_ns, false});
        } else if (e.kind == EventKind::acked) {
          auto it = std::find_if(rs.begin(), rs.end(), [&](const LoggedReceipt& r) {
            return r.instance == inst.id && r.deliveries == e.deliveries && !r.acked;
          });
          ASSERT_NE(it, rs.end()) << "ack without a receipt";
          it->acked = true;
        }
      }
    }
  }

  // Group `g` got every published message, at its seq, acked once; a message
  // was delivered again only after its holder died.
  void check_group_log(std::size_t g, DeliveryTally& tally) const {
    const std::string& gname = o_.groups[g].first;
    std::vector<bool> killed(instances_.size());
    for (const auto& inst : instances_) killed[inst.id] = inst.child.killed_by(SIGKILL);
    std::map<std::uint64_t, std::vector<LoggedReceipt>> receipts;
    collect_receipts(g, receipts);
    if (::testing::Test::HasFatalFailure()) return;
    for (const auto& [key, rs] : receipts)
      ASSERT_TRUE(published_.count(key)) << gname << ": received a message nobody published (key " << key << ")";
    for (const auto& [key, seq] : published_) {
      auto it = receipts.find(key);
      ASSERT_TRUE(it != receipts.end() && !it->second.empty())
          << gname << ": message " << (key >> 32) << "/" << (key & 0xffffffff) << " (seq " << seq << ") was lost";
      std::vector<LoggedReceipt> rs = it->second;
      std::sort(rs.begin(), rs.end(), [](const LoggedReceipt& a, const LoggedReceipt& b) { return a.deliveries < b.deliveries; });
      std::size_t acks = 0;
      for (std::size_t i = 0; i < rs.size(); ++i) {
        const LoggedReceipt& r = rs[i];
        ASSERT_EQ(r.seq, seq) << gname << ": delivered at another seq";
        if (i > 0) {
          ASSERT_GT(r.deliveries, rs[i - 1].deliveries)
              << gname << ": seq " << seq << " delivered twice with count " << r.deliveries;
        }
        acks += r.acked;
        if (i + 1 < rs.size()) {
          // A delivery that was followed by another one: its holder must have
          // died holding it, and the next delivery says it is a redelivery.
          ASSERT_TRUE(killed[r.instance] && !r.acked)
              << gname << ": seq " << seq << " was delivered again although instance " << r.instance
              << " (delivery " << r.deliveries << ") " << (r.acked ? "acked it" : "did not die");
          ++tally.redelivered;
          const std::uint64_t back = rs[i + 1].time_ns - r.time_ns;
          tally.max_return_ns = std::max(tally.max_return_ns, back);
        }
      }
      EXPECT_LE(acks, 1u) << gname << ": seq " << seq << " acked " << acks << " times";
      const LoggedReceipt& last = rs.back();
      if (o_.kills == Kills::parent_random) {
        // The parent may kill between ack and its log record: then the last
        // holder is dead and the ack did or did not happen (the floor says it did).
        EXPECT_TRUE(last.acked || killed[last.instance]) << gname << ": seq " << seq << " never acked";
        // The first logged delivery may be a redelivery when the first holder
        // died before it could log it.
        if (rs.front().deliveries != 1) ++tally.unlogged_prior;
      } else {
        EXPECT_TRUE(last.acked) << gname << ": seq " << seq << " never acked";
        EXPECT_EQ(rs.front().deliveries, 1u) << gname << ": seq " << seq;
        EXPECT_EQ(last.deliveries, rs.size()) << gname << ": seq " << seq << ": delivery counts have a gap";
      }
    }
  }

  void expect_leases_came_back_from_deaths(const DeliveryTally& tally) const {
    std::printf("%" PRIu64 " redeliveries after deaths; slowest came back %.1f ms after the dead holder got it; "
                "%" PRIu64 " first deliveries unlogged\n",
                tally.redelivered, static_cast<double>(tally.max_return_ns) / 1e6, tally.unlogged_prior);
    // Leases are 30 s: a lease that came back within 5 s came back because its
    // holder was seen dead, not because it expired.
    EXPECT_LT(tally.max_return_ns, 5'000'000'000ull) << "a dead member's lease came back only after "
                                                     << tally.max_return_ns / 1'000'000 << " ms";
    if (o_.kills == Kills::parent_random) {
      EXPECT_LE(tally.unlogged_prior, std::uint64_t{parent_kills_} * o_.consumer_batch_max);
    }
    if (o_.kills != Kills::none) {
      EXPECT_GE(deaths_, 3u) << "the scenario did not kill enough consumers to mean much";
    }
  }

  // Member slots were all freed: every group takes max_members new members.
  void check_member_slots_are_free() {
    std::vector<Consumer> members;
    for (const auto& [name, n] : o_.groups)
      for (std::uint32_t m = 0; m < o_.max_members; ++m) {
        ConsumerOptions co;
        co.create_group = false;
        ASSERT_NO_THROW(members.push_back(q_->consumer(name, co))) << name << " member " << m;
      }
  }

  const ScenarioOptions o_;
  TempQueue tq_;
  std::optional<Queue> q_;
  SharedBlock<Control> control_;
  std::mt19937 rng_;
  std::vector<Role> roles_;
  std::vector<ConsumerInstance> instances_;
  std::set<pid_t> killed_at_the_end_;  // killed by the parent's last kill: may stay listed, dead
  std::vector<RecordLog> producer_logs_;
  std::vector<Child> producers_;
  std::map<std::uint64_t, std::uint64_t> published_;  // key -> seq
  std::uint32_t planned_kills_ = 0;
  std::uint32_t parent_kills_ = 0;
  std::uint32_t deaths_ = 0;
};

// Runs the scenario and checks everything; failures are gtest failures.
void run_scenario(ScenarioOptions o) { Scenario(std::move(o)).run(); }

TEST(MultiProcessDelivery, should_ack_every_message_exactly_once_in_every_group_when_no_process_dies) {
  ScenarioOptions o;
  o.messages_per_producer = 6000;
  run_scenario(o);
}

TEST(MultiProcessDelivery, should_lose_nothing_and_give_back_the_leases_at_once_when_consumers_are_killed_after_receive_before_ack) {
  ScenarioOptions o;
  o.messages_per_producer = 6000;
  o.kills = Kills::self_after_receive;
  o.max_kills = 7;
  o.seed = 2;
  run_scenario(o);
}

TEST(MultiProcessDelivery, should_lose_nothing_and_leave_no_ghost_members_when_consumers_are_killed_at_random_times) {
  ScenarioOptions o;
  o.messages_per_producer = 40000;
  o.kills = Kills::parent_random;
  o.max_kills = 16;
  o.seed = 3;
  run_scenario(o);
}

}  // namespace
}  // namespace ackring::testing
