// Bridges between an ackring queue and NATS JetStream (target ackring_bridge,
// built when libnats is found). They carry ackring's delivery guarantees
// across hosts without a protocol of our own:
//
//  Outbound: consumes an ackring group and publishes each message to a
//    JetStream subject; acks the ackring delivery only after JetStream's
//    publish ack (at-least-once). Every message carries the stable
//    Nats-Msg-Id "ackring:<queue file>:<seq>:<publish time ns>" — the same
//    for a re-send after a bridge crash and after Queue::recover (which keeps
//    seqs and publish times), and different for a queue that was removed and
//    created again — so JetStream's duplicate window drops re-sends.
//  Inbound: pulls from a durable JetStream consumer and publishes into the
//    queue keyed by the JetStream message (its Nats-Msg-Id, else
//    "<stream>:<stream seq>"), so a redelivery is a dedup hit; acks JetStream
//    only after the ackring publish returned ok (for a sync queue: on disk);
//    a full queue gets a nak with a delay (back-pressure), never a drop.
//
// Thread-safety: a bridge object is driven by one thread (run()); stop() and
// status() may be called from any thread. Set-up failures (unreachable
// server, unknown stream, bad options) throw BridgeError from the
// constructor, before anything was taken from either side.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ackring/bridge_status.hpp"

namespace ackring::bridge {

enum class BridgeErrorCode {
  invalid_argument,  // bad option
  unreachable,       // the NATS server could not be reached at start
  no_stream,         // the stream (or consumer) does not exist / JetStream is off
  queue,             // the ackring queue cannot be opened or used
  too_large,         // a message exceeds the stream's or the queue's limit: nothing was acked
  rejected,          // JetStream refused a message for good (not a transient error)
};

class BridgeError : public std::runtime_error {
 public:
  BridgeError(BridgeErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] BridgeErrorCode code() const noexcept { return code_; }

 private:
  BridgeErrorCode code_;
};

using LogFn = std::function<void(std::string_view line)>;

// What both directions share: the server and how to survive losing it.
struct NatsOptions {
  std::string url = "nats://127.0.0.1:4222";
  std::chrono::milliseconds connect_timeout{2000};   // first connect; then BridgeError(unreachable)
  std::chrono::milliseconds reconnect_wait{100};     // first back-off after a lost connection ...
  std::chrono::milliseconds reconnect_wait_max{2000};  // ... doubling up to this; reconnects never give up
  std::chrono::milliseconds request_timeout{5000};   // JetStream API calls and publish acks
};

struct OutboundOptions {
  std::string queue;    // ackring queue name or path
  std::string group;    // the group to consume (created at the oldest message if missing)
  std::string stream;   // must exist; the bridge never creates streams
  std::string subject;  // must be one of the stream's subjects
  NatsOptions nats{};
  std::uint32_t max_in_flight = 512;       // publishes awaiting a JetStream ack at once
  std::chrono::milliseconds lease{30'000};  // ackring lease; extended while a publish is outstanding
  std::string name;                          // status file name; default "out.<group>"
  LogFn log{};                               // one line per event (connects, errors); null: quiet
};

struct InboundOptions {
  std::string queue;     // ackring queue name or path (must exist)
  std::string stream;    // must exist
  std::string consumer;  // durable pull consumer; created (explicit ack) if missing
  std::string filter_subject;  // only when creating the consumer; empty: the whole stream
  NatsOptions nats{};
  std::uint32_t batch = 256;                          // messages per fetch
  std::chrono::milliseconds full_nak_delay{200};      // back-pressure: nak delay when the queue is full
  std::chrono::milliseconds publish_wait{50};         // how long a publish waits for room before the nak
  std::string name;                                   // status file name; default "in.<consumer>"
  LogFn log{};
};

class Outbound {
 public:
  explicit Outbound(OutboundOptions options);  // connects and validates; throws BridgeError
  Outbound(Outbound&&) noexcept;
  Outbound& operator=(Outbound&&) noexcept;
  ~Outbound();  // unacked ackring deliveries go back to the group at once

  // Forwards until stop() is called, or (max_messages > 0) until that many
  // messages were acked on both sides. Throws BridgeError for a failure that
  // retrying cannot fix (a message too large for the stream, ...).
  void run(std::uint64_t max_messages = 0);
  // Stops a run() from any thread (or a signal handler: it only stores a flag).
  void stop() noexcept;
  // A snapshot of the counters (what the status file holds).
  [[nodiscard]] BridgeStatus status() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Inbound {
 public:
  explicit Inbound(InboundOptions options);
  Inbound(Inbound&&) noexcept;
  Inbound& operator=(Inbound&&) noexcept;
  ~Inbound();

  // Pulls until stop(), or (max_messages > 0) until that many were acked to JetStream.
  void run(std::uint64_t max_messages = 0);
  void stop() noexcept;
  [[nodiscard]] BridgeStatus status() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The Nats-Msg-Id the outbound bridge gives the message at `seq` of the queue
// file `queue_file` (its file name is used), published at `publish_time_ns`.
[[nodiscard]] std::string outbound_msg_id(std::string_view queue_file_name, std::uint64_t seq,
                                          std::uint64_t publish_time_ns);
// The Nats-Msg-Id of a message published with a key: derived from the key's
// 128-bit fingerprint (Delivery::key_fingerprint), "ackring-key:" + 32 hex
// digits, so the key identifies the message end to end: a second publish of
// the key (into any queue, e.g. after ackring's own dedup window) is a
// duplicate in the stream too, inside the stream's duplicate window.
[[nodiscard]] std::string outbound_key_msg_id(const std::array<std::uint64_t, 2>& key_fingerprint);

}  // namespace ackring::bridge
