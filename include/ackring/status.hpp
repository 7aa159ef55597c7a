// Hot-path outcomes of ackring operations. These are values, never exceptions:
// a full queue, a timeout or a lost lease is an ordinary result in a message
// system, and the hot path must not pay for unwinding.
#pragma once

#include <cstdint>
#include <string_view>

namespace ackring {

enum class Status : std::uint8_t {
  ok = 0,
  queue_full,      // no free slot: every group's floor is a full ring behind the tail
  timeout,         // nothing happened before the deadline
  lease_lost,      // the receipt is stale: acked, expired and handed out again, or reused
  duplicate,       // process_once: the message was processed before; it was acked and skipped
  too_large,       // payload longer than the queue's max_message_size; nothing written
  empty,           // try_receive found nothing to deliver
  corrupt,         // the shared file holds a value that cannot be right; nothing done
  no_such_group,   // the group was removed while this handle existed
  dedup_full,      // keyed publish: the key's dedup window is full of live keys (policy refuse)
  no_dedup,        // keyed publish or process-once on a queue created without a dedup table
};

[[nodiscard]] constexpr std::string_view to_string(Status s) noexcept {
  switch (s) {
    case Status::ok: return "ok";
    case Status::queue_full: return "queue full";
    case Status::timeout: return "timeout";
    case Status::lease_lost: return "lease lost";
    case Status::duplicate: return "duplicate";
    case Status::too_large: return "message too large";
    case Status::empty: return "empty";
    case Status::corrupt: return "corrupt queue file";
    case Status::no_such_group: return "no such group";
    case Status::dedup_full: return "dedup table full";
    case Status::no_dedup: return "queue has no dedup table";
  }
  return "unknown";
}

}  // namespace ackring
