// The journal writer: the one process that appends to a queue's journal.
//
//   auto w = JournalWriter::try_acquire(dir, {.queue_id = id});   // nullptr: another live writer
//   for (each committed message) w->append_message(body, time, key);
//   std::uint64_t durable = w->flush();   // one write + fdatasync; every seq < durable is on disk
//
// Exactly one writer per journal directory: the one holding flock() on
// `<dir>/LOCK`. The kernel releases the lock when its holder dies, however
// it dies, so another process takes over with try_acquire; it recovers the
// durable end from the files and continues from there in a new segment, so
// the log has no gap and no duplicate seq (docs/journal.md, "Takeover").
//
// Group commit: append only stages records in a registered buffer (no
// system call); flush writes everything staged with one io_uring submission
// (the write linked to an fdatasync) and waits for it. A caller that appends
// everything available and then flushes once gets batches that grow with the
// load: latency at low load is one fdatasync, throughput at high load
// approaches the disk's sequential limit.
//
// Thread safety: a writer is used by one thread at a time (it owns a helper
// thread that pre-allocates the next segment, invisible to the caller). Do
// not fork while holding a writer and keep using it, or the lock, in both
// processes: the child shares the lock (same open file description).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "journal/journal_format.hpp"
#include "journal/journal_fs.hpp"
#include "journal/journal_io.hpp"
#include "journal/journal_records.hpp"
#include "journal/journal_scan.hpp"

namespace ackring::detail {

class JournalSegmentPreparer;

struct JournalOptions {
  // Identity of the queue (e.g. a hash of its creation time and name);
  // non-zero. A journal directory holding another queue's journal is refused.
  std::uint64_t queue_id = 0;
  // Seq of the first record of a journal that does not exist yet (ignored
  // when continuing an existing one).
  std::uint64_t first_seq = 0;
  // Bytes per segment file: a multiple of 4096, 4 KiB .. 4 GiB.
  std::uint64_t segment_size = kJournalDefaultSegmentSize;
  // Bytes staged between flushes; an append that finds it full flushes
  // first. Registered with io_uring (counts against RLIMIT_MEMLOCK).
  std::size_t staging_size = 2u << 20;
  // Allocate segments by writing zeros (slower to prepare, no extent
  // conversion at the first fdatasync of each block) instead of fallocate.
  bool zero_fill = false;
  // Prepare the next segment on a helper thread while the current one fills.
  bool prepare_ahead = true;
  // Use pwrite + fdatasync even where io_uring works (tests, comparison).
  bool force_pwrite = false;
  // Retention (delete_below): segments wholly below the given seq are
  // deleted, oldest first, except the newest ones whose total size is at
  // most keep_bytes and those written to less than keep_age ago.
  std::uint64_t keep_bytes = 0;
  std::chrono::seconds keep_age{0};
  // Permission bits of the files the writer creates.
  unsigned mode = 0600;
};

struct JournalWriterStats {
  JournalIoPath io_path = JournalIoPath::pwrite;
  bool registered_buffers = false;  // io_uring fixed-buffer writes
  std::uint64_t next_seq = 0;       // seq the next message gets
  std::uint64_t durable_end = 0;    // every seq below is durable
  std::uint64_t records = 0;        // records appended (opening checkpoints included)
  std::uint64_t bytes = 0;          // bytes of those records, headers and padding included
  std::uint64_t flushes = 0;        // write + fdatasync rounds
  std::uint64_t auto_flushes = 0;   // of those, forced by a full staging buffer or segment
  std::uint64_t segments_created = 0;
  std::uint64_t segments_deleted = 0;
  std::uint64_t roll_waits = 0;     // segment switches that waited for the spare to be allocated
  std::uint64_t short_writes = 0;   // writes the kernel completed only in part (continued)
  std::uint64_t io_retries = 0;     // EINTR / EAGAIN / broken links resubmitted
  std::uint64_t last_flush_ns = 0;  // duration of the last flush (write + fdatasync)
  std::uint64_t max_flush_ns = 0;
  std::uint64_t total_flush_ns = 0;
  std::uint64_t last_flush_bytes = 0;
};

class JournalWriter {
 public:
  // Takes the journal lock of `dir` (created if missing) and opens the
  // journal for appending. Returns nullptr if another live writer holds the
  // lock. Otherwise it reads the existing segments (JournalReader), makes
  // what it read durable, and continues after the last good record in a new
  // segment whose header supersedes a torn tail of the old one.
  // Throws ackring::Error: invalid_argument (options), incompatible (a
  // journal of another queue or version), corrupt (damage before the end of
  // the log: an operator must look), or an I/O error naming file and call.
  [[nodiscard]] static std::unique_ptr<JournalWriter> try_acquire(const std::filesystem::path& dir,
                                                                  const JournalOptions& options);

  // Releases the lock without flushing: staged records are discarded, as in
  // a crash. Call flush() or close() first to keep them.
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // ---- staging (no I/O unless the staging buffer or segment is full) ------
  // Each returns the seq the record got. A message consumes its seq; a skip
  // consumes `count` seqs (claims that were aborted: no message); control
  // records take effect before the message of their seq and consume none.
  // Throws invalid_argument for a record that can never be written (too
  // large for a segment, a bad group), or the error of a flush it needed.
  std::uint64_t append_message(std::span<const std::byte> body, std::uint64_t publish_time_ns,
                               const std::optional<JournalKey>& key = std::nullopt);
  // A replay copy (Queue::rewind_group) for the group whose name hashes to
  // target_group_hash; `key` is the slot's key fields (without has_key: the
  // copied message's seq in key.lo).
  std::uint64_t append_replay(std::span<const std::byte> body, std::uint64_t publish_time_ns, bool has_key,
                              const JournalKey& key, std::uint64_t target_group_hash);
  std::uint64_t append_skip(std::uint64_t count);
  std::uint64_t append_checkpoint(std::span<const JournalGroupState> groups);
  std::uint64_t append_group_create(const JournalGroupState& group);
  std::uint64_t append_group_remove(std::string_view name);

  // Writes everything staged and makes it durable (one io_uring submission:
  // write linked to fdatasync), then returns the durable end: every seq
  // below it is on disk. With nothing staged it returns at once. If the
  // write or the fdatasync fails it throws, and the writer refuses all
  // further calls (after a failed fdatasync the kernel may have dropped the
  // pages; retrying could report lost data as durable).
  std::uint64_t flush();

  // Retention: deletes whole segments, oldest first, whose records all have
  // seqs below `seq` (never the segment being written), except those
  // JournalOptions::keep_bytes / keep_age keep. Pass the lowest floor of all
  // groups as of a durable checkpoint. Returns how many were deleted.
  std::size_t delete_below(std::uint64_t seq);

  // Flushes, then releases the lock; the writer accepts no more calls.
  void close();

  [[nodiscard]] std::uint64_t next_seq() const noexcept { return next_seq_; }
  [[nodiscard]] std::uint64_t durable_end() const noexcept { return durable_end_; }
  [[nodiscard]] std::size_t staged_bytes() const noexcept { return staged_; }
  [[nodiscard]] JournalWriterStats stats() const noexcept;
  [[nodiscard]] const std::string& io_fallback_reason() const noexcept { return io_->fallback_reason(); }
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return dir_; }
  // What try_acquire found: how the log ended (clean / torn tail and what
  // was discarded), where it continued.
  [[nodiscard]] const JournalScanResult& recovery() const noexcept { return recovery_; }
  // The groups as the journal describes them (opening checkpoint of each
  // new segment).
  [[nodiscard]] const std::vector<JournalGroupState>& groups() const noexcept { return groups_.groups(); }

 private:
  struct Segment {
    std::string name;
    std::uint64_t index = 0;
    std::uint64_t first_seq = 0;
    std::uint64_t size = 0;
  };
  struct FreeDeleter {
    void operator()(std::byte* p) const noexcept;
  };

  JournalWriter(std::filesystem::path dir, const JournalOptions& options, JournalFd lock);
  void recover();
  void check_usable() const;
  // Staging one record: reserve room for its payload (flushing or rolling
  // over first if needed), encode the payload at the pointer it returns
  // (journal_records.hpp), then put_record frames it.
  std::byte* reserve(std::uint64_t payload_size);
  [[nodiscard]] std::byte* payload_at() const noexcept { return staging_.get() + staged_ + kJournalRecordHeaderSize; }
  void put_record(JournalRecordType type, std::uint16_t flags, std::uint64_t seq, std::uint64_t length);
  void put_checkpoint(std::uint64_t seq, std::span<const JournalGroupState> groups);
  void grow_staging(std::size_t at_least);
  void flush_staged(bool automatic);
  void roll_over();
  void open_segment(std::uint64_t index, std::uint64_t first_seq, std::uint64_t prev_end);

  // Declared first, destroyed last: the lock outlives every file and the helper thread.
  JournalFd lock_;
  std::filesystem::path dir_;
  JournalOptions options_;
  std::unique_ptr<JournalIo> io_;
  std::unique_ptr<JournalSegmentPreparer> preparer_;
  JournalScanResult recovery_;
  JournalGroupTable groups_;
  std::deque<Segment> segments_;  // the log's segments, the active one last

  // The active segment. Bytes [0, written_) are written and durable; the
  // staged bytes go to [written_, written_ + staged_).
  JournalFd seg_fd_;
  std::filesystem::path seg_path_;
  std::uint64_t seg_size_ = 0;
  std::uint64_t written_ = 0;

  std::unique_ptr<std::byte, FreeDeleter> staging_;
  std::size_t staging_cap_ = 0;
  std::size_t staged_ = 0;
  bool batch_start_ = true;  // the next record is the first of a flush

  std::uint64_t next_seq_ = 0;
  std::uint64_t durable_end_ = 0;
  JournalWriterStats stats_;
  std::string failed_;  // why the writer stopped (a failed flush), or empty
  bool closed_ = false;
};

}  // namespace ackring::detail
