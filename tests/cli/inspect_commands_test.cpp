// ackring stat / metrics / verify / top end to end.
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "cli_runner.hpp"
#include "shm/layout.hpp"

namespace ackring::cli_test {
namespace {

// Starts a sub that takes every message of `group` and keeps the leases, and
// waits until it holds `count`.
Background hold_messages(const Cli& cli, const std::string& queue, const std::string& group, int count) {
  Background sub = cli.start({"sub", queue, "--group", group, "--no-ack", "--timeout", "10000"});
  for (int i = 0; i < 200; ++i) {
    const auto stats = cli.json({"stat", queue, "--json"});
    for (const auto& g : stats["groups"])
      if (g["name"] == group && g["in_flight"] == count && !g["members"].empty()) return sub;
    ::usleep(25'000);
  }
  ADD_FAILURE() << "the background sub never took " << count << " messages";
  return sub;
}

TEST(CliStat, should_show_counters_and_point_out_the_slowest_member_first) {
  Cli cli;
  cli.ok({"create", "q", "--group", "fast", "--group", "slow"});
  cli.ok({"pub", "q"}, "1\n2\n3\n");
  cli.ok({"sub", "q", "-g", "fast", "-n", "3"});
  Background holder = hold_messages(cli, "q", "slow", 3);
  const std::string out = cli.ok({"stat", "q"});
  EXPECT_NE(out.find("published 3"), std::string::npos) << out;
  EXPECT_NE(out.find("depth 3/4096"), std::string::npos) << out;
  EXPECT_NE(out.find("durability none"), std::string::npos) << out;
  EXPECT_NE(out.find("slowest: group slow member pid "), std::string::npos) << out;
  EXPECT_NE(out.find(", lag 3"), std::string::npos) << out;
  EXPECT_LT(out.find("group slow"), out.find("group fast")) << "most lagging group first:\n" << out;
  EXPECT_NE(out.find("alive"), std::string::npos) << out;

  const auto j = cli.json({"stat", "q", "--json"});
  for (const char* key :
       {"name", "path", "capacity", "max_message_size", "max_deliveries", "default_lease_ms", "durability", "tail",
        "published", "aborted", "min_floor", "depth", "producers", "groups", "slowest"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["published"], 3);
  EXPECT_EQ(j["tail"], 3);
  ASSERT_EQ(j["groups"].size(), 2u);
  const auto& slow = j["groups"][0];
  EXPECT_EQ(slow["name"], "slow");
  EXPECT_EQ(slow["lag"], 3);
  EXPECT_EQ(slow["in_flight"], 3);
  ASSERT_EQ(slow["members"].size(), 1u);
  for (const char* key : {"index", "pid", "alive", "delivered", "acked", "in_flight", "idle_ms"})
    EXPECT_TRUE(slow["members"][0].contains(key)) << key;
  EXPECT_EQ(slow["members"][0]["alive"], true);
  EXPECT_EQ(slow["members"][0]["in_flight"], 3);
  EXPECT_EQ(j["slowest"]["group"], "slow");
  EXPECT_EQ(j["slowest"]["pid"], slow["members"][0]["pid"]);
  EXPECT_EQ(j["groups"][1]["acked"], 3);
  EXPECT_EQ(holder.stop(SIGINT), 0);
}

TEST(CliStat, should_say_when_there_are_no_groups) {
  Cli cli;
  cli.ok({"create", "q"});
  EXPECT_NE(cli.ok({"stat", "q"}).find("no consumer groups"), std::string::npos);
  EXPECT_TRUE(cli.json({"stat", "q", "--json"})["slowest"].is_null());
}

// ------------------------------------------------------------ metrics --

TEST(CliMetrics, should_print_every_counter_in_the_prometheus_text_format) {
  Cli cli;
  cli.ok({"create", "q", "--group", "a", "--group", "b"});
  cli.ok({"create", "other"});
  cli.ok({"pub", "q"}, "1\n2\n3\n");
  cli.ok({"sub", "q", "-g", "a", "-n", "3"});
  const std::string out = cli.ok({"metrics", "q", "other"});

  const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.eE+]+$)");
  const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
  const std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$)");
  std::map<std::string, std::string> types;
  std::string current;
  std::istringstream in(out);
  std::string line;
  std::smatch m;
  int samples = 0;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, help)) {
      EXPECT_FALSE(types.count(m[1])) << "family " << m[1] << " appears twice";
      current = m[1];
    } else if (std::regex_match(line, m, type)) {
      EXPECT_EQ(m[1], current) << "TYPE must follow the HELP of the same family";
      types[m[1]] = m[2];
      if (m[2] == "counter") EXPECT_TRUE(std::string(m[1]).ends_with("_total")) << m[1];
    } else {
      ASSERT_TRUE(std::regex_match(line, m, sample)) << "not a sample line: " << line;
      if (types[current] == "histogram") {
        const std::string name = m[1];
        EXPECT_TRUE(name == current + "_bucket" || name == current + "_sum" || name == current + "_count")
            << "histogram sample outside its family: " << line;
      } else {
        EXPECT_EQ(m[1], current) << "sample outside its family: " << line;
      }
      ++samples;
    }
  }
  EXPECT_GT(samples, 20);
  for (const char* expected :
       {"ackring_up{queue=\"q\"} 1\n", "ackring_up{queue=\"other\"} 1\n", "ackring_published_total{queue=\"q\"} 3\n",
        "ackring_depth{queue=\"q\"} 3\n", "ackring_group_acked_total{queue=\"q\",group=\"a\"} 3\n",
        "ackring_group_lag{queue=\"q\",group=\"b\"} 3\n", "ackring_group_lag{queue=\"q\",group=\"a\"} 0\n",
        "ackring_group_delivered_total{queue=\"q\",group=\"a\"} 3\n",
        "ackring_group_dead_lettered_total{queue=\"q\",group=\"b\"} 0\n",
        "ackring_group_ack_latency_seconds_count{queue=\"q\",group=\"a\"} 3\n",
        "ackring_group_ack_latency_seconds_bucket{queue=\"q\",group=\"a\",le=\"+Inf\"} 3\n",
        "ackring_group_redelivered_by_cause_total{queue=\"q\",group=\"a\",cause=\"expiry\"} 0\n",
        "ackring_group_redelivery_waiting{queue=\"q\",group=\"a\"} 0\n"})
    EXPECT_NE(out.find(expected), std::string::npos) << expected << "\n" << out;
  EXPECT_EQ(types["ackring_group_lag"], "gauge");
  EXPECT_EQ(types["ackring_published_total"], "counter");
  EXPECT_EQ(types["ackring_group_ack_latency_seconds"], "histogram");
}

TEST(CliMetrics, should_label_members_and_report_a_missing_queue_as_down) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g"});
  cli.ok({"pub", "q"}, "1\n");
  Background holder = hold_messages(cli, "q", "g", 1);
  const Result r = cli.run({"metrics", "q", "missing"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("ackring_up{queue=\"missing\"} 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ackring_member_in_flight{queue=\"q\",group=\"g\",member=\"0\",pid=\""), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("ackring_member_up{queue=\"q\",group=\"g\",member=\"0\""), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("queue 'missing' not found"), std::string::npos) << r.err;
  EXPECT_EQ(holder.stop(SIGTERM), 0);
}

// ------------------------------------------------------------- verify --

TEST(CliVerify, should_verify_a_healthy_queue_with_exit_0) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g", "--capacity", "16"});
  cli.ok({"pub", "q"}, "1\n2\n");
  const std::string out = cli.ok({"verify", "q"});
  EXPECT_NE(out.find("healthy"), std::string::npos) << out;
  const auto j = cli.json({"verify", "q", "--json"});
  EXPECT_EQ(j["healthy"], true);
  EXPECT_EQ(j["slots_checked"], 16);
  EXPECT_EQ(j["corrupt_slots"], 0);
  EXPECT_TRUE(j["problems"].empty());
}

TEST(CliVerify, should_report_a_damaged_slot_payload_with_exit_3) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g", "--capacity", "16", "--max-message-size", "64"});
  cli.ok({"pub", "q"}, "hello world\n");
  {
    // Flip the first payload byte of seq 0 (slot 0) behind the checksum's back.
    std::fstream f(cli.path_of("q"), std::ios::in | std::ios::out | std::ios::binary);
    std::uint64_t slots_offset = 0;
    f.seekg(offsetof(detail::Layout, slots_offset));
    f.read(reinterpret_cast<char*>(&slots_offset), sizeof slots_offset);
    const auto at = static_cast<std::streamoff>(slots_offset + sizeof(detail::SlotHeader));
    char byte = 0;
    f.seekg(at);
    f.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x5a);
    f.seekp(at);
    f.write(&byte, 1);
    ASSERT_TRUE(f);
  }
  const Result r = cli.run({"verify", "q"});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.out.find("problem: slot 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("checksum"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("BROKEN"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_EQ(r.err.rfind("ackring: ", 0), 0u) << r.err;

  const Result j = cli.run({"verify", "q", "--json"});
  EXPECT_EQ(j.code, 3);
  const auto report = nlohmann::json::parse(j.out);
  EXPECT_EQ(report["healthy"], false);
  EXPECT_EQ(report["corrupt_slots"], 1);
  EXPECT_EQ(report["problems"].size(), 1u);

  // Consumers never see it; the group counts it as skipped.
  EXPECT_EQ(cli.run({"sub", "q", "-g", "g", "--timeout", "200"}).out, "");
  EXPECT_EQ(cli.json({"stat", "q", "--json"})["groups"][0]["corrupt_skipped"], 1);
}

// ---------------------------------------------------------------- top --

TEST(CliTop, should_print_frames_with_rates_without_a_terminal) {
  Cli cli;
  cli.ok({"create", "q", "--group", "billing"});
  cli.ok({"pub", "q"}, "1\n2\n");
  const Result r = cli.run({"top", "q", "--interval", "50", "--iterations", "2"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("ackring top: q"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("billing"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("depth 2/4096"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0.0/s"), std::string::npos) << "the second frame has rates:\n" << r.out;
  EXPECT_EQ(r.out.find("\x1b["), std::string::npos) << "no escapes when stdout is not a terminal";
}

void expect_terminal_restored(const Cli::TerminalRun& t) {
  EXPECT_EQ(t.after.c_lflag & (ICANON | ECHO), t.before.c_lflag & (ICANON | ECHO));
  EXPECT_NE(t.after.c_lflag & ICANON, 0u);
  EXPECT_NE(t.after.c_lflag & ECHO, 0u);
}

TEST(CliTop, should_redraw_on_a_terminal_and_quit_on_q_restoring_the_terminal) {
  Cli cli;
  cli.ok({"create", "q", "--group", "billing"});
  const auto t = cli.run_on_terminal({"top", "q", "--interval", "100"}, "billing", "q");
  EXPECT_TRUE(t.saw_text) << t.screen;
  EXPECT_EQ(t.code, 0) << t.screen;
  EXPECT_NE(t.screen.find("\x1b[2J"), std::string::npos) << "clears the screen";
  EXPECT_NE(t.screen.find("\x1b[?1049l"), std::string::npos) << "leaves the alternate screen";
  expect_terminal_restored(t);
}

TEST(CliTop, should_quit_cleanly_on_ctrl_c_restoring_the_terminal) {
  Cli cli;
  cli.ok({"create", "q", "--group", "billing"});
  const auto t = cli.run_on_terminal({"top", "q", "--interval", "100"}, "billing", "\x03");
  EXPECT_TRUE(t.saw_text) << t.screen;
  EXPECT_EQ(t.code, 0) << t.screen;
  expect_terminal_restored(t);
}

}  // namespace
}  // namespace ackring::cli_test
