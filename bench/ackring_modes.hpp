// ackring as the throughput matrix drives it: every delivery mode, every
// durability mode, and native fan-out (one group per consumer).
//
// Same shape as the transports in transports.hpp, with one difference in the
// meaning of `channels`: the peers get one channel per consumer to emulate
// fan-out, ackring gets ONE queue with `channels` groups (every group sees
// every message), so Tx(t, ch) ignores ch and Rx(t, ch) joins group ch.
#pragma once

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "ackring/ackring.hpp"
#include "common.hpp"
#include "transports.hpp"

namespace ackring_bench {

enum class Delivery : char { at_most_once, at_least_once, effectively_once };

[[nodiscard]] inline const char* to_string(Delivery d) noexcept {
  switch (d) {
    case Delivery::at_most_once: return "at-most-once";
    case Delivery::at_least_once: return "at-least-once";
    case Delivery::effectively_once: return "effectively-once";
  }
  return "?";
}
[[nodiscard]] inline const char* to_string(ackring::Durability d) noexcept {
  switch (d) {
    case ackring::Durability::none: return "none";
    case ackring::Durability::async: return "async";
    case ackring::Durability::sync: return "sync";
  }
  return "?";
}

struct AckringModeParams {
  Delivery delivery = Delivery::at_least_once;
  ackring::Durability durability = ackring::Durability::none;
  std::filesystem::path journal_root;  // a directory on a real disk; one subdirectory per queue
};

// Effectively-once keys must stay in the dedup table for the window, and a
// table whose probe windows fill up refuses the publish (dedup_full). Each
// message holds two entries (its publish key and the group's processed key).
// A 5-minute window at a million messages a second would need 2^30 entries,
// so the bench shortens the window to 50 ms and takes 2^21 entries (64 MB):
// the default run's 220 k messages then fill a fifth of the table even if
// nothing expired, and longer runs rely on expiry. The per-message work
// (hash, bloom filter, probe window) is the same as with a long window; only
// the memory footprint differs.
inline constexpr std::uint32_t kBenchDedupEntries = 1u << 21;
inline constexpr ackring::Millis kBenchDedupWindow{50};

class AckringModesTransport {
 public:
  static constexpr bool kNativeFanout = true;

  AckringModesTransport(const Params& p, int groups, const AckringModeParams& m) : p_(p), m_(m) {
    path_ = "/dev/shm/" + p.tag + ".ackring";
    Cleanup::add(Cleanup::Kind::file, path_);
    Cleanup::add(Cleanup::Kind::file, ackring::dead_letter_queue_of(path_));
    ackring::QueueOptions o;
    o.capacity = p.capacity;
    o.max_message_size = p.size;
    o.dedup = m.delivery == Delivery::effectively_once;
    if (o.dedup) o.dedup_entries = kBenchDedupEntries, o.dedup_window = kBenchDedupWindow;
    o.durability = m.durability;
    if (m.durability != ackring::Durability::none) {
      journal_dir_ = m.journal_root / p.tag;
      std::filesystem::create_directories(journal_dir_);
      o.journal_dir = journal_dir_.string();
    }
    auto q = ackring::Queue::create(path_, o);
    // Before any publish, so every group sees every message.
    for (int g = 0; g < groups; ++g) q.create_group(group_name(g));
  }
  ~AckringModesTransport() {
    Cleanup::remove(Cleanup::Kind::file, ackring::dead_letter_queue_of(path_));
    Cleanup::remove(Cleanup::Kind::file, path_);
    std::error_code ignored;
    if (!journal_dir_.empty()) std::filesystem::remove_all(journal_dir_, ignored);
  }
  AckringModesTransport(const AckringModesTransport&) = delete;
  AckringModesTransport& operator=(const AckringModesTransport&) = delete;

  class Tx {
   public:
    Tx(AckringModesTransport& t, int /*ch: one queue serves every group*/)
        : q_(ackring::Queue::open(t.path_)),
          prod_(q_.producer()),
          keyed_(t.m_.delivery == Delivery::effectively_once),
          batch_(t.p_.publish_batch),
          stride_(t.p_.size),
          store_(batch_ > 1 ? std::size_t{batch_} * stride_ : 0) {}
    void send(const std::byte* data, std::uint32_t n) {
      if (batch_ > 1) return stage(data, n);
      // The message index (first 8 bytes, unique per producer and message)
      // is the idempotency key: one new key per message, as a producer that
      // retries by business id would publish.
      const auto r = keyed_ ? prod_.publish(ackring::Bytes(data, n), {.key = std::string_view(reinterpret_cast<const char*>(data), 8)})
                            : prod_.publish(ackring::Bytes(data, n));
      if (!r.ok()) throw std::runtime_error("ackring publish: " + std::string(ackring::to_string(r.status)));
      if (r.duplicate) throw std::runtime_error("ackring keyed publish: a fresh key was reported duplicate");
    }

    // The producer-batched rows: messages are copied aside (the caller reuses
    // its buffer) and published batch_ at a time with publish_batch (keyed:
    // publish_keyed_batch); the producer loop flushes what is left after its
    // last message and after the stop marks.
    void flush() {
      if (staged_.empty()) return;
      if (keyed_) {
        // Keyed: publish_keyed_batch, the message index as key, as send() keys one message.
        keyed_staged_.clear();
        for (const ackring::Bytes& m : staged_)
          keyed_staged_.push_back({m, std::string_view(reinterpret_cast<const char*>(m.data()), 8)});
        const std::size_t ok = prod_.publish_keyed_batch(keyed_staged_);
        if (ok != keyed_staged_.size())
          throw std::runtime_error("ackring publish_keyed_batch: " +
                                   std::string(ackring::to_string(keyed_staged_[ok].result.status)));
        for (const auto& m : keyed_staged_)
          if (m.result.duplicate) throw std::runtime_error("ackring keyed publish: a fresh key was reported duplicate");
        staged_.clear();
        return;
      }
      const auto r = prod_.publish_batch(staged_);
      if (!r.ok()) throw std::runtime_error("ackring publish_batch: " + std::string(ackring::to_string(r.status)));
      staged_.clear();
    }

   private:
    // Staged message i lives at store_[i * stride_]: the store never grows,
    // so the spans in staged_ stay valid until flush().
    void stage(const std::byte* data, std::uint32_t n) {
      if (n > stride_) throw std::runtime_error("ackring publish_batch: message larger than the queue's size");
      std::byte* slot = store_.data() + staged_.size() * stride_;
      std::memcpy(slot, data, n);
      staged_.emplace_back(slot, n);
      if (staged_.size() == batch_) flush();
    }
    ackring::Queue q_;
    ackring::Producer prod_;
    bool keyed_;
    std::uint32_t batch_;
    std::size_t stride_;  // the largest message: Params::size
    std::vector<std::byte> store_;
    std::vector<ackring::Bytes> staged_;
    std::vector<ackring::KeyedPublish> keyed_staged_;  // keyed: staged_ with their keys
  };

  class Rx {
   public:
    Rx(AckringModesTransport& t, int group)
        : q_(ackring::Queue::open(t.path_)),
          cons_(q_.consumer(group_name(group), options(t.p_, t.m_))),
          delivery_(t.m_.delivery),
          buf_(t.p_.batch) {}

    // Up to `batch` messages, waiting up to 1 s (returns 0 then, so a
    // competing consumer can notice that its partner took both stop marks).
    template <class F>
    std::size_t recv(F&& f) {
      const std::size_t n = cons_.receive_batch(buf_, std::chrono::seconds(1));
      const std::span<const ackring::Delivery> got(buf_.data(), n);
      if (delivery_ == Delivery::effectively_once) {
        // Skips what this group processed before, records what it processes
        // now, then one cumulative ack for the batch.
        const auto r = cons_.process_once_batch(got, [&](const ackring::Delivery& d) {
          f(d.payload().data(), static_cast<std::uint32_t>(d.payload().size()));
        });
        duplicates_ += r.duplicates;
        if (r.unrecorded != 0) throw std::runtime_error("ackring process_once_batch: processed keys not recorded (dedup_full)");
        if (r.acked != n) throw std::runtime_error("ackring process_once_batch lost leases");
        return n;
      }
      for (const ackring::Delivery& d : got) f(d.payload().data(), static_cast<std::uint32_t>(d.payload().size()));
      if (delivery_ != Delivery::at_most_once && n != 0 && cons_.ack_batch(got) != n)
        throw std::runtime_error("ackring ack_batch lost leases");
      return n;
    }
    [[nodiscard]] std::uint64_t duplicates() const noexcept { return duplicates_; }

   private:
    static ackring::ConsumerOptions options(const Params& p, const AckringModeParams& m) {
      ackring::ConsumerOptions o;
      o.mode = m.delivery == Delivery::at_most_once ? ackring::DeliveryMode::at_most_once
                                                     : ackring::DeliveryMode::at_least_once;
      o.create_group = false;
      if (p.spin) o.spin = *p.spin;
      o.linger = p.linger;
      return o;
    }
    ackring::Queue q_;
    ackring::Consumer cons_;
    Delivery delivery_;
    std::vector<ackring::Delivery> buf_;
    std::uint64_t duplicates_ = 0;
  };

 private:
  static std::string group_name(int g) { return "bench" + std::to_string(g); }
  Params p_;
  AckringModeParams m_;
  std::string path_;
  std::filesystem::path journal_dir_;
};

}  // namespace ackring_bench
