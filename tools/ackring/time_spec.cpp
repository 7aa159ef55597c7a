#include "time_spec.hpp"

#include <cctype>
#include <cstdint>

namespace ackring::cli {

namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// Reads exactly `digits` decimal digits.
bool read_number(std::string_view& s, std::size_t digits, int& out) {
  if (s.size() < digits) return false;
  int v = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  s.remove_prefix(digits);
  return true;
}

bool eat(std::string_view& s, char c) {
  if (s.empty() || s.front() != c) return false;
  s.remove_prefix(1);
  return true;
}

// "-1h30m": a sum of <number><unit>, units d, h, m, s, ms.
std::optional<nanoseconds> parse_relative(std::string_view s) {
  if (s.empty()) return std::nullopt;
  nanoseconds total{0};
  while (!s.empty()) {
    std::uint64_t n = 0;
    std::size_t digits = 0;
    while (!s.empty() && std::isdigit(static_cast<unsigned char>(s.front()))) {
      n = n * 10 + static_cast<std::uint64_t>(s.front() - '0');
      s.remove_prefix(1);
      if (++digits > 9) return std::nullopt;  // more than a billion of anything is a typo
    }
    if (digits == 0) return std::nullopt;
    const auto count = static_cast<std::int64_t>(n);
    if (s.starts_with("ms")) {
      total += milliseconds(count);
      s.remove_prefix(2);
    } else if (eat(s, 's')) {
      total += std::chrono::seconds(count);
    } else if (eat(s, 'm')) {
      total += std::chrono::minutes(count);
    } else if (eat(s, 'h')) {
      total += std::chrono::hours(count);
    } else if (eat(s, 'd')) {
      total += std::chrono::hours(24 * count);
    } else {
      return std::nullopt;
    }
  }
  return total;
}

std::optional<WallClock::time_point> parse_absolute(std::string_view s, std::string& error) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!read_number(s, 4, y) || !eat(s, '-') || !read_number(s, 2, mo) || !eat(s, '-') || !read_number(s, 2, d))
    return std::nullopt;
  if (!(eat(s, 'T') || eat(s, 't') || eat(s, ' ')) || !read_number(s, 2, h) || !eat(s, ':') ||
      !read_number(s, 2, mi))
    return std::nullopt;
  nanoseconds fraction{0};
  if (eat(s, ':')) {
    if (!read_number(s, 2, sec)) return std::nullopt;
    if (eat(s, '.') || eat(s, ',')) {
      std::int64_t scale = 100'000'000;
      std::size_t digits = 0;
      while (!s.empty() && std::isdigit(static_cast<unsigned char>(s.front()))) {
        fraction += nanoseconds((s.front() - '0') * scale);
        scale /= 10;
        s.remove_prefix(1);
        ++digits;
      }
      if (digits == 0) return std::nullopt;
    }
  }
  std::chrono::minutes offset{0};
  if (eat(s, 'Z') || eat(s, 'z')) {
  } else if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    const int sign = s.front() == '-' ? -1 : 1;
    s.remove_prefix(1);
    int oh = 0, om = 0;
    if (!read_number(s, 2, oh)) return std::nullopt;
    (void)eat(s, ':');
    if (!read_number(s, 2, om) || oh > 23 || om > 59) return std::nullopt;
    offset = std::chrono::minutes(sign * (oh * 60 + om));
  } else if (s.empty()) {
    error = "has no time zone; add Z for UTC or an offset such as +01:00";
    return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (!s.empty()) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year(y), std::chrono::month(static_cast<unsigned>(mo)),
                                         std::chrono::day(static_cast<unsigned>(d))};
  if (!date.ok() || h > 23 || mi > 59 || sec > 60) {  // 60: a leap second, as RFC 3339 allows
    error = "is not a valid date and time";
    return std::nullopt;
  }
  const auto local = std::chrono::sys_days(date) + std::chrono::hours(h) + std::chrono::minutes(mi) +
                     std::chrono::seconds(sec) + fraction;
  // 10:00+01:00 is 09:00 UTC.
  return std::chrono::time_point_cast<WallClock::duration>(local - offset);
}

}  // namespace

std::optional<WallClock::time_point> parse_time_spec(std::string_view text, WallClock::time_point now,
                                                     std::string& error) {
  const std::string quoted = "'" + std::string(text) + "'";
  const std::string expected =
      "; expected an RFC 3339 time such as 2026-11-23T10:00:00Z (or with an offset, +01:00), or a time before "
      "now such as -5m, -2h, -1h30m, -1d";
  if (text.starts_with('+')) {
    error = "time " + quoted + " is in the future; a rewind goes back, e.g. -5m";
    return std::nullopt;
  }
  if (text.starts_with('-')) {
    if (const auto ago = parse_relative(text.substr(1)))
      return now - std::chrono::duration_cast<WallClock::duration>(*ago);
    error = "time " + quoted + " is not understood" + expected;
    return std::nullopt;
  }
  std::string why;
  if (const auto t = parse_absolute(text, why)) return t;
  error = "time " + quoted + (why.empty() ? " is not understood" : " " + why) + expected;
  return std::nullopt;
}

}  // namespace ackring::cli
