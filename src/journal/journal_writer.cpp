// The journal writer (journal_writer.hpp). The protocol it follows, and what
// happens when it dies at each step, is argued in docs/journal.md.
#include "journal/journal_writer.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "shm/clock.hpp"
#include "journal/journal_preparer.hpp"
#include "journal/journal_reader.hpp"
#include "shm/layout.hpp"

namespace ackring::detail {

namespace {

constexpr std::size_t kPage = 4096;

[[nodiscard]] constexpr std::size_t round_up(std::size_t v, std::size_t a) noexcept { return (v + a - 1) / a * a; }

[[noreturn]] void invalid(const std::filesystem::path& dir, std::string_view op, const std::string& why) {
  journal_fail(ErrorCode::invalid_argument, dir, op, why);
}

void validate(const std::filesystem::path& dir, const JournalOptions& o) {
  if (o.queue_id == 0) invalid(dir, "open journal", "the queue id is 0 (a journal needs the queue's identity)");
  if (o.segment_size < kJournalMinSegmentSize || o.segment_size > kJournalMaxSegmentSize ||
      o.segment_size % kPage != 0)
    invalid(dir, "open journal",
            "segment size " + std::to_string(o.segment_size) + " is not a multiple of 4096 in 4 KiB .. 4 GiB");
  if (o.staging_size < kPage || o.staging_size > (1ull << 30))
    invalid(dir, "open journal", "staging size " + std::to_string(o.staging_size) + " is not in 4 KiB .. 1 GiB");
}

// rename() that refuses to replace an existing file (segment names are
// unique by construction; replacing one would destroy records).
void rename_no_replace(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return;
  if (errno == EINVAL || errno == ENOSYS) {  // a file system without RENAME_NOREPLACE
    std::error_code ec;
    if (std::filesystem::exists(to, ec))
      journal_fail(ErrorCode::already_exists, to, "create journal segment", "the file exists already");
    if (::rename(from.c_str(), to.c_str()) == 0) return;
  }
  journal_fail_errno(to, "create journal segment (rename)", errno);
}

}  // namespace

void JournalWriter::FreeDeleter::operator()(std::byte* p) const noexcept { std::free(p); }

std::unique_ptr<JournalWriter> JournalWriter::try_acquire(const std::filesystem::path& dir,
                                                          const JournalOptions& options) {
  validate(dir, options);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) journal_fail_errno(dir, "create journal directory", ec.value());
  JournalFd lock = journal_try_lock(dir, options.mode);
  if (!lock) return nullptr;
  // For operators: who holds the lock (informational; the lock itself is the flock).
  const std::string who = "pid " + std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock.get(), 0) == 0) (void)::pwrite(lock.get(), who.data(), who.size(), 0);
  std::unique_ptr<JournalWriter> w(new JournalWriter(dir, options, std::move(lock)));
  w->recover();
  return w;
}

JournalWriter::JournalWriter(std::filesystem::path dir, const JournalOptions& options, JournalFd lock)
    : lock_(std::move(lock)), dir_(std::move(dir)), options_(options) {
  io_ = std::make_unique<JournalIo>(options_.force_pwrite);
  preparer_ = std::make_unique<JournalSegmentPreparer>(JournalSegmentPreparer::Options{
      dir_, options_.segment_size, options_.zero_fill, options_.prepare_ahead, options_.mode});
  grow_staging(options_.staging_size);
}

JournalWriter::~JournalWriter() {
  // Members go in reverse order: the staging buffer, the active segment, the
  // preparer (joins its thread, removes an unused spare), the ring, and the
  // lock last. No I/O is in flight: flush waits for its completions.
}

void JournalWriter::recover() {
  // A spare left by a dead writer is not part of the log.
  const auto spare = preparer_->spare_path();
  if (::unlink(spare.c_str()) != 0 && errno != ENOENT) journal_fail_errno(spare, "remove old spare segment", errno);

  JournalGroupTable table;
  recovery_ = JournalReader::read(dir_, {.queue_id = options_.queue_id},
                                  [&](const JournalRecordView& r) { table.apply(r); });
  if (recovery_.end == JournalEnd::corrupt)
    journal_fail(ErrorCode::corrupt, dir_, "open journal for writing",
                 recovery_.message + " (the writer does not continue a damaged log: inspect it, and move the "
                                     "damaged segments away to accept the loss)");
  groups_ = std::move(table);

  // Segments whose header never reached the disk hold nothing acknowledged.
  for (const auto& name : recovery_.ignored) {
    const auto path = dir_ / name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) journal_fail_errno(path, "remove unwritten segment", errno);
  }
  if (!recovery_.ignored.empty()) journal_fsync_directory(dir_);

  if (recovery_.segments.empty()) {
    next_seq_ = durable_end_ = options_.first_seq;
    open_segment(0, next_seq_, 0);
  } else {
    for (const auto& s : recovery_.segments) segments_.push_back({s.name, s.index, s.first_seq, s.segment_size});
    const auto& last = recovery_.segments.back();
    // What we read may be only in the page cache: the previous writer may
    // have died between its write and its fdatasync. Make it durable before
    // building on it, so "durable end" means durable.
    const auto last_path = dir_ / last.name;
    const JournalFd fd = journal_open(last_path, O_RDWR);
    journal_fdatasync(fd.get(), last_path);
    next_seq_ = durable_end_ = recovery_.next_seq;
    // A new segment, not an append to the old one: its header records where
    // the old one's good records end, so whatever lies past that (a torn
    // batch, or a write of the dead writer still in flight in the kernel)
    // is superseded without being rewritten.
    open_segment(last.index + 1, next_seq_, last.end_offset);
  }
  flush_staged(false);  // the new segment's header and opening checkpoint are durable from the start
}

void JournalWriter::check_usable() const {
  if (!failed_.empty())
    journal_fail(ErrorCode::system, dir_, "append to journal",
                 "the writer stopped after an I/O error and accepts no more records (" + failed_ + ")");
  if (closed_) journal_fail(ErrorCode::invalid_argument, dir_, "append to journal", "the writer is closed");
}

void JournalWriter::grow_staging(std::size_t at_least) {
  const std::size_t cap = round_up(std::max(at_least, staging_cap_ * 2), kPage);
  auto* p = static_cast<std::byte*>(std::aligned_alloc(kPage, cap));
  if (p == nullptr) journal_fail(ErrorCode::resource_exhausted, dir_, "allocate journal staging buffer", "out of memory");
  std::unique_ptr<std::byte, FreeDeleter> fresh(p);
  if (staged_ > 0) std::memcpy(fresh.get(), staging_.get(), staged_);
  // Re-registering is safe: no write is in flight outside flush_staged.
  io_->register_buffer(fresh.get(), cap);
  staging_ = std::move(fresh);
  staging_cap_ = cap;
}

std::byte* JournalWriter::reserve(std::uint64_t payload_size) {
  check_usable();
  const std::uint64_t record_size = journal_record_size(payload_size);
  if (written_ + staged_ + record_size > seg_size_) {
    roll_over();
    if (written_ + staged_ + record_size > seg_size_)
      invalid(dir_, "append to journal",
              "a record of " + std::to_string(record_size) + " bytes does not fit a segment of " +
                  std::to_string(seg_size_) + " bytes (raise JournalOptions::segment_size)");
  }
  if (staged_ + record_size > staging_cap_) {
    if (staged_ > 0) flush_staged(true);
    if (record_size > staging_cap_) grow_staging(static_cast<std::size_t>(record_size));
  }
  return payload_at();
}

// Frames the record whose payload (`length` bytes) the caller encoded at
// payload_at(): seal_journal_record adds padding, header and checksum.
void JournalWriter::put_record(JournalRecordType type, std::uint16_t flags, std::uint64_t seq,
                               std::uint64_t length) {
  JournalRecordHeader h{};
  h.length = static_cast<std::uint32_t>(length);
  h.type = static_cast<std::uint16_t>(type);
  h.flags = static_cast<std::uint16_t>(flags | (batch_start_ ? kJournalFlagBatchStart : 0));
  h.seq = seq;
  const std::uint64_t size = seal_journal_record(staging_.get() + staged_, h);
  staged_ += static_cast<std::size_t>(size);
  batch_start_ = false;
  ++stats_.records;
  stats_.bytes += size;
}

void JournalWriter::put_checkpoint(std::uint64_t seq, std::span<const JournalGroupState> groups) {
  encode_checkpoint(payload_at(), groups);
  put_record(JournalRecordType::checkpoint, 0, seq, journal_checkpoint_size(groups));
}

std::uint64_t JournalWriter::append_message(std::span<const std::byte> body, std::uint64_t publish_time_ns,
                                            const std::optional<JournalKey>& key) {
  if (body.size() > kJournalMaxPayload - sizeof(JournalMessageHeader))
    invalid(dir_, "append to journal", "a message body of " + std::to_string(body.size()) + " bytes is too large");
  const std::uint64_t n = journal_message_payload_size(body.size());
  encode_message(reserve(n), publish_time_ns, key.value_or(JournalKey{}), body);
  const std::uint64_t seq = next_seq_;
  put_record(JournalRecordType::message, key ? kJournalFlagHasKey : 0, seq, n);
  ++next_seq_;
  return seq;
}

std::uint64_t JournalWriter::append_replay(std::span<const std::byte> body, std::uint64_t publish_time_ns,
                                           bool has_key, const JournalKey& key, std::uint64_t target_group_hash) {
  if (body.size() > kJournalMaxPayload - journal_message_payload_size(0, true))
    invalid(dir_, "append to journal", "a message body of " + std::to_string(body.size()) + " bytes is too large");
  const std::uint64_t n = journal_message_payload_size(body.size(), true);
  encode_replay(reserve(n), publish_time_ns, key, target_group_hash, body);
  const std::uint64_t seq = next_seq_;
  put_record(JournalRecordType::message, kJournalFlagReplay | (has_key ? kJournalFlagHasKey : 0), seq, n);
  ++next_seq_;
  return seq;
}

std::uint64_t JournalWriter::append_skip(std::uint64_t count) {
  if (count == 0 || count > UINT64_MAX - next_seq_)
    invalid(dir_, "append to journal", "a skip of " + std::to_string(count) + " seqs is out of range");
  encode_skip(reserve(sizeof(JournalSkipPayload)), count);
  const std::uint64_t seq = next_seq_;
  put_record(JournalRecordType::skip, 0, seq, sizeof(JournalSkipPayload));
  next_seq_ += count;
  return seq;
}

std::uint64_t JournalWriter::append_checkpoint(std::span<const JournalGroupState> groups) {
  if (groups.size() > kMaxGroups)
    invalid(dir_, "append to journal", "a checkpoint of " + std::to_string(groups.size()) + " groups (max " +
                                           std::to_string(kMaxGroups) + ")");
  for (const auto& g : groups)
    if (auto why = journal_group_problem(g); !why.empty()) invalid(dir_, "append checkpoint to journal", why);
  (void)reserve(journal_checkpoint_size(groups));
  const std::uint64_t seq = next_seq_;
  put_checkpoint(seq, groups);
  groups_.replace(groups);
  return seq;
}

std::uint64_t JournalWriter::append_group_create(const JournalGroupState& group) {
  if (auto why = journal_group_problem(group); !why.empty()) invalid(dir_, "append group to journal", why);
  if (groups_.groups().size() >= kMaxGroups &&
      std::none_of(groups_.groups().begin(), groups_.groups().end(),
                   [&](const JournalGroupState& g) { return g.name == group.name; }))
    invalid(dir_, "append group to journal", "more than " + std::to_string(kMaxGroups) + " groups");
  const std::uint64_t n = journal_group_entry_size(group.name);
  encode_group_entry(reserve(n), group);
  const std::uint64_t seq = next_seq_;
  put_record(JournalRecordType::group_create, 0, seq, n);
  groups_.create(group);
  return seq;
}

std::uint64_t JournalWriter::append_group_remove(std::string_view name) {
  JournalGroupState g;
  g.name = std::string(name);
  if (auto why = journal_group_problem(g); !why.empty()) invalid(dir_, "append group removal to journal", why);
  const std::uint64_t n = journal_group_entry_size(g.name);
  encode_group_entry(reserve(n), g);
  const std::uint64_t seq = next_seq_;
  put_record(JournalRecordType::group_remove, 0, seq, n);
  groups_.remove(name);
  return seq;
}

void JournalWriter::flush_staged(bool automatic) {
  if (staged_ == 0) return;
  check_usable();
  const std::uint64_t t0 = monotonic_ns();
  const auto before = io_->counters();
  try {
    io_->write_and_sync(seg_fd_.get(), staging_.get(), staged_, written_, seg_path_);
  } catch (const Error& e) {
    failed_ = e.what();
    throw;
  }
  const std::uint64_t took = monotonic_ns() - t0;
  written_ += staged_;
  stats_.last_flush_bytes = staged_;
  staged_ = 0;
  batch_start_ = true;  // the next record starts a batch written after this fdatasync returned
  durable_end_ = next_seq_;
  ++stats_.flushes;
  if (automatic) ++stats_.auto_flushes;
  stats_.last_flush_ns = took;
  stats_.max_flush_ns = std::max(stats_.max_flush_ns, took);
  stats_.total_flush_ns += took;
  stats_.short_writes += io_->counters().short_writes - before.short_writes;
  stats_.io_retries += io_->counters().retries - before.retries;
}

std::uint64_t JournalWriter::flush() {
  check_usable();
  flush_staged(false);
  return durable_end_;
}

void JournalWriter::roll_over() {
  // The old segment is complete and durable before the new one exists, so a
  // reader never finds a segment whose predecessor lacks acknowledged data.
  flush_staged(true);
  open_segment(segments_.back().index + 1, next_seq_, written_);
}

void JournalWriter::open_segment(std::uint64_t index, std::uint64_t first_seq, std::uint64_t prev_end) {
  // Every segment opens with a checkpoint of all groups, so deleting older
  // segments never deletes the only record of a group (docs/journal.md).
  const auto& groups = groups_.groups();
  const std::uint64_t opening = kJournalSegmentHeaderSize + journal_record_size(journal_checkpoint_size(groups));
  if (opening > options_.segment_size)
    invalid(dir_, "open journal segment",
            "the checkpoint of " + std::to_string(groups.size()) + " groups does not fit a segment of " +
                std::to_string(options_.segment_size) + " bytes");
  bool waited = false;
  JournalFd fd = preparer_->take(waited);
  if (waited && !segments_.empty()) ++stats_.roll_waits;  // the very first segment has no spare to wait for
  const std::string name = journal_segment_name(first_seq, index);
  const auto path = dir_ / name;
  rename_no_replace(preparer_->spare_path(), path);
  // The name is durable before any record in the file can be acknowledged
  // (the file's own data and size are made durable by its fdatasyncs).
  journal_fsync_directory(dir_);
  seg_fd_ = std::move(fd);
  seg_path_ = path;
  seg_size_ = options_.segment_size;
  written_ = 0;
  segments_.push_back({name, index, first_seq, seg_size_});
  ++stats_.segments_created;
  preparer_->request();  // the next spare, on the helper thread, while this one fills

  // The header goes out with the first batch: until that flush completes the
  // file reads as all zeros, which readers treat as "not part of the log".
  JournalSegmentHeader h{};
  std::memcpy(h.magic, kJournalMagic, sizeof h.magic);
  h.version = kJournalFormatVersion;
  h.header_size = kJournalSegmentHeaderSize;
  h.queue_id = options_.queue_id;
  h.segment_index = index;
  h.first_seq = first_seq;
  h.segment_size = seg_size_;
  h.prev_segment_end = prev_end;
  h.checksum = journal_header_checksum(h);
  if (staging_cap_ < opening) grow_staging(static_cast<std::size_t>(opening));
  std::memcpy(staging_.get(), &h, sizeof h);
  staged_ = sizeof h;
  put_checkpoint(first_seq, groups);
}

std::size_t JournalWriter::delete_below(std::uint64_t seq) {
  check_usable();
  // Segment j is settled when the next one starts at or below seq: every
  // message in it has a smaller seq. First seqs never decrease, so the
  // settled segments are a prefix; the active (last) one never is.
  std::size_t settled = 0;
  while (settled + 1 < segments_.size() && segments_[settled + 1].first_seq <= seq) ++settled;
  // Keep the newest settled segments within keep_bytes, and those written
  // to within keep_age: both keep a suffix of the prefix, so what goes is a
  // prefix too (the log stays a contiguous chain).
  std::vector<bool> keep(settled, false);
  std::uint64_t newer = 0;
  for (std::size_t j = settled; j-- > 0;) {
    newer += segments_[j].size;
    if (options_.keep_bytes > 0 && newer <= options_.keep_bytes) keep[j] = true;
  }
  if (options_.keep_age.count() > 0) {
    const auto now = std::filesystem::file_time_type::clock::now();
    for (std::size_t j = 0; j < settled; ++j) {
      std::error_code ec;
      const auto t = std::filesystem::last_write_time(dir_ / segments_[j].name, ec);
      if (!ec && now - t < options_.keep_age) keep[j] = true;
    }
  }
  std::size_t deleted = 0;
  while (deleted < settled && !keep[deleted]) {
    const auto path = dir_ / segments_.front().name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) journal_fail_errno(path, "delete journal segment", errno);
    // One at a time, durably: after a crash no older segment can reappear
    // next to a gap where a newer one was.
    journal_fsync_directory(dir_);
    segments_.pop_front();
    ++deleted;
    ++stats_.segments_deleted;
  }
  return deleted;
}

void JournalWriter::close() {
  if (closed_) return;
  flush();
  closed_ = true;
  seg_fd_.reset();
  preparer_.reset();
  lock_.reset();
}

JournalWriterStats JournalWriter::stats() const noexcept {
  JournalWriterStats s = stats_;
  s.io_path = io_->path();
  s.registered_buffers = io_->registered();
  s.next_seq = next_seq_;
  s.durable_end = durable_end_;
  return s;
}

}  // namespace ackring::detail
