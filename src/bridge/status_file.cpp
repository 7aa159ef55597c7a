// Status files of bridges (include/ackring/bridge_status.hpp): a small text
// file of key=value lines, rewritten atomically by its bridge. Text, not a
// mapped struct: it is written a few times a second, read by operators'
// tools only, and `cat` shows it; rename() makes every reader see either the
// old or the new file whole, so no reader needs a lock or a seqlock.
#include "ackring/bridge_status.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "ackring/error.hpp"

namespace ackring::bridge {
namespace {

constexpr std::string_view kMagic = "ackring-bridge-status 1";

std::string status_prefix(const std::filesystem::path& queue_file) {
  return "." + queue_file.filename().string() + ".bridge-";
}

std::uint64_t to_u64(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// One line per field; values never hold a newline (errors are flattened).
std::string flat(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

std::string render(const BridgeStatus& s) {
  std::ostringstream o;
  o << kMagic << '\n'
    << "name=" << flat(s.name) << '\n'
    << "direction=" << flat(s.direction) << '\n'
    << "pid=" << s.pid << '\n'
    << "start_time=" << s.start_time << '\n'
    << "queue=" << flat(s.queue) << '\n'
    << "group=" << flat(s.group) << '\n'
    << "server=" << flat(s.server) << '\n'
    << "stream=" << flat(s.stream) << '\n'
    << "subject=" << flat(s.subject) << '\n'
    << "consumer=" << flat(s.consumer) << '\n'
    << "connected=" << (s.connected ? 1 : 0) << '\n'
    << "forwarded=" << s.forwarded << '\n'
    << "acked=" << s.acked << '\n'
    << "in_flight=" << s.in_flight << '\n'
    << "retries=" << s.retries << '\n'
    << "dedup_hits=" << s.dedup_hits << '\n'
    << "lag=" << s.lag << '\n'
    << "reconnects=" << s.reconnects << '\n'
    << "queue_reopens=" << s.queue_reopens << '\n'
    << "updated_unix_ms=" << s.updated_unix_ms << '\n'
    << "last_error=" << flat(s.last_error) << '\n';
  return o.str();
}

bool parse(std::istream& in, BridgeStatus& s) {
  std::string line;
  if (!std::getline(in, line) || line != kMagic) return false;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string_view k(line.data(), eq);
    const std::string v = line.substr(eq + 1);
    if (k == "name") s.name = v;
    else if (k == "direction") s.direction = v;
    else if (k == "pid") s.pid = static_cast<std::int32_t>(to_u64(v));
    else if (k == "start_time") s.start_time = to_u64(v);
    else if (k == "queue") s.queue = v;
    else if (k == "group") s.group = v;
    else if (k == "server") s.server = v;
    else if (k == "stream") s.stream = v;
    else if (k == "subject") s.subject = v;
    else if (k == "consumer") s.consumer = v;
    else if (k == "connected") s.connected = v == "1";
    else if (k == "forwarded") s.forwarded = to_u64(v);
    else if (k == "acked") s.acked = to_u64(v);
    else if (k == "in_flight") s.in_flight = to_u64(v);
    else if (k == "retries") s.retries = to_u64(v);
    else if (k == "dedup_hits") s.dedup_hits = to_u64(v);
    else if (k == "lag") s.lag = to_u64(v);
    else if (k == "reconnects") s.reconnects = to_u64(v);
    else if (k == "queue_reopens") s.queue_reopens = to_u64(v);
    else if (k == "updated_unix_ms") s.updated_unix_ms = to_u64(v);
    else if (k == "last_error") s.last_error = v;
  }
  return !s.name.empty() && s.pid > 0;
}

}  // namespace

std::filesystem::path bridge_status_path(const std::filesystem::path& queue_file, std::string_view name) {
  return queue_file.parent_path() / (status_prefix(queue_file) + std::string(name));
}

void write_bridge_status(const std::filesystem::path& queue_file, const BridgeStatus& status) {
  const auto path = bridge_status_path(queue_file, status.name);
  // The temporary name carries the pid: two bridges given the same name by
  // mistake never write into one temporary file.
  const std::string tmp = path.string() + ".tmp." + std::to_string(::getpid());
  const std::string text = render(status);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw Error(ErrorCode::system, "write bridge status '" + tmp + "': " + std::strerror(errno));
  std::size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(ErrorCode::system, "write bridge status '" + tmp + "': " + std::strerror(e));
    }
    off += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(ErrorCode::system, "rename bridge status to '" + path.string() + "': " + std::strerror(e));
  }
}

void remove_bridge_status(const std::filesystem::path& queue_file, std::string_view name) noexcept {
  std::error_code ec;
  std::filesystem::remove(bridge_status_path(queue_file, name), ec);
}

std::uint64_t process_start_time(std::int32_t pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return 0;
  char buf[2048];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // The command name (field 2) may hold spaces and ')': fields start after the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] != ' ') return 0;
  // A zombie is not running (a bridge is single-process: its main thread
  // exiting ends it).
  if (p[2] == 'Z' || p[2] == 'X') return 0;
  ++p;  // at the space before field 3
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p + 1, ' ');
    if (p == nullptr) return 0;
  }
  return std::strtoull(p + 1, nullptr, 10);
}

std::vector<BridgeStatus> read_bridge_statuses(const std::filesystem::path& queue_file) noexcept {
  std::vector<BridgeStatus> out;
  try {
    const std::string prefix = status_prefix(queue_file);
    std::error_code ec;
    for (std::filesystem::directory_iterator it(queue_file.parent_path(), ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::string fname = it->path().filename().string();
      if (!fname.starts_with(prefix) || fname.find(".tmp.") != std::string::npos) continue;
      std::ifstream in(it->path());
      BridgeStatus s;
      if (!in || !parse(in, s)) continue;
      s.alive = s.start_time != 0 && process_start_time(s.pid) == s.start_time;
      out.push_back(std::move(s));
    }
  } catch (...) {
    // A status file is a convenience for operators: never fail a stat over it.
  }
  std::sort(out.begin(), out.end(), [](const BridgeStatus& a, const BridgeStatus& b) { return a.name < b.name; });
  return out;
}

}  // namespace ackring::bridge
