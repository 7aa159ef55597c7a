// What a durable queue gets from its journal beyond recovery: the options it
// was created with (QUEUE file), its dedup keys after a reboot, durable dead
// letters, replay of a group (Queue::rewind_group, also across a recovery
// and within retention), the public journal reader and verify.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ackring/ackring.hpp"
#include "journal_test_util.hpp"
#include "test_util.hpp"

namespace ackring {
namespace {

using namespace std::chrono_literals;
using testing::TempJournalDir;
using testing::TempQueue;
using testing::wait_durable_seq;

QueueOptions durable(Durability d, const TempJournalDir& jd, std::uint32_t capacity = 64) {
  QueueOptions o = testing::small_options(capacity, 128);
  o.durability = d;
  o.journal_dir = jd.root().string();
  o.async_flush_interval = Millis(5);
  return o;
}


// Receives and acks everything there is until `quiet` passes without a message.
std::vector<std::pair<std::uint64_t, std::string>> drain(Consumer& c, std::chrono::milliseconds quiet = 300ms,
                                                         std::vector<bool>* replayed = nullptr) {
  std::vector<std::pair<std::uint64_t, std::string>> got;
  while (auto d = c.receive(quiet)) {
    got.emplace_back(d->seq(), std::string(d->text()));
    if (replayed != nullptr) replayed->push_back(d->replayed());
    EXPECT_EQ(c.ack(*d), Status::ok);
  }
  return got;
}

std::vector<std::string> texts(const std::vector<std::pair<std::uint64_t, std::string>>& v) {
  std::vector<std::string> out;
  for (const auto& [seq, text] : v) out.push_back(text);
  return out;
}

std::vector<std::string> numbered(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back("m" + std::to_string(i));
  return out;
}

void publish_numbered(Producer& p, int from, int to) {
  for (int i = from; i < to; ++i) ASSERT_TRUE(p.publish("m" + std::to_string(i), 5s).ok()) << i;
}

// Each test runs on a fresh queue path and opens what it needs (QueueTest).
using QueueFileOfJournal = testing::QueueTest;
using JournalReading = testing::QueueTest;
using Rewind = testing::QueueTest;
using DedupAfterRecovery = testing::QueueTest;
using DurableDeadLetters = testing::QueueTest;

TEST_F(QueueFileOfJournal, should_let_recover_rebuild_with_the_options_of_creation) {
  const TempJournalDir& jd = journal();
  auto opts = durable(Durability::async, jd, 128);
  opts.max_deliveries = 7;
  opts.max_groups = 5;
  opts.dedup_window = Millis(60'000);
  opts.journal_retain_age = std::chrono::seconds(3600);
  opts.publish_timestamp = PublishTimestamp::coarse;
  {
    auto q = Queue::create(tq.path(), opts);
    auto p = q.producer();
    ASSERT_TRUE(p.publish("x", 5s).ok());
    ASSERT_TRUE(wait_durable_seq(q, 1));
  }
  ASSERT_TRUE(Queue::destroy(tq.path()));
  RecoveryReport rep;
  RecoverOptions ro;
  ro.journal_dir = jd.root();
  auto q = Queue::recover(tq.path(), ro, &rep);
  EXPECT_TRUE(rep.options_from_journal);
  const auto o = q.options();
  EXPECT_EQ(o.capacity, 128u);
  EXPECT_EQ(o.max_deliveries, 7u);
  EXPECT_EQ(o.max_groups, 5u);
  EXPECT_EQ(o.dedup_window, Millis(60'000));
  EXPECT_EQ(o.durability, Durability::async);
  EXPECT_EQ(o.journal_retain_age, std::chrono::seconds(3600));
  EXPECT_EQ(o.publish_timestamp, PublishTimestamp::coarse);
}

TEST_F(QueueFileOfJournal, should_refuse_recovery_without_options_when_the_queue_file_is_damaged) {
  const TempJournalDir& jd = journal();
  {
    auto q = Queue::create(tq.path(), durable(Durability::sync, jd));
    auto p = q.producer();
    ASSERT_TRUE(p.publish("x", 5s).ok());
  }
  ASSERT_TRUE(Queue::destroy(tq.path()));
  const auto meta = jd.root() / std::filesystem::path(tq.path()).filename() / "QUEUE";
  ASSERT_TRUE(std::filesystem::exists(meta));
  { std::fstream f(meta, std::ios::in | std::ios::out | std::ios::binary); f.seekp(30); f.put('\x7f'); }
  RecoverOptions ro;
  ro.journal_dir = jd.root();
  try {
    (void)Queue::recover(tq.path(), ro);
    FAIL() << "recover accepted a damaged QUEUE file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
  }
  // With the options given, it recovers.
  ro.options = durable(Durability::sync, jd);
  auto q = Queue::recover(tq.path(), ro);
  EXPECT_EQ(q.stats().tail, 1u);
}

TEST_F(DedupAfterRecovery, should_answer_a_retried_key_as_duplicate_after_a_reboot) {
  const TempJournalDir& jd = journal();
  std::uint64_t first_seq = 0;
  {
    auto q = Queue::create(tq.path(), durable(Durability::sync, jd));
    auto p = q.producer();
    ASSERT_TRUE(p.publish("before", 5s).ok());
    const auto r = p.publish("order-17", PublishOptions{.key = "order-17"}, 5s);
    ASSERT_TRUE(r.ok());
    first_seq = r.seq;
    // Consumed and acked before the crash: the window is about time, not presence.
    auto c = q.consumer("billing");
    EXPECT_EQ(drain(c).size(), 2u);
  }
  ASSERT_TRUE(Queue::destroy(tq.path()));
  RecoveryReport rep;
  auto q = Queue::recover(tq.path(), RecoverOptions{.journal_dir = jd.root()}, &rep);
  EXPECT_EQ(rep.dedup_keys, 1u);
  auto p = q.producer();
  const auto again = p.publish("order-17 retry", PublishOptions{.key = "order-17"}, 5s);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, first_seq);
  const auto fresh = p.publish("order-18", PublishOptions{.key = "order-18"}, 5s);
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(fresh.duplicate);
}

TEST_F(DurableDeadLetters, should_journal_dead_letters_and_recover_them_with_the_queue) {
  const TempJournalDir& jd = journal();
  {
    auto q = Queue::create(tq.path(), durable(Durability::sync, jd));
    auto p = q.producer();
    ASSERT_TRUE(p.publish("poison", 5s).ok());
    auto c = q.consumer("work");
    auto d = c.receive(2s);
    ASSERT_TRUE(d.has_value());
    ASSERT_EQ(c.reject(d->receipt()), Status::ok);
    auto dlq = Queue::open(tq.dlq_path());
    EXPECT_EQ(dlq.options().durability, Durability::sync);
    EXPECT_TRUE(wait_durable_seq(dlq, 1));
  }
  ASSERT_TRUE(Queue::destroy(tq.path()));
  ASSERT_TRUE(Queue::destroy(tq.dlq_path()));
  RecoveryReport rep;
  auto q = Queue::recover(tq.path(), RecoverOptions{.journal_dir = jd.root()}, &rep);
  EXPECT_TRUE(rep.dead_letters_recovered) << rep.dead_letters_problem;
  const auto letters = Queue::open(tq.dlq_path()).peek(0, 10);
  ASSERT_EQ(letters.size(), 1u);
  const auto letter = parse_dead_letter(letters[0].payload);
  ASSERT_TRUE(letter.has_value());
  EXPECT_EQ(testing::text_of(letter->body), "poison");
  EXPECT_EQ(letter->reason, DeadLetterReason::rejected);
}

TEST_F(Rewind, should_replay_to_one_group_only_in_order_with_the_replayed_mark) {
  const TempJournalDir& jd = journal();
  auto& q = create(durable(Durability::sync, jd));
  auto a = q.consumer("a");
  auto b = q.consumer("b");
  auto p = q.producer();
  publish_numbered(p, 0, 10);
  EXPECT_EQ(texts(drain(a)), numbered(0, 10));
  EXPECT_EQ(texts(drain(b)), numbered(0, 10));

  const RewindReport rep = q.rewind_group("a", 4);
  EXPECT_EQ(rep.from_seq, 4u);
  EXPECT_EQ(rep.until_seq, 10u);
  EXPECT_EQ(rep.replayed, 6u);
  EXPECT_EQ(rep.first_replay_seq, 10u);
  publish_numbered(p, 10, 12);
  std::vector<bool> replayed;
  const auto got = drain(a, 300ms, &replayed);
  EXPECT_EQ(texts(got), (std::vector<std::string>{"m4", "m5", "m6", "m7", "m8", "m9", "m10", "m11"}));
  EXPECT_EQ(replayed, (std::vector<bool>{true, true, true, true, true, true, false, false}));
  // b never sees the copies, only what was published after.
  EXPECT_EQ(texts(drain(b)), numbered(10, 12));
  EXPECT_TRUE(q.verify().healthy());
}

TEST_F(Rewind, should_find_the_start_by_publish_time) {
  const TempJournalDir& jd = journal();
  auto& q = create(durable(Durability::sync, jd));
  auto a = q.consumer("a");
  auto p = q.producer();
  publish_numbered(p, 0, 3);
  std::this_thread::sleep_for(20ms);
  const auto since = std::chrono::system_clock::now();
  std::this_thread::sleep_for(20ms);
  publish_numbered(p, 3, 5);
  EXPECT_EQ(drain(a).size(), 5u);
  const RewindReport rep = q.rewind_group("a", since);
  EXPECT_EQ(rep.from_seq, 3u);
  EXPECT_EQ(texts(drain(a)), numbered(3, 5));
  // A time after every message replays nothing.
  EXPECT_EQ(q.rewind_group("a", std::chrono::system_clock::now() + 1h).replayed, 0u);
}

TEST_F(Rewind, should_skip_a_copy_whose_key_was_processed_with_process_once) {
  const TempJournalDir& jd = journal();
  auto& q = create(durable(Durability::async, jd));
  auto a = q.consumer("a");
  auto p = q.producer();
  ASSERT_TRUE(p.publish("keyed", PublishOptions{.key = "k1"}, 5s).ok());
  ASSERT_TRUE(p.publish("plain", 5s).ok());
  int effects = 0;
  for (int i = 0; i < 2; ++i) {
    auto d = a.receive(2s);
    ASSERT_TRUE(d.has_value());
    ASSERT_EQ(a.process_once(*d, [&](const Delivery&) { ++effects; }), Status::ok);
  }
  EXPECT_EQ(effects, 2);
  EXPECT_EQ(q.rewind_group("a", 0).replayed, 2u);
  // Both copies are the messages already processed: acked and skipped.
  for (int i = 0; i < 2; ++i) {
    auto d = a.receive(2s);
    ASSERT_TRUE(d.has_value());
    EXPECT_TRUE(d->replayed());
    EXPECT_TRUE(a.is_processed(*d));
    ASSERT_EQ(a.process_once(*d, [&](const Delivery&) { ++effects; }), Status::duplicate);
  }
  EXPECT_EQ(effects, 2);
}

TEST_F(Rewind, should_refuse_what_cannot_be_replayed) {
  const TempJournalDir& jd = journal();
  TempQueue plain;
  auto none = Queue::create(plain.path(), testing::small_options(16, 64));
  none.create_group("a");
  EXPECT_TRUE(testing::throws_error([&] { (void)none.rewind_group("a", 0); }, ErrorCode::invalid_argument));
  auto& q = create(durable(Durability::sync, jd));
  q.create_group("a");
  EXPECT_TRUE(testing::throws_error([&] { (void)q.rewind_group("nope", 0); }, ErrorCode::not_found));
  EXPECT_TRUE(testing::throws_error([&] { (void)q.rewind_group("a", 1); }, ErrorCode::invalid_argument));
  EXPECT_EQ(q.rewind_group("a", 0).replayed, 0u);
}

TEST_F(Rewind, should_keep_copies_for_their_group_across_a_recovery) {
  const TempJournalDir& jd = journal();
  {
    auto q = Queue::create(tq.path(), durable(Durability::sync, jd));
    auto a = q.consumer("a");
    auto b = q.consumer("b");
    auto p = q.producer();
    publish_numbered(p, 0, 4);
    EXPECT_EQ(drain(a).size(), 4u);
    EXPECT_EQ(drain(b).size(), 4u);
    std::this_thread::sleep_for(1200ms);  // a checkpoint with both floors at 4
    EXPECT_EQ(q.rewind_group("a", 2).replayed, 2u);
  }
  ASSERT_TRUE(Queue::destroy(tq.path()));
  auto q = Queue::recover(tq.path(), RecoverOptions{.journal_dir = jd.root()});
  auto a = q.consumer("a", {.create_group = false});
  auto b = q.consumer("b", {.create_group = false});
  std::vector<bool> replayed;
  EXPECT_EQ(texts(drain(a, 300ms, &replayed)), numbered(2, 4));
  EXPECT_EQ(replayed, (std::vector<bool>{true, true}));
  EXPECT_TRUE(drain(b).empty());
}

TEST_F(Rewind, should_replay_settled_segments_kept_by_retention) {
  const TempJournalDir& jd = journal();
  auto opts = durable(Durability::async, jd, 64);
  opts.max_message_size = 1024;
  opts.journal_retain_bytes = 64ull << 20;
  auto& q = create(opts);
  auto a = q.consumer("a");
  auto p = q.producer();
  // ~3 MiB of records: several 1 MiB segments, all settled by the only group.
  const std::string body(1000, 'r');
  constexpr int n = 3000;
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(p.publish(body + std::to_string(i), 5s).ok());
    auto d = a.receive(2s);
    ASSERT_TRUE(d.has_value());
    ASSERT_EQ(a.ack(*d), Status::ok);
  }
  std::this_thread::sleep_for(1200ms);  // checkpoints and retention run
  const auto summary = read_journal(tq.path(), jd.root());
  EXPECT_GT(summary.segments.size(), 2u);
  EXPECT_EQ(summary.first_seq, 0u) << "retention kept the settled segments";
  // Far more than the ring holds: the rewind waits for room while the group consumes.
  RewindReport rep;
  std::thread rewinder([&] { rep = q.rewind_group("a", 0); });
  for (int i = 0; i < n; ++i) {
    auto d = a.receive(5s);
    if (!d.has_value()) {
      ADD_FAILURE() << "copy " << i << " did not arrive";
      break;
    }
    EXPECT_TRUE(d->replayed());
    if (d->text() != body + std::to_string(i)) {
      ADD_FAILURE() << "copy " << i << " out of order or wrong";
      break;
    }
    ASSERT_EQ(a.ack(*d), Status::ok);
  }
  rewinder.join();
  EXPECT_EQ(rep.replayed, static_cast<std::uint64_t>(n));
}

TEST_F(JournalReading, should_hand_out_every_record_decoded_and_stop_when_asked) {
  const TempJournalDir& jd = journal();
  auto& q = create(durable(Durability::sync, jd));
  q.create_group("g");
  auto p = q.producer();
  ASSERT_TRUE(p.publish("one", 5s).ok());
  ASSERT_TRUE(p.publish("two", PublishOptions{.key = "k"}, 5s).ok());
  std::vector<std::string> bodies;
  int checkpoints = 0;
  bool keyed = false;
  const auto s = read_journal(tq.path(), jd.root(), [&](const JournalEntry& e) {
    if (e.kind == JournalRecordKind::message) {
      bodies.emplace_back(reinterpret_cast<const char*>(e.body.data()), e.body.size());
      keyed = keyed || e.has_key;
    }
    checkpoints += e.kind == JournalRecordKind::checkpoint;
    return true;
  });
  EXPECT_EQ(bodies, (std::vector<std::string>{"one", "two"}));
  EXPECT_TRUE(keyed);
  EXPECT_GE(checkpoints, 1);
  EXPECT_EQ(s.end, JournalEnd::clean);
  EXPECT_EQ(s.next_seq, 2u);
  ASSERT_TRUE(s.options.has_value());
  EXPECT_EQ(s.options->capacity, 64u);
  int seen = 0;
  const auto stopped = read_journal(tq.path(), jd.root(), [&](const JournalEntry&) { return ++seen < 1; });
  EXPECT_EQ(seen, 1);
  EXPECT_TRUE(stopped.stopped);
  EXPECT_EQ(stopped.next_seq, 2u) << "the summary still covers the whole journal";
  EXPECT_TRUE(testing::throws_error([&] { (void)read_journal("/dev/shm/ackring-no-such-queue", jd.root()); },
                                    ErrorCode::not_found));
}

TEST_F(JournalReading, should_make_verify_report_a_damaged_journal) {
  const TempJournalDir& jd = journal();
  auto& q = create(durable(Durability::sync, jd));
  auto p = q.producer();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(p.publish("message " + std::to_string(i), 5s).ok());
  auto v = q.verify();
  EXPECT_TRUE(v.healthy());
  EXPECT_TRUE(v.journal_checked);
  EXPECT_EQ(v.journal_end, JournalEnd::clean);
  EXPECT_GE(v.journal_records, 20u);
  // Flip a byte in the middle of the first segment's records.
  const auto dir = journal_directory(tq.path(), jd.root());
  std::filesystem::path segment;
  for (const auto& f : std::filesystem::directory_iterator(dir))
    if (f.path().extension() == ".wal") segment = f.path();
  ASSERT_FALSE(segment.empty());
  { std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary); f.seekp(64 + 200); f.put('\x55'); }
  v = q.verify();
  EXPECT_FALSE(v.healthy());
  EXPECT_EQ(v.journal_end, JournalEnd::corrupt);
}

}  // namespace
}  // namespace ackring
