// Reading and verifying a journal directory: recovery, inspection, repair.
// The rules a reader applies are in journal_scan.hpp; this part feeds it the
// segment files and can repair a torn tail.
#pragma once

#include <cstdint>
#include <filesystem>

#include "journal/journal_scan.hpp"

namespace ackring::detail {

struct JournalReadOptions {
  // The queue the journal must belong to (segment header "queue id"); a
  // journal of another queue is refused. 0 accepts any queue.
  std::uint64_t queue_id = 0;
  // After reading, zero a torn tail of the last segment and remove trailing
  // segments whose header was never written, then sync. Takes the journal
  // lock for that (throws if a live writer holds it). A writer does not need
  // this: it supersedes a torn tail instead (docs/journal.md, "Takeover").
  bool repair = false;
};

class JournalReader {
 public:
  // Reads every segment of the journal in `dir` in order, verifies each
  // record (checksum, structure, seq contiguity) and calls `visit` with every
  // good record. Returns how the log ends (clean, torn tail, corrupt), where
  // good records stop and what was discarded; see JournalScanResult.
  //
  // Throws ackring::Error: not_found if `dir` does not exist; incompatible
  // if a segment is not a journal segment, is of another format version or
  // belongs to another queue; system (or a more precise code) for I/O
  // errors. Damage is reported in the result, never thrown, after every
  // record before it was handed out.
  [[nodiscard]] static JournalScanResult read(const std::filesystem::path& dir, const JournalReadOptions& options = {},
                                              const JournalVisitor& visit = {});
};

}  // namespace ackring::detail
