// peek: shows messages still in the ring without taking them (Queue::peek
// reads only; no lease, no counter changes).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "commands.hpp"
#include "format.hpp"
#include "records.hpp"

namespace ackring::cli {

namespace {

struct PeekOptions {
  std::string name;
  std::string group;
  std::uint64_t from = 0;
  bool has_from = false;
  std::size_t count = 10;
  bool raw = false;
  std::string delimiter = "line";
  bool json = false;
};

// Where to start: --from, else the group's floor, else the oldest retained message.
std::uint64_t start_seq(const Queue& q, const PeekOptions& o) {
  if (o.has_from) return o.from;
  if (o.group.empty()) return 0;  // peek starts at the oldest message still in the ring
  const QueueStats stats = q.stats();
  for (const auto& g : stats.groups)
    if (g.name == o.group) return g.floor;
  throw group_not_found(o.name, o.group);
}

int run_peek(const PeekOptions& o) {
  const Queue q = open_queue(o.name);
  const std::uint64_t from = start_seq(q, o);
  const auto messages = q.peek(from, o.count);
  if (o.raw) {
    const Delimiter delimiter = parse_delimiter(o.delimiter);
    for (const auto& m : messages)
      if (!write_record(stdout, Bytes(m.payload), delimiter))
        throw Failure(Exit::usage, "cannot write to standard output");
    return 0;
  }
  if (o.json) {
    Json list = Json::array();
    for (const auto& m : messages) {
      Json j{{"seq", m.seq}, {"publish_time", format_time(m.publish_time_ns)}, {"publish_time_ns", m.publish_time_ns}};
      put_payload(j, Bytes(m.payload));
      list.push_back(std::move(j));
    }
    std::cout << dump(list) << '\n';
    return 0;
  }
  if (messages.empty()) {
    std::cout << "no messages at or after seq " << from << " (tail " << q.stats().tail << ")\n";
    return 0;
  }
  Table t{{"SEQ", true}, {"PUBLISHED"}, {"SIZE", true}, {"PAYLOAD"}};
  for (const auto& m : messages)
    t.add({std::to_string(m.seq), format_time(m.publish_time_ns), std::to_string(m.payload.size()),
           preview(Bytes(m.payload), 100)});
  std::cout << t.render();
  return 0;
}

}  // namespace

void add_peek_command(CLI::App& app, Globals& globals, Action& action) {
  auto o = std::make_shared<PeekOptions>();
  auto* cmd = app.add_subcommand("peek", "Show messages without taking them");
  cmd->add_option("NAME", o->name, "Queue name or path")->required();
  cmd->add_option("--group,-g", o->group, "Start at this group's floor (its oldest unsettled message)")->type_name("G");
  auto* from = cmd->add_option("--from", o->from, "Start at this sequence number (default: oldest retained)")
                   ->type_name("SEQ")
                   ->check(CLI::NonNegativeNumber);
  cmd->add_option("-n,--count", o->count, "Show at most N messages")
      ->type_name("N")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--raw", o->raw, "Write the payload bytes only, framed by --delimiter");
  cmd->add_option("--delimiter,-d", o->delimiter, "Framing for --raw: line or length (4-byte little-endian prefix)")
      ->check(CLI::IsMember({"line", "length"}))
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print a JSON array (payload as text when valid UTF-8, else hex)");
  cmd->footer("Payloads print as text when printable UTF-8, else as hex: prefixed \"hex:\".");
  add_common_options(*cmd, globals);
  cmd->callback([o, from, &action] {
    o->has_from = from->count() > 0;
    set_action(action, [o] { return run_peek(*o); });
  });
}

}  // namespace ackring::cli
