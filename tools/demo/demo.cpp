// The end-to-end demo: real processes on one queue.
//
//   producer ──▶ queue ──▶ group "billing": members B, then A
//                      └─▶ group "audit":   member C sees everything too
//
// The parent runs the story in explicit phases, so what it shows does not
// depend on how the scheduler shares the CPUs (one, two, or a loaded box):
//
//   1. B is billing's only member: it acks the first kWarmup messages, then
//      takes the next kHold and holds them unacked (it tells the parent which).
//   2. A joins billing and acks every message the ring holds past B's
//      (kWhileHeld); then the ring is full, since billing's floor cannot pass
//      B's leases. B is alive and its leases have not run out, so A cannot
//      have them.
//   3. The parent SIGKILLs B. B's leases come back as soon as a live member
//      sees B dead (its housekeeping, well under a second), long before they
//      would expire, and A takes them over with delivery count 2.
//   4. Everything is consumed; the ack logs show every message acked exactly
//      once per group, none lost, and exactly B's held messages redelivered.
//
// Every wait has a deadline. On any failure the parent says what went wrong,
// kills its children, removes the queue file and its scratch directory and
// exits 1. Children die with the parent (PR_SET_PDEATHSIG).
//
// For the test of that failure path (tools/demo/failure_test.sh):
// ACKRING_DEMO_FAULT=stall makes B never take its leases, =crash makes A
// kill itself mid-run; ACKRING_DEMO_DEADLINE_S=<n> shortens each phase.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "ackring/ackring.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t kMessages = 20'000;
constexpr std::uint32_t kCapacity = 1024;
constexpr std::uint64_t kWarmup = 300;     // B acks these first, alone in billing
constexpr std::uint64_t kHold = 32;        // then holds this many leases unacked
// While B holds seqs kWarmup.., billing's floor stays there: a slot is reused
// only once every group's floor has passed it, so the producer can publish up
// to seq kWarmup + kCapacity - 1 and then waits for room. A acks all of those
// but B's: this many.
constexpr std::uint64_t kWhileHeld = kCapacity - kHold;
constexpr auto kLease = 120'000ms;         // far longer than any phase: B's leases come back because B died
std::chrono::seconds g_phase_deadline{30};  // each phase, on the slowest machine (ACKRING_DEMO_DEADLINE_S)
std::string g_fault;                         // ACKRING_DEMO_FAULT: "", "stall" or "crash"

struct AckRecord {
  std::uint64_t seq;
  std::uint32_t deliveries;
  std::uint32_t pad;
};

// What B tells the parent once it holds its leases.
struct HoldReport {
  std::uint64_t acked;
  std::uint64_t held;
  std::uint64_t seqs[kHold];
};

std::string g_queue;
std::filesystem::path g_dir;
pid_t g_parent = 0;
int g_stop_read = -1;   // children: EOF here means "stop" (or the parent is gone)
int g_stop_write = -1;  // parent: closing it stops every child

// Children, for clean-up (also from a signal handler: plain arrays).
constexpr int kMaxChildren = 8;
volatile pid_t g_children[kMaxChildren] = {};
// Paths removed on failure, prepared in advance so a signal handler can unlink them.
char g_queue_path[4096];
char g_dir_path[4096];
char g_log_paths[3][4096];  // the ack logs of A, B and C

[[noreturn]] void child_exit(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(code);
}

[[noreturn]] void child_fail(const char* who, const char* fmt, ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "%s (pid %d): %s\n", who, ::getpid(), text);
  child_exit(1);
}

// Non-blocking: has the parent closed the stop pipe (or died)?
bool stop_requested() {
  pollfd p{g_stop_read, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  char byte;
  return ::read(g_stop_read, &byte, 1) <= 0;  // EOF; the parent never writes
}

void write_all(int fd, const void* data, std::size_t size, const char* who) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) child_fail(who, "write: %s", std::strerror(errno));
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

// A group member: receive, log the ack (write(2) before the ack, so a
// SIGKILL loses nothing already written), ack. Runs until the stop pipe
// closes. Member B instead stops after kWarmup acks, takes kHold more and
// holds them (report_fd tells the parent) until it is killed.
void run_member(const std::string& group, const std::string& who, int report_fd) {
  const std::string name = "member " + who;
  auto q = ackring::Queue::open(g_queue);
  ackring::ConsumerOptions options;
  options.lease = kLease;
  options.create_group = false;
  auto consumer = q.consumer(group, options);
  const int log = ::open((g_dir / (group + "." + who)).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) child_fail(name.c_str(), "open log: %s", std::strerror(errno));
  const bool holder = report_fd >= 0;
  std::uint64_t acked = 0;
  std::vector<ackring::Delivery> batch(32);
  std::vector<AckRecord> records;
  for (;;) {
    std::size_t want = batch.size();
    if (holder) want = std::min<std::uint64_t>(want, kWarmup - acked);  // exactly kWarmup acks, then hold
    const std::size_t n = consumer.receive_batch(std::span(batch.data(), want), 100ms);
    if (n == 0) {
      if (stop_requested()) child_exit(0);
      continue;
    }
    records.clear();
    for (std::size_t i = 0; i < n; ++i) records.push_back({batch[i].seq(), batch[i].deliveries(), 0});
    write_all(log, records.data(), records.size() * sizeof(AckRecord), name.c_str());
    const std::size_t ok = consumer.ack_batch(std::span(batch.data(), n));
    if (ok != n) child_fail(name.c_str(), "acked %zu of %zu: a lease was lost", ok, n);
    acked += n;
    if (holder && acked == kWarmup) break;
    if (!holder && who == "A" && g_fault == "crash" && acked >= 100) ::raise(SIGKILL);
  }
  if (g_fault == "stall") {
    char byte;
    while (::read(g_stop_read, &byte, 1) < 0 && errno == EINTR) {
    }
    child_exit(1);
  }

  // Member B: take exactly kHold more messages and hold them unacked.
  HoldReport report{};
  report.acked = acked;
  const auto deadline = Clock::now() + g_phase_deadline;
  while (report.held < kHold) {
    if (Clock::now() > deadline) child_fail(name.c_str(), "holds %llu of %llu leases after %llds",
                                            static_cast<unsigned long long>(report.held),
                                            static_cast<unsigned long long>(kHold),
                                            static_cast<long long>(g_phase_deadline.count()));
    if (stop_requested()) child_exit(1);
    const std::size_t n = consumer.receive_batch(std::span(batch.data(), kHold - report.held), 100ms);
    for (std::size_t i = 0; i < n; ++i) report.seqs[report.held++] = batch[i].seq();
  }
  write_all(report_fd, &report, sizeof report, name.c_str());
  // Wait to be killed; EOF (the parent is gone) ends it too.
  char byte;
  while (::read(g_stop_read, &byte, 1) < 0 && errno == EINTR) {
  }
  child_exit(1);
}

void run_producer() {
  auto q = ackring::Queue::open(g_queue);
  auto producer = q.producer();
  char text[64];
  const auto deadline = Clock::now() + 4 * g_phase_deadline;
  for (std::uint64_t i = 0; i < kMessages; ++i) {
    const int len = std::snprintf(text, sizeof text, "order-%llu", static_cast<unsigned long long>(i));
    // The ring fills up while B holds its leases (billing's floor cannot
    // pass them): waiting for room then is expected, not an error.
    for (;;) {
      const auto r = producer.publish(std::string_view(text, static_cast<std::size_t>(len)), 1s);
      if (r.ok()) break;
      if (r.status != ackring::Status::timeout && r.status != ackring::Status::queue_full)
        child_fail("producer", "publish %llu failed: %s", static_cast<unsigned long long>(i),
                   std::string(ackring::to_string(r.status)).c_str());
      if (Clock::now() > deadline || stop_requested())
        child_fail("producer", "publish %llu: still no room in the ring at the deadline",
                   static_cast<unsigned long long>(i));
    }
  }
  child_exit(0);
}

void remember_child(pid_t pid) {
  for (auto& c : g_children)
    if (c == 0) {
      c = pid;
      return;
    }
}

void forget_child(pid_t pid) {
  for (auto& c : g_children)
    if (c == pid) c = 0;
}

template <typename F>
pid_t spawn(F&& body) {
  std::fflush(stdout);  // children must not inherit and re-print buffered output
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    return -1;
  }
  if (pid == 0) {
    ::signal(SIGALRM, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::alarm(0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the demo
    if (::getppid() != g_parent) ::_exit(1);
    ::close(g_stop_write);
    try {
      body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child (pid %d): %s\n", ::getpid(), e.what());
      child_exit(1);
    }
    child_exit(0);
  }
  remember_child(pid);
  return pid;
}

// Async-signal-safe clean-up: kill the children, remove the files.
void kill_and_remove() {
  for (auto& c : g_children)
    if (c > 0) ::kill(c, SIGKILL);
  for (auto& c : g_children)
    if (c > 0) {
      while (::waitpid(c, nullptr, 0) < 0 && errno == EINTR) {
      }
      c = 0;
    }
  ::unlink(g_queue_path);
  for (const auto& p : g_log_paths) ::unlink(p);
  ::rmdir(g_dir_path);
}

void on_signal(int sig) {
  const char* text = sig == SIGALRM ? "\nFAILED: the demo's watchdog expired; killing its processes\n"
                                    : "\nFAILED: interrupted; killing the demo's processes\n";
  (void)!::write(2, text, std::strlen(text));
  kill_and_remove();
  ::_exit(1);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + ::strsignal(WTERMSIG(status));
  return "stopped";
}

class Demo {
 public:
  explicit Demo(ackring::Queue& q) : q_(q) {}

  [[noreturn]] void fail(const char* fmt, ...) {
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    std::fflush(stdout);
    std::fprintf(stderr, "\nFAILED: %s\n", text);
    try {
      print_stats(stderr);
    } catch (...) {
    }
    kill_and_remove();
    std::exit(1);
  }

  void print_stats(std::FILE* out) {
    const auto s = q_.stats();
    std::fprintf(out, "queue: tail %llu, published %llu\n", static_cast<unsigned long long>(s.tail),
                 static_cast<unsigned long long>(s.published));
    for (const auto& g : s.groups) {
      std::fprintf(out, "group %-8s floor %llu delivered %llu acked %llu redelivered %llu in flight %llu\n",
                   g.name.c_str(), static_cast<unsigned long long>(g.floor),
                   static_cast<unsigned long long>(g.delivered), static_cast<unsigned long long>(g.acked),
                   static_cast<unsigned long long>(g.redelivered), static_cast<unsigned long long>(g.in_flight));
      for (const auto& m : g.members)
        std::fprintf(out, "    member pid %d%s: delivered %llu acked %llu in flight %llu\n", m.pid,
                     m.alive ? "" : " (dead)", static_cast<unsigned long long>(m.delivered),
                     static_cast<unsigned long long>(m.acked), static_cast<unsigned long long>(m.in_flight));
    }
  }

  void add(pid_t pid, std::string role) {
    if (pid < 0) fail("could not start %s", role.c_str());
    roles_[pid] = std::move(role);
  }

  // A child that ends on its own before it is told to is a failure (the
  // producer is allowed to finish, with status 0).
  void check_children() {
    for (auto it = roles_.begin(); it != roles_.end();) {
      int status = 0;
      const pid_t r = ::waitpid(it->first, &status, WNOHANG);
      if (r == 0) {
        ++it;
        continue;
      }
      forget_child(it->first);
      if (it->second == "producer" && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        producer_done_ = true;
        it = roles_.erase(it);
        continue;
      }
      fail("%s (pid %d) %s", it->second.c_str(), it->first, describe_status(status).c_str());
    }
  }

  // Polls `done` until it holds; fails with `what` at the deadline.
  void wait_for(const char* what, std::chrono::nanoseconds limit, const std::function<bool()>& done) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
      check_children();
      if (done()) return;
      if (Clock::now() > deadline)
        fail("%s: not done after %lld s", what, static_cast<long long>(std::chrono::ceil<std::chrono::seconds>(limit).count()));
      std::this_thread::sleep_for(2ms);
    }
  }

  // Reads exactly `size` bytes from fd within the deadline.
  void read_report(int fd, void* data, std::size_t size, const char* what) {
    char* p = static_cast<char*>(data);
    const auto deadline = Clock::now() + g_phase_deadline;
    while (size > 0) {
      check_children();
      if (Clock::now() > deadline) fail("%s: no answer after %lld s", what, static_cast<long long>(g_phase_deadline.count()));
      pollfd pfd{fd, POLLIN, 0};
      if (::poll(&pfd, 1, 20) <= 0) continue;
      const ssize_t n = ::read(fd, p, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) continue;  // EOF: the writer died; check_children says how
      p += n;
      size -= static_cast<std::size_t>(n);
    }
  }

  // Kills and reaps one child on purpose.
  void kill_child(pid_t pid) {
    ::kill(pid, SIGKILL);
    const auto deadline = Clock::now() + g_phase_deadline;
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) fail("pid %d did not die after SIGKILL", pid);
      std::this_thread::sleep_for(1ms);
    }
    forget_child(pid);
    roles_.erase(pid);
  }

  // Closes the stop pipe and reaps the remaining children, which must exit 0.
  void stop_all() {
    ::close(g_stop_write);
    g_stop_write = -1;
    const auto deadline = Clock::now() + g_phase_deadline;
    while (!roles_.empty()) {
      for (auto it = roles_.begin(); it != roles_.end();) {
        int status = 0;
        const pid_t r = ::waitpid(it->first, &status, WNOHANG);
        if (r == 0) {
          ++it;
          continue;
        }
        forget_child(it->first);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
          fail("%s (pid %d) %s", it->second.c_str(), it->first, describe_status(status).c_str());
        it = roles_.erase(it);
      }
      if (Clock::now() > deadline) fail("%zu processes did not stop within %lld s", roles_.size(), static_cast<long long>(g_phase_deadline.count()));
      std::this_thread::sleep_for(2ms);
    }
  }

  const ackring::MemberStats* member(const ackring::QueueStats& s, const char* group, pid_t pid) {
    for (const auto& g : s.groups)
      if (g.name == group)
        for (const auto& m : g.members)
          if (m.pid == pid) return &m;
    return nullptr;
  }
  const ackring::GroupStats& group(const ackring::QueueStats& s, const char* name) {
    for (const auto& g : s.groups)
      if (g.name == name) return g;
    fail("group %s is missing from the stats", name);
  }

  bool producer_done() const { return producer_done_; }

 private:
  ackring::Queue& q_;
  std::map<pid_t, std::string> roles_;
  bool producer_done_ = false;
};

std::map<std::uint64_t, std::vector<std::pair<std::string, std::uint32_t>>> read_acks(
    const std::string& group, std::map<std::string, std::uint64_t>& per_member) {
  std::map<std::uint64_t, std::vector<std::pair<std::string, std::uint32_t>>> acks;
  for (const auto& entry : std::filesystem::directory_iterator(g_dir)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(group + ".", 0) != 0) continue;
    const std::string who = name.substr(group.size() + 1);
    per_member[who];
    std::FILE* f = std::fopen(entry.path().c_str(), "rb");
    AckRecord r;
    while (f && std::fread(&r, sizeof r, 1, f) == 1) {
      acks[r.seq].emplace_back(who, r.deliveries);
      ++per_member[who];
    }
    if (f) std::fclose(f);
  }
  return acks;
}

void set_path(char (&out)[4096], const std::string& s) { std::snprintf(out, sizeof out, "%s", s.c_str()); }

}  // namespace

int main(int argc, char** argv) {
  g_parent = ::getpid();
  if (const char* f = std::getenv("ACKRING_DEMO_FAULT")) g_fault = f;
  if (const char* d = std::getenv("ACKRING_DEMO_DEADLINE_S"); d != nullptr && std::atoi(d) > 0)
    g_phase_deadline = std::chrono::seconds(std::atoi(d));
  g_queue = argc > 1 ? argv[1] : "/dev/shm/ackring.demo-" + std::to_string(::getpid());
  g_dir = std::filesystem::temp_directory_path() / ("ackring-demo-" + std::to_string(::getpid()));
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  int stop[2];
  if (::pipe2(stop, O_CLOEXEC) != 0) {
    std::perror("pipe");
    return 1;
  }
  g_stop_read = stop[0];
  g_stop_write = stop[1];

  std::unique_ptr<ackring::Queue> queue;
  try {
    std::filesystem::create_directories(g_dir);
    ackring::Queue::destroy(g_queue);
    queue = std::make_unique<ackring::Queue>(
        ackring::Queue::create(g_queue, {.capacity = kCapacity, .max_message_size = 64}));
    queue->create_group("billing");
    queue->create_group("audit");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAILED: %s\n", e.what());
    std::filesystem::remove_all(g_dir);
    return 1;
  }
  auto& q = *queue;
  set_path(g_queue_path, q.path().string());
  set_path(g_dir_path, g_dir.string());
  set_path(g_log_paths[0], (g_dir / "billing.A").string());
  set_path(g_log_paths[1], (g_dir / "billing.B").string());
  set_path(g_log_paths[2], (g_dir / "audit.C").string());
  ::signal(SIGALRM, on_signal);
  ::signal(SIGINT, on_signal);
  ::signal(SIGTERM, on_signal);
  ::signal(SIGPIPE, SIG_IGN);
  // Last resort if a deadline check itself never runs: all phases' deadlines and then some.
  ::alarm(static_cast<unsigned>(8 * g_phase_deadline.count()));

  Demo demo(q);
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  const int ncpus = ::sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 0;
  std::printf("queue %s: capacity %u, groups billing (members B, then A) and audit (member C); %d CPU%s\n",
              q.path().c_str(), kCapacity, ncpus, ncpus == 1 ? "" : "s");

  // Phase 1: B alone in billing acks kWarmup messages, then holds kHold.
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) demo.fail("pipe: %s", std::strerror(errno));
  const pid_t b = spawn([&] {
    ::close(report[0]);
    run_member("billing", "B", report[1]);
  });
  ::close(report[1]);
  demo.add(b, "member B");
  const pid_t c = spawn([] { run_member("audit", "C", -1); });
  demo.add(c, "member C");
  const pid_t producer = spawn([] { run_producer(); });
  demo.add(producer, "producer");
  std::printf("producer (pid %d) publishes %llu messages; member C (pid %d) consumes all of them in audit; "
              "member B (pid %d) is alone in billing\n",
              producer, static_cast<unsigned long long>(kMessages), c, b);

  HoldReport held{};
  demo.read_report(report[0], &held, sizeof held, "member B taking its leases");
  ::close(report[0]);
  std::sort(held.seqs, held.seqs + kHold);
  {
    const auto s = q.stats();
    const auto* mb = demo.member(s, "billing", b);
    if (mb == nullptr) demo.fail("member B (pid %d) is not in billing's stats", b);
    if (held.acked != kWarmup || held.held != kHold || mb->in_flight != kHold)
      demo.fail("member B acked %llu and holds %llu (stats: %llu in flight); expected %llu and %llu",
                static_cast<unsigned long long>(held.acked), static_cast<unsigned long long>(held.held),
                static_cast<unsigned long long>(mb->in_flight), static_cast<unsigned long long>(kWarmup),
                static_cast<unsigned long long>(kHold));
  }
  std::printf("member B acked %llu messages and now holds the next %llu unacked (seqs %llu-%llu)\n",
              static_cast<unsigned long long>(held.acked), static_cast<unsigned long long>(kHold),
              static_cast<unsigned long long>(held.seqs[0]), static_cast<unsigned long long>(held.seqs[kHold - 1]));

  // Phase 2: A joins and works while B holds its leases.
  const pid_t a = spawn([] { run_member("billing", "A", -1); });
  demo.add(a, "member A");
  demo.wait_for("member A acking all the ring holds past B's leases", g_phase_deadline, [&] {
    const auto s = q.stats();
    const auto* ma = demo.member(s, "billing", a);
    return ma != nullptr && ma->acked == kWhileHeld && s.tail == kWarmup + kCapacity;
  });
  {
    const auto s = q.stats();
    const auto* mb = demo.member(s, "billing", b);
    const auto& billing = demo.group(s, "billing");
    if (mb == nullptr || mb->in_flight != kHold || billing.redelivered != 0)
      demo.fail("member B's leases did not stay with B while it was alive (B holds %llu, billing redelivered %llu)",
                static_cast<unsigned long long>(mb ? mb->in_flight : 0),
                static_cast<unsigned long long>(billing.redelivered));
    std::printf("member A (pid %d) joins billing and acks the next %llu messages; then the ring is full "
                "(billing's floor waits at B's leases)\n",
                a, static_cast<unsigned long long>(demo.member(s, "billing", a)->acked));
    std::printf("B's %llu leases stay with B meanwhile: B is alive and a %lld s lease has not run out\n",
                static_cast<unsigned long long>(kHold), static_cast<long long>(kLease / 1s));
  }

  // Phase 3: kill B; A takes its leases over.
  std::printf("member B (pid %d) holds %llu unacked leases: SIGKILL\n", b, static_cast<unsigned long long>(kHold));
  const auto killed_at = Clock::now();
  demo.kill_child(b);
  demo.wait_for("member A taking over B's leases", g_phase_deadline, [&] {
    return demo.group(q.stats(), "billing").redelivered >= kHold;
  });
  std::printf("B's %llu leases came back %.0f ms after the kill (its process is dead; the lease has not run out)\n",
              static_cast<unsigned long long>(kHold),
              std::chrono::duration<double, std::milli>(Clock::now() - killed_at).count());

  // Phase 4: everything is consumed.
  demo.wait_for("the producer publishing and both groups consuming every message", 2 * g_phase_deadline, [&] {
    if (!demo.producer_done()) return false;
    const auto s = q.stats();
    for (const auto& g : s.groups)
      if (g.floor != kMessages || g.in_flight != 0) return false;
    return s.tail == kMessages;
  });
  demo.stop_all();

  const auto stats = q.stats();
  bool ok = stats.published == kMessages && stats.aborted == 0;
  std::printf("\npublished %llu, aborted claims %llu\n", static_cast<unsigned long long>(stats.published),
              static_cast<unsigned long long>(stats.aborted));
  for (const std::string group : {"billing", "audit"}) {
    std::map<std::string, std::uint64_t> per_member;
    const auto acks = read_acks(group, per_member);
    std::uint64_t missing = 0, twice = 0, redelivered = 0, taken_over = 0;
    for (std::uint64_t seq = 0; seq < kMessages; ++seq) {
      const auto it = acks.find(seq);
      if (it == acks.end()) {
        ++missing;
        continue;
      }
      if (it->second.size() > 1) ++twice;
      if (it->second.back().second > 1) ++redelivered;
    }
    std::printf("group %-8s acked %zu distinct messages, missing %llu, acked twice %llu, redelivered %llu\n",
                group.c_str(), acks.size(), static_cast<unsigned long long>(missing),
                static_cast<unsigned long long>(twice), static_cast<unsigned long long>(redelivered));
    for (const auto& [who, count] : per_member)
      std::printf("    member %s acked %llu\n", who.c_str(), static_cast<unsigned long long>(count));
    ok = ok && missing == 0 && twice == 0 && acks.size() == kMessages;
    if (group == "billing") {
      // Exactly B's held messages were redelivered, each to A, as delivery 2.
      for (const std::uint64_t seq : held.seqs) {
        const auto it = acks.find(seq);
        if (it != acks.end() && it->second.size() == 1 && it->second[0].first == "A" && it->second[0].second == 2)
          ++taken_over;
      }
      std::printf("    B's %llu held messages: %llu acked by A with delivery count 2\n",
                  static_cast<unsigned long long>(kHold), static_cast<unsigned long long>(taken_over));
      ok = ok && redelivered == kHold && taken_over == kHold && per_member["B"] == kWarmup;
    } else {
      ok = ok && redelivered == 0;
    }
  }
  for (const auto& g : stats.groups)
    std::printf("stats %-8s floor %llu delivered %llu acked %llu redelivered %llu in flight %llu\n", g.name.c_str(),
                static_cast<unsigned long long>(g.floor), static_cast<unsigned long long>(g.delivered),
                static_cast<unsigned long long>(g.acked), static_cast<unsigned long long>(g.redelivered),
                static_cast<unsigned long long>(g.in_flight));
  if (!ok) demo.fail("the counts above are not exactly once per group with B's %llu held messages redelivered",
                     static_cast<unsigned long long>(kHold));
  ::alarm(0);
  std::printf("\nOK: every message acked exactly once per group, none lost; B's %llu held leases taken over by A\n",
              static_cast<unsigned long long>(kHold));
  queue.reset();
  kill_and_remove();
  return 0;
}
