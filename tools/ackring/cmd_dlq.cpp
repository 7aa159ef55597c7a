// dlq: the dead letters of a queue (its NAME.dlq queue, read from the floor
// of the "dlq" group without taking anything), and redrive back into NAME.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "commands.hpp"
#include "format.hpp"

namespace ackring::cli {

namespace {

constexpr std::string_view kDlqGroup = "dlq";  // the group dead_letter.hpp reads and redrives

struct DlqOptions {
  std::string name;
  std::size_t count = 100;
  bool json = false;
};

// The dead-letter queue of `name`, or nullopt if no message was ever dead-lettered.
std::optional<Queue> open_dlq(const std::string& name) {
  try {
    return Queue::open(dead_letter_queue_of(name));
  } catch (const Error& e) {
    if (e.code() == ErrorCode::not_found) return std::nullopt;
    throw Failure(exit_code_of(e.code()),
                  std::string(e.what()) + "; " + advice_for(e.code(), dead_letter_queue_of(name)));
  }
}

int run_list(const DlqOptions& o) {
  (void)open_queue(o.name);  // the queue itself must exist
  const auto dlq = open_dlq(o.name);
  if (!dlq) {
    if (o.json)
      std::cout << "[]\n";
    else
      std::cout << "no dead letters: queue '" << o.name << "' has no dead-letter queue yet\n";
    return 0;
  }
  std::uint64_t floor = 0;
  std::uint64_t waiting = 0;
  const QueueStats stats = dlq->stats();
  for (const auto& g : stats.groups)
    if (g.name == kDlqGroup) {
      floor = g.floor;
      waiting = g.lag;
    }
  const auto messages = dlq->peek(floor, o.count);
  Json list = Json::array();
  Table t{{"DLQ SEQ", true}, {"GROUP"}, {"SEQ", true}, {"DELIVERIES", true}, {"REASON"}, {"PUBLISHED"}, {"BODY"}};
  for (const auto& m : messages) {
    const auto letter = parse_dead_letter(Bytes(m.payload));
    if (!letter) {
      t.add({std::to_string(m.seq), "-", "-", "-", "not a dead letter", format_time(m.publish_time_ns),
             preview(Bytes(m.payload), 60)});
      list.push_back({{"dlq_seq", m.seq}, {"error", "not a dead letter"}});
      continue;
    }
    t.add({std::to_string(m.seq), letter->group, std::to_string(letter->seq), std::to_string(letter->deliveries),
           std::string(to_string(letter->reason)), format_time(letter->publish_time_ns), preview(letter->body, 60)});
    Json j{{"dlq_seq", m.seq},
           {"queue", letter->queue},
           {"group", letter->group},
           {"seq", letter->seq},
           {"deliveries", letter->deliveries},
           {"reason", to_string(letter->reason)},
           {"publish_time", format_time(letter->publish_time_ns)}};
    put_payload(j, letter->body);
    list.push_back(std::move(j));
  }
  if (o.json) {
    std::cout << dump(list) << '\n';
  } else if (messages.empty()) {
    std::cout << "no dead letters waiting in '" << dead_letter_queue_of(o.name) << "'\n";
  } else {
    std::cout << waiting << " dead letter" << (waiting == 1 ? "" : "s") << " waiting in '"
              << dead_letter_queue_of(o.name) << "'";
    if (messages.size() < waiting) std::cout << " (showing " << messages.size() << ", see -n)";
    std::cout << ":\n" << t.render();
  }
  return 0;
}

int run_redrive(const std::string& name) {
  stand_by_as_journal_writer();  // redriving publishes into `name`, which may be a sync queue
  (void)open_queue(name);
  if (!open_dlq(name)) {
    std::cout << "redrove 0 dead letters (queue '" << name << "' has no dead-letter queue)\n";
    return 0;
  }
  const std::size_t moved = redrive_dead_letters(name);
  std::cout << "redrove " << moved << " dead letter" << (moved == 1 ? "" : "s") << " into '" << name << "'\n";
  return 0;
}

}  // namespace

void add_dlq_commands(CLI::App& app, Globals& globals, Action& action) {
  auto o = std::make_shared<DlqOptions>();
  auto* dlq = app.add_subcommand("dlq", "List a queue's dead letters (or: dlq redrive NAME)");
  dlq->add_option("NAME", o->name, "Queue name or path (its dead letters are in NAME.dlq)");
  dlq->add_option("-n,--count", o->count, "Show at most N")
      ->type_name("N")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  dlq->add_flag("--json", o->json, "Print a JSON array: origin group, seq, deliveries, reason, body");
  dlq->footer("Dead letters are only shown here, not taken. 'ackring dlq redrive NAME' moves them back.");
  add_common_options(*dlq, globals);

  auto redrive_name = std::make_shared<std::string>();
  auto* redrive = dlq->add_subcommand("redrive", "Publish the waiting dead letters back into the queue");
  redrive->add_option("NAME", *redrive_name, "Queue name or path")->required();
  redrive->footer("Every group of NAME receives a redriven message again, as a new message.");
  add_common_options(*redrive, globals);
  redrive->callback(
      [redrive_name, &action] { set_action(action, [redrive_name] { return run_redrive(*redrive_name); }); });

  // CLI11 runs the redrive callback first; then this one must not override it.
  dlq->callback([o, &action] {
    set_action(action, [o]() -> int {
      if (o->name.empty()) throw Failure(Exit::usage, "dlq needs a queue NAME; see 'ackring dlq --help'");
      return run_list(*o);
    });
  });
}

}  // namespace ackring::cli
