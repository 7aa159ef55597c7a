// The journal's durable write (journal_io.hpp).
//
// Ordering argument for the io_uring path. One flush is one submission of
//
//     SQE 1  WRITE(_FIXED) fd, staged bytes, offset        flags IOSQE_IO_LINK
//     SQE 2  FSYNC fd, IORING_FSYNC_DATASYNC
//
// - IOSQE_IO_LINK makes SQE 2 start only after SQE 1 *completed*, and only if
//   it completed in full: a failed or short write completes SQE 2 with
//   -ECANCELED instead of running it. So a successful fsync CQE proves that
//   every byte of this write reached the file before the fdatasync began,
//   and fdatasync covers all writes that completed before it started.
// - We wait for both CQEs before returning. Until then the kernel may read
//   the staged bytes, so the caller must not touch them (the writer is
//   single-threaded: nothing runs while it waits here), and the next flush
//   is submitted only after this one's fdatasync returned — which is what
//   makes the "batch start" flag a proof of durability (journal_format.hpp).
// - Memory ordering between us and the kernel is liburing's: io_uring_submit
//   publishes the SQ tail with a release store after the SQEs are written,
//   and io_uring_wait_cqe reads the CQ tail with an acquire load before we
//   read the CQE. We never touch the ring indices ourselves.
#include "journal/journal_io.hpp"

#include <liburing.h>
#include <sched.h>

#include <cerrno>
#include <cstring>

#include "ackring/error.hpp"
#include "journal/journal_fs.hpp"

namespace ackring::detail {

namespace {

constexpr unsigned kRingEntries = 8;  // one flush needs 2; nothing else is ever in flight
constexpr std::uint64_t kWriteTag = 1;
constexpr std::uint64_t kSyncTag = 2;
// A flush that makes no progress this many times in a row (EAGAIN, EINTR,
// cancelled fsyncs) is reported instead of spinning forever.
constexpr int kMaxRetriesWithoutProgress = 10'000;

[[nodiscard]] bool transient(int err) noexcept { return err == EINTR || err == EAGAIN; }

}  // namespace

const char* to_string(JournalIoPath p) noexcept {
  return p == JournalIoPath::io_uring ? "io_uring" : "pwrite";
}

JournalIo::JournalIo(bool force_pwrite) {
  if (force_pwrite) {
    fallback_reason_ = "pwrite forced by the options";
    return;
  }
  // COOP_TASKRUN: completions are processed when we enter the kernel to wait
  // anyway, so the kernel need not interrupt us (5.19+; retried without it).
  auto ring = std::make_unique<io_uring>();
  int rc = io_uring_queue_init(kRingEntries, ring.get(), IORING_SETUP_COOP_TASKRUN);
  if (rc == -EINVAL) rc = io_uring_queue_init(kRingEntries, ring.get(), 0);
  if (rc < 0) {
    fallback_reason_ = std::string("io_uring_queue_init failed: ") + std::strerror(-rc);
    return;
  }
  ring_.reset(ring.release());
  // The ops we need: IORING_OP_FSYNC (5.1) and IORING_OP_WRITE (5.6).
  io_uring_probe* probe = io_uring_get_probe_ring(ring_.get());
  const bool ok = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_WRITE) &&
                  io_uring_opcode_supported(probe, IORING_OP_FSYNC) &&
                  io_uring_opcode_supported(probe, IORING_OP_WRITE_FIXED);
  if (probe != nullptr) io_uring_free_probe(probe);
  if (!ok) {
    ring_.reset();
    fallback_reason_ = "the kernel's io_uring lacks IORING_OP_WRITE / WRITE_FIXED / FSYNC";
    return;
  }
  path_ = JournalIoPath::io_uring;
}

void JournalIo::RingDeleter::operator()(io_uring* ring) const noexcept {
  // No request is in flight here: write_and_sync reaps every CQE it submits
  // before it returns or throws.
  io_uring_queue_exit(ring);
  delete ring;
}

JournalIo::~JournalIo() = default;

void JournalIo::register_buffer(std::byte* data, std::size_t size) {
  if (path_ != JournalIoPath::io_uring) return;
  if (registered_size_ != 0) {
    io_uring_unregister_buffers(ring_.get());
    registered_ = nullptr;
    registered_size_ = 0;
  }
  iovec iov{data, size};
  const int rc = io_uring_register_buffers(ring_.get(), &iov, 1);
  if (rc < 0) {
    buffer_problem_ = std::string("io_uring_register_buffers failed: ") + std::strerror(-rc) +
                      (rc == -ENOMEM ? " (RLIMIT_MEMLOCK too low?)" : "") + "; using unregistered writes";
    return;
  }
  buffer_problem_.clear();
  registered_ = data;
  registered_size_ = size;
}

void JournalIo::write_and_sync(int fd, const std::byte* data, std::size_t n, std::uint64_t offset,
                               const std::filesystem::path& path) {
  if (path_ == JournalIoPath::io_uring) {
    uring_write_and_sync(fd, data, n, offset, path);
    return;
  }
  journal_pwrite_all(fd, data, n, offset, path);
  journal_fdatasync(fd, path);
}

void JournalIo::submit(unsigned count, const std::filesystem::path& path) {
  unsigned submitted = 0;
  int stalls = 0;
  while (submitted < count) {
    const int rc = io_uring_submit(ring_.get());
    if (rc >= 0) {
      submitted += static_cast<unsigned>(rc);
      if (rc > 0) continue;
    } else if (!transient(-rc) && rc != -EBUSY) {
      journal_fail_errno(path, "io_uring_submit", -rc);
    }
    // -EAGAIN / -EBUSY: the kernel is short of resources for a moment, and
    // none of our requests is in flight to free them (nothing else uses this
    // ring), so yield and retry.
    ++counters_.retries;
    if (++stalls > kMaxRetriesWithoutProgress)
      journal_fail(ErrorCode::system, path, "io_uring_submit", "the kernel accepted no request after many retries");
    ::sched_yield();
  }
}

namespace {

io_uring_sqe* next_sqe(io_uring* ring, const std::filesystem::path& path) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  if (sqe == nullptr) journal_fail(ErrorCode::system, path, "io_uring_get_sqe", "the submission queue is full");
  return sqe;
}

// Queues the rest of the write (data[done, n) at offset + done), if any,
// linked to an fsync; returns how many SQEs that is.
unsigned prepare_flush(io_uring* ring, int fd, const std::byte* data, std::size_t n, std::size_t done,
                       std::uint64_t offset, bool fixed, const std::filesystem::path& path) {
  const bool write_needed = done < n;
  if (write_needed) {
    io_uring_sqe* w = next_sqe(ring, path);
    const auto len = static_cast<unsigned>(n - done);
    if (fixed)
      io_uring_prep_write_fixed(w, fd, data + done, len, offset + done, 0);
    else
      io_uring_prep_write(w, fd, data + done, len, offset + done);
    // The link: the fsync below runs only after this write completed in
    // full; a short or failed write cancels it (-ECANCELED).
    w->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(w, kWriteTag);
  }
  io_uring_sqe* s = next_sqe(ring, path);
  io_uring_prep_fsync(s, fd, IORING_FSYNC_DATASYNC);
  io_uring_sqe_set_data64(s, kSyncTag);
  return write_needed ? 2 : 1;
}

struct FlushResults {
  int write_res = 0;
  int sync_res = 0;
};

// Reaps every CQE of this submission before acting on any result, so that
// nothing is in flight when the caller throws or retries.
FlushResults reap_flush(io_uring* ring, unsigned expected, const std::filesystem::path& path) {
  FlushResults r;
  for (unsigned got = 0; got < expected;) {
    io_uring_cqe* cqe = nullptr;
    const int rc = io_uring_wait_cqe(ring, &cqe);
    if (rc < 0) {
      if (transient(-rc)) continue;  // a signal interrupted the wait; the requests are still running
      journal_fail_errno(path, "io_uring_wait_cqe", -rc);
    }
    if (io_uring_cqe_get_data64(cqe) == kWriteTag) r.write_res = cqe->res;
    else r.sync_res = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    ++got;
  }
  return r;
}

}  // namespace

void JournalIo::uring_write_and_sync(int fd, const std::byte* data, std::size_t n, std::uint64_t offset,
                                     const std::filesystem::path& path) {
  std::size_t done = 0;
  int idle = 0;
  for (;;) {
    const bool write_needed = done < n;
    const auto at = reinterpret_cast<std::uintptr_t>(data);
    const auto base = reinterpret_cast<std::uintptr_t>(registered_);
    const bool fixed = registered_size_ != 0 && at >= base && at + n <= base + registered_size_;
    const unsigned expected = prepare_flush(ring_.get(), fd, data, n, done, offset, fixed, path);
    submit(expected, path);
    const auto [write_res, sync_res] = reap_flush(ring_.get(), expected, path);

    bool progress = false;
    if (write_needed) {
      if (write_res < 0) {
        if (!transient(-write_res)) journal_fail_errno(path, "write", -write_res);
      } else if (write_res == 0) {
        journal_fail(ErrorCode::system, path, "write", "the write made no progress (0 bytes written)");
      } else {
        done += static_cast<std::size_t>(write_res);
        progress = true;
        if (done < n) ++counters_.short_writes;
      }
    }
    if (sync_res == 0 && done == n) return;  // written in full, then synced
    if (sync_res < 0 && sync_res != -ECANCELED && !transient(-sync_res))
      journal_fail_errno(path, "fdatasync", -sync_res);
    // A short write (the link cancelled the fsync), EINTR or EAGAIN: go again
    // with what is left (possibly just the fsync).
    ++counters_.retries;
    idle = progress ? 0 : idle + 1;
    if (idle > kMaxRetriesWithoutProgress)
      journal_fail(ErrorCode::system, path, "write", "no progress after many retries");
  }
}

}  // namespace ackring::detail
