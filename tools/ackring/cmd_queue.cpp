// Queue lifecycle: ls, create, rm, purge.
#include <CLI/CLI.hpp>
#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "format.hpp"
#include "stats_view.hpp"

namespace ackring::cli {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kFilePrefix = "ackring.";

// ------------------------------------------------------------------- ls --

struct LsOptions {
  bool json = false;
};

int run_ls(const LsOptions& o) {
  const fs::path dir = queue_directory();
  std::error_code ec;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string fname = it->path().filename().string();
    std::error_code type_ec;
    if (fname.starts_with(kFilePrefix) && fname.size() > kFilePrefix.size() && it->is_regular_file(type_ec))
      files.push_back(it->path());
  }
  if (ec)
    throw Failure(Exit::not_found, "cannot list queue directory '" + dir.string() + "': " + ec.message() +
                                       "; point --dir or $ACKRING_SHM_DIR at an existing directory");
  std::sort(files.begin(), files.end());

  Table table{{"NAME"},        {"PATH"},   {"CAPACITY", true}, {"MAX MSG", true},
              {"DEPTH", true}, {"GROUPS"}, {"DURABILITY"},     {"STATUS"}};
  Json list = Json::array();
  for (const fs::path& file : files) {
    const std::string name = file.filename().string().substr(kFilePrefix.size());
    try {
      const Queue q = Queue::open(file.string());
      const QueueStats s = q.stats();
      const std::string durability(to_string(q.options().durability));
      std::vector<std::string> groups;
      for (const auto& g : s.groups) groups.push_back(g.name);
      std::string joined;
      for (const auto& g : groups) joined += (joined.empty() ? "" : ",") + g;
      table.add({name, file.string(), std::to_string(s.capacity), std::to_string(s.max_message_size),
                 std::to_string(s.depth), joined.empty() ? "-" : joined, durability, "ok"});
      list.push_back({{"name", name},
                      {"path", file.string()},
                      {"capacity", s.capacity},
                      {"max_message_size", s.max_message_size},
                      {"depth", s.depth},
                      {"groups", groups},
                      {"durability", durability}});
    } catch (const Error& e) {
      table.add({name, file.string(), "-", "-", "-", "-", "-", std::string("error: ") + e.what()});
      list.push_back({{"name", name},
                      {"path", file.string()},
                      {"error", e.what()},
                      {"exit_code", static_cast<int>(exit_code_of(e.code()))}});
    }
  }
  if (o.json) {
    std::cout << dump(Json{{"directory", dir.string()}, {"queues", std::move(list)}}) << '\n';
  } else if (table.empty()) {
    std::cout << "no queues in " << dir.string() << '\n';
  } else {
    std::cout << table.render();
  }
  return 0;
}

// --------------------------------------------------------------- create --

struct CreateOptions {
  std::string name;
  QueueOptions queue;
  std::uint32_t lease_ms = static_cast<std::uint32_t>(QueueOptions{}.default_lease.count());
  std::uint32_t claim_timeout_ms = static_cast<std::uint32_t>(QueueOptions{}.claim_timeout.count());
  std::string mode = "0600";
  std::string group_owner;  // --group-owner: a Unix group name or gid; empty: the creator's
  std::vector<std::string> groups;
  bool no_dedup = false;
  std::uint32_t dedup_window_ms = static_cast<std::uint32_t>(QueueOptions{}.dedup_window.count());
  std::string dedup_full = "refuse";
  bool no_bloom = false;
  std::string durability = "none";
  std::string publish_timestamp = "precise";
  std::uint32_t flush_interval_ms = 0;  // 0: not given (the library's default)
  std::uint64_t retain_mib = 0;         // journal retention for replay: newest MiB of settled segments
  std::uint64_t retain_s = 0;           // ... and settled segments younger than this
};

Durability parse_durability(const std::string& text) {
  if (text == "sync") return Durability::sync;
  if (text == "async") return Durability::async;
  return Durability::none;  // CLI11 checked the set
}

// Options that only mean something with a journal are refused without one,
// rather than silently ignored: the operator asked for something they will not get.
void check_durability_options(const CreateOptions& o) {
  const Durability d = parse_durability(o.durability);
  if (d == Durability::none && !o.queue.journal_dir.empty())
    throw Failure(Exit::usage, "--journal-dir needs --durability async or sync (durability none writes no journal)");
  if (d != Durability::async && o.flush_interval_ms != 0)
    throw Failure(Exit::usage, "--flush-interval is the loss window of --durability async; with " +
                                   o.durability + (d == Durability::sync ? " every publish waits for its own flush"
                                                                        : " there is no journal to flush"));
  if (d == Durability::none && (o.retain_mib != 0 || o.retain_s != 0))
    throw Failure(Exit::usage, "--retain-mib / --retain-age keep journal segments for replay: they need "
                               "--durability async or sync");
}

mode_t parse_mode(const std::string& text) {
  std::string digits = text;
  if (digits.starts_with("0o")) digits = digits.substr(2);
  const bool octal = !digits.empty() && digits.size() <= 5 &&
                     std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '7'; });
  const unsigned long value = octal ? std::stoul(digits, nullptr, 8) : 0;
  if (!octal || value > 07777)
    throw Failure(Exit::usage, "--mode '" + text + "': expected octal permission bits such as 0600 or 0660");
  return static_cast<mode_t>(value);
}

// --group-owner: a Unix group by name, or a numeric gid.
struct UnixGroup {
  gid_t gid = 0;
  std::string name;
};

UnixGroup parse_group_owner(const std::string& text) {
  std::vector<char> buf(1 << 16);
  struct group gr {};
  struct group* found = nullptr;
  if (::getgrnam_r(text.c_str(), &gr, buf.data(), buf.size(), &found) == 0 && found != nullptr)
    return {found->gr_gid, found->gr_name};
  const bool digits = !text.empty() && text.size() <= 10 &&
                      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits && std::stoull(text) < 0xffffffffull) {
    const auto gid = static_cast<gid_t>(std::stoull(text));
    if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &found) == 0 && found != nullptr) return {gid, found->gr_name};
    return {gid, text};
  }
  throw Failure(Exit::usage, "--group-owner '" + text + "': no such group; list groups with 'getent group'");
}

int run_create(CreateOptions o) {
  check_durability_options(o);
  std::optional<UnixGroup> owner;
  if (!o.group_owner.empty()) owner = parse_group_owner(o.group_owner);
  o.queue.default_lease = Millis(o.lease_ms);
  o.queue.claim_timeout = Millis(o.claim_timeout_ms);
  o.queue.mode = parse_mode(o.mode);
  o.queue.dedup = !o.no_dedup;
  o.queue.dedup_window = Millis(o.dedup_window_ms);
  o.queue.dedup_full_policy = o.dedup_full == "refuse" ? DedupFullPolicy::refuse : DedupFullPolicy::evict_oldest;
  o.queue.dedup_bloom = !o.no_bloom;
  o.queue.durability = parse_durability(o.durability);
  o.queue.publish_timestamp = o.publish_timestamp == "coarse" ? PublishTimestamp::coarse : PublishTimestamp::precise;
  if (o.flush_interval_ms != 0) o.queue.async_flush_interval = Millis(o.flush_interval_ms);
  o.queue.journal_retain_bytes = o.retain_mib << 20;
  o.queue.journal_retain_age = std::chrono::seconds(o.retain_s);
  Queue q = [&] {
    try {
      return Queue::create(o.name, o.queue);
    } catch (const Error& e) {
      std::string advice;
      switch (e.code()) {
        case ErrorCode::invalid_argument:
          advice = "see 'ackring create --help'";
          break;
        case ErrorCode::not_found:
          advice = "the queue directory does not exist; create it, or pick another with --dir or $ACKRING_SHM_DIR";
          break;
        case ErrorCode::permission_denied:
          advice = o.queue.durability == Durability::none
                       ? "you need write access to the queue directory; pick another with --dir or $ACKRING_SHM_DIR"
                       : "you need write access to the queue directory and the journal directory; pick others "
                         "with --dir and --journal-dir";
          break;
        case ErrorCode::resource_exhausted:
          // posix_fallocate: the queue directory's file system is full.
          advice = "the file system of the queue directory is full (in a container /dev/shm is small unless "
                   "given --shm-size); free space there, pick another --dir, or ask for a smaller queue "
                   "(--capacity, --max-message-size)";
          break;
        case ErrorCode::already_exists:
          // The queue file is not there, so what exists is the journal of an
          // earlier queue of this name (after a reboot, say).
          if (std::error_code ec; !fs::exists(Queue::resolve(o.name), ec)) {
            advice = "rebuild that queue with 'ackring recover " + o.name +
                     "', or, to start afresh, remove the journal directory named above";
            break;
          }
          advice = advice_for(e.code(), o.name);
          break;
        default:
          advice = advice_for(e.code(), o.name);
      }
      throw Failure(exit_code_of(e.code()), std::string(e.what()) + "; " + advice);
    }
  }();
  // All or nothing: a group that cannot be made takes the new queue with it.
  for (const auto& g : o.groups) {
    try {
      q.create_group(g);
    } catch (const Error& e) {
      (void)Queue::destroy(q.path().string());
      throw Failure(exit_code_of(e.code()), std::string(e.what()) + "; the queue was not created");
    }
  }
  if (owner && ::chown(q.path().c_str(), static_cast<uid_t>(-1), owner->gid) != 0) {
    const int err = errno;
    (void)Queue::destroy(q.path().string());
    throw Failure(err == EPERM || err == EACCES ? Exit::not_found : Exit::usage,
                  "cannot give queue '" + o.name + "' to group '" + owner->name + "': " + std::strerror(err) +
                      (err == EPERM ? " (only root, or the file's owner as a member of the group, may)" : "") +
                      "; the queue was not created");
  }
  const QueueOptions made = q.options();
  std::cout << "created queue '" << o.name << "' at " << q.path().string() << ": capacity " << made.capacity
            << ", max message size " << made.max_message_size << " B, lease " << made.default_lease.count()
            << " ms, max deliveries " << made.max_deliveries;
  if (!o.groups.empty()) {
    std::cout << ", groups:";
    for (const auto& g : o.groups) std::cout << ' ' << g;
  }
  if (owner) std::cout << ", mode " << octal_mode(made.mode) << ", group owner " << owner->name;
  std::cout << '\n';
  if (owner && (made.mode & 0060) != 0060)
    std::cerr << "ackring: note: mode " << octal_mode(made.mode) << " does not let group '" << owner->name
              << "' read and write the queue; create it with --mode 0660 for that\n";
  if (made.durability != Durability::none) {
    std::cout << "durability " << to_string(made.durability);
    if (made.durability == Durability::async)
      std::cout << " (a reboot loses at most the last " << made.async_flush_interval.count() << " ms)";
    std::cout << ", journal in " << journal_view(q.stats(), made).directory
              << "; it is written by any process that has the queue open (or by 'ackring journald " << o.name
              << "')\n";
  }
  return 0;
}

// ------------------------------------------------------------------- rm --

struct RmOptions {
  std::string name;
  bool force = false;
  bool dlq = false;
  bool journal = false;
};

// The journal directory of a durable queue, or empty (not durable, or the
// file cannot be read: rm --force of a damaged file).
fs::path journal_of(const std::string& name) {
  try {
    const Queue q = Queue::open(name);
    const JournalView j = journal_view(q.stats(), q.options());
    return j.durable ? fs::path(j.directory) : fs::path();
  } catch (const Error&) {
    return {};
  }
}

// Refuses while any live process is attached: producers and group members.
void check_not_in_use(const std::string& name) {
  const Queue q = open_queue(name);
  const QueueStats s = q.stats();
  std::vector<std::string> who;
  // A process that reads dead yet was active just now probably lives in
  // another pid namespace (stats_view.hpp): count it as attached too.
  const auto elsewhere = [](const auto& p) { return active_elsewhere(p) ? " (active elsewhere?)" : ""; };
  for (const auto& p : s.producers)
    if (p.alive || active_elsewhere(p)) who.push_back("producer pid " + std::to_string(p.pid) + elsewhere(p));
  for (const auto& g : s.groups)
    for (const auto& m : g.members)
      if (m.alive || active_elsewhere(m))
        who.push_back("group " + g.name + " member pid " + std::to_string(m.pid) + elsewhere(m));
  if (who.empty()) return;
  std::string list;
  for (std::size_t i = 0; i < who.size() && i < 4; ++i) list += (i ? ", " : "") + who[i];
  if (who.size() > 4) list += ", ...";
  throw Failure(Exit::busy, "queue '" + name + "' is in use by " + std::to_string(who.size()) + " live " +
                                (who.size() == 1 ? "process" : "processes") + " (" + list +
                                "); stop them first, or remove it anyway with 'ackring rm " + name +
                                " --force' (attached processes keep working on the unlinked file)");
}

int run_rm(const RmOptions& o) {
  // A file that cannot be opened (corrupt, other version) fails here with
  // advice to use --force, which skips the check.
  if (!o.force) check_not_in_use(o.name);
  const std::string path = Queue::resolve(o.name).string();
  const fs::path journal = journal_of(o.name);
  if (!Queue::destroy(o.name))
    throw Failure(Exit::not_found, "queue '" + o.name + "' not found (" + path + "); list queues with 'ackring ls'");
  std::cout << "removed queue '" << o.name << "' (" << path << ")\n";
  if (!journal.empty()) {
    std::error_code ec;
    if (!o.journal) {
      std::cout << "kept its journal in " << journal.string() << ": 'ackring recover " << o.name
                << "' rebuilds the queue from it; remove it with --journal to start afresh\n";
    } else if (fs::remove_all(journal, ec); ec) {
      throw Failure(Exit::usage, "the queue file was removed, but not its journal " + journal.string() + ": " +
                                     ec.message() + "; remove that directory by hand");
    } else {
      std::cout << "removed its journal " << journal.string() << '\n';
    }
  }
  const std::string dlq = dead_letter_queue_of(o.name);
  std::error_code ec;
  if (o.dlq) {
    if (Queue::destroy(dlq)) std::cout << "removed dead-letter queue '" << dlq << "'\n";
  } else if (fs::exists(Queue::resolve(dlq), ec)) {
    std::cout << "kept its dead-letter queue '" << dlq << "'; remove it with 'ackring rm " << dlq
              << "' (or use --dlq)\n";
  }
  return 0;
}

// ---------------------------------------------------------------- purge --

struct PurgeOptions {
  std::string name;
  std::string group;
};

int run_purge(const PurgeOptions& o) {
  Queue q = open_queue(o.name);
  std::uint64_t purged = 0;
  try {
    purged = q.purge(o.group);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::not_found) throw group_not_found(o.name, o.group);
    throw;
  }
  std::cout << "purged " << purged << (purged == 1 ? " message" : " messages") << " from "
            << (o.group.empty() ? "every group of '" + o.name + "'" : "group " + o.group) << '\n';
  return 0;
}

}  // namespace

void add_queue_commands(CLI::App& app, Globals& globals, Action& action) {
  {
    auto o = std::make_shared<LsOptions>();
    auto* cmd = app.add_subcommand("ls", "List the queues in the queue directory (files named ackring.*)");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->footer("Files that fail to open are listed with the reason in STATUS.");
    add_common_options(*cmd, globals);
    cmd->callback([o, &action] { set_action(action, [o] { return run_ls(*o); }); });
  }
  {
    auto o = std::make_shared<CreateOptions>();
    auto* cmd = app.add_subcommand("create", "Create a queue (fails if it exists)");
    cmd->add_option("NAME", o->name, "Queue name or path")->required();
    cmd->add_option("--capacity", o->queue.capacity, "Slots in the ring (a power of two)")->capture_default_str();
    cmd->add_option("--max-message-size", o->queue.max_message_size, "Largest payload in bytes")->capture_default_str();
    cmd->add_option("--lease", o->lease_ms, "Default lease in ms: unacked messages come back after it")
        ->type_name("MS")
        ->capture_default_str();
    cmd->add_option("--max-deliveries", o->queue.max_deliveries,
                    "Deliveries before a message goes to the dead-letter queue NAME.dlq (1..254)")
        ->capture_default_str();
    cmd->add_option("--max-groups", o->queue.max_groups, "Consumer groups (1..1024)")->capture_default_str();
    cmd->add_option("--max-members", o->queue.max_members, "Competing members per group (1..250)")
        ->capture_default_str();
    cmd->add_option("--max-producers", o->queue.max_producers, "Producers attached at once (1..65535)")
        ->capture_default_str();
    cmd->add_option("--claim-timeout", o->claim_timeout_ms,
                    "A live producer's claim still uncommitted this many ms after a consumer met it is aborted (a dead producer's at once)")
        ->type_name("MS")
        ->capture_default_str();
    cmd->add_option("--mode", o->mode, "Permission bits of the queue file (octal)")
        ->type_name("MODE")
        ->capture_default_str();
    cmd->add_option("--group", o->groups, "Create this consumer group too (repeatable)")->type_name("G");
    cmd->add_option("--group-owner", o->group_owner,
                    "Unix group (name or gid) to own the queue file, for users sharing it (with --mode 0660)")
        ->type_name("GROUP");
    cmd->add_flag("--no-dedup", o->no_dedup, "No dedup table (no idempotent publish or process-once)");
    cmd->add_option("--dedup-entries", o->queue.dedup_entries,
                    "Dedup table entries (a power of two >= 16; default max(1024, 2 x capacity))")
        ->type_name("N");
    cmd->add_option("--dedup-window", o->dedup_window_ms, "How long a publish key is remembered")
        ->type_name("MS")
        ->capture_default_str();
    cmd->add_option("--dedup-full", o->dedup_full,
                    "When a key's window is full of live keys: refuse the publish, or evict (the oldest key)")
        ->check(CLI::IsMember({"refuse", "evict", "evict-oldest"}))
        ->type_name("refuse|evict")
        ->capture_default_str();
    cmd->add_flag("--no-bloom", o->no_bloom,
                  "No bloom filter in front of the dedup table (saves 2 B/entry; only process-once lookups use it)");
    cmd->add_option("--publish-timestamp", o->publish_timestamp,
                    "Clock of each message's publish time: precise (ns; ~25 ns a publish) or coarse (the kernel "
                    "tick, 1-4 ms; ~5 ns)")
        ->check(CLI::IsMember({"precise", "coarse"}))
        ->type_name("precise|coarse")
        ->capture_default_str();
    cmd->add_option("--durability", o->durability,
                    "none: lost on reboot; async: journaled every --flush-interval; sync: publish returns once on disk")
        ->check(CLI::IsMember({"none", "async", "sync"}))
        ->type_name("none|async|sync")
        ->capture_default_str();
    cmd->add_option("--journal-dir", o->queue.journal_dir,
                    "Journal directory on a real file system (default $ACKRING_JOURNAL_DIR, else /var/tmp/ackring)")
        ->type_name("DIR");
    cmd->add_option("--flush-interval", o->flush_interval_ms,
                    "async: flush the journal every MS ms, the most a power cut can lose (1..60000; default 10)")
        ->type_name("MS")
        ->check(CLI::Range(1, 60'000));
    cmd->add_option("--retain-mib", o->retain_mib,
                    "Keep the newest MIB MiB of journal segments every group has consumed, for 'group rewind'")
        ->type_name("MIB")
        ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 32));
    cmd->add_option("--retain-age", o->retain_s,
                    "Keep consumed journal segments written in the last S seconds, for 'group rewind'")
        ->type_name("S")
        ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{UINT32_MAX}));
    add_common_options(*cmd, globals);
    cmd->footer(
        "A durable queue (async, sync) keeps a write-ahead journal in <journal dir>/ackring.NAME/; after a\n"
        "reboot, 'ackring recover NAME' rebuilds it. Its journal is written by whichever process that has the\n"
        "queue open holds the journal lock, or by 'ackring journald NAME'.");
    cmd->callback([o, &action] { set_action(action, [o] { return run_create(*o); }); });
  }
  {
    auto o = std::make_shared<RmOptions>();
    auto* cmd = app.add_subcommand("rm", "Remove a queue (refused while live processes are attached)");
    cmd->add_option("NAME", o->name, "Queue name or path")->required();
    cmd->add_flag("--force", o->force,
                  "Remove even if processes are attached or the file cannot be opened (corrupt, other version)");
    cmd->add_flag("--dlq", o->dlq, "Also remove the dead-letter queue NAME.dlq");
    cmd->add_flag("--journal", o->journal,
                  "Also remove the journal of a durable queue (without it, 'ackring recover' can rebuild the queue)");
    cmd->footer("Exit 4 (busy) when producers or group members are alive, unless --force.");
    add_common_options(*cmd, globals);
    cmd->callback([o, &action] { set_action(action, [o] { return run_rm(*o); }); });
  }
  {
    auto o = std::make_shared<PurgeOptions>();
    auto* cmd = app.add_subcommand("purge", "Settle every pending message as acked (one group, or all)");
    cmd->add_option("NAME", o->name, "Queue name or path")->required();
    cmd->add_option("--group", o->group, "Purge only this group (default: every group)")->type_name("G");
    cmd->footer("Leases held on purged messages are lost: their acks will fail.");
    add_common_options(*cmd, globals);
    cmd->callback([o, &action] { set_action(action, [o] { return run_purge(*o); }); });
  }
}

}  // namespace ackring::cli
