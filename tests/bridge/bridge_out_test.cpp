// The outbound bridge (ackring -> JetStream) under a real nats-server: every
// message ends up in the stream exactly once, checked by content, whatever
// the bridge (SIGKILL) and the server (restart) went through.
#include <gtest/gtest.h>

#include <fcntl.h>

#include <map>
#include <string>

#include "ackring/ackring.hpp"
#include "ackring/bridge.hpp"
#include "dedup/dedup.hpp"
#include "nats_fixture.hpp"
#include "test_util.hpp"

namespace ackring::testing {
namespace {

class BridgeOut : public JetStreamTest {
 protected:
  void SetUp() override { start("OUT", "out.>"); }

  std::vector<std::string> out_args(const std::string& queue) const {
    return {"bridge", "out", queue, "--group", "g", "--server", server_.url(), "--stream", "OUT", "--subject",
            "out.msgs", "--max-in-flight", "64", "--request-timeout", "2000"};
  }

  // Status of the bridge process `c` once `pred` holds for it (or a hang is detected).
  bool wait_status(const std::string& queue, const Child& c, const std::function<bool(const bridge::BridgeStatus&)>& pred) {
    return wait_until([&] {
      const auto s = bridge_status_of(queue, c.pid());
      return s && pred(*s);
    });
  }

  // Every published index exactly once in the stream, nothing else.
  void expect_stream_holds_each_once(const std::string& prefix, int n) {
    const auto msgs = js_->read_all("OUT");
    std::map<std::string, int> seen;
    for (const auto& [body, id] : msgs) {
      ++seen[body];
      EXPECT_FALSE(id.empty()) << "message without Nats-Msg-Id: " << body;
    }
    int missing = 0, doubled = 0;
    for (int i = 0; i < n; ++i) {
      const auto it = seen.find(prefix + std::to_string(i));
      if (it == seen.end()) ++missing;
      else if (it->second != 1) ++doubled;
    }
    EXPECT_EQ(missing, 0) << "messages missing from the stream";
    EXPECT_EQ(doubled, 0) << "messages in the stream more than once";
    EXPECT_EQ(msgs.size(), static_cast<std::size_t>(n)) << "stream size; bridge log:\n" << read_text(log_);
  }
};

TEST_F(BridgeOut, should_put_every_message_in_the_stream_exactly_once_across_bridge_kills_and_a_server_restart) {
  TempQueue tq;
  BridgeFilesCleanup cleanup(tq.path());
  // Each kill of a bridge that holds a message counts as one of its
  // deliveries: room for all of them, so none is dead-lettered.
  auto q = Queue::create(tq.path(), {.capacity = 1024, .max_message_size = 256, .max_deliveries = 254});
  q.create_group("g");
  auto producer = q.producer();
  constexpr int kRounds = 4;
  constexpr int kPerRound = 500;
  int published = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kPerRound; ++i, ++published)
      ASSERT_TRUE(producer.publish("m-" + std::to_string(published), std::chrono::seconds(10)).ok());
    Child bridge = run_cli(out_args(tq.path()), log_);
    // Each round has 500 new messages: the bridge reports 100 of them acked
    // (each process counts from 0), then it is killed, usually with
    // publishes outstanding.
    ASSERT_TRUE(wait_status(tq.path(), bridge, [](const auto& s) { return s.acked >= 100; }))
        << describe_bridges(tq.path()) << read_text(log_);
    if (round == 1) {
      // The server goes away under the running bridge and comes back; what
      // is published after that goes through the same bridge process.
      std::string why;
      ASSERT_TRUE(server_.restart(&why)) << why;
      ASSERT_TRUE(wait_status(tq.path(), bridge, [](const auto& s) { return s.reconnects >= 1; }))
          << describe_bridges(tq.path()) << read_text(log_);
      for (int i = 0; i < 200; ++i, ++published)
        ASSERT_TRUE(producer.publish("m-" + std::to_string(published), std::chrono::seconds(10)).ok());
      ASSERT_TRUE(wait_until([&] {
        const auto g = group_stats(q, "g");
        return g.lag == 0 && g.in_flight == 0;
      })) << "bridge did not go on after the server restart: " << describe_bridges(tq.path()) << read_text(log_);
    }
    bridge.kill_and_reap();
  }
  // A last bridge drains what is left (the killed ones' leases come back to
  // the group as soon as their processes are seen dead) and stops cleanly.
  Child last = run_cli(out_args(tq.path()), log_);
  ASSERT_TRUE(wait_status(tq.path(), last, [](const auto&) { return true; })) << describe_bridges(tq.path()) << read_text(log_);
  ASSERT_TRUE(wait_until([&] {
    const auto g = group_stats(q, "g");
    return g.lag == 0 && g.in_flight == 0;
  })) << "group not drained: " << describe_bridges(tq.path()) << read_text(log_);
  last.kill(SIGTERM);
  ASSERT_TRUE(last.wait_for(std::chrono::seconds(20)));
  EXPECT_TRUE(last.exited_ok()) << last.describe() << "\n" << describe_bridges(tq.path()) << read_text(log_);
  expect_stream_holds_each_once("m-", published);
}

TEST_F(BridgeOut, should_tell_a_recreated_queue_from_the_old_one_and_forward_both) {
  TempQueue tq;
  BridgeFilesCleanup cleanup(tq.path());
  {
    auto q = Queue::create(tq.path(), {.capacity = 256, .max_message_size = 64});
    q.create_group("g");
    auto p = q.producer();
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(p.publish("a-" + std::to_string(i)).ok());
  }
  Child bridge = run_cli(out_args(tq.path()), log_);
  ASSERT_TRUE(wait_status(tq.path(), bridge, [](const auto& s) { return s.acked >= 100; })) << describe_bridges(tq.path()) << read_text(log_);
  // Removed and created again: the new queue's seqs start at 0 again, so
  // only the publish time in the Nats-Msg-Id keeps its messages from being
  // dropped as duplicates of the old ones.
  ASSERT_TRUE(Queue::destroy(tq.path()));
  auto q = Queue::create(tq.path(), {.capacity = 256, .max_message_size = 64});
  q.create_group("g");
  auto p = q.producer();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(p.publish("b-" + std::to_string(i)).ok());
  ASSERT_TRUE(wait_until([&] {
    const auto s = bridge_status_of(tq.path(), bridge.pid());
    const auto g = group_stats(q, "g");
    return s && s->queue_reopens >= 1 && g.lag == 0 && g.in_flight == 0;
  })) << describe_bridges(tq.path()) << read_text(log_);
  bridge.kill(SIGTERM);
  ASSERT_TRUE(bridge.wait_for(std::chrono::seconds(20)));
  EXPECT_TRUE(bridge.exited_ok()) << describe_bridges(tq.path()) << read_text(log_);
  const auto msgs = js_->read_all("OUT");
  std::map<std::string, int> seen;
  for (const auto& [body, id] : msgs) ++seen[body];
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(seen["a-" + std::to_string(i)], 1) << i;
    EXPECT_EQ(seen["b-" + std::to_string(i)], 1) << i;
  }
  EXPECT_EQ(msgs.size(), 200u);
}

// A keyed message's Nats-Msg-Id comes from its key (the fingerprint the queue
// keeps), not from its queue and seq: the same keys forwarded from a second
// queue are duplicates in the stream, unkeyed messages are not.
TEST_F(BridgeOut, should_give_a_keyed_message_an_id_from_its_key_so_a_key_is_one_message_in_the_stream) {
  constexpr int kKeys = 40;
  TempQueue first_queue;
  TempQueue second_queue;
  BridgeFilesCleanup cleanup_first(first_queue.path());
  BridgeFilesCleanup cleanup_second(second_queue.path());
  for (const auto* tq : {&first_queue, &second_queue}) {
    auto q = Queue::create(tq->path(), {.capacity = 256, .max_message_size = 64});
    q.create_group("g");
    auto p = q.producer();
    const std::string tag = tq == &first_queue ? "first-" : "second-";
    for (int i = 0; i < kKeys; ++i) {
      const std::string key = "order-" + std::to_string(i);
      ASSERT_TRUE(p.publish(tag + key, PublishOptions{.key = key}).ok());
      ASSERT_TRUE(p.publish(tag + "plain-" + std::to_string(i)).ok());
    }
  }
  for (const auto* tq : {&first_queue, &second_queue}) {
    Child bridge = run_cli(out_args(tq->path()), log_);
    ASSERT_TRUE(wait_status(tq->path(), bridge, [](const auto& s) { return s.acked >= 2 * kKeys; }))
        << describe_bridges(tq->path()) << read_text(log_);
    bridge.kill(SIGTERM);
    ASSERT_TRUE(bridge.wait_for(std::chrono::seconds(20)));
    EXPECT_TRUE(bridge.exited_ok()) << read_text(log_);
  }
  const auto msgs = js_->read_all("OUT");
  std::map<std::string, std::string> id_of;
  for (const auto& [body, id] : msgs) id_of[body] = id;
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "order-" + std::to_string(i);
    const auto it = id_of.find("first-" + key);
    ASSERT_NE(it, id_of.end()) << key << " of the first queue is not in the stream";
    const detail::Fingerprint fp = detail::fingerprint(key);
    EXPECT_EQ(it->second, bridge::outbound_key_msg_id({fp.lo, fp.hi})) << key;
    EXPECT_EQ(id_of.count("second-" + key), 0u) << key << " of the second queue was not taken for a duplicate";
    EXPECT_EQ(id_of.count("first-plain-" + std::to_string(i)), 1u);
    EXPECT_EQ(id_of.count("second-plain-" + std::to_string(i)), 1u);
  }
  EXPECT_EQ(msgs.size(), static_cast<std::size_t>(3 * kKeys));
}

}  // namespace
}  // namespace ackring::testing
