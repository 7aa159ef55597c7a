// Hostile slot contents: a committed slot whose header or payload was
// damaged after the commit. A consumer must never hand such a message out
// (invariant 3: length and checksum are verified before use); it settles it
// as corrupt, counts it in GroupStats::corrupt_skipped, and delivers the
// good messages behind it.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "hostile_util.hpp"
#include "test_util.hpp"

namespace {

using namespace ackring;
using namespace ackring::hostile;
using namespace std::chrono_literals;
using ackring::testing::TempQueue;
using detail::SlotHeader;

constexpr std::uint32_t kMaxMessage = 64;

QueueOptions small_options() {
  return {.capacity = 16, .max_message_size = kMaxMessage, .max_groups = 2, .max_members = 4,
          .max_producers = 2, .claim_timeout = Millis{1}};
}

std::string message(std::uint64_t i) { return "message number " + std::to_string(i); }

// Publishes n messages; returns seq -> text.
std::map<std::uint64_t, std::string> publish(Queue& q, std::uint64_t n) {
  std::map<std::uint64_t, std::string> sent;
  auto p = q.producer();
  for (std::uint64_t i = 0; i < n; ++i) {
    const auto r = p.try_publish(message(i));
    EXPECT_TRUE(r.ok());
    sent[r.seq] = message(i);
  }
  return sent;
}

const GroupStats& group_stats(const QueueStats& s, const std::string& name) {
  for (const auto& g : s.groups)
    if (g.name == name) return g;
  throw std::runtime_error("no group " + name);
}

// Receives (and acks) until `rounds` receives in a row found nothing.
std::map<std::uint64_t, std::string> drain(Consumer& c, int idle_rounds = 20) {
  std::map<std::uint64_t, std::string> got;
  for (int idle = 0; idle < idle_rounds;) {
    auto d = c.try_receive();
    if (!d) {
      ++idle;
      std::this_thread::sleep_for(1ms);
      continue;
    }
    idle = 0;
    EXPECT_LE(d->payload().size(), kMaxMessage);
    EXPECT_FALSE(got.contains(d->seq())) << "seq " << d->seq() << " delivered twice";
    got[d->seq()] = text_of(*d);
    EXPECT_EQ(c.ack(*d), Status::ok);
  }
  return got;
}

struct SlotCase {
  const char* what;
  void (*damage)(const std::string& path, const Layout& l, std::uint64_t seq);
};

const SlotCase kDamages[] = {
    {"length one past max_message_size",
     [](const std::string& p, const Layout& l, std::uint64_t s) {
       poke<std::uint32_t>(p, slot_offset(l, s) + offsetof(SlotHeader, length), l.max_message_size + 1);
     }},
    {"length past the slot",
     [](const std::string& p, const Layout& l, std::uint64_t s) {
       poke<std::uint32_t>(p, slot_offset(l, s) + offsetof(SlotHeader, length), l.slot_size * 3);
     }},
    {"length 0xffffffff",
     [](const std::string& p, const Layout& l, std::uint64_t s) {
       poke<std::uint32_t>(p, slot_offset(l, s) + offsetof(SlotHeader, length), 0xffffffffu);
     }},
    {"length one byte shorter",
     [](const std::string& p, const Layout& l, std::uint64_t s) {
       const auto len = peek<std::uint32_t>(p, slot_offset(l, s) + offsetof(SlotHeader, length));
       poke<std::uint32_t>(p, slot_offset(l, s) + offsetof(SlotHeader, length), len - 1);
     }},
    {"length 0",
     [](const std::string& p, const Layout& l, std::uint64_t s) {
       poke<std::uint32_t>(p, slot_offset(l, s) + offsetof(SlotHeader, length), 0);
     }},
    {"payload byte flipped after commit",
     [](const std::string& p, const Layout& l, std::uint64_t s) {
       const auto b = peek<unsigned char>(p, payload_offset(l, s) + 3);
       poke<unsigned char>(p, payload_offset(l, s) + 3, b ^ 0x20);
     }},
    {"checksum bit flipped",
     [](const std::string& p, const Layout& l, std::uint64_t s) {
       const auto c = peek<std::uint64_t>(p, slot_offset(l, s) + offsetof(SlotHeader, checksum));
       poke<std::uint64_t>(p, slot_offset(l, s) + offsetof(SlotHeader, checksum), c ^ (1ull << 63));
     }},
};

TEST(HostileSlots, should_skip_and_count_each_kind_of_damaged_slot_and_deliver_the_good_messages_after_it) {
  for (const SlotCase& c : kDamages) {
    SCOPED_TRACE(c.what);
    TempQueue tq;
    auto q = Queue::create(tq.path(), small_options());
    auto cons = q.consumer("g");
    auto sent = publish(q, 6);
    const Layout l = read_layout(tq.path());
    c.damage(tq.path(), l, 1);
    c.damage(tq.path(), l, 4);
    sent.erase(1);
    sent.erase(4);
    // The operator's views agree: verify names both slots, peek leaves them out.
    const VerifyReport v = q.verify();
    EXPECT_EQ(v.corrupt_slots, 2u);
    EXPECT_FALSE(v.healthy());
    std::map<std::uint64_t, std::string> peeked;
    for (const PeekedMessage& m : q.peek(0, 100))
      peeked[m.seq] = std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
    EXPECT_EQ(peeked, sent);
    const auto got = drain(cons);
    EXPECT_EQ(got, sent);
    const auto s = q.stats();
    const auto& g = group_stats(s, "g");
    EXPECT_EQ(g.corrupt_skipped, 2u);
    EXPECT_EQ(g.floor, 6u) << "the floor must move past the skipped slots";
    EXPECT_EQ(g.in_flight, 0u);
  }
}

TEST(HostileSlots, should_skip_damaged_slots_in_every_group_and_in_every_delivery_mode) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), small_options());
  auto at_least = q.consumer("least");
  auto at_most = q.consumer("most", {.mode = DeliveryMode::at_most_once,
                                     .group = {.overflow = OverflowPolicy::drop}});
  auto sent = publish(q, 8);
  const Layout l = read_layout(tq.path());
  for (const std::uint64_t seq : {0u, 3u, 7u}) kDamages[seq % std::size(kDamages)].damage(tq.path(), l, seq);
  for (const std::uint64_t seq : {0u, 3u, 7u}) sent.erase(seq);
  EXPECT_EQ(drain(at_least), sent);
  std::map<std::uint64_t, std::string> got;
  for (int i = 0; i < 20; ++i) {
    Delivery batch[4];
    const std::size_t n = at_most.try_receive_batch(batch);
    for (std::size_t k = 0; k < n; ++k) got[batch[k].seq()] = text_of(batch[k]);
  }
  EXPECT_EQ(got, sent);
  const auto s = q.stats();
  EXPECT_EQ(group_stats(s, "least").corrupt_skipped, 3u);
  EXPECT_EQ(group_stats(s, "most").corrupt_skipped, 3u);
}

TEST(HostileSlots, should_not_redeliver_a_message_damaged_while_it_was_leased) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), small_options());
  auto cons = q.consumer("g", {.lease = Millis{1}});
  auto sent = publish(q, 3);
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(d->seq(), 0u);
  // Damage it while leased; the lease then expires and the takeover path
  // (not the take-new path) reads the slot again.
  const Layout l = read_layout(tq.path());
  kDamages[5].damage(tq.path(), l, 0);
  std::this_thread::sleep_for(5ms);
  const auto got = drain(cons);
  sent.erase(0);
  EXPECT_EQ(got, sent);
  EXPECT_EQ(cons.ack(*d), Status::lease_lost);
  EXPECT_EQ(group_stats(q.stats(), "g").corrupt_skipped, 1u);
}

// A zero-length payload, legitimately published or a length field damaged
// to 0: the read-only operator calls copy 0 bytes into an empty buffer. That
// must not pass a null pointer to memcpy (undefined behaviour, which the
// UBSan build turns into an abort).
TEST(HostileSlots, should_peek_and_verify_a_slot_whose_length_is_zero) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), small_options());
  auto cons = q.consumer("g");
  {
    auto p = q.producer();
    ASSERT_TRUE(p.try_publish(std::string_view{}).ok());  // seq 0: a real empty message
    ASSERT_TRUE(p.try_publish("four").ok());              // seq 1: length damaged to 0 below
  }
  const Layout l = read_layout(tq.path());
  poke<std::uint32_t>(tq.path(), slot_offset(l, 1) + offsetof(SlotHeader, length), 0);
  const auto peeked = q.peek(0, 10);
  ASSERT_EQ(peeked.size(), 1u);
  EXPECT_EQ(peeked[0].seq, 0u);
  EXPECT_TRUE(peeked[0].payload.empty());
  const VerifyReport v = q.verify();
  EXPECT_EQ(v.corrupt_slots, 1u);
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->seq(), 0u);
  EXPECT_TRUE(d->payload().empty());
  EXPECT_EQ(cons.ack(*d), Status::ok);
  EXPECT_FALSE(cons.try_receive());
  EXPECT_EQ(group_stats(q.stats(), "g").corrupt_skipped, 1u);
}

// Random bytes over a slot header, commit marker kept: whatever the length,
// checksum, key, times and claimer fields say, the message is not handed
// out unless its payload verifies.
TEST(HostileSlots, should_never_deliver_a_slot_whose_header_fields_hold_random_bytes) {
  std::mt19937_64 rng(kSeed + 10);
  for (int round = 0; round < 40; ++round) {
    SCOPED_TRACE("seed " + std::to_string(kSeed + 10) + " round " + std::to_string(round));
    TempQueue tq;
    auto q = Queue::create(tq.path(), small_options());
    auto cons = q.consumer("g", {.lease = Millis{1}});
    auto sent = publish(q, 10);
    const Layout l = read_layout(tq.path());
    std::vector<std::uint64_t> damaged;
    for (std::uint64_t seq = 0; seq < 10; ++seq) {
      if (rng() % 3 != 0) continue;
      const auto junk = random_bytes(rng, sizeof(SlotHeader) - 8);
      patch(tq.path(), slot_offset(l, seq) + 8, junk.data(), junk.size());
      damaged.push_back(seq);
      sent.erase(seq);
    }
    const auto got = drain(cons);
    EXPECT_EQ(got, sent);
    EXPECT_EQ(group_stats(q.stats(), "g").corrupt_skipped, damaged.size());
  }
}

// Random payload bytes with the length kept: checksum mismatch.
TEST(HostileSlots, should_never_deliver_a_slot_whose_payload_was_overwritten_with_random_bytes) {
  std::mt19937_64 rng(kSeed + 11);
  TempQueue tq;
  auto q = Queue::create(tq.path(), small_options());
  auto cons = q.consumer("g");
  auto sent = publish(q, 12);
  const Layout l = read_layout(tq.path());
  std::size_t damaged = 0;
  for (std::uint64_t seq = 0; seq < 12; seq += 2) {
    const auto junk = random_bytes(rng, kMaxMessage);
    patch(tq.path(), payload_offset(l, seq), junk.data(), junk.size());
    sent.erase(seq);
    ++damaged;
  }
  EXPECT_EQ(drain(cons), sent);
  EXPECT_EQ(group_stats(q.stats(), "g").corrupt_skipped, damaged);
}

// The commit marker itself holds garbage. A garbage marker is not a
// committed message, so nothing may be delivered from it; the group must
// not stall on it forever either: at worst the stuck-claim timeout (1 ms
// here) passes it over, and the good messages behind it arrive.
struct Marker {
  const char* what;
  std::uint64_t (*make)(std::mt19937_64&, std::uint64_t seq);
};

void expect_passed_over(const Marker& m, std::mt19937_64& rng) {
  SCOPED_TRACE(m.what);
  TempQueue tq;
  auto q = Queue::create(tq.path(), small_options());
  auto cons = q.consumer("g");
  {
    auto p = q.producer();
    for (int i = 0; i < 20; ++i) {  // a lap of the ring first, so "an earlier lap" is a real one
      ASSERT_TRUE(p.try_publish("warm-up").ok());
      auto d = cons.try_receive();
      ASSERT_TRUE(d);
      ASSERT_EQ(cons.ack(*d), Status::ok);
    }
  }
  auto sent = publish(q, 6);  // seqs 20..25
  const Layout l = read_layout(tq.path());
  const std::uint64_t victim = 22;
  poke<std::uint64_t>(tq.path(), slot_offset(l, victim), m.make(rng, victim));
  // Also damage the checksum so that, if the marker is taken for a commit,
  // the payload cannot verify by luck.
  poke<std::uint64_t>(tq.path(), slot_offset(l, victim) + offsetof(SlotHeader, checksum), 0x0badc0de);
  sent.erase(victim);
  std::map<std::uint64_t, std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + 500ms;  // passing over takes ~10 ms
  while (got.size() < sent.size() && std::chrono::steady_clock::now() < deadline) {
    auto d = cons.receive(10ms);
    if (!d) continue;
    EXPECT_NE(d->seq(), victim) << "a slot with a garbage commit marker was delivered";
    got[d->seq()] = text_of(*d);
    (void)cons.ack(*d);
  }
  EXPECT_EQ(got, sent) << "the group stalled behind a garbage commit marker at seq " << victim;
  if (got != sent) {
    EXPECT_FALSE(q.verify().healthy()) << "verify must report what stalls the group";
  }
}

TEST(HostileSlots, should_pass_over_a_slot_whose_commit_marker_names_an_earlier_seq_or_no_commit) {
  std::mt19937_64 rng(kSeed + 12);
  const Marker markers[] = {
      {"right seq, state byte 0x7f", [](std::mt19937_64&, std::uint64_t s) { return (s << 8) | 0x7f; }},
      {"right seq, free", [](std::mt19937_64&, std::uint64_t s) { return (s << 8) | 0; }},
      {"right seq, claimed long ago", [](std::mt19937_64&, std::uint64_t s) { return (s << 8) | 1; }},
      {"an earlier lap, committed", [](std::mt19937_64&, std::uint64_t s) { return ((s - 16) << 8) | 2; }},
      {"seq 0, free", [](std::mt19937_64&, std::uint64_t) { return std::uint64_t{0}; }},
  };
  for (const Marker& m : markers) expect_passed_over(m, rng);
}

// A marker naming a seq *later* than the one the group waits for cannot
// occur in a healthy file (the slot is reused only after every floor passed
// the earlier seq), so it is damage, and the group must not wait for it
// forever.
TEST(HostileSlots, should_not_stall_forever_on_a_slot_whose_commit_marker_names_a_later_seq) {
  std::mt19937_64 rng(kSeed + 13);
  const Marker markers[] = {
      {"random word", [](std::mt19937_64& r, std::uint64_t s) { return static_cast<std::uint64_t>((s + 1 + r() % (std::uint64_t{1} << 40)) << 8 | (r() & 0xff)); }},
      {"a later lap, committed", [](std::mt19937_64&, std::uint64_t s) { return ((s + 16) << 8) | 2; }},
      {"a far later seq, committed", [](std::mt19937_64&, std::uint64_t s) { return ((s + 12345) << 8) | 2; }},
  };
  for (const Marker& m : markers) expect_passed_over(m, rng);
}

}  // namespace
