// Shared pieces of the multi-process durability tests. The parent forks, so
// it runs no journal thread of its own (a fork of a threaded parent is not
// something to build on); the children turn the threads back on.
#pragma once

#include <chrono>
#include <string>
#include <thread>

#include "ackring/ackring.hpp"
#include "queue/durability.hpp"
#include "process_util.hpp"

namespace ackring::testing {

// While alive, queues this process opens run no journal thread.
struct NoThreadsInParent {
  NoThreadsInParent() { detail::set_durability_threads_enabled(false); }
  ~NoThreadsInParent() { detail::set_durability_threads_enabled(true); }
};

// A child that opens the queue with a journal thread and sleeps: the
// journal writer if it gets the lock first, a standby otherwise.
inline Child journal_holder(const std::string& path) {
  return fork_child([path] {
    detail::set_durability_threads_enabled(true);
    auto q = Queue::open(path);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    return 0;
  });
}

}  // namespace ackring::testing
