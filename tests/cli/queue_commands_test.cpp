// ackring ls / create / rm / purge, global options, and how the tool fails:
// exit codes and one-line messages for missing, foreign and damaged queues.
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli_runner.hpp"
#include "shm/layout.hpp"

namespace ackring::cli_test {
namespace {

// One line on stderr, "ackring: ...".
void expect_one_line_error(const Result& r) {
  EXPECT_EQ(r.err.rfind("ackring: ", 0), 0u) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "expected one line, got:\n" << r.err;
}

// Overwrites `size` bytes at `offset` of a file.
void poke(const std::string& path, std::uint64_t offset, const void* bytes, std::size_t size) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << path;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(size));
  ASSERT_TRUE(f);
}

TEST(CliQueues, should_show_a_created_queue_in_ls_with_its_parameters_and_groups) {
  Cli cli;
  const std::string out = cli.ok(
      {"create", "orders", "--capacity", "64", "--max-message-size", "256", "--group", "billing", "--group", "audit"});
  EXPECT_NE(out.find("created queue 'orders'"), std::string::npos) << out;
  const std::string ls = cli.ok({"ls"});
  EXPECT_NE(ls.find("orders"), std::string::npos) << ls;
  EXPECT_NE(ls.find(cli.path_of("orders")), std::string::npos) << ls;
  EXPECT_NE(ls.find("billing,audit"), std::string::npos) << ls;
  EXPECT_NE(ls.find("none"), std::string::npos) << ls;

  const auto j = cli.json({"ls", "--json"});
  ASSERT_EQ(j["queues"].size(), 1u);
  const auto& q = j["queues"][0];
  EXPECT_EQ(q["name"], "orders");
  EXPECT_EQ(q["path"], cli.path_of("orders"));
  EXPECT_EQ(q["capacity"], 64);
  EXPECT_EQ(q["max_message_size"], 256);
  EXPECT_EQ(q["depth"], 0);
  EXPECT_EQ(q["groups"], nlohmann::json({"billing", "audit"}));
  EXPECT_EQ(q["durability"], "none");
}

TEST(CliQueues, should_apply_lease_deliveries_and_mode_on_create) {
  Cli cli;
  cli.ok({"create", "q", "--lease", "1234", "--max-deliveries", "3", "--mode", "0640", "--max-groups", "2",
          "--max-members", "3"});
  const auto j = cli.json({"stat", "q", "--json"});
  EXPECT_EQ(j["default_lease_ms"], 1234);
  EXPECT_EQ(j["max_deliveries"], 3);
  EXPECT_EQ(j["max_groups"], 2);
  EXPECT_EQ(j["max_members"], 3);
  EXPECT_EQ(std::filesystem::status(cli.path_of("q")).permissions(), std::filesystem::perms::owner_read |
                                                                         std::filesystem::perms::owner_write |
                                                                         std::filesystem::perms::group_read);
}

TEST(CliQueues, should_fail_with_exit_1_to_create_an_existing_queue) {
  Cli cli;
  cli.ok({"create", "q"});
  const Result r = cli.run({"create", "q"});
  EXPECT_EQ(r.code, 1);
  expect_one_line_error(r);
  EXPECT_NE(r.err.find("ackring rm q"), std::string::npos) << r.err;
}

TEST(CliQueues, should_list_in_ls_a_file_it_cannot_open_with_the_error) {
  Cli cli;
  cli.ok({"create", "good"});
  std::ofstream(cli.path_of("junk")) << "not a queue";
  std::ofstream(cli.path_of("\xff\xfe")) << "a name that is not UTF-8";
  const Result r = cli.run({"ls"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("good"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("junk"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("error:"), std::string::npos) << r.out;
  const auto j = cli.json({"ls", "--json"});
  ASSERT_EQ(j["queues"].size(), 3u);
  EXPECT_EQ(j["queues"][0]["name"], "good");
  EXPECT_TRUE(j["queues"][1].contains("error"));
  EXPECT_TRUE(j["queues"][2].contains("error"));
}

TEST(CliQueues, should_say_so_in_ls_of_an_empty_directory) {
  Cli cli;
  EXPECT_NE(cli.ok({"ls"}).find("no queues"), std::string::npos);
  EXPECT_EQ(cli.json({"ls", "--json"})["queues"].size(), 0u);
}

TEST(CliQueues, should_take_the_dir_option_before_and_after_the_command_without_the_environment) {
  Cli cli;
  cli.ok({"create", "q"});
  const Result before = cli.run({"--dir", cli.dir(), "ls"}, {}, /*with_env=*/false);
  EXPECT_EQ(before.code, 0) << before.err;
  EXPECT_NE(before.out.find(cli.path_of("q")), std::string::npos) << before.out;
  const Result after = cli.run({"stat", "q", "--dir", cli.dir()}, {}, /*with_env=*/false);
  EXPECT_EQ(after.code, 0) << after.err;
}

TEST(CliQueues, should_remove_an_idle_queue_with_rm) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g"});
  EXPECT_NE(cli.ok({"rm", "q"}).find("removed queue 'q'"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(cli.path_of("q")));
  const Result again = cli.run({"rm", "q"});
  EXPECT_EQ(again.code, 2);
  expect_one_line_error(again);
}

TEST(CliQueues, should_refuse_rm_while_a_consumer_is_attached_unless_forced) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g"});
  Background sub = cli.start({"sub", "q", "--group", "g", "--timeout", "5000"});
  // Wait until the member has joined.
  bool joined = false;
  for (int i = 0; i < 100 && !joined; ++i) {
    const auto j = cli.json({"stat", "q", "--json"});
    joined = !j["groups"][0]["members"].empty() && j["groups"][0]["members"][0]["alive"] == true;
    if (!joined) ::usleep(50'000);
  }
  ASSERT_TRUE(joined) << "the background sub never joined group g";
  const Result refused = cli.run({"rm", "q"});
  EXPECT_EQ(refused.code, 4);
  expect_one_line_error(refused);
  EXPECT_NE(refused.err.find("in use"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--force"), std::string::npos) << refused.err;
  EXPECT_TRUE(std::filesystem::exists(cli.path_of("q")));

  cli.ok({"rm", "q", "--force"});
  EXPECT_FALSE(std::filesystem::exists(cli.path_of("q")));
  EXPECT_EQ(sub.stop(SIGTERM), 0) << "sub should stop cleanly on SIGTERM";
}

TEST(CliQueues, should_remove_the_dead_letter_queue_too_with_rm_dlq) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g", "--max-deliveries", "1", "--lease", "20"});
  cli.ok({"pub", "q"}, "x\n");
  cli.ok({"sub", "q", "-g", "g", "--no-ack", "-n", "1"});
  ::usleep(50'000);
  cli.run({"sub", "q", "-g", "g", "--timeout", "200"});  // dead-letters x
  ASSERT_TRUE(std::filesystem::exists(cli.path_of("q.dlq")));
  const std::string out = cli.ok({"rm", "q", "--dlq"});
  EXPECT_FALSE(std::filesystem::exists(cli.path_of("q")));
  EXPECT_FALSE(std::filesystem::exists(cli.path_of("q.dlq"))) << out;
}

TEST(CliQueues, should_settle_everything_pending_on_purge) {
  Cli cli;
  cli.ok({"create", "q", "--group", "a", "--group", "b"});
  cli.ok({"pub", "q"}, "1\n2\n3\n");
  EXPECT_NE(cli.ok({"purge", "q", "--group", "a"}).find("purged 3 messages from group a"), std::string::npos);
  auto j = cli.json({"stat", "q", "--json"});
  for (const auto& g : j["groups"]) EXPECT_EQ(g["lag"], g["name"] == "a" ? 0 : 3) << g;
  EXPECT_NE(cli.ok({"purge", "q"}).find("purged 3 messages"), std::string::npos);
  j = cli.json({"stat", "q", "--json"});
  EXPECT_EQ(j["depth"], 0);
  const Result missing = cli.run({"purge", "q", "--group", "nope"});
  EXPECT_EQ(missing.code, 2);
  expect_one_line_error(missing);
  EXPECT_NE(missing.err.find("group 'nope' not found"), std::string::npos) << missing.err;
}

// ---------------------------------------------------------------- errors --

TEST(CliErrors, should_exit_2_for_a_missing_queue_with_one_line_saying_what_to_do) {
  Cli cli;
  for (const char* cmd : {"stat", "peek", "verify", "top", "dlq", "purge", "metrics"}) {
    const Result r = cli.run({cmd, "orders"});
    EXPECT_EQ(r.code, 2) << cmd << ": " << r.err;
    EXPECT_EQ(r.err,
              "ackring: queue 'orders' not found (" + cli.path_of("orders") + "); list queues with 'ackring ls'\n")
        << cmd;
  }
  const Result sub = cli.run({"sub", "orders", "-g", "g"});
  EXPECT_EQ(sub.code, 2);
  expect_one_line_error(sub);
}

TEST(CliErrors, should_exit_3_for_a_file_of_a_future_format_version) {
  Cli cli;
  cli.ok({"create", "q"});
  const std::uint32_t future = detail::kFormatVersion + 6;
  poke(cli.path_of("q"), offsetof(detail::Layout, version), &future, sizeof future);
  const Result r = cli.run({"stat", "q"});
  EXPECT_EQ(r.code, 3);
  expect_one_line_error(r);
  EXPECT_NE(r.err.find("version " + std::to_string(future)), std::string::npos) << r.err;
  EXPECT_EQ(cli.run({"verify", "q"}).code, 3);
  EXPECT_EQ(cli.run({"rm", "q"}).code, 3) << "rm must not remove what it cannot check without --force";
  cli.ok({"rm", "q", "--force"});
}

TEST(CliErrors, should_exit_3_not_crash_on_a_truncated_or_foreign_file) {
  Cli cli;
  std::ofstream(cli.path_of("short")) << "ACKRING";
  std::string garbage(8192, '\x5a');
  std::ofstream(cli.path_of("garbage"), std::ios::binary) << garbage;
  for (const char* name : {"short", "garbage"})
    for (const char* cmd : {"stat", "peek", "verify", "dlq", "group"}) {
      const Result r = std::string(cmd) == "group" ? cli.run({"group", "ls", name}) : cli.run({cmd, name});
      EXPECT_EQ(r.code, 3) << cmd << " " << name << ": " << r.err;
      expect_one_line_error(r);
    }
}

TEST(CliErrors, should_exit_2_for_a_queue_without_permission) {
  Cli cli;
  cli.ok({"create", "q", "--mode", "0600"});
  Result r;
  if (::geteuid() == 0) {
    // Root ignores file modes: ask as nobody, who may enter the directory but not open the file.
    std::filesystem::permissions(cli.dir(), std::filesystem::perms::others_exec, std::filesystem::perm_options::add);
    r = cli.run_as(65534, {"stat", "q"});
  } else {
    std::filesystem::permissions(cli.path_of("q"), std::filesystem::perms::none);
    r = cli.run({"stat", "q"});
  }
  EXPECT_EQ(r.code, 2);
  expect_one_line_error(r);
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
}

TEST(CliErrors, should_exit_1_with_one_line_on_bad_arguments) {
  Cli cli;
  cli.ok({"create", "q"});
  const std::vector<std::vector<std::string>> bad = {
      {"nosuchcommand"},
      {"create"},
      {"stat", "q", "--bogus"},
      {"sub", "q"},                          // --group is required
      {"create", "x", "--capacity", "100"},  // not a power of two
      {"create", "x", "--capacity", "lots"},
      {"create", "x", "--mode", "rw"},
      {"create", "bad name"},
      {"pub", "q", "--delimiter", "comma"},
      {"group", "add", "q", "g", "--start", "yesterday"},
      {"group"},
  };
  for (const auto& args : bad) {
    const Result r = cli.run(args);
    std::string line;
    for (const auto& a : args) line += a + " ";
    EXPECT_EQ(r.code, 1) << line << "\n" << r.err;
    expect_one_line_error(r);
  }
}

TEST(CliErrors, should_exit_0_on_help_and_describe_the_options) {
  Cli cli;
  const Result top = cli.run({"--help"});
  EXPECT_EQ(top.code, 0);
  EXPECT_NE(top.out.find("Exit codes"), std::string::npos);
  EXPECT_EQ(top.out.find("not available"), std::string::npos) << "exit 5 is retired:\n" << top.out;
  for (const char* cmd : {"recover", "journald", "journal"})
    EXPECT_NE(top.out.find(cmd), std::string::npos) << cmd;
  const Result sub = cli.run({"sub", "--help"});
  EXPECT_EQ(sub.code, 0);
  EXPECT_NE(sub.out.find("--no-ack"), std::string::npos) << sub.out;
  EXPECT_NE(cli.run({"group", "add", "--help"}).out.find("--overflow"), std::string::npos);
}

}  // namespace
}  // namespace ackring::cli_test
