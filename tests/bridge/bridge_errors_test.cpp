// Bad input to `ackring bridge`: a clear one-line error, a non-zero exit, and
// nothing half-done on either side.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "ackring/ackring.hpp"
#include "nats_fixture.hpp"
#include "test_util.hpp"

namespace ackring::testing {
namespace {

class BridgeErrors : public JetStreamTest {
 protected:
  void SetUp() override { start("", ""); }

  // Runs the CLI to completion: (exit code, its output).
  std::pair<int, std::string> run(const std::vector<std::string>& args) {
    std::filesystem::remove(log_);
    Child c = run_cli(args, log_);
    EXPECT_TRUE(c.wait_for(std::chrono::seconds(30))) << "bridge did not exit";
    const int code = c.reaped() && WIFEXITED(c.status()) ? WEXITSTATUS(c.status()) : -1;
    return {code, read_text(log_)};
  }
};

// A loopback port nobody listens on: bound and closed again.
int unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST_F(BridgeErrors, should_refuse_an_unreachable_server_an_unknown_stream_and_a_foreign_subject_taking_nothing) {
  ASSERT_TRUE(js_->add_stream("S", "s.>"));
  TempQueue tq;
  BridgeFilesCleanup cleanup(tq.path());
  auto q = Queue::create(tq.path(), {.capacity = 64, .max_message_size = 64});
  q.create_group("g");
  auto p = q.producer();
  ASSERT_TRUE(p.publish("x").ok());

  auto [code, out] = run({"bridge", "out", tq.path(), "-g", "g", "--server",
                          "nats://127.0.0.1:" + std::to_string(unused_port()), "--stream", "S", "--subject", "s.a",
                          "--connect-timeout", "500"});
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("cannot connect to NATS server"), std::string::npos) << out;

  std::tie(code, out) = run({"bridge", "out", tq.path(), "-g", "g", "--server", server_.url(), "--stream", "NOPE",
                             "--subject", "s.a"});
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("stream 'NOPE' not found"), std::string::npos) << out;

  std::tie(code, out) = run({"bridge", "out", tq.path(), "-g", "g", "--server", server_.url(), "--stream", "S",
                             "--subject", "other.a"});
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("is not a subject of stream 'S'"), std::string::npos) << out;

  std::tie(code, out) = run({"bridge", "in", "no-such-queue-" + random_nonce(), "--server", server_.url(),
                             "--stream", "S", "--consumer", "D"});
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("no such queue"), std::string::npos) << out;

  // Nothing was taken: the message is still there for the group, and the stream is empty.
  const auto g = group_stats(q, "g");
  EXPECT_EQ(g.acked, 0u);
  EXPECT_EQ(g.lag, 1u);
  EXPECT_EQ(js_->stream_state("S")->first, 0u);
}

TEST_F(BridgeErrors, should_stop_at_a_message_too_large_for_the_stream_leaving_it_in_the_queue) {
  ASSERT_TRUE(js_->add_stream("SMALL", "small.>", 1024));
  TempQueue tq;
  BridgeFilesCleanup cleanup(tq.path());
  auto q = Queue::create(tq.path(), {.capacity = 64, .max_message_size = 4096});
  q.create_group("g");
  auto p = q.producer();
  ASSERT_TRUE(p.publish("small-0").ok());
  ASSERT_TRUE(p.publish(std::string(3000, 'L')).ok());
  ASSERT_TRUE(p.publish("small-1").ok());
  const auto [code, out] = run({"bridge", "out", tq.path(), "-g", "g", "--server", server_.url(), "--stream",
                                "SMALL", "--subject", "small.a"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("more than stream 'SMALL' accepts"), std::string::npos) << out;
  // The small ones went through and were acked; the large one was not sent and is still the group's.
  const auto msgs = js_->read_all("SMALL");
  ASSERT_EQ(msgs.size(), 2u) << out;
  const auto g = group_stats(q, "g");
  EXPECT_EQ(g.acked, 2u);
  // ... and handed back at once when the bridge exited: the next member gets it.
  auto c = q.consumer("g");
  const auto d = c.receive(std::chrono::seconds(5));
  ASSERT_TRUE(d.has_value()) << "the bridge left holding the large message's lease";
  EXPECT_EQ(d->payload().size(), 3000u);
}

TEST_F(BridgeErrors, should_stop_at_a_message_too_large_for_the_queue_leaving_it_in_the_stream) {
  ASSERT_TRUE(js_->add_stream("BIG", "big.>"));
  ASSERT_TRUE(js_->publish("big.a", std::string(200, 'L')));
  TempQueue tq;
  BridgeFilesCleanup cleanup(tq.path());
  auto q = Queue::create(tq.path(), {.capacity = 64, .max_message_size = 64});
  const auto [code, out] =
      run({"bridge", "in", tq.path(), "--server", server_.url(), "--stream", "BIG", "--consumer", "D"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("more than queue"), std::string::npos) << out;
  EXPECT_EQ(q.stats().published, 0u);
  // Not acked in JetStream: it is pending again (nak) or awaiting its ack wait.
  const auto c = js_->consumer_state("BIG", "D");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->first + static_cast<std::uint64_t>(c->second), 1u);
}

}  // namespace
}  // namespace ackring::testing
