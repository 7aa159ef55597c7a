#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "ackring/ackring.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

// Each test runs on a fresh queue path and opens what it needs (QueueTest).
using DedupPublish = ackring::testing::QueueTest;
using ProcessOnce = ackring::testing::QueueTest;

TEST_F(DedupPublish, should_enqueue_a_keyed_message_once_and_answer_the_retry_with_its_seq) {
  auto& q = create({.capacity = 64, .max_message_size = 64});
  q.create_group("g");
  auto p = q.producer();
  const auto first = p.publish("payload", {.key = "order-42"});
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first.duplicate);
  const auto again = p.publish("payload", {.key = "order-42"});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, first.seq);
  EXPECT_EQ(q.stats().tail, 1u);
  EXPECT_EQ(q.stats().dedup.hits, 1u);
}

TEST_F(DedupPublish, should_still_answer_duplicate_after_the_first_message_was_acked) {
  auto& [q, c, p] = open({.capacity = 8, .max_message_size = 64});
  const auto first = p.publish("x", {.key = "k"});
  auto d = c.receive(100ms);
  ASSERT_TRUE(d);
  EXPECT_EQ(c.ack(*d), ackring::Status::ok);
  // Fill the ring past the slot so the original message is gone from it.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(p.publish("filler").ok());
    auto f = c.receive(100ms);
    ASSERT_TRUE(f);
    (void)c.ack(*f);
  }
  const auto again = p.publish("x", {.key = "k"});
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, first.seq);
}

TEST_F(DedupPublish, should_publish_again_once_the_window_has_passed) {
  auto& q = create({.capacity = 64, .max_message_size = 64, .dedup_window = 50ms});
  auto p = q.producer();
  ASSERT_FALSE(p.publish("x", {.key = "k"}).duplicate);
  std::this_thread::sleep_for(120ms);
  const auto again = p.publish("x", {.key = "k"});
  EXPECT_TRUE(again.ok());
  EXPECT_FALSE(again.duplicate);
}

TEST_F(DedupPublish, should_let_exactly_one_of_racing_threads_publish_a_key) {
  auto& q = create({.capacity = 1024, .max_message_size = 64});
  q.create_group("g");
  constexpr int kThreads = 4;
  constexpr int kKeys = 300;
  std::vector<std::thread> threads;
  std::atomic<int> fresh{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      auto p = q.producer();
      for (int k = 0; k < kKeys; ++k) {
        const std::string key = "key-" + std::to_string(k);
        const auto r = p.publish(key, {.key = key}, 5s);
        ASSERT_TRUE(r.ok()) << ackring::to_string(r.status);
        if (!r.duplicate) ++fresh;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(fresh.load(), kKeys);
  EXPECT_EQ(q.stats().tail, static_cast<std::uint64_t>(kKeys));
}

TEST_F(DedupPublish, should_refuse_with_dedup_full_when_every_entry_of_the_window_is_live) {
  auto& q = create({.capacity = 256, .max_message_size = 16, .dedup_entries = 16});
  auto p = q.producer();
  int refused = 0;
  for (int k = 0; k < 17; ++k)
    if (p.publish("x", {.key = "k" + std::to_string(k)}).status == ackring::Status::dedup_full) ++refused;
  EXPECT_EQ(refused, 1);  // a 16-entry table has one window: the 17th live key does not fit
  EXPECT_EQ(q.stats().dedup.full, 1u);
}

TEST_F(DedupPublish, should_evict_the_oldest_key_when_asked_to) {
  auto& q = create({.capacity = 256, .max_message_size = 16, .dedup_entries = 16,
                   .dedup_full_policy = ackring::DedupFullPolicy::evict_oldest});
  auto p = q.producer();
  ASSERT_TRUE(p.publish("x", {.key = "k0"}).ok());
  std::this_thread::sleep_for(12ms);  // entries keep coarse-clock ms (ticks up to 4 ms): make k0 strictly the oldest
  for (int k = 1; k < 17; ++k) ASSERT_TRUE(p.publish("x", {.key = "k" + std::to_string(k)}).ok());
  EXPECT_EQ(q.stats().dedup.evicted, 1u);
  EXPECT_FALSE(p.publish("x", {.key = "k0"}).duplicate);  // the evicted one is forgotten...
  EXPECT_EQ(q.stats().dedup.evicted, 2u);                  // ...and re-adding it evicted another
  EXPECT_EQ(q.stats().tail, 18u);
}

namespace {
// Texts and keys that outlive the KeyedPublish views into them.
struct KeyedBatch {
  std::vector<std::string> texts, keys;
  std::vector<ackring::KeyedPublish> messages;
  void add(std::string text, std::string key) {
    texts.push_back(std::move(text));
    keys.push_back(std::move(key));
  }
  std::span<ackring::KeyedPublish> views() {
    messages.clear();
    for (std::size_t i = 0; i < texts.size(); ++i) messages.push_back({ackring::as_bytes(texts[i]), keys[i]});
    return messages;
  }
};
}  // namespace

TEST_F(DedupPublish, should_publish_a_keyed_batch_in_order_and_answer_each_retried_key_with_its_first_seq) {
  auto& [q, c, p] = open({.capacity = 64, .max_message_size = 64});
  ASSERT_EQ(p.publish("before", {.key = "k-old"}).seq, 0u);
  KeyedBatch b;
  b.add("m0", "k0");
  b.add("m1", "k-old");  // published before the batch
  b.add("m2", "k2");
  b.add("m3", "k0");     // earlier in this batch
  b.add("m4", "");       // no key: published unkeyed
  const auto msgs = b.views();
  ASSERT_EQ(p.publish_keyed_batch(msgs), 5u);
  for (const auto& m : msgs) EXPECT_TRUE(m.result.ok());
  EXPECT_EQ(msgs[0].result.seq, 1u);
  EXPECT_TRUE(msgs[1].result.duplicate);
  EXPECT_EQ(msgs[1].result.seq, 0u);
  EXPECT_EQ(msgs[2].result.seq, 2u);
  EXPECT_TRUE(msgs[3].result.duplicate);
  EXPECT_EQ(msgs[3].result.seq, 1u);
  EXPECT_FALSE(msgs[4].result.duplicate);
  EXPECT_EQ(msgs[4].result.seq, 3u);
  std::vector<std::string> queued;
  while (auto d = c.try_receive()) {
    queued.emplace_back(d->text());
    EXPECT_EQ(d->has_key(), d->text() != "m4") << d->text();
    ASSERT_EQ(c.ack(*d), ackring::Status::ok);
  }
  EXPECT_EQ(queued, (std::vector<std::string>{"before", "m0", "m2", "m4"}));
}

TEST_F(DedupPublish, should_stop_a_keyed_batch_at_the_first_message_that_fails_and_leave_the_rest_untried) {
  auto& [q, c, p] = open({.capacity = 64, .max_message_size = 8});
  KeyedBatch b;
  b.add("m0", "k0");
  b.add("far too long for the queue", "k1");
  b.add("m2", "k2");
  auto msgs = b.views();
  msgs[2].result = {ackring::Status::empty, 99};  // a value the call must not write
  ASSERT_EQ(p.publish_keyed_batch(msgs), 1u);
  EXPECT_TRUE(msgs[0].result.ok());
  EXPECT_EQ(msgs[1].result.status, ackring::Status::too_large);
  EXPECT_EQ(msgs[2].result.status, ackring::Status::empty);
  EXPECT_EQ(msgs[2].result.seq, 99u);
  EXPECT_EQ(q.stats().tail, 1u);
  // The caller fixes the message and publishes from it on; k0 is not published twice.
  b.texts[1] = "m1";
  msgs = b.views();
  ASSERT_EQ(p.publish_keyed_batch(msgs), 3u);
  EXPECT_TRUE(msgs[0].result.duplicate);
  EXPECT_EQ(q.stats().tail, 3u);
}

TEST_F(DedupPublish, should_answer_no_dedup_for_a_keyed_batch_on_a_queue_without_a_table) {
  auto o = ackring::testing::small_options(16);
  o.dedup = false;
  auto& [q, c, p] = open(o);
  KeyedBatch b;
  b.add("m0", "");
  b.add("m1", "k1");
  auto msgs = b.views();
  ASSERT_EQ(p.publish_keyed_batch(msgs), 1u);  // the unkeyed one needs no table
  EXPECT_EQ(msgs[1].result.status, ackring::Status::no_dedup);
  EXPECT_EQ(q.stats().tail, 1u);
}

TEST_F(DedupPublish, should_let_exactly_one_of_racing_keyed_batches_publish_each_key) {
  auto& q = create({.capacity = 1024, .max_message_size = 64});
  auto c = q.consumer("g");
  constexpr int kThreads = 4;
  constexpr int kKeys = 256;
  std::vector<std::vector<std::uint64_t>> seqs(kThreads, std::vector<std::uint64_t>(kKeys));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      auto p = q.producer();
      KeyedBatch b;
      // Every thread in its own order of the same keys, 32 per batch.
      for (int k = 0; k < kKeys; ++k) {
        const int key = (k * (2 * t + 1)) % kKeys;
        b.add("payload-of-" + std::to_string(key), "key-" + std::to_string(key));
      }
      auto all = b.views();
      for (std::size_t from = 0; from < all.size(); from += 32) {
        auto part = all.subspan(from, 32);
        ASSERT_EQ(p.publish_keyed_batch(part, 5s), part.size());
      }
      for (int k = 0; k < kKeys; ++k) seqs[t][(k * (2 * t + 1)) % kKeys] = all[k].result.seq;
    });
  for (auto& th : threads) th.join();
  // Every thread was answered the same seq for a key, and that message holds the key's payload, once.
  for (int t = 1; t < kThreads; ++t) EXPECT_EQ(seqs[t], seqs[0]) << "thread " << t;
  std::map<std::uint64_t, std::string> queued;
  while (auto d = c.try_receive()) {
    queued.emplace(d->seq(), std::string(d->text()));
    ASSERT_EQ(c.ack(*d), ackring::Status::ok);
  }
  ASSERT_EQ(queued.size(), static_cast<std::size_t>(kKeys));
  for (int k = 0; k < kKeys; ++k) EXPECT_EQ(queued[seqs[0][k]], "payload-of-" + std::to_string(k));
}

TEST_F(ProcessOnce, should_skip_a_redelivered_message_that_was_processed) {
  auto& [q, c, p] = open({.capacity = 64, .max_message_size = 64}, {.lease = 30ms});
  ASSERT_TRUE(p.publish("job", {.key = "job-1"}).ok());
  auto d = c.receive(100ms);
  ASSERT_TRUE(d);
  // Processed, but the ack is lost (we never send it): the lease expires.
  EXPECT_EQ(c.mark_processed(*d), ackring::Status::ok);
  std::this_thread::sleep_for(60ms);
  auto again = c.receive(200ms);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->deliveries(), 2u);
  int calls = 0;
  EXPECT_EQ(c.process_once(*again, [&](const ackring::Delivery&) { ++calls; }), ackring::Status::duplicate);
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(c.receive(50ms));  // acked by process_once
}

TEST_F(ProcessOnce, should_keep_records_of_different_groups_apart) {
  auto& q = create({.capacity = 64, .max_message_size = 64});
  auto a = q.consumer("a");
  auto b = q.consumer("b");
  auto p = q.producer();
  ASSERT_TRUE(p.publish("m").ok());
  auto da = a.receive(100ms);
  auto db = b.receive(100ms);
  ASSERT_TRUE(da && db);
  int calls = 0;
  EXPECT_EQ(a.process_once(*da, [&](const ackring::Delivery&) { ++calls; }), ackring::Status::ok);
  EXPECT_FALSE(b.is_processed(*db));
  EXPECT_EQ(b.process_once(*db, [&](const ackring::Delivery&) { ++calls; }), ackring::Status::ok);
  EXPECT_EQ(calls, 2);
}

namespace {
// The payloads a process_once_batch handler saw, in order.
struct SeenPayloads {
  std::vector<std::string> texts;
  void operator()(const ackring::Delivery& d) { texts.emplace_back(d.text()); }
};
}  // namespace

TEST_F(ProcessOnce, should_handle_the_new_skip_the_processed_and_ack_the_whole_batch) {
  auto& [q, c, p] = open({.capacity = 64, .max_message_size = 64});
  // Keyed and unkeyed messages: a keyed one's record is its key, an unkeyed one's its seq.
  for (int i = 0; i < 6; ++i) {
    const std::string text = "m" + std::to_string(i);
    ASSERT_TRUE((i % 2 == 0 ? p.publish(text, {.key = "key-" + text}) : p.publish(text)).ok());
  }
  std::vector<ackring::Delivery> batch(6);
  ASSERT_EQ(c.receive_batch(batch, 1s), 6u);
  // m1 and m4 were processed before (by mark_processed, the one-by-one path).
  ASSERT_EQ(c.mark_processed(batch[1]), ackring::Status::ok);
  ASSERT_EQ(c.mark_processed(batch[4]), ackring::Status::ok);

  SeenPayloads seen;
  const auto r = c.process_once_batch(batch, seen);
  EXPECT_EQ(seen.texts, (std::vector<std::string>{"m0", "m2", "m3", "m5"}));
  EXPECT_EQ(r.handled, 4u);
  EXPECT_EQ(r.duplicates, 2u);
  EXPECT_EQ(r.acked, 6u);
  EXPECT_EQ(r.unrecorded, 0u);
  EXPECT_EQ(q.stats().groups.at(0).process_once_skips, 2u);
  EXPECT_FALSE(c.try_receive());  // all six acked
  // What the batch recorded, the one-by-one path sees, and the other way round.
  for (const auto& d : batch) EXPECT_TRUE(c.is_processed(d)) << d.text();
}

TEST_F(ProcessOnce, should_ack_what_came_before_a_throwing_handler_and_leave_the_rest_to_come_back) {
  auto& [q, c, p] = open({.capacity = 64, .max_message_size = 64});
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(p.publish("m" + std::to_string(i), {.key = "k" + std::to_string(i)}).ok());
  std::vector<ackring::Delivery> batch(4);
  ASSERT_EQ(c.receive_batch(batch, 1s), 4u);
  std::vector<std::string> handled;
  EXPECT_THROW((void)c.process_once_batch(batch,
                                          [&](const ackring::Delivery& d) {
                                            if (d.text() == "m2") throw std::runtime_error("handler failed");
                                            handled.emplace_back(d.text());
                                          }),
               std::runtime_error);
  EXPECT_EQ(handled, (std::vector<std::string>{"m0", "m1"}));
  EXPECT_TRUE(c.is_processed(batch[1]));
  EXPECT_FALSE(c.is_processed(batch[2]));  // the handler threw: nothing recorded
  EXPECT_FALSE(c.is_processed(batch[3]));  // never reached
  // m0 and m1 were acked; m2 and m3 are still leased to us: give them back now.
  EXPECT_EQ(c.ack(batch[0]), ackring::Status::lease_lost);
  EXPECT_EQ(c.ack(batch[1]), ackring::Status::lease_lost);
  ASSERT_EQ(c.nack(batch[2].receipt()), ackring::Status::ok);
  ASSERT_EQ(c.nack(batch[3].receipt()), ackring::Status::ok);

  std::vector<ackring::Delivery> again(4);
  ASSERT_EQ(c.receive_batch(again, 1s), 2u);
  SeenPayloads seen;
  const auto r = c.process_once_batch(std::span(again.data(), 2), seen);
  EXPECT_EQ(seen.texts, (std::vector<std::string>{"m2", "m3"}));
  EXPECT_EQ(again[0].deliveries(), 2u);
  EXPECT_EQ(r.handled, 2u);
  EXPECT_EQ(r.acked, 2u);
  EXPECT_FALSE(c.try_receive());
}

TEST_F(ProcessOnce, should_stop_a_batch_without_an_exception_when_a_handler_returns_false) {
  auto& [q, c, p] = open({.capacity = 64, .max_message_size = 64});
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(p.publish("m" + std::to_string(i), {.key = "k" + std::to_string(i)}).ok());
  std::vector<ackring::Delivery> batch(4);
  ASSERT_EQ(c.receive_batch(batch, 1s), 4u);
  std::vector<std::string> handled;
  const auto r = c.process_once_batch(batch, [&](const ackring::Delivery& d) {
    if (d.text() == "m2") return false;
    handled.emplace_back(d.text());
    return true;
  });
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(handled, (std::vector<std::string>{"m0", "m1"}));
  EXPECT_EQ(r.handled, 2u);
  EXPECT_EQ(r.acked, 2u);
  EXPECT_FALSE(c.is_processed(batch[2]));
  EXPECT_EQ(c.ack(batch[1]), ackring::Status::lease_lost);  // acked by the batch
  EXPECT_EQ(c.ack(batch[2]), ackring::Status::ok);          // still ours: not acked
  EXPECT_EQ(c.ack(batch[3]), ackring::Status::ok);
}

TEST_F(ProcessOnce, should_keep_the_records_of_different_groups_apart_in_a_batch) {
  auto& q = create({.capacity = 64, .max_message_size = 64});
  auto a = q.consumer("a");
  auto b = q.consumer("b");
  auto p = q.producer();
  ASSERT_TRUE(p.publish("m", {.key = "k"}).ok());
  std::vector<ackring::Delivery> da(1), db(1);
  ASSERT_EQ(a.receive_batch(da, 1s), 1u);
  ASSERT_EQ(b.receive_batch(db, 1s), 1u);
  SeenPayloads seen_a, seen_b;
  EXPECT_EQ(a.process_once_batch(da, seen_a).handled, 1u);
  EXPECT_EQ(b.process_once_batch(db, seen_b).handled, 1u);  // a's record is a's alone
  EXPECT_EQ(seen_b.texts, std::vector<std::string>{"m"});
}

TEST_F(ProcessOnce, should_handle_and_ack_a_batch_without_a_dedup_table_and_say_nothing_was_recorded) {
  auto o = ackring::testing::small_options(16);
  o.dedup = false;
  auto& [q, c, p] = open(o);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.publish("m" + std::to_string(i)).ok());
  std::vector<ackring::Delivery> batch(3);
  ASSERT_EQ(c.receive_batch(batch, 1s), 3u);
  SeenPayloads seen;
  const auto r = c.process_once_batch(batch, seen);
  EXPECT_EQ(seen.texts, (std::vector<std::string>{"m0", "m1", "m2"}));
  EXPECT_EQ(r.handled, 3u);
  EXPECT_EQ(r.unrecorded, 3u);
  EXPECT_EQ(r.acked, 3u);
  EXPECT_FALSE(c.try_receive());
}
