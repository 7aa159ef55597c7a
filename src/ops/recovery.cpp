// Queue::recover: rebuilding a queue file from its journal (docs/journal.md,
// "Integration" / "Recovery of a queue").
//
// Two passes over the journal: the first learns the groups (last checkpoint,
// creates and removes after it) and where the log ends; the second writes
// every message at or above the lowest group floor into its slot, at its own
// seq, as committed (checksum recomputed), every skip as an aborted slot, and
// the keys of messages still inside the dedup window into the dedup table.
// All of it happens while the new file is still under its temporary name
// (create_file's before_link), so no process maps a half-rebuilt queue.
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ackring/error.hpp"
#include "ackring/queue.hpp"
#include "shm/clock.hpp"
#include "dedup/dedup.hpp"
#include "queue/durability.hpp"
#include "queue/journal_meta.hpp"
#include "journal/journal_reader.hpp"
#include "journal/journal_records.hpp"
#include "queue/queue_file.hpp"
#include "shm/queue_state.hpp"

namespace ackring {

using namespace detail;

namespace {

constexpr std::uint64_t kProgressEvery = 4096;  // records between progress reports

// The options to rebuild with: the caller's, else the journal's QUEUE file.
QueueOptions recovery_options(const RecoverOptions& ro, const std::filesystem::path& jdir, const std::string& op,
                              RecoveryReport& rep, std::uint64_t& ring_capacity) {
  std::string problem;
  const auto recorded = read_queue_meta(jdir, &problem);
  // The ring the journal was written from (see the floor clamp below).
  ring_capacity = recorded ? recorded->capacity : ro.options ? ro.options->capacity : 0;
  if (ro.options) return *ro.options;
  if (!recorded)
    throw Error(ErrorCode::invalid_argument,
                op + ": " + (problem.empty() ? "the journal has no QUEUE file (written by an ackring older than 0.2?)"
                                             : problem) +
                    "; pass the queue's options to recover it (RecoverOptions::options, or ackring recover --capacity ...)");
  rep.options_from_journal = true;
  return *recorded;
}

// Puts a journaled key back into the dedup table with its age, if it is
// still inside the window. The table keeps coarse monotonic ms, which restart
// at boot, so the age comes from the wall clock of the publish.
bool restore_key(DedupTable& table, const QueueState& q, const JournalKey& key, std::uint64_t seq,
                 std::uint64_t publish_time_ns, std::uint64_t wall_now_ns, std::uint64_t mono_now_ms) {
  const std::uint64_t age_ms = wall_now_ns > publish_time_ns ? (wall_now_ns - publish_time_ns) / 1'000'000 : 0;
  if (age_ms >= q.layout.dedup_window_ms) return false;
  const std::uint64_t stamp = mono_now_ms > age_ms ? mono_now_ms - age_ms : 0;
  return table.insert(Fingerprint{key.lo, key.hi}, seq, stamp);
}

// What pass 1 learned: the extent of the log and the groups to restore.
struct RecoveryPlan {
  std::uint64_t queue_id = 0;  // the journal's, kept by the rebuilt queue
  std::uint64_t first = 0;     // seq of the journal's first record
  std::uint64_t end = 0;       // seq after its last record: the rebuilt queue's tail
  std::uint64_t floor = 0;     // lowest group floor: slots from here on are restored
  std::vector<JournalGroupState> groups;    // floors raised and clamped, next = floor
  std::vector<std::uint64_t> group_hashes;  // journal_group_hash of each name (replay targets)
};

// Pass 1: groups and the extent of the log.
RecoveryPlan plan_recovery(const std::filesystem::path& jdir, const std::string& op, std::uint64_t ring_capacity,
                           RecoveryReport& rep) {
  JournalGroupTable table;
  const JournalScanResult scan = JournalReader::read(jdir, {}, [&](const JournalRecordView& r) { table.apply(r); });
  if (scan.end == JournalEnd::corrupt)
    throw Error(ErrorCode::corrupt, op + ": " + scan.message +
                                        " (to accept the loss, move the damaged segment and those after it away)");
  if (scan.end == JournalEnd::empty)
    throw Error(ErrorCode::not_found, op + ": the journal in '" + jdir.string() + "' holds no records");
  RecoveryPlan plan{scan.queue_id, scan.first_seq, scan.next_seq, scan.next_seq, table.groups(), {}};
  // Checkpoints are up to a second old, and a busy queue moves many rings in
  // a second. But the ring never holds more than its capacity unsettled:
  // producers claim below floor + capacity only, so when seq end - 1 was
  // claimed, every group had settled everything below end - capacity. A
  // floor is raised to that (the at-least-once window is the smaller of
  // the checkpoint's age and one ring).
  const std::uint64_t settled_below = plan.end > ring_capacity ? plan.end - ring_capacity : 0;
  for (auto& g : plan.groups) {
    // Retention may have removed records below a floor a group was created
    // at later; a floor past the journal's end (async) has nothing to restore.
    g.floor = std::clamp(std::max(g.floor, settled_below), plan.first, plan.end);
    g.next = g.floor;  // everything unacked is delivered again (at-least-once)
    plan.floor = std::min(plan.floor, g.floor);
    plan.group_hashes.push_back(journal_group_hash(g.name));
  }
  rep.journal_end = scan.end;
  rep.journal_message = scan.message;
  rep.journal_first_seq = plan.first;
  rep.journal_next_seq = plan.end;
  rep.floor = plan.floor;
  return plan;
}

// Pass 2, run by create_file's before_link: fills the new file, still under
// its temporary name, from the plan and the journal's records.
class QueueRebuild {
 public:
  QueueRebuild(QueueState& q, const RecoveryPlan& plan, const std::string& op, RecoveryReport& rep)
      : q_(q), plan_(plan), op_(op), rep_(rep), dedup_(q) {}

  void run(const std::filesystem::path& jdir, const ProgressFn& progress) {
    restore_groups();
    // Slots [floor, end) from the journal; the rest free for their next seq.
    for (std::uint64_t s = plan_.floor; s < plan_.floor + q_.layout.capacity; ++s)
      q_.slot(s).state.store(SlotWord{s, s < plan_.end ? SlotState::aborted : SlotState::free}.encode(),
                             std::memory_order_relaxed);
    wall_now_ = realtime_ns();
    mono_now_ = coarse_monotonic_ms();
    std::uint64_t visited = 0;
    const std::uint64_t total = plan_.end - std::min(plan_.end, plan_.first);
    const JournalScanResult again = JournalReader::read(jdir, {}, [&](const JournalRecordView& r) {
      if (progress && ++visited % kProgressEvery == 0) progress(r.seq - plan_.first, total);
      if (r.type == JournalRecordType::message) restore_message(r);
      else if (r.type == JournalRecordType::skip) count_skip(r);
    });
    if (again.next_seq != plan_.end || again.end == JournalEnd::corrupt)
      throw Error(ErrorCode::corrupt, op_ + ": the journal changed while it was read (a writer running?)");
    if (progress) progress(total, total);
    auto& h = q_.header();
    h.tail.store(plan_.end, std::memory_order_relaxed);
    h.durable_seq.store(plan_.end, std::memory_order_relaxed);
    h.floor_word.store(make_floor_word(plan_.floor, 0), std::memory_order_relaxed);
    h.group_epoch.store(1, std::memory_order_relaxed);
  }

 private:
  // Groups, as of the journal. Relaxed stores: no other process can map the
  // file before create_file links it into place.
  void restore_groups() {
    for (std::uint32_t i = 0; i < plan_.groups.size(); ++i) {
      const auto& g = plan_.groups[i];
      GroupEntry& G = q_.group(i);
      std::memset(G.name, 0, sizeof G.name);
      std::memcpy(G.name, g.name.data(), std::min(g.name.size(), kGroupNameMax));
      G.overflow = g.overflow;
      G.next.store(g.next, std::memory_order_relaxed);
      G.floor.store(g.floor, std::memory_order_relaxed);
      G.deadline_hint_ms.store(~0ull, std::memory_order_relaxed);
      G.incarnation.store(1, std::memory_order_relaxed);
      G.state.store(static_cast<std::uint32_t>(GroupState::active), std::memory_order_relaxed);
      rep_.groups.push_back(g.name);
    }
  }

  void restore_message(const JournalRecordView& r) {
    JournalMessageView m;
    if (!decode_message(r.payload, r.flags, m))
      throw Error(ErrorCode::corrupt, op_ + ": the message at seq " + std::to_string(r.seq) + " does not decode");
    // Keys of every journaled message inside the window, acked or not:
    // the window is about time, not about presence in the queue.
    if (m.has_key && !m.replay && dedup_.enabled() &&
        restore_key(dedup_, q_, m.key, r.seq, m.publish_time_ns, wall_now_, mono_now_))
      ++rep_.dedup_keys;
    if (r.seq < plan_.floor || r.seq >= plan_.end) return;
    if (m.body.size() > q_.layout.max_message_size)
      throw Error(ErrorCode::resource_exhausted, op_ + ": the message at seq " + std::to_string(r.seq) +
                                                     " is larger than max_message_size " +
                                                     std::to_string(q_.layout.max_message_size));
    std::uint32_t flags = m.has_key ? kSlotHasKey : 0u;
    if (m.replay) {
      const auto& hashes = plan_.group_hashes;
      const auto it = std::find(hashes.begin(), hashes.end(), m.target_group_hash);
      if (it == hashes.end()) {
        ++rep_.replays_dropped;  // its group is gone: the slot stays aborted
        return;
      }
      flags |= replay_slot_flags(static_cast<std::uint32_t>(it - hashes.begin()), 1);
    }
    SlotHeader& slot = q_.slot(r.seq);
    write_fields(slot, {static_cast<std::uint32_t>(m.body.size()), flags, XXH3_64bits(m.body.data(), m.body.size()),
                        m.key.lo, m.key.hi, m.publish_time_ns});
    if (!m.body.empty()) std::memcpy(q_.payload(r.seq), m.body.data(), m.body.size());
    slot.state.store(SlotWord{r.seq, SlotState::committed}.encode(), std::memory_order_relaxed);
    ++rep_.messages;
  }

  // A skip's seqs stay aborted slots; only those inside [floor, end) count.
  void count_skip(const JournalRecordView& r) {
    std::uint64_t count = 0;
    if (decode_skip(r.payload, count))
      for (std::uint64_t s = std::max(r.seq, plan_.floor); s < r.seq + count && s < plan_.end; ++s) ++rep_.skipped;
  }

  QueueState& q_;
  const RecoveryPlan& plan_;
  const std::string& op_;
  RecoveryReport& rep_;
  DedupTable dedup_;
  std::uint64_t wall_now_ = 0;  // when the records pass began: the ages of restored keys
  std::uint64_t mono_now_ = 0;
};

// A durable queue's dead letters have a journal of their own: bring them
// back too. A failure is reported, not thrown: the queue itself is back.
void recover_dead_letters(const std::filesystem::path& path, const std::string& base_dir, RecoveryReport& rep) {
  const std::string file = path.filename().string();
  const bool is_dead_letter_queue = file.size() > 4 && file.substr(file.size() - 4) == ".dlq";
  const std::filesystem::path dlq_path = path.string() + ".dlq";
  std::error_code ec;
  if (is_dead_letter_queue || std::filesystem::exists(dlq_path, ec) ||
      !journal_has_segments(std::filesystem::path(base_dir) / dlq_path.filename()))
    return;
  RecoverOptions dro;
  dro.journal_dir = base_dir;
  try {
    (void)Queue::recover(dlq_path.string(), dro, nullptr);
    rep.dead_letters_recovered = true;
  } catch (const Error& e) {
    rep.dead_letters_problem = e.what();
  }
}

}  // namespace

Queue Queue::recover(std::string_view name_or_path, const RecoverOptions& ro, RecoveryReport* report) {
  const auto path = resolve_path(name_or_path);
  const std::string op = "recover queue '" + path.string() + "'";
  std::error_code ec;
  if (std::filesystem::exists(path, ec))
    throw Error(ErrorCode::already_exists, op + ": the queue file exists; recovery only rebuilds a missing queue");
  const std::string base_dir = resolve_journal_dir(ro.journal_dir.string());
  const std::filesystem::path jdir = std::filesystem::path(base_dir) / path.filename();
  if (!journal_has_segments(jdir))
    throw Error(ErrorCode::not_found, op + ": no journal in '" + jdir.string() + "'");

  RecoveryReport rep;
  std::uint64_t ring_capacity = 0;
  QueueOptions o = recovery_options(ro, jdir, op, rep, ring_capacity);
  const RecoveryPlan plan = plan_recovery(jdir, op, ring_capacity, rep);
  if (o.durability == Durability::none) o.durability = Durability::sync;
  o.journal_dir = base_dir;
  if (plan.end - plan.floor > o.capacity)
    throw Error(ErrorCode::resource_exhausted,
                op + ": the journal holds " + std::to_string(plan.end - plan.floor) +
                    " seqs above the lowest group floor " + std::to_string(plan.floor) + ", more than the capacity " +
                    std::to_string(o.capacity) + "; recover with a larger capacity");
  if (plan.groups.size() > o.max_groups)
    throw Error(ErrorCode::resource_exhausted, op + ": the journal has " + std::to_string(plan.groups.size()) +
                                                   " groups, more than max_groups " + std::to_string(o.max_groups));

  CreateExtras extras;
  extras.journal_id = plan.queue_id;
  extras.recovering = true;
  extras.before_link = [&](QueueState& q) { QueueRebuild(q, plan, op, rep).run(jdir, ro.progress); };
  auto state = create_file(path, o, extras);
  // The QUEUE file names the options of the queue as it is now (a recovery
  // with a larger capacity changes them).
  write_queue_meta(jdir, make_queue_meta(state->layout, static_cast<std::uint32_t>(o.mode)));
  state.reset();

  recover_dead_letters(path, base_dir, rep);
  if (report != nullptr) *report = std::move(rep);
  return Queue::open(path.string());
}

}  // namespace ackring
