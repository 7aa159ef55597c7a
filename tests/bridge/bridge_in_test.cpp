// The inbound bridge (JetStream -> ackring) under a real nats-server: every
// stream message reaches the queue exactly once (a JetStream redelivery is a
// dedup hit), through a queue smaller than the backlog (back-pressure by nak),
// bridge SIGKILLs and a server restart.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "ackring/ackring.hpp"
#include "nats_fixture.hpp"
#include "test_util.hpp"

namespace ackring::testing {
namespace {

class BridgeIn : public JetStreamTest {
 protected:
  void SetUp() override { start("IN", "in.>"); }

  std::vector<std::string> in_args(const std::string& queue) const {
    return {"bridge", "in", queue, "--server", server_.url(), "--stream", "IN", "--consumer", "D",
            "--batch", "64", "--nak-delay", "50", "--request-timeout", "2000"};
  }
};

// Receives and acks everything in group "g" on its own thread, counting bodies.
class Reader {
 public:
  explicit Reader(Queue& q) : consumer_(q.consumer("g")), thread_([this] { loop(); }) {}
  ~Reader() {
    stop_ = true;
    thread_.join();
  }
  std::map<std::string, int> counts() {
    std::lock_guard lock(mu_);
    return counts_;
  }
  std::size_t distinct() {
    std::lock_guard lock(mu_);
    return counts_.size();
  }

 private:
  void loop() {
    while (!stop_) {
      if (auto d = consumer_.receive(std::chrono::milliseconds(20))) {
        {
          std::lock_guard lock(mu_);
          ++counts_[std::string(d->text())];
        }
        (void)consumer_.ack(*d);
      }
    }
  }
  Consumer consumer_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<std::string, int> counts_;
  std::thread thread_;
};

TEST_F(BridgeIn, should_put_every_stream_message_in_the_queue_exactly_once_across_bridge_kills_and_a_server_restart) {
  // A short ack wait: what a killed bridge had fetched comes back soon.
  ASSERT_TRUE(js_->add_pull_consumer("IN", "D", 1000));
  TempQueue tq;
  BridgeFilesCleanup cleanup(tq.path());
  // Smaller than a round: the bridge meets a full queue and naks.
  auto q = Queue::create(tq.path(), {.capacity = 128, .max_message_size = 64, .dedup_entries = 8192});
  q.create_group("g");
  Reader reader(q);
  int published = 0;
  auto publish = [&](int n) {
    for (int i = 0; i < n; ++i, ++published) {
      const std::string body = "n-" + std::to_string(published);
      ASSERT_TRUE(js_->publish("in.msgs", body, "test-" + body));
    }
  };
  for (int round = 0; round < 3; ++round) {
    publish(500);
    Child bridge = run_cli(in_args(tq.path()), log_);
    // Each round has 500 new messages: the bridge reports 100 of them
    // through (each process counts from 0), then it is killed.
    ASSERT_TRUE(wait_until([&] {
      const auto s = bridge_status_of(tq.path(), bridge.pid());
      return s && s->forwarded >= 100;
    })) << describe_bridges(tq.path()) << read_text(log_);
    if (round == 1) {
      // The server goes away under the running bridge and comes back; what
      // is published after that is pulled by the same bridge process.
      std::string why;
      ASSERT_TRUE(server_.restart(&why)) << why;
      ASSERT_TRUE(wait_until([&] {
        const auto s = bridge_status_of(tq.path(), bridge.pid());
        return s && s->reconnects >= 1;
      })) << describe_bridges(tq.path()) << read_text(log_);
      const std::uint64_t before = bridge_status_of(tq.path(), bridge.pid())->forwarded;
      publish(200);
      ASSERT_TRUE(wait_until([&] {
        const auto s = bridge_status_of(tq.path(), bridge.pid());
        return s && s->forwarded >= before + 200;
      })) << "bridge did not go on after the server restart: " << describe_bridges(tq.path()) << read_text(log_);
    }
    bridge.kill_and_reap();
  }
  Child last = run_cli(in_args(tq.path()), log_);
  ASSERT_TRUE(wait_until([&] { return bridge_status_of(tq.path(), last.pid()).has_value(); }))
      << describe_bridges(tq.path()) << read_text(log_);
  ASSERT_TRUE(wait_until([&] {
    const auto c = js_->consumer_state("IN", "D");
    return reader.distinct() == static_cast<std::size_t>(published) && c && c->first == 0 && c->second == 0;
  }, std::chrono::seconds(50)))
      << "not all through: reader has " << reader.distinct() << " of " << published << "\n"
      << describe_bridges(tq.path()) << read_text(log_);
  last.kill(SIGTERM);
  ASSERT_TRUE(last.wait_for(std::chrono::seconds(20)));
  EXPECT_TRUE(last.exited_ok()) << last.describe() << "\n" << describe_bridges(tq.path()) << read_text(log_);
  const auto counts = reader.counts();
  int doubled = 0;
  for (int i = 0; i < published; ++i) {
    const auto it = counts.find("n-" + std::to_string(i));
    ASSERT_NE(it, counts.end()) << i;
    if (it->second != 1) ++doubled;
  }
  EXPECT_EQ(doubled, 0) << "messages enqueued more than once";
  EXPECT_EQ(counts.size(), static_cast<std::size_t>(published));
  EXPECT_EQ(q.stats().published, static_cast<std::uint64_t>(published));
}

TEST_F(BridgeIn, should_make_a_redelivered_stream_message_a_dedup_hit_not_a_second_message) {
  // No Nats-Msg-Id: the bridge keys each message by stream, stream seq and stored time.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(js_->publish("in.msgs", "k-" + std::to_string(i)));
  TempQueue tq;
  BridgeFilesCleanup cleanup(tq.path());
  auto q = Queue::create(tq.path(), {.capacity = 64, .max_message_size = 64});
  q.create_group("g");
  auto args = in_args(tq.path());
  args.insert(args.end(), {"-n", "20"});
  Child first = run_cli(args, log_);
  ASSERT_TRUE(first.wait_for(std::chrono::seconds(30)));
  ASSERT_TRUE(first.exited_ok()) << first.describe() << read_text(log_);
  EXPECT_EQ(q.stats().published, 20u);
  // A consumer made anew delivers the whole stream again, as JetStream does
  // after lost acks: every message is a dedup hit in the queue.
  ASSERT_TRUE(js_->delete_consumer("IN", "D"));
  std::filesystem::remove(log_);
  Child second = run_cli(args, log_);
  ASSERT_TRUE(second.wait_for(std::chrono::seconds(30)));
  ASSERT_TRUE(second.exited_ok()) << second.describe() << read_text(log_);
  EXPECT_EQ(q.stats().published, 20u) << read_text(log_);
  EXPECT_NE(read_text(log_).find("forwarded 0, acked 20, retries 0, dedup hits 20"), std::string::npos)
      << read_text(log_);
}

TEST_F(BridgeIn, should_wait_for_a_removed_queue_and_fill_the_new_one) {
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(js_->publish("in.msgs", "a-" + std::to_string(i)));
  TempQueue tq;
  BridgeFilesCleanup cleanup(tq.path());
  std::optional<Queue> q(Queue::create(tq.path(), {.capacity = 64, .max_message_size = 64}));
  q->create_group("g");
  Child bridge = run_cli(in_args(tq.path()), log_);
  ASSERT_TRUE(wait_until([&] {
    const auto s = bridge_status_of(tq.path(), bridge.pid());
    return s && s->acked >= 20;
  })) << describe_bridges(tq.path()) << read_text(log_);
  q.reset();
  ASSERT_TRUE(Queue::destroy(tq.path()));
  // The bridge notices before its next batch and waits for the queue.
  q.emplace(Queue::create(tq.path(), {.capacity = 64, .max_message_size = 64}));
  q->create_group("g");
  ASSERT_TRUE(wait_until([&] {
    const auto s = bridge_status_of(tq.path(), bridge.pid());
    return s && s->queue_reopens >= 1;
  })) << describe_bridges(tq.path()) << read_text(log_);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(js_->publish("in.msgs", "b-" + std::to_string(i)));
  ASSERT_TRUE(wait_until([&] { return q->stats().published == 20; }))
      << describe_bridges(tq.path()) << read_text(log_);
  bridge.kill(SIGTERM);
  ASSERT_TRUE(bridge.wait_for(std::chrono::seconds(20)));
  EXPECT_TRUE(bridge.exited_ok()) << read_text(log_);
  auto c = q->consumer("g");
  for (int i = 0; i < 20; ++i) {
    const auto d = c.receive(std::chrono::seconds(5));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->text().substr(0, 2), "b-");
    (void)c.ack(*d);
  }
}

TEST_F(BridgeIn, should_put_messages_into_a_sync_queue_on_disk_before_acking_them) {
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(js_->publish("in.msgs", "s-" + std::to_string(i)));
  TempQueue tq;
  BridgeFilesCleanup cleanup(tq.path());
  const auto journal = server_.dir() / "journal";
  std::filesystem::create_directories(journal);
  auto q = Queue::create(tq.path(), {.capacity = 64, .max_message_size = 64, .durability = Durability::sync,
                                     .journal_dir = journal.string()});
  q.create_group("g");
  auto args = in_args(tq.path());
  args.insert(args.end(), {"-n", "50"});
  Child bridge = run_cli(args, log_);
  ASSERT_TRUE(bridge.wait_for(std::chrono::seconds(40)));
  ASSERT_TRUE(bridge.exited_ok()) << bridge.describe() << read_text(log_);
  // A sync publish returns once its record is on disk, and the bridge acks
  // only after it returned: all 50 are durable, and JetStream has them acked.
  const auto s = q.stats();
  EXPECT_EQ(s.published, 50u);
  EXPECT_GE(s.durable_seq, 50u);
  EXPECT_TRUE(wait_until([&] {
    const auto c = js_->consumer_state("IN", "D");
    return c && c->first == 0 && c->second == 0;
  })) << read_text(log_);
}

}  // namespace
}  // namespace ackring::testing
