// Queue: a move-only owner of one mapped queue file. Create, open and destroy
// are the cold path and throw ackring::Error with the file, operation and
// reason; producers and consumers made from it are the hot path.
//
// A queue is named by a name (file /dev/shm/ackring.<name>, or under
// $ACKRING_SHM_DIR when set) or by a path (anything containing '/').
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ackring/consumer.hpp"
#include "ackring/journal.hpp"
#include "ackring/options.hpp"
#include "ackring/producer.hpp"
#include "ackring/stats.hpp"

namespace ackring {

namespace detail { struct QueueState; }

// A message read without taking it (Queue::peek).
struct PeekedMessage {
  std::uint64_t seq = 0;
  std::uint64_t publish_time_ns = 0;
  std::vector<std::byte> payload;
};

// Result of Queue::verify: a consistency check of the whole file.
struct VerifyReport {
  std::uint64_t slots_checked = 0;
  std::uint64_t corrupt_slots = 0;       // committed slots whose length or checksum fails
  std::uint64_t dead_claims = 0;         // slots claimed by a process that is gone
  std::vector<std::string> problems;     // one line each, empty when healthy
  // Durable queues: the journal was read and verified as well.
  bool journal_checked = false;
  JournalEnd journal_end = JournalEnd::empty;  // clean, torn_tail, corrupt, empty, or unreadable
  std::uint64_t journal_records = 0;
  [[nodiscard]] bool healthy() const noexcept { return problems.empty(); }
};

// Progress of a long operation: `done` of `total` units (seqs) so far.
using ProgressFn = std::function<void(std::uint64_t done, std::uint64_t total)>;

// How Queue::recover rebuilds a queue.
struct RecoverOptions {
  // Where the journal is (empty: $ACKRING_JOURNAL_DIR, else /var/tmp/ackring).
  std::filesystem::path journal_dir{};
  // The queue's options. Empty: the options the journal recorded when the
  // queue was created (its QUEUE file); set: these, e.g. a larger capacity.
  std::optional<QueueOptions> options{};
  ProgressFn progress{};
};

// Result of Queue::recover: what the journal held and what was rebuilt.
struct RecoveryReport {
  JournalEnd journal_end = JournalEnd::clean;  // or torn_tail (a crash cut the last batch; nothing acknowledged lost)
  std::string journal_message;        // the reader's account of a torn tail, or empty
  std::uint64_t journal_first_seq = 0;
  std::uint64_t journal_next_seq = 0; // the rebuilt queue's tail
  std::uint64_t floor = 0;            // lowest group floor: messages from here on were restored
  std::uint64_t messages = 0;         // messages restored into slots
  std::uint64_t skipped = 0;          // seqs restored as aborted slots (skip records)
  std::vector<std::string> groups;    // groups restored from the last checkpoint
  bool options_from_journal = false;  // the journal's QUEUE file gave the options
  std::uint64_t dedup_keys = 0;       // keys put back into the dedup table (still inside the window)
  std::uint64_t replays_dropped = 0;  // replay copies for groups the journal no longer has
  bool dead_letters_recovered = false;  // <name>.dlq was rebuilt from its journal too
  std::string dead_letters_problem;     // ... or why it could not be (the queue itself was)
};

// How Queue::rewind_group replays.
struct RewindOptions {
  ProgressFn progress{};
  // Longest wait for room in the ring while replaying (the group, and every
  // other group, must consume to make room). Timeout: Error(timeout), with
  // what was replayed so far in the message.
  std::chrono::milliseconds room_timeout{60'000};
};

// Result of Queue::rewind_group.
struct RewindReport {
  std::uint64_t from_seq = 0;    // first seq replayed (the request, raised to the journal's start)
  std::uint64_t until_seq = 0;   // replayed up to here (exclusive): the tail when the rewind began
  std::uint64_t replayed = 0;    // messages published again for the group
  std::uint64_t first_replay_seq = 0;  // seq of the first replayed copy (when replayed > 0)
};

// Whether queues this process opens or creates from now on run a journal
// writer thread (default on; $ACKRING_JOURNAL_WRITER=0 turns it off at
// start-up). Off suits producers of a deployment where `ackring journald`
// writes the journal as its own process; a durable queue then needs some
// process with the writer on, or sync publishes wait.
void set_journal_writer_enabled(bool enabled) noexcept;

class Queue {
 public:
  // Builds the file under a temporary name and links it into place, so no
  // process ever maps a half-initialised queue. Throws already_exists.
  static Queue create(std::string_view name_or_path, const QueueOptions& options = {});
  // Maps an existing queue after validating magic, version, layout and header
  // checksum. Throws not_found, incompatible or corrupt.
  static Queue open(std::string_view name_or_path);
  // Opens the queue, or creates it with `options` if it does not exist.
  static Queue open_or_create(std::string_view name_or_path, const QueueOptions& options = {});
  // Rebuilds a queue whose file is gone (e.g. after a reboot) from its
  // journal <journal_dir>/<queue file name>/ (journal_dir empty: the default,
  // see QueueOptions::journal_dir), with the options the journal recorded at
  // creation unless others are given (durability none is taken as sync).
  // Keys of messages still inside the dedup window go back into the dedup
  // table, so a retried keyed publish stays a duplicate. Groups come back from the last checkpoint with their floors, and
  // every journaled message at or above the lowest floor comes back at its
  // own seq (acked after that checkpoint: delivered once more). Throws
  // already_exists if the file exists, not_found without a journal, corrupt
  // for a damaged journal, resource_exhausted if the messages above the floor
  // do not fit `capacity` or the groups do not fit `max_groups`.
  static Queue recover(std::string_view name_or_path, const RecoverOptions& options = {},
                       RecoveryReport* report = nullptr);
  // Unlinks the queue file. Processes that have it mapped keep working on
  // their mapping. Returns false if there was no such queue.
  static bool destroy(std::string_view name_or_path);
  // The file a name or path refers to; throws invalid_argument for a bad name.
  static std::filesystem::path resolve(std::string_view name_or_path);

  Queue(Queue&&) noexcept;
  Queue& operator=(Queue&&) noexcept;
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;
  ~Queue();

  // Registers a producer (pid + start time, for liveness and stats).
  [[nodiscard]] Producer producer();
  // Joins `group` as a competing member; creates the group if asked to.
  [[nodiscard]] Consumer consumer(std::string_view group, const ConsumerOptions& options = {});

  // Group management. create_group throws already_exists; remove_group
  // returns false if there was no such group.
  void create_group(std::string_view group, const GroupOptions& options = {});
  bool remove_group(std::string_view group);
  // Changes a group's redelivery back-off (GroupOptions::redelivery); its
  // members apply it from the next message that comes back. It lives in the
  // queue file, not in the journal: set it again after a recovery. Throws
  // not_found for a bad group, invalid_argument for a bad policy.
  void set_redelivery(std::string_view group, const RedeliveryPolicy& policy);
  [[nodiscard]] std::vector<std::string> group_names() const;

  // Replay (like a Kafka offset reset, for a queue with a journal): every
  // journaled message from `from_seq` up to the current tail is published
  // again, in its original order, as a copy addressed to `group` only (other
  // groups settle such copies without delivering them). The group keeps its
  // place: what it had not consumed yet is still delivered, once as the
  // original and once as the copy. Copies keep the original publish time
  // and key (so process_once skips a copy whose key or original seq was
  // processed within the dedup window); Delivery::replayed() is true for
  // them. Blocks while the ring is full; runs in the calling process (a
  // crash mid-way leaves a partial replay: run it again, at-least-once).
  // Throws invalid_argument without a journal or if from_seq is past the
  // tail, not_found for a bad group, corrupt if the journal is damaged
  // before the tail, timeout if there is no room for room_timeout.
  RewindReport rewind_group(std::string_view group, std::uint64_t from_seq, const RewindOptions& options = {});
  // The same from the first message published at or after `since`.
  RewindReport rewind_group(std::string_view group, std::chrono::system_clock::time_point since,
                            const RewindOptions& options = {});

  [[nodiscard]] QueueStats stats() const;

  // Copies up to `max` committed messages with seq >= `from` that are still
  // in the ring, oldest first, without taking or changing anything. A message
  // overwritten while being copied, or failing its checksum, is left out.
  [[nodiscard]] std::vector<PeekedMessage> peek(std::uint64_t from, std::size_t max) const;
  // Settles every message not yet settled in `group` (every group when empty)
  // as acked: the group jumps to the tail. Leases held on them are lost.
  // Returns how many messages were purged; throws not_found for a bad group.
  std::uint64_t purge(std::string_view group = {});
  // Checks every slot, group and member for consistency. Reads only.
  [[nodiscard]] VerifyReport verify() const;
  [[nodiscard]] QueueOptions options() const;
  [[nodiscard]] const std::filesystem::path& path() const noexcept;

 private:
  explicit Queue(std::shared_ptr<detail::QueueState> state) noexcept;
  std::shared_ptr<detail::QueueState> state_;
};

}  // namespace ackring
