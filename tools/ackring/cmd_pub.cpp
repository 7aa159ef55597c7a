// pub: publishes the records of stdin (or a file), one message each. Stops at
// the first record it cannot publish and says which one: nothing is dropped
// silently, and everything before it has been published.
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "commands.hpp"
#include "format.hpp"
#include "records.hpp"

namespace ackring::cli {

namespace {

struct PubOptions {
  std::string name;
  std::string file;
  std::string delimiter = "line";
  std::int64_t timeout_ms = -1;  // < 0: wait as long as it takes for room
  bool json = false;
};

struct Progress {
  std::uint64_t published = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
};

void print_progress(const Progress& p, bool json) {
  if (json) {
    Json j{{"published", p.published}};
    j["first_seq"] = p.published ? Json(p.first_seq) : Json(nullptr);
    j["last_seq"] = p.published ? Json(p.last_seq) : Json(nullptr);
    std::cout << dump(j, false) << '\n';
  } else {
    std::cout << "published " << p.published << '\n';
  }
  std::cout.flush();
}

// "line 3" or "record 3", and what happened to the input around it.
std::string which(const RecordReader& r, Delimiter d) {
  return (d == Delimiter::line ? "line " : "record ") + std::to_string(r.number());
}

std::string aftermath(const Progress& p) {
  return std::to_string(p.published) + (p.published == 1 ? " record before it was" : " records before it were") +
         " published; it and the rest of the input were not";
}

int run_pub(const PubOptions& o) {
  // A publish to a sync queue returns once its record is on disk: stand by to
  // write the journal in case no other process does.
  stand_by_as_journal_writer();
  Queue q = open_queue(o.name);
  const std::uint32_t max_size = q.options().max_message_size;
  const Delimiter delimiter = parse_delimiter(o.delimiter);
  // /dev/stdin, not std::cin: a buffered stream of its own, and the same code for both.
  const std::string source = o.file.empty() || o.file == "-" ? "/dev/stdin" : o.file;
  std::ifstream in(source, std::ios::binary);
  if (!in) throw Failure(Exit::not_found, "cannot read '" + source + "': " + std::strerror(errno) + "; check --file");
  Producer producer = q.producer();
  RecordReader reader(in, delimiter, max_size);
  const auto timeout = o.timeout_ms < 0 ? std::chrono::nanoseconds::max()
                                        : std::chrono::nanoseconds(std::chrono::milliseconds(o.timeout_ms));
  Progress progress;
  std::string record;
  for (;;) {
    const auto got = reader.next(record);
    if (got == RecordReader::Result::end) break;
    if (got == RecordReader::Result::too_large) {
      print_progress(progress, o.json);
      throw Failure(Exit::usage, which(reader, delimiter) + " is " + std::to_string(reader.size()) +
                                     " bytes, more than the queue's max message size of " + std::to_string(max_size) +
                                     " bytes; " + aftermath(progress) +
                                     " (create the queue with a larger --max-message-size, or split the record)");
    }
    if (got == RecordReader::Result::truncated) {
      print_progress(progress, o.json);
      throw Failure(Exit::usage,
                    which(reader, delimiter) + ": input ends inside it (" + std::to_string(reader.got()) + " of " +
                        std::to_string(reader.size()) + " bytes); " + aftermath(progress) +
                        " (is the input really length-delimited: 4-byte little-endian length, then data?)");
    }
    const PublishResult r = o.timeout_ms == 0 ? producer.try_publish(record) : producer.publish(record, timeout);
    if (!r.ok()) {
      print_progress(progress, o.json);
      if (r.status == Status::queue_full || r.status == Status::timeout)
        throw Failure(Exit::timeout,
                      "queue '" + o.name + "' " +
                          (o.timeout_ms == 0 ? std::string("was full")
                                             : "stayed full for " + std::to_string(o.timeout_ms) + " ms") +
                          " at " + which(reader, delimiter) + "; " + aftermath(progress) +
                          " (consumers are behind: see 'ackring stat " + o.name + "')");
      throw Failure(r.status == Status::corrupt ? Exit::corrupt : Exit::usage,
                    "publishing " + which(reader, delimiter) + " failed: " + std::string(to_string(r.status)) + "; " +
                        aftermath(progress));
    }
    if (progress.published++ == 0) progress.first_seq = r.seq;
    progress.last_seq = r.seq;
  }
  print_progress(progress, o.json);
  return 0;
}

}  // namespace

void add_pub_command(CLI::App& app, Globals& globals, Action& action) {
  auto o = std::make_shared<PubOptions>();
  auto* cmd = app.add_subcommand("pub", "Publish each line (or length-delimited record) of stdin or a file");
  cmd->add_option("NAME", o->name, "Queue name or path")->required();
  cmd->add_option("--file,-f", o->file, "Read records from this file instead of stdin ('-': stdin)")->type_name("F");
  cmd->add_option("--delimiter,-d", o->delimiter,
                  "line: one message per line (without its newline); length: 4-byte little-endian length prefix")
      ->check(CLI::IsMember({"line", "length"}))
      ->capture_default_str();
  cmd->add_option("--timeout", o->timeout_ms,
                  "Give up when the queue stays full for MS ms (exit 6); 0: never wait; default: wait for room")
      ->type_name("MS");
  cmd->add_flag("--json", o->json, "Print the count and sequence numbers as JSON");
  cmd->footer(
      "Prints the number of messages published. A record larger than the queue's max message size\n"
      "stops the run with an error naming it (exit 1); the records before it are published.");
  add_common_options(*cmd, globals);
  cmd->callback([o, &action] { set_action(action, [o] { return run_pub(*o); }); });
}

}  // namespace ackring::cli
