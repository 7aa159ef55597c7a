// Shared by the journal failpoint tests: a sync queue whose journal a forked
// child may hold (the parent runs no journal thread until a test starts
// one), and the check that messages arrive durable, once each, by content.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>

#include "failpoint_util.hpp"
#include "test_util.hpp"

namespace ackring::testing {

class JournalProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { set_journal_writer_enabled(false); }
  void TearDown() override { set_journal_writer_enabled(true); }

  [[nodiscard]] QueueOptions sync_options() const {
    QueueOptions o = small_options(64);
    o.durability = Durability::sync;
    o.journal_dir = journal_.root().string();
    return o;
  }

  // Receives until `want` arrived or nothing comes for 5 s; returns the
  // texts (each once: a second delivery of one is a failure).
  static std::set<std::string> receive_texts(Consumer& c, const Queue& q, std::size_t want) {
    std::set<std::string> got;
    while (got.size() < want) {
      auto d = c.receive(std::chrono::seconds(5));
      if (!d) break;
      EXPECT_LT(d->seq(), q.stats().durable_seq) << "handed out before it was durable";
      EXPECT_TRUE(got.insert(text_of(d->payload())).second) << "delivered twice: " << text_of(d->payload());
      EXPECT_EQ(c.ack(*d), Status::ok);
    }
    return got;
  }

  TempJournalDir journal_;
  TempQueue tq_;
};

}  // namespace ackring::testing
