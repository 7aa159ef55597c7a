// The C++ side of the cross-language test: opens a queue and publishes
// "msg-<i>" for i in [0, count), each waiting up to 10 s for room.
// Usage: cross_producer <queue path> <count>. Exit 0 when all were published.
#include <ackring/ackring.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: cross_producer <queue path> <count>\n");
    return 2;
  }
  try {
    auto queue = ackring::Queue::open(argv[1]);
    auto producer = queue.producer();
    const long count = std::strtol(argv[2], nullptr, 10);
    for (long i = 0; i < count; ++i) {
      const std::string text = "msg-" + std::to_string(i);
      if (auto r = producer.publish(text, std::chrono::seconds(10)); !r.ok()) {
        std::fprintf(stderr, "cross_producer: publish %ld: %s\n", i, std::string(ackring::to_string(r.status)).c_str());
        return 1;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cross_producer: %s\n", e.what());
    return 1;
  }
  return 0;
}
