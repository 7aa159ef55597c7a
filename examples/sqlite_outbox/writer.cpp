// The application side of the transactional outbox: it never talks to the
// queue. Each order is written together with its outbox row in ONE SQLite
// transaction, so either both are committed or neither is — there is no
// moment where the order exists and its message is lost, or the reverse.
// The relay (relay.cpp) publishes the outbox rows afterwards.
//
//   sqlite_outbox_writer DB COUNT [PAUSE_US]
//
// places orders 1 .. COUNT, resuming after the highest committed one (safe to
// kill and rerun), pausing PAUSE_US microseconds between orders. Every 7th
// order is refused by a business rule after both of its rows were written:
// the ROLLBACK undoes the order and its outbox row together, so nothing of
// it may ever reach the queue.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "crash_point.hpp"
#include "outbox_db.hpp"

namespace {

// A nonce per writer process: an order retried after a crash carries a new
// attempt, so a reader can tell it from the attempt the crash rolled back.
std::string new_attempt() {
  std::random_device entropy;
  std::ostringstream hex;
  hex << std::hex << ((std::uint64_t{entropy()} << 32) | entropy());
  return hex.str();
}

bool refused(std::int64_t order) { return order % 7 == 0; }

int write_orders(const std::string& path, std::int64_t count, std::chrono::microseconds pause) {
  outbox::Db db(path);
  const outbox::CrashPoint crash;
  const std::string attempt = new_attempt();
  auto last = db.prepare("SELECT coalesce(max(id), 0) FROM orders");
  last.step();
  const std::int64_t first = last.int64(0) + 1;
  last.step();  // done: releases the read snapshot
  auto insert_order = db.prepare("INSERT INTO orders(id, attempt) VALUES(?, ?)");
  auto insert_outbox = db.prepare("INSERT INTO outbox(payload) VALUES(?)");
  for (std::int64_t id = first; id <= count; ++id) {
    // IMMEDIATE takes the write lock up front: a deferred transaction that
    // reads first could fail with SQLITE_BUSY on upgrade, which the busy
    // timeout does not retry.
    db.exec("BEGIN IMMEDIATE");
    try {
      insert_order.bind(1, id).bind(2, attempt).step();
      insert_outbox.bind(1, outbox::order_message(id, attempt)).step();
      crash.reached("writer.before_commit", id);
      if (refused(id)) {
        db.exec("ROLLBACK");
      } else {
        db.exec("COMMIT");
        crash.reached("writer.after_commit", id);
      }
    } catch (...) {
      db.exec("ROLLBACK");
      throw;
    }
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() != 2 && args.size() != 3) {
    std::fprintf(stderr, "usage: sqlite_outbox_writer DB COUNT [PAUSE_US]\n");
    return 2;
  }
  try {
    const auto pause = std::chrono::microseconds(args.size() == 3 ? std::stoll(args[2]) : 0);
    return write_orders(args[0], std::stoll(args[1]), pause);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sqlite_outbox_writer: %s\n", e.what());
    return 1;
  }
}
