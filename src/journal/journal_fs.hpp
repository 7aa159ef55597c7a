// File-system helpers of the journal: an owning file descriptor, errors that
// name the file, the operation and the reason, and the few system calls the
// writer, the reader and the segment preparer share (each retried on EINTR,
// each short transfer continued).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "ackring/error.hpp"

namespace ackring::detail {

// Move-only owner of a file descriptor; closing never throws.
class JournalFd {
 public:
  JournalFd() noexcept = default;
  explicit JournalFd(int fd) noexcept : fd_(fd) {}
  ~JournalFd() { reset(); }
  JournalFd(JournalFd&& o) noexcept : fd_(o.release()) {}
  JournalFd& operator=(JournalFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  JournalFd(const JournalFd&) = delete;
  JournalFd& operator=(const JournalFd&) = delete;

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

// `<op> '<path>': <why>`
[[noreturn]] void journal_fail(ErrorCode code, const std::filesystem::path& path, std::string_view op,
                               const std::string& why);
// The same with strerror(err), and a code that follows from err.
[[noreturn]] void journal_fail_errno(const std::filesystem::path& path, std::string_view op, int err);

// open(2) with O_CLOEXEC; throws on failure.
[[nodiscard]] JournalFd journal_open(const std::filesystem::path& path, int flags, unsigned mode = 0);

// Writes all of [data, data + n) at `offset` (pwrite, continuing short writes).
void journal_pwrite_all(int fd, const void* data, std::size_t n, std::uint64_t offset,
                        const std::filesystem::path& path);
// fdatasync / fsync, retried on EINTR. A failure is final (the kernel may have
// dropped the dirty pages), so it throws.
void journal_fdatasync(int fd, const std::filesystem::path& path);
void journal_fsync(int fd, const std::filesystem::path& path);
// Makes the directory's entries (creates, renames, unlinks) durable.
void journal_fsync_directory(const std::filesystem::path& dir);

// Reads the whole file at `path` (up to `max_bytes`) into `out`.
void journal_read_file(int fd, std::vector<std::byte>& out, std::uint64_t max_bytes, const std::filesystem::path& path);
// Reads up to n bytes at offset 0; fewer if the file is shorter.
std::size_t journal_pread_some(int fd, void* data, std::size_t n, const std::filesystem::path& path);

// Takes the journal lock: flock(LOCK_EX | LOCK_NB) on `<dir>/LOCK` (created
// if missing). Returns the locked descriptor, or an empty one if another
// open file description holds the lock (another process, or another writer
// in this one). The kernel releases the lock when the last descriptor of
// that description closes, so when its holder dies, however it dies. A
// child forked while the lock is held shares it (same description).
[[nodiscard]] JournalFd journal_try_lock(const std::filesystem::path& dir, unsigned mode);

// The segment files of a journal directory, in segment-index order (other
// names, such as LOCK and the spare, are left out).
struct JournalSegmentFile {
  std::string name;
  std::uint64_t first_seq = 0;
  std::uint64_t index = 0;
};
[[nodiscard]] std::vector<JournalSegmentFile> journal_list_segments(const std::filesystem::path& dir);

}  // namespace ackring::detail
