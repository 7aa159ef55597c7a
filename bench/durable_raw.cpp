// ackring-durable-bench: the disk's limit, measured without ackring. One
// writer appends the bytes the journal would write for the same records
// (journal_format.hpp framing, checksums included) with one write +
// fdatasync per batch, by pwrite or by the journal's io_uring path.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>
#include <liburing.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "durable_bench.hpp"
#include "journal/journal_format.hpp"  // the record framing, so the raw limit writes the journal's bytes

namespace ackring_bench::durable {
namespace {

// The disk's side of one raw batch: pwrite + fdatasync, or the journal's
// io_uring path (a write from a registered buffer linked to an
// fsync(DATASYNC), one submission, both completions reaped).
class RawSink {
 public:
  RawSink(bool uring, std::vector<std::byte>& buf) : uring_(uring) {
    if (!uring_) return;
    if (const int rc = io_uring_queue_init(8, &ring_, 0); rc < 0) {
      errno = -rc;
      throw_errno("io_uring_queue_init");
    }
    const iovec iov{buf.data(), buf.size()};
    registered_ = io_uring_register_buffers(&ring_, &iov, 1) == 0;  // as the journal: fixed if allowed
  }
  ~RawSink() {
    if (uring_) io_uring_queue_exit(&ring_);
  }
  RawSink(const RawSink&) = delete;
  RawSink& operator=(const RawSink&) = delete;

  void write_and_sync(int fd, const std::byte* data, std::size_t n, std::uint64_t off) {
    if (!uring_) {
      for (std::size_t done = 0; done < n;) {
        const ssize_t w = ::pwrite(fd, data + done, n - done, static_cast<off_t>(off + done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) throw_errno("pwrite");
        done += static_cast<std::size_t>(w);
      }
      if (::fdatasync(fd) != 0) throw_errno("fdatasync");
      return;
    }
    io_uring_sqe* w = io_uring_get_sqe(&ring_);
    if (registered_)
      io_uring_prep_write_fixed(w, fd, data, static_cast<unsigned>(n), off, 0);
    else
      io_uring_prep_write(w, fd, data, static_cast<unsigned>(n), off);
    w->flags |= IOSQE_IO_LINK;  // the fsync runs only after the whole write
    io_uring_sqe* f = io_uring_get_sqe(&ring_);
    io_uring_prep_fsync(f, fd, IORING_FSYNC_DATASYNC);
    if (const int rc = io_uring_submit(&ring_); rc != 2) {
      errno = rc < 0 ? -rc : EIO;
      throw_errno("io_uring_submit");
    }
    for (int i = 0; i < 2; ++i) {
      io_uring_cqe* cqe = nullptr;
      int rc;
      while ((rc = io_uring_wait_cqe(&ring_, &cqe)) == -EINTR) {
      }
      if (rc < 0) errno = -rc, throw_errno("io_uring_wait_cqe");
      const int res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      // A short write would cancel the fsync: a limit that silently synced less would be no limit.
      if (res < 0) errno = -res, throw_errno("io_uring write / fsync");
    }
  }
  [[nodiscard]] bool registered() const noexcept { return registered_; }

 private:
  bool uring_;
  bool registered_ = false;
  io_uring ring_{};
};

}  // namespace


// The journal's segment size for a queue (durability.cpp, segment_size_for:
// about two rings of records, 1 .. 64 MiB), so that the raw writer rolls to a
// new file as often as the journal does.
std::uint64_t journal_segment_size(const Config& c, std::uint32_t max_message_size) {
  const std::uint64_t ring = std::uint64_t{c.capacity} * (std::uint64_t{max_message_size} + 64);
  return std::clamp<std::uint64_t>((2 * ring + 4095) / 4096 * 4096, 1ull << 20, 64ull << 20);
}

// The limit: one writer appending the journal's bytes for `batch` records
// (on average: batches of floor/ceil alternate to hit a fractional average)
// with one write + fdatasync each, into pre-allocated files of the
// journal's segment size. The rate is records over the time spent inside
// write + sync, so nothing between batches counts against it.
RunResult Bench::run_raw(Variant v, const Case& cs, double batch) {
  RunResult out;
  out.variant = v;
  out.load = read_load1();
  out.batch = batch = std::max(1.0, batch);
  const fs::path dir = work_ / ("raw-" + std::to_string(runs_++));
  fs::create_directories(dir);
  const std::uint64_t segment = journal_segment_size(cfg_, max_size_);
  const std::size_t max_batch = static_cast<std::size_t>(std::ceil(batch));
  namespace jf = ackring::detail;
  const std::size_t record = jf::journal_record_size(sizeof(jf::JournalMessageHeader) + cs.size);
  // Real framed message records, checksums included: the same bytes the journal writes.
  std::vector<std::byte> buf(record * max_batch, std::byte{0});
  for (std::size_t i = 0; i < max_batch; ++i) {
    std::byte* r = buf.data() + i * record;
    jf::JournalRecordHeader h{};
    h.length = static_cast<std::uint32_t>(sizeof(jf::JournalMessageHeader) + cs.size);
    h.type = static_cast<std::uint16_t>(jf::JournalRecordType::message);
    h.flags = i == 0 ? jf::kJournalFlagBatchStart : 0;
    h.seq = i;
    std::memcpy(r, &h, sizeof h);
    std::memset(r + sizeof h + sizeof(jf::JournalMessageHeader), 0x5a, cs.size);
    h.checksum = jf::journal_record_checksum(r, h.length);
    std::memcpy(r, &h, sizeof h.checksum);
  }
  RawSink sink(v != Variant::raw_pwrite, buf);
  int fd = -1;
  int file_no = 0;
  std::uint64_t off = segment;  // forces the first file
  // Outside the timing: the journal prepares its next segment on a helper thread.
  auto next_file = [&] {
    if (fd >= 0) ::close(fd), fs::remove(dir / ("seg" + std::to_string(file_no - 1)));
    const fs::path p = dir / ("seg" + std::to_string(file_no++));
    fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw_errno("open " + p.string());
    if (::fallocate(fd, 0, 0, static_cast<off_t>(segment)) != 0) throw_errno("fallocate " + p.string());
    if (::fsync(fd) != 0) throw_errno("fsync " + p.string());
    off = jf::kJournalSegmentHeaderSize;
  };
  auto hist = std::make_unique<LatencyHistogram>();  // 15 KiB, zeroed: not on the stack
  const std::uint64_t warm_until = now_ns() + static_cast<std::uint64_t>(cfg_.warmup * 1e9);
  const std::uint64_t end = warm_until + static_cast<std::uint64_t>(cfg_.seconds * 1e9);
  std::uint64_t busy_ns = 0, records = 0, batches = 0;
  for (std::uint64_t i = 0;; ++i) {
    const auto n = static_cast<std::size_t>(std::floor(static_cast<double>(i + 1) * batch) -
                                            std::floor(static_cast<double>(i) * batch));
    const std::size_t bytes = n * record;
    if (off + bytes > segment) next_file();
    const std::uint64_t t0 = now_ns();
    sink.write_and_sync(fd, buf.data(), bytes, off);
    const std::uint64_t t1 = now_ns();
    off += bytes;
    if (t0 >= warm_until) {
      busy_ns += t1 - t0;
      records += n;
      ++batches;
      hist->record(t1 - t0);
    }
    if (t1 >= end) break;
  }
  if (fd >= 0) ::close(fd);
  std::error_code ec;
  fs::remove_all(dir, ec);
  out.messages = records;
  out.flushes = batches;
  out.records_per_flush = batches != 0 ? static_cast<double>(records) / static_cast<double>(batches) : 0;
  out.msgs_per_s = busy_ns != 0 ? static_cast<double>(records) * 1e9 / static_cast<double>(busy_ns) : 0;
  out.mb_per_s = out.msgs_per_s * cs.size / 1e6;
  out.p50_us = percentile_us(*hist, 0.50);
  out.p99_us = percentile_us(*hist, 0.99);
  out.p999_us = percentile_us(*hist, 0.999);
  out.max_us = percentile_us(*hist, 1.0);
  out.cpus = "parent " + std::to_string(sched_getcpu());
  return out;
}

}  // namespace ackring_bench::durable
