// What both bridge directions share besides the NATS link: clocks, the
// identity of the queue file (to notice it was removed or replaced), and the
// periodic status file.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

#include "ackring/bridge_status.hpp"

namespace ackring::bridge::detail {

[[nodiscard]] inline std::uint64_t mono_ms() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

[[nodiscard]] inline std::uint64_t unix_ms() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// Device + inode of a file. The queue a bridge has mapped stays usable after
// `ackring rm`, but nobody else sees it any more: publishing into it (in) or
// acking from it (out) would be talking to a ghost. Comparing the identity of
// the path with that of the mapping tells "removed" and "replaced" apart.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool exists = false;
  static FileId of(const std::filesystem::path& p) noexcept {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return {};
    return {st.st_dev, st.st_ino, true};
  }
  bool operator==(const FileId&) const = default;
};

// Writes the status file at most every `interval`, and removes it on a clean stop.
class StatusPublisher {
 public:
  StatusPublisher(std::filesystem::path queue_file, std::string name)
      : queue_file_(std::move(queue_file)), name_(std::move(name)) {}
  ~StatusPublisher() { remove_bridge_status(queue_file_, name_); }
  StatusPublisher(const StatusPublisher&) = delete;
  StatusPublisher& operator=(const StatusPublisher&) = delete;

  void maybe_write(BridgeStatus s, bool force = false) {
    const std::uint64_t now = mono_ms();
    if (!force && now < next_ms_) return;
    next_ms_ = now + 200;
    s.updated_unix_ms = unix_ms();
    try {
      write_bridge_status(queue_file_, s);
    } catch (...) {
      // The status file is for operators; forwarding must not stop over it.
    }
  }
  void retarget(std::filesystem::path queue_file) {
    remove_bridge_status(queue_file_, name_);
    queue_file_ = std::move(queue_file);
  }

 private:
  std::filesystem::path queue_file_;
  std::string name_;
  std::uint64_t next_ms_ = 0;
};

}  // namespace ackring::bridge::detail
