// Dead letters. A message that exceeds max_deliveries, or that a consumer
// rejects, is published to the queue "<name>.dlq" (an ordinary ackring queue
// with one group, "dlq") as an origin record followed by the original payload.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ackring/producer.hpp"

namespace ackring {

enum class DeadLetterReason : std::uint8_t {
  max_deliveries = 1,  // delivered max_deliveries times without an ack
  rejected = 2,        // a consumer called reject()
};

[[nodiscard]] constexpr std::string_view to_string(DeadLetterReason r) noexcept {
  return r == DeadLetterReason::max_deliveries ? "max deliveries exceeded" : "rejected";
}

struct DeadLetter {
  std::string queue;  // path of the queue the message came from
  std::string group;
  std::uint64_t seq = 0;
  std::uint32_t deliveries = 0;
  DeadLetterReason reason = DeadLetterReason::max_deliveries;
  std::uint64_t publish_time_ns = 0;  // of the original message
  Bytes body;                         // the original payload (a view into the input)
};

// Decodes a message read from a dead-letter queue; nullopt if it is not one.
[[nodiscard]] std::optional<DeadLetter> parse_dead_letter(Bytes message) noexcept;

// The name or path of the dead-letter queue of `name_or_path`.
[[nodiscard]] std::string dead_letter_queue_of(std::string_view name_or_path);

// Publishes every dead letter waiting in the "dlq" group of `name_or_path`'s
// dead-letter queue back into the original queue and acks it in the DLQ.
// Returns how many were moved. Throws ackring::Error on setup failure.
std::size_t redrive_dead_letters(std::string_view name_or_path);

}  // namespace ackring
