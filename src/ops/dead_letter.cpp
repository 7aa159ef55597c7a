// Dead-lettering: the origin record codec, the consumer's hand-off of a
// message to <queue>.dlq, and redrive back into the original queue.
#include "ackring/dead_letter.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "ackring/error.hpp"
#include "ackring/queue.hpp"
#include "queue/consumer_inline.hpp"
#include "queue/dead_letter_codec.hpp"
#include "queue/durability.hpp"
#include "shm/failpoint.hpp"
#include "queue/group.hpp"
#include "queue/queue_file.hpp"
#include "shm/queue_state.hpp"
#include "shm/seqlock_read.hpp"
#include "shm/xxhash_inline.hpp"

namespace ackring {

using namespace detail;

namespace detail {

void encode_dead_letter(std::vector<std::byte>& out, std::string_view queue, std::string_view group,
                        std::uint64_t seq, std::uint32_t deliveries, std::uint8_t reason, std::uint64_t publish_time_ns,
                        Bytes body) {
  // Keep the tail of a long path: it names the queue.
  if (queue.size() > 900) queue = queue.substr(queue.size() - 900);
  group = group.substr(0, kGroupNameMax);
  DeadLetterHeader h{};
  std::memcpy(h.magic, kDeadLetterMagic, sizeof h.magic);
  h.seq = seq;
  h.publish_time_ns = publish_time_ns;
  h.deliveries = deliveries;
  h.reason = reason;
  h.queue_len = static_cast<std::uint16_t>(queue.size());
  h.group_len = static_cast<std::uint16_t>(group.size());
  h.body_len = static_cast<std::uint32_t>(body.size());
  out.resize(sizeof h + queue.size() + group.size() + body.size());
  std::byte* p = out.data();
  std::memcpy(p, &h, sizeof h);
  p += sizeof h;
  std::memcpy(p, queue.data(), queue.size());
  p += queue.size();
  std::memcpy(p, group.data(), group.size());
  p += group.size();
  if (!body.empty()) std::memcpy(p, body.data(), body.size());
}

}  // namespace detail

std::optional<DeadLetter> parse_dead_letter(Bytes message) noexcept {
  DeadLetterHeader h;
  if (message.size() < sizeof h) return std::nullopt;
  std::memcpy(&h, message.data(), sizeof h);
  if (std::memcmp(h.magic, kDeadLetterMagic, sizeof h.magic) != 0) return std::nullopt;
  const std::uint64_t need = sizeof h + std::uint64_t{h.queue_len} + h.group_len + h.body_len;
  if (need != message.size()) return std::nullopt;
  if (h.reason != static_cast<std::uint8_t>(DeadLetterReason::max_deliveries) &&
      h.reason != static_cast<std::uint8_t>(DeadLetterReason::rejected))
    return std::nullopt;
  try {
    const char* p = reinterpret_cast<const char*>(message.data()) + sizeof h;
    DeadLetter d;
    d.queue.assign(p, h.queue_len);
    d.group.assign(p + h.queue_len, h.group_len);
    d.seq = h.seq;
    d.deliveries = h.deliveries;
    d.reason = static_cast<DeadLetterReason>(h.reason);
    d.publish_time_ns = h.publish_time_ns;
    d.body = message.subspan(sizeof h + h.queue_len + h.group_len, h.body_len);
    return d;
  } catch (...) {
    return std::nullopt;
  }
}

std::string dead_letter_queue_of(std::string_view name_or_path) { return std::string(name_or_path) + ".dlq"; }

namespace {

Queue open_dead_letter_queue(const QueueState& origin) {
  QueueOptions o;
  o.capacity = origin.layout.capacity;
  o.max_message_size = origin.layout.max_message_size + kDeadLetterOverhead;
  o.max_groups = 4;
  o.max_members = std::min<std::uint32_t>(origin.layout.max_members, 16);
  o.default_lease = Millis(origin.layout.default_lease_ms);
  // The dead letters of a durable queue are as durable as the queue: a
  // message must not become less safe by failing. (Sync: dead-lettering
  // settles the original only once the dead letter is on disk.)
  const QueueOptions same = options_from_layout(origin.layout);
  o.durability = same.durability;
  o.async_flush_interval = same.async_flush_interval;
  o.journal_retain_bytes = same.journal_retain_bytes;
  o.journal_retain_age = same.journal_retain_age;
  o.journal_dir = journal_root(origin);
  struct stat st{};
  if (::stat(origin.path.c_str(), &st) == 0) o.mode = st.st_mode & 07777;
  Queue dlq = Queue::open_or_create(dead_letter_queue_of(origin.path.string()), o);
  try {
    dlq.create_group("dlq");
  } catch (const Error& e) {
    if (e.code() != ErrorCode::already_exists) throw;
  }
  return dlq;
}

}  // namespace

bool Consumer::dead_letter(std::uint64_t seq, std::uint64_t held_word, std::uint8_t reason) noexcept {
  const QueueState& q = *state_;
  const LeaseWord held = LeaseWord::decode(held_word);
  const SlotHeader& slot = q.slot(seq);
  std::uint64_t checksum = 0;
  std::uint32_t length = 0;
  try {
    if (!dlq_) dlq_ = std::make_unique<Producer>(open_dead_letter_queue(q).producer());
    // A seqlock read, like Consumer::fill: our lease can run out while we copy
    // (a stalled process) and the slot be rewritten; the lease re-check below
    // discards such a copy.
    [[maybe_unused]] const SeqlockReadScope racy_reads;
    const SlotFields f = read_fields(slot);
    length = std::min(f.length, q.layout.max_message_size);
    checksum = f.checksum;
    encode_dead_letter(dlq_buffer_, q.path.string(), group_name_, seq, held.deliveries, reason, f.publish_time_ns,
                       Bytes(q.payload(seq), length));
  } catch (...) {
    return false;  // could not open/create the DLQ: the caller keeps the message leased
  }
  if (!still_held(seq, held_word)) return true;  // not ours any more
  // The payload is the tail of the encoded record.
  if (XXH3_64bits(dlq_buffer_.data() + dlq_buffer_.size() - length, length) != checksum) {
    if (settle(seq, held_word, SettleReason::corrupt)) {
      q.group(group_).corrupt_skipped.fetch_add(1, std::memory_order_relaxed);
      advance_floor();
    }
    return true;
  }
  if (!dlq_->try_publish(Bytes(dlq_buffer_)).ok()) return false;
  ACKRING_FAILPOINT("deadletter.after_publish");
  // If settling fails, the lease moved on (expired and taken by another
  // member) while we published: the DLQ holds a copy and the message goes on
  // in the queue. At-least-once holds for the DLQ too; it may see a duplicate.
  if (settle(seq, held_word, SettleReason::dead_lettered)) {
    q.group(group_).dead_lettered.fetch_add(1, std::memory_order_relaxed);
    advance_floor();
  }
  return true;
}

std::size_t redrive_dead_letters(std::string_view name_or_path) {
  Queue origin = Queue::open(name_or_path);
  Queue dlq = Queue::open(dead_letter_queue_of(origin.path().string()));
  ConsumerOptions co;
  co.create_group = false;
  Consumer reader = dlq.consumer("dlq", co);
  Producer writer = origin.producer();
  std::size_t moved = 0;
  while (auto d = reader.try_receive()) {
    const auto letter = parse_dead_letter(d->payload());
    if (!letter) {
      (void)reader.reject(d->receipt());  // not a dead letter: leave it out of the way
      continue;
    }
    const auto r = writer.publish(letter->body, std::chrono::seconds(5));
    if (!r.ok()) {
      (void)reader.nack(d->receipt());
      throw Error(ErrorCode::resource_exhausted, "redrive into '" + origin.path().string() +
                                                     "': publish failed (" + std::string(to_string(r.status)) + ")");
    }
    (void)reader.ack(*d);
    ++moved;
  }
  return moved;
}

}  // namespace ackring
