// ackring group add / ls / rm and dlq / dlq redrive end to end.
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "cli_runner.hpp"

namespace ackring::cli_test {
namespace {

TEST(CliGroups, should_add_list_and_remove_groups) {
  Cli cli;
  cli.ok({"create", "q"});
  cli.ok({"pub", "q"}, "early\n");
  EXPECT_NE(cli.ok({"group", "add", "q", "all"}).find("added group all"), std::string::npos);
  cli.ok({"group", "add", "q", "new", "--start", "latest", "--overflow", "drop"});
  auto j = cli.json({"group", "ls", "q", "--json"});
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["name"], "all") << "most lagging first";
  EXPECT_EQ(j[0]["lag"], 1);
  EXPECT_EQ(j[1]["name"], "new");
  EXPECT_EQ(j[1]["lag"], 0);
  EXPECT_EQ(j[1]["overflow"], "drop");
  for (const char* key : {"name", "overflow", "floor", "next", "lag", "in_flight", "delivered", "acked", "redelivered",
                          "nacked", "dead_lettered", "dropped", "members"})
    EXPECT_TRUE(j[0].contains(key)) << key;
  const std::string table = cli.ok({"group", "ls", "q"});
  EXPECT_NE(table.find("all"), std::string::npos);
  EXPECT_NE(table.find("drop"), std::string::npos);

  const Result dup = cli.run({"group", "add", "q", "all"});
  EXPECT_EQ(dup.code, 1);
  EXPECT_NE(dup.err.find("already exists"), std::string::npos) << dup.err;

  EXPECT_NE(cli.ok({"group", "rm", "q", "new"}).find("removed group new"), std::string::npos);
  j = cli.json({"group", "ls", "q", "--json"});
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["name"], "all");
  const Result gone = cli.run({"group", "rm", "q", "new"});
  EXPECT_EQ(gone.code, 2);
  EXPECT_NE(gone.err.find("group 'new' not found in queue 'q'"), std::string::npos) << gone.err;
}

TEST(CliGroups, should_set_a_groups_back_off_with_redelivery_and_show_it_in_stat_with_the_signals) {
  Cli cli;
  cli.ok({"create", "q"});
  const std::string added = cli.ok({"group", "add", "q", "g", "--backoff-initial", "250", "--backoff-jitter", "none"});
  EXPECT_NE(added.find("none jitter"), std::string::npos) << added;
  auto j = cli.json({"stat", "q", "--json"})["groups"][0];
  EXPECT_EQ(j["redelivery"]["initial_ms"], 250);
  EXPECT_EQ(j["redelivery"]["jitter"], "none");

  cli.ok({"group", "redelivery", "q", "g", "--backoff-initial", "500", "--backoff-multiplier", "1.5",
          "--backoff-max", "8000", "--backoff-jitter", "full"});
  j = cli.json({"stat", "q", "--json"})["groups"][0];
  EXPECT_EQ(j["redelivery"]["initial_ms"], 500);
  EXPECT_EQ(j["redelivery"]["max_ms"], 8000);
  EXPECT_DOUBLE_EQ(j["redelivery"]["multiplier"].get<double>(), 1.5);
  EXPECT_EQ(j["redelivery"]["jitter"], "full");
  for (const char* key : {"waiting_redelivery", "redelivered_by", "process_once_skips", "ack_latency",
                          "min_member_lease_ms", "lease_below_p99", "warnings"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_TRUE(cli.json({"stat", "q", "--json"})["dedup"].contains("hit_ratio"));
  // Options not given keep their values.
  cli.ok({"group", "redelivery", "q", "g", "--backoff-jitter", "equal"});
  j = cli.json({"stat", "q", "--json"})["groups"][0];
  EXPECT_EQ(j["redelivery"]["initial_ms"], 500);
  EXPECT_EQ(j["redelivery"]["max_ms"], 8000);
  EXPECT_EQ(j["redelivery"]["jitter"], "equal");
  cli.ok({"group", "redelivery", "q", "g", "--backoff-jitter", "full"});
  const std::string text = cli.ok({"stat", "q"});
  for (const char* line : {"redelivery back-off: ", "full jitter", "redelivered by cause: expiry 0, death 0, nack 0",
                           "delivery to ack: no acks timed yet"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;

  // Bad policies and unknown groups are refused with a reason.
  const Result low_max = cli.run({"group", "redelivery", "q", "g", "--backoff-initial", "500", "--backoff-max", "100"});
  EXPECT_EQ(low_max.code, 1);
  EXPECT_NE(low_max.err.find("max delay"), std::string::npos) << low_max.err;
  const Result bad_jitter = cli.run({"group", "redelivery", "q", "g", "--backoff-jitter", "some"});
  EXPECT_EQ(bad_jitter.code, 1);
  const Result missing = cli.run({"group", "redelivery", "q", "nope", "--backoff-initial", "10"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("group 'nope' not found"), std::string::npos) << missing.err;
  // Off again.
  cli.ok({"group", "redelivery", "q", "g", "--backoff-initial", "0"});
  EXPECT_EQ(cli.json({"stat", "q", "--json"})["groups"][0]["redelivery"]["initial_ms"], 0);
  EXPECT_NE(cli.ok({"stat", "q"}).find("redelivery back-off: none"), std::string::npos);
}

TEST(CliGroups, should_refuse_to_rm_a_group_with_live_members_unless_forced) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g"});
  Background sub = cli.start({"sub", "q", "--group", "g", "--timeout", "5000"});
  bool joined = false;
  for (int i = 0; i < 100 && !joined; ++i) {
    joined = !cli.json({"group", "ls", "q", "--json"})[0]["members"].empty();
    if (!joined) ::usleep(50'000);
  }
  ASSERT_TRUE(joined);
  EXPECT_EQ(cli.run({"group", "rm", "q", "g"}).code, 4);
  cli.ok({"group", "rm", "q", "g", "--force"});
  // The sub notices that its group is gone and stops with "not found".
  EXPECT_EQ(sub.wait(std::chrono::seconds(5)), 2);
}

TEST(CliDlq, should_list_messages_that_exceeded_max_deliveries_and_redrive_them) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g", "--max-deliveries", "1", "--lease", "50"});
  cli.ok({"pub", "q"}, "poison\npill\n");
  EXPECT_NE(cli.ok({"dlq", "q"}).find("no dead-letter queue"), std::string::npos);

  // First delivery, not acked; the next receive after the lease dead-letters both.
  EXPECT_EQ(cli.run({"sub", "q", "-g", "g", "--no-ack", "--timeout", "20"}).out, "poison\npill\n");
  ::usleep(100'000);
  const Result second = cli.run({"sub", "q", "-g", "g", "--no-ack", "--timeout", "300"});
  EXPECT_EQ(second.code, 0) << second.err;
  EXPECT_EQ(second.out, "") << "past max deliveries nothing is delivered again";

  const auto j = cli.json({"dlq", "q", "--json"});
  ASSERT_EQ(j.size(), 2u) << j;
  EXPECT_EQ(j[0]["group"], "g");
  EXPECT_EQ(j[0]["seq"], 0);
  EXPECT_EQ(j[0]["deliveries"], 1);
  EXPECT_EQ(j[0]["reason"], "max deliveries exceeded");
  EXPECT_EQ(j[0]["payload"], "poison");
  EXPECT_EQ(j[1]["payload"], "pill");
  const std::string human = cli.ok({"dlq", "q"});
  EXPECT_NE(human.find("2 dead letters"), std::string::npos) << human;
  EXPECT_NE(human.find("poison"), std::string::npos) << human;
  EXPECT_EQ(cli.json({"stat", "q", "--json"})["groups"][0]["dead_lettered"], 2);
  EXPECT_EQ(cli.json({"dlq", "q", "--json"}).size(), 2u) << "listing does not take them";

  EXPECT_EQ(cli.ok({"dlq", "redrive", "q"}), "redrove 2 dead letters into 'q'\n");
  EXPECT_EQ(cli.json({"dlq", "q", "--json"}).size(), 0u);
  EXPECT_EQ(cli.ok({"sub", "q", "-g", "g", "-n", "2", "--timeout", "3000"}), "poison\npill\n");
}

TEST(CliDlq, should_treat_dlq_without_a_queue_name_as_a_usage_error) {
  Cli cli;
  EXPECT_EQ(cli.run({"dlq"}).code, 1);
  EXPECT_EQ(cli.run({"dlq", "redrive"}).code, 1);
  EXPECT_EQ(cli.run({"dlq", "redrive", "nope"}).code, 2);
}

}  // namespace
}  // namespace ackring::cli_test
