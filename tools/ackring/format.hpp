// Formatting helpers of the ackring CLI: payloads as text or hex, times,
// durations, aligned tables, and JSON conversions of public structs.
#pragma once

#include <ackring/ackring.hpp>
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ackring::cli {

// Keys keep the order they were written in: JSON output reads like the text output.
using Json = nlohmann::ordered_json;

// JSON text: indented by 2 when `pretty`, else one line. Strings that are not
// valid UTF-8 (a file name, say) get U+FFFD instead of failing the command.
[[nodiscard]] std::string dump(const Json& j, bool pretty = true);

// Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
[[nodiscard]] bool is_valid_utf8(Bytes bytes) noexcept;
// Valid UTF-8 without control characters (tab allowed): safe to print on a terminal.
[[nodiscard]] bool is_printable_text(Bytes bytes) noexcept;
[[nodiscard]] std::string to_hex(Bytes bytes);
// The payload as text when printable, else as "hex:..."; at most `max_chars`
// characters of it, then "... (N bytes)".
[[nodiscard]] std::string preview(Bytes bytes, std::size_t max_chars);
// Adds "size", "encoding" ("text" for valid UTF-8, else "hex") and "payload" to `obj`.
void put_payload(Json& obj, Bytes bytes);

// ISO 8601 UTC with milliseconds ("2024-05-01T12:00:00.123Z"); "-" for 0.
[[nodiscard]] std::string format_time(std::uint64_t unix_ns);
// Short human duration: "850ms", "12.3s", "5m02s", "3h04m", "2d03h".
[[nodiscard]] std::string format_duration(std::uint64_t ms);
// "12.5/s", "3.2k/s", "1.1M/s"; "-" when unknown (negative).
[[nodiscard]] std::string format_rate(double per_second);
[[nodiscard]] std::string_view to_string(OverflowPolicy p) noexcept;
[[nodiscard]] std::string_view to_string(Durability d) noexcept;  // "none", "async", "sync"

// A text table with a header row; columns marked `right` are right-aligned
// (numbers). The last column is never padded.
class Table {
 public:
  struct Column {
    std::string title;
    bool right = false;
  };
  explicit Table(std::initializer_list<Column> columns) : columns_(columns) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  [[nodiscard]] bool empty() const noexcept { return rows_.empty(); }
  // Each line indented by `indent` spaces, ending in '\n'.
  [[nodiscard]] std::string render(std::size_t indent = 0) const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// A label value of the Prometheus text format: backslash, quote and newline escaped.
[[nodiscard]] std::string prometheus_label(std::string_view value);

}  // namespace ackring::cli
