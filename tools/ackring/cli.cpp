#include "cli.hpp"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <cstring>

namespace ackring::cli {

Exit exit_code_of(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::not_found:
    case ErrorCode::permission_denied:
      return Exit::not_found;
    case ErrorCode::incompatible:
    case ErrorCode::corrupt:
      return Exit::corrupt;
    case ErrorCode::resource_exhausted:
      return Exit::busy;
    case ErrorCode::timeout:
      return Exit::timeout;
    case ErrorCode::invalid_argument:
    case ErrorCode::already_exists:
    case ErrorCode::system:
      return Exit::usage;
  }
  return Exit::usage;
}

std::string advice_for(ErrorCode code, std::string_view queue) {
  const std::string q = queue.empty() ? "NAME" : std::string(queue);
  switch (code) {
    case ErrorCode::invalid_argument:
      return "queue names use letters, digits, '-', '_' and '.' (anything with a '/' is a path); "
             "see 'ackring --help'";
    case ErrorCode::not_found:
      return "list queues with 'ackring ls'";
    case ErrorCode::already_exists:
      return "choose another name, or remove it first with 'ackring rm " + q + "'";
    case ErrorCode::permission_denied:
      return "run as the owner of the queue file or as a user with read-write access to it";
    case ErrorCode::incompatible:
      return "use the ackring build that created it, or remove it with 'ackring rm " + q + " --force'";
    case ErrorCode::corrupt:
      return "the file cannot be trusted; remove it with 'ackring rm " + q + " --force' (its messages are lost)";
    case ErrorCode::resource_exhausted:
      return "wait for other processes to detach, or recreate the queue with larger limits";
    case ErrorCode::system:
      return "check the queue directory (--dir, $ACKRING_SHM_DIR) and free memory";
    case ErrorCode::timeout:
      return "the consumers did not make room in time; let them catch up, then run it again";
  }
  return {};
}

Queue open_queue(std::string_view name) {
  try {
    return Queue::open(name);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::not_found) {
      std::string where;
      try {
        const std::string path = Queue::resolve(name).string();
        if (path != name) where = " (" + path + ")";
      } catch (const Error&) {
      }
      throw Failure(Exit::not_found,
                    "queue '" + std::string(name) + "' not found" + where + "; list queues with 'ackring ls'");
    }
    throw Failure(exit_code_of(e.code()), std::string(e.what()) + "; " + advice_for(e.code(), name));
  }
}

Failure group_not_found(std::string_view queue, std::string_view group) {
  return Failure(Exit::not_found, "group '" + std::string(group) + "' not found in queue '" + std::string(queue) +
                                      "'; list groups with 'ackring group ls " + std::string(queue) + "'");
}

std::filesystem::path queue_directory() {
  // Any valid name resolves into the queue directory; the library owns the rule.
  return Queue::resolve("probe").parent_path();
}

void stand_by_as_journal_writer() {
  const char* env = std::getenv("ACKRING_JOURNAL_WRITER");
  if (env != nullptr && std::strcmp(env, "0") == 0) return;
  set_journal_writer_enabled(true);
}

void add_common_options(CLI::App& sub, Globals& globals) {
  sub.add_option("--dir", globals.dir, "Queue directory (default $ACKRING_SHM_DIR, else /dev/shm)")->type_name("DIR");
}

void set_action(Action& action, Action what) {
  if (!action) action = std::move(what);
}

}  // namespace ackring::cli
