// Shared by the fuzz targets, the corpus runner and the seed generator: the
// template queue file that overlay inputs are applied to, and temp paths.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ackring/ackring.hpp"

namespace ackring::fuzz {

// Small on purpose: the whole file is 12 KiB, so a 16-bit offset reaches
// every byte and the fuzzer's mutations land in every region.
inline QueueOptions template_options() {
  QueueOptions o;
  o.capacity = 8;
  o.max_message_size = 64;
  o.default_lease = Millis{1000};
  o.max_deliveries = 3;
  o.max_groups = 3;
  o.max_members = 2;
  o.max_producers = 2;
  o.claim_timeout = Millis{1};
  return o;
}

// Names of the template's groups: g0 (block), g1 (drop).
inline constexpr const char* kGroupNames[] = {"g0", "g1"};

inline std::string temp_path(const char* tag) {
  return "/dev/shm/ackring-fuzz." + std::string(tag) + "." + std::to_string(::getpid());
}

inline void remove_queue_files(const std::string& path) {
  ::unlink(path.c_str());
  ::unlink((path + ".dlq").c_str());
}

inline std::vector<std::byte> read_whole_file(const std::string& path) {
  std::vector<std::byte> out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  std::byte buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  ::close(fd);
  return out;
}

inline bool write_whole_file(const std::string& path, const void* data, std::size_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const auto* p = static_cast<const std::byte*>(data);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, p + done, size - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return done == size;
}

// A queue in a lived-in state: messages committed, some acked, one nacked,
// leases left behind by a member that went away, a drop group that read in
// at-most-once mode. Returns the file's bytes (the file itself is removed).
inline std::vector<std::byte> build_template() {
  const std::string path = temp_path("template");
  remove_queue_files(path);
  {
    Queue q = Queue::create(path, template_options());
    q.create_group(kGroupNames[0]);
    q.create_group(kGroupNames[1], {.overflow = OverflowPolicy::drop});
    {
      Producer p = q.producer();
      for (int i = 0; i < 6; ++i) (void)p.try_publish("template message " + std::to_string(i));
    }
    {
      Consumer c = q.consumer(kGroupNames[0], {.create_group = false});
      auto a = c.try_receive();
      auto b = c.try_receive();
      auto d = c.try_receive();
      if (a) (void)c.ack(*a);
      if (b) (void)c.nack(b->receipt(), Millis{1});
      (void)d;  // left leased: expired by the member's departure
    }
    {
      Consumer c = q.consumer(kGroupNames[1], {.mode = DeliveryMode::at_most_once, .create_group = false});
      (void)c.try_receive();
      (void)c.try_receive();
    }
  }
  auto bytes = read_whole_file(path);
  remove_queue_files(path);
  return bytes;
}

}  // namespace ackring::fuzz
