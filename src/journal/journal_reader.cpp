// Reading a journal directory (journal_reader.hpp): the segment files fed to
// the scanner, and the optional repair of a torn tail.
#include "journal/journal_reader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "journal/journal_fs.hpp"

namespace ackring::detail {

namespace {

// Segment files, read one at a time into a reused buffer (a segment is at
// most kJournalMaxSegmentSize bytes; a longer file is read only that far).
class FileSource final : public JournalSegmentSource {
 public:
  FileSource(std::filesystem::path dir, std::vector<JournalSegmentFile> files)
      : dir_(std::move(dir)), files_(std::move(files)) {}

  [[nodiscard]] std::size_t count() const override { return files_.size(); }
  [[nodiscard]] std::string name(std::size_t i) const override { return files_[i].name; }
  [[nodiscard]] std::string where(std::size_t i) const override { return (dir_ / files_[i].name).string(); }

  [[nodiscard]] std::span<const std::byte> header(std::size_t i) override {
    const auto path = dir_ / files_[i].name;
    const JournalFd fd = journal_open(path, O_RDONLY);
    const std::size_t n = journal_pread_some(fd.get(), header_, sizeof header_, path);
    return {header_, n};
  }

  [[nodiscard]] std::span<const std::byte> load(std::size_t i) override {
    const auto path = dir_ / files_[i].name;
    const JournalFd fd = journal_open(path, O_RDONLY);
    journal_read_file(fd.get(), buffer_, kJournalMaxSegmentSize, path);
    return buffer_;
  }

 private:
  std::filesystem::path dir_;
  std::vector<JournalSegmentFile> files_;
  std::byte header_[kJournalSegmentHeaderSize]{};
  std::vector<std::byte> buffer_;
};

void repair(const std::filesystem::path& dir, JournalScanResult& r) {
  if (r.end == JournalEnd::corrupt) return;  // nothing safe to do: an operator decides
  for (const auto& name : r.ignored) {
    const auto path = dir / name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) journal_fail_errno(path, "remove unwritten segment", errno);
  }
  const bool in_ignored = std::any_of(r.ignored.begin(), r.ignored.end(), [&](const std::string& name) {
    return (dir / name).string() == r.damaged_segment;
  });
  if (r.end == JournalEnd::torn_tail && !in_ignored && r.discarded_bytes > 0) {
    // Zeros, not ftruncate: the segment keeps its allocation and its zero
    // tail keeps meaning "end of log".
    const std::filesystem::path path = r.damaged_segment;
    const JournalFd fd = journal_open(path, O_WRONLY);
    const std::vector<char> zeros(std::min<std::uint64_t>(r.discarded_bytes, 1u << 20), 0);
    for (std::uint64_t done = 0; done < r.discarded_bytes; done += zeros.size()) {
      const std::uint64_t n = std::min<std::uint64_t>(zeros.size(), r.discarded_bytes - done);
      journal_pwrite_all(fd.get(), zeros.data(), n, r.damage_offset + done, path);
    }
    journal_fdatasync(fd.get(), path);
  }
  journal_fsync_directory(dir);
  r.repaired = true;
}

}  // namespace

JournalScanResult JournalReader::read(const std::filesystem::path& dir, const JournalReadOptions& options,
                                      const JournalVisitor& visit) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    journal_fail(ErrorCode::not_found, dir, "read journal", "no such journal directory");
  JournalFd lock;
  if (options.repair) {
    lock = journal_try_lock(dir, 0600);
    if (!lock)
      journal_fail(ErrorCode::system, dir, "repair journal",
                   "a live writer holds the journal lock (repair only a journal nobody writes)");
  }
  FileSource source(dir, journal_list_segments(dir));
  JournalScanResult r = scan_journal(source, options.queue_id, visit);
  if (options.repair) repair(dir, r);
  return r;
}

}  // namespace ackring::detail
