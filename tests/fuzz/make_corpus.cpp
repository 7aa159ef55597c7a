// Writes the checked-in seed corpus: tests/fuzz/corpus/{queue_open,dead_letter}/.
// Run once after changing the input format or the layout:
//   cmake --build <build> --target fuzz_make_corpus
//   <build>/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus
// Deterministic except for the template's pid/time fields (raw seeds).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "queue/dead_letter_codec.hpp"
#include "fuzz_common.hpp"
#include "shm/layout.hpp"

namespace {

using namespace ackring;
namespace fs = std::filesystem;

// Builds an overlay input (see fuzz_queue_open.cpp for the format).
struct Overlay {
  std::vector<std::uint8_t> bytes;
  explicit Overlay(std::uint8_t mode) { bytes.push_back(mode | 0x01); }
  void offset(std::uint64_t off) {
    bytes.push_back(static_cast<std::uint8_t>(off & 0xff));
    bytes.push_back(static_cast<std::uint8_t>((off >> 8) & 0xff));
  }
  Overlay& write(std::uint64_t off, const void* data, std::size_t n) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    while (n != 0) {
      const std::size_t k = n < 32 ? n : 32;
      offset(off);
      bytes.push_back(static_cast<std::uint8_t>(k - 1));  // kind 0: write
      bytes.insert(bytes.end(), p, p + k);
      off += k;
      p += k;
      n -= k;
    }
    return *this;
  }
  template <typename T>
  Overlay& put(std::uint64_t off, T v) {
    return write(off, &v, sizeof v);
  }
  Overlay& xor1(std::uint64_t off, std::uint8_t mask) {
    offset(off);
    bytes.push_back(0x20);  // kind 1, length 1
    bytes.push_back(mask);
    return *this;
  }
  Overlay& interesting(std::uint64_t off, std::uint8_t index) {
    offset(off);
    bytes.push_back(0x40);  // kind 2
    bytes.push_back(index);
    return *this;
  }
  Overlay& add(std::uint64_t off, std::uint8_t amount) {
    offset(off);
    bytes.push_back(static_cast<std::uint8_t>(0x60 | (amount - 1)));  // kind 3
    return *this;
  }
};

void save(const fs::path& dir, const std::string& name, const void* data, std::size_t size) {
  fs::create_directories(dir);
  if (!fuzz::write_whole_file((dir / name).string(), data, size)) {
    std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
}
void save(const fs::path& dir, const std::string& name, const std::vector<std::uint8_t>& b) {
  save(dir, name, b.data(), b.size());
}
void save(const fs::path& dir, const std::string& name, const std::vector<std::byte>& b) {
  save(dir, name, b.data(), b.size());
}

std::vector<std::uint8_t> raw(std::uint8_t mode, const std::vector<std::byte>& file, std::size_t keep) {
  std::vector<std::uint8_t> out{mode};
  const auto* p = reinterpret_cast<const std::uint8_t*>(file.data());
  out.insert(out.end(), p, p + std::min(keep, file.size()));
  return out;
}

// Indices into the harness's table of interesting 64-bit values.
enum : std::uint8_t { kZero = 0, kTwoCap = 5, k2e40 = 8, kAllOnes = 10 };

void queue_open_seeds(const fs::path& dir) {
  const auto file = fuzz::build_template();
  detail::Layout l;
  std::memcpy(&l, file.data(), sizeof l);
  const auto slot = [&](std::uint64_t seq) { return l.slots_offset + (seq & (l.capacity - 1)) * l.slot_size; };
  const auto group = [&](std::uint32_t g) { return l.groups_offset + std::uint64_t{g} * l.group_stride; };
  const auto lease = [&](std::uint32_t g, std::uint64_t seq) {
    return l.leases_offset + std::uint64_t{g} * l.capacity * 8 + (seq & (l.capacity - 1)) * 8;
  };
  const auto member = [&](std::uint32_t g, std::uint32_t m) {
    return group(g) + sizeof(detail::GroupEntry) + std::uint64_t{m} * sizeof(detail::MemberEntry);
  };
  using detail::GroupEntry;
  using detail::SlotHeader;
  std::mt19937_64 rng(0xf022);
  std::uint8_t junk[64];
  for (auto& b : junk) b = static_cast<std::uint8_t>(rng());

  save(dir, "raw_valid", raw(0x00, file, file.size()));
  save(dir, "raw_valid_at_most_once_short_lease", raw(0x0c, file, file.size()));
  save(dir, "raw_valid_publish_drop_group", raw(0x60, file, file.size()));
  save(dir, "raw_truncated_5000", raw(0x00, file, 5000));
  save(dir, "raw_header_only", raw(0x00, file, 4096));
  save(dir, "raw_empty_file", std::vector<std::uint8_t>{0x00});
  save(dir, "overlay_unchanged", Overlay(0).bytes);
  save(dir, "overlay_slot_length_huge",
       Overlay(0).put<std::uint32_t>(slot(3) + offsetof(SlotHeader, length), 0xffffffffu).bytes);
  save(dir, "overlay_payload_byte_flipped", Overlay(0).xor1(slot(4) + sizeof(SlotHeader) + 2, 0x20).bytes);
  save(dir, "overlay_slot_header_random", Overlay(0).write(slot(3) + 8, junk, sizeof(SlotHeader) - 8).bytes);
  save(dir, "overlay_commit_marker_later_seq",
       Overlay(0).put<std::uint64_t>(slot(3), ((3 + 8ull) << 8) | 2).bytes);
  save(dir, "overlay_next_far_beyond_tail", Overlay(0).interesting(group(0) + offsetof(GroupEntry, next), k2e40).bytes);
  save(dir, "overlay_floor_above_next",
       Overlay(0).interesting(group(0) + offsetof(GroupEntry, floor), kTwoCap).bytes);
  save(dir, "overlay_cursors_all_ones",
       Overlay(0x08)
           .interesting(group(0) + offsetof(GroupEntry, next), kAllOnes)
           .interesting(group(0) + offsetof(GroupEntry, floor), kZero)
           .interesting(offsetof(detail::FileHeader, tail), kAllOnes)
           .bytes);
  save(dir, "overlay_leases_random", Overlay(0x08).write(lease(0, 0), junk, 64).bytes);
  {
    // Leased, generation 0, owner 0, 255 deliveries, deadline 0: an exhausted
    // lease, so the taker dead-letters it.
    const std::uint64_t exhausted = (1ull << 62) | (255ull << 32);
    save(dir, "overlay_lease_exhausted_dead_letter", Overlay(0x08).put(lease(0, 2), exhausted).bytes);
  }
  save(dir, "overlay_members_random", Overlay(0x40).write(member(1, 0), junk, 64).write(member(1, 1), junk, 64).bytes);
  save(dir, "overlay_group_state_creating",
       Overlay(0x80).put<std::uint32_t>(group(0) + offsetof(GroupEntry, state), 1).bytes);
  save(dir, "overlay_drop_group_far_behind_tail_publish",
       Overlay(0x60)
           .interesting(offsetof(detail::FileHeader, tail), k2e40)
           .interesting(group(1) + offsetof(GroupEntry, floor), kZero)
           .interesting(group(1) + offsetof(GroupEntry, next), kZero)
           .bytes);
  save(dir, "overlay_version_2", Overlay(0).put<std::uint32_t>(offsetof(detail::Layout, version), 2).bytes);
  save(dir, "overlay_resealed_capacity_3",
       Overlay(0x02).put<std::uint32_t>(offsetof(detail::Layout, capacity), 3).bytes);
  save(dir, "overlay_resealed_slots_offset_moved",
       Overlay(0x02).add(offsetof(detail::Layout, slots_offset), 32).bytes);
  {
    // Resize to 16 KiB and say so in the header; the 2 size bytes follow the mode byte.
    std::vector<std::uint8_t> b{0x13, 0x00, 0x01};  // 0x0100 x 64 = 16384 bytes
    Overlay o(0x02);
    o.put<std::uint64_t>(offsetof(detail::Layout, file_size), 16384);
    b.insert(b.end(), o.bytes.begin() + 1, o.bytes.end());
    save(dir, "overlay_resealed_file_size_grown", b);
  }
  {
    std::vector<std::uint8_t> b{0x11, 0x80, 0x00};  // 0x0080 x 64 = 8192 bytes: slots cut off
    save(dir, "overlay_truncated_to_8192", b);
  }
}

void dead_letter_seeds(const fs::path& dir) {
  const std::string body = "the original payload";
  std::vector<std::byte> rec;
  detail::encode_dead_letter(rec, "/dev/shm/ackring.orders", "billing", 42, 5,
                             static_cast<std::uint8_t>(DeadLetterReason::max_deliveries), 1234567890,
                             as_bytes(body));
  save(dir, "valid", rec);
  std::vector<std::byte> empty_body;
  detail::encode_dead_letter(empty_body, "q", "g", 1, 1, static_cast<std::uint8_t>(DeadLetterReason::rejected), 0, {});
  save(dir, "valid_rejected_empty_body", empty_body);
  save(dir, "truncated_by_one", rec.data(), rec.size() - 1);
  save(dir, "header_only", rec.data(), sizeof(detail::DeadLetterHeader));
  auto lie = [&](const char* name, auto&& change) {
    auto bad = rec;
    detail::DeadLetterHeader h;
    std::memcpy(&h, bad.data(), sizeof h);
    change(h);
    std::memcpy(bad.data(), &h, sizeof h);
    save(dir, name, bad);
  };
  lie("body_len_max", [](detail::DeadLetterHeader& h) { h.body_len = 0xffffffffu; });
  lie("lengths_wrap_32_bits", [&](detail::DeadLetterHeader& h) {
    h.queue_len = 0xffff;
    h.group_len = 0xffff;
    h.body_len = static_cast<std::uint32_t>(rec.size() - sizeof h - 0x1fffe);
  });
  lie("reason_unknown", [](detail::DeadLetterHeader& h) { h.reason = 9; });
  std::mt19937_64 rng(0xd1e);
  std::vector<std::uint8_t> random(64);
  for (auto& b : random) b = static_cast<std::uint8_t>(rng());
  save(dir, "random_64", random);
  save(dir, "empty", std::vector<std::uint8_t>{});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus root, e.g. tests/fuzz/corpus>\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  queue_open_seeds(root / "queue_open");
  dead_letter_seeds(root / "dead_letter");
  std::printf("seeds written under %s\n", root.c_str());
  return 0;
}
