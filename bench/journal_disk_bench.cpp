// ackring-journal-disk-bench: how close the journal writer gets to the disk's limit.
//
// For message bodies of 64 B and 1 KiB and batches of 1, 8, 64 and 512
// records it measures, on the file system of the journal directory:
//
//   raw       the limit: the same bytes the journal writes, framed the same
//             way, one pwrite + fdatasync per batch, into pre-allocated files
//   journal   JournalWriter: append the batch, flush (io_uring: the write
//             linked to fdatasync in one submission)
//   fallback  JournalWriter with force_pwrite (pwrite + fdatasync)
//
// and prints records/s, body MB/s, flush latency p50 / p99 / max (of one
// batch: append + write + fdatasync), and records/s as a percentage of raw.
// The three paths of a case run in 8 interleaved rounds, so that the drift of
// a shared disk affects them alike.
//
//   ackring-journal-disk-bench [--dir DIR] [--seconds S] [--cpu N] [--quick]
//
// DIR defaults to /var/tmp/ackring-journal-bench (a real disk; /tmp or
// /dev/shm may be tmpfs, where fdatasync costs nothing). It is created and
// removed. Each case runs S seconds (default 1.5) after a warm-up of 20
// batches; --quick runs each for 0.2 s (a smoke test).
#include <fcntl.h>
#include <sched.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "journal/journal_format.hpp"
#include "journal/journal_writer.hpp"

namespace fs = std::filesystem;
using namespace ackring::detail;

namespace {

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "ackring-journal-disk-bench: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

struct Config {
  fs::path dir = "/var/tmp/ackring-journal-bench";
  double seconds = 1.5;
  int cpu = -1;
  int warmup = 20;
};

struct Result {
  std::uint64_t records = 0;
  std::uint64_t body_bytes = 0;
  double seconds = 0;
  std::vector<std::uint64_t> flush_ns;
  [[nodiscard]] double records_per_s() const { return static_cast<double>(records) / seconds; }
  [[nodiscard]] double mb_per_s() const { return static_cast<double>(body_bytes) / seconds / 1e6; }
  [[nodiscard]] double pct(double q) {
    if (flush_ns.empty()) return 0;
    std::sort(flush_ns.begin(), flush_ns.end());
    const auto i = static_cast<std::size_t>(q * static_cast<double>(flush_ns.size()));
    return static_cast<double>(flush_ns[std::min(i, flush_ns.size() - 1)]) / 1000.0;
  }
};

constexpr std::uint64_t kSegmentSize = 64ull << 20;

// One way of making a batch durable; step() does one batch and returns its
// latency in ns.
class Runner {
 public:
  virtual ~Runner() = default;
  virtual std::uint64_t step() = 0;
};

// The limit: pwrite + fdatasync of exactly the bytes the journal would write
// for one batch, into fallocate()d files like the journal's segments.
class RawRunner final : public Runner {
 public:
  RawRunner(fs::path dir, std::size_t body, std::size_t batch)
      : dir_(std::move(dir)), buf_(journal_record_size(sizeof(JournalMessageHeader) + body) * batch, 0x5a) {
    fs::create_directories(dir_);
  }
  ~RawRunner() override {
    if (fd_ >= 0) ::close(fd_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::uint64_t step() override {
    if (off_ + buf_.size() > kSegmentSize) next_file();
    const std::uint64_t t0 = now_ns();
    std::size_t done = 0;
    while (done < buf_.size()) {
      const ssize_t w = ::pwrite(fd_, buf_.data() + done, buf_.size() - done, static_cast<off_t>(off_ + done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) die("pwrite");
      done += static_cast<std::size_t>(w);
    }
    if (::fdatasync(fd_) != 0) die("fdatasync");
    off_ += buf_.size();
    return now_ns() - t0;
  }

 private:
  void next_file() {
    if (fd_ >= 0) {
      ::close(fd_);
      fs::remove(dir_ / ("f" + std::to_string(file_no_ - 1)));
    }
    const auto p = dir_ / ("f" + std::to_string(file_no_++));
    fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) die("open " + p.string());
    if (::fallocate(fd_, 0, 0, static_cast<off_t>(kSegmentSize)) != 0) die("fallocate");
    if (::fsync(fd_) != 0) die("fsync");
    off_ = kJournalSegmentHeaderSize;
  }

  fs::path dir_;
  std::vector<char> buf_;
  int file_no_ = 0;
  int fd_ = -1;
  std::uint64_t off_ = kSegmentSize;  // forces the first file
};

// The journal writer doing the same: append `batch` messages, flush.
class JournalRunner final : public Runner {
 public:
  JournalRunner(fs::path dir, std::size_t body, std::size_t batch, bool force_pwrite)
      : dir_(std::move(dir)), msg_(body, std::byte{0x5a}), batch_(batch) {
    fs::remove_all(dir_);
    JournalOptions o;
    o.queue_id = 1;
    o.segment_size = kSegmentSize;
    o.force_pwrite = force_pwrite;
    w_ = JournalWriter::try_acquire(dir_, o);
    if (!w_) throw std::runtime_error("journal lock busy");
  }
  ~JournalRunner() override {
    w_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::uint64_t step() override {
    const std::uint64_t t0 = now_ns();
    for (std::size_t i = 0; i < batch_; ++i) (void)w_->append_message(msg_, t0);
    (void)w_->flush();
    const std::uint64_t took = now_ns() - t0;
    if (w_->stats().segments_created > w_->stats().segments_deleted + 2)
      (void)w_->delete_below(w_->next_seq());  // bound the disk used (untimed)
    return took;
  }
  [[nodiscard]] JournalWriterStats stats() const { return w_->stats(); }

 private:
  fs::path dir_;
  std::vector<std::byte> msg_;
  std::size_t batch_;
  std::unique_ptr<JournalWriter> w_;
};

std::string fs_name(const fs::path& p) {
  struct statfs s{};
  if (::statfs(p.c_str(), &s) != 0) return "?";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs";
    default: {
      char b[32];
      std::snprintf(b, sizeof b, "0x%lx", static_cast<unsigned long>(s.f_type));
      return b;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) c.dir = argv[++i];
    else if (a == "--seconds" && i + 1 < argc) c.seconds = std::atof(argv[++i]);
    else if (a == "--cpu" && i + 1 < argc) c.cpu = std::atoi(argv[++i]);
    else if (a == "--quick") {
      c.seconds = 0.2;
      c.warmup = 3;
    } else {
      std::fprintf(stderr, "usage: %s [--dir DIR] [--seconds S] [--cpu N] [--quick]\n", argv[0]);
      return 2;
    }
  }
  if (c.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(c.cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
  }
  fs::create_directories(c.dir);
  utsname u{};
  ::uname(&u);
  std::printf("ackring-journal-disk-bench: dir %s (%s), kernel %s, %ld CPUs, compiler %s, %.1f s per case\n",
              c.dir.c_str(), fs_name(c.dir).c_str(), u.release, sysconf(_SC_NPROCESSORS_ONLN), __VERSION__,
              c.seconds);
  std::printf("%-8s %6s %6s %12s %10s %10s %10s %10s %8s\n", "path", "body", "batch", "records/s", "MB/s",
              "p50 us", "p99 us", "max us", "% raw");
  // The disk of a shared machine drifts: each case runs its three paths in
  // interleaved rounds (rotating which goes first), so drift hits all alike.
  constexpr int kRounds = 8;
  int rc = 0;
  try {
    for (const std::size_t body : {64u, 1024u}) {
      for (const std::size_t batch : {1u, 8u, 64u, 512u}) {
        RawRunner raw(c.dir / "raw", body, batch);
        JournalRunner uring(c.dir / "journal", body, batch, false);
        JournalRunner fallback(c.dir / "fallback", body, batch, true);
        Runner* runners[3] = {&raw, &uring, &fallback};
        Result res[3];
        for (auto* r : runners)
          for (int i = 0; i < c.warmup; ++i) (void)r->step();
        const auto slice = static_cast<std::uint64_t>(c.seconds / kRounds * 1e9);
        for (int round = 0; round < kRounds; ++round) {
          for (int k = 0; k < 3; ++k) {
            const int m = (round + k) % 3;
            const std::uint64_t start = now_ns();
            while (now_ns() - start < slice) {
              res[m].flush_ns.push_back(runners[m]->step());
              res[m].records += batch;
              res[m].body_bytes += batch * body;
            }
            res[m].seconds += static_cast<double>(now_ns() - start) / 1e9;
          }
        }
        const double raw_rate = res[0].records_per_s();
        const char* names[3] = {"raw", to_string(uring.stats().io_path), "pwrite"};
        for (int m = 0; m < 3; ++m) {
          char pct[16];
          std::snprintf(pct, sizeof pct, "%.0f", 100.0 * res[m].records_per_s() / raw_rate);
          const bool waited = m > 0 && (m == 1 ? uring : fallback).stats().roll_waits > 0;
          std::printf("%-8s %6zu %6zu %12.0f %10.2f %10.1f %10.1f %10.1f %8s%s\n", names[m], body, batch,
                      res[m].records_per_s(), res[m].mb_per_s(), res[m].pct(0.50), res[m].pct(0.99),
                      res[m].pct(1.0), pct, waited ? "  (a roll-over waited for its segment)" : "");
        }
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ackring-journal-disk-bench: %s\n", e.what());
    rc = 1;
  }
  std::error_code ec;
  fs::remove_all(c.dir, ec);
  return rc;
}
