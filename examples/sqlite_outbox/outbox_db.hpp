// The outbox database, shared by the writer (the application) and the relay:
// the business table `orders` and the `outbox` table live in ONE SQLite file,
// so one local transaction can commit both. Also the few SQLite calls both
// programs need, as move-only owners that finalize and close.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace outbox {

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("prepare ") + sql + ": " + sqlite3_errmsg(db));
  }
  Statement(Statement&& o) noexcept : db_(o.db_), st_(std::exchange(o.st_, nullptr)) {}
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(st_); }

  Statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  Statement& bind(int i, std::string_view v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // Steps once: true while it yields a row, false when done. Resets itself
  // when done, so the statement can be bound and run again.
  bool step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    sqlite3_reset(st_);
    if (rc != SQLITE_DONE) throw std::runtime_error(std::string("step: ") + sqlite3_errmsg(db_));
    return false;
  }
  [[nodiscard]] std::int64_t int64(int column) const { return sqlite3_column_int64(st_, column); }
  [[nodiscard]] std::string text(int column) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, column));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st_, column))) : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
};

class Db {
 public:
  explicit Db(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
      const std::string message = sqlite3_errmsg(db_);
      sqlite3_close(db_);
      throw std::runtime_error("open " + path + ": " + message);
    }
    // Writer and relay write the same file; a lock holder keeps it for
    // microseconds, and one that is killed releases it at once, so a long
    // timeout only rides out a loaded machine.
    sqlite3_busy_timeout(db_, 30'000);
    exec("PRAGMA journal_mode=WAL");  // the relay reads while the writer writes
    // NORMAL is crash-safe against process death in WAL mode (the chaos test
    // kills processes); use FULL if commits must also survive a power cut.
    exec("PRAGMA synchronous=NORMAL");
    exec("CREATE TABLE IF NOT EXISTS orders(id INTEGER PRIMARY KEY, attempt TEXT NOT NULL)");
    // The outbox id is the publish key. AUTOINCREMENT: an id that was ever
    // committed is never handed out again, even after sent rows are deleted
    // (a plain INTEGER PRIMARY KEY reuses max(id) + 1), and a reused key
    // inside the dedup window would be swallowed as a duplicate. An id freed
    // by a rollback may be reused: its row was never visible, so never published.
    exec(
        "CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL, "
        "sent INTEGER NOT NULL DEFAULT 0)");
    exec("CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(id) WHERE sent = 0");
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
  [[nodiscard]] Statement prepare(const char* sql) { return Statement(db_, sql); }

 private:
  sqlite3* db_ = nullptr;
};

// The message an order becomes: "order-<id>@<attempt>". It carries the
// attempt (a nonce of the writer process) so that a reader can tell the
// committed version of an order from an attempt a crash rolled back.
[[nodiscard]] inline std::string order_message(std::int64_t id, std::string_view attempt) {
  return "order-" + std::to_string(id) + "@" + std::string(attempt);
}

}  // namespace outbox
