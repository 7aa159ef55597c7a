// The end-to-end demo: real processes on one queue.
//
//   producer ──▶ queue ──▶ group "billing": members A and B compete
//                      └─▶ group "audit":   member C sees everything too
//
// Member B stops acking while it holds leases and is killed with SIGKILL.
// Its leases come back at once (its process is dead), member A takes them
// over (delivery count 2), and in the end every message is acked exactly
// once per group and none is lost.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "ackring/ackring.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t kMessages = 20'000;
constexpr std::uint64_t kHoldAfter = 300;  // member B stops acking after this many

struct AckRecord {
  std::uint64_t seq;
  std::uint32_t deliveries;
  std::uint32_t pad;
};

std::string g_queue;
std::filesystem::path g_dir;

[[noreturn]] void child_exit(int code) {
  std::fflush(stdout);
  ::_exit(code);
}

// A group member: receive, log the ack (write(2), so a SIGKILL loses nothing
// already written), ack. Member "B" holds its leases after kHoldAfter messages
// and tells the parent, which kills it.
void run_member(const std::string& group, const std::string& who, int ready_fd) {
  auto q = ackring::Queue::open(g_queue);
  ackring::ConsumerOptions options;
  options.lease = 30'000ms;  // long on purpose: B's messages must come back because B died, not by expiry
  auto consumer = q.consumer(group, options);
  const int log = ::open((g_dir / (group + "." + who)).c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  std::uint64_t received = 0;
  std::vector<ackring::Delivery> batch(32);
  for (;;) {
    const std::size_t n = consumer.receive_batch(batch, 200ms);
    if (n == 0) {
      if (std::filesystem::exists(g_dir / "stop")) child_exit(0);
      continue;
    }
    received += n;
    if (who == "B" && received >= kHoldAfter) {
      // Hold these leases unacked and wait to be killed.
      const char byte = 'h';
      (void)::write(ready_fd, &byte, 1);
      for (;;) ::pause();
    }
    std::vector<AckRecord> records;
    for (std::size_t i = 0; i < n; ++i) records.push_back({batch[i].seq(), batch[i].deliveries(), 0});
    (void)::write(log, records.data(), records.size() * sizeof(AckRecord));
    consumer.ack_batch(std::span(batch.data(), n));
    if (who == "B") std::this_thread::sleep_for(1ms);  // B is the slow one
  }
}

void run_producer() {
  auto q = ackring::Queue::open(g_queue);
  auto producer = q.producer();
  char text[64];
  for (std::uint64_t i = 0; i < kMessages; ++i) {
    const int len = std::snprintf(text, sizeof text, "order-%llu", static_cast<unsigned long long>(i));
    const auto r = producer.publish(std::string_view(text, static_cast<std::size_t>(len)), 10s);
    if (!r.ok()) {
      std::fprintf(stderr, "producer: publish %llu failed: %s\n", static_cast<unsigned long long>(i),
                   std::string(ackring::to_string(r.status)).c_str());
      child_exit(1);
    }
  }
  child_exit(0);
}

template <typename F>
pid_t spawn(F&& body) {
  std::fflush(stdout);  // children must not inherit and re-print buffered output
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(1);
  }
  if (pid == 0) {
    try {
      body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      child_exit(1);
    }
    child_exit(0);
  }
  return pid;
}

std::map<std::uint64_t, std::vector<std::uint32_t>> read_acks(const std::string& group,
                                                               std::map<std::string, std::uint64_t>& per_member) {
  std::map<std::uint64_t, std::vector<std::uint32_t>> acks;
  for (const auto& entry : std::filesystem::directory_iterator(g_dir)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(group + ".", 0) != 0) continue;
    std::FILE* f = std::fopen(entry.path().c_str(), "rb");
    AckRecord r;
    while (f && std::fread(&r, sizeof r, 1, f) == 1) {
      acks[r.seq].push_back(r.deliveries);
      ++per_member[name];
    }
    if (f) std::fclose(f);
  }
  return acks;
}

}  // namespace

int main(int argc, char** argv) {
  g_queue = argc > 1 ? argv[1] : "/dev/shm/ackring.demo-" + std::to_string(::getpid());
  g_dir = std::filesystem::temp_directory_path() / ("ackring-demo-" + std::to_string(::getpid()));
  std::filesystem::create_directories(g_dir);
  ackring::Queue::destroy(g_queue);
  auto q = ackring::Queue::create(g_queue, {.capacity = 1024, .max_message_size = 64});
  q.create_group("billing");
  q.create_group("audit");
  std::printf("queue %s: capacity 1024, groups billing (members A, B) and audit (member C)\n",
              q.path().c_str());

  int ready[2];
  if (::pipe(ready) != 0) return 1;
  const pid_t a = spawn([&] { run_member("billing", "A", -1); });
  const pid_t b = spawn([&] { run_member("billing", "B", ready[1]); });
  const pid_t c = spawn([&] { run_member("audit", "C", -1); });
  const pid_t producer = spawn([] { run_producer(); });
  std::printf("producer pid %d publishes %llu messages; members A=%d B=%d C=%d\n", producer,
              static_cast<unsigned long long>(kMessages), a, b, c);

  char byte;
  if (::read(ready[0], &byte, 1) == 1) {
    const auto s = q.stats();
    std::uint64_t held = 0;
    for (const auto& g : s.groups)
      for (const auto& m : g.members)
        if (m.pid == b) held = m.in_flight;
    ::kill(b, SIGKILL);
    std::printf("member B (pid %d) holds %llu unacked leases: SIGKILL\n", b, static_cast<unsigned long long>(held));
  }
  int status = 0;
  ::waitpid(b, &status, 0);
  ::waitpid(producer, &status, 0);
  const bool producer_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;

  // Wait until both groups have settled everything that was published.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    const auto s = q.stats();
    bool done = true;
    for (const auto& g : s.groups) done = done && g.floor == s.tail;
    if (done || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(20ms);
  }
  std::FILE* stop = std::fopen((g_dir / "stop").c_str(), "w");
  if (stop) std::fclose(stop);
  ::waitpid(a, &status, 0);
  ::waitpid(c, &status, 0);

  const auto stats = q.stats();
  bool ok = producer_ok && stats.published == kMessages;
  std::printf("\npublished %llu, aborted claims %llu\n", static_cast<unsigned long long>(stats.published),
              static_cast<unsigned long long>(stats.aborted));
  for (const std::string group : {"billing", "audit"}) {
    std::map<std::string, std::uint64_t> per_member;
    const auto acks = read_acks(group, per_member);
    std::uint64_t missing = 0, twice = 0, redelivered = 0;
    for (std::uint64_t seq = 0; seq < kMessages; ++seq) {
      const auto it = acks.find(seq);
      if (it == acks.end()) {
        ++missing;
        continue;
      }
      if (it->second.size() > 1) ++twice;
      if (it->second.back() > 1) ++redelivered;
    }
    std::printf("group %-8s acked %zu distinct messages, missing %llu, acked twice %llu, redelivered %llu\n",
                group.c_str(), acks.size(), static_cast<unsigned long long>(missing),
                static_cast<unsigned long long>(twice), static_cast<unsigned long long>(redelivered));
    for (const auto& [member, count] : per_member)
      std::printf("    member %-10s acked %llu\n", member.c_str(), static_cast<unsigned long long>(count));
    ok = ok && missing == 0 && twice == 0 && acks.size() == kMessages;
    if (group == "billing") ok = ok && redelivered > 0;  // B's held leases came back
  }
  for (const auto& g : stats.groups)
    std::printf("stats %-8s floor %llu delivered %llu acked %llu redelivered %llu in flight %llu\n", g.name.c_str(),
                static_cast<unsigned long long>(g.floor), static_cast<unsigned long long>(g.delivered),
                static_cast<unsigned long long>(g.acked), static_cast<unsigned long long>(g.redelivered),
                static_cast<unsigned long long>(g.in_flight));
  std::printf("\n%s\n", ok ? "OK: every message acked exactly once per group, none lost"
                           : "FAILED: see the counts above");
  ackring::Queue::destroy(g_queue);
  std::filesystem::remove_all(g_dir);
  return ok ? 0 : 1;
}
