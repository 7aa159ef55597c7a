// Helpers for the hostile-input tests: read and patch a queue file behind
// the library's back (pwrite on the file, which on tmpfs is the same page the
// mapping shows), find regions from the layout, and re-seal a patched header
// with a fresh checksum so that the checks after the checksum get exercised.
#pragma once

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "ackring/ackring.hpp"
#include "shm/layout.hpp"
#include "test_util.hpp"

namespace ackring::hostile {

using detail::FileHeader;
using detail::Layout;

// Seed of every randomised hostile test; printed on failure via SCOPED_TRACE.
inline constexpr std::uint64_t kSeed = 0x5eed'ac4b'1e55'0001ull;

using testing::file_bytes;
using testing::write_file;

inline void patch(const std::string& path, std::uint64_t offset, const void* data, std::size_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + path);
  const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
  ::close(fd);
  if (n != static_cast<ssize_t>(size)) throw std::runtime_error("pwrite " + path);
}

template <typename T>
void poke(const std::string& path, std::uint64_t offset, T value) {
  patch(path, offset, &value, sizeof value);
}

template <typename T>
T peek(const std::string& path, std::uint64_t offset) {
  T value{};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + path);
  const ssize_t n = ::pread(fd, &value, sizeof value, static_cast<off_t>(offset));
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof value)) throw std::runtime_error("pread " + path);
  return value;
}

inline void truncate_file(const std::string& path, std::uint64_t size) {
  if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) throw std::runtime_error("truncate " + path);
}

inline Layout read_layout(const std::string& path) { return peek<Layout>(path, 0); }

inline std::uint64_t layout_checksum(const Layout& l) { return XXH3_64bits(&l, sizeof l); }

// Writes `l` as the header's layout together with its correct checksum.
inline void write_sealed_layout(const std::string& path, const Layout& l) {
  poke(path, 0, l);
  poke(path, offsetof(FileHeader, header_checksum), layout_checksum(l));
}

// ---- where things are ------------------------------------------------------

inline std::uint64_t slot_offset(const Layout& l, std::uint64_t seq) {
  return l.slots_offset + (seq & (l.capacity - 1)) * l.slot_size;
}
inline std::uint64_t payload_offset(const Layout& l, std::uint64_t seq) {
  return slot_offset(l, seq) + sizeof(detail::SlotHeader);
}
inline std::uint64_t group_offset(const Layout& l, std::uint32_t g) {
  return l.groups_offset + std::uint64_t{g} * l.group_stride;
}
inline std::uint64_t member_offset(const Layout& l, std::uint32_t g, std::uint32_t m) {
  return group_offset(l, g) + sizeof(detail::GroupEntry) + std::uint64_t{m} * sizeof(detail::MemberEntry);
}
inline std::uint64_t next_offset(const Layout& l, std::uint32_t g) {
  return group_offset(l, g) + offsetof(detail::GroupEntry, next);
}
inline std::uint64_t floor_offset(const Layout& l, std::uint32_t g) {
  return group_offset(l, g) + offsetof(detail::GroupEntry, floor);
}
inline std::uint64_t lease_offset(const Layout& l, std::uint32_t g, std::uint64_t seq) {
  return l.leases_offset + std::uint64_t{g} * l.capacity * 8 + (seq & (l.capacity - 1)) * 8;
}
inline std::uint64_t tail_offset() { return offsetof(FileHeader, tail); }

// Index of the active group called `name` in the file, or ~0u.
inline std::uint32_t group_index(const std::string& path, const Layout& l, const std::string& name) {
  for (std::uint32_t g = 0; g < l.max_groups; ++g) {
    const auto state = peek<std::uint32_t>(path, group_offset(l, g) + offsetof(detail::GroupEntry, state));
    char buf[detail::kGroupNameMax + 1];
    for (std::size_t i = 0; i < sizeof buf; ++i)
      buf[i] = peek<char>(path, group_offset(l, g) + offsetof(detail::GroupEntry, name) + i);
    if (state == static_cast<std::uint32_t>(detail::GroupState::active) &&
        std::string(buf, strnlen(buf, sizeof buf)) == name)
      return g;
  }
  return ~0u;
}

inline void fill_random(std::mt19937_64& rng, void* dst, std::size_t size) {
  auto* p = static_cast<unsigned char*>(dst);
  for (std::size_t i = 0; i < size; ++i) p[i] = static_cast<unsigned char>(rng());
}

inline std::vector<std::byte> random_bytes(std::mt19937_64& rng, std::size_t size) {
  std::vector<std::byte> out(size);
  fill_random(rng, out.data(), out.size());
  return out;
}

// The text of the Error that `f` throws, with its code; fails the test if
// `f` does not throw ackring::Error.
struct Thrown {
  bool threw = false;
  ErrorCode code = ErrorCode::system;
  std::string what;
};

template <typename F>
Thrown catch_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return {true, e.code(), e.what()};
  }
  return {};
}

inline const char* code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::already_exists: return "already_exists";
    case ErrorCode::permission_denied: return "permission_denied";
    case ErrorCode::incompatible: return "incompatible";
    case ErrorCode::corrupt: return "corrupt";
    case ErrorCode::resource_exhausted: return "resource_exhausted";
    case ErrorCode::system: return "system";
  }
  return "?";
}

// Messages each consumer call delivered, checked against what was published.
inline std::string text_of(const Delivery& d) { return std::string(d.text()); }

}  // namespace ackring::hostile
