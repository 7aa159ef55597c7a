// sub: joins a group and writes the messages it receives to stdout. A message
// is acked only after it was written and flushed; one that cannot be written
// is given back. With --no-ack the messages stay leased until their lease
// runs out, then come back (to any member).
#include <poll.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "format.hpp"
#include "records.hpp"

namespace ackring::cli {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop(int) { g_stop = 1; }

// SIGINT/SIGTERM/SIGHUP end the loop cleanly (the consumer then leaves its
// group properly); SIGPIPE is ignored so a closed pipe is a failed write
// (EPIPE) and the message being written is given back.
void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  for (const int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

struct SubOptions {
  std::string name;
  std::string group;
  bool ack = true;
  std::uint64_t count = 0;       // 0: no limit
  std::int64_t timeout_ms = -1;  // < 0: wait forever
  std::uint32_t lease_ms = 0;    // 0: the queue's default lease
  std::string delimiter = "line";
  bool json = false;
  bool create = false;
};

bool write_delivery(const Delivery& d, const SubOptions& o, Delimiter delimiter) {
  if (!o.json) return write_record(stdout, d.payload(), delimiter);
  Json j{{"seq", d.seq()}, {"deliveries", d.deliveries()}, {"publish_time", format_time(d.publish_time_ns())}};
  put_payload(j, d.payload());
  const std::string line = dump(j, false) + '\n';
  return std::fwrite(line.data(), 1, line.size(), stdout) == line.size() && std::fflush(stdout) == 0;
}

Consumer join(Queue& q, const SubOptions& o) {
  ConsumerOptions co;
  co.create_group = o.create;
  co.lease = milliseconds(o.lease_ms);
  try {
    return q.consumer(o.group, co);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::not_found) throw;
    const Failure f = group_not_found(o.name, o.group);
    throw Failure(f.code(), std::string(f.what()) + ", or pass --create to create it");
  }
}

// True once the reading end of a pipe on stdout was closed (poll reports
// POLLERR on the write end): stop, rather than wait for a message to find out.
bool reader_gone() {
  pollfd p{STDOUT_FILENO, 0, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0;
}

bool group_exists(const Queue& q, const std::string& group) {
  const auto names = q.group_names();
  return std::find(names.begin(), names.end(), group) != names.end();
}

int run_sub(const SubOptions& o) {
  Queue q = open_queue(o.name);
  Consumer consumer = join(q, o);
  install_signal_handlers();
  const Delimiter delimiter = parse_delimiter(o.delimiter);
  const milliseconds lease = o.lease_ms != 0 ? milliseconds(o.lease_ms) : q.options().default_lease;
  struct Held {
    Receipt receipt;
    Clock::time_point at;
  };
  std::vector<Held> held;  // --no-ack: what we leave leased
  std::uint64_t received = 0;
  auto last_message = Clock::now();
  bool timed_out = false;
  while (g_stop == 0 && (o.count == 0 || received < o.count)) {
    milliseconds slice(200);  // short waits, so a signal ends us promptly
    if (o.timeout_ms >= 0) {
      const auto left =
          milliseconds(o.timeout_ms) - std::chrono::duration_cast<milliseconds>(Clock::now() - last_message);
      if (left.count() <= 0) {
        timed_out = true;
        break;
      }
      slice = std::min(slice, left);
    }
    const auto d = consumer.receive(slice);
    if (!d) {
      if (reader_gone()) break;
      if (!group_exists(q, o.group))
        throw Failure(Exit::not_found, "group '" + o.group + "' was removed from queue '" + o.name + "' meanwhile");
      continue;
    }
    last_message = Clock::now();
    if (!write_delivery(*d, o, delimiter)) {
      const int err = errno;
      (void)consumer.nack(d->receipt());  // not shown to anyone: give it back at once
      if (err == EPIPE) break;            // the reader is gone (| head): a normal end
      throw Failure(Exit::usage, std::string("cannot write to standard output: ") + std::strerror(err) +
                                     "; message seq " + std::to_string(d->seq()) + " was given back");
    }
    ++received;
    if (!o.ack) {
      // Leases that ran out are no longer ours to hand back (they may come round again).
      std::erase_if(held, [&](const Held& h) { return last_message - h.at >= lease; });
      held.push_back({d->receipt(), last_message});
    } else if (const Status s = consumer.ack(*d); s != Status::ok) {
      std::cerr << "ackring: ack of seq " << d->seq() << " failed (" << to_string(s)
                << "): it was held longer than its lease and may be delivered again; use a longer --lease\n";
    }
  }
  // Leaving the group would hand our leases out again at once; a nack that
  // waits out the rest of each lease leaves them where --no-ack promised.
  for (const Held& h : held) {
    const auto left = lease - std::chrono::duration_cast<milliseconds>(Clock::now() - h.at);
    if (left.count() > 0) (void)consumer.nack(h.receipt, left);
  }
  if (o.count != 0 && received < o.count) {
    throw Failure(Exit::timeout,
                  "received " + std::to_string(received) + " of " + std::to_string(o.count) + " messages from group '" +
                      o.group + "'" +
                      (timed_out ? " before the " + std::to_string(o.timeout_ms) + " ms timeout"
                                 : " before it was stopped (signal, or the reader of stdout went away)"));
  }
  return 0;
}

}  // namespace

void add_sub_command(CLI::App& app, Globals& globals, Action& action) {
  auto o = std::make_shared<SubOptions>();
  auto* cmd = app.add_subcommand("sub", "Consume messages of a group to stdout (acked once written)");
  cmd->add_option("NAME", o->name, "Queue name or path")->required();
  cmd->add_option("--group,-g", o->group, "Consumer group to join")->required()->type_name("G");
  cmd->add_flag("--ack,!--no-ack", o->ack,
                "Ack each message once written (default); --no-ack leaves it leased: it comes back after the lease");
  cmd->add_option("-n,--count", o->count, "Stop after N messages; exit 6 if the timeout comes first")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--timeout", o->timeout_ms, "Stop after MS ms without a message (default: wait forever)")
      ->type_name("MS");
  cmd->add_option("--lease", o->lease_ms, "Lease of each delivery in ms (default: the queue's)")
      ->type_name("MS")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--delimiter,-d", o->delimiter,
                  "line: payload then newline; length: 4-byte little-endian length, then payload")
      ->check(CLI::IsMember({"line", "length"}))
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "One JSON object per message: seq, deliveries, publish_time, payload");
  cmd->add_flag("--create", o->create, "Create the group if it does not exist");
  cmd->footer(
      "--no-ack gives each message back when sub exits, due again when its lease ends (counted as a nack).\n"
      "Ctrl-C stops cleanly: the member leaves its group.");
  add_common_options(*cmd, globals);
  cmd->callback([o, &action] { set_action(action, [o] { return run_sub(*o); }); });
}

}  // namespace ackring::cli
