// Effectively-once into a real database: the inbox pattern with SQLite.
//
//   sqlite_inbox produce QUEUE COUNT       publish "order-0" .. "order-<COUNT-1>", each with its
//                                          own idempotency key; safe to kill and rerun from 0
//   sqlite_inbox consume QUEUE DB GROUP    apply each order to the database exactly once;
//                                          safe to kill at any point and restart
//
// The consumer commits the effect (a row in `orders`) and the processed key
// (a row in `inbox`) in ONE SQLite transaction, and acks only after that
// commit. If it dies before the commit, nothing happened and the message is
// redelivered; if it dies after the commit but before the ack, the redelivery
// finds the key in `inbox` and is acked without a second effect. That is what
// "effectively-once" means: at-least-once delivery + an idempotent effect.
// `orders` deliberately has no unique constraint, so a second application
// would show up as a duplicate row.
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ackring/ackring.hpp"

using namespace std::chrono_literals;

namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "sqlite_inbox: %s\n", what.c_str());
  return 1;
}

int produce(const std::string& queue, long count) {
  auto q = ackring::Queue::open(queue);
  auto producer = q.producer();
  for (long i = 0; i < count; ++i) {
    const std::string key = "order-" + std::to_string(i);
    const auto r = producer.publish(key, {.key = key}, 10s);
    if (!r.ok()) return fail("publish " + key + ": " + std::string(ackring::to_string(r.status)));
  }
  return 0;
}

class Db {
 public:
  explicit Db(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error(sqlite3_errmsg(db_));
    sqlite3_busy_timeout(db_, 5000);
    exec("PRAGMA journal_mode=WAL");
    // NORMAL is crash-safe against process death in WAL mode (the chaos test
    // kills processes); use FULL if effects must also survive a power cut.
    exec("PRAGMA synchronous=NORMAL");
    exec("CREATE TABLE IF NOT EXISTS orders(key TEXT NOT NULL, seq INTEGER NOT NULL)");
    exec("CREATE TABLE IF NOT EXISTS inbox(key TEXT PRIMARY KEY)");
  }
  ~Db() { sqlite3_close(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string message = err ? err : "unknown error";
      sqlite3_free(err);
      throw std::runtime_error(std::string(sql) + ": " + message);
    }
  }

  // One transaction: skip if the key is in the inbox, else apply the effect
  // and record the key. Returns false if it was a duplicate.
  bool apply_once(std::string_view key, std::uint64_t seq) {
    exec("BEGIN IMMEDIATE");
    try {
      const bool fresh = insert_key(key);
      if (fresh) insert_order(key, seq);
      exec("COMMIT");
      return fresh;
    } catch (...) {
      exec("ROLLBACK");
      throw;
    }
  }

 private:
  bool insert_key(std::string_view key) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_, "INSERT OR IGNORE INTO inbox(key) VALUES(?)", -1, &st, nullptr);
    sqlite3_bind_text(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    const int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db_));
    return sqlite3_changes(db_) == 1;
  }
  void insert_order(std::string_view key, std::uint64_t seq) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_, "INSERT INTO orders(key, seq) VALUES(?, ?)", -1, &st, nullptr);
    sqlite3_bind_text(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(seq));
    const int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db_));
  }

  sqlite3* db_ = nullptr;
};

int consume(const std::string& queue, const std::string& db_path, const std::string& group) {
  auto q = ackring::Queue::open(queue);
  auto consumer = q.consumer(group, {.lease = 2s});
  Db db(db_path);
  for (;;) {
    auto d = consumer.receive(1s);
    if (!d) continue;  // runs until killed
    db.apply_once(d->text(), d->seq());
    (void)consumer.ack(*d);  // lease_lost is fine: the effect is recorded, a redelivery is skipped
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 3 && args[0] == "produce") return produce(args[1], std::stol(args[2]));
    if (args.size() == 4 && args[0] == "consume") return consume(args[1], args[2], args[3]);
    std::fprintf(stderr,
                 "usage: sqlite_inbox produce QUEUE COUNT\n"
                 "       sqlite_inbox consume QUEUE DB GROUP\n");
    return 2;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
