// sub: joins a group and writes the messages it receives to stdout. A message
// is acked only after it was written and flushed; one that cannot be written
// is given back. With --no-ack the messages stay leased to sub while it runs
// (it renews their leases, so it never receives one twice) and go back to the
// group the moment it exits, like the unacked messages of any consumer that
// goes away.
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
  Json j{{"seq", d.seq()},
         {"deliveries", d.deliveries()},
         {"replayed", d.replayed()},
         {"publish_time", format_time(d.publish_time_ns())}};
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

// --no-ack: the messages sub has written but not acked. They stay leased to
// sub while it runs: were a lease to run out, the message would come round
// again (to sub itself, printed twice, one delivery closer to the dead-letter
// queue). When sub ends they are given back at once.
class HeldLeases {
 public:
  HeldLeases(Consumer& consumer, milliseconds lease) : consumer_(consumer), lease_(lease) {}
  HeldLeases(const HeldLeases&) = delete;
  HeldLeases& operator=(const HeldLeases&) = delete;
  // A nack without delay: due again now, for any member of the group, with
  // its delivery count as it was (the next receive makes it one higher).
  ~HeldLeases() {
    for (const Held& h : held_) (void)consumer_.nack(h.receipt);
  }

  void hold(const Receipt& r) { held_.push_back({r, Clock::now()}); }

  // Extends every lease that is half used up. A lease that cannot be
  // extended (the group was purged, say) is no longer ours to give back.
  void renew() {
    const auto now = Clock::now();
    std::erase_if(held_, [&](Held& h) {
      if (now - h.renewed < lease_ / 2) return false;
      h.renewed = now;
      return consumer_.extend(h.receipt, lease_) != Status::ok;
    });
  }

  // How long a receive may wait so that renew() runs before a lease ends.
  [[nodiscard]] milliseconds max_wait() const {
    return held_.empty() ? milliseconds::max() : std::max(milliseconds(1), lease_ / 4);
  }

 private:
  struct Held {
    Receipt receipt;
    Clock::time_point renewed;
  };
  Consumer& consumer_;
  milliseconds lease_;
  std::vector<Held> held_;
};

int run_sub(const SubOptions& o) {
  // A consumer of a sync queue sees only messages already on disk: stand by
  // to write the journal in case no other process does.
  stand_by_as_journal_writer();
  Queue q = open_queue(o.name);
  Consumer consumer = join(q, o);
  install_signal_handlers();
  const Delimiter delimiter = parse_delimiter(o.delimiter);
  const milliseconds lease = o.lease_ms != 0 ? milliseconds(o.lease_ms) : q.options().default_lease;
  HeldLeases held(consumer, lease);  // declared after the consumer: gives the leases back before it leaves
  std::uint64_t received = 0;
  auto last_message = Clock::now();
  bool timed_out = false;
  while (g_stop == 0 && (o.count == 0 || received < o.count)) {
    held.renew();
    milliseconds slice = std::min(milliseconds(200), held.max_wait());  // short waits: a signal ends us promptly
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
      held.hold(d->receipt());
    } else if (const Status s = consumer.ack(*d); s != Status::ok) {
      std::cerr << "ackring: ack of seq " << d->seq() << " failed (" << to_string(s)
                << "): it was held longer than its lease and may be delivered again; use a longer --lease\n";
    }
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
                "Ack each message once written (default); --no-ack keeps it leased while sub runs and gives it "
                "back to the group when sub exits");
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
      "--no-ack: sub renews the leases of what it printed, so it never gets a message twice; when it\n"
      "exits (also on Ctrl-C) it gives them back at once (a nack): the group receives them again, with\n"
      "a delivery count one higher (past --max-deliveries they go to the dead-letter queue). To look\n"
      "without any of that, use 'ackring peek'.\n"
      "Ctrl-C stops cleanly: the member leaves its group.");
  add_common_options(*cmd, globals);
  cmd->callback([o, &action] { set_action(action, [o] { return run_sub(*o); }); });
}

}  // namespace ackring::cli
