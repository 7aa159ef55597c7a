// Hostile queue files at open: truncated, of another version, with a wrong
// magic, with damaged or re-sealed headers. Queue::open must refuse each with
// an ackring::Error naming the file and the reason, and never map or read
// outside the file (these tests also run under ASan+UBSan).
#include <gtest/gtest.h>

#include <random>

#include "hostile_util.hpp"
#include "shm/queue_state.hpp"
#include "test_util.hpp"

namespace {

using namespace ackring;
using namespace ackring::hostile;
using ackring::testing::TempQueue;

const QueueOptions kSmall{.capacity = 8, .max_message_size = 64, .max_groups = 2, .max_members = 2,
                          .max_producers = 2};

// A small valid queue with a group and three messages in it.
std::vector<std::byte> make_queue_file(const std::string& path) {
  {
    auto q = Queue::create(path, kSmall);
    q.create_group("g");
    auto p = q.producer();
    for (const char* m : {"one", "two", "three"}) EXPECT_TRUE(p.try_publish(m).ok());
  }
  return file_bytes(path);
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Each test starts from a valid queue file at tq.path() (three messages
// published, the handles closed) whose bytes are `good`, and damages it.
class HostileOpen : public ::testing::Test {
 protected:
  TempQueue tq;
  const std::vector<std::byte> good = make_queue_file(tq.path());
};

TEST_F(HostileOpen, should_refuse_a_truncated_file_as_corrupt_naming_the_file_and_the_reason) {
  const Layout l = read_layout(tq.path());
  ASSERT_EQ(l.file_size, good.size());
  // 0, a few bytes, just short of the header region, then header intact but
  // the file shorter than the header's file_size.
  for (const std::size_t size : {std::size_t{0}, std::size_t{100}, std::size_t{4095}, std::size_t{4096},
                                 std::size_t{8192}, good.size() - 4096, good.size() - 1}) {
    SCOPED_TRACE("truncated to " + std::to_string(size) + " bytes");
    write_file(tq.path(), good.data(), size);
    const Thrown t = catch_error([&] { (void)Queue::open(tq.path()); });
    ASSERT_TRUE(t.threw) << "open accepted a truncated file";
    EXPECT_EQ(t.code, ErrorCode::corrupt) << code_name(t.code) << ": " << t.what;
    EXPECT_TRUE(contains(t.what, tq.path())) << t.what;
    EXPECT_TRUE(contains(t.what, "truncated")) << t.what;
    EXPECT_TRUE(contains(t.what, std::to_string(size) + " bytes")) << t.what;
  }
}

TEST_F(HostileOpen, should_refuse_a_file_longer_than_its_header_says_as_corrupt) {
  auto bytes = good;
  bytes.resize(bytes.size() + 4096);
  write_file(tq.path(), bytes);
  const Thrown t = catch_error([&] { (void)Queue::open(tq.path()); });
  ASSERT_TRUE(t.threw);
  EXPECT_EQ(t.code, ErrorCode::corrupt) << t.what;
  EXPECT_TRUE(contains(t.what, tq.path())) << t.what;
  EXPECT_TRUE(contains(t.what, std::to_string(bytes.size()))) << t.what;
}

TEST_F(HostileOpen, should_refuse_another_format_version_saying_which_was_found_and_which_is_supported) {
  // 1: the format before the durability fields; kFormatVersion - 1: the
  // format before this one; kFormatVersion + 1: a newer build.
  for (const std::uint32_t version : {0u, 1u, detail::kFormatVersion - 1, detail::kFormatVersion + 1, 0xffffffffu}) {
    SCOPED_TRACE("version " + std::to_string(version));
    // Only the version field changes; the checksum is left as it was, as a
    // file written by another build would have its own valid checksum.
    poke(tq.path(), offsetof(Layout, version), version);
    const Thrown t = catch_error([&] { (void)Queue::open(tq.path()); });
    ASSERT_TRUE(t.threw);
    EXPECT_EQ(t.code, ErrorCode::incompatible) << code_name(t.code) << ": " << t.what;
    EXPECT_TRUE(contains(t.what, tq.path())) << t.what;
    EXPECT_TRUE(contains(t.what, "version " + std::to_string(version))) << t.what;
    EXPECT_TRUE(contains(t.what, "version " + std::to_string(detail::kFormatVersion))) << t.what;
  }
}

TEST_F(HostileOpen, should_refuse_another_format_version_even_when_its_checksum_is_valid) {
  Layout l = read_layout(tq.path());
  l.version = detail::kFormatVersion + 1;
  write_sealed_layout(tq.path(), l);
  const Thrown t = catch_error([&] { (void)Queue::open(tq.path()); });
  ASSERT_TRUE(t.threw);
  EXPECT_EQ(t.code, ErrorCode::incompatible) << t.what;
  EXPECT_TRUE(contains(t.what, "version " + std::to_string(detail::kFormatVersion + 1))) << t.what;
}

TEST_F(HostileOpen, should_refuse_header_flags_it_does_not_know_even_when_the_checksum_is_valid) {
  Layout l = read_layout(tq.path());
  l.flags = 1u << 31;  // a feature of a later build
  write_sealed_layout(tq.path(), l);
  const Thrown t = catch_error([&] { (void)Queue::open(tq.path()); });
  ASSERT_TRUE(t.threw);
  EXPECT_EQ(t.code, ErrorCode::incompatible) << t.what;
  EXPECT_TRUE(contains(t.what, "flags")) << t.what;
}

TEST_F(HostileOpen, should_refuse_a_wrong_magic_as_incompatible) {
  for (const char* magic : {"ACKRINH", "\0\0\0\0\0\0\0", "ackring", "ZIP\x03\x04\0\0"}) {
    SCOPED_TRACE(std::string("magic ") + magic);
    patch(tq.path(), 0, magic, 8);
    const Thrown t = catch_error([&] { (void)Queue::open(tq.path()); });
    ASSERT_TRUE(t.threw);
    EXPECT_EQ(t.code, ErrorCode::incompatible) << code_name(t.code) << ": " << t.what;
    EXPECT_TRUE(contains(t.what, tq.path())) << t.what;
    EXPECT_TRUE(contains(t.what, "magic")) << t.what;
  }
}

TEST_F(HostileOpen, should_refuse_a_file_of_random_bytes) {
  std::mt19937_64 rng(kSeed);
  for (int i = 0; i < 20; ++i) {
    const std::size_t size = std::size_t{4096} << (i % 3);
    write_file(tq.path(), random_bytes(rng, size));
    const Thrown t = catch_error([&] { (void)Queue::open(tq.path()); });
    ASSERT_TRUE(t.threw) << "seed " << kSeed << " round " << i;
    EXPECT_EQ(t.code, ErrorCode::incompatible) << t.what;  // the magic fails first
  }
}

TEST_F(HostileOpen, should_refuse_a_header_with_any_single_byte_of_its_layout_or_checksum_flipped) {
  const std::size_t covered = offsetof(FileHeader, header_checksum) + sizeof(std::uint64_t);
  for (std::size_t i = 0; i < covered; ++i) {
    for (const unsigned char mask : {0x01, 0x80, 0xff}) {
      auto bytes = good;
      bytes[i] ^= std::byte{mask};
      write_file(tq.path(), bytes);
      const Thrown t = catch_error([&] { (void)Queue::open(tq.path()); });
      ASSERT_TRUE(t.threw) << "byte " << i << " ^ " << int(mask) << " was accepted";
      EXPECT_TRUE(t.code == ErrorCode::corrupt || t.code == ErrorCode::incompatible)
          << "byte " << i << ": " << code_name(t.code) << ": " << t.what;
      EXPECT_TRUE(contains(t.what, tq.path())) << t.what;
      if (i >= sizeof(detail::kMagic) + sizeof(std::uint32_t)) {  // past magic and version: the checksum catches it
        EXPECT_TRUE(contains(t.what, "checksum")) << "byte " << i << ": " << t.what;
      }
    }
  }
}

TEST_F(HostileOpen, should_refuse_a_header_whose_layout_holds_random_bytes) {
  std::mt19937_64 rng(kSeed + 1);
  for (int round = 0; round < 500; ++round) {
    auto bytes = good;
    // Keep magic and version so the damage reaches the checksum check.
    const std::size_t from = sizeof(detail::kMagic) + sizeof(std::uint32_t);
    const std::size_t n = 1 + rng() % 16;
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t at = from + rng() % (sizeof(Layout) - from);
      bytes[at] = static_cast<std::byte>(rng());
    }
    if (std::memcmp(bytes.data(), good.data(), sizeof(Layout)) == 0) continue;
    write_file(tq.path(), bytes);
    const Thrown t = catch_error([&] { (void)Queue::open(tq.path()); });
    ASSERT_TRUE(t.threw) << "seed " << kSeed + 1 << " round " << round;
    EXPECT_EQ(t.code, ErrorCode::corrupt) << t.what;
    EXPECT_TRUE(contains(t.what, "checksum")) << t.what;
  }
}

// ---- headers re-sealed with a valid checksum but parameters that lie --------

struct Lie {
  const char* what;
  void (*apply)(Layout&);
};

const Lie kLies[] = {
    {"capacity 3", [](Layout& l) { l.capacity = 3; }},
    {"capacity 0", [](Layout& l) { l.capacity = 0; }},
    {"capacity 2^31", [](Layout& l) { l.capacity = 1u << 31; }},
    {"capacity doubled", [](Layout& l) { l.capacity *= 2; }},
    {"capacity_log2 off by one", [](Layout& l) { l.capacity_log2 += 1; }},
    {"max_message_size 0", [](Layout& l) { l.max_message_size = 0; }},
    {"max_message_size past the slot", [](Layout& l) { l.max_message_size = l.slot_size; }},
    {"max_message_size 4 GiB", [](Layout& l) { l.max_message_size = 0xffffffffu; }},
    {"slot_size halved", [](Layout& l) { l.slot_size /= 2; }},
    {"slot_size huge", [](Layout& l) { l.slot_size = 0x80000000u; }},
    {"slots_offset moved a page", [](Layout& l) { l.slots_offset += 4096; }},
    {"slots_offset past the file", [](Layout& l) { l.slots_offset = l.file_size; }},
    {"slots_offset near 2^64", [](Layout& l) { l.slots_offset = ~0ull - 63; }},
    {"leases_offset into the header", [](Layout& l) { l.leases_offset = 64; }},
    {"groups_offset past the file", [](Layout& l) { l.groups_offset = l.file_size * 4; }},
    {"producers_offset 0", [](Layout& l) { l.producers_offset = 0; }},
    {"group_stride 0", [](Layout& l) { l.group_stride = 0; }},
    {"max_groups 1025", [](Layout& l) { l.max_groups = 1025; }},
    {"max_groups doubled", [](Layout& l) { l.max_groups *= 2; }},
    {"max_members 255", [](Layout& l) { l.max_members = 255; }},
    {"max_producers 0", [](Layout& l) { l.max_producers = 0; }},
    {"max_producers 2^20", [](Layout& l) { l.max_producers = 1u << 20; }},
    {"max_deliveries 255", [](Layout& l) { l.max_deliveries = 255; }},
    {"header_size 0", [](Layout& l) { l.header_size = 0; }},
    {"file_size smaller", [](Layout& l) { l.file_size -= 4096; }},
    {"file_size 2^63", [](Layout& l) { l.file_size = 1ull << 63; }},
};

TEST_F(HostileOpen, should_refuse_a_resealed_header_whose_layout_does_not_follow_from_its_parameters) {
  const Layout original = read_layout(tq.path());
  for (const Lie& lie : kLies) {
    SCOPED_TRACE(lie.what);
    write_file(tq.path(), good);
    Layout l = original;
    lie.apply(l);
    write_sealed_layout(tq.path(), l);
    const Thrown t = catch_error([&] { (void)Queue::open(tq.path()); });
    ASSERT_TRUE(t.threw) << "open accepted a header with " << lie.what;
    EXPECT_TRUE(t.code == ErrorCode::corrupt || t.code == ErrorCode::incompatible)
        << code_name(t.code) << ": " << t.what;
    EXPECT_TRUE(contains(t.what, tq.path())) << t.what;
    EXPECT_FALSE(contains(t.what, "checksum")) << "the re-sealed checksum should verify: " << t.what;
  }
}

TEST_F(HostileOpen, should_refuse_a_consistent_resealed_layout_that_does_not_match_the_file_size) {
  const Layout original = read_layout(tq.path());
  Layout l = original;
  l.capacity *= 64;
  ASSERT_TRUE(detail::compute_layout(l));  // every offset now follows from the new capacity
  ASSERT_NE(l.file_size, original.file_size);
  write_sealed_layout(tq.path(), l);
  const Thrown t = catch_error([&] { (void)Queue::open(tq.path()); });
  ASSERT_TRUE(t.threw);
  EXPECT_EQ(t.code, ErrorCode::corrupt) << t.what;
  EXPECT_TRUE(contains(t.what, std::to_string(l.file_size))) << t.what;
}

// A header that was re-sealed consistently *and* a file grown to match is a
// well-formed queue whose regions hold whatever the old layout left there.
// Everything must stay in bounds and no message may be handed out unverified.
TEST_F(HostileOpen, should_stay_in_bounds_on_a_consistently_relaid_file_whose_regions_hold_old_data) {
  const Layout original = read_layout(tq.path());
  struct Change {
    const char* what;
    void (*apply)(Layout&);
  };
  const Change changes[] = {
      {"capacity x4", [](Layout& l) { l.capacity *= 4; }},
      {"capacity 2", [](Layout& l) { l.capacity = 2; }},
      {"max_message_size 200", [](Layout& l) { l.max_message_size = 200; }},
      {"max_message_size 1", [](Layout& l) { l.max_message_size = 1; }},
      {"max_groups 1", [](Layout& l) { l.max_groups = 1; }},
      {"max_members 40", [](Layout& l) { l.max_members = 40; }},
      {"max_producers 100", [](Layout& l) { l.max_producers = 100; }},
  };
  for (const Change& c : changes) {
    SCOPED_TRACE(c.what);
    write_file(tq.path(), good);
    Layout l = original;
    c.apply(l);
    ASSERT_TRUE(detail::compute_layout(l));
    truncate_file(tq.path(), l.file_size);
    write_sealed_layout(tq.path(), l);
    auto q = Queue::open(tq.path());
    (void)q.stats();
    (void)q.group_names();
    try {
      auto c1 = q.consumer("g", {.lease = Millis{1}});
      for (int i = 0; i < 50; ++i) {
        auto d = c1.try_receive();
        if (!d) continue;
        ASSERT_LE(d->payload().size(), l.max_message_size);
        const std::string text = text_of(*d);
        EXPECT_TRUE(text == "one" || text == "two" || text == "three") << "unverified message '" << text << "'";
        (void)c1.ack(*d);
      }
    } catch (const Error& e) {
      // Joining may fail on garbage member slots; that is an answer too.
      EXPECT_NE(e.code(), ErrorCode::system) << e.what();
    }
    (void)q.stats();
  }
}

}  // namespace
