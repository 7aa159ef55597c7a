// Helpers shared by the tests: unique queue paths that are removed afterwards.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

#include "ackring/queue.hpp"

namespace ackring::testing {

class TempQueue {
 public:
  TempQueue() {
    static std::atomic<int> counter{0};
    path_ = "/dev/shm/ackring-test." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  }
  ~TempQueue() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
    std::filesystem::remove(path_ + ".dlq", ec);
  }
  TempQueue(const TempQueue&) = delete;
  TempQueue& operator=(const TempQueue&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace ackring::testing
