// Durability modes: the journal thread follows the ring (sync / async),
// slot reuse waits for the journal, Queue::recover rebuilds a queue from its
// journal (groups, floors, same seqs and payloads), a torn journal tail.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "ackring/ackring.hpp"
#include "shm/clock.hpp"
#include "queue/durability.hpp"
#include "journal/journal_reader.hpp"
#include "journal/journal_records.hpp"
#include "journal_test_util.hpp"
#include "queue/queue_file.hpp"
#include "shm/queue_state.hpp"
#include "test_util.hpp"

namespace ackring {
namespace {

using namespace std::chrono_literals;
using testing::TempJournalDir;
using testing::TempQueue;
using testing::wait_durable_seq;

QueueOptions durable_options(Durability d, const std::filesystem::path& journal_dir, std::uint32_t capacity = 64) {
  QueueOptions o = testing::small_options(capacity, 128);
  o.durability = d;
  o.journal_dir = journal_dir.string();
  o.async_flush_interval = Millis(20);
  return o;
}

std::filesystem::path journal_of(const TempJournalDir& jd, const TempQueue& tq) {
  return jd.root() / std::filesystem::path(tq.path()).filename();
}

std::string message_text(std::uint64_t i) { return "message-" + std::to_string(i) + std::string(i % 40, 'x'); }


// Journal records as (seq, body) messages.
std::vector<std::pair<std::uint64_t, std::string>> journal_messages(const std::filesystem::path& dir,
                                                                    detail::JournalScanResult* result = nullptr) {
  std::vector<std::pair<std::uint64_t, std::string>> out;
  auto r = detail::JournalReader::read(dir, {}, [&](const detail::JournalRecordView& v) {
    if (v.type != detail::JournalRecordType::message) return;
    detail::JournalMessageView m;
    if (!detail::decode_message(v.payload, v.flags, m)) return;
    out.emplace_back(v.seq, std::string(reinterpret_cast<const char*>(m.body.data()), m.body.size()));
  });
  if (result != nullptr) *result = r;
  return out;
}

// Each test runs on a fresh queue path and opens what it needs (QueueTest).
using DurableQueue = testing::QueueTest;

TEST_F(DurableQueue, should_default_to_no_durability_with_the_hooks_open) {
  auto& q = create(testing::small_options());
  EXPECT_EQ(q.options().durability, Durability::none);
  auto st = detail::open_file(tq.path());
  EXPECT_EQ(detail::durable_bound(*st), ~0ull);
  EXPECT_EQ(detail::wait_durable(*st, 12345, 0), Status::ok);
  auto p = q.producer();
  ASSERT_TRUE(p.publish("a").ok());
  EXPECT_EQ(q.stats().durable_seq, 1u);
}

TEST_F(DurableQueue, should_journal_every_message_in_ring_order_in_sync_mode) {
  const TempJournalDir& jd = journal();
  auto& q = create(durable_options(Durability::sync, jd.root(), 16));
  EXPECT_EQ(q.options().durability, Durability::sync);
  EXPECT_EQ(q.options().journal_dir, jd.root().string());
  auto c = q.consumer("g");
  auto p = q.producer();
  // 200 messages through a ring of 16: slots are reused only after their record is durable.
  constexpr std::uint64_t n = 200;
  for (std::uint64_t i = 0; i < n; ++i) {
    auto r = p.publish(message_text(i), 5s);
    ASSERT_TRUE(r.ok()) << i << ": " << to_string(r.status);
    ASSERT_EQ(r.seq, i);
    auto d = c.receive(5s);
    ASSERT_TRUE(d.has_value()) << i;
    ASSERT_EQ(c.ack(*d), Status::ok);
  }
  ASSERT_TRUE(wait_durable_seq(q, n));
  auto st = detail::open_file(tq.path());
  EXPECT_GE(detail::durable_bound(*st), n);
  EXPECT_EQ(detail::wait_durable(*st, n - 1, 0), Status::ok);
  EXPECT_EQ(detail::wait_durable(*st, n + 5, 0), Status::timeout);
  // What a sync publish will do after its commit: sleep until the record is durable.
  for (int i = 0; i < 20; ++i) {
    auto r = p.publish("waited", 5s);
    ASSERT_TRUE(r.ok());
    const std::uint64_t deadline = detail::monotonic_ns() + 5'000'000'000ull;
    ASSERT_EQ(detail::wait_durable(*st, r.seq, deadline), Status::ok) << i;
    EXPECT_GT(st->header().durable_seq.load(), r.seq);
    auto d = c.receive(5s);
    ASSERT_TRUE(d.has_value());
    ASSERT_EQ(c.ack(*d), Status::ok);
  }
  const auto stats = q.stats();
  EXPECT_EQ(stats.journal_pid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_GT(stats.journal_flushes, 0u);
  const auto msgs = journal_messages(journal_of(jd, tq));
  ASSERT_EQ(msgs.size(), n + 20);
  for (std::uint64_t i = 0; i < n; ++i) {
    EXPECT_EQ(msgs[i].first, i);
    EXPECT_EQ(msgs[i].second, message_text(i));
  }
}

TEST_F(DurableQueue, should_not_reuse_a_slot_before_its_record_is_durable) {
  // No journal thread in this process: the ring fills and stays full until
  // durable_seq moves, even though no group holds it back. (Async mode: in
  // sync mode publish itself would wait for the missing journal writer.)
  const TempJournalDir& jd = journal();
  detail::set_durability_threads_enabled(false);
  auto& q = create(durable_options(Durability::async, jd.root(), 8));
  detail::set_durability_threads_enabled(true);
  auto p = q.producer();
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(p.try_publish("x").ok());
  EXPECT_EQ(p.try_publish("y").status, Status::queue_full);
  auto st = detail::open_file(tq.path());
  detail::publish_durable(*st, 3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(p.try_publish("z").ok()) << i;
  EXPECT_EQ(p.try_publish("w").status, Status::queue_full);
}

TEST_F(DurableQueue, should_let_the_journal_thread_abort_a_stuck_claim_without_consumers) {
  const TempJournalDir& jd = journal();
  auto o = durable_options(Durability::sync, jd.root(), 16);
  o.claim_timeout = Millis(100);
  auto& q = create(o);
  // A producer that died right after its tail CAS: seq 0 claimed, never marked.
  auto st = detail::open_file(tq.path());
  st->header().tail.fetch_add(1);
  auto p = q.producer();
  auto r = p.publish("after the stuck claim", 5s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.seq, 1u);
  ASSERT_TRUE(wait_durable_seq(q, 2, 5s));
  EXPECT_EQ(q.stats().aborted, 1u);
  const auto msgs = journal_messages(journal_of(jd, tq));
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].first, 1u);
}

TEST_F(DurableQueue, should_bound_the_async_lag_by_the_flush_interval) {
  const TempJournalDir& jd = journal();
  auto& q = create(durable_options(Durability::async, jd.root(), 64));
  EXPECT_EQ(q.options().async_flush_interval, Millis(20));
  auto p = q.producer();
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(p.publish("m", 5s).ok());
    const std::uint64_t tail = q.stats().tail;
    // Interval 20 ms (+ one fdatasync): generous bound for a loaded machine.
    EXPECT_TRUE(wait_durable_seq(q, tail, 2s)) << "round " << round;
  }
  // Async consumers are not bounded by the journal.
  auto st = detail::open_file(tq.path());
  EXPECT_EQ(detail::durable_bound(*st), ~0ull);
}

TEST_F(DurableQueue, should_refuse_to_create_over_an_existing_journal) {
  const TempJournalDir& jd = journal();
  {
    auto q = Queue::create(tq.path(), durable_options(Durability::sync, jd.root()));
    auto p = q.producer();
    ASSERT_TRUE(p.publish("a").ok());
    ASSERT_TRUE(wait_durable_seq(q, 1));
  }
  ASSERT_TRUE(Queue::destroy(tq.path()));
  EXPECT_TRUE(testing::throws_error([&] { (void)Queue::create(tq.path(), durable_options(Durability::sync, jd.root())); },
                                    ErrorCode::already_exists));
}

TEST_F(DurableQueue, should_fail_create_at_once_when_the_journal_directory_cannot_be_made) {
  const TempJournalDir& jd = journal();
  // A regular file where the journal directory should go.
  const auto blocker = jd.root() / "file";
  { std::ofstream(blocker.string()) << "x"; }
  EXPECT_TRUE(testing::throws_error(
      [&] { (void)Queue::create(tq.path(), durable_options(Durability::sync, blocker)); }, ErrorCode::system));
  EXPECT_FALSE(std::filesystem::exists(tq.path()));
}

TEST_F(DurableQueue, should_recover_groups_floors_seqs_and_payloads) {
  const TempJournalDir& jd = journal();
  const auto opts = durable_options(Durability::sync, jd.root(), 64);
  constexpr std::uint64_t n = 50;
  {
    auto q = Queue::create(tq.path(), opts);
    auto a = q.consumer("a");
    auto b = q.consumer("b");
    auto p = q.producer();
    for (std::uint64_t i = 0; i < n; ++i) ASSERT_TRUE(p.publish(message_text(i), 5s).ok());
    ASSERT_TRUE(wait_durable_seq(q, n));
    // Group a acks the first 20; b acks nothing.
    for (int i = 0; i < 20; ++i) {
      auto d = a.receive(5s);
      ASSERT_TRUE(d.has_value());
      ASSERT_EQ(a.ack(*d), Status::ok);
    }
    // Let a periodic checkpoint record a's floor (every second).
    std::this_thread::sleep_for(1500ms);
    ASSERT_TRUE(wait_durable_seq(q, n));
  }
  // Simulated reboot: the queue file is gone, the journal stays.
  ASSERT_TRUE(Queue::destroy(tq.path()));
  RecoveryReport rep;
  auto q = Queue::recover(tq.path(), RecoverOptions{.journal_dir = jd.root(), .options = opts}, &rep);
  EXPECT_EQ(rep.journal_next_seq, n);
  EXPECT_EQ(rep.floor, 0u);
  EXPECT_EQ(rep.messages, n);
  EXPECT_EQ(rep.groups.size(), 2u);
  EXPECT_EQ(q.options().durability, Durability::sync);
  const auto s = q.stats();
  EXPECT_EQ(s.tail, n);
  EXPECT_EQ(s.durable_seq, n);
  EXPECT_EQ(testing::group_stats(q, "a").floor, 20u);
  EXPECT_EQ(testing::group_stats(q, "b").floor, 0u);
  EXPECT_TRUE(q.verify().healthy());
  auto a = q.consumer("a", {.create_group = false});
  for (std::uint64_t i = 20; i < n; ++i) {
    auto d = a.receive(2s);
    ASSERT_TRUE(d.has_value()) << i;
    EXPECT_EQ(d->seq(), i);
    EXPECT_EQ(testing::text_of(d->payload()), message_text(i));
    EXPECT_EQ(a.ack(*d), Status::ok);
  }
  auto b = q.consumer("b", {.create_group = false});
  for (std::uint64_t i = 0; i < n; ++i) {
    auto d = b.receive(2s);
    ASSERT_TRUE(d.has_value()) << i;
    EXPECT_EQ(d->seq(), i);
    EXPECT_EQ(testing::text_of(d->payload()), message_text(i));
  }
  // The recovered queue goes on: new publishes continue the seqs and the journal.
  auto p = q.producer();
  auto r = p.publish("after", 5s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.seq, n);
  EXPECT_TRUE(wait_durable_seq(q, n + 1));
}

TEST_F(DurableQueue, should_refuse_to_recover_what_does_not_fit) {
  const TempJournalDir& jd = journal();
  const auto opts = durable_options(Durability::sync, jd.root(), 64);
  {
    auto q = Queue::create(tq.path(), opts);
    q.create_group("g");
    auto p = q.producer();
    for (int i = 0; i < 40; ++i) ASSERT_TRUE(p.publish("m", 5s).ok());
    ASSERT_TRUE(wait_durable_seq(q, 40));
  }
  EXPECT_TRUE(testing::throws_error(
      [&] { (void)Queue::recover(tq.path(), RecoverOptions{.journal_dir = jd.root(), .options = opts}); },
      ErrorCode::already_exists));
  ASSERT_TRUE(Queue::destroy(tq.path()));
  auto small = opts;
  small.capacity = 16;
  EXPECT_TRUE(testing::throws_error(
      [&] { (void)Queue::recover(tq.path(), RecoverOptions{.journal_dir = jd.root(), .options = small}); },
      ErrorCode::resource_exhausted));
  TempJournalDir other;
  EXPECT_TRUE(testing::throws_error(
      [&] { (void)Queue::recover(tq.path(), RecoverOptions{.journal_dir = other.root(), .options = opts}); },
      ErrorCode::not_found));
  auto q = Queue::recover(tq.path(), RecoverOptions{.journal_dir = jd.root(), .options = opts});
  EXPECT_EQ(q.stats().tail, 40u);
}

TEST_F(DurableQueue, should_recover_a_consistent_queue_from_a_torn_tail) {
  const TempJournalDir& jd = journal();
  const auto opts = durable_options(Durability::sync, jd.root(), 64);
  constexpr std::uint64_t n = 30;
  {
    auto q = Queue::create(tq.path(), opts);
    q.create_group("g");
    auto p = q.producer();
    for (std::uint64_t i = 0; i < n; ++i) ASSERT_TRUE(p.publish(message_text(i), 5s).ok());
    ASSERT_TRUE(wait_durable_seq(q, n));
  }
  ASSERT_TRUE(Queue::destroy(tq.path()));
  // A crash in the middle of the next batch: junk after the last good record.
  detail::JournalScanResult before;
  (void)journal_messages(journal_of(jd, tq), &before);
  ASSERT_EQ(before.end, detail::JournalEnd::clean);
  const auto& last = before.segments.back();
  const auto seg = journal_of(jd, tq) / last.name;
  auto bytes = testing::file_bytes(seg);
  ASSERT_GT(bytes.size(), last.end_offset + 100);
  for (std::size_t i = 0; i < 100; ++i) bytes[last.end_offset + i] = static_cast<std::byte>(0xa5 ^ i);
  testing::write_file(seg, bytes);

  RecoveryReport rep;
  auto q = Queue::recover(tq.path(), RecoverOptions{.journal_dir = jd.root(), .options = opts}, &rep);
  EXPECT_EQ(rep.journal_end, JournalEnd::torn_tail);
  EXPECT_FALSE(rep.journal_message.empty());
  EXPECT_EQ(rep.journal_next_seq, n);
  EXPECT_EQ(rep.messages, n);
  EXPECT_TRUE(q.verify().healthy());
  auto c = q.consumer("g", {.create_group = false});
  for (std::uint64_t i = 0; i < n; ++i) {
    auto d = c.receive(2s);
    ASSERT_TRUE(d.has_value()) << i;
    EXPECT_EQ(d->seq(), i);
    EXPECT_EQ(testing::text_of(d->payload()), message_text(i));
  }
  // The journal continues after the torn tail (a new segment supersedes it).
  auto p = q.producer();
  ASSERT_TRUE(p.publish("next", 5s).ok());
  ASSERT_TRUE(wait_durable_seq(q, n + 1));
  detail::JournalScanResult after;
  const auto msgs = journal_messages(journal_of(jd, tq), &after);
  EXPECT_EQ(after.next_seq, n + 1);
  ASSERT_EQ(msgs.size(), n + 1);
  EXPECT_EQ(msgs.back().second, "next");
}

}  // namespace
}  // namespace ackring
