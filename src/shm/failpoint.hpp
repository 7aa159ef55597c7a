// Failpoints: a test makes a process stall or die at a named protocol step
// (src/shm/failpoint_names.hpp). Compiled only into the test build of the
// library (ackring_failpoints, ACKRING_FAILPOINTS defined); in every other
// build ACKRING_FAILPOINT(name) is nothing at all, so the hot paths cost the
// same as without it (bench/microbench.cpp measures the release library).
//
// Arming is per process: a forked child arms what it should do, or the
// environment variable ACKRING_FAILPOINTS does it for exec'd programs:
//   ACKRING_FAILPOINTS="publish.after_slot_read=stall@3,ack.after_settle=die"
// (`@N`: on the N-th pass, default 1). A stall is SIGSTOP of the whole
// process, so every thread stops, as when the kernel deschedules or swaps it
// out; the test sees it with waitpid(WUNTRACED) and resumes it with SIGCONT.
#pragma once

#if defined(ACKRING_FAILPOINTS)
#include <cstdint>
#include <string_view>

namespace ackring::detail::failpoint {

enum class Action : std::uint8_t {
  none,
  stall,  // raise(SIGSTOP): the process stops until someone sends SIGCONT
  die,    // raise(SIGKILL): the process dies at this step
  sleep,  // this thread sleeps for the armed time, then goes on
};

// Arms `name` in this process: its `nth` pass from now does `action`
// (sleep: for `sleep_ms`). Unknown names abort the process: a typo must not
// make a test pass without ever stopping anywhere.
void arm(std::string_view name, Action action, std::uint32_t nth = 1, std::uint32_t sleep_ms = 0) noexcept;
void disarm_all() noexcept;
// Passes of `name` in this process since it started (or since reset_counts).
[[nodiscard]] std::uint64_t passes(std::string_view name) noexcept;
void reset_counts() noexcept;
[[nodiscard]] bool is_known(std::string_view name) noexcept;

// Called at each step (through ACKRING_FAILPOINT).
void reached(std::string_view name) noexcept;

}  // namespace ackring::detail::failpoint

#define ACKRING_FAILPOINT(name) ::ackring::detail::failpoint::reached(name)
#else
#define ACKRING_FAILPOINT(name) ((void)0)
#endif
