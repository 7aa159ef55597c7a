#include "shm/liveness.hpp"

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string_view>
#include <unistd.h>

namespace ackring::detail {

namespace {

struct StatFields {
  char state = '?';
  std::uint64_t start_time = 0;
  bool ok = false;
};

bool exited(char state) noexcept { return state == 'Z' || state == 'X' || state == 'x'; }

StatFields read_stat_file(const char* path) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return {};
  std::string_view text(buf, static_cast<std::size_t>(n));
  // Field 2 (comm) may contain spaces and parentheses: fields after it are
  // counted from the last ')'.
  const auto close_paren = text.rfind(')');
  if (close_paren == std::string_view::npos || close_paren + 2 >= text.size()) return {};
  StatFields out;
  out.state = text[close_paren + 2];
  // After ") " comes field 3 (state); start time is field 22.
  std::size_t pos = close_paren + 2;
  for (int field = 3; field < 22; ++field) {
    pos = text.find(' ', pos);
    if (pos == std::string_view::npos) return {};
    ++pos;
  }
  const auto end = text.find(' ', pos);
  const auto digits = text.substr(pos, end == std::string_view::npos ? text.size() - pos : end - pos);
  if (std::from_chars(digits.data(), digits.data() + digits.size(), out.start_time).ec != std::errc{}) return {};
  out.ok = true;
  return out;
}

StatFields read_stat(pid_t pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  return read_stat_file(path);
}

// The process's main thread has exited (`Z` in /proc/<pid>/stat). The
// process still runs while any other thread does: a main thread that called
// pthread_exit leaves its threads working, and they may be in the middle of
// a publish. Dead means no thread runs.
bool any_thread_runs(pid_t pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task", static_cast<int>(pid));
  DIR* dir = ::opendir(path);
  if (dir == nullptr) return false;
  bool running = false;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    char task[320];
    std::snprintf(task, sizeof task, "/proc/%d/task/%s/stat", static_cast<int>(pid), entry->d_name);
    const StatFields f = read_stat_file(task);
    if (f.ok && !exited(f.state)) {
      running = true;
      break;
    }
  }
  ::closedir(dir);
  return running;
}

}  // namespace

ProcessIdentity self_identity() noexcept {
  // Cached per pid: a forked child sees a different getpid() and re-reads.
  static thread_local ProcessIdentity cached{};
  const pid_t pid = ::getpid();
  if (cached.pid != pid) cached = {pid, process_start_time(pid)};
  return cached;
}

std::uint64_t process_start_time(pid_t pid) noexcept {
  const StatFields f = read_stat(pid);
  if (!f.ok || (exited(f.state) && !any_thread_runs(pid))) return 0;
  return f.start_time;
}

bool is_alive(pid_t pid, std::uint64_t start_time) noexcept {
  if (pid <= 0) return false;
  const StatFields f = read_stat(pid);
  if (!f.ok) {
    // No /proc entry readable: fall back to kill(0); EPERM means it exists.
    return ::kill(pid, 0) == 0 || errno == EPERM;
  }
  if (start_time != 0 && f.start_time != start_time) return false;  // the pid was reused
  return !exited(f.state) || any_thread_runs(pid);
}

}  // namespace ackring::detail
