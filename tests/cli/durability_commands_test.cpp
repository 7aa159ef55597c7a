// The durability side of the CLI end to end: create with a journal, the
// journal in stat / ls / metrics / verify, recover after a simulated reboot
// (the queue file deleted, the journal kept), journal dump and its JSON,
// a corrupt journal, group rewind, and journald as the journal writer.
//
// Sync publishes wait for the journal's fdatasync, so the tests publish tens
// of messages, not thousands.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli_runner.hpp"

namespace ackring::cli_test {
namespace {

namespace fs = std::filesystem;

std::string numbered_lines(int first, int last) {
  std::string s;
  for (int i = first; i <= last; ++i) s += "m" + std::to_string(i) + "\n";
  return s;
}

void expect_one_line_error(const Result& r) {
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.rfind("ackring: ", 0), 0u) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "expected one line, got:\n" << r.err;
}

// The JSON objects `sub --json` printed, one per line.
std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// Flips one byte of a file.
void flip_byte(const std::string& path, std::uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << path;
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
  ASSERT_TRUE(f);
}

// ---------------------------------------------------------------- create --

TEST(CliDurability, should_show_each_durability_given_to_create_in_ls_stat_and_metrics) {
  Cli cli;
  cli.ok({"create", "plain"});
  const std::string async_out = cli.ok({"create", "later", "--durability", "async", "--flush-interval", "5"});
  EXPECT_NE(async_out.find("durability async (a reboot loses at most the last 5 ms)"), std::string::npos)
      << async_out;
  const std::string sync_out = cli.ok({"create", "safe", "--durability", "sync", "--group", "g"});
  EXPECT_NE(sync_out.find("journal in " + cli.journal_dir() + "/ackring.safe"), std::string::npos) << sync_out;

  const auto ls = cli.json({"ls", "--json"});
  ASSERT_EQ(ls["queues"].size(), 3u);
  EXPECT_EQ(ls["queues"][0]["name"], "later");
  EXPECT_EQ(ls["queues"][0]["durability"], "async");
  EXPECT_EQ(ls["queues"][1]["durability"], "none");
  EXPECT_EQ(ls["queues"][2]["durability"], "sync");

  EXPECT_TRUE(cli.json({"stat", "plain", "--json"})["journal"].is_null());
  const auto later = cli.json({"stat", "later", "--json"})["journal"];
  EXPECT_EQ(later["durability"], "async");
  EXPECT_EQ(later["flush_interval_ms"], 5);

  cli.ok({"pub", "safe"}, numbered_lines(1, 3));
  const auto stat = cli.json({"stat", "safe", "--json"});
  EXPECT_EQ(stat["durability"], "sync");
  const auto& journal = stat["journal"];
  for (const char* key : {"durability", "directory", "durable_seq", "lag", "writer_pid", "flushes", "flush_interval_ms"})
    EXPECT_TRUE(journal.contains(key)) << key;
  EXPECT_EQ(journal["directory"], cli.journal_dir() + "/ackring.safe");
  EXPECT_EQ(journal["durable_seq"], 3) << "pub returned: every message is on disk";
  EXPECT_EQ(journal["lag"], 0);
  EXPECT_TRUE(journal["writer_pid"].is_null()) << "pub, the writer, has exited";
  EXPECT_GE(journal["flushes"], 1);
  EXPECT_TRUE(journal["flush_interval_ms"].is_null());

  const std::string human = cli.ok({"stat", "safe"});
  EXPECT_NE(human.find("durability sync, journal " + cli.journal_dir() + "/ackring.safe"), std::string::npos) << human;
  EXPECT_NE(human.find("journal: lag 0 (durable seq 3), no writer now"), std::string::npos) << human;

  const std::string metrics = cli.ok({"metrics", "safe", "plain"});
  for (const char* line :
       {"ackring_durability{queue=\"safe\",mode=\"sync\"} 1", "ackring_durability{queue=\"plain\",mode=\"none\"} 1",
        "ackring_journal_durable_seq{queue=\"safe\"} 3", "ackring_journal_lag{queue=\"safe\"} 0",
        "ackring_journal_writer_pid{queue=\"safe\"} 0", "# TYPE ackring_journal_flushes_total counter"})
    EXPECT_NE(metrics.find(line), std::string::npos) << line << "\n" << metrics;
  EXPECT_EQ(metrics.find("ackring_journal_lag{queue=\"plain\"}"), std::string::npos) << "no journal, no series";

  const std::string top = cli.ok({"top", "safe", "--iterations", "1"});
  EXPECT_NE(top.find("journal (sync) lag 0"), std::string::npos) << top;
}

TEST(CliDurability, should_refuse_journal_options_on_create_that_would_not_apply) {
  Cli cli;
  const std::vector<std::vector<std::string>> bad = {
      {"create", "q", "--journal-dir", "/tmp"},                                // durability none
      {"create", "q", "--durability", "sync", "--flush-interval", "5"},      // only async flushes on a timer
      {"create", "q", "--durability", "forever"},
      {"create", "q", "--durability", "async", "--flush-interval", "0"},
      {"create", "q", "--dedup-full", "sometimes"},
  };
  for (const auto& args : bad) {
    const Result r = cli.run(args);
    EXPECT_EQ(r.code, 1) << args[3] << ": " << r.err;
    expect_one_line_error(r);
  }
  EXPECT_FALSE(fs::exists(cli.path_of("q")));
  cli.ok({"create", "q", "--dedup-full", "evict", "--no-bloom", "--dedup-entries", "64", "--dedup-window", "1000"});
  EXPECT_EQ(cli.json({"stat", "q", "--json"})["dedup"]["entries"], 64);
}

TEST(CliDurability, should_point_to_recover_on_create_over_the_journal_of_a_removed_queue) {
  Cli cli;
  cli.ok({"create", "q", "--durability", "sync", "--group", "g"});
  cli.ok({"pub", "q"}, "x\n");
  const std::string rm = cli.ok({"rm", "q"});
  EXPECT_NE(rm.find("kept its journal"), std::string::npos) << rm;
  const Result again = cli.run({"create", "q", "--durability", "sync"});
  EXPECT_EQ(again.code, 1);
  expect_one_line_error(again);
  EXPECT_NE(again.err.find("ackring recover q"), std::string::npos) << again.err;
  // rm --journal removes both, and the name is free again.
  cli.ok({"recover", "q"});
  const std::string rm_all = cli.ok({"rm", "q", "--journal"});
  EXPECT_NE(rm_all.find("removed its journal"), std::string::npos) << rm_all;
  EXPECT_FALSE(fs::exists(cli.journal_dir() + "/ackring.q"));
  cli.ok({"create", "q", "--durability", "sync"});
}

// --------------------------------------------------------------- recover --

TEST(CliRecover, should_get_every_message_of_a_sync_queue_back_after_its_file_is_gone) {
  Cli cli;
  cli.ok({"create", "orders", "--durability", "sync", "--group", "billing", "--group", "audit"});
  cli.ok({"pub", "orders"}, numbered_lines(1, 20));
  // The reboot: /dev/shm is empty, the journal is on disk.
  ASSERT_TRUE(fs::remove(cli.path_of("orders")));

  const Result r = cli.run({"recover", "orders"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("recovered queue 'orders'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("journal: clean, seqs 0 to 20"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("restored 20 messages"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("groups: billing audit"), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "") << "no progress bar when stderr is not a terminal";

  EXPECT_EQ(cli.ok({"sub", "orders", "-g", "billing", "-n", "20", "--timeout", "5000"}), numbered_lines(1, 20));
  EXPECT_EQ(cli.ok({"sub", "orders", "-g", "audit", "-n", "20", "--timeout", "5000"}), numbered_lines(1, 20));
  // And the recovered queue journals on: publish, lose it again, recover again.
  cli.ok({"pub", "orders"}, "m21\n");
  ASSERT_TRUE(fs::remove(cli.path_of("orders")));
  cli.ok({"recover", "orders"});
  const auto stat = cli.json({"stat", "orders", "--json"});
  EXPECT_EQ(stat["tail"], 21);
  EXPECT_EQ(stat["durability"], "sync");
}

TEST(CliRecover, should_report_what_came_back_in_json_and_apply_overrides) {
  Cli cli;
  cli.ok({"create", "q", "--durability", "async", "--capacity", "64", "--group", "g"});
  // async: pub returns before its messages are on disk; a journald makes sure they get there.
  Background journald = cli.start({"journald", "q"});
  cli.ok({"pub", "q"}, "a\nb\n");
  for (int i = 0; i < 200 && cli.json({"stat", "q", "--json"})["journal"]["durable_seq"] != 2; ++i) ::usleep(25'000);
  EXPECT_EQ(journald.stop(SIGTERM), 0);
  ASSERT_TRUE(fs::remove(cli.path_of("q")));
  const auto j = cli.json({"recover", "q", "--json", "--capacity", "256", "--journal-dir", cli.journal_dir()});
  for (const char* key : {"name", "path", "journal_directory", "journal_end", "journal_message", "journal_first_seq",
                          "journal_next_seq", "floor", "messages", "skipped", "groups", "options_from_journal",
                          "dedup_keys", "options"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["journal_end"], "clean");
  EXPECT_EQ(j["journal_next_seq"], 2);
  EXPECT_EQ(j["messages"], 2);
  EXPECT_EQ(j["groups"], nlohmann::json({"g"}));
  EXPECT_EQ(j["options"]["capacity"], 256) << "the override";
  EXPECT_EQ(j["options"]["durability"], "async") << "the rest as recorded";
  EXPECT_EQ(cli.json({"stat", "q", "--json"})["capacity"], 256);
}

TEST(CliRecover, should_exit_1_for_an_existing_queue_and_2_without_a_journal) {
  Cli cli;
  cli.ok({"create", "q", "--durability", "sync"});
  const Result exists = cli.run({"recover", "q"});
  EXPECT_EQ(exists.code, 1);
  expect_one_line_error(exists);
  EXPECT_NE(exists.err.find("it is not missing"), std::string::npos) << exists.err;
  EXPECT_NE(exists.err.find("ackring verify q"), std::string::npos) << exists.err;

  const Result none = cli.run({"recover", "nothing"});
  EXPECT_EQ(none.code, 2);
  expect_one_line_error(none);
  EXPECT_NE(none.err.find("--journal-dir"), std::string::npos) << none.err;
  EXPECT_EQ(cli.run({"recover", "nothing", "--journal-dir", cli.dir() + "/elsewhere"}).code, 2);
}

// ---------------------------------------------------------- journal dump --

TEST(CliJournalDump, should_print_one_line_per_record_and_a_summary) {
  Cli cli;
  cli.ok({"create", "q", "--durability", "sync", "--group", "g"});
  const std::string long_body(200, 'x');
  cli.ok({"pub", "q"}, "hello\n" + long_body + "\n");
  const std::string out = cli.ok({"journal", "dump", "q"});
  EXPECT_NE(out.find("checkpoint"), std::string::npos) << out;
  EXPECT_NE(out.find("g floor 0 next 0"), std::string::npos) << out;
  EXPECT_NE(out.find("message"), std::string::npos) << out;
  EXPECT_NE(out.find("5 B  hello"), std::string::npos) << out;
  EXPECT_NE(out.find("... (200 bytes)"), std::string::npos) << "cut without --payload:\n" << out;
  EXPECT_NE(out.find("end: clean; 1 segment, first seq 0, next seq 2"), std::string::npos) << out;
  EXPECT_NE(cli.ok({"journal", "dump", "q", "--payload"}).find(long_body), std::string::npos);

  // Same journal once the queue file is gone (the default journal directory).
  ASSERT_TRUE(fs::remove(cli.path_of("q")));
  EXPECT_NE(cli.ok({"journal", "dump", "q"}).find("5 B  hello"), std::string::npos);
}

TEST(CliJournalDump, should_hold_records_and_a_summary_in_json) {
  Cli cli;
  cli.ok({"create", "q", "--durability", "sync", "--group", "g"});
  cli.ok({"pub", "q"}, "hello\nworld\n");
  cli.ok({"pub", "q", "-d", "length"}, std::string("\x03\0\0\0\x01\x02\xff", 7));
  const auto j = cli.json({"journal", "dump", "q", "--json"});
  EXPECT_EQ(j["directory"], cli.journal_dir() + "/ackring.q");
  ASSERT_TRUE(j["records"].is_array());
  std::vector<nlohmann::json> messages;
  bool saw_checkpoint = false;
  for (const auto& r : j["records"]) {
    for (const char* key : {"seq", "kind", "segment", "offset", "batch_start"}) EXPECT_TRUE(r.contains(key)) << key;
    if (r["kind"] == "message") messages.push_back(r);
    if (r["kind"] == "checkpoint") {
      saw_checkpoint = true;
      ASSERT_TRUE(r["groups"].is_array());
      for (const auto& g : r["groups"])
        for (const char* key : {"name", "floor", "next", "overflow", "start"}) EXPECT_TRUE(g.contains(key)) << key;
    }
  }
  EXPECT_TRUE(saw_checkpoint);
  ASSERT_EQ(messages.size(), 3u) << j.dump(2);
  for (const char* key : {"publish_time", "publish_time_ns", "key", "replay", "original_seq", "size", "encoding",
                          "payload", "truncated"})
    EXPECT_TRUE(messages[0].contains(key)) << key;
  EXPECT_EQ(messages[0]["seq"], 0);
  EXPECT_EQ(messages[0]["payload"], "hello");
  EXPECT_EQ(messages[0]["encoding"], "text");
  EXPECT_TRUE(messages[0]["key"].is_null());
  EXPECT_EQ(messages[0]["replay"], false);
  EXPECT_EQ(messages[2]["encoding"], "hex");
  EXPECT_EQ(messages[2]["payload"], "0102ff");
  const auto& s = j["summary"];
  for (const char* key : {"end", "message", "first_seq", "next_seq", "records", "stopped", "segments", "options"})
    EXPECT_TRUE(s.contains(key)) << key;
  EXPECT_EQ(s["end"], "clean");
  EXPECT_EQ(s["first_seq"], 0);
  EXPECT_EQ(s["next_seq"], 3);
  ASSERT_GE(s["segments"].size(), 1u);
  for (const char* key : {"name", "index", "first_seq", "end_seq", "records", "bytes_used", "size"})
    EXPECT_TRUE(s["segments"][0].contains(key)) << key;

  // --from and -n pick a window.
  const auto window = cli.json({"journal", "dump", "q", "--json", "--from", "1", "-n", "1"});
  ASSERT_EQ(window["records"].size(), 1u);
  EXPECT_GE(window["records"][0]["seq"], 1);
  EXPECT_EQ(window["summary"]["stopped"], true);
}

TEST(CliJournalDump, should_exit_2_without_a_journal) {
  Cli cli;
  cli.ok({"create", "plain"});
  for (const char* name : {"plain", "missing"}) {
    const Result r = cli.run({"journal", "dump", name});
    EXPECT_EQ(r.code, 2) << name << ": " << r.err;
    expect_one_line_error(r);
    EXPECT_NE(r.err.find("--durability"), std::string::npos) << r.err;
  }
}

// ------------------------------------------------------ corrupt journal --

TEST(CliJournalDump, should_make_dump_verify_and_recover_exit_3_on_a_byte_flipped_in_the_middle_of_a_segment) {
  Cli cli;
  cli.ok({"create", "q", "--durability", "sync", "--group", "g"});
  // Each pub takes the journal over and writes a segment of its own, so the
  // first segment ends up in the middle of the log.
  for (int round = 0; round < 3; ++round) cli.ok({"pub", "q"}, numbered_lines(round * 5 + 1, round * 5 + 5));
  const auto before = cli.json({"journal", "dump", "q", "--json"});
  ASSERT_EQ(before["summary"]["end"], "clean");
  const auto& segments = before["summary"]["segments"];
  ASSERT_GE(segments.size(), 2u) << before["summary"].dump(2);
  std::string first = segments[0]["name"];
  if (first.find('/') == std::string::npos) first = cli.journal_dir() + "/ackring.q/" + first;
  const std::uint64_t used = segments[0]["bytes_used"];
  ASSERT_GT(used, 128u);
  flip_byte(first, 64 + (used - 64) / 2);  // past the 64-byte header, inside the records

  const Result dump = cli.run({"journal", "dump", "q"});
  EXPECT_EQ(dump.code, 3) << dump.out << dump.err;
  EXPECT_NE(dump.out.find("end: corrupt"), std::string::npos) << dump.out;
  expect_one_line_error(dump);
  const Result json = cli.run({"journal", "dump", "q", "--json"});
  EXPECT_EQ(json.code, 3);
  EXPECT_EQ(nlohmann::json::parse(json.out)["summary"]["end"], "corrupt") << "still valid JSON";

  const Result verify = cli.run({"verify", "q", "--json"});
  EXPECT_EQ(verify.code, 3) << verify.out;
  EXPECT_EQ(nlohmann::json::parse(verify.out)["journal"]["end"], "corrupt");

  ASSERT_TRUE(fs::remove(cli.path_of("q")));
  const Result recover = cli.run({"recover", "q"});
  EXPECT_EQ(recover.code, 3) << recover.err;
  expect_one_line_error(recover);
  EXPECT_NE(recover.err.find("journal dump q"), std::string::npos) << "says what to do: " << recover.err;
  EXPECT_NE(recover.err.find("move the damaged segment"), std::string::npos) << recover.err;
  EXPECT_FALSE(fs::exists(cli.path_of("q")));
}

// ---------------------------------------------------------------- verify --

TEST(CliVerifyJournal, should_report_the_journal_of_a_durable_queue_in_verify) {
  Cli cli;
  cli.ok({"create", "safe", "--durability", "sync", "--group", "g"});
  cli.ok({"create", "plain"});
  cli.ok({"pub", "safe"}, "a\nb\n");
  const auto j = cli.json({"verify", "safe", "--json"});
  EXPECT_EQ(j["healthy"], true);
  ASSERT_TRUE(j["journal"].is_object()) << j;
  EXPECT_EQ(j["journal"]["end"], "clean");
  EXPECT_GE(j["journal"]["records"], 2);
  EXPECT_NE(cli.ok({"verify", "safe"}).find("journal: clean, "), std::string::npos);
  EXPECT_TRUE(cli.json({"verify", "plain", "--json"})["journal"].is_null());
  EXPECT_NE(cli.ok({"verify", "plain"}).find("journal: none"), std::string::npos);
}

// ---------------------------------------------------------- group rewind --

TEST(CliRewind, should_redeliver_to_that_group_only) {
  Cli cli;
  cli.ok({"create", "q", "--durability", "sync", "--group", "a", "--group", "b"});
  cli.ok({"pub", "q"}, numbered_lines(1, 3));
  cli.ok({"sub", "q", "-g", "a", "-n", "3"});
  // b has consumed nothing yet: its floor keeps the journal's retention from
  // deleting what a replays (a rewind reaches only what the journal retains).

  const std::string out = cli.ok({"group", "rewind", "q", "a", "--to-seq", "1"});
  EXPECT_NE(out.find("rewound group a of 'q': replayed 2 messages of seqs 1..2"), std::string::npos) << out;
  const auto again = json_lines(cli.ok({"sub", "q", "-g", "a", "-n", "2", "--json", "--timeout", "5000"}));
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0]["payload"], "m2");
  EXPECT_EQ(again[1]["payload"], "m3");
  EXPECT_EQ(again[0]["replayed"], true);

  // By time: everything published in the last hour, as JSON. a's copies are not b's.
  const auto j = cli.json({"group", "rewind", "q", "b", "--to-time", "-1h", "--json"});
  for (const char* key : {"queue", "group", "from_seq", "until_seq", "replayed", "first_replay_seq"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["from_seq"], 0);
  EXPECT_EQ(j["replayed"], 3);
  EXPECT_EQ(j["first_replay_seq"], 5);
  // An RFC 3339 time with an offset, long before the queue existed: from the start.
  const auto old = cli.json({"group", "rewind", "q", "a", "--to-time", "2001-02-03T04:05:06.5+01:00", "--json"});
  EXPECT_EQ(old["from_seq"], 0);
  EXPECT_GE(old["replayed"], 3);

  // b: its originals, then its copies, and none of a's.
  const auto b = json_lines(cli.ok({"sub", "q", "-g", "b", "-n", "6", "--json", "--timeout", "5000"}));
  ASSERT_EQ(b.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(b[i]["payload"], "m" + std::to_string(i % 3 + 1)) << i;
    EXPECT_EQ(b[i]["replayed"], i >= 3) << i;
  }
  const Result none = cli.run({"sub", "q", "-g", "b", "--timeout", "300"});
  EXPECT_EQ(none.code, 0);
  EXPECT_EQ(none.out, "") << "b must not see a's copies";
}

TEST(CliRewind, should_replay_what_every_group_consumed_when_retention_keeps_it) {
  Cli cli;
  cli.ok({"create", "kept", "--durability", "async", "--retain-mib", "64", "--group", "a", "--capacity", "2048"});
  // More than a journal segment (1 MiB at least), all consumed by the only group.
  std::string lines;
  for (int i = 0; i < 1200; ++i) lines += "m" + std::to_string(i) + std::string(1000, '.') + "\n";
  cli.ok({"pub", "kept"}, lines);
  cli.ok({"sub", "kept", "-g", "a", "-n", "1200", "--timeout", "10000"});
  const auto j = cli.json({"group", "rewind", "kept", "a", "--to-seq", "0", "--json"});
  EXPECT_EQ(j["from_seq"], 0) << "retention kept the consumed segments";
  EXPECT_EQ(j["replayed"], 1200);
  EXPECT_EQ(cli.run({"create", "x", "--retain-mib", "1"}).code, 1) << "retention without a journal is refused";
}

TEST(CliRewind, should_exit_on_bad_requests_with_one_line_saying_why) {
  Cli cli;
  cli.ok({"create", "plain", "--group", "g"});
  cli.ok({"create", "q", "--durability", "sync", "--group", "g"});
  cli.ok({"pub", "q"}, "x\n");
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"group", "rewind", "plain", "g", "--to-seq", "0"}, 1, "has no journal"},
      {{"group", "rewind", "q", "g", "--to-time", "yesterday"}, 1, "not understood"},
      {{"group", "rewind", "q", "g", "--to-time", "2026-11-23T10:00:00"}, 1, "time zone"},
      {{"group", "rewind", "q", "g", "--to-time", "2026-02-30T10:00:00Z"}, 1, "not a valid date"},
      {{"group", "rewind", "q", "g", "--to-time", "+5m"}, 1, "future"},
      {{"group", "rewind", "q", "g", "--to-seq", "99"}, 1, "past the tail"},
      {{"group", "rewind", "q", "g"}, 1, "--to-seq"},
      {{"group", "rewind", "q", "g", "--to-seq", "0", "--to-time", "-1m"}, 1, "exclude"},
      {{"group", "rewind", "q", "nope", "--to-seq", "0"}, 2, "group 'nope' not found"},
      {{"group", "rewind", "missing", "g", "--to-seq", "0"}, 2, "not found"},
  };
  for (const auto& c : cases) {
    const Result r = cli.run(c.args);
    EXPECT_EQ(r.code, c.code) << c.args[2] << " " << c.args.back() << ": " << r.err;
    expect_one_line_error(r);
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
}

// -------------------------------------------------------------- journald --

TEST(CliJournald, should_become_the_writer_serve_producers_without_one_and_exit_0_on_sigterm) {
  Cli cli;
  cli.ok({"create", "q", "--durability", "sync", "--group", "g"});
  int out = -1;
  Background journald = cli.start_with_output({"journald", "q"}, out);
  const std::string line = read_until(out, "\n", std::chrono::seconds(10));
  EXPECT_NE(line.find("journald[" + std::to_string(journald.pid()) + "] q: writing the journal " + cli.journal_dir() +
                      "/ackring.q (sync)"),
            std::string::npos)
      << line;
  EXPECT_EQ(cli.json({"stat", "q", "--json"})["journal"]["writer_pid"], journald.pid());

  // Producers with their journal thread off: journald makes their sync publishes durable.
  cli.set_env("ACKRING_JOURNAL_WRITER", "0");
  EXPECT_EQ(cli.run({"pub", "q"}, "a\nb\n", true, std::chrono::seconds(10)).code, 0);
  EXPECT_EQ(cli.json({"stat", "q", "--json"})["journal"]["durable_seq"], 2);

  EXPECT_EQ(journald.stop(SIGTERM), 0);
  ::close(out);
  EXPECT_TRUE(cli.json({"stat", "q", "--json"})["journal"]["writer_pid"].is_null()) << "the lock was released";
}

TEST(CliJournald, should_have_a_second_journald_stand_by_and_take_over_when_the_first_dies) {
  Cli cli;
  cli.ok({"create", "q", "--durability", "sync"});
  int out1 = -1, out2 = -1;
  Background first = cli.start_with_output({"journald", "q"}, out1);
  ASSERT_NE(read_until(out1, "writing the journal", std::chrono::seconds(10)).find("writing"), std::string::npos);
  Background second = cli.start_with_output({"journald", "q"}, out2);
  EXPECT_NE(read_until(out2, "standing by", std::chrono::seconds(10)).find("standing by"), std::string::npos);
  EXPECT_EQ(first.stop(SIGKILL), 128 + SIGKILL);
  EXPECT_NE(read_until(out2, "writing the journal", std::chrono::seconds(10)).find("writing"), std::string::npos);
  EXPECT_EQ(cli.json({"stat", "q", "--json"})["journal"]["writer_pid"], second.pid());
  EXPECT_EQ(second.stop(SIGINT), 0);
  ::close(out1);
  ::close(out2);
}

TEST(CliJournald, should_refuse_a_queue_without_a_journal) {
  Cli cli;
  cli.ok({"create", "plain"});
  const Result none = cli.run({"journald", "plain"});
  EXPECT_EQ(none.code, 1);
  expect_one_line_error(none);
  EXPECT_NE(none.err.find("durability none"), std::string::npos) << none.err;
  EXPECT_EQ(cli.run({"journald", "missing"}).code, 2);
  cli.ok({"create", "q", "--durability", "sync"});
  const Result elsewhere = cli.run({"journald", "q", "--journal-dir", cli.dir() + "/other"});
  EXPECT_EQ(elsewhere.code, 1);
  EXPECT_NE(elsewhere.err.find("fixed when it was created"), std::string::npos) << elsewhere.err;
}

}  // namespace
}  // namespace ackring::cli_test
