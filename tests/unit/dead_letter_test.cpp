// Dead letters: max_deliveries, reject, the origin record, redrive, and the
// parser's refusal of anything that is not a well-formed dead letter.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "ackring/ackring.hpp"
#include "queue/dead_letter_codec.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {

namespace {

// Reads every message waiting in a dead-letter queue (acking each) and
// returns copies of the raw messages.
std::vector<std::vector<std::byte>> drain_dlq(const std::string& dlq_path) {
  auto dlq = Queue::open(dlq_path);
  auto reader = dlq.consumer("dlq", {.create_group = false});
  std::vector<std::vector<std::byte>> out;
  while (auto d = reader.receive(50ms)) {
    out.emplace_back(d->payload().begin(), d->payload().end());
    EXPECT_EQ(reader.ack(*d), Status::ok);
  }
  return out;
}

std::vector<std::byte> encode(std::string_view queue, std::string_view group, std::uint64_t seq,
                              std::uint32_t deliveries, std::uint8_t reason, std::uint64_t publish_time_ns,
                              std::string_view body) {
  std::vector<std::byte> out;
  ackring::detail::encode_dead_letter(out, queue, group, seq, deliveries, reason, publish_time_ns,
                                      ackring::as_bytes(body));
  return out;
}

}  // namespace

// Each test runs on a fresh queue path and opens what it needs (QueueTest).
using DeadLetter = QueueTest;

TEST_F(DeadLetter, should_move_a_message_to_the_dlq_after_max_deliveries_expiries) {
  auto o = small_options();
  o.max_deliveries = 2;
  auto& [q, cons, prod] = open(o, {.lease = 30ms});
  ASSERT_TRUE(prod.try_publish("poison").ok());
  auto d1 = cons.try_receive();
  ASSERT_TRUE(d1);
  auto d2 = cons.receive(5s);
  ASSERT_TRUE(d2);
  ASSERT_EQ(d2->deliveries(), 2u);
  // The second lease runs out too: no third delivery, the message goes to the DLQ.
  EXPECT_FALSE(cons.receive(300ms));

  const auto gs = group_stats(q, "g");
  EXPECT_EQ(gs.dead_lettered, 1u);
  EXPECT_EQ(gs.floor, 1u);
  EXPECT_EQ(gs.in_flight, 0u);
  EXPECT_EQ(cons.ack(*d2), Status::lease_lost);

  ASSERT_TRUE(std::filesystem::exists(tq.dlq_path()));
  EXPECT_EQ(Queue::open(tq.dlq_path()).group_names(), std::vector<std::string>{"dlq"});
  const auto letters = drain_dlq(tq.dlq_path());
  ASSERT_EQ(letters.size(), 1u);
  const auto letter = parse_dead_letter(Bytes(letters[0]));
  ASSERT_TRUE(letter);
  EXPECT_EQ(letter->queue, tq.path());
  EXPECT_EQ(letter->group, "g");
  EXPECT_EQ(letter->seq, d1->seq());
  EXPECT_EQ(letter->deliveries, 2u);
  EXPECT_EQ(letter->reason, DeadLetterReason::max_deliveries);
  EXPECT_EQ(letter->publish_time_ns, d1->publish_time_ns());
  EXPECT_EQ(text_of(letter->body), "poison");

  // The queue goes on: the next message is delivered normally.
  ASSERT_TRUE(prod.try_publish("fine").ok());
  auto next = cons.try_receive();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->text(), "fine");
  EXPECT_EQ(next->deliveries(), 1u);
}

TEST_F(DeadLetter, should_dead_letter_a_message_nacked_max_deliveries_times) {
  auto o = small_options();
  o.max_deliveries = 3;
  auto& [q, cons, prod] = open(o);
  ASSERT_TRUE(prod.try_publish("flaky").ok());
  for (std::uint32_t n = 1; n <= 3; ++n) {
    auto d = cons.try_receive();
    ASSERT_TRUE(d) << n;
    EXPECT_EQ(d->deliveries(), n);
    ASSERT_EQ(cons.nack(d->receipt()), Status::ok);
  }
  EXPECT_FALSE(cons.try_receive());
  EXPECT_EQ(group_stats(q, "g").dead_lettered, 1u);
  EXPECT_EQ(group_stats(q, "g").floor, 1u);
  const auto letters = drain_dlq(tq.dlq_path());
  ASSERT_EQ(letters.size(), 1u);
  const auto letter = parse_dead_letter(Bytes(letters[0]));
  ASSERT_TRUE(letter);
  EXPECT_EQ(letter->deliveries, 3u);
  EXPECT_EQ(letter->reason, DeadLetterReason::max_deliveries);
  EXPECT_EQ(text_of(letter->body), "flaky");
}

TEST_F(DeadLetter, should_dead_letter_a_rejected_message_at_once_with_reason_rejected) {
  auto& q = create(small_options());
  auto cons = q.consumer("billing");
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("bad order").ok());
  ASSERT_TRUE(prod.try_publish("good order").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(cons.reject(d->receipt()), Status::ok);
  EXPECT_EQ(cons.ack(*d), Status::lease_lost);  // settled by the reject
  const auto gs = group_stats(q, "billing");
  EXPECT_EQ(gs.dead_lettered, 1u);
  EXPECT_EQ(gs.floor, 1u);
  auto next = cons.try_receive();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->text(), "good order");

  const auto letters = drain_dlq(tq.dlq_path());
  ASSERT_EQ(letters.size(), 1u);
  const auto letter = parse_dead_letter(Bytes(letters[0]));
  ASSERT_TRUE(letter);
  EXPECT_EQ(letter->reason, DeadLetterReason::rejected);
  EXPECT_EQ(letter->deliveries, 1u);
  EXPECT_EQ(letter->seq, 0u);
  EXPECT_EQ(letter->group, "billing");
  EXPECT_EQ(letter->queue, tq.path());
  EXPECT_EQ(text_of(letter->body), "bad order");
}

TEST_F(DeadLetter, should_not_dead_letter_anything_on_a_reject_with_a_stale_receipt) {
  auto& [q, cons, prod] = open(small_options());
  ASSERT_TRUE(prod.try_publish("m").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(cons.ack(*d), Status::ok);
  EXPECT_EQ(cons.reject(d->receipt()), Status::lease_lost);
  EXPECT_EQ(cons.reject(ackring::Receipt{3, 1}), Status::lease_lost);
  EXPECT_EQ(group_stats(q, "g").dead_lettered, 0u);
  if (std::filesystem::exists(tq.dlq_path())) EXPECT_TRUE(drain_dlq(tq.dlq_path()).empty());
}

TEST_F(DeadLetter, should_keep_a_rejected_message_leased_when_the_dead_letter_queue_is_full) {
  auto& [q, cons, prod] = open(small_options(2));  // the DLQ gets the same capacity
  for (const char* t : {"d0", "d1"}) ASSERT_TRUE(prod.try_publish(t).ok());
  for (int i = 0; i < 2; ++i) {
    auto d = cons.try_receive();
    ASSERT_TRUE(d);
    ASSERT_EQ(cons.reject(d->receipt()), Status::ok);
  }
  ASSERT_TRUE(prod.try_publish("kept").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  // Nobody reads the DLQ, so it is full: the reject fails and loses nothing.
  EXPECT_NE(cons.reject(d->receipt()), Status::ok);
  EXPECT_EQ(group_stats(q, "g").dead_lettered, 2u);
  EXPECT_EQ(group_stats(q, "g").in_flight, 1u);
  EXPECT_EQ(d->text(), "kept");
  EXPECT_EQ(cons.ack(*d), Status::ok);  // still ours
  EXPECT_EQ(group_stats(q, "g").floor, 3u);
  const auto letters = drain_dlq(tq.dlq_path());
  ASSERT_EQ(letters.size(), 2u);
  EXPECT_EQ(text_of(parse_dead_letter(Bytes(letters[0]))->body), "d0");
  EXPECT_EQ(text_of(parse_dead_letter(Bytes(letters[1]))->body), "d1");
}

TEST_F(DeadLetter, should_keep_a_full_size_body_and_a_long_group_name_intact) {
  auto& q = create(small_options(8, 64));
  const std::string group(47, 'G');
  auto cons = q.consumer(group);
  auto prod = q.producer();
  std::string body(64, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(255 - i);
  ASSERT_TRUE(prod.try_publish(body).ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(cons.reject(d->receipt()), Status::ok);
  const auto letters = drain_dlq(tq.dlq_path());
  ASSERT_EQ(letters.size(), 1u);
  const auto letter = parse_dead_letter(Bytes(letters[0]));
  ASSERT_TRUE(letter);
  EXPECT_EQ(letter->group, group);
  EXPECT_EQ(text_of(letter->body), body);
}

TEST_F(DeadLetter, should_redrive_dead_letters_back_into_the_original_queue) {
  auto& [q, cons, prod] = open(small_options());
  for (const char* t : {"r1", "ok", "r2"}) ASSERT_TRUE(prod.try_publish(t).ok());
  for (int i = 0; i < 3; ++i) {
    auto d = cons.try_receive();
    ASSERT_TRUE(d);
    if (d->text() == "ok") ASSERT_EQ(cons.ack(*d), Status::ok);
    else ASSERT_EQ(cons.reject(d->receipt()), Status::ok);
  }
  ASSERT_FALSE(cons.try_receive());

  EXPECT_EQ(ackring::redrive_dead_letters(tq.path()), 2u);

  auto r1 = cons.try_receive();
  auto r2 = cons.try_receive();
  ASSERT_TRUE(r1 && r2);
  EXPECT_EQ(r1->text(), "r1");
  EXPECT_EQ(r2->text(), "r2");
  EXPECT_GE(r1->seq(), 3u);  // published again, at new seqs
  EXPECT_EQ(r2->seq(), r1->seq() + 1);
  EXPECT_EQ(r1->deliveries(), 1u);
  EXPECT_FALSE(cons.try_receive());

  // The DLQ is empty now, and a second redrive moves nothing.
  EXPECT_TRUE(drain_dlq(tq.dlq_path()).empty());
  EXPECT_EQ(ackring::redrive_dead_letters(tq.path()), 0u);
  EXPECT_FALSE(cons.try_receive());
}

TEST_F(DeadLetter, should_use_a_dlq_named_after_a_named_queue_and_redrive_it_by_name) {
  ScopedShmDir dir;
  auto q = Queue::create("orders", small_options());
  auto cons = q.consumer("g");
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("o1").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(cons.reject(d->receipt()), Status::ok);
  EXPECT_EQ(ackring::dead_letter_queue_of("orders"), "orders.dlq");
  EXPECT_TRUE(std::filesystem::exists(dir.dir() / "ackring.orders.dlq"));
  {
    auto dlq = Queue::open(ackring::dead_letter_queue_of("orders"));
    EXPECT_EQ(dlq.stats().tail, 1u);
  }
  EXPECT_EQ(ackring::redrive_dead_letters("orders"), 1u);
  auto back = cons.try_receive();
  ASSERT_TRUE(back);
  EXPECT_EQ(back->text(), "o1");
}

TEST_F(DeadLetter, should_name_the_dead_letter_queue_by_appending_dot_dlq) {
  EXPECT_EQ(ackring::dead_letter_queue_of("orders"), "orders.dlq");
  EXPECT_EQ(ackring::dead_letter_queue_of("/var/q/orders"), "/var/q/orders.dlq");
}

// dead_letter.hpp: dead_letter_queue_of gives "the name or path of the
// dead-letter queue" -- for the longest valid name that must still be a name
// Queue::open accepts.
TEST_F(DeadLetter, should_give_a_dead_letter_queue_name_that_opens_for_the_longest_valid_queue_name) {
  ScopedShmDir dir;
  const std::string name(200, 'q');
  auto q = Queue::create(name, small_options());
  auto cons = q.consumer("g");
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("m").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(cons.reject(d->receipt()), Status::ok);
  EXPECT_NO_THROW({
    auto dlq = Queue::open(ackring::dead_letter_queue_of(name));
    EXPECT_EQ(dlq.stats().tail, 1u);
  });
}

TEST_F(DeadLetter, should_throw_when_redriving_a_queue_without_a_dead_letter_queue) {
  (void)Queue::create(tq.path(), small_options());
  EXPECT_THROW((void)ackring::redrive_dead_letters(tq.path()), ackring::Error);
}

// ------------------------------------------------------------------ parse --

TEST_F(DeadLetter, should_parse_every_field_of_an_encoded_dead_letter) {
  const std::string body("bin\0ary", 7);
  const auto raw = encode("/dev/shm/ackring.orders", "billing", 42, 3, 2, 1'700'000'000'123'456'789ull, body);
  const auto letter = parse_dead_letter(Bytes(raw));
  ASSERT_TRUE(letter);
  EXPECT_EQ(letter->queue, "/dev/shm/ackring.orders");
  EXPECT_EQ(letter->group, "billing");
  EXPECT_EQ(letter->seq, 42u);
  EXPECT_EQ(letter->deliveries, 3u);
  EXPECT_EQ(letter->reason, DeadLetterReason::rejected);
  EXPECT_EQ(letter->publish_time_ns, 1'700'000'000'123'456'789ull);
  EXPECT_EQ(text_of(letter->body), body);
  // The body is a view into the input, at its end.
  EXPECT_EQ(letter->body.data() + letter->body.size(), raw.data() + raw.size());
}

TEST_F(DeadLetter, should_parse_a_dead_letter_with_an_empty_body) {
  const auto raw = encode("q", "g", 0, 1, 1, 0, "");
  const auto letter = parse_dead_letter(Bytes(raw));
  ASSERT_TRUE(letter);
  EXPECT_TRUE(letter->body.empty());
  EXPECT_EQ(letter->reason, DeadLetterReason::max_deliveries);
}

TEST_F(DeadLetter, should_refuse_to_parse_garbage) {
  EXPECT_FALSE(parse_dead_letter(Bytes{}));
  EXPECT_FALSE(parse_dead_letter(ackring::as_bytes("hello, I am not a dead letter")));
  const std::vector<std::byte> zeros(200, std::byte{0});
  EXPECT_FALSE(parse_dead_letter(Bytes(zeros)));
  std::mt19937 rng(12345);
  for (int i = 0; i < 200; ++i) {
    std::vector<std::byte> noise(rng() % 300);
    for (auto& b : noise) b = static_cast<std::byte>(rng());
    EXPECT_FALSE(parse_dead_letter(Bytes(noise))) << "seed 12345, round " << i;
  }
}

TEST_F(DeadLetter, should_refuse_to_parse_a_truncated_or_overlong_dead_letter) {
  const auto raw = encode("/q", "grp", 7, 2, 1, 99, "the body");
  ASSERT_TRUE(parse_dead_letter(Bytes(raw)));
  for (std::size_t n = 0; n < raw.size(); ++n)
    EXPECT_FALSE(parse_dead_letter(Bytes(raw.data(), n))) << "prefix of " << n << " bytes";
  auto longer = raw;
  longer.push_back(std::byte{'x'});
  EXPECT_FALSE(parse_dead_letter(Bytes(longer)));
}

TEST_F(DeadLetter, should_refuse_to_parse_a_dead_letter_with_an_unknown_reason) {
  for (const std::uint8_t reason : {0, 3, 255}) {
    const auto raw = encode("/q", "g", 1, 1, reason, 0, "b");
    EXPECT_FALSE(parse_dead_letter(Bytes(raw))) << int(reason);
  }
}

TEST_F(DeadLetter, should_refuse_to_parse_a_dead_letter_whose_lengths_do_not_add_up) {
  const auto raw = encode("/q", "g", 1, 1, 1, 0, "body");
  for (const std::size_t offset : {offsetof(ackring::detail::DeadLetterHeader, queue_len),
                                   offsetof(ackring::detail::DeadLetterHeader, group_len)}) {
    auto bad = raw;
    const std::uint16_t huge = 0xffff;
    std::memcpy(bad.data() + offset, &huge, sizeof huge);
    EXPECT_FALSE(parse_dead_letter(Bytes(bad))) << offset;
  }
  auto bad = raw;
  const std::uint32_t huge = 0xffffffffu;
  std::memcpy(bad.data() + offsetof(ackring::detail::DeadLetterHeader, body_len), &huge, sizeof huge);
  EXPECT_FALSE(parse_dead_letter(Bytes(bad)));
}

TEST_F(DeadLetter, should_name_the_reasons) {
  EXPECT_EQ(ackring::to_string(DeadLetterReason::max_deliveries), "max deliveries exceeded");
  EXPECT_EQ(ackring::to_string(DeadLetterReason::rejected), "rejected");
}

}  // namespace ackring::testing
