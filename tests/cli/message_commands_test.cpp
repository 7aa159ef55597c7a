// ackring pub / sub / peek end to end: round trips, framing, acks, leases,
// and records that do not fit.
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <string>

#include "cli_runner.hpp"

namespace ackring::cli_test {
namespace {

std::string numbered_lines(int n) {
  std::string s;
  for (int i = 1; i <= n; ++i) s += "message " + std::to_string(i) + "\n";
  return s;
}

std::string length_prefixed(const std::vector<std::string>& records) {
  std::string s;
  for (const auto& r : records) {
    const auto n = static_cast<std::uint32_t>(r.size());
    s += static_cast<char>(n & 0xff);
    s += static_cast<char>((n >> 8) & 0xff);
    s += static_cast<char>((n >> 16) & 0xff);
    s += static_cast<char>((n >> 24) & 0xff);
    s += r;
  }
  return s;
}

nlohmann::json group_stats(const Cli& cli, const std::string& queue, const std::string& group) {
  const auto stats = cli.json({"stat", queue, "--json"});
  for (const auto& g : stats["groups"])
    if (g["name"] == group) return g;
  ADD_FAILURE() << "no group " << group;
  return nullptr;
}

TEST(CliMessages, should_round_trip_every_line_from_pub_to_sub_in_order_and_ack_it) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g"});
  const std::string input = numbered_lines(100);
  EXPECT_EQ(cli.ok({"pub", "q"}, input), "published 100\n");
  EXPECT_EQ(cli.ok({"sub", "q", "--group", "g", "-n", "100", "--timeout", "5000"}), input);
  const auto g = group_stats(cli, "q", "g");
  EXPECT_EQ(g["acked"], 100);
  EXPECT_EQ(g["lag"], 0);
  EXPECT_EQ(g["in_flight"], 0);
}

TEST(CliMessages, should_read_a_file_and_report_json_on_pub) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g"});
  const std::string file = cli.dir() + "/input.txt";
  std::ofstream(file) << "a\nb\nc";  // the last line has no newline: still a record
  const auto j = nlohmann::json::parse(cli.ok({"pub", "q", "--file", file, "--json"}));
  EXPECT_EQ(j["published"], 3);
  EXPECT_EQ(j["first_seq"], 0);
  EXPECT_EQ(j["last_seq"], 2);
  EXPECT_EQ(cli.ok({"sub", "q", "-g", "g", "-n", "3"}), "a\nb\nc\n");
  const Result missing = cli.run({"pub", "q", "--file", cli.dir() + "/nope"});
  EXPECT_EQ(missing.code, 2) << missing.err;
}

TEST(CliMessages, should_round_trip_length_delimited_binary_records_byte_for_byte) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g", "--max-message-size", "64"});
  const std::vector<std::string> records = {std::string("\0\1\2\n\xff", 5), "", "line\nbreak", std::string(64, '\x80')};
  const std::string input = length_prefixed(records);
  EXPECT_EQ(cli.ok({"pub", "q", "--delimiter", "length"}, input), "published 4\n");
  EXPECT_EQ(cli.ok({"peek", "q", "--raw", "--delimiter", "length", "-n", "10"}), input);
  EXPECT_EQ(cli.ok({"sub", "q", "-g", "g", "-n", "4", "--delimiter", "length"}), input);
}

TEST(CliMessages, should_stop_pub_at_a_record_too_large_and_name_it) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g", "--max-message-size", "8"});
  const Result r = cli.run({"pub", "q"}, "ok\n0123456789\nlater\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "published 1\n");
  EXPECT_NE(r.err.find("line 2 is 10 bytes"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("max message size of 8"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_EQ(cli.json({"peek", "q", "--json"}).size(), 1u) << "nothing after the refused record was published";

  const Result big = cli.run({"pub", "q", "--delimiter", "length"}, length_prefixed({"fits", std::string(9, 'x')}));
  EXPECT_EQ(big.code, 1);
  EXPECT_NE(big.err.find("record 2 is 9 bytes"), std::string::npos) << big.err;
  const Result cut = cli.run({"pub", "q", "--delimiter", "length"}, length_prefixed({"abc"}).substr(0, 5));
  EXPECT_EQ(cut.code, 1);
  EXPECT_NE(cut.err.find("record 1: input ends inside it"), std::string::npos) << cut.err;
}

TEST(CliMessages, should_time_out_pub_into_a_full_queue_with_exit_6) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g", "--capacity", "4"});
  const Result r = cli.run({"pub", "q", "--timeout", "100"}, numbered_lines(6));
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_EQ(r.out, "published 4\n");
  EXPECT_NE(r.err.find("full"), std::string::npos) << r.err;
}

TEST(CliMessages, should_print_seq_deliveries_and_payload_with_sub_json) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g"});
  cli.ok({"pub", "q"}, "hello\nworld\n");
  std::istringstream out(cli.ok({"sub", "q", "-g", "g", "-n", "2", "--json"}));
  std::string line;
  int n = 0;
  while (std::getline(out, line)) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["seq"], n);
    EXPECT_EQ(j["deliveries"], 1);
    EXPECT_EQ(j["payload"], n == 0 ? "hello" : "world");
    EXPECT_EQ(j["encoding"], "text");
    EXPECT_TRUE(j.contains("publish_time"));
    ++n;
  }
  EXPECT_EQ(n, 2);
}

TEST(CliMessages, should_give_the_messages_of_sub_no_ack_back_to_the_group_as_soon_as_it_exits) {
  Cli cli;
  // A lease far longer than the test: whatever comes back did not wait for it.
  cli.ok({"create", "q", "--group", "g", "--lease", "60000"});
  cli.ok({"pub", "q"}, "a\nb\n");
  EXPECT_EQ(cli.ok({"sub", "q", "-g", "g", "--no-ack", "-n", "2"}), "a\nb\n");
  auto g = group_stats(cli, "q", "g");
  EXPECT_EQ(g["acked"], 0);
  EXPECT_EQ(g["nacked"], 2) << "given back with a nack";
  EXPECT_EQ(g["lag"], 2);
  const auto started = std::chrono::steady_clock::now();
  std::istringstream out(cli.ok({"sub", "q", "-g", "g", "-n", "2", "--json", "--timeout", "5000"}));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3)) << "waited for the lease";
  std::string line;
  for (const char* payload : {"a", "b"}) {
    ASSERT_TRUE(std::getline(out, line));
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["payload"], payload);
    EXPECT_EQ(j["deliveries"], 2) << "a redelivery";
  }
  g = group_stats(cli, "q", "g");
  EXPECT_EQ(g["acked"], 2);
  EXPECT_EQ(g["lag"], 0);
}

TEST(CliMessages, should_keep_the_leases_of_sub_no_ack_while_it_runs_and_print_each_message_once) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g", "--lease", "100"});
  cli.ok({"pub", "q"}, "a\n");
  // Runs 6 leases long: without renewing, "a" would come round to it again and again.
  const Result r = cli.run({"sub", "q", "-g", "g", "--no-ack", "--timeout", "600", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);  // exactly one object
  EXPECT_EQ(j["payload"], "a");
  EXPECT_EQ(j["deliveries"], 1);
  EXPECT_EQ(group_stats(cli, "q", "g")["redelivered"], 0);
  // Another member meanwhile gets nothing: the lease is held, not expired.
  Background holder = cli.start({"sub", "q", "-g", "g", "--no-ack", "--timeout", "3000"});
  ::usleep(300'000);  // holder joins and takes "a"
  const Result none = cli.run({"sub", "q", "-g", "g", "-n", "1", "--timeout", "400"});
  EXPECT_EQ(none.code, 6) << none.out;
  EXPECT_NE(none.err.find("received 0 of 1"), std::string::npos) << none.err;
  EXPECT_EQ(holder.stop(SIGTERM), 0);
  // Stopped by a signal, the holder gave "a" back too.
  const auto back = nlohmann::json::parse(cli.ok({"sub", "q", "-g", "g", "-n", "1", "--json", "--timeout", "3000"}));
  EXPECT_EQ(back["payload"], "a");
  EXPECT_EQ(back["deliveries"], 3);
}

TEST(CliMessages, should_stop_sub_when_its_reader_goes_away_and_give_back_what_it_could_not_write) {
  Cli cli;
  // More than a pipe holds (64 KiB), so sub must meet the closed pipe.
  constexpr int kMessages = 20000;
  cli.ok({"create", "q", "--group", "g", "--capacity", "32768"});
  cli.ok({"pub", "q"}, numbered_lines(kMessages));
  int out = -1;
  Background sub = cli.start_with_output({"sub", "q", "-g", "g"}, out);
  char c = 0;
  ASSERT_EQ(::read(out, &c, 1), 1);  // like `| head -c 1`
  ::close(out);
  EXPECT_EQ(sub.wait(std::chrono::seconds(10)), 0) << "sub should end by itself once nobody reads";
  // What reached the pipe is acked; the rest, and the message whose write failed, are still there.
  const auto g = group_stats(cli, "q", "g");
  const std::uint64_t acked = g["acked"];
  EXPECT_LT(acked, static_cast<std::uint64_t>(kMessages));
  EXPECT_EQ(acked + g["lag"].get<std::uint64_t>(), static_cast<std::uint64_t>(kMessages));
  const std::string rest =
      cli.ok({"sub", "q", "-g", "g", "-n", std::to_string(kMessages - acked), "--timeout", "5000"});
  EXPECT_EQ(rest.substr(0, rest.find('\n')), "message " + std::to_string(acked + 1));
}

TEST(CliMessages, should_need_create_for_sub_to_a_missing_group) {
  Cli cli;
  cli.ok({"create", "q"});
  const Result r = cli.run({"sub", "q", "-g", "new", "--timeout", "10"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--create"), std::string::npos) << r.err;
  EXPECT_EQ(cli.run({"sub", "q", "-g", "new", "--timeout", "10", "--create"}).code, 0);
  EXPECT_EQ(cli.json({"group", "ls", "q", "--json"})[0]["name"], "new");
}

TEST(CliMessages, should_end_sub_without_count_at_the_timeout_with_exit_0) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g"});
  cli.ok({"pub", "q"}, "x\n");
  const Result r = cli.run({"sub", "q", "-g", "g", "--timeout", "200"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "x\n");
}

TEST(CliMessages, should_show_messages_with_peek_without_consuming_them) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g"});
  cli.ok({"pub", "q"}, "one\ntwo\nthree\n");
  const auto first = cli.json({"peek", "q", "--json"});
  ASSERT_EQ(first.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(first[i]["seq"], i);
    for (const char* key : {"seq", "publish_time", "size", "encoding", "payload"})
      EXPECT_TRUE(first[i].contains(key)) << key;
  }
  EXPECT_EQ(first[1]["payload"], "two");
  EXPECT_EQ(cli.json({"peek", "q", "--json"}), first) << "a second peek sees the same";
  const auto g = group_stats(cli, "q", "g");
  EXPECT_EQ(g["delivered"], 0);
  EXPECT_EQ(g["lag"], 3);
  const std::string human = cli.ok({"peek", "q"});
  EXPECT_NE(human.find("three"), std::string::npos) << human;
  EXPECT_EQ(cli.ok({"sub", "q", "-g", "g", "-n", "3"}), "one\ntwo\nthree\n");
}

TEST(CliMessages, should_start_peek_at_a_group_floor_or_a_seq_and_limit_the_count) {
  Cli cli;
  cli.ok({"create", "q", "--group", "g"});
  cli.ok({"pub", "q"}, numbered_lines(5));
  cli.ok({"sub", "q", "-g", "g", "-n", "2"});
  auto j = cli.json({"peek", "q", "--group", "g", "--json"});
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["seq"], 2);
  j = cli.json({"peek", "q", "--from", "1", "-n", "2", "--json"});
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["seq"], 1);
  EXPECT_EQ(j[1]["seq"], 2);
  EXPECT_EQ(cli.run({"peek", "q", "--group", "nope"}).code, 2);
}

TEST(CliMessages, should_show_binary_payloads_as_hex_in_peek) {
  Cli cli;
  cli.ok({"create", "q"});
  cli.ok({"pub", "q", "--delimiter", "length"}, length_prefixed({std::string("\x01\x02\xfe", 3)}));
  const auto j = cli.json({"peek", "q", "--json"});
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["encoding"], "hex");
  EXPECT_EQ(j[0]["payload"], "0102fe");
  EXPECT_NE(cli.ok({"peek", "q"}).find("hex:0102fe"), std::string::npos);
}

}  // namespace
}  // namespace ackring::cli_test
