// A keyed publisher stalled (SIGSTOP) or killed at each named step of the
// dedup protocol (src/dedup/dedup.cpp, docs/dedup.md) while other publishers of
// the same key, publishers of keys sharing its probe window and a consumer
// keep going. Checked by content: every key is enqueued exactly once, every
// ok answer names the seq its key was delivered at, exactly one answer per
// key is fresh, and every publish returns within its timeout — behind a
// stalled publisher of its key it answers timeout, never spins.
//
// The situation is made by the failpoints, not by timing: the parent starts
// the others only once the publisher under test is stopped at its step (or
// dead there), so every verdict below is deterministic.
//
// On e0386e8 the killed cases at dedup.after_reserve/after_validate spun in
// reserve() for good once the window's other entries were live (failure 6),
// and a key whose publisher died at dedup.before_entry_commit was enqueued a
// second time through its neighbours' reuse of the entry (failure 7).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shm/clock.hpp"
#include "dedup/dedup.hpp"
#include "failpoint_util.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

constexpr std::size_t kMaxSize = 64;
constexpr std::uint32_t kDedupEntries = 1024;
constexpr std::uint32_t kVictimKey = 0;     // the key of the publisher under test
constexpr std::uint32_t kNeighbours = 10;   // keys 1..10: their windows overlap the victim's
constexpr int kRacers = 3;                  // publishers of the victim's key while it is stopped or dead
constexpr int kNeighbourWriters = 2;        // publishers of the neighbours, all of them each

enum class Fate {
  stall_then_resume,  // stopped at the step, then SIGCONT: it finishes its publish
  stall_then_kill,    // stopped at the step, then SIGKILL
  die,                // SIGKILL at the step (Action::die)
};

struct DedupCase {
  const char* step;
  Fate fate;
};

std::string case_name(const ::testing::TestParamInfo<DedupCase>& info) {
  std::string name = info.param.step;
  for (char& c : name)
    if (c == '.') c = '_';
  switch (info.param.fate) {
    case Fate::stall_then_resume: return name + "_stalled_then_resumed";
    case Fate::stall_then_kill: return name + "_stalled_then_killed";
    case Fate::die: return name + "_killed";
  }
  return name;
}

// Has the publisher under test made its message committed, i.e. is the key
// published, once it stopped at this step?
bool published_at(const char* step) { return std::string_view(step) == "dedup.before_entry_commit"; }

// Key names: "victim", and neighbours whose fingerprints start their probe
// window within 7 entries of the victim's (so they share entries with it).
std::vector<std::string> make_keys() {
  std::vector<std::string> keys{"victim"};
  const std::uint64_t mask = kDedupEntries - 1;
  const std::uint64_t base = detail::fingerprint("victim").lo & mask;
  for (std::uint32_t i = 0; keys.size() < 1 + kNeighbours; ++i) {
    const std::string k = "neighbour-" + std::to_string(i);
    const std::uint64_t b = detail::fingerprint(k).lo & mask;
    const std::uint64_t ahead = (b - base) & mask;
    const std::uint64_t behind = (base - b) & mask;
    if (ahead < detail::kDedupProbe / 2 || behind < detail::kDedupProbe / 2) keys.push_back(k);
  }
  return keys;
}

struct Answer {
  std::uint64_t seq = 0;
  std::uint64_t elapsed_ns = 0;
  std::uint64_t timeout_ns = 0;
  std::uint32_t key = 0;
  std::uint16_t writer = 0;
  std::uint8_t status = 0;  // ackring::Status
  std::uint8_t duplicate = 0;
};
static_assert(sizeof(Answer) == 32);

// Publishes key `k` with a payload naming (writer, k) and logs the answer.
Answer publish_key(Producer& p, const std::vector<std::string>& keys, std::uint32_t k, std::uint16_t writer,
                   std::chrono::nanoseconds timeout) {
  std::vector<std::byte> bytes;
  make_payload({writer, k}, kMaxSize, bytes);
  const std::uint64_t t0 = now_ns();
  const PublishResult r = p.publish(Bytes(bytes), PublishOptions{.key = keys[k]}, timeout);
  Answer a;
  a.elapsed_ns = now_ns() - t0;
  a.timeout_ns = static_cast<std::uint64_t>(timeout.count());
  a.seq = r.seq;
  a.key = k;
  a.writer = writer;
  a.status = static_cast<std::uint8_t>(r.status);
  a.duplicate = r.duplicate ? 1 : 0;
  return a;
}

struct Shared {
  std::atomic<int> stop_consumer{0};
};

// Forks a publisher of `payload` (keyed when `key` is not empty) armed to die
// at failpoint `step`, and returns once it died there.
void publish_and_die_at(const std::string& path, const char* step, const std::string& payload,
                        const std::string& key = {}) {
  Child publisher = fork_child([&] {
    auto pq = Queue::open(path);
    auto p = pq.producer();
    fp::arm(step, fp::Action::die);
    (void)(key.empty() ? p.publish(payload, 5s) : p.publish(payload, PublishOptions{.key = key}, 5s));
    return 1;
  });
  ASSERT_EQ(wait_stopped_or_dead(publisher, 20s), "dead") << "the publisher never reached " << step;
  ASSERT_TRUE(publisher.killed_by(SIGKILL)) << publisher.describe();
}

class DedupStep : public ::testing::TestWithParam<DedupCase> {};

TEST_P(DedupStep, should_enqueue_each_key_once_and_answer_within_the_timeout_whatever_a_publisher_does_there) {
  const DedupCase c = GetParam();
  const std::vector<std::string> keys = make_keys();
  TempQueue tq;
  QueueOptions options;
  options.capacity = 256;  // no lap: the slots of dead or stalled claims are never reused here
  options.max_message_size = kMaxSize;
  options.claim_timeout = 200ms;  // the stalls below last longer than this
  options.dedup_entries = kDedupEntries;
  auto q = Queue::create(tq.path(), options);
  q.create_group("g");
  SharedBlock<Shared> shared;
  // One log per child: writes of several processes to one memfd may race on
  // its shared file offset (memfds do not get atomic position updates).
  constexpr int kLogVictim = 0, kLogRacers = 1, kLogNeighbours = kLogRacers + kRacers,
                kLogLast = kLogNeighbours + kNeighbourWriters;
  std::vector<RecordLog> answers(kLogLast + 1);

  // The consumer keeps going throughout (it may abort a stalled claim).
  RecordLog deliveries;
  struct Delivered {
    std::uint64_t seq;
    MessageId id;
    std::uint32_t ok;
    std::uint32_t pad;
  };
  Child consumer = fork_child([&] {
    auto cq = Queue::open(tq.path());
    auto cons = cq.consumer("g");
    for (;;) {
      auto d = cons.receive(5ms);
      if (!d) {
        if (shared->stop_consumer.load(std::memory_order_acquire) != 0) {
          const auto s = cq.stats();
          std::uint64_t floor = 0;
          for (const auto& g : s.groups)
            if (g.name == "g") floor = g.floor;
          if (floor >= s.tail) return 0;
        }
        continue;
      }
      const auto id = check_payload(d->payload(), kMaxSize);
      deliveries.append(Delivered{d->seq(), id.value_or(MessageId{0xffff, 0xffff}), id ? 1u : 0u, 0});
      (void)cons.ack(*d);
    }
  });

  // The publisher under test, writer 1: stops or dies at c.step.
  Child victim = fork_child([&] {
    auto vq = Queue::open(tq.path());
    auto p = vq.producer();
    fp::arm(c.step, c.fate == Fate::die ? fp::Action::die : fp::Action::stall);
    answers[kLogVictim].append(publish_key(p, keys, kVictimKey, 1, 30s));
    return 0;
  });
  const std::string where = wait_stopped_or_dead(victim, 20s);
  ASSERT_EQ(where, c.fate == Fate::die ? "dead" : "stopped") << "the publisher never reached " << c.step;
  if (c.fate == Fate::die) ASSERT_TRUE(victim.killed_by(SIGKILL)) << victim.describe();

  // While it is stopped there (or dead): publishers of its key, and of keys
  // sharing its window. Behind a live (stopped) reservation that has not
  // committed its slot, the key's publishers must time out (short timeout);
  // otherwise they must finish (long timeout).
  const bool stalled = c.fate != Fate::die;
  const bool key_blocked = stalled && !published_at(c.step);
  const auto racer_timeout = key_blocked ? std::chrono::nanoseconds(100ms) : std::chrono::nanoseconds(10s);
  std::vector<Child> others;
  for (int r = 0; r < kRacers; ++r)
    others.push_back(fork_child([&, r] {
      auto rq = Queue::open(tq.path());
      auto p = rq.producer();
      answers[kLogRacers + r].append(
          publish_key(p, keys, kVictimKey, static_cast<std::uint16_t>(10 + r), racer_timeout));
      return 0;
    }));
  for (int w = 0; w < kNeighbourWriters; ++w)
    others.push_back(fork_child([&, w] {
      auto nq = Queue::open(tq.path());
      auto p = nq.producer();
      for (std::uint32_t i = 0; i < kNeighbours; ++i) {
        const std::uint32_t k = 1 + (w == 0 ? i : kNeighbours - 1 - i);  // opposite orders: contended keys
        answers[kLogNeighbours + w].append(publish_key(p, keys, k, static_cast<std::uint16_t>(20 + w), 10s));
      }
      return 0;
    }));
  for (auto& o : others) {
    ASSERT_TRUE(o.wait_for(30s)) << "a publisher did not return (spinning in reserve?)";
    ASSERT_TRUE(o.exited_ok()) << o.describe();
  }
  // Still stopped: nothing above woke it.
  if (stalled) {
    ASSERT_EQ(process_state(victim.pid()), 'T') << "the stalled publisher is not stopped";
    sleep_ms(300);  // longer than claim_timeout, with the consumer going
  }

  // Then it resumes (and finishes its publish) or is killed.
  if (c.fate == Fate::stall_then_resume) {
    ::kill(victim.pid(), SIGCONT);
    ASSERT_TRUE(victim.wait_for(30s)) << "the resumed publisher did not return";
    ASSERT_TRUE(victim.exited_ok()) << victim.describe();
  } else if (c.fate == Fate::stall_then_kill) {
    victim.kill_and_reap();
  }

  // A last publisher of every key, after all that: each is published by now.
  Child last = fork_child([&] {
    auto lq = Queue::open(tq.path());
    auto p = lq.producer();
    for (std::uint32_t k = 0; k <= kNeighbours; ++k) answers[kLogLast].append(publish_key(p, keys, k, 30, 10s));
    return 0;
  });
  ASSERT_TRUE(last.wait_for(30s)) << "the last publisher did not return";
  ASSERT_TRUE(last.exited_ok()) << last.describe();

  shared->stop_consumer.store(1, std::memory_order_release);
  ASSERT_TRUE(consumer.wait_for(30s)) << "the consumer did not get past every message";
  ASSERT_TRUE(consumer.exited_ok()) << consumer.describe();

  // By content: each key delivered exactly once, well formed.
  std::map<std::uint32_t, std::vector<std::uint64_t>> seqs_of_key;
  std::map<std::uint64_t, MessageId> at_seq;
  for (const Delivered& d : deliveries.read_all<Delivered>()) {
    ASSERT_EQ(d.ok, 1u) << "seq " << d.seq << ": malformed payload";
    const auto [it, fresh] = at_seq.emplace(d.seq, d.id);
    if (!fresh) {
      EXPECT_EQ(it->second, d.id) << "seq " << d.seq << " delivered as two different messages";
      continue;  // a redelivery of the same message
    }
    seqs_of_key[d.id.counter].push_back(d.seq);
  }
  std::vector<Answer> all_answers;
  for (const RecordLog& log : answers) {
    const auto mine = log.read_all<Answer>();
    all_answers.insert(all_answers.end(), mine.begin(), mine.end());
  }
  EXPECT_EQ(all_answers.size(), (c.fate == Fate::stall_then_resume ? 1u : 0u) + kRacers +
                                    kNeighbourWriters * kNeighbours + (1 + kNeighbours))
      << "a publisher did not log every answer";
  for (std::uint32_t k = 0; k <= kNeighbours; ++k) {
    std::string said;
    for (const Answer& a : all_answers)
      if (a.key == k) said += " " + std::to_string(a.writer) + ":" + std::string(to_string(static_cast<Status>(a.status)));
    ASSERT_EQ(seqs_of_key[k].size(), 1u) << keys[k] << " enqueued " << seqs_of_key[k].size() << " times; answers" << said;
  }
  EXPECT_EQ(seqs_of_key.size(), 1u + kNeighbours) << "a message that is no key's was delivered";

  // Every answer: within its timeout (generous bound: the timeout + 5 s);
  // ok answers name the seq the key was delivered at; exactly one fresh.
  std::map<std::uint32_t, int> fresh;
  int victim_answers = 0;
  int racer_timeouts = 0;
  for (const Answer& a : all_answers) {
    const auto s = static_cast<Status>(a.status);
    const std::string who = keys[a.key] + " by writer " + std::to_string(a.writer);
    EXPECT_LT(a.elapsed_ns, a.timeout_ns + 5'000'000'000ull) << who << " overran its timeout";
    victim_answers += a.writer == 1;
    if (a.writer >= 10 && a.writer < 20 && key_blocked) {
      EXPECT_EQ(s, Status::timeout) << who << ": published past a live reservation of its key";
      racer_timeouts += s == Status::timeout;
      EXPECT_GE(a.elapsed_ns, 90'000'000ull) << who << " gave up before its timeout";
      continue;
    }
    ASSERT_EQ(s, Status::ok) << who << ": " << to_string(s);
    const std::uint64_t delivered_at = seqs_of_key[a.key].front();
    EXPECT_EQ(a.seq, delivered_at) << who << (a.duplicate ? " (duplicate)" : " (fresh)") << " answered seq " << a.seq
                                   << ", delivered at " << delivered_at;
    fresh[a.key] += a.duplicate ? 0 : 1;
  }
  // The victim's key has no fresh answer when its message was committed by
  // a publisher that never answered (killed after committing its slot).
  const int victim_fresh = published_at(c.step) && c.fate != Fate::stall_then_resume ? 0 : 1;
  EXPECT_EQ(fresh[kVictimKey], victim_fresh) << keys[kVictimKey] << ": fresh answers";
  for (std::uint32_t k = 1; k <= kNeighbours; ++k) EXPECT_EQ(fresh[k], 1) << keys[k] << ": fresh answers";
  EXPECT_EQ(victim_answers, c.fate == Fate::stall_then_resume ? 1 : 0);
  if (key_blocked) EXPECT_EQ(racer_timeouts, kRacers);
  // Who published the victim's key: the victim itself if its message was
  // committed before it stopped or if it resumed; else someone else.
  const MessageId owner_of_key = at_seq.at(seqs_of_key[kVictimKey].front());
  if (published_at(c.step) || c.fate == Fate::stall_then_resume)
    EXPECT_EQ(owner_of_key.producer, 1u) << "the key's message is not the first publisher's";
  else
    EXPECT_NE(owner_of_key.producer, 1u) << "a publisher that died before committing got its message delivered";
}

INSTANTIATE_TEST_SUITE_P(
    Dedup, DedupStep,
    ::testing::Values(DedupCase{"dedup.after_reserve", Fate::stall_then_resume},
                      DedupCase{"dedup.after_reserve", Fate::stall_then_kill},
                      DedupCase{"dedup.after_reserve", Fate::die},
                      DedupCase{"dedup.after_validate", Fate::stall_then_resume},
                      DedupCase{"dedup.after_validate", Fate::stall_then_kill},
                      DedupCase{"dedup.after_validate", Fate::die},
                      DedupCase{"dedup.after_set_claimed", Fate::stall_then_resume},
                      DedupCase{"dedup.after_set_claimed", Fate::stall_then_kill},
                      DedupCase{"dedup.after_set_claimed", Fate::die},
                      DedupCase{"dedup.before_entry_commit", Fate::stall_then_resume},
                      DedupCase{"dedup.before_entry_commit", Fate::stall_then_kill},
                      DedupCase{"dedup.before_entry_commit", Fate::die}),
    case_name);

// Failure 6 in real processes: a publisher killed holding its reservation
// (dedup.after_validate) in a window whose every other entry is live. A
// try_publish of another key of that window must take the orphan and
// return; on e0386e8 it spun forever.
TEST(DedupOrphanInFullWindow, should_let_try_publish_of_another_key_take_a_killed_publishers_entry) {
  TempQueue tq;
  QueueOptions options;
  options.capacity = 256;
  options.max_message_size = kMaxSize;
  options.dedup_entries = 64;  // small: keys fill a window quickly
  auto q = Queue::create(tq.path(), options);
  const std::uint64_t mask = 63;
  const std::uint64_t base = detail::fingerprint("orphan").lo & mask;
  // Keys whose window starts exactly where the orphan's does.
  std::vector<std::string> same;
  for (std::uint32_t i = 0; same.size() < detail::kDedupProbe + 1; ++i) {
    const std::string k = "same-" + std::to_string(i);
    if ((detail::fingerprint(k).lo & mask) == base) same.push_back(k);
  }
  ASSERT_NO_FATAL_FAILURE(publish_and_die_at(tq.path(), "dedup.after_validate", "orphan", "orphan"));
  // The orphan holds the first entry of the window; fill the other 15.
  auto p = q.producer();
  for (std::size_t i = 0; i + 1 < detail::kDedupProbe; ++i) {
    const auto r = p.publish("x", PublishOptions{.key = same[i]}, 5s);
    ASSERT_TRUE(r.ok() && !r.duplicate) << same[i] << ": " << to_string(r.status);
  }
  Child taker = fork_child([&] {
    auto tq2 = Queue::open(tq.path());
    auto pp = tq2.producer();
    const auto r = pp.try_publish("x", PublishOptions{.key = same.back()});
    return r.ok() && !r.duplicate ? 0 : 10 + static_cast<int>(r.status);
  });
  ASSERT_TRUE(taker.wait_for(20s)) << "try_publish spun past its timeout (failure 6)";
  EXPECT_TRUE(taker.exited_ok()) << taker.describe();
  // The killed publisher's key was never committed: it publishes fresh... if
  // room is left; here the window is full of live keys, so it is refused.
  const auto r = p.try_publish("orphan", PublishOptions{.key = "orphan"});
  EXPECT_EQ(r.status, Status::dedup_full);
}

// Failure 7 in real processes: a publisher killed after committing its
// slot (dedup.before_entry_commit) leaves a reservation that points at its
// committed message. Keys of the same window that need an entry must not
// take it: on e0386e8 the 16th key did (the slot test ran only for the
// orphan's own key) and the killed publisher's key was enqueued again.
TEST(DedupOrphanInFullWindow, should_keep_a_killed_publishers_committed_key_when_its_window_fills) {
  TempQueue tq;
  QueueOptions options;
  options.capacity = 256;
  options.max_message_size = kMaxSize;
  options.dedup_entries = 64;
  auto q = Queue::create(tq.path(), options);
  q.create_group("g");
  const std::uint64_t mask = 63;
  const std::uint64_t base = detail::fingerprint("published").lo & mask;
  std::vector<std::string> same;
  for (std::uint32_t i = 0; same.size() < detail::kDedupProbe; ++i) {
    const std::string k = "same-" + std::to_string(i);
    if ((detail::fingerprint(k).lo & mask) == base) same.push_back(k);
  }
  ASSERT_NO_FATAL_FAILURE(publish_and_die_at(tq.path(), "dedup.before_entry_commit", "published", "published"));
  ASSERT_EQ(q.stats().tail, 1u);
  // 16 more keys of that window: 15 fit beside the orphan, the 16th finds
  // the window full (the orphan is a published key).
  auto p = q.producer();
  for (std::size_t i = 0; i + 1 < same.size(); ++i) {
    const auto r = p.publish("x", PublishOptions{.key = same[i]}, 5s);
    ASSERT_TRUE(r.ok() && !r.duplicate) << same[i] << ": " << to_string(r.status);
  }
  EXPECT_EQ(p.publish("x", PublishOptions{.key = same.back()}, 5s).status, Status::dedup_full)
      << "another key took the entry of a published key";
  const auto again = p.publish("published", PublishOptions{.key = "published"}, 5s);
  ASSERT_TRUE(again.ok()) << to_string(again.status);
  EXPECT_TRUE(again.duplicate) << "the killed publisher's committed key was published a second time";
  EXPECT_EQ(again.seq, 0u);
  EXPECT_EQ(q.stats().tail, detail::kDedupProbe) << "the key was enqueued twice";
}

// The residual of failure 7 (docs/dedup.md, "the recorded slot is reused"):
// a publisher killed between its slot commit and its entry commit, and
// nobody looks at its key before that slot is consumed and reused. The
// producer that reuses the slot records the key first (the slot still says
// kSlotKeyUnrecorded and proves the publish); before, the key was enqueued
// a second time once the slot held another message.
class DedupOrphanSlotReused : public ::testing::Test {
 protected:
  static constexpr std::uint32_t kCapacity = 4;

  void SetUp() override {
    QueueOptions options;
    options.capacity = kCapacity;
    options.max_message_size = kMaxSize;
    options.dedup_entries = 64;
    options.claim_timeout = 20ms;
    q_.emplace(Queue::create(tq_.path(), options));
    q_->create_group("g");
    // The publisher of "published" commits seq 0 and is killed before it
    // commits the key's dedup entry.
    ASSERT_NO_FATAL_FAILURE(publish_and_die_at(tq_.path(), "dedup.before_entry_commit", "published", "published"));
    ASSERT_EQ(q_->stats().tail, 1u);
    consumer_.emplace(q_->consumer("g"));
    producer_.emplace(q_->producer());
  }

  // Receives and acks seqs [0, end), publishing "lap" for every seq after 0.
  void consume_up_to(std::uint64_t end) {
    for (std::uint64_t seq = 0; seq < end; ++seq) {
      if (seq != 0) ASSERT_EQ(producer_->publish("lap", 5s).seq, seq);
      auto d = consumer_->receive(5s);
      ASSERT_TRUE(d.has_value() && d->seq() == seq) << "seq " << seq;
      ASSERT_EQ(d->text(), seq == 0 ? "published" : "lap");
      ASSERT_EQ(consumer_->ack(*d), Status::ok);
    }
  }

  // A retry of the killed publish must find the key published at seq 0.
  void expect_a_retry_is_a_duplicate_of_seq_0(const char* what) {
    const auto again = producer_->publish("published", PublishOptions{.key = "published"}, 5s);
    ASSERT_TRUE(again.ok()) << to_string(again.status);
    EXPECT_TRUE(again.duplicate) << "the killed publisher's key was enqueued a second time " << what;
    EXPECT_EQ(again.seq, 0u);
  }

  TempQueue tq_;
  std::optional<Queue> q_;
  std::optional<Consumer> consumer_;
  std::optional<Producer> producer_;
};

TEST_F(DedupOrphanSlotReused, should_remember_a_killed_publishers_key_when_its_slot_is_reused) {
  consume_up_to(kCapacity + 1);  // seq 4 reuses slot 0
  expect_a_retry_is_a_duplicate_of_seq_0("after its slot was reused");
  EXPECT_EQ(q_->stats().tail, kCapacity + 1);
}

// The same when the slot leaves the killed publisher's lap through an abort:
// the next lap's claimer dies before marking it, a consumer aborts that
// claim (its CAS replaces committed(0) by aborted(4)), and only later laps
// reuse the slot. The aborting consumer records the key before its CAS.
TEST_F(DedupOrphanSlotReused, should_remember_a_killed_publishers_key_when_the_next_claim_of_its_slot_is_aborted) {
  consume_up_to(kCapacity);
  // Seq 4 (slot 0): claimed on the tail, never marked.
  ASSERT_NO_FATAL_FAILURE(publish_and_die_at(tq_.path(), "publish.after_tail_cas", "never"));
  ASSERT_EQ(q_->stats().tail, kCapacity + 1);
  // The consumer finds seq 4 stuck, aborts it after claim_timeout, and the
  // publish after it (seq 5) is delivered.
  ASSERT_EQ(producer_->publish("after", 5s).seq, kCapacity + 1);
  auto d = consumer_->receive(10s);
  ASSERT_TRUE(d.has_value()) << "the unmarked claim of seq 4 was never aborted";
  EXPECT_EQ(d->seq(), kCapacity + 1);
  ASSERT_EQ(consumer_->ack(*d), Status::ok);
  EXPECT_EQ(q_->stats().aborted, 1u);
  // Slot 0 says aborted(4) now: only the dedup entry can tell the key's fate.
  expect_a_retry_is_a_duplicate_of_seq_0("after the claim of its slot was aborted");
}

}  // namespace
}  // namespace ackring::testing
