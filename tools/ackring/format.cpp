#include "format.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace ackring::cli {

namespace {

// Length of the UTF-8 sequence starting at s[i], or 0 if it is not well formed.
std::size_t utf8_sequence(Bytes s, std::size_t i) noexcept {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  std::size_t len = 0;
  std::uint32_t cp = 0;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
    cp = b0 & 0x1fu;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    cp = b0 & 0x0fu;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    cp = b0 & 0x07u;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3fu);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

}  // namespace

std::string dump(const Json& j, bool pretty) {
  return j.dump(pretty ? 2 : -1, ' ', false, Json::error_handler_t::replace);
}

bool is_valid_utf8(Bytes bytes) noexcept {
  for (std::size_t i = 0; i < bytes.size();) {
    const std::size_t n = utf8_sequence(bytes, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool is_printable_text(Bytes bytes) noexcept {
  for (std::size_t i = 0; i < bytes.size();) {
    const std::size_t n = utf8_sequence(bytes, i);
    if (n == 0) return false;
    const auto b = static_cast<unsigned char>(bytes[i]);
    if (n == 1 && ((b < 0x20 && b != '\t') || b == 0x7f)) return false;
    // C1 controls (U+0080..U+009F) are encoded 0xC2 0x80..0x9F.
    if (n == 2 && b == 0xc2 && static_cast<unsigned char>(bytes[i + 1]) < 0xa0) return false;
    i += n;
  }
  return true;
}

std::string to_hex(Bytes bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const std::byte b : bytes) {
    out += kDigits[static_cast<unsigned>(b) >> 4];
    out += kDigits[static_cast<unsigned>(b) & 0xf];
  }
  return out;
}

std::string preview(Bytes bytes, std::size_t max_chars) {
  const bool text = is_printable_text(bytes);
  std::string shown;
  bool cut = false;
  if (text) {
    std::size_t i = 0;
    std::size_t chars = 0;
    while (i < bytes.size() && chars < max_chars) {
      i += utf8_sequence(bytes, i);
      ++chars;
    }
    cut = i < bytes.size();
    shown.assign(reinterpret_cast<const char*>(bytes.data()), i);
  } else {
    const std::size_t take = std::min(bytes.size(), std::max<std::size_t>(max_chars / 2, 1));
    cut = take < bytes.size();
    shown = "hex:" + to_hex(bytes.first(take));
  }
  if (cut) shown += "... (" + std::to_string(bytes.size()) + " bytes)";
  return shown;
}

void put_payload(Json& obj, Bytes bytes) {
  obj["size"] = bytes.size();
  if (is_valid_utf8(bytes)) {
    obj["encoding"] = "text";
    obj["payload"] = std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  } else {
    obj["encoding"] = "hex";
    obj["payload"] = to_hex(bytes);
  }
}

std::string format_time(std::uint64_t unix_ns) {
  if (unix_ns == 0) return "-";
  const auto secs = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<unsigned>(unix_ns / 1'000'000 % 1000));
  return buf;
}

std::string format_duration(std::uint64_t ms) {
  char buf[48];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%llums", static_cast<unsigned long long>(ms));
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%llum%02llus", static_cast<unsigned long long>(ms / 60'000),
                  static_cast<unsigned long long>(ms / 1000 % 60));
  } else if (ms < 86'400'000) {
    std::snprintf(buf, sizeof buf, "%lluh%02llum", static_cast<unsigned long long>(ms / 3'600'000),
                  static_cast<unsigned long long>(ms / 60'000 % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%llud%02lluh", static_cast<unsigned long long>(ms / 86'400'000),
                  static_cast<unsigned long long>(ms / 3'600'000 % 24));
  }
  return buf;
}

std::string format_rate(double per_second) {
  if (per_second < 0) return "-";
  char buf[32];
  if (per_second >= 1e6)
    std::snprintf(buf, sizeof buf, "%.1fM/s", per_second / 1e6);
  else if (per_second >= 1e4)
    std::snprintf(buf, sizeof buf, "%.1fk/s", per_second / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.1f/s", per_second);
  return buf;
}

std::string_view to_string(OverflowPolicy p) noexcept { return p == OverflowPolicy::drop ? "drop" : "block"; }

std::string_view to_string(Durability d) noexcept {
  switch (d) {
    case Durability::async:
      return "async";
    case Durability::sync:
      return "sync";
    case Durability::none:
      break;
  }
  return "none";
}

std::string Table::render(std::size_t indent) const {
  std::vector<std::size_t> width(columns_.size(), 0);
  auto measure = [&width](std::size_t c, const std::string& cell) { width[c] = std::max(width[c], cell.size()); };
  for (std::size_t c = 0; c < columns_.size(); ++c) measure(c, columns_[c].title);
  for (const auto& row : rows_)
    for (std::size_t c = 0; c < row.size() && c < columns_.size(); ++c) measure(c, row[c]);
  std::string out;
  auto line = [&](auto cell_of) {
    out.append(indent, ' ');
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      const std::string& cell = cell_of(c);
      const std::size_t pad = width[c] - std::min(width[c], cell.size());
      const bool last = c + 1 == columns_.size();
      if (columns_[c].right) out.append(pad, ' ');
      out += cell;
      if (!columns_[c].right && !last) out.append(pad, ' ');
      if (!last) out += "  ";
    }
    out += '\n';
  };
  line([this](std::size_t c) -> const std::string& { return columns_[c].title; });
  static const std::string kNone;
  for (const auto& row : rows_)
    line([&row](std::size_t c) -> const std::string& { return c < row.size() ? row[c] : kNone; });
  return out;
}

std::string prometheus_label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace ackring::cli
