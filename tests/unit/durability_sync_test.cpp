#include <gtest/gtest.h>

#include "ackring/ackring.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {

// A queue whose publishes return once their records are on disk; its
// journal is in journal().
class SyncDurability : public QueueTest {
 protected:
  [[nodiscard]] QueueOptions sync_options() {
    return {.capacity = 64, .max_message_size = 64, .durability = Durability::sync,
            .journal_dir = journal().root().string()};
  }
};

TEST_F(SyncDurability, should_return_from_publish_only_after_the_record_is_durable) {
  auto& q = create(sync_options());
  q.create_group("g");
  auto p = q.producer();
  for (int i = 0; i < 20; ++i) {
    const auto r = p.publish("m" + std::to_string(i), 5s);
    ASSERT_TRUE(r.ok()) << ackring::to_string(r.status);
    EXPECT_GT(q.stats().durable_seq, r.seq);  // write-ahead: on disk before publish returned
  }
  const auto t = p.try_publish("last");
  ASSERT_TRUE(t.ok());
  EXPECT_GT(q.stats().durable_seq, t.seq);
}

TEST_F(SyncDurability, should_hand_consumers_only_durable_messages) {
  auto& [q, c, p] = open(sync_options());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(p.publish("m", 5s).ok());
    auto d = c.receive(2s);
    ASSERT_TRUE(d);
    EXPECT_LT(d->seq(), q.stats().durable_seq);
    EXPECT_EQ(c.ack(*d), ackring::Status::ok);
  }
}

}  // namespace ackring::testing
