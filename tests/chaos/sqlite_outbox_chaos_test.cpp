// Chaos tests of the transactional outbox example (examples/sqlite_outbox),
// end to end with the inbox example: orders committed in one SQLite database
// travel writer → outbox → relay → ackring → sqlite_inbox consumer into a
// second database. The writer and the relays are SIGKILLed at each named
// point on purpose (one test) and every process at random moments (the
// other). Afterwards, checked by content: the queue holds each committed order
// exactly once and nothing rolled back, and so does the second database.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ackring/ackring.hpp"
#include "process_util.hpp"

extern char** environ;

using namespace std::chrono_literals;
using ackring::testing::Child;

namespace {

constexpr const char* kGroup = "inbox";
constexpr std::int64_t kRefusedEvery = 7;  // the writer rolls back every 7th order on purpose

std::string random_hex() {
  std::random_device entropy;
  std::ostringstream hex;
  hex << std::hex << ((std::uint64_t{entropy()} << 32) | entropy());
  return hex.str();
}

// Forks and execs `args` with OUTBOX_CRASH_AT set to `crash_at` (or unset).
// The child dies with the test (PR_SET_PDEATHSIG survives exec), so a failed
// or timed-out test leaves no process behind; the Child reaps it.
Child spawn(const std::vector<std::string>& args, const std::string& crash_at = {}) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::string_view(*e).rfind("OUTBOX_CRASH_AT=", 0) != 0) env.emplace_back(*e);
  if (!crash_at.empty()) env.push_back("OUTBOX_CRASH_AT=" + crash_at);
  // Built before fork: the child only execs.
  std::vector<char*> argv;
  std::vector<char*> envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  argv.push_back(nullptr);
  envp.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(121);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return Child(pid);
}

// A connection the checks only read through (WAL: it never blocks the
// writers). Opened read-write all the same: the first connection after a
// crash may have to rebuild the WAL index, which a read-only one cannot.
class ReadDb {
 public:
  explicit ReadDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK)
      throw std::runtime_error("open " + path + ": " + sqlite3_errmsg(db_));
    sqlite3_busy_timeout(db_, 30'000);
  }
  ~ReadDb() { sqlite3_close(db_); }
  ReadDb(const ReadDb&) = delete;
  ReadDb& operator=(const ReadDb&) = delete;

  // Calls row(text of column 0, integer of column 1) for each row.
  template <class F>
  void each(const char* sql, F&& row) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string(sql) + ": " + sqlite3_errmsg(db_));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      row(std::string(text ? text : ""), sqlite3_column_int64(st, 1));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) throw std::runtime_error(std::string(sql) + ": " + sqlite3_errmsg(db_));
  }
  // The integer in the first column of the first row.
  std::int64_t scalar(const char* sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string(sql) + ": " + sqlite3_errmsg(db_));
    const int rc = sqlite3_step(st);
    const std::int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) throw std::runtime_error(std::string(sql) + ": " + sqlite3_errmsg(db_));
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
};

// Sets a new database file to WAL mode before any program opens it: switching
// the mode needs the file to itself, so two programs starting together on a
// fresh file must not both try.
void create_wal_db(const std::string& path) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK) << path;
  EXPECT_EQ(sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr), SQLITE_OK) << path;
  sqlite3_close(db);
}

// "order-17@<attempt>" → 17.
std::int64_t order_of(const std::string& message) {
  return message.rfind("order-", 0) == 0 ? std::strtoll(message.c_str() + 6, nullptr, 10) : -1;
}

std::string explain(const std::string& message) {
  const std::int64_t order = order_of(message);
  if (order > 0 && order % kRefusedEvery == 0) return "'" + message + "' (an order the writer rolled back on purpose)";
  return "'" + message + "' (not a committed order: an attempt a crash rolled back?)";
}

// One scenario: a queue with the inbox group, the source database (orders +
// outbox) and the inbox database, all under unique names; removed afterwards.
class Scenario {
 public:
  explicit Scenario(const ackring::QueueOptions& options) {
    // pid + random nonce: a file left by a killed earlier run whose pid was
    // reused cannot collide (tests/test_util.hpp, TempQueue).
    const std::string unique = std::to_string(::getpid()) + "." + random_hex();
    dir_ = std::filesystem::temp_directory_path() / ("ackring-outbox-" + unique);
    std::filesystem::create_directories(dir_);
    queue_path_ = "/dev/shm/ackring-outbox." + unique;
    source_ = (dir_ / "source.db").string();
    inbox_ = (dir_ / "inbox.db").string();
    queue_.emplace(ackring::Queue::create(queue_path_, options));
    queue_->create_group(kGroup);
  }
  ~Scenario() {
    queue_.reset();
    ackring::Queue::destroy(queue_path_);
    ackring::Queue::destroy(queue_path_ + ".dlq");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  Scenario(const Scenario&) = delete;
  Scenario& operator=(const Scenario&) = delete;

  // Both databases in WAL mode, and the source's tables made by a writer
  // that places no order, so every later reader finds them.
  void prepare_databases() {
    create_wal_db(source_);
    create_wal_db(inbox_);
    Child setup = writer(0);
    ASSERT_TRUE(setup.wait_for(60s)) << "the schema writer hangs";
    ASSERT_TRUE(setup.exited_ok()) << "the schema writer: " << setup.describe();
  }

  Child writer(std::int64_t orders, std::int64_t pause_us = 0, const std::string& crash_at = {}) const {
    return spawn({OUTBOX_WRITER_BIN, source_, std::to_string(orders), std::to_string(pause_us)}, crash_at);
  }
  Child relay(const std::string& crash_at = {}, bool until_idle = false) const {
    std::vector<std::string> args = {OUTBOX_RELAY_BIN, source_, queue_path_, "--batch=16"};
    if (until_idle) args.emplace_back("--until-idle");
    return spawn(args, crash_at);
  }
  Child consumer() const { return spawn({SQLITE_INBOX_BIN, "consume", queue_path_, inbox_, kGroup}); }

  [[nodiscard]] ackring::Queue& queue() { return *queue_; }
  [[nodiscard]] const std::string& source() const { return source_; }
  [[nodiscard]] const std::string& inbox() const { return inbox_; }

  // Runs an inbox consumer until every message published so far is applied
  // (the deadline only detects a hang), then stops it.
  void drain_into_inbox() const {
    Child consumer = this->consumer();
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!inbox_caught_up()) {
      ASSERT_FALSE(consumer.poll()) << "the inbox consumer failed: " << consumer.describe();
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the inbox consumer does not catch up";
      ackring::testing::sleep_ms(10);
    }
    consumer.kill_and_reap();
  }

  // True once every message published so far is acked in the inbox group.
  bool inbox_caught_up() const {
    const auto s = queue_->stats();
    for (const auto& g : s.groups)
      if (g.name == kGroup) return g.floor == s.tail;
    return false;
  }

  // The whole check, by content. Every committed order is one row of
  // `orders` (its id is the primary key) whose message is
  // "order-<id>@<attempt>"; a rolled-back one is not there, and an attempt a
  // crash rolled back differs from its committed retry in <attempt>.
  void expect_each_committed_order_exactly_once(std::int64_t orders) {
    // 1. The source: orders 1..N except the refused ones, each outbox row sent.
    ReadDb source(source_);
    std::map<std::string, std::int64_t> committed;  // message → order id
    source.each("SELECT attempt, id FROM orders", [&](const std::string& attempt, std::int64_t id) {
      EXPECT_TRUE(id >= 1 && id <= orders && id % kRefusedEvery != 0) << "order " << id << " should not be committed";
      committed.emplace("order-" + std::to_string(id) + "@" + attempt, id);
    });
    EXPECT_EQ(static_cast<std::int64_t>(committed.size()), orders - orders / kRefusedEvery) << "an order is missing";
    std::size_t outbox_rows = 0;
    source.each("SELECT payload, sent FROM outbox", [&](const std::string& payload, std::int64_t sent) {
      ++outbox_rows;
      EXPECT_TRUE(committed.count(payload)) << "outbox row " << explain(payload);
      EXPECT_EQ(sent, 1) << "outbox row '" << payload << "' was never marked sent";
    });
    EXPECT_EQ(outbox_rows, committed.size()) << "orders and outbox rows differ";

    // 2. The queue: no slot was reused (the ring is larger than the run), so
    // peek sees every message it ever held; aborted claims are not messages.
    const auto stats = queue_->stats();
    ASSERT_LE(stats.tail, stats.capacity) << "the ring wrapped: the test cannot see every message";
    std::map<std::string, std::vector<std::uint64_t>> in_queue;  // message → its seqs
    for (const auto& m : queue_->peek(0, stats.capacity))
      in_queue[std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size())].push_back(m.seq);
    for (const auto& [message, id] : committed) {
      const auto it = in_queue.find(message);
      EXPECT_TRUE(it != in_queue.end()) << "order " << id << " never reached the queue";
      if (it != in_queue.end()) {
        EXPECT_EQ(it->second.size(), 1u) << "order " << id << " is in the queue twice or more";
      }
    }
    for (const auto& [message, seqs] : in_queue)
      EXPECT_TRUE(committed.count(message)) << "the queue holds " << explain(message) << " at seq " << seqs.front();

    // 3. The inbox database (its `orders` table has no unique constraint: a
    // second application would be a second row), each at its queue seq.
    ReadDb inbox(inbox_);
    std::map<std::string, std::vector<std::int64_t>> applied;
    inbox.each("SELECT key, seq FROM orders", [&](const std::string& key, std::int64_t seq) { applied[key].push_back(seq); });
    for (const auto& [message, id] : committed) {
      const auto it = applied.find(message);
      EXPECT_TRUE(it != applied.end()) << "order " << id << " never reached the inbox database";
      if (it == applied.end()) continue;
      EXPECT_EQ(it->second.size(), 1u) << "order " << id << " was applied twice or more";
      const auto q = in_queue.find(message);
      if (q != in_queue.end()) {
        EXPECT_EQ(static_cast<std::uint64_t>(it->second.front()), q->second.front()) << "order " << id;
      }
    }
    for (const auto& [key, seqs] : applied)
      EXPECT_TRUE(committed.count(key)) << "the inbox database holds " << explain(key);
  }

 private:
  std::filesystem::path dir_;
  std::string queue_path_;
  std::string source_;
  std::string inbox_;
  std::optional<ackring::Queue> queue_;
};

// Runs `child` to its end (a deadline that only detects a hang).
void finish(Child& child, const char* what) {
  ASSERT_TRUE(child.wait_for(60s)) << what << " hangs";
}

std::uint64_t seed_from_env() {
  if (const char* s = std::getenv("ACKRING_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

}  // namespace

// Each step runs alone to its end, on a stopped writer's rows, so which rows
// are pending and which batch (16 rows) each is in is the same on every run:
// the number of re-publishes answered "duplicate" is exact.
TEST(SqliteOutboxChaos, should_publish_each_committed_order_once_when_the_outbox_writer_and_relay_die_at_each_named_point) {
  constexpr std::int64_t kOrders = 200;
  Scenario s({.capacity = 1024, .max_message_size = 64, .claim_timeout = 200ms, .dedup_entries = 4096});
  ASSERT_NO_FATAL_FAILURE(s.prepare_databases());
  struct Step {
    bool relay;
    const char* crash_at;
    const char* why;
  };
  const Step steps[] = {
      {false, "writer.before_commit:20", "mid-transaction: order 20 and its outbox row die uncommitted"},
      {false, "writer.after_commit:40", "orders 1..40 committed (20 again, as a new attempt): outbox rows 1..35"},
      {true, "relay.before_publish:5", "between commit and publish: rows 1..4 published, none marked"},
      {true, "relay.after_publish:12", "mid-batch: 1..4 again (4 duplicates), 5..12 new, none marked"},
      {true, "relay.after_publish:16", "a whole batch published, none marked: 12 duplicates, 13..16 new"},
      {true, "relay.before_mark_commit:9", "in the mark-sent transaction: 16 duplicates, the marks rolled back"},
      {false, "writer.before_commit:100", "orders up to 99 committed: outbox rows 1..85"},
      {true, "relay.after_publish:40", "16 duplicates, rows 1..32 marked, 33..40 new, not marked"},
  };
  constexpr std::uint64_t kDuplicates = 4 + 12 + 16 + 16 + 8;  // the last 8: rows 33..40 in the final run
  for (const Step& step : steps) {
    SCOPED_TRACE(std::string(step.crash_at) + " — " + step.why);
    Child c = step.relay ? s.relay(step.crash_at, true) : s.writer(kOrders, 0, step.crash_at);
    ASSERT_NO_FATAL_FAILURE(finish(c, step.crash_at));
    ASSERT_TRUE(c.killed_by(SIGKILL)) << "the crash point was not reached: " << c.describe();
  }
  Child writer = s.writer(kOrders);
  ASSERT_NO_FATAL_FAILURE(finish(writer, "the writer"));
  ASSERT_TRUE(writer.exited_ok()) << writer.describe();
  Child relay = s.relay({}, true);
  ASSERT_NO_FATAL_FAILURE(finish(relay, "the relay"));
  ASSERT_TRUE(relay.exited_ok()) << relay.describe();

  // Each writer run commits under its own attempt: a new one begins exactly
  // where a crash point stopped the previous run (the order it was writing,
  // or the one after the order it had committed).
  std::vector<std::int64_t> new_attempt_at;
  std::string previous;
  ReadDb(s.source()).each("SELECT attempt, id FROM orders ORDER BY id", [&](const std::string& attempt, std::int64_t id) {
    if (attempt != previous && id != 1) new_attempt_at.push_back(id);
    previous = attempt;
  });
  EXPECT_EQ(new_attempt_at, (std::vector<std::int64_t>{20, 41, 100}));

  const auto stats = s.queue().stats();
  const std::uint64_t committed = kOrders - kOrders / kRefusedEvery;
  EXPECT_EQ(stats.dedup.hits, kDuplicates) << "a re-publish after a crash was not answered as a duplicate";
  EXPECT_EQ(stats.tail, committed) << "no publish was cut short, so every seq is one committed order";

  ASSERT_NO_FATAL_FAILURE(s.drain_into_inbox());
  s.expect_each_committed_order_exactly_once(kOrders);
}

// Writer, two relays (they race on the same rows: the key keeps one message)
// and two inbox consumers run at once; a random one is SIGKILLed every few
// ms and restarted, often armed to kill itself at a named point just ahead of
// the work. Then a calm phase lets everything finish. The verdict is the same
// content check whatever the schedule was.
TEST(SqliteOutboxChaos, should_carry_each_committed_outbox_order_once_into_the_inbox_database_when_every_process_is_killed_at_random) {
  const std::uint64_t seed = seed_from_env();
  std::printf("ACKRING_SEED=%llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  constexpr std::int64_t kOrders = 3000;
  constexpr std::int64_t kPauseUs = 300;  // spreads the orders over the chaos phase
  constexpr int kKills = 150;
  // Every key stays inside the 5 min dedup window for the whole test: at
  // least 4 entries per key (README, "Dedup sizing"), doubled for margin.
  Scenario s({.capacity = 4096, .max_message_size = 64, .claim_timeout = 200ms, .dedup_entries = 16384});
  ASSERT_NO_FATAL_FAILURE(s.prepare_databases());
  ReadDb source(s.source());

  // A named point a little ahead of where the work is, or none.
  auto crash_ahead = [&](bool relay) -> std::string {
    if (rng() % 2 == 0) return {};
    static constexpr std::array<const char*, 2> kWriterPoints = {"writer.before_commit", "writer.after_commit"};
    static constexpr std::array<const char*, 3> kRelayPoints = {"relay.before_publish", "relay.after_publish",
                                                                "relay.before_mark_commit"};
    // The next row to publish, or the next order to write.
    const std::int64_t at = relay ? source.scalar("SELECT coalesce((SELECT min(id) FROM outbox WHERE sent = 0), "
                                                  "(SELECT coalesce(max(id), 0) + 1 FROM outbox))")
                                  : source.scalar("SELECT coalesce(max(id), 0) + 1 FROM orders");
    const char* point = relay ? kRelayPoints[rng() % kRelayPoints.size()] : kWriterPoints[rng() % kWriterPoints.size()];
    return std::string(point) + ":" + std::to_string(at + static_cast<std::int64_t>(rng() % 40));
  };

  Child writer = s.writer(kOrders, kPauseUs, crash_ahead(false));
  std::array<Child, 2> relays = {s.relay(crash_ahead(true)), s.relay(crash_ahead(true))};
  std::array<Child, 2> consumers = {s.consumer(), s.consumer()};
  bool written = false;
  int named_crashes = 0;
  // Reaps whatever ended by itself: the writer finishing, or a process that
  // killed itself at its named point (restarted, armed again while `arm`).
  // Anything else is a failure of the example.
  auto reap_and_restart = [&](bool arm) -> ::testing::AssertionResult {
    if (!written && writer.poll()) {
      if (writer.exited_ok()) {
        written = true;
      } else if (writer.killed_by(SIGKILL)) {
        ++named_crashes;
        writer = s.writer(kOrders, kPauseUs, arm ? crash_ahead(false) : std::string());
      } else {
        return ::testing::AssertionFailure() << "the writer failed: " << writer.describe();
      }
    }
    for (Child& r : relays) {
      if (!r.poll()) continue;
      if (!r.killed_by(SIGKILL)) return ::testing::AssertionFailure() << "a relay failed: " << r.describe();
      ++named_crashes;
      r = s.relay(arm ? crash_ahead(true) : std::string());
    }
    for (Child& c : consumers)
      if (c.poll()) return ::testing::AssertionFailure() << "a consumer failed: " << c.describe();
    return ::testing::AssertionSuccess();
  };

  for (int kills = 0; kills < kKills; ++kills) {
    ackring::testing::sleep_ms(2 + rng() % 25);
    ASSERT_TRUE(reap_and_restart(true));
    const unsigned pick = rng() % 4;
    if (pick == 0 && !written) {  // maybe mid-transaction, maybe between commit and the next order
      writer.kill_and_reap();
      writer = s.writer(kOrders, kPauseUs, crash_ahead(false));
    } else if (pick <= 2) {  // maybe mid-publish, between publish and mark-sent, mid-batch
      Child& r = relays[rng() % relays.size()];
      r.kill_and_reap();
      r = s.relay(crash_ahead(true));
    } else {  // maybe mid-transaction, maybe between commit and ack
      Child& c = consumers[rng() % consumers.size()];
      c.kill_and_reap();
      c = s.consumer();
    }
  }
  const std::int64_t written_in_chaos = source.scalar("SELECT count(*) FROM orders");
  // Calm phase: no more kills or armed restarts; done when the writer has
  // finished, no outbox row is pending (so every committed row was published)
  // and the inbox group has acked everything (so every message is applied).
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    ASSERT_TRUE(reap_and_restart(false));
    if (written && source.scalar("SELECT count(*) FROM outbox WHERE sent = 0") == 0 && s.inbox_caught_up()) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "no progress: writer " << (written ? "done" : writer.describe()) << ", pending outbox rows "
        << source.scalar("SELECT count(*) FROM outbox WHERE sent = 0");
    ackring::testing::sleep_ms(10);
  }
  for (Child& r : relays) r.kill_and_reap();
  for (Child& c : consumers) c.kill_and_reap();

  const auto stats = s.queue().stats();
  std::printf("kills %d (while %lld orders were committed), named crash points reached %d; %llu seqs for %lld "
              "committed orders: re-publishes deduplicated %llu, aborted claims %llu, redelivered %llu\n",
              kKills, static_cast<long long>(written_in_chaos), named_crashes, static_cast<unsigned long long>(stats.tail),
              static_cast<long long>(kOrders - kOrders / kRefusedEvery),
              static_cast<unsigned long long>(stats.dedup.hits), static_cast<unsigned long long>(stats.aborted),
              static_cast<unsigned long long>(stats.groups.at(0).redelivered));
  s.expect_each_committed_order_exactly_once(kOrders);
}

// The limit the example's README states: the dedup window bounds how late a
// re-publish is still recognised. A relay that comes back after the window
// (here 100 ms, waited out 5 times over) publishes the unmarked rows again as
// new messages; the inbox still applies each order once.
TEST(SqliteOutboxChaos, should_carry_an_unmarked_outbox_row_twice_but_apply_it_once_when_the_relay_returns_after_the_dedup_window) {
  constexpr std::int64_t kOrders = 10;  // 9 committed (7 is refused)
  Scenario s({.capacity = 64, .max_message_size = 64, .claim_timeout = 200ms, .dedup_window = 100ms});
  ASSERT_NO_FATAL_FAILURE(s.prepare_databases());
  Child writer = s.writer(kOrders);
  ASSERT_NO_FATAL_FAILURE(finish(writer, "the writer"));
  ASSERT_TRUE(writer.exited_ok()) << writer.describe();
  Child first = s.relay("relay.after_publish:5", true);  // rows 1..5 published, none marked
  ASSERT_NO_FATAL_FAILURE(finish(first, "the first relay"));
  ASSERT_TRUE(first.killed_by(SIGKILL)) << "the crash point was not reached: " << first.describe();
  ackring::testing::sleep_ms(500);
  Child second = s.relay({}, true);
  ASSERT_NO_FATAL_FAILURE(finish(second, "the second relay"));
  ASSERT_TRUE(second.exited_ok()) << second.describe();

  const auto stats = s.queue().stats();
  EXPECT_EQ(stats.dedup.hits, 0u) << "a key was remembered past its window";
  EXPECT_EQ(stats.tail, 9u + 5u) << "rows 1..5 should be in the queue twice";
  ASSERT_NO_FATAL_FAILURE(s.drain_into_inbox());
  ReadDb inbox(s.inbox());
  EXPECT_EQ(inbox.scalar("SELECT count(*) FROM orders"), 9) << "an order was applied twice or is missing";
  EXPECT_EQ(inbox.scalar("SELECT count(DISTINCT key) FROM orders"), 9);
}
