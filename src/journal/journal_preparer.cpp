// Segment pre-allocation ahead of need (journal_preparer.hpp).
#include "journal/journal_preparer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "journal/journal_format.hpp"

namespace ackring::detail {

JournalSegmentPreparer::JournalSegmentPreparer(Options options) : options_(std::move(options)) {
  if (options_.background) thread_ = std::thread([this] { run(); });
}

JournalSegmentPreparer::~JournalSegmentPreparer() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (spare_) {
    spare_.reset();
    ::unlink(spare_path().c_str());  // unused spare: a later writer would remove it anyway
  }
}

std::filesystem::path JournalSegmentPreparer::spare_path() const { return options_.dir / kJournalSpareName; }

void JournalSegmentPreparer::request() {
  if (!options_.background) return;
  {
    std::lock_guard lk(mu_);
    if (ready_ || requested_ || error_) return;
    requested_ = true;
  }
  wake_.notify_one();
}

JournalFd JournalSegmentPreparer::take(bool& waited) {
  waited = false;
  if (!options_.background) return prepare();
  std::unique_lock lk(mu_);
  if (!ready_ && !requested_ && !error_) {
    requested_ = true;
    wake_.notify_one();
  }
  if (!ready_ && !error_) {
    waited = true;
    done_.wait(lk, [&] { return ready_ || error_ != nullptr; });
  }
  if (error_) {
    auto e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
  ready_ = false;
  return std::move(spare_);
}

void JournalSegmentPreparer::run() {
  std::unique_lock lk(mu_);
  for (;;) {
    wake_.wait(lk, [&] { return stop_ || requested_; });
    if (stop_) return;
    lk.unlock();
    JournalFd fd;
    std::exception_ptr err;
    try {
      fd = prepare();
    } catch (...) {
      err = std::current_exception();
    }
    lk.lock();
    requested_ = false;
    if (err) error_ = err;
    else {
      spare_ = std::move(fd);
      ready_ = true;
    }
    done_.notify_all();
  }
}

JournalFd JournalSegmentPreparer::prepare() const {
  const auto path = spare_path();
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) journal_fail_errno(path, "remove old spare segment", errno);
  JournalFd fd = journal_open(path, O_RDWR | O_CREAT | O_EXCL, options_.mode);
  const auto size = static_cast<off_t>(options_.segment_size);
  bool zero_fill = options_.zero_fill;
  if (!zero_fill) {
    int rc;
    do rc = ::fallocate(fd.get(), 0, 0, size);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      if (errno != EOPNOTSUPP && errno != ENOSYS) journal_fail_errno(path, "fallocate", errno);
      zero_fill = true;  // a file system without fallocate: allocate by writing
    }
  }
  if (zero_fill) {
    // Written zeros also turn the blocks into ordinary written extents, so a
    // later fdatasync has no extent conversion to commit (docs/journal.md).
    const std::vector<char> zeros(std::min<std::uint64_t>(options_.segment_size, 1u << 20), 0);
    for (std::uint64_t off = 0; off < options_.segment_size; off += zeros.size())
      journal_pwrite_all(fd.get(), zeros.data(), std::min<std::uint64_t>(zeros.size(), options_.segment_size - off),
                         off, path);
  }
  // Size and allocation durable now, so flushes into this file only sync data.
  journal_fsync(fd.get(), path);
  return fd;
}

}  // namespace ackring::detail
