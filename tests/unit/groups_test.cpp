// Consumer groups: fan-out, competing members, start positions, removal,
// names, and the limits on groups and members.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ackring/ackring.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {

// Each test runs on a fresh queue path and opens what it needs (QueueTest).
using Groups = QueueTest;

TEST_F(Groups, should_deliver_every_message_to_every_group) {
  auto& q = create(small_options(16));
  auto a = q.consumer("a");
  auto b = q.consumer("b");
  auto c = q.consumer("c");
  auto prod = q.producer();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(prod.try_publish("m" + std::to_string(i)).ok());
  for (auto* cons : {&a, &b, &c}) {
    SCOPED_TRACE(cons->group());
    auto got = receive_n(*cons, 6, 30ms);
    ASSERT_EQ(got.size(), 5u);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(got[i].seq(), static_cast<std::uint64_t>(i));
      EXPECT_EQ(got[i].text(), "m" + std::to_string(i));
      EXPECT_EQ(got[i].deliveries(), 1u);
    }
  }
}

TEST_F(Groups, should_not_let_an_ack_in_one_group_settle_the_message_in_another) {
  auto& q = create(small_options());
  auto a = q.consumer("a", {.lease = 40ms});
  auto b = q.consumer("b", {.lease = 40ms});
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("shared").ok());
  auto da = a.try_receive();
  auto db = b.try_receive();
  ASSERT_TRUE(da && db);
  EXPECT_EQ(a.ack(*da), Status::ok);
  EXPECT_EQ(group_stats(q, "a").floor, 1u);
  EXPECT_EQ(group_stats(q, "b").floor, 0u);
  // b did not ack: its lease runs out and b gets the message again.
  auto again = b.receive(2s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->seq(), 0u);
  EXPECT_EQ(again->deliveries(), 2u);
  EXPECT_FALSE(a.try_receive());
}

TEST_F(Groups, should_give_competing_members_of_one_group_distinct_messages) {
  auto& q = create(small_options(16));
  auto m1 = q.consumer("work");
  auto m2 = q.consumer("work");
  EXPECT_NE(m1.member_index(), m2.member_index());
  auto prod = q.producer();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(prod.try_publish("job" + std::to_string(i)).ok());
  std::set<std::uint64_t> seen1, seen2;
  for (int i = 0; i < 5; ++i) {
    auto d1 = m1.try_receive();
    auto d2 = m2.try_receive();
    ASSERT_TRUE(d1 && d2);
    seen1.insert(d1->seq());
    seen2.insert(d2->seq());
  }
  EXPECT_FALSE(m1.try_receive());
  EXPECT_FALSE(m2.try_receive());
  EXPECT_EQ(seen1.size(), 5u);
  EXPECT_EQ(seen2.size(), 5u);
  std::set<std::uint64_t> all = seen1;
  all.insert(seen2.begin(), seen2.end());
  EXPECT_EQ(all.size(), 10u);  // disjoint, and together every message
  EXPECT_EQ(*all.begin(), 0u);
  EXPECT_EQ(*all.rbegin(), 9u);
}

TEST_F(Groups, should_split_messages_between_members_receiving_on_two_threads_without_duplicates) {
  constexpr int kMessages = 400;
  auto& q = create(small_options(512, 16));
  q.create_group("work");
  auto prod = q.producer();
  for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(prod.try_publish(std::to_string(i)).ok());
  std::atomic<int> total{0};
  std::vector<std::uint64_t> got[2];
  auto run = [&](int id) {
    auto cons = q.consumer("work");
    while (total.load() < kMessages) {
      auto d = cons.receive(20ms);
      if (!d) continue;
      got[id].push_back(d->seq());
      EXPECT_EQ(d->text(), std::to_string(d->seq()));
      EXPECT_EQ(cons.ack(*d), Status::ok);
      total.fetch_add(1);
    }
  };
  std::thread t0(run, 0), t1(run, 1);
  t0.join();
  t1.join();
  std::vector<std::uint64_t> all = got[0];
  all.insert(all.end(), got[1].begin(), got[1].end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) EXPECT_EQ(all[i], static_cast<std::uint64_t>(i));
  EXPECT_EQ(group_stats(q, "work").floor, static_cast<std::uint64_t>(kMessages));
}

TEST_F(Groups, should_start_an_earliest_group_at_the_oldest_retained_message) {
  auto& q = create(small_options(8));
  auto prod = q.producer();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(prod.try_publish("old" + std::to_string(i)).ok());
  auto cons = q.consumer("late", {.group = {.start = StartPosition::earliest}});
  auto got = receive_n(cons, 4, 30ms);
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i].text(), "old" + std::to_string(i));
}

TEST_F(Groups, should_start_a_default_group_at_the_oldest_retained_message) {
  auto& q = create(small_options(8));
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("before").ok());
  q.create_group("g");
  auto cons = q.consumer("g");
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text(), "before");
}

TEST_F(Groups, should_start_a_latest_group_after_the_messages_already_published) {
  auto& q = create(small_options(8));
  auto prod = q.producer();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(prod.try_publish("old").ok());
  q.create_group("tail", {.start = StartPosition::latest});
  auto cons = q.consumer("tail");
  EXPECT_FALSE(cons.try_receive());
  EXPECT_EQ(group_stats(q, "tail").floor, 3u);
  ASSERT_TRUE(prod.try_publish("new").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text(), "new");
  EXPECT_EQ(d->seq(), 3u);
  EXPECT_FALSE(cons.try_receive());
}

TEST_F(Groups, should_start_an_earliest_group_only_at_messages_the_ring_still_holds) {
  auto& q = create(small_options(4));
  auto anchor = q.consumer("anchor");
  auto prod = q.producer();
  std::vector<std::string> published;
  for (int i = 0; i < 4; ++i) {
    published.push_back("p" + std::to_string(i));
    ASSERT_TRUE(prod.try_publish(published.back()).ok());
  }
  auto first = receive_n(anchor, 4, 30ms);
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(anchor.ack_batch(first), 4u);
  for (int i = 4; i < 6; ++i) {
    published.push_back("p" + std::to_string(i));
    ASSERT_TRUE(prod.try_publish(published.back()).ok());
  }
  // Slots of seqs 0 and 1 now hold 4 and 5: a new group must not start there.
  auto late = q.consumer("late");
  auto got = receive_n(late, 7, 30ms);
  ASSERT_FALSE(got.empty());
  for (const auto& d : got) {
    EXPECT_GE(d.seq(), 2u);
    ASSERT_LT(d.seq(), published.size());
    EXPECT_EQ(d.text(), published[d.seq()]);
  }
  EXPECT_EQ(got.back().seq(), 5u);
}

TEST_F(Groups, should_stop_blocking_producers_once_the_lagging_group_is_removed) {
  auto& q = create(small_options(4));
  q.create_group("lagging");
  auto prod = q.producer();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(prod.try_publish("x").ok());
  ASSERT_EQ(prod.try_publish("x").status, Status::queue_full);
  EXPECT_TRUE(q.remove_group("lagging"));
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(prod.try_publish("y").ok()) << i;
}

TEST_F(Groups, should_wake_a_waiting_publish_when_the_lagging_group_is_removed) {
  auto& q = create(small_options(4));
  q.create_group("lagging");
  auto prod = q.producer();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(prod.try_publish("x").ok());
  std::thread remover([&] {
    std::this_thread::sleep_for(30ms);
    EXPECT_TRUE(q.remove_group("lagging"));
  });
  const auto r = prod.publish("y", 10s);
  remover.join();
  EXPECT_TRUE(r.ok()) << ackring::to_string(r.status);
}

TEST_F(Groups, should_answer_no_such_group_to_a_consumer_whose_group_was_removed) {
  auto& [q, cons, prod] = open(small_options());
  ASSERT_TRUE(prod.try_publish("a").ok());
  ASSERT_TRUE(prod.try_publish("b").ok());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_TRUE(q.remove_group("g"));
  EXPECT_EQ(cons.ack(*d), Status::no_such_group);
  EXPECT_EQ(cons.nack(d->receipt()), Status::no_such_group);
  EXPECT_EQ(cons.extend(d->receipt(), 1000ms), Status::no_such_group);
  EXPECT_EQ(cons.reject(d->receipt()), Status::no_such_group);
  EXPECT_FALSE(cons.try_receive());
  EXPECT_FALSE(cons.receive(20ms));
  const std::vector<ackring::Delivery> batch = {*d};
  EXPECT_EQ(cons.ack_batch(batch), 0u);
}

TEST_F(Groups, should_keep_an_old_handle_out_of_a_group_recreated_under_the_same_name) {
  auto& [q, old, prod] = open(small_options());
  ASSERT_TRUE(prod.try_publish("a").ok());
  auto d = old.try_receive();
  ASSERT_TRUE(d);
  ASSERT_TRUE(q.remove_group("g"));
  q.create_group("g", {.start = StartPosition::earliest});
  EXPECT_EQ(old.ack(*d), Status::no_such_group);
  EXPECT_FALSE(old.try_receive());
  auto fresh = q.consumer("g");
  auto e = fresh.try_receive();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->text(), "a");
  EXPECT_EQ(fresh.ack(*e), Status::ok);
}

TEST_F(Groups, should_return_false_when_removing_a_missing_group) {
  auto& q = create(small_options());
  EXPECT_FALSE(q.remove_group("ghost"));
  q.create_group("g");
  EXPECT_TRUE(q.remove_group("g"));
  EXPECT_FALSE(q.remove_group("g"));
}

TEST_F(Groups, should_list_the_names_of_the_groups_that_exist) {
  auto& q = create(small_options());
  EXPECT_TRUE(q.group_names().empty());
  q.create_group("alpha");
  q.create_group("beta");
  (void)q.consumer("gamma");
  auto names = q.group_names();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "beta", "gamma"}));
  ASSERT_TRUE(q.remove_group("beta"));
  names = Queue::open(tq.path()).group_names();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "gamma"}));
}

TEST_F(Groups, should_throw_already_exists_when_creating_a_duplicate_group) {
  auto& q = create(small_options());
  q.create_group("g");
  EXPECT_TRUE(throws_error([&] { q.create_group("g"); }, ErrorCode::already_exists));
  EXPECT_EQ(q.group_names().size(), 1u);
  // Joining an existing group is not a duplicate creation.
  EXPECT_NO_THROW((void)q.consumer("g"));
}

TEST_F(Groups, should_throw_resource_exhausted_when_every_group_slot_is_used) {
  auto o = small_options();
  o.max_groups = 2;
  auto& q = create(o);
  q.create_group("a");
  (void)q.consumer("b");
  EXPECT_TRUE(throws_error([&] { q.create_group("c"); }, ErrorCode::resource_exhausted));
  EXPECT_TRUE(throws_error([&] { (void)q.consumer("c"); }, ErrorCode::resource_exhausted));
  // A removed group's slot can be used again.
  ASSERT_TRUE(q.remove_group("a"));
  EXPECT_NO_THROW(q.create_group("c"));
}

TEST_F(Groups, should_throw_resource_exhausted_when_every_member_slot_is_held) {
  auto o = small_options();
  o.max_members = 2;
  auto& q = create(o);
  auto m1 = q.consumer("g");
  std::optional<ackring::Consumer> m2(q.consumer("g"));
  EXPECT_TRUE(throws_error([&] { (void)q.consumer("g"); }, ErrorCode::resource_exhausted));
  // Other groups have their own member tables.
  EXPECT_NO_THROW((void)q.consumer("other"));
  // A member that leaves frees its slot.
  m2.reset();
  EXPECT_NO_THROW((void)q.consumer("g"));
}

TEST_F(Groups, should_throw_not_found_when_joining_a_missing_group_without_create_group) {
  auto& q = create(small_options());
  EXPECT_TRUE(throws_error([&] { (void)q.consumer("missing", {.create_group = false}); }, ErrorCode::not_found));
  EXPECT_TRUE(q.group_names().empty());
  q.create_group("present");
  EXPECT_NO_THROW((void)q.consumer("present", {.create_group = false}));
}

TEST_F(Groups, should_reject_invalid_group_names_as_invalid_argument) {
  auto& q = create(small_options());
  for (const std::string& name :
       std::vector<std::string>{"", "with space", std::string(48, 'g'), "tab\t", "caf\xc3\xa9", std::string("n\0l", 3)}) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(throws_error([&] { q.create_group(name); }, ErrorCode::invalid_argument));
    EXPECT_TRUE(throws_error([&] { (void)q.consumer(name); }, ErrorCode::invalid_argument));
  }
  EXPECT_TRUE(q.group_names().empty());
  EXPECT_NO_THROW(q.create_group(std::string(47, 'g')));
  EXPECT_EQ(q.group_names(), std::vector<std::string>{std::string(47, 'g')});
}

TEST_F(Groups, should_create_a_group_from_consumer_with_the_group_options_it_was_given) {
  auto& q = create(small_options());
  (void)q.consumer("dropper", {.group = {.overflow = OverflowPolicy::drop}});
  (void)q.consumer("blocker");
  EXPECT_EQ(group_stats(q, "dropper").overflow, OverflowPolicy::drop);
  EXPECT_EQ(group_stats(q, "blocker").overflow, OverflowPolicy::block);
}

}  // namespace ackring::testing
