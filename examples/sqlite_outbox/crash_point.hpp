// A test hook: OUTBOX_CRASH_AT=<point>:<id>, e.g. relay.after_publish:17,
// makes the process die by SIGKILL when it reaches that point for that row,
// so a test can put a crash exactly where it matters (between publish and
// mark-sent, mid-batch, ...) instead of hoping a random kill lands there.
// Unset, it does nothing. The points:
//   writer.before_commit:<order id>   both rows inserted, transaction open
//   writer.after_commit:<order id>    committed, not yet relayed
//   relay.before_publish:<outbox id>  committed, not yet published
//   relay.after_publish:<outbox id>   published, not yet marked sent
//   relay.before_mark_commit:<id>     its batch marked sent, not yet committed
#pragma once

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace outbox {

class CrashPoint {
 public:
  CrashPoint() {
    const char* spec = std::getenv("OUTBOX_CRASH_AT");
    if (spec == nullptr) return;
    const std::string_view s(spec);
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return;
    point_ = std::string(s.substr(0, colon));
    id_ = std::strtoll(std::string(s.substr(colon + 1)).c_str(), nullptr, 10);
  }

  void reached(std::string_view point, std::int64_t id) const {
    // SIGKILL, not exit: no destructor, no SQLite close, no producer
    // unregistering — the same death as kill -9 from outside.
    if (id == id_ && point == point_) std::raise(SIGKILL);
  }

 private:
  std::string point_;
  std::int64_t id_ = -1;
};

}  // namespace outbox
