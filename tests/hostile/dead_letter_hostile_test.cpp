// parse_dead_letter on hostile input: anything read from a dead-letter queue
// could have been published there by anyone. It must return nullopt for
// every input that is not exactly a well-formed record, and never read past
// the input (runs under ASan: each input lives in its own exact-size heap
// buffer so a read one byte past it is caught).
#include <gtest/gtest.h>

#include <memory>
#include <random>

#include "queue/dead_letter_codec.hpp"
#include "hostile_util.hpp"

namespace {

using namespace ackring;
using namespace ackring::hostile;
using detail::DeadLetterHeader;

std::vector<std::byte> valid_record(std::string_view body = "the original payload") {
  std::vector<std::byte> out;
  detail::encode_dead_letter(out, "/dev/shm/ackring.orders", "billing", 42, 5,
                             static_cast<std::uint8_t>(DeadLetterReason::max_deliveries), 1234567890, as_bytes(body));
  return out;
}

// Parses a copy held in a heap buffer of exactly the input's size.
std::optional<DeadLetter> parse_exact(const std::vector<std::byte>& in, std::unique_ptr<std::byte[]>& keep) {
  keep = std::make_unique<std::byte[]>(in.size() == 0 ? 1 : in.size());
  if (!in.empty()) std::memcpy(keep.get(), in.data(), in.size());
  return parse_dead_letter(Bytes(keep.get(), in.size()));
}

DeadLetterHeader header_of(const std::vector<std::byte>& rec) {
  DeadLetterHeader h;
  std::memcpy(&h, rec.data(), sizeof h);
  return h;
}

void set_header(std::vector<std::byte>& rec, const DeadLetterHeader& h) { std::memcpy(rec.data(), &h, sizeof h); }

TEST(HostileDeadLetter, should_parse_a_well_formed_record_as_a_baseline) {
  std::unique_ptr<std::byte[]> keep;
  const auto d = parse_exact(valid_record(), keep);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->queue, "/dev/shm/ackring.orders");
  EXPECT_EQ(d->group, "billing");
  EXPECT_EQ(d->seq, 42u);
  EXPECT_EQ(d->deliveries, 5u);
  EXPECT_EQ(d->reason, DeadLetterReason::max_deliveries);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d->body.data()), d->body.size()), "the original payload");
}

TEST(HostileDeadLetter, should_return_nullopt_for_every_truncation_of_a_record) {
  const auto rec = valid_record();
  for (std::size_t n = 0; n < rec.size(); ++n) {
    std::unique_ptr<std::byte[]> keep;
    EXPECT_FALSE(parse_exact({rec.begin(), rec.begin() + static_cast<std::ptrdiff_t>(n)}, keep)) << "cut at " << n;
  }
}

TEST(HostileDeadLetter, should_return_nullopt_for_a_record_with_trailing_bytes) {
  auto rec = valid_record();
  rec.push_back(std::byte{0});
  std::unique_ptr<std::byte[]> keep;
  EXPECT_FALSE(parse_exact(rec, keep));
}

TEST(HostileDeadLetter, should_return_nullopt_when_the_lengths_claim_more_than_the_input_holds) {
  const auto rec = valid_record();
  struct Lie {
    const char* what;
    void (*apply)(DeadLetterHeader&, std::size_t size);
  };
  const Lie lies[] = {
      {"queue_len max", [](DeadLetterHeader& h, std::size_t) { h.queue_len = 0xffff; }},
      {"group_len max", [](DeadLetterHeader& h, std::size_t) { h.group_len = 0xffff; }},
      {"body_len max", [](DeadLetterHeader& h, std::size_t) { h.body_len = 0xffffffffu; }},
      {"body_len +1", [](DeadLetterHeader& h, std::size_t) { h.body_len += 1; }},
      {"queue_len +1", [](DeadLetterHeader& h, std::size_t) { h.queue_len = static_cast<std::uint16_t>(h.queue_len + 1); }},
      {"all max (sum wraps a 32-bit adder)",
       [](DeadLetterHeader& h, std::size_t) {
         h.queue_len = 0xffff;
         h.group_len = 0xffff;
         h.body_len = 0xffffffffu;
       }},
      {"lengths whose sum wraps 32 bits to the real size",
       [](DeadLetterHeader& h, std::size_t size) {
         h.queue_len = 0xffff;
         h.group_len = 0xffff;
         h.body_len = static_cast<std::uint32_t>(size - sizeof h - 0x1fffe);
       }},
      {"lengths moved between fields",
       [](DeadLetterHeader& h, std::size_t) {
         h.queue_len = static_cast<std::uint16_t>(h.queue_len + 1);
         h.body_len -= 2;
       }},
  };
  for (const Lie& lie : lies) {
    auto bad = rec;
    auto h = header_of(bad);
    lie.apply(h, bad.size());
    set_header(bad, h);
    std::unique_ptr<std::byte[]> keep;
    const auto d = parse_exact(bad, keep);
    if (std::string_view(lie.what) == "lengths moved between fields") {
      // Consistent total: a parse is allowed, but every view must lie inside the input.
      if (d) {
        EXPECT_EQ(sizeof(DeadLetterHeader) + d->queue.size() + d->group.size() + d->body.size(), bad.size());
        EXPECT_GE(d->body.data(), keep.get());
        EXPECT_LE(d->body.data() + d->body.size(), keep.get() + bad.size());
      }
      continue;
    }
    EXPECT_FALSE(d) << lie.what;
  }
}

TEST(HostileDeadLetter, should_return_nullopt_for_a_wrong_magic_or_an_unknown_reason) {
  for (std::size_t i = 0; i < sizeof detail::kDeadLetterMagic; ++i) {
    auto bad = valid_record();
    bad[i] ^= std::byte{0x40};
    std::unique_ptr<std::byte[]> keep;
    EXPECT_FALSE(parse_exact(bad, keep)) << "magic byte " << i;
  }
  for (const std::uint8_t reason : {0, 3, 0x7f, 0xff}) {
    auto bad = valid_record();
    auto h = header_of(bad);
    h.reason = reason;
    set_header(bad, h);
    std::unique_ptr<std::byte[]> keep;
    EXPECT_FALSE(parse_exact(bad, keep)) << "reason " << int(reason);
  }
}

TEST(HostileDeadLetter, should_return_nullopt_for_random_bytes_of_any_length) {
  std::mt19937_64 rng(kSeed + 30);
  for (int round = 0; round < 2000; ++round) {
    const std::size_t size = rng() % 300;
    auto in = random_bytes(rng, size);
    std::unique_ptr<std::byte[]> keep;
    EXPECT_FALSE(parse_exact(in, keep)) << "seed " << kSeed + 30 << " round " << round;
  }
}

TEST(HostileDeadLetter, should_stay_inside_the_input_for_random_headers_behind_a_valid_magic) {
  std::mt19937_64 rng(kSeed + 31);
  int parsed = 0;
  for (int round = 0; round < 5000; ++round) {
    const std::size_t size = sizeof(DeadLetterHeader) + rng() % 64;
    auto in = random_bytes(rng, size);
    std::memcpy(in.data(), detail::kDeadLetterMagic, sizeof detail::kDeadLetterMagic);
    DeadLetterHeader h = header_of(in);
    // Half the rounds: lengths that add up, so the parse goes all the way.
    if (round % 2 == 0) {
      const std::size_t rest = size - sizeof h;
      h.queue_len = static_cast<std::uint16_t>(rng() % (rest + 1));
      h.group_len = static_cast<std::uint16_t>(rng() % (rest - h.queue_len + 1));
      h.body_len = static_cast<std::uint32_t>(rest - h.queue_len - h.group_len);
      h.reason = static_cast<std::uint8_t>(1 + rng() % 2);
      set_header(in, h);
    }
    std::unique_ptr<std::byte[]> keep;
    const auto d = parse_exact(in, keep);
    if (!d) continue;
    ++parsed;
    EXPECT_EQ(sizeof h + d->queue.size() + d->group.size() + d->body.size(), size);
    EXPECT_LE(d->body.data() + d->body.size(), keep.get() + size);
  }
  EXPECT_GT(parsed, 0) << "the well-formed half should parse";
}

}  // namespace
