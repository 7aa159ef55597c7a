// Operations: a bridge's counters show in `ackring stat` (text and --json),
// `metrics` and `top` of its queue, and a SIGKILLed bridge shows as dead.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "ackring/ackring.hpp"
#include "nats_fixture.hpp"
#include "test_util.hpp"

namespace ackring::testing {
namespace {

class BridgeOps : public JetStreamTest {
 protected:
  void SetUp() override { start("OPS", "ops.>"); }

  // Runs the CLI to completion and returns its stdout.
  std::string output_of(const std::vector<std::string>& args) {
    const auto out = server_.dir() / ("out-" + random_nonce());
    Child c = run_cli(args, out);
    EXPECT_TRUE(c.wait_for(std::chrono::seconds(30)));
    EXPECT_TRUE(c.exited_ok()) << c.describe() << read_text(out);
    return read_text(out);
  }
};

TEST_F(BridgeOps, should_show_a_running_bridge_in_stat_metrics_and_top_and_a_killed_one_as_dead) {
  TempQueue tq;
  BridgeFilesCleanup cleanup(tq.path());
  auto q = Queue::create(tq.path(), {.capacity = 256, .max_message_size = 64});
  q.create_group("g");
  auto p = q.producer();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(p.publish("o-" + std::to_string(i)).ok());
  Child bridge = run_cli({"bridge", "out", tq.path(), "-g", "g", "--server", server_.url(), "--stream", "OPS",
                          "--subject", "ops.a", "--name", "to-ops"},
                         log_);
  ASSERT_TRUE(wait_until([&] {
    const auto s = bridge_status_of(tq.path(), bridge.pid());
    return s && s->acked >= 50;
  })) << describe_bridges(tq.path()) << read_text(log_);

  const auto json = nlohmann::json::parse(output_of({"stat", tq.path(), "--json"}));
  ASSERT_TRUE(json.contains("bridges")) << json.dump();
  ASSERT_EQ(json["bridges"].size(), 1u);
  const auto& b = json["bridges"][0];
  EXPECT_EQ(b["name"], "to-ops");
  EXPECT_EQ(b["direction"], "out");
  EXPECT_EQ(b["alive"], true);
  EXPECT_EQ(b["stream"], "OPS");
  EXPECT_GE(b["acked"].get<std::uint64_t>(), 50u);

  const std::string text = output_of({"stat", tq.path()});
  EXPECT_NE(text.find("bridges (NATS JetStream):"), std::string::npos) << text;
  EXPECT_NE(text.find("to-ops"), std::string::npos) << text;
  EXPECT_NE(text.find("group g -> OPS (ops.a)"), std::string::npos) << text;

  const std::string metrics = output_of({"metrics", tq.path()});
  EXPECT_NE(metrics.find("ackring_bridge_up{"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("bridge=\"to-ops\""), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("ackring_bridge_acked_total{"), std::string::npos) << metrics;

  const std::string top = output_of({"top", tq.path(), "--iterations", "1"});
  EXPECT_NE(top.find("to-ops"), std::string::npos) << top;

  bridge.kill_and_reap();
  const auto after = nlohmann::json::parse(output_of({"stat", tq.path(), "--json"}));
  ASSERT_EQ(after["bridges"].size(), 1u) << after.dump();
  EXPECT_EQ(after["bridges"][0]["alive"], false);
  EXPECT_NE(output_of({"stat", tq.path()}).find("dead"), std::string::npos);
}

}  // namespace
}  // namespace ackring::testing
