// The journal's durable write: "write these bytes at this offset, then
// fdatasync", as one io_uring submission (a write linked to an fsync), or
// with pwrite + fdatasync where io_uring is not available (a sandbox that
// forbids it, an old kernel). Used by one thread at a time (the writer's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

struct io_uring;  // liburing.h stays out of the headers that include this one

namespace ackring::detail {

enum class JournalIoPath : std::uint8_t {
  io_uring = 0,  // write (fixed buffer if registered) linked to fsync(DATASYNC), one submission
  pwrite = 1,    // pwrite + fdatasync system calls
};

[[nodiscard]] const char* to_string(JournalIoPath p) noexcept;

struct JournalIoCounters {
  std::uint64_t short_writes = 0;  // writes that wrote less than asked (the rest was resubmitted)
  std::uint64_t retries = 0;       // EINTR / EAGAIN / a broken link, resubmitted
};

class JournalIo {
 public:
  // Sets up an io_uring unless `force_pwrite`; if that fails, uses pwrite and
  // says why in fallback_reason().
  explicit JournalIo(bool force_pwrite);
  ~JournalIo();
  JournalIo(const JournalIo&) = delete;
  JournalIo& operator=(const JournalIo&) = delete;

  // Registers [data, data + size) as fixed buffer 0, replacing an earlier
  // one; writes from inside it then skip the per-write page pinning. If the
  // kernel refuses (RLIMIT_MEMLOCK, say), writes use plain buffers and
  // buffer_problem() says why. No-op on the pwrite path.
  void register_buffer(std::byte* data, std::size_t size);

  // Writes data[0, n) at `offset` of `fd`, then makes it durable with
  // fdatasync; returns when both completed. Short writes, EINTR and EAGAIN
  // are continued/retried; any other failure throws ackring::Error naming
  // `path`. After a failed fdatasync the file's state is unknown (the kernel
  // may have dropped the dirty pages), so callers must stop using it.
  void write_and_sync(int fd, const std::byte* data, std::size_t n, std::uint64_t offset,
                      const std::filesystem::path& path);

  [[nodiscard]] JournalIoPath path() const noexcept { return path_; }
  [[nodiscard]] bool registered() const noexcept { return registered_size_ != 0; }
  [[nodiscard]] const std::string& fallback_reason() const noexcept { return fallback_reason_; }
  [[nodiscard]] const std::string& buffer_problem() const noexcept { return buffer_problem_; }
  [[nodiscard]] const JournalIoCounters& counters() const noexcept { return counters_; }

 private:
  void uring_write_and_sync(int fd, const std::byte* data, std::size_t n, std::uint64_t offset,
                            const std::filesystem::path& path);
  void submit(unsigned count, const std::filesystem::path& path);

  struct RingDeleter {
    void operator()(io_uring* ring) const noexcept;
  };
  std::unique_ptr<io_uring, RingDeleter> ring_;  // null on the pwrite path
  JournalIoPath path_ = JournalIoPath::pwrite;
  const std::byte* registered_ = nullptr;
  std::size_t registered_size_ = 0;
  std::string fallback_reason_;
  std::string buffer_problem_;
  JournalIoCounters counters_;
};

}  // namespace ackring::detail
