// Fuzz target: parse_dead_letter on arbitrary bytes (anything in a
// dead-letter queue may have been published there by anyone).
//
// Properties checked (a violation traps, which the fuzzer reports):
//   - a parse that succeeds accounts for every input byte exactly
//     (48-byte header + queue + group + body), and its body view lies inside
//     the input;
//   - re-encoding the parsed record gives the input back (for inputs whose
//     reserved fields are zero and names fit the encoder's limits);
//   - no crash, no out-of-bounds read (the input is a heap buffer of exactly
//     its size under libFuzzer, so ASan sees a read one byte past it).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "ackring/dead_letter.hpp"
#include "queue/dead_letter_codec.hpp"
#include "shm/layout.hpp"

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "fuzz_dead_letter: property violated: %s\n", what);
  __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ackring::Bytes in(reinterpret_cast<const std::byte*>(data), size);
  const auto d = ackring::parse_dead_letter(in);
  if (!d) return 0;
  if (size < sizeof(ackring::detail::DeadLetterHeader)) violated("parsed an input shorter than the header");
  if (sizeof(ackring::detail::DeadLetterHeader) + d->queue.size() + d->group.size() + d->body.size() != size)
    violated("the parts do not add up to the input");
  if (!d->body.empty() && (d->body.data() < in.data() || d->body.data() + d->body.size() > in.data() + size))
    violated("the body view lies outside the input");
  if (d->reason != ackring::DeadLetterReason::max_deliveries && d->reason != ackring::DeadLetterReason::rejected)
    violated("unknown reason accepted");
  // Round trip, where the encoder can represent the record.
  ackring::detail::DeadLetterHeader h;
  std::memcpy(&h, data, sizeof h);
  if (h.reserved0 == 0 && h.reserved1 == 0 && h.reserved2 == 0 && h.reserved3 == 0 && d->queue.size() <= 900 &&
      d->group.size() <= ackring::detail::kGroupNameMax) {
    std::vector<std::byte> again;
    ackring::detail::encode_dead_letter(again, d->queue, d->group, d->seq, d->deliveries,
                                        static_cast<std::uint8_t>(d->reason), d->publish_time_ns, d->body);
    if (again.size() != size || std::memcmp(again.data(), data, size) != 0) violated("re-encoding differs");
  }
  return 0;
}
