// Helpers for tests that run real processes: fork a lambda into a child that
// can never return into gtest, kill and reap children on every exit path,
// share a control block between parent and children, and collect records
// that survive the writer's SIGKILL.
//
// Rules the helpers enforce:
//  - a child runs `body()` and leaves with _exit(its return value): no gtest
//    state, no atexit handlers, no destructors of the parent's objects
//    (TempQueue would delete the queue file) ever run in a child;
//  - a child dies with its parent (PR_SET_PDEATHSIG) and after a safety
//    alarm, so a failing or timed-out test never leaves processes behind;
//  - a Child that goes out of scope unreaped is SIGKILLed and reaped.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace ackring::testing {

// CLOCK_MONOTONIC is system-wide: times taken in different processes compare.
[[nodiscard]] inline std::uint64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}
[[nodiscard]] inline std::uint64_t now_ms() noexcept { return now_ns() / 1'000'000ull; }

inline void sleep_ms(std::uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// "exited 0", "killed by signal 9 (Killed)", ...
[[nodiscard]] inline std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "wait status " + std::to_string(status);
}

// The state letter of /proc/<pid>/stat ('R', 'S', 'Z', ...), or '?' if gone.
[[nodiscard]] inline char process_state(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return '?';
  char buf[1024];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* close = std::strrchr(buf, ')');
  return close != nullptr && close[1] == ' ' && close[2] != '\0' ? close[2] : '?';
}

// A forked child process. Move-only; the destructor kills and reaps a child
// that is still unreaped, so ASSERT_* early returns clean up.
class Child {
 public:
  Child() = default;
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)), status_(o.status_), reaped_(o.reaped_) {}
  Child& operator=(Child&& o) noexcept {
    if (this != &o) {
      kill_and_reap();
      pid_ = std::exchange(o.pid_, -1);
      status_ = o.status_;
      reaped_ = o.reaped_;
    }
    return *this;
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { kill_and_reap(); }

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] bool valid() const noexcept { return pid_ > 0; }
  [[nodiscard]] bool reaped() const noexcept { return reaped_; }
  // The wait status; meaningful once reaped().
  [[nodiscard]] int status() const noexcept { return status_; }
  [[nodiscard]] bool exited_ok() const noexcept { return reaped_ && WIFEXITED(status_) && WEXITSTATUS(status_) == 0; }
  [[nodiscard]] bool killed_by(int sig) const noexcept {
    return reaped_ && WIFSIGNALED(status_) && WTERMSIG(status_) == sig;
  }
  [[nodiscard]] std::string describe() const {
    return "child " + std::to_string(pid_) + (reaped_ ? " " + describe_wait_status(status_) : " still running");
  }

  // Reaps the child if it has exited. Returns reaped().
  bool poll() {
    if (pid_ <= 0 || reaped_) return reaped_;
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = st;
      reaped_ = true;
    }
    return reaped_;
  }
  // Waits up to `timeout` for the child to exit and reaps it. Returns reaped().
  bool wait_for(std::chrono::milliseconds timeout) {
    const std::uint64_t deadline = now_ns() + static_cast<std::uint64_t>(timeout.count()) * 1'000'000ull;
    while (!poll()) {
      if (now_ns() >= deadline) return false;
      sleep_ms(1);
    }
    return true;
  }
  // Waits up to `timeout` for the child to die WITHOUT reaping it (it stays a
  // zombie). Returns true once it is dead.
  bool wait_dead_unreaped(std::chrono::milliseconds timeout) const {
    const std::uint64_t deadline = now_ns() + static_cast<std::uint64_t>(timeout.count()) * 1'000'000ull;
    for (;;) {
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_)
        return true;
      if (now_ns() >= deadline) return false;
      sleep_ms(1);
    }
  }
  void kill(int sig = SIGKILL) const {
    if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
  }
  void kill_and_reap() noexcept {
    if (pid_ <= 0 || reaped_) return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    status_ = st;
    reaped_ = true;
  }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

// Seconds after which a forked child kills itself (SIGALRM), whatever it is doing.
inline constexpr unsigned kChildSafetyAlarmSeconds = 90;

// Runs `body` (returning int, the exit code) in a forked child and returns
// the parent's handle. The child never returns: it leaves with _exit(code),
// 120 if body threw. Stdio is flushed before fork so that buffered output is
// not written twice.
template <class F>
[[nodiscard]] Child fork_child(F&& body) {
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(121);  // the parent died before prctl
    ::alarm(kChildSafetyAlarmSeconds);
    int code = 120;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child %d: exception: %s\n", static_cast<int>(::getpid()), e.what());
    } catch (...) {
      std::fprintf(stderr, "child %d: unknown exception\n", static_cast<int>(::getpid()));
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  return Child(pid);
}

// In a child: report a failed check on stderr and leave with `code`.
#define ACKRING_CHILD_CHECK(cond, code)                                                                  \
  do {                                                                                                   \
    if (!(cond)) {                                                                                       \
      std::fprintf(stderr, "child %d: %s:%d: check failed: %s\n", static_cast<int>(::getpid()), __FILE__, \
                   __LINE__, #cond);                                                                     \
      std::fflush(stderr);                                                                               \
      ::_exit(code);                                                                                     \
    }                                                                                                    \
  } while (0)

// A T placed in anonymous MAP_SHARED memory, made before fork: parent and
// children see the same object. T must be usable across processes (lock-free
// atomics, plain data).
template <class T>
class SharedBlock {
  static_assert(std::is_trivially_destructible_v<T>);

 public:
  SharedBlock() {
    void* p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap shared block");
    ptr_ = new (p) T{};
  }
  ~SharedBlock() { ::munmap(ptr_, sizeof(T)); }
  SharedBlock(const SharedBlock&) = delete;
  SharedBlock& operator=(const SharedBlock&) = delete;
  T* operator->() const noexcept { return ptr_; }
  T& operator*() const noexcept { return *ptr_; }

 private:
  T* ptr_ = nullptr;
};

// An append-only log of fixed-size records in a memfd made by the parent
// before fork. A child appends with one write(2) per record; what was written
// survives the child's SIGKILL, and the parent reads it all back.
class RecordLog {
 public:
  RecordLog() {
    fd_ = ::memfd_create("ackring-test-log", 0);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "memfd_create");
  }
  ~RecordLog() {
    if (fd_ >= 0) ::close(fd_);
  }
  RecordLog(RecordLog&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  RecordLog& operator=(RecordLog&&) = delete;
  RecordLog(const RecordLog&) = delete;
  RecordLog& operator=(const RecordLog&) = delete;

  template <class R>
  void append(const R& r) const noexcept {
    static_assert(std::is_trivially_copyable_v<R>);
    const auto* p = reinterpret_cast<const char*>(&r);
    std::size_t left = sizeof r;
    while (left != 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ::_exit(122);  // only children write; a broken log is a broken test
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }

  template <class R>
  [[nodiscard]] std::vector<R> read_all() const {
    struct stat st{};
    if (::fstat(fd_, &st) != 0) throw std::system_error(errno, std::generic_category(), "fstat log");
    std::vector<R> out(static_cast<std::size_t>(st.st_size) / sizeof(R));
    std::size_t done = 0;
    const std::size_t bytes = out.size() * sizeof(R);
    while (done < bytes) {
      const ssize_t n = ::pread(fd_, reinterpret_cast<char*>(out.data()) + done, bytes - done, static_cast<off_t>(done));
      if (n <= 0) throw std::system_error(errno, std::generic_category(), "pread log");
      done += static_cast<std::size_t>(n);
    }
    return out;
  }

 private:
  int fd_ = -1;
};

}  // namespace ackring::testing
