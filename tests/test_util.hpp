// Helpers shared by the tests: unique queue paths that are removed afterwards,
// a private directory for named queues, and small receive/stats helpers.
#pragma once

#include <gtest/gtest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ackring/ackring.hpp"

namespace ackring::testing {

class TempQueue {
 public:
  // The pid alone is not unique over a run: a test process that was killed
  // (or a forked child that _exit()ed) leaves its file behind, and a later
  // process given the same pid then failed with "File exists". A random
  // per-process nonce makes the name unique whatever was left before.
  TempQueue() {
    static std::atomic<int> counter{0};
    static const std::string process_nonce = [] {
      std::random_device entropy;
      std::ostringstream hex;
      hex << std::hex << ((std::uint64_t{entropy()} << 32) | entropy());
      return hex.str();
    }();
    path_ = "/dev/shm/ackring-test." + std::to_string(::getpid()) + "." + process_nonce + "." +
            std::to_string(counter++);
  }
  ~TempQueue() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
    std::filesystem::remove(path_ + ".dlq", ec);
  }
  TempQueue(const TempQueue&) = delete;
  TempQueue& operator=(const TempQueue&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string dlq_path() const { return path_ + ".dlq"; }

 private:
  std::string path_;
};

// A fresh directory made by mkdtemp under `parent`, removed with all it
// holds when the object goes. The one temp-directory helper of the tests:
// ScopedShmDir and TempJournalDir are made of it.
class TempDir {
 public:
  TempDir(const std::string& parent, const std::string& prefix) {
    std::string tmpl = parent + "/" + prefix + ".XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp " + tmpl + " failed");
    dir_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

// A fresh directory under $ACKRING_TEST_JOURNAL_ROOT (default /var/tmp: a
// real file system, like a production journal), removed afterwards. The
// journal itself lives in <dir>/q, as <journal_dir>/<queue name> would.
class TempJournalDir {
 public:
  [[nodiscard]] std::filesystem::path dir() const { return root_.dir() / "q"; }
  [[nodiscard]] const std::filesystem::path& root() const { return root_.dir(); }

 private:
  static std::string parent() {
    const char* root = std::getenv("ACKRING_TEST_JOURNAL_ROOT");
    return root != nullptr && *root != '\0' ? root : "/var/tmp";
  }
  TempDir root_{parent(), "ackring-journal-test"};
};

// Points $ACKRING_SHM_DIR at a fresh private directory for the lifetime of
// the object (so name-based tests neither see nor leave files in /dev/shm),
// then restores the variable and removes the directory.
class ScopedShmDir {
 public:
  ScopedShmDir() {
    if (const char* old = std::getenv("ACKRING_SHM_DIR"); old != nullptr) old_ = std::string(old);
    ::setenv("ACKRING_SHM_DIR", dir_.dir().c_str(), 1);
  }
  ~ScopedShmDir() {
    if (old_) ::setenv("ACKRING_SHM_DIR", old_->c_str(), 1);
    else ::unsetenv("ACKRING_SHM_DIR");
  }
  ScopedShmDir(const ScopedShmDir&) = delete;
  ScopedShmDir& operator=(const ScopedShmDir&) = delete;
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_.dir(); }

 private:
  TempDir dir_{"/dev/shm", "ackring-testdir"};
  std::optional<std::string> old_;
};

// The bytes of a file, and a file written whole (created 0600 or truncated):
// for tests that read or damage files behind the library's back.
inline std::vector<std::byte> file_bytes(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + path.string());
  struct stat st {};
  ::fstat(fd, &st);
  std::vector<std::byte> out(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return out;
}

inline void write_file(const std::filesystem::path& path, const void* data, std::size_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("create " + path.string());
  if (size != 0 && ::write(fd, data, size) != static_cast<ssize_t>(size)) {
    ::close(fd);
    throw std::runtime_error("write " + path.string());
  }
  ::close(fd);
}

inline void write_file(const std::filesystem::path& path, const std::vector<std::byte>& bytes) {
  write_file(path, bytes.data(), bytes.size());
}

// Succeeds if `f` throws ackring::Error with `code`.
template <class F>
::testing::AssertionResult throws_error(F&& f, ErrorCode code) {
  try {
    f();
  } catch (const Error& e) {
    if (e.code() == code) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "threw ackring::Error with code " << static_cast<int>(e.code())
                                         << " instead of " << static_cast<int>(code) << ": " << e.what();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw another exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

[[nodiscard]] inline std::string text_of(Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Receives up to `n` messages, waiting up to `each` for every one of them.
[[nodiscard]] inline std::vector<Delivery> receive_n(Consumer& c, std::size_t n,
                                                     std::chrono::nanoseconds each = std::chrono::seconds(2)) {
  std::vector<Delivery> out;
  while (out.size() < n) {
    auto d = c.receive(each);
    if (!d) break;
    out.push_back(*d);
  }
  return out;
}

// The stats of one group; fails the test (and returns an empty one) if absent.
[[nodiscard]] inline GroupStats group_stats(const Queue& q, std::string_view name) {
  for (auto& g : q.stats().groups)
    if (g.name == name) return g;
  ADD_FAILURE() << "no group '" << name << "' in stats";
  return {};
}

// True once this process's journal thread holds the journal lock of the
// durable queue `q` (it takes it within a few ms of opening when no other
// process holds it), false if it does not within five seconds.
[[nodiscard]] inline bool holds_journal(const Queue& q) {
  const auto me = static_cast<std::uint32_t>(::getpid());
  for (int i = 0; i < 5000 && q.stats().journal_pid != me; ++i) ::usleep(1000);
  return q.stats().journal_pid == me;
}

[[nodiscard]] inline QueueOptions small_options(std::uint32_t capacity = 8, std::uint32_t max_message_size = 64) {
  QueueOptions o;
  o.capacity = capacity;
  o.max_message_size = max_message_size;
  return o;
}

// What most queue tests start from: a queue created at `path`, a consumer of
// group "g" that joins before anything is published (so it sees every
// message) and a producer, made in that order.
struct OpenQueue {
  OpenQueue(const std::string& path, const QueueOptions& options, const ConsumerOptions& consumer_options)
      : q(Queue::create(path, options)), cons(q.consumer("g", consumer_options)), prod(q.producer()) {}
  Queue q;
  Consumer cons;
  Producer prod;
};

// The fixture of the queue tests: a fresh queue path and the queue a test
// opens on it. The handles close before the file is removed, whatever way
// the test ends. A test names what it needs in its first line:
//   auto& [q, cons, prod] = open(small_options(16));   // queue, consumer of "g", producer
//   auto& q = create(small_options(4));               // the queue alone
class QueueTest : public ::testing::Test {
 protected:
  [[nodiscard]] OpenQueue& open(const QueueOptions& options = small_options(),
                                const ConsumerOptions& consumer_options = {}) {
    return open_.emplace(tq.path(), options, consumer_options);
  }
  [[nodiscard]] Queue& create(const QueueOptions& options = small_options()) {
    return queue_.emplace(Queue::create(tq.path(), options));
  }

  // A journal directory for a durable queue, made on first use; it outlives
  // the queue, whose last records go there as it closes.
  [[nodiscard]] const TempJournalDir& journal() {
    if (!journal_) journal_.emplace();
    return *journal_;
  }

  TempQueue tq;

 private:
  std::optional<TempJournalDir> journal_;
  std::optional<Queue> queue_;
  std::optional<OpenQueue> open_;
};

}  // namespace ackring::testing
