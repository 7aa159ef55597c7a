// Record framing on stdin/stdout for pub, sub and peek --raw:
//   line    one record per line ('\n' ends a record and is not part of it)
//   length  each record is a 4-byte little-endian length, then that many bytes
#pragma once

#include <ackring/ackring.hpp>
#include <cstdint>
#include <cstdio>
#include <istream>
#include <string>
#include <string_view>

namespace ackring::cli {

enum class Delimiter : std::uint8_t { line, length };

[[nodiscard]] Delimiter parse_delimiter(std::string_view text);  // "line" | "length" (CLI11 checks the set)

class RecordReader {
 public:
  enum class Result : std::uint8_t {
    record,     // `out` holds the next record
    end,        // clean end of input
    too_large,  // the next record is longer than max_size (its size is in size()); nothing consumed after its prefix
    truncated,  // input ended inside a length-prefixed record
  };

  RecordReader(std::istream& in, Delimiter delimiter, std::size_t max_size) noexcept
      : in_(in), delimiter_(delimiter), max_size_(max_size) {}

  [[nodiscard]] Result next(std::string& out);
  // 1-based number of the record last returned (or refused).
  [[nodiscard]] std::uint64_t number() const noexcept { return number_; }
  // Size of the record last returned or refused (declared size when truncated).
  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
  // For `truncated`: how many bytes of the record were there.
  [[nodiscard]] std::uint64_t got() const noexcept { return got_; }

 private:
  std::istream& in_;
  Delimiter delimiter_;
  std::size_t max_size_;
  std::uint64_t number_ = 0;
  std::uint64_t size_ = 0;
  std::uint64_t got_ = 0;
};

// Writes one record with its framing and flushes. False if the write failed
// (e.g. the reader of the pipe went away).
[[nodiscard]] bool write_record(std::FILE* out, Bytes payload, Delimiter delimiter) noexcept;

}  // namespace ackring::cli
