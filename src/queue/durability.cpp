// The journal thread of a durable queue; see durability.hpp and
// docs/journal.md ("Integration").
#include "queue/durability.hpp"

#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "ackring/error.hpp"
#include "shm/clock.hpp"
#include "shm/cpu_relax.hpp"
#include "shm/failpoint.hpp"
#include "queue/group.hpp"
#include "queue/journal_meta.hpp"
#include "journal/journal_writer.hpp"
#include "shm/liveness.hpp"
#include "shm/wait.hpp"

namespace ackring::detail {

namespace {

std::atomic<bool> g_threads_enabled{true};

// $ACKRING_JOURNAL_WRITER=0 (or "off"/"false") turns the writer off for the
// whole process: read once, the first time a durable queue is mapped.
bool writer_enabled_by_environment() {
  static const bool enabled = [] {
    const char* v = std::getenv("ACKRING_JOURNAL_WRITER");
    if (v == nullptr) return true;
    const std::string s(v);
    return !(s == "0" || s == "off" || s == "false" || s == "no");
  }();
  return enabled;
}

// Sync, the journal thread idle: it spins this long for the next commit
// before it sleeps on the commit futex (spin_for_commit), unless a sync
// publisher of its own process tried to lead a flush within kLocalLeadQuietNs.
// $ACKRING_JOURNAL_SPIN_US sets the spin (0: none), read once per process.
constexpr std::uint64_t kDefaultHolderSpinNs = 250'000;
constexpr std::uint64_t kLocalLeadQuietNs = 10'000'000;
// The journal thread's spin budget: set_journal_spin_ns, else
// $ACKRING_JOURNAL_SPIN_US, else kDefaultHolderSpinNs. UINT64_MAX: not read yet.
std::atomic<std::uint64_t> g_holder_spin_ns{UINT64_MAX};

std::uint64_t holder_spin_ns() noexcept {
  // relaxed: a setting; whichever value a racing first read settles on is valid.
  std::uint64_t ns = g_holder_spin_ns.load(std::memory_order_relaxed);
  if (ns != UINT64_MAX) return ns;
  ns = kDefaultHolderSpinNs;
  if (const char* v = std::getenv("ACKRING_JOURNAL_SPIN_US"); v != nullptr && *v != '\0') {
    char* end = nullptr;
    const unsigned long long us = std::strtoull(v, &end, 10);
    // Up to 1 s: a larger value is a typo. A bad value keeps the default, and says so once.
    if (*end == '\0' && us <= 1'000'000) ns = us * 1000;
    else
      std::fprintf(stderr, "ackring: ignoring ACKRING_JOURNAL_SPIN_US=%s (want 0..1000000 µs); spinning %llu µs\n", v,
                   static_cast<unsigned long long>(kDefaultHolderSpinNs / 1000));
  }
  std::uint64_t unset = UINT64_MAX;
  g_holder_spin_ns.compare_exchange_strong(unset, ns, std::memory_order_relaxed);
  return g_holder_spin_ns.load(std::memory_order_relaxed);
}

constexpr std::uint64_t kRetryLockNs = 100'000'000;      // non-holders try the journal lock this often
constexpr std::uint64_t kRetryAfterErrorNs = 1'000'000'000;  // after an error (writer released), the wait before trying again
constexpr std::uint64_t kCheckpointEveryMs = 1000;
constexpr std::uint64_t kIdleWaitNs = 5'000'000;   // sync: longest sleep between looks at the ring
constexpr std::size_t kMaxBatchRecords = 65536;     // records appended before a flush, at most
constexpr std::size_t kMaxBatchBytes = 1u << 20;

// Segments of about two rings' worth of records, 1 .. 64 MiB: retention
// deletes whole segments, so a segment much larger than what the ring can
// hold unsettled would keep settled records long, and readers (recovery,
// takeover) read whole segments.
std::uint64_t segment_size_for(const Layout& l) noexcept {
  const std::uint64_t ring = std::uint64_t{l.capacity} * (std::uint64_t{l.max_message_size} + 64);
  const std::uint64_t want = (2 * ring + 4095) / 4096 * 4096;
  return std::clamp<std::uint64_t>(want, 1ull << 20, kJournalDefaultSegmentSize);
}

}  // namespace

// ---- hot-path hook -------------------------------------------------------------

// DurabilityAgent::lead_flush (the agent is defined below).
bool lead_flush(DurabilityAgent& agent, std::uint64_t seq) noexcept;

Status wait_durable(const QueueState& q, std::uint64_t seq, std::uint64_t deadline_ns) noexcept {
  if (q.layout.durability != kDurabilitySync) return Status::ok;
  auto& h = q.header();
  if (q.durability) {
    if (lead_flush(*q.durability, seq)) return Status::ok;
    // The commit wake the producer left to us (commit_wake_deferred).
    wake_waiters(h.commit_futex, h.commit_waiters);
  }
  // acquire: pairs with publish_durable's CAS.
  for (int i = 0; i < 256; ++i) {
    if (h.durable_seq.load(std::memory_order_acquire) > seq) return Status::ok;
    cpu_relax();
  }
  for (;;) {
    const std::uint64_t now = monotonic_ns();
    // acquire: as the spin above (pairs with publish_durable's CAS); a last look at the value only.
    if (now >= deadline_ns) return h.durable_seq.load(std::memory_order_acquire) > seq ? Status::ok : Status::timeout;
    // seq_cst: the waiting side of wait.hpp; pairs with publish_durable's seq_cst CAS and waiter load.
    h.durable_waiters.fetch_add(1, std::memory_order_seq_cst);
    // Armed, or publish_durable's wake_waiters skips the syscall (it wakes
    // only armed words) and we would sleep the whole 100 ms.
    const std::uint32_t seen = arm(h.durable_futex);
    const bool done = h.durable_seq.load(std::memory_order_seq_cst) > seq;
    if (!done) futex_wait(h.durable_futex, seen, std::min<std::uint64_t>(deadline_ns - now, 100'000'000));
    // seq_cst: the last step of wait.hpp (all steps seq_cst); a late decrement only costs a waker a syscall.
    h.durable_waiters.fetch_sub(1, std::memory_order_seq_cst);
    if (done) return Status::ok;
  }
}

void publish_durable(const QueueState& q, std::uint64_t end) noexcept {
  auto& h = q.header();
  // acquire: pairs with an earlier publish_durable's CAS; only the start of the CAS-max loop below.
  std::uint64_t cur = h.durable_seq.load(std::memory_order_acquire);
  bool raised = false;
  while (cur < end) {
    // seq_cst (release part): publishes nothing but the value; seq_cst orders it
    // before the waiter loads in wake_waiters (wait.hpp protocol).
    if (h.durable_seq.compare_exchange_weak(cur, end, std::memory_order_seq_cst, std::memory_order_acquire)) {
      raised = true;
      break;
    }
  }
  if (!raised) return;
  wake_waiters(h.durable_futex, h.durable_waiters);
  // Producers that wait for space: the floor they see includes durable_seq.
  wake_waiters(h.space_futex, h.space_waiters);
  // Consumers bounded by durable_seq (sync) sleep on the commit futex.
  if (q.layout.durability == kDurabilitySync) wake_waiters(h.commit_futex, h.commit_waiters);
}

// ---- cold path -----------------------------------------------------------------

std::string resolve_journal_dir(const std::string& configured) {
  if (!configured.empty()) return configured;
  if (const char* d = std::getenv("ACKRING_JOURNAL_DIR"); d != nullptr && *d != '\0') return d;
  return "/var/tmp/ackring";
}

std::uint64_t make_journal_id(std::string_view file_name, std::uint64_t created_ns) noexcept {
  std::string buf(file_name);
  buf.append(reinterpret_cast<const char*>(&created_ns), sizeof created_ns);
  const std::uint64_t id = XXH3_64bits(buf.data(), buf.size());
  return id != 0 ? id : 1;
}

bool journal_has_segments(const std::filesystem::path& dir) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::uint64_t first = 0, index = 0;
    if (parse_journal_segment_name(it->path().filename().string(), first, index)) return true;
  }
  return false;
}

std::string journal_root(const QueueState& q) {
  if (q.layout.durability == kDurabilityNone) return {};
  return {reinterpret_cast<const char*>(q.base + kJournalDirOffset), q.layout.journal_dir_len};
}

std::filesystem::path journal_directory(const QueueState& q) {
  const std::string root = journal_root(q);
  if (root.empty()) return {};
  return std::filesystem::path(root) / q.path.filename();
}

void set_durability_threads_enabled(bool enabled) noexcept { g_threads_enabled.store(enabled); }
// relaxed: a setting (holder_spin_ns).
void set_journal_spin_ns(std::uint64_t ns) noexcept { g_holder_spin_ns.store(ns, std::memory_order_relaxed); }

}  // namespace ackring::detail

namespace ackring {
void set_journal_writer_enabled(bool enabled) noexcept { detail::set_durability_threads_enabled(enabled); }
}  // namespace ackring

namespace ackring::detail {

// ---- the journal thread --------------------------------------------------------

struct DurabilityAgent {
  const QueueState& q;
  std::filesystem::path dir;
  std::mutex mutex;
  std::condition_variable cv;
  bool stop = false;                    // under mutex
  std::atomic<bool> stopping{false};    // read without the mutex in the loop
  std::thread thread;

  // The writer and every field below it belong to whoever holds writer_mutex:
  // the journal thread for a round, or (sync mode) a publishing thread of
  // this process that flushes its own message (lead_flush). Never held while
  // sleeping, so a publisher finds it free unless a flush is under way.
  std::mutex writer_mutex;
  // The process that started the agent: a child forked from it inherits a
  // copy of the agent (and the writer's lock and files) but not its thread,
  // and must never write that journal beside its parent.
  const pid_t owner_pid = ::getpid();
  std::unique_ptr<JournalWriter> writer;
  std::uint32_t checkpoint_epoch = ~0u;
  std::uint64_t last_checkpoint_ms = 0;
  std::uint64_t last_flush_ns = 0;
  std::optional<std::uint64_t> pending_retention;  // floor of a checkpoint staged but not yet flushed
  std::string last_error;
  std::vector<JournalGroupState> last_groups;  // as of the last checkpoint written
  // Sync: the journal thread's spin before it sleeps (spin_for_commit).
  std::uint64_t last_idle_ns = 0;   // journal thread only: how long its last idle spell lasted
  std::uint64_t producers_counted_ns = 0;  // journal thread only: when lone_producer last counted
  bool lone_producer_cached = false;       // journal thread only: its answer then
  std::atomic<std::uint64_t> last_local_publish_ns{0};  // when a sync publish of this process last tried to lead
  bool meta_written = false;                   // the QUEUE file was checked once by this agent

  DurabilityAgent(const QueueState& state, std::filesystem::path d) : q(state), dir(std::move(d)) {}

  void report(const std::string& what) {
    if (what == last_error) return;  // once per distinct problem
    last_error = what;
    std::fprintf(stderr, "ackring: journal of '%s' (%s): %s\n", q.path.c_str(), dir.c_str(), what.c_str());
  }

  void acquire() {
    auto& h = q.header();
    JournalOptions o;
    o.queue_id = q.layout.journal_id;
    // acquire: pairs with a previous writer's publish_durable CAS; the journal must reach at least this seq.
    o.first_seq = h.durable_seq.load(std::memory_order_acquire);
    o.segment_size = segment_size_for(q.layout);
    o.keep_bytes = std::uint64_t{q.layout.journal_retain_mib} << 20;
    o.keep_age = std::chrono::seconds(q.layout.journal_retain_s);
    writer = JournalWriter::try_acquire(dir, o);
    if (!writer) return;
    if (!meta_written) {
      // Recovery after a reboot reads the queue's options from here.
      struct stat st{};
      const std::uint32_t mode = ::stat(q.path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0600;
      write_queue_meta(dir, make_queue_meta(q.layout, mode));
      meta_written = true;
    }
    // acquire: pairs with publish_durable's CAS; checked against where the journal we locked ends.
    const std::uint64_t durable = h.durable_seq.load(std::memory_order_acquire);
    if (writer->next_seq() < durable) {
      const std::string why = "the journal ends at seq " + std::to_string(writer->next_seq()) +
                              " but the queue says seqs below " + std::to_string(durable) +
                              " are durable (journal files removed?); not continuing it";
      writer.reset();
      throw Error(ErrorCode::corrupt, why);
    }
    // A writer that died after its fdatasync but before publishing left a
    // durable end above durable_seq: publish it now.
    publish_durable(q, writer->durable_end());
    h.journal_pid.store(static_cast<std::uint32_t>(::getpid()), std::memory_order_relaxed);
    checkpoint_epoch = ~0u;  // checkpoint at once
    last_flush_ns = monotonic_ns();
  }

  // The groups as the queue has them now.
  std::vector<JournalGroupState> group_states() const {
    std::vector<JournalGroupState> out;
    for (std::uint32_t g = 0; g < q.layout.max_groups; ++g) {
      const auto& G = q.group(g);
      // acquire: pairs with the creator's release of `active`; name and cursors are complete.
      if (G.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(GroupState::active)) continue;
      JournalGroupState s;
      s.name.assign(G.name, strnlen(G.name, sizeof G.name));
      // acquire: pair with the floor and next CASes; values only, recorded in the checkpoint.
      s.floor = G.floor.load(std::memory_order_acquire);
      s.next = std::max(s.floor, G.next.load(std::memory_order_acquire));
      s.overflow = G.overflow;
      s.start = 0;
      if (journal_group_problem(s).empty()) out.push_back(std::move(s));
    }
    return out;
  }

  void maybe_checkpoint() {
    const std::uint64_t now = monotonic_ms();
    // relaxed: a hint; a checkpoint a moment late only widens the at-least-once window.
    const std::uint32_t epoch = q.header().group_epoch.load(std::memory_order_acquire);
    if (epoch == checkpoint_epoch && now - last_checkpoint_ms < kCheckpointEveryMs) return;
    auto groups = group_states();
    last_checkpoint_ms = now;
    // An idle queue writes no checkpoint (and pays no fdatasync) when nothing changed.
    if (epoch == checkpoint_epoch && groups == last_groups) return;
    writer->append_checkpoint(groups);
    std::uint64_t floor = writer->next_seq();
    for (const auto& g : groups) floor = std::min(floor, g.floor);
    pending_retention = floor;
    checkpoint_epoch = epoch;
    last_groups = std::move(groups);
  }

  // Appends every slot from the journal's end that is settled in the ring
  // (committed: message; aborted: skip). Returns how many seqs it covered.
  std::size_t append_available() {
    auto& h = q.header();
    JournalWriter& w = *writer;
    std::uint64_t s = w.next_seq();
    // acquire: pairs with the producers' tail CAS; bounds the scan (each slot state is read with acquire below).
    const std::uint64_t tail = h.tail.load(std::memory_order_acquire);
    std::size_t n = 0;
    std::uint64_t skips = 0;
    auto flush_skips = [&] {
      if (skips != 0) w.append_skip(skips);
      skips = 0;
    };
    while (s < tail && n < kMaxBatchRecords && w.staged_bytes() < kMaxBatchBytes) {
      const SlotHeader& slot = q.slot(s);
      // acquire: pairs with the producer's commit CAS; header fields and payload are visible.
      const SlotWord sw = SlotWord::decode(slot.state.load(std::memory_order_acquire));
      const std::uint64_t mine = s & kSeqMask;
      if (sw.seq == mine && sw.state == SlotState::committed) {
        // The slot cannot be reused under us: the producers' floor is at most
        // durable_seq <= s (scan_min_floor), so no claim reaches s + capacity.
        const SlotFields f = read_fields(slot);
        const bool length_ok = f.length <= q.layout.max_message_size;
        const std::span<const std::byte> body(q.payload(s), length_ok ? f.length : 0);
        if (!length_ok || XXH3_64bits(body.data(), body.size()) != f.checksum) {
          ++skips;  // consumers skip it as corrupt; the journal records no message for it
        } else {
          flush_skips();
          if ((f.flags & kSlotReplay) != 0) {
            w.append_replay(body, f.publish_time_ns, (f.flags & kSlotHasKey) != 0, JournalKey{f.key_lo, f.key_hi},
                            replay_target_hash(f.flags));
          } else {
            std::optional<JournalKey> key;
            if ((f.flags & kSlotHasKey) != 0) key = JournalKey{f.key_lo, f.key_hi};
            w.append_message(body, f.publish_time_ns, key);
          }
        }
      } else if (sw.seq == mine && sw.state == SlotState::aborted) {
        ++skips;
      } else if (sw.seq > mine) {
        // Reused before it was journaled: cannot happen while the floor holds;
        // record the hole rather than stall forever.
        report("slot of seq " + std::to_string(s) + " was reused before it was journaled");
        ++skips;
      } else {
        break;  // not committed yet (claimed, or the tail CAS is ahead of the claim)
      }
      ++s;
      ++n;
    }
    flush_skips();
    return n;
  }

  // The journal names the target of a replay copy by its group's name (a
  // recovered queue numbers groups anew); 0 if that group is gone, so
  // recovery drops the copy.
  std::uint64_t replay_target_hash(std::uint32_t flags) const {
    const std::uint32_t g = replay_target_group(flags);
    if (g >= q.layout.max_groups) return 0;
    const auto& G = q.group(g);
    // acquire: pairs with the creator's release of `active`; the name is complete.
    if (G.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(GroupState::active) ||
        !slot_is_for(flags, g, G.incarnation.load(std::memory_order_relaxed)))
      return 0;
    return journal_group_hash(std::string_view(G.name, strnlen(G.name, sizeof G.name)));
  }

  // The journal follows the ring in order, so a claim that never commits
  // stops it (and, in sync mode, every publish after it). Consumers abort
  // such claims (consumer.cpp, handle_stalled_head); a queue may have no
  // consumer, so the journal thread applies the same rule to its head seq:
  // a claim whose claimer is dead or that is older than claim_timeout, or
  // a seq claimed on the tail but never marked for claim_timeout, is aborted.
  std::uint64_t stalled_seq = ~0ull;
  std::uint64_t stalled_since_ms = 0;
  std::uint64_t stalled_tail = 0;

  void check_stalled_head() {
    auto& h = q.header();
    const std::uint64_t seq = writer->next_seq();
    // acquire: pairs with the producers' tail CAS; seqs below it are claimed, so an uncommitted head is a stalled claim.
    const std::uint64_t tail = h.tail.load(std::memory_order_acquire);
    const std::uint64_t now = coarse_monotonic_ms();  // the clock stalls are timed with
    if (tail <= seq) {
      stalled_seq = ~0ull;
      return;
    }
    if (stalled_seq != seq) {
      stalled_seq = seq;
      stalled_since_ms = now;
      stalled_tail = tail;
      return;
    }
    (void)abort_stalled_claims(q, seq, now, stalled_since_ms, stalled_tail);
  }

  void flush_and_publish() {
    const std::uint64_t durable = writer->flush();
    last_flush_ns = monotonic_ns();
    q.header().journal_flushes.fetch_add(1, std::memory_order_relaxed);
    publish_durable(q, durable);
    if (pending_retention) {
      // The checkpoint naming this floor is durable now.
      writer->delete_below(std::min(*pending_retention, durable));
      pending_retention.reset();
    }
  }

  // What the journal thread does after a round, with writer_mutex released.
  enum class Pause { none, nap, sleep_on_commit };
  struct AfterRound {
    Pause pause = Pause::none;
    std::uint64_t nap_ns = 0;
  };

  // One round as the holder of the lock (writer_mutex held).
  AfterRound round() {
    const bool sync = q.layout.durability == kDurabilitySync;
    const std::uint64_t interval_ns = std::uint64_t{q.layout.async_flush_ms} * 1'000'000;
    maybe_checkpoint();
    const std::size_t n = append_available();
    const bool staged = writer->staged_bytes() != 0;
    if (staged) {
      // Async flushes every interval, and at once when a full batch is
      // staged: the interval bounds the loss window, it must not cap the
      // journal's throughput at one batch per interval.
      if (sync || writer->staged_bytes() >= kMaxBatchBytes || monotonic_ns() - last_flush_ns >= interval_ns) {
        flush_and_publish();
        return {};
      }
    }
    if (n != 0) return {};  // more may be there; look again before sleeping
    check_stalled_head();
    if (!sync) {
      // Async: the interval is the loss window; sleep until it ends.
      const std::uint64_t since = monotonic_ns() - last_flush_ns;
      const std::uint64_t left = since >= interval_ns ? 0 : interval_ns - since;
      return {left != 0 ? Pause::nap : Pause::none, left};
    }
    return {Pause::sleep_on_commit, 0};
  }

  // Sync, nothing to journal: sleep on the commit futex (producers wake it),
  // writer_mutex released so that a publisher of this process can lead.
  // The seq the journal waits for is durable_seq, not the writer's next_seq
  // (which needs the mutex): in sync mode they are equal after a round that
  // found nothing, and a leader that journals more raises durable_seq first.
  void sleep_until_commit() {
    const std::uint64_t idle_start_ns = monotonic_ns();
    if (!spin_for_commit(idle_start_ns)) wait_on_commit_futex();
    last_idle_ns = monotonic_ns() - idle_start_ns;  // spin_for_commit's rule reads it next time
  }

  // The futex half of sleep_until_commit: armed, checked once more, then slept on.
  void wait_on_commit_futex() {
    auto& h = q.header();
    // seq_cst: the waiting side of wait.hpp; pairs with the producer's commit CAS and waiter load.
    h.commit_waiters.fetch_add(1, std::memory_order_seq_cst);
    const std::uint32_t seen = arm(h.commit_futex);  // armed: a producer's commit wakes us (wait.hpp)
    // seq_cst: after the arming (wait.hpp); a seq at or below it is journaled, so its slot cannot be reused yet.
    const bool ready = next_record_ready(std::memory_order_seq_cst);
    if (!ready && !stopping.load(std::memory_order_relaxed)) futex_wait(h.commit_futex, seen, kIdleWaitNs);
    // seq_cst: the last step of wait.hpp (all steps seq_cst); a late decrement only costs a waker a syscall.
    h.commit_waiters.fetch_sub(1, std::memory_order_seq_cst);
  }

  // Whether the slot at durable_seq is committed or aborted: a record to journal.
  [[nodiscard]] bool next_record_ready(std::memory_order order) const noexcept {
    auto& h = q.header();
    const std::uint64_t s = h.durable_seq.load(order);
    const SlotWord sw = SlotWord::decode(q.slot(s).state.load(order));
    return sw.seq == (s & kSeqMask) && (sw.state == SlotState::committed || sw.state == SlotState::aborted);
  }

  // Sync, nothing to journal: spin up to holder_spin_ns() for the next
  // commit before sleeping on the commit futex. A publisher in another
  // process then finds its commit taken up within a microsecond instead of
  // waking a sleeping thread (20-70 µs of scheduling on a VM, "Spinning
  // before sleeping" in docs/journal.md). Only if the last idle spell was
  // that short, so a queue idle for longer costs one budget of spinning per
  // spell and then none; and not while publishers of this process lead their
  // own flushes (lead_flush): a spinning journal thread would take the writer
  // from under them and cost them the wake-up they save. True: a record is
  // ready to journal.
  bool spin_for_commit(std::uint64_t start_ns) {
    const std::uint64_t budget_ns = holder_spin_ns();
    // relaxed: a hint, written by lead_flush of this process.
    const bool local_publishers = start_ns - last_local_publish_ns.load(std::memory_order_relaxed) < kLocalLeadQuietNs;
    bool ready = false;
    if (budget_ns != 0 && last_idle_ns <= budget_ns && !local_publishers && lone_producer(start_ns)) {
      ACKRING_FAILPOINT("journal.idle_spin");
      const std::uint64_t until_ns = start_ns + budget_ns;
      // relaxed (stopping): it only ends the spin early, as the sleep's own check does.
      while (!ready && !stopping.load(std::memory_order_relaxed) && monotonic_ns() < until_ns) {
        for (int i = 0; i < 64 && !ready; ++i) {
          // acquire: pairs with the commit CAS; the round that follows reads the slot again anyway.
          ready = next_record_ready(std::memory_order_acquire);
          cpu_relax();
        }
      }
    }
    return ready;
  }

  // Whether at most one producer handle is attached to the queue, counted
  // at most every 100 ms (the table can have 65535 entries). With several,
  // the holder does not spin: the wake-up it would save doubles as a
  // group-commit window in which the other publishers' commits join the
  // flush, and flushing each commit at once cost 2 × 1 (two producer
  // processes, one sync publish each) 15 % of its rate.
  bool lone_producer(std::uint64_t now_ns) {
    if (now_ns - producers_counted_ns >= 100'000'000) {
      producers_counted_ns = now_ns;
      std::uint32_t live = 0;
      for (std::uint32_t i = 0; i < q.layout.max_producers && live < 2; ++i)
        // relaxed: a count for a heuristic; a handle attached or gone a moment ago changes nothing that matters.
        if (q.producer(i).pid.load(std::memory_order_relaxed) != 0) ++live;
      lone_producer_cached = live <= 1;
    }
    return lone_producer_cached;
  }

  // Sync mode, called by a publishing thread of this process once its
  // message (seq) is committed. If this process holds the journal and no
  // flush is under way, the thread journals and flushes up to its own
  // message itself: the same append + flush + publish as a round, without
  // the two cross-thread wake-ups (publisher -> journal thread -> publisher)
  // that a flush costs otherwise, each a sleeping CPU woken on a VM. Returns
  // true once seq is durable; false to wait for the journal thread instead
  // (another process holds the journal, a flush is under way, a claim
  // before seq is not committed yet, or the flush failed).
  bool lead_flush(std::uint64_t seq) noexcept {
    if (::getpid() != owner_pid) return false;  // a forked child: its parent's journal thread writes
    // relaxed: a hint for the journal thread's spin (spin_for_commit).
    last_local_publish_ns.store(monotonic_ns(), std::memory_order_relaxed);
    std::unique_lock lock(writer_mutex, std::try_to_lock);
    if (!lock.owns_lock() || !writer) return false;
    auto& h = q.header();
    try {
      // acquire: pairs with publish_durable's CAS (ours or the journal thread's).
      while (h.durable_seq.load(std::memory_order_acquire) <= seq) {
        if (append_available() == 0 && writer->staged_bytes() == 0) return false;  // stopped at an earlier claim
        ACKRING_FAILPOINT("journal.lead_before_flush");
        flush_and_publish();
      }
      return true;
    } catch (const std::exception& e) {
      report(e.what());
    } catch (...) {
      report("unknown error");
    }
    release();  // the journal thread takes the lock again (and says why it cannot)
    return false;
  }

  // Sleeps up to ns, or until stop is asked.
  void nap_ns(std::uint64_t ns) {
    std::unique_lock lock(mutex);
    cv.wait_for(lock, std::chrono::nanoseconds(ns), [&] { return stop; });
  }

  void run() noexcept {
    // acquire: pairs with the deleter's release store; nothing but the flag is published (stop is under the mutex).
    while (!stopping.load(std::memory_order_acquire)) {
      try {
        AfterRound after;
        {
          std::lock_guard lock(writer_mutex);
          if (!writer) acquire();
          if (writer) after = round();
          else after = {Pause::nap, kRetryLockNs};
        }
        if (after.pause == Pause::nap) nap_ns(after.nap_ns);
        else if (after.pause == Pause::sleep_on_commit) sleep_until_commit();
      } catch (const std::exception& e) {
        fail(e.what());
      } catch (...) {
        fail("unknown error");
      }
    }
    // Orderly stop: journal everything committed up to the tail as it is now
    // (a backlog can be a whole ring: flush batch by batch), then hand the
    // lock over. Stops early at a claim that is not committed yet.
    std::lock_guard lock(writer_mutex);
    if (writer) {
      try {
        const std::uint64_t stop_at = q.header().tail.load(std::memory_order_acquire);
        while (writer->next_seq() < stop_at && append_available() != 0) flush_and_publish();
        flush_and_publish();
        writer->close();
      } catch (const std::exception& e) {
        report(e.what());
      } catch (...) {
      }
      release();
    }
  }

  void fail(const std::string& what) {
    {
      std::lock_guard lock(writer_mutex);
      report(what);
      release();
    }
    nap_ns(kRetryAfterErrorNs);
  }

  // writer_mutex held.
  void release() noexcept {
    if (!writer) return;
    auto& h = q.header();
    std::uint32_t me = static_cast<std::uint32_t>(::getpid());
    h.journal_pid.compare_exchange_strong(me, 0, std::memory_order_relaxed);
    writer.reset();
    pending_retention.reset();
  }
};

bool lead_flush(DurabilityAgent& agent, std::uint64_t seq) noexcept { return agent.lead_flush(seq); }

void DurabilityAgentDeleter::operator()(DurabilityAgent* agent) const noexcept {
  if (agent == nullptr) return;
  {
    std::lock_guard lock(agent->mutex);
    agent->stop = true;
  }
  // release: pairs with run()'s acquire load; the thread leaves its loop and journals up to the tail before stopping.
  agent->stopping.store(true, std::memory_order_release);
  agent->cv.notify_all();
  if (agent->thread.joinable()) agent->thread.join();
  delete agent;
}

void start_durability(QueueState& q) {
  if (q.layout.durability == kDurabilityNone || !g_threads_enabled.load() || !writer_enabled_by_environment()) return;
  std::unique_ptr<DurabilityAgent, DurabilityAgentDeleter> agent(new DurabilityAgent(q, journal_directory(q)));
  agent->thread = std::thread([a = agent.get()] { a->run(); });
  q.durability = std::move(agent);
}

}  // namespace ackring::detail
