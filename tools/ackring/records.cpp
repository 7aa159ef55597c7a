#include "records.hpp"

namespace ackring::cli {

Delimiter parse_delimiter(std::string_view text) { return text == "length" ? Delimiter::length : Delimiter::line; }

RecordReader::Result RecordReader::next(std::string& out) {
  out.clear();
  got_ = 0;
  if (delimiter_ == Delimiter::line) {
    if (!std::getline(in_, out)) return Result::end;  // a last line without '\n' still counts (getline returns it)
    ++number_;
    size_ = out.size();
    return size_ > max_size_ ? Result::too_large : Result::record;
  }
  unsigned char prefix[4];
  in_.read(reinterpret_cast<char*>(prefix), sizeof prefix);
  const auto have = static_cast<std::uint64_t>(in_.gcount());
  if (have == 0) return Result::end;
  ++number_;
  if (have < sizeof prefix) {
    size_ = sizeof prefix;  // not even a whole length prefix
    got_ = have;
    return Result::truncated;
  }
  size_ = std::uint64_t{prefix[0]} | std::uint64_t{prefix[1]} << 8 | std::uint64_t{prefix[2]} << 16 |
          std::uint64_t{prefix[3]} << 24;
  if (size_ > max_size_) return Result::too_large;
  out.resize(size_);
  in_.read(out.data(), static_cast<std::streamsize>(size_));
  got_ = static_cast<std::uint64_t>(in_.gcount());
  return got_ == size_ ? Result::record : Result::truncated;
}

bool write_record(std::FILE* out, Bytes payload, Delimiter delimiter) noexcept {
  if (delimiter == Delimiter::length) {
    const auto n = static_cast<std::uint32_t>(payload.size());
    const unsigned char prefix[4] = {static_cast<unsigned char>(n), static_cast<unsigned char>(n >> 8),
                                     static_cast<unsigned char>(n >> 16), static_cast<unsigned char>(n >> 24)};
    if (std::fwrite(prefix, 1, sizeof prefix, out) != sizeof prefix) return false;
  }
  if (!payload.empty() && std::fwrite(payload.data(), 1, payload.size(), out) != payload.size()) return false;
  if (delimiter == Delimiter::line && std::fputc('\n', out) == EOF) return false;
  return std::fflush(out) == 0;
}

}  // namespace ackring::cli
