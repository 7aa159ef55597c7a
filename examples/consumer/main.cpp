// The smallest program using an installed ackring: creates a queue with one
// consumer group, publishes one message, receives it, acks it, removes the
// queue. Exit 0 and "received: hello from <pid>" when the library works.
// Build it against an installed ackring (see CMakeLists.txt or Makefile).
#include <ackring/ackring.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

#include <unistd.h>

int main() {
  using namespace std::chrono_literals;
  // A path (it contains '/'), unique per process, so runs never collide.
  const std::string path = "/dev/shm/ackring.consumer-example." + std::to_string(::getpid());
  int rc = 1;
  try {
    auto queue = ackring::Queue::create(path, {.capacity = 16, .max_message_size = 256});
    queue.create_group("example");
    auto consumer = queue.consumer("example");
    auto producer = queue.producer();

    const std::string sent = "hello from " + std::to_string(::getpid());
    if (auto r = producer.publish(sent, 1s); !r.ok()) {
      std::fprintf(stderr, "publish: %s\n", std::string(ackring::to_string(r.status)).c_str());
    } else if (auto d = consumer.receive(5s); !d) {
      std::fprintf(stderr, "receive: nothing within 5 s\n");
    } else if (d->text() != sent) {
      std::fprintf(stderr, "received '%s', expected '%s'\n", std::string(d->text()).c_str(), sent.c_str());
    } else if (auto s = consumer.ack(*d); s != ackring::Status::ok) {
      std::fprintf(stderr, "ack: %s\n", std::string(ackring::to_string(s)).c_str());
    } else {
      std::printf("received: %s\n", std::string(d->text()).c_str());
      rc = 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ackring: %s\n", e.what());
  }
  ackring::Queue::destroy(path);
  return rc;
}
