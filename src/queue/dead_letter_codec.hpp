// The origin record in front of every dead letter (see dead_letter.hpp).
//
//   0        8        16             24          28     29    30     32     34     36         40 .. 48
//   ┌────────┬────────┬──────────────┬───────────┬──────┬─────┬──────┬──────┬──────┬──────────┬─────┐
//   │ magic  │ seq    │ publish time │deliveries │reason│ pad │q len │g len │ pad  │ body len │ pad │
//   └────────┴────────┴──────────────┴───────────┴──────┴─────┴──────┴──────┴──────┴──────────┴─────┘
//   then queue path (q len bytes), group name (g len bytes), body (body len bytes)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "ackring/producer.hpp"

namespace ackring::detail {

inline constexpr char kDeadLetterMagic[8] = {'A', 'C', 'K', 'D', 'L', 'Q', '1', '\0'};

struct DeadLetterHeader {
  char magic[8];
  std::uint64_t seq;
  std::uint64_t publish_time_ns;
  std::uint32_t deliveries;
  std::uint8_t reason;
  std::uint8_t reserved0;
  std::uint16_t queue_len;
  std::uint16_t group_len;
  std::uint16_t reserved1;
  std::uint32_t body_len;
  std::uint32_t reserved2;
  std::uint32_t reserved3;
};
static_assert(sizeof(DeadLetterHeader) == 48);

// Room a dead-letter queue needs per message beyond the original payload.
inline constexpr std::uint32_t kDeadLetterOverhead = sizeof(DeadLetterHeader) + 1024;

// Encodes into `out` (resized); queue and group are cut to fit the overhead.
void encode_dead_letter(std::vector<std::byte>& out, std::string_view queue, std::string_view group,
                        std::uint64_t seq, std::uint32_t deliveries, std::uint8_t reason, std::uint64_t publish_time_ns,
                        Bytes body);

}  // namespace ackring::detail
