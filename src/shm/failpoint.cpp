// Failpoint registry of the test build (src/shm/failpoint.hpp). Not compiled
// into the release library.
#include "shm/failpoint.hpp"

#include <signal.h>
#include <time.h>

#include <array>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "shm/clock.hpp"
#include "shm/failpoint_names.hpp"

namespace ackring::detail::failpoint {

namespace {

#define ACKRING_FAILPOINT_NAME(n) std::string_view{n},
constexpr std::array kNames{ACKRING_FAILPOINT_NAMES(ACKRING_FAILPOINT_NAME)};
#undef ACKRING_FAILPOINT_NAME

struct Point {
  std::atomic<std::uint64_t> passes{0};
  std::atomic<std::uint32_t> fire_at{0};  // pass number that fires; 0: disarmed
  std::atomic<Action> action{Action::none};
  std::atomic<std::uint32_t> sleep_ms{0};
};

std::array<Point, kNames.size()>& points() noexcept {
  static std::array<Point, kNames.size()> all;
  return all;
}

int index_of(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kNames.size(); ++i)
    if (kNames[i] == name) return static_cast<int>(i);
  return -1;
}

void die_unknown(std::string_view name) noexcept {
  std::fprintf(stderr, "ackring failpoint: unknown name '%.*s'\n", static_cast<int>(name.size()), name.data());
  std::abort();
}

// ACKRING_FAILPOINTS="name=action[@n][:ms],..." armed once per process.
void arm_from_environment() noexcept {
  const char* spec = std::getenv("ACKRING_FAILPOINTS");
  if (spec == nullptr) return;
  std::string_view rest(spec);
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) die_unknown(item);
    const std::string_view name = item.substr(0, eq);
    std::string_view what = item.substr(eq + 1);
    std::uint32_t nth = 1;
    std::uint32_t ms = 0;
    if (const auto colon = what.find(':'); colon != std::string_view::npos) {
      std::from_chars(what.data() + colon + 1, what.data() + what.size(), ms);
      what = what.substr(0, colon);
    }
    if (const auto at = what.find('@'); at != std::string_view::npos) {
      std::from_chars(what.data() + at + 1, what.data() + what.size(), nth);
      what = what.substr(0, at);
    }
    const Action a = what == "stall" ? Action::stall : what == "die" ? Action::die : what == "sleep" ? Action::sleep
                                                                                                       : Action::none;
    if (a == Action::none) die_unknown(item);
    arm(name, a, nth, ms);
  }
}

}  // namespace

void arm(std::string_view name, Action action, std::uint32_t nth, std::uint32_t sleep_ms) noexcept {
  const int i = index_of(name);
  if (i < 0) die_unknown(name);
  Point& p = points()[static_cast<std::size_t>(i)];
  p.action.store(action, std::memory_order_relaxed);
  p.sleep_ms.store(sleep_ms, std::memory_order_relaxed);
  // relaxed: arming happens before the protocol runs in the same thread, or
  // before fork; the point is a test switch, not a synchronisation.
  p.fire_at.store(static_cast<std::uint32_t>(p.passes.load(std::memory_order_relaxed)) + (nth == 0 ? 1 : nth),
                  std::memory_order_relaxed);
}

void disarm_all() noexcept {
  for (Point& p : points()) p.fire_at.store(0, std::memory_order_relaxed);
}

std::uint64_t passes(std::string_view name) noexcept {
  const int i = index_of(name);
  if (i < 0) die_unknown(name);
  return points()[static_cast<std::size_t>(i)].passes.load(std::memory_order_relaxed);
}

void reset_counts() noexcept {
  for (Point& p : points()) p.passes.store(0, std::memory_order_relaxed);
}

bool is_known(std::string_view name) noexcept { return index_of(name) >= 0; }

void reached(std::string_view name) noexcept {
  static std::once_flag environment_read;
  std::call_once(environment_read, arm_from_environment);
  const int i = index_of(name);
  if (i < 0) die_unknown(name);
  Point& p = points()[static_cast<std::size_t>(i)];
  const std::uint64_t pass = p.passes.fetch_add(1, std::memory_order_relaxed) + 1;
  std::uint32_t fire = p.fire_at.load(std::memory_order_relaxed);
  if (fire == 0 || pass != fire) return;
  // One shot: whoever reaches the armed pass disarms it.
  if (!p.fire_at.compare_exchange_strong(fire, 0, std::memory_order_relaxed)) return;
  switch (p.action.load(std::memory_order_relaxed)) {
    case Action::stall: ::raise(SIGSTOP); break;
    case Action::die: ::raise(SIGKILL); break;
    case Action::sleep: {
      const std::uint32_t ms = p.sleep_ms.load(std::memory_order_relaxed);
      timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1'000'000L};
      while (::nanosleep(&ts, &ts) != 0) {
      }
      break;
    }
    case Action::none: break;
  }
}

}  // namespace ackring::detail::failpoint

namespace ackring::detail::test_clock {
std::atomic<std::uint64_t> frozen_ms{0};  // clock.hpp: 0 = the real clock
}  // namespace ackring::detail::test_clock
