// The relay of the transactional outbox: publishes the rows the writer
// committed, oldest first, in batches, and marks each batch sent.
//
//   sqlite_outbox_relay DB QUEUE [--batch=N] [--until-idle]
//
// runs until killed, polling every 5 ms when no row is pending; with
// --until-idle it exits 0 once none is. Safe to kill at any point and
// restart; several relays may run at once (for availability).
//
// Each row is published with key "outbox-<row id>". A relay that dies after
// publishing a row and before its batch is marked sent (mid-batch, or in the
// mark-sent transaction) leaves the row pending; the next relay publishes it
// again and the queue answers duplicate = true with the first message's seq,
// enqueueing nothing. So the queue holds each committed row exactly once,
// not at least once. Two relays racing on one row meet the same way.
//
// The dedup window bounds this: a re-publish is recognised only within the
// queue's QueueOptions::dedup_window (default 5 min) of the first publish.
// Restart a dead relay well inside it (a supervisor restarting within
// seconds). A row published and then left unmarked for longer than the
// window is published again as a NEW message — the consumer's inbox
// (examples/sqlite_inbox) still applies it once, but the queue carries two.
// The key must be unique among all keyed publishes into the queue within
// the window: when several outboxes feed one queue, give each its own prefix.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ackring/ackring.hpp"
#include "crash_point.hpp"
#include "outbox_db.hpp"

using namespace std::chrono_literals;

namespace {

struct Row {
  std::int64_t id;
  std::string payload;
};

int relay(const std::string& db_path, const std::string& queue, std::int64_t batch, bool until_idle) {
  outbox::Db db(db_path);
  auto q = ackring::Queue::open(queue);
  auto producer = q.producer();
  const outbox::CrashPoint crash;
  auto pending = db.prepare("SELECT id, payload FROM outbox WHERE sent = 0 ORDER BY id LIMIT ?");
  auto mark_sent = db.prepare("UPDATE outbox SET sent = 1 WHERE id = ?");
  std::uint64_t published = 0;
  std::uint64_t duplicates = 0;
  std::vector<Row> rows;
  for (;;) {
    rows.clear();
    pending.bind(1, batch);
    while (pending.step()) rows.push_back({pending.int64(0), pending.text(1)});
    if (rows.empty()) {
      if (until_idle) break;
      std::this_thread::sleep_for(5ms);
      continue;
    }
    // Publish first, mark after: a crash in between re-publishes (a dedup
    // hit). The other order, mark then publish, would lose the row instead.
    for (const Row& row : rows) {
      crash.reached("relay.before_publish", row.id);
      const std::string key = "outbox-" + std::to_string(row.id);
      // A full ring waits here for the consumers; giving up means something
      // is badly wrong: exit, and let whoever restarts the relay retry.
      const auto r = producer.publish(row.payload, {.key = key}, 30s);
      if (!r.ok()) throw std::runtime_error("publish " + key + ": " + std::string(ackring::to_string(r.status)));
      ++(r.duplicate ? duplicates : published);
      crash.reached("relay.after_publish", row.id);
    }
    db.exec("BEGIN IMMEDIATE");
    try {
      for (const Row& row : rows) mark_sent.bind(1, row.id).step();
      for (const Row& row : rows) crash.reached("relay.before_mark_commit", row.id);
      db.exec("COMMIT");
    } catch (...) {
      db.exec("ROLLBACK");
      throw;
    }
  }
  std::printf("sqlite_outbox_relay: published %llu rows, %llu were in the queue already "
              "(re-published after a crash, or by another relay)\n",
              static_cast<unsigned long long>(published), static_cast<unsigned long long>(duplicates));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  std::int64_t batch = 32;
  bool until_idle = false;
  bool usage = args.size() < 2;
  for (std::size_t i = 2; i < args.size(); ++i) {
    if (args[i] == "--until-idle") until_idle = true;
    else if (args[i].rfind("--batch=", 0) == 0) batch = std::atoll(args[i].c_str() + 8);
    else usage = true;
  }
  if (usage || batch <= 0) {
    std::fprintf(stderr, "usage: sqlite_outbox_relay DB QUEUE [--batch=N] [--until-idle]\n");
    return 2;
  }
  try {
    return relay(args[0], args[1], batch, until_idle);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sqlite_outbox_relay: %s\n", e.what());
    return 1;
  }
}
