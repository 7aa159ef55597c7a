// File-system helpers of the journal (journal_fs.hpp).
#include "journal/journal_fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "journal/journal_format.hpp"

namespace ackring::detail {

void JournalFd::reset(int fd) noexcept {
  if (fd_ >= 0) ::close(fd_);  // close errors are not actionable here: data was synced explicitly
  fd_ = fd;
}

void journal_fail(ErrorCode code, const std::filesystem::path& path, std::string_view op, const std::string& why) {
  throw Error(code, std::string(op) + " '" + path.string() + "': " + why);
}

void journal_fail_errno(const std::filesystem::path& path, std::string_view op, int err) {
  const ErrorCode code = err == ENOENT                      ? ErrorCode::not_found
                         : err == EEXIST                    ? ErrorCode::already_exists
                         : (err == EACCES || err == EPERM)  ? ErrorCode::permission_denied
                         : (err == ENOSPC || err == EDQUOT) ? ErrorCode::resource_exhausted
                                                            : ErrorCode::system;
  journal_fail(code, path, op, std::strerror(err));
}

JournalFd journal_open(const std::filesystem::path& path, int flags, unsigned mode) {
  int fd;
  do fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) journal_fail_errno(path, "open", errno);
  return JournalFd(fd);
}

void journal_pwrite_all(int fd, const void* data, std::size_t n, std::uint64_t offset,
                        const std::filesystem::path& path) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      journal_fail_errno(path, "pwrite", errno);
    }
    if (w == 0) journal_fail(ErrorCode::system, path, "pwrite", "the write made no progress");
    p += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
}

void journal_fdatasync(int fd, const std::filesystem::path& path) {
  int rc;
  do rc = ::fdatasync(fd);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) journal_fail_errno(path, "fdatasync", errno);
}

void journal_fsync(int fd, const std::filesystem::path& path) {
  int rc;
  do rc = ::fsync(fd);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) journal_fail_errno(path, "fsync", errno);
}

void journal_fsync_directory(const std::filesystem::path& dir) {
  const JournalFd fd = journal_open(dir, O_RDONLY | O_DIRECTORY);
  journal_fsync(fd.get(), dir);
}

std::size_t journal_pread_some(int fd, void* data, std::size_t n, const std::filesystem::path& path) {
  auto* p = static_cast<char*>(data);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(done));
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      journal_fail_errno(path, "read", errno);
    }
    if (r == 0) break;  // end of file
    done += static_cast<std::size_t>(r);
  }
  return done;
}

void journal_read_file(int fd, std::vector<std::byte>& out, std::uint64_t max_bytes,
                       const std::filesystem::path& path) {
  struct stat st{};
  if (::fstat(fd, &st) != 0) journal_fail_errno(path, "stat", errno);
  const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(static_cast<std::uint64_t>(st.st_size), max_bytes));
  out.resize(size);
  // A file that shrank meanwhile yields fewer bytes; the scanner sees a short image.
  out.resize(journal_pread_some(fd, out.data(), size, path));
}

JournalFd journal_try_lock(const std::filesystem::path& dir, unsigned mode) {
  const auto path = dir / std::string(kJournalLockName);
  JournalFd fd = journal_open(path, O_RDWR | O_CREAT, mode);
  int rc;
  do rc = ::flock(fd.get(), LOCK_EX | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno == EWOULDBLOCK) return {};
    journal_fail_errno(path, "flock", errno);
  }
  return fd;
}

std::vector<JournalSegmentFile> journal_list_segments(const std::filesystem::path& dir) {
  std::vector<JournalSegmentFile> out;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) journal_fail_errno(dir, "list journal directory", ec.value());
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) journal_fail_errno(dir, "list journal directory", ec.value());
    JournalSegmentFile f;
    f.name = it->path().filename().string();
    if (parse_journal_segment_name(f.name, f.first_seq, f.index)) out.push_back(std::move(f));
  }
  if (ec) journal_fail_errno(dir, "list journal directory", ec.value());
  std::sort(out.begin(), out.end(), [](const JournalSegmentFile& a, const JournalSegmentFile& b) {
    return a.index != b.index ? a.index < b.index : a.first_seq < b.first_seq;
  });
  return out;
}

}  // namespace ackring::detail
