// Points in time typed by an operator (group rewind --to-time):
//   2026-11-23T10:00:00Z, 2026-11-23T11:00:00.250+01:00, 2026-11-23 10:00Z   RFC 3339 / ISO 8601 with a zone
//   -5m, -2h, -1h30m, -90s, -500ms, -1d                                         that long before now
// A time without a zone is refused: whose clock it means would be a guess.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace ackring::cli {

using WallClock = std::chrono::system_clock;

// nullopt, with `error` saying what is wrong and what is expected, for text
// that is neither form.
[[nodiscard]] std::optional<WallClock::time_point> parse_time_spec(std::string_view text, WallClock::time_point now,
                                                                   std::string& error);

}  // namespace ackring::cli
