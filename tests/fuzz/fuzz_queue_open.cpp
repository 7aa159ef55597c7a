// Fuzz target: a hostile queue file through open, stats, verify, peek, a
// producer, a consumer's receive/ack loop, and purge.
//
// Input format (byte 0 is the mode):
//   bit 0  0: raw     - bytes 1.. are the whole queue file
//          1: overlay - bytes 1.. are patches onto a valid template queue
//                       (fuzz_common.hpp, built once per process)
//   bit 1  overlay: re-seal the header (recompute its checksum) after patching,
//          so that the checks behind the checksum are reached
//   bit 2  consumer in at-most-once mode
//   bit 3  consumer lease 1 ms, and a 2 ms pause mid-loop so leases expire
//   bit 4  overlay: resize the file to 64 x (next 2 bytes, little-endian)
//   bit 5  also publish (try_publish) before consuming, and purge at the end
//   bits 6-7  group to join: 0 g0 (block), 1 g1 (drop), 2 "fz" (created), 3 g0
//          without creating
//   overlay patches, repeated: u16 offset (LE, taken modulo the file size),
//     u8 op: length = (op & 31) + 1, kind = op >> 5:
//       0 write `length` bytes that follow, 1 xor them in,
//       2 store an interesting 64-bit value (index in the next byte) at the
//         8-byte aligned offset, 3 add `length` to the 64-bit word there,
//       others: write.
//
// Properties checked (a violation traps, which the fuzzer reports):
//   - the only exception is ackring::Error, and its message names the file;
//   - every delivered payload is at most max_message_size bytes and matches
//     the length and XXH3 checksum in its slot header (invariant 3);
//   - no crash, no out-of-bounds access, no UB (ASan/UBSan), bounded time.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ackring/ackring.hpp"
#include "fuzz_common.hpp"
#include "shm/layout.hpp"

namespace {

using namespace ackring;

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "fuzz_queue_open: property violated: %s\n", what);
  __builtin_trap();
}

const std::vector<std::byte>& template_file() {
  static const std::vector<std::byte> bytes = fuzz::build_template();
  return bytes;
}

struct Reader {
  const std::uint8_t* p;
  std::size_t left;
  bool take(std::size_t n) const { return left >= n; }
  std::uint8_t u8() {
    const std::uint8_t v = *p;
    ++p;
    --left;
    return v;
  }
  std::uint16_t u16() {
    const std::uint16_t lo = u8();
    return static_cast<std::uint16_t>(lo | (std::uint16_t{u8()} << 8));
  }
};

void apply_overlay(std::vector<std::byte>& file, Reader in, bool resize) {
  if (resize && in.take(2)) file.resize(std::size_t{in.u16()} * 64);
  if (file.empty()) return;
  const std::uint64_t cap = fuzz::template_options().capacity;
  const std::uint64_t interesting[] = {0,         1,          cap - 1,        cap,           cap + 1,
                                       2 * cap,   255,        1ull << 32,     1ull << 40,    detail::kSeqMask,
                                       ~0ull,     ~0ull - cap, 1ull << 62,    3ull << 62,    0x8000000000000000ull,
                                       0xffffffffull};
  while (in.take(3)) {
    const std::size_t off = in.u16() % file.size();
    const std::uint8_t op = in.u8();
    const std::size_t len = (op & 31u) + 1;
    const unsigned kind = op >> 5;
    if (kind == 2 || kind == 3) {
      const std::size_t at = off & ~std::size_t{7};
      if (at + 8 > file.size()) continue;
      std::uint64_t v;
      std::memcpy(&v, file.data() + at, 8);
      if (kind == 2) v = in.take(1) ? interesting[in.u8() % std::size(interesting)] : 0;
      else v += len;
      std::memcpy(file.data() + at, &v, 8);
      continue;
    }
    for (std::size_t i = 0; i < len && in.take(1); ++i) {
      const auto b = static_cast<std::byte>(in.u8());
      if (off + i >= file.size()) continue;
      if (kind == 1) file[off + i] ^= b;
      else file[off + i] = b;
    }
  }
}

void reseal(std::vector<std::byte>& file) {
  constexpr std::size_t at = offsetof(detail::FileHeader, header_checksum);
  if (file.size() < at + 8) return;
  const std::uint64_t sum = XXH3_64bits(file.data(), sizeof(detail::Layout));
  std::memcpy(file.data() + at, &sum, 8);
}

// Length and checksum of a slot as the file holds them now (the mapping and
// the file are one page cache on tmpfs).
struct SlotFields {
  std::uint32_t length;
  std::uint64_t checksum;
};

SlotFields slot_fields(int fd, const detail::Layout& l, std::uint64_t seq) {
  unsigned char raw[sizeof(detail::SlotHeader)];
  const std::uint64_t at = l.slots_offset + (seq & (l.capacity - 1)) * l.slot_size;
  if (::pread(fd, raw, sizeof raw, static_cast<off_t>(at)) != static_cast<ssize_t>(sizeof raw))
    violated("slot header outside the file");
  SlotFields f;
  std::memcpy(&f.length, raw + offsetof(detail::SlotHeader, length), sizeof f.length);
  std::memcpy(&f.checksum, raw + offsetof(detail::SlotHeader, checksum), sizeof f.checksum);
  return f;
}

void check_delivery(const Delivery& d, const Queue& q, int fd, const detail::Layout& l) {
  if (d.payload().size() > q.options().max_message_size) violated("payload longer than max_message_size");
  const SlotFields h = slot_fields(fd, l, d.seq());
  if (h.length != d.payload().size()) violated("payload length differs from the slot's length field");
  // Touches every payload byte: ASan sees a read outside the buffer.
  if (XXH3_64bits(d.payload().data(), d.payload().size()) != h.checksum)
    violated("delivered a payload whose checksum does not verify");
}

// Deterministic per input: the choices of ack/nack/... come from its hash.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

void run(const std::string& path, std::uint8_t mode, std::uint64_t seed) {
  Queue q = [&] {
    try {
      return Queue::open(path);
    } catch (const Error& e) {
      if (std::string(e.what()).find(path) == std::string::npos) violated("open error does not name the file");
      throw;
    }
  }();
  (void)q.stats();
  (void)q.group_names();
  (void)q.verify();
  for (const PeekedMessage& m : q.peek(0, 16))
    if (m.payload.size() > q.options().max_message_size) violated("peek returned an oversized payload");

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) violated("cannot reopen the queue file");
  detail::Layout layout;
  if (::pread(fd, &layout, sizeof layout, 0) != static_cast<ssize_t>(sizeof layout)) violated("short header");

  if (mode & 0x20) {
    try {
      Producer p = q.producer();
      for (int i = 0; i < 4; ++i) (void)p.try_publish("fuzz " + std::to_string(i));
    } catch (const Error&) {
    }
  }

  ConsumerOptions co;
  co.mode = (mode & 0x04) ? DeliveryMode::at_most_once : DeliveryMode::at_least_once;
  if (mode & 0x08) co.lease = Millis{1};
  const unsigned which = mode >> 6;
  const char* group = which == 1 ? "g1" : which == 2 ? "fz" : "g0";
  co.create_group = which != 3;
  Rng rng{seed};
  try {
    Consumer c = q.consumer(group, co);
    std::vector<Receipt> held;
    for (int i = 0; i < 24; ++i) {
      if (i == 12 && (mode & 0x08)) ::usleep(2000);
      Delivery batch[4];
      std::size_t n = 0;
      if (i % 2 == 0) {
        n = c.try_receive_batch(batch);
      } else if (auto d = c.try_receive()) {
        batch[0] = *d;
        n = 1;
      }
      for (std::size_t k = 0; k < n; ++k) {
        check_delivery(batch[k], q, fd, layout);
        held.push_back(batch[k].receipt());
      }
      if (held.empty()) continue;
      const std::size_t pick = rng.next() % held.size();
      const Receipt r = held[pick];
      switch (rng.next() % 8) {
        case 0: case 1: case 2: (void)c.ack(r); held.erase(held.begin() + static_cast<std::ptrdiff_t>(pick)); break;
        case 3: (void)c.nack(r, Millis{rng.next() % 3}); break;
        case 4: (void)c.extend(r, Millis{1}); break;
        case 5: (void)c.reject(r); break;
        case 6: (void)c.ack(Receipt{r.seq + layout.capacity, r.deliveries}); break;
        default: (void)c.ack(Receipt{rng.next(), static_cast<std::uint32_t>(rng.next())}); break;
      }
    }
    for (const Receipt& r : held) (void)c.ack(r);
  } catch (const Error& e) {
    if (std::string(e.what()).empty()) violated("empty error message");
  }
  if (mode & 0x20) {
    try {
      (void)q.purge();
    } catch (const Error&) {
    }
  }
  (void)q.stats();
  (void)q.verify();
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = fuzz::temp_path("queue_open");
  const std::uint8_t mode = size > 0 ? data[0] : 0;
  std::vector<std::byte> file;
  if (mode & 0x01) {
    file = template_file();
    apply_overlay(file, Reader{data + 1, size - 1}, (mode & 0x10) != 0);
    if (mode & 0x02) reseal(file);
  } else if (size > 1) {
    file.assign(reinterpret_cast<const std::byte*>(data + 1), reinterpret_cast<const std::byte*>(data + size));
  }
  fuzz::remove_queue_files(path);
  if (!fuzz::write_whole_file(path, file.data(), file.size())) return 0;
  const std::uint64_t seed = size > 0 ? XXH3_64bits(data, size) : 0;
  try {
    run(path, mode, seed);
  } catch (const Error&) {
    // refused at open: the expected answer for most hostile files
  }
  fuzz::remove_queue_files(path);
  return 0;
}
