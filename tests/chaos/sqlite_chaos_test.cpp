// Chaos test of the effectively-once example: producers and consumers of
// examples/sqlite_inbox are SIGKILLed at random moments, many times, and
// restarted; afterwards the database must hold every order exactly once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ackring/ackring.hpp"

using namespace std::chrono_literals;

namespace {

pid_t spawn(const std::vector<std::string>& args) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

std::uint64_t seed_from_env() {
  if (const char* s = std::getenv("ACKRING_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

}  // namespace

TEST(SqliteInboxChaos, should_apply_every_order_exactly_once_when_producers_and_consumers_are_killed_at_random) {
  const std::uint64_t seed = seed_from_env();
  std::printf("ACKRING_SEED=%llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  const auto dir = std::filesystem::temp_directory_path() / ("ackring-chaos-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string queue = "/dev/shm/ackring-chaos." + std::to_string(::getpid());
  const std::string db = (dir / "orders.db").string();
  const std::string bin = SQLITE_INBOX_BIN;
  constexpr long kOrders = 3000;
  ackring::Queue::destroy(queue);
  // Every key stays live for the whole test (5 min window): size the dedup
  // table for them (at least 2 entries per live key).
  auto q = ackring::Queue::create(
      queue, {.capacity = 256, .max_message_size = 64, .claim_timeout = 200ms, .dedup_entries = 8192});
  q.create_group("db");

  pid_t producer = spawn({bin, "produce", queue, std::to_string(kOrders)});
  std::vector<pid_t> consumers = {spawn({bin, "consume", queue, db, "db"}), spawn({bin, "consume", queue, db, "db"})};
  // Whatever happens (a failed assertion returns early), no child outlives the test.
  struct Reaper {
    pid_t& producer;
    std::vector<pid_t>& consumers;
    ~Reaper() {
      for (const pid_t p : consumers) ::kill(p, SIGKILL), ::waitpid(p, nullptr, 0);
      if (producer > 0 && ::kill(producer, SIGKILL) == 0) ::waitpid(producer, nullptr, 0);
    }
  } reaper{producer, consumers};
  // Chaos phase: kill a random process every 5-65 ms, 60 times, restarting it.
  // Then a calm phase: the producer completes its run (a rerun from order 0,
  // whose already-published keys are deduplicated) and the consumers drain.
  constexpr int kKills = 60;
  int kills = 0;
  int status = 0;
  bool produced = false;
  while (kills < kKills) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 60));
    if (!produced && ::waitpid(producer, &status, WNOHANG) == producer) {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "producer failed, status " << status;
      produced = true;
    }
    if (!produced && rng() % 3 == 0) {  // the producer, at whatever point of a publish it is
      ::kill(producer, SIGKILL);
      ::waitpid(producer, &status, 0);
      producer = spawn({bin, "produce", queue, std::to_string(kOrders)});  // reruns from order 0
    } else {  // a consumer: maybe mid-transaction, maybe between commit and ack
      const std::size_t i = rng() % consumers.size();
      ::kill(consumers[i], SIGKILL);
      ::waitpid(consumers[i], &status, 0);
      consumers[i] = spawn({bin, "consume", queue, db, "db"});
    }
    ++kills;
  }
  if (!produced) {
    ::waitpid(producer, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "producer failed, status " << status;
  }
  producer = -1;
  // Let the consumers drain everything.
  const auto drain_deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    const auto s = q.stats();
    if (s.groups.at(0).floor == s.tail || std::chrono::steady_clock::now() > drain_deadline) break;
    std::this_thread::sleep_for(20ms);
  }
  for (pid_t& c : consumers) {
    ::kill(c, SIGKILL);
    ::waitpid(c, nullptr, 0);
  }
  consumers.clear();
  const auto stats = q.stats();
  std::printf("kills %d, published %llu messages for %ld orders (retries deduplicated: %llu), aborted claims %llu, "
              "redelivered %llu\n",
              kills, static_cast<unsigned long long>(stats.published), kOrders,
              static_cast<unsigned long long>(stats.dedup.hits), static_cast<unsigned long long>(stats.aborted),
              static_cast<unsigned long long>(stats.groups.at(0).redelivered));

  sqlite3* handle = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
  auto scalar = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(handle, sql, -1, &st, nullptr), SQLITE_OK) << sql;
    EXPECT_EQ(sqlite3_step(st), SQLITE_ROW) << sql;
    const auto v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
  };
  EXPECT_EQ(scalar("SELECT count(*) FROM orders"), kOrders) << "an order was applied twice or is missing";
  EXPECT_EQ(scalar("SELECT count(DISTINCT key) FROM orders"), kOrders) << "an order is missing";
  EXPECT_EQ(scalar("SELECT count(*) FROM orders WHERE key NOT LIKE 'order-%'"), 0);
  EXPECT_EQ(scalar("SELECT max(CAST(substr(key, 7) AS INTEGER)) FROM orders"), kOrders - 1);
  sqlite3_close(handle);
  ackring::Queue::destroy(queue);
  ackring::Queue::destroy(queue + ".dlq");
  std::filesystem::remove_all(dir);
}
