// ackring-interference-bench: what a consumer that keeps up costs the producer.
//
// One producer process publishes 64 B messages one at a time with
// try_publish into a ring large enough that it never waits for room; in
// "alone" runs nobody reads them, in "polling" runs a consumer process on the
// other CPU takes them with receive_batch(32) + ack_batch as they come. Each
// polling run reports the producer's ns per publish and the consumer's mean
// batch: a mean batch near 1 means the consumer caught up and spends its time
// polling the header line of the slot the producer is writing. The table,
// sorted by mean batch, shows what that costs the producer (docs/performance.md, "Where a
// message's time goes"). Every message is checked by index, in order.
//
// --keyed does the same for effectively-once, as ackring-bench's row does it:
// a keyed publish per message (its index as the key) into a queue with a
// 2^21-entry dedup table, and a consumer on process_once_batch. --linger
// gives the consumer ConsumerOptions::linger: what a consumer that waits for
// a batch to gather, instead of polling, leaves the producer.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ackring/ackring.hpp"
#include "common.hpp"

namespace {

using ackring_bench::index_of;
using ackring_bench::now_ns;
using ackring_bench::pin_to;
using ackring_bench::stamp;

struct Report {
  double producer_ns = 0;        // per publish
  double consumer_batch = 0;     // mean messages per receive_batch; 0: no consumer
  std::uint64_t out_of_order = 0;
};

struct Config {
  std::uint64_t messages = 1'000'000;
  int runs = 12;
  int cpu_producer = 0, cpu_consumer = 1;
  bool keyed = false;
  std::chrono::microseconds linger{0};  // the consumer's ConsumerOptions::linger
};

constexpr std::uint32_t kSize = 64;
// --keyed: ackring-bench's effectively-once table (ackring_modes.hpp).
constexpr std::uint32_t kKeyedDedupEntries = 1u << 21;
constexpr ackring::Millis kKeyedDedupWindow{50};

// A whole lap published and drained in this process first, so the measured
// messages find every page mapped: a fresh file's first lap pays page faults.
void warm(ackring::Queue& q, std::uint64_t messages) {
  auto p = q.producer();
  ackring::ConsumerOptions co;
  co.create_group = false;
  auto c = q.consumer("g", co);
  std::vector<std::byte> msg(kSize);
  std::vector<ackring::Delivery> buf(32);
  auto drain = [&] {
    for (std::size_t n; (n = c.try_receive_batch(buf)) != 0;) (void)c.ack_batch(std::span(buf.data(), n));
  };
  for (std::uint64_t i = 0; i < messages; ++i) {
    if (!p.try_publish(ackring::Bytes(msg)).ok()) throw std::runtime_error("warm-up publish failed");
    if ((i & 4095) == 4095) drain();
  }
  drain();
}

Report run_once(const Config& cfg, bool polling) {
  const std::string path = "/dev/shm/ackring-interference." + std::to_string(::getpid());
  ackring::Queue::destroy(path);
  ackring::QueueOptions o;
  o.capacity = 1u << 20;
  while (o.capacity < cfg.messages + 1) o.capacity <<= 1;
  o.max_message_size = kSize;
  if (cfg.keyed) o.dedup_entries = kKeyedDedupEntries, o.dedup_window = kKeyedDedupWindow;
  auto q = ackring::Queue::create(path, o);
  q.create_group("g");
  warm(q, o.capacity);
  ackring_bench::Shared<Report> shared;
  int ready[2];
  if (::pipe(ready) != 0) ackring_bench::throw_errno("pipe");
  pid_t child = -1;
  if (polling) {
    child = ::fork();
    if (child == 0) {
      int code = 0;
      try {
        pin_to(cfg.cpu_consumer);
        auto qq = ackring::Queue::open(path);
        ackring::ConsumerOptions co;
        co.create_group = false;
        co.linger = cfg.linger;
        auto c = qq.consumer("g", co);
        char one = 1;
        if (::write(ready[1], &one, 1) != 1) ::_exit(3);
        std::vector<ackring::Delivery> buf(32);
        std::uint64_t got = 0, calls = 0;
        while (got < cfg.messages) {
          const std::size_t n = c.receive_batch(buf, std::chrono::seconds(5));
          if (n == 0) throw std::runtime_error("consumer: nothing for 5 s");
          for (std::size_t i = 0; i < n; ++i)
            if (index_of(buf[i].payload().data()) != got + i) ++shared->out_of_order;
          got += n;
          ++calls;
          const std::span<const ackring::Delivery> batch(buf.data(), n);
          if (cfg.keyed) {
            const auto r = c.process_once_batch(batch, [](const ackring::Delivery&) {});
            if (r.duplicates != 0 || r.unrecorded != 0 || r.acked != n)
              throw std::runtime_error("consumer: process_once_batch found a duplicate, recorded nothing or lost leases");
          } else if (c.ack_batch(batch) != n) {
            throw std::runtime_error("consumer: ack_batch lost leases");
          }
        }
        shared->consumer_batch = static_cast<double>(got) / static_cast<double>(calls);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "ackring-interference-bench: %s\n", e.what());
        code = 1;
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
    char one = 0;
    if (::read(ready[0], &one, 1) != 1) throw std::runtime_error("consumer did not start");
  }
  ::close(ready[0]);
  ::close(ready[1]);
  pin_to(cfg.cpu_producer);
  auto p = q.producer();
  std::vector<std::byte> msg(kSize);
  const std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < cfg.messages; ++i) {
    stamp(msg.data(), i);
    const std::string_view key(reinterpret_cast<const char*>(msg.data()), 8);
    const auto r = cfg.keyed ? p.try_publish(ackring::Bytes(msg), {.key = key}) : p.try_publish(ackring::Bytes(msg));
    if (!r.ok() || r.duplicate)  // the ring is sized never to fill, and every key is fresh
      throw std::runtime_error("publish " + std::to_string(i) + ": " +
                               (r.duplicate ? std::string("a fresh key found duplicate") : std::string(ackring::to_string(r.status))));
  }
  const std::uint64_t elapsed = now_ns() - t0;
  Report r;
  if (child > 0) {
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("consumer failed");
    r = *shared.get();
  }
  r.producer_ns = static_cast<double>(elapsed) / static_cast<double>(cfg.messages);
  ackring::Queue::destroy(path);
  return r;
}

Config parse(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--messages") c.messages = std::stoull(value());
    else if (a == "--keyed") c.keyed = true;
    else if (a == "--linger") c.linger = std::chrono::microseconds(std::stoll(value()));
    else if (a == "--runs") c.runs = std::stoi(value());
    else if (a == "--cpus") {
      const std::string v = value();
      const auto comma = v.find(',');
      if (comma == std::string::npos) throw std::runtime_error("--cpus wants A,B");
      c.cpu_producer = std::stoi(v.substr(0, comma));
      c.cpu_consumer = std::stoi(v.substr(comma + 1));
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: ackring-interference-bench [--messages N] [--runs R] [--cpus A,B] [--keyed] [--linger US]\n"
          "  The producer's cost per 64 B try_publish (pinned to cpu A) alone, and with a consumer\n"
          "  process (cpu B) taking the messages as they come: receive_batch(32) + ack_batch.\n"
          "  R runs of each (default 12), N messages a run (default 1000000); polling runs are\n"
          "  listed by the consumer's mean batch (near 1: it caught up with the producer).\n"
          "  --keyed: effectively-once, as ackring-bench runs it: each publish keyed by the\n"
          "  message's index (2^21-entry dedup table, 50 ms window, its pages first touched by\n"
          "  the measured publishes), the consumer on receive_batch(32) + process_once_batch.\n"
          "  --linger US: the consumer's ConsumerOptions::linger (default 0): a short batch waits\n"
          "  US microseconds for more instead of polling the slot being written.\n");
      std::exit(0);
    } else {
      throw std::runtime_error("unknown option " + a + " (--help lists them)");
    }
  }
  if (c.messages == 0 || c.runs <= 0) throw std::runtime_error("--messages and --runs must be positive");
  if (c.linger.count() < 0 || c.linger > std::chrono::seconds(1))
    throw std::runtime_error("--linger must be between 0 and 1000000 (us)");
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Config cfg = parse(argc, argv);
    std::vector<double> alone;
    std::vector<Report> polling;
    for (int i = 0; i < cfg.runs; ++i) {
      alone.push_back(run_once(cfg, false).producer_ns);
      polling.push_back(run_once(cfg, true));
    }
    std::uint64_t bad = 0;
    for (const Report& r : polling) bad += r.out_of_order;
    std::sort(alone.begin(), alone.end());
    std::sort(polling.begin(), polling.end(), [](const Report& a, const Report& b) { return a.consumer_batch < b.consumer_batch; });
    std::printf("ackring-interference-bench: %llu x 64 B per run%s, consumer linger %lld us, producer on cpu %d, "
                "consumer on cpu %d, load %.2f\n",
                static_cast<unsigned long long>(cfg.messages), cfg.keyed ? " (keyed, process-once)" : "",
                static_cast<long long>(cfg.linger.count()), cfg.cpu_producer, cfg.cpu_consumer,
                ackring_bench::read_load1());
    std::printf("producer alone: median %.1f ns/publish (min %.1f, max %.1f)\n", alone[alone.size() / 2], alone.front(),
                alone.back());
    std::printf("with a consumer, by its mean batch:\n  %14s %18s\n", "mean batch", "producer ns/pub");
    for (const Report& r : polling) std::printf("  %14.2f %18.1f\n", r.consumer_batch, r.producer_ns);
    if (bad != 0) {
      std::fprintf(stderr, "ackring-interference-bench: %llu messages out of order\n", static_cast<unsigned long long>(bad));
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ackring-interference-bench: %s\n", e.what());
    return 1;
  }
}
