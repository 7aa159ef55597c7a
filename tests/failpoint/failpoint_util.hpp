// Shared by the failpoint tests: fork a child armed to stall or die at a
// named protocol step, wait until it is stopped there (or dead), and the
// bookkeeping that checks delivered messages by content.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ackring/ackring.hpp"
#include "shm/failpoint.hpp"
#include "mp/mp_util.hpp"
#include "process_util.hpp"

namespace ackring::testing {

namespace fp = ackring::detail::failpoint;

// Waits until the child stopped itself (a stall failpoint: SIGSTOP) or died.
// Returns "stopped", "dead" or "timeout".
inline std::string wait_stopped_or_dead(Child& child, std::chrono::milliseconds timeout) {
  const std::uint64_t deadline = now_ns() + static_cast<std::uint64_t>(timeout.count()) * 1'000'000ull;
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(child.pid()), &info, WSTOPPED | WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == child.pid()) {
      if (info.si_code == CLD_STOPPED) {
        int st = 0;
        (void)::waitpid(child.pid(), &st, WUNTRACED | WNOHANG);  // consume the stop report
        return "stopped";
      }
      child.poll();
      return "dead";
    }
    if (now_ns() >= deadline) return "timeout";
    sleep_ms(1);
  }
}

// What a producer stopped at a failpoint reports once its publish returned.
struct StalledClaim {
  std::atomic<int> status{-1};  // ackring::Status, once the publish returned
  std::atomic<std::uint64_t> seq{0};
};

// What a group saw, by content: each delivery's payload must be well formed
// (check_payload) and carry the id that was published at that seq.
struct GroupLedger {
  std::map<std::uint64_t, MessageId> by_seq;  // seq -> id delivered there
  std::map<MessageId, std::uint32_t> acked;   // id -> times acked
  std::vector<std::string> problems;

  void delivered(const Delivery& d, std::size_t max_size) {
    const auto id = check_payload(d.payload(), max_size);
    if (!id) {
      problems.push_back("seq " + std::to_string(d.seq()) + ": malformed payload of " +
                         std::to_string(d.payload().size()) + " bytes");
      return;
    }
    const auto [it, fresh] = by_seq.emplace(d.seq(), *id);
    if (!fresh && it->second != *id)
      problems.push_back("seq " + std::to_string(d.seq()) + " delivered as two different messages");
  }
};

// Receives and acks whatever `consumer` has now (up to `max`), into `ledger`.
inline std::size_t drain(Consumer& consumer, GroupLedger& ledger, std::size_t max_size, std::size_t max,
                         std::chrono::milliseconds wait = std::chrono::milliseconds(2)) {
  std::size_t got = 0;
  while (got < max) {
    auto d = consumer.receive(wait);
    if (!d) break;
    ++got;
    ledger.delivered(*d, max_size);
    if (const auto id = check_payload(d->payload(), max_size); id && consumer.ack(*d) == Status::ok)
      ++ledger.acked[*id];
  }
  return got;
}

}  // namespace ackring::testing
