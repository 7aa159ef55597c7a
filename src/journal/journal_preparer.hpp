// Prepares the journal's next segment file ahead of need: creates
// `<dir>/spare.wal.tmp`, allocates it in full (fallocate, or by writing
// zeros) and fsyncs it, on a helper thread, so that a roll-over only renames
// a ready file instead of allocating 64 MiB while a flush waits.
//
// Thread safety: request() and take() are called by the writer's thread;
// the helper thread only prepares the file. mu_ guards every member the two
// share (the hand-over of the prepared file descriptor and the error), so no
// atomics are needed. A process must not fork while a preparer runs and use
// it in the child (the child has no helper thread).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>

#include "journal/journal_fs.hpp"

namespace ackring::detail {

class JournalSegmentPreparer {
 public:
  struct Options {
    std::filesystem::path dir;
    std::uint64_t segment_size = 0;
    bool zero_fill = false;   // write zeros instead of fallocate (also the fallback if fallocate is unsupported)
    bool background = true;   // prepare on a helper thread; otherwise inside take()
    unsigned mode = 0600;
  };

  explicit JournalSegmentPreparer(Options options);
  // Stops the helper thread (waiting for a preparation in progress) and
  // removes a spare nobody took.
  ~JournalSegmentPreparer();
  JournalSegmentPreparer(const JournalSegmentPreparer&) = delete;
  JournalSegmentPreparer& operator=(const JournalSegmentPreparer&) = delete;

  // Starts preparing the spare if none is ready or being prepared.
  void request();
  // The prepared spare, open for writing, at spare_path(). Prepares it now
  // if nobody asked earlier, waits if the helper is still at it (`waited`
  // says so). Throws the error of a failed preparation.
  [[nodiscard]] JournalFd take(bool& waited);

  [[nodiscard]] std::filesystem::path spare_path() const;

 private:
  [[nodiscard]] JournalFd prepare() const;
  void run();

  const Options options_;
  std::mutex mu_;
  std::condition_variable wake_;  // the helper waits for a request or stop
  std::condition_variable done_;  // take() waits for the spare or an error
  bool stop_ = false;             // guarded by mu_
  bool requested_ = false;        // guarded by mu_
  bool ready_ = false;            // guarded by mu_: spare_ holds a prepared file
  JournalFd spare_;               // guarded by mu_
  std::exception_ptr error_;      // guarded by mu_
  std::thread thread_;            // last: started after the members above exist
};

}  // namespace ackring::detail
