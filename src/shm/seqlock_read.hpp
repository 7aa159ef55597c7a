// Marks the reads of a seqlock-style read section: plain (non-atomic) reads
// of shared bytes that a writer may overwrite meanwhile, made safe by a
// re-check of the state word afterwards that discards what was read. Under
// ThreadSanitizer the reads inside the scope are not recorded (the runtime's
// dynamic annotations), so the designed race is not reported, while every
// read outside the scope, including the user's reads of a payload it was
// handed, is still checked. Outside ThreadSanitizer it is empty.
#pragma once

#if defined(__SANITIZE_THREAD__)
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
#endif

namespace ackring::detail {

class SeqlockReadScope {
 public:
#if defined(__SANITIZE_THREAD__)
  SeqlockReadScope() noexcept { AnnotateIgnoreReadsBegin(__FILE__, __LINE__); }
  ~SeqlockReadScope() { AnnotateIgnoreReadsEnd(__FILE__, __LINE__); }
#else
  SeqlockReadScope() noexcept = default;
#endif
  SeqlockReadScope(const SeqlockReadScope&) = delete;
  SeqlockReadScope& operator=(const SeqlockReadScope&) = delete;
};

}  // namespace ackring::detail
