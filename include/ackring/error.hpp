// Cold-path failures (create, open, join, I/O) throw ackring::Error. Its
// message names the file, the operation and the reason, e.g. (version 3 is
// the current queue file format, src/shm/layout.hpp kFormatVersion)
//   open queue '/dev/shm/ackring.orders': format version 7 is not supported (this build reads version 3)
#pragma once

#include <stdexcept>
#include <string>

namespace ackring {

enum class ErrorCode {
  invalid_argument,   // bad name, capacity not a power of two, ...
  not_found,          // no such queue / group
  already_exists,     // create of an existing queue or group
  permission_denied,  // the OS refused access
  incompatible,       // another format version or layout
  corrupt,            // the file fails validation (checksum, bounds)
  resource_exhausted, // no free group / member / producer slot
  system,             // any other OS error
  timeout,            // a long operation (e.g. a rewind waiting for room) gave up
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace ackring
