// Process liveness: a pid plus the process start time, so a pid the kernel
// has reused for another process is not mistaken for the one that registered.
#pragma once

#include <cstdint>
#include <sys/types.h>

namespace ackring::detail {

struct ProcessIdentity {
  pid_t pid = 0;
  std::uint64_t start_time = 0;  // clock ticks since boot (/proc/<pid>/stat field 22)
};

// This process (cached; refreshed after fork).
[[nodiscard]] ProcessIdentity self_identity() noexcept;

// Start time of `pid`, or 0 if it is gone or none of its threads runs.
[[nodiscard]] std::uint64_t process_start_time(pid_t pid) noexcept;

// False once no thread of the process runs (a zombie, or a main thread that
// exited after its other threads did) or its pid belongs to a different
// process. A process whose main thread exited while other threads run is
// alive: `Z` in /proc/<pid>/stat alone only says the main thread is gone. start_time 0 means "not yet recorded" and
// only the pid is checked.
[[nodiscard]] bool is_alive(pid_t pid, std::uint64_t start_time) noexcept;

}  // namespace ackring::detail
