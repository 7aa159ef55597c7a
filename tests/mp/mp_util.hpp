// Shared pieces of the multi-process tests: self-checking message payloads,
// the event records children log, and a raw view of a queue file through
// which a test can act like a producer that dies at a chosen step (the
// library has no hook for that; the raw view repeats producer.cpp's steps
// exactly, on the documented layout).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ackring/ackring.hpp"
#include "shm/layout.hpp"
#include "shm/liveness.hpp"

namespace ackring::testing {

// ---- payloads: (producer id, counter) plus a pattern derived from both ------

struct MessageId {
  std::uint32_t producer = 0;
  std::uint32_t counter = 0;
  friend bool operator==(const MessageId&, const MessageId&) = default;
  friend auto operator<=>(const MessageId&, const MessageId&) = default;
};

[[nodiscard]] inline std::uint64_t key_of(MessageId id) noexcept {
  return (std::uint64_t{id.producer} << 32) | id.counter;
}

[[nodiscard]] inline std::uint8_t pattern_byte(MessageId id, std::size_t i) noexcept {
  return static_cast<std::uint8_t>(id.producer * 131u + id.counter * 31u + i * 7u + (id.counter >> 8));
}

// Length in [8, max_size], a function of the id so that a reader can check it.
[[nodiscard]] inline std::size_t payload_length(MessageId id, std::size_t max_size) noexcept {
  const std::size_t span = max_size > 8 ? max_size - 8 : 0;
  return 8 + (span == 0 ? 0 : (id.counter * 2654435761u + id.producer * 40503u) % (span + 1));
}

inline void make_payload(MessageId id, std::size_t max_size, std::vector<std::byte>& out) {
  out.resize(payload_length(id, max_size));
  std::memcpy(out.data(), &id.producer, 4);
  std::memcpy(out.data() + 4, &id.counter, 4);
  for (std::size_t i = 8; i < out.size(); ++i) out[i] = std::byte{pattern_byte(id, i)};
}

// The id of a well-formed payload, or nullopt if length or pattern is wrong.
[[nodiscard]] inline std::optional<MessageId> check_payload(Bytes b, std::size_t max_size) noexcept {
  if (b.size() < 8) return std::nullopt;
  MessageId id;
  std::memcpy(&id.producer, b.data(), 4);
  std::memcpy(&id.counter, b.data() + 4, 4);
  if (b.size() != payload_length(id, max_size)) return std::nullopt;
  for (std::size_t i = 8; i < b.size(); ++i)
    if (b[i] != std::byte{pattern_byte(id, i)}) return std::nullopt;
  return id;
}

// In a child: describe a delivery whose payload failed check_payload on stderr.
inline void report_malformed(const Delivery& d) {
  std::string bytes;
  for (const std::byte b : d.payload()) bytes += std::to_string(static_cast<int>(b)) + " ";
  std::fprintf(stderr, "pid %d: seq %llu (delivery %u): malformed payload of %zu bytes: %s\n", static_cast<int>(::getpid()),
               static_cast<unsigned long long>(d.seq()), d.deliveries(), d.payload().size(), bytes.c_str());
}

// ---- what children log --------------------------------------------------------

enum class EventKind : std::uint8_t {
  published = 1,    // producer: publish returned ok for `id` at `seq`
  attempt = 2,      // producer: about to publish `id` (before the call)
  received = 3,     // consumer: got `id` at `seq` with `deliveries`
  acked = 4,        // consumer: ack of that receipt returned ok
  lease_lost = 5,   // consumer: ack returned lease_lost (never expected with long leases)
};

struct Event {
  std::uint64_t seq = 0;
  std::uint64_t time_ns = 0;  // CLOCK_MONOTONIC
  MessageId id;
  std::uint32_t deliveries = 0;
  std::uint16_t instance = 0;  // which child wrote it
  std::uint8_t group = 0;
  EventKind kind = EventKind::published;
};
static_assert(sizeof(Event) == 32);

// ---- a raw view of a queue file --------------------------------------------

// Maps a queue file read-write, independently of the library, and addresses
// its regions from the layout stored in its header.
class RawQueueFile {
 public:
  explicit RawQueueFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + path);
    struct stat st{};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      throw std::system_error(err, std::generic_category(), "fstat " + path);
    }
    size_ = static_cast<std::size_t>(st.st_size);
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int err = errno;
    ::close(fd);
    if (p == MAP_FAILED) throw std::system_error(err, std::generic_category(), "mmap " + path);
    base_ = static_cast<std::byte*>(p);
  }
  ~RawQueueFile() { ::munmap(base_, size_); }
  RawQueueFile(const RawQueueFile&) = delete;
  RawQueueFile& operator=(const RawQueueFile&) = delete;

  [[nodiscard]] detail::FileHeader& header() const noexcept { return *reinterpret_cast<detail::FileHeader*>(base_); }
  [[nodiscard]] const detail::Layout& layout() const noexcept { return header().layout; }
  [[nodiscard]] std::uint64_t mask() const noexcept { return layout().capacity - 1; }
  [[nodiscard]] detail::SlotHeader& slot(std::uint64_t seq) const noexcept {
    return *reinterpret_cast<detail::SlotHeader*>(base_ + layout().slots_offset + (seq & mask()) * layout().slot_size);
  }
  [[nodiscard]] detail::GroupEntry& group(std::uint32_t g) const noexcept {
    return *reinterpret_cast<detail::GroupEntry*>(base_ + layout().groups_offset + std::size_t{g} * layout().group_stride);
  }
  [[nodiscard]] std::atomic<std::uint64_t>& lease(std::uint32_t g, std::uint64_t seq) const noexcept {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(base_ + layout().leases_offset +
                                                         std::size_t{g} * layout().capacity * 8)[seq & mask()];
  }
  [[nodiscard]] detail::MemberEntry& member(std::uint32_t g, std::uint32_t m) const noexcept {
    return reinterpret_cast<detail::MemberEntry*>(reinterpret_cast<std::byte*>(&group(g)) + sizeof(detail::GroupEntry))[m];
  }
  // Index of the active group called `name`, or -1.
  [[nodiscard]] int group_index(std::string_view name) const noexcept {
    for (std::uint32_t g = 0; g < layout().max_groups; ++g) {
      const auto& G = group(g);
      if (G.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(detail::GroupState::active) &&
          std::string_view(G.name, strnlen(G.name, sizeof G.name)) == name)
        return static_cast<int>(g);
    }
    return -1;
  }

  [[nodiscard]] detail::ProducerEntry& producer(std::uint32_t i) const noexcept {
    return reinterpret_cast<detail::ProducerEntry*>(base_ + layout().producers_offset)[i];
  }

  // The claim step of a publish, as Producer::claim does it for the
  // registered producer `producer` (Producer::index()): store the in-flight
  // word, then CAS the tail forward by k after checking room against the
  // shared floor word. Returns the first claimed seq, or nullopt if the ring
  // has no room. (A publish writes nothing into the slot before its commit.)
  [[nodiscard]] std::optional<std::uint64_t> claim_on_tail(std::uint64_t k, std::uint32_t producer) const noexcept {
    auto& h = header();
    std::uint64_t tail = h.tail.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint64_t floor = detail::floor_of(h.floor_word.load(std::memory_order_acquire));
      if (tail + k > floor + layout().capacity) return std::nullopt;
      this->producer(producer).in_flight.store(tail + 1, std::memory_order_relaxed);
      if (h.tail.compare_exchange_weak(tail, tail + k, std::memory_order_acq_rel, std::memory_order_relaxed))
        return tail;
    }
  }

  [[nodiscard]] detail::SlotWord slot_word(std::uint64_t seq) const noexcept {
    return detail::SlotWord::decode(slot(seq).state.load(std::memory_order_acquire));
  }

 private:
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace ackring::testing
