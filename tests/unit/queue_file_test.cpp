// Creating, opening and destroying queues by name and by path; name and
// option validation; file modes; header validation on open.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ackring/ackring.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {

namespace {

mode_t file_mode(const std::string& path) {
  struct stat st{};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

void poke(const std::string& path, std::streamoff offset, const void* data, std::size_t n) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.is_open());
  f.seekp(offset);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  ASSERT_TRUE(f.good());
}

class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t m) : old_(::umask(m)) {}
  ~UmaskGuard() { ::umask(old_); }

 private:
  mode_t old_;
};

}  // namespace

// ---------------------------------------------------------------- by name --

// Each test runs on a fresh queue path and opens what it needs (QueueTest).
using QueueFile = QueueTest;

TEST_F(QueueFile, should_create_a_named_queue_under_ACKRING_SHM_DIR_and_open_it_by_the_same_name) {
  ScopedShmDir dir;
  const auto expected = dir.dir() / "ackring.orders";
  auto created = Queue::create("orders", small_options(16, 128));
  EXPECT_EQ(created.path(), expected);
  EXPECT_TRUE(std::filesystem::exists(expected));
  EXPECT_EQ(Queue::resolve("orders"), expected);

  auto opened = Queue::open("orders");
  EXPECT_EQ(opened.path(), expected);
  EXPECT_EQ(opened.options().capacity, 16u);
  EXPECT_EQ(opened.options().max_message_size, 128u);

  // Both handles map the same file: a message published through one is
  // received through the other.
  auto cons = opened.consumer("g");
  auto prod = created.producer();
  ASSERT_TRUE(prod.try_publish("across handles").ok());
  auto d = cons.receive(1s);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text(), "across handles");
}

TEST_F(QueueFile, should_destroy_a_named_queue_and_report_false_once_it_is_gone) {
  ScopedShmDir dir;
  { auto q = Queue::create("doomed", small_options()); }
  EXPECT_TRUE(std::filesystem::exists(dir.dir() / "ackring.doomed"));
  EXPECT_TRUE(Queue::destroy("doomed"));
  EXPECT_FALSE(std::filesystem::exists(dir.dir() / "ackring.doomed"));
  EXPECT_FALSE(Queue::destroy("doomed"));
  EXPECT_TRUE(throws_error([] { (void)Queue::open("doomed"); }, ErrorCode::not_found));
}

TEST_F(QueueFile, should_accept_names_of_letters_digits_dashes_underscores_and_dots) {
  ScopedShmDir dir;
  for (const std::string& name : std::vector<std::string>{"a", "Orders-2024_v1.main", "x.y.z", std::string(200, 'n')}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(Queue::resolve(name), dir.dir() / ("ackring." + name));
    { auto q = Queue::create(name, small_options()); }
    EXPECT_NO_THROW((void)Queue::open(name));
    EXPECT_TRUE(Queue::destroy(name));
  }
}

TEST_F(QueueFile, should_reject_names_with_characters_outside_the_allowed_set_as_invalid_argument) {
  ScopedShmDir dir;
  const std::vector<std::string> names = {"bad name", "a*b",          "tab\there", "q:1",
                                         "semi;colon", "back\\slash", "caf\xc3\xa9", std::string("nul\0byte", 8),
                                         "new\nline", "~home",        "$x"};
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(throws_error([&] { (void)Queue::create(name, small_options()); }, ErrorCode::invalid_argument));
    EXPECT_TRUE(throws_error([&] { (void)Queue::open(name); }, ErrorCode::invalid_argument));
    EXPECT_TRUE(throws_error([&] { (void)Queue::open_or_create(name, small_options()); }, ErrorCode::invalid_argument));
    EXPECT_TRUE(throws_error([&] { (void)Queue::destroy(name); }, ErrorCode::invalid_argument));
    EXPECT_TRUE(throws_error([&] { (void)Queue::resolve(name); }, ErrorCode::invalid_argument));
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.dir()));
}

TEST_F(QueueFile, should_reject_names_containing_dot_dot_as_invalid_argument) {
  ScopedShmDir dir;
  for (const std::string& name : std::vector<std::string>{"..", "a..b", "..x", "x..", "."}) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(throws_error([&] { (void)Queue::create(name, small_options()); }, ErrorCode::invalid_argument));
    EXPECT_TRUE(throws_error([&] { (void)Queue::open(name); }, ErrorCode::invalid_argument));
    EXPECT_TRUE(throws_error([&] { (void)Queue::destroy(name); }, ErrorCode::invalid_argument));
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.dir()));
}

TEST_F(QueueFile, should_reject_an_empty_name_as_invalid_argument) {
  ScopedShmDir dir;
  EXPECT_TRUE(throws_error([] { (void)Queue::create("", small_options()); }, ErrorCode::invalid_argument));
  EXPECT_TRUE(throws_error([] { (void)Queue::open(""); }, ErrorCode::invalid_argument));
  EXPECT_TRUE(throws_error([] { (void)Queue::destroy(""); }, ErrorCode::invalid_argument));
  EXPECT_TRUE(throws_error([] { (void)Queue::resolve(""); }, ErrorCode::invalid_argument));
}

TEST_F(QueueFile, should_reject_a_name_longer_than_200_bytes_as_invalid_argument) {
  ScopedShmDir dir;
  const std::string name(201, 'a');
  EXPECT_TRUE(throws_error([&] { (void)Queue::create(name, small_options()); }, ErrorCode::invalid_argument));
  EXPECT_TRUE(throws_error([&] { (void)Queue::open(name); }, ErrorCode::invalid_argument));
  EXPECT_TRUE(std::filesystem::is_empty(dir.dir()));
}

TEST_F(QueueFile, should_mention_the_offending_name_in_the_error_message) {
  try {
    (void)Queue::create("bad name", small_options());
    FAIL() << "no exception";
  } catch (const ackring::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad name"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- by path --

TEST_F(QueueFile, should_create_open_and_destroy_a_queue_by_path) {
  {
    auto q = Queue::create(tq.path(), small_options(32, 100));
    EXPECT_EQ(q.path(), std::filesystem::path(tq.path()));
  }
  EXPECT_TRUE(std::filesystem::exists(tq.path()));
  {
    auto q = Queue::open(tq.path());
    EXPECT_EQ(q.options().capacity, 32u);
    EXPECT_EQ(q.options().max_message_size, 100u);
  }
  EXPECT_TRUE(Queue::destroy(tq.path()));
  EXPECT_FALSE(std::filesystem::exists(tq.path()));
  EXPECT_FALSE(Queue::destroy(tq.path()));
}

TEST_F(QueueFile, should_treat_any_argument_containing_a_slash_as_a_path) {
  EXPECT_EQ(Queue::resolve("/some/dir/q"), std::filesystem::path("/some/dir/q"));
  EXPECT_EQ(Queue::resolve("./q with spaces"), std::filesystem::path("./q with spaces"));
}

TEST_F(QueueFile, should_keep_working_on_its_mapping_after_the_queue_is_destroyed) {
  auto& [q, cons, prod] = open(small_options());
  ASSERT_TRUE(Queue::destroy(tq.path()));
  ASSERT_TRUE(prod.try_publish("still here").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text(), "still here");
  EXPECT_EQ(cons.ack(*d), ackring::Status::ok);
}

// ------------------------------------------------------------ create/open --

TEST_F(QueueFile, should_throw_already_exists_when_creating_an_existing_queue_and_leave_it_untouched) {
  auto& q = create(small_options(8, 64));
  auto prod = q.producer();
  (void)q.consumer("g");
  ASSERT_TRUE(prod.try_publish("keep me").ok());
  EXPECT_TRUE(throws_error([&] { (void)Queue::create(tq.path(), small_options(16, 32)); }, ErrorCode::already_exists));
  auto again = Queue::open(tq.path());
  EXPECT_EQ(again.options().capacity, 8u);
  EXPECT_EQ(again.stats().tail, 1u);
}

TEST_F(QueueFile, should_throw_not_found_when_opening_a_missing_queue) {
  EXPECT_TRUE(throws_error([&] { (void)Queue::open(tq.path()); }, ErrorCode::not_found));
  ScopedShmDir dir;
  EXPECT_TRUE(throws_error([] { (void)Queue::open("nope"); }, ErrorCode::not_found));
}

TEST_F(QueueFile, should_name_the_file_and_the_operation_in_an_open_error) {
  try {
    (void)Queue::open(tq.path());
    FAIL() << "no exception";
  } catch (const ackring::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(tq.path()), std::string::npos) << what;
    EXPECT_NE(what.find("open"), std::string::npos) << what;
  }
}

TEST_F(QueueFile, should_create_a_missing_queue_in_open_or_create) {
  auto q = Queue::open_or_create(tq.path(), small_options(16, 48));
  EXPECT_TRUE(std::filesystem::exists(tq.path()));
  EXPECT_EQ(q.options().capacity, 16u);
  EXPECT_EQ(q.options().max_message_size, 48u);
}

TEST_F(QueueFile, should_open_an_existing_queue_in_open_or_create_and_keep_its_options) {
  auto first = Queue::create(tq.path(), small_options(8, 64));
  auto prod = first.producer();
  (void)first.consumer("g");
  ASSERT_TRUE(prod.try_publish("one").ok());
  auto second = Queue::open_or_create(tq.path(), small_options(1024, 512));
  EXPECT_EQ(second.options().capacity, 8u);
  EXPECT_EQ(second.options().max_message_size, 64u);
  EXPECT_EQ(second.stats().tail, 1u);
}

TEST_F(QueueFile, should_round_trip_every_option_through_options) {
  QueueOptions o;
  o.capacity = 64;
  o.max_message_size = 200;
  o.default_lease = 1234ms;
  o.max_deliveries = 7;
  o.max_groups = 3;
  o.max_members = 5;
  o.max_producers = 9;
  o.claim_timeout = 777ms;
  auto& q = create(o);
  for (const QueueOptions& got : {q.options(), Queue::open(tq.path()).options()}) {
    EXPECT_EQ(got.capacity, 64u);
    EXPECT_EQ(got.max_message_size, 200u);
    EXPECT_EQ(got.default_lease, 1234ms);
    EXPECT_EQ(got.max_deliveries, 7u);
    EXPECT_EQ(got.max_groups, 3u);
    EXPECT_EQ(got.max_members, 5u);
    EXPECT_EQ(got.max_producers, 9u);
    EXPECT_EQ(got.claim_timeout, 777ms);
  }
}

TEST_F(QueueFile, should_report_the_file_mode_it_was_created_with_in_options) {
  QueueOptions o = small_options();
  o.mode = 0640;
  auto& q = create(o);
  ASSERT_EQ(file_mode(tq.path()), 0640u);
  EXPECT_EQ(q.options().mode, 0640u);
  EXPECT_EQ(Queue::open(tq.path()).options().mode, 0640u);
}

// ---------------------------------------------------------------- options --

TEST_F(QueueFile, should_reject_a_capacity_that_is_not_a_power_of_two_zero_one_or_too_big) {
  for (const std::uint32_t capacity : {0u, 1u, 3u, 6u, 100u, 1000u, (1u << 30) + 1, 1u << 31, 0xffffffffu}) {
    SCOPED_TRACE(capacity);
    EXPECT_TRUE(throws_error([&] { (void)Queue::create(tq.path(), small_options(capacity)); },
                             ErrorCode::invalid_argument));
    EXPECT_FALSE(std::filesystem::exists(tq.path()));
  }
  EXPECT_NO_THROW((void)Queue::create(tq.path(), small_options(2)));
}

TEST_F(QueueFile, should_reject_a_max_message_size_of_zero) {
  EXPECT_TRUE(throws_error([&] { (void)Queue::create(tq.path(), small_options(8, 0)); }, ErrorCode::invalid_argument));
  EXPECT_FALSE(std::filesystem::exists(tq.path()));
  EXPECT_NO_THROW((void)Queue::create(tq.path(), small_options(8, 1)));
}

// options.hpp: "payload bytes per slot, 1 .. 16 MiB".
TEST_F(QueueFile, should_reject_a_max_message_size_above_16_MiB) {
  EXPECT_TRUE(throws_error([&] { (void)Queue::create(tq.path(), small_options(2, (16u << 20) + 1)); },
                           ErrorCode::invalid_argument));
  EXPECT_FALSE(std::filesystem::exists(tq.path()));
}

TEST_F(QueueFile, should_reject_max_deliveries_of_zero_or_255) {
  for (const std::uint32_t n : {0u, 255u, 1000u}) {
    SCOPED_TRACE(n);
    QueueOptions o = small_options();
    o.max_deliveries = n;
    EXPECT_TRUE(throws_error([&] { (void)Queue::create(tq.path(), o); }, ErrorCode::invalid_argument));
    EXPECT_FALSE(std::filesystem::exists(tq.path()));
  }
  for (const std::uint32_t n : {1u, 254u}) {
    QueueOptions o = small_options();
    o.max_deliveries = n;
    EXPECT_NO_THROW({
      auto q = Queue::create(tq.path(), o);
      EXPECT_EQ(q.options().max_deliveries, n);
    });
    EXPECT_TRUE(Queue::destroy(tq.path()));
  }
}

TEST_F(QueueFile, should_reject_group_member_and_producer_limits_out_of_range) {
  auto with = [](auto set) {
    QueueOptions o = small_options();
    set(o);
    return o;
  };
  const std::vector<QueueOptions> bad = {
      with([](QueueOptions& o) { o.max_groups = 0; }),    with([](QueueOptions& o) { o.max_groups = 1025; }),
      with([](QueueOptions& o) { o.max_members = 0; }),   with([](QueueOptions& o) { o.max_members = 255; }),
      with([](QueueOptions& o) { o.max_producers = 0; }), with([](QueueOptions& o) { o.max_producers = 65536; }),
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(throws_error([&] { (void)Queue::create(tq.path(), bad[i]); }, ErrorCode::invalid_argument));
    EXPECT_FALSE(std::filesystem::exists(tq.path()));
  }
}

TEST_F(QueueFile, should_reject_a_zero_default_lease_or_claim_timeout) {
  QueueOptions o = small_options();
  o.default_lease = 0ms;
  EXPECT_TRUE(throws_error([&] { (void)Queue::create(tq.path(), o); }, ErrorCode::invalid_argument));
  o = small_options();
  o.claim_timeout = 0ms;
  EXPECT_TRUE(throws_error([&] { (void)Queue::create(tq.path(), o); }, ErrorCode::invalid_argument));
  EXPECT_FALSE(std::filesystem::exists(tq.path()));
}

// ------------------------------------------------------------------ modes --

TEST_F(QueueFile, should_create_the_file_with_mode_0600_by_default) {
  UmaskGuard umask(0);  // a permissive umask must not widen the default either
  (void)Queue::create(tq.path(), small_options());
  EXPECT_EQ(file_mode(tq.path()), 0600u);
}

TEST_F(QueueFile, should_honour_an_explicit_mode_even_under_a_restrictive_umask) {
  UmaskGuard umask(077);
  QueueOptions o = small_options();
  o.mode = 0664;
  (void)Queue::create(tq.path(), o);
  EXPECT_EQ(file_mode(tq.path()), 0664u);
}

TEST_F(QueueFile, should_create_a_named_queue_with_the_requested_mode) {
  ScopedShmDir dir;
  QueueOptions o = small_options();
  o.mode = 0640;
  (void)Queue::create("moded", o);
  EXPECT_EQ(file_mode((dir.dir() / "ackring.moded").string()), 0640u);
}

// ------------------------------------------------------------- validation --

TEST_F(QueueFile, should_refuse_to_open_a_file_that_is_not_a_queue_as_incompatible) {
  {
    std::ofstream f(tq.path(), std::ios::binary);
    const std::vector<char> zeros(8192, 0);
    f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }
  EXPECT_TRUE(throws_error([&] { (void)Queue::open(tq.path()); }, ErrorCode::incompatible));
}

TEST_F(QueueFile, should_refuse_to_open_a_file_smaller_than_the_header_as_corrupt) {
  {
    std::ofstream f(tq.path(), std::ios::binary);
    f << "ACKRING";
  }
  EXPECT_TRUE(throws_error([&] { (void)Queue::open(tq.path()); }, ErrorCode::corrupt));
}

TEST_F(QueueFile, should_refuse_to_open_a_queue_of_another_format_version_as_incompatible) {
  (void)Queue::create(tq.path(), small_options());
  const std::uint32_t version = 6;  // the format before this one
  poke(tq.path(), 8, &version, sizeof version);
  try {
    (void)Queue::open(tq.path());
    FAIL() << "no exception";
  } catch (const ackring::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::incompatible);
    EXPECT_NE(std::string(e.what()).find("version 6"), std::string::npos) << e.what();
  }
}

TEST_F(QueueFile, should_refuse_to_open_a_queue_whose_header_was_damaged_as_corrupt) {
  (void)Queue::create(tq.path(), small_options(8));
  const std::uint32_t capacity = 16;  // offset 24: Layout::capacity
  poke(tq.path(), 24, &capacity, sizeof capacity);
  EXPECT_TRUE(throws_error([&] { (void)Queue::open(tq.path()); }, ErrorCode::corrupt));
}

TEST_F(QueueFile, should_refuse_to_open_a_truncated_queue_as_corrupt) {
  (void)Queue::create(tq.path(), small_options(8));
  const auto size = std::filesystem::file_size(tq.path());
  std::filesystem::resize_file(tq.path(), size - 4096);
  EXPECT_TRUE(throws_error([&] { (void)Queue::open(tq.path()); }, ErrorCode::corrupt));
}

TEST_F(QueueFile, should_keep_a_queue_usable_through_a_moved_handle) {
  auto a = Queue::create(tq.path(), small_options());
  Queue b = std::move(a);
  auto cons = b.consumer("g");
  auto prod = b.producer();
  ASSERT_TRUE(prod.try_publish("moved").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text(), "moved");
}

}  // namespace ackring::testing
